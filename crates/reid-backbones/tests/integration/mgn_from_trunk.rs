//! `Mgn::from_trunk`: fast-reid's MGN initialised from a ResNet trunk, on the
//! fixtures of `tools/fixtures/gen_mgn_trunk_fixtures.py`
//! (`tests/fixtures/backbones/mgn_trunk/`), plus self-consistency and
//! structure checks that need no fixture.
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` per compared tensor.

use std::collections::HashSet;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::BatchNorm;
use burn::tensor::{Device, Distribution, Tensor};
use ndarray::ArrayD;
use reid_backbones::import::{ImportOptions, WeightsFormat, load_backbone, load_mgn};
use reid_backbones::resnet::ResidualBlock;
use reid_backbones::{
    BackboneError, IbnMode, Mgn, MgnConfig, ResNet, ResNetConfig, ResNetDepth, StemPool,
};

use crate::common;

use common::{assert_close, four, tensor_err, tensor4 as tensor, uint, values};

fixture_fns!("mgn_trunk");

/// The fixture's trunk configuration with the given last stride.
fn trunk_config(last_stride: usize) -> ResNetConfig {
    let m = manifest();
    ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks: four(&m["blocks"]),
            bottleneck: true,
        })
        .with_base_width(uint(&m["base_width"]))
        .with_stem_pool(StemPool::FastReid)
        .with_last_stride(last_stride)
}

fn mgn_config(last_stride: usize) -> MgnConfig {
    let m = manifest();
    MgnConfig::new(trunk_config(last_stride))
        .with_embedding_dim(uint(&m["embedding_dim"]))
        .with_num_classes(uint(&m["num_classes"]))
        .with_extra_bn(m["extra_bn"].as_bool().unwrap())
}

fn load_trunk_fixture(last_stride: usize, device: &Device) -> ResNet {
    let mut trunk = trunk_config(last_stride).init(device).unwrap();
    load_backbone(
        &mut trunk,
        dir().join("trunk.pth"),
        &ImportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    trunk
}

#[test]
fn mgn_from_trunk_matches_fastreid_construction() {
    let device = Device::flex();
    let m = manifest();
    let x = tensor(&npy(m["input"].as_str().unwrap()), &device);
    let mut worst = 0f32;
    // The MGN's strides come from its config, not from the trunk's.
    for trunk_stride in [1, 2] {
        let trunk = load_trunk_fixture(trunk_stride, &device);
        for last_stride in [1, 2] {
            let expected = &m["last_stride"][last_stride.to_string()];
            let cfg = mgn_config(last_stride);
            let mut mgn = Mgn::from_trunk(&trunk, &cfg, &device).unwrap_or_else(|e| panic!("{e}"));
            for (map, b) in mgn
                .branch_maps(x.clone())
                .into_iter()
                .zip(["b1", "b2", "b3"])
            {
                let what = format!("trunk stride {trunk_stride}, MGN stride {last_stride}, {b}");
                let reference = npy(expected[b]["file"].as_str().unwrap());
                worst = worst.max(assert_close(map, &reference, &what));
            }
            // With the fixture's heads and extra BNs, the whole inference
            // feature matches too.
            let options = ImportOptions::default()
                .with_format(WeightsFormat::FastReid)
                .with_allow_missing(
                    ["backbone.*", "b1.*", "b2.*", "b3.*"]
                        .map(String::from)
                        .to_vec(),
                );
            load_mgn(&mut mgn, dir().join(m["heads"].as_str().unwrap()), &options)
                .unwrap_or_else(|e| panic!("{e}"));
            let feat = mgn.forward(x.clone()).unwrap();
            let reference = npy(expected["feature"]["file"].as_str().unwrap());
            let what = format!("trunk stride {trunk_stride}, MGN stride {last_stride}, feature");
            worst = worst.max(assert_close(feat, &reference, &what));
        }
    }
    eprintln!("mgn_from_trunk: worst relative error {worst:e}");
}

/// A trunk with non-trivial BatchNorm running statistics: a few
/// training-mode forwards on the autodiff device move them off 0 / 1.
fn trained_stats_trunk(cfg: &ResNetConfig, device: &Device) -> ResNet {
    let ad = device.clone().autodiff();
    let trunk = cfg.init(&ad).unwrap();
    for _ in 0..3 {
        let x = Tensor::<4>::random([4, 3, 64, 32], Distribution::Normal(0.5, 2.0), &ad);
        let _ = trunk.forward(x);
    }
    trunk.valid()
}

fn bn3(block: &ResidualBlock) -> &BatchNorm {
    match block {
        ResidualBlock::Bottleneck(b) => &b.bn3,
        ResidualBlock::Basic(_) => panic!("bottleneck expected"),
    }
}

#[test]
fn every_branch_computes_the_trunk_at_last_stride_one() {
    // With last stride 1, b1 is the trunk's own layer3[1:] + layer4 and b2 /
    // b3 are stride-1 copies of them: all three branch maps equal the
    // trunk's output, for plain BatchNorm and IBN-a trunks alike.
    let device = Device::flex();
    for ibn in [None, Some(IbnMode::A)] {
        let cfg = ResNetConfig::new()
            .with_depth(ResNetDepth::Custom {
                blocks: [1, 2, 3, 3],
                bottleneck: true,
            })
            .with_base_width(4)
            .with_ibn(ibn);
        let trunk = trained_stats_trunk(&cfg, &device);
        let stats = values(bn3(&trunk.layer4[2]).running_mean.value());
        assert!(stats.iter().any(|v| v.abs() > 1e-3), "{ibn:?}: stats moved");
        let mgn = Mgn::from_trunk(&trunk, &MgnConfig::new(cfg), &device).unwrap();
        for b in [&mgn.b1, &mgn.b2, &mgn.b3] {
            assert_eq!(values(bn3(&b.res_conv5[2]).running_mean.value()), stats);
        }
        let x = Tensor::<4>::random([2, 3, 64, 32], Distribution::Normal(0.0, 1.0), &device);
        let reference = trunk.forward(x.clone());
        let shape = reference.dims().to_vec();
        let reference = ArrayD::from_shape_vec(shape.clone(), values(reference)).unwrap();
        for (map, b) in mgn.branch_maps(x).into_iter().zip(["b1", "b2", "b3"]) {
            let err = tensor_err(map, &reference, b);
            assert!(err <= 1e-5, "{ibn:?} {b}: relative error {err:e}");
        }
    }
}

/// Every parameter's id (running statistics included).
struct Ids(Vec<ParamId>);

impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.id);
    }
}

fn ids<M: Module>(m: &M) -> Vec<ParamId> {
    let mut v = Ids(Vec::new());
    m.visit(&mut v);
    v.0
}

#[test]
fn branches_own_distinct_parameter_ids() {
    let device = Device::flex();
    let trunk = load_trunk_fixture(1, &device);
    let mgn = Mgn::from_trunk(&trunk, &mgn_config(1), &device).unwrap();
    let all = ids(&mgn);
    let unique: HashSet<ParamId> = all.iter().copied().collect();
    assert_eq!(
        unique.len(),
        all.len(),
        "duplicate parameter ids in the MGN"
    );
    let per_branch: Vec<HashSet<ParamId>> = [&mgn.b1, &mgn.b2, &mgn.b3]
        .map(|b| ids(b).into_iter().collect())
        .to_vec();
    assert!(per_branch[0].is_disjoint(&per_branch[1]));
    assert!(per_branch[1].is_disjoint(&per_branch[2]));
    let trunk_ids: HashSet<ParamId> = ids(&trunk).into_iter().collect();
    assert!(
        trunk_ids.is_disjoint(&unique),
        "MGN shares ids with the trunk"
    );
    // The values are copies all the same.
    let w = |b: &ResidualBlock| match b {
        ResidualBlock::Bottleneck(b) => values(b.conv2.weight.val()),
        ResidualBlock::Basic(_) => unreachable!(),
    };
    assert_eq!(w(&mgn.b3.res_conv4[1]), w(&trunk.layer3[2]));
    assert_eq!(w(&mgn.b2.res_conv5[0]), w(&trunk.layer4[0]));
}

#[test]
fn mismatched_trunks_are_errors_naming_the_difference() {
    let device = Device::flex();
    let base = ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks: [1, 1, 2, 3],
            bottleneck: true,
        })
        .with_base_width(2);
    let cfg = MgnConfig::new(base.clone()).with_embedding_dim(4);
    let cases: [(ResNetConfig, &str); 4] = [
        (
            base.clone().with_depth(ResNetDepth::Custom {
                blocks: [1, 1, 3, 3],
                bottleneck: true,
            }),
            "blocks per stage",
        ),
        (base.clone().with_base_width(4), "stem width"),
        (base.clone().with_ibn(Some(IbnMode::A)), "IBN-a"),
        (
            base.clone().with_depth(ResNetDepth::Custom {
                blocks: [1, 1, 2, 3],
                bottleneck: false,
            }),
            "basic blocks",
        ),
    ];
    for (trunk_cfg, needle) in cases {
        let trunk = trunk_cfg.init(&device).unwrap();
        let err = Mgn::from_trunk(&trunk, &cfg, &device).unwrap_err();
        assert!(matches!(err, BackboneError::InvalidConfig(_)), "{err}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    // IBN-b trunks (fast-reid has no IBN-b MGN) and an IBN-a config given a
    // plain trunk.
    let trunk = base
        .clone()
        .with_ibn(Some(IbnMode::B))
        .init(&device)
        .unwrap();
    let err = Mgn::from_trunk(&trunk, &cfg, &device).unwrap_err();
    assert!(err.to_string().contains("IBN-b"), "{err}");
    let trunk = base.clone().init(&device).unwrap();
    let ibn_cfg = MgnConfig::new(base.with_ibn(Some(IbnMode::A))).with_embedding_dim(4);
    let err = Mgn::from_trunk(&trunk, &ibn_cfg, &device).unwrap_err();
    assert!(err.to_string().contains("plain BatchNorm"), "{err}");
    // load_trunk leaves the model unchanged on error.
    let mut mgn = ibn_cfg.init(&device).unwrap();
    let before = values(mgn.backbone.conv1.weight.val());
    assert!(mgn.load_trunk(&trunk).is_err());
    assert_eq!(values(mgn.backbone.conv1.weight.val()), before);
}
