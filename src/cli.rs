//! Command-line definitions (clap) and dispatch. Library code does the work; this file turns
//! arguments into calls and results into text or one JSON object (`--json`), both on stdout;
//! progress, logs and errors go to stderr.

/// `print!` and `println!` of a command's result, returning the write's error (`?`) instead of
/// panicking: a reader that stops early (`ainrnn stats x.h5 | head -1`) closes the pipe, which
/// `main` takes as a normal end.
macro_rules! out {
    ($($arg:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout().lock(), format_args!($($arg)*))?
    };
}
macro_rules! outln {
    ($($arg:tt)*) => {{
        out!($($arg)*);
        out!("\n");
    }};
}

mod bench_train;
mod data;
mod model;
mod parse;
mod paths;
mod similar;

use std::io::Write;
use std::path::PathBuf;
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
    /// Print the result as one JSON object on stdout (progress and logs go to stderr).
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
    /// List GPU adapters, the one chosen, its limits, timestamp support and the matmul tuner.
    Info,
    /// Measure speed: GPU vs CPU in one run.
    Bench(BenchArgs),
    /// The main job on the bundled data (see README).
    Demo(DemoArgs),
    /// Listening data + MSD + profiles -> one dataset.h5 (filters, portraits, folds).
    Prepare(data::PrepareArgs),
    /// Write SYNTHETIC Taste-Profile-shaped triplets (scale and speed tests), and with --audio
    /// a synthetic clip per song whose sound follows the songs' latent clusters.
    Synth(data::SynthArgs),
    /// Size, density, listens-per-user quantiles and long-tail share of a dataset.h5.
    Stats(data::StatsArgs),
    /// Train AINRNN or a baseline (IndRNN, residual IndRNN, LSTM) on a dataset file.
    Train(model::TrainArgs),
    /// Metrics of a checkpoint on a fold's test users.
    Eval(model::EvalArgs),
    /// Every model over the folds: mean ± std metrics, report.md and figures.
    Compare(model::CompareArgs),
    /// AINRNN's components one at a time against full AINRNN: paired tests, report and figure.
    Ablate(model::AblateArgs),
    /// Top-k songs for a user of the dataset or a new history, or for many users into one file.
    Recommend(model::RecommendArgs),
    /// Songs like a song (or like a few together): by co-listening, by content, or by a model.
    Similar(similar::SimilarArgs),
    /// Audio features (mel, MFCC + deltas, HFC, HPCP, scattering) into an HDF5 feature store.
    Features(FeaturesArgs),
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FeaturesArgs {
    #[command(subcommand)]
    pub sub: Option<FeaturesSub>,
    /// Audio files (WAV, Ogg Vorbis, MP3, FLAC) or directories (searched recursively).
    pub inputs: Vec<PathBuf>,
    /// The feature store to write (or extend: tracks already in it are skipped).
    #[arg(long, short, default_value = "features.h5")]
    pub output: PathBuf,
    /// Keep only the first S seconds of each track (S > 0).
    #[arg(long, value_name = "S", value_parser = parse::positive_f64)]
    pub seconds: Option<f64>,
    /// Process only shard I of N (0-based, by a hash of the file stem), e.g.
    /// --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT.
    #[arg(long, value_name = "I/N", value_parser = ainrnn::audio::job::parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// Clips per backend batch (GPU memory: about 5.4 MB per 30-second clip).
    #[arg(long, default_value_t = 32, value_parser = parse::positive_usize)]
    pub batch: usize,
    /// Skip the scattering transform.
    #[arg(long)]
    pub no_scattering: bool,
}

