//! `recommend` for many users at once (`--all`, `--users FILE`, `--histories FILE`): every
//! user's list is the one `recommend --user` (or `--history`) gives alone, on both backends,
//! whichever path made it (the best songs ranked on the device, or the whole catalogue read
//! back when they do not fill the list); a genre cap is the greedy walk down the full ranking;
//! the input files' bad lines are skipped and named; the command line writes one tab-separated
//! file atomically. `--explain`'s parts are what the model's scores say they are.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::model_ops::ModelOps;
use ainrnn::data::prepare::prepare;
use ainrnn::data::Dataset;
use ainrnn::eval::run::{
    load_ensemble, recommend, recommend_explained, recommend_users, Explanation, ListRequest,
    Recommendation, Users, UsersSummary, Who, BECAUSE,
};
use ainrnn::model::batch::{upload, Example};
use ainrnn::model::ModelKind;
use ainrnn::train::run::{train, TrainOptions};
use common::cli::{ainrnn, fails_with, s, stderr};
use common::greedy;

/// The first `users` users of the bundled Taste-Profile triplets with the MSD subset's metadata
/// (so songs have genres), every song kept, 3 folds; and a tiny AINRNN ensemble of two members
/// (1 epoch, the neighbourhood term on) trained on fold 0 with the CPU backend.
fn trained(dir: &Path, users: usize) -> (PathBuf, PathBuf) {
    let mut o = common::taste_prefix(dir, users);
    o.min_song_users = 1;
    let data = o.output.clone();
    prepare(&o, &mut |_| {}).unwrap();
    let ckpt = dir.join("m.ckpt");
    let mut t = TrainOptions::new(data.clone(), ModelKind::Ainrnn, ckpt.clone());
    (t.epochs, t.hidden, t.emb, t.layers, t.patience) = (1, 8, 16, Some(2), 0);
    t.ensemble = Some(2);
    train(&CpuBackend::new(), &t, |_| {}, |_, _, _, _| {}).unwrap();
    (data, ckpt)
}

/// Every user's list (id, list) from [`recommend_users`], and its summary.
fn all_lists<B: ModelOps>(
    b: &B,
    data: &Path,
    ckpt: &Path,
    users: Users<'_>,
    k: usize,
    cap: Option<usize>,
    fold: Option<u32>,
) -> (Vec<(String, Vec<Recommendation>)>, UsersSummary) {
    let mut got = Vec::new();
    let req = ListRequest {
        users,
        k,
        max_per_genre: cap,
        fold,
    };
    let summary = recommend_users(
        b,
        data,
        ckpt,
        req,
        &mut |u, l| {
            got.push((u.to_string(), l.to_vec()));
            Ok(())
        },
        &mut |_, _| {},
    )
    .unwrap();
    (got, summary)
}

fn ids(l: &[Recommendation]) -> Vec<&str> {
    l.iter().map(|r| r.song_id.as_str()).collect()
}

