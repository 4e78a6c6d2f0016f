//! `ainrnn bench ops`: matmul, softmax and reductions at a few sizes, GPU vs CPU in one run.

use serde::Serialize;

use super::{measure, Measured};
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::{GpuBackend, MatmulKernel, TunedProduct};
use crate::backend::{BTensor, Backend, OpResult, ReduceOp};

/// One benchmarked operation and size.
#[derive(Clone, Copy, Debug)]
pub enum Case {
    Matmul {
        n: usize,
    },
    Softmax {
        rows: usize,
        cols: usize,
    },
    LogSoftmaxBackward {
        rows: usize,
        cols: usize,
    },
    SumRows {
        rows: usize,
        cols: usize,
    },
    /// `acc += alpha · x` in place over `n` floats: the device's streaming bandwidth when `n`
    /// is large, the cost of a dispatch that does (almost) nothing when it is small. The GPU
    /// report sets the training step's kernels against both.
    Axpy {
        n: usize,
    },
}

impl Case {
    pub fn name(&self) -> &'static str {
        match self {
            Case::Matmul { .. } => "matmul",
            Case::Softmax { .. } => "softmax",
            Case::LogSoftmaxBackward { .. } => "log_softmax_backward",
            Case::SumRows { .. } => "sum_rows",
            Case::Axpy { .. } => "axpy",
        }
    }
    pub fn size(&self) -> String {
        match *self {
            Case::Matmul { n } => format!("{n}x{n}x{n}"),
            Case::Softmax { rows, cols }
            | Case::LogSoftmaxBackward { rows, cols }
            | Case::SumRows { rows, cols } => {
                format!("{rows}x{cols}")
            }
            Case::Axpy { n } => n.to_string(),
        }
    }
    /// `(amount, unit)`: floating-point operations for matmul, minimum bytes moved otherwise.
    pub fn work(&self) -> (f64, &'static str) {
        match *self {
            Case::Matmul { n } => (2.0 * (n as f64).powi(3), "GFLOP/s"),
            // read x, write y
            Case::Softmax { rows, cols } => (8.0 * (rows * cols) as f64, "GB/s"),
            // read y and dy, write dx
            Case::LogSoftmaxBackward { rows, cols } => (12.0 * (rows * cols) as f64, "GB/s"),
            Case::SumRows { rows, cols } => (4.0 * (rows * cols) as f64, "GB/s"),
            // read acc and x, write acc
            Case::Axpy { n } => (12.0 * n as f64, "GB/s"),
        }
    }
}

/// Which table of sizes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// Smoke runs (CI, the test of this command).
    Quick,
    /// The default table.
    Default,
    /// The default table plus the GPU report's sizes: a 4096³ matmul and a 256 × 360,000
    /// softmax (a paper-scale catalogue for a batch of 256).
    Large,
}

/// The cases of one table of sizes.
pub fn cases(sizes: Sizes) -> Vec<Case> {
    let mut c = default_cases(sizes == Sizes::Quick);
    if sizes == Sizes::Large {
        c.push(Case::Matmul { n: 4096 });
        c.push(Case::Softmax {
            rows: 256,
            cols: 360_000,
        });
        // 256 MiB per operand: well past any cache.
        c.push(Case::Axpy { n: 1 << 26 });
    }
    c
}

fn default_cases(quick: bool) -> Vec<Case> {
    if quick {
        vec![
            Case::Matmul { n: 128 },
            Case::Softmax {
                rows: 16,
                cols: 32_768,
            },
            Case::SumRows {
                rows: 256,
                cols: 1024,
            },
            Case::Axpy { n: 256 },
            Case::Axpy { n: 1 << 16 },
        ]
    } else {
        vec![
            Case::Matmul { n: 256 },
            Case::Matmul { n: 512 },
            Case::Matmul { n: 1024 },
            Case::Softmax {
                rows: 256,
                cols: 32_768,
            },
            Case::Softmax {
                rows: 64,
                cols: 360_000,
            },
            Case::LogSoftmaxBackward {
                rows: 64,
                cols: 360_000,
            },
            Case::SumRows {
                rows: 4096,
                cols: 4096,
            },
            Case::SumRows {
                rows: 16,
                cols: 1_000_000,
            },
            Case::Axpy { n: 256 },
            Case::Axpy { n: 1 << 24 },
        ]
    }
}

