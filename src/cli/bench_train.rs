//! Arguments and wiring of `ainrnn bench train`; the work is in `ainrnn::bench::train`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use ainrnn::backend::gpu::GpuBackend;
use ainrnn::backend::select::BackendChoice;
use ainrnn::bench::train::{self, TrainBenchOptions};
use ainrnn::model::ModelKind;

use super::{parse, print_json};

#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    /// Users per epoch (projected epoch time; `--epoch` runs them). Paper scale: 82310.
    #[arg(long, default_value_t = 5_000, value_parser = parse::positive_usize)]
    pub users: usize,
    /// Songs in the catalogue (≥ 2). Paper scale: 359687.
    #[arg(long, default_value_t = 10_000, value_parser = parse::int_at_least(2usize))]
    pub songs: usize,
    /// Users per step (default: the trainer's).
    #[arg(long, default_value_t = 32, value_parser = parse::positive_usize)]
    pub batch: usize,
    /// Listens shown per user (every user has exactly this many).
    #[arg(long, default_value_t = 25, value_parser = parse::positive_usize)]
    pub history: usize,
    /// Songs to predict per user.
    #[arg(long, default_value_t = 25, value_parser = parse::positive_usize)]
    pub targets: usize,
    /// Recurrent state width (default: the trainer's).
    #[arg(long, default_value_t = 32, value_parser = parse::positive_usize)]
    pub hidden: usize,
    /// Song table width, tied input and output, and user vector width (default: the trainer's).
    #[arg(long, default_value_t = 128, value_parser = parse::positive_usize)]
    pub emb: usize,
    /// Dropout (default: the trainer's).
    #[arg(long, default_value_t = 0.2, value_parser = parse::dropout)]
    pub dropout: f32,
    /// Recurrent layers, the same for every model (same shapes).
    #[arg(long, default_value_t = 2, value_parser = parse::positive_usize)]
    pub layers: usize,
    /// Timed steps per model and device (after the warm-up).
    #[arg(long, default_value_t = 3, value_parser = parse::positive_usize)]
    pub steps: usize,
    /// Untimed steps per model and device before the timed ones (pipelines compiled, buffers
    /// pooled, the matmul tuner's timing done).
    #[arg(long, default_value_t = 2, value_parser = parse::int_at_least(0usize))]
    pub warmup: usize,
    /// Models to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "ainrnn,indrnn,lstm")]
    pub models: Vec<ModelKind>,
    /// Also run one whole epoch over --users users for real, on every device.
    #[arg(long)]
    pub epoch: bool,
    /// With --epoch: the real epoch on the GPU only; the CPU's epoch is projected from its
    /// timed steps (a paper-scale CPU epoch takes minutes).
    #[arg(long, requires = "epoch")]
    pub epoch_gpu_only: bool,
    /// Songs per catalogue tile (default: the trainer's choice for the device, so the bench
    /// times what `train` runs).
    #[arg(long, value_parser = parse::positive_usize)]
    pub tile: Option<usize>,
    /// Seed of the synthetic histories and of the models' initial weights.
    #[arg(long, default_value_t = 42, value_parser = parse::int_at_least(0u64))]
    pub seed: u64,
    /// Neighbours per song of the item-neighbourhood term (default: the trainer's; 0: none,
    /// the PyTorch-comparable step).
    #[arg(long, default_value_t = ainrnn::model::DEFAULT_NEIGHBOURS, value_parser = parse::int_at_least(0usize))]
    pub neighbours: usize,
    /// The neighbourhood term without the learned per-song weights (default: with, as `train`).
    #[arg(long)]
    pub no_song_weights: bool,
    /// The neighbourhood term without the learned pair weights (default: with, as `train`,
    /// up to 16.8 M pairs).
    #[arg(long)]
    pub no_pair_weights: bool,
    /// Layer stacking of the IndRNN models: dense, residual, gated or plain (default: the trainer's,
    /// plain for ainrnn and indrnn; lstm is always plain).
    #[arg(long)]
    pub connection: Option<ainrnn::model::Connection>,
    /// The song table's optimizer step on both backends: `fused` (its catalogue gradient
    /// formed in the AdamW pass, never whole) or `formed` (formed whole first). Default: each
    /// backend's choice: fused on hardware GPUs, formed on the CPU and software GPU adapters
    /// (see `AINRNN_FUSED_TABLE`, which either backend follows).
    #[arg(long, value_parser = ["fused", "formed"])]
    pub table_step: Option<String>,
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

