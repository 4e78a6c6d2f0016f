//! CPU reference of the model ops (`ModelOps`): recurrences, optimizer, top-k.

use rayon::prelude::*;

use super::math::{dot_f32, multiversion, sum_squares_f32};
use super::{f32s, f32s_mut, tensor, u32s, CpuBackend, CpuData, CpuStorage, CpuTensor, PAR_MIN};
use crate::backend::model_ops::{AdamStep, LstmCache, ModelOps, MAX_TOPK};
use crate::backend::{check, Backend, DType, OpResult, Tensor};
use crate::error::OpError;

/// `(batch, steps, hidden)` of a `[B, L, H]` tensor with a `[B, L]` mask.
pub(crate) fn seq_dims<S>(
    op: &'static str,
    x: &Tensor<S>,
    mask: &Tensor<S>,
    hidden_mult: usize,
) -> OpResult<(usize, usize, usize)> {
    x.expect_dtype(op, DType::F32)?;
    mask.expect_dtype(op, DType::F32)?;
    match (x.shape(), mask.shape()) {
        ([b, l, h], [mb, ml]) if b == mb && l == ml && h % hidden_mult == 0 => {
            Ok((*b, *l, h / hidden_mult))
        }
        _ => Err(OpError::Shape {
            op,
            detail: format!(
                "expected x [B, L, {hidden_mult}H] and mask [B, L], got {:?} and {:?}",
                x.shape(),
                mask.shape()
            ),
        }),
    }
}

pub(crate) fn expect_len<S>(
    op: &'static str,
    what: &str,
    t: &Tensor<S>,
    len: usize,
) -> OpResult<()> {
    if t.len() != len {
        return Err(OpError::Shape {
            op,
            detail: format!("{what} has shape {:?}, expected {len} elements", t.shape()),
        });
    }
    Ok(())
}

/// Loop constants of one AdamW step.
struct AdamConsts {
    scale: f32,
    beta1: f32,
    beta2: f32,
    bias1: f32,
    bias2: f32,
    lr: f32,
    eps: f32,
    wd: f32,
}

impl AdamConsts {
    fn new(s: &AdamStep, scale: f32) -> Self {
        AdamConsts {
            scale,
            beta1: s.beta1,
            beta2: s.beta2,
            bias1: 1.0 - s.beta1.powi(s.t as i32),
            bias2: 1.0 - s.beta2.powi(s.t as i32),
            lr: s.lr,
            eps: s.eps,
            wd: s.weight_decay,
        }
    }

    fn apply(&self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        adam_block(self, p, g, m, v);
    }
}

multiversion! {
/// The AdamW update of a block; iterators (no indexing) so the loop vectorises.
fn adam_block(k: &AdamConsts, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let gi = g * k.scale;
        let mi = k.beta1 * *m + (1.0 - k.beta1) * gi;
        let vi = k.beta2 * *v + (1.0 - k.beta2) * gi * gi;
        *m = mi;
        *v = vi;
        let (mh, vh) = (mi / k.bias1, vi / k.bias2);
        *p -= k.lr * (mh / (vh.sqrt() + k.eps) + k.wd * *p);
    }
}
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn tanh_safe(x: f32) -> f32 {
    x.clamp(-15.0, 15.0).tanh()
}

/// The top-`k` of `(value, id)` candidates with the kernel's order and tie-break.
pub(crate) fn topk_of(cands: impl Iterator<Item = (f32, u32)>, k: usize) -> Vec<(f32, u32)> {
    let better = |a: (f32, u32), b: (f32, u32)| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1);
    let mut best: Vec<(f32, u32)> = vec![(f32::NEG_INFINITY, u32::MAX); k];
    for c in cands {
        // Only entries above -inf count (NaN and masked entries never rank).
        let finite_or_inf = c.0 > f32::NEG_INFINITY;
        if !finite_or_inf || !better(c, best[k - 1]) {
            continue;
        }
        let mut q = k - 1;
        while q > 0 && better(c, best[q - 1]) {
            best[q] = best[q - 1];
            q -= 1;
        }
        best[q] = c;
    }
    best
}

