//! The programs' exit-code rule, in one place (`docs/errors.md`):
//!
//! - `0`: done;
//! - `2`: the user's arguments or input are wrong (a bad flag value, a
//!   recipe field out of range, a missing, unreadable or malformed input
//!   file, a checkpoint of another run, a training run that diverges) —
//!   [`UsageError`];
//! - `1`: the environment failed (a full disk, an I/O error of the device,
//!   a GPU error, a failure to write an output).
//!
//! A program never ends with a panic (101) or an abort (134). Messages name
//! the file, the field and what was expected; [`exit`] prints the error and
//! its causes once each (`error: …`).
//!
//! Each library error type has its classification here ([`classify`] for
//! the recipes' [`TrainError`], [`classify_data`], [`classify_backbone`],
//! [`classify_metrics`]); a program wraps the errors it returns with them.

use std::io::ErrorKind;
use std::process::ExitCode;

use reid_backbones::BackboneError;
use reid_data::DataError;
use reid_metrics::MetricsError;
use reid_train::TrainError;

/// A problem with the arguments or the input (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Wraps `message` as a [`UsageError`].
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Whether an I/O error of this kind means that the user named something
/// unusable (a missing file, a folder where a file was expected, no
/// permission, a truncated or malformed file): exit 2. The other kinds (a
/// full disk, a device error, an interruption) are the environment's: 1.
pub fn user_io_kind(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::NotFound
            | ErrorKind::PermissionDenied
            | ErrorKind::AlreadyExists
            | ErrorKind::InvalidInput
            | ErrorKind::InvalidData
            | ErrorKind::UnexpectedEof
            | ErrorKind::IsADirectory
            | ErrorKind::NotADirectory
            | ErrorKind::DirectoryNotEmpty
            | ErrorKind::ReadOnlyFilesystem
            | ErrorKind::InvalidFilename
    )
}

/// [`user_io_kind`] of `e`, and a loop of symbolic links (`ELOOP`, whose
/// kind is not yet stable) counts as the user's too.
pub fn user_io(e: &std::io::Error) -> bool {
    user_io_kind(e.kind()) || format!("{:?}", e.kind()) == "FilesystemLoop"
}

/// An error that is the user's when `user` holds, the environment's
/// otherwise.
fn by(user: bool, e: impl std::error::Error + Send + Sync + 'static) -> anyhow::Error {
    if user {
        usage(message_of(&e))
    } else {
        anyhow::Error::new(e)
    }
}

/// A recipe error as the programs report it: configurations, unusable
/// checkpoints, unreadable inputs and recipe files, a diverging run are
/// usage errors (exit 2); failures to write (a full disk) and device errors
/// keep their type (exit 1).
pub fn classify(e: TrainError) -> anyhow::Error {
    match e {
        TrainError::Data(d) => classify_data(d),
        TrainError::Backbone(b) => classify_backbone(b),
        TrainError::Metrics(m) => classify_metrics(m),
        TrainError::Io { ref source, .. } => by(user_io(source), e),
        TrainError::InvalidConfig(_)
        | TrainError::Checkpoint(_)
        | TrainError::NonFiniteLoss { .. }
        | TrainError::NonFiniteStep { .. } => usage(e.to_string()),
        TrainError::Loss(ref l) => {
            let user = matches!(l, reid_losses::LossError::InvalidParameter { .. });
            by(user, e)
        }
        TrainError::Readback(_) | TrainError::Log { .. } => anyhow::Error::new(e),
        // A kind added later: the environment's until classified here.
        _ => anyhow::Error::new(e),
    }
}

/// A data error: layouts, names, images, annotation files, arguments and
/// unreadable inputs are usage errors; other I/O failures (a full disk
/// while writing) are the environment's.
pub fn classify_data(e: DataError) -> anyhow::Error {
    let user = match &e {
        DataError::Io { source, .. } => user_io(source),
        _ => true,
    };
    by(user, e)
}

/// A model error: unknown architectures, bad configurations and unusable
/// checkpoints are usage errors; a failed write is the environment's.
pub fn classify_backbone(e: BackboneError) -> anyhow::Error {
    let user = !matches!(e, BackboneError::Write { .. });
    by(user, e)
}

