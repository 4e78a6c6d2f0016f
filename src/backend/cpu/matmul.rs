//! Batched GEMM on the CPU via `matrixmultiply` (packed, cache-blocked, threaded);
//! transposes are free because it takes arbitrary strides.

use rayon::prelude::*;

use super::{f32s, f32s_mut, tensor, CpuTensor};
use crate::backend::check::{self, MatmulDims};
use crate::backend::OpResult;
use crate::error::OpError;

/// Row and column strides of `op(x)` for an `[r, c]` (after `op`) matrix.
fn strides(trans: bool, rows: usize, cols: usize) -> (isize, isize) {
    if trans {
        // stored as [cols, rows]
        (1, rows as isize)
    } else {
        (cols as isize, 1)
    }
}

/// One `C = alpha·op(A)·op(B) + beta·C` through `matrixmultiply`, with strides in elements.
/// Shapes matrixmultiply handles badly are rearranged first:
/// - it threads over the rows of C (loop 3) and packs B on one thread, so a wide, short product
///   (the catalogue logits `u·qᵀ`, 64 × 32,768) runs as `Cᵀ = op(B)ᵀ·op(A)ᵀ` (free: strides);
/// - a small C with a long inner axis (`∂u = g·q`, k = the tile) gets one thread at most, so k
///   is split over the rayon threads and the partial products are summed.
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
    if n > m && n >= 128 {
        return sgemm(
            n,
            k,
            m,
            alpha,
            b,
            (csb, rsb),
            a,
            (csa, rsa),
            beta,
            c,
            (csc, rsc),
            split,
        );
    }
    let threads = rayon::current_num_threads();
    if split && threads > 1 && m * n <= 256 * 256 && k >= 4096 {
        // Partial products over k chunks in parallel, summed in chunk order (deterministic).
        let parts = threads.min(k / 2048).max(2);
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
                    matrixmultiply::sgemm(
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
    // SAFETY: the slices hold exactly the elements the strides address (m·k, k·n, m·n).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        )
    }
}

/// # Safety contract (checked by the callers): `a`, `b`, `c` hold at least one matrix each of
/// the sizes in `d`, offsets stay in bounds.
#[allow(clippy::too_many_arguments)]
fn gemm_batch(
    d: &MatmulDims,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    ta: bool,
    tb: bool,
    alpha: f32,
    beta: f32,
) {
    let sa = strides(ta, d.m, d.k);
    let sb = strides(tb, d.k, d.n);
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
pub(crate) fn sgemm_rm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
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
        matrixmultiply::sgemm(
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

pub fn matmul(a: &CpuTensor, b: &CpuTensor, ta: bool, tb: bool) -> OpResult<CpuTensor> {
    let d = check::matmul(a, b, ta, tb)?;
    let shape = check::matmul_out_shape(a, b, &d);
    let mut c = vec![0.0f32; d.batch * d.m * d.n];
    gemm_batch(
        &d,
        f32s("matmul", a)?,
        f32s("matmul", b)?,
        &mut c,
        ta,
        tb,
        1.0,
        0.0,
    );
    Ok(tensor(shape, c))
}

pub fn matmul_into(
    out: &mut CpuTensor,
    a: &CpuTensor,
    b: &CpuTensor,
    ta: bool,
    tb: bool,
    alpha: f32,
    beta: f32,
) -> OpResult<()> {
    let d = check::matmul(a, b, ta, tb)?;
    let shape = check::matmul_out_shape(a, b, &d);
    if out.shape() != shape.as_slice() {
        return Err(OpError::Shape {
            op: "matmul_into",
            detail: format!("out is {:?}, product is {:?}", out.shape(), shape),
        });
    }
    let (av, bv) = (f32s("matmul_into", a)?, f32s("matmul_into", b)?);
    gemm_batch(
        &d,
        av,
        bv,
        f32s_mut("matmul_into", out)?,
        ta,
        tb,
        alpha,
        beta,
    );
    Ok(())
}
