//! Atomic output files: everything the program writes goes to a hidden temporary file beside
//! the output and is renamed over it only when complete, so an interrupted run never leaves a
//! half-written file where a finished one was. A temporary left by a killed run is removed by
//! the next run that takes the output's lock ([`crate::io::lock`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::IoError;

/// A temporary file standing in for `path` until [`AtomicFile::commit`].
///
/// The temporary is `dir/.NAME.<pid>.tmp.EXT` (`EXT` = the output's extension, omitted when it
/// has none): same folder, so the rename stays on one file system; the real extension last,
/// because some writers (plotters) pick the format from it. Dropped without a commit, the
/// temporary is removed.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    temp: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Reserves the temporary name for `path`; creates nothing (the caller's writer does).
    pub fn new(path: &Path) -> Self {
        let temp = temp_path(path);
        live().push(temp.clone());
        AtomicFile {
            path: path.to_path_buf(),
            temp,
            committed: false,
        }
    }

    /// The final output.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file to write into.
    pub fn temp(&self) -> &Path {
        &self.temp
    }

    /// Syncs the temporary to disk and renames it over the output. Whoever wrote the temporary
    /// must have closed it. On failure the temporary is removed (by drop).
    pub fn commit(mut self) -> Result<(), IoError> {
        std::fs::File::open(&self.temp)
            .and_then(|f| f.sync_all())
            .map_err(|e| IoError::io(&self.path, e))?;
        std::fs::rename(&self.temp, &self.path).map_err(|e| IoError::io(&self.path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
        let mut l = live();
        if let Some(i) = l.iter().position(|t| t == &self.temp) {
            l.swap_remove(i);
        }
    }
}

/// The temporaries of every [`AtomicFile`] alive in this process.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the temporaries of every [`AtomicFile`] not yet committed or dropped; for a process
/// about to exit on a signal, whose destructors will not run. Returns how many were removed.
pub fn remove_live_temps() -> usize {
    live()
        .drain(..)
        .filter(|t| std::fs::remove_file(t).is_ok())
        .count()
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp{ext}", std::process::id()))
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let out = AtomicFile::new(path);
    std::fs::File::create(out.temp())
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| IoError::io(path, e))?;
    out.commit()
}

/// Fails early, naming the path, when the folder of an output file does not exist.
pub fn check_output(path: &Path) -> Result<(), IoError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "cannot write here: the folder {} does not exist",
                dir.display()
            ),
        });
    }
    if path.is_dir() {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: "is a folder; give a file name".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_name_keeps_the_extension_last() {
        let t = AtomicFile::new(Path::new("out/plot.png"));
        let name = t.temp().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!(".plot.png.{}.tmp.png", std::process::id()));
        assert_eq!(t.temp().parent(), Some(Path::new("out")));
        let t = AtomicFile::new(Path::new("triplets"));
        let name = t.temp().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!(".triplets.{}.tmp", std::process::id()));
    }

    #[test]
    fn commit_replaces_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let t = AtomicFile::new(&p);
        std::fs::write(t.temp(), b"half").unwrap();
        drop(t);
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
