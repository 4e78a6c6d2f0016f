//! `ainrnn bench train` through the binary on tiny shapes: one JSON object, every model on the
//! CPU (and the GPU when an adapter opens), finite losses, the softmax share, a real epoch, a
//! GPU step with no new buffers and no read-back after warm-up; the synthetic histories. No
//! timing is asserted (timings belong to the benchmark, not to tests).

#[path = "common/mod.rs"]
mod common;

use std::process::Output;

use ainrnn::bench::train::SyntheticHistories;
use serde_json::Value;

const TINY: &[&str] = &[
    "bench",
    "train",
    "--songs",
    "300",
    "--users",
    "40",
    "--batch",
    "8",
    "--history",
    "5",
    "--targets",
    "4",
    "--hidden",
    "8",
    "--layers",
    "2",
    "--steps",
    "2",
    "--warmup",
    "3",
    "--no-torch",
    "--epoch",
];

fn ainrnn(backend: &str, args: &[&str]) -> Output {
    crate::common::cli::command()
        .args(["--json", "--backend", backend])
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object on stdout: {text}");
    serde_json::from_str(&text).unwrap()
}

fn check_run(r: &Value) {
    let name = format!("{} on {}", r["model"], r["device"]);
    let step = r["seconds_per_step"].as_f64().unwrap();
    assert!(step > 0.0 && step.is_finite(), "{name}: step {step}");
    let loss = r["mean_loss"].as_f64().unwrap();
    // A fresh model predicts about uniformly: the loss starts near ln(300) ≈ 5.7.
    assert!(loss > 3.0 && loss < 9.0, "{name}: loss {loss}");
    let share = r["softmax_share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 1.0, "{name}: softmax share {share}");
    assert_eq!(r["steps_per_epoch"], 5, "{name}: 40 users / batch 8");
    assert!(r["epoch_seconds"].as_f64().unwrap() > 0.0, "{name}: epoch");
    assert!(
        r["parameters"].as_u64().unwrap() > 300 * 32,
        "{name}: parameters"
    );
    let host = r["host_seconds_per_step"].as_f64().unwrap();
    assert!(host > 0.0 && host.is_finite(), "{name}: host time {host}");
    // Ranking every user: the per-user time over the epoch's 40 users.
    let per = r["rank_seconds_per_user"].as_f64().unwrap();
    let all = r["rank_all_users_seconds"].as_f64().unwrap();
    assert!(per > 0.0 && per.is_finite(), "{name}: ranking {per}");
    assert!(
        (all - 40.0 * per).abs() <= 1e-9 * all,
        "{name}: {all} vs 40 x {per}"
    );
}

#[test]
fn cpu_runs_every_model_and_an_epoch() {
    let v = json(&ainrnn("cpu", TINY));
    assert_eq!(v["data"], "synthetic");
    let runs = v["runs"].as_array().unwrap();
    let models: Vec<&str> = runs.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["ainrnn", "indrnn", "lstm"]);
    runs.iter().for_each(check_run);
    assert!(runs
        .iter()
        .all(|r| r["device"] == "cpu" && r["gpu"].is_null()));
    assert_eq!(v["indrnn_speedup_over_lstm"][0][0], "cpu");
    assert!(v["gpu_note"].as_str().unwrap().contains("--backend cpu"));
    assert!(v["torch"].is_null());
    // The trainer's neighbourhood term by default, as `train` runs it.
    assert_eq!(
        v["options"]["neighbours"],
        ainrnn::model::DEFAULT_NEIGHBOURS as u64
    );
    assert!(runs
        .iter()
        .all(|r| r["neighbours"] == ainrnn::model::DEFAULT_NEIGHBOURS as u64));
    // And the trainer's stacking: plain for all three (AINRNN's default since the plain stack
    // matched IndRNN on both datasets).
    let conns: Vec<&str> = runs
        .iter()
        .map(|r| r["connection"].as_str().unwrap())
        .collect();
    assert_eq!(conns, ["plain", "plain", "plain"]);
}

