//! Item cold start (`compare --cold-songs F`): no listen of a cold song reaches training, the
//! content-kNN and artist-popularity baselines on hand-made data, the learned models' cold score
//! from the cold song's features only (projection + attribute-to-feature mapping), and the flag's
//! errors.

mod common;

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::data::dataset::NO_GENRE;
use ainrnn::data::{Dataset, SongMeta, SongVectors};
use ainrnn::eval::baselines::{ArtistPopularity, ContentKnn};
use ainrnn::eval::compare::{
    cold_questions, cold_split, fit_mapping, neural_cold_scores, rank_candidates, warm_view,
    ColdSongs, ColdSplit,
};
use ainrnn::model::ModelKind;
use ainrnn::train::run::{train, TrainOptions};
use common::cli::{ainrnn, fails_with, s, small, succeeds};

/// A song's feature vector.
type VecOf<'a> = dyn Fn(usize) -> Vec<f32> + 'a;

/// `histories[u]` = (song, plays); songs get `dim`-column vectors `vec(s)` and the artists
/// `artist(s)`; users alternate over `folds` folds; every listen visible.
fn dataset(
    songs: usize,
    histories: &[Vec<(u32, f32)>],
    vectors: Option<(usize, &VecOf<'_>)>,
    artist: &dyn Fn(usize) -> String,
    folds: u32,
) -> Dataset {
    let n = histories.len();
    let mut indptr = vec![0u64];
    let (mut indices, mut plays) = (vec![], vec![]);
    for h in histories {
        for &(s, p) in h {
            indices.push(s);
            plays.push(p);
        }
        indptr.push(indices.len() as u64);
    }
    let nnz = indices.len();
    Dataset {
        source: "test".into(),
        user_ids: (0..n).map(|u| format!("u{u}")).collect(),
        song_ids: (0..songs).map(|s| format!("s{s}")).collect(),
        song_meta: (0..songs)
            .map(|s| SongMeta {
                artist: artist(s),
                ..SongMeta::unknown()
            })
            .collect(),
        indptr,
        indices,
        plays,
        folds,
        user_fold: (0..n as u32).map(|u| u % folds).collect(),
        visible: (0..nnz).map(|i| i % 2 == 0).collect(),
        portrait: common::blank_portraits(n, songs),
        song_vectors: vectors.map(|(dim, f)| SongVectors {
            dim,
            names: (0..dim).map(|c| format!("x{c}")).collect(),
            source: "audio".into(),
            values: (0..songs).flat_map(f).collect(),
            present: vec![true; songs],
        }),
        seed: 1,
        visible_share: 0.5,
        min_listens: 1,
        min_song_users: 1,
    }
}

/// 120 users, 100 songs: user u listens to songs u, u+7, u+13, … (mod 100), plays 1 + s % 4;
/// 3 feature columns from the song id; artists of 5 songs each.
fn random_dataset() -> Dataset {
    let histories: Vec<Vec<(u32, f32)>> = (0..120u32)
        .map(|u| {
            (0..6u32)
                .map(|i| {
                    let s = (u * 3 + i * 13 + i * i) % 100;
                    (s, 1.0 + (s % 4) as f32)
                })
                .collect()
        })
        .collect();
    let vec = |s: usize| {
        vec![
            (s as f32 * 0.37).sin(),
            (s as f32 * 0.11).cos(),
            (s % 7) as f32 - 3.0,
        ]
    };
    dataset(
        100,
        &histories,
        Some((3, &vec)),
        &|s| format!("artist{}", s / 5),
        3,
    )
}

#[test]
fn cold_share_is_checked_and_named() {
    for bad in [0.0, 1.0, -0.2, 1.5, f64::NAN] {
        let e = cold_split(100, bad, 1).unwrap_err().to_string();
        assert!(e.contains("--cold-songs") && e.contains("0 < F < 1"), "{e}");
    }
    let e = cold_split(50, 0.2, 1).unwrap_err().to_string();
    assert!(
        e.contains("--cold-songs") && e.contains("10 cold songs of 50") && e.contains("20"),
        "{e}"
    );
    let a = cold_split(200, 0.2, 7).unwrap();
    assert_eq!(a.songs.len(), 40);
    assert_eq!(a.cold.iter().filter(|&&c| c).count(), 40);
    assert!(a.songs.iter().all(|&s| a.cold[s as usize]));
    assert_eq!(a.songs, cold_split(200, 0.2, 7).unwrap().songs, "seeded");
    assert_ne!(a.songs, cold_split(200, 0.2, 8).unwrap().songs);
}

#[test]
fn no_cold_listen_reaches_the_warm_view() {
    let ds = random_dataset();
    let split = cold_split(ds.songs(), 0.3, 3).unwrap();
    let (view, map) = warm_view(&ds, &split.cold);
    let cold_ids: Vec<&String> = split
        .songs
        .iter()
        .map(|&s| &ds.song_ids[s as usize])
        .collect();
    assert_eq!(view.songs(), 70);
    assert!(view.song_ids.iter().all(|id| !cold_ids.contains(&id)));
    let cold_listens = ds
        .indices
        .iter()
        .filter(|&&s| split.cold[s as usize])
        .count();
    assert!(cold_listens > 0);
    assert_eq!(view.interactions(), ds.interactions() - cold_listens);
    // Every listen of the view is the same (user, song, plays, visible) as one of the original.
    for u in 0..ds.users() {
        let (vs, vp) = view.history(u);
        let (os, op) = ds.history(u);
        let kept: Vec<(String, f32)> = os
            .iter()
            .zip(op)
            .filter(|(s, _)| !split.cold[**s as usize])
            .map(|(s, p)| (ds.song_ids[*s as usize].clone(), *p))
            .collect();
        let got: Vec<(String, f32)> = vs
            .iter()
            .zip(vp)
            .map(|(s, p)| (view.song_ids[*s as usize].clone(), *p))
            .collect();
        assert_eq!(got, kept, "user {u}");
    }
    for (s, &w) in map.iter().enumerate() {
        if !split.cold[s] {
            let w = w as usize;
            let v = view.song_vectors.as_ref().unwrap();
            assert_eq!(
                &v.values[w * 3..w * 3 + 3],
                &ds.song_vectors.as_ref().unwrap().values[s * 3..s * 3 + 3]
            );
        }
    }
    // It saves and loads as a valid dataset.
    let dir = tempfile::tempdir().unwrap();
    view.save(&dir.path().join("v.h5")).unwrap();
    assert_eq!(Dataset::load(&dir.path().join("v.h5")).unwrap(), view);
}

#[test]
fn artist_popularity_counts_no_cold_listen() {
    // Songs 0, 1 by artist A, 2, 3 by B, 4 by nobody. Cold: 1 and 3.
    let h = |v: &[u32]| v.iter().map(|&s| (s, 1.0)).collect::<Vec<_>>();
    let histories = vec![h(&[0, 1, 2]), h(&[0, 3, 3]), h(&[1, 3, 4]), h(&[2, 0])];
    let artist = |s: usize| ["A", "A", "B", "B", ""][s].to_string();
    let ds = dataset(5, &histories, None, &artist, 1);
    let cold = [false, true, false, true, false];
    let p = ArtistPopularity::fit(&ds, &[0, 1, 2, 3], &cold);
    // A: song 0 heard by users 0, 1, 3 → 3; B: song 2 by users 0, 3 → 2; no artist → 0.
    assert_eq!(p.scores, vec![3.0, 3.0, 2.0, 2.0, 0.0]);
    // More listens of the cold songs change nothing.
    let more = vec![
        h(&[0, 1, 2, 3]),
        h(&[0, 3, 1]),
        h(&[1, 3, 4]),
        h(&[2, 0, 1, 3]),
    ];
    let ds2 = dataset(5, &more, None, &artist, 1);
    assert_eq!(
        ArtistPopularity::fit(&ds2, &[0, 1, 2, 3], &cold).scores,
        p.scores
    );
    // Only the fitting users count.
    assert_eq!(
        ArtistPopularity::fit(&ds, &[0], &cold).scores,
        vec![1.0, 1.0, 1.0, 1.0, 0.0]
    );
}

#[test]
fn content_knn_ranks_by_mean_cosine() {
    let rows = [
        [1.0f32, 0.0],
        [0.0, 2.0],
        [3.0, 3.0],
        [-1.0, 0.0],
        [1.0, -0.5],
    ];
    let vec = |s: usize| rows[s].to_vec();
    let ds = dataset(5, &[vec![(0, 1.0)]], Some((2, &vec)), &|_| String::new(), 1);
    let c = ContentKnn::new(&ds, 0.0).unwrap();
    let sc = c.scores(&[0], &[1, 2, 3, 4]);
    let want = [0.0, 0.5f32.sqrt(), -1.0, 1.0 / 1.25f32.sqrt()];
    for (g, w) in sc.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{sc:?}");
    }
    // History {0, 1}: mean of the two cosines, song 2 ([1,1] direction) is closest to both.
    let sc = c.scores(&[0, 1, 1], &[2, 3, 4]);
    let want = [0.5f32.sqrt(), -0.5, (1.0 - 0.5) / 1.25f32.sqrt() / 2.0];
    for (g, w) in sc.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{sc:?}");
    }
    let tie: Vec<u32> = (0..5).collect();
    assert_eq!(
        rank_candidates(&c.scores(&[0], &[1, 2, 3, 4]), &[1, 2, 3, 4], &tie, 3),
        vec![4, 2, 1]
    );
    // A genre adds "same genre" at equal weight: cos = (cos_v + same) / 2.
    let mut g = ds.clone();
    g.portrait.song_genre = vec![0, 0, 1, NO_GENRE, NO_GENRE];
    let c = ContentKnn::new(&g, 0.0).unwrap();
    let sc = c.scores(&[0], &[1, 2]);
    assert!((sc[0] - 0.5).abs() < 1e-6, "{sc:?}");
    assert!((sc[1] - 0.5f32.sqrt() / 2.0).abs() < 1e-6, "{sc:?}");
}

