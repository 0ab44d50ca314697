//! Numerical parity with PyTorch and loud checkpoint import, on the fixtures
//! of `tools/fixtures/gen_backbone_fixtures.py` (`tests/fixtures/backbones/`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over the output.

use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use ndarray::{Array1, ArrayD};
use ndarray_npy::read_npy;
use reid_backbones::import::{
    Container, ImportOptions, Layout, WeightsFormat, load_backbone, load_reid_model,
    save_mgn_safetensors, save_safetensors,
};
use reid_backbones::{
    Backbone, BackboneError, ClassifierKind, EmbeddingHeadConfig, IbnMode, KeyMismatch, ReidModel,
    ResNet, ResNetConfig, ResNetDepth, StemPool,
};
use reid_infer::HostResNet;

use crate::common::family::{self, mismatch_of};
use crate::common::tensor4 as tensor;
use crate::common::{self, assert_close, assert_close_values, four, safetensors_keys, uint};

fixture_fns!("");

fn config(variant: &str) -> ResNetConfig {
    let v = &manifest()["variants"][variant];
    ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks: four(&v["blocks"]),
            bottleneck: v["bottleneck"].as_bool().unwrap(),
        })
        .with_base_width(uint(&v["base_width"]))
        .with_last_stride(uint(&v["last_stride"]))
        .with_stem_pool(match v["stem"].as_str().unwrap() {
            "fastreid" => StemPool::FastReid,
            _ => StemPool::Torchvision,
        })
        .with_ibn(match v["ibn"].as_str() {
            Some("a") => Some(IbnMode::A),
            Some("b") => Some(IbnMode::B),
            _ => None,
        })
}

fn model(variant: &str, device: &Device) -> ResNet {
    config(variant).init(device).unwrap()
}

/// `m`'s feature map on `input.npy` against `expected`, within 1e-4.
fn check_features(m: &ResNet, expected: &str, what: &str, device: &Device) {
    let x = tensor(&npy("input.npy"), device);
    assert_close(m.forward(x), &npy(expected), what);
}

fn load(
    variant: &str,
    file: &str,
    options: &ImportOptions,
) -> (ResNet, reid_backbones::ImportReport) {
    let m = model(variant, &common::device());
    common::load_file(m, &dir().join(file), |m, path| {
        load_backbone(m, path, options)
    })
}

/// `variant` with its own weights (`{variant}.pth`).
fn load_variant(variant: &str) -> ResNet {
    load(
        variant,
        &format!("{variant}.pth"),
        &ImportOptions::default(),
    )
    .0
}

#[test]
fn every_architecture_variant_matches_pytorch() {
    let device = common::device();
    let variants = manifest()["variants"].as_object().unwrap().clone();
    assert!(variants.len() >= 6);
    for (name, v) in variants {
        let (m, report) = load(
            &name,
            v["weights"].as_str().unwrap(),
            &ImportOptions::default(),
        );
        assert_eq!(report.layout, Layout::Torchvision, "{name}");
        assert_eq!(report.container, Container::Pytorch, "{name}");
        // The only keys set aside are the num_batches_tracked counters.
        assert_eq!(report.ignored.len(), 1, "{name}: {report}");
        assert!(
            report.ignored[0]
                .keys
                .iter()
                .all(|k| k.ends_with("num_batches_tracked"))
        );
        let output = v["output"].as_str().unwrap();
        check_features(&m, output, &name, &device);
        // The BN-folded inference copy computes the same function.
        let fused = m.fold_batch_norm();
        let x = tensor(&npy("input.npy"), &device);
        assert_close(
            fused.forward(x),
            &npy(output),
            &format!("{name} (BN folded)"),
        );
        // The host engine (NHWC activations, GEMM convolutions) as well.
        let host = HostResNet::from_fused(&fused).unwrap();
        let input = npy("input.npy");
        let dims: [usize; 4] = input.shape().try_into().unwrap();
        let (v3, shape3) = host.forward_nchw(input.as_slice().unwrap(), dims).unwrap();
        let what = format!("{name} (HostResNet)");
        assert_close_values(v3, &shape3, &npy(output), &what);
    }
}

