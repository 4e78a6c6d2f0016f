//! Vectorisable f32 math for the CPU backend's hot loops. `f32::exp`, `ln`, `log2`, `log10`
//! and `cos` call libm once per element and block auto-vectorisation; these branch-free
//! versions (Cephes' `expf`/`logf` polynomials, ≤ 2–3 ulp on the normal range) let LLVM
//! process 4–16 lanes at a time.
//!
//! The crate is built for baseline x86-64 (SSE2, 4 lanes). The `multiversion` crate's macro
//! compiles a hot loop again for AVX-512 and for AVX2 + FMA and picks one at run time. The same
//! operations run in the same order in every version (LLVM does not fuse `a·b + c` without
//! fast-math), so the results are bit-identical whichever runs.

/// Whether the CPU runs AVX2 (the standard library caches the answer).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Calls `f` from a function compiled for AVX2 when the CPU has AVX2, so that `f` (mark it
/// `#[inline(always)]`) and what it inlines vectorise 8 lanes wide. For element-wise and
/// fixed-lane loops the results are the same bit for bit (no FMA contraction either way).
#[inline(always)]
pub fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        /// # Safety
        /// The CPU must support AVX2.
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: AVX2 support was checked just above.
        return unsafe { avx2(f) };
    }
    f()
}

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

const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Splits a finite `x > 0` into `(e, ln m)` with `x = m · 2^e`, `m` in `[√½, √2)`, `ln m` by
/// Cephes' `logf` polynomial (subnormals are scaled by 2^25 first).
#[inline(always)]
fn ln_parts(x: f32) -> (f32, f32) {
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * 33_554_432.0 } else { x };
    let bits = xs.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // [0.5, 1)
    let low = m < SQRT_HALF;
    e -= low as i32;
    m = if low { m + m } else { m };
    let f = m - 1.0;
    let z = f * f;
    let p = ((((((((7.037_683_6e-2 * f - 1.151_461e-1) * f + 1.167_699_9e-1) * f
        - 1.242_014_1e-1)
        * f
        + 1.424_932_3e-1)
        * f
        - 1.666_805_8e-1)
        * f
        + 2.000_071_4e-1)
        * f
        - 2.499_999_4e-1)
        * f
        + 3.333_333e-1)
        * f
        * z;
    ((e - if sub { 25 } else { 0 }) as f32, f + (p - 0.5 * z))
}

/// The special values shared by the logarithms: `−∞` at ±0, `+∞` at `+∞`, NaN for NaN and
/// negative inputs, else `y`.
#[inline(always)]
fn log_special(x: f32, y: f32) -> f32 {
    if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        x
    } else if x.is_nan() || x < 0.0 {
        f32::NAN
    } else {
        y
    }
}

/// `log10(x)` (≤ 3 ulp, subnormals included): `−∞` at ±0, `+∞` at `+∞`, NaN for negative
/// inputs and NaN.
#[inline(always)]
pub fn log10_f32(x: f32) -> f32 {
    let (e, lm) = ln_parts(x);
    log_special(
        x,
        lm * std::f32::consts::LOG10_E + e * std::f32::consts::LOG10_2,
    )
}

/// `log2(x)` (≤ 3 ulp, exact at powers of two, same special values as [`log10_f32`]).
#[inline(always)]
pub fn log2_f32(x: f32) -> f32 {
    let (e, lm) = ln_parts(x);
    log_special(x, lm * LOG2E + e)
}

/// `cos(π x)` for `|x| ≤ ½` (absolute error ≤ 3e-7; outside that range the result is
/// meaningless): an even Taylor polynomial in `(πx)²` to degree 12.
#[inline(always)]
pub fn cos_pi_f32(x: f32) -> f32 {
    let t = std::f32::consts::PI * x;
    let z = t * t;
    ((((((2.087_675_7e-9 * z - 2.755_732e-7) * z + 2.480_158_7e-5) * z - 1.388_888_9e-3) * z
        + 4.166_666_6e-2)
        * z
        - 0.5)
        * z)
        + 1.0
}

