//! `prepare` end to end on the bundled data: filter counts against an independent Python
//! implementation (tests/fixtures/data_reference.json), the dataset file round trip and its
//! checks, folds (disjoint, balanced, deterministic), splits, portraits, profiles, the join of
//! audio vectors from a features.h5 written here, HetRec.

use std::collections::HashSet;
use std::path::Path;

use ainrnn::data::hetrec;
use ainrnn::data::prepare::{filter, prepare, Input, PrepareOptions};
use ainrnn::data::profiles::read_profiles;
use ainrnn::data::triplets::read_triplets;
use ainrnn::data::{DataError, Dataset};
use ainrnn::io::h5::write_array;
use hdf5::types::VarLenUnicode;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("fixtures/data_reference.json")).unwrap()
}

fn quiet(_: &str) {}

fn dev_options(out: &Path) -> PrepareOptions {
    let mut o = PrepareOptions::new(
        Input::Triplets("data/taste/triplets_dev.txt".into()),
        out.to_path_buf(),
    );
    o.msd = Some("data/msd".into());
    o.metadata = Some("data/msd/subset_10k.csv".into());
    o.profiles = Some("data/portrait/lastfm360k_profile_sample.tsv".into());
    o
}

fn steps_of(v: &Value) -> Vec<[usize; 3]> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let a = s.as_array().unwrap();
            [0, 1, 2].map(|i| a[i].as_u64().unwrap() as usize)
        })
        .collect()
}

#[test]
fn filter_counts_after_each_step_match_the_reference() {
    let r = reference();
    let inputs = [
        (
            "triplets_dev",
            read_triplets(Path::new("data/taste/triplets_dev.txt"), true)
                .unwrap()
                .interactions,
        ),
        (
            "triplets_small",
            read_triplets(Path::new("data/taste/triplets_small.txt"), true)
                .unwrap()
                .interactions,
        ),
        (
            "hetrec",
            hetrec::read_user_artists(Path::new("data/hetrec/user_artists.dat"), true)
                .unwrap()
                .interactions,
        ),
    ];
    for (key, x) in inputs {
        for case in r["filters"][key].as_array().unwrap() {
            let (l, s) = (
                case["min_listens"].as_u64().unwrap() as u32,
                case["min_song_users"].as_u64().unwrap() as u32,
            );
            let (out, steps) = filter(x.clone(), l, s);
            let got: Vec<[usize; 3]> = steps
                .iter()
                .map(|s| [s.users, s.songs, s.interactions])
                .collect();
            assert_eq!(
                got,
                steps_of(case),
                "{key} min_listens={l} min_song_users={s}"
            );
            let last = got.last().unwrap();
            assert_eq!([out.users(), out.songs(), out.len()], *last);
            // The result satisfies both minimums.
            let mut per_song = vec![0usize; out.songs()];
            for u in 0..out.users() {
                assert!(out.row(u).len() >= l as usize);
                for r in out.row(u) {
                    per_song[out.indices[r] as usize] += 1;
                }
            }
            assert!(per_song.iter().all(|&c| c >= s as usize));
            // Dropped counts add up.
            for (i, st) in steps.iter().enumerate() {
                let prev = if i == 0 {
                    [x.users(), x.songs(), x.len()]
                } else {
                    got[i - 1]
                };
                assert_eq!(prev[0] - st.users_dropped, st.users);
                assert_eq!(prev[1] - st.songs_dropped, st.songs);
                assert_eq!(prev[2] - st.interactions_dropped, st.interactions);
            }
        }
    }
}

#[test]
fn filter_keeps_ids_history_order_and_plays() {
    let x = read_triplets(Path::new("data/taste/triplets_dev.txt"), true)
        .unwrap()
        .interactions;
    let (y, _) = filter(x.clone(), 2, 2);
    let song_pos: std::collections::HashMap<&str, usize> = x
        .song_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let user_pos: std::collections::HashMap<&str, usize> = x
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let kept: HashSet<&str> = y.song_ids.iter().map(String::as_str).collect();
    for u in 0..y.users() {
        let xu = user_pos[y.user_ids[u].as_str()];
        // y's history = x's history restricted to kept songs, same order, same plays.
        let want: Vec<(&str, f32)> = x
            .row(xu)
            .filter(|&r| kept.contains(x.song_ids[x.indices[r] as usize].as_str()))
            .map(|r| (x.song_ids[x.indices[r] as usize].as_str(), x.plays[r]))
            .collect();
        let got: Vec<(&str, f32)> = y
            .row(u)
            .map(|r| (y.song_ids[y.indices[r] as usize].as_str(), y.plays[r]))
            .collect();
        assert_eq!(got, want);
    }
    // Users and songs keep their relative order (dense ids in order of first appearance).
    assert!(y
        .user_ids
        .windows(2)
        .all(|w| user_pos[w[0].as_str()] < user_pos[w[1].as_str()]));
    assert!(song_pos.contains_key(y.song_ids[0].as_str()));
}

