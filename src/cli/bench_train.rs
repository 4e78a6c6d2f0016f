//! Arguments and wiring of `ainrnn bench train`; the work is in `ainrnn::bench::train`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use ainrnn::backend::gpu::GpuBackend;
use ainrnn::backend::select::BackendChoice;
use ainrnn::bench::train::{self, TrainBenchOptions};
use ainrnn::model::ModelKind;

use super::print_json;

#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    /// Users per epoch (projected epoch time; `--epoch` runs them). Paper scale: 82310.
    #[arg(long, default_value_t = 5_000)]
    pub users: usize,
    /// Songs in the catalogue. Paper scale: 359687.
    #[arg(long, default_value_t = 10_000)]
    pub songs: usize,
    /// Users per step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Listens shown per user (every user has exactly this many).
    #[arg(long, default_value_t = 25)]
    pub history: usize,
    /// Songs to predict per user.
    #[arg(long, default_value_t = 25)]
    pub targets: usize,
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Recurrent layers, the same for every model (same shapes).
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Timed steps per model and device (after the warm-up).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Models to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "ainrnn,indrnn,lstm")]
    pub models: Vec<ModelKind>,
    /// Also run one whole epoch over --users users for real, on every device.
    #[arg(long)]
    pub epoch: bool,
    /// Songs per catalogue tile.
    #[arg(long, default_value_t = 32_768)]
    pub tile: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Neighbours per song of the item-neighbourhood term (default: the trainer's; 0: none, the PyTorch-comparable step).
    #[arg(long, default_value_t = ainrnn::model::DEFAULT_NEIGHBOURS)]
    pub neighbours: usize,
    /// Python with torch for the PyTorch reference (default: .venv-torch, .venv-bench, .venv, python3).
    #[arg(long)]
    pub python: Option<String>,
    /// Create .venv-torch with PyTorch (pip, large download) when no Python imports torch.
    #[arg(long)]
    pub install_reference: bool,
    /// Skip the PyTorch reference.
    #[arg(long)]
    pub no_torch: bool,
}

pub fn run(a: BenchTrainArgs, choice: BackendChoice, json: bool) -> Result<()> {
    let o = TrainBenchOptions {
        users: a.users.max(1),
        songs: a.songs,
        batch: a.batch,
        history: a.history,
        targets: a.targets,
        hidden: a.hidden.max(1),
        layers: a.layers.max(1),
        steps: a.steps.max(1),
        warmup: a.warmup,
        models: a.models,
        epoch: a.epoch,
        tile: a.tile.max(1),
        dropout: 0.5,
        seed: a.seed,
        neighbours: a.neighbours,
    };
    // The CPU is always measured; the GPU is any adapter that opens (lavapipe included) unless
    // --backend cpu, and must open with --backend gpu.
    let (use_gpu, note) = match choice {
        BackendChoice::Cpu => (false, Some("--backend cpu: GPU not measured".to_string())),
        BackendChoice::Gpu => {
            GpuBackend::new().context("opening the GPU for bench train")?;
            (true, None)
        }
        BackendChoice::Auto => match GpuBackend::new() {
            Ok(_) => (true, None),
            Err(e) => (false, Some(format!("no GPU adapter ({e}); CPU only"))),
        },
    };
    let opener = || -> Result<GpuBackend, ainrnn::Error> { Ok(GpuBackend::new()?) };
    let mut python = None;
    if !a.no_torch {
        python = train::find_python(a.python.as_deref());
        if python.is_none() && a.install_reference {
            eprintln!("installing torch into .venv-torch (large download) ...");
            python = Some(
                train::install_reference()
                    .map_err(|e| anyhow::anyhow!("--install-reference: {e}"))?,
            );
        }
    }
    let script = PathBuf::from("scripts/bench_torch.py");
    let r = train::run(
        &o,
        use_gpu.then_some(&opener as train::GpuOpener<'_>),
        note,
        python,
        &script,
        |x| {
            eprintln!(
                "  {:<7} {:<4} {:>9.2} ms/step  softmax {:>3.0}%  [{}]",
                x.model,
                x.device,
                x.seconds_per_step * 1e3,
                x.softmax_share * 100.0,
                x.backend
            )
        },
    )?;
    if json {
        print_json(&r)?;
    } else {
        eprint!("{}", train::render(&r));
    }
    Ok(())
}
