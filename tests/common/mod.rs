//! Shared test helpers: the GPU under test, per-backend test emission ([`backend_tests!`]),
//! tolerances, seeded random data.
#![allow(dead_code)]

pub mod cli;

use std::sync::OnceLock;

use ainrnn::backend::gpu::GpuBackend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// True when running under CI (`CI=true`): GPU tests must run there, never skip.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// The GPU backend for tests, opened once per test binary. Without an adapter: under CI this
/// fails the test; locally it prints a loud skip message and returns `None`.
pub fn gpu() -> Option<GpuBackend> {
    static GPU: OnceLock<Option<GpuBackend>> = OnceLock::new();
    GPU.get_or_init(|| match GpuBackend::new() {
        Ok(g) => {
            use ainrnn::backend::Backend;
            eprintln!("GPU tests run on {}", g.describe());
            Some(g)
        }
        Err(e) => {
            if in_ci() {
                panic!(
                    "CI=true but no GPU adapter could be opened: {e}. \
                     CI runs the GPU tests on Mesa lavapipe: install mesa-vulkan-drivers and set WGPU_BACKEND=vulkan."
                );
            }
            eprintln!("!!! SKIPPING GPU TEST: no GPU adapter ({e}) !!!");
            None
        }
    })
    .clone()
}

/// A GPU backend with a device of its own, for tests that read device-wide counters (the shared
/// one sees other tests' work). Same skip/fail rules as [`gpu`].
pub fn fresh_gpu() -> Option<GpuBackend> {
    gpu()?;
    Some(GpuBackend::new().expect("a second device on the adapter that just opened"))
}

/// One GPU backend per setting of naga's runtime checks (`all`, `bounds`, `none`, in
/// [`ShaderChecks::ALL`]'s order), each on a device of its own, for tests that a kernel gives
/// the same bits however it was compiled. Same skip/fail rules as [`gpu`].
///
/// [`ShaderChecks::ALL`]: ainrnn::backend::gpu::ShaderChecks::ALL
pub fn gpu_per_shader_checks() -> Option<Vec<(&'static str, GpuBackend)>> {
    use ainrnn::backend::gpu::{GpuContext, ShaderChecks};
    gpu()?;
    Some(
        ShaderChecks::ALL
            .iter()
            .map(|&c| {
                let ctx = GpuContext::with_shader_checks(c).expect("a device on the adapter");
                assert_eq!(ctx.shader_checks(), c);
                (c.name(), GpuBackend::from_context(std::sync::Arc::new(ctx)))
            })
            .collect(),
    )
}

/// Asserts that `run` gives the same result on every backend of [`gpu_per_shader_checks`] as
/// on the first (`all`): a kernel that read past a workgroup array, where a clamp hides it,
/// would differ.
pub fn same_under_every_shader_check<T: PartialEq>(
    gs: &[(&'static str, GpuBackend)],
    what: &str,
    run: impl Fn(&GpuBackend) -> T,
) {
    let want = run(&gs[0].1);
    for (name, g) in &gs[1..] {
        assert!(
            run(g) == want,
            "{what} compiled with checks {name} differs from all"
        );
    }
}

/// Emits `cpu::<name>` and `gpu::<name>` for each `path::to::body => name`; `body` is a generic
/// test over the backend, given `&B`. The GPU test skips or fails by the rules of [`gpu`]. Use
/// once per test binary, with `#[macro_use]` on its `mod common;`.
#[allow(unused_macros)]
macro_rules! backend_tests {
    ($($($f:ident)::+ => $name:ident),* $(,)?) => {
        mod cpu {
            $(
                #[test]
                fn $name() {
                    crate::$($f)::+(&ainrnn::backend::cpu::CpuBackend::new());
                }
            )*
        }
        mod gpu {
            $(
                #[test]
                fn $name() {
                    if let Some(g) = crate::common::gpu() {
                        crate::$($f)::+(&g);
                    }
                }
            )*
        }
    };
}

/// Relative L2 error `‖got − want‖ / ‖want‖`, in f64; `want` may be f32 or f64.
#[track_caller]
pub fn rel_l2<W: Copy + Into<f64>>(got: &[f32], want: &[W]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w.into()).powi(2))
        .sum();
    let den: f64 = want.iter().map(|&w| w.into().powi(2)).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Element-wise tolerance: `|got - want| <= abs + rel * |want|`.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub rel: f64,
    pub abs: f64,
}

impl Tol {
    pub const EXACT: Tol = Tol { rel: 0.0, abs: 0.0 };
    /// One or two f32 roundings (element-wise arithmetic, exp/log).
    pub const ELEMENTWISE: Tol = Tol {
        rel: 2e-6,
        abs: 1e-6,
    };
    /// Transcendentals on the GPU (WGSL's exp/log are allowed a few ulp more than libm).
    pub const TRANSCENDENTAL: Tol = Tol {
        rel: 1e-5,
        abs: 1e-6,
    };
    /// Sums of `n` f32 terms of magnitude ≲ 1, accumulated in a different order than the oracle.
    pub fn sum(n: usize) -> Tol {
        Tol {
            rel: 1e-5,
            abs: 2e-6 * (n as f64).max(1.0),
        }
    }
}

