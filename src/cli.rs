//! Command-line definitions (clap) and dispatch. Library code does the work; this file turns
//! arguments into calls and results into text (stderr) or one JSON object (stdout, `--json`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use ainrnn::backend::gpu::GpuBackend;
use ainrnn::backend::select::{self, BackendChoice};

#[derive(Parser, Debug)]
#[command(
    name = "ainrnn",
    version,
    about = "GPU compute engine for music recommendation (AINRNN)"
)]
pub struct Cli {
    /// Compute backend: auto = a hardware GPU if there is one, else the CPU (with a note).
    #[arg(long, global = true, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// Print one JSON object on stdout (human text and progress go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    Auto,
    Cpu,
    Gpu,
}

impl From<BackendArg> for BackendChoice {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Cpu => BackendChoice::Cpu,
            BackendArg::Gpu => BackendChoice::Gpu,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List GPU adapters, the one chosen, its limits and timestamp support.
    Info,
    /// Measure speed: GPU vs CPU in one run.
    Bench(BenchArgs),
    /// The main job on the bundled data (see README).
    Demo(DemoArgs),
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Subcommand, Debug)]
pub enum BenchWhat {
    /// matmul, softmax and reductions at a few sizes.
    Ops(BenchOpsArgs),
    /// The scattering transform per clip: CPU, GPU and Kymatio-numpy in one run.
    Scattering(BenchScatteringArgs),
}

#[derive(Args, Debug)]
pub struct BenchScatteringArgs {
    /// Clip length in seconds (22,050 Hz; the bundled 30 s clip is looped beyond 30 s).
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Scattering J (averaging scale T = 2^J).
    #[arg(long, default_value_t = 8)]
    pub j: u32,
    /// First-order wavelets per octave (order 2 uses 1, as Kymatio's default).
    #[arg(long, default_value_t = 8)]
    pub q: u32,
    /// Time each implementation for at least this long (seconds).
    #[arg(long, default_value_t = 1.0)]
    pub min_seconds: f64,
    /// 16-bit PCM WAV to use instead of the bundled clip.
    #[arg(long)]
    pub wav: Option<std::path::PathBuf>,
    /// Python with Kymatio 0.3 (default: .venv-kymatio, .venv-ref, then python3).
    #[arg(long, env = "AINRNN_KYMATIO_PYTHON")]
    pub python: Option<std::path::PathBuf>,
    /// Create .venv-kymatio with Kymatio 0.3.0 (pip) first and use it.
    #[arg(long)]
    pub install_reference: bool,
    /// Do not run Kymatio.
    #[arg(long)]
    pub no_reference: bool,
}

#[derive(Args, Debug)]
pub struct BenchOpsArgs {
    /// Small sizes only (a smoke run of a few seconds).
    #[arg(long)]
    pub quick: bool,
    /// Time each case for at least this long (seconds).
    #[arg(long, default_value_t = 0.5)]
    pub min_seconds: f64,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Small sizes only.
    #[arg(long)]
    pub quick: bool,
}

/// Prints `value` as one JSON line on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Info => {
            let info = ainrnn::info::collect();
            if cli.json {
                print_json(&info)?;
            } else {
                eprint!("{}", ainrnn::info::render(&info));
            }
        }
        Command::Bench(BenchArgs {
            what: BenchWhat::Ops(a),
        }) => bench_ops(cli.backend.into(), cli.json, a.quick, a.min_seconds)?,
        Command::Bench(BenchArgs {
            what: BenchWhat::Scattering(a),
        }) => bench_scattering(cli.backend.into(), cli.json, a)?,
        Command::Demo(a) => {
            eprintln!("ainrnn demo: adapters, then the op benchmark (GPU vs CPU).");
            eprint!("{}", ainrnn::info::render(&ainrnn::info::collect()));
            bench_ops(cli.backend.into(), cli.json, a.quick, 0.3)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The benchmark always measures the CPU; the GPU side uses any adapter that opens, a software
/// one included (so `bench ops` on lavapipe compares it with the CPU), unless `--backend cpu`.
fn bench_ops(choice: BackendChoice, json: bool, quick: bool, min_seconds: f64) -> Result<()> {
    let (gpu, note) = match choice {
        BackendChoice::Cpu => (None, Some("--backend cpu: GPU not measured".to_string())),
        BackendChoice::Gpu => (
            Some(GpuBackend::new().context("opening the GPU for bench ops")?),
            None,
        ),
        BackendChoice::Auto => match GpuBackend::new() {
            Ok(g) => (Some(g), None),
            Err(e) => (None, Some(format!("no GPU adapter ({e}); CPU only"))),
        },
    };
    if let Some(n) = &note {
        eprintln!("note: {n}");
    }
    let _ = select::select; // `--backend auto` semantics for compute jobs live in `select`.
    let mut report = ainrnn::bench::ops::run(quick, min_seconds, gpu, |row| {
        eprintln!(
            "  {:<22} {:<16} cpu {:>9.3} ms{}",
            row.op,
            row.size,
            row.cpu_seconds * 1e3,
            row.gpu_seconds
                .map(|g| format!("   gpu {:>9.3} ms", g * 1e3))
                .unwrap_or_default()
        );
    })?;
    report.gpu_note = note;
    if json {
        print_json(&report)?;
    } else {
        eprint!("{}", ainrnn::bench::ops::render(&report));
    }
    Ok(())
}

/// Like `bench ops`: the CPU always, the GPU on any adapter that opens unless `--backend cpu`.
fn bench_scattering(choice: BackendChoice, json: bool, a: BenchScatteringArgs) -> Result<()> {
    use ainrnn::bench::scattering as bs;
    let (gpu, note) = match choice {
        BackendChoice::Cpu => (None, Some("--backend cpu: GPU not measured".to_string())),
        BackendChoice::Gpu => (
            Some(GpuBackend::new().context("opening the GPU for bench scattering")?),
            None,
        ),
        BackendChoice::Auto => match GpuBackend::new() {
            Ok(g) => (Some(g), None),
            Err(e) => (None, Some(format!("no GPU adapter ({e}); CPU only"))),
        },
    };
    let python = if a.install_reference {
        Some(
            bs::install_reference(std::path::Path::new(bs::DEFAULT_VENV))
                .context("installing the Kymatio reference")?,
        )
    } else {
        a.python
    };
    let opts = bs::Options {
        seconds: a.seconds,
        cfg: ainrnn::audio::scattering::ScatteringConfig { j: a.j, q: a.q },
        min_seconds: a.min_seconds,
        wav: a.wav,
        python,
        no_reference: a.no_reference,
    };
    if !(opts.seconds > 0.0 && opts.seconds.is_finite()) {
        anyhow::bail!("--seconds must be a positive number, got {}", opts.seconds);
    }
    let report = bs::run(&opts, gpu, note).context("bench scattering")?;
    if json {
        print_json(&report)?;
    } else {
        eprint!("{}", bs::render(&report));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
