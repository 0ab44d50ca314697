//! MoCo v2 as used for LUPerson pre-training (He et al. 2020; Chen et al.
//! 2020; Fu et al., CVPR 2021).
//!
//! - [`info_nce`]: `L = mean_i −log softmax([q_i·k_i, q_i·Qᵀ] / T)_0` with
//!   queries `q` (`[N, D]`), keys `k` (`[N, D]`) and the queue `Q` (`[K, D]`,
//!   one key per **row**; upstream stores its transpose `[D, K]`). Keys and
//!   queue are constants (detached); the gradient flows to `q` only.
//! - [`InfoNceQueue`]: the FIFO ring buffer of past keys (with optional integer
//!   ids, used by PNL), seeded random unit rows at the start.
//! - [`momentum_update`]: the key-encoder EMA `θk ← m·θk + (1−m)·θq` over the
//!   parameters of any burn [`Module`], leaving BatchNorm running statistics
//!   alone.
//! - [`shuffled_group_forward`]: shuffle-BN emulated on one device (seeded
//!   permutation, `G` groups with their own BatchNorm statistics, un-permute).
//!
//! The paper values are the `pub const`s below.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::LossError;
use crate::validate::{sizes_match, state_len};

/// Queue length `K` of LUPerson / LUPerson-NL pre-training (keys).
pub const QUEUE_SIZE: usize = 65536;
/// InfoNCE temperature `T` of LUPerson MoCo v2 (`--T 0.1`).
pub const TEMPERATURE_LUP: f64 = 0.1;
/// InfoNCE temperature `T` of the LUPerson-NL MoCo baseline and of PNL (`0.07`).
pub const TEMPERATURE_LUP_NL: f64 = 0.07;
/// Key-encoder momentum `m` (`θk ← m·θk + (1−m)·θq`).
pub const KEY_MOMENTUM: f64 = 0.999;
/// Dimension of the L2-normalised projection `q`, `k` (`moco_dim`).
pub const FEATURE_DIM: usize = 128;
/// Field names of burn's BatchNorm running buffers, skipped by [`momentum_update`].
pub const BATCH_NORM_BUFFERS: [&str; 2] = ["running_mean", "running_var"];

const NCE: &str = "info_nce";
const QUEUE: &str = "InfoNceQueue";
const EMA: &str = "momentum_update";
const SHUFFLE: &str = "shuffled_group_forward";

// ---------------------------------------------------------------------------------------------
// Contrastive logits shared with PNL.

/// Validates `q` (`[N, D]`), `k` (`[N, D]`), `queue` (`[K, D]`) and `T > 0`.
pub(crate) fn check_contrastive(
    loss: &'static str,
    q: &Tensor<2>,
    k: &Tensor<2>,
    queue: &Tensor<2>,
    temperature: f64,
) -> Result<(), LossError> {
    let [n, d] = q.dims();
    if n == 0 || d == 0 {
        return Err(LossError::Empty {
            loss,
            what: "q",
            shape: vec![n, d],
        });
    }
    if k.dims() != [n, d] {
        return Err(LossError::InvalidShape {
            loss,
            what: "k",
            shape: k.dims().to_vec(),
            expected: format!("[{n}, {d}] like q"),
        });
    }
    let [size, dq] = queue.dims();
    if size == 0 || dq != d {
        return Err(LossError::InvalidShape {
            loss,
            what: "queue",
            shape: vec![size, dq],
            expected: format!("[K, {d}] with K >= 1 (one key per row)"),
        });
    }
    positive(loss, "temperature", temperature)
}

/// Checks that `value` is finite and `> 0`.
pub(crate) fn positive(
    loss: &'static str,
    name: &'static str,
    value: f64,
) -> Result<(), LossError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(LossError::InvalidParameter {
            loss,
            name,
            value,
            expected: "a finite value > 0",
        });
    }
    Ok(())
}