#[derive(Subcommand, Debug)]
pub enum FeaturesSub {
    /// Merge feature stores (e.g. one per shard) into one.
    Merge(MergeArgs),
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Stores to merge, in order (a track in several keeps the first).
    #[arg(required = true)]
    pub stores: Vec<PathBuf>,
    /// The merged store (extended when it exists).
    #[arg(long, short)]
    pub output: PathBuf,
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
    /// Streaming triplet reader throughput (MB/s) on a synthetic file.
    Data(data::BenchDataArgs),
    /// Decode, CPU features and GPU features per 30-second clip (and librosa when installed).
    Features(BenchFeaturesArgs),
    /// The scattering transform per clip: CPU, GPU and Kymatio-numpy in one run.
    Scattering(BenchScatteringArgs),
    /// Seconds per training step and per epoch, CPU vs GPU, AINRNN/IndRNN/LSTM on synthetic
    /// histories (and PyTorch on the CPU when installed).
    Train(bench_train::BenchTrainArgs),
    /// The prepared GPU report (`scripts/gpu-report.sh`): every part above at the sizes the
    /// issue's targets name, GPU-vs-CPU agreement and `demo --quick` on each backend, each
    /// part under its own timeout; writes results.json and report.md.
    Report(BenchReportArgs),
}

#[derive(Args, Debug)]
pub struct BenchReportArgs {
    /// Output folder (results.json, report.md, logs/, work/).
    #[arg(long)]
    pub out: PathBuf,
    /// Smoke sizes: the whole report on a software adapter (lavapipe) in a few minutes.
    #[arg(long)]
    pub quick: bool,
    /// The bundled data folder.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Parts to leave out, comma-separated.
    #[arg(long, value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(ainrnn::bench::report::PARTS))]
    pub skip: Vec<String>,
    /// Time limit of the whole report in seconds (each part also has its own).
    #[arg(long, default_value_t = 480, value_parser = parse::int_at_least(1u64))]
    pub budget: u64,
}

