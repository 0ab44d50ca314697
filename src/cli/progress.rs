//! Progress display for training runs: a bar (indicatif) fed by the
//! recipes' step reports ([`StepBar`]) and the event handler of the
//! pre-training programs ([`Progress`]).

use indicatif::{ProgressBar, ProgressStyle};
use reid_train::PretrainEvent;

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

/// A progress callback for a recipe: a bar (or plain lines without a
/// terminal), epoch means, checkpoints and resumes.
pub struct Progress {
    label: &'static str,
    bar: Option<StepBar>,
    warned: Option<&'static str>,
}

impl Progress {
    /// Progress of the recipe `label`.
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            bar: None,
            warned: None,
        }
    }

    /// Handles one event.
    pub fn event(&mut self, e: PretrainEvent<'_>) {
        match e {
            PretrainEvent::Resumed { step, path } => {
                println!("resumed from {} ({step} steps done)", path.display());
            }
            PretrainEvent::Fresh { dir } => {
                println!(
                    "note: --resume: {} holds no checkpoint; starting a fresh run",
                    dir.display()
                );
            }
            PretrainEvent::Step(r) => {
                let label = self.label;
                let b = self
                    .bar
                    .get_or_insert_with(|| StepBar::new(label, r.total_steps, r.step));
                b.step(r.step, r.loss, r.lr, r.images_per_sec);
                let warning = r.warning();
                if warning.is_some() && warning != self.warned {
                    self.line(format!(
                        "warning at step {}: {}",
                        r.step,
                        warning.unwrap_or_default()
                    ));
                }
                self.warned = warning;
            }
            PretrainEvent::EpochEnd { epoch, mean_loss } => {
                self.line(format!("epoch {epoch:>3}: mean loss {mean_loss:.4}"));
            }
            PretrainEvent::Checkpoint { step, path } => {
                self.line(format!("checkpoint {} ({step} steps)", path.display()));
            }
        }
    }

    fn line(&self, s: String) {
        match &self.bar {
            Some(b) => b.println(s),
            None => println!("{s}"),
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish();
        }
    }
}
