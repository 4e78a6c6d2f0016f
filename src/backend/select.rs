//! Choosing the backend for a run: `--backend auto|cpu|gpu`.
//!
//! `auto` takes a hardware GPU when there is one. A software rasterizer (Mesa's llvmpipe) is a
//! real Vulkan device but slower than the CPU backend on the same cores, so `auto` passes it
//! over with a note; `--backend gpu` uses it (that is how CI runs the GPU tests).

use super::cpu::CpuBackend;
use super::gpu::context::env_switch;
use super::gpu::{GpuBackend, FUSED_TABLE_ENV};
use crate::error::GpuError;

/// The user's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendChoice {
    #[default]
    Auto,
    Cpu,
    Gpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(BackendChoice::Auto),
            "cpu" => Ok(BackendChoice::Cpu),
            "gpu" => Ok(BackendChoice::Gpu),
            other => Err(format!(
                "unknown backend {other:?} (expected auto, cpu or gpu)"
            )),
        }
    }
}

/// The backend a run uses.
#[derive(Clone, Debug)]
pub enum Selected {
    Cpu(CpuBackend),
    Gpu(GpuBackend),
}

impl Selected {
    pub fn name(&self) -> &'static str {
        match self {
            Selected::Cpu(_) => "cpu",
            Selected::Gpu(_) => "gpu",
        }
    }
}

/// Resolves the choice. The returned note (for `auto` falling back to the CPU) is meant for a
/// one-line message on stderr.
pub fn select(choice: BackendChoice) -> Result<(Selected, Option<String>), GpuError> {
    match choice {
        BackendChoice::Cpu => Ok((Selected::Cpu(cpu()?), None)),
        BackendChoice::Gpu => Ok((Selected::Gpu(GpuBackend::new()?), None)),
        BackendChoice::Auto => match GpuBackend::new() {
            Ok(g) if !g.context().adapter.software => Ok((Selected::Gpu(g), None)),
            Ok(g) => Ok((
                Selected::Cpu(cpu()?),
                Some(format!(
                    "only a software GPU adapter was found ({}); using the CPU backend (pass --backend gpu to use it anyway)",
                    g.context().adapter.name
                )),
            )),
            // A setting given wrongly is the user's to fix, not a reason to use the CPU.
            Err(e @ GpuError::Env { .. }) => Err(e),
            Err(e) => Ok((
                Selected::Cpu(cpu()?),
                Some(format!("no GPU adapter ({e}); using the CPU backend")),
            )),
        },
    }
}

/// The CPU backend of a run, its song table's step fused when [`FUSED_TABLE_ENV`] says so.
pub fn cpu() -> Result<CpuBackend, GpuError> {
    let c = CpuBackend::new();
    Ok(match env_switch(FUSED_TABLE_ENV)? {
        Some(on) => c.with_fused_table(on),
        None => c,
    })
}

/// For the benches that time the CPU and, when one opens, the GPU (`--backend auto`): the GPU,
/// or a note saying why there is none. A wrong setting ([`crate::backend::gpu::TUNE_ENV`]) is
/// an error, not a reason to leave the GPU out.
pub fn bench_gpu() -> Result<(Option<GpuBackend>, Option<String>), GpuError> {
    match GpuBackend::new() {
        Ok(g) => Ok((Some(g), None)),
        Err(e @ GpuError::Env { .. }) => Err(e),
        Err(e) => Ok((None, Some(format!("no GPU adapter ({e}); CPU only")))),
    }
}

/// Runs a generic expression with the selected backend bound to `$b`:
/// `with_backend!(selected, b => train(&b, ...))`.
#[macro_export]
macro_rules! with_backend {
    ($sel:expr, $b:ident => $body:expr) => {
        match $sel {
            $crate::backend::select::Selected::Cpu($b) => $body,
            $crate::backend::select::Selected::Gpu($b) => $body,
        }
    };
}
