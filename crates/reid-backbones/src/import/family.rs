//! The steps every non-ResNet family importer shares: the format check,
//! reading the tensors, removing the checkpoint wrapper and the prefixes
//! common to every key, setting `num_batches_tracked` aside, the strict
//! apply, and the report.
//!
//! A family importer only adds what is its own: its key naming (an enum
//! declared with `layout_enum!` where there is more than one), how it is
//! recognised, and the mapping of file keys to module paths and back:
//!
//! ```text
//! let read = Unwrapped::read(path, options, "ConvNeXt")?;
//! let layout = read.detect(|keys| ConvNeXtLayout::detect(keys), "official … or timm …")?;
//! read.apply(model, options, layout, |k| layout.to_model_path(k), |p| layout.to_file_key(p))
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use burn::store::ModuleSnapshot;
use burn::store::burn_pack::Tensor as PackTensor;

use super::layout::{Ignored, NUM_BATCHES_TRACKED};
use super::options::{ImportOptions, WeightsFormat};
use super::source::{self, Container, layout_error};
use super::strict_apply::{Entry, apply_strict, write_report_tail};
use super::wrapper::{CheckpointWrapper, KeyFate, detect_wrapper, unwrap_key};
use crate::error::BackboneError;

/// Prefixes removed, in this order, when every kept key starts with them.
const COMMON_PREFIXES: [&str; 3] = ["state_dict.", "module.", "backbone."];

/// What a family importer did (`L`: the key naming the file was read as,
/// e.g. [`crate::convnext::ConvNeXtLayout`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyImportReport<L> {
    /// The checkpoint file.
    pub path: PathBuf,
    /// Its container.
    pub container: Container,
    /// Where the backbone keys were found.
    pub wrapper: CheckpointWrapper,
    /// Prefixes removed from every kept key after unwrapping
    /// (`"state_dict."`, `"module."`, `"backbone."`), in order.
    pub stripped_prefixes: Vec<String>,
    /// The key naming the file was read as.
    pub layout: L,
    /// Number of model tensors written from the file.
    pub applied: usize,
    /// Keys set aside by rule (wrapper contents, `num_batches_tracked`,
    /// profiling buffers), with the reason.
    pub ignored: Vec<Ignored>,
    /// Unused file keys accepted through the allow-list.
    pub allowed_unexpected: Vec<String>,
    /// Model parameters left at their initialisation through the allow-list.
    pub allowed_missing: Vec<String>,
}

impl<L: fmt::Display> fmt::Display for FamilyImportReport<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} container, {:?} wrapper, {} layout, {} tensors loaded",
            self.path.display(),
            self.container,
            self.wrapper,
            self.layout,
            self.applied
        )?;
        write_report_tail(
            f,
            &self.ignored,
            &self.allowed_unexpected,
            &self.allowed_missing,
        )
    }
}

/// Adds `key` to the group of `reason` (a new group when none has it).
pub(crate) fn add_ignored(ignored: &mut Vec<Ignored>, reason: &str, key: String) {
    match ignored.iter_mut().find(|g| g.reason == reason) {
        Some(g) => g.keys.push(key),
        None => ignored.push(Ignored {
            reason: reason.to_string(),
            keys: vec![key],
        }),
    }
}