/// Compares element-wise; on failure names the case, sizes, first differing index and counts.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: Tol) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs expected {}",
        got.len(),
        want.len()
    );
    let mut bad = 0usize;
    let mut first = None;
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g as f64;
        let ok = if w.is_infinite() || w.is_nan() {
            g == w || (g.is_nan() && w.is_nan())
        } else {
            let err = (g - w).abs();
            worst = worst.max(err / (tol.abs + tol.rel * w.abs()).max(f64::MIN_POSITIVE));
            err <= tol.abs + tol.rel * w.abs()
        };
        if !ok {
            bad += 1;
            first.get_or_insert((i, g, w));
        }
    }
    if let Some((i, g, w)) = first {
        panic!(
            "{what}: {bad} of {} elements outside tolerance {tol:?}; first at index {i}: got {g}, want {w} (worst error/tolerance {worst:.2})",
            got.len()
        );
    }
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The central difference of `loss(x, y)` in element `i` of `x` (`in_x`) or of `y`, moved by
/// ±`eps`: the finite-difference side of the backward ops' gradient checks.
pub fn central_diff2(
    loss: impl Fn(&[f32], &[f32]) -> f64,
    (x, y): (&[f32], &[f32]),
    in_x: bool,
    i: usize,
    eps: f32,
) -> f64 {
    let moved = |v: &[f32], d: f32| {
        let mut m = v.to_vec();
        m[i] += d;
        m
    };
    let (lp, lq) = if in_x {
        (loss(&moved(x, eps), y), loss(&moved(x, -eps), y))
    } else {
        (loss(x, &moved(y, eps)), loss(x, &moved(y, -eps)))
    };
    (lp - lq) / (2.0 * eps as f64)
}

/// `n` values uniform in [lo, hi).
pub fn uniform(r: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

/// A feature store header as version 1 wrote it: `format` as a variable-length string, `version`
/// 1, an empty `/tracks`. Both the store writer and the song-table reader must refuse it.
pub fn write_version_1_store(path: &std::path::Path) {
    let f = hdf5::File::create(path).unwrap();
    let fmt: hdf5::types::VarLenUnicode = "ainrnn-features".parse().unwrap();
    f.new_attr::<hdf5::types::VarLenUnicode>()
        .create("format")
        .unwrap()
        .write_scalar(&fmt)
        .unwrap();
    f.new_attr::<u64>()
        .create("version")
        .unwrap()
        .write_scalar(&1u64)
        .unwrap();
    f.create_group("tracks").unwrap();
}

/// Portraits that say nothing: one "unknown" age bucket and language for every user, one genre
/// name, no song genre. For datasets built by hand in tests.
pub fn blank_portraits(users: usize, songs: usize) -> ainrnn::data::Portraits {
    ainrnn::data::Portraits {
        age_bucket: vec![0; users],
        age_bucket_names: vec!["unknown".into()],
        language: vec![0; users],
        language_names: vec!["unknown".into()],
        genre_names: vec!["rock".into()],
        genre_dist: vec![0.0; users],
        song_genre: vec![ainrnn::data::dataset::NO_GENRE; songs],
        song_language: vec![0; songs],
    }
}

/// `prepare`'s options for a small real dataset: the first `users` users of the bundled
/// Taste-Profile triplets (written to `dir/triplets.txt`) with the MSD subset's metadata (song
/// vectors, genres, languages), 3 folds, into `dir/small.h5`.
pub fn taste_prefix(dir: &std::path::Path, users: usize) -> ainrnn::data::prepare::PrepareOptions {
    use ainrnn::data::prepare::{Input, PrepareOptions};
    let root = cli::root();
    let text = std::fs::read_to_string(root.join("data/taste/triplets_dev.txt")).unwrap();
    let (mut seen, mut out) = (Vec::<String>::new(), String::new());
    for line in text.lines() {
        let u = line.split('\t').next().unwrap();
        if seen.last().map(String::as_str) != Some(u) {
            if seen.len() == users {
                break;
            }
            seen.push(u.to_string());
        }
        out.push_str(line);
        out.push('\n');
    }
    let trip = dir.join("triplets.txt");
    std::fs::write(&trip, out).unwrap();
    let mut o = PrepareOptions::new(Input::Triplets(trip), dir.join("small.h5"));
    o.metadata = Some(root.join("data/msd/subset_10k.csv"));
    o.folds = 3;
    o
}

/// The song ids of the first `k` songs of `list` (best first) that a cap of `cap` songs per
/// known genre lets through: the greedy walk a genre-capped list must equal.
pub fn greedy(
    list: &[ainrnn::eval::run::Recommendation],
    k: usize,
    cap: Option<usize>,
) -> Vec<String> {
    let mut per = std::collections::HashMap::<&str, usize>::new();
    let mut out = Vec::new();
    for r in list {
        let known = r.genre != "unknown" && !r.genre.is_empty();
        if let (Some(c), true) = (cap, known) {
            let n = per.entry(&r.genre).or_default();
            if *n >= c {
                continue;
            }
            *n += 1;
        }
        out.push(r.song_id.clone());
        if out.len() == k {
            break;
        }
    }
    out
}
