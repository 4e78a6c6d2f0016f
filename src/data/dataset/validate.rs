//! Consistency checks of a [`Dataset`]: every length and range, then every value's domain,
//! naming the offending field.

use super::{Dataset, NO_GENRE};

impl Dataset {
    /// Checks every length and range, then the values' domains (`validate_values`); the error
    /// names the offending field.
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
        // A fold without a user tests nothing and would average in as zero.
        if self.folds as usize > users.max(1) {
            return err(
                "folds",
                format!(
                    "{} folds for {users} users: a fold would have no user",
                    self.folds
                ),
            );
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
        self.validate_values()
    }

    /// The user whose history holds interaction `entry` (`indptr` must be valid).
    pub(super) fn user_of(&self, entry: usize) -> usize {
        self.indptr.partition_point(|&p| p <= entry as u64) - 1
    }

    /// The values' domains, once every length and range holds (one pass over each array):
    /// plays positive and finite, no song twice in one history, genre shares in [0, 1] with rows
    /// summing to 1 or 0, song vectors finite and all 0 for a song without one. The 0/1 flags
    /// (`visible`, `present`) are checked by the reader, before they become `bool`s.
    fn validate_values(&self) -> Result<(), (String, String)> {
        let err = |f: &str, r: String| Err((f.to_string(), r));
        if let Some(i) = self.plays.iter().position(|p| !(p.is_finite() && *p > 0.0)) {
            return err(
                "/interactions/plays",
                format!(
                    "user {}, entry {i}: {} plays; a play count must be finite and above 0",
                    self.user_of(i),
                    self.plays[i]
                ),
            );
        }
        // Per song, its latest interaction so far: a repeat within one history is one at or
        // after the history's start.
        let mut last = vec![usize::MAX; self.songs()];
        for u in 0..self.users() {
            let start = self.indptr[u] as usize;
            for i in start..self.indptr[u + 1] as usize {
                let s = self.indices[i] as usize;
                if last[s] != usize::MAX && last[s] >= start {
                    return err(
                        "/interactions/indices",
                        format!(
                            "user {u} has song {s} twice (entries {} and {i}); one interaction per (user, song), repeated listens are summed into its plays",
                            last[s]
                        ),
                    );
                }
                last[s] = i;
            }
        }
        let p = &self.portrait;
        let g = p.genre_names.len();
        for (u, row) in p.genre_dist.chunks_exact(g.max(1)).enumerate() {
            if let Some(c) = row.iter().position(|x| !(0.0..=1.0).contains(x)) {
                return err(
                    "/portrait/genre_dist",
                    format!(
                        "user {u}, genre {c} ({}): {} is not a share in [0, 1]",
                        p.genre_names[c], row[c]
                    ),
                );
            }
            let sum: f64 = row.iter().map(|&x| x as f64).sum();
            if sum != 0.0 && (sum - 1.0).abs() > 1e-3 {
                return err(
                    "/portrait/genre_dist",
                    format!(
                        "user {u}: the shares sum to {sum}, expected 1 (or all 0 when no song of the user has a known genre)"
                    ),
                );
            }
        }
        if let Some(v) = &self.song_vectors {
            for (s, row) in v.values.chunks_exact(v.dim.max(1)).enumerate() {
                if let Some(c) = row.iter().position(|x| !x.is_finite()) {
                    return err(
                        "/song_vectors/values",
                        format!(
                            "song {s}, column {c} ({}): {} is not finite; a missing value is stored as 0 (the column mean)",
                            v.names[c], row[c]
                        ),
                    );
                }
                if !v.present[s] {
                    if let Some(c) = row.iter().position(|&x| x != 0.0) {
                        return err(
                            "/song_vectors/values",
                            format!(
                                "song {s}, column {c} ({}): {} but the song has no vector (/song_vectors/present is 0); such a song's values are 0",
                                v.names[c], row[c]
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
