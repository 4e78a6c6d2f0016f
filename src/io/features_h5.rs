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
//! - Strings may be of any HDF5 string type.

use std::path::Path;

use hdf5::types::VarLenUnicode;

use super::h5::{h5err, read_strings};
use crate::error::IoError;

pub const FORMAT: &str = "ainrnn-features";
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
    let fmt = f
        .attr("format")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map_err(|_| {
            bad(format!(
                "not a feature store (no format = {FORMAT:?} attribute)"
            ))
        })?;
    if fmt.as_str() != FORMAT {
        return Err(bad(format!(
            "format is {:?}, expected {FORMAT:?}",
            fmt.as_str()
        )));
    }
    let v = f
        .attr("version")
        .and_then(|a| a.read_scalar::<u64>())
        .map_err(|e| h5err(path, "reading version", e))?;
    if v != VERSION {
        return Err(bad(format!(
            "store version {v}, this build reads version {VERSION}"
        )));
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
    let file = hdf5::File::open(path).map_err(|e| h5err(path, "opening the features file", e))?;
    if file.attr("format").is_ok() {
        check_format(path, &file)?;
    }
    for name in ["songs/ids", "songs/vectors"] {
        if !file.link_exists(name) {
            return Err(field(
                &format!("/{name}"),
                "missing: a features file needs /songs/ids and /songs/vectors (run the audio stage first)".into(),
            ));
        }
    }
    let ids_ds = file
        .dataset("songs/ids")
        .map_err(|e| field("/songs/ids", e.to_string()))?;
    let ids = read_strings(&ids_ds).map_err(|e| field("/songs/ids", e.to_string()))?;
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
    let values = if vec_ds.size() == 0 {
        Vec::new()
    } else {
        vec_ds
            .read_raw::<f32>()
            .map_err(|e| field("/songs/vectors", e.to_string()))?
    };
    let mut names = None;
    if let Ok(a) = vec_ds.attr("names") {
        names = Some(read_strings(&a).map_err(|e| field("/songs/vectors@names", e.to_string()))?);
    } else if let Ok(a) = file.group("songs").and_then(|g| g.attr("names")) {
        names = Some(read_strings(&a).map_err(|e| field("/songs@names", e.to_string()))?);
    } else if file.link_exists("songs/vector_names") {
        let d = file
            .dataset("songs/vector_names")
            .map_err(|e| field("/songs/vector_names", e.to_string()))?;
        names = Some(read_strings(&d).map_err(|e| field("/songs/vector_names", e.to_string()))?);
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
