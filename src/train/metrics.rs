//! Top-k ranking metrics, averaged over the users that have held-out songs.
//!
//! Definitions (k = list cut-off; T = a user's held-out songs; hits counted in the first k):
//! - precision@k = hits / k (a list shorter than k counts the missing places as misses)
//! - recall@k = hits / |T|
//! - NDCG@k = DCG / IDCG with DCG = Σ_{i<k} gain_i / log2(i + 2). Binary: gain 1 for a held-out
//!   song. Graded: gain log(1 + plays) of the held-out song; IDCG sorts T by gain.
//! - mAP@k = mean of AP@k = (1 / min(|T|, k)) Σ_{i<k} precision@(i+1) · rel_i (MSD Challenge)
//! - hit rate@k = share of users with at least one hit
//! - coverage = distinct songs recommended to anyone / catalogue size
//! - long-tail share = share of recommended slots filled by songs outside the popular head, the
//!   head being the most popular songs (by training users) that together hold 20 % of the songs
//! - genre diversity = mean over lists of the Gini–Simpson index 1 − Σ_g p_g² of the genres in
//!   the list (0: one genre; higher: more varied)
//!
//! As in [`score_user`], a song counts once per list: a repeat fills a slot with nothing (no
//! hit, no long-tail song), the genre diversity is that of the list's distinct songs, and songs
//! outside the catalogue cover nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// What the metrics need to know about the catalogue.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    pub songs: usize,
    /// Number of training users per song (popularity).
    pub popularity: Vec<u32>,
    /// Genre index per song (for diversity), if known.
    pub genre: Option<Vec<u16>>,
}

impl Catalogue {
    /// Songs in the popular head (see module doc).
    pub fn head(&self) -> HashSet<u32> {
        let mut order: Vec<u32> = (0..self.songs as u32).collect();
        order.sort_by(|&a, &b| {
            self.popularity[b as usize]
                .cmp(&self.popularity[a as usize])
                .then(a.cmp(&b))
        });
        let n_head = (self.songs as f64 * 0.2).ceil() as usize;
        order.into_iter().take(n_head).collect()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub k: usize,
    /// Users evaluated (those with held-out songs).
    pub users: usize,
    /// Users skipped because they had nothing held out.
    pub users_without_truth: usize,
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub ndcg_graded: f64,
    pub map: f64,
    pub hit_rate: f64,
    pub coverage: f64,
    pub long_tail_share: f64,
    pub genre_diversity: Option<f64>,
}

/// Per-user scores at cut-off k.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UserScores {
    pub precision: f64,
    pub recall: f64,
    pub ndcg: f64,
    pub ndcg_graded: f64,
    pub ap: f64,
    pub hit: bool,
}

/// Scores one ranked list against held-out `(song, plays)`; `None` when nothing is held out.
/// A song counts once: a repeat further down the list is no hit (it scored precision, recall
/// and NDCG above 1), and a song listed twice in `truth` is one relevant song, its last plays
/// its gain.
pub fn score_user(ranked: &[u32], truth: &[(u32, f32)], k: usize) -> Option<UserScores> {
    if truth.is_empty() || k == 0 {
        return None;
    }
    let mut gains: HashMap<u32, f64> = truth
        .iter()
        .map(|&(s, p)| (s, (p.max(0.0) as f64).ln_1p()))
        .collect();
    let n_relevant = gains.len();
    let mut hits = 0usize;
    let (mut dcg, mut dcg_g, mut ap) = (0.0f64, 0.0f64, 0.0f64);
    let mut ideal_gains: Vec<f64> = gains.values().copied().collect();
    for (i, s) in ranked.iter().take(k).enumerate() {
        if let Some(g) = gains.remove(s) {
            hits += 1;
            let disc = 1.0 / ((i + 2) as f64).log2();
            dcg += disc;
            dcg_g += g * disc;
            ap += hits as f64 / (i + 1) as f64;
        }
    }
    let n_ideal = n_relevant.min(k);
    let idcg: f64 = (0..n_ideal).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    ideal_gains.sort_by(|a, b| b.total_cmp(a));
    let idcg_g: f64 = ideal_gains
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g / ((i + 2) as f64).log2())
        .sum();
    Some(UserScores {
        precision: hits as f64 / k as f64,
        recall: hits as f64 / n_relevant as f64,
        ndcg: dcg / idcg,
        ndcg_graded: if idcg_g > 0.0 { dcg_g / idcg_g } else { 0.0 },
        ap: ap / n_ideal as f64,
        hit: hits > 0,
    })
}

