//! Softmax, log-softmax, log-sum-exp and cross-entropy against f64 oracles and finite differences.

use ainrnn::backend::Backend;
use rand::Rng;

use crate::common::*;

fn lse64(row: &[f64]) -> f64 {
    let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + row.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
}

fn softmax64(x: &[f32], cols: usize, log: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let r: Vec<f64> = row.iter().map(|&v| v as f64).collect();
        let l = lse64(&r);
        for v in r {
            out.push(if l == f64::NEG_INFINITY {
                if log {
                    f64::NEG_INFINITY
                } else {
                    0.0
                }
            } else if log {
                v - l
            } else {
                (v - l).exp()
            });
        }
    }
    out
}

const SOFTMAX_TOL: Tol = Tol {
    rel: 2e-5,
    abs: 1e-8,
};
const LOG_TOL: Tol = Tol {
    rel: 1e-5,
    abs: 2e-5,
};

fn check_rows<B: Backend>(be: &B, rows: usize, cols: usize, spread: f32, seed: u64) {
    let mut r = rng(seed);
    let v = uniform(&mut r, rows * cols, -spread, spread);
    let a = be.upload_f32(&v, &[rows, cols]).unwrap();
    let what = format!("{rows} x {cols}");
    let s = be.softmax_rows(&a, false).unwrap();
    assert_close(
        &format!("softmax {what}"),
        &be.to_f32(&s).unwrap(),
        &softmax64(&v, cols, false),
        SOFTMAX_TOL,
    );
    let l = be.softmax_rows(&a, true).unwrap();
    assert_close(
        &format!("log_softmax {what}"),
        &be.to_f32(&l).unwrap(),
        &softmax64(&v, cols, true),
        LOG_TOL,
    );
    let want: Vec<f64> = v.chunks(cols).map(|row| lse64(&to_f64(row))).collect();
    let got = be.logsumexp_rows(&a).unwrap();
    assert_eq!(got.shape(), &[rows]);
    assert_close(
        &format!("logsumexp {what}"),
        &be.to_f32(&got).unwrap(),
        &want,
        LOG_TOL,
    );
}

pub fn forward_all_lengths<B: Backend>(be: &B) {
    for (i, &(rows, cols)) in [
        (1, 1),
        (4, 1),
        (3, 7),
        (2, 255),
        (5, 257),
        (3, 4097),
        (700, 33),
        (64, 1000),
    ]
    .iter()
    .enumerate()
    {
        check_rows(be, rows, cols, 8.0, 30 + i as u64);
    }
    // Large logits: the max subtraction must keep exp finite.
    check_rows(be, 3, 500, 80.0, 41);
}

/// A catalogue-sized row (the paper's ~360,000 songs) and a few of them.
pub fn catalogue_row<B: Backend>(be: &B) {
    check_rows(be, 1, 360_000, 10.0, 50);
    check_rows(be, 3, 123_457, 10.0, 51);
}

pub fn masked_rows<B: Backend>(be: &B) {
    let ninf = f32::NEG_INFINITY;
    let cols = 300;
    let mut v = vec![0.0f32; 3 * cols];
    let mut r = rng(60);
    for (i, x) in v.iter_mut().enumerate() {
        *x = match i / cols {
            0 => ninf, // fully masked row
            1 => {
                if i % 3 == 0 {
                    ninf
                } else {
                    r.random_range(-3.0..3.0)
                }
            } // partly masked
            _ => r.random_range(-3.0..3.0),
        };
    }
    let a = be.upload_f32(&v, &[3, cols]).unwrap();
    let s = be.to_f32(&be.softmax_rows(&a, false).unwrap()).unwrap();
    assert!(
        s.iter().all(|x| !x.is_nan()),
        "softmax of masked rows has NaN"
    );
    assert_close(
        "softmax masked",
        &s,
        &softmax64(&v, cols, false),
        SOFTMAX_TOL,
    );
    let l = be.to_f32(&be.softmax_rows(&a, true).unwrap()).unwrap();
    assert_close(
        "log_softmax masked",
        &l,
        &softmax64(&v, cols, true),
        LOG_TOL,
    );
    let lse = be.to_f32(&be.logsumexp_rows(&a).unwrap()).unwrap();
    assert_eq!(lse[0], f32::NEG_INFINITY, "lse of a fully masked row");
}

