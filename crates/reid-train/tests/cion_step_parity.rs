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

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
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

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
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
    CionConfig {
        global_size: pair("global_size"),
        local_size: pair("local_size"),
        local_crops: u("local_crops"),
        batch_size: u("batch_size"),
        k_schedule: KSchedule {
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
        },
        epochs: u("epochs"),
        lr: f("lr"),
        min_lr: f("min_lr"),
        warmup_epochs: u("warmup_epochs"),
        weight_decay: f("weight_decay"),
        weight_decay_end: f("weight_decay_end"),
        momentum_teacher: f("momentum_teacher"),
        clip_grad: f("clip_grad"),
        freeze_last_layer: u("freeze_last_layer"),
        head_hidden_dim: u("head_hidden_dim"),
        head_bottleneck_dim: u("head_bottleneck_dim"),
        out_dim: u("out_dim"),
        student_temp: f("student_temp"),
        teacher_temp: f("teacher_temp"),
        center_momentum: f("center_momentum"),
        ..CionConfig::default()
    }
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

/// The head tensors of `heads.safetensors` under `prefix` (PyTorch layout).
fn head_tensors(prefix: &str) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(dir().join("heads.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .filter_map(|(name, view)| {
            let rest = name.strip_prefix(prefix)?.to_string();
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Some((rest, (view.shape().to_vec(), values)))
        })
        .collect()
}

fn tensor2(shape: &[usize], values: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [shape[0], shape[1]]),
        device,
    )
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
fn transpose(shape: &[usize], values: &[f32]) -> Vec<f32> {
    let (r, c) = (shape[0], shape[1]);
    (0..c * r).map(|i| values[(i % r) * c + i / r]).collect()
}

/// A [`DinoHead`] holding the fixture's head `prefix` (`init.`, `student.`, …).
fn head(prefix: &str, device: &Device) -> DinoHead {
    let t = head_tensors(prefix);
    let mlp = [0, 2, 4]
        .iter()
        .map(|i| {
            let (ws, w) = &t[&format!("mlp.{i}.weight")];
            let (_, b) = &t[&format!("mlp.{i}.bias")];
            Linear {
                // PyTorch [out, in] → burn [in, out], transposed on the host
                // so the parameter is a leaf.
                weight: Param::from_tensor(tensor2(&[ws[1], ws[0]], &transpose(ws, w), device)),
                bias: Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(b.clone(), [b.len()]),
                    device,
                ))),
            }
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

/// Every float tensor of `module` (parameters and BatchNorm statistics), in
/// walk order, with its path.
fn floats<M: Module>(module: &M) -> Vec<(String, Vec<f32>)> {
    struct Collect {
        path: Vec<String>,
        out: Vec<(String, Vec<f32>)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let v = param.val().into_data().iter::<f32>().collect();
            self.out.push((self.path.join("."), v));
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// `max |a − b| / max |b|` of two tensors.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, x| m.max(x.abs() as f64)).max(1e-12);
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    diff / scale
}

/// Compares our tensors with PyTorch's float32 result, tensor by tensor:
/// `max |ours − torch| / max |torch|` must be ≤ 1e-4, or — for tensors whose
/// values are rounding noise (a BatchNorm bias whose gradient cancels, which
/// Adam's normalised step turns into full-size moves) — no larger than
/// twice PyTorch's own float32 error against its float64 run of the same
/// steps. Returns the worst `ours vs torch` ratio and how many tensors
/// needed the noise floor.
fn compare(
    what: &str,
    ours: &[(String, Vec<f32>)],
    torch32: &[(String, Vec<f32>)],
    torch64: &[(String, Vec<f32>)],
) -> (f64, usize) {
    assert_eq!(ours.len(), torch32.len(), "{what}: tensor count");
    assert_eq!(ours.len(), torch64.len(), "{what}: tensor count (float64)");
    let verbose = std::env::var("CION_PARITY_VERBOSE").is_ok();
    let (mut worst, mut floored) = (0f64, 0);
    for (((name, a), (_, b)), (_, c)) in ours.iter().zip(torch32).zip(torch64) {
        assert_eq!(a.len(), b.len(), "{what} {name}: size");
        let rel = rel_err(a, b);
        let (ours64, torch_noise) = (rel_err(a, c), rel_err(b, c));
        if verbose {
            eprintln!(
                "{what} {name}: vs torch f32 {rel:.2e}; vs f64 ours {ours64:.2e}, torch f32 {torch_noise:.2e}"
            );
        }
        if rel > 1e-4 {
            floored += 1;
            assert!(
                ours64 <= 2.0 * torch_noise + 1e-6,
                "{what} {name}: {rel:.3e} from torch float32, {ours64:.3e} from float64 \
                 (torch float32 itself: {torch_noise:.3e})"
            );
        }
        worst = worst.max(rel);
    }
    (worst, floored)
}

/// `[steps, crops, B, 3, h, w]` bytes → the crops of `step`, `(q − 128)/64`.
fn crops_of(array: &Array<u8, IxDyn>, step: usize, device: &Device) -> Vec<Tensor<4>> {
    let s = array.shape();
    let (n, b, h, w) = (s[1], s[2], s[4], s[5]);
    (0..n)
        .map(|v| {
            let values: Vec<f32> = array
                .index_axis(ndarray::Axis(0), step)
                .index_axis(ndarray::Axis(0), v)
                .iter()
                .map(|&q| (q as f32 - 128.0) / 64.0)
                .collect();
            Tensor::from_data(TensorData::new(values, [b, 3, h, w]), device)
        })
        .collect()
}

#[test]
fn twelve_cion_steps_match_cion_run_py() {
    let exp = expected();
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
        let mut crops = crops_of(&global, i, &device);
        crops.extend(crops_of(&local, i, &device));
        let line = trainer.step(epoch, i, &crops, k).unwrap();
        for key in ["loss", "lr", "wd", "teacher_momentum"] {
            let (got, w) = (line.get(key).unwrap(), want[key].as_f64().unwrap());
            let rel = (got - w).abs() / w.abs().max(1e-12);
            assert!(
                rel <= 1e-4 || (got - w).abs() <= 1e-12,
                "step {i} {key}: ours {got} upstream {w} (rel {rel:.2e})"
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
    let (mut worst, mut floored) = compare(
        "center",
        &[("center".into(), ours_center)],
        &[("center".into(), center)],
        &[("center".into(), center64)],
    );
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
        for (w, f) in [
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
            worst = worst.max(w);
            floored += f;
        }
    }
    eprintln!(
        "worst per-step loss rel. error {worst_loss:.2e}; worst final tensor {worst:.2e}; \
         {floored} tensors at PyTorch's own float32 noise"
    );
}

/// Crops of other batch sizes or a batch that is not whole identities are
/// errors naming the problem, not panics.
#[test]
fn inconsistent_crops_are_errors() {
    let exp = expected();
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
