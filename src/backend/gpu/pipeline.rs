//! Shader sources (embedded at compile time) and the per-process pipeline cache: each
//! (shader, entry point, override constants) is compiled once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One WGSL file in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Elementwise,
    Matmul,
    Reduce,
    Softmax,
    Embed,
    Indrnn,
    Lstm,
    Optim,
    Topk,
    Fft,
    Audio,
    FftLong,
    Scattering,
}

impl Shader {
    pub const ALL: [Shader; 13] = [
        Shader::Elementwise,
        Shader::Matmul,
        Shader::Reduce,
        Shader::Softmax,
        Shader::Embed,
        Shader::Indrnn,
        Shader::Lstm,
        Shader::Optim,
        Shader::Topk,
        Shader::Fft,
        Shader::Audio,
        Shader::FftLong,
        Shader::Scattering,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shader::Elementwise => "elementwise",
            Shader::Matmul => "matmul",
            Shader::Reduce => "reduce",
            Shader::Softmax => "softmax",
            Shader::Embed => "embed",
            Shader::Indrnn => "indrnn",
            Shader::Lstm => "lstm",
            Shader::Optim => "optim",
            Shader::Topk => "topk",
            Shader::Fft => "fft",
            Shader::Audio => "audio",
            Shader::FftLong => "fft_long",
            Shader::Scattering => "scattering",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Shader::Elementwise => include_str!("../../../shaders/elementwise.wgsl"),
            Shader::Matmul => include_str!("../../../shaders/matmul.wgsl"),
            Shader::Reduce => include_str!("../../../shaders/reduce.wgsl"),
            Shader::Softmax => include_str!("../../../shaders/softmax.wgsl"),
            Shader::Embed => include_str!("../../../shaders/embed.wgsl"),
            Shader::Indrnn => include_str!("../../../shaders/indrnn.wgsl"),
            Shader::Lstm => include_str!("../../../shaders/lstm.wgsl"),
            Shader::Optim => include_str!("../../../shaders/optim.wgsl"),
            Shader::Topk => include_str!("../../../shaders/topk.wgsl"),
            Shader::Fft => include_str!("../../../shaders/fft.wgsl"),
            Shader::Audio => include_str!("../../../shaders/audio.wgsl"),
            Shader::FftLong => include_str!("../../../shaders/fft_long.wgsl"),
            Shader::Scattering => include_str!("../../../shaders/scattering.wgsl"),
        }
    }
}

/// A kernel: an entry point of a shader plus its pipeline-override constants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub shader: Shader,
    pub entry: &'static str,
    /// `(name, value)` pairs for WGSL `override` declarations; booleans are 0/1.
    pub constants: Vec<(&'static str, u32)>,
}

impl Kernel {
    pub fn new(shader: Shader, entry: &'static str) -> Self {
        Kernel {
            shader,
            entry,
            constants: Vec::new(),
        }
    }
    pub fn with(mut self, name: &'static str, value: u32) -> Self {
        self.constants.push((name, value));
        self
    }
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
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
                .entry(k.shader)
                .or_insert_with(|| {
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(k.shader.name()),
                        source: wgpu::ShaderSource::Wgsl(k.shader.source().into()),
                    })
                })
                .clone()
        };
        let constants: Vec<(&str, f64)> = k.constants.iter().map(|&(n, v)| (n, v as f64)).collect();
        let label = format!("{}::{}", k.shader.name(), k.entry);
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
