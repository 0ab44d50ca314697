//! Data-parallel training steps over several devices, on burn's own
//! multi-device primitive (no home-made communication layer).
//!
//! Each device gets a copy of the model ([`Module::fork`]) and its shard of
//! the batch; forward and backward run on every device at once (one thread
//! per device), the per-device gradients are gathered in burn's
//! [`MultiGradientsParams`], and [`ModuleOptimizer::step_multi`] sums them
//! per parameter on that parameter's device and updates the model — what
//! burn-train's `MultiDevice` strategy does inside its `Learner`.
//!
//! Each shard's loss is the mean over its own rows, weighted by
//! `rows / batch` before the backward pass, so the summed gradient is the
//! gradient of the full-batch mean: with per-row losses and no
//! batch-coupled layers the step equals the single-device step (tested).
//! What does couple rows stays per device, as in PyTorch's
//! `DistributedDataParallel` without `SyncBatchNorm`: BatchNorm statistics
//! and hard-example mining (fast-reid mines triplets per GPU) see one shard,
//! so shards are cut on identity-group boundaries ([`shard_ranges`]).
//!
//! [`ModuleOptimizer::step_multi`]: burn::optim::ModuleOptimizer::step_multi

use std::ops::Range;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use reid_backbones::visit::{PathVisitor, visit_with_paths};
use reid_losses::moco::{
    BATCH_NORM_BUFFERS, group_sizes, shuffle_permutation, shuffled_group_forward,
};

use crate::error::TrainError;

/// The devices a data-parallel step runs on; the first is the main device
/// (where the model lives between steps).
#[derive(Debug, Clone)]
pub struct DataParallel {
    devices: Vec<Device>,
}

/// One shard's result: its weighted loss value and what the step function
/// returned beside the loss.
#[derive(Debug)]
pub struct ShardOutput<T> {
    /// The shard's mean loss (before weighting).
    pub loss: f64,
    /// Rows in the shard.
    pub rows: usize,
    /// The step function's other output.
    pub extra: T,
}

/// Splits `batch` rows into `parts` contiguous ranges whose lengths are
/// multiples of `group` (identity groups of a PK batch stay whole) and differ
/// by at most one group; leading parts take the extra groups.
///
/// # Errors
/// `group` is 0, `batch` is not a multiple of `group`, or there are fewer
/// groups than parts (a device would get an empty shard).
pub fn shard_ranges(
    batch: usize,
    group: usize,
    parts: usize,
) -> Result<Vec<Range<usize>>, TrainError> {
    if group == 0 || parts == 0 || !batch.is_multiple_of(group) {
        return Err(TrainError::InvalidConfig(format!(
            "cannot shard a batch of {batch} rows in groups of {group} over {parts} devices"
        )));
    }
    let groups = batch / group;
    if groups < parts {
        return Err(TrainError::InvalidConfig(format!(
            "a batch of {groups} identity groups cannot feed {parts} devices (one group each at least)"
        )));
    }
    let (base, extra) = (groups / parts, groups % parts);
    let mut start = 0;
    Ok((0..parts)
        .map(|i| {
            let len = (base + usize::from(i < extra)) * group;
            let r = start..start + len;
            start += len;
            r
        })
        .collect())
}

impl DataParallel {
    /// Data parallelism over `devices` (the first is the main device).
    ///
    /// # Errors
    /// `devices` is empty.
    pub fn new(devices: Vec<Device>) -> Result<Self, TrainError> {
        if devices.is_empty() {
            return Err(TrainError::InvalidConfig(
                "data-parallel training needs at least one device".into(),
            ));
        }
        Ok(Self { devices })
    }

    /// One device: every batch runs whole on `device`, on the calling
    /// thread ([`grads`](Self::grads) and
    /// [`shuffled_forward`](Self::shuffled_forward) then compute what the
    /// recipes' single-device steps compute, to the bit).
    pub fn single(device: &Device) -> Self {
        Self {
            devices: vec![device.clone()],
        }
    }

