//! `ainrnn info`: the adapters wgpu sees, the one chosen, its limits and timestamp support.

use serde::Serialize;

use crate::backend::gpu::adapter::{self, AdapterSummary};
use crate::backend::gpu::context::POISON_ENV;
use crate::backend::gpu::memory::DeviceMemory;
use crate::backend::gpu::{GpuBackend, FUSED_TABLE_ENV, SHADER_CHECKS_ENV, TUNE_ENV};
use crate::backend::model_ops::ModelOps;

#[derive(Debug, Serialize)]
pub struct ChosenAdapter {
    #[serde(flatten)]
    pub adapter: AdapterSummary,
    pub timestamp_queries: bool,
    /// Whether the matmul tuner runs (hardware adapters, unless `AINRNN_MATMUL_TUNE` says
    /// otherwise).
    pub matmul_tuning: bool,
    /// Whether buffers for kernels to write start as NaN (`AINRNN_GPU_POISON`, a test aid).
    pub poisoned_buffers: bool,
    /// Whether the song table's optimizer step forms its gradient in the tile on this GPU
    /// (hardware adapters, unless `AINRNN_FUSED_TABLE` says otherwise).
    pub fused_table: bool,
    /// The runtime checks naga compiles into the kernels (`all`, `bounds`, `none`;
    /// `AINRNN_SHADER_CHECKS`, default `bounds`).
    pub shader_checks: &'static str,
    /// The largest device-local heap and the budget its driver grants (Vulkan; on Metal the
    /// recommended working set; on DX12 DXGI's local budget; `null` on GL). Training refuses a
    /// model larger than what is left of it.
    pub memory: Option<DeviceMemory>,
    pub limits: Limits,
}

/// The device limits that matter to the kernels.
#[derive(Debug, Serialize)]
pub struct Limits {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
}

/// An adapter `info` lists, and whether its backend is among those searched (only those can
/// be chosen).
#[derive(Debug, Serialize)]
pub struct SeenAdapter {
    #[serde(flatten)]
    pub adapter: AdapterSummary,
    pub searched: bool,
}

#[derive(Debug, Serialize)]
pub struct Info {
    pub version: &'static str,
    /// Backends searched (`WGPU_BACKEND`, default Vulkan/Metal/DX12).
    pub searched_backends: String,
    pub env: EnvVars,
    /// Every adapter of every backend compiled in, searched or not.
    pub adapters: Vec<SeenAdapter>,
    pub chosen: Option<ChosenAdapter>,
    /// Why no adapter could be opened, if so.
    pub gpu_error: Option<String>,
    /// What `--backend auto` resolves to on this machine.
    pub auto_backend: &'static str,
    pub cpu_threads: usize,
}

#[derive(Debug, Serialize)]
pub struct EnvVars {
    #[serde(rename = "WGPU_BACKEND")]
    pub wgpu_backend: Option<String>,
    #[serde(rename = "WGPU_ADAPTER_NAME")]
    pub wgpu_adapter_name: Option<String>,
    #[serde(rename = "WGPU_POWER_PREF")]
    pub wgpu_power_pref: Option<String>,
    #[serde(rename = "AINRNN_MATMUL_TUNE")]
    pub matmul_tune: Option<String>,
    #[serde(rename = "AINRNN_GPU_POISON")]
    pub gpu_poison: Option<String>,
    #[serde(rename = "AINRNN_FUSED_TABLE")]
    pub fused_table: Option<String>,
    #[serde(rename = "AINRNN_SHADER_CHECKS")]
    pub shader_checks: Option<String>,
}

