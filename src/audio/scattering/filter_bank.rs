//! Kymatio 0.3.0's 1-D Morlet filter bank, ported line by line from
//! `kymatio/scattering1d/filter_bank.py`, `utils.py` and `frontend/base_frontend.py` (`build`),
//! computed in f64 like the numpy reference and then stored sparsely in f32.
//!
//! The filters live in the Fourier domain at the padded length. Each is a smooth bump, so only a
//! short circular run of bins is above f32 resolution; storing that run (`Sparse`) instead of the
//! whole padded length keeps a 30 s clip's 64 filters in a few MB instead of ~250 MB, and makes the
//! multiply-and-periodise step proportional to the support.

use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use realfft::RealFftPlanner;

/// Kymatio's fixed constants (`ScatteringBase1D.build`).
pub const R_PSI: f64 = std::f64::consts::FRAC_1_SQRT_2;
pub const SIGMA0: f64 = 0.1;
pub const ALPHA: f64 = 5.0;

/// Bins below this fraction of a filter's peak are dropped: far below f32 resolution, so the
/// result differs from the dense filter by less than the f32 rounding already present.
const SPARSE_REL: f64 = 1e-9;

/// A real filter over `period` Fourier bins, non-zero only on the circular run
/// `lo, lo+1, …, lo+vals.len()-1` (indices mod `period`).
#[derive(Clone, Debug)]
pub struct Sparse {
    pub period: usize,
    pub lo: usize,
    pub vals: Vec<f32>,
}

impl Sparse {
    /// Extracts the shortest circular run holding every bin above `SPARSE_REL` of the peak.
    pub fn from_dense(h: &[f64]) -> Sparse {
        let period = h.len();
        let peak = h.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let thr = peak * SPARSE_REL;
        let keep: Vec<usize> = (0..period).filter(|&i| h[i].abs() > thr).collect();
        if keep.is_empty() {
            return Sparse {
                period,
                lo: 0,
                vals: Vec::new(),
            };
        }
        // The support is the complement of the largest circular gap between kept bins.
        let mut best_gap = 0usize;
        let mut lo = keep[0];
        for w in 0..keep.len() {
            let a = keep[w];
            let b = if w + 1 < keep.len() {
                keep[w + 1]
            } else {
                keep[0] + period
            };
            if b - a > best_gap {
                best_gap = b - a;
                lo = b % period;
            }
        }
        let len = period + 1 - best_gap;
        let vals = (0..len).map(|i| h[(lo + i) % period] as f32).collect();
        Sparse { period, lo, vals }
    }
}

/// One first- or second-order wavelet.
#[derive(Clone, Debug)]
pub struct Wavelet {
    pub xi: f64,
    pub sigma: f64,
    /// Maximal dyadic subsampling without aliasing (`get_max_dyadic_subsampling`).
    pub j: u32,
    /// `levels[k]`: the filter periodised to `n_padded / 2^k` bins (Kymatio's `'levels'`).
    pub levels: Vec<Sparse>,
}

/// Everything Kymatio's `Scattering1D(J, shape=n, Q)` builds before it sees a signal.
#[derive(Clone, Debug)]
pub struct FilterBank {
    pub j: u32,
    pub q: u32,
    pub n_input: usize,
    pub n_padded: usize,
    pub log2_n_padded: u32,
    pub pad_left: usize,
    pub pad_right: usize,
    /// `log2(T)`; T = 2^J (Kymatio's default averaging).
    pub log2_t: u32,
    /// Start/end of the unpadded signal after subsampling by `2^k`, for k = 0..=J.
    pub ind_start: Vec<usize>,
    pub ind_end: Vec<usize>,
    pub psi1: Arc<Vec<Wavelet>>,
    pub psi2: Arc<Vec<Wavelet>>,
    /// The low-pass filter at each subsampling level.
    pub phi: Arc<Vec<Sparse>>,
}

/// `adaptive_choice_P`: periods needed so the Gaussian tails fall below `eps`.
fn adaptive_choice_p(sigma: f64) -> usize {
    let val = (-2.0 * sigma * sigma * (1e-7f64).ln()).sqrt();
    (val + 1.0).ceil() as usize
}

