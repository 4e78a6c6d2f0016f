//! `ainrnn ablate`: the paper's components one at a time against full AINRNN, on the same folds
//! and seed. Each row changes one setting of full AINRNN (connections, pooling, portrait,
//! layers, neighbourhood term, feature set); per row: mean ± std of NDCG@10 and P@10 over the
//! folds, the paired difference to full AINRNN per fold and a paired two-sided t-test.
//!
//! A row that cannot run (a combination not built yet, a feature set the data lacks) is
//! reported with its reason and the others carry on. The fold loop and the training are
//! `compare`'s (`FoldSetup`, `train_and_rank`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::Serialize;

use crate::backend::model_ops::ModelOps;
use crate::data::Dataset;
use crate::error::{Error, IoError};
use crate::eval::compare::{mean_std, train_and_rank, FoldSetup};
use crate::eval::metrics::evaluate;
use crate::eval::plots::bar_label;
use crate::io::{write_atomic, AtomicFile};
use crate::model::{Connection, ModelKind, PoolingKind};
use crate::train::corpus::{select_features, song_genres, FeatureSet};
use crate::train::run::{default_connection, TrainOptions};
use crate::train::Corpus;

/// The cut-off of the metrics.
pub const K: usize = 10;

pub struct AblateOptions {
    pub data: PathBuf,
    pub folds: u32,
    /// Full AINRNN's training settings (`kind`, `data`, `fold` and `out` are set per run). Its
    /// connection (the default's, or the paper's dense with `paper_connection`), pooling and
    /// portrait must be AINRNN's own: the rows vary them.
    pub train: TrainOptions,
    pub report: PathBuf,
}

/// The one setting a row changes against full AINRNN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Change {
    Full,
    Connection(Connection),
    Pooling(PoolingKind),
    NoPortrait,
    Layers(usize),
    NoSongWeights,
    NoPairWeights,
    NoNeighbours,
    Features(FeatureSet),
}

impl Change {
    /// The rows, full AINRNN first; `full` is full AINRNN's stacking (the other three get a
    /// row each).
    pub fn rows(full: Connection) -> Vec<Change> {
        let mut rows = vec![Change::Full];
        rows.extend(
            [
                Connection::Dense,
                Connection::Residual,
                Connection::Gated,
                Connection::Plain,
            ]
            .into_iter()
            .filter(|&c| c != full)
            .map(Change::Connection),
        );
        rows.extend([
            Change::Pooling(PoolingKind::Attention),
            Change::Pooling(PoolingKind::Last),
            Change::Pooling(PoolingKind::Mean),
            Change::NoPortrait,
            Change::Layers(2),
            Change::NoSongWeights,
            Change::NoPairWeights,
            Change::NoNeighbours,
            Change::Features(FeatureSet::None),
            Change::Features(FeatureSet::Msd),
            Change::Features(FeatureSet::Audio),
        ]);
        rows
    }

    /// Short name (file names, JSON, figure).
    pub fn id(self) -> String {
        match self {
            Change::Full => "full".into(),
            Change::Connection(c) => c.name().into(),
            Change::Pooling(p) => p.name().into(),
            Change::NoPortrait => "no-portrait".into(),
            Change::Layers(n) => format!("layers-{n}"),
            Change::NoSongWeights => "no-song-weights".into(),
            Change::NoPairWeights => "no-pair-weights".into(),
            Change::NoNeighbours => "no-neighbours".into(),
            Change::Features(f) => format!("features-{}", f.name()),
        }
    }

    /// What the row is, for the table.
    pub fn describe(self) -> String {
        match self {
            Change::Full => "full AINRNN".into(),
            Change::Connection(Connection::Dense) => "dense connections (the paper's)".into(),
            Change::Connection(c) => stacking(c).into(),
            Change::Pooling(PoolingKind::Attention) => "attention without plays".into(),
            Change::Pooling(PoolingKind::Last) => "last state (no attention)".into(),
            Change::Pooling(PoolingKind::Mean) => "mean pool (no attention)".into(),
            Change::Pooling(p) => format!("pooling {}", p.name()),
            Change::NoPortrait => "no portrait".into(),
            Change::Layers(n) => format!("{n} layers"),
            Change::NoSongWeights => "term without per-song weights".into(),
            Change::NoPairWeights => "term without pair weights".into(),
            Change::NoNeighbours => "no neighbourhood term".into(),
            Change::Features(f) => format!("features {}", f.name()),
        }
    }

