//! Audio song vectors for the dataset: the song table of the audio stage's `features.h5`
//! (read by [`crate::io::features_h5::read_song_table`], which documents the layout and the
//! column-name fallbacks), joined to the dataset's songs.
//!
//! A vector joins a dataset song when its stem equals the song's id or its MSD track id.

use std::collections::HashMap;

use crate::io::features_h5::SongTable;

/// For each song, the row of its vector (matched by song id, then by track id).
pub fn join(v: &SongTable, song_ids: &[String], track_ids: &[String]) -> Vec<Option<usize>> {
    let mut by_stem: HashMap<&str, usize> = HashMap::with_capacity(v.ids.len());
    for (i, id) in v.ids.iter().enumerate() {
        by_stem.entry(id.as_str()).or_insert(i);
    }
    song_ids
        .iter()
        .zip(track_ids)
        .map(|(s, t)| {
            by_stem
                .get(s.as_str())
                .or_else(|| (!t.is_empty()).then(|| by_stem.get(t.as_str())).flatten())
                .copied()
        })
        .collect()
}
