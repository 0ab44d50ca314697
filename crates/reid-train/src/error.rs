//! The crate's error type.

/// Errors raised by feature extraction and the training recipes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Reading or decoding the data failed.
    #[error(transparent)]
    Data(#[from] reid_data::DataError),
    /// A tensor could not be read back from the device.
    #[error("reading a tensor back from the device failed: {0}")]
    Readback(String),
    /// Building the model failed.
    #[error(transparent)]
    Backbone(#[from] reid_backbones::BackboneError),
    /// A loss rejected its inputs.
    #[error(transparent)]
    Loss(#[from] reid_losses::LossError),
    /// Evaluation failed.
    #[error(transparent)]
    Metrics(#[from] reid_metrics::MetricsError),
    /// A training loss became NaN or infinite.
    #[error(
        "non-finite loss at epoch {epoch}, iteration {iteration} (global step, 0-based): \
         cross-entropy {loss_ce}, triplet {loss_tri}, learning rate {lr:e}; \
         lower the learning rate or check the input images"
    )]
    NonFiniteLoss {
        /// 0-based epoch.
        epoch: usize,
        /// 0-based global iteration (optimiser step).
        iteration: usize,
        /// The cross-entropy value.
        loss_ce: f32,
        /// The triplet value.
        loss_tri: f32,
        /// The learning rate of that step.
        lr: f64,
    },
    /// Writing or reading a checkpoint or a log failed; the message names
    /// the file.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A pre-training loss became NaN or infinite.
    #[error(
        "non-finite {recipe} loss at epoch {epoch}, step {step} (0-based): {detail}; \
         lower the learning rate or check the input images"
    )]
    NonFiniteStep {
        /// Recipe name (`moco`, `pnl`, `cion`, `mgn`).
        recipe: &'static str,
        /// 0-based epoch.
        epoch: usize,
        /// 0-based global step.
        step: usize,
        /// The loss values and learning rate of the step.
        detail: String,
    },
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Writing the metrics log failed.
    #[error("metrics log {path}: {message}")]
    Log {
        /// The log file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}
