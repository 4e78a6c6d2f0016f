//! What `bench train` measures.

use serde::Serialize;

use std::path::PathBuf;

use crate::model::{Connection, ModelKind, DEFAULT_NEIGHBOURS};
use crate::train::run::TrainOptions;

/// What to measure. Every user has exactly `history` listens shown and `targets` to predict, so
/// every batch has the same shape (the PyTorch script builds the same batches).
#[derive(Clone, Debug, Serialize)]
pub struct TrainBenchOptions {
    /// Users in one epoch (for the projected epoch time, and `--epoch`).
    pub users: usize,
    pub songs: usize,
    pub batch: usize,
    pub history: usize,
    pub targets: usize,
    pub hidden: usize,
    /// Width of the song table (tied input embedding and output vectors) and the user vector.
    pub emb: usize,
    pub layers: usize,
    /// Timed steps per model and backend (after `warmup` steps).
    pub steps: usize,
    pub warmup: usize,
    pub models: Vec<ModelKind>,
    /// Run one whole epoch over `users` users for real on each backend.
    pub epoch: bool,
    /// With `epoch`: on the GPU only (the CPU's epoch stays projected from its steps).
    pub epoch_gpu_only: bool,
    /// Songs per catalogue tile (`None`: the trainer's choice for each device, `tile_for`).
    pub tile: Option<usize>,
    pub dropout: f32,
    pub seed: u64,
    /// Neighbours per song of the scores' item-neighbourhood term, fitted on the synthetic
    /// users as `train` fits them on the training users (default: the trainer's,
    /// [`DEFAULT_NEIGHBOURS`]; 0: no term, the step PyTorch's script runs).
    pub neighbours: usize,
    /// Whether the term has the learned per-song weights (default: the trainer's).
    pub song_weights: bool,
    /// Whether the term has the learned pair weights (default: the trainer's; as in `train`,
    /// only up to [`crate::train::run::PAIR_WEIGHTS_MAX`] pairs).
    pub pair_weights: bool,
    /// The IndRNN models' layer stacking (`None`: the trainer's default for each model:
    /// residual shortcuts for AINRNN, plain for IndRNN). LSTM is always a plain stack.
    pub connection: Option<Connection>,
    /// The song table's optimizer step on both backends: fused (`Some(true)`: its catalogue
    /// gradient formed in the AdamW pass, never whole), formed whole (`Some(false)`), or each
    /// backend's default (`None`: fused on hardware GPUs only).
    pub fused_table: Option<bool>,
}

impl Default for TrainBenchOptions {
    /// Batch, hidden, song table and dropout are the trainer's defaults
    /// ([`TrainOptions::new`]), so the bench times the step `train` runs.
    fn default() -> Self {
        let t = TrainOptions::new(PathBuf::new(), ModelKind::Ainrnn, PathBuf::new());
        TrainBenchOptions {
            users: 5_000,
            songs: 10_000,
            batch: t.batch,
            history: 25,
            targets: 25,
            hidden: t.hidden,
            emb: t.emb,
            layers: 2,
            steps: 3,
            warmup: 2,
            models: vec![ModelKind::Ainrnn, ModelKind::Indrnn, ModelKind::Lstm],
            epoch: false,
            epoch_gpu_only: false,
            tile: None,
            dropout: t.dropout,
            seed: 42,
            neighbours: DEFAULT_NEIGHBOURS,
            song_weights: t.song_weights,
            pair_weights: t.pair_weights,
            connection: None,
            fused_table: None,
        }
    }
}