/// A pipeline error (the study, the demo): settings, recipe files, a
/// foreign output folder and whatever the recipes, parsers and models
/// refuse are usage errors; failures to write are the environment's.
pub fn classify_pipeline(e: crate::PipelineError) -> anyhow::Error {
    use crate::PipelineError as P;
    if e.is_usage() {
        return usage(message_of(&e));
    }
    match e {
        P::Train(t) => classify(t),
        P::Data(d) => classify_data(d),
        P::Synth(s) => classify_data(s.into()),
        P::Backbone(b) => classify_backbone(b),
        P::Metrics(m) => classify_metrics(m),
        P::Denoise(d) => classify_denoise(d),
        P::Io { ref source, .. } => by(user_io(source), e),
        P::Json { .. } => usage(message_of(&e)),
        other => anyhow::Error::new(other),
    }
}

/// A denoising error: parameters, inconsistent or non-finite inputs and
/// unreadable input files are usage errors; other I/O failures are the
/// environment's.
pub fn classify_denoise(e: reid_denoise::DenoiseError) -> anyhow::Error {
    use reid_denoise::DenoiseError as D;
    match e {
        D::Data(d) => classify_data(d),
        D::Io { ref source, .. } => by(user_io(source), e),
        other => usage(message_of(&other)),
    }
}

/// An evaluation error: the inputs' (shapes, empty sets, NaN, `.npy`
/// files, no valid query) — always a usage error.
pub fn classify_metrics(e: MetricsError) -> anyhow::Error {
    usage(message_of(&e))
}

/// The message of `e` and its causes, each cause once: a cause whose text
/// the message already holds (`path: {source}` with the source as cause
/// too) is not repeated.
pub fn message_of(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !s.is_empty() && !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// The text [`exit`] prints for `e` (without `error: `): the chain of
/// messages, each once.
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for c in e.chain() {
        let s = c.to_string();
        if s.is_empty() || text.contains(&s) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s);
    }
    text
}

/// The exit code of a failed run: 2 for a [`UsageError`] anywhere in the
/// chain, 1 otherwise.
pub fn code_of(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<UsageError>()) {
        2
    } else {
        1
    }
}

/// Checks, before any work, that an output file can be created at `path`
/// (its folder exists and `path` is not a folder): a usage error naming
/// `flag` otherwise.
pub fn check_output_file(path: &std::path::Path, flag: &str) -> anyhow::Result<()> {
    if path.is_dir() {
        return Err(usage(format!(
            "{flag} {}: is a folder; expected a file name",
            path.display()
        )));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        return Err(usage(format!(
            "{flag} {}: the folder {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// Checks that the input folder `path` given with `flag` can be listed: a
/// folder without read permission is reported as such, not as a folder of
/// the wrong layout. A path that does not exist or is not a folder is left
/// to the parser (which names what it expected there).
pub fn check_readable_dir(path: &std::path::Path, flag: &str) -> anyhow::Result<()> {
    if path.is_dir()
        && let Err(e) = std::fs::read_dir(path)
    {
        return Err(usage(format!(
            "{flag} {}: cannot list the folder: {e}",
            path.display()
        )));
    }
    Ok(())
}

/// Prints `error: …` and maps the result to the process exit code.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::from(code_of(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: ErrorKind) -> std::io::Error {
        std::io::Error::new(kind, "system message")
    }

    #[test]
    fn missing_inputs_are_the_users_and_a_full_disk_the_environments() {
        let data = |k| classify_data(DataError::io("/x/y.jpg", io(k)));
        assert_eq!(code_of(&data(ErrorKind::NotFound)), 2);
        assert_eq!(code_of(&data(ErrorKind::PermissionDenied)), 2);
        assert_eq!(code_of(&data(ErrorKind::StorageFull)), 1);
        let train = |k| {
            classify(TrainError::Io {
                path: "/run/ckpt".into(),
                source: io(k),
            })
        };
        assert_eq!(code_of(&train(ErrorKind::StorageFull)), 1);
        assert_eq!(code_of(&train(ErrorKind::NotFound)), 2);
        assert_eq!(
            code_of(&classify(TrainError::InvalidConfig("base_width".into()))),
            2
        );
        assert_eq!(code_of(&classify(TrainError::Readback("gpu".into()))), 1);
    }

    #[test]
    fn the_system_message_is_printed_once() {
        let e = classify(TrainError::Io {
            path: "/run/ckpt".into(),
            source: io(ErrorKind::StorageFull),
        });
        assert_eq!(describe(&e), "/run/ckpt: system message");
        let e = classify_data(DataError::io("/x", io(ErrorKind::NotFound)));
        assert_eq!(describe(&e), "/x: system message");
        let e = anyhow::Error::new(io(ErrorKind::Other)).context("writing /out.npy");
        assert_eq!(describe(&e), "writing /out.npy: system message");
    }
}
