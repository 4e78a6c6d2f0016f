//! `similar`: songs like a song. Each measure against a separate computation of what it is
//! said to be, on real data (the first Taste-Profile users with the MSD subset's metadata):
//! listens against the cosine of the songs' listener sets, content against the cosine of the
//! songs' normalised vector, genre and artist rows, the model against `recommend --history`
//! (to the bit, on both backends). Every song's list from `--all` is the one it gets alone; the
//! songs are found by id or name; the command line refuses flags a measure would not read and
//! writes one file atomically.

#[path = "common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::model_ops::ModelOps;
use ainrnn::data::dataset::NO_GENRE;
use ainrnn::data::prepare::prepare;
use ainrnn::data::Dataset;
use ainrnn::eval::run::{recommend, Recommendation, Who};
use ainrnn::eval::similar::{similar_songs, Measure, Seeds, Similar, SongFinder};
use ainrnn::model::neighbours::Similarity;
use ainrnn::model::ModelKind;
use ainrnn::train::run::{train, TrainOptions};
use common::cli::{ainrnn, fails_with, s, stderr, succeeds, usage_error};
use common::greedy;

/// The first `users` users of the bundled Taste-Profile triplets with the MSD subset's metadata
/// (song vectors, genres), every song kept.
fn data(dir: &Path, users: usize) -> PathBuf {
    let mut o = common::taste_prefix(dir, users);
    o.min_song_users = 1;
    prepare(&o, &mut |_| {}).unwrap();
    o.output
}

/// A tiny AINRNN ensemble of two members trained on fold 0 of `data` with the CPU backend.
fn trained(dir: &Path, data: &Path) -> PathBuf {
    let ckpt = dir.join("m.ckpt");
    let mut t = TrainOptions::new(data.to_path_buf(), ModelKind::Ainrnn, ckpt.clone());
    (t.epochs, t.hidden, t.emb, t.layers, t.patience) = (1, 8, 16, Some(2), 0);
    t.ensemble = Some(2);
    train(&CpuBackend::new(), &t, |_| {}, |_, _, _, _| {}).unwrap();
    ckpt
}

fn lists<B: ModelOps>(
    b: &B,
    data: &Path,
    m: Measure<'_>,
    seeds: &[Vec<u32>],
    k: usize,
    cap: Option<usize>,
) -> Vec<Vec<Recommendation>> {
    Similar::open(b, data, m)
        .unwrap()
        .lists(b, seeds, k, cap)
        .unwrap()
}

/// `got` is a best-first top-`k` of `want` (song index → its score by the separate computation;
/// songs absent are not alike): every listed song is in `want` with its score (relative 1e-5),
/// and the listed scores are the `k` best of `want` in order, so nothing better was left out.
fn is_top_k(what: &str, ds: &Dataset, got: &[Recommendation], want: &HashMap<u32, f64>, k: usize) {
    let index: HashMap<&str, u32> = ds
        .song_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * (1.0 + b.abs());
    assert_eq!(got.len(), k.min(want.len()), "{what}: list length");
    for r in got {
        let s = index[r.song_id.as_str()];
        let w = want.get(&s).copied();
        assert!(
            w.is_some_and(|w| close(r.score as f64, w)),
            "{what}: song {} scored {}, the separate computation says {w:?}",
            r.song_id,
            r.score
        );
    }
    let mut best: Vec<f64> = want.values().copied().collect();
    best.sort_by(|a, b| b.total_cmp(a));
    for (i, (r, w)) in got.iter().zip(&best).enumerate() {
        assert!(
            close(r.score as f64, *w),
            "{what}: place {} has {}, the {}th best score is {w}",
            i + 1,
            r.score,
            i + 1
        );
        assert_eq!(r.rank, i + 1, "{what}");
    }
}

