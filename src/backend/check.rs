//! The contracts of the core and model ops: one check function per op, called once by the
//! trait's public op method ([`super::Backend`], [`super::model_ops::ModelOps`]) before the
//! backend's kernel runs. The dims structs they return can only be built here, so a kernel
//! cannot run on unchecked dimensions.

use super::{Csr, DType, IndexPlan, LstmCache, OpResult, ProductGrad, Targets, Tensor, MAX_TOPK};
use crate::error::OpError;

// --- core ops --------------------------------------------------------------------------------

/// Resolved matmul geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulDims {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// Element strides between batch entries (0 = shared operand).
    pub stride_a: usize,
    pub stride_b: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    /// Either operand is 3-D, so the result is `[batch, m, n]`.
    batched: bool,
}

impl MatmulDims {
    /// Shape of the product: `[m, n]` or `[batch, m, n]`.
    pub fn out_shape(&self) -> Vec<usize> {
        if self.batched {
            vec![self.batch, self.m, self.n]
        } else {
            vec![self.m, self.n]
        }
    }
}

/// `(batch, rows, cols)` of a matmul operand after `op`; the batch is `None` for a 2-D operand
/// (shared across the other's batch), which a 3-D operand with a batch of 0 is not.
fn split(shape: &[usize], trans: bool) -> Option<(Option<usize>, usize, usize)> {
    let (b, r, c) = match shape {
        [r, c] => (None, *r, *c),
        [b, r, c] => (Some(*b), *r, *c),
        _ => return None,
    };
    let (r, c) = if trans { (c, r) } else { (r, c) };
    Some((b, r, c))
}

pub fn matmul<S>(
    a: &Tensor<S>,
    b: &Tensor<S>,
    trans_a: bool,
    trans_b: bool,
) -> OpResult<MatmulDims> {
    a.expect_dtype("matmul", DType::F32)?;
    b.expect_dtype("matmul", DType::F32)?;
    let err = |detail: String| OpError::Shape {
        op: "matmul",
        detail,
    };
    let (ba, m, k) = split(a.shape(), trans_a)
        .ok_or_else(|| err(format!("a must be 2-D or 3-D, got {:?}", a.shape())))?;
    let (bb, k2, n) = split(b.shape(), trans_b)
        .ok_or_else(|| err(format!("b must be 2-D or 3-D, got {:?}", b.shape())))?;
    if k != k2 {
        return Err(err(format!(
            "inner sizes differ: a {:?} (trans {trans_a}) vs b {:?} (trans {trans_b})",
            a.shape(),
            b.shape()
        )));
    }
    let batch = match (ba, bb) {
        (None, None) => 1,
        (Some(x), None) | (None, Some(x)) => x,
        (Some(x), Some(y)) if x == y => x,
        (Some(x), Some(y)) => return Err(err(format!("batch sizes differ: {x} vs {y}"))),
    };
    Ok(MatmulDims {
        batch,
        m,
        k,
        n,
        stride_a: if ba.is_none() { 0 } else { m * k },
        stride_b: if bb.is_none() { 0 } else { k * n },
        trans_a,
        trans_b,
        batched: a.shape().len() == 3 || b.shape().len() == 3,
    })
}

/// [`matmul`] plus a bias `[n]` (one value per output column).
pub fn matmul_bias<S>(
    a: &Tensor<S>,
    b: &Tensor<S>,
    trans_a: bool,
    trans_b: bool,
    bias: &Tensor<S>,
) -> OpResult<MatmulDims> {
    let d = matmul(a, b, trans_a, trans_b)?;
    bias.expect_dtype("matmul_bias", DType::F32)?;
    if bias.len() != d.n {
        return Err(OpError::Shape {
            op: "matmul_bias",
            detail: format!("bias has {} values for {} output columns", bias.len(), d.n),
        });
    }
    Ok(d)
}

