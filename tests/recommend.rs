//! `recommend` for many users at once (`--all`, `--users FILE`, `--histories FILE`): every
//! user's list is the one `recommend --user` (or `--history`) gives alone, on both backends,
//! whichever path made it (the best songs ranked on the device, or the whole catalogue read
//! back when they do not fill the list); a genre cap is the greedy walk down the full ranking;
//! the input files' bad lines are skipped and named; the command line writes one tab-separated
//! file atomically.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::model_ops::ModelOps;
use ainrnn::data::prepare::prepare;
use ainrnn::data::Dataset;
use ainrnn::eval::run::{
    recommend, recommend_users, ListRequest, Recommendation, Users, UsersSummary, Who,
};
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

    fails_with(
        &ainrnn(&[&base[..], &["--all"]].concat()),
        &["give -o FILE"],
    );
    fails_with(
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
