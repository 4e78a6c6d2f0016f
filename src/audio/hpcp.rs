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
//! Arithmetic is f32 like Essentia's `Real`. [`hpcp_frame`] is the reference;
//! [`HpcpFast`] is the CPU feature path's equivalent (same peaks, vectorisable weighting).

use crate::backend::cpu::math::{cos_pi_f32, log2_f32};

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

#[inline(always)]
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

#[inline(always)]
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

/// Most peaks [`HpcpFast`] keeps (Essentia's default `maxPeaks`).
const FAST_MAX_PEAKS: usize = 100;

/// The CPU feature path's HPCP: the same peaks and weights as [`hpcp_frame`], computed from
/// the power spectrum without the branchy slope walk.
///
/// * Only bins that can hold a peak at or below `max_frequency` are looked at (bins 4–466 of
///   1,025 with the defaults). Peaks come out of the walk in increasing frequency and the walk
///   stops at the first one above `max_frequency`, so the peaks it keeps are exactly the
///   ascent ends `i` past the first bin (`a[i−1] < a[i] ≥ a[i+1]`, `a[i] > 0`) whose
///   plateau `a[i] = … = a[j]` is followed by a fall, up to the first above the maximum.
///   Those candidates are flagged by a vectorisable compare over the bins, then visited.
/// * Magnitudes are `√power` only on those bins.
/// * The weighting uses the vectorisable [`log2_f32`] and [`cos_pi_f32`] (≤ 3e-7 error)
///   instead of libm: `bin = 12·log2(f / f_ref)`, nearest pitch class `n`, weight
///   `cos²(π (bin − n))`; a peak exactly between two classes adds to both, as in Essentia.
///
/// Configurations the fast path does not cover (a window other than one semitone, more than
/// 100 peaks, a maximum frequency near Nyquist) fall back to [`hpcp_frame`].
#[derive(Clone, Debug)]
pub struct HpcpFast {
    cfg: HpcpConfig,
    /// Bins of the one-sided spectrum.
    size: usize,
    /// `(sr / 2) / (size − 1)`, Hz per bin.
    scale: f32,
    /// First bin of the walk (`⌈min_frequency / scale⌉`).
    start: usize,
    /// Last candidate bin that can hold a peak ≤ `max_frequency` (a peak at bin `j` lies
    /// within half a bin of `j`); `None` selects the fallback.
    last: Option<usize>,
}

/// Per-thread buffers of [`HpcpFast`].
pub struct HpcpScratch {
    mag: Vec<f32>,
    flags: Vec<u8>,
    freq: [f32; FAST_MAX_PEAKS],
    mag2: [f32; FAST_MAX_PEAKS],
    bin: [f32; FAST_MAX_PEAKS],
    slot: [u32; FAST_MAX_PEAKS],
    weight: [f32; FAST_MAX_PEAKS],
    cl: [f32; FAST_MAX_PEAKS],
    cm: [f32; FAST_MAX_PEAKS],
    cr: [f32; FAST_MAX_PEAKS],
    peaks: Vec<(f32, f32)>,
}

impl HpcpFast {
    pub fn new(cfg: HpcpConfig, size: usize) -> Self {
        let scale = (cfg.sample_rate / 2.0) / (size.max(2) - 1) as f32;
        let start = ((cfg.min_frequency / scale).ceil().max(0.0)) as usize;
        let last = ((cfg.max_frequency / scale + 0.5).floor() + 1.0).max(0.0) as usize;
        let fast = cfg.window_size == 1.0
            && cfg.max_peaks as usize <= FAST_MAX_PEAKS
            && size >= 8
            && start >= 1
            && last + 4 < size;
        HpcpFast {
            cfg,
            size,
            scale,
            start,
            last: fast.then_some(last),
        }
    }

    pub fn scratch(&self) -> HpcpScratch {
        HpcpScratch {
            mag: vec![0.0; self.size],
            flags: vec![0; self.size + 8],
            freq: [0.0; FAST_MAX_PEAKS],
            mag2: [0.0; FAST_MAX_PEAKS],
            bin: [0.0; FAST_MAX_PEAKS],
            slot: [0; FAST_MAX_PEAKS],
            weight: [0.0; FAST_MAX_PEAKS],
            cl: [0.0; FAST_MAX_PEAKS],
            cm: [0.0; FAST_MAX_PEAKS],
            cr: [0.0; FAST_MAX_PEAKS],
            peaks: Vec::with_capacity(FAST_MAX_PEAKS + 8),
        }
    }