    /// The devices, main device first.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// [`shard_ranges`] of a `batch` in identity groups of `group` rows,
    /// one shard per device.
    ///
    /// # Errors
    /// As [`shard_ranges`].
    pub fn shards(&self, batch: usize, group: usize) -> Result<Vec<Range<usize>>, TrainError> {
        shard_ranges(batch, group, self.devices.len())
    }

    /// Runs `step` for every shard, shard `i` on device `i` with a replica
    /// of `model` there ([`replica`](Self::replica)), and returns burn's
    /// per-device gradients and the shards' outputs (in device order).
    ///
    /// `step(model, shard, device)` builds shard `i`'s inputs (rows
    /// `shards[i]` of the batch) on `device`, runs the forward pass and
    /// returns the shard's mean loss (a one-element tensor on `device`)
    /// with anything else it wants back; the loss is weighted by the
    /// shard's share of the rows. With one device everything runs on the
    /// calling thread on `model` itself.
    ///
    /// # Errors
    /// `shards` does not have one entry per device or holds no row, or a
    /// `step` failed (the first error in device order).
    pub fn grads<M: Module, T: Send, F>(
        &self,
        model: &M,
        shards: &[Range<usize>],
        step: F,
    ) -> Result<(MultiGradientsParams, Vec<ShardOutput<T>>), TrainError>
    where
        F: Fn(M, usize, &Device) -> Result<(Tensor<1>, T), TrainError> + Sync,
    {
        self.grads_scaled(model, shards, 1.0, step)
    }

    /// [`grads`](Self::grads) of the loss multiplied by `scale` (the loss
    /// scale of an `f16` run, [`LossScaler`](super::precision::LossScaler)); the
    /// shards' reported losses are not scaled.
    ///
    /// # Errors
    /// As [`grads`](Self::grads).
    pub fn grads_scaled<M, T, F>(
        &self,
        model: &M,
        shards: &[Range<usize>],
        scale: f64,
        step: F,
    ) -> Result<(MultiGradientsParams, Vec<ShardOutput<T>>), TrainError>
    where
        M: Module,
        T: Send,
        F: Fn(M, usize, &Device) -> Result<(Tensor<1>, T), TrainError> + Sync,
    {
        let total: usize = shards.iter().map(Range::len).sum();
        if shards.len() != self.devices.len() || total == 0 {
            return Err(TrainError::InvalidConfig(format!(
                "{} shards {shards:?} for {} devices",
                shards.len(),
                self.devices.len()
            )));
        }
        let multi_device = self.devices.len() > 1;
        let run = |i: usize, device: &Device, replica: M| -> Result<_, TrainError> {
            let (loss, extra) = step(replica.clone(), i, device)?;
            let rows = shards[i].len();
            let weight = rows as f64 / total as f64 * scale;
            let value = super::step::scalar(&loss)?;
            let grads = GradientsParams::from_grads((loss * weight).backward(), &replica);
            Ok((
                grads,
                ShardOutput {
                    loss: value,
                    rows,
                    extra,
                },
                if multi_device {
                    running_stats(&replica)
                } else {
                    Vec::new()
                },
            ))
        };
        let results: Vec<Result<_, TrainError>> = if self.devices.len() == 1 {
            vec![run(0, &self.devices[0], model.clone())]
        } else {
            self.on_each_device(model, run)
        };
        let mut multi = MultiGradientsParams::default();
        let mut outputs = Vec::with_capacity(results.len());
        let mut stats = Vec::with_capacity(results.len());
        for (r, device) in results.into_iter().zip(&self.devices) {
            let (grads, out, st) = r?;
            multi.grads.push((grads, device.clone()));
            outputs.push(out);
            stats.push(st);
        }
        if multi_device {
            self.fold_running_stats(model, stats);
        }
        Ok((multi, outputs))
    }

