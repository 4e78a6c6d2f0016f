//! MFCC as librosa 0.11: `power_to_db(S, ref=1, amin=1e-10, top_db=80)` (the floor is taken
//! from the maximum of the whole clip), then an orthonormal DCT-II over the mel axis keeping 20
//! coefficients (`scipy.fft.dct(type=2, norm="ortho")`). The "improved MFCC" adds
//! `feature.delta(width=9, order=1)` and `order=2`, which librosa computes with
//! `scipy.signal.savgol_filter(x, 9, deriv=order, polyorder=order, mode="interp")`: a
//! least-squares polynomial of degree `order` over 9 frames, differentiated. At the edges
//! ("interp") the polynomial fitted to the first (last) 9 frames is differentiated at the
//! edge frames; for degree = derivative order that derivative is a constant, so the 4 edge
//! frames on each side take the value of the nearest full window.

use crate::backend::cpu::math::{log10_f32, max_f32};

/// Orthonormal DCT-II matrix `[n_out, n_in]`: `X_k = s_k Σ_n x_n cos(π k (2n+1) / (2 n_in))`,
/// `s_0 = √(1/n_in)`, `s_k = √(2/n_in)`.
pub fn dct_matrix(n_out: usize, n_in: usize) -> Vec<f32> {
    let mut m = vec![0f32; n_out * n_in];
    for k in 0..n_out {
        let s = if k == 0 {
            (1.0 / n_in as f64).sqrt()
        } else {
            (2.0 / n_in as f64).sqrt()
        };
        for n in 0..n_in {
            let a = std::f64::consts::PI * k as f64 * (2 * n + 1) as f64 / (2 * n_in) as f64;
            m[k * n_in + n] = (s * a.cos()) as f32;
        }
    }
    m
}

/// `10·log10(max(x, amin))` (ref = 1), with the vectorisable `log10` (≤ 3 ulp).
#[inline(always)]
pub fn db(x: f32, amin: f32) -> f32 {
    10.0 * log10_f32(x.max(amin))
}

/// In-place `power_to_db` of one clip's values: dB, then floored at `max − top_db`
/// (vectorised passes).
pub fn power_to_db(x: &mut [f32], amin: f32, top_db: f32) {
    for v in x.iter_mut() {
        *v = db(*v, amin);
    }
    floor_db(x, top_db);
}

/// `power_to_db` of one clip's values `x` into `out` (same length).
#[inline(always)]
pub fn power_to_db_into(x: &[f32], out: &mut [f32], amin: f32, top_db: f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = db(v, amin);
    }
    floor_db(out, top_db);
}

#[inline(always)]
fn floor_db(x: &mut [f32], top_db: f32) {
    let floor = max_f32(x) - top_db;
    for v in x.iter_mut() {
        *v = v.max(floor);
    }
}

/// Savitzky–Golay derivative coefficients for window `width` (odd) and `order` 1 or 2:
/// `y[t] = Σ_j c[j + width/2] · x[t + j]`.
pub fn delta_coeffs(width: usize, order: u32) -> Vec<f32> {
    let h = (width / 2) as i64;
    let js = -h..=h;
    match order {
        1 => {
            let s: f64 = js.clone().map(|j| (j * j) as f64).sum();
            js.map(|j| (j as f64 / s) as f32).collect()
        }
        _ => {
            // Second derivative of the least-squares parabola: 2·a2 with
            // a2 = Σ (j² − m) x_j / Σ (j² − m)², m = mean(j²).
            let m: f64 = js.clone().map(|j| (j * j) as f64).sum::<f64>() / width as f64;
            let s: f64 = js.clone().map(|j| ((j * j) as f64 - m).powi(2)).sum();
            js.map(|j| (2.0 * ((j * j) as f64 - m) / s) as f32)
                .collect()
        }
    }
}

/// Delta of one row of `valid` frames (`valid ≥ width`), written to `out[..valid]`: the full
/// windows as a FIR over time (one vectorised pass per tap, the taps summed in order), the
/// `width / 2` edge frames on each side copied from the nearest full window.
pub fn delta_row(x: &[f32], coeffs: &[f32], valid: usize, out: &mut [f32]) {
    let h = coeffs.len() / 2;
    let n = valid + 1 - coeffs.len();
    let inner = &mut out[h..h + n];
    inner.fill(0.0);
    for (j, &w) in coeffs.iter().enumerate() {
        for (o, &v) in inner.iter_mut().zip(&x[j..j + n]) {
            *o += w * v;
        }
    }
    let (first, last) = (out[h], out[h + n - 1]);
    out[..h].fill(first);
    out[h + n..valid].fill(last);
}
