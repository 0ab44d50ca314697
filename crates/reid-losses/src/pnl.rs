//! PNL: prototype-based noisy-label learning of LUPerson-NL (Fu et al., CVPR
//! 2022), as the released code computes it.
//!
//! Per iteration, with the noisy tracklet labels `y` (`[N]`), classifier
//! logits `z` (`[N, C]`), normalised query projections `q` (`[N, D]`), keys
//! `k` (`[N, D]`), the key queue (keys `[K, D]`, ids `[K]`) and the
//! prototypes `P` (`[C, D]`) **before** this iteration's update:
//!
//! 1. `L_inst` ([`label_guided_instance_loss`]): logits `[q·k, q·Qᵀ] / T`,
//!    positives `M = [1, 1{id_j = y_i}]` from `start_supcont_epoch` on
//!    (only the key before). Upstream builds `M` with the **uncorrected**
//!    `y`, because the mask comes before the correction in code order.
//! 2. [`proto_logits`]: `p = q·Pᵀ / T`.
//! 3. From `start_clean_epoch` on, [`correct_labels`]:
//!    `s = α·softmax(z) + (1−α)·softmax(p)`, `ŷ = argmax s` where
//!    `max s > threshold`, else `ŷ = y` (not persisted across epochs).
//! 4. `L = w_cls·CE(z, ŷ) + w_inst·L_inst + w_proto·CE(p, ŷ)`, the last term
//!    only from `start_proto_epoch` (1) on ([`pnl_step_losses`]).
//! 5. Then the **caller** enqueues `k` with ids `ŷ`
//!    ([`InfoNceQueue::enqueue`]) and updates the prototypes with `(q, ŷ)`
//!    ([`PrototypeBank::update`]), in that order; neither changes this
//!    step's losses.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use derive_setters::Setters;

use crate::LossError;
use crate::cross_entropy::{CrossEntropyConfig, cross_entropy_label_smooth};
use crate::moco::{InfoNceQueue, check_contrastive, contrastive_logits, positive, to_storage};
use crate::triplet::l2_normalize;
use crate::validate::{
    batch_matches, host_labels, labels_in_range, nonzero_sizes, param_in, sizes_match, state_len,
};

/// Prototype momentum `m2` (`P[y] ← m2·P[y] + (1−m2)·q`, `proto_m`).
pub const PROTOTYPE_MOMENTUM: f64 = 0.999;
/// Weight `α` of the classifier in the correction score (`alpha`).
pub const CORRECTION_ALPHA: f64 = 0.5;
/// Correction threshold on `max s` (`pseudo_th`).
pub const CORRECTION_THRESHOLD: f64 = 0.8;
/// First (0-based) epoch with label correction (`start_clean_epoch`).
pub const START_CLEAN_EPOCH: usize = 11;
/// First (0-based) epoch with label-guided positives (`start_supcont_epoch`, run script).
pub const START_SUPCONT_EPOCH: usize = 15;
/// First (0-based) epoch with the prototype loss (`epoch > 0`).
pub const START_PROTO_EPOCH: usize = 1;
/// Classifier width of the PNL encoder (`cls_dim`, embedding before the classifier).
pub const CLS_DIM: usize = 256;

const BANK: &str = "PrototypeBank";
const PROTO: &str = "proto_logits";
const CORRECT: &str = "correct_labels";
const INST: &str = "label_guided_instance_loss";
const STEP: &str = "pnl_step_losses";

// ---------------------------------------------------------------------------------------------
// Prototype bank.

/// A host copy of a [`PrototypeBank`], for checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct PrototypeState {
    /// Number of classes `C`.
    pub classes: usize,
    /// Prototype dimension `D`.
    pub dim: usize,
    /// Momentum `m2` in `[0, 1]`.
    pub momentum: f64,
    /// The prototypes, row-major `[C, D]`.
    pub prototypes: Vec<f32>,
}

