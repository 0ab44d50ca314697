//! A progress bar for training runs (indicatif), fed by the recipes'
//! step reports.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `total` optimiser steps showing loss, learning rate and
/// images/s; hidden when stderr is not a terminal.
pub struct StepBar {
    bar: ProgressBar,
    label: String,
    total: usize,
}

impl StepBar {
    /// A bar labelled `label` over `total` steps, starting at `done`.
    pub fn new(label: &str, total: usize, done: usize) -> Self {
        let bar = ProgressBar::new(total as u64);
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{elapsed_precise}] {bar:30} {pos:>5}/{len:5} {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar.set_position(done as u64);
        Self {
            bar,
            label: label.to_string(),
            total,
        }
    }

    /// Moves to `step + 1` completed steps with the step's figures.
    /// Without a terminal, a plain line is printed every 5 % of the run.
    pub fn step(&self, step: usize, loss: f64, lr: f64, images_per_sec: f64) {
        let msg = format!("loss {loss:.4} lr {lr:.2e} {images_per_sec:.0} img/s");
        if self.bar.is_hidden() {
            let every = (self.total / 20).max(1);
            if (step + 1).is_multiple_of(every) || step + 1 == self.total {
                eprintln!("{:>10} {:>6}/{} {msg}", self.label, step + 1, self.total);
            }
        }
        self.bar.set_position(step as u64 + 1);
        self.bar.set_message(msg);
    }

    /// Prints a line above the bar (on stderr when there is no terminal).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.bar.is_hidden() {
            eprintln!("{}", line.as_ref());
        } else {
            self.bar.println(line.as_ref());
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
