//! Batched matmul with transposes against an f64 triple loop.

use ainrnn::backend::{BTensor, Backend};
use rand::Rng;

use crate::common::*;

/// f64 reference of `op(a)·op(b)` for stored shapes [.., r, c].
#[allow(clippy::too_many_arguments)]
fn oracle(
    a: &[f32],
    b: &[f32],
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    shared_a: bool,
    shared_b: bool,
) -> Vec<f64> {
    let mut out = vec![0.0f64; batch * m * n];
    for z in 0..batch {
        let ao = if shared_a { 0 } else { z * m * k };
        let bo = if shared_b { 0 } else { z * k * n };
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for l in 0..k {
                    let av = if ta {
                        a[ao + l * m + i]
                    } else {
                        a[ao + i * k + l]
                    };
                    let bv = if tb {
                        b[bo + j * k + l]
                    } else {
                        b[bo + l * n + j]
                    };
                    s += av as f64 * bv as f64;
                }
                out[z * m * n + i * n + j] = s;
            }
        }
    }
    out
}

fn stored(batch: Option<usize>, r: usize, c: usize, trans: bool) -> Vec<usize> {
    let (r, c) = if trans { (c, r) } else { (r, c) };
    match batch {
        Some(b) => vec![b, r, c],
        None => vec![r, c],
    }
}

#[allow(clippy::too_many_arguments)]
fn case<B: Backend>(
    be: &B,
    seed: u64,
    batch_a: Option<usize>,
    batch_b: Option<usize>,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
) {
    let mut r = rng(seed);
    let batch = batch_a.or(batch_b).unwrap_or(1);
    let sa = stored(batch_a, m, k, ta);
    let sb = stored(batch_b, k, n, tb);
    let av = uniform(&mut r, sa.iter().product(), -1.0, 1.0);
    let bv = uniform(&mut r, sb.iter().product(), -1.0, 1.0);
    let a = be.upload_f32(&av, &sa).unwrap();
    let b = be.upload_f32(&bv, &sb).unwrap();
    let c = be.matmul(&a, &b, ta, tb).unwrap();
    let want = oracle(
        &av,
        &bv,
        batch,
        m,
        k,
        n,
        ta,
        tb,
        batch_a.is_none(),
        batch_b.is_none(),
    );
    let what = format!(
        "matmul {sa:?}{} x {sb:?}{} (m={m} k={k} n={n})",
        if ta { "ᵀ" } else { "" },
        if tb { "ᵀ" } else { "" }
    );
    let expect_shape: Vec<usize> = if batch_a.is_some() || batch_b.is_some() {
        vec![batch, m, n]
    } else {
        vec![m, n]
    };
    assert_eq!(c.shape(), expect_shape.as_slice(), "{what}");
    assert_close(&what, &be.to_f32(&c).unwrap(), &want, Tol::sum(k));
}

pub fn random_shapes<B: Backend>(be: &B) {
    let shapes = [
        (1, 1, 1),
        (1, 7, 1),
        (3, 5, 7),
        (63, 65, 17),
        (64, 64, 64),
        (65, 16, 63),
        (129, 31, 257),
        (1, 300, 1000),
        (200, 1, 3),
        // Empty: k = 0 is a product of zeros, which the GPU writes (its output is poisoned
        // under the tests); no rows or no columns is an empty result.
        (4, 0, 3),
        (0, 5, 3),
        (3, 5, 0),
    ];
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        case(be, 10 + i as u64, None, None, m, k, n, false, false);
    }
    let mut r = rng(99);
    for s in 0..6 {
        let (m, k, n) = (
            r.random_range(1..150),
            r.random_range(1..150),
            r.random_range(1..150),
        );
        case(be, 100 + s, None, None, m, k, n, r.random(), r.random());
    }
}

