//! `ainrnn train` as a library call: dataset file in, checkpoints out, one report per epoch.
//!
//! Two checkpoint files: `<out>` holds the best epoch so far (what `eval` and `recommend` use),
//! `<out>.last` the latest epoch (what `--resume` continues from). Both carry the optimizer state
//! and are written atomically, in the background while the next epoch trains; on a signal the
//! CLI lets the ones handed over land first, so an interrupted run loses at most the epoch in
//! progress.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::corpus::{fold_data, song_genres, FeatureSet};
use super::neighbours::{choose_similarity, SimilarityChoice};
use super::{Corpus, EpochReport, TrainConfig, TrainState, Trainer, ValidationUsers};
use crate::backend::model_ops::ModelOps;
use crate::backend::BackendKind;
use crate::data::Dataset;
use crate::error::{DataError, Error};
use crate::io::{write_atomic, BackgroundWriter};
use crate::model::checkpoint::{self, Checkpoint};
use crate::model::neighbours::Similarity;
use crate::model::params::PId;
use crate::model::{Connection, Model, ModelConfig, ModelKind, PoolingKind};

/// User-facing training options (`ainrnn train` flags).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub kind: ModelKind,
    pub features: FeatureSet,
    pub fold: u32,
    pub epochs: u32,
    pub batch: usize,
    pub hidden: usize,
    /// Size of the song table (input embedding and learned output vectors, tied).
    pub emb: usize,
    pub layers: Option<usize>,
    pub max_history: usize,
    pub lr: f32,
    pub dropout: f32,
    /// Neighbours per song of the scores' item-neighbourhood term (0: none).
    #[serde(default)]
    pub neighbours: usize,
    pub weight_decay: f32,
    /// Layer stacking (`None`: the default for the model, [`TrainOptions::connection`]).
    #[serde(default)]
    pub connection: Option<Connection>,
    /// With `connection` `None`: the paper's stacking for AINRNN (dense connections) instead of
    /// the project's ([`AINRNN_CONNECTION`]); `--paper` sets it. Options saved before the
    /// project's default changed lack it and were trained with the paper's.
    #[serde(default = "yes")]
    pub paper_connection: bool,
    /// AINRNN's stacking where neither `connection` nor `paper_connection` gives one: the
    /// project's default when these options were made ([`AINRNN_CONNECTION`]). Options saved
    /// before it changed lack the field and were trained with residual shortcuts.
    #[serde(default = "residual")]
    pub ainrnn_connection: Connection,
    /// History pooling (`None`: the model's own).
    #[serde(default)]
    pub pooling: Option<PoolingKind>,
    /// Whether the user portrait (age, language, genre) feeds the user vector.
    #[serde(default = "yes")]
    pub portrait: bool,
    /// Whether the neighbourhood term learns a weight per history song (options saved before
    /// it existed trained without).
    #[serde(default)]
    pub song_weights: bool,
    /// Whether the neighbourhood term learns a weight per (history song, neighbour) pair of the
    /// lists, up to [`PAIR_WEIGHTS_MAX`] pairs (options saved before it existed trained without).
    #[serde(default)]
    pub pair_weights: bool,
    /// Co-listening similarity of the neighbour lists (`None`: cosine when the model learns pair
    /// weights, else chosen on the validation users before training, see
    /// [`TrainOptions::list_similarity`]; checkpoints from before the choice existed used
    /// cosine).
    #[serde(default = "cosine")]
    pub similarity: Option<Similarity>,
    pub seed: u64,
    pub patience: u32,
    pub out: PathBuf,
    pub resume: bool,
    /// Cap on validation users.
    pub max_validation: usize,
    /// Members of the ensemble (`None`: auto, see [`TrainOptions::members`]).
    #[serde(default)]
    pub ensemble: Option<u32>,
}

/// `--ensemble auto` trains [`AUTO_MEMBERS`] members when a fold has fewer training users than
/// this, one model otherwise. Why: the members' differences are the variance of a small
/// training set, which averaging removes; on the bundled data (README, Quality) three members
/// gained +0.008 NDCG@10 on HetRec (~1,080 training users a fold) and +0.0025 on the Taste
/// sample (~4,000), at three times the training time. Larger sets were not measured: one model
/// keeps their training time.
pub const AUTO_ENSEMBLE_USERS: usize = 5_000;
/// Members `--ensemble auto` trains below [`AUTO_ENSEMBLE_USERS`] training users.
pub const AUTO_MEMBERS: u32 = 3;
/// Most members `--ensemble` accepts.
pub const MAX_MEMBERS: u32 = 16;

/// Pair weights are learned only while songs × neighbours stays at or below this (16.8 M
/// pairs, 64 MiB a buffer). Why: the weights are a dense `[songs, neighbours]` parameter
/// updated by AdamW every step with its gradient and two moments, four buffers of that size;
/// at paper scale (359,687 songs × 200 = 72 M pairs) that would be 1.1 GB and an optimizer pass
/// over it per step, 1.5× the song table's (not measured at that size). The bundled sets have
/// 0.24 M (Taste) and 1.2 M (HetRec) pairs.
pub const PAIR_WEIGHTS_MAX: usize = 1 << 24;

/// AINRNN's layer stacking by default: a plain stack (as IndRNN's), neither the AINRNN
/// paper's dense connections (`--paper`) nor residual shortcuts. Why (README, Stacking; four
/// seeds × 5 folds, three members, with the neighbourhood term's pair weights): residual
/// shortcuts put AINRNN 0.0022 below IndRNN on Taste (t −4.1, 16 of 20 folds) and level on
/// HetRec; the plain stack is level with IndRNN on both (Taste −0.0001, HetRec −0.0014,
/// neither significant). Gated shortcuts (`--connection gated`) are best on HetRec (+0.0020
/// over IndRNN) but 0.0018 below it on Taste.
pub const AINRNN_CONNECTION: Connection = Connection::Plain;

