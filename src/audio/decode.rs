//! Decoding WAV, Ogg Vorbis, MP3 and FLAC with symphonia, down-mixed to mono as the mean of the
//! channels (librosa's `to_mono`). Integer PCM is scaled as `x / 2^(bits-1)`, so 16-bit WAVs
//! read to exactly the values soundfile and librosa give.
//!
//! Every failure names the file and says why in words a user can act on: an empty file, a file
//! that is not audio, an unsupported codec, or a stream that ends early (truncated).

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Why a file could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The file could not be opened or read.
    Io(String),
    /// Zero bytes.
    Empty,
    /// No known container signature: not an audio file.
    NotAudio(String),
    /// A container symphonia reads, but a codec it does not decode (or no audio track).
    Unsupported(String),
    /// The stream ends before the length its headers announce, or holds no decodable audio.
    Truncated(String),
    /// Well-formed headers that announce no audio at all (a WAV whose data chunk is empty).
    NoAudio(String),
    /// A decode error inside the stream.
    Corrupt(String),
}

/// A decode failure, naming the file.
#[derive(Clone, Debug)]
pub struct DecodeError {
    pub path: PathBuf,
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    fn new(path: &Path, kind: DecodeErrorKind) -> Self {
        DecodeError {
            path: path.to_path_buf(),
            kind,
        }
    }

