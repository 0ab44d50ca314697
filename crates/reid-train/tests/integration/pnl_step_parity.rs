//! Twelve whole PNL training steps against LUPerson-NL's own code: the
//! fixtures (`tests/fixtures/pnl_step/`, written by
//! `tools/fixtures/gen_pnl_step_fixtures.py` from LUPerson-NL `PNL/` at commit
//! 6b9298e) ran upstream's `PNL` module (query and key encoders, momentum
//! update, shuffle-BN, queue with labels, prototypes, label correction),
//! `MoCoEncoder`, and `lup_pnl.py`'s `train` and `adjust_learning_rate`
//! with SGD, on fixed crops. Our [`PnlTrainer`], started from the same
//! weights, queue and prototypes and fed the same crops and labels, must give
//! the same per-step losses (each term, 1e-4 relative), learning rates,
//! corrected-label counts and queue pointers, and the same final query and
//! key encoders (parameters and BatchNorm statistics), queue (keys, labels,
//! pointer) and prototypes (max abs difference / max abs ≤ 1e-4, every
//! tensor, or within twice PyTorch's own float32 error against a float64 run
//! of the same steps).
//!
//! The run crosses the prototype loss (step 2), label correction (step 4),
//! label-guided contrast (step 6), the learning-rate steps (steps 8 and 10)
//! and the queue's wrap (20 slots, batches of 16).

use crate::common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use common::parity::{
    Fixture, Tally, compare, config_from, fixture_dir, floats, one_block_resnet, run_steps,
    transpose, usize_at,
};
use ndarray::{Array, Axis, IxDyn};
use ndarray_npy::NpzReader;
use reid_backbones::{ImportOptions, ResNet, WeightsFormat, load_backbone};
use reid_losses::moco::{InfoNceQueue, QueueState};
use reid_losses::pnl::{PrototypeBank, PrototypeState};
use reid_train::PnlConfig;
use reid_train::pretrain::pnl::{PnlTrainer, encoder_with};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

fn dir() -> PathBuf {
    fixture_dir("pnl_step")
}

/// The fixture's configuration as ours (`lup_pnl.py`'s argument values).
fn config(c: &Value) -> PnlConfig {
    let keys = "size batch_size bn_groups epochs lr lr_milestones lr_gamma momentum \
        weight_decay cls_dim mlp_hidden_dim dim queue_size key_momentum proto_momentum \
        temperature alpha threshold start_clean_epoch start_supcont_epoch \
        start_proto_epoch";
    config_from::<PnlConfig>(c, keys)
        .with_base_width(usize_at(c, "width"))
        .with_last_stride(2)
}

/// One tensor of a safetensors file: dtype, shape, little-endian bytes.
type Raw = (Dtype, Vec<usize>, Vec<u8>);

/// Every tensor of a fixture file, by upstream name.
fn tensors(file: &str) -> BTreeMap<String, Raw> {
    let bytes = std::fs::read(dir().join(file)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, v)| (name, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect()
}

fn f32s(raw: &Raw) -> Vec<f32> {
    assert_eq!(raw.0, Dtype::F32);
    raw.2
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn i64s(raw: &Raw) -> Vec<i64> {
    assert_eq!(raw.0, Dtype::I64);
    raw.2
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The PNL encoder's branches (not part of the trunk).
const HEADS: [&str; 4] = ["embed_fc", "classifier", "fc1", "fc2"];

/// A torchvision ResNet of Bottleneck blocks [1, 1, 1, 1] at the fixture's
/// width, last stride 2 (upstream's `resnet50` family).
fn resnet(width: usize) -> ResNet {
    one_block_resnet(width, true).init(&Device::flex()).unwrap()
}

/// Loads the trunk of encoder `prefix` (`encoder_q.` or `encoder_k.`) of
/// `file` into `net` with `load_backbone`: the encoder's tensors are written
/// to a temporary file as an `encoder_q` snapshot (LUPerson-NL's layout).
/// With `partial`, tensors the file lacks keep `net`'s values; returns
/// whether the file had any trunk tensor of the encoder.
fn load_trunk(net: &mut ResNet, file: &str, prefix: &str, partial: bool) -> bool {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let all = tensors(file);
    let kept: Vec<(String, &Raw)> = all
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(prefix)?;
            let root = rest.split('.').next().unwrap_or(rest);
            (!HEADS.contains(&root)).then(|| (format!("encoder_q.{rest}"), v))
        })
        .collect();
    if kept.is_empty() {
        return false;
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = kept
        .iter()
        .map(|(k, (dtype, shape, data))| {
            let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap();
            (k.clone(), view)
        })
        .collect();
    let path = std::env::temp_dir().join(format!(
        "pnl_step_parity-{}-{}.safetensors",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    safetensors::tensor::serialize_to_file(views, None, &path).unwrap();
    let options = ImportOptions::default()
        .with_format(WeightsFormat::Lup)
        .with_allow_missing(if partial {
            vec!["*".into()]
        } else {
            Vec::new()
        });
    let loaded = load_backbone(net, &path, &options);
    std::fs::remove_file(&path).unwrap();
    loaded.unwrap();
    true
}

/// The trunk of encoder `prefix` after the float32 run, and the same with
/// the float64 run's values where `final64.safetensors` has them.
fn final_trunks(width: usize, prefix: &str) -> (ResNet, ResNet) {
    let mut f32_net = resnet(width);
    load_trunk(&mut f32_net, "final.safetensors", prefix, false);
    let mut f64_net = resnet(width);
    load_trunk(&mut f64_net, "final.safetensors", prefix, false);
    load_trunk(&mut f64_net, "final64.safetensors", prefix, true);
    (f32_net, f64_net)
}

/// A [`Linear`] holding upstream's `name` (`[out, in]` weight and bias).
fn linear(t: &BTreeMap<String, Raw>, name: &str, device: &Device) -> Linear {
    let w = &t[&format!("{name}.weight")];
    let b = f32s(&t[&format!("{name}.bias")]);
    let (out, inp) = (w.1[0], w.1[1]);
    Linear {
        // Transposed on the host, so the parameter is a leaf.
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(transpose(&w.1, &f32s(w)), [inp, out]),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [out]),
            device,
        ))),
    }
}

