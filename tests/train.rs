//! Training on a small real dataset (the first users of the bundled Taste-Profile triplets):
//! a tiny model overfits a fixed batch on both backends, a resumed run equals an uninterrupted
//! one, a diverging run stops with a clear error and keeps the last good checkpoint, and the
//! command-line tools print what their `--json` promises.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::model_ops::ModelOps;
use ainrnn::backend::Backend;
use ainrnn::data::prepare::prepare;
use ainrnn::data::Dataset;
use ainrnn::model::batch::upload;
use ainrnn::model::{Model, ModelConfig, ModelKind};
use ainrnn::train::corpus::{fold_data, FeatureSet};
use ainrnn::train::run::{train, TrainOptions};
use ainrnn::train::{split_example, Corpus};
use rand::SeedableRng;

/// A real dataset file: the first `users` users of `data/taste/triplets_dev.txt`, with the MSD
/// subset metadata (song vectors, genres, languages), 3 folds.
fn small_dataset(dir: &Path, users: usize) -> PathBuf {
    let o = common::taste_prefix(dir, users);
    let _writing = HDF5_WRITES.read().unwrap_or_else(|e| e.into_inner());
    prepare(&o, &mut |_| {}).unwrap();
    o.output
}

/// Held (shared) while a test writes an HDF5 file in this process, and (exclusive) while a test
/// starts a child process. The C library opens files without close-on-exec and locks them
/// (`flock`), so a child forked while another test thread is writing would inherit that lock
/// and keep it for its whole run: re-opening the finished file then fails with "unable to lock
/// file" (seen once in CI).
static HDF5_WRITES: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Starts `c` with no HDF5 file being written in this process, then waits for it.
fn output(c: &mut Command) -> std::process::Output {
    let child = {
        let _forking = HDF5_WRITES.write().unwrap_or_else(|e| e.into_inner());
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    child.wait_with_output().unwrap()
}

/// A tiny AINRNN learns a fixed batch of real users: the loss falls by at least 3×.
fn overfits<B: ModelOps>(b: &B) {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::load(&small_dataset(dir.path(), 600)).unwrap();
    let (corpus, _) = Corpus::from_dataset(&ds, FeatureSet::All).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let examples: Vec<_> = (0..ds.users() as u32)
        .filter_map(|u| {
            let (s, p) = &corpus.histories[u as usize];
            split_example(u, s, p, 0.5, &mut rng)
        })
        .take(12)
        .collect();
    assert_eq!(examples.len(), 12);
    let mut cfg = ModelConfig::new(ModelKind::Ainrnn, corpus.songs);
    cfg.hidden = 16;
    cfg.layers = 2;
    cfg.emb = 16;
    cfg.dropout = 0.0;
    cfg.feature_dim = corpus.features.as_ref().map(|f| f.1).unwrap_or(0);
    cfg.n_age = corpus.n_age;
    cfg.n_lang = corpus.n_lang;
    cfg.n_genre = corpus.portraits.as_ref().map(|p| p.n_genre).unwrap_or(0);
    let mut model = Model::new(b, cfg, corpus.features.as_ref().map(|f| f.0.as_slice())).unwrap();
    let batch = upload(b, &model.cfg, corpus.portraits.as_ref(), &examples).unwrap();
    let optim = ainrnn::model::params::OptimConfig {
        lr: 1e-2,
        ..Default::default()
    };
    let first = b.to_f32(&model.eval_loss(b, &batch).unwrap()).unwrap()[0];
    for _ in 0..80 {
        model.train_step(b, &batch, &mut rng, &optim).unwrap();
    }
    let last = b.to_f32(&model.eval_loss(b, &batch).unwrap()).unwrap()[0];
    assert!(
        last * 3.0 < first,
        "loss {first} -> {last}: expected a fall by at least 3x on {}",
        b.describe()
    );
}

#[test]
fn tiny_model_overfits_real_users_on_cpu() {
    overfits(&CpuBackend::new());
}

#[test]
fn tiny_model_overfits_real_users_on_gpu() {
    if let Some(g) = common::gpu() {
        overfits(&g);
    }
}

fn opts(data: &Path, out: &Path, epochs: u32) -> TrainOptions {
    let mut o = TrainOptions::new(data.to_path_buf(), ModelKind::Indrnn, out.to_path_buf());
    o.epochs = epochs;
    o.hidden = 12;
    o.layers = Some(2);
    o.batch = 32;
    o.patience = 0;
    o.lr = 2e-3;
    o.ensemble = Some(1);
    o
}

/// `--ensemble 2`: member 1 trains with seed + 1 into `<out>.member1`, `<out>` lists it, `eval`
/// ranks with both (not as the first alone), a missing member is an error naming its file, and
/// training one model into the same `--out` again makes it a single model.
#[test]
fn ensemble_trains_members_and_evaluates_with_all() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_dataset(dir.path(), 300);
    let b = CpuBackend::new();
    let out = dir.path().join("m.ckpt");
    let mut o = opts(&data, &out, 1);
    o.ensemble = Some(2);
    let s = train(&b, &o, |_| {}, |_, _, _, _| {}).unwrap();
    let member = ainrnn::train::run::member_path(&out, 1);
    assert_eq!(member, dir.path().join("m.ckpt.member1"));
    let seeds: Vec<u64> = s.members.iter().map(|m| m.seed).collect();
    assert_eq!(seeds, vec![42, 43]);
    assert_eq!(s.members[1].checkpoint, member);
    let ds = Dataset::load(&data).unwrap();
    let (models, _, _) = ainrnn::eval::run::load_ensemble(&b, &ds, &out).unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!((models[0].cfg.seed, models[1].cfg.seed), (42, 43));
    let both = ainrnn::eval::run::eval(&b, &data, &out, None, false, 10).unwrap();
    // The first member alone: the same checkpoint without its member list.
    let alone = dir.path().join("alone.ckpt");
    std::fs::copy(&out, &alone).unwrap();
    ainrnn::model::checkpoint::set_members(&alone, &[]).unwrap();
    let first = ainrnn::eval::run::eval(&b, &data, &alone, None, false, 10).unwrap();
    // A damaged checkpoint is refused, not given a fresh checksum.
    let mut bytes = std::fs::read(&alone).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x40;
    let broken = dir.path().join("broken.ckpt");
    std::fs::write(&broken, bytes).unwrap();
    let e = ainrnn::model::checkpoint::set_members(&broken, &["m.ckpt.member1".into()])
        .expect_err("a flipped tensor byte")
        .to_string();
    assert!(e.contains("broken.ckpt") && e.contains("damaged"), "{e}");
    assert_ne!(
        (both.metrics.ndcg, both.metrics.precision),
        (first.metrics.ndcg, first.metrics.precision),
        "two members rank otherwise than the first alone"
    );
    std::fs::rename(&member, dir.path().join("moved")).unwrap();
    let e = ainrnn::eval::run::eval(&b, &data, &out, None, false, 10)
        .expect_err("a member's file is missing")
        .to_string();
    assert!(e.contains("m.ckpt.member1") && e.contains("beside"), "{e}");
    // A member file replaced by another checkpoint (here the first's copy) is refused by the
    // checksum the first recorded for it.
    std::fs::copy(&out, &member).unwrap();
    let e = ainrnn::eval::run::eval(&b, &data, &out, None, false, 10)
        .expect_err("member 1 replaced by a copy of the first")
        .to_string();
    assert!(
        e.contains("m.ckpt.member1") && e.contains("replaced"),
        "{e}"
    );
    // Two members that are the same file's copies, even as recorded, are refused too.
    std::fs::copy(dir.path().join("moved"), dir.path().join("twin")).unwrap();
    let twins = dir.path().join("twins.ckpt");
    std::fs::copy(&out, &twins).unwrap();
    ainrnn::model::checkpoint::set_members(&twins, &["moved".into(), "twin".into()]).unwrap();
    let e = ainrnn::eval::run::eval(&b, &data, &twins, None, false, 10)
        .expect_err("two members are copies")
        .to_string();
    assert!(
        e.contains("twin") && e.contains("a copy of another member"),
        "{e}"
    );
    // `--resume` with more epochs continues every member from its own `.last` file.
    std::fs::rename(dir.path().join("moved"), &member).unwrap();
    let mut more = opts(&data, &out, 2);
    more.ensemble = Some(2);
    more.resume = true;
    let s = train(&b, &more, |_| {}, |_, _, _, _| {}).unwrap();
    let epochs: Vec<u32> = s.members.iter().map(|m| m.epochs_run).collect();
    assert_eq!(epochs, vec![2, 2], "both members resumed to epoch 2");
    o.ensemble = Some(1);
    let s = train(&b, &o, |_| {}, |_, _, _, _| {}).unwrap();
    assert!(s.members.is_empty());
    let (models, _, _) = ainrnn::eval::run::load_ensemble(&b, &ds, &out).unwrap();
    assert_eq!(models.len(), 1, "a single model again");
}

