//! The dataset writer: [`Dataset::save`], through an atomic temporary file.

use std::path::Path;

use hdf5::H5Type;

use super::{Dataset, SongMeta, FORMAT, HISTORY_ORDER, VERSION};
use crate::error::IoError;
use crate::io::h5::{create_file, h5err, write_array, write_attr_bytes, write_strings};
use crate::io::{check_output, AtomicFile};

impl Dataset {
    /// Writes the dataset atomically: a temporary file in the same folder, renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<(), IoError> {
        if let Err((field, reason)) = self.validate() {
            return Err(IoError::Field {
                path: path.to_path_buf(),
                field,
                reason: format!("refusing to save an inconsistent dataset: {reason}"),
            });
        }
        check_output(path)?;
        let out = AtomicFile::new(path);
        let what = format!("creating the temporary file {}", out.temp().display());
        let file = create_file(out.temp()).map_err(|e| h5err(path, &what, e))?;
        self.write_into(&file)
            .map_err(|e| h5err(path, "writing", e))?;
        file.close()
            .map_err(|e| h5err(path, "closing the file", e))?;
        out.commit()
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
}

fn attr_str(loc: &hdf5::Location, name: &str, v: &str) -> hdf5::Result<()> {
    write_attr_bytes(loc, name, v)
}

fn attr<T: H5Type>(loc: &hdf5::Location, name: &str, v: &T) -> hdf5::Result<()> {
    loc.new_attr::<T>().create(name)?.write_scalar(v)
}

pub(crate) fn strings<S: AsRef<str>>(g: &hdf5::Group, name: &str, v: &[S]) -> hdf5::Result<()> {
    write_strings(g, name, v)
}

pub(crate) fn array<T: H5Type + bytemuck::Pod>(
    g: &hdf5::Group,
    name: &str,
    v: &[T],
    shape: &[usize],
) -> hdf5::Result<()> {
    write_array(g, name, v, shape)
}
