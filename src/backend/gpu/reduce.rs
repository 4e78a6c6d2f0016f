//! Host side of `shaders/reduce.wgsl`: multi-pass row reductions and column sums.

use super::pipeline::Kernel;
use super::shader::{Shader, WORKGROUP_SIZE};
use super::{make_unique, raw, GpuBackend, GpuTensor};
use crate::backend::{DType, OpResult, ReduceOp};

crate::kernel_params! {
    /// Parameters of `reduce.wgsl`.
    struct Params {
        rows: u32,
        cols: u32,
        chunk: u32,
        nchunks: u32,
        scale: f32,
        /// `cols_partial` adds onto `out` instead of overwriting it.
        accumulate: u32,
        _pad: [u32; 2],
    }
}

pub static REDUCE: Shader = crate::wgsl_shader!(
    "reduce",
    Params,
    bindings: ["x", "y", "out"],
    overrides: ["OP", "MODE"],
);

/// Column sums over at most this many rows take one pass, one invocation per column.
const COLS_FINAL: usize = 256;
/// Column sums of more than `TREE_MIN_ROWS` and at most `TREE_MAX_ROWS` rows of at most
/// `TREE_MAX_COLS` columns take one `cols_tree` pass (a workgroup per 4 columns, 64 invocations
/// per column, at most 64 rows each): the gradients of biases and recurrent weights over the
/// batch's B·L rows, in one dispatch instead of two. Wider ones keep `cols_partial`, whose
/// invocations read consecutive columns.
const TREE_MIN_ROWS: usize = 64;
const TREE_MAX_ROWS: usize = 4096;
const TREE_MAX_COLS: usize = 1024;
/// Columns per `cols_tree` workgroup (`CB` in the shader).
const TREE_COLS: usize = 4;
/// Rows at most this long are folded by one invocation each.
const SMALL_ROW: usize = 64;
/// Aim for at least this many workgroups in the first pass so long rows fill the GPU.
const TARGET_GROUPS: usize = 2048;

/// Columns per workgroup in a partial pass: at least 1024, more when there are many rows.
pub(crate) fn chunk_for(rows: usize, cols: usize) -> usize {
    let want = TARGET_GROUPS.div_ceil(rows.max(1));
    cols.div_ceil(want)
        .next_multiple_of(WORKGROUP_SIZE as usize)
        .max(1024)
}

/// Folds every row of `x` (times `y` element-wise when given) to one value: `[rows]`.
fn bind<'a>(
    x: &'a GpuTensor,
    out: &'a GpuTensor,
    y: Option<&'a GpuTensor>,
) -> [(&'static str, &'a super::GpuBuffer); 3] {
    // `y` is statically used by the shader whatever MODE is, so it is always bound.
    [("x", raw(x)), ("y", raw(y.unwrap_or(x))), ("out", raw(out))]
}

pub(crate) fn fold_rows(
    g: &GpuBackend,
    x: &GpuTensor,
    y: Option<&GpuTensor>,
    rows: usize,
    cols: usize,
    max: bool,
    scale: f32,
) -> OpResult<GpuTensor> {
    let op = max as u32;
    let kernel = |entry, y: Option<&GpuTensor>| {
        Kernel::new(&REDUCE, entry)
            .with("OP", op)
            .with("MODE", y.is_some() as u32)
    };
    if rows == 0 || cols <= SMALL_ROW {
        let out = g.empty(&[rows], DType::F32, "reduce out")?;
        let p = Params {
            rows: rows as u32,
            cols: cols as u32,
            chunk: 0,
            nchunks: 1,
            scale,
            accumulate: 0,
            _pad: [0; 2],
        };
        let grid = g.grid("reduce_rows", rows as u64)?;
        g.ctx
            .dispatch(&kernel("rows_small", y), &p, &bind(x, &out, y), grid)?;
        return Ok(out);
    }
    let mut input = x.clone();
    let mut cur = cols;
    let mut y = y;
    loop {
        let chunk = chunk_for(rows, cur);
        let nchunks = cur.div_ceil(chunk);
        let dst = g.empty(&[rows * nchunks], DType::F32, "reduce partials")?;
        let p = Params {
            rows: rows as u32,
            cols: cur as u32,
            chunk: chunk as u32,
            nchunks: nchunks as u32,
            scale,
            accumulate: 0,
            _pad: [0; 2],
        };
        let grid = g.ctx.grid("reduce_rows", (rows * nchunks) as u64)?;
        g.ctx
            .dispatch(&kernel("rows_partial", y), &p, &bind(&input, &dst, y), grid)?;
        if nchunks == 1 {
            return Ok(dst);
        }
        // Later passes fold the partial results themselves (no second operand).
        input = dst;
        cur = nchunks;
        y = None;
    }
}