/// `periodize_filter_fourier`: the mean of `nperiods` consecutive blocks.
fn periodize(h: &[f64], nperiods: usize) -> Vec<f64> {
    let n = h.len() / nperiods;
    let mut v = vec![0.0; n];
    for blk in h.chunks_exact(n) {
        for (a, b) in v.iter_mut().zip(blk) {
            *a += b;
        }
    }
    v.iter_mut().for_each(|a| *a /= nperiods as f64);
    v
}

/// A Gaussian `exp(-(f - xi)^2 / (2 sigma^2))` over the frequencies `[(1-P), P)` at resolution
/// `1/n`, periodised to `n` bins (the mean over the `2P - 1` periods). Terms below `e^-50`
/// (1e-22 of the peak, far below what survives the f32 storage) are skipped, not evaluated:
/// that makes building a 2^20-bin bank several times faster.
fn periodized_gauss(n: usize, p: usize, xi: f64, sigma: f64) -> Vec<f64> {
    let nperiods = 2 * p - 1;
    let mut v = vec![0.0f64; n];
    let reach = sigma * (2.0f64 * 50.0).sqrt();
    for r in 0..nperiods {
        let m = r as f64 + 1.0 - p as f64;
        // freq = m + k/n; keep |freq - xi| < reach.
        let lo = (((xi - reach - m) * n as f64).floor().max(0.0)) as usize;
        let hi = ((((xi + reach - m) * n as f64).ceil()).min(n as f64 - 1.0)).max(-1.0);
        if hi < 0.0 || lo >= n {
            continue;
        }
        for (k, a) in v.iter_mut().enumerate().take(hi as usize + 1).skip(lo) {
            // Same expression as numpy: arange(...) / float(N), then the Gaussian.
            let f = ((r * n + k) as f64 - ((p - 1) * n) as f64) / n as f64;
            let d = f - xi;
            *a += (-(d * d) / (2.0 * sigma * sigma)).exp();
        }
    }
    v.iter_mut().for_each(|a| *a /= nperiods as f64);
    v
}

/// `morlet_1d(N, xi, sigma)` (or `gauss_1d` when `xi` is `None`): the filter in the Fourier
/// domain, normalised to unit L1 norm in time.
pub fn morlet_1d(
    n: usize,
    xi: Option<f64>,
    sigma: f64,
    planner: &mut RealFftPlanner<f64>,
) -> Vec<f64> {
    let p = adaptive_choice_p(sigma).min(5);
    let low = if p == 1 {
        // Continuity around 0: the interval [-0.5, 0.5) (`np.fft.fftfreq`).
        (0..n)
            .map(|k| {
                let f = if k < n.div_ceil(2) {
                    k as f64
                } else {
                    k as f64 - n as f64
                } / n as f64;
                (-(f * f) / (2.0 * sigma * sigma)).exp()
            })
            .collect()
    } else {
        periodized_gauss(n, p, 0.0, sigma)
    };
    let mut h = match xi {
        Some(xi) if xi != 0.0 => {
            let gabor = periodized_gauss(n, p, xi, sigma);
            let kappa = gabor[0] / low[0];
            gabor.iter().zip(&low).map(|(g, l)| g - kappa * l).collect()
        }
        _ => low,
    };
    let l1: f64 = time_abs(&h, planner)
        .iter()
        .enumerate()
        .map(|(t, a)| if t == 0 || 2 * t == n { *a } else { 2.0 * a })
        .sum();
    h.iter_mut().for_each(|v| *v /= l1);
    h
}

/// `|ifft(h)[t]|` for `t = 0..=n/2` of a real spectrum `h` (numpy's 1/n included). For real `h`,
/// `ifft(h) = conj(fft(h)) / n`, and `|ifft(h)[n - t]| = |ifft(h)[t]|`: a real FFT gives it all
/// at half the cost of the complex inverse transform.
fn time_abs(h: &[f64], planner: &mut RealFftPlanner<f64>) -> Vec<f64> {
    let n = h.len();
    let r2c = planner.plan_fft_forward(n);
    let mut input = h.to_vec();
    let mut out = r2c.make_output_vec();
    r2c.process(&mut input, &mut out)
        .expect("realfft buffers sized by its own plan");
    // sqrt(norm_sqr), not hypot: several times faster, and no overflow at these magnitudes.
    out.iter().map(|c| c.norm_sqr().sqrt() / n as f64).collect()
}

