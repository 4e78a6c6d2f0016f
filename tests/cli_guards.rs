//! Issue 14 through the binary (child processes only, so no HDF5 file is open in this process):
//! training guards (divergence, too few users), `prepare --folds` beyond the users, `features`
//! with nothing to decode, and outputs that name an input of the same command.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;

use common::cli::{
    ainrnn, fails_with, root, s, small, stderr, succeeds, tiny_synth_args, usage_error,
};

#[test]
fn a_diverging_first_epoch_is_an_error_and_promises_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let ck = dir.path().join("m.ckpt");
    // lr 1 blows the loss up to ~1e10 within the first epoch (finite, so not a NaN).
    let o = ainrnn(&[
        "train",
        "--data",
        s(&data),
        "--lr",
        "1",
        "--epochs",
        "3",
        "--dropout",
        "0",
        "-o",
        s(&ck),
    ]);
    fails_with(
        &o,
        &[
            "training loss became",
            "diverged",
            "no checkpoint was written",
        ],
    );
    assert!(
        !stderr(&o).contains("last good checkpoint"),
        "{}",
        stderr(&o)
    );
    assert!(!ck.exists() && !dir.path().join("m.ckpt.last").exists());
}

/// A model that fails in `compare` (here a diverging IndRNN) costs its own row, named with
/// the fold and the reason, not the other models' results: the report is written with them,
/// and the exit status is 3. When every model fails, the first failure is the error.
#[test]
fn compare_keeps_the_other_models_when_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let report = dir.path().join("rep");
    #[rustfmt::skip]
    let o = ainrnn(&["--json", "compare", "--data", s(&data), "--models", "popularity,indrnn",
        "--folds", "2", "--epochs", "3", "--ensemble", "1", "--lr", "1", "--dropout", "0",
        "--report", s(&report)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("fold 0 indrnn     failed: training loss became"),
        "{}",
        stderr(&o)
    );
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("results.json")).unwrap()).unwrap();
    let models = &j["models"];
    assert!(
        models["popularity"]["ndcg_at_10"].as_f64().unwrap() > 0.0,
        "{j}"
    );
    let why = models["indrnn"]["failed"].as_str().unwrap();
    assert!(
        why.starts_with("failed on fold 0: training loss became"),
        "{why}"
    );
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        md.contains("| indrnn | failed on fold 0: training loss became"),
        "{md}"
    );
    // The printed JSON is the file's summary.
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        printed["models"]["indrnn"]["failed"],
        models["indrnn"]["failed"]
    );

    #[rustfmt::skip]
    let o = ainrnn(&["compare", "--data", s(&data), "--models", "indrnn", "--folds", "1",
        "--epochs", "3", "--ensemble", "1", "--lr", "1", "--dropout", "0",
        "--report", s(&dir.path().join("rep2"))]);
    fails_with(&o, &["indrnn failed on fold 0: training loss became"]);
}

#[test]
fn too_few_training_users_is_an_error_naming_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let trip = dir.path().join("two.txt");
    std::fs::write(&trip, "u1\ts1\t1\nu1\ts2\t2\nu2\ts1\t1\nu2\ts2\t3\n").unwrap();
    let data = dir.path().join("two.h5");
    let base = [
        "prepare",
        "--triplets",
        s(&trip),
        "--min-listens",
        "1",
        "--min-song-users",
        "1",
        "-o",
        s(&data),
    ];
    // Three folds for two users: refused, naming both, and nothing written.
    let mut a = base.to_vec();
    a.extend(["--folds", "3"]);
    fails_with(&ainrnn(&a), &["--folds", "3 folds", "only 2 users"]);
    assert!(!data.exists());
    let mut a = base.to_vec();
    a.extend(["--folds", "2"]);
    let o = ainrnn(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    // Fold 0: one test user, the other one validates: nobody left to train on.
    let ck = dir.path().join("m.ckpt");
    let o = ainrnn(&["train", "--data", s(&data), "-o", s(&ck)]);
    fails_with(
        &o,
        &["too few users", "0 training users", "1 validation users"],
    );
    assert!(!ck.exists());
}

