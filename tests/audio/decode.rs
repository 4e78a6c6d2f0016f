//! Decoding the bundled real and broken files, and resampling.

use ainrnn::audio::decode::{decode, load, DecodeErrorKind};
use ainrnn::audio::resample::{resample, ResampleError};

use crate::golden::{golden, read, root};

#[test]
fn broken_files_give_clear_reasons() {
    let bad = root().join("data/bad");
    let cases = [
        ("empty.wav", "empty file"),
        ("not_audio.mp3", "not an audio file"),
        ("not_audio.mp3", "; it is a text file"),
        ("truncated_5k.ogg", "truncated stream"),
        ("truncated_10k.h5", "not an audio file"),
        ("truncated_10k.h5", "; it is an HDF5 file"),
    ];
    for (f, want) in cases {
        let e = decode(&bad.join(f), None).expect_err(f);
        let msg = e.to_string();
        assert!(msg.contains(f), "{f}: the message names the file: {msg}");
        assert!(msg.contains(want), "{f}: expected {want:?} in {msg:?}");
    }
    let e = decode(&bad.join("no_such_file.wav"), None).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Io(_)), "{e}");
}

/// A WAV cut short of the length its header announces is reported as truncated.
#[test]
fn truncated_wav_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(root().join("data/audio/gtzan_country.00000.wav")).unwrap();
    let p = dir.path().join("cut.wav");
    std::fs::write(&p, &src[..src.len() / 2]).unwrap();
    let e = decode(&p, None).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    // Asking only for the first second of it is fine: the data is there.
    assert_eq!(decode(&p, Some(1.0)).unwrap().samples.len(), 22050);
}

/// A well-formed WAV whose data chunk is empty is "no audio", not a cut stream.
#[test]
fn wav_with_an_empty_data_chunk_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(root().join("data/audio/gtzan_country.00000.wav")).unwrap();
    assert_eq!(&src[36..40], b"data", "a canonical 44-byte header");
    let mut head = src[..44].to_vec();
    head[4..8].copy_from_slice(&36u32.to_le_bytes());
    head[40..44].copy_from_slice(&0u32.to_le_bytes());
    let p = dir.path().join("silent.wav");
    std::fs::write(&p, &head).unwrap();
    let e = decode(&p, None).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::NoAudio(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("silent.wav") && msg.contains("0 frames"),
        "{msg}"
    );
}

/// Symphonia's Vorbis decoder against libvorbis (soundfile) on the real 48 kHz stereo file,
/// down-mixed as the mean of the channels.
#[test]
fn ogg_vorbis_matches_libvorbis() {
    let g = golden();
    let want = read(&g, "ogg_decode/mono");
    let d = decode(
        &root().join("data/audio/singularity_awakening.ogg"),
        Some(0.5),
    )
    .unwrap();
    assert_eq!((d.sample_rate, d.channels), (48000, 2));
    assert_eq!(d.samples.len(), want.len());
    let num: f64 = d
        .samples
        .iter()
        .zip(&want)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let den: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    let e = (num / den).sqrt();
    assert!(e < 1e-4, "relative L2 error against libvorbis {e}");
}

/// The Ogg is resampled to 22,050 Hz with the right length.
#[test]
fn load_resamples_to_22050() {
    let d = load(
        &root().join("data/audio/singularity_awakening.ogg"),
        Some(1.0),
    )
    .unwrap();
    assert_eq!(d.sample_rate, 22050);
    assert_eq!(d.sample_rate_in, 48000);
    assert_eq!(d.samples.len(), 22050);
}

