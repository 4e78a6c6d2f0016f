//! `ainrnn bench features`: seconds per 30-second clip for decoding, the CPU feature path and
//! the GPU feature path, measured in one run on the same real clips; and, when Python with
//! librosa is available, librosa's MFCC chain (melspectrogram + mfcc + two deltas) timed by
//! `scripts/bench_librosa.py` on the same files in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use crate::audio::decode::load;
use crate::audio::features::extract_batch;
use crate::audio::ops::{AudioOps, AudioPlan};
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::GpuBackend;
use crate::backend::Backend;
use crate::error::{Error, IoError};

#[derive(Clone, Debug, Serialize)]
pub struct LibrosaTiming {
    pub python: String,
    pub librosa: String,
    /// Seconds per clip for melspectrogram + mfcc + delta + delta-delta (numpy's default
    /// threads), best of [`PASSES`] passes over the clips.
    pub mfcc_seconds_per_clip: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FeaturesBench {
    pub clips: usize,
    /// Mean length of the clips timed (`--seconds`, or less where a clip is shorter).
    pub clip_seconds: f64,
    /// Set when the clips are shorter than asked.
    pub seconds_note: Option<String>,
    pub files: Vec<String>,
    pub decode_seconds_per_clip: f64,
    /// All features on the CPU (best of `passes`).
    pub cpu_seconds_per_clip: f64,
    /// The CPU path for the same chain librosa is timed on (STFT, mel, dB, MFCC, two deltas).
    pub cpu_mfcc_seconds_per_clip: f64,
    /// The CPU path stage by stage.
    pub cpu_stages: CpuStages,
    pub cpu_threads: usize,
    /// Timed passes of the CPU, GPU and librosa measurements (the best is kept; the GPU's
    /// kernel time is taken on one more).
    pub passes: usize,
    pub gpu: Option<String>,
    /// Wall clock per clip, upload to read-back (best of `passes`: the first also creates the
    /// batch's buffers, which the warm-up on one clip does not).
    pub gpu_seconds_per_clip: Option<f64>,
    /// Summed kernel time per clip from timestamp queries (when supported).
    pub gpu_kernel_seconds_per_clip: Option<f64>,
    pub gpu_note: Option<String>,
    pub librosa: Option<LibrosaTiming>,
    pub librosa_note: Option<String>,
    /// librosa seconds per clip ÷ ours (all features on our side).
    pub cpu_speedup_vs_librosa: Option<f64>,
    /// librosa ÷ our MFCC chain alone.
    pub cpu_mfcc_speedup_vs_librosa: Option<f64>,
    pub gpu_speedup_vs_librosa: Option<f64>,
}

/// The bundled real clips in `dir` (WAV and Ogg), cycled to `n`.
pub fn bench_files(dir: &Path, n: usize) -> Result<Vec<PathBuf>, IoError> {
    if !dir.exists() {
        return Err(IoError::Format {
            path: dir.to_path_buf(),
            reason: "no such folder: the bench times the bundled clips (run it from the repository root or pass --data DIR)".into(),
        });
    }
    let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| IoError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("wav" | "ogg")))
        .collect();
    f.sort();
    if f.is_empty() {
        return Err(IoError::Format {
            path: dir.to_path_buf(),
            reason: "no .wav or .ogg clips to benchmark".into(),
        });
    }
    Ok((0..n).map(|i| f[i % f.len()].clone()).collect())
}

/// Timed passes of the CPU and GPU measurements (and of librosa): the best is reported, so that a
/// moment of load from other processes on a small machine does not decide the ratio.
pub const PASSES: usize = 3;

/// Best wall-clock seconds per clip of `passes` runs of `f` (after one warm-up run on the
/// first clip: plans, pipelines, pools).
fn best_of(
    passes: usize,
    clips: &[&[f32]],
    mut f: impl FnMut(&[&[f32]]) -> Result<(), Error>,
) -> Result<f64, Error> {
    f(&clips[..1])?;
    let mut best = f64::INFINITY;
    for _ in 0..passes.max(1) {
        let t0 = Instant::now();
        f(clips)?;
        best = best.min(t0.elapsed().as_secs_f64() / clips.len() as f64);
    }
    Ok(best)
}

fn time_features<B: AudioOps>(b: &B, clips: &[&[f32]], passes: usize) -> Result<f64, Error> {
    let plan = AudioPlan::new(b)?;
    best_of(passes, clips, |c| {
        extract_batch(b, &plan, c, None)?;
        b.sync()?;
        Ok(())
    })
}

/// Seconds per clip of each stage of the CPU feature path (best of [`PASSES`]).
#[derive(Clone, Debug, Serialize)]
pub struct CpuStages {
    /// STFT power and mel spectrogram (one pass per frame).
    pub spectral_mel: f64,
    /// The same pass with HFC and HPCP as well.
    pub spectral_all: f64,
    /// `power_to_db` and the DCT.
    pub mfcc: f64,
    /// Delta and delta-delta.
    pub deltas: f64,
}

