//! Layers with explicit forward caches and backward passes, written against `ModelOps` so they
//! run unchanged on the CPU reference and on the GPU. The recurrent layers implement [`Layer`],
//! whose associated cache type ties each layer to what its forward pass kept.

use rand::Rng;

use super::params::{PId, Params};
use crate::backend::model_ops::{ModelOps, TimeDrop};
use crate::backend::{BTensor, BinaryOp, OpResult, UnaryOp};

/// `t` viewed with another shape (free: storage is shared and contiguous).
pub fn view<B: ModelOps>(t: &BTensor<B>, shape: &[usize]) -> OpResult<BTensor<B>> {
    t.clone().reshape(shape)
}

/// `y = Σ_i x_i W_i + b`: one linear map over the concatenation of several inputs, without
/// materialising the concatenation (dense connections feed every earlier output this way).
pub struct MultiLinear {
    pub weights: Vec<PId>,
    pub bias: Option<PId>,
    pub dims: Vec<usize>,
    pub out: usize,
}

impl MultiLinear {
    pub fn new<B: ModelOps>(
        b: &B,
        p: &mut Params<B>,
        rng: &mut impl Rng,
        name: &str,
        dims: &[usize],
        out: usize,
        bias: bool,
    ) -> OpResult<Self> {
        let fan_in: usize = dims.iter().sum();
        let a = (6.0 / (fan_in + out).max(1) as f32).sqrt();
        let mut weights = Vec::new();
        for (i, &d) in dims.iter().enumerate() {
            weights.push(p.uniform(b, rng, &format!("{name}.w{i}"), &[d, out], a, true)?);
        }
        let bias = if bias {
            Some(p.zeros(b, &format!("{name}.b"), &[out])?)
        } else {
            None
        };
        Ok(MultiLinear {
            weights,
            bias,
            dims: dims.to_vec(),
            out,
        })
    }

    /// `xs[i]` is `[N, dims[i]]`; returns `[N, out]`.
    pub fn forward<B: ModelOps>(
        &self,
        b: &B,
        p: &Params<B>,
        xs: &[&BTensor<B>],
    ) -> OpResult<BTensor<B>> {
        let w0 = p.get(self.weights[0]);
        let mut y = match self.bias {
            Some(bias) => b.matmul_bias(xs[0], w0, false, false, p.get(bias))?,
            None => b.matmul(xs[0], w0, false, false)?,
        };
        self.forward_onto(b, p, &xs[1..], 1, &mut y)?;
        Ok(y)
    }

    /// Adds `Σ_i xs[i] · W_{first + i}` onto `y` `[N, out]`, in the products (no bias): the
    /// blocks of the map from `first` on.
    pub fn forward_onto<B: ModelOps>(
        &self,
        b: &B,
        p: &Params<B>,
        xs: &[&BTensor<B>],
        first: usize,
        y: &mut BTensor<B>,
    ) -> OpResult<()> {
        for (x, &w) in xs.iter().zip(&self.weights[first..]) {
            b.matmul_into(y, x, p.get(w), false, false, 1.0, 1.0)?;
        }
        Ok(())
    }

    /// Accumulates ∂W_i and ∂b; returns ∂x_i for the inputs flagged in `need_dx`. Where
    /// `acc[i]` holds a gradient already (`rows × dims[i]` values, any shape), ∂x_i is added onto
    /// it inside the product and it comes back (viewed `[rows, dims[i]]`): a dense stack sums
    /// every later layer's ∂x into an earlier output without a separate add.
    pub fn backward<B: ModelOps>(
        &self,
        b: &B,
        p: &mut Params<B>,
        xs: &[&BTensor<B>],
        dy: &BTensor<B>,
        need_dx: &[bool],
        acc: Vec<Option<BTensor<B>>>,
    ) -> OpResult<Vec<Option<BTensor<B>>>> {
        let dxs = self.backward_part(b, p, xs, 0, dy, need_dx, acc)?;
        if let Some(bias) = self.bias {
            p.acc_grad_sum_cols(b, bias, dy)?;
        }
        Ok(dxs)
    }

