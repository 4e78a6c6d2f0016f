//! The tables of the comparison: mean ± std over folds, the summary printed at the end and the
//! text of `report.md`.

use std::fmt::Write as _;

use super::report::{CompareReport, FoldResult};
use crate::model::ModelKind;
use crate::train::run::TrainOptions;

/// The text of `report.md`.
pub(super) fn markdown(r: &CompareReport, t: &TrainOptions) -> String {
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
    // Each learned model's stacking and pooling (AINRNN's stacking is not the paper's by
    // default), the neighbourhood term and the ensemble.
    let shapes: Vec<String> = r
        .methods
        .iter()
        .filter_map(|m| m.name.parse::<ModelKind>().ok())
        .map(|kind| {
            let o = TrainOptions { kind, ..t.clone() };
            format!(
                "{} {} stack, {} pooling",
                kind.name(),
                o.connection().name(),
                o.pooling().name()
            )
        })
        .collect();
    if !shapes.is_empty() {
        let _ = writeln!(
            md,
            "{}; {} neighbours per song in the scores, ensemble {}.\n",
            shapes.join("; "),
            t.neighbours,
            t.ensemble_flag()
        );
    }
    let _ = writeln!(md, "| model | precision@{k} | recall@{k} | NDCG@{k} | NDCG@{k} graded | mAP@{k} | hit rate | coverage | long tail | s/epoch |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in &r.methods {
        if let Some(why) = &m.failed {
            let _ = writeln!(md, "| {} | {} |||||||||", m.name, one_line(why));
            continue;
        }
        let f = |g: fn(&FoldResult) -> f64| m.mean_std_text(g);
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
    let learned = r
        .methods
        .iter()
        .any(|m| m.folds.first().is_some_and(|f| !f.history.is_empty()));
    let per_epoch = if !r.feature_runs.is_empty() {
        Some("validation precision@10 per epoch by feature set (paper Fig. 6)")
    } else if learned {
        Some("validation precision@10 per epoch per model, fold 0")
    } else {
        None
    };
    for (file, what) in [
        (
            "precision_at_k",
            Some("precision@k for k = 1…20 (paper Fig. 7)"),
        ),
        ("ndcg_at_k", Some("NDCG@k for k = 1…20 (paper Fig. 8)")),
        ("accuracy_per_epoch", per_epoch),
        (
            "seconds_per_epoch",
            Some("training seconds per epoch per model (paper Fig. 9)"),
        ),
    ]
    .into_iter()
    .filter_map(|(f, w)| Some((f, w?)))
    {
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
    md
}

/// An error as one table cell: on one line, without the column separator.
fn one_line(why: &str) -> String {
    why.replace(['\n', '\r'], " ").replace('|', "/")
}

/// The mean ± std table printed at the end of `compare`.
pub fn summary_table(r: &CompareReport) -> String {
    let k = r.k;
    let mut s = format!(
        "| model | P@{k} | R@{k} | NDCG@{k} | mAP@{k} | coverage | s/epoch |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for m in &r.methods {
        if let Some(why) = &m.failed {
            let _ = writeln!(s, "| {} | {} ||||||", m.name, one_line(why));
            continue;
        }
        let f = |g: fn(&FoldResult) -> f64| m.mean_std_text(g);
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