/// [`matmul`] into an existing `out` of the product's shape.
pub fn matmul_into<S>(
    out: &Tensor<S>,
    a: &Tensor<S>,
    b: &Tensor<S>,
    trans_a: bool,
    trans_b: bool,
) -> OpResult<MatmulDims> {
    let d = matmul(a, b, trans_a, trans_b)?;
    let shape = d.out_shape();
    if out.shape() != shape.as_slice() {
        return Err(OpError::Shape {
            op: "matmul_into",
            detail: format!("out is {:?}, product is {:?}", out.shape(), shape),
        });
    }
    out.expect_dtype("matmul_into", DType::F32)?;
    Ok(d)
}

pub fn same_len<S>(op: &'static str, a: &Tensor<S>, b: &Tensor<S>) -> OpResult<()> {
    if a.len() != b.len() {
        return Err(OpError::Shape {
            op,
            detail: format!("{:?} vs {:?}", a.shape(), b.shape()),
        });
    }
    Ok(())
}

/// Two f32 tensors of the same length (element-wise ops without broadcast).
pub fn same_len_f32<S>(op: &'static str, a: &Tensor<S>, b: &Tensor<S>) -> OpResult<()> {
    a.expect_dtype(op, DType::F32)?;
    b.expect_dtype(op, DType::F32)?;
    same_len(op, a, b)
}

pub fn broadcast<S>(op: &'static str, a: &Tensor<S>, b: &Tensor<S>) -> OpResult<()> {
    a.expect_dtype(op, DType::F32)?;
    b.expect_dtype(op, DType::F32)?;
    if b.is_empty() && !a.is_empty() || (!b.is_empty() && !a.len().is_multiple_of(b.len())) {
        return Err(OpError::Shape {
            op,
            detail: format!(
                "right operand {:?} does not broadcast over {:?} (its size must divide the left's)",
                b.shape(),
                a.shape()
            ),
        });
    }
    Ok(())
}

/// The element count of `shape`, refused when its `f32`s could not be addressed (more than
/// `isize::MAX` bytes): a product that wrapped would describe storage the tensor does not have.
pub fn elements(op: &'static str, shape: &[usize]) -> OpResult<usize> {
    const MAX: usize = isize::MAX as usize / 4;
    match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(n) if n <= MAX => Ok(n),
        _ => Err(OpError::Shape {
            op,
            detail: format!("shape {shape:?} has more than {MAX} elements"),
        }),
    }
}

pub fn shape_len(op: &'static str, shape: &[usize], len: usize) -> OpResult<()> {
    let n = elements(op, shape)?;
    if n != len {
        return Err(OpError::Shape {
            op,
            detail: format!("shape {shape:?} needs {n} elements, got {len}"),
        });
    }
    Ok(())
}

/// [`super::Backend::write_f32`]: an f32 tensor with as many elements as `len`.
pub fn write_f32<S>(t: &Tensor<S>, len: usize) -> OpResult<()> {
    t.expect_dtype("write_f32", DType::F32)?;
    shape_len("write_f32", t.shape(), len)
}

pub fn gather<S>(table: &Tensor<S>, plan: &IndexPlan<S>) -> OpResult<()> {
    table.expect_dtype("gather_rows", DType::F32)?;
    if table.shape().len() != 2 || table.shape()[0] != plan.table_rows {
        return Err(OpError::Shape {
            op: "gather_rows",
            detail: format!(
                "table {:?} vs plan built for {} rows",
                table.shape(),
                plan.table_rows
            ),
        });
    }
    Ok(())
}

pub fn scatter<S>(dst: &Tensor<S>, src: &Tensor<S>, plan: &IndexPlan<S>) -> OpResult<()> {
    dst.expect_dtype("scatter_add_rows", DType::F32)?;
    src.expect_dtype("scatter_add_rows", DType::F32)?;
    let ok = dst.shape().len() == 2
        && src.shape().len() == 2
        && dst.shape()[0] == plan.table_rows
        && src.shape()[0] == plan.len
        && dst.shape()[1] == src.shape()[1];
    if !ok {
        return Err(OpError::Shape {
            op: "scatter_add_rows",
            detail: format!(
                "dst {:?}, src {:?}, plan {} positions into {} rows",
                dst.shape(),
                src.shape(),
                plan.len,
                plan.table_rows
            ),
        });
    }
    Ok(())
}

