//! Host side of `shaders/embed.wgsl`: row gather and segmented scatter-add.

use super::context::Work;
use super::pipeline::Kernel;
use super::shader::Shader;
use super::{make_unique, raw, GpuBackend, GpuStorage, GpuTensor};
use crate::backend::{DType, IndexPlan, OpResult};

crate::kernel_params! {
    /// Parameters of `embed.wgsl`.
    struct Params {
        n: u32,
        d: u32,
        _pad: [u32; 2],
    }
}

pub static EMBED: Shader = crate::wgsl_shader!(
    "embed",
    Params,
    bindings: ["src", "idx", "dst", "order", "seg_rows", "seg_ptr"],
);

pub fn gather_rows(
    g: &GpuBackend,
    table: &GpuTensor,
    plan: &IndexPlan<GpuStorage>,
) -> OpResult<GpuTensor> {
    let d = table.cols();
    let out = g.empty(&[plan.len, d], DType::F32, "gather out")?;
    let p = Params {
        n: plan.len as u32,
        d: d as u32,
        _pad: [0; 2],
    };
    // It reads the named rows, not the table it binds.
    let n = plan.len;
    g.ctx.dispatch_work(
        &Kernel::new(&EMBED, "gather"),
        &p,
        &[
            ("src", raw(table)),
            ("idx", raw(&plan.idx)),
            ("dst", raw(&out)),
        ],
        g.grid("gather_rows", (n * d) as u64)?,
        Work::words((n + 2 * n * d) as f64),
    )?;
    Ok(out)
}

pub fn scatter_add_rows(
    g: &GpuBackend,
    dst: &mut GpuTensor,
    src: &GpuTensor,
    plan: &IndexPlan<GpuStorage>,
) -> OpResult<()> {
    make_unique(&g.ctx, dst)?;
    let d = src.cols();
    let p = Params {
        n: plan.segments as u32,
        d: d as u32,
        _pad: [0; 2],
    };
    // The source rows and their order, the segments, and the rows they add into, read and
    // written: not the whole table bound.
    let (n, rows) = (plan.len, plan.segments);
    g.ctx.dispatch_work(
        &Kernel::new(&EMBED, "scatter_add"),
        &p,
        &[
            ("src", raw(src)),
            ("dst", raw(dst)),
            ("order", raw(&plan.order)),
            ("seg_rows", raw(&plan.seg_rows)),
            ("seg_ptr", raw(&plan.seg_ptr)),
        ],
        g.grid("scatter_add_rows", (rows * d) as u64)?,
        Work::words((n * (d + 1) + 2 * rows + 1 + 2 * rows * d) as f64),
    )?;
    Ok(())
}
