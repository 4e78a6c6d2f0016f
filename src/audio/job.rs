//! The `features` job: expand the inputs, keep this shard's share, skip what the store already
//! holds, decode in parallel (the next batch decodes on the CPU while the current one is on the
//! backend), extract features batch by batch and commit each batch to the store as one segment
//! (see [`super::store`]), so a kill loses at most the batch in progress.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::decode::{load, Decoded};
use super::features::{
    extract_batch, min_samples, parameters, song_vector, vector_names, ClipFeatures, ScatteringFn,
};
use super::store::{AttrValue, StoreWriter, TrackRecord};
use super::{HPCP_SIZE, N_MELS, N_MFCC, SAMPLE_RATE};
use crate::audio::ops::{AudioOps, AudioPlan};
use crate::error::Error;

/// File extensions picked up when a directory is given.
pub const AUDIO_EXTENSIONS: [&str; 5] = ["wav", "ogg", "oga", "mp3", "flac"];

/// Options of one run.
#[derive(Clone, Debug)]
pub struct JobOptions {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    /// Keep only the first `seconds` of each track.
    pub seconds: Option<f64>,
    /// `(i, n)`: process only the inputs whose stem hashes to `i` modulo `n` (0-based).
    pub shard: Option<(u32, u32)>,
    /// Clips per backend batch; each batch is committed to the store as one segment.
    pub batch: usize,
    /// Set (by a signal handler) to stop after the batch in progress: what is done is kept
    /// and folded into the store, and the summary says `interrupted`.
    pub stop: Option<&'static AtomicBool>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

/// The run's outcome (the `--json` object).
#[derive(Clone, Debug, Serialize)]
pub struct JobSummary {
    pub written: Vec<String>,
    pub skipped: Vec<Skipped>,
    /// Stems already in the store (resumed runs).
    pub already_done: Vec<String>,
    pub seconds: f64,
    pub backend: String,
    pub output: String,
    pub tracks_in_store: usize,
    /// Stopped early by [`JobOptions::stop`]; run again to continue.
    pub interrupted: bool,
}

/// Parses `I/N` (0 ≤ I < N).
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("shard {s:?}: expected I/N, e.g. 0/16"))?;
    let num = |v: &str, what: &str| -> Result<u32, String> {
        v.trim().parse::<u32>().map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow => {
                format!("shard {s:?}: {what} is larger than {}", u32::MAX)
            }
            _ => format!("shard {s:?}: {what} is not a whole number"),
        })
    };
    let (i, n) = (num(i, "I")?, num(n, "N")?);
    if n == 0 || i >= n {
        return Err(format!("shard {s:?}: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// Deterministic shard of a stem: FNV-1a (64-bit) of its UTF-8 bytes, modulo `n`. Depends on
/// the name only, so every machine agrees whatever order or subset of inputs it lists.
pub fn shard_of(stem: &str, n: u32) -> u32 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in stem.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % n as u64) as u32
}

/// The file stem used as the track id.
pub fn stem_of(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Why a file stem cannot name a track, if it cannot: it is the HDF5 group name of the track
/// (`/tracks/<stem>`), and `.` (the stem of `..wav`) names the group itself.
fn unusable_track_id(stem: &str) -> Option<String> {
    (stem.is_empty() || stem == "." || stem == "..").then(|| {
        format!(
            "file stem {stem:?} cannot name a track (the stem is the track id): rename the file"
        )
    })
}

/// Why this run cannot add to the store `output`: its tracks were cut at another `--seconds`
/// (a song vector of 30 s beside one of 1 s compares nothing). One stored track tells, read
/// through the index; a store whose tracks are all journaled (a killed first run) is not checked.
fn other_seconds(output: &Path, seconds: Option<f64>) -> Option<String> {
    let stored = super::store::stored_seconds(output).ok()??;
    let now = seconds.unwrap_or(0.0);
    let show = super::store::describe_seconds;
    (stored != now).then(|| {
        format!(
            "{}: its tracks were computed from {}, this run would take {}: give the same --seconds, or another --output",
            output.display(),
            show(stored),
            show(now)
        )
    })
}

/// Why a clip's features cannot be stored, if they cannot: a value that is not a finite number
/// (samples so large that their power overflows f32, e.g. float PCM far outside ±1).
fn non_finite(rec: &TrackRecord, d: &Decoded) -> Option<String> {
    let (name, bad) = rec
        .datasets
        .iter()
        .find_map(|(n, _, v)| v.iter().find(|x| !x.is_finite()).map(|x| (n, *x)))?;
    let peak = d.samples.iter().fold(0f32, |m, x| m.max(x.abs()));
    Some(format!(
        "features not finite ({name} holds {bad}): the samples reach {peak:e}, PCM is nominally within ±1"
    ))
}

/// Files given directly are kept whatever their extension (a bad one is reported when it
/// fails to decode); directories are walked recursively for audio extensions, sorted.
pub fn collect_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<Skipped>) {
    let mut files = Vec::new();
    let mut bad = Vec::new();
    fn walk(dir: &Path, files: &mut Vec<PathBuf>, bad: &mut Vec<Skipped>) {
        let rd = match std::fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) => {
                bad.push(Skipped {
                    file: dir.display().to_string(),
                    reason: format!("cannot list directory: {e}"),
                });
                return;
            }
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, files, bad);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                files.push(p);
            }
        }
    }
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut files, &mut bad);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            bad.push(Skipped {
                file: p.display().to_string(),
                reason: "no such file or directory".into(),
            });
        }
    }
    (files, bad)
}

