//! The dataset reader: [`Dataset::load`], checking every length, range and value.

use std::path::Path;

use hdf5::H5Type;

use super::{Dataset, Portraits, SongMeta, SongVectors, FORMAT, VERSION};
use crate::error::IoError;
use crate::io::h5::{h5err, read_array_checked, read_attr_bytes, read_strings_checked};

impl Dataset {
    /// The number of folds a dataset file was prepared with (its root attribute `folds`), read
    /// without loading the rest: the default of `compare --folds`. `None` when the file cannot
    /// be read so far; [`Dataset::load`] then says why.
    pub fn stored_folds(path: &Path) -> Option<u32> {
        let f = crate::io::h5::open_file(path).ok()?;
        f.attr("folds").ok()?.read_scalar::<u32>().ok()
    }

    /// Reads a dataset file written by [`Dataset::save`] (or by any tool following the layout).
    pub fn load(path: &Path) -> Result<Dataset, IoError> {
        let file_len = std::fs::metadata(path)
            .map_err(|e| IoError::io(path, e))?
            .len() as usize;
        let f = crate::io::h5::open_file(path).map_err(|e| h5err(path, "opening the file", e))?;
        let r = Reader {
            f: &f,
            path,
            file_len,
        };
        if let Some(kind) = crate::io::h5::other_kind(&f, FORMAT) {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field: "format".into(),
                reason: format!("is {kind}, not a dataset; give the file `ainrnn prepare` wrote"),
            });
        }
        // The version first: it is a plain integer, while an older file's `format` is a
        // variable-length string, which is never read (see `io::h5`).
        let version: u32 = r.attr("version").map_err(|e| IoError::Field {
            path: path.to_path_buf(),
            field: "format".into(),
            reason: format!("not an ainrnn dataset file: no integer root attribute version ({e})"),
        })?;
        if version < VERSION {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field: "version".into(),
                reason: format!("written by an older ainrnn (format {version}); run prepare again"),
            });
        }
        if version != VERSION {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field: "version".into(),
                reason: format!(
                    "unsupported dataset version {version}: this build of ainrnn reads version {VERSION}; re-create the file with `ainrnn prepare`"
                ),
            });
        }
        let format = r.attr_string("format")?;
        if format != FORMAT {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field: "format".into(),
                reason: format!("is {format:?}, expected {FORMAT:?}: not an ainrnn dataset file"),
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
        // A flag other than 0 or 1 is reported once the structure is known to hold (to name the
        // user of an entry); `bool` cannot keep it.
        let bad_visible = not_a_flag(&visible);
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
        let mut bad_present = None;
        let song_vectors = if f.link_exists("song_vectors") {
            let names = r.strings("/song_vectors/names")?;
            let dim = names.len();
            let g = f
                .group("song_vectors")
                .map_err(|e| h5err(path, "/song_vectors", e))?;
            let source = read_attr_bytes(&g, "source").map_err(|e| IoError::Field {
                path: path.to_path_buf(),
                field: "/song_vectors@source".into(),
                reason: e.to_string(),
            })?;
            let present: Vec<u8> = r.array_n("/song_vectors/present", n_songs)?;
            bad_present = not_a_flag(&present);
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
        if let Some((i, v)) = bad_visible {
            return Err(r.field(
                "/folds/visible",
                format!(
                    "user {}, entry {i}: {v} is not a flag (0 or 1)",
                    d.user_of(i)
                ),
            ));
        }
        if let Some((s, v)) = bad_present {
            return Err(r.field(
                "/song_vectors/present",
                format!("song {s}: {v} is not a flag (0 or 1)"),
            ));
        }
        Ok(d)
    }
}

/// The first value of a 0/1 flag array that is neither, with its position.
fn not_a_flag(v: &[u8]) -> Option<(usize, u8)> {
    v.iter().position(|&x| x > 1).map(|i| (i, v[i]))
}

struct Reader<'a> {
    f: &'a hdf5::File,
    path: &'a Path,
    /// No array holds more bytes than the file: a cap on every allocation a header asks for.
    file_len: usize,
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
        self.dataset(name)?;
        read_strings_checked(self.f, name, self.file_len / 8, self.file_len)
            .map_err(|e| self.field(name, e))
    }

    fn strings_n(&self, name: &str, n: usize) -> Result<Vec<String>, IoError> {
        let v = self.strings(name)?;
        if v.len() != n {
            return Err(self.field(name, format!("has {} entries, expected {n}", v.len())));
        }
        Ok(v)
    }

    fn array<T: H5Type + bytemuck::Pod>(&self, name: &str) -> Result<Vec<T>, IoError> {
        self.dataset(name)?;
        let cap = self.file_len / std::mem::size_of::<T>().max(1);
        read_array_checked(self.f, name, cap).map_err(|e| self.field(name, e))
    }

    fn array_n<T: H5Type + bytemuck::Pod>(&self, name: &str, n: usize) -> Result<Vec<T>, IoError> {
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
        read_array_checked(self.f, name, n).map_err(|e| self.field(name, e))
    }

    fn attr<T: H5Type>(&self, name: &str) -> Result<T, IoError> {
        let a = self
            .f
            .attr(name)
            .map_err(|e| self.field(name, format!("missing root attribute ({e})")))?;
        a.read_scalar::<T>().map_err(|e| self.field(name, e))
    }

    fn attr_string(&self, name: &str) -> Result<String, IoError> {
        read_attr_bytes(self.f, name).map_err(|e| {
            self.field(
                name,
                format!("missing or not a string root attribute ({e})"),
            )
        })
    }
}
