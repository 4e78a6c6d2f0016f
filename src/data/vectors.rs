//! Song vectors: a fixed-length MSD vector from the Echo Nest analysis (so the model can train
//! on MSD's audio descriptors when no audio is available) and/or the audio stage's vectors,
//! concatenated, z-scored per column.
//!
//! MSD columns ([`msd_names`], 57): per-dimension mean and standard deviation over segments of
//! the 12 timbre coefficients (`timbre_mean_0..11`, `timbre_std_0..11`) and of the 12 chroma
//! values (`pitch_mean_*`, `pitch_std_*`), mean and standard deviation of `segments_loudness_max`,
//! then `tempo` (BPM), `loudness` (dB), `duration` (s), the key as a point on the circle
//! (`key_sin`, `key_cos` of 2π·key/12, so B and C are neighbours), `mode` (1 major, 0 minor) and
//! `year`. Missing values: the subset CSV and the summary file have no segment arrays; a tempo or
//! duration of 0, a year of 0, a key outside 0..11 or a mode outside {0, 1} mean "unknown", and
//! the readers take values outside their plausible range as unknown too ([`super::plausible`]).
//!
//! Assembly: a column that no song has is dropped (e.g. the segment statistics when only the CSV
//! is given), and so is a column with one value for every song that has one (e.g. the segment
//! statistics when a single song has a per-track file: z-scored, such a column is 0 for every
//! song and carries nothing). Every other column is z-scored over the songs that have a value,
//! and a missing value becomes 0 (the column mean). `present` marks songs with an MSD record or
//! an audio vector.

use super::dataset::SongVectors;
use super::msd::MsdSong;

pub fn msd_names() -> Vec<String> {
    let mut n = Vec::with_capacity(57);
    for block in ["timbre_mean", "timbre_std", "pitch_mean", "pitch_std"] {
        n.extend((0..12).map(|i| format!("{block}_{i}")));
    }
    for s in [
        "loudness_max_mean",
        "loudness_max_std",
        "tempo",
        "loudness",
        "duration",
        "key_sin",
        "key_cos",
        "mode",
        "year",
    ] {
        n.push(s.to_string());
    }
    n
}

/// The raw (un-normalised) MSD vector of one song; NaN = missing.
pub fn msd_row(s: &MsdSong) -> Vec<f64> {
    let mut v = Vec::with_capacity(57);
    match &s.segments {
        Some(st) => {
            v.extend_from_slice(&st.timbre_mean);
            v.extend_from_slice(&st.timbre_std);
            v.extend_from_slice(&st.pitch_mean);
            v.extend_from_slice(&st.pitch_std);
            v.push(st.loudness_max_mean);
            v.push(st.loudness_max_std);
        }
        None => v.extend(std::iter::repeat_n(f64::NAN, 50)),
    }
    let pos = |x: f64| {
        if x.is_finite() && x > 0.0 {
            x
        } else {
            f64::NAN
        }
    };
    v.push(pos(s.tempo));
    v.push(if s.loudness.is_finite() {
        s.loudness
    } else {
        f64::NAN
    });
    v.push(pos(s.duration));
    if (0..12).contains(&s.key) {
        let a = std::f64::consts::TAU * s.key as f64 / 12.0;
        v.push(a.sin());
        v.push(a.cos());
    } else {
        v.push(f64::NAN);
        v.push(f64::NAN);
    }
    v.push(if s.mode == 0 || s.mode == 1 {
        s.mode as f64
    } else {
        f64::NAN
    });
    v.push(if s.year > 0 { s.year as f64 } else { f64::NAN });
    v
}

/// One source of columns: names and, per song, an optional raw row.
pub struct Block {
    pub tag: &'static str,
    pub names: Vec<String>,
    pub rows: Vec<Option<Vec<f64>>>,
}

/// What [`assemble`] kept and dropped.
pub struct Assembled {
    /// `None` when no column is left (no song has a vector, or every column is constant).
    pub vectors: Option<SongVectors>,
    /// Columns no song has a value for.
    pub dropped_empty: Vec<String>,
    /// Columns with one value for every song that has one (z-scored they would be all 0).
    pub dropped_constant: Vec<String>,
}

/// Concatenates the blocks, drops empty and constant columns, z-scores. `None` when no song has
/// a vector or no column varies.
pub fn assemble(songs: usize, blocks: Vec<Block>) -> Option<SongVectors> {
    assemble_report(songs, blocks).vectors
}

