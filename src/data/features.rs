//! Audio song vectors from the audio stage's `features.h5`: `/songs/ids` (strings: the file stem
//! of each audio track) and `/songs/vectors` (f32, n × D). Column names come from an attribute
//! `names` on `/songs/vectors` (or on `/songs`), else from a dataset `/songs/vector_names`, else
//! they are `audio_0`, `audio_1`, …
//!
//! A vector joins a dataset song when its stem equals the song's id or its MSD track id.

use std::collections::HashMap;
use std::path::Path;

use super::dataset::read_strings;
use crate::error::IoError;

pub struct AudioVectors {
    pub ids: Vec<String>,
    pub dim: usize,
    pub names: Vec<String>,
    /// n × dim, row-major; non-finite values are kept and treated as missing downstream.
    pub values: Vec<f32>,
}

impl AudioVectors {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// For each song, the row of its vector (matched by song id, then by track id).
    pub fn join(&self, song_ids: &[String], track_ids: &[String]) -> Vec<Option<usize>> {
        let mut by_stem: HashMap<&str, usize> = HashMap::with_capacity(self.ids.len());
        for (i, id) in self.ids.iter().enumerate() {
            by_stem.entry(id.as_str()).or_insert(i);
        }
        song_ids
            .iter()
            .zip(track_ids)
            .map(|(s, t)| {
                by_stem
                    .get(s.as_str())
                    .or_else(|| (!t.is_empty()).then(|| by_stem.get(t.as_str())).flatten())
                    .copied()
            })
            .collect()
    }
}

pub fn read_features(path: &Path) -> Result<AudioVectors, IoError> {
    let field = |f: &str, r: String| IoError::Field {
        path: path.to_path_buf(),
        field: f.to_string(),
        reason: r,
    };
    let file = hdf5::File::open(path).map_err(|e| IoError::Hdf5 {
        path: path.to_path_buf(),
        reason: format!("opening the features file: {e}"),
    })?;
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
    Ok(AudioVectors {
        ids,
        dim,
        names,
        values,
    })
}
