//! Writing `.npy` files (format 1.0, little-endian, C order), atomically.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::dtype::{Dtype, format_shape};
use super::header::MAGIC;
use super::problem::NpyProblem;

/// The preamble and header of a C-order file of `dtype` and `shape`, padded
/// with spaces and a newline to a multiple of 64 bytes (as numpy does).
pub(super) fn header_bytes(dtype: Dtype, shape: &[u64]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        format_shape(shape)
    );
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let len = dict.len() + pad + 1;
    let mut out = Vec::with_capacity(unpadded + pad);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    // A dictionary of a few numbers is far below u16::MAX bytes.
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

/// Writes header and `data` to a sibling `.tmp` file, then renames it to `path`.
pub(super) fn write_npy(
    path: &Path,
    dtype: Dtype,
    shape: &[u64],
    data: &[u8],
) -> Result<(), NpyProblem> {
    let io = |action, e: std::io::Error| NpyProblem::Io {
        action,
        message: e.to_string(),
    };
    // Unique to this process and call, so that concurrent writers of one
    // path never rename each other's half-written file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_added_extension(format!("{}.{n}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(&header_bytes(dtype, shape))?;
        f.write_all(data)?;
        f.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("write", e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("rename", e)
    })
}
