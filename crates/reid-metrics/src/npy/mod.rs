//! `.npy` input/output: features and distances as float32 or float64 (read as
//! f32), ids as int64 or int32 (read as i64), little- or big-endian, C or
//! Fortran order. Writers produce little-endian, C-order, format 1.0 files.
//!
//! Reading is checked before anything is allocated from the header: the
//! preamble, every header field (`descr`, `fortran_order`, `shape`), the number
//! of dimensions, that no axis is empty, and that the bytes after the header
//! are exactly what the shape and dtype need (a header claiming `(10**12, 8)`
//! on a 64-byte file is an error naming the shape and the bytes held, not an
//! allocation). NaN and infinite values are errors. Every error is
//! [`MetricsError::Npy`] with the file's path and an [`NpyProblem`].

mod data;
pub mod dtype;
pub mod header;
pub mod problem;
mod write;

use std::fs::File;
use std::path::Path;

use ndarray::{Array, Array2, ArrayD, ArrayView2, Dimension, IxDyn, ShapeBuilder};

pub use dtype::{Dtype, Element, format_shape};
pub use header::{MAX_HEADER_LEN, NpyHeader};
pub use problem::NpyProblem;

use crate::{MetricsError, Result};

/// Wraps a problem with the file's path.
fn npy_err(path: &Path, problem: NpyProblem) -> MetricsError {
    MetricsError::Npy {
        path: path.to_path_buf(),
        problem,
    }
}

/// Opens `path`; returns the file and its size when it is a regular file.
fn open(path: &Path) -> std::result::Result<(File, Option<u64>), NpyProblem> {
    let io = |action, e: std::io::Error| NpyProblem::Io {
        action,
        message: e.to_string(),
    };
    let file = File::open(path).map_err(|e| io("open", e))?;
    let meta = file.metadata().map_err(|e| io("read", e))?;
    Ok((file, meta.is_file().then_some(meta.len())))
}

/// Reads and checks the header of the `.npy` file at `path` without reading
/// its data (the header's claims are not checked against the file size).
pub fn read_header(path: impl AsRef<Path>) -> Result<NpyHeader> {
    let path = path.as_ref();
    let (mut file, held) = open(path).map_err(|p| npy_err(path, p))?;
    header::read_header(&mut file, held).map_err(|p| npy_err(path, p))
}

/// What a reader accepts.
struct Expect {
    /// `None`: any number of dimensions.
    ndim: Option<usize>,
    layout: &'static str,
    floats: bool,
}

/// [`read_float_array`]: floats of any shape.
const ANY_FLOATS: Expect = Expect {
    ndim: None,
    layout: "",
    floats: true,
};

/// [`read_matrix`]: a 2-D float matrix.
const MATRIX: Expect = Expect {
    ndim: Some(2),
    layout: "[rows, columns]",
    floats: true,
};

/// [`read_ids`]: a 1-D integer vector.
const IDS: Expect = Expect {
    ndim: Some(1),
    layout: "[n]",
    floats: false,
};

/// Opens a file whose header passes `expect`; returns the file (at its
/// data), the header, its dtype and the file's size when known.
fn open_checked(
    path: &Path,
    expect: &Expect,
) -> std::result::Result<(File, NpyHeader, Dtype, Option<u64>), NpyProblem> {
    let (mut file, held) = open(path)?;
    let head = header::read_header(&mut file, held)?;
    let (wanted, accepted) = if expect.floats {
        (
            [Element::F32, Element::F64],
            "float32 or float64 data ('<f4', '<f8')",
        )
    } else {
        (
            [Element::I64, Element::I32],
            "int64 or int32 ids ('<i8', '<i4')",
        )
    };
    let dtype = head
        .dtype()
        .filter(|d| wanted.contains(&d.element))
        .ok_or_else(|| NpyProblem::Dtype {
            descr: head.descr.clone(),
            expected: accepted,
        })?;
    if let Some(n) = expect.ndim
        && head.shape.len() != n
    {
        return Err(NpyProblem::Ndim {
            shape: head.shape.clone(),
            expected: n,
            layout: expect.layout,
        });
    }
    if head.shape.contains(&0) {
        return Err(NpyProblem::Empty {
            shape: head.shape.clone(),
        });
    }
    Ok((file, head, dtype, held))
}

