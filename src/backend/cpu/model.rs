//! CPU reference of the model ops (`ModelOps`): recurrences, optimizer, top-k.

use rayon::prelude::*;

use super::math::{exp_f32, multiversion, sum_squares_f32};
use super::matmul::{gemm_acc_small, sgemm_strided};
use super::{f32s, f32s_mut, tensor, u32s, CpuBackend, CpuData, CpuStorage, CpuTensor, PAR_MIN};
use crate::backend::check::SeqDims;
use crate::backend::model_ops::{dropout_uniform, AdamStep, Csr, LstmCache, ModelOps, ProductGrad};
use crate::backend::{DType, IndexPlan, OpResult, Tensor};

/// Host views of a checked CSR block with values: row pointers, columns, values.
fn csr_parts<'a>(
    op: &'static str,
    csr: &'a Csr<CpuStorage>,
) -> OpResult<(&'a [u32], &'a [u32], &'a [f32])> {
    Ok((
        u32s(op, csr.row_ptr())?,
        u32s(op, csr.cols())?,
        f32s(op, csr.expect_vals(op)?)?,
    ))
}

/// The host views of [`ModelOps::neighbour_axpy`]'s lists for the tile `lo .. lo + cols`.
struct NeighbourLists<'a> {
    hist_ptr: &'a [u32],
    hist: &'a [u32],
    /// One value per history entry, when the block has them.
    hist_vals: Option<&'a [f32]>,
    ptr: &'a [u32],
    cols: &'a [u32],
    vals: &'a [f32],
    lo: u32,
    hi: u32,
}

impl<'a> NeighbourLists<'a> {
    fn new(
        op: &'static str,
        history: &'a Csr<CpuStorage>,
        neighbours: &'a Csr<CpuStorage>,
        lo: usize,
        cols: usize,
    ) -> OpResult<Self> {
        let (ptr, ncols, vals) = csr_parts(op, neighbours)?;
        Ok(NeighbourLists {
            hist_ptr: u32s(op, history.row_ptr())?,
            hist: u32s(op, history.cols())?,
            hist_vals: history.vals().map(|v| f32s(op, v)).transpose()?,
            ptr,
            cols: ncols,
            vals,
            lo: lo as u32,
            hi: (lo + cols) as u32,
        })
    }

    /// Calls `f(c, v, w)` for every neighbour `lo + c` (weight `w`) of row `r`'s history
    /// entries `(h, v)`, in history order.
    fn for_each(&self, r: usize, mut f: impl FnMut(usize, f32, f32)) {
        for e in self.hist_ptr[r] as usize..self.hist_ptr[r + 1] as usize {
            let v = self.hist_vals.map_or(1.0, |hv| hv[e]);
            self.for_each_of(e, |c, w| f(c, v, w));
        }
    }

    /// Calls `f(c, w)` for every neighbour `lo + c` (weight `w`) of history entry `e`'s song.
    fn for_each_of(&self, e: usize, mut f: impl FnMut(usize, f32)) {
        self.for_each_at(e, |_, c, w| f(c, w));
    }

    /// Calls `f(k, c, w)` for every neighbour `lo + c` (weight `w`, position `k` in its list)
    /// of history entry `e`'s song; a song's columns are sorted, so its tile part is found by
    /// bisection.
    fn for_each_at(&self, e: usize, mut f: impl FnMut(usize, usize, f32)) {
        let h = self.hist[e] as usize;
        let (a, b) = (self.ptr[h] as usize, self.ptr[h + 1] as usize);
        let list = &self.cols[a..b];
        let start = a + list.partition_point(|&c| c < self.lo);
        let end = a + list.partition_point(|&c| c < self.hi);
        for j in start..end {
            f(j - a, (self.cols[j] - self.lo) as usize, self.vals[j]);
        }
    }
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
    lo: f32,
    hi: f32,
}