    /// Full AINRNN's options with this change.
    pub fn apply(self, full: &TrainOptions) -> TrainOptions {
        let mut o = full.clone();
        match self {
            Change::Full => {}
            Change::Connection(c) => o.connection = Some(c),
            Change::Pooling(p) => o.pooling = Some(p),
            Change::NoPortrait => o.portrait = false,
            Change::Layers(n) => o.layers = Some(n),
            Change::NoSongWeights => o.song_weights = false,
            Change::NoPairWeights => o.pair_weights = false,
            Change::NoNeighbours => o.neighbours = 0,
            Change::Features(f) => o.features = f,
        }
        o
    }
}

/// A stacking in words.
fn stacking(c: Connection) -> &'static str {
    match c {
        Connection::Dense => "dense connections",
        Connection::Residual => "residual shortcuts",
        Connection::Gated => "gated shortcuts",
        Connection::Plain => "plain stack",
    }
}

/// One row on one fold.
#[derive(Clone, Debug, Serialize)]
pub struct RowFold {
    pub fold: u32,
    pub ndcg: f64,
    pub precision: f64,
    pub epochs: u32,
}

/// Mean ± std over folds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

/// A row against full AINRNN, fold by fold.
#[derive(Clone, Debug, Serialize)]
pub struct Paired {
    /// `(fold, row − full)`.
    pub per_fold: Vec<(u32, f64)>,
    pub mean: f64,
    /// Paired two-sided t-test; `None` (n/a) with fewer than 2 folds or differences all the
    /// same (not 0).
    pub p_value: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    pub id: String,
    pub row: String,
    pub folds: Vec<RowFold>,
    pub ndcg: Option<MeanStd>,
    pub precision: Option<MeanStd>,
    pub ndcg_vs_full: Option<Paired>,
    pub precision_vs_full: Option<Paired>,
    /// Why the row has no figures: "not run: …" (a feature set the data lacks, the same
    /// settings as full AINRNN) or "failed on fold F: …" (the error).
    pub failed: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AblateReport {
    pub data: String,
    pub source: String,
    pub users: usize,
    pub songs: usize,
    pub folds: u32,
    pub k: usize,
    pub backend: String,
    pub command: String,
    pub rows: Vec<RowResult>,
    pub files: Vec<PathBuf>,
    pub seconds: f64,
}

/// The command that reproduces this run.
pub fn command_line(o: &AblateOptions) -> String {
    let t = &o.train;
    let mut c = format!(
        "ainrnn ablate --data {} --folds {} --report {} --features {} --epochs {} --batch {} --hidden {} --emb {}",
        o.data.display(),
        o.folds,
        o.report.display(),
        t.features.name(),
        t.epochs,
        t.batch,
        t.hidden,
        t.emb
    );
    if let Some(l) = t.layers {
        let _ = write!(c, " --layers {l}");
    }
    let _ = write!(
        c,
        " --max-history {} --lr {} --dropout {} --weight-decay {} --patience {} --seed {} --neighbours {}",
        t.max_history, t.lr, t.dropout, t.weight_decay, t.patience, t.seed, t.neighbours
    );
    let _ = write!(c, " --ensemble {}", t.ensemble_flag());
    if let Some(sim) = t.similarity {
        let _ = write!(c, " --similarity {sim}");
    }
    // The paper's dense connections (the only setting --paper still decides once the others
    // are given).
    if t.connection.is_none() && t.paper_connection {
        c.push_str(" --paper");
    }
    c
}

fn refuse_varied(t: &TrainOptions) -> Result<(), Error> {
    let own = default_connection(ModelKind::Ainrnn, t.paper_connection);
    let varied = [
        ("--connection", t.connection.is_some_and(|c| c != own)),
        (
            "--pooling",
            t.pooling.is_some_and(|p| p != PoolingKind::PlaysAttention),
        ),
        ("--no-portrait", !t.portrait),
    ];
    for (flag, bad) in varied {
        if bad {
            return Err(Error::Other(format!(
                "{flag}: ablate varies it row by row; full AINRNN keeps its own (connection {}, plays-attention, portrait; --paper: dense connections)",
                own.name()
            )));
        }
    }
    Ok(())
}

/// Why a row is not run at all, if it is not.
fn skip_reason(ds: &Dataset, change: Change, full: &TrainOptions) -> Option<String> {
    if change == Change::Full {
        return None;
    }
    if matches!(change, Change::NoSongWeights | Change::NoPairWeights) && full.neighbours == 0 {
        return Some("not run: full AINRNN has no neighbourhood term (--neighbours 0)".into());
    }
    if change == Change::NoPairWeights && !full.pair_weights_for(ds.songs()) {
        return Some(format!(
            "not run: full AINRNN has no pair weights (--no-pair-weights, or songs × neighbours above {})",
            crate::train::run::PAIR_WEIGHTS_MAX
        ));
    }
    if let Change::Features(set) = change {
        if set != FeatureSet::None && !matches!(select_features(ds, set), Ok(Some(_))) {
            return Some(format!(
                "not run: no {} columns in the dataset's song vectors",
                set.name()
            ));
        }
        let columns = |s| {
            select_features(ds, s)
                .ok()
                .map(|f| f.map(|f| f.2).unwrap_or_default())
        };
        let mine = columns(set);
        if mine.is_some() && mine == columns(full.features) {
            return Some(format!(
                "not run: the same feature columns as full AINRNN's --features {} ({} columns)",
                full.features.name(),
                mine.map(|c| c.len()).unwrap_or(0)
            ));
        }
    }
    let mine = change.apply(full);
    (mine.fixed_settings() == full.fixed_settings())
        .then(|| "not run: same settings as full AINRNN (given by the flags)".into())
}

/// Runs every row on the first `o.folds` folds; `log` receives one line per finished step.
pub fn ablate<B: ModelOps>(
    b: &B,
    o: &AblateOptions,
    mut log: impl FnMut(&str),
) -> Result<AblateReport, Error> {
    let t_all = std::time::Instant::now();
    refuse_varied(&o.train)?;
    let ds = Dataset::load(&o.data)?;
    if o.folds == 0 || o.folds > ds.folds {
        return Err(Error::Other(format!(
            "--folds {}: the dataset has {} folds (prepare it with --folds N to change that)",
            o.folds, ds.folds
        )));
    }
    let mut full = o.train.clone();
    full.kind = ModelKind::Ainrnn;
    full.data = o.data.clone();
    // Every row is compared with full AINRNN: features it cannot have end the run before any.
    select_features(&ds, full.features)?;
    let ckpts = o.report.join("checkpoints");
    std::fs::create_dir_all(&ckpts).map_err(|e| IoError::io(&ckpts, e))?;
    // The ranking corpus: histories and portraits (each model carries its own features).
    let (corpus, _) = Corpus::from_dataset(&ds, FeatureSet::None)?;
    let genres = song_genres(&ds);
    let changes = Change::rows(full.connection());
    let mut rows: Vec<RowResult> = changes
        .iter()
        .map(|&c| RowResult {
            id: c.id(),
            row: c.describe(),
            folds: vec![],
            ndcg: None,
            precision: None,
            ndcg_vs_full: None,
            precision_vs_full: None,
            failed: skip_reason(&ds, c, &full),
        })
        .collect();
    rows[0].row = format!("full AINRNN ({})", stacking(full.connection()));
    for fold in 0..o.folds {
        let setup = FoldSetup::new(
            &ds,
            &corpus,
            genres.clone(),
            fold,
            full.seed,
            full.max_validation,
        )?;
        for (row, &change) in rows.iter_mut().zip(&changes) {
            if row.failed.is_some() {
                continue;
            }
            let mut opts = change.apply(&full);
            opts.fold = fold;
            opts.out = ckpts.join(format!("{}-fold{fold}.ckpt", row.id));
            match train_and_rank(b, &ds, &corpus, &opts, &setup.fd.test) {
                Ok(run) => {
                    let m = evaluate(&run.lists, &setup.test_truth, K, &setup.cat);
                    log(&format!(
                        "fold {fold} {:<16} P@{K} {:.4}  NDCG@{K} {:.4}  ({})",
                        row.id,
                        m.precision,
                        m.ndcg,
                        crate::text::count(run.epochs, "epoch")
                    ));
                    row.folds.push(RowFold {
                        fold,
                        ndcg: m.ndcg,
                        precision: m.precision,
                        epochs: run.epochs,
                    });
                }
                // Without full AINRNN no row has anything to be compared with.
                Err(e) if change == Change::Full => {
                    return Err(Error::Other(format!(
                    "full AINRNN failed on fold {fold}, so no change can be compared with it: {e}"
                )))
                }
                Err(e) => {
                    log(&format!("fold {fold} {:<16} failed: {e}", row.id));
                    row.failed = Some(format!("failed on fold {fold}: {e}"));
                }
            }
        }
    }
    summarise(&mut rows);
    let mut report = AblateReport {
        data: o.data.display().to_string(),
        source: ds.source.clone(),
        users: ds.users(),
        songs: ds.songs(),
        folds: o.folds,
        k: K,
        backend: b.describe(),
        command: command_line(o),
        rows,
        files: vec![],
        seconds: 0.0,
    };
    report.seconds = t_all.elapsed().as_secs_f64();
    report.files = write_files(&report, &o.report)?;
    Ok(report)
}

/// Fills in each finished row's mean ± std and its paired comparison with the first row (full
/// AINRNN) on the folds both ran.
pub fn summarise(rows: &mut [RowResult]) {
    let Some(first) = rows.first() else {
        return;
    };
    let full = (first.failed.is_none()).then(|| first.folds.clone());
    for (i, row) in rows.iter_mut().enumerate() {
        if row.failed.is_some() || row.folds.is_empty() {
            continue;
        }
        let stat = |pick: fn(&RowFold) -> f64| {
            let (mean, std) = mean_std(&row.folds.iter().map(pick).collect::<Vec<_>>());
            MeanStd { mean, std }
        };
        row.ndcg = Some(stat(|f| f.ndcg));
        row.precision = Some(stat(|f| f.precision));
        if i == 0 {
            continue;
        }
        if let Some(full) = &full {
            row.ndcg_vs_full = Some(paired(&row.folds, full, |f| f.ndcg));
            row.precision_vs_full = Some(paired(&row.folds, full, |f| f.precision));
        }
    }
}

fn paired(row: &[RowFold], full: &[RowFold], pick: fn(&RowFold) -> f64) -> Paired {
    let per_fold: Vec<(u32, f64)> = row
        .iter()
        .filter_map(|r| {
            let f = full.iter().find(|f| f.fold == r.fold)?;
            Some((r.fold, pick(r) - pick(f)))
        })
        .collect();
    let d: Vec<f64> = per_fold.iter().map(|x| x.1).collect();
    Paired {
        mean: d.iter().sum::<f64>() / d.len().max(1) as f64,
        p_value: paired_t_test(&d),
        per_fold,
    }
}

/// Two-sided p-value of the paired t-test of differences `d` against 0; `None` with fewer
/// than 2. All differences 0: 1. All equal but not 0 (up to rounding: a spread below 1e-9 of
/// the mean): `None`, as the test does not apply without variance (t is infinite, and a p of
/// 0 would read as certainty from, say, two folds that both moved by 0.0004).
pub fn paired_t_test(d: &[f64]) -> Option<f64> {
    if d.len() < 2 {
        return None;
    }
    let n = d.len() as f64;
    let (mean, sd) = mean_std(d);
    if d.iter().all(|&x| x == 0.0) {
        return Some(1.0);
    }
    if sd <= 1e-9 * mean.abs() {
        return None;
    }
    Some(t_two_sided_p(mean / (sd / n.sqrt()), n - 1.0))
}

/// Student's t CDF with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * t_two_sided_p(t, df);
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2).
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz's
/// method; Numerical Recipes §6.4), a, b > 0, x in [0, 1].
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The fraction converges fast for x < (a + 1) / (a + b + 2); else use the symmetry.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let away_from_0 = |v: f64| if v.abs() < TINY { TINY } else { v };
    // One step of Lentz's method with coefficient `aa`: returns the factor for h.
    let step = |c: &mut f64, d: &mut f64, aa: f64| {
        *d = 1.0 / away_from_0(1.0 + aa * *d);
        *c = away_from_0(1.0 + aa / *c);
        *d * *c
    };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / away_from_0(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= step(&mut c, &mut d, m * (b - m) * x / ((qam + m2) * (a + m2)));
        let del = step(
            &mut c,
            &mut d,
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        );
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error about 1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut s = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        s += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
}

