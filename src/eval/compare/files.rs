//! The files of a comparison: the figures (PNG and SVG), `report.md` and `results.json`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::report::{CompareReport, MethodSummary};
use super::table::markdown;
use crate::error::Error;
use crate::eval::plots::{bar_chart, line_chart, Series};
use crate::io::write_atomic;
use crate::train::run::TrainOptions;

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
            .filter(|m| !m.folds.is_empty())
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
    // Only learned models have epochs: popularity, kNN and EASE alone get no empty chart.
    if !epoch_series.is_empty() {
        files.extend(line_chart(
            &dir.join("accuracy_per_epoch"),
            "Validation precision@10 per epoch (fold 0)",
            ("epoch", "precision@10"),
            &epoch_series,
        )?);
    }
    let bars: Vec<(String, f64)> = r
        .methods
        .iter()
        .filter(|m| !m.folds.is_empty())
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
