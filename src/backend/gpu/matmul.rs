//! Host side of `shaders/matmul.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::pipeline::{Kernel, Shader};
use super::{raw, GpuBackend, GpuTensor};
use crate::backend::check::{self, MatmulDims};
use crate::backend::{DType, OpResult};
use crate::error::{GpuError, OpError};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch0: u32,
    stride_a: u32,
    stride_b: u32,
    alpha: f32,
    beta: f32,
}

const TILE: usize = 64;

#[allow(clippy::too_many_arguments)]
fn record(
    g: &GpuBackend,
    d: &MatmulDims,
    a: &GpuTensor,
    b: &GpuTensor,
    c: &GpuTensor,
    ta: bool,
    tb: bool,
    alpha: f32,
    beta: f32,
) -> OpResult<()> {
    // k = 0 needs no special case: the K loop is empty and C = beta * C.
    if d.m == 0 || d.n == 0 || d.batch == 0 {
        return Ok(());
    }
    let ctx = &g.ctx;
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let (gx, gy) = (d.n.div_ceil(TILE), d.m.div_ceil(TILE));
    if gx > max || gy > max {
        return Err(OpError::Gpu(GpuError::Limit {
            op: "matmul",
            what: "workgroups per dimension",
            needed: gx.max(gy) as u64,
            limit: max as u64,
        }));
    }
    let kernel = Kernel::new(Shader::Matmul, "matmul")
        .with("TRANS_A", ta as u32)
        .with("TRANS_B", tb as u32);
    // Batches beyond the z limit go in several dispatches.
    let mut z0 = 0;
    while z0 < d.batch {
        let nz = (d.batch - z0).min(max);
        let p = Params {
            m: d.m as u32,
            n: d.n as u32,
            k: d.k as u32,
            batch0: z0 as u32,
            stride_a: d.stride_a as u32,
            stride_b: d.stride_b as u32,
            alpha,
            beta,
        };
        ctx.dispatch(
            &kernel,
            bytemuck::bytes_of(&p),
            &[(1, raw(a)), (2, raw(b)), (3, raw(c))],
            [gx as u32, gy as u32, nz as u32],
        )?;
        z0 += nz;
    }
    Ok(())
}

pub fn matmul(
    g: &GpuBackend,
    a: &GpuTensor,
    b: &GpuTensor,
    ta: bool,
    tb: bool,
) -> OpResult<GpuTensor> {
    let d = check::matmul(a, b, ta, tb)?;
    let c = g.empty(&check::matmul_out_shape(a, b, &d), DType::F32, "matmul out")?;
    record(g, &d, a, b, &c, ta, tb, 1.0, 0.0)?;
    Ok(c)
}

#[allow(clippy::too_many_arguments)]
pub fn matmul_into(
    g: &GpuBackend,
    out: &mut GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
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
    super::make_unique(&g.ctx, out)?;
    record(g, &d, a, b, out, ta, tb, alpha, beta)
}
