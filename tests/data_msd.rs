//! MSD readers against the real per-track files: field values checked against `h5dump` output
//! (written below) and against h5py/numpy values (tests/fixtures/data_reference.json, made by
//! scripts/make_data_fixtures.py); the summary and aggregate layouts on small files written here;
//! the subset CSV and term tables; every file of `data/bad/` as an MSD input.

use std::path::Path;

use ainrnn::data::catalog::Catalog;
use ainrnn::data::metadata;
use ainrnn::data::msd::{list_h5, read_msd, read_msd_file, segment_stats, MsdSong};
use ainrnn::data::terms::{GENRES, LANGUAGES};
use ainrnn::data::vectors;
use hdf5::types::FixedAscii;
use hdf5::H5Type;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/data_reference.json")).unwrap()
}

fn all(_: &str) -> bool {
    true
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        "{what}: got {a}, want {b}"
    );
}

fn one(path: &str) -> MsdSong {
    let mut v = read_msd_file(Path::new(path), &all).unwrap();
    assert_eq!(v.len(), 1, "{path}: a per-track file holds one song");
    v.remove(0)
}

#[test]
fn rick_astley_fields_match_h5dump() {
    // h5dump -d /analysis/songs, /metadata/songs, /musicbrainz/songs, /metadata/artist_terms
    // data/msd/TRAXLZU12903D05F94.h5 (hdf5-tools 1.10.8).
    let s = one("data/msd/TRAXLZU12903D05F94.h5");
    assert_eq!(s.song_id, "SOCWJDB12A58A776AF");
    assert_eq!(s.track_id, "TRAXLZU12903D05F94");
    assert_eq!(s.title, "Never Gonna Give You Up");
    assert_eq!(s.artist_name, "Rick Astley");
    assert_eq!(s.artist_id, "ARWPYQI1187FB4D55A");
    assert_eq!(s.artist_location, "Newton-le-Willows, Merseyside, England");
    assert_eq!(s.year, 1987);
    assert_eq!((s.key, s.mode), (1, 1));
    assert_eq!(s.tempo, 113.359);
    assert_eq!(s.loudness, -7.75);
    assert!((s.duration - 211.696).abs() < 5e-4, "{}", s.duration);
    let terms: Vec<&str> = s.terms.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        terms,
        [
            "dance pop",
            "rock",
            "pop",
            "england",
            "adult contemporary",
            "ballad",
            "club",
            "classic",
            "male",
            "cover",
            "soul",
            "80s"
        ]
    );
    // h5dump -d /metadata/artist_terms_weight: 1, 0.755904, 0.723343, ...
    assert_eq!(s.terms[0].1, 1.0);
    assert!((s.terms[1].1 - 0.755904).abs() < 1e-6);
    assert_eq!(s.mbtags.len(), 4);
    let seg = s.segments.as_ref().unwrap();
    assert_eq!(seg.segments, 935, "DATASPACE (935, 12)");
}

