//! The corpus runner: cases, the outcome of a run of the `reid` binary, and
//! the checks every case meets (no panic, no abort, the documented exit
//! code, a message that names what was wrong, no library internals).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What was wrong with the input, as the issue lists the classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Arguments clap or the program refuses.
    Arguments,
    /// An input the engines cannot take (panicked before).
    Panic,
    /// A size claimed by a header and allocated before being checked
    /// (aborted before).
    Abort,
    /// NaN in weights or input.
    NaN,
    /// Zero-dimensional or empty arrays.
    Empty,
    /// Files the parsers cannot read (dropped silently before).
    Unreadable,
    /// Unknown keys in nested recipe tables.
    NestedKey,
    /// Resuming with other data / nothing to resume / damaged checkpoints.
    Resume,
    /// `plot` on an empty, single-field or torn log.
    Plot,
    /// Exit-code consistency (bad recipe values, missing files, corrupt
    /// images).
    ExitCode,
    /// Messages that named library internals.
    Message,
    /// `--on-corrupt`.
    Corrupt,
    /// Malformed files of any other kind.
    Malformed,
    /// Valid inputs: the program must succeed.
    Good,
}

/// A further check of a run's outcome.
pub type Check = Box<dyn Fn(&Outcome) -> Result<(), String> + Send + Sync>;

/// A step run before a case.
pub type Before = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// One run of the binary and what it must give.
pub struct Case {
    /// Short name, unique.
    pub name: String,
    /// The class of bad input.
    pub class: Class,
    /// Arguments after the binary's name.
    pub args: Vec<OsString>,
    /// Expected exit code.
    pub code: i32,
    /// Substrings the error output (or, for code 0, the output) must hold,
    /// compared without case.
    pub says: Vec<String>,
    /// Further check of the run (files written, values).
    pub check: Option<Check>,
    /// Run before the case (e.g. damaging a checkpoint the previous case
    /// of its group wrote).
    pub before: Option<Before>,
}

impl Case {
    /// A case running `args`, expecting `code` and the `says` substrings.
    pub fn new<S: AsRef<std::ffi::OsStr>>(
        name: impl Into<String>,
        class: Class,
        args: &[S],
        code: i32,
        says: &[&str],
    ) -> Self {
        Self {
            name: name.into(),
            class,
            args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
            code,
            says: says.iter().map(|s| s.to_string()).collect(),
            check: None,
            before: None,
        }
    }

    /// Adds a step run before the case.
    pub fn after(mut self, f: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.before = Some(Box::new(f));
        self
    }

    /// Adds a check of the outcome.
    pub fn with_check(
        mut self,
        f: impl Fn(&Outcome) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Box::new(f));
        self
    }
}

/// What a run gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Whether it ran past the time limit.
    pub timed_out: bool,
}

/// How a case went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// As documented.
    Pass,
    /// Exit code 101 or a panic message.
    Panic,
    /// Exit code 134 or a signal (SIGABRT, SIGKILL by the OOM killer).
    Abort,
    /// Exit code 0 where an error was due, or a check of the output failed:
    /// a silent wrong result.
    Wrong,
    /// Another failure: the wrong non-zero code, a message that does not
    /// name what was wrong, or library internals in it.
    Bad,
}

/// The binary the corpus runs: `REID_CORPUS_BIN` (to measure another
/// build) or this build's `reid`.
pub fn binary() -> PathBuf {
    std::env::var_os("REID_CORPUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_reid")))
}

/// Runs the binary with `args` (at most `limit`), with a memory cap so that
/// a huge allocation aborts instead of swapping.
pub fn run(args: &[OsString], limit: Duration) -> Outcome {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG");
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                code: None,
                signal: None,
                stdout: String::new(),
                stderr: format!("cannot start {}: {e}", binary().display()),
                timed_out: false,
            };
        }
    };
    // Read the pipes on threads so that a chatty child cannot block.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut s);
        s
    });
    let t0 = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if t0.elapsed() > limit => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    use std::os::unix::process::ExitStatusExt;
    Outcome {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stdout,
        stderr,
        timed_out,
    }
}

/// Text no message may hold: panics, debug output and library internals.
const FORBIDDEN: [&str; 9] = [
    "panicked",
    "RUST_BACKTRACE",
    "Tensor Loading Summary",
    "NDIM",
    "Io(",
    "Os {",
    "Custom {",
    "kind: ",
    "Some(",
];