fn data(n: usize, seed: u32) -> Vec<f32> {
    // A cheap deterministic pattern in [-1, 1): the values do not affect the speed.
    (0..n)
        .map(|i| {
            (((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 24) as f32)
                * 2.0
                - 1.0
        })
        .collect()
}

fn run_case<B: Backend>(
    b: &B,
    gpu: Option<&GpuBackend>,
    case: Case,
    min_seconds: f64,
) -> OpResult<Measured> {
    match case {
        Case::Matmul { n } => {
            let x = b.upload_f32(&data(n * n, 1), &[n, n])?;
            let y = b.upload_f32(&data(n * n, 2), &[n, n])?;
            measure(b, gpu, min_seconds, || {
                b.matmul(&x, &y, false, false).map(drop)
            })
        }
        Case::Softmax { rows, cols } => {
            let x: BTensor<B> = b.upload_f32(&data(rows * cols, 3), &[rows, cols])?;
            measure(b, gpu, min_seconds, || b.softmax_rows(&x, false).map(drop))
        }
        Case::LogSoftmaxBackward { rows, cols } => {
            let x = b.upload_f32(&data(rows * cols, 4), &[rows, cols])?;
            let y = b.softmax_rows(&x, true)?;
            let dy = b.upload_f32(&data(rows * cols, 5), &[rows, cols])?;
            measure(b, gpu, min_seconds, || {
                b.softmax_rows_backward(&y, &dy, true).map(drop)
            })
        }
        Case::SumRows { rows, cols } => {
            let x = b.upload_f32(&data(rows * cols, 6), &[rows, cols])?;
            measure(b, gpu, min_seconds, || {
                b.reduce_rows(ReduceOp::Sum, &x).map(drop)
            })
        }
        Case::Axpy { n } => {
            let mut acc = b.upload_f32(&data(n, 7), &[n])?;
            let x = b.upload_f32(&data(n, 8), &[n])?;
            // A small alpha keeps `acc` finite however many repetitions run.
            measure(b, gpu, min_seconds, || b.axpy(&mut acc, &x, 1e-6))
        }
    }
}

/// Whether a case also gets one GPU row per matmul kernel ([`MatmulKernel::FORCED`]): the large
/// products the report looks at, and the quick table's one (so the rows cannot rot).
fn per_kernel(case: Case, sizes: Sizes) -> bool {
    matches!(case, Case::Matmul { n } if n >= 1024 || sizes == Sizes::Quick)
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub op: &'static str,
    pub size: String,
    /// The GPU kernel the row forced (`matmul16`, `matmul32`, `matmul32w`, `matmul`, `matmul128`, `matmul128p`); `None`: the
    /// backend's own choice, what the model's products get.
    pub kernel: Option<&'static str>,
    pub unit: &'static str,
    pub cpu_seconds: f64,
    pub cpu_rate: f64,
    pub gpu_seconds: Option<f64>,
    pub gpu_rate: Option<f64>,
    pub gpu_timing: Option<super::Timing>,
    pub gpu_wall_seconds: Option<f64>,
    /// CPU time / GPU time, both measured in this run.
    pub gpu_speedup: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub cpu: String,
    pub gpu: Option<String>,
    pub gpu_note: Option<String>,
    /// The runtime checks the GPU's kernels were compiled with (`all`, `bounds`, `none`;
    /// `AINRNN_SHADER_CHECKS`).
    pub gpu_shader_checks: Option<&'static str>,
    pub rows: Vec<Row>,
    /// The matmul tuner's decisions for the products above (rows without a forced kernel run
    /// on them); empty when it is off.
    pub matmul_tuned: Vec<TunedProduct>,
}

/// Runs every case on the CPU and, when an adapter opens (software ones included), on the GPU.
/// `progress` receives one line per finished case.
pub fn run(
    sizes: Sizes,
    min_seconds: f64,
    gpu: Option<GpuBackend>,
    mut progress: impl FnMut(&Row),
) -> OpResult<Report> {
    let cpu = CpuBackend::new();
    let mut rows = Vec::new();
    for case in cases(sizes) {
        let (work, unit) = case.work();
        let c = run_case(&cpu, None, case, min_seconds)?;
        let row = |kernel, g: Option<Measured>| Row {
            op: case.name(),
            size: case.size(),
            kernel,
            unit,
            cpu_seconds: c.seconds,
            cpu_rate: work / c.seconds / 1e9,
            gpu_seconds: g.map(|g| g.seconds),
            gpu_rate: g.map(|g| work / g.seconds / 1e9),
            gpu_timing: g.map(|g| g.timing),
            gpu_wall_seconds: g.map(|g| g.wall_seconds),
            gpu_speedup: g.map(|g| c.seconds / g.seconds),
        };
        let g = match &gpu {
            Some(g) => Some(run_case(g, Some(g), case, min_seconds)?),
            None => None,
        };
        let r = row(None, g);
        progress(&r);
        rows.push(r);
        // The same product on each kernel, against the same CPU time.
        if let Some(g) = gpu.as_ref().filter(|_| per_kernel(case, sizes)) {
            for k in MatmulKernel::FORCED {
                let gk = g.with_matmul_kernel(k);
                let m = run_case(&gk, Some(&gk), case, min_seconds)?;
                let r = row(Some(k.entry()), Some(m));
                progress(&r);
                rows.push(r);
            }
        }
    }
    Ok(Report {
        cpu: cpu.describe(),
        gpu: gpu.as_ref().map(|g| g.describe()),
        gpu_note: None,
        gpu_shader_checks: gpu.as_ref().map(|g| g.context().shader_checks().name()),
        rows,
        matmul_tuned: gpu.as_ref().map(|g| g.matmul_tuned()).unwrap_or_default(),
    })
}

/// The table printed by `ainrnn bench ops`.
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "CPU: {}", r.cpu);
    let _ = writeln!(s, "GPU: {}", r.gpu.as_deref().unwrap_or("none"));
    if let Some(n) = &r.gpu_note {
        let _ = writeln!(s, "     {n}");
    }
    let _ = writeln!(
        s,
        "| op | size | CPU ms | CPU rate | GPU ms | GPU rate | GPU timing | GPU/CPU speedup |\n|---|---|---:|---:|---:|---:|---|---:|"
    );
    for row in &r.rows {
        let gpu_ms = row
            .gpu_seconds
            .map(|v| format!("{:.3}", v * 1e3))
            .unwrap_or_else(|| "-".into());
        let gpu_rate = row
            .gpu_rate
            .map(|v| format!("{v:.2} {}", row.unit))
            .unwrap_or_else(|| "-".into());
        let timing = match row.gpu_timing {
            Some(super::Timing::GpuTimestamps) => "timestamps",
            Some(_) => "wall after sync",
            None => "-",
        };
        let speed = row
            .gpu_speedup
            .map(|v| format!("{v:.2}x"))
            .unwrap_or_else(|| "-".into());
        let op = match row.kernel {
            Some(k) => format!("{} (kernel {k})", row.op),
            None => row.op.to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.2} {} | {} | {} | {} | {} |",
            op,
            row.size,
            row.cpu_seconds * 1e3,
            row.cpu_rate,
            row.unit,
            gpu_ms,
            gpu_rate,
            timing,
            speed
        );
    }
    if let Ok(serde_json::Value::Array(rows)) = serde_json::to_value(&r.rows) {
        let c = super::limits::Ceilings::from_ops_rows(&rows);
        let show =
            |v: Option<f64>, unit: &str| v.map_or("—".to_string(), |x| format!("{x:.1} {unit}"));
        if c != super::limits::Ceilings::default() {
            let _ = writeln!(
                s,
                "GPU ceilings (timestamps; the GPU report sets each kernel of a step against them): \
                 bandwidth {} (axpy), compute {} (best matmul), dispatch floor {} (axpy of {} floats or fewer)",
                show(c.bandwidth_gb_s, "GB/s"),
                show(c.matmul_gflop_s, "GFLOP/s"),
                show(c.floor_us, "µs"),
                super::limits::AXPY_FLOOR_MAX
            );
        }
    }
    if !r.matmul_tuned.is_empty() {
        let _ = writeln!(
            s,
            "Matmul tuner (kernel chosen per class of products, µs of each):"
        );
        for t in &r.matmul_tuned {
            let times: Vec<String> = t
                .timings
                .iter()
                .map(|k| format!("{} {:.1}", k.kernel, k.micros))
                .collect();
            let split: Vec<String> = t
                .split_k
                .iter()
                .map(|k| format!("{} {:.1}", k.kernel, k.micros))
                .collect();
            let _ = writeln!(
                s,
                "  {} × {} × {}, K {}{}{}{}: {} ({}){}",
                t.batch,
                t.m,
                t.n,
                t.k,
                t.split
                    .map(|c| format!(", split over K by {c} (the partials)"))
                    .unwrap_or_default(),
                if t.trans_a { ", Aᵀ" } else { "" },
                if t.trans_b { ", Bᵀ" } else { "" },
                t.kernel,
                times.join(", "),
                if split.is_empty() {
                    String::new()
                } else {
                    format!("; not chosen: {}", split.join(", "))
                }
            );
        }
    }
    s
}
