//! Output paths that name an input of the same command are refused before any work: writing
//! them would destroy the input (the comparison: [`ainrnn::io::paths`]).

use std::path::{Path, PathBuf};

use ainrnn::error::IoError;
use ainrnn::io::OutputLock;
use anyhow::{bail, Result};

pub use ainrnn::io::paths::canonical;

/// Refuses `output` (given with flag `out_flag`) when it names one of `inputs` (flag, path; a
/// positional input's "flag" is a noun such as "input").
pub fn refuse_overwriting_inputs(
    out_flag: &str,
    output: &Path,
    inputs: &[(&str, &Path)],
) -> Result<()> {
    for (flag, input) in inputs {
        if let Some(msg) = ainrnn::io::paths::overwrites_input(output, flag, input) {
            bail!("{out_flag} {msg}");
        }
    }
    Ok(())
}

/// `p` made absolute with its longest existing ancestor resolved and the rest appended as
/// written (`..` in that rest resolved by name); works for folders not created yet.
fn resolve_lenient(p: &Path) -> Option<PathBuf> {
    let abs = std::env::current_dir().ok()?.join(p);
    let mut base = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = base.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                match part {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::CurDir => {}
                    c => out.push(c.as_os_str()),
                }
            }
            return Some(out);
        }
        rest.push(base.components().next_back()?);
        base = base.parent()?;
    }
}

/// Refuses an output folder (flag `out_flag`) that is the input folder `in_flag` or lies inside
/// it: the run would write its files among the inputs.
pub fn refuse_output_folder_inside(
    out_flag: &str,
    out: &Path,
    in_flag: &str,
    input: &Path,
) -> Result<()> {
    if let (Some(o), Some(i)) = (resolve_lenient(out), input.canonicalize().ok()) {
        if o.starts_with(&i) {
            bail!(
                "{out_flag} {} is {} the input folder {in_flag} {}: the run would write among its inputs; choose another output folder",
                out.display(),
                if o == i { "the same folder as" } else { "inside" },
                input.display()
            );
        }
    }
    Ok(())
}

/// Takes the writer lock of the output file `output` (given with flag `flag`) for the whole run
/// (see [`ainrnn::io::lock`]): a second run writing the same output is refused here, before any
/// work; so is a folder, which the rename at the end could not replace.
pub fn lock_output(flag: &str, output: &Path) -> Result<OutputLock> {
    if output.is_dir() {
        bail!(
            "{flag} {} is a folder; give a file name (in it or elsewhere)",
            output.display()
        );
    }
    if let Some(kind) = ainrnn::io::atomic::special_file(output) {
        bail!(
            "{flag} {}",
            ainrnn::io::atomic::not_a_regular_file(output, kind)
        );
    }
    take_lock(flag, output)
}

fn take_lock(flag: &str, output: &Path) -> Result<OutputLock> {
    OutputLock::acquire(output).map_err(|e| match e {
        IoError::Locked { path, holder } => anyhow::anyhow!(
            "{}: {holder} is writing it; wait for it or choose another {flag}",
            path.display()
        ),
        // Already says where and why ("…: cannot write here: afile is a file, not a folder").
        e @ IoError::Format { .. } => anyhow::anyhow!("{flag} {e}"),
        // The lock file sits beside the output: failing to make it (a read-only folder) is
        // failing to write the output.
        e => anyhow::anyhow!("{flag} {}: cannot write there: {e}", output.display()),
    })
}

/// Refuses a missing input (flag `flag`) before an output folder is created for a run that
/// could not start: the folder was left behind, empty.
pub fn input_exists(flag: &str, input: &Path) -> Result<()> {
    if !input.exists() {
        bail!("{flag} {}: no such file or folder", input.display());
    }
    Ok(())
}

/// [`lock_output`] for an output folder, created first when missing.
pub fn lock_output_dir(flag: &str, dir: &Path) -> Result<FolderLock> {
    let created = !dir.exists();
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{flag} {} is a file, not a folder: give a folder's name",
            dir.display()
        );
    }
    // A file where a parent folder should be: say which (create_dir_all says "File exists").
    if let Some(file) = dir.ancestors().skip(1).find(|a| a.is_file()) {
        bail!(
            "{flag} {}: {} is a file, not a folder",
            dir.display(),
            file.display()
        );
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("{flag} {}: cannot create the folder: {e}", dir.display()))?;
    // Refused by the lock, the guard removes the folder it created.
    let mut guard = FolderLock {
        created: created.then(|| dir.to_path_buf()),
        _lock: None,
    };
    guard._lock = Some(take_lock(flag, dir)?);
    Ok(guard)
}

/// The lock of an output folder. A folder the run created and left without a single file (the
/// run was refused after taking the lock, e.g. `--folds 10` on a dataset of 5) is removed when
/// the lock goes, with the empty folders in it; a folder that holds any file stays as it is.
pub struct FolderLock {
    created: Option<PathBuf>,
    _lock: Option<OutputLock>,
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        /// Whether `dir` holds anything but folders, at any depth (unreadable: assume so).
        fn holds_files(dir: &Path) -> bool {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return true;
            };
            rd.into_iter().any(|e| match e {
                Ok(e) if e.file_type().is_ok_and(|t| t.is_dir()) => holds_files(&e.path()),
                _ => true,
            })
        }
        if let Some(d) = &self.created {
            if !holds_files(d) {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ainrnn::io::paths::same_path;

    #[test]
    fn same_file_by_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.txt");
        std::fs::write(&f, "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let dotted = dir.path().join("sub/../t.txt");
        assert!(same_path(&f, &dotted));
        let link = dir.path().join("hard.txt");
        std::fs::hard_link(&f, &link).unwrap();
        assert!(same_path(&link, &f));
        let new = dir.path().join("sub/../new.txt");
        assert!(!same_path(&new, &f));
        assert!(same_path(&new, &dir.path().join("new.txt")));
        assert!(!same_path(Path::new("/no/such/dir/x"), &f));
        let e = refuse_overwriting_inputs("-o", &dotted, &[("--triplets", &f)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("-o") && e.contains("--triplets"), "{e}");
    }

    #[test]
    fn output_folder_inside_the_input_folder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("taste")).unwrap();
        let refused = |out: &Path| refuse_output_folder_inside("--out", out, "--data", &data);
        assert!(refused(&data)
            .unwrap_err()
            .to_string()
            .contains("the same folder"));
        assert!(refused(&data.join("taste/../")).is_err());
        let e = refused(&data.join("new/deeper")).unwrap_err().to_string();
        assert!(e.contains("inside") && e.contains("--data"), "{e}");
        assert!(refused(&dir.path().join("out/demo")).is_ok());
        assert!(refused(&data.join("../out")).is_ok());
        assert!(refused(dir.path()).is_ok());
    }
}
