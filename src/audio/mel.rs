//! The Slaney mel filterbank exactly as librosa 0.11's
//! `filters.mel(sr, n_fft, n_mels=128, fmin=0, fmax=sr/2, htk=False, norm="slaney")`:
//! triangles between consecutive points of the Slaney mel scale (linear below 1 kHz,
//! logarithmic above), each scaled by `2 / (f[i+2] − f[i])` so it has unit area.
//! Computed in f64, stored as f32 (librosa's default dtype).

use crate::error::OpError;

/// Lanes of the filter dot products.
const LANES: usize = 8;

/// Slaney mel scale: Hz → mel.
pub fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

/// Slaney mel scale: mel → Hz.
pub fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// A filterbank: dense `[n_mels, n_bins]` weights plus, per filter, its non-zero bin range
/// (the CPU path applies only those, ~2 bins per filter on average instead of 1,025).
#[derive(Clone, Debug)]
pub struct MelBank {
    pub n_mels: usize,
    pub n_bins: usize,
    pub weights: Vec<f32>,
    /// `(first, end)` non-zero bins of each filter.
    pub ranges: Vec<(usize, usize)>,
    /// Every filter's weights from its bin `start` on, zero-padded to `blocks` whole 8-lane
    /// blocks (≈ 310 blocks: 10 KB, stays in L1), the filters back to back. `start` is the
    /// filter's first non-zero bin, moved down when the blocks would pass the last bin.
    packed: Vec<[f32; LANES]>,
    /// `(start, blocks)` of each filter.
    spans: Vec<(usize, usize)>,
    /// Whether every filter fits whole blocks (else `apply` takes the exact ranges).
    blocked: bool,
    /// Every filter's non-zero weights (its `ranges`), back to back.
    taps: Vec<f32>,
}

/// Frames [`MelBank::apply_tile`] computes at once (the lanes of its vectors).
pub const TILE: usize = 8;

impl MelBank {
    /// The bank for `n_fft`-point spectra at `sr` Hz. Refuses a rate that is not a positive
    /// finite number, an `n_fft` or `n_mels` of 0 (their weights were NaN or empty) and a bank
    /// too large for memory.
    pub fn new(sr: f64, n_fft: usize, n_mels: usize) -> Result<Self, OpError> {
        let op = "mel_bank";
        if !(sr.is_finite() && sr > 0.0) || n_fft == 0 || n_mels == 0 {
            return Err(OpError::Invalid {
                op,
                detail: format!(
                    "sample rate {sr} Hz, n_fft {n_fft}, n_mels {n_mels}: the rate must be a positive number and the sizes at least 1"
                ),
            });
        }
        let n_bins = n_fft / 2 + 1;
        let cells = n_mels.checked_mul(n_bins).ok_or_else(|| OpError::Invalid {
            op,
            detail: format!("{n_mels} filters x {n_bins} bins overflows"),
        })?;
        let fft_freqs: Vec<f64> = (0..n_bins).map(|k| k as f64 * sr / n_fft as f64).collect();
        let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
        let mel_f: Vec<f64> = (0..n_mels + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
            .collect();
        let mut weights = crate::backend::host_zeroed::<f32>(op, cells)?;
        let mut ranges = Vec::with_capacity(n_mels);
        for i in 0..n_mels {
            let (fd0, fd1) = (mel_f[i + 1] - mel_f[i], mel_f[i + 2] - mel_f[i + 1]);
            let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
            let (mut first, mut end) = (n_bins, 0);
            for (k, &f) in fft_freqs.iter().enumerate() {
                let lower = -(mel_f[i] - f) / fd0;
                let upper = (mel_f[i + 2] - f) / fd1;
                let w = lower.min(upper).max(0.0) * enorm;
                if w > 0.0 {
                    weights[i * n_bins + k] = w as f32;
                    first = first.min(k);
                    end = k + 1;
                }
            }
            ranges.push(if end == 0 { (0, 0) } else { (first, end) });
        }
        let (mut packed, mut spans) = (Vec::new(), Vec::new());
        let mut blocked = true;
        for (m, &(a, b)) in ranges.iter().enumerate() {
            let blocks = (b - a).div_ceil(LANES);
            if blocks * LANES > n_bins {
                blocked = false;
                break;
            }
            let start = a.min(n_bins - blocks * LANES);
            let row = &weights[m * n_bins + start..m * n_bins + start + blocks * LANES];
            for c in row.chunks_exact(LANES) {
                let mut blk = [0f32; LANES];
                blk.copy_from_slice(c);
                packed.push(blk);
            }
            spans.push((start, blocks));
        }
        let mut taps = Vec::new();
        for (m, &(a, b)) in ranges.iter().enumerate() {
            taps.extend_from_slice(&weights[m * n_bins + a..m * n_bins + b]);
        }
        Ok(MelBank {
            n_mels,
            n_bins,
            weights,
            ranges,
            packed,
            spans,
            blocked,
            taps,
        })
    }

    /// `out[m] = Σ_k w[m, k] · power[k]` for one frame of `n_bins` values (sparse; f32 like
    /// librosa's einsum): 8-lane blocks of each filter's padded weights, then the lanes.
    #[inline(always)]
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        let power = &power[..self.n_bins];
        if !self.blocked {
            for (m, o) in out.iter_mut().enumerate() {
                let (a, b) = self.ranges[m];
                let w = &self.weights[m * self.n_bins + a..m * self.n_bins + b];
                *o = w.iter().zip(&power[a..b]).map(|(w, p)| w * p).sum();
            }
            return;
        }
        let mut blocks = self.packed.as_slice();
        for (o, &(start, n)) in out.iter_mut().zip(&self.spans) {
            let (w, rest) = blocks.split_at(n);
            blocks = rest;
            let p = &power[start..start + n * LANES];
            let mut l = [0f32; LANES];
            for (wb, pc) in w.iter().zip(p.chunks_exact(LANES)) {
                for k in 0..LANES {
                    l[k] += wb[k] * pc[k];
                }
            }
            // Lanes summed in order: a tree here makes LLVM split the accumulator into 2-lane
            // pieces instead of one 8-lane register.
            *o = l.iter().sum();
        }
    }
}