impl ModelOps for CpuBackend {
    fn indrnn_forward(
        &self,
        pre: &CpuTensor,
        u: &CpuTensor,
        mask: &CpuTensor,
    ) -> OpResult<CpuTensor> {
        let (b, l, h) = seq_dims("indrnn_forward", pre, mask, 1)?;
        expect_len("indrnn_forward", "u", u, h)?;
        let (pv, uv, mv) = (
            f32s("indrnn", pre)?,
            f32s("indrnn", u)?,
            f32s("indrnn", mask)?,
        );
        let mut out = vec![0.0f32; b * l * h];
        out.par_chunks_mut((l * h).max(1))
            .enumerate()
            .for_each(|(bi, o)| {
                let mut state = vec![0.0f32; h];
                for t in 0..l {
                    let row = &pv[(bi * l + t) * h..(bi * l + t + 1) * h];
                    if mv[bi * l + t] > 0.0 {
                        for j in 0..h {
                            state[j] = (row[j] + uv[j] * state[j]).max(0.0);
                        }
                    }
                    o[t * h..(t + 1) * h].copy_from_slice(&state);
                }
            });
        Ok(tensor(pre.shape().to_vec(), out))
    }

    fn indrnn_backward(
        &self,
        pre: &CpuTensor,
        u: &CpuTensor,
        mask: &CpuTensor,
        hs: &CpuTensor,
        dh: &CpuTensor,
    ) -> OpResult<(CpuTensor, CpuTensor)> {
        let (b, l, h) = seq_dims("indrnn_backward", pre, mask, 1)?;
        expect_len("indrnn_backward", "u", u, h)?;
        check::same_len("indrnn_backward", pre, hs)?;
        check::same_len("indrnn_backward", pre, dh)?;
        let (uv, mv) = (f32s("indrnn", u)?, f32s("indrnn", mask)?);
        let (hv, dv) = (f32s("indrnn", hs)?, f32s("indrnn", dh)?);
        let mut dpre = vec![0.0f32; b * l * h];
        let mut du_part = vec![0.0f32; b * h];
        dpre.par_chunks_mut((l * h).max(1))
            .zip(du_part.par_chunks_mut(h.max(1)))
            .enumerate()
            .for_each(|(bi, (dp, du))| {
                let mut carry = vec![0.0f32; h];
                for t in (0..l).rev() {
                    let base = (bi * l + t) * h;
                    let masked = mv[bi * l + t] <= 0.0;
                    for j in 0..h {
                        let g = dv[base + j] + carry[j];
                        if masked {
                            dp[t * h + j] = 0.0;
                            carry[j] = g;
                        } else {
                            let prev = if t > 0 { hv[base - h + j] } else { 0.0 };
                            let d = if hv[base + j] > 0.0 { g } else { 0.0 };
                            dp[t * h + j] = d;
                            du[j] += d * prev;
                            carry[j] = d * uv[j];
                        }
                    }
                }
            });
        let du = self.sum_cols(&tensor(vec![b, h], du_part))?;
        Ok((tensor(pre.shape().to_vec(), dpre), du))
    }