#[test]
fn prepare_dev_round_trip_folds_and_portraits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dev.h5");
    let rep = prepare(&dev_options(&out), &mut quiet).unwrap();
    let d = Dataset::load(&out).unwrap();

    // Counts: the fixed point of the filters from the reference.
    assert_eq!(
        (d.users(), d.songs(), d.interactions()),
        (5_586, 1_209, 26_701)
    );
    assert_eq!(
        (rep.stats.users, rep.stats.songs, rep.stats.interactions),
        (5_586, 1_209, 26_701)
    );
    assert_eq!(
        rep.stats.plays,
        d.plays.iter().map(|&p| p as u64).sum::<u64>()
    );
    assert_eq!(rep.read.interactions, 29_243);
    assert_eq!(d.source, "taste-profile");
    assert_eq!(
        (
            d.folds,
            d.seed,
            d.visible_share,
            d.min_listens,
            d.min_song_users
        ),
        (10, 42, 0.5, 2, 2)
    );

    // Round trip: saving the loaded dataset and loading it again gives the same value.
    let again = dir.path().join("again.h5");
    d.save(&again).unwrap();
    assert_eq!(Dataset::load(&again).unwrap(), d);
    assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp")));

    // Metadata: every dev song is in the subset CSV (data/README.md).
    assert_eq!(rep.joins.songs_with_record, 1_209);
    assert_eq!(
        rep.joins.songs_with_segments, 1,
        "only Rick Astley has a per-track file"
    );
    let rick = d
        .song_ids
        .iter()
        .position(|s| s == "SOCWJDB12A58A776AF")
        .unwrap();
    assert_eq!(d.song_meta[rick].title, "Never Gonna Give You Up");
    assert_eq!(d.song_meta[rick].artist, "Rick Astley");
    assert_eq!(d.song_meta[rick].genre, "dance pop");
    assert_eq!(d.song_meta[rick].track_id, "TRAXLZU12903D05F94");
    assert_eq!(d.song_meta[rick].year, 1987);
    let v = d.song_vectors.as_ref().unwrap();
    assert_eq!(v.source, "msd");
    // Only Rick Astley has segment statistics: one value per column, 0 for every song once
    // z-scored. Those 50 columns carry nothing and are dropped (issue 16: they used to be kept,
    // all zero), and the report says so; the 7 CSV columns remain.
    assert_eq!(
        v.names,
        ["tempo", "loudness", "duration", "key_sin", "key_cos", "mode", "year"],
        "the segment statistics of a single song are dropped"
    );
    assert_eq!(v.dim, 7);
    for (j, name) in v.names.iter().enumerate() {
        let first = v.values[j];
        assert!(
            (0..d.songs()).any(|s| v.values[s * v.dim + j] != first),
            "column {name} is the same for every song"
        );
    }
    assert!(rep
        .notes
        .iter()
        .any(|n| n.starts_with("song vectors: 50 columns dropped")));
    assert!(v.present.iter().all(|&p| p));
    // z-scored: loudness is known for every song, so mean 0 and variance 1; tempo is 0 (unknown)
    // for a few songs, which get the column mean 0, so the variance is a little below 1.
    let column = |name: &str| -> (f64, f64) {
        let j = v.names.iter().position(|n| n == name).unwrap();
        let col: Vec<f64> = (0..d.songs())
            .map(|s| v.values[s * v.dim + j] as f64)
            .collect();
        let mean = col.iter().sum::<f64>() / col.len() as f64;
        let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / col.len() as f64;
        (mean, var)
    };
    let (m, var) = column("loudness");
    assert!(
        m.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
        "loudness: mean {m} var {var}"
    );
    let (m, var) = column("tempo");
    assert!(
        m.abs() < 1e-5 && var < 1.0 && var > 0.99,
        "tempo: mean {m} var {var}"
    );

    // Portraits: profile ids do not join Taste-Profile ids, and the report says so.
    assert_eq!(rep.joins.profiles_read, Some(1_000));
    assert_eq!(rep.joins.users_with_profile, Some(0));
    assert!(rep
        .notes
        .iter()
        .any(|n| n.contains("0 of 5586 users matched") && n.contains("another id space")));
    assert!(d.portrait.age_bucket.iter().all(|&a| a == 0));
    assert_eq!(d.portrait.age_bucket_names[0], "unknown");
    assert_eq!(d.portrait.language_names[0], "unknown");
    let g = d.portrait.genre_names.len();
    assert_eq!(g, 18);
    for u in 0..d.users() {
        let row = &d.portrait.genre_dist[u * g..(u + 1) * g];
        let sum: f32 = row.iter().sum();
        assert!(sum == 0.0 || (sum - 1.0).abs() < 1e-5, "user {u}: {sum}");
    }
    let english = d
        .portrait
        .language_names
        .iter()
        .position(|n| n == "english")
        .unwrap() as u16;
    let n_en = d
        .portrait
        .language
        .iter()
        .filter(|&&l| l == english)
        .count();
    assert!(
        n_en > d.users() / 2,
        "most dev users listen to English-language songs: {n_en}"
    );

    // Folds: a partition of the users, balanced, each fold's split consistent with the CSR.
    let mut seen = vec![0u32; d.users()];
    for f in 0..d.folds {
        let s = d.split(f);
        assert_eq!(s.train_users.len() + s.test_users.len(), d.users());
        assert!(s.test_users.len() == 558 || s.test_users.len() == 559);
        for (i, &u) in s.test_users.iter().enumerate() {
            seen[u as usize] += 1;
            let (songs, plays) = d.history(u as usize);
            let (vis, held) = (&s.visible[i], &s.held_out[i]);
            assert_eq!(vis.0.len() + held.0.len(), songs.len());
            assert_eq!(
                vis.0.len(),
                ainrnn::data::folds::visible_count(songs.len(), 0.5)
            );
            assert!(
                !held.0.is_empty() && !vis.0.is_empty(),
                "every kept user has >= 2 songs"
            );
            // Disjoint, together the history, each in history order with its plays.
            let mut merged: Vec<(u32, f32)> =
                vis.0.iter().copied().zip(vis.1.iter().copied()).collect();
            merged.extend(held.0.iter().copied().zip(held.1.iter().copied()));
            let mut want: Vec<(u32, f32)> =
                songs.iter().copied().zip(plays.iter().copied()).collect();
            merged.sort_by_key(|a| a.0);
            want.sort_by_key(|a| a.0);
            assert_eq!(merged, want);
            let pos = |x: u32| songs.iter().position(|&y| y == x).unwrap();
            assert!(vis.0.windows(2).all(|w| pos(w[0]) < pos(w[1])));
            assert!(held.0.windows(2).all(|w| pos(w[0]) < pos(w[1])));
        }
    }
    assert!(
        seen.iter().all(|&c| c == 1),
        "every user is a test user exactly once"
    );
}

#[test]
fn folds_are_deterministic_and_depend_on_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: u64, name: &str| {
        let mut o = PrepareOptions::new(
            Input::Triplets("data/taste/triplets_small.txt".into()),
            dir.path().join(name),
        );
        o.min_listens = 1;
        o.min_song_users = 1;
        o.seed = seed;
        prepare(&o, &mut quiet).unwrap();
        Dataset::load(&dir.path().join(name)).unwrap()
    };
    let a = run(7, "a.h5");
    let b = run(7, "b.h5");
    let c = run(8, "c.h5");
    assert_eq!(a.user_fold, b.user_fold);
    assert_eq!(a.visible, b.visible);
    assert_ne!(a.user_fold, c.user_fold);
    assert_ne!(a.visible, c.visible);
    assert_eq!(
        (a.users(), a.songs(), a.interactions()),
        (153, 1_798, 2_023)
    );
    // A single-song user (min_listens 1) is visible only, with nothing held out.
    let trip = dir.path().join("one.txt");
    std::fs::write(&trip, "solo\tS1\t4\nduo\tS1\t1\nduo\tS2\t2\n").unwrap();
    let mut o = PrepareOptions::new(Input::Triplets(trip), dir.path().join("one.h5"));
    o.min_listens = 1;
    o.min_song_users = 1;
    o.folds = 2;
    prepare(&o, &mut quiet).unwrap();
    let d = Dataset::load(&dir.path().join("one.h5")).unwrap();
    let solo = d.user_ids.iter().position(|u| u == "solo").unwrap() as u32;
    let s = d.split(d.user_fold[solo as usize]);
    let i = s.test_users.iter().position(|&u| u == solo).unwrap();
    assert_eq!(s.visible[i], (vec![0], vec![4.0]));
    assert_eq!(s.held_out[i], (vec![], vec![]));
}