/// The lists of `--all` against `recommend --user` one user at a time, against the full ranking
/// (a `k` of the whole catalogue) cut or walked greedily under the genre cap, on backend `b`.
fn lists_agree<B: ModelOps>(b: &B, data: &Path, ckpt: &Path) {
    let ds = Dataset::load(data).unwrap();
    let songs = ds.songs();
    let who = b.describe();
    // The full ranking of every user (the whole-catalogue path: k above the device's top-k).
    let (full, sum) = all_lists(b, data, ckpt, Users::All, songs, None, None);
    assert_eq!(full.len(), ds.users(), "{who}");
    assert_eq!(
        sum.whole_catalogue,
        ds.users(),
        "{who}: k = {songs} is past the top-k"
    );
    for (u, (id, list)) in full.iter().enumerate() {
        assert_eq!(id, &ds.user_ids[u]);
        let heard = ds.history(u).0.len();
        assert_eq!(list.len(), songs - heard, "{who}: every unheard song, once");
        assert!(
            list.windows(2).all(|w| w[0].score >= w[1].score),
            "{who}: best first"
        );
        assert!(list.iter().enumerate().all(|(i, r)| r.rank == i + 1));
    }
    let mut capped_somewhere = false;
    for (k, cap) in [
        (10, None),
        (5, Some(1)),
        (12, Some(2)),
        (40, None),
        (40, Some(1)),
    ] {
        let (got, sum) = all_lists(b, data, ckpt, Users::All, k, cap, None);
        if cap.is_none() {
            let past = usize::from(k > ainrnn::backend::model_ops::MAX_TOPK);
            assert_eq!(sum.whole_catalogue, past * ds.users(), "{who}: k {k}");
        }
        for ((id, list), (_, whole)) in got.iter().zip(&full) {
            let want = greedy(whole, k, cap);
            assert_eq!(ids(list), want, "{who}: user {id}, k {k}, cap {cap:?}");
            capped_somewhere |= cap.is_some() && want != greedy(whole, k, None);
            for (r, w) in list
                .iter()
                .zip(whole.iter().filter(|w| want.contains(&w.song_id)))
            {
                assert!(
                    (r.score - w.score).abs() <= 1e-5 * (1.0 + w.score.abs()),
                    "{who}: user {id}, song {}: {} and {} on the full ranking",
                    r.song_id,
                    r.score,
                    w.score
                );
            }
        }
        // One user alone gets the same list, to the bit.
        for u in [0, ds.users() / 2, ds.users() - 1] {
            let id = &ds.user_ids[u];
            let alone = recommend(b, data, ckpt, Who::User(id), k, cap, None).unwrap();
            let batch = &got[u].1;
            assert_eq!(
                ids(&alone),
                ids(batch),
                "{who}: user {id}, k {k}, cap {cap:?}"
            );
            let bits =
                |l: &[Recommendation]| l.iter().map(|r| r.score.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&alone), bits(batch), "{who}: user {id}: scores");
        }
    }
    assert!(
        capped_somewhere,
        "the genre caps never changed a list: the test shows nothing"
    );
}

#[test]
fn every_users_list_is_the_one_it_gets_alone_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ckpt) = trained(dir.path(), 100);
    lists_agree(&CpuBackend::new(), &data, &ckpt);
}

#[test]
fn every_users_list_is_the_one_it_gets_alone_on_the_gpu() {
    let Some(g) = common::gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (data, ckpt) = trained(dir.path(), 100);
    lists_agree(&g, &data, &ckpt);
}

/// Dataset user `u`'s input as `recommend --user` makes it: the whole history, none of it
/// listed again.
fn whole_history(ds: &Dataset, u: usize) -> Example {
    let (songs, plays) = ds.history(u);
    Example {
        user: u as u32,
        songs: songs.to_vec(),
        plays: plays.to_vec(),
        targets: vec![],
        exclude: songs.to_vec(),
    }
}