#[test]
fn segment_statistics_match_numpy() {
    let r = reference();
    // The reference generator read the same first timbre row that h5dump prints.
    let rick = r["msd"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["track_id"] == "TRAXLZU12903D05F94")
        .unwrap();
    let first: Vec<f64> = rick["timbre_first_row"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        first,
        [
            0.0, 171.13, 9.469, -28.48, 57.491, -50.067, 14.833, 5.359, -27.228, 0.973, -10.64,
            -7.228
        ]
    );
    for m in r["msd"].as_array().unwrap() {
        let file = m["file"].as_str().unwrap();
        let s = one(file);
        assert_eq!(s.song_id, m["song_id"].as_str().unwrap(), "{file}");
        assert_eq!(s.track_id, m["track_id"].as_str().unwrap(), "{file}");
        assert_eq!(s.title, m["title"].as_str().unwrap(), "{file}");
        assert_eq!(s.artist_name, m["artist_name"].as_str().unwrap(), "{file}");
        assert_eq!(s.artist_id, m["artist_id"].as_str().unwrap(), "{file}");
        assert_eq!(s.release, m["release"].as_str().unwrap(), "{file}");
        assert_eq!(s.year as i64, m["year"].as_i64().unwrap(), "{file}");
        assert_eq!(s.key as i64, m["key"].as_i64().unwrap(), "{file}");
        assert_eq!(s.mode as i64, m["mode"].as_i64().unwrap(), "{file}");
        assert_eq!(s.duration, m["duration"].as_f64().unwrap(), "{file}");
        assert_eq!(s.tempo, m["tempo"].as_f64().unwrap(), "{file}");
        assert_eq!(s.loudness, m["loudness"].as_f64().unwrap(), "{file}");
        let terms: Vec<&str> = s.terms.iter().map(|t| t.0.as_str()).collect();
        let want: Vec<&str> = m["terms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(terms, want, "{file}: terms by weight");
        let seg = s.segments.as_ref().unwrap();
        assert_eq!(seg.segments as i64, m["segments"].as_i64().unwrap());
        for (name, got) in [
            ("timbre_mean", &seg.timbre_mean),
            ("timbre_std", &seg.timbre_std),
            ("pitch_mean", &seg.pitch_mean),
            ("pitch_std", &seg.pitch_std),
        ] {
            for (i, w) in m[name].as_array().unwrap().iter().enumerate() {
                close(got[i], w.as_f64().unwrap(), &format!("{file} {name}[{i}]"));
            }
        }
        close(
            seg.loudness_max_mean,
            m["loudness_max_mean"].as_f64().unwrap(),
            file,
        );
        close(
            seg.loudness_max_std,
            m["loudness_max_std"].as_f64().unwrap(),
            file,
        );
        // The song vector starts with these statistics, in this order.
        let v = vectors::msd_row(&s);
        assert_eq!(v.len(), vectors::msd_names().len());
        assert_eq!(&v[..12], &seg.timbre_mean[..]);
        assert_eq!(&v[36..48], &seg.pitch_std[..]);
        assert_eq!(v[50], s.tempo);
        if s.year == 0 {
            assert!(v[56].is_nan(), "year 0 is missing");
        }
    }
}

#[test]
fn sonora_santanera_is_spanish_latin() {
    // No year (h5dump: 0), no location; terms salsa, cumbia, tejano.
    let s = one("data/msd/TRAAADZ128F9348C2E.h5");
    assert_eq!(s.year, 0);
    assert_eq!(s.artist_location, "");
    let mut c = Catalog::new();
    c.add_msd(s);
    let f = c.facts("SOXVLOJ12AB0189215");
    assert_eq!(LANGUAGES[f.language as usize], "spanish");
    assert_eq!(GENRES[f.genre.unwrap() as usize], "latin");
    assert_eq!(f.meta.genre, "salsa");
    let mut c = Catalog::new();
    c.add_msd(one("data/msd/TRAXLZU12903D05F94.h5"));
    let f = c.facts("SOCWJDB12A58A776AF");
    assert_eq!(LANGUAGES[f.language as usize], "english");
    assert_eq!(GENRES[f.genre.unwrap() as usize], "pop");
    assert_eq!(f.meta.genre, "dance pop");
    assert_eq!(f.meta.year, 1987);
}

#[test]
fn directory_tree_and_wanted_filter() {
    let files = list_h5(Path::new("data/msd")).unwrap();
    assert_eq!(files.len(), 5);
    let (songs, rep) = read_msd(Path::new("data/msd"), &all, true).unwrap();
    assert_eq!(songs.len(), 5);
    assert_eq!((rep.lines, rep.accepted, rep.malformed), (5, 5, 0));
    let (songs, _) = read_msd(
        Path::new("data/msd"),
        &|id| id == "SOCWJDB12A58A776AF",
        true,
    )
    .unwrap();
    assert_eq!(songs.len(), 1);
}

#[test]
fn bad_files_name_the_file_and_the_hdf5_error() {
    for f in [
        "truncated_10k.h5",
        "empty.wav",
        "not_audio.mp3",
        "truncated_5k.ogg",
    ] {
        let p = Path::new("data/bad").join(f);
        let e = read_msd_file(&p, &all).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("data/bad/{f}: HDF5 error: opening the file")),
            "{e}"
        );
        // HDF5's own reason for an HDF5 file; what the file is for the others.
        let why = if f.ends_with(".h5") {
            "unable to open file"
        } else {
            "not an HDF5 file"
        };
        assert!(e.contains(why), "{f}: {e}");
    }
    let e = read_msd_file(Path::new("data/bad/truncated_10k.h5"), &all)
        .unwrap_err()
        .to_string();
    assert!(e.contains("truncated file"), "{e}");

    // In a directory, a bad file is reported and skipped; with strict it stops the run.
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("A/B");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(
        "data/msd/TRAXLZU12903D05F94.h5",
        sub.join("TRAXLZU12903D05F94.h5"),
    )
    .unwrap();
    std::fs::copy("data/bad/truncated_10k.h5", sub.join("TRBAD.h5")).unwrap();
    let (songs, rep) = read_msd(dir.path(), &all, false).unwrap();
    assert_eq!(songs.len(), 1);
    assert_eq!((rep.lines, rep.accepted, rep.malformed), (2, 1, 1));
    assert!(
        rep.examples[0].reason.contains("TRBAD.h5: HDF5 error"),
        "{:?}",
        rep.examples
    );
    let e = read_msd(dir.path(), &all, true).unwrap_err().to_string();
    assert!(e.contains("TRBAD.h5"), "{e}");

    // An HDF5 file that is not an MSD file names the missing table.
    let p = dir.path().join("other.h5");
    hdf5::File::create(&p).unwrap().create_group("x").unwrap();
    let e = read_msd_file(&p, &all).unwrap_err().to_string();
    assert!(e.contains("field /metadata/songs"), "{e}");
}

