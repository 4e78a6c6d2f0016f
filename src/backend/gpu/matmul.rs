//! Host side of `shaders/matmul.wgsl`, and the tuner that picks its kernel per class of
//! products on the device at hand.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use super::context::{GpuBuffer, TimedDispatch, Work};
use super::pipeline::Kernel;
use super::shader::Shader;
use super::{raw, GpuBackend, GpuTensor};
use crate::backend::check::MatmulDims;
use crate::backend::{Backend, BinaryOp, DType, OpResult};
use crate::error::{GpuError, OpError};

crate::kernel_params! {
    /// Parameters of `matmul.wgsl`.
    struct Params {
        m: u32,
        n: u32,
        k: u32,
        batch0: u32,
        stride_a: u32,
        stride_b: u32,
        alpha: f32,
        beta: f32,
        k_split: u32,
        has_bias: u32,
    }
}

pub static MATMUL: Shader = crate::wgsl_shader!(
    "matmul",
    Params,
    bindings: ["a", "b", "c", "bias"],
    overrides: ["TRANS_A", "TRANS_B"],
);

/// The kernels of `matmul.wgsl` a product can run on. A forced kernel runs split-K products'
/// partials too (a small C over a long K; their sum always runs on `matmul32`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulKernel {
    /// The backend's choice. With tuning on ([`GpuBackend::with_matmul_tuning`]): the kernel
    /// measured fastest on this device for the product's class ([`Tuner`]). Without: `matmul32w`
    /// for C of at most 32 rows, `matmul128` for products with at least `BIG_MIN_TILES` of its
    /// tiles, `matmul` between.
    #[default]
    Auto,
    /// `matmul16`: 16 × 16 tiles, one output per invocation, K in slices of 64 (a small C over a
    /// long K: more workgroups, fewer waits on loads). Only the tuner or a caller picks it.
    Tile16,
    /// `matmul32`: 32 × 64 tiles, 2 × 4 outputs per invocation (a candidate of the tuner; it
    /// sums split-K partials).
    Tile32,
    /// `matmul32w`: 32 × 128 tiles, 8 × 4 outputs per invocation: three vec4 reads of
    /// workgroup memory per 32 FMAs, where `matmul32` makes six scalar reads per 8 (`Auto`: C
    /// of at most 32 rows).
    Tile32Wide,
    /// `matmul`: 64 × 64 tiles, 4 × 4 outputs per invocation.
    Tile64,
    /// `matmul128`: 128 × 128 tiles, 8 × 8 outputs per invocation.
    Tile128,
    /// `matmul128p`: `matmul128` staging the next K slice in registers, its workgroup tiles'
    /// slots XOR-swizzled (fewer bank conflicts where the staging stores run along K).
    Tile128Prefetch,
}

impl MatmulKernel {
    /// Every kernel (all but `Auto`), for `bench ops` and the tests to force one at a time.
    pub const FORCED: [MatmulKernel; 6] = [
        MatmulKernel::Tile16,
        MatmulKernel::Tile32,
        MatmulKernel::Tile32Wide,
        MatmulKernel::Tile64,
        MatmulKernel::Tile128,
        MatmulKernel::Tile128Prefetch,
    ];

    /// The entry point's name in `matmul.wgsl` (`Auto`: the one large products take).
    pub fn entry(self) -> &'static str {
        match self {
            MatmulKernel::Tile16 => "matmul16",
            MatmulKernel::Tile32 => "matmul32",
            MatmulKernel::Tile32Wide => "matmul32w",
            MatmulKernel::Tile64 => "matmul",
            MatmulKernel::Auto | MatmulKernel::Tile128 => "matmul128",
            MatmulKernel::Tile128Prefetch => "matmul128p",
        }
    }

    /// Rows and columns of C per workgroup.
    fn tile(self) -> (usize, usize) {
        match self {
            MatmulKernel::Tile16 => (16, 16),
            MatmulKernel::Tile32 => (SMALL_TILE_M, TILE),
            MatmulKernel::Tile32Wide => (SMALL_TILE_M, 2 * TILE),
            MatmulKernel::Tile64 => (TILE, TILE),
            _ => (BIG_TILE, BIG_TILE),
        }
    }

    fn kernel(self, trans_a: bool, trans_b: bool) -> Kernel {
        Kernel::new(&MATMUL, self.entry())
            .with("TRANS_A", trans_a as u32)
            .with("TRANS_B", trans_b as u32)
    }
}

