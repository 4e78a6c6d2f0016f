//! Scores over the whole song catalogue, tile by tile.
//!
//! A song's representation is a learned embedding plus a projection of its audio/MSD feature
//! vector, `q_s = E[s] + V[s] W_o`, so a song with features but no listens can still rank. The
//! score of user vector `u` is `u·q_s + b_s + γ·n_s`, where `n_s` is the item-neighbourhood
//! score of the history (the summed cosine similarity of song `s` to the history's songs, over
//! the training users' co-listens, top-K neighbours per song) and `γ` is learned. The low-rank
//! term `u·q_s` generalises; the neighbourhood term keeps the full-rank co-listening evidence
//! that a small embedding cannot hold (without it the learned models trail item-kNN on the
//! bundled data). The neighbour lists live on the device (uploaded once per fold); a step uploads
//! only its batch's histories, and each tile's term is added there (`ModelOps::neighbour_axpy`,
//! γ's gradient by `neighbour_row_dot`). The catalogue (≈360,000 songs at paper scale) is
//! processed in tiles: a `[batch, catalogue]` block would exceed a storage binding on many GPUs.
//! Training uses two sweeps: log-sum-exp merged across tiles, then per-tile loss and gradients.

use std::cell::OnceCell;

use rand::Rng;

use super::layers::view;
use super::neighbours::NeighbourLists;
use super::params::{PId, Params};
use crate::backend::model_ops::{Csr, ModelOps};
use crate::backend::{BTensor, BinaryOp, HostTensor, OpResult, ReduceOp, UnaryOp};
use crate::error::OpError;

/// Largest logits block (all users of a batch × the catalogue) kept between the two sweeps of
/// the training loss instead of being recomputed.
const KEEP_LOGITS_BYTES: usize = 512 << 20;

pub struct Scorer<B: ModelOps> {
    pub songs: usize,
    pub dim: usize,
    /// `(start, len)` of each tile.
    pub tiles: Vec<(usize, usize)>,
    /// The learned song table `[songs, dim]` (shared with the input embedding when tied).
    pub emb: PId,
    /// Row plans selecting each tile's songs from `emb`.
    pub plans: Vec<crate::backend::IndexPlan<B::Storage>>,
    pub bias: Vec<PId>,
    /// Feature projection `[D_f, dim]` and the constant feature tiles `[len, D_f]`.
    pub proj: Option<PId>,
    pub features: Vec<BTensor<B>>,
    pub feature_dim: usize,
    /// Per song: its most similar songs and their cosine similarity (empty until fitted); set
    /// with [`Scorer::set_neighbours`], which drops the device copy.
    neighbours: NeighbourLists,
    /// The lists on the device, built once per [`Scorer::set_neighbours`].
    device_lists: OnceCell<Option<Csr<B::Storage>>>,
    /// Weight of the neighbourhood score (when the model has the term).
    pub gamma: Option<PId>,
    /// Per song, the log of its weight as a history song of the term, `[songs, 1]` (when the
    /// model has per-song weights): how far its neighbour list is trusted.
    pub song_weights: Option<PId>,
    /// Per song, the log of the weight of each pair (song, neighbour) of its list, `[songs,
    /// keep]` in the device lists' order (a song's neighbours by column): how far each pair's
    /// similarity is trusted (when the model has pair weights).
    pub pair_weights: Option<PId>,
    /// The lists' length (the pair weights' row length).
    keep: usize,
}

/// A batch's histories for the neighbourhood term: each row's distinct songs, sorted, CSR
/// `[rows, songs]` (`None`: no term, or no neighbour lists yet).
pub struct NeighbourBlocks<B: ModelOps> {
    history: Option<Csr<B::Storage>>,
    /// With per-song or pair weights: the entries' songs as a row plan into the `[songs, ·]`
    /// weights (with per-song weights the block's values are their `exp`, gathered on the
    /// device).
    entries: Option<crate::backend::IndexPlan<B::Storage>>,
    /// With pair weights: the lists with this step's pair weights applied (`w · exp(logw)`).
    lists: Option<Csr<B::Storage>>,
}

/// `(history block, device lists, γ)` of a step with the neighbourhood term.
type Term<'a, B> = (
    &'a Csr<<B as crate::backend::Backend>::Storage>,
    &'a Csr<<B as crate::backend::Backend>::Storage>,
    PId,
);

