//! Host side of `shaders/table.wgsl`: a song table's AdamW step with its catalogue gradient
//! formed in the tiles where it is used, and the rows of that gradient the history touches.

use super::context::Work;
use super::pipeline::Kernel;
use super::shader::Shader;
use super::{make_unique, raw, GpuBackend, GpuStorage, GpuTensor};
use crate::backend::model_ops::{AdamStep, ProductGrad};
use crate::backend::{Backend, DType, OpResult};

crate::kernel_params! {
    /// Parameters of `table.wgsl`.
    struct Params {
        n: u32,
        d: u32,
        k: u32,
        nseg: u32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        bias1: f32,
        bias2: f32,
        lo: f32,
        hi: f32,
        _pad: [u32; 3],
    }
}

pub static TABLE: Shader = crate::wgsl_shader!(
    "table",
    Params,
    bindings: [
        "g", "u", "src", "order", "seg_rows", "seg_ptr", "x", "corr", "xr", "param", "m", "v",
        "scale",
    ],
);

/// Rows and columns of `table_adam`'s tile.
const TILE: usize = 64;

fn dims(pg: &ProductGrad<'_, GpuStorage>) -> Params {
    Params {
        n: pg.table_rows() as u32,
        d: pg.u.cols() as u32,
        k: pg.g.rows() as u32,
        nseg: pg.segments() as u32,
        ..Default::default()
    }
}

pub fn table_rows(
    gb: &GpuBackend,
    pg: &ProductGrad<'_, GpuStorage>,
) -> OpResult<(GpuTensor, GpuTensor)> {
    let d = pg.u.cols();
    let s = pg.segments();
    let (Some((src, plan)), true) = (pg.rows, s > 0 && d > 0) else {
        return Ok((gb.zeros(&[s, d])?, gb.zeros(&[s, 1])?));
    };
    let x = gb.empty(&[s, d], DType::F32, "table rows")?;
    let corr = gb.empty(&[s, 1], DType::F32, "table rows' norm")?;
    // Per touched row: its K gradients and u (K x D), its routed source rows and their order,
    // its output row and norm; a K-long dot per element. Not the gradient and table bound.
    let k = pg.g.rows();
    let work = Work {
        flops: (2 * s * d * k) as f64,
        ..Work::words((s * (k + k * d + d + 3) + plan.len * (d + 1)) as f64)
    };
    gb.ctx.dispatch_work(
        &Kernel::new(&TABLE, "table_rows"),
        &dims(pg),
        &[
            ("g", raw(pg.g)),
            ("u", raw(pg.u)),
            ("src", raw(src)),
            ("order", raw(&plan.order)),
            ("seg_rows", raw(&plan.seg_rows)),
            ("seg_ptr", raw(&plan.seg_ptr)),
            ("x", raw(&x)),
            ("corr", raw(&corr)),
        ],
        gb.ctx.grid("table_rows", s as u64)?,
        work,
    )?;
    Ok((x, corr))
}

#[allow(clippy::too_many_arguments)]
pub fn adam_table(
    gb: &GpuBackend,
    p: &mut GpuTensor,
    m: &mut GpuTensor,
    v: &mut GpuTensor,
    pg: &ProductGrad<'_, GpuStorage>,
    rows: &GpuTensor,
    scale: &GpuTensor,
    s: &AdamStep,
) -> OpResult<()> {
    for t in [&mut *p, &mut *m, &mut *v] {
        make_unique(&gb.ctx, t)?;
    }
    if p.is_empty() {
        return Ok(());
    }
    let ((bias1, bias2), (lo, hi)) = (s.bias_corrections(), s.bounds());
    let prm = Params {
        lr: s.lr,
        beta1: s.beta1,
        beta2: s.beta2,
        eps: s.eps,
        weight_decay: s.weight_decay,
        bias1,
        bias2,
        lo,
        hi,
        ..dims(pg)
    };
    // Without named rows nothing reads `seg_rows` or `xr` (nseg = 0): g stands in, bound
    // read-only like them (an empty buffer cannot be bound).
    let (seg_rows, xr) = match pg.rows {
        Some((_, plan)) if plan.segments > 0 => (raw(&plan.seg_rows), raw(rows)),
        _ => (raw(pg.g), raw(pg.g)),
    };
    let (n, d, k) = (pg.table_rows(), pg.u.cols(), pg.g.rows());
    let tiles = n.div_ceil(TILE) * d.div_ceil(TILE);
    // Every element's value and moments read and written; g read once per tile column (u, K x
    // D, is small); the touched rows' gradients. The gradient's product, 2·N·D·K operations.
    let nseg = pg.rows.map_or(0, |(_, plan)| plan.segments);
    let work = Work {
        flops: (2 * n * d * k) as f64,
        ..Work::words((6 * n * d + d.div_ceil(TILE) * n * k + nseg * (d + 1)) as f64)
    };
    gb.ctx.dispatch_work(
        &Kernel::new(&TABLE, "table_adam"),
        &prm,
        &[
            ("g", raw(pg.g)),
            ("u", raw(pg.u)),
            ("seg_rows", seg_rows),
            ("xr", xr),
            ("param", raw(p)),
            ("m", raw(m)),
            ("v", raw(v)),
            ("scale", raw(scale)),
        ],
        gb.ctx.grid("adam_table", tiles as u64)?,
        work,
    )?;
    Ok(())
}