/// The class prototypes `P` (`[C, D]`, zero at the start) of PNL and their
/// momentum update. Kept as a detached tensor on the training device (the
/// loss reads all of it every step; only the updated rows are computed);
/// host copies only for checkpoints.
#[derive(Debug, Clone)]
pub struct PrototypeBank {
    prototypes: Tensor<2>,
    momentum: f64,
}

impl PrototypeBank {
    /// `classes` zero prototypes of dimension `dim` on `device`, momentum
    /// [`PROTOTYPE_MOMENTUM`] (0.999).
    ///
    /// # Errors
    /// [`LossError::InvalidParameter`] when `classes` or `dim` is 0.
    pub fn new(classes: usize, dim: usize, device: &Device) -> Result<Self, LossError> {
        Self::from_state(
            &PrototypeState {
                classes,
                dim,
                momentum: PROTOTYPE_MOMENTUM,
                prototypes: vec![0.0; classes * dim],
            },
            device,
        )
    }

    /// The same bank with momentum `m2` (in `[0, 1]`).
    ///
    /// # Errors
    /// [`LossError::InvalidParameter`] when `momentum ∉ [0, 1]`.
    pub fn with_momentum(mut self, momentum: f64) -> Result<Self, LossError> {
        param_in(BANK, "momentum", momentum, 0.0, 1.0, "0 <= momentum <= 1")?;
        self.momentum = momentum;
        Ok(self)
    }

    /// Rebuilds a bank from a checkpointed [`PrototypeState`] on `device`.
    ///
    /// # Errors
    /// [`LossError`] when `classes` or `dim` is 0, `prototypes` does not hold
    /// `classes·dim` values, or the momentum is outside `[0, 1]`.
    pub fn from_state(state: &PrototypeState, device: &Device) -> Result<Self, LossError> {
        nonzero_sizes(
            BANK,
            &[("classes", state.classes), ("dim", state.dim)],
            "at least 1",
        )?;
        param_in(
            BANK,
            "momentum",
            state.momentum,
            0.0,
            1.0,
            "0 <= momentum <= 1",
        )?;
        let (len, want) = (state.prototypes.len(), state.classes * state.dim);
        state_len(
            BANK,
            "state.prototypes",
            len,
            want,
            "values (classes × dim)",
        )?;
        let prototypes = Tensor::<2>::from_data(
            TensorData::new(state.prototypes.clone(), [state.classes, state.dim]),
            device,
        );
        Ok(Self {
            prototypes,
            momentum: state.momentum,
        })
    }

    /// A host copy of the prototypes and momentum, for checkpoints.
    pub fn state(&self) -> PrototypeState {
        let [classes, dim] = self.prototypes.dims();
        PrototypeState {
            classes,
            dim,
            momentum: self.momentum,
            prototypes: self.prototypes.to_data().iter::<f32>().collect(),
        }
    }

    /// The prototypes `P`, `[C, D]` (detached; zero rows for unseen classes).
    pub fn prototypes(&self) -> Tensor<2> {
        self.prototypes.clone()
    }

    /// Number of classes `C`.
    pub fn classes(&self) -> usize {
        self.prototypes.dims()[0]
    }

    /// Prototype dimension `D`.
    pub fn dim(&self) -> usize {
        self.prototypes.dims()[1]
    }

    /// Momentum `m2`.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// A copy of the bank on `device`, for a data-parallel step that reads
    /// the prototypes on every device.
    pub fn to_device(&self, device: &Device) -> Self {
        Self {
            prototypes: self.prototypes.clone().to_device(device),
            momentum: self.momentum,
        }
    }