#[test]
fn version_and_layout_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.h5");
    let mut o = PrepareOptions::new(
        Input::Triplets("data/taste/triplets_small.txt".into()),
        out.clone(),
    );
    o.min_listens = 1;
    o.min_song_users = 1;
    prepare(&o, &mut quiet).unwrap();

    // An older version (variable-length strings, never read), then an unknown one.
    {
        let f = hdf5::File::open_rw(&out).unwrap();
        f.attr("version").unwrap().write_scalar(&1u32).unwrap();
    }
    let e = Dataset::load(&out).unwrap_err().to_string();
    assert!(
        e.contains("field version: written by an older ainrnn (format 1); run prepare again"),
        "{e}"
    );
    {
        let f = hdf5::File::open_rw(&out).unwrap();
        f.attr("version").unwrap().write_scalar(&99u32).unwrap();
    }
    let e = Dataset::load(&out).unwrap_err().to_string();
    assert!(
        e.contains("field version: unsupported dataset version 99"),
        "{e}"
    );

    // Not a dataset file.
    let e = Dataset::load(Path::new("data/msd/TRAXLZU12903D05F94.h5"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("field format"), "{e}");
    let e = Dataset::load(Path::new("data/bad/truncated_10k.h5"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("data/bad/truncated_10k.h5: HDF5 error"),
        "{e}"
    );

    // Inconsistent arrays.
    prepare(&o, &mut quiet).unwrap();
    {
        let f = hdf5::File::open_rw(&out).unwrap();
        f.unlink("folds/user_fold").unwrap();
        write_array(&f, "folds/user_fold", &[0u32, 1], &[2]).unwrap();
    }
    let e = Dataset::load(&out).unwrap_err().to_string();
    assert!(e.contains("field /folds/user_fold: has 2 values"), "{e}");
    prepare(&o, &mut quiet).unwrap();
    {
        let f = hdf5::File::open_rw(&out).unwrap();
        f.unlink("interactions/indices").unwrap();
        let bad = vec![99_999u32; 2_023];
        write_array(&f, "interactions/indices", &bad, &[2_023]).unwrap();
    }
    let e = Dataset::load(&out).unwrap_err().to_string();
    assert!(
        e.contains("field /interactions/indices: entry 0 is song 99999"),
        "{e}"
    );

    // Damaged bytes (the checksum no longer matches), and a string list whose offsets point
    // outside its bytes (with a matching checksum): errors naming the field, no crash.
    prepare(&o, &mut quiet).unwrap();
    {
        let f = hdf5::File::open_rw(&out).unwrap();
        let ds = f.dataset("interactions/plays").unwrap();
        let mut v = ds.read_raw::<f32>().unwrap();
        v[7] += 1.0;
        ds.write_raw(&v).unwrap();
    }
    let e = Dataset::load(&out).unwrap_err().to_string();
    assert!(
        e.contains("field /interactions/plays: checksum mismatch: the file is damaged"),
        "{e}"
    );
    prepare(&o, &mut quiet).unwrap();
    {
        let f = hdf5::File::open_rw(&out).unwrap();
        f.unlink("users/ids_offsets").unwrap();
        let mut off: Vec<u64> = (0..=153).collect();
        off[5] = 1 << 40;
        write_array(&f, "users/ids_offsets", &off, &[154]).unwrap();
    }
    let e = Dataset::load(&out).unwrap_err().to_string();
    assert!(
        e.contains(
            "field /users/ids: /users/ids_offsets: must start at 0 and end at the byte count"
        ),
        "{e}"
    );
    prepare(&o, &mut quiet).unwrap();
    {
        let f = hdf5::File::open_rw(&out).unwrap();
        let n = f.dataset("users/ids").unwrap().size() as u64;
        f.unlink("users/ids_offsets").unwrap();
        let mut off: Vec<u64> = (0..=153).collect();
        off[5] = 1 << 40;
        off[153] = n;
        write_array(&f, "users/ids_offsets", &off, &[154]).unwrap();
    }
    let e = Dataset::load(&out).unwrap_err().to_string();
    assert!(
        e.contains(
            "field /users/ids: /users/ids_offsets: string 4 ends at 1099511627776, past the"
        ),
        "{e}"
    );

    // Saving refuses an inconsistent value.
    prepare(&o, &mut quiet).unwrap();
    let mut d = Dataset::load(&out).unwrap();
    d.plays.pop();
    let e = d.save(&dir.path().join("x.h5")).unwrap_err().to_string();
    assert!(e.contains("/interactions/plays"), "{e}");
    assert!(!dir.path().join("x.h5").exists());
}

/// The small triplets prepared with the subset metadata (song vectors for some songs, not all):
/// a good file, which loads, for the value checks below to damage one field of.
fn small_with_vectors(dir: &Path) -> (std::path::PathBuf, Dataset) {
    let out = dir.join("good.h5");
    let mut o = PrepareOptions::new(
        Input::Triplets("data/taste/triplets_small.txt".into()),
        out.clone(),
    );
    o.min_listens = 1;
    o.min_song_users = 1;
    o.metadata = Some("data/msd/subset_10k.csv".into());
    prepare(&o, &mut quiet).unwrap();
    let d = Dataset::load(&out).unwrap();
    let v = d.song_vectors.as_ref().unwrap();
    assert!(v.present.contains(&true) && v.present.contains(&false));
    (out, d)
}

/// A copy of `good` (as `bad.h5`) whose dataset `name` is `edit` of its values, same shape, with
/// a matching `fnv1a64` attribute, as a tool writing the README's schema (h5py) would: only a
/// check of the values can refuse it.
fn with_edit<T: hdf5::H5Type + bytemuck::Pod>(
    good: &Path,
    name: &str,
    edit: impl FnOnce(&mut [T]),
) -> std::path::PathBuf {
    let bad = good.with_file_name("bad.h5");
    std::fs::copy(good, &bad).unwrap();
    let f = hdf5::File::open_rw(&bad).unwrap();
    let ds = f.dataset(name).unwrap();
    let shape = ds.shape();
    let mut v = ds.read_raw::<T>().unwrap();
    drop(ds);
    edit(&mut v);
    f.unlink(name).unwrap();
    write_array(&f, name, &v, &shape).unwrap();
    bad
}

/// Loads `path`, which must fail with an error naming the file and saying `what`.
fn refused(path: &Path, what: &str) {
    let e = Dataset::load(path).unwrap_err().to_string();
    assert!(
        e.starts_with(path.to_str().unwrap()) && e.contains(what),
        "expected {what:?}, got: {e}"
    );
}

/// A user with at least two interactions, and the first of them.
fn user_with_two(d: &Dataset) -> (usize, usize) {
    let u = (3..d.users()).find(|&u| d.history(u).0.len() >= 2).unwrap();
    (u, d.indptr[u] as usize)
}

#[test]
fn load_refuses_plays_that_are_not_a_positive_finite_count() {
    let dir = tempfile::tempdir().unwrap();
    let (good, d) = small_with_vectors(dir.path());
    let (u, i) = user_with_two(&d);
    let i = i + 1;
    for (bad, shown) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (-3.0, "-3"),
        (0.0, "0"),
    ] {
        let p = with_edit(&good, "interactions/plays", |v: &mut [f32]| v[i] = bad);
        refused(
            &p,
            &format!(
                "field /interactions/plays: user {u}, entry {i}: {shown} plays; a play count must be finite and above 0"
            ),
        );
    }
    // A fractional weight is a positive count still.
    let p = with_edit(&good, "interactions/plays", |v: &mut [f32]| v[i] = 0.5);
    assert_eq!(Dataset::load(&p).unwrap().plays[i], 0.5);
}

