//! Progress bars for long inputs: drawn on stderr only when stderr is a terminal (never in
//! pipes, logs or tests), so `--json` output and CI logs stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A byte- or item-counting progress bar; a no-op when hidden.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// True when progress bars would be drawn (stderr is a terminal).
    pub fn enabled() -> bool {
        std::io::stderr().is_terminal()
    }

    pub fn hidden() -> Self {
        Progress { bar: None }
    }

    /// Bar over `total` bytes; hidden when not on a terminal or when the input is small.
    pub fn bytes(total: u64, label: &str) -> Self {
        if !Self::enabled() || total < (16 << 20) {
            return Self::hidden();
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        Progress { bar: Some(bar) }
    }

    /// Bar over `total` items (files, users); hidden when not on a terminal or when short.
    pub fn items(total: u64, label: &str) -> Self {
        if !Self::enabled() || total < 1000 {
            return Self::hidden();
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        Progress { bar: Some(bar) }
    }

    pub fn set(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
