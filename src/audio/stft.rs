//! Short-time Fourier transform as librosa 0.11 computes it: `n_fft` 2048, hop 512, periodic
//! Hann window, centred frames (the signal is padded with `n_fft / 2` zeros on both sides,
//! `pad_mode="constant"`), power 2. Frame `t` covers samples `t·hop − n_fft/2 .. t·hop + n_fft/2`.
//!
//! Clips of a batch are stored one per row, padded with zeros to the longest. Zero padding is
//! exactly what the centred frames see past the end of a clip, so a clip's frames do not depend
//! on its neighbours; frames past a clip's own count are written as zeros so per-clip maxima
//! downstream (`power_to_db`) see only real frames.

use std::sync::Arc;

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::{HOP, N_BINS, N_FFT};

/// Periodic Hann window of length `n` (scipy `get_window("hann", n, fftbins=True)`).
pub fn hann(n: usize) -> Vec<f32> {
    (0..n)
        .map(|m| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * m as f64 / n as f64).cos()) as f32)
        .collect()
}

/// `exp(-2πi k / n)` for `k` in `0..n`, as interleaved `(cos, sin)` pairs (computed in f64).
/// The GPU FFT of complex size `n / 2` uses the even entries; the real-to-complex
/// post-processing of an `n`-point real transform uses the first half.
pub fn twiddles(n: usize) -> Vec<f32> {
    let mut t = Vec::with_capacity(2 * n);
    for k in 0..n {
        let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
        t.push(a.cos() as f32);
        t.push(a.sin() as f32);
    }
    t
}

/// Reusable CPU STFT plan. The real `N_FFT`-point transform of a frame is one complex
/// `N_FFT / 2`-point rustfft transform (AVX when the CPU has it) of the frame's even/odd
/// samples packed as `re + i·im`, then the standard split (`E_k`, `O_k`) and twiddle
/// `X_k = E_k + e^{−2πik/N} O_k`, taken straight to `|X_k|²`; plan, twiddles and window are
/// built once and every buffer is per thread ([`StftScratch`]), so nothing is allocated per
/// frame.
#[derive(Clone)]
pub struct CpuStft {
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    /// `e^{−2πik/N_FFT}` for `k` in `0..N_FFT/2` (computed in f64), real and imaginary parts.
    tw_re: Vec<f32>,
    tw_im: Vec<f32>,
}

/// Per-thread buffers of [`CpuStft`].
pub struct StftScratch {
    packed: Vec<Complex<f32>>,
    spectrum: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
    frame: Vec<f32>,
    /// `|X_{M−k}|²` for `k` in `1..M/2`, before reversal.
    upper: Vec<f32>,
}

impl Default for CpuStft {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuStft {
    pub fn new() -> Self {
        let half = N_FFT / 2;
        let tw = twiddles(N_FFT);
        CpuStft {
            fft: FftPlanner::<f32>::new().plan_fft_forward(half),
            window: hann(N_FFT),
            tw_re: tw.iter().step_by(2).take(half).copied().collect(),
            tw_im: tw.iter().skip(1).step_by(2).take(half).copied().collect(),
        }
    }

    pub fn scratch(&self) -> StftScratch {
        let z = Complex::new(0.0, 0.0);
        StftScratch {
            packed: vec![z; N_FFT / 2],
            spectrum: vec![z; N_FFT / 2],
            fft: vec![z; self.fft.get_outofplace_scratch_len()],
            frame: vec![0.0; N_FFT],
            upper: vec![0.0; N_FFT / 4],
        }
    }

    /// `|X_k|²` of centred frame `t` of clip `x`, into `power[..N_BINS]`.
    #[inline(always)]
    pub fn frame_power(&self, x: &[f32], t: usize, s: &mut StftScratch, power: &mut [f32]) {
        let start = (t * HOP) as isize - (N_FFT / 2) as isize;
        if start >= 0 && start as usize + N_FFT <= x.len() {
            // Interior frame: window straight into the packed complex buffer.
            let src = &x[start as usize..start as usize + N_FFT];
            for ((z, p), w) in s
                .packed
                .iter_mut()
                .zip(src.chunks_exact(2))
                .zip(self.window.chunks_exact(2))
            {
                *z = Complex::new(p[0] * w[0], p[1] * w[1]);
            }
        } else {
            frame_into(x, t, &self.window, &mut s.frame);
            for (z, p) in s.packed.iter_mut().zip(s.frame.chunks_exact(2)) {
                *z = Complex::new(p[0], p[1]);
            }
        }
        self.fft
            .process_outofplace_with_scratch(&mut s.packed, &mut s.spectrum, &mut s.fft);
        self.split_power(&s.spectrum, power, &mut s.upper);
    }

