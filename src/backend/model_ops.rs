//! Ops the recommender models need beyond the core set: the IndRNN and LSTM recurrences
//! (forward and backward), dropout masks shared over time, Adam, gradient-norm clipping,
//! clamping, and top-k selection for ranking. Implemented by both backends; tested by the same
//! op suite (`tests/ops/model.rs`).

use super::{BTensor, Backend, OpResult};

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
}

/// What the LSTM forward keeps for its backward pass.
#[derive(Clone, Debug)]
pub struct LstmCache<T> {
    /// Hidden states `[B, L, H]`.
    pub h: T,
    /// Hidden states shifted by one step (`h_{t-1}`, zero at t = 0), `[B, L, H]`; used for ∂W_h.
    pub h_prev: T,
    /// Cell states `[B, L, H]`.
    pub c: T,
    /// Activated gates `[B, L, 4H]` in the order input, forget, cell (tanh), output.
    pub gates: T,
}

pub trait ModelOps: Backend {
    /// IndRNN recurrence over a batch of sequences: for each `(b, j)`,
    /// `h[b,t,j] = relu(pre[b,t,j] + u[j] · h[b,t-1,j])` where `mask[b,t] > 0`, else `h[b,t-1,j]`;
    /// `h[b,-1,j] = 0`. `pre` `[B, L, H]` (input projection + bias), `u` `[H]`, `mask` `[B, L]`.
    fn indrnn_forward(
        &self,
        pre: &BTensor<Self>,
        u: &BTensor<Self>,
        mask: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>>;

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
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)>;

    /// LSTM layer. `xw` `[B, L, 4H]` holds `x_t W_x + b` for every step (gate blocks i, f, g, o),
    /// `wh` `[H, 4H]`, `mask` `[B, L]` (masked steps carry `h` and `c` unchanged). `xw` is taken:
    /// the CPU computes the gates in its buffer when no one else holds it.
    fn lstm_forward(
        &self,
        xw: BTensor<Self>,
        wh: &BTensor<Self>,
        mask: &BTensor<Self>,
    ) -> OpResult<LstmCache<BTensor<Self>>>;

    /// Backward of [`ModelOps::lstm_forward`]: returns ∂(pre-activation gates) `[B, L, 4H]`, from
    /// which the caller forms ∂W_x, ∂b, ∂x (matmuls) and ∂W_h = h_prevᵀ · ∂gates.
    fn lstm_backward(
        &self,
        cache: &LstmCache<BTensor<Self>>,
        wh: &BTensor<Self>,
        mask: &BTensor<Self>,
        dh: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>>;

    /// `x[b, t, j] · mask[b, j]`: a dropout mask shared over time. `x` `[B, L, H]`, `mask` `[B, H]`.
    fn time_mask_mul(&self, x: &BTensor<Self>, mask: &BTensor<Self>) -> OpResult<BTensor<Self>>;

    /// `dy · (1 − y²)`: backward of tanh given its output.
    fn tanh_backward(&self, y: &BTensor<Self>, dy: &BTensor<Self>) -> OpResult<BTensor<Self>>;

    /// Clamps every element into `[lo, hi]` in place.
    fn clamp(&self, x: &mut BTensor<Self>, lo: f32, hi: f32) -> OpResult<()>;

    /// `acc[0] += Σ x²` (for the global gradient norm); `acc` is `[1]`.
    fn sum_squares_into(&self, acc: &mut BTensor<Self>, x: &BTensor<Self>) -> OpResult<()>;

    /// `min(1, max_norm / (sqrt(sumsq[0]) + 1e-6))` as a `[1]` tensor, computed on the device so the
    /// clipping needs no read-back; a NaN/Inf norm gives NaN (detected by the caller on the loss).
    fn clip_scale(&self, sumsq: &BTensor<Self>, max_norm: f32) -> OpResult<BTensor<Self>>;

    /// One AdamW step in place: `g' = g · scale[0]`; `m = β1 m + (1−β1) g'`; `v = β2 v + (1−β2) g'²`;
    /// `p −= lr (m̂ / (sqrt(v̂) + ε) + wd · p)`.
    fn adam_step(
        &self,
        p: &mut BTensor<Self>,
        g: &BTensor<Self>,
        m: &mut BTensor<Self>,
        v: &mut BTensor<Self>,
        scale: &BTensor<Self>,
        step: &AdamStep,
    ) -> OpResult<()>;

    /// Sets `x[r, cols[j]] = -inf` for `j` in `row_ptr[r]..row_ptr[r+1]` (exclude known items
    /// from a ranking). `row_ptr` `[R+1]` and `cols` are u32 tensors.
    fn mask_entries(
        &self,
        x: &mut BTensor<Self>,
        row_ptr: &BTensor<Self>,
        cols: &BTensor<Self>,
    ) -> OpResult<()>;

    /// `x[r, cols[j]] += alpha[0] · vals[j]` for `j` in `row_ptr[r]..row_ptr[r+1]`: adds a sparse
    /// CSR block (columns unique within a row) scaled by a `[1]` device scalar, e.g. the
    /// item-neighbourhood scores of a catalogue tile times their learned weight.
    fn csr_axpy(
        &self,
        x: &mut BTensor<Self>,
        row_ptr: &BTensor<Self>,
        cols: &BTensor<Self>,
        vals: &BTensor<Self>,
        alpha: &BTensor<Self>,
    ) -> OpResult<()>;

    /// `out[r] = Σ_j g[r, cols[j]] · vals[j]` over row `r`'s CSR entries: `[R]` (the gradient of
    /// [`ModelOps::csr_axpy`]'s scalar, per row).
    fn csr_row_dot(
        &self,
        g: &BTensor<Self>,
        row_ptr: &BTensor<Self>,
        cols: &BTensor<Self>,
        vals: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>>;

    /// The `k` largest entries of every row, in descending order, ties broken by the lower
    /// column; rows with fewer than `k` finite entries are padded with `-inf` and index
    /// `u32::MAX`. Returns `(values [R, k] f32, indices [R, k] u32)`. `k` ≤ 32.
    fn topk_rows(&self, x: &BTensor<Self>, k: usize) -> OpResult<(BTensor<Self>, BTensor<Self>)>;
}

/// The largest `k` the top-k kernels support (private arrays in the shader).
pub const MAX_TOPK: usize = 32;