const TILE: usize = 64;
/// Rows of `matmul32`'s and `matmul32w`'s tiles: products with at most this many rows take
/// `matmul32w`.
const SMALL_TILE_M: usize = 32;
/// The tile of `matmul128` (8 × 8 outputs per invocation).
const BIG_TILE: usize = 128;
/// `matmul128` runs products with at least this many of its tiles (over the batch): below
/// that, the 64 × 64 kernel's four times as many workgroups keep more of a GPU busy.
const BIG_MIN_TILES: usize = 64;
/// Split-K: used when C has at most this many 64 × 64 tiles and K is at least `SPLIT_MIN_K`;
/// each workgroup then covers `SPLIT_K` of K.
const SPLIT_MAX_TILES: usize = 4;
const SPLIT_MIN_K: usize = 2048;
const SPLIT_K: usize = 512;

/// One product to record: `c = alpha · op(a)·op(b) + beta · c (+ bias on every row)`,
/// geometry and transposes in `d`.
#[derive(Clone, Copy)]
struct Gemm<'a> {
    d: &'a MatmulDims,
    a: &'a GpuTensor,
    b: &'a GpuTensor,
    c: &'a GpuTensor,
    alpha: f32,
    beta: f32,
    bias: Option<&'a GpuTensor>,
}

/// Whether a product runs split-K: a small C (few 64 × 64 tiles, one batch entry), a long K.
fn split_k(d: &MatmulDims) -> bool {
    small_c(d) && d.k >= SPLIT_MIN_K
}

/// A C that split-K may take: one batch entry, at most `SPLIT_MAX_TILES` 64 × 64 tiles.
fn small_c(d: &MatmulDims) -> bool {
    d.batch == 1 && d.n.div_ceil(TILE) * d.m.div_ceil(TILE) <= SPLIT_MAX_TILES
}

/// The kernel of products too small for the 128 × 128 one, and of split-K products' partials:
/// a forced kernel, else by C's rows.
fn small_kernel(g: &GpuBackend, d: &MatmulDims) -> MatmulKernel {
    match g.matmul {
        MatmulKernel::Auto if d.m <= SMALL_TILE_M => MatmulKernel::Tile32Wide,
        MatmulKernel::Auto => MatmulKernel::Tile64,
        forced => forced,
    }
}

fn record(g: &GpuBackend, gemm: &Gemm) -> OpResult<()> {
    let Gemm {
        d, a, b, c, bias, ..
    } = *gemm;
    // k = 0 needs no special case: the K loop is empty and C = beta * C.
    if d.m == 0 || d.n == 0 || d.batch == 0 {
        return Ok(());
    }
    let ctx = &g.ctx;
    let max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    let small = small_kernel(g, d);
    if split_k(d) {
        // The partials' kernel may be tuned: every kernel sums a slice in the same order, and
        // the slices and their sum stay the rule's, so the bits do not change.
        let partial = match g.matmul {
            MatmulKernel::Auto if g.tune => tuned(g, gemm, small)?,
            _ => small,
        };
        return record_split_k(g, partial, gemm);
    }
    let (bx, by) = (d.n.div_ceil(BIG_TILE), d.m.div_ceil(BIG_TILE));
    let heuristic = if d.m >= BIG_TILE && d.n >= BIG_TILE && bx * by * d.batch >= BIG_MIN_TILES {
        MatmulKernel::Tile128
    } else {
        small
    };
    let choice = match g.matmul {
        MatmulKernel::Auto if g.tune => tuned(g, gemm, heuristic)?,
        MatmulKernel::Auto => heuristic,
        forced => forced,
    };
    let kernel = choice.kernel(d.trans_a, d.trans_b);
    let [gx, gy] = grid(choice, d, max)?;
    // Batches beyond the z limit go in several dispatches.
    let mut z0 = 0;
    while z0 < d.batch {
        let nz = (d.batch - z0).min(max);
        let p = params(gemm, z0);
        ctx.dispatch_work(
            &kernel,
            &p,
            &[
                ("a", raw(a)),
                ("b", raw(b)),
                ("c", raw(c)),
                ("bias", raw(bias.unwrap_or(a))),
            ],
            [gx as u32, gy as u32, nz as u32],
            Work::flops(flops(d.m, d.n, d.k, nz)),
        )?;
        z0 += nz;
    }
    Ok(())
}

