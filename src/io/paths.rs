//! Whether two paths name the same file: the check that refuses an output naming an input
//! before it is written over. Paths are compared canonically (symbolic links, `..` and relative
//! paths resolved; a path that does not exist yet by its folder's canonical path and its file
//! name), and hard links by device and inode.

use std::path::{Path, PathBuf};

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

/// Why `output` may not be written, when it is `input` (given with `in_flag`; a positional
/// input's "flag" is a noun such as "input"): "OUTPUT is also the input FLAG INPUT: …", to
/// follow the output's flag (a noun's path is given in parentheses). `None` when they are different files.
pub fn overwrites_input(output: &Path, in_flag: &str, input: &Path) -> Option<String> {
    if !same_path(output, input) {
        return None;
    }
    // A noun's path in parentheses: "the artists.dat found beside the --hetrec file X" would
    // read as if X were the --hetrec file.
    let what = if in_flag.starts_with('-') {
        format!("input {in_flag} {}", input.display())
    } else {
        format!("{in_flag} ({})", input.display())
    };
    Some(format!(
        "{} is also the {what}: writing it would destroy the input; choose another output path",
        output.display()
    ))
}