#[test]
fn features_with_nothing_to_decode_is_an_error_and_writes_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.h5");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "no audio here").unwrap();
    let o = ainrnn(&["features", s(&empty), "-o", s(&out)]);
    fails_with(&o, &["no audio files", "not written"]);
    assert!(!out.exists());
    let missing = dir.path().join("missing.wav");
    let o = ainrnn(&["features", s(&missing), "-o", s(&out)]);
    fails_with(&o, &["missing.wav", "no such file", "not written"]);
    assert!(!out.exists());
}

#[test]
fn an_output_naming_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let trip = dir.path().join("t.txt");
    std::fs::copy(root().join("data/taste/triplets_small.txt"), &trip).unwrap();
    let before = std::fs::read(&trip).unwrap();
    // The same file under another name: `sub/../t.txt`.
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let other = dir.path().join("sub/../t.txt");
    let o = ainrnn(&["prepare", "--triplets", s(&trip), "-o", s(&other)]);
    fails_with(&o, &["--output", "--triplets", "destroy the input"]);
    assert_eq!(std::fs::read(&trip).unwrap(), before);

    let data = small(dir.path());
    let bytes = std::fs::read(&data).unwrap();
    let o = ainrnn(&["train", "--data", s(&data), "-o", s(&data)]);
    fails_with(&o, &["--out", "--data", "destroy the input"]);
    // `-o X` also writes `X.last`.
    let renamed = dir.path().join("d.last");
    std::fs::copy(&data, &renamed).unwrap();
    let o = ainrnn(&[
        "train",
        "--data",
        s(&renamed),
        "-o",
        s(&dir.path().join("d")),
    ]);
    fails_with(&o, &[".last", "--data", "destroy the input"]);
    assert_eq!(std::fs::read(&renamed).unwrap(), bytes);
    // An ensemble writes `X.memberN` and `X.memberN.last` too.
    for name in ["d.member1", "d.member2.last"] {
        let member = dir.path().join(name);
        std::fs::copy(&data, &member).unwrap();
        #[rustfmt::skip]
        let o = ainrnn(&["train", "--data", s(&member), "--ensemble", "2", "--epochs", "1",
            "-o", s(&dir.path().join("d"))]);
        fails_with(&o, &[name, "--data", "member", "destroy the input"]);
        assert_eq!(std::fs::read(&member).unwrap(), bytes, "{name}");
    }
    // compare --report DIR writes DIR/results.json.
    let rep = dir.path().join("rep");
    std::fs::create_dir(&rep).unwrap();
    let in_report = rep.join("results.json");
    std::fs::copy(&data, &in_report).unwrap();
    let o = ainrnn(&["compare", "--data", s(&in_report), "--report", s(&rep)]);
    fails_with(&o, &["--report", "--data"]);
    assert_eq!(std::fs::read(&in_report).unwrap(), bytes);
    // features: an input file as the store.
    let wav = dir.path().join("a.wav");
    std::fs::copy(root().join("data/bad/empty.wav"), &wav).unwrap();
    let o = ainrnn(&["features", s(&wav), "-o", s(&wav)]);
    fails_with(&o, &["--output", "input", "destroy the input"]);
    // features merge: a store merged into itself.
    let o = ainrnn(&["features", "merge", s(&data), "-o", s(&data)]);
    fails_with(&o, &["--output", "store", "destroy the input"]);
    assert_eq!(std::fs::read(&data).unwrap(), bytes);
}

/// `demo --out` inside (or equal to) `--data` would write the demo's stores among the bundled
/// inputs: refused before any work, nothing written.
#[test]
fn demo_refuses_an_output_folder_inside_the_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("keep.txt"), "x").unwrap();
    for out in [data.clone(), data.join("demo"), data.join("sub/../out")] {
        let o = ainrnn(&["demo", "--quick", "--data", s(&data), "--out", s(&out)]);
        fails_with(&o, &["--out", "--data", "input folder"]);
    }
    let left: Vec<_> = std::fs::read_dir(&data).unwrap().collect();
    assert_eq!(left.len(), 1, "only keep.txt: {left:?}");
}

