//! Vectorisable f32 math for the CPU backend's hot loops. `f32::exp` calls libm once per
//! element and blocks auto-vectorisation; this branch-free version (Cephes' `expf` polynomial,
//! ≤ 2 ulp on the normal range) lets LLVM process 4–16 lanes at a time.
//!
//! The crate is built for baseline x86-64 (SSE2, 4 lanes). [`multiversion!`] compiles a hot loop
//! again for AVX-512 and for AVX2 + FMA and picks one at run time. The same operations run in
//! the same order in every version (LLVM does not fuse `a·b + c` without fast-math), so the
//! results are bit-identical whichever runs.

/// Defines `fn name(args) -> ret { body }` compiled three times (AVX-512F, AVX2 + FMA, baseline)
/// and dispatched on the CPU's features (detected once, then a cached check).
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                // `unsafe fn`: safe functions with target features need Rust 1.86 (MSRV 1.85).
                #[target_feature(enable = "avx512f")]
                unsafe fn v512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v256($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { v512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { v256($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_HI: f32 = 88.722_83;
const EXP_LO: f32 = -87.336_55;
/// 1.5 · 2^23: adding and subtracting it rounds to the nearest integer without a libm call.
const ROUND: f32 = 12_582_912.0;

/// `e^x`; exactly 0 below ≈ −87.3 (so −∞ gives 0), +∞ above ≈ 88.7, NaN stays NaN.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let xc = x.clamp(EXP_LO, EXP_HI);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    // The integer n sits in t's low mantissa bits: reading it there avoids a saturating float→int
    // cast, which does not vectorise on baseline x86-64.
    let ni = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    let scale = f32::from_bits((ni.wrapping_add(127) as u32) << 23);
    let y = e * scale;
    if x < EXP_LO {
        0.0
    } else if x > EXP_HI {
        f32::INFINITY
    } else {
        y
    }
}

multiversion! {
/// `Σ exp(x − m)` over a row: 16 f32 lanes per block of 1024 elements, blocks summed in f64
/// (terms are ≤ 1 after the shift, so the f32 partial sums stay accurate).
pub fn sum_exp_shifted(row: &[f32], m: f32) -> f64 {
    let mut total = 0.0f64;
    for block in row.chunks(1024) {
        let mut lanes = [0.0f32; 16];
        let mut chunks = block.chunks_exact(16);
        for c in &mut chunks {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += exp_f32(v - m);
            }
        }
        let tail: f32 = chunks.remainder().iter().map(|&v| exp_f32(v - m)).sum();
        total += lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64;
    }
    total
}
}

multiversion! {
/// `out[i] = scale · exp(x[i] − shift)` (softmax rows, the cross-entropy gradient).
pub fn exp_shift_scale(out: &mut [f32], x: &[f32], shift: f32, scale: f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = scale * exp_f32(v - shift);
    }
}
}

multiversion! {
/// Maximum of a row (−∞ for an empty row), 16 lanes at a time.
pub fn max_f32(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = l.max(v);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    lanes.iter().copied().fold(tail, f32::max)
}
}

multiversion! {
/// `Σ x` in f64, 16 f32 lanes per block of 1024 elements.
pub fn sum_f32(row: &[f32]) -> f64 {
    let mut total = 0.0f64;
    for block in row.chunks(1024) {
        let mut lanes = [0.0f32; 16];
        let mut chunks = block.chunks_exact(16);
        for c in &mut chunks {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += v;
            }
        }
        let tail: f32 = chunks.remainder().iter().sum();
        total += lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64;
    }
    total
}
}

multiversion! {
/// `Σ a·b` in f32 over 8 lanes (a short row: the LSTM's recurrent weights); a plain iterator sum
/// is a serial chain that does not vectorise.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((l, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *l += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}
}

multiversion! {
/// `Σ x²` in f64, 16 f32 lanes per block of 1024 elements (the gradient norm).
pub fn sum_squares_f32(row: &[f32]) -> f64 {
    let mut total = 0.0f64;
    for block in row.chunks(1024) {
        let mut lanes = [0.0f32; 16];
        let mut chunks = block.chunks_exact(16);
        for c in &mut chunks {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += v * v;
            }
        }
        let tail: f32 = chunks.remainder().iter().map(|&v| v * v).sum();
        total += lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64;
    }
    total
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_within_two_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "max relative error {worst}");
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn block_sums_match_f64() {
        let v: Vec<f32> = (0..100_003)
            .map(|i| ((i * 37) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        let want: f64 = v.iter().map(|&x| x as f64).sum();
        assert!((sum_f32(&v) - want).abs() < 1e-6 * want.abs().max(1.0) * 10.0);
        // The dispatched (AVX-512 / AVX2) exp loop gives exactly the baseline scalar results.
        let mut out = vec![0.0f32; v.len()];
        exp_shift_scale(&mut out, &v, 1.5, 0.25);
        for (i, (&o, &x)) in out.iter().zip(&v).enumerate() {
            assert_eq!(
                o.to_bits(),
                (0.25 * exp_f32(x - 1.5)).to_bits(),
                "element {i}"
            );
        }
        let d = dot_f32(&v[..1003], &v[7..1010]) as f64;
        let want: f64 = (0..1003).map(|i| v[i] as f64 * v[i + 7] as f64).sum();
        assert!(
            (d - want).abs() < 1e-5 * want.abs().max(1.0),
            "{d} vs {want}"
        );
        let want: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
        assert!((sum_squares_f32(&v) - want).abs() < 1e-6 * want);
        let m = max_f32(&v);
        assert_eq!(m, v.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        let want: f64 = v.iter().map(|&x| ((x - m) as f64).exp()).sum();
        assert!((sum_exp_shifted(&v, m) - want).abs() / want < 1e-6);
        assert_eq!(max_f32(&[]), f32::NEG_INFINITY);
    }
}