/// `HostResNet` through the `Backbone` trait: the map and the pooled feature
/// match the burn model, repeated calls (reusing buffers) are bit-identical,
/// and a wrong input is an error naming the expected shape.
#[test]
fn host_resnet_matches_burn_and_reuses_buffers_exactly() {
    let device = common::device();
    for name in ["bottleneck", "ibn_a", "ibn_b"] {
        let (m, _) = load(
            name,
            manifest()["variants"][name]["weights"].as_str().unwrap(),
            &ImportOptions::default(),
        );
        let host = HostResNet::from_resnet(&m).unwrap();
        assert_eq!(host.out_channels(), m.out_channels());
        assert_eq!(host.output_stride(), m.output_stride());
        let x = tensor(&npy("input.npy"), &device);
        let want: Vec<f32> = m
            .forward_pooled(x.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let first: Vec<f32> = host
            .forward_pooled(x.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        let err = want
            .iter()
            .zip(&first)
            .fold(0f32, |a, (p, q)| a.max((p - q).abs()));
        assert!(err <= 1e-4 * scale, "{name}: pooled error {err} vs {scale}");
        let map1: Vec<f32> = host.forward(x.clone()).into_data().try_to_vec().unwrap();
        let again: Vec<f32> = host
            .forward_pooled(x.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let map2: Vec<f32> = host.forward(x.clone()).into_data().try_to_vec().unwrap();
        assert_eq!(first, again, "{name}: pooled output changed between calls");
        assert_eq!(map1, map2, "{name}: map changed between calls");
        host.release_buffers();
        let map3: Vec<f32> = host.forward(x).into_data().try_to_vec().unwrap();
        assert_eq!(map1, map3, "{name}: map changed after release_buffers");
    }
    let (m, _) = load(
        "bottleneck",
        manifest()["variants"]["bottleneck"]["weights"]
            .as_str()
            .unwrap(),
        &ImportOptions::default(),
    );
    let host = HostResNet::from_resnet(&m).unwrap();
    let err = host
        .forward_nchw(&[0.0; 4 * 32 * 16], [1, 4, 32, 16])
        .unwrap_err();
    assert!(err.to_string().contains("expected [batch, 3"), "{err}");
    let err = host.forward_nchw(&[0.0; 10], [1, 3, 32, 16]).unwrap_err();
    assert!(err.to_string().contains("10 values"), "{err}");
}

#[test]
fn every_checkpoint_layout_loads_to_the_same_outputs() {
    let device = common::device();
    let layouts = manifest()["layouts"].as_object().unwrap().clone();
    let expected_layout = |file: &str| match file {
        f if f.starts_with("lup") => Layout::Lup,
        f if f.starts_with("cion") => Layout::Cion,
        f if f.starts_with("fastreid") => Layout::FastReid,
        f if f.starts_with("transreid") => Layout::TransReid,
        _ => Layout::Torchvision,
    };
    for (file, variant) in layouts {
        let variant = variant.as_str().unwrap();
        let options = ImportOptions::default().with_allow_unexpected(if file.contains("_fc") {
            vec!["fc.*".into()]
        } else {
            vec![]
        });
        let (m, report) = load(variant, &file, &options);
        assert_eq!(report.layout, expected_layout(&file), "{file}");
        check_features(&m, &format!("{variant}.out.npy"), &file, &device);
    }
}

#[test]
fn snapshots_report_what_they_set_aside() {
    let (_, lup) = load("bottleneck", "lup_nl.pth", &ImportOptions::default());
    family::assert_ignored(
        &lup,
        &[
            "state_dict.module.encoder_q.fc.0.weight",
            "state_dict.module.encoder_q.classifier.2.bias",
            "state_dict.module.encoder_q.projection.0.weight",
            "state_dict.module.encoder_k.conv1.weight",
            "state_dict.module.queue",
            "state_dict.module.prototypes",
        ],
    );
    let (_, cion) = load("bottleneck", "cion.pth", &ImportOptions::default());
    family::assert_ignored(
        &cion,
        &[
            "teacher.module.head.last_layer.weight_v",
            "student.module.backbone.conv1.weight",
        ],
    );
    let (_, fr) = load(
        "bottleneck_fr",
        "fastreid_old.pth",
        &ImportOptions::default(),
    );
    family::assert_ignored(&fr, &["heads.classifier.weight", "pixel_mean"]);
}

/// The key mismatch of loading `file` into `m` with `options`.
fn mismatch(m: &mut ResNet, file: &str, options: &ImportOptions) -> Box<KeyMismatch> {
    mismatch_of(load_backbone(m, dir().join(file), options))
}

#[test]
fn explicit_formats_override_detection_and_mismatches_are_errors() {
    let device = common::device();
    let opts = |format| ImportOptions::default().with_format(format);
    let defaults = ImportOptions::default();
    // A fast-reid checkpoint forced through the torchvision layout: every
    // key is unexpected (`backbone.…`) and every parameter missing.
    let mut m = model("bottleneck_fr", &device);
    let km = mismatch(&mut m, "fastreid.pth", &opts(WeightsFormat::Torchvision));
    let unexpected = km
        .unexpected
        .iter()
        .any(|k| k == "model.backbone.conv1.weight");
    assert!(unexpected, "{km}");
    assert!(km.missing.iter().any(|k| k == "conv1.weight"));
    assert!(km.to_string().contains("fastreid.pth"), "{km}");

    // `fc.*` is unexpected for a trunk unless allowed.
    let km = mismatch(&mut m, "bottleneck_fc.safetensors", &defaults);
    family::assert_only_unexpected(&km, "torchvision", &["fc.bias", "fc.weight"]);

    // Wrong architecture: basic-block weights into a bottleneck model.
    let km = mismatch(&mut m, "basic.pth", &defaults);
    assert!(km.missing.iter().any(|k| k == "layer1.0.conv3.weight"));
    let stem = |(k, want, got): &(String, Vec<usize>, Vec<usize>)| {
        k == "conv1.weight" && want[0] == 2 && got[0] == 4
    };
    assert!(km.mis_shaped.iter().any(stem), "{km}");

    // IBN weights into a plain model: IN/BN split keys unexpected.
    let mut plain = ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks: [2, 2, 2, 1],
            bottleneck: true,
        })
        .with_base_width(2)
        .init(&device)
        .unwrap();
    let km = mismatch(&mut plain, "ibn_a.pth", &defaults);
    assert!(km.unexpected.iter().any(|k| k == "layer1.0.bn1.IN.weight"));
    assert!(km.missing.iter().any(|k| k == "layer1.0.bn1.weight"));

    // Container / layout overrides that do not fit are errors too.
    assert!(
        load_backbone(
            &mut m,
            dir().join("bottleneck.pth"),
            &opts(WeightsFormat::Safetensors)
        )
        .is_err()
    );
    let err = load_backbone(
        &mut m,
        dir().join("bottleneck.pth"),
        &opts(WeightsFormat::Cion),
    )
    .unwrap_err();
    assert!(err.to_string().contains("teacher"), "{err}");
    // Not a checkpoint at all, and no file.
    assert!(matches!(
        load_backbone(
            &mut m,
            dir().join("manifest.json"),
            &ImportOptions::default()
        ),
        Err(BackboneError::Read { .. })
    ));
    assert!(matches!(
        load_backbone(&mut m, dir().join("nope.pth"), &ImportOptions::default()),
        Err(BackboneError::Read { .. })
    ));
}

#[test]
fn allow_lists_let_listed_keys_through_and_report_them() {
    // Plain-BN weights into an IBN-b model of the same blocks: the stem's
    // running statistics have no place (InstanceNorm), and the post-add
    // InstanceNorms of layer1[1] / layer2[1] have no tensors.
    let device = common::device();
    let cfg = config("bottleneck").with_ibn(Some(IbnMode::B));
    let mut m = cfg.init(&device).unwrap();
    let path = dir().join("bottleneck.safetensors");
    let km = mismatch(&mut m, "bottleneck.safetensors", &ImportOptions::default());
    assert_eq!(km.unexpected, vec!["bn1.running_mean", "bn1.running_var"]);
    assert_eq!(
        km.missing,
        vec![
            "layer1.1.IN.bias",
            "layer1.1.IN.weight",
            "layer2.1.IN.bias",
            "layer2.1.IN.weight"
        ]
    );
    let options = ImportOptions::default()
        .with_allow_unexpected(vec!["bn1.running_*".into()])
        .with_allow_missing(vec!["layer1.1.IN.*".into(), "layer2.1.IN.*".into()])
        .with_format(WeightsFormat::Auto);
    let report = load_backbone(&mut m, &path, &options).unwrap();
    assert_eq!(report.container, Container::Safetensors);
    assert_eq!(report.allowed_unexpected.len(), 2);
    assert_eq!(report.allowed_missing.len(), 4);
    // The allowed-missing parameters keep their initialisation (γ = 1, β = 0).
    let reid_backbones::resnet::ResidualBlock::Bottleneck(b) = &m.layer1[1] else {
        panic!("bottleneck expected")
    };
    let post = b.post_norm.as_ref().unwrap();
    let gamma: Vec<f32> = post
        .gamma
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert!(gamma.iter().all(|&g| g == 1.0), "{gamma:?}");
    // …while the others hold the file's values.
    let conv: Vec<f32> = m.conv1.weight.val().into_data().try_to_vec().unwrap();
    let (plain, _) = load("bottleneck", "bottleneck.pth", &ImportOptions::default());
    let want: Vec<f32> = plain.conv1.weight.val().into_data().try_to_vec().unwrap();
    assert_eq!(conv, want);
}

#[test]
fn fastreid_models_load_heads_in_both_namings() {
    let device = common::device();
    let m = manifest();
    let num_classes = uint(&m["fastreid_head"]["num_classes"]);
    let labels: Array1<i64> = read_npy(dir().join("fastreid_labels.npy")).unwrap();
    for file in ["fastreid.pth", "fastreid_old.pth"] {
        let backbone = model("bottleneck_fr", &device);
        let heads = EmbeddingHeadConfig::fastreid(backbone.out_channels, num_classes)
            .with_classifier(ClassifierKind::circle())
            .init(&device)
            .unwrap();
        let mut reid = ReidModel::new(backbone, heads);
        let report = load_reid_model(&mut reid, dir().join(file), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(report.layout, Layout::FastReid);
        let x = tensor(&npy("input.npy"), &device);
        let out = reid.forward(x);
        let feat = out.after_neck.clone();
        assert_close(feat, &npy("fastreid_head.out.npy"), file);
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [labels.len()]), &device);
        let logits = reid.heads.logits(&out, targets).unwrap();
        assert_close(
            logits,
            &npy("fastreid_logits.npy"),
            &format!("{file} circle logits"),
        );
    }
}