impl<B: ModelOps> NeighbourBlocks<B> {
    /// Whether the scores get the term (the model has it and some song has neighbours).
    pub fn applies(&self) -> bool {
        self.history.is_some()
    }
}

/// Pair log-weights by (song, neighbour): per song, `(neighbour, log-weight)` by neighbour.
pub type PairWeights = Vec<Vec<(u32, f32)>>;

/// A list's neighbours by column: the order of the device lists and of the pair weights' rows.
fn sorted_columns(list: &[(u32, f32)]) -> Vec<u32> {
    let mut c: Vec<u32> = list.iter().map(|e| e.0).collect();
    c.sort_unstable();
    c
}

/// A ranking: per user, `(song, score)` best first.
pub type Ranked = Vec<Vec<(u32, f32)>>;

/// One model's part of a summed ranking ([`Scorer::rank_sum`]): its scorer and parameters, the
/// batch's user vectors and neighbour blocks.
pub struct Scoring<'a, B: ModelOps> {
    pub scorer: &'a Scorer<B>,
    pub p: &'a Params<B>,
    pub u: &'a BTensor<B>,
    pub nb: &'a NeighbourBlocks<B>,
}

/// A ranking recorded on the device ([`Scorer::rank_sum_pending`]): each tile's top-k scores
/// and ids, to be read back ([`PendingRank::tensors`], in that order) and merged
/// ([`PendingRank::finish`]).
pub struct PendingRank<B: ModelOps> {
    rows: usize,
    k: usize,
    tiles: Vec<PendingTile<B>>,
}

struct PendingTile<B: ModelOps> {
    start: usize,
    kk: usize,
    vals: BTensor<B>,
    ids: BTensor<B>,
}

impl<B: ModelOps> PendingRank<B> {
    /// What to read back: each tile's scores, then its ids.
    pub fn tensors(&self) -> Vec<&BTensor<B>> {
        self.tiles.iter().flat_map(|t| [&t.vals, &t.ids]).collect()
    }

    /// The `k` best songs per user from the values of [`PendingRank::tensors`], taken in order
    /// from `host`.
    pub fn finish(self, host: &mut impl Iterator<Item = HostTensor>) -> OpResult<Ranked> {
        let mut next = || {
            host.next().ok_or_else(|| OpError::Invalid {
                op: "rank_sum",
                detail: "a tile's top-k was not read back".into(),
            })
        };
        let mut best: Ranked = vec![Vec::new(); self.rows];
        for t in &self.tiles {
            let v = next()?.into_f32("rank_sum")?;
            let id = next()?.into_u32("rank_sum")?;
            let kk = t.kk;
            // Values read from the wrong tensors would index past them.
            if v.len() != self.rows * kk || id.len() != self.rows * kk {
                return Err(OpError::Shape {
                    op: "rank_sum",
                    detail: format!(
                        "tile at song {}: {} scores and {} ids read back, expected {} rows x {kk}",
                        t.start,
                        v.len(),
                        id.len(),
                        self.rows
                    ),
                });
            }
            for (r, out) in best.iter_mut().enumerate() {
                for q in 0..kk {
                    let (s, sc) = (id[r * kk + q], v[r * kk + q]);
                    if s != u32::MAX {
                        out.push((s + t.start as u32, sc));
                    }
                }
            }
        }
        for out in &mut best {
            out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            out.truncate(self.k);
        }
        Ok(best)
    }
}

/// The shape of a [`Scorer`].
pub struct ScorerSpec<'a> {
    pub songs: usize,
    pub dim: usize,
    /// `songs × D_f` row-major and `D_f`, or `None`.
    pub features: Option<(&'a [f32], usize)>,
    /// Most songs per tile.
    pub tile: usize,
    /// The `[songs, dim]` song table to score with (the model's input embedding: tied).
    pub emb: PId,
    /// Whether the scores have the item-neighbourhood term.
    pub with_neighbours: bool,
    /// Whether the term weighs each history song by a learned per-song weight.
    pub song_weights: bool,
    /// With learned pair weights: the lists' length.
    pub pair_weights: Option<usize>,
}