#[derive(H5Type, Clone, Copy)]
#[repr(C)]
struct Meta {
    song_id: FixedAscii<32>,
    title: FixedAscii<64>,
    artist_name: FixedAscii<64>,
    artist_id: FixedAscii<32>,
    artist_location: FixedAscii<64>,
    release: FixedAscii<64>,
    genre: FixedAscii<16>,
    idx_artist_terms: i32,
}

#[derive(H5Type, Clone, Copy)]
#[repr(C)]
struct Ana {
    track_id: FixedAscii<32>,
    duration: f64,
    tempo: f64,
    loudness: f64,
    key: i32,
    mode: i32,
    idx_segments_timbre: i32,
    idx_segments_pitches: i32,
    idx_segments_loudness_max: i32,
}

#[derive(H5Type, Clone, Copy)]
#[repr(C)]
struct Mb {
    idx_artist_mbtags: i32,
    year: i32,
}

fn fa<const N: usize>(s: &str) -> FixedAscii<N> {
    FixedAscii::from_ascii(s).unwrap()
}

fn tables(f: &hdf5::File, n: usize, seg_idx: &[i32], term_idx: &[i32]) {
    let meta: Vec<Meta> = (0..n)
        .map(|i| Meta {
            song_id: fa(&format!("SOTEST{i:012}")),
            title: fa(&format!("Title {i}")),
            artist_name: fa("Artist"),
            artist_id: fa(&format!("ARTEST{i}")),
            artist_location: fa("Paris, France"),
            release: fa("Release"),
            genre: fa(""),
            idx_artist_terms: term_idx[i],
        })
        .collect();
    let ana: Vec<Ana> = (0..n)
        .map(|i| Ana {
            track_id: fa(&format!("TRTEST{i:012}")),
            duration: 100.0 + i as f64,
            tempo: 120.0,
            loudness: -5.0,
            key: i as i32,
            mode: 1,
            idx_segments_timbre: seg_idx[i],
            idx_segments_pitches: seg_idx[i],
            idx_segments_loudness_max: seg_idx[i],
        })
        .collect();
    let mb: Vec<Mb> = (0..n)
        .map(|i| Mb {
            idx_artist_mbtags: 0,
            year: 2000 + i as i32,
        })
        .collect();
    f.create_group("metadata").unwrap();
    f.create_group("analysis").unwrap();
    f.create_group("musicbrainz").unwrap();
    f.new_dataset_builder()
        .with_data(&meta)
        .create("metadata/songs")
        .unwrap();
    f.new_dataset_builder()
        .with_data(&ana)
        .create("analysis/songs")
        .unwrap();
    f.new_dataset_builder()
        .with_data(&mb)
        .create("musicbrainz/songs")
        .unwrap();
}

