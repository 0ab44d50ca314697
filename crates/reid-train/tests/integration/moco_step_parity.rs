//! Twelve whole MoCo v2 training steps against LUPerson's own code: the
//! fixtures (`tests/fixtures/moco_step/`, written by
//! `tools/gen_moco_step_fixtures.py` from LUPerson `lup_moco/` at commit
//! d5fa344) ran upstream's `MoCo` module (query and key encoders with the
//! MLP head, momentum update, queue and its wrap), its cosine learning rate
//! and PyTorch's SGD on fixed views. Our [`MocoTrainer`], started from the
//! same weights and queue and fed the same views, must give the same
//! per-step losses, learning rates and accuracies (1e-4 relative), and the
//! same final query and key encoders (parameters and BatchNorm statistics)
//! and queue (max abs difference / max abs ≤ 1e-4 every tensor, or within
//! twice PyTorch's own float32 error against a float64 run).
//!
//! The run crosses the queue's wrap (step 2; at step 4 the pointer lands
//! exactly on K) and a learning-rate change at every epoch (2 steps each).

use crate::common;

use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use common::parity::{Tally, close, compare, crop, expected, floats, linear, tensors, transpose};
use ndarray::{Array, IxDyn};
use ndarray_npy::NpzReader;
use reid_backbones::{ImportOptions, ResNet, ResNetConfig, ResNetDepth, load_backbone};
use reid_losses::moco::{InfoNceQueue, QueueState};
use reid_train::MocoConfig;
use reid_train::pretrain::moco::{MocoNet, MocoTrainer, encoder_with};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/moco_step")
}

/// The fixture's configuration as ours (lup_moco.py's argument values).
fn config(c: &Value) -> MocoConfig {
    let f = |k: &str| c[k].as_f64().unwrap();
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    MocoConfig::default()
        .with_size([
            c["size"][0].as_u64().unwrap() as u32,
            c["size"][1].as_u64().unwrap() as u32,
        ])
        .with_batch_size(u("batch_size"))
        .with_bn_groups(1)
        .with_epochs(u("epochs"))
        .with_lr(f("lr"))
        .with_cosine(true)
        .with_momentum(f("momentum"))
        .with_weight_decay(f("weight_decay"))
        .with_mlp_hidden_dim(32 * u("width"))
        .with_dim(u("dim"))
        .with_queue_size(u("queue_size"))
        .with_key_momentum(f("key_momentum"))
        .with_temperature(f("temperature"))
}

/// torchvision's ResNet of the fixture: one Bottleneck per stage.
fn backbone(width: usize, file: &str) -> ResNet {
    let mut net = ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks: [1, 1, 1, 1],
            bottleneck: true,
        })
        .with_base_width(width)
        .with_last_stride(2)
        .init(&Device::flex())
        .unwrap();
    load_backbone(&mut net, dir().join(file), &ImportOptions::default()).unwrap();
    net
}

/// The MLP head `name` (`init`, `query`, `key64`, …) of `heads.safetensors`
/// as our `(fc1, fc2)` float tensors, or set into `net`.
fn head_floats(name: &str, device: &Device) -> Vec<(String, Vec<f32>)> {
    let t = tensors(&dir().join("heads.safetensors"), &format!("{name}.fc."));
    let mut out = floats(&linear(&t["0.weight"], &t["0.bias"], device));
    out.extend(floats(&linear(&t["2.weight"], &t["2.bias"], device)));
    out
}

fn set_head(net: &mut MocoNet, name: &str, device: &Device) {
    let t = tensors(&dir().join("heads.safetensors"), &format!("{name}.fc."));
    net.fc1 = linear(&t["0.weight"], &t["0.bias"], device);
    net.fc2 = linear(&t["2.weight"], &t["2.bias"], device);
}

/// Upstream's queue `name` (`[dim, K]`) as our `[K, dim]` keys.
fn queue_keys(name: &str) -> Vec<f32> {
    let t = tensors(&dir().join("queues.safetensors"), "");
    let (shape, values) = &t[name];
    transpose(shape, values)
}

