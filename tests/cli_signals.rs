//! SIGINT and SIGTERM end a command after removing the temporaries of the outputs it was
//! writing (issue 14): no half-written file is left beside the output, the exit is 128 + signal
//! (not a death by signal), and an output finished earlier stays as it was.
//! Unix only: signals are how the tests stop the child.
#![cfg(unix)]

#[path = "common/mod.rs"]
mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::cli::{command, s};

fn temps(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

#[test]
fn a_signal_mid_write_removes_the_temporary_and_keeps_the_finished_output() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("synth.txt");
        std::fs::write(&out, "finished earlier\n").unwrap();
        let mut child = command()
            .args([
                "synth",
                "--users",
                "400000",
                "--songs",
                "50000",
                "--mean-listens",
                "40",
            ])
            .args(["-o", s(&out)])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the run is writing its temporary, then signal it.
        let t0 = Instant::now();
        while temps(dir.path()).is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no temporary appeared beside {}",
                out.display()
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "synth finished before the signal"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        let o = child.wait_with_output().unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.signal(), None, "died by signal {sig}: {e}");
        assert_eq!(o.status.code(), Some(128 + sig), "{e}");
        assert!(
            e.contains("interrupted by signal") && e.contains("removed"),
            "{e}"
        );
        assert_eq!(temps(dir.path()), Vec::<String>::new(), "temporaries left");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "finished earlier\n");
    }
}

/// A signal mid-training: every epoch's checkpoint goes to the disk in the background while the
/// next epoch trains, and the last one reported before the signal (reported once handed over)
/// lands whole before the exit: resuming with `--epochs` at that epoch trains nothing. No
/// temporary is left, and both files (best and last epoch) load.
#[test]
fn a_signal_mid_training_keeps_every_reported_epoch() {
    use common::cli::{ainrnn, small, succeeds, tiny_train_args};
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let ck = dir.path().join("m.ckpt");
    let last = dir.path().join("m.ckpt.last");
    let mut args = tiny_train_args(&data, &ck);
    let at = args.iter().position(|a| *a == "--epochs").unwrap();
    args[at + 1] = "100000"; // with --patience 0: until the signal
    args.extend(["--ensemble", "1"]);
    let mut child = command()
        .args(["--backend", "cpu"])
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !last.exists() {
        assert!(t0.elapsed() < Duration::from_secs(60), "no checkpoint");
        assert!(child.try_wait().unwrap().is_none(), "training ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    // More epochs, each handing its checkpoint to the writer.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(128 + libc::SIGINT), "{e}");
    assert!(e.contains("interrupted by signal"), "{e}");
    assert_eq!(temps(dir.path()), Vec::<String>::new(), "temporaries left");
    assert!(
        !dir.path().join(".m.ckpt.lock").exists(),
        "the lock file is left"
    );
    for f in [&ck, &last] {
        succeeds(&ainrnn(&["eval", "--data", s(&data), "--checkpoint", s(f)]));
    }
    let reported = e
        .lines()
        .filter_map(|l| l.strip_prefix("epoch ")?.split_whitespace().next())
        .filter_map(|n| n.parse::<u32>().ok())
        .max()
        .expect("epochs reported before the signal");
    let n = reported.to_string();
    let resumed = succeeds(&ainrnn(&[
        "train",
        "--data",
        s(&data),
        "-o",
        s(&ck),
        "--resume",
        "--epochs",
        &n,
    ]));
    assert!(
        !resumed.lines().any(|l| l.starts_with("epoch ")),
        "epoch {n} was reported but its checkpoint did not land:\n{resumed}"
    );
}