impl AdamConsts {
    fn new(s: &AdamStep, scale: f32) -> Self {
        let ((bias1, bias2), (lo, hi)) = (s.bias_corrections(), s.bounds());
        AdamConsts {
            scale,
            beta1: s.beta1,
            beta2: s.beta2,
            bias1,
            bias2,
            lr: s.lr,
            eps: s.eps,
            wd: s.weight_decay,
            lo,
            hi,
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
        *p = (*p - k.lr * (mh / (vh.sqrt() + k.eps) + k.wd * *p)).clamp(k.lo, k.hi);
    }
}
}

// Branch-free, on the vectorisable exp of `math` (libm's expf/tanhf are calls per element that
// keep the gate loops scalar).
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// `tanh(x) = 1 − 2 / (e^{2x} + 1)` (absolute error ≈ 1e-7), saturated beyond ±15.
#[inline(always)]
fn tanh_safe(x: f32) -> f32 {
    1.0 - 2.0 / (exp_f32(2.0 * x.clamp(-15.0, 15.0)) + 1.0)
}

multiversion! {
/// [`ModelOps::lstm_forward`] for one chunk of `m.len() / l` whole sequences (the chunk's rows of
/// `h`, `h_prev`, `c` and the gates; `go` holds `xw` on entry), step by step: the pre-activations
/// of all the chunk's sequences at step `t`, `xw_t + h_{t−1}·Wh`, as one `[n, H]·[H, 4H]` product
/// added onto the gate rows (strided), then each sequence's gates in place. Compiled for AVX-512 /
/// AVX2 so the gate math vectorises.
#[allow(clippy::too_many_arguments)]
fn lstm_forward_chunk(
    wv: &[f32],
    m: &[f32],
    l: usize,
    h: usize,
    ho: &mut [f32],
    hpo: &mut [f32],
    co: &mut [f32],
    go: &mut [f32],
) {
    let (n, g4) = (m.len() / l, 4 * h);
    let (mut hprev, mut cprev) = (vec![0.0f32; n * h], vec![0.0f32; n * h]);
    for t in 0..l {
        if t > 0 {
            gemm_acc_small((n, h, g4), &hprev, h, wv, &mut go[t * g4..], l * g4);
        }
        for i in 0..n {
            let r = i * l + t;
            let at = r * h..(r + 1) * h;
            let (hr, cr) = (&mut hprev[i * h..(i + 1) * h], &mut cprev[i * h..(i + 1) * h]);
            hpo[at.clone()].copy_from_slice(hr);
            let row = &mut go[r * g4..(r + 1) * g4];
            if m[r] > 0.0 {
                lstm_gates(row, hr, cr);
            } else {
                // Masked steps keep their state and store no gates.
                row.fill(0.0);
            }
            ho[at.clone()].copy_from_slice(hr);
            co[at].copy_from_slice(cr);
        }
    }
}
}

multiversion! {
/// [`ModelOps::lstm_backward`] for one chunk of whole sequences (see [`lstm_forward_chunk`]):
/// `∂h_t = ∂y_t + ∂g_{t+1}·Whᵀ` for all the chunk's sequences in one product (`wt` = Whᵀ `[4H, H]`;
/// rows of masked steps of ∂g are zero), then the gate gradients.
#[allow(clippy::too_many_arguments)]
fn lstm_backward_chunk(
    gv: &[f32],
    cv: &[f32],
    dv: &[f32],
    wt: &[f32],
    m: &[f32],
    l: usize,
    h: usize,
    dgo: &mut [f32],
) {
    let (n, g4) = (m.len() / l, 4 * h);
    let (mut dh_carry, mut dc_carry) = (vec![0.0f32; n * h], vec![0.0f32; n * h]);
    let mut dht = vec![0.0f32; n * h];
    let zeros = vec![0.0f32; h];
    for t in (0..l).rev() {
        for i in 0..n {
            let r = i * l + t;
            for ((d, &x), &c) in dht[i * h..(i + 1) * h]
                .iter_mut()
                .zip(&dv[r * h..(r + 1) * h])
                .zip(&dh_carry[i * h..(i + 1) * h])
            {
                *d = x + c;
            }
        }
        if t + 1 < l {
            // The rows of step t + 1 (written in the previous iteration), strided.
            gemm_acc_small((n, g4, h), &dgo[(t + 1) * g4..], l * g4, wt, &mut dht, h);
        }
        for i in 0..n {
            let r = i * l + t;
            let dht = &dht[i * h..(i + 1) * h];
            let (dhc, dcc) = (&mut dh_carry[i * h..(i + 1) * h], &mut dc_carry[i * h..(i + 1) * h]);
            let out = &mut dgo[r * g4..(r + 1) * g4];
            if m[r] <= 0.0 {
                out.fill(0.0);
                dhc.copy_from_slice(dht);
                continue;
            }
            let cp = if t > 0 { &cv[(r - 1) * h..r * h] } else { &zeros[..] };
            let ct = &cv[r * h..(r + 1) * h];
            lstm_gates_backward(&gv[r * g4..(r + 1) * g4], ct, cp, dht, dcc, out);
            dhc.fill(0.0);
        }
    }
}
}

