//! `ainrnn synth --audio DIR`: the clips are deterministic, leave the triplets unchanged, decode
//! through the project's decoder at 22,050 Hz with the asked length, and sound like their latent
//! cluster: songs of one cluster are closer in the audio stage's features than songs of two.

mod common;

use ainrnn::audio::decode::load;
use ainrnn::audio::features::{extract_batch, song_vector, vector_names};
use ainrnn::audio::ops::AudioPlan;
use ainrnn::backend::cpu::CpuBackend;
use ainrnn::data::synth::{song_id, song_model, synth, SynthOptions};
use ainrnn::data::synth_audio::{
    cluster_styles, synth_with_audio, write_clips, AudioOptions, SAMPLE_RATE,
};

use common::cli::{command, stderr, tiny_synth_args};

/// `ainrnn --backend cpu ARGS…` in `dir`.
fn ainrnn_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    command()
        .args(["--backend", "cpu"])
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn options() -> SynthOptions {
    let mut o = SynthOptions::new(60, 24, 5.0);
    o.seed = 7;
    o.genres = 4;
    o
}

fn audio(dir: &std::path::Path, seconds: f64) -> AudioOptions {
    AudioOptions {
        dir: dir.to_path_buf(),
        clip_seconds: seconds,
    }
}

#[test]
fn same_options_same_bytes_and_triplets_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let o = options();
    let plain = t.path().join("plain.txt");
    synth(&o, &plain).unwrap();
    let with = t.path().join("with.txt");
    let a = audio(&t.path().join("a"), 1.0);
    let r = synth_with_audio(&o, &with, Some(&a)).unwrap();
    assert_eq!(r.clips, o.songs);
    assert_eq!(r.audio_dir.as_deref(), Some(a.dir.to_str().unwrap()));
    assert_eq!(
        std::fs::read(&plain).unwrap(),
        std::fs::read(&with).unwrap(),
        "triplets must be the same bytes with and without --audio"
    );
    // Again, into another folder: the same bytes, clip by clip.
    let b = audio(&t.path().join("b"), 1.0);
    write_clips(&o, &b).unwrap();
    for j in 0..o.songs {
        let name = format!("{}.wav", song_id(j));
        let x = std::fs::read(a.dir.join(&name)).unwrap();
        // assert! rather than assert_eq!: a failure would print two whole WAV files.
        assert!(x == std::fs::read(b.dir.join(&name)).unwrap(), "{name}");
    }
    // Another seed, other sounds.
    let mut o2 = o.clone();
    o2.seed = 8;
    let c = audio(&t.path().join("c"), 1.0);
    write_clips(&o2, &c).unwrap();
    let name = format!("{}.wav", song_id(0));
    assert!(std::fs::read(a.dir.join(&name)).unwrap() != std::fs::read(c.dir.join(&name)).unwrap());
    // One file per song, plus the README that says what they are.
    let files = std::fs::read_dir(&a.dir).unwrap().count();
    assert_eq!(files, o.songs + 1);
    let readme = std::fs::read_to_string(a.dir.join("README.txt")).unwrap();
    assert!(readme.starts_with("SYNTHETIC audio"), "{readme}");
    assert!(readme.contains("ainrnn synth"), "{readme}");
    assert!(readme.contains("seed=7"), "{readme}");
}

#[test]
fn a_clip_decodes_at_22050_hz_with_its_length_and_others_files_stay() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("clips");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("mine.txt"), b"keep me").unwrap();
    let o = options();
    write_clips(&o, &audio(&dir, 2.5)).unwrap();
    assert_eq!(std::fs::read(dir.join("mine.txt")).unwrap(), b"keep me");
    for j in [0, o.songs - 1] {
        let d = load(&dir.join(format!("{}.wav", song_id(j))), None).unwrap();
        assert_eq!(d.sample_rate, SAMPLE_RATE);
        assert_eq!(d.sample_rate_in, SAMPLE_RATE);
        assert_eq!(d.channels, 1);
        assert_eq!(d.samples.len(), 55_125, "2.5 s at 22,050 Hz");
        let peak = d.samples.iter().fold(0f32, |m, &x| m.max(x.abs()));
        assert!((peak - 0.7).abs() < 1e-3, "peak {peak}");
    }
}

#[test]
fn styles_differ_by_cluster() {
    let o = options();
    let s = cluster_styles(&o);
    assert_eq!(s.len(), o.genres);
    for st in &s {
        assert!((3..=4).contains(&st.chord.len()), "{st:?}");
        assert!(st.pattern[0]);
    }
    for i in 0..s.len() {
        for j in i + 1..s.len() {
            assert_ne!(s[i], s[j]);
        }
    }
}

