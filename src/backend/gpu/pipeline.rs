//! Kernels (a shader's entry point plus override constants) and the per-process pipeline cache:
//! each (shader, entry point, override constants) is compiled once, with the prelude in front
//! and the workgroup size set (see [`super::shader`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::shader::{Shader, WORKGROUP_SIZE};

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

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, Arc<wgpu::ComputePipeline>>>,
}

impl PipelineCache {
    pub fn get(&self, device: &wgpu::Device, k: &Kernel) -> Arc<wgpu::ComputePipeline> {
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
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(k.shader.name),
                        source: wgpu::ShaderSource::Wgsl(k.shader.source().into()),
                    })
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