/// Judges one outcome against its case; the reason when it fails.
pub fn judge(case: &Case, o: &Outcome) -> (Verdict, String) {
    let all = format!("{}\n{}", o.stdout, o.stderr);
    if o.code == Some(101) || o.stderr.contains("panicked at") {
        return (Verdict::Panic, tail(&o.stderr));
    }
    if o.code == Some(134) || (o.signal.is_some() && !o.timed_out) {
        return (
            Verdict::Abort,
            format!("signal {:?}: {}", o.signal, tail(&o.stderr)),
        );
    }
    if o.timed_out {
        return (Verdict::Bad, "ran past the time limit".into());
    }
    if o.code != Some(case.code) {
        let verdict = if o.code == Some(0) {
            Verdict::Wrong
        } else {
            Verdict::Bad
        };
        return (
            verdict,
            format!(
                "exit code {:?}, expected {}: {}",
                o.code,
                case.code,
                tail(&all)
            ),
        );
    }
    let lower = all.to_lowercase();
    for s in &case.says {
        if !lower.contains(&s.to_lowercase()) {
            let verdict = if case.code == 0 {
                Verdict::Wrong
            } else {
                Verdict::Bad
            };
            return (verdict, format!("does not say {s:?}: {}", tail(&all)));
        }
    }
    if case.code != 0 && !o.stderr.contains("error") {
        return (Verdict::Bad, format!("no error message: {}", tail(&all)));
    }
    for f in FORBIDDEN {
        if o.stderr.contains(f) {
            return (Verdict::Bad, format!("shows {f:?}: {}", tail(&o.stderr)));
        }
    }
    if let Some(twice) = repeated_os_error(&o.stderr) {
        return (
            Verdict::Bad,
            format!("prints {twice:?} twice: {}", tail(&o.stderr)),
        );
    }
    if let Some(check) = &case.check
        && let Err(why) = check(o)
    {
        return (Verdict::Wrong, why);
    }
    (Verdict::Pass, String::new())
}

/// A system message (`… (os error N)`) that a line holds twice.
fn repeated_os_error(text: &str) -> Option<String> {
    for line in text.lines() {
        let mut rest = line;
        let mut seen = Vec::new();
        while let Some(i) = rest.find("(os error ") {
            let end = rest[i..].find(')').map_or(rest.len(), |j| i + j + 1);
            let start = rest[..i].rfind(": ").map_or(0, |j| j + 2);
            let msg = rest[start..end].to_string();
            if seen.contains(&msg) {
                return Some(msg);
            }
            seen.push(msg);
            rest = &rest[end..];
        }
    }
    None
}

fn tail(s: &str) -> String {
    let s = s.trim();
    let n = s.chars().count();
    if n > 600 {
        let skip = n - 600;
        format!("…{}", s.chars().skip(skip).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The result of one case.
pub struct Judged {
    /// Case name.
    pub name: String,
    /// Its class.
    pub class: Class,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it failed.
    pub why: String,
}

/// Runs `cases` on `threads` threads (groups run in order inside, one group
/// per thread at a time).
pub fn run_groups(groups: Vec<Vec<Case>>, threads: usize, limit: Duration) -> Vec<Judged> {
    let queue = Mutex::new(groups.into_iter().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let Some(group) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    for case in group {
                        if let Some(before) = &case.before
                            && let Err(why) = before()
                        {
                            results.lock().unwrap().push(Judged {
                                name: case.name.clone(),
                                class: case.class,
                                verdict: Verdict::Bad,
                                why: format!("preparing the case: {why}"),
                            });
                            continue;
                        }
                        let o = run(&case.args, limit);
                        let (verdict, why) = judge(&case, &o);
                        results.lock().unwrap().push(Judged {
                            name: case.name.clone(),
                            class: case.class,
                            verdict,
                            why,
                        });
                    }
                }
            });
        }
    });
    let mut r = results.into_inner().unwrap();
    r.sort_by(|a, b| a.name.cmp(&b.name));
    r
}

/// `path` as an argument.
pub fn a(path: &Path) -> OsString {
    path.as_os_str().to_os_string()
}
