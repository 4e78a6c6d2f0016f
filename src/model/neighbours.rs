//! The item-neighbour lists: for every song its most similar songs over the training users'
//! co-listens. The model's item-neighbourhood score term and eval's item-kNN baseline both use
//! them.
//!
//! The similarity of song `j` to a history song `i` is
//! `Σ_u 1/|u|^power / (n_i^alpha · n_j^(1−alpha) + shrink)` over the users `u` who played both
//! (`n_i`: users of song `i`). `alpha = 0.5, shrink = 0, power = 0` is cosine. Why the other
//! parameters: `alpha > 0.5` penalises popular candidates less (asymmetric cosine), `shrink`
//! damps similarities resting on a few co-listens, `power` discounts co-listens of users who
//! play everything. Which is best depends on the data (validation NDCG@10 of item-kNN on the
//! bundled Taste sample: cosine 0.215, `0.8, 5, 0.5` 0.257; on HetRec `0.6, 0, 0.5` is best),
//! so `train` chooses them on validation users ([`similarity_grid`]).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Per song: its most similar songs and their similarity, best first.
pub type NeighbourLists = Vec<Vec<(u32, f32)>>;

/// The parameters of the co-listening similarity (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    pub alpha: f32,
    pub shrink: f32,
    pub power: f32,
}

impl Similarity {
    pub const COSINE: Similarity = Similarity {
        alpha: 0.5,
        shrink: 0.0,
        power: 0.0,
    };

    /// The parameters are in range: `alpha` in [0, 1], `shrink` and `power` finite and ≥ 0.
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        if !(ok(self.alpha) && self.alpha <= 1.0) {
            return Err(format!("alpha must be in [0, 1], got {}", self.alpha));
        }
        if !ok(self.shrink) {
            return Err(format!("shrink must be ≥ 0, got {}", self.shrink));
        }
        if !ok(self.power) {
            return Err(format!("power must be ≥ 0, got {}", self.power));
        }
        Ok(())
    }
}

impl std::fmt::Display for Similarity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Similarity::COSINE {
            write!(f, "cosine")
        } else {
            write!(f, "{},{},{}", self.alpha, self.shrink, self.power)
        }
    }
}

impl std::str::FromStr for Similarity {
    type Err = String;
    /// `cosine` or `ALPHA,SHRINK,POWER` (e.g. `0.8,5,0.5`).
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("cosine") {
            return Ok(Similarity::COSINE);
        }
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [a, sh, p] = parts[..] else {
            return Err(format!(
                "expected `cosine` or ALPHA,SHRINK,POWER (e.g. 0.8,5,0.5), got `{s}`"
            ));
        };
        let num = |name: &str, v: &str| {
            v.parse::<f32>()
                .map_err(|_| format!("{name} `{v}` is not a number (in `{s}`)"))
        };
        let sim = Similarity {
            alpha: num("alpha", a)?,
            shrink: num("shrink", sh)?,
            power: num("power", p)?,
        };
        sim.check()?;
        Ok(sim)
    }
}

/// The similarities `train` tries on the validation users (as item-kNN) before training, when
/// none is given: cosine first, so ties keep it.
pub fn similarity_grid() -> Vec<Similarity> {
    let mut g = vec![Similarity::COSINE];
    for alpha in [0.5f32, 0.6, 0.7, 0.8, 0.9] {
        for shrink in [0.0f32, 5.0] {
            for power in [0.0f32, 0.5] {
                let s = Similarity {
                    alpha,
                    shrink,
                    power,
                };
                if s != Similarity::COSINE {
                    g.push(s);
                }
            }
        }
    }
    g
}

/// Item-kNN scores of one history: each song's summed similarity to the history's distinct
/// songs (0 where no list reaches it).
pub fn knn_scores(lists: &NeighbourLists, songs: usize, history: &[u32]) -> Vec<f32> {
    let mut scores = vec![0.0f32; songs];
    let mut h = history.to_vec();
    h.sort_unstable();
    h.dedup();
    for j in h {
        if let Some(list) = lists.get(j as usize) {
            for &(i, s) in list {
                scores[i as usize] += s;
            }
        }
    }
    scores
}

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
    fit_with(songs, histories, users, keep, Similarity::COSINE)
}

/// Each song's `keep` most similar songs by `sim` over co-listening `users` (ties: lower id
/// first).
pub fn fit_with(
    songs: usize,
    histories: &[(Vec<u32>, Vec<f32>)],
    users: &[u32],
    keep: usize,
    sim: Similarity,
) -> NeighbourLists {
    CoListens::new(songs, histories, users).fit(keep, sim)
}

/// The co-listening index of a set of users, built once for any number of fits (the
/// similarity choice fits 20 candidates and its winner over the same users).
pub struct CoListens {
    songs: usize,
    /// Each user's distinct songs.
    rows: Vec<Vec<u32>>,
    /// Users per song.
    count: Vec<u32>,
    /// Songs → users who played them, to build co-occurrences one song at a time (memory
    /// stays at one dense row per thread, not songs²).
    by_song: Vec<Vec<u32>>,
}