/// The artist part: with weight w a song's unit row is (v, w·artist one-hot) / √(1 + w²), so a
/// candidate by the artist of a history song gains w² / (1 + w²) times the history's share of
/// that artist; weight 0 ignores artists, and an unknown artist adds nothing.
#[test]
fn content_knn_adds_the_artist_at_its_weight() {
    let rows = [
        [1.0f32, 0.0],
        [1.0, 0.0],
        [1.0, 0.0],
        [0.0, 1.0],
        [1.0, 0.0],
    ];
    let vec = |s: usize| rows[s].to_vec();
    let artist = |s: usize| ["a", "b", "a", "a", ""][s].to_string();
    let ds = dataset(5, &[vec![(0, 1.0)]], Some((2, &vec)), &artist, 1);
    let plain = ContentKnn::new(&ds, 0.0).unwrap();
    let sc = plain.scores(&[0], &[1, 2, 4]);
    assert_eq!(sc, vec![1.0, 1.0, 1.0], "weight 0: artists ignored");
    for w in [1.0f32, 2.0] {
        let c = ContentKnn::new(&ds, w).unwrap();
        let d = 1.0 + w * w;
        // History {0 (a), 1 (b)}: half of it by artist a.
        let sc = c.scores(&[0, 1], &[2, 3, 4]);
        // Song 2 (a, same direction): vector cosine 1/d, artist (w²/d)·½. Song 3 (a,
        // orthogonal): the artist part only. Song 4 (no artist): its unit row is v alone, so
        // the cosine is 1/√d.
        let want = [1.0 / d + 0.5 * w * w / d, 0.5 * w * w / d, 1.0 / d.sqrt()];
        for (g, x) in sc.iter().zip(want) {
            assert!((g - x).abs() < 1e-6, "w {w}: {sc:?} vs {want:?}");
        }
        assert_eq!(c.artist_weight, w);
    }
}

