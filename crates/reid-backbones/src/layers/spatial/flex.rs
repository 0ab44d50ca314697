//! The glue to burn-flex and burn's autodiff: the forward product through
//! burn-flex's own convolution, and the custom backward step through the
//! [`kernels`](super::kernels).

use super::{Geometry, kernels, reference};
use crate::layers::flex_io::{tensor, values};
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Tensor;

/// burn-flex's forward convolution of two plain flex tensors.
fn forward_flex(x: &FlexTensor, weight: &FlexTensor, g: &Geometry) -> FlexTensor {
    let x = Tensor::<4>::from_primitive::<Flex>(x.clone());
    let w = Tensor::<4>::from_primitive::<Flex>(weight.clone());
    reference(x, w, g)
        .try_into_primitive::<Flex>()
        .unwrap_or_else(|_| unreachable!("a flex convolution stays on flex"))
}

/// The backward step: input and weight gradients from the saved input and
/// weight.
#[derive(Debug)]
struct SpatialBackward;

impl Backward<Flex, 2> for SpatialBackward {
    type State = (NodeId, NodeId, Geometry);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_id, w_id, g) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_id);
        let weight: FlexTensor = checkpointer.retrieve_node_output(w_id);
        let grad_values = values(&grad);
        if let Some(node) = node_x {
            let dx = kernels::input_grad(&g, &values(&weight), &grad_values);
            grads.register::<Flex>(
                node.id,
                tensor(dx, [g.batch, g.c_in, g.input[0], g.input[1]]),
            );
        }
        if let Some(node) = node_w {
            let dw = kernels::weight_grad(&g, &values(&x), &grad_values);
            grads.register::<Flex>(
                node.id,
                tensor(dw, [g.c_out, g.c_in, g.kernel[0], g.kernel[1]]),
            );
        }
    }
}

/// Runs the convolution on autodiff flex with the GEMM backward; `None`
/// when the tensors live elsewhere (plain flex included: without autodiff
/// there is no backward to speed up, and the caller's burn path is the
/// same forward).
pub fn run(x: &Tensor<4>, weight: Tensor<4>, g: Geometry) -> Option<Tensor<4>> {
    let (Ok(xa), Ok(wa)) = (
        x.clone().try_into_primitive::<Autodiff<Flex>>(),
        weight.try_into_primitive::<Autodiff<Flex>>(),
    ) else {
        return None;
    };
    let prep = SpatialBackward
        .prepare::<NoCheckpointing>([xa.node(), wa.node()])
        .compute_bound()
        .stateful();
    let out = match prep {
        OpsKind::Tracked(mut prep) => {
            let x_id = prep.checkpoint(&xa);
            let w_id = prep.checkpoint(&wa);
            let y = forward_flex(xa.primitive(), wa.primitive(), &g);
            prep.finish((x_id, w_id, g), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward_flex(xa.primitive(), wa.primitive(), &g)),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
}