/// The crops `indices` of a `[N, 3, h, w]` byte array, `(q − 128)/64`.
fn crops(array: &Array<u8, IxDyn>, indices: &[usize], device: &Device) -> Tensor<4> {
    let s = array.shape();
    let (h, w) = (s[2], s[3]);
    let values: Vec<f32> = indices
        .iter()
        .flat_map(|&i| {
            array
                .index_axis(Axis(0), i)
                .iter()
                .map(|&q| (q as f32 - 128.0) / 64.0)
                .collect::<Vec<_>>()
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [indices.len(), 3, h, w]), device)
}

/// A trainer holding the fixture's starting point: `init.safetensors`'s
/// `encoder_q` (trunk and branches), queue and prototypes.
fn trainer(cfg: &PnlConfig, width: usize, classes: usize, device: &Device) -> PnlTrainer {
    let mut trunk = resnet(width);
    assert!(load_trunk(
        &mut trunk,
        "init.safetensors",
        "encoder_q.",
        false
    ));
    let init = tensors("init.safetensors");
    let mut query = encoder_with(cfg, trunk, classes, device);
    query.cls_embed = linear(&init, "encoder_q.embed_fc", device);
    query.cls_out = linear(&init, "encoder_q.classifier", device);
    query.fc1 = linear(&init, "encoder_q.fc1", device);
    query.fc2 = linear(&init, "encoder_q.fc2", device);
    let q = &init["queue"];
    let queue = InfoNceQueue::from_state(
        &QueueState {
            size: cfg.queue_size,
            dim: cfg.dim,
            // Upstream keeps the keys as columns, [dim, K].
            keys: transpose(&q.1, &f32s(q)),
            ids: i64s(&init["queue_id"]),
            ptr: i64s(&init["queue_ptr"])[0] as usize,
        },
        device,
    )
    .unwrap();
    let bank = PrototypeBank::from_state(
        &PrototypeState {
            classes,
            dim: cfg.dim,
            momentum: cfg.proto_momentum,
            prototypes: f32s(&init["prototypes"]),
        },
        device,
    )
    .unwrap();
    PnlTrainer::new(cfg, query, queue, bank, device).unwrap()
}

