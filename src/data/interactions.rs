//! Interactions in CSR form by user, built incrementally from a stream of (user, song, plays)
//! records with interned ids, so the input text is never held in memory.
//!
//! Users and songs get dense indices in order of first appearance. A user's interactions keep
//! input order ("history order"). Inputs grouped by user (the Taste Profile and HetRec files)
//! are already CSR; a user whose records are split over several places in the file is gathered
//! at the end, keeping file order. A repeated (user, song) pair is merged into its first
//! occurrence with the play counts summed, and counted.

use rustc_hash::FxHashMap;

/// CSR interactions with the original ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interactions {
    pub user_ids: Vec<String>,
    pub song_ids: Vec<String>,
    /// Row pointers by user, `users + 1` entries.
    pub indptr: Vec<u64>,
    /// Song index per interaction, in history order.
    pub indices: Vec<u32>,
    /// Play count (or HetRec weight) per interaction.
    pub plays: Vec<f32>,
    /// Repeated (user, song) records merged into their first occurrence.
    pub duplicates_merged: u64,
}

impl Interactions {
    pub fn users(&self) -> usize {
        self.user_ids.len()
    }
    pub fn songs(&self) -> usize {
        self.song_ids.len()
    }
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
    pub fn row(&self, u: usize) -> std::ops::Range<usize> {
        self.indptr[u] as usize..self.indptr[u + 1] as usize
    }
    /// Sum of play counts (f64: exact for any realistic total).
    pub fn total_plays(&self) -> f64 {
        self.plays.iter().map(|&p| p as f64).sum()
    }
}

/// Streaming builder: `push` each record, then `finish`.
#[derive(Default)]
pub struct InteractionBuilder {
    users: FxHashMap<Box<str>, u32>,
    user_ids: Vec<String>,
    last_user: Option<u32>,
    songs: FxHashMap<Box<str>, u32>,
    song_ids: Vec<String>,
    /// (user, first row) of each run of consecutive records of one user.
    runs: Vec<(u32, u64)>,
    rows_song: Vec<u32>,
    rows_plays: Vec<f32>,
    non_contiguous: bool,
}

impl InteractionBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.rows_song.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows_song.is_empty()
    }

    pub fn push(&mut self, user: &str, song: &str, plays: f32) {
        // The common case (grouped input) compares against the previous user and skips hashing.
        let same_user = matches!(self.last_user, Some(u) if self.user_ids[u as usize] == user);
        if !same_user {
            let u = match self.users.get(user) {
                Some(&u) => {
                    self.non_contiguous = true;
                    u
                }
                None => {
                    let u = self.user_ids.len() as u32;
                    self.users.insert(user.into(), u);
                    self.user_ids.push(user.to_string());
                    u
                }
            };
            self.runs.push((u, self.rows_song.len() as u64));
            self.last_user = Some(u);
        }
        let s = match self.songs.get(song) {
            Some(&s) => s,
            None => {
                let s = self.song_ids.len() as u32;
                self.songs.insert(song.into(), s);
                self.song_ids.push(song.to_string());
                s
            }
        };
        self.rows_song.push(s);
        self.rows_plays.push(plays);
    }

    pub fn finish(self) -> Interactions {
        let InteractionBuilder {
            users,
            user_ids,
            songs,
            song_ids,
            runs,
            rows_song,
            rows_plays,
            non_contiguous,
            ..
        } = self;
        drop(users);
        drop(songs);
        let n_users = user_ids.len();
        let nnz = rows_song.len() as u64;
        let (indptr, indices, plays) = if !non_contiguous {
            // One run per user, users numbered in run order: the rows are already CSR.
            let mut indptr: Vec<u64> = runs.iter().map(|&(_, start)| start).collect();
            indptr.push(nnz);
            (indptr, rows_song, rows_plays)
        } else {
            let mut counts = vec![0u64; n_users + 1];
            for (i, &(u, start)) in runs.iter().enumerate() {
                let end = runs.get(i + 1).map_or(nnz, |r| r.1);
                counts[u as usize + 1] += end - start;
            }
            for i in 0..n_users {
                counts[i + 1] += counts[i];
            }
            let indptr = counts.clone();
            let mut cursor = counts;
            let mut indices = vec![0u32; nnz as usize];
            let mut plays = vec![0f32; nnz as usize];
            for (i, &(u, start)) in runs.iter().enumerate() {
                let end = runs.get(i + 1).map_or(nnz, |r| r.1);
                let len = (end - start) as usize;
                let dst = cursor[u as usize] as usize;
                indices[dst..dst + len].copy_from_slice(&rows_song[start as usize..end as usize]);
                plays[dst..dst + len].copy_from_slice(&rows_plays[start as usize..end as usize]);
                cursor[u as usize] += len as u64;
            }
            (indptr, indices, plays)
        };
        let mut out = Interactions {
            user_ids,
            song_ids,
            indptr,
            indices,
            plays,
            duplicates_merged: 0,
        };
        merge_duplicates(&mut out);
        out
    }
}

/// Merges repeated (user, song) pairs into the first occurrence (plays summed), in place.
fn merge_duplicates(x: &mut Interactions) {
    // seen[song] = (user + 1, position of first occurrence); no clearing between users needed.
    let mut seen_user = vec![0u32; x.songs()];
    let mut seen_pos = vec![0u64; x.songs()];
    let mut merged = 0u64;
    let mut write = 0usize;
    let mut new_indptr = Vec::with_capacity(x.indptr.len());
    new_indptr.push(0u64);
    for u in 0..x.users() {
        let marker = u as u32 + 1;
        for r in x.row(u) {
            let s = x.indices[r] as usize;
            if seen_user[s] == marker {
                let first = seen_pos[s] as usize;
                x.plays[first] += x.plays[r];
                merged += 1;
            } else {
                seen_user[s] = marker;
                seen_pos[s] = write as u64;
                x.indices[write] = x.indices[r];
                x.plays[write] = x.plays[r];
                write += 1;
            }
        }
        new_indptr.push(write as u64);
    }
    if merged > 0 {
        x.indices.truncate(write);
        x.plays.truncate(write);
        x.indptr = new_indptr;
        x.duplicates_merged = merged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_input_is_csr_in_file_order() {
        let mut b = InteractionBuilder::new();
        b.push("u1", "s1", 1.0);
        b.push("u1", "s2", 2.0);
        b.push("u2", "s2", 3.0);
        let x = b.finish();
        assert_eq!(x.user_ids, ["u1", "u2"]);
        assert_eq!(x.song_ids, ["s1", "s2"]);
        assert_eq!(x.indptr, [0, 2, 3]);
        assert_eq!(x.indices, [0, 1, 1]);
        assert_eq!(x.plays, [1.0, 2.0, 3.0]);
    }

    #[test]
    fn split_users_are_gathered_and_duplicates_merged() {
        let mut b = InteractionBuilder::new();
        b.push("u1", "s1", 1.0);
        b.push("u2", "s2", 3.0);
        b.push("u1", "s3", 4.0);
        b.push("u1", "s1", 5.0);
        b.push("u2", "s1", 6.0);
        let x = b.finish();
        assert_eq!(x.user_ids, ["u1", "u2"]);
        assert_eq!(x.indptr, [0, 2, 4]);
        assert_eq!(x.indices, [0, 2, 1, 0]);
        assert_eq!(x.plays, [6.0, 4.0, 3.0, 6.0]);
        assert_eq!(x.duplicates_merged, 1);
    }
}
