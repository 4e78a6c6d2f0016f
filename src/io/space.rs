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

/// Bytes the calling user may still write on the volume holding `dir`.
#[cfg(windows)]
pub fn free_disk_bytes(dir: &Path) -> Option<u64> {
    use std::os::windows::ffi::OsStrExt;
    let wide: Vec<u16> = dir.as_os_str().encode_wide().chain(Some(0)).collect();
    let mut avail = 0u64;
    // SAFETY: `wide` is NUL-terminated; `avail` is written by the call; the two totals, not
    // wanted, may be null.
    let ok = unsafe {
        windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW(
            wide.as_ptr(),
            &mut avail,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    (ok != 0).then_some(avail)
}

/// Bytes free on `dir`'s file system: unknown on other systems.
#[cfg(not(any(unix, windows)))]
pub fn free_disk_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// Bytes a new allocation can have without swapping or being killed: `MemAvailable` of
/// `/proc/meminfo`, or less where the process's control group has a memory limit (a container
/// with `--memory`, a systemd slice): there the kernel's OOM killer acts at the group's limit,
/// whatever the machine has free.
#[cfg(target_os = "linux")]
pub fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let machine = kib.saturating_mul(1024);
    let group = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|c| cgroup_room(Path::new("/sys/fs/cgroup"), &c));
    Some(group.map_or(machine, |g| g.min(machine)))
}

/// Bytes a new allocation can have without paging: the physical memory Windows reports as
/// available (`GlobalMemoryStatusEx`'s `ullAvailPhys`: free, zeroed and standby pages).
#[cfg(windows)]
pub fn available_memory_bytes() -> Option<u64> {
    use windows_sys::Win32::System::SystemInformation::{GlobalMemoryStatusEx, MEMORYSTATUSEX};
    // SAFETY: all-zero bytes are a valid MEMORYSTATUSEX (plain integers).
    let mut st: MEMORYSTATUSEX = unsafe { std::mem::zeroed() };
    st.dwLength = std::mem::size_of::<MEMORYSTATUSEX>() as u32;
    // SAFETY: `st` is a MEMORYSTATUSEX with its length set, as the call requires.
    let ok = unsafe { GlobalMemoryStatusEx(&mut st) };
    (ok != 0).then_some(st.ullAvailPhys)
}

/// Bytes a new allocation can have without paging, as macOS's Activity Monitor counts them
/// roughly: free, inactive and purgeable pages (`host_statistics64`), times the page size.
#[cfg(target_os = "macos")]
pub fn available_memory_bytes() -> Option<u64> {
    // SAFETY: all-zero bytes are a valid vm_statistics64 (plain integers).
    let mut st: libc::vm_statistics64 = unsafe { std::mem::zeroed() };
    let mut count = libc::HOST_VM_INFO64_COUNT;
    // SAFETY: `st` has room for `count` integers, the count the call is given; it writes at
    // most that many and sets `count` to what it wrote. `mach_host_self` has no preconditions.
    #[allow(deprecated)]
    let rc = unsafe {
        libc::host_statistics64(
            libc::mach_host_self(),
            libc::HOST_VM_INFO64,
            (&mut st as *mut libc::vm_statistics64).cast(),
            &mut count,
        )
    };
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if rc != libc::KERN_SUCCESS || page <= 0 {
        return None;
    }
    let pages = st.free_count as u64 + st.inactive_count as u64 + st.purgeable_count as u64;
    Some(pages.saturating_mul(page as u64))
}

/// Available memory: unknown on other systems.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub fn available_memory_bytes() -> Option<u64> {
    None
}

/// Room under the memory limits of the control groups in `proc_cgroup` (the text of
/// `/proc/self/cgroup`), read below `root` (`/sys/fs/cgroup`): the least of limit − usage over
/// the group and its ancestors (a parent's limit binds its children). cgroup v2 (`0::/path`:
/// `memory.max`, `memory.current`) and v1 (`N:memory:/path`: `memory.limit_in_bytes`,
/// `memory.usage_in_bytes`). `None` when no group has a limit. In a container the group's path
/// may not exist under `root` (its own group is mounted as the root): then `root` is read.
pub fn cgroup_room(root: &Path, proc_cgroup: &str) -> Option<u64> {
    let mut room: Option<u64> = None;
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (base, limit_file, usage_file) = if ctrl.is_empty() {
            (root.to_path_buf(), "memory.max", "memory.current")
        } else if ctrl.split(',').any(|c| c == "memory") {
            (
                root.join("memory"),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        let mut dir = base.join(rel);
        if !dir.is_dir() {
            dir = base.clone();
        }
        loop {
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
            // "max" (v2) or a huge number (v1's "no limit", 2^63 rounded to pages): no limit.
            let limit = read(limit_file).and_then(|t| t.trim().parse::<u64>().ok());
            if let Some(limit) = limit.filter(|&l| l < 1 << 60) {
                let used = read(usage_file)
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                let r = limit.saturating_sub(used);
                room = Some(room.map_or(r, |x| x.min(r)));
            }
            if dir == base || !dir.pop() || !dir.starts_with(&base) {
                break;
            }
        }
    }
    room
}

/// The available memory, when `need` bytes exceed it (`None`: it fits, or the system cannot
/// say): the one test of every up-front refusal of a size the machine cannot hold.
pub fn memory_short_of(need: f64) -> Option<u64> {
    available_memory_bytes().filter(|&avail| need > avail as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn cgroup_room_reads_v2_and_v1_limits_and_their_ancestors() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        // v2: the group unlimited, its parent limited to 3 GB with 1 GB used.
        write(&root.join("a/b/memory.max"), "max\n");
        write(&root.join("a/b/memory.current"), "5\n");
        write(&root.join("a/memory.max"), "3000000000\n");
        write(&root.join("a/memory.current"), "1000000000\n");
        assert_eq!(cgroup_room(root, "0::/a/b\n"), Some(2_000_000_000));
        // The group's own, tighter limit wins.
        write(&root.join("a/b/memory.max"), "1500000000\n");
        write(&root.join("a/b/memory.current"), "500000000\n");
        assert_eq!(cgroup_room(root, "0::/a/b\n"), Some(1_000_000_000));
        // A container: its group's path is not mounted; the root is its own group.
        write(&root.join("memory.max"), "800\n");
        write(&root.join("memory.current"), "300\n");
        assert_eq!(cgroup_room(root, "0::/elsewhere\n"), Some(500));
        // v1, with other controllers listed, and "no limit".
        let v1 = "4:memory:/p/q\n3:cpu,cpuacct:/p/q\n";
        write(
            &root.join("memory/p/q/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(&root.join("memory/p/q/memory.usage_in_bytes"), "10\n");
        write(&root.join("memory/p/memory.limit_in_bytes"), "1000\n");
        write(&root.join("memory/p/memory.usage_in_bytes"), "400\n");
        assert_eq!(cgroup_room(root, v1), Some(600));
        // No limit anywhere: unknown.
        write(
            &root.join("memory/p/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        assert_eq!(cgroup_room(root, v1), None);
        assert_eq!(cgroup_room(root, "2:cpu:/x\n"), None);
        // Usage above the limit: no room, not an underflow.
        write(&root.join("memory/p/memory.limit_in_bytes"), "100\n");
        assert_eq!(cgroup_room(root, v1), Some(0));
    }
}
