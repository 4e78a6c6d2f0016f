//! Song knowledge joined by MSD `song_id`: records from MSD HDF5 files (richest: terms with
//! weights, segment arrays) take precedence over rows of the subset CSV; artist terms come from
//! the HDF5 record, else from the artist → term tables by `artist_id`.

use std::collections::HashMap;

use super::dataset::SongMeta;
use super::msd::MsdSong;
use super::terms;

#[derive(Default)]
pub struct Catalog {
    songs: HashMap<String, MsdSong>,
    /// Echo Nest terms per artist from a table, in stored (weight) order.
    artist_terms: HashMap<String, Vec<String>>,
    /// MusicBrainz tags per artist from a table, in stored order.
    artist_mbtags: HashMap<String, Vec<String>>,
}

/// What the catalogue knows about one song of the dataset.
pub struct SongFacts<'a> {
    pub meta: SongMeta,
    /// Genre category (index into [`terms::GENRES`]).
    pub genre: Option<u8>,
    /// Language (index into [`terms::LANGUAGES`], 0 = unknown).
    pub language: u16,
    /// The MSD record, for the song vector.
    pub record: Option<&'a MsdSong>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.songs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.songs.is_empty()
    }

    /// Adds a record from an HDF5 file. A record with segment arrays replaces one without.
    pub fn add_msd(&mut self, s: MsdSong) {
        match self.songs.get_mut(&s.song_id) {
            Some(old) if old.segments.is_none() && s.segments.is_some() => *old = s,
            Some(_) => {}
            None => {
                self.songs.insert(s.song_id.clone(), s);
            }
        }
    }

    /// Adds a subset-CSV row unless the song is already known.
    pub fn add_subset(&mut self, s: MsdSong) {
        self.songs.entry(s.song_id.clone()).or_insert(s);
    }

    pub fn add_artist_terms(&mut self, map: HashMap<String, Vec<String>>) {
        for (a, t) in map {
            self.artist_terms.entry(a).or_insert(t);
        }
    }

    pub fn add_artist_mbtags(&mut self, map: HashMap<String, Vec<String>>) {
        for (a, t) in map {
            self.artist_mbtags.entry(a).or_insert(t);
        }
    }

    pub fn get(&self, song_id: &str) -> Option<&MsdSong> {
        self.songs.get(song_id)
    }

    /// Terms of a song with weights, most relevant first: Echo Nest terms (HDF5 weights, or
    /// 1/(rank+1) from a table), then MusicBrainz tags (by count, weighted 1/(rank+1)).
    pub fn song_terms<'a>(&'a self, s: &'a MsdSong) -> Vec<(&'a str, f64)> {
        let rank = |k: usize| 1.0 / (k as f64 + 1.0);
        let mut out: Vec<(&str, f64)> = if !s.terms.is_empty() {
            s.terms.iter().map(|(t, w)| (t.as_str(), *w)).collect()
        } else {
            self.artist_terms
                .get(&s.artist_id)
                .map(|v| {
                    v.iter()
                        .enumerate()
                        .map(|(k, t)| (t.as_str(), rank(k)))
                        .collect()
                })
                .unwrap_or_default()
        };
        if !s.mbtags.is_empty() {
            let mut tags: Vec<&(String, i32)> = s.mbtags.iter().collect();
            tags.sort_by_key(|t| std::cmp::Reverse(t.1));
            out.extend(
                tags.iter()
                    .enumerate()
                    .map(|(k, (t, _))| (t.as_str(), rank(k))),
            );
        } else if let Some(v) = self.artist_mbtags.get(&s.artist_id) {
            out.extend(v.iter().enumerate().map(|(k, t)| (t.as_str(), rank(k))));
        }
        out
    }

    /// Everything known about `song_id`; unknown songs get empty metadata and genre "unknown".
    pub fn facts(&self, song_id: &str) -> SongFacts<'_> {
        let Some(s) = self.songs.get(song_id) else {
            return SongFacts {
                meta: SongMeta::unknown(),
                genre: None,
                language: 0,
                record: None,
            };
        };
        let t = self.song_terms(s);
        let genre = terms::song_genre(t.iter().map(|&(term, _)| term));
        let language = terms::song_language(
            &s.title,
            &s.artist_name,
            t.iter().copied(),
            &s.artist_location,
        );
        SongFacts {
            meta: SongMeta {
                title: s.title.clone(),
                artist: s.artist_name.clone(),
                genre: genre.map_or("unknown".to_string(), |(_, term)| term.to_string()),
                year: s.year,
                track_id: s.track_id.clone(),
            },
            genre: genre.map(|(g, _)| g),
            language,
            record: Some(s),
        }
    }
}