fn fmt_ms(m: Option<MeanStd>) -> String {
    m.map(|m| format!("{:.4} ± {:.4}", m.mean, m.std))
        .unwrap_or_else(|| "–".into())
}

fn fmt_paired(p: &Option<Paired>) -> (String, String, String) {
    match p {
        None => ("–".into(), "–".into(), "–".into()),
        Some(p) => (
            p.per_fold
                .iter()
                .map(|(_, d)| format!("{d:+.4}"))
                .collect::<Vec<_>>()
                .join(", "),
            format!("{:+.4}", p.mean),
            p.p_value
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "n/a".into()),
        ),
    }
}

/// `report.md`: the command, the table, the rows that did not run.
pub fn markdown(r: &AblateReport) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Ablation of AINRNN\n");
    let _ = writeln!(
        md,
        "Data: `{}` ({}; {} users, {} songs). {} folds by user, the same folds and seed for every row, cut-off k = {}, backend: {}.\n",
        r.data, r.source, r.users, r.songs, r.folds, r.k, r.backend
    );
    let _ = writeln!(md, "Command:\n\n```\n{}\n```\n", r.command);
    let _ = writeln!(
        md,
        "Each row changes one thing of full AINRNN. Δ: row − full AINRNN per fold, then the mean; p: paired two-sided t-test over the folds (n/a with fewer than 2).\n"
    );
    let k = r.k;
    let _ = writeln!(
        md,
        "| row | NDCG@{k} | P@{k} | ΔNDCG@{k} per fold | ΔNDCG@{k} | p (NDCG) | ΔP@{k} | p (P) |"
    );
    let _ = writeln!(md, "|---|---:|---:|---|---:|---:|---:|---:|");
    for row in &r.rows {
        if let Some(why) = &row.failed {
            let _ = writeln!(
                md,
                "| {} | {} | | | | | | |",
                row.row,
                why.replace('|', "\\|").replace('\n', " ")
            );
            continue;
        }
        let (nf, nm, np) = fmt_paired(&row.ndcg_vs_full);
        let (_, pm, pp) = fmt_paired(&row.precision_vs_full);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {nf} | {nm} | {np} | {pm} | {pp} |",
            row.row,
            fmt_ms(row.ndcg),
            fmt_ms(row.precision)
        );
    }
    let _ = writeln!(
        md,
        "\n![NDCG@{k} per row](ablation.png)\n\nRun in {:.0} s (before writing the files).",
        r.seconds
    );
    md
}