/// Multiply-adds of `batch` products of `m × k` by `k × n`, two operations each (what the
/// timer sets against the device's best matmul rate).
fn flops(m: usize, n: usize, k: usize, batch: usize) -> f64 {
    2.0 * m as f64 * n as f64 * k as f64 * batch as f64
}

/// The parameters of a (not split-K) product's dispatch starting at batch entry `z0`.
fn params(gemm: &Gemm, z0: usize) -> Params {
    let d = gemm.d;
    Params {
        m: d.m as u32,
        n: d.n as u32,
        k: d.k as u32,
        batch0: z0 as u32,
        stride_a: d.stride_a as u32,
        stride_b: d.stride_b as u32,
        alpha: gemm.alpha,
        beta: gemm.beta,
        k_split: 0,
        has_bias: u32::from(gemm.bias.is_some()),
    }
}

/// Workgroups along x (C's columns) and y (rows) of `kernel` on a product.
fn grid(kernel: MatmulKernel, d: &MatmulDims, max: usize) -> OpResult<[usize; 2]> {
    let (tm, tn) = kernel.tile();
    let (gx, gy) = (d.n.div_ceil(tn), d.m.div_ceil(tm));
    if gx > max || gy > max {
        return Err(OpError::Gpu(GpuError::Limit {
            op: "matmul",
            what: "workgroups per dimension",
            needed: gx.max(gy) as u64,
            limit: max as u64,
        }));
    }
    Ok([gx, gy])
}

/// Timed runs per kernel when the tuner meets a class of products (the fastest counts).
const TUNE_REPEATS: u32 = 3;

/// The slices of K that the tuner times split-K products with, for information
/// ([`TunedProduct::split_k`]), and their labels: a short slice (more workgroups) and the
/// rule's `SPLIT_K`.
pub const SPLIT_TRIALS: [(usize, &str); 2] = [(128, "split-K 128"), (SPLIT_K, "split-K 512")];
const _: () = assert!(SPLIT_K == 512, "SPLIT_TRIALS' label names SPLIT_K");

/// A class of products that the tuner times once: the transposes, each size rounded up to a
/// power of two, at least 32 (so a trainer's batches of up to 32 rows, the last one of an epoch
/// included, are one class), and whether the rule splits it over K (then the partials' kernel
/// is what is chosen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TuneKey {
    split: bool,
    trans_a: bool,
    trans_b: bool,
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
}

impl TuneKey {
    fn of(d: &MatmulDims) -> Self {
        let class = |x: usize| x.max(32).next_power_of_two().trailing_zeros();
        TuneKey {
            split: split_k(d),
            trans_a: d.trans_a,
            trans_b: d.trans_b,
            m: class(d.m),
            n: class(d.n),
            k: class(d.k),
            batch: class(d.batch),
        }
    }
}

/// One kernel's time on the product the tuner timed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct KernelTiming {
    /// The entry point (`matmul16`, `matmul32`, `matmul32w`, `matmul`, `matmul128`, `matmul128p`).
    pub kernel: &'static str,
    /// Its fastest timed run, in microseconds.
    pub micros: f64,
}

