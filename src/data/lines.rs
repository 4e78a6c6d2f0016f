//! Line-by-line reading of text inputs with bounded memory: one reused buffer, a UTF-8 byte-order
//! mark stripped from the first line, `\n` and `\r\n` endings both accepted, the last line read
//! whether or not it ends in a newline, 1-based line numbers and a byte count for progress.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::IoError;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Buffer size for file reads: large enough that syscalls do not dominate.
pub const READ_BUFFER: usize = 1 << 20;

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    line: usize,
    bytes: u64,
}

impl LineReader<BufReader<File>> {
    /// Opens `path` for reading; the error names the file.
    pub fn open(path: &Path) -> Result<(Self, u64), IoError> {
        let f = File::open(path).map_err(|e| IoError::io(path, e))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        Ok((
            LineReader::new(BufReader::with_capacity(READ_BUFFER, f)),
            len,
        ))
    }
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(256),
            line: 0,
            bytes: 0,
        }
    }

    /// The next line without its ending, with its 1-based line number, or `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<(usize, &[u8])>> {
        self.buf.clear();
        let n = self.inner.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes += n as u64;
        self.line += 1;
        let mut s: &[u8] = &self.buf;
        if self.line == 1 && s.starts_with(BOM) {
            s = &s[BOM.len()..];
        }
        if let Some(r) = s.strip_suffix(b"\n") {
            s = r;
        }
        if let Some(r) = s.strip_suffix(b"\r") {
            s = r;
        }
        Ok(Some((self.line, s)))
    }

    /// 1-based number of the line last returned.
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// True for an empty or whitespace-only line.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// Opens any reader as a buffered line reader (used by tests and in-memory inputs).
pub fn from_reader<R: Read>(r: R) -> LineReader<BufReader<R>> {
    LineReader::new(BufReader::with_capacity(READ_BUFFER, r))
}

/// Splits on TAB into at most `N + 1` fields; returns the number of fields found (which may be
/// more than `N`, capped at `N + 1`) so callers can report "expected 3, found 4".
pub fn split_tabs<'a, const N: usize>(line: &'a [u8], out: &mut [&'a [u8]; N]) -> usize {
    let mut count = 0;
    let mut rest = line;
    loop {
        match memchr_tab(rest) {
            Some(i) => {
                if count < N {
                    out[count] = &rest[..i];
                }
                count += 1;
                rest = &rest[i + 1..];
                if count > N {
                    return count;
                }
            }
            None => {
                if count < N {
                    out[count] = rest;
                }
                return count + 1;
            }
        }
    }
}

#[inline]
fn memchr_tab(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\t')
}

/// Trims ASCII spaces (not tabs, which are separators) around a field.
pub fn trim_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_crlf_and_missing_final_newline() {
        let data = b"\xEF\xBB\xBFa\tb\r\n\r\nlast";
        let mut r = from_reader(&data[..]);
        assert_eq!(r.next_line().unwrap(), Some((1, &b"a\tb"[..])));
        assert_eq!(r.next_line().unwrap(), Some((2, &b""[..])));
        assert_eq!(r.next_line().unwrap(), Some((3, &b"last"[..])));
        assert_eq!(r.line_number(), 3);
        assert_eq!(r.next_line().unwrap(), None);
        assert_eq!(r.bytes_read(), data.len() as u64);
    }

    #[test]
    fn split_counts_extra_fields() {
        let mut f = [&b""[..]; 3];
        assert_eq!(split_tabs(b"a\tb\tc", &mut f), 3);
        assert_eq!(f, [&b"a"[..], b"b", b"c"]);
        assert_eq!(split_tabs(b"a\tb", &mut f), 2);
        assert_eq!(split_tabs(b"a\tb\tc\td\te", &mut f), 4);
        assert_eq!(split_tabs(b"", &mut f), 1);
        assert_eq!(trim_spaces(b"  x y "), b"x y");
    }
}