/// An output file given as an existing folder is refused before any work (`train` trained a
/// whole epoch, wrote `<folder>.last` and only then failed on the rename).
#[test]
fn an_output_file_naming_a_folder_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let folder = dir.path().join("out");
    std::fs::create_dir(&folder).unwrap();
    let words = ["is a folder; give a file name"];
    let e = fails_with(
        &ainrnn(&["train", "--data", s(&data), "-o", s(&folder)]),
        &words,
    );
    assert!(!e.contains("epoch"), "{e}");
    assert!(!dir.path().join("out.last").exists());
    fails_with(
        &ainrnn(&[
            "prepare",
            "--triplets",
            "data/taste/triplets_small.txt",
            "-o",
            s(&folder),
        ]),
        &words,
    );
    let synth =
        |out: &Path, extra: &[&str]| ainrnn(&[&tiny_synth_args(s(out))[..], extra].concat());
    fails_with(&synth(&folder, &[]), &words);
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
    // The reverse for `synth --audio`, a folder: a file is refused before the triplets are
    // written.
    let file = dir.path().join("clips.txt");
    std::fs::write(&file, "x").unwrap();
    let triplets = dir.path().join("t.txt");
    fails_with(
        &synth(&triplets, &["--audio", s(&file)]),
        &["--audio", "is a file; give a folder"],
    );
    assert!(!triplets.exists());
}

/// `compare --models` is checked before any model runs: a model listed twice, and
/// content-kNN on data with neither song vectors nor genres (popularity ran first and the
/// run failed at content-kNN's turn, with no report).
#[test]
fn compare_refuses_a_model_it_cannot_run_before_running_any() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let report = dir.path().join("r");
    for (models, words) in [
        (
            "popularity,popularity",
            &["--models", "popularity is listed twice"][..],
        ),
        (
            "popularity,contentknn",
            &["--models contentknn", "no song vectors and no song genres"][..],
        ),
    ] {
        let e = fails_with(
            &ainrnn(&[
                "compare",
                "--data",
                s(&data),
                "--folds",
                "1",
                "--models",
                models,
                "--report",
                s(&report),
            ]),
            words,
        );
        assert!(!e.contains("fold 0"), "{e}");
        assert!(!report.join("checkpoints").exists());
    }
}

/// A missing --data is refused before the output folder is created (an empty folder was left).
#[test]
fn a_missing_input_leaves_no_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent.h5");
    for cmd in ["compare", "ablate", "demo"] {
        let out = dir.path().join(format!("out-{cmd}"));
        let flag = if cmd == "demo" { "--out" } else { "--report" };
        fails_with(
            &ainrnn(&[cmd, "--data", s(&missing), flag, s(&out)]),
            &["--data", "nonexistent.h5", "no such file or folder"],
        );
        assert!(!out.exists(), "{cmd} created {}", out.display());
    }
}

/// A run refused after it created its report folder (the dataset has 3 folds, not 10; a model
/// it cannot run) removes that folder, empty, with the empty `checkpoints/` in it; a folder that
/// was there before stays, and so does one that holds a file.
#[test]
fn a_refused_run_removes_the_empty_folder_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    for (cmd, extra) in [
        ("compare", &["--folds", "10"][..]),
        ("ablate", &["--folds", "10"][..]),
        (
            "compare",
            &["--folds", "1", "--models", "popularity,contentknn"][..],
        ),
    ] {
        let out = dir.path().join("r");
        let mut a = vec![cmd, "--data", s(&data), "--report", s(&out)];
        a.extend(extra);
        fails_with(&ainrnn(&a), &[]);
        assert!(!out.exists(), "{cmd} {extra:?} left {}", out.display());
        std::fs::create_dir(&out).unwrap();
        fails_with(&ainrnn(&a), &[]);
        assert!(
            out.is_dir(),
            "{cmd} {extra:?} removed a folder it did not create"
        );
        std::fs::remove_dir(&out).unwrap();
    }
    let out = dir.path().join("kept");
    std::fs::create_dir_all(out.join("checkpoints")).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    fails_with(
        &ainrnn(&[
            "compare",
            "--data",
            s(&data),
            "--folds",
            "10",
            "--report",
            s(&out),
        ]),
        &["--folds 10"],
    );
    assert!(out.join("notes.txt").is_file() && out.join("checkpoints").is_dir());
}