impl<B: ModelOps> Scorer<B> {
    pub fn new(
        b: &B,
        p: &mut Params<B>,
        rng: &mut impl Rng,
        spec: ScorerSpec<'_>,
    ) -> OpResult<Self> {
        let ScorerSpec {
            songs,
            dim,
            features,
            tile,
            emb,
            with_neighbours,
            song_weights,
            pair_weights,
        } = spec;
        let tile = tile.max(1);
        let tiles: Vec<(usize, usize)> = (0..songs)
            .step_by(tile)
            .map(|s| (s, tile.min(songs - s)))
            .collect();
        let mut plans = Vec::new();
        let mut bias = Vec::new();
        let mut feats = Vec::new();
        for (i, &(start, len)) in tiles.iter().enumerate() {
            let rows: Vec<u32> = (start as u32..(start + len) as u32).collect();
            plans.push(b.index_plan(&rows, songs)?);
            bias.push(p.zeros(b, &format!("songs.bias{i}"), &[len])?);
            if let Some((v, d)) = features {
                feats.push(b.upload_f32(&v[start * d..(start + len) * d], &[len, d])?);
            }
        }
        let (proj, feature_dim) = match features {
            Some((_, d)) => (Some(p.xavier(b, rng, "songs.proj", d, dim)?), d),
            None => (None, 0),
        };
        let gamma = if with_neighbours {
            Some(p.add(b, "songs.neighbour_weight", &[1], vec![1.0], false)?)
        } else {
            None
        };
        // log-weights 0: every song starts at weight 1, the unweighted term.
        let song_weights = if with_neighbours && song_weights {
            Some(p.zeros(b, "songs.neighbour_logw", &[songs, 1])?)
        } else {
            None
        };
        // Log-weights 0: every pair starts at its similarity.
        let keep = pair_weights.filter(|_| with_neighbours).unwrap_or(0);
        // The pairs are indexed by u32 on the device.
        if keep > 0
            && songs
                .checked_mul(keep)
                .is_none_or(|n| n > u32::MAX as usize)
        {
            return Err(OpError::Invalid {
                op: "pair weights",
                detail: format!("{songs} songs × {keep} neighbours exceed the u32 index range"),
            });
        }
        let pair_weights = if keep > 0 {
            Some(p.zeros(b, "songs.neighbour_pair_logw", &[songs, keep])?)
        } else {
            None
        };
        Ok(Scorer {
            songs,
            dim,
            tiles,
            emb,
            plans,
            bias,
            proj,
            features: feats,
            feature_dim,
            neighbours: Vec::new(),
            device_lists: OnceCell::new(),
            gamma,
            song_weights,
            pair_weights,
            keep,
        })
    }

    /// Per song: its most similar songs and their cosine similarity, best first (empty until
    /// fitted or restored).
    pub fn neighbours(&self) -> &NeighbourLists {
        &self.neighbours
    }

    /// Sets the neighbour lists (fitted on a fold's training users, or restored from a
    /// checkpoint). They go to the device once, on the next use: from then on a step uploads
    /// only its batch's histories.
    pub fn set_neighbours(&mut self, lists: NeighbourLists) {
        self.neighbours = lists;
        self.device_lists = OnceCell::new();
    }

    /// The neighbour lists on the device: CSR `[songs, songs]`, each song's columns sorted
    /// (the op's contract), f32 weights. `None` when no song has a neighbour. Built on first
    /// use after [`Scorer::set_neighbours`], then kept.
    fn device_lists(&self, b: &B) -> OpResult<Option<&Csr<B::Storage>>> {
        if let Some(l) = self.device_lists.get() {
            return Ok(l.as_ref());
        }
        let mut row_ptr = Vec::with_capacity(self.songs + 1);
        row_ptr.push(0u32);
        let (mut cols, mut vals) = (Vec::new(), Vec::new());
        let mut list: Vec<(u32, f32)> = Vec::new();
        for s in 0..self.songs {
            list.clear();
            list.extend_from_slice(self.neighbours.get(s).map(Vec::as_slice).unwrap_or(&[]));
            list.sort_unstable_by_key(|e| e.0);
            cols.extend(list.iter().map(|e| e.0));
            vals.extend(list.iter().map(|e| e.1));
            row_ptr.push(cols.len() as u32);
        }
        let lists = if cols.is_empty() {
            None
        } else {
            let csr = b.csr(self.songs, self.songs, &row_ptr, &cols, Some(&vals))?;
            if self.pair_weights.is_some() && csr.max_row() > self.keep {
                return Err(OpError::Invalid {
                    op: "neighbour lists",
                    detail: format!(
                        "a list of {} neighbours for pair weights of {} per song",
                        csr.max_row(),
                        self.keep
                    ),
                });
            }
            // Entry `j` of song `s` is pair `(s, j − ptr[s])` (`ModelOps::neighbour_pair_scale`).
            Some(csr)
        };
        Ok(self.device_lists.get_or_init(|| lists).as_ref())
    }