    /// PNL's prototype update with features `q` (`[N, D]`, detached) and
    /// labels (`[N]`, in `0..C`; PNL passes the corrected `ŷ` of the whole
    /// gathered batch): for `i = 0..N` **in order**,
    /// `P[y_i] ← m·P[y_i] + (1−m)·q_i` (a class seen twice compounds), then
    /// every row is L2-normalised (`x / max(‖x‖, 1e-12)`, zero rows stay 0).
    ///
    /// Computed in closed form on the device: a class updated by samples
    /// `i_1 < … < i_r` becomes `m^r·P + (1−m)·Σ_j m^{r−j}·q_{i_j}`.
    ///
    /// # Errors
    /// [`LossError`] when `q` is empty or has another dimension than the
    /// bank, the batch sizes differ, or a label is out of range.
    pub fn update(&mut self, q: Tensor<2>, labels: Tensor<1, Int>) -> Result<(), LossError> {
        let [n, d] = q.dims();
        batch_matches(BANK, "q", [n, d], &labels)?;
        if d != self.dim() {
            return Err(dim_mismatch(BANK, "q", [n, d], self.dim()));
        }
        let host = host_labels(&labels);
        labels_in_range(BANK, &host, self.classes())?;
        let m = self.momentum;
        // Classes in order of first appearance, and each sample's weight.
        let mut classes: Vec<i64> = Vec::new();
        let mut slot_of = std::collections::HashMap::new();
        for &y in &host {
            slot_of.entry(y).or_insert_with(|| {
                classes.push(y);
                classes.len() - 1
            });
        }
        let u = classes.len();
        let mut later = std::collections::HashMap::new();
        let mut weights = vec![0.0f32; u * n];
        for (i, &y) in host.iter().enumerate().rev() {
            let r: &mut i32 = later.entry(y).or_insert(0);
            weights[slot_of[&y] * n + i] = ((1.0 - m) * m.powi(*r)) as f32;
            *r += 1;
        }
        let decay: Vec<f32> = classes.iter().map(|y| m.powi(later[y]) as f32).collect();

        let store = &self.prototypes;
        let device = store.device();
        let q = to_storage(q, store);
        let index = Tensor::<1, Int>::from_data(TensorData::new(classes, [u]), &device);
        let weights = Tensor::<2>::from_data(TensorData::new(weights, [u, n]), &device);
        let decay = Tensor::<2>::from_data(TensorData::new(decay, [u, 1]), &device);
        let old = store.clone().select(0, index.clone()); // [U, D]
        let new = old.clone().mul(decay).add(weights.matmul(q));
        let updated = store
            .clone()
            .select_assign(0, index, new.sub(old), IndexingUpdateOp::Add);
        self.prototypes = l2_normalize(updated).detach();
        Ok(())
    }
}

fn dim_mismatch(loss: &'static str, what: &'static str, dims: [usize; 2], dim: usize) -> LossError {
    LossError::InvalidShape {
        loss,
        what,
        shape: dims.to_vec(),
        expected: format!("[N, {dim}] (the prototype / queue dimension)"),
    }
}

/// Prototype logits `p = q·Pᵀ / T` (`[batch, C]`) of queries `q`
/// (`[batch, D]`) against the bank's prototypes (detached); PNL uses
/// `T = 0.07`, the instance temperature.
///
/// # Errors
/// [`LossError`] when `q` is empty or its dimension differs from the bank's,
/// or `temperature` is not finite and > 0.
pub fn proto_logits(
    q: Tensor<2>,
    bank: &PrototypeBank,
    temperature: f64,
) -> Result<Tensor<2>, LossError> {
    let [n, d] = q.dims();
    if n == 0 || d == 0 {
        return Err(LossError::Empty {
            loss: PROTO,
            what: "q",
            shape: vec![n, d],
        });
    }
    if d != bank.dim() {
        return Err(dim_mismatch(PROTO, "q", [n, d], bank.dim()));
    }
    positive(PROTO, "temperature", temperature)?;
    Ok(q.matmul(bank.prototypes().detach().transpose())
        .div_scalar(temperature))
}

