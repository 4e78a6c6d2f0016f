//! The item-neighbour lists: for every song its most similar songs by cosine over the training
//! users' co-listens. The model's item-neighbourhood score term and eval's item-kNN baseline both
//! use them.

use std::collections::HashMap;

use rayon::prelude::*;

/// Per song: its most similar songs and their cosine similarity, best first.
pub type NeighbourLists = Vec<Vec<(u32, f32)>>;

/// Distinct songs of each of `users` (the binary rows of the user × song matrix X).
pub fn user_rows(histories: &[(Vec<u32>, Vec<f32>)], users: &[u32]) -> Vec<Vec<u32>> {
    users
        .iter()
        .map(|&u| {
            let mut s = histories[u as usize].0.clone();
            s.sort_unstable();
            s.dedup();
            s
        })
        .collect()
}

/// Each song's `keep` most similar songs by cosine over co-listening `users` (ties: lower id
/// first).
pub fn fit(
    songs: usize,
    histories: &[(Vec<u32>, Vec<f32>)],
    users: &[u32],
    keep: usize,
) -> NeighbourLists {
    let rows = user_rows(histories, users);
    let mut count = vec![0u32; songs];
    // Songs → users who played them, to build co-occurrences one song at a time (memory
    // stays at one sparse row, not songs²).
    let mut by_song: Vec<Vec<u32>> = vec![Vec::new(); songs];
    for (u, r) in rows.iter().enumerate() {
        for &s in r {
            count[s as usize] += 1;
            by_song[s as usize].push(u as u32);
        }
    }
    (0..songs)
        .into_par_iter()
        .map(|i| {
            let mut co: HashMap<u32, u32> = HashMap::new();
            for &u in &by_song[i] {
                for &j in &rows[u as usize] {
                    if j as usize != i {
                        *co.entry(j).or_default() += 1;
                    }
                }
            }
            let mut sims: Vec<(u32, f32)> = co
                .into_iter()
                .map(|(j, c)| {
                    (
                        j,
                        c as f32 / ((count[i] as f32) * (count[j as usize] as f32)).sqrt(),
                    )
                })
                .collect();
            sims.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            sims.truncate(keep);
            sims
        })
        .collect()
}
