//! `ainrnn bench train`: seconds per training step (forward, catalogue softmax loss, backward,
//! AdamW) for AINRNN, IndRNN and LSTM on the CPU backend and on a GPU in one run, on **synthetic**
//! listening histories made in memory (never real data). Also: the share of the step spent in the
//! catalogue softmax, the projected (or, with `--epoch`, measured) time per epoch, GPU memory, CPU
//! RSS, GPU dispatches / submits / read-backs / new buffers per step, the IndRNN-vs-LSTM ratio,
//! and PyTorch on the CPU for the same IndRNN and LSTM shapes (`scripts/bench_torch.py`) when
//! Python imports torch.
//!
//! Parts: `options` (what to measure), `synth` (the histories), `step` (one model on one
//! backend), `torch` (the PyTorch reference), `report` (the result), `render` (its table). Here:
//! the run over models and devices.

mod options;
mod render;
mod report;
mod step;
mod synth;
mod torch;

use std::path::Path;

pub use self::options::TrainBenchOptions;
pub use self::render::render;
pub use self::report::{Ratio, TrainBench};
use self::step::run_model;
pub use self::step::{rss, GpuUse, ModelRun, Phases};
pub use self::synth::SyntheticHistories;
use self::torch::run_torch;
pub use self::torch::{find_python, install_reference, TorchModel, TorchRun};
use crate::backend::gpu::GpuBackend;
use crate::error::Error;
use crate::model::batch::Example;
use crate::model::{neighbours, ModelKind};

/// How to get the GPU: a fresh device per model, so memory and counters are the model's own.
pub type GpuOpener<'a> = &'a dyn Fn() -> Result<GpuBackend, Error>;

/// Runs the benchmark: every model on the CPU, then on the GPU when `open_gpu` is given; then
/// PyTorch when `python` is given. `progress` sees each run as it finishes.
pub fn run(
    o: &TrainBenchOptions,
    open_gpu: Option<GpuOpener<'_>>,
    mut gpu_note: Option<String>,
    python: Result<String, String>,
    script: &Path,
    mut progress: impl FnMut(&ModelRun),
) -> Result<TrainBench, Error> {
    if o.songs < 2 || o.history == 0 || o.targets == 0 || o.batch == 0 {
        return Err(Error::Other(format!(
            "bench train: need --songs ≥ 2 and --history, --targets, --batch ≥ 1 (got songs {}, history {}, targets {}, batch {})",
            o.songs, o.history, o.targets, o.batch
        )));
    }
    if o.history + o.targets > o.songs {
        return Err(Error::Other(format!(
            "bench train: every user listens to --history + --targets = {} distinct songs, and there are --songs {}",
            o.history + o.targets,
            o.songs
        )));
    }
    if o.users > u32::MAX as usize {
        return Err(Error::Other(format!(
            "bench train: --users {} is more than the {} users a dataset can hold",
            o.users,
            u32::MAX
        )));
    }
    // The histories of every user are made in memory (the neighbour lists' fit, `--epoch`):
    // about 24 bytes a listen with their copies; refused up front rather than killed later.
    let listens = (o.users as f64) * (o.history + o.targets) as f64;
    let need = 24.0 * listens + 8.0 * (o.songs as f64) * (o.neighbours as f64);
    if let Some(avail) = crate::io::space::memory_short_of(need) {
        return Err(Error::Other(format!(
            "bench train: the synthetic histories of --users {} (with their neighbour lists) take about {:.1} GB of memory, and {:.1} GB are available: choose fewer --users or a shorter --history",
            o.users,
            need / 1e9,
            avail as f64 / 1e9
        )));
    }
    let synth = SyntheticHistories::new(o.songs, o.seed);
    let pool_users = (o.batch * (o.steps.max(1) + o.warmup)).min(o.users.max(o.batch));
    let pool = synth.examples(0, pool_users, o.history, o.targets);
    let epoch: Option<Vec<Example>> = o
        .epoch
        .then(|| synth.examples(0, o.users, o.history, o.targets));
    // The item-neighbourhood lists, fitted once on every user of the epoch (as `train` fits them
    // on the training users), shared by every model and backend.
    let lists = if o.neighbours > 0 {
        let users: Vec<(Vec<u32>, Vec<f32>)> = match &epoch {
            Some(all) => all
                .iter()
                .map(|e| (e.songs.clone(), e.plays.clone()))
                .collect(),
            None => (0..o.users)
                .map(|u| {
                    let e = synth.example(u as u32, o.history, o.targets);
                    (e.songs, e.plays)
                })
                .collect(),
        };
        let ids: Vec<u32> = (0..users.len() as u32).collect();
        neighbours::fit(o.songs, &users, &ids, o.neighbours)
    } else {
        Vec::new()
    };
    let data = (pool.as_slice(), epoch.as_deref());
    let mut runs = Vec::new();
    // As `train` takes it (`AINRNN_FUSED_TABLE`), unless `--table-step` says.
    let cpu = crate::backend::select::cpu()?;
    let cpu = match o.fused_table {
        Some(on) => cpu.with_fused_table(on),
        None => cpu,
    };
    // `--epoch-gpu-only`: the CPU's epoch stays projected from its timed steps.
    let cpu_data = (data.0, data.1.filter(|_| !o.epoch_gpu_only));
    for &kind in &o.models {
        let r = run_model(&cpu, None, o, kind, cpu_data, &lists)?;
        progress(&r);
        runs.push(r);
    }
    if let Some(open) = open_gpu {
        for &kind in &o.models {
            let g = match open() {
                Ok(g) => match o.fused_table {
                    Some(on) => g.with_fused_table(on),
                    None => g,
                },
                Err(e) => {
                    gpu_note = Some(format!("GPU not measured: {e}"));
                    break;
                }
            };
            let r = run_model(&g, Some(&g), o, kind, data, &lists)?;
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
        (Err(why), _) => (None, Some(why)),
        (Ok(py), _) => match run_torch(&py, script, o, &torch_models) {
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
