//! Decoding the bundled real and broken files, and resampling.

use ainrnn::audio::decode::{decode, load, DecodeErrorKind};
use ainrnn::audio::resample::resample;

use crate::golden::{golden, read, root};

#[test]
fn broken_files_give_clear_reasons() {
    let bad = root().join("data/bad");
    let cases = [
        ("empty.wav", "empty file"),
        ("not_audio.mp3", "not an audio file"),
        ("truncated_5k.ogg", "truncated stream"),
        ("truncated_10k.h5", "not an audio file"),
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
}
