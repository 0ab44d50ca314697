//! A metrics log in JSON lines: one object per optimiser step (or per
//! evaluation), `{"step": 12, "epoch": 0, "loss": 3.21, "lr": 0.001, …}`,
//! flushed after every line so a killed run keeps what it logged.
//! `reid-viz` (`plot_log`, the `plot` example) turns it into PNG curves.
//!
//! On resume from a checkpoint of `n` steps, [`MetricsLog::resume`] keeps
//! the lines with `step < n` and drops the rest (steps that ran after the
//! checkpoint and will run again), so the log has no repeated step.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::checkpoint::write_atomic;
use crate::error::TrainError;

/// An open JSON-lines metrics log.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

/// One line of the log: the step, the epoch and named values.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// 0-based global step the values belong to.
    pub step: usize,
    /// 0-based epoch.
    pub epoch: usize,
    /// Named values in insertion order (losses, learning rate, images/s, …).
    pub values: Vec<(String, f64)>,
}

impl LogLine {
    /// A line for `step` of `epoch` with no values yet.
    pub fn new(step: usize, epoch: usize) -> Self {
        Self {
            step,
            epoch,
            values: Vec::new(),
        }
    }

    /// Adds a named value.
    pub fn with(mut self, name: &str, value: f64) -> Self {
        self.values.push((name.to_string(), value));
        self
    }

    /// The value named `name`, if any.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("step".into(), Value::from(self.step));
        m.insert("epoch".into(), Value::from(self.epoch));
        for (k, v) in &self.values {
            // JSON has no NaN/inf: store them as null (the NaN guard stops
            // training anyway).
            let val = serde_json::Number::from_f64(*v)
                .map(Value::Number)
                .unwrap_or(Value::Null);
            m.insert(k.clone(), val);
        }
        Value::Object(m).to_string()
    }
}

fn log_err(path: &Path, message: impl Into<String>) -> TrainError {
    TrainError::Log {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl MetricsLog {
    /// Starts a new log at `path`, replacing any file there.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, TrainError> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| log_err(dir, e.to_string()))?;
        }
        let file = File::create(&path).map_err(|e| log_err(&path, e.to_string()))?;
        Ok(Self { path, file })
    }

    /// Continues the log at `path` after a resume from a checkpoint of
    /// `step` completed steps: lines of later steps are dropped (the file is
    /// rewritten atomically), a torn last line from a kill is dropped too,
    /// and new lines are appended. A missing file starts a new log.
    pub fn resume(path: impl Into<PathBuf>, step: usize) -> Result<Self, TrainError> {
        let path = path.into();
        if !path.exists() {
            return Self::create(path);
        }
        let reader = BufReader::new(File::open(&path).map_err(|e| log_err(&path, e.to_string()))?);
        let mut kept = String::new();
        for line in reader.lines() {
            let line = line.map_err(|e| log_err(&path, e.to_string()))?;
            let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&line) else {
                continue; // torn line from an interrupted write
            };
            let s = m.get("step").and_then(Value::as_u64);
            if s.is_some_and(|s| (s as usize) < step) {
                kept.push_str(&line);
                kept.push('\n');
            }
        }
        write_atomic(&path, kept.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| log_err(&path, e.to_string()))?;
        Ok(Self { path, file })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and flushes it.
    pub fn write(&mut self, line: &LogLine) -> Result<(), TrainError> {
        let mut s = line.to_json();
        s.push('\n');
        self.file
            .write_all(s.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| log_err(&self.path, e.to_string()))
    }
}

/// Reads a log written by [`MetricsLog`] back (lines that do not parse are
/// an error naming the line).
pub fn read_log(path: &Path) -> Result<Vec<LogLine>, TrainError> {
    let reader = BufReader::new(File::open(path).map_err(|e| log_err(path, e.to_string()))?);
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| log_err(path, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let m = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => m,
            _ => return Err(log_err(path, format!("line {}: not a JSON object", i + 1))),
        };
        let get = |k: &str| m.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let (Some(step), Some(epoch)) = (get("step"), get("epoch")) else {
            return Err(log_err(
                path,
                format!("line {}: expected integer \"step\" and \"epoch\"", i + 1),
            ));
        };
        let values = m
            .iter()
            .filter(|(k, _)| *k != "step" && *k != "epoch")
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN)))
            .collect();
        out.push(LogLine {
            step,
            epoch,
            values,
        });
    }
    Ok(out)
}