/// `compute_sigma_psi`.
fn sigma_psi(xi: f64, q: u32, r: f64) -> f64 {
    let factor = 1.0 / 2f64.powf(1.0 / q as f64);
    let term1 = (1.0 - factor) / (1.0 + factor);
    let term2 = 1.0 / (2.0 * (1.0 / r).ln()).sqrt();
    xi * term1 * term2
}

/// `get_max_dyadic_subsampling`.
fn max_dyadic_subsampling(xi: f64, sigma: f64, alpha: f64) -> u32 {
    let upper = (xi + alpha * sigma).min(0.5);
    ((-upper.log2()).floor() - 1.0) as u32
}

/// `compute_xi_max`.
fn xi_max(q: u32) -> f64 {
    (1.0 / (1.0 + 2f64.powf(3.0 / q as f64))).max(0.35)
}

/// `compute_params_filterbank`: centre frequencies, widths and maximal subsamplings.
pub fn params_filterbank(sigma_min: f64, q: u32, alpha: f64, r: f64) -> Vec<(f64, f64, u32)> {
    let xi_max = xi_max(q);
    let sigma_max = sigma_psi(xi_max, q, r);
    let mut xis = Vec::new();
    let mut sigmas = Vec::new();
    let elbow_xi = if sigma_max <= sigma_min {
        sigma_max
    } else {
        xis.push(xi_max);
        sigmas.push(sigma_max);
        let step = 2f64.powf(1.0 / q as f64);
        // High-frequency (constant-Q) region: geometric progression of xi.
        let (mut x, mut s) = (xi_max, sigma_max);
        while s > sigma_min * step {
            x /= step;
            s /= step;
            xis.push(x);
            sigmas.push(s);
        }
        x
    };
    // Low-frequency (constant-bandwidth) region: arithmetic progression of xi.
    for k in 1..q {
        xis.push(elbow_xi - k as f64 / q as f64 * elbow_xi);
        sigmas.push(sigma_min);
    }
    xis.iter()
        .zip(&sigmas)
        .map(|(&x, &s)| (x, s, max_dyadic_subsampling(x, s, alpha)))
        .collect()
}

/// `compute_temporal_support` for one filter given in the Fourier domain.
fn temporal_support(h_f: &[f64], planner: &mut RealFftPlanner<f64>) -> usize {
    let half = h_f.len() / 2;
    let abs = time_abs(h_f, planner);
    // residual[i] = sum(abs[i..half]); first i with residual <= 1e-3, plus one.
    let mut residual = vec![0.0; half];
    let mut acc = 0.0;
    for i in (0..half).rev() {
        acc += abs[i];
        residual[i] = acc;
    }
    match residual.iter().position(|&r| r <= 1e-3) {
        Some(i) => i + 1,
        None => half,
    }
}

/// The wavelets and low-pass filter of a bank: psi1, psi2 (all levels) and phi (all levels).
type Filters = (Arc<Vec<Wavelet>>, Arc<Vec<Wavelet>>, Arc<Vec<Sparse>>);

/// The filters depend only on the padded length, J and Q, not on the clip length: clips of
/// slightly different lengths (a folder of ~30 s tracks) share them. Building a 2^20-bin bank
/// takes seconds, several times one transform, so the last few banks are kept.
fn filters(
    n_padded: usize,
    j: u32,
    q: u32,
    p1: &[(f64, f64, u32)],
    p2: &[(f64, f64, u32)],
) -> Filters {
    type Cache = Mutex<Vec<((usize, u32, u32), Filters)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    const KEEP: usize = 4;
    let key = (n_padded, j, q);
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    if let Some((_, f)) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(k, _)| *k == key)
    {
        return f.clone();
    }
    // Built outside the lock: another thread may build the same bank meanwhile, which only
    // costs time.
    let f = build_filters(n_padded, j, p1, p2);
    let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
    if c.len() >= KEEP {
        c.remove(0);
    }
    c.push((key, f.clone()));
    f
}