pub fn cross_entropy_tile<S>(
    logits: &Tensor<S>,
    lse: &Tensor<S>,
    row_weight: &Tensor<S>,
    t: &Targets<S>,
) -> OpResult<()> {
    cross_entropy(logits, t)?;
    for (name, v) in [("lse", lse), ("row_weight", row_weight)] {
        v.expect_dtype("cross_entropy_tile", DType::F32)?;
        if v.len() != t.rows {
            return Err(OpError::Shape {
                op: "cross_entropy_tile",
                detail: format!("{name} has {} values for {} rows", v.len(), t.rows),
            });
        }
    }
    Ok(())
}

pub fn cross_entropy<S>(logits: &Tensor<S>, t: &Targets<S>) -> OpResult<()> {
    logits.expect_dtype("cross_entropy", DType::F32)?;
    if logits.rows() != t.rows || logits.cols() != t.classes {
        return Err(OpError::Shape {
            op: "cross_entropy",
            detail: format!(
                "logits {:?} vs targets for {} rows x {} classes",
                logits.shape(),
                t.rows,
                t.classes
            ),
        });
    }
    Ok(())
}

// --- model ops -------------------------------------------------------------------------------

/// `(batch, steps, hidden)` of a recurrence or time-mask input `[B, L, H·mult]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqDims {
    batch: usize,
    steps: usize,
    hidden: usize,
}

impl SeqDims {
    pub fn batch(&self) -> usize {
        self.batch
    }
    pub fn steps(&self) -> usize {
        self.steps
    }
    pub fn hidden(&self) -> usize {
        self.hidden
    }
}

pub fn expect_len<S>(op: &'static str, what: &str, t: &Tensor<S>, len: usize) -> OpResult<()> {
    if t.len() != len {
        return Err(OpError::Shape {
            op,
            detail: format!("{what} has shape {:?}, expected {len} elements", t.shape()),
        });
    }
    Ok(())
}

/// An f32 `[1]` device scalar.
fn scalar<S>(op: &'static str, what: &str, t: &Tensor<S>) -> OpResult<()> {
    t.expect_dtype(op, DType::F32)?;
    expect_len(op, what, t, 1)
}

/// `(batch, steps, hidden)` of a `[B, L, H·hidden_mult]` tensor with a `[B, L]` mask.
fn seq_dims<S>(
    op: &'static str,
    x: &Tensor<S>,
    mask: &Tensor<S>,
    hidden_mult: usize,
) -> OpResult<SeqDims> {
    x.expect_dtype(op, DType::F32)?;
    mask.expect_dtype(op, DType::F32)?;
    match (x.shape(), mask.shape()) {
        ([b, l, h], [mb, ml]) if b == mb && l == ml && h % hidden_mult == 0 => Ok(SeqDims {
            batch: *b,
            steps: *l,
            hidden: h / hidden_mult,
        }),
        _ => Err(OpError::Shape {
            op,
            detail: format!(
                "expected x [B, L, {hidden_mult}H] and mask [B, L], got {:?} and {:?}",
                x.shape(),
                mask.shape()
            ),
        }),
    }
}

pub fn indrnn_forward<S>(pre: &Tensor<S>, u: &Tensor<S>, mask: &Tensor<S>) -> OpResult<SeqDims> {
    let d = seq_dims("indrnn_forward", pre, mask, 1)?;
    u.expect_dtype("indrnn_forward", DType::F32)?;
    expect_len("indrnn_forward", "u", u, d.hidden)?;
    Ok(d)
}

pub fn indrnn_backward<S>(
    pre: &Tensor<S>,
    u: &Tensor<S>,
    mask: &Tensor<S>,
    h: &Tensor<S>,
    dh: &Tensor<S>,
) -> OpResult<SeqDims> {
    let d = seq_dims("indrnn_backward", pre, mask, 1)?;
    u.expect_dtype("indrnn_backward", DType::F32)?;
    expect_len("indrnn_backward", "u", u, d.hidden)?;
    same_len_f32("indrnn_backward", pre, h)?;
    same_len_f32("indrnn_backward", pre, dh)?;
    Ok(d)
}