#[test]
fn twelve_moco_steps_match_lup_moco() {
    let exp = expected(&dir());
    let cfg = config(&exp["config"]);
    let width = exp["config"]["width"].as_u64().unwrap() as usize;
    let device = Device::flex().autodiff();

    let mut query = encoder_with(&cfg, backbone(width, "init_backbone.safetensors"), &device);
    set_head(&mut query, "init", &device);
    let queue = InfoNceQueue::from_state(
        &QueueState {
            size: cfg.queue_size,
            dim: cfg.dim,
            keys: queue_keys("init"),
            ids: vec![-1; cfg.queue_size],
            ptr: 0,
        },
        &device,
    )
    .unwrap();
    let mut trainer = MocoTrainer::new(&cfg, query, queue, &device).unwrap();

    let mut npz = NpzReader::new(File::open(dir().join("crops.npz")).unwrap()).unwrap();
    let q: Array<u8, IxDyn> = npz.by_name("q").unwrap();
    let k: Array<u8, IxDyn> = npz.by_name("k").unwrap();
    let steps = exp["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12);
    let mut worst_loss: f64 = 0.0;
    for (i, want) in steps.iter().enumerate() {
        let epoch = want["epoch"].as_u64().unwrap() as usize;
        let line = trainer
            .step(epoch, i, crop(&q, &[i], &device), crop(&k, &[i], &device))
            .unwrap();
        for key in ["loss", "lr"] {
            let rel = close(
                &format!("step {i} {key}"),
                line.get(key).unwrap(),
                want[key].as_f64().unwrap(),
            );
            if key == "loss" {
                worst_loss = worst_loss.max(rel);
            }
        }
        for key in ["acc1", "acc5"] {
            // Ours a fraction of the batch, upstream's a percentage.
            let got = line.get(key).unwrap() * 100.0;
            close(&format!("step {i} {key}"), got, want[key].as_f64().unwrap());
        }
    }

    let queue = trainer.queue.state();
    assert_eq!(
        queue.ptr,
        exp["queue_ptr"].as_u64().unwrap() as usize,
        "queue pointer"
    );
    let mut tally = Tally::default();
    tally.add(compare(
        "queue",
        &[("queue".into(), queue.keys)],
        &[("queue".into(), queue_keys("final"))],
        &[("queue".into(), queue_keys("final64"))],
    ));
    let (query, key) = trainer.into_networks();
    for (name, net) in [("query", &query), ("key", &key)] {
        let want = backbone(width, &format!("final_{name}_backbone.safetensors"));
        let want64 = backbone(width, &format!("final_{name}64_backbone.safetensors"));
        let mut ours_head = floats(&net.fc1);
        ours_head.extend(floats(&net.fc2));
        for r in [
            compare(
                &format!("{name} backbone"),
                &floats(&net.backbone.clone().valid()),
                &floats(&want.valid()),
                &floats(&want64.valid()),
            ),
            compare(
                &format!("{name} head"),
                &ours_head,
                &head_floats(name, &device),
                &head_floats(&format!("{name}64"), &device),
            ),
        ] {
            tally.add(r);
        }
    }
    tally.report(worst_loss, "");
}

/// Views of other shapes and a queue of another size are errors naming the
/// problem, not panics.
#[test]
fn inconsistent_views_and_queue_are_errors() {
    let exp = expected(&dir());
    let cfg = config(&exp["config"]);
    let width = exp["config"]["width"].as_u64().unwrap() as usize;
    let device = Device::flex().autodiff();
    let query = encoder_with(&cfg, backbone(width, "init_backbone.safetensors"), &device);
    let small = InfoNceQueue::new(cfg.queue_size - 1, cfg.dim, 0, &device).unwrap();
    let e = MocoTrainer::new(&cfg, query.clone(), small, &device)
        .err()
        .unwrap();
    assert!(e.to_string().contains("queue_size"), "{e}");
    let queue = InfoNceQueue::new(cfg.queue_size, cfg.dim, 0, &device).unwrap();
    let mut trainer = MocoTrainer::new(&cfg, query, queue, &device).unwrap();
    let view = |b: usize| burn::tensor::Tensor::<4>::zeros([b, 3, 48, 24], &device);
    let e = trainer.step(0, 0, view(8), view(6)).unwrap_err();
    assert!(e.to_string().contains("two views"), "{e}");
}