    /// [`MultiLinear::backward`] for the blocks from `first` on (`xs[i]` is block `first + i`),
    /// without the bias: accumulates their ∂W and returns their ∂x as flagged.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_part<B: ModelOps>(
        &self,
        b: &B,
        p: &mut Params<B>,
        xs: &[&BTensor<B>],
        first: usize,
        dy: &BTensor<B>,
        need_dx: &[bool],
        mut acc: Vec<Option<BTensor<B>>>,
    ) -> OpResult<Vec<Option<BTensor<B>>>> {
        let mut dxs = Vec::with_capacity(xs.len());
        let blocks = self.weights[first..].iter().zip(&self.dims[first..]);
        for (i, (x, (&w, &dim))) in xs.iter().zip(blocks).enumerate() {
            let held = acc.get_mut(i).and_then(Option::take);
            let dx = match (need_dx.get(i).copied().unwrap_or(false), held) {
                (true, Some(a)) => {
                    let mut a = a.reshape(&[dy.rows(), dim])?;
                    b.matmul_into(&mut a, dy, p.get(w), false, true, 1.0, 1.0)?;
                    Some(a)
                }
                (true, None) => Some(b.matmul(dy, p.get(w), false, true)?),
                // Not asked for: what it held comes back untouched.
                (false, held) => held,
            };
            p.acc_grad_matmul(b, w, x, dy, true, false)?;
            dxs.push(dx);
        }
        Ok(dxs)
    }
}

impl MultiLinear {
    /// `xs[i]` of any shape holding `rows × dims[i]` values (e.g. `[B, L, d_i]`), viewed as
    /// `[rows, dims[i]]`: the per-step input projection of a recurrent layer.
    fn rows<B: ModelOps>(&self, xs: &[&BTensor<B>], rows: usize) -> OpResult<Vec<BTensor<B>>> {
        xs.iter()
            .zip(&self.dims)
            .map(|(x, &d)| view::<B>(x, &[rows, d]))
            .collect()
    }

    /// [`MultiLinear::forward`] over all `rows` steps of sequence inputs; returns `[rows, out]`.
    pub fn forward_rows<B: ModelOps>(
        &self,
        b: &B,
        p: &Params<B>,
        xs: &[&BTensor<B>],
        rows: usize,
    ) -> OpResult<BTensor<B>> {
        let flat = self.rows::<B>(xs, rows)?;
        self.forward(b, p, &flat.iter().collect::<Vec<_>>())
    }

    /// [`MultiLinear::backward`] for [`MultiLinear::forward_rows`]: `dy` is `[rows, out]`; ∂x_i
    /// come back flattened (`[rows, d_i]`).
    pub fn backward_rows<B: ModelOps>(
        &self,
        b: &B,
        p: &mut Params<B>,
        xs: &[&BTensor<B>],
        dy: &BTensor<B>,
        need_dx: &[bool],
        acc: Vec<Option<BTensor<B>>>,
    ) -> OpResult<Vec<Option<BTensor<B>>>> {
        let flat = self.rows::<B>(xs, dy.len() / self.out.max(1))?;
        self.backward(b, p, &flat.iter().collect::<Vec<_>>(), dy, need_dx, acc)
    }
}

/// What a recurrent layer reads: its inputs `xs[i]` `[B, L, d_i]`, the step mask `mask`
/// `[B, L]`, and its dropout when training (applied to its output, the mask shared over time).
pub struct SeqInputs<'a, B: ModelOps> {
    pub xs: &'a [&'a BTensor<B>],
    pub mask: &'a BTensor<B>,
    pub drop: Option<TimeDrop>,
}

/// The gradient reaching a layer's output `∂h` `[B, L, H]` (after its dropout), which inputs' gradients to return,
/// and what those gradients already hold (`acc[i]`, added onto; see [`MultiLinear::backward`]).
pub struct OutGrad<'a, B: ModelOps> {
    pub dh: &'a BTensor<B>,
    pub need_dx: &'a [bool],
    pub acc: Vec<Option<BTensor<B>>>,
}

/// A recurrent layer: forward over a whole sequence keeping a cache, backward from that cache.
pub trait Layer<B: ModelOps> {
    /// What the forward pass keeps for the backward pass (the output among it).
    type Cache;

