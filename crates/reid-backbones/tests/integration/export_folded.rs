//! The BoT model in inference form (`ReidModel::fold_batch_norm`,
//! `import::save_folded_safetensors`): the folded model computes the
//! fixture model's feature, and the file holds exactly the fast-reid names
//! of the folded layout that `tools/onnx_export_check.py` loads strictly.

use burn::tensor::Device;
use reid_backbones::import::{ImportOptions, load_backbone, save_folded_safetensors};
use reid_backbones::{
    EmbeddingHeadConfig, IbnMode, ReidModel, ResNet, ResNetConfig, ResNetDepth, StemPool,
    safetensors_metadata,
};

use crate::common;

use common::{safetensors_keys, tensor4 as tensor};

fixture_fns!("");

/// The fixture trunk of `variant` (`tools/fixtures/gen_backbone_fixtures.py`) with a
/// BoT head whose BNNeck has non-trivial statistics.
fn bot(variant: &str, ibn: Option<IbnMode>, device: &Device) -> ReidModel<ResNet> {
    let v = &manifest()["variants"][variant];
    let mut trunk = ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks: common::four(&v["blocks"]),
            bottleneck: v["bottleneck"].as_bool().unwrap(),
        })
        .with_base_width(v["base_width"].as_u64().unwrap() as usize)
        .with_last_stride(v["last_stride"].as_u64().unwrap() as usize)
        .with_stem_pool(StemPool::Torchvision)
        .with_ibn(ibn)
        .init(device)
        .unwrap();
    load_backbone(
        &mut trunk,
        dir().join(v["weights"].as_str().unwrap()),
        &ImportOptions::default(),
    )
    .unwrap();
    let mut heads = EmbeddingHeadConfig::fastreid(trunk.out_channels, 0)
        .init(device)
        .unwrap();
    let n = trunk.out_channels;
    let ramp = |a: f32, b: f32| {
        burn::tensor::Tensor::<1>::from_floats(
            (0..n)
                .map(|i| a + b * i as f32 / n as f32)
                .collect::<Vec<_>>()
                .as_slice(),
            device,
        )
    };
    let neck = &mut heads.neck;
    neck.gamma = burn::module::Param::from_tensor(ramp(0.5, 1.0));
    neck.beta = burn::module::Param::from_tensor(ramp(-0.1, 0.2));
    neck.running_mean = burn::module::RunningState::new(ramp(-0.2, 0.4));
    neck.running_var = burn::module::RunningState::new(ramp(0.5, 1.0));
    ReidModel::new(trunk, heads)
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    err / scale
}

#[test]
fn folded_bot_models_compute_the_same_feature_and_keep_fast_reid_names() {
    let device = common::device();
    for (variant, ibn) in [
        ("bottleneck", None),
        ("ibn_a", Some(IbnMode::A)),
        ("ibn_b", Some(IbnMode::B)),
    ] {
        let model = bot(variant, ibn, &device);
        let x = tensor(&npy("input.npy"), &device);
        let reference: Vec<f32> = model
            .embed(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let folded = model.fold_batch_norm();
        let ours: Vec<f32> = folded.embed(x).into_data().try_to_vec::<f32>().unwrap();
        let rel = max_rel(&ours, &reference);
        eprintln!("{variant}: folded vs unfolded embedding, relative {rel:.2e}");
        assert!(rel < 1e-5, "{variant}: {rel}");

        let path = std::env::temp_dir().join(format!(
            "reid-folded-{}-{variant}.safetensors",
            std::process::id()
        ));
        save_folded_safetensors(&model, &path, &[("reid.form", "folded".into())]).unwrap();
        if let Ok(dir) = std::env::var("REID_EXPORT_DIR") {
            std::fs::copy(
                &path,
                std::path::Path::new(&dir).join(format!("{variant}_folded.safetensors")),
            )
            .unwrap();
        }
        let keys = safetensors_keys(&path);
        let meta = safetensors_metadata(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(meta.get("reid.form").map(String::as_str), Some("folded"));
        // Folded convolutions carry a bias and their BatchNorm is gone.
        assert!(
            keys.contains(&"backbone.layer1.0.conv2.bias".to_string()),
            "{keys:?}"
        );
        assert!(
            keys.contains(&"backbone.layer1.0.downsample.0.bias".to_string()),
            "{keys:?}"
        );
        assert!(
            !keys
                .iter()
                .any(|k| k.contains(".bn2.") || k.contains(".bn3.")),
            "{keys:?}"
        );
        assert!(!keys.iter().any(|k| k.contains("downsample.1")), "{keys:?}");
        assert!(
            keys.contains(&"heads.bottleneck.0.running_var".to_string()),
            "{keys:?}"
        );
        match ibn {
            None => {
                assert!(keys.contains(&"backbone.conv1.bias".to_string()));
                assert!(!keys.iter().any(|k| k.contains(".bn1.")), "{keys:?}");
            }
            Some(IbnMode::A) => {
                // IBN-a's split norm stays; its convolution keeps no bias.
                assert!(keys.contains(&"backbone.layer1.0.bn1.IN.weight".to_string()));
                assert!(keys.contains(&"backbone.layer1.0.bn1.BN.running_mean".to_string()));
                assert!(!keys.contains(&"backbone.layer1.0.conv1.bias".to_string()));
                assert!(keys.contains(&"backbone.layer4.0.conv1.bias".to_string()));
            }
            Some(IbnMode::B) => {
                // IBN-b's stem InstanceNorm and post-add InstanceNorms stay.
                assert!(
                    keys.contains(&"backbone.bn1.weight".to_string()),
                    "{keys:?}"
                );
                assert!(!keys.contains(&"backbone.conv1.bias".to_string()));
                assert!(keys.iter().any(|k| k.ends_with(".IN.weight")), "{keys:?}");
            }
        }
    }
}
