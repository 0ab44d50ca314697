//! A metrics log in JSON lines: one object per optimiser step (or per
//! evaluation), `{"step": 12, "epoch": 0, "loss": 3.21, "lr": 0.001, …}`,
//! flushed after every line so a killed run keeps what it logged.
//! `reid-viz` (`plot_log`, the `plot` example) turns it into PNG curves.
//!
//! Fine-tuning also writes one line per evaluation that its caller records
//! at the end of an epoch ([`EpochMetrics`], filled in
//! [`RunEvent::EpochEnd`](crate::finetune::RunEvent::EpochEnd)), with the
//! epoch's last step and the names of [`EVAL_KEYS`]:
//! `{"step": 8, "epoch": 2, "mAP": 0.41, "rank1": 0.47, "rank5": 0.69,
//! "rank10": 0.78, "mINP": 0.21}` (fractions in `[0, 1]`), after that
//! step's own line.
//!
//! On resume from a checkpoint of `n` steps, [`MetricsLog::resume`] keeps
//! the lines with `step < n` and drops the rest (steps that ran after the
//! checkpoint and will run again), so the log has no repeated step. An
//! evaluation line carries its epoch's last step, so it is kept exactly when
//! that epoch ended before the checkpoint (and its end is not run again),
//! and dropped with the epoch's steps otherwise (the resumed run writes it
//! again when the epoch ends).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use reid_metrics::EvalResult;
use serde_json::{Map, Value};

use super::checkpoint::write_atomic;
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

/// The names under which an evaluation is logged, in the order
/// [`eval_values`] lists them (the log's JSON objects have their keys
/// sorted): mean average precision, Rank-1, Rank-5 and Rank-10
/// accuracy (CMC), mean inverse negative penalty; all fractions in
/// `[0, 1]`. `reid-viz` draws these together (`evaluation.png`).
pub const EVAL_KEYS: [&str; 5] = ["mAP", "rank1", "rank5", "rank10", "mINP"];

/// The logged values of an evaluation, named as in [`EVAL_KEYS`]
/// (`rank5` / `rank10` only when the CMC reaches that rank, e.g. not with a
/// gallery of fewer images).
pub fn eval_values(result: &EvalResult) -> Vec<(String, f64)> {
    let mut out = vec![(EVAL_KEYS[0].to_string(), result.map)];
    for (key, k) in EVAL_KEYS[1..4].iter().zip([1, 5, 10]) {
        if let Some(v) = result.rank(k) {
            out.push((key.to_string(), v));
        }
    }
    out.push((EVAL_KEYS[4].to_string(), result.minp));
    out
}

/// Values to log for an epoch that has just ended, filled by the caller of
/// a fine-tuning run in
/// [`RunEvent::EpochEnd`](crate::finetune::RunEvent::EpochEnd) (typically
/// with an evaluation, [`EpochMetrics::record`]). When not empty after the
/// event, the run writes them as one line of its metrics log at the epoch's
/// last step, and returns them in
/// [`RunOutput::evaluations`](crate::finetune::RunOutput::evaluations).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpochMetrics {
    values: Vec<(String, f64)>,
}

impl EpochMetrics {
    /// Records an evaluation's mAP, Rank-1/5/10 and mINP ([`eval_values`]).
    pub fn record(&mut self, result: &EvalResult) {
        for (name, value) in eval_values(result) {
            self.insert(&name, value);
        }
    }

    /// Sets the value named `name` (replacing an earlier one of that name).
    ///
    /// # Panics
    /// If `name` is `step` or `epoch`, the line's own keys.
    pub fn insert(&mut self, name: &str, value: f64) {
        assert!(
            name != "step" && name != "epoch",
            "{name:?} is a key of every log line, not a metric name"
        );
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name.to_string(), value)),
        }
    }

    /// The values recorded so far, in insertion order.
    pub fn values(&self) -> &[(String, f64)] {
        &self.values
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values, leaving this empty.
    pub(crate) fn take(&mut self) -> Vec<(String, f64)> {
        std::mem::take(&mut self.values)
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
