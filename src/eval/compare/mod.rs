//! `ainrnn compare`: every model over the cross-validation folds (mean ± std across folds), the
//! report (`report.md`, `results.json`) and the paper's figures as PNG and SVG:
//! precision@k and NDCG@k for k = 1…20 (Figs. 7–8), validation accuracy per epoch by feature
//! set (Fig. 6) and training seconds per epoch per model (Fig. 9).
//!
//! Parts: `options` (what to run), `folds` (one method on one fold), `features` (the Fig. 6
//! runs), `report` (the results, mean ± std, JSON), `table` (the tables), `files` (figures and
//! report files), `cold` (`--cold-songs`: item cold start). Here: the loop over folds and methods.

mod cold;
mod features;
mod files;
mod folds;
mod options;
mod report;
mod table;

use std::collections::BTreeMap;
use std::time::Instant;

pub use self::cold::{
    cold_questions, cold_split, compare_cold, fit_mapping, neural_cold_scores, rank_candidates,
    warm_view, ColdFold, ColdQuestions, ColdReport, ColdRow, ColdSongs, ColdSplit, MIN_COLD_SONGS,
};
use self::features::{feature_runs, feature_sets};
use self::files::write_report;
use self::folds::{run_method, Fold};
pub(crate) use self::folds::{train_and_rank, FoldSetup, DEPTH};
pub use self::options::{CompareOptions, Method};
pub(crate) use self::report::mean_std;
pub use self::report::{CompareReport, FoldResult, MethodSummary};
pub use self::table::summary_table;
use crate::backend::model_ops::ModelOps;
use crate::data::Dataset;
use crate::error::{Error, IoError};
use crate::eval::metrics::{curves, evaluate};
use crate::train::corpus::song_genres;
use crate::train::Corpus;

/// Refuses a `--folds` the dataset lacks and a `--k` outside the reported cut-offs.
pub(crate) fn check_folds_and_k(o: &CompareOptions, ds: &Dataset) -> Result<(), Error> {
    if o.folds == 0 || o.folds > ds.folds {
        return Err(Error::Other(format!(
            "--folds {}: the dataset has {} folds (prepare it with --folds N to change that)",
            o.folds, ds.folds
        )));
    }
    if o.k == 0 || o.k > 20 {
        return Err(Error::Other(format!(
            "--k {}: compare reports cut-offs 1..=20",
            o.k
        )));
    }
    // Refused here, before any model runs, not when its turn comes.
    for (i, m) in o.methods.iter().enumerate() {
        if o.methods[..i].contains(m) {
            return Err(Error::Other(format!(
                "--models: {} is listed twice",
                m.name()
            )));
        }
    }
    Ok(())
}

/// Runs the comparison; `log` receives one line per finished step.
pub fn compare<B: ModelOps>(
    b: &B,
    o: &CompareOptions,
    mut log: impl FnMut(&str),
) -> Result<CompareReport, Error> {
    let t_all = Instant::now();
    let ds = Dataset::load(&o.data)?;
    check_folds_and_k(o, &ds)?;
    // Here, before any model runs, not at its turn (the cold-start table reports the rows it
    // cannot run instead).
    if o.methods.contains(&Method::ContentKnn)
        && crate::eval::baselines::ContentKnn::new(&ds, 0.0).is_none()
    {
        return Err(Error::Other(format!(
            "--models contentknn: {} has no song vectors and no song genres (prepare it with --artist-terms for genres, or --msd or --features for song vectors)",
            o.data.display()
        )));
    }
    std::fs::create_dir_all(o.report.join("checkpoints")).map_err(|e| IoError::io(&o.report, e))?;
    let (corpus, _) = Corpus::from_dataset(&ds, o.train.features)?;
    let genres = song_genres(&ds);
    let mut notes = Vec::new();
    let mut results: BTreeMap<usize, MethodSummary> = BTreeMap::new();
    let mut ease_lambda = o.ease_lambda;
    let mut knn_similarity = o.train.similarity;
    for fold in 0..o.folds {
        let setup = FoldSetup::new(
            &ds,
            &corpus,
            genres.clone(),
            fold,
            o.train.seed,
            o.train.max_validation,
        )?;
        let (fd, cat, test_truth) = (&setup.fd, &setup.cat, &setup.test_truth);
        let f = Fold {
            o,
            ds: &ds,
            corpus: &corpus,
            fold,
            fd,
            fit_users: &setup.fit_users,
            cat,
        };
        for (mi, &m) in o.methods.iter().enumerate() {
            let summary = results.entry(mi).or_insert_with(|| MethodSummary {
                name: m.name().to_string(),
                folds: vec![],
                failed: None,
            });
            if summary.failed.is_some() {
                continue;
            }
            let tuned = (&mut ease_lambda, &mut knn_similarity);
            let run = match run_method(b, &f, m, tuned, &mut notes) {
                Ok(run) => run,
                // One model's failure (a diverged training, a size the device refuses) costs
                // that model's row, not the others' finished folds.
                Err(e) => {
                    log(&format!("fold {fold} {:<10} failed: {e}", m.name()));
                    summary.folds.clear();
                    summary.failed = Some(format!("failed on fold {fold}: {e}"));
                    continue;
                }
            };
            let metrics = evaluate(&run.lists, test_truth, o.k, cat);
            log(&format!(
                "fold {fold} {:<10} P@{k} {:.4}  R@{k} {:.4}  NDCG@{k} {:.4}  mAP@{k} {:.4}  coverage {:.3}  {:.2}s/epoch",
                m.name(),
                metrics.precision,
                metrics.recall,
                metrics.ndcg,
                metrics.map,
                metrics.coverage,
                run.seconds_per_epoch,
                k = o.k
            ));
            summary.folds.push(FoldResult {
                fold,
                metrics,
                curve: curves(&run.lists, test_truth, DEPTH),
                seconds_per_epoch: run.seconds_per_epoch,
                epochs: run.epochs,
                history: run.history,
            });
        }
    }
    // Nothing to report when every model failed: the first failure is the error.
    if results.values().all(|m| m.failed.is_some()) {
        if let Some(m) = results.values().next() {
            let why = m.failed.as_deref().unwrap_or_default();
            return Err(Error::Other(format!("{} {why}", m.name)));
        }
    }
    let sets = feature_sets(o, &ds, &mut notes);
    let feature_runs = feature_runs(b, o, &sets, &mut log)?;
    let mut report = CompareReport {
        data: o.data.display().to_string(),
        source: ds.source.clone(),
        users: ds.users(),
        songs: ds.songs(),
        interactions: ds.interactions(),
        k: o.k,
        folds: o.folds,
        backend: b.describe(),
        ease_lambda: if o.methods.contains(&Method::Ease) {
            ease_lambda
        } else {
            None
        },
        knn_similarity: knn_similarity
            .filter(|_| o.methods.contains(&Method::ItemKnn))
            .map(|s| s.to_string()),
        methods: results.into_values().collect(),
        feature_runs,
        notes,
        files: vec![],
        seconds: 0.0,
    };
    report.files = write_report(&report, &o.report, &o.train)?;
    report.seconds = t_all.elapsed().as_secs_f64();
    Ok(report)
}
