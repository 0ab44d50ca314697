#![allow(dead_code)] // each test binary uses a part of these helpers
//! Shared by the training tests: a tiny synthetic image set, the tiny
//! recipes, a fixed probe input, exact step comparisons, the
//! stopped-and-resumed run check, configuration-error checks, a ResNet50
//! trunk.

pub mod parity;

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use reid_backbones::{Arch, ResNet};

use reid_data::ImageRecord;
use reid_data::datasets::{ImageDatasetOptions, ParsedDataset, market1501};
use reid_data::sampler_identity::KSchedule;
use reid_synth::{Market1501Config, WorldConfig, write_market1501};
use reid_train::finetune::mgn::MgnFinetuneConfig;
use reid_train::{
    CionConfig, Decay, FinetuneConfig, MocoConfig, PnlConfig, RunOptions, TrainError, Warmup,
};

/// Writes (once per test, in a folder of its own named by `kind` and
/// `tag`) a Market-style set of 8 training and `test_ids` test identities
/// at 64×32 pixels from world seed `seed`, and parses it.
fn write_tiny(kind: &str, tag: &str, seed: u64, test_ids: u32) -> (PathBuf, ParsedDataset) {
    let dir = std::env::temp_dir().join(format!("reid-{kind}-{tag}-{}", std::process::id()));
    let world = WorldConfig::sized(seed, 64, 32).with_overwrite(true);
    let cfg = Market1501Config::small(8, test_ids);
    let report = write_market1501(&dir, &world, &cfg).unwrap();
    let parsed = market1501::parse(&report.dataset_dir, &ImageDatasetOptions::default()).unwrap();
    (dir, parsed)
}

/// 8 training and 4 test identities at 64×32 pixels (the fine-tuning
/// tests' set), in a folder of its own named by `tag`.
pub fn tiny_market(tag: &str) -> (PathBuf, ParsedDataset) {
    write_tiny("market", tag, 3, 4)
}

/// 8 identities × 4–9 images at 64×32 pixels (a Market-style train split).
pub fn tiny_records(tag: &str) -> (PathBuf, Vec<ImageRecord>) {
    let (dir, parsed) = write_tiny("pretrain", tag, 5, 2);
    (dir, parsed.splits.train)
}

/// A fixed `[n, 3, height, width]` input whose value `i` (row-major) is
/// `(i·a mod m) / d − 1`, for weight comparisons through a forward pass.
pub fn pattern_input(
    shape: [usize; 4],
    (a, m, d): (usize, usize, f32),
    device: &Device,
) -> Tensor<4> {
    let n = shape.iter().product::<usize>();
    let x: Vec<f32> = (0..n).map(|i| ((i * a % m) as f32 / d) - 1.0).collect();
    Tensor::<4>::from_data(TensorData::new(x, shape), device)
}

/// The fixed `[2, 3, height, width]` input of the probes.
pub fn probe_input(height: usize, width: usize, device: &Device) -> Tensor<4> {
    pattern_input([2, 3, height, width], (37, 101, 50.0), device)
}

