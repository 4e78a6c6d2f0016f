//! Ops the recommender models need beyond the core set: the IndRNN and LSTM recurrences
//! (forward and backward), dropout masks shared over time, Adam, gradient-norm clipping,
//! clamping, and top-k selection for ranking. Implemented by both backends; tested by the same
//! op suite (`tests/ops/model.rs`).

pub use super::{Csr, LstmCache, ProductGrad, MAX_TOPK};

use super::check::{self, SeqDims};
use super::{BTensor, Backend, IndexPlan, OpResult, Tensor};
use crate::error::OpError;

/// The integer finaliser of the dropout hash ("lowbias32": xor-shifts and wrapping multiplies).
fn dropout_mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The uniform draw in `[0, 1)` behind entry `index` of the dropout mask of `(seed, stream)`: a
/// counter-based hash, so any entry is drawn without the others and the GPU
/// (`shaders/dropout.wgsl`) computes the same bits. A multiple of 2^-24, exact in `f32`.
pub fn dropout_uniform(seed: u32, stream: u32, index: u32) -> f32 {
    let key = dropout_mix(seed ^ dropout_mix(stream ^ 0x9e37_79b9));
    (dropout_mix(key ^ dropout_mix(index)) >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A layer's dropout with the mask shared over time ([`ModelOps::dropout_time`]'s arguments):
/// keep probability in `(0, 1]`, the step's seed and the layer's stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeDrop {
    pub keep: f32,
    pub seed: u32,
    pub stream: u32,
}

/// Hyper-parameters of one Adam step (decoupled weight decay, AdamW).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based step number, for bias correction.
    pub t: u32,
    /// Clamp the updated values into `[lo, hi]` in the same pass (IndRNN's recurrent weights).
    pub clamp: Option<(f32, f32)>,
}

impl AdamStep {
    /// Adam's bias corrections at this step, 1 − β₁ᵗ and 1 − β₂ᵗ.
    pub fn bias_corrections(&self) -> (f32, f32) {
        (
            1.0 - self.beta1.powi(self.t as i32),
            1.0 - self.beta2.powi(self.t as i32),
        )
    }

    /// The contract of the steps' settings, for `op`'s error: `t ≥ 1` (the bias corrections
    /// divide by `1 − βᵗ`), `β₁` and `β₂` in `[0, 1)`, a learning rate, `ε` and weight decay
    /// finite and `≥ 0`, and ordered clamp bounds. Anything else turned every updated value into
    /// NaN or ±inf (differently on each backend) or panicked in the CPU's `f32::clamp`.
    pub fn check(&self, op: &'static str) -> OpResult<()> {
        let bad = |detail: String| Err(OpError::Invalid { op, detail });
        if self.t == 0 {
            return bad("step t is 0; Adam counts steps from 1".into());
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(format!("{name} {b} is outside [0, 1)"));
            }
        }
        for (name, v) in [
            ("lr", self.lr),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} {v} must be finite and >= 0"));
            }
        }
        if let Some((lo, hi)) = self.clamp {
            check::clamp_bounds(op, lo, hi)?;
        }
        Ok(())
    }

    /// The clamp's bounds, `(−∞, ∞)` without one.
    pub fn bounds(&self) -> (f32, f32) {
        self.clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY))
    }
}

/// One parameter of [`ModelOps::adam_many`]: value, gradient (zeroed by the step) and moments,
/// all of the same length, with the step's settings for it.
pub struct AdamSlot<'a, S> {
    pub p: &'a mut Tensor<S>,
    pub g: &'a mut Tensor<S>,
    pub m: &'a mut Tensor<S>,
    pub v: &'a mut Tensor<S>,
    pub step: AdamStep,
}

pub trait ModelOps: Backend {
    // ==== what a backend implements ==========================================================

