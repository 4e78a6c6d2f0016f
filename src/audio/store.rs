//! `features.h5`, the feature store (HDF5, readable by h5py or PyTorch):
//!
//! ```text
//! /                       attrs format = "ainrnn-features", version = 2
//! /tracks/<stem>/         attrs: every parameter, sample_rate, seconds, source_file, frames,
//!                                song_vector (f32 array), ...
//!     mel          f32 [128, frames]   mel power
//!     mfcc         f32 [20, frames]
//!     mfcc_delta   f32 [20, frames]
//!     mfcc_delta2  f32 [20, frames]
//!     hfc          f32 [frames]
//!     hpcp         f32 [12, frames]
//!     scattering   f32 [paths, frames_s]   (when the scattering stage ran)
//! /songs/ids           strings, the stems, sorted
//! /songs/vectors       f32 [n, D]
//! /songs/vector_names  strings [D]
//! ```
//! Strings (version 2) are offset-indexed byte arrays, `NAME` u8 + `NAME_offsets` u64 `[n + 1]`,
//! and string attributes u8 arrays of UTF-8: no global heap, which libhdf5 trusts (see
//! `io::h5`).
//!
//! Writes are atomic: a [`StoreWriter`] works on an [`AtomicFile`] temporary (a copy of the
//! existing store when resuming) and renames it over the output in [`StoreWriter::finish`]; an
//! interrupted run leaves the previous output untouched. The song table is read by
//! [`crate::io::features_h5::read_song_table`]. `/songs` is
//! rebuilt from the tracks' `song_vector` attributes at the end, so resuming and merging only
//! ever add tracks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hdf5::types::{IntSize, TypeDescriptor};

use crate::error::IoError;
use crate::io::features_h5::check_format;
pub use crate::io::features_h5::{read_song_table, SongTable, FORMAT, VERSION};
use crate::io::h5::{h5err, read_strings_checked, write_attr_bytes, write_strings};
use crate::io::AtomicFile;

/// An attribute value as the store writes it.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    U(u64),
    F(f64),
    S(String),
    FV(Vec<f32>),
}

/// One track as stored: datasets `(name, shape, data)` and attributes.
#[derive(Clone, Debug, Default)]
pub struct TrackRecord {
    pub stem: String,
    pub datasets: Vec<(String, Vec<usize>, Vec<f32>)>,
    pub attrs: Vec<(String, AttrValue)>,
}

impl TrackRecord {
    pub fn dataset(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.datasets
            .iter()
            .find(|d| d.0 == name)
            .map(|d| (d.1.as_slice(), d.2.as_slice()))
    }
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|a| a.0 == name).map(|a| &a.1)
    }
    pub fn song_vector(&self) -> Option<&[f32]> {
        match self.attr("song_vector") {
            Some(AttrValue::FV(v)) => Some(v),
            _ => None,
        }
    }
}

fn write_attr(path: &Path, loc: &hdf5::Location, name: &str, v: &AttrValue) -> Result<(), IoError> {
    let e = |x| h5err(path, &format!("writing attribute {name}"), x);
    match v {
        AttrValue::U(u) => loc
            .new_attr::<u64>()
            .create(name)
            .and_then(|a| a.write_scalar(u))
            .map_err(e),
        AttrValue::F(f) => loc
            .new_attr::<f64>()
            .create(name)
            .and_then(|a| a.write_scalar(f))
            .map_err(e),
        AttrValue::S(s) => write_attr_bytes(loc, name, s).map_err(e),
        AttrValue::FV(v) => loc
            .new_attr::<f32>()
            .shape([v.len()])
            .create(name)
            .and_then(|a| a.write_raw(v))
            .map_err(e),
    }
}

