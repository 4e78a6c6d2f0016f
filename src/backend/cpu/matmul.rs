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
    let (rsa, csa) = strides(ta, d.m, d.k);
    let (rsb, csb) = strides(tb, d.k, d.n);
    let mn = d.m * d.n;
    if mn == 0 {
        return;
    }
    let one = |i: usize, ci: &mut [f32]| {
        let ai = &a[i * d.stride_a..i * d.stride_a + d.m * d.k];
        let bi = &b[i * d.stride_b..i * d.stride_b + d.k * d.n];
        if d.k == 0 {
            // matrixmultiply handles k = 0, but be explicit: result is beta * c.
            ci.iter_mut()
                .for_each(|x| *x = if beta == 0.0 { 0.0 } else { beta * *x });
            return;
        }
        // SAFETY: slices are exactly the sizes the strides address (m*k, k*n, m*n).
        unsafe {
            matrixmultiply::sgemm(
                d.m,
                d.k,
                d.n,
                alpha,
                ai.as_ptr(),
                rsa,
                csa,
                bi.as_ptr(),
                rsb,
                csb,
                beta,
                ci.as_mut_ptr(),
                d.n as isize,
                1,
            )
        }
    };
    // Many small matrices: parallelise over the batch; big ones: matrixmultiply threads itself.
    if d.batch > 1 && d.m * d.n * d.k < (1 << 18) {
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
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m * n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    // SAFETY: the assert above keeps every address the strides reach inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
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