#[test]
fn resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_dataset(dir.path(), 300);
    let b = CpuBackend::new();
    let full = dir.path().join("full.ckpt");
    let s_full = train(&b, &opts(&data, &full, 2), |_| {}, |_, _, _, _| {}).unwrap();
    assert_eq!(s_full.epochs_run, 2);
    let part = dir.path().join("part.ckpt");
    train(&b, &opts(&data, &part, 1), |_| {}, |_, _, _, _| {}).unwrap();
    let mut again = opts(&data, &part, 2);
    again.resume = true;
    let s_res = train(&b, &again, |_| {}, |_, _, _, _| {}).unwrap();
    assert_eq!(s_res.epochs_run, 2);
    assert_eq!(
        s_full.history.iter().map(|r| r.loss).collect::<Vec<_>>(),
        s_res.history.iter().map(|r| r.loss).collect::<Vec<_>>()
    );
    let ds = Dataset::load(&data).unwrap();
    let (a, _, _) =
        ainrnn::eval::run::load_model(&b, &ds, &ainrnn::train::run::last_path(&full)).unwrap();
    let (c, _, _) =
        ainrnn::eval::run::load_model(&b, &ds, &ainrnn::train::run::last_path(&part)).unwrap();
    for (x, y) in a.params.list.iter().zip(&c.params.list) {
        assert_eq!(
            b.to_f32(&x.value).unwrap(),
            b.to_f32(&y.value).unwrap(),
            "{} differs after resuming",
            x.name
        );
        assert_eq!(
            b.to_f32(&x.m).unwrap(),
            b.to_f32(&y.m).unwrap(),
            "{} Adam moment differs",
            x.name
        );
    }
}