impl MelBank {
    /// The mel bands of [`TILE`] frames at once from their power spectra stored bin-major
    /// (`power[k][f]`, `n_bins` rows): `out[m][f]`. Each band is the same sequential f32 sum
    /// over its non-zero bins as a per-frame product, with the frames in the vector lanes:
    /// no per-band horizontal sum, and the filter loop runs once per tile.
    #[inline(always)]
    pub fn apply_tile(&self, power: &[[f32; TILE]], out: &mut [[f32; TILE]]) {
        let power = &power[..self.n_bins];
        let mut taps = self.taps.as_slice();
        for (o, &(a, b)) in out.iter_mut().zip(&self.ranges) {
            let (w, rest) = taps.split_at(b - a);
            taps = rest;
            let mut acc = [0f32; TILE];
            for (&wk, p) in w.iter().zip(&power[a..b]) {
                for f in 0..TILE {
                    acc[f] += wk * p[f];
                }
            }
            *o = acc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_apply_matches_the_dense_product() {
        let bank = MelBank::new(22_050.0, 2048, 128).unwrap();
        // Every filter is padded to whole 8-lane blocks inside the spectrum.
        assert!(bank.blocked);
        for (m, &(start, n)) in bank.spans.iter().enumerate() {
            let (a, b) = bank.ranges[m];
            let len = n * LANES;
            assert!(start <= a && b <= start + len && len < b - a + LANES);
            assert!(start + len <= bank.n_bins);
        }
        let power: Vec<f32> = (0..bank.n_bins)
            .map(|k| ((k * 7919) % 1000) as f32 / 100.0 + 1e-3)
            .collect();
        let mut out = vec![0f32; bank.n_mels];
        bank.apply(&power, &mut out);
        for (m, &got) in out.iter().enumerate() {
            let want: f64 = (0..bank.n_bins)
                .map(|k| bank.weights[m * bank.n_bins + k] as f64 * power[k] as f64)
                .sum();
            assert!(
                ((got as f64 - want) / want).abs() < 1e-6,
                "filter {m}: {got} vs {want}"
            );
        }
        // Eight frames at once: frame f is the spectrum scaled by f + 1.
        let tile: Vec<[f32; TILE]> = power
            .iter()
            .map(|&p| std::array::from_fn(|f| p * (f + 1) as f32))
            .collect();
        let mut out_t = vec![[0f32; TILE]; bank.n_mels];
        bank.apply_tile(&tile, &mut out_t);
        for (m, o) in out_t.iter().enumerate() {
            for (f, &got) in o.iter().enumerate() {
                let want = out[m] as f64 * (f + 1) as f64;
                assert!(
                    ((got as f64 - want) / want).abs() < 1e-6,
                    "tile filter {m} frame {f}: {got} vs {want}"
                );
            }
        }
        // Settings that gave NaN or empty weights are refused.
        for (sr, n_fft, n_mels) in [
            (22_050.0, 0, 128),
            (22_050.0, 2048, 0),
            (0.0, 2048, 128),
            (f64::NAN, 2048, 128),
        ] {
            let e = MelBank::new(sr, n_fft, n_mels).unwrap_err().to_string();
            assert!(e.contains("mel_bank"), "{e}");
        }
        let e = MelBank::new(22_050.0, usize::MAX - 1, 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflows"), "{e}");
        // A bank too narrow to pad (fewer bins than a block) takes the exact ranges.
        let tiny = MelBank::new(22_050.0, 8, 2).unwrap();
        assert!(!tiny.blocked);
        let p = vec![1.0f32; tiny.n_bins];
        let mut o = vec![0f32; 2];
        tiny.apply(&p, &mut o);
        for (m, &got) in o.iter().enumerate() {
            let want: f32 = tiny.weights[m * tiny.n_bins..(m + 1) * tiny.n_bins]
                .iter()
                .sum();
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-6),
                "tiny filter {m}"
            );
        }
    }
}
