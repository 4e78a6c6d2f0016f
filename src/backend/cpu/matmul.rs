//! Batched GEMM on the CPU via `matrixmultiply` (packed, cache-blocked, threaded) and, for
//! C of a few rows on x86-64, the unpacked kernels of [`super::skinny`] (the same bits);
//! transposes are free because it takes arbitrary strides.

use rayon::prelude::*;

use super::{f32s, f32s_mut, tensor, CpuTensor};
use crate::backend::check::MatmulDims;
use crate::backend::OpResult;

/// Every f32 product here: on x86-64 the kernels for C of a few rows ([`super::skinny`],
/// the catalogue's products without packing, the same bits), else matrixmultiply.
#[cfg(target_arch = "x86_64")]
use super::skinny::sgemm as sgemm_raw;
#[cfg(not(target_arch = "x86_64"))]
use matrixmultiply::sgemm as sgemm_raw;

/// Row and column strides of `op(x)` for an `[r, c]` (after `op`) matrix.
fn strides(trans: bool, rows: usize, cols: usize) -> (isize, isize) {
    if trans {
        // stored as [cols, rows]
        (1, rows as isize)
    } else {
        (cols as isize, 1)
    }
}

/// Products below this many multiply-adds run on one thread (a rayon hand-off costs tens of µs
/// on a busy machine).
const PAR_GEMM_MIN: usize = 1 << 20;

/// matrixmultiply's `sgemm` / `dgemm`.
pub type Gemm<T> = unsafe fn(
    usize,
    usize,
    usize,
    T,
    *const T,
    isize,
    isize,
    *const T,
    isize,
    isize,
    T,
    *mut T,
    isize,
    isize,
);

/// `C = alpha·op(A)·op(B) + beta·C` through `gemm` (matrixmultiply's `sgemm` or `dgemm`, strides
/// in elements) on the rayon threads: one block of C per thread, rows (m ≥ n) or columns, each
/// block one single-threaded call. Small products and `split = false` run as one call on the
/// calling thread.
///
/// matrixmultiply's own threading is off (no `threading` feature): its threads and rayon's
/// shared two cores and fought. Measured on this repository's 2-core machine, one call of
/// `64 × 10,000 · 10,000 × 64` ran at 32 GFLOP/s with its threads and 56 on one thread.
///
/// # Safety
/// `a`, `b` and `c` with their strides address `m × k`, `k × n` and `m × n` valid elements, and
/// `c` aliases neither `a` nor `b`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn par_gemm<T: Copy + Send + Sync>(
    gemm: Gemm<T>,
    (m, k, n): (usize, usize, usize),
    alpha: T,
    a: *const T,
    (rsa, csa): (isize, isize),
    b: *const T,
    (rsb, csb): (isize, isize),
    beta: T,
    c: *mut T,
    (rsc, csc): (isize, isize),
    split: bool,
) {
    // Addresses as integers so that the block closure is Sync.
    let (pa, pb, pc) = (a as usize, b as usize, c as usize);
    let block = |i0: usize, mi: usize, j0: usize, nj: usize| {
        // SAFETY (the caller's contract): a block starts at row i0 / column j0 of op(A), op(B)
        // and C and stays inside them; blocks of C are disjoint, so no two threads write the
        // same element.
        unsafe {
            gemm(
                mi,
                k,
                nj,
                alpha,
                (pa as *const T).offset(i0 as isize * rsa),
                rsa,
                csa,
                (pb as *const T).offset(j0 as isize * csb),
                rsb,
                csb,
                beta,
                (pc as *mut T).offset(i0 as isize * rsc + j0 as isize * csc),
                rsc,
                csc,
            )
        }
    };
    let threads = rayon::current_num_threads();
    let by_rows = m >= n;
    let len = if by_rows { m } else { n };
    // Blocks a multiple of 16 long (the kernels' register tiles), at least 32.
    let parts = threads.min(len / 32);
    if !split || parts < 2 || m * n * k < PAR_GEMM_MIN {
        return block(0, m, 0, n);
    }
    let step = len.div_ceil(parts).next_multiple_of(16);
    (0..parts).into_par_iter().for_each(|p| {
        let s = p * step;
        if s < len {
            let e = (s + step).min(len);
            if by_rows {
                block(s, e - s, 0, n)
            } else {
                block(0, m, s, e - s)
            }
        }
    });
}

/// A product split over k takes one chunk per this many of k (at least two chunks).
const SPLIT_K_CHUNK: usize = 8192;
/// At most this many chunks.
const SPLIT_K_PARTS: usize = 64;