    /// The learned pair log-weights by (song, neighbour), for keeping them across a refit of
    /// the lists ([`Scorer::set_pair_weights`]). `None` without pair weights.
    pub fn pair_weight_map(&self, b: &B, p: &Params<B>) -> OpResult<Option<PairWeights>> {
        let Some(id) = self.pair_weights else {
            return Ok(None);
        };
        let w = b.to_f32(p.get(id))?;
        let m = (self.neighbours.iter().enumerate())
            .map(|(s, list)| {
                let row = &w[s * self.keep..(s + 1) * self.keep];
                sorted_columns(list)
                    .into_iter()
                    .zip(row.iter().copied())
                    .collect()
            })
            .collect();
        Ok(Some(m))
    }

    /// Sets the pair log-weights of the current lists from `m` times `scale` (0 for a pair `m`
    /// lacks, as a new pair starts).
    pub fn set_pair_weights(
        &self,
        b: &B,
        p: &mut Params<B>,
        m: &PairWeights,
        scale: f32,
    ) -> OpResult<()> {
        let Some(id) = self.pair_weights else {
            return Ok(());
        };
        let mut w = vec![0.0f32; self.songs * self.keep];
        for (s, list) in self.neighbours.iter().enumerate() {
            let old = m.get(s).map(Vec::as_slice).unwrap_or(&[]);
            // Both by neighbour: one merge.
            let mut i = 0;
            for (k, j) in sorted_columns(list).into_iter().enumerate().take(self.keep) {
                while i < old.len() && old[i].0 < j {
                    i += 1;
                }
                if i < old.len() && old[i].0 == j {
                    w[s * self.keep + k] = scale * old[i].1;
                }
            }
        }
        p.set(b, id, &w)
    }

    /// The batch's side of the neighbourhood term: every row's distinct history songs, sorted
    /// (each counted once, as in item-kNN), as a CSR block `[rows, songs]` — the only upload of
    /// the term per step. With per-song weights the block's values are the songs' weights,
    /// gathered from the parameters on the device. Empty when the model has no term or no song
    /// has a neighbour.
    pub fn neighbour_blocks(
        &self,
        b: &B,
        p: &Params<B>,
        history: &[Vec<u32>],
    ) -> OpResult<NeighbourBlocks<B>> {
        let Some(dl) = self.device_lists(b)?.filter(|_| self.gamma.is_some()) else {
            return Ok(NeighbourBlocks {
                history: None,
                entries: None,
                lists: None,
            });
        };
        let mut row_ptr = Vec::with_capacity(history.len() + 1);
        row_ptr.push(0u32);
        let mut cols: Vec<u32> = Vec::new();
        for h in history {
            let start = cols.len();
            cols.extend_from_slice(h);
            cols[start..].sort_unstable();
            let mut kept = start;
            for i in start..cols.len() {
                if i == start || cols[i] != cols[kept - 1] {
                    cols[kept] = cols[i];
                    kept += 1;
                }
            }
            cols.truncate(kept);
            row_ptr.push(cols.len() as u32);
        }
        let mut csr = b.csr(history.len(), self.songs, &row_ptr, &cols, None)?;
        let weighted = self.song_weights.is_some() || self.pair_weights.is_some();
        let entries = if weighted && !cols.is_empty() {
            Some(b.index_plan(&cols, self.songs)?)
        } else {
            None
        };
        if let (Some(w), Some(plan)) = (self.song_weights, &entries) {
            let logw = b.gather_rows(p.get(w), plan)?;
            let vals = b.unary(UnaryOp::Exp, &view::<B>(&logw, &[cols.len()])?)?;
            csr = csr.with_vals(vals)?;
        }
        // Pair weights: the list values of the history's songs times exp(their log-weights),
        // on the device (the lists stay where they are; a step uploads nothing for them). The
        // other lists are left at 0: the term reads only the history songs' lists.
        let lists = match (self.pair_weights, &entries) {
            (Some(w), Some(plan)) => {
                let vals = b.neighbour_pair_scale(dl, p.get(w), plan)?;
                Some(dl.clone().with_vals(vals)?)
            }
            _ => None,
        };
        Ok(NeighbourBlocks {
            history: Some(csr),
            entries,
            lists,
        })
    }

