//! Progress bars on stderr, only when stderr is a terminal (never in pipes, logs or tests).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

fn shown() -> bool {
    std::io::stderr().is_terminal()
}

/// A spinner with `msg`, for work that reports no progress of its own (format).
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    if !shown() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner().with_message(msg.into());
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"),
    );
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// A bar of `len` steps (bench workloads).
pub fn bar(len: u64) -> ProgressBar {
    if !shown() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// One bar per phase of a long operation (fsck): a determinate bar with the phase name
/// when the phase's total is known, a spinner when it is not (total 0). Switching phase
/// clears the previous one's bar.
pub struct Phases {
    what: String,
    current: std::sync::Mutex<Option<(&'static str, ProgressBar)>>,
}

impl Phases {
    /// Bars whose message is `what` and the phase ("checking /dev/x: metadata").
    pub fn new(what: impl Into<String>) -> Self {
        Phases {
            what: what.into(),
            current: std::sync::Mutex::new(None),
        }
    }

    /// Shows `done` of `total` `unit`s ("bytes" or items) in `phase`.
    pub fn update(&self, phase: &'static str, done: u64, total: u64, unit: &str) {
        if !shown() {
            return;
        }
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if cur.as_ref().is_none_or(|(p, _)| *p != phase) {
            if let Some((_, old)) = cur.take() {
                old.finish_and_clear();
            }
            *cur = Some((
                phase,
                phase_bar(&format!("{}: {phase}", self.what), total, unit),
            ));
        }
        if let Some((_, pb)) = cur.as_ref() {
            if total > 0 && pb.length() != Some(total) {
                pb.set_length(total);
            }
            pb.set_position(done);
        }
    }

    /// Clears the last phase's bar.
    pub fn finish(&self) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, pb)) = cur.take() {
            pb.finish_and_clear();
        }
    }
}

fn phase_bar(msg: &str, total: u64, unit: &str) -> ProgressBar {
    let bytes = unit == "bytes";
    let template = match (total > 0, bytes) {
        (true, true) => {
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} \
             (eta {eta})"
        }
        (true, false) => "{msg} [{bar:30}] {pos}/{len} (eta {eta})",
        (false, true) => "{spinner} {msg}: {binary_bytes} ({elapsed})",
        (false, false) => "{spinner} {msg}: {human_pos} items ({elapsed})",
    };
    let pb = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}