#[test]
fn safetensors_export_round_trips() {
    let device = common::device();
    for variant in ["bottleneck", "ibn_a", "ibn_b"] {
        let m = load_variant(variant);
        let out = common::temp_file(&format!("export-{variant}.safetensors"));
        save_safetensors(&m, &out).unwrap();
        // For checking the export from Python
        // (`tools/backbone_check_export.py`): keep a copy.
        if let Ok(dir) = std::env::var("REID_EXPORT_DIR") {
            std::fs::copy(
                &out,
                PathBuf::from(dir).join(format!("{variant}.safetensors")),
            )
            .unwrap();
        }
        let mut back = model(variant, &device);
        let report = load_backbone(&mut back, &out, &ImportOptions::default()).unwrap();
        assert_eq!(report.layout, Layout::Torchvision);
        assert_eq!(report.container, Container::Safetensors);
        // No num_batches_tracked counters in our export: nothing set aside.
        assert!(report.ignored.is_empty(), "{report}");
        check_features(&back, &format!("{variant}.out.npy"), variant, &device);
        std::fs::remove_file(&out).ok();
    }
}

#[test]
fn fastreid_mgn_with_extra_bn_matches_pytorch() {
    use reid_backbones::import::load_mgn;
    use reid_backbones::{MgnConfig, ResNetConfig as Rc};
    let device = common::device();
    let m = &manifest()["mgn"];
    let blocks = four(&m["blocks"]);
    let trunk = Rc::new()
        .with_depth(ResNetDepth::Custom {
            blocks,
            bottleneck: true,
        })
        .with_base_width(uint(&m["base_width"]))
        .with_stem_pool(StemPool::FastReid);
    let trunk_cfg = trunk.clone();
    let mut mgn = MgnConfig::new(trunk)
        .with_embedding_dim(uint(&m["embedding_dim"]))
        .with_num_classes(uint(&m["num_classes"]))
        .init(&device)
        .unwrap();
    let report = load_mgn(&mut mgn, dir().join("mgn.pth"), &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.layout, Layout::FastReid);
    let x = tensor(&npy("mgn_input.npy"), &device);
    let y = mgn.forward(x).unwrap();
    assert_close(y, &npy("mgn.out.npy"), "mgn");

    // Exported under fast-reid's names, it loads back to the same outputs.
    let out = common::temp_file("export-mgn.safetensors");
    save_mgn_safetensors(&mgn, &out).unwrap();
    if let Ok(dir) = std::env::var("REID_EXPORT_DIR") {
        std::fs::copy(&out, PathBuf::from(dir).join("mgn.safetensors")).unwrap();
    }
    let keys = safetensors_keys(&out);
    let fastreid_prefix = |k: &str| {
        [
            "backbone.0.",
            "backbone.1.",
            "backbone.4.",
            "backbone.5.",
            "backbone.6.",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || ["b1.", "b2.", "b3."]
                .iter()
                .any(|b| k.starts_with(&format!("{b}0.")) || k.starts_with(&format!("{b}1.")))
            || k.split_once('.').is_some_and(|(h, _)| h.ends_with("_head"))
            || k.starts_with("heads_extra_bn_b")
    };
    let odd: Vec<&String> = keys.iter().filter(|k| !fastreid_prefix(k)).collect();
    assert!(odd.is_empty(), "not fast-reid MGN names: {odd:?}");
    for k in [
        "backbone.0.weight",
        "backbone.1.running_var",
        "backbone.4.0.conv1.weight",
        "backbone.6.downsample.0.weight",
        "b1.1.0.downsample.1.weight",
        "b3.0.0.conv2.weight",
        "b21_head.bottleneck.0.weight",
        "b21_head.bottleneck.1.running_mean",
        "b33_head.weight",
        "b1_head.pool_layer.p",
        "heads_extra_bn_b2.bias",
    ] {
        assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
    }
    let mut back = MgnConfig::new(trunk_cfg)
        .with_embedding_dim(8)
        .with_num_classes(5)
        .init(&device)
        .unwrap();
    let report = load_mgn(&mut back, &out, &ImportOptions::default()).unwrap();
    assert_eq!(report.layout, Layout::FastReid);
    assert!(report.ignored.is_empty(), "{report}");
    assert_eq!(report.applied, keys.len());
    let y = back
        .forward(tensor(&npy("mgn_input.npy"), &device))
        .unwrap();
    assert_close(y, &npy("mgn.out.npy"), "mgn exported and re-imported");
    std::fs::remove_file(&out).ok();

    // Without the extra BN the checkpoint's heads_extra_bn_* are unexpected.
    let trunk = mgn_trunk_for_error(blocks);
    let mut plain = MgnConfig::new(trunk)
        .with_embedding_dim(8)
        .with_num_classes(5)
        .with_extra_bn(false)
        .init(&device)
        .unwrap();
    let km = mismatch_of(load_mgn(
        &mut plain,
        dir().join("mgn.pth"),
        &ImportOptions::default(),
    ));
    assert!(
        km.unexpected
            .iter()
            .all(|k| k.starts_with("heads_extra_bn_b"))
    );
    assert!(km.missing.is_empty());
}

fn mgn_trunk_for_error(blocks: [usize; 4]) -> ResNetConfig {
    ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks,
            bottleneck: true,
        })
        .with_base_width(1)
        .with_stem_pool(StemPool::FastReid)
}

