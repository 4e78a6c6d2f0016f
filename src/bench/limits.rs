//! What limits a GPU kernel, read from timestamp queries: each kernel of the training step set
//! against ceilings the same GPU report measured on the same device (`bench ops`), so the
//! verdict needs no datasheet and holds for any card.
//!
//! - **bandwidth**: the rate of a large in-place `axpy` (every byte read or written once, well
//!   past any cache): what a streaming kernel reaches on this device;
//! - **compute**: the best matmul rate of `bench ops` (the 4096³ product in the full report);
//! - **dispatch floor**: the kernel time of an `axpy` of a few hundred floats, one workgroup: what
//!   a dispatch costs the device when it does (almost) nothing.

use serde_json::Value;

/// `bench ops`' `axpy` rows of at most this many floats are the dispatch-floor probe, not a
/// bandwidth figure.
pub const AXPY_FLOOR_MAX: usize = 4096;

/// A kernel at or above this share of a ceiling is bound by it.
pub const BOUND_SHARE: f64 = 0.5;
/// A kernel taking at most this many times the dispatch floor per dispatch is launch-bound.
pub const LAUNCH_FACTOR: f64 = 3.0;
/// Fewer workgroups per dispatch than this cannot fill a data-centre GPU (an H100 has 132
/// SMs, each holding several 256-invocation workgroups at once).
pub const FEW_WORKGROUPS: f64 = 256.0;

/// This device's ceilings, from the GPU report's `bench ops` rows (`None`: not measured, e.g.
/// the part failed or the adapter has no timestamps).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ceilings {
    pub bandwidth_gb_s: Option<f64>,
    pub matmul_gflop_s: Option<f64>,
    pub floor_us: Option<f64>,
}

impl Ceilings {
    /// From `bench ops --json`'s rows: only timestamped GPU times count (a wall clock around a
    /// sync measures the sync).
    pub fn from_ops_rows(rows: &[Value]) -> Ceilings {
        let size = |r: &Value| r["size"].as_str().and_then(|s| s.parse::<usize>().ok());
        let of = |keep: &dyn Fn(&Value) -> bool, field: &str| {
            rows.iter()
                .filter(|r| r["gpu_timing"] == "gpu_timestamps" && keep(r))
                .filter_map(|r| r[field].as_f64())
                .collect::<Vec<f64>>()
        };
        let max = |v: Vec<f64>| v.into_iter().reduce(f64::max);
        let streaming =
            |r: &Value| r["op"] == "axpy" && size(r).is_some_and(|n| n > AXPY_FLOOR_MAX);
        let tiny = |r: &Value| r["op"] == "axpy" && size(r).is_some_and(|n| n <= AXPY_FLOOR_MAX);
        Ceilings {
            bandwidth_gb_s: max(of(&streaming, "gpu_rate")),
            matmul_gflop_s: max(of(&|r| r["op"] == "matmul", "gpu_rate")),
            floor_us: of(&tiny, "gpu_seconds")
                .into_iter()
                .reduce(f64::min)
                .map(|s| s * 1e6),
        }
    }
}

/// One kernel's rates within a step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub micros_per_dispatch: f64,
    pub workgroups_per_dispatch: f64,
    /// Bytes moved (declared, else bound: [`crate::backend::gpu::KernelTime::bytes`]) over
    /// kernel time.
    pub gb_s: f64,
    /// Declared operations over kernel time (`None`: the kernel declares none).
    pub gflop_s: Option<f64>,
}

impl Rates {
    /// From a kernel's per-step seconds, dispatches, bound bytes, operations and workgroups.
    pub fn new(seconds: f64, dispatches: f64, bytes: f64, flops: f64, workgroups: f64) -> Rates {
        let s = seconds.max(1e-12);
        let d = dispatches.max(1e-12);
        Rates {
            micros_per_dispatch: seconds * 1e6 / d,
            workgroups_per_dispatch: workgroups / d,
            gb_s: bytes / s / 1e9,
            gflop_s: (flops > 0.0).then(|| flops / s / 1e9),
        }
    }
}