    /// `|X_k|²` for `k` in `0..=M` from `Z = FFT_M(x_even + i·x_odd)`, `M = N_FFT / 2`:
    /// `E_k = (Z_k + Z*_{M−k}) / 2`, `O_k = −i (Z_k − Z*_{M−k}) / 2`, `X_k = E_k + W^k O_k`.
    /// Bins `k` and `M − k` share `E_k` and `T_k = W^k O_k` (`X_{M−k} = (E_k − T_k)*`), so one
    /// loop over `k < M/2` gives both; the upper half is written forward into `upper` and
    /// reversed into place by a second loop (one reversed stream per loop keeps both
    /// vectorised).
    #[inline(always)]
    fn split_power(&self, z: &[Complex<f32>], power: &mut [f32], upper: &mut [f32]) {
        let m = z.len();
        let h = m / 2;
        let (r0, i0) = (z[0].re, z[0].im);
        power[0] = (r0 + i0) * (r0 + i0);
        power[m] = (r0 - i0) * (r0 - i0);
        // k = M/2 pairs with itself: X = E + W^{M/2} O with W^{M/2} = −i, E = Re Z, O = Im Z.
        power[h] = z[h].re * z[h].re + z[h].im * z[h].im;
        let (wr, wi) = (&self.tw_re[1..h], &self.tw_im[1..h]);
        let upper = &mut upper[..h - 1];
        for (((((pk, pmk), a), b), &c), &d) in power[1..h]
            .iter_mut()
            .zip(upper.iter_mut())
            .zip(&z[1..h])
            .zip(z[h + 1..m].iter().rev())
            .zip(wr)
            .zip(wi)
        {
            // a = Z_k, b = Z_{M−k}.
            let (er, ei) = (0.5 * (a.re + b.re), 0.5 * (a.im - b.im));
            let (or, oi) = (0.5 * (a.im + b.im), 0.5 * (b.re - a.re));
            let (tr, ti) = (c * or - d * oi, c * oi + d * or);
            let (pr, pi, mr, mi) = (er + tr, ei + ti, er - tr, ei - ti);
            *pk = pr * pr + pi * pi;
            *pmk = mr * mr + mi * mi;
        }
        for (p, &u) in power[h + 1..m].iter_mut().zip(upper.iter().rev()) {
            *p = u;
        }
    }

    /// Power spectrogram of a batch: `pcm` is `[clips, len]`, `valid[c]` the frame count of
    /// clip `c`; `out` is `[clips, frames, N_BINS]` (time-major rows of bins).
    pub fn power(&self, pcm: &[f32], clips: usize, frames: usize, valid: &[u32], out: &mut [f32]) {
        let len = pcm.len().checked_div(clips).unwrap_or(0);
        debug_assert_eq!(out.len(), clips * frames * N_BINS);
        out.par_chunks_mut(N_BINS * 8).enumerate().for_each_init(
            || self.scratch(),
            |s, (chunk, dst)| {
                for (i, row) in dst.chunks_exact_mut(N_BINS).enumerate() {
                    let r = chunk * 8 + i;
                    let (c, t) = (r / frames, r % frames);
                    if t >= valid[c] as usize {
                        row.fill(0.0);
                        continue;
                    }
                    self.frame_power(&pcm[c * len..(c + 1) * len], t, s, row);
                }
            },
        );
    }
}

/// Windowed frame `t` of `x` with centred zero padding.
#[inline(always)]
fn frame_into(x: &[f32], t: usize, w: &[f32], out: &mut [f32]) {
    let start = (t * HOP) as isize - (N_FFT / 2) as isize;
    // Samples [lo, hi) of the frame fall inside the clip; the rest is zero padding.
    let lo = (-start).clamp(0, N_FFT as isize) as usize;
    let hi = (x.len() as isize - start).clamp(lo as isize, N_FFT as isize) as usize;
    out[..lo].fill(0.0);
    out[hi..].fill(0.0);
    let src = &x[(start + lo as isize) as usize..(start + hi as isize) as usize];
    for ((o, &s), &wm) in out[lo..hi].iter_mut().zip(src).zip(&w[lo..hi]) {
        *o = s * wm;
    }
}
