//! Host side of `shaders/embed.wgsl`: row gather and segmented scatter-add.

use bytemuck::{Pod, Zeroable};

use super::pipeline::{Kernel, Shader};
use super::{make_unique, raw, GpuBackend, GpuStorage, GpuTensor};
use crate::backend::{DType, IndexPlan, OpResult};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    d: u32,
    _pad: [u32; 2],
}

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
    g.ctx.dispatch(
        &Kernel::new(Shader::Embed, "gather"),
        bytemuck::bytes_of(&p),
        &[(1, raw(table)), (2, raw(&plan.idx)), (3, raw(&out))],
        g.grid("gather_rows", (plan.len * d) as u64)?,
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
    g.ctx.dispatch(
        &Kernel::new(Shader::Embed, "scatter_add"),
        bytemuck::bytes_of(&p),
        &[
            (1, raw(src)),
            (3, raw(dst)),
            (4, raw(&plan.order)),
            (5, raw(&plan.seg_rows)),
            (6, raw(&plan.seg_ptr)),
        ],
        g.grid("scatter_add_rows", (plan.segments * d) as u64)?,
    )?;
    Ok(())
}
