//! `ainrnn compare`: every model over the cross-validation folds (mean ± std across folds), the
//! report (`report.md`, `results.json`) and the paper's figures as PNG and SVG:
//! precision@k and NDCG@k for k = 1…20 (Figs. 7–8), validation accuracy per epoch by feature
//! set (Fig. 6) and training seconds per epoch per model (Fig. 9).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::baselines::{Ease, ItemKnn, Popularity};
use super::metrics::{curves, evaluate, Catalogue, Metrics};
use super::plots::{bar_chart, line_chart, Series};
use crate::backend::model_ops::ModelOps;
use crate::data::Dataset;
use crate::error::{Error, IoError};
use crate::io::write_atomic;
use crate::model::batch::Example;
use crate::model::ModelKind;
use crate::train::corpus::{fold_data, song_genres, FeatureSet};
use crate::train::run::{train, TrainOptions};
use crate::train::{rank_examples, Corpus, EpochReport, Truth};

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

/// One method on one fold.
#[derive(Clone, Debug, Serialize)]
pub struct FoldResult {
    pub fold: u32,
    pub metrics: Metrics,
    /// `(k, precision@k, NDCG@k)`, k = 1..=20.
    pub curve: Vec<(usize, f64, f64)>,
    /// Training seconds per epoch (learned models) or fitting seconds (baselines).
    pub seconds_per_epoch: f64,
    pub epochs: u32,
    pub history: Vec<EpochReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MethodSummary {
    pub name: String,
    pub folds: Vec<FoldResult>,
}

#[derive(Debug, Serialize)]
pub struct CompareReport {
    pub data: String,
    pub source: String,
    pub users: usize,
    pub songs: usize,
    pub interactions: usize,
    pub k: usize,
    pub folds: u32,
    pub backend: String,
    pub ease_lambda: Option<f32>,
    pub methods: Vec<MethodSummary>,
    /// Fig. 6: AINRNN validation metrics per epoch by feature set (fold 0).
    pub feature_runs: Vec<(String, Vec<EpochReport>)>,
    pub notes: Vec<String>,
    pub files: Vec<PathBuf>,
    pub seconds: f64,
}

/// Reads one number out of a fold's result.
type Pick = fn(&FoldResult) -> f64;

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    } else {
        0.0
    };
    (m, var.sqrt())
}

impl MethodSummary {
    fn stat(&self, f: impl Fn(&FoldResult) -> f64) -> (f64, f64) {
        mean_std(&self.folds.iter().map(f).collect::<Vec<_>>())
    }
}

impl CompareReport {
    /// `{"k": 10, "folds": N, "models": {name: {"precision_at_10": …, …, "_std" keys}}}`.
    pub fn json(&self) -> Value {
        let k = self.k;
        let mut models = Map::new();
        for m in &self.methods {
            let mut o = Map::new();
            let fields: [(&str, Pick); 9] = [
                ("precision", |r| r.metrics.precision),
                ("recall", |r| r.metrics.recall),
                ("ndcg", |r| r.metrics.ndcg),
                ("ndcg_graded", |r| r.metrics.ndcg_graded),
                ("map", |r| r.metrics.map),
                ("hit_rate", |r| r.metrics.hit_rate),
                ("coverage", |r| r.metrics.coverage),
                ("long_tail_share", |r| r.metrics.long_tail_share),
                ("seconds_per_epoch", |r| r.seconds_per_epoch),
            ];
            for (name, f) in fields {
                let key = match name {
                    "coverage" | "long_tail_share" | "seconds_per_epoch" => name.to_string(),
                    _ => format!("{name}_at_{k}"),
                };
                let (mean, std) = m.stat(f);
                o.insert(key.clone(), json!(mean));
                o.insert(format!("{key}_std"), json!(std));
            }
            let div: Vec<f64> = m
                .folds
                .iter()
                .filter_map(|r| r.metrics.genre_diversity)
                .collect();
            if !div.is_empty() {
                let (mean, std) = mean_std(&div);
                o.insert("genre_diversity".into(), json!(mean));
                o.insert("genre_diversity_std".into(), json!(std));
            }
            models.insert(m.name.clone(), Value::Object(o));
        }
        json!({
            "k": self.k,
            "folds": self.folds,
            "data": self.data,
            "source": self.source,
            "backend": self.backend,
            "ease_lambda": self.ease_lambda,
            "models": models,
            "files": self.files,
            "seconds": self.seconds,
        })
    }
}

