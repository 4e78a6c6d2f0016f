//! The song table of `features.h5` (the feature store the audio stage writes, `audio::store`):
//! the one reader, for the audio stage's own checks and for `ainrnn prepare --features`.
//!
//! Read rule:
//! - `/songs/ids` (strings: track stems) and `/songs/vectors` (f32, `[n, D]`) are required.
//! - A root `format` attribute, when present, must be [`FORMAT`] at [`VERSION`]; files written
//!   by other tools (h5py) may omit it.
//! - Column names: attribute `names` on `/songs/vectors`, else on `/songs`, else the dataset
//!   `/songs/vector_names` (what the store writes), else `audio_0`, `audio_1`, …; when given,
//!   there must be one per column.
//! - In a store with the `format` attribute (written by ainrnn), strings are offset-indexed byte
//!   arrays (`NAME` u8 + `NAME_offsets` u64 `[n + 1]`, checksummed, see [`super::h5`]) and
//!   string attributes u8 arrays: no variable-length string is ever read from it, since
//!   libhdf5 trusts the global heap they live in and a damaged one crashes the process. A store
//!   of version 1 (variable-length strings) is refused with a message to run `features` again.
//! - In a file without the `format` attribute (h5py), strings may be of any HDF5 string type.

use std::path::Path;

use super::h5::{h5err, read_attr_bytes, read_strings, read_strings_checked};
use crate::error::IoError;

pub const FORMAT: &str = "ainrnn-features";
/// Version 2: an index file whose tracks are links into per-batch segment files, and strings
/// without the global heap (offset-indexed byte arrays, u8 attributes).
pub const VERSION: u64 = 2;

/// The song table: one vector per track stem.
#[derive(Clone, Debug, PartialEq)]
pub struct SongTable {
    pub ids: Vec<String>,
    /// One name per column.
    pub names: Vec<String>,
    pub dim: usize,
    /// `[ids, dim]` row-major; non-finite values are kept (missing, for the data stage).
    pub values: Vec<f32>,
}

impl SongTable {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }
}

/// Checks the root `format` and `version` attributes of a feature store.
pub fn check_format(path: &Path, f: &hdf5::File) -> Result<(), IoError> {
    let bad = |reason: String| IoError::Format {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(kind) = super::h5::other_kind(f, FORMAT) {
        return Err(bad(format!(
            "is {kind}, not a feature store; give the file `ainrnn features` wrote"
        )));
    }
    // The version first: a plain integer, while a version 1 store's `format` is a
    // variable-length string, which is never read.
    let v = f
        .attr("version")
        .and_then(|a| a.read_scalar::<u64>())
        .map_err(|e| {
            bad(format!(
                "not a feature store (no integer version attribute: {e})"
            ))
        })?;
    if v < VERSION {
        return Err(bad(format!(
            "written by an older ainrnn (format {v}); run features again"
        )));
    }
    if v != VERSION {
        return Err(bad(format!(
            "store version {v}, this build reads version {VERSION}"
        )));
    }
    let fmt = read_attr_bytes(f, "format").map_err(|e| {
        bad(format!(
            "not a feature store (no format = {FORMAT:?} attribute: {e})"
        ))
    })?;
    if fmt != FORMAT {
        return Err(bad(format!("format is {fmt:?}, expected {FORMAT:?}")));
    }
    Ok(())
}

/// Reads `/songs` by the rule in the module documentation.
pub fn read_song_table(path: &Path) -> Result<SongTable, IoError> {
    let field = |f: &str, r: String| IoError::Field {
        path: path.to_path_buf(),
        field: f.to_string(),
        reason: r,
    };
    let file_len = std::fs::metadata(path)
        .map_err(|e| IoError::io(path, e))?
        .len() as usize;
    let file =
        super::h5::open_file(path).map_err(|e| h5err(path, "opening the features file", e))?;
    let ours = file.attr("format").is_ok();
    if ours || super::h5::other_kind(&file, FORMAT).is_some() {
        check_format(path, &file)?;
    }
    // Strings: checked byte arrays in an ainrnn store, any string type in other files.
    let strings = |name: &str| -> Result<Vec<String>, IoError> {
        if ours {
            read_strings_checked(&file, name, file_len / 8, file_len)
                .map_err(|e| field(&format!("/{name}"), e))
        } else {
            let d = file
                .dataset(name)
                .map_err(|e| field(&format!("/{name}"), e.to_string()))?;
            read_strings(&d).map_err(|e| field(&format!("/{name}"), e.to_string()))
        }
    };
    for name in ["songs/ids", "songs/vectors"] {
        if !file.link_exists(name) {
            return Err(field(
                &format!("/{name}"),
                "missing: a features file needs /songs/ids and /songs/vectors (run the audio stage first)".into(),
            ));
        }
    }
    let ids = strings("songs/ids")?;
    let vec_ds = file
        .dataset("songs/vectors")
        .map_err(|e| field("/songs/vectors", e.to_string()))?;
    let shape = vec_ds.shape();
    if shape.len() != 2 || shape[0] != ids.len() {
        return Err(field(
            "/songs/vectors",
            format!(
                "shape {shape:?} does not match {} ids: expected ({}, D)",
                ids.len(),
                ids.len()
            ),
        ));
    }
    let dim = shape[1];
    // An ainrnn store is not compressed: more values than the file has bytes is a damaged shape.
    if ours && vec_ds.size().saturating_mul(4) > file_len {
        return Err(field(
            "/songs/vectors",
            format!("shape {shape:?} is larger than the file ({file_len} bytes): damaged"),
        ));
    }
    let values = if vec_ds.size() == 0 {
        Vec::new()
    } else {
        vec_ds
            .read_raw::<f32>()
            .map_err(|e| field("/songs/vectors", e.to_string()))?
    };
    let mut names = None;
    if ours {
        if file.link_exists("songs/vector_names") {
            names = Some(strings("songs/vector_names")?);
        }
    } else if let Ok(a) = vec_ds.attr("names") {
        names = Some(read_strings(&a).map_err(|e| field("/songs/vectors@names", e.to_string()))?);
    } else if let Ok(a) = file.group("songs").and_then(|g| g.attr("names")) {
        names = Some(read_strings(&a).map_err(|e| field("/songs@names", e.to_string()))?);
    } else if file.link_exists("songs/vector_names") {
        names = Some(strings("songs/vector_names")?);
    }
    let names = match names {
        Some(n) if n.len() == dim => n,
        Some(n) => {
            return Err(field(
                "/songs/vectors names",
                format!("{} names for {dim} columns", n.len()),
            ))
        }
        None => (0..dim).map(|i| format!("audio_{i}")).collect(),
    };
    Ok(SongTable {
        ids,
        names,
        dim,
        values,
    })
}
