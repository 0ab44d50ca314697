//! What every importer is asked to do: the checkpoint format
//! ([`WeightsFormat`]) and the allow-lists ([`ImportOptions`]), with the
//! one matching rule of the allow-lists ([`allowed`]).
//!
//! Shared by the ResNet importer of [`super`] and every family importer
//! (`<family>/import.rs`); it depends on nothing but the error type, so a
//! family importer can use it without an import circle.

use std::str::FromStr;

use derive_setters::Setters;

use crate::error::BackboneError;

/// Which checkpoint format to read, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightsFormat {
    /// Recognise the container from the file's bytes and the layout from
    /// its keys.
    #[default]
    Auto,
    /// A torchvision-layout state dict (`.pth`/`.pt`, or safetensors).
    Torchvision,
    /// A LUPerson / LUPerson-NL snapshot or released backbone.
    Lup,
    /// A CION ReIDZoo checkpoint.
    Cion,
    /// A fast-reid checkpoint.
    FastReid,
    /// A safetensors file (layout recognised from its keys).
    Safetensors,
    /// A TransReID-style fine-tuned model (`base.*`, `bottleneck.*`,
    /// `classifier.weight`).
    TransReid,
}

impl WeightsFormat {
    /// The names accepted by [`FromStr`].
    pub const NAMES: [&'static str; 6] = [
        "auto",
        "torchvision",
        "lup",
        "cion",
        "fastreid",
        "safetensors",
    ];
}

impl FromStr for WeightsFormat {
    type Err = BackboneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => Self::Auto,
            "torchvision" | "tv" => Self::Torchvision,
            "lup" | "luperson" => Self::Lup,
            "cion" | "reidzoo" => Self::Cion,
            "fastreid" | "fast-reid" => Self::FastReid,
            "safetensors" => Self::Safetensors,
            "transreid" => Self::TransReid,
            _ => {
                return Err(BackboneError::InvalidConfig(format!(
                    "unknown weights format {s:?}; expected one of {}",
                    Self::NAMES.join(", ")
                )));
            }
        })
    }
}

/// Options of [`load_backbone`](super::load_backbone) /
/// [`load_reid_model`](super::load_reid_model) and every family importer.
///
/// `#[non_exhaustive]`: start from [`Default`] and use the `with_<field>`
/// setters (`ImportOptions::default().with_format(WeightsFormat::Safetensors)`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct ImportOptions {
    /// Container / layout; [`WeightsFormat::Auto`] recognises both.
    pub format: WeightsFormat,
    /// File keys (PyTorch names after the layout's prefix handling) that may
    /// be left unused: exact keys, or prefixes ending in `*` (`"fc.*"`).
    pub allow_unexpected: Vec<String>,
    /// Model parameters (PyTorch names) that may stay at their
    /// initialisation when the file lacks them; same syntax.
    pub allow_missing: Vec<String>,
}

/// Whether `key` matches `pattern`: the exact key, or a prefix ending in
/// `*` (`"fc.*"`).
fn pattern_matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => pattern == key,
    }
}

/// Whether an allow-list ([`ImportOptions::allow_unexpected`] /
/// [`ImportOptions::allow_missing`]) names `key`.
pub(crate) fn allowed(patterns: &[String], key: &str) -> bool {
    patterns.iter().any(|p| pattern_matches(p, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_match_exact_keys_and_star_prefixes() {
        let list = vec!["fc.*".to_string(), "head.weight".to_string()];
        assert!(allowed(&list, "fc.bias"));
        assert!(allowed(&list, "head.weight"));
        assert!(!allowed(&list, "head.bias"));
        assert!(!allowed(&[], "fc.bias"));
    }
}
