//! Model ops (IndRNN, LSTM, optimizer, top-k) against f64 oracles and finite differences.

use ainrnn::backend::model_ops::{AdamSlot, AdamStep, ModelOps, ProductGrad, TimeDrop, MAX_TOPK};
use ainrnn::error::OpError;
use rand::Rng;

use crate::common::*;

/// Right-aligned padding (as the models use) plus a hole, so carries through masked steps are hit.
fn mask_for(b: usize, l: usize) -> Vec<f32> {
    let mut m = vec![1.0f32; b * l];
    for bi in 0..b {
        let pad = (bi * 2) % l.max(1);
        for t in 0..pad {
            m[bi * l + t] = 0.0;
        }
        if bi % 3 == 2 && l > 3 {
            m[bi * l + l - 2] = 0.0;
        }
    }
    m
}

fn indrnn64(pre: &[f32], u: &[f32], mask: &[f32], b: usize, l: usize, h: usize) -> Vec<f64> {
    let mut out = vec![0.0; b * l * h];
    for bi in 0..b {
        for j in 0..h {
            let mut s = 0.0f64;
            for t in 0..l {
                let i = (bi * l + t) * h + j;
                if mask[bi * l + t] > 0.0 {
                    s = (pre[i] as f64 + u[j] as f64 * s).max(0.0);
                }
                out[i] = s;
            }
        }
    }
    out
}

pub fn indrnn_forward<B: ModelOps>(be: &B) {
    let mut r = rng(200);
    for &(b, l, h) in &[(1, 1, 1), (3, 7, 5), (17, 33, 300), (2, 60, 257)] {
        let pre = uniform(&mut r, b * l * h, -1.0, 1.0);
        let u = uniform(&mut r, h, -1.0, 1.0);
        let mask = mask_for(b, l);
        let out = be
            .indrnn_forward(
                &be.upload_f32(&pre, &[b, l, h]).unwrap(),
                &be.upload_f32(&u, &[h]).unwrap(),
                &be.upload_f32(&mask, &[b, l]).unwrap(),
            )
            .unwrap();
        assert_close(
            &format!("indrnn forward {b}x{l}x{h}"),
            &be.to_f32(&out).unwrap(),
            &indrnn64(&pre, &u, &mask, b, l, h),
            Tol {
                rel: 1e-5,
                abs: 1e-5,
            },
        );
    }
    let e = be.indrnn_forward(
        &be.zeros(&[2, 3, 4]).unwrap(),
        &be.zeros(&[5]).unwrap(),
        &be.zeros(&[2, 3]).unwrap(),
    );
    assert!(e.unwrap_err().to_string().contains("u has shape"));
}

/// L = Σ W ⊙ h: ∂pre and ∂u from the backward op vs central differences of the f64 oracle, on
/// sequences shorter than, a multiple of and longer than the kernels' four steps at a time (in
/// 5 × 8, sequence 4 has no padding: its first step must see no state before it).
pub fn indrnn_backward_finite_difference<B: ModelOps>(be: &B) {
    let mut r = rng(201);
    for (b, l, h) in [(3, 6, 4), (2, 3, 2), (5, 8, 3), (1, 13, 5)] {
        // Keep pre-activations away from relu's kink so the finite differences are smooth.
        let pre: Vec<f32> = uniform(&mut r, b * l * h, -1.0, 1.0)
            .iter()
            .map(|&x| if x.abs() < 0.1 { x + 0.25 } else { x })
            .collect();
        let u = uniform(&mut r, h, -0.9, 0.9);
        let w = uniform(&mut r, b * l * h, -1.0, 1.0);
        let mask = mask_for(b, l);
        let (tp, tu, tm) = (
            be.upload_f32(&pre, &[b, l, h]).unwrap(),
            be.upload_f32(&u, &[h]).unwrap(),
            be.upload_f32(&mask, &[b, l]).unwrap(),
        );
        let hs = be.indrnn_forward(&tp, &tu, &tm).unwrap();
        let (dpre, du) = be
            .indrnn_backward(&tp, &tu, &tm, &hs, &be.upload_f32(&w, &[b, l, h]).unwrap())
            .unwrap();
        let loss = |pre: &[f32], u: &[f32]| -> f64 {
            indrnn64(pre, u, &mask, b, l, h)
                .iter()
                .zip(&w)
                .map(|(a, &c)| a * c as f64)
                .sum()
        };
        let eps = 1e-3f32;
        let fd = |in_pre: bool, i: usize| central_diff2(loss, (&pre, &u), in_pre, i, eps);
        let want_pre: Vec<f64> = (0..pre.len()).map(|i| fd(true, i)).collect();
        let want_u: Vec<f64> = (0..u.len()).map(|i| fd(false, i)).collect();
        let tol = Tol {
            rel: 2e-3,
            abs: 2e-4,
        };
        assert_close(
            &format!("indrnn ∂pre vs finite differences, {b}x{l}x{h}"),
            &be.to_f32(&dpre).unwrap(),
            &want_pre,
            tol,
        );
        assert_close(
            &format!("indrnn ∂u vs finite differences, {b}x{l}x{h}"),
            &be.to_f32(&du).unwrap(),
            &want_u,
            tol,
        );
    }
}

/// IndRNN with its dropout in the same pass (`indrnn_forward_drop`, `indrnn_backward_drop_parts`)
/// against the plain kernels and `dropout_time` composed: the forward's `h` and dropped output
/// exactly (one product per entry either way), the backward within 1e-6 (a GPU compiler may fuse
/// the mask's product with the carry's sum into one rounding). The masks themselves are checked
/// against the oracle by `dropout_masks`.
pub fn indrnn_with_dropout<B: ModelOps>(be: &B) {
    let mut r = rng(202);
    for &(b, l, h, keep, seed, stream) in &[
        (1usize, 1usize, 1usize, 0.5f32, 3u32, 0u32),
        (3, 7, 5, 0.8, 7, 1),
        (17, 33, 300, 0.7, 0xdead_beef, 4),
        (64, 25, 32, 1.0, 9, 2),
    ] {
        let drop = TimeDrop { keep, seed, stream };
        let pre = uniform(&mut r, b * l * h, -1.0, 1.0);
        let u = uniform(&mut r, h, -0.9, 0.9);
        let mask = mask_for(b, l);
        let dout = uniform(&mut r, b * l * h, -1.0, 1.0);
        let (tp, tu, tm) = (
            be.upload_f32(&pre, &[b, l, h]).unwrap(),
            be.upload_f32(&u, &[h]).unwrap(),
            be.upload_f32(&mask, &[b, l]).unwrap(),
        );
        let td = be.upload_f32(&dout, &[b, l, h]).unwrap();
        let name = format!("{b}x{l}x{h} keep {keep}");
        let (hs, out) = be.indrnn_forward_drop(&tp, &tu, &tm, drop).unwrap();
        let plain = be.indrnn_forward(&tp, &tu, &tm).unwrap();
        let h_got = be.to_f32(&hs).unwrap();
        assert_eq!(h_got, be.to_f32(&plain).unwrap(), "h {name}");
        let dropped = be.dropout_time(&plain, keep, seed, stream).unwrap();
        assert_eq!(
            be.to_f32(&out).unwrap(),
            be.to_f32(&dropped).unwrap(),
            "dropped h {name}"
        );
        let (dpre, du) = be
            .indrnn_backward_drop_parts(&tp, &tu, &tm, &hs, &td, drop)
            .unwrap();
        let dh = be.dropout_time(&td, keep, seed, stream).unwrap();
        let (dpre_want, du_want) = be.indrnn_backward_parts(&tp, &tu, &tm, &hs, &dh).unwrap();
        let tol = Tol {
            rel: 1e-6,
            abs: 1e-6,
        };
        let as64 = |t: &[f32]| t.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        assert_close(
            &format!("∂pre {name}"),
            &be.to_f32(&dpre).unwrap(),
            &as64(&be.to_f32(&dpre_want).unwrap()),
            tol,
        );
        assert_close(
            &format!("∂u partials {name}"),
            &be.to_f32(&du).unwrap(),
            &as64(&be.to_f32(&du_want).unwrap()),
            tol,
        );
    }
    let z = be.zeros(&[2, 3, 4]).unwrap();
    let bad = TimeDrop {
        keep: 0.0,
        seed: 1,
        stream: 0,
    };
    let (u4, m) = (be.zeros(&[4]).unwrap(), be.zeros(&[2, 3]).unwrap());
    assert!(
        be.indrnn_forward_drop(&z, &u4, &m, bad).is_err(),
        "keep in (0, 1]"
    );
    assert!(
        be.indrnn_backward_drop_parts(&z, &u4, &m, &z, &z, bad)
            .is_err(),
        "keep in (0, 1]"
    );
}

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// f64 LSTM: returns h [B, L, H].
fn lstm64(xw: &[f32], wh: &[f32], mask: &[f32], b: usize, l: usize, h: usize) -> Vec<f64> {
    let mut out = vec![0.0; b * l * h];
    for bi in 0..b {
        let (mut hp, mut cp) = (vec![0.0f64; h], vec![0.0f64; h]);
        for t in 0..l {
            let row = bi * l + t;
            if mask[row] > 0.0 {
                let mut a: Vec<f64> = xw[row * 4 * h..(row + 1) * 4 * h]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                for k in 0..h {
                    for m in 0..4 * h {
                        a[m] += hp[k] * wh[k * 4 * h + m] as f64;
                    }
                }
                for j in 0..h {
                    let (i, f, g, o) = (
                        sig(a[j]),
                        sig(a[h + j]),
                        a[2 * h + j].tanh(),
                        sig(a[3 * h + j]),
                    );
                    cp[j] = f * cp[j] + i * g;
                    hp[j] = o * cp[j].tanh();
                }
            }
            out[row * h..(row + 1) * h].copy_from_slice(&hp);
        }
    }
    out
}

pub fn lstm_forward<B: ModelOps>(be: &B) {
    let mut r = rng(210);
    // One sequence; several in one workgroup; 3 to a workgroup over 3 workgroups (the GPU's
    // whole-sequence kernel holds 256 / H); 16 workgroups; wider than a workgroup (per-step);
    // no steps at all (nothing to run: the whole-sequence kernel would read a first step).
    let cases = [
        (1, 1, 1),
        (4, 9, 6),
        (9, 20, 70),
        (250, 4, 16),
        (3, 4, 300),
        (2, 0, 8),
    ];
    for &(b, l, h) in &cases {
        let xw = uniform(&mut r, b * l * 4 * h, -1.0, 1.0);
        let wh = uniform(&mut r, h * 4 * h, -0.5, 0.5);
        let mask = mask_for(b, l);
        let c = be
            .lstm_forward(
                be.upload_f32(&xw, &[b, l, 4 * h]).unwrap(),
                &be.upload_f32(&wh, &[h, 4 * h]).unwrap(),
                &be.upload_f32(&mask, &[b, l]).unwrap(),
            )
            .unwrap();
        let want = lstm64(&xw, &wh, &mask, b, l, h);
        assert_close(
            &format!("lstm h {b}x{l}x{h}"),
            &be.to_f32(&c.h).unwrap(),
            &want,
            Tol {
                rel: 1e-4,
                abs: 2e-5,
            },
        );
        // h_prev is h shifted by one step.
        let hp = be.to_f32(&c.h_prev).unwrap();
        for bi in 0..b {
            for t in 0..l {
                for j in 0..h {
                    let expect = if t == 0 {
                        0.0
                    } else {
                        want[(bi * l + t - 1) * h + j]
                    };
                    assert!(
                        (hp[(bi * l + t) * h + j] as f64 - expect).abs() < 2e-5,
                        "h_prev at b={bi} t={t} j={j}"
                    );
                }
            }
        }
    }
}