#[test]
fn summary_file_layout_has_no_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("msd_summary_file.h5");
    {
        let f = hdf5::File::create(&p).unwrap();
        tables(&f, 3, &[0, 0, 0], &[0, 0, 0]);
    }
    let songs = read_msd_file(&p, &all).unwrap();
    assert_eq!(songs.len(), 3);
    assert_eq!(songs[2].song_id, "SOTEST000000000002");
    assert_eq!(songs[2].track_id, "TRTEST000000000002");
    assert_eq!(songs[2].title, "Title 2");
    assert_eq!(songs[2].year, 2002);
    assert_eq!(songs[2].key, 2);
    assert_eq!(songs[1].duration, 101.0);
    assert!(songs
        .iter()
        .all(|s| s.segments.is_none() && s.terms.is_empty()));
    let picked = read_msd_file(&p, &|id| id.ends_with('1')).unwrap();
    assert_eq!(picked.len(), 1);
    // No segment statistics: those columns are NaN in the raw vector, the scalars are there.
    let v = vectors::msd_row(&songs[0]);
    assert!(v[..50].iter().all(|x| x.is_nan()));
    assert_eq!(v[50], 120.0);
}

#[test]
fn aggregate_file_arrays_are_split_by_offsets() {
    // Two songs in one file: 3 and 2 segments, 2 and 1 terms, concatenated as in MSD aggregates.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("A.h5");
    let timbre: Vec<f64> = (0..5 * 12).map(|i| (i * 7 % 11) as f64 - 3.0).collect();
    let pitches: Vec<f64> = (0..5 * 12).map(|i| (i % 13) as f64 / 13.0).collect();
    let lmax = [-10.0, -20.0, -30.0, -1.0, -3.0];
    {
        let f = hdf5::File::create(&p).unwrap();
        tables(&f, 2, &[0, 3], &[0, 2]);
        f.new_dataset::<f64>()
            .shape((5, 12))
            .create("analysis/segments_timbre")
            .unwrap()
            .write_raw(&timbre)
            .unwrap();
        f.new_dataset::<f64>()
            .shape((5, 12))
            .create("analysis/segments_pitches")
            .unwrap()
            .write_raw(&pitches)
            .unwrap();
        f.new_dataset_builder()
            .with_data(&lmax[..])
            .create("analysis/segments_loudness_max")
            .unwrap();
        let terms: Vec<FixedAscii<32>> = vec![fa("french pop"), fa("chanson"), fa("rock")];
        f.new_dataset_builder()
            .with_data(&terms)
            .create("metadata/artist_terms")
            .unwrap();
        f.new_dataset_builder()
            .with_data(&[0.5f64, 1.0, 1.0][..])
            .create("metadata/artist_terms_weight")
            .unwrap();
    }
    let songs = read_msd_file(&p, &all).unwrap();
    assert_eq!(songs.len(), 2);
    let a = songs[0].segments.as_ref().unwrap();
    let b = songs[1].segments.as_ref().unwrap();
    assert_eq!((a.segments, b.segments), (3, 2));
    assert_eq!(*a, segment_stats(&timbre[..36], &pitches[..36], &lmax[..3]));
    assert_eq!(*b, segment_stats(&timbre[36..], &pitches[36..], &lmax[3..]));
    assert_eq!(b.loudness_max_mean, -2.0);
    assert_eq!(b.loudness_max_std, 1.0);
    // Terms sorted by weight: chanson (1.0) before french pop (0.5).
    let t0: Vec<&str> = songs[0].terms.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(t0, ["chanson", "french pop"]);
    assert_eq!(songs[1].terms.len(), 1);
}