/// [`assemble`], also naming the columns it dropped.
pub fn assemble_report(songs: usize, blocks: Vec<Block>) -> Assembled {
    let blocks: Vec<Block> = blocks
        .into_iter()
        .filter(|b| b.rows.iter().any(Option::is_some))
        .collect();
    let (mut dropped_empty, mut dropped_constant) = (Vec::new(), Vec::new());
    if blocks.is_empty() {
        return Assembled {
            vectors: None,
            dropped_empty,
            dropped_constant,
        };
    }
    let source = blocks.iter().map(|b| b.tag).collect::<Vec<_>>().join("+");
    // (block, column) pairs that have at least one finite value, with their scale and the
    // mean and std of the scaled values.
    let mut cols: Vec<(usize, usize, f64, f64, f64)> = Vec::new();
    let mut names = Vec::new();
    for (bi, b) in blocks.iter().enumerate() {
        for (ci, name) in b.names.iter().enumerate() {
            let vals = b
                .rows
                .iter()
                .flatten()
                .map(|r| r[ci])
                .filter(|x| x.is_finite());
            let (mut n, mut lo, mut hi) = (0usize, f64::INFINITY, f64::NEG_INFINITY);
            for x in vals.clone() {
                n += 1;
                lo = lo.min(x);
                hi = hi.max(x);
            }
            if n == 0 {
                dropped_empty.push(name.clone());
                continue;
            }
            if lo == hi {
                dropped_constant.push(name.clone());
                continue;
            }
            // Sums of values near f64::MAX (or their squares, from 1e155) overflow: work on
            // x / scale, |x / scale| < 2. A power of two divides exactly, so ordinary columns
            // get the same bits as unscaled.
            let scale = pow2_at_most(lo.abs().max(hi.abs()));
            let mean = vals.clone().map(|x| x / scale).sum::<f64>() / n as f64;
            let var = vals
                .map(|x| (x / scale - mean) * (x / scale - mean))
                .sum::<f64>()
                / n as f64;
            let std = var.sqrt();
            cols.push((bi, ci, scale, mean, if std > 0.0 { std } else { 1.0 }));
            names.push(name.clone());
        }
    }
    let dim = cols.len();
    if dim == 0 {
        return Assembled {
            vectors: None,
            dropped_empty,
            dropped_constant,
        };
    }
    let mut values = vec![0f32; songs * dim];
    let mut present = vec![false; songs];
    for s in 0..songs {
        present[s] = blocks.iter().any(|b| b.rows[s].is_some());
        for (j, &(bi, ci, scale, mean, std)) in cols.iter().enumerate() {
            if let Some(r) = &blocks[bi].rows[s] {
                let x = r[ci];
                if x.is_finite() {
                    values[s * dim + j] = ((x / scale - mean) / std) as f32;
                }
            }
        }
    }
    Assembled {
        vectors: Some(SongVectors {
            dim,
            names,
            source,
            values,
            present,
        }),
        dropped_empty,
        dropped_constant,
    }
}

/// The largest power of two ≤ `m` (`m` finite, > 0), or 1 for a subnormal `m`.
fn pow2_at_most(m: f64) -> f64 {
    if m < f64::MIN_POSITIVE {
        return 1.0;
    }
    // Keep the exponent bits, clear the mantissa.
    f64::from_bits(m.to_bits() & 0x7ff0_0000_0000_0000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zscore_and_missing() {
        let b = Block {
            tag: "msd",
            names: vec!["a".into(), "b".into(), "empty".into(), "one".into()],
            rows: vec![
                Some(vec![1.0, 5.0, f64::NAN, 7.0]),
                Some(vec![3.0, f64::NAN, f64::NAN, f64::NAN]),
                None,
                Some(vec![f64::NAN, 7.0, f64::NAN, f64::NAN]),
            ],
        };
        let r = assemble_report(4, vec![b]);
        assert_eq!(r.dropped_empty, ["empty"]);
        assert_eq!(
            r.dropped_constant,
            ["one"],
            "one song's value carries nothing"
        );
        let v = r.vectors.unwrap();
        assert_eq!(v.names, ["a", "b"]);
        assert_eq!(v.dim, 2);
        assert_eq!(v.source, "msd");
        assert_eq!(v.values, [-1.0, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(v.present, [true, true, false, true]);
        assert!(assemble(
            2,
            vec![Block {
                tag: "audio",
                names: vec!["x".into()],
                rows: vec![None, None]
            }]
        )
        .is_none());
    }
}