/// Without `--folds`, compare runs every fold of the dataset (the default was 10, refused on
/// the demo's 5-fold files).
#[test]
fn compare_runs_every_fold_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let out = dir.path().join("r");
    let o = ainrnn(&[
        "--json",
        "compare",
        "--data",
        s(&data),
        "--models",
        "popularity",
        "--report",
        s(&out),
    ]);
    succeeds(&o);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["folds"], 3, "{j}");
    // Fig. 6 is AINRNN's: comparing popularity alone says nothing about feature sets.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("Fig. 6"), "{err}");
    assert!(!out.join("accuracy_per_epoch.png").exists());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        !md.contains("Fig. 6") && !md.contains("accuracy_per_epoch"),
        "{md}"
    );
}

/// `--feature-sets` that would compare nothing is refused before any work.
#[test]
fn compare_refuses_feature_sets_it_would_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let out = dir.path().join("r");
    for (extra, why) in [
        (
            &["--models", "popularity", "--feature-sets", "msd,none"][..],
            "does not include ainrnn",
        ),
        (&["--feature-sets", "msd"][..], "two feature sets or more"),
        (&["--feature-sets", "msd,none,msd"][..], "lists msd twice"),
    ] {
        let mut args = vec!["compare", "--data", s(&data), "--report", s(&out)];
        args.extend_from_slice(extra);
        usage_error(&ainrnn(&args), &["--feature-sets", why]);
        assert!(!out.exists(), "{extra:?} left {}", out.display());
    }
}

