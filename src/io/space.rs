//! Room left for a job's output: free bytes on a folder's file system and the memory the kernel
//! reports as available. Both are `None` where the system cannot say; callers then go on.

use std::path::Path;

/// Bytes an unprivileged user may still write on the file system holding `dir`.
#[cfg(unix)]
pub fn free_disk_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` is written by the call before it is read.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    // The field types differ between systems (u32 on macOS, u64 on 64-bit Linux).
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Bytes free on `dir`'s file system: not asked outside Unix (no `statvfs`), so unknown.
#[cfg(not(unix))]
pub fn free_disk_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// `MemAvailable` of `/proc/meminfo` in bytes: what a new allocation can have without swapping.
pub fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The available memory, when `need` bytes exceed it (`None`: it fits, or the system cannot
/// say): the one test of every up-front refusal of a size the machine cannot hold.
pub fn memory_short_of(need: f64) -> Option<u64> {
    available_memory_bytes().filter(|&avail| need > avail as f64)
}