/// Kymatio's `scattering_filter_factory` for `T = 2^J`, at `n_padded` bins.
fn build_filters(
    n_padded: usize,
    j: u32,
    p1: &[(f64, f64, u32)],
    p2: &[(f64, f64, u32)],
) -> Filters {
    let j_pad = n_padded.trailing_zeros();
    let t = 1usize << j;
    let log2_t = j;
    let max_j1 = p1.iter().map(|p| p.2).max().unwrap_or(0);
    let max_j2 = p2.iter().map(|p| p.2).max().unwrap_or(0);
    // Level-0 filters at the padded length, built in parallel (one f64 FFT each).
    enum Kind {
        Psi1(usize),
        Psi2(usize),
        Phi,
    }
    let mut kinds: Vec<Kind> = (0..p1.len()).map(Kind::Psi1).collect();
    kinds.extend((0..p2.len()).map(Kind::Psi2));
    kinds.push(Kind::Phi);
    let built: Vec<(Kind, Vec<Sparse>)> = kinds
        .into_par_iter()
        .map_init(RealFftPlanner::<f64>::new, |pl, kind| {
            let levels = match &kind {
                Kind::Psi1(i) => {
                    let (xi, s, _) = p1[*i];
                    vec![Sparse::from_dense(&morlet_1d(n_padded, Some(xi), s, pl))]
                }
                Kind::Psi2(i) => {
                    let (xi, s, j2) = p2[*i];
                    // Inputs after order 1 are subsampled by at most max{j1 : j2 > j1}.
                    let max_sub = p1
                        .iter()
                        .map(|p| p.2)
                        .filter(|&j1| j2 > j1)
                        .max()
                        .unwrap_or(0)
                        .min(j_pad);
                    let h0 = morlet_1d(n_padded, Some(xi), s, pl);
                    let mut lv = vec![Sparse::from_dense(&h0)];
                    for k in 1..=max_sub {
                        lv.push(Sparse::from_dense(&periodize(&h0, 1 << k)));
                    }
                    lv
                }
                Kind::Phi => {
                    let max_sub = max_j1.max(max_j2).min(log2_t).min(j_pad);
                    let h0 = morlet_1d(n_padded, None, SIGMA0 / t as f64, pl);
                    let mut lv = vec![Sparse::from_dense(&h0)];
                    for k in 1..=max_sub {
                        lv.push(Sparse::from_dense(&periodize(&h0, 1 << k)));
                    }
                    lv
                }
            };
            (kind, levels)
        })
        .collect();
    let mut psi1 = Vec::new();
    let mut psi2 = Vec::new();
    let mut phi = Vec::new();
    for (kind, levels) in built {
        match kind {
            Kind::Psi1(i) => psi1.push(Wavelet {
                xi: p1[i].0,
                sigma: p1[i].1,
                j: p1[i].2,
                levels,
            }),
            Kind::Psi2(i) => psi2.push(Wavelet {
                xi: p2[i].0,
                sigma: p2[i].1,
                j: p2[i].2,
                levels,
            }),
            Kind::Phi => phi = levels,
        }
    }
    (Arc::new(psi1), Arc::new(psi2), Arc::new(phi))
}

/// Why a configuration cannot be built (turned into a typed error by the caller).
pub type BuildError = String;

