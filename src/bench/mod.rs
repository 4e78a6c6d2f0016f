//! `ainrnn bench`: speed measured in one run, GPU against CPU (and, for later stages, against the
//! reference libraries when they are installed). No timings live in the tests.

pub mod data;
pub mod features;
pub mod limits;
pub mod ops;
pub mod report;
pub mod scattering;
pub mod train;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::gpu::GpuBackend;
use crate::backend::{Backend, BackendKind, OpResult};

/// How a time was measured.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// Wall clock around the call (CPU backend).
    Wall,
    /// GPU timestamp queries summed over the kernels' compute passes.
    GpuTimestamps,
    /// Wall clock from first dispatch to the end of a device sync (no timestamp support).
    WallAfterSync,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Measured {
    /// Seconds per repetition.
    pub seconds: f64,
    pub timing: Timing,
    pub reps: u32,
    /// Wall clock per repetition including submission and sync (GPU only).
    pub wall_seconds: f64,
}

/// Times `f` on backend `b`: one warm-up call (pipeline compilation, pool fill), on a GPU more
/// warm-up calls for a quarter of a second (half of `min_seconds` at most), one timed call
/// to size the loop, then enough repetitions to fill `min_seconds` (at most 50).
///
/// Why the longer warm-up on a GPU: an idle GPU runs at low clocks and takes a moment to raise
/// them; the H200's first report timed the 4096³ product at 6.9 TFLOP/s and a later run at 13.7.
pub fn measure<B: Backend>(
    b: &B,
    gpu: Option<&GpuBackend>,
    min_seconds: f64,
    mut f: impl FnMut() -> OpResult<()>,
) -> OpResult<Measured> {
    let t0 = Instant::now();
    f()?;
    b.sync()?;
    let warm = (min_seconds * 0.5).min(0.25);
    // A call that alone lasts the warm-up (a large product on lavapipe) needs no other.
    if b.kind() == BackendKind::Gpu && t0.elapsed().as_secs_f64() < warm {
        let t1 = Instant::now();
        while t1.elapsed().as_secs_f64() < warm {
            f()?;
            b.sync()?;
        }
    }
    let t0 = Instant::now();
    f()?;
    b.sync()?;
    let one = t0.elapsed().as_secs_f64().max(1e-6);
    let reps = ((min_seconds / one).ceil() as u32).clamp(1, 50);
    let timed = match (b.kind(), gpu) {
        (BackendKind::Gpu, Some(g)) => g.context().timer_start()?,
        _ => false,
    };
    let t0 = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    b.sync()?;
    let wall = t0.elapsed().as_secs_f64() / reps as f64;
    let kernel = match (timed, gpu) {
        (true, Some(g)) => g.context().timer_stop()?.map(|(d, _)| d),
        _ => None,
    };
    let (seconds, timing) = match (b.kind(), kernel) {
        (BackendKind::Cpu, _) => (wall, Timing::Wall),
        (BackendKind::Gpu, Some(d)) if d > Duration::ZERO => {
            (d.as_secs_f64() / reps as f64, Timing::GpuTimestamps)
        }
        (BackendKind::Gpu, _) => (wall, Timing::WallAfterSync),
    };
    Ok(Measured {
        seconds,
        timing,
        reps,
        wall_seconds: wall,
    })
}

/// The first Python that imports `module`: `given` alone when set, else the first of
/// `candidates` (virtualenv interpreters, then `python3`). `Err`: why there is none, one line
/// for the bench's note (`hint` follows it when no Python was given).
pub fn python_with(
    module: &str,
    given: Option<&str>,
    candidates: &[&str],
    hint: &str,
) -> Result<String, String> {
    let import = |p: &str| {
        std::process::Command::new(p)
            .args(["-c", &format!("import {module}")])
            .output()
    };
    match given {
        Some(p) => match import(p) {
            Err(e) => Err(format!("--python {p}: cannot run it ({e})")),
            Ok(o) if !o.status.success() => Err(format!("--python {p}: cannot import {module}")),
            Ok(_) => Ok(p.to_string()),
        },
        None => candidates
            .iter()
            .find(|p| import(p).is_ok_and(|o| o.status.success()))
            .map(|p| p.to_string())
            .ok_or_else(|| {
                format!(
                    "{module} not importable by {} ({hint})",
                    candidates.join(", ")
                )
            }),
    }
}

/// Runs a reference script (`cmd` is `python script args…`) and parses the JSON object it prints
/// on stdout; a failure names the interpreter, the script and the last line of its stderr.
pub fn run_json<T: serde::de::DeserializeOwned>(
    cmd: &mut std::process::Command,
    python: &str,
    script: &std::path::Path,
) -> Result<T, String> {
    let out = cmd.output().map_err(|e| format!("running {python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{python} {}: {}",
            script.display(),
            err.lines().last().unwrap_or("failed")
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{} output: {e}", script.display()))
}

/// Creates the virtualenv `venv` (unless it exists) and pip-installs `packages` into it, for
/// `--install-reference`; returns its interpreter.
pub fn make_venv(venv: &str, packages: &[&str]) -> Result<String, String> {
    use std::process::Command;
    let python = format!("{venv}/bin/python");
    if !std::path::Path::new(&python).exists() {
        let st = Command::new("python3")
            .args(["-m", "venv", venv])
            .status()
            .map_err(|e| format!("python3 -m venv: {e}"))?;
        if !st.success() {
            return Err(format!("python3 -m venv {venv} failed"));
        }
    }
    let st = Command::new(format!("{venv}/bin/pip"))
        .args(["install", "-q"])
        .args(packages)
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !st.success() {
        return Err(format!("pip install {} failed", packages.join(" ")));
    }
    Ok(python)
}

#[cfg(test)]
mod tests {
    use super::python_with;

    /// The reason a bench gives for its missing reference names what went wrong: a given
    /// interpreter that does not run, or the candidates tried and how to get one.
    #[test]
    fn a_missing_python_is_explained() {
        let e = python_with("sys", Some("/nonexistent/python"), &["python3"], "hint").unwrap_err();
        assert!(
            e.starts_with("--python /nonexistent/python: cannot run it"),
            "{e}"
        );
        assert!(!e.contains("hint"), "{e}");
        let e = python_with(
            "sys",
            None,
            &["/nonexistent/a", "/nonexistent/b"],
            "pass --x",
        )
        .unwrap_err();
        assert_eq!(
            e,
            "sys not importable by /nonexistent/a, /nonexistent/b (pass --x)"
        );
    }
}