#[test]
fn load_refuses_a_song_twice_in_one_history() {
    let dir = tempfile::tempdir().unwrap();
    let (good, d) = small_with_vectors(dir.path());
    let (u, i) = user_with_two(&d);
    let s = d.indices[i];
    let p = with_edit(&good, "interactions/indices", |v: &mut [u32]| {
        v[i + 1] = v[i]
    });
    refused(
        &p,
        &format!(
            "field /interactions/indices: user {u} has song {s} twice (entries {i} and {})",
            i + 1
        ),
    );
    // The same song in two users' histories is fine (the bundled data has many).
    let mut users_of = vec![0usize; d.songs()];
    d.indices.iter().for_each(|&s| users_of[s as usize] += 1);
    assert!(users_of.iter().any(|&n| n > 1));
}

#[test]
fn load_refuses_flags_other_than_0_or_1() {
    let dir = tempfile::tempdir().unwrap();
    let (good, d) = small_with_vectors(dir.path());
    let (u, i) = user_with_two(&d);
    let p = with_edit(&good, "folds/visible", |v: &mut [u8]| v[i + 1] = 2);
    refused(
        &p,
        &format!(
            "field /folds/visible: user {u}, entry {}: 2 is not a flag (0 or 1)",
            i + 1
        ),
    );
    let p = with_edit(&good, "song_vectors/present", |v: &mut [u8]| v[4] = 255);
    refused(
        &p,
        "field /song_vectors/present: song 4: 255 is not a flag (0 or 1)",
    );
}

#[test]
fn load_refuses_genre_shares_out_of_their_domain() {
    let dir = tempfile::tempdir().unwrap();
    let (good, d) = small_with_vectors(dir.path());
    let g = d.portrait.genre_names.len();
    let (u, c) = (7, 2);
    let name = &d.portrait.genre_names[c];
    for (bad, shown) in [(f32::NAN, "NaN"), (1.5, "1.5"), (-0.25, "-0.25")] {
        let p = with_edit(&good, "portrait/genre_dist", |v: &mut [f32]| {
            v[u * g + c] = bad
        });
        refused(
            &p,
            &format!(
                "field /portrait/genre_dist: user {u}, genre {c} ({name}): {shown} is not a share in [0, 1]"
            ),
        );
    }
    let row = |v: &mut [f32], shares: &[f32]| {
        v[u * g..(u + 1) * g].fill(0.0);
        v[u * g..u * g + shares.len()].copy_from_slice(shares);
    };
    let p = with_edit(&good, "portrait/genre_dist", |v: &mut [f32]| {
        row(v, &[0.25, 0.25])
    });
    refused(
        &p,
        &format!(
            "field /portrait/genre_dist: user {u}: the shares sum to 0.5, expected 1 (or all 0"
        ),
    );
    // A distribution that sums to 1 loads.
    let p = with_edit(&good, "portrait/genre_dist", |v: &mut [f32]| {
        row(v, &[0.25, 0.75])
    });
    assert_eq!(
        Dataset::load(&p).unwrap().portrait.genre_dist[u * g + 1],
        0.75
    );
}

#[test]
fn load_refuses_song_vectors_not_finite_or_set_without_a_vector() {
    let dir = tempfile::tempdir().unwrap();
    let (good, d) = small_with_vectors(dir.path());
    let v = d.song_vectors.as_ref().unwrap();
    let with = v.present.iter().position(|&p| p).unwrap();
    let without = v.present.iter().position(|&p| !p).unwrap();
    let c = v.dim - 1;
    let name = &v.names[c];
    for (bad, shown) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let p = with_edit(&good, "song_vectors/values", |x: &mut [f32]| {
            x[with * v.dim + c] = bad
        });
        refused(
            &p,
            &format!(
                "field /song_vectors/values: song {with}, column {c} ({name}): {shown} is not finite; a missing value is stored as 0"
            ),
        );
    }
    let p = with_edit(&good, "song_vectors/values", |x: &mut [f32]| {
        x[without * v.dim + c] = 0.5
    });
    refused(
        &p,
        &format!(
            "field /song_vectors/values: song {without}, column {c} ({name}): 0.5 but the song has no vector (/song_vectors/present is 0)"
        ),
    );
}