pub fn reduce_rows(g: &GpuBackend, op: ReduceOp, a: &GpuTensor) -> OpResult<GpuTensor> {
    let (rows, cols) = (a.rows(), a.cols());
    let scale = match op {
        ReduceOp::Mean => 1.0 / cols.max(1) as f32,
        _ => 1.0,
    };
    let out = fold_rows(g, a, None, rows, cols, op == ReduceOp::Max, scale)?;
    out.reshape(&a.shape()[..a.shape().len().saturating_sub(1)])
}

pub fn sum_cols(g: &GpuBackend, a: &GpuTensor) -> OpResult<GpuTensor> {
    let mut out = g.empty(&[a.cols()], DType::F32, "sum_cols")?;
    cols_passes(g, a, &mut out, false)?;
    Ok(out)
}

/// `acc += sum_cols(a)`: the last pass adds onto `acc` instead of overwriting it.
pub fn sum_cols_into(g: &GpuBackend, acc: &mut GpuTensor, a: &GpuTensor) -> OpResult<()> {
    make_unique(&g.ctx, acc)?;
    cols_passes(g, a, acc, true)
}

/// Column sums of `a` into `out` (`[cols]`), in passes over chunks of rows until one chunk is
/// left; `accumulate` adds the final sums onto `out`.
fn cols_passes(
    g: &GpuBackend,
    a: &GpuTensor,
    out: &mut GpuTensor,
    accumulate: bool,
) -> OpResult<()> {
    let (mut rows, cols) = (a.rows(), a.cols());
    if cols == 0 {
        return Ok(());
    }
    if rows == 0 {
        if !accumulate {
            g.ctx.clear(raw(out), cols as u64 * 4);
        }
        return Ok(());
    }
    if rows > TREE_MIN_ROWS && rows <= TREE_MAX_ROWS && cols <= TREE_MAX_COLS {
        let p = Params {
            rows: rows as u32,
            cols: cols as u32,
            chunk: rows as u32,
            nchunks: 1,
            scale: 1.0,
            accumulate: u32::from(accumulate),
            _pad: [0; 2],
        };
        return Ok(g.ctx.dispatch(
            &Kernel::new(&REDUCE, "cols_tree"),
            &p,
            &[("x", raw(a)), ("out", raw(out))],
            g.ctx.grid("sum_cols", cols.div_ceil(TREE_COLS) as u64)?,
        )?);
    }
    let mut input = a.clone();
    loop {
        // Enough (column, row-chunk) invocations to fill the GPU, at least 16 rows each, and at
        // most COLS_FINAL chunks, so that the next pass is the last: two passes at most (a
        // bias gradient over B·L rows took three). Up to COLS_FINAL rows fold in one pass.
        let nchunks = if rows <= COLS_FINAL {
            1
        } else {
            65536usize
                .div_ceil(cols)
                .clamp(1, rows.div_ceil(16).min(COLS_FINAL))
        };
        let chunk = rows.div_ceil(nchunks);
        let nchunks = rows.div_ceil(chunk);
        let last = nchunks == 1;
        let partial = (!last)
            .then(|| g.empty(&[nchunks, cols], DType::F32, "sum_cols partials"))
            .transpose()?;
        let dst = partial.as_ref().unwrap_or(out);
        let p = Params {
            rows: rows as u32,
            cols: cols as u32,
            chunk: chunk as u32,
            nchunks: nchunks as u32,
            scale: 1.0,
            accumulate: u32::from(last && accumulate),
            _pad: [0; 2],
        };
        let k = Kernel::new(&REDUCE, "cols_partial");
        g.ctx.dispatch(
            &k,
            &p,
            &[("x", raw(&input)), ("out", raw(dst))],
            g.grid("sum_cols", (cols * nchunks) as u64)?,
        )?;
        match partial {
            None => return Ok(()),
            Some(t) => input = t,
        }
        rows = nchunks;
    }
}
