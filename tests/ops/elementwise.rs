//! Element-wise ops against f64 formulas.

use ainrnn::backend::{Backend, BinaryOp, UnaryOp};

use crate::common::*;

const SIZES: [usize; 6] = [1, 7, 255, 256, 257, 100_003];

pub fn binary_broadcast<B: Backend>(be: &B) {
    let mut r = rng(1);
    for (si, &n) in SIZES.iter().enumerate() {
        for &nb in &[n, 1] {
            let av = uniform(&mut r, n, -2.0, 2.0);
            // Divisors stay away from zero so relative error is meaningful.
            let bv: Vec<f32> = uniform(&mut r, nb, 0.5, 2.0)
                .iter()
                .enumerate()
                .map(|(i, &x)| if i % 2 == 0 { x } else { -x })
                .collect();
            let a = be.upload_f32(&av, &[n]).unwrap();
            let b = be.upload_f32(&bv, &[nb]).unwrap();
            for op in [
                BinaryOp::Add,
                BinaryOp::Sub,
                BinaryOp::Mul,
                BinaryOp::Div,
                BinaryOp::LogAddExp,
            ] {
                let got = be.to_f32(&be.binary(op, &a, &b).unwrap()).unwrap();
                let want: Vec<f64> = av
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| {
                        let (x, y) = (x as f64, bv[i % nb] as f64);
                        match op {
                            BinaryOp::Add => x + y,
                            BinaryOp::Sub => x - y,
                            BinaryOp::Mul => x * y,
                            BinaryOp::Div => x / y,
                            BinaryOp::LogAddExp => x.max(y) + (1.0 + (-(x - y).abs()).exp()).ln(),
                        }
                    })
                    .collect();
                assert_close(
                    &format!("{op:?} n={n} nb={nb} (case {si})"),
                    &got,
                    &want,
                    Tol::ELEMENTWISE,
                );
            }
        }
    }
    // A bias row broadcast over a [rows, cols] matrix.
    let (rows, cols) = (33, 70);
    let av = uniform(&mut r, rows * cols, -1.0, 1.0);
    let bv = uniform(&mut r, cols, -1.0, 1.0);
    let a = be.upload_f32(&av, &[rows, cols]).unwrap();
    let b = be.upload_f32(&bv, &[cols]).unwrap();
    let got = be
        .to_f32(&be.binary(BinaryOp::Add, &a, &b).unwrap())
        .unwrap();
    let want: Vec<f64> = av
        .iter()
        .enumerate()
        .map(|(i, &x)| x as f64 + bv[i % cols] as f64)
        .collect();
    assert_close("bias add", &got, &want, Tol::ELEMENTWISE);
    // A right operand that does not divide the left is an error, not a panic.
    let c = be.upload_f32(&[1.0; 4], &[4]).unwrap();
    let e = be.binary(BinaryOp::Add, &a, &c).unwrap_err().to_string();
    assert!(e.contains("does not broadcast"), "{e}");
}

pub fn unary_ops<B: Backend>(be: &B) {
    let mut r = rng(2);
    for &n in &SIZES {
        let xv = uniform(&mut r, n, -20.0, 20.0);
        let pos: Vec<f32> = xv.iter().map(|x| x.abs() + 1e-3).collect();
        let x = be.upload_f32(&xv, &[n]).unwrap();
        let p = be.upload_f32(&pos, &[n]).unwrap();
        for op in [
            UnaryOp::Relu,
            UnaryOp::Exp,
            UnaryOp::Log,
            UnaryOp::Neg,
            UnaryOp::Sqrt,
            UnaryOp::Tanh,
            UnaryOp::Sigmoid,
        ] {
            let (input, src) = if matches!(op, UnaryOp::Log | UnaryOp::Sqrt) {
                (&p, &pos)
            } else {
                (&x, &xv)
            };
            let got = be.to_f32(&be.unary(op, input).unwrap()).unwrap();
            let want: Vec<f64> = src
                .iter()
                .map(|&v| {
                    let v = v as f64;
                    match op {
                        UnaryOp::Relu => v.max(0.0),
                        UnaryOp::Exp => v.exp(),
                        UnaryOp::Log => v.ln(),
                        UnaryOp::Neg => -v,
                        UnaryOp::Sqrt => v.sqrt(),
                        UnaryOp::Tanh => v.tanh(),
                        UnaryOp::Sigmoid => 1.0 / (1.0 + (-v).exp()),
                    }
                })
                .collect();
            assert_close(&format!("{op:?} n={n}"), &got, &want, Tol::TRANSCENDENTAL);
        }
    }
}