/// All metrics at cut-off `k` for ranked lists and held-out truths (same order of users).
pub fn evaluate(
    lists: &[Vec<u32>],
    truths: &[Vec<(u32, f32)>],
    k: usize,
    cat: &Catalogue,
) -> Metrics {
    let mut m = Metrics {
        k,
        ..Default::default()
    };
    let head = cat.head();
    let mut seen: HashSet<u32> = HashSet::new();
    let (mut slots, mut tail_slots) = (0usize, 0usize);
    let mut div_sum = 0.0;
    let mut div_n = 0usize;
    for (list, truth) in lists.iter().zip(truths) {
        let top: Vec<u32> = list.iter().take(k).copied().collect();
        // Each song once, in list order (a repeated song must not add coverage, tail or genre).
        let mut once = HashSet::with_capacity(top.len());
        let distinct: Vec<u32> = top.iter().copied().filter(|&s| once.insert(s)).collect();
        seen.extend(distinct.iter().filter(|&&s| (s as usize) < cat.songs));
        slots += top.len();
        tail_slots += distinct.iter().filter(|s| !head.contains(s)).count();
        if let (Some(genres), false) = (&cat.genre, top.is_empty()) {
            // Ordered by genre: a HashMap's order changes from run to run, and with it the
            // sum's last bit.
            let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
            for &s in &distinct {
                *counts
                    .entry(genres.get(s as usize).copied().unwrap_or(0))
                    .or_default() += 1;
            }
            let n = distinct.len() as f64;
            div_sum += 1.0
                - counts
                    .values()
                    .map(|&c| (c as f64 / n).powi(2))
                    .sum::<f64>();
            div_n += 1;
        }
        match score_user(&top, truth, k) {
            None => m.users_without_truth += 1,
            Some(u) => {
                m.users += 1;
                m.precision += u.precision;
                m.recall += u.recall;
                m.ndcg += u.ndcg;
                m.ndcg_graded += u.ndcg_graded;
                m.map += u.ap;
                m.hit_rate += u.hit as u8 as f64;
            }
        }
    }
    if m.users > 0 {
        let n = m.users as f64;
        for v in [
            &mut m.precision,
            &mut m.recall,
            &mut m.ndcg,
            &mut m.ndcg_graded,
            &mut m.map,
            &mut m.hit_rate,
        ] {
            *v /= n;
        }
    }
    m.coverage = if cat.songs > 0 {
        seen.len() as f64 / cat.songs as f64
    } else {
        0.0
    };
    m.long_tail_share = if slots > 0 {
        tail_slots as f64 / slots as f64
    } else {
        0.0
    };
    m.genre_diversity = (div_n > 0).then(|| div_sum / div_n as f64);
    m
}

/// Precision@k and NDCG@k for k = 1..=k_max (the paper's Figs. 7–8).
pub fn curves(
    lists: &[Vec<u32>],
    truths: &[Vec<(u32, f32)>],
    k_max: usize,
) -> Vec<(usize, f64, f64)> {
    (1..=k_max)
        .map(|k| {
            let mut n = 0usize;
            let (mut p, mut g) = (0.0, 0.0);
            for (list, truth) in lists.iter().zip(truths) {
                if let Some(u) = score_user(list, truth, k) {
                    n += 1;
                    p += u.precision;
                    g += u.ndcg;
                }
            }
            let n = n.max(1) as f64;
            (k, p / n, g / n)
        })
        .collect()
}

/// Songs sorted by score (descending, lower id first on ties), skipping `exclude`, at most `k`.
pub fn top_k(scores: &[f32], exclude: &[u32], k: usize) -> Vec<u32> {
    // At most one per song: k = usize::MAX must not size the buffer (nor k = 0 index it).
    let k = k.min(scores.len());
    if k == 0 {
        return Vec::new();
    }
    let mut skip = vec![false; scores.len()];
    for &e in exclude {
        if let Some(s) = skip.get_mut(e as usize) {
            *s = true;
        }
    }
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    for (i, &s) in scores.iter().enumerate() {
        if skip[i] || s.is_nan() || s == f32::NEG_INFINITY {
            continue;
        }
        let c = (s, i as u32);
        let better = |a: (f32, u32), b: (f32, u32)| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1);
        if best.len() == k && !better(c, best[k - 1]) {
            continue;
        }
        let pos = best
            .iter()
            .position(|&b| better(c, b))
            .unwrap_or(best.len());
        best.insert(pos, c);
        best.truncate(k);
    }
    best.into_iter().map(|(_, i)| i).collect()
}