/// `results.json`, `report.md` and `ablation.png`; returns the files written.
fn write_files(r: &AblateReport, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let png = dir.join("ablation.png");
    chart(&png, r)?;
    let md = dir.join("report.md");
    write_atomic(&md, markdown(r).as_bytes())?;
    let json = dir.join("results.json");
    let text = serde_json::to_string_pretty(r)
        .map_err(|e| Error::Other(format!("{}: {e}", json.display())))?;
    write_atomic(&json, text.as_bytes())?;
    Ok(vec![json, md, png])
}

/// A bar per row that ran: NDCG@k mean with a ±std error bar; full AINRNN's bar dark, with a
/// dashed line at its mean.
fn chart(path: &Path, r: &AblateReport) -> Result<(), Error> {
    crate::eval::plots::font();
    let bars: Vec<(String, MeanStd, bool)> = r
        .rows
        .iter()
        .filter_map(|row| Some((row.id.clone(), row.ndcg?, row.id == "full")))
        .collect();
    let out = AtomicFile::new(path);
    draw(out.temp(), r.k, &bars).map_err(|reason| {
        Error::Io(IoError::Format {
            path: path.to_path_buf(),
            reason: format!("drawing the chart: {reason}"),
        })
    })?;
    Ok(out.commit()?)
}