impl CoListens {
    pub fn new(songs: usize, histories: &[(Vec<u32>, Vec<f32>)], users: &[u32]) -> Self {
        let rows = user_rows(histories, users);
        let mut count = vec![0u32; songs];
        let mut by_song: Vec<Vec<u32>> = vec![Vec::new(); songs];
        for (u, r) in rows.iter().enumerate() {
            for &s in r {
                count[s as usize] += 1;
                by_song[s as usize].push(u as u32);
            }
        }
        CoListens {
            songs,
            rows,
            count,
            by_song,
        }
    }

    /// Each song's `keep` most similar songs by `sim` (ties: lower id first), as [`fit_with`].
    pub fn fit(&self, keep: usize, sim: Similarity) -> NeighbourLists {
        self.fit_rows(keep, sim, None)
    }

    /// [`CoListens::fit`] for the songs `wanted` marks only (the others' lists stay empty) and
    /// without the final scaling: the lists item-kNN reads to rank histories made of those
    /// songs, the same ranking (the scale is one factor for all), at a fraction of the cost.
    /// Choosing the similarity on validation users needs only their history songs' lists.
    pub fn fit_rows(
        &self,
        keep: usize,
        sim: Similarity,
        wanted: Option<&[bool]>,
    ) -> NeighbourLists {
        let CoListens {
            songs,
            rows,
            count,
            by_song,
        } = self;
        let songs = *songs;
        // Each user's co-listen weight, 1/|u|^power (1 for cosine).
        let user_weight: Vec<f32> = rows
            .iter()
            .map(|r| {
                if sim.power == 0.0 {
                    1.0
                } else {
                    (r.len().max(1) as f32).powf(-sim.power)
                }
            })
            .collect();
        // n^alpha and n^(1 − alpha) per song, computed once (not once per pair).
        let (pow_i, pow_j): (Vec<f32>, Vec<f32>) = if sim == Similarity::COSINE {
            (Vec::new(), Vec::new())
        } else {
            count
                .iter()
                .map(|&n| ((n as f32).powf(sim.alpha), (n as f32).powf(1.0 - sim.alpha)))
                .unzip()
        };
        let mut lists: NeighbourLists = (0..songs)
            .into_par_iter()
            .map_init(
                // Per thread: a dense row of weighted co-listens and the songs it touched (every
                // weight is > 0, so 0 means untouched).
                || (vec![0.0f32; songs], Vec::<u32>::new()),
                |(co, touched), i| {
                    if wanted.is_some_and(|w| !w[i]) {
                        return Vec::new();
                    }
                    // Weighted co-listens (exact integer counts when every weight is 1), summed
                    // in the same order for every song.
                    for &u in &by_song[i] {
                        let w = user_weight[u as usize];
                        for &j in &rows[u as usize] {
                            if j as usize != i {
                                if co[j as usize] == 0.0 {
                                    touched.push(j);
                                }
                                co[j as usize] += w;
                            }
                        }
                    }
                    let ni = count[i] as f32;
                    let mut sims: Vec<(u32, f32)> = touched
                        .drain(..)
                        .map(|j| {
                            let c = std::mem::take(&mut co[j as usize]);
                            let denominator = if sim == Similarity::COSINE {
                                (ni * count[j as usize] as f32).sqrt()
                            } else {
                                pow_i[i] * pow_j[j as usize] + sim.shrink
                            };
                            (j, c / denominator)
                        })
                        .collect();
                    let order =
                        |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
                    if sims.len() > keep && keep > 0 {
                        sims.select_nth_unstable_by(keep - 1, order);
                    }
                    sims.truncate(keep);
                    sims.sort_by(order);
                    sims
                },
            )
            .collect();
        if sim != Similarity::COSINE && wanted.is_none() {
            // One scale for every similarity (the largest is 1, as cosine's at most is), so the
            // term's weight γ means the same whichever was chosen; kNN's ranking is unchanged.
            let max = lists
                .iter()
                .filter_map(|l| l.first().map(|x| x.1))
                .fold(0.0f32, f32::max);
            if max > 0.0 {
                for l in &mut lists {
                    for x in l.iter_mut() {
                        x.1 /= max;
                    }
                }
            }
        }
        lists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Histories = Vec<(Vec<u32>, Vec<f32>)>;

    /// Users 0–2: {0, 1}, {0, 1, 2}, {1, 2, 3}. Song counts n = [2, 3, 2, 1].
    fn data() -> (Histories, Vec<u32>) {
        let h = vec![
            (vec![0, 1], vec![1.0; 2]),
            (vec![0, 1, 2], vec![1.0; 3]),
            (vec![1, 2, 3], vec![1.0; 3]),
        ];
        (h, vec![0, 1, 2])
    }

    /// The rows `fit_rows` is asked for are `fit_with`'s before its scaling (the same order,
    /// values times the scale), every other row is empty; `keep` cuts each at the same place.
    #[test]
    fn fitting_some_rows_gives_those_rows_unscaled() {
        let (h, u) = data();
        let sim = Similarity {
            alpha: 0.8,
            shrink: 1.0,
            power: 0.5,
        };
        for keep in [1, 2, 10] {
            let all = fit_with(4, &h, &u, keep, sim);
            let wanted = [false, true, false, true];
            let some = CoListens::new(4, &h, &u).fit_rows(keep, sim, Some(&wanted));
            let scale = some[1][0].1 / all[1][0].1;
            assert!(scale > 0.0 && scale.is_finite(), "{scale}");
            for (i, w) in wanted.iter().enumerate() {
                if !w {
                    assert!(some[i].is_empty(), "row {i} not asked for: {:?}", some[i]);
                    continue;
                }
                assert_eq!(some[i].len(), all[i].len(), "keep {keep}, row {i}");
                for (a, b) in some[i].iter().zip(&all[i]) {
                    assert_eq!(
                        a.0, b.0,
                        "keep {keep}, row {i}: {:?} vs {:?}",
                        some[i], all[i]
                    );
                    assert!((a.1 - b.1 * scale).abs() < 1e-6, "{a:?} vs {b:?} × {scale}");
                }
            }
        }
    }

    #[test]
    fn cosine_is_the_default_fit() {
        let (h, u) = data();
        assert_eq!(
            fit(4, &h, &u, 10),
            fit_with(4, &h, &u, 10, Similarity::COSINE)
        );
        // Song 0 and song 1: 2 co-listeners, n = 2 and 3.
        let l = fit(4, &h, &u, 10);
        assert!((l[0][0].1 - 2.0 / 6f32.sqrt()).abs() < 1e-6, "{:?}", l[0]);
    }

    #[test]
    fn asymmetric_similarity_by_hand_then_scaled_to_a_largest_of_one() {
        let (h, u) = data();
        let sim = Similarity {
            alpha: 0.8,
            shrink: 1.0,
            power: 1.0,
        };
        let l = fit_with(4, &h, &u, 10, sim);
        let raw = |c: f32, ni: f32, nj: f32| c / (ni.powf(0.8) * nj.powf(0.2) + 1.0);
        // Every raw similarity, to find the scale.
        let pairs = [
            (0, 1, 0.5 + 1.0 / 3.0, 2.0, 3.0),
            (1, 0, 0.5 + 1.0 / 3.0, 3.0, 2.0),
            (0, 2, 1.0 / 3.0, 2.0, 2.0),
            (2, 0, 1.0 / 3.0, 2.0, 2.0),
            (1, 2, 2.0 / 3.0, 3.0, 2.0),
            (2, 1, 2.0 / 3.0, 2.0, 3.0),
            (1, 3, 1.0 / 3.0, 3.0, 1.0),
            (3, 1, 1.0 / 3.0, 1.0, 3.0),
            (2, 3, 1.0 / 3.0, 2.0, 1.0),
            (3, 2, 1.0 / 3.0, 1.0, 2.0),
        ];
        let max = pairs
            .iter()
            .map(|p| raw(p.2, p.3, p.4))
            .fold(0.0f32, f32::max);
        for (i, j, c, ni, nj) in pairs {
            let got = l[i].iter().find(|x| x.0 == j).expect("pair listed").1;
            let want = raw(c, ni, nj) / max;
            assert!((got - want).abs() < 1e-6, "{i}→{j}: {got} vs {want}");
        }
        let top = l.iter().flatten().map(|x| x.1).fold(0.0f32, f32::max);
        assert!((top - 1.0).abs() < 1e-6);
        // Song 3's list: best first.
        assert!(l[3].windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn knn_scores_sum_the_history_lists_once_per_song() {
        let lists: NeighbourLists = vec![vec![(1, 0.5), (2, 0.25)], vec![(2, 1.0)], vec![]];
        assert_eq!(knn_scores(&lists, 3, &[0, 1, 0]), vec![0.0, 0.5, 1.25]);
    }

    #[test]
    fn similarity_parses_and_refuses_out_of_range() {
        assert_eq!("cosine".parse::<Similarity>(), Ok(Similarity::COSINE));
        let s: Similarity = "0.8, 5, 0.5".parse().unwrap();
        assert_eq!((s.alpha, s.shrink, s.power), (0.8, 5.0, 0.5));
        assert_eq!(s.to_string(), "0.8,5,0.5");
        for bad in ["1.5,0,0", "0.5,-1,0", "0.5,0,nan", "0.5,0", "x,0,0"] {
            assert!(bad.parse::<Similarity>().is_err(), "{bad}");
        }
        let g = similarity_grid();
        assert_eq!(g[0], Similarity::COSINE);
        assert!(g[1..]
            .iter()
            .all(|s| *s != Similarity::COSINE && s.check().is_ok()));
    }
}
