//! One method on one fold: fitting or training it and ranking the fold's test users.

use std::time::Instant;

use rayon::prelude::*;

use super::options::{CompareOptions, Method};
use crate::backend::model_ops::ModelOps;
use crate::data::Dataset;
use crate::error::Error;
use crate::eval::baselines::{ContentKnn, Ease, ItemKnn, Popularity};
use crate::eval::metrics::{evaluate, Catalogue};
use crate::model::batch::Example;
use crate::model::neighbours::Similarity;
use crate::train::corpus::{fold_data, FoldData};
use crate::train::neighbours::choose_similarity;
use crate::train::run::{train, TrainOptions};
use crate::train::{rank_examples, truths, Corpus, EpochReport, Truth};

/// Ranks kept per test user: the curves go to k = 20.
pub(crate) const DEPTH: usize = 20;

/// What every method of one fold shares.
pub(super) struct Fold<'a> {
    pub o: &'a CompareOptions,
    pub ds: &'a Dataset,
    pub corpus: &'a Corpus,
    pub fold: u32,
    pub fd: &'a FoldData,
    /// Training and validation users: what the baselines are fitted on.
    pub fit_users: &'a [u32],
    pub cat: &'a Catalogue,
}

/// One method's rankings of the fold's test users and its cost.
pub(crate) struct MethodRun {
    pub lists: Vec<Vec<u32>>,
    /// Training seconds per epoch (learned models) or fitting seconds (baselines).
    pub seconds_per_epoch: f64,
    pub epochs: u32,
    pub history: Vec<EpochReport>,
    /// Models trained (an ensemble's members; 1 for a single model or a baseline).
    pub members: usize,
}

impl MethodRun {
    fn fitted(lists: Vec<Vec<u32>>, seconds: f64) -> Self {
        MethodRun {
            lists,
            seconds_per_epoch: seconds,
            epochs: 1,
            history: vec![],
            members: 1,
        }
    }
}

/// Runs method `m` on the fold. EASE's λ and item-kNN's similarity, when not given, are tuned
/// once (on the first fold that runs the method) and kept in `tuned`, with a line in `notes`.
pub(super) fn run_method<B: ModelOps>(
    b: &B,
    f: &Fold<'_>,
    m: Method,
    tuned: (&mut Option<f32>, &mut Option<Similarity>),
    notes: &mut Vec<String>,
) -> Result<MethodRun, Error> {
    let (ease_lambda, knn_similarity) = tuned;
    let Fold {
        o,
        ds,
        corpus,
        fold,
        fd,
        fit_users,
        cat,
    } = *f;
    let t0 = Instant::now();
    Ok(match m {
        Method::Popularity => {
            let p = Popularity::fit(corpus.songs, &corpus.histories, fit_users);
            let secs = t0.elapsed().as_secs_f64();
            MethodRun::fitted(
                fd.test.par_iter().map(|e| p.recommend(e, DEPTH)).collect(),
                secs,
            )
        }
        Method::ItemKnn => {
            let sim = match *knn_similarity {
                Some(s) => s,
                None => {
                    let (c, _) = choose_similarity(
                        corpus,
                        &fd.train_users,
                        &fd.validation,
                        o.knn_neighbours,
                        o.k,
                        cat,
                    );
                    notes.push(format!(
                        "item-kNN similarity {} chosen by validation NDCG@{} on fold {fold} ({:.4}; cosine {:.4}; {} tried)",
                        c.chosen, o.k, c.ndcg_chosen, c.ndcg_cosine, c.tried
                    ));
                    *knn_similarity = Some(c.chosen);
                    c.chosen
                }
            };
            let t0 = Instant::now();
            let knn = ItemKnn::fit(
                corpus.songs,
                &corpus.histories,
                fit_users,
                o.knn_neighbours,
                sim,
            );
            let secs = t0.elapsed().as_secs_f64();
            MethodRun::fitted(
                fd.test
                    .par_iter()
                    .map(|e| knn.recommend(e, DEPTH))
                    .collect(),
                secs,
            )
        }
        Method::ContentKnn => {
            let t = truths(corpus, &fd.validation);
            let (c, tried) =
                ContentKnn::choose(ds, &fd.validation, &t, o.k, cat).ok_or_else(|| {
                    Error::Other(format!(
                        "--models contentknn: {} has no song vectors and no song genres",
                        o.data.display()
                    ))
                })?;
            notes.push(format!(
                "content-kNN artist weight {} chosen by validation NDCG@{} on fold {fold} ({})",
                c.artist_weight,
                o.k,
                artist_weights_tried(&tried)
            ));
            let secs = t0.elapsed().as_secs_f64();
            MethodRun::fitted(
                fd.test.par_iter().map(|e| c.recommend(e, DEPTH)).collect(),
                secs,
            )
        }
        Method::Ease => {
            let lambda = match *ease_lambda {
                Some(l) => l,
                None => {
                    let l = tune_ease(
                        corpus,
                        &fd.train_users,
                        &fd.validation,
                        o.k,
                        o.ease_max_items,
                        cat,
                    )?;
                    notes.push(format!("EASE λ = {l} chosen by validation NDCG@{} on fold {fold} (grid 10, 50, 200, 500, 2000)", o.k));
                    *ease_lambda = Some(l);
                    l
                }
            };
            let t1 = Instant::now();
            let e = Ease::fit(
                corpus.songs,
                &corpus.histories,
                fit_users,
                lambda,
                o.ease_max_items,
            )
            .map_err(|e| Error::Other(e.to_string()))?;
            let secs = t1.elapsed().as_secs_f64();
            MethodRun::fitted(
                fd.test.par_iter().map(|x| e.recommend(x, DEPTH)).collect(),
                secs,
            )
        }
        Method::Neural(kind) => {
            let mut opts = o.train.clone();
            opts.kind = kind;
            opts.fold = fold;
            opts.data = o.data.clone();
            opts.out = o.checkpoint(kind, fold);
            let r = train_and_rank(b, ds, corpus, &opts, &fd.test)?;
            if r.members > 1 && fold == 0 {
                notes.push(format!(
                    "{}: an ensemble of {} models (--ensemble {}), ranking by their summed scores; seconds per epoch and epochs are the first member's",
                    kind.name(),
                    r.members,
                    o.train.ensemble_flag()
                ));
            }
            r
        }
    })
}

