//! `ainrnn synth --audio DIR`: one short **synthetic** clip per synthetic song, `DIR/<song
//! id>.wav`, whose harmony, timbre and rhythm follow the same latent clusters
//! ([`SongModel::cluster`]) that drive the synthetic users' tastes, so that audio features carry
//! real signal about who listens to a song. Never real music: `DIR/README.txt` says how the
//! clips were made.
//!
//! Model (all draws from seeded [`Rng`] streams of their own: the triplets are the same bytes
//! with or without `--audio`):
//! - per cluster, a **style**: a chord (3 or 4 pitch classes: major, minor, sus4, diminished,
//!   major 7th, minor 7th or dominant 7th on a random root), a register, a timbre (harmonic
//!   roll-off `h^-r`, the share of a noise burst at each onset and its brightness, attack and
//!   decay times) and a rhythm (tempo in BPM, a 16-step onset pattern);
//! - per song, the cluster's style with jitter: detuning (±15 cents, σ), a random octave (−1, 0
//!   or +1), tempo ±4 %, roll-off ±0.15, noise share and decay ±15–20 % (σ), a random start
//!   offset within the grid and random partial phases.
//!
//! Each onset of the pattern plays the chord's tones (random velocities) with a band-limited
//! wavetable of the song's timbre under an attack/exponential-decay envelope, plus the noise
//! burst, one-pole low-passed by the brightness. The clip is peak-normalised to 0.7 and written
//! as 22,050 Hz mono 16-bit PCM WAV (header written here).

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::progress::Progress;
use super::rng::Rng;
use super::synth::{song_id, song_model, synth, SongModel, SynthOptions, SynthReport};
use crate::error::IoError;
use crate::io::{write_atomic, AtomicFile};

/// Sample rate of the clips (the audio stage's rate, so no resampling).
pub const SAMPLE_RATE: u32 = 22_050;
/// `--clip-seconds` default.
pub const DEFAULT_CLIP_SECONDS: f64 = 3.0;
/// `--clip-seconds` upper bound.
pub const MAX_CLIP_SECONDS: f64 = 60.0;
/// `--clip-seconds` lower bound: `features` needs 4,096 samples (9 STFT frames for the
/// deltas), 0.186 s at 22,050 Hz.
pub const MIN_CLIP_SECONDS: f64 = 0.2;

/// Stream salts: the styles and each song's jitter come from generators of their own.
const STYLE_STREAM: u64 = 0xA0D1_0517_7E00_0001;
const SONG_SALT: u64 = 0x5EED_A0D1_0C11_9000;

/// Where and how long the clips are.
#[derive(Clone, Debug)]
pub struct AudioOptions {
    pub dir: PathBuf,
    pub clip_seconds: f64,
}

impl AudioOptions {
    pub fn new(dir: PathBuf) -> Self {
        AudioOptions {
            dir,
            clip_seconds: DEFAULT_CLIP_SECONDS,
        }
    }
}

/// A latent cluster's sound.
#[derive(Clone, Debug, PartialEq)]
pub struct Style {
    /// Pitch classes (0 = C) of the chord, 3 or 4.
    pub chord: Vec<u8>,
    /// MIDI note of the chord's root octave (C of that octave + root).
    pub register: i32,
    /// Harmonic amplitudes fall as `h^-rolloff` (small = bright).
    pub rolloff: f64,
    /// Peak of the noise burst at each onset, relative to one tone.
    pub noise: f64,
    /// One-pole low-pass coefficient of the noise (1 = unfiltered).
    pub noise_brightness: f64,
    /// Attack time, seconds.
    pub attack: f64,
    /// Exponential decay time constant, seconds.
    pub decay: f64,
    pub bpm: f64,
    /// Onsets on a 16-step (sixteenth-note) bar; step 0 is always on.
    pub pattern: [bool; 16],
}

const CHORDS: [&[u8]; 7] = [
    &[0, 4, 7],
    &[0, 3, 7],
    &[0, 5, 7],
    &[0, 3, 6],
    &[0, 4, 7, 11],
    &[0, 3, 7, 10],
    &[0, 4, 7, 10],
];

fn normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.uniform();
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

fn between(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.uniform()
}

/// The style of each of the `genres` latent clusters of `o`.
pub fn cluster_styles(o: &SynthOptions) -> Vec<Style> {
    let mut rng = Rng::derived(o.seed, STYLE_STREAM);
    (0..o.genres.max(1))
        .map(|_| {
            let root = rng.below(12) as u8;
            let kind = CHORDS[rng.below(CHORDS.len() as u64) as usize];
            let chord = kind.iter().map(|&i| (root + i) % 12).collect();
            let register = 48 + root as i32; // C3 + root
            let density = between(&mut rng, 0.2, 0.6);
            let mut pattern = [false; 16];
            for (i, p) in pattern.iter_mut().enumerate() {
                *p = i == 0 || rng.uniform() < density;
            }
            Style {
                chord,
                register,
                rolloff: between(&mut rng, 0.6, 2.6),
                noise: between(&mut rng, 0.0, 0.8),
                noise_brightness: between(&mut rng, 0.05, 1.0),
                attack: between(&mut rng, 0.002, 0.05),
                decay: between(&mut rng, 0.05, 0.6),
                bpm: between(&mut rng, 70.0, 170.0),
                pattern,
            }
        })
        .collect()
}