/// `recommend --explain` against the model itself, on backend `b`, for a few test users of the
/// tiny AINRNN ensemble (per-song and pair weights on): each song's co-listening part is what
/// the members' scores lose when γ is set to 0, and each named history song's part is what its
/// own neighbour list adds (the members' scores with that song alone as the term's history,
/// less the scores without the term); the named songs are the largest parts; the attention's
/// weights cover the history the model read and sum to 1. Returns the explanations.
fn explanations_hold<B: ModelOps>(b: &B, data: &Path, ckpt: &Path) -> Vec<Explanation> {
    let ds = Dataset::load(data).unwrap();
    let (mut models, corpus, _) = load_ensemble(b, &ds, ckpt).unwrap();
    assert_eq!(models.len(), 2);
    let users: Vec<usize> = (0..ds.users())
        .filter(|&u| ds.user_fold[u] == 0 && ds.history(u).0.len() >= 3)
        .take(4)
        .collect();
    assert!(!users.is_empty());
    let mut out = Vec::new();
    for u in users {
        let id = &ds.user_ids[u];
        let (list, why) =
            recommend_explained(b, data, ckpt, Who::User(id), 10, None, None).unwrap();
        assert_eq!(why.songs.len(), list.len());
        let ex = whole_history(&ds, u);
        let batch = upload(b, &models[0].cfg, corpus.portraits.as_ref(), &[ex]).unwrap();
        let kept = batch.history[0].clone();
        // Per member: the user vector, and the scores with the term (whole history, each
        // history song alone) and without it (γ = 0).
        let index = |sid: &str| ds.song_ids.iter().position(|x| x == sid).unwrap();
        let mut with = vec![0.0f64; ds.songs()];
        let mut without = vec![0.0f64; ds.songs()];
        let mut alone: std::collections::HashMap<u32, Vec<f64>> = Default::default();
        for m in models.iter_mut() {
            let (uv, _) = m.forward(b, &batch, None).unwrap();
            let score = |m: &ainrnn::model::Model<B>, h: &[Vec<u32>]| -> Vec<f32> {
                let nb = m.scorer.neighbour_blocks(b, &m.params, h).unwrap();
                m.scorer.scores(b, &m.params, &uv, &nb).unwrap().remove(0)
            };
            let add = |acc: &mut Vec<f64>, v: Vec<f32>| {
                acc.iter_mut().zip(v).for_each(|(a, x)| *a += x as f64)
            };
            add(&mut with, score(m, &batch.history));
            for &h in &kept {
                add(
                    alone.entry(h).or_insert_with(|| vec![0.0; ds.songs()]),
                    score(m, &[vec![h]]),
                );
            }
            let g = m.scorer.gamma.expect("AINRNN has the term");
            let kept_g = b.to_f32(m.params.get(g)).unwrap();
            m.params.set(b, g, &[0.0]).unwrap();
            add(&mut without, score(m, &batch.history));
            m.params.set(b, g, &kept_g).unwrap();
        }
        for (r, w) in list.iter().zip(&why.songs) {
            let s = index(&r.song_id);
            let what = format!("user {id}, song {}", r.song_id);
            let tol = 1e-4 * (1.0 + with[s].abs());
            assert_eq!(w.song_id, r.song_id);
            assert_eq!(w.score, r.score, "{what}");
            assert!(
                (w.score as f64 - with[s]).abs() <= tol,
                "{what}: score {} against {}",
                w.score,
                with[s]
            );
            let co = with[s] - without[s];
            assert!(
                (w.co_listening as f64 - co).abs() <= tol,
                "{what}: co-listening {} against {co}",
                w.co_listening
            );
            assert!(
                (w.taste as f64 - without[s]).abs() <= tol,
                "{what}: taste {} against {}",
                w.taste,
                without[s]
            );
            // Each named history song's part is what its list adds, largest first; a song not
            // named adds no more than the last named one (and, with fewer than BECAUSE named,
            // nothing: a part below f32's resolution of the score is lost in the sum).
            assert!(w.because.len() <= BECAUSE);
            let part = |h: usize| alone[&(h as u32)][s] - without[s];
            for b in &w.because {
                let want = part(index(&b.song_id));
                assert!(
                    (b.part as f64 - want).abs() <= tol,
                    "{what}: {} part {} against {want}",
                    b.song_id,
                    b.part
                );
            }
            assert!(
                w.because.windows(2).all(|p| p[0].part >= p[1].part),
                "{what}: largest first"
            );
            let floor = match w.because.last() {
                Some(l) if w.because.len() == BECAUSE => l.part as f64,
                _ => 0.0,
            };
            for &h in &kept {
                let named = w
                    .because
                    .iter()
                    .any(|b| b.song_id == ds.song_ids[h as usize]);
                if !named {
                    assert!(
                        part(h as usize) <= floor + tol,
                        "{what}: {} adds {} but is not named",
                        ds.song_ids[h as usize],
                        part(h as usize)
                    );
                }
            }
        }
        let att = why.attention.as_ref().expect("AINRNN pools by attention");
        let att_ids: Vec<&str> = att.iter().map(|h| h.song_id.as_str()).collect();
        let kept_ids: Vec<&str> = kept
            .iter()
            .map(|&h| ds.song_ids[h as usize].as_str())
            .collect();
        assert_eq!(
            att_ids, kept_ids,
            "the attention covers the history the model read, oldest first"
        );
        let sum: f64 = att.iter().map(|h| h.weight as f64).sum();
        assert!(
            (sum - 1.0).abs() < 1e-5 && att.iter().all(|h| h.weight >= 0.0),
            "weights {sum}"
        );
        out.push(why);
    }
    // Not vacuous: the term named history songs.
    let named: usize = out
        .iter()
        .flat_map(|w| &w.songs)
        .map(|s| s.because.len())
        .sum();
    assert!(named > 0, "no song's co-listening named a history song");
    out
}