#[test]
fn dataset_file_is_readable_as_plain_hdf5() {
    // The layout the model and evaluation rely on, read without Dataset::load.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.h5");
    let mut o = PrepareOptions::new(
        Input::Triplets("data/taste/triplets_small.txt".into()),
        out.clone(),
    );
    o.min_listens = 1;
    o.min_song_users = 1;
    prepare(&o, &mut quiet).unwrap();
    let f = hdf5::File::open(&out).unwrap();
    let fmt = f.attr("format").unwrap().read_raw::<u8>().unwrap();
    assert_eq!(fmt, b"ainrnn-dataset");
    assert_eq!(f.attr("version").unwrap().read_scalar::<u32>().unwrap(), 3);
    assert_eq!(f.attr("folds").unwrap().read_scalar::<u32>().unwrap(), 10);
    assert_eq!(f.attr("seed").unwrap().read_scalar::<u64>().unwrap(), 42);
    let indptr = f
        .dataset("interactions/indptr")
        .unwrap()
        .read_raw::<u64>()
        .unwrap();
    assert_eq!(indptr.len(), 154);
    assert_eq!(*indptr.last().unwrap(), 2_023);
    assert_eq!(
        f.dataset("portrait/genre_dist").unwrap().shape(),
        vec![153, 18]
    );
    assert_eq!(f.dataset("folds/visible").unwrap().shape(), vec![2_023]);
    let songs = f.dataset("songs/ids_offsets").unwrap().shape()[0] - 1;
    assert_eq!(
        f.dataset("portrait/song_genre").unwrap().shape(),
        vec![songs]
    );
    assert_eq!(
        f.dataset("portrait/song_language").unwrap().shape(),
        vec![songs]
    );
    // Strings: UTF-8 bytes and offsets [n + 1].
    let off = f
        .dataset("users/ids_offsets")
        .unwrap()
        .read_raw::<u64>()
        .unwrap();
    let bytes = f.dataset("users/ids").unwrap().read_raw::<u8>().unwrap();
    assert_eq!(off.len(), 154);
    assert_eq!(off[153] as usize, bytes.len());
    let first = std::str::from_utf8(&bytes[off[0] as usize..off[1] as usize]).unwrap();
    assert_eq!(first.len(), 40, "{first}"); // Taste Profile user ids are 40 hex digits
                                            // No MSD input: no song vectors group.
    assert!(!f.link_exists("song_vectors"));
}

fn write_features(path: &Path, ids: &[&str], vectors: &[f32], dim: usize, names: Option<&[&str]>) {
    let f = hdf5::File::create(path).unwrap();
    let g = f.create_group("songs").unwrap();
    let ids: Vec<VarLenUnicode> = ids.iter().map(|s| s.parse().unwrap()).collect();
    g.new_dataset_builder()
        .with_data(&ids)
        .create("ids")
        .unwrap();
    let ds = g
        .new_dataset::<f32>()
        .shape((ids.len(), dim))
        .create("vectors")
        .unwrap();
    ds.write_raw(vectors).unwrap();
    if let Some(n) = names {
        let n: Vec<VarLenUnicode> = n.iter().map(|s| s.parse().unwrap()).collect();
        ds.new_attr_builder().with_data(&n).create("names").unwrap();
    }
}

#[test]
fn audio_vectors_join_by_song_or_track_id() {
    let dir = tempfile::tempdir().unwrap();
    let feats = dir.path().join("features.h5");
    // Rick Astley by track id, The Box Tops' song by song id, one stem matching nothing.
    write_features(
        &feats,
        &["TRAXLZU12903D05F94", "SOCIWDW12A8C13D406", "not_in_dataset"],
        &[1.0, 10.0, 3.0, 30.0, 100.0, 100.0],
        2,
        Some(&["mfcc_mean_0", "hpcp_mean_0"]),
    );
    // A tiny triplet file so both songs survive the filters.
    let trip = dir.path().join("t.txt");
    std::fs::write(
        &trip,
        "u1\tSOCWJDB12A58A776AF\t3\nu1\tSOCIWDW12A8C13D406\t1\nu1\tSOMZWCG12A8C13C480\t2\nu2\tSOCWJDB12A58A776AF\t1\n",
    )
    .unwrap();
    let out = dir.path().join("d.h5");
    let mut o = PrepareOptions::new(Input::Triplets(trip), out.clone());
    o.min_listens = 1;
    o.min_song_users = 1;
    o.metadata = Some("data/msd/subset_10k.csv".into());
    o.msd = Some("data/msd".into());
    o.features = Some(feats.clone());
    let rep = prepare(&o, &mut quiet).unwrap();
    assert_eq!(rep.joins.audio_vectors_read, Some(3));
    assert_eq!(rep.joins.songs_with_audio, Some(2));
    let d = Dataset::load(&out).unwrap();
    let v = d.song_vectors.unwrap();
    assert_eq!(v.source, "msd+audio");
    assert_eq!(&v.names[v.dim - 2..], ["mfcc_mean_0", "hpcp_mean_0"]);
    let s = |id: &str| d.song_ids.iter().position(|x| x == id).unwrap();
    let (rick, box_tops, casual) = (
        s("SOCWJDB12A58A776AF"),
        s("SOCIWDW12A8C13D406"),
        s("SOMZWCG12A8C13C480"),
    );
    // Two audio rows (1, 10) and (3, 30): z-scored to -1 and +1; the song without one gets 0.
    let a = |song: usize, j: usize| v.values[song * v.dim + v.dim - 2 + j];
    assert_eq!((a(rick, 0), a(rick, 1)), (-1.0, -1.0));
    assert_eq!((a(box_tops, 0), a(box_tops, 1)), (1.0, 1.0));
    assert_eq!((a(casual, 0), a(casual, 1)), (0.0, 0.0));
    assert!(v.present.iter().all(|&p| p), "all three have an MSD record");

    // Without names, columns are audio_0..; audio only when no MSD input.
    write_features(
        &feats,
        &["SOCWJDB12A58A776AF", "SOCIWDW12A8C13D406"],
        &[5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        3,
        None,
    );
    o.msd = None;
    o.metadata = None;
    prepare(&o, &mut quiet).unwrap();
    let v = Dataset::load(&out).unwrap().song_vectors.unwrap();
    assert_eq!(v.source, "audio");
    assert_eq!(v.names, ["audio_0", "audio_1", "audio_2"]);
    assert_eq!(v.present.iter().filter(|&&p| p).count(), 2);

    // One song's vector alone has a single value per column: nothing to learn from, so no
    // song vectors at all (and a note naming the dropped columns).
    write_features(&feats, &["SOCWJDB12A58A776AF"], &[5.0, 6.0, 7.0], 3, None);
    let rep = prepare(&o, &mut quiet).unwrap();
    assert!(Dataset::load(&out).unwrap().song_vectors.is_none());
    assert!(rep
        .notes
        .iter()
        .any(|n| n.starts_with("song vectors: 3 columns dropped")));

    // A features file without /songs/vectors is a clear error.
    let bad = dir.path().join("bad.h5");
    hdf5::File::create(&bad)
        .unwrap()
        .create_group("songs")
        .unwrap();
    o.features = Some(bad);
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(e.contains("bad.h5: field /songs/ids: missing"), "{e}");
}

#[test]
fn profiles_join_when_ids_match() {
    let (profiles, rep) = read_profiles(
        Path::new("data/portrait/lastfm360k_profile_sample.tsv"),
        true,
    )
    .unwrap();
    let r = reference();
    assert_eq!(
        profiles.len() as u64,
        r["profiles"]["rows"].as_u64().unwrap()
    );
    assert_eq!(rep.lines, 1_000, "the last line has no newline but is read");
    let with_age = profiles.values().filter(|p| p.age.is_some()).count();
    assert_eq!(with_age as u64, r["profiles"]["with_age"].as_u64().unwrap());
    let mut buckets = std::collections::HashMap::<&str, u64>::new();
    for p in profiles.values() {
        *buckets
            .entry(
                ainrnn::data::portrait::AGE_BUCKETS
                    [ainrnn::data::portrait::age_bucket(p.age) as usize],
            )
            .or_default() += 1;
    }
    for (name, n) in r["profiles"]["buckets"].as_object().unwrap() {
        assert_eq!(
            buckets.get(name.as_str()).copied().unwrap_or(0),
            n.as_u64().unwrap(),
            "{name}"
        );
    }
    assert!(profiles.values().any(|p| p.age == Some(-1337)));

    // A triplet file whose users are the first profile ids: the join works and is counted.
    let dir = tempfile::tempdir().unwrap();
    let trip = dir.path().join("t.txt");
    std::fs::write(
        &trip,
        "00000c289a1829a808ac09c00daf10bc3c4e223b\tS1\t1\n00000c289a1829a808ac09c00daf10bc3c4e223b\tS2\t1\n\
         00001411dc427966b17297bf4d69e7e193135d89\tS1\t2\n00001411dc427966b17297bf4d69e7e193135d89\tS2\t2\n\
         nobody\tS1\t1\nnobody\tS2\t1\n",
    )
    .unwrap();
    let out = dir.path().join("d.h5");
    let mut o = PrepareOptions::new(Input::Triplets(trip), out.clone());
    o.profiles = Some("data/portrait/lastfm360k_profile_sample.tsv".into());
    let rep = prepare(&o, &mut quiet).unwrap();
    assert_eq!(rep.joins.users_with_profile, Some(2));
    let d = Dataset::load(&out).unwrap();
    let names = &d.portrait.age_bucket_names;
    // Profile 1: age 22 -> 18-24; profile 2: age empty -> unknown; "nobody": no profile.
    assert_eq!(names[d.portrait.age_bucket[0] as usize], "18-24");
    assert_eq!(names[d.portrait.age_bucket[1] as usize], "unknown");
    assert_eq!(names[d.portrait.age_bucket[2] as usize], "unknown");
}

#[test]
fn hetrec_prepare_uses_artist_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.h5");
    let o = PrepareOptions::new(
        Input::Hetrec {
            user_artists: "data/hetrec/user_artists.dat".into(),
            artists: None,
        },
        out.clone(),
    );
    let rep = prepare(&o, &mut quiet).unwrap();
    let d = Dataset::load(&out).unwrap();
    assert_eq!(d.source, "hetrec-lastfm-2k");
    assert_eq!(
        (d.users(), d.songs(), d.interactions()),
        (1_503, 6_000, 64_903)
    );
    assert_eq!(rep.inputs[1].kind, "hetrec artists");
    let a = d.song_ids.iter().position(|s| s == "51").unwrap();
    assert_eq!(d.song_meta[a].artist, "Duran Duran");
    assert_eq!(d.song_meta[a].title, "Duran Duran");
    assert_eq!(d.song_meta[a].genre, "unknown");
    assert!(d.song_vectors.is_none());
}

