//! The feature pipeline over any backend: a batch of decoded clips is padded to its longest,
//! uploaded once, and stays on the device through STFT, mel, dB, DCT, deltas, HFC and HPCP;
//! the results are packed into one tensor and read back once per batch.
//!
//! Per clip the pipeline yields librosa-oriented matrices (features × frames) and a fixed-length
//! **song vector** of summary statistics over the clip's frames (see [`vector_names`]):
//!
//! | columns | statistic |
//! |---|---|
//! | `mfcc_mean_00..19`, `mfcc_std_00..19` | mean and standard deviation of each MFCC |
//! | `mfcc_delta_std_00..19`, `mfcc_delta2_std_00..19` | standard deviation of each delta and delta-delta (their means are ≈ 0) |
//! | `hpcp_mean_00..11`, `hpcp_std_00..11` | mean and standard deviation of each pitch class |
//! | `log_hfc_mean`, `log_hfc_std` | mean and standard deviation of `log10(1 + HFC)` |
//! | `scattering1_mean_<k>` (when the scattering stage runs) | mean over frames of each first-order scattering path, appended at the end |
//!
//! Standard deviations are population ones (divide by the number of frames).
//!
//! The scattering transform is a separate stage: [`extract_batch`] takes it as an optional
//! function of the uploaded batch (`[clips, samples] → [clips, paths, frames]`), called at one
//! place; `ainrnn features --no-scattering` skips it.

use crate::audio::ops::{AudioOps, AudioPlan, Spectral};
use crate::audio::{n_frames, AMIN, DELTA_WIDTH, HPCP_SIZE, N_MELS, N_MFCC, SAMPLE_RATE, TOP_DB};
use crate::backend::{BTensor, OpResult};
use crate::error::OpError;

/// Signature of the scattering stage: the padded batch `[clips, samples]` in, `[clips, paths,
/// frames]` out (Kymatio `Scattering1D` order), plus the number of first-order paths.
pub type ScatteringFn<'a, B> = dyn Fn(&B, &BTensor<B>) -> OpResult<(BTensor<B>, usize)> + 'a;

/// Features of one clip (all matrices are row-major `features × frames`).
#[derive(Clone, Debug, Default)]
pub struct ClipFeatures {
    pub frames: usize,
    /// `[N_MELS, frames]` mel power.
    pub mel: Vec<f32>,
    /// `[N_MFCC, frames]`.
    pub mfcc: Vec<f32>,
    pub mfcc_delta: Vec<f32>,
    pub mfcc_delta2: Vec<f32>,
    /// `[frames]`.
    pub hfc: Vec<f32>,
    /// `[12, frames]`.
    pub hpcp: Vec<f32>,
    /// `([paths, frames_s], paths, frames_s, first-order paths)` when the stage ran.
    pub scattering: Option<(Vec<f32>, usize, usize, usize)>,
}

/// Clips shorter than this many samples have fewer frames than the delta window needs.
pub fn min_samples() -> usize {
    (DELTA_WIDTH - 1) * crate::audio::HOP
}

/// Names of the song-vector columns, in order (`scattering1` first-order paths appended when
/// the scattering stage ran).
pub fn vector_names(scattering_first_order: usize) -> Vec<String> {
    let mut v = Vec::new();
    for k in 0..N_MFCC {
        v.push(format!("mfcc_mean_{k:02}"));
    }
    for k in 0..N_MFCC {
        v.push(format!("mfcc_std_{k:02}"));
    }
    for k in 0..N_MFCC {
        v.push(format!("mfcc_delta_std_{k:02}"));
    }
    for k in 0..N_MFCC {
        v.push(format!("mfcc_delta2_std_{k:02}"));
    }
    for k in 0..HPCP_SIZE {
        v.push(format!("hpcp_mean_{k:02}"));
    }
    for k in 0..HPCP_SIZE {
        v.push(format!("hpcp_std_{k:02}"));
    }
    v.push("log_hfc_mean".into());
    v.push("log_hfc_std".into());
    for k in 0..scattering_first_order {
        v.push(format!("scattering1_mean_{k:03}"));
    }
    v
}

