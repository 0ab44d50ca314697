//! The programs' exit-code rule, in one place:
//!
//! - `0`: done;
//! - `2`: the user's arguments or input are wrong (a bad flag value, a
//!   recipe field out of range, a missing or malformed input file, a
//!   checkpoint of another run) — [`UsageError`];
//! - `1`: the environment failed (I/O while writing, a full disk, a device
//!   error).
//!
//! A program never ends with a panic (101) or an abort (134).

use std::process::ExitCode;

use reid_train::TrainError;

/// A problem with the arguments or the input (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Wraps `message` as a [`UsageError`].
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// A recipe error as the programs report it: configurations, unusable
/// checkpoints, unreadable inputs and recipe files are usage errors (exit
/// 2); the rest keeps its own type (exit 1).
pub fn classify(e: TrainError) -> anyhow::Error {
    match e {
        TrainError::InvalidConfig(_)
        | TrainError::Checkpoint(_)
        | TrainError::Data(_)
        | TrainError::Io { .. } => usage(e.to_string()),
        other => anyhow::Error::new(other),
    }
}

/// Prints `error: …` and maps the result to the process exit code.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.is::<UsageError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
