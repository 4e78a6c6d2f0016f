//! Step 2 of `prepare`: the user and song minimums, applied until stable, and the dense remap.
//! The rule is described in the module documentation of [`super`].

use serde::Serialize;

use crate::data::interactions::Interactions;
use crate::data::{DataError, DataResult};

/// One filtering step and what it dropped.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FilterStep {
    pub rule: String,
    pub users_dropped: usize,
    pub songs_dropped: usize,
    pub interactions_dropped: usize,
    pub users: usize,
    pub songs: usize,
    pub interactions: usize,
}

/// Drops users and songs below the minimums until stable; see the module doc. Steps of the
/// first pass are always listed; later passes only when they drop something.
pub fn filter(
    x: Interactions,
    min_listens: u32,
    min_song_users: u32,
) -> (Interactions, Vec<FilterStep>) {
    let (users, songs) = (x.users(), x.songs());
    let min_l = min_listens.max(1) as usize;
    let min_s = min_song_users.max(1) as usize;
    let mut keep_user = vec![true; users];
    let mut keep_song = vec![true; songs];
    let mut per_user = vec![0usize; users];
    let mut per_song = vec![0usize; songs];
    // Recounts per-user and per-song interactions over kept users and songs; returns totals.
    let recount = |ku: &[bool], ks: &[bool], pu: &mut [usize], ps: &mut [usize]| {
        pu.fill(0);
        ps.fill(0);
        for u in (0..users).filter(|&u| ku[u]) {
            for r in x.row(u) {
                let s = x.indices[r] as usize;
                if ks[s] {
                    pu[u] += 1;
                    ps[s] += 1;
                }
            }
        }
        (
            ku.iter().filter(|&&k| k).count(),
            ks.iter().filter(|&&k| k).count(),
            pu.iter().sum::<usize>(),
        )
    };
    let mut totals = recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
    let mut steps = Vec::new();
    for pass in 1.. {
        // Users below the minimum; songs left without users go with them.
        let before = totals;
        for u in 0..users {
            keep_user[u] &= per_user[u] >= min_l;
        }
        recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
        for s in 0..songs {
            keep_song[s] &= per_song[s] > 0;
        }
        totals = recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
        let dropped_a = totals != before;
        if pass == 1 || dropped_a {
            steps.push(step(
                format!("pass {pass}: users with fewer than {min_l} songs"),
                before,
                totals,
            ));
        }
        // Songs below the minimum; users left without songs go with them.
        let before = totals;
        for s in 0..songs {
            keep_song[s] &= per_song[s] >= min_s;
        }
        recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
        for u in 0..users {
            keep_user[u] &= per_user[u] > 0;
        }
        totals = recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
        let dropped_b = totals != before;
        if pass == 1 || dropped_b {
            steps.push(step(
                format!("pass {pass}: songs with fewer than {min_s} users"),
                before,
                totals,
            ));
        }
        let users_ok = (0..users).all(|u| !keep_user[u] || per_user[u] >= min_l);
        if users_ok || !(dropped_a || dropped_b) {
            break;
        }
    }
    // Dense remap in order of first appearance.
    let mut song_map = vec![u32::MAX; songs];
    let mut song_ids = Vec::new();
    let mut user_ids = Vec::new();
    let mut indptr = vec![0u64];
    let mut indices = Vec::new();
    let mut plays = Vec::new();
    for u in (0..users).filter(|&u| keep_user[u]) {
        for r in x.row(u) {
            let s = x.indices[r] as usize;
            if !keep_song[s] {
                continue;
            }
            if song_map[s] == u32::MAX {
                song_map[s] = song_ids.len() as u32;
                song_ids.push(x.song_ids[s].clone());
            }
            indices.push(song_map[s]);
            plays.push(x.plays[r]);
        }
        user_ids.push(x.user_ids[u].clone());
        indptr.push(indices.len() as u64);
    }
    (
        Interactions {
            user_ids,
            song_ids,
            indptr,
            indices,
            plays,
            duplicates_merged: x.duplicates_merged,
        },
        steps,
    )
}

fn step(rule: String, before: (usize, usize, usize), after: (usize, usize, usize)) -> FilterStep {
    FilterStep {
        rule,
        users_dropped: before.0 - after.0,
        songs_dropped: before.1 - after.1,
        interactions_dropped: before.2 - after.2,
        users: after.0,
        songs: after.1,
        interactions: after.2,
    }
}

impl super::Run<'_> {
    /// [`filter`] with the options' minimums, logged; fails when nothing is left.
    pub(super) fn apply_filters(
        &mut self,
        raw: Interactions,
    ) -> DataResult<(Interactions, Vec<FilterStep>)> {
        let o = self.o;
        let (x, filters) = filter(raw, o.min_listens, o.min_song_users);
        for f in &filters {
            use crate::text::count;
            (self.log)(&format!(
                "filter {}: dropped {}, {}, {} -> {}, {}, {}",
                f.rule,
                count(f.users_dropped as u64, "user"),
                count(f.songs_dropped as u64, "song"),
                count(f.interactions_dropped as u64, "interaction"),
                count(f.users as u64, "user"),
                count(f.songs as u64, "song"),
                count(f.interactions as u64, "interaction")
            ));
        }
        if x.is_empty() {
            return Err(DataError::Empty(format!(
                "no interactions left after filtering (min listens {}, min song users {}); lower the minimums",
                o.min_listens, o.min_song_users
            )));
        }
        Ok((x, filters))
    }
}
