//! Twelve whole CION training steps against CION's own code: the fixtures
//! (`tests/fixtures/cion_step/`, written by `tools/fixtures/gen_cion_step_fixtures.py`
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
use std::path::PathBuf;

use burn::tensor::{Device, Tensor};
use common::parity::{
    Fixture, Tally, compare, config_from, crop, fixture_dir, floats, linear, one_block_resnet,
    run_steps, tensor2, tensors, usize_at,
};
use ndarray::{Array, IxDyn};
use ndarray_npy::NpzReader;
use reid_backbones::{IbnMode, ImportOptions, ResNet, load_backbone};
use reid_losses::dino::{DinoHead, WeightNormLinear};
use reid_train::CionConfig;
use reid_train::pretrain::cion::{CionTrainer, student_with};
use serde_json::Value;

fn dir() -> PathBuf {
    fixture_dir("cion_step")
}

/// The fixture's configuration as ours (run.py's argument values).
fn config(c: &Value) -> CionConfig {
    let keys = "global_size local_size local_crops batch_size epochs lr min_lr warmup_epochs \
        weight_decay weight_decay_end momentum_teacher clip_grad freeze_last_layer \
        head_hidden_dim head_bottleneck_dim out_dim student_temp teacher_temp \
        center_momentum";
    let k_schedule = serde_json::json!({
        "epochs": c["gradual_epochs"],
        "instances": c["gradual_instances"],
    });
    config_from::<CionConfig>(c, keys).with_k_schedule(serde_json::from_value(k_schedule).unwrap())
}

/// CION's ResNet-IBN-a of the fixture: one basic block per stage.
fn backbone(width: usize, file: &str, device: &Device) -> ResNet {
    let config = one_block_resnet(width, false).with_last_stride(1);
    let mut net = config.with_ibn(Some(IbnMode::A)).init(device).unwrap();
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
    let Fixture { exp, cfg, width } = Fixture::read(&dir(), config);
    let spe = usize_at(&exp["config"], "steps_per_epoch");
    let device = Device::flex().autodiff();
    let mut trainer = trainer(&cfg, width, vec![spe; cfg.epochs], &device);

    let mut npz = NpzReader::new(File::open(dir().join("crops.npz")).unwrap()).unwrap();
    let global: Array<u8, IxDyn> = npz.by_name("global").unwrap();
    let local: Array<u8, IxDyn> = npz.by_name("local").unwrap();
    let keys = ["loss", "lr", "wd", "teacher_momentum"];
    let worst_loss = run_steps(&exp, &keys, |i, epoch, want| {
        let k = usize_at(want, "k");
        let mut crops: Vec<_> = (0..global.shape()[1])
            .map(|v| crop(&global, &[i, v], &device))
            .collect();
        crops.extend((0..local.shape()[1]).map(|v| crop(&local, &[i, v], &device)));
        let line = trainer.step(epoch, i, &crops, k).unwrap();
        assert_eq!(line.get("k"), Some(k as f64), "step {i}: K");
        line
    });

    let floats_at = |key: &str| -> Vec<f32> {
        let values = exp[key].as_array().unwrap();
        values.iter().map(|v| v.as_f64().unwrap() as f32).collect()
    };
    let ours_center: Vec<f32> = trainer.center.value().into_data().iter::<f32>().collect();
    let mut tally = Tally::default();
    tally.add(compare(
        "center",
        &[("center".into(), ours_center)],
        &[("center".into(), floats_at("center"))],
        &[("center".into(), floats_at("center64"))],
    ));
    let (student, teacher) = trainer.into_networks();
    for (name, net) in [("student", &student), ("teacher", &teacher)] {
        let want = |run: &str| {
            let file = format!("final_{name}{run}_backbone.safetensors");
            backbone(width, &file, &Device::flex())
        };
        let heads = [
            floats(&net.head),
            floats(&head(&format!("{name}."), &device)),
            floats(&head(&format!("{name}64."), &device)),
        ];
        tally.add_network(name, [&net.backbone, &want(""), &want("64")], heads);
    }
    tally.report(worst_loss, "");
}

/// A trainer started from the fixture's initial weights (`init.` head),
/// with `steps_per_epoch`.
fn trainer(
    cfg: &CionConfig,
    width: usize,
    steps_per_epoch: Vec<usize>,
    device: &Device,
) -> CionTrainer {
    // Loaded on the plain device; `student_with` moves it onto the autodiff
    // one as trainable leaves.
    let init = backbone(width, "init_backbone.safetensors", &Device::flex());
    let mut student = student_with(cfg, init, device).unwrap();
    student.head = head("init.", device);
    CionTrainer::new(cfg, student, steps_per_epoch, device).unwrap()
}

/// Crops of other batch sizes or a batch that is not whole identities are
/// errors naming the problem, not panics.
#[test]
fn inconsistent_crops_are_errors() {
    let Fixture { cfg, width, .. } = Fixture::read(&dir(), config);
    let device = Device::flex().autodiff();
    let mut trainer = trainer(&cfg, width, vec![2; cfg.epochs], &device);
    let crop = |b: usize| Tensor::<4>::zeros([b, 3, 48, 24], &device);
    let e = trainer.step(0, 0, &[crop(8), crop(6)], 2).unwrap_err();
    assert!(e.to_string().contains("crop 1"), "{e}");
    let e = trainer.step(0, 0, &[crop(6), crop(6)], 4).unwrap_err();
    assert!(e.to_string().contains("K = 4"), "{e}");
    let e = trainer.step(0, 0, &[crop(8)], 2).unwrap_err();
    assert!(e.to_string().contains("2 global crops"), "{e}");
}