/// `Scorer::term_parts` with the per-song and pair log-weights and γ drawn at random (a
/// 1-epoch model's stay near their start, where a missing weight would go unseen): each part
/// is what that history song's list alone adds to the score, on backend `b`.
fn term_parts_hold<B: ModelOps>(b: &B, data: &Path, ckpt: &Path) {
    let ds = Dataset::load(data).unwrap();
    let (mut models, corpus, _) = load_ensemble(b, &ds, ckpt).unwrap();
    let m = &mut models[0];
    let mut rng = common::rng(7);
    let sc = &m.scorer;
    let ids = [sc.song_weights, sc.pair_weights, sc.gamma];
    for id in ids {
        let id = id.expect("the default model has per-song and pair weights");
        let n = m.params.get(id).len();
        let v = common::uniform(&mut rng, n, -1.0, 1.0);
        m.params.set(b, id, &v).unwrap();
    }
    let mut checked = 0;
    for u in (0..ds.users())
        .filter(|&u| ds.history(u).0.len() >= 3)
        .take(6)
    {
        let batch = upload(
            b,
            &m.cfg,
            corpus.portraits.as_ref(),
            &[whole_history(&ds, u)],
        )
        .unwrap();
        let kept = batch.history[0].clone();
        let (uv, _) = m.forward(b, &batch, None).unwrap();
        let score = |h: &[Vec<u32>]| -> Vec<f32> {
            let nb = m.scorer.neighbour_blocks(b, &m.params, h).unwrap();
            m.scorer.scores(b, &m.params, &uv, &nb).unwrap().remove(0)
        };
        let with = score(&batch.history);
        let base = score(&[vec![]]);
        let cands: Vec<u32> = (0..ds.songs() as u32).collect();
        let parts = m.scorer.term_parts(b, &m.params, &kept, &cands).unwrap();
        for &h in &kept {
            let alone = score(&[vec![h]]);
            for (s, p) in parts.iter().enumerate() {
                let want = alone[s] as f64 - base[s] as f64;
                let got = p.iter().find(|x| x.0 == h).map_or(0.0, |x| x.1 as f64);
                let tol = 1e-4 * (1.0 + base[s].abs() as f64);
                assert!(
                    (got - want).abs() <= tol,
                    "user {u}, history song {h}, song {s}: {got} against {want}"
                );
                checked += (want.abs() > 10.0 * tol) as usize;
            }
        }
        for (s, p) in parts.iter().enumerate() {
            let sum: f64 = p.iter().map(|x| x.1 as f64).sum();
            let want = with[s] as f64 - base[s] as f64;
            assert!(
                (sum - want).abs() <= 1e-4 * (1.0 + base[s].abs() as f64),
                "user {u}, song {s}: sum {sum} against {want}"
            );
            assert!(p.windows(2).all(|w| w[0].1 >= w[1].1), "largest first");
        }
    }
    assert!(checked > 100, "only {checked} parts clearly away from 0");
}

#[test]
fn explanations_are_what_the_model_adds_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ckpt) = trained(dir.path(), 100);
    explanations_hold(&CpuBackend::new(), &data, &ckpt);
    term_parts_hold(&CpuBackend::new(), &data, &ckpt);
}

/// On the GPU the same checks, and the same explanations as the CPU's (1e-4 relative).
#[test]
fn explanations_are_what_the_model_adds_on_the_gpu() {
    let Some(g) = common::gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (data, ckpt) = trained(dir.path(), 100);
    term_parts_hold(&g, &data, &ckpt);
    let got = explanations_hold(&g, &data, &ckpt);
    let want = explanations_hold(&CpuBackend::new(), &data, &ckpt);
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + b.abs());
    for (g, c) in got.iter().zip(&want) {
        for (x, y) in g.songs.iter().zip(&c.songs) {
            assert_eq!(x.song_id, y.song_id);
            assert!(
                close(x.co_listening, y.co_listening) && close(x.taste, y.taste),
                "{x:?} against {y:?}"
            );
        }
        for (x, y) in g
            .attention
            .iter()
            .flatten()
            .zip(c.attention.iter().flatten())
        {
            assert!(close(x.weight, y.weight), "{x:?} against {y:?}");
        }
    }
}