/// What bounds a kernel, first rule that holds:
/// 1. **compute**: it declares operations and reaches [`BOUND_SHARE`] of the best matmul;
/// 2. **memory bandwidth**: its bytes move at [`BOUND_SHARE`] of `axpy`'s rate or more;
/// 3. **launch**: a dispatch takes at most [`LAUNCH_FACTOR`] times the dispatch floor;
/// 4. **occupancy**: fewer than [`FEW_WORKGROUPS`] workgroups a dispatch;
/// 5. **latency**: none of these (scattered or dependent accesses, bank conflicts, a serial
///    loop): both shares are given.
///
/// Rules whose ceiling is unknown are skipped; "—" when nothing can be said.
pub fn limit(r: &Rates, c: &Ceilings) -> String {
    let pct = |x: f64, of: f64| 100.0 * x / of.max(1e-12);
    if let (Some(g), Some(best)) = (r.gflop_s, c.matmul_gflop_s) {
        if g >= BOUND_SHARE * best {
            return format!("compute ({:.0} % of the best matmul)", pct(g, best));
        }
    }
    if let Some(bw) = c.bandwidth_gb_s {
        if r.gb_s >= BOUND_SHARE * bw {
            return format!("memory bandwidth ({:.0} % of axpy's)", pct(r.gb_s, bw));
        }
    }
    if let Some(f) = c.floor_us {
        if r.micros_per_dispatch <= LAUNCH_FACTOR * f {
            return format!(
                "launch ({:.1} µs a dispatch, floor {f:.1})",
                r.micros_per_dispatch
            );
        }
    }
    if r.workgroups_per_dispatch > 0.0 && r.workgroups_per_dispatch < FEW_WORKGROUPS {
        let n = r.workgroups_per_dispatch;
        return format!(
            "occupancy ({n:.0} workgroup{} a dispatch)",
            if n.round() == 1.0 { "" } else { "s" }
        );
    }
    let mut shares = Vec::new();
    if let Some(bw) = c.bandwidth_gb_s {
        shares.push(format!("{:.0} % of bandwidth", pct(r.gb_s, bw)));
    }
    if let (Some(g), Some(best)) = (r.gflop_s, c.matmul_gflop_s) {
        shares.push(format!("{:.0} % of the best matmul", pct(g, best)));
    }
    if shares.is_empty() {
        return "—".into();
    }
    format!("latency ({})", shares.join(", "))
}

/// The least time a kernel's dispatches could take on this device: each moves its bytes at the
/// bandwidth ceiling, does its operations at the compute ceiling, and costs at least the
/// dispatch floor (when known). `None` when the bandwidth, or for a kernel declaring operations
/// the compute ceiling, is unknown. The bytes are what the kernel declares it moves (gathers,
/// the neighbour lists' walks, in-place updates: [`crate::backend::gpu::Work`]), else its bound
/// bytes: for a product, what it reads and writes once, not its tiles' reloads from cache.
pub fn floor_seconds(dispatches: f64, bytes: f64, flops: f64, c: &Ceilings) -> Option<f64> {
    if dispatches <= 0.0 {
        return Some(0.0);
    }
    let mut per = bytes / dispatches / (c.bandwidth_gb_s? * 1e9);
    if flops > 0.0 {
        per = per.max(flops / dispatches / (c.matmul_gflop_s? * 1e9));
    }
    if let Some(f) = c.floor_us {
        per = per.max(f * 1e-6);
    }
    Some(per * dispatches)
}

