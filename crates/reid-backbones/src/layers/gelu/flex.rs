//! The glue to burn-flex and burn's autodiff: flex tensors in and out of
//! the [`kernels`](super::kernels), and the custom backward step.

use super::kernels;
use crate::layers::flex_io::{tensor, values};
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor};

fn forward_flex(x: &FlexTensor, shape: &[usize]) -> FlexTensor {
    tensor(kernels::forward(&values(x)), shape.to_vec())
}

/// The backward step: `grad · GELU'(x)` from the saved input.
#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    /// The saved input and its shape.
    type State = (NodeId, Vec<usize>);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(node) = node_x else {
            return;
        };
        let (x_id, shape) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_id);
        let dx = kernels::backward(&values(&x), &values(&grad));
        grads.register::<Flex>(node.id, tensor(dx, shape));
    }
}

/// GELU on flex (plain or autodiff) for `f32` tensors; `None` when the
/// tensor lives elsewhere or holds another type.
pub fn run<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let shape = x.dims().to_vec();
    if let Ok(xp) = x.clone().try_into_primitive::<Flex>() {
        return Some(Tensor::from_primitive::<Flex>(forward_flex(&xp, &shape)));
    }
    let xa = x.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let out = match GeluBackward
        .prepare::<NoCheckpointing>([xa.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_id = prep.checkpoint(&xa);
            let y = forward_flex(xa.primitive(), &shape);
            prep.finish((x_id, shape), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward_flex(xa.primitive(), &shape)),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
}
