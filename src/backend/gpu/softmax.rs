//! Host side of `shaders/softmax.wgsl`: softmax, log-softmax, log-sum-exp, cross-entropy.

use super::context::Work;
use super::pipeline::Kernel;
use super::reduce::{chunk_for, fold_rows};
use super::shader::Shader;
use super::{raw, GpuBackend, GpuStorage, GpuTensor};
use crate::backend::{DType, OpResult, Targets};

crate::kernel_params! {
    /// Parameters of `softmax.wgsl`.
    struct Params {
        rows: u32,
        cols: u32,
        chunk: u32,
        nchunks: u32,
    }
}

pub static SOFTMAX: Shader = crate::wgsl_shader!(
    "softmax",
    Params,
    bindings: ["x", "aux", "out", "aux2", "row_ptr", "tcols", "tw", "out2"],
    overrides: ["MODE"],
);

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
        &Kernel::new(&SOFTMAX, "lse_partial"),
        &p,
        &[("x", raw(a)), ("out", raw(&partials))],
        g.ctx.grid("logsumexp_rows", (rows * nchunks) as u64)?,
    )?;
    g.ctx.dispatch(
        &Kernel::new(&SOFTMAX, "lse_finish"),
        &p,
        &[("aux", raw(&partials)), ("out", raw(&out))],
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
        &Kernel::new(&SOFTMAX, "softmax_apply").with("MODE", log as u32),
        &p,
        &[("x", raw(a)), ("aux", raw(&l)), ("out", raw(&out))],
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
        &Kernel::new(&SOFTMAX, "softmax_backward").with("MODE", log as u32),
        &p,
        &[
            ("x", raw(y)),
            ("aux", raw(dy)),
            ("out", raw(&out)),
            ("aux2", raw(&s)),
        ],
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
    let pb = &p;
    let (rp, tc, tw) = (raw(&t.row_ptr), raw(&t.cols), raw(&t.weights));
    let row_grid = g.grid("cross_entropy", rows as u64)?;
    // The two per-row kernels read the targets' logits (or gradients), not the rows bound:
    // per row its target range and outputs, per target its column, weight and cell.
    let nnz = t.cols.len();
    g.ctx.dispatch_work(
        &Kernel::new(&SOFTMAX, "ce_rows"),
        pb,
        &[
            ("x", raw(logits)),
            ("aux", raw(l)),
            ("out", raw(&loss)),
            ("row_ptr", rp),
            ("tcols", tc),
            ("tw", tw),
            ("out2", raw(&wsum)),
        ],
        row_grid,
        Work::words((5 * rows + 3 * nnz) as f64),
    )?;
    g.ctx.dispatch(
        &Kernel::new(&SOFTMAX, "ce_grad"),
        pb,
        &[
            ("x", raw(logits)),
            ("aux", raw(l)),
            ("out", raw(&grad)),
            ("aux2", raw(row_weight.unwrap_or(&wsum))),
        ],
        g.grid("cross_entropy", logits.len() as u64)?,
    )?;
    g.ctx.dispatch_work(
        &Kernel::new(&SOFTMAX, "ce_targets"),
        pb,
        &[
            ("out", raw(&grad)),
            ("row_ptr", rp),
            ("tcols", tc),
            ("tw", tw),
        ],
        row_grid,
        Work::words((2 * rows + 4 * nnz) as f64),
    )?;
    Ok((loss, grad))
}