#[test]
fn twelve_pnl_steps_match_lup_pnl_py() {
    let Fixture { exp, cfg, width } = Fixture::read(&dir(), config);
    let classes = usize_at(&exp["config"], "classes");
    let device = Device::flex().autodiff();
    let mut trainer = trainer(&cfg, width, classes, &device);

    let mut npz = NpzReader::new(File::open(dir().join("crops.npz")).unwrap()).unwrap();
    let weak: Array<u8, IxDyn> = npz.by_name("weak").unwrap();
    let strong: Array<u8, IxDyn> = npz.by_name("strong").unwrap();

    let mut corrected_total = 0;
    let keys = ["loss", "loss_cls", "loss_inst", "loss_proto", "lr"];
    let worst_loss = run_steps(&exp, &keys, |i, epoch, want| {
        let column = |key: &str| want[key].as_array().unwrap().iter();
        let batch: Vec<usize> = column("batch")
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let labels: Vec<i64> = column("labels").map(|v| v.as_i64().unwrap()).collect();
        let (weak, strong) = (
            crops(&weak, &batch, &device),
            crops(&strong, &batch, &device),
        );
        let line = trainer.step(epoch, i, weak, strong, &labels).unwrap();
        let corrected = want["corrected"].as_u64().unwrap();
        assert_eq!(
            line.get("corrected"),
            Some(corrected as f64),
            "step {i}: corrected labels"
        );
        corrected_total += corrected;
        assert_eq!(
            trainer.queue.ptr(),
            usize_at(want, "queue_ptr") % cfg.queue_size,
            "step {i}: queue pointer"
        );
        line
    });
    assert!(corrected_total > 0, "the run must correct some labels");

    // The final queue and prototypes.
    let fin = tensors("final.safetensors");
    let fin64 = tensors("final64.safetensors");
    let state = trainer.queue.state();
    assert_eq!(state.ids, i64s(&fin["queue_id"]), "queue labels");
    assert_eq!(
        state.ptr,
        i64s(&fin["queue_ptr"])[0] as usize % cfg.queue_size,
        "queue pointer"
    );
    let upstream = |name: &str, t: &BTreeMap<String, Raw>| -> Vec<f32> {
        let raw = t.get(name).unwrap_or(&fin[name]);
        if name == "queue" {
            transpose(&raw.1, &f32s(raw))
        } else {
            f32s(raw)
        }
    };
    let mut tally = Tally::default();
    tally.add(compare(
        "buffers",
        &[
            ("queue".into(), state.keys),
            ("prototypes".into(), trainer.bank.state().prototypes),
        ],
        &[
            ("queue".into(), upstream("queue", &fin)),
            ("prototypes".into(), upstream("prototypes", &fin)),
        ],
        &[
            ("queue".into(), upstream("queue", &fin64)),
            ("prototypes".into(), upstream("prototypes", &fin64)),
        ],
    ));

    // The final encoders: trunks (parameters and BatchNorm statistics) and
    // branches.
    let (query, key) = trainer.into_networks();
    for (prefix, net) in [("encoder_q.", &query), ("encoder_k.", &key)] {
        let (want, want64) = final_trunks(width, prefix);
        let heads = |t: &BTreeMap<String, Raw>| -> Vec<(String, Vec<f32>)> {
            HEADS
                .iter()
                .flat_map(|h| {
                    ["weight", "bias"].map(|p| {
                        let name = format!("{prefix}{h}.{p}");
                        let raw = t.get(&name).unwrap_or(&fin[&name]);
                        let v = if p == "weight" {
                            transpose(&raw.1, &f32s(raw))
                        } else {
                            f32s(raw)
                        };
                        (name, v)
                    })
                })
                .collect()
        };
        let ours_heads: Vec<(String, Vec<f32>)> =
            [&net.cls_embed, &net.cls_out, &net.fc1, &net.fc2]
                .iter()
                .flat_map(|l| floats(*l))
                .collect();
        let all_heads = [ours_heads, heads(&fin), heads(&fin64)];
        tally.add_network(prefix, [&net.backbone, &want, &want64], all_heads);
    }
    tally.report(worst_loss, &format!("; {corrected_total} labels corrected"));
}

/// Views of other batch sizes than the labels, or labels out of range, are
/// errors naming the problem, not panics.
#[test]
fn inconsistent_inputs_are_errors() {
    let Fixture { exp, cfg, width } = Fixture::read(&dir(), config);
    let classes = usize_at(&exp["config"], "classes");
    let device = Device::flex().autodiff();
    let mut trainer = trainer(&cfg, width, classes, &device);
    let view = |b: usize| Tensor::<4>::zeros([b, 3, 32, 16], &device);
    let e = trainer
        .step(0, 0, view(4), view(3), &[0, 1, 2, 3])
        .unwrap_err();
    assert!(e.to_string().contains("strong"), "{e}");
    let e = trainer.step(0, 0, view(4), view(4), &[0, 1]).unwrap_err();
    assert!(e.to_string().contains("weak"), "{e}");
    let e = trainer
        .step(0, 0, view(2), view(2), &[0, classes as i64])
        .unwrap_err();
    assert!(e.to_string().contains("label"), "{e}");
    // A queue of another size is refused.
    let queue = InfoNceQueue::new(cfg.queue_size + 1, cfg.dim, 0, &device).unwrap();
    let bank = PrototypeBank::new(classes, cfg.dim, &device).unwrap();
    let trunk = resnet(width);
    let query = encoder_with(&cfg, trunk, classes, &device);
    let e = PnlTrainer::new(&cfg, query, queue, bank, &device)
        .err()
        .unwrap();
    assert!(e.to_string().contains("queue"), "{e}");
}
