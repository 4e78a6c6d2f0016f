//! HetRec 2011 Last.fm-2K: `user_artists.dat` (`userID<TAB>artistID<TAB>weight`, header line,
//! CRLF) and `artists.dat` (`id<TAB>name[<TAB>url<TAB>pictureURL]`, header line) for names.
//! Items are artists; the weight (listening count of the artist) plays the role of play count.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::diag::FileReport;
use super::interactions::{InteractionBuilder, Interactions};
use super::lines::{self, LineReader};
use super::progress::Progress;
use super::triplets::{check_id, parse_count};
use crate::error::IoError;

#[derive(Debug)]
pub struct HetrecFile {
    pub interactions: Interactions,
    pub report: FileReport,
}

fn is_integer(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Line 1 read as a header: `Ok(true)` when it is one with the expected columns, `Ok(false)`
/// when it is data (its first field is a number), and an error naming what it found otherwise.
/// The names are compared case-insensitively; a header with the columns in another order would
/// silently swap them (artists read as users), so it is refused, not skipped. `min` columns of
/// `expected` must be there, the rest may be missing (the bundled `artists.dat` has only
/// `id<TAB>name`).
fn check_header(path: &Path, line: &[u8], expected: &[&str], min: usize) -> Result<bool, IoError> {
    let text = String::from_utf8_lossy(line);
    let fields: Vec<&str> = text.split('\t').map(str::trim).collect();
    if is_integer(fields[0]) {
        return Ok(false);
    }
    let n = fields.len();
    let ok = (min..=expected.len()).contains(&n)
        && fields
            .iter()
            .zip(expected)
            .all(|(f, e)| f.eq_ignore_ascii_case(e));
    if ok {
        return Ok(true);
    }
    let want = if min == expected.len() {
        expected.join("<TAB>")
    } else {
        format!(
            "{} (optionally followed by {})",
            expected[..min].join("<TAB>"),
            expected[min..].join("<TAB>")
        )
    };
    Err(IoError::Line {
        path: path.to_path_buf(),
        line: 1,
        reason: format!(
            "the header is {:?}; expected {want} (case-insensitive, tab-separated)",
            crate::text::clip(text.trim_end(), 60)
        ),
    })
}

/// Reads `user_artists.dat`. The header line is skipped when present; a header other than
/// `userID<TAB>artistID<TAB>weight` is an error.
pub fn read_user_artists(path: &Path, strict: bool) -> Result<HetrecFile, IoError> {
    let (mut reader, len) = LineReader::open(path)?;
    let progress = Progress::bytes(len, "reading HetRec user_artists");
    let mut report = FileReport::new(path, "hetrec user_artists");
    let mut builder = InteractionBuilder::new();
    while let Some((n, line)) = reader.next_line().map_err(|e| IoError::io(path, e))? {
        report.lines += 1;
        if lines::is_blank(line) {
            report.blank += 1;
            continue;
        }
        if n == 1 && check_header(path, line, &["userID", "artistID", "weight"], 3)? {
            report.skipped += 1;
            continue;
        }
        match parse_user_artist(line) {
            Ok((u, a, w)) => {
                builder.push(u, a, w as f32);
                report.accepted += 1;
            }
            Err(reason) => report.reject(n, reason, strict)?,
        }
    }
    progress.finish();
    report.bytes = reader.bytes_read();
    Ok(HetrecFile {
        interactions: builder.finish(),
        report,
    })
}

fn parse_user_artist(line: &[u8]) -> Result<(&str, &str, u32), String> {
    std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_string())?;
    let mut f = [&b""[..]; 3];
    let n = lines::split_tabs(line, &mut f);
    if n != 3 {
        return Err(format!(
            "expected 3 tab-separated fields (userID, artistID, weight), found {}",
            if n > 3 {
                "4 or more".into()
            } else {
                n.to_string()
            }
        ));
    }
    let u = check_id(lines::trim_spaces(f[0]), "userID")?;
    let a = check_id(lines::trim_spaces(f[1]), "artistID")?;
    if !is_integer(u) {
        return Err(format!("userID {u:?} is not an integer"));
    }
    if !is_integer(a) {
        return Err(format!("artistID {a:?} is not an integer"));
    }
    let w = parse_count(lines::trim_spaces(f[2]), "weight")?;
    Ok((u, a, w))
}

/// `artists.dat` next to `user_artists.dat`, when it exists.
pub fn artists_beside(user_artists: &Path) -> Option<PathBuf> {
    let p = user_artists.with_file_name("artists.dat");
    p.is_file().then_some(p)
}

/// Reads `artists.dat` into id → name; of a repeated id the first name is kept (and the
/// repeat counted, [`FileReport::duplicate`]). A header line (`id<TAB>name[<TAB>url<TAB>pictureURL]`)
/// is skipped; another header is an error.
pub fn read_artists(
    path: &Path,
    strict: bool,
) -> Result<(HashMap<String, String>, FileReport), IoError> {
    let (mut reader, _) = LineReader::open(path)?;
    let mut report = FileReport::new(path, "hetrec artists");
    let mut names = HashMap::new();
    while let Some((n, line)) = reader.next_line().map_err(|e| IoError::io(path, e))? {
        report.lines += 1;
        if lines::is_blank(line) {
            report.blank += 1;
            continue;
        }
        if n == 1 && check_header(path, line, &["id", "name", "url", "pictureURL"], 2)? {
            report.skipped += 1;
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            report.reject(n, "not valid UTF-8", strict)?;
            continue;
        };
        let mut it = text.split('\t');
        let id = it.next().unwrap_or("").trim();
        let name = it.next();
        match name {
            Some(_) if is_integer(id) && names.contains_key(id) => {
                report.duplicate(n, "artist id", id);
            }
            Some(name) if is_integer(id) => {
                names.insert(id.to_string(), name.trim().to_string());
                report.accepted += 1;
            }
            Some(_) => report.reject(n, format!("artist id {id:?} is not an integer"), strict)?,
            None => report.reject(
                n,
                "expected at least 2 tab-separated fields (id, name), found 1",
                strict,
            )?,
        }
    }
    report.bytes = reader.bytes_read();
    Ok((names, report))
}