/// Listens: a song's score is the cosine of its listener set with the seed's,
/// |U_i ∩ U_j| / √(|U_i| |U_j|) over every user, and for several seeds the mean of those; songs
/// that share no listener with a seed, and the seeds, are never listed.
#[test]
fn listens_lists_are_the_cosine_of_the_listener_sets() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), 300);
    let ds = Dataset::load(&data).unwrap();
    let n = ds.songs();
    let mut users_of: Vec<HashSet<usize>> = vec![HashSet::new(); n];
    for u in 0..ds.users() {
        for &s in ds.history(u).0 {
            users_of[s as usize].insert(u);
        }
    }
    let cosine = |i: usize, j: usize| {
        let common = users_of[i].intersection(&users_of[j]).count() as f64;
        common / ((users_of[i].len() * users_of[j].len()) as f64).sqrt()
    };
    let popular = (0..n).max_by_key(|&s| users_of[s].len()).unwrap() as u32;
    let b = CpuBackend::new();
    let sets: Vec<Vec<u32>> = vec![
        vec![popular],
        vec![0],
        vec![(n / 2) as u32],
        vec![(n - 1) as u32],
        vec![popular, 0, (n / 2) as u32],
    ];
    for k in [5, 10, n] {
        let got = lists(
            &b,
            &data,
            Measure::Listens(Similarity::COSINE),
            &sets,
            k,
            None,
        );
        for (set, list) in sets.iter().zip(&got) {
            let mut want = HashMap::new();
            for j in (0..n).filter(|j| !set.contains(&(*j as u32))) {
                let per: Vec<f64> = set.iter().map(|&i| cosine(i as usize, j)).collect();
                if per.iter().any(|&c| c > 0.0) {
                    want.insert(j as u32, per.iter().sum::<f64>() / set.len() as f64);
                }
            }
            is_top_k(
                &format!("listens, seeds {set:?}, k {k}"),
                &ds,
                list,
                &want,
                k,
            );
        }
    }
    // The popular song's list is long enough for a genre cap to change it.
    let (k, cap) = (8, Some(1));
    let popular_list = |k, cap| {
        lists(
            &b,
            &data,
            Measure::Listens(Similarity::COSINE),
            &sets[..1],
            k,
            cap,
        )
        .remove(0)
    };
    let (whole, capped) = (popular_list(n, None), popular_list(k, cap));
    assert_eq!(ids(&capped), greedy(&whole, k, cap), "listens, genre cap 1");
    assert_ne!(
        ids(&capped),
        greedy(&whole, k, None),
        "the cap changed nothing"
    );
}