    /// The history block and the device lists, when the term applies.
    fn term<'a>(&'a self, nb: &'a NeighbourBlocks<B>) -> Option<Term<'a, B>> {
        let h = nb.history.as_ref()?;
        let lists = match &nb.lists {
            Some(l) => l,
            None => self.device_lists.get()?.as_ref()?,
        };
        Some((h, lists, self.gamma?))
    }

    /// One tile: the whole song table in order (tiles cover `0..songs`), so its gather is the
    /// identity.
    fn one_tile(&self) -> bool {
        self.tiles.len() == 1
    }

    /// `q` of one tile: `[len, dim]`.
    fn tile_repr(&self, b: &B, p: &Params<B>, i: usize) -> OpResult<BTensor<B>> {
        if self.one_tile() && self.proj.is_none() {
            // The table itself (a shared handle, only read): no copy of the whole table.
            return Ok(p.get(self.emb).clone());
        }
        let mut q = b.gather_rows(p.get(self.emb), &self.plans[i])?;
        if let Some(w) = self.proj {
            b.matmul_into(&mut q, &self.features[i], p.get(w), false, false, 1.0, 1.0)?;
        }
        Ok(q)
    }

    fn tile_logits(
        &self,
        b: &B,
        p: &Params<B>,
        u: &BTensor<B>,
        q: &BTensor<B>,
        i: usize,
        nb: &NeighbourBlocks<B>,
    ) -> OpResult<BTensor<B>> {
        let mut z = b.matmul_bias(u, q, false, true, p.get(self.bias[i]))?;
        if let Some((h, lists, g)) = self.term(nb) {
            b.neighbour_axpy(&mut z, self.tiles[i].0, h, lists, p.get(g))?;
        }
        Ok(z)
    }

