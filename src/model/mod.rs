//! The recommenders: AINRNN (the paper's model) and the IndRNN and LSTM baselines, sharing the
//! same input (a listening history with play counts, the user portrait) and the same output (a
//! score for every song of the catalogue).
//!
//! AINRNN: history → 5 stacked IndRNN layers, each fed the concatenation of the input and all
//! earlier layers' outputs (dense connections instead of residual shortcuts) → attention whose
//! weights add the play counts as preference → user vector (with the portrait) → catalogue scores.
//! (The trainer's default stacks AINRNN with residual shortcuts instead, `--paper` with the
//! paper's dense connections: `train::run::AINRNN_CONNECTION`; a [`ModelConfig`] without a
//! connection means the kind's own, dense for AINRNN.)
//! IndRNN baseline: the same layers stacked plainly, last state. Residual IndRNN baseline (the
//! model the paper changes from): the same layers with identity shortcuts, last state. LSTM
//! baseline: stacked LSTM, last state.
//!
//! For the ablation, the stacking ([`Connection`]) and the pooling ([`PoolingKind`]) of every
//! IndRNN kind can be chosen apart from its kind. What is pooled is the step representation the
//! stacking gives: with dense connections the inputs and every layer's output, otherwise the last
//! layer's output.

pub mod batch;
pub mod checkpoint;
mod config;
pub mod layers;
pub mod neighbours;
pub mod params;
pub mod scorer;
mod stack;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use self::batch::DeviceBatch;
pub use self::config::{Connection, ModelConfig, ModelKind, PoolingKind, DEFAULT_NEIGHBOURS};
use self::layers::{
    view, AttentionCache, IndRnnLayer, LayerSpec, LstmLayer, MultiLinear, OutGrad, PlayAttention,
    Pooling, SeqInputs,
};
use self::params::{PId, Params};
use self::scorer::{PendingRank, Ranked, Scorer, ScorerSpec};
use self::stack::{Recurrent, RecurrentPass};
use crate::backend::model_ops::{ModelOps, TimeDrop};
use crate::backend::{BTensor, BinaryOp, OpResult};

pub struct Model<B: ModelOps> {
    pub cfg: ModelConfig,
    pub params: Params<B>,
    in_emb: PId,
    in_feat: Option<BTensor<B>>,
    layers: Recurrent,
    conn: Connection,
    /// With gated shortcuts, layer `i ≥ 1`'s gate `[hidden]` at `gates[i - 1]`.
    gates: Vec<PId>,
    pool: Pool,
    age: Option<PId>,
    lang: Option<PId>,
    user: MultiLinear,
    pub scorer: Scorer<B>,
}

/// What the forward pass keeps for the backward pass.
pub struct Cache<B: ModelOps> {
    inputs: Vec<BTensor<B>>,
    layers: RecurrentPass<B>,
    /// Each layer's dropout, when training: the mask's `(keep, seed, stream)`, drawn again on
    /// the fly in the backward pass (`ModelOps::dropout_time`, inside IndRNN's kernels), never
    /// stored.
    drop: Vec<Option<TimeDrop>>,
    /// Layer outputs after dropout.
    outs: Vec<BTensor<B>>,
    pooled: PoolCache<B>,
    /// The portrait's inputs to the user map (age and language rows, genre distribution).
    portrait: Vec<BTensor<B>>,
}

/// How the step representations over the history become the user's pooled blocks.
enum Pool {
    /// Attention, with or without the play counts.
    Attention(PlayAttention),
    /// The last step of every block.
    Last,
    /// The mean over the unmasked steps of every block.
    Mean,
}

/// What pooling kept for the backward pass.
enum PoolCache<B: ModelOps> {
    /// The attention's cache and the projected steps `y` `[B·L, emb]` (∂α = y·∂u).
    Attention(AttentionCache<B>, BTensor<B>),
    /// Every pooled block's last step `[B, d_i]`.
    Last(Vec<BTensor<B>>),
    /// The mean's weights `[B, L]`.
    Mean(BTensor<B>),
}

/// `slot += t` (or `slot = t` when empty).
fn accumulate<B: ModelOps>(b: &B, slot: &mut Option<BTensor<B>>, t: BTensor<B>) -> OpResult<()> {
    *slot = Some(match slot.take() {
        None => t,
        Some(mut acc) => {
            b.axpy(&mut acc, &t, 1.0)?;
            acc
        }
    });
    Ok(())
}

