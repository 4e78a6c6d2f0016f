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
use realfft::{RealFftPlanner, RealToComplex};

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

/// Reusable CPU STFT plan (realfft plan, window).
#[derive(Clone)]
pub struct CpuStft {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
}

impl Default for CpuStft {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuStft {
    pub fn new() -> Self {
        CpuStft {
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
            window: hann(N_FFT),
        }
    }

    /// Power spectrogram of a batch: `pcm` is `[clips, len]`, `valid[c]` the frame count of
    /// clip `c`; `out` is `[clips, frames, N_BINS]` (time-major rows of bins).
    pub fn power(&self, pcm: &[f32], clips: usize, frames: usize, valid: &[u32], out: &mut [f32]) {
        let len = pcm.len().checked_div(clips).unwrap_or(0);
        debug_assert_eq!(out.len(), clips * frames * N_BINS);
        out.par_chunks_mut(N_BINS * 8).enumerate().for_each_init(
            || {
                (
                    self.fft.make_input_vec(),
                    self.fft.make_output_vec(),
                    self.fft.make_scratch_vec(),
                )
            },
            |(inp, spec, scratch), (chunk, dst)| {
                for (i, row) in dst.chunks_exact_mut(N_BINS).enumerate() {
                    let r = chunk * 8 + i;
                    let (c, t) = (r / frames, r % frames);
                    if t >= valid[c] as usize {
                        row.fill(0.0);
                        continue;
                    }
                    let x = &pcm[c * len..(c + 1) * len];
                    frame_into(x, t, &self.window, inp);
                    // Lengths match the plan by construction; a failure is a bug here.
                    self.fft
                        .process_with_scratch(inp, spec, scratch)
                        .expect("realfft buffer sizes match the plan");
                    for (o, z) in row.iter_mut().zip(spec.iter()) {
                        *o = z.re * z.re + z.im * z.im;
                    }
                }
            },
        );
    }
}

/// Windowed frame `t` of `x` with centred zero padding.
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
