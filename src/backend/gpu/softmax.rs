//! Host side of `shaders/softmax.wgsl`: softmax, log-softmax, log-sum-exp, cross-entropy.

use bytemuck::{Pod, Zeroable};

use super::pipeline::{Kernel, Shader};
use super::reduce::{chunk_for, fold_rows};
use super::{raw, GpuBackend, GpuStorage, GpuTensor};
use crate::backend::{DType, OpResult, Targets};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    chunk: u32,
    nchunks: u32,
}

fn params(rows: usize, cols: usize, chunk: usize, nchunks: usize) -> Params {
    Params {
        rows: rows as u32,
        cols: cols as u32,
        chunk: chunk as u32,
        nchunks: nchunks as u32,
    }
}

/// Log-sum-exp of every row, `[rows]`: a chunked online (max, sum) pass, then a merge per row.
fn lse(g: &GpuBackend, a: &GpuTensor) -> OpResult<GpuTensor> {
    let (rows, cols) = (a.rows(), a.cols());
    let out = g.empty(&[rows], DType::F32, "lse")?;
    if rows == 0 {
        return Ok(out);
    }
    let chunk = chunk_for(rows, cols);
    let nchunks = cols.div_ceil(chunk).max(1);
    let partials = g.empty(&[rows * nchunks * 2], DType::F32, "lse partials")?;
    let p = params(rows, cols, chunk, nchunks);
    g.ctx.dispatch(
        &Kernel::new(Shader::Softmax, "lse_partial"),
        bytemuck::bytes_of(&p),
        &[(1, raw(a)), (3, raw(&partials))],
        g.ctx.grid("logsumexp_rows", (rows * nchunks) as u64)?,
    )?;
    g.ctx.dispatch(
        &Kernel::new(Shader::Softmax, "lse_finish"),
        bytemuck::bytes_of(&p),
        &[(2, raw(&partials)), (3, raw(&out))],
        g.grid("logsumexp_rows", rows as u64)?,
    )?;
    Ok(out)
}

pub fn logsumexp_rows(g: &GpuBackend, a: &GpuTensor) -> OpResult<GpuTensor> {
    lse(g, a)?.reshape(&a.shape()[..a.shape().len().saturating_sub(1)])
}

pub fn softmax_rows(g: &GpuBackend, a: &GpuTensor, log: bool) -> OpResult<GpuTensor> {
    let l = lse(g, a)?;
    let out = g.empty(a.shape(), DType::F32, "softmax out")?;
    let p = params(a.rows(), a.cols(), 0, 0);
    g.ctx.dispatch(
        &Kernel::new(Shader::Softmax, "softmax_apply").with("MODE", log as u32),
        bytemuck::bytes_of(&p),
        &[(1, raw(a)), (2, raw(&l)), (3, raw(&out))],
        g.grid("softmax_rows", a.len() as u64)?,
    )?;
    Ok(out)
}

pub fn softmax_rows_backward(
    g: &GpuBackend,
    y: &GpuTensor,
    dy: &GpuTensor,
    log: bool,
) -> OpResult<GpuTensor> {
    let (rows, cols) = (y.rows(), y.cols());
    // s = Σ dy (log-softmax) or Σ dy·y (softmax), per row.
    let s = fold_rows(
        g,
        dy,
        if log { None } else { Some(y) },
        rows,
        cols,
        false,
        1.0,
    )?;
    let out = g.empty(dy.shape(), DType::F32, "softmax backward out")?;
    let p = params(rows, cols, 0, 0);
    g.ctx.dispatch(
        &Kernel::new(Shader::Softmax, "softmax_backward").with("MODE", log as u32),
        bytemuck::bytes_of(&p),
        &[(1, raw(y)), (2, raw(dy)), (3, raw(&out)), (4, raw(&s))],
        g.grid("softmax_rows_backward", dy.len() as u64)?,
    )?;
    Ok(out)
}

pub fn cross_entropy(
    g: &GpuBackend,
    logits: &GpuTensor,
    t: &Targets<GpuStorage>,
) -> OpResult<(GpuTensor, GpuTensor)> {
    let l = lse(g, logits)?;
    ce(g, logits, &l, None, t)
}

pub fn cross_entropy_tile(
    g: &GpuBackend,
    logits: &GpuTensor,
    lse: &GpuTensor,
    row_weight: &GpuTensor,
    t: &Targets<GpuStorage>,
) -> OpResult<(GpuTensor, GpuTensor)> {
    ce(g, logits, lse, Some(row_weight), t)
}

/// Loss over the given columns and the gradient. `row_weight = None`: the targets cover the
/// whole row, so their weight sums are computed here (`ce_rows` writes them).
fn ce(
    g: &GpuBackend,
    logits: &GpuTensor,
    l: &GpuTensor,
    row_weight: Option<&GpuTensor>,
    t: &Targets<GpuStorage>,
) -> OpResult<(GpuTensor, GpuTensor)> {
    let (rows, cols) = (logits.rows(), logits.cols());
    let loss = g.empty(&[rows], DType::F32, "ce loss")?;
    let wsum = g.empty(&[rows], DType::F32, "ce weight sums")?;
    let grad = g.empty(logits.shape(), DType::F32, "ce grad")?;
    let p = params(rows, cols, 0, 0);
    let pb = bytemuck::bytes_of(&p);
    let (rp, tc, tw) = (raw(&t.row_ptr), raw(&t.cols), raw(&t.weights));
    let row_grid = g.grid("cross_entropy", rows as u64)?;
    g.ctx.dispatch(
        &Kernel::new(Shader::Softmax, "ce_rows"),
        pb,
        &[
            (1, raw(logits)),
            (2, raw(l)),
            (3, raw(&loss)),
            (5, rp),
            (6, tc),
            (7, tw),
            (8, raw(&wsum)),
        ],
        row_grid,
    )?;
    g.ctx.dispatch(
        &Kernel::new(Shader::Softmax, "ce_grad"),
        pb,
        &[
            (1, raw(logits)),
            (2, raw(l)),
            (3, raw(&grad)),
            (4, raw(row_weight.unwrap_or(&wsum))),
        ],
        g.grid("cross_entropy", logits.len() as u64)?,
    )?;
    g.ctx.dispatch(
        &Kernel::new(Shader::Softmax, "ce_targets"),
        pb,
        &[(3, raw(&grad)), (5, rp), (6, tc), (7, tw)],
        row_grid,
    )?;
    Ok((loss, grad))
}