/// A users file: lists in the file's order, each user once; unknown ids, lines of two fields,
/// invalid UTF-8 and (with a fold) another fold's users skipped with their line; a file that
/// names nobody usable is an error naming it.
#[test]
fn a_users_file_keeps_its_order_and_names_the_lines_it_skips() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ckpt) = trained(dir.path(), 40);
    let ds = Dataset::load(&data).unwrap();
    let b = CpuBackend::new();
    let in0: Vec<&String> = (0..ds.users())
        .filter(|&u| ds.user_fold[u] == 0)
        .map(|u| &ds.user_ids[u])
        .collect();
    let other = (0..ds.users()).find(|&u| ds.user_fold[u] != 0).unwrap();
    let file = dir.path().join("users.txt");
    let mut text = format!("\u{feff}{}\n\n# a comment\nnobody\n", in0[1]).into_bytes();
    text.extend_from_slice(format!("{} extra\n", in0[0]).as_bytes());
    text.extend_from_slice(b"\xff\xfe\n");
    text.extend_from_slice(
        format!("{}\n  {}  \r\n{}\n", ds.user_ids[other], in0[0], in0[1]).as_bytes(),
    );
    std::fs::write(&file, text).unwrap();
    let (got, sum) = all_lists(&b, &data, &ckpt, Users::File(&file), 3, None, Some(0));
    let order: Vec<&str> = got.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(order, [in0[1].as_str(), in0[0].as_str()]);
    assert!(got.iter().all(|(_, l)| l.len() == 3));
    assert_eq!((sum.users, sum.repeated), (2, 1));
    let skipped: Vec<(usize, &str)> = sum
        .skipped
        .iter()
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert_eq!(skipped[0].0, 4);
    assert!(skipped[0].1.contains("not a user of"), "{skipped:?}");
    assert_eq!(skipped[1].0, 5);
    assert!(
        skipped[1].1.contains("second field \"extra\""),
        "{skipped:?}"
    );
    assert_eq!(skipped[2].0, 6);
    assert!(skipped[2].1.contains("UTF-8"), "{skipped:?}");
    assert_eq!(skipped[3].0, 7);
    assert!(
        skipped[3].1.contains("not a test user of --fold 0"),
        "{skipped:?}"
    );
    // Without a fold, the other fold's user is listed too.
    let (got, sum) = all_lists(&b, &data, &ckpt, Users::File(&file), 3, None, None);
    assert_eq!((got.len(), sum.skipped.len()), (3, 3));
    // --all with a fold: that fold's test users, in the dataset's order.
    let (got, _) = all_lists(&b, &data, &ckpt, Users::All, 3, None, Some(0));
    assert_eq!(got.iter().map(|(u, _)| u).collect::<Vec<_>>(), in0);

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "nobody\nnoone\n").unwrap();
    let req = ListRequest {
        users: Users::File(&bad),
        k: 3,
        max_per_genre: None,
        fold: None,
    };
    let e = recommend_users(
        &b,
        &data,
        &ckpt,
        req,
        &mut |_, _| panic!("nothing to write"),
        &mut |_, _| {},
    )
    .expect_err("no usable user")
    .to_string();
    assert!(
        e.contains("bad.txt") && e.contains("no user to recommend for") && e.contains("line 1"),
        "{e}"
    );
}

