//! Taste Profile triplets: `user<TAB>song<TAB>playcount`, one per line, streamed.
//!
//! Accepted: LF or CRLF endings, a UTF-8 byte-order mark at the start, a last line without a
//! newline, spaces around fields. Skipped silently: blank (empty or whitespace-only) lines and
//! `#` comment lines (`ainrnn synth` writes a `# synthetic ...` header). Rejected with line number
//! and reason: invalid UTF-8, a field count other than 3, an empty id, whitespace or control
//! characters inside an id, a play count that is not a positive integer below 10^9.

use std::io::BufRead;
use std::path::Path;

use super::diag::FileReport;
use super::interactions::{InteractionBuilder, Interactions};
use super::lines::{self, LineReader};
use super::progress::Progress;
use crate::error::IoError;

/// Header comment that marks a file written by `ainrnn synth`.
pub const SYNTHETIC_HEADER: &str = "# synthetic";

/// One parsed line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Blank,
    Comment(&'a str),
    Triplet {
        user: &'a str,
        song: &'a str,
        plays: u32,
    },
}

/// Parses one line (without its line ending). Never panics, whatever the bytes.
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, String> {
    if lines::is_blank(line) {
        return Ok(Line::Blank);
    }
    let text = std::str::from_utf8(line).map_err(|e| {
        format!(
            "not valid UTF-8 (bad byte at column {})",
            e.valid_up_to() + 1
        )
    })?;
    if text.starts_with('#') {
        return Ok(Line::Comment(text));
    }
    let mut f = [&b""[..]; 3];
    let n = lines::split_tabs(line, &mut f);
    if n != 3 {
        let found = if n > 3 {
            "4 or more".to_string()
        } else {
            n.to_string()
        };
        return Err(format!(
            "expected 3 tab-separated fields (user, song, play count), found {found}"
        ));
    }
    let user = check_id(lines::trim_spaces(f[0]), "user id")?;
    let song = check_id(lines::trim_spaces(f[1]), "song id")?;
    let plays = parse_count(lines::trim_spaces(f[2]), "play count")?;
    Ok(Line::Triplet { user, song, plays })
}

/// An id must be non-empty, without whitespace or control characters. The bytes are valid UTF-8
/// (checked on the whole line) and were split at ASCII bytes, so `from_utf8` cannot fail here.
pub(crate) fn check_id<'a>(s: &'a [u8], what: &str) -> Result<&'a str, String> {
    if s.is_empty() {
        return Err(format!("empty {what}"));
    }
    if s.iter()
        .any(|&b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!(
            "{what} {:?} contains whitespace or control characters",
            String::from_utf8_lossy(s)
        ));
    }
    std::str::from_utf8(s).map_err(|_| format!("{what} is not valid UTF-8"))
}

/// A positive decimal integer below 10^9 (play counts, HetRec weights).
pub(crate) fn parse_count(s: &[u8], what: &str) -> Result<u32, String> {
    let shown = || String::from_utf8_lossy(s).into_owned();
    if s.is_empty() {
        return Err(format!("empty {what}"));
    }
    if s[0] == b'-' && s.len() > 1 && s[1..].iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "{what} must be a positive integer, got {:?}",
            shown()
        ));
    }
    if !s.iter().all(u8::is_ascii_digit) {
        return Err(format!("{what} is not an integer: {:?}", shown()));
    }
    if s.len() > 9 {
        return Err(format!("{what} {} is too large (limit 999999999)", shown()));
    }
    let v = s
        .iter()
        .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'));
    if v == 0 {
        return Err(format!("{what} must be at least 1, got 0"));
    }
    Ok(v)
}

/// The result of reading one triplet file.
#[derive(Debug)]
pub struct TripletFile {
    pub interactions: Interactions,
    pub report: FileReport,
    /// The `# synthetic ...` header line, when the file was written by `ainrnn synth`.
    pub synthetic: Option<String>,
}

/// Reads a triplet file, streaming (memory grows with distinct ids and accepted records, not
/// with the file). A progress bar is drawn on a terminal for large files.
pub fn read_triplets(path: &Path, strict: bool) -> Result<TripletFile, IoError> {
    let (reader, len) = LineReader::open(path)?;
    let progress = Progress::bytes(len, "reading triplets");
    read_triplets_from(reader, path, strict, &progress)
}

/// Reads triplets from any buffered reader; `path` is used in messages.
pub fn read_triplets_from<R: BufRead>(
    mut reader: LineReader<R>,
    path: &Path,
    strict: bool,
    progress: &Progress,
) -> Result<TripletFile, IoError> {
    let mut report = FileReport::new(path, "triplets");
    let mut builder = InteractionBuilder::new();
    let mut synthetic = None;
    let mut next_progress = 0u64;
    loop {
        let (n, line) = match reader.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => return Err(IoError::io(path, e)),
        };
        report.lines += 1;
        match parse_line(line) {
            Ok(Line::Triplet { user, song, plays }) => {
                builder.push(user, song, plays as f32);
                report.accepted += 1;
            }
            Ok(Line::Blank) => report.blank += 1,
            Ok(Line::Comment(c)) => {
                if report.accepted == 0 && synthetic.is_none() && c.starts_with(SYNTHETIC_HEADER) {
                    synthetic = Some(c.trim_start_matches('#').trim().to_string());
                }
                report.skipped += 1;
            }
            Err(reason) => report.reject(n, reason, strict)?,
        }
        if reader.bytes_read() >= next_progress {
            progress.set(reader.bytes_read());
            next_progress = reader.bytes_read() + (4 << 20);
        }
    }
    progress.finish();
    report.bytes = reader.bytes_read();
    Ok(TripletFile {
        interactions: builder.finish(),
        report,
        synthetic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(
            parse_line(b"u\ts\t3"),
            Ok(Line::Triplet {
                user: "u",
                song: "s",
                plays: 3
            })
        );
        assert_eq!(parse_line(b"   "), Ok(Line::Blank));
        assert!(parse_line(b"u\ts").unwrap_err().contains("found 2"));
        assert!(parse_line(b"u\ts\t1\tx").unwrap_err().contains("4 or more"));
        assert!(parse_line(b"u\ts\tabc")
            .unwrap_err()
            .contains("not an integer"));
        assert!(parse_line(b"u\ts\t-3").unwrap_err().contains("positive"));
        assert!(parse_line(b"u\ts\t0").unwrap_err().contains("at least 1"));
        assert!(parse_line(b"u\ts\t1234567890")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_line(b"\ts\t1").unwrap_err().contains("empty user"));
        assert!(parse_line(b"u x\ts\t1").unwrap_err().contains("whitespace"));
        assert!(parse_line(b"u\xff\ts\t1").unwrap_err().contains("UTF-8"));
        assert_eq!(
            parse_line(b" u \t s \t 7 "),
            Ok(Line::Triplet {
                user: "u",
                song: "s",
                plays: 7
            })
        );
        assert!(matches!(parse_line(b"# synthetic x"), Ok(Line::Comment(_))));
    }
}
