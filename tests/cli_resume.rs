//! Issue 14 through the binary (child processes only): `train --resume` takes its settings from
//! the checkpoint and refuses conflicting flags, and `eval`/`recommend` refuse another fold than
//! the checkpoint's unless `--other-fold` (and `recommend --fold F` takes only fold F's test
//! users). One test calls the library's `train()` to show it refuses the same resumes.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::cli::{
    ainrnn, fails_with, prepare_small, s, small, succeeds, tiny_train_args, usage_error,
};

/// A user of the bundled small triplets.
const USER: &str = "fd50c4007b68a3737fe052d5a4f78ce8aa117f3d";

/// The bundled small triplets (153 users) prepared into `dir/small.h5` with 3 folds, and one
/// epoch of a small IndRNN (seed 42, lr 0.002, hidden 8) on fold 0 in `dir/m.ckpt`.
fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    let data = small(dir);
    let ck = dir.join("m.ckpt");
    let mut args = tiny_train_args(&data, &ck);
    args.extend(["--lr", "0.002"]);
    succeeds(&ainrnn(&args));
    (data, ck)
}

#[test]
fn resume_refuses_conflicting_flags_with_the_list_and_allows_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = trained(dir.path());
    let before = std::fs::read(&ck).unwrap();
    let e = usage_error(
        &ainrnn(&[
            "train",
            "--data",
            s(&data),
            "-o",
            s(&ck),
            "--resume",
            "--seed",
            "7",
            "--lr",
            "0.001",
            "--model",
            "lstm",
            "--hidden",
            "8",
        ]),
        &[
            "--resume takes its settings from the checkpoint",
            "only --epochs and --patience may change",
            "\n  --seed 7 but the checkpoint was trained with 42",
            "\n  --lr 0.001 but the checkpoint was trained with 0.002",
            "\n  --model lstm but the checkpoint was trained with indrnn",
        ],
    );
    // --hidden 8 agrees with the checkpoint; flags not given (--emb, --dropout) are not
    // conflicts although their defaults differ from the checkpoint's.
    for w in ["--hidden", "--emb", "--dropout", "training "] {
        assert!(!e.contains(w), "{w:?} in: {e}");
    }
    assert_eq!(
        e.lines().filter(|l| l.starts_with("  --")).count(),
        3,
        "{e}"
    );
    assert_eq!(std::fs::read(&ck).unwrap(), before);

    // More epochs and another patience may be given; the rest comes from the checkpoint (the
    // banner names its model, not the flag's default).
    let e = succeeds(&ainrnn(&[
        "train",
        "--data",
        s(&data),
        "-o",
        s(&ck),
        "--resume",
        "--epochs",
        "2",
        "--patience",
        "5",
        "--seed",
        "42",
    ]));
    assert!(e.contains("training indrnn"), "{e}");
    assert!(e.contains("resuming from"), "{e}");
    assert!(e.contains("epoch   2"), "{e}");
    assert!(!e.contains("epoch   1 "), "{e}");
}

#[test]
fn eval_and_recommend_refuse_another_fold_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = trained(dir.path());
    let base = ["--data", s(&data), "--checkpoint", s(&ck)];
    let e = succeeds(&ainrnn(&[&["eval"], &base[..]].concat()));
    assert!(e.contains("on fold 0"), "{e}");
    let words = ["--fold 1", "trained for fold 0", "--other-fold"];
    fails_with(
        &ainrnn(&[&["eval"], &base[..], &["--fold", "1"]].concat()),
        &words,
    );
    let e = succeeds(&ainrnn(
        &[&["eval"], &base[..], &["--fold", "1", "--other-fold"]].concat(),
    ));
    assert!(e.contains("on fold 1"), "{e}");

    // Users of folds 0 and 1 (read with the library: test setup, not the subject).
    let ds = ainrnn::data::Dataset::load(&data).unwrap();
    let of_fold = |f: u32| {
        let u = ds.user_fold.iter().position(|&x| x == f).unwrap();
        ds.user_ids[u].clone()
    };
    let (u0, u1) = (of_fold(0), of_fold(1));
    let rec = |user: &str, extra: &[&str]| {
        ainrnn(&[&["recommend"], &base[..], &["--user", user], extra].concat())
    };
    succeeds(&rec(&u0, &["--fold", "0"]));
    fails_with(&rec(&u1, &["--fold", "1"]), &words);
    succeeds(&rec(&u1, &["--fold", "1", "--other-fold"]));
    // --fold restricts --user to that fold's test users: any other user was a training user.
    fails_with(
        &rec(&u1, &["--fold", "0"]),
        &["--fold 0", "that user is in fold 1", "drop --fold"],
    );
    fails_with(
        &rec(&u0, &["--fold", "1", "--other-fold"]),
        &["--fold 1", "that user is in fold 0"],
    );
    // Without --fold, any user of the dataset gets a list.
    succeeds(&rec(&u1, &[]));
    succeeds(&rec(USER, &[]));
}