pub fn affine_axpy<B: Backend>(be: &B) {
    let mut r = rng(3);
    for &n in &SIZES {
        let av = uniform(&mut r, n, -1.0, 1.0);
        let xv = uniform(&mut r, n, -1.0, 1.0);
        let a = be.upload_f32(&av, &[n]).unwrap();
        let got = be.to_f32(&be.affine(&a, -1.5, 0.25).unwrap()).unwrap();
        let want: Vec<f64> = av.iter().map(|&v| -1.5 * v as f64 + 0.25).collect();
        assert_close(&format!("affine n={n}"), &got, &want, Tol::ELEMENTWISE);
        let mut acc = be.upload_f32(&av, &[n]).unwrap();
        let x = be.upload_f32(&xv, &[n]).unwrap();
        be.axpy(&mut acc, &x, 0.3).unwrap();
        let want: Vec<f64> = av
            .iter()
            .zip(&xv)
            .map(|(&a, &x)| a as f64 + 0.3 * x as f64)
            .collect();
        assert_close(
            &format!("axpy n={n}"),
            &be.to_f32(&acc).unwrap(),
            &want,
            Tol::ELEMENTWISE,
        );
    }
    let mut acc = be.zeros(&[4]).unwrap();
    let x = be.zeros(&[5]).unwrap();
    assert!(be.axpy(&mut acc, &x, 1.0).is_err());
}

/// In-place ops must not change other handles to the same storage.
pub fn copy_on_write<B: Backend>(be: &B) {
    let v: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    let a = be.upload_f32(&v, &[1000]).unwrap();
    let mut b = a.clone();
    let one = be.upload_f32(&vec![1.0; 1000], &[1000]).unwrap();
    be.axpy(&mut b, &one, 2.0).unwrap();
    assert_close(
        "original after axpy on clone",
        &be.to_f32(&a).unwrap(),
        &to_f64(&v),
        Tol::EXACT,
    );
    let want: Vec<f64> = v.iter().map(|&x| x as f64 + 2.0).collect();
    assert_close(
        "clone after axpy",
        &be.to_f32(&b).unwrap(),
        &want,
        Tol::EXACT,
    );
    let mut c = a.clone();
    be.write_f32(&mut c, &vec![5.0; 1000]).unwrap();
    assert_close(
        "original after write_f32 on clone",
        &be.to_f32(&a).unwrap(),
        &to_f64(&v),
        Tol::EXACT,
    );
    assert_close(
        "written clone",
        &be.to_f32(&c).unwrap(),
        &vec![5.0; 1000],
        Tol::EXACT,
    );
}

pub fn relu_backward_finite_difference<B: Backend>(be: &B) {
    let mut r = rng(4);
    let n = 513;
    // Keep inputs away from the kink at 0 where the derivative is undefined.
    let xv: Vec<f32> = uniform(&mut r, n, -1.0, 1.0)
        .iter()
        .map(|&x| if x.abs() < 0.05 { x + 0.1 } else { x })
        .collect();
    let wv = uniform(&mut r, n, -1.0, 1.0);
    let x = be.upload_f32(&xv, &[n]).unwrap();
    let y = be.unary(UnaryOp::Relu, &x).unwrap();
    let w = be.upload_f32(&wv, &[n]).unwrap();
    let got = be.to_f32(&be.relu_backward(&y, &w).unwrap()).unwrap();
    let h = 1e-3;
    let want: Vec<f64> = xv
        .iter()
        .zip(&wv)
        .map(|(&x, &w)| {
            let f = |v: f64| (v.max(0.0)) * w as f64;
            (f(x as f64 + h) - f(x as f64 - h)) / (2.0 * h)
        })
        .collect();
    assert_close(
        "relu backward vs finite differences",
        &got,
        &want,
        Tol {
            rel: 1e-6,
            abs: 1e-6,
        },
    );
}

/// More than 65,535 workgroups of 256: the grid is split over two dimensions.
pub fn grid_beyond_one_dimension<B: Backend>(be: &B) {
    let n = 65_535 * 256 + 300;
    let av: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let a = be.upload_f32(&av, &[n]).unwrap();
    let got = be.to_f32(&be.affine(&a, 2.0, 1.0).unwrap()).unwrap();
    for i in [0, 1, 65_535 * 256 - 1, 65_535 * 256, n - 1] {
        assert_eq!(got[i], 2.0 * av[i] + 1.0, "element {i} of {n}");
    }
    let bad = got.iter().zip(&av).position(|(&g, &x)| g != 2.0 * x + 1.0);
    assert_eq!(bad, None, "first wrong element of {n}");
}
