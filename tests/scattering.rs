//! The scattering transform against Kymatio 0.3.0 (golden fixtures made by
//! `tests/golden/make_scattering_golden.py` from excerpts of the bundled real clips), GPU against
//! CPU on random signals, the GPU long FFT against rustfft for every size the transform uses, the
//! path order against Kymatio's `meta()`, and the configuration errors.
//!
//! Tolerance for the transform: relative L2 error ≤ 5e-3 (the bound), per clip and per
//! scattering order within each clip.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use ainrnn::audio::scattering::gpu::{fft_batch, scattering_capped};
use ainrnn::audio::scattering::{Scattering, ScatteringConfig, ScatteringOps};
use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::Backend;
use ainrnn::error::{Error, OpError};
use rustfft::num_complex::Complex64;

use common::rel_l2;

const TOL: f64 = 5e-3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Golden {
    name: String,
    manifest: serde_json::Value,
    cfg: ScatteringConfig,
    n: usize,
    clips: usize,
    input: Vec<f32>,
    output: Vec<f32>,
    shape: [usize; 3],
}

/// The `data` chunk of a 16-bit PCM WAV file as samples.
fn wav_i16(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[0..4], b"RIFF", "{}", path.display());
    assert_eq!(&bytes[8..12], b"WAVE", "{}", path.display());
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if id == b"fmt " {
            let bits = u16::from_le_bytes(bytes[pos + 22..pos + 24].try_into().unwrap());
            assert_eq!(bits, 16, "{}: not 16-bit PCM", path.display());
        }
        if id == b"data" {
            let end = (pos + 8 + len).min(bytes.len());
            return bytes[pos + 8..end]
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
        }
        pos += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