#[test]
fn subset_csv_and_term_tables() {
    let (songs, rep) =
        metadata::read_subset_csv(Path::new("data/msd/subset_10k.csv"), true).unwrap();
    // data/README.md: 10,000 rows, 10,000 song ids, 10,000 track ids.
    assert_eq!(songs.len(), 10_000);
    assert_eq!(rep.malformed, 0);
    let ids: std::collections::HashSet<&str> = songs.iter().map(|s| s.song_id.as_str()).collect();
    assert_eq!(ids.len(), 10_000);
    // Row 2 of the CSV (quoted location with a comma).
    let b = songs
        .iter()
        .find(|s| s.track_id == "TRAAABD128F429CF47")
        .unwrap();
    assert_eq!(b.song_id, "SOCIWDW12A8C13D406");
    assert_eq!(b.artist_name, "The Box Tops");
    assert_eq!(b.artist_location, "Memphis, TN");
    assert_eq!(b.tempo, 121.274);
    assert_eq!(b.key, 6);
    // Agrees with the HDF5 file of the same track.
    let h = one("data/msd/TRAAABD128F429CF47.h5");
    assert_eq!(
        (h.song_id.as_str(), h.title.as_str(), h.year),
        (b.song_id.as_str(), b.title.as_str(), b.year)
    );
    assert!((h.duration - b.duration).abs() < 1e-4);

    let (terms, rep) =
        metadata::read_artist_terms(Path::new("data/msd/subset_artist_term.csv"), "t", true)
            .unwrap();
    assert_eq!(rep.accepted, 97_493);
    assert_eq!(terms.len(), 3_885);
    // Same order as the HDF5 file (by weight).
    let rick: Vec<&str> = terms["ARWPYQI1187FB4D55A"]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(&rick[..4], ["dance pop", "rock", "pop", "england"]);
    let (tags, rep) =
        metadata::read_artist_terms(Path::new("data/msd/subset_artist_mbtag.csv"), "t", true)
            .unwrap();
    assert_eq!(rep.accepted, 3_809);
    assert_eq!(tags.len(), 1_091);
}

#[test]
fn malformed_csv_rows_are_reported_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.csv");
    std::fs::write(
        &p,
        "\u{feff}song_id,track_id,title,artist_name,tempo\nSO1,TR1,\"A, b\",X,100\nSO2,TR2,t\nSO3,TR3,t,a,fast\nSO4,TR4,t,a,90\n",
    )
    .unwrap();
    let (songs, rep) = metadata::read_subset_csv(&p, false).unwrap();
    assert_eq!(songs.len(), 2);
    assert_eq!(songs[0].title, "A, b");
    assert_eq!(rep.malformed, 2);
    assert_eq!(rep.examples[0].line, 3);
    assert!(
        rep.examples[0]
            .reason
            .contains("expected 5 fields, found 3"),
        "{:?}",
        rep.examples
    );
    assert_eq!(rep.examples[1].line, 4);
    assert!(rep.examples[1].reason.contains("tempo is not a number"));
    let e = metadata::read_subset_csv(&p, true).unwrap_err().to_string();
    assert!(e.contains("m.csv:3:"), "{e}");
    std::fs::write(&p, "a,b\n1,2\n").unwrap();
    let e = metadata::read_subset_csv(&p, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("field song_id"), "{e}");
}

