//! How much device memory a GPU has and how much of it this process may still take. wgpu has no
//! API for it, so this asks the driver through wgpu's Vulkan layer: the device-local heaps'
//! sizes, and, where the driver has `VK_EXT_memory_budget` (NVIDIA, AMD, Intel and Mesa's
//! drivers), the budget the driver grants this process in each heap (which accounts for other
//! processes) and what the process uses of it; on Metal, the device's recommended working set
//! and what the process has allocated; on DX12, DXGI's budget and use of the local segment
//! group. GL reports nothing, and every check that uses this then skips, as before.

use serde::Serialize;

/// The largest device-local heap of an adapter, and its budget where the driver reports one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceMemory {
    /// The heap's size.
    pub heap_bytes: u64,
    /// What the driver says this process may use in the heap, in all (`VK_EXT_memory_budget`).
    pub budget_bytes: Option<u64>,
    /// What this process uses in the heap now (`VK_EXT_memory_budget`).
    pub used_bytes: Option<u64>,
}

impl DeviceMemory {
    /// What the process may still allocate, with `idle` bytes of its own that it can reuse
    /// (the buffer pool's idle buffers count as used to the driver): the budget less what is
    /// used, else the heap's size.
    pub fn available(&self, idle: u64) -> u64 {
        match (self.budget_bytes, self.used_bytes) {
            (Some(budget), Some(used)) => budget
                .saturating_sub(used.saturating_sub(idle))
                .min(self.heap_bytes),
            _ => self.heap_bytes,
        }
    }
}

/// The adapter's device memory, or `None` where the backend cannot say.
pub fn device_memory(adapter: &wgpu::Adapter) -> Option<DeviceMemory> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        vulkan(adapter)
    }
    #[cfg(windows)]
    {
        vulkan(adapter).or_else(|| dx12(adapter))
    }
    #[cfg(target_vendor = "apple")]
    {
        metal(adapter)
    }
    #[cfg(not(any(
        windows,
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple"
    )))]
    {
        let _ = adapter;
        None
    }
}

/// Metal has no heaps to list: the device's recommended working set (beyond which Metal says
/// it is overcommitted) stands for the heap and the budget, its allocated size for the use.
#[cfg(target_vendor = "apple")]
fn metal(adapter: &wgpu::Adapter) -> Option<DeviceMemory> {
    use objc2_metal::MTLDevice;
    // SAFETY: two read-only queries of the device; the guard is dropped before returning.
    let hal = unsafe { adapter.as_hal::<wgpu::hal::api::Metal>() }?;
    let device = hal.raw_device();
    let set = device.recommendedMaxWorkingSetSize();
    (set > 0).then(|| DeviceMemory {
        heap_bytes: set,
        budget_bytes: Some(set),
        used_bytes: Some(device.currentAllocatedSize() as u64),
    })
}

/// DXGI's figures for the adapter's local memory (the card's own; an integrated GPU's share of
/// the host's): the budget the OS grants the process and its use of it; the heap is the
/// adapter's dedicated video memory, or the budget where that is smaller (integrated GPUs
/// report little or none).
#[cfg(windows)]
fn dx12(adapter: &wgpu::Adapter) -> Option<DeviceMemory> {
    use windows::Win32::Graphics::Dxgi::DXGI_MEMORY_SEGMENT_GROUP_LOCAL;
    // SAFETY: two read-only queries of the adapter; the guard is dropped before returning.
    let hal = unsafe { adapter.as_hal::<wgpu::hal::api::Dx12>() }?;
    let raw = hal.raw_adapter();
    let info = raw
        .query_video_memory_info(DXGI_MEMORY_SEGMENT_GROUP_LOCAL)
        .ok()?;
    // SAFETY: a plain query of a live adapter.
    let dedicated = unsafe { raw.GetDesc1() }.map_or(0, |d| d.DedicatedVideoMemory as u64);
    (info.Budget > 0).then(|| DeviceMemory {
        heap_bytes: dedicated.max(info.Budget),
        budget_bytes: Some(info.Budget),
        used_bytes: Some(info.CurrentUsage),
    })
}

