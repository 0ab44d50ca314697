//! CION-format pre-training checkpoints of six ReIDZoo families, built from
//! CION's own model files (CION_ReIDZoo 7ac6fd7, `CION_Pretrain/models/`:
//! `ConvNext.py`, `EdgeNext.py`, `FastViT.py`, `GhostNet.py`,
//! `Swin_Transformer.py`, `VOLO.py`) by `tools/gen_cion_zoo_fixtures.py`
//! (`tests/fixtures/backbones/cion_zoo/<family>/`), read the way
//! `extract --arch NAME --weights FILE` reads them: a [`ZooModel`] (here
//! with a reduced network under the family's zoo entry), `load`,
//! `into_inference`, `embed`. The embedding must match CION's `forward` of
//! the teacher backbone. (RepViT: `parity_repvit_cion.rs`; ViT:
//! `parity_vit_cion.rs`.)
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|`.

use burn::tensor::Device;
use reid_backbones::import::ImportOptions;
use reid_backbones::zoo::{ZooModel, ZooNet, zoo_entry};
use reid_backbones::{
    ConvNeXtConfig, EdgeNeXtConfig, Embed, FastVitConfig, GhostNetConfig, VoloConfig,
};
use serde_json::Value;

mod common;

use common::{four, rel_err, tensor4};

fn flags(v: &Value) -> [bool; 4] {
    let a: Vec<bool> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_bool().unwrap())
        .collect();
    [a[0], a[1], a[2], a[3]]
}

/// The reduced network of `family` as its manifest describes it.
fn net(family: &str, c: &Value, device: &Device) -> ZooNet {
    let n = |k: &str| c[k].as_u64().unwrap() as usize;
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
        "fastvit" => ZooNet::FastVit(
            FastVitConfig::new(
                four(&c["layers"]),
                four(&c["embed_dims"]),
                flags(&c["attention"]),
                flags(&c["pos_emb"]),
            )
            .with_mlp_ratios(four(&c["mlp_ratios"]))
            .with_head_dim(n("head_dim"))
            .init(device)
            .unwrap(),
        ),
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
            let img = [
                img[0].as_u64().unwrap() as usize,
                img[1].as_u64().unwrap() as usize,
            ];
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

#[test]
fn cion_checkpoints_of_six_families_load_and_embed_as_cions_code() {
    let device = common::device();
    let mut worst = 0f32;
    for family in [
        "convnext", "edgenext", "fastvit", "ghostnet", "swin", "volo",
    ] {
        let dir = common::fixture_dir("cion_zoo").join(family);
        let m = common::fixture_manifest(&format!("cion_zoo/{family}"));
        let entry = zoo_entry(m["arch"].as_str().unwrap()).unwrap();
        let mut model = ZooModel {
            entry,
            net: net(family, &m["config"], &device),
        };
        assert_eq!(
            model.num_parameters() as u64,
            m["num_params_backbone"].as_u64().unwrap(),
            "{family}: parameter count"
        );
        let report = model
            .load(dir.join("cion_pretrain.pth"), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{family}: {e}"));
        let text = report.to_string();
        assert!(text.contains("CION teacher DINO head"), "{family}: {text}");
        let model = model.into_inference();
        let x = tensor4(
            &common::fixture_npy(&format!("cion_zoo/{family}"), "input.npy"),
            &device,
        );
        let emb = model.embed(x).unwrap();
        let shape = emb.dims().to_vec();
        let err = rel_err(
            emb.into_data().try_to_vec::<f32>().unwrap(),
            &shape,
            &common::fixture_npy(&format!("cion_zoo/{family}"), "embedding.npy"),
            family,
        );
        println!(
            "{family} ({}): CION checkpoint, zoo path, embedding rel. error {err:.3e}",
            m["source"].as_str().unwrap()
        );
        assert!(err <= 1e-4, "{family}: {err}");
        worst = worst.max(err);
    }
    println!("worst relative error {worst:.3e}");
}