/// A 1 kHz sine at 48 kHz stays a 1 kHz sine of the same amplitude at 22,050 Hz, aligned in
/// time; a 15 kHz tone (above the new Nyquist) is removed.
#[test]
fn resampler_keeps_the_passband_and_removes_aliases() {
    let (from, to) = (48000u32, 22050u32);
    let n = 48000;
    let tone = |f: f64, sr: f64, i: usize| (2.0 * std::f64::consts::PI * f * i as f64 / sr).sin();
    let x: Vec<f32> = (0..n)
        .map(|i| (0.5 * tone(1000.0, from as f64, i)) as f32)
        .collect();
    let y = resample(&x, from, to).unwrap();
    assert_eq!(y.len(), 22050);
    // Away from the edges, the output is the same sine sampled at 22,050 Hz.
    let mut err = 0f64;
    for (i, &v) in y.iter().enumerate().take(20000).skip(2000) {
        err = err.max((v as f64 - 0.5 * tone(1000.0, to as f64, i)).abs());
    }
    assert!(err < 2e-3, "max error {err}");
    let hi: Vec<f32> = (0..n)
        .map(|i| (0.5 * tone(15000.0, from as f64, i)) as f32)
        .collect();
    let yh = resample(&hi, from, to).unwrap();
    let rms = (yh[2000..20000]
        .iter()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        / 18000.0)
        .sqrt();
    assert!(rms < 1e-3, "alias rms {rms}");
    assert_eq!(resample(&x, 22050, 22050).unwrap(), x);
    // A library caller's absurd rates are refused as the decoder refuses them from a header
    // (1 Hz to 4 GHz aborted the process: the resampler asked for terabytes), and so is a
    // NaN sample (the FFT resampler panicked on it).
    for (from, to) in [(999, 22_050), (22_050, 768_001), (44_100, 0), (1, u32::MAX)] {
        let e = resample(&x[..10], from, to).unwrap_err().to_string();
        assert!(e.contains(&format!("from {from} Hz to {to} Hz")), "{e}");
    }
    let mut bad = x.clone();
    bad[7] = f32::NAN;
    let e = resample(&bad, 44_100, 22_050).unwrap_err();
    assert!(e.to_string().contains("sample 7 is NaN"), "{e}");
    assert!(
        matches!(e, ResampleError::NotFinite { index: 7, .. }),
        "{e:?}"
    );
}

/// An Ogg cut anywhere after its headers (inside a page or on a page boundary) ends without its
/// end-of-stream page and is reported as truncated, while the whole file decodes as before.
#[test]
fn truncated_ogg_is_detected() {
    let path = root().join("data/audio/singularity_awakening.ogg");
    let src = std::fs::read(&path).unwrap();
    let whole = decode(&path, None).unwrap();
    // 9,984,000 frames by the last page's granule (208 s of 48 kHz stereo); symphonia 0.5 keeps
    // the 576 frames of the last packet past it, as it always has.
    assert_eq!(whole.samples.len(), 9_984_576);
    let (sum, energy) = whole.samples.iter().fold((0f64, 0f64), |(s, e), &v| {
        (s + v as f64, e + (v as f64).powi(2))
    });
    // The same samples as before the container check (measured on it): sum and energy.
    assert!((sum / -8.573559759e4 - 1.0).abs() < 1e-6, "sum {sum}");
    assert!(
        (energy / 1.780298120e5 - 1.0).abs() < 1e-6,
        "energy {energy}"
    );
    assert_eq!((whole.sample_rate, whole.channels), (48000, 2));
    // The first pages of the whole file still match libvorbis (as `ogg_vorbis_matches_libvorbis`).
    let head = decode(&path, Some(0.5)).unwrap();
    assert_eq!(whole.samples[..head.samples.len()], head.samples[..]);

    // Byte offsets of every page, to cut exactly on a page boundary too.
    let pages: Vec<usize> = (0..src.len() - 4)
        .filter(|&i| &src[i..i + 4] == b"OggS")
        .collect();
    let boundary = pages[pages.len() / 2];
    let dir = tempfile::tempdir().unwrap();
    let mut cuts: Vec<(String, usize)> = [30, 60, 95]
        .iter()
        .map(|pc| (format!("{pc}%"), src.len() * pc / 100))
        .collect();
    cuts.push(("page boundary".into(), boundary));
    cuts.push(("last page's header".into(), pages[pages.len() - 1] + 10));
    cuts.push(("last byte".into(), src.len() - 1));
    for (what, at) in cuts {
        let p = dir.path().join("cut.ogg");
        std::fs::write(&p, &src[..at]).unwrap();
        let e = match decode(&p, None) {
            Ok(d) => panic!(
                "cut at {what} ({at} bytes): decoded {} samples",
                d.samples.len()
            ),
            Err(e) => e,
        };
        assert!(
            matches!(e.kind, DecodeErrorKind::Truncated(_)),
            "cut at {what}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("cut.ogg") && msg.contains("truncated stream"),
            "{msg}"
        );
        // The first second is there, as with a cut WAV.
        assert_eq!(
            decode(&p, Some(1.0)).unwrap().samples.len(),
            48000,
            "{what}"
        );
    }
}

