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
        // The rename would put a regular file where a device (/dev/null) or a pipe was.
        if let Some(kind) = special_file(&self.path) {
            return Err(not_a_regular_file(&self.path, kind));
        }
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

/// What `path` is when it exists and is neither a regular file, a folder nor a symbolic link:
/// "a character device" (/dev/null), "a block device", "a named pipe" or "a socket". An atomic
/// output cannot go there: its rename would replace the device or pipe with a regular file.
pub fn special_file(path: &Path) -> Option<&'static str> {
    let t = std::fs::symlink_metadata(path).ok()?.file_type();
    if t.is_file() || t.is_dir() || t.is_symlink() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return Some("a character device");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
        if t.is_fifo() {
            return Some("a named pipe");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// The error for an output that is a [`special_file`].
pub fn not_a_regular_file(path: &Path, kind: &str) -> IoError {
    IoError::Format {
        path: path.to_path_buf(),
        reason: format!(
            "is {kind}, not a regular file: outputs are written to a temporary and renamed over the file, which would replace it; give a file name"
        ),
    }
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

/// Writes queued or running in every [`BackgroundWriter`], and whether the process is
/// stopping on a signal (no new write is then taken): see [`settle_background_writes`].
static BACKGROUND: Mutex<(usize, bool)> = Mutex::new((0, false));
static BACKGROUND_DONE: std::sync::Condvar = std::sync::Condvar::new();

fn background() -> std::sync::MutexGuard<'static, (usize, bool)> {
    BACKGROUND.lock().unwrap_or_else(|p| p.into_inner())
}

/// One write handed over is no longer pending (written, failed or never taken).
fn background_done() {
    background().0 -= 1;
    BACKGROUND_DONE.notify_all();
}

/// For a process about to exit on a signal: stops every later [`BackgroundWriter::write`] (its
/// caller waits for the exit) and waits (at most `timeout`) for the writes already handed
/// over, so an epoch that finished before the signal keeps its checkpoint. Returns how many
/// were still pending when it gave up (0: all landed).
pub fn settle_background_writes(timeout: std::time::Duration) -> usize {
    let mut g = background();
    g.1 = true;
    let (g, _) = BACKGROUND_DONE
        .wait_timeout_while(g, timeout, |(pending, _)| *pending > 0)
        .unwrap_or_else(|p| p.into_inner());
    g.0
}

/// Writes files atomically ([`write_atomic`]) on a thread of its own, in the order given, so a
/// training loop goes on with its next epoch while the last one's checkpoint (tens of MB, and
/// an fsync per file) reaches the disk. One write runs at a time and [`Self::write`] waits for
/// the one before to be taken, so at most two payloads are held. A failed write is returned by
/// the next call or by [`Self::finish`]; dropped, the writer still waits for its writes. On a
/// signal the CLI lets the writes already handed over land ([`settle_background_writes`]).
pub struct BackgroundWriter {
    tx: Option<std::sync::mpsc::SyncSender<(PathBuf, std::sync::Arc<Vec<u8>>)>>,
    thread: Option<std::thread::JoinHandle<Result<(), IoError>>>,
}

impl BackgroundWriter {
    pub fn new() -> Self {
        // Rendezvous: a send completes when the thread takes it, i.e. once the write before it
        // is done.
        let (tx, rx) = std::sync::mpsc::sync_channel::<(PathBuf, std::sync::Arc<Vec<u8>>)>(0);
        let thread = std::thread::spawn(move || {
            for (path, bytes) in rx {
                let written = write_atomic(&path, &bytes);
                background_done();
                // A failure ends the thread: later sends fail and return it (see `write`).
                written?;
            }
            Ok(())
        });
        BackgroundWriter {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queues `bytes` for `path` (after every earlier write); returns an earlier write's error.
    pub fn write(&mut self, path: &Path, bytes: std::sync::Arc<Vec<u8>>) -> Result<(), IoError> {
        {
            let mut g = background();
            if g.1 {
                // The process exits on a signal once the earlier writes land: this caller waits
                // for that exit, reporting nothing more (an epoch reported is one kept), and
                // returns no error that would race the signal's exit with its own.
                drop(g);
                loop {
                    std::thread::park();
                }
            }
            g.0 += 1;
        }
        let sent = match &self.tx {
            Some(tx) => tx.send((path.to_path_buf(), bytes)).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        background_done();
        // The thread stopped: a write failed (or it is finished).
        self.join()?;
        Err(IoError::io(
            path,
            std::io::Error::other("the background writer has stopped"),
        ))
    }

    /// Waits for every queued write; returns the first error.
    pub fn finish(mut self) -> Result<(), IoError> {
        self.join()
    }

    fn join(&mut self) -> Result<(), IoError> {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(IoError::io(
                Path::new("checkpoint"),
                std::io::Error::other("the background writer panicked"),
            )),
        }
    }
}

impl Default for BackgroundWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// Why an output cannot go into `dir`, which is not a folder: a file on the way (`afile` of
/// `afile/x.h5`) is named as a file, not as a missing folder.
pub(crate) fn no_folder(dir: &Path) -> String {
    let file = dir
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && a.exists() && !a.is_dir());
    match file {
        Some(f) => format!("cannot write here: {} is a file, not a folder", f.display()),
        None => format!(
            "cannot write here: the folder {} does not exist",
            dir.display()
        ),
    }
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
            reason: no_folder(dir),
        });
    }
    if path.is_dir() {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: "is a folder; give a file name".into(),
        });
    }
    if let Some(kind) = special_file(path) {
        return Err(not_a_regular_file(path, kind));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A named pipe (and so /dev/null, a device) is refused as an output, early and at the
    /// commit, and stays what it was: the rename would have replaced it with a regular file.
    #[cfg(unix)]
    #[test]
    fn an_output_that_is_a_device_or_pipe_is_refused_and_left_as_it_was() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.tsv");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = check_output(&fifo).unwrap_err().to_string();
        assert!(e.contains("is a named pipe, not a regular file"), "{e}");
        assert_eq!(
            special_file(Path::new("/dev/null")),
            Some("a character device")
        );
        let out = AtomicFile::new(&fifo);
        std::fs::write(out.temp(), b"rows").unwrap();
        let e = out.commit().unwrap_err().to_string();
        assert!(e.contains("named pipe"), "{e}");
        let t = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(t.is_fifo(), "the pipe was replaced");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the temporary is gone"
        );
        // A regular file, a missing one, a symbolic link: written as before.
        let file = dir.path().join("rows.tsv");
        assert_eq!(special_file(&file), None);
        write_atomic(&file, b"a").unwrap();
        assert_eq!(special_file(&file), None);
    }

    #[test]
    fn background_writes_land_in_order_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ckpt");
        let mut w = BackgroundWriter::new();
        for i in 0..20u8 {
            w.write(&p, std::sync::Arc::new(vec![i; 1000 + i as usize]))
                .unwrap();
        }
        w.finish().unwrap();
        assert_eq!(
            std::fs::read(&p).unwrap(),
            vec![19u8; 1019],
            "the last write wins"
        );
        // A folder that does not exist: the error comes back from a later call or finish.
        let bad = dir.path().join("missing").join("ckpt");
        let mut w = BackgroundWriter::new();
        let first = w.write(&bad, std::sync::Arc::new(vec![1; 10]));
        let err = match first {
            Err(e) => e,
            Ok(()) => {
                let later = w.write(&p, std::sync::Arc::new(vec![2; 10]));
                match later {
                    Err(e) => e,
                    Ok(()) => w.finish().unwrap_err(),
                }
            }
        };
        assert!(err.to_string().contains("missing"), "{err}");
        assert_eq!(
            std::fs::read(&p).unwrap(),
            vec![19u8; 1019],
            "nothing after a failure"
        );
    }

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