fn dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Mean distance between songs of the same cluster and of different clusters, over the columns
/// whose names start with `prefix`.
fn within_between(
    vectors: &[Vec<f32>],
    cluster: &[u32],
    names: &[String],
    prefix: &str,
) -> (f64, f64) {
    let cols: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].starts_with(prefix))
        .collect();
    assert!(!cols.is_empty(), "{prefix}");
    let pick = |v: &Vec<f32>| cols.iter().map(|&i| v[i]).collect::<Vec<f32>>();
    let (mut w, mut nw, mut b, mut nb) = (0.0, 0, 0.0, 0);
    for i in 0..vectors.len() {
        for j in i + 1..vectors.len() {
            let d = dist(&pick(&vectors[i]), &pick(&vectors[j]));
            if cluster[i] == cluster[j] {
                w += d;
                nw += 1;
            } else {
                b += d;
                nb += 1;
            }
        }
    }
    assert!(nw > 0 && nb > 0);
    (w / nw as f64, b / nb as f64)
}

#[test]
fn songs_of_one_cluster_sound_closer_than_songs_of_two() {
    let t = tempfile::tempdir().unwrap();
    let o = options();
    write_clips(&o, &audio(t.path(), 2.0)).unwrap();
    let clips: Vec<Vec<f32>> = (0..o.songs)
        .map(|j| {
            load(&t.path().join(format!("{}.wav", song_id(j))), None)
                .unwrap()
                .samples
        })
        .collect();
    let cpu = CpuBackend::new();
    let plan = AudioPlan::new(&cpu).unwrap();
    let refs: Vec<&[f32]> = clips.iter().map(|c| c.as_slice()).collect();
    let feats = extract_batch(&cpu, &plan, &refs, None).unwrap();
    let vectors: Vec<Vec<f32>> = feats.iter().map(song_vector).collect();
    let names = vector_names(0);
    let cluster = song_model(&o).cluster;
    for prefix in ["hpcp_mean", "mfcc_mean", "mfcc_std"] {
        let (w, b) = within_between(&vectors, &cluster, &names, prefix);
        eprintln!("{prefix}: within {w:.4}, between {b:.4}");
        assert!(w < 0.8 * b, "{prefix}: within-cluster {w} vs between {b}");
    }
}

#[test]
fn bad_clip_seconds_are_refused_naming_the_flag() {
    let t = tempfile::tempdir().unwrap();
    let o = options();
    for bad in [0.0, -1.0, 0.19, 61.0, f64::NAN, f64::INFINITY] {
        let out = t.path().join("x.txt");
        let e = synth_with_audio(&o, &out, Some(&audio(&t.path().join("a"), bad)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--clip-seconds"), "{e}");
        assert!(!out.exists(), "nothing written for {bad}");
        assert!(!t.path().join("a").exists());
    }
    // Through the command line: clap names the flag, and --clip-seconds needs --audio.
    for args in [
        vec!["--audio", "a", "--clip-seconds", "0"],
        vec!["--audio", "a", "--clip-seconds", "0.1"],
        vec!["--audio", "a", "--clip-seconds", "61"],
        vec!["--audio", "a", "--clip-seconds", "x"],
        vec!["--clip-seconds", "2"],
    ] {
        let mut full = tiny_synth_args("x.txt");
        full.extend(args.iter().copied());
        let out = ainrnn_in(t.path(), &full);
        assert!(!out.status.success(), "{full:?}");
        let err = stderr(&out);
        assert!(
            err.contains("--clip-seconds") || err.contains("--audio"),
            "{full:?}: {err}"
        );
    }
}

#[test]
fn cli_json_reports_clips_and_audio_dir() {
    let t = tempfile::tempdir().unwrap();
    let out = ainrnn_in(
        t.path(),
        &[
            "--json",
            "synth",
            "--users",
            "20",
            "--songs",
            "6",
            "--mean-listens",
            "3",
            "-o",
            "s.txt",
            "--audio",
            "clips",
            "--clip-seconds",
            "0.5",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["clips"], 6);
    assert_eq!(j["audio_dir"], "clips");
    assert_eq!(j["kind"], "synthetic");
    assert!(stderr(&out).contains("SYNTHETIC clips"));
    assert_eq!(
        std::fs::read_dir(t.path().join("clips")).unwrap().count(),
        7
    );
}

/// Clips into the triplets' own file: refused before anything is written (the triplets were
/// written, then the clips failed on them).
#[test]
fn cli_refuses_audio_into_the_output_file() {
    let t = tempfile::tempdir().unwrap();
    let mut a = tiny_synth_args("s.txt");
    a.extend(["--audio", "s.txt"]);
    let out = ainrnn_in(t.path(), &a);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--audio s.txt is the --output file"),
        "{}",
        stderr(&out)
    );
    assert!(!t.path().join("s.txt").exists());
}