/// `bench data` with more megabytes than the disk holds fails at once, naming the free space,
/// instead of writing until the disk is full.
#[test]
fn bench_data_refuses_a_file_larger_than_the_free_disk() {
    let dir = tempfile::tempdir().unwrap();
    let o = ainrnn(&["bench", "data", "--mb", "1e12", "--dir", s(dir.path())]);
    fails_with(&o, &["--mb 1000000000000", "MB are free", "another --dir"]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// With `--json`, a failure still prints one JSON object on stdout, `{"error": …}`, holding the
/// message stderr shows; a success prints its result alone.
#[test]
fn json_failures_print_an_error_object() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.h5");
    let o = ainrnn(&["--json", "stats", s(&missing)]);
    let e = fails_with(&o, &["nope.h5"]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let msg = j["error"].as_str().unwrap();
    assert!(msg.contains("nope.h5") && e.contains(msg), "{j} / {e}");
    assert_eq!(j.as_object().unwrap().len(), 1, "{j}");

    // A usage error too (clap's, exit status 2).
    let o = ainrnn(&[
        "--json", "train", "--data", "d.h5", "--batch", "0", "-o", "m.ckpt",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let msg = j["error"].as_str().unwrap();
    assert!(msg.starts_with("invalid value '0' for '--batch"), "{msg}");
    // Flags that conflict, found after parsing: usage errors too (they exited 1).
    let data = small(dir.path());
    let d = s(&data);
    #[rustfmt::skip]
    let cases: [&[&str]; 7] = [
        &["recommend", "--data", d, "--checkpoint", "m.ckpt", "--all", "--explain", "-o", "x.tsv"],
        &["recommend", "--data", d, "--checkpoint", "m.ckpt", "--user", "u", "-o", "x.tsv"],
        &["recommend", "--data", d, "--checkpoint", "m.ckpt", "--all"],
        &["similar", "--data", d, "--song", "x", "--by", "listens", "--checkpoint", "m.ckpt"],
        &["similar", "--data", d, "--song", "x", "--by", "content", "--similarity", "cosine"],
        &["prepare", "--triplets", "t.txt", "--artists", "a.dat", "-o", "x.h5"],
        &["bench", "report", "--quick", "--out", "r"],
    ];
    for args in cases {
        let mut a = vec!["--json"];
        if args[0] == "bench" {
            a.extend(["--backend", "cpu"]);
        }
        a.extend_from_slice(args);
        let o = ainrnn(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(j["error"].is_string(), "{args:?}: {j}");
    }
    assert!(
        !std::path::Path::new("r").exists(),
        "bench report --backend cpu wrote r/"
    );

    let data = small(dir.path());
    let o = ainrnn(&["--json", "stats", s(&data)]);
    succeeds(&o);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j.get("error").is_none(), "{j}");
}

/// `eval` on a fold whose test users have no song held out is an error, not metrics of 0
/// averaged over nobody (and a coverage of 1).
#[test]
fn eval_of_a_fold_without_held_out_songs_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let trip = dir.path().join("one.txt");
    let mut t = String::new();
    for u in 0..6 {
        t += &format!("single{u}\tS{}\t1\n", u % 3);
    }
    for u in 0..12 {
        for s in 0..4 {
            t += &format!("multi{u}\tS{}\t2\n", (u + s) % 6);
        }
    }
    std::fs::write(&trip, t).unwrap();
    let data = dir.path().join("one.h5");
    let ckpt = dir.path().join("one.ckpt");
    #[rustfmt::skip]
    succeeds(&ainrnn(&["prepare", "--triplets", s(&trip), "--min-listens", "1", "--min-song-users", "1",
        "--folds", "9", "--seed", "29", "-o", s(&data)]));
    #[rustfmt::skip]
    succeeds(&ainrnn(&["train", "--data", s(&data), "--epochs", "1", "--ensemble", "1",
        "-o", s(&ckpt)]));
    let o = ainrnn(&["eval", "--data", s(&data), "--checkpoint", s(&ckpt)]);
    fails_with(
        &o,
        &["one.h5", "fold 0", "no test user with held-out songs"],
    );
}

/// `train --resume`: another `--ensemble` is a conflict like any other setting; resuming from
/// `<out>` alone (no `.last`) says it is not the interrupted run's latest state.
#[test]
fn resume_refuses_another_ensemble_and_says_what_it_resumes_from() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let out = dir.path().join("r.ckpt");
    let train = |extra: &[&str]| {
        let mut a = vec![
            "train",
            "--data",
            s(&data),
            "--hidden",
            "8",
            "--emb",
            "8",
            "-o",
            s(&out),
        ];
        a.extend_from_slice(extra);
        ainrnn(&a)
    };
    succeeds(&train(&["--epochs", "1", "--ensemble", "1"]));
    let o = train(&["--resume", "--epochs", "2", "--ensemble", "2"]);
    usage_error(&o, &["--ensemble 2 but the checkpoint was trained with 1"]);
    std::fs::remove_file(dir.path().join("r.ckpt.last")).unwrap();
    let o = train(&["--resume", "--epochs", "2"]);
    succeeds(&o);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("r.ckpt.last is missing")
            && e.contains("not the interrupted run's latest state"),
        "{e}"
    );
}

/// A run writing `m.ckpt` also writes `m.ckpt.last` and `m.ckpt.memberN[.last]`: a second run
/// given one of those as its output is refused while the first holds `m.ckpt`.
#[test]
fn train_refuses_an_output_that_another_runs_derived_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let held = ainrnn::io::OutputLock::acquire(&dir.path().join("m.ckpt")).unwrap();
    for name in ["m.ckpt.last", "m.ckpt.member1", "m.ckpt.member2.last"] {
        let out = dir.path().join(name);
        let o = ainrnn(&["train", "--data", s(&data), "--epochs", "1", "-o", s(&out)]);
        fails_with(&o, &["m.ckpt", "is writing it"]);
        assert!(!out.exists(), "{name} written");
    }
    drop(held);
    // A name that only looks derived is its own output.
    let out = dir.path().join("m.ckpt.membership");
    let held = ainrnn::io::OutputLock::acquire(&dir.path().join("m.ckpt")).unwrap();
    #[rustfmt::skip]
    succeeds(&ainrnn(&["train", "--data", s(&data), "--epochs", "1", "--ensemble", "1",
        "--hidden", "8", "--emb", "8", "-o", s(&out)]));
    drop(held);
}

