//! One model on one backend: timed training steps, each phase between device syncs, an
//! optional real epoch, and the GPU's counters.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::options::TrainBenchOptions;
use crate::backend::gpu::{GpuBackend, KernelTime, TunedProduct};
use crate::backend::model_ops::ModelOps;
use crate::backend::{BTensor, Backend, LaterRead};
use crate::error::Error;
use crate::model::batch::{upload, Example};
use crate::model::neighbours::NeighbourLists;
use crate::model::params::OptimConfig;
use crate::model::{Model, ModelConfig, ModelKind};
use crate::train::run::{default_connection, tile_for};

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
    /// Bytes the host wrote to the device per timed step (tensor uploads, overwrites and the
    /// kernel-parameter arena), and the arena's share of them.
    pub upload_bytes_per_step: f64,
    pub param_bytes_per_step: f64,
    pub timestamps: bool,
    /// The runtime checks the kernels were compiled with (`all`, `bounds`, `none`;
    /// `AINRNN_SHADER_CHECKS`).
    pub shader_checks: &'static str,
    /// Where the kernel time of a step goes (timestamp queries of the phased steps): per phase
    /// and kernel, largest first. Empty without timestamp support.
    pub kernels: Vec<KernelShare>,
    /// The matmul tuner's decisions (kernel per class of products, with each kernel's time);
    /// empty when it is off (software adapters, `AINRNN_MATMUL_TUNE=0`).
    pub matmul_tuned: Vec<TunedProduct>,
}

/// One kernel's part of a step, from the timestamp queries.
#[derive(Clone, Debug, Serialize)]
pub struct KernelShare {
    /// The step's phase (`forward`, `softmax`, `backward`, `optimizer`, `upload`).
    pub phase: &'static str,
    /// `shader::entry[overrides]`.
    pub kernel: String,
    pub seconds_per_step: f64,
    pub dispatches_per_step: f64,
    /// Bytes bound to its storage bindings per step (see [`KernelTime::bytes`]).
    pub bytes_per_step: f64,
    /// Floating-point operations per step its callers declared (matmul), else 0.
    pub flops_per_step: f64,
    pub workgroups_per_step: f64,
}