    fn lstm_forward(
        &self,
        xw: &CpuTensor,
        wh: &CpuTensor,
        mask: &CpuTensor,
    ) -> OpResult<LstmCache<CpuTensor>> {
        let (b, l, h) = seq_dims("lstm_forward", xw, mask, 4)?;
        if wh.shape() != [h, 4 * h] {
            return Err(OpError::Shape {
                op: "lstm_forward",
                detail: format!("wh is {:?}, expected [{h}, {}]", wh.shape(), 4 * h),
            });
        }
        let (xv, wv, mv) = (f32s("lstm", xw)?, f32s("lstm", wh)?, f32s("lstm", mask)?);
        let (mut hs, mut hp, mut cs, mut gs) = (
            vec![0.0f32; b * l * h],
            vec![0.0f32; b * l * h],
            vec![0.0f32; b * l * h],
            vec![0.0f32; b * l * 4 * h],
        );
        let seq = (l * h).max(1);
        hs.par_chunks_mut(seq)
            .zip(hp.par_chunks_mut(seq))
            .zip(cs.par_chunks_mut(seq))
            .zip(gs.par_chunks_mut((4 * l * h).max(1)))
            .enumerate()
            .for_each(|(bi, (((ho, hpo), co), go))| {
                let mut hprev = vec![0.0f32; h];
                let mut cprev = vec![0.0f32; h];
                let mut a = vec![0.0f32; 4 * h];
                for t in 0..l {
                    hpo[t * h..(t + 1) * h].copy_from_slice(&hprev);
                    let g = &mut go[t * 4 * h..(t + 1) * 4 * h];
                    if mv[bi * l + t] <= 0.0 {
                        ho[t * h..(t + 1) * h].copy_from_slice(&hprev);
                        co[t * h..(t + 1) * h].copy_from_slice(&cprev);
                        continue;
                    }
                    a.copy_from_slice(&xv[(bi * l + t) * 4 * h..(bi * l + t + 1) * 4 * h]);
                    if t > 0 {
                        for (k, &hk) in hprev.iter().enumerate() {
                            let w = &wv[k * 4 * h..(k + 1) * 4 * h];
                            for (am, &wm) in a.iter_mut().zip(w) {
                                *am += hk * wm;
                            }
                        }
                    }
                    for j in 0..h {
                        let (ig, fg, gg, og) = (
                            sigmoid(a[j]),
                            sigmoid(a[h + j]),
                            tanh_safe(a[2 * h + j]),
                            sigmoid(a[3 * h + j]),
                        );
                        let cn = fg * cprev[j] + ig * gg;
                        cprev[j] = cn;
                        hprev[j] = og * tanh_safe(cn);
                        g[j] = ig;
                        g[h + j] = fg;
                        g[2 * h + j] = gg;
                        g[3 * h + j] = og;
                    }
                    ho[t * h..(t + 1) * h].copy_from_slice(&hprev);
                    co[t * h..(t + 1) * h].copy_from_slice(&cprev);
                }
            });
        let shape = vec![b, l, h];
        Ok(LstmCache {
            h: tensor(shape.clone(), hs),
            h_prev: tensor(shape.clone(), hp),
            c: tensor(shape, cs),
            gates: tensor(xw.shape().to_vec(), gs),
        })
    }

