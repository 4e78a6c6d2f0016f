//! The recommenders: AINRNN (the paper's model) and the IndRNN and LSTM baselines, sharing the
//! same input (a listening history with play counts, the user portrait) and the same output (a
//! score for every song of the catalogue).
//!
//! AINRNN: history → 5 stacked IndRNN layers, each fed the concatenation of the input and all
//! earlier layers' outputs (dense connections instead of residual shortcuts) → attention whose
//! weights add the play counts as preference → user vector (with the portrait) → catalogue scores.
//! IndRNN baseline: the same layers stacked plainly, last state. LSTM baseline: stacked LSTM, last
//! state.

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
use self::scorer::{Ranked, Scorer, ScorerSpec};
use self::stack::{Recurrent, RecurrentPass};
use crate::backend::model_ops::ModelOps;
use crate::backend::{BTensor, OpResult};

pub struct Model<B: ModelOps> {
    pub cfg: ModelConfig,
    pub params: Params<B>,
    in_emb: PId,
    in_feat: Option<BTensor<B>>,
    layers: Recurrent,
    /// AINRNN's attention pooling; the dense connections come with it (`None`: a plain stack
    /// read at its last state).
    att: Option<PlayAttention>,
    age: Option<PId>,
    lang: Option<PId>,
    user: MultiLinear,
    pub scorer: Scorer<B>,
}