/// What the tuner decided for one class of products, and on what evidence.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TunedProduct {
    /// The product timed: the first of its class to run (C is `batch` × m × n, over K = k).
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    /// The kernel every product of the class now runs on: the fastest timed, or the
    /// heuristic's choice when the device has no timestamp queries (`timings` empty).
    pub kernel: &'static str,
    /// The slice of K when the rule splits the class's products over K: `kernel` and
    /// `timings` are then those of the partial products (the slices and their sum are the
    /// rule's whatever the kernel). `None`: not split.
    pub split: Option<usize>,
    /// Every kernel timed, in [`MatmulKernel::FORCED`] order.
    pub timings: Vec<KernelTiming>,
    /// For a small C (one batch entry, at most four 64 × 64 tiles, no bias) over a K the rule
    /// does not split (below `SPLIT_MIN_K`), the same product split over K in slices of each of
    /// `SPLIT_TRIALS` (partial products and their sum): timed for information, never chosen
    /// (it changes the order of the sum). Faster than `kernel` on a GPU, it says the rule
    /// should split such products (the trainer's ∂W products, K = batch × history).
    pub split_k: Vec<KernelTiming>,
}

/// The tuner's decisions, shared by every clone of a [`GpuBackend`] (they belong to the
/// device): each class of products is timed on every kernel the first time one runs, and runs
/// on the fastest from then on. Every kernel sums K in the same order with fused multiply-adds,
/// so the choice changes how fast a product runs, never its result (`tests/gpu_runtime.rs`).
/// That is why split-K is no candidate (its products keep the rule): splitting changes the order
/// of the sum, and a choice that changed the bits could flip with timing noise from one run to
/// the next, and a training run with it.
#[derive(Debug, Default)]
pub struct Tuner {
    decided: Mutex<BTreeMap<TuneKey, (MatmulKernel, TunedProduct)>>,
}

impl Tuner {
    fn get(&self, key: &TuneKey) -> Option<MatmulKernel> {
        let map = self.decided.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).map(|(k, _)| *k)
    }

    /// Every decision so far, by class.
    pub fn decisions(&self) -> Vec<TunedProduct> {
        let map = self.decided.lock().unwrap_or_else(|p| p.into_inner());
        map.values().map(|(_, t)| t.clone()).collect()
    }
}

