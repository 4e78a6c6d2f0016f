//! `ainrnn bench scattering`: seconds per clip for the scattering transform on the CPU and the
//! GPU, and Kymatio-numpy's time on the same clip when a Python with Kymatio 0.3 is available,
//! all measured in one run. Also reports how close the results are (CPU vs Kymatio, GPU vs CPU)
//! on that full-length clip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use super::{measure, Timing};
use crate::audio::scattering::{Scattering, ScatteringConfig};
use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::GpuBackend;
use crate::backend::Backend;
use crate::error::{Error, IoError};

/// The bundled real clip the benchmark uses by default (30 s, 22,050 Hz, 16-bit mono).
pub const DEFAULT_WAV: &str = "data/audio/singularity_awakening_30s.wav";
/// Where `--install-reference` puts its virtual environment by default.
pub const DEFAULT_VENV: &str = ".venv-kymatio";
/// Kymatio 0.3.0 predates numpy 2 and imports `scipy.special.sph_harm` (gone in SciPy 1.17).
pub const REFERENCE_PINS: [&str; 3] = ["kymatio==0.3.0", "numpy==1.26.4", "scipy==1.11.4"];
const KYMATIO_SCRIPT: &str = include_str!("scattering_kymatio.py");
const SAMPLE_RATE: u32 = 22_050;

#[derive(Clone, Debug)]
pub struct Options {
    pub seconds: f64,
    pub cfg: ScatteringConfig,
    pub min_seconds: f64,
    pub wav: Option<PathBuf>,
    /// Python interpreter with Kymatio (else: `.venv-kymatio`, `.venv-ref`, `python3`).
    pub python: Option<PathBuf>,
    /// Skip the Kymatio measurement.
    pub no_reference: bool,
}

#[derive(Debug, Serialize)]
pub struct KymatioTiming {
    pub python: String,
    pub kymatio: String,
    pub numpy: String,
    pub build_seconds: f64,
    pub seconds: f64,
    pub reps: u32,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub source: String,
    pub audio_seconds: f64,
    pub n_samples: usize,
    pub j: u32,
    pub q: u32,
    pub n_padded: usize,
    pub paths: usize,
    pub frames: usize,
    /// Building the filter bank (once per signal length), CPU.
    pub plan_seconds: f64,
    pub cpu: String,
    pub cpu_seconds: f64,
    pub cpu_reps: u32,
    pub gpu: Option<String>,
    pub gpu_note: Option<String>,
    /// Kernel time (timestamps) when supported, else wall clock after a sync.
    pub gpu_seconds: Option<f64>,
    pub gpu_timing: Option<Timing>,
    pub gpu_wall_seconds: Option<f64>,
    pub kymatio: Option<KymatioTiming>,
    pub kymatio_note: Option<String>,
    /// Kymatio time / CPU time, both from this run.
    pub cpu_speedup_vs_kymatio: Option<f64>,
    pub gpu_speedup_vs_kymatio: Option<f64>,
    pub gpu_speedup_vs_cpu: Option<f64>,
    /// Relative L2 error of the CPU result against Kymatio's on this clip.
    pub cpu_vs_kymatio_rel_l2: Option<f64>,
    pub gpu_vs_cpu_rel_l2: Option<f64>,
}

fn rd(path: &Path, b: &[u8], at: usize, len: usize) -> Result<u32, IoError> {
    let s = b.get(at..at + len).ok_or_else(|| IoError::Format {
        path: path.to_path_buf(),
        reason: format!("truncated WAV header at byte {at}"),
    })?;
    Ok(s.iter().rev().fold(0u32, |a, &x| (a << 8) | x as u32))
}

