//! Writer locks: one run at a time writes a given output.
//!
//! [`OutputLock::acquire`] takes an advisory lock ([`std::fs::File::try_lock`], `flock` on
//! Unix) on a lock file beside the output, `dir/.NAME.lock`, which holds the holder's pid as
//! text. A second writer of the same output is refused at once with an error naming the output
//! and that pid. The lock, not the file's existence, is what counts: a lock file left by a killed
//! run is free and is simply reused. The lock is held until the value is dropped; the drop removes
//! the lock file while still holding the lock, and [`OutputLock::acquire`] re-checks after
//! locking that the path still names the file it locked, so a removal never lets two runs in.
//!
//! Holding the lock also means no other (cooperating) run is writing this output, so
//! [`OutputLock::acquire`] removes stale temporaries of the output (`.NAME.<pid>.tmp[.EXT]`,
//! see [`crate::io::AtomicFile`]) left by killed runs.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::IoError;

/// The lock files this process holds, for [`remove_held_lock_files`].
static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes the lock files of every lock this process holds, still holding the locks: for an
/// exit that skips the drops (a signal's `std::process::exit`), which left them behind. The
/// next run would take them over anyway; this keeps the folder tidy.
pub fn remove_held_lock_files() {
    if let Ok(held) = HELD.lock() {
        for p in held.iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An advisory lock on one output, released (and its lock file removed) on drop.
#[derive(Debug)]
pub struct OutputLock {
    output: PathBuf,
    lock: PathBuf,
    file: Option<File>,
}

/// The lock file of `output`: `.NAME.lock` in the same folder.
pub fn lock_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    output.with_file_name(format!(".{name}.lock"))
}

fn folder_of(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
fn same_file(f: &File, p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(p)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_f: &File, p: &Path) -> bool {
    p.exists()
}

impl OutputLock {
    /// Locks `output` for this run, or fails at once when another run holds it, naming the
    /// output and the holder's pid. The output's folder must exist.
    pub fn acquire(output: &Path) -> Result<OutputLock, IoError> {
        let dir = folder_of(output);
        if !dir.is_dir() {
            return Err(IoError::Format {
                path: output.to_path_buf(),
                reason: super::atomic::no_folder(dir),
            });
        }
        let lock = lock_path(output);
        // A few tries: the holder may remove the lock file between our open and our lock.
        for _ in 0..16 {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lock)
                .map_err(|e| IoError::io(&lock, e))?;
            // `File::try_lock`: stable since Rust 1.89, the crate's declared rust-version.
            let locked = f.try_lock();
            match locked {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = f.read_to_string(&mut text);
                    let pid = text.trim();
                    let holder = if pid.is_empty() {
                        "another ainrnn run".to_string()
                    } else {
                        format!("another ainrnn run (pid {pid})")
                    };
                    return Err(IoError::Locked {
                        path: output.to_path_buf(),
                        holder,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(IoError::io(&lock, e)),
            }
            if !same_file(&f, &lock) {
                continue; // removed by its previous holder after we opened it: start over
            }
            f.set_len(0)
                .and_then(|_| f.seek(SeekFrom::Start(0)))
                .and_then(|_| write!(f, "{}", std::process::id()))
                .and_then(|_| f.flush())
                .map_err(|e| IoError::io(&lock, e))?;
            remove_stale_temps(output);
            if let Ok(mut held) = HELD.lock() {
                held.push(lock.clone());
            }
            return Ok(OutputLock {
                output: output.to_path_buf(),
                lock,
                file: Some(f),
            });
        }
        Err(IoError::Locked {
            path: output.to_path_buf(),
            holder: "another ainrnn run".into(),
        })
    }

    /// The locked output.
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// The lock file.
    pub fn lock_file(&self) -> &Path {
        &self.lock
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still locked; closing the file then releases the lock.
        let _ = std::fs::remove_file(&self.lock);
        if let Ok(mut held) = HELD.lock() {
            if let Some(i) = held.iter().position(|p| *p == self.lock) {
                held.swap_remove(i);
            }
        }
        self.file = None;
    }
}

/// Whether `name` is a temporary of the output called `out_name` written by another process
/// than this one: `.OUT_NAME.<pid>.tmp` or `.OUT_NAME.<pid>.tmp.EXT`.
fn stale_temp_of(name: &str, out_name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(out_name))
        .and_then(|r| r.strip_prefix('.'))
    else {
        return false;
    };
    let Some((pid, tail)) = rest.split_once('.') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    (tail == "tmp" || tail.starts_with("tmp.")) && pid != std::process::id()
}

/// Removes the temporaries of `output` left by other (killed) runs. Call only while holding
/// the output's lock.
pub fn remove_stale_temps(output: &Path) {
    let Some(out_name) = output.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let Ok(rd) = std::fs::read_dir(folder_of(output)) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if stale_temp_of(&name, &out_name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_naming_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.ckpt");
        let held = OutputLock::acquire(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(lock_path(&out)).unwrap(),
            std::process::id().to_string()
        );
        let e = OutputLock::acquire(&out).unwrap_err().to_string();
        assert!(e.contains("out.ckpt"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        // Another output in the same folder is free.
        let other = OutputLock::acquire(&dir.path().join("other.ckpt")).unwrap();
        drop(other);
        drop(held);
        assert!(!lock_path(&out).exists(), "lock file removed on drop");
        let again = OutputLock::acquire(&out).unwrap();
        drop(again);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_stale_lock_file_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("store.h5");
        std::fs::write(lock_path(&out), "999999999").unwrap();
        let l = OutputLock::acquire(&out).unwrap();
        assert_eq!(
            std::fs::read_to_string(l.lock_file()).unwrap(),
            std::process::id().to_string()
        );
    }

    #[test]
    fn missing_folder_is_named() {
        let e = OutputLock::acquire(Path::new("/no/such/folder/x.h5"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/no/such/folder") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn stale_temps_of_the_output_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("d.h5");
        let stale = dir.path().join(".d.h5.4000000.tmp.h5");
        let stale2 = dir.path().join(".d.h5.12.tmp");
        let mine = dir
            .path()
            .join(format!(".d.h5.{}.tmp.h5", std::process::id()));
        let other = dir.path().join(".e.h5.12.tmp.h5");
        for p in [&stale, &stale2, &mine, &other] {
            std::fs::write(p, "x").unwrap();
        }
        let _l = OutputLock::acquire(&out).unwrap();
        assert!(!stale.exists() && !stale2.exists());
        assert!(mine.exists() && other.exists());
    }
}