/// Content: the cosine of the songs' rows (the song vector scaled to unit length, the genre's
/// one-hot, the artist's one-hot times the artist weight), each row scaled to unit length; a
/// mix scores the mean. Songs with no content, and the seeds, are never listed.
#[test]
fn content_lists_are_the_cosine_of_vector_genre_and_artist_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), 300);
    let ds = Dataset::load(&data).unwrap();
    let n = ds.songs();
    let vecs = ds
        .song_vectors
        .as_ref()
        .expect("the MSD subset gives song vectors");
    let genres: Vec<u8> = ds.portrait.song_genre.clone();
    let artists: Vec<&str> = ds.song_meta.iter().map(|m| m.artist.as_str()).collect();
    let b = CpuBackend::new();
    // Rows as sparse maps (vector part by column, genre and artist by name) in f64.
    let row = |s: usize, w: f64| -> HashMap<String, f64> {
        let mut r = HashMap::new();
        if vecs.present[s] {
            let v = &vecs.values[s * vecs.dim..(s + 1) * vecs.dim];
            let norm = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            if norm > 0.0 {
                for (c, &x) in v.iter().enumerate() {
                    r.insert(format!("v{c}"), x as f64 / norm);
                }
            }
        }
        if genres[s] != NO_GENRE {
            r.insert(format!("g{}", genres[s]), 1.0);
        }
        if w > 0.0 && !artists[s].is_empty() {
            r.insert(format!("a{}", artists[s]), w);
        }
        let norm = r.values().map(|x| x * x).sum::<f64>().sqrt();
        r.values_mut()
            .for_each(|x| *x /= norm.max(f64::MIN_POSITIVE));
        r
    };
    let dot = |a: &HashMap<String, f64>, b: &HashMap<String, f64>| -> f64 {
        a.iter().map(|(c, x)| x * b.get(c).unwrap_or(&0.0)).sum()
    };
    let without = (0..n).filter(|&s| row(s, 2.0).is_empty()).count();
    let sets: Vec<Vec<u32>> = vec![vec![0], vec![(n / 2) as u32], vec![1, 2]];
    for w in [0.0f32, 2.0] {
        let rows: Vec<_> = (0..n).map(|s| row(s, w as f64)).collect();
        for k in [10, n] {
            let m = Measure::Content { artist_weight: w };
            for (set, list) in sets.iter().zip(lists(&b, &data, m, &sets, k, None)) {
                let want: HashMap<u32, f64> = (0..n)
                    .filter(|&j| !set.contains(&(j as u32)) && !rows[j].is_empty())
                    .map(|j| {
                        let c: f64 = set.iter().map(|&i| dot(&rows[i as usize], &rows[j])).sum();
                        (j as u32, c / set.len() as f64)
                    })
                    .collect();
                let what = format!("content, artist weight {w}, seeds {set:?}, k {k}");
                is_top_k(&what, &ds, &list, &want, k);
                if k == n {
                    assert_eq!(list.len(), n - set.len() - without, "{what}");
                }
            }
        }
    }
    // The artist weight brings the seed's artist forward.
    let seed = (0..n)
        .find(|&s| {
            !artists[s].is_empty() && artists.iter().filter(|a| **a == artists[s]).count() >= 3
        })
        .expect("an artist with three songs");
    let same = |w: f32| {
        let l = &lists(
            &b,
            &data,
            Measure::Content { artist_weight: w },
            &[vec![seed as u32]],
            3,
            None,
        )[0];
        l.iter().filter(|r| r.artist == artists[seed]).count()
    };
    assert!(
        same(4.0) > same(0.0),
        "artist weight 4 lists more of the seed's artist than 0"
    );
}

/// The model's list for some seeds is `recommend --history` with those songs played once each,
/// to the bit; `--all` gives each song the list it gets alone.
fn model_lists_agree<B: ModelOps>(b: &B, dir: &Path, data: &Path, ckpt: &Path) {
    let ds = Dataset::load(data).unwrap();
    let n = ds.songs() as u32;
    let who = b.describe();
    let bits = |l: &[Recommendation]| {
        l.iter()
            .map(|r| (r.song_id.clone(), r.score.to_bits()))
            .collect::<Vec<_>>()
    };
    for (set, k, cap) in [
        (vec![0u32], 10, None),
        (vec![n / 2, 3], 10, Some(1)),
        (vec![n - 1], 40, None),
    ] {
        let got = lists(
            b,
            data,
            Measure::Model(ckpt),
            std::slice::from_ref(&set),
            k,
            cap,
        );
        let file = dir.join("history.txt");
        let text: String = set
            .iter()
            .map(|&s| format!("{}\n", ds.song_ids[s as usize]))
            .collect();
        std::fs::write(&file, text).unwrap();
        let want = recommend(b, data, ckpt, Who::History(&file), k, cap, None).unwrap();
        assert_eq!(bits(&got[0]), bits(&want), "{who}: seeds {set:?}, k {k}");
        assert_eq!(got[0].len(), k, "{who}");
    }
    every_song_alone(b, data, Measure::Model(ckpt), 10);
}

