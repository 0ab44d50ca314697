//! `.npy` input/output: features and distances as f32 or f64 (read as f32), ids as
//! int64 or int32 (read as i64). Errors name the file and what was expected.

use std::path::Path;

use ndarray::{Array1, Array2, ArrayView2};
use ndarray_npy::{ReadNpyError, read_npy, write_npy};

use crate::{MetricsError, Result};

fn npy_err(path: &Path, reason: impl Into<String>) -> MetricsError {
    MetricsError::Npy {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn describe(e: &ReadNpyError) -> String {
    match e {
        ReadNpyError::WrongNdim(expected, got) => format!(
            "expected a {}-dimensional array, got {got} dimensions",
            expected.unwrap_or(0)
        ),
        ReadNpyError::WrongDescriptor(d) => format!("unsupported dtype {d}"),
        other => other.to_string(),
    }
}

/// Reads a 2-D float matrix (`float32` or `float64`, converted to f32), e.g. features
/// `[n, dim]` or distances `[n_query, n_gallery]`. Fails on NaN or infinite values.
pub fn read_matrix(path: impl AsRef<Path>) -> Result<Array2<f32>> {
    let path = path.as_ref();
    let arr: Array2<f32> = match read_npy::<_, Array2<f32>>(path) {
        Ok(a) => a,
        Err(ReadNpyError::WrongDescriptor(_)) => match read_npy::<_, Array2<f64>>(path) {
            Ok(a) => a.mapv(|v| v as f32),
            Err(ReadNpyError::WrongDescriptor(d)) => {
                return Err(npy_err(
                    path,
                    format!("expected float32 or float64 data, got dtype {d}"),
                ));
            }
            Err(e) => return Err(npy_err(path, describe(&e))),
        },
        Err(e) => return Err(npy_err(path, describe(&e))),
    };
    if let Some(i) = arr.iter().position(|v| !v.is_finite()) {
        let (r, c) = (i / arr.ncols().max(1), i % arr.ncols().max(1));
        return Err(npy_err(
            path,
            format!("non-finite value (NaN or infinity) at [{r}, {c}]"),
        ));
    }
    Ok(arr)
}

/// Reads a 1-D id vector (`int64` or `int32`), e.g. person or camera ids `[n]`.
pub fn read_ids(path: impl AsRef<Path>) -> Result<Vec<i64>> {
    let path = path.as_ref();
    match read_npy::<_, Array1<i64>>(path) {
        Ok(a) => Ok(a.to_vec()),
        Err(ReadNpyError::WrongDescriptor(_)) => match read_npy::<_, Array1<i32>>(path) {
            Ok(a) => Ok(a.iter().map(|&v| v as i64).collect()),
            Err(ReadNpyError::WrongDescriptor(d)) => Err(npy_err(
                path,
                format!("expected int64 or int32 ids, got dtype {d}"),
            )),
            Err(e) => Err(npy_err(path, describe(&e))),
        },
        Err(e) => Err(npy_err(path, describe(&e))),
    }
}

/// Writes a float32 matrix `[rows, cols]`.
pub fn write_matrix(path: impl AsRef<Path>, m: ArrayView2<f32>) -> Result<()> {
    let path = path.as_ref();
    write_npy(path, &m).map_err(|e| npy_err(path, e.to_string()))
}

/// Writes an int64 id vector `[n]`.
pub fn write_ids(path: impl AsRef<Path>, ids: &[i64]) -> Result<()> {
    let path = path.as_ref();
    write_npy(path, &Array1::from(ids.to_vec())).map_err(|e| npy_err(path, e.to_string()))
}