/// Sizes no machine here could train are refused with the figure, before the allocation that
/// aborted the process (`--hidden 100000`: 40 GB for one weight matrix) or the OOM killer.
#[test]
fn sizes_that_cannot_fit_in_memory_are_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let out = dir.path().join("m.ckpt");
    for flag in [["--hidden", "100000"], ["--emb", "100000000"]] {
        #[rustfmt::skip]
        let o = ainrnn(&["train", "--data", s(&data), "--epochs", "1", "--ensemble", "1",
            flag[0], flag[1], "-o", s(&out)]);
        fails_with(
            &o,
            &[
                "GB of memory",
                &format!("{} {}", flag[0], flag[1]),
                "available",
            ],
        );
        assert!(!out.exists());
    }
    let bench = |extra: &[&str]| {
        let mut a = vec![
            "bench",
            "train",
            "--no-torch",
            "--steps",
            "1",
            "--warmup",
            "0",
        ];
        a.extend_from_slice(extra);
        ainrnn(&a)
    };
    fails_with(
        &bench(&["--users", "4000000000", "--epoch"]),
        &["--users 4000000000", "GB of memory"],
    );
    fails_with(
        &bench(&["--hidden", "1000000"]),
        &["--hidden 1000000", "GB of memory"],
    );
    #[rustfmt::skip]
    fails_with(&bench(&["--songs", "10", "--history", "100", "--targets", "200"]),
        &["--history + --targets = 300", "--songs 10"]);
    // synth: a catalogue past the u32 indices, its tables past memory, a file past the disk,
    // clips past the disk; each refused before anything is written (an abort left the
    // temporary file and the lock behind).
    let sy = dir.path().join("sy");
    std::fs::create_dir(&sy).unwrap();
    let out = sy.join("t.txt");
    for (sizes, said) in [
        (["10", "4294967296", "2"], "more than a catalogue can index"),
        (["10", "4000000000", "2"], "MB of memory"),
        (["18446744073709551615", "10", "2"], "MB are free"),
    ] {
        #[rustfmt::skip]
        let o = ainrnn(&["synth", "--users", sizes[0], "--songs", sizes[1], "--mean-listens",
            sizes[2], "-o", s(&out)]);
        fails_with(&o, &[said]);
    }
    #[rustfmt::skip]
    let o = ainrnn(&["synth", "--users", "10", "--songs", "100000000", "--mean-listens", "2",
        "-o", s(&out), "--audio", s(&sy.join("clips"))]);
    fails_with(&o, &["clips of 3 s", "MB are free"]);
    let left: Vec<_> = std::fs::read_dir(&sy)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Files `prepare` reads without their being named (the `--msd` folder's files, the term tables
/// beside `--metadata`, `artists.dat` beside `--hetrec`) are inputs too: an output naming one
/// is refused before any work and the file kept.
#[test]
fn prepare_refuses_an_output_naming_a_file_it_reads_unnamed() {
    let dir = tempfile::tempdir().unwrap();
    let (msd, meta, het) = (
        dir.path().join("msd"),
        dir.path().join("meta"),
        dir.path().join("het"),
    );
    for d in [&msd, &meta, &het] {
        std::fs::create_dir(d).unwrap();
    }
    let cp = |from: &str, to: &Path| std::fs::copy(root().join(from), to).unwrap();
    let track = msd.join("TRAAABD128F429CF47.h5");
    cp("data/msd/TRAAABD128F429CF47.h5", &track);
    for f in [
        "subset_10k.csv",
        "subset_artist_term.csv",
        "subset_artist_mbtag.csv",
    ] {
        cp(&format!("data/msd/{f}"), &meta.join(f));
    }
    for f in ["user_artists.dat", "artists.dat"] {
        cp(&format!("data/hetrec/{f}"), &het.join(f));
    }
    let trip = "data/taste/triplets_small.txt";
    let csv = meta.join("subset_10k.csv");
    let ua = het.join("user_artists.dat");
    let cases: Vec<(Vec<&str>, std::path::PathBuf, &str)> = vec![
        (
            vec!["--triplets", trip, "--msd", s(&msd)],
            track.clone(),
            "in the --msd folder",
        ),
        (
            vec!["--triplets", trip, "--metadata", s(&csv)],
            meta.join("subset_artist_term.csv"),
            "beside the --metadata file",
        ),
        (
            vec!["--triplets", trip, "--metadata", s(&csv)],
            meta.join("subset_artist_mbtag.csv"),
            "beside the --metadata file",
        ),
        (
            vec!["--hetrec", s(&ua)],
            het.join("artists.dat"),
            "beside the --hetrec file",
        ),
    ];
    for (args, out, what) in cases {
        let before = std::fs::read(&out).unwrap();
        let o = ainrnn(&[&["prepare"], &args[..], &["-o", s(&out)]].concat());
        fails_with(&o, &["--output", what, "destroy the input"]);
        assert_eq!(std::fs::read(&out).unwrap(), before, "{}", out.display());
    }
    // A new file in the --msd folder is not an input.
    let o = ainrnn(&[
        "prepare",
        "--triplets",
        trip,
        "--msd",
        s(&msd),
        "--min-listens",
        "1",
        "--min-song-users",
        "1",
        "--folds",
        "3",
        "-o",
        s(&msd.join("new.h5")),
    ]);
    succeeds(&o);
}

/// Flags `prepare` would accept and not use are refused before any work: `--artists` without
/// `--hetrec`, an artist table with no MSD input to join it to; `--visible-share -0` is 0.
#[test]
fn prepare_refuses_flags_it_would_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.h5");
    let trip = "data/taste/triplets_small.txt";
    let o = ainrnn(&[
        "prepare",
        "--triplets",
        trip,
        "--artists",
        "data/hetrec/artists.dat",
        "-o",
        s(&out),
    ]);
    usage_error(
        &o,
        &["--artists data/hetrec/artists.dat goes with --hetrec"],
    );
    for flag in ["--artist-terms", "--artist-mbtags"] {
        let o = ainrnn(&[
            "prepare",
            "--triplets",
            trip,
            flag,
            "data/msd/subset_artist_term.csv",
            "-o",
            s(&out),
        ]);
        let e = fails_with(&o, &[flag, "goes with --metadata or --msd"]);
        assert!(!e.contains("reading"), "refused before reading: {e}");
    }
    assert!(!out.exists());
    let o = ainrnn(&[
        "prepare",
        "--triplets",
        trip,
        "--visible-share",
        "-0.0",
        "--folds",
        "3",
        "-o",
        s(&out),
    ]);
    let e = succeeds(&o);
    assert!(e.contains("visible share 0,"), "{e}");
    let o = ainrnn(&["--json", "stats", s(&out)]);
    let j = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(j.contains("\"visible_share\":0.0"), "{j}");
}