/// The weight is chosen on validation users: where the held-out song shares the artist of the
/// history and nothing else, the smallest weight that lifts it above the vectors' favourite wins
/// (ties go to the smaller weight); where artists say nothing, 0.
#[test]
fn content_knn_chooses_the_artist_weight_on_validation() {
    use ainrnn::eval::baselines::ARTIST_WEIGHTS;
    use ainrnn::model::batch::Example;
    use ainrnn::train::metrics::Catalogue;
    // Song 0 and 3 by artist x; songs 1, 2 by others; vectors favour song 1 for a history {0}.
    let rows = [[1.0f32, 0.0], [1.0, 0.1], [0.0, 1.0], [-1.0, 0.2]];
    let vec = |s: usize| rows[s].to_vec();
    let artist = |s: usize| ["x", "y", "z", "x"][s].to_string();
    let ds = dataset(4, &[vec![(0, 1.0), (3, 1.0)]], Some((2, &vec)), &artist, 1);
    let val = vec![Example {
        user: 0,
        songs: vec![0],
        plays: vec![1.0],
        targets: vec![3],
        exclude: vec![0],
    }];
    let truth = vec![vec![(3u32, 1.0f32)]];
    let cat = Catalogue {
        songs: 4,
        popularity: vec![0; 4],
        genre: None,
    };
    let (c, tried) = ContentKnn::choose(&ds, &val, &truth, 1, &cat).unwrap();
    assert_eq!(tried.len(), ARTIST_WEIGHTS.len());
    assert_eq!(tried[0].1, 0.0, "without the artist, song 1 comes first");
    // Weight 1: song 3 gains ½ from the artist but loses ~½ on the vectors; weight 2 lifts it.
    assert_eq!(tried[1].1, 0.0, "{tried:?}");
    assert_eq!(tried[2].1, 1.0, "{tried:?}");
    assert_eq!(c.artist_weight, 2.0, "{tried:?}");
    // Every song its own artist: no weight changes the ranking, so 0 is kept.
    let own = |s: usize| format!("artist {s}");
    let ds = dataset(4, &[vec![(0, 1.0), (1, 1.0)]], Some((2, &vec)), &own, 1);
    let val = vec![Example {
        targets: vec![1],
        ..val[0].clone()
    }];
    let truth = vec![vec![(1u32, 1.0f32)]];
    let (c, tried) = ContentKnn::choose(&ds, &val, &truth, 1, &cat).unwrap();
    assert_eq!(c.artist_weight, 0.0, "{tried:?}");
}