#[derive(Args, Debug)]
pub struct BenchScatteringArgs {
    /// Clip length in seconds, up to 600 (22,050 Hz; the bundled 30 s clip is looped beyond
    /// 30 s); at least 2^J samples.
    #[arg(long, default_value_t = 30.0, value_parser = parse::real_in(parse::End::Excl(0.0), parse::End::Incl(600.0)))]
    pub seconds: f64,
    /// Scattering J (averaging scale T = 2^J), 1..=24.
    #[arg(long, default_value_t = 8, value_parser = parse::int_in(1u32, 24))]
    pub j: u32,
    /// First-order wavelets per octave (order 2 uses 1, as Kymatio's default), 1..=64.
    #[arg(long, default_value_t = 8, value_parser = parse::int_in(1u32, 64))]
    pub q: u32,
    /// Time each implementation for at least this long (seconds, ≥ 0).
    #[arg(long, default_value_t = 1.0, value_parser = parse::non_negative_f64)]
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
pub struct BenchFeaturesArgs {
    /// Number of clips (the bundled real clips, cycled).
    #[arg(long, default_value_t = 8, value_parser = parse::positive_usize)]
    pub clips: usize,
    /// Seconds per clip, 0.2 to 600 (a clip shorter than that is timed at its own length).
    #[arg(long, default_value_t = 30.0, value_parser = parse::real_in(parse::End::Incl(0.2), parse::End::Incl(600.0)))]
    pub seconds: f64,
    /// Folder with the clips.
    #[arg(long, default_value = "data/audio")]
    pub data: PathBuf,
    /// Python with librosa for the reference timing (default: .venv-bench, .venv, python3).
    #[arg(long)]
    pub python: Option<String>,
    /// Create .venv-bench with librosa 0.11 (pip) when no Python imports librosa.
    #[arg(long)]
    pub install_reference: bool,
}

#[derive(Args, Debug)]
pub struct BenchOpsArgs {
    /// Small sizes only (a smoke run of a few seconds).
    #[arg(long, conflicts_with = "large")]
    pub quick: bool,
    /// Add the GPU report's sizes: a 4096³ matmul and a 256 × 360,000 softmax.
    #[arg(long)]
    pub large: bool,
    /// Time each case for at least this long (seconds, ≥ 0), in at most 50 repetitions: a
    /// case faster than `min_seconds / 50` (the --quick sizes) takes less.
    #[arg(long, default_value_t = 0.5, value_parser = parse::non_negative_f64)]
    pub min_seconds: f64,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Smoke-test sizes (one fold, two epochs).
    #[arg(long)]
    pub quick: bool,
    /// The bundled data folder.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Output folder (features, datasets, reports, checkpoints).
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
}

/// The command line of [`Cli`], with every option that takes a value accepting a negative
/// number written apart (`--lr -1`), so that its own range check answers ("must be a finite
/// number in (0, 1] (got -1)") instead of clap's "unexpected argument '-1'".
pub fn command() -> clap::Command {
    fn negatives(c: clap::Command) -> clap::Command {
        c.mut_args(|a| {
            if a.get_action().takes_values() {
                a.allow_negative_numbers(true)
            } else {
                a
            }
        })
        .mut_subcommands(negatives)
    }
    negatives(<Cli as clap::CommandFactory>::command())
}

/// Prints `value` as one JSON line on stdout.
/// Set once a command has printed its JSON result: a later failure then adds no second object.
static JSON_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// With `--json`, a failed command still prints one object, `{"error": "…"}`, so a program
/// reading stdout gets JSON either way (the message also goes to stderr).
pub fn print_json_error(e: &anyhow::Error) {
    if JSON_PRINTED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, &serde_json::json!({ "error": format!("{e:#}") }));
    let _ = writeln!(out);
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    JSON_PRINTED.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Runs the parsed command; `matches` (from the same parse) tell which flags were given.
pub fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<ExitCode> {
    // `features` stops after its batch instead (`stop_on_signals`); every other command
    // removes its temporaries and exits.
    let features_job = matches!(&cli.command, Command::Features(a) if a.sub.is_none());
    if !features_job {
        remove_temps_on_signals();
    }
    match cli.command {
        Command::Info => {
            let info = ainrnn::info::collect();
            if cli.json {
                print_json(&info)?;
            } else {
                out!("{}", ainrnn::info::render(&info));
            }
        }
        Command::Bench(BenchArgs {
            what: BenchWhat::Ops(a),
        }) => {
            let sizes = match (a.quick, a.large) {
                (true, _) => ainrnn::bench::ops::Sizes::Quick,
                (_, true) => ainrnn::bench::ops::Sizes::Large,
                _ => ainrnn::bench::ops::Sizes::Default,
            };
            bench_ops(cli.backend.into(), cli.json, sizes, a.min_seconds)?
        }
        Command::Bench(BenchArgs {
            what: BenchWhat::Data(a),
        }) => data::run_bench(a, cli.json)?,
        Command::Bench(BenchArgs {
            what: BenchWhat::Report(a),
        }) => bench_report(cli.backend.into(), cli.json, a)?,
        Command::Bench(BenchArgs {
            what: BenchWhat::Train(a),
        }) => bench_train::run(a, cli.backend.into(), cli.json)?,
        Command::Train(a) => {
            let given = matches.subcommand_matches("train");
            model::run_train(a, given, cli.backend.into(), cli.json)?
        }
        Command::Eval(a) => model::run_eval(a, cli.backend.into(), cli.json)?,
        Command::Compare(a) => {
            let given = matches.subcommand_matches("compare");
            return model::run_compare(a, given, cli.backend.into(), cli.json);
        }
        Command::Ablate(a) => {
            let given = matches.subcommand_matches("ablate");
            return model::run_ablate(a, given, cli.backend.into(), cli.json);
        }
        Command::Recommend(a) => return model::run_recommend(a, cli.backend.into(), cli.json),
        Command::Similar(a) => return similar::run(a, cli.backend.into(), cli.json),
        Command::Prepare(a) => data::run_prepare(a, cli.json)?,
        Command::Synth(a) => data::run_synth(a, cli.json)?,
        Command::Stats(a) => data::run_stats(a, cli.json)?,
        Command::Bench(BenchArgs {
            what: BenchWhat::Features(a),
        }) => bench_features(cli.backend.into(), cli.json, a)?,
        Command::Features(a) => return features(cli.backend.into(), cli.json, a),
        Command::Bench(BenchArgs {
            what: BenchWhat::Scattering(a),
        }) => bench_scattering(cli.backend.into(), cli.json, a)?,
        Command::Demo(a) => demo(cli.backend.into(), cli.json, a)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_report(choice: BackendChoice, json: bool, a: BenchReportArgs) -> Result<()> {
    // Every part times the GPU (beside the CPU): ignoring the flag ran them anyway.
    if choice == BackendChoice::Cpu {
        usage!(
            "bench report is the GPU report: it times a GPU beside the CPU, and --backend cpu leaves the GPU out; time the CPU alone with `ainrnn --backend cpu bench ops` (or features, scattering, train)"
        );
    }
    let _lock = paths::lock_output_dir("--out", &a.out)?;
    let o = ainrnn::bench::report::ReportOptions {
        out: a.out,
        quick: a.quick,
        exe: std::env::current_exe().context("locating the ainrnn binary")?,
        data: a.data,
        skip: a.skip,
        budget: std::time::Duration::from_secs(a.budget),
    };
    eprintln!(
        "GPU report{} into {}",
        if o.quick { " (--quick)" } else { "" },
        o.out.display()
    );
    let r = ainrnn::bench::report::run(&o, &mut |l| eprintln!("  {l}"))?;
    if json {
        print_json(&r)?;
    } else {
        eprintln!(
            "wrote {} and {}",
            o.out.join("report.md").display(),
            o.out.join("results.json").display()
        );
    }
    Ok(())
}

/// The benchmark always measures the CPU; the GPU side uses any adapter that opens, a software
/// one included (so `bench ops` on lavapipe compares it with the CPU), unless `--backend cpu`.
fn bench_ops(
    choice: BackendChoice,
    json: bool,
    sizes: ainrnn::bench::ops::Sizes,
    min_seconds: f64,
) -> Result<()> {
    let (gpu, note) = match choice {
        BackendChoice::Cpu => (None, Some("--backend cpu: GPU not measured".to_string())),
        BackendChoice::Gpu => (
            Some(GpuBackend::new().context("opening the GPU for bench ops")?),
            None,
        ),
        BackendChoice::Auto => select::bench_gpu()?,
    };
    if let Some(n) = &note {
        eprintln!("note: {n}");
    }
    let _ = select::select; // `--backend auto` semantics for compute jobs live in `select`.
    let mut report = ainrnn::bench::ops::run(sizes, min_seconds, gpu, |row| {
        let op = match row.kernel {
            Some(k) => format!("{} [{k}]", row.op),
            None => row.op.to_string(),
        };
        eprintln!(
            "  {:<22} {:<16} cpu {:>9.3} ms{}",
            op,
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
        out!("{}", ainrnn::bench::ops::render(&report));
    }
    Ok(())
}

fn features(choice: BackendChoice, json: bool, a: FeaturesArgs) -> Result<ExitCode> {
    if let Some(FeaturesSub::Merge(m)) = a.sub {
        let stores: Vec<(&str, &std::path::Path)> = m
            .stores
            .iter()
            .map(|p| ("input store", p.as_path()))
            .collect();
        paths::refuse_overwriting_inputs("--output", &m.output, &stores)?;
        let _lock = paths::lock_output("--output", &m.output)?;
        let s = ainrnn::audio::store::merge(&m.stores, &m.output)
            .with_context(|| format!("merging into {}", m.output.display()))?;
        for (store, stem) in &s.duplicates {
            eprintln!("note: {store}: track {stem:?} already merged, kept the first");
        }
        eprintln!(
            "merged {} stores into {}: {} tracks ({} added)",
            m.stores.len(),
            m.output.display(),
            s.tracks,
            s.added
        );
        if json {
            print_json(&s)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.inputs.is_empty() {
        usage!("features: no inputs given (files or directories)");
    }
    let inputs: Vec<(&str, &std::path::Path)> =
        a.inputs.iter().map(|p| ("input", p.as_path())).collect();
    paths::refuse_overwriting_inputs("--output", &a.output, &inputs)?;
    let _lock = paths::lock_output("--output", &a.output)?;
    let (sel, note) = select::select(choice).context("choosing the backend")?;
    if let Some(n) = note {
        eprintln!("note: {n}");
    }
    let opts = ainrnn::audio::job::JobOptions {
        inputs: a.inputs,
        output: a.output,
        seconds: a.seconds,
        shard: a.shard,
        batch: a.batch,
        stop: Some(stop_on_signals()),
    };
    let bar = count_bar("tracks");
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let stage = if a.no_scattering {
        None
    } else {
        Some(ainrnn::audio::scattering::Stage::new(Default::default())?)
    };
    let summary = ainrnn::with_backend!(sel, b => {
        let f = |b: &_, x: &_| stage.as_ref().expect("stage present").run(b, x);
        let scat = stage.as_ref().map(|s| (&f as &ainrnn::audio::features::ScatteringFn<'_, _>, s.first_order()));
        ainrnn::audio::job::run(&b, &opts, scat, progress)
    })
    .with_context(|| format!("features into {}", opts.output.display()))?;
    bar.finish_and_clear();
    for s in &summary.skipped {
        eprintln!("skipped {}: {}", s.file, s.reason);
    }
    eprintln!(
        "features: {} written, {} skipped, {} already in {} ({}) in {:.1} s on {}",
        summary.written.len(),
        summary.skipped.len(),
        summary.already_done.len(),
        summary.output,
        ainrnn::text::count(summary.tracks_in_store as u64, "track"),
        summary.seconds,
        summary.backend
    );
    if json {
        print_json(&summary)?;
    }
    let sig = SIGNAL.load(std::sync::atomic::Ordering::SeqCst);
    if summary.interrupted || sig != 0 {
        eprintln!(
            "features: interrupted by signal {sig}: {} tracks kept in {}; run the same command again to continue",
            summary.tracks_in_store, summary.output
        );
        return Ok(ExitCode::from(128 + sig.clamp(0, 127) as u8));
    }
    Ok(partial(!summary.skipped.is_empty()))
}

/// A refusal of the command line itself, found after parsing (flags that conflict, a flag the
/// command would not read, a missing choice): exit status 2, as clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Returns a [`Usage`] error from the enclosing function (`anyhow::Result`).
macro_rules! usage {
    ($($t:tt)*) => {
        return Err(anyhow::Error::new($crate::cli::Usage(format!($($t)*))))
    };
}
pub(crate) use usage;

/// A batch's exit status: 3 when some of its inputs were skipped (or some of its runs failed)
/// and the rest written, else success.
pub(crate) fn partial(some_skipped: bool) -> ExitCode {
    if some_skipped {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// A progress bar of `nouns` done out of a total (drawn on stderr when it is a terminal):
/// `features`' tracks, `recommend --all`'s users.
pub(crate) fn count_bar(nouns: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {nouns}  {{per_sec}}  ETA {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic stores: async-signal-safe. A second signal ends the process at once (its
    // temporaries are then removed by the next run).
    if STOP.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) };
    }
    SIGNAL.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// SIGINT and SIGTERM end the command at once, but first remove the temporaries of the outputs
/// it was writing (the finished outputs stay as they were), then exit 128 + signal.
///
/// The handler only writes the signal's number to a pipe (async-signal-safe); a watcher thread
/// reads it and does the clean-up as ordinary code. Handlers, unlike a blocked signal mask, are
/// reset in child processes (a `python3` reference run stops on Ctrl-C as before), and both pipe
/// ends are close-on-exec.
#[cfg(unix)]
fn remove_temps_on_signals() {
    // SAFETY: plain libc calls on a local two-element array; the handler installed last only
    // writes one byte to a descriptor that stays open for the life of the process.
    unsafe {
        let mut fds = [0 as libc::c_int; 2];
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return;
        }
        for fd in fds {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        let read_end = fds[0];
        let watcher = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut sig = 0u8;
                if libc::read(read_end, (&mut sig as *mut u8).cast(), 1) == 1 {
                    // A finished epoch's checkpoint still on its way to the disk lands first.
                    ainrnn::io::atomic::settle_background_writes(
                        std::time::Duration::from_secs(60),
                    );
                    let n = ainrnn::io::atomic::remove_live_temps();
                    ainrnn::io::lock::remove_held_lock_files();
                    eprintln!(
                        "interrupted by signal {sig}: {n} unfinished output file(s) removed; finished outputs are kept"
                    );
                    std::process::exit(128 + i32::from(sig));
                }
            });
        if watcher.is_err() {
            return; // no watcher: the signals kill the process as before (the next run cleans up)
        }
        SIGNAL_PIPE.store(fds[1], std::sync::atomic::Ordering::SeqCst);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            libc::signal(sig, on_signal_to_pipe as *const () as libc::sighandler_t);
        }
    }
}

/// Outside Unix (Windows): the C runtime runs a Ctrl-C handler on a thread of its own, not
/// inside an interrupted one, so the handler does the clean-up itself.
#[cfg(not(unix))]
fn remove_temps_on_signals() {
    extern "C" fn on_signal_clean_up(sig: libc::c_int) {
        ainrnn::io::atomic::settle_background_writes(std::time::Duration::from_secs(60));
        let n = ainrnn::io::atomic::remove_live_temps();
        ainrnn::io::lock::remove_held_lock_files();
        eprintln!(
            "interrupted by signal {sig}: {n} unfinished output file(s) removed; finished outputs are kept"
        );
        std::process::exit(128 + sig);
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler; see above for where it runs.
        unsafe { libc::signal(sig, on_signal_clean_up as *const () as libc::sighandler_t) };
    }
}

#[cfg(unix)]
static SIGNAL_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

#[cfg(unix)]
extern "C" fn on_signal_to_pipe(sig: libc::c_int) {
    let b = sig as u8;
    let fd = SIGNAL_PIPE.load(std::sync::atomic::Ordering::SeqCst);
    // SAFETY: write(2) is async-signal-safe; `b` lives for the call.
    unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

/// SIGINT and SIGTERM stop the `features` job after the batch in progress (its temporary is
/// removed, what is done is kept) instead of killing it; the command then exits 128 + signal.
fn stop_on_signals() -> &'static std::sync::atomic::AtomicBool {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only touches atomics.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    &STOP
}

fn bench_features(choice: BackendChoice, json: bool, a: BenchFeaturesArgs) -> Result<()> {
    let (gpu, note) = match choice {
        BackendChoice::Cpu => (None, Some("--backend cpu: GPU not measured".to_string())),
        BackendChoice::Gpu => (
            Some(GpuBackend::new().context("opening the GPU for bench features")?),
            None,
        ),
        BackendChoice::Auto => select::bench_gpu()?,
    };
    let mut python = ainrnn::bench::features::find_python(a.python.as_deref());
    if python.is_err() && a.install_reference {
        eprintln!("installing librosa 0.11 into .venv-bench ...");
        python = Ok(ainrnn::bench::features::install_reference()
            .map_err(|e| anyhow::anyhow!("--install-reference: {e}"))?);
    }
    let script = PathBuf::from("scripts/bench_librosa.py");
    let r = ainrnn::bench::features::run(&a.data, a.clips, a.seconds, gpu, note, python, &script)?;
    if json {
        print_json(&r)?;
    } else {
        out!("{}", ainrnn::bench::features::render(&r));
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
        BackendChoice::Auto => select::bench_gpu()?,
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
    let report = bs::run(&opts, gpu, note).context("bench scattering")?;
    if json {
        print_json(&report)?;
    } else {
        out!("{}", bs::render(&report));
    }
    Ok(())
}

/// The main job on the bundled data (see `ainrnn::demo`).
fn demo(choice: BackendChoice, json: bool, a: DemoArgs) -> Result<()> {
    paths::refuse_output_folder_inside("--out", &a.out, "--data", &a.data)?;
    paths::input_exists("--data", &a.data)?;
    let _lock = paths::lock_output_dir("--out", &a.out)?;
    let (sel, note) = select::select(choice).context("choosing the backend")?;
    match note {
        Some(n) => eprintln!("note: {n}"),
        None => eprintln!(
            "using {}",
            ainrnn::with_backend!(&sel, b => ainrnn::backend::Backend::describe(b))
        ),
    }
    let o = ainrnn::demo::DemoOptions {
        data: a.data,
        out: a.out,
        quick: a.quick,
    };
    let s = ainrnn::demo::run(&sel, &o, &mut |l| eprintln!("{l}"))?;
    if json {
        print_json(&s)?;
    }
    eprintln!(
        "steps: {}",
        s.stages
            .iter()
            .map(|st| format!("{} {:.1} s", st.name, st.seconds))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "demo finished in {:.0} s on {}; reports: {}",
        s.seconds,
        s.backend,
        s.reports
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
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
