//! What `compare` produces: the per-fold results, their mean ± std over folds, the report and
//! its JSON.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::eval::metrics::Metrics;
use crate::train::EpochReport;

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
    /// Empty when the model failed.
    pub folds: Vec<FoldResult>,
    /// "failed on fold F: …" (the error) when the model failed on a fold: it is not run on
    /// the later folds and has no figures; the other models carry on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
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
    /// Item-kNN's co-listening similarity (given, or chosen on validation users).
    pub knn_similarity: Option<String>,
    pub methods: Vec<MethodSummary>,
    /// Fig. 6: AINRNN validation metrics per epoch by feature set (fold 0).
    pub feature_runs: Vec<(String, Vec<EpochReport>)>,
    pub notes: Vec<String>,
    pub files: Vec<PathBuf>,
    pub seconds: f64,
}

/// Reads one number out of a fold's result.
pub(super) type Pick = fn(&FoldResult) -> f64;

pub(crate) fn mean_std(v: &[f64]) -> (f64, f64) {
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
    pub(super) fn stat(&self, f: impl Fn(&FoldResult) -> f64) -> (f64, f64) {
        mean_std(&self.folds.iter().map(f).collect::<Vec<_>>())
    }

    /// `mean ± std` over the folds, as the tables print it.
    pub(crate) fn mean_std_text(&self, f: impl Fn(&FoldResult) -> f64) -> String {
        let (a, s) = self.stat(f);
        format!("{a:.4} ± {s:.4}")
    }
}

impl CompareReport {
    /// `{"k": 10, "folds": N, "models": {name: {"precision_at_10": …, …, "_std" keys}}}`.
    pub fn json(&self) -> Value {
        let k = self.k;
        let mut models = Map::new();
        for m in &self.methods {
            let mut o = Map::new();
            if let Some(why) = &m.failed {
                o.insert("failed".into(), json!(why));
                models.insert(m.name.clone(), Value::Object(o));
                continue;
            }
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
            "knn_similarity": self.knn_similarity,
            "models": models,
            "files": self.files,
            "seconds": self.seconds,
        })
    }
}