    /// Shuffle-BN across the devices, as upstream MoCo runs its key
    /// encoder: permutes the batch `x` (`[batch, …]`, on the main device)
    /// with [`shuffle_permutation`]`(batch, seed)`, cuts it into `groups`
    /// contiguous groups ([`group_sizes`]), runs `forward(model, group)` for
    /// group `j` on device `j mod devices` (a copy of `model` forked there;
    /// the devices work at once), gathers the `[group, dim]` outputs on the
    /// main device and undoes the permutation: row `i` of the `[batch, dim]`
    /// result is the output for row `i` of `x`. Every group sees the rows
    /// it would see on one device, so the result is
    /// [`shuffled_group_forward`]'s whatever the number of devices (tested).
    /// Meant for a no-grad encoder (MoCo's and PNL's key encoders).
    ///
    /// # Errors
    /// `x` is empty, `groups ∉ 1..=batch`, or `forward` returned a number of
    /// rows other than its group's.
    pub fn shuffled_forward<M, const D: usize, F>(
        &self,
        model: &M,
        x: Tensor<D>,
        groups: usize,
        seed: u64,
        forward: F,
    ) -> Result<Tensor<2>, TrainError>
    where
        M: Module,
        F: Fn(&M, Tensor<D>) -> Tensor<2> + Sync,
    {
        let n = x.dims()[0];
        if self.devices.len() == 1 || n == 0 || groups == 0 || groups > n {
            // One device, or input the single-device function refuses with
            // its own error.
            return Ok(shuffled_group_forward(x, groups, seed, |g| {
                forward(model, g)
            })?);
        }
        let main = &self.devices[0];
        let perm = shuffle_permutation(n, seed);
        let mut inverse = vec![0i64; n];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i as i64;
        }
        let perm: Vec<i64> = perm.iter().map(|&p| p as i64).collect();
        let shuffled = x.select(0, Tensor::from_data(TensorData::new(perm, [n]), main));
        let mut chunks = Vec::with_capacity(groups);
        let mut start = 0;
        for size in group_sizes(n, groups) {
            chunks.push(shuffled.clone().narrow(0, start, size));
            start += size;
        }
        let parts = self.devices.len();
        type Worker = Result<(Vec<(usize, Tensor<2>)>, Vec<Tensor<1>>), TrainError>;
        let per_device: Vec<Worker> = self.on_each_device(model, |d, device, replica| {
            let mut outs = Vec::new();
            for j in (d..chunks.len()).step_by(parts) {
                let rows = chunks[j].dims()[0];
                let out = forward(&replica, chunks[j].clone().to_device(device));
                if out.dims()[0] != rows {
                    return Err(TrainError::InvalidConfig(format!(
                        "the shuffle-BN forward returned {:?} for a group of {rows} rows",
                        out.dims()
                    )));
                }
                outs.push((j, out.to_device(main)));
            }
            Ok((outs, running_stats(&replica)))
        });
        let mut outputs: Vec<Option<Tensor<2>>> = vec![None; groups];
        let mut stats = Vec::with_capacity(parts);
        for r in per_device {
            let (outs, st) = r?;
            for (j, out) in outs {
                outputs[j] = Some(out);
            }
            stats.push(st);
        }
        self.fold_running_stats(model, stats);
        let outputs: Vec<Tensor<2>> = outputs.into_iter().flatten().collect();
        let inverse = Tensor::from_data(TensorData::new(inverse, [n]), main);
        Ok(Tensor::cat(outputs, 0).select(0, inverse))
    }

    /// `work(i, device, replica)` on every device at once, a thread each
    /// (`replica`: [`replica`](Self::replica)`(model, i)`), the results in
    /// device order; a worker's panic is an error.
    fn on_each_device<M, R, F>(&self, model: &M, work: F) -> Vec<Result<R, TrainError>>
    where
        M: Module,
        R: Send,
        F: Fn(usize, &Device, M) -> Result<R, TrainError> + Sync,
    {
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .devices
                .iter()
                .enumerate()
                .map(|(i, device)| {
                    let replica = self.replica(model, i);
                    let work = &work;
                    s.spawn(move || work(i, device, replica))
                })
                .collect();
            handles.into_iter().map(join_worker).collect()
        })
    }

    /// A copy of `model` on device `i` for one step: the same parameters
    /// (ids, values, trainable flags) but BatchNorm running statistics of
    /// its own. (burn's `RunningState` is shared by clones and forks, and
    /// threads updating one state fold their updates in an order that
    /// depends on timing; own copies keep the run deterministic.)
    pub fn replica<M: Module>(&self, model: &M, i: usize) -> M {
        // `train()` rebuilds every running state around its current value.
        model.clone().train().fork(&self.devices[i])
    }

    /// Sets `model`'s BatchNorm running statistics to the mean, over the
    /// devices in order, of the replicas' statistics after a step
    /// (`stats[i]`: device `i`'s [`running_stats`]): every replica started
    /// from `model`'s, so the statistics move by the mean of the shards'
    /// updates, as one update with the averaged batch statistics would.
    /// Nothing happens for a model without running statistics.
    pub fn fold_running_stats<M: Module>(&self, model: &M, stats: Vec<Vec<Tensor<1>>>) {
        let n = stats.len();
        let Some(count) = stats.first().map(Vec::len) else {
            return;
        };
        if count == 0 {
            return;
        }
        let main = &self.devices[0];
        let mut sums: Vec<Option<Tensor<1>>> = vec![None; count];
        for device_stats in stats {
            for (sum, t) in sums.iter_mut().zip(device_stats) {
                let t = t.to_device(main);
                *sum = Some(match sum.take() {
                    Some(acc) => acc + t,
                    None => t,
                });
            }
        }
        let values: Vec<Tensor<1>> = sums
            .into_iter()
            .flatten()
            .map(|t| t.div_scalar(n as f64))
            .collect();
        // `RunningState::map` writes the new value into the state it shares
        // with `model`; the mapped copy itself is not needed.
        let _ = model.clone().map(&mut StatWriter {
            path: Vec::new(),
            values: values.into_iter(),
        });
    }

    /// Sums the per-device gradients of `model`'s parameters onto the main
    /// device (burn's [`MultiGradientsParams::remove`] per parameter), for
    /// recipes that post-process gradients (clipping, freezing, decoupled
    /// weight decay) before [`ModuleOptimizer::step`].
    ///
    /// [`ModuleOptimizer::step`]: burn::optim::ModuleOptimizer::step
    pub fn reduce<M: Module>(&self, model: &M, mut grads: MultiGradientsParams) -> GradientsParams {
        struct Sum<'a> {
            grads: &'a mut MultiGradientsParams,
            out: GradientsParams,
            device: &'a Device,
        }
        impl ModuleVisitor for Sum<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some((g, _)) = self.grads.remove::<D>(param.id) {
                    self.out.register::<D>(param.id, g.to_device(self.device));
                }
            }
        }
        let mut sum = Sum {
            grads: &mut grads,
            out: GradientsParams::new(),
            device: &self.devices[0],
        };
        model.visit(&mut sum);
        sum.out
    }
}