#[test]
fn connection_flag_sets_the_indrnn_models_stacking() {
    let mut args = TINY.to_vec();
    args.extend(["--models", "ainrnn,lstm", "--connection", "dense"]);
    let v = json(&ainrnn("cpu", &args));
    let runs = v["runs"].as_array().unwrap();
    runs.iter().for_each(check_run);
    assert_eq!(runs[0]["connection"], "dense");
    // LSTM is built as a plain stack only.
    assert_eq!(runs[1]["connection"], "plain");
    // Dense connections widen every layer after the first: more parameters than the plain
    // stack; gated shortcuts add one gate per unit of each layer past the first.
    let plain = json(&ainrnn("cpu", &[TINY, &["--models", "ainrnn"]].concat()));
    let plain = plain["runs"][0]["parameters"].as_u64().unwrap();
    assert!(runs[0]["parameters"].as_u64().unwrap() > plain);
    let mut gated = TINY.to_vec();
    gated.extend(["--models", "ainrnn", "--connection", "gated"]);
    let gated = json(&ainrnn("cpu", &gated));
    assert_eq!(gated["runs"][0]["connection"], "gated");
    let (hidden, layers) = (
        gated["options"]["hidden"].as_u64().unwrap(),
        gated["options"]["layers"].as_u64().unwrap(),
    );
    assert_eq!(
        gated["runs"][0]["parameters"].as_u64().unwrap(),
        plain + hidden * (layers - 1)
    );
}

/// The CPU forms the song table's gradient unless `AINRNN_FUSED_TABLE=1` (which `train` reads
/// too) or `--table-step fused` says otherwise; `--table-step` wins; a wrong value is an error
/// naming the variable, not a silent default.
#[test]
fn the_cpu_takes_the_fused_table_step_when_told() {
    let run = |env: Option<&str>, extra: &[&str]| {
        let mut c = crate::common::cli::command();
        c.args(["--json", "--backend", "cpu"])
            .args([TINY, &["--models", "ainrnn"], extra].concat())
            .env_remove("AINRNN_FUSED_TABLE");
        if let Some(v) = env {
            c.env("AINRNN_FUSED_TABLE", v);
        }
        c.output().unwrap()
    };
    let fused = |o: &Output| json(o)["runs"][0]["fused_table"].as_bool().unwrap();
    assert!(!fused(&run(None, &[])));
    assert!(fused(&run(Some("1"), &[])));
    assert!(!fused(&run(Some("0"), &[])));
    assert!(fused(&run(None, &["--table-step", "fused"])));
    assert!(!fused(&run(Some("1"), &["--table-step", "formed"])));
    crate::common::cli::fails_with(
        &run(Some("maybe"), &[]),
        &["AINRNN_FUSED_TABLE=\"maybe\"", "1 (on) or 0 (off)"],
    );
}

#[test]
fn neighbours_zero_is_the_step_without_the_term() {
    let mut args = TINY.to_vec();
    args.extend(["--models", "indrnn", "--neighbours", "0"]);
    let v = json(&ainrnn("cpu", &args));
    let r = &v["runs"][0];
    check_run(r);
    assert_eq!(r["neighbours"], 0);
    // Fewer parameters than with the term: its weight γ and, by default (the trainer's), the
    // 300 songs' per-song weights and their 300 × 200 pair weights.
    args.truncate(args.len() - 2);
    let with = json(&ainrnn("cpu", &args));
    let bare_step = r["parameters"].as_u64().unwrap();
    assert_eq!(
        with["runs"][0]["parameters"].as_u64().unwrap(),
        bare_step + 1 + 300 + 300 * 200
    );
    assert_eq!(with["options"]["song_weights"], true);
    assert_eq!(with["options"]["pair_weights"], true);
    args.push("--no-song-weights");
    let no_song = json(&ainrnn("cpu", &args));
    assert_eq!(
        no_song["runs"][0]["parameters"].as_u64().unwrap(),
        bare_step + 1 + 300 * 200
    );
    args.push("--no-pair-weights");
    let bare = json(&ainrnn("cpu", &args));
    assert_eq!(
        bare["runs"][0]["parameters"].as_u64().unwrap(),
        bare_step + 1
    );
}

