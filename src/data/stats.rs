//! `ainrnn stats`: size, density, listens-per-user quantiles and long-tail share of a dataset.
//!
//! Definitions: listens of a user = number of distinct songs (rows); quantiles use the
//! nearest-rank rule (q-quantile = the ⌈q·n⌉-th smallest value); the long tail is every song
//! outside the 20 % most popular songs (popularity = number of users), and the long-tail share
//! is the fraction of interactions (and of plays) that fall on it.

use serde::Serialize;

use super::dataset::Dataset;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Quantiles {
    pub min: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Quantiles {
    /// Nearest-rank quantiles of `v` (sorted in place); all zeros for an empty slice.
    pub fn of(v: &mut [f64]) -> Quantiles {
        if v.is_empty() {
            return Quantiles {
                min: 0.0,
                p25: 0.0,
                median: 0.0,
                p75: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let q = |p: f64| v[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Quantiles {
            min: v[0],
            p25: q(0.25),
            median: q(0.5),
            p75: q(0.75),
            p90: q(0.9),
            p99: q(0.99),
            max: v[n - 1],
            mean: v.iter().sum::<f64>() / n as f64,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VectorStats {
    pub source: String,
    pub dim: usize,
    pub songs_with_vector: usize,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Stats {
    pub source: String,
    pub users: usize,
    pub songs: usize,
    pub interactions: usize,
    /// Sum of play counts (HetRec: of weights).
    pub plays: u64,
    /// interactions / (users × songs).
    pub density: f64,
    /// Distinct songs per user.
    pub listens_per_user: Quantiles,
    pub plays_per_user: Quantiles,
    pub users_per_song: Quantiles,
    /// Share of interactions on songs outside the top 20 % by popularity.
    pub long_tail_share: f64,
    /// Share of plays on those songs.
    pub long_tail_plays_share: f64,
    pub folds: u32,
    pub fold_sizes: Vec<usize>,
    pub seed: u64,
    pub visible_share: f64,
    pub min_listens: u32,
    pub min_song_users: u32,
    pub songs_with_title: usize,
    pub songs_with_genre: usize,
    pub users_with_age: usize,
    pub users_with_language: usize,
    pub users_with_genre: usize,
    pub song_vectors: Option<VectorStats>,
}

pub fn compute(d: &Dataset) -> Stats {
    let (users, songs, nnz) = (d.users(), d.songs(), d.interactions());
    let mut listens: Vec<f64> = (0..users)
        .map(|u| (d.indptr[u + 1] - d.indptr[u]) as f64)
        .collect();
    let mut plays_u: Vec<f64> = (0..users)
        .map(|u| d.history(u).1.iter().map(|&p| p as f64).sum())
        .collect();
    let mut pop = vec![0u64; songs];
    let mut song_plays = vec![0f64; songs];
    for (&s, &p) in d.indices.iter().zip(&d.plays) {
        pop[s as usize] += 1;
        song_plays[s as usize] += p as f64;
    }
    let total_plays: f64 = song_plays.iter().sum();
    // Head = the ⌈20 %⌉ most popular songs (ties broken by index for determinism).
    let mut order: Vec<usize> = (0..songs).collect();
    order.sort_by(|&a, &b| pop[b].cmp(&pop[a]).then(a.cmp(&b)));
    let head = (songs as f64 * 0.2).ceil() as usize;
    let (mut tail_i, mut tail_p) = (0u64, 0f64);
    for &s in &order[head.min(songs)..] {
        tail_i += pop[s];
        tail_p += song_plays[s];
    }
    let mut ups: Vec<f64> = pop.iter().map(|&c| c as f64).collect();
    let mut fold_sizes = vec![0usize; d.folds as usize];
    for &f in &d.user_fold {
        if let Some(x) = fold_sizes.get_mut(f as usize) {
            *x += 1;
        }
    }
    let g = d.portrait.genre_names.len();
    Stats {
        source: d.source.clone(),
        users,
        songs,
        interactions: nnz,
        plays: total_plays.round() as u64,
        density: if users * songs > 0 {
            nnz as f64 / (users as f64 * songs as f64)
        } else {
            0.0
        },
        listens_per_user: Quantiles::of(&mut listens),
        plays_per_user: Quantiles::of(&mut plays_u),
        users_per_song: Quantiles::of(&mut ups),
        long_tail_share: if nnz > 0 {
            tail_i as f64 / nnz as f64
        } else {
            0.0
        },
        long_tail_plays_share: if total_plays > 0.0 {
            tail_p / total_plays
        } else {
            0.0
        },
        folds: d.folds,
        fold_sizes,
        seed: d.seed,
        visible_share: d.visible_share,
        min_listens: d.min_listens,
        min_song_users: d.min_song_users,
        songs_with_title: d.song_meta.iter().filter(|m| !m.title.is_empty()).count(),
        songs_with_genre: d.song_meta.iter().filter(|m| m.has_genre()).count(),
        users_with_age: d.portrait.age_bucket.iter().filter(|&&a| a != 0).count(),
        users_with_language: d.portrait.language.iter().filter(|&&l| l != 0).count(),
        users_with_genre: (0..users)
            .filter(|&u| {
                d.portrait.genre_dist[u * g..(u + 1) * g]
                    .iter()
                    .any(|&x| x > 0.0)
            })
            .count(),
        song_vectors: d.song_vectors.as_ref().map(|v| VectorStats {
            source: v.source.clone(),
            dim: v.dim,
            songs_with_vector: v.present.iter().filter(|&&p| p).count(),
        }),
    }
}

pub fn render(s: &Stats) -> String {
    let q = |q: &Quantiles| {
        format!(
            "min {} | p25 {} | median {} | p75 {} | p90 {} | p99 {} | max {} | mean {:.2}",
            q.min, q.p25, q.median, q.p75, q.p90, q.p99, q.max, q.mean
        )
    };
    let mut o = String::new();
    o.push_str(&format!("source:            {}\n", s.source));
    o.push_str(&format!(
        "users {}  songs {}  interactions {}  plays {}  density {:.3e}\n",
        s.users, s.songs, s.interactions, s.plays, s.density
    ));
    o.push_str(&format!("songs per user:    {}\n", q(&s.listens_per_user)));
    o.push_str(&format!("plays per user:    {}\n", q(&s.plays_per_user)));
    o.push_str(&format!("users per song:    {}\n", q(&s.users_per_song)));
    o.push_str(&format!(
        "long tail (songs outside the top 20%): {:.1}% of interactions, {:.1}% of plays\n",
        100.0 * s.long_tail_share,
        100.0 * s.long_tail_plays_share
    ));
    o.push_str(&format!(
        "folds {} (sizes {:?}), seed {}, visible share {}, min listens {}, min song users {}\n",
        s.folds, s.fold_sizes, s.seed, s.visible_share, s.min_listens, s.min_song_users
    ));
    o.push_str(&format!(
        "songs with title {}, with genre {}; users with age {}, language {}, genre {}\n",
        s.songs_with_title,
        s.songs_with_genre,
        s.users_with_age,
        s.users_with_language,
        s.users_with_genre
    ));
    match &s.song_vectors {
        Some(v) => o.push_str(&format!(
            "song vectors: {} × {} ({}), present for {} songs\n",
            s.songs, v.dim, v.source, v.songs_with_vector
        )),
        None => o.push_str("song vectors: none\n"),
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        let q = Quantiles::of(&mut v);
        assert_eq!(
            (q.min, q.p25, q.median, q.p75, q.max),
            (1.0, 2.0, 3.0, 4.0, 5.0)
        );
        assert_eq!(q.mean, 3.0);
    }
}
