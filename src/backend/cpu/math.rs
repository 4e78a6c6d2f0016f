//! Vectorisable f32 math for the CPU backend's hot loops. `f32::exp` calls libm once per
//! element and blocks auto-vectorisation; this branch-free version (Cephes' `expf` polynomial,
//! ≤ 2 ulp on the normal range) lets LLVM process 4–16 lanes at a time.

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
        let want: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
        assert!((sum_squares_f32(&v) - want).abs() < 1e-6 * want);
        let m = max_f32(&v);
        assert_eq!(m, v.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        let want: f64 = v.iter().map(|&x| ((x - m) as f64).exp()).sum();
        assert!((sum_exp_shifted(&v, m) - want).abs() / want < 1e-6);
        assert_eq!(max_f32(&[]), f32::NEG_INFINITY);
    }
}