#[test]
fn gpu_steps_create_no_buffers_and_read_nothing_back() {
    if common::gpu().is_none() {
        return;
    }
    let mut args = TINY.to_vec();
    args.extend(["--models", "indrnn,lstm"]);
    let v = json(&ainrnn("gpu", &args));
    let gpu: Vec<&Value> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["device"] == "gpu")
        .collect();
    assert_eq!(gpu.len(), 2, "{v}");
    for r in gpu {
        check_run(r);
        let g = &r["gpu"];
        assert_eq!(g["buffers_created_per_step"], 0.0, "{r}");
        assert_eq!(g["readbacks_per_step"], 0.0, "{r}");
        assert!(g["bytes_allocated"].as_u64().unwrap() > 0);
        assert!(g["dispatches_per_step"].as_f64().unwrap() > 10.0);
        // The batch, the dropout masks and the kernel parameters; nothing fitted once.
        let up = g["upload_bytes_per_step"].as_f64().unwrap();
        let params = g["param_bytes_per_step"].as_f64().unwrap();
        assert!(params > 0.0 && up > params, "{r}");
        assert!(up <= (256 << 10) as f64, "{r}");
        // Timestamps: the per-kernel split adds up to the phases' kernel time.
        if g["timestamps"] == true {
            let ks = g["kernels"].as_array().unwrap();
            assert!(!ks.is_empty(), "{r}");
            let sum: f64 = ks
                .iter()
                .map(|k| k["seconds_per_step"].as_f64().unwrap())
                .sum();
            let phases: f64 = r["phases_kernel"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap())
                .sum();
            assert!(
                (sum - phases).abs() <= 1e-6 + 1e-6 * phases,
                "{sum} vs {phases}"
            );
            for k in ks {
                let phase = k["phase"].as_str().unwrap();
                assert!(
                    ["upload", "forward", "softmax", "backward", "optimizer"].contains(&phase),
                    "{k}"
                );
                assert!(k["dispatches_per_step"].as_f64().unwrap() > 0.0, "{k}");
                assert!(k["kernel"].as_str().unwrap().contains("::"), "{k}");
            }
            let names: Vec<&str> = ks.iter().map(|k| k["kernel"].as_str().unwrap()).collect();
            assert!(
                names.iter().any(|n| n.starts_with("matmul::matmul[")),
                "{names:?}"
            );
        }
    }
}

/// The fused table step declares its work to the timer: the product it forms (2·N·D·K
/// operations) and the table's value and moments read and written, g once per 64 columns.
#[test]
fn the_fused_table_step_declares_its_product_and_traffic() {
    if common::gpu().is_none() {
        return;
    }
    let args = [TINY, &["--models", "ainrnn", "--table-step", "fused"]].concat();
    let v = json(&ainrnn("gpu", &args));
    let r = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device"] == "gpu")
        .unwrap();
    assert_eq!(r["fused_table"], true, "{r}");
    if r["gpu"]["timestamps"] != true {
        eprintln!("adapter has no timestamp queries; declared work not tested");
        return;
    }
    let ks = r["gpu"]["kernels"].as_array().unwrap();
    let k = ks
        .iter()
        .find(|k| k["kernel"] == "table::table_adam")
        .unwrap_or_else(|| panic!("no table_adam in {ks:?}"));
    let f = |key: &str| k[key].as_f64().unwrap();
    assert_eq!(f("dispatches_per_step"), 1.0, "{k}");
    // 300 songs, the trainer's 128 columns, a batch of 8.
    let (n, d, b) = (300.0, 128.0, 8.0);
    assert_eq!(f("flops_per_step"), 2.0 * n * d * b, "{k}");
    // Plus the touched rows: at most 8 users x 5 history songs, each a row and its index.
    let least = 4.0 * (6.0 * n * d + 2.0 * n * b);
    let bytes = f("bytes_per_step");
    assert!(
        bytes > least && bytes <= least + 4.0 * 40.0 * (d + 1.0),
        "{bytes} vs {least}: {k}"
    );
}

#[test]
fn bad_shapes_are_clear_errors() {
    let o = ainrnn("cpu", &["bench", "train", "--songs", "1", "--no-torch"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--songs"), "{err}");
    let o = ainrnn("cpu", &["bench", "train", "--models", "gru", "--no-torch"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("gru"));
}

#[test]
fn synthetic_histories_are_distinct_sized_and_reproducible() {
    let s = SyntheticHistories::new(500, 7);
    let a = s.examples(10, 20, 12, 6);
    assert_eq!(a, SyntheticHistories::new(500, 7).examples(10, 20, 12, 6));
    // Each user is its own stream: a subset reproduces the same users.
    assert_eq!(a[5..], s.examples(15, 15, 12, 6)[..]);
    for e in &a {
        assert_eq!(e.songs.len(), 12);
        assert_eq!(e.plays.len(), 12);
        assert_eq!(e.targets.len(), 6);
        let mut all: Vec<u32> = e.songs.iter().chain(&e.targets).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 18, "songs of a user are distinct");
        assert!(all.iter().all(|&x| x < 500));
        assert!(e.plays.iter().all(|&p| p >= 1.0 && p.fract() == 0.0));
    }
    // Zipf popularity: the most common song is far above the uniform share.
    let mut count = vec![0usize; 500];
    for e in s.examples(0, 400, 12, 6) {
        for x in e.songs.iter().chain(&e.targets) {
            count[*x as usize] += 1;
        }
    }
    let top = *count.iter().max().unwrap();
    assert!(
        top > 10 * 400 * 18 / 500,
        "most popular song listened {top} times"
    );
    // A catalogue smaller than history + targets still gives a valid example.
    let e = SyntheticHistories::new(4, 1).example(0, 10, 10);
    assert!(!e.songs.is_empty() && e.songs.len() < 4);
}