/// `recommend --max-per-genre` caps songs of one known genre; songs of unknown genre (all of
/// them here: the triplets were prepared without metadata) are not one genre, so the list is
/// full (it held N songs).
#[test]
fn max_per_genre_leaves_songs_of_unknown_genre_uncapped() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = trained(dir.path());
    let ds = ainrnn::data::Dataset::load(&data).unwrap();
    assert!(ds.song_meta.iter().all(|m| !m.has_genre()));
    let o = ainrnn(&[
        "recommend",
        "--data",
        s(&data),
        "--checkpoint",
        s(&ck),
        "--user",
        USER,
        "--k",
        "5",
        "--max-per-genre",
        "1",
    ]);
    succeeds(&o);
    let list = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(list.lines().count(), 5, "{list}");
}

/// `--resume` without a checkpoint trains from the start and says so (a job queue may run the
/// same command until it finishes).
#[test]
fn resume_without_a_checkpoint_starts_anew_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let ck = dir.path().join("new.ckpt");
    let mut args = tiny_train_args(&data, &ck);
    args.push("--resume");
    let e = succeeds(&ainrnn(&args));
    assert!(e.contains("--resume: neither"), "{e}");
    assert!(e.contains("training from the start"), "{e}");
    assert!(ck.exists());
    // Now there is one: the same command resumes.
    let e = succeeds(&ainrnn(&args));
    assert!(e.contains("resuming from"), "{e}");
}

/// The same triplets prepared with another seed have the same counts but other test users:
/// `eval`, `recommend` and `train --resume` refuse the checkpoint on them (they were accepted
/// while the fingerprint held counts only, and `eval` scored the checkpoint's training users
/// as test users).
#[test]
fn a_checkpoint_is_refused_on_another_split_of_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = trained(dir.path());
    let other = dir.path().join("seed7.h5");
    prepare_small(&other, &["--seed", "7"]);
    let (a, b) = (
        ainrnn::data::Dataset::load(&data).unwrap(),
        ainrnn::data::Dataset::load(&other).unwrap(),
    );
    assert_eq!(
        (a.users(), a.songs(), a.interactions()),
        (b.users(), b.songs(), b.interactions())
    );
    assert_ne!(a.user_fold, b.user_fold, "the seed changes the folds");
    let words = ["trained on another split", "--seed", "refused"];
    let base = ["--data", s(&other), "--checkpoint", s(&ck)];
    fails_with(&ainrnn(&[&["eval"], &base[..]].concat()), &words);
    fails_with(
        &ainrnn(&[&["recommend"], &base[..], &["--user", USER]].concat()),
        &words,
    );
    let before = std::fs::read(&ck).unwrap();
    fails_with(
        &ainrnn(&[
            "train",
            "--data",
            s(&other),
            "-o",
            s(&ck),
            "--resume",
            "--epochs",
            "2",
        ]),
        &words,
    );
    assert_eq!(std::fs::read(&ck).unwrap(), before);
    // The data it was trained on is still accepted.
    succeeds(&ainrnn(&[
        "eval",
        "--data",
        s(&data),
        "--checkpoint",
        s(&ck),
    ]));
}

/// The library's `train()` refuses a resume with other settings too (not only the CLI), and
/// writes nothing.
#[test]
fn the_library_refuses_a_resume_with_other_settings() {
    use ainrnn::backend::cpu::CpuBackend;
    use ainrnn::model::ModelKind;
    use ainrnn::train::run::{train, TrainOptions};
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = trained(dir.path());
    let before = std::fs::read(&ck).unwrap();
    let mut o = TrainOptions::new(data, ModelKind::Indrnn, ck.clone());
    (o.epochs, o.patience, o.seed, o.lr, o.hidden, o.emb) = (2, 0, 7, 0.002, 8, 8);
    (o.layers, o.max_history, o.resume) = (Some(1), 10, true);
    let e = train(&CpuBackend::new(), &o, |_| {}, |_, _, _, _| {})
        .expect_err("a resume with --seed 7 must be refused")
        .to_string();
    assert!(
        e.contains("--seed 7 but the checkpoint was trained with 42"),
        "{e}"
    );
    assert!(!e.contains("--lr"), "only the conflicts are listed: {e}");
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        before,
        "the checkpoint is untouched"
    );
    o.seed = 42;
    o.kind = ModelKind::Lstm;
    let e = train(&CpuBackend::new(), &o, |_| {}, |_, _, _, _| {})
        .expect_err("a resume with --model lstm must be refused")
        .to_string();
    assert!(
        e.contains("--model lstm but the checkpoint was trained with indrnn"),
        "{e}"
    );
}