fn mean_std(x: &[f32]) -> (f32, f32) {
    if x.is_empty() {
        return (0.0, 0.0);
    }
    let n = x.len() as f64;
    let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
    (m as f32, var.sqrt() as f32)
}

/// The song vector of one clip (see the module documentation for the columns).
pub fn song_vector(f: &ClipFeatures) -> Vec<f32> {
    let t = f.frames;
    let rows = |m: &[f32], r: usize| -> Vec<(f32, f32)> {
        (0..r).map(|k| mean_std(&m[k * t..(k + 1) * t])).collect()
    };
    let mut v = Vec::new();
    let mfcc = rows(&f.mfcc, N_MFCC);
    v.extend(mfcc.iter().map(|s| s.0));
    v.extend(mfcc.iter().map(|s| s.1));
    v.extend(rows(&f.mfcc_delta, N_MFCC).iter().map(|s| s.1));
    v.extend(rows(&f.mfcc_delta2, N_MFCC).iter().map(|s| s.1));
    let hp = rows(&f.hpcp, HPCP_SIZE);
    v.extend(hp.iter().map(|s| s.0));
    v.extend(hp.iter().map(|s| s.1));
    let log_hfc: Vec<f32> = f.hfc.iter().map(|&h| (1.0 + h.max(0.0)).log10()).collect();
    let (m, s) = mean_std(&log_hfc);
    v.push(m);
    v.push(s);
    if let Some((data, _, frames, first)) = &f.scattering {
        for k in 0..*first {
            v.push(mean_std(&data[k * frames..(k + 1) * frames]).0);
        }
    }
    v
}

/// Computes the features of a batch of clips (mono, 22,050 Hz, each at least
/// [`min_samples`] long) on backend `b`.
pub fn extract_batch<B: AudioOps>(
    b: &B,
    plan: &AudioPlan<B>,
    clips: &[&[f32]],
    scattering: Option<&ScatteringFn<'_, B>>,
) -> OpResult<Vec<ClipFeatures>> {
    if clips.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(c) = clips.iter().find(|c| c.len() < min_samples()) {
        return Err(OpError::Invalid {
            op: "features",
            detail: format!(
                "a clip of {} samples is shorter than {} (the {DELTA_WIDTH}-frame delta window)",
                c.len(),
                min_samples()
            ),
        });
    }
    let n = clips.len();
    let len = clips.iter().map(|c| c.len()).max().unwrap_or(0);
    let frames = n_frames(len);
    let valid: Vec<u32> = clips.iter().map(|c| n_frames(c.len()) as u32).collect();
    let valid_t = b.upload_u32(&valid, &[n])?;
    // The backend takes the clips as they are (the CPU reads them in place; the GPU pads them
    // into one upload). The scattering stage uploads its own length groups below.
    let spectral = b.spectral_of_clips(plan, clips, true)?;
    let (mel, hfc, hpcp) = match spectral {
        Spectral {
            mel,
            hfc: Some(h),
            hpcp: Some(p),
        } => (mel, h, p),
        _ => {
            return Err(OpError::Invalid {
                op: "features",
                detail: "the spectral pass returned no HFC/HPCP".into(),
            })
        }
    };
    let mfcc = b.mfcc(plan, &mel, AMIN, TOP_DB)?;
    let d1 = b.delta(&mfcc, &valid_t, DELTA_WIDTH, 1)?;
    let d2 = b.delta(&mfcc, &valid_t, DELTA_WIDTH, 2)?;
    // The one place the scattering stage runs: clips of equal length go through it together, each
    // at its own length (Kymatio's reflect padding applies at the clip's real end, not after zeros
    // added for the batch). With `--seconds S` every clip has the same length: one batch.
    let mut scat: Vec<(Vec<usize>, BTensor<B>, usize)> = Vec::new();
    if let Some(f) = scattering {
        let mut by_len: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, c) in clips.iter().enumerate() {
            by_len.entry(c.len()).or_default().push(i);
        }
        for (l, members) in by_len {
            let mut x = Vec::with_capacity(members.len() * l);
            for &i in &members {
                x.extend_from_slice(clips[i]);
            }
            let (t, first) = f(b, &b.upload_f32(&x, &[members.len(), l])?)?;
            scat.push((members, t, first));
        }
    }
    let parts = vec![&mel, &mfcc, &d1, &d2, &hfc, &hpcp];
    let packed = b.read_packed(&parts)?;
    // (clips, values, paths, frames, first-order paths) per length group.
    type Group = (Vec<usize>, Vec<f32>, usize, usize, usize);
    let scat_host: Vec<Group> = scat
        .into_iter()
        .map(|(members, t, first)| {
            let (paths, fs) = (t.shape()[1], t.shape()[2]);
            Ok((members, b.to_f32(&t)?, paths, fs, first))
        })
        .collect::<OpResult<_>>()?;

    let sizes = [N_MELS, N_MFCC, N_MFCC, N_MFCC, 1, HPCP_SIZE];
    let mut offsets = Vec::with_capacity(7);
    let mut off = 0;
    for s in sizes {
        offsets.push(off);
        off += n * s * frames;
    }
    let mut out = Vec::with_capacity(n);
    for (c, &v) in valid.iter().enumerate() {
        let v = v as usize;
        // Rows of clip `c` of a `[clips, rows, frames]` block, truncated to its own frames.
        let take = |k: usize| -> Vec<f32> {
            let rows = sizes[k];
            let base = offsets[k] + c * rows * frames;
            let mut m = Vec::with_capacity(rows * v);
            for r in 0..rows {
                m.extend_from_slice(&packed[base + r * frames..base + r * frames + v]);
            }
            m
        };
        let scattering = scat_host
            .iter()
            .find_map(|(members, data, paths, fs, first)| {
                let pos = members.iter().position(|&i| i == c)?;
                let block = paths * fs;
                Some((
                    data[pos * block..(pos + 1) * block].to_vec(),
                    *paths,
                    *fs,
                    *first,
                ))
            });
        out.push(ClipFeatures {
            frames: v,
            mel: take(0),
            mfcc: take(1),
            mfcc_delta: take(2),
            mfcc_delta2: take(3),
            hfc: take(4),
            hpcp: take(5),
            scattering,
        });
    }
    Ok(out)
}

