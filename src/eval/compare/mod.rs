//! `ainrnn compare`: every model over the cross-validation folds (mean ± std across folds), the
//! report (`report.md`, `results.json`) and the paper's figures as PNG and SVG:
//! precision@k and NDCG@k for k = 1…20 (Figs. 7–8), validation accuracy per epoch by feature
//! set (Fig. 6) and training seconds per epoch per model (Fig. 9).
//!
//! Parts: `folds` runs one method on one fold, `features` the Fig. 6 runs, `report` holds the
//! results and writes the files, `table` formats the tables.

mod features;
mod folds;
mod report;
mod table;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use self::features::{feature_runs, feature_sets};
use self::folds::{run_method, truths, Fold, DEPTH};
use self::report::write_report;
pub use self::report::{CompareReport, FoldResult, MethodSummary};
pub use self::table::summary_table;
use crate::backend::model_ops::ModelOps;
use crate::data::Dataset;
use crate::error::{Error, IoError};
use crate::eval::metrics::{curves, evaluate};
use crate::model::ModelKind;
use crate::train::corpus::{fold_data, song_genres, FeatureSet};
use crate::train::run::TrainOptions;
use crate::train::Corpus;

/// A model `compare` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Popularity,
    ItemKnn,
    Ease,
    Neural(ModelKind),
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Popularity => "popularity",
            Method::ItemKnn => "itemknn",
            Method::Ease => "ease",
            Method::Neural(k) => k.name(),
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "popularity" | "pop" => Ok(Method::Popularity),
            "itemknn" | "item-knn" | "knn" => Ok(Method::ItemKnn),
            "ease" => Ok(Method::Ease),
            other => other.parse::<ModelKind>().map(Method::Neural).map_err(|_| {
                format!("unknown model {other:?} (popularity, itemknn, ease, indrnn, lstm, ainrnn)")
            }),
        }
    }
}

pub struct CompareOptions {
    pub data: PathBuf,
    pub methods: Vec<Method>,
    pub folds: u32,
    pub k: usize,
    /// Training settings of the learned models (`data`, `kind`, `fold` and `out` are set per run).
    pub train: TrainOptions,
    pub report: PathBuf,
    /// Feature sets compared for the accuracy-per-epoch figure (AINRNN on fold 0); empty: the
    /// available ones of mfcc/scattering, else of msd/none.
    pub feature_sets: Vec<FeatureSet>,
    /// EASE's λ; `None`: chosen on fold 0's validation users.
    pub ease_lambda: Option<f32>,
    pub ease_max_items: usize,
    pub knn_neighbours: usize,
}

/// Runs the comparison; `log` receives one line per finished step.
pub fn compare<B: ModelOps>(
    b: &B,
    o: &CompareOptions,
    mut log: impl FnMut(&str),
) -> Result<CompareReport, Error> {
    let t_all = Instant::now();
    let ds = Dataset::load(&o.data)?;
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
    std::fs::create_dir_all(o.report.join("checkpoints")).map_err(|e| IoError::io(&o.report, e))?;
    let (corpus, _) = Corpus::from_dataset(&ds, o.train.features)?;
    let genres = song_genres(&ds);
    let mut notes = Vec::new();
    let mut results: BTreeMap<usize, MethodSummary> = BTreeMap::new();
    let mut ease_lambda = o.ease_lambda;
    for fold in 0..o.folds {
        let fd = fold_data(&ds, &corpus, fold, o.train.seed, o.train.max_validation)?;
        let mut fit_users: Vec<u32> = fd.train_users.clone();
        fit_users.extend(fd.validation.iter().map(|e| e.user));
        fit_users.sort_unstable();
        let cat = corpus.catalogue(&fit_users, genres.clone());
        let test_truth = truths(&corpus, &fd.test);
        let f = Fold {
            o,
            ds: &ds,
            corpus: &corpus,
            fold,
            fd: &fd,
            fit_users: &fit_users,
            cat: &cat,
        };
        for (mi, &m) in o.methods.iter().enumerate() {
            let run = run_method(b, &f, m, &mut ease_lambda, &mut notes)?;
            let metrics = evaluate(&run.lists, &test_truth, o.k, &cat);
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
            results
                .entry(mi)
                .or_insert_with(|| MethodSummary {
                    name: m.name().to_string(),
                    folds: vec![],
                })
                .folds
                .push(FoldResult {
                    fold,
                    metrics,
                    curve: curves(&run.lists, &test_truth, DEPTH),
                    seconds_per_epoch: run.seconds_per_epoch,
                    epochs: run.epochs,
                    history: run.history,
                });
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
