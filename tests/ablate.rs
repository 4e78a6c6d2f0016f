//! `ainrnn ablate`: the rows against full AINRNN on the bundled small triplets (tiny settings,
//! CPU), and the t-test's numerics against SciPy.

mod common;

use ainrnn::eval::ablate::{
    incomplete_beta, paired_t_test, student_t_cdf, summarise, t_two_sided_p, Change, RowFold,
    RowResult,
};
use ainrnn::model::Connection;
use common::cli::{ainrnn, fails_with, s, small, succeeds};
use serde_json::Value;

// Reference values: SciPy 1.17.1, `scipy.special.betainc(a, b, x)`,
// `scipy.stats.t.cdf(t, df)`, `2 * scipy.stats.t.sf(abs(t), df)` and
// `scipy.stats.ttest_1samp(d, 0).pvalue`, printed with 15 significant digits.

#[test]
fn incomplete_beta_matches_scipy() {
    let cases = [
        (0.5, 0.5, 0.3, 0.369010119565545),
        (2.0, 3.0, 0.4, 0.5248),
        (5.0, 0.5, 0.9, 0.316642915020012),
        (10.0, 10.0, 0.5, 0.5),
        (1.5, 2.5, 0.05, 0.0362677913379137),
    ];
    for (a, b, x, want) in cases {
        let got = incomplete_beta(a, b, x);
        assert!(
            (got - want).abs() < 1e-12,
            "I_{x}({a}, {b}) = {got}, SciPy {want}"
        );
    }
    assert_eq!(incomplete_beta(2.0, 3.0, 0.0), 0.0);
    assert_eq!(incomplete_beta(2.0, 3.0, 1.0), 1.0);
}

#[test]
fn student_t_matches_scipy() {
    // (t, df, cdf, two-sided p)
    let cases = [
        (2.0, 4.0, 0.941941738241592, 0.116116523516816),
        (0.5, 1.0, 0.647583617650433, 0.704832764699133),
        (3.5, 9.0, 0.996638242118471, 0.00672351576305896),
        (1.0, 2.0, 0.788675134594813, 0.422649730810374),
        (-2.5, 7.0, 0.0204961092928764, 0.0409922185857529),
        (10.0, 3.0, 0.998935800470793, 0.00212839905841415),
    ];
    for (t, df, cdf, p) in cases {
        let (c, q) = (student_t_cdf(t, df), t_two_sided_p(t, df));
        assert!((c - cdf).abs() < 1e-12, "cdf({t}, {df}) = {c}, SciPy {cdf}");
        assert!((q - p).abs() < 1e-12, "p({t}, {df}) = {q}, SciPy {p}");
    }
    assert_eq!(t_two_sided_p(0.0, 5.0), 1.0);
    assert_eq!(t_two_sided_p(f64::INFINITY, 5.0), 0.0);
}

#[test]
fn paired_t_test_matches_scipy_and_needs_two_folds() {
    let p = paired_t_test(&[0.01, -0.02, 0.015, 0.03]).unwrap();
    assert!((p - 0.46514821270874374).abs() < 1e-12, "{p}");
    assert_eq!(paired_t_test(&[0.3]), None);
    assert_eq!(paired_t_test(&[]), None);
    assert_eq!(paired_t_test(&[0.0, 0.0, 0.0]), Some(1.0));
    // No variance: the test does not apply (it gave p 0: "certain" from two equal folds),
    // also when rounding leaves a spread of 1e-19.
    assert_eq!(paired_t_test(&[0.1, 0.1]), None);
    assert_eq!(paired_t_test(&[0.0004, 0.0004 + 1e-19, 0.0004]), None);
    assert!(paired_t_test(&[0.0004, 0.0005]).is_some_and(|p| p > 0.0 && p < 1.0));
}

#[test]
fn connection_rows_are_the_two_stackings_full_ainrnn_does_not_use() {
    let ids = |full| -> Vec<String> {
        Change::rows(full)
            .into_iter()
            .map(Change::id)
            .filter(|id| ["full", "dense", "residual", "gated", "plain"].contains(&id.as_str()))
            .collect()
    };
    assert_eq!(
        ids(Connection::Plain),
        ["full", "dense", "residual", "gated"]
    );
    assert_eq!(
        ids(Connection::Residual),
        ["full", "dense", "gated", "plain"]
    );
    assert_eq!(
        ids(Connection::Dense),
        ["full", "residual", "gated", "plain"]
    );
    // The other rows do not depend on the stacking.
    let rest = |full| Change::rows(full).split_off(4);
    assert_eq!(rest(Connection::Plain), rest(Connection::Dense));
    assert_eq!(rest(Connection::Residual), rest(Connection::Dense));
    assert_eq!(Change::rows(Connection::Plain).len(), 15);
}

