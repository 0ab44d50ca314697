//! Circle loss (Sun et al., CVPR'20) in fast-reid's two forms.
//!
//! **Classifier** ([`circle_softmax_logits`], `CircleSoftmax`, scale `s = 64`,
//! margin `m = 0.35`): with `c = cos(f_i, W_k)` (`[N, C]`, both L2-normalised),
//! `α_p = relu(1 + m − c)`, `α_n = relu(c + m)` (both detached),
//! logit `= s·α_p·(c − (1 − m))` on the true class and `s·α_n·(c − m)`
//! elsewhere; feed the logits to [`crate::cross_entropy_label_smooth`].
//!
//! **Pair-wise** ([`pairwise_circle_loss`], `m = 0.25`, `γ = 128`): with
//! `S = ÊÊᵀ`, positives `P` = same label minus the diagonal, negatives `Q`,
//! `ℓ_p = −γ·relu(1 + m − S)·(S − (1 − m))` on `P`,
//! `ℓ_n = γ·relu(S + m)·(S − m)` on `Q` (α detached, other entries
//! `−99999999`), `loss = mean_i softplus(logsumexp_j ℓ_p + logsumexp_j ℓ_n)`.

use burn::tensor::activation::{relu, softplus};
use burn::tensor::{Int, Tensor};

use crate::LossError;
use crate::triplet::l2_normalize;
use crate::validate::{
    batch_matches, class_matrix_matches, host_labels, labels_in_range, non_negative,
};

/// Row-wise `log Σ_j exp(x_ij)` of `x` (`[N, M]`), as `[N, 1]`.
fn logsumexp(x: Tensor<2>) -> Tensor<2> {
    let max = x.clone().max_dim(1).detach();
    x.sub(max.clone()).exp().sum_dim(1).log().add(max)
}

/// Circle-softmax logits (`[batch, classes]`) of `features` (`[batch, dim]`)
/// against class weights `weight` (`[classes, dim]`), for `labels` (`[batch]`,
/// in `0..classes`), with `scale` (64) and `margin` (0.35). See the module docs.
///
/// # Errors
/// [`LossError`] on batch or dimension mismatch, empty input, a label out of
/// range, or a non-finite or negative scale or margin.
pub fn circle_softmax_logits(
    features: Tensor<2>,
    weight: Tensor<2>,
    labels: Tensor<1, Int>,
    scale: f64,
    margin: f64,
) -> Result<Tensor<2>, LossError> {
    const NAME: &str = "circle_softmax_logits";
    let [n, d] = features.dims();
    let [c, dw] = weight.dims();
    batch_matches(NAME, "features", [n, d], &labels)?;
    class_matrix_matches(NAME, "weight (columns)", [c, dw], d)?;
    labels_in_range(NAME, &host_labels(&labels), c)?;
    non_negative(NAME, "scale", scale, "a finite scale >= 0")?;
    non_negative(NAME, "margin", margin, "a finite margin >= 0")?;
    let cos = l2_normalize(features).matmul(l2_normalize(weight).transpose());
    let alpha_p = relu(cos.clone().detach().neg().add_scalar(1.0 + margin));
    let alpha_n = relu(cos.clone().detach().add_scalar(margin));
    let s_p = alpha_p.mul(cos.clone().sub_scalar(1.0 - margin));
    let s_n = alpha_n.mul(cos.sub_scalar(margin));
    let onehot = labels.one_hot::<2>(c).float();
    let off = onehot.clone().neg().add_scalar(1.0);
    Ok(onehot.mul(s_p).add(off.mul(s_n)).mul_scalar(scale))
}

/// Pair-wise circle loss of `embeddings` (`[batch, dim]`) with identity
/// `labels` (`[batch]`), `margin` (0.25) and `gamma` (128); returns `[1]`.
/// See the module docs.
///
/// # Errors
/// [`LossError`] on batch mismatch, empty input, or a non-finite or negative
/// margin or gamma.
pub fn pairwise_circle_loss(
    embeddings: Tensor<2>,
    labels: Tensor<1, Int>,
    margin: f64,
    gamma: f64,
) -> Result<Tensor<1>, LossError> {
    const NAME: &str = "pairwise_circle_loss";
    let [n, d] = embeddings.dims();
    batch_matches(NAME, "embeddings", [n, d], &labels)?;
    non_negative(NAME, "margin", margin, "a finite margin >= 0")?;
    non_negative(NAME, "gamma", gamma, "a finite gamma >= 0")?;
    let host = host_labels(&labels);
    let device = embeddings.device();
    let mut pos = Vec::with_capacity(n * n);
    let mut neg = Vec::with_capacity(n * n);
    for (i, a) in host.iter().enumerate() {
        for (j, b) in host.iter().enumerate() {
            pos.push(if a == b && i != j { 1.0f32 } else { 0.0 });
            neg.push(if a != b { 1.0f32 } else { 0.0 });
        }
    }
    let is_pos = Tensor::<1>::from_floats(pos.as_slice(), &device).reshape([n, n]);
    let is_neg = Tensor::<1>::from_floats(neg.as_slice(), &device).reshape([n, n]);
    let e = l2_normalize(embeddings);
    let sim = e.clone().matmul(e.transpose());
    let s_p = sim.clone().mul(is_pos.clone());
    let s_n = sim.mul(is_neg.clone());
    let alpha_p = relu(s_p.clone().detach().neg().add_scalar(1.0 + margin));
    let alpha_n = relu(s_n.clone().detach().add_scalar(margin));
    let invalid = -99_999_999.0;
    let logit_p = alpha_p
        .mul(s_p.sub_scalar(1.0 - margin))
        .mul_scalar(-gamma)
        .add(is_pos.neg().add_scalar(1.0).mul_scalar(invalid));
    let logit_n = alpha_n
        .mul(s_n.sub_scalar(margin))
        .mul_scalar(gamma)
        .add(is_neg.neg().add_scalar(1.0).mul_scalar(invalid));
    Ok(softplus(logsumexp(logit_p).add(logsumexp(logit_n)), 1.0).mean())
}
