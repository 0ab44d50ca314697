//! The glue to burn-flex and burn's autodiff: flex tensors in and out of
//! the [`kernels`](super::kernels), and the custom backward step.

use super::kernels::{self, Shape};
use crate::layers::flex_io::{tensor, values};
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Tensor;

/// The backward step: the gradient of `qkv` from the saved input and
/// attention weights.
#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 1> for AttentionBackward {
    /// The saved `qkv`, the attention weights and the sizes.
    type State = (NodeId, Vec<f32>, Shape);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let Some(node) = node else {
            return;
        };
        let (qkv_id, probs, s) = ops.state;
        let qkv: FlexTensor = checkpointer.retrieve_node_output(qkv_id);
        let d_qkv = kernels::backward(&values(&qkv), &probs, &values(&grad), s);
        grads.register::<Flex>(node.id, tensor(d_qkv, [s.batch, s.tokens, 3 * s.dim()]));
    }
}

/// Attention on flex (plain or autodiff); `None` when the tensor lives
/// elsewhere.
pub fn run(qkv: &Tensor<3>, s: Shape) -> Option<Tensor<3>> {
    let out_shape = [s.batch, s.tokens, s.dim()];
    if let Ok(p) = qkv.clone().try_into_primitive::<Flex>() {
        let (out, _) = kernels::forward(&values(&p), s);
        return Some(Tensor::from_primitive::<Flex>(tensor(out, out_shape)));
    }
    let qa = qkv.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let out = match AttentionBackward
        .prepare::<NoCheckpointing>([qa.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let id = prep.checkpoint(&qa);
            let (out, probs) = kernels::forward(&values(qa.primitive()), s);
            prep.finish((id, probs, s), tensor(out, out_shape))
        }
        OpsKind::UnTracked(prep) => {
            let (out, _) = kernels::forward(&values(qa.primitive()), s);
            prep.finish(tensor(out, out_shape))
        }
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
}