/// The stacking `train` gives `kind` without `--connection`: [`AINRNN_CONNECTION`] for AINRNN
/// (with the paper's settings its own, dense connections), the kind's own for the others.
pub fn default_connection(kind: ModelKind, paper: bool) -> Connection {
    match kind {
        ModelKind::Ainrnn if !paper => AINRNN_CONNECTION,
        kind => ModelConfig::new(kind, 1).connection(),
    }
}

impl TrainOptions {
    /// The project's defaults: the best setting known on the bundled data (chosen with 5-fold
    /// runs on both datasets; README, Quality). The paper's lr (5e-4) and dropout (0.5)
    /// underfit these small datasets: a wider song table (128), a narrower recurrent state
    /// (32), lr 1e-3, dropout 0.2, early stopping on validation NDCG@10 (patience 6 of at most
    /// 40 epochs), and the item-neighbourhood term, whose weight is chosen on the validation
    /// users after training.
    pub fn new(data: PathBuf, kind: ModelKind, out: PathBuf) -> Self {
        TrainOptions {
            data,
            kind,
            features: FeatureSet::All,
            fold: 0,
            epochs: 40,
            batch: 32,
            hidden: 32,
            emb: 128,
            layers: None,
            max_history: 50,
            lr: 1e-3,
            dropout: 0.2,
            neighbours: crate::model::DEFAULT_NEIGHBOURS,
            weight_decay: 1e-5,
            connection: None,
            paper_connection: false,
            ainrnn_connection: AINRNN_CONNECTION,
            pooling: None,
            portrait: true,
            song_weights: true,
            pair_weights: true,
            similarity: None,
            seed: 42,
            patience: 6,
            out,
            resume: false,
            max_validation: 1000,
            ensemble: None,
        }
    }

    /// Members to train for a fold with `train_users` training users: `--ensemble N`, else
    /// [`AUTO_MEMBERS`] below [`AUTO_ENSEMBLE_USERS`] training users and 1 from there on.
    pub fn members(&self, train_users: usize) -> u32 {
        self.ensemble
            .unwrap_or(if train_users < AUTO_ENSEMBLE_USERS {
                AUTO_MEMBERS
            } else {
                1
            })
    }
}

impl TrainOptions {
    /// Refuses settings no run can use (a typed error naming the flag and its range): sizes of
    /// 0, a learning rate that is not a finite number > 0 (the CLI also caps it at 1; tests use
    /// huge ones to force a divergence), dropout outside [0, 0.95], a negative or non-finite
    /// weight decay.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |option: &'static str, reason: String| {
            Err(Error::Data(DataError::Invalid { option, reason }))
        };
        for (option, v) in [
            ("--batch", self.batch),
            ("--hidden", self.hidden),
            ("--emb", self.emb),
            ("--layers", self.layers.unwrap_or(1)),
            ("--max-history", self.max_history),
            ("--epochs", self.epochs as usize),
            ("max_validation", self.max_validation),
        ] {
            if v == 0 {
                return bad(option, "must be a whole number >= 1 (got 0)".into());
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(
                "--lr",
                format!("must be a finite number > 0 (got {})", self.lr),
            );
        }
        if !(self.dropout.is_finite() && (0.0..=0.95).contains(&self.dropout)) {
            return bad(
                "--dropout",
                format!(
                    "must be a finite number in [0, 0.95] (got {})",
                    self.dropout
                ),
            );
        }
        if let Some(n) = self.ensemble.filter(|n| !(1..=MAX_MEMBERS).contains(n)) {
            return bad(
                "--ensemble",
                format!("must be auto or a whole number in 1..={MAX_MEMBERS} (got {n})"),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "--weight-decay",
                format!(
                    "must be a finite number in [0, inf) (got {})",
                    self.weight_decay
                ),
            );
        }
        Ok(())
    }
}

impl TrainOptions {
    /// These options with the paper's settings: lr 5e-4, dropout 0.5, 75 epochs without early
    /// stopping, hidden 64, song table 64, batch 64, no neighbourhood term, one model (the
    /// paper has neither term nor ensemble) and AINRNN's dense connections. Sizes the paper
    /// does not give are the ones this project used before its own defaults (REPRODUCTION.md
    /// lists them).
    pub fn paper_settings(&self) -> TrainOptions {
        TrainOptions {
            lr: 5e-4,
            dropout: 0.5,
            epochs: 75,
            patience: 0,
            hidden: 64,
            emb: 64,
            batch: 64,
            neighbours: 0,
            song_weights: false,
            pair_weights: false,
            ensemble: Some(1),
            paper_connection: true,
            ..self.clone()
        }
    }

    /// The layer stacking in effect: `--connection`, else for AINRNN the default these options
    /// were made with (`ainrnn_connection`: [`AINRNN_CONNECTION`] for new ones; dense with the
    /// paper's settings) and the model's own for the others (plain for IndRNN and LSTM,
    /// residual for residual IndRNN).
    pub fn connection(&self) -> Connection {
        self.connection.unwrap_or(match self.kind {
            ModelKind::Ainrnn if !self.paper_connection => self.ainrnn_connection,
            kind => default_connection(kind, self.paper_connection),
        })
    }

    /// `--ensemble` as given: `auto` or the member count.
    pub fn ensemble_flag(&self) -> String {
        self.ensemble
            .map_or_else(|| "auto".to_string(), |n| n.to_string())
    }

    /// The history pooling in effect: `--pooling`, else the model's own (attention with play
    /// counts for AINRNN, the last state for the others).
    pub fn pooling(&self) -> PoolingKind {
        self.pooling
            .unwrap_or(ModelConfig::new(self.kind, 1).pooling())
    }

    /// The model `train` builds on `corpus` with these options on backend `b`: their shape, the
    /// corpus's feature width and portrait tables, and the catalogue tile `b` takes.
    pub fn model_config_for<B: ModelOps>(&self, b: &B, corpus: &Corpus) -> ModelConfig {
        let mut mc = self.model_config(corpus.songs);
        mc.feature_dim = corpus.features.as_ref().map(|f| f.1).unwrap_or(0);
        if self.portrait {
            mc.n_age = corpus.n_age;
            mc.n_lang = corpus.n_lang;
            mc.n_genre = corpus.portraits.as_ref().map(|p| p.n_genre).unwrap_or(0);
        }
        mc.tile = tile_for(b, self.batch, mc.emb, corpus.songs);
        mc
    }