/// One `C = alpha·op(A)·op(B) + beta·C` through `sgemm_raw`, with strides in elements, on
/// the rayon threads ([`par_gemm`]). A small C with a long inner axis (`∂u = g·q`,
/// k = the tile) has too few rows and columns to share out, so there k is cut into chunks (by k
/// alone, so the bits do not depend on the threads), run on the threads, and the partial
/// products are summed in order.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    (rsa, csa): (isize, isize),
    b: &[f32],
    (rsb, csb): (isize, isize),
    beta: f32,
    c: &mut [f32],
    (rsc, csc): (isize, isize),
    split: bool,
) {
    if k == 0 {
        // matrixmultiply handles k = 0, but be explicit: result is beta * C.
        for i in 0..m {
            for j in 0..n {
                let x = &mut c[i * rsc as usize + j * csc as usize];
                *x = if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
        return;
    }
    if split && m * n <= 256 * 256 && k >= 4096 {
        // Partial products over chunks of k in parallel, summed in chunk order. The chunks
        // depend on k alone, not on the threads, so the bits are the same on any number of
        // cores (they were the thread count's until 2026-12-07: one chunk on one thread, 16 on
        // 16). Up to k = 16,383 two, as a 2-core machine always took.
        let parts = (k / SPLIT_K_CHUNK).clamp(2, SPLIT_K_PARTS);
        let chunk = k.div_ceil(parts);
        let partial: Vec<Vec<f32>> = (0..parts)
            .into_par_iter()
            .map(|p| {
                let k0 = p * chunk;
                let kc = chunk.min(k - k0);
                let mut out = vec![0.0f32; m * n];
                // SAFETY: offsets k0·csa / k0·rsb address the k0-th column of op(A) and row of
                // op(B); the sub-blocks stay within the slices (k0 + kc ≤ k).
                unsafe {
                    sgemm_raw(
                        m,
                        kc,
                        n,
                        1.0,
                        a.as_ptr().offset(k0 as isize * csa),
                        rsa,
                        csa,
                        b.as_ptr().offset(k0 as isize * rsb),
                        rsb,
                        csb,
                        0.0,
                        out.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                };
                out
            })
            .collect();
        for i in 0..m {
            for j in 0..n {
                let s: f32 = partial.iter().map(|p| p[i * n + j]).sum();
                let x = &mut c[i * rsc as usize + j * csc as usize];
                *x = alpha * s + if beta == 0.0 { 0.0 } else { beta * *x };
            }
        }
        return;
    }
    // SAFETY: the slices hold exactly the elements the strides address (m·k, k·n, m·n); `c` is
    // a distinct mutable borrow.
    unsafe {
        par_gemm(
            sgemm_raw,
            (m, k, n),
            alpha,
            a.as_ptr(),
            (rsa, csa),
            b.as_ptr(),
            (rsb, csb),
            beta,
            c.as_mut_ptr(),
            (rsc, csc),
            split,
        )
    }
}

/// # Safety contract (checked by the callers): `a`, `b`, `c` hold at least one matrix each of
/// the sizes in `d`, offsets stay in bounds.
/// `c = alpha · op(a)·op(b) + beta · c` for every batch entry; geometry and transposes in `d`.
fn gemm_batch(d: &MatmulDims, a: &[f32], b: &[f32], c: &mut [f32], alpha: f32, beta: f32) {
    let sa = strides(d.trans_a, d.m, d.k);
    let sb = strides(d.trans_b, d.k, d.n);
    let mn = d.m * d.n;
    if mn == 0 {
        return;
    }
    // Many small matrices: parallelise over the batch; big ones: one at a time, threaded inside.
    let many = d.batch > 1 && d.m * d.n * d.k < (1 << 18);
    let one = |i: usize, ci: &mut [f32]| {
        let ai = &a[i * d.stride_a..i * d.stride_a + d.m * d.k];
        let bi = &b[i * d.stride_b..i * d.stride_b + d.k * d.n];
        sgemm(
            d.m,
            d.k,
            d.n,
            alpha,
            ai,
            sa,
            bi,
            sb,
            beta,
            ci,
            (d.n as isize, 1),
            !many,
        );
    };
    if many {
        c.par_chunks_mut(mn)
            .enumerate()
            .for_each(|(i, ci)| one(i, ci));
    } else {
        for (i, ci) in c.chunks_mut(mn).enumerate() {
            one(i, ci);
        }
    }
}

/// `c = a · b` for row-major `a [m, k]`, `b [k, n]`, `c [m, n]` on the calling thread's
/// share of matrixmultiply (for kernels that already run inside a rayon task).
pub fn sgemm_rm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    sgemm_strided((m, k, n), a, (k, 1), b, (n, 1), 0.0, c, n);
}

/// `C = A·B + beta·C` with element strides `(row, column)` for `A` and `B` and a row stride for
/// `C` (columns contiguous), bounds-checked, for kernels that already run inside a rayon task
/// (a product this small runs on the calling thread). `beta = 0` overwrites `C`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_strided(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
    rsc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * rsc + n <= c.len(),
        "sgemm_strided: C out of range"
    );
    if k == 0 {
        for i in 0..m {
            c[i * rsc..i * rsc + n]
                .iter_mut()
                .for_each(|x| *x = if beta == 0.0 { 0.0 } else { beta * *x });
        }
        return;
    }
    assert!(
        (m - 1) * rsa + (k - 1) * csa < a.len(),
        "sgemm_strided: A out of range"
    );
    assert!(
        (k - 1) * rsb + (n - 1) * csb < b.len(),
        "sgemm_strided: B out of range"
    );
    // SAFETY: the asserts above keep every address the strides reach inside the slices; `c`
    // is a distinct mutable borrow, so it aliases neither `a` nor `b`.
    unsafe {
        sgemm_raw(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            1,
        )
    }
}

