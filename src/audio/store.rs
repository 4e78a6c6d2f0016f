//! `features.h5`, the feature store (HDF5, readable by h5py or PyTorch), version 2: a small
//! index file plus a folder of segments beside it.
//!
//! ```text
//! features.h5            attrs format = "ainrnn-features", version = 2
//!   /tracks/<stem>       external link -> features.h5.d/seg-NNNNNN.h5:/tracks/<stem>
//!   /songs/ids           strings, the stems, sorted
//!   /songs/vectors       f32 [n, D]
//!   /songs/vector_names  strings [D]
//!   /songs/segment       u32 [n]: the segment holding each track
//! features.h5.d/seg-NNNNNN.h5   attrs format, version; one batch of tracks:
//!   /tracks/<stem>/      attrs: every parameter, sample_rate, seconds, source_file, frames,
//!                               song_vector (f32 array), ...
//!     mel          f32 [128, frames]   mel power
//!     mfcc         f32 [20, frames]
//!     mfcc_delta   f32 [20, frames]
//!     mfcc_delta2  f32 [20, frames]
//!     hfc          f32 [frames]
//!     hpcp         f32 [12, frames]
//!     scattering   f32 [paths, frames_s]   (when the scattering stage ran)
//! ```
//! Strings (version 2) are offset-indexed byte arrays, `NAME` u8 + `NAME_offsets` u64 `[n + 1]`,
//! and string attributes u8 arrays of UTF-8: no global heap, which libhdf5 trusts (see
//! `io::h5`).
//!
//! Through the external links a reader sees one file with the layout of version 1
//! (`/tracks/<stem>/mel`, `/songs/...`): h5py works unchanged. The links are relative, so the
//! store and its `NAME.d` folder move together. [`read_track`] and [`merge`] open the segment
//! that `/songs/segment` names instead of following a link (see `track_segments`).
//!
//! Why this layout (issue 14, partial progress): HDF5 has no journal, so a file written in place
//! can be damaged by a kill; copying the store to a temporary to append made every append a full
//! copy and a kill lost everything. Here nothing is ever written in place:
//! - each batch is one segment, written to a temporary `.seg-NNNNNN.h5.<pid>.tmp.h5` and committed
//!   by rename ([`StoreWriter::commit`]); committed segments are never modified again;
//! - [`StoreWriter::finish`] folds the segments into a new index written to a temporary beside the
//!   store and renamed over it. The index holds only `/songs` and one link per track, so an
//!   append rewrites O(tracks) small entries (the song table, about 640 bytes a track), never
//!   track data;
//! - [`StoreWriter::open`] knows the tracks of the index and of segments committed after it (a
//!   killed run's journal: its batches are kept and skipped by the next run), and removes
//!   temporaries whose pid is not alive (or is its own: a killed run's under a recycled pid).
//!
//! Residual risks: a kill loses the batch in progress (its temporary is removed by the next run);
//! a kill between a segment's rename and the fold leaves the index one fold behind, which the next
//! open or finish repairs; a segment deleted by hand leaves dangling links (reading that track
//! fails naming it). Moving only `features.h5` without `features.h5.d` loses the track data (the
//! song table stays readable). Writers take the output's lock (`io::lock`) at the command level.
//! `/songs` is rebuilt from the known song vectors at each fold, so resuming and merging only ever
//! add tracks.

use std::collections::{BTreeMap, BTreeSet};
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
    let f = crate::io::h5::open_file(path).map_err(|e| h5err(path, "opening", e))?;
    if f.attr("version").and_then(|a| a.read_scalar::<u64>()).ok() == Some(1) {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "feature store version 1 (tracks inside the file), written by an older ainrnn; \
                 this build reads and writes version {VERSION} (tracks in {}): run `ainrnn \
                 features` again into a new --output",
                segments_dir(path).display()
            ),
        });
    }
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

/// The segment of each track of the store `path` (its `/songs/segment`), by stem.
///
/// Readers open the segment itself, `NAME.d/seg-NNNNNN.h5` beside the index, rather than follow
/// the index's external links: where the linked file is missing or damaged, libhdf5 goes on to
/// look for the same relative name under the working directory, and so would read another
/// store's track of the same name without a word.
fn track_segments(path: &Path, f: &hdf5::File) -> Result<BTreeMap<String, u32>, IoError> {
    // The ids alone: the song vectors (640 bytes a track) are not needed to find one track.
    let len = std::fs::metadata(path)
        .map_err(|e| IoError::io(path, e))?
        .len() as usize;
    let ids = read_strings_checked(f, "songs/ids", len / 8, len)
        .map_err(|e| h5err(path, "songs/ids", e))?;
    let segs = segment_numbers(path, f, ids.len())?;
    Ok(ids.into_iter().zip(segs).collect())
}

