//! What `compare` produces: the per-fold results, the report, its JSON and the files written
//! (figures, `report.md`, `results.json`).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::table::{markdown, mean_std, Pick};
use crate::error::Error;
use crate::eval::metrics::Metrics;
use crate::eval::plots::{bar_chart, line_chart, Series};
use crate::train::run::TrainOptions;
use crate::train::EpochReport;
use crate::util::write_atomic;

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
pub(super) fn write_report(
    r: &CompareReport,
    dir: &Path,
    t: &TrainOptions,
) -> Result<Vec<PathBuf>, Error> {
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
    let md = markdown(r, t);
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
