//! Kernels (a shader's entry point plus override constants) and the per-process pipeline cache:
//! each (shader, entry point, override constants) is compiled once, with the prelude in front
//! and the workgroup size set (see [`super::shader`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::shader::{Shader, WORKGROUP_SIZE};
use super::GpuError;

/// A kernel: an entry point of a shader plus its pipeline-override constants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub shader: &'static Shader,
    pub entry: &'static str,
    /// `(name, value)` pairs for WGSL `override` declarations; booleans are 0/1.
    pub constants: Vec<(&'static str, u32)>,
}

impl Kernel {
    pub fn new(shader: &'static Shader, entry: &'static str) -> Self {
        Kernel {
            shader,
            entry,
            constants: Vec::new(),
        }
    }
    /// Sets an override the shader declares (see [`Shader::overrides`]).
    pub fn with(mut self, name: &'static str, value: u32) -> Self {
        assert!(
            self.shader.overrides.contains(&name),
            "{}::{}: override {name} is not declared in the shader's interface",
            self.shader.name,
            self.entry
        );
        self.constants.push((name, value));
        self
    }
}

/// Which of naga's runtime checks the kernels are compiled with ([`SHADER_CHECKS_ENV`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ShaderChecks {
    /// wgpu's default: every index into an array clamped, integer division guarded, and every
    /// loop given a 64-bit iteration counter that ends it after 2⁶⁴ turns.
    All,
    /// The clamps and division guards without the loop counters (the default). The counter
    /// in every inner loop (a matmul's k loop, a reduction's stride loop) costs each turn an
    /// add and a compare and can keep a driver from unrolling the loop, while every loop of
    /// the kernels ends at a bound taken from shapes checked on the host; a wrong index still
    /// reads inside its array.
    #[default]
    Bounds,
    /// No checks at all: also no clamp per workgroup-memory read. An index past a workgroup
    /// array is then undefined behaviour (on NVIDIA a fault that loses the device), so this is
    /// measured by the GPU report beside the others before it could become a default.
    None,
}

/// `AINRNN_SHADER_CHECKS=all|bounds|none`: which runtime checks naga compiles into the kernels
/// (see [`ShaderChecks`]; default `bounds`). Buffer accesses stay bounded by the device's
/// robust buffer access, which wgpu enables, whatever this says.
pub const SHADER_CHECKS_ENV: &str = "AINRNN_SHADER_CHECKS";

impl ShaderChecks {
    pub const ALL: [ShaderChecks; 3] =
        [ShaderChecks::All, ShaderChecks::Bounds, ShaderChecks::None];

    pub fn name(self) -> &'static str {
        match self {
            ShaderChecks::All => "all",
            ShaderChecks::Bounds => "bounds",
            ShaderChecks::None => "none",
        }
    }

    /// The setting [`SHADER_CHECKS_ENV`] asks for, if it is set.
    pub fn from_env() -> Result<Option<Self>, GpuError> {
        let Ok(v) = std::env::var(SHADER_CHECKS_ENV) else {
            return Ok(None);
        };
        Self::ALL
            .into_iter()
            .find(|c| c.name() == v.trim())
            .map(Some)
            .ok_or(GpuError::Env {
                var: SHADER_CHECKS_ENV,
                value: v,
                expected: "all, bounds or none",
            })
    }

    fn runtime_checks(self) -> wgpu::ShaderRuntimeChecks {
        let all = wgpu::ShaderRuntimeChecks::checked();
        match self {
            ShaderChecks::All => all,
            ShaderChecks::Bounds => wgpu::ShaderRuntimeChecks {
                force_loop_bounding: false,
                ..all
            },
            ShaderChecks::None => wgpu::ShaderRuntimeChecks::unchecked(),
        }
    }
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, Arc<wgpu::ComputePipeline>>>,
}

impl PipelineCache {
    /// The pipeline of `k`, compiled at its first use with `checks` (the same for every call on
    /// one device).
    pub fn get(
        &self,
        device: &wgpu::Device,
        k: &Kernel,
        checks: ShaderChecks,
    ) -> Arc<wgpu::ComputePipeline> {
        if let Some(p) = self
            .pipelines
            .lock()
            .expect("pipeline cache poisoned")
            .get(k)
        {
            return p.clone();
        }
        let module = {
            let mut modules = self.modules.lock().expect("module cache poisoned");
            modules
                .entry(k.shader.name)
                .or_insert_with(|| {
                    let desc = wgpu::ShaderModuleDescriptor {
                        label: Some(k.shader.name),
                        source: wgpu::ShaderSource::Wgsl(k.shader.source().into()),
                    };
                    // SAFETY: without the loop counters a loop that never ends is undefined
                    // behaviour on the device, and with `None` so is an index past an array.
                    // Every kernel ends each loop at a bound taken from shapes checked on the
                    // host before it is dispatched (`backend::check`), bounds its indices by
                    // them, and is tested against the CPU twin under each setting; buffer
                    // accesses stay bounded by the robust buffer access wgpu enables.
                    unsafe { device.create_shader_module_trusted(desc, checks.runtime_checks()) }
                })
                .clone()
        };
        let constants: Vec<(&str, f64)> = std::iter::once(("WG", WORKGROUP_SIZE as f64))
            .chain(k.constants.iter().map(|&(n, v)| (n, v as f64)))
            .collect();
        let label = format!("{}::{}", k.shader.name, k.entry);
        let pipeline = Arc::new(
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: None,
                module: &module,
                entry_point: Some(k.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    // Every kernel initialises the workgroup memory it reads.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            }),
        );
        self.pipelines
            .lock()
            .expect("pipeline cache poisoned")
            .insert(k.clone(), pipeline.clone());
        pipeline
    }

    pub fn len(&self) -> usize {
        self.pipelines.lock().map(|p| p.len()).unwrap_or(0)
    }
}