/// `[q·k, q·queueᵀ] / T` (`[N, 1 + K]`) with `k` and `queue` detached.
pub(crate) fn contrastive_logits(
    q: Tensor<2>,
    k: Tensor<2>,
    queue: Tensor<2>,
    temperature: f64,
) -> Tensor<2> {
    let l_pos = q.clone().mul(k.detach()).sum_dim(1); // [N, 1]
    let l_neg = q.matmul(queue.detach().transpose()); // [N, K]
    Tensor::cat(vec![l_pos, l_neg], 1).div_scalar(temperature)
}

/// InfoNCE of queries `q` (`[batch, dim]`) against their keys `k`
/// (`[batch, dim]`) and the negatives `queue` (`[K, dim]`, one key per row,
/// e.g. [`InfoNceQueue::keys`]): cross-entropy of `[q·k, q·queueᵀ] / T`
/// (`[batch, 1 + K]`) with target 0, averaged over the batch; a scalar `[1]`
/// in nats. `k` and `queue` are detached. `q` and `k` are expected to be
/// L2-normalised (not enforced). All tensors on one device.
///
/// # Errors
/// [`LossError`] when `q` is empty, `k` differs from `q` in shape, `queue`
/// is empty or has another dimension, or `temperature` is not finite and > 0.
pub fn info_nce(
    q: Tensor<2>,
    k: Tensor<2>,
    queue: Tensor<2>,
    temperature: f64,
) -> Result<Tensor<1>, LossError> {
    check_contrastive(NCE, &q, &k, &queue, temperature)?;
    let logits = contrastive_logits(q, k, queue, temperature);
    Ok(log_softmax(logits, 1).narrow(1, 0, 1).neg().mean())
}

/// Instance-discrimination accuracy of a MoCo step, as `lup_moco.py` logs
/// it (`acc1`, `acc5`): the fraction of queries whose own key scores among
/// the top `k` of `[q·k, q·queueᵀ]`, for each `k` in `top` (e.g. `[1, 5]`).
/// Shapes as [`info_nce`]; the temperature does not change the ranking.
/// A negative that ties the positive counts against it.
///
/// # Errors
/// As [`info_nce`] (with temperature 1).
pub fn instance_accuracy(
    q: Tensor<2>,
    k: Tensor<2>,
    queue: Tensor<2>,
    top: &[usize],
) -> Result<Vec<f64>, LossError> {
    check_contrastive(NCE, &q, &k, &queue, 1.0)?;
    let (q, k, queue) = (q.detach(), k.detach(), queue.detach());
    let n = q.dims()[0];
    let pos = (q.clone() * k).sum_dim(1);
    let neg = q.matmul(queue.transpose());
    // Rank of the positive: how many negatives score at least as high.
    let rank: Vec<i64> = neg
        .greater_equal(pos)
        .int()
        .sum_dim(1)
        .into_data()
        .iter::<i64>()
        .collect();
    Ok(top
        .iter()
        .map(|&t| rank.iter().filter(|&&r| (r as usize) < t).count() as f64 / n as f64)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Seeded host-side randomness (SplitMix64), identical on every backend.

struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller, cosine branch).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The seeded permutation of `0..n` used by [`shuffled_group_forward`]
/// (Fisher–Yates driven by SplitMix64; the same on every platform).
pub fn shuffle_permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    perm
}

/// Returns `t` detached, without autodiff when `like` has none, on `like`'s device.
pub(crate) fn to_storage<const D: usize>(t: Tensor<D>, like: &Tensor<D>) -> Tensor<D> {
    let t = t.detach();
    if like.is_autodiff() {
        t.to_device(&like.device())
    } else {
        let inner = like.clone().without_autodiff().device();
        t.without_autodiff().to_device(&inner)
    }
}

// ---------------------------------------------------------------------------------------------
// The key queue.

/// A host copy of an [`InfoNceQueue`], for checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueState {
    /// Number of slots `K`.
    pub size: usize,
    /// Key dimension `D`.
    pub dim: usize,
    /// The keys, row-major `[K, D]`.
    pub keys: Vec<f32>,
    /// One id per slot (`[K]`); `-1` = empty or enqueued without an id.
    pub ids: Vec<i64>,
    /// Next slot to write, in `0..K`.
    pub ptr: usize,
}