/// The command line: `--all -o` writes a header and k rows a user, seven tab-separated fields
/// each; skipped lines give exit status 3 and a line each on stderr; `-o` is required by
/// `--all`/`--users`, refused with `--user`, and may not name an input; a failed run leaves no
/// file behind.
#[test]
fn the_command_line_writes_one_tab_separated_file() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ckpt) = trained(dir.path(), 40);
    let ds = Dataset::load(&data).unwrap();
    let out = dir.path().join("recs.tsv");
    let base = ["recommend", "--data", s(&data), "--checkpoint", s(&ckpt)];
    let o = ainrnn(
        &[
            &["--json"],
            &base[..],
            &["--all", "--k", "4", "-o", s(&out)],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["users"].as_u64(), Some(ds.users() as u64), "{j}");
    assert_eq!(j["skipped"].as_array().map(Vec::len), Some(0), "{j}");
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(
        rows[0],
        ["user", "rank", "song_id", "score", "title", "artist", "genre"]
    );
    assert_eq!(rows.len(), 1 + 4 * ds.users());
    assert!(
        rows.iter().all(|r| r.len() == 7),
        "seven fields on every line"
    );
    assert_eq!((rows[1][0], rows[1][1]), (ds.user_ids[0].as_str(), "1"));
    assert!(rows[1][3].parse::<f32>().is_ok(), "{:?}", rows[1]);
    // The single user's list, as the command prints it, is the file's.
    let one = ainrnn(
        &[
            &["--json"],
            &base[..],
            &["--user", &ds.user_ids[0], "--k", "4"],
        ]
        .concat(),
    );
    let one: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    let songs: Vec<&str> = one["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["song_id"].as_str().unwrap())
        .collect();
    assert_eq!(songs, rows[1..5].iter().map(|r| r[2]).collect::<Vec<_>>());
    // --explain: the same list, each song's split in the JSON and under it in the text.
    let who = ["--user", ds.user_ids[0].as_str(), "--k", "4", "--explain"];
    let o = ainrnn(&[&["--json"], &base[..], &who[..]].concat());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["recommendations"], one["recommendations"], "{j}");
    let why = j["explanation"]["songs"].as_array().unwrap();
    assert_eq!(why.len(), 4, "{j}");
    for (w, r) in why.iter().zip(j["recommendations"].as_array().unwrap()) {
        let f = |k: &str| w[k].as_f64().unwrap();
        assert_eq!(w["song_id"], r["song_id"]);
        assert!(
            (f("taste") + f("co_listening") - f("score")).abs() < 1e-3 * (1.0 + f("score").abs()),
            "{w}"
        );
    }
    let att = j["explanation"]["attention"].as_array().unwrap();
    let sum: f64 = att.iter().map(|h| h["weight"].as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-5, "{j}");
    let text = String::from_utf8(ainrnn(&[&base[..], &who[..]].concat()).stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("attention over the "), "{text}");
    assert_eq!(lines.len(), 1 + 2 * 4, "{text}");
    assert!(
        lines[2].trim_start().starts_with("taste ") && lines[2].contains("+ co-listening "),
        "{text}"
    );
    common::cli::usage_error(
        &ainrnn(&[&base[..], &["--all", "-o", s(&out), "--explain"]].concat()),
        &["--explain explains one list"],
    );
    // An IndRNN without the term: no attention, every score all taste.
    let plain = dir.path().join("plain.ckpt");
    let mut args = common::cli::tiny_train_args(&data, &plain);
    args.extend(["--neighbours", "0", "--ensemble", "1"]);
    common::cli::succeeds(&ainrnn(&args));
    let base = ["recommend", "--data", s(&data), "--checkpoint", s(&plain)];
    let o = ainrnn(&[&["--json"], &base[..], &who[..]].concat());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j["explanation"]["attention"].is_null(), "{j}");
    assert_eq!(j["explanation"]["co_listening_term"], false, "{j}");
    for w in j["explanation"]["songs"].as_array().unwrap() {
        assert_eq!(
            (w["co_listening"].as_f64(), w["taste"].as_f64()),
            (Some(0.0), w["score"].as_f64()),
            "{w}"
        );
    }
    let text = String::from_utf8(ainrnn(&[&base[..], &who[..]].concat()).stdout).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains("(the model has no co-listening term)")),
        "{text}"
    );

    let users = dir.path().join("users.txt");
    std::fs::write(&users, format!("{}\nnobody\n", ds.user_ids[1])).unwrap();
    let o = ainrnn(&[&base[..], &["--users", s(&users), "-o", s(&out)]].concat());
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(
        e.contains("users.txt:2: user \"nobody\": not a user of"),
        "{e}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines().count(),
        11,
        "header and 10 rows of the one user: {text}"
    );

    common::cli::usage_error(
        &ainrnn(&[&base[..], &["--all"]].concat()),
        &["give -o FILE"],
    );
    common::cli::usage_error(
        &ainrnn(&[&base[..], &["--user", &ds.user_ids[0], "-o", s(&out)]].concat()),
        &["-o writes the lists of --all, --users or --histories"],
    );
    fails_with(
        &ainrnn(&[&base[..], &["--all", "-o", s(&data)]].concat()),
        &["-o", "--data"],
    );
    fails_with(
        &ainrnn(&[&base[..], &["--users", s(&users), "-o", s(&users)]].concat()),
        &["--users"],
    );
    // A run that fails after taking the output (every line unusable) leaves the last file as
    // it was and no temporary beside it.
    std::fs::write(&users, "nobody\n").unwrap();
    let before = std::fs::read(&out).unwrap();
    fails_with(
        &ainrnn(&[&base[..], &["--users", s(&users), "-o", s(&out)]].concat()),
        &["users.txt", "no user to recommend for"],
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp") || n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `--histories`: each new user's list is the one `--history` gives for the same songs and
/// plays (a pair listed again adds its plays, as there); lines with an unknown song, a bad
/// play count or the wrong number of fields are skipped and named; a user left with no song
/// gets no list; a file that gives nobody a song is an error naming it.
#[test]
fn new_users_from_a_histories_file_get_the_lists_that_history_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ckpt) = trained(dir.path(), 40);
    let ds = Dataset::load(&data).unwrap();
    let b = CpuBackend::new();
    let song = |i: usize| ds.song_ids[i].as_str();
    let file = dir.path().join("histories.txt");
    let text = [
        "\u{feff}# new users".to_string(),
        format!("ann\t{}\t3", song(0)),
        format!("bob\t{}", song(5)),
        format!("ann\t{}\t2", song(7)),
        format!("ann\t{}\t4", song(0)),
        "cid\tNO_SUCH_SONG\t1".into(),
        format!("bob\t{}\tmany", song(9)),
        format!("bob\t{} 1 extra", song(9)),
        String::new(),
        format!("bob   {}   6", song(11)),
    ]
    .join("\n");
    std::fs::write(&file, text).unwrap();
    let (got, sum) = all_lists(&b, &data, &ckpt, Users::Histories(&file), 6, Some(2), None);
    assert_eq!(
        got.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(),
        ["ann", "bob"]
    );
    assert_eq!((sum.users, sum.repeated), (2, 1));
    let lines: Vec<usize> = sum.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, [6, 7, 8], "{:?}", sum.skipped);
    assert!(sum.skipped[0]
        .reason
        .contains("not in the dataset's catalogue"));
    assert_eq!(sum.skipped[0].id, "cid");
    assert!(
        sum.skipped[1].reason.contains("play count"),
        "{:?}",
        sum.skipped
    );
    assert!(
        sum.skipped[2].reason.contains("found 4 fields"),
        "{:?}",
        sum.skipped
    );
    // The same histories one at a time: ann's first song with 3 + 4 plays.
    for ((user, list), history) in got.iter().zip([
        format!("{}\t7\n{}\t2\n", song(0), song(7)),
        format!("{}\n{}\t6\n", song(5), song(11)),
    ]) {
        let h = dir.path().join(format!("{user}.txt"));
        std::fs::write(&h, history).unwrap();
        let alone = recommend(&b, &data, &ckpt, Who::History(&h), 6, Some(2), None).unwrap();
        assert_eq!(ids(&alone), ids(list), "{user}");
        let bits = |l: &[Recommendation]| l.iter().map(|r| r.score.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&alone), bits(list), "{user}: scores");
        assert_eq!(list.len(), 6);
    }
    // Plays count: ann with 7 plays of her first song ranks otherwise than with 1.
    let once = dir.path().join("once.txt");
    std::fs::write(&once, format!("{}\t1\n{}\t2\n", song(0), song(7))).unwrap();
    let other = recommend(&b, &data, &ckpt, Who::History(&once), 6, Some(2), None).unwrap();
    assert_ne!(
        other.iter().map(|r| r.score.to_bits()).collect::<Vec<_>>(),
        got[0]
            .1
            .iter()
            .map(|r| r.score.to_bits())
            .collect::<Vec<_>>(),
        "the merged plays reach the model"
    );

    let histories = |file: &Path| {
        ainrnn(&[
            "recommend",
            "--data",
            s(&data),
            "--checkpoint",
            s(&ckpt),
            "--histories",
            s(file),
            "-o",
            s(&dir.path().join("out.tsv")),
        ])
    };
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "x\tNO_SUCH_SONG\n").unwrap();
    fails_with(
        &histories(&bad),
        &[
            "bad.txt",
            "no new user with a song of the catalogue",
            "line 1",
        ],
    );
    let o = histories(&file);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(
        e.contains("histories.txt:6: user \"cid\": song \"NO_SUCH_SONG\""),
        "{e}"
    );
    assert!(e.contains("1 (user, song) pair listed again"), "{e}");
}