/// A 16-bit PCM WAV file as mono samples in [-1, 1) (int16 / 32768, channels averaged).
/// Enough for the bundled clips; the audio pipeline has the general decoder.
pub fn read_wav_pcm16(path: &Path) -> Result<(Vec<f32>, u32), IoError> {
    let b = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    let bad = |reason: String| IoError::Format {
        path: path.to_path_buf(),
        reason,
    };
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file".into()));
    }
    let (mut pos, mut fmt) = (12usize, None);
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = rd(path, &b, pos + 4, 4)? as usize;
        let body = pos + 8;
        if id == b"fmt " {
            let format = rd(path, &b, body, 2)?;
            let channels = rd(path, &b, body + 2, 2)?;
            let rate = rd(path, &b, body + 4, 4)?;
            let bits = rd(path, &b, body + 14, 2)?;
            if format != 1 || bits != 16 || channels == 0 {
                return Err(bad(format!(
                    "only 16-bit PCM is read here (format {format}, {bits} bits, {channels} channels)"
                )));
            }
            fmt = Some((channels as usize, rate));
        } else if id == b"data" {
            let (ch, rate) = fmt.ok_or_else(|| bad("data chunk before fmt chunk".into()))?;
            let end = (body + len).min(b.len());
            let s: Vec<f32> = b[body..end]
                .chunks_exact(2 * ch)
                .map(|f| {
                    f.chunks_exact(2)
                        .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
                        .sum::<f32>()
                        / ch as f32
                })
                .collect();
            return Ok((s, rate));
        }
        pos = body + len + (len & 1);
    }
    Err(bad("no data chunk".into()))
}

/// The benchmark signal: the WAV (looped when shorter than asked), else a synthetic one.
fn signal(opts: &Options, n: usize) -> Result<(Vec<f32>, String), Error> {
    let path = opts.wav.clone().unwrap_or_else(|| {
        let local = PathBuf::from(DEFAULT_WAV);
        if local.exists() {
            local
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_WAV)
        }
    });
    if !path.exists() && opts.wav.is_none() {
        // Content does not change the speed; say plainly that it is generated.
        let x = (0..n)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                    + 0.1 * (2.0 * std::f32::consts::PI * 3520.0 * t).sin()
            })
            .collect();
        return Ok((
            x,
            "synthetic two-tone signal (bundled WAV not found)".into(),
        ));
    }
    let (wav, rate) = read_wav_pcm16(&path)?;
    if wav.is_empty() {
        return Err(IoError::Format {
            path,
            reason: "no samples".into(),
        }
        .into());
    }
    let mut label = format!("{} ({rate} Hz, real audio)", path.display());
    if wav.len() < n {
        label.push_str(&format!(", looped to {n} samples"));
    }
    Ok(((0..n).map(|i| wav[i % wav.len()]).collect(), label))
}

/// The interpreter to run Kymatio with: the given one, else the first of `.venv-kymatio`,
/// `.venv-ref` and `python3` that imports it (else `python3`, whose failure is then reported).
pub fn find_python(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    let venv = format!("{DEFAULT_VENV}/bin/python");
    super::python_with(
        "kymatio",
        None,
        &[&venv, ".venv-ref/bin/python", "python3"],
        "",
    )
    .map_or_else(|_| PathBuf::from("python3"), PathBuf::from)
}

/// Creates `venv` with Kymatio 0.3.0 and its pinned dependencies (PyPI).
pub fn install_reference(venv: &Path) -> Result<PathBuf, Error> {
    eprintln!(
        "installing {} into {}",
        REFERENCE_PINS.join(" "),
        venv.display()
    );
    super::make_venv(&venv.to_string_lossy(), &REFERENCE_PINS)
        .map(PathBuf::from)
        .map_err(Error::Other)
}