    /// `x.xs[i]` `[B, L, d_i]` → the cache, holding the output `[B, L, H]` (after the dropout).
    fn forward(
        &self,
        b: &B,
        p: &Params<B>,
        x: &SeqInputs<'_, B>,
        shape: (usize, usize),
    ) -> OpResult<Self::Cache>;

    /// The layer's output `[B, L, H]` (after the dropout).
    fn output(cache: &Self::Cache) -> &BTensor<B>;

    /// Accumulates the layer's gradients given ∂output (the dropout's backward is the
    /// layer's); returns ∂x_i (flattened `[B·L, d_i]`) where asked.
    fn backward(
        &self,
        b: &B,
        p: &mut Params<B>,
        x: &SeqInputs<'_, B>,
        cache: &Self::Cache,
        g: OutGrad<'_, B>,
    ) -> OpResult<Vec<Option<BTensor<B>>>>;
}

/// Name and shape of a recurrent layer: inputs of widths `dims`, `hidden` units.
pub struct LayerSpec<'a> {
    pub name: &'a str,
    pub dims: &'a [usize],
    pub hidden: usize,
}

/// An IndRNN layer over the concatenation of its inputs.
pub struct IndRnnLayer {
    pub input: MultiLinear,
    pub u: PId,
    pub hidden: usize,
}

pub struct IndRnnCache<B: ModelOps> {
    pub pre: BTensor<B>,
    pub h: BTensor<B>,
    /// `h` after the dropout (the same tensor without it).
    pub out: BTensor<B>,
}

impl IndRnnLayer {
    /// Recurrent weights start uniform in `[0, u_max)` and are kept within `±u_max`, with
    /// `u_max = MAG^(1/T)` (IndRNN paper: gradients neither explode nor vanish over T steps).
    pub fn new<B: ModelOps>(
        b: &B,
        p: &mut Params<B>,
        rng: &mut impl Rng,
        spec: LayerSpec<'_>,
        u_max: f32,
    ) -> OpResult<Self> {
        let LayerSpec { name, dims, hidden } = spec;
        let input = MultiLinear::new(b, p, rng, &format!("{name}.in"), dims, hidden, true)?;
        let init = (0..hidden).map(|_| rng.random_range(0.0..u_max)).collect();
        let u = p.add(b, &format!("{name}.u"), &[hidden], init, false)?;
        p.list[u.0].clamp = Some((-u_max, u_max));
        Ok(IndRnnLayer { input, u, hidden })
    }
}

impl<B: ModelOps> Layer<B> for IndRnnLayer {
    type Cache = IndRnnCache<B>;

    fn forward(
        &self,
        b: &B,
        p: &Params<B>,
        x: &SeqInputs<'_, B>,
        (bs, l): (usize, usize),
    ) -> OpResult<IndRnnCache<B>> {
        let pre = view::<B>(
            &self.input.forward_rows(b, p, x.xs, bs * l)?,
            &[bs, l, self.hidden],
        )?;
        // With dropout, one pass writes h and the dropped h (`ModelOps::indrnn_forward_drop`).
        let (h, out) = match x.drop {
            Some(drop) => b.indrnn_forward_drop(&pre, p.get(self.u), x.mask, drop)?,
            None => {
                let h = b.indrnn_forward(&pre, p.get(self.u), x.mask)?;
                (h.clone(), h)
            }
        };
        Ok(IndRnnCache { pre, h, out })
    }

    fn output(cache: &IndRnnCache<B>) -> &BTensor<B> {
        &cache.out
    }

    fn backward(
        &self,
        b: &B,
        p: &mut Params<B>,
        x: &SeqInputs<'_, B>,
        cache: &IndRnnCache<B>,
        g: OutGrad<'_, B>,
    ) -> OpResult<Vec<Option<BTensor<B>>>> {
        let (pre, u, h) = (&cache.pre, p.get(self.u), &cache.h);
        let (dpre, du_part) = match x.drop {
            Some(drop) => b.indrnn_backward_drop_parts(pre, u, x.mask, h, g.dh, drop)?,
            None => b.indrnn_backward_parts(pre, u, x.mask, h, g.dh)?,
        };
        p.acc_grad_sum_cols(b, self.u, &du_part)?;
        let n = dpre.len() / self.hidden;
        self.input.backward_rows(
            b,
            p,
            x.xs,
            &view::<B>(&dpre, &[n, self.hidden])?,
            g.need_dx,
            g.acc,
        )
    }
}

