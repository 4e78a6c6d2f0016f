//! Choosing the co-listening similarity of the item-neighbour lists on validation users.
//!
//! Why: the best similarity differs between data sets (asymmetric cosine with shrinkage lifts
//! item-kNN on the bundled Taste sample from 0.215 to 0.257 NDCG@10 on validation users, while
//! HetRec wants nearly plain cosine), and the lists feed both item-kNN and the learned models'
//! neighbourhood term. The choice is made as EASE's λ is: lists fitted on the training users,
//! item-kNN ranks the validation users, the best NDCG@10 wins (ties: the earlier grid entry,
//! cosine first).

use rayon::prelude::*;
use serde::Serialize;

use super::metrics::{evaluate, top_k, Catalogue};
use super::{truths, Corpus};
use crate::model::batch::Example;
use crate::model::neighbours::{
    knn_scores, similarity_grid, CoListens, NeighbourLists, Similarity,
};

/// What the choice tried and kept.
#[derive(Clone, Debug, Serialize)]
pub struct SimilarityChoice {
    pub chosen: Similarity,
    /// Validation NDCG@10 of item-kNN with the chosen similarity and with cosine.
    pub ndcg_chosen: f64,
    pub ndcg_cosine: f64,
    pub tried: usize,
}

/// Item-kNN's top-`k` lists for `examples` (songs no list reaches are not ranked).
pub fn knn_lists(
    lists: &NeighbourLists,
    songs: usize,
    examples: &[Example],
    k: usize,
) -> Vec<Vec<u32>> {
    examples
        .par_iter()
        .map(|e| {
            let mut s = knn_scores(lists, songs, &e.songs);
            s.iter_mut()
                .filter(|x| **x == 0.0)
                .for_each(|x| *x = f32::NEG_INFINITY);
            top_k(&s, &e.exclude, k)
        })
        .collect()
}

/// Fits the lists for every similarity of the grid on `train_users` and keeps the one whose
/// item-kNN ranks `validation` best by NDCG@`k`; returns the choice and its lists. With no
/// validation example, cosine.
pub fn choose_similarity(
    corpus: &Corpus,
    train_users: &[u32],
    validation: &[Example],
    keep: usize,
    k: usize,
    cat: &Catalogue,
) -> (SimilarityChoice, NeighbourLists) {
    // One co-listening index for every candidate's fit and the winner's.
    let co = CoListens::new(corpus.songs, &corpus.histories, train_users);
    if validation.is_empty() {
        let choice = SimilarityChoice {
            chosen: Similarity::COSINE,
            ndcg_chosen: 0.0,
            ndcg_cosine: 0.0,
            tried: 1,
        };
        return (choice, co.fit(keep, Similarity::COSINE));
    }
    let t = truths(corpus, validation);
    let ndcg = |lists: &NeighbourLists| {
        evaluate(&knn_lists(lists, corpus.songs, validation, k), &t, k, cat).ndcg
    };
    // Item-kNN reads only the lists of the validation histories' songs: the grid is fitted on
    // those rows alone (at paper scale ~20 full fits took 160 s on 2 cores), the winner then in
    // full.
    let mut wanted = vec![false; corpus.songs];
    for e in validation {
        for &s in &e.songs {
            wanted[s as usize] = true;
        }
    }
    let rows = |sim| co.fit_rows(keep, sim, Some(&wanted));
    let ndcg_cosine = ndcg(&rows(Similarity::COSINE));
    let mut best = (ndcg_cosine, Similarity::COSINE);
    let grid = similarity_grid();
    for &sim in grid.iter().filter(|&&s| s != Similarity::COSINE) {
        let v = ndcg(&rows(sim));
        if v > best.0 {
            best = (v, sim);
        }
    }
    let choice = SimilarityChoice {
        chosen: best.1,
        ndcg_chosen: best.0,
        ndcg_cosine,
        tried: grid.len(),
    };
    (choice, co.fit(keep, best.1))
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::model::neighbours::fit_with;

    /// Users with a taste for one of 4 song groups and a bias towards a few popular songs:
    /// the shape where cosine and its asymmetric variants rank differently.
    fn corpus(users: usize) -> Corpus {
        let songs = 60;
        let mut rng = StdRng::seed_from_u64(7);
        let histories = (0..users)
            .map(|_| {
                let g = rng.random_range(0..4u32);
                let n = rng.random_range(2..9);
                let mut s: Vec<u32> = (0..n)
                    .map(|_| {
                        if rng.random_bool(0.3) {
                            rng.random_range(0..3u32)
                        } else {
                            g * 15 + rng.random_range(0..15u32)
                        }
                    })
                    .collect();
                s.sort_unstable();
                s.dedup();
                let p = vec![1.0; s.len()];
                (s, p)
            })
            .collect();
        Corpus {
            songs,
            histories,
            ..Default::default()
        }
    }

    #[test]
    fn the_chosen_similarity_is_the_grids_best_on_validation_and_its_lists_come_back() {
        let c = corpus(400);
        let train: Vec<u32> = (0..300).collect();
        let mut rng = StdRng::seed_from_u64(1);
        let val: Vec<Example> = (300..400u32)
            .filter_map(|u| {
                let (s, p) = &c.histories[u as usize];
                crate::train::split_example(u, s, p, 0.5, &mut rng)
            })
            .collect();
        let cat = c.catalogue(&train, None);
        let (choice, lists) = choose_similarity(&c, &train, &val, 20, 10, &cat);
        let t = truths(&c, &val);
        let score = |sim| {
            let l = fit_with(c.songs, &c.histories, &train, 20, sim);
            evaluate(&knn_lists(&l, c.songs, &val, 10), &t, 10, &cat).ndcg
        };
        let all: Vec<(Similarity, f64)> = similarity_grid()
            .into_iter()
            .map(|s| (s, score(s)))
            .collect();
        let best = all.iter().map(|x| x.1).fold(f64::MIN, f64::max);
        assert_eq!(choice.ndcg_chosen, best, "{all:?}");
        assert_eq!(choice.ndcg_cosine, all[0].1);
        // The first grid entry with the best score (ties keep the earlier one).
        assert_eq!(choice.chosen, all.iter().find(|x| x.1 == best).unwrap().0);
        assert_eq!(
            lists,
            fit_with(c.songs, &c.histories, &train, 20, choice.chosen)
        );
        assert_eq!(choice.tried, all.len());
        // Nothing to validate on: cosine.
        let (none, _) = choose_similarity(&c, &train, &[], 20, 10, &cat);
        assert_eq!(none.chosen, Similarity::COSINE);
    }
}
