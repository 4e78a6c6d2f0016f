//! `ainrnn bench train`: seconds per training step (forward, catalogue softmax loss, backward,
//! AdamW) for AINRNN, IndRNN and LSTM on the CPU backend and on a GPU in one run, on **synthetic**
//! listening histories made in memory (never real data). Also: the share of the step spent in the
//! catalogue softmax, the projected (or, with `--epoch`, measured) time per epoch, GPU memory, CPU
//! RSS, GPU dispatches / submits / read-backs / new buffers per step, the IndRNN-vs-LSTM ratio,
//! and PyTorch on the CPU for the same IndRNN and LSTM shapes (`scripts/bench_torch.py`) when
//! Python imports torch.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::GpuBackend;
use crate::backend::model_ops::ModelOps;
use crate::backend::{BTensor, Backend};
use crate::data::rng::Rng;
use crate::error::Error;
use crate::model::batch::{upload, Example};
use crate::model::params::OptimConfig;
use crate::model::{Model, ModelConfig, ModelKind};

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

/// SYNTHETIC histories: song popularity follows Zipf's law (weight `1/(rank+1)`, ranks a random
/// permutation), songs of a user are distinct, play counts are ⌈log-normal(−0.3, 1.5)⌉ as in
/// `ainrnn synth`. Each user is drawn from its own seeded stream, so any subset is reproducible.
pub struct SyntheticHistories {
    cum: Vec<f64>,
    songs: usize,
    seed: u64,
}

impl SyntheticHistories {
    pub fn new(songs: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut rank: Vec<u32> = (0..songs as u32).collect();
        rng.shuffle(&mut rank);
        let mut acc = 0.0;
        let cum = rank
            .iter()
            .map(|&r| {
                acc += 1.0 / (r as f64 + 1.0);
                acc
            })
            .collect();
        SyntheticHistories { cum, songs, seed }
    }

    fn song(&self, rng: &mut Rng) -> u32 {
        let total = self.cum.last().copied().unwrap_or(0.0);
        let x = rng.uniform() * total;
        self.cum.partition_point(|&c| c <= x).min(self.songs - 1) as u32
    }

    /// User `user`'s example: `history` listens (with play counts) and `targets` other songs.
    pub fn example(&self, user: u32, history: usize, targets: usize) -> Example {
        let mut rng = Rng::derived(self.seed, user as u64);
        let want = (history + targets).min(self.songs);
        let mut seen = FxHashSet::default();
        let mut songs = Vec::with_capacity(want);
        let mut attempts = 0;
        while songs.len() < want && attempts < 50 * want + 100 {
            attempts += 1;
            let s = self.song(&mut rng);
            if seen.insert(s) {
                songs.push(s);
            }
        }
        let n_hist = history.min(songs.len().saturating_sub(1)).max(1);
        let tgt = songs.split_off(n_hist.min(songs.len()));
        let plays = songs
            .iter()
            .map(|_| {
                let u1 = 1.0 - rng.uniform();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * rng.uniform()).cos();
                (-0.3 + 1.5 * z).exp().ceil().clamp(1.0, 1e6) as f32
            })
            .collect();
        Example {
            user,
            songs,
            plays,
            targets: tgt,
            exclude: Vec::new(),
        }
    }

    /// Examples of users `first..first + n`.
    pub fn examples(&self, first: usize, n: usize, history: usize, targets: usize) -> Vec<Example> {
        (first..first + n)
            .map(|u| self.example(u as u32, history, targets))
            .collect()
    }
}

/// Seconds per step of each phase, measured with a device sync after each.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Phases {
    /// Host batch preparation (index plans) and upload.
    pub upload: f64,
    pub forward: f64,
    /// `Scorer::loss_backward`: catalogue logits, log-sum-exp, loss, ∂u and the scorer's
    /// gradients, tile by tile.
    pub softmax: f64,
    pub backward: f64,
    /// Gradient norm, clipping and AdamW over every parameter.
    pub optimizer: f64,
}

impl Phases {
    pub fn total(&self) -> f64 {
        self.upload + self.forward + self.softmax + self.backward + self.optimizer
    }
    fn add(&mut self, o: &Phases) {
        self.upload += o.upload;
        self.forward += o.forward;
        self.softmax += o.softmax;
        self.backward += o.backward;
        self.optimizer += o.optimizer;
    }
    fn scale(&mut self, k: f64) {
        self.upload *= k;
        self.forward *= k;
        self.softmax *= k;
        self.backward *= k;
        self.optimizer *= k;
    }
}