/// `similar_songs(All)` hands every song, in catalogue order, the list it gets alone (to the
/// bit).
fn every_song_alone<B: ModelOps>(b: &B, data: &Path, m: Measure<'_>, k: usize) {
    let ds = Dataset::load(data).unwrap();
    let mut s = Similar::open(b, data, m).unwrap();
    let mut got: Vec<(String, Vec<Recommendation>)> = Vec::new();
    let sum = similar_songs(
        b,
        &mut s,
        Seeds::All,
        k,
        None,
        &mut |song, l| {
            got.push((song.to_string(), l.to_vec()));
            Ok(())
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(sum.songs, ds.songs());
    assert_eq!(sum.empty, got.iter().filter(|g| g.1.is_empty()).count());
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        names,
        ds.song_ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for i in [0, ds.songs() / 2, ds.songs() - 1] {
        let alone = &s.lists(b, &[vec![i as u32]], k, None).unwrap()[0];
        let bits = |l: &[Recommendation]| {
            l.iter()
                .map(|r| (r.song_id.clone(), r.score.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&got[i].1), bits(alone), "{}: song {i}", m.name());
        assert!(
            !got[i].1.iter().any(|r| r.song_id == ds.song_ids[i]),
            "a seed is never listed"
        );
    }
}

#[test]
fn every_songs_list_is_the_one_it_gets_alone_by_listens_and_content() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), 120);
    let b = CpuBackend::new();
    every_song_alone(&b, &data, Measure::Listens(Similarity::COSINE), 10);
    every_song_alone(&b, &data, Measure::Content { artist_weight: 0.0 }, 10);
    every_song_alone(&b, &data, Measure::Content { artist_weight: 1.0 }, 10);
}

/// Content's lists through the backend (its product and top-k prune, the host scores what is
/// left) are the host's, to the bit: the first `k` of the list the host gives when it scores
/// every song (k = the whole catalogue takes that path). Every song alone and mixes, with and
/// without the artist part, with and without a genre cap of 1, on `b`.
fn content_backend_lists_are_the_hosts<B: ModelOps>(b: &B, data: &Path) {
    let ds = Dataset::load(data).unwrap();
    let n = ds.songs();
    let sets: Vec<Vec<u32>> = (0..n as u32)
        .map(|s| vec![s])
        .chain([vec![1, 2, 3], vec![0, (n / 2) as u32]])
        .collect();
    let bits = |l: &[Recommendation]| {
        l.iter()
            .map(|r| (r.song_id.clone(), r.score.to_bits()))
            .collect::<Vec<_>>()
    };
    let mut raised = 0;
    let mut capped = 0;
    for w in [0.0f32, 1.0, 4.0] {
        let m = Measure::Content { artist_weight: w };
        let mut host = Similar::open(&CpuBackend::new(), data, m).unwrap();
        // With a genre cap too: the greedy walk's first 10 are its list of 10.
        for cap in [None, Some(1)] {
            let whole = host.lists(&CpuBackend::new(), &sets, n, cap).unwrap();
            let mut on_b = Similar::open(b, data, m).unwrap();
            let got = on_b.lists(b, &sets, 10, cap).unwrap();
            // The backend settles them: the cap's rounds too, not the host's whole catalogue.
            let on_host = on_b.lists_on_host();
            eprintln!(
                "weight {w}, cap {cap:?}: {on_host} of {} lists on the host",
                sets.len()
            );
            assert!(
                on_host * 50 <= sets.len(),
                "weight {w}, cap {cap:?}: {on_host} of {} lists scored on the host",
                sets.len()
            );
            for ((set, g), w0) in sets.iter().zip(&got).zip(&whole) {
                let what = format!("weight {w}, cap {cap:?}, seeds {set:?}");
                assert_eq!(bits(g), bits(&w0[..w0.len().min(10)]), "{what}");
                if w > 0.0 {
                    let artist = &ds.song_meta[set[0] as usize].artist;
                    raised += g
                        .iter()
                        .filter(|r| !artist.is_empty() && r.artist == *artist)
                        .count();
                }
            }
            if cap.is_some() {
                let uncapped = lists(b, data, m, &sets, 10, None);
                capped += got
                    .iter()
                    .zip(&uncapped)
                    .filter(|(g, u)| bits(g) != bits(u))
                    .count();
            }
        }
    }
    assert!(
        capped > 0,
        "the genre cap never changed a list: the test shows nothing"
    );
    // Not vacuous: the artist part brought songs of the seed's artist into lists.
    assert!(raised > 0, "no list has a song of its seed's artist");
}

#[test]
fn content_lists_through_the_cpu_backend_are_the_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), 120);
    content_backend_lists_are_the_hosts(&CpuBackend::new(), &data);
}

