//! Twelve whole MoCo v2 training steps against LUPerson's own code: the
//! fixtures (`tests/fixtures/moco_step/`, written by
//! `tools/fixtures/gen_moco_step_fixtures.py` from LUPerson `lup_moco/` at commit
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
use std::path::PathBuf;

use burn::tensor::Device;
use common::parity::{
    Fixture, Tally, close, compare, config_from, crop, fixture_dir, floats, linear,
    one_block_resnet, run_steps, tensors, transpose, usize_at,
};
use ndarray::{Array, IxDyn};
use ndarray_npy::NpzReader;
use reid_backbones::{ImportOptions, ResNet, load_backbone};
use reid_losses::moco::{InfoNceQueue, QueueState};
use reid_train::MocoConfig;
use reid_train::pretrain::moco::{MocoNet, MocoTrainer, encoder_with};
use serde_json::Value;

fn dir() -> PathBuf {
    fixture_dir("moco_step")
}

/// The fixture's configuration as ours (lup_moco.py's argument values).
fn config(c: &Value) -> MocoConfig {
    let keys = "size batch_size epochs lr momentum weight_decay dim queue_size key_momentum \
        temperature";
    config_from::<MocoConfig>(c, keys)
        .with_bn_groups(1)
        .with_cosine(true)
        .with_mlp_hidden_dim(32 * usize_at(c, "width"))
}

/// torchvision's ResNet of the fixture: one Bottleneck per stage.
fn backbone(width: usize, file: &str) -> ResNet {
    let mut net = one_block_resnet(width, true).init(&Device::flex()).unwrap();
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
    let Fixture { exp, cfg, width } = Fixture::read(&dir(), config);
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
    let worst_loss = run_steps(&exp, &["loss", "lr"], |i, epoch, want| {
        let (q, k) = (crop(&q, &[i], &device), crop(&k, &[i], &device));
        let line = trainer.step(epoch, i, q, k).unwrap();
        for key in ["acc1", "acc5"] {
            // Ours a fraction of the batch, upstream's a percentage.
            let got = line.get(key).unwrap() * 100.0;
            close(&format!("step {i} {key}"), got, want[key].as_f64().unwrap());
        }
        line
    });

    let queue = trainer.queue.state();
    assert_eq!(queue.ptr, usize_at(&exp, "queue_ptr"), "queue pointer");
    let mut tally = Tally::default();
    tally.add(compare(
        "queue",
        &[("queue".into(), queue.keys)],
        &[("queue".into(), queue_keys("final"))],
        &[("queue".into(), queue_keys("final64"))],
    ));
    let (query, key) = trainer.into_networks();
    for (name, net) in [("query", &query), ("key", &key)] {
        let want = |run: &str| backbone(width, &format!("final_{name}{run}_backbone.safetensors"));
        let mut ours_head = floats(&net.fc1);
        ours_head.extend(floats(&net.fc2));
        let heads = [
            ours_head,
            head_floats(name, &device),
            head_floats(&format!("{name}64"), &device),
        ];
        tally.add_network(name, [&net.backbone, &want(""), &want("64")], heads);
    }
    tally.report(worst_loss, "");
}

/// Views of other shapes and a queue of another size are errors naming the
/// problem, not panics.
#[test]
fn inconsistent_views_and_queue_are_errors() {
    let Fixture { cfg, width, .. } = Fixture::read(&dir(), config);
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
