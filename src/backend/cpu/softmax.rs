//! Row-wise softmax, log-softmax, log-sum-exp and fused cross-entropy on the CPU.
//! A row whose entries are all -inf (fully masked) gives softmax 0 and log-sum-exp -inf.

use rayon::prelude::*;

use super::math::{exp_f32, exp_shift_scale, max_f32, sum_exp_shifted, sum_f32};
use super::{f32s, tensor, u32s, CpuStorage, CpuTensor, PAR_MIN};
use crate::backend::{OpResult, Targets};

/// `log Σ exp(x)` of one row: max subtracted, exp in f32 (each term ≤ 1), sums in f64. Online
/// over blocks that stay in L1 (block max, then its exp sum against the running max, rescaling
/// the sum when the max grows): a catalogue-tile row is read from memory once, not twice.
pub fn row_lse(row: &[f32]) -> f32 {
    const BLOCK: usize = 2048;
    let (mut m, mut s) = (f32::NEG_INFINITY, 0.0f64);
    for block in row.chunks(BLOCK) {
        let bm = max_f32(block);
        if bm == f32::NEG_INFINITY {
            continue;
        }
        if bm > m {
            s *= ((m - bm) as f64).exp();
            m = bm;
        }
        s += sum_exp_shifted(block, m);
    }
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + s.ln() as f32
}

fn rows_map(a: &[f32], cols: usize, out: &mut [f32], f: impl Fn(usize, &[f32], &mut [f32]) + Sync) {
    if cols == 0 {
        return;
    }
    if a.len() >= PAR_MIN {
        out.par_chunks_mut(cols)
            .zip(a.par_chunks(cols))
            .enumerate()
            .for_each(|(r, (o, x))| f(r, x, o));
    } else {
        out.chunks_mut(cols)
            .zip(a.chunks(cols))
            .enumerate()
            .for_each(|(r, (o, x))| f(r, x, o));
    }
}

pub fn softmax_rows(a: &CpuTensor, log: bool) -> OpResult<CpuTensor> {
    let av = f32s("softmax_rows", a)?;
    let mut out = vec![0.0f32; av.len()];
    rows_map(av, a.cols(), &mut out, |_, x, o| {
        let lse = row_lse(x);
        if lse == f32::NEG_INFINITY {
            o.fill(if log { f32::NEG_INFINITY } else { 0.0 });
        } else if log {
            o.iter_mut().zip(x).for_each(|(o, &v)| *o = v - lse);
        } else {
            exp_shift_scale(o, x, lse, 1.0);
        }
    });
    Ok(tensor(a.shape().to_vec(), out))
}

pub fn softmax_rows_backward(y: &CpuTensor, dy: &CpuTensor, log: bool) -> OpResult<CpuTensor> {
    let (yv, dv) = (
        f32s("softmax_rows_backward", y)?,
        f32s("softmax_rows_backward", dy)?,
    );
    let cols = y.cols();
    let mut out = vec![0.0f32; yv.len()];
    rows_map(dv, cols, &mut out, |r, d, o| {
        let yr = &yv[r * cols..(r + 1) * cols];
        if log {
            let s = sum_f32(d) as f32;
            for ((o, &g), &l) in o.iter_mut().zip(d).zip(yr) {
                *o = g - exp_f32(l) * s;
            }
        } else {
            let s: f64 = d.iter().zip(yr).map(|(&g, &p)| g as f64 * p as f64).sum();
            for ((o, &g), &p) in o.iter_mut().zip(d).zip(yr) {
                *o = p * (g - s as f32);
            }
        }
    });
    Ok(tensor(dy.shape().to_vec(), out))
}

pub fn logsumexp_rows(a: &CpuTensor) -> OpResult<CpuTensor> {
    let av = f32s("logsumexp_rows", a)?;
    let cols = a.cols();
    let shape = a.shape()[..a.shape().len().saturating_sub(1)].to_vec();
    let out: Vec<f32> = if cols == 0 {
        vec![f32::NEG_INFINITY; a.rows()]
    } else {
        av.par_chunks(cols).map(row_lse).collect()
    };
    Ok(tensor(shape, out))
}

pub fn cross_entropy(
    logits: &CpuTensor,
    t: &Targets<CpuStorage>,
) -> OpResult<(CpuTensor, CpuTensor)> {
    let row_ptr = u32s("cross_entropy", &t.row_ptr)?;
    let tw = f32s("cross_entropy", &t.weights)?;
    // Each row's log-sum-exp is taken in the same task that writes its gradient, while the row
    // is still in cache (a separate log-sum-exp pass read the whole block once more).
    ce_rows(logits, t, |r, zr| {
        let span = row_ptr[r] as usize..row_ptr[r + 1] as usize;
        let wsum = tw[span].iter().map(|&w| w as f64).sum::<f64>() as f32;
        (row_lse(zr), wsum)
    })
}

pub fn cross_entropy_tile(
    logits: &CpuTensor,
    lse: &CpuTensor,
    row_weight: &CpuTensor,
    t: &Targets<CpuStorage>,
) -> OpResult<(CpuTensor, CpuTensor)> {
    let lse = f32s("cross_entropy", lse)?;
    let row_weight = f32s("cross_entropy", row_weight)?;
    ce_rows(logits, t, |r, _| (lse[r], row_weight[r]))
}

/// The loss and gradient of [`cross_entropy_tile`], row by row in parallel; `stats(r, z_r)` gives
/// the row's log-sum-exp and its whole-row target weight.
fn ce_rows(
    logits: &CpuTensor,
    t: &Targets<CpuStorage>,
    stats: impl Fn(usize, &[f32]) -> (f32, f32) + Sync,
) -> OpResult<(CpuTensor, CpuTensor)> {
    let z = f32s("cross_entropy", logits)?;
    let row_ptr = u32s("cross_entropy", &t.row_ptr)?;
    let tcols = u32s("cross_entropy", &t.cols)?;
    let tw = f32s("cross_entropy", &t.weights)?;
    let cols = logits.cols();
    let mut grad = vec![0.0f32; z.len()];
    let mut loss = vec![0.0f32; t.rows];
    if cols > 0 {
        grad.par_chunks_mut(cols)
            .zip(loss.par_iter_mut())
            .enumerate()
            .for_each(|(r, (g, l))| {
                let zr = &z[r * cols..(r + 1) * cols];
                let (lse, wsum) = stats(r, zr);
                if wsum != 0.0 {
                    exp_shift_scale(g, zr, lse, wsum);
                }
                let mut acc = 0.0f64;
                for j in row_ptr[r] as usize..row_ptr[r + 1] as usize {
                    let c = tcols[j] as usize;
                    g[c] -= tw[j];
                    acc += tw[j] as f64 * (lse - zr[c]) as f64;
                }
                *l = acc as f32;
            });
    }
    Ok((
        tensor(vec![t.rows], loss),
        tensor(logits.shape().to_vec(), grad),
    ))
}