/// L = Σ W ⊙ f(x) for f = softmax and log-softmax; dx from the backward op vs central differences.
pub fn backward_finite_difference<B: Backend>(be: &B) {
    let (rows, cols) = (3, 9);
    let mut r = rng(70);
    let xv = uniform(&mut r, rows * cols, -2.0, 2.0);
    let wv = uniform(&mut r, rows * cols, -1.0, 1.0);
    let x = be.upload_f32(&xv, &[rows, cols]).unwrap();
    let w = be.upload_f32(&wv, &[rows, cols]).unwrap();
    for log in [false, true] {
        let y = be.softmax_rows(&x, log).unwrap();
        let got = be
            .to_f32(&be.softmax_rows_backward(&y, &w, log).unwrap())
            .unwrap();
        let loss = |x: &[f32]| -> f64 {
            softmax64(x, cols, log)
                .iter()
                .zip(&wv)
                .map(|(a, &b)| a * b as f64)
                .sum()
        };
        let h = 1e-3f32;
        let want: Vec<f64> = (0..xv.len())
            .map(|i| {
                let mut p = xv.clone();
                let mut q = xv.clone();
                p[i] += h;
                q[i] -= h;
                (loss(&p) - loss(&q)) / (2.0 * h as f64)
            })
            .collect();
        assert_close(
            &format!("softmax backward (log={log}) vs finite differences"),
            &got,
            &want,
            Tol {
                rel: 2e-3,
                abs: 2e-4,
            },
        );
    }
    // A long row exercises the multi-pass row sums inside the backward op.
    let cols = 5000;
    let xv = uniform(&mut r, 2 * cols, -2.0, 2.0);
    let wv = uniform(&mut r, 2 * cols, -1.0, 1.0);
    let x = be.upload_f32(&xv, &[2, cols]).unwrap();
    let w = be.upload_f32(&wv, &[2, cols]).unwrap();
    for log in [false, true] {
        let y = be.softmax_rows(&x, log).unwrap();
        let got = be
            .to_f32(&be.softmax_rows_backward(&y, &w, log).unwrap())
            .unwrap();
        let yv = softmax64(&xv, cols, log);
        let mut want = vec![0.0f64; xv.len()];
        for rrow in 0..2 {
            let sl = rrow * cols..(rrow + 1) * cols;
            let s: f64 = if log {
                wv[sl.clone()].iter().map(|&g| g as f64).sum()
            } else {
                wv[sl.clone()]
                    .iter()
                    .zip(&yv[sl.clone()])
                    .map(|(&g, &p)| g as f64 * p)
                    .sum()
            };
            for i in sl {
                want[i] = if log {
                    wv[i] as f64 - yv[i].exp() * s
                } else {
                    yv[i] * (wv[i] as f64 - s)
                };
            }
        }
        assert_close(
            &format!("softmax backward long row (log={log})"),
            &got,
            &want,
            Tol {
                rel: 1e-4,
                abs: 1e-6,
            },
        );
    }
}

fn ce_oracle(z: &[f32], cols: usize, targets: &[(u32, u32, f32)]) -> (Vec<f64>, Vec<f64>) {
    let rows = z.len() / cols;
    let mut loss = vec![0.0f64; rows];
    let mut grad = vec![0.0f64; z.len()];
    for r in 0..rows {
        let row: Vec<f64> = to_f64(&z[r * cols..(r + 1) * cols]);
        let l = lse64(&row);
        let mine: Vec<_> = targets.iter().filter(|t| t.0 as usize == r).collect();
        let wsum: f64 = mine.iter().map(|t| t.2 as f64).sum();
        if mine.is_empty() {
            continue;
        }
        for c in 0..cols {
            grad[r * cols + c] = wsum * (row[c] - l).exp();
        }
        for t in mine {
            grad[r * cols + t.1 as usize] -= t.2 as f64;
            loss[r] += t.2 as f64 * (l - row[t.1 as usize]);
        }
    }
    (loss, grad)
}