/// MoCo's FIFO queue of `K` keys of dimension `D`, with one integer id per
/// slot (PNL stores the corrected label of each key; `-1` = none).
///
/// The keys (`[K, D]`) and ids (`[K]`) are kept as **tensors on the training
/// device**: the loss reads the whole queue every step (`q·Qᵀ`) and PNL
/// compares every id with the batch labels, so a host copy would cost a
/// `K×D` upload per step (32 MiB at the paper's size) while enqueueing on the
/// device writes only `N` rows. The write pointer stays on the host. Host
/// copies exist only for checkpoints ([`state`](Self::state) /
/// [`from_state`](Self::from_state)). The queue never tracks gradients.
#[derive(Debug, Clone)]
pub struct InfoNceQueue {
    keys: Tensor<2>,
    ids: Tensor<1, Int>,
    ptr: usize,
}

impl InfoNceQueue {
    /// A queue of `size` (`K`) random keys of dimension `dim` on `device`, as
    /// MoCo initialises it: standard normal entries (SplitMix64 + Box–Muller
    /// from `seed`, identical on every backend), each key L2-normalised; ids
    /// all `-1`, pointer 0.
    ///
    /// # Errors
    /// [`LossError::InvalidParameter`] when `size` or `dim` is 0.
    pub fn new(size: usize, dim: usize, seed: u64, device: &Device) -> Result<Self, LossError> {
        nonzero(QUEUE, "size", size)?;
        nonzero(QUEUE, "dim", dim)?;
        let mut rng = SplitMix64(seed);
        let mut keys = Vec::with_capacity(size * dim);
        let mut row = vec![0.0f64; dim];
        for _ in 0..size {
            for v in row.iter_mut() {
                *v = rng.normal();
            }
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            keys.extend(row.iter().map(|v| (v / norm) as f32));
        }
        Self::from_state(
            &QueueState {
                size,
                dim,
                keys,
                ids: vec![-1; size],
                ptr: 0,
            },
            device,
        )
    }

    /// Rebuilds a queue from a checkpointed [`QueueState`] on `device`.
    ///
    /// # Errors
    /// [`LossError`] when `size` or `dim` is 0, the vectors do not hold
    /// `size·dim` keys and `size` ids, or `ptr >= size`.
    pub fn from_state(state: &QueueState, device: &Device) -> Result<Self, LossError> {
        nonzero(QUEUE, "size", state.size)?;
        nonzero(QUEUE, "dim", state.dim)?;
        let (keys, want) = (state.keys.len(), state.size * state.dim);
        state_len(QUEUE, "state.keys", keys, want, "values (size × dim)")?;
        state_len(
            QUEUE,
            "state.ids",
            state.ids.len(),
            state.size,
            "ids (size)",
        )?;
        if state.ptr >= state.size {
            return Err(LossError::InvalidParameter {
                loss: QUEUE,
                name: "ptr",
                value: state.ptr as f64,
                expected: "0 <= ptr < size",
            });
        }
        let keys = Tensor::<2>::from_data(
            TensorData::new(state.keys.clone(), [state.size, state.dim]),
            device,
        );
        let ids =
            Tensor::<1, Int>::from_data(TensorData::new(state.ids.clone(), [state.size]), device);
        Ok(Self {
            keys,
            ids,
            ptr: state.ptr,
        })
    }

    /// A host copy of keys, ids and pointer, for checkpoints.
    pub fn state(&self) -> QueueState {
        let [size, dim] = self.keys.dims();
        QueueState {
            size,
            dim,
            keys: self.keys.to_data().iter::<f32>().collect(),
            ids: self.ids.to_data().iter::<i64>().collect(),
            ptr: self.ptr,
        }
    }

    /// The keys, `[K, D]` (one key per row; detached).
    pub fn keys(&self) -> Tensor<2> {
        self.keys.clone()
    }