/// The tuner's kernel for this product's class, timing every kernel on it first when the
/// class is new. The timed runs write a scratch C (from the pool), never the product's own.
fn tuned(g: &GpuBackend, gemm: &Gemm, heuristic: MatmulKernel) -> OpResult<MatmulKernel> {
    let d = gemm.d;
    let key = TuneKey::of(d);
    if let Some(k) = g.tuner.get(&key) {
        return Ok(k);
    }
    let max = g.ctx.limits.max_compute_workgroups_per_dimension as usize;
    let split = key.split.then_some(SPLIT_K);
    // A split product's candidates write its partials (`[splits, m·n]`), others C.
    let scratch_len = match split {
        Some(chunk) => d.k.div_ceil(chunk) * d.m * d.n,
        None => gemm.c.len(),
    };
    let scratch = g
        .ctx
        .alloc(scratch_len.max(1) as u64 * 4, "matmul tuning scratch")?;
    let bias = raw(gemm.bias.unwrap_or(gemm.a));
    let mut kernels = Vec::new();
    let mut runs = Vec::new();
    for k in MatmulKernel::FORCED {
        // A kernel whose grid exceeds the device's limits is not a candidate.
        let Ok([gx, gy]) = grid(k, d, max) else {
            continue;
        };
        kernels.push(k);
        runs.push(match split {
            // The partial products alone (their sum is the same whatever the kernel).
            Some(chunk) => {
                let [(partial, _), _] =
                    split_k_dispatches(k, gemm, chunk, &scratch, &scratch, &scratch);
                partial
            }
            None => TimedDispatch {
                kernel: k.kernel(d.trans_a, d.trans_b),
                params: params(gemm, 0),
                bindings: vec![
                    ("a", raw(gemm.a)),
                    ("b", raw(gemm.b)),
                    ("c", &scratch),
                    ("bias", bias),
                ],
                groups: [gx as u32, gy as u32, d.batch.min(max) as u32],
            },
        });
    }
    // Split-K on an unsplit product, for information: partials and ones of its own (the ones
    // not `kept`, whose few slots belong to the step), its sum written to the scratch C.
    let trials: Vec<(usize, &'static str)> = SPLIT_TRIALS
        .into_iter()
        .filter(|&(chunk, _)| {
            split.is_none() && small_c(d) && gemm.bias.is_none() && d.k >= 2 * chunk
        })
        .collect();
    let mut buffers = Vec::new();
    for &(chunk, _) in &trials {
        let splits = d.k.div_ceil(chunk);
        let partials = g.empty(&[splits, d.m * d.n], DType::F32, "matmul tuning partials")?;
        let ones = g.upload_f32(&vec![1.0; splits], &[1, splits])?;
        buffers.push((chunk, partials, ones));
    }
    let small = small_kernel(g, d);
    for (chunk, partials, ones) in &buffers {
        let [p, s] = split_k_dispatches(small, gemm, *chunk, raw(partials), raw(ones), &scratch);
        runs.push(p.0);
        runs.push(s.0);
    }
    let times = g.ctx.time_each(&runs, TUNE_REPEATS)?;
    let (kernel, timings, split_k) = match times {
        // A driver that writes no real timestamps (every run zero) leaves the rule to decide.
        Some(times) if times.iter().any(|t| !t.is_zero()) => {
            let micros = |t: &std::time::Duration| t.as_secs_f64() * 1e6;
            let timings: Vec<KernelTiming> = kernels
                .iter()
                .zip(&times)
                .map(|(k, t)| KernelTiming {
                    kernel: k.entry(),
                    micros: micros(t),
                })
                .collect();
            // The first of equal times: FORCED lists smaller tiles first; split-K runs (after
            // the kernels) are no candidates.
            let best = (0..kernels.len())
                .min_by(|&i, &j| times[i].cmp(&times[j]).then(i.cmp(&j)))
                .map_or(heuristic, |i| kernels[i]);
            let split_k = trials
                .iter()
                .zip(times[kernels.len()..].chunks_exact(2))
                .map(|(&(_, label), t)| KernelTiming {
                    kernel: label,
                    micros: micros(&t[0]) + micros(&t[1]),
                })
                .collect();
            (best, timings, split_k)
        }
        _ => (heuristic, Vec::new(), Vec::new()),
    };
    let product = TunedProduct {
        m: d.m,
        n: d.n,
        k: d.k,
        batch: d.batch,
        trans_a: d.trans_a,
        trans_b: d.trans_b,
        kernel: kernel.entry(),
        split,
        timings,
        split_k,
    };
    let mut map = g.tuner.decided.lock().unwrap_or_else(|p| p.into_inner());
    Ok(map.entry(key).or_insert((kernel, product)).0)
}

/// A split-K product: partial products over slices of K (one workgroup row each), then their
/// sum (see [`split_k_dispatches`]).
fn record_split_k(g: &GpuBackend, small: MatmulKernel, gemm: &Gemm) -> OpResult<()> {
    let d = gemm.d;
    debug_assert!(
        gemm.bias.is_none(),
        "split-K products take their bias afterwards"
    );
    let splits = d.k.div_ceil(SPLIT_K);
    let partials = g.empty(&[splits, d.m * d.n], DType::F32, "matmul split-k partials")?;
    // The summing pass's row of ones, kept between calls (the same every step). The key's
    // first word cannot start an optimizer table (those start with a multiple of 256).
    let ones = g.kept(&[u32::MAX, splits as u32], || {
        Ok(vec![g.upload_f32(&vec![1.0; splits], &[1, splits])?])
    })?;
    let runs = split_k_dispatches(
        small,
        gemm,
        SPLIT_K,
        raw(&partials),
        raw(&ones[0]),
        raw(gemm.c),
    );
    for (t, flops) in runs {
        g.ctx.dispatch_work(
            &t.kernel,
            &t.params,
            &t.bindings,
            t.groups,
            Work::flops(flops),
        )?;
    }
    Ok(())
}

/// The two dispatches of a split-K product, with their operations: `small`'s partial products
/// of `chunk`-long slices of K into `partials` (`[splits, m·n]`), then
/// `c = alpha · (1ᵀ · partials) + beta · c` with the 32-row kernel (m = 1, K = the slices; the
/// 64-row one would run 63 rows of zeros), which sums the slices in a fixed order
/// (deterministic, no atomics). `ones` holds `splits` ones.
fn split_k_dispatches<'t>(
    small: MatmulKernel,
    gemm: &Gemm<'t>,
    chunk: usize,
    partials: &'t GpuBuffer,
    ones: &'t GpuBuffer,
    c: &'t GpuBuffer,
) -> [(TimedDispatch<'t, Params>, f64); 2] {
    let d = gemm.d;
    let splits = d.k.div_ceil(chunk);
    let (tm, tn) = small.tile();
    let mn = d.m * d.n;
    let partial = TimedDispatch {
        kernel: small.kernel(d.trans_a, d.trans_b),
        params: Params {
            m: d.m as u32,
            n: d.n as u32,
            k: d.k as u32,
            batch0: 0,
            stride_a: 0,
            stride_b: 0,
            alpha: 1.0,
            beta: 0.0,
            k_split: chunk as u32,
            has_bias: 0,
        },
        bindings: vec![
            ("a", raw(gemm.a)),
            ("b", raw(gemm.b)),
            ("c", partials),
            ("bias", raw(gemm.a)),
        ],
        groups: [
            d.n.div_ceil(tn) as u32,
            d.m.div_ceil(tm) as u32,
            splits as u32,
        ],
    };
    let sum = TimedDispatch {
        kernel: MatmulKernel::Tile32.kernel(false, false),
        params: Params {
            m: 1,
            n: mn as u32,
            k: splits as u32,
            batch0: 0,
            stride_a: 0,
            stride_b: 0,
            alpha: gemm.alpha,
            beta: gemm.beta,
            k_split: 0,
            has_bias: 0,
        },
        bindings: vec![("a", ones), ("b", partials), ("c", c), ("bias", ones)],
        groups: [mn.div_ceil(MatmulKernel::Tile32.tile().1) as u32, 1, 1],
    };
    [
        (partial, flops(d.m, d.n, d.k, 1)),
        (sum, flops(1, mn, splits, 1)),
    ]
}

pub fn matmul(g: &GpuBackend, a: &GpuTensor, b: &GpuTensor, d: &MatmulDims) -> OpResult<GpuTensor> {
    let c = g.empty(&d.out_shape(), DType::F32, "matmul out")?;
    let gemm = Gemm {
        d,
        a,
        b,
        c: &c,
        alpha: 1.0,
        beta: 0.0,
        bias: None,
    };
    record(g, &gemm)?;
    Ok(c)
}

/// `op(a)·op(b) + bias` on every row, the bias added in the product's store (split-K products,
/// whose summing pass sees C flattened, add it afterwards; rare: small C, long K).
pub fn matmul_bias(
    g: &GpuBackend,
    a: &GpuTensor,
    b: &GpuTensor,
    bias: &GpuTensor,
    d: &MatmulDims,
) -> OpResult<GpuTensor> {
    if split_k(d) {
        return g.binary(BinaryOp::Add, &matmul(g, a, b, d)?, bias);
    }
    let c = g.empty(&d.out_shape(), DType::F32, "matmul out")?;
    let gemm = Gemm {
        d,
        a,
        b,
        c: &c,
        alpha: 1.0,
        beta: 0.0,
        bias: Some(bias),
    };
    record(g, &gemm)?;
    Ok(c)
}

pub fn matmul_into(
    g: &GpuBackend,
    out: &mut GpuTensor,
    a: &GpuTensor,
    b: &GpuTensor,
    d: &MatmulDims,
    alpha: f32,
    beta: f32,
) -> OpResult<()> {
    super::make_unique(&g.ctx, out)?;
    let gemm = Gemm {
        d,
        a,
        b,
        c: out,
        alpha,
        beta,
        bias: None,
    };
    record(g, &gemm)
}