#[test]
fn bad_inputs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.h5");
    let mut o = PrepareOptions::new(
        Input::Triplets("data/bad/triplets_malformed.txt".into()),
        out.clone(),
    );
    o.min_listens = 1;
    o.min_song_users = 1;
    let rep = prepare(&o, &mut quiet).unwrap();
    assert_eq!(rep.malformed, 4);
    assert_eq!(rep.inputs[0].examples.len(), 4);
    assert_eq!(rep.stats.interactions, 3);
    o.strict = true;
    let e = prepare(&o, &mut quiet).unwrap_err();
    assert!(matches!(e, DataError::Io(_)));
    assert!(e.to_string().contains("triplets_malformed.txt:3:"), "{e}");

    let out = dir.path().join("never.h5");
    let o = PrepareOptions::new(Input::Triplets("data/bad/empty.wav".into()), out.clone());
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(
        e.contains("data/bad/empty.wav: no valid interactions"),
        "{e}"
    );
    let o = PrepareOptions::new(
        Input::Triplets("data/bad/not_audio.mp3".into()),
        out.clone(),
    );
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(
        e.contains("data/bad/not_audio.mp3: nothing in it could be read as triplets")
            && e.contains("; line 1: expected 3 tab-separated fields"),
        "{e}"
    );

    let mut o = PrepareOptions::new(
        Input::Triplets("data/taste/triplets_dev.txt".into()),
        out.clone(),
    );
    o.min_listens = 1000;
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(e.contains("no interactions left after filtering"), "{e}");
    o.min_listens = 2;
    o.folds = 1;
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(e.contains("--folds"), "{e}");
    o.folds = 10;
    o.msd = Some("data/bad/truncated_10k.h5".into());
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(e.contains("data/bad/truncated_10k.h5: HDF5 error"), "{e}");
    assert!(!out.exists(), "nothing is written on failure");
    // An output folder that does not exist is reported before any input is read.
    let nowhere = dir.path().join("no/such/folder/x.h5");
    let o = PrepareOptions::new(
        Input::Triplets("data/taste/triplets_small.txt".into()),
        nowhere,
    );
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(
        e.contains("x.h5: cannot write here: the folder")
            && e.contains("no/such/folder does not exist"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only d.h5, no temp files"
    );
}