    /// The id of each slot, `[K]` (`-1` = none).
    pub fn ids(&self) -> Tensor<1, Int> {
        self.ids.clone()
    }

    /// Next slot to be written, in `0..K`.
    pub fn ptr(&self) -> usize {
        self.ptr
    }

    /// Number of slots `K`.
    pub fn size(&self) -> usize {
        self.keys.dims()[0]
    }

    /// Key dimension `D`.
    pub fn dim(&self) -> usize {
        self.keys.dims()[1]
    }

    /// The device holding the queue.
    pub fn device(&self) -> Device {
        self.keys.device()
    }

    /// A copy of the queue on `device` (keys, ids and pointer), for a
    /// data-parallel step that reads it on every device.
    pub fn to_device(&self, device: &Device) -> Self {
        Self {
            keys: self.keys.clone().to_device(device),
            ids: self.ids.clone().to_device(device),
            ptr: self.ptr,
        }
    }

    /// Writes `keys` (`[N, D]`, detached) and their `ids` (`[N]`; `None` =
    /// `-1`) into slots `ptr, ptr+1, …` modulo `K`, then advances `ptr` by
    /// `N` modulo `K`. The write wraps around, so `K` need not be a multiple
    /// of `N`; when `N > K` only the last `K` keys remain (as writing them
    /// one by one would leave).
    ///
    /// # Errors
    /// [`LossError`] when `keys` is empty or has another dimension, or `ids`
    /// does not have `N` entries.
    pub fn enqueue(
        &mut self,
        keys: Tensor<2>,
        ids: Option<Tensor<1, Int>>,
    ) -> Result<(), LossError> {
        let [n, d] = keys.dims();
        let [size, dim] = self.keys.dims();
        if n == 0 || d != dim {
            return Err(LossError::InvalidShape {
                loss: QUEUE,
                what: "keys",
                shape: vec![n, d],
                expected: format!("[N, {dim}] with N >= 1"),
            });
        }
        let device = self.ids.device();
        let ids = match ids {
            Some(ids) => {
                sizes_match(QUEUE, ("keys", n), ("ids", ids.dims()[0]))?;
                ids.to_device(&device)
            }
            None => Tensor::<1, Int>::from_data(TensorData::new(vec![-1i64; n], [n]), &device),
        };
        let keys = to_storage(keys, &self.keys);
        // Only the last `size` keys survive; they start at slot (ptr + skip) % size.
        let skip = n.saturating_sub(size);
        let kept = n - skip;
        let start = (self.ptr + skip) % size;
        let first = kept.min(size - start);
        let mut store = self.keys.clone();
        let mut id_store = self.ids.clone();
        store = store.slice_assign(
            [start..start + first, 0..dim],
            keys.clone().narrow(0, skip, first),
        );
        id_store = id_store.slice_assign(start..start + first, ids.clone().narrow(0, skip, first));
        if kept > first {
            let rest = kept - first;
            store = store.slice_assign([0..rest, 0..dim], keys.narrow(0, skip + first, rest));
            id_store = id_store.slice_assign(0..rest, ids.narrow(0, skip + first, rest));
        }
        self.keys = store;
        self.ids = id_store;
        self.ptr = (self.ptr + n) % size;
        Ok(())
    }
}

