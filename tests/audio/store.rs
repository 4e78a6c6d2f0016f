//! The feature store: round trip, resume, atomic writes, merge, sharding.

use ainrnn::audio::job::{parse_shard, shard_of};
use ainrnn::audio::store::{
    list_tracks, merge, read_song_table, read_track, segments_dir, AttrValue, SongTable,
    StoreWriter, TrackRecord,
};

fn record(stem: &str, v: f32) -> TrackRecord {
    TrackRecord {
        stem: stem.into(),
        datasets: vec![
            ("mfcc".into(), vec![2, 3], vec![v, 1.0, 2.0, 3.0, 4.0, 5.0]),
            ("hfc".into(), vec![3], vec![7.0, 8.0, v]),
        ],
        attrs: vec![
            ("sample_rate".into(), AttrValue::U(22050)),
            ("seconds".into(), AttrValue::F(1.5)),
            ("source_file".into(), AttrValue::S(format!("{stem}.wav"))),
            ("song_vector".into(), AttrValue::FV(vec![v, 2.0 * v])),
        ],
    }
}

/// File names in `dir`, sorted.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn names() -> Vec<String> {
    vec!["a".into(), "b".into()]
}

#[test]
fn round_trip_resume_and_atomicity() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.h5");
    let mut w = StoreWriter::open(&out, names()).unwrap();
    w.write(&record("zeta", 1.0)).unwrap();
    w.write(&record("alpha", 2.0)).unwrap();
    assert!(!out.exists(), "nothing at the output before finish");
    assert_eq!(w.finish().unwrap(), 2);
    assert_eq!(
        entries(dir.path()),
        ["f.h5", "f.h5.d"],
        "the store and its segments"
    );
    assert_eq!(
        entries(&segments_dir(&out)),
        ["seg-000001.h5"],
        "no temporary left"
    );

    let r = read_track(&out, "zeta").unwrap();
    assert_eq!(
        r.dataset("mfcc").unwrap(),
        (&[2usize, 3][..], &[1.0f32, 1.0, 2.0, 3.0, 4.0, 5.0][..])
    );
    assert_eq!(r.attr("sample_rate"), Some(&AttrValue::U(22050)));
    assert_eq!(
        r.attr("source_file"),
        Some(&AttrValue::S("zeta.wav".into()))
    );
    let SongTable {
        ids,
        names: n,
        values: v,
        dim,
    } = read_song_table(&out).unwrap();
    assert_eq!(ids, ["alpha", "zeta"]);
    assert_eq!((n, dim), (names(), 2));
    assert_eq!(v, [2.0, 4.0, 1.0, 2.0]);

    // Resume: existing tracks are known, new ones are added, /songs is rebuilt.
    let mut w = StoreWriter::open(&out, names()).unwrap();
    assert!(w.contains("zeta") && w.contains("alpha"));
    w.write(&record("mid", 3.0)).unwrap();
    // Dropped without commit or finish: the output is untouched and the temporary removed.
    drop(w);
    assert_eq!(list_tracks(&out).unwrap(), ["alpha", "zeta"]);
    assert_eq!(entries(dir.path()), ["f.h5", "f.h5.d"]);
    assert_eq!(entries(&segments_dir(&out)), ["seg-000001.h5"]);
    let mut w = StoreWriter::open(&out, names()).unwrap();
    w.write(&record("mid", 3.0)).unwrap();
    w.finish().unwrap();
    assert_eq!(read_song_table(&out).unwrap().ids, ["alpha", "mid", "zeta"]);

    // Other song-vector columns are refused rather than mixed.
    let e = StoreWriter::open(&out, vec!["x".into()]).err().unwrap();
    assert!(e.to_string().contains("columns"), "{e}");
    // A song vector of the wrong length is refused.
    let mut w = StoreWriter::open(&out, names()).unwrap();
    let mut bad = record("bad", 1.0);
    bad.attrs
        .push(("song_vector".into(), AttrValue::FV(vec![1.0])));
    bad.attrs
        .retain(|a| a.0 != "song_vector" || matches!(&a.1, AttrValue::FV(v) if v.len() == 1));
    assert!(w.write(&bad).is_err());
}

#[test]
fn merge_keeps_first_and_rebuilds_songs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, m) = (
        dir.path().join("a.h5"),
        dir.path().join("b.h5"),
        dir.path().join("m.h5"),
    );
    let mut w = StoreWriter::open(&a, names()).unwrap();
    w.write(&record("one", 1.0)).unwrap();
    w.write(&record("two", 2.0)).unwrap();
    w.finish().unwrap();
    let mut w = StoreWriter::open(&b, names()).unwrap();
    w.write(&record("two", 9.0)).unwrap();
    w.write(&record("three", 3.0)).unwrap();
    w.finish().unwrap();
    let s = merge(&[a.clone(), b.clone()], &m).unwrap();
    assert_eq!((s.tracks, s.added, s.duplicates.len()), (3, 3, 1));
    let SongTable { ids, values: v, .. } = read_song_table(&m).unwrap();
    assert_eq!(ids, ["one", "three", "two"]);
    assert_eq!(
        &v[4..],
        &[2.0, 4.0],
        "the first store's copy of a duplicate is kept"
    );
    assert_eq!(
        read_track(&m, "three").unwrap().dataset("hfc").unwrap().1,
        &[7.0, 8.0, 3.0]
    );
    // Not a feature store: a clear error naming the file.
    let e = merge(&[root_bad()], &dir.path().join("x.h5")).unwrap_err();
    assert!(e.to_string().contains("truncated_10k.h5"), "{e}");
}

