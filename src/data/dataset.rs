//! The dataset file (`dataset.h5`): everything the model and the evaluation need, in one HDF5
//! file readable by h5py. Layout (format "ainrnn-dataset", version 1):
//!
//! ```text
//! /                       attrs: format="ainrnn-dataset", version=2 (u32), source, folds (u32),
//!                                seed (u64), visible_share (f64), min_listens (u32),
//!                                min_song_users (u32), history_order
//! /users/ids              str  [users]          original user ids (dense index = position)
//! /songs/ids              str  [songs]          original song (item) ids
//! /songs/title            str  [songs]
//! /songs/artist           str  [songs]
//! /songs/genre            str  [songs]          top genre-bearing artist term, or "unknown"
//! /songs/track_id         str  [songs]          MSD track id, or ""
//! /songs/year             u16  [songs]          0 = unknown
//! /interactions/indptr    u64  [users + 1]      CSR by user
//! /interactions/indices   u32  [interactions]   song index, in history order
//! /interactions/plays     f32  [interactions]   play count (HetRec: weight)
//! /folds/user_fold        u32  [users]          0..folds
//! /folds/visible          u8   [interactions]   1 = visible history when the user is a test user
//! /portrait/age_bucket    u8   [users]          + /portrait/age_bucket_names str (0 = unknown)
//! /portrait/language      u16  [users]          + /portrait/language_names str (0 = unknown)
//! /portrait/genre_dist    f32  [users, G]       + /portrait/genre_names str [G]
//! /portrait/song_genre    u8   [songs]          genre category per song, 255 = unknown
//! /portrait/song_language u16  [songs]          language per song, 0 = unknown
//! /song_vectors/values    f32  [songs, dim]     optional; attr source = msd | audio | msd+audio
//! /song_vectors/names     str  [dim]
//! /song_vectors/present   u8   [songs]
//! ```
//! Strings are variable-length UTF-8. `load` checks every length and range and names the field
//! that is wrong; an unknown `version` is rejected.

use std::path::{Path, PathBuf};

use hdf5::types::{FixedAscii, FixedUnicode, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::H5Type;

use crate::error::IoError;

pub const FORMAT: &str = "ainrnn-dataset";
/// Version 2 added the per-song portrait labels (the model computes a user's language and genre
/// distribution from the visible history only).
pub const VERSION: u32 = 2;
/// Stored as the `history_order` root attribute.
pub const HISTORY_ORDER: &str =
    "input file order (the Taste Profile has no timestamps: not temporal)";

/// Display metadata of one song (or HetRec artist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SongMeta {
    pub title: String,
    pub artist: String,
    /// Top genre-bearing artist term, or "unknown".
    pub genre: String,
    /// 0 = unknown.
    pub year: u16,
    /// MSD track id, or "".
    pub track_id: String,
}