#[test]
fn damaged_array_shapes_do_not_size_allocations() {
    // One song whose segment arrays claim 2 Mi rows (chunked, never written: a small file), as a
    // damaged header would: an error naming the field, not a 200 MB read.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("B.h5");
    {
        let f = hdf5::File::create(&p).unwrap();
        tables(&f, 1, &[0], &[0]);
        for name in ["analysis/segments_timbre", "analysis/segments_pitches"] {
            f.new_dataset::<f64>()
                .chunk((1024, 12))
                .shape((2 << 20, 12))
                .create(name)
                .unwrap();
        }
        f.new_dataset::<f64>()
            .chunk(1024)
            .shape(2 << 20)
            .create("analysis/segments_loudness_max")
            .unwrap();
    }
    assert!(std::fs::metadata(&p).unwrap().len() < 1 << 20);
    let e = read_msd_file(&p, &all).unwrap_err().to_string();
    assert!(
        e.contains("field /analysis/segments_timbre: song 0 claims 2097152 rows"),
        "{e}"
    );
}

/// Values whose squares overflow (from ~1e155) must not zero a song-vector column: z-scored,
/// 1e160, 2e160, 3e160 are -1.22, 0, 1.22 like 1, 2, 3.
#[test]
fn huge_values_keep_their_song_vector_column() {
    let block = vectors::Block {
        tag: "msd",
        names: vec!["big".into(), "max".into(), "small".into()],
        rows: vec![
            Some(vec![1e160, f64::MAX, 1.0]),
            Some(vec![2e160, 0.0, 2.0]),
            Some(vec![3e160, -f64::MAX, 3.0]),
        ],
    };
    let v = vectors::assemble(3, vec![block]).unwrap();
    assert_eq!(v.dim, 3);
    let z = 1.5f64.sqrt() as f32;
    for j in 0..3 {
        let col: Vec<f32> = (0..3).map(|s| v.values[s * 3 + j]).collect();
        let want = if j == 1 { [z, 0.0, -z] } else { [-z, 0.0, z] };
        for (g, w) in col.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "column {}: {col:?}", v.names[j]);
        }
    }
}