fn random_targets(r: &mut rand::rngs::StdRng, rows: usize, cols: usize) -> Vec<(u32, u32, f32)> {
    let mut t = Vec::new();
    for row in 0..rows {
        // Row 1 has no targets at all (a user with nothing held out).
        let k = if row == 1 {
            0
        } else {
            r.random_range(1..=cols.min(5))
        };
        let mut picked = std::collections::BTreeSet::new();
        while picked.len() < k {
            picked.insert(r.random_range(0..cols as u32));
        }
        for c in picked {
            t.push((row as u32, c, r.random_range(0.5..3.0)));
        }
    }
    t
}

pub fn cross_entropy_matches_oracle<B: Backend>(be: &B) {
    let mut r = rng(80);
    for &(rows, cols) in &[(2, 1), (4, 10), (7, 1000), (3, 70_001)] {
        let zv = uniform(&mut r, rows * cols, -5.0, 5.0);
        let t = random_targets(&mut r, rows, cols);
        let z = be.upload_f32(&zv, &[rows, cols]).unwrap();
        let targets = be.targets(rows, cols, &t).unwrap();
        let (loss, grad) = be.cross_entropy(&z, &targets).unwrap();
        let (wl, wg) = ce_oracle(&zv, cols, &t);
        assert_close(
            &format!("ce loss {rows}x{cols}"),
            &be.to_f32(&loss).unwrap(),
            &wl,
            Tol {
                rel: 1e-5,
                abs: 1e-4,
            },
        );
        assert_close(
            &format!("ce grad {rows}x{cols}"),
            &be.to_f32(&grad).unwrap(),
            &wg,
            Tol {
                rel: 2e-5,
                abs: 1e-6,
            },
        );
    }
}

pub fn cross_entropy_finite_difference<B: Backend>(be: &B) {
    let (rows, cols) = (3, 6);
    let mut r = rng(81);
    let zv = uniform(&mut r, rows * cols, -2.0, 2.0);
    let t = random_targets(&mut r, rows, cols);
    let z = be.upload_f32(&zv, &[rows, cols]).unwrap();
    let (_, grad) = be
        .cross_entropy(&z, &be.targets(rows, cols, &t).unwrap())
        .unwrap();
    let total = |z: &[f32]| ce_oracle(z, cols, &t).0.iter().sum::<f64>();
    let h = 1e-3f32;
    let want: Vec<f64> = (0..zv.len())
        .map(|i| {
            let mut p = zv.clone();
            let mut q = zv.clone();
            p[i] += h;
            q[i] -= h;
            (total(&p) - total(&q)) / (2.0 * h as f64)
        })
        .collect();
    assert_close(
        "cross-entropy grad vs finite differences",
        &be.to_f32(&grad).unwrap(),
        &want,
        Tol {
            rel: 2e-3,
            abs: 2e-4,
        },
    );
}

pub fn target_errors<B: Backend>(be: &B) {
    let e = be
        .targets(2, 5, &[(0, 1, 1.0), (0, 1, 2.0)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("twice"), "{e}");
    let e = be.targets(2, 5, &[(0, 5, 1.0)]).unwrap_err().to_string();
    assert!(e.contains("outside"), "{e}");
    let e = be.targets(2, 5, &[(2, 0, 1.0)]).unwrap_err().to_string();
    assert!(e.contains("outside"), "{e}");
    let e = be
        .targets(2, 5, &[(0, 0, f32::NAN)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("weight"), "{e}");
    // Row pointers are `rows + 1` u32s: rows beyond u32 (usize::MAX overflowed) are refused.
    for (rows, classes) in [(usize::MAX, 5), (1 << 32, 5), (2, 1 << 32)] {
        let e = be.targets(rows, classes, &[]).unwrap_err().to_string();
        assert!(e.contains("targets") && e.contains("below 2^32"), "{e}");
    }
    // Rows whose pointers a device cannot bind are refused before the host builds them (16 GiB
    // here); the CPU binds anything, and would build them.
    let rows = u32::MAX as usize - 1;
    if (rows as u64 + 1) * 4 > be.max_binding_bytes() {
        let e = be.targets(rows, 5, &[]).unwrap_err().to_string();
        assert!(
            e.contains("targets") && e.contains("max_storage_buffer"),
            "{e}"
        );
    }
    let z = be.zeros(&[3, 5]).unwrap();
    let t = be.targets(2, 5, &[(0, 0, 1.0)]).unwrap();
    assert!(be.cross_entropy(&z, &t).is_err());
}
