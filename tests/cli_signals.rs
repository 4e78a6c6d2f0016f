//! SIGINT and SIGTERM end a command after removing the temporaries of the outputs it was
//! writing (issue 14): no half-written file is left beside the output, the exit is 128 + signal
//! (not a death by signal), and an output finished earlier stays as it was.

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