/// Reads a file whose header passes `expect`; returns the header, its dtype and
/// the raw data bytes (exactly as many as the shape needs).
fn read_checked(
    path: &Path,
    expect: &Expect,
) -> std::result::Result<(NpyHeader, Dtype, Vec<u8>), NpyProblem> {
    let (mut file, head, dtype, held) = open_checked(path, expect)?;
    let bytes = data::read_data(&mut file, &head, dtype, held)?;
    Ok((head, dtype, bytes))
}

/// Reads a float file whose header passes `expect` into an array of the
/// shape `dims` makes of the header's (non-empty, `expect`-checked) shape;
/// NaN and infinite values are errors naming their index.
fn read_floats<Sh, D>(
    path: &Path,
    expect: &Expect,
    dims: impl FnOnce(&[u64]) -> Sh,
) -> Result<Array<f32, D>>
where
    Sh: ShapeBuilder<Dim = D>,
    D: Dimension,
{
    let inner = || -> std::result::Result<Array<f32, D>, NpyProblem> {
        // Decoded chunk by chunk: the raw bytes are never held whole next to
        // the values (a float32 matrix peaks at its own size, not twice it).
        let (mut file, head, dtype, held) = open_checked(path, expect)?;
        let values = data::read_float_values(&mut file, &head, dtype, held)?;
        let arr = data::shaped(dims(&head.shape), head.fortran_order, values)?;
        // Only a float64 file with a value that is not finite as float32
        // needs its bytes, to report the value stored: read them again then.
        let bad = dtype.element == Element::F64 && arr.iter().any(|v| !v.is_finite());
        let bytes = if bad {
            read_checked(path, expect)?.2
        } else {
            Vec::new()
        };
        data::check_finite(arr.view().into_dyn(), &bytes, dtype, head.fortran_order)?;
        Ok(arr)
    };
    inner().map_err(|p| npy_err(path, p))
}

/// Reads a float array of any shape (`float32` or `float64`, converted to
/// f32), e.g. an image tensor `[n, 3, h, w]`. Every axis must be non-empty;
/// NaN and infinite values are errors.
pub fn read_float_array(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    read_floats(path.as_ref(), &ANY_FLOATS, |shape| {
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        IxDyn(&dims)
    })
}

/// Reads a 2-D float matrix (`float32` or `float64`, converted to f32), e.g.
/// features `[n, dim]` or distances `[n_query, n_gallery]`. Both axes must be
/// non-empty; NaN and infinite values are errors naming the `[row, column]`.
pub fn read_matrix(path: impl AsRef<Path>) -> Result<Array2<f32>> {
    read_floats(path.as_ref(), &MATRIX, |shape| {
        (shape[0] as usize, shape[1] as usize)
    })
}

/// Reads a 1-D id vector (`int64` or `int32`), e.g. person or camera ids `[n]`,
/// with at least one element.
pub fn read_ids(path: impl AsRef<Path>) -> Result<Vec<i64>> {
    let path = path.as_ref();
    read_checked(path, &IDS)
        .map(|(_, dtype, bytes)| data::decode_ints(&bytes, dtype))
        .map_err(|p| npy_err(path, p))
}

/// Writes a float32 matrix `[rows, cols]` (little-endian, C order, format 1.0),
/// atomically (a sibling `.tmp` file, then a rename).
pub fn write_matrix(path: impl AsRef<Path>, m: ArrayView2<f32>) -> Result<()> {
    let path = path.as_ref();
    let shape = [m.nrows() as u64, m.ncols() as u64];
    let mut bytes = Vec::with_capacity(m.len() * 4);
    for v in m.iter() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write::write_npy(path, Dtype::F32_LE, &shape, &bytes).map_err(|p| npy_err(path, p))
}

/// Writes an int64 id vector `[n]` (little-endian, format 1.0), atomically.
pub fn write_ids(path: impl AsRef<Path>, ids: &[i64]) -> Result<()> {
    let path = path.as_ref();
    let mut bytes = Vec::with_capacity(ids.len() * 8);
    for v in ids {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write::write_npy(path, Dtype::I64_LE, &[ids.len() as u64], &bytes).map_err(|p| npy_err(path, p))
}
