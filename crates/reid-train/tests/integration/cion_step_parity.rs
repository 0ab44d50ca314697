//! Twelve whole CION training steps against CION's own code: the fixtures
//! (`tests/fixtures/cion_step/`, written by `tools/gen_cion_step_fixtures.py`
//! from CION_ReIDZoo `CION_Pretrain/` at commit 7ac6fd7) ran upstream's loss,
//! head, ResNet-IBN blocks, schedules, AdamW parameter groups, gradient
//! clipping, last-layer freeze and teacher EMA on fixed crops. Our
//! [`CionTrainer`], started from the same weights and fed the same crops,
//! must give the same per-step losses and schedules (1e-4 relative) and the
//! same final student, teacher (parameters and BatchNorm statistics) and
//! center (max abs difference / max abs ≤ 1e-4, every tensor, or — for the
//! few tensors that are rounding noise — within twice PyTorch's own float32
//! error against a float64 run of the same steps).
//!
//! The run crosses the learning-rate warm-up (steps 0–3), the head's
//! last-layer unfreeze (step 6) and a change of K from 2 to 4 (step 8).

use crate::common;

use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use common::parity::{Tally, close, compare, crop, expected, floats, linear, tensor2, tensors};
use ndarray::{Array, IxDyn};
use ndarray_npy::NpzReader;
use reid_backbones::{IbnMode, ImportOptions, ResNet, ResNetConfig, ResNetDepth, load_backbone};
use reid_data::sampler_identity::KSchedule;
use reid_losses::dino::{DinoHead, WeightNormLinear};
use reid_train::CionConfig;
use reid_train::pretrain::cion::{CionTrainer, student_with};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cion_step")
}

/// The fixture's configuration as ours (run.py's argument values).
fn config(c: &Value) -> CionConfig {
    let f = |k: &str| c[k].as_f64().unwrap();
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    let pair = |k: &str| {
        [
            c[k][0].as_u64().unwrap() as u32,
            c[k][1].as_u64().unwrap() as u32,
        ]
    };
    CionConfig::default()
        .with_global_size(pair("global_size"))
        .with_local_size(pair("local_size"))
        .with_local_crops(u("local_crops"))
        .with_batch_size(u("batch_size"))
        .with_k_schedule(KSchedule {
            epochs: c["gradual_epochs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect(),
            instances: c["gradual_instances"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect(),
        })
        .with_epochs(u("epochs"))
        .with_lr(f("lr"))
        .with_min_lr(f("min_lr"))
        .with_warmup_epochs(u("warmup_epochs"))
        .with_weight_decay(f("weight_decay"))
        .with_weight_decay_end(f("weight_decay_end"))
        .with_momentum_teacher(f("momentum_teacher"))
        .with_clip_grad(f("clip_grad"))
        .with_freeze_last_layer(u("freeze_last_layer"))
        .with_head_hidden_dim(u("head_hidden_dim"))
        .with_head_bottleneck_dim(u("head_bottleneck_dim"))
        .with_out_dim(u("out_dim"))
        .with_student_temp(f("student_temp"))
        .with_teacher_temp(f("teacher_temp"))
        .with_center_momentum(f("center_momentum"))
}

/// CION's ResNet-IBN-a of the fixture: one basic block per stage.
fn backbone(width: usize, file: &str, device: &Device) -> ResNet {
    let mut net = ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks: [1, 1, 1, 1],
            bottleneck: false,
        })
        .with_base_width(width)
        .with_last_stride(1)
        .with_ibn(Some(IbnMode::A))
        .init(device)
        .unwrap();
    load_backbone(&mut net, dir().join(file), &ImportOptions::default()).unwrap();
    net
}

/// A [`DinoHead`] holding the fixture's head `prefix` (`init.`, `student.`, …).
fn head(prefix: &str, device: &Device) -> DinoHead {
    let t = tensors(&dir().join("heads.safetensors"), prefix);
    let mlp = [0, 2, 4]
        .iter()
        .map(|i| {
            linear(
                &t[&format!("mlp.{i}.weight")],
                &t[&format!("mlp.{i}.bias")],
                device,
            )
        })
        .collect();
    let (gs, g) = &t["last_layer.weight_g"];
    let (vs, v) = &t["last_layer.weight_v"];
    DinoHead {
        mlp,
        bn: Vec::new(),
        last_layer: WeightNormLinear::new(tensor2(gs, g, device), tensor2(vs, v, device)),
    }
}