    /// The reason alone, for the skipped-files summary.
    pub fn reason(&self) -> String {
        match &self.kind {
            DecodeErrorKind::Io(e) => format!("cannot read file: {e}"),
            DecodeErrorKind::Empty => "empty file (0 bytes)".into(),
            DecodeErrorKind::NotAudio(e) => format!("not an audio file ({e})"),
            DecodeErrorKind::Unsupported(e) => format!("unsupported audio: {e}"),
            DecodeErrorKind::Truncated(e) => format!("truncated stream: {e}"),
            DecodeErrorKind::NoAudio(e) => format!("no audio: {e}"),
            DecodeErrorKind::Corrupt(e) => format!("corrupt stream: {e}"),
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason())
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeError> for crate::error::Error {
    fn from(e: DecodeError) -> Self {
        crate::error::Error::Io(crate::error::IoError::Format {
            path: e.path.clone(),
            reason: e.reason(),
        })
    }
}

/// The container a file's first bytes announce, if any.
fn sniff(path: &Path) -> Option<&'static str> {
    use std::io::Read;
    let mut head = [0u8; 4];
    let mut f = File::open(path).ok()?;
    f.read_exact(&mut head).ok()?;
    crate::io::sniff::audio_container(&head)
}

/// One logical stream of an Ogg file, as its last page so far describes it.
#[derive(Clone, Copy, Debug)]
struct OggStream {
    serial: u32,
    /// The page carries the end-of-stream flag.
    ended: bool,
    /// Byte offset of the page.
    last_page: usize,
}

/// Why the Ogg pages of `bytes` show a cut stream, if they do. Walks the page headers: the
/// capture pattern "OggS", the flags at byte 5 (0x04: end of stream), the serial number at
/// bytes 14..18, the segment count at 26 and then the lacing table whose sum is the page's body
/// size. A file that ends inside a page, or a logical stream whose last page lacks the
/// end-of-stream flag, was cut. Bytes that are not a page are skipped up to the next capture
/// pattern (damage or trailing tags are not this check's business). A last granule position
/// beyond the decoded frames needs no check here: symphonia takes the stream's length
/// (`n_frames`) from it, and `decode` compares that with the frames decoded.
fn ogg_cut(bytes: &[u8]) -> Option<String> {
    let len = bytes.len();
    let mut streams: Vec<OggStream> = Vec::new();
    let mut pos = 0usize;
    while pos < len {
        if !bytes[pos..].starts_with(b"OggS") {
            if len - pos < 4 && b"OggS".starts_with(&bytes[pos..]) {
                return Some(format!(
                    "the file ends inside an Ogg page header at byte {pos}"
                ));
            }
            match bytes[pos + 1..].windows(4).position(|w| w == b"OggS") {
                Some(skip) => {
                    pos += 1 + skip;
                    continue;
                }
                None => break,
            }
        }
        if len - pos < 27 {
            return Some(format!(
                "the file ends inside the Ogg page header at byte {pos} ({} of 27 bytes)",
                len - pos
            ));
        }
        let h = &bytes[pos..pos + 27];
        let nseg = h[26] as usize;
        let body_at = pos + 27 + nseg;
        if body_at > len {
            return Some(format!(
                "the file ends inside the lacing table of the Ogg page at byte {pos}"
            ));
        }
        let body: usize = bytes[pos + 27..body_at].iter().map(|&b| b as usize).sum();
        if body_at + body > len {
            return Some(format!(
                "the Ogg page at byte {pos} announces {body} bytes of data, the file holds {}",
                len - body_at
            ));
        }
        let serial = u32::from_le_bytes([h[14], h[15], h[16], h[17]]);
        let page = OggStream {
            serial,
            ended: h[5] & 0x04 != 0,
            last_page: pos,
        };
        match streams.iter_mut().find(|s| s.serial == serial) {
            Some(st) => *st = page,
            None => streams.push(page),
        }
        pos = body_at + body;
    }
    if let Some(st) = streams.iter().find(|s| !s.ended) {
        return Some(format!(
            "the Ogg stream {:08x} ends without its end-of-stream page (last page at byte {} of {len})",
            st.serial, st.last_page
        ));
    }
    None
}

/// Decoded audio: mono samples at the file's own rate.
#[derive(Clone, Debug)]
pub struct Decoded {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    /// The file's own sample rate (before resampling).
    pub sample_rate_in: u32,
    pub channels: usize,
    /// Codec name, for the track attributes.
    pub codec: String,
}

/// The sample rates a file may declare (the resampler's). Outside, the header is damaged or the
/// file is not music: resampling 1 Hz to 22,050 Hz, or from a billion, would take gigabytes.
pub use super::resample::SAMPLE_RATES;

fn check_rate(path: &Path, rate: u32) -> Result<(), DecodeError> {
    if SAMPLE_RATES.contains(&rate) {
        return Ok(());
    }
    Err(DecodeError::new(
        path,
        DecodeErrorKind::Unsupported(format!(
            "sample rate {rate} Hz in the header, outside {}..={} Hz",
            SAMPLE_RATES.start(),
            SAMPLE_RATES.end()
        )),
    ))
}

/// The sample rate of a WAV's `fmt ` chunk, read before symphonia sees the file: its WAV
/// reader panics on a rate of 0. `None` where the chunks do not parse (symphonia then says why).
fn wav_rate(path: &Path) -> Option<u32> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    let mut riff = [0u8; 12];
    f.read_exact(&mut riff).ok()?;
    if &riff[..4] != b"RIFF" || &riff[8..] != b"WAVE" {
        return None;
    }
    loop {
        let mut head = [0u8; 8];
        f.read_exact(&mut head).ok()?;
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if &head[..4] == b"fmt " {
            let mut fmt = [0u8; 8];
            f.read_exact(&mut fmt).ok()?;
            return Some(u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]));
        }
        // Chunks are padded to an even length.
        f.seek(SeekFrom::Current(i64::from(len) + i64::from(len & 1)))
            .ok()?;
    }
}

/// The sample rate an Ogg Vorbis file's identification header (the first page's body:
/// `\x01vorbis`, version, channels, then the rate) or a FLAC file's STREAMINFO block (20 bits at
/// byte 18) declares. Read before symphonia, which otherwise reports a rate of 0 as a file that
/// ends inside its headers. `None` where the bytes are not such a header.
fn ogg_or_flac_rate(path: &Path) -> Option<u32> {
    use std::io::Read;
    let mut head = Vec::with_capacity(512);
    File::open(path)
        .ok()?
        .take(512)
        .read_to_end(&mut head)
        .ok()?;
    if head.starts_with(b"OggS") {
        let body = 27 + usize::from(*head.get(26)?);
        let id = head.get(body..body + 16)?;
        if &id[..7] != b"\x01vorbis" {
            return None;
        }
        return Some(u32::from_le_bytes([id[12], id[13], id[14], id[15]]));
    }
    if head.starts_with(b"fLaC") && head.get(4)? & 0x7f == 0 {
        let b = head.get(18..21)?;
        return Some((u32::from(b[0]) << 12) | (u32::from(b[1]) << 4) | (u32::from(b[2]) >> 4));
    }
    None
}

