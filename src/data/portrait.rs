//! User portraits, as the model consumes them:
//! - age bucket: from the profile table when the user id is found there, else "unknown". Ages
//!   outside [`PLAUSIBLE_AGE`] (the Last.fm-360K sample has -1337, 1, 2, 3, 8 and 100) count as
//!   unknown: they are sign-up noise, not listeners' ages.
//! - language: the language with the most plays among the user's songs whose language is known
//!   ([`super::terms::song_language`]); ties go to the lower index; "unknown" when none is known.
//! - genre distribution: the play-weighted share of each genre category among the user's songs
//!   with a known category; all zeros when none is known.
//!
//! Language and genre depend on the listening history. The dataset stores them for each user's
//! whole history (for statistics) together with every song's labels; the model recomputes them
//! from the visible history it is given ([`of_history`]), so a test user's held-out songs never
//! reach its input.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use super::dataset::Portraits;
use super::profiles::Profile;
use super::terms::{GENRES, LANGUAGES};

pub const AGE_BUCKETS: [&str; 7] = ["unknown", "<18", "18-24", "25-34", "35-44", "45-54", "55+"];

/// Ages believed: 13 (the youngest age Last.fm allowed at sign-up) to 90.
pub const PLAUSIBLE_AGE: RangeInclusive<i32> = 13..=90;

pub fn age_bucket(age: Option<i32>) -> u8 {
    match age {
        Some(a) if PLAUSIBLE_AGE.contains(&a) => match a {
            ..=17 => 1,
            18..=24 => 2,
            25..=34 => 3,
            35..=44 => 4,
            45..=54 => 5,
            _ => 6,
        },
        _ => 0,
    }
}

/// Per-song inputs of the portraits (index = dense song index).
pub struct SongLabels {
    pub genre: Vec<Option<u8>>,
    pub language: Vec<u16>,
}

/// Stored value of [`SongLabels::genre`] for a song without a known genre category.
pub use super::dataset::NO_GENRE;

/// The listening-dependent part of a portrait — the language with the most plays and the
/// play-weighted genre distribution — of one list of songs. The model computes it from the
/// history it is shown (never from held-out songs); `prepare` stores it for the whole history.
/// `song_genre` uses [`NO_GENRE`] for unknown; `genre` (G entries) is overwritten; `scratch`
/// needs one entry per language. Returns the language index (0 = unknown).
pub fn of_history(
    songs: &[u32],
    plays: &[f32],
    song_genre: &[u8],
    song_language: &[u16],
    genre: &mut [f32],
    scratch: &mut [f64],
) -> u16 {
    scratch.iter_mut().for_each(|x| *x = 0.0);
    let mut genre_plays = [0f64; 256];
    for (&s, &w) in songs.iter().zip(plays) {
        let (s, w) = (s as usize, w.max(0.0) as f64);
        let l = song_language.get(s).copied().unwrap_or(0) as usize;
        if l != 0 && l < scratch.len() {
            scratch[l] += w;
        }
        let c = song_genre.get(s).copied().unwrap_or(NO_GENRE) as usize;
        if c < genre.len() {
            genre_plays[c] += w;
        }
    }
    let mut best = 0usize;
    for (l, &w) in scratch.iter().enumerate().skip(1) {
        if w > 0.0 && (best == 0 || w > scratch[best]) {
            best = l;
        }
    }
    let total: f64 = genre_plays[..genre.len()].iter().sum();
    for (c, g) in genre.iter_mut().enumerate() {
        *g = if total > 0.0 {
            (genre_plays[c] / total) as f32
        } else {
            0.0
        };
    }
    best as u16
}

/// Builds the portraits; returns them with the number of users found in `profiles`.
pub fn build(
    user_ids: &[String],
    indptr: &[u64],
    indices: &[u32],
    plays: &[f32],
    songs: &SongLabels,
    profiles: Option<&HashMap<String, Profile>>,
) -> (Portraits, usize) {
    let users = user_ids.len();
    let g = GENRES.len();
    let mut age_bucket_v = vec![0u8; users];
    let mut language = vec![0u16; users];
    let mut genre_dist = vec![0f32; users * g];
    let mut matched = 0;
    let song_genre: Vec<u8> = songs.genre.iter().map(|c| c.unwrap_or(NO_GENRE)).collect();
    let mut scratch = vec![0f64; LANGUAGES.len()];
    for u in 0..users {
        if let Some(p) = profiles.and_then(|m| m.get(&user_ids[u])) {
            matched += 1;
            age_bucket_v[u] = age_bucket(p.age);
        }
        let r = indptr[u] as usize..indptr[u + 1] as usize;
        language[u] = of_history(
            &indices[r.clone()],
            &plays[r],
            &song_genre,
            &songs.language,
            &mut genre_dist[u * g..(u + 1) * g],
            &mut scratch,
        );
    }
    (
        Portraits {
            age_bucket: age_bucket_v,
            age_bucket_names: AGE_BUCKETS.iter().map(|s| s.to_string()).collect(),
            language,
            language_names: LANGUAGES.iter().map(|s| s.to_string()).collect(),
            genre_names: GENRES.iter().map(|s| s.to_string()).collect(),
            genre_dist,
            song_genre,
            song_language: songs.language.clone(),
        },
        matched,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        let b = |a| AGE_BUCKETS[age_bucket(a) as usize];
        assert_eq!(b(None), "unknown");
        assert_eq!(b(Some(-1337)), "unknown");
        assert_eq!(b(Some(8)), "unknown");
        assert_eq!(b(Some(12)), "unknown");
        assert_eq!(b(Some(13)), "<18");
        assert_eq!(b(Some(17)), "<18");
        assert_eq!(b(Some(18)), "18-24");
        assert_eq!(b(Some(24)), "18-24");
        assert_eq!(b(Some(25)), "25-34");
        assert_eq!(b(Some(44)), "35-44");
        assert_eq!(b(Some(54)), "45-54");
        assert_eq!(b(Some(55)), "55+");
        assert_eq!(b(Some(90)), "55+");
        assert_eq!(b(Some(100)), "unknown");
    }
}
