//! The Slaney mel filterbank exactly as librosa 0.11's
//! `filters.mel(sr, n_fft, n_mels=128, fmin=0, fmax=sr/2, htk=False, norm="slaney")`:
//! triangles between consecutive points of the Slaney mel scale (linear below 1 kHz,
//! logarithmic above), each scaled by `2 / (f[i+2] − f[i])` so it has unit area.
//! Computed in f64, stored as f32 (librosa's default dtype).

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
}

impl MelBank {
    pub fn new(sr: f64, n_fft: usize, n_mels: usize) -> Self {
        let n_bins = n_fft / 2 + 1;
        let fft_freqs: Vec<f64> = (0..n_bins).map(|k| k as f64 * sr / n_fft as f64).collect();
        let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
        let mel_f: Vec<f64> = (0..n_mels + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
            .collect();
        let mut weights = vec![0f32; n_mels * n_bins];
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
        MelBank {
            n_mels,
            n_bins,
            weights,
            ranges,
        }
    }

    /// `out[m] = Σ_k w[m, k] · power[k]` for one frame (sparse; f32 like librosa's einsum).
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        for (m, o) in out.iter_mut().enumerate() {
            let (a, b) = self.ranges[m];
            let w = &self.weights[m * self.n_bins + a..m * self.n_bins + b];
            *o = w.iter().zip(&power[a..b]).map(|(w, p)| w * p).sum();
        }
    }
}
