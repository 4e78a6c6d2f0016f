//! Harmonic pitch class profile with Essentia's defaults, read from Essentia's
//! `SpectralPeaks`/`PeakDetection` and `HPCP` sources (`spectralpeaks.cpp`,
//! `peakdetection.cpp`, `hpcp.cpp`):
//!
//! 1. Peaks of the magnitude spectrum between 40 and 5,000 Hz: local maxima above 0 found by
//!    walking down and up the slope, plateaus resolved to their middle, each refined by a
//!    parabola through the three bins (`δ = ½ (l − r) / (l − 2m + r)`, value
//!    `m − ¼ (l − r) δ`); at most 100 peaks, the lowest in frequency (`orderBy="frequency"`).
//! 2. Each peak adds `cos²(π d) · mag²` to the pitch classes within half a semitone of it
//!    (`d` the distance in semitones, window 1 semitone, reference 440 Hz, no harmonics).
//! 3. `bandPreset`: peaks below 500 Hz and above it go to two profiles, each normalised to a
//!    maximum of 1, summed, and normalised to a maximum of 1 again (`unitMax`).
//!
//! Arithmetic is f32 like Essentia's `Real`.

/// HPCP parameters (Essentia's defaults, `minFrequency` 40 and `maxFrequency` 5,000 Hz).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct HpcpConfig {
    pub sample_rate: f32,
    pub min_frequency: f32,
    pub max_frequency: f32,
    pub split_frequency: f32,
    pub reference_frequency: f32,
    pub max_peaks: u32,
    /// Weighting window width in semitones.
    pub window_size: f32,
}

impl HpcpConfig {
    pub fn new(sample_rate: f32) -> Self {
        HpcpConfig {
            sample_rate,
            min_frequency: 40.0,
            max_frequency: 5000.0,
            split_frequency: 500.0,
            reference_frequency: 440.0,
            max_peaks: 100,
            window_size: 1.0,
        }
    }
}

#[inline]
fn interpolate(l: f32, m: f32, r: f32, bin: usize) -> (f32, f32) {
    let d = 0.5 * ((l - r) / (l - 2.0 * m + r));
    (bin as f32 + d, m - 0.25 * (l - r) * d)
}

/// Spectral peaks `(frequency Hz, magnitude)` of a magnitude spectrum, ascending in frequency,
/// as Essentia's `SpectralPeaks(magnitudeThreshold=0, orderBy="frequency")`.
pub fn spectral_peaks(a: &[f32], cfg: &HpcpConfig, out: &mut Vec<(f32, f32)>) {
    out.clear();
    let size = a.len();
    if size < 3 {
        return;
    }
    let thr = 0.0f32;
    let scale = (cfg.sample_rate / 2.0) / (size - 1) as f32;
    let mut i = ((cfg.min_frequency / scale).ceil().max(0.0)) as usize;
    if i + 1 < size && a[i] > a[i + 1] && a[i] > thr {
        out.push((i as f32 * scale, a[i]));
    }
    loop {
        while i + 1 < size - 1 && a[i] >= a[i + 1] {
            i += 1;
        }
        while i + 1 < size - 1 && a[i] < a[i + 1] {
            i += 1;
        }
        let mut j = i;
        while j + 1 < size - 1 && a[j] == a[j + 1] {
            j += 1;
        }
        if j + 1 < size - 1 && a[j + 1] < a[j] && a[j] > thr {
            let (bin, val) = if j != i {
                ((i + j) as f32 * 0.5, a[i])
            } else {
                interpolate(a[j - 1], a[j], a[j + 1], j)
            };
            let pos = bin * scale;
            if pos > cfg.max_frequency {
                break;
            }
            out.push((pos, val));
        }
        i = j;
        if i + 1 >= size - 1 {
            if i == size - 2 && a[i - 1] < a[i] && a[i + 1] < a[i] && a[i] > thr {
                let (bin, val) = interpolate(a[i - 1], a[i], a[i + 1], j);
                out.push((bin * scale, val));
            }
            break;
        }
    }
    let pos = cfg.max_frequency / scale;
    if ((size - 2) as f32) < pos
        && pos <= (size - 1) as f32
        && a[size - 1] > a[size - 2]
        && a[size - 1] > thr
    {
        out.push(((size - 1) as f32 * scale, a[size - 1]));
    }
    out.truncate(cfg.max_peaks as usize);
}

fn add_contribution(freq: f32, mag: f32, cfg: &HpcpConfig, h: &mut [f32; 12]) {
    let size = 12i32;
    let resolution = 1.0f32; // bins per semitone
    let bin_f = (freq / cfg.reference_frequency).log2() * size as f32;
    let left = (bin_f - resolution * cfg.window_size / 2.0).ceil() as i32;
    let right = (bin_f + resolution * cfg.window_size / 2.0).floor() as i32;
    for i in left..=right {
        let d = (bin_f - i as f32).abs() / resolution / cfg.window_size;
        let w = (std::f32::consts::PI * d).cos();
        h[i.rem_euclid(size) as usize] += w * w * (mag * mag);
    }
}

fn normalize(h: &mut [f32; 12]) {
    let m = h.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if m != 0.0 {
        for v in h.iter_mut() {
            *v /= m;
        }
    }
}

/// HPCP of one frame from its spectral peaks.
pub fn hpcp_from_peaks(peaks: &[(f32, f32)], cfg: &HpcpConfig) -> [f32; 12] {
    let (mut lo, mut hi) = ([0f32; 12], [0f32; 12]);
    for &(f, m) in peaks {
        if f >= cfg.min_frequency && f <= cfg.max_frequency {
            let h = if f < cfg.split_frequency {
                &mut lo
            } else {
                &mut hi
            };
            add_contribution(f, m, cfg, h);
        }
    }
    normalize(&mut lo);
    normalize(&mut hi);
    let mut out = [0f32; 12];
    for k in 0..12 {
        out[k] = lo[k] + hi[k];
    }
    normalize(&mut out);
    out
}

/// HPCP of one frame of a magnitude spectrum (`peaks` is scratch space).
pub fn hpcp_frame(mag: &[f32], cfg: &HpcpConfig, peaks: &mut Vec<(f32, f32)>) -> [f32; 12] {
    spectral_peaks(mag, cfg, peaks);
    hpcp_from_peaks(peaks, cfg)
}