/// PNL's label correction: `s = α·softmax(z) + (1−α)·softmax(p)` from the
/// classifier logits `z` and prototype logits `p` (both `[batch, C]`,
/// detached); returns `ŷ` (`[batch]`): `argmax_c s` where `max_c s >
/// threshold`, else the input label. Defaults: α = [`CORRECTION_ALPHA`]
/// (0.5), threshold = [`CORRECTION_THRESHOLD`] (0.8). Ties in the argmax go
/// to the backend's `max_dim_with_indices` choice. The result lives on the
/// same device as `labels`.
///
/// # Errors
/// [`LossError`] when `z` is empty, `p` differs from `z` in shape, the batch
/// sizes differ, a label is out of range, `α ∉ [0, 1]` or the threshold is
/// not finite.
pub fn correct_labels(
    z: Tensor<2>,
    p: Tensor<2>,
    labels: Tensor<1, Int>,
    alpha: f64,
    threshold: f64,
) -> Result<Tensor<1, Int>, LossError> {
    let [n, c] = z.dims();
    batch_matches(CORRECT, "z", [n, c], &labels)?;
    if p.dims() != [n, c] {
        return Err(LossError::InvalidShape {
            loss: CORRECT,
            what: "p",
            shape: p.dims().to_vec(),
            expected: format!("[{n}, {c}] like z"),
        });
    }
    labels_in_range(CORRECT, &host_labels(&labels), c)?;
    param_in(CORRECT, "alpha", alpha, 0.0, 1.0, "0 <= alpha <= 1")?;
    param_in(
        CORRECT,
        "threshold",
        threshold,
        f64::MIN,
        f64::MAX,
        "a finite threshold",
    )?;
    let p = to_storage(p, &z);
    let s = softmax(z.detach(), 1)
        .mul_scalar(alpha)
        .add(softmax(p, 1).mul_scalar(1.0 - alpha));
    let (best, arg) = s.max_dim_with_indices(1);
    let confident = best.greater_elem(threshold).reshape([n]);
    let arg = arg.reshape([n]);
    let (confident, arg) = if labels.is_autodiff() {
        (confident.autodiff(), arg.autodiff())
    } else {
        (confident.without_autodiff(), arg.without_autodiff())
    };
    Ok(labels.mask_where(confident, arg))
}

/// PNL's label-guided contrastive loss of queries `q` (`[batch, D]`) with
/// keys `k` (`[batch, D]`), queue keys `queue` (`[K, D]`) and their ids
/// `queue_ids` (`[K]`, `-1` = none): logits `l = [q·k, q·queueᵀ] / T`,
/// positives `M = [1, 1{queue_id_j = y_i}]` when `use_label_positives`
/// (else only the key, i.e. [`info_nce`](crate::moco::info_nce)), and
/// `L = mean_i −(1/Σ_j M_ij)·Σ_j M_ij·log softmax(l_i)_j`; a scalar `[1]`.
/// `k` and `queue` are detached.
///
/// Upstream builds the mask with the **uncorrected** labels (the mask comes
/// before the correction in code order) while the queue ids hold corrected
/// labels of past keys: pass the dataset labels `y` here to reproduce it, or
/// the corrected `ŷ` for the variant.
///
/// # Errors
/// [`LossError`] on shape mismatches (see [`info_nce`](crate::moco::info_nce)),
/// `queue_ids` without `K` entries, `labels` without `batch` entries, a
/// negative label (it would match empty slots), or `T` not finite and > 0.
pub fn label_guided_instance_loss(
    q: Tensor<2>,
    k: Tensor<2>,
    queue: Tensor<2>,
    queue_ids: Tensor<1, Int>,
    labels: Tensor<1, Int>,
    temperature: f64,
    use_label_positives: bool,
) -> Result<Tensor<1>, LossError> {
    check_contrastive(INST, &q, &k, &queue, temperature)?;
    let [n, d] = q.dims();
    let size = queue.dims()[0];
    batch_matches(INST, "q", [n, d], &labels)?;
    sizes_match(INST, ("queue", size), ("queue_ids", queue_ids.dims()[0]))?;
    if let Some(&label) = host_labels(&labels).iter().find(|l| **l < 0) {
        return Err(LossError::InvalidParameter {
            loss: INST,
            name: "labels",
            value: label as f64,
            expected: "labels >= 0 (-1 marks empty queue slots)",
        });
    }
    let logp = log_softmax(contrastive_logits(q, k, queue, temperature), 1);
    if !use_label_positives {
        return Ok(logp.narrow(1, 0, 1).neg().mean());
    }
    let ids = queue_ids
        .without_autodiff()
        .reshape([1, size])
        .expand([n, size]);
    let ys = labels.without_autodiff().reshape([n, 1]).expand([n, size]);
    let device = ids.device();
    let same = ys.equal(ids).float(); // [N, K]
    let mask = Tensor::cat(vec![Tensor::<2>::ones([n, 1], &device), same], 1);
    let count = mask.clone().sum_dim(1); // [N, 1], >= 1
    let per_sample = logp.mul(mask).sum_dim(1).div(count).neg();
    Ok(per_sample.mean())
}