pub fn transposes_and_batches<B: Backend>(be: &B) {
    for (i, &(ta, tb)) in [(false, false), (true, false), (false, true), (true, true)]
        .iter()
        .enumerate()
    {
        let s = 20 + i as u64 * 4;
        case(be, s, Some(3), Some(3), 33, 70, 45, ta, tb);
        case(be, s + 1, Some(4), None, 17, 9, 66, ta, tb);
        case(be, s + 2, None, Some(5), 65, 12, 8, ta, tb);
        case(be, s + 3, Some(1), Some(1), 1, 1, 1, ta, tb);
    }
}

/// `c = 0.5 · a·bᵀ − 2 · c` in place against the oracle; returns `c`'s initial values and a
/// clone of `c` taken before the update.
fn check_into<B: Backend>(
    be: &B,
    seed: u64,
    m: usize,
    k: usize,
    n: usize,
) -> (Vec<f32>, BTensor<B>) {
    let mut r = rng(seed);
    let av = uniform(&mut r, m * k, -1.0, 1.0);
    let bv = uniform(&mut r, n * k, -1.0, 1.0);
    let cv = uniform(&mut r, m * n, -1.0, 1.0);
    let a = be.upload_f32(&av, &[m, k]).unwrap();
    let b = be.upload_f32(&bv, &[n, k]).unwrap();
    let mut c = be.upload_f32(&cv, &[m, n]).unwrap();
    let keep = c.clone();
    be.matmul_into(&mut c, &a, &b, false, true, 0.5, -2.0)
        .unwrap();
    let prod = oracle(&av, &bv, 1, m, k, n, false, true, true, true);
    let want: Vec<f64> = prod
        .iter()
        .zip(&cv)
        .map(|(p, &c)| 0.5 * p - 2.0 * c as f64)
        .collect();
    assert_close(
        &format!("matmul_into {m}x{k}x{n} alpha=0.5 beta=-2"),
        &be.to_f32(&c).unwrap(),
        &want,
        Tol::sum(k),
    );
    (cv, keep)
}

pub fn accumulate_into<B: Backend>(be: &B) {
    let (m, n) = (37, 29);
    let (cv, keep) = check_into(be, 7, m, 50, n);
    // The clone taken before must not see the in-place update (copy-on-write).
    assert_close(
        "matmul_into source clone",
        &be.to_f32(&keep).unwrap(),
        &to_f64(&cv),
        Tol::EXACT,
    );
    // k = 0: the product is empty, so out = beta * out.
    let e1 = be.upload_f32(&[], &[m, 0]).unwrap();
    let e2 = be.upload_f32(&[], &[0, n]).unwrap();
    let mut c2 = be.upload_f32(&cv, &[m, n]).unwrap();
    be.matmul_into(&mut c2, &e1, &e2, false, false, 1.0, 3.0)
        .unwrap();
    let want: Vec<f64> = cv.iter().map(|&c| 3.0 * c as f64).collect();
    assert_close(
        "matmul_into k=0",
        &be.to_f32(&c2).unwrap(),
        &want,
        Tol::ELEMENTWISE,
    );
}

