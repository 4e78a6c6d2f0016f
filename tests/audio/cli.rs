//! The `features` command end to end: real and broken files, exit status, JSON summary,
//! resume, shards and merge.

use ainrnn::audio::store::{list_tracks, read_song_table, read_track, AttrValue, SongTable};

use crate::golden::root;

fn ainrnn(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = crate::common::cli::command()
        .args(["--backend", "cpu", "--json", "features"])
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

#[test]
fn features_command_skips_bad_files_resumes_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.h5");
    let o = out.to_str().unwrap();
    let (code, j, err) = ainrnn(&[
        "data/audio",
        "data/bad/empty.wav",
        "data/bad/not_audio.mp3",
        "data/bad/truncated_5k.ogg",
        "--seconds",
        "1",
        "--no-scattering",
        "-o",
        o,
    ]);
    assert_eq!(code, 3, "some inputs skipped: {err}");
    let written: Vec<&str> = j["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(written.len(), 3, "{j}");
    assert_eq!(j["skipped"].as_array().unwrap().len(), 3, "{j}");
    for bad in ["empty.wav", "not_audio.mp3", "truncated_5k.ogg"] {
        assert!(
            err.contains(&format!("skipped data/bad/{bad}: ")),
            "one line per bad file: {err}"
        );
    }
    assert!(
        j["seconds"].as_f64().unwrap() > 0.0 && j["backend"].as_str().unwrap().starts_with("cpu")
    );
    let t = read_track(&out, "singularity_awakening").unwrap();
    assert_eq!(t.dataset("mel").unwrap().0, &[128, 44]);
    assert_eq!(t.dataset("mfcc_delta2").unwrap().0, &[20, 44]);
    assert_eq!(t.dataset("hpcp").unwrap().0, &[12, 44]);
    assert_eq!(t.attr("source_sample_rate"), Some(&AttrValue::U(48000)));
    assert_eq!(t.attr("sample_rate"), Some(&AttrValue::U(22050)));
    let SongTable {
        ids,
        names,
        values: vectors,
        dim,
    } = read_song_table(&out).unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(dim, names.len());
    assert_eq!(vectors.len(), 3 * dim);
    assert!(vectors.iter().all(|v| v.is_finite()));

    // Re-running skips what is done and exits 0.
    let (code, j, _) = ainrnn(&["data/audio", "--seconds", "1", "--no-scattering", "-o", o]);
    assert_eq!(code, 0);
    assert_eq!(j["written"].as_array().unwrap().len(), 0);
    assert_eq!(j["already_done"].as_array().unwrap().len(), 3);

    // Two shards merged equal the whole.
    let mut parts = Vec::new();
    for i in 0..2 {
        let p = dir.path().join(format!("s{i}.h5"));
        let shard = format!("{i}/2");
        let (code, _, err) = ainrnn(&[
            "data/audio",
            "--seconds",
            "1",
            "--no-scattering",
            "--shard",
            &shard,
            "-o",
            p.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        parts.push(p);
    }
    let merged = dir.path().join("merged.h5");
    let st = crate::common::cli::command()
        .args(["features", "merge", "-o", merged.to_str().unwrap()])
        .args(parts.iter().map(|p| p.to_str().unwrap()))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(list_tracks(&merged).unwrap(), list_tracks(&out).unwrap());
    let a = read_song_table(&merged).unwrap();
    let b = read_song_table(&out).unwrap();
    assert_eq!(a.values, b.values, "same song vectors");
}

/// `n` copies of a bundled clip, `t00.wav`…, in `dir/in` (symbolic links: the stem names the
/// track).
fn many_clips(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let src = root().join("data/audio/gtzan_country.00000.wav");
    let d = dir.join("in");
    std::fs::create_dir(&d).unwrap();
    for i in 0..n {
        let to = d.join(format!("t{i:02}.wav"));
        #[cfg(unix)]
        std::os::unix::fs::symlink(&src, to).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&src, to).unwrap();
    }
    d
}

fn features_child(input: &std::path::Path, out: &std::path::Path) -> std::process::Child {
    crate::common::cli::command()
        .args(["--backend", "cpu", "--json", "features", "--no-scattering"])
        .args(["--seconds", "20", "--batch", "1", "-o"])
        .arg(out)
        .arg(input)
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Committed segments of the store `out`.
fn committed(out: &std::path::Path) -> usize {
    std::fs::read_dir(ainrnn::audio::store::segments_dir(out))
        .map(|rd| {
            rd.filter(|e| {
                let n = e.as_ref().unwrap().file_name();
                let n = n.to_string_lossy();
                n.starts_with("seg-") && n.ends_with(".h5")
            })
            .count()
        })
        .unwrap_or(0)
}

fn wait_for_a_commit(child: &mut std::process::Child, out: &std::path::Path) {
    let t0 = std::time::Instant::now();
    while committed(out) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "ended before a commit");
        assert!(
            t0.elapsed().as_secs() < 120,
            "no batch committed in 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Hidden files (temporaries, lock files) in the store's folder and its segment folder.
fn hidden(out: &std::path::Path) -> Vec<String> {
    let mut v = Vec::new();
    for d in [
        out.parent().unwrap().to_path_buf(),
        ainrnn::audio::store::segments_dir(out),
    ] {
        for e in std::fs::read_dir(d).into_iter().flatten() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            if n.starts_with('.') {
                v.push(n);
            }
        }
    }
    v
}

const CLIPS: usize = 40;

#[test]
fn a_killed_features_run_keeps_its_batches_and_the_rerun_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = many_clips(dir.path(), CLIPS);
    let out = dir.path().join("k.h5");
    let mut child = features_child(&input, &out);
    wait_for_a_commit(&mut child, &out);
    child.kill().unwrap(); // SIGKILL
    let st = child.wait().unwrap();
    assert_eq!(
        st.code(),
        None,
        "killed by the signal, not finished: {st:?}"
    );
    let kept = committed(&out);
    assert!((1..CLIPS).contains(&kept), "{kept} batches committed");

    let (code, j, err) = ainrnn(&[
        "--no-scattering",
        "--seconds",
        "20",
        "--batch",
        "1",
        "-o",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(j["already_done"].as_array().unwrap().len(), kept, "{j}");
    assert_eq!(j["tracks_in_store"].as_u64(), Some(CLIPS as u64), "{j}");
    assert!(hidden(&out).is_empty(), "{:?}", hidden(&out));

    let whole = dir.path().join("whole.h5");
    let (code, _, err) = ainrnn(&[
        "--no-scattering",
        "--seconds",
        "20",
        "--batch",
        "7",
        "-o",
        whole.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (a, b) = (
        read_song_table(&out).unwrap(),
        read_song_table(&whole).unwrap(),
    );
    assert_eq!(a.ids.len(), CLIPS);
    assert_eq!((&a.ids, &a.names, a.dim), (&b.ids, &b.names, b.dim));
    assert_eq!(a.values, b.values);
    assert_eq!(list_tracks(&out).unwrap(), a.ids);
}

#[cfg(unix)]
#[test]
fn sigint_stops_features_after_the_batch_keeps_it_and_removes_the_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let input = many_clips(dir.path(), CLIPS);
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let out = dir.path().join(format!("s{sig}.h5"));
        let mut child = features_child(&input, &out);
        wait_for_a_commit(&mut child, &out);
        // SAFETY: signals our own child.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(code),
            "an exit, not a signal death: {err}"
        );
        assert!(err.contains("interrupted by signal"), "{err}");
        assert!(hidden(&out).is_empty(), "{:?}", hidden(&out));
        // What was finished is in the store, readable.
        let t = read_song_table(&out).unwrap();
        assert!((1..CLIPS).contains(&t.ids.len()), "{} tracks", t.ids.len());
        assert_eq!(list_tracks(&out).unwrap(), t.ids);
    }
}

/// The CLI runs its command on a worker of rayon's pool, and `features` decodes the next batch
/// on a thread of its own whose decoding runs on that pool. On a one-thread pool (a one-core
/// machine, or `RAYON_NUM_THREADS=1`) the worker waiting for the decoder must run that work
/// itself: a plain join hung there for good.
#[test]
fn features_finishes_on_a_one_thread_pool() {
    let dir = tempfile::tempdir().unwrap();
    let input = many_clips(dir.path(), 6);
    let out = dir.path().join("one.h5");
    let mut child = crate::common::cli::command()
        .args(["--backend", "cpu", "--json", "features", "--no-scattering"])
        .args(["--seconds", "2", "--batch", "3", "-o"])
        .arg(&out)
        .arg(&input)
        .env("RAYON_NUM_THREADS", "1")
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed().as_secs() > 120 {
            child.kill().unwrap();
            panic!("`features` on one thread still running after 2 minutes: hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["written"].as_array().unwrap().len(), 6, "{j}");
    assert!(
        j["backend"].as_str().unwrap().contains("(1 threads)"),
        "{j}"
    );
}

/// Runs `ainrnn --backend cpu ARGS…` in `dir`; (exit code, stderr).
fn ainrnn_in(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let o = crate::common::cli::command()
        .args(["--backend", "cpu"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Files that decode but cannot be stored are skipped one by one and the batch keeps the rest:
/// a stem that cannot name a track (`..wav`: `.`, which ended the whole batch with an HDF5
/// error) and float samples so large that the features overflow (stored as NaN and infinity).
#[test]
fn features_skips_unstorable_files_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let good = root().join("data/audio/gtzan_country.00000.wav");
    std::fs::copy(&good, dir.path().join("..wav")).unwrap();
    // The same clip as float PCM scaled by 1e30: finite samples, infinite power.
    let d = ainrnn::audio::decode::decode(&good, Some(1.0)).unwrap();
    let loud: Vec<f32> = d.samples.iter().map(|x| x * 1e30).collect();
    crate::decode::wav(&dir.path().join("loud.wav"), d.sample_rate, Some(&loud));

    let out = dir.path().join("f.h5");
    let (code, j, err) = ainrnn(&[
        "--no-scattering",
        "--seconds",
        "1",
        "-o",
        out.to_str().unwrap(),
        good.to_str().unwrap(),
        dir.path().join("..wav").to_str().unwrap(),
        dir.path().join("loud.wav").to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "some inputs skipped: {err}");
    assert_eq!(
        j["written"],
        serde_json::json!(["gtzan_country.00000"]),
        "{j}"
    );
    assert!(
        err.contains("..wav: file stem \".\" cannot name a track"),
        "{err}"
    );
    assert!(
        err.contains("loud.wav: features not finite") && err.contains("e29, PCM is nominally"),
        "{err}"
    );
}

/// `features merge` reads each track from its own store's segment folder. libhdf5, following
/// the index's link to a segment that is missing or damaged, tries the same relative name under
/// the working directory, and merged another store's track of the same name without a word.
#[test]
fn merge_reads_no_other_stores_segments() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path();
    let x = top.join("X");
    for d in ["X", "srcA", "srcB"] {
        std::fs::create_dir(top.join(d)).unwrap();
    }
    std::fs::copy(
        root().join("data/audio/gtzan_country.00000.wav"),
        top.join("srcA/song.wav"),
    )
    .unwrap();
    std::fs::copy(
        root().join("data/audio/singularity_awakening_30s.wav"),
        top.join("srcB/song.wav"),
    )
    .unwrap();
    let opts = [
        "features",
        "--no-scattering",
        "--seconds",
        "1",
        "-o",
        "f.h5",
    ];
    let (code, err) = ainrnn_in(&x, &[&opts[..], &["../srcA/song.wav"]].concat());
    assert_eq!(code, 0, "{err}");
    // Another store of the same name in the directory the merge runs from.
    let (code, err) = ainrnn_in(top, &[&opts[..], &["srcB/song.wav"]].concat());
    assert_eq!(code, 0, "{err}");
    let seg = x.join("f.h5.d/seg-000001.h5");
    let kept = std::fs::read(&seg).unwrap();

    // A damaged segment, then a missing one: the merge fails, naming it.
    std::fs::write(&seg, &kept[..kept.len() / 2]).unwrap();
    let (code, err) = ainrnn_in(top, &["features", "merge", "-o", "m1.h5", "X/f.h5"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("seg-000001.h5"), "{err}");
    assert!(!top.join("m1.h5").exists());
    std::fs::remove_dir_all(x.join("f.h5.d")).unwrap();
    let (code, err) = ainrnn_in(top, &["features", "merge", "-o", "m2.h5", "X/f.h5"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("seg-000001.h5 is missing"), "{err}");

    // Whole again, it merges its own track.
    std::fs::create_dir(x.join("f.h5.d")).unwrap();
    std::fs::write(&seg, &kept).unwrap();
    let (code, err) = ainrnn_in(top, &["features", "merge", "-o", "m3.h5", "X/f.h5"]);
    assert_eq!(code, 0, "{err}");
    let t = read_track(&top.join("m3.h5"), "song").unwrap();
    assert_eq!(
        t.attr("source_file"),
        Some(&AttrValue::S("../srcA/song.wav".into())),
    );
}

/// Resuming a store with another `--seconds` is refused before any work (a track of 1 s was
/// kept beside tracks of 30 s without a word); the same `--seconds` resumes.
#[test]
fn features_refuses_to_resume_with_other_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.h5");
    let o = out.to_str().unwrap();
    let clip = "data/audio/gtzan_country.00000.wav";
    let (code, _, err) = ainrnn(&["--no-scattering", "--seconds", "1", "-o", o, clip]);
    assert_eq!(code, 0, "{err}");
    let other = "data/audio/singularity_awakening_30s.wav";
    for args in [&["--seconds", "2"][..], &[][..]] {
        let mut a = vec!["--no-scattering", "-o", o, clip, other];
        a.extend(args);
        let (code, _, err) = ainrnn(&a);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("its tracks were computed from --seconds 1, this run would take"),
            "{err}"
        );
    }
    assert_eq!(list_tracks(&out).unwrap(), ["gtzan_country.00000"]);
    let (code, j, err) = ainrnn(&["--no-scattering", "--seconds", "1", "-o", o, clip, other]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        j["already_done"],
        serde_json::json!(["gtzan_country.00000"]),
        "{j}"
    );
}

/// `features merge` refuses stores cut at other `--seconds` (inputs, or the store merged
/// into), as `features` refuses to extend one; `features` refuses a store whose segment is
/// gone (its tracks counted as done, their features lost).
#[test]
fn merge_refuses_other_seconds_and_features_a_missing_segment() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (a, b2, c) = (p("a.h5"), p("b.h5"), p("c.h5"));
    let clip = "data/audio/gtzan_country.00000.wav";
    let other = "data/audio/singularity_awakening_30s.wav";
    for (out, secs, f) in [(&a, "1", clip), (&b2, "2", other), (&c, "1", other)] {
        let (code, _, err) = ainrnn(&["--no-scattering", "--seconds", secs, "-o", out, f]);
        assert_eq!(code, 0, "{err}");
    }
    let root = root();
    let (code, err) = ainrnn_in(&root, &["features", "merge", "-o", &p("m.h5"), &a, &b2]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("b.h5")
            && err.contains("computed from --seconds 2")
            && err.contains("a.h5 from --seconds 1"),
        "{err}"
    );
    assert!(!dir.path().join("m.h5").exists());
    // Into an existing store of 2 s.
    let (code, err) = ainrnn_in(&root, &["features", "merge", "-o", &b2, &c]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot be merged"), "{err}");
    let (code, err) = ainrnn_in(&root, &["features", "merge", "-o", &p("m.h5"), &a, &c]);
    assert_eq!(code, 0, "{err}");

    std::fs::remove_file(dir.path().join("a.h5.d/seg-000001.h5")).unwrap();
    let (code, _, err) = ainrnn(&["--no-scattering", "--seconds", "1", "-o", &a, clip, other]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("seg-000001.h5 is missing"), "{err}");
}
