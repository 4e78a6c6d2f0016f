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
    /// Values outside their field's plausible range, taken as unknown, per field
    /// ([`crate::data::plausible`]).
    pub implausible: Vec<Implausible>,
    /// Records whose id an earlier record of the file already had: ignored, the first kept.
    pub duplicates: Option<Duplicates>,
}

/// Repeated ids in one file, and where the first repeat was.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Duplicates {
    /// What the id is ("song_id", "user", "artist id").
    pub what: &'static str,
    pub count: usize,
    /// The first repeat: its line and id.
    pub line: usize,
    pub id: String,
}

/// `x` as written, in scientific notation when long (1e160, not 161 digits).
fn show(x: f64) -> String {
    if x != 0.0 && !(1e-6..1e12).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// The values of one field that were taken as unknown because they are not plausible.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Implausible {
    pub field: &'static str,
    /// The plausible range, e.g. `(0, 500] BPM`.
    pub range: String,
    pub count: usize,
    /// Where the first was (a line, or a file and song) and its value.
    pub first: String,
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
            implausible: Vec::new(),
            duplicates: None,
        }
    }

    /// Counts a record whose id (`what`) an earlier record had; the caller keeps the first.
    pub fn duplicate(&mut self, line: usize, what: &'static str, id: &str) {
        match &mut self.duplicates {
            Some(d) => d.count += 1,
            None => {
                self.duplicates = Some(Duplicates {
                    what,
                    count: 1,
                    line,
                    id: id.to_string(),
                })
            }
        }
    }

    /// Counts values taken as unknown (`crate::data::msd::screen`); `at` says where
    /// they were (e.g. `line 5, song SO…` or the file and song), kept for the first per field.
    pub fn implausible(&mut self, findings: &[crate::data::plausible::Finding], at: &str) {
        for f in findings {
            match self
                .implausible
                .iter_mut()
                .find(|i| i.field == f.bounds.field)
            {
                Some(i) => i.count += 1,
                None => self.implausible.push(Implausible {
                    field: f.bounds.field,
                    range: f.bounds.describe(),
                    count: 1,
                    first: format!("{at}: {}", show(f.value)),
                }),
            }
        }
    }

    /// One note per field with implausible values, and one for repeated ids, naming the file.
    pub fn notes(&self) -> Vec<String> {
        let dup = self.duplicates.as_ref().map(|d| {
            format!(
                "{}: {} record{} with a repeated {} ignored, the first one kept (first: {}:{}, {} {})",
                self.path.display(),
                d.count,
                if d.count == 1 { "" } else { "s" },
                d.what,
                self.path.display(),
                d.line,
                d.what,
                d.id
            )
        });
        self.implausible
            .iter()
            .map(|i| {
                format!(
                    "{}: {} {} value{} outside {} taken as unknown (first: {})",
                    self.path.display(),
                    i.count,
                    i.field,
                    if i.count == 1 { "" } else { "s" },
                    i.range,
                    i.first
                )
            })
            .chain(dup)
            .collect()
    }

    /// Records a rejected line; in strict mode returns the error that stops the run.
    pub fn reject(
        &mut self,
        line: usize,
        reason: impl Into<String>,
        strict: bool,
    ) -> Result<(), IoError> {
        // A reason quoting a field of a binary or one-line file could be megabytes long.
        let reason = crate::text::clip(&reason.into(), 300);
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

    /// An error when the file had records and every one was rejected: a side input named on the
    /// command line that gives nothing is the wrong file, not a few bad lines to skip.
    pub fn nothing_accepted(&self) -> Option<crate::error::DataError> {
        (self.accepted == 0 && self.malformed > 0).then(|| {
            let first = self
                .examples
                .first()
                .map(|m| format!("; line {}: {}", m.line, m.reason))
                .unwrap_or_default();
            crate::error::DataError::Empty(format!(
                "{}: nothing in it could be read as {} ({} lines read, all {} non-blank ones rejected{first})",
                self.path.display(),
                self.kind,
                self.lines,
                self.malformed
            ))
        })
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