    /// Spectral peaks at or below `max_frequency` as `(Hz, magnitude)`, ascending, at most
    /// `max_peaks`: [`spectral_peaks`] of `√power` without the peaks above the maximum.
    /// Returns the count written to `s.freq` / `s.mag2` (squared magnitudes).
    #[inline(always)]
    fn peaks(&self, power: &[f32], last: usize, s: &mut HpcpScratch) -> usize {
        let (start, scale, max_f) = (self.start, self.scale, self.cfg.max_frequency);
        let max_peaks = self.cfg.max_peaks as usize;
        let HpcpScratch {
            mag,
            flags,
            freq,
            mag2,
            cl,
            cm,
            cr,
            ..
        } = s;
        let a = &mut mag[..last + 2];
        for (m, &p) in a.iter_mut().zip(&power[..last + 2]) {
            *m = p.sqrt();
        }
        let a = &*a;
        // Candidates in order, as (bin, left, middle, right) for the parabola. A peak taken
        // as is (the first bin, a plateau's middle) is stored as (bin, 0, value, 0): the
        // parabola then gives exactly that bin (+ −0) and that value (− 0).
        let mut n = 0;
        if max_peaks > 0 && a[start] > a[start + 1] && a[start] > 0.0 {
            (freq[0], cl[0], cm[0], cr[0]) = (start as f32, 0.0, a[start], 0.0);
            n = 1;
        }
        // Ascent ends with a positive value: a[k-1] < a[k] >= a[k+1], k in start+1..=last.
        let flags = &mut flags[start + 1..=last];
        for (k, f) in flags.iter_mut().enumerate() {
            let k = k + start + 1;
            *f = ((a[k - 1] < a[k]) & (a[k] >= a[k + 1]) & (a[k] > 0.0)) as u8;
        }
        // Plateaus may run past the bins computed above: those values are recomputed (exactly).
        let at = |k: usize| power[k].sqrt();
        let size = self.size;
        let mut base = start + 1;
        'scan: for word in flags.chunks(8) {
            let mut bytes = [0u8; 8];
            bytes[..word.len()].copy_from_slice(word);
            let mut w = u64::from_le_bytes(bytes);
            while w != 0 {
                if n == max_peaks {
                    break 'scan;
                }
                let i = base + (w.trailing_zeros() / 8) as usize;
                w &= w - 1;
                let lmr = &a[i - 1..i + 2];
                (freq[n], cl[n], cm[n], cr[n]) = (i as f32, lmr[0], lmr[1], lmr[2]);
                if lmr[1] == lmr[2] {
                    // Not a strict maximum (the flag gave a[i-1] < a[i] >= a[i+1]) but a
                    // plateau: a peak only if it falls at its end; Essentia takes its middle.
                    let mut j = i;
                    while j + 1 < size - 1 && at(j) == at(j + 1) {
                        j += 1;
                    }
                    if !(j + 1 < size - 1 && at(j + 1) < at(j)) {
                        continue;
                    }
                    (freq[n], cl[n], cm[n], cr[n]) = ((i + j) as f32 * 0.5, 0.0, a[i], 0.0);
                }
                n += 1;
            }
            base += 8;
        }
        // Vectorised parabola (the same operations as `interpolate`), then the cut at the
        // first peak above the maximum (positions increase along the candidates).
        for p in 0..n {
            let (l, m, r) = (cl[p], cm[p], cr[p]);
            let d = 0.5 * ((l - r) / (l - 2.0 * m + r));
            freq[p] = (freq[p] + d) * scale;
            let v = m - 0.25 * (l - r) * d;
            mag2[p] = v * v;
        }
        freq[..n].iter().position(|&f| f > max_f).unwrap_or(n)
    }

    /// HPCP of one frame of a power spectrum (`size` values).
    #[inline(always)]
    pub fn frame(&self, power: &[f32], s: &mut HpcpScratch) -> [f32; 12] {
        let Some(last) = self.last else {
            let mag: Vec<f32> = power.iter().map(|p| p.sqrt()).collect();
            return hpcp_frame(&mag, &self.cfg, &mut s.peaks);
        };
        let n = self.peaks(power, last, s);
        let inv_ref = 1.0 / self.cfg.reference_frequency;
        let (min_f, max_f, split) = (
            self.cfg.min_frequency,
            self.cfg.max_frequency,
            self.cfg.split_frequency,
        );
        let (freq, mag2) = (&s.freq[..n], &s.mag2[..n]);
        // Two vectorised passes: semitones from the reference; then the weighted squared
        // magnitude (0 outside min..max, and for a peak exactly half-way between two
        // classes, added below) and its slot: the class in the low (< split) or high profile.
        let bins = &mut s.bin[..n];
        for (b, &f) in bins.iter_mut().zip(freq) {
            *b = 12.0 * log2_f32(f * inv_ref);
        }
        let mut ties = 0u32;
        for (((w, sl), &b), (&f, &m2)) in s.weight[..n]
            .iter_mut()
            .zip(&mut s.slot[..n])
            .zip(&*bins)
            .zip(freq.iter().zip(mag2))
        {
            let near = (b + ROUND) - ROUND;
            let d = b - near;
            let c = cos_pi_f32(d);
            let keep = (f >= min_f) & (f <= max_f);
            let tie = keep & (d.abs() == 0.5);
            ties += tie as u32;
            *w = if keep & !tie { c * c * m2 } else { 0.0 };
            // Class of the integer `near` (|near| < 2^20): x − 12·⌊x / 12⌋ with x = near + 48
            // ≥ 0, the floor as round((x − 5.5) / 12), which is never half-way.
            let x = near + 48.0;
            let q = ((x - 5.5) * (1.0 / 12.0) + ROUND) - ROUND;
            let slot = x - 12.0 * q + if f < split { 0.0 } else { 12.0 };
            // A whole number in 0..24 (for frequencies outside min..max, whose weight is 0,
            // anything): read from the mantissa of slot + 2^23 with bit operations, which
            // vectorise where a saturating float → int cast does not.
            *sl = (slot + 8_388_608.0).to_bits() & 31;
        }
        // Scalar pass: four interleaved histograms, so that consecutive peaks of the same
        // class (common at high frequencies) do not wait on each other.
        let mut hs = [[0f32; 32]; 4];
        for (p, (&sl, &w)) in s.slot[..n].iter().zip(&s.weight[..n]).enumerate() {
            hs[p & 3][(sl & 31) as usize] += w;
        }
        let mut h = [0f32; 24];
        for (k, v) in h.iter_mut().enumerate() {
            *v = (hs[0][k] + hs[1][k]) + (hs[2][k] + hs[3][k]);
        }
        if ties > 0 {
            // Half-way: Essentia's one-semitone window covers both neighbours (each with
            // weight cos²(π/2) ≈ 0).
            for p in 0..n {
                let (b, f) = (bins[p], freq[p]);
                if f >= min_f && f <= max_f && (b - ((b + ROUND) - ROUND)).abs() == 0.5 {
                    let base = if f < split { 0 } else { 12 };
                    let w = cos_pi_f32(0.5);
                    h[base + class(b - 0.5)] += w * w * mag2[p];
                    h[base + class(b + 0.5)] += w * w * mag2[p];
                }
            }
        }
        let mut lo: [f32; 12] = h[..12].try_into().unwrap_or([0.0; 12]);
        let mut hi: [f32; 12] = h[12..].try_into().unwrap_or([0.0; 12]);
        normalize(&mut lo);
        normalize(&mut hi);
        let mut out = [0f32; 12];
        for k in 0..12 {
            out[k] = lo[k] + hi[k];
        }
        normalize(&mut out);
        out
    }
}

