//! Row and column reductions on the CPU, accumulating in f64.

use rayon::prelude::*;

use super::math::{max_f32, sum_f32};
use super::{f32s, tensor, CpuTensor, PAR_MIN};
use crate::backend::{OpResult, ReduceOp};

pub fn reduce_row(op: ReduceOp, row: &[f32]) -> f32 {
    match op {
        ReduceOp::Sum => sum_f32(row) as f32,
        ReduceOp::Mean => (sum_f32(row) / row.len().max(1) as f64) as f32,
        ReduceOp::Max => max_f32(row),
    }
}

pub fn reduce_rows(op: ReduceOp, a: &CpuTensor) -> OpResult<CpuTensor> {
    let av = f32s("reduce_rows", a)?;
    let (rows, cols) = (a.rows(), a.cols());
    let shape = a.shape()[..a.shape().len().saturating_sub(1)].to_vec();
    let out: Vec<f32> = if cols == 0 {
        vec![reduce_row(op, &[]); rows]
    } else if av.len() >= PAR_MIN {
        av.par_chunks(cols).map(|r| reduce_row(op, r)).collect()
    } else {
        av.chunks(cols).map(|r| reduce_row(op, r)).collect()
    };
    Ok(tensor(shape, out))
}

pub fn sum_cols(a: &CpuTensor) -> OpResult<CpuTensor> {
    let av = f32s("sum_cols", a)?;
    let cols = a.cols();
    let mut out = vec![0.0f32; cols];
    if cols == 0 {
        return Ok(tensor(vec![0], out));
    }
    // Blocks of columns in parallel; each column is still summed over the rows in order.
    const BLOCK: usize = 2048;
    let block = |(bi, o): (usize, &mut [f32])| {
        let c0 = bi * BLOCK;
        let mut acc = vec![0.0f64; o.len()];
        for row in av.chunks(cols) {
            for (s, &x) in acc.iter_mut().zip(&row[c0..c0 + o.len()]) {
                *s += x as f64;
            }
        }
        for (o, s) in o.iter_mut().zip(acc) {
            *o = s as f32;
        }
    };
    if av.len() >= PAR_MIN && cols > BLOCK {
        out.par_chunks_mut(BLOCK).enumerate().for_each(block);
    } else if av.len() >= PAR_MIN {
        // Narrow and tall (a bias gradient over B·L rows): f64 partial sums over fixed blocks of
        // rows in parallel, added in block order, so the result does not depend on the threads.
        let rows_per = (PAR_MIN / cols).max(1);
        let parts: Vec<Vec<f64>> = av
            .par_chunks(rows_per * cols)
            .map(|blk| {
                let mut acc = vec![0.0f64; cols];
                for row in blk.chunks(cols) {
                    for (s, &x) in acc.iter_mut().zip(row) {
                        *s += x as f64;
                    }
                }
                acc
            })
            .collect();
        for (j, o) in out.iter_mut().enumerate() {
            *o = parts.iter().map(|p| p[j]).sum::<f64>() as f32;
        }
    } else {
        out.chunks_mut(BLOCK).enumerate().for_each(block);
    }
    Ok(tensor(vec![cols], out))
}
