//! Running the `ainrnn` binary in a child process (CLI tests): the command, its messages, the
//! bundled small dataset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The project's root: where the suite was built, or (a suite bundled for another machine by
/// `scripts/bundle.sh`, where that path does not exist) the current folder, from which the
/// bundle's suites are run.
pub fn root() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if built.join("data").is_dir() {
        return built;
    }
    std::env::current_dir().unwrap_or(built)
}

/// The `ainrnn` binary as a command whose child inherits no open file of this test process.
///
/// Why: libhdf5 opens files without close-on-exec and locks them (`flock`). A child started while
/// another test thread has an HDF5 file open keeps that descriptor, and so the lock, until it
/// exits; the thread's next open of the file then fails with "unable to lock file".
pub fn command() -> Command {
    #[allow(unused_mut)]
    let mut c = Command::new(env!("CARGO_BIN_EXE_ainrnn"));
    #[cfg(unix)]
    close_files_on_exec(&mut c);
    c
}

/// Outside Unix (Windows) a handle is inherited only when opened inheritable, which neither
/// Rust nor libhdf5 does.
#[cfg(unix)]
fn close_files_on_exec(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child before exec and only calls fcntl, which is
    // async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        c.pre_exec(|| {
            for fd in 3..4096 {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
            Ok(())
        })
    };
}

/// `ainrnn --backend cpu ARGS…` from the repository root, no standard input.
pub fn ainrnn(args: &[&str]) -> Output {
    command()
        .args(["--backend", "cpu"])
        .args(args)
        .current_dir(root())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit status 0; returns the messages (stderr) followed by the result (stdout).
pub fn succeeds(o: &Output) -> String {
    let e = stderr(o);
    assert!(o.status.success(), "{e}");
    e + &String::from_utf8_lossy(&o.stdout)
}

/// Exit status 2 (a usage error: flags that conflict) and a message containing every word.
pub fn usage_error(o: &Output, words: &[&str]) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    for w in words {
        assert!(e.contains(w), "expected {w:?} in: {e}");
    }
    e
}

/// Exit status 1 (a fatal error, not a signal or a panic) and a message containing every word.
pub fn fails_with(o: &Output, words: &[&str]) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    for w in words {
        assert!(e.contains(w), "expected {w:?} in: {e}");
    }
    e
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The bundled small triplets (153 users) prepared into `dir/small.h5` with 3 folds.
pub fn small(dir: &Path) -> PathBuf {
    let out = dir.join("small.h5");
    prepare_small(&out, &[]);
    out
}

/// [`small`] into `out`, with `extra` flags of `prepare` (e.g. another `--seed`).
pub fn prepare_small(out: &Path, extra: &[&str]) {
    let args = [
        "prepare",
        "--triplets",
        "data/taste/triplets_small.txt",
        "--min-listens",
        "1",
        "--min-song-users",
        "1",
        "--folds",
        "3",
        "-o",
        s(out),
    ];
    succeeds(&ainrnn(&[&args[..], extra].concat()));
}

/// `synth` of 5 users over 5 songs, 2 listens each on average, into `out`: a file in
/// milliseconds, for tests of what `synth` refuses or locks.
pub fn tiny_synth_args(out: &str) -> Vec<&str> {
    vec![
        "synth",
        "--users",
        "5",
        "--songs",
        "5",
        "--mean-listens",
        "2",
        "-o",
        out,
    ]
}

/// `train` of a tiny IndRNN for one epoch on `data` into `out` (1 layer, hidden 8, song table 8,
/// 10 listens, seed 42): a checkpoint in well under a second.
pub fn tiny_train_args<'a>(data: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "train",
        "--data",
        s(data),
        "--model",
        "indrnn",
        "--epochs",
        "1",
        "--patience",
        "0",
        "--seed",
        "42",
        "--hidden",
        "8",
        "--emb",
        "8",
        "--layers",
        "1",
        "--max-history",
        "10",
        "-o",
        s(out),
    ]
}