pub fn lstm_forward<S>(xw: &Tensor<S>, wh: &Tensor<S>, mask: &Tensor<S>) -> OpResult<SeqDims> {
    let d = seq_dims("lstm_forward", xw, mask, 4)?;
    let h = d.hidden;
    if wh.shape() != [h, 4 * h] {
        return Err(OpError::Shape {
            op: "lstm_forward",
            detail: format!("wh is {:?}, expected [{h}, {}]", wh.shape(), 4 * h),
        });
    }
    wh.expect_dtype("lstm_forward", DType::F32)?;
    Ok(d)
}

pub fn lstm_backward<S>(
    cache: &LstmCache<Tensor<S>>,
    wh: &Tensor<S>,
    mask: &Tensor<S>,
    dh: &Tensor<S>,
) -> OpResult<SeqDims> {
    let d = seq_dims("lstm_backward", &cache.gates, mask, 4)?;
    let shape = [d.batch, d.steps, d.hidden];
    for (what, t) in [("h", &cache.h), ("c", &cache.c)] {
        t.expect_dtype("lstm_backward", DType::F32)?;
        expect_len("lstm_backward", what, t, shape.iter().product())?;
    }
    same_len_f32("lstm_backward", &cache.h, dh)?;
    wh.expect_dtype("lstm_backward", DType::F32)?;
    expect_len("lstm_backward", "wh", wh, 4 * d.hidden * d.hidden)?;
    Ok(d)
}

/// `time_mask_mul`'s `x` `[B, L, H]` and its `[B, H]` mask (one row per sequence, shared over
/// time).
/// `x` must be an f32 `[B, L, H]` sequence block; its dimensions.
fn seq_block<S>(op: &'static str, x: &Tensor<S>) -> OpResult<SeqDims> {
    x.expect_dtype(op, DType::F32)?;
    match x.shape() {
        [b, l, h] => Ok(SeqDims {
            batch: *b,
            steps: *l,
            hidden: *h,
        }),
        s => Err(OpError::Shape {
            op,
            detail: format!("x must be [B, L, H], got {s:?}"),
        }),
    }
}

pub fn time_mask_mul<S>(x: &Tensor<S>, mask: &Tensor<S>) -> OpResult<SeqDims> {
    let op = "time_mask_mul";
    let d = seq_block(op, x)?;
    mask.expect_dtype(op, DType::F32)?;
    expect_len(op, "mask", mask, d.batch * d.hidden)?;
    Ok(d)
}

/// `x` `[B, L, H]` f32 and a `[B, H]` mask of keep probability `keep` (see [`dropout_mask`]).
pub fn dropout_time<S>(x: &Tensor<S>, keep: f32) -> OpResult<()> {
    let d = seq_block("dropout_time", x)?;
    dropout_mask(&[d.batch, d.hidden], keep)
}

/// `dropout_mask`: a keep probability in `(0, 1]` and a mask whose entries a `u32` counts.
pub fn dropout_mask(shape: &[usize], keep: f32) -> OpResult<()> {
    let op = "dropout_mask";
    if !(keep > 0.0 && keep <= 1.0) {
        return Err(OpError::Invalid {
            op,
            detail: format!("keep probability {keep} is not in (0, 1]"),
        });
    }
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n.is_none_or(|n| n > u32::MAX as usize) {
        return Err(OpError::Shape {
            op,
            detail: format!("mask {shape:?} has more than 2^32 - 1 entries"),
        });
    }
    Ok(())
}

pub fn sum_squares_into<S>(acc: &Tensor<S>, x: &Tensor<S>) -> OpResult<()> {
    scalar("sum_squares_into", "acc", acc)?;
    x.expect_dtype("sum_squares_into", DType::F32)
}