/// Parameters recorded with every track (attributes of its group).
pub fn parameters() -> Vec<(&'static str, crate::audio::store::AttrValue)> {
    use crate::audio::store::AttrValue::*;
    vec![
        ("sample_rate", U(SAMPLE_RATE as u64)),
        ("n_fft", U(crate::audio::N_FFT as u64)),
        ("hop_length", U(crate::audio::HOP as u64)),
        ("window", S("hann (periodic)".into())),
        ("center", S("true, constant (zero) padding".into())),
        ("power", F(2.0)),
        ("n_mels", U(N_MELS as u64)),
        (
            "mel_scale",
            S("slaney (htk=False), norm=slaney, fmin 0, fmax sr/2".into()),
        ),
        ("n_mfcc", U(N_MFCC as u64)),
        (
            "power_to_db",
            S("ref 1, amin 1e-10, top_db 80 per clip".into()),
        ),
        ("dct", S("type 2, norm ortho".into())),
        ("delta_width", U(DELTA_WIDTH as u64)),
        (
            "delta_mode",
            S("savgol interp (librosa feature.delta)".into()),
        ),
        ("hfc", S("masri: sum_k f_k |X_k|^2, f_k in Hz".into())),
        ("hpcp_size", U(HPCP_SIZE as u64)),
        ("hpcp_reference_frequency", F(440.0)),
        ("hpcp_min_frequency", F(40.0)),
        ("hpcp_max_frequency", F(5000.0)),
        ("hpcp_split_frequency", F(500.0)),
        ("hpcp_max_peaks", U(100)),
        ("hpcp_weight", S("squaredCosine, window 1 semitone".into())),
        ("hpcp_normalized", S("unitMax, band preset".into())),
        ("resampler", S(crate::audio::resample::DESCRIPTION.into())),
    ]
}
