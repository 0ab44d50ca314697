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

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, MultiGradientsParams};
use burn::tensor::{Device, Tensor};

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

    /// The devices, main device first.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Runs `step` for every shard, shard `i` on device `i` with a copy of
    /// `model` forked there, and returns burn's per-device gradients and the
    /// shards' outputs (in device order).
    ///
    /// `step(model, shard, device)` builds its shard's inputs on `device`,
    /// runs the forward pass and returns the shard's mean loss (a
    /// one-element tensor on `device`) with anything else it wants back;
    /// `rows[i]` is shard `i`'s row count, which weights its loss. With one
    /// device everything runs on the calling thread.
    ///
    /// # Errors
    /// `rows` does not have one entry per device or sums to 0, or a `step`
    /// failed (the first error in device order).
    pub fn grads<M, T, F>(
        &self,
        model: &M,
        rows: &[usize],
        step: F,
    ) -> Result<(MultiGradientsParams, Vec<ShardOutput<T>>), TrainError>
    where
        M: Module,
        T: Send,
        F: Fn(M, usize, &Device) -> Result<(Tensor<1>, T), TrainError> + Sync,
    {
        let total: usize = rows.iter().sum();
        if rows.len() != self.devices.len() || total == 0 {
            return Err(TrainError::InvalidConfig(format!(
                "{} shard sizes {rows:?} for {} devices",
                rows.len(),
                self.devices.len()
            )));
        }
        let run = |i: usize, device: &Device, replica: M| -> Result<_, TrainError> {
            let (loss, extra) = step(replica.clone(), i, device)?;
            let weight = rows[i] as f64 / total as f64;
            let value = crate::pretrain::scalar(&loss)?;
            let grads = GradientsParams::from_grads((loss * weight).backward(), &replica);
            Ok((
                grads,
                ShardOutput {
                    loss: value,
                    rows: rows[i],
                    extra,
                },
            ))
        };
        let results: Vec<Result<_, TrainError>> = if self.devices.len() == 1 {
            vec![run(0, &self.devices[0], model.clone())]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = self
                    .devices
                    .iter()
                    .enumerate()
                    .map(|(i, device)| {
                        let replica = model.clone().fork(device);
                        let run = &run;
                        s.spawn(move || run(i, device, replica))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(TrainError::InvalidConfig(
                                "a data-parallel worker thread panicked".into(),
                            ))
                        })
                    })
                    .collect()
            })
        };
        let mut multi = MultiGradientsParams::default();
        let mut outputs = Vec::with_capacity(results.len());
        for (r, device) in results.into_iter().zip(&self.devices) {
            let (grads, out) = r?;
            multi.grads.push((grads, device.clone()));
            outputs.push(out);
        }
        Ok((multi, outputs))
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::AdamConfig;
    use burn::tensor::TensorData;

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

    fn weights(m: &Linear) -> Vec<f32> {
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
        let rows: Vec<usize> = shards.iter().map(Range::len).collect();

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
                .grads(&multi, &rows, |m, i, d| {
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
                .grads(&reduced, &rows, |m, i, d| {
                    Ok((mse(&m, d, shards[i].clone()), ()))
                })
                .unwrap();
            let grads = dp.reduce(&reduced, grads);
            reduced = opt3.step(1e-2, reduced, grads);
        }
        let (a, b) = (weights(&single.valid()), weights(&multi.valid()));
        let c = weights(&reduced.valid());
        let err3 = a
            .iter()
            .zip(&c)
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            err3 < 1e-6,
            "reduced data-parallel weights differ by {err3}"
        );
        let err = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(err < 1e-6, "data-parallel weights differ by {err}");
        assert_ne!(weights(&model.valid()), a, "the steps changed the weights");
    }

    #[test]
    fn a_failing_shard_is_the_error() {
        let device = Device::flex().autodiff();
        let model: Linear = LinearConfig::new(5, 3).init(&device);
        let dp = DataParallel::new(vec![device.clone(), device.clone()]).unwrap();
        let Err(err) = dp.grads(&model, &[4, 4], |m, i, d| {
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
            dp.grads(&model, &[4], |m, _, d| Ok((mse(&m, d, 0..4), ())))
                .is_err()
        );
    }
}
