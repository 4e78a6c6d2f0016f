//! The training loop: epochs over shuffled users, a fresh visible/target split of each training
//! user's songs every epoch (the same protocol as evaluation), validation precision@10 and
//! NDCG@10 after each epoch, early stopping, non-finite or diverging loss detection.
//!
//! Determinism: everything random in epoch `e` (shuffle, splits, dropout) comes from a generator
//! seeded with `(seed, e)`, so a run resumed from the checkpoint of epoch `e` continues exactly
//! as the uninterrupted run would have.

pub mod corpus;
pub mod metrics;
pub mod neighbours;
pub mod run;

use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use self::metrics::{evaluate, Catalogue, Metrics};
use crate::backend::model_ops::ModelOps;
use crate::backend::LaterRead;
use crate::error::Error;
use crate::model::batch::{upload, Example, PortraitTable};
use crate::model::params::OptimConfig;
use crate::model::scorer::{PendingRank, Scorer, Scoring};
use crate::model::Model;

/// The interactions a model learns from, indexed by user (history order) — a view of the
/// dataset file independent of its storage.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    pub songs: usize,
    pub histories: Vec<(Vec<u32>, Vec<f32>)>,
    /// Song feature vectors `songs × dim`.
    pub features: Option<(Vec<f32>, usize)>,
    pub portraits: Option<PortraitTable>,
    pub n_age: usize,
    pub n_lang: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    pub epochs: u32,
    pub batch: usize,
    pub optim: OptimConfig,
    /// Stop after this many epochs without a better validation NDCG@10 (0: never).
    pub patience: u32,
    pub seed: u64,
    /// Share of a training user's songs shown as history; the rest are the targets.
    pub visible_share: f64,
    /// Cut-off for the validation metrics.
    pub k: usize,
    /// Users ranked together by a validation ([`RANK_BATCH`] by default, and for checkpoints
    /// saved before the field; the lists do not depend on it).
    #[serde(default = "rank_batch_default")]
    pub rank_batch: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch: 64,
            optim: OptimConfig::default(),
            patience: 3,
            seed: 42,
            visible_share: 0.5,
            k: 10,
            rank_batch: RANK_BATCH,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochReport {
    pub epoch: u32,
    /// Mean training loss (mean negative log-likelihood of a target song) over the epoch.
    pub loss: f64,
    pub seconds: f64,
    pub users_per_second: f64,
    pub steps: usize,
    pub precision_at_10: f64,
    pub ndcg_at_10: f64,
    pub recall_at_10: f64,
    pub validation_users: usize,
    /// This epoch is the best so far (its weights are the ones kept).
    pub best: bool,
    /// The ensemble member trained (0: the first, or the only model).
    #[serde(default)]
    pub member: u32,
}

/// Progress of a run, saved in checkpoints.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: u32,
    pub best_ndcg: f64,
    pub best_epoch: u32,
    pub bad_epochs: u32,
    pub history: Vec<EpochReport>,
}

impl TrainState {
    pub fn should_stop(&self, cfg: &TrainConfig) -> bool {
        self.epoch >= cfg.epochs || (cfg.patience > 0 && self.bad_epochs >= cfg.patience)
    }
}

/// Splits a user's songs at random into visible history (kept in listening order) and targets.
pub fn split_example(
    user: u32,
    songs: &[u32],
    plays: &[f32],
    share: f64,
    rng: &mut impl Rng,
) -> Option<Example> {
    if songs.len() < 2 {
        return None;
    }
    let n_vis = ((songs.len() as f64 * share).round() as usize).clamp(1, songs.len() - 1);
    let mut idx: Vec<usize> = (0..songs.len()).collect();
    idx.shuffle(rng);
    let mut vis: Vec<usize> = idx[..n_vis].to_vec();
    vis.sort_unstable();
    let vis_songs: Vec<u32> = vis.iter().map(|&i| songs[i]).collect();
    Some(Example {
        user,
        plays: vis.iter().map(|&i| plays[i]).collect(),
        targets: idx[n_vis..].iter().map(|&i| songs[i]).collect(),
        exclude: vis_songs.clone(),
        songs: vis_songs,
    })
}