/// Adds a phase's per-kernel times to `into`.
fn add_kernels(into: &mut Vec<KernelShare>, phase: &'static str, ks: Vec<KernelTime>) {
    for k in ks {
        let secs = k.nanos * 1e-9;
        match into
            .iter_mut()
            .find(|e| e.phase == phase && e.kernel == k.kernel)
        {
            Some(e) => {
                e.seconds_per_step += secs;
                e.dispatches_per_step += k.passes as f64;
                e.bytes_per_step += k.bytes;
                e.flops_per_step += k.flops;
                e.workgroups_per_step += k.workgroups;
            }
            None => into.push(KernelShare {
                phase,
                kernel: k.kernel,
                seconds_per_step: secs,
                dispatches_per_step: k.passes as f64,
                bytes_per_step: k.bytes,
                flops_per_step: k.flops,
                workgroups_per_step: k.workgroups,
            }),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelRun {
    pub model: &'static str,
    /// `cpu` or `gpu`.
    pub device: &'static str,
    pub backend: String,
    pub layers: usize,
    /// Layer stacking (`dense`, `residual`, `plain`).
    pub connection: &'static str,
    /// Neighbours per song of the item-neighbourhood term (0: none).
    pub neighbours: usize,
    /// Whether the song table's optimizer step was fused (its catalogue gradient formed in
    /// the AdamW pass, never whole; `ModelOps::fused_table`).
    pub fused_table: bool,
    pub parameters: usize,
    /// Wall clock per step (upload + forward + loss + backward + AdamW), steps back to back, one
    /// device sync at the end.
    pub seconds_per_step: f64,
    /// CPU: the median of the timed steps, each timed alone (robust when other processes share
    /// the cores); compared with PyTorch's median step.
    pub median_step_seconds: Option<f64>,
    /// Mean time the host spends preparing and recording one timed step (batch upload through
    /// the step's flush), without waiting for the device (time inside queue submits, where
    /// lavapipe runs the kernels, is left out): on the CPU backend the whole step.
    pub host_seconds_per_step: f64,
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
    /// Ranking (what `eval`, validation and `recommend --all` run): seconds per user to rank
    /// every song and read back the top 10, the timed steps' users ranked together (at most
    /// [`crate::train::RANK_BATCH`], and as many as one binding's score block takes), three
    /// times after a warm-up.
    pub rank_seconds_per_user: f64,
    /// `rank_seconds_per_user` for every user of the epoch (`--users`): all their lists.
    pub rank_all_users_seconds: f64,
    /// Mean training loss of the timed steps (a sanity check: finite, about ln(songs) at first).
    pub mean_loss: f64,
    pub gpu: Option<GpuUse>,
    /// Resident memory of the process after the run.
    pub rss_bytes: Option<u64>,
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

fn model_config<B: ModelOps>(b: &B, o: &TrainBenchOptions, kind: ModelKind) -> ModelConfig {
    let mut cfg = ModelConfig::new(kind, o.songs);
    cfg.hidden = o.hidden;
    cfg.emb = o.emb;
    cfg.layers = o.layers.max(1);
    cfg.max_history = o.history.max(1);
    cfg.tile = o
        .tile
        .unwrap_or_else(|| tile_for(b, o.batch, cfg.emb, o.songs))
        .max(1);
    cfg.dropout = o.dropout;
    cfg.seed = o.seed;
    // The trainer's item-neighbourhood term unless `--neighbours 0` (the step PyTorch's script
    // runs: the recurrent stacks and the catalogue softmax only).
    cfg.neighbours = o.neighbours;
    cfg.song_weights = o.song_weights && o.neighbours > 0;
    cfg.pair_weights = o.pair_weights
        && o.neighbours > 0
        && o.songs.saturating_mul(o.neighbours) <= crate::train::run::PAIR_WEIGHTS_MAX;
    // The stacking `train` gives this model unless asked otherwise (LSTM: plain only).
    cfg.connection = Some(match (kind, o.connection) {
        (ModelKind::Lstm, _) | (_, None) => default_connection(kind, false),
        (_, Some(c)) => c,
    });
    cfg
}

/// Runs `f` between two device syncs; returns its value, the wall time and (with a GPU that has
/// timestamp queries) the summed kernel time, whose per-kernel split goes to `kernels`.
fn phase<B: Backend, T>(
    b: &B,
    gpu: Option<&GpuBackend>,
    kernels: &mut Vec<KernelShare>,
    name: &'static str,
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
        (true, Some(g)) => g.context().timer_report()?.map(|r| {
            add_kernels(kernels, name, r.kernels);
            r.total.as_secs_f64()
        }),
        _ => None,
    };
    Ok((out, wall, kernel))
}

/// One training step with each phase between device syncs: the wall times, and the kernel
/// times when every phase has them.
fn phased_step<B: ModelOps>(
    b: &B,
    gpu: Option<&GpuBackend>,
    model: &mut Model<B>,
    optim: &OptimConfig,
    ex: &[Example],
    prng: &mut StdRng,
    kernels: &mut Vec<KernelShare>,
) -> Result<(Phases, Option<Phases>), Error> {
    let (batch, w_up, k_up) = phase(b, gpu, kernels, "upload", || {
        Ok(upload(b, &model.cfg, None, ex)?)
    })?;
    let ((u, cache), w_f, k_f) = phase(b, gpu, kernels, "forward", || {
        Ok(model.forward(b, &batch, Some(prng))?)
    })?;
    let ((_, du), w_s, k_s) = phase(b, gpu, kernels, "softmax", || {
        let nb = model
            .scorer
            .neighbour_blocks(b, &model.params, &batch.history)?;
        Ok(model
            .scorer
            .loss_backward(b, &mut model.params, &u, &batch.targets, &nb)?)
    })?;
    let ((), w_b, k_b) = phase(b, gpu, kernels, "backward", || {
        Ok(model.backward(b, &batch, &cache, &du)?)
    })?;
    let ((), w_o, k_o) = phase(b, gpu, kernels, "optimizer", || {
        Ok(model.params.apply(b, optim)?)
    })?;
    let wall = Phases {
        upload: w_up,
        forward: w_f,
        softmax: w_s,
        backward: w_b,
        optimizer: w_o,
    };
    let kernel = match (k_up, k_f, k_s, k_b, k_o) {
        (Some(a), Some(f), Some(s), Some(bk), Some(op)) => Some(Phases {
            upload: a,
            forward: f,
            softmax: s,
            backward: bk,
            optimizer: op,
        }),
        _ => None,
    };
    Ok((wall, kernel))
}

/// One model on one backend. `gpu` is `Some` when `b` is that GPU (for its counters);
/// `neighbours` are the fitted lists of the item-neighbourhood term (when it is on).
pub(super) fn run_model<B: ModelOps>(
    b: &B,
    gpu: Option<&GpuBackend>,
    o: &TrainBenchOptions,
    kind: ModelKind,
    data: (&[Example], Option<&[Example]>),
    neighbours: &NeighbourLists,
) -> Result<ModelRun, Error> {
    let (pool, epoch) = data;
    let cfg = model_config(b, o, kind);
    let optim = OptimConfig::default();
    let mut model = Model::new(b, cfg.clone(), None)?;
    if cfg.neighbours > 0 {
        model.scorer.set_neighbours(neighbours.clone());
    }
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
    // The host's share of each step: its own time up to its flush, before any sync, less the
    // time inside queue submits (where a software adapter such as lavapipe runs the kernels).
    let mut host = 0.0;
    let submitted = || gpu.map_or(0, |g| g.context().stats().submit_nanos);
    for _ in 0..steps {
        let n0 = submitted();
        let ts = Instant::now();
        step(&mut model, &mut loss_acc, chunk())?;
        let t = ts.elapsed().as_secs_f64();
        times.push(t);
        host += (t - (submitted() - n0) as f64 * 1e-9).max(0.0);
    }
    let host_seconds_per_step = host / steps as f64;
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
    let mut kernels = Vec::new();
    for _ in 0..phase_steps {
        let (w, k) = phased_step(b, gpu, &mut model, &optim, chunk(), &mut prng, &mut kernels)?;
        wall.add(&w);
        match k {
            Some(k) => kern.add(&k),
            None => have_kernel = false,
        }
    }
    wall.scale(1.0 / phase_steps as f64);
    kern.scale(1.0 / phase_steps as f64);
    for k in &mut kernels {
        let n = phase_steps as f64;
        k.seconds_per_step /= n;
        k.dispatches_per_step /= n;
        k.bytes_per_step /= n;
        k.flops_per_step /= n;
        k.workgroups_per_step /= n;
    }
    kernels.sort_by(|a, b| b.seconds_per_step.total_cmp(&a.seconds_per_step));
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
            let finite = |r: LaterRead| -> Result<(), Error> {
                match crate::train::loss_of(r)? {
                    v if v.is_finite() => Ok(()),
                    v => Err(Error::Other(format!(
                        "bench train: {} loss became {v} in the epoch run",
                        kind.name()
                    ))),
                }
            };
            let mut in_flight = None;
            for (i, ex) in all.chunks(bs).enumerate() {
                step(&mut model, &mut acc, ex)?;
                // As the trainer: the loss read back every 8 steps (progress, NaN check), each
                // read waited for while the next 8 steps run.
                if (i + 1) % 8 == 0 {
                    let read = b.read_later(&[&acc])?;
                    acc = b.zeros(&[1])?;
                    if let Some(r) = in_flight.replace(read) {
                        finite(r)?;
                    }
                }
            }
            if let Some(r) = in_flight {
                finite(r)?;
            }
            b.sync()?;
            Some(t0.elapsed().as_secs_f64())
        }
        None => None,
    };
    // What training allocated, before the ranking's score block joins the pool.
    let allocated = gpu.map(|g| g.context().stats().bytes_allocated);
    // Ranking: the timed users in one batch, the top 10 read back, three times after a warm-up.
    // (As many as a score block a binding takes: lavapipe's are 128 MiB.)
    let ranked = &pool[..pool.len().min(crate::train::ranking_batch(
        b,
        &model,
        crate::train::RANK_BATCH,
    ))];
    let rank = || -> Result<(), Error> {
        let db = upload(b, &model.cfg, None, ranked)?;
        model.recommend(b, &db, 10)?;
        Ok(())
    };
    rank()?;
    const RANKINGS: usize = 3;
    let t_rank = Instant::now();
    for _ in 0..RANKINGS {
        rank()?;
    }
    let rank_seconds_per_user =
        t_rank.elapsed().as_secs_f64() / (RANKINGS * ranked.len().max(1)) as f64;

    let gpu_use = match (gpu, s0, s1) {
        (Some(g), Some(a), Some(z)) => {
            let per = |x: u64, y: u64| (y - x) as f64 / steps as f64;
            Some(GpuUse {
                bytes_allocated: allocated.unwrap_or_default(),
                buffers_created_per_step: per(a.buffers_created, z.buffers_created),
                dispatches_per_step: per(a.dispatches, z.dispatches),
                submits_per_step: per(a.submits, z.submits),
                readbacks_per_step: per(a.readbacks, z.readbacks),
                upload_bytes_per_step: per(a.upload_bytes, z.upload_bytes),
                param_bytes_per_step: per(a.param_bytes, z.param_bytes),
                timestamps: phases_kernel.is_some(),
                shader_checks: g.context().shader_checks().name(),
                kernels,
                matmul_tuned: g.matmul_tuned(),
            })
        }
        _ => None,
    };
    Ok(ModelRun {
        model: kind.name(),
        device: if gpu.is_some() { "gpu" } else { "cpu" },
        backend: b.describe(),
        layers: cfg.layers,
        connection: cfg.connection().name(),
        neighbours: cfg.neighbours,
        fused_table: b.fused_table(),
        parameters: model.params.count(),
        seconds_per_step,
        median_step_seconds,
        host_seconds_per_step,
        users_per_second: bs as f64 / seconds_per_step.max(1e-12),
        phases: wall,
        phases_kernel,
        softmax_share,
        steps_per_epoch,
        projected_epoch_seconds: steps_per_epoch as f64 * seconds_per_step,
        epoch_seconds,
        rank_seconds_per_user,
        rank_all_users_seconds: rank_seconds_per_user * o.users as f64,
        mean_loss,
        gpu: gpu_use,
        rss_bytes: rss().0,
    })
}