/// One track's record for the store.
pub fn track_record(
    stem: &str,
    source: &Path,
    d: &Decoded,
    f: &ClipFeatures,
    max_seconds: Option<f64>,
) -> TrackRecord {
    let t = f.frames;
    let mut datasets = vec![
        ("mel".to_string(), vec![N_MELS, t], f.mel.clone()),
        ("mfcc".to_string(), vec![N_MFCC, t], f.mfcc.clone()),
        (
            "mfcc_delta".to_string(),
            vec![N_MFCC, t],
            f.mfcc_delta.clone(),
        ),
        (
            "mfcc_delta2".to_string(),
            vec![N_MFCC, t],
            f.mfcc_delta2.clone(),
        ),
        ("hfc".to_string(), vec![t], f.hfc.clone()),
        ("hpcp".to_string(), vec![HPCP_SIZE, t], f.hpcp.clone()),
    ];
    if let Some((data, paths, frames, _)) = &f.scattering {
        datasets.push(("scattering".into(), vec![*paths, *frames], data.clone()));
    }
    let mut attrs: Vec<(String, AttrValue)> = parameters()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    attrs.extend([
        ("frames".into(), AttrValue::U(t as u64)),
        (
            "seconds".into(),
            AttrValue::F(d.samples.len() as f64 / SAMPLE_RATE as f64),
        ),
        (
            "max_seconds".into(),
            AttrValue::F(max_seconds.unwrap_or(0.0)),
        ),
        (
            "source_file".into(),
            AttrValue::S(source.display().to_string()),
        ),
        (
            "source_sample_rate".into(),
            AttrValue::U(d.sample_rate_in as u64),
        ),
        ("source_channels".into(), AttrValue::U(d.channels as u64)),
        ("codec".into(), AttrValue::S(d.codec.clone())),
        ("song_vector".into(), AttrValue::FV(song_vector(f))),
    ]);
    TrackRecord {
        stem: stem.to_string(),
        datasets,
        attrs,
    }
}

type Loaded = (usize, Result<Decoded, Skipped>);