impl FilterBank {
    /// Mirrors `ScatteringBase1D.build` + `create_filters` for `Q = (q, 1)`, `T = 2^J`.
    pub fn new(j: u32, q: u32, n_input: usize) -> Result<FilterBank, BuildError> {
        if j == 0 || j > 24 {
            return Err(format!("J must be in 1..=24, got {j}"));
        }
        if q == 0 || q > 64 {
            return Err(format!("Q must be in 1..=64, got {q}"));
        }
        let t = 1usize << j;
        if n_input < t {
            return Err(format!(
                "a clip of {n_input} samples is shorter than the averaging scale T = 2^J = {t}; \
                 use a smaller J or a longer clip"
            ));
        }
        let log2_t = j;
        let mut planner = RealFftPlanner::<f64>::new();
        let phi_in = morlet_1d(n_input, None, SIGMA0 / t as f64, &mut planner);
        let min_to_pad = 3 * temporal_support(&phi_in, &mut planner);
        let j_max_support = ((3 * n_input - 2) as f64).log2().floor() as u32;
        let j_pad = (((n_input + 2 * min_to_pad) as f64).log2().ceil() as u32).min(j_max_support);
        let n_padded = 1usize << j_pad;
        if n_padded < n_input {
            return Err(format!(
                "padding support {n_padded} is smaller than the clip ({n_input} samples)"
            ));
        }
        let to_add = n_padded - n_input;
        let pad_left = to_add / 2;
        let pad_right = to_add - pad_left;
        if pad_left.max(pad_right) >= n_input {
            return Err(format!(
                "a clip of {n_input} samples would need {} samples of reflect padding (at most {} \
                 allowed); use a longer clip or a smaller J",
                pad_left.max(pad_right),
                n_input - 1
            ));
        }
        let mut ind_start = vec![pad_left];
        let mut ind_end = vec![pad_left + n_input];
        for k in 1..=(j.max(log2_t) as usize) {
            ind_start.push(ind_start[k - 1] / 2 + ind_start[k - 1] % 2);
            ind_end.push(ind_end[k - 1] / 2 + ind_end[k - 1] % 2);
        }
        if ind_end[log2_t as usize] <= ind_start[log2_t as usize] {
            return Err(format!(
                "a clip of {n_input} samples gives no output frame at J = {j}"
            ));
        }

        let sigma_min = SIGMA0 / 2f64.powi(j as i32);
        let p1 = params_filterbank(sigma_min, q, ALPHA, R_PSI);
        let p2 = params_filterbank(sigma_min, 1, ALPHA, R_PSI);
        if p1.is_empty() {
            return Err(format!("J = {j}, Q = {q} gives no first-order wavelet"));
        }
        let max_j1 = p1.iter().map(|p| p.2).max().unwrap_or(0);
        let max_j2 = p2.iter().map(|p| p.2).max().unwrap_or(0);
        // Kymatio subsamples by at most 2^min(j, log2_T); deeper levels are never read.
        if max_j1.min(log2_t) > j_pad || max_j2.min(log2_t) > j_pad {
            return Err(format!("padded length 2^{j_pad} is too short for J = {j}"));
        }

        let (psi1, psi2, phi) = filters(n_padded, j, q, &p1, &p2);
        Ok(FilterBank {
            j,
            q,
            n_input,
            n_padded,
            log2_n_padded: j_pad,
            pad_left,
            pad_right,
            log2_t,
            ind_start,
            ind_end,
            psi1,
            psi2,
            phi,
        })
    }

    /// Output frames per path: the unpadded span after subsampling by `T`.
    pub fn n_frames(&self) -> usize {
        let k = self.log2_t as usize;
        self.ind_end[k] - self.ind_start[k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_support_wraps_around_zero() {
        let mut h = vec![0.0; 16];
        h[15] = 1.0;
        h[0] = 2.0;
        h[1] = 1.0;
        let s = Sparse::from_dense(&h);
        assert_eq!((s.lo, s.vals.len()), (15, 3));
        assert_eq!(s.vals, vec![1.0, 2.0, 1.0]);
    }

    #[test]
    fn clips_with_the_same_padded_length_share_the_filters() {
        let a = FilterBank::new(4, 2, 700).unwrap();
        let b = FilterBank::new(4, 2, 705).unwrap();
        let c = FilterBank::new(4, 3, 700).unwrap();
        assert_eq!(a.n_padded, b.n_padded);
        assert_ne!(a.pad_left, b.pad_left);
        assert!(Arc::ptr_eq(&a.psi1, &b.psi1) && Arc::ptr_eq(&a.phi, &b.phi));
        assert!(!Arc::ptr_eq(&a.psi1, &c.psi1));
    }

    #[test]
    fn kymatio_parameters_for_the_default_bank() {
        // Values printed by Kymatio 0.3.0 for J = 8, Q = 8 (and Q = 1 for order 2).
        let p1 = params_filterbank(SIGMA0 / 256.0, 8, ALPHA, R_PSI);
        let js: Vec<u32> = p1.iter().map(|p| p.2).collect();
        assert_eq!(p1.len(), 54);
        assert_eq!(&js[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(*js.last().unwrap(), 7);
        let p2 = params_filterbank(SIGMA0 / 256.0, 1, ALPHA, R_PSI);
        let j2: Vec<u32> = p2.iter().map(|p| p.2).collect();
        assert_eq!(j2, vec![0, 0, 0, 1, 2, 3, 4, 5, 6]);
        assert!((p2[1].0 - 0.175).abs() < 1e-15);
    }
}