fn nonzero(loss: &'static str, name: &'static str, value: usize) -> Result<(), LossError> {
    if value == 0 {
        return Err(LossError::InvalidParameter {
            loss,
            name,
            value: 0.0,
            expected: "at least 1",
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Key-encoder EMA.

/// One float tensor slot met while walking a module: its path and shape.
struct Slot {
    path: String,
    shape: Vec<usize>,
    value: Tensor<1>,
}

/// Collects every float slot (parameters and running buffers) in walk order.
#[derive(Default)]
struct Collector {
    path: Vec<String>,
    slots: Vec<Slot>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().detach();
        let shape = value.dims().to_vec();
        let numel: usize = shape.iter().product();
        self.slots.push(Slot {
            path: self.path.join("."),
            shape,
            value: value.reshape([numel]),
        });
    }
}

/// Applies `θk ← m·θk + (1−m)·θq` slot by slot, skipping buffers.
struct EmaMapper<'a, F: Fn(&str) -> bool> {
    path: Vec<String>,
    online: std::vec::IntoIter<Slot>,
    momentum: f64,
    is_buffer: &'a F,
}

impl<F: Fn(&str) -> bool> ModuleMapper for EmaMapper<'_, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // Structure was checked beforehand, so the walk orders agree.
        let Some(slot) = self.online.next() else {
            return param;
        };
        if (self.is_buffer)(&self.path.join(".")) {
            return param;
        }
        let m = self.momentum;
        param.map(|ema| {
            let autodiff = ema.is_autodiff();
            let require_grad = ema.is_require_grad();
            let shape = ema.dims();
            let ema = ema.detach().without_autodiff();
            let online = slot
                .value
                .detach()
                .without_autodiff()
                .to_device(&ema.device())
                .reshape(shape);
            let mut out = ema.mul_scalar(m).add(online.mul_scalar(1.0 - m));
            if autodiff {
                out = out.autodiff();
            }
            if require_grad {
                out = out.require_grad();
            }
            out
        })
    }
}

/// Whether the last path component names a BatchNorm running buffer.
fn is_batch_norm_buffer(path: &str) -> bool {
    let leaf = path.rsplit('.').next().unwrap_or(path);
    BATCH_NORM_BUFFERS.contains(&leaf)
}

/// MoCo's key-encoder update: every float **parameter** of `ema` (the key
/// encoder) becomes `m·θk + (1−m)·θq` with `θq` the same parameter of
/// `online` (the query encoder); default `m` = [`KEY_MOMENTUM`] (0.999).
/// BatchNorm running statistics (fields named in [`BATCH_NORM_BUFFERS`]) are
/// left untouched, as upstream EMAs `parameters()` only.
///
/// burn 0.22 walks a `RunningState` buffer through the same
/// `ModuleMapper::map_float` hook as a `Param`, so the buffers are told apart
/// by field name; use [`momentum_update_filtered`] for modules with other
/// buffers. The update is computed without autodiff and keeps each tensor's
/// device, autodiff association and `require_grad` flag. Works on any
/// backend; `ema` may live on another device than `online`.
///
/// # Errors
/// [`LossError::InvalidParameter`] when `m ∉ [0, 1]`;
/// [`LossError::ModuleMismatch`] when the two modules do not have the same
/// float tensors (paths and shapes, in walk order). `ema` is unchanged on error.
pub fn momentum_update<M: Module>(ema: &mut M, online: &M, momentum: f64) -> Result<(), LossError> {
    momentum_update_filtered(ema, online, momentum, is_batch_norm_buffer)
}