    /// Whether a table's optimizer step forms its catalogue gradient where it is used
    /// ([`ModelOps::adam_table`]) instead of whole (`Params`' product gradients). Hardware GPUs
    /// do by default, the CPU and software GPU adapters do not (`AINRNN_FUSED_TABLE` says
    /// otherwise on either backend); the formed path is the reference the fused one is tested
    /// against.
    fn fused_table(&self) -> bool {
        false
    }

    /// Kernel of [`ModelOps::table_rows`].
    fn table_rows_kernel(
        &self,
        grad: &ProductGrad<'_, Self::Storage>,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)>;

    /// Kernel of [`ModelOps::adam_table`].
    #[allow(clippy::too_many_arguments)]
    fn adam_table_kernel(
        &self,
        p: &mut BTensor<Self>,
        m: &mut BTensor<Self>,
        v: &mut BTensor<Self>,
        grad: &ProductGrad<'_, Self::Storage>,
        rows: &BTensor<Self>,
        scale: &BTensor<Self>,
        step: &AdamStep,
    ) -> OpResult<()>;

    /// Kernel of [`ModelOps::indrnn_forward`].
    fn indrnn_forward_kernel(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
        d: &SeqDims,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::indrnn_backward_parts`]: `(∂pre, ∂u's partial sums [B, H])`.
    fn indrnn_backward_kernel(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
        h: &BTensor<Self>,
        dh: &BTensor<Self>,
        d: &SeqDims,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)>;

    /// Kernel of [`ModelOps::indrnn_forward_drop`]: by default the recurrence, then
    /// [`ModelOps::dropout_time`] of its output (the CPU's reference); the GPU fuses them.
    fn indrnn_forward_drop_kernel(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
        d: &SeqDims,
        drop: TimeDrop,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        let h = self.indrnn_forward_kernel(pre, u, mask, d)?;
        let out = self.dropout_time_kernel(&h, drop.keep, drop.seed, drop.stream)?;
        Ok((h, out))
    }

    /// Kernel of [`ModelOps::indrnn_backward_drop_parts`]: by default
    /// [`ModelOps::dropout_time`] of `dout`, then the backward pass; the GPU fuses them.
    #[allow(clippy::too_many_arguments)]
    fn indrnn_backward_drop_kernel(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
        h: &BTensor<Self>,
        dout: &BTensor<Self>,
        d: &SeqDims,
        drop: TimeDrop,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        let dh = self.dropout_time_kernel(dout, drop.keep, drop.seed, drop.stream)?;
        self.indrnn_backward_kernel(pre, u, mask, h, &dh, d)
    }

    /// Kernel of [`ModelOps::lstm_forward`].
    fn lstm_forward_kernel(
        &self,
        xw: BTensor<Self>,
        wh: &BTensor<Self>,
        mask: &BTensor<Self>,
        d: &SeqDims,
    ) -> OpResult<LstmCache<BTensor<Self>>>;

    /// Kernel of [`ModelOps::lstm_backward`].
    fn lstm_backward_kernel(
        &self,
        cache: &LstmCache<BTensor<Self>>,
        wh: &BTensor<Self>,
        mask: &BTensor<Self>,
        dh: &BTensor<Self>,
        d: &SeqDims,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::time_mask_mul`].
    fn time_mask_mul_kernel(
        &self,
        x: &BTensor<Self>,
        mask: &BTensor<Self>,
        d: &SeqDims,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::dropout_mask`] (`keep` in `(0, 1]`, `1 / keep` given).
    fn dropout_mask_kernel(
        &self,
        shape: &[usize],
        keep: f32,
        keep_scale: f32,
        seed: u32,
        stream: u32,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::tanh_backward`].
    fn tanh_backward_kernel(
        &self,
        y: &BTensor<Self>,
        dy: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::clamp`].
    fn clamp_kernel(&self, x: &mut BTensor<Self>, lo: f32, hi: f32) -> OpResult<()>;

    /// Kernel of [`ModelOps::sum_squares_into`].
    fn sum_squares_into_kernel(&self, acc: &mut BTensor<Self>, x: &BTensor<Self>) -> OpResult<()>;

    /// Kernel of [`ModelOps::sum_squares_many_into`].
    fn sum_squares_many_into_kernel(
        &self,
        acc: &mut BTensor<Self>,
        xs: &[&BTensor<Self>],
    ) -> OpResult<()>;

    /// Kernel of [`ModelOps::clip_scale`].
    fn clip_scale_kernel(&self, sumsq: &BTensor<Self>, max_norm: f32) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::adam_step`].
    fn adam_step_kernel(
        &self,
        p: &mut BTensor<Self>,
        g: &BTensor<Self>,
        m: &mut BTensor<Self>,
        v: &mut BTensor<Self>,
        scale: &BTensor<Self>,
        step: &AdamStep,
    ) -> OpResult<()>;

    /// Kernel of [`ModelOps::adam_many`]: by default one [`ModelOps::adam_step`] per slot, then
    /// its gradient zeroed; the GPU does all slots in one dispatch when they are packed.
    fn adam_many_kernel(
        &self,
        slots: &mut [AdamSlot<'_, Self::Storage>],
        scale: &BTensor<Self>,
    ) -> OpResult<()> {
        for s in slots {
            self.adam_step_kernel(s.p, s.g, s.m, s.v, scale, &s.step)?;
            self.fill_zero(s.g)?;
        }
        Ok(())
    }

    /// Kernel of [`ModelOps::dropout_time`]; by default the mask, then the product.
    fn dropout_time_kernel(
        &self,
        x: &BTensor<Self>,
        keep: f32,
        seed: u32,
        stream: u32,
    ) -> OpResult<BTensor<Self>> {
        let (b, h) = (x.shape()[0], x.cols());
        let mask = self.dropout_mask_kernel(&[b, h], keep, 1.0 / keep, seed, stream)?;
        self.time_mask_mul(x, &mask)
    }

    /// Kernel of [`ModelOps::mask_entries`].
    fn mask_entries_kernel(&self, x: &mut BTensor<Self>, csr: &Csr<Self::Storage>) -> OpResult<()>;

    /// Kernel of [`ModelOps::csr_axpy`] (`csr` has values).
    fn csr_axpy_kernel(
        &self,
        x: &mut BTensor<Self>,
        csr: &Csr<Self::Storage>,
        alpha: &BTensor<Self>,
    ) -> OpResult<()>;

    /// Kernel of [`ModelOps::csr_row_dot`] (`csr` has values).
    fn csr_row_dot_kernel(
        &self,
        g: &BTensor<Self>,
        csr: &Csr<Self::Storage>,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::neighbour_axpy`].
    fn neighbour_axpy_kernel(
        &self,
        x: &mut BTensor<Self>,
        lo: usize,
        history: &Csr<Self::Storage>,
        neighbours: &Csr<Self::Storage>,
        gamma: &BTensor<Self>,
    ) -> OpResult<()>;

    /// Kernel of [`ModelOps::neighbour_entry_dot`].
    fn neighbour_entry_dot_kernel(
        &self,
        g: &BTensor<Self>,
        lo: usize,
        history: &Csr<Self::Storage>,
        neighbours: &Csr<Self::Storage>,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::neighbour_pair_grad`].
    fn neighbour_pair_grad_kernel(
        &self,
        out: &mut BTensor<Self>,
        g: &BTensor<Self>,
        lo: usize,
        history: &Csr<Self::Storage>,
        neighbours: &Csr<Self::Storage>,
    ) -> OpResult<()>;

    /// Kernel of [`ModelOps::neighbour_pair_scale`].
    fn neighbour_pair_scale_kernel(
        &self,
        neighbours: &Csr<Self::Storage>,
        log_weights: &BTensor<Self>,
        songs: &IndexPlan<Self::Storage>,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::neighbour_row_dot`].
    fn neighbour_row_dot_kernel(
        &self,
        g: &BTensor<Self>,
        lo: usize,
        history: &Csr<Self::Storage>,
        neighbours: &Csr<Self::Storage>,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`ModelOps::topk_rows`] (`k` in `1..=MAX_TOPK`).
    fn topk_rows_kernel(
        &self,
        x: &BTensor<Self>,
        k: usize,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)>;

    /// Kernel of [`ModelOps::mask_groups`].
    fn mask_groups_kernel(
        &self,
        x: &mut BTensor<Self>,
        groups: &BTensor<Self>,
        banned: &BTensor<Self>,
    ) -> OpResult<()>;

    // ==== the op API: contract, then kernel ==================================================

    /// IndRNN recurrence over a batch of sequences: for each `(b, j)`,
    /// `h[b,t,j] = relu(pre[b,t,j] + u[j] · h[b,t-1,j])` where `mask[b,t] > 0`, else `h[b,t-1,j]`;
    /// `h[b,-1,j] = 0`. `pre` `[B, L, H]` (input projection + bias), `u` `[H]`, `mask` `[B, L]`.
    fn indrnn_forward(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>> {
        let d = check::indrnn_forward(pre, u, mask)?;
        self.indrnn_forward_kernel(pre, u, mask, &d)
    }

    /// Backward of [`ModelOps::indrnn_forward`] given its output `h` and the gradient `dh`
    /// (`[B, L, H]`): returns `(∂pre [B, L, H], ∂u [H])`. ∂u is reduced over batch and time
    /// without float atomics (per-sequence partial sums, then a column sum).
    fn indrnn_backward(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
        h: &BTensor<Self>,
        dh: &BTensor<Self>,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        let (dpre, du_part) = self.indrnn_backward_parts(pre, u, mask, h, dh)?;
        Ok((dpre, self.sum_cols(&du_part)?))
    }

    /// [`ModelOps::indrnn_backward`] with ∂u left as its per-sequence partial sums `[B, H]`, for
    /// a caller that sums them straight into an accumulator (`Backend::sum_cols_into`).
    fn indrnn_backward_parts(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
        h: &BTensor<Self>,
        dh: &BTensor<Self>,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        let d = check::indrnn_backward(pre, u, mask, h, dh)?;
        self.indrnn_backward_kernel(pre, u, mask, h, dh, &d)
    }

    /// [`ModelOps::indrnn_forward`] and the layer's dropout in one: returns `h` and
    /// `dropout_time(h, drop)` (`[B, L, H]` each; `h` is what the backward pass reads).
    fn indrnn_forward_drop(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
        drop: TimeDrop,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        let d = check::indrnn_forward(pre, u, mask)?;
        check::dropout_time(pre, drop.keep)?;
        self.indrnn_forward_drop_kernel(pre, u, mask, &d, drop)
    }

    /// [`ModelOps::indrnn_backward_parts`] given `dout`, the gradient of the dropped output of
    /// [`ModelOps::indrnn_forward_drop`]: the same as that with `dh = dropout_time(dout, drop)`.
    fn indrnn_backward_drop_parts(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
        h: &BTensor<Self>,
        dout: &BTensor<Self>,
        drop: TimeDrop,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        let d = check::indrnn_backward(pre, u, mask, h, dout)?;
        check::dropout_time(dout, drop.keep)?;
        self.indrnn_backward_drop_kernel(pre, u, mask, h, dout, &d, drop)
    }

    /// LSTM layer. `xw` `[B, L, 4H]` holds `x_t W_x + b` for every step (gate blocks i, f, g, o),
    /// `wh` `[H, 4H]`, `mask` `[B, L]` (masked steps carry `h` and `c` unchanged). `xw` is taken:
    /// the CPU computes the gates in its buffer when no one else holds it.
    fn lstm_forward(
        &self,
        xw: BTensor<Self>,
        wh: &BTensor<Self>,
        mask: &BTensor<Self>,
    ) -> OpResult<LstmCache<BTensor<Self>>> {
        let d = check::lstm_forward(&xw, wh, mask)?;
        self.lstm_forward_kernel(xw, wh, mask, &d)
    }

    /// Backward of [`ModelOps::lstm_forward`]: returns ∂(pre-activation gates) `[B, L, 4H]`, from
    /// which the caller forms ∂W_x, ∂b, ∂x (matmuls) and ∂W_h = h_prevᵀ · ∂gates.
    fn lstm_backward(
        &self,
        cache: &LstmCache<BTensor<Self>>,
        wh: &BTensor<Self>,
        mask: &BTensor<Self>,
        dh: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>> {
        let d = check::lstm_backward(cache, wh, mask, dh)?;
        self.lstm_backward_kernel(cache, wh, mask, dh, &d)
    }

    /// `x[b, t, j] · mask[b, j]`: a dropout mask shared over time. `x` `[B, L, H]`, `mask` `[B, H]`.
    fn time_mask_mul(&self, x: &BTensor<Self>, mask: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        let d = check::time_mask_mul(x, mask)?;
        self.time_mask_mul_kernel(x, mask, &d)
    }

    /// A dropout mask of `shape` drawn on the device: entry `i` is `1 / keep` when
    /// [`dropout_uniform`]`(seed, stream, i) < keep`, else 0. Both backends draw the same bits, so
    /// a training run is reproducible by seed on either; `stream` tells apart the masks of one
    /// seed (e.g. the layers of one step). `keep` must be in `(0, 1]`.
    fn dropout_mask(
        &self,
        shape: &[usize],
        keep: f32,
        seed: u32,
        stream: u32,
    ) -> OpResult<BTensor<Self>> {
        check::dropout_mask(shape, keep)?;
        self.dropout_mask_kernel(shape, keep, 1.0 / keep, seed, stream)
    }

    /// `x[b, t, j] · mask[b, j]` with `mask = dropout_mask(&[B, H], keep, seed, stream)`, the
    /// mask drawn on the fly and never stored: a layer's dropout (forward, and its backward with
    /// the same arguments) in one pass. Equal to [`ModelOps::time_mask_mul`] with that mask.
    fn dropout_time(
        &self,
        x: &BTensor<Self>,
        keep: f32,
        seed: u32,
        stream: u32,
    ) -> OpResult<BTensor<Self>> {
        check::dropout_time(x, keep)?;
        self.dropout_time_kernel(x, keep, seed, stream)
    }

    /// `dy · (1 − y²)`: backward of tanh given its output.
    fn tanh_backward(&self, y: &BTensor<Self>, dy: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        check::same_len_f32("tanh_backward", y, dy)?;
        self.tanh_backward_kernel(y, dy)
    }

    /// Clamps every element into `[lo, hi]` in place.
    fn clamp(&self, x: &mut BTensor<Self>, lo: f32, hi: f32) -> OpResult<()> {
        x.expect_dtype("clamp", super::DType::F32)?;
        check::clamp_bounds("clamp", lo, hi)?;
        self.clamp_kernel(x, lo, hi)
    }

    /// `acc[0] += Σ x²` (for the global gradient norm); `acc` is `[1]`.
    fn sum_squares_into(&self, acc: &mut BTensor<Self>, x: &BTensor<Self>) -> OpResult<()> {
        check::sum_squares_into(acc, x)?;
        self.sum_squares_into_kernel(acc, x)
    }

    /// `acc[0] += Σ x²` over every tensor of `xs` (all the gradients of a step: the GPU folds
    /// several per dispatch); `acc` is `[1]`.
    fn sum_squares_many_into(
        &self,
        acc: &mut BTensor<Self>,
        xs: &[&BTensor<Self>],
    ) -> OpResult<()> {
        for x in xs {
            check::sum_squares_into(acc, x)?;
        }
        self.sum_squares_many_into_kernel(acc, xs)
    }

    /// `min(1, max_norm / (sqrt(sumsq[0]) + 1e-6))` as a `[1]` tensor, computed on the device so the
    /// clipping needs no read-back; a NaN/Inf norm gives NaN (detected by the caller on the loss).
    fn clip_scale(&self, sumsq: &BTensor<Self>, max_norm: f32) -> OpResult<BTensor<Self>> {
        check::clip_scale(sumsq, max_norm)?;
        self.clip_scale_kernel(sumsq, max_norm)
    }

    /// One AdamW step in place: `g' = g · scale[0]`; `m = β1 m + (1−β1) g'`; `v = β2 v + (1−β2) g'²`;
    /// `p −= lr (m̂ / (sqrt(v̂) + ε) + wd · p)`; then `p = clamp(p, lo, hi)` when `step.clamp` is
    /// set (one pass: no separate [`ModelOps::clamp`]).
    fn adam_step(
        &self,
        p: &mut BTensor<Self>,
        g: &BTensor<Self>,
        m: &mut BTensor<Self>,
        v: &mut BTensor<Self>,
        scale: &BTensor<Self>,
        step: &AdamStep,
    ) -> OpResult<()> {
        check::adam_step(p, g, m, v, scale)?;
        step.check("adam_step")?;
        self.adam_step_kernel(p, g, m, v, scale, step)
    }

    /// [`ModelOps::adam_step`] on every slot, and each slot's gradient zeroed (ready for the
    /// next step's accumulation). On the GPU, slots whose tensors come from
    /// [`Backend::zeros_packed`] (values, gradients and moments each packed in the same order)
    /// take one dispatch in all.
    fn adam_many(
        &self,
        slots: &mut [AdamSlot<'_, Self::Storage>],
        scale: &BTensor<Self>,
    ) -> OpResult<()> {
        for s in slots.iter() {
            check::adam_step(s.p, s.g, s.m, s.v, scale)?;
            s.step.check("adam_many")?;
        }
        self.adam_many_kernel(slots, scale)
    }

    /// The rows of a product gradient that its plan names, whole: `(x [S, D], corr [S, 1])`,
    /// `x[s]` the gradient's row `seg_rows[s]` (product part plus routed rows) and `corr[s] =
    /// |x[s]|² − |product part|²`, what the norm of the product alone misses there. Empty
    /// (`S = 0`) without a plan.
    fn table_rows(
        &self,
        grad: &ProductGrad<'_, Self::Storage>,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        check::product_grad(grad)?;
        self.table_rows_kernel(grad)
    }

    /// [`ModelOps::adam_step`] on a table `[N, D]` whose gradient is the product gradient
    /// `grad`, with its named rows taken from `rows` (from [`ModelOps::table_rows`]): each
    /// element's gradient is formed where it is used, the whole gradient never is.
    #[allow(clippy::too_many_arguments)]
    fn adam_table(
        &self,
        p: &mut BTensor<Self>,
        m: &mut BTensor<Self>,
        v: &mut BTensor<Self>,
        grad: &ProductGrad<'_, Self::Storage>,
        rows: &BTensor<Self>,
        scale: &BTensor<Self>,
        step: &AdamStep,
    ) -> OpResult<()> {
        check::product_grad(grad)?;
        check::adam_table(p, m, v, grad, rows, scale)?;
        step.check("adam_table")?;
        self.adam_table_kernel(p, m, v, grad, rows, scale, step)
    }

    /// Checks a CSR block `[rows, ncols]` on the host (`row_ptr` `[rows + 1]` starts at 0, does
    /// not decrease and ends at the number of entries; columns below `ncols`; one finite value
    /// per entry, when given) and uploads it.
    fn csr(
        &self,
        rows: usize,
        ncols: usize,
        row_ptr: &[u32],
        cols: &[u32],
        vals: Option<&[f32]>,
    ) -> OpResult<Csr<Self::Storage>> {
        let sorted = check::csr(rows, ncols, row_ptr, cols, vals)?;
        Ok(Csr {
            row_ptr: self.upload_u32(row_ptr, &[rows + 1])?,
            cols: self.upload_u32(cols, &[cols.len()])?,
            vals: vals.map(|v| self.upload_f32(v, &[v.len()])).transpose()?,
            rows,
            ncols,
            sorted,
            max_row: row_ptr
                .windows(2)
                .map(|w| (w[1] - w[0]) as usize)
                .max()
                .unwrap_or(0),
        })
    }

    /// Sets `x[r, c] = -inf` for the entries `(r, c)` of `csr` (exclude known items from a
    /// ranking); the block's rows are `x`'s rows and its columns within `x`'s.
    fn mask_entries(&self, x: &mut BTensor<Self>, csr: &Csr<Self::Storage>) -> OpResult<()> {
        check::mask_entries(x, csr)?;
        self.mask_entries_kernel(x, csr)
    }

    /// `x[r, c] += alpha[0] · v` for the entries `(r, c, v)` of `csr` (columns unique within a
    /// row), scaled by a `[1]` device scalar: e.g. the item-neighbourhood scores of a catalogue
    /// tile times their learned weight.
    fn csr_axpy(
        &self,
        x: &mut BTensor<Self>,
        csr: &Csr<Self::Storage>,
        alpha: &BTensor<Self>,
    ) -> OpResult<()> {
        check::csr_axpy(x, csr, alpha)?;
        self.csr_axpy_kernel(x, csr, alpha)
    }

    /// `out[r] = Σ g[r, c] · v` over row `r`'s entries `(c, v)` of `csr`: `[R]` (the gradient of
    /// [`ModelOps::csr_axpy`]'s scalar, per row).
    fn csr_row_dot(&self, g: &BTensor<Self>, csr: &Csr<Self::Storage>) -> OpResult<BTensor<Self>> {
        check::csr_row_dot(g, csr)?;
        self.csr_row_dot_kernel(g, csr)
    }

    /// The item-neighbourhood term of a catalogue tile, built on the device from lists uploaded
    /// once: `x[r, c] += gamma[0] · v · w` for every history song `h` of row `r` (the entries
    /// `(h, v)` of `history`'s row `r`, in order; `v` = 1 when the block has no values) and
    /// every neighbour `(lo + c, w)` of `h` inside the tile (`neighbours`' row `h`). `x` is
    /// `[rows, cols]`, the songs `lo .. lo + cols`.
    fn neighbour_axpy(
        &self,
        x: &mut BTensor<Self>,
        lo: usize,
        history: &Csr<Self::Storage>,
        neighbours: &Csr<Self::Storage>,
        gamma: &BTensor<Self>,
    ) -> OpResult<()> {
        check::neighbour_axpy(x, lo, history, neighbours, gamma)?;
        self.neighbour_axpy_kernel(x, lo, history, neighbours, gamma)
    }

    /// The gradient of [`ModelOps::neighbour_axpy`]'s scalar, per row: `out[r] = Σ g[r, c] · v · w`
    /// over the same (history entry, neighbour in the tile) pairs. `[rows]`.
    fn neighbour_row_dot(
        &self,
        g: &BTensor<Self>,
        lo: usize,
        history: &Csr<Self::Storage>,
        neighbours: &Csr<Self::Storage>,
    ) -> OpResult<BTensor<Self>> {
        check::neighbour_tile("neighbour_row_dot", g, lo, history, neighbours)?;
        self.neighbour_row_dot_kernel(g, lo, history, neighbours)
    }

    /// Per history entry `e` (song `h` of row `r`): `out[e] = Σ g[r, c] · w` over the neighbours
    /// `(lo + c, w)` of `h` inside the tile, the history's own values left out: with `gamma`,
    /// the gradient of [`ModelOps::neighbour_axpy`] with respect to the entry's value. `[nnz]`.
    fn neighbour_entry_dot(
        &self,
        g: &BTensor<Self>,
        lo: usize,
        history: &Csr<Self::Storage>,
        neighbours: &Csr<Self::Storage>,
    ) -> OpResult<BTensor<Self>> {
        check::neighbour_tile("neighbour_entry_dot", g, lo, history, neighbours)?;
        self.neighbour_entry_dot_kernel(g, lo, history, neighbours)
    }

    /// The gradient of [`ModelOps::neighbour_axpy`] with respect to the log of each list value,
    /// over γ, per history entry and list position: `out[e, j − ptr[h]] += v · w_j · g[r, c]`
    /// for every history entry `e = (h, v)` of row `r` and every neighbour `j = (lo + c, w_j)`
    /// of `h` inside the tile (`ptr[h]`: the start of `h`'s list). `out` is `[nnz, keep]` with
    /// `keep` at least the longest list; summed over the tiles and then by song (a scatter by
    /// the entries' songs) it is the gradient of per-pair log-weights `[songs, keep]`.
    fn neighbour_pair_grad(
        &self,
        out: &mut BTensor<Self>,
        g: &BTensor<Self>,
        lo: usize,
        history: &Csr<Self::Storage>,
        neighbours: &Csr<Self::Storage>,
    ) -> OpResult<()> {
        check::neighbour_pair_grad(out, g, lo, history, neighbours)?;
        self.neighbour_pair_grad_kernel(out, g, lo, history, neighbours)
    }

    /// The list values with per-pair weights applied, for the lists of some songs only:
    /// `out[j] = w_j · exp(log_weights[h, j − ptr[h]])` for every entry `j` of the list of each
    /// song `h` among `songs`' distinct rows (`ptr[h]`: the start of `h`'s list), 0 elsewhere.
    /// `[nnz]`, values for `neighbours` (`Csr::with_vals`). Why only some: a training step reads
    /// the lists of its history songs alone, a few hundred of the catalogue's; weighing every
    /// list (1.2 M values on HetRec) took two thirds of the CPU's step. `log_weights` is
    /// `[songs, keep]`, `keep` at least the longest list.
    fn neighbour_pair_scale(
        &self,
        neighbours: &Csr<Self::Storage>,
        log_weights: &BTensor<Self>,
        songs: &IndexPlan<Self::Storage>,
    ) -> OpResult<BTensor<Self>> {
        check::neighbour_pair_scale(neighbours, log_weights, songs)?;
        self.neighbour_pair_scale_kernel(neighbours, log_weights, songs)
    }

    /// The `k` largest entries of every row, in descending order, ties broken by the lower
    /// column; rows with fewer than `k` finite entries are padded with `-inf` and index
    /// `u32::MAX`. Returns `(values [R, k] f32, indices [R, k] u32)`. `k` ≤ 32.
    fn topk_rows(&self, x: &BTensor<Self>, k: usize) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        check::topk_rows(x, k)?;
        self.topk_rows_kernel(x, k)
    }

    /// Sets `x[r, c] = -inf` wherever column `c`'s group `groups[c]` is in row `r`'s bit set
    /// `banned[r]` (bit `g % 32` of word `g / 32`): a list's full genres taken out of its scores
    /// before [`ModelOps::topk_rows`]. `x` `[R, C]` f32, `groups` `[C]` u32 (a group at or past
    /// `32 · W`, such as `u32::MAX`, is in no set), `banned` `[R, W]` u32.
    fn mask_groups(
        &self,
        x: &mut BTensor<Self>,
        groups: &BTensor<Self>,
        banned: &BTensor<Self>,
    ) -> OpResult<()> {
        check::mask_groups(x, groups, banned)?;
        self.mask_groups_kernel(x, groups, banned)
    }
}