#[test]
fn questions_are_cold_truths_over_warm_histories() {
    let h = |v: &[u32]| v.iter().map(|&s| (s, 2.0)).collect::<Vec<_>>();
    // One fold: all users are test users.
    let histories = vec![h(&[0, 1]), h(&[1, 2]), h(&[2, 3]), h(&[0, 2])];
    let ds = dataset(4, &histories, None, &|_| String::new(), 1);
    let mut cold = vec![false; 4];
    cold[2] = true;
    cold[3] = true;
    let split = ColdSplit {
        cold,
        songs: vec![2, 3],
    };
    let q = cold_questions(&ds, &split, 0);
    assert_eq!(q.skipped_no_cold, 1, "user 0");
    assert_eq!(q.skipped_no_warm, 1, "user 2");
    let users: Vec<u32> = q.examples.iter().map(|e| e.user).collect();
    assert_eq!(users, vec![1, 3]);
    assert_eq!(q.examples[0].songs, vec![1]);
    assert_eq!(q.truths[0], vec![(2, 2.0)]);
    assert_eq!(q.examples[1].songs, vec![0]);
}

/// Without an artist that has warm songs, a cold song is scored from its features only (the
/// projection and the mapping); with one, the mapping's part is replaced by the mean learned
/// row and bias of that artist's warm songs.
#[test]
fn learned_cold_scores_come_from_the_features_and_the_artist() {
    let dir = tempfile::tempdir().unwrap();
    let ds = random_dataset();
    let split = cold_split(ds.songs(), 0.3, 3).unwrap();
    let (view, map) = warm_view(&ds, &split.cold);
    let path = dir.path().join("view.h5");
    view.save(&path).unwrap();
    let out = dir.path().join("m.ckpt");
    let mut o = TrainOptions::new(path, ModelKind::Indrnn, out.clone());
    o.epochs = 1;
    o.hidden = 8;
    o.emb = 8;
    o.layers = Some(1);
    o.patience = 0;
    let b = CpuBackend::new();
    train(&b, &o, |_| {}, |_, _, _, _| {}).unwrap();
    let (model, _, _) = ainrnn::eval::run::load_model(&b, &view, &out).unwrap();
    assert_eq!(
        model.scorer.songs, 70,
        "cold songs are not in the trained catalogue: no row E[s], no bias"
    );
    let q = cold_questions(&ds, &split, 0);
    assert!(!q.examples.is_empty());
    let feats = ds.song_vectors.as_ref().unwrap().values.clone();
    let no_artist = vec![String::new(); split.songs.len()];
    let base = neural_cold_scores(
        &b,
        &view,
        &out,
        &q.examples,
        &map,
        ColdSongs {
            songs: &split.songs,
            artists: &no_artist,
        },
        (&feats, 3),
    )
    .unwrap();
    // Linear in the cold song's features and nothing else: zero features score exactly 0,
    // doubled features double the score, other cold songs keep theirs.
    let (c0, c1) = (split.songs[0] as usize, split.songs[1] as usize);
    let mut f = feats.clone();
    f[c0 * 3..c0 * 3 + 3].fill(0.0);
    f[c1 * 3..c1 * 3 + 3].iter_mut().for_each(|x| *x *= 2.0);
    let scores = |artists: &[String], f: &[f32]| {
        let cold = ColdSongs {
            songs: &split.songs,
            artists,
        };
        neural_cold_scores(&b, &view, &out, &q.examples, &map, cold, (f, 3)).unwrap()
    };
    let got = scores(&no_artist, &f);
    for (g, w) in got.iter().zip(&base) {
        assert_eq!(g[0], 0.0);
        assert!(
            (g[1] - 2.0 * w[1]).abs() <= 1e-5 * w[1].abs().max(1.0),
            "{g:?} {w:?}"
        );
        assert_eq!(&g[2..], &w[2..]);
    }
    assert!(
        base.iter().any(|w| w[0] != 0.0),
        "the projection is not zero"
    );
    // The first two cold songs by an artist with warm songs, their features zeroed: the same
    // non-zero score (the artist's mean row and bias); an artist without warm songs keeps the
    // mapping (0 with zero features).
    let warm_artist = view.song_meta[0].artist.clone();
    let mut artists = no_artist.clone();
    artists[0] = warm_artist.clone();
    artists[1] = warm_artist;
    artists[2] = "nobody warm".into();
    let mut f = feats.clone();
    for &c in &split.songs[..3] {
        f[c as usize * 3..c as usize * 3 + 3].fill(0.0);
    }
    let got = scores(&artists, &f);
    for g in &got {
        assert_eq!(g[0], g[1], "{g:?}");
        assert_eq!(g[2], 0.0, "{g:?}");
    }
    assert!(got.iter().any(|g| g[0] != 0.0), "the artist's rows count");
}