/// Whether a module path names a BatchNorm running statistic.
fn is_running_stat(path: &[String]) -> bool {
    path.last()
        .is_some_and(|leaf| BATCH_NORM_BUFFERS.contains(&leaf.as_str()))
}

/// The BatchNorm running statistics of `model` (fields named in
/// [`BATCH_NORM_BUFFERS`]), flattened to `[numel]`, in walk order, with
/// pending updates folded in first.
pub fn running_stats<M: Module>(model: &M) -> Vec<Tensor<1>> {
    struct Reader(Vec<Tensor<1>>);
    impl PathVisitor for Reader {
        fn visit_float_at<const D: usize>(&mut self, path: &[String], param: &Param<Tensor<D>>) {
            if is_running_stat(path) {
                let v = param.val().detach();
                let numel = v.shape().num_elements();
                self.0.push(v.reshape([numel]));
            }
        }
    }
    // `valid()` folds this thread's pending `RunningState` update in.
    let _ = model.valid();
    visit_with_paths(model, Reader(Vec::new())).0
}

/// Writes flattened values into the running statistics met in walk order.
struct StatWriter {
    path: Vec<String>,
    values: std::vec::IntoIter<Tensor<1>>,
}

impl ModuleMapper for StatWriter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if !is_running_stat(&self.path) {
            return param;
        }
        let Some(value) = self.values.next() else {
            return param;
        };
        let (id, old, mapper) = param.consume();
        let value = value.reshape(old.shape()).to_device(&old.device());
        Param::from_mapped_value(id, value, mapper)
    }
}