fn row(id: &str, values: &[(u32, f64)], failed: Option<&str>) -> RowResult {
    RowResult {
        id: id.into(),
        row: id.into(),
        folds: values
            .iter()
            .map(|&(fold, v)| RowFold {
                fold,
                ndcg: v,
                precision: v / 2.0,
                epochs: 1,
            })
            .collect(),
        ndcg: None,
        precision: None,
        ndcg_vs_full: None,
        precision_vs_full: None,
        failed: failed.map(String::from),
    }
}

#[test]
fn summary_pairs_each_row_with_full_by_fold_and_skips_failed_rows() {
    let mut rows = vec![
        row("full", &[(0, 0.2), (1, 0.3), (2, 0.1)], None),
        row("a", &[(0, 0.25), (1, 0.2), (2, 0.15)], None),
        row("b", &[(0, 0.5)], Some("failed on fold 1: no")),
    ];
    summarise(&mut rows);
    let full = rows[0].ndcg.unwrap();
    assert!((full.mean - 0.2).abs() < 1e-12 && (full.std - 0.1).abs() < 1e-12);
    assert!(rows[0].ndcg_vs_full.is_none());
    let d = rows[1].ndcg_vs_full.as_ref().unwrap();
    let want = [0.05, -0.1, 0.05];
    for ((fold, got), (i, w)) in d.per_fold.iter().zip(want.iter().enumerate()) {
        assert_eq!(*fold, i as u32);
        assert!((got - w).abs() < 1e-12, "{got} vs {w}");
    }
    assert!(d.mean.abs() < 1e-12);
    let p = d.p_value.unwrap();
    assert!(
        (p - 1.0).abs() < 1e-12,
        "mean difference 0 gives p = 1, got {p}"
    );
    assert!(rows[2].ndcg.is_none() && rows[2].ndcg_vs_full.is_none());
}

fn tiny(data: &str, report: &str, folds: &str) -> Vec<String> {
    [
        "ablate",
        "--data",
        data,
        "--folds",
        folds,
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--emb",
        "8",
        "--max-history",
        "10",
        "--report",
        report,
    ]
    .map(String::from)
    .to_vec()
}

fn run_json(args: &[String]) -> Value {
    let mut a: Vec<&str> = vec!["--json"];
    a.extend(args.iter().map(String::as_str));
    let o = ainrnn(&a);
    succeeds(&o);
    serde_json::from_slice(&o.stdout).expect("--json prints one JSON object")
}

fn finite(v: &Value) -> f64 {
    let x = v.as_f64().unwrap_or(f64::NAN);
    assert!(x.is_finite(), "{v}");
    x
}

