//! The README's statements about the feature pipeline and the song vectors, checked against the
//! code: the per-track datasets (one per stage) the `features` command writes, the stages the
//! demo's step 1 and the `features` row name, and the widths of the song vectors. (The audio
//! song vector's own paragraph is also checked in `tests/audio/store.rs`.)

use std::collections::BTreeSet;
use std::path::Path;

use ainrnn::audio::decode::Decoded;
use ainrnn::audio::features::{vector_names, ClipFeatures};
use ainrnn::audio::job::track_record;
use ainrnn::audio::scattering::Stage;
use ainrnn::data::vectors::msd_names;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The datasets one track gets in `features.h5` with every stage on (scattering included), as
/// the `features` command writes them.
fn stage_datasets() -> Vec<String> {
    let d = Decoded {
        samples: vec![0.0; 16],
        sample_rate: 22_050,
        sample_rate_in: 22_050,
        channels: 1,
        codec: "pcm".into(),
    };
    let f = ClipFeatures {
        scattering: Some((Vec::new(), 0, 0, 0)),
        ..Default::default()
    };
    track_record("t", Path::new("t.wav"), &d, &f, None)
        .datasets
        .into_iter()
        .map(|(name, _, _)| name)
        .collect()
}

/// The word the README uses for the stage that writes a dataset; a dataset the table does not
/// know is a new stage that the README (and this table) must learn about.
fn stage_word(dataset: &str) -> &'static str {
    match dataset {
        "mel" => "mel",
        "mfcc" => "MFCC",
        "mfcc_delta" | "mfcc_delta2" => "deltas",
        "hfc" => "HFC",
        "hpcp" => "HPCP",
        "scattering" => "scattering",
        other => panic!("a stage writes dataset {other:?}: describe it in the README and here"),
    }
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let i = text
        .find(start)
        .unwrap_or_else(|| panic!("README must contain {start:?}"))
        + start.len();
    let j = text[i..].find(end).unwrap() + i;
    &text[i..j]
}

#[test]
fn readme_features_tree_lists_the_datasets_the_code_writes() {
    let code: BTreeSet<String> = stage_datasets().into_iter().collect();
    let r = readme();
    // The per-track block of the `features.h5` tree: `    NAME   f32 [...]` lines.
    let tree = between(&r, "  /tracks/<file stem>/ ", "```");
    let stated: BTreeSet<String> = tree
        .lines()
        .filter(|l| l.starts_with("    ") && !l.trim_start().starts_with('/'))
        .filter_map(|l| {
            let t = l.trim_start();
            let name = t.split_whitespace().next()?;
            t.contains(" f32 [").then(|| name.to_string())
        })
        .collect();
    assert_eq!(
        stated, code,
        "README's features.h5 tree vs the code's datasets"
    );
}

#[test]
fn readme_stage_lists_name_every_stage_of_the_code() {
    let words: BTreeSet<&str> = stage_datasets().iter().map(|d| stage_word(d)).collect();
    let r = readme();
    // Demo step 1: "audio features (STFT, mel, MFCC + deltas, HFC, HPCP, scattering)". The STFT
    // writes no dataset of its own (mel is its output) and is the one extra word allowed.
    let step1 = between(&r, "1. audio features (", ")");
    let listed: BTreeSet<&str> = step1
        .split([',', '+'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    let mut expected = words.clone();
    expected.insert("STFT");
    assert_eq!(
        listed, expected,
        "demo step 1 in the README vs the code's stages"
    );
    // The `features` row of the subcommand table names every stage too.
    let row = between(&r, "| `features` |", "|");
    for w in &words {
        assert!(row.contains(w), "the features row must name {w:?}: {row}");
    }
}

#[test]
fn readme_song_vector_widths_are_the_codes() {
    let r = readme();
    let first_order = Stage::new(Default::default()).unwrap().first_order();
    let d = vector_names(first_order).len();
    // Every "D = N" in the README is the code's width.
    for (i, _) in r.match_indices("D = ") {
        let n: String = r[i + 4..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !n.is_empty() {
            assert_eq!(n.parse::<usize>().unwrap(), d, "README says D = {n}");
        }
    }
    // The MSD vector's width and its first and last columns.
    let names = msd_names();
    let stated = format!("The MSD vector ({} columns)", names.len());
    assert!(r.contains(&stated), "README must say {stated:?}");
    for n in ["timbre_mean_0", "pitch_std_", "year"] {
        assert!(names.iter().any(|c| c.starts_with(n)), "{n}");
    }
}
