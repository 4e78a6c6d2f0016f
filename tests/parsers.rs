//! Issue 14, property tests of the parsers: arbitrary bytes and lines never panic and give a
//! value or an error naming the file and line (or field); round trips where a writer exists
//! return what was written. Parsers: Taste Profile triplets, HetRec user_artists, cold-start
//! history files (`recommend --history`), checkpoint headers, the dataset file's strings.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::Path;

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::data::dataset::{Dataset, SongMeta};
use ainrnn::data::hetrec::read_user_artists;
use ainrnn::data::triplets::{parse_line, read_triplets, Line};
use ainrnn::eval::run::read_history;
use ainrnn::io::h5::strings_from_offsets;
use ainrnn::model::checkpoint::{save, Checkpoint};
use ainrnn::model::{Model, ModelConfig, ModelKind};
use proptest::prelude::*;

/// Lines of arbitrary bytes (no line breaks inside), biased towards the fields' separators.
fn lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        2 => Just(b'\t'),
        1 => Just(b' '),
        2 => b'0'..=b'9',
        1 => Just(b'#'),
    ];
    prop::collection::vec(
        prop::collection::vec(byte, 0..24).prop_map(|mut l| {
            l.retain(|&b| b != b'\n' && b != b'\r');
            l
        }),
        0..12,
    )
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    for l in lines {
        bytes.extend_from_slice(l);
        bytes.push(b'\n');
    }
    std::fs::write(path, bytes).unwrap();
}

/// An id as the readers accept it: printable ASCII without spaces, tabs or `#` at the start.
fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]{1,12}"
}