pub fn collect() -> Info {
    let searched = adapter::backends_from_env();
    let all = wgpu::Backends::all();
    let instance = adapter::new_instance(all);
    let adapters: Vec<SeenAdapter> = adapter::enumerate(&instance, all)
        .iter()
        .map(|a| {
            let info = a.get_info();
            SeenAdapter {
                searched: searched.contains(wgpu::Backends::from(info.backend)),
                adapter: AdapterSummary::from_info(&info),
            }
        })
        .collect();
    let (chosen, gpu_error) = match GpuBackend::new() {
        Ok(g) => {
            let ctx = g.context();
            (
                Some(ChosenAdapter {
                    adapter: ctx.adapter.clone(),
                    timestamp_queries: ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY),
                    matmul_tuning: g.matmul_tuning(),
                    poisoned_buffers: ctx.poisons(),
                    fused_table: g.fused_table(),
                    shader_checks: ctx.shader_checks().name(),
                    memory: ctx.memory(),
                    limits: Limits {
                        max_buffer_size: ctx.limits.max_buffer_size,
                        max_storage_buffer_binding_size: ctx.limits.max_storage_buffer_binding_size,
                        max_storage_buffers_per_shader_stage: ctx
                            .limits
                            .max_storage_buffers_per_shader_stage,
                        max_compute_workgroup_storage_size: ctx
                            .limits
                            .max_compute_workgroup_storage_size,
                        max_compute_invocations_per_workgroup: ctx
                            .limits
                            .max_compute_invocations_per_workgroup,
                        max_compute_workgroups_per_dimension: ctx
                            .limits
                            .max_compute_workgroups_per_dimension,
                    },
                }),
                None,
            )
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let auto_backend = match &chosen {
        Some(c) if !c.adapter.software => "gpu",
        _ => "cpu",
    };
    Info {
        version: env!("CARGO_PKG_VERSION"),
        searched_backends: format!("{searched:?}"),
        env: EnvVars {
            wgpu_backend: std::env::var("WGPU_BACKEND").ok(),
            wgpu_adapter_name: std::env::var("WGPU_ADAPTER_NAME").ok(),
            wgpu_power_pref: std::env::var("WGPU_POWER_PREF").ok(),
            matmul_tune: std::env::var(TUNE_ENV).ok(),
            gpu_poison: std::env::var(POISON_ENV).ok(),
            fused_table: std::env::var(FUSED_TABLE_ENV).ok(),
            shader_checks: std::env::var(SHADER_CHECKS_ENV).ok(),
        },
        adapters,
        chosen,
        gpu_error,
        auto_backend,
        cpu_threads: rayon::current_num_threads(),
    }
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
}

/// The chosen adapter's memory as its driver reports it, and what training is checked against.
fn memory_line(c: &ChosenAdapter) -> String {
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
    let mut line = match c.memory {
        None => "not reported by this backend".to_string(),
        Some(m) => {
            let budget = match (m.budget_bytes, m.used_bytes) {
                (Some(b), Some(u)) => format!(", budget {}, {} used", gib(b), gib(u)),
                _ => ", no budget reported".to_string(),
            };
            format!("largest device-local heap {}{budget}", gib(m.heap_bytes))
        }
    };
    if c.adapter.software {
        line += "; a software adapter: its buffers are host memory, and models are checked against that";
    } else if c.memory.is_none() {
        line += " (models are not checked against it)";
    }
    line
}

/// Human-readable report.
pub fn render(info: &Info) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "ainrnn {}", info.version);
    let _ = writeln!(s, "searched backends: {}", info.searched_backends);
    let _ = writeln!(s, "adapters seen ({}):", info.adapters.len());
    for seen in &info.adapters {
        let a = &seen.adapter;
        let _ = writeln!(
            s,
            "  - {} [{} / {}] driver: {} {}{}{}",
            a.name,
            a.backend,
            a.device_type,
            a.driver,
            a.driver_info,
            if a.software { " (software)" } else { "" },
            if seen.searched {
                ""
            } else {
                " (backend not searched: not chosen)"
            }
        );
    }
    match (&info.chosen, &info.gpu_error) {
        (Some(c), _) => {
            let _ = writeln!(
                s,
                "chosen: {} ({}, {})",
                c.adapter.name, c.adapter.backend, c.adapter.device_type
            );
            let _ = writeln!(
                s,
                "  timestamp queries: {}; matmul tuner: {}; song table's step: {}; shader checks: {}{}",
                if c.timestamp_queries { "yes" } else { "no" },
                if c.matmul_tuning { "on" } else { "off" },
                if c.fused_table {
                    "fused"
                } else {
                    "gradient formed"
                },
                c.shader_checks,
                if c.poisoned_buffers {
                    "; buffers poisoned with NaN (AINRNN_GPU_POISON)"
                } else {
                    ""
                }
            );
            let _ = writeln!(s, "  device memory: {}", memory_line(c));
            let l = &c.limits;
            let _ = writeln!(
                s,
                "  max buffer: {}, max storage binding: {}",
                mib(l.max_buffer_size),
                mib(l.max_storage_buffer_binding_size)
            );
            let _ = writeln!(
                s,
                "  storage buffers/stage: {}, workgroup memory: {} B, invocations/workgroup: {}, workgroups/dim: {}",
                l.max_storage_buffers_per_shader_stage,
                l.max_compute_workgroup_storage_size,
                l.max_compute_invocations_per_workgroup,
                l.max_compute_workgroups_per_dimension
            );
        }
        (None, Some(e)) => {
            let _ = writeln!(s, "chosen: none ({e})");
        }
        (None, None) => {}
    }
    let _ = writeln!(s, "--backend auto uses: {}", info.auto_backend);
    let _ = writeln!(s, "cpu threads: {}", info.cpu_threads);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(software: bool, memory: Option<DeviceMemory>) -> ChosenAdapter {
        ChosenAdapter {
            adapter: AdapterSummary {
                name: "a GPU".into(),
                backend: "Vulkan".into(),
                device_type: "DiscreteGpu".into(),
                driver: String::new(),
                driver_info: String::new(),
                software,
            },
            timestamp_queries: false,
            matmul_tuning: false,
            poisoned_buffers: false,
            fused_table: false,
            shader_checks: "bounds",
            memory,
            limits: Limits {
                max_buffer_size: 0,
                max_storage_buffer_binding_size: 0,
                max_storage_buffers_per_shader_stage: 0,
                max_compute_workgroup_storage_size: 0,
                max_compute_invocations_per_workgroup: 0,
                max_compute_workgroups_per_dimension: 0,
            },
        }
    }

    /// The line says what training checks a model against: the budget, the heap, the host's
    /// memory (a software adapter, whatever it reports), or nothing.
    #[test]
    fn the_memory_line_says_what_models_are_checked_against() {
        let m = DeviceMemory {
            heap_bytes: 80 << 30,
            budget_bytes: Some(79 << 30),
            used_bytes: Some(1 << 29),
        };
        assert_eq!(
            memory_line(&chosen(false, Some(m))),
            "largest device-local heap 80.0 GiB, budget 79.0 GiB, 0.5 GiB used"
        );
        let heap = DeviceMemory {
            budget_bytes: None,
            used_bytes: None,
            ..m
        };
        assert_eq!(
            memory_line(&chosen(false, Some(heap))),
            "largest device-local heap 80.0 GiB, no budget reported"
        );
        assert_eq!(
            memory_line(&chosen(false, None)),
            "not reported by this backend (models are not checked against it)"
        );
        for memory in [None, Some(heap)] {
            let line = memory_line(&chosen(true, memory));
            assert!(line.ends_with("models are checked against that"), "{line}");
        }
    }
}
