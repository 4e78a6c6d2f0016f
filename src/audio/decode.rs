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
    match &head {
        b"RIFF" => Some("WAV"),
        b"OggS" => Some("Ogg"),
        b"fLaC" => Some("FLAC"),
        [b'I', b'D', b'3', _] => Some("MP3"),
        [0xff, b, _, _] if b & 0xe0 == 0xe0 => Some("MP3"),
        _ => None,
    }
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
                    None => err(DecodeErrorKind::NotAudio(
                        "no WAV, Ogg, MP3 or FLAC signature found".into(),
                    )),
                }
            }
            SymError::Unsupported(what) => err(DecodeErrorKind::NotAudio(format!(
                "no WAV, Ogg, MP3 or FLAC signature found: {what}"
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
    if sample_rate == 0 {
        return Err(err(DecodeErrorKind::Unsupported(
            "sample rate 0 in header".into(),
        )));
    }
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
        } else {
            DecodeErrorKind::Truncated("headers parse but the file holds no decodable audio".into())
        }));
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
    Ok(Decoded {
        samples: mono,
        sample_rate,
        sample_rate_in: sample_rate,
        channels,
        codec,
    })
}

/// Decodes, down-mixes and resamples to [`super::SAMPLE_RATE`], keeping the first `seconds`.
pub fn load(path: &Path, seconds: Option<f64>) -> Result<Decoded, DecodeError> {
    let d = decode(path, seconds)?;
    if d.sample_rate == super::SAMPLE_RATE {
        return Ok(d);
    }
    let mut samples = super::resample::resample(&d.samples, d.sample_rate, super::SAMPLE_RATE)
        .map_err(|e| DecodeError::new(path, DecodeErrorKind::Unsupported(e)))?;
    if let Some(s) = seconds {
        samples.truncate((s * super::SAMPLE_RATE as f64).floor() as usize);
    }
    Ok(Decoded {
        samples,
        sample_rate: super::SAMPLE_RATE,
        ..d
    })
}
