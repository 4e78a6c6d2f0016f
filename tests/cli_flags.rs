//! Issue 14, "nonsense accepted": every numeric flag of every command is parsed with its range.
//! A value outside it is refused before any work (clap's usage error, exit status 2) with a
//! message naming the flag, the valid range and the value; the library entry points that take
//! the same settings refuse them with a typed error instead of panicking.

use std::path::Path;
use std::process::Command;

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::model::ModelKind;
use ainrnn::train::run::{train, TrainOptions};

/// Runs the binary; returns (exit code, stderr).
fn ainrnn(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ainrnn"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        o.status.code().expect("exited, not killed by a signal"),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `args` must be refused at parse time naming `flag`, `range` and `value`. A negative value is
/// tried both as written (`--flag -1`: the flag's own check answers, not clap's "unexpected
/// argument") and as `--flag=-1`.
fn refused(args: &[&str], flag: &str, range: &str) {
    let i = args.iter().position(|a| *a == flag).unwrap();
    let value = args[i + 1];
    let joined = format!("{flag}={value}");
    let mut forms = vec![args.to_vec()];
    if value.starts_with('-') {
        let mut j = args.to_vec();
        j.splice(i..i + 2, [joined.as_str()]);
        forms.push(j);
    }
    for args in forms {
        let (code, err) = ainrnn(&args);
        assert_eq!(code, 2, "{args:?} should be a usage error: {err}");
        assert!(
            err.contains(&format!("invalid value '{value}' for '{flag}"))
                && err.contains(range)
                && !err.contains("panicked"),
            "{args:?}: the message should name {flag}, {range} and {value}: {err}"
        );
    }
}

const GE1: &str = "whole number >= 1";

#[test]
fn train_and_compare_flags_have_ranges() {
    let train = ["train", "--data", "d.h5"];
    let compare = ["compare", "--data", "d.h5", "--report", "r"];
    for base in [&train[..], &compare[..]] {
        for (flag, value, range) in [
            ("--batch", "0", GE1),
            ("--hidden", "0", GE1),
            ("--emb", "0", GE1),
            ("--layers", "0", GE1),
            ("--max-history", "0", GE1),
            ("--epochs", "0", GE1),
            ("--lr", "0", "(0, 1]"),
            ("--lr", "NaN", "(0, 1]"),
            ("--lr", "2", "(0, 1]"),
            ("--dropout", "1.5", "[0, 0.95]"),
            ("--dropout", "NaN", "[0, 0.95]"),
            ("--dropout", "-0.1", "[0, 0.95]"),
            ("--weight-decay", "NaN", "[0, inf)"),
            ("--weight-decay", "-1", "[0, inf)"),
            ("--weight-decay", "1e39", "too large"),
            ("--batch", "ten", GE1),
        ] {
            let mut a = base.to_vec();
            a.extend([flag, value]);
            refused(&a, flag, range);
        }
    }
    for (flag, value, range) in [
        ("--folds", "0", GE1),
        ("--k", "0", "1..=20"),
        ("--k", "21", "1..=20"),
        ("--ease-items", "0", GE1),
        ("--knn-neighbours", "0", GE1),
        ("--ease-lambda", "NaN", "(0, inf)"),
        ("--ease-lambda", "0", "(0, inf)"),
    ] {
        let mut a = compare.to_vec();
        a.extend([flag, value]);
        refused(&a, flag, range);
    }
}

#[test]
fn eval_recommend_features_flags_have_ranges() {
    let eval = ["eval", "--data", "d.h5", "--checkpoint", "m.ckpt"];
    for (flag, value, range) in [("--k", "0", "1..=32"), ("--k", "33", "1..=32")] {
        let mut a = eval.to_vec();
        a.extend([flag, value]);
        refused(&a, flag, range);
    }
    let rec = ["recommend", "--data", "d.h5", "--checkpoint", "m.ckpt"];
    for (flag, value) in [("--k", "0"), ("--max-per-genre", "0")] {
        let mut a = rec.to_vec();
        a.extend(["--user", "u", flag, value]);
        refused(&a, flag, GE1);
    }
    for (flag, value, range) in [
        ("--batch", "0", GE1),
        ("--seconds", "0", "(0, inf)"),
        ("--seconds", "NaN", "(0, inf)"),
    ] {
        refused(&["features", "x.wav", flag, value], flag, range);
    }
}

#[test]
fn prepare_and_synth_flags_have_ranges() {
    let prep = ["prepare", "--triplets", "t.txt", "-o", "d.h5"];
    for (flag, value, range) in [
        ("--folds", "1", "whole number >= 2"),
        ("--folds", "0", "whole number >= 2"),
        ("--visible-share", "1.5", "[0, 1]"),
        ("--visible-share", "NaN", "[0, 1]"),
        ("--min-listens", "-1", "whole number >= 0"),
    ] {
        let mut a = prep.to_vec();
        a.extend([flag, value]);
        refused(&a, flag, range);
    }
    let synth = [
        "synth",
        "--users",
        "10",
        "--songs",
        "10",
        "--mean-listens",
        "2",
        "-o",
        "s.txt",
    ];
    for (flag, value, range) in [
        ("--zipf", "NaN", "[0, inf)"),
        ("--zipf", "-1", "[0, inf)"),
        ("--explore", "2", "[0, 1]"),
        ("--explore", "NaN", "[0, 1]"),
        ("--genres", "0", GE1),
    ] {
        let mut a = synth.to_vec();
        a.extend([flag, value]);
        refused(&a, flag, range);
    }
    for (i, range) in [(2, GE1), (4, GE1), (6, "[1, inf)")] {
        let mut a = synth.to_vec();
        a[i] = "0";
        refused(&a, synth[i - 1], range);
    }
}

#[test]
fn bench_flags_have_ranges() {
    for (sub, flag, value, range) in [
        ("ops", "--min-seconds", "NaN", "[0, inf)"),
        ("ops", "--min-seconds", "-1", "[0, inf)"),
        ("data", "--mb", "0", "(0, inf)"),
        ("features", "--clips", "0", GE1),
        ("features", "--seconds", "-1", "[0.2, 600]"),
        ("features", "--seconds", "601", "[0.2, 600]"),
        ("scattering", "--j", "0", "1..=24"),
        ("scattering", "--j", "25", "1..=24"),
        ("scattering", "--q", "0", "1..=64"),
        ("scattering", "--seconds", "0", "(0, 600]"),
        ("scattering", "--seconds", "1e6", "(0, 600]"),
        ("scattering", "--min-seconds", "inf", "[0, inf)"),
        ("train", "--users", "0", GE1),
        ("train", "--songs", "1", ">= 2"),
        ("train", "--batch", "0", GE1),
        ("train", "--history", "0", GE1),
        ("train", "--targets", "0", GE1),
        ("train", "--hidden", "0", GE1),
        ("train", "--layers", "0", GE1),
        ("train", "--steps", "0", GE1),
        ("train", "--tile", "0", GE1),
    ] {
        refused(&["bench", sub, flag, value], flag, range);
    }
}

/// The library refuses the same settings with an error naming the flag (no panic): `--layers 0`
/// panicked inside the model's forward pass.
#[test]
fn train_options_are_checked_by_the_library() {
    let b = CpuBackend::new();
    let base = TrainOptions::new("no-such.h5".into(), ModelKind::Ainrnn, "m.ckpt".into());
    type Edit = fn(&mut TrainOptions);
    let cases: [(&str, Edit); 8] = [
        ("--layers", |o| o.layers = Some(0)),
        ("--batch", |o| o.batch = 0),
        ("--hidden", |o| o.hidden = 0),
        ("--max-history", |o| o.max_history = 0),
        ("--epochs", |o| o.epochs = 0),
        ("--lr", |o| o.lr = 0.0),
        ("--dropout", |o| o.dropout = f32::NAN),
        ("--weight-decay", |o| o.weight_decay = f32::NAN),
    ];
    for (flag, edit) in cases {
        let mut o = base.clone();
        edit(&mut o);
        let e = train(&b, &o, |_| {}, |_, _, _, _| {})
            .expect_err(flag)
            .to_string();
        assert!(e.contains(flag), "{flag}: {e}");
        assert!(!e.contains("no-such.h5"), "refused before reading: {e}");
    }
    assert!(base.check().is_ok());
}

#[test]
fn recommend_refuses_k_0_and_max_per_genre_0_as_a_library() {
    let b = CpuBackend::new();
    let who = || ainrnn::eval::run::Who::User("u");
    let (d, c) = (Path::new("no-such.h5"), Path::new("no-such.ckpt"));
    let e = ainrnn::eval::run::recommend(&b, d, c, who(), 0, None, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--k 0"), "{e}");
    let e = ainrnn::eval::run::recommend(&b, d, c, who(), 5, Some(0), None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--max-per-genre 0"), "{e}");
}