/// `C += A·B` for the small products of a recurrence (one per time step), on the calling thread:
/// `A [m, k]` with row stride `lda`, `B [k, n]` contiguous row-major, `C [m, n]` with row stride
/// `ldc`. No packing: `B` is read in place (a recurrent matrix, reused every step, stays in
/// cache), where matrixmultiply packed it again for every step's product.
pub(crate) fn gemm_acc_small(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(
        (m - 1) * lda + k <= a.len(),
        "gemm_acc_small: A out of range"
    );
    assert!(k * n <= b.len(), "gemm_acc_small: B out of range");
    assert!(
        (m - 1) * ldc + n <= c.len(),
        "gemm_acc_small: C out of range"
    );
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn v512(
            d: (usize, usize, usize),
            a: &[f32],
            lda: usize,
            b: &[f32],
            c: &mut [f32],
            ldc: usize,
        ) {
            gemm_acc_body::<true, 64>(d, a, lda, b, c, ldc)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn v256(
            d: (usize, usize, usize),
            a: &[f32],
            lda: usize,
            b: &[f32],
            c: &mut [f32],
            ldc: usize,
        ) {
            gemm_acc_body::<true, 32>(d, a, lda, b, c, ldc)
        }
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features the function was compiled for.
            return unsafe { v512((m, k, n), a, lda, b, c, ldc) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: as above.
            return unsafe { v256((m, k, n), a, lda, b, c, ldc) };
        }
        // Without FMA `mul_add` would be a libm call per element.
        gemm_acc_body::<false, 16>((m, k, n), a, lda, b, c, ldc)
    }
    #[cfg(not(target_arch = "x86_64"))]
    gemm_acc_body::<true, 32>((m, k, n), a, lda, b, c, ldc)
}

/// The rows of A in [`gemm_acc_small`]'s register block.
const MR: usize = 4;

/// [`gemm_acc_small`] by register blocks: `MR` rows of A against `NR` columns of B, the `MR × NR`
/// sums held in registers over the whole inner axis (16 vector registers: NR = 64 for AVX-512,
/// 32 for AVX2).
// Index loops with constant bounds on purpose: see the comment in the body.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn gemm_acc_body<const FMA: bool, const NR: usize>(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
) {
    let madd = |x: f32, y: f32, z: f32| if FMA { x.mul_add(y, z) } else { x * y + z };
    for i in (0..m).step_by(MR) {
        let mr = MR.min(m - i);
        let rows: [&[f32]; MR] = std::array::from_fn(|r| {
            let at = (i + r.min(mr - 1)) * lda;
            &a[at..at + k]
        });
        let mut j = 0;
        while j + NR <= n {
            // Constant loop bounds and no indexing by a runtime row count: that keeps `acc` in
            // registers (with either, LLVM spilled it to the stack on every step of `p`).
            let mut acc = [[0.0f32; NR]; MR];
            for p in 0..k {
                let bp: &[f32; NR] = b[p * n + j..p * n + j + NR].try_into().unwrap();
                for r in 0..MR {
                    let x = rows[r][p];
                    for q in 0..NR {
                        acc[r][q] = madd(x, bp[q], acc[r][q]);
                    }
                }
            }
            for r in 0..MR {
                if r < mr {
                    let at = (i + r) * ldc + j;
                    for (o, &s) in c[at..at + NR].iter_mut().zip(&acc[r]) {
                        *o += s;
                    }
                }
            }
            j += NR;
        }
        if j < n {
            // The last columns (fewer than NR), row by row.
            for (r, row) in rows.iter().enumerate().take(mr) {
                let at = (i + r) * ldc;
                let cr = &mut c[at + j..at + n];
                for (p, &x) in row.iter().enumerate() {
                    for (o, &y) in cr.iter_mut().zip(&b[p * n + j..p * n + n]) {
                        *o = madd(x, y, *o);
                    }
                }
            }
        }
    }
}