#[test]
fn diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_dataset(dir.path(), 300);
    let b = CpuBackend::new();
    let out = dir.path().join("m.ckpt");
    train(&b, &opts(&data, &out, 1), |_| {}, |_, _, _, _| {}).unwrap();
    let good = std::fs::read(&out).unwrap();
    let mut bad = opts(&data, &out, 3);
    bad.lr = 1e30;
    let e = train(&b, &bad, |_| {}, |_, _, _, _| {})
        .expect_err("a learning rate of 1e30 diverges")
        .to_string();
    assert!(
        e.contains("training loss became") && e.contains("last good checkpoint"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        good,
        "the good checkpoint is untouched"
    );
}

#[test]
fn fold_out_of_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_dataset(dir.path(), 100);
    let ds = Dataset::load(&data).unwrap();
    let (corpus, _) = Corpus::from_dataset(&ds, FeatureSet::All).unwrap();
    let e = fold_data(&ds, &corpus, 3, 1, 10).err().unwrap().to_string();
    assert!(e.contains("--fold 3") && e.contains("3 folds"), "{e}");
    let e = Corpus::from_dataset(&ds, FeatureSet::Scattering)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("scattering"), "{e}");
}

fn ainrnn_cmd() -> Command {
    let mut c = crate::common::cli::command();
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .arg("--backend")
        .arg("cpu");
    c
}