/// Settings of [`pnl_step_losses`]; defaults are LUPerson-NL's `run_pnl.sh`.
#[derive(Debug, Clone, Copy, PartialEq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct PnlLossConfig {
    /// Classifier weight `α` in the correction score (0.5).
    pub alpha: f64,
    /// Correction threshold on `max s` (0.8).
    pub threshold: f64,
    /// Temperature `T` of the instance and prototype logits (0.07).
    pub temperature: f64,
    /// First 0-based epoch with label correction (11).
    pub start_clean_epoch: usize,
    /// First 0-based epoch with label-guided queue positives (15).
    pub start_supcont_epoch: usize,
    /// First 0-based epoch with the prototype loss (1).
    pub start_proto_epoch: usize,
    /// Weight of `CE(z, ŷ)` (1).
    pub w_cls: f64,
    /// Weight of `L_inst` (1).
    pub w_inst: f64,
    /// Weight of `CE(p, ŷ)` (1).
    pub w_proto: f64,
}

impl Default for PnlLossConfig {
    fn default() -> Self {
        Self {
            alpha: CORRECTION_ALPHA,
            threshold: CORRECTION_THRESHOLD,
            temperature: crate::moco::TEMPERATURE_LUP_NL,
            start_clean_epoch: START_CLEAN_EPOCH,
            start_supcont_epoch: START_SUPCONT_EPOCH,
            start_proto_epoch: START_PROTO_EPOCH,
            w_cls: 1.0,
            w_inst: 1.0,
            w_proto: 1.0,
        }
    }
}

impl PnlLossConfig {
    /// Checks the ranges: `α ∈ [0, 1]`, finite threshold, `T > 0`, finite weights.
    ///
    /// # Errors
    /// [`LossError::InvalidParameter`] naming the first bad field.
    pub fn validate(&self) -> Result<(), LossError> {
        param_in(STEP, "alpha", self.alpha, 0.0, 1.0, "0 <= alpha <= 1")?;
        param_in(
            STEP,
            "threshold",
            self.threshold,
            f64::MIN,
            f64::MAX,
            "a finite threshold",
        )?;
        positive(STEP, "temperature", self.temperature)?;
        for (name, w) in [
            ("w_cls", self.w_cls),
            ("w_inst", self.w_inst),
            ("w_proto", self.w_proto),
        ] {
            param_in(STEP, name, w, f64::MIN, f64::MAX, "a finite weight")?;
        }
        Ok(())
    }
}