/// Content's lists on the GPU (the product and the top-k there, the host scoring what is
/// left) are the host's, to the bit.
#[test]
fn content_lists_on_the_gpu_are_the_hosts() {
    let Some(g) = common::gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), 120);
    content_backend_lists_are_the_hosts(&g, &data);
}

#[test]
fn model_lists_are_recommend_history_lists_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), 100);
    let ckpt = trained(dir.path(), &data);
    model_lists_agree(&CpuBackend::new(), dir.path(), &data, &ckpt);
}

#[test]
fn model_lists_are_recommend_history_lists_on_the_gpu() {
    let Some(g) = common::gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), 100);
    let ckpt = trained(dir.path(), &data);
    model_lists_agree(&g, dir.path(), &data, &ckpt);
}

/// A song is found by id, by "artist - title" or title (case and spacing ignored), or by a
/// part of "artist - title" that names one song; a name of several songs is refused with
/// their ids, a name of none with the catalogue's size.
#[test]
fn songs_are_found_by_id_or_by_a_name_of_one_song() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), 300);
    let ds = Dataset::load(&data).unwrap();
    let f = SongFinder::new(&ds);
    let m = &ds.song_meta;
    let unique = |pick: &dyn Fn(usize) -> String| {
        (0..ds.songs())
            .find(|&s| {
                let p = pick(s).to_lowercase();
                !p.is_empty()
                    && (0..ds.songs())
                        .filter(|&t| pick(t).to_lowercase() == p)
                        .count()
                        == 1
            })
            .unwrap()
    };
    assert_eq!(f.find(&ds.song_ids[7]), Ok(7));
    let s = unique(&|s| format!("{} - {}", m[s].artist, m[s].title));
    let shouted = format!(
        "  {}  -   {} ",
        m[s].artist.to_uppercase(),
        m[s].title.to_uppercase()
    );
    assert_eq!(f.find(&shouted), Ok(s as u32), "{shouted}");
    let t = unique(&|s| m[s].title.clone());
    assert_eq!(f.find(&m[t].title.to_lowercase()), Ok(t as u32));
    // An artist with several songs names several: refused, each named with its id.
    let a = (0..ds.songs())
        .find(|&s| {
            !m[s].artist.is_empty() && m.iter().filter(|x| x.artist == m[s].artist).count() >= 2
        })
        .unwrap();
    let e = f.find(&m[a].artist).unwrap_err();
    assert!(
        e.contains("names") && e.contains(&ds.song_ids[a]) && e.contains("give one by its id"),
        "{e}"
    );
    let e = f.find("no such song anywhere 0x5eed").unwrap_err();
    assert!(
        e.contains("no song of the catalogue") && e.contains(&ds.songs().to_string()),
        "{e}"
    );
    assert!(f.find("   ").is_err());
}

fn ids(l: &[Recommendation]) -> Vec<String> {
    l.iter().map(|r| r.song_id.clone()).collect()
}

