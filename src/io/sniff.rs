//! What a file is, from its first bytes: for messages when a file of one kind is given where
//! another is read ("is an HDF5 file, not a checkpoint"), asked only after the reader failed.

use std::io::Read;
use std::path::Path;

/// HDF5's signature, at the start of every file ainrnn reads (the format allows it at 512,
/// 1024, … too, after a user block: those are named HDF5 by the library's own open).
const HDF5: &[u8] = b"\x89HDF\r\n\x1a\n";

/// A short description of what `path` holds (with an article: "an HDF5 file"), or `None` when
/// it cannot be read or is nothing recognised.
pub fn describe(path: &Path) -> Option<&'static str> {
    let mut head = [0u8; 16];
    let mut f = std::fs::File::open(path).ok()?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    kind_of(&head[..n])
}

/// [`describe`] on the first bytes of a file.
pub fn kind_of(head: &[u8]) -> Option<&'static str> {
    if head.is_empty() {
        return Some("an empty file");
    }
    if head.starts_with(HDF5) {
        return Some("an HDF5 file (a dataset, a feature store or an MSD file)");
    }
    // safetensors: a little-endian u64 header length, then the JSON header.
    if head.len() >= 10 && head[8] == b'{' && head[9] == b'"' {
        return Some("a safetensors file (an ainrnn checkpoint?)");
    }
    if let Some(c) = audio_container(head) {
        return Some(match c {
            "WAV" => "a RIFF (WAV) audio file",
            "Ogg" => "an Ogg audio file",
            "FLAC" => "a FLAC audio file",
            _ => "an MP3 audio file",
        });
    }
    for (magic, what) in [
        (&b"PK\x03\x04"[..], "a zip archive"),
        (b"\x1f\x8b", "a gzip-compressed file (decompress it first)"),
    ] {
        if head.starts_with(magic) {
            return Some(what);
        }
    }
    // Text: what the triplet, CSV and TSV inputs are (a cut UTF-8 character at the end is fine).
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if text && !head.contains(&0) {
        return Some("a text file");
    }
    None
}

/// The audio container the first bytes announce ("WAV", "Ogg", "FLAC", "MP3": an ID3 tag or an
/// MPEG frame sync), the one table of signatures the decoder and [`kind_of`] both read.
pub fn audio_container(head: &[u8]) -> Option<&'static str> {
    match head {
        [b'R', b'I', b'F', b'F', ..] => Some("WAV"),
        [b'O', b'g', b'g', b'S', ..] => Some("Ogg"),
        [b'f', b'L', b'a', b'C', ..] => Some("FLAC"),
        [b'I', b'D', b'3', ..] => Some("MP3"),
        [0xff, b, ..] if b & 0xe0 == 0xe0 => Some("MP3"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::kind_of;

    #[test]
    fn names_the_kinds_ainrnn_is_given() {
        assert!(kind_of(b"\x89HDF\r\n\x1a\n\0\0\0\0")
            .unwrap()
            .starts_with("an HDF5"));
        assert!(kind_of(b"\x28\x23\0\0\0\0\0\0{\"__meta")
            .unwrap()
            .starts_with("a safetensors"));
        assert_eq!(kind_of(b"u1\tSOAB\t3\nu2\t"), Some("a text file"));
        assert_eq!(kind_of("é".as_bytes()[..1].as_ref()), Some("a text file"));
        assert_eq!(kind_of(b"OggS\0\x02"), Some("an Ogg audio file"));
        assert_eq!(kind_of(b"ID3\x04\0"), Some("an MP3 audio file"));
        assert_eq!(kind_of(b""), Some("an empty file"));
        assert_eq!(kind_of(b"\x00\x01\x02\xff\xfe"), None);
    }
}