#[test]
fn burnpack_records_round_trip() {
    use burn::store::{BurnpackStore, ModuleSnapshot};
    let device = common::device();
    for variant in ["ibn_a", "ibn_b"] {
        let m = load_variant(variant);
        let path = common::temp_file(&format!("{variant}.bpk"));
        let mut store = BurnpackStore::from_file(&path).overwrite(true);
        m.save_into(&mut store).unwrap();
        let mut back = model(variant, &device);
        let mut store = BurnpackStore::from_file(&path);
        let result = back.load_from(&mut store).unwrap();
        assert!(
            result.errors.is_empty() && result.missing.is_empty(),
            "{result}"
        );
        check_features(&back, &format!("{variant}.out.npy"), variant, &device);
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn transreid_models_load_with_their_bnneck() {
    let device = common::device();
    let backbone = model("bottleneck", &device);
    let heads = EmbeddingHeadConfig::transreid(backbone.out_channels, 4)
        .init(&device)
        .unwrap();
    let mut reid = ReidModel::new(backbone, heads);
    let report = load_reid_model(
        &mut reid,
        dir().join("transreid.pth"),
        &ImportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.layout, Layout::TransReid);
    let x = tensor(&npy("input.npy"), &device);
    let out = reid.forward(x.clone());
    let after = out.after_neck.clone();
    assert_close(after, &npy("transreid_head.out.npy"), "transreid BNNeck");
    // The test feature of the TransReID variant is the pre-BN GAP feature.
    let gap: Vec<f32> = npy("bottleneck.out.npy")
        .mean_axis(ndarray::Axis(3))
        .unwrap()
        .mean_axis(ndarray::Axis(2))
        .unwrap()
        .iter()
        .copied()
        .collect();
    let emb = reid.embed(x);
    let gap = ArrayD::from_shape_vec(emb.dims().to_vec(), gap).unwrap();
    assert_close(emb, &gap, "transreid embed");
}
