//! Host side of the model kernels (`shaders/{indrnn,lstm,optim,topk}.wgsl` and the time-mask and
//! tanh-backward entries of `elementwise.wgsl`).

use std::sync::Arc;

use super::context::Work;
use super::elementwise::{EwParams, ELEMENTWISE};
use super::pipeline::Kernel;
use super::shader::{Shader, WORKGROUP_SIZE};
use super::{make_unique, raw, GpuBackend, GpuBuffer, GpuStorage, GpuTensor};
use crate::backend::check::SeqDims;
use crate::backend::model_ops::{
    AdamSlot, AdamStep, Csr, LstmCache, ModelOps, ProductGrad, TimeDrop,
};
use crate::backend::{Backend, DType, IndexPlan, OpResult};

crate::kernel_params! {
    /// Parameters of `lstm.wgsl` (`t`: the time step).
    struct SeqParams {
        batch: u32,
        steps: u32,
        hidden: u32,
        t: u32,
    }
}

crate::kernel_params! {
    /// Parameters of `indrnn.wgsl` (the dropout fields for the `*_drop` entry points).
    struct IndRnnParams {
        batch: u32,
        steps: u32,
        hidden: u32,
        seed: u32,
        stream: u32,
        keep: f32,
        keep_scale: f32,
        _pad: u32,
    }
}

impl IndRnnParams {
    fn new(d: &SeqDims, drop: Option<TimeDrop>) -> Self {
        let drop = drop.unwrap_or(TimeDrop {
            keep: 1.0,
            seed: 0,
            stream: 0,
        });
        IndRnnParams {
            batch: d.batch() as u32,
            steps: d.steps() as u32,
            hidden: d.hidden() as u32,
            seed: drop.seed,
            stream: drop.stream,
            keep: drop.keep,
            // The same f32 as `dropout_time`'s, so the fused products are the same.
            keep_scale: 1.0 / drop.keep,
            ..Default::default()
        }
    }
}