/// `/songs/segment`: the segment of each of the store's `n` tracks.
fn segment_numbers(path: &Path, f: &hdf5::File, n: usize) -> Result<Vec<u32>, IoError> {
    let segs: Vec<u32> = f
        .dataset("songs/segment")
        .and_then(|d| d.read_raw::<u32>())
        .map_err(|e| h5err(path, "/songs/segment", e))?;
    if segs.len() != n {
        return Err(IoError::Field {
            path: path.to_path_buf(),
            field: "/songs/segment".into(),
            reason: format!("{} entries for {n} ids", segs.len()),
        });
    }
    Ok(segs)
}

/// Opens segment `n` of the store `path`.
fn open_segment(path: &Path, n: u32) -> Result<(PathBuf, hdf5::File), IoError> {
    let seg = segments_dir(path).join(segment_name(n));
    if !seg.is_file() {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "its segment {} is missing (a store moves with its {} folder)",
                seg.display(),
                segments_dir(path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        });
    }
    let f = crate::io::h5::open_file(&seg).map_err(|e| h5err(&seg, "opening a segment", e))?;
    Ok((seg, f))
}

/// Reads one track.
pub fn read_track(path: &Path, stem: &str) -> Result<TrackRecord, IoError> {
    let f = open_read(path)?;
    let n = *track_segments(path, &f)?
        .get(stem)
        .ok_or_else(|| IoError::Field {
            path: path.to_path_buf(),
            field: format!("/tracks/{stem}"),
            reason: "no such track in the store".into(),
        })?;
    let (seg, sf) = open_segment(path, n)?;
    let g = sf
        .group("tracks")
        .and_then(|t| t.group(stem))
        .map_err(|e| h5err(&seg, &format!("/tracks/{stem}"), e))?;
    read_record(&seg, &g, stem)
}

/// `/songs/vector_names`, which the store always writes.
fn stored_vector_names(path: &Path, f: &hdf5::File) -> Result<Vec<String>, IoError> {
    let name = "songs/vector_names";
    let len = std::fs::metadata(path)
        .map_err(|e| IoError::io(path, e))?
        .len() as usize;
    read_strings_checked(f, name, len / 8, len).map_err(|e| h5err(path, name, e))
}

/// The folder of a store's segments: `NAME.d` beside `NAME`.
pub fn segments_dir(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "features.h5".into());
    output.with_file_name(format!("{name}.d"))
}

fn segment_name(n: u32) -> String {
    format!("seg-{n:06}.h5")
}

fn segment_number(name: &str) -> Option<u32> {
    name.strip_prefix("seg-")?.strip_suffix(".h5")?.parse().ok()
}

/// Committed segments in `dir`, by number.
fn list_segments(dir: &Path) -> Result<Vec<(u32, PathBuf)>, IoError> {
    let mut v = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(v),
        Err(e) => return Err(IoError::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| IoError::io(dir, e))?;
        if let Some(n) = segment_number(&e.file_name().to_string_lossy()) {
            v.push((n, e.path()));
        }
    }
    v.sort();
    Ok(v)
}

#[cfg(unix)]
fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Outside Unix a process cannot be asked after without more system bindings: every other
/// writer counts as alive, so its temporaries are kept (never a live writer's removed).
#[cfg(not(unix))]
fn pid_alive(_pid: u32) -> bool {
    true
}