/// [`momentum_update`] with a custom buffer test: `is_buffer(path)` gets the
/// dotted field path of each float tensor (e.g. `"layer1.0.bn1.running_mean"`)
/// and returns `true` for tensors that must not be averaged.
///
/// # Errors
/// As [`momentum_update`].
pub fn momentum_update_filtered<M: Module>(
    ema: &mut M,
    online: &M,
    momentum: f64,
    is_buffer: impl Fn(&str) -> bool,
) -> Result<(), LossError> {
    crate::validate::param_in(EMA, "momentum", momentum, 0.0, 1.0, "0 <= m <= 1")?;
    let mut theirs = Collector::default();
    online.visit(&mut theirs);
    let mut ours = Collector::default();
    ema.visit(&mut ours);
    if ours.slots.len() != theirs.slots.len() {
        return Err(LossError::ModuleMismatch {
            op: EMA,
            detail: format!(
                "the EMA module has {} float tensors, the online module {}",
                ours.slots.len(),
                theirs.slots.len()
            ),
        });
    }
    for (a, b) in ours.slots.iter().zip(&theirs.slots) {
        if a.path != b.path || a.shape != b.shape {
            return Err(LossError::ModuleMismatch {
                op: EMA,
                detail: format!(
                    "EMA tensor {} {:?} vs online tensor {} {:?}",
                    a.path, a.shape, b.path, b.shape
                ),
            });
        }
    }
    let mut mapper = EmaMapper {
        path: Vec::new(),
        online: theirs.slots.into_iter(),
        momentum,
        is_buffer: &is_buffer,
    };
    *ema = ema.clone().map(&mut mapper);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shuffle-BN on one device.

/// Sizes of `groups` contiguous groups of `n` rows, as even as possible (the
/// first `n % groups` groups get one more row).
pub fn group_sizes(n: usize, groups: usize) -> Vec<usize> {
    if groups == 0 {
        return Vec::new();
    }
    (0..groups)
        .map(|g| n / groups + usize::from(g < n % groups))
        .collect()
}

/// Shuffle-BN emulated on one device: permutes the batch `x` (`[batch, …]`)
/// with [`shuffle_permutation`]`(batch, seed)`, splits it into `groups`
/// contiguous groups ([`group_sizes`]), runs `forward` (the key encoder, in
/// training mode on an autodiff device so BatchNorm uses batch statistics)
/// on each group separately, concatenates the outputs (`[group, dim]` each)
/// and undoes the permutation: row `i` of the result is the output for row
/// `i` of `x`. Upstream MoCo does this across GPUs (8 groups of 320 for
/// LUPerson, 192 for PNL). Call it under no-grad semantics (a `no_grad()`
/// key encoder); the output is returned as produced (detach it for keys).
///
/// # Errors
/// [`LossError`] when `x` is empty, `groups ∉ 1..=batch`, or `forward`
/// returns a number of rows other than its group size.
pub fn shuffled_group_forward<const D: usize, F>(
    x: Tensor<D>,
    groups: usize,
    seed: u64,
    mut forward: F,
) -> Result<Tensor<2>, LossError>
where
    F: FnMut(Tensor<D>) -> Tensor<2>,
{
    let n = x.dims()[0];
    if n == 0 {
        return Err(LossError::Empty {
            loss: SHUFFLE,
            what: "x",
            shape: x.dims().to_vec(),
        });
    }
    if groups == 0 || groups > n {
        return Err(LossError::InvalidParameter {
            loss: SHUFFLE,
            name: "groups",
            value: groups as f64,
            expected: "1 <= groups <= batch",
        });
    }
    let device = x.device();
    let perm = shuffle_permutation(n, seed);
    let mut inverse = vec![0i64; n];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i as i64;
    }
    let perm: Vec<i64> = perm.iter().map(|&p| p as i64).collect();
    let perm = Tensor::<1, Int>::from_data(TensorData::new(perm, [n]), &device);
    let inverse = Tensor::<1, Int>::from_data(TensorData::new(inverse, [n]), &device);
    let shuffled = x.select(0, perm);
    let mut outputs = Vec::with_capacity(groups);
    let mut start = 0;
    for size in group_sizes(n, groups) {
        let out = forward(shuffled.clone().narrow(0, start, size));
        if out.dims()[0] != size {
            return Err(LossError::InvalidShape {
                loss: SHUFFLE,
                what: "forward output",
                shape: out.dims().to_vec(),
                expected: format!("[{size}, dim] (one row per input row)"),
            });
        }
        outputs.push(out);
        start += size;
    }
    Ok(Tensor::cat(outputs, 0).select(0, inverse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_accuracy_ranks_the_positive() {
        let d = Device::default();
        let t = |v: Vec<f32>, r: usize| Tensor::<2>::from_data(TensorData::new(v, [r, 2]), &d);
        // Query 0 matches its key best; query 1's key is beaten by one negative.
        let q = t(vec![1.0, 0.0, 0.0, 1.0], 2);
        let k = t(vec![1.0, 0.0, 0.6, 0.8], 2);
        let queue = t(vec![0.0, 1.0, -1.0, 0.0, 0.5, 0.5], 3);
        let acc = instance_accuracy(q, k, queue, &[1, 2, 5]).unwrap();
        assert_eq!(acc, vec![0.5, 1.0, 1.0]);
    }
}