/// What sets the pace of a whole step: the host recording it, the kernels, or the gaps between
/// them (launch overhead, barriers, syncs), from the step's wall time (steps back to back),
/// host time and summed kernel time.
pub fn step_limit(wall: f64, host: f64, kernel: f64, dispatches: f64) -> String {
    let wall = wall.max(1e-12);
    let gap = (wall - kernel).max(0.0);
    let busy = format!(
        "the GPU runs kernels {:.0} % of the step's wall time; the other {:.2} ms are {:.1} µs \
         per dispatch between kernels",
        100.0 * (kernel / wall).min(1.0),
        gap * 1e3,
        gap * 1e6 / dispatches.max(1.0)
    );
    if host >= 0.8 * wall {
        format!(
            "**the host** sets the pace (it spends {:.0} % of the step recording it): {busy}",
            100.0 * host / wall
        )
    } else if kernel >= 0.8 * wall {
        format!("**the kernels** set the pace: {busy}")
    } else {
        format!("**gaps between kernels** (launch overhead, barriers) set the pace: {busy}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ceilings() -> Ceilings {
        Ceilings {
            bandwidth_gb_s: Some(3000.0),
            matmul_gflop_s: Some(40_000.0),
            floor_us: Some(3.0),
        }
    }

    #[test]
    fn each_rule_names_its_limit() {
        let c = ceilings();
        // A matmul at 30 TFLOP/s of a best 40: compute.
        let mm = Rates::new(1e-3, 1.0, 1e8, 3e10, 4096.0);
        assert_eq!(mm.gflop_s, Some(30_000.0));
        assert!(
            limit(&mm, &c).starts_with("compute (75 %"),
            "{}",
            limit(&mm, &c)
        );
        // 2 GB moved in 1 ms: 2,000 GB/s of 3,000: bandwidth.
        let adam = Rates::new(1e-3, 1.0, 2e9, 0.0, 100_000.0);
        assert!(limit(&adam, &c).starts_with("memory bandwidth (67 %"));
        // 5 µs a dispatch, floor 3: launch.
        let tiny = Rates::new(10e-6, 2.0, 1e3, 0.0, 2.0);
        assert!(
            limit(&tiny, &c).starts_with("launch (5.0 µs"),
            "{}",
            limit(&tiny, &c)
        );
        // Slow, little traffic, 32 workgroups: occupancy.
        let narrow = Rates::new(1e-3, 1.0, 1e6, 0.0, 32.0);
        assert_eq!(limit(&narrow, &c), "occupancy (32 workgroups a dispatch)");
        let one = Rates::new(1e-3, 2.0, 1e3, 0.0, 2.0);
        assert_eq!(limit(&one, &c), "occupancy (1 workgroup a dispatch)");
        // Slow, many workgroups, neither ceiling: latency, with both shares.
        let gather = Rates::new(1e-3, 1.0, 3e8, 1e9, 5000.0);
        assert_eq!(
            limit(&gather, &c),
            "latency (10 % of bandwidth, 2 % of the best matmul)"
        );
        // No ceilings at all: nothing is claimed, except what the kernel itself shows.
        assert_eq!(limit(&gather, &Ceilings::default()), "—");
        assert!(limit(&narrow, &Ceilings::default()).starts_with("occupancy"));
    }

    #[test]
    fn ceilings_come_from_timestamped_ops_rows_only() {
        let row = |op: &str, size: &str, rate: f64, secs: f64, timing: &str| {
            json!({"op": op, "size": size, "gpu_rate": rate, "gpu_seconds": secs,
                   "gpu_timing": timing, "kernel": null})
        };
        let rows = vec![
            row("matmul", "1024x1024x1024", 10_000.0, 2e-4, "gpu_timestamps"),
            row("matmul", "4096x4096x4096", 14_000.0, 1e-2, "gpu_timestamps"),
            row("softmax", "64x360000", 1_000.0, 1e-4, "gpu_timestamps"),
            row("axpy", "256", 1.0, 4e-6, "gpu_timestamps"),
            row("axpy", "16777216", 2_500.0, 8e-5, "gpu_timestamps"),
            // A wall-clock row (no timestamps) is no ceiling, however fast it claims to be.
            row("axpy", "67108864", 9_000.0, 1e-4, "wall_after_sync"),
        ];
        let c = Ceilings::from_ops_rows(&rows);
        assert_eq!(c.bandwidth_gb_s, Some(2_500.0));
        assert_eq!(c.matmul_gflop_s, Some(14_000.0));
        assert!((c.floor_us.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(Ceilings::from_ops_rows(&[]), Ceilings::default());
    }

    #[test]
    fn a_kernel_floor_is_its_slowest_ceiling() {
        let c = ceilings();
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() <= 1e-12 * b.max(1.0));
        // 3 GB at 3,000 GB/s: 1 ms, however many dispatches share it.
        assert!(close(floor_seconds(1.0, 3e9, 0.0, &c), 1e-3));
        assert!(close(floor_seconds(4.0, 3e9, 0.0, &c), 1e-3));
        // 8e10 operations at 40,000 GFLOP/s: 2 ms, above the 1 ms its bytes take.
        assert!(close(floor_seconds(1.0, 3e9, 8e10, &c), 2e-3));
        // Ten tiny dispatches: ten floors of 3 µs.
        assert!(close(floor_seconds(10.0, 1e3, 0.0, &c), 30e-6));
        assert!(close(floor_seconds(0.0, 1e3, 0.0, &c), 0.0));
        // Without the floor, the bytes alone; without a needed ceiling, nothing.
        let no_floor = Ceilings {
            floor_us: None,
            ..c
        };
        assert!(close(floor_seconds(10.0, 1e3, 0.0, &no_floor), 1e3 / 3e12));
        let no_compute = Ceilings {
            matmul_gflop_s: None,
            ..c
        };
        assert_eq!(floor_seconds(1.0, 3e9, 8e10, &no_compute), None);
        assert!(close(floor_seconds(1.0, 3e9, 0.0, &no_compute), 1e-3));
        assert_eq!(floor_seconds(1.0, 3e9, 0.0, &Ceilings::default()), None);
    }

    #[test]
    fn a_step_is_host_kernel_or_gap_bound() {
        assert!(step_limit(10e-3, 9e-3, 2e-3, 100.0).starts_with("**the host**"));
        assert!(step_limit(10e-3, 1e-3, 9e-3, 100.0).starts_with("**the kernels**"));
        let gaps = step_limit(10e-3, 2e-3, 4e-3, 100.0);
        assert!(gaps.starts_with("**gaps between kernels**"), "{gaps}");
        assert!(gaps.contains("40 % of the step's wall time"), "{gaps}");
        assert!(gaps.contains("60.0 µs per dispatch"), "{gaps}");
    }
}
