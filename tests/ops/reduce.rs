//! Row reductions and column sums against f64 loops.

use ainrnn::backend::{Backend, ReduceOp};

use crate::common::*;

pub fn rows_all_lengths<B: Backend>(be: &B) {
    let mut r = rng(11);
    let shapes = [
        (1, 1),
        (5, 1),
        (3, 64),
        (3, 65),
        (7, 255),
        (2, 1000),
        (4, 4097),
        (1, 360_000),
        (1000, 37),
        (300, 2000),
    ];
    for &(rows, cols) in &shapes {
        let v = uniform(&mut r, rows * cols, -1.0, 1.0);
        let a = be.upload_f32(&v, &[rows, cols]).unwrap();
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max] {
            let got = be.reduce_rows(op, &a).unwrap();
            assert_eq!(got.shape(), &[rows]);
            let want: Vec<f64> = v
                .chunks(cols)
                .map(|row| match op {
                    ReduceOp::Sum => row.iter().map(|&x| x as f64).sum(),
                    ReduceOp::Mean => row.iter().map(|&x| x as f64).sum::<f64>() / cols as f64,
                    ReduceOp::Max => row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64)),
                })
                .collect();
            let tol = match op {
                ReduceOp::Max => Tol::EXACT,
                ReduceOp::Mean => Tol::sum(1),
                ReduceOp::Sum => Tol::sum(cols),
            };
            assert_close(
                &format!("{op:?} rows {rows} x {cols}"),
                &be.to_f32(&got).unwrap(),
                &want,
                tol,
            );
        }
    }
    // No columns: the sum and the mean are 0, the max −∞ (the CPU's definition); the GPU must
    // write them (its output buffer is NaN under the tests' poison).
    let a = be.upload_f32(&[], &[3, 0]).unwrap();
    for (op, want) in [
        (ReduceOp::Sum, 0.0),
        (ReduceOp::Mean, 0.0),
        (ReduceOp::Max, f32::NEG_INFINITY),
    ] {
        let got = be.to_f32(&be.reduce_rows(op, &a).unwrap()).unwrap();
        assert_eq!(got, vec![want; 3], "{op:?} over no columns");
    }
    // 3-D input reduces the last axis.
    let v = uniform(&mut r, 2 * 3 * 5, 0.0, 1.0);
    let a = be.upload_f32(&v, &[2, 3, 5]).unwrap();
    assert_eq!(be.reduce_rows(ReduceOp::Sum, &a).unwrap().shape(), &[2, 3]);
}

pub fn cols<B: Backend>(be: &B) {
    let mut r = rng(12);
    // Tall and narrow shapes take the CPU's row-block path, wide ones its column blocks.
    for &(rows, cols) in &[
        // No rows: zeros, which the GPU writes (its output buffer is poisoned under the tests).
        (0, 5),
        (1, 1),
        (1, 300),
        (17, 3),
        (1000, 1),
        (5000, 70),
        (64, 257),
        (1600, 256),
        (40000, 1),
        (64, 10000),
        // The one-pass tree: a bias gradient over B·L rows, its bounds, and past them.
        (800, 32),
        (65, 3),
        (4096, 5),
        (4097, 5),
        (300, 1024),
        (300, 1025),
    ] {
        let v = uniform(&mut r, rows * cols, -1.0, 1.0);
        let a = be.upload_f32(&v, &[rows, cols]).unwrap();
        let got = be.sum_cols(&a).unwrap();
        assert_eq!(got.shape(), &[cols]);
        let want: Vec<f64> = (0..cols)
            .map(|c| (0..rows).map(|i| v[i * cols + c] as f64).sum())
            .collect();
        assert_close(
            &format!("sum_cols {rows} x {cols}"),
            &be.to_f32(&got).unwrap(),
            &want,
            Tol::sum(rows),
        );
        // Added onto an accumulator (a bias gradient), which keeps what it held.
        let prior = uniform(&mut r, cols, -1.0, 1.0);
        let mut acc = be.upload_f32(&prior, &[cols]).unwrap();
        let kept = acc.clone();
        be.sum_cols_into(&mut acc, &a).unwrap();
        be.sum_cols_into(&mut acc, &a).unwrap();
        let want2: Vec<f64> = want
            .iter()
            .zip(&prior)
            .map(|(w, &p)| 2.0 * w + p as f64)
            .collect();
        assert_close(
            &format!("sum_cols_into {rows} x {cols}, twice"),
            &be.to_f32(&acc).unwrap(),
            &want2,
            Tol::sum(2 * rows + 1),
        );
        assert_eq!(be.to_f32(&kept).unwrap(), prior, "copy-on-write");
    }
    let a = be.zeros(&[4, 3]).unwrap();
    assert!(be.sum_cols_into(&mut be.zeros(&[4]).unwrap(), &a).is_err());
}