/// L = Σ W ⊙ h; ∂xw from lstm_backward and ∂W_h = h_prevᵀ·∂gates vs finite differences: every
/// entry of a small case; sampled entries of one spanning several workgroups of the GPU's
/// whole-sequence kernel (3 sequences each at H = 70) and of one wider than a workgroup (the
/// per-step kernels).
pub fn lstm_backward_finite_difference<B: ModelOps>(be: &B) {
    lstm_fd_case(be, (3, 5, 3), None, 211);
    lstm_fd_case(be, (20, 4, 70), Some(40), 212);
    lstm_fd_case(be, (2, 3, 300), Some(40), 213);
}

fn lstm_fd_case<B: ModelOps>(
    be: &B,
    (b, l, h): (usize, usize, usize),
    picks: Option<usize>,
    seed: u64,
) {
    let mut r = rng(seed);
    let xw = uniform(&mut r, b * l * 4 * h, -1.0, 1.0);
    let wh = uniform(
        &mut r,
        h * 4 * h,
        -0.6 / (h as f32).sqrt(),
        0.6 / (h as f32).sqrt(),
    );
    let w = uniform(&mut r, b * l * h, -1.0, 1.0);
    let mask = mask_for(b, l);
    let (txw, twh, tm) = (
        be.upload_f32(&xw, &[b, l, 4 * h]).unwrap(),
        be.upload_f32(&wh, &[h, 4 * h]).unwrap(),
        be.upload_f32(&mask, &[b, l]).unwrap(),
    );
    let cache = be.lstm_forward(txw.clone(), &twh, &tm).unwrap();
    let dg = be
        .lstm_backward(&cache, &twh, &tm, &be.upload_f32(&w, &[b, l, h]).unwrap())
        .unwrap();
    let dwh = be
        .matmul(
            &cache.h_prev.clone().reshape(&[b * l, h]).unwrap(),
            &dg.clone().reshape(&[b * l, 4 * h]).unwrap(),
            true,
            false,
        )
        .unwrap();
    let loss = |xw: &[f32], wh: &[f32]| -> f64 {
        lstm64(xw, wh, &mask, b, l, h)
            .iter()
            .zip(&w)
            .map(|(a, &c)| a * c as f64)
            .sum()
    };
    let eps = 1e-3f32;
    let fd = |in_xw: bool, i: usize| central_diff2(loss, (&xw, &wh), in_xw, i, eps);
    let mut pick = |n: usize| -> Vec<usize> {
        match picks {
            None => (0..n).collect(),
            Some(k) => (0..k).map(|_| r.random_range(0..n)).collect(),
        }
    };
    let (ix, iw) = (pick(xw.len()), pick(wh.len()));
    let tol = Tol {
        rel: 2e-3,
        abs: 2e-4,
    };
    let got_xw = be.to_f32(&dg).unwrap();
    let got_wh = be.to_f32(&dwh).unwrap();
    assert_close(
        &format!("lstm {b}x{l}x{h} ∂xw vs finite differences"),
        &ix.iter().map(|&i| got_xw[i]).collect::<Vec<_>>(),
        &ix.iter().map(|&i| fd(true, i)).collect::<Vec<_>>(),
        tol,
    );
    assert_close(
        &format!("lstm {b}x{l}x{h} ∂W_h vs finite differences"),
        &iw.iter().map(|&i| got_wh[i]).collect::<Vec<_>>(),
        &iw.iter().map(|&i| fd(false, i)).collect::<Vec<_>>(),
        tol,
    );
}

pub fn elementwise_helpers<B: ModelOps>(be: &B) {
    let mut r = rng(220);
    let (b, l, h) = (3, 4, 5);
    let x = uniform(&mut r, b * l * h, -1.0, 1.0);
    let m = uniform(&mut r, b * h, 0.0, 2.0);
    let got = be
        .to_f32(
            &be.time_mask_mul(
                &be.upload_f32(&x, &[b, l, h]).unwrap(),
                &be.upload_f32(&m, &[b, h]).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
    let want: Vec<f64> = (0..x.len())
        .map(|i| x[i] as f64 * m[(i / (l * h)) * h + i % h] as f64)
        .collect();
    assert_close("time_mask_mul", &got, &want, Tol::ELEMENTWISE);
    assert!(be
        .time_mask_mul(
            &be.upload_f32(&x, &[b, l, h]).unwrap(),
            &be.upload_f32(&m[..5], &[5]).unwrap()
        )
        .is_err());

    // tanh backward vs finite differences of Σ w·tanh(x).
    let xs = uniform(&mut r, 300, -3.0, 3.0);
    let ws = uniform(&mut r, 300, -1.0, 1.0);
    let y = be
        .unary(
            ainrnn::backend::UnaryOp::Tanh,
            &be.upload_f32(&xs, &[300]).unwrap(),
        )
        .unwrap();
    let got = be
        .to_f32(
            &be.tanh_backward(&y, &be.upload_f32(&ws, &[300]).unwrap())
                .unwrap(),
        )
        .unwrap();
    let want: Vec<f64> = xs
        .iter()
        .zip(&ws)
        .map(|(&x, &w)| {
            let e = 1e-4;
            w as f64 * (((x as f64 + e).tanh() - (x as f64 - e).tanh()) / (2.0 * e))
        })
        .collect();
    assert_close(
        "tanh backward vs finite differences",
        &got,
        &want,
        Tol {
            rel: 1e-4,
            abs: 1e-5,
        },
    );

    let mut c = be.upload_f32(&xs, &[300]).unwrap();
    be.clamp(&mut c, -0.5, 0.25).unwrap();
    let want: Vec<f64> = xs.iter().map(|&x| x.clamp(-0.5, 0.25) as f64).collect();
    assert_close("clamp", &be.to_f32(&c).unwrap(), &want, Tol::EXACT);
}

pub fn optimizer<B: ModelOps>(be: &B) {
    let mut r = rng(230);
    let n = 1000;
    let g1 = uniform(&mut r, n, -1.0, 1.0);
    let g2 = uniform(&mut r, 77, -2.0, 2.0);
    let mut acc = be.zeros(&[1]).unwrap();
    be.sum_squares_into(&mut acc, &be.upload_f32(&g1, &[n]).unwrap())
        .unwrap();
    be.sum_squares_into(&mut acc, &be.upload_f32(&g2, &[77]).unwrap())
        .unwrap();
    let ss: f64 = g1.iter().chain(&g2).map(|&x| x as f64 * x as f64).sum();
    assert_close(
        "sum of squares",
        &be.to_f32(&acc).unwrap(),
        &[ss],
        Tol::sum(n),
    );
    let sc = be.to_f32(&be.clip_scale(&acc, 1.0).unwrap()).unwrap();
    assert_close(
        "clip scale",
        &sc,
        &[1.0 / (ss.sqrt() + 1e-6)],
        Tol {
            rel: 1e-5,
            abs: 0.0,
        },
    );
    assert_eq!(
        be.to_f32(&be.clip_scale(&acc, 1e6).unwrap()).unwrap(),
        vec![1.0],
        "no clipping below the limit"
    );
    let nan = be.upload_f32(&[f32::NAN], &[1]).unwrap();
    assert!(
        be.to_f32(&be.clip_scale(&nan, 1.0).unwrap()).unwrap()[0].is_nan(),
        "a NaN norm must stay visible"
    );

    // Three Adam steps against the formula in f64.
    let p0 = uniform(&mut r, n, -1.0, 1.0);
    let mut p = be.upload_f32(&p0, &[n]).unwrap();
    let mut m = be.zeros(&[n]).unwrap();
    let mut v = be.zeros(&[n]).unwrap();
    let (mut pe, mut me, mut ve) = (to_f64(&p0), vec![0.0f64; n], vec![0.0f64; n]);
    for t in 1..=3u32 {
        let g = uniform(&mut r, n, -1.0, 1.0);
        let scale = 0.5f32;
        let s = AdamStep {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            t,
            clamp: None,
        };
        be.adam_step(
            &mut p,
            &be.upload_f32(&g, &[n]).unwrap(),
            &mut m,
            &mut v,
            &be.upload_f32(&[scale], &[1]).unwrap(),
            &s,
        )
        .unwrap();
        for i in 0..n {
            let gi = g[i] as f64 * scale as f64;
            me[i] = 0.9 * me[i] + 0.1 * gi;
            ve[i] = 0.999 * ve[i] + 0.001 * gi * gi;
            let (mh, vh) = (
                me[i] / (1.0 - 0.9f64.powi(t as i32)),
                ve[i] / (1.0 - 0.999f64.powi(t as i32)),
            );
            pe[i] -= 0.01 * (mh / (vh.sqrt() + 1e-8) + 0.01 * pe[i]);
        }
    }
    assert_close(
        "adam params after 3 steps",
        &be.to_f32(&p).unwrap(),
        &pe,
        Tol {
            rel: 1e-4,
            abs: 1e-6,
        },
    );
    assert_close(
        "adam first moment",
        &be.to_f32(&m).unwrap(),
        &me,
        Tol {
            rel: 1e-4,
            abs: 1e-7,
        },
    );
}

fn topk_oracle(row: &[f32], k: usize) -> Vec<(f32, u32)> {
    let mut v: Vec<(f32, u32)> = row
        .iter()
        .enumerate()
        .filter(|(_, x)| **x > f32::NEG_INFINITY)
        .map(|(i, &x)| (x, i as u32))
        .collect();
    v.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
    v.resize(k, (f32::NEG_INFINITY, u32::MAX));
    v.truncate(k);
    v
}

pub fn topk_and_masking<B: ModelOps>(be: &B) {
    let mut r = rng(240);
    for &(rows, cols, k) in &[
        (1, 1, 1),
        (3, 5, 10),
        (7, 1000, 10),
        (4, 100_000, 20),
        (2, 70_000, 32),
    ] {
        // Quantised values create many ties; some entries are masked out.
        let mut x: Vec<f32> = (0..rows * cols)
            .map(|_| (r.random_range(0..50) as f32) / 7.0)
            .collect();
        for v in x.iter_mut().step_by(11) {
            *v = f32::NEG_INFINITY;
        }
        let t = be.upload_f32(&x, &[rows, cols]).unwrap();
        let (vals, ids) = be.topk_rows(&t, k).unwrap();
        assert_eq!(vals.shape(), &[rows, k]);
        let (gv, gi) = (be.to_f32(&vals).unwrap(), be.to_u32(&ids).unwrap());
        for row in 0..rows {
            let want = topk_oracle(&x[row * cols..(row + 1) * cols], k);
            for q in 0..k {
                assert_eq!(
                    (gv[row * k + q], gi[row * k + q]),
                    want[q],
                    "top-{k} of row {row} ({rows}x{cols}) at rank {q}"
                );
            }
        }
    }
    assert!(be.topk_rows(&be.zeros(&[2, 3]).unwrap(), 0).is_err());
    assert!(be.topk_rows(&be.zeros(&[2, 3]).unwrap(), 33).is_err());

    let mut x = be
        .upload_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
        .unwrap();
    let csr = be.csr(2, 3, &[0, 2, 3], &[0, 2, 1], None).unwrap();
    be.mask_entries(&mut x, &csr).unwrap();
    let ninf = f32::NEG_INFINITY;
    assert_eq!(
        be.to_f32(&x).unwrap(),
        vec![ninf, 2.0, ninf, 4.0, ninf, 6.0]
    );
    let (v, i) = be.topk_rows(&x, 2).unwrap();
    assert_eq!(be.to_f32(&v).unwrap(), vec![2.0, ninf, 6.0, 4.0]);
    assert_eq!(be.to_u32(&i).unwrap(), vec![1, u32::MAX, 2, 0]);
}

/// `mask_groups` against an oracle, to the bit: random groups (some past the bit sets, some
/// `u32::MAX`), random bit sets of 1 to 3 words, values with NaN and -inf among them (an entry
/// not masked keeps its bits); rows and columns of 1, and counts off the workgroup sizes. Then
/// the top-k of the masked rows skips every banned column.
pub fn group_masking<B: ModelOps>(be: &B) {
    let mut r = rng(244);
    for &(rows, cols, words) in &[
        (1, 1, 1),
        (3, 7, 1),
        (5, 1000, 2),
        (2, 70_001, 3),
        (257, 300, 1),
    ] {
        let mut x = uniform(&mut r, rows * cols, -3.0, 3.0);
        for v in x.iter_mut().step_by(13) {
            *v = f32::NAN;
        }
        for v in x.iter_mut().skip(5).step_by(17) {
            *v = f32::NEG_INFINITY;
        }
        let groups: Vec<u32> = (0..cols)
            .map(|_| match r.random_range(0..10) {
                0 => u32::MAX,
                1 => 32 * words as u32 + r.random_range(0..40),
                _ => r.random_range(0..32 * words as u32),
            })
            .collect();
        let banned: Vec<u32> = (0..rows * words)
            .map(|_| r.random::<u32>() & r.random::<u32>())
            .collect();
        let want: Vec<u32> = (0..rows * cols)
            .map(|i| {
                let (row, g) = (i / cols, groups[i % cols] as usize);
                let hit = g / 32 < words && (banned[row * words + g / 32] >> (g % 32)) & 1 == 1;
                if hit { f32::NEG_INFINITY } else { x[i] }.to_bits()
            })
            .collect();
        let mut t = be.upload_f32(&x, &[rows, cols]).unwrap();
        let g = be.upload_u32(&groups, &[cols]).unwrap();
        let b = be.upload_u32(&banned, &[rows, words]).unwrap();
        be.mask_groups(&mut t, &g, &b).unwrap();
        let got: Vec<u32> = be.to_f32(&t).unwrap().iter().map(|v| v.to_bits()).collect();
        let masked = want
            .iter()
            .filter(|&&v| v == f32::NEG_INFINITY.to_bits())
            .count();
        assert!(
            rows * cols < 100 || masked > rows * cols / 5,
            "{rows}x{cols}: the case masks too little to test"
        );
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "{rows}x{cols} ({words} words): entry {i} (row {}, column {})",
                i / cols,
                i % cols
            );
        }
        // The top-k never lists a banned column (NaN entries aside, which it skips too).
        let k = cols.min(MAX_TOPK);
        let (_, ids) = be.topk_rows(&t, k).unwrap();
        let ids = be.to_u32(&ids).unwrap();
        for (row, list) in ids.chunks(k).enumerate() {
            for &c in list.iter().filter(|&&c| c != u32::MAX) {
                assert_ne!(
                    want[row * cols + c as usize],
                    f32::NEG_INFINITY.to_bits(),
                    "row {row} lists banned column {c}"
                );
            }
        }
    }
    // The shapes it refuses, naming the op; the tensor is left as it was.
    let mut x = be.upload_f32(&[1.0; 6], &[2, 3]).unwrap();
    let g3 = be.upload_u32(&[0, 1, 2], &[3]).unwrap();
    let g2 = be.upload_u32(&[0, 1], &[2]).unwrap();
    let b2 = be.upload_u32(&[7, 7], &[2, 1]).unwrap();
    let b3 = be.upload_u32(&[7, 7, 7], &[3, 1]).unwrap();
    let gf = be.upload_f32(&[0.0; 3], &[3]).unwrap();
    for (what, e) in [
        ("groups too short", be.mask_groups(&mut x, &g2, &b2)),
        ("a bit set too many", be.mask_groups(&mut x, &g3, &b3)),
        ("f32 groups", be.mask_groups(&mut x, &gf, &b2)),
    ] {
        let e = e.unwrap_err();
        assert_eq!(op_of(&e), "mask_groups", "{what}: {e}");
    }
    assert_eq!(be.to_f32(&x).unwrap(), vec![1.0; 6]);
}