/// Times the MFCC chain alone (what librosa is timed on) on the CPU: the decoded clips in, mel
/// spectrogram, dB, MFCC, delta and delta-delta out; and each stage on its own.
fn time_mfcc(clips: &[&[f32]]) -> Result<(f64, CpuStages), Error> {
    use crate::audio::{n_frames, AMIN, DELTA_WIDTH, TOP_DB};
    let b = CpuBackend::new();
    let plan = AudioPlan::new(&b)?;
    let valid: Vec<u32> = clips.iter().map(|c| n_frames(c.len()) as u32).collect();
    let chain = best_of(PASSES, clips, |c| {
        let v = b.upload_u32(&valid[..c.len()], &[c.len()])?;
        let mel = b.spectral_of_clips(&plan, c, false)?.mel;
        let mfcc = b.mfcc(&plan, &mel, AMIN, TOP_DB)?;
        b.delta(&mfcc, &v, DELTA_WIDTH, 1)?;
        b.delta(&mfcc, &v, DELTA_WIDTH, 2)?;
        Ok(())
    })?;
    let spectral = |all: bool| {
        best_of(PASSES, clips, |c| {
            b.spectral_of_clips(&plan, c, all)?;
            Ok(())
        })
    };
    let (spectral_mel, spectral_all) = (spectral(false)?, spectral(true)?);
    let v = b.upload_u32(&valid, &[clips.len()])?;
    let mel = b.spectral_of_clips(&plan, clips, false)?.mel;
    let mfcc_t = b.mfcc(&plan, &mel, AMIN, TOP_DB)?;
    let mfcc = best_of(PASSES, clips, |_| {
        b.mfcc(&plan, &mel, AMIN, TOP_DB)?;
        Ok(())
    })?;
    let deltas = best_of(PASSES, clips, |_| {
        b.delta(&mfcc_t, &v, DELTA_WIDTH, 1)?;
        b.delta(&mfcc_t, &v, DELTA_WIDTH, 2)?;
        Ok(())
    })?;
    Ok((
        chain,
        CpuStages {
            spectral_mel,
            spectral_all,
            mfcc,
            deltas,
        },
    ))
}

/// Times librosa with `python` on `files`, or says why not.
fn librosa(
    python: &str,
    script: &Path,
    files: &[PathBuf],
    seconds: f64,
) -> Result<LibrosaTiming, String> {
    #[derive(serde::Deserialize)]
    struct R {
        librosa: String,
        mfcc_seconds_per_clip: f64,
    }
    let r: R = super::run_json(
        Command::new(python)
            .arg(script)
            .arg("--seconds")
            .arg(seconds.to_string())
            .arg("--passes")
            .arg(PASSES.to_string())
            .args(files),
        python,
        script,
    )?;
    Ok(LibrosaTiming {
        python: python.to_string(),
        librosa: r.librosa,
        mfcc_seconds_per_clip: r.mfcc_seconds_per_clip,
    })
}

/// Picks a Python that imports librosa: the given one, `.venv-bench`, `.venv`, then `python3`;
/// `Err`: why none does.
pub fn find_python(given: Option<&str>) -> Result<String, String> {
    super::python_with(
        "librosa",
        given,
        &[".venv-bench/bin/python", ".venv/bin/python", "python3"],
        "pass --install-reference to create .venv-bench",
    )
}

/// Creates `.venv-bench` with librosa 0.11 (for `--install-reference`).
pub fn install_reference() -> Result<String, String> {
    super::make_venv(".venv-bench", &["librosa==0.11.*"])
}

