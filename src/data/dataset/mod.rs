//! The dataset file (`dataset.h5`): everything the model and the evaluation need, in one HDF5
//! file readable by h5py. Layout (format "ainrnn-dataset", version 3):
//!
//! ```text
//! /                       attrs: format="ainrnn-dataset", version=3 (u32), source, folds (u32),
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
//! Strings (`str` above) are stored without HDF5's global heap, which libhdf5 trusts blindly
//! (a damaged one crashed the reader): `NAME` is u8 `[total bytes]` (UTF-8, one string after
//! the other) and `NAME_offsets` u64 `[n + 1]` (string i = bytes `offsets[i]..offsets[i+1]`);
//! string attributes are u8 arrays of UTF-8. Every dataset has a `fnv1a64` attribute (FNV-1a 64
//! of its bytes), checked on load; the file uses the HDF5 1.10 format, whose metadata libhdf5
//! checksums itself. See `io::h5`. `load` checks every length and range, and every value's
//! domain (plays finite and > 0, no song twice in a history, flags 0 or 1, genre shares in
//! [0, 1] summing to 1 or 0, song vectors finite and 0 without a vector), and names the field
//! that is wrong; a file of an older version (variable-length strings) is refused with a message
//! to run `prepare` again, an unknown `version` is rejected.
//!
//! Parts: this file has the types, `validate.rs` the consistency checks, `write.rs` the atomic
//! writer ([`Dataset::save`]), `read.rs` the reader ([`Dataset::load`]).

mod read;
mod validate;
mod write;

pub const FORMAT: &str = "ainrnn-dataset";
/// Version 2 added the per-song portrait labels (the model computes a user's language and genre
/// distribution from the visible history only). Version 3 stores strings as offset-indexed byte
/// arrays and checksums every dataset (damaged files are reported, never crash libhdf5).
pub const VERSION: u32 = 3;
/// Stored as the `history_order` root attribute.
pub const HISTORY_ORDER: &str =
    "input file order (the Taste Profile has no timestamps: not temporal)";

/// `song_genre` value of a song without a known genre (stored as 255).
pub const NO_GENRE: u8 = u8::MAX;

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

    /// The song's name for people: "artist - title", or whichever of the two is known (one of
    /// them when they are the same: HetRec's items are artists, titled by their name), or ""
    /// when neither is.
    pub fn name(&self) -> String {
        match (self.artist.trim(), self.title.trim()) {
            ("", t) => t.to_string(),
            (a, t) if t.is_empty() || a == t => a.to_string(),
            (a, t) => format!("{a} - {t}"),
        }
    }

    /// Whether the song's genre is known (not "unknown", not empty).
    pub fn has_genre(&self) -> bool {
        !self.genre.is_empty() && self.genre != "unknown"
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
    /// Per song: genre category (index into `genre_names`, [`NO_GENRE`] = unknown) and
    /// language (index into `language_names`, 0 = unknown). The model builds a
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
}