/// Implausible MSD values (tempo 1e308, a timbre of 1e308, year 99999999999, tempo 1e20) are
/// taken as unknown and counted per field with the first place, in HDF5 files and the CSV.
#[test]
fn implausible_values_are_unknown_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("msd");
    std::fs::create_dir(&folder).unwrap();
    let p = folder.join("A.h5");
    let mut timbre: Vec<f64> = (0..4 * 12).map(|i| (i % 7) as f64).collect();
    timbre[2 * 12 + 3] = 1e308; // song 1's first segment
    {
        let f = hdf5::File::create(&p).unwrap();
        tables(&f, 3, &[0, 2, 3], &[0, 0, 0]);
        let ds = f.dataset("analysis/songs").unwrap();
        let mut ana = ds.read_raw::<Ana>().unwrap();
        ana[0].tempo = 1e308;
        ds.write_raw(&ana).unwrap();
        let ds = f.dataset("musicbrainz/songs").unwrap();
        let mut mb = ds.read_raw::<Mb>().unwrap();
        mb[2].year = 99_999;
        ds.write_raw(&mb).unwrap();
        for name in ["analysis/segments_timbre", "analysis/segments_pitches"] {
            let v: Vec<f64> = if name.ends_with("timbre") {
                timbre.clone()
            } else {
                vec![0.5; 48]
            };
            f.new_dataset::<f64>()
                .shape((4, 12))
                .create(name)
                .unwrap()
                .write_raw(&v)
                .unwrap();
        }
        f.new_dataset_builder()
            .with_data(&[-10.0f64, -9.0, -8.0, -7.0][..])
            .create("analysis/segments_loudness_max")
            .unwrap();
    }
    let (songs, rep) = read_msd(&folder, &all, true).unwrap();
    assert!(songs[0].tempo.is_nan() && songs[0].segments.is_some());
    assert!(songs[1].segments.is_none() && songs[1].tempo == 120.0);
    assert_eq!((songs[2].year, songs[0].year), (0, 2000));
    let fields: Vec<(&str, usize)> = rep.implausible.iter().map(|i| (i.field, i.count)).collect();
    assert_eq!(
        fields,
        [("tempo", 1), ("segments_timbre mean/std", 1), ("year", 1)]
    );
    let notes = rep.notes().join("\n");
    assert!(
        notes.contains("1 tempo value outside (0, 500] BPM taken as unknown")
            && notes.contains("A.h5, song SOTEST000000000000: 1e308"),
        "{notes}"
    );
    // The vector of song 0 keeps its other values; tempo is missing (NaN), not 1e308.
    assert!(vectors::msd_row(&songs[0])[50].is_nan());

    let csv = dir.path().join("m.csv");
    std::fs::write(
        &csv,
        "song_id,track_id,title,artist_name,tempo,year,loudness\nSO1,TR1,t,a,1e20,1999,-5\nSO2,TR2,t,a,90,99999999999,-5\nSO3,TR3,t,a,0,0,inf\nSO4,TR4,t,a,95,2001,-6\n",
    )
    .unwrap();
    let (songs, rep) = metadata::read_subset_csv(&csv, true).unwrap();
    assert_eq!(songs.len(), 4, "implausible values do not reject a row");
    assert!(songs[0].tempo.is_nan() && songs[0].year == 1999);
    assert_eq!((songs[1].year, songs[1].tempo), (0, 90.0));
    assert!(songs[2].loudness.is_nan() && songs[2].tempo == 0.0);
    let notes = rep.notes().join("\n");
    for want in [
        "m.csv: 1 tempo value outside (0, 500] BPM taken as unknown (first: line 2, song SO1: 1e20)",
        "m.csv: 1 year value outside [1860, 2100] taken as unknown (first: line 3, song SO2: 99999999999)",
        "m.csv: 1 loudness value outside [-100, 10] dB taken as unknown (first: line 4, song SO3: inf)",
    ] {
        assert!(notes.contains(want), "{want:?} in {notes}");
    }
}

/// In an artist table, a quote left open on line 2 swallows the lines after it: reported on
/// line 2 as such, naming line 4's bad UTF-8 inside; a bad byte in a normal record is reported
/// on its own line, not on the line where an earlier record started.
#[test]
fn term_table_problems_name_their_line_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("badterms.csv");
    std::fs::write(
        &p,
        b"AR1,rock\nAR2,\"pop\nAR3,jazz\nAR4,\xff\xfe\nAR5,folk\n",
    )
    .unwrap();
    let (map, rep) = metadata::read_artist_terms(&p, "t", false).unwrap();
    assert_eq!(map.len(), 1);
    assert_eq!(rep.examples.len(), 1);
    let m = &rep.examples[0];
    assert_eq!(m.line, 2);
    assert!(
        m.reason
            .contains("a quote opened on this line is not closed on it: lines 2 to 5")
            && m.reason.contains("line 4 in it is also not valid UTF-8"),
        "{m:?}"
    );
    // The subset CSV: a title over two lines whose second line has a bad byte.
    let csv = dir.path().join("m.csv");
    std::fs::write(
        &csv,
        b"song_id,track_id,title,artist_name\nS1,T1,\"Two\nlines \xff\",a\nS2,T2,t,b\n",
    )
    .unwrap();
    let (songs, rep) = metadata::read_subset_csv(&csv, false).unwrap();
    assert_eq!(songs.len(), 1);
    let m = &rep.examples[0];
    assert_eq!(
        (m.line, m.reason.as_str()),
        (3, "not valid UTF-8 (field 3)")
    );
}