pub fn cross_entropy_tiles<B: ModelOps>(be: &B) {
    // The full-row cross-entropy equals the sum over column tiles given the full log-sum-exp.
    let mut r = rng(250);
    let (rows, cols, tile) = (5, 1000, 300);
    let z = uniform(&mut r, rows * cols, -4.0, 4.0);
    let mut triples = Vec::new();
    for row in 0..rows as u32 {
        for c in [3u32, 299, 300, 650, 999] {
            if (row + c) % 2 == 0 {
                triples.push((row, c, 1.0 + row as f32));
            }
        }
    }
    let full = be.upload_f32(&z, &[rows, cols]).unwrap();
    let (loss, grad) = be
        .cross_entropy(&full, &be.targets(rows, cols, &triples).unwrap())
        .unwrap();
    let (want_loss, want_grad) = (be.to_f32(&loss).unwrap(), be.to_f32(&grad).unwrap());
    let lse = be.logsumexp_rows(&full).unwrap();
    let mut wsum = vec![0.0f32; rows];
    for t in &triples {
        wsum[t.0 as usize] += t.2;
    }
    let wsum = be.upload_f32(&wsum, &[rows]).unwrap();
    let mut tot = vec![0.0f64; rows];
    for start in (0..cols).step_by(tile) {
        let w = tile.min(cols - start);
        let zt: Vec<f32> = (0..rows)
            .flat_map(|row| z[row * cols + start..row * cols + start + w].to_vec())
            .collect();
        let tt: Vec<_> = triples
            .iter()
            .filter(|t| (t.1 as usize) >= start && (t.1 as usize) < start + w)
            .map(|t| (t.0, t.1 - start as u32, t.2))
            .collect();
        let (l, g) = be
            .cross_entropy_tile(
                &be.upload_f32(&zt, &[rows, w]).unwrap(),
                &lse,
                &wsum,
                &be.targets(rows, w, &tt).unwrap(),
            )
            .unwrap();
        for (row, v) in be.to_f32(&l).unwrap().iter().enumerate() {
            tot[row] += *v as f64;
        }
        let g = be.to_f32(&g).unwrap();
        let want: Vec<f64> = (0..rows)
            .flat_map(|row| to_f64(&want_grad[row * cols + start..row * cols + start + w]))
            .collect();
        assert_close(
            &format!("tile grad at column {start}"),
            &g,
            &want,
            Tol {
                rel: 1e-5,
                abs: 1e-7,
            },
        );
    }
    assert_close(
        "summed tile losses",
        &tot.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        &to_f64(&want_loss),
        Tol {
            rel: 1e-5,
            abs: 1e-5,
        },
    );
    // log-add-exp merges tile log-sum-exps into the full one.
    let a = be
        .upload_f32(&[0.0, f32::NEG_INFINITY, 3.0, f32::NEG_INFINITY], &[4])
        .unwrap();
    let b2 = be
        .upload_f32(&[0.0, 1.0, -2.0, f32::NEG_INFINITY], &[4])
        .unwrap();
    let got = be
        .to_f32(
            &be.binary(ainrnn::backend::BinaryOp::LogAddExp, &a, &b2)
                .unwrap(),
        )
        .unwrap();
    let want = [
        2f64.ln(),
        1.0,
        3.0 + (1.0 + (-5f64).exp()).ln(),
        f64::NEG_INFINITY,
    ];
    assert_close(
        "log-add-exp",
        &got,
        &want,
        Tol {
            rel: 1e-6,
            abs: 1e-6,
        },
    );
}

/// Sparse CSR blocks added into a dense block with a device scalar, and their per-row dot with a
/// dense gradient: a hand-checked case, then random blocks against an f64 oracle (rows without
/// entries, a row past the workgroup size), and the gradient of Σ w ⊙ (x + αN) in α by finite
/// differences.
pub fn csr_axpy_and_row_dot<B: ModelOps>(be: &B) {
    let mut x = be
        .upload_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
        .unwrap();
    let csr = be
        .csr(2, 3, &[0, 2, 3], &[0, 2, 1], Some(&[0.5, -1.0, 2.0]))
        .unwrap();
    let alpha = be.upload_f32(&[2.0], &[1]).unwrap();
    be.csr_axpy(&mut x, &csr, &alpha).unwrap();
    assert_eq!(be.to_f32(&x).unwrap(), vec![2.0, 2.0, 1.0, 4.0, 9.0, 6.0]);
    let d = be.csr_row_dot(&x, &csr).unwrap();
    // Row 0: 2·0.5 + 1·(−1); row 1: 9·2.
    assert_eq!(be.to_f32(&d).unwrap(), vec![0.0, 18.0]);
    // Bad CSR: values and columns disagree.
    let short: &[f32] = &[0.5, 1.0];
    assert!(be.csr(2, 3, &[0, 2, 3], &[0, 2, 1], Some(short)).is_err());

    let mut r = rng(260);
    for (rows, cols) in [(1, 1), (3, 17), (300, 41)] {
        let x0 = uniform(&mut r, rows * cols, -2.0, 2.0);
        let (mut rpv, mut cv, mut vv) = (vec![0u32], Vec::new(), Vec::new());
        for row in 0..rows {
            // Every third row empty; the others a random set of distinct columns.
            if row % 3 != 1 {
                for c in 0..cols {
                    if r.random::<f32>() < 0.3 {
                        cv.push(c as u32);
                        vv.push(r.random_range(-1.0f32..1.0));
                    }
                }
            }
            rpv.push(cv.len() as u32);
        }
        if cv.is_empty() {
            cv.push(0);
            vv.push(0.25);
            *rpv.last_mut().unwrap() = 1;
            for p in rpv.iter_mut().skip(1) {
                *p = 1;
            }
        }
        let a = 0.75f32;
        let csr = be.csr(rows, cols, &rpv, &cv, Some(&vv)).unwrap();
        let mut want = to_f64(&x0);
        let mut dots = vec![0.0f64; rows];
        for row in 0..rows {
            for j in rpv[row] as usize..rpv[row + 1] as usize {
                want[row * cols + cv[j] as usize] += a as f64 * vv[j] as f64;
                dots[row] += x0[row * cols + cv[j] as usize] as f64 * vv[j] as f64;
            }
        }
        let mut x = be.upload_f32(&x0, &[rows, cols]).unwrap();
        be.csr_axpy(&mut x, &csr, &be.upload_f32(&[a], &[1]).unwrap())
            .unwrap();
        let tol = Tol {
            rel: 1e-6,
            abs: 1e-6,
        };
        assert_close(
            &format!("csr_axpy {rows}x{cols}"),
            &be.to_f32(&x).unwrap(),
            &want,
            tol,
        );
        let g = be.upload_f32(&x0, &[rows, cols]).unwrap();
        assert_close(
            &format!("csr_row_dot {rows}x{cols}"),
            &be.to_f32(&be.csr_row_dot(&g, &csr).unwrap()).unwrap(),
            &dots,
            Tol {
                rel: 1e-5,
                abs: 1e-5,
            },
        );
        // d/dα Σ w ⊙ (x + αN) = Σ_rows csr_row_dot(w): central differences in f64 of the
        // backend's own forward.
        let w = uniform(&mut r, rows * cols, -1.0, 1.0);
        let f = |alpha: f32| -> f64 {
            let mut x = be.upload_f32(&x0, &[rows, cols]).unwrap();
            be.csr_axpy(&mut x, &csr, &be.upload_f32(&[alpha], &[1]).unwrap())
                .unwrap();
            be.to_f32(&x)
                .unwrap()
                .iter()
                .zip(&w)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum()
        };
        let h = 1e-2f32;
        let fd = (f(a + h) - f(a - h)) / (2.0 * h as f64);
        let wt = be.upload_f32(&w, &[rows, cols]).unwrap();
        let an: f64 = be
            .to_f32(&be.csr_row_dot(&wt, &csr).unwrap())
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .sum();
        assert!(
            (fd - an).abs() <= 1e-3 * (1.0 + an.abs()),
            "csr gradient {rows}x{cols}: analytic {an}, finite difference {fd}"
        );
    }
}