crate::kernel_params! {
    /// Parameters of `optim.wgsl`.
    struct OptParams {
        n: u32,
        nseg: u32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        bias1: f32,
        bias2: f32,
        lo: f32,
        hi: f32,
        max_norm: f32,
        base: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

impl OptParams {
    /// The settings an Adam step shares by all its parameters (learning rate, moments' decay
    /// and bias corrections); the rest zero.
    fn step(s: &AdamStep) -> Self {
        let (bias1, bias2) = s.bias_corrections();
        OptParams {
            lr: s.lr,
            beta1: s.beta1,
            beta2: s.beta2,
            eps: s.eps,
            bias1,
            bias2,
            ..Default::default()
        }
    }
}

crate::kernel_params! {
    /// Parameters of `topk.wgsl`.
    struct TopkParams {
        rows: u32,
        cols: u32,
        seg: u32,
        nseg: u32,
        k: u32,
        _pad: [u32; 3],
    }
}

crate::kernel_params! {
    /// Parameters of `neighbours.wgsl`.
    struct NeighbourParams {
        rows: u32,
        cols: u32,
        lo: u32,
        weighted: u32,
        keep: u32,
        _pad: [u32; 3],
    }
}

crate::kernel_params! {
    /// Parameters of `dropout.wgsl`.
    struct DropoutParams {
        n: u32,
        seed: u32,
        stream: u32,
        hidden: u32,
        keep: f32,
        keep_scale: f32,
        inner: u32,
        _pad2: u32,
    }
}

pub static DROPOUT: Shader = crate::wgsl_shader!("dropout", DropoutParams, bindings: ["out", "x"]);

crate::kernel_params! {
    /// Parameters of `sumsq.wgsl`: the length of each input (0: unused).
    struct SumSqParams {
        n0: u32,
        n1: u32,
        n2: u32,
        n3: u32,
        n4: u32,
        n5: u32,
        n6: u32,
        _pad: u32,
    }
}

/// The gradient inputs of `sumsq.wgsl`.
const SUMSQ_BINDINGS: [&str; SUMSQ_INPUTS] = ["x0", "x1", "x2", "x3", "x4", "x5", "x6"];
const SUMSQ_INPUTS: usize = 7;

pub static SUMSQ: Shader = crate::wgsl_shader!(
    "sumsq",
    SumSqParams,
    bindings: ["x0", "x1", "x2", "x3", "x4", "x5", "x6", "out"],
);

pub static NEIGHBOURS: Shader = crate::wgsl_shader!(
    "neighbours",
    NeighbourParams,
    bindings: [
        "hist_ptr", "hist", "nbr_ptr", "nbr_cols", "nbr_vals", "gamma", "x", "g", "dots",
        "hist_w",
    ],
);

pub static INDRNN: Shader = crate::wgsl_shader!(
    "indrnn",
    IndRnnParams,
    bindings: ["pre", "u", "mask", "h", "dh", "dpre", "du_part", "h_out"],
);

pub static LSTM: Shader = crate::wgsl_shader!(
    "lstm",
    SeqParams,
    bindings: ["xw", "wh", "mask", "h", "c", "gates", "hprev", "dh", "dgates", "carry"],
);

pub static OPTIM: Shader = crate::wgsl_shader!(
    "optim",
    OptParams,
    bindings: [
        "param", "grad", "m", "v", "scale", "sumsq", "out", "grad_rw", "segs", "blocks",
    ],
);

pub static TOPK: Shader = crate::wgsl_shader!(
    "topk",
    TopkParams,
    bindings: [
        "x", "ids", "out_vals", "out_ids", "row_ptr", "cols", "xm", "vals", "alpha", "dots",
        "groups", "banned",
    ],
    overrides: ["FIRST"],
);

/// Largest gradient whose sum of squares one workgroup folds (`sumsq.wgsl`);
/// longer ones take the multi-workgroup fold, which fills the GPU.
const SUMSQ_ONE_GROUP: usize = 1 << 16;

/// Entries scanned by one top-k invocation.
const TOPK_SEG: usize = 256;

fn csr_params(rows: usize, cols: usize) -> TopkParams {
    TopkParams {
        rows: rows as u32,
        cols: cols as u32,
        seg: 0,
        nseg: 0,
        k: 0,
        _pad: [0; 3],
    }
}

/// The list bindings of `neighbours.wgsl`; with `hist_w` (the kernels that weigh the history
/// entries) the history's values too.
fn neighbour_bindings<'a>(
    history: &'a Csr<GpuStorage>,
    neighbours: &'a Csr<GpuStorage>,
    op: &'static str,
    hist_w: bool,
) -> OpResult<Vec<(&'static str, &'a GpuBuffer)>> {
    let mut b = vec![
        ("hist_ptr", raw(history.row_ptr())),
        ("hist", raw(history.cols())),
        ("nbr_ptr", raw(neighbours.row_ptr())),
        ("nbr_cols", raw(neighbours.cols())),
        ("nbr_vals", raw(neighbours.expect_vals(op)?)),
    ];
    if hist_w {
        // Without values the kernels read none (`weighted` 0): the columns stand in for the
        // binding.
        b.push(("hist_w", raw(history.vals().unwrap_or(history.cols()))));
    }
    Ok(b)
}

/// What a tile kernel of `neighbours.wgsl` moves, at most: per history entry its song, list
/// range, value and output; per list entry (each list taken as long as the longest) its column
/// and value and the tile's cell, read (`row_dot`, `entry_dot`) or read and written (`axpy`),
/// and for `pair_grad` also its output cell read and written. Not the lists and the tile it
/// binds: a batch walks a few hundred of the catalogue's lists.
fn neighbour_work(entry: &str, history: &Csr<GpuStorage>, neighbours: &Csr<GpuStorage>) -> Work {
    let per_pair = match entry {
        "axpy" => 4,
        "pair_grad" => 5,
        _ => 3,
    };
    Work::words((history.nnz() * (5 + neighbours.max_row() * per_pair)) as f64)
}

impl GpuBackend {
    /// One workgroup per row of the tile `t` (`[rows, cols]` at song `lo`), or per history
    /// entry (`groups`, for `entry_dot` and `pair_grad`); `keep`: the row length of
    /// `pair_grad`'s output (0 for the other kernels).
    #[allow(clippy::too_many_arguments)]
    fn neighbour_dispatch(
        &self,
        entry: &'static str,
        t: &GpuTensor,
        lo: usize,
        weighted: bool,
        keep: usize,
        groups: usize,
        bindings: &[(&str, &GpuBuffer)],
        work: Work,
    ) -> OpResult<()> {
        let p = NeighbourParams {
            rows: t.rows() as u32,
            cols: t.cols() as u32,
            lo: lo as u32,
            weighted: weighted as u32,
            keep: keep as u32,
            _pad: [0; 3],
        };
        let grid = self.ctx.grid(entry, groups as u64)?;
        Ok(self
            .ctx
            .dispatch_work(&Kernel::new(&NEIGHBOURS, entry), &p, bindings, grid, work)?)
    }

    /// `neighbour_row_dot` (`entry` "row_dot", one dot per row, the history's values applied)
    /// or `neighbour_entry_dot` ("entry_dot", one per history entry, without them): `[len]`.
    fn neighbour_dots(
        &self,
        entry: &'static str,
        len: usize,
        g: &GpuTensor,
        lo: usize,
        history: &Csr<GpuStorage>,
        neighbours: &Csr<GpuStorage>,
    ) -> OpResult<GpuTensor> {
        if g.is_empty() || history.nnz() == 0 || neighbours.nnz() == 0 {
            return self.zeros(&[len]);
        }
        let weighted = entry == "row_dot";
        let op = if weighted {
            "neighbour_row_dot"
        } else {
            "neighbour_entry_dot"
        };
        let out = self.empty(&[len], DType::F32, op)?;
        let mut b = neighbour_bindings(history, neighbours, op, weighted)?;
        b.extend([("g", raw(g)), ("dots", raw(&out))]);
        let groups = if weighted { g.rows() } else { history.nnz() };
        let weighted = weighted && history.vals().is_some();
        let work = neighbour_work(entry, history, neighbours);
        self.neighbour_dispatch(entry, g, lo, weighted, 0, groups, &b, work)?;
        Ok(out)
    }

    /// IndRNN's recurrence: `(h, h)`, or with `drop` `(h, dropped h)` from one pass
    /// (`forward_drop`).
    fn indrnn_forward_with(
        &self,
        pre: &GpuTensor,
        u: &GpuTensor,
        mask: &GpuTensor,
        d: &SeqDims,
        drop: Option<TimeDrop>,
    ) -> OpResult<(GpuTensor, GpuTensor)> {
        let h = self.empty(pre.shape(), DType::F32, "indrnn h")?;
        let out = match drop {
            Some(_) => Some(self.empty(pre.shape(), DType::F32, "indrnn dropped h")?),
            None => None,
        };
        let mut bindings = vec![
            ("pre", raw(pre)),
            ("u", raw(u)),
            ("mask", raw(mask)),
            ("h", raw(&h)),
        ];
        let entry = match &out {
            Some(o) => {
                bindings.push(("h_out", raw(o)));
                "forward_drop"
            }
            None => "forward",
        };
        self.ctx.dispatch(
            &Kernel::new(&INDRNN, entry),
            &IndRnnParams::new(d, drop),
            &bindings,
            self.grid("indrnn_forward", (d.batch() * d.hidden()) as u64)?,
        )?;
        let out = out.unwrap_or_else(|| h.clone());
        Ok((h, out))
    }

    /// IndRNN's backward pass; with `drop`, `dh` is the gradient of the dropped output and the
    /// kernel applies the mask to it (`backward_drop`).
    #[allow(clippy::too_many_arguments)]
    fn indrnn_backward_with(
        &self,
        pre: &GpuTensor,
        u: &GpuTensor,
        mask: &GpuTensor,
        hs: &GpuTensor,
        dh: &GpuTensor,
        d: &SeqDims,
        drop: Option<TimeDrop>,
    ) -> OpResult<(GpuTensor, GpuTensor)> {
        let dpre = self.empty(pre.shape(), DType::F32, "indrnn dpre")?;
        let du_part = self.empty(&[d.batch(), d.hidden()], DType::F32, "indrnn du partials")?;
        let entry = if drop.is_some() {
            "backward_drop"
        } else {
            "backward"
        };
        self.ctx.dispatch(
            &Kernel::new(&INDRNN, entry),
            &IndRnnParams::new(d, drop),
            &[
                ("u", raw(u)),
                ("mask", raw(mask)),
                ("h", raw(hs)),
                ("dh", raw(dh)),
                ("dpre", raw(&dpre)),
                ("du_part", raw(&du_part)),
            ],
            self.grid("indrnn_backward", (d.batch() * d.hidden()) as u64)?,
        )?;
        Ok((dpre, du_part))
    }
}

impl ModelOps for GpuBackend {
    fn fused_table(&self) -> bool {
        self.fused_table
    }

    fn table_rows_kernel(
        &self,
        grad: &ProductGrad<'_, GpuStorage>,
    ) -> OpResult<(GpuTensor, GpuTensor)> {
        super::table::table_rows(self, grad)
    }

    fn adam_table_kernel(
        &self,
        p: &mut GpuTensor,
        m: &mut GpuTensor,
        v: &mut GpuTensor,
        grad: &ProductGrad<'_, GpuStorage>,
        rows: &GpuTensor,
        scale: &GpuTensor,
        step: &AdamStep,
    ) -> OpResult<()> {
        super::table::adam_table(self, p, m, v, grad, rows, scale, step)
    }

    fn indrnn_forward_kernel(
        &self,
        pre: &GpuTensor,
        u: &GpuTensor,
        mask: &GpuTensor,
        d: &SeqDims,
    ) -> OpResult<GpuTensor> {
        Ok(self.indrnn_forward_with(pre, u, mask, d, None)?.0)
    }

    fn indrnn_forward_drop_kernel(
        &self,
        pre: &GpuTensor,
        u: &GpuTensor,
        mask: &GpuTensor,
        d: &SeqDims,
        drop: TimeDrop,
    ) -> OpResult<(GpuTensor, GpuTensor)> {
        self.indrnn_forward_with(pre, u, mask, d, Some(drop))
    }

    fn indrnn_backward_kernel(
        &self,
        pre: &GpuTensor,
        u: &GpuTensor,
        mask: &GpuTensor,
        hs: &GpuTensor,
        dh: &GpuTensor,
        d: &SeqDims,
    ) -> OpResult<(GpuTensor, GpuTensor)> {
        self.indrnn_backward_with(pre, u, mask, hs, dh, d, None)
    }

    fn indrnn_backward_drop_kernel(
        &self,
        pre: &GpuTensor,
        u: &GpuTensor,
        mask: &GpuTensor,
        hs: &GpuTensor,
        dout: &GpuTensor,
        d: &SeqDims,
        drop: TimeDrop,
    ) -> OpResult<(GpuTensor, GpuTensor)> {
        self.indrnn_backward_with(pre, u, mask, hs, dout, d, Some(drop))
    }

    fn lstm_forward_kernel(
        &self,
        xw: GpuTensor,
        wh: &GpuTensor,
        mask: &GpuTensor,
        d: &SeqDims,
    ) -> OpResult<LstmCache<GpuTensor>> {
        let xw = &xw;
        let (b, l, h) = (d.batch(), d.steps(), d.hidden());
        let shape = [b, l, h];
        let cache = LstmCache {
            h: self.empty(&shape, DType::F32, "lstm h")?,
            h_prev: self.empty(&shape, DType::F32, "lstm h_prev")?,
            c: self.empty(&shape, DType::F32, "lstm c")?,
            gates: self.empty(xw.shape(), DType::F32, "lstm gates")?,
        };
        let bindings = [
            ("xw", raw(xw)),
            ("wh", raw(wh)),
            ("mask", raw(mask)),
            ("h", raw(&cache.h)),
            ("c", raw(&cache.c)),
            ("gates", raw(&cache.gates)),
            ("hprev", raw(&cache.h_prev)),
        ];
        self.lstm_run(("seq_forward", "step_forward"), d, &bindings, false)?;
        Ok(cache)
    }

    fn lstm_backward_kernel(
        &self,
        cache: &LstmCache<GpuTensor>,
        wh: &GpuTensor,
        mask: &GpuTensor,
        dh: &GpuTensor,
        d: &SeqDims,
    ) -> OpResult<GpuTensor> {
        let (b, h) = (d.batch(), d.hidden());
        let dg = self.empty(cache.gates.shape(), DType::F32, "lstm dgates")?;
        // The per-step entry carries ∂h and ∂c between dispatches in a buffer.
        let carry = match self.whole_sequence_grid("seq_backward", b, h)? {
            Some(_) => None,
            None => Some(self.zeros(&[b, 2 * h])?),
        };
        let mut bindings = vec![
            ("wh", raw(wh)),
            ("mask", raw(mask)),
            ("c", raw(&cache.c)),
            ("gates", raw(&cache.gates)),
            ("dh", raw(dh)),
            ("dgates", raw(&dg)),
        ];
        bindings.extend(carry.as_ref().map(|c| ("carry", raw(c))));
        self.lstm_run(("seq_backward", "step_backward"), d, &bindings, true)?;
        Ok(dg)
    }

    fn time_mask_mul_kernel(
        &self,
        x: &GpuTensor,
        mask: &GpuTensor,
        d: &SeqDims,
    ) -> OpResult<GpuTensor> {
        let (l, h) = (d.steps(), d.hidden());
        let out = self.empty(x.shape(), DType::F32, "time_mask_mul out")?;
        if x.is_empty() {
            return Ok(out);
        }
        let p = EwParams {
            n: x.len() as u32,
            nb: h as u32,
            alpha: 0.0,
            beta: 0.0,
            inner: (l * h) as u32,
            _pad: [0; 3],
        };
        self.ctx.dispatch(
            &Kernel::new(&ELEMENTWISE, "time_mask_mul"),
            &p,
            &[("a", raw(x)), ("b", raw(mask)), ("out", raw(&out))],
            self.grid("time_mask_mul", x.len() as u64)?,
        )?;
        Ok(out)
    }

    fn dropout_mask_kernel(
        &self,
        shape: &[usize],
        keep: f32,
        keep_scale: f32,
        seed: u32,
        stream: u32,
    ) -> OpResult<GpuTensor> {
        let out = self.empty(shape, DType::F32, "dropout mask")?;
        if out.is_empty() {
            return Ok(out);
        }
        let p = DropoutParams {
            n: out.len() as u32,
            seed,
            stream,
            keep,
            keep_scale,
            ..Default::default()
        };
        self.ctx.dispatch(
            &Kernel::new(&DROPOUT, "mask"),
            &p,
            &[("out", raw(&out))],
            self.grid("dropout_mask", out.len() as u64)?,
        )?;
        Ok(out)
    }

    fn dropout_time_kernel(
        &self,
        x: &GpuTensor,
        keep: f32,
        seed: u32,
        stream: u32,
    ) -> OpResult<GpuTensor> {
        let out = self.empty(x.shape(), DType::F32, "dropout out")?;
        if out.is_empty() {
            return Ok(out);
        }
        let (l, h) = (x.shape()[1], x.cols());
        let p = DropoutParams {
            n: x.len() as u32,
            seed,
            stream,
            hidden: h as u32,
            keep,
            keep_scale: 1.0 / keep,
            inner: (l * h) as u32,
            ..Default::default()
        };
        self.ctx.dispatch(
            &Kernel::new(&DROPOUT, "time_drop"),
            &p,
            &[("out", raw(&out)), ("x", raw(x))],
            self.grid("dropout_time", x.len() as u64)?,
        )?;
        Ok(out)
    }

    fn tanh_backward_kernel(&self, y: &GpuTensor, dy: &GpuTensor) -> OpResult<GpuTensor> {
        let out = self.empty(dy.shape(), DType::F32, "tanh_backward out")?;
        if dy.is_empty() {
            return Ok(out);
        }
        let p = EwParams {
            n: dy.len() as u32,
            nb: 1,
            alpha: 0.0,
            beta: 0.0,
            inner: 0,
            _pad: [0; 3],
        };
        self.ctx.dispatch(
            &Kernel::new(&ELEMENTWISE, "tanh_backward"),
            &p,
            &[("a", raw(y)), ("b", raw(dy)), ("out", raw(&out))],
            self.grid("tanh_backward", dy.len() as u64)?,
        )?;
        Ok(out)
    }

    fn clamp_kernel(&self, x: &mut GpuTensor, lo: f32, hi: f32) -> OpResult<()> {
        make_unique(&self.ctx, x)?;
        if x.is_empty() {
            return Ok(());
        }
        let p = OptParams {
            n: x.len() as u32,
            lo,
            hi,
            ..Default::default()
        };
        self.ctx.dispatch(
            &Kernel::new(&OPTIM, "clamp_values"),
            &p,
            &[("param", raw(x))],
            self.grid("clamp", x.len() as u64)?,
        )?;
        Ok(())
    }

    fn sum_squares_into_kernel(&self, acc: &mut GpuTensor, x: &GpuTensor) -> OpResult<()> {
        self.sum_squares_many_into_kernel(acc, &[x])
    }

    fn sum_squares_many_into_kernel(&self, acc: &mut GpuTensor, xs: &[&GpuTensor]) -> OpResult<()> {
        make_unique(&self.ctx, acc)?;
        let mut small = Vec::new();
        for &x in xs {
            if x.len() > SUMSQ_ONE_GROUP {
                let s = super::reduce::fold_rows(self, x, Some(x), 1, x.len(), false, 1.0)?;
                self.axpy(acc, &s, 1.0)?;
            } else if !x.is_empty() {
                small.push(x);
            }
        }
        // Seven gradients per dispatch (seven inputs and the accumulator: the storage-binding
        // limit the backend asks for).
        for group in small.chunks(SUMSQ_INPUTS) {
            let n = |i: usize| group.get(i).map_or(0, |t| t.len() as u32);
            let p = SumSqParams {
                n0: n(0),
                n1: n(1),
                n2: n(2),
                n3: n(3),
                n4: n(4),
                n5: n(5),
                n6: n(6),
                _pad: 0,
            };
            let mut bindings: Vec<(&str, &GpuBuffer)> = SUMSQ_BINDINGS
                .iter()
                .enumerate()
                .map(|(i, &name)| (name, raw(group.get(i).copied().unwrap_or(group[0]))))
                .collect();
            bindings.push(("out", raw(acc)));
            self.ctx.dispatch(
                &Kernel::new(&SUMSQ, "sum_squares"),
                &p,
                &bindings,
                [1, 1, 1],
            )?;
        }
        Ok(())
    }

    fn clip_scale_kernel(&self, sumsq: &GpuTensor, max_norm: f32) -> OpResult<GpuTensor> {
        let out = self.empty(&[1], DType::F32, "clip scale")?;
        let p = OptParams {
            n: 1,
            max_norm,
            ..Default::default()
        };
        self.ctx.dispatch(
            &Kernel::new(&OPTIM, "clip_scale"),
            &p,
            &[("sumsq", raw(sumsq)), ("out", raw(&out))],
            [1, 1, 1],
        )?;
        Ok(out)
    }

    fn adam_step_kernel(
        &self,
        p: &mut GpuTensor,
        g: &GpuTensor,
        m: &mut GpuTensor,
        v: &mut GpuTensor,
        scale: &GpuTensor,
        s: &AdamStep,
    ) -> OpResult<()> {
        for t in [&mut *p, &mut *m, &mut *v] {
            make_unique(&self.ctx, t)?;
        }
        if p.is_empty() {
            return Ok(());
        }
        let (lo, hi) = s.bounds();
        let prm = OptParams {
            n: p.len() as u32,
            weight_decay: s.weight_decay,
            lo,
            hi,
            ..OptParams::step(s)
        };
        // The value and both moments read and written, the gradient read.
        self.ctx.dispatch_work(
            &Kernel::new(&OPTIM, "adam"),
            &prm,
            &[
                ("param", raw(p)),
                ("grad", raw(g)),
                ("m", raw(m)),
                ("v", raw(v)),
                ("scale", raw(scale)),
            ],
            self.grid("adam_step", p.len() as u64)?,
            Work::words(7.0 * p.len() as f64),
        )?;
        Ok(())
    }

    fn adam_many_kernel(
        &self,
        slots: &mut [AdamSlot<'_, GpuStorage>],
        scale: &GpuTensor,
    ) -> OpResult<()> {
        // One dispatch per packed group: slots of a group are consecutive (parameters pack in
        // order), so each run of slots over the same value buffer is tried as one.
        let parent = |s: &AdamSlot<'_, GpuStorage>| s.p.storage().parent().map(Arc::as_ptr);
        let mut rest = slots;
        while !rest.is_empty() {
            let first = parent(&rest[0]);
            let n = match first {
                Some(_) => rest.iter().take_while(|s| parent(s) == first).count(),
                None => 1,
            };
            let (run, tail) = rest.split_at_mut(n);
            rest = tail;
            match packed_segments(run) {
                Some((parents, segs)) => self.adam_packed(run, &parents, segs, scale)?,
                None => {
                    for s in run {
                        self.adam_step_kernel(s.p, s.g, s.m, s.v, scale, &s.step)?;
                        self.fill_zero(s.g)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn mask_entries_kernel(&self, x: &mut GpuTensor, csr: &Csr<GpuStorage>) -> OpResult<()> {
        let (row_ptr, cols) = (csr.row_ptr(), csr.cols());
        let rows = x.rows();
        make_unique(&self.ctx, x)?;
        let p = TopkParams {
            rows: rows as u32,
            cols: x.cols() as u32,
            seg: 0,
            nseg: 0,
            k: 0,
            _pad: [0; 3],
        };
        self.ctx.dispatch(
            &Kernel::new(&TOPK, "mask_entries"),
            &p,
            &[
                ("row_ptr", raw(row_ptr)),
                ("cols", raw(cols)),
                ("xm", raw(x)),
            ],
            self.grid("mask_entries", rows as u64)?,
        )?;
        Ok(())
    }

    fn mask_groups_kernel(
        &self,
        x: &mut GpuTensor,
        groups: &GpuTensor,
        banned: &GpuTensor,
    ) -> OpResult<()> {
        let (rows, cols) = (x.rows(), x.cols());
        if rows * cols == 0 || banned.cols() == 0 {
            return Ok(());
        }
        make_unique(&self.ctx, x)?;
        let p = TopkParams {
            rows: rows as u32,
            cols: cols as u32,
            seg: banned.cols() as u32,
            nseg: 0,
            k: 0,
            _pad: [0; 3],
        };
        self.ctx.dispatch(
            &Kernel::new(&TOPK, "mask_groups"),
            &p,
            &[
                ("groups", raw(groups)),
                ("banned", raw(banned)),
                ("xm", raw(x)),
            ],
            self.grid("mask_groups", (rows * cols) as u64)?,
        )?;
        Ok(())
    }

    fn csr_axpy_kernel(
        &self,
        x: &mut GpuTensor,
        csr: &Csr<GpuStorage>,
        alpha: &GpuTensor,
    ) -> OpResult<()> {
        let (row_ptr, cols, vals) = (csr.row_ptr(), csr.cols(), csr.expect_vals("csr_axpy")?);
        let rows = x.rows();
        if cols.is_empty() {
            return Ok(()); // nothing to add (and no empty buffer to bind)
        }
        make_unique(&self.ctx, x)?;
        let p = csr_params(rows, x.cols());
        self.ctx.dispatch(
            &Kernel::new(&TOPK, "csr_axpy"),
            &p,
            &[
                ("row_ptr", raw(row_ptr)),
                ("cols", raw(cols)),
                ("xm", raw(x)),
                ("vals", raw(vals)),
                ("alpha", raw(alpha)),
            ],
            self.grid("csr_axpy", rows as u64)?,
        )?;
        Ok(())
    }

    fn csr_row_dot_kernel(&self, g: &GpuTensor, csr: &Csr<GpuStorage>) -> OpResult<GpuTensor> {
        let (row_ptr, cols, vals) = (csr.row_ptr(), csr.cols(), csr.expect_vals("csr_row_dot")?);
        let rows = g.rows();
        if cols.is_empty() {
            return self.zeros(&[rows]);
        }
        let out = self.empty(&[rows], DType::F32, "csr_row_dot")?;
        let p = csr_params(rows, g.cols());
        self.ctx.dispatch(
            &Kernel::new(&TOPK, "csr_row_dot"),
            &p,
            &[
                ("x", raw(g)),
                ("row_ptr", raw(row_ptr)),
                ("cols", raw(cols)),
                ("vals", raw(vals)),
                ("dots", raw(&out)),
            ],
            self.grid("csr_row_dot", rows as u64)?,
        )?;
        Ok(out)
    }

    fn neighbour_axpy_kernel(
        &self,
        x: &mut GpuTensor,
        lo: usize,
        history: &Csr<GpuStorage>,
        neighbours: &Csr<GpuStorage>,
        gamma: &GpuTensor,
    ) -> OpResult<()> {
        if x.is_empty() || history.nnz() == 0 || neighbours.nnz() == 0 {
            return Ok(()); // nothing to add (and no empty buffer to bind)
        }
        make_unique(&self.ctx, x)?;
        let mut b = neighbour_bindings(history, neighbours, "neighbour_axpy", true)?;
        b.extend([("gamma", raw(gamma)), ("x", raw(x))]);
        let weighted = history.vals().is_some();
        let work = neighbour_work("axpy", history, neighbours);
        self.neighbour_dispatch("axpy", x, lo, weighted, 0, x.rows(), &b, work)
    }

    fn neighbour_pair_grad_kernel(
        &self,
        out: &mut GpuTensor,
        g: &GpuTensor,
        lo: usize,
        history: &Csr<GpuStorage>,
        neighbours: &Csr<GpuStorage>,
    ) -> OpResult<()> {
        if g.is_empty() || out.is_empty() || history.nnz() == 0 || neighbours.nnz() == 0 {
            return Ok(());
        }
        make_unique(&self.ctx, out)?;
        let mut b = neighbour_bindings(history, neighbours, "neighbour_pair_grad", true)?;
        b.extend([("g", raw(g)), ("dots", raw(out))]);
        let weighted = history.vals().is_some();
        let (entries, keep) = (history.nnz(), out.cols());
        let work = neighbour_work("pair_grad", history, neighbours);
        self.neighbour_dispatch("pair_grad", g, lo, weighted, keep, entries, &b, work)
    }

    fn neighbour_pair_scale_kernel(
        &self,
        neighbours: &Csr<GpuStorage>,
        log_weights: &GpuTensor,
        songs: &IndexPlan<GpuStorage>,
    ) -> OpResult<GpuTensor> {
        let op = "neighbour_pair_scale";
        let out = self.zeros(&[neighbours.nnz()])?;
        if songs.segments == 0 || neighbours.nnz() == 0 {
            return Ok(out);
        }
        let p = NeighbourParams {
            rows: songs.segments as u32,
            cols: 0,
            lo: 0,
            weighted: 0,
            keep: log_weights.cols() as u32,
            _pad: [0; 3],
        };
        let grid = self.ctx.grid("pair_scale", songs.segments as u64)?;
        // Per song its list range, and per list entry its value and log-weight read and the
        // scaled value written: the batch's songs' lists, not the catalogue's bound.
        let work = Work::words((songs.segments * (3 + 3 * neighbours.max_row())) as f64);
        self.ctx.dispatch_work(
            &Kernel::new(&NEIGHBOURS, "pair_scale"),
            &p,
            &[
                ("hist", raw(&songs.seg_rows)),
                ("nbr_ptr", raw(neighbours.row_ptr())),
                ("nbr_vals", raw(neighbours.expect_vals(op)?)),
                ("g", raw(log_weights)),
                ("dots", raw(&out)),
            ],
            grid,
            work,
        )?;
        Ok(out)
    }

    fn neighbour_row_dot_kernel(
        &self,
        g: &GpuTensor,
        lo: usize,
        history: &Csr<GpuStorage>,
        neighbours: &Csr<GpuStorage>,
    ) -> OpResult<GpuTensor> {
        self.neighbour_dots("row_dot", g.rows(), g, lo, history, neighbours)
    }

    fn neighbour_entry_dot_kernel(
        &self,
        g: &GpuTensor,
        lo: usize,
        history: &Csr<GpuStorage>,
        neighbours: &Csr<GpuStorage>,
    ) -> OpResult<GpuTensor> {
        self.neighbour_dots("entry_dot", history.nnz(), g, lo, history, neighbours)
    }

    fn topk_rows_kernel(&self, x: &GpuTensor, k: usize) -> OpResult<(GpuTensor, GpuTensor)> {
        let rows = x.rows();
        let mut cols = x.cols();
        let mut vals = x.clone();
        let mut ids: Option<GpuTensor> = None;
        // Bound in the first pass (the shader uses it statically) but never read there; it must not
        // alias an output binding.
        let no_ids = self.upload_u32(&[0], &[1])?;
        loop {
            let nseg = cols.div_ceil(TOPK_SEG).max(1);
            let out_v = self.empty(&[rows, nseg * k], DType::F32, "topk values")?;
            let out_i = self.empty(&[rows, nseg * k], DType::U32, "topk ids")?;
            let p = TopkParams {
                rows: rows as u32,
                cols: cols as u32,
                seg: TOPK_SEG as u32,
                nseg: nseg as u32,
                k: k as u32,
                _pad: [0; 3],
            };
            // The first pass has implicit ids; `ids` is still statically bound.
            let id_in = ids.as_ref().unwrap_or(&no_ids);
            self.ctx.dispatch(
                &Kernel::new(&TOPK, "select_pass").with("FIRST", ids.is_none() as u32),
                &p,
                &[
                    ("x", raw(&vals)),
                    ("ids", raw(id_in)),
                    ("out_vals", raw(&out_v)),
                    ("out_ids", raw(&out_i)),
                ],
                self.grid("topk_rows", (rows * nseg) as u64)?,
            )?;
            if nseg == 1 {
                return Ok((out_v, out_i));
            }
            vals = out_v;
            ids = Some(out_i);
            cols = nseg * k;
        }
    }
}

/// Words per entry of `adam_packed`'s parameter list (`Seg` in `optim.wgsl`).
const SEG_WORDS: usize = 8;

/// One packed parameter: start and end in elements, weight decay, clamp bounds.
type Seg = (u32, u32, f32, f32, f32);

/// When every slot's value, gradient and moments are ranges at one offset of four packed
/// buffers (the same four for all slots), nothing else holds them, and the slots differ only in
/// weight decay and clamp: those buffers and the slots' `(start, end, decay, lo, hi)` in
/// elements, sorted by start. A range shared with another tensor must keep copy-on-write, which
/// the fused pass would bypass.
fn packed_segments(slots: &[AdamSlot<'_, GpuStorage>]) -> Option<([GpuStorage; 4], Vec<Seg>)> {
    let first = slots.first()?;
    let parents =
        [&*first.p, &*first.g, &*first.m, &*first.v].map(|t| t.storage().parent().cloned());
    let [Some(pp), Some(pg), Some(pm), Some(pv)] = parents else {
        return None;
    };
    let parents = [pp, pg, pm, pv];
    let mut segs = Vec::with_capacity(slots.len());
    let same = |a: &AdamStep, b: &AdamStep| {
        (a.lr, a.beta1, a.beta2, a.eps, a.t) == (b.lr, b.beta1, b.beta2, b.eps, b.t)
    };
    for s in slots {
        if !same(&s.step, &first.step) {
            return None;
        }
        let ts = [&*s.p, &*s.g, &*s.m, &*s.v];
        let offset = ts[0].storage().offset();
        for (t, parent) in ts.iter().zip(&parents) {
            let st = t.storage();
            if Arc::strong_count(st) > 1
                || st.offset() != offset
                || !st.parent().is_some_and(|q| Arc::ptr_eq(q, parent))
            {
                return None;
            }
        }
        let start = u32::try_from(offset / 4).ok()?;
        if start % WORKGROUP_SIZE != 0 {
            return None;
        }
        let end = start.checked_add(u32::try_from(s.p.len()).ok()?)?;
        let (lo, hi) = s.step.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        segs.push((start, end, s.step.weight_decay, lo, hi));
    }
    segs.sort_by_key(|s| s.0);
    Some((parents, segs))
}

impl GpuBackend {
    /// Runs `lstm.wgsl` over a layer: the whole-sequence entry once when the layer fits a
    /// workgroup, else the per-step entry once a step (`rev`: last step first).
    fn lstm_run(
        &self,
        (seq, step): (&'static str, &'static str),
        d: &SeqDims,
        bindings: &[(&str, &GpuBuffer)],
        rev: bool,
    ) -> OpResult<()> {
        let (b, l, h) = (d.batch(), d.steps(), d.hidden());
        let params = |t: usize| SeqParams {
            batch: b as u32,
            steps: l as u32,
            hidden: h as u32,
            t: t as u32,
        };
        // No steps, nothing to run: the whole-sequence entries would still read a first step.
        if l == 0 {
            return Ok(());
        }
        if let Some(grid) = self.whole_sequence_grid(seq, b, h)? {
            let k = Kernel::new(&LSTM, seq);
            return Ok(self.ctx.dispatch(&k, &params(0), bindings, grid)?);
        }
        let k = Kernel::new(&LSTM, step);
        let grid = self.grid(step, (b * h) as u64)?;
        for i in 0..l {
            let t = if rev { l - 1 - i } else { i };
            self.ctx.dispatch(&k, &params(t), bindings, grid)?;
        }
        Ok(())
    }

    /// The grid of `lstm.wgsl`'s whole-sequence entries (a workgroup holds `WG / hidden` whole
    /// sequences), or `None` when a layer is wider than a workgroup or empty (per-step entries).
    fn whole_sequence_grid(
        &self,
        op: &'static str,
        batch: usize,
        hidden: usize,
    ) -> OpResult<Option<[u32; 3]>> {
        let wg = WORKGROUP_SIZE as usize;
        if hidden == 0 || hidden > wg || batch == 0 {
            return Ok(None);
        }
        let groups = batch.div_ceil(wg / hidden);
        Ok(Some(self.grid(op, (groups * wg) as u64)?))
    }

    /// One dispatch of `adam_packed` over the blocks the segments cover.
    fn adam_packed(
        &self,
        slots: &[AdamSlot<'_, GpuStorage>],
        parents: &[GpuStorage; 4],
        segs: Vec<Seg>,
        scale: &GpuTensor,
    ) -> OpResult<()> {
        let (Some(first), Some(s0)) = (slots.first(), segs.first()) else {
            return Ok(());
        };
        let wg = WORKGROUP_SIZE;
        let base = s0.0 - s0.0 % wg;
        let end = segs.iter().map(|s| s.1).max().unwrap_or(base);
        let nblocks = (end - base).div_ceil(wg);
        let mut words = Vec::with_capacity(segs.len() * SEG_WORDS);
        for &(start, stop, decay, lo, hi) in &segs {
            words.extend_from_slice(&[
                start,
                stop,
                decay.to_bits(),
                lo.to_bits(),
                hi.to_bits(),
                0,
                0,
                0,
            ]);
        }
        let tables = self.kept(&words, || {
            // Packed ranges start on workgroup boundaries (`zeros_packed`): one entry a block.
            let mut blocks = vec![u32::MAX; nblocks as usize];
            for (k, &(start, stop, ..)) in segs.iter().enumerate() {
                let (a, b) = ((start - base) / wg, (stop - base).div_ceil(wg));
                blocks[a as usize..b as usize].fill(k as u32);
            }
            Ok(vec![
                self.upload_u32(&words, &[words.len()])?,
                self.upload_u32(&blocks, &[blocks.len()])?,
            ])
        })?;
        let (segs_t, blocks_t) = (&tables[0], &tables[1]);
        let prm = OptParams {
            n: nblocks,
            nseg: segs.len() as u32,
            base,
            ..OptParams::step(&first.step)
        };
        let [p, g, m, v] = parents;
        // Every element updated has its value, gradient (zeroed) and moments read and written;
        // the buffers bound may hold parameters left out (a song table stepped on its own).
        let updated: u32 = segs.iter().map(|s| s.1 - s.0).sum();
        self.ctx.dispatch_work(
            &Kernel::new(&OPTIM, "adam_packed"),
            &prm,
            &[
                ("param", &**p),
                ("grad_rw", &**g),
                ("m", &**m),
                ("v", &**v),
                ("scale", raw(scale)),
                ("segs", raw(segs_t)),
                ("blocks", raw(blocks_t)),
            ],
            self.grid("adam_many", u64::from(nblocks) * u64::from(wg))?,
            Work::words(8.0 * f64::from(updated)),
        )?;
        Ok(())
    }
}