/// A side file named on the command line of which every line is rejected is the wrong file:
/// an error naming it, what it was read as and the first reason, and no dataset (it used to be
/// written without portraits, or without the terms, with a note). A profile table without a
/// single line (blank lines only) is still a note, not "another id space".
#[test]
fn a_side_file_with_nothing_valid_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.h5");
    let base = || {
        let mut o = PrepareOptions::new(
            Input::Triplets("data/taste/triplets_small.txt".into()),
            out.clone(),
        );
        o.min_listens = 1;
        o.min_song_users = 1;
        o
    };
    let mut o = base();
    o.profiles = Some("data/msd/subset_10k.csv".into());
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(
        e.contains("data/msd/subset_10k.csv: nothing in it could be read as profiles")
            && e.contains("line 1:"),
        "{e}"
    );
    assert!(!out.exists());
    let mut o = base();
    o.metadata = Some("data/msd/subset_10k.csv".into());
    o.artist_terms = Some("data/hetrec/user_artists.dat".into());
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(
        e.contains("user_artists.dat: nothing in it could be read as artist terms"),
        "{e}"
    );
    assert!(!out.exists());
    // An --msd folder of which no file reads, or with no .h5 file at all.
    let msd = dir.path().join("msd");
    std::fs::create_dir(&msd).unwrap();
    let mut o = base();
    o.msd = Some(msd.clone());
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(e.contains("msd: no .h5 files in this folder"), "{e}");
    std::fs::copy("data/bad/truncated_10k.h5", msd.join("t.h5")).unwrap();
    let e = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(
        e.contains("msd: nothing in it could be read as msd hdf5") && e.contains("truncated"),
        "{e}"
    );
    assert!(!out.exists());
    let blank = dir.path().join("profiles.tsv");
    std::fs::write(&blank, "\n \n").unwrap();
    let mut o = base();
    o.profiles = Some(blank);
    let rep = prepare(&o, &mut quiet).unwrap();
    assert_eq!(rep.joins.profiles_read, Some(0));
    let note = rep
        .notes
        .iter()
        .find(|n| n.starts_with("profiles:"))
        .unwrap();
    assert!(
        note.contains("no profile was read from") && !note.contains("id space"),
        "{note}"
    );
}

/// A subset CSV row with tempo 1e160 (whose square overflows) is taken as unknown and noted
/// with the file, the field and the count; the tempo column keeps the other songs' values.
#[test]
fn an_absurd_metadata_value_is_noted_and_does_not_zero_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("subset_10k.csv");
    let text = std::fs::read_to_string("data/msd/subset_10k.csv").unwrap();
    let header = text.lines().next().unwrap();
    let tempo = header.split(',').position(|h| h == "tempo").unwrap();
    // A row without quoted commas, so splitting on commas finds its columns.
    let row = text
        .lines()
        .find(|l| l.contains("SOMZWCG12A8C13C480"))
        .unwrap();
    assert!(!row.contains('"'));
    let mut fields: Vec<&str> = row.split(',').collect();
    let old = fields[tempo].to_string();
    fields[tempo] = "1e160";
    std::fs::write(&csv, text.replace(row, &fields.join(","))).unwrap();
    assert_ne!(old, "1e160");
    let song = fields[header.split(',').position(|h| h == "song_id").unwrap()];
    let trip = dir.path().join("t.txt");
    let others = [
        "SOXVLOJ12AB0189215",
        "SOFSOCN12A8C143F5D",
        "SONHOTT12A8C13493C",
    ];
    let mut lines = String::new();
    for u in 0..4 {
        for s in std::iter::once(song).chain(others) {
            lines.push_str(&format!("u{u}\t{s}\t1\n"));
        }
    }
    std::fs::write(&trip, lines).unwrap();
    let out = dir.path().join("d.h5");
    let mut o = PrepareOptions::new(Input::Triplets(trip), out.clone());
    o.metadata = Some(csv.clone());
    o.folds = 2;
    let rep = prepare(&o, &mut quiet).unwrap();
    let note = rep.notes.iter().find(|n| n.contains("tempo")).unwrap();
    assert!(
        note.contains("subset_10k.csv: 1 tempo value outside (0, 500] BPM taken as unknown")
            && note.contains(song),
        "{note}"
    );
    let d = Dataset::load(&out).unwrap();
    let v = d.song_vectors.as_ref().unwrap();
    let j = v.names.iter().position(|n| n == "tempo").unwrap();
    let col: Vec<f32> = (0..d.songs()).map(|s| v.values[s * v.dim + j]).collect();
    let k = d.song_ids.iter().position(|s| s == song).unwrap();
    assert_eq!(col[k], 0.0, "unknown: the mean");
    assert!(col.iter().filter(|x| x.abs() > 0.1).count() >= 2, "{col:?}");
}

/// A HetRec header with other columns (here artistID and userID swapped) is an error naming the
/// file, line 1, what it found and what is expected, not a skipped line followed by artists
/// read as users. The expected header passes in any case, and so does a file without one.
#[test]
fn hetrec_headers_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ua = dir.path().join("user_artists.dat");
    let rows = "51\t2\t10\n52\t2\t5\n51\t3\t7\n52\t3\t1\n53\t3\t2\n51\t4\t4\n52\t4\t8\n";
    let run = |header: &str, artists: Option<&str>| {
        std::fs::write(&ua, format!("{header}{rows}")).unwrap();
        let names = dir.path().join("artists.dat");
        match artists {
            Some(a) => std::fs::write(&names, a).unwrap(),
            None => {
                let _ = std::fs::remove_file(&names);
            }
        }
        let mut o = PrepareOptions::new(
            Input::Hetrec {
                user_artists: ua.clone(),
                artists: None,
            },
            dir.path().join("h.h5"),
        );
        o.folds = 2;
        prepare(&o, &mut quiet)
    };
    let e = run("artistID\tuserID\tweight\n", None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("user_artists.dat:1: the header is \"artistID\\tuserID\\tweight\"")
            && e.contains("expected userID<TAB>artistID<TAB>weight"),
        "{e}"
    );
    let e = run("user\tartist\n", None).unwrap_err().to_string();
    assert!(e.contains("user_artists.dat:1:"), "{e}");
    // Case does not matter; without a header line 1 is data.
    let rep = run("USERID\tArtistID\tWEIGHT\r\n", None).unwrap();
    assert_eq!((rep.read.users, rep.inputs[0].skipped), (3, 1));
    let rep = run("", None).unwrap();
    assert_eq!((rep.read.interactions, rep.inputs[0].skipped), (7, 0));
    // artists.dat: `id name` or the full `id name url pictureURL`, nothing else.
    let rep = run("", Some("ID\tName\tURL\tPictureURL\n2\tTwo\n")).unwrap();
    assert_eq!(rep.inputs[1].skipped, 1);
    assert!(run("", Some("id\tname\n2\tTwo\n")).is_ok());
    let e = run("", Some("name\tid\n2\tTwo\n")).unwrap_err().to_string();
    assert!(
        e.contains("artists.dat:1: the header is \"name\\tid\"")
            && e.contains("expected id<TAB>name (optionally followed by url<TAB>pictureURL)"),
        "{e}"
    );
    // A header line as long as a binary file is quoted by its first 60 characters.
    let long = format!("artist{}\n2\tTwo\n", "é".repeat(500));
    let e = run("", Some(&long)).unwrap_err().to_string();
    assert!(
        e.contains(&format!("the header is \"artist{}…\"", "é".repeat(54))) && e.len() < 300,
        "{e}"
    );
}