    fn lstm_backward(
        &self,
        cache: &LstmCache<CpuTensor>,
        wh: &CpuTensor,
        mask: &CpuTensor,
        dh: &CpuTensor,
    ) -> OpResult<CpuTensor> {
        let (b, l, h) = seq_dims("lstm_backward", &cache.gates, mask, 4)?;
        check::same_len("lstm_backward", &cache.h, dh)?;
        expect_len("lstm_backward", "wh", wh, 4 * h * h)?;
        let (wv, mv, dv) = (f32s("lstm", wh)?, f32s("lstm", mask)?, f32s("lstm", dh)?);
        let (gv, cv) = (f32s("lstm", &cache.gates)?, f32s("lstm", &cache.c)?);
        let mut dg = vec![0.0f32; b * l * 4 * h];
        dg.par_chunks_mut((4 * l * h).max(1))
            .enumerate()
            .for_each(|(bi, dgo)| {
                let mut dh_carry = vec![0.0f32; h];
                let mut dc_carry = vec![0.0f32; h];
                let mut dht = vec![0.0f32; h];
                for t in (0..l).rev() {
                    let row = bi * l + t;
                    for j in 0..h {
                        dht[j] = dv[row * h + j] + dh_carry[j];
                    }
                    if t + 1 < l && mv[row + 1] > 0.0 {
                        let next = &dgo[(t + 1) * 4 * h..(t + 2) * 4 * h];
                        for (j, d) in dht.iter_mut().enumerate() {
                            let w = &wv[j * 4 * h..(j + 1) * 4 * h];
                            *d += dot_f32(next, w);
                        }
                    }
                    let g = &gv[row * 4 * h..(row + 1) * 4 * h];
                    let out = &mut dgo[t * 4 * h..(t + 1) * 4 * h];
                    if mv[row] <= 0.0 {
                        out.iter_mut().for_each(|x| *x = 0.0);
                        dh_carry.copy_from_slice(&dht);
                        continue;
                    }
                    for j in 0..h {
                        let (ig, fg, gg, og) = (g[j], g[h + j], g[2 * h + j], g[3 * h + j]);
                        let ct = cv[row * h + j];
                        let cp = if t > 0 { cv[(row - 1) * h + j] } else { 0.0 };
                        let tc = tanh_safe(ct);
                        let d_o = dht[j] * tc;
                        let dc = dc_carry[j] + dht[j] * og * (1.0 - tc * tc);
                        out[j] = dc * gg * ig * (1.0 - ig);
                        out[h + j] = dc * cp * fg * (1.0 - fg);
                        out[2 * h + j] = dc * ig * (1.0 - gg * gg);
                        out[3 * h + j] = d_o * og * (1.0 - og);
                        dh_carry[j] = 0.0;
                        dc_carry[j] = dc * fg;
                    }
                }
            });
        Ok(tensor(cache.gates.shape().to_vec(), dg))
    }

    fn time_mask_mul(&self, x: &CpuTensor, mask: &CpuTensor) -> OpResult<CpuTensor> {
        x.expect_dtype("time_mask_mul", DType::F32)?;
        let (b, l, h) = match x.shape() {
            [b, l, h] => (*b, *l, *h),
            s => {
                return Err(OpError::Shape {
                    op: "time_mask_mul",
                    detail: format!("x must be [B, L, H], got {s:?}"),
                })
            }
        };
        expect_len("time_mask_mul", "mask", mask, b * h)?;
        let (xv, mv) = (f32s("time_mask_mul", x)?, f32s("time_mask_mul", mask)?);
        let mut out = vec![0.0f32; xv.len()];
        if h > 0 && l > 0 {
            // Sequence by sequence, step by step: the mask row multiplies each step's row.
            for ((o, x), m) in out
                .chunks_mut(l * h)
                .zip(xv.chunks(l * h))
                .zip(mv.chunks(h))
            {
                for (o, x) in o.chunks_mut(h).zip(x.chunks(h)) {
                    for ((o, &x), &m) in o.iter_mut().zip(x).zip(m) {
                        *o = x * m;
                    }
                }
            }
        }
        Ok(tensor(x.shape().to_vec(), out))
    }

    fn tanh_backward(&self, y: &CpuTensor, dy: &CpuTensor) -> OpResult<CpuTensor> {
        check::same_len("tanh_backward", y, dy)?;
        let (yv, dv) = (f32s("tanh_backward", y)?, f32s("tanh_backward", dy)?);
        Ok(tensor(
            dy.shape().to_vec(),
            yv.iter()
                .zip(dv)
                .map(|(&y, &d)| d * (1.0 - y * y))
                .collect(),
        ))
    }

    fn clamp(&self, x: &mut CpuTensor, lo: f32, hi: f32) -> OpResult<()> {
        f32s_mut("clamp", x)?
            .iter_mut()
            .for_each(|v| *v = v.clamp(lo, hi));
        Ok(())
    }

    fn sum_squares_into(&self, acc: &mut CpuTensor, x: &CpuTensor) -> OpResult<()> {
        expect_len("sum_squares_into", "acc", acc, 1)?;
        let xv = f32s("sum_squares_into", x)?;
        // Block partial sums in parallel, added in block order: the same value on any number of
        // threads.
        let parts: Vec<f64> = if xv.len() >= PAR_MIN {
            xv.par_chunks(PAR_MIN).map(sum_squares_f32).collect()
        } else {
            vec![sum_squares_f32(xv)]
        };
        f32s_mut("sum_squares_into", acc)?[0] += parts.iter().sum::<f64>() as f32;
        Ok(())
    }

