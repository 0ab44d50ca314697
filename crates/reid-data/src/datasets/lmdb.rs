//! LMDB storage of LUPerson / LUPerson-NL (cargo feature `lmdb`).
//!
//! Upstream stores each crop's raw JPEG bytes as the value of an ASCII key in
//! the unnamed database of an LMDB environment (a folder with `data.mdb`) and
//! lists the keys in a Python pickle `keys.pkl`:
//! - LUPerson's converter writes a **plain list** of keys, while its training
//!   loader reads a **dict** `{"keys": [...]}` (optionally with `"pids"`);
//! - LUPerson-NL writes `{"keys": [...], "pids": [...]}`.
//!
//! [`read_keys`] accepts all of these (keys as `str` or `bytes`).
//! [`LmdbReader`] opens the environment read-only, memory-mapped, without a
//! lock file, and copies out one value per [`LmdbReader::get`] — never the
//! whole database. [`write_env`] and [`write_keys`] produce the same format
//! (used by tests and the synthetic world).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions};
use serde_pickle::{DeOptions, HashableValue, SerOptions, Value};

use crate::error::{DataError, Result};

/// The contents of a `keys.pkl`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysFile {
    /// Image keys, in file order.
    pub keys: Vec<String>,
    /// Per-key labels (`"pids"`), when present.
    pub pids: Option<Vec<i64>>,
}

fn malformed(path: &Path, what: impl Into<String>) -> DataError {
    DataError::Malformed {
        path: path.to_path_buf(),
        expected: what.into(),
    }
}

fn as_key(path: &Path, i: usize, v: Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Bytes(b) => {
            String::from_utf8(b).map_err(|_| malformed(path, format!("key {i} to be ASCII text")))
        }
        other => Err(malformed(
            path,
            format!("key {i} to be a str or bytes, got {other:?}"),
        )),
    }
}

fn as_list(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::List(l) | Value::Tuple(l) => Some(l),
        _ => None,
    }
}

/// Reads `keys.pkl`: a list of keys, or a dict with `"keys"` and optionally
/// `"pids"` (integers, as many as keys).
pub fn read_keys(path: &Path) -> Result<KeysFile> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let value: Value = serde_pickle::value_from_slice(&bytes, DeOptions::new())
        .map_err(|e| malformed(path, format!("a readable pickle ({e})")))?;
    let (keys, pids) = match value {
        Value::Dict(mut d) => {
            let keys = d
                .remove(&HashableValue::String("keys".into()))
                .ok_or_else(|| malformed(path, "a dict with a \"keys\" entry"))?;
            (keys, d.remove(&HashableValue::String("pids".into())))
        }
        other => (other, None),
    };
    let keys = as_list(keys).ok_or_else(|| malformed(path, "a list of keys"))?;
    let keys = keys
        .into_iter()
        .enumerate()
        .map(|(i, v)| as_key(path, i, v))
        .collect::<Result<Vec<_>>>()?;
    let pids = match pids {
        None => None,
        Some(p) => {
            let list = as_list(p).ok_or_else(|| malformed(path, "\"pids\" to be a list"))?;
            let pids = list
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::I64(x) => Ok(x),
                    other => Err(malformed(
                        path,
                        format!("pid {i} to be an int, got {other:?}"),
                    )),
                })
                .collect::<Result<Vec<_>>>()?;
            if pids.len() != keys.len() {
                return Err(malformed(
                    path,
                    format!(
                        "as many pids as keys ({} keys, {} pids)",
                        keys.len(),
                        pids.len()
                    ),
                ));
            }
            Some(pids)
        }
    };
    Ok(KeysFile { keys, pids })
}

/// Writes `keys.pkl`: a plain list when `pids` is `None` and `as_dict` is
/// false (LUPerson's converter), else `{"keys": [...], ("pids": [...])}`.
pub fn write_keys(path: &Path, keys: &[String], pids: Option<&[i64]>, as_dict: bool) -> Result<()> {
    let list = Value::List(keys.iter().cloned().map(Value::String).collect());
    let value = if pids.is_none() && !as_dict {
        list
    } else {
        let mut d = BTreeMap::new();
        d.insert(HashableValue::String("keys".into()), list);
        if let Some(p) = pids {
            let v = Value::List(p.iter().copied().map(Value::I64).collect());
            d.insert(HashableValue::String("pids".into()), v);
        }
        Value::Dict(d)
    };
    let bytes = serde_pickle::value_to_vec(&value, SerOptions::new())
        .map_err(|e| malformed(path, format!("a picklable value ({e})")))?;
    std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))
}