/// A `[1]` sum of squares and a norm limit above 0 (infinity: no clipping); a limit of 0, below
/// 0 or NaN would give a scale that zeroes, flips or poisons every gradient.
pub fn clip_scale<S>(sumsq: &Tensor<S>, max_norm: f32) -> OpResult<()> {
    scalar("clip_scale", "sumsq", sumsq)?;
    if max_norm.is_nan() || max_norm <= 0.0 {
        return Err(OpError::Invalid {
            op: "clip_scale",
            detail: format!("max_norm {max_norm} must be > 0"),
        });
    }
    Ok(())
}

/// `clamp`'s bounds: neither NaN, `lo ≤ hi` (the CPU's `f32::clamp` panics otherwise, and a
/// shader's `clamp` is undefined).
pub fn clamp_bounds(op: &'static str, lo: f32, hi: f32) -> OpResult<()> {
    if lo.is_nan() || hi.is_nan() || lo > hi {
        return Err(OpError::Invalid {
            op,
            detail: format!("clamp bounds [{lo}, {hi}] must be ordered numbers (lo <= hi)"),
        });
    }
    Ok(())
}

pub fn adam_step<S>(
    p: &Tensor<S>,
    g: &Tensor<S>,
    m: &Tensor<S>,
    v: &Tensor<S>,
    scale: &Tensor<S>,
) -> OpResult<()> {
    for t in [g, m, v] {
        same_len_f32("adam_step", p, t)?;
    }
    scalar("adam_step", "scale", scale)
}

/// A product gradient: g `[K, N]` and u `[K, D]` (f32, the same K); routed rows `[positions,
/// D]` with a plan over N rows.
pub fn product_grad<S>(pg: &ProductGrad<'_, S>) -> OpResult<()> {
    let op = "product_grad";
    pg.g.expect_dtype(op, DType::F32)?;
    pg.u.expect_dtype(op, DType::F32)?;
    let (g, u) = (pg.g.shape(), pg.u.shape());
    if g.len() != 2 || u.len() != 2 || g[0] != u[0] {
        return Err(OpError::Shape {
            op,
            detail: format!("g {g:?} and u {u:?}: want [K, N] and [K, D]"),
        });
    }
    if let Some((src, plan)) = pg.rows {
        src.expect_dtype(op, DType::F32)?;
        let s = src.shape();
        if s.len() != 2 || s[0] != plan.len || s[1] != u[1] || plan.table_rows != g[1] {
            return Err(OpError::Shape {
                op,
                detail: format!(
                    "routed rows {s:?}, plan of {} positions into {} rows, for a gradient of {} x {}",
                    plan.len, plan.table_rows, g[1], u[1]
                ),
            });
        }
    }
    Ok(())
}

/// A table `[N, D]` with its moments, the rows of its product gradient `[S, D]` and a scalar
/// scale.
pub fn adam_table<S>(
    p: &Tensor<S>,
    m: &Tensor<S>,
    v: &Tensor<S>,
    pg: &ProductGrad<'_, S>,
    rows: &Tensor<S>,
    scale: &Tensor<S>,
) -> OpResult<()> {
    let op = "adam_table";
    p.expect_dtype(op, DType::F32)?;
    rows.expect_dtype(op, DType::F32)?;
    for t in [m, v] {
        same_len_f32(op, p, t)?;
    }
    let (n, d) = (pg.table_rows(), pg.u.cols());
    if p.shape() != [n, d] || rows.shape() != [pg.segments(), d] {
        return Err(OpError::Shape {
            op,
            detail: format!(
                "table {:?}, rows {:?}, for a gradient of {n} x {d} with {} named rows",
                p.shape(),
                rows.shape(),
                pg.segments()
            ),
        });
    }
    scalar(op, "scale", scale)
}

/// A CSR block `[rows, ncols]` applied to the dense `x`: its rows must be `x`'s rows and its
/// columns within `x`'s (the contents were checked when the block was built).
fn csr_fits<S>(op: &'static str, x: &Tensor<S>, c: &Csr<S>, vals: bool) -> OpResult<()> {
    x.expect_dtype(op, DType::F32)?;
    if c.rows() != x.rows() || c.ncols() > x.cols() {
        return Err(OpError::Shape {
            op,
            detail: format!(
                "CSR block of {} rows x {} columns over a dense {:?}",
                c.rows(),
                c.ncols(),
                x.shape()
            ),
        });
    }
    if vals {
        c.expect_vals(op)?;
    }
    Ok(())
}

