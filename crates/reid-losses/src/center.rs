//! Center loss (Wen et al.), as in BoT (reid-strong-baseline).
//!
//! Features `x` (`[N, D]`), class centers `c` (`[C, D]`), labels `y` (`[N]`):
//! `d_i = clamp(‖x_i‖² + ‖c_{y_i}‖² − 2 x_i·c_{y_i}, 1e-12, 1e12)` and
//! `loss = mean_i d_i` (the squared distance, without the ½). The caller
//! multiplies by [`CENTER_LOSS_WEIGHT`] and owns `c` (a parameter with its own
//! optimiser in BoT). BoT clamps the masked full `[N, C]` matrix, which adds
//! `(C−1)·1e-12` per sample; this function gathers only the own-class entry.

use burn::tensor::{Int, Tensor};

use crate::LossError;
use crate::validate::{batch_matches, class_matrix_matches, host_labels, labels_in_range};

const NAME: &str = "center_loss";

/// BoT's weight of the center loss in the total objective.
pub const CENTER_LOSS_WEIGHT: f64 = 0.0005;

/// Center loss of `features` (`[batch, dim]`) against `centers`
/// (`[classes, dim]`) for `labels` (`[batch]`, in `0..classes`); returns a
/// scalar `[1]` in squared feature units. See the module docs.
///
/// # Errors
/// [`LossError`] when batch sizes or feature dimensions differ, an input is
/// empty, or a label is out of range.
pub fn center_loss(
    features: Tensor<2>,
    centers: Tensor<2>,
    labels: Tensor<1, Int>,
) -> Result<Tensor<1>, LossError> {
    let [n, d] = features.dims();
    let [c, dc] = centers.dims();
    batch_matches(NAME, "features", [n, d], &labels)?;
    class_matrix_matches(NAME, "centers (columns)", [c, dc], d)?;
    labels_in_range(NAME, &host_labels(&labels), c)?;
    let xx = features.clone().square().sum_dim(1); // [N, 1]
    let cc = centers.clone().square().sum_dim(1).transpose(); // [1, C]
    let dist = xx
        .add(cc)
        .sub(features.matmul(centers.transpose()).mul_scalar(2.0)); // [N, C]
    let own = dist.gather(1, labels.reshape([n, 1])).clamp(1e-12, 1e12);
    Ok(own.mean())
}