/// Declares a family's key-naming enum (`Debug`, `Clone`, `Copy`,
/// `PartialEq`, `Eq`) from `Variant => "name"` lines, with the inherent
/// `name()` (the lower-case name errors and reports use) and a `Display`
/// that writes it.
macro_rules! layout_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident => $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        impl $name {
            /// Lower-case name, as used in errors and reports.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

pub(crate) use layout_enum;

/// A family's rule for keys to set aside besides `num_batches_tracked`:
/// the reason, and which keys.
pub(crate) type SetAside = (&'static str, fn(&str) -> bool);

/// A family checkpoint after the shared steps.
pub(crate) struct Unwrapped {
    /// The family, in messages (`"ConvNeXt"`).
    pub family: &'static str,
    /// The checkpoint file.
    pub path: PathBuf,
    /// Its container.
    pub container: Container,
    /// Where the backbone keys were found.
    pub wrapper: CheckpointWrapper,
    /// Prefixes removed from every kept key.
    pub stripped_prefixes: Vec<String>,
    /// Keys set aside so far.
    pub ignored: Vec<Ignored>,
    /// The backbone tensors under their remaining keys.
    pub kept: Vec<(String, PackTensor)>,
    /// A family's own rule for keys to set aside, with its reason.
    pub set_aside: Option<SetAside>,
}

impl Unwrapped {
    /// Reads `path` for the family `family` (`"ConvNeXt"`, in messages):
    /// `options.format` must be [`WeightsFormat::Auto`],
    /// [`WeightsFormat::Safetensors`] (the file must be safetensors),
    /// [`WeightsFormat::Cion`] (the file must have a `teacher` dictionary) or
    /// [`WeightsFormat::TransReid`] (`base.*` + `bottleneck.*`); the
    /// ResNet-only formats are an error. Then the wrapper is removed
    /// ([`unwrap_key`]) and the prefixes common to every kept key.
    pub fn read(
        path: &Path,
        options: &ImportOptions,
        family: &'static str,
    ) -> Result<Self, BackboneError> {
        let container = Container::sniff(path)?;
        match options.format {
            WeightsFormat::Auto | WeightsFormat::Cion | WeightsFormat::TransReid => {}
            WeightsFormat::Safetensors if container == Container::Safetensors => {}
            WeightsFormat::Safetensors => {
                return Err(layout_error(
                    path,
                    format!("--weights-format safetensors, but the file is a {container:?} file"),
                ));
            }
            other => {
                return Err(layout_error(
                    path,
                    format!(
                        "weights format {other:?} is a ResNet checkpoint layout; a {family} \
                         checkpoint is read with auto, cion, transreid or safetensors"
                    ),
                ));
            }
        }
        let raw = source::read_tensors(path, container)?;
        let wrapper = detect_wrapper(raw.keys());
        if options.format == WeightsFormat::Cion && wrapper != CheckpointWrapper::CionTeacher {
            return Err(layout_error(
                path,
                "a CION checkpoint needs a `teacher` dictionary; none found".into(),
            ));
        }
        if options.format == WeightsFormat::TransReid && wrapper != CheckpointWrapper::TransReid {
            return Err(layout_error(
                path,
                "a TransReID checkpoint needs `base.*` and `bottleneck.*` keys; none found".into(),
            ));
        }
        let mut ignored = Vec::new();
        let mut kept = Vec::new();
        for (key, tensor) in raw {
            match unwrap_key(&key, wrapper) {
                KeyFate::Keep(k) => kept.push((k, tensor)),
                KeyFate::Ignore(reason) => add_ignored(&mut ignored, reason, key),
            }
        }
        let mut stripped_prefixes = Vec::new();
        for prefix in COMMON_PREFIXES {
            if !kept.is_empty() && kept.iter().all(|(k, _)| k.starts_with(prefix)) {
                for (k, _) in &mut kept {
                    *k = k[prefix.len()..].to_string();
                }
                stripped_prefixes.push(prefix.to_string());
            }
        }
        Ok(Self {
            family,
            path: path.to_path_buf(),
            container,
            wrapper,
            stripped_prefixes,
            ignored,
            kept,
            set_aside: None,
        })
    }

    /// The kept keys, in file order.
    pub fn keys(&self) -> Vec<String> {
        self.kept.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The naming `detect` recognises in the kept keys, or the error for
    /// keys in no naming the family knows; `expected` describes the namings
    /// (e.g. "official `features.*` or timm `stem.*`").
    pub fn detect<L>(
        &self,
        detect: impl FnOnce(&[String]) -> Option<L>,
        expected: &str,
    ) -> Result<L, BackboneError> {
        detect(&self.keys()).ok_or_else(|| {
            let first: Vec<&String> = self.kept.iter().map(|(k, _)| k).take(8).collect();
            layout_error(
                &self.path,
                format!(
                    "cannot recognise a {} layout ({expected}) in its {} backbone keys; \
                     first keys: {first:?}",
                    self.family,
                    self.kept.len()
                ),
            )
        })
    }

    /// The checkpoint with the keys `rule` picks set aside for `reason`
    /// when applied (besides `num_batches_tracked`), e.g. profiling
    /// buffers.
    pub fn setting_aside(self, reason: &'static str, rule: fn(&str) -> bool) -> Self {
        Self {
            set_aside: Some((reason, rule)),
            ..self
        }
    }

    /// Sets aside `num_batches_tracked` (see the module docs of
    /// [`super`]) and the keys of [`Unwrapped::setting_aside`], maps the
    /// rest with `to_model_path` (`None`: no parameter has that name, so the
    /// key is unexpected), writes them strictly into `model` (file keys of
    /// model paths from `to_file_key`, for the messages) and reports.
    pub fn apply<M, L>(
        mut self,
        model: &mut M,
        options: &ImportOptions,
        layout: L,
        to_model_path: impl Fn(&str) -> Option<String>,
        to_file_key: impl Fn(&str) -> String,
    ) -> Result<FamilyImportReport<L>, BackboneError>
    where
        M: ModuleSnapshot,
        L: fmt::Display,
    {
        let mut entries = Vec::with_capacity(self.kept.len());
        for (file_key, tensor) in std::mem::take(&mut self.kept) {
            let reason = if file_key.ends_with("num_batches_tracked") {
                Some(NUM_BATCHES_TRACKED)
            } else {
                self.set_aside
                    .and_then(|(reason, rule)| rule(&file_key).then_some(reason))
            };
            match reason {
                Some(r) => add_ignored(&mut self.ignored, r, file_key),
                None => entries.push(Entry {
                    model_path: to_model_path(&file_key),
                    file_key,
                    tensor,
                }),
            }
        }
        let applied = apply_strict(
            model,
            &self.path,
            &layout.to_string(),
            entries,
            options,
            &to_file_key,
        )?;
        Ok(FamilyImportReport {
            path: self.path,
            container: self.container,
            wrapper: self.wrapper,
            stripped_prefixes: self.stripped_prefixes,
            layout,
            applied: applied.count,
            ignored: self.ignored,
            allowed_unexpected: applied.allowed_unexpected,
            allowed_missing: applied.allowed_missing,
        })
    }
}