/// One song's rendering parameters: its cluster's style with per-song jitter.
#[derive(Clone, Debug)]
struct Voice {
    /// Fundamental frequencies of the chord's tones (Hz).
    freqs: Vec<f64>,
    rolloff: f64,
    noise: f64,
    noise_brightness: f64,
    attack: f64,
    decay: f64,
    step: f64,
    offset: f64,
    pattern: [bool; 16],
    phases: Vec<f64>,
}

fn voice(style: &Style, rng: &mut Rng) -> Voice {
    let octave = rng.below(3) as i32 - 1;
    let cents = 15.0 * normal(rng);
    let freqs = style
        .chord
        .iter()
        .map(|&pc| {
            // Tones above the root within one octave of it.
            let semis = (pc as i32 - style.register.rem_euclid(12)).rem_euclid(12);
            let midi = style.register + 12 * octave + semis;
            440.0 * 2f64.powf((midi as f64 - 69.0 + cents / 100.0) / 12.0)
        })
        .collect();
    let bpm = style.bpm * (1.0 + 0.04 * normal(rng)).clamp(0.85, 1.15);
    let step = 60.0 / bpm / 4.0;
    Voice {
        freqs,
        rolloff: (style.rolloff + 0.15 * normal(rng)).clamp(0.3, 3.0),
        noise: (style.noise * (1.0 + 0.2 * normal(rng))).clamp(0.0, 1.0),
        noise_brightness: style.noise_brightness,
        attack: style.attack,
        decay: (style.decay * (1.0 + 0.15 * normal(rng))).clamp(0.03, 1.0),
        step,
        offset: rng.uniform() * step,
        pattern: style.pattern,
        phases: (0..32).map(|_| rng.uniform()).collect(),
    }
}

/// Samples in a clip of `seconds`.
pub fn clip_len(seconds: f64) -> usize {
    (seconds * SAMPLE_RATE as f64).round() as usize
}

const TABLE: usize = 2048;

/// Renders song `j` (cluster `cluster`) of the synthetic set of `o`: `clip_len(seconds)`
/// samples in [-0.7, 0.7].
pub fn render_song(
    o: &SynthOptions,
    styles: &[Style],
    cluster: u32,
    j: usize,
    seconds: f64,
) -> Vec<f32> {
    let sr = SAMPLE_RATE as f64;
    let n = clip_len(seconds);
    let mut rng = Rng::derived(o.seed ^ SONG_SALT, j as u64);
    let v = voice(&styles[cluster as usize % styles.len()], &mut rng);
    // One band-limited cycle of the timbre: partials up to 10 kHz for the highest tone.
    let fmax = v.freqs.iter().cloned().fold(1.0, f64::max);
    let partials = ((10_000.0 / fmax).floor() as usize).clamp(1, v.phases.len());
    let table: Vec<f64> = (0..=TABLE)
        .map(|i| {
            let x = i as f64 / TABLE as f64;
            (1..=partials)
                .map(|h| {
                    (h as f64).powf(-v.rolloff) * (TAU * (h as f64 * x + v.phases[h - 1])).sin()
                })
                .sum()
        })
        .collect();
    let mut out = vec![0f64; n];
    let window = ((v.attack + 6.0 * v.decay) * sr).ceil() as usize;
    // The envelopes, the same at every onset: attack then exponential decay (tones), and a
    // faster decay (noise burst).
    let env: Vec<f64> = (0..window.min(n))
        .map(|k| {
            let t = k as f64 / sr;
            if t < v.attack {
                t / v.attack
            } else {
                (-(t - v.attack) / v.decay).exp()
            }
        })
        .collect();
    let noise_env: Vec<f64> = (0..env.len())
        .map(|k| 2.0 * v.noise * (-(k as f64 / sr) / (0.5 * v.decay)).exp())
        .collect();
    let mut onset_t = v.offset;
    let mut step_i = 0usize;
    while onset_t < seconds {
        if v.pattern[step_i % 16] {
            let start = ((onset_t * sr) as usize).min(n);
            let end = (start + env.len()).min(n);
            for &f in &v.freqs {
                let vel = between(&mut rng, 0.6, 1.0);
                let inc = f / sr;
                let mut ph = rng.uniform();
                for (y, e) in out[start..end].iter_mut().zip(&env) {
                    let pos = ph * TABLE as f64;
                    let i = pos as usize;
                    let fr = pos - i as f64;
                    let s = table[i] + fr * (table[i + 1] - table[i]);
                    *y += vel * e * s;
                    ph += inc;
                    if ph >= 1.0 {
                        ph -= 1.0;
                    }
                }
            }
            if v.noise > 0.0 {
                let mut lp = 0.0;
                let a = v.noise_brightness;
                for (y, e) in out[start..end].iter_mut().zip(&noise_env) {
                    let white = 2.0 * rng.uniform() - 1.0;
                    lp += a * (white - lp);
                    *y += e * lp;
                }
            }
        }
        step_i += 1;
        onset_t += v.step;
    }
    let peak = out.iter().fold(0f64, |m, &x| m.max(x.abs()));
    let g = if peak > 0.0 { 0.7 / peak } else { 0.0 };
    out.iter().map(|&x| (x * g) as f32).collect()
}