/// 1.5 · 2^23: `(x + ROUND) − ROUND` rounds `|x| < 2^22` to the nearest integer (ties to
/// even) without a libm call.
const ROUND: f32 = 12_582_912.0;

/// Pitch class of a whole number of semitones from the reference.
#[inline]
fn class(semitones: f32) -> usize {
    (semitones as i32).rem_euclid(12) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const SIZE: usize = 1025;

    /// Power spectra that exercise the walk: noise, 1/f with sparse tones, quantised values
    /// (plateaus, including plateaus that rise again), zero runs, silence, and a spectrum
    /// rising to Nyquist (the walk runs off the end).
    fn spectra() -> Vec<Vec<f32>> {
        let mut r = rand::rngs::StdRng::seed_from_u64(7);
        let mut v = Vec::new();
        for _ in 0..40 {
            v.push((0..SIZE).map(|_| r.random_range(0.0f32..1.0)).collect());
        }
        for _ in 0..40 {
            let mut s: Vec<f32> = (1..=SIZE)
                .map(|k| r.random_range(0.0f32..1e-3) / k as f32)
                .collect();
            for _ in 0..12 {
                let k = r.random_range(2..SIZE - 2);
                let a = r.random_range(0.1f32..50.0);
                s[k] += a;
                s[k - 1] += a * 0.3;
                s[k + 1] += a * r.random_range(0.0f32..0.6);
            }
            v.push(s);
        }
        for _ in 0..40 {
            // Few distinct values: many exact ties and plateaus.
            v.push((0..SIZE).map(|_| r.random_range(0..4) as f32).collect());
        }
        for _ in 0..10 {
            let mut s: Vec<f32> = (0..SIZE).map(|_| r.random_range(0.0f32..2.0)).collect();
            let a = r.random_range(0..SIZE - 100);
            s[a..a + 100].fill(0.0);
            v.push(s);
        }
        v.push(vec![0.0; SIZE]);
        v.push((0..SIZE).map(|k| k as f32).collect());
        v.push((0..SIZE).map(|k| (SIZE - k) as f32).collect());
        v
    }

    #[test]
    fn fast_peaks_are_the_walks_peaks_up_to_the_maximum() {
        let cfg = HpcpConfig::new(22_050.0);
        let fast = HpcpFast::new(cfg, SIZE);
        let last = fast.last.expect("the defaults take the fast path");
        let mut s = fast.scratch();
        let mut want = Vec::new();
        for (i, p) in spectra().iter().enumerate() {
            let mag: Vec<f32> = p.iter().map(|v| v.sqrt()).collect();
            spectral_peaks(&mag, &cfg, &mut want);
            want.retain(|&(f, _)| f <= cfg.max_frequency);
            let n = fast.peaks(p, last, &mut s);
            let got: Vec<(f32, f32)> = (0..n).map(|k| (s.freq[k], s.mag2[k])).collect();
            let want: Vec<(f32, f32)> = want.iter().map(|&(f, m)| (f, m * m)).collect();
            assert_eq!(got, want, "spectrum {i}");
        }
    }

    #[test]
    fn fast_hpcp_matches_the_reference() {
        let cfg = HpcpConfig::new(22_050.0);
        let fast = HpcpFast::new(cfg, SIZE);
        let mut s = fast.scratch();
        let mut peaks = Vec::new();
        let mut worst = 0f32;
        for p in spectra() {
            let mag: Vec<f32> = p.iter().map(|v| v.sqrt()).collect();
            let want = hpcp_frame(&mag, &cfg, &mut peaks);
            let got = fast.frame(&p, &mut s);
            for (g, w) in got.iter().zip(&want) {
                worst = worst.max((g - w).abs());
            }
        }
        // Unit-max profiles; the only difference is log2 (≤ 3 ulp of a value up to 3.5,
        // times 12 semitones) and cos (≤ 3e-7), i.e. ≈ 1e-5 semitone, times the weight's
        // slope (≤ π).
        assert!(worst < 1e-4, "max abs difference {worst}");
        // A window other than one semitone takes the reference path, bit for bit.
        let wide = HpcpConfig {
            window_size: 4.0 / 3.0,
            ..cfg
        };
        let fb = HpcpFast::new(wide, SIZE);
        assert!(fb.last.is_none());
        for p in spectra().iter().take(5) {
            let mag: Vec<f32> = p.iter().map(|v| v.sqrt()).collect();
            assert_eq!(fb.frame(p, &mut s), hpcp_frame(&mag, &wide, &mut peaks));
        }
    }

    #[test]
    fn one_peak_and_class_wrap_around() {
        let cfg = HpcpConfig::new(22_050.0);
        let fast = HpcpFast::new(cfg, SIZE);
        let mut s = fast.scratch();
        // One strict peak at bin 60 (≈ 646 Hz).
        let mut p = vec![0.0f32; SIZE];
        p[59] = 1.0;
        p[60] = 4.0;
        p[61] = 1.0;
        let mag: Vec<f32> = p.iter().map(|v| v.sqrt()).collect();
        let want = hpcp_frame(&mag, &cfg, &mut s.peaks);
        assert_eq!(fast.frame(&p, &mut s), want);
        assert_eq!(class(-0.0), 0);
        assert_eq!(class(-1.0), 11);
        assert_eq!(class(13.0), 1);
    }
}
