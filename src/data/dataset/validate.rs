//! Consistency checks of a [`Dataset`]: every length and range, naming the offending field.

use super::{Dataset, NO_GENRE};

impl Dataset {
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
        if p.genre_names.len() >= NO_GENRE as usize {
            return err(
                "/portrait/genre_names",
                format!("has {} names; at most 254 fit", p.genre_names.len()),
            );
        }
        if let Some(s) = p
            .song_genre
            .iter()
            .position(|&c| c != NO_GENRE && c as usize >= p.genre_names.len())
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
}
