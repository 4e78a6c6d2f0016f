//! Host side of `shaders/elementwise.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::pipeline::{Kernel, Shader};
use super::{make_unique, raw, GpuBackend, GpuTensor};
use crate::backend::{BinaryOp, DType, OpResult, UnaryOp};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    n: u32,
    nb: u32,
    alpha: f32,
    beta: f32,
    inner: u32,
    _pad: [u32; 3],
}

fn run(
    g: &GpuBackend,
    kernel: Kernel,
    n: usize,
    nb: usize,
    alpha: f32,
    beta: f32,
    bindings: &[(u32, &super::GpuBuffer)],
) -> OpResult<()> {
    if n == 0 {
        return Ok(());
    }
    let p = Params {
        n: n as u32,
        nb: nb.max(1) as u32,
        alpha,
        beta,
        inner: 0,
        _pad: [0; 3],
    };
    let grid = g.grid(kernel.entry, n as u64)?;
    Ok(g.ctx
        .dispatch(&kernel, bytemuck::bytes_of(&p), bindings, grid)?)
}

pub fn binary(g: &GpuBackend, op: BinaryOp, a: &GpuTensor, b: &GpuTensor) -> OpResult<GpuTensor> {
    let code = match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::LogAddExp => 4,
    };
    let out = g.empty(a.shape(), DType::F32, "binary out")?;
    let k = Kernel::new(Shader::Elementwise, "binary").with("OP", code);
    run(
        g,
        k,
        a.len(),
        b.len(),
        0.0,
        0.0,
        &[(1, raw(a)), (2, raw(b)), (3, raw(&out))],
    )?;
    Ok(out)
}

pub fn unary(g: &GpuBackend, op: UnaryOp, a: &GpuTensor) -> OpResult<GpuTensor> {
    let code = match op {
        UnaryOp::Relu => 0,
        UnaryOp::Exp => 1,
        UnaryOp::Log => 2,
        UnaryOp::Neg => 3,
        UnaryOp::Sqrt => 4,
        UnaryOp::Tanh => 5,
        UnaryOp::Sigmoid => 6,
    };
    let out = g.empty(a.shape(), DType::F32, "unary out")?;
    let k = Kernel::new(Shader::Elementwise, "unary").with("OP", code);
    run(g, k, a.len(), 1, 0.0, 0.0, &[(1, raw(a)), (3, raw(&out))])?;
    Ok(out)
}

pub fn affine(g: &GpuBackend, a: &GpuTensor, alpha: f32, beta: f32) -> OpResult<GpuTensor> {
    let out = g.empty(a.shape(), DType::F32, "affine out")?;
    let k = Kernel::new(Shader::Elementwise, "affine");
    run(
        g,
        k,
        a.len(),
        1,
        alpha,
        beta,
        &[(1, raw(a)), (3, raw(&out))],
    )?;
    Ok(out)
}

pub fn axpy(g: &GpuBackend, acc: &mut GpuTensor, x: &GpuTensor, alpha: f32) -> OpResult<()> {
    make_unique(&g.ctx, acc)?;
    let k = Kernel::new(Shader::Elementwise, "axpy");
    run(
        g,
        k,
        acc.len(),
        1,
        alpha,
        0.0,
        &[(1, raw(x)), (3, raw(acc))],
    )
}

pub fn relu_backward(g: &GpuBackend, y: &GpuTensor, dy: &GpuTensor) -> OpResult<GpuTensor> {
    let out = g.empty(dy.shape(), DType::F32, "relu_backward out")?;
    let k = Kernel::new(Shader::Elementwise, "relu_backward");
    run(
        g,
        k,
        dy.len(),
        1,
        0.0,
        0.0,
        &[(1, raw(y)), (2, raw(dy)), (3, raw(&out))],
    )?;
    Ok(out)
}