/// The sample rate the file's own header declares, for the formats whose header says it plainly.
fn header_rate(path: &Path) -> Option<u32> {
    wav_rate(path).or_else(|| ogg_or_flac_rate(path))
}

/// Decodes `path` to mono, keeping at most `max_seconds` from the start.
pub fn decode(path: &Path, max_seconds: Option<f64>) -> Result<Decoded, DecodeError> {
    let err = |k| DecodeError::new(path, k);
    let meta = std::fs::metadata(path).map_err(|e| err(DecodeErrorKind::Io(e.to_string())))?;
    if meta.is_dir() {
        return Err(err(DecodeErrorKind::Io("is a directory".into())));
    }
    if meta.len() == 0 {
        return Err(err(DecodeErrorKind::Empty));
    }
    if let Some(rate) = header_rate(path) {
        check_rate(path, rate)?;
    }
    // Symphonia asserts on some damaged headers instead of returning an error: one such file
    // must fail alone, not end the batch it is in.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_checked(path, max_seconds)
    })) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(err(DecodeErrorKind::Corrupt(format!(
                "the decoder gave up on this file's headers ({what})"
            ))))
        }
    }
}

/// [`decode`] past the checks of the file itself.
fn decode_checked(path: &Path, max_seconds: Option<f64>) -> Result<Decoded, DecodeError> {
    let err = |k| DecodeError::new(path, k);
    let file = File::open(path).map_err(|e| err(DecodeErrorKind::Io(e.to_string())))?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            // The prober reads to the end looking for a signature: EOF means a truncated file
            // only when the file does start like audio.
            SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                match sniff(path) {
                    Some(kind) => err(DecodeErrorKind::Truncated(format!(
                        "{kind} file ends inside its headers"
                    ))),
                    None => err(DecodeErrorKind::NotAudio(format!(
                        "no WAV, Ogg, MP3 or FLAC signature found{}",
                        what_it_is(path).unwrap_or_default()
                    ))),
                }
            }
            SymError::Unsupported(what) => err(DecodeErrorKind::NotAudio(format!(
                "no WAV, Ogg, MP3 or FLAC signature found{}",
                what_it_is(path).unwrap_or_else(|| format!(": {what}"))
            ))),
            other => err(DecodeErrorKind::NotAudio(other.to_string())),
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| err(DecodeErrorKind::Unsupported("no audio track".into())))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let sample_rate = params.sample_rate.ok_or_else(|| {
        err(DecodeErrorKind::Unsupported(
            "no sample rate in header".into(),
        ))
    })?;
    check_rate(path, sample_rate)?;
    let expected_frames = params.n_frames;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| err(DecodeErrorKind::Unsupported(format!("codec: {e}"))))?;
    let codec = symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map(|d| d.short_name.to_string())
        .unwrap_or_else(|| "unknown".into());

    let max_frames = max_seconds.map(|s| (s * sample_rate as f64).floor() as usize);
    let mut mono: Vec<f32> = Vec::new();
    let mut buf: Option<SampleBuffer<f32>> = None;
    let mut channels = params.channels.map(|c| c.count()).unwrap_or(0);
    let mut bad_packets = 0usize;
    loop {
        if max_frames.is_some_and(|m| mono.len() >= m) {
            break;
        }
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                return Err(err(DecodeErrorKind::Corrupt(format!(
                    "reading packet after {} frames: {e}",
                    mono.len()
                ))))
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet: skip it, as players do; too many of them fail the file below.
            Err(SymError::DecodeError(_)) => {
                bad_packets += 1;
                continue;
            }
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => {
                return Err(err(DecodeErrorKind::Corrupt(format!(
                    "decoding after {} frames: {e}",
                    mono.len()
                ))))
            }
        };
        let spec = *decoded.spec();
        let nch = spec.channels.count().max(1);
        channels = nch;
        let frames = decoded.frames();
        if buf.as_ref().is_none_or(|b| b.capacity() < frames * nch) {
            buf = Some(SampleBuffer::new(decoded.capacity() as u64, spec));
        }
        let Some(b) = buf.as_mut() else { continue };
        b.copy_interleaved_ref(decoded);
        let s = b.samples();
        if nch == 1 {
            mono.extend_from_slice(&s[..frames]);
        } else {
            let inv = 1.0 / nch as f32;
            mono.extend(
                s[..frames * nch]
                    .chunks_exact(nch)
                    .map(|f| f.iter().sum::<f32>() * inv),
            );
        }
    }
    if let Some(m) = max_frames {
        mono.truncate(m);
    }
    let reached_limit = max_frames.is_some_and(|m| mono.len() >= m);
    if mono.is_empty() {
        return Err(err(if bad_packets > 0 {
            DecodeErrorKind::Corrupt(format!("{bad_packets} packets failed to decode"))
        } else if expected_frames == Some(0) {
            // Not a cut file: its header itself says there is nothing to decode.
            DecodeErrorKind::NoAudio("the header announces 0 frames (an empty data chunk)".into())
        } else {
            DecodeErrorKind::Truncated("headers parse but the file holds no decodable audio".into())
        }));
    }
    if !reached_limit && sniff(path) == Some("Ogg") {
        // Symphonia takes an Ogg's length from its last page, so a cut stream decodes as a
        // short one: the pages themselves say whether the stream was ended.
        let bytes = std::fs::read(path).map_err(|e| err(DecodeErrorKind::Io(e.to_string())))?;
        if let Some(why) = ogg_cut(&bytes) {
            return Err(err(DecodeErrorKind::Truncated(why)));
        }
    }
    if !reached_limit {
        if let Some(n) = expected_frames {
            // Decoders may drop a few priming/padding frames; a shortfall beyond one packet's
            // worth means the data stops early.
            let got = mono.len() as u64;
            if got + 4096 < n {
                return Err(err(DecodeErrorKind::Truncated(format!(
                    "decoded {got} of the {n} frames the header announces"
                ))));
            }
        }
    }
    if bad_packets * 20 > (mono.len() / 1024).max(1) {
        return Err(err(DecodeErrorKind::Corrupt(format!(
            "{bad_packets} packets failed to decode"
        ))));
    }
    // Float PCM can hold NaN or infinity; features of such a clip would be NaN throughout.
    if let Some(i) = mono.iter().position(|x| !x.is_finite()) {
        return Err(err(DecodeErrorKind::Corrupt(format!(
            "sample {i} (at {:.3} s) is {}, not a finite number",
            i as f64 / f64::from(sample_rate),
            mono[i]
        ))));
    }
    Ok(Decoded {
        samples: mono,
        sample_rate,
        sample_rate_in: sample_rate,
        channels,
        codec,
    })
}

/// "; it is a text file" and the like, when a file that is not audio is of a kind ainrnn knows
/// (a dataset or a triplet file given as audio).
fn what_it_is(path: &Path) -> Option<String> {
    crate::io::sniff::describe(path)
        .filter(|k| !k.contains("audio") && *k != "an empty file")
        .map(|k| format!("; it is {k}"))
}

/// Decodes, down-mixes and resamples to [`super::SAMPLE_RATE`], keeping the first `seconds`.
pub fn load(path: &Path, seconds: Option<f64>) -> Result<Decoded, DecodeError> {
    let d = decode(path, seconds)?;
    if d.sample_rate == super::SAMPLE_RATE {
        return Ok(d);
    }
    let mut samples = super::resample::resample(&d.samples, d.sample_rate, super::SAMPLE_RATE)
        .map_err(|e| DecodeError::new(path, DecodeErrorKind::Unsupported(e.to_string())))?;
    if let Some(s) = seconds {
        samples.truncate((s * super::SAMPLE_RATE as f64).floor() as usize);
    }
    Ok(Decoded {
        samples,
        sample_rate: super::SAMPLE_RATE,
        ..d
    })
}