/// An LSTM layer (gate order i, f, g, o).
pub struct LstmLayer {
    pub input: MultiLinear,
    pub wh: PId,
    pub hidden: usize,
}

pub struct LstmLayerCache<B: ModelOps> {
    pub inner: crate::backend::model_ops::LstmCache<BTensor<B>>,
    /// `h` after the dropout (the same tensor without it).
    pub out: BTensor<B>,
}

impl LstmLayer {
    pub fn new<B: ModelOps>(
        b: &B,
        p: &mut Params<B>,
        rng: &mut impl Rng,
        spec: LayerSpec<'_>,
    ) -> OpResult<Self> {
        let LayerSpec { name, dims, hidden } = spec;
        let input = MultiLinear::new(b, p, rng, &format!("{name}.in"), dims, 4 * hidden, true)?;
        // Forget-gate bias starts at 1 (Jozefowicz et al. 2015): remember by default.
        let bias = input.bias.expect("LSTM input map has a bias");
        let mut init = vec![0.0f32; 4 * hidden];
        init[hidden..2 * hidden].iter_mut().for_each(|x| *x = 1.0);
        b.write_f32(&mut p.list[bias.0].value, &init)?;
        let wh = p.xavier(b, rng, &format!("{name}.wh"), hidden, 4 * hidden)?;
        Ok(LstmLayer { input, wh, hidden })
    }
}

impl<B: ModelOps> Layer<B> for LstmLayer {
    type Cache = LstmLayerCache<B>;

    fn forward(
        &self,
        b: &B,
        p: &Params<B>,
        x: &SeqInputs<'_, B>,
        (bs, l): (usize, usize),
    ) -> OpResult<LstmLayerCache<B>> {
        let xw = view::<B>(
            &self.input.forward_rows(b, p, x.xs, bs * l)?,
            &[bs, l, 4 * self.hidden],
        )?;
        let inner = b.lstm_forward(xw, p.get(self.wh), x.mask)?;
        let out = match x.drop {
            Some(d) => b.dropout_time(&inner.h, d.keep, d.seed, d.stream)?,
            None => inner.h.clone(),
        };
        Ok(LstmLayerCache { inner, out })
    }

    fn output(cache: &LstmLayerCache<B>) -> &BTensor<B> {
        &cache.out
    }

    fn backward(
        &self,
        b: &B,
        p: &mut Params<B>,
        x: &SeqInputs<'_, B>,
        cache: &LstmLayerCache<B>,
        g: OutGrad<'_, B>,
    ) -> OpResult<Vec<Option<BTensor<B>>>> {
        let dh = match x.drop {
            Some(d) => &b.dropout_time(g.dh, d.keep, d.seed, d.stream)?,
            None => g.dh,
        };
        let dg = b.lstm_backward(&cache.inner, p.get(self.wh), x.mask, dh)?;
        let h = self.hidden;
        let n = dg.len() / (4 * h);
        let dg2 = view::<B>(&dg, &[n, 4 * h])?;
        let h_prev = view::<B>(&cache.inner.h_prev, &[n, h])?;
        p.acc_grad_matmul(b, self.wh, &h_prev, &dg2, true, false)?;
        self.input.backward_rows(b, p, x.xs, &dg2, g.need_dx, g.acc)
    }
}

/// Attention over a history with play counts as preference:
/// `e_t = vᵀ tanh(W h_t + c) + β · log(1 + plays_t)`, `α = softmax_t(e)` over unmasked steps.
/// The model pools every value sequence `x⁽ⁱ⁾` with the same weights, `z⁽ⁱ⁾ = Σ_t α_t x⁽ⁱ⁾_t`
/// (after its linear map: see `Model::forward`). The learned β (initially 1) sets how much play
/// counts sway the weights; without plays (`beta: None`, the `attention` pooling of the
/// ablation) the term is absent. AINRNN pools the input embeddings and every layer's output
/// (the dense representation of each step), scoring with the last layer.
pub struct PlayAttention {
    pub proj: MultiLinear,
    pub v: PId,
    pub beta: Option<PId>,
    pub hidden: usize,
    pub att: usize,
}