/// `samples` (in [-1, 1]) as a 22,050 Hz mono 16-bit PCM WAV file.
pub fn wav_bytes(samples: &[f32]) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    b.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for &s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

fn check(a: &AudioOptions) -> Result<(), IoError> {
    if !(a.clip_seconds.is_finite()
        && a.clip_seconds >= MIN_CLIP_SECONDS
        && a.clip_seconds <= MAX_CLIP_SECONDS)
    {
        return Err(IoError::Format {
            path: a.dir.clone(),
            reason: format!(
                "--clip-seconds must be a finite number in [{MIN_CLIP_SECONDS}, {MAX_CLIP_SECONDS}] (shorter clips are too short for `features`), got {}",
                a.clip_seconds
            ),
        });
    }
    Ok(())
}

/// Refuses clips that would not fit the disk of `a.dir` (or of the folder it is to be made in),
/// before the triplets are written.
fn check_clip_room(o: &SynthOptions, a: &AudioOptions) -> Result<(), IoError> {
    // 16-bit mono at 22,050 Hz, a 44-byte header.
    let bytes = o.songs as f64 * (44.0 + a.clip_seconds * 22_050.0 * 2.0);
    let on = a
        .dir
        .ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("."));
    let on = if on.as_os_str().is_empty() {
        Path::new(".")
    } else {
        on
    };
    if let Some(free) = crate::io::space::free_disk_bytes(on) {
        if bytes * 1.05 > free as f64 {
            return Err(IoError::Format {
                path: a.dir.clone(),
                reason: format!(
                    "{} clips of {} s take about {:.0} MB, and {:.0} MB are free on {}: choose fewer --songs or a shorter --clip-seconds",
                    o.songs,
                    a.clip_seconds,
                    bytes / 1e6,
                    free as f64 / 1e6,
                    on.display()
                ),
            });
        }
    }
    Ok(())
}

/// Writes `DIR/<song id>.wav` for every song of `o` (in parallel, each file atomically) and
/// `DIR/README.txt`; creates DIR when missing. Returns the number of clips.
pub fn write_clips(o: &SynthOptions, a: &AudioOptions) -> Result<usize, IoError> {
    check(a)?;
    std::fs::create_dir_all(&a.dir).map_err(|e| IoError::io(&a.dir, e))?;
    let model: SongModel = song_model(o);
    let styles = cluster_styles(o);
    let progress = Progress::items(o.songs as u64, "writing synthetic clips");
    (0..o.songs).into_par_iter().try_for_each(|j| {
        let samples = render_song(o, &styles, model.cluster[j], j, a.clip_seconds);
        let path = a.dir.join(format!("{}.wav", song_id(j)));
        let out = AtomicFile::new(&path);
        std::fs::write(out.temp(), wav_bytes(&samples)).map_err(|e| IoError::io(&path, e))?;
        out.commit()?;
        progress.inc(1);
        Ok::<(), IoError>(())
    })?;
    progress.finish();
    let readme = format!(
        "SYNTHETIC audio: these {} WAV clips were generated by `ainrnn synth --audio {} --clip-seconds {}` \
         beside the synthetic triplets of\n{}\n\n\
         One clip per synthetic song, named <song id>.wav after the song ids of the triplets \
         (so `ainrnn features` then `ainrnn prepare --features` join them by file stem).\n\
         22,050 Hz, mono, 16-bit PCM. Harmony (a chord), timbre (harmonic roll-off, noise, \
         envelope) and rhythm (tempo, onset pattern) follow each song's latent taste cluster, \
         the same clusters that drive the synthetic users' tastes, with per-song jitter.\n\
         This is not real music and no real recording.\n",
        o.songs,
        a.dir.display(),
        a.clip_seconds,
        o.header()
    );
    write_atomic(&a.dir.join("README.txt"), readme.as_bytes())?;
    Ok(o.songs)
}

/// `synth` and, with `audio`, the clips of every song; a bad `--clip-seconds` is refused before
/// anything is written. The triplets are the same bytes with or without `audio`.
pub fn synth_with_audio(
    o: &SynthOptions,
    path: &Path,
    audio: Option<&AudioOptions>,
) -> Result<SynthReport, IoError> {
    if let Some(a) = audio {
        check(a)?;
        check_clip_room(o, a)?;
    }
    let mut r = synth(o, path)?;
    if let Some(a) = audio {
        r.clips = write_clips(o, a)?;
        r.audio_dir = Some(a.dir.display().to_string());
    }
    Ok(r)
}
