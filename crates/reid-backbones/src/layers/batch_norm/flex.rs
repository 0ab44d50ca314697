//! The glue to burn-flex and burn's autodiff: flex tensors in and out of
//! the [`kernels`](super::kernels), and the custom backward step.

use super::kernels::{self, Layout, Stats};
use crate::layers::flex_io::{tensor, values};
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// What the backward step needs besides the saved input.
#[derive(Debug, Clone)]
struct Saved {
    x: NodeId,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    stats: Stats,
    layout: Layout,
    shape: Vec<usize>,
    eps: f64,
    relu: bool,
}

/// The backward step: gradients of the input, γ and β.
#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    type State = Saved;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(s.x);
        let g = kernels::backward(
            &values(&x),
            &values(&grad),
            &s.gamma,
            &s.beta,
            &s.stats,
            s.layout,
            s.eps,
            s.relu,
        );
        let channels = [s.layout.channels];
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(g.x, s.shape));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor(g.gamma, channels));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor(g.beta, channels));
        }
    }
}

/// The statistics as `[channels]` tensors on `device` (untracked).
fn stat_tensors(stats: &Stats, device: &Device) -> (Tensor<1>, Tensor<1>) {
    let c = stats.mean.len();
    (
        Tensor::from_data(TensorData::new(stats.mean.clone(), [c]), device),
        Tensor::from_data(TensorData::new(stats.var.clone(), [c]), device),
    )
}

/// Training-mode BatchNorm (and ReLU) on flex, plain or autodiff, for
/// `f32` tensors; `None` when they live elsewhere, hold another type or
/// have no channels.
pub fn run<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    eps: f64,
    relu: bool,
) -> Option<BatchNormTrainOutput<D>> {
    if x.dtype() != DType::F32 || gamma.dtype() != DType::F32 || beta.dtype() != DType::F32 {
        return None;
    }
    let shape = x.dims().to_vec();
    let layout = Layout::of(&shape)?;
    if gamma.dims()[0] != layout.channels || beta.dims()[0] != layout.channels {
        return None;
    }
    let device = x.device();
    if let (Ok(xp), Ok(gp), Ok(bp)) = (
        x.clone().try_into_primitive::<Flex>(),
        gamma.clone().try_into_primitive::<Flex>(),
        beta.clone().try_into_primitive::<Flex>(),
    ) {
        let (y, stats) =
            kernels::forward(&values(&xp), &values(&gp), &values(&bp), layout, eps, relu);
        let (mean, variance) = stat_tensors(&stats, &device);
        return Some(BatchNormTrainOutput {
            output: Tensor::from_primitive::<Flex>(tensor(y, shape)),
            mean,
            variance,
        });
    }
    let (Ok(xa), Ok(ga), Ok(ba)) = (
        x.clone().try_into_primitive::<Autodiff<Flex>>(),
        gamma.clone().try_into_primitive::<Autodiff<Flex>>(),
        beta.clone().try_into_primitive::<Autodiff<Flex>>(),
    ) else {
        return None;
    };
    let gamma_v = values(ga.primitive()).into_owned();
    let beta_v = values(ba.primitive()).into_owned();
    let (y, stats) = kernels::forward(
        &values(xa.primitive()),
        &gamma_v,
        &beta_v,
        layout,
        eps,
        relu,
    );
    let (mean, variance) = stat_tensors(&stats, &device);
    let y = tensor(y, shape.clone());
    let out = match BatchNormBackward
        .prepare::<NoCheckpointing>([xa.node(), ga.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_id = prep.checkpoint(&xa);
            let saved = Saved {
                x: x_id,
                gamma: gamma_v,
                beta: beta_v,
                stats,
                layout,
                shape,
                eps,
                relu,
            };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(BatchNormTrainOutput {
        output: Tensor::from_primitive::<Autodiff<Flex>>(out),
        mean,
        variance,
    })
}
