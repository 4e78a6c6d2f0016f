//! Output paths that name an input of the same command are refused before any work: writing
//! them would destroy the input. Paths are compared canonically (symbolic links, `..` and
//! relative paths resolved; an output that does not exist yet by its folder's canonical path and
//! its file name), and hard links by device and inode.

use std::path::{Path, PathBuf};

use ainrnn::error::IoError;
use ainrnn::io::OutputLock;
use anyhow::{bail, Result};

/// `p` made absolute and resolved; for a path that does not exist, its parent's canonical path
/// joined with its file name. `None` when neither exists (then it cannot name an input).
pub fn canonical(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    parent.canonicalize().ok().map(|d| d.join(name))
}

/// Whether `a` and `b` name the same file or folder.
pub fn same_path(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            if x.dev() == y.dev() && x.ino() == y.ino() {
                return true;
            }
        }
    }
    match (canonical(a), canonical(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Refuses `output` (given with flag `out_flag`) when it names one of `inputs` (flag, path).
pub fn refuse_overwriting_inputs(
    out_flag: &str,
    output: &Path,
    inputs: &[(&str, &Path)],
) -> Result<()> {
    for (flag, input) in inputs {
        if same_path(output, input) {
            bail!(
                "{out_flag} {} is also the input {flag} {}: writing it would destroy the input; choose another output path",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Takes the writer lock of `output` (given with flag `flag`) for the whole run (see
/// [`ainrnn::io::lock`]): a second run writing the same output is refused here, before any work.
pub fn lock_output(flag: &str, output: &Path) -> Result<OutputLock> {
    OutputLock::acquire(output).map_err(|e| match e {
        IoError::Locked { path, holder } => anyhow::anyhow!(
            "{}: {holder} is writing it; wait for it or choose another {flag}",
            path.display()
        ),
        e => e.into(),
    })
}

/// [`lock_output`] for an output folder, created first when missing.
pub fn lock_output_dir(flag: &str, dir: &Path) -> Result<OutputLock> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("{flag} {}: cannot create the folder: {e}", dir.display()))?;
    lock_output(flag, dir)
}

/// The inputs given as `Option`s, with their flags, for [`refuse_overwriting_inputs`].
pub fn given<'a>(inputs: &[(&'a str, &'a Option<PathBuf>)]) -> Vec<(&'a str, &'a Path)> {
    inputs
        .iter()
        .filter_map(|(f, p)| p.as_deref().map(|p| (*f, p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
