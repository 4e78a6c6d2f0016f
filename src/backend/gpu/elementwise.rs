//! Host side of `shaders/elementwise.wgsl`.

use super::context::Work;
use super::pipeline::Kernel;
use super::shader::Shader;
use super::{make_unique, raw, GpuBackend, GpuBuffer, GpuTensor};
use crate::backend::{BinaryOp, DType, OpResult, UnaryOp};

crate::kernel_params! {
    /// Parameters of `elementwise.wgsl` (also used by the model ops' time mask and tanh backward).
    pub struct EwParams {
        pub n: u32,
        pub nb: u32,
        pub alpha: f32,
        pub beta: f32,
        pub inner: u32,
        pub _pad: [u32; 3],
    }
}

pub static ELEMENTWISE: Shader = crate::wgsl_shader!(
    "elementwise",
    EwParams,
    bindings: ["a", "b", "out"],
    overrides: ["OP"],
);

/// `n` elements of `kernel` (`nb`: the length of a broadcast `b`) with `(alpha, beta)`.
fn run(
    g: &GpuBackend,
    kernel: Kernel,
    n: usize,
    nb: usize,
    (alpha, beta): (f32, f32),
    bindings: &[(&str, &GpuBuffer)],
    work: Work,
) -> OpResult<()> {
    if n == 0 {
        return Ok(());
    }
    let p = EwParams {
        n: n as u32,
        nb: nb.max(1) as u32,
        alpha,
        beta,
        ..Default::default()
    };
    let grid = g.grid(kernel.entry, n as u64)?;
    Ok(g.ctx.dispatch_work(&kernel, &p, bindings, grid, work)?)
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
    let k = Kernel::new(&ELEMENTWISE, "binary").with("OP", code);
    run(
        g,
        k,
        a.len(),
        b.len(),
        (0.0, 0.0),
        &[("a", raw(a)), ("b", raw(b)), ("out", raw(&out))],
        Work::default(),
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
    let k = Kernel::new(&ELEMENTWISE, "unary").with("OP", code);
    run(
        g,
        k,
        a.len(),
        1,
        (0.0, 0.0),
        &[("a", raw(a)), ("out", raw(&out))],
        Work::default(),
    )?;
    Ok(out)
}

pub fn affine(g: &GpuBackend, a: &GpuTensor, alpha: f32, beta: f32) -> OpResult<GpuTensor> {
    let out = g.empty(a.shape(), DType::F32, "affine out")?;
    let k = Kernel::new(&ELEMENTWISE, "affine");
    run(
        g,
        k,
        a.len(),
        1,
        (alpha, beta),
        &[("a", raw(a)), ("out", raw(&out))],
        Work::default(),
    )?;
    Ok(out)
}

pub fn axpy(g: &GpuBackend, acc: &mut GpuTensor, x: &GpuTensor, alpha: f32) -> OpResult<()> {
    make_unique(&g.ctx, acc)?;
    let k = Kernel::new(&ELEMENTWISE, "axpy");
    run(
        g,
        k,
        acc.len(),
        1,
        (alpha, 0.0),
        &[("a", raw(x)), ("out", raw(acc))],
        // x read, the accumulator read and written: `bench ops`' axpy counts the same.
        Work::words(3.0 * acc.len() as f64),
    )
}

pub fn relu_backward(g: &GpuBackend, y: &GpuTensor, dy: &GpuTensor) -> OpResult<GpuTensor> {
    let out = g.empty(dy.shape(), DType::F32, "relu_backward out")?;
    let k = Kernel::new(&ELEMENTWISE, "relu_backward");
    run(
        g,
        k,
        dy.len(),
        1,
        (0.0, 0.0),
        &[("a", raw(y)), ("b", raw(dy)), ("out", raw(&out))],
        Work::default(),
    )?;
    Ok(out)
}