fn load(name: &str) -> Golden {
    let dir = root().join("tests/golden/scattering");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let n = manifest["n_samples"].as_u64().unwrap() as usize;
    let cfg = ScatteringConfig {
        j: manifest["J"].as_u64().unwrap() as u32,
        q: manifest["Q"].as_u64().unwrap() as u32,
    };
    let shape: Vec<usize> = manifest["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let raw_in = std::fs::read(dir.join(format!("{name}.i16"))).unwrap();
    let input_i16: Vec<i16> = raw_in
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let clips = manifest["clips"].as_array().unwrap();
    assert_eq!(input_i16.len(), clips.len() * n, "{name}.i16 size");
    // The excerpts must be the bundled real audio, sample for sample.
    for (c, clip) in clips.iter().enumerate() {
        let wav = wav_i16(&root().join(clip["file"].as_str().unwrap()));
        let off = clip["offset"].as_u64().unwrap() as usize;
        assert_eq!(
            &wav[off..off + n],
            &input_i16[c * n..(c + 1) * n],
            "{name}: excerpt {c} differs from {}",
            clip["file"]
        );
    }
    let raw_out = std::fs::read(dir.join(format!("{name}.f32"))).unwrap();
    let output: Vec<f32> = raw_out
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(output.len(), shape.iter().product::<usize>());
    Golden {
        name: name.to_string(),
        cfg,
        n,
        clips: clips.len(),
        input: input_i16.iter().map(|&v| v as f32 / 32768.0).collect(),
        output,
        shape: [shape[0], shape[1], shape[2]],
        manifest,
    }
}

/// Relative L2 per clip and per order within each clip; panics naming the worst offender.
fn compare(what: &str, got: &[f32], want: &[f32], shape: [usize; 3], orders: &[u8]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let [clips, paths, frames] = shape;
    for c in 0..clips {
        let g = &got[c * paths * frames..(c + 1) * paths * frames];
        let w = &want[c * paths * frames..(c + 1) * paths * frames];
        let e = rel_l2(g, w);
        assert!(
            e <= TOL,
            "{what}: clip {c}: relative L2 error {e:.3e} > {TOL}"
        );
        for order in 0..=2u8 {
            let rows: Vec<usize> = (0..paths).filter(|&p| orders[p] == order).collect();
            if rows.is_empty() {
                continue;
            }
            let pick = |v: &[f32]| -> Vec<f32> {
                rows.iter()
                    .flat_map(|&p| v[p * frames..(p + 1) * frames].iter().copied())
                    .collect()
            };
            let e = rel_l2(&pick(g), &pick(w));
            assert!(
                e <= TOL,
                "{what}: clip {c}, order {order}: relative L2 error {e:.3e} > {TOL}"
            );
            eprintln!("{what}: clip {c}, order {order}: relative L2 error {e:.2e}");
        }
    }
}

fn check_against_golden<B: ScatteringOps>(b: &B, name: &str) {
    let g = load(name);
    let plan = Scattering::new(g.cfg, g.n).unwrap();
    assert_eq!(
        [g.clips, plan.n_paths(), plan.n_frames()],
        g.shape,
        "{}: output shape",
        g.name
    );
    assert_eq!(
        plan.n_padded() as u64,
        g.manifest["n_padded"].as_u64().unwrap(),
        "{}: padded length",
        g.name
    );
    let x = b.upload_f32(&g.input, &[g.clips, g.n]).unwrap();
    let y = plan.transform(b, &x).unwrap();
    assert_eq!(y.shape(), &g.shape[..]);
    let got = b.to_f32(&y).unwrap();
    let orders: Vec<u8> = plan.meta().iter().map(|m| m.order).collect();
    compare(
        &format!("{} on {}", g.name, b.describe()),
        &got,
        &g.output,
        g.shape,
        &orders,
    );
}

#[test]
fn cpu_matches_kymatio_default_config() {
    check_against_golden(&CpuBackend::new(), "default_j8_q8");
}

#[test]
fn cpu_matches_kymatio_other_j_q() {
    check_against_golden(&CpuBackend::new(), "small_j5_q4");
}

#[test]
fn gpu_matches_kymatio_default_config() {
    if let Some(g) = common::gpu() {
        check_against_golden(&g, "default_j8_q8");
    }
}

#[test]
fn gpu_matches_kymatio_other_j_q() {
    if let Some(g) = common::gpu() {
        check_against_golden(&g, "small_j5_q4");
    }
}

/// meta() count and order against Kymatio's: order, j and xi of every row.
#[test]
fn meta_matches_kymatio() {
    for name in ["default_j8_q8", "small_j5_q4"] {
        let g = load(name);
        let plan = Scattering::new(g.cfg, g.n).unwrap();
        let meta = plan.meta();
        let km = &g.manifest["meta"];
        let order = km["order"].as_array().unwrap();
        assert_eq!(meta.len(), order.len(), "{name}: path count");
        for (i, m) in meta.iter().enumerate() {
            assert_eq!(
                m.order as u64,
                order[i].as_u64().unwrap(),
                "{name}: row {i}"
            );
            let js = km["j"][i].as_array().unwrap();
            let xis = km["xi"][i].as_array().unwrap();
            let j = |v: &serde_json::Value| v.as_u64().map(|x| x as u32);
            assert_eq!((m.j1, m.j2), (j(&js[0]), j(&js[1])), "{name}: row {i} j");
            let close = |a: Option<f64>, b: &serde_json::Value| match (a, b.as_f64()) {
                (None, None) => true,
                (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs(),
                _ => false,
            };
            assert!(
                close(m.xi1, &xis[0]) && close(m.xi2, &xis[1]),
                "{name}: row {i} xi {:?} vs {:?}",
                (m.xi1, m.xi2),
                xis
            );
        }
    }
}

/// Random signals of a length that is not a power of two, three clips in one batch.
#[test]
fn gpu_matches_cpu_on_random_signals() {
    let Some(g) = common::gpu() else { return };
    let cfg = ScatteringConfig { j: 6, q: 6 };
    let n = 5000;
    let plan = Scattering::new(cfg, n).unwrap();
    let mut r = common::rng(7);
    let x = common::uniform(&mut r, 3 * n, -1.0, 1.0);
    let cpu = CpuBackend::new();
    let want = cpu
        .to_f32(
            &plan
                .transform(&cpu, &cpu.upload_f32(&x, &[3, n]).unwrap())
                .unwrap(),
        )
        .unwrap();
    let got = g
        .to_f32(
            &plan
                .transform(&g, &g.upload_f32(&x, &[3, n]).unwrap())
                .unwrap(),
        )
        .unwrap();
    let orders: Vec<u8> = plan.meta().iter().map(|m| m.order).collect();
    compare(
        "random, GPU vs CPU",
        &got,
        &want,
        [3, plan.n_paths(), plan.n_frames()],
        &orders,
    );
    // GPU against CPU is far tighter than against Kymatio: both are f32 with the same steps.
    let e = rel_l2(&got, &want);
    assert!(e < 1e-4, "GPU vs CPU relative L2 {e:.3e}");
}

/// The scattering kernels give the same bits whatever runtime checks naga compiled into them.
#[test]
fn gpu_scattering_is_the_same_to_the_bit_under_every_shader_check_setting() {
    let Some(gs) = common::gpu_per_shader_checks() else {
        return;
    };
    let n = 5000;
    let plan = Scattering::new(ScatteringConfig { j: 6, q: 6 }, n).unwrap();
    let x = common::uniform(&mut common::rng(8), 2 * n, -1.0, 1.0);
    let run = |g: &ainrnn::backend::gpu::GpuBackend| {
        g.to_f32(
            &plan
                .transform(g, &g.upload_f32(&x, &[2, n]).unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    common::same_under_every_shader_check(&gs, "the scattering transform", run);
}

/// The same plan used twice on the GPU (cached filters and tables, pooled buffers) gives the
/// same result, and a batch gives the same rows as the clips one at a time.
#[test]
fn gpu_plan_reuse_and_batching_are_consistent() {
    let Some(g) = common::gpu() else { return };
    let plan = Scattering::new(ScatteringConfig { j: 4, q: 2 }, 700).unwrap();
    let mut r = common::rng(11);
    let x = common::uniform(&mut r, 2 * 700, -1.0, 1.0);
    let both = g
        .to_f32(
            &plan
                .transform(&g, &g.upload_f32(&x, &[2, 700]).unwrap())
                .unwrap(),
        )
        .unwrap();
    let again = g
        .to_f32(
            &plan
                .transform(&g, &g.upload_f32(&x, &[2, 700]).unwrap())
                .unwrap(),
        )
        .unwrap();
    assert_eq!(both, again);
    let second = g
        .to_f32(
            &plan
                .transform(&g, &g.upload_f32(&x[700..], &[1, 700]).unwrap())
                .unwrap(),
        )
        .unwrap();
    let half = both.len() / 2;
    assert!(rel_l2(&both[half..], &second) < 1e-6);
}

/// Work split over several clip groups and rounds (a tiny buffer cap) gives the same result as
/// one pass: each job's arithmetic does not depend on what else is in its batch.
#[test]
fn gpu_split_into_groups_and_rounds_is_exact() {
    let Some(g) = common::gpu() else { return };
    let plan = Scattering::new(ScatteringConfig { j: 4, q: 2 }, 700).unwrap();
    assert_eq!(plan.n_padded(), 2048);
    let mut r = common::rng(5);
    let x = common::uniform(&mut r, 3 * 700, -1.0, 1.0);
    let xg = g.upload_f32(&x, &[3, 700]).unwrap();
    let whole = g.to_f32(&plan.transform(&g, &xg).unwrap()).unwrap();
    // Two padded clips per group (groups of 2 and 1), first-order rounds of at most 4096 values.
    let split = g
        .to_f32(&scattering_capped(&g, &plan, &xg, Some(4096)).unwrap())
        .unwrap();
    assert_eq!(whole, split);
    let cpu = CpuBackend::new();
    let want = cpu
        .to_f32(
            &plan
                .transform(&cpu, &cpu.upload_f32(&x, &[3, 700]).unwrap())
                .unwrap(),
        )
        .unwrap();
    let e = rel_l2(&split, &want);
    assert!(e < 1e-4, "split GPU vs CPU relative L2 {e:.3e}");
    // A cap below one padded clip is a typed limit error.
    assert!(matches!(
        scattering_capped(&g, &plan, &xg, Some(1024)),
        Err(OpError::Gpu(_))
    ));
}

/// The GPU long FFT (mixed sizes in one batch, as the transform runs it) against rustfft in
/// f64, forward and inverse (unnormalised), for every size the default plan uses.
#[test]
fn gpu_long_fft_matches_rustfft_for_every_size_used() {
    let Some(g) = common::gpu() else { return };
    let plan = Scattering::new(ScatteringConfig::default(), 1 << 15).unwrap();
    let mut sizes = plan.fft_sizes();
    assert_eq!(sizes.len(), 9);
    // Mixed order, as in the transform's job tables, plus the smallest sizes (a size-2
    // transform is one unit; 8 = one radix-4 pass then one radix-2 pass).
    sizes.reverse();
    sizes.extend([plan.n_padded() >> 3, 2, 4, 8]);
    let total: usize = sizes.iter().sum();
    let mut r = common::rng(3);
    let data = common::uniform(&mut r, 2 * total, -1.0, 1.0);
    let mut planner = rustfft::FftPlanner::<f64>::new();
    for inverse in [false, true] {
        let got = fft_batch(&g, &data, &sizes, inverse).unwrap();
        let mut off = 0;
        for &n in &sizes {
            let mut want: Vec<Complex64> = (0..n)
                .map(|i| Complex64::new(data[2 * (off + i)] as f64, data[2 * (off + i) + 1] as f64))
                .collect();
            if inverse {
                planner.plan_fft_inverse(n).process(&mut want);
            } else {
                planner.plan_fft_forward(n).process(&mut want);
            }
            let (mut num, mut den, mut worst) = (0.0f64, 0.0f64, 0.0f64);
            for (i, w) in want.iter().enumerate() {
                let gr = got[2 * (off + i)] as f64;
                let gi = got[2 * (off + i) + 1] as f64;
                let d = (gr - w.re).powi(2) + (gi - w.im).powi(2);
                num += d;
                den += w.norm_sqr();
                worst = worst.max(d.sqrt());
            }
            let rel = (num / den).sqrt();
            // f32 radix-2: error grows like log2(n) ulps; rms |X| = sqrt(n/3) here.
            let bound = 2e-6 * (n as f64).log2();
            assert!(
                rel < bound,
                "size {n} ({}): relative L2 {rel:.2e} > {bound:.2e} (worst abs {worst:.2e})",
                if inverse { "inverse" } else { "forward" }
            );
            off += n;
        }
    }
}

fn expect_invalid(r: Result<Scattering, Error>, needle: &str) {
    match r {
        Err(Error::Op(OpError::Invalid { op, detail })) => {
            assert_eq!(op, "scattering");
            assert!(detail.contains(needle), "{detail:?} lacks {needle:?}");
        }
        other => panic!("expected an invalid-config error mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn configuration_errors_are_typed() {
    expect_invalid(
        Scattering::new(ScatteringConfig { j: 0, q: 8 }, 4096),
        "J must be",
    );
    expect_invalid(
        Scattering::new(ScatteringConfig { j: 8, q: 0 }, 4096),
        "Q must be",
    );
    // Shorter than T = 2^J.
    expect_invalid(
        Scattering::new(ScatteringConfig { j: 8, q: 8 }, 200),
        "shorter than the averaging scale",
    );
    // Kymatio refuses T > N when T is given; with T = 2^J it would silently average over more
    // than the clip. One sample short of T is refused, T itself is accepted.
    expect_invalid(
        Scattering::new(ScatteringConfig { j: 6, q: 2 }, 63),
        "shorter than the averaging scale",
    );
    assert!(Scattering::new(ScatteringConfig { j: 6, q: 2 }, 64).is_ok());
    // A clip of the wrong length for the plan is a shape error, not a panic.
    let plan = Scattering::new(ScatteringConfig { j: 4, q: 2 }, 700).unwrap();
    let cpu = CpuBackend::new();
    let x = cpu.upload_f32(&vec![0.0; 600], &[1, 600]).unwrap();
    assert!(matches!(
        plan.transform(&cpu, &x),
        Err(OpError::Shape {
            op: "scattering",
            ..
        })
    ));
}

/// The `features` pipeline's scattering stage: clips of different lengths in one batch each get
/// the transform of their own signal (not of the batch's zero-padded rows), and the first-order
/// path count matches the plan's meta.
#[test]
fn features_stage_transforms_each_clip_at_its_own_length() {
    use ainrnn::audio::features::{extract_batch, ScatteringFn};
    use ainrnn::audio::ops::AudioPlan;
    use ainrnn::audio::scattering::Stage;

    let b = CpuBackend::new();
    let cfg = ScatteringConfig { j: 5, q: 4 };
    let stage = Stage::new(cfg).unwrap();
    let mut r = common::rng(77);
    let long = common::uniform(&mut r, 9000, -0.5, 0.5);
    let short = common::uniform(&mut r, 6000, -0.5, 0.5);
    let clips: Vec<&[f32]> = vec![&long, &short, &long];
    let plan = AudioPlan::new(&b).unwrap();
    let f = |b: &CpuBackend, x: &_| stage.run(b, x);
    let feats =
        extract_batch(&b, &plan, &clips, Some(&f as &ScatteringFn<'_, CpuBackend>)).unwrap();
    for (clip, got) in clips.iter().zip(&feats) {
        let direct = Scattering::new(cfg, clip.len()).unwrap();
        let want = b
            .to_f32(
                &direct
                    .transform(&b, &b.upload_f32(clip, &[1, clip.len()]).unwrap())
                    .unwrap(),
            )
            .unwrap();
        let (data, paths, frames, first) = got.scattering.clone().expect("scattering computed");
        assert_eq!(
            (paths, frames),
            (direct.n_paths(), direct.n_frames()),
            "clip of {} samples",
            clip.len()
        );
        assert_eq!(first, direct.meta().iter().filter(|m| m.order == 1).count());
        assert_eq!(data, want, "same values as the clip transformed alone");
    }
}