/// Reasons that say what is wrong: a number too large for its flag (clap's exit 2) names the
/// largest; an output under a regular file says the file is not a folder, once.
#[test]
fn prepare_reasons_name_the_real_problem() {
    let dir = tempfile::tempdir().unwrap();
    let trip = "data/taste/triplets_small.txt";
    let out = dir.path().join("x.h5");
    for (flag, value, max) in [
        ("--min-listens", "4294967296", "from 0 to 4294967295"),
        ("--folds", "100000000000", "from 2 to 4294967295"),
        (
            "--seed",
            "18446744073709551616",
            "from 0 to 18446744073709551615",
        ),
    ] {
        let o = ainrnn(&["prepare", "--triplets", trip, flag, value, "-o", s(&out)]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.contains(max) && e.contains("too large"), "{e}");
    }
    let afile = dir.path().join("afile");
    std::fs::write(&afile, "x").unwrap();
    let o = ainrnn(&["prepare", "--triplets", trip, "-o", s(&afile.join("x.h5"))]);
    let e = fails_with(&o, &["afile is a file, not a folder"]);
    assert!(
        !e.contains("does not exist") && !e.contains("cannot write there"),
        "{e}"
    );
}

/// An output folder that is a file, or lies under one, is named as such (it said "cannot
/// create the folder: File exists").
#[test]
fn an_output_folder_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    let o = ainrnn(&["demo", "--quick", "--out", s(&file)]);
    fails_with(&o, &["--out", "afile is a file, not a folder"]);
    let under = file.join("r");
    let data = small(dir.path());
    let o = ainrnn(&["compare", "--data", s(&data), "--report", s(&under)]);
    fails_with(&o, &["--report", "afile is a file, not a folder"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}