fn epoch_rng(seed: u64, epoch: u32) -> StdRng {
    StdRng::seed_from_u64(seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A run counts as diverged when a mean loss read back exceeds this many times the reference
/// loss: the first epoch's mean loss (during the first epoch, the loss of the run's first step,
/// read back alone), taken as at least 1. The loss is a mean negative log-likelihood over the
/// catalogue, about ln(songs) at the start and falling from there, so 1,000 × is far beyond any
/// healthy run.
pub const DIVERGENCE_FACTOR: f64 = 1e3;

/// Whether a (finite) mean loss is diverged against `reference` (see [`DIVERGENCE_FACTOR`]).
pub fn diverged(mean: f64, reference: f64) -> bool {
    !mean.is_finite() || mean > DIVERGENCE_FACTOR * reference.max(1.0)
}

/// Training failed: the loss stopped being finite, or diverged (see [`DIVERGENCE_FACTOR`]).
/// The caller says which checkpoint, if any, is kept.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("training loss became {value} at epoch {epoch}, step {step}{}", match .reference {
    Some(r) => format!(" (over {DIVERGENCE_FACTOR} x the reference loss {r:.4}: diverged)"),
    None => String::new(),
})]
pub struct NonFiniteLoss {
    pub epoch: u32,
    pub step: usize,
    pub value: f64,
    /// The reference loss when the value is finite but diverged.
    pub reference: Option<f64>,
}

pub struct Trainer<'a, B: ModelOps> {
    pub b: B,
    pub model: Model<B>,
    pub corpus: &'a Corpus,
    pub train_users: Vec<u32>,
    pub validation: Vec<Example>,
    pub catalogue: Catalogue,
    pub cfg: TrainConfig,
    pub state: TrainState,
}

/// The epoch's mean loss from the groups of steps read back, with the divergence check.
struct LossSums {
    epoch: u32,
    sum: f64,
    batches: usize,
    /// The run's reference loss (see [`DIVERGENCE_FACTOR`]): its first step's, until known.
    reference: Option<f64>,
}

impl LossSums {
    /// Adds a group of `n` steps whose losses sum to `v`, the group ending at step `at`; an
    /// error when `v` is not finite or the group's mean diverged.
    fn add(&mut self, v: f64, n: usize, at: usize) -> Result<(), NonFiniteLoss> {
        let mean = v / n as f64;
        let reference = *self.reference.get_or_insert(mean);
        if !v.is_finite() || diverged(mean, reference) {
            return Err(NonFiniteLoss {
                epoch: self.epoch,
                step: at,
                value: mean,
                reference: v.is_finite().then_some(reference),
            });
        }
        self.sum += v;
        self.batches += n;
        Ok(())
    }

    fn mean(&self) -> f64 {
        self.sum / self.batches.max(1) as f64
    }
}

/// The summed loss a [`LaterRead`] of one `[1]` tensor gives.
pub(crate) fn loss_of(r: LaterRead) -> Result<f64, Error> {
    let v = r
        .wait()?
        .into_iter()
        .next()
        .map(|t| t.into_f32("training loss"));
    match v {
        Some(Ok(v)) if !v.is_empty() => Ok(v[0] as f64),
        Some(Err(e)) => Err(e.into()),
        _ => Err(Error::Other("the training loss was not read back".into())),
    }
}

/// Read the accumulated loss back every this many steps (and at the epoch's end): often enough
/// for the progress bar and to catch a NaN early, rarely enough not to stall the GPU every step.
const LOSS_READBACK: usize = 8;

impl<'a, B: ModelOps> Trainer<'a, B> {
    /// One epoch of training and validation. `progress(done, total, mean_loss_so_far)`. A
    /// diverged loss is an error (use [`Trainer::try_epoch`] to tell it apart).
    pub fn run_epoch(
        &mut self,
        progress: impl FnMut(usize, usize, f64),
    ) -> Result<EpochReport, Error> {
        self.try_epoch(progress)?
            .map_err(|d| Error::Other(format!("{d}; stopping. Try a lower --lr")))
    }

