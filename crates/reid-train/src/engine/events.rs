//! What a run tells its caller: [`StepReport`] after each optimiser step and
//! the [`PretrainEvent`]s of a run.

use super::metrics_log::LogLine;

/// What a recipe reports after each optimiser step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based global step.
    pub step: usize,
    /// Total steps of the run (for a progress bar).
    pub total_steps: usize,
    /// The main loss of the step.
    pub loss: f64,
    /// Learning rate used by the step.
    pub lr: f64,
    /// Training images per second over the step (decode + forward +
    /// backward + update).
    pub images_per_sec: f64,
    /// All logged values of the step (losses, schedules, ...).
    pub line: LogLine,
}

impl StepReport {
    /// A warning the step's values call for: CION's collapse monitor
    /// (`collapse` 1 = uniform, 2 = one-hot teacher, lasting 50 steps; see
    /// [`reid_losses::dino::CollapseMonitor`]).
    pub fn warning(&self) -> Option<&'static str> {
        let code = self.line.get("collapse")?;
        [
            reid_losses::dino::Collapse::Uniform,
            reid_losses::dino::Collapse::OneHot,
        ]
        .into_iter()
        .find(|c| c.code() == code)
        .map(|c| c.describe())
    }
}

/// Events of a pre-training run, for progress display.
#[derive(Debug)]
pub enum PretrainEvent<'a> {
    /// The run continues from a checkpoint of `step` completed steps.
    Resumed {
        /// Completed steps in the checkpoint.
        step: usize,
        /// Its folder.
        path: &'a std::path::Path,
    },
    /// The run was asked to resume but found no checkpoint in `dir`: it
    /// starts from step 0 (sent before the first step).
    Fresh {
        /// The checkpoint directory that holds no checkpoint.
        dir: &'a std::path::Path,
    },
    /// After each optimiser step.
    Step(&'a StepReport),
    /// A checkpoint was written.
    Checkpoint {
        /// Completed steps it holds.
        step: usize,
        /// Its folder.
        path: &'a std::path::Path,
    },
    /// After the last step of an epoch.
    EpochEnd {
        /// 0-based epoch that ended.
        epoch: usize,
        /// Mean loss over the epoch's steps run in this process.
        mean_loss: f64,
    },
}