    /// The model shape these options ask for, for `songs` songs (before the data's portrait
    /// tables and features are known).
    fn model_config(&self, songs: usize) -> ModelConfig {
        let mut mc = ModelConfig::new(self.kind, songs);
        mc.hidden = self.hidden;
        mc.emb = self.emb;
        mc.layers = self.effective_layers();
        mc.max_history = self.max_history;
        mc.dropout = self.dropout;
        mc.neighbours = self.neighbours;
        mc.song_weights = self.song_weights && self.neighbours > 0;
        mc.pair_weights = self.pair_weights_for(songs);
        // Always explicit: a checkpoint's `None` means the kind's own (AINRNN's dense).
        mc.connection = Some(self.connection());
        mc.pooling = self.pooling;
        mc.seed = self.seed;
        mc
    }

    /// Whether a model over `songs` songs gets pair weights: asked for, with a term, and at most
    /// [`PAIR_WEIGHTS_MAX`] pairs.
    pub fn pair_weights_for(&self, songs: usize) -> bool {
        self.pair_weights
            && self.neighbours > 0
            && songs.saturating_mul(self.neighbours) <= PAIR_WEIGHTS_MAX
    }

    /// The similarity the neighbour lists of a model over `songs` songs are fitted with before
    /// training: the one asked for, else cosine when the model learns pair weights; `None`: to
    /// be chosen on the validation users (by item-kNN). Why cosine with pair weights: they
    /// learn how far each pair is trusted, and from a symmetric, unshrunk base they rank better
    /// than from the asymmetric, shrunk similarity that suits item-kNN alone (AINRNN over four
    /// seeds of 5 folds: Taste +0.0020, HetRec +0.0037 NDCG@10; README, Quality).
    pub fn list_similarity(&self, songs: usize) -> Option<Similarity> {
        self.similarity
            .or_else(|| self.pair_weights_for(songs).then_some(Similarity::COSINE))
    }

    /// The layers the model gets: `--layers`, else the model's default.
    fn effective_layers(&self) -> usize {
        self.layers
            .unwrap_or_else(|| ModelConfig::new(self.kind, 1).layers)
    }

    /// Every setting a checkpoint fixes, as `(flag, value)`: all but `--epochs` and
    /// `--patience`, which a resumed run may change (and the paths).
    pub fn fixed_settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("--model", self.kind.name().to_string()),
            ("--features", self.features.name().to_string()),
            ("--fold", self.fold.to_string()),
            ("--batch", self.batch.to_string()),
            ("--hidden", self.hidden.to_string()),
            ("--emb", self.emb.to_string()),
            ("--layers", self.effective_layers().to_string()),
            ("--max-history", self.max_history.to_string()),
            ("--lr", self.lr.to_string()),
            ("--dropout", self.dropout.to_string()),
            ("--weight-decay", self.weight_decay.to_string()),
            ("--seed", self.seed.to_string()),
            ("--neighbours", self.neighbours.to_string()),
            ("--connection", self.connection().name().to_string()),
            ("--pooling", self.pooling().name().to_string()),
            ("--no-portrait", (!self.portrait).to_string()),
            ("--no-song-weights", (!self.song_weights).to_string()),
            ("--no-pair-weights", (!self.pair_weights).to_string()),
            (
                "--similarity",
                self.similarity
                    .map_or_else(|| "auto".to_string(), |s| s.to_string()),
            ),
            ("max_validation", self.max_validation.to_string()),
        ]
    }

    /// One line per fixed setting for which `given(flag)` holds and whose value differs from
    /// the checkpoint's `saved` options: `--seed 7 but the checkpoint was trained with 42`.
    pub fn resume_conflicts(
        &self,
        saved: &TrainOptions,
        given: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        self.fixed_settings()
            .into_iter()
            .zip(saved.fixed_settings())
            .filter(|((flag, mine), (_, theirs))| given(flag) && mine != theirs)
            .map(|((flag, mine), (_, theirs))| {
                format!("{flag} {mine} but the checkpoint was trained with {theirs}")
            })
            .collect()
    }
}

fn yes() -> bool {
    true
}

fn residual() -> Connection {
    Connection::Residual
}

fn cosine() -> Option<Similarity> {
    Some(Similarity::COSINE)
}

/// The checkpoint `--resume` continues from: `<out>.last`, else `<out>`, if either exists.
pub fn resume_checkpoint(out: &Path) -> Option<PathBuf> {
    [last_path(out), out.to_path_buf()]
        .into_iter()
        .find(|p| p.exists())
}

/// The training options stored in a checkpoint (the error names the file).
pub fn saved_options(path: &Path) -> Result<TrainOptions, Error> {
    Checkpoint::load(path)?
        .get("options")
        .ok_or_else(|| {
            Error::Other(format!(
                "{}: no training options stored; cannot resume",
                path.display()
            ))
        })?
        .map_err(|e| Error::Other(format!("{}: training options: {e}", path.display())))
}

/// The error of a resume whose settings differ from the checkpoint's: one conflict per line.
pub fn resume_refused(path: &Path, conflicts: &[String]) -> Error {
    Error::Other(format!(
        "{}: --resume takes its settings from the checkpoint; only --epochs and --patience may change. Conflicting flags:\n  {}",
        path.display(),
        conflicts.join("\n  ")
    ))
}

/// Identifies the data a checkpoint was trained on; a mismatch refuses to resume or evaluate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DataFingerprint {
    pub source: String,
    pub users: usize,
    pub songs: usize,
    pub interactions: usize,
    pub folds: u32,
    pub fold: u32,
    pub features: FeatureSet,
    pub feature_names: Vec<String>,
    /// [`split_digest`] of the dataset: the counts alone do not tell a dataset prepared with
    /// another `--seed` or `--visible-share` (other test users, other held-out songs) from
    /// this one. `None` in checkpoints written before it existed (not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