/// The op an error names.
fn op_of(e: &OpError) -> &'static str {
    match e {
        OpError::Shape { op, .. }
        | OpError::DType { op, .. }
        | OpError::Index { op, .. }
        | OpError::Invalid { op, .. }
        | OpError::HostMemory { op, .. } => op,
        OpError::Gpu(g) => panic!("expected an op's contract error, got {g}"),
    }
}

/// Optimizer settings that would panic on the CPU (`f32::clamp` with unordered bounds) or turn
/// every value into NaN/inf (t = 0, β = 1) or flip the gradients (a negative clip norm) are
/// refused by the shared contract, with the same error on both backends, before any value moves.
pub fn optimizer_contract<B: ModelOps>(be: &B) {
    let vals = [1.0f32, -2.0, 3.0];
    let mut x = be.upload_f32(&vals, &[3]).unwrap();
    for (lo, hi) in [(2.0, 1.0), (f32::NAN, 1.0), (0.0, f32::NAN)] {
        let e = be.clamp(&mut x, lo, hi).unwrap_err();
        assert_eq!(op_of(&e), "clamp", "[{lo}, {hi}]: {e}");
    }
    be.clamp(&mut x, -1.0, 1.0).unwrap();
    assert_eq!(be.to_f32(&x).unwrap(), vec![1.0, -1.0, 1.0]);

    let sumsq = be.upload_f32(&[100.0], &[1]).unwrap();
    for max_norm in [0.0, -1.0, f32::NAN, f32::NEG_INFINITY] {
        let e = be.clip_scale(&sumsq, max_norm).unwrap_err();
        assert_eq!(op_of(&e), "clip_scale", "max_norm {max_norm}: {e}");
    }
    let sc = be.clip_scale(&sumsq, f32::INFINITY).unwrap();
    assert_eq!(be.to_f32(&sc).unwrap(), vec![1.0]);

    let good = AdamStep {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        t: 1,
        clamp: Some((-1.0, 1.0)),
    };
    let bad = [
        ("t = 0", AdamStep { t: 0, ..good }),
        ("beta1 = 1", AdamStep { beta1: 1.0, ..good }),
        (
            "beta2 < 0",
            AdamStep {
                beta2: -0.1,
                ..good
            },
        ),
        (
            "beta1 NaN",
            AdamStep {
                beta1: f32::NAN,
                ..good
            },
        ),
        (
            "lr NaN",
            AdamStep {
                lr: f32::NAN,
                ..good
            },
        ),
        ("eps < 0", AdamStep { eps: -1e-8, ..good }),
        (
            "weight decay inf",
            AdamStep {
                weight_decay: f32::INFINITY,
                ..good
            },
        ),
        (
            "clamp lo > hi",
            AdamStep {
                clamp: Some((1.0, -1.0)),
                ..good
            },
        ),
        (
            "clamp NaN",
            AdamStep {
                clamp: Some((f32::NAN, 1.0)),
                ..good
            },
        ),
    ];
    let scale = be.upload_f32(&[1.0], &[1]).unwrap();
    for (what, step) in bad {
        let mut p = be.upload_f32(&vals, &[3]).unwrap();
        let mut g = be.upload_f32(&[0.5; 3], &[3]).unwrap();
        let (mut m, mut v) = (be.zeros(&[3]).unwrap(), be.zeros(&[3]).unwrap());
        let e = be
            .adam_step(&mut p, &g, &mut m, &mut v, &scale, &step)
            .expect_err(what);
        assert_eq!(op_of(&e), "adam_step", "{what}: {e}");
        let mut slots = [AdamSlot {
            p: &mut p,
            g: &mut g,
            m: &mut m,
            v: &mut v,
            step,
        }];
        let e = be.adam_many(&mut slots, &scale).expect_err(what);
        assert_eq!(op_of(&e), "adam_many", "{what}: {e}");
        assert_eq!(be.to_f32(&p).unwrap(), vals, "{what}: the values moved");
    }
}

/// A bad CSR block is refused when it is built (the same host check on both backends, so no
/// kernel ever indexes with it), with an error naming the op.
pub fn csr_contract<B: ModelOps>(be: &B) {
    let vals: &[f32] = &[0.5, -1.0, 2.0];
    // (what, row_ptr, cols, vals)
    type Case<'a> = (&'a str, &'a [u32], &'a [u32], &'a [f32]);
    let bad: [Case; 6] = [
        ("decreasing row_ptr", &[0, 4, 3], &[0, 2, 1], vals),
        ("row_ptr not ending at nnz", &[0, 2, 2], &[0, 2, 1], vals),
        ("row_ptr not starting at 0", &[1, 2, 3], &[0, 2, 1], vals),
        ("column out of range", &[0, 2, 3], &[0, 3, 1], vals),
        ("NaN value", &[0, 2, 3], &[0, 2, 1], &[0.5, f32::NAN, 2.0]),
        (
            "infinite value",
            &[0, 2, 3],
            &[0, 2, 1],
            &[0.5, 1.0, f32::INFINITY],
        ),
    ];
    for (what, rp, cs, vs) in bad {
        let e = be
            .csr(2, 3, rp, cs, Some(vs))
            .expect_err(&format!("{what} must be refused"));
        assert_eq!(op_of(&e), "csr", "{what}: {e}");
        if what != "NaN value" && what != "infinite value" {
            let e = be
                .csr(2, 3, rp, cs, None)
                .expect_err(&format!("{what} (no values) must be refused"));
            assert_eq!(op_of(&e), "csr", "{what}: {e}");
        }
    }
    // rows + 1 overflows: refused, not read at row_ptr[0] of an empty slice.
    let e = be.csr(usize::MAX, 3, &[], &[], None).unwrap_err();
    assert_eq!(op_of(&e), "csr", "{e}");
    // row_ptr of the wrong length; values and columns disagree.
    assert_eq!(
        op_of(&be.csr(2, 3, &[0, 3], &[0, 2, 1], None).unwrap_err()),
        "csr"
    );
    assert_eq!(
        op_of(
            &be.csr(2, 3, &[0, 2, 3], &[0, 2, 1], Some(&[1.0]))
                .unwrap_err()
        ),
        "csr"
    );
    // A valid block that does not fit the dense tensor, or has no values where they are needed.
    let ok = be.csr(2, 3, &[0, 2, 3], &[0, 2, 1], Some(vals)).unwrap();
    let bare = be.csr(2, 3, &[0, 2, 3], &[0, 2, 1], None).unwrap();
    let alpha = be.upload_f32(&[1.0], &[1]).unwrap();
    let mut wide = be.zeros(&[2, 2]).unwrap();
    let e = be.csr_axpy(&mut wide, &ok, &alpha).unwrap_err();
    assert_eq!(op_of(&e), "csr_axpy", "{e}");
    let tall = be.zeros(&[3, 3]).unwrap();
    assert_eq!(
        op_of(&be.csr_row_dot(&tall, &ok).unwrap_err()),
        "csr_row_dot"
    );
    let mut narrow = be.zeros(&[2, 2]).unwrap();
    assert_eq!(
        op_of(&be.mask_entries(&mut narrow, &ok).unwrap_err()),
        "mask_entries"
    );
    let mut x = be.zeros(&[2, 3]).unwrap();
    assert_eq!(
        op_of(&be.csr_axpy(&mut x, &bare, &alpha).unwrap_err()),
        "csr_axpy"
    );
    assert_eq!(
        op_of(&be.csr_row_dot(&x, &bare).unwrap_err()),
        "csr_row_dot"
    );
    // Nothing above touched x.
    assert_eq!(be.to_f32(&x).unwrap(), vec![0.0; 6]);
}

/// `topk_rows` refuses k = 0 and k > MAX_TOPK on both backends, naming the op.
pub fn topk_contract<B: ModelOps>(be: &B) {
    let x = be.zeros(&[2, 40]).unwrap();
    for k in [0, MAX_TOPK + 1, 64] {
        let e = be
            .topk_rows(&x, k)
            .expect_err(&format!("k = {k} must be refused"));
        assert_eq!(op_of(&e), "topk_rows", "k = {k}: {e}");
    }
    assert!(be.topk_rows(&x, MAX_TOPK).is_ok());
}

/// Random neighbour lists (sorted distinct columns, some songs without any) and histories
/// (distinct songs per row, some rows empty), as the scorer builds them.
struct NeighbourCase {
    songs: usize,
    rows: usize,
    nbr_ptr: Vec<u32>,
    nbr_cols: Vec<u32>,
    nbr_vals: Vec<f32>,
    hist_ptr: Vec<u32>,
    hist: Vec<u32>,
}

impl NeighbourCase {
    fn new(r: &mut impl Rng, songs: usize, rows: usize, k: usize, l: usize) -> Self {
        let (mut nbr_ptr, mut nbr_cols, mut nbr_vals) = (vec![0u32], Vec::new(), Vec::new());
        for s in 0..songs {
            if s % 5 != 3 {
                let mut cols: Vec<u32> = (0..k).map(|_| r.random_range(0..songs as u32)).collect();
                cols.sort_unstable();
                cols.dedup();
                nbr_vals.extend(cols.iter().map(|_| r.random_range(0.0f32..1.0)));
                nbr_cols.extend(cols);
            }
            nbr_ptr.push(nbr_cols.len() as u32);
        }
        let (mut hist_ptr, mut hist) = (vec![0u32], Vec::new());
        for row in 0..rows {
            if row % 4 != 2 {
                let mut h: Vec<u32> = (0..l).map(|_| r.random_range(0..songs as u32)).collect();
                h.sort_unstable();
                h.dedup();
                hist.extend(h);
            }
            hist_ptr.push(hist.len() as u32);
        }
        NeighbourCase {
            songs,
            rows,
            nbr_ptr,
            nbr_cols,
            nbr_vals,
            hist_ptr,
            hist,
        }
    }