pub fn mask_entries<S>(x: &Tensor<S>, c: &Csr<S>) -> OpResult<()> {
    csr_fits("mask_entries", x, c, false)
}

pub fn csr_axpy<S>(x: &Tensor<S>, c: &Csr<S>, alpha: &Tensor<S>) -> OpResult<()> {
    csr_fits("csr_axpy", x, c, true)?;
    scalar("csr_axpy", "alpha", alpha)
}

pub fn csr_row_dot<S>(g: &Tensor<S>, c: &Csr<S>) -> OpResult<()> {
    csr_fits("csr_row_dot", g, c, true)
}

/// The item-neighbourhood ops over a catalogue tile `x [rows, cols]` starting at song `lo`:
/// `history` is `[rows, songs]`, `neighbours` `[songs, songs]` with values and strictly
/// increasing columns in every row (so no two entries of one song's list add into the same
/// element: the GPU adds a list in parallel), and the tile lies inside the catalogue.
pub fn neighbour_tile<S>(
    op: &'static str,
    x: &Tensor<S>,
    lo: usize,
    history: &Csr<S>,
    neighbours: &Csr<S>,
) -> OpResult<()> {
    x.expect_dtype(op, DType::F32)?;
    let songs = neighbours.rows();
    let shape = |detail: String| OpError::Shape { op, detail };
    if neighbours.ncols() != songs || history.ncols() != songs {
        return Err(shape(format!(
            "neighbour lists [{songs}, {}] and histories [{}, {}] must both span the catalogue",
            neighbours.ncols(),
            history.rows(),
            history.ncols()
        )));
    }
    if history.rows() != x.rows() || lo.checked_add(x.cols()).is_none_or(|end| end > songs) {
        return Err(shape(format!(
            "tile {:?} at song {lo} for {} histories over {songs} songs",
            x.shape(),
            history.rows()
        )));
    }
    neighbours.expect_vals(op)?;
    if !neighbours.sorted() {
        return Err(OpError::Invalid {
            op,
            detail: "every song's neighbour columns must strictly increase".into(),
        });
    }
    Ok(())
}

pub fn neighbour_axpy<S>(
    x: &Tensor<S>,
    lo: usize,
    history: &Csr<S>,
    neighbours: &Csr<S>,
    gamma: &Tensor<S>,
) -> OpResult<()> {
    neighbour_tile("neighbour_axpy", x, lo, history, neighbours)?;
    scalar("neighbour_axpy", "gamma", gamma)
}

pub fn neighbour_pair_grad<S>(
    out: &Tensor<S>,
    g: &Tensor<S>,
    lo: usize,
    history: &Csr<S>,
    neighbours: &Csr<S>,
) -> OpResult<()> {
    let op = "neighbour_pair_grad";
    neighbour_tile(op, g, lo, history, neighbours)?;
    out.expect_dtype(op, DType::F32)?;
    if out.shape().len() != 2 || out.rows() != history.nnz() || out.cols() < neighbours.max_row() {
        return Err(OpError::Shape {
            op,
            detail: format!(
                "out {:?} must be [{} history entries, keep >= {} (the longest list)]",
                out.shape(),
                history.nnz(),
                neighbours.max_row()
            ),
        });
    }
    Ok(())
}

pub fn neighbour_pair_scale<S>(
    neighbours: &Csr<S>,
    log_weights: &Tensor<S>,
    songs: &IndexPlan<S>,
) -> OpResult<()> {
    let op = "neighbour_pair_scale";
    neighbours.expect_vals(op)?;
    log_weights.expect_dtype(op, DType::F32)?;
    let n = neighbours.rows();
    if log_weights.shape().len() != 2
        || log_weights.rows() != n
        || log_weights.cols() < neighbours.max_row()
    {
        return Err(OpError::Shape {
            op,
            detail: format!(
                "log-weights {:?} must be [{n} songs, keep >= {} (the longest list)]",
                log_weights.shape(),
                neighbours.max_row()
            ),
        });
    }
    if songs.table_rows != n {
        return Err(OpError::Shape {
            op,
            detail: format!(
                "the songs' plan indexes a table of {} rows, the lists have {n}",
                songs.table_rows
            ),
        });
    }
    Ok(())
}