/// Runs the Kymatio timing script; `Err` carries a one-line reason to report.
fn kymatio(
    python: &Path,
    x: &[f32],
    cfg: ScatteringConfig,
    min_seconds: f64,
) -> Result<(KymatioTiming, Vec<f32>), String> {
    let dir = std::env::temp_dir();
    let tag = format!("ainrnn-scattering-{}", std::process::id());
    let input = dir.join(format!("{tag}.in.f32"));
    let output = dir.join(format!("{tag}.out.f32"));
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input, bytes).map_err(|e| format!("{}: {e}", input.display()))?;
    let res = Command::new(python)
        .arg("-c")
        .arg(KYMATIO_SCRIPT)
        .arg(&input)
        .arg(cfg.j.to_string())
        .arg(cfg.q.to_string())
        .arg(min_seconds.to_string())
        .arg(&output)
        .output();
    let _ = std::fs::remove_file(&input);
    let out = res.map_err(|e| format!("running {}: {e}", python.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(line).map_err(|_| {
        format!(
            "{} failed: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("no output")
        )
    })?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(format!(
            "{}: {e} (create one with `ainrnn bench scattering --install-reference`)",
            python.display()
        ));
    }
    let coef = std::fs::read(&output).map_err(|e| format!("{}: {e}", output.display()))?;
    let _ = std::fs::remove_file(&output);
    let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    Ok((
        KymatioTiming {
            python: format!("{} ({})", python.display(), s("python")),
            kymatio: s("kymatio"),
            numpy: s("numpy"),
            build_seconds: v["build_seconds"].as_f64().unwrap_or(f64::NAN),
            seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
            reps: v["reps"].as_u64().unwrap_or(0) as u32,
        },
        coef.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    ))
}

fn rel_l2(got: &[f32], want: &[f32]) -> Option<f64> {
    if got.len() != want.len() {
        return None;
    }
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (g as f64 - w as f64).powi(2);
        den += (w as f64).powi(2);
    }
    Some((num / den.max(f64::MIN_POSITIVE)).sqrt())
}

/// Measures the CPU, the GPU when given, and Kymatio when importable, on one clip.
pub fn run(
    opts: &Options,
    gpu: Option<GpuBackend>,
    gpu_note: Option<String>,
) -> Result<Report, Error> {
    let n = (opts.seconds * SAMPLE_RATE as f64).round() as usize;
    let (x, source) = signal(opts, n)?;
    let t0 = Instant::now();
    let plan = Scattering::new(opts.cfg, n)?;
    let plan_seconds = t0.elapsed().as_secs_f64();
    eprintln!(
        "scattering J={} Q={}: {n} samples padded to {}, {} paths x {} frames (plan {:.2} s)",
        opts.cfg.j,
        opts.cfg.q,
        plan.n_padded(),
        plan.n_paths(),
        plan.n_frames(),
        plan_seconds
    );

    let cpu = CpuBackend::new();
    let xc = cpu.upload_f32(&x, &[1, n])?;
    let c = measure(&cpu, None, opts.min_seconds, || {
        plan.transform(&cpu, &xc).map(drop)
    })?;
    let cpu_out = cpu.to_f32(&plan.transform(&cpu, &xc)?)?;
    eprintln!("  cpu  {:.3} s per clip", c.seconds);

    let (mut gm, mut gpu_out) = (None, None);
    if let Some(g) = &gpu {
        let xg = g.upload_f32(&x, &[1, n])?;
        let m = measure(g, Some(g), opts.min_seconds, || {
            plan.transform(g, &xg).map(drop)
        })?;
        eprintln!(
            "  gpu  {:.3} s per clip ({:.3} s wall)",
            m.seconds, m.wall_seconds
        );
        gpu_out = Some(g.to_f32(&plan.transform(g, &xg)?)?);
        gm = Some(m);
    }

    let (mut ky, mut ky_note, mut ky_out) = (None, None, None);
    if opts.no_reference {
        ky_note = Some("--no-reference: Kymatio not measured".into());
    } else {
        let py = find_python(opts.python.as_deref());
        eprintln!("  kymatio via {} ...", py.display());
        match kymatio(&py, &x, opts.cfg, opts.min_seconds) {
            Ok((t, out)) => {
                eprintln!("  kymatio {:.3} s per clip", t.seconds);
                ky = Some(t);
                ky_out = Some(out);
            }
            Err(e) => ky_note = Some(e),
        }
    }

    Ok(Report {
        source,
        audio_seconds: n as f64 / SAMPLE_RATE as f64,
        n_samples: n,
        j: opts.cfg.j,
        q: opts.cfg.q,
        n_padded: plan.n_padded(),
        paths: plan.n_paths(),
        frames: plan.n_frames(),
        plan_seconds,
        cpu: cpu.describe(),
        cpu_seconds: c.seconds,
        cpu_reps: c.reps,
        gpu: gpu.as_ref().map(|g| g.describe()),
        gpu_note,
        gpu_seconds: gm.map(|m| m.seconds),
        gpu_timing: gm.map(|m| m.timing),
        gpu_wall_seconds: gm.map(|m| m.wall_seconds),
        cpu_speedup_vs_kymatio: ky.as_ref().map(|k| k.seconds / c.seconds),
        gpu_speedup_vs_kymatio: match (&ky, gm) {
            (Some(k), Some(m)) => Some(k.seconds / m.seconds),
            _ => None,
        },
        gpu_speedup_vs_cpu: gm.map(|m| c.seconds / m.seconds),
        cpu_vs_kymatio_rel_l2: ky_out.as_ref().and_then(|k| rel_l2(&cpu_out, k)),
        gpu_vs_cpu_rel_l2: gpu_out.as_ref().and_then(|g| rel_l2(g, &cpu_out)),
        kymatio: ky,
        kymatio_note: ky_note,
    })
}

