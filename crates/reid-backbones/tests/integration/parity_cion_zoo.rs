//! CION-format pre-training checkpoints of six ReIDZoo families, built from
//! CION's own model files (CION_ReIDZoo 7ac6fd7, `CION_Pretrain/models/`:
//! `ConvNext.py`, `EdgeNext.py`, `FastViT.py`, `GhostNet.py`,
//! `Swin_Transformer.py`, `VOLO.py`) by `tools/fixtures/gen_cion_zoo_fixtures.py`
//! (`tests/fixtures/backbones/cion_zoo/<family>/`), read the way
//! `extract --arch NAME --weights FILE` reads them: a [`ZooModel`] (here
//! with a reduced network under the family's zoo entry), `load`,
//! `into_inference`, `embed`. The embedding must match CION's `forward` of
//! the teacher backbone. (RepViT: `parity_repvit_cion.rs`; ViT:
//! `parity_vit_cion.rs`.)
//!
//! Each family also has a fine-tuned file (`transreid.pth`): the
//! pre-training file read by CION's own TransReID `make_model.build_model`
//! (the backbone class of `CION_Finetune/TransReID/model/backbones/`),
//! moved a little and saved as CION's TransReID code saves it (`base.*`,
//! `bottleneck.*`, `classifier.weight`). It loads through the shared
//! TransReID wrapper, recognised from its keys and with `--weights-format
//! transreid`, and its embedding must match `model(x)` in eval mode (= the
//! backbone's output: every CION config tests with `NECK_FEAT: 'before'`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|`.

use burn::tensor::Device;
use reid_backbones::BackboneError;
use reid_backbones::import::{ImportOptions, WeightsFormat};
use reid_backbones::zoo::{ZooModel, ZooNet, zoo_entry};
use reid_backbones::{ConvNeXtConfig, EdgeNeXtConfig, Embed, GhostNetConfig, VoloConfig};
use serde_json::Value;

use crate::common;

use crate::parity_fastvit::config_of;
use common::{assert_close, four, tensor4, uint};

/// The reduced network of `family` as its manifest describes it.
fn net(family: &str, c: &Value, device: &Device) -> ZooNet {
    let n = |k: &str| uint(&c[k]);
    match family {
        "convnext" => ZooNet::ConvNeXt(
            ConvNeXtConfig::new(four(&c["depths"]), four(&c["dims"]))
                .init(device)
                .unwrap(),
        ),
        "edgenext" => ZooNet::EdgeNeXt(
            EdgeNeXtConfig::new(four(&c["depths"]), four(&c["dims"]), four(&c["heads"]))
                .init(device)
                .unwrap(),
        ),
        "fastvit" => ZooNet::FastVit(config_of(c).init(device).unwrap()),
        "ghostnet" => ZooNet::GhostNet(
            GhostNetConfig::new(c["width"].as_f64().unwrap())
                .with_num_features(n("num_features"))
                .init(device)
                .unwrap(),
        ),
        "swin" => ZooNet::Swin(
            reid_backbones::swin::SwinConfig::new()
                .with_embed_dim(n("embed_dim"))
                .with_depths(four(&c["depths"]))
                .with_num_heads(four(&c["heads"]))
                .with_window_size(n("window"))
                .init(device)
                .unwrap(),
        ),
        "volo" => {
            let img = &c["img_size"];
            let img = [uint(&img[0]), uint(&img[1])];
            ZooNet::Volo(
                VoloConfig::new(
                    four(&c["layers"]),
                    four(&c["embed_dims"]),
                    four(&c["num_heads"]),
                )
                .with_img_size(img)
                .with_stem_hidden_dim(n("stem_hidden_dim"))
                .with_mlp_ratio(c["mlp_ratio"].as_f64().unwrap())
                .init(device)
                .unwrap(),
            )
        }
        other => panic!("no family {other}"),
    }
}