/// `Σ f(x)` in f64: 16 f32 lanes per block of 1024 elements, the blocks added in f64 (inlined
/// into each multiversioned caller so that `f` vectorises with it).
#[inline(always)]
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut total = 0.0f64;
    for block in row.chunks(1024) {
        let mut lanes = [0.0f32; 16];
        let mut chunks = block.chunks_exact(16);
        for c in &mut chunks {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += f(v);
            }
        }
        let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
        total += lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64;
    }
    total
}

multiversion! {
/// `Σ exp(x − m)` over a row: 16 f32 lanes per block of 1024 elements, blocks summed in f64
/// (terms are ≤ 1 after the shift, so the f32 partial sums stay accurate).
pub fn sum_exp_shifted(row: &[f32], m: f32) -> f64 {
    lane_sum(row, |v| exp_f32(v - m))
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
#[inline(always)]
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
    lane_sum(row, |v| v)
}
}

multiversion! {
/// `Σ a·b` in f32 over 8 lanes (HFC's dot over one spectrum); a plain iterator sum is a serial
/// chain that does not vectorise.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
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
    lane_sum(row, |v| v * v)
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

    /// Worst relative error of `f` against the f64 reference `g` over `xs`.
    fn worst_rel(xs: impl Iterator<Item = f32>, f: fn(f32) -> f32, g: fn(f64) -> f64) -> f64 {
        xs.map(|x| {
            let (got, want) = (f(x) as f64, g(x as f64));
            ((got - want) / want.abs().max(f64::MIN_POSITIVE)).abs()
        })
        .fold(0.0, f64::max)
    }

    /// Log-spaced positive floats from 1e-44 (subnormal) to 3e38, plus every float in [0.5, 2]
    /// at a stride (where `ln` is near 0 and relative error is hardest).
    fn positive_samples() -> impl Iterator<Item = f32> {
        let wide = (0..200_000).map(|i| (10f64.powf(-44.0 + 82.5 * i as f64 / 200_000.0)) as f32);
        let near_one = (0x3f00_0000u32..0x4000_0000)
            .step_by(97)
            .map(f32::from_bits);
        wide.chain(near_one)
            .filter(|&x| x > 0.0 && x.is_finite() && x != 1.0)
    }

    #[test]
    fn log10_and_log2_match_libm_within_three_ulp() {
        let e = worst_rel(positive_samples(), log10_f32, f64::log10);
        assert!(e < 3.6e-7, "log10: max relative error {e}");
        let e = worst_rel(positive_samples(), log2_f32, f64::log2);
        assert!(e < 3.6e-7, "log2: max relative error {e}");
        // Exact at powers of two, and the special values.
        for k in -149..128 {
            let x = 2f64.powi(k) as f32;
            assert_eq!(log2_f32(x), k as f32, "log2(2^{k})");
        }
        for f in [log10_f32, log2_f32] {
            assert_eq!(f(1.0), 0.0);
            assert_eq!(f(0.0), f32::NEG_INFINITY);
            assert_eq!(f(-0.0), f32::NEG_INFINITY);
            assert_eq!(f(f32::INFINITY), f32::INFINITY);
            assert!(f(-1.0).is_nan());
            assert!(f(f32::NEG_INFINITY).is_nan());
            assert!(f(f32::NAN).is_nan());
        }
        assert!((log10_f32(1e-10) + 10.0).abs() < 4e-6);
        assert!((log10_f32(100.0) - 2.0).abs() < 4e-7);
    }

    #[test]
    fn cos_pi_matches_libm_on_half_period() {
        let mut worst = 0.0f64;
        for i in -100_000..=100_000 {
            let x = i as f32 * 0.5e-5;
            let want = (std::f64::consts::PI * x as f64).cos();
            worst = worst.max((cos_pi_f32(x) as f64 - want).abs());
        }
        assert!(worst < 3e-7, "cos(πx): max absolute error {worst}");
        assert_eq!(cos_pi_f32(0.0), 1.0);
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
        for n in [0usize, 1, 7, 8, 9, 100, 1025] {
            let (a, b) = (&v[..n], &v[1000..1000 + n]);
            let want: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
            let mag: f64 = a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64 * y as f64).abs())
                .sum();
            assert!(
                (dot_f32(a, b) as f64 - want).abs() <= 1e-6 * mag.max(1e-30),
                "dot n={n}"
            );
        }
    }
}