/// The command line: one list on stdout for `--song` (JSON with `--json`), every list in one
/// file for `--all`/`--songs`, bad lines of a songs file skipped and named (exit status 3),
/// and the flags a measure would not read refused.
#[test]
fn the_command_line_lists_songs_and_refuses_what_it_would_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = data(dir.path(), 120);
    let d = s(&data);
    let ds = Dataset::load(&data).unwrap();
    let id = ds.song_ids[0].as_str();
    let o = ainrnn(&["--json", "similar", "--data", d, "--song", id, "--k", "3"]);
    let text = succeeds(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["by"], "listens", "{text}");
    assert_eq!(v["songs"][0]["song_id"], id);
    assert!(v["similar"].as_array().unwrap().len() <= 3);
    // The songs file: two good lines (an id, and the same song again), a bad one.
    let file = dir.path().join("songs.txt");
    std::fs::write(
        &file,
        format!("# seeds\n{id}\nno such song 0x5eed\n{}\n", ds.song_ids[0]),
    )
    .unwrap();
    let out = dir.path().join("similar.tsv");
    let o = ainrnn(&[
        "similar",
        "--data",
        d,
        "--songs",
        s(&file),
        "--by",
        "content",
        "-o",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{}:3:", s(&file))) && e.contains("named again"),
        "{e}"
    );
    let tsv = std::fs::read_to_string(&out).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(
        lines.next(),
        Some("song\trank\tsong_id\tscore\ttitle\tartist\tgenre")
    );
    assert!(lines.clone().count() > 0 && lines.all(|l| l.starts_with(&format!("{id}\t"))));
    // --all into a file; the temporary and the lock gone.
    let o = ainrnn(&["similar", "--data", d, "--all", "-o", s(&out)]);
    succeeds(&o);
    let rows = std::fs::read_to_string(&out).unwrap();
    assert!(rows.lines().count() > ds.songs(), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("similar.tsv") && n != "similar.tsv")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Refusals.
    let ck = dir.path().join("none.ckpt");
    // Flags that conflict are usage errors (exit status 2), the rest errors (1).
    for (usage, args, words) in [
        (
            true,
            vec!["--song", id, "--by", "model"],
            vec!["--checkpoint"],
        ),
        (
            true,
            vec!["--song", id, "--by", "listens", "--checkpoint", s(&ck)],
            vec!["--by model only"],
        ),
        (
            true,
            vec!["--song", id, "--by", "content", "--similarity", "cosine"],
            vec!["--by listens only"],
        ),
        (
            true,
            vec!["--song", id, "--artist-weight", "1"],
            vec!["--by content only"],
        ),
        (
            true,
            vec!["--song", id, "-o", s(&out)],
            vec!["--all or --songs"],
        ),
        (true, vec!["--all"], vec!["-o FILE"]),
        (false, vec!["--all", "-o", d], vec!["--data"]),
        (
            false,
            vec!["--song", "no such song 0x5eed"],
            vec!["no song of the catalogue", "0x5eed"],
        ),
    ] {
        let mut a = vec!["similar", "--data", d];
        a.extend(args);
        match usage {
            true => usage_error(&ainrnn(&a), &words),
            false => fails_with(&ainrnn(&a), &words),
        };
    }
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        rows,
        "a refused run left the file as it was"
    );
}

/// A song of [`tiny`]: its 2-column vector (`None`: none), genre (an index of `GENRES`, or
/// none) and artist.
type TinySong<'a> = (Option<[f32; 2]>, Option<u8>, &'a str);

