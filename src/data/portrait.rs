//! User portraits, as the model consumes them:
//! - age bucket: from the profile table when the user id is found there, else "unknown". Ages
//!   outside [`PLAUSIBLE_AGE`] (the Last.fm-360K sample has -1337, 1, 2, 3, 8 and 100) count as
//!   unknown: they are sign-up noise, not listeners' ages.
//! - language: the language with the most plays among the user's songs whose language is known
//!   ([`super::terms::song_language`]); ties go to the lower index; "unknown" when none is known.
//! - genre distribution: the play-weighted share of each genre category among the user's songs
//!   with a known category; all zeros when none is known.

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
    let mut lang_plays = vec![0f64; LANGUAGES.len()];
    let mut genre_plays = vec![0f64; g];
    for u in 0..users {
        if let Some(p) = profiles.and_then(|m| m.get(&user_ids[u])) {
            matched += 1;
            age_bucket_v[u] = age_bucket(p.age);
        }
        lang_plays.iter_mut().for_each(|x| *x = 0.0);
        genre_plays.iter_mut().for_each(|x| *x = 0.0);
        for r in indptr[u] as usize..indptr[u + 1] as usize {
            let s = indices[r] as usize;
            let w = plays[r] as f64;
            let l = songs.language[s] as usize;
            if l != 0 {
                lang_plays[l] += w;
            }
            if let Some(c) = songs.genre[s] {
                genre_plays[c as usize] += w;
            }
        }
        let mut best = 0usize;
        for (l, &w) in lang_plays.iter().enumerate().skip(1) {
            if w > 0.0 && (best == 0 || w > lang_plays[best]) {
                best = l;
            }
        }
        language[u] = best as u16;
        let total: f64 = genre_plays.iter().sum();
        if total > 0.0 {
            for (c, &w) in genre_plays.iter().enumerate() {
                genre_dist[u * g + c] = (w / total) as f32;
            }
        }
    }
    (
        Portraits {
            age_bucket: age_bucket_v,
            age_bucket_names: AGE_BUCKETS.iter().map(|s| s.to_string()).collect(),
            language,
            language_names: LANGUAGES.iter().map(|s| s.to_string()).collect(),
            genre_names: GENRES.iter().map(|s| s.to_string()).collect(),
            genre_dist,
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