/// The Ogg page checksum: CRC-32, polynomial 0x04c11db7, not reflected, initial value 0, taken
/// over the page with its checksum field (bytes 22..26) zeroed.
fn ogg_crc(page: &[u8]) -> u32 {
    let mut crc = 0u32;
    for (i, &b) in page.iter().enumerate() {
        let b = if (22..26).contains(&i) { 0 } else { b };
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Ended Ogg streams: one cut on a page boundary whose last page is then flagged end-of-stream
/// is a valid short stream and decodes; one whose last granule announces more frames than its
/// pages hold is reported truncated.
#[test]
fn ogg_end_of_stream_and_last_granule() {
    let src = std::fs::read(root().join("data/audio/singularity_awakening.ogg")).unwrap();
    let pages: Vec<usize> = (0..src.len() - 4)
        .filter(|&i| &src[i..i + 4] == b"OggS")
        .collect();
    // Rewrites the page at `at` (ending at `end`) with `f` applied and its checksum renewed.
    let patch = |bytes: &mut Vec<u8>, at: usize, end: usize, f: &dyn Fn(&mut [u8])| {
        f(&mut bytes[at..end]);
        let crc = ogg_crc(&bytes[at..end]);
        bytes[at + 22..at + 26].copy_from_slice(&crc.to_le_bytes());
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.ogg");

    // Half the pages, the last one flagged end-of-stream: a whole, shorter stream.
    let (last, end) = (pages[pages.len() / 2 - 1], pages[pages.len() / 2]);
    let mut short = src[..end].to_vec();
    patch(&mut short, last, end, &|pg| pg[5] |= 0x04);
    std::fs::write(&p, &short).unwrap();
    let granule = u64::from_le_bytes(short[last + 6..last + 14].try_into().unwrap());
    let d = decode(&p, None).unwrap();
    assert!(
        d.samples.len() as u64 >= granule,
        "{} < {granule}",
        d.samples.len()
    );

    // The whole file with its last granule 10 s further on.
    let mut long = src.clone();
    let last = pages[pages.len() - 1];
    patch(&mut long, last, src.len(), &|pg| {
        let g = u64::from_le_bytes(pg[6..14].try_into().unwrap()) + 480_000;
        pg[6..14].copy_from_slice(&g.to_le_bytes());
    });
    std::fs::write(&p, &long).unwrap();
    let e = match decode(&p, None) {
        Ok(d) => panic!(
            "a last granule 10 s on: decoded {} samples",
            d.samples.len()
        ),
        Err(e) => e,
    };
    assert!(matches!(e.kind, DecodeErrorKind::Truncated(_)), "{e}");
    assert!(e.to_string().contains("10464000"), "{e}");
}

/// A mono WAV: 16-bit PCM, or 32-bit float when `floats` is given.
pub fn wav(path: &std::path::Path, rate: u32, floats: Option<&[f32]>) {
    let (format, bits, data): (u16, u16, Vec<u8>) = match floats {
        Some(v) => (3, 32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        None => (
            1,
            16,
            (0..44_100)
                .flat_map(|i| ((8000.0 * (i as f32 / 5.0).sin()) as i16).to_le_bytes())
                .collect(),
        ),
    };
    let align = bits / 8;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&format.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&rate.wrapping_mul(u32::from(align)).to_le_bytes());
    b.extend_from_slice(&align.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    std::fs::write(path, b).unwrap();
}

/// Sample rates outside 1 kHz..768 kHz are refused from the header: a rate of 0 made
/// symphonia's WAV reader panic (and end the whole `features` batch), a huge one made the
/// resampler ask for gigabytes, 1 Hz upsampled 20,000 samples to 441 million.
#[test]
fn absurd_sample_rates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [0u32, 1, 999, 768_001, 889_236_548] {
        let p = dir.path().join(format!("r{rate}.wav"));
        wav(&p, rate, None);
        let e = load(&p, Some(1.0)).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Unsupported(_)), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("sample rate {rate} Hz"))
                && msg.contains(&format!("r{rate}.wav")),
            "{msg}"
        );
    }
    for rate in [1_000u32, 8_000, 768_000] {
        let p = dir.path().join(format!("ok{rate}.wav"));
        wav(&p, rate, None);
        let d = decode(&p, None).unwrap();
        assert_eq!((d.sample_rate, d.samples.len()), (rate, 44_100));
    }
}