    /// As [`Trainer::run_epoch`], with a diverged loss (non-finite or far above the reference,
    /// see [`DIVERGENCE_FACTOR`]) returned as `Ok(Err(_))`; the state is then left unchanged.
    pub fn try_epoch(
        &mut self,
        mut progress: impl FnMut(usize, usize, f64),
    ) -> Result<Result<EpochReport, NonFiniteLoss>, Error> {
        let b = self.b.clone();
        let epoch = self.state.epoch + 1;
        let mut rng = epoch_rng(self.cfg.seed, epoch);
        let mut users = self.train_users.clone();
        users.shuffle(&mut rng);
        let examples: Vec<Example> = users
            .iter()
            .filter_map(|&u| {
                let (s, p) = &self.corpus.histories[u as usize];
                split_example(u, s, p, self.cfg.visible_share, &mut rng)
            })
            .collect();
        let t0 = Instant::now();
        let total = examples.len();
        let mut loss_acc = b.zeros(&[1])?;
        let mut losses = LossSums {
            epoch,
            sum: 0.0,
            batches: 0,
            reference: self.state.history.first().map(|r| r.loss),
        };
        let mut pending = 0usize;
        let mut steps = 0usize;
        // A group's summed loss is read back while the next group's steps run (on a GPU the
        // wait is then for that read alone, and the device never runs dry): (read, the group's
        // steps, steps done at its end).
        let mut in_flight: Option<(LaterRead, usize, usize)> = None;
        for chunk in examples.chunks(self.cfg.batch.max(1)) {
            let batch = upload(&b, &self.model.cfg, self.corpus.portraits.as_ref(), chunk)?;
            let loss = self
                .model
                .train_step(&b, &batch, &mut rng, &self.cfg.optim)?;
            b.axpy(&mut loss_acc, &loss, 1.0)?;
            steps += 1;
            pending += 1;
            let done = (steps * self.cfg.batch).min(total);
            if losses.reference.is_none() {
                // The run's very first step is read back alone, at once: the reference loss.
                let v = b.to_f32(&loss_acc)?[0] as f64;
                if let Err(e) = losses.add(v, pending, steps) {
                    return Ok(Err(e));
                }
                (pending, loss_acc) = (0, b.zeros(&[1])?);
                progress(done, total, losses.mean());
            } else if pending == LOSS_READBACK || done >= total {
                let group = (b.read_later(&[&loss_acc])?, pending, steps);
                (loss_acc, pending) = (b.zeros(&[1])?, 0);
                if let Some((r, n, at)) = in_flight.replace(group) {
                    let v = loss_of(r)?;
                    if let Err(e) = losses.add(v, n, at) {
                        return Ok(Err(e));
                    }
                    progress(done, total, losses.mean());
                }
            }
        }
        if let Some((r, n, at)) = in_flight.take() {
            let v = loss_of(r)?;
            if let Err(e) = losses.add(v, n, at) {
                return Ok(Err(e));
            }
            progress(total, total, losses.mean());
        }
        b.sync()?;
        let seconds = t0.elapsed().as_secs_f64();
        let m = self.validate()?;
        let best = m.ndcg > self.state.best_ndcg || self.state.history.is_empty();
        let report = EpochReport {
            epoch,
            loss: losses.mean(),
            seconds,
            users_per_second: total as f64 / seconds.max(1e-9),
            steps,
            precision_at_10: m.precision,
            ndcg_at_10: m.ndcg,
            recall_at_10: m.recall,
            validation_users: m.users,
            best,
            member: 0,
        };
        self.state.epoch = epoch;
        if best {
            self.state.best_ndcg = m.ndcg;
            self.state.best_epoch = epoch;
            self.state.bad_epochs = 0;
        } else {
            self.state.bad_epochs += 1;
        }
        self.state.history.push(report.clone());
        Ok(Ok(report))
    }

    /// The validation users in [`Trainer::validate`]'s batches, each with the user vectors the
    /// model gives them now (see [`ValidationUsers`]).
    pub fn validation_users(&self) -> Result<ValidationUsers<B>, Error> {
        let b = &self.b;
        let batch = ranking_batch(b, &self.model, self.cfg.rank_batch);
        let mut batches = Vec::new();
        for chunk in self.validation.chunks(batch) {
            let db = upload(b, &self.model.cfg, self.corpus.portraits.as_ref(), chunk)?;
            let (u, _) = self.model.forward(b, &db, None)?;
            batches.push((db, u));
        }
        Ok(ValidationUsers {
            batches,
            truths: truths(self.corpus, &self.validation),
        })
    }

    /// [`Trainer::validate`] with the user vectors of `users` (the same batches, the same
    /// metrics, as long as nothing the recurrent layers, the pooling or the user map read has
    /// changed since `users` was made): only the scores, their neighbourhood term and the top-k
    /// are computed again.
    pub fn validate_with(&self, users: &ValidationUsers<B>) -> Result<Metrics, Error> {
        let (b, m) = (&self.b, &self.model);
        let mut pending = Vec::with_capacity(users.batches.len());
        for (db, u) in &users.batches {
            let nb = m.scorer.neighbour_blocks(b, &m.params, &db.history)?;
            let part = Scoring {
                scorer: &m.scorer,
                p: &m.params,
                u,
                nb: &nb,
            };
            pending.push(Scorer::rank_sum_pending(
                b,
                &[part],
                &db.exclude,
                self.cfg.k,
            )?);
        }
        let lists = songs_of(read_lists(b, pending, users.truths.len())?);
        Ok(evaluate(&lists, &users.truths, self.cfg.k, &self.catalogue))
    }

    /// Metrics at `cfg.k` on the validation users.
    pub fn validate(&self) -> Result<Metrics, Error> {
        let (lists, truths) = rank_examples(
            &self.b,
            std::slice::from_ref(&self.model),
            self.corpus,
            &self.validation,
            self.cfg.k,
            self.cfg.rank_batch,
        )?;
        Ok(evaluate(&lists, &truths, self.cfg.k, &self.catalogue))
    }
}

/// A user's held-out songs with their play counts.
pub type Truth = Vec<(u32, f32)>;

