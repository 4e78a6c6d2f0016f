//! The `features` command end to end: real and broken files, exit status, JSON summary,
//! resume, shards and merge.

use std::process::Command;

use ainrnn::audio::store::{list_tracks, read_song_table, read_track, AttrValue, SongTable};

use crate::golden::root;

fn ainrnn(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ainrnn"))
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
    let st = Command::new(env!("CARGO_BIN_EXE_ainrnn"))
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