/// An Ogg Vorbis file whose identification header declares an absurd rate is refused with that
/// reason (symphonia said "ends inside its headers" for a rate of 0), checksum renewed so only
/// the rate is wrong; so is a FLAC whose STREAMINFO declares 0 Hz.
#[test]
fn absurd_sample_rates_in_ogg_and_flac_headers_are_refused() {
    let src = std::fs::read(root().join("data/audio/singularity_awakening.ogg")).unwrap();
    let second = (4..src.len() - 4)
        .find(|&i| &src[i..i + 4] == b"OggS")
        .unwrap();
    let body = 27 + src[26] as usize;
    assert_eq!(&src[body..body + 7], b"\x01vorbis");
    let dir = tempfile::tempdir().unwrap();
    for rate in [0u32, 1, 5_000_000] {
        let mut b = src.clone();
        b[body + 12..body + 16].copy_from_slice(&rate.to_le_bytes());
        let crc = ogg_crc(&b[..second]);
        b[22..26].copy_from_slice(&crc.to_le_bytes());
        let p = dir.path().join(format!("r{rate}.ogg"));
        std::fs::write(&p, &b).unwrap();
        let e = decode(&p, None).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Unsupported(_)), "{e}");
        assert!(
            e.to_string().contains(&format!("sample rate {rate} Hz")),
            "{e}"
        );
    }

    // "fLaC", a last-block STREAMINFO header, block sizes, frame sizes, then 20 bits of rate.
    let mut flac = b"fLaC\x80\x00\x00\x22".to_vec();
    flac.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
    flac.extend_from_slice(&[0x00, 0x00, 0x01, 0xf0, 0, 0, 0, 0]);
    flac.extend_from_slice(&[0u8; 16]);
    let p = dir.path().join("r0.flac");
    std::fs::write(&p, &flac).unwrap();
    let e = decode(&p, None).unwrap_err();
    assert!(e.to_string().contains("sample rate 0 Hz"), "{e}");
}

/// Float PCM holding NaN or infinity is refused, naming the first such sample.
#[test]
fn float_samples_that_are_not_numbers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, name) in [(f32::NAN, "NaN"), (f32::NEG_INFINITY, "-inf")] {
        let mut v: Vec<f32> = (0..22_050).map(|i| (i as f32 / 5.0).sin() * 0.5).collect();
        v[11_025] = bad;
        let p = dir.path().join("f.wav");
        wav(&p, 22_050, Some(&v));
        let e = decode(&p, None).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Corrupt(_)), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("sample 11025 (at 0.500 s) is {name}")),
            "{msg}"
        );
        v[11_025] = 0.25;
        wav(&p, 22_050, Some(&v));
        assert_eq!(decode(&p, None).unwrap().samples[11_025], 0.25);
    }
}
