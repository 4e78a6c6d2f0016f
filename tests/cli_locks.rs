//! Writer locks (issue 14): while one run holds an output's lock, a second writer of the same
//! output is refused at once, naming the output and the holder's pid, and the output is left as
//! it was. The lock is held here by the test process itself (`OutputLock::acquire`), as a running
//! `ainrnn` would.

mod common;

use common::cli::{ainrnn, fails_with, s, small, succeeds, tiny_synth_args};

use ainrnn::io::OutputLock;

fn pid_words() -> String {
    format!("pid {}", std::process::id())
}

#[test]
fn a_second_writer_of_the_same_output_is_refused_naming_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let pid = pid_words();

    // train -o same.ckpt
    let ckpt = dir.path().join("same.ckpt");
    std::fs::write(&ckpt, b"the first run's checkpoint").unwrap();
    let held = OutputLock::acquire(&ckpt).unwrap();
    let o = ainrnn(&[
        "train",
        "--data",
        s(&data),
        "--model",
        "indrnn",
        "--epochs",
        "1",
        "-o",
        s(&ckpt),
    ]);
    fails_with(&o, &["same.ckpt", &pid, "is writing it", "--out"]);
    assert_eq!(std::fs::read(&ckpt).unwrap(), b"the first run's checkpoint");
    drop(held);

    // features -o store.h5
    let store = dir.path().join("store.h5");
    std::fs::write(&store, b"the first run's store").unwrap();
    let held = OutputLock::acquire(&store).unwrap();
    let o = ainrnn(&["features", "data/audio", "--no-scattering", "-o", s(&store)]);
    fails_with(&o, &["store.h5", &pid, "--output"]);
    assert_eq!(std::fs::read(&store).unwrap(), b"the first run's store");
    drop(held);

    // prepare -o data.h5 (the dataset written above)
    let before = std::fs::read(&data).unwrap();
    let held = OutputLock::acquire(&data).unwrap();
    let o = ainrnn(&[
        "prepare",
        "--triplets",
        "data/taste/triplets_small.txt",
        "--min-listens",
        "1",
        "-o",
        s(&data),
    ]);
    fails_with(&o, &["small.h5", &pid, "--output"]);
    assert_eq!(std::fs::read(&data).unwrap(), before);

    // synth -o, merge -o, compare --report: the same rule.
    let t = dir.path().join("t.txt");
    let held_t = OutputLock::acquire(&t).unwrap();
    let o = ainrnn(&tiny_synth_args(s(&t)));
    fails_with(&o, &["t.txt", &pid]);
    assert!(!t.exists());
    let report = dir.path().join("report");
    std::fs::create_dir(&report).unwrap();
    let held_r = OutputLock::acquire(&report).unwrap();
    let o = ainrnn(&["compare", "--data", s(&data), "--report", s(&report)]);
    fails_with(&o, &["report", &pid, "--report"]);
    drop((held, held_t, held_r));

    // Released: the same command now runs (and leaves no lock file behind).
    succeeds(&ainrnn(&tiny_synth_args(s(&t))));
    assert!(t.exists());
    assert!(!dir.path().join(".t.txt.lock").exists());
}

#[test]
fn a_lock_file_left_by_a_killed_run_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.txt");
    std::fs::write(dir.path().join(".t.txt.lock"), "4000000").unwrap();
    std::fs::write(dir.path().join(".t.txt.4000000.tmp.txt"), "half").unwrap();
    succeeds(&ainrnn(&tiny_synth_args(s(&t))));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("t.txt")]);
}