/// One LSTM step of one sequence: `row` holds the gate pre-activations (`[i, f, g, o]`, 4H) and
/// gets the activated gates in place; `h` and `c` are updated in place.
#[inline(always)]
fn lstm_gates(row: &mut [f32], h: &mut [f32], c: &mut [f32]) {
    let n = h.len();
    let (gi, rest) = row.split_at_mut(n);
    let (gf, rest) = rest.split_at_mut(n);
    let (gg, go) = rest.split_at_mut(n);
    lstm_gates_split(gi, gf, gg, &mut go[..n], h, c);
}

/// [`lstm_gates`] on the four gate slices as separate arguments: so they are known not to alias
/// (cut from one row inside a function, the loop ran scalar, ten times slower).
#[inline(always)]
fn lstm_gates_split(
    gi: &mut [f32],
    gf: &mut [f32],
    gg: &mut [f32],
    go: &mut [f32],
    h: &mut [f32],
    c: &mut [f32],
) {
    let n = h.len();
    let (gi, gf, gg, go, c) = (
        &mut gi[..n],
        &mut gf[..n],
        &mut gg[..n],
        &mut go[..n],
        &mut c[..n],
    );
    for j in 0..n {
        let (i, f, gt, o) = (
            sigmoid(gi[j]),
            sigmoid(gf[j]),
            tanh_safe(gg[j]),
            sigmoid(go[j]),
        );
        let cn = f * c[j] + i * gt;
        c[j] = cn;
        h[j] = o * tanh_safe(cn);
        (gi[j], gf[j], gg[j], go[j]) = (i, f, gt, o);
    }
}

/// The gate gradients of one step of one sequence (`out`, 4H, order `[i, f, g, o]`) from the
/// stored gates `g`, the cell states `ct` and `cp` (step t and t − 1), and `∂h_t`; `dc` carries
/// `∂c` from step t + 1 in and to step t − 1 out. A function of its own so that the slices are
/// known not to alias: inlined into the chunk loop, the loop ran scalar.
#[inline(always)]
fn lstm_gates_backward(
    g: &[f32],
    ct: &[f32],
    cp: &[f32],
    dht: &[f32],
    dc: &mut [f32],
    out: &mut [f32],
) {
    let n = dc.len();
    let (gi, rest) = g.split_at(n);
    let (gf, rest) = rest.split_at(n);
    let (gg, go) = rest.split_at(n);
    let (oi, rest) = out.split_at_mut(n);
    let (of, rest) = rest.split_at_mut(n);
    let (og, oo) = rest.split_at_mut(n);
    // Every slice cut to length n: with the lengths known equal the bounds checks leave the loop.
    let (go, oo, ct, cp, dht) = (&go[..n], &mut oo[..n], &ct[..n], &cp[..n], &dht[..n]);
    for j in 0..n {
        let (ig, fg, gt, o) = (gi[j], gf[j], gg[j], go[j]);
        let tc = tanh_safe(ct[j]);
        let d_o = dht[j] * tc;
        let d = dc[j] + dht[j] * o * (1.0 - tc * tc);
        oi[j] = d * gt * ig * (1.0 - ig);
        of[j] = d * cp[j] * fg * (1.0 - fg);
        og[j] = d * ig * (1.0 - gt * gt);
        oo[j] = d_o * o * (1.0 - o);
        dc[j] = d * fg;
    }
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

/// The touched rows of a product gradient: `(seg_rows, seg_ptr, order, src)` when it has them.
type Routed<'a> = Option<(&'a [u32], &'a [u32], &'a [u32], &'a [f32])>;

fn routed<'a>(op: &'static str, pg: &'a ProductGrad<'_, CpuStorage>) -> OpResult<Routed<'a>> {
    let Some((src, plan)) = pg.rows else {
        return Ok(None);
    };
    Ok(Some((
        u32s(op, &plan.seg_rows)?,
        u32s(op, &plan.seg_ptr)?,
        u32s(op, &plan.order)?,
        f32s(op, src)?,
    )))
}