/// The terms of one PNL iteration ([`pnl_step_losses`]); every loss is `[1]`.
#[derive(Debug, Clone)]
pub struct PnlStepLosses {
    /// `CE(z, ŷ)` (unweighted).
    pub classification: Tensor<1>,
    /// `L_inst` (unweighted).
    pub instance: Tensor<1>,
    /// `CE(p, ŷ)` (unweighted; 0 before `start_proto_epoch`).
    pub prototype: Tensor<1>,
    /// `w_cls·CE(z, ŷ) + w_inst·L_inst + w_proto·CE(p, ŷ)`: backpropagate this.
    pub total: Tensor<1>,
    /// `ŷ` (`[batch]`): the corrected labels (the input labels before
    /// `start_clean_epoch`). Enqueue the keys and update the bank with these.
    pub corrected_labels: Tensor<1, Int>,
}

/// The PNL losses of one iteration at 0-based `epoch`, in upstream order
/// (module docs): instance loss with the uncorrected `labels`, prototype
/// logits `q·Pᵀ/T`, correction, `CE(z, ŷ)`, `CE(p, ŷ)` (from
/// `start_proto_epoch`). Inputs: classifier logits `z` (`[batch, C]`),
/// queries `q` and keys `k` (`[batch, D]`), the queue **before** this step's
/// enqueue, the noisy labels (`[batch]`, in `0..C`) and the bank **before**
/// this step's update. Gradients flow to `z` and `q`. Afterwards the caller
/// does `queue.enqueue(k, Some(ŷ))` then `bank.update(q, ŷ)`.
///
/// # Errors
/// [`LossError`] for a bad config, shape mismatches (`C` of `z` vs the bank,
/// `D` of `q`/`k` vs queue and bank), batch mismatches or labels `≥ C`.
#[allow(clippy::too_many_arguments)]
pub fn pnl_step_losses(
    epoch: usize,
    z: Tensor<2>,
    q: Tensor<2>,
    k: Tensor<2>,
    queue: &InfoNceQueue,
    labels: Tensor<1, Int>,
    bank: &PrototypeBank,
    config: &PnlLossConfig,
) -> Result<PnlStepLosses, LossError> {
    config.validate()?;
    let [n, c] = z.dims();
    batch_matches(STEP, "z", [n, c], &labels)?;
    if c != bank.classes() {
        return Err(LossError::InvalidShape {
            loss: STEP,
            what: "z",
            shape: vec![n, c],
            expected: format!("[N, {}] (the bank's classes)", bank.classes()),
        });
    }
    labels_in_range(STEP, &host_labels(&labels), c)?;
    let [nq, d] = q.dims();
    sizes_match(STEP, ("z", n), ("q", nq))?;
    if d != bank.dim() {
        return Err(dim_mismatch(STEP, "q", [nq, d], bank.dim()));
    }
    let t = config.temperature;
    let instance = label_guided_instance_loss(
        q.clone(),
        k,
        queue.keys(),
        queue.ids(),
        labels.clone(),
        t,
        epoch >= config.start_supcont_epoch,
    )?;
    let need_p = epoch >= config.start_proto_epoch || epoch >= config.start_clean_epoch;
    let p = if need_p {
        Some(proto_logits(q, bank, t)?)
    } else {
        None
    };
    let corrected = match &p {
        Some(p) if epoch >= config.start_clean_epoch => {
            correct_labels(z.clone(), p.clone(), labels, config.alpha, config.threshold)?
        }
        _ => labels,
    };
    let plain = CrossEntropyConfig {
        epsilon: 0.0,
        ..CrossEntropyConfig::default()
    };
    let device = z.device();
    let classification = cross_entropy_label_smooth(z, corrected.clone(), &plain)?;
    let prototype = match p {
        Some(p) if epoch >= config.start_proto_epoch => {
            cross_entropy_label_smooth(p, corrected.clone(), &plain)?
        }
        _ => Tensor::<1>::zeros([1], &device),
    };
    let total = classification
        .clone()
        .mul_scalar(config.w_cls)
        .add(instance.clone().mul_scalar(config.w_inst))
        .add(prototype.clone().mul_scalar(config.w_proto));
    Ok(PnlStepLosses {
        classification,
        instance,
        prototype,
        total,
        corrected_labels: corrected,
    })
}
