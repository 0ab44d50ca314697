//! A streaming reader of `[rows, dim]` float32 `.npy` files, row blocks at a
//! time, so a corpus-sized feature file never has to fit in memory.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::error::{DenoiseError, Result};

/// Reads rows of a little-endian float32, C-order, 2-D `.npy` file in order.
pub struct NpyRows {
    path: PathBuf,
    reader: BufReader<File>,
    rows: u64,
    dim: usize,
    read: u64,
}

impl NpyRows {
    /// Opens `path` and parses its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let f = File::open(&path).map_err(|e| DenoiseError::io(&path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, f);
        let mut magic = [0u8; 8];
        reader
            .read_exact(&mut magic)
            .map_err(|_| DenoiseError::npy(&path, "too short for a .npy header"))?;
        if &magic[..6] != b"\x93NUMPY" {
            return Err(DenoiseError::npy(&path, "not a .npy file (bad magic)"));
        }
        let header_len = match magic[6] {
            1 => {
                let mut b = [0u8; 2];
                reader
                    .read_exact(&mut b)
                    .map_err(|e| DenoiseError::io(&path, e))?;
                u16::from_le_bytes(b) as usize
            }
            2 | 3 => {
                let mut b = [0u8; 4];
                reader
                    .read_exact(&mut b)
                    .map_err(|e| DenoiseError::io(&path, e))?;
                u32::from_le_bytes(b) as usize
            }
            v => {
                return Err(DenoiseError::npy(
                    &path,
                    format!("unsupported .npy version {v}"),
                ));
            }
        };
        let mut header = vec![0u8; header_len];
        reader
            .read_exact(&mut header)
            .map_err(|_| DenoiseError::npy(&path, "truncated .npy header"))?;
        let header = String::from_utf8_lossy(&header).replace(' ', "");
        if !header.contains("'descr':'<f4'") {
            return Err(DenoiseError::npy(
                &path,
                format!("expected float32 little-endian ('<f4') features, header is {header}"),
            ));
        }
        if !header.contains("'fortran_order':False") {
            return Err(DenoiseError::npy(
                &path,
                "expected C-order (fortran_order False)",
            ));
        }
        let shape = header
            .split("'shape':(")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .ok_or_else(|| DenoiseError::npy(&path, "no shape in header"))?;
        let dims: Vec<u64> = shape
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| DenoiseError::npy(&path, format!("bad shape ({shape})")))?;
        if dims.len() != 2 || dims[1] == 0 {
            return Err(DenoiseError::npy(
                &path,
                format!("expected a 2-D [rows, dim] matrix, shape is ({shape})"),
            ));
        }
        Ok(Self {
            path,
            reader,
            rows: dims[0],
            dim: dims[1] as usize,
            read: 0,
        })
    }

    /// Total rows in the file.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Row length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Reads the next `n` rows as `[n, dim]`.
    pub fn next_rows(&mut self, n: usize) -> Result<Array2<f32>> {
        if self.read + n as u64 > self.rows {
            return Err(DenoiseError::npy(
                &self.path,
                format!(
                    "asked for rows {}..{} but the file has {} rows",
                    self.read,
                    self.read + n as u64,
                    self.rows
                ),
            ));
        }
        let mut bytes = vec![0u8; n * self.dim * 4];
        self.reader.read_exact(&mut bytes).map_err(|_| {
            DenoiseError::npy(
                &self.path,
                format!("truncated: data ends before row {}", self.read + n as u64),
            )
        })?;
        self.read += n as u64;
        let data: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Array2::from_shape_vec((n, self.dim), data)
            .map_err(|e| DenoiseError::npy(&self.path, e.to_string()))
    }
}
