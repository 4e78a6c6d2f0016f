//! Gather and deterministic scatter-add against plain loops.

use ainrnn::backend::Backend;
use rand::Rng;

use crate::common::*;

pub fn gather_scatter<B: Backend>(be: &B) {
    let mut r = rng(90);
    for &(rows, d, n) in &[(1, 1, 1), (10, 3, 25), (1000, 64, 777), (50_000, 17, 4096)] {
        let tv = uniform(&mut r, rows * d, -1.0, 1.0);
        // Many repeats: indices drawn from a small range as well as the full one.
        let idx: Vec<u32> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    r.random_range(0..rows as u32)
                } else {
                    r.random_range(0..(rows as u32).min(5))
                }
            })
            .collect();
        let table = be.upload_f32(&tv, &[rows, d]).unwrap();
        let plan = be.index_plan(&idx, rows).unwrap();
        let got = be.gather_rows(&table, &plan).unwrap();
        assert_eq!(got.shape(), &[n, d]);
        let want: Vec<f64> = idx
            .iter()
            .flat_map(|&i| {
                tv[i as usize * d..(i as usize + 1) * d]
                    .iter()
                    .map(|&x| x as f64)
            })
            .collect();
        assert_close(
            &format!("gather {rows}x{d} n={n}"),
            &be.to_f32(&got).unwrap(),
            &want,
            Tol::EXACT,
        );

        let gv = uniform(&mut r, n * d, -1.0, 1.0);
        let g = be.upload_f32(&gv, &[n, d]).unwrap();
        let base = uniform(&mut r, rows * d, -1.0, 1.0);
        let mut dst = be.upload_f32(&base, &[rows, d]).unwrap();
        be.scatter_add_rows(&mut dst, &g, &plan).unwrap();
        let mut want = to_f64(&base);
        for (p, &i) in idx.iter().enumerate() {
            for c in 0..d {
                want[i as usize * d + c] += gv[p * d + c] as f64;
            }
        }
        let repeats = n.div_ceil(5).max(1);
        assert_close(
            &format!("scatter_add {rows}x{d} n={n}"),
            &be.to_f32(&dst).unwrap(),
            &want,
            Tol::sum(repeats),
        );
    }
}

/// scatter-add is the backward of gather: L = Σ W ⊙ gather(T) has dL/dT = scatter_add(W).
pub fn scatter_finite_difference<B: Backend>(be: &B) {
    let (rows, d) = (6, 3);
    let idx = [0u32, 5, 5, 2, 0, 5, 3];
    let mut r = rng(91);
    let tv = uniform(&mut r, rows * d, -1.0, 1.0);
    let wv = uniform(&mut r, idx.len() * d, -1.0, 1.0);
    let plan = be.index_plan(&idx, rows).unwrap();
    let mut grad = be.zeros(&[rows, d]).unwrap();
    be.scatter_add_rows(
        &mut grad,
        &be.upload_f32(&wv, &[idx.len(), d]).unwrap(),
        &plan,
    )
    .unwrap();
    let loss = |t: &[f32]| -> f64 {
        idx.iter()
            .enumerate()
            .map(|(p, &i)| {
                (0..d)
                    .map(|c| t[i as usize * d + c] as f64 * wv[p * d + c] as f64)
                    .sum::<f64>()
            })
            .sum()
    };
    let h = 1e-2f32;
    let want: Vec<f64> = (0..tv.len())
        .map(|i| {
            let mut p = tv.clone();
            let mut q = tv.clone();
            p[i] += h;
            q[i] -= h;
            (loss(&p) - loss(&q)) / (2.0 * h as f64)
        })
        .collect();
    assert_close(
        "gather backward (scatter_add) vs finite differences",
        &be.to_f32(&grad).unwrap(),
        &want,
        Tol {
            rel: 1e-4,
            abs: 1e-5,
        },
    );
}

pub fn index_errors<B: Backend>(be: &B) {
    let e = be.index_plan(&[0, 3, 9], 5).unwrap_err().to_string();
    assert!(e.contains("index 9 out of range for 5 rows"), "{e}");
    let plan = be.index_plan(&[0, 1], 4).unwrap();
    let wrong = be.zeros(&[5, 2]).unwrap();
    assert!(be.gather_rows(&wrong, &plan).is_err());
    let mut dst = be.zeros(&[4, 2]).unwrap();
    let src = be.zeros(&[3, 2]).unwrap();
    assert!(be.scatter_add_rows(&mut dst, &src, &plan).is_err());
}