/// GPU resources of one model's run (its own device, so nothing else is counted).
#[derive(Clone, Debug, Serialize)]
pub struct GpuUse {
    /// Device memory held at the end (live tensors and the buffer pool).
    pub bytes_allocated: u64,
    /// Per timed step (after warm-up): buffers newly created, dispatches, submits, read-backs.
    pub buffers_created_per_step: f64,
    pub dispatches_per_step: f64,
    pub submits_per_step: f64,
    pub readbacks_per_step: f64,
    pub timestamps: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelRun {
    pub model: &'static str,
    /// `cpu` or `gpu`.
    pub device: &'static str,
    pub backend: String,
    pub layers: usize,
    pub parameters: usize,
    /// Wall clock per step (upload + forward + loss + backward + AdamW), steps back to back, one
    /// device sync at the end.
    pub seconds_per_step: f64,
    /// CPU: the median of the timed steps, each timed alone (robust when other processes share
    /// the cores); compared with PyTorch's median step.
    pub median_step_seconds: Option<f64>,
    pub users_per_second: f64,
    /// Per-phase wall clock with a sync after each phase (so the sum exceeds `seconds_per_step`
    /// on a GPU, where phases otherwise overlap with recording).
    pub phases: Phases,
    /// Per-phase kernel time from GPU timestamp queries, when supported.
    pub phases_kernel: Option<Phases>,
    /// `phases.softmax / phases.total()` (kernel times when available).
    pub softmax_share: f64,
    pub steps_per_epoch: usize,
    pub projected_epoch_seconds: f64,
    /// `--epoch`: one real epoch over all users (with the trainer's loss read-back every 8 steps).
    pub epoch_seconds: Option<f64>,
    /// Mean training loss of the timed steps (a sanity check: finite, about ln(songs) at first).
    pub mean_loss: f64,
    pub gpu: Option<GpuUse>,
    /// Resident memory of the process after the run.
    pub rss_bytes: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TorchModel {
    pub model: String,
    /// Mean over the timed steps.
    pub seconds_per_step: f64,
    /// Median step: OpenMP threads stall badly when other processes share the cores.
    #[serde(default)]
    pub median_seconds_per_step: Option<f64>,
    /// The catalogue softmax alone (logits, log-softmax, loss, forward and backward for a fixed
    /// user batch): the counterpart of `phases.softmax`.
    #[serde(default)]
    pub softmax_seconds_per_step: Option<f64>,
    #[serde(default)]
    pub mean_loss: Option<f64>,
    /// LSTM: whether oneDNN's path was the faster one (the script times both).
    #[serde(default)]
    pub onednn: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TorchRun {
    #[serde(default)]
    pub python: String,
    pub torch: String,
    pub threads: usize,
    pub models: Vec<TorchModel>,
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

/// `(VmRSS, VmHWM)` in bytes from `/proc/self/status` (Linux; `None` elsewhere).
pub fn rss() -> (Option<u64>, Option<u64>) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn model_config(o: &TrainBenchOptions, kind: ModelKind) -> ModelConfig {
    let mut cfg = ModelConfig::new(kind, o.songs);
    cfg.hidden = o.hidden;
    cfg.layers = o.layers.max(1);
    cfg.max_history = o.history.max(1);
    cfg.tile = o.tile.max(1);
    cfg.dropout = o.dropout;
    cfg.seed = o.seed;
    // The recurrent stacks and the catalogue softmax, as PyTorch's script has them: the sparse
    // item-neighbourhood term is not part of this comparison.
    cfg.neighbours = 0;
    cfg
}

/// Runs `f` between two device syncs; returns its value, the wall time and (with a GPU that has
/// timestamp queries) the summed kernel time.
fn phase<B: Backend, T>(
    b: &B,
    gpu: Option<&GpuBackend>,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<(T, f64, Option<f64>), Error> {
    b.sync()?;
    let timed = match gpu {
        Some(g) => g.context().timer_start()?,
        None => false,
    };
    let t0 = Instant::now();
    let out = f()?;
    b.sync()?;
    let wall = t0.elapsed().as_secs_f64();
    let kernel = match (timed, gpu) {
        (true, Some(g)) => g.context().timer_stop()?.map(|(d, _)| d.as_secs_f64()),
        _ => None,
    };
    Ok((out, wall, kernel))
}

/// One model on one backend. `gpu` is `Some` when `b` is that GPU (for its counters).
fn run_model<B: ModelOps>(
    b: &B,
    gpu: Option<&GpuBackend>,
    o: &TrainBenchOptions,
    kind: ModelKind,
    pool: &[Example],
    epoch: Option<&[Example]>,
) -> Result<ModelRun, Error> {
    let cfg = model_config(o, kind);
    let optim = OptimConfig::default();
    let mut model = Model::new(b, cfg.clone(), None)?;
    let mut rng = StdRng::seed_from_u64(o.seed);
    let bs = o.batch.max(1);
    let chunks: Vec<&[Example]> = pool.chunks(bs).collect();
    let mut next = 0usize;
    let mut chunk = || {
        let c = chunks[next % chunks.len()];
        next += 1;
        c
    };
    let mut loss_acc: BTensor<B> = b.zeros(&[1])?;
    let mut step = |model: &mut Model<B>, acc: &mut BTensor<B>, ex: &[Example]| {
        let batch = upload(b, &model.cfg, None, ex)?;
        let loss = model.train_step(b, &batch, &mut rng, &optim)?;
        b.axpy(acc, &loss, 1.0)?;
        Ok::<_, Error>(())
    };
    for _ in 0..o.warmup {
        step(&mut model, &mut loss_acc, chunk())?;
    }
    b.sync()?;
    loss_acc = b.zeros(&[1])?;
    b.sync()?;
    let s0 = gpu.map(|g| g.context().stats());
    let steps = o.steps.max(1);
    let t0 = Instant::now();
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let ts = Instant::now();
        step(&mut model, &mut loss_acc, chunk())?;
        times.push(ts.elapsed().as_secs_f64());
    }
    b.sync()?;
    let seconds_per_step = t0.elapsed().as_secs_f64() / steps as f64;
    // On the CPU a step is done when it returns, so each step's own time is exact.
    times.sort_by(f64::total_cmp);
    let median_step_seconds = gpu.is_none().then(|| times[times.len() / 2]);
    let s1 = gpu.map(|g| g.context().stats());
    let mean_loss = b.to_f32(&loss_acc)?[0] as f64 / steps as f64;

    // Phases, each between syncs (the same steps again, fewer of them).
    let phase_steps = steps.min(2);
    let (mut wall, mut kern) = (Phases::default(), Phases::default());
    let mut have_kernel = true;
    let mut prng = StdRng::seed_from_u64(o.seed ^ 1);
    for _ in 0..phase_steps {
        let ex = chunk();
        let (batch, w_up, k_up) = phase(b, gpu, || Ok(upload(b, &model.cfg, None, ex)?))?;
        let ((u, cache), w_f, k_f) =
            phase(b, gpu, || Ok(model.forward(b, &batch, Some(&mut prng))?))?;
        let ((_, du), w_s, k_s) = phase(b, gpu, || {
            Ok(model
                .scorer
                .loss_backward(b, &mut model.params, &u, &batch.targets, &Vec::new())?)
        })?;
        let ((), w_b, k_b) = phase(b, gpu, || Ok(model.backward(b, &batch, &cache, &du)?))?;
        let ((), w_o, k_o) = phase(b, gpu, || Ok(model.params.apply(b, &optim)?))?;
        wall.add(&Phases {
            upload: w_up,
            forward: w_f,
            softmax: w_s,
            backward: w_b,
            optimizer: w_o,
        });
        match (k_up, k_f, k_s, k_b, k_o) {
            (Some(a), Some(f), Some(s), Some(bk), Some(op)) => kern.add(&Phases {
                upload: a,
                forward: f,
                softmax: s,
                backward: bk,
                optimizer: op,
            }),
            _ => have_kernel = false,
        }
    }
    wall.scale(1.0 / phase_steps as f64);
    kern.scale(1.0 / phase_steps as f64);
    let phases_kernel = (have_kernel && gpu.is_some()).then_some(kern);
    let share_of = |p: &Phases| {
        if p.total() > 0.0 {
            p.softmax / p.total()
        } else {
            0.0
        }
    };
    let softmax_share = share_of(phases_kernel.as_ref().unwrap_or(&wall));

    let steps_per_epoch = o.users.div_ceil(bs);
    let epoch_seconds = match epoch {
        Some(all) => {
            b.sync()?;
            let t0 = Instant::now();
            let mut acc = b.zeros(&[1])?;
            for (i, ex) in all.chunks(bs).enumerate() {
                step(&mut model, &mut acc, ex)?;
                // The trainer reads the loss back every 8 steps (progress, NaN check).
                if (i + 1) % 8 == 0 {
                    let v = b.to_f32(&acc)?[0];
                    if !v.is_finite() {
                        return Err(Error::Other(format!(
                            "bench train: {} loss became {v} in the epoch run",
                            kind.name()
                        )));
                    }
                    acc = b.zeros(&[1])?;
                }
            }
            b.sync()?;
            Some(t0.elapsed().as_secs_f64())
        }
        None => None,
    };
    let gpu_use = match (gpu, s0, s1) {
        (Some(g), Some(a), Some(z)) => {
            let per = |x: u64, y: u64| (y - x) as f64 / steps as f64;
            Some(GpuUse {
                bytes_allocated: g.context().stats().bytes_allocated,
                buffers_created_per_step: per(a.buffers_created, z.buffers_created),
                dispatches_per_step: per(a.dispatches, z.dispatches),
                submits_per_step: per(a.submits, z.submits),
                readbacks_per_step: per(a.readbacks, z.readbacks),
                timestamps: phases_kernel.is_some(),
            })
        }
        _ => None,
    };
    Ok(ModelRun {
        model: kind.name(),
        device: if gpu.is_some() { "gpu" } else { "cpu" },
        backend: b.describe(),
        layers: cfg.layers,
        parameters: model.params.count(),
        seconds_per_step,
        median_step_seconds,
        users_per_second: bs as f64 / seconds_per_step.max(1e-12),
        phases: wall,
        phases_kernel,
        softmax_share,
        steps_per_epoch,
        projected_epoch_seconds: steps_per_epoch as f64 * seconds_per_step,
        epoch_seconds,
        mean_loss,
        gpu: gpu_use,
        rss_bytes: rss().0,
    })
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

/// Runs `scripts/bench_torch.py` with the same shapes and thread count.
fn run_torch(
    python: &str,
    script: &Path,
    o: &TrainBenchOptions,
    models: &[&str],
) -> Result<TorchRun, String> {
    let mut r: TorchRun = super::run_json(
        Command::new(python)
            .arg(script)
            .args(["--songs", &o.songs.to_string()])
            .args(["--batch", &o.batch.to_string()])
            .args(["--history", &o.history.to_string()])
            .args(["--targets", &o.targets.to_string()])
            .args(["--hidden", &o.hidden.to_string()])
            .args(["--layers", &o.layers.to_string()])
            .args(["--steps", &o.steps.max(1).to_string()])
            .args(["--warmup", &o.warmup.to_string()])
            .args(["--dropout", &o.dropout.to_string()])
            .args(["--seed", &o.seed.to_string()])
            .args(["--threads", &rayon::current_num_threads().to_string()])
            .args(["--models", &models.join(",")]),
        python,
        script,
    )?;
    r.python = python.to_string();
    Ok(r)
}

/// A Python that imports torch: the given one, `.venv-torch`, `.venv-bench`, `.venv`, `python3`.
pub fn find_python(given: Option<&str>) -> Option<String> {
    super::python_with(
        "torch",
        given,
        &[
            ".venv-torch/bin/python",
            ".venv-bench/bin/python",
            ".venv/bin/python",
            "python3",
        ],
    )
}

/// Creates `.venv-torch` with PyTorch from PyPI (large: the wheel pulls the CUDA libraries too;
/// only the CPU is used).
pub fn install_reference() -> Result<String, String> {
    super::make_venv(".venv-torch", &["torch"])
}

fn human_seconds(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

/// The table printed on stderr.
pub fn render(r: &TrainBench) -> String {
    let o = &r.options;
    let mut s = format!(
        "bench train on SYNTHETIC histories: {} songs, batch {}, history {}, targets {}, hidden {}, layers {}, \
         {} timed steps after {} warm-up; epoch = {} users = {} steps; {} CPU threads\n",
        o.songs,
        o.batch,
        o.history,
        o.targets,
        o.hidden,
        o.layers,
        o.steps,
        o.warmup,
        o.users,
        o.users.div_ceil(o.batch.max(1)),
        r.cpu_threads
    );
    s += &format!(
        "  {:<7} {:<4} {:>10} {:>9} {:>8} {:>11} {:>11} {:>9} {:>8} {:>9}\n",
        "model",
        "dev",
        "step",
        "users/s",
        "softmax",
        "epoch est.",
        "epoch run",
        "GPU MB",
        "new buf",
        "disp/step"
    );
    for x in &r.runs {
        let g = x.gpu.as_ref();
        s += &format!(
            "  {:<7} {:<4} {:>10} {:>9.0} {:>7.0}% {:>11} {:>11} {:>9} {:>8} {:>9}\n",
            x.model,
            x.device,
            human_seconds(x.seconds_per_step),
            x.users_per_second,
            x.softmax_share * 100.0,
            human_seconds(x.projected_epoch_seconds),
            x.epoch_seconds
                .map(human_seconds)
                .unwrap_or_else(|| "-".into()),
            g.map(|g| format!("{:.1}", g.bytes_allocated as f64 / 1e6))
                .unwrap_or_else(|| "-".into()),
            g.map(|g| format!("{:.1}", g.buffers_created_per_step))
                .unwrap_or_else(|| "-".into()),
            g.map(|g| format!("{:.0}", g.dispatches_per_step))
                .unwrap_or_else(|| "-".into()),
        );
    }
    s += "  phases per step (synced; GPU: kernel time when timestamps work):\n";
    for x in &r.runs {
        let p = x.phases_kernel.as_ref().unwrap_or(&x.phases);
        s += &format!(
            "    {:<7} {:<4} upload {:>9}  forward {:>9}  softmax {:>9}  backward {:>9}  adam {:>9}{}\n",
            x.model,
            x.device,
            human_seconds(p.upload),
            human_seconds(p.forward),
            human_seconds(p.softmax),
            human_seconds(p.backward),
            human_seconds(p.optimizer),
            if x.phases_kernel.is_some() { "  (kernels)" } else { "" }
        );
    }
    for x in r.runs.iter().filter_map(|x| x.gpu.as_ref().map(|g| (x, g))) {
        s += &format!(
            "  {} gpu: {:.1} submits, {:.1} read-backs, {:.1} new buffers per step\n",
            x.0.model, x.1.submits_per_step, x.1.readbacks_per_step, x.1.buffers_created_per_step
        );
    }
    for ((dev, ratio), (_, enc)) in r
        .indrnn_speedup_over_lstm
        .iter()
        .zip(&r.indrnn_encoder_speedup_over_lstm)
    {
        s += &format!(
            "  IndRNN vs LSTM on {dev}: whole step {ratio:.2}x, recurrent layers (forward + backward) {enc:.2}x (above 1: IndRNN faster)\n"
        );
    }
    if let Some(t) = &r.torch {
        s += &format!(
            "  PyTorch {} on the CPU ({} threads, {}), median step:\n",
            t.torch, t.threads, t.python
        );
        for v in &r.vs_torch {
            s += &format!(
                "    {:<7} torch {:>10}  ours {:>10}  ours {:.2}x {}\n",
                v.model,
                human_seconds(v.torch_seconds_per_step),
                human_seconds(v.ours_cpu_seconds_per_step),
                if v.cpu_speedup_vs_torch >= 1.0 {
                    v.cpu_speedup_vs_torch
                } else {
                    1.0 / v.cpu_speedup_vs_torch
                },
                if v.cpu_speedup_vs_torch >= 1.0 {
                    "faster"
                } else {
                    "slower"
                }
            );
        }
    }
    if let Some(n) = &r.torch_note {
        s += &format!("  note: {n}\n");
    }
    if let Some(n) = &r.gpu_note {
        s += &format!("  note: {n}\n");
    }
    if let Some(p) = r.peak_rss_bytes {
        s += &format!("  peak CPU RSS {:.0} MB\n", p as f64 / 1e6);
    }
    s
}