const FAMILIES: [&str; 6] = [
    "convnext", "edgenext", "fastvit", "ghostnet", "swin", "volo",
];

/// `family`'s reduced network under its zoo entry, its parameter count
/// checked against CION's module's.
fn zoo_model(family: &str) -> ZooModel {
    let m = common::fixture_manifest(&format!("cion_zoo/{family}"));
    let entry = zoo_entry(m["arch"].as_str().unwrap()).unwrap();
    let model = ZooModel {
        entry,
        net: net(family, &m["config"], &common::device()),
    };
    assert_eq!(
        model.num_parameters() as u64,
        m["num_params_backbone"].as_u64().unwrap(),
        "{family}: parameter count"
    );
    model
}

/// Loads `file` of `family`'s fixtures the way `extract` does (`format`),
/// checks the report names `set_aside`, and returns the embedding's
/// relative error against `reference`.
fn load_and_embed(
    family: &str,
    file: &str,
    format: WeightsFormat,
    set_aside: &str,
    reference: &str,
) -> f32 {
    let fixtures = format!("cion_zoo/{family}");
    let mut model = zoo_model(family);
    let options = ImportOptions::default().with_format(format);
    let report = model
        .load(common::fixture_dir(&fixtures).join(file), &options)
        .unwrap_or_else(|e| panic!("{family} {file}: {e}"));
    let text = report.to_string();
    assert!(text.contains(set_aside), "{family} {file}: {text}");
    let model = model.into_inference();
    let x = tensor4(
        &common::fixture_npy(&fixtures, "input.npy"),
        &common::device(),
    );
    let emb = model.embed(x).unwrap();
    let reference = common::fixture_npy(&fixtures, reference);
    assert_close(emb, &reference, &format!("{family} {file} ({format:?})"))
}

#[test]
fn cion_checkpoints_of_six_families_load_and_embed_as_cions_code() {
    let mut worst = 0f32;
    for family in FAMILIES {
        let m = common::fixture_manifest(&format!("cion_zoo/{family}"));
        let err = load_and_embed(
            family,
            "cion_pretrain.pth",
            WeightsFormat::Auto,
            "CION teacher DINO head",
            "embedding.npy",
        );
        println!(
            "{family} ({}): CION checkpoint, zoo path, embedding rel. error {err:.3e}",
            m["source"].as_str().unwrap()
        );
        worst = worst.max(err);
    }
    println!("worst relative error {worst:.3e}");
}

#[test]
fn cion_transreid_fine_tuned_files_of_six_families_load_and_embed_as_cions_code() {
    let mut worst = 0f32;
    for family in FAMILIES {
        let m = common::fixture_manifest(&format!("cion_zoo/{family}"));
        let t = &m["transreid"];
        for format in [WeightsFormat::Auto, WeightsFormat::TransReid] {
            let err = load_and_embed(
                family,
                t["file"].as_str().unwrap(),
                format,
                "TransReID head",
                t["embedding"].as_str().unwrap(),
            );
            println!(
                "{family} ({}; {format:?}): fine-tuned checkpoint, zoo path, embedding rel. \
                 error {err:.3e}",
                t["source"].as_str().unwrap()
            );
            worst = worst.max(err);
        }
        // `--weights-format transreid` on the pre-training file: no
        // `base.*`, an error naming the file.
        let mut model = zoo_model(family);
        let pretrain = common::fixture_dir(&format!("cion_zoo/{family}")).join("cion_pretrain.pth");
        let options = ImportOptions::default().with_format(WeightsFormat::TransReid);
        match model.load(&pretrain, &options) {
            Err(e @ BackboneError::Layout { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("cion_pretrain.pth") && text.contains("base."),
                    "{family}: {text}"
                );
            }
            Err(e) => panic!("{family}: expected a layout error, got {e}"),
            Ok(_) => panic!("{family}: a pre-training file loaded as TransReID"),
        }
    }
    println!("worst relative error {worst:.3e}");
}