/// Runs the benchmark. `gpu` is measured when given.
pub fn run(
    data: &Path,
    n: usize,
    clip_seconds: f64,
    gpu: Option<GpuBackend>,
    gpu_note: Option<String>,
    python: Result<String, String>,
    script: &Path,
) -> Result<FeaturesBench, Error> {
    let files = bench_files(data, n.max(1))?;
    let t0 = Instant::now();
    let decoded = files
        .iter()
        .map(|f| load(f, Some(clip_seconds)).map(|d| d.samples))
        .collect::<Result<Vec<_>, _>>()?;
    let decode = t0.elapsed().as_secs_f64() / files.len() as f64;
    let clips: Vec<&[f32]> = decoded.iter().map(|d| d.as_slice()).collect();
    // What was timed: a clip shorter than `--seconds` is timed at its own length.
    let timed_seconds = clips.iter().map(|c| c.len()).sum::<usize>() as f64
        / clips.len() as f64
        / crate::audio::SAMPLE_RATE as f64;
    let seconds_note = (timed_seconds < clip_seconds - 0.5 / crate::audio::SAMPLE_RATE as f64)
        .then(|| {
            format!(
                "--seconds {clip_seconds}: the clips hold {timed_seconds:.1} s on average, and are timed at their own length"
            )
        });
    let cpu = time_features(&CpuBackend::new(), &clips, PASSES)?;
    let (cpu_mfcc, cpu_stages) = time_mfcc(&clips)?;
    let (mut gpu_s, mut kernel_s, mut gpu_name) = (None, None, None);
    if let Some(g) = &gpu {
        gpu_name = Some(g.describe());
        gpu_s = Some(time_features(g, &clips, PASSES)?);
        let plan = AudioPlan::new(g)?;
        if g.context().timer_start()? {
            extract_batch(g, &plan, &clips, None)?;
            if let Some((d, _)) = g.context().timer_stop()? {
                kernel_s = Some(d.as_secs_f64() / clips.len() as f64);
            }
        }
    }
    let (lib, lib_note) = match python {
        Ok(py) => match librosa(&py, script, &files, clip_seconds) {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(e)),
        },
        Err(why) => (None, Some(why)),
    };
    let ratio = |ours: Option<f64>| match (&lib, ours) {
        (Some(l), Some(o)) if o > 0.0 => Some(l.mfcc_seconds_per_clip / o),
        _ => None,
    };
    Ok(FeaturesBench {
        clips: files.len(),
        clip_seconds: timed_seconds,
        seconds_note,
        files: files.iter().map(|f| f.display().to_string()).collect(),
        decode_seconds_per_clip: decode,
        cpu_seconds_per_clip: cpu,
        cpu_mfcc_seconds_per_clip: cpu_mfcc,
        cpu_stages,
        cpu_threads: rayon::current_num_threads(),
        passes: PASSES,
        gpu: gpu_name,
        gpu_seconds_per_clip: gpu_s,
        gpu_kernel_seconds_per_clip: kernel_s,
        gpu_note,
        cpu_speedup_vs_librosa: ratio(Some(cpu)),
        cpu_mfcc_speedup_vs_librosa: ratio(Some(cpu_mfcc)),
        gpu_speedup_vs_librosa: ratio(gpu_s),
        librosa: lib,
        librosa_note: lib_note,
    })
}

pub fn render(r: &FeaturesBench) -> String {
    let ms = |s: f64| format!("{:.2} ms", s * 1e3);
    let mut o = format!(
        "bench features: {} of {:.1} s ({} CPU threads; CPU, GPU and librosa: best of {} passes)\n",
        crate::text::count(r.clips as u64, "clip"),
        r.clip_seconds,
        r.cpu_threads,
        r.passes
    );
    o += &format!(
        "  decode + resample        {:>12} per clip\n",
        ms(r.decode_seconds_per_clip)
    );
    o += &format!(
        "  features, CPU            {:>12} per clip\n",
        ms(r.cpu_seconds_per_clip)
    );
    o += &format!(
        "  MFCC chain, CPU          {:>12} per clip\n",
        ms(r.cpu_mfcc_seconds_per_clip)
    );
    let st = &r.cpu_stages;
    o += &format!(
        "    stages: STFT+mel {}, +HFC+HPCP {}, dB+DCT {}, deltas {}\n",
        ms(st.spectral_mel),
        ms(st.spectral_all),
        ms(st.mfcc),
        ms(st.deltas)
    );
    if let (Some(g), Some(s)) = (&r.gpu, r.gpu_seconds_per_clip) {
        o += &format!("  features, GPU (wall)     {:>12} per clip  [{g}]\n", ms(s));
    }
    if let Some(k) = r.gpu_kernel_seconds_per_clip {
        o += &format!("  features, GPU kernels    {:>12} per clip\n", ms(k));
    }
    if let Some(n) = &r.gpu_note {
        o += &format!("  note: {n}\n");
    }
    if let Some(l) = &r.librosa {
        o += &format!(
            "  librosa {} MFCC chain    {:>12} per clip\n",
            l.librosa,
            ms(l.mfcc_seconds_per_clip)
        );
    }
    if let Some(x) = r.cpu_speedup_vs_librosa {
        o += &format!("  CPU features vs librosa MFCC: {x:.1}x\n");
    }
    if let Some(x) = r.cpu_mfcc_speedup_vs_librosa {
        o += &format!("  CPU MFCC chain vs librosa MFCC: {x:.1}x\n");
    }
    if let Some(x) = r.gpu_speedup_vs_librosa {
        o += &format!("  GPU features vs librosa MFCC: {x:.1}x\n");
    }
    for n in [&r.seconds_note, &r.librosa_note].into_iter().flatten() {
        o += &format!("  note: {n}\n");
    }
    o
}