fn run_json(c: &mut Command) -> Vec<serde_json::Value> {
    let out = output(c);
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect()
}

#[test]
fn command_line_train_eval_recommend_compare() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_dataset(dir.path(), 300);
    let ckpt = dir.path().join("m.ckpt");
    let lines = run_json(
        ainrnn_cmd()
            .args([
                "--json",
                "train",
                "--epochs",
                "2",
                "--hidden",
                "8",
                "--emb",
                "24",
                "--layers",
                "2",
                "--patience",
                "0",
                "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(&ckpt),
    );
    // One object: the run's summary and, under `epochs`, every member's epochs. Fewer than
    // 5,000 training users: `--ensemble auto` trains three members, 2 epochs each.
    assert_eq!(lines.len(), 1, "one JSON object");
    let run = &lines[0];
    assert_eq!(run["checkpoint"].as_str(), ckpt.to_str());
    assert_eq!(run["members"].as_array().unwrap().len(), 3, "{run}");
    assert!(run["best_ndcg_at_10"].is_number(), "{run}");
    // The lists' similarity is said when it was not chosen too (the default with pair weights).
    assert_eq!(run["list_similarity"], "cosine", "{run}");
    assert!(run["similarity"].is_null(), "{run}");
    let lines = run["epochs"].as_array().unwrap();
    assert_eq!(lines.len(), 6, "one record per epoch and member");
    let members: Vec<u64> = lines
        .iter()
        .map(|l| l["member"].as_u64().unwrap())
        .collect();
    assert_eq!(members, vec![0, 0, 1, 1, 2, 2]);
    for m in 1..3 {
        assert!(
            ainrnn::train::run::member_path(&ckpt, m).exists(),
            "member {m}"
        );
    }
    let (m, _, _) =
        ainrnn::eval::run::load_model(&CpuBackend::new(), &Dataset::load(&data).unwrap(), &ckpt)
            .unwrap();
    assert_eq!(
        (m.cfg.emb, m.cfg.hidden),
        (24, 8),
        "--emb and --hidden reach the model"
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["epoch"], i % 2 + 1);
        for key in ["loss", "seconds", "precision_at_10", "ndcg_at_10"] {
            assert!(l[key].is_number(), "epoch line lacks {key}: {l}");
        }
    }
    let ev = run_json(
        ainrnn_cmd()
            .args(["--json", "eval", "--data"])
            .arg(&data)
            .arg("--checkpoint")
            .arg(&ckpt),
    );
    assert_eq!(ev.len(), 1);
    for key in [
        "precision",
        "recall",
        "ndcg",
        "ndcg_graded",
        "map",
        "hit_rate",
        "coverage",
        "long_tail_share",
    ] {
        assert!(ev[0][key].is_number(), "eval lacks {key}: {}", ev[0]);
    }
    assert_eq!(ev[0]["curve"].as_array().unwrap().len(), 20);
    let ds = Dataset::load(&data).unwrap();
    let rec = run_json(
        ainrnn_cmd()
            .args([
                "--json",
                "recommend",
                "--k",
                "5",
                "--max-per-genre",
                "2",
                "--user",
                &ds.user_ids[0],
                "--data",
            ])
            .arg(&data)
            .arg("--checkpoint")
            .arg(&ckpt),
    );
    assert_eq!(rec.len(), 1, "one JSON object");
    assert_eq!(rec[0]["user"].as_str(), Some(ds.user_ids[0].as_str()));
    assert_eq!(
        (rec[0]["k"].as_u64(), rec[0]["max_per_genre"].as_u64()),
        (Some(5), Some(2))
    );
    let list = rec[0]["recommendations"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    let mut genres = std::collections::HashMap::new();
    for r in list {
        *genres
            .entry(r["genre"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        assert!(
            !ds.history(0)
                .0
                .iter()
                .any(|&s| ds.song_ids[s as usize] == r["song_id"].as_str().unwrap()),
            "a listened song was recommended"
        );
    }
    // Songs of unknown genre are not one genre: not capped.
    assert!(
        genres.iter().all(|(g, &c)| c <= 2 || g == "unknown"),
        "--max-per-genre 2: {genres:?}"
    );
    // A user who is not in the dataset is a clear error, not a panic.
    let out = output(
        ainrnn_cmd()
            .args(["recommend", "--user", "nobody", "--data"])
            .arg(&data)
            .arg("--checkpoint")
            .arg(&ckpt),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nobody\" is not in"));

    let rep = dir.path().join("report");
    let cmp = run_json(
        ainrnn_cmd()
            .args([
                "--json",
                "compare",
                "--models",
                "popularity,itemknn,ease,indrnn",
                "--folds",
                "2",
                "--epochs",
                "1",
                "--hidden",
                "8",
                "--layers",
                "1",
                "--ease-lambda",
                "50",
                "--data",
            ])
            .arg(&data)
            .arg("--report")
            .arg(&rep),
    );
    let j = &cmp[0];
    assert_eq!(j["k"], 10);
    assert_eq!(j["folds"], 2);
    for m in ["popularity", "itemknn", "ease", "indrnn"] {
        for key in [
            "precision_at_10",
            "recall_at_10",
            "ndcg_at_10",
            "map_at_10",
            "coverage",
            "seconds_per_epoch",
            "ndcg_at_10_std",
        ] {
            assert!(j["models"][m][key].is_number(), "{m} lacks {key}: {j}");
        }
    }
    for f in ["report.md", "results.json"] {
        assert!(std::fs::metadata(rep.join(f)).unwrap().len() > 100, "{f}");
    }
    // The report names each learned model's stacking and pooling.
    let md = std::fs::read_to_string(rep.join("report.md")).unwrap();
    assert!(md.contains("indrnn plain stack, last pooling;"), "{md}");
    // The best checkpoints stay; the latest-epoch copies (never resumed by compare) do not.
    let names: Vec<String> = std::fs::read_dir(rep.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "indrnn-fold1.ckpt"), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".last")), "{names:?}");
    for f in [
        "precision_at_k",
        "ndcg_at_k",
        "accuracy_per_epoch",
        "seconds_per_epoch",
    ] {
        let png = std::fs::read(rep.join(format!("{f}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{f}.png is a PNG");
        // A blank 960x600 image compresses to well under 10 kB; a chart with text does not.
        assert!(
            png.len() > 10_000,
            "{f}.png looks empty ({} bytes)",
            png.len()
        );
        let svg = std::fs::read_to_string(rep.join(format!("{f}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("<text"),
            "{f}.svg has text"
        );
    }
}

/// AINRNN's stacking: a plain stack by default, dense with the paper's settings; options saved
/// before the residual default (no `paper_connection`) were trained dense and read so, those
/// saved before the plain default (no `ainrnn_connection`) residual; the model shape always
/// names its stacking, so a checkpoint never depends on the default.
#[test]
fn ainrnn_stacks_plain_by_default_and_old_options_read_as_trained() {
    use ainrnn::model::Connection;
    let o = TrainOptions::new("d.h5".into(), ModelKind::Ainrnn, "m.ckpt".into());
    assert_eq!(o.connection(), Connection::Plain);
    assert_eq!(o.paper_settings().connection(), Connection::Dense);
    let indrnn = TrainOptions {
        kind: ModelKind::Indrnn,
        ..o.clone()
    };
    assert_eq!(indrnn.connection(), Connection::Plain);
    assert_eq!(indrnn.paper_settings().connection(), Connection::Plain);
    let mut saved = serde_json::to_value(&o).unwrap();
    let round: TrainOptions = serde_json::from_value(saved.clone()).unwrap();
    assert_eq!(round.connection(), Connection::Plain);
    saved.as_object_mut().unwrap().remove("ainrnn_connection");
    let residual_era: TrainOptions = serde_json::from_value(saved.clone()).unwrap();
    assert_eq!(residual_era.connection(), Connection::Residual);
    assert!(residual_era
        .fixed_settings()
        .contains(&("--connection", "residual".to_string())));
    // An IndRNN's options of that time still read as its own plain stack.
    let indrnn_era = TrainOptions {
        kind: ModelKind::Indrnn,
        ..residual_era
    };
    assert_eq!(indrnn_era.connection(), Connection::Plain);
    saved.as_object_mut().unwrap().remove("paper_connection");
    let old: TrainOptions = serde_json::from_value(saved).unwrap();
    assert_eq!(old.connection(), Connection::Dense);
    assert!(old
        .fixed_settings()
        .contains(&("--connection", "dense".to_string())));
    // A trained checkpoint's model shape says plain (its `None` would read as dense).
    let dir = tempfile::tempdir().unwrap();
    let data = small_dataset(dir.path(), 300);
    let out = dir.path().join("a.ckpt");
    let mut a = opts(&data, &out, 1);
    a.kind = ModelKind::Ainrnn;
    let b = CpuBackend::new();
    train(&b, &a, |_| {}, |_, _, _, _| {}).unwrap();
    let ds = Dataset::load(&data).unwrap();
    let (models, _, _) = ainrnn::eval::run::load_ensemble(&b, &ds, &out).unwrap();
    assert_eq!(models[0].cfg.connection, Some(Connection::Plain));
}

/// `--resume` from `<out>.last` needs `<out>` to hold the best epoch `.last` names: a run that
/// finds nothing better keeps and reports it. When `.last` is that best epoch itself (a run
/// stopped between an epoch's two writes), it is copied; otherwise the run is refused first.
#[test]
fn resume_needs_the_best_epochs_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_dataset(dir.path(), 300);
    let b = CpuBackend::new();
    let last = ainrnn::train::run::last_path;
    // One epoch: `.last` is the best epoch; `<out>` lost.
    let one = dir.path().join("one.ckpt");
    train(&b, &opts(&data, &one, 1), |_| {}, |_, _, _, _| {}).unwrap();
    let x = dir.path().join("x.ckpt");
    std::fs::copy(last(&one), last(&x)).unwrap();
    let mut more = opts(&data, &x, 2);
    more.resume = true;
    let s = train(&b, &more, |_| {}, |_, _, _, _| {}).unwrap();
    assert_eq!(s.epochs_run, 2);
    assert!(x.is_file(), "the best epoch's file was restored");
    let ds = Dataset::load(&data).unwrap();
    ainrnn::eval::run::load_model(&b, &ds, &x).unwrap();

    // An lr too small to change any ranking: epoch 1 stays best of 3.
    let flat = dir.path().join("flat.ckpt");
    let mut o = opts(&data, &flat, 3);
    o.lr = 1e-30;
    let s = train(&b, &o, |_| {}, |_, _, _, _| {}).unwrap();
    assert_eq!((s.best_epoch, s.epochs_run), (1, 3));
    let y = dir.path().join("y.ckpt");
    std::fs::copy(last(&flat), last(&y)).unwrap();
    let mut again = opts(&data, &y, 4);
    again.lr = 1e-30;
    again.resume = true;
    let e = train(&b, &again, |_| {}, |_, _, _, _| {})
        .expect_err("the best epoch's file is missing")
        .to_string();
    assert!(
        e.contains("y.ckpt") && e.contains("best epoch 1") && e.contains("is missing"),
        "{e}"
    );
    // Another run's best file is not it either.
    std::fs::copy(&one, &y).unwrap();
    let e = train(&b, &again, |_| {}, |_, _, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds the best epoch 1 of another run"), "{e}");
    assert!(!dir.path().join("y.ckpt.member1").exists());
}
