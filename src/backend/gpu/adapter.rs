//! Adapter discovery and selection, honouring `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and
//! `WGPU_POWER_PREF`. Kept apart from device creation so `ainrnn info` can list every adapter.

use serde::Serialize;

use crate::error::GpuError;

/// What wgpu reports about one adapter, in a printable form.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    /// True for software rasterizers such as Mesa's llvmpipe (lavapipe).
    pub software: bool,
}

impl AdapterSummary {
    pub fn from_info(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            software: info.device_type == wgpu::DeviceType::Cpu,
        }
    }
}

/// On a Linux machine without a desktop session, Mesa's device-select Vulkan layer and its EGL
/// look for a Wayland display while the adapters are listed and print `error: XDG_RUNTIME_DIR is
/// invalid or not set` several times: harmless, but it reads as a failure. Without a session
/// (no usable `XDG_RUNTIME_DIR`, no `WAYLAND_DISPLAY`, no `DISPLAY`) this turns the layer off
/// (`NODEVICE_SELECT`: it only orders the adapters, and ainrnn chooses its own) and sends EGL to
/// its surfaceless platform; a variable the user has set is left as it is.
///
/// It writes the environment, so call it first thing in `main`, before any thread starts.
pub fn quiet_headless_drivers() {
    let session = std::env::var_os("XDG_RUNTIME_DIR")
        .is_some_and(|d| std::path::Path::new(&d).is_dir())
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || std::env::var_os("DISPLAY").is_some();
    if session || !cfg!(target_os = "linux") {
        return;
    }
    for (name, value) in [("NODEVICE_SELECT", "1"), ("EGL_PLATFORM", "surfaceless")] {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }
}

/// The backends searched: `WGPU_BACKEND` when set (e.g. `vulkan`), else Vulkan, Metal, DX12.
/// OpenGL is left out by default: its compute support is too limited for these kernels.
pub fn backends_from_env() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

pub fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    // No validation layers by default (they are rarely installed and slow); WGPU_VALIDATION=1 turns
    // them on.
    desc.flags = wgpu::InstanceFlags::empty().with_env();
    wgpu::Instance::new(desc)
}

/// Every adapter of the searched backends.
pub fn enumerate(instance: &wgpu::Instance, backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(backends))
}

fn rank(t: wgpu::DeviceType, pref: wgpu::PowerPreference) -> u32 {
    use wgpu::DeviceType::*;
    match (t, pref) {
        (IntegratedGpu, wgpu::PowerPreference::LowPower) => 0,
        (DiscreteGpu, wgpu::PowerPreference::LowPower) => 1,
        (DiscreteGpu, _) => 0,
        (IntegratedGpu, _) => 1,
        (VirtualGpu, _) => 2,
        (Other, _) => 3,
        (Cpu, _) => 4,
    }
}

/// Picks the adapter: the one named by `WGPU_ADAPTER_NAME` (substring, case-insensitive), else the
/// best by `WGPU_POWER_PREF` (default high-performance: discrete, integrated, virtual, software).
pub fn choose(
    adapters: Vec<wgpu::Adapter>,
    backends: wgpu::Backends,
) -> Result<wgpu::Adapter, GpuError> {
    if adapters.is_empty() {
        return Err(GpuError::NoAdapter {
            backends: format!("{backends:?}"),
        });
    }
    if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
        let want = name.to_lowercase();
        let seen: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&want))
            .ok_or(GpuError::NoMatchingAdapter {
                name,
                seen: seen.join(", "),
            });
    }
    let pref = wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance);
    let mut adapters = adapters;
    adapters.sort_by_key(|a| rank(a.get_info().device_type, pref));
    Ok(adapters.remove(0))
}
