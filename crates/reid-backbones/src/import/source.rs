//! Reading every tensor of a checkpoint file, whatever its container.
//!
//! - PyTorch `torch.save` files, both the zip container (PyTorch ≥ 1.6) and
//!   the legacy pickle stream, through burn-store's `PytorchStore`. Nested
//!   dictionaries are flattened with `.` (`state_dict.module.conv1.weight`);
//!   non-tensor entries (ints, strings, and pickled objects such as the
//!   `argparse.Namespace` CION stores under `args`) are skipped by the
//!   reader, so they neither fail the load nor appear as keys.
//! - safetensors files, through `SafetensorsStore`.
//!
//! Indices are kept as written (`map_indices_contiguous(false)`): renumbering
//! `fc.0`/`fc.2` would hide what the file really holds.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleStore, PytorchStore, SafetensorsStore};

use super::options::{ImportOptions, WeightsFormat};
use crate::error::BackboneError;

/// The container format of a checkpoint file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// `torch.save` output (zip or legacy pickle).
    Pytorch,
    /// A safetensors file.
    Safetensors,
}

impl Container {
    /// Recognises the container from the file's first bytes: `PK\x03\x04`
    /// (zip) for PyTorch; an 8-byte little-endian header length followed by
    /// `{` for safetensors; else `0x80` (pickle protocol marker) for a
    /// legacy PyTorch pickle. Safetensors is tested before the pickle
    /// marker: a header length whose low byte is `0x80` (e.g. 6,528 bytes)
    /// starts with that byte too.
    pub fn sniff(path: &Path) -> Result<Self, BackboneError> {
        let read_err = |e: std::io::Error| BackboneError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut head = [0u8; 9];
        let mut file = std::fs::File::open(path).map_err(read_err)?;
        let mut n = 0;
        while n < head.len() {
            let got = file.read(&mut head[n..]).map_err(read_err)?;
            if got == 0 {
                break;
            }
            n += got;
        }
        if n >= 4 && head[..4] == *b"PK\x03\x04" {
            Ok(Self::Pytorch)
        } else if n == 9 && head[8] == b'{' {
            Ok(Self::Safetensors)
        } else if n >= 1 && head[0] == 0x80 {
            Ok(Self::Pytorch)
        } else {
            Err(BackboneError::Read {
                path: path.to_path_buf(),
                message: "not a PyTorch (zip or pickle) or safetensors file".into(),
            })
        }
    }
}

/// A [`BackboneError::Layout`] about `path`.
pub(crate) fn layout_error(path: &Path, message: String) -> BackboneError {
    BackboneError::Layout {
        path: path.to_path_buf(),
        message,
    }
}

/// The container of `path` and every tensor in it, by flattened key; under
/// `--weights-format safetensors` ([`WeightsFormat::Safetensors`]) a file
/// of another container is a [`BackboneError::Layout`] error.
pub(crate) fn read_file(
    path: &Path,
    options: &ImportOptions,
) -> Result<(Container, BTreeMap<String, PackTensor>), BackboneError> {
    let container = Container::sniff(path)?;
    if options.format == WeightsFormat::Safetensors && container != Container::Safetensors {
        let message = format!("--weights-format safetensors, but the file is a {container:?} file");
        return Err(layout_error(path, message));
    }
    Ok((container, read_tensors(path, container)?))
}

/// Every tensor of the file, by flattened key.
pub(crate) fn read_tensors(
    path: &Path,
    container: Container,
) -> Result<BTreeMap<String, PackTensor>, BackboneError> {
    let err = |message: String| BackboneError::Read {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(err("no such file".into()));
    }
    let tensors = match container {
        Container::Pytorch => {
            all_tensors(PytorchStore::from_file(path).map_indices_contiguous(false))
        }
        Container::Safetensors => {
            all_tensors(SafetensorsStore::from_file(path).map_indices_contiguous(false))
        }
    };
    tensors.map_err(err)
}

/// Every tensor `store` holds, by flattened key (the store's message on
/// failure).
fn all_tensors<S: ModuleStore>(mut store: S) -> Result<BTreeMap<String, PackTensor>, String> {
    store.get_all_tensors().cloned().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff_bytes(name: &str, bytes: &[u8]) -> Result<Container, BackboneError> {
        let path = std::env::temp_dir().join(format!("reid-sniff-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let c = Container::sniff(&path);
        let _ = std::fs::remove_file(&path);
        c
    }

    #[test]
    fn safetensors_with_a_0x80_header_length_is_not_a_pickle() {
        // A 6,528-byte header: length 0x1980 starts with the byte 0x80.
        let mut bytes = 0x1980u64.to_le_bytes().to_vec();
        bytes.push(b'{');
        assert_eq!(sniff_bytes("st", &bytes).unwrap(), Container::Safetensors);
        assert_eq!(
            sniff_bytes("pickle", &[0x80, 0x02, 0x8a, 0x0a]).unwrap(),
            Container::Pytorch
        );
        assert_eq!(
            sniff_bytes("zip", b"PK\x03\x04rest").unwrap(),
            Container::Pytorch
        );
        assert!(sniff_bytes("other", b"hello").is_err());
    }
}