/// Picks the largest device-local heap, with its budget and usage when given.
#[cfg_attr(
    not(any(windows, target_os = "linux", target_os = "android")),
    allow(dead_code)
)]
fn largest_local(heaps: &[(u64, bool)], budget: Option<(&[u64], &[u64])>) -> Option<DeviceMemory> {
    let (i, &(heap_bytes, _)) = heaps
        .iter()
        .enumerate()
        .filter(|(_, (size, local))| *local && *size > 0)
        .max_by_key(|(_, (size, _))| *size)?;
    let budget = budget.and_then(|(b, u)| Some((*b.get(i)?, *u.get(i)?)));
    // A budget of 0 means the driver filled nothing in.
    let budget = budget.filter(|&(b, _)| b > 0);
    Some(DeviceMemory {
        heap_bytes,
        budget_bytes: budget.map(|(b, _)| b),
        used_bytes: budget.map(|(_, u)| u),
    })
}

#[cfg(any(windows, target_os = "linux", target_os = "android"))]
fn vulkan(adapter: &wgpu::Adapter) -> Option<DeviceMemory> {
    use ash::vk;
    // SAFETY: only queries of the physical device are made through the handle; nothing is
    // created or destroyed, and the guard is dropped before the function returns.
    let hal = unsafe { adapter.as_hal::<wgpu::hal::api::Vulkan>() }?;
    let instance = hal.shared_instance();
    let raw = instance.raw_instance();
    let phys = hal.raw_physical_device();
    let caps = hal.physical_device_capabilities();
    // `vkGetPhysicalDeviceMemoryProperties2` is core in Vulkan 1.1, for both the instance and the
    // device; the budget needs the device extension as well.
    let v11 = instance.instance_api_version() >= vk::API_VERSION_1_1
        && caps.properties().api_version >= vk::API_VERSION_1_1;
    let with_budget = v11 && caps.supports_extension(ash::ext::memory_budget::NAME);
    let mut budget = vk::PhysicalDeviceMemoryBudgetPropertiesEXT::default();
    let props = if with_budget {
        let mut props2 = vk::PhysicalDeviceMemoryProperties2::default().push_next(&mut budget);
        // SAFETY: a valid physical device of this instance, and a well-formed chain.
        unsafe { raw.get_physical_device_memory_properties2(phys, &mut props2) };
        props2.memory_properties
    } else {
        // SAFETY: as above.
        unsafe { raw.get_physical_device_memory_properties(phys) }
    };
    let count = (props.memory_heap_count as usize).min(props.memory_heaps.len());
    let heaps: Vec<(u64, bool)> = props.memory_heaps[..count]
        .iter()
        .map(|h| (h.size, h.flags.contains(vk::MemoryHeapFlags::DEVICE_LOCAL)))
        .collect();
    let budget = with_budget.then_some((&budget.heap_budget[..count], &budget.heap_usage[..count]));
    largest_local(&heaps, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_device_local_heap_is_the_one_reported() {
        // A discrete card: a host heap, the 256 MiB BAR window, the card's memory.
        let heaps = [(32 << 30, false), (256 << 20, true), (8 << 30, true)];
        let m = largest_local(&heaps, None).expect("a device-local heap");
        assert_eq!(m.heap_bytes, 8 << 30);
        assert_eq!((m.budget_bytes, m.used_bytes), (None, None));
        assert_eq!(m.available(0), 8 << 30);
        let (budget, used) = ([30 << 30, 200 << 20, 7 << 30], [0, 0, 2 << 30]);
        let m = largest_local(&heaps, Some((&budget, &used))).expect("a device-local heap");
        assert_eq!(
            (m.budget_bytes, m.used_bytes),
            (Some(7 << 30), Some(2 << 30))
        );
        assert_eq!(m.available(0), 5 << 30);
        // Idle pooled buffers are the process's to reuse; never more than the heap.
        assert_eq!(m.available(1 << 30), 6 << 30);
        assert_eq!(m.available(u64::MAX), 7 << 30);
        // No device-local heap, or an empty one: nothing to say.
        assert_eq!(largest_local(&[(1 << 30, false), (0, true)], None), None);
        // A budget the driver left at 0 is no budget.
        let m = largest_local(&heaps, Some((&[0, 0, 0], &[0, 0, 0]))).expect("a device-local heap");
        assert_eq!(m.budget_bytes, None);
    }
}