/// A worker thread's result; a panic in it is an error, not a panic here.
fn join_worker<T>(
    h: std::thread::ScopedJoinHandle<'_, Result<T, TrainError>>,
) -> Result<T, TrainError> {
    h.join().unwrap_or_else(|_| {
        Err(TrainError::InvalidConfig(
            "a data-parallel worker thread panicked".into(),
        ))
    })
}

/// The data parallelism `run` asks for ([`RunOptions::devices`]): the
/// autodiff version of `device` alone for no or one device (a
/// data-parallel run of one, [`DataParallel::single`]), otherwise the
/// autodiff versions of the devices, main device first.
///
/// # Errors
/// The first of `run.devices` is not `device`, the recipe's own: the model
/// lives there between steps, and the gradients are summed there.
pub(crate) fn data_parallel(
    run: &super::options::RunOptions,
    device: &Device,
) -> Result<DataParallel, TrainError> {
    match run.devices.first() {
        Some(first) if first != device => Err(TrainError::InvalidConfig(format!(
            "the first data-parallel device ({first:?}) must be the recipe's device ({device:?})"
        ))),
        _ if run.devices.len() < 2 => Ok(DataParallel::single(&if device.is_autodiff() {
            device.clone()
        } else {
            device.clone().autodiff()
        })),
        _ => DataParallel::new(run.devices.iter().map(|d| d.clone().autodiff()).collect()),
    }
}