#[test]
fn every_row_has_numbers_or_a_reason_and_differences_are_row_minus_full() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let report = dir.path().join("ablation");
    let r = run_json(&tiny(s(&data), s(&report), "2"));
    let rows = r["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "full",
            "dense",
            "residual",
            "gated",
            "attention",
            "last",
            "mean",
            "no-portrait",
            "layers-2",
            "no-song-weights",
            "no-pair-weights",
            "no-neighbours",
            "features-none",
            "features-msd",
            "features-audio"
        ]
    );
    let full = &rows[0];
    assert!(full["failed"].is_null(), "{full}");
    let full_ndcg: Vec<f64> = full["folds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| finite(&f["ndcg"]))
        .collect();
    assert_eq!(full_ndcg.len(), 2);
    for row in rows {
        if let Some(why) = row["failed"].as_str() {
            assert!(
                why.starts_with("not run: ") || why.starts_with("failed on fold "),
                "{why}"
            );
            continue;
        }
        let folds = row["folds"].as_array().unwrap();
        assert_eq!(folds.len(), 2, "{row}");
        for m in ["ndcg", "precision"] {
            finite(&row[m]["mean"]);
            finite(&row[m]["std"]);
        }
        if row["id"] == "full" {
            continue;
        }
        let d = &row["ndcg_vs_full"];
        let per_fold = d["per_fold"].as_array().unwrap();
        assert_eq!(per_fold.len(), 2);
        let mut sum = 0.0;
        for (i, pf) in per_fold.iter().enumerate() {
            assert_eq!(pf[0].as_u64(), Some(i as u64));
            let want = finite(&folds[i]["ndcg"]) - full_ndcg[i];
            let got = finite(&pf[1]);
            assert!((got - want).abs() < 1e-12, "{row}");
            sum += got;
        }
        assert!((finite(&d["mean"]) - sum / 2.0).abs() < 1e-12);
        for d in [d, &row["precision_vs_full"]] {
            // A p-value in [0, 1], or none when both folds moved by the same amount.
            match d["p_value"].as_f64() {
                Some(p) => assert!((0.0..=1.0).contains(&p), "{p}"),
                None => {
                    assert!(d["p_value"].is_null(), "{d}");
                    let x: Vec<f64> = d["per_fold"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|pf| finite(&pf[1]))
                        .collect();
                    assert!((x[0] - x[1]).abs() <= 1e-9 * x[0].abs(), "{d}");
                    assert!(x[0] != 0.0, "{d}");
                }
            }
        }
    }
    // The small triplets have no song vectors: those rows say so and are not run.
    for (id, set) in [("features-msd", "msd"), ("features-audio", "audio")] {
        let row = rows.iter().find(|x| x["id"] == id).unwrap();
        assert_eq!(
            row["failed"].as_str(),
            Some(format!("not run: no {set} columns in the dataset's song vectors").as_str())
        );
    }
    // Rows after a refused one still run (connections and poolings other than AINRNN's own
    // are refused until they are built; they must then have numbers).
    // With no song vectors, --features all and none give the same (empty) columns.
    let none = rows.iter().find(|x| x["id"] == "features-none").unwrap();
    assert_eq!(
        none["failed"].as_str(),
        Some("not run: the same feature columns as full AINRNN's --features all (0 columns)")
    );
    for id in [
        "no-portrait",
        "layers-2",
        "no-song-weights",
        "no-pair-weights",
        "no-neighbours",
    ] {
        let row = rows.iter().find(|x| x["id"] == id).unwrap();
        assert!(row["failed"].is_null(), "{row}");
    }
    for id in ["dense", "residual", "gated", "attention", "last", "mean"] {
        let row = rows.iter().find(|x| x["id"] == id).unwrap();
        if let Some(why) = row["failed"].as_str() {
            assert!(why.contains("is not built yet"), "{why}");
        }
    }
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("ainrnn ablate --data"), "{md}");
    // Full AINRNN is the default's (a plain stack); the paper's dense connections a row.
    assert!(md.contains("| full AINRNN (plain stack) |"), "{md}");
    assert!(md.contains("| dense connections (the paper's) |"), "{md}");
    assert!(md.contains("not run: no audio columns"), "{md}");
    let png = std::fs::read(report.join("ablation.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(report.join("results.json")).unwrap()).unwrap();
    assert_eq!(saved["rows"], r["rows"]);
}

#[test]
fn one_fold_gives_no_p_value() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let report = dir.path().join("one");
    // With --paper, full AINRNN has the paper's dense connections and the command says so.
    let mut a = tiny(s(&data), s(&report), "1");
    a.push("--paper".into());
    let r = run_json(&a);
    let ids: Vec<&str> = r["rows"].as_array().unwrap()[..4]
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["full", "residual", "gated", "plain"]);
    assert_eq!(r["rows"][0]["row"], "full AINRNN (dense connections)");
    assert!(
        r["command"].as_str().unwrap().ends_with(" --paper"),
        "{}",
        r["command"]
    );
    let row = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "layers-2")
        .unwrap()
        .clone();
    assert!(row["failed"].is_null(), "{row}");
    assert!(row["ndcg_vs_full"]["p_value"].is_null(), "{row}");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("| n/a |"), "{md}");
}

#[test]
fn refuses_varied_flags_and_too_many_folds() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let report = dir.path().join("r");
    let mut a = tiny(s(&data), s(&report), "2");
    a.extend(["--connection", "dense"].map(String::from));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with(
        &ainrnn(&a),
        &["--connection", "ablate varies it", "connection plain"],
    );
    let a = tiny(s(&data), s(&report), "5");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with(&ainrnn(&a), &["--folds 5", "3 folds"]);
}

#[test]
fn refuses_a_report_folder_that_would_overwrite_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let report = dir.path().join("rep");
    std::fs::create_dir_all(&report).unwrap();
    let inside = report.join("results.json");
    std::fs::copy(&data, &inside).unwrap();
    let a = tiny(s(&inside), s(&report), "2");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with(&ainrnn(&a), &["would overwrite the input --data"]);
    assert_eq!(
        std::fs::read(&inside).unwrap(),
        std::fs::read(&data).unwrap()
    );
}

/// Full AINRNN's `--features` that the dataset cannot give end the run before any training
/// (every row failed and the run said 0); no report is written.
#[test]
fn features_full_ainrnn_cannot_have_are_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let report = dir.path().join("ablation");
    let mut args = tiny(s(&data), s(&report), "2");
    args.extend(["--features", "audio"].map(String::from));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = fails_with(&ainrnn(&a), &["--features audio", "no song vectors"]);
    assert!(!e.contains("fold 0"), "it trained first: {e}");
    assert!(!report.join("report.md").exists());
}