/// What the attention reads: `h` `[B, L, H]` scores the steps, `logc` `[B, L]` is
/// log(1 + plays) (0 on padding); `shape` is `(B, L)`.
pub struct Pooling<'a, B: ModelOps> {
    pub h: &'a BTensor<B>,
    pub logc: &'a BTensor<B>,
    pub shape: (usize, usize),
}

pub struct AttentionCache<B: ModelOps> {
    pub tanh: BTensor<B>,
    /// The weights `α` `[B, L]`.
    pub alpha: BTensor<B>,
}

impl PlayAttention {
    pub fn new<B: ModelOps>(
        b: &B,
        p: &mut Params<B>,
        rng: &mut impl Rng,
        hidden: usize,
        att: usize,
        plays: bool,
    ) -> OpResult<Self> {
        let proj = MultiLinear::new(b, p, rng, "attention.proj", &[hidden], att, true)?;
        let v = p.xavier(b, rng, "attention.v", att, 1)?;
        let beta = if plays {
            Some(p.add(b, "attention.beta", &[1], vec![1.0], false)?)
        } else {
            None
        };
        Ok(PlayAttention {
            proj,
            v,
            beta,
            hidden,
            att,
        })
    }

    /// The weights `α` `[B, L]` (in the cache) with `mask_add` `[B, L]` (0 or −∞).
    pub fn forward<B: ModelOps>(
        &self,
        b: &B,
        p: &Params<B>,
        x: &Pooling<'_, B>,
        mask_add: &BTensor<B>,
    ) -> OpResult<AttentionCache<B>> {
        let Pooling {
            h,
            logc,
            shape: (bs, l),
        } = *x;
        let h2 = view::<B>(h, &[bs * l, self.hidden])?;
        let t = b.unary(UnaryOp::Tanh, &self.proj.forward(b, p, &[&h2])?)?;
        let e = view::<B>(&b.matmul(&t, p.get(self.v), false, false)?, &[bs, l])?;
        let e = match self.beta {
            Some(beta) => {
                let pref = b.binary(BinaryOp::Mul, logc, p.get(beta))?;
                b.binary(BinaryOp::Add, &e, &pref)?
            }
            None => e,
        };
        let e = b.binary(BinaryOp::Add, &e, mask_add)?;
        let alpha = b.softmax_rows(&e, false)?;
        Ok(AttentionCache { tanh: t, alpha })
    }

    /// Accumulates the attention parameters' gradients given `∂α` `[B, L]`; returns `∂h`
    /// `[B, L, H]` (through the scores).
    pub fn backward<B: ModelOps>(
        &self,
        b: &B,
        p: &mut Params<B>,
        x: &Pooling<'_, B>,
        cache: &AttentionCache<B>,
        dalpha: &BTensor<B>,
    ) -> OpResult<BTensor<B>> {
        let Pooling {
            h,
            logc,
            shape: (bs, l),
        } = *x;
        let de = b.softmax_rows_backward(&cache.alpha, dalpha, false)?;
        // β: ∂β = Σ ∂e ⊙ log(1 + plays), one dot product straight into its gradient.
        if let Some(beta) = self.beta {
            let de_row = view::<B>(&de, &[1, bs * l])?;
            let logc_col = view::<B>(logc, &[bs * l, 1])?;
            p.acc_grad_matmul(b, beta, &de_row, &logc_col, false, false)?;
        }
        // e = t v: ∂v = tᵀ ∂e, ∂t = ∂e vᵀ.
        let de2 = view::<B>(&de, &[bs * l, 1])?;
        p.acc_grad_matmul(b, self.v, &cache.tanh, &de2, true, false)?;
        let dt = b.matmul(&de2, p.get(self.v), false, true)?;
        let dpre = b.tanh_backward(&cache.tanh, &dt)?;
        let h2 = view::<B>(h, &[bs * l, self.hidden])?;
        let dh = self
            .proj
            .backward(b, p, &[&h2], &dpre, &[true], Vec::new())?;
        let dh = dh.into_iter().next().flatten().expect("asked for ∂h");
        view::<B>(&dh, &[bs, l, self.hidden])
    }
}