#[test]
fn the_mapping_recovers_a_linear_map_and_shrinks_with_the_ridge() {
    // y = x R exactly, 40 songs × 3 columns → 4 outputs.
    let (n, d, out) = (40, 3, 4);
    let x: Vec<f32> = (0..n * d)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
        .collect();
    let r: Vec<f32> = (0..d * out).map(|i| i as f32 * 0.25 - 1.0).collect();
    let y: Vec<f32> = (0..n)
        .flat_map(|s| {
            let (x, r) = (&x, &r);
            (0..out).map(move |k| (0..d).map(|j| x[s * d + j] * r[j * out + k]).sum::<f32>())
        })
        .collect();
    let m = fit_mapping(&x, &y, n, d, out, 1e-9).unwrap();
    for (a, b) in m.iter().zip(&r) {
        assert!((a - b).abs() < 1e-4, "{m:?} vs {r:?}");
    }
    // A large ridge pulls the map towards 0.
    let shrunk = fit_mapping(&x, &y, n, d, out, 1e6).unwrap();
    assert!(shrunk.iter().all(|v| v.abs() < 0.05), "{shrunk:?}");
}

#[test]
fn compare_cold_flags_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = small(dir.path());
    let rep = dir.path().join("r");
    // Outside (0, 1): a usage error, before the data is read.
    for f in ["1.5", "0", "NaN"] {
        let o = ainrnn(&[
            "compare",
            "--data",
            s(&data),
            "--cold-songs",
            f,
            "--report",
            s(&rep),
        ]);
        assert_eq!(o.status.code(), Some(2));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("--cold-songs") && e.contains("(0, 1)"), "{e}");
    }
    fails_with(
        &ainrnn(&[
            "compare",
            "--data",
            s(&data),
            "--cold-songs",
            "0.001",
            "--folds",
            "2",
            "--report",
            s(&rep),
        ]),
        &["--cold-songs", "cold songs of", "at least 20"],
    );
    let o = ainrnn(&[
        "--json",
        "compare",
        "--data",
        s(&data),
        "--cold-songs",
        "0.3",
        "--folds",
        "2",
        "--models",
        "popularity,itemknn,ease,contentknn,indrnn",
        "--report",
        s(&rep),
    ]);
    succeeds(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &v["cold_start"]["models"];
    assert!(m["popularity"]["ndcg_at_10"].as_f64().unwrap() >= 0.0);
    assert!(m["popularity"]["users_ranked"].as_u64().unwrap() > 0);
    assert!(m["itemknn"]["not_run"]
        .as_str()
        .unwrap()
        .starts_with("not applicable"));
    assert!(m["ease"]["not_run"]
        .as_str()
        .unwrap()
        .starts_with("not applicable"));
    // The small triplets have neither song vectors nor genres.
    assert!(m["indrnn"]["not_run"]
        .as_str()
        .unwrap()
        .contains("no song features"));
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(md.contains("## Cold start") && md.contains("| itemknn | not applicable"));
    assert!(rep.join("results.json").exists());
    // The warm view is written to DIR/checkpoints/: it may not be the input.
    let view = rep.join("checkpoints").join("cold-warm-view.h5");
    fails_with(
        &ainrnn(&[
            "compare",
            "--data",
            s(&view),
            "--cold-songs",
            "0.3",
            "--folds",
            "2",
            "--report",
            s(&rep),
        ]),
        &["--report", "would overwrite the input --data"],
    );
}
