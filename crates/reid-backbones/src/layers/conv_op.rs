//! The custom autodiff operation a convolution with its own backward
//! kernels registers on flex: [`pointwise`](super::pointwise) (1×1, GEMMs
//! for all three products) and [`spatial`](super::spatial) (k×k, GEMMs for
//! the two gradients) differ only in their [`ConvKernels`].

use crate::layers::flex_io::values;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Tensor;

/// A convolution's forward through burn's own operation `f` on flex tensors
/// (the paths that keep burn-flex's forward product).
pub(crate) fn burn_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    f: impl FnOnce(Tensor<4>, Tensor<4>) -> Tensor<4>,
) -> FlexTensor {
    let x = Tensor::<4>::from_primitive::<Flex>(x.clone());
    let w = Tensor::<4>::from_primitive::<Flex>(weight.clone());
    f(x, w)
        .try_into_primitive::<Flex>()
        .unwrap_or_else(|_| unreachable!("a flex convolution stays on flex"))
}

/// A convolution's geometry with the products that compute it on flex.
pub(crate) trait ConvKernels: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// Whether [`run`] also takes plain flex tensors (no autodiff).
    const PLAIN: bool;

    /// The output `[batch, c_out, h', w']` of input `x` and weight `w`.
    fn forward(&self, x: &FlexTensor, weight: &FlexTensor) -> FlexTensor;

    /// The input's gradient given the weight and the output's gradient.
    fn input_grad(&self, weight: &[f32], grad: &[f32]) -> FlexTensor;

    /// The weight's gradient given the input and the output's gradient.
    fn weight_grad(&self, x: &[f32], grad: &[f32]) -> FlexTensor;
}

/// The backward step: input and weight gradients from the saved input and
/// weight.
#[derive(Debug)]
struct ConvBackward<K>(std::marker::PhantomData<K>);

impl<K: ConvKernels> Backward<Flex, 2> for ConvBackward<K> {
    type State = (NodeId, NodeId, K);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_id, w_id, k) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_id);
        let weight: FlexTensor = checkpointer.retrieve_node_output(w_id);
        let grad = values(&grad);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, k.input_grad(&values(&weight), &grad));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, k.weight_grad(&values(&x), &grad));
        }
    }
}

/// Runs the convolution on flex with `kernels`' backward; `None` when the
/// tensors live elsewhere (or on plain flex where `K::PLAIN` is false).
pub(crate) fn run<K: ConvKernels>(
    x: &Tensor<4>,
    weight: Tensor<4>,
    kernels: K,
) -> Option<Tensor<4>> {
    if K::PLAIN
        && let (Ok(xp), Ok(wp)) = (
            x.clone().try_into_primitive::<Flex>(),
            weight.clone().try_into_primitive::<Flex>(),
        )
    {
        return Some(Tensor::from_primitive::<Flex>(kernels.forward(&xp, &wp)));
    }
    let (Ok(xa), Ok(wa)) = (
        x.clone().try_into_primitive::<Autodiff<Flex>>(),
        weight.try_into_primitive::<Autodiff<Flex>>(),
    ) else {
        return None;
    };
    let prep = ConvBackward::<K>(std::marker::PhantomData)
        .prepare::<NoCheckpointing>([xa.node(), wa.node()])
        .compute_bound()
        .stateful();
    let out = match prep {
        OpsKind::Tracked(mut prep) => {
            let x_id = prep.checkpoint(&xa);
            let w_id = prep.checkpoint(&wa);
            let y = kernels.forward(xa.primitive(), wa.primitive());
            prep.finish((x_id, w_id, kernels), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(kernels.forward(xa.primitive(), wa.primitive())),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
}
