//! The data part of a `.npy` file: a bounded read of exactly the bytes the
//! header's shape needs, decoding, layout and the finiteness check.

use std::io::Read;

use ndarray::{Array, ArrayViewD, Dimension, ShapeBuilder};

use super::dtype::{Dtype, Element};
use super::header::NpyHeader;
use super::problem::NpyProblem;

/// The data size a header claims, checked against the file's size when
/// known.
struct DataSize {
    /// Bytes the shape and dtype need (`None`: beyond `u128`).
    needed: Option<u128>,
    /// Bytes to read at most (one more than needed, to see a longer stream).
    limit: u64,
    /// Bytes the file holds after its header, when known (0 otherwise).
    held_bytes: usize,
}

/// The error for a data part of `got` bytes where `needed` were due.
fn size_problem(head: &NpyHeader, dtype: Dtype, needed: Option<u128>, got: u64) -> NpyProblem {
    NpyProblem::Size {
        shape: head.shape.clone(),
        dtype,
        needed,
        held: got,
        header_bytes: head.header_bytes,
    }
}

/// Checks the data size `head` claims against the file's size `held` (when
/// known) before anything is allocated from it.
fn data_size(head: &NpyHeader, dtype: Dtype, held: Option<u64>) -> Result<DataSize, NpyProblem> {
    let needed = head
        .num_elements()
        .and_then(|n| n.checked_mul(dtype.item_size() as u128));
    let data_held = held.map(|h| h.saturating_sub(head.header_bytes));
    if let Some(h) = data_held
        && needed != Some(u128::from(h))
    {
        return Err(size_problem(head, dtype, needed, h));
    }
    // From here `needed` fits the file (when its size is known) or is bounded
    // by the reader's real length.
    let limit = needed.map_or(u64::MAX, |n| u64::try_from(n).unwrap_or(u64::MAX));
    Ok(DataSize {
        needed,
        limit: limit.saturating_add(1),
        held_bytes: data_held.map_or(0, |h| usize::try_from(h).unwrap_or(0)),
    })
}

/// Reads the data that follows the header: exactly the bytes the shape and
/// dtype need. With the file's size `held` known, the size is checked before
/// any byte is read or allocated; otherwise at most one byte more than
/// needed is read, into a buffer that grows with what the reader really
/// holds. A short or long file is [`NpyProblem::Size`].
pub(super) fn read_data<R: Read>(
    r: &mut R,
    head: &NpyHeader,
    dtype: Dtype,
    held: Option<u64>,
) -> Result<Vec<u8>, NpyProblem> {
    let size = data_size(head, dtype, held)?;
    let mut bytes = Vec::with_capacity(size.held_bytes);
    r.take(size.limit)
        .read_to_end(&mut bytes)
        .map_err(|e| NpyProblem::Io {
            action: "read",
            message: e.to_string(),
        })?;
    if size.needed != Some(bytes.len() as u128) {
        return Err(size_problem(head, dtype, size.needed, bytes.len() as u64));
    }
    Ok(bytes)
}

/// Bytes read and decoded at a time by [`read_float_values`] (a multiple of
/// both item sizes).
const CHUNK_BYTES: usize = 1 << 20;

/// The data of `head` as f32 values (float64 rounded), read and decoded in
/// chunks of [`CHUNK_BYTES`] so that the raw bytes are never held whole; the
/// same size checks as [`read_data`].
pub(super) fn read_float_values<R: Read>(
    r: &mut R,
    head: &NpyHeader,
    dtype: Dtype,
    held: Option<u64>,
) -> Result<Vec<f32>, NpyProblem> {
    let item = dtype.item_size();
    let size = data_size(head, dtype, held)?;
    let mut values = Vec::with_capacity(size.held_bytes / item);
    let mut reader = r.take(size.limit);
    let mut buf = vec![0u8; CHUNK_BYTES];
    let (mut total, mut pending) = (0u64, 0usize);
    loop {
        let k = match reader.read(&mut buf[pending..]) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(NpyProblem::Io {
                    action: "read",
                    message: e.to_string(),
                });
            }
        };
        total += k as u64;
        pending += k;
        let whole = pending / item * item;
        values.extend(decode_floats(&buf[..whole], dtype));
        buf.copy_within(whole..pending, 0);
        pending -= whole;
    }
    if size.needed != Some(u128::from(total)) {
        return Err(size_problem(head, dtype, size.needed, total));
    }
    Ok(values)
}

