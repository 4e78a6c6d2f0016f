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
use crate::backend::audio::{AudioOps, AudioPlan};
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::GpuBackend;
use crate::backend::Backend;
use crate::error::{Error, IoError};

#[derive(Clone, Debug, Serialize)]
pub struct LibrosaTiming {
    pub python: String,
    pub librosa: String,
    /// Seconds per clip for melspectrogram + mfcc + delta + delta-delta (numpy's default threads).
    pub mfcc_seconds_per_clip: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FeaturesBench {
    pub clips: usize,
    pub clip_seconds: f64,
    pub files: Vec<String>,
    pub decode_seconds_per_clip: f64,
    pub cpu_seconds_per_clip: f64,
    /// The CPU path for the same chain librosa is timed on (STFT, mel, dB, MFCC, two deltas).
    pub cpu_mfcc_seconds_per_clip: f64,
    pub cpu_threads: usize,
    pub gpu: Option<String>,
    /// Wall clock per clip, upload to read-back.
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

fn time_features<B: AudioOps>(b: &B, clips: &[&[f32]]) -> Result<f64, Error> {
    let plan = AudioPlan::new(b)?;
    // Warm-up: pipeline compilation, pool, realfft plans.
    extract_batch(b, &plan, &clips[..1], None)?;
    let t0 = Instant::now();
    extract_batch(b, &plan, clips, None)?;
    b.sync()?;
    Ok(t0.elapsed().as_secs_f64() / clips.len() as f64)
}

/// Times the MFCC chain alone (what librosa is timed on) on the CPU.
fn time_mfcc(clips: &[&[f32]]) -> Result<f64, Error> {
    use crate::audio::{n_frames, AMIN, DELTA_WIDTH, TOP_DB};
    let b = CpuBackend::new();
    let plan = AudioPlan::new(&b)?;
    let len = clips.iter().map(|c| c.len()).max().unwrap_or(0);
    let mut pcm = vec![0f32; clips.len() * len];
    for (row, c) in pcm.chunks_exact_mut(len.max(1)).zip(clips) {
        row[..c.len()].copy_from_slice(c);
    }
    let valid: Vec<u32> = clips.iter().map(|c| n_frames(c.len()) as u32).collect();
    let t0 = Instant::now();
    let x = b.upload_f32(&pcm, &[clips.len(), len])?;
    let v = b.upload_u32(&valid, &[clips.len()])?;
    let power = b.stft_power(&plan, &x, &v, n_frames(len))?;
    let db = b.power_to_db(&b.mel_spectrogram(&plan, &power)?, AMIN, TOP_DB)?;
    let mfcc = b.matmul(&plan.dct, &db, false, false)?;
    b.delta(&mfcc, &v, DELTA_WIDTH, 1)?;
    b.delta(&mfcc, &v, DELTA_WIDTH, 2)?;
    Ok(t0.elapsed().as_secs_f64() / clips.len() as f64)
}

/// Times librosa with `python` on `files`, or says why not.
fn librosa(
    python: &str,
    script: &Path,
    files: &[PathBuf],
    seconds: f64,
) -> Result<LibrosaTiming, String> {
    let out = Command::new(python)
        .arg(script)
        .arg("--seconds")
        .arg(seconds.to_string())
        .args(files)
        .output()
        .map_err(|e| format!("running {python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{python} {}: {}",
            script.display(),
            err.lines().last().unwrap_or("failed")
        ));
    }
    #[derive(serde::Deserialize)]
    struct R {
        librosa: String,
        mfcc_seconds_per_clip: f64,
    }
    let r: R =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("bench_librosa.py output: {e}"))?;
    Ok(LibrosaTiming {
        python: python.to_string(),
        librosa: r.librosa,
        mfcc_seconds_per_clip: r.mfcc_seconds_per_clip,
    })
}

/// Picks a Python that imports librosa: the given one, `.venv-bench`, `.venv`, then `python3`.
pub fn find_python(given: Option<&str>) -> Option<String> {
    let candidates: Vec<String> = match given {
        Some(p) => vec![p.to_string()],
        None => vec![
            ".venv-bench/bin/python".into(),
            ".venv/bin/python".into(),
            "python3".into(),
        ],
    };
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import librosa"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Creates `.venv-bench` with librosa 0.11 (for `--install-reference`).
pub fn install_reference() -> Result<String, String> {
    let st = Command::new("python3")
        .args(["-m", "venv", ".venv-bench"])
        .status()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !st.success() {
        return Err("python3 -m venv .venv-bench failed".into());
    }
    let st = Command::new(".venv-bench/bin/pip")
        .args(["install", "-q", "librosa==0.11.*"])
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !st.success() {
        return Err("pip install librosa failed".into());
    }
    Ok(".venv-bench/bin/python".into())
}

/// Runs the benchmark. `gpu` is measured when given.
pub fn run(
    data: &Path,
    n: usize,
    clip_seconds: f64,
    gpu: Option<GpuBackend>,
    gpu_note: Option<String>,
    python: Option<String>,
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
    let cpu = time_features(&CpuBackend::new(), &clips)?;
    let cpu_mfcc = time_mfcc(&clips)?;
    let (mut gpu_s, mut kernel_s, mut gpu_name) = (None, None, None);
    if let Some(g) = &gpu {
        gpu_name = Some(g.describe());
        gpu_s = Some(time_features(g, &clips)?);
        let plan = AudioPlan::new(g)?;
        if g.context().timer_start()? {
            extract_batch(g, &plan, &clips, None)?;
            if let Some((d, _)) = g.context().timer_stop()? {
                kernel_s = Some(d.as_secs_f64() / clips.len() as f64);
            }
        }
    }
    let (lib, lib_note) = match python {
        Some(py) => match librosa(&py, script, &files, clip_seconds) {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(e)),
        },
        None => (
            None,
            Some("librosa not importable (pass --install-reference to create .venv-bench)".into()),
        ),
    };
    let ratio = |ours: Option<f64>| match (&lib, ours) {
        (Some(l), Some(o)) if o > 0.0 => Some(l.mfcc_seconds_per_clip / o),
        _ => None,
    };
    Ok(FeaturesBench {
        clips: files.len(),
        clip_seconds,
        files: files.iter().map(|f| f.display().to_string()).collect(),
        decode_seconds_per_clip: decode,
        cpu_seconds_per_clip: cpu,
        cpu_mfcc_seconds_per_clip: cpu_mfcc,
        cpu_threads: rayon::current_num_threads(),
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
        "bench features: {} clips of {:.0} s ({} CPU threads)\n",
        r.clips, r.clip_seconds, r.cpu_threads
    );
    o += &format!(
        "  decode + resample        {:>12} per clip\n",
        ms(r.decode_seconds_per_clip)
    );
    o += &format!(
        "  features, CPU            {:>12} per clip\n",
        ms(r.cpu_seconds_per_clip)
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
    if let Some(n) = &r.librosa_note {
        o += &format!("  note: {n}\n");
    }
    o
}