    /// Softmax cross-entropy over the whole catalogue for user vectors `u` `[B, dim]` and weighted
    /// targets `(row, song, weight)`; accumulates the scorer's gradients and returns
    /// `(Σ_rows loss as a [1] tensor, ∂u)`. Rows without targets contribute nothing.
    pub fn loss_backward(
        &self,
        b: &B,
        p: &mut Params<B>,
        u: &BTensor<B>,
        targets: &[(u32, u32, f32)],
        nb: &NeighbourBlocks<B>,
    ) -> OpResult<(BTensor<B>, BTensor<B>)> {
        let rows = u.rows();
        // One tile (a catalogue up to the tile size): one fused pass, log-sum-exp and gradient
        // row by row. Several tiles: sweep 1 merges the log-sum-exp over all tiles, sweep 2 forms
        // each tile's loss and gradient from it.
        let single = self.one_tile();
        // Sweep 1: log-sum-exp over all tiles. The logits are kept for sweep 2 when the whole
        // block fits the budget (92 MB for 64 users × 360,000 songs), else recomputed there.
        let keep = single || rows * self.songs * 4 <= KEEP_LOGITS_BYTES;
        let mut qs = Vec::with_capacity(self.tiles.len());
        let mut zs = Vec::with_capacity(if keep { self.tiles.len() } else { 0 });
        let mut lse: Option<BTensor<B>> = None;
        for i in 0..self.tiles.len() {
            let q = self.tile_repr(b, p, i)?;
            let z = self.tile_logits(b, p, u, &q, i, nb)?;
            if !single {
                let l = b.logsumexp_rows(&z)?;
                lse = Some(match lse {
                    None => l,
                    Some(acc) => b.binary(BinaryOp::LogAddExp, &acc, &l)?,
                });
            }
            qs.push(q);
            if keep {
                zs.push(Some(z));
            }
        }
        // Several tiles: the whole rows' log-sum-exp and target weight for every tile's loss.
        let whole_rows = if single {
            None
        } else {
            let mut wsum = vec![0.0f32; rows];
            for t in targets {
                wsum[t.0 as usize] += t.2;
            }
            let lse = match lse {
                Some(l) => l,
                None => b.zeros(&[rows])?,
            };
            Some((lse, b.upload_f32(&wsum, &[rows])?))
        };
        // Sweep 2: per-tile loss and gradients (the logits are recomputed, not kept).
        let mut loss = b.zeros(&[rows])?;
        // With per-song weights: Σ_tiles g·w per history entry, for ∂γ and the weights' gradient.
        let mut entry_dots: Option<BTensor<B>> = None;
        // With pair weights: per history entry and list position, Σ_tiles v·w·g (over γ).
        let mut pair_grad = match (self.pair_weights, self.term(nb)) {
            (Some(_), Some((h, _, _))) if h.nnz() > 0 => Some(b.zeros(&[h.nnz(), self.keep])?),
            _ => None,
        };
        let mut du = b.zeros(&[rows, self.dim])?;
        for (i, &(start, len)) in self.tiles.iter().enumerate() {
            let local: Vec<(u32, u32, f32)> = targets
                .iter()
                .filter(|t| (t.1 as usize) >= start && (t.1 as usize) < start + len)
                .map(|t| (t.0, t.1 - start as u32, t.2))
                .collect();
            // Taken, not cloned: the tile's logits are freed as soon as its gradient exists.
            let z = match zs.get_mut(i).and_then(Option::take) {
                Some(z) => z,
                None => self.tile_logits(b, p, u, &qs[i], i, nb)?,
            };
            let t = b.targets(rows, len, &local)?;
            let (l, g) = match &whole_rows {
                None => b.cross_entropy(&z, &t)?,
                Some((lse, wsum)) => b.cross_entropy_tile(&z, lse, wsum, &t)?,
            };
            drop(z);
            // ∂γ: this tile's part of Σ_rows g·n, summed over the rows straight into γ's
            // gradient.
            if let Some((h, lists, gid)) = self.term(nb) {
                if let Some(out) = &mut pair_grad {
                    b.neighbour_pair_grad(out, &g, start, h, lists)?;
                }
                if self.song_weights.is_some() {
                    let d = b.neighbour_entry_dot(&g, start, h, lists)?;
                    match &mut entry_dots {
                        None => entry_dots = Some(d),
                        Some(acc) => b.axpy(acc, &d, 1.0)?,
                    }
                } else {
                    let d = b.neighbour_row_dot(&g, start, h, lists)?;
                    p.acc_grad_sum_cols(b, gid, &view::<B>(&d, &[rows, 1])?)?;
                }
            }
            b.axpy(&mut loss, &l, 1.0)?;
            b.matmul_into(&mut du, &g, &qs[i], false, false, 1.0, 1.0)?;
            p.acc_grad_sum_cols(b, self.bias[i], &g)?;
            let keep = single && self.proj.is_some() && p.keeps_product(b, self.emb)?;
            match (single, self.proj) {
                // The table's gradient straight into its accumulator, or kept unformed for
                // the optimizer to form in place.
                (true, None) => p.acc_grad_product(b, self.emb, &g, u)?,
                // Kept unformed, with song features: the projection's gradient takes the
                // product's other order, Fᵀ·(gᵀ·u) = (g·F)ᵀ·u, through a [rows, D_f] product
                // instead of the table-sized gᵀ·u.
                (true, Some(w)) if keep => {
                    let gf = b.matmul(&g, &self.features[i], false, false)?;
                    p.acc_grad_matmul(b, w, &gf, u, true, false)?;
                    p.acc_grad_product(b, self.emb, &g, u)?;
                }
                (_, proj) => {
                    let dq = b.matmul(&g, u, true, false)?;
                    if let Some(w) = proj {
                        p.acc_grad_matmul(b, w, &self.features[i], &dq, true, false)?;
                    }
                    if single {
                        p.acc_grad(b, self.emb, dq)?;
                    } else {
                        p.acc_grad_rows(b, self.emb, &dq, &self.plans[i])?;
                    }
                }
            }
        }
        // Per-song weights: the entry (h, v = exp(logw_h)) adds γ·v·w per neighbour, so with
        // d_e = Σ g·w: ∂γ = Σ_e v_e d_e and ∂logw_h = Σ_{e of h} γ v_e d_e.
        if let (Some(d), Some((h, _, gid)), Some(plan), Some(wid)) =
            (entry_dots, self.term(nb), &nb.entries, self.song_weights)
        {
            let v = h.expect_vals("song weights")?;
            let n = v.len();
            p.acc_grad_matmul(
                b,
                gid,
                &view::<B>(v, &[1, n])?,
                &view::<B>(&d, &[n, 1])?,
                false,
                false,
            )?;
            let vd = b.binary(BinaryOp::Mul, v, &d)?;
            let dl = b.binary(BinaryOp::Mul, &vd, p.get(gid))?;
            p.acc_grad_rows(b, wid, &view::<B>(&dl, &[n, 1])?, plan)?;
        }
        // Pair weights: the pair (h, k) adds γ·v·w_k·exp(logw) per entry of h, so its gradient
        // is γ times the per-entry sums, added up by song.
        if let (Some(out), Some((_, _, gid)), Some(plan), Some(pid)) =
            (pair_grad, self.term(nb), &nb.entries, self.pair_weights)
        {
            let scaled = b.binary(BinaryOp::Mul, &out, p.get(gid))?;
            p.acc_grad_rows(b, pid, &scaled, plan)?;
        }
        let total = b.reduce_rows(ReduceOp::Sum, &view::<B>(&loss, &[1, rows])?)?;
        Ok((total, du))
    }

