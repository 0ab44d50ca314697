//! The recipe files in `configs/` parse into their configurations, and the
//! full-size ones equal the library defaults (the paper's values).

use reid::train::finetune::mgn::MgnFinetuneConfig;
use reid::train::{CionConfig, FinetuneConfig, MocoConfig, PnlConfig};

fn read<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn full_size_recipes_are_the_defaults() {
    assert_eq!(read::<CionConfig>("cion.toml"), CionConfig::default());
    assert_eq!(read::<MocoConfig>("moco.toml"), MocoConfig::default());
    assert_eq!(read::<PnlConfig>("pnl.toml"), PnlConfig::default());
    assert_eq!(
        read::<FinetuneConfig>("bot.toml"),
        FinetuneConfig::default()
    );
}

#[test]
fn tiny_recipes_parse_and_validate() {
    read::<CionConfig>("cion-tiny.toml").validate().unwrap();
    read::<CionConfig>("cion-small.toml").validate().unwrap();
    read::<MocoConfig>("moco-tiny.toml").validate().unwrap();
    read::<PnlConfig>("pnl-tiny.toml").validate().unwrap();
    read::<MgnFinetuneConfig>("mgn-tiny.toml")
        .validate()
        .unwrap();
}