/// The text printed by `ainrnn bench scattering`.
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "scattering J={} Q={} on {:.1} s of {}",
        r.j, r.q, r.audio_seconds, r.source
    );
    let _ = writeln!(
        s,
        "  {} samples padded to {}; output {} paths x {} frames; filter bank built in {:.2} s (once per length)",
        r.n_samples, r.n_padded, r.paths, r.frames, r.plan_seconds
    );
    let _ = writeln!(
        s,
        "| implementation | seconds per clip | vs Kymatio |\n|---|---:|---:|"
    );
    let vs = |v: Option<f64>| v.map(|x| format!("{x:.1}x")).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        s,
        "| CPU: {} | {:.3} | {} |",
        r.cpu,
        r.cpu_seconds,
        vs(r.cpu_speedup_vs_kymatio)
    );
    match (&r.gpu, r.gpu_seconds) {
        (Some(name), Some(sec)) => {
            let how = match r.gpu_timing {
                Some(Timing::GpuTimestamps) => format!(
                    "kernels; {:.3} s wall",
                    r.gpu_wall_seconds.unwrap_or(f64::NAN)
                ),
                _ => "wall after sync".into(),
            };
            let _ = writeln!(
                s,
                "| GPU: {name} | {sec:.3} ({how}) | {} |",
                vs(r.gpu_speedup_vs_kymatio)
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "| GPU | - ({}) | - |",
                r.gpu_note.as_deref().unwrap_or("not measured")
            );
        }
    }
    match &r.kymatio {
        Some(k) => {
            let _ = writeln!(
                s,
                "| Kymatio {} numpy {} ({}) | {:.3} | 1.0x |",
                k.kymatio, k.numpy, k.python, k.seconds
            );
        }
        None => {
            let _ = writeln!(
                s,
                "| Kymatio | - ({}) | - |",
                r.kymatio_note.as_deref().unwrap_or("not measured")
            );
        }
    }
    if let Some(e) = r.cpu_vs_kymatio_rel_l2 {
        let _ = writeln!(s, "CPU vs Kymatio on this clip: relative L2 error {e:.2e}");
    }
    if let Some(e) = r.gpu_vs_cpu_rel_l2 {
        let _ = writeln!(s, "GPU vs CPU on this clip: relative L2 error {e:.2e}");
    }
    s
}