    /// The neighbourhood term of each of `songs` for one user whose kept history is `history`,
    /// split by history song: per song, `(h, γ · w_h · sim(h, s) · w_hs)` for every distinct
    /// history song `h` whose list has `s` (`w_h`, `w_hs`: the per-song and pair weights when
    /// the model has them, else 1), largest first. Their sum is what the term adds to the song's
    /// score (the device sums the same products in f32). Empty when the model has no term. Reads
    /// back γ and the weights of the history's songs only.
    pub fn term_parts(
        &self,
        b: &B,
        p: &Params<B>,
        history: &[u32],
        songs: &[u32],
    ) -> OpResult<Vec<Vec<(u32, f32)>>> {
        let mut out = vec![Vec::new(); songs.len()];
        let Some(gamma) = self.gamma else {
            return Ok(out);
        };
        let mut h: Vec<u32> = history.to_vec();
        h.sort_unstable();
        h.dedup();
        if h.is_empty() || self.neighbours.iter().all(Vec::is_empty) {
            return Ok(out);
        }
        if let Some(&bad) = h.iter().chain(songs).find(|&&s| s as usize >= self.songs) {
            return Err(OpError::Invalid {
                op: "term_parts",
                detail: format!("song {bad} outside the catalogue of {}", self.songs),
            });
        }
        let g = b.to_f32(p.get(gamma))?.first().copied().unwrap_or(0.0);
        let plan = b.index_plan(&h, self.songs)?;
        let read = |id: Option<PId>| -> OpResult<Option<Vec<f32>>> {
            id.map(|id| b.to_f32(&b.gather_rows(p.get(id), &plan)?))
                .transpose()
        };
        let (song_w, pair_w) = (read(self.song_weights)?, read(self.pair_weights)?);
        let wanted: std::collections::HashMap<u32, Vec<usize>> =
            songs
                .iter()
                .enumerate()
                .fold(Default::default(), |mut m, (i, &s)| {
                    m.entry(s).or_insert_with(Vec::new).push(i);
                    m
                });
        for (r, &hs) in h.iter().enumerate() {
            let w_h = song_w.as_ref().map_or(1.0, |w| w[r].exp());
            let mut list = self
                .neighbours
                .get(hs as usize)
                .cloned()
                .unwrap_or_default();
            // Pair weights follow the lists' column order (as on the device).
            list.sort_unstable_by_key(|e| e.0);
            for (k, &(s, sim)) in list.iter().enumerate() {
                let Some(at) = wanted.get(&s) else { continue };
                let w_hs = pair_w.as_ref().map_or(1.0, |w| w[r * self.keep + k].exp());
                for &i in at {
                    out[i].push((hs, g * (w_h * (sim * w_hs))));
                }
            }
        }
        for parts in &mut out {
            parts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        Ok(out)
    }

    /// Every song's score for every user vector of `u`: one row of `songs` scores per user (full
    /// rankings on the host; every tile read back in one wait).
    pub fn scores(
        &self,
        b: &B,
        p: &Params<B>,
        u: &BTensor<B>,
        nb: &NeighbourBlocks<B>,
    ) -> OpResult<Vec<Vec<f32>>> {
        let rows = u.rows();
        let u1 = view::<B>(u, &[rows, self.dim])?;
        let mut z = Vec::with_capacity(self.tiles.len());
        for i in 0..self.tiles.len() {
            let q = self.tile_repr(b, p, i)?;
            z.push(self.tile_logits(b, p, &u1, &q, i, nb)?);
        }
        let host = b.to_host(&z.iter().collect::<Vec<_>>())?;
        let mut out = vec![Vec::with_capacity(self.songs); rows];
        for (t, &(_, len)) in host.into_iter().zip(&self.tiles) {
            let v = t.into_f32("scores")?;
            if v.len() != rows * len {
                return Err(OpError::Shape {
                    op: "scores",
                    detail: format!("{} scores read back, expected {rows} x {len}", v.len()),
                });
            }
            for (o, row) in out.iter_mut().zip(v.chunks_exact(len)) {
                o.extend_from_slice(row);
            }
        }
        Ok(out)
    }

    /// The `k` best songs per user, skipping `exclude[row]` (e.g. the visible history).
    pub fn rank(
        &self,
        b: &B,
        p: &Params<B>,
        u: &BTensor<B>,
        exclude: &[Vec<u32>],
        k: usize,
        nb: &NeighbourBlocks<B>,
    ) -> OpResult<Ranked> {
        Self::rank_sum(
            b,
            &[Scoring {
                scorer: self,
                p,
                u,
                nb,
            }],
            exclude,
            k,
        )
    }

    /// [`Scorer::rank`] by the sum of several models' scores (an ensemble's members; same
    /// catalogue and tiles): each tile's logits are added on the device before the mask and the
    /// top-k, so an ensemble costs its members' products and no extra read-back.
    pub fn rank_sum(
        b: &B,
        parts: &[Scoring<'_, B>],
        exclude: &[Vec<u32>],
        k: usize,
    ) -> OpResult<Ranked> {
        let pending = Self::rank_sum_pending(b, parts, exclude, k)?;
        let host = b.to_host(&pending.tensors())?;
        pending.finish(&mut host.into_iter())
    }

    /// [`Scorer::rank_sum`] recorded on the device and not read back: batches of users can be
    /// ranked one after another and read back together, with one wait for all of them.
    pub fn rank_sum_pending(
        b: &B,
        parts: &[Scoring<'_, B>],
        exclude: &[Vec<u32>],
        k: usize,
    ) -> OpResult<PendingRank<B>> {
        let Some(first) = parts.first() else {
            return Err(OpError::Invalid {
                op: "rank_sum",
                detail: "no model to rank with".into(),
            });
        };
        let this = first.scorer;
        if let Some(o) = parts.iter().find(|o| o.scorer.tiles != this.tiles) {
            return Err(OpError::Invalid {
                op: "rank_sum",
                detail: format!(
                    "members score {} and {} songs in different tiles",
                    this.songs, o.scorer.songs
                ),
            });
        }
        let rows = first.u.rows();
        let mut tiles = Vec::with_capacity(this.tiles.len());
        for (i, &(start, len)) in this.tiles.iter().enumerate() {
            let q = this.tile_repr(b, first.p, i)?;
            let mut z = this.tile_logits(b, first.p, first.u, &q, i, first.nb)?;
            for o in &parts[1..] {
                let q = o.scorer.tile_repr(b, o.p, i)?;
                let zo = o.scorer.tile_logits(b, o.p, o.u, &q, i, o.nb)?;
                b.axpy(&mut z, &zo, 1.0)?;
            }
            let mut row_ptr = vec![0u32; rows + 1];
            let mut cols = Vec::new();
            for (r, ex) in exclude.iter().enumerate().take(rows) {
                cols.extend(
                    ex.iter()
                        .filter(|&&s| (s as usize) >= start && (s as usize) < start + len)
                        .map(|&s| s - start as u32),
                );
                row_ptr[r + 1] = cols.len() as u32;
            }
            for r in exclude.len().min(rows)..rows {
                row_ptr[r + 1] = cols.len() as u32;
            }
            if !cols.is_empty() {
                b.mask_entries(&mut z, &b.csr(rows, len, &row_ptr, &cols, None)?)?;
            }
            let kk = k.min(len).max(1);
            let (vals, ids) = b.topk_rows(&z, kk)?;
            tiles.push(PendingTile {
                start,
                kk,
                vals,
                ids,
            });
        }
        Ok(PendingRank { rows, k, tiles })
    }
}