    /// The dense neighbourhood scores `[rows, songs]` in f64.
    fn scores(&self) -> Vec<f64> {
        let mut n = vec![0.0f64; self.rows * self.songs];
        for row in 0..self.rows {
            for &h in &self.hist[self.hist_ptr[row] as usize..self.hist_ptr[row + 1] as usize] {
                let h = h as usize;
                for j in self.nbr_ptr[h] as usize..self.nbr_ptr[h + 1] as usize {
                    n[row * self.songs + self.nbr_cols[j] as usize] += self.nbr_vals[j] as f64;
                }
            }
        }
        n
    }
}

/// The neighbour tests' shapes: (songs, batch rows, list length drawn, history length drawn,
/// tile width). Lists longer than a workgroup (256) in the third; in the fourth, rows with more
/// history songs than a workgroup, which `axpy` stages a chunk at a time.
const NEIGHBOUR_CASES: [(usize, usize, usize, usize, usize); 4] = [
    (1, 1, 1, 1, 1),
    (97, 6, 12, 9, 40),
    (700, 9, 300, 20, 256),
    (900, 3, 5, 600, 512),
];

/// `neighbour_axpy` over every tile of the catalogue adds γ times the dense scores, and
/// `neighbour_row_dot` is its γ gradient (f64 oracle and central differences), on lists as
/// the scorer uses them: more neighbours than a workgroup has invocations, uneven tiles.
pub fn neighbour_tiles<B: ModelOps>(be: &B) {
    let mut r = rng(270);
    for (songs, rows, k, l, tile) in NEIGHBOUR_CASES {
        let c = NeighbourCase::new(&mut r, songs, rows, k, l);
        let nbrs = be
            .csr(songs, songs, &c.nbr_ptr, &c.nbr_cols, Some(&c.nbr_vals))
            .unwrap();
        let hist = be.csr(rows, songs, &c.hist_ptr, &c.hist, None).unwrap();
        let n = c.scores();
        let gamma = 0.75f32;
        let g = be.upload_f32(&[gamma], &[1]).unwrap();
        for lo in (0..songs).step_by(tile) {
            let cols = tile.min(songs - lo);
            let x0 = uniform(&mut r, rows * cols, -2.0, 2.0);
            let mut want = to_f64(&x0);
            for row in 0..rows {
                for j in 0..cols {
                    want[row * cols + j] += gamma as f64 * n[row * songs + lo + j];
                }
            }
            let mut x = be.upload_f32(&x0, &[rows, cols]).unwrap();
            be.neighbour_axpy(&mut x, lo, &hist, &nbrs, &g).unwrap();
            let what = format!("neighbour_axpy songs {songs}, tile {lo}+{cols}");
            assert_close(&what, &be.to_f32(&x).unwrap(), &want, Tol::sum(l));

            // d/dγ Σ w ⊙ (x + γN) = Σ_rows neighbour_row_dot(w).
            let w = uniform(&mut r, rows * cols, -1.0, 1.0);
            let mut dots = vec![0.0f64; rows];
            for row in 0..rows {
                for j in 0..cols {
                    dots[row] += w[row * cols + j] as f64 * n[row * songs + lo + j];
                }
            }
            let wt = be.upload_f32(&w, &[rows, cols]).unwrap();
            let got = be
                .to_f32(&be.neighbour_row_dot(&wt, lo, &hist, &nbrs).unwrap())
                .unwrap();
            let what = format!("neighbour_row_dot songs {songs}, tile {lo}+{cols}");
            assert_close(&what, &got, &dots, Tol::sum(l * k));
            let f = |gamma: f32| -> f64 {
                let mut x = be.upload_f32(&x0, &[rows, cols]).unwrap();
                let g = be.upload_f32(&[gamma], &[1]).unwrap();
                be.neighbour_axpy(&mut x, lo, &hist, &nbrs, &g).unwrap();
                let xs = be.to_f32(&x).unwrap();
                xs.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum()
            };
            let h = 1e-2f32;
            let fd = (f(gamma + h) - f(gamma - h)) / (2.0 * h as f64);
            let an: f64 = got.iter().map(|&v| v as f64).sum();
            assert!(
                (fd - an).abs() <= 1e-3 * (1.0 + an.abs()),
                "{what}: γ gradient {an}, finite difference {fd}"
            );
        }
    }
}

/// The neighbour ops' contract, the same on both backends: lists spanning the catalogue,
/// strictly increasing neighbour columns, a tile inside the catalogue, a histories block per
/// row, values and a scalar γ.
pub fn neighbour_contract<B: ModelOps>(be: &B) {
    let nbrs = be
        .csr(3, 3, &[0, 2, 2, 3], &[0, 2, 1], Some(&[0.5, 1.0, 2.0]))
        .unwrap();
    let hist = be.csr(2, 3, &[0, 1, 3], &[0, 1, 2], None).unwrap();
    let g = be.upload_f32(&[1.0], &[1]).unwrap();
    let mut x = be.zeros(&[2, 2]).unwrap();
    be.neighbour_axpy(&mut x, 1, &hist, &nbrs, &g).unwrap();
    // Row 0 (song 0): neighbour 2 → column 1; row 1 (songs 1, 2): song 2's neighbour 1 → column 0.
    assert_eq!(be.to_f32(&x).unwrap(), vec![0.0, 1.0, 2.0, 0.0]);

    let unsorted = be
        .csr(3, 3, &[0, 2, 2, 3], &[2, 0, 1], Some(&[0.5, 1.0, 2.0]))
        .unwrap();
    let repeated = be
        .csr(3, 3, &[0, 2, 2, 3], &[1, 1, 1], Some(&[0.5, 1.0, 2.0]))
        .unwrap();
    let bare = be.csr(3, 3, &[0, 2, 2, 3], &[0, 2, 1], None).unwrap();
    let narrow = be
        .csr(3, 2, &[0, 1, 1, 2], &[0, 1], Some(&[0.5, 1.0]))
        .unwrap();
    let other_rows = be.csr(3, 3, &[0, 1, 2, 3], &[0, 1, 2], None).unwrap();
    let two = be.upload_f32(&[1.0, 2.0], &[2]).unwrap();
    let cases: [(&str, usize, &_, &_, &_); 8] = [
        ("unsorted neighbour columns", 0, &hist, &unsorted, &g),
        ("a repeated neighbour column", 0, &hist, &repeated, &g),
        ("neighbours without values", 0, &hist, &bare, &g),
        (
            "neighbours not spanning the catalogue",
            0,
            &hist,
            &narrow,
            &g,
        ),
        ("a history block of other rows", 0, &other_rows, &nbrs, &g),
        ("a tile past the catalogue", 2, &hist, &nbrs, &g),
        ("a tile whose end overflows", usize::MAX, &hist, &nbrs, &g),
        ("a gamma of two values", 0, &hist, &nbrs, &two),
    ];
    for (what, lo, h, n, gamma) in cases {
        let mut x = be.zeros(&[2, 2]).unwrap();
        let e = be
            .neighbour_axpy(&mut x, lo, h, n, gamma)
            .expect_err(&format!("{what} must be refused"));
        assert_eq!(op_of(&e), "neighbour_axpy", "{what}: {e}");
        if what != "a gamma of two values" {
            let e = be
                .neighbour_row_dot(&x, lo, h, n)
                .expect_err(&format!("{what} must be refused"));
            assert_eq!(op_of(&e), "neighbour_row_dot", "{what}: {e}");
            let e = be
                .neighbour_entry_dot(&x, lo, h, n)
                .expect_err(&format!("{what} must be refused"));
            assert_eq!(op_of(&e), "neighbour_entry_dot", "{what}: {e}");
            let mut out = be.zeros(&[h.nnz(), 2]).unwrap();
            let e = be
                .neighbour_pair_grad(&mut out, &x, lo, h, n)
                .expect_err(&format!("{what} must be refused"));
            assert_eq!(op_of(&e), "neighbour_pair_grad", "{what}: {e}");
        }
    }
    // The pair gradient's rows: one per history entry, at least as long as the longest list.
    let x = be.zeros(&[2, 2]).unwrap();
    for (what, shape) in [
        ("rows other than the history entries", [2usize, 2usize]),
        ("rows shorter than the longest list", [3, 1]),
    ] {
        let mut out = be.zeros(&shape).unwrap();
        let e = be
            .neighbour_pair_grad(&mut out, &x, 1, &hist, &nbrs)
            .expect_err(&format!("{what} must be refused"));
        assert_eq!(op_of(&e), "neighbour_pair_grad", "{what}: {e}");
    }
    // Values on the history weigh its entries: row 1's song 2 at 3 → column 0 gets 3 · 2.
    let weighted = be
        .csr(2, 3, &[0, 1, 3], &[0, 1, 2], Some(&[1.0, 5.0, 3.0]))
        .unwrap();
    let mut x = be.zeros(&[2, 2]).unwrap();
    be.neighbour_axpy(&mut x, 1, &weighted, &nbrs, &g).unwrap();
    assert_eq!(be.to_f32(&x).unwrap(), vec![0.0, 1.0, 6.0, 0.0]);
    // Per entry, without its value: song 0 (row 0) sees g[0, 1] · 1, song 1 nothing, song 2
    // (row 1) g[1, 0] · 2.
    let gt = be.upload_f32(&[10.0, 20.0, 30.0, 40.0], &[2, 2]).unwrap();
    let d = be.neighbour_entry_dot(&gt, 1, &weighted, &nbrs).unwrap();
    assert_eq!(be.to_f32(&d).unwrap(), vec![20.0, 0.0, 60.0]);
    // Per entry and list position, with the entry's value: song 0's neighbour 2 is its second
    // (1 · 1 · g[0, 1]), song 2's neighbour 1 its first (3 · 2 · g[1, 0]); added to what `out`
    // held, the third column (past every list) untouched.
    let mut out = be.upload_f32(&[1.0; 9], &[3, 3]).unwrap();
    be.neighbour_pair_grad(&mut out, &gt, 1, &weighted, &nbrs)
        .unwrap();
    assert_eq!(
        be.to_f32(&out).unwrap(),
        vec![1.0, 21.0, 1.0, 1.0, 1.0, 1.0, 181.0, 1.0, 1.0]
    );
}