/// `op(a)·op(b) + bias` against the oracle plus the bias on every row, for the shapes the model
/// uses it on (input projections, the catalogue logits) and small odd ones; a bias of the wrong
/// length is an error.
pub fn with_bias<B: Backend>(be: &B) {
    let mut r = rng(77);
    for &(m, k, n, ta, tb) in &[
        (1, 1, 1, false, false),
        (5, 3, 7, true, false),
        (1600, 65, 256, false, false),
        (64, 64, 3000, false, true),
        (33, 17, 70, true, true),
        // The 128 × 128 kernel (≥ 64 of its tiles) and a split-K product (small C, long K):
        // the GPU adds the bias in the store of each, or after the split-K sum.
        (1100, 20, 1030, false, true),
        (3, 5000, 40, true, false),
    ] {
        let sa = stored(None, m, k, ta);
        let sb = stored(None, k, n, tb);
        let av = uniform(&mut r, m * k, -1.0, 1.0);
        let bv = uniform(&mut r, k * n, -1.0, 1.0);
        let biasv = uniform(&mut r, n, -2.0, 2.0);
        let (a, b) = (
            be.upload_f32(&av, &sa).unwrap(),
            be.upload_f32(&bv, &sb).unwrap(),
        );
        let bias = be.upload_f32(&biasv, &[n]).unwrap();
        let c = be.matmul_bias(&a, &b, ta, tb, &bias).unwrap();
        let want: Vec<f64> = oracle(&av, &bv, 1, m, k, n, ta, tb, true, true)
            .iter()
            .enumerate()
            .map(|(i, &p)| p + biasv[i % n] as f64)
            .collect();
        assert_eq!(c.shape(), &[m, n]);
        assert_close(
            &format!("matmul_bias m={m} k={k} n={n} ta={ta} tb={tb}"),
            &be.to_f32(&c).unwrap(),
            &want,
            Tol::sum(k),
        );
    }
    let a = be.upload_f32(&[1.0; 6], &[2, 3]).unwrap();
    let b = be.upload_f32(&[1.0; 12], &[3, 4]).unwrap();
    let bad = be.upload_f32(&[0.0; 3], &[3]).unwrap();
    assert!(be.matmul_bias(&a, &b, false, false, &bad).is_err());
}

pub fn large<B: Backend>(be: &B) {
    case(be, 5, None, None, 300, 384, 520, false, false);
    // Taller than wide: the CPU splits C by rows (blocks of 16 rows, the last one shorter).
    case(be, 7, None, None, 1001, 70, 90, false, true);
    case(be, 6, Some(2), None, 130, 257, 190, true, true);
}

/// Products large enough for the GPU's 128 × 128 kernel (at least 64 of its tiles): every
/// transpose, edges that are not multiples of the tile or of its K slice, batches with shared
/// and per-entry operands, and accumulation with alpha/beta.
pub fn big_tiles<B: Backend>(be: &B) {
    for (i, &(ta, tb)) in [(false, false), (true, false), (false, true), (true, true)]
        .iter()
        .enumerate()
    {
        let s = 60 + i as u64 * 3;
        case(be, s, None, None, 1030, 20, 1100, ta, tb);
        case(be, s + 1, Some(3), Some(3), 600, 24, 600, ta, tb);
        case(be, s + 2, Some(3), None, 520, 17, 700, ta, tb);
    }
    check_into(be, 70, 1030, 33, 1029);
}

/// The training loss's shapes, which both backends rearrange: the wide, short catalogue logits
/// `u·qᵀ` (CPU: split by columns over the threads), and a small output over a long K, `g·q` and
/// `gᵀ`-free accumulation into ∂u (CPU: K split over threads; GPU: split-K partials summed by a
/// second pass), with alpha/beta.
pub fn catalogue_shapes<B: Backend>(be: &B) {
    case(be, 40, None, None, 64, 64, 3000, false, true);
    case(be, 41, None, None, 33, 20, 700, false, false);
    case(be, 42, None, None, 64, 5000, 64, false, false);
    case(be, 43, None, None, 70, 4100, 3, true, false);
    case(be, 44, None, None, 5, 2049, 129, false, true);
    let mut r = rng(45);
    let (m, k, n) = (64, 4500, 64);
    let av = uniform(&mut r, m * k, -1.0, 1.0);
    let bv = uniform(&mut r, k * n, -1.0, 1.0);
    let cv = uniform(&mut r, m * n, -1.0, 1.0);
    let a = be.upload_f32(&av, &[m, k]).unwrap();
    let b = be.upload_f32(&bv, &[k, n]).unwrap();
    let mut c = be.upload_f32(&cv, &[m, n]).unwrap();
    be.matmul_into(&mut c, &a, &b, false, false, 0.5, 1.0)
        .unwrap();
    let prod = oracle(&av, &bv, 1, m, k, n, false, false, true, true);
    let want: Vec<f64> = prod
        .iter()
        .zip(&cv)
        .map(|(p, &c)| 0.5 * p + c as f64)
        .collect();
    assert_close(
        "matmul_into long k, alpha=0.5 beta=1",
        &be.to_f32(&c).unwrap(),
        &want,
        Tol::sum(k),
    );
}

