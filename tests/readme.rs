//! The README's statements about the feature pipeline and the song vectors, checked against the
//! code: the per-track datasets (one per stage) the `features` command writes, the stages the
//! demo's step 1 and the `features` row name, and the widths of the song vectors. (The audio
//! song vector's own paragraph is also checked in `tests/audio/store.rs`.) And every relative
//! link of the project's markdown files (README, REPRODUCTION, docs/, data/README) reaches its
//! file and heading.

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

/// The anchors GitHub gives a markdown file's headings: lower case, punctuation dropped,
/// spaces as hyphens, a repeated heading numbered from `-1`.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose_lines(text) {
        let Some(h) = line.strip_prefix('#') else {
            continue;
        };
        let title = h.trim_start_matches('#').trim();
        let base: String = title
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .flat_map(char::to_lowercase)
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut slug = base.clone();
        let mut n = 0;
        while !seen.insert(slug.clone()) {
            n += 1;
            slug = format!("{base}-{n}");
        }
    }
    seen
}

/// The lines outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// Link targets `](target)` of a markdown file outside code (fences and inline spans); targets
/// with a space are prose in brackets, not links.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for (i, _) in prose.match_indices("](") {
            let rest = &prose[i + 2..];
            if let Some(end) = rest.find(')') {
                let t = &rest[..end];
                if !t.contains(' ') && !t.contains("://") && !t.starts_with("mailto:") {
                    out.push(t.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn every_relative_link_of_the_docs_reaches_its_file_and_heading() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        root.join("README.md"),
        root.join("REPRODUCTION.md"),
        root.join("data/README.md"),
    ];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for t in link_targets(&text) {
            let (path, anchor) = t.split_once('#').unwrap_or((&t, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            assert!(
                target.exists(),
                "{}: link {t:?}: no file {target:?}",
                file.display()
            );
            if !anchor.is_empty() {
                let there = std::fs::read_to_string(&target).unwrap();
                assert!(
                    anchors(&there).contains(anchor),
                    "{}: link {t:?}: no heading with that anchor in {}",
                    file.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    // The README links into docs/ and back: a parser that found no link would pass vacuously.
    assert!(checked >= 20, "only {checked} links found");
}