/// The history entries' values (per-song weights of the term): `neighbour_axpy` adds
/// `γ Σ_e v_e N_e`, `neighbour_row_dot` weighs by them, and `neighbour_entry_dot` is the
/// gradient with respect to each `v_e` (over γ): f64 oracle and central differences, on the
/// same shapes as [`neighbour_tiles`].
pub fn neighbour_weighted_tiles<B: ModelOps>(be: &B) {
    let mut r = rng(271);
    for (songs, rows, k, l, tile) in NEIGHBOUR_CASES {
        let c = NeighbourCase::new(&mut r, songs, rows, k, l);
        let nbrs = be
            .csr(songs, songs, &c.nbr_ptr, &c.nbr_cols, Some(&c.nbr_vals))
            .unwrap();
        let v = uniform(&mut r, c.hist.len(), 0.2, 2.0);
        let csr_with = |v: &[f32]| be.csr(rows, songs, &c.hist_ptr, &c.hist, Some(v)).unwrap();
        let hist = csr_with(&v);
        // Per entry, its song's dense list `[songs]`.
        let list = |e: usize| -> Vec<f64> {
            let h = c.hist[e] as usize;
            let mut n = vec![0.0f64; songs];
            for j in c.nbr_ptr[h] as usize..c.nbr_ptr[h + 1] as usize {
                n[c.nbr_cols[j] as usize] += c.nbr_vals[j] as f64;
            }
            n
        };
        let row_of = |e: usize| c.hist_ptr.iter().rposition(|&p| p as usize <= e).unwrap();
        let gamma = 0.75f32;
        let g = be.upload_f32(&[gamma], &[1]).unwrap();
        for lo in (0..songs).step_by(tile) {
            let cols = tile.min(songs - lo);
            let x0 = uniform(&mut r, rows * cols, -2.0, 2.0);
            let w = uniform(&mut r, rows * cols, -1.0, 1.0);
            let mut want = to_f64(&x0);
            let mut dots = vec![0.0f64; rows];
            let mut edots = vec![0.0f64; c.hist.len()];
            for (e, ed) in edots.iter_mut().enumerate() {
                let (row, n) = (row_of(e), list(e));
                for j in 0..cols {
                    want[row * cols + j] += gamma as f64 * v[e] as f64 * n[lo + j];
                    *ed += w[row * cols + j] as f64 * n[lo + j];
                }
                dots[row] += v[e] as f64 * *ed;
            }
            let mut x = be.upload_f32(&x0, &[rows, cols]).unwrap();
            be.neighbour_axpy(&mut x, lo, &hist, &nbrs, &g).unwrap();
            let what = format!("weighted neighbour_axpy songs {songs}, tile {lo}+{cols}");
            assert_close(&what, &be.to_f32(&x).unwrap(), &want, Tol::sum(l));
            let wt = be.upload_f32(&w, &[rows, cols]).unwrap();
            let got = be
                .to_f32(&be.neighbour_row_dot(&wt, lo, &hist, &nbrs).unwrap())
                .unwrap();
            let what = format!("weighted neighbour_row_dot songs {songs}, tile {lo}+{cols}");
            assert_close(&what, &got, &dots, Tol::sum(l * k));
            let got = be
                .to_f32(&be.neighbour_entry_dot(&wt, lo, &hist, &nbrs).unwrap())
                .unwrap();
            let what = format!("neighbour_entry_dot songs {songs}, tile {lo}+{cols}");
            assert_close(&what, &got, &edots, Tol::sum(k));
            // d/dv_e Σ w ⊙ (x + γ Σ v N) = γ · entry_dot[e], by central differences.
            let f = |v: &[f32]| -> f64 {
                let mut x = be.upload_f32(&x0, &[rows, cols]).unwrap();
                be.neighbour_axpy(&mut x, lo, &csr_with(v), &nbrs, &g)
                    .unwrap();
                let xs = be.to_f32(&x).unwrap();
                xs.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum()
            };
            let h = 1e-2f32;
            for e in (0..v.len()).step_by(v.len().div_ceil(5).max(1)) {
                let (mut vp, mut vm) = (v.clone(), v.clone());
                vp[e] += h;
                vm[e] -= h;
                let fd = (f(&vp) - f(&vm)) / (2.0 * h as f64);
                let an = gamma as f64 * got[e] as f64;
                assert!(
                    (fd - an).abs() <= 1e-3 * (1.0 + an.abs()),
                    "{what}: entry {e} gradient {an}, finite difference {fd}"
                );
            }
        }
    }
}

/// `neighbour_pair_grad` is, over γ, the gradient of `neighbour_axpy` with respect to the log of
/// each list value, per history entry and list position: f64 oracle (added to what `out` held, the
/// padding past the longest list untouched) and, summed over the entries of a song, central
/// differences of the term with that list value scaled by `exp(±h)`; on the shapes of
/// [`neighbour_tiles`], with values on the history.
pub fn neighbour_pair_tiles<B: ModelOps>(be: &B) {
    let mut r = rng(272);
    for (songs, rows, k, l, tile) in NEIGHBOUR_CASES {
        let c = NeighbourCase::new(&mut r, songs, rows, k, l);
        let nbrs_with = |vals: &[f32]| {
            be.csr(songs, songs, &c.nbr_ptr, &c.nbr_cols, Some(vals))
                .unwrap()
        };
        let nbrs = nbrs_with(&c.nbr_vals);
        let keep = nbrs.max_row() + 2;
        let v = uniform(&mut r, c.hist.len(), 0.2, 2.0);
        let hist = be.csr(rows, songs, &c.hist_ptr, &c.hist, Some(&v)).unwrap();
        let row_of = |e: usize| c.hist_ptr.iter().rposition(|&p| p as usize <= e).unwrap();
        let gamma = 0.75f32;
        let g = be.upload_f32(&[gamma], &[1]).unwrap();
        for lo in (0..songs).step_by(tile) {
            let cols = tile.min(songs - lo);
            let x0 = uniform(&mut r, rows * cols, -2.0, 2.0);
            let w = uniform(&mut r, rows * cols, -1.0, 1.0);
            let out0 = uniform(&mut r, c.hist.len() * keep, -1.0, 1.0);
            let mut want = to_f64(&out0);
            for (e, &h) in c.hist.iter().enumerate() {
                let (row, a) = (row_of(e), c.nbr_ptr[h as usize] as usize);
                for j in a..c.nbr_ptr[h as usize + 1] as usize {
                    let s = c.nbr_cols[j] as usize;
                    if s >= lo && s < lo + cols {
                        want[e * keep + j - a] +=
                            v[e] as f64 * c.nbr_vals[j] as f64 * w[row * cols + s - lo] as f64;
                    }
                }
            }
            let wt = be.upload_f32(&w, &[rows, cols]).unwrap();
            let mut out = be.upload_f32(&out0, &[c.hist.len(), keep]).unwrap();
            be.neighbour_pair_grad(&mut out, &wt, lo, &hist, &nbrs)
                .unwrap();
            let what = format!("neighbour_pair_grad songs {songs}, tile {lo}+{cols}");
            assert_close(&what, &be.to_f32(&out).unwrap(), &want, Tol::sum(1));
            // Alone (from zeros), summed per song: d/d log w_j of Σ w ⊙ (x + γ Σ v N).
            let mut out = be.zeros(&[c.hist.len(), keep]).unwrap();
            be.neighbour_pair_grad(&mut out, &wt, lo, &hist, &nbrs)
                .unwrap();
            let got = be.to_f32(&out).unwrap();
            let f = |vals: &[f32]| -> f64 {
                let mut x = be.upload_f32(&x0, &[rows, cols]).unwrap();
                be.neighbour_axpy(&mut x, lo, &hist, &nbrs_with(vals), &g)
                    .unwrap();
                let xs = be.to_f32(&x).unwrap();
                xs.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum()
            };
            let h = 1e-2f32;
            let entries = c.hist.len();
            for e in (0..entries).step_by(entries.div_ceil(4).max(1)) {
                let song = c.hist[e] as usize;
                let a = c.nbr_ptr[song] as usize;
                let n = c.nbr_ptr[song + 1] as usize - a;
                for pos in (0..n).step_by(n.div_ceil(3).max(1)) {
                    let (mut vp, mut vm) = (c.nbr_vals.clone(), c.nbr_vals.clone());
                    vp[a + pos] *= h.exp();
                    vm[a + pos] *= (-h).exp();
                    let fd = (f(&vp) - f(&vm)) / (2.0 * h as f64);
                    let an: f64 = gamma as f64
                        * (0..entries)
                            .filter(|&q| c.hist[q] as usize == song)
                            .map(|q| got[q * keep + pos] as f64)
                            .sum::<f64>();
                    assert!(
                        (fd - an).abs() <= 1e-3 * (1.0 + an.abs()),
                        "{what}: song {song} position {pos}: gradient {an}, finite difference {fd}"
                    );
                }
            }
        }
    }
}

/// `neighbour_pair_scale` weighs the lists of a batch's distinct history songs by their pairs'
/// `exp(log-weight)` and leaves every other list at 0: f64 oracle; the same values, to the
/// bit, as weighing every list with the elementwise ops it replaces (gather, `exp`, product),
/// so the term of a tile built from either is the same; and its contract.
pub fn neighbour_pair_scale_lists<B: ModelOps>(be: &B) {
    use ainrnn::backend::{BinaryOp, UnaryOp};
    let mut r = rng(273);
    for (songs, rows, k, l) in [(1, 1, 1, 1), (97, 6, 12, 9), (700, 9, 300, 20)] {
        let c = NeighbourCase::new(&mut r, songs, rows, k, l);
        let nbrs = be
            .csr(songs, songs, &c.nbr_ptr, &c.nbr_cols, Some(&c.nbr_vals))
            .unwrap();
        let keep = nbrs.max_row() + 2;
        let lw = uniform(&mut r, songs * keep, -1.5, 1.5);
        let lwt = be.upload_f32(&lw, &[songs, keep]).unwrap();
        let what = format!("neighbour_pair_scale songs {songs}, rows {rows}");
        // The history's songs repeat across rows: each list is weighed once.
        let plan = be.index_plan(&c.hist, songs).unwrap();
        let got = be
            .to_f32(&be.neighbour_pair_scale(&nbrs, &lwt, &plan).unwrap())
            .unwrap();
        let mut want = vec![0.0f64; c.nbr_cols.len()];
        let mut listed = vec![false; c.nbr_cols.len()];
        for &h in &c.hist {
            let (a, e) = (
                c.nbr_ptr[h as usize] as usize,
                c.nbr_ptr[h as usize + 1] as usize,
            );
            for j in a..e {
                want[j] = c.nbr_vals[j] as f64 * (lw[h as usize * keep + j - a] as f64).exp();
                listed[j] = true;
            }
        }
        assert_close(&what, &got, &want, Tol::TRANSCENDENTAL);
        // Every list weighed by the elementwise ops: the same values on the history's lists.
        let slots: Vec<u32> = (0..songs)
            .flat_map(|s| {
                let n = (c.nbr_ptr[s + 1] - c.nbr_ptr[s]) as usize;
                (0..n).map(move |q| (s * keep + q) as u32)
            })
            .collect();
        if slots.is_empty() {
            continue;
        }
        let all = be.upload_f32(&lw, &[songs * keep, 1]).unwrap();
        let gathered = be
            .gather_rows(&all, &be.index_plan(&slots, songs * keep).unwrap())
            .unwrap();
        let g1 = be.to_f32(&gathered).unwrap();
        let scale = be.unary(UnaryOp::Exp, &be.upload_f32(&g1, &[slots.len()]).unwrap());
        let full = be
            .binary(BinaryOp::Mul, nbrs.vals().unwrap(), &scale.unwrap())
            .unwrap();
        let full = be.to_f32(&full).unwrap();
        for j in (0..full.len()).filter(|&j| listed[j]) {
            assert_eq!(got[j].to_bits(), full[j].to_bits(), "{what}: entry {j}");
        }
        // So a tile's term over the history is the same from either set of values.
        let hist = be.csr(rows, songs, &c.hist_ptr, &c.hist, None).unwrap();
        let gamma = be.upload_f32(&[0.75], &[1]).unwrap();
        let term = |vals: &[f32]| {
            let lists = be
                .csr(songs, songs, &c.nbr_ptr, &c.nbr_cols, Some(vals))
                .unwrap();
            let mut x = be.zeros(&[rows, songs]).unwrap();
            be.neighbour_axpy(&mut x, 0, &hist, &lists, &gamma).unwrap();
            be.to_f32(&x).unwrap()
        };
        assert_eq!(term(&got), term(&full), "{what}: the term");
    }
    // No songs: every list at 0.
    let c = NeighbourCase::new(&mut r, 30, 2, 5, 3);
    let nbrs = be
        .csr(30, 30, &c.nbr_ptr, &c.nbr_cols, Some(&c.nbr_vals))
        .unwrap();
    let keep = nbrs.max_row();
    let lw = be.upload_f32(&vec![0.5; 30 * keep], &[30, keep]).unwrap();
    let none = be.index_plan(&[], 30).unwrap();
    let out = be.neighbour_pair_scale(&nbrs, &lw, &none).unwrap();
    assert_eq!(be.to_f32(&out).unwrap(), vec![0.0; c.nbr_cols.len()]);
    // The contract: log-weights [songs, keep >= the longest list], a plan over the songs, lists
    // with values.
    let plan = be.index_plan(&[1, 4, 4], 30).unwrap();
    let short = be
        .upload_f32(&vec![0.0; 30 * (keep - 1)], &[30, keep - 1])
        .unwrap();
    let few = be.upload_f32(&vec![0.0; 29 * keep], &[29, keep]).unwrap();
    let other = be.index_plan(&[1, 4], 31).unwrap();
    let bare = be.csr(30, 30, &c.nbr_ptr, &c.nbr_cols, None).unwrap();
    for (what, n, w, p) in [
        (
            "log-weights shorter than the longest list",
            &nbrs,
            &short,
            &plan,
        ),
        ("log-weights for fewer songs", &nbrs, &few, &plan),
        ("a plan over another table", &nbrs, &lw, &other),
        ("lists without values", &bare, &lw, &plan),
    ] {
        let e = be
            .neighbour_pair_scale(n, w, p)
            .expect_err(&format!("{what} must be refused"));
        assert_eq!(op_of(&e), "neighbour_pair_scale", "{what}: {e}");
    }
}

