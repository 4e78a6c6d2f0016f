//! The streaming triplet reader on the bundled real files, the malformed-triplets fixture, every
//! file of `data/bad/` read as triplets, and property tests of the line parser.

use std::io::Cursor;
use std::path::Path;

use ainrnn::data::hetrec;
use ainrnn::data::lines::{self, LineReader};
use ainrnn::data::progress::Progress;
use ainrnn::data::triplets::{parse_line, read_triplets, read_triplets_from, Line};
use proptest::prelude::*;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/data_reference.json")).unwrap()
}

fn from_bytes(b: &[u8]) -> ainrnn::data::triplets::TripletFile {
    read_triplets_from(
        LineReader::new(Cursor::new(b.to_vec())),
        Path::new("mem.txt"),
        false,
        &Progress::hidden(),
    )
    .unwrap()
}

#[test]
fn dev_and_small_counts_match_the_reference() {
    let r = reference();
    for (file, key) in [
        ("data/taste/triplets_dev.txt", "triplets_dev"),
        ("data/taste/triplets_small.txt", "triplets_small"),
    ] {
        let t = read_triplets(Path::new(file), true).unwrap();
        let x = &t.interactions;
        let want = &r[key];
        assert_eq!(x.users() as u64, want["users"].as_u64().unwrap(), "{file}");
        assert_eq!(x.songs() as u64, want["songs"].as_u64().unwrap(), "{file}");
        assert_eq!(
            x.len() as u64,
            want["interactions"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(
            x.total_plays() as u64,
            want["plays"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(t.report.malformed, 0);
        assert_eq!(x.duplicates_merged, 0);
        assert!(t.synthetic.is_none());
    }
    // data/README.md: 29,243 rows, 7,519 users, 1,866 songs, 327,994 plays.
    let t = read_triplets(Path::new("data/taste/triplets_dev.txt"), false).unwrap();
    assert_eq!(
        (
            t.interactions.len(),
            t.interactions.users(),
            t.interactions.songs()
        ),
        (29_243, 7_519, 1_866)
    );
}

#[test]
fn history_keeps_file_order() {
    // The first two lines of triplets_dev.txt belong to one user, in this order.
    let t = read_triplets(Path::new("data/taste/triplets_dev.txt"), false).unwrap();
    let x = &t.interactions;
    assert_eq!(x.user_ids[0], "a3f5db66731126b173610095b831a216a0e27da4");
    let r = x.row(0);
    assert_eq!(
        x.song_ids[x.indices[r.start] as usize],
        "SODAMJC12A6D4F9E2F"
    );
    assert_eq!(x.plays[r.start], 771.0);
    assert_eq!(
        x.song_ids[x.indices[r.start + 1] as usize],
        "SOUPVWK12A6310EF7A"
    );
    assert_eq!(x.plays[r.start + 1], 1.0);
}

#[test]
fn malformed_fixture_gives_3_triplets_and_4_rejected_lines() {
    let path = Path::new("data/bad/triplets_malformed.txt");
    let t = read_triplets(path, false).unwrap();
    let x = &t.interactions;
    assert_eq!(x.len(), 3);
    assert_eq!(x.user_ids, ["fd50c4007b68a3737fe052d5a4f78ce8aa117f3d"]);
    let got: Vec<(&str, f32)> = x
        .indices
        .iter()
        .zip(&x.plays)
        .map(|(&s, &p)| (x.song_ids[s as usize].as_str(), p))
        .collect();
    assert_eq!(
        got,
        [
            ("SOBONKR12A58A7A7E0", 1.0),
            ("SOEGIYH12A6D4FC0E3", 2.0),
            ("SOXLOQG12AF72A2D55", 7.0)
        ]
    );
    let rep = &t.report;
    assert_eq!(rep.lines, 10);
    assert_eq!(rep.accepted, 3);
    assert_eq!(rep.malformed, 4);
    assert_eq!(rep.blank, 3, "lines 4, 8 (spaces) and 10");
    let lines: Vec<usize> = rep.examples.iter().map(|m| m.line).collect();
    assert_eq!(lines, [3, 5, 6, 7]);
    assert!(rep.examples[0]
        .reason
        .contains("expected 3 tab-separated fields"));
    assert!(rep.examples[0].reason.contains("found 2"));
    assert!(
        rep.examples[1].reason.contains("not an integer") && rep.examples[1].reason.contains("abc")
    );
    assert!(rep.examples[2].reason.contains("positive") && rep.examples[2].reason.contains("-3"));
    assert!(rep.examples[3].reason.contains("4 or more"));
    let text = rep.render_problems();
    assert!(
        text.contains("data/bad/triplets_malformed.txt:3: expected 3"),
        "{text}"
    );
}

#[test]
fn strict_mode_stops_at_the_first_bad_line() {
    let e = read_triplets(Path::new("data/bad/triplets_malformed.txt"), true).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("data/bad/triplets_malformed.txt:3: expected 3 tab-separated fields"),
        "{msg}"
    );
    assert!(msg.contains("--strict"), "{msg}");
}

#[test]
fn every_bad_file_read_as_triplets_is_reported_not_a_panic() {
    // empty.wav: nothing at all; the others: binary or prose, rejected line by line.
    let t = read_triplets(Path::new("data/bad/empty.wav"), false).unwrap();
    assert_eq!((t.report.lines, t.interactions.len()), (0, 0));
    for f in ["not_audio.mp3", "truncated_5k.ogg", "truncated_10k.h5"] {
        let p = Path::new("data/bad").join(f);
        let t = read_triplets(&p, false).unwrap();
        assert_eq!(t.interactions.len(), 0, "{f}");
        assert!(t.report.malformed > 0, "{f}");
        assert_eq!(
            t.report.malformed + t.report.blank + t.report.skipped,
            t.report.lines
        );
        for m in &t.report.examples {
            assert!(m.line >= 1 && !m.reason.is_empty(), "{f}: {m:?}");
        }
        let e = read_triplets(&p, true).unwrap_err().to_string();
        assert!(e.contains(f), "the error names the file: {e}");
    }
    let binary = read_triplets(Path::new("data/bad/truncated_5k.ogg"), false).unwrap();
    assert!(binary
        .report
        .examples
        .iter()
        .any(|m| m.reason.contains("UTF-8")));
}

#[test]
fn missing_file_names_the_path() {
    let e = read_triplets(Path::new("data/taste/nope.txt"), false).unwrap_err();
    assert!(e.to_string().starts_with("data/taste/nope.txt: "), "{e}");
}

#[test]
fn users_split_over_the_file_are_gathered_and_duplicates_merged() {
    let t = from_bytes(b"u1\ts1\t1\nu2\ts2\t2\nu1\ts3\t3\nu1\ts1\t4\n");
    let x = &t.interactions;
    assert_eq!(x.user_ids, ["u1", "u2"]);
    assert_eq!(x.indptr, [0, 2, 3]);
    assert_eq!(x.indices, [0, 2, 1]);
    assert_eq!(x.plays, [5.0, 3.0, 2.0]);
    assert_eq!(x.duplicates_merged, 1);
}

#[test]
fn synthetic_header_is_recognised() {
    let t = from_bytes(b"# synthetic test header\nu\ts\t1\n");
    assert_eq!(t.synthetic.as_deref(), Some("synthetic test header"));
    assert_eq!(t.report.skipped, 1);
    let t = from_bytes(b"u\ts\t1\n# synthetic late\n");
    assert!(
        t.synthetic.is_none(),
        "only a header before the data counts"
    );
}

#[test]
fn hetrec_counts_crlf_and_header() {
    let r = reference();
    let h = hetrec::read_user_artists(Path::new("data/hetrec/user_artists.dat"), true).unwrap();
    let x = &h.interactions;
    let want = &r["hetrec"];
    assert_eq!(x.users() as u64, want["users"].as_u64().unwrap());
    assert_eq!(x.songs() as u64, want["songs"].as_u64().unwrap());
    assert_eq!(x.len() as u64, want["interactions"].as_u64().unwrap());
    assert_eq!(x.total_plays() as u64, want["plays"].as_u64().unwrap());
    // data/README.md: 74,261 rows, 1,512 users, 15,354 artists, total weight 55,842,091.
    assert_eq!((x.len(), x.users(), x.songs()), (74_261, 1_512, 15_354));
    assert_eq!(h.report.skipped, 1, "the header line");
    assert_eq!(
        (x.user_ids[0].as_str(), x.song_ids[0].as_str(), x.plays[0]),
        ("2", "51", 13883.0)
    );
    let (names, rep) = hetrec::read_artists(Path::new("data/hetrec/artists.dat"), true).unwrap();
    assert_eq!(names.len(), 17_632);
    assert_eq!(rep.malformed, 0);
    assert_eq!(names["1"], "MALICE MIZER");
    assert!(x.song_ids.iter().all(|a| names.contains_key(a)));
}

#[test]
fn line_reader_handles_bom_crlf_and_no_final_newline() {
    let mut r = lines::from_reader(&b"\xEF\xBB\xBFa\r\nb"[..]);
    assert_eq!(r.next_line().unwrap(), Some((1, &b"a"[..])));
    assert_eq!(r.next_line().unwrap(), Some((2, &b"b"[..])));
    assert_eq!(r.next_line().unwrap(), None);
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{1,40}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bytes never panic the parser or the reader, and every line is accounted for.
    #[test]
    fn random_bytes_are_accounted_for(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        for line in bytes.split(|&b| b == b'\n') {
            let _ = parse_line(line);
        }
        let t = from_bytes(&bytes);
        let r = &t.report;
        prop_assert_eq!(r.accepted + r.blank + r.skipped + r.malformed, r.lines);
        prop_assert_eq!(r.accepted, t.interactions.len() + t.interactions.duplicates_merged as usize);
        prop_assert_eq!(r.bytes, bytes.len() as u64);
    }

    /// Well-formed triplets (any spacing, CRLF or LF) are parsed back exactly.
    #[test]
    fn valid_lines_round_trip(
        rows in proptest::collection::vec((id(), id(), 1u32..1_000_000_000), 1..50),
        crlf in any::<bool>(),
    ) {
        let mut text = String::new();
        for (u, s, c) in &rows {
            text.push_str(&format!("{u}\t{s}\t{c}{}", if crlf { "\r\n" } else { "\n" }));
        }
        for (line, (u, s, c)) in text.lines().zip(&rows) {
            let line = line.trim_end_matches('\r');
            prop_assert_eq!(parse_line(line.as_bytes()), Ok(Line::Triplet { user: u, song: s, plays: *c }));
        }
        let t = from_bytes(text.as_bytes());
        prop_assert_eq!(t.report.accepted, rows.len());
        prop_assert_eq!(t.report.malformed, 0);
        let total: f64 = rows.iter().map(|r| r.2 as f64).sum();
        prop_assert!((t.interactions.total_plays() - total).abs() <= total * 1e-6);
    }

    /// Lines broken in one of the ways real files are broken are rejected with a reason.
    #[test]
    fn malformed_lines_are_rejected(
        u in id(), s in id(),
        kind in 0..8usize,
        junk in "[a-z]{1,5}",
        n in 1u32..1000,
    ) {
        let line = match kind {
            0 => format!("{u}\t{s}"),
            1 => format!("{u}\t{s}\t{n}\t{junk}"),
            2 => format!("{u}\t{s}\t{junk}"),
            3 => format!("{u}\t{s}\t-{n}"),
            4 => format!("{u}\t{s}\t0"),
            5 => format!("\t{s}\t{n}"),
            6 => format!("{u} {junk}\t{s}\t{n}"),
            _ => format!("{u}\t{s}\t{n}.5"),
        };
        let r = parse_line(line.as_bytes());
        prop_assert!(r.is_err(), "{line:?} was accepted: {r:?}");
        let t = from_bytes(format!("{line}\n{u}\t{s}\t{n}\n").as_bytes());
        prop_assert_eq!(t.report.malformed, 1);
        prop_assert_eq!(&t.report.examples[0].line, &1);
        prop_assert_eq!(t.interactions.len(), 1);
    }
}
