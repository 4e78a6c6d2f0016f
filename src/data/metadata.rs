//! The MSD 10k-subset CSV (the per-track tables flattened, one song per row, a header naming the
//! columns) and the artist → term tables (`subset_artist_term.csv`, `subset_artist_mbtag.csv`:
//! `artist_id,term`, no header, quoted when the term has spaces). The CSV reader handles quoting
//! (`"Memphis, TN"`); columns are found by header name, so extra or reordered columns are fine.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::diag::FileReport;
use super::msd::MsdSong;
use crate::error::IoError;

/// A reader that turns each `\r\n` into `\n`. The csv crate ends a record at the `\r` and
/// counts the line at the `\n`, which it reads as the next record starts: every record of a
/// CRLF file was reported one line early (the first data row as the header's line).
struct CrlfToLf<R> {
    inner: R,
    /// A `\r` that ended the last chunk, not yet known to precede a `\n`.
    held: bool,
}

impl<R: BufRead> std::io::Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // A chunk of a lone `\r` (held) gives nothing yet: 0 would read as the end.
        loop {
            let n = self.read_some(out)?;
            if n > 0 || self.inner.fill_buf()?.is_empty() && !self.held {
                return Ok(n);
            }
        }
    }
}

impl<R: BufRead> CrlfToLf<R> {
    fn read_some(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let chunk = self.inner.fill_buf()?;
        if chunk.is_empty() {
            // The end: a held `\r` was a lone one.
            if std::mem::take(&mut self.held) {
                out[0] = b'\r';
                return Ok(1);
            }
            return Ok(0);
        }
        let mut n = 0;
        if self.held {
            self.held = false;
            if chunk[0] != b'\n' {
                out[0] = b'\r';
                n = 1;
            }
        }
        let mut used = 0;
        while used < chunk.len() && n < out.len() {
            let c = chunk[used];
            used += 1;
            if c == b'\r' {
                match chunk.get(used) {
                    Some(b'\n') => continue,
                    Some(_) => {}
                    None => {
                        self.held = true;
                        continue;
                    }
                }
            }
            out[n] = c;
            n += 1;
        }
        self.inner.consume(used);
        Ok(n)
    }
}

type CsvReader = csv::Reader<CrlfToLf<BufReader<File>>>;

