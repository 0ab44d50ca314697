//! [`PipelineError`]: why a pipeline of the facade (the study, the demo)
//! stopped.

use std::path::{Path, PathBuf};

use crate::BackendError;

/// Why a pipeline of the toolkit (the study, the demo) stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A setting, or a recipe setting derived from it, is invalid (a usage
    /// error).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A recipe file does not parse into its configuration (a usage error).
    #[error("recipe file {file}: {message}")]
    Recipe {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// A finished stage's record was written with other settings: the
    /// output folder belongs to another run (a usage error).
    #[error(
        "{path} was written by a study with other settings for stage {stage}; use another --out or delete that stage's folder"
    )]
    Stale {
        /// The stage.
        stage: String,
        /// Its record.
        path: PathBuf,
    },
    /// The backend cannot be used (a usage error).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A stage record is not valid JSON.
    #[error("{}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Generating or reading the data failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// Generating the synthetic world failed.
    #[error(transparent)]
    Synth(#[from] crate::synth::SynthError),
    /// Building a backbone failed.
    #[error(transparent)]
    Backbone(#[from] crate::backbones::BackboneError),
    /// A training run or feature extraction failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// Denoising failed.
    #[error(transparent)]
    Denoise(#[from] crate::denoise::DenoiseError),
    /// Evaluation failed.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// Drawing the chart failed.
    #[error(transparent)]
    Viz(#[from] crate::viz::VizError),
}

impl PipelineError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the error is the caller's input (settings, recipe files,
    /// backend, a foreign output folder, a recipe or backbone setting the
    /// library refuses) rather than a failure while running: command lines
    /// exit with code 2 for these, 1 otherwise.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::InvalidConfig(_)
                | Self::Recipe { .. }
                | Self::Stale { .. }
                | Self::Backend(_)
                | Self::Backbone(_)
                | Self::Train(crate::train::TrainError::InvalidConfig(_))
        )
    }
}