/// The dropout hash, written out again from its definition (`shaders/dropout.wgsl`'s header):
/// the oracle both backends must match bit for bit.
fn dropout_oracle(seed: u32, stream: u32, i: u32) -> f32 {
    fn mix(mut x: u32) -> u32 {
        x ^= x >> 16;
        x = x.wrapping_mul(0x7feb352d);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846ca68b);
        x ^= x >> 16;
        x
    }
    let key = mix(seed ^ mix(stream ^ 0x9e3779b9));
    ((mix(key ^ mix(i)) >> 8) as f64 / 16_777_216.0) as f32
}

pub fn dropout_masks<B: ModelOps>(be: &B) {
    for (shape, keep, seed, stream) in [
        (vec![1usize, 1usize], 0.5f32, 0u32, 0u32),
        (vec![3, 5], 0.8, 7, 1),
        (vec![64, 300], 0.8, 0xdead_beef, 4),
        (vec![64, 300], 0.5, 0xdead_beef, 5),
        (vec![17, 257], 0.01, u32::MAX, u32::MAX),
        (vec![5, 9], 1.0, 3, 2),
    ] {
        let got = be
            .to_f32(&be.dropout_mask(&shape, keep, seed, stream).unwrap())
            .unwrap();
        let n: usize = shape.iter().product();
        let scale = 1.0 / keep;
        let want: Vec<f32> = (0..n as u32)
            .map(|i| {
                if dropout_oracle(seed, stream, i) < keep {
                    scale
                } else {
                    0.0
                }
            })
            .collect();
        // Exact: both backends compute the same integers, so the same mask.
        assert_eq!(got, want, "dropout mask {shape:?} keep {keep} seed {seed}");
        let kept = got.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        if n >= 1000 {
            assert!(
                (kept - keep as f64).abs() < 0.02,
                "kept {kept} of the entries for keep {keep}"
            );
        }
    }
    // Streams of one seed draw different masks.
    let a = be
        .to_f32(&be.dropout_mask(&[8, 64], 0.5, 1, 0).unwrap())
        .unwrap();
    let b = be
        .to_f32(&be.dropout_mask(&[8, 64], 0.5, 1, 1).unwrap())
        .unwrap();
    assert_ne!(a, b);
    for keep in [0.0, -0.5, 1.5, f32::NAN] {
        let e = be.dropout_mask(&[2, 2], keep, 1, 0).unwrap_err();
        assert!(
            matches!(
                e,
                OpError::Invalid {
                    op: "dropout_mask",
                    ..
                }
            ),
            "keep {keep}: {e}"
        );
    }
    // The fused time-shared dropout: the oracle's mask entry (b, j) times x[b, t, j], exactly.
    let mut r = rng(215);
    for (b, l, h, keep, seed, stream) in [
        (1usize, 1usize, 1usize, 0.5f32, 0u32, 0u32),
        (3, 5, 7, 0.8, 7, 1),
        (64, 25, 32, 0.8, 0xdead_beef, 4),
        (9, 3, 300, 0.3, 11, 2),
    ] {
        let xv = uniform(&mut r, b * l * h, -2.0, 2.0);
        let x = be.upload_f32(&xv, &[b, l, h]).unwrap();
        let got = be
            .to_f32(&be.dropout_time(&x, keep, seed, stream).unwrap())
            .unwrap();
        let want: Vec<f32> = (0..b * l * h)
            .map(|i| {
                let e = ((i / (l * h)) * h + i % h) as u32;
                let m = if dropout_oracle(seed, stream, e) < keep {
                    1.0 / keep
                } else {
                    0.0
                };
                xv[i] * m
            })
            .collect();
        assert_eq!(got, want, "dropout_time {b}x{l}x{h} keep {keep}");
        let mask = be.dropout_mask(&[b, h], keep, seed, stream).unwrap();
        let via_mask = be.to_f32(&be.time_mask_mul(&x, &mask).unwrap()).unwrap();
        assert_eq!(got, via_mask, "dropout_time = time_mask_mul with the mask");
    }
    let x2 = be.zeros(&[4, 3]).unwrap();
    assert!(
        be.dropout_time(&x2, 0.5, 1, 0).is_err(),
        "x must be [B, L, H]"
    );
    let x3 = be.zeros(&[2, 2, 2]).unwrap();
    assert!(be.dropout_time(&x3, 0.0, 1, 0).is_err(), "keep in (0, 1]");
}

/// Sums of squares of gradients on either side of the one-workgroup limit, added into one
/// accumulator, and AdamW with its clamp fused in.
pub fn optimizer_fused<B: ModelOps>(be: &B) {
    let mut r = rng(231);
    let mut acc = be.zeros(&[1]).unwrap();
    let mut ss = 0.0f64;
    for n in [1usize, 255, 256, 257, 4099, 65_536, 65_537, 200_000] {
        let g = uniform(&mut r, n, -1.0, 1.0);
        be.sum_squares_into(&mut acc, &be.upload_f32(&g, &[n]).unwrap())
            .unwrap();
        ss += g.iter().map(|&x| x as f64 * x as f64).sum::<f64>();
        assert_close(
            &format!("sum of squares up to a {n}-long gradient"),
            &be.to_f32(&acc).unwrap(),
            &[ss],
            Tol::sum(n),
        );
    }
    // Many gradients at once (the GPU folds seven small ones per dispatch, long ones apart),
    // added to what the accumulator holds.
    let lens = [
        3usize,
        1,
        0,
        300,
        64 * 64,
        65_536,
        70_000,
        5,
        257,
        1000,
        2,
        9,
        77,
        4096,
        1,
    ];
    let gs: Vec<Vec<f32>> = lens
        .iter()
        .map(|&n| uniform(&mut r, n, -2.0, 2.0))
        .collect();
    let up: Vec<_> = gs
        .iter()
        .map(|g| be.upload_f32(g, &[g.len()]).unwrap())
        .collect();
    let refs: Vec<_> = up.iter().collect();
    be.sum_squares_many_into(&mut acc, &refs).unwrap();
    ss += gs
        .iter()
        .flatten()
        .map(|&x| x as f64 * x as f64)
        .sum::<f64>();
    assert_close(
        "sum of squares of many gradients",
        &be.to_f32(&acc).unwrap(),
        &[ss],
        Tol::sum(lens.iter().sum()),
    );
    assert!(be
        .sum_squares_many_into(&mut be.zeros(&[2]).unwrap(), &refs)
        .is_err());

    let n = 1000;
    let (lo, hi) = (-0.3f32, 0.2f32);
    let p0 = uniform(&mut r, n, -1.0, 1.0);
    let mut p = be.upload_f32(&p0, &[n]).unwrap();
    let mut m = be.zeros(&[n]).unwrap();
    let mut v = be.zeros(&[n]).unwrap();
    let (mut pe, mut me, mut ve) = (to_f64(&p0), vec![0.0f64; n], vec![0.0f64; n]);
    for t in 1..=2u32 {
        let g = uniform(&mut r, n, -1.0, 1.0);
        let s = AdamStep {
            lr: 0.05,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            t,
            clamp: Some((lo, hi)),
        };
        be.adam_step(
            &mut p,
            &be.upload_f32(&g, &[n]).unwrap(),
            &mut m,
            &mut v,
            &be.upload_f32(&[1.0], &[1]).unwrap(),
            &s,
        )
        .unwrap();
        for i in 0..n {
            let gi = g[i] as f64;
            me[i] = 0.9 * me[i] + 0.1 * gi;
            ve[i] = 0.999 * ve[i] + 0.001 * gi * gi;
            let (mh, vh) = (
                me[i] / (1.0 - 0.9f64.powi(t as i32)),
                ve[i] / (1.0 - 0.999f64.powi(t as i32)),
            );
            pe[i] = (pe[i] - 0.05 * mh / (vh.sqrt() + 1e-8)).clamp(lo as f64, hi as f64);
        }
    }
    let got = be.to_f32(&p).unwrap();
    assert!(
        got.iter().all(|&x| (lo..=hi).contains(&x)),
        "clamped into [lo, hi]"
    );
    assert_close(
        "adam with clamp after 2 steps",
        &got,
        &pe,
        Tol {
            rel: 1e-4,
            abs: 1e-6,
        },
    );
}

/// One AdamW step over many parameters (`adam_many`), on packed tensors as the model keeps
/// them (one dispatch on the GPU) and on separate ones (one per parameter), against the f64
/// oracle: per-parameter decay and clamp, a parameter left out untouched, gradients zeroed.
/// One AdamW step in f64 (learning rate 0.01, β 0.9 / 0.999, ε 1e-8) on values, first and
/// second moments, with the scaled gradient `g`, step `t`, weight decay and clamp.
fn adam_oracle(
    (pe, me, ve): (&mut [f64], &mut [f64], &mut [f64]),
    g: &[f64],
    t: u32,
    decay: f32,
    clamp: Option<(f32, f32)>,
) {
    for j in 0..g.len() {
        me[j] = 0.9 * me[j] + 0.1 * g[j];
        ve[j] = 0.999 * ve[j] + 0.001 * g[j] * g[j];
        let (mh, vh) = (
            me[j] / (1.0 - 0.9f64.powi(t as i32)),
            ve[j] / (1.0 - 0.999f64.powi(t as i32)),
        );
        let w = pe[j] - 0.01 * (mh / (vh.sqrt() + 1e-8) + decay as f64 * pe[j]);
        pe[j] = clamp.map_or(w, |(lo, hi)| w.clamp(lo as f64, hi as f64));
    }
}