fn draw(path: &Path, k: usize, bars: &[(String, MeanStd, bool)]) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
    let root = BitMapBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let n = bars.len().max(1);
    let top = bars
        .iter()
        .map(|b| b.1.mean + b.1.std)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("NDCG@{k}: mean ± std over folds (dark: full AINRNN)"),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, 0.0..top)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| bar_label(&names, *x))
        .y_desc(format!("NDCG@{k}"))
        .draw()
        .map_err(|x| e(&x))?;
    let (dark, light) = (RGBColor(31, 60, 120), RGBColor(120, 170, 220));
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, m, full))| {
            let c = if *full { dark } else { light };
            Rectangle::new(
                [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, m.mean)],
                c.filled(),
            )
        }))
        .map_err(|x| e(&x))?;
    // Error bars: a vertical line from mean − std to mean + std with caps.
    chart
        .draw_series(bars.iter().enumerate().flat_map(|(i, (_, m, _))| {
            let (x, lo, hi) = (i as f64 + 0.5, (m.mean - m.std).max(0.0), m.mean + m.std);
            let style = BLACK.stroke_width(2);
            [
                PathElement::new(vec![(x, lo), (x, hi)], style),
                PathElement::new(vec![(x - 0.1, lo), (x + 0.1, lo)], style),
                PathElement::new(vec![(x - 0.1, hi), (x + 0.1, hi)], style),
            ]
        }))
        .map_err(|x| e(&x))?;
    if let Some((_, m, _)) = bars.iter().find(|b| b.2) {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, m.mean), (n as f64, m.mean)],
                6,
                4,
                dark.stroke_width(1),
            ))
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))
}
