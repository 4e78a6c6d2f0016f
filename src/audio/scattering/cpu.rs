//! CPU reference for the scattering transform: rustfft/realfft in f32, rayon over
//! clips × first-order wavelets (each task also runs that wavelet's second-order paths, which
//! need its |U1| spectrum). FFT plans are built once per plan and kept in the plan's cache.
//!
//! Real signals (|U1|, |U2|) are transformed with a real-to-complex FFT (half the work); the
//! other half of their spectrum is read through Hermitian symmetry.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::audio::scattering::{Scattering, ScatteringOps, Sparse};
use crate::backend::cpu::{f32s, tensor, CpuBackend, CpuTensor};
use crate::backend::OpResult;

/// FFT plans for one scattering plan: index `k` is length `n_padded >> k`.
pub struct CpuPlans {
    n_padded: usize,
    fwd: Arc<dyn Fft<f32>>,
    inv: Vec<Arc<dyn Fft<f32>>>,
    r2c: Vec<Arc<dyn RealToComplex<f32>>>,
}

impl CpuPlans {
    fn new(plan: &Scattering) -> Self {
        let n = plan.n_padded();
        let levels = plan.bank().log2_t as usize;
        let mut p = FftPlanner::<f32>::new();
        let mut rp = RealFftPlanner::<f32>::new();
        CpuPlans {
            n_padded: n,
            fwd: p.plan_fft_forward(n),
            inv: (0..=levels).map(|k| p.plan_fft_inverse(n >> k)).collect(),
            r2c: (0..=levels).map(|k| rp.plan_fft_forward(n >> k)).collect(),
        }
    }
}

/// The filter's support as at most two contiguous runs `(first bin, values)`, so the inner
/// loops need no modulo.
fn runs(h: &Sparse) -> [(usize, &[f32]); 2] {
    let first = (h.period - h.lo).min(h.vals.len());
    [(h.lo, &h.vals[..first]), (0, &h.vals[first..])]
}

/// `dst[g mod len] += scale * h[g] * x[g]` over the support of `h` (period = `x.len()`): the
/// product in the Fourier domain periodised to `dst.len()` bins (a power of two).
fn mul_periodize_full(dst: &mut [Complex32], x: &[Complex32], h: &Sparse, scale: f32) {
    let mask = dst.len() - 1;
    for (start, vals) in runs(h) {
        for (i, &v) in vals.iter().enumerate() {
            let g = start + i;
            dst[g & mask] += x[g] * (v * scale);
        }
    }
}

/// As [`mul_periodize_full`] for the spectrum of a real signal of length `m` given as its first
/// `m/2 + 1` bins: bin `g > m/2` is `conj(half[m - g])`.
fn mul_periodize_half(dst: &mut [Complex32], half: &[Complex32], m: usize, h: &Sparse, scale: f32) {
    let mask = dst.len() - 1;
    let mid = m / 2;
    for (start, vals) in runs(h) {
        for (i, &v) in vals.iter().enumerate() {
            let g = start + i;
            let x = if g <= mid {
                half[g]
            } else {
                half[m - g].conj()
            };
            dst[g & mask] += x * (v * scale);
        }
    }
}

/// Per-thread buffers, reused across tasks and calls: fresh multi-megabyte vectors per path
/// cost page faults (large allocations are mmapped and unmapped each time) that showed up in
/// profiles.
#[derive(Default)]
struct Scratch {
    fft: Vec<Complex32>,
    real: Vec<f32>,
    y: Vec<Complex32>,
    u1: Vec<Complex32>,
    u2: Vec<Complex32>,
    z: Vec<Complex32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch buffers.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// `buf` resized to `len` zeros, keeping its allocation.
fn zeroed(buf: &mut Vec<Complex32>, len: usize) -> &mut [Complex32] {
    buf.clear();
    buf.resize(len, Complex32::default());
    buf
}

/// |z| without `hypot`'s overflow care (slow, and not needed at these magnitudes).
#[inline]
fn abs(c: Complex32) -> f32 {
    (c.re * c.re + c.im * c.im).sqrt()
}

struct Ctx<'a> {
    plan: &'a Scattering,
    ffts: &'a CpuPlans,
}

