//! ResNet-IBN and MGN as CION's own code builds them, on the fixtures of
//! `tools/fixtures/gen_cion_resnet_fixtures.py` (`tests/fixtures/backbones/resnet_cion/`):
//!
//! - a CION pre-training checkpoint of CION's `ResNet_IBN` (CION_ReIDZoo
//!   7ac6fd7, `CION_Pretrain/models/ResNet_IBN.py`, `resnet50_ibn_a`);
//! - one of CION's plain `ResNet` (`CION_Pretrain/models/ResNet.py`,
//!   `resnet50`);
//! - a ResNet18-IBN-a fine-tuned by CION's TransReID code
//!   (`CION_Finetune/TransReID/model/make_model.py` `build_model` with the
//!   backbone of `CION_Finetune/TransReID/model/backbones/ResNet_IBN.py`,
//!   from a CION pre-training file): `base.*`, `bottleneck.*`,
//!   `classifier.weight`;
//! - an MGN built by CION's fast-reid (`CION_Finetune/FastReID`:
//!   `get_cfg` + CION's `configs/CMDM/market1501_mgn_R50ibn_cion.yml`,
//!   `build_model`, which read that pre-training file as CION's runs do),
//!   saved by fast-reid's `Checkpointer`.
//!
//! CION's classes fix the width at 64; the generator narrows it in memory
//! (channel literals ÷ 32, see the generator): ResNet-50(-IBN-a) networks
//! (blocks `[3, 4, 6, 3]`) and a ResNet-18-IBN-a at base width 2.
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|`.

use reid_backbones::import::{ImportOptions, Layout, WeightsFormat, load_backbone, load_mgn};
use reid_backbones::zoo::{ZooModel, ZooNet, zoo_entry};
use reid_backbones::{Backbone, Embed, IbnMode, MgnConfig, ResNetConfig, ResNetDepth, StemPool};
use serde_json::Value;

use crate::common;

use common::family::assert_ignored;
use common::{assert_close, four, tensor4, uint};

fixture_fns!("resnet_cion");

/// The trunk a manifest entry describes. CION's ResNets (pre-training and
/// its fast-reid, `fastreid/modeling/backbones/resnet.py`) pool the stem
/// with padding 1, torchvision's rule.
fn trunk(m: &Value) -> ResNetConfig {
    let ibn = match m["ibn"].as_str() {
        Some("a") => Some(IbnMode::A),
        None => None,
        Some(other) => panic!("IBN mode {other}"),
    };
    ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks: four(&m["blocks"]),
            bottleneck: m["bottleneck"].as_bool().unwrap_or(true),
        })
        .with_base_width(uint(&m["base_width"]))
        .with_last_stride(uint(&m["last_stride"]))
        .with_stem_pool(StemPool::Torchvision)
        .with_ibn(ibn)
}

/// The file of manifest entry `m` through `load_backbone` into its trunk,
/// auto-detected and as `format`: read as `layout` (the strict load checks
/// every tensor's presence and shape), each of `ignored` set aside, and the
/// GAP feature within 1e-4 of CION's (`m`'s `embedding`).
fn check_trunk_file(
    m: &Value,
    format: WeightsFormat,
    layout: Layout,
    ignored: &[&str],
    what: &str,
) {
    let device = common::device();
    let file = dir().join(m["file"].as_str().unwrap());
    let x = tensor4(&npy(m["input"].as_str().unwrap()), &device);
    let reference = npy(m["embedding"].as_str().unwrap());
    for format in [WeightsFormat::Auto, format] {
        let mut net = trunk(m).init(&device).unwrap();
        let options = ImportOptions::default().with_format(format);
        let report = load_backbone(&mut net, &file, &options).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.layout, layout);
        assert_ignored(&report, ignored);
        let what = format!("CION {what} ({format:?}): GAP feature");
        assert_close(net.forward_pooled(x.clone()), &reference, &what);
    }
}

/// A CION pre-training checkpoint (manifest entry `key`) through
/// `load_backbone` (auto-detected and `Cion`: the teacher, DINO head set
/// aside) and through the zoo path of `extract --arch zoo_name` (BN folded
/// for inference, the narrowed network under the zoo entry), each within
/// 1e-4 of CION's GAP feature.
fn check_pretraining_checkpoint(key: &str, zoo_name: &str, what: &str) {
    let m = &manifest()[key];
    let head = ["teacher.module.head.last_layer.weight_v"];
    check_trunk_file(m, WeightsFormat::Cion, Layout::Cion, &head, what);
    let device = common::device();
    let mut zoo = ZooModel {
        entry: zoo_entry(zoo_name).unwrap(),
        net: ZooNet::ResNet(trunk(m).init(&device).unwrap()),
    };
    if let Some(n) = m["num_params_backbone"].as_u64() {
        assert_eq!(
            zoo.num_parameters() as u64,
            n,
            "parameter count of CION's module"
        );
    }
    zoo.load(
        dir().join(m["file"].as_str().unwrap()),
        &ImportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let x = tensor4(&npy(m["input"].as_str().unwrap()), &device);
    let emb = zoo.into_inference().embed(x).unwrap();
    let reference = npy(m["embedding"].as_str().unwrap());
    assert_close(
        emb,
        &reference,
        &format!("CION {what}, zoo path: embedding"),
    );
}

#[test]
fn cion_resnet_ibn_pretraining_checkpoint_matches_cions_code() {
    check_pretraining_checkpoint("pretrain", "resnet50_ibn", "ResNet50-IBN-a");
}

/// CION's plain ResNet (`ResNet.py`, torchvision's blocks, no IBN, last
/// stride 1): its pre-training checkpoint through `load_backbone` and the
/// zoo path of `extract --arch resnet50`.
#[test]
fn cion_plain_resnet_pretraining_checkpoint_matches_cions_code() {
    assert!(manifest()["pretrain_plain"]["ibn"].is_null());
    check_pretraining_checkpoint("pretrain_plain", "resnet50", "ResNet-50");
}

/// CION tests with `NECK_FEAT: 'before'`: the fine-tuned file's feature is
/// the backbone's GAP feature; the TransReID head is set aside.
#[test]
fn cion_transreid_fine_tuned_resnet_ibn_matches_cions_build_model() {
    let m = &manifest()["transreid"];
    let head = ["classifier.weight", "bottleneck.running_var"];
    let what = "TransReID ResNet18-IBN-a";
    check_trunk_file(m, WeightsFormat::TransReid, Layout::TransReid, &head, what);
}

#[test]
fn cion_fastreid_mgn_checkpoint_matches_cions_fastreid() {
    let device = common::device();
    let m = &manifest()["mgn"];
    let mut mgn = MgnConfig::new(trunk(m))
        .with_embedding_dim(uint(&m["embedding_dim"]))
        .with_num_classes(uint(&m["num_classes"]))
        .with_extra_bn(m["extra_bn"].as_bool().unwrap())
        .init(&device)
        .unwrap();
    let file = dir().join(m["file"].as_str().unwrap());
    for format in [WeightsFormat::Auto, WeightsFormat::FastReid] {
        let options = ImportOptions::default().with_format(format);
        let report = load_mgn(&mut mgn, &file, &options).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.layout, Layout::FastReid);
        assert_ignored(&report, &["pixel_mean", "pixel_std"]);
        let x = tensor4(&npy(m["input"].as_str().unwrap()), &device);
        let feat = mgn.forward(x).unwrap();
        let what = format!("CION fast-reid MGN R50-IBN ({format:?}): feature");
        assert_close(feat, &npy(m["feature"].as_str().unwrap()), &what);
    }
}