impl BenchTrainArgs {
    fn options(&self) -> TrainBenchOptions {
        let a = self;
        TrainBenchOptions {
            users: a.users,
            songs: a.songs,
            batch: a.batch,
            history: a.history,
            targets: a.targets,
            hidden: a.hidden,
            emb: a.emb,
            layers: a.layers,
            steps: a.steps,
            warmup: a.warmup,
            models: a.models.clone(),
            epoch: a.epoch,
            epoch_gpu_only: a.epoch_gpu_only,
            tile: a.tile,
            dropout: a.dropout,
            seed: a.seed,
            neighbours: a.neighbours,
            song_weights: !a.no_song_weights,
            pair_weights: !a.no_pair_weights,
            connection: a.connection,
            fused_table: a.table_step.as_deref().map(|s| s == "fused"),
        }
    }
}

pub fn run(a: BenchTrainArgs, choice: BackendChoice, json: bool) -> Result<()> {
    let o = a.options();
    // The CPU is always measured; the GPU is any adapter that opens (lavapipe included) unless
    // --backend cpu, and must open with --backend gpu.
    let (use_gpu, note) = match choice {
        BackendChoice::Cpu => (false, Some("--backend cpu: GPU not measured".to_string())),
        BackendChoice::Gpu => {
            GpuBackend::new().context("opening the GPU for bench train")?;
            (true, None)
        }
        BackendChoice::Auto => {
            let (g, note) = ainrnn::backend::select::bench_gpu()?;
            (g.is_some(), note)
        }
    };
    let opener = || -> Result<GpuBackend, ainrnn::Error> { Ok(GpuBackend::new()?) };
    let mut python = Err("--no-torch: PyTorch not timed".to_string());
    if !a.no_torch {
        python = train::find_python(a.python.as_deref());
        if python.is_err() && a.install_reference {
            eprintln!("installing torch into .venv-torch (large download) ...");
            python = Ok(train::install_reference()
                .map_err(|e| anyhow::anyhow!("--install-reference: {e}"))?);
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
        out!("{}", train::render(&r));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::cli::{BenchWhat, Cli, Command};

    /// The command's defaults are the library's, whose model sizes are the trainer's: the bench
    /// times the step `train` runs without flags.
    #[test]
    fn cli_defaults_are_the_librarys_and_the_trainers() {
        let m = Cli::command()
            .try_get_matches_from(["ainrnn", "bench", "train"])
            .unwrap();
        let Command::Bench(b) = Cli::from_arg_matches(&m).unwrap().command else {
            unreachable!()
        };
        let BenchWhat::Train(a) = b.what else {
            unreachable!()
        };
        let cli = a.options();
        let lib = TrainBenchOptions::default();
        assert_eq!(
            format!("{cli:?}").replace(' ', ""),
            format!("{lib:?}").replace(' ', "")
        );
        let t = ainrnn::train::run::TrainOptions::new("d".into(), ModelKind::Ainrnn, "o".into());
        assert_eq!(
            (
                lib.batch,
                lib.hidden,
                lib.emb,
                lib.dropout,
                lib.neighbours,
                lib.song_weights,
                lib.pair_weights
            ),
            (
                t.batch,
                t.hidden,
                t.emb,
                t.dropout,
                t.neighbours,
                t.song_weights,
                t.pair_weights
            )
        );
    }
}