impl SongMeta {
    pub fn unknown() -> Self {
        SongMeta {
            title: String::new(),
            artist: String::new(),
            genre: "unknown".into(),
            year: 0,
            track_id: String::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Portraits {
    pub age_bucket: Vec<u8>,
    /// Index 0 = "unknown".
    pub age_bucket_names: Vec<String>,
    pub language: Vec<u16>,
    /// Index 0 = "unknown".
    pub language_names: Vec<String>,
    /// G genre/type categories.
    pub genre_names: Vec<String>,
    /// users × G, rows sum to 1 (or are all 0 when no song of the user has a known genre).
    /// Language and genre distribution describe the user's whole history: statistics only.
    pub genre_dist: Vec<f32>,
    /// Per song: genre category (index into `genre_names`, [`super::portrait::NO_GENRE`] =
    /// unknown) and language (index into `language_names`, 0 = unknown). The model builds a
    /// portrait from these over the history it is shown.
    pub song_genre: Vec<u8>,
    pub song_language: Vec<u16>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SongVectors {
    pub dim: usize,
    /// One name per column, e.g. "timbre_mean_0".
    pub names: Vec<String>,
    /// "msd", "audio" or "msd+audio".
    pub source: String,
    /// songs × dim, z-scored per column over the songs that have a value.
    pub values: Vec<f32>,
    /// Songs without any vector have zeros and `false`.
    pub present: Vec<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// "taste-profile", "hetrec-lastfm-2k", or "synthetic ..." (synthetic data always says so).
    pub source: String,
    pub user_ids: Vec<String>,
    pub song_ids: Vec<String>,
    pub song_meta: Vec<SongMeta>,
    pub indptr: Vec<u64>,
    pub indices: Vec<u32>,
    pub plays: Vec<f32>,
    pub folds: u32,
    pub user_fold: Vec<u32>,
    pub visible: Vec<bool>,
    pub portrait: Portraits,
    pub song_vectors: Option<SongVectors>,
    pub seed: u64,
    pub visible_share: f64,
    pub min_listens: u32,
    pub min_song_users: u32,
}

/// One cross-validation split.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// Users not in the test fold (all their interactions are training data).
    pub train_users: Vec<u32>,
    /// Users in the test fold.
    pub test_users: Vec<u32>,
    /// Per test user: visible songs and plays (history order).
    pub visible: Vec<(Vec<u32>, Vec<f32>)>,
    /// Per test user: held-out songs and plays (the truth to predict).
    pub held_out: Vec<(Vec<u32>, Vec<f32>)>,
}

impl Dataset {
    pub fn users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn songs(&self) -> usize {
        self.song_ids.len()
    }

    pub fn interactions(&self) -> usize {
        self.indices.len()
    }

    /// Songs and plays of one user, in history order.
    pub fn history(&self, user: usize) -> (&[u32], &[f32]) {
        let r = self.indptr[user] as usize..self.indptr[user + 1] as usize;
        (&self.indices[r.clone()], &self.plays[r])
    }

    /// The split with `test_fold` as test fold: test users' interactions are divided into the
    /// visible history and the held-out truth by `visible`. A test user with a single interaction
    /// has it visible and nothing held out (evaluation skips users without held-out songs).
    ///
    /// Panics if `test_fold >= self.folds` (a caller bug: valid folds are `0..folds`).
    pub fn split(&self, test_fold: u32) -> Split {
        assert!(
            test_fold < self.folds,
            "test fold {test_fold} out of range: the dataset has {} folds (0..{})",
            self.folds,
            self.folds
        );
        let mut s = Split {
            train_users: Vec::new(),
            test_users: Vec::new(),
            visible: Vec::new(),
            held_out: Vec::new(),
        };
        for u in 0..self.users() {
            if self.user_fold[u] != test_fold {
                s.train_users.push(u as u32);
                continue;
            }
            s.test_users.push(u as u32);
            let mut vis = (Vec::new(), Vec::new());
            let mut held = (Vec::new(), Vec::new());
            for r in self.indptr[u] as usize..self.indptr[u + 1] as usize {
                let dst = if self.visible[r] { &mut vis } else { &mut held };
                dst.0.push(self.indices[r]);
                dst.1.push(self.plays[r]);
            }
            s.visible.push(vis);
            s.held_out.push(held);
        }
        s
    }

    /// Checks every length and range; the error names the offending field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |f: &str, r: String| Err((f.to_string(), r));
        let (users, songs, nnz) = (self.users(), self.songs(), self.interactions());
        if self.indptr.len() != users + 1 {
            return err(
                "/interactions/indptr",
                format!(
                    "has {} entries, expected users + 1 = {}",
                    self.indptr.len(),
                    users + 1
                ),
            );
        }
        if self.indptr[0] != 0 || self.indptr[users] != nnz as u64 {
            return err(
                "/interactions/indptr",
                format!(
                    "must start at 0 and end at the number of interactions {nnz} (found {}..{})",
                    self.indptr[0], self.indptr[users]
                ),
            );
        }
        if let Some(u) = (0..users).find(|&u| self.indptr[u] > self.indptr[u + 1]) {
            return err("/interactions/indptr", format!("decreases at user {u}"));
        }
        if self.plays.len() != nnz {
            return err(
                "/interactions/plays",
                format!("has {} entries, expected {nnz}", self.plays.len()),
            );
        }
        if let Some(i) = self.indices.iter().position(|&s| s as usize >= songs) {
            return err(
                "/interactions/indices",
                format!(
                    "entry {i} is song {} but there are {songs} songs",
                    self.indices[i]
                ),
            );
        }
        if self.song_meta.len() != songs {
            return err(
                "/songs",
                format!(
                    "metadata for {} songs, expected {songs}",
                    self.song_meta.len()
                ),
            );
        }
        if self.folds == 0 {
            return err("folds", "must be at least 1".into());
        }
        if self.user_fold.len() != users {
            return err(
                "/folds/user_fold",
                format!("has {} entries, expected {users}", self.user_fold.len()),
            );
        }
        if let Some(u) = self.user_fold.iter().position(|&f| f >= self.folds) {
            return err(
                "/folds/user_fold",
                format!(
                    "user {u} is in fold {} but there are {} folds",
                    self.user_fold[u], self.folds
                ),
            );
        }
        if self.visible.len() != nnz {
            return err(
                "/folds/visible",
                format!("has {} entries, expected {nnz}", self.visible.len()),
            );
        }
        if !(0.0..=1.0).contains(&self.visible_share) {
            return err(
                "visible_share",
                format!("{} is not in [0, 1]", self.visible_share),
            );
        }
        let p = &self.portrait;
        if p.age_bucket.len() != users {
            return err(
                "/portrait/age_bucket",
                format!("has {} entries, expected {users}", p.age_bucket.len()),
            );
        }
        if let Some(u) = p
            .age_bucket
            .iter()
            .position(|&a| a as usize >= p.age_bucket_names.len())
        {
            return err(
                "/portrait/age_bucket",
                format!(
                    "user {u} has bucket {} but only {} names",
                    p.age_bucket[u],
                    p.age_bucket_names.len()
                ),
            );
        }
        if p.language.len() != users {
            return err(
                "/portrait/language",
                format!("has {} entries, expected {users}", p.language.len()),
            );
        }
        if let Some(u) = p
            .language
            .iter()
            .position(|&a| a as usize >= p.language_names.len())
        {
            return err(
                "/portrait/language",
                format!(
                    "user {u} has language {} but only {} names",
                    p.language[u],
                    p.language_names.len()
                ),
            );
        }
        if p.genre_dist.len() != users * p.genre_names.len() {
            return err(
                "/portrait/genre_dist",
                format!(
                    "has {} values, expected users × genres = {users} × {}",
                    p.genre_dist.len(),
                    p.genre_names.len()
                ),
            );
        }
        if p.genre_names.len() >= super::portrait::NO_GENRE as usize {
            return err(
                "/portrait/genre_names",
                format!("has {} names; at most 254 fit", p.genre_names.len()),
            );
        }
        if let Some(s) = p
            .song_genre
            .iter()
            .position(|&c| c != super::portrait::NO_GENRE && c as usize >= p.genre_names.len())
        {
            return err(
                "/portrait/song_genre",
                format!(
                    "song {s} has genre {} but only {} names (255 = unknown)",
                    p.song_genre[s],
                    p.genre_names.len()
                ),
            );
        }
        if let Some(s) = p
            .song_language
            .iter()
            .position(|&l| l as usize >= p.language_names.len())
        {
            return err(
                "/portrait/song_language",
                format!(
                    "song {s} has language {} but only {} names",
                    p.song_language[s],
                    p.language_names.len()
                ),
            );
        }
        if let Some(v) = &self.song_vectors {
            if v.names.len() != v.dim {
                return err(
                    "/song_vectors/names",
                    format!("has {} names for {} columns", v.names.len(), v.dim),
                );
            }
            if v.values.len() != songs * v.dim {
                return err(
                    "/song_vectors/values",
                    format!(
                        "has {} values, expected songs × dim = {songs} × {}",
                        v.values.len(),
                        v.dim
                    ),
                );
            }
            if v.present.len() != songs {
                return err(
                    "/song_vectors/present",
                    format!("has {} entries, expected {songs}", v.present.len()),
                );
            }
        }
        Ok(())
    }

    /// Writes the dataset atomically: a temporary file in the same folder, renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<(), IoError> {
        if let Err((field, reason)) = self.validate() {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field,
                reason: format!("refusing to save an inconsistent dataset: {reason}"),
            });
        }
        let tmp = temp_path(path);
        let result = (|| {
            check_output(path)?;
            let what = format!("creating the temporary file {}", tmp.display());
            let file = hdf5::File::create(&tmp).map_err(|e| h5(path, &what, e))?;
            self.write_into(&file).map_err(|e| h5(path, "writing", e))?;
            file.close().map_err(|e| h5(path, "closing the file", e))?;
            std::fs::rename(&tmp, path).map_err(|e| IoError::io(path, e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn write_into(&self, f: &hdf5::File) -> hdf5::Result<()> {
        attr_str(f, "format", FORMAT)?;
        attr(f, "version", &VERSION)?;
        attr_str(f, "source", &self.source)?;
        attr(f, "folds", &self.folds)?;
        attr(f, "seed", &self.seed)?;
        attr(f, "visible_share", &self.visible_share)?;
        attr(f, "min_listens", &self.min_listens)?;
        attr(f, "min_song_users", &self.min_song_users)?;
        attr_str(f, "history_order", HISTORY_ORDER)?;

        let g = f.create_group("users")?;
        strings(&g, "ids", &self.user_ids)?;

        let g = f.create_group("songs")?;
        strings(&g, "ids", &self.song_ids)?;
        let col =
            |get: fn(&SongMeta) -> &str| -> Vec<&str> { self.song_meta.iter().map(get).collect() };
        strings(&g, "title", &col(|m| &m.title))?;
        strings(&g, "artist", &col(|m| &m.artist))?;
        strings(&g, "genre", &col(|m| &m.genre))?;
        strings(&g, "track_id", &col(|m| &m.track_id))?;
        let years: Vec<u16> = self.song_meta.iter().map(|m| m.year).collect();
        array(&g, "year", &years, &[years.len()])?;

        let g = f.create_group("interactions")?;
        array(&g, "indptr", &self.indptr, &[self.indptr.len()])?;
        array(&g, "indices", &self.indices, &[self.indices.len()])?;
        array(&g, "plays", &self.plays, &[self.plays.len()])?;

        let g = f.create_group("folds")?;
        array(&g, "user_fold", &self.user_fold, &[self.user_fold.len()])?;
        let vis: Vec<u8> = self.visible.iter().map(|&v| v as u8).collect();
        array(&g, "visible", &vis, &[vis.len()])?;

        let p = &self.portrait;
        let g = f.create_group("portrait")?;
        array(&g, "age_bucket", &p.age_bucket, &[p.age_bucket.len()])?;
        strings(&g, "age_bucket_names", &p.age_bucket_names)?;
        array(&g, "language", &p.language, &[p.language.len()])?;
        strings(&g, "language_names", &p.language_names)?;
        array(
            &g,
            "genre_dist",
            &p.genre_dist,
            &[self.users(), p.genre_names.len()],
        )?;
        strings(&g, "genre_names", &p.genre_names)?;
        array(&g, "song_genre", &p.song_genre, &[p.song_genre.len()])?;
        array(
            &g,
            "song_language",
            &p.song_language,
            &[p.song_language.len()],
        )?;

        if let Some(v) = &self.song_vectors {
            let g = f.create_group("song_vectors")?;
            attr_str(&g, "source", &v.source)?;
            array(&g, "values", &v.values, &[self.songs(), v.dim])?;
            strings(&g, "names", &v.names)?;
            let present: Vec<u8> = v.present.iter().map(|&p| p as u8).collect();
            array(&g, "present", &present, &[present.len()])?;
        }
        Ok(())
    }

    /// Reads a dataset file written by [`Dataset::save`] (or by any tool following the layout).
    pub fn load(path: &Path) -> Result<Dataset, IoError> {
        let f = hdf5::File::open(path).map_err(|e| h5(path, "opening the file", e))?;
        let r = Reader { f: &f, path };
        let format = r.attr_string("format")?;
        if format != FORMAT {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field: "format".into(),
                reason: format!("is {format:?}, expected {FORMAT:?}: not an ainrnn dataset file"),
            });
        }
        let version: u32 = r.attr("version")?;
        if version != VERSION {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field: "version".into(),
                reason: format!(
                    "unsupported dataset version {version}: this build of ainrnn reads version {VERSION}; re-create the file with `ainrnn prepare`"
                ),
            });
        }
        let song_ids = r.strings("/songs/ids")?;
        let n_songs = song_ids.len();
        let title = r.strings_n("/songs/title", n_songs)?;
        let artist = r.strings_n("/songs/artist", n_songs)?;
        let genre = r.strings_n("/songs/genre", n_songs)?;
        let track_id = r.strings_n("/songs/track_id", n_songs)?;
        let year: Vec<u16> = r.array_n("/songs/year", n_songs)?;
        let song_meta = title
            .into_iter()
            .zip(artist)
            .zip(genre)
            .zip(track_id)
            .zip(year)
            .map(|((((title, artist), genre), track_id), year)| SongMeta {
                title,
                artist,
                genre,
                year,
                track_id,
            })
            .collect();
        let user_ids = r.strings("/users/ids")?;
        let n_users = user_ids.len();
        let indptr: Vec<u64> = r.array_n("/interactions/indptr", n_users + 1)?;
        let indices: Vec<u32> = r.array("/interactions/indices")?;
        let nnz = indices.len();
        let plays: Vec<f32> = r.array_n("/interactions/plays", nnz)?;
        let user_fold: Vec<u32> = r.array_n("/folds/user_fold", n_users)?;
        let visible: Vec<u8> = r.array_n("/folds/visible", nnz)?;
        let genre_names = r.strings("/portrait/genre_names")?;
        let portrait = Portraits {
            age_bucket: r.array_n("/portrait/age_bucket", n_users)?,
            age_bucket_names: r.strings("/portrait/age_bucket_names")?,
            language: r.array_n("/portrait/language", n_users)?,
            language_names: r.strings("/portrait/language_names")?,
            genre_dist: r.array_n("/portrait/genre_dist", n_users * genre_names.len())?,
            genre_names,
            song_genre: r.array_n("/portrait/song_genre", n_songs)?,
            song_language: r.array_n("/portrait/song_language", n_songs)?,
        };
        let song_vectors = if f.link_exists("song_vectors") {
            let names = r.strings("/song_vectors/names")?;
            let dim = names.len();
            let g = f
                .group("song_vectors")
                .map_err(|e| h5(path, "/song_vectors", e))?;
            let source = read_attr_string(&g, "source").map_err(|e| IoError::Field {
                path: path.to_path_buf(),
                field: "/song_vectors@source".into(),
                reason: e.to_string(),
            })?;
            let present: Vec<u8> = r.array_n("/song_vectors/present", n_songs)?;
            Some(SongVectors {
                dim,
                names,
                source,
                values: r.array_n("/song_vectors/values", n_songs * dim)?,
                present: present.into_iter().map(|p| p != 0).collect(),
            })
        } else {
            None
        };
        let d = Dataset {
            source: r.attr_string("source")?,
            user_ids,
            song_ids,
            song_meta,
            indptr,
            indices,
            plays,
            folds: r.attr("folds")?,
            user_fold,
            visible: visible.into_iter().map(|v| v != 0).collect(),
            portrait,
            song_vectors,
            seed: r.attr("seed")?,
            visible_share: r.attr("visible_share")?,
            min_listens: r.attr("min_listens")?,
            min_song_users: r.attr("min_song_users")?,
        };
        d.validate().map_err(|(field, reason)| IoError::Field {
            path: path.to_path_buf(),
            field,
            reason,
        })?;
        Ok(d)
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

/// `dir/.name.<pid>.tmp` next to `path`, so the final rename stays on one file system.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn h5(path: &Path, what: &str, e: hdf5::Error) -> IoError {
    IoError::Hdf5 {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

fn vlu(s: &str) -> VarLenUnicode {
    // Interior NULs cannot be stored in a C string; ids and titles never contain them.
    let clean: String = s.chars().filter(|&c| c != '\0').collect();
    clean.parse().unwrap_or_default()
}

fn attr_str(loc: &hdf5::Location, name: &str, v: &str) -> hdf5::Result<()> {
    loc.new_attr::<VarLenUnicode>()
        .create(name)?
        .write_scalar(&vlu(v))
}

fn attr<T: H5Type>(loc: &hdf5::Location, name: &str, v: &T) -> hdf5::Result<()> {
    loc.new_attr::<T>().create(name)?.write_scalar(v)
}

pub(crate) fn strings<S: AsRef<str>>(g: &hdf5::Group, name: &str, v: &[S]) -> hdf5::Result<()> {
    let data: Vec<VarLenUnicode> = v.iter().map(|s| vlu(s.as_ref())).collect();
    let ds = g
        .new_dataset::<VarLenUnicode>()
        .shape(data.len())
        .create(name)?;
    if !data.is_empty() {
        ds.write_raw(&data)?;
    }
    Ok(())
}

pub(crate) fn array<T: H5Type>(
    g: &hdf5::Group,
    name: &str,
    v: &[T],
    shape: &[usize],
) -> hdf5::Result<()> {
    let ds = g.new_dataset::<T>().shape(shape).create(name)?;
    if !v.is_empty() {
        ds.write_raw(v)?;
    }
    Ok(())
}

/// Reads any string type h5py or hdf5 may have written (variable or fixed length, ASCII or
/// UTF-8); invalid UTF-8 is replaced, never trusted.
pub(crate) fn read_strings(c: &hdf5::Container) -> hdf5::Result<Vec<String>> {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match c.dtype()?.to_descriptor()? {
        TypeDescriptor::VarLenUnicode => Ok(c
            .read_raw::<VarLenUnicode>()?
            .iter()
            .map(|s| lossy(s.as_bytes()))
            .collect()),
        TypeDescriptor::VarLenAscii => Ok(c
            .read_raw::<VarLenAscii>()?
            .iter()
            .map(|s| lossy(s.as_bytes()))
            .collect()),
        TypeDescriptor::FixedAscii(_) => Ok(c
            .read_raw::<FixedAscii<4096>>()?
            .iter()
            .map(|s| lossy(s.as_bytes()))
            .collect()),
        TypeDescriptor::FixedUnicode(_) => Ok(c
            .read_raw::<FixedUnicode<4096>>()?
            .iter()
            .map(|s| lossy(s.as_bytes()))
            .collect()),
        other => Err(hdf5::Error::from(format!(
            "expected strings, found {other}"
        ))),
    }
}

pub(crate) fn read_attr_string(loc: &hdf5::Location, name: &str) -> hdf5::Result<String> {
    let a = loc.attr(name)?;
    let mut v = read_strings(&a)?;
    if v.len() != 1 {
        return Err(hdf5::Error::from(format!(
            "expected one string, found {}",
            v.len()
        )));
    }
    Ok(v.remove(0))
}

struct Reader<'a> {
    f: &'a hdf5::File,
    path: &'a Path,
}

impl Reader<'_> {
    fn field(&self, field: &str, reason: impl std::fmt::Display) -> IoError {
        IoError::Field {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }

    fn dataset(&self, name: &str) -> Result<hdf5::Dataset, IoError> {
        if !self.f.link_exists(name.trim_start_matches('/')) {
            return Err(self.field(name, "missing"));
        }
        self.f.dataset(name).map_err(|e| self.field(name, e))
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, IoError> {
        let ds = self.dataset(name)?;
        read_strings(&ds).map_err(|e| self.field(name, e))
    }

    fn strings_n(&self, name: &str, n: usize) -> Result<Vec<String>, IoError> {
        let v = self.strings(name)?;
        if v.len() != n {
            return Err(self.field(name, format!("has {} entries, expected {n}", v.len())));
        }
        Ok(v)
    }

    fn array<T: H5Type>(&self, name: &str) -> Result<Vec<T>, IoError> {
        let ds = self.dataset(name)?;
        if ds.size() == 0 {
            return Ok(Vec::new());
        }
        ds.read_raw::<T>().map_err(|e| self.field(name, e))
    }

    fn array_n<T: H5Type>(&self, name: &str, n: usize) -> Result<Vec<T>, IoError> {
        let ds = self.dataset(name)?;
        if ds.size() != n {
            return Err(self.field(
                name,
                format!(
                    "has {} values (shape {:?}), expected {n}",
                    ds.size(),
                    ds.shape()
                ),
            ));
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        ds.read_raw::<T>().map_err(|e| self.field(name, e))
    }

    fn attr<T: H5Type>(&self, name: &str) -> Result<T, IoError> {
        let a = self
            .f
            .attr(name)
            .map_err(|e| self.field(name, format!("missing root attribute ({e})")))?;
        a.read_scalar::<T>().map_err(|e| self.field(name, e))
    }

    fn attr_string(&self, name: &str) -> Result<String, IoError> {
        read_attr_string(self.f, name).map_err(|e| {
            self.field(
                name,
                format!("missing or not a string root attribute ({e})"),
            )
        })
    }
}