/// Decodes float32/float64 bytes to f32 (float64 values are rounded).
pub(super) fn decode_floats(bytes: &[u8], dtype: Dtype) -> Vec<f32> {
    let be = dtype.big_endian;
    match dtype.element {
        Element::F32 => words(bytes, be, f32::from_le_bytes, f32::from_be_bytes).collect(),
        _ => words(bytes, be, f64::from_le_bytes, f64::from_be_bytes)
            .map(|v| v as f32)
            .collect(),
    }
}

/// The float64 stored in the first 8 bytes of `c`.
fn f64_at(c: &[u8], be: bool) -> f64 {
    words(&c[..8], be, f64::from_le_bytes, f64::from_be_bytes)
        .next()
        .unwrap_or(f64::NAN)
}

/// Decodes int32/int64 bytes to i64.
pub(super) fn decode_ints(bytes: &[u8], dtype: Dtype) -> Vec<i64> {
    let be = dtype.big_endian;
    match dtype.element {
        Element::I32 => words(bytes, be, i32::from_le_bytes, i32::from_be_bytes)
            .map(i64::from)
            .collect(),
        _ => words(bytes, be, i64::from_le_bytes, i64::from_be_bytes).collect(),
    }
}

/// The consecutive `N`-byte words of `bytes` (a trailing partial word is
/// ignored), each decoded big-endian when `be`, else little-endian.
fn words<'a, const N: usize, T: 'a>(
    bytes: &'a [u8],
    be: bool,
    from_le: fn([u8; N]) -> T,
    from_be: fn([u8; N]) -> T,
) -> impl Iterator<Item = T> + 'a {
    let decode = if be { from_be } else { from_le };
    bytes.chunks_exact(N).map(move |c| {
        let mut word = [0u8; N];
        word.copy_from_slice(c);
        decode(word)
    })
}

/// Arranges `values` (in file order) as an array of `shape` in standard (C)
/// layout; `fortran` says the file stores them column-major.
pub(super) fn shaped<Sh, D>(
    shape: Sh,
    fortran: bool,
    values: Vec<f32>,
) -> Result<Array<f32, D>, NpyProblem>
where
    Sh: ShapeBuilder<Dim = D>,
    D: Dimension,
{
    let arr = Array::from_shape_vec(shape.set_f(fortran), values).map_err(|e| {
        NpyProblem::HeaderField {
            field: "shape",
            expected: "a shape whose element count fits in memory addresses",
            got: e.to_string(),
        }
    })?;
    Ok(if fortran {
        arr.as_standard_layout().into_owned()
    } else {
        arr
    })
}

/// Fails on the first NaN or infinite value (in row-major order), naming its
/// index and the value in the file (a finite float64 beyond the float32 range
/// is reported as such).
pub(super) fn check_finite(
    arr: ArrayViewD<'_, f32>,
    bytes: &[u8],
    dtype: Dtype,
    fortran: bool,
) -> Result<(), NpyProblem> {
    let Some((idx, &v)) = arr.indexed_iter().find(|(_, v)| !v.is_finite()) else {
        return Ok(());
    };
    let idx: Vec<usize> = idx.slice().to_vec();
    let dims = arr.shape();
    let value = if dtype.element == Element::F64 {
        let mut flat = 0usize;
        if fortran {
            for k in (0..dims.len()).rev() {
                flat = flat * dims[k] + idx[k];
            }
        } else {
            for k in 0..dims.len() {
                flat = flat * dims[k] + idx[k];
            }
        }
        let original = f64_at(&bytes[flat * 8..flat * 8 + 8], dtype.big_endian);
        if original.is_finite() {
            format!("{original:e} (beyond the float32 range)")
        } else {
            original.to_string()
        }
    } else {
        v.to_string()
    };
    let parts: Vec<String> = idx.iter().map(usize::to_string).collect();
    Err(NpyProblem::NonFinite {
        index: format!("[{}]", parts.join(", ")),
        value,
    })
}