/// The validation users uploaded in their ranking batches, each batch with its user vectors:
/// what choosing the neighbourhood term's weights after training (γ, the per-song and pair
/// weights' shrink, in [`run`]) leaves unchanged. Its ~28 validations then rank with these
/// vectors instead of running the recurrent layers again for each (on a GPU, most of a
/// validation's dispatches; on the CPU, most of its time where the catalogue is small).
pub struct ValidationUsers<B: ModelOps> {
    batches: Vec<(
        crate::model::batch::DeviceBatch<B>,
        crate::backend::BTensor<B>,
    )>,
    truths: Vec<Truth>,
}

impl<B: ModelOps> ValidationUsers<B> {
    /// How many ranking batches the users are in.
    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }
}

/// Users ranked together by a validation or an evaluation, whatever the training batch: a
/// user's list does not depend on the users beside it, and on a GPU each batch costs the
/// recurrent layers' dispatches again (8× fewer batches than the trainer's 32).
pub const RANK_BATCH: usize = 256;

fn rank_batch_default() -> usize {
    RANK_BATCH
}

/// Users per ranking batch: `batch`, fewer when a `[batch, tile]` score block would not fit
/// one storage binding.
pub(crate) fn ranking_batch<B: ModelOps>(b: &B, model: &Model<B>, batch: usize) -> usize {
    let fits = b.max_binding_bytes() / (4 * model.cfg.tile.max(1) as u64);
    batch
        .min(fits.max(1).try_into().unwrap_or(usize::MAX))
        .max(1)
}

/// Ranks `examples` (visible history in, targets as truth) in batches by the summed scores of
/// `models` (an ensemble's members, or one model); returns the song lists and the truths with
/// their play counts.
pub fn rank_examples<B: ModelOps>(
    b: &B,
    models: &[Model<B>],
    corpus: &Corpus,
    examples: &[Example],
    k: usize,
    batch: usize,
) -> Result<(Vec<Vec<u32>>, Vec<Truth>), Error> {
    let lists = songs_of(rank_scored(b, models, corpus, examples, k, batch)?);
    Ok((lists, truths(corpus, examples)))
}

/// The song lists of scored rankings.
fn songs_of(ranked: crate::model::scorer::Ranked) -> Vec<Vec<u32>> {
    ranked
        .into_iter()
        .map(|r| r.into_iter().map(|(s, _)| s).collect())
        .collect()
}

/// [`rank_examples`]' lists with each song's summed score, best first (ties: the lower song
/// index first), without the truths.
pub fn rank_scored<B: ModelOps>(
    b: &B,
    models: &[Model<B>],
    corpus: &Corpus,
    examples: &[Example],
    k: usize,
    batch: usize,
) -> Result<crate::model::scorer::Ranked, Error> {
    let Some(model) = models.first() else {
        return Err(Error::Other("rank_examples: no model to rank with".into()));
    };
    let mut pending = Vec::new();
    for chunk in examples.chunks(ranking_batch(b, model, batch)) {
        // The members share their history length and portrait tables: one upload serves all.
        let db = upload(b, &model.cfg, corpus.portraits.as_ref(), chunk)?;
        pending.push(crate::model::recommend_sum_pending(b, models, &db, k)?);
    }
    read_lists(b, pending, examples.len())
}

/// The scored song lists of rankings recorded batch after batch, read back together: one wait
/// on a GPU for all the batches (the top-k of each is small; the score blocks are not kept).
fn read_lists<B: ModelOps>(
    b: &B,
    pending: Vec<PendingRank<B>>,
    users: usize,
) -> Result<crate::model::scorer::Ranked, Error> {
    let tensors: Vec<&crate::backend::BTensor<B>> =
        pending.iter().flat_map(|p| p.tensors()).collect();
    let mut host = b.to_host(&tensors)?.into_iter();
    let mut lists = Vec::with_capacity(users);
    for p in pending {
        lists.extend(p.finish(&mut host)?);
    }
    Ok(lists)
}

/// Each example's held-out songs with their play counts (1 where the history has none).
pub fn truths(corpus: &Corpus, examples: &[Example]) -> Vec<Truth> {
    examples
        .iter()
        .map(|e| {
            let (s, p) = &corpus.histories[e.user as usize];
            e.targets
                .iter()
                .map(|t| {
                    (
                        *t,
                        s.iter().position(|x| x == t).map(|i| p[i]).unwrap_or(1.0),
                    )
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::diverged;

    #[test]
    fn divergence_is_relative_to_the_reference() {
        assert!(!diverged(7.0, 7.5));
        assert!(!diverged(7_400.0, 7.5));
        assert!(diverged(7_600.0, 7.5));
        assert!(diverged(1e33, 7.5));
        assert!(diverged(f64::NAN, 7.5));
        // A reference below 1 counts as 1.
        assert!(!diverged(900.0, 0.01));
        assert!(diverged(1_001.0, 0.01));
    }
}