fn open_csv(path: &Path, has_headers: bool) -> Result<CsvReader, IoError> {
    let f = File::open(path).map_err(|e| IoError::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    // The csv crate does not skip a UTF-8 byte-order mark; drop it here.
    let bom = r
        .fill_buf()
        .map_err(|e| IoError::io(path, e))?
        .starts_with(b"\xEF\xBB\xBF");
    if bom {
        r.consume(3);
    }
    Ok(csv::ReaderBuilder::new()
        .has_headers(has_headers)
        .flexible(false)
        .from_reader(CrlfToLf {
            inner: r,
            held: false,
        }))
}

/// Splits a csv error into (line, reason); I/O errors end the read.
fn csv_problem(path: &Path, e: csv::Error) -> Result<(usize, String), IoError> {
    let line = e.position().map_or(0, |p| p.line() as usize);
    match e.kind() {
        csv::ErrorKind::Io(_) => Err(IoError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => Ok((line, format!("expected {expected_len} fields, found {len}"))),
        csv::ErrorKind::Utf8 { .. } => Ok((line, "not valid UTF-8".to_string())),
        _ => Ok((line, e.to_string())),
    }
}

/// Line breaks in `b` (`\r\n` counts once).
fn breaks(b: &[u8]) -> usize {
    b.iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')))
        .count()
}

/// `rec` as text. A byte record spans several lines when a quoted field holds line breaks, and
/// the csv crate's UTF-8 error gives the record's first line: the line of the bad byte is that
/// line plus the breaks before it.
fn decode(rec: csv::ByteRecord) -> Result<csv::StringRecord, (usize, String)> {
    let start = rec.position().map_or(0, |p| p.line() as usize);
    let rec2 = rec.clone();
    csv::StringRecord::from_byte_record(rec).map_err(|e| {
        let (field, valid) = (e.utf8_error().field(), e.utf8_error().valid_up_to());
        let before: usize =
            rec2.iter().take(field).map(breaks).sum::<usize>() + breaks(&rec2[field][..valid]);
        (
            start + before,
            format!("not valid UTF-8 (field {})", field + 1),
        )
    })
}

const REQUIRED: [&str; 4] = ["song_id", "track_id", "title", "artist_name"];

/// Reads the subset CSV into songs (no terms, no segment arrays: the CSV's `idx_*` columns are
/// all 0 because the arrays were not flattened).
pub fn read_subset_csv(path: &Path, strict: bool) -> Result<(Vec<MsdSong>, FileReport), IoError> {
    let mut rdr = open_csv(path, true)?;
    let headers = rdr
        .headers()
        .map_err(|e| IoError::Format {
            path: path.to_path_buf(),
            reason: format!("cannot read the header line: {e}"),
        })?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    for r in REQUIRED {
        if col(r).is_none() {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field: r.to_string(),
                reason: format!(
                    "column missing from the header (found {} columns: {})",
                    headers.len(),
                    crate::text::clip(&headers.iter().take(8).collect::<Vec<_>>().join(","), 200)
                ),
            });
        }
    }
    let c = |name: &str| col(name);
    let (c_song, c_track, c_title, c_artist) =
        (c("song_id"), c("track_id"), c("title"), c("artist_name"));
    let (c_aid, c_loc, c_rel, c_year) = (
        c("artist_id"),
        c("artist_location"),
        c("release"),
        c("year"),
    );
    let (c_dur, c_tempo, c_loud, c_key, c_mode) = (
        c("duration"),
        c("tempo"),
        c("loudness"),
        c("key"),
        c("mode"),
    );
    let mut report = FileReport::new(path, "msd subset csv");
    report.skipped = 1; // the header
    report.lines = 1;
    let mut out = Vec::new();
    // Of a repeated song_id the first row is kept.
    let mut seen = std::collections::HashSet::new();
    let mut raw = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut raw) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.lines += 1;
                let (line, reason) = csv_problem(path, e)?;
                report.reject(line, reason, strict)?;
                continue;
            }
        }
        report.lines += 1;
        let line = raw.position().map_or(0, |p| p.line() as usize);
        let rec = match decode(raw.clone()) {
            Ok(r) => r,
            Err((line, reason)) => {
                report.reject(line, reason, strict)?;
                continue;
            }
        };
        let get = |c: Option<usize>| c.and_then(|i| rec.get(i)).unwrap_or("").trim();
        let num = |c: Option<usize>, what: &str| -> Result<f64, String> {
            let s = get(c);
            if s.is_empty() {
                return Ok(f64::NAN);
            }
            s.parse::<f64>()
                .map_err(|_| format!("{what} is not a number: {s:?}"))
        };
        let song_id = get(c_song);
        if song_id.is_empty() {
            report.reject(line, "empty song_id", strict)?;
            continue;
        }
        if seen.contains(song_id) {
            report.duplicate(line, "song_id", song_id);
            continue;
        }
        let parsed = (|| -> Result<(MsdSong, f64), String> {
            let year = num(c_year, "year")?;
            let key = num(c_key, "key")?;
            let mode = num(c_mode, "mode")?;
            let song = MsdSong {
                song_id: song_id.to_string(),
                track_id: get(c_track).to_string(),
                title: get(c_title).to_string(),
                artist_name: get(c_artist).to_string(),
                artist_id: get(c_aid).to_string(),
                artist_location: get(c_loc).to_string(),
                release: get(c_rel).to_string(),
                year: 0, // set by the screen below, from `year`
                duration: num(c_dur, "duration")?,
                tempo: num(c_tempo, "tempo")?,
                loudness: num(c_loud, "loudness")?,
                key: if key.is_finite() { key as i32 } else { -1 },
                mode: if mode.is_finite() { mode as i32 } else { -1 },
                terms: Vec::new(),
                mbtags: Vec::new(),
                segments: None,
            };
            Ok((song, year))
        })();
        match parsed {
            Ok((mut s, year)) => {
                seen.insert(s.song_id.clone());
                let f = super::msd::screen(&mut s, year);
                report.implausible(&f, &format!("line {line}, song {}", s.song_id));
                out.push(s);
                report.accepted += 1;
            }
            Err(reason) => report.reject(line, reason, strict)?,
        }
    }
    Ok((out, report))
}