/// Rows of a table per block of the fused AdamW (each block's gradient formed in a buffer of
/// this many rows).
const TABLE_BLOCK: usize = 64;

impl ModelOps for CpuBackend {
    fn fused_table(&self) -> bool {
        self.fused_table
    }

    fn table_rows_kernel(
        &self,
        pg: &ProductGrad<'_, CpuStorage>,
    ) -> OpResult<(CpuTensor, CpuTensor)> {
        let op = "table_rows";
        let (n, k, d) = (pg.table_rows(), pg.g.rows(), pg.u.cols());
        let (gv, uv) = (f32s(op, pg.g)?, f32s(op, pg.u)?);
        let Some((seg_rows, seg_ptr, order, sv)) = routed(op, pg)? else {
            return Ok((
                tensor(vec![0, d], Vec::new()),
                tensor(vec![0, 1], Vec::new()),
            ));
        };
        let mut x = vec![0.0f32; seg_rows.len() * d];
        let mut corr = vec![0.0f32; seg_rows.len()];
        let mut y = vec![0.0f32; d];
        for (s, &r) in seg_rows.iter().enumerate() {
            // The product's row, k ascending (as the products sum K), then the routed rows
            // summed from zero in order (as `scatter_add_rows`), then added.
            y.fill(0.0);
            for kk in 0..k {
                let a = gv[kk * n + r as usize];
                let ur = &uv[kk * d..(kk + 1) * d];
                y.iter_mut().zip(ur).for_each(|(y, &b)| *y += a * b);
            }
            let xs = &mut x[s * d..(s + 1) * d];
            for &p in &order[seg_ptr[s] as usize..seg_ptr[s + 1] as usize] {
                let src = &sv[p as usize * d..(p as usize + 1) * d];
                xs.iter_mut().zip(src).for_each(|(a, &b)| *a += b);
            }
            let mut c2 = 0.0f32;
            for (xv, &yv) in xs.iter_mut().zip(&y) {
                *xv += yv;
                c2 += (*xv - yv) * (*xv + yv);
            }
            corr[s] = c2;
        }
        Ok((
            tensor(vec![seg_rows.len(), d], x),
            tensor(vec![seg_rows.len(), 1], corr),
        ))
    }

    fn adam_table_kernel(
        &self,
        p: &mut CpuTensor,
        m: &mut CpuTensor,
        v: &mut CpuTensor,
        pg: &ProductGrad<'_, CpuStorage>,
        rows: &CpuTensor,
        scale: &CpuTensor,
        s: &AdamStep,
    ) -> OpResult<()> {
        let op = "adam_table";
        let (n, k, d) = (pg.table_rows(), pg.g.rows(), pg.u.cols());
        let consts = AdamConsts::new(s, f32s(op, scale)?[0]);
        let (gv, uv, xv) = (f32s(op, pg.g)?, f32s(op, pg.u)?, f32s(op, rows)?);
        let seg_rows = match routed(op, pg)? {
            Some((seg_rows, ..)) => seg_rows,
            None => &[],
        };
        let mv = f32s_mut(op, m)?;
        let vv = f32s_mut(op, v)?;
        let pv = f32s_mut(op, p)?;
        if n == 0 || d == 0 {
            return Ok(());
        }
        let block = TABLE_BLOCK * d;
        pv.par_chunks_mut(block)
            .zip(mv.par_chunks_mut(block))
            .zip(vv.par_chunks_mut(block))
            .enumerate()
            .for_each(|(bi, ((pb, mb), vb))| {
                let r0 = bi * TABLE_BLOCK;
                let nr = pb.len() / d;
                // This block's gradient: the product's rows, by the GEMM that forms the whole
                // product otherwise (each element summed over k alike: the same bits), then the
                // named rows.
                let mut gb = vec![0.0f32; nr * d];
                if k > 0 {
                    sgemm_strided((nr, k, d), &gv[r0..], (1, n), uv, (d, 1), 0.0, &mut gb, d);
                }
                let first = seg_rows.partition_point(|&r| (r as usize) < r0);
                for (si, &r) in seg_rows.iter().enumerate().skip(first) {
                    let i = r as usize - r0;
                    if i >= nr {
                        break;
                    }
                    gb[i * d..(i + 1) * d].copy_from_slice(&xv[si * d..(si + 1) * d]);
                }
                consts.apply(pb, &gb, mb, vb);
            });
        Ok(())
    }