fn lmdb_err(path: &Path, e: heed::Error) -> DataError {
    DataError::Lmdb {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A read-only LMDB environment of image bytes.
pub struct LmdbReader {
    env: Env,
    db: Database<Bytes, Bytes>,
    path: PathBuf,
}

impl std::fmt::Debug for LmdbReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmdbReader")
            .field("path", &self.path)
            .finish()
    }
}

impl LmdbReader {
    /// Opens the environment in folder `dir` (holding `data.mdb`) read-only
    /// and without locking, like upstream's `lmdb.open(readonly, lock=False)`.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.join("data.mdb").is_file() {
            return Err(DataError::Layout {
                path: dir.join("data.mdb"),
                expected: "an LMDB data file".into(),
            });
        }
        let mut opts = EnvOpenOptions::new();
        // SAFETY: the environment is opened read-only; the caller must not
        // let another process truncate the files while they are mapped
        // (LMDB's documented requirement for any reader).
        let env = unsafe {
            opts.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK | EnvFlags::NO_READ_AHEAD);
            opts.open(dir)
        }
        .map_err(|e| lmdb_err(dir, e))?;
        let rtxn = env.read_txn().map_err(|e| lmdb_err(dir, e))?;
        let db = env
            .open_database::<Bytes, Bytes>(&rtxn, None)
            .map_err(|e| lmdb_err(dir, e))?
            .ok_or_else(|| DataError::Lmdb {
                path: dir.to_path_buf(),
                message: "no main database".into(),
            })?;
        drop(rtxn);
        Ok(Self {
            env,
            db,
            path: dir.to_path_buf(),
        })
    }

    /// The environment folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of entries.
    pub fn len(&self) -> Result<u64> {
        let rtxn = self.env.read_txn().map_err(|e| lmdb_err(&self.path, e))?;
        self.db.len(&rtxn).map_err(|e| lmdb_err(&self.path, e))
    }

    /// True when the database has no entry.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A copy of the value (JPEG bytes) stored under `key`; a missing key is
    /// an error naming it.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let rtxn = self.env.read_txn().map_err(|e| lmdb_err(&self.path, e))?;
        let v = self
            .db
            .get(&rtxn, key.as_bytes())
            .map_err(|e| lmdb_err(&self.path, e))?;
        v.map(<[u8]>::to_vec).ok_or_else(|| DataError::Lmdb {
            path: self.path.clone(),
            message: format!("no entry for key `{key}`"),
        })
    }

    /// Decodes the image stored under `key` as 8-bit RGB.
    pub fn image(&self, key: &str) -> Result<image::RgbImage> {
        let bytes = self.get(key)?;
        image::load_from_memory(&bytes)
            .map(|i| i.to_rgb8())
            .map_err(|e| DataError::Image {
                path: self.path.join(key),
                message: e.to_string(),
            })
    }
}

/// Creates (or extends) the environment in `dir` with `items` (key, bytes),
/// one write transaction; `map_size` is the maximal database size in bytes.
pub fn write_env<'a>(
    dir: &Path,
    items: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    map_size: usize,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let mut opts = EnvOpenOptions::new();
    opts.map_size(map_size);
    // SAFETY: the folder is ours; no other process maps it while we write.
    let env = unsafe { opts.open(dir) }.map_err(|e| lmdb_err(dir, e))?;
    let mut wtxn = env.write_txn().map_err(|e| lmdb_err(dir, e))?;
    let db: Database<Bytes, Bytes> = env
        .create_database(&mut wtxn, None)
        .map_err(|e| lmdb_err(dir, e))?;
    for (k, v) in items {
        db.put(&mut wtxn, k.as_bytes(), v)
            .map_err(|e| lmdb_err(dir, e))?;
    }
    wtxn.commit().map_err(|e| lmdb_err(dir, e))
}