/// The host arrays of a CSR block `[rows, ncols]`: `row_ptr` `[rows + 1]` starts at 0, does not
/// decrease and ends at the number of entries; every column is below `ncols`; `vals` (if any)
/// has one finite value per entry. Returns whether every row's columns strictly increase.
pub fn csr(
    rows: usize,
    ncols: usize,
    row_ptr: &[u32],
    cols: &[u32],
    vals: Option<&[f32]>,
) -> OpResult<bool> {
    let op = "csr";
    if rows.checked_add(1) != Some(row_ptr.len()) {
        return Err(OpError::Shape {
            op,
            detail: format!("row_ptr has {} entries for {rows} rows", row_ptr.len()),
        });
    }
    if row_ptr[0] != 0
        || row_ptr[rows] as usize != cols.len()
        || row_ptr.windows(2).any(|w| w[0] > w[1])
    {
        return Err(OpError::Shape {
            op,
            detail: format!(
                "CSR row_ptr must start at 0, not decrease and end at the {} entries (runs {} to {})",
                cols.len(),
                row_ptr[0],
                row_ptr[rows]
            ),
        });
    }
    if let Some(&bad) = cols.iter().find(|&&c| c as usize >= ncols) {
        return Err(OpError::Index {
            op,
            index: bad,
            len: ncols,
        });
    }
    if let Some(v) = vals {
        if v.len() != cols.len() {
            return Err(OpError::Shape {
                op,
                detail: format!("{} values for {} columns", v.len(), cols.len()),
            });
        }
        if let Some(j) = v.iter().position(|x| !x.is_finite()) {
            return Err(OpError::Invalid {
                op,
                detail: format!("value {} of entry {j} is not finite", v[j]),
            });
        }
    }
    Ok(row_ptr.windows(2).all(|w| {
        cols[w[0] as usize..w[1] as usize]
            .windows(2)
            .all(|c| c[0] < c[1])
    }))
}

/// `x` `[R, C]` f32, `groups` `[C]` u32 (each column's group; a group past the bit set's
/// `32 · W` is in no set), `banned` `[R, W]` u32 (row `r`'s bit set of groups).
pub fn mask_groups<S>(x: &Tensor<S>, groups: &Tensor<S>, banned: &Tensor<S>) -> OpResult<()> {
    const OP: &str = "mask_groups";
    x.expect_dtype(OP, DType::F32)?;
    groups.expect_dtype(OP, DType::U32)?;
    banned.expect_dtype(OP, DType::U32)?;
    let shape = |detail: String| OpError::Shape { op: OP, detail };
    if x.shape().len() != 2 || banned.shape().len() != 2 || groups.shape().len() != 1 {
        return Err(shape(format!(
            "x {:?} and banned {:?} must be matrices and groups {:?} a vector",
            x.shape(),
            banned.shape(),
            groups.shape()
        )));
    }
    if groups.shape()[0] != x.cols() || banned.rows() != x.rows() {
        return Err(shape(format!(
            "x {:?} needs a group per column (groups {:?}) and a bit set per row (banned {:?})",
            x.shape(),
            groups.shape(),
            banned.shape()
        )));
    }
    Ok(())
}

pub fn topk_rows<S>(x: &Tensor<S>, k: usize) -> OpResult<()> {
    x.expect_dtype("topk_rows", DType::F32)?;
    if k == 0 || k > MAX_TOPK {
        return Err(OpError::Invalid {
            op: "topk_rows",
            detail: format!("k = {k} must be in 1..={MAX_TOPK}"),
        });
    }
    Ok(())
}