/// Reads an `artist_id,term` table into artist → terms in file order (which, in the MSD, is by
/// decreasing term weight; the weight itself is not in the table).
pub fn read_artist_terms(
    path: &Path,
    kind: &'static str,
    strict: bool,
) -> Result<(HashMap<String, Vec<String>>, FileReport), IoError> {
    let mut rdr = open_csv(path, false)?;
    let mut report = FileReport::new(path, kind);
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    let mut raw = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut raw) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                report.lines += 1;
                let (line, reason) = csv_problem(path, e)?;
                report.reject(line, reason, strict)?;
                continue;
            }
        }
        report.lines += 1;
        let line = raw.position().map_or(0, |p| p.line() as usize);
        // Terms hold no line breaks: a record over several lines is a quote left open, which
        // swallowed the lines after it (and any bad byte there would be blamed on this line).
        let spanned: usize = raw.iter().map(breaks).sum();
        if spanned > 0 {
            // The file's last line break ends the record; it starts no line of it.
            let last = raw.iter().next_back().unwrap_or(b"");
            let spanned = spanned - usize::from(last.ends_with(b"\n") || last.ends_with(b"\r"));
            let bad = decode(raw.clone())
                .err()
                .map(|(l, _)| format!("; line {l} in it is also not valid UTF-8"))
                .unwrap_or_default();
            report.reject(
                line,
                format!(
                    "a quote opened on this line is not closed on it: lines {line} to {} were read as one record{bad}",
                    line + spanned
                ),
                strict,
            )?;
            continue;
        }
        let rec = match decode(raw.clone()) {
            Ok(r) => r,
            Err((line, reason)) => {
                report.reject(line, reason, strict)?;
                continue;
            }
        };
        if rec.len() != 2 {
            report.reject(
                line,
                format!("expected 2 fields (artist_id, term), found {}", rec.len()),
                strict,
            )?;
            continue;
        }
        let (artist, term) = (rec[0].trim(), rec[1].trim());
        if artist.is_empty() || term.is_empty() {
            report.reject(line, "empty artist_id or term", strict)?;
            continue;
        }
        map.entry(artist.to_string())
            .or_default()
            .push(term.to_string());
        report.accepted += 1;
    }
    Ok((map, report))
}

/// `name` in the same folder as `file`, when it exists (the subset's term tables sit next to
/// the subset CSV).
pub fn beside(file: &Path, name: &str) -> Option<PathBuf> {
    let p = file.with_file_name(name);
    p.is_file().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// `\r\n` becomes `\n` wherever the buffer's chunks split it; a lone `\r`, also at the end,
    /// stays.
    #[test]
    fn crlf_becomes_lf_across_chunk_edges() {
        let text = b"a,b\r\nc\r\n\rd\re\r\n\r";
        for cap in 1..=text.len() {
            for out in 1..=4 {
                let mut r = CrlfToLf {
                    inner: BufReader::with_capacity(cap, &text[..]),
                    held: false,
                };
                let (mut got, mut buf) = (Vec::new(), vec![0u8; out]);
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(got, b"a,b\nc\n\rd\re\n\r", "capacity {cap}, reads of {out}");
            }
        }
    }

    /// Each row's line as a text editor numbers it, in a CRLF file too (the first data row
    /// was reported as line 1, the header's).
    #[test]
    fn rows_are_numbered_by_their_line_with_crlf() {
        let dir = tempfile::tempdir().unwrap();
        for eol in ["\n", "\r\n"] {
            let p = dir.path().join("t.csv");
            std::fs::write(&p, ["x,y", "1,2", "3,\"4\r\n5\"", "6,7", ""].join(eol)).unwrap();
            let mut rdr = open_csv(&p, true).unwrap();
            let mut raw = csv::ByteRecord::new();
            let mut lines = Vec::new();
            while rdr.read_byte_record(&mut raw).unwrap() {
                lines.push(raw.position().unwrap().line());
            }
            assert_eq!(lines, [2, 3, 5], "line ends {eol:?}");
        }
    }
}