impl Ctx<'_> {
    /// Low-pass a spectrum (half form of a real signal of length `m = n_padded >> k`) with phi
    /// at level `k`, subsample to `n_padded >> J`, and unpad: one output row.
    fn lowpass_half(
        &self,
        half: &[Complex32],
        k: usize,
        z: &mut Vec<Complex32>,
        fft: &mut Vec<Complex32>,
    ) -> Vec<f32> {
        let bank = self.plan.bank();
        let lt = bank.log2_t as usize;
        let m = self.ffts.n_padded >> k;
        let zs = zeroed(z, self.ffts.n_padded >> lt);
        mul_periodize_half(zs, half, m, &bank.phi[k], 1.0 / m as f32);
        self.finish_lowpass(zs, fft)
    }

    /// Inverse FFT at the output length, real part, unpad.
    fn finish_lowpass(&self, z: &mut [Complex32], fft: &mut Vec<Complex32>) -> Vec<f32> {
        let bank = self.plan.bank();
        let lt = bank.log2_t as usize;
        let inv = &self.ffts.inv[lt];
        inv.process_with_scratch(z, grow(fft, inv.get_inplace_scratch_len()));
        z[bank.ind_start[lt]..bank.ind_end[lt]]
            .iter()
            .map(|c| c.re)
            .collect()
    }

    /// Inverse FFT of `y` at level `k`, modulus, real FFT into `half`: the spectrum of |U|.
    fn modulus_spectrum(
        &self,
        y: &mut [Complex32],
        k: usize,
        half: &mut Vec<Complex32>,
        real: &mut Vec<f32>,
        fft: &mut Vec<Complex32>,
    ) {
        let inv = &self.ffts.inv[k];
        inv.process_with_scratch(y, grow(fft, inv.get_inplace_scratch_len()));
        real.clear();
        real.extend(y.iter().map(|&c| abs(c)));
        let r2c = &self.ffts.r2c[k];
        // Every output bin is written: size it without zeroing.
        half.resize(y.len() / 2 + 1, Complex32::default());
        half.truncate(y.len() / 2 + 1);
        r2c.process_with_scratch(real, half, grow(fft, r2c.get_scratch_len()))
            .expect("realfft buffers sized by its own plan");
    }

    /// First-order wavelet `n1` and its second-order children for one clip spectrum `x`.
    fn first_order(&self, x: &[Complex32], n1: usize, s: &mut Scratch) -> Rows {
        let bank = self.plan.bank();
        let lt = bank.log2_t;
        let n = self.ffts.n_padded;
        let w1 = &bank.psi1[n1];
        let k1 = w1.j.min(lt) as usize;
        let m1 = n >> k1;
        let Scratch {
            fft,
            real,
            y,
            u1,
            u2,
            z,
        } = s;
        let ys = zeroed(y, m1);
        // 1/n: the mean over the 2^k1 periods times numpy's 1/m1 inverse-FFT normalisation.
        mul_periodize_full(ys, x, &w1.levels[0], 1.0 / n as f32);
        self.modulus_spectrum(ys, k1, u1, real, fft);
        let mut out = vec![(1 + n1, self.lowpass_half(u1, k1, z, fft))];
        let mut row = self
            .plan
            .paths()
            .iter()
            .position(|p| p.order == 2 && p.n1 == n1)
            .unwrap_or(0);
        for w2 in bank.psi2.iter() {
            if w2.j <= w1.j {
                continue;
            }
            let k2 = (w2.j.min(lt) as usize).saturating_sub(k1);
            let m2 = m1 >> k2;
            let ys = zeroed(y, m2);
            mul_periodize_half(ys, u1, m1, &w2.levels[k1], 1.0 / m1 as f32);
            self.modulus_spectrum(ys, k1 + k2, u2, real, fft);
            out.push((row, self.lowpass_half(u2, k1 + k2, z, fft)));
            row += 1;
        }
        out
    }
}

/// `buf` grown to at least `len` (contents irrelevant: FFT scratch).
fn grow(buf: &mut Vec<Complex32>, len: usize) -> &mut [Complex32] {
    if buf.len() < len {
        buf.resize(len, Complex32::default());
    }
    &mut buf[..len]
}

/// `(output row, values)` pairs computed by one task.
type Rows = Vec<(usize, Vec<f32>)>;

/// Reflect padding (numpy `mode='reflect'`, no edge repeat) to a complex buffer.
fn pad_reflect(clip: &[f32], pad_left: usize, n_padded: usize) -> Vec<Complex32> {
    let n = clip.len() as isize;
    (0..n_padded as isize)
        .map(|i| {
            let mut t = i - pad_left as isize;
            if t < 0 {
                t = -t;
            }
            if t >= n {
                t = 2 * (n - 1) - t;
            }
            Complex32::new(clip[t as usize], 0.0)
        })
        .collect()
}

pub fn scattering(plan: &Scattering, clips: &CpuTensor) -> OpResult<CpuTensor> {
    let data = f32s("scattering", clips)?;
    let batch = clips.shape()[0];
    let n = plan.n_samples();
    let (paths, frames) = (plan.n_paths(), plan.n_frames());
    let ffts = plan.cached(|_: &CpuPlans| true, || Ok(CpuPlans::new(plan)))?;
    let ctx = Ctx { plan, ffts: &ffts };
    let bank = plan.bank();

    // Spectrum of every padded clip, and order 0 from it.
    let spectra: Vec<(Vec<Complex32>, Vec<f32>)> = (0..batch)
        .into_par_iter()
        .map(|b| {
            with_scratch(|s| {
                let mut x = pad_reflect(&data[b * n..(b + 1) * n], bank.pad_left, bank.n_padded);
                let f = &ffts.fwd;
                f.process_with_scratch(&mut x, grow(&mut s.fft, f.get_inplace_scratch_len()));
                let lt = bank.log2_t as usize;
                let z = zeroed(&mut s.z, bank.n_padded >> lt);
                mul_periodize_full(z, &x, &bank.phi[0], 1.0 / bank.n_padded as f32);
                let s0 = ctx.finish_lowpass(z, &mut s.fft);
                (x, s0)
            })
        })
        .collect();

    let n1s = bank.psi1.len();
    let rows: Vec<(usize, Rows)> = (0..batch * n1s)
        .into_par_iter()
        .map(|t| {
            let (b, n1) = (t / n1s, t % n1s);
            (b, with_scratch(|s| ctx.first_order(&spectra[b].0, n1, s)))
        })
        .collect();

    let mut out = vec![0.0f32; batch * paths * frames];
    for (b, (_, s0)) in spectra.iter().enumerate() {
        out[b * paths * frames..][..frames].copy_from_slice(s0);
    }
    for (b, list) in rows {
        for (row, v) in list {
            out[(b * paths + row) * frames..][..frames].copy_from_slice(&v);
        }
    }
    Ok(tensor(vec![batch, paths, frames], out))
}

impl ScatteringOps for CpuBackend {
    fn scattering_kernel(&self, plan: &Scattering, clips: &CpuTensor) -> OpResult<CpuTensor> {
        scattering(plan, clips)
    }
}