/// `e` names `path` and a line in `1..=lines`.
fn names_a_line(e: &str, path: &Path, lines: usize) -> bool {
    let prefix = format!("{}:", path.display());
    let Some(rest) = e.strip_prefix(&prefix) else {
        return false;
    };
    let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
    n.parse::<usize>().is_ok_and(|n| (1..=lines).contains(&n))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn triplet_lines_parse_or_give_a_reason(line in prop::collection::vec(any::<u8>(), 0..64)) {
        match parse_line(&line) {
            Ok(Line::Triplet { user, song, plays }) => {
                prop_assert!(!user.is_empty() && !song.is_empty() && plays > 0);
                prop_assert!(line.iter().filter(|&&b| b == b'\t').count() == 2);
            }
            Ok(Line::Blank) | Ok(Line::Comment(_)) => {}
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn triplet_files_never_panic_and_strict_errors_name_the_line(lines in lines()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        write_lines(&p, &lines);
        let lenient = read_triplets(&p, false).unwrap();
        let r = &lenient.report;
        prop_assert_eq!(r.lines as usize, lines.len());
        prop_assert_eq!(r.accepted + r.blank + r.skipped + r.malformed, r.lines);
        match read_triplets(&p, true) {
            Ok(_) => prop_assert_eq!(r.malformed, 0),
            Err(e) => {
                let e = e.to_string();
                prop_assert!(r.malformed > 0);
                prop_assert!(names_a_line(&e, &p, lines.len()), "{}", e);
            }
        }
    }

    #[test]
    fn triplets_round_trip(rows in prop::collection::vec((id(), id(), 1u32..1_000_000), 1..20)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        let text: String = rows.iter().map(|(u, s, n)| format!("{u}\t{s}\t{n}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let t = read_triplets(&p, true).unwrap();
        let i = &t.interactions;
        // Every record, with duplicates (user, song) summed into the first.
        let mut want: HashMap<(&str, &str), f32> = HashMap::new();
        for (u, s, n) in &rows {
            *want.entry((u, s)).or_default() += *n as f32;
        }
        let mut got: HashMap<(&str, &str), f32> = HashMap::new();
        for u in 0..i.user_ids.len() {
            for r in i.indptr[u] as usize..i.indptr[u + 1] as usize {
                let key = (i.user_ids[u].as_str(), i.song_ids[i.indices[r] as usize].as_str());
                prop_assert!(got.insert(key, i.plays[r]).is_none());
            }
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn hetrec_files_never_panic_and_strict_errors_name_the_line(lines in lines()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("user_artists.dat");
        write_lines(&p, &lines);
        // A non-numeric line 1 is a header, and a header other than userID/artistID/weight is
        // an error even when not strict (it could swap the columns): named by file and line 1.
        let lenient = match read_user_artists(&p, false) {
            Ok(h) => h,
            Err(e) => {
                let e = e.to_string();
                prop_assert!(e.contains("user_artists.dat:1: the header is"), "{}", e);
                return Ok(());
            }
        };
        let r = &lenient.report;
        prop_assert_eq!(r.accepted + r.blank + r.skipped + r.malformed, r.lines);
        match read_user_artists(&p, true) {
            Ok(_) => prop_assert_eq!(r.malformed, 0),
            Err(e) => {
                let e = e.to_string();
                prop_assert!(names_a_line(&e, &p, lines.len()), "{}", e);
            }
        }
    }

    #[test]
    fn hetrec_round_trip(rows in prop::collection::vec((0u32..50, 0u32..50, 1u32..100_000), 1..20)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("user_artists.dat");
        let mut text = String::from("userID\tartistID\tweight\r\n");
        for (u, a, w) in &rows {
            text += &format!("{u}\t{a}\t{w}\r\n");
        }
        std::fs::write(&p, text).unwrap();
        let h = read_user_artists(&p, true).unwrap();
        let i = &h.interactions;
        let mut want: HashMap<(String, String), f32> = HashMap::new();
        for (u, a, w) in &rows {
            *want.entry((u.to_string(), a.to_string())).or_default() += *w as f32;
        }
        let mut got = HashMap::new();
        for u in 0..i.user_ids.len() {
            for r in i.indptr[u] as usize..i.indptr[u + 1] as usize {
                let key = (i.user_ids[u].clone(), i.song_ids[i.indices[r] as usize].clone());
                got.insert(key, i.plays[r]);
            }
        }
        prop_assert_eq!(got, want);
        prop_assert_eq!(h.report.skipped, 1, "the header line");
    }

    #[test]
    fn history_files_give_songs_or_an_error_naming_the_line(lines in lines()) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.txt");
        write_lines(&p, &lines);
        let ds = dataset(&["1", "22", "333"], &["u"]);
        match read_history(&p, &ds) {
            Ok((songs, plays)) => {
                prop_assert!(!songs.is_empty());
                prop_assert_eq!(songs.len(), plays.len());
                prop_assert!(songs.iter().all(|&s| s < 3));
                prop_assert!(plays.iter().all(|p| p.is_finite() && *p >= 1.0 && p.fract() == 0.0));
                let distinct: std::collections::HashSet<&u32> = songs.iter().collect();
                prop_assert_eq!(distinct.len(), songs.len(), "a song twice");
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(
                    names_a_line(&e, &p, lines.len())
                        || e.contains("no song ids in the history file"),
                    "{}", e
                );
                prop_assert!(e.contains("history.txt"), "{}", e);
            }
        }
    }

    #[test]
    fn history_round_trip(rows in prop::collection::vec((0usize..3, prop::option::of(1u32..1000)), 1..10)) {
        let ids = ["1", "22", "333"];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.txt");
        let text: String = rows
            .iter()
            .map(|(s, n)| match n {
                Some(n) => format!("{}\t{n}\n", ids[*s]),
                None => format!("{}\n", ids[*s]),
            })
            .collect();
        std::fs::write(&p, format!("# my history\n\n{text}")).unwrap();
        let (songs, plays) = read_history(&p, &dataset(&ids, &["u"])).unwrap();
        // A song listed again adds its plays to its first line (as prepare merges records).
        let (mut want_s, mut want_p) = (Vec::<u32>::new(), Vec::<f32>::new());
        for (s, n) in &rows {
            let p = n.map_or(1.0, |n| n as f32);
            match want_s.iter().position(|&x| x == *s as u32) {
                Some(i) => want_p[i] += p,
                None => {
                    want_s.push(*s as u32);
                    want_p.push(p);
                }
            }
        }
        prop_assert_eq!(songs, want_s);
        prop_assert_eq!(plays, want_p);
    }

    #[test]
    fn history_plays_are_whole_counts_as_prepare_takes(
        bad in prop::sample::select(vec!["0", "-3", "1.5", "1e-45", "nan", "inf", "1e3", "1000000000", "x"]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.txt");
        std::fs::write(&p, format!("1\t2\n22\t{bad}\n")).unwrap();
        let e = read_history(&p, &dataset(&["1", "22", "333"], &["u"])).unwrap_err().to_string();
        prop_assert!(e.contains("history.txt") && e.contains(":2:") && e.contains("play count"), "{}", e);
        std::fs::write(&p, "1\t2\textra\n").unwrap();
        let e = read_history(&p, &dataset(&["1", "22", "333"], &["u"])).unwrap_err().to_string();
        prop_assert!(e.contains("third field \"extra\""), "{}", e);
    }

    #[test]
    fn string_offsets_are_checked_before_use(
        bytes in prop::collection::vec(any::<u8>(), 0..40),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        change in prop::option::of((any::<prop::sample::Index>(), prop_oneof![0u64..48, any::<u64>()])),
    ) {
        // Valid offsets (0, sorted cuts, the byte count), then maybe one entry changed.
        let mut offsets: Vec<u64> = cuts.iter().map(|c| c.index(bytes.len() + 1) as u64).collect();
        offsets.sort();
        offsets.insert(0, 0);
        offsets.push(bytes.len() as u64);
        if let Some((i, v)) = change {
            let i = i.index(offsets.len());
            offsets[i] = v;
        }
        match strings_from_offsets(&bytes, &offsets) {
            Ok(v) => {
                prop_assert_eq!(v.len() + 1, offsets.len());
                prop_assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
                prop_assert_eq!(*offsets.last().unwrap(), bytes.len() as u64);
                let joined: Vec<u8> = v.concat().into_bytes();
                // Each string is its bytes (replaced only where a string is not valid UTF-8).
                let mut pieces = offsets.windows(2).map(|w| &bytes[w[0] as usize..w[1] as usize]);
                if pieces.all(|p| std::str::from_utf8(p).is_ok()) {
                    prop_assert_eq!(joined, bytes);
                }
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Every string the dataset stores (NULs, any Unicode, empty) comes back as written.
    #[test]
    fn dataset_round_trip_keeps_every_string(
        songs in prop::collection::vec(".{0,8}", 1..6),
        users in prop::collection::vec(".{0,8}", 1..4),
        title in ".{0,10}",
        source in ".{0,10}",
    ) {
        let song_ids: Vec<&str> = songs.iter().map(String::as_str).collect();
        let user_ids: Vec<&str> = users.iter().map(String::as_str).collect();
        let mut ds = dataset(&song_ids, &user_ids);
        ds.song_meta[0].title = title;
        ds.source = source;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.h5");
        ds.save(&p).unwrap();
        prop_assert_eq!(Dataset::load(&p).unwrap(), ds);
    }

    /// A checkpoint header of arbitrary bytes (a length prefix, then JSON-like text) or a valid
    /// checkpoint with arbitrary bytes after its prefix: an error naming the file, never a panic.
    #[test]
    fn checkpoint_headers_never_panic(
        len in prop_oneof![0u64..200, any::<u64>()],
        header in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(b'{'), Just(b'"'), Just(b':'), Just(b'}')], 0..160),
        cut in 0usize..400,
        flip in any::<(usize, u8)>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.ckpt");
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        std::fs::write(&p, &bytes).unwrap();
        if let Err(e) = Checkpoint::load(&p) {
            prop_assert!(e.to_string().contains("h.ckpt"), "{}", e);
        }
        // A real checkpoint's header, cut or with one byte changed.
        let good = checkpoint().to_vec();
        let mut bad = good[..cut.min(good.len())].to_vec();
        bad.extend_from_slice(&header);
        std::fs::write(&p, &bad).unwrap();
        let e = Checkpoint::load(&p).err().map(|e| e.to_string());
        prop_assert!(e.as_deref().is_some_and(|e| e.contains("h.ckpt")), "{:?}", e);
        let mut bad = good.clone();
        let i = 8 + flip.0 % (good.len() - 8).min(600);
        bad[i] = flip.1;
        std::fs::write(&p, &bad).unwrap();
        match Checkpoint::load(&p) {
            Ok(_) => prop_assert!(bad == good, "a changed header (byte {}) was accepted", i),
            Err(e) => prop_assert!(e.to_string().contains("h.ckpt"), "{}", e),
        }
    }
}

/// The bytes of a small valid checkpoint with metadata entries (written once per test process,
/// in a folder removed at once: a static's folder would outlive the process).
fn checkpoint() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.ckpt");
        let b = CpuBackend::new();
        let mut cfg = ModelConfig::new(ModelKind::Indrnn, 7);
        cfg.hidden = 4;
        cfg.layers = 1;
        cfg.emb = 3;
        cfg.max_history = 4;
        let m = Model::new(&b, cfg, None).unwrap();
        save(&b, &m, &[("note", &"round trip ✓")], &p).unwrap();
        std::fs::read(&p).unwrap()
    })
}

#[test]
fn checkpoint_round_trip_returns_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.ckpt");
    std::fs::write(&p, checkpoint()).unwrap();
    let ck = Checkpoint::load(&p).unwrap();
    assert_eq!(ck.config.hidden, 4);
    assert_eq!(ck.config.songs, 7);
    assert_eq!(ck.get::<String>("note").unwrap().unwrap(), "round trip ✓");
    let b = CpuBackend::new();
    let m = ck.restore(&b, None).unwrap();
    save(&b, &m, &[("note", &"round trip ✓")], &p).unwrap();
    let again = Checkpoint::load(&p).unwrap();
    assert_eq!(again.config, ck.config);
    assert_eq!(again.meta, ck.meta);
}

/// A consistent dataset with these song and user ids (one interaction per user, one fold).
fn dataset(songs: &[&str], users: &[&str]) -> Dataset {
    let n = users.len();
    Dataset {
        source: "test".into(),
        user_ids: users.iter().map(|s| s.to_string()).collect(),
        song_ids: songs.iter().map(|s| s.to_string()).collect(),
        song_meta: songs.iter().map(|_| SongMeta::unknown()).collect(),
        indptr: (0..=n as u64).collect(),
        indices: vec![0; n],
        plays: vec![1.0; n],
        folds: 1,
        user_fold: vec![0; n],
        visible: vec![true; n],
        portrait: common::blank_portraits(n, songs.len()),
        song_vectors: None,
        seed: 1,
        visible_share: 0.5,
        min_listens: 1,
        min_song_users: 1,
    }
}