impl DataFingerprint {
    pub fn of(ds: &Dataset, fold: u32, features: FeatureSet, names: &[String]) -> Self {
        DataFingerprint {
            source: ds.source.clone(),
            users: ds.users(),
            songs: ds.songs(),
            interactions: ds.interactions(),
            folds: ds.folds,
            fold,
            features,
            feature_names: names.to_vec(),
            split: Some(split_digest(ds)),
        }
    }

    /// Whether `self`, read from a checkpoint, was made for another split than `now`'s (a
    /// checkpoint without a digest is not checked).
    pub fn other_split(&self, now: &str) -> bool {
        self.split.as_deref().is_some_and(|s| s != now)
    }
}

/// The error of a checkpoint made for another split of data with the same counts.
pub fn other_split(checkpoint: &Path) -> Error {
    Error::Other(format!(
        "{}: trained on another split of the data than this dataset's (the same numbers of users, songs and interactions, but other songs, users, folds or held-out songs: prepared with another --seed or --visible-share?); its test users may be this dataset's training users, so it is refused",
        checkpoint.display()
    ))
}

/// CRC-32 (hex) of what decides a model's rows and its test users: the song and user ids in
/// order, each user's fold, and the interactions with their visible / held-out flags.
pub fn split_digest(ds: &Dataset) -> String {
    let mut h = crc32fast::Hasher::new();
    for id in ds.song_ids.iter().chain(&ds.user_ids) {
        h.update(id.as_bytes());
        h.update(&[0]);
    }
    h.update(&ds.folds.to_le_bytes());
    for &f in &ds.user_fold {
        h.update(&f.to_le_bytes());
    }
    for &p in &ds.indptr {
        h.update(&p.to_le_bytes());
    }
    for &i in &ds.indices {
        h.update(&i.to_le_bytes());
    }
    let visible: Vec<u8> = ds.visible.iter().map(|&v| v as u8).collect();
    h.update(&visible);
    format!("{:08x}", h.finalize())
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    pub model: ModelKind,
    pub backend: String,
    pub epochs_run: u32,
    pub best_epoch: u32,
    pub best_ndcg_at_10: f64,
    pub stopped_early: bool,
    pub parameters: usize,
    pub train_users: usize,
    pub validation_users: usize,
    pub checkpoint: PathBuf,
    pub last_checkpoint: PathBuf,
    pub history: Vec<EpochReport>,
    /// The neighbourhood term's weight chosen on the validation users after training (when
    /// the model has the term).
    pub neighbour_weight: Option<WeightChoice>,
    /// The neighbour lists' similarity chosen on the validation users before training (when
    /// the model has the term, none was given, and the run did not resume).
    pub similarity: Option<SimilarityChoice>,
    /// The similarity the neighbour lists were fitted with: given, the default (cosine with
    /// pair weights) or chosen (`similarity`); none without the term.
    pub list_similarity: Option<String>,
    /// Every member of an ensemble, the first included (the fields above are the first's);
    /// empty for a single model.
    pub members: Vec<MemberSummary>,
}

impl TrainSummary {
    /// Removes the latest-epoch files (`<out>.last`, each member's too) of this finished run;
    /// the best checkpoints stay. For callers that always train afresh and never resume
    /// (`compare`, `ablate`): those files held half of a report's disk (1.2 GB of HetRec's 5
    /// folds). A file that cannot be removed stays; nothing depends on it being gone.
    pub fn remove_latest(&self) {
        let lasts = std::iter::once(self.last_checkpoint.clone())
            .chain(self.members.iter().map(|m| last_path(&m.checkpoint)));
        for p in lasts {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// One ensemble member's run.
#[derive(Clone, Debug, Serialize)]
pub struct MemberSummary {
    pub seed: u64,
    pub checkpoint: PathBuf,
    pub epochs_run: u32,
    pub best_epoch: u32,
    pub best_ndcg_at_10: f64,
    pub seconds: f64,
}

impl MemberSummary {
    fn of(s: &TrainSummary, seed: u64) -> Self {
        MemberSummary {
            seed,
            checkpoint: s.checkpoint.clone(),
            epochs_run: s.epochs_run,
            best_epoch: s.best_epoch,
            best_ndcg_at_10: s.best_ndcg_at_10,
            seconds: s.history.iter().map(|r| r.seconds).sum(),
        }
    }
}

/// How the item-neighbourhood term's weight γ was set after training.
#[derive(Clone, Debug, Serialize)]
pub struct WeightChoice {
    /// γ as trained (best epoch).
    pub trained: f32,
    /// γ kept: the best of [`GAMMA_GRID`] and the trained value by validation NDCG@10.
    pub chosen: f32,
    /// Validation NDCG@10 with the trained and with the chosen γ.
    pub ndcg_trained: f64,
    pub ndcg_chosen: f64,
    /// The factor kept on the per-song log-weights (1: as trained; [`SONG_WEIGHT_SHRINK`]),
    /// when the model has them.
    pub song_weight_shrink: Option<f32>,
    /// The factor kept on the pair log-weights, chosen the same way after the per-song ones,
    /// when the model has them.
    pub pair_weight_shrink: Option<f32>,
    /// Users the saved neighbour lists are fitted on: after the choice (made with the lists of
    /// the training users) they are refitted on the training and validation users, the fold's
    /// non-test users that item-kNN and EASE are fitted on. Equal to the training users when the
    /// similarity is unknown (a checkpoint from before it was stored).
    pub list_users: usize,
}

/// Candidate weights of the neighbourhood term, tried on the validation users after training.
///
/// Why: trained by the softmax loss, γ stays near 2 on the bundled data, while ranking the
/// validation users is best near 8–16 (the loss fits all songs' probabilities; the ranking only
/// needs the top). Choosing the blend on held-out users, as EASE's λ is chosen, added 0.02–0.04
/// NDCG@10 on Taste (see README, Quality).
pub const GAMMA_GRID: [f32; 15] = [
    0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 64.0, 128.0, 256.0,
];

/// Factors tried on the per-song log-weights after γ's choice (1, as trained, is kept unless
/// one of these ranks the validation users better).
pub const SONG_WEIGHT_SHRINK: [f32; 2] = [0.5, 0.0];

pub fn last_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".last");
    PathBuf::from(s)
}

/// Loads the dataset; the error names the file.
pub fn load_dataset(path: &Path) -> Result<Dataset, Error> {
    Ok(Dataset::load(path)?)
}

/// The output whose run writes `out` too, when `out` is one of its derived files
/// (`X.last`, `X.memberN`, `X.memberN.last`): `X`.
pub fn base_output(out: &Path) -> Option<PathBuf> {
    let name = out.file_name()?.to_str()?;
    let stem = name.strip_suffix(".last").unwrap_or(name);
    let stem = match stem.rfind(".member") {
        Some(i) if stem[i + 7..].parse::<u32>().is_ok_and(|m| m > 0) => &stem[..i],
        _ => stem,
    };
    (stem != name && !stem.is_empty()).then(|| out.with_file_name(stem))
}

/// The checkpoint of ensemble member `m` ≥ 1 of a run whose `--out` is `out`: `<out>.member<m>`.
pub fn member_path(out: &Path, m: u32) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(format!(".member{m}"));
    PathBuf::from(s)
}

