//! Element-wise ops on the CPU.

use rayon::prelude::*;

use super::{f32s, f32s_mut, tensor, CpuTensor, PAR_MIN};
use crate::backend::{BinaryOp, OpResult, UnaryOp};

/// Applies `f` to every element, in parallel for large inputs.
fn map(x: &[f32], f: impl Fn(usize, f32) -> f32 + Sync) -> Vec<f32> {
    if x.len() >= PAR_MIN {
        x.par_iter().enumerate().map(|(i, &v)| f(i, v)).collect()
    } else {
        x.iter().enumerate().map(|(i, &v)| f(i, v)).collect()
    }
}

pub fn apply_binary(op: BinaryOp, x: f32, y: f32) -> f32 {
    match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::LogAddExp => {
            let m = x.max(y);
            if m == f32::NEG_INFINITY {
                m
            } else {
                m + ((x - m).exp() + (y - m).exp()).ln()
            }
        }
    }
}

pub fn apply_unary(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Neg => -x,
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
    }
}

pub fn binary(op: BinaryOp, a: &CpuTensor, b: &CpuTensor) -> OpResult<CpuTensor> {
    let (av, bv) = (f32s("binary", a)?, f32s("binary", b)?);
    if bv.is_empty() {
        return Ok(tensor(a.shape().to_vec(), Vec::new()));
    }
    // The op is matched once, outside the loops, so each inner loop is one straight operation.
    let out = match op {
        BinaryOp::Add => broadcast_rows(av, bv, |x, y| x + y),
        BinaryOp::Sub => broadcast_rows(av, bv, |x, y| x - y),
        BinaryOp::Mul => broadcast_rows(av, bv, |x, y| x * y),
        BinaryOp::Div => broadcast_rows(av, bv, |x, y| x / y),
        BinaryOp::LogAddExp => broadcast_rows(av, bv, |x, y| apply_binary(op, x, y)),
    };
    Ok(tensor(a.shape().to_vec(), out))
}

/// `f(a, b)` with `b` repeated over the rows of `a`: row by row, with no index arithmetic per
/// element, so the inner loop vectorises (a bias row over a catalogue-sized logits block).
fn broadcast_rows(av: &[f32], bv: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let nb = bv.len();
    let mut out = vec![0.0f32; av.len()];
    let row = |(o, x): (&mut [f32], &[f32])| {
        for ((o, &x), &y) in o.iter_mut().zip(x).zip(bv) {
            *o = f(x, y);
        }
    };
    if av.len() >= PAR_MIN {
        let block = (PAR_MIN / nb).max(1) * nb;
        out.par_chunks_mut(block)
            .zip(av.par_chunks(block))
            .for_each(|(o, x)| o.chunks_mut(nb).zip(x.chunks(nb)).for_each(&row));
    } else {
        out.chunks_mut(nb).zip(av.chunks(nb)).for_each(row);
    }
    out
}

pub fn unary(op: UnaryOp, a: &CpuTensor) -> OpResult<CpuTensor> {
    let av = f32s("unary", a)?;
    Ok(tensor(
        a.shape().to_vec(),
        map(av, |_, x| apply_unary(op, x)),
    ))
}

pub fn affine(a: &CpuTensor, alpha: f32, beta: f32) -> OpResult<CpuTensor> {
    let av = f32s("affine", a)?;
    Ok(tensor(a.shape().to_vec(), map(av, |_, x| alpha * x + beta)))
}

pub fn axpy(acc: &mut CpuTensor, x: &CpuTensor, alpha: f32) -> OpResult<()> {
    let xv = f32s("axpy", x)?;
    let av = f32s_mut("axpy", acc)?;
    if av.len() >= PAR_MIN {
        av.par_iter_mut()
            .zip(xv.par_iter())
            .for_each(|(a, &x)| *a += alpha * x);
    } else {
        av.iter_mut().zip(xv).for_each(|(a, &x)| *a += alpha * x);
    }
    Ok(())
}

pub fn relu_backward(y: &CpuTensor, dy: &CpuTensor) -> OpResult<CpuTensor> {
    let (yv, dv) = (f32s("relu_backward", y)?, f32s("relu_backward", dy)?);
    Ok(tensor(
        dy.shape().to_vec(),
        map(dv, |i, d| if yv[i] > 0.0 { d } else { 0.0 }),
    ))
}