fn read_attr(path: &Path, a: &hdf5::Attribute, name: &str) -> Result<AttrValue, IoError> {
    let e = |x| h5err(path, &format!("reading attribute {name}"), x);
    let desc = a.dtype().and_then(|d| d.to_descriptor()).map_err(e)?;
    let scalar = a.is_scalar();
    Ok(match desc {
        TypeDescriptor::Unsigned(_) | TypeDescriptor::Integer(_) | TypeDescriptor::Boolean
            if scalar =>
        {
            AttrValue::U(a.read_scalar::<i64>().map_err(e)?.max(0) as u64)
        }
        TypeDescriptor::Float(_) if scalar => AttrValue::F(a.read_scalar::<f64>().map_err(e)?),
        TypeDescriptor::Float(_) => AttrValue::FV(a.read_raw::<f32>().map_err(e)?),
        // Strings are u8 arrays (never a variable-length string, see `io::h5`).
        TypeDescriptor::Unsigned(IntSize::U1) if !scalar => {
            AttrValue::S(String::from_utf8_lossy(&a.read_raw::<u8>().map_err(e)?).into_owned())
        }
        other => {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field: name.to_string(),
                reason: format!("unsupported attribute type {other:?}"),
            })
        }
    })
}

fn open_read(path: &Path) -> Result<hdf5::File, IoError> {
    if !path.exists() {
        return Err(IoError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    let f = hdf5::File::open(path).map_err(|e| h5err(path, "opening", e))?;
    check_format(path, &f)?;
    Ok(f)
}

/// Stems of the tracks in a store, sorted.
pub fn list_tracks(path: &Path) -> Result<Vec<String>, IoError> {
    let f = open_read(path)?;
    track_names(path, &f)
}

fn track_names(path: &Path, f: &hdf5::File) -> Result<Vec<String>, IoError> {
    let g = f.group("tracks").map_err(|e| h5err(path, "/tracks", e))?;
    let mut v = g.member_names().map_err(|e| h5err(path, "/tracks", e))?;
    v.sort();
    Ok(v)
}

fn read_record(path: &Path, g: &hdf5::Group, stem: &str) -> Result<TrackRecord, IoError> {
    let mut rec = TrackRecord {
        stem: stem.to_string(),
        ..Default::default()
    };
    let mut names = g
        .member_names()
        .map_err(|e| h5err(path, &format!("/tracks/{stem}"), e))?;
    names.sort();
    for name in names {
        let ds = g
            .dataset(&name)
            .map_err(|e| h5err(path, &format!("/tracks/{stem}/{name}"), e))?;
        let data = ds
            .read_raw::<f32>()
            .map_err(|e| h5err(path, &format!("/tracks/{stem}/{name}"), e))?;
        rec.datasets.push((name, ds.shape(), data));
    }
    let attrs = g
        .attr_names()
        .map_err(|e| h5err(path, &format!("/tracks/{stem} attributes"), e))?;
    for name in attrs {
        let a = g
            .attr(&name)
            .map_err(|e| h5err(path, &format!("/tracks/{stem}@{name}"), e))?;
        rec.attrs.push((name.clone(), read_attr(path, &a, &name)?));
    }
    Ok(rec)
}

/// Reads one track.
pub fn read_track(path: &Path, stem: &str) -> Result<TrackRecord, IoError> {
    let f = open_read(path)?;
    let g = f
        .group("tracks")
        .and_then(|t| t.group(stem))
        .map_err(|e| h5err(path, &format!("/tracks/{stem}"), e))?;
    read_record(path, &g, stem)
}

/// `/songs/vector_names`, which the store always writes.
fn stored_vector_names(path: &Path, f: &hdf5::File) -> Result<Vec<String>, IoError> {
    let name = "songs/vector_names";
    let len = std::fs::metadata(path)
        .map_err(|e| IoError::io(path, e))?
        .len() as usize;
    read_strings_checked(f, name, len / 8, len).map_err(|e| h5err(path, name, e))
}

/// Writes a store atomically; see the module documentation.
pub struct StoreWriter {
    // Declared before `out`: the file is closed before a dropped writer removes the temporary.
    file: Option<hdf5::File>,
    out: AtomicFile,
    done: BTreeSet<String>,
    vector_names: Vec<String>,
}

impl StoreWriter {
    /// Opens `output` for adding tracks: a copy of it when it exists (resume), else a new store.
    /// `vector_names` are the song-vector columns this run writes; a store written with other
    /// columns is refused.
    pub fn open(output: &Path, vector_names: Vec<String>) -> Result<Self, IoError> {
        let out = AtomicFile::new(output);
        let tmp = out.temp().to_path_buf();
        let mut w = StoreWriter {
            file: None,
            out,
            done: BTreeSet::new(),
            vector_names,
        };
        if output.exists() {
            let old = open_read(output)?;
            let names = track_names(output, &old)?;
            if let Ok(existing) = stored_vector_names(output, &old) {
                if !names.is_empty() && existing != w.vector_names {
                    return Err(IoError::Format {
                        path: output.to_path_buf(),
                        reason: format!(
                            "the store's song vectors have {} columns ({}...), this run writes {}: \
                             use the same options (e.g. --no-scattering) or another output",
                            existing.len(),
                            existing.first().cloned().unwrap_or_default(),
                            w.vector_names.len()
                        ),
                    });
                }
            }
            drop(old);
            std::fs::copy(output, &tmp).map_err(|e| IoError::io(&tmp, e))?;
            w.done = names.into_iter().collect();
            w.file = Some(hdf5::File::open_rw(&tmp).map_err(|e| h5err(&tmp, "opening", e))?);
        } else {
            let f = hdf5::File::create(&tmp).map_err(|e| h5err(&tmp, "creating", e))?;
            write_attr(&tmp, &f, "format", &AttrValue::S(FORMAT.into()))?;
            write_attr(&tmp, &f, "version", &AttrValue::U(VERSION))?;
            f.create_group("tracks")
                .map_err(|e| h5err(&tmp, "creating /tracks", e))?;
            w.file = Some(f);
        }
        Ok(w)
    }

    /// Whether a track with this stem is already stored.
    pub fn contains(&self, stem: &str) -> bool {
        self.done.contains(stem)
    }

    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    fn file(&self) -> Result<&hdf5::File, IoError> {
        self.file.as_ref().ok_or_else(|| IoError::Format {
            path: self.out.temp().to_path_buf(),
            reason: "store already closed".into(),
        })
    }

    /// Adds one track. Its song vector must have one value per vector name.
    pub fn write(&mut self, rec: &TrackRecord) -> Result<(), IoError> {
        let tmp = self.out.temp().to_path_buf();
        if let Some(v) = rec.song_vector() {
            if v.len() != self.vector_names.len() {
                return Err(IoError::Field {
                    path: tmp,
                    field: format!("/tracks/{}@song_vector", rec.stem),
                    reason: format!(
                        "{} values for {} vector names",
                        v.len(),
                        self.vector_names.len()
                    ),
                });
            }
        }
        let f = self.file()?;
        let tracks = f.group("tracks").map_err(|e| h5err(&tmp, "/tracks", e))?;
        let g = tracks
            .create_group(&rec.stem)
            .map_err(|e| h5err(&tmp, &format!("creating /tracks/{}", rec.stem), e))?;
        for (name, shape, data) in &rec.datasets {
            g.new_dataset::<f32>()
                .shape(shape.clone())
                .create(name.as_str())
                .and_then(|d| d.write_raw(data))
                .map_err(|e| h5err(&tmp, &format!("writing /tracks/{}/{name}", rec.stem), e))?;
        }
        for (name, v) in &rec.attrs {
            write_attr(&tmp, &g, name, v)?;
        }
        self.done.insert(rec.stem.clone());
        Ok(())
    }

    /// Rebuilds `/songs` from every track's song vector, closes the file and renames it over
    /// the output. Returns the number of tracks in the store.
    pub fn finish(mut self) -> Result<usize, IoError> {
        let tmp = self.out.temp().to_path_buf();
        {
            let f = self.file()?;
            if f.link_exists("songs") {
                f.unlink("songs")
                    .map_err(|e| h5err(&tmp, "replacing /songs", e))?;
            }
            let tracks = f.group("tracks").map_err(|e| h5err(&tmp, "/tracks", e))?;
            let mut ids = tracks
                .member_names()
                .map_err(|e| h5err(&tmp, "/tracks", e))?;
            ids.sort();
            let dim = self.vector_names.len();
            let mut vectors = Vec::with_capacity(ids.len() * dim);
            for id in &ids {
                let a = tracks
                    .group(id)
                    .and_then(|g| g.attr("song_vector"))
                    .map_err(|e| h5err(&tmp, &format!("/tracks/{id}@song_vector"), e))?;
                let v = a
                    .read_raw::<f32>()
                    .map_err(|e| h5err(&tmp, &format!("/tracks/{id}@song_vector"), e))?;
                if v.len() != dim {
                    return Err(IoError::Field {
                        path: tmp,
                        field: format!("/tracks/{id}@song_vector"),
                        reason: format!("{} values, expected {dim}", v.len()),
                    });
                }
                vectors.extend_from_slice(&v);
            }
            let songs = f
                .create_group("songs")
                .map_err(|e| h5err(&tmp, "creating /songs", e))?;
            write_strings(&songs, "ids", &ids).map_err(|e| h5err(&tmp, "writing /songs/ids", e))?;
            write_strings(&songs, "vector_names", &self.vector_names)
                .map_err(|e| h5err(&tmp, "writing /songs/vector_names", e))?;
            songs
                .new_dataset::<f32>()
                .shape([ids.len(), dim])
                .create("vectors")
                .and_then(|d| d.write_raw(&vectors))
                .map_err(|e| h5err(&tmp, "writing /songs/vectors", e))?;
            f.flush().map_err(|e| h5err(&tmp, "flushing", e))?;
        }
        let n = self.done.len();
        self.file = None; // closes the file before the rename
        self.out.commit()?;
        Ok(n)
    }
}

/// What [`merge`] did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MergeSummary {
    pub tracks: usize,
    pub added: usize,
    /// `(store, stem)` of tracks already present (first occurrence kept).
    pub duplicates: Vec<(String, String)>,
}

/// Merges stores into `output` (created, or extended when it exists). Tracks whose stem is
/// already present are kept from the first store that has them.
pub fn merge(inputs: &[PathBuf], output: &Path) -> Result<MergeSummary, IoError> {
    let mut names: Option<Vec<String>> = None;
    for p in inputs {
        let f = open_read(p)?;
        let n = stored_vector_names(p, &f)?;
        match &names {
            None => names = Some(n),
            Some(prev) if *prev != n => {
                return Err(IoError::Format {
                    path: p.clone(),
                    reason: format!(
                        "song vectors have {} columns, the first store has {}: stores written with different options cannot be merged",
                        n.len(),
                        prev.len()
                    ),
                })
            }
            _ => {}
        }
    }
    let mut w = StoreWriter::open(output, names.unwrap_or_default())?;
    let mut summary = MergeSummary::default();
    for p in inputs {
        let f = open_read(p)?;
        let tracks = f.group("tracks").map_err(|e| h5err(p, "/tracks", e))?;
        for stem in track_names(p, &f)? {
            if w.contains(&stem) {
                summary
                    .duplicates
                    .push((p.display().to_string(), stem.clone()));
                continue;
            }
            let g = tracks
                .group(&stem)
                .map_err(|e| h5err(p, &format!("/tracks/{stem}"), e))?;
            w.write(&read_record(p, &g, &stem)?)?;
            summary.added += 1;
        }
    }
    summary.tracks = w.finish()?;
    Ok(summary)
}