/// The batch's mean loss from its shards' means (weighted by their rows).
pub(crate) fn weighted_loss<T>(outs: &[ShardOutput<T>]) -> f64 {
    let total: usize = outs.iter().map(|o| o.rows).sum();
    outs.iter()
        .map(|o| o.loss * o.rows as f64 / total.max(1) as f64)
        .sum()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::options::RunOptions;

    #[test]
    fn data_parallelism_starts_at_two_devices() {
        let device = Device::flex();
        let alone = data_parallel(&RunOptions::default(), &device).unwrap();
        assert_eq!(alone.devices().len(), 1);
        assert!(alone.devices()[0].is_autodiff());
        let one = RunOptions {
            devices: vec![device.clone()],
            ..RunOptions::default()
        };
        assert_eq!(data_parallel(&one, &device).unwrap().devices().len(), 1);
        let two = RunOptions {
            devices: vec![device.clone(), device.clone()],
            ..RunOptions::default()
        };
        let dp = data_parallel(&two, &device).unwrap();
        assert_eq!(dp.devices().len(), 2);
        assert!(dp.devices().iter().all(Device::is_autodiff));
        // burn compares devices by hardware, so the autodiff handle is the
        // recipe's device too (flex has no second device to refuse).
        assert!(data_parallel(&two, &device.clone().autodiff()).is_ok());
    }

    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::AdamConfig;

    fn inputs(device: &Device, rows: Range<usize>) -> (Tensor<2>, Tensor<2>) {
        let n = rows.len();
        let x: Vec<f32> = rows
            .clone()
            .flat_map(|r| (0..5).map(move |c| ((r * 7 + c * 3) % 11) as f32 / 5.0 - 1.0))
            .collect();
        let y: Vec<f32> = rows
            .flat_map(|r| (0..3).map(move |c| ((r * 5 + c) % 7) as f32 / 3.0 - 1.0))
            .collect();
        (
            Tensor::from_data(TensorData::new(x, [n, 5]), device),
            Tensor::from_data(TensorData::new(y, [n, 3]), device),
        )
    }

    fn mse(model: &Linear, device: &Device, rows: Range<usize>) -> Tensor<1> {
        let (x, y) = inputs(device, rows);
        (model.forward(x) - y).square().mean()
    }

    /// The largest absolute difference of two equally long weight lists.
    pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()))
    }

    /// A linear layer's weight then bias values.
    pub(crate) fn weights(m: &Linear) -> Vec<f32> {
        let mut w: Vec<f32> = m.weight.val().into_data().try_to_vec().unwrap();
        w.extend(
            m.bias
                .as_ref()
                .unwrap()
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        w
    }

    #[test]
    fn shards_follow_identity_groups() {
        assert_eq!(shard_ranges(16, 4, 2).unwrap(), vec![0..8, 8..16]);
        assert_eq!(shard_ranges(12, 4, 2).unwrap(), vec![0..8, 8..12]);
        assert_eq!(shard_ranges(6, 1, 4).unwrap(), vec![0..2, 2..4, 4..5, 5..6]);
        assert!(
            shard_ranges(10, 4, 2).is_err(),
            "not a multiple of the group"
        );
        assert!(shard_ranges(8, 4, 3).is_err(), "an empty shard");
        assert!(DataParallel::new(Vec::new()).is_err());
    }

    /// Two shards on two devices (both the CPU here) give the single-device
    /// gradient of the full-batch mean, so Adam takes the same step.
    #[test]
    fn sharded_steps_equal_the_single_device_step() {
        let device = Device::flex().autodiff();
        let model: Linear = LinearConfig::new(5, 3).init(&device);
        let shards = shard_ranges(8, 2, 2).unwrap();

        let mut single = model.clone();
        let mut opt1 = AdamConfig::new().init();
        let mut multi = model.clone();
        let mut opt2 = AdamConfig::new().init();
        let dp = DataParallel::new(vec![device.clone(), device.clone()]).unwrap();
        for _ in 0..3 {
            let grads =
                GradientsParams::from_grads(mse(&single, &device, 0..8).backward(), &single);
            single = opt1.step(1e-2, single, grads);

            let (grads, out) = dp
                .grads(&multi, &shards, |m, i, d| {
                    Ok((mse(&m, d, shards[i].clone()), i))
                })
                .unwrap();
            assert_eq!(out.iter().map(|o| o.extra).collect::<Vec<_>>(), vec![0, 1]);
            assert_eq!(out.iter().map(|o| o.rows).sum::<usize>(), 8);
            multi = opt2.step_multi(1e-2, multi, grads);
        }
        // `reduce` gives the same summed gradient for a plain `step`.
        let mut reduced = model.clone();
        let mut opt3 = AdamConfig::new().init();
        for _ in 0..3 {
            let (grads, _) = dp
                .grads(&reduced, &shards, |m, i, d| {
                    Ok((mse(&m, d, shards[i].clone()), ()))
                })
                .unwrap();
            let grads = dp.reduce(&reduced, grads);
            reduced = opt3.step(1e-2, reduced, grads);
        }
        let (a, b) = (weights(&single.valid()), weights(&multi.valid()));
        let c = weights(&reduced.valid());
        let err3 = max_abs_diff(&a, &c);
        assert!(
            err3 < 1e-6,
            "reduced data-parallel weights differ by {err3}"
        );
        let err = max_abs_diff(&a, &b);
        assert!(err < 1e-6, "data-parallel weights differ by {err}");
        assert_ne!(weights(&model.valid()), a, "the steps changed the weights");
    }

    /// The groups of shuffle-BN spread over two or three device handles give
    /// the single-device result exactly, with a forward that couples the
    /// rows of a group (it subtracts the group mean, as BatchNorm does).
    #[test]
    fn shuffle_bn_over_devices_is_the_single_device_result() {
        let device = Device::flex().autodiff();
        let model: Linear = LinearConfig::new(5, 3).init(&device);
        let (x, _) = inputs(&device, 0..10);
        let coupled = |m: &Linear, g: Tensor<2>| {
            let rows = g.dims()[0];
            m.forward(g.clone() - g.mean_dim(0).repeat_dim(0, rows))
        };
        for groups in [1, 3, 4] {
            let one = shuffled_group_forward(x.clone(), groups, 11, |g| coupled(&model, g))
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for parts in [2, 3] {
                let dp = DataParallel::new(vec![device.clone(); parts]).unwrap();
                let many = dp
                    .shuffled_forward(&model, x.clone(), groups, 11, coupled)
                    .unwrap();
                assert_eq!(many.dims(), [10, 3]);
                assert_eq!(
                    many.into_data().try_to_vec::<f32>().unwrap(),
                    one,
                    "{groups} groups over {parts} devices"
                );
            }
        }
        let dp = DataParallel::new(vec![device.clone(); 2]).unwrap();
        assert!(
            dp.shuffled_forward(&model, x.clone(), 11, 1, coupled)
                .is_err()
        );
        assert!(
            dp.shuffled_forward(&model, x, 2, 1, |m: &Linear, g: Tensor<2>| m
                .forward(g)
                .narrow(0, 0, 1))
                .is_err()
        );
    }

    /// Each replica updates BatchNorm running statistics of its own; the
    /// model's move by the mean of the shards' updates, and the same way on
    /// every run.
    #[test]
    fn running_statistics_move_by_the_mean_of_the_shards() {
        use burn::nn::{BatchNorm, BatchNormConfig};
        let device = Device::flex().autodiff();
        let bn: BatchNorm = BatchNormConfig::new(2).init(&device);
        // Shard i holds rows of value 2i+1 (channel 0) and -(2i+1) (channel 1).
        let shard = |i: usize, d: &Device| {
            let v = (2 * i + 1) as f32;
            let data: Vec<f32> = (0..3).flat_map(|_| [v, -v]).collect();
            Tensor::<4>::from_data(TensorData::new(data, [3, 2, 1, 1]), d)
        };
        let dp = DataParallel::new(vec![device.clone(); 2]).unwrap();
        let (_, _) = dp
            .grads(&bn, &[0..3, 3..6], |m, i, d| {
                Ok((m.forward(shard(i, d)).square().mean().reshape([1]), ()))
            })
            .unwrap();
        let mean: Vec<f32> = bn
            .valid()
            .running_mean
            .value()
            .into_data()
            .try_to_vec()
            .unwrap();
        // 0.9·0 + 0.1·mean(1, 3) and its negative.
        assert!(
            (mean[0] - 0.2).abs() < 1e-6 && (mean[1] + 0.2).abs() < 1e-6,
            "{mean:?}"
        );
        assert_eq!(running_stats(&bn).len(), 2, "running mean and variance");
    }

    #[test]
    fn a_failing_shard_is_the_error() {
        let device = Device::flex().autodiff();
        let model: Linear = LinearConfig::new(5, 3).init(&device);
        let dp = DataParallel::new(vec![device.clone(), device.clone()]).unwrap();
        let Err(err) = dp.grads(&model, &[0..4, 4..8], |m, i, d| {
            if i == 1 {
                Err(TrainError::InvalidConfig("shard 1 broke".into()))
            } else {
                Ok((mse(&m, d, 0..4), ()))
            }
        }) else {
            panic!("a failing shard was not an error");
        };
        assert!(err.to_string().contains("shard 1 broke"), "{err}");
        assert!(
            dp.grads(&model, std::slice::from_ref(&(0..4)), |m, _, d| Ok((
                mse(&m, d, 0..4),
                ()
            )))
            .is_err()
        );
    }
}