    fn clip_scale(&self, sumsq: &CpuTensor, max_norm: f32) -> OpResult<CpuTensor> {
        expect_len("clip_scale", "sumsq", sumsq, 1)?;
        let r = max_norm / (f32s("clip_scale", sumsq)?[0].sqrt() + 1e-6);
        Ok(tensor(vec![1], vec![if r >= 1.0 { 1.0 } else { r }]))
    }

    fn adam_step(
        &self,
        p: &mut CpuTensor,
        g: &CpuTensor,
        m: &mut CpuTensor,
        v: &mut CpuTensor,
        scale: &CpuTensor,
        s: &AdamStep,
    ) -> OpResult<()> {
        check::same_len("adam_step", p, g)?;
        check::same_len("adam_step", p, m)?;
        check::same_len("adam_step", p, v)?;
        expect_len("adam_step", "scale", scale, 1)?;
        let sc = f32s("adam_step", scale)?[0];
        let gv = f32s("adam_step", g)?;
        let k = AdamConsts::new(s, sc);
        let mv = f32s_mut("adam_step", m)?;
        let vv = f32s_mut("adam_step", v)?;
        let pv = f32s_mut("adam_step", p)?;
        if pv.len() >= PAR_MIN {
            pv.par_chunks_mut(PAR_MIN)
                .zip(gv.par_chunks(PAR_MIN))
                .zip(mv.par_chunks_mut(PAR_MIN))
                .zip(vv.par_chunks_mut(PAR_MIN))
                .for_each(|(((p, g), m), v)| k.apply(p, g, m, v));
        } else {
            k.apply(pv, gv, mv, vv);
        }
        Ok(())
    }

    fn mask_entries(
        &self,
        x: &mut CpuTensor,
        row_ptr: &CpuTensor,
        cols: &CpuTensor,
    ) -> OpResult<()> {
        let (rows, ncols) = (x.rows(), x.cols());
        expect_len("mask_entries", "row_ptr", row_ptr, rows + 1)?;
        let rp = u32s("mask_entries", row_ptr)?.to_vec();
        let cv = u32s("mask_entries", cols)?.to_vec();
        if let Some(&bad) = cv.iter().find(|&&c| c as usize >= ncols) {
            return Err(OpError::Index {
                op: "mask_entries",
                index: bad,
                len: ncols,
            });
        }
        let xv = f32s_mut("mask_entries", x)?;
        for r in 0..rows {
            for &c in &cv[rp[r] as usize..rp[r + 1] as usize] {
                xv[r * ncols + c as usize] = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    fn topk_rows(&self, x: &CpuTensor, k: usize) -> OpResult<(CpuTensor, CpuTensor)> {
        x.expect_dtype("topk_rows", DType::F32)?;
        if k == 0 || k > MAX_TOPK {
            return Err(OpError::Invalid {
                op: "topk_rows",
                detail: format!("k = {k} must be in 1..={MAX_TOPK}"),
            });
        }
        let (rows, cols) = (x.rows(), x.cols());
        let xv = f32s("topk_rows", x)?;
        let per_row: Vec<Vec<(f32, u32)>> = (0..rows)
            .into_par_iter()
            .map(|r| {
                let row = &xv[r * cols..(r + 1) * cols];
                topk_of(row.iter().enumerate().map(|(c, &v)| (v, c as u32)), k)
            })
            .collect();
        let vals = per_row.iter().flatten().map(|p| p.0).collect();
        let ids: Vec<u32> = per_row.iter().flatten().map(|p| p.1).collect();
        Ok((
            tensor(vec![rows, k], vals),
            Tensor::from_parts(
                vec![rows, k],
                DType::U32,
                CpuStorage::new(CpuData::U32(ids)),
            ),
        ))
    }
}
