//! `ainrnn bench train`: seconds per training step (forward, catalogue softmax loss, backward,
//! AdamW) for AINRNN, IndRNN and LSTM on the CPU backend and on a GPU in one run, on **synthetic**
//! listening histories made in memory (never real data). Also: the share of the step spent in the
//! catalogue softmax, the projected (or, with `--epoch`, measured) time per epoch, GPU memory, CPU
//! RSS, GPU dispatches / submits / read-backs / new buffers per step, the IndRNN-vs-LSTM ratio,
//! and PyTorch on the CPU for the same IndRNN and LSTM shapes (`scripts/bench_torch.py`) when
//! Python imports torch.
//!
//! Parts: `synth` makes the histories, `step` measures one model on one backend, `torch` runs the
//! PyTorch reference, `render` formats the table.

mod render;
mod step;
mod synth;
mod torch;

use std::path::Path;

use serde::Serialize;

pub use self::render::render;
use self::step::run_model;
pub use self::step::{rss, GpuUse, ModelRun, Phases};
pub use self::synth::SyntheticHistories;
use self::torch::run_torch;
pub use self::torch::{find_python, install_reference, TorchModel, TorchRun};
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::GpuBackend;
use crate::error::Error;
use crate::model::batch::Example;
use crate::model::ModelKind;

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
    pub layers: usize,
    /// Timed steps per model and backend (after `warmup` steps).
    pub steps: usize,
    pub warmup: usize,
    pub models: Vec<ModelKind>,
    /// Run one whole epoch over `users` users for real on each backend.
    pub epoch: bool,
    /// Songs per catalogue tile.
    pub tile: usize,
    pub dropout: f32,
    pub seed: u64,
}

impl Default for TrainBenchOptions {
    fn default() -> Self {
        TrainBenchOptions {
            users: 5_000,
            songs: 10_000,
            batch: 64,
            history: 25,
            targets: 25,
            hidden: 64,
            layers: 2,
            steps: 3,
            warmup: 2,
            models: vec![ModelKind::Ainrnn, ModelKind::Indrnn, ModelKind::Lstm],
            epoch: false,
            tile: 32_768,
            dropout: 0.5,
            seed: 42,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub model: String,
    /// Median steps (means when a median is missing).
    pub torch_seconds_per_step: f64,
    pub ours_cpu_seconds_per_step: f64,
    /// torch ÷ ours: above 1, our CPU backend is faster.
    pub cpu_speedup_vs_torch: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainBench {
    /// Always "synthetic": the histories are generated, not read from data.
    pub data: &'static str,
    pub options: TrainBenchOptions,
    pub cpu_threads: usize,
    pub runs: Vec<ModelRun>,
    /// LSTM seconds per step ÷ IndRNN's, per device (above 1: IndRNN is faster).
    pub indrnn_speedup_over_lstm: Vec<(String, f64)>,
    /// The same for the recurrent part alone (forward + backward phases, without the catalogue
    /// softmax and the optimizer, which are the same for both), per device.
    pub indrnn_encoder_speedup_over_lstm: Vec<(String, f64)>,
    pub gpu_note: Option<String>,
    pub torch: Option<TorchRun>,
    pub torch_note: Option<String>,
    pub vs_torch: Vec<Ratio>,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: Option<u64>,
}

/// How to get the GPU: a fresh device per model, so memory and counters are the model's own.
pub type GpuOpener<'a> = &'a dyn Fn() -> Result<GpuBackend, Error>;

/// Runs the benchmark: every model on the CPU, then on the GPU when `open_gpu` is given; then
/// PyTorch when `python` is given. `progress` sees each run as it finishes.
pub fn run(
    o: &TrainBenchOptions,
    open_gpu: Option<GpuOpener<'_>>,
    mut gpu_note: Option<String>,
    python: Option<String>,
    script: &Path,
    mut progress: impl FnMut(&ModelRun),
) -> Result<TrainBench, Error> {
    if o.songs < 2 || o.history == 0 || o.targets == 0 || o.batch == 0 {
        return Err(Error::Other(format!(
            "bench train: need --songs ≥ 2 and --history, --targets, --batch ≥ 1 (got songs {}, history {}, targets {}, batch {})",
            o.songs, o.history, o.targets, o.batch
        )));
    }
    let synth = SyntheticHistories::new(o.songs, o.seed);
    let pool_users = (o.batch * (o.steps.max(1) + o.warmup)).min(o.users.max(o.batch));
    let pool = synth.examples(0, pool_users, o.history, o.targets);
    let epoch: Option<Vec<Example>> = o
        .epoch
        .then(|| synth.examples(0, o.users, o.history, o.targets));
    let mut runs = Vec::new();
    let cpu = CpuBackend::new();
    for &kind in &o.models {
        let r = run_model(&cpu, None, o, kind, &pool, epoch.as_deref())?;
        progress(&r);
        runs.push(r);
    }
    if let Some(open) = open_gpu {
        for &kind in &o.models {
            let g = match open() {
                Ok(g) => g,
                Err(e) => {
                    gpu_note = Some(format!("GPU not measured: {e}"));
                    break;
                }
            };
            let r = run_model(&g, Some(&g), o, kind, &pool, epoch.as_deref())?;
            progress(&r);
            runs.push(r);
        }
    }
    let (mut ratios, mut enc_ratios) = (Vec::new(), Vec::new());
    for dev in ["cpu", "gpu"] {
        let find = |m: &str| runs.iter().find(|r| r.device == dev && r.model == m);
        if let (Some(i), Some(l)) = (find("indrnn"), find("lstm")) {
            ratios.push((
                dev.to_string(),
                l.seconds_per_step / i.seconds_per_step.max(1e-12),
            ));
            let enc = |r: &ModelRun| {
                let p = r.phases_kernel.as_ref().unwrap_or(&r.phases);
                p.forward + p.backward
            };
            enc_ratios.push((dev.to_string(), enc(l) / enc(i).max(1e-12)));
        }
    }
    let torch_models: Vec<&str> = o
        .models
        .iter()
        .filter(|k| matches!(k, ModelKind::Indrnn | ModelKind::Lstm))
        .map(|k| k.name())
        .collect();
    let (torch, torch_note) = match (python, torch_models.is_empty()) {
        (_, true) => (None, Some("no IndRNN or LSTM model asked for".into())),
        (None, _) => (
            None,
            Some("torch not importable (pass --install-reference to create .venv-torch)".into()),
        ),
        (Some(py), _) => match run_torch(&py, script, o, &torch_models) {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e)),
        },
    };
    let mut vs_torch = Vec::new();
    if let Some(t) = &torch {
        for tm in &t.models {
            if let Some(r) = runs
                .iter()
                .find(|r| r.device == "cpu" && r.model == tm.model)
            {
                // Medians on both sides when available (robust on a shared machine).
                let theirs = tm.median_seconds_per_step.unwrap_or(tm.seconds_per_step);
                let ours = r.median_step_seconds.unwrap_or(r.seconds_per_step);
                vs_torch.push(Ratio {
                    model: tm.model.clone(),
                    torch_seconds_per_step: theirs,
                    ours_cpu_seconds_per_step: ours,
                    cpu_speedup_vs_torch: theirs / ours.max(1e-12),
                });
            }
        }
    }
    Ok(TrainBench {
        data: "synthetic",
        options: o.clone(),
        cpu_threads: rayon::current_num_threads(),
        runs,
        indrnn_speedup_over_lstm: ratios,
        indrnn_encoder_speedup_over_lstm: enc_ratios,
        gpu_note,
        torch,
        torch_note,
        vs_torch,
        peak_rss_bytes: rss().1,
    })
}