/// Waits for a decoder thread. Its decoding runs on rayon's pool; when this thread is one of
/// the pool's workers (the CLI runs its commands there), a plain join would leave that work
/// nobody to run on a one-thread pool, so the wait runs the pool's pending jobs meanwhile.
fn join_helping<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> std::thread::Result<T> {
    if rayon::current_thread_index().is_some() {
        while !h.is_finished() {
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
    }
    h.join()
}

fn decode_all(files: &[(PathBuf, String)], seconds: Option<f64>) -> Vec<Loaded> {
    files
        .par_iter()
        .enumerate()
        .map(|(i, (p, _))| {
            let r = load(p, seconds)
                .map_err(|e| Skipped {
                    file: p.display().to_string(),
                    reason: e.reason(),
                })
                .and_then(|d| {
                    if d.samples.len() < min_samples() {
                        Err(Skipped {
                            file: p.display().to_string(),
                            reason: format!(
                                "too short: {} samples at 22,050 Hz, at least {} needed (9 STFT frames for the deltas)",
                                d.samples.len(),
                                min_samples()
                            ),
                        })
                    } else {
                        Ok(d)
                    }
                });
            (i, r)
        })
        .collect()
}

/// Runs the job on backend `b`. `progress(done, total)` is called after each batch.
/// Feature or store failures are fatal (`Err`); bad inputs are skipped and reported.
pub fn run<B: AudioOps>(
    b: &B,
    opts: &JobOptions,
    scattering: Option<(&ScatteringFn<'_, B>, usize)>,
    mut progress: impl FnMut(usize, usize),
) -> Result<JobSummary, Error> {
    let t0 = Instant::now();
    if opts.batch == 0 {
        return Err(Error::Other(
            "--batch 0: clips per batch must be a whole number >= 1".into(),
        ));
    }
    if let Some(s) = opts.seconds {
        if !(s.is_finite() && s > 0.0) {
            return Err(Error::Other(format!(
                "--seconds {s}: must be a finite number of seconds > 0"
            )));
        }
    }
    let (files, mut skipped) = collect_inputs(&opts.inputs);
    if files.is_empty() {
        // Nothing to decode: say why, and write no (empty) store.
        let why: Vec<String> = if skipped.is_empty() {
            vec![format!(
                "no {} files in {}",
                AUDIO_EXTENSIONS.join("/"),
                opts.inputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )]
        } else {
            skipped
                .iter()
                .map(|s| format!("{}: {}", s.file, s.reason))
                .collect()
        };
        return Err(Error::Other(format!(
            "no audio files to process ({}); {} not written",
            why.join("; "),
            opts.output.display()
        )));
    }
    let first_order = scattering.map(|s| s.1).unwrap_or(0);
    let mut writer = StoreWriter::open(&opts.output, vector_names(first_order))?;
    let mut seen = BTreeSet::new();
    let mut todo: Vec<(PathBuf, String)> = Vec::new();
    let mut already_done = Vec::new();
    for p in files {
        let stem = stem_of(&p);
        if let Some((i, n)) = opts.shard {
            if shard_of(&stem, n) != i {
                continue;
            }
        }
        if let Some(why) = unusable_track_id(&stem) {
            skipped.push(Skipped {
                file: p.display().to_string(),
                reason: why,
            });
            continue;
        }
        if !seen.insert(stem.clone()) {
            skipped.push(Skipped {
                file: p.display().to_string(),
                reason: format!(
                    "duplicate track id {stem:?} (another input has the same file stem)"
                ),
            });
            continue;
        }
        if writer.contains(&stem) {
            already_done.push(stem);
            continue;
        }
        todo.push((p, stem));
    }
    if let Some(why) = other_seconds(&opts.output, opts.seconds) {
        return Err(Error::Other(why));
    }
    let plan = AudioPlan::new(b)?;
    let batch = opts.batch;
    let chunks: Vec<&[(PathBuf, String)]> = todo.chunks(batch).collect();
    let total = todo.len();
    let mut written = Vec::new();
    let mut done = 0usize;
    let mut interrupted = false;
    let stopped = || opts.stop.is_some_and(|s| s.load(Ordering::SeqCst));
    progress(0, total);
    std::thread::scope(|s| -> Result<(), Error> {
        let mut next = chunks
            .first()
            .map(|c| s.spawn(move || decode_all(c, opts.seconds)));
        for (k, chunk) in chunks.iter().enumerate() {
            if stopped() {
                interrupted = true;
                // The next batch may be decoding: let it finish, keep nothing of it.
                if let Some(h) = next.take() {
                    let _ = join_helping(h);
                }
                break;
            }
            let loaded = match next.take() {
                Some(h) => {
                    join_helping(h).map_err(|_| Error::Other("a decoder thread panicked".into()))?
                }
                None => Vec::new(),
            };
            if let Some(c) = chunks.get(k + 1) {
                let c: &[(PathBuf, String)] = c;
                next = Some(s.spawn(move || decode_all(c, opts.seconds)));
            }
            let mut good: Vec<(usize, Decoded)> = Vec::new();
            for (i, r) in loaded {
                match r {
                    Ok(d) => good.push((i, d)),
                    Err(sk) => skipped.push(sk),
                }
            }
            let clips: Vec<&[f32]> = good.iter().map(|(_, d)| d.samples.as_slice()).collect();
            let feats = extract_batch(b, &plan, &clips, scattering.map(|s| s.0))?;
            for ((i, d), f) in good.iter().zip(&feats) {
                let (path, stem) = &chunk[*i];
                let rec = track_record(stem, path, d, f, opts.seconds);
                if let Some(why) = non_finite(&rec, d) {
                    skipped.push(Skipped {
                        file: path.display().to_string(),
                        reason: why,
                    });
                    continue;
                }
                writer.write(&rec)?;
                written.push(stem.clone());
            }
            writer.commit()?;
            done += chunk.len();
            progress(done, total);
        }
        Ok(())
    })?;
    let tracks_in_store = writer.finish()?;
    Ok(JobSummary {
        written,
        skipped,
        already_done,
        seconds: t0.elapsed().as_secs_f64(),
        backend: b.describe(),
        output: opts.output.display().to_string(),
        tracks_in_store,
        interrupted,
    })
}