pub fn matmul(a: &CpuTensor, b: &CpuTensor, d: &MatmulDims) -> OpResult<CpuTensor> {
    let mut c = vec![0.0f32; d.batch * d.m * d.n];
    gemm_batch(d, f32s("matmul", a)?, f32s("matmul", b)?, &mut c, 1.0, 0.0);
    Ok(tensor(d.out_shape(), c))
}

/// [`crate::backend::Backend::matmul_bias`]: C starts as the bias rows and the product is
/// accumulated onto it (`beta = 1`).
pub fn matmul_bias(
    a: &CpuTensor,
    b: &CpuTensor,
    bias: &CpuTensor,
    d: &MatmulDims,
) -> OpResult<CpuTensor> {
    let bv = f32s("matmul_bias", bias)?;
    let mut c = Vec::with_capacity(d.batch * d.m * d.n);
    for _ in 0..d.batch * d.m {
        c.extend_from_slice(bv);
    }
    gemm_batch(
        d,
        f32s("matmul_bias", a)?,
        f32s("matmul_bias", b)?,
        &mut c,
        1.0,
        1.0,
    );
    Ok(tensor(d.out_shape(), c))
}

pub fn matmul_into(
    out: &mut CpuTensor,
    a: &CpuTensor,
    b: &CpuTensor,
    d: &MatmulDims,
    alpha: f32,
    beta: f32,
) -> OpResult<()> {
    let (av, bv) = (f32s("matmul_into", a)?, f32s("matmul_into", b)?);
    gemm_batch(d, av, bv, f32s_mut("matmul_into", out)?, alpha, beta);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small C over a long k (split into chunks of k) gives the same bits on 1, 2 and 3
    /// threads: two chunks, and six.
    #[test]
    fn split_k_products_do_not_depend_on_the_threads() {
        for &(m, k, n) in &[(32, 20_000, 128), (8, 50_000, 16)] {
            let mut s = 7u32;
            let mut next = || {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            };
            let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a rayon pool");
                let mut c = vec![0.0f32; m * n];
                pool.install(|| {
                    sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        &a,
                        (k as isize, 1),
                        &b,
                        (n as isize, 1),
                        0.0,
                        &mut c,
                        (n as isize, 1),
                        true,
                    )
                });
                c.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            };
            let one = run(1);
            for threads in [2, 3] {
                assert!(
                    run(threads) == one,
                    "{m}×{k}×{n}: {threads} threads against 1"
                );
            }
        }
    }

    type Kernel = fn((usize, usize, usize), &[f32], usize, &[f32], &mut [f32], usize);

    /// Every register-block width (AVX-512, AVX2, baseline), whatever this CPU dispatches to,
    /// against an f64 triple loop: full blocks, row and column remainders, strided A and C.
    #[test]
    fn gemm_acc_small_all_widths() {
        let mut seed = 12345u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(m, k, n) in &[
            (1, 1, 1),
            (4, 64, 256),
            (9, 20, 70),
            (5, 33, 131),
            (3, 7, 16),
        ] {
            let (lda, ldc) = (k + 3, n + 5);
            let a: Vec<f32> = (0..m * lda).map(|_| next()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let c0: Vec<f32> = (0..m * ldc).map(|_| next()).collect();
            let mut want = c0.iter().map(|&x| x as f64).collect::<Vec<_>>();
            for i in 0..m {
                for j in 0..n {
                    for p in 0..k {
                        want[i * ldc + j] += a[i * lda + p] as f64 * b[p * n + j] as f64;
                    }
                }
            }
            let runs: [(&str, Kernel); 4] = [
                ("dispatch", gemm_acc_small),
                ("64", gemm_acc_body::<true, 64>),
                ("32", gemm_acc_body::<true, 32>),
                ("16 no fma", gemm_acc_body::<false, 16>),
            ];
            for (name, f) in runs {
                let mut c = c0.clone();
                f((m, k, n), &a, lda, &b, &mut c, ldc);
                for (i, (&got, &w)) in c.iter().zip(&want).enumerate() {
                    assert!(
                        (got as f64 - w).abs() <= 1e-5 * (1.0 + k as f64),
                        "{name} m={m} k={k} n={n} at {i}: {got} vs {w}"
                    );
                }
            }
        }
    }
}