/// A repeated id keeps its first record everywhere (artists.dat, profiles, subset CSV), and
/// `prepare` notes how many repeats and where the first was.
#[test]
fn repeated_ids_keep_the_first_record_and_are_noted() {
    let dir = tempfile::tempdir().unwrap();
    let artists = dir.path().join("artists.dat");
    std::fs::write(
        &artists,
        "id\tname\n51\tFirst\n52\tOther\n51\tSecond\n51\tThird\n",
    )
    .unwrap();
    let (names, rep) = hetrec::read_artists(&artists, true).unwrap();
    assert_eq!(names["51"], "First");
    assert_eq!(rep.accepted, 2);
    let d = rep.duplicates.as_ref().unwrap();
    assert_eq!((d.count, d.line, d.id.as_str()), (2, 4, "51"));

    let profiles = dir.path().join("p.tsv");
    std::fs::write(
        &profiles,
        "u0\tm\t30\tFrance\t\nu1\tf\t\tSpain\t\nu0\tf\t60\tPeru\t\n",
    )
    .unwrap();
    let (p, rep) = read_profiles(&profiles, true).unwrap();
    assert_eq!(
        (p["u0"].age, p["u0"].country.as_str()),
        (Some(30), "France")
    );
    let d = rep.duplicates.as_ref().unwrap();
    assert_eq!((d.count, d.line, d.id.as_str()), (1, 3, "u0"));

    let csv = dir.path().join("m.csv");
    std::fs::write(
        &csv,
        "song_id,track_id,title,artist_name\nS1,T1,First,a\nS2,T2,Two,b\nS1,T9,Second,c\n",
    )
    .unwrap();
    let trip = dir.path().join("t.txt");
    std::fs::write(&trip, "u0\tS1\t1\nu0\tS2\t1\nu1\tS1\t1\nu1\tS2\t1\n").unwrap();
    let out = dir.path().join("d.h5");
    let mut o = PrepareOptions::new(Input::Triplets(trip), out.clone());
    o.metadata = Some(csv);
    o.profiles = Some(profiles);
    o.folds = 2;
    let rep = prepare(&o, &mut quiet).unwrap();
    let notes = rep.notes.join("\n");
    for want in [
        "m.csv: 1 record with a repeated song_id ignored, the first one kept (first: ",
        "m.csv:4, song_id S1)",
        "p.tsv: 1 record with a repeated user ignored, the first one kept (first: ",
        "p.tsv:3, user u0)",
    ] {
        assert!(notes.contains(want), "{want:?} in {notes}");
    }
    let d = Dataset::load(&out).unwrap();
    let s1 = d.song_ids.iter().position(|s| s == "S1").unwrap();
    assert_eq!(d.song_meta[s1].title, "First");
    let u0 = d.user_ids.iter().position(|u| u == "u0").unwrap();
    assert_eq!(
        d.portrait.age_bucket_names[d.portrait.age_bucket[u0] as usize],
        "25-34"
    );
}

/// An age too large for an integer is out of range, not "not an integer".
#[test]
fn a_huge_age_is_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.tsv");
    std::fs::write(&p, "u1\tm\t99999999999999999999\tX\t\nu2\tf\tx\tY\t\n").unwrap();
    let (_, rep) = read_profiles(&p, false).unwrap();
    let reasons: Vec<&str> = rep.examples.iter().map(|m| m.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "age 99999999999999999999 is out of range (a whole number from -2147483648 to 2147483647)",
            "age is not an integer: \"x\""
        ]
    );
}

/// A program calling `prepare` directly gets the same refusal as the CLI for an output that is
/// one of the files it reads without a flag naming it (here `artists.dat` beside the HetRec
/// plays), and the file is left as it was.
#[test]
fn prepare_refuses_an_output_that_is_an_unnamed_input() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in ["user_artists.dat", "artists.dat"] {
        std::fs::copy(root.join("data/hetrec").join(f), dir.path().join(f)).unwrap();
    }
    let artists = dir.path().join("artists.dat");
    let before = std::fs::read(&artists).unwrap();
    let o = PrepareOptions::new(
        Input::Hetrec {
            user_artists: dir.path().join("user_artists.dat"),
            artists: None,
        },
        artists.clone(),
    );
    let e = prepare(&o, &mut quiet).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Invalid {
                option: "--output",
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("beside the --hetrec file (") && msg.contains("destroy the input"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&artists).unwrap(), before);
    // A named input too.
    let mut o = o;
    o.output = dir.path().join("user_artists.dat");
    let msg = prepare(&o, &mut quiet).unwrap_err().to_string();
    assert!(msg.contains("input --hetrec"), "{msg}");
}

/// A dataset whose `folds` attribute says more folds than it has users (a damaged or edited
/// file) is refused on load, naming the file and the field: `stats` allocated a table per fold
/// (4e9 folds aborted it) and `compare` averaged empty folds in as zeros. `save` refuses to
/// write one; `prepare` makes no more folds than users.
#[test]
fn more_folds_than_users_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.h5");
    let mut o = PrepareOptions::new(
        Input::Triplets("data/taste/triplets_small.txt".into()),
        out.clone(),
    );
    o.folds = 2;
    prepare(&o, &mut quiet).unwrap();
    let mut d = Dataset::load(&out).unwrap();
    let users = d.users() as u32;
    for folds in [users + 1, 4_000_000_000] {
        let f = hdf5::File::open_rw(&out).unwrap();
        f.attr("folds").unwrap().write_scalar(&folds).unwrap();
        drop(f);
        let e = Dataset::load(&out).unwrap_err().to_string();
        assert!(
            e.contains("d.h5") && e.contains("folds") && e.contains("would have no user"),
            "{e}"
        );
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_ainrnn"))
            .args(["stats", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{o:?}");
    }
    d.folds = users + 1;
    let again = dir.path().join("e.h5");
    assert!(d.save(&again).unwrap_err().to_string().contains("folds"));
    // The library makes as many folds as there are users, and says so (the command refuses).
    o.folds = users + 1;
    o.output = dir.path().join("f.h5");
    let rep = prepare(&o, &mut quiet).unwrap();
    assert!(
        rep.notes.iter().any(|n| n.contains("folds asked for")),
        "{:?}",
        rep.notes
    );
    assert_eq!(Dataset::load(&o.output).unwrap().folds, users);
}