fn truths(corpus: &Corpus, examples: &[Example]) -> Vec<Truth> {
    examples
        .iter()
        .map(|e| {
            let (s, p) = &corpus.histories[e.user as usize];
            e.targets
                .iter()
                .map(|t| {
                    (
                        *t,
                        s.iter().position(|x| x == t).map(|i| p[i]).unwrap_or(1.0),
                    )
                })
                .collect()
        })
        .collect()
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
    let depth = 20;
    for fold in 0..o.folds {
        let fd = fold_data(&ds, &corpus, fold, o.train.seed, o.train.max_validation)?;
        let mut fit_users: Vec<u32> = fd.train_users.clone();
        fit_users.extend(fd.validation.iter().map(|e| e.user));
        fit_users.sort_unstable();
        let cat = corpus.catalogue(&fit_users, genres.clone());
        let test_truth = truths(&corpus, &fd.test);
        for (mi, &m) in o.methods.iter().enumerate() {
            let t0 = Instant::now();
            let (lists, seconds_per_epoch, epochs, history) = match m {
                Method::Popularity => {
                    let p = Popularity::fit(corpus.songs, &corpus.histories, &fit_users);
                    let secs = t0.elapsed().as_secs_f64();
                    (
                        fd.test
                            .iter()
                            .map(|e| p.recommend(e, depth))
                            .collect::<Vec<_>>(),
                        secs,
                        1,
                        vec![],
                    )
                }
                Method::ItemKnn => {
                    let knn = ItemKnn::fit(
                        corpus.songs,
                        &corpus.histories,
                        &fit_users,
                        o.knn_neighbours,
                    );
                    let secs = t0.elapsed().as_secs_f64();
                    (
                        fd.test.iter().map(|e| knn.recommend(e, depth)).collect(),
                        secs,
                        1,
                        vec![],
                    )
                }
                Method::Ease => {
                    let lambda = match ease_lambda {
                        Some(l) => l,
                        None => {
                            let l = tune_ease(
                                &corpus,
                                &fd.train_users,
                                &fd.validation,
                                o.k,
                                o.ease_max_items,
                                &cat,
                            )?;
                            notes.push(format!("EASE λ = {l} chosen by validation NDCG@{} on fold {fold} (grid 10, 50, 200, 500, 2000)", o.k));
                            ease_lambda = Some(l);
                            l
                        }
                    };
                    let t1 = Instant::now();
                    let e = Ease::fit(
                        corpus.songs,
                        &corpus.histories,
                        &fit_users,
                        lambda,
                        o.ease_max_items,
                    )
                    .map_err(|e| Error::Other(e.to_string()))?;
                    let secs = t1.elapsed().as_secs_f64();
                    (
                        fd.test.iter().map(|x| e.recommend(x, depth)).collect(),
                        secs,
                        1,
                        vec![],
                    )
                }
                Method::Neural(kind) => {
                    let mut opts = o.train.clone();
                    opts.kind = kind;
                    opts.fold = fold;
                    opts.data = o.data.clone();
                    opts.resume = false;
                    opts.out = o
                        .report
                        .join("checkpoints")
                        .join(format!("{}-fold{fold}.ckpt", kind.name()));
                    let s = train(b, &opts, |_| {}, |_, _, _, _| {})?;
                    let (model, _, _) = super::run::load_model(b, &ds, &opts.out)?;
                    let (lists, _) = rank_examples(b, &model, &corpus, &fd.test, depth, 256)?;
                    let secs = s.history.iter().map(|r| r.seconds).sum::<f64>()
                        / s.history.len().max(1) as f64;
                    (lists, secs, s.epochs_run, s.history)
                }
            };
            let metrics = evaluate(&lists, &test_truth, o.k, &cat);
            log(&format!(
                "fold {fold} {:<10} P@{k} {:.4}  R@{k} {:.4}  NDCG@{k} {:.4}  mAP@{k} {:.4}  coverage {:.3}  {:.2}s/epoch",
                m.name(),
                metrics.precision,
                metrics.recall,
                metrics.ndcg,
                metrics.map,
                metrics.coverage,
                seconds_per_epoch,
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
                    curve: curves(&lists, &test_truth, depth),
                    seconds_per_epoch,
                    epochs,
                    history,
                });
        }
    }
    // Fig. 6: AINRNN per feature set on fold 0.
    let mut sets = o.feature_sets.clone();
    if sets.is_empty() {
        let has = |fs: FeatureSet| {
            crate::train::corpus::select_features(&ds, fs)
                .map(|f| f.is_some())
                .unwrap_or(false)
        };
        sets = if has(FeatureSet::Mfcc) && has(FeatureSet::Scattering) {
            vec![FeatureSet::Mfcc, FeatureSet::Scattering]
        } else {
            notes.push(
                "Fig. 6 compares MFCC with scattering features, but this dataset has no audio feature columns for its songs \
                 (run `ainrnn features` on the songs' audio and `prepare --features`); the figure compares the feature sets it has instead."
                    .into(),
            );
            [FeatureSet::Msd, FeatureSet::None]
                .into_iter()
                .filter(|&f| f == FeatureSet::None || has(f))
                .collect()
        };
    }
    let mut feature_runs = Vec::new();
    if o.methods.contains(&Method::Neural(ModelKind::Ainrnn)) && sets.len() >= 2 {
        for fs in &sets {
            let mut opts = o.train.clone();
            opts.kind = ModelKind::Ainrnn;
            opts.fold = 0;
            opts.features = *fs;
            opts.data = o.data.clone();
            opts.resume = false;
            opts.patience = 0; // the whole curve, no early stop
            opts.out = o
                .report
                .join("checkpoints")
                .join(format!("ainrnn-features-{}.ckpt", fs.name()));
            let s = train(b, &opts, |_| {}, |_, _, _, _| {})?;
            log(&format!(
                "features {:<10} final validation NDCG@10 {:.4}",
                fs.name(),
                s.history.last().map(|r| r.ndcg_at_10).unwrap_or(0.0)
            ));
            feature_runs.push((fs.name().to_string(), s.history));
        }
    }
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

fn mean_curve(m: &MethodSummary) -> Vec<(usize, f64, f64)> {
    let n = m.folds.len().max(1) as f64;
    let len = m.folds.first().map(|f| f.curve.len()).unwrap_or(0);
    (0..len)
        .map(|i| {
            let p = m.folds.iter().map(|f| f.curve[i].1).sum::<f64>() / n;
            let g = m.folds.iter().map(|f| f.curve[i].2).sum::<f64>() / n;
            (i + 1, p, g)
        })
        .collect()
}

/// `report.md`, `results.json` and the figures; returns the files written.
fn write_report(r: &CompareReport, dir: &Path, t: &TrainOptions) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let curve_series = |pick: fn(&(usize, f64, f64)) -> f64| -> Vec<Series> {
        r.methods
            .iter()
            .map(|m| Series {
                name: m.name.clone(),
                points: mean_curve(m)
                    .iter()
                    .map(|c| (c.0 as f64, pick(c)))
                    .collect(),
            })
            .collect()
    };
    files.extend(line_chart(
        &dir.join("precision_at_k"),
        "Precision@k (mean over folds)",
        ("k", "precision@k"),
        &curve_series(|c| c.1),
    )?);
    files.extend(line_chart(
        &dir.join("ndcg_at_k"),
        "NDCG@k (mean over folds)",
        ("k", "NDCG@k"),
        &curve_series(|c| c.2),
    )?);
    let epoch_series: Vec<Series> = if !r.feature_runs.is_empty() {
        r.feature_runs
            .iter()
            .map(|(name, h)| Series {
                name: format!("AINRNN, {name} features"),
                points: h
                    .iter()
                    .map(|e| (e.epoch as f64, e.precision_at_10))
                    .collect(),
            })
            .collect()
    } else {
        r.methods
            .iter()
            .filter(|m| m.folds.first().is_some_and(|f| !f.history.is_empty()))
            .map(|m| Series {
                name: m.name.clone(),
                points: m.folds[0]
                    .history
                    .iter()
                    .map(|e| (e.epoch as f64, e.precision_at_10))
                    .collect(),
            })
            .collect()
    };
    files.extend(line_chart(
        &dir.join("accuracy_per_epoch"),
        "Validation precision@10 per epoch (fold 0)",
        ("epoch", "precision@10"),
        &epoch_series,
    )?);
    let bars: Vec<(String, f64)> = r
        .methods
        .iter()
        .map(|m| (m.name.clone(), m.stat(|f| f.seconds_per_epoch).0))
        .collect();
    files.extend(bar_chart(
        &dir.join("seconds_per_epoch"),
        "Training seconds per epoch (baselines: fitting time)",
        "seconds",
        &bars,
    )?);

    let mut md = String::new();
    let k = r.k;
    let _ = writeln!(md, "# Model comparison\n");
    let _ = writeln!(
        md,
        "Data: `{}` ({}; {} users, {} songs, {} interactions). {} folds by user, cut-off k = {k}, backend: {}.\n",
        r.data, r.source, r.users, r.songs, r.interactions, r.folds, r.backend
    );
    let _ = writeln!(
        md,
        "Learned models: {} epochs at most (early stopping patience {}), batch {}, hidden {}, song table {}, history ≤ {}, lr {}, dropout {}, features `{}`, seed {}.\n",
        t.epochs, t.patience, t.batch, t.hidden, t.emb, t.max_history, t.lr, t.dropout, t.features.name(), t.seed
    );
    let _ = writeln!(md, "| model | precision@{k} | recall@{k} | NDCG@{k} | NDCG@{k} graded | mAP@{k} | hit rate | coverage | long tail | s/epoch |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in &r.methods {
        let f = |g: fn(&FoldResult) -> f64| {
            let (a, s) = m.stat(g);
            format!("{a:.4} ± {s:.4}")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            m.name,
            f(|r| r.metrics.precision),
            f(|r| r.metrics.recall),
            f(|r| r.metrics.ndcg),
            f(|r| r.metrics.ndcg_graded),
            f(|r| r.metrics.map),
            f(|r| r.metrics.hit_rate),
            f(|r| r.metrics.coverage),
            f(|r| r.metrics.long_tail_share),
            m.stat(|r| r.seconds_per_epoch).0
        );
    }
    let _ = writeln!(
        md,
        "\nMean ± standard deviation over folds. Baselines' s/epoch is their fitting time.\n"
    );
    let _ = writeln!(md, "## Per fold (NDCG@{k})\n");
    let _ = write!(md, "| model |");
    for f in 0..r.folds {
        let _ = write!(md, " fold {f} |");
    }
    let _ = writeln!(md, "\n|---|{}", "---:|".repeat(r.folds as usize));
    for m in &r.methods {
        let _ = write!(md, "| {} |", m.name);
        for f in &m.folds {
            let _ = write!(md, " {:.4} |", f.metrics.ndcg);
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "\n## Figures\n");
    for (file, what) in [
        ("precision_at_k", "precision@k for k = 1…20 (paper Fig. 7)"),
        ("ndcg_at_k", "NDCG@k for k = 1…20 (paper Fig. 8)"),
        (
            "accuracy_per_epoch",
            "validation precision@10 per epoch by feature set (paper Fig. 6)",
        ),
        (
            "seconds_per_epoch",
            "training seconds per epoch per model (paper Fig. 9)",
        ),
    ] {
        let _ = writeln!(
            md,
            "- {what}: `{file}.png`, `{file}.svg`\n\n  ![{what}]({file}.png)\n"
        );
    }
    if !r.notes.is_empty() {
        let _ = writeln!(md, "## Notes\n");
        for n in &r.notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    let md_path = dir.join("report.md");
    write_atomic(&md_path, md.as_bytes())?;
    files.push(md_path);
    let json_path = dir.join("results.json");
    let mut full = r.json();
    full["per_fold"] = serde_json::to_value(&r.methods).unwrap_or(Value::Null);
    full["feature_runs"] = serde_json::to_value(&r.feature_runs).unwrap_or(Value::Null);
    full["notes"] = json!(r.notes);
    write_atomic(
        &json_path,
        serde_json::to_string_pretty(&full)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    files.push(json_path);
    Ok(files)
}

/// The mean ± std table printed at the end of `compare`.
pub fn summary_table(r: &CompareReport) -> String {
    let k = r.k;
    let mut s = format!(
        "| model | P@{k} | R@{k} | NDCG@{k} | mAP@{k} | coverage | s/epoch |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for m in &r.methods {
        let f = |g: fn(&FoldResult) -> f64| {
            let (a, sd) = m.stat(g);
            format!("{a:.4} ± {sd:.4}")
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.2} |",
            m.name,
            f(|r| r.metrics.precision),
            f(|r| r.metrics.recall),
            f(|r| r.metrics.ndcg),
            f(|r| r.metrics.map),
            f(|r| r.metrics.coverage),
            m.stat(|r| r.seconds_per_epoch).0
        );
    }
    s
}