/// L = Σ W ⊙ (A·B); dA = W·Bᵀ, dB = Aᵀ·W computed with the backend's matmul, against central
/// differences of the f64 oracle.
pub fn backward_finite_difference<B: Backend>(be: &B) {
    let (m, k, n) = (5, 7, 4);
    let mut r = rng(3);
    let av = uniform(&mut r, m * k, -1.0, 1.0);
    let bv = uniform(&mut r, k * n, -1.0, 1.0);
    let wv = uniform(&mut r, m * n, -1.0, 1.0);
    let loss = |a: &[f32], b: &[f32]| -> f64 {
        oracle(a, b, 1, m, k, n, false, false, true, true)
            .iter()
            .zip(&wv)
            .map(|(p, &w)| p * w as f64)
            .sum()
    };
    let w: BTensor<B> = be.upload_f32(&wv, &[m, n]).unwrap();
    let a = be.upload_f32(&av, &[m, k]).unwrap();
    let b = be.upload_f32(&bv, &[k, n]).unwrap();
    let da = be.to_f32(&be.matmul(&w, &b, false, true).unwrap()).unwrap();
    let db = be.to_f32(&be.matmul(&a, &w, true, false).unwrap()).unwrap();
    let h = 1e-3f32;
    let fd = |in_a: bool, i: usize| central_diff2(loss, (&av, &bv), in_a, i, h);
    let want_a: Vec<f64> = (0..av.len()).map(|i| fd(true, i)).collect();
    let want_b: Vec<f64> = (0..bv.len()).map(|i| fd(false, i)).collect();
    let tol = Tol {
        rel: 1e-3,
        abs: 1e-4,
    };
    assert_close("matmul dA vs finite differences", &da, &want_a, tol);
    assert_close("matmul dB vs finite differences", &db, &want_b, tol);
}

pub fn shape_errors<B: Backend>(be: &B) {
    let a = be.upload_f32(&[0.0; 6], &[2, 3]).unwrap();
    let b = be.upload_f32(&[0.0; 8], &[2, 4]).unwrap();
    let e = be.matmul(&a, &b, false, false).unwrap_err().to_string();
    assert!(e.contains("matmul") && e.contains("inner sizes"), "{e}");
    let c = be.upload_f32(&[0.0; 24], &[2, 3, 4]).unwrap();
    let d = be.upload_f32(&[0.0; 36], &[3, 4, 3]).unwrap();
    let e = be.matmul(&c, &d, false, false).unwrap_err().to_string();
    assert!(e.contains("batch sizes differ"), "{e}");
    let idx = be.upload_u32(&[1, 2], &[2]).unwrap();
    assert!(be
        .matmul(&idx, &a, false, false)
        .unwrap_err()
        .to_string()
        .contains("f32"));
    let mut out = be.zeros(&[3, 3]).unwrap();
    let e = be
        .matmul_into(&mut out, &a, &a, false, true, 1.0, 0.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("out is [3, 3]"), "{e}");
    // A 3-D operand with a batch of 0 is an empty batch, not a 2-D operand shared over the
    // other's batch: its product is empty, and against a batch of 3 the sizes differ.
    let none = be.zeros(&[0, 2, 3]).unwrap();
    let w = be.zeros(&[3, 4]).unwrap();
    let p = be.matmul(&none, &w, false, false).unwrap();
    assert_eq!(p.shape(), &[0, 2, 4]);
    assert!(be.to_f32(&p).unwrap().is_empty());
    let three = be.zeros(&[3, 2, 3]).unwrap();
    let none_b = be.zeros(&[0, 3, 4]).unwrap();
    let e = be
        .matmul(&three, &none_b, false, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("batch sizes differ: 3 vs 0"), "{e}");
}