pub fn optimizer_many<B: ModelOps>(be: &B) {
    let mut r = rng(232);
    let shapes: Vec<Vec<usize>> = vec![
        vec![3],
        vec![300],
        vec![1],
        vec![256],
        vec![257, 2],
        vec![40, 25],
        vec![2000, 33],
    ];
    // (weight decay, clamp) of each; parameter 3 is left out of the step.
    let settings = [
        (0.0f32, None),
        (0.1, None),
        (0.0, Some((-0.2f32, 0.3f32))),
        (0.1, None),
        (0.05, Some((-0.5, 0.5))),
        (0.0, None),
        (0.1, None),
    ];
    let left_out = 3;
    for packed in [true, false] {
        let alloc = || -> Vec<_> {
            if packed {
                be.zeros_packed(&shapes).unwrap().parts
            } else {
                shapes.iter().map(|s| be.zeros(s).unwrap()).collect()
            }
        };
        let (mut ps, mut gs, mut ms, mut vs) = (alloc(), alloc(), alloc(), alloc());
        let mut oracle = Vec::new();
        for (i, p) in ps.iter_mut().enumerate() {
            let p0 = uniform(&mut r, p.len(), -1.0, 1.0);
            be.write_f32(p, &p0).unwrap();
            oracle.push((to_f64(&p0), vec![0.0f64; p0.len()], vec![0.0f64; p0.len()]));
            if i == left_out {
                be.write_f32(&mut gs[i], &vec![1.0; p0.len()]).unwrap();
            }
        }
        let scale = 0.7f32;
        for t in 1..=2u32 {
            let mut slots = Vec::new();
            for (i, (((p, g), m), v)) in ps
                .iter_mut()
                .zip(gs.iter_mut())
                .zip(ms.iter_mut())
                .zip(vs.iter_mut())
                .enumerate()
            {
                if i == left_out {
                    continue;
                }
                let gv = uniform(&mut r, p.len(), -1.0, 1.0);
                be.write_f32(g, &gv).unwrap();
                let (decay, clamp) = settings[i];
                let (pe, me, ve) = &mut oracle[i];
                let g64: Vec<f64> = gv.iter().map(|&x| x as f64 * scale as f64).collect();
                adam_oracle((pe.as_mut_slice(), me, ve), &g64, t, decay, clamp);
                slots.push(AdamSlot {
                    p,
                    g,
                    m,
                    v,
                    step: AdamStep {
                        lr: 0.01,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        weight_decay: decay,
                        t,
                        clamp,
                    },
                });
            }
            let sc = be.upload_f32(&[scale], &[1]).unwrap();
            be.adam_many(&mut slots, &sc).unwrap();
        }
        for (i, (pe, me, _)) in oracle.iter().enumerate() {
            let what = format!("adam_many (packed: {packed}) parameter {i} after 2 steps");
            let tol = Tol {
                rel: 1e-4,
                abs: 1e-6,
            };
            assert_close(&what, &be.to_f32(&ps[i]).unwrap(), pe, tol);
            assert_close(&what, &be.to_f32(&ms[i]).unwrap(), me, tol);
            let g = be.to_f32(&gs[i]).unwrap();
            if i == left_out {
                assert!(g.iter().all(|&x| x == 1.0), "{what}: its gradient kept");
            } else {
                assert!(g.iter().all(|&x| x == 0.0), "{what}: gradient zeroed");
            }
        }
    }
    // The packed whole reads every range (zeros between them).
    let pk = be.zeros_packed(&shapes[..3]).unwrap();
    if let Some(whole) = &pk.whole {
        let n: usize = shapes[..3]
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum();
        assert!(whole.len() >= n);
        assert!(be.to_f32(whole).unwrap().iter().all(|&x| x == 0.0));
    }
    // A step whose slots differ in length from their gradient is refused.
    let mut p = be.zeros(&[4]).unwrap();
    let (mut g, mut m, mut v) = (
        be.zeros(&[3]).unwrap(),
        be.zeros(&[4]).unwrap(),
        be.zeros(&[4]).unwrap(),
    );
    let step = AdamStep {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        t: 1,
        clamp: None,
    };
    let mut slots = [AdamSlot {
        p: &mut p,
        g: &mut g,
        m: &mut m,
        v: &mut v,
        step,
    }];
    let sc = be.upload_f32(&[1.0], &[1]).unwrap();
    assert!(be.adam_many(&mut slots, &sc).is_err());
}

/// A table's AdamW step with its gradient kept unformed (`table_rows`, `adam_table`): against
/// an f64 oracle that forms the gradient (gᵀ·u plus the routed rows) and steps Adam on it. Tiles
/// of 64 rows and columns: N and D past and below one tile, K past one slice of 16, rows named
/// by several positions, by none (no plan) and every row named.
pub fn table_fused_step<B: ModelOps>(be: &B) {
    let mut r = rng(241);
    // (K, N, D, positions routed, clamp)
    type Case = (usize, usize, usize, Option<usize>, Option<(f32, f32)>);
    let cases: [Case; 6] = [
        (3, 70, 5, Some(9), None),
        (32, 200, 130, Some(40), None),
        (1, 1, 1, Some(1), None),
        (17, 64, 64, None, Some((-0.3, 0.25))),
        (5, 9, 3, Some(30), None),
        (2, 130, 65, Some(0), None),
    ];
    for (k, n, d, positions, clamp) in cases {
        let what = format!("table step K={k} N={n} D={d} positions {positions:?}");
        let gv = uniform(&mut r, k * n, -1.0, 1.0);
        let uv = uniform(&mut r, k * d, -1.0, 1.0);
        let (g, u) = (
            be.upload_f32(&gv, &[k, n]).unwrap(),
            be.upload_f32(&uv, &[k, d]).unwrap(),
        );
        let routed = positions.map(|np| {
            // Every row when there are more positions than rows (the 5 x 9 case), else a few.
            let idx: Vec<u32> = (0..np).map(|_| r.random_range(0..n as u32)).collect();
            let src = uniform(&mut r, np * d, -1.0, 1.0);
            (idx, src)
        });
        let mut grad = vec![0.0f64; n * d];
        let mut y = vec![0.0f64; n * d];
        for kk in 0..k {
            for row in 0..n {
                for c in 0..d {
                    y[row * d + c] += gv[kk * n + row] as f64 * uv[kk * d + c] as f64;
                }
            }
        }
        grad.copy_from_slice(&y);
        let plan_src = routed.as_ref().map(|(idx, src)| {
            for (p, &row) in idx.iter().enumerate() {
                for c in 0..d {
                    grad[row as usize * d + c] += src[p * d + c] as f64;
                }
            }
            (
                be.upload_f32(src, &[idx.len(), d]).unwrap(),
                be.index_plan(idx, n).unwrap(),
            )
        });
        let pg = ProductGrad {
            g: &g,
            u: &u,
            rows: plan_src.as_ref().map(|(s, p)| (s, p)),
        };
        let (x, corr) = be.table_rows(&pg).unwrap();
        let mut touched: Vec<usize> = routed
            .as_ref()
            .map(|(idx, _)| idx.iter().map(|&i| i as usize).collect())
            .unwrap_or_default();
        touched.sort_unstable();
        touched.dedup();
        assert_eq!(x.shape(), &[touched.len(), d], "{what}: rows' shape");
        let want_x: Vec<f64> = touched
            .iter()
            .flat_map(|&row| grad[row * d..(row + 1) * d].to_vec())
            .collect();
        let tol = Tol {
            rel: 1e-5,
            abs: 1e-5,
        };
        assert_close(
            &format!("{what}: rows"),
            &be.to_f32(&x).unwrap(),
            &want_x,
            tol,
        );
        let want_corr: Vec<f64> = touched
            .iter()
            .map(|&row| {
                (0..d)
                    .map(|c| grad[row * d + c].powi(2) - y[row * d + c].powi(2))
                    .sum()
            })
            .collect();
        assert_close(
            &format!("{what}: norm corrections"),
            &be.to_f32(&corr).unwrap(),
            &want_corr,
            Tol {
                rel: 1e-4,
                abs: 1e-4,
            },
        );
        // Two AdamW steps on the same gradient, scaled by 0.7, with weight decay.
        let p0 = uniform(&mut r, n * d, -0.5, 0.5);
        let mut p = be.upload_f32(&p0, &[n, d]).unwrap();
        let mut m = be.zeros(&[n, d]).unwrap();
        let mut v = be.zeros(&[n, d]).unwrap();
        let (mut pe, mut me, mut ve) = (to_f64(&p0), vec![0.0f64; n * d], vec![0.0f64; n * d]);
        let scale = 0.7f32;
        let sc = be.upload_f32(&[scale], &[1]).unwrap();
        for t in 1..=2u32 {
            let step = AdamStep {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.1,
                t,
                clamp,
            };
            be.adam_table(&mut p, &mut m, &mut v, &pg, &x, &sc, &step)
                .unwrap();
            let g64: Vec<f64> = grad.iter().map(|&x| x * scale as f64).collect();
            adam_oracle((&mut pe, &mut me, &mut ve), &g64, t, 0.1, clamp);
        }
        let tol = Tol {
            rel: 1e-4,
            abs: 1e-6,
        };
        assert_close(
            &format!("{what}: values"),
            &be.to_f32(&p).unwrap(),
            &pe,
            tol,
        );
        assert_close(
            &format!("{what}: first moments"),
            &be.to_f32(&m).unwrap(),
            &me,
            tol,
        );
        assert_close(
            &format!("{what}: second moments"),
            &be.to_f32(&v).unwrap(),
            &ve,
            tol,
        );
    }
    // Shapes that do not fit are errors, not wrong numbers.
    let g = be.zeros(&[2, 5]).unwrap();
    let u = be.zeros(&[3, 4]).unwrap();
    let pg = ProductGrad {
        g: &g,
        u: &u,
        rows: None,
    };
    assert!(be.table_rows(&pg).is_err(), "K of g and u differ");
    let u = be.zeros(&[2, 4]).unwrap();
    let pg = ProductGrad {
        g: &g,
        u: &u,
        rows: None,
    };
    let (mut p, mut m, mut v) = (
        be.zeros(&[4, 5]).unwrap(),
        be.zeros(&[4, 5]).unwrap(),
        be.zeros(&[4, 5]).unwrap(),
    );
    let (x, _) = be.table_rows(&pg).unwrap();
    let sc = be.upload_f32(&[1.0], &[1]).unwrap();
    let step = AdamStep {
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        t: 1,
        clamp: None,
    };
    let e = be
        .adam_table(&mut p, &mut m, &mut v, &pg, &x, &sc, &step)
        .unwrap_err();
    assert!(e.to_string().contains("adam_table"), "{e}");
    // Shapes that fit with settings that do not (t = 0 divides by 1 − β⁰ = 0; unordered clamp
    // bounds) are refused too.
    let (mut p, mut m, mut v) = (
        be.zeros(&[5, 4]).unwrap(),
        be.zeros(&[5, 4]).unwrap(),
        be.zeros(&[5, 4]).unwrap(),
    );
    be.adam_table(&mut p, &mut m, &mut v, &pg, &x, &sc, &step)
        .unwrap();
    for bad in [
        AdamStep { t: 0, ..step },
        AdamStep {
            clamp: Some((1.0, -1.0)),
            ..step
        },
    ] {
        let e = be
            .adam_table(&mut p, &mut m, &mut v, &pg, &x, &sc, &bad)
            .unwrap_err();
        assert_eq!(op_of(&e), "adam_table", "{bad:?}: {e}");
    }
}