/// Trains (or resumes), calling `on_epoch` after each epoch and `progress(done, total, loss)`
/// during it. Returns the summary; the checkpoints are on disk.
///
/// An ensemble ([`TrainOptions::members`] > 1) is member 0 trained as the single model would
/// be, into `out`, then members `m` = 1.. with seed `seed + m` (their own validation users,
/// initial weights, batches, neighbour lists and γ) into [`member_path`]s, each a complete
/// checkpoint of its own; `out` then lists the members (metadata `ensemble`), and `eval`,
/// `recommend` and `compare` rank by the members' summed scores. `--resume` resumes each
/// member from its own `.last` file (a finished member only recalibrates γ).
pub fn train<B: ModelOps>(
    b: &B,
    opts: &TrainOptions,
    mut on_epoch: impl FnMut(&EpochReport),
    mut progress: impl FnMut(u32, usize, usize, f64),
) -> Result<TrainSummary, Error> {
    opts.check()?;
    let mut first = train_member(b, opts, 0, &mut on_epoch, &mut progress)?;
    let n = opts.members(first.train_users);
    let mut names = Vec::new();
    if n > 1 {
        first.members.push(MemberSummary::of(&first, opts.seed));
        for m in 1..n {
            let mo = TrainOptions {
                seed: opts.seed.wrapping_add(m as u64),
                out: member_path(&opts.out, m),
                ..opts.clone()
            };
            let s = train_member(b, &mo, m, &mut on_epoch, &mut progress)?;
            first.members.push(MemberSummary::of(&s, mo.seed));
            names.push(
                mo.out
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    }
    if opts.out.exists() {
        checkpoint::set_members(&opts.out, &names)?;
    }
    Ok(first)
}

/// One model of the run: `train` without the ensemble.
fn train_member<B: ModelOps>(
    b: &B,
    opts: &TrainOptions,
    member: u32,
    mut on_epoch: impl FnMut(&EpochReport),
    mut progress: impl FnMut(u32, usize, usize, f64),
) -> Result<TrainSummary, Error> {
    let resume_from = if opts.resume {
        resume_checkpoint(&opts.out)
    } else {
        None
    };
    if let Some(path) = &resume_from {
        let conflicts = opts.resume_conflicts(&saved_options(path)?, |_| true);
        if !conflicts.is_empty() {
            return Err(resume_refused(path, &conflicts));
        }
    }
    let ds = load_dataset(&opts.data)?;
    let (corpus, names) = Corpus::from_dataset(&ds, opts.features)?;
    let fp = DataFingerprint::of(&ds, opts.fold, opts.features, &names);
    let fold = fold_data(&ds, &corpus, opts.fold, opts.seed, opts.max_validation)?;
    check_users(&ds, &corpus, &fold, opts)?;
    let last = last_path(&opts.out);
    let mut similarity = None;
    let (model, mut cfg, state, list_similarity) = match &resume_from {
        Some(path) => {
            let ck = Checkpoint::load(path)?;
            let saved: DataFingerprint = ck
                .get("dataset")
                .ok_or_else(|| {
                    Error::Other(format!(
                        "{}: no dataset fingerprint; cannot resume",
                        path.display()
                    ))
                })?
                .map_err(|e| {
                    Error::Other(format!("{}: dataset fingerprint: {e}", path.display()))
                })?;
            let unsplit = |f: &DataFingerprint| DataFingerprint {
                split: None,
                ..f.clone()
            };
            if unsplit(&saved) != unsplit(&fp) {
                return Err(Error::Other(format!(
                    "{}: trained on different data ({} users, {} songs, fold {}, features {}); this run has {} users, {} songs, fold {}, features {}",
                    path.display(),
                    saved.users,
                    saved.songs,
                    saved.fold,
                    saved.features.name(),
                    fp.users,
                    fp.songs,
                    fp.fold,
                    fp.features.name()
                )));
            }
            if saved.other_split(fp.split.as_deref().unwrap_or_default()) {
                return Err(other_split(path));
            }
            let cfg: TrainConfig = ck
                .get("train_config")
                .ok_or_else(|| Error::Other(format!("{}: no train_config", path.display())))?
                .map_err(|e| Error::Other(format!("{}: train_config: {e}", path.display())))?;
            let state: TrainState = ck
                .get("train_state")
                .ok_or_else(|| Error::Other(format!("{}: no train_state", path.display())))?
                .map_err(|e| Error::Other(format!("{}: train_state: {e}", path.display())))?;
            let feats = corpus.features.as_ref().map(|f| f.0.as_slice());
            let sim = ck
                .get::<Option<Similarity>>("similarity")
                .and_then(Result::ok)
                .flatten();
            let mut model = ck.restore(b, feats)?;
            // Resumed from `--out` after its lists were refitted (no `.last` left): training
            // and early stopping go on with the training users' lists, as the run began.
            if let (Some(sim), true) = (sim, lists_refitted(&ck)) {
                model.fit_neighbours(&corpus.histories, &fold.train_users, sim);
            }
            (model, cfg, state, sim)
        }
        None => {
            let mc = opts.model_config_for(b, &corpus);
            let feats = corpus.features.as_ref().map(|f| f.0.as_slice());
            let cfg = TrainConfig {
                epochs: opts.epochs,
                batch: opts.batch,
                optim: crate::model::params::OptimConfig {
                    lr: opts.lr,
                    weight_decay: opts.weight_decay,
                    ..Default::default()
                },
                patience: opts.patience,
                seed: opts.seed,
                visible_share: ds.visible_share,
                k: 10,
                rank_batch: super::RANK_BATCH,
            };
            crate::model::fits_in_memory(b, &mc, Some(opts.batch))?;
            let mut model = Model::new(b, mc, feats)?;
            // From the training users only (not validation, not the test fold).
            let mut used = None;
            match opts.list_similarity(corpus.songs) {
                Some(sim) if model.cfg.neighbours > 0 => {
                    model.fit_neighbours(&corpus.histories, &fold.train_users, sim);
                    used = Some(sim);
                }
                Some(_) => {}
                None if model.cfg.neighbours > 0 => {
                    let cat = corpus.catalogue(&fold.train_users, None);
                    let (choice, lists) = choose_similarity(
                        &corpus,
                        &fold.train_users,
                        &fold.validation,
                        model.cfg.neighbours,
                        10,
                        &cat,
                    );
                    used = Some(choice.chosen);
                    similarity = Some(choice);
                    model.scorer.set_neighbours(lists);
                }
                None => {}
            }
            (model, cfg, TrainState::default(), used)
        }
    };
    if resume_from.as_deref() == Some(last.as_path()) {
        best_file_for(opts, &last, &state)?;
    }
    // A resumed run may be given another number of epochs or patience (the other settings
    // were checked equal to the checkpoint's above).
    cfg.epochs = opts.epochs;
    cfg.patience = opts.patience;
    let catalogue = corpus.catalogue(&fold.train_users, song_genres(&ds));
    let mut t = Trainer {
        b: b.clone(),
        model,
        corpus: &corpus,
        train_users: fold.train_users.clone(),
        validation: fold.validation,
        catalogue,
        cfg,
        state,
    };
    let validation_users = t.validation.len();
    // Checkpoints reach the disk while the next epoch trains (each file an fsync).
    let mut writer = BackgroundWriter::new();
    while !t.state.should_stop(&t.cfg) {
        let epoch = t.state.epoch + 1;
        let mut report = match t.try_epoch(|d, n, l| progress(epoch, d, n, l))? {
            Ok(r) => r,
            Err(diverged) => return Err(Error::Other(diverged_message(&diverged, &t.state, opts))),
        };
        report.member = member;
        if let Some(r) = t.state.history.last_mut() {
            r.member = member;
        }
        // A best epoch's two files hold the same bytes: encoded once.
        let bytes = Arc::new(encode_run(b, &t, &fp, opts, list_similarity, None)?);
        writer.write(&last, bytes.clone())?;
        if report.best {
            writer.write(&opts.out, bytes)?;
        }
        on_epoch(&report);
    }
    writer.finish()?;
    // The fold's non-test users: the training and validation users.
    let refit = list_similarity.map(|sim| (sim, ds.split(opts.fold).train_users));
    let neighbour_weight = calibrate_neighbour_weight(b, &mut t, &corpus, opts, &fp, refit)?;
    Ok(TrainSummary {
        model: t.model.cfg.kind,
        backend: b.describe(),
        epochs_run: t.state.epoch,
        best_epoch: t.state.best_epoch,
        best_ndcg_at_10: t.state.best_ndcg,
        stopped_early: t.state.epoch < t.cfg.epochs,
        parameters: t.model.params.count(),
        train_users: t.train_users.len(),
        validation_users,
        checkpoint: opts.out.clone(),
        last_checkpoint: last,
        history: t.state.history.clone(),
        neighbour_weight,
        similarity,
        list_similarity: list_similarity.map(|s| s.to_string()),
        members: vec![],
    })
}

/// Reloads the best checkpoint, tries each weight of [`GAMMA_GRID`] (and the trained one) for
/// the neighbourhood term on the validation users, and saves the best checkpoint again with the
/// weight that ranks them best. `None` when the model has no term (or nothing was saved).
///
/// With `refit` (the lists' similarity and the fold's non-test users), γ is chosen with the
/// lists of the training users (fitted again when the checkpoint's lists were already refitted,
/// as a resumed run finds them, so it chooses on the same lists as the first), and the saved
/// lists are then refitted on all the non-test users. Why: the validation users' co-listens
/// are evidence item-kNN and EASE use; left out, the model ranks test users with 10 % fewer
/// users behind its lists (measured: Taste 0.2576 → 0.2586, HetRec 0.4294 → 0.4311 NDCG@10,
/// 4 of 5 folds up on each). γ stays comparable: every list set is scaled so its largest
/// similarity is 1.
fn calibrate_neighbour_weight<B: ModelOps>(
    b: &B,
    t: &mut Trainer<'_, B>,
    corpus: &Corpus,
    opts: &TrainOptions,
    fp: &DataFingerprint,
    refit: Option<(Similarity, Vec<u32>)>,
) -> Result<Option<WeightChoice>, Error> {
    if t.model.scorer.gamma.is_none()
        || t.model.scorer.neighbours().is_empty()
        || !opts.out.exists()
    {
        return Ok(None);
    }
    let feats = corpus.features.as_ref().map(|f| f.0.as_slice());
    let ck = Checkpoint::load(&opts.out)?;
    // Lists saved by an earlier calibration saw the validation users: back to the training
    // users' (a checkpoint saved by an epoch has those already; a fit at paper scale is costly).
    let refitted = lists_refitted(&ck);
    t.model = ck.restore(b, feats)?;
    drop(ck);
    let Some(gid) = t.model.scorer.gamma else {
        return Ok(None);
    };
    // Pair weights follow their (song, neighbour) pairs through the refits below.
    let pairs = t.model.scorer.pair_weight_map(b, &t.model.params)?;
    if let (Some((sim, _)), true) = (&refit, refitted) {
        t.model
            .fit_neighbours(&corpus.histories, &t.train_users, *sim);
        if let Some(m) = &pairs {
            t.model
                .scorer
                .set_pair_weights(b, &mut t.model.params, m, 1.0)?;
        }
    }
    let trained = b.to_f32(t.model.params.get(gid))?[0];
    // Only the scorer's neighbourhood term changes below: the user vectors are computed once.
    let users = t.validation_users()?;
    let ndcg_trained = t.validate_with(&users)?.ndcg;
    let mut best = (ndcg_trained, trained);
    for g in GAMMA_GRID {
        t.model.params.set(b, gid, &[g])?;
        let m = t.validate_with(&users)?;
        // Ties keep the smaller weight: the learned part of the score then counts more.
        if m.ndcg > best.0 || (m.ndcg == best.0 && g < best.1) {
            best = (m.ndcg, g);
        }
    }
    // Per-song weights learned on the training users may overfit them (a song with a few
    // listeners): their log-weights are shrunk by a factor chosen the same way, with γ retried
    // around its choice (the two trade off).
    let mut shrink = 1.0f32;
    if let Some(wid) = t.model.scorer.song_weights {
        let learned = b.to_f32(t.model.params.get(wid))?;
        shrink = choose_shrink(t, b, &users, gid, &mut best, |t, s| {
            let scaled: Vec<f32> = learned.iter().map(|&x| s * x).collect();
            Ok(t.model.params.set(b, wid, &scaled)?)
        })?;
    }
    t.model.params.set(b, gid, &[best.1])?;
    // Pair weights likewise, after the per-song ones.
    let mut pair_shrink = 1.0f32;
    if let Some(m) = &pairs {
        pair_shrink = choose_shrink(t, b, &users, gid, &mut best, |t, s| {
            let (scorer, params) = (&t.model.scorer, &mut t.model.params);
            Ok(scorer.set_pair_weights(b, params, m, s)?)
        })?;
    }
    let mut list_users = t.train_users.len();
    if let Some((sim, all)) = &refit {
        t.model.fit_neighbours(&corpus.histories, all, *sim);
        if let Some(m) = &pairs {
            t.model
                .scorer
                .set_pair_weights(b, &mut t.model.params, m, pair_shrink)?;
        }
        list_users = all.len();
    }
    let similarity = refit.as_ref().map(|r| r.0);
    let lists = if refit.is_some() {
        LISTS_ALL
    } else {
        "training"
    };
    write_atomic(
        &opts.out,
        &encode_run(b, t, fp, opts, similarity, Some(lists))?,
    )?;
    Ok(Some(WeightChoice {
        trained,
        chosen: best.1,
        ndcg_trained,
        ndcg_chosen: best.0,
        song_weight_shrink: t.model.scorer.song_weights.map(|_| shrink),
        pair_weight_shrink: pairs.map(|_| pair_shrink),
        list_users,
    }))
}

/// Tries each factor of [`SONG_WEIGHT_SHRINK`] on learned weights (`scale(t, s)` sets them to
/// their learned values times `s`), each with γ at ×0.5, ×1 and ×2 of its choice `best.1`;
/// keeps in `best` any `(validation NDCG@10, γ)` that ranks better and returns the factor kept
/// (1: as learned), with the weights and γ set to it.
fn choose_shrink<'a, B: ModelOps>(
    t: &mut Trainer<'a, B>,
    b: &B,
    users: &ValidationUsers<B>,
    gid: PId,
    best: &mut (f64, f32),
    mut scale: impl FnMut(&mut Trainer<'a, B>, f32) -> Result<(), Error>,
) -> Result<f32, Error> {
    let g0 = best.1;
    let mut kept = 1.0f32;
    for s in SONG_WEIGHT_SHRINK {
        scale(t, s)?;
        for g in [g0 * 0.5, g0, g0 * 2.0] {
            t.model.params.set(b, gid, &[g])?;
            let m = t.validate_with(users)?;
            if m.ndcg > best.0 {
                *best = (m.ndcg, g);
                kept = s;
            }
        }
    }
    scale(t, kept)?;
    t.model.params.set(b, gid, &[best.1])?;
    Ok(kept)
}

/// The bytes of the run's checkpoint, with what a resumed run, `eval` and a later calibration
/// read back: the training config and state, the dataset's fingerprint, the options, the lists'
/// similarity and, after calibration, which users the saved lists are fitted on.
fn encode_run<B: ModelOps>(
    b: &B,
    t: &Trainer<'_, B>,
    fp: &DataFingerprint,
    opts: &TrainOptions,
    similarity: Option<Similarity>,
    lists: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let mut extra: Vec<(&str, &dyn checkpoint::erased::Json)> = vec![
        ("train_config", &t.cfg),
        ("train_state", &t.state),
        ("dataset", fp),
        ("options", opts),
        ("similarity", &similarity),
    ];
    if let Some(l) = &lists {
        extra.push((LISTS_KEY, l));
    }
    checkpoint::encode(b, &t.model, &extra)
}

/// Checkpoint metadata naming the users the saved neighbour lists are fitted on: absent or
/// "training" for the training users, [`LISTS_ALL`] after [`calibrate_neighbour_weight`]'s refit.
const LISTS_KEY: &str = "neighbour_lists";
const LISTS_ALL: &str = "training+validation";

/// Resuming from `last` (whose training state is `state`): `opts.out` must hold that state's
/// best epoch, since a run that finds no better epoch leaves it as it is and reports it. It
/// does when its own state has the same best epoch and the same history up to it (written at
/// that epoch, or calibrated after the run). An interruption between an epoch's two writes
/// (`last` first) leaves `out` missing or an older best; when `last` is that best epoch
/// itself, it is copied to `out`. Otherwise the best epoch's file is gone and the run is
/// refused, before any work.
fn best_file_for(opts: &TrainOptions, last: &Path, state: &TrainState) -> Result<(), Error> {
    let (epoch, best) = (state.epoch, state.best_epoch);
    if best == 0 {
        return Ok(()); // no epoch has been best yet: nothing to hold
    }
    let upto = |s: &TrainState| -> Vec<(f64, f64)> {
        s.history
            .iter()
            .take(best as usize)
            .map(|r| (r.loss, r.ndcg_at_10))
            .collect()
    };
    let held = if opts.out.exists() {
        let ck = Checkpoint::load(&opts.out)?;
        ck.get::<TrainState>("train_state")
            .and_then(Result::ok)
            .map(|s| (s.best_epoch, upto(&s)))
    } else {
        None
    };
    if held.as_ref() == Some(&(best, upto(state))) {
        return Ok(());
    }
    if best == epoch {
        let bytes = std::fs::read(last).map_err(|e| crate::error::IoError::io(last, e))?;
        write_atomic(&opts.out, &bytes)?;
        return Ok(());
    }
    let what = match held {
        Some((e, _)) if e == best => format!("holds the best epoch {e} of another run"),
        Some((e, _)) => format!("holds best epoch {e}"),
        None if opts.out.exists() => "holds no training state".into(),
        None => "is missing".into(),
    };
    Err(Error::Other(format!(
        "{}: --resume continues from {} (epoch {epoch}), whose best epoch {best} should be in {}, which {what}: restore that file, or train anew without --resume",
        opts.out.display(),
        last.display(),
        opts.out.display()
    )))
}

fn lists_refitted(ck: &Checkpoint) -> bool {
    ck.get::<String>(LISTS_KEY).and_then(Result::ok).as_deref() == Some(LISTS_ALL)
}

/// Training needs at least one training user with two songs or more (a visible song and a
/// target) and one validation user; otherwise the loss is 0 and the metrics meaningless.
fn check_users(
    ds: &Dataset,
    corpus: &Corpus,
    fold: &super::corpus::FoldData,
    opts: &TrainOptions,
) -> Result<(), Error> {
    let trainable = fold
        .train_users
        .iter()
        .filter(|&&u| corpus.histories[u as usize].0.len() >= 2)
        .count();
    let validation = fold.validation.len();
    if trainable == 0 || validation == 0 {
        return Err(Error::Other(format!(
            "{}: too few users to train on fold {}: {trainable} training users with 2 or more songs and {validation} validation users (of {} users; {} in the test fold); at least 1 of each is needed",
            opts.data.display(),
            opts.fold,
            ds.users(),
            fold.test.len()
        )));
    }
    Ok(())
}

/// The error of a diverged run: which checkpoint is kept, if any.
fn diverged_message(d: &super::NonFiniteLoss, state: &TrainState, opts: &TrainOptions) -> String {
    if state.best_epoch > 0 {
        format!(
            "{d}; stopping. The last good checkpoint is kept: {} (epoch {}, validation NDCG@10 {:.4}; latest good epoch {} in {}). Try a lower --lr",
            opts.out.display(),
            state.best_epoch,
            state.best_ndcg,
            state.epoch,
            last_path(&opts.out).display()
        )
    } else if opts.out.exists() {
        // Nothing of this run was saved (its first epoch diverged): the file is an earlier one.
        format!(
            "{d}; stopping in the first epoch. The last good checkpoint, {} from an earlier run, is kept untouched. Try a lower --lr",
            opts.out.display()
        )
    } else {
        format!("{d}; stopping in the first epoch: no checkpoint was written. Try a lower --lr")
    }
}

/// Songs per catalogue tile for a catalogue of `songs`. **One tile** when the whole catalogue's
/// blocks fit: the `[batch, songs]` logits and the `[songs, dim]` song rows within one storage
/// binding on a GPU, within [`CPU_ONE_TILE_BYTES`] on the CPU. The single tile skips the
/// per-tile gathers of the song table and the second sweep of the loss: at paper scale (359,687
/// songs, batch 32, table 128) the CPU step took 114–120 ms against 129–138 ms with tiles of
/// 32,768 and 145 ms with two tiles, and lavapipe's step at 200,000 songs 1,699 ms against
/// 2,040 with two tiles (100 dispatches instead of 119). Otherwise tiles as large as one binding
/// allows, at most [`GPU_TILE`] on a GPU and [`CPU_TILE`] on the CPU.
pub fn tile_for<B: ModelOps>(b: &B, batch: usize, dim: usize, songs: usize) -> usize {
    let limit = b.max_binding_bytes();
    let per_song = 4 * batch.max(dim).max(1) as u64;
    let (one_tile_budget, cap) = match b.kind() {
        BackendKind::Gpu => (limit, GPU_TILE),
        BackendKind::Cpu => (CPU_ONE_TILE_BYTES.min(limit), CPU_TILE),
    };
    if songs as u64 * per_song <= one_tile_budget {
        return songs.max(1);
    }
    ((limit / per_song) as usize).clamp(1024, cap)
}

/// Largest of several tiles on a GPU: each tile costs about twenty dispatches per training
/// step, whatever its size, so fewer, larger tiles cut the step's launch and recording overhead
/// (a `[32, 1,048,576]` block is 128 MiB).
pub const GPU_TILE: usize = 1 << 20;
/// Largest of several tiles on the CPU: the CPU's kernels are tuned around it, and a smaller
/// block stays nearer the caches (two tiles of 180,000 songs were slower than eleven of it).
pub const CPU_TILE: usize = 32_768;
/// The CPU takes the whole catalogue as one tile while its largest block stays within this
/// (a paper-scale `[359,687, 128]` song block is 184 MB).
pub const CPU_ONE_TILE_BYTES: u64 = 256 << 20;