/// What the forward pass keeps for the backward pass.
pub struct Cache<B: ModelOps> {
    inputs: Vec<BTensor<B>>,
    layers: RecurrentPass<B>,
    /// Dropout masks per layer (`[B, H]`, entries 0 or 1/keep), when training.
    drop: Vec<Option<BTensor<B>>>,
    /// Layer outputs after dropout.
    outs: Vec<BTensor<B>>,
    att: Option<AttentionCache<B>>,
    user_in: Vec<BTensor<B>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dest {
    Emb,
    Out(usize),
    Nowhere,
}

impl<B: ModelOps> Model<B> {
    /// A freshly initialised model. `features`: the song vectors (`songs × feature_dim`).
    pub fn new(b: &B, cfg: ModelConfig, features: Option<&[f32]>) -> OpResult<Self> {
        cfg.validate()?;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut p = Params::new();
        // One song table serves as the input embedding and as the learned part of the songs'
        // output representation (tied, as in Press & Wolf 2017): listening to a song and being
        // predicted to like it share one vector, which small datasets need.
        let in_emb = p.uniform(b, &mut rng, "songs.emb", &[cfg.songs, cfg.emb], 0.05, true)?;
        let in_feat = match (features, cfg.feature_dim) {
            (Some(v), d) if d > 0 => Some(b.upload_f32(v, &[cfg.songs, d])?),
            _ => None,
        };
        let mut in_dims = vec![cfg.emb];
        if in_feat.is_some() {
            in_dims.push(cfg.feature_dim);
        }
        in_dims.push(1); // log(1 + plays)
        let u_max = cfg.mag.powf(1.0 / cfg.max_history.max(1) as f32);
        let h = cfg.hidden;
        let (layers, att) = match cfg.kind {
            ModelKind::Ainrnn => {
                let mut layers = Vec::new();
                for l in 0..cfg.layers {
                    let mut dims = in_dims.clone();
                    dims.extend(std::iter::repeat_n(h, l));
                    let spec = LayerSpec {
                        name: &format!("indrnn{l}"),
                        dims: &dims,
                        hidden: h,
                    };
                    layers.push(IndRnnLayer::new(b, &mut p, &mut rng, spec, u_max)?);
                }
                let att = PlayAttention::new(b, &mut p, &mut rng, h, cfg.att)?;
                (Recurrent::IndRnn(layers.into()), Some(att))
            }
            ModelKind::Indrnn => {
                let mut layers = Vec::new();
                for l in 0..cfg.layers {
                    let dims = if l == 0 { in_dims.clone() } else { vec![h] };
                    let spec = LayerSpec {
                        name: &format!("indrnn{l}"),
                        dims: &dims,
                        hidden: h,
                    };
                    layers.push(IndRnnLayer::new(b, &mut p, &mut rng, spec, u_max)?);
                }
                (Recurrent::IndRnn(layers.into()), None)
            }
            ModelKind::Lstm => {
                let mut layers = Vec::new();
                for l in 0..cfg.layers {
                    let dims = if l == 0 { in_dims.clone() } else { vec![h] };
                    let spec = LayerSpec {
                        name: &format!("lstm{l}"),
                        dims: &dims,
                        hidden: h,
                    };
                    layers.push(LstmLayer::new(b, &mut p, &mut rng, spec)?);
                }
                (Recurrent::Lstm(layers.into()), None)
            }
        };
        // AINRNN pools every step's dense representation (inputs and all layers); the baselines
        // take the last layer's last state.
        let mut user_dims = match cfg.kind {
            ModelKind::Ainrnn => {
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
        };
        let scorer = Scorer::new(b, &mut p, &mut rng, spec)?;
        Ok(Model {
            cfg,
            params: p,
            in_emb,
            in_feat,
            layers,
            att,
            age,
            lang,
            user,
            scorer,
        })
    }

    /// Fits the item-neighbourhood term on the training users' histories: for every song its
    /// `cfg.neighbours` most similar songs by cosine over co-listens (as item-kNN). Only training
    /// users may be passed: the term must not see validation or test users.
    pub fn fit_neighbours(&mut self, histories: &[(Vec<u32>, Vec<f32>)], train_users: &[u32]) {
        if self.cfg.neighbours == 0 {
            return;
        }
        self.scorer.set_neighbours(neighbours::fit(
            self.cfg.songs,
            histories,
            train_users,
            self.cfg.neighbours,
        ));
    }

    /// Dense connections (every layer sees the inputs and all earlier outputs): AINRNN, the
    /// model with attention.
    fn dense(&self) -> bool {
        self.att.is_some()
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
        let h = self.cfg.hidden;
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
        let drop = (0..self.layers.len())
            .map(|i| {
                seed.map(|s| b.dropout_mask(&[bs, h], keep, s, i as u32))
                    .transpose()
            })
            .collect::<OpResult<Vec<_>>>()?;
        let mut layers = self.layers.pass();
        let mut outs: Vec<BTensor<B>> = Vec::new();
        let apply_drop = |t: &BTensor<B>, m: &Option<BTensor<B>>| -> OpResult<BTensor<B>> {
            match m {
                Some(m) => b.time_mask_mul(t, m),
                None => Ok(t.clone()),
            }
        };
        for i in 0..self.layers.len() {
            // Dense connections: every layer sees the inputs and all earlier outputs; the
            // stacks see the previous layer only.
            let xs: Vec<&BTensor<B>> = if self.dense() {
                inputs.iter().chain(outs.iter()).collect()
            } else if i == 0 {
                inputs.iter().collect()
            } else {
                vec![&outs[i - 1]]
            };
            let x = SeqInputs {
                xs: &xs,
                mask: &batch.mask,
            };
            let h = apply_drop(layers.push(b, p, &x, (bs, l))?, &drop[i])?;
            outs.push(h);
        }
        let last = outs.last().expect("at least one layer");
        let (mut user_in, att) = match &self.att {
            Some(att) => {
                let values: Vec<&BTensor<B>> = inputs.iter().chain(outs.iter()).collect();
                let x = Pooling {
                    h: last,
                    values: &values,
                    logc: &batch.logc,
                    shape: (bs, l),
                };
                let (zs, c) = att.forward(b, p, &x, &batch.mask_add)?;
                (zs, Some(c))
            }
            None => (
                vec![b.gather_rows(&view::<B>(last, &[bs * l, h])?, &batch.last)?],
                None,
            ),
        };
        if let Some(a) = self.age {
            user_in.push(b.gather_rows(p.get(a), &batch.age)?);
        }
        if let Some(t) = self.lang {
            user_in.push(b.gather_rows(p.get(t), &batch.lang)?);
        }
        if self.cfg.n_genre > 0 {
            user_in.push(batch.genre.clone());
        }
        let refs: Vec<&BTensor<B>> = user_in.iter().collect();
        let u = self.user.forward(b, p, &refs)?;
        Ok((
            u,
            Cache {
                inputs,
                layers,
                drop,
                outs,
                att,
                user_in,
            },
        ))
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
        let refs: Vec<&BTensor<B>> = cache.user_in.iter().collect();
        let nl = cache.outs.len();
        let n_in = cache.inputs.len();
        let dense = self.dense();
        // The pooled blocks come first in the user map's inputs, then the portrait.
        let n_pooled = if dense { n_in + nl } else { 1 };
        let mut need = vec![false; refs.len()];
        need[..n_pooled].iter_mut().for_each(|x| *x = true);
        if self.age.is_some() {
            need[n_pooled] = true;
        }
        if self.lang.is_some() {
            need[n_pooled + self.age.is_some() as usize] = true;
        }
        let mut d = self.user.backward(b, &mut self.params, &refs, du, &need)?;
        let dzs: Vec<BTensor<B>> = d[..n_pooled]
            .iter_mut()
            .map(|x| x.take().expect("asked for ∂z"))
            .collect();
        let mut slot = n_pooled;
        for (table, plan) in [(self.age, &batch.age), (self.lang, &batch.lang)] {
            if let Some(t) = table {
                let g = d[slot].take().expect("asked for the portrait gradient");
                self.params.acc_grad_rows(b, t, &g, plan)?;
                slot += 1;
            }
        }
        // ∂(layer outputs after dropout), filled from the top down.
        let mut douts: Vec<Option<BTensor<B>>> = vec![None; nl];
        let mut demb: Option<BTensor<B>> = None;
        match &self.att {
            Some(att) => {
                let c = cache.att.as_ref().expect("attention cache");
                let values: Vec<&BTensor<B>> =
                    cache.inputs.iter().chain(cache.outs.iter()).collect();
                let x = Pooling {
                    h: &cache.outs[nl - 1],
                    values: &values,
                    logc: &batch.logc,
                    shape: (bs, l),
                };
                let (dscore, dvalues) = att.backward(b, &mut self.params, &x, c, &dzs)?;
                douts[nl - 1] = Some(dscore);
                for (j, dv) in dvalues.into_iter().enumerate() {
                    if j == 0 {
                        demb = Some(view::<B>(&dv, &[bs * l, self.cfg.emb])?);
                    } else if j >= n_in {
                        let k = j - n_in;
                        douts[k] = Some(match douts[k].take() {
                            None => dv,
                            Some(mut acc) => {
                                b.axpy(&mut acc, &dv, 1.0)?;
                                acc
                            }
                        });
                    }
                }
            }
            None => {
                let mut dh = b.zeros(&[bs * l, h])?;
                b.scatter_add_rows(&mut dh, &dzs[0], &batch.last)?;
                douts[nl - 1] = Some(view::<B>(&dh, &[bs, l, h])?);
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
            let dh = match &cache.drop[i] {
                Some(m) => b.time_mask_mul(&dout, m)?,
                None => dout,
            };
            let xs: Vec<&BTensor<B>> = if dense {
                cache.inputs.iter().chain(cache.outs[..i].iter()).collect()
            } else if i == 0 {
                cache.inputs.iter().collect()
            } else {
                vec![&cache.outs[i - 1]]
            };
            let need: Vec<bool> = (0..xs.len()).map(|j| dest(i, j) != Dest::Nowhere).collect();
            let x = SeqInputs {
                xs: &xs,
                mask: &batch.mask,
            };
            let g = OutGrad {
                dh: &dh,
                need_dx: &need,
            };
            let dxs = cache.layers.backward(i, b, &mut self.params, &x, g)?;
            for (j, dx) in dxs.into_iter().enumerate() {
                let Some(dx) = dx else { continue };
                let slot = match dest(i, j) {
                    Dest::Emb => &mut demb,
                    Dest::Out(k) => &mut douts[k],
                    Dest::Nowhere => continue,
                };
                let dx = match dest(i, j) {
                    Dest::Out(_) => view::<B>(&dx, &[bs, l, h])?,
                    _ => dx,
                };
                *slot = Some(match slot.take() {
                    None => dx,
                    Some(mut acc) => {
                        b.axpy(&mut acc, &dx, 1.0)?;
                        acc
                    }
                });
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
        let nb = self.scorer.neighbour_blocks(b, &batch.history)?;
        let (loss, du) = self
            .scorer
            .loss_backward(b, &mut self.params, &u, &batch.targets, &nb)?;
        self.backward(b, batch, &cache, &du)?;
        self.params.apply(b, optim)?;
        // Submit now: the GPU works while the host prepares the next batch, and every step
        // returns its temporaries to the pool at the same point (no growth after warm-up).
        b.flush()?;
        Ok(loss)
    }

    /// Summed loss of a batch without updating anything (no dropout).
    pub fn eval_loss(&mut self, b: &B, batch: &DeviceBatch<B>) -> OpResult<BTensor<B>> {
        let (u, _) = self.forward(b, batch, None)?;
        let nb = self.scorer.neighbour_blocks(b, &batch.history)?;
        let (loss, _) = self
            .scorer
            .loss_backward(b, &mut self.params, &u, &batch.targets, &nb)?;
        self.params.zero_grads();
        Ok(loss)
    }

    /// Top-`k` songs for every user of the batch, excluding the batch's `exclude` lists.
    pub fn recommend(&self, b: &B, batch: &DeviceBatch<B>, k: usize) -> OpResult<Ranked> {
        let (u, _) = self.forward(b, batch, None)?;
        let nb = self.scorer.neighbour_blocks(b, &batch.history)?;
        self.scorer
            .rank(b, &self.params, &u, &batch.exclude, k, &nb)
    }
}