    fn indrnn_forward_kernel(
        &self,
        pre: &CpuTensor,
        u: &CpuTensor,
        mask: &CpuTensor,
        d: &SeqDims,
    ) -> OpResult<CpuTensor> {
        let (b, l, h) = (d.batch(), d.steps(), d.hidden());
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

    fn indrnn_backward_kernel(
        &self,
        pre: &CpuTensor,
        u: &CpuTensor,
        mask: &CpuTensor,
        hs: &CpuTensor,
        dh: &CpuTensor,
        d: &SeqDims,
    ) -> OpResult<(CpuTensor, CpuTensor)> {
        let (b, l, h) = (d.batch(), d.steps(), d.hidden());
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
        Ok((
            tensor(pre.shape().to_vec(), dpre),
            tensor(vec![b, h], du_part),
        ))
    }

    fn lstm_forward_kernel(
        &self,
        xw: CpuTensor,
        wh: &CpuTensor,
        mask: &CpuTensor,
        d: &SeqDims,
    ) -> OpResult<LstmCache<CpuTensor>> {
        let (b, l, h) = (d.batch(), d.steps(), d.hidden());
        let (wv, mv) = (f32s("lstm", wh)?, f32s("lstm", mask)?);
        let (mut hs, mut hp, mut cs) = (
            vec![0.0f32; b * l * h],
            vec![0.0f32; b * l * h],
            vec![0.0f32; b * l * h],
        );
        // The gates are computed in xw's buffer (copied only if someone else still holds it).
        let mut gates = xw;
        let gs = f32s_mut("lstm", &mut gates)?;
        if b * l * h > 0 {
            // One chunk of whole sequences per thread, each run step by step to the end
            // (`lstm_forward_chunk`): a parallel loop per time step spent its time waking
            // threads, and matrixmultiply's own threads fought rayon's inside the tasks.
            let (seq, g4) = (l * h, 4 * h);
            let per = b.div_ceil(rayon::current_num_threads().max(1));
            hs.par_chunks_mut(per * seq)
                .zip(hp.par_chunks_mut(per * seq))
                .zip(cs.par_chunks_mut(per * seq))
                .zip(gs.par_chunks_mut(per * l * g4))
                .zip(mv.par_chunks(per * l))
                .for_each(|((((ho, hpo), co), go), m)| {
                    lstm_forward_chunk(wv, m, l, h, ho, hpo, co, go)
                });
        }
        let shape = vec![b, l, h];
        Ok(LstmCache {
            h: tensor(shape.clone(), hs),
            h_prev: tensor(shape.clone(), hp),
            c: tensor(shape, cs),
            gates,
        })
    }

    fn lstm_backward_kernel(
        &self,
        cache: &LstmCache<CpuTensor>,
        wh: &CpuTensor,
        mask: &CpuTensor,
        dh: &CpuTensor,
        d: &SeqDims,
    ) -> OpResult<CpuTensor> {
        let (b, l, h) = (d.batch(), d.steps(), d.hidden());
        let (wv, mv, dv) = (f32s("lstm", wh)?, f32s("lstm", mask)?, f32s("lstm", dh)?);
        let (gv, cv) = (f32s("lstm", &cache.gates)?, f32s("lstm", &cache.c)?);
        let mut dg = vec![0.0f32; b * l * 4 * h];
        if b * l * h > 0 {
            // One chunk of whole sequences per thread, as in the forward
            // (`lstm_backward_chunk`), with Whᵀ `[4H, H]` made contiguous once for the per-step
            // products.
            let g4 = 4 * h;
            let mut wt = vec![0.0f32; g4 * h];
            for (k, row) in wv.chunks(g4).enumerate() {
                for (j, &w) in row.iter().enumerate() {
                    wt[j * h + k] = w;
                }
            }
            let per = b.div_ceil(rayon::current_num_threads().max(1));
            dg.par_chunks_mut(per * l * g4)
                .zip(gv.par_chunks(per * l * g4))
                .zip(cv.par_chunks(per * l * h))
                .zip(dv.par_chunks(per * l * h))
                .zip(mv.par_chunks(per * l))
                .for_each(|((((dgo, gv), cv), dv), m)| {
                    lstm_backward_chunk(gv, cv, dv, &wt, m, l, h, dgo)
                });
        }
        Ok(tensor(cache.gates.shape().to_vec(), dg))
    }

    fn time_mask_mul_kernel(
        &self,
        x: &CpuTensor,
        mask: &CpuTensor,
        d: &SeqDims,
    ) -> OpResult<CpuTensor> {
        let (l, h) = (d.steps(), d.hidden());
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

    fn dropout_mask_kernel(
        &self,
        shape: &[usize],
        keep: f32,
        keep_scale: f32,
        seed: u32,
        stream: u32,
    ) -> OpResult<CpuTensor> {
        let n: usize = shape.iter().product();
        let m = (0..n as u32)
            .map(|i| {
                if dropout_uniform(seed, stream, i) < keep {
                    keep_scale
                } else {
                    0.0
                }
            })
            .collect();
        Ok(tensor(shape.to_vec(), m))
    }

    fn tanh_backward_kernel(&self, y: &CpuTensor, dy: &CpuTensor) -> OpResult<CpuTensor> {
        let (yv, dv) = (f32s("tanh_backward", y)?, f32s("tanh_backward", dy)?);
        Ok(tensor(
            dy.shape().to_vec(),
            yv.iter()
                .zip(dv)
                .map(|(&y, &d)| d * (1.0 - y * y))
                .collect(),
        ))
    }

    fn clamp_kernel(&self, x: &mut CpuTensor, lo: f32, hi: f32) -> OpResult<()> {
        f32s_mut("clamp", x)?
            .iter_mut()
            .for_each(|v| *v = v.clamp(lo, hi));
        Ok(())
    }

    fn sum_squares_into_kernel(&self, acc: &mut CpuTensor, x: &CpuTensor) -> OpResult<()> {
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

    fn sum_squares_many_into_kernel(&self, acc: &mut CpuTensor, xs: &[&CpuTensor]) -> OpResult<()> {
        xs.iter()
            .try_for_each(|x| self.sum_squares_into_kernel(acc, x))
    }

    fn clip_scale_kernel(&self, sumsq: &CpuTensor, max_norm: f32) -> OpResult<CpuTensor> {
        let r = max_norm / (f32s("clip_scale", sumsq)?[0].sqrt() + 1e-6);
        Ok(tensor(vec![1], vec![if r >= 1.0 { 1.0 } else { r }]))
    }

    fn adam_step_kernel(
        &self,
        p: &mut CpuTensor,
        g: &CpuTensor,
        m: &mut CpuTensor,
        v: &mut CpuTensor,
        scale: &CpuTensor,
        s: &AdamStep,
    ) -> OpResult<()> {
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

    fn mask_entries_kernel(&self, x: &mut CpuTensor, csr: &Csr<CpuStorage>) -> OpResult<()> {
        let (rows, ncols) = (x.rows(), x.cols());
        let (rp, cv) = (
            u32s("mask_entries", csr.row_ptr())?,
            u32s("mask_entries", csr.cols())?,
        );
        let xv = f32s_mut("mask_entries", x)?;
        for r in 0..rows {
            for &c in &cv[rp[r] as usize..rp[r + 1] as usize] {
                xv[r * ncols + c as usize] = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    fn mask_groups_kernel(
        &self,
        x: &mut CpuTensor,
        groups: &CpuTensor,
        banned: &CpuTensor,
    ) -> OpResult<()> {
        let (cols, words) = (x.cols(), banned.cols());
        let (gv, bv) = (u32s("mask_groups", groups)?, u32s("mask_groups", banned)?);
        let xv = f32s_mut("mask_groups", x)?;
        if cols == 0 || words == 0 {
            return Ok(());
        }
        xv.par_chunks_mut(cols)
            .zip(bv.par_chunks(words))
            .for_each(|(row, set)| {
                for (v, &g) in row.iter_mut().zip(gv) {
                    let w = (g / 32) as usize;
                    if w < words && (set[w] >> (g % 32)) & 1 == 1 {
                        *v = f32::NEG_INFINITY;
                    }
                }
            });
        Ok(())
    }

    fn csr_axpy_kernel(
        &self,
        x: &mut CpuTensor,
        csr: &Csr<CpuStorage>,
        alpha: &CpuTensor,
    ) -> OpResult<()> {
        let (rows, ncols) = (x.rows(), x.cols());
        let (rp, cv, vv) = csr_parts("csr_axpy", csr)?;
        let a = f32s("csr_axpy", alpha)?[0];
        let xv = f32s_mut("csr_axpy", x)?;
        for r in 0..rows {
            for j in rp[r] as usize..rp[r + 1] as usize {
                xv[r * ncols + cv[j] as usize] += a * vv[j];
            }
        }
        Ok(())
    }

    fn csr_row_dot_kernel(&self, g: &CpuTensor, csr: &Csr<CpuStorage>) -> OpResult<CpuTensor> {
        let (rows, ncols) = (g.rows(), g.cols());
        let (rp, cv, vv) = csr_parts("csr_row_dot", csr)?;
        let gv = f32s("csr_row_dot", g)?;
        let out = (0..rows)
            .map(|r| {
                (rp[r] as usize..rp[r + 1] as usize)
                    .map(|j| gv[r * ncols + cv[j] as usize] as f64 * vv[j] as f64)
                    .sum::<f64>() as f32
            })
            .collect();
        Ok(tensor(vec![rows], out))
    }

    fn neighbour_axpy_kernel(
        &self,
        x: &mut CpuTensor,
        lo: usize,
        history: &Csr<CpuStorage>,
        neighbours: &Csr<CpuStorage>,
        gamma: &CpuTensor,
    ) -> OpResult<()> {
        let op = "neighbour_axpy";
        let cols = x.cols();
        let lists = NeighbourLists::new(op, history, neighbours, lo, cols)?;
        let gamma = f32s(op, gamma)?[0];
        let xv = f32s_mut(op, x)?;
        if cols == 0 {
            return Ok(());
        }
        xv.par_chunks_mut(cols).enumerate().for_each(|(r, row)| {
            // (γ·v)·w, the GPU kernel's order.
            lists.for_each(r, |c, v, w| row[c] += gamma * v * w);
        });
        Ok(())
    }

    fn neighbour_row_dot_kernel(
        &self,
        g: &CpuTensor,
        lo: usize,
        history: &Csr<CpuStorage>,
        neighbours: &Csr<CpuStorage>,
    ) -> OpResult<CpuTensor> {
        let op = "neighbour_row_dot";
        let (rows, cols) = (g.rows(), g.cols());
        let lists = NeighbourLists::new(op, history, neighbours, lo, cols)?;
        let gv = f32s(op, g)?;
        let out = (0..rows)
            .into_par_iter()
            .map(|r| {
                let mut acc = 0.0f64;
                lists.for_each(r, |c, v, w| acc += gv[r * cols + c] as f64 * (v * w) as f64);
                acc as f32
            })
            .collect();
        Ok(tensor(vec![rows], out))
    }

    fn neighbour_entry_dot_kernel(
        &self,
        g: &CpuTensor,
        lo: usize,
        history: &Csr<CpuStorage>,
        neighbours: &Csr<CpuStorage>,
    ) -> OpResult<CpuTensor> {
        let op = "neighbour_entry_dot";
        let cols = g.cols();
        let lists = NeighbourLists::new(op, history, neighbours, lo, cols)?;
        let gv = f32s(op, g)?;
        let mut out = vec![0.0f32; history.nnz()];
        for r in 0..history.rows() {
            for (e, o) in out
                .iter_mut()
                .enumerate()
                .take(lists.hist_ptr[r + 1] as usize)
                .skip(lists.hist_ptr[r] as usize)
            {
                let mut acc = 0.0f64;
                lists.for_each_of(e, |c, w| acc += gv[r * cols + c] as f64 * w as f64);
                *o = acc as f32;
            }
        }
        Ok(tensor(vec![history.nnz()], out))
    }

    fn neighbour_pair_grad_kernel(
        &self,
        out: &mut CpuTensor,
        g: &CpuTensor,
        lo: usize,
        history: &Csr<CpuStorage>,
        neighbours: &Csr<CpuStorage>,
    ) -> OpResult<()> {
        let op = "neighbour_pair_grad";
        let cols = g.cols();
        let keep = out.cols();
        let lists = NeighbourLists::new(op, history, neighbours, lo, cols)?;
        let gv = f32s(op, g)?;
        let ov = f32s_mut(op, out)?;
        if keep == 0 {
            return Ok(());
        }
        // Each entry's row of `out` is its own: entries in parallel, no two writes to one cell.
        let rows = history.rows();
        let row_of: Vec<usize> = (0..rows)
            .flat_map(|r| {
                let n = (lists.hist_ptr[r + 1] - lists.hist_ptr[r]) as usize;
                std::iter::repeat_n(r, n)
            })
            .collect();
        ov.par_chunks_mut(keep).enumerate().for_each(|(e, o)| {
            let r = row_of[e];
            // v·w·g, the GPU kernel's order.
            let v = lists.hist_vals.map_or(1.0, |hv| hv[e]);
            lists.for_each_at(e, |k, c, w| o[k] += v * w * gv[r * cols + c]);
        });
        Ok(())
    }

    fn neighbour_pair_scale_kernel(
        &self,
        neighbours: &Csr<CpuStorage>,
        log_weights: &CpuTensor,
        songs: &IndexPlan<CpuStorage>,
    ) -> OpResult<CpuTensor> {
        let op = "neighbour_pair_scale";
        let ptr = u32s(op, neighbours.row_ptr())?;
        let w = f32s(op, neighbours.expect_vals(op)?)?;
        let lw = f32s(op, log_weights)?;
        let rows = u32s(op, &songs.seg_rows)?;
        let keep = log_weights.cols();
        let mut out = vec![0.0f32; neighbours.nnz()];
        // The distinct songs ascend and their lists are disjoint ranges of `out`, in order: split
        // off each song's range, then fill them in parallel.
        let mut parts: Vec<(usize, &mut [f32])> = Vec::with_capacity(rows.len());
        let (mut rest, mut at) = (out.as_mut_slice(), 0usize);
        for &h in rows {
            let h = h as usize;
            let (a, e) = (ptr[h] as usize, ptr[h + 1] as usize);
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(a - at);
            let (list, tail) = tail.split_at_mut(e - a);
            parts.push((h, list));
            (rest, at) = (tail, e);
        }
        parts.into_par_iter().for_each(|(h, list)| {
            let a = ptr[h] as usize;
            for (k, o) in list.iter_mut().enumerate() {
                // `w · exp(l)`: the order of the elementwise ops this replaces (same values).
                *o = w[a + k] * lw[h * keep + k].exp();
            }
        });
        Ok(tensor(vec![neighbours.nnz()], out))
    }

    fn topk_rows_kernel(&self, x: &CpuTensor, k: usize) -> OpResult<(CpuTensor, CpuTensor)> {
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
