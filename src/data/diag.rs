//! Bookkeeping for bad input: every reader counts what it read, skipped and rejected per file,
//! keeps the first few rejected lines (line number + reason) for the report, and in strict mode
//! turns the first rejected line into an error.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::IoError;

/// How many rejected lines per file are kept verbatim in the report (all are counted).
pub const MAX_EXAMPLES: usize = 20;

/// One rejected line (or record, or file inside a directory).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based line number in the file (0 when the whole file was rejected).
    pub line: usize,
    pub reason: String,
}

/// What one reader did with one input file.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    /// What the file was read as ("triplets", "hetrec user_artists", "profiles", ...).
    pub kind: &'static str,
    /// Lines (or records) seen, including blank and rejected ones.
    pub lines: usize,
    /// Records accepted.
    pub accepted: usize,
    /// Empty or whitespace-only lines (skipped silently).
    pub blank: usize,
    /// Comment (`#`) and header lines (skipped).
    pub skipped: usize,
    /// Rejected non-blank lines.
    pub malformed: usize,
    /// The first [`MAX_EXAMPLES`] rejected lines.
    pub examples: Vec<Malformed>,
    pub bytes: u64,
}

impl FileReport {
    pub fn new(path: &Path, kind: &'static str) -> Self {
        FileReport {
            path: path.to_path_buf(),
            kind,
            lines: 0,
            accepted: 0,
            blank: 0,
            skipped: 0,
            malformed: 0,
            examples: Vec::new(),
            bytes: 0,
        }
    }

    /// Records a rejected line; in strict mode returns the error that stops the run.
    pub fn reject(
        &mut self,
        line: usize,
        reason: impl Into<String>,
        strict: bool,
    ) -> Result<(), IoError> {
        let reason = reason.into();
        if strict {
            return Err(IoError::Line {
                path: self.path.clone(),
                line,
                reason: format!("{reason} (rejected because of --strict)"),
            });
        }
        self.malformed += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(Malformed { line, reason });
        }
        Ok(())
    }

    /// Human-readable lines for stderr: one per kept example, then a count of the rest.
    pub fn render_problems(&self) -> String {
        let mut s = String::new();
        for m in &self.examples {
            if m.line == 0 {
                s.push_str(&format!(
                    "  skipped {}: {}\n",
                    self.path.display(),
                    m.reason
                ));
            } else {
                s.push_str(&format!(
                    "  skipped {}:{}: {}\n",
                    self.path.display(),
                    m.line,
                    m.reason
                ));
            }
        }
        if self.malformed > self.examples.len() {
            s.push_str(&format!(
                "  ... and {} more rejected in {}\n",
                self.malformed - self.examples.len(),
                self.path.display()
            ));
        }
        s
    }
}