/// Removes temporaries `.X.<pid>.tmp[.EXT]` in `dir` whose name starts with `.{prefix}` and
/// whose writer is gone: its pid is not alive, or is this process's (which has not written any
/// yet when this runs, so the file is a killed earlier run's under a recycled pid).
fn remove_dead_temps(dir: &Path, prefix: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.') else {
            continue;
        };
        if !rest.starts_with(prefix) {
            continue;
        }
        let Some(at) = rest.rfind(".tmp") else {
            continue;
        };
        let tail = &rest[at + 4..];
        if !(tail.is_empty() || tail.starts_with('.')) {
            continue;
        }
        let Some(pid) = rest[..at]
            .rsplit_once('.')
            .and_then(|(_, p)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || !pid_alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Adds tracks to a store, batch by batch; see the module documentation.
pub struct StoreWriter {
    // Declared before `seg`: the segment is closed before a dropped writer removes its temporary.
    file: Option<hdf5::File>,
    seg: Option<AtomicFile>,
    output: PathBuf,
    dir: PathBuf,
    next_seg: u32,
    /// Every track of the store, folded or journaled: stem -> (segment, song vector).
    songs: BTreeMap<String, (u32, Vec<f32>)>,
    /// Tracks of the open (uncommitted) segment.
    pending: Vec<(String, Vec<f32>)>,
    vector_names: Vec<String>,
}

impl StoreWriter {
    /// Opens `output` for adding tracks: the tracks of the existing store and of segments a
    /// killed run committed but did not fold are known (resume); nothing is copied.
    /// `vector_names` are the song-vector columns this run writes; a store written with other
    /// columns is refused. Temporaries of killed runs are removed.
    pub fn open(output: &Path, vector_names: Vec<String>) -> Result<Self, IoError> {
        let dir = segments_dir(output);
        let out_name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        remove_dead_temps(&dir, "seg-");
        remove_dead_temps(
            match output.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            },
            &format!("{out_name}."),
        );
        let mut w = StoreWriter {
            file: None,
            seg: None,
            output: output.to_path_buf(),
            dir,
            next_seg: 1,
            songs: BTreeMap::new(),
            pending: Vec::new(),
            vector_names,
        };
        let columns = |path: &Path, n: usize, first: &str, w: &StoreWriter| IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "the store's song vectors have {n} columns ({first}...), this run writes {}: \
                 use the same options (e.g. --no-scattering) or another output",
                w.vector_names.len()
            ),
        };
        let mut folded = BTreeSet::new();
        if output.exists() {
            let old = open_read(output)?;
            let names = track_names(output, &old)?;
            if let Ok(existing) = stored_vector_names(output, &old) {
                if !names.is_empty() && existing != w.vector_names {
                    let first = existing.first().cloned().unwrap_or_default();
                    return Err(columns(output, existing.len(), &first, &w));
                }
            }
            let table = read_song_table(output)?;
            let segs = segment_numbers(output, &old, table.ids.len())?;
            // Its tracks would count as done while their features are gone.
            for n in segs.iter().collect::<BTreeSet<_>>() {
                open_segment(output, *n)?;
            }
            for (i, id) in table.ids.iter().enumerate() {
                folded.insert(segs[i]);
                w.songs.insert(id.clone(), (segs[i], table.row(i).to_vec()));
            }
        }
        // Segments committed after the last fold (a killed or interrupted run): journaled.
        for (n, path) in list_segments(&w.dir)? {
            w.next_seg = w.next_seg.max(n + 1);
            if folded.contains(&n) {
                continue;
            }
            let f = crate::io::h5::open_file(&path)
                .map_err(|e| h5err(&path, "opening a segment", e))?;
            let tracks = f.group("tracks").map_err(|e| h5err(&path, "/tracks", e))?;
            for stem in track_names(&path, &f)? {
                let v = tracks
                    .group(&stem)
                    .and_then(|g| g.attr("song_vector"))
                    .and_then(|a| a.read_raw::<f32>())
                    .map_err(|e| h5err(&path, &format!("/tracks/{stem}@song_vector"), e))?;
                if v.len() != w.vector_names.len() {
                    return Err(columns(&path, v.len(), "", &w));
                }
                w.songs.entry(stem).or_insert((n, v));
            }
        }
        Ok(w)
    }

    /// Whether a track with this stem is already stored (or written in this run).
    pub fn contains(&self, stem: &str) -> bool {
        self.songs.contains_key(stem) || self.pending.iter().any(|p| p.0 == stem)
    }

    pub fn len(&self) -> usize {
        self.songs.len() + self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The open segment, created on first use.
    fn segment(&mut self) -> Result<&hdf5::File, IoError> {
        if self.file.is_none() {
            std::fs::create_dir_all(&self.dir).map_err(|e| IoError::io(&self.dir, e))?;
            let seg = AtomicFile::new(&self.dir.join(segment_name(self.next_seg)));
            let tmp = seg.temp().to_path_buf();
            self.seg = Some(seg);
            let f = crate::io::h5::create_file(&tmp).map_err(|e| h5err(&tmp, "creating", e))?;
            write_attr(&tmp, &f, "format", &AttrValue::S(FORMAT.into()))?;
            write_attr(&tmp, &f, "version", &AttrValue::U(VERSION))?;
            f.create_group("tracks")
                .map_err(|e| h5err(&tmp, "creating /tracks", e))?;
            self.file = Some(f);
        }
        self.file.as_ref().ok_or_else(|| IoError::Format {
            path: self.output.clone(),
            reason: "segment not open".into(),
        })
    }

    /// Adds one track to the open segment. Its song vector must have one value per vector
    /// name. Kept only once the segment is committed ([`StoreWriter::commit`] or `finish`).
    pub fn write(&mut self, rec: &TrackRecord) -> Result<(), IoError> {
        let out = self.output.clone();
        let Some(v) = rec.song_vector().map(|v| v.to_vec()) else {
            return Err(IoError::Field {
                path: out,
                field: format!("/tracks/{}@song_vector", rec.stem),
                reason: "missing".into(),
            });
        };
        if v.len() != self.vector_names.len() {
            return Err(IoError::Field {
                path: out,
                field: format!("/tracks/{}@song_vector", rec.stem),
                reason: format!(
                    "{} values for {} vector names",
                    v.len(),
                    self.vector_names.len()
                ),
            });
        }
        let f = self.segment()?;
        let tmp = PathBuf::from(f.filename());
        let tmp: &Path = &tmp;
        let tracks = f.group("tracks").map_err(|e| h5err(tmp, "/tracks", e))?;
        let g = tracks
            .create_group(&rec.stem)
            .map_err(|e| h5err(tmp, &format!("creating /tracks/{}", rec.stem), e))?;
        for (name, shape, data) in &rec.datasets {
            g.new_dataset::<f32>()
                .shape(shape.clone())
                .create(name.as_str())
                .and_then(|d| d.write_raw(data))
                .map_err(|e| h5err(tmp, &format!("writing /tracks/{}/{name}", rec.stem), e))?;
        }
        for (name, v) in &rec.attrs {
            write_attr(tmp, &g, name, v)?;
        }
        self.pending.push((rec.stem.clone(), v));
        Ok(())
    }

    /// Commits the open segment (closed, synced, renamed into `NAME.d/`): from here on a kill
    /// loses none of its tracks; the next open picks them up. Nothing to do when none is open.
    pub fn commit(&mut self) -> Result<(), IoError> {
        let Some(f) = self.file.take() else {
            return Ok(());
        };
        let tmp = PathBuf::from(f.filename());
        f.flush().map_err(|e| h5err(&tmp, "flushing", e))?;
        drop(f);
        if let Some(seg) = self.seg.take() {
            seg.commit()?;
        }
        for (stem, v) in self.pending.drain(..) {
            self.songs.insert(stem, (self.next_seg, v));
        }
        self.next_seg += 1;
        Ok(())
    }

    /// Commits the open segment and folds every segment into the store: a new small index
    /// (`/songs` and one external link per track) written beside the output and renamed over
    /// it. Returns the number of tracks in the store.
    pub fn finish(mut self) -> Result<usize, IoError> {
        self.commit()?;
        let out = AtomicFile::new(&self.output);
        let tmp = out.temp().to_path_buf();
        let dir_name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        {
            let f = crate::io::h5::create_file(&tmp).map_err(|e| h5err(&tmp, "creating", e))?;
            write_attr(&tmp, &f, "format", &AttrValue::S(FORMAT.into()))?;
            write_attr(&tmp, &f, "version", &AttrValue::U(VERSION))?;
            let tracks = f
                .create_group("tracks")
                .map_err(|e| h5err(&tmp, "creating /tracks", e))?;
            let dim = self.vector_names.len();
            let mut vectors = Vec::with_capacity(self.songs.len() * dim);
            let mut segs = Vec::with_capacity(self.songs.len());
            for (id, (seg, v)) in &self.songs {
                tracks
                    .link_external(
                        &format!("{dir_name}/{}", segment_name(*seg)),
                        &format!("/tracks/{id}"),
                        id,
                    )
                    .map_err(|e| h5err(&tmp, &format!("linking /tracks/{id}"), e))?;
                vectors.extend_from_slice(v);
                segs.push(*seg);
            }
            let songs = f
                .create_group("songs")
                .map_err(|e| h5err(&tmp, "creating /songs", e))?;
            let ids: Vec<String> = self.songs.keys().cloned().collect();
            write_strings(&songs, "ids", &ids).map_err(|e| h5err(&tmp, "writing /songs/ids", e))?;
            write_strings(&songs, "vector_names", &self.vector_names)
                .map_err(|e| h5err(&tmp, "writing /songs/vector_names", e))?;
            songs
                .new_dataset::<f32>()
                .shape([ids.len(), dim])
                .create("vectors")
                .and_then(|d| d.write_raw(&vectors))
                .map_err(|e| h5err(&tmp, "writing /songs/vectors", e))?;
            songs
                .new_dataset::<u32>()
                .shape([segs.len()])
                .create("segment")
                .and_then(|d| d.write_raw(&segs))
                .map_err(|e| h5err(&tmp, "writing /songs/segment", e))?;
            f.flush().map_err(|e| h5err(&tmp, "flushing", e))?;
        }
        out.commit()?;
        Ok(self.songs.len())
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

/// Tracks per segment written by [`merge`].
const MERGE_SEGMENT_TRACKS: usize = 64;

/// Merges stores into `output` (created, or extended when it exists). Tracks whose stem is
/// already present are kept from the first store that has them.
/// A track length as the `--seconds` that asked for it (0: whole tracks).
pub fn describe_seconds(s: f64) -> String {
    if s > 0.0 {
        format!("--seconds {s}")
    } else {
        "whole tracks (no --seconds)".to_string()
    }
}

/// The `max_seconds` the store's tracks were computed with (0: whole tracks), if it has any.
pub fn stored_seconds(path: &Path) -> Result<Option<f64>, IoError> {
    store_seconds(path, &open_read(path)?)
}

/// The `max_seconds` its first track was computed with (0: whole tracks), if it has tracks.
fn store_seconds(path: &Path, f: &hdf5::File) -> Result<Option<f64>, IoError> {
    let Some(first) = track_names(path, f)?.into_iter().next() else {
        return Ok(None);
    };
    Ok(match read_track(path, &first)?.attr("max_seconds") {
        Some(AttrValue::F(s)) => Some(*s),
        _ => None,
    })
}

pub fn merge(inputs: &[PathBuf], output: &Path) -> Result<MergeSummary, IoError> {
    let mut names: Option<Vec<String>> = None;
    // Tracks cut at other lengths are not the same features: one store holds one length.
    let mut seconds: Option<(f64, &Path)> = None;
    let show = describe_seconds;
    let out_store = output.exists().then_some(output);
    for p in out_store
        .into_iter()
        .chain(inputs.iter().map(PathBuf::as_path))
    {
        let f = open_read(p)?;
        if let Some(s) = store_seconds(p, &f)? {
            match seconds {
                None => seconds = Some((s, p)),
                Some((first, fp)) if first != s => {
                    return Err(IoError::Format {
                        path: p.to_path_buf(),
                        reason: format!(
                            "its tracks were computed from {}, those of {} from {}: stores of different --seconds cannot be merged",
                            show(s),
                            fp.display(),
                            show(first)
                        ),
                    })
                }
                _ => {}
            }
        }
    }
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
        let segments = track_segments(p, &f)?;
        let mut open: Option<(u32, PathBuf, hdf5::File)> = None;
        for stem in track_names(p, &f)? {
            if w.contains(&stem) {
                summary
                    .duplicates
                    .push((p.display().to_string(), stem.clone()));
                continue;
            }
            let n = *segments.get(&stem).ok_or_else(|| IoError::Field {
                path: p.clone(),
                field: format!("/tracks/{stem}"),
                reason: "a track linked in /tracks but not listed in /songs".into(),
            })?;
            let (_, seg, sf) = match open {
                Some(ref o) if o.0 == n => o,
                _ => {
                    let (seg, sf) = open_segment(p, n)?;
                    &*open.insert((n, seg, sf))
                }
            };
            let g = sf
                .group("tracks")
                .and_then(|t| t.group(&stem))
                .map_err(|e| h5err(seg, &format!("/tracks/{stem}"), e))?;
            w.write(&read_record(seg, &g, &stem)?)?;
            summary.added += 1;
            if summary.added % MERGE_SEGMENT_TRACKS == 0 {
                w.commit()?;
            }
        }
    }
    summary.tracks = w.finish()?;
    Ok(summary)
}