/// Trains a learned model afresh with `opts` (its `data`, `fold` and `out` set; `resume` is
/// ignored) and ranks `test` with its best checkpoint.
pub(crate) fn train_and_rank<B: ModelOps>(
    b: &B,
    ds: &Dataset,
    corpus: &Corpus,
    opts: &TrainOptions,
    test: &[Example],
) -> Result<MethodRun, Error> {
    let opts = TrainOptions {
        resume: false,
        ..opts.clone()
    };
    let s = train(b, &opts, |_| {}, |_, _, _, _| {})?;
    s.remove_latest();
    let (models, _, _) = crate::eval::run::load_ensemble(b, ds, &opts.out)?;
    let (lists, _) = rank_examples(b, &models, corpus, test, DEPTH, crate::train::RANK_BATCH)?;
    let secs = s.history.iter().map(|r| r.seconds).sum::<f64>() / s.history.len().max(1) as f64;
    Ok(MethodRun {
        lists,
        seconds_per_epoch: secs,
        epochs: s.epochs_run,
        history: s.history,
        members: s.members.len().max(1),
    })
}

/// One fold's users, catalogue and test truths: what every method run on the fold shares.
pub(crate) struct FoldSetup {
    pub fd: FoldData,
    /// Training and validation users: what the baselines are fitted on.
    pub fit_users: Vec<u32>,
    pub cat: Catalogue,
    pub test_truth: Vec<Truth>,
}

impl FoldSetup {
    pub(crate) fn new(
        ds: &Dataset,
        corpus: &Corpus,
        genres: Option<Vec<u16>>,
        fold: u32,
        seed: u64,
        max_validation: usize,
    ) -> Result<Self, Error> {
        let fd = fold_data(ds, corpus, fold, seed, max_validation)?;
        let mut fit_users: Vec<u32> = fd.train_users.clone();
        fit_users.extend(fd.validation.iter().map(|e| e.user));
        fit_users.sort_unstable();
        let cat = corpus.catalogue(&fit_users, genres);
        let test_truth = truths(corpus, &fd.test);
        Ok(FoldSetup {
            fd,
            fit_users,
            cat,
            test_truth,
        })
    }
}

/// EASE's λ chosen on validation users by NDCG@k.
fn tune_ease(
    corpus: &Corpus,
    users: &[u32],
    val: &[Example],
    k: usize,
    max_items: usize,
    cat: &Catalogue,
) -> Result<f32, Error> {
    let t = truths(corpus, val);
    let mut best = (f64::MIN, 100.0f32);
    for lambda in [10.0f32, 50.0, 200.0, 500.0, 2000.0] {
        let e = Ease::fit(corpus.songs, &corpus.histories, users, lambda, max_items)
            .map_err(|e| Error::Other(e.to_string()))?;
        let lists: Vec<Vec<u32>> = val.iter().map(|x| e.recommend(x, k)).collect();
        let m = evaluate(&lists, &t, k, cat);
        if m.ndcg > best.0 {
            best = (m.ndcg, lambda);
        }
    }
    Ok(best.1)
}

/// `w 0: 0.0105, w 1: 0.0966, …`: what the artist-weight choice of content-kNN measured.
pub(super) fn artist_weights_tried(tried: &[(f32, f64)]) -> String {
    tried
        .iter()
        .map(|(w, v)| format!("w {w}: {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}