/// The probe of the pre-training tests: what `embed` (a network's pooled
/// feature) makes of the fixed 64×32 input.
pub fn probe(embed: impl FnOnce(Tensor<4>) -> Tensor<2>, device: &Device) -> Vec<f32> {
    embed(probe_input(64, 32, device))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

/// [`probe`]s of `nets` (each through `embed`) in training mode and, with
/// their BatchNorm running statistics, in inference mode.
pub fn probes<N: Module>(
    nets: [&N; 2],
    embed: impl Fn(&N, Tensor<4>) -> Tensor<2>,
    device: &Device,
) -> Vec<Vec<f32>> {
    let probe_in = |n: &N| probe(|x| embed(n, x), device);
    nets.into_iter()
        .flat_map(|n| [probe_in(n), probe_in(&n.valid())])
        .collect()
}

/// `(iteration, epoch, ce bits, triplet bits, lr bits)` of each
/// fine-tuning step, for exact comparisons.
pub fn step_bits(log: &[reid_train::IterationLog]) -> Vec<(usize, usize, u32, u32, u64)> {
    log.iter()
        .map(|l| {
            (
                l.iteration,
                l.epoch,
                l.loss_ce.to_bits(),
                l.loss_tri.to_bits(),
                l.lr.to_bits(),
            )
        })
        .collect()
}

/// A ResNet50 trunk of stem width `base_width`, drawn by burn's
/// initialisers (build it once and clone it for runs that must agree).
pub fn resnet50_trunk(base_width: usize, device: &Device) -> ResNet {
    Arch::from_name("resnet50")
        .unwrap()
        .config()
        .with_base_width(base_width)
        .init(device)
        .unwrap()
}

/// `(step, loss bits, lr bits)` of each log line, for exact comparisons.
pub fn loss_bits(lines: &[reid_train::LogLine]) -> Vec<(usize, u64, u64)> {
    lines
        .iter()
        .map(|l| {
            (
                l.step,
                l.get("loss").unwrap().to_bits(),
                l.get("lr").unwrap().to_bits(),
            )
        })
        .collect()
}

/// The tiny CION recipe of the training tests (ResNet18 at width 4, 64×32).
pub fn tiny_cion(epochs: usize, steps: usize) -> CionConfig {
    CionConfig::default()
        .with_arch("resnet18".into())
        .with_base_width(4)
        .with_global_size([64, 32])
        .with_local_size([32, 16])
        .with_local_crops(2)
        .with_batch_size(8)
        .with_k_schedule(KSchedule {
            epochs: vec![2, 100],
            instances: vec![2, 4],
        })
        .with_epochs(epochs)
        .with_max_steps_per_epoch(Some(steps))
        .with_lr(0.01)
        .with_warmup_epochs(0)
        .with_head_hidden_dim(32)
        .with_head_bottleneck_dim(16)
        .with_out_dim(64)
        .with_seed(7)
}

/// The settings the tiny MoCo and PNL recipes share (their setters are
/// named alike): ResNet18 at width 4, 64×32 views, batches of 8 in 2
/// shuffle-BN groups, `$epochs` epochs of at most `$steps` steps at rate
/// 0.05, a 32-wide hidden layer, 16-dimensional keys, a queue of 24.
macro_rules! tiny_contrast {
    ($cfg:expr, $epochs:expr, $steps:expr) => {
        $cfg.with_arch("resnet18".into())
            .with_base_width(4)
            .with_size([64, 32])
            .with_batch_size(8)
            .with_bn_groups(2)
            .with_epochs($epochs)
            .with_max_steps_per_epoch(Some($steps))
            .with_lr(0.05)
            .with_mlp_hidden_dim(32)
            .with_dim(16)
            .with_queue_size(24)
    };
}

pub(crate) use tiny_contrast;

/// The resume test `$name` of a MoCo-style pre-training (MoCo, PNL: a query
/// and a key encoder and a queue): `$pretrain` of the recipe `$cfg` on
/// [`tiny_records`] (folder `$tag`), stopped after `$stop` steps with a
/// checkpoint every `$every` and resumed, equals the uninterrupted run of
/// `$steps` steps (both encoders probed in training and, with BatchNorm
/// running statistics, in inference mode, through `$net::embed`); the
/// recipe changed by `.$bad($value)` is an error naming `$names`, and the
/// recipe JSON `$unknown` (a key `$config` does not have) is refused.
macro_rules! contrastive_resume_test {
    ($name:ident: $tag:literal, $cfg:expr, $pretrain:ident, $net:ident,
     [$every:literal, $stop:literal, $steps:literal],
     $bad:ident($value:expr) names $names:literal, $config:ty, $unknown:literal) => {
        #[test]
        fn $name() {
            use reid_train::FromConfig;
            let (dir, recs) = $crate::common::tiny_records($tag);
            let device = burn::tensor::Device::flex();
            let cfg = $cfg;
            let plain = reid_train::RunOptions::default();
            let stopped = $crate::common::stopping(&dir, $every, $stop);
            let outcomes = $crate::common::assert_resume_is_exact(&plain, &stopped, |run| {
                let out = $pretrain(&cfg, FromConfig, &recs, &device, run, |_| {}).unwrap();
                let probes = $crate::common::probes([&out.query, &out.key], $net::embed, &device);
                $crate::common::Outcome::of_log(&out.log, out.steps_done, out.finished, probes)
            });
            assert_eq!(outcomes[2].steps_done, $steps);
            let bad = cfg.clone().$bad($value);
            let result = $pretrain(&bad, FromConfig, &recs, &device, &plain, |_| {});
            $crate::common::assert_error_names(result, $names);
            $crate::common::assert_unknown_key_refused::<$config>($unknown);
            std::fs::remove_dir_all(dir).ok();
        }
    };
}

pub(crate) use contrastive_resume_test;

/// The tiny MOCO recipe of the training tests (ResNet18 at width 4, 64×32).
pub fn tiny_moco(epochs: usize) -> MocoConfig {
    tiny_contrast!(MocoConfig::default(), epochs, 4)
        .with_temperature(0.2)
        .with_seed(3)
}

/// The tiny PNL recipe of the training tests (ResNet18 at width 4, 64×32).
pub fn tiny_pnl(epochs: usize) -> PnlConfig {
    tiny_contrast!(PnlConfig::default(), epochs, 3)
        .with_lr_milestones(vec![5])
        .with_cls_dim(16)
        .with_key_momentum(0.9)
        .with_proto_momentum(0.9)
        .with_start_proto_epoch(1)
        .with_start_clean_epoch(2)
        .with_start_supcont_epoch(2)
        .with_seed(5)
}

/// The tiny BoT recipe of the fine-tuning tests: ResNet18 at width 8 on
/// 64×32 inputs, P×K = 4×4, `epochs` of `iters` iterations at a constant
/// rate after a 4-iteration warm-up, no evaluation.
pub fn tiny_bot(epochs: usize, iters: usize) -> FinetuneConfig {
    FinetuneConfig::default()
        .with_arch("resnet18".into())
        .with_base_width(8)
        .with_height(64)
        .with_width(32)
        .with_p(4)
        .with_k(4)
        .with_epochs(epochs)
        .with_iters_per_epoch(Some(iters))
        .with_lr(1e-3)
        .with_warmup(Warmup {
            iters: 4,
            factor: 0.1,
        })
        .with_decay(Decay::Constant)
        .with_eval_every(0)
        .with_seed(11)
}

/// The tiny MGN recipe of the fine-tuning tests: width 4, 16-wide heads on
/// 96×32 inputs, P×K = 4×4, `epochs` of `iters` iterations, one warm-up,
/// one delay and one frozen epoch.
pub fn tiny_mgn(epochs: usize, iters: usize) -> MgnFinetuneConfig {
    MgnFinetuneConfig::default()
        .with_base_width(4)
        .with_embedding_dim(16)
        .with_height(96)
        .with_width(32)
        .with_lr(1e-3)
        .with_p(4)
        .with_k(4)
        .with_epochs(epochs)
        .with_iters_per_epoch(Some(iters))
        .with_warmup_epochs(1)
        .with_delay_epochs(1)
        .with_freeze_epochs(1)
        .with_seed(4)
}

/// What the resume check compares of one run: its per-step values (as
/// bits), its completed steps, whether every epoch ran, and probes of its
/// weights.
#[derive(Debug, Clone)]
pub struct Outcome<S, P = Vec<f32>> {
    /// One entry per step run in this call.
    pub steps: Vec<S>,
    /// Completed steps, including those before a resume.
    pub steps_done: usize,
    /// Whether every epoch ran.
    pub finished: bool,
    /// What the run's model(s) make of fixed inputs.
    pub probes: Vec<P>,
}

impl<P> Outcome<(usize, usize, u32, u32, u64), P> {
    /// The outcome of a fine-tuning run (its steps compared by
    /// [`step_bits`]) with `probes` of its model.
    pub fn of_finetune<M>(out: &reid_train::finetune::RunOutput<M>, probes: Vec<P>) -> Self {
        Self {
            steps: step_bits(&out.log),
            steps_done: out.steps_done,
            finished: out.finished,
            probes,
        }
    }
}

impl<P> Outcome<(usize, u64, u64), P> {
    /// The outcome of a run with metrics log lines `log` (compared by
    /// [`loss_bits`]).
    pub fn of_log(
        log: &[reid_train::LogLine],
        steps_done: usize,
        finished: bool,
        probes: Vec<P>,
    ) -> Self {
        Self {
            steps: loss_bits(log),
            steps_done,
            finished,
            probes,
        }
    }
}

/// Options that write a checkpoint every `every` steps into `dir/ckpt`
/// and stop the run after `stop` steps.
pub fn stopping(dir: &Path, every: usize, stop: usize) -> RunOptions {
    RunOptions::default()
        .with_checkpoint_dir(Some(dir.join("ckpt")))
        .with_checkpoint_every(every)
        .with_stop_after(Some(stop))
}

/// [`stopping`] that keeps the newest two checkpoints and writes the
/// metrics log `dir/metrics.jsonl`.
pub fn stopping_logged(dir: &Path, every: usize, stop: usize) -> RunOptions {
    stopping(dir, every, stop)
        .with_keep_checkpoints(2)
        .with_log_path(Some(dir.join("metrics.jsonl")))
}

/// The fine-tuning logs of a stopped run and its resumptions (`parts`, in
/// order) together are the uninterrupted run's `full` log, bit for bit
/// ([`step_bits`]); `what` names the comparison in the failure message.
pub fn assert_joined_steps(
    parts: &[&[reid_train::IterationLog]],
    full: &[reid_train::IterationLog],
    what: &str,
) {
    assert_eq!(step_bits(&parts.concat()), step_bits(full), "{what}");
}

/// The metrics log file `path` has every step of the fine-tuning log
/// `full` once, in order, with the same losses; returns its lines.
pub fn assert_log_file_steps(
    path: &Path,
    full: &[reid_train::IterationLog],
) -> Vec<reid_train::LogLine> {
    let file = reid_train::metrics_log::read_log(path).unwrap();
    let steps: Vec<usize> = file.iter().map(|l| l.step).collect();
    assert_eq!(steps, (0..full.len()).collect::<Vec<_>>());
    for (line, step) in file.iter().zip(full) {
        assert_eq!(line.get("loss_ce"), Some(f64::from(step.loss_ce)));
        assert_eq!(line.get("loss_tri"), Some(f64::from(step.loss_tri)));
    }
    file
}

/// A stopped-and-resumed run equals an uninterrupted one: `run` (the
/// recipe with the given options) once with `full`, once with `stopped`
/// (which ends the run early with a checkpoint) and once resumed from that
/// checkpoint to the end; the stopped run is unfinished, the resumed one
/// finished with the uninterrupted run's steps, and the stopped and
/// resumed runs' steps together and the resumed run's probes are the
/// uninterrupted run's, bit for bit. Returns the three outcomes (full,
/// stopped, resumed) for further checks.
pub fn assert_resume_is_exact<S, P, F>(
    full: &RunOptions,
    stopped: &RunOptions,
    mut run: F,
) -> [Outcome<S, P>; 3]
where
    S: PartialEq + Debug + Clone,
    P: PartialEq + Debug,
    F: FnMut(&RunOptions) -> Outcome<S, P>,
{
    let whole = run(full);
    let first = run(stopped);
    assert!(!first.finished, "the stopped run finished");
    assert_eq!(Some(first.steps_done), stopped.stop_after);
    let second = run(&stopped.clone().with_resume(true).with_stop_after(None));
    assert!(second.finished);
    assert_eq!(second.steps_done, whole.steps_done);
    let mut joined = first.steps.clone();
    joined.extend(second.steps.iter().cloned());
    assert_eq!(joined, whole.steps, "per-step values differ after resume");
    assert_eq!(second.probes, whole.probes, "weights differ after resume");
    [whole, first, second]
}

/// `result` is an error whose message names `what`.
pub fn assert_error_names<T>(result: Result<T, TrainError>, what: &str) {
    let Err(e) = result else {
        panic!("expected an error naming {what}");
    };
    assert!(e.to_string().contains(what), "{e}");
}

/// `json` (with a key the recipe does not have) is refused.
pub fn assert_unknown_key_refused<C: serde::de::DeserializeOwned + Debug>(json: &str) {
    assert!(
        serde_json::from_str::<C>(json).is_err(),
        "{json} was accepted"
    );
}

/// `err` is a checkpoint error whose message contains `what`.
pub fn refused_with(err: &TrainError, what: &str) -> bool {
    matches!(err, TrainError::Checkpoint(m) if m.contains(what))
}