/// A tiny dataset in `path` of `songs`; three users who played every song once.
fn tiny(path: &Path, songs: &[TinySong<'_>]) {
    use ainrnn::data::dataset::{SongMeta, SongVectors};
    const GENRES: [&str; 4] = ["rock", "pop", "jazz", "folk"];
    let (n, users) = (songs.len(), 3);
    let indices: Vec<u32> = (0..users).flat_map(|_| 0..n as u32).collect();
    let indptr: Vec<u64> = (0..=users).map(|u| (u * n) as u64).collect();
    let nnz = indices.len();
    let mut portrait = common::blank_portraits(users, n);
    portrait.genre_names = GENRES.iter().map(|g| g.to_string()).collect();
    portrait.genre_dist = vec![0.0; users * GENRES.len()];
    portrait.song_genre = songs.iter().map(|s| s.1.unwrap_or(NO_GENRE)).collect();
    Dataset {
        source: "test".into(),
        user_ids: (0..users).map(|u| format!("u{u}")).collect(),
        song_ids: (0..n).map(|s| format!("s{s}")).collect(),
        song_meta: songs
            .iter()
            .enumerate()
            .map(|(i, s)| SongMeta {
                title: format!("t{i}"),
                artist: s.2.to_string(),
                genre: s
                    .1
                    .map_or("unknown".into(), |g| GENRES[g as usize].to_string()),
                ..SongMeta::unknown()
            })
            .collect(),
        indptr,
        indices,
        plays: vec![1.0; nnz],
        folds: 3,
        user_fold: (0..users as u32).collect(),
        visible: vec![true; nnz],
        portrait,
        song_vectors: Some(SongVectors {
            dim: 2,
            names: vec!["x0".into(), "x1".into()],
            source: "audio".into(),
            values: songs.iter().flat_map(|s| s.0.unwrap_or([0.0; 2])).collect(),
            present: songs.iter().map(|s| s.0.is_some()).collect(),
        }),
        seed: 1,
        visible_share: 1.0,
        min_listens: 1,
        min_song_users: 1,
    }
    .save(path)
    .unwrap();
}

/// A song without content (no vector, no genre) is like none, on the backend's path and the
/// host's: never listed (though its 0 would beat a negative cosine), and as a seed it has an
/// empty list.
#[test]
fn a_song_without_content_is_like_no_song() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny.h5");
    // Songs 0–4 have 2-column vectors (2 and 3 point away from 0), song 5 none.
    let v = |x: f32, y: f32| (Some([x, y]), None, "");
    tiny(
        &data,
        &[
            v(1.0, 0.0),
            v(0.9, 0.1),
            v(-1.0, 0.1),
            v(-1.0, -0.2),
            v(0.0, 1.0),
            (None, None, ""),
        ],
    );
    let b = CpuBackend::new();
    // Weight 0: the backend's product; weight 1 (no song has an artist): the host's scores.
    for w in [0.0, 1.0] {
        let m = Measure::Content { artist_weight: w };
        let got = lists(&b, &data, m, &[vec![0], vec![5]], 5, None);
        assert_eq!(ids(&got[0]), ["s1", "s4", "s3", "s2"], "artist weight {w}");
        assert!(
            got[0][3].score < 0.0,
            "a negative cosine is listed, the 0 of song 5 is not"
        );
        assert!(got[1].is_empty(), "artist weight {w}: song 5 is like none");
    }
}

/// A genre cap that skips every song the backend picked: its list goes past the picks, so it is
/// the host's (the whole catalogue scored), not the walk over the picks that would stop short,
/// nor one that lists the seed's artist's low-scoring song (a candidate below the picks'
/// bound) before a better song that was never picked.
#[test]
fn a_genre_cap_past_the_backends_picks_is_the_hosts_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny.h5");
    // Seed 0 and 40 rock songs much like it (all the picks), a pop song half like it, and a
    // jazz song of the seed's artist pointing away from it.
    let mut songs = vec![(Some([1.0, 0.0]), Some(0u8), "S")];
    songs.extend((1..=40).map(|i| (Some([1.0, 0.01 * i as f32]), Some(0u8), "A")));
    songs.push((Some([0.6, 0.8]), Some(1), "P"));
    songs.push((Some([-1.0, 0.3]), Some(2), "S"));
    tiny(&data, &songs);
    let b = CpuBackend::new();
    let m = Measure::Content { artist_weight: 0.5 };
    let mut host = Similar::open(&b, &data, m).unwrap();
    let n = songs.len();
    let want = &host.lists(&b, &[vec![0]], n, Some(1)).unwrap()[0];
    assert_eq!(ids(&want[..2]), ["s1", "s41"], "the host's list");
    let check = |b: &dyn Fn() -> (Vec<Recommendation>, usize)| {
        let (got, on_host) = b();
        assert_eq!(ids(&got), ["s1", "s41"]);
        assert_eq!(got[1].score.to_bits(), want[1].score.to_bits());
        // A second round without rock settles it on the backend.
        assert_eq!(on_host, 0, "the list was scored on the host");
    };
    fn one<B: ModelOps>(b: &B, data: &Path, m: Measure<'_>) -> (Vec<Recommendation>, usize) {
        let mut sim = Similar::open(b, data, m).unwrap();
        let l = sim.lists(b, &[vec![0]], 2, Some(1)).unwrap().remove(0);
        (l, sim.lists_on_host())
    }
    check(&|| one(&b, &data, m));
    if let Some(g) = common::gpu() {
        check(&|| one(&g, &data, m));
    }
}