#[test]
fn twelve_cion_steps_match_cion_run_py() {
    let exp = expected(&dir());
    let cfg = config(&exp["config"]);
    let width = exp["config"]["width"].as_u64().unwrap() as usize;
    let spe = exp["config"]["steps_per_epoch"].as_u64().unwrap() as usize;
    let device = Device::flex().autodiff();

    // Loaded on the plain device; `student_with` moves it onto the autodiff
    // one as trainable leaves.
    let init = backbone(width, "init_backbone.safetensors", &Device::flex());
    let mut student = student_with(&cfg, init, &device).unwrap();
    student.head = head("init.", &device);
    let mut trainer = CionTrainer::new(&cfg, student, vec![spe; cfg.epochs], &device).unwrap();

    let mut npz = NpzReader::new(File::open(dir().join("crops.npz")).unwrap()).unwrap();
    let global: Array<u8, IxDyn> = npz.by_name("global").unwrap();
    let local: Array<u8, IxDyn> = npz.by_name("local").unwrap();

    let steps = exp["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12);
    let mut worst_loss: f64 = 0.0;
    for (i, want) in steps.iter().enumerate() {
        let epoch = want["epoch"].as_u64().unwrap() as usize;
        let k = want["k"].as_u64().unwrap() as usize;
        let mut crops: Vec<_> = (0..global.shape()[1])
            .map(|v| crop(&global, &[i, v], &device))
            .collect();
        crops.extend((0..local.shape()[1]).map(|v| crop(&local, &[i, v], &device)));
        let line = trainer.step(epoch, i, &crops, k).unwrap();
        for key in ["loss", "lr", "wd", "teacher_momentum"] {
            let rel = close(
                &format!("step {i} {key}"),
                line.get(key).unwrap(),
                want[key].as_f64().unwrap(),
            );
            if key == "loss" {
                worst_loss = worst_loss.max(rel);
            }
        }
        assert_eq!(line.get("k"), Some(k as f64), "step {i}: K");
    }

    let center: Vec<f32> = exp["center"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let ours_center: Vec<f32> = trainer.center.value().into_data().iter::<f32>().collect();
    let center64: Vec<f32> = exp["center64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let mut tally = Tally::default();
    tally.add(compare(
        "center",
        &[("center".into(), ours_center)],
        &[("center".into(), center)],
        &[("center".into(), center64)],
    ));
    let (student, teacher) = trainer.into_networks();
    for (name, net) in [("student", &student), ("teacher", &teacher)] {
        let want = backbone(
            width,
            &format!("final_{name}_backbone.safetensors"),
            &Device::flex(),
        );
        let want64 = backbone(
            width,
            &format!("final_{name}64_backbone.safetensors"),
            &Device::flex(),
        );
        for r in [
            compare(
                &format!("{name} backbone"),
                &floats(&net.backbone.clone().valid()),
                &floats(&want.valid()),
                &floats(&want64.valid()),
            ),
            compare(
                &format!("{name} head"),
                &floats(&net.head),
                &floats(&head(&format!("{name}."), &device)),
                &floats(&head(&format!("{name}64."), &device)),
            ),
        ] {
            tally.add(r);
        }
    }
    tally.report(worst_loss, "");
}

/// Crops of other batch sizes or a batch that is not whole identities are
/// errors naming the problem, not panics.
#[test]
fn inconsistent_crops_are_errors() {
    let exp = expected(&dir());
    let cfg = config(&exp["config"]);
    let width = exp["config"]["width"].as_u64().unwrap() as usize;
    let device = Device::flex().autodiff();
    let init = backbone(width, "init_backbone.safetensors", &Device::flex());
    let student = student_with(&cfg, init, &device).unwrap();
    let mut trainer = CionTrainer::new(&cfg, student, vec![2; cfg.epochs], &device).unwrap();
    let crop = |b: usize| Tensor::<4>::zeros([b, 3, 48, 24], &device);
    let e = trainer.step(0, 0, &[crop(8), crop(6)], 2).unwrap_err();
    assert!(e.to_string().contains("crop 1"), "{e}");
    let e = trainer.step(0, 0, &[crop(6), crop(6)], 4).unwrap_err();
    assert!(e.to_string().contains("K = 4"), "{e}");
    let e = trainer.step(0, 0, &[crop(8)], 2).unwrap_err();
    assert!(e.to_string().contains("2 global crops"), "{e}");
}