fn root_bad() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/bad/truncated_10k.h5")
}

#[test]
fn shards_partition_the_inputs() {
    assert_eq!(parse_shard("3/8"), Ok((3, 8)));
    for bad in ["8/8", "1", "a/2", "0/0"] {
        assert!(parse_shard(bad).is_err(), "{bad}");
    }
    let e = parse_shard("0/4294967296").unwrap_err();
    assert!(e.contains("N is larger than 4294967295"), "{e}");
    assert!(parse_shard("x/2")
        .unwrap_err()
        .contains("I is not a whole number"));
    let stems: Vec<String> = (0..1000).map(|i| format!("track{i:04}")).collect();
    let mut counts = [0usize; 4];
    for s in &stems {
        let k = shard_of(s, 4);
        assert_eq!(k, shard_of(s, 4), "deterministic");
        counts[k as usize] += 1;
    }
    assert_eq!(counts.iter().sum::<usize>(), 1000);
    assert!(counts.iter().all(|&c| c > 200), "roughly even: {counts:?}");
}

/// The README states the song-vector width and its parts; they must be the code's: the
/// features pipeline's vector with the default scattering stage (what `features` and the demo
/// write).
#[test]
fn readme_song_vector_width_is_the_codes() {
    use ainrnn::audio::features::vector_names;
    use ainrnn::audio::scattering::Stage;
    let first_order = Stage::new(Default::default()).unwrap().first_order();
    let d = vector_names(first_order).len();
    let without = vector_names(0).len();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let stated = format!("The **song vector** (D = {d}");
    assert!(readme.contains(&stated), "README must say {stated:?}");
    let parts =
        format!("{without} without scattering, plus {first_order} first-order scattering means");
    assert!(readme.contains(&parts), "README must say {parts:?}");
}

/// (inode, modification time, length) of a file; outside Unix the inode is not read (0).
fn identity(p: &std::path::Path) -> (u64, std::time::SystemTime, u64) {
    let m = std::fs::metadata(p).unwrap();
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    (ino, m.modified().unwrap(), m.len())
}

#[test]
fn committed_batches_survive_a_lost_run_and_appending_copies_no_track_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.h5");
    let segs = segments_dir(&out);
    let mut w = StoreWriter::open(&out, names()).unwrap();
    w.write(&record("a", 1.0)).unwrap();
    w.commit().unwrap();
    w.write(&record("b", 2.0)).unwrap();
    // The run dies here (no finish, no drop: as after SIGKILL), leaving the batch in progress
    // as a temporary of a dead process.
    std::mem::forget(w);
    assert!(!out.exists());
    let dead = segs.join(".seg-000002.h5.4000000.tmp.h5");
    let temps: Vec<String> = entries(&segs)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    std::fs::rename(segs.join(&temps[0]), &dead).unwrap();
    let mut w = StoreWriter::open(&out, names()).unwrap();
    assert!(!dead.exists(), "a dead run's temporary is removed");
    assert!(
        w.contains("a") && !w.contains("b"),
        "the committed batch is kept"
    );
    w.write(&record("b", 2.0)).unwrap();
    assert_eq!(w.finish().unwrap(), 2);
    assert_eq!(read_song_table(&out).unwrap().ids, ["a", "b"]);
    assert_eq!(entries(&segs), ["seg-000001.h5", "seg-000002.h5"]);

    // Appending: the segments holding track data are neither rewritten nor copied.
    let before: Vec<_> = entries(&segs)
        .iter()
        .map(|n| identity(&segs.join(n)))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut w = StoreWriter::open(&out, names()).unwrap();
    w.write(&record("c", 3.0)).unwrap();
    assert_eq!(w.finish().unwrap(), 3);
    let after: Vec<_> = ["seg-000001.h5", "seg-000002.h5"]
        .iter()
        .map(|n| identity(&segs.join(n)))
        .collect();
    assert_eq!(before, after, "old segments untouched");
    assert_eq!(
        entries(&segs),
        ["seg-000001.h5", "seg-000002.h5", "seg-000003.h5"]
    );
    let t = read_song_table(&out).unwrap();
    assert_eq!(t.ids, ["a", "b", "c"]);
    assert_eq!(t.values, [1.0, 2.0, 2.0, 4.0, 3.0, 6.0]);
    assert_eq!(
        read_track(&out, "a").unwrap().dataset("hfc").unwrap().1,
        &[7.0, 8.0, 1.0]
    );
    // The store and its folder can move together (links are relative).
    let moved = dir.path().join("sub");
    std::fs::create_dir(&moved).unwrap();
    std::fs::rename(&out, moved.join("f.h5")).unwrap();
    std::fs::rename(&segs, moved.join("f.h5.d")).unwrap();
    assert_eq!(
        read_track(&moved.join("f.h5"), "c")
            .unwrap()
            .dataset("hfc")
            .unwrap()
            .1,
        &[7.0, 8.0, 3.0]
    );
}

#[test]
fn a_version_1_store_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.h5");
    crate::common::write_version_1_store(&old);
    for e in [
        StoreWriter::open(&old, names()).err().unwrap().to_string(),
        list_tracks(&old).unwrap_err().to_string(),
    ] {
        assert!(
            e.contains("old.h5") && e.contains("version 1") && e.contains("new --output"),
            "{e}"
        );
    }
}