/// What layer `i` reads: with dense connections the inputs and all earlier outputs; in a plain or
/// residual stack the inputs (first layer) or the previous layer's output (the residual stream).
fn layer_inputs<'a, B: ModelOps>(
    conn: Connection,
    i: usize,
    inputs: &'a [BTensor<B>],
    outs: &'a [BTensor<B>],
) -> Vec<&'a BTensor<B>> {
    match conn {
        Connection::Dense => inputs.iter().chain(outs[..i].iter()).collect(),
        _ if i == 0 => inputs.iter().collect(),
        _ => vec![&outs[i - 1]],
    }
}

/// The blocks pooled into the user vector: with dense connections the inputs and every layer's
/// output, otherwise the last layer's output.
fn pooled_values<'a, B: ModelOps>(
    conn: Connection,
    inputs: &'a [BTensor<B>],
    outs: &'a [BTensor<B>],
) -> Vec<&'a BTensor<B>> {
    match conn {
        Connection::Dense => inputs.iter().chain(outs.iter()).collect(),
        _ => vec![outs.last().expect("at least one layer")],
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dest {
    Emb,
    Out(usize),
    Nowhere,
}

/// Refuses a model whose training with `batch` users a step (one if not given: the model
/// alone) would take more memory than the backend has left ([`ModelConfig::approx_bytes`],
/// [`crate::backend::Backend::available_memory`]): the system's available memory on the CPU,
/// where the allocation would otherwise abort the process, or the kernel kill it, minutes in;
/// the device memory left in the driver's budget on a GPU, where the allocator would fail
/// after the model was half built (or, under some drivers, page device memory to the host and
/// crawl). A backend that cannot say is not checked.
pub fn fits_in_memory<B: ModelOps>(b: &B, cfg: &ModelConfig, batch: Option<usize>) -> OpResult<()> {
    let need = cfg.approx_bytes(batch.unwrap_or(1));
    let Some(avail) = b.available_memory().filter(|&a| need > a as f64) else {
        return Ok(());
    };
    let gpu = (b.kind() == crate::backend::BackendKind::Gpu).then(|| {
        let name = b.describe().trim_start_matches("gpu: ").to_string();
        (name, crate::io::space::available_memory_bytes())
    });
    Err(crate::error::OpError::Invalid {
        op: "model config",
        detail: memory_refusal(cfg, batch, need, avail, gpu),
    })
}

/// What [`fits_in_memory`] says: the floor, the sizes that set it, what is left; on a GPU
/// (`gpu`: its name and the host's available memory) also the CPU backend, where the host has
/// room for the model.
fn memory_refusal(
    cfg: &ModelConfig,
    batch: Option<usize>,
    need: f64,
    avail: u64,
    gpu: Option<(String, Option<u64>)>,
) -> String {
    let gb = |b: f64| format!("{:.1} GB", b / 1e9);
    let (what, left, other) = match gpu {
        None => ("memory", "are available".to_string(), String::new()),
        Some((name, host)) => (
            "GPU memory",
            format!("are left on the GPU ({name})"),
            host.filter(|&h| h as f64 > need)
                .map(|h| {
                    format!(
                        ", or train on the CPU (--backend cpu: {} available there)",
                        gb(h as f64)
                    )
                })
                .unwrap_or_default(),
        ),
    };
    let batch = batch.map(|n| format!(", --batch {n}")).unwrap_or_default();
    format!(
        "training this model takes at least {} of {what} (--emb {}, --hidden {}, --layers {}, --max-history {}{batch}, {} songs), and {} {left}: choose smaller sizes{other}",
        gb(need),
        cfg.emb,
        cfg.hidden,
        cfg.layers,
        cfg.max_history,
        cfg.songs,
        gb(avail as f64)
    )
}

impl<B: ModelOps> Model<B> {
    /// A freshly initialised model. `features`: the song vectors (`songs × feature_dim`).
    pub fn new(b: &B, cfg: ModelConfig, features: Option<&[f32]>) -> OpResult<Self> {
        cfg.validate()?;
        fits_in_memory(b, &cfg, None)?;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut p = Params::new();
        // One song table serves as the input embedding and as the learned part of the songs'
        // output representation (tied, as in Press & Wolf 2017): listening to a song and being
        // predicted to like it share one vector, which small datasets need.
        let in_emb = p.uniform(b, &mut rng, "songs.emb", &[cfg.songs, cfg.emb], 0.05, true)?;
        p.list[in_emb.0].table = true;
        let in_feat = match (features, cfg.feature_dim) {
            (Some(v), d) if d > 0 => {
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(crate::error::OpError::Invalid {
                        op: "model features",
                        detail: format!(
                            "value {} of song {} (feature {}) is not finite",
                            v[i],
                            i / d,
                            i % d
                        ),
                    });
                }
                Some(b.upload_f32(v, &[cfg.songs, d])?)
            }
            (None, d) if d > 0 => {
                // Built without them, the model would not be the one the config (or a
                // checkpoint) describes: its parameters would differ.
                return Err(crate::error::OpError::Invalid {
                    op: "model features",
                    detail: format!("the model takes {d} song features, and none were given"),
                });
            }
            // A model without a feature input ignores them (a checkpoint trained without
            // features, evaluated on a dataset that has some).
            _ => None,
        };
        let mut in_dims = vec![cfg.emb];
        if in_feat.is_some() {
            in_dims.push(cfg.feature_dim);
        }
        in_dims.push(1); // log(1 + plays)
        let u_max = cfg.mag.powf(1.0 / cfg.max_history.max(1) as f32);
        let h = cfg.hidden;
        let conn = cfg.connection();
        // Layer l's input widths: dense, the inputs and all earlier outputs; plain and residual,
        // the inputs (first layer) or the previous layer's output.
        let dims_of = |l: usize| -> Vec<usize> {
            match conn {
                Connection::Dense => {
                    let mut dims = in_dims.clone();
                    dims.extend(std::iter::repeat_n(h, l));
                    dims
                }
                _ if l == 0 => in_dims.clone(),
                _ => vec![h],
            }
        };
        // Residual IndRNN after Li et al. 2019 ("Deep Independently Recurrent Neural Network",
        // github.com/Sunnydreamrain/IndRNN_pytorch): kept, identity shortcuts (the left branch
        // fixed to 1, all layers of one width) and a first layer whose input map projects the
        // input to `hidden`, so layer l ≥ 1 outputs x_l + IndRNN_l(x_l). Dropped: batch
        // normalisation (these histories are short, unordered and padded, with batches of a few
        // users) and the two-layer pre-activation block: every block here is one IndRNN layer,
        // dropout on its branch, as in our other stacks.
        let layers = match cfg.kind {
            ModelKind::Lstm => {
                let mut layers = Vec::new();
                for l in 0..cfg.layers {
                    let spec = LayerSpec {
                        name: &format!("lstm{l}"),
                        dims: &dims_of(l),
                        hidden: h,
                    };
                    layers.push(LstmLayer::new(b, &mut p, &mut rng, spec)?);
                }
                Recurrent::Lstm(layers.into())
            }
            ModelKind::Ainrnn | ModelKind::Indrnn | ModelKind::Resindrnn => {
                let mut layers = Vec::new();
                for l in 0..cfg.layers {
                    let spec = LayerSpec {
                        name: &format!("indrnn{l}"),
                        dims: &dims_of(l),
                        hidden: h,
                    };
                    layers.push(IndRnnLayer::new(b, &mut p, &mut rng, spec, u_max)?);
                }
                Recurrent::IndRnn(layers.into())
            }
        };
        // Gated shortcuts: one gate per unit and layer past the first, starting at 1 (residual)
        // and not decayed (decay would pull towards a plain stack).
        let gates = if conn == Connection::Gated {
            (1..cfg.layers)
                .map(|i| p.add(b, &format!("stack.gate{i}"), &[h], vec![1.0; h], false))
                .collect::<OpResult<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let pool = match cfg.pooling() {
            PoolingKind::PlaysAttention => {
                Pool::Attention(PlayAttention::new(b, &mut p, &mut rng, h, cfg.att, true)?)
            }
            PoolingKind::Attention => {
                Pool::Attention(PlayAttention::new(b, &mut p, &mut rng, h, cfg.att, false)?)
            }
            PoolingKind::Last => Pool::Last,
            PoolingKind::Mean => Pool::Mean,
        };
        // The pooled blocks: every step's dense representation (inputs and all layers) with
        // dense connections, else the last layer.
        let mut user_dims = match conn {
            Connection::Dense => {
                let mut d = in_dims.clone();
                d.extend(std::iter::repeat_n(h, cfg.layers));
                d
            }
            _ => vec![h],
        };
        let age = if cfg.n_age > 0 {
            user_dims.push(cfg.portrait_dim);
            Some(p.uniform(
                b,
                &mut rng,
                "portrait.age",
                &[cfg.n_age, cfg.portrait_dim],
                0.05,
                true,
            )?)
        } else {
            None
        };
        let lang = if cfg.n_lang > 0 {
            user_dims.push(cfg.portrait_dim);
            Some(p.uniform(
                b,
                &mut rng,
                "portrait.lang",
                &[cfg.n_lang, cfg.portrait_dim],
                0.05,
                true,
            )?)
        } else {
            None
        };
        if cfg.n_genre > 0 {
            user_dims.push(cfg.n_genre);
        }
        let user = MultiLinear::new(b, &mut p, &mut rng, "user", &user_dims, cfg.emb, true)?;
        let spec = ScorerSpec {
            songs: cfg.songs,
            dim: cfg.emb,
            features: features
                .filter(|_| cfg.feature_dim > 0)
                .map(|v| (v, cfg.feature_dim)),
            tile: cfg.tile,
            emb: in_emb,
            with_neighbours: cfg.neighbours > 0,
            song_weights: cfg.song_weights,
            pair_weights: cfg.pair_weights.then_some(cfg.neighbours),
        };
        let scorer = Scorer::new(b, &mut p, &mut rng, spec)?;
        Ok(Model {
            cfg,
            params: p,
            in_emb,
            in_feat,
            layers,
            conn,
            gates,
            pool,
            age,
            lang,
            user,
            scorer,
        })
    }

    /// Fits the item-neighbourhood term on the training users' histories: for every song its
    /// `cfg.neighbours` most similar songs by `sim` over co-listens (as item-kNN). Only training
    /// users may be passed: the term must not see validation or test users.
    pub fn fit_neighbours(
        &mut self,
        histories: &[(Vec<u32>, Vec<f32>)],
        train_users: &[u32],
        sim: neighbours::Similarity,
    ) {
        if self.cfg.neighbours == 0 {
            return;
        }
        self.scorer.set_neighbours(neighbours::fit_with(
            self.cfg.songs,
            histories,
            train_users,
            self.cfg.neighbours,
            sim,
        ));
    }

    /// User vectors `[B, emb]`. With `rng`, dropout is applied (training).
    pub fn forward(
        &self,
        b: &B,
        batch: &DeviceBatch<B>,
        rng: Option<&mut StdRng>,
    ) -> OpResult<(BTensor<B>, Cache<B>)> {
        let (bs, l) = (batch.size, batch.steps);
        let p = &self.params;
        let mut inputs = vec![view::<B>(
            &b.gather_rows(p.get(self.in_emb), &batch.songs)?,
            &[bs, l, self.cfg.emb],
        )?];
        if let Some(f) = &self.in_feat {
            inputs.push(view::<B>(
                &b.gather_rows(f, &batch.songs)?,
                &[bs, l, self.cfg.feature_dim],
            )?);
        }
        inputs.push(view::<B>(&batch.logc, &[bs, l, 1])?);
        // Dropout masks shared over time, drawn on the device from a hash of (seed, layer,
        // entry): one `u32` seed per step comes from the host's generator, nothing is uploaded.
        let keep = 1.0 - self.cfg.dropout;
        let seed: Option<u32> = match rng {
            Some(r) if self.cfg.dropout > 0.0 => Some(r.random()),
            _ => None,
        };
        let drop: Vec<Option<TimeDrop>> = (0..self.layers.len())
            .map(|i| {
                seed.map(|seed| TimeDrop {
                    keep,
                    seed,
                    stream: i as u32,
                })
            })
            .collect();
        let mut layers = self.layers.pass();
        let mut outs: Vec<BTensor<B>> = Vec::new();
        for i in 0..self.layers.len() {
            let xs = layer_inputs::<B>(self.conn, i, &inputs, &outs);
            let x = SeqInputs {
                xs: &xs,
                mask: &batch.mask,
                drop: drop[i],
            };
            // The layer applies its dropout (IndRNN inside its recurrence kernel).
            let h = layers.push(b, p, &x, (bs, l))?.clone();
            // Residual shortcut: x_{i+1} = x_i + IndRNN_i(x_i) past the first layer (which
            // projects the inputs to `hidden`); gated, x_{i+1} = g_i ⊙ x_i + IndRNN_i(x_i).
            let out = match self.conn {
                Connection::Residual if i > 0 => b.binary(BinaryOp::Add, &outs[i - 1], &h)?,
                Connection::Gated if i > 0 => {
                    let s = b.binary(BinaryOp::Mul, &outs[i - 1], p.get(self.gates[i - 1]))?;
                    b.binary(BinaryOp::Add, &s, &h)?
                }
                _ => h,
            };
            outs.push(out);
        }
        let values = pooled_values::<B>(self.conn, &inputs, &outs);
        let (mut u, pooled) = match &self.pool {
            Pool::Attention(att) => {
                let x = Pooling {
                    h: outs.last().expect("at least one layer"),
                    logc: &batch.logc,
                    shape: (bs, l),
                };
                let c = att.forward(b, p, &x, &batch.mask_add)?;
                let (u, y) = self.pool_weighted(b, &values, &c.alpha, (bs, l))?;
                (u, PoolCache::Attention(c, y))
            }
            Pool::Last => {
                let zs = values
                    .iter()
                    .map(|v| b.gather_rows(&view::<B>(v, &[bs * l, v.cols()])?, &batch.last))
                    .collect::<OpResult<Vec<_>>>()?;
                let u = self.user.forward(b, p, &zs.iter().collect::<Vec<_>>())?;
                (u, PoolCache::Last(zs))
            }
            Pool::Mean => {
                // softmax over 0 on the steps and −∞ on padding: 1/n on each of the n steps.
                let w = b.softmax_rows(&batch.mask_add, false)?;
                let (u, _) = self.pool_weighted(b, &values, &w, (bs, l))?;
                (u, PoolCache::Mean(w))
            }
        };
        // The portrait's blocks of the user map follow the pooled ones.
        let mut portrait = Vec::new();
        if let Some(a) = self.age {
            portrait.push(b.gather_rows(p.get(a), &batch.age)?);
        }
        if let Some(t) = self.lang {
            portrait.push(b.gather_rows(p.get(t), &batch.lang)?);
        }
        if self.cfg.n_genre > 0 {
            portrait.push(batch.genre.clone());
        }
        let refs: Vec<&BTensor<B>> = portrait.iter().collect();
        self.user.forward_onto(b, p, &refs, values.len(), &mut u)?;
        Ok((
            u,
            Cache {
                inputs,
                layers,
                drop,
                outs,
                pooled,
                portrait,
            },
        ))
    }

    /// The user map's pooled part `Σ_i (w·x⁽ⁱ⁾) W_i + b` for step weights `w` `[B, L]`, computed
    /// as `w·y + b` with `y = Σ_i x⁽ⁱ⁾ W_i` `[B·L, emb]` mapped at every step: the map is
    /// linear, so pooling once after it replaces one pooling product per block, forward and
    /// backward (and ∂α becomes one product, `y·∂u`). Returns `[B, emb]` and `y`.
    fn pool_weighted(
        &self,
        b: &B,
        values: &[&BTensor<B>],
        w: &BTensor<B>,
        (bs, l): (usize, usize),
    ) -> OpResult<(BTensor<B>, BTensor<B>)> {
        let p = &self.params;
        let flat = values
            .iter()
            .map(|v| view::<B>(v, &[bs * l, v.cols()]))
            .collect::<OpResult<Vec<_>>>()?;
        let mut y = b.matmul(&flat[0], p.get(self.user.weights[0]), false, false)?;
        let rest: Vec<&BTensor<B>> = flat[1..].iter().collect();
        self.user.forward_onto(b, p, &rest, 1, &mut y)?;
        let w3 = view::<B>(w, &[bs, 1, l])?;
        let y3 = view::<B>(&y, &[bs, l, self.cfg.emb])?;
        let u = match self.user.bias {
            Some(bias) => b.matmul_bias(&w3, &y3, false, false, p.get(bias))?,
            None => b.matmul(&w3, &y3, false, false)?,
        };
        Ok((view::<B>(&u, &[bs, self.cfg.emb])?, y))
    }

    /// Backward of [`Model::pool_weighted`] (without the bias, whose gradient the caller adds):
    /// `∂y = wᵀ ∂u` per user, then the pooled blocks' ∂W and, where `dest` sends them
    /// somewhere, their ∂x `[B·L, d_i]`, added onto `acc[i]` inside the products.
    fn unpool_weighted(
        &mut self,
        b: &B,
        values: &[&BTensor<B>],
        w: &BTensor<B>,
        du: &BTensor<B>,
        dest: &dyn Fn(usize) -> Dest,
        acc: Vec<Option<BTensor<B>>>,
    ) -> OpResult<Vec<Option<BTensor<B>>>> {
        let (bs, l) = (w.rows(), w.cols());
        let dim = self.cfg.emb;
        let dy = b.matmul(
            &view::<B>(w, &[bs, l, 1])?,
            &view::<B>(du, &[bs, 1, dim])?,
            false,
            false,
        )?;
        let dy = view::<B>(&dy, &[bs * l, dim])?;
        let flat = values
            .iter()
            .map(|v| view::<B>(v, &[bs * l, v.cols()]))
            .collect::<OpResult<Vec<_>>>()?;
        let refs: Vec<&BTensor<B>> = flat.iter().collect();
        let need: Vec<bool> = (0..values.len())
            .map(|j| dest(j) != Dest::Nowhere)
            .collect();
        self.user
            .backward_part(b, &mut self.params, &refs, 0, &dy, &need, acc)
    }

    /// Accumulates every parameter's gradient given ∂u `[B, emb]`.
    pub fn backward(
        &mut self,
        b: &B,
        batch: &DeviceBatch<B>,
        cache: &Cache<B>,
        du: &BTensor<B>,
    ) -> OpResult<()> {
        let (bs, l) = (batch.size, batch.steps);
        let h = self.cfg.hidden;
        let nl = cache.outs.len();
        let n_in = cache.inputs.len();
        let dense = self.conn == Connection::Dense;
        let values = pooled_values::<B>(self.conn, &cache.inputs, &cache.outs);
        // The pooled blocks come first in the user map's inputs, then the portrait.
        let n_pooled = values.len();
        let refs: Vec<&BTensor<B>> = cache.portrait.iter().collect();
        let mut need = vec![false; refs.len()];
        if self.age.is_some() {
            need[0] = true;
        }
        if self.lang.is_some() {
            need[self.age.is_some() as usize] = true;
        }
        let mut d =
            self.user
                .backward_part(b, &mut self.params, &refs, n_pooled, du, &need, Vec::new())?;
        let mut slot = 0;
        for (table, plan) in [(self.age, &batch.age), (self.lang, &batch.lang)] {
            if let Some(t) = table {
                let g = d[slot].take().expect("asked for the portrait gradient");
                self.params.acc_grad_rows(b, t, &g, plan)?;
                slot += 1;
            }
        }
        if let Some(bias) = self.user.bias {
            self.params.acc_grad_sum_cols(b, bias, du)?;
        }
        // ∂(layer outputs after dropout and shortcut), filled from the top down.
        let mut douts: Vec<Option<BTensor<B>>> = vec![None; nl];
        let mut demb: Option<BTensor<B>> = None;
        // Where the gradient of pooled block j goes: the pooled blocks are the inputs and every
        // output (dense), else the last output; song features and play counts are constants.
        let pooled_dest = |j: usize| -> Dest {
            match (dense, j) {
                (false, _) => Dest::Out(nl - 1),
                (true, 0) => Dest::Emb,
                (true, j) if j >= n_in => Dest::Out(j - n_in),
                _ => Dest::Nowhere,
            }
        };
        let dvalues: Vec<Option<BTensor<B>>> = match (&self.pool, &cache.pooled) {
            (Pool::Attention(att), PoolCache::Attention(c, y)) => {
                // u = α·y + b per user: ∂α_t = y_t · ∂u.
                let dalpha = b.matmul(
                    &view::<B>(y, &[bs, l, self.cfg.emb])?,
                    &view::<B>(du, &[bs, self.cfg.emb, 1])?,
                    false,
                    false,
                )?;
                let x = Pooling {
                    h: &cache.outs[nl - 1],
                    logc: &batch.logc,
                    shape: (bs, l),
                };
                let dscore =
                    att.backward(b, &mut self.params, &x, c, &view::<B>(&dalpha, &[bs, l])?)?;
                douts[nl - 1] = Some(dscore);
                let acc = (0..n_pooled)
                    .map(|j| match pooled_dest(j) {
                        Dest::Out(k) => douts[k].take(),
                        _ => None,
                    })
                    .collect();
                self.unpool_weighted(b, &values, &c.alpha, du, &pooled_dest, acc)?
            }
            (Pool::Mean, PoolCache::Mean(w)) => {
                self.unpool_weighted(b, &values, w, du, &pooled_dest, Vec::new())?
            }
            (Pool::Last, PoolCache::Last(zs)) => {
                let zrefs: Vec<&BTensor<B>> = zs.iter().collect();
                let need: Vec<bool> = (0..n_pooled)
                    .map(|j| pooled_dest(j) != Dest::Nowhere)
                    .collect();
                let dzs = self.user.backward_part(
                    b,
                    &mut self.params,
                    &zrefs,
                    0,
                    du,
                    &need,
                    Vec::new(),
                )?;
                dzs.into_iter()
                    .zip(&values)
                    .map(|(dz, v)| {
                        let Some(dz) = dz else { return Ok(None) };
                        let mut dv = b.zeros(&[bs * l, v.cols()])?;
                        b.scatter_add_rows(&mut dv, &dz, &batch.last)?;
                        Ok(Some(dv))
                    })
                    .collect::<OpResult<_>>()?
            }
            _ => unreachable!("the cache comes from this model's pooling"),
        };
        for (j, dv) in dvalues.into_iter().enumerate() {
            let Some(dv) = dv else { continue };
            match pooled_dest(j) {
                Dest::Emb => accumulate(b, &mut demb, view::<B>(&dv, &[bs * l, self.cfg.emb])?)?,
                Dest::Out(k) => accumulate(b, &mut douts[k], view::<B>(&dv, &[bs, l, h])?)?,
                Dest::Nowhere => {}
            }
        }
        // Where the gradient of input j of layer i goes: the song embedding (input 0), an earlier
        // layer's output, or nowhere (song features and play counts are constants).
        let dest = |i: usize, j: usize| -> Dest {
            match (dense, i, j) {
                (_, _, 0) if dense || i == 0 => Dest::Emb,
                (true, _, j) if j >= n_in => Dest::Out(j - n_in),
                (false, i, 0) if i > 0 => Dest::Out(i - 1),
                _ => Dest::Nowhere,
            }
        };
        for i in (0..nl).rev() {
            let Some(dout) = douts[i].take() else {
                continue;
            };
            let xs = layer_inputs::<B>(self.conn, i, &cache.inputs, &cache.outs);
            let need: Vec<bool> = (0..xs.len()).map(|j| dest(i, j) != Dest::Nowhere).collect();
            // What each input's gradient holds so far goes in, to be added onto in the product,
            // and comes back in `dxs`.
            let acc = (0..xs.len())
                .map(|j| match dest(i, j) {
                    Dest::Emb => demb.take(),
                    Dest::Out(k) => douts[k].take(),
                    Dest::Nowhere => None,
                })
                .collect();
            let x = SeqInputs {
                xs: &xs,
                mask: &batch.mask,
                drop: cache.drop[i],
            };
            let g = OutGrad {
                dh: &dout,
                need_dx: &need,
                acc,
            };
            let dxs = cache.layers.backward(i, b, &mut self.params, &x, g)?;
            for (j, dx) in dxs.into_iter().enumerate() {
                let Some(dx) = dx else { continue };
                match dest(i, j) {
                    Dest::Emb => accumulate(b, &mut demb, dx)?,
                    Dest::Out(k) => accumulate(b, &mut douts[k], view::<B>(&dx, &[bs, l, h])?)?,
                    Dest::Nowhere => {}
                }
            }
            // The shortcut passes ∂x_{i+1} to x_i unchanged (after the branch's ∂x_i landed
            // there, so `dout`'s storage is only read); gated, g_i ⊙ ∂x_{i+1}, and the gate
            // gets Σ_rows ∂x_{i+1} ⊙ x_i.
            match self.conn {
                Connection::Residual if i > 0 => accumulate(b, &mut douts[i - 1], dout)?,
                Connection::Gated if i > 0 => {
                    let gate = self.gates[i - 1];
                    let dg = b.binary(BinaryOp::Mul, &dout, &cache.outs[i - 1])?;
                    let dg = view::<B>(&dg, &[bs * l, h])?;
                    self.params.acc_grad_sum_cols(b, gate, &dg)?;
                    let dx = b.binary(BinaryOp::Mul, &dout, self.params.get(gate))?;
                    accumulate(b, &mut douts[i - 1], dx)?;
                }
                _ => {}
            }
        }
        if let Some(g) = demb {
            self.params
                .acc_grad_rows(b, self.in_emb, &g, &batch.songs)?;
        }
        Ok(())
    }

    /// One training step on a batch: forward, catalogue loss, backward, optimizer.
    /// Returns the summed loss of the batch as a `[1]` tensor (read back by the caller when it
    /// wants, so steps need no sync).
    pub fn train_step(
        &mut self,
        b: &B,
        batch: &DeviceBatch<B>,
        rng: &mut StdRng,
        optim: &params::OptimConfig,
    ) -> OpResult<BTensor<B>> {
        let (u, cache) = self.forward(b, batch, Some(rng))?;
        let nb = self
            .scorer
            .neighbour_blocks(b, &self.params, &batch.history)?;
        let (loss, du) = self
            .scorer
            .loss_backward(b, &mut self.params, &u, &batch.targets, &nb)?;
        self.backward(b, batch, &cache, &du)?;
        // Nothing may hold a parameter while the optimizer writes all of them in one pass
        // (a shared one is copied instead, outside the packed group).
        drop((cache, u, du));
        self.params.apply(b, optim)?;
        // Submit now: the GPU works while the host prepares the next batch, and every step
        // returns its temporaries to the pool at the same point (no growth after warm-up).
        b.flush()?;
        Ok(loss)
    }

    /// Summed loss of a batch without updating anything (no dropout).
    pub fn eval_loss(&mut self, b: &B, batch: &DeviceBatch<B>) -> OpResult<BTensor<B>> {
        let (u, _) = self.forward(b, batch, None)?;
        let nb = self
            .scorer
            .neighbour_blocks(b, &self.params, &batch.history)?;
        let (loss, _) = self
            .scorer
            .loss_backward(b, &mut self.params, &u, &batch.targets, &nb)?;
        self.params.zero_grads(b)?;
        Ok(loss)
    }

    /// The attention's weights over each user's kept history, `[B, L]` row by row (histories
    /// right-aligned, padding 0), when the model pools by attention; `None` otherwise.
    pub fn attention(&self, b: &B, batch: &DeviceBatch<B>) -> OpResult<Option<Vec<f32>>> {
        if !matches!(self.pool, Pool::Attention(_)) {
            return Ok(None);
        }
        match self.forward(b, batch, None)?.1.pooled {
            PoolCache::Attention(a, _) => Ok(Some(b.to_f32(&a.alpha)?)),
            _ => Ok(None),
        }
    }

    /// Top-`k` songs for every user of the batch, excluding the batch's `exclude` lists.
    pub fn recommend(&self, b: &B, batch: &DeviceBatch<B>, k: usize) -> OpResult<Ranked> {
        recommend_sum(b, std::slice::from_ref(self), batch, k)
    }
}

/// The `k` best songs per user of `batch` by the sum of `models`' scores: an ensemble's
/// members (built for the same catalogue; one model is an ensemble of one). Summing the
/// members' logits ranks by the product of their softmax probabilities.
pub fn recommend_sum<B: ModelOps>(
    b: &B,
    models: &[Model<B>],
    batch: &DeviceBatch<B>,
    k: usize,
) -> OpResult<Ranked> {
    let pending = recommend_sum_pending(b, models, batch, k)?;
    let host = b.to_host(&pending.tensors())?;
    pending.finish(&mut host.into_iter())
}

/// [`recommend_sum`] recorded on the device, not read back ([`Scorer::rank_sum_pending`]).
pub fn recommend_sum_pending<B: ModelOps>(
    b: &B,
    models: &[Model<B>],
    batch: &DeviceBatch<B>,
    k: usize,
) -> OpResult<PendingRank<B>> {
    let mut inputs = Vec::with_capacity(models.len());
    for m in models {
        let (u, _) = m.forward(b, batch, None)?;
        inputs.push((u, m.scorer.neighbour_blocks(b, &m.params, &batch.history)?));
    }
    let parts: Vec<scorer::Scoring<'_, B>> = models
        .iter()
        .zip(&inputs)
        .map(|(m, (u, nb))| scorer::Scoring {
            scorer: &m.scorer,
            p: &m.params,
            u,
            nb,
        })
        .collect();
    Scorer::rank_sum_pending(b, &parts, &batch.exclude, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusal names the floor, the sizes and what is left; on a GPU it offers the CPU
    /// backend only where the host has room for the model.
    #[test]
    fn a_memory_refusal_names_the_figures_and_offers_the_cpu_where_it_has_room() {
        let mut cfg = ModelConfig::new(ModelKind::Ainrnn, 1000);
        (cfg.emb, cfg.hidden) = (4096, 32);
        let cpu = memory_refusal(&cfg, Some(32), 12.34e9, 8_000_000_000, None);
        assert_eq!(
            cpu,
            "training this model takes at least 12.3 GB of memory (--emb 4096, --hidden 32, \
             --layers 5, --max-history 50, --batch 32, 1000 songs), and 8.0 GB are available: \
             choose smaller sizes"
        );
        let gpu = |host| {
            memory_refusal(
                &cfg,
                None,
                12.34e9,
                4e9 as u64,
                Some(("a GPU".into(), host)),
            )
        };
        let roomy = gpu(Some(30_000_000_000));
        assert!(
            roomy.contains("of GPU memory")
                && roomy.contains("4.0 GB are left on the GPU (a GPU): choose smaller sizes, or train on the CPU (--backend cpu: 30.0 GB available there)"),
            "{roomy}"
        );
        for host in [None, Some(10_000_000_000)] {
            let g = gpu(host);
            assert!(g.ends_with("(a GPU): choose smaller sizes"), "{g}");
        }
    }
}
