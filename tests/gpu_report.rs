//! `ainrnn bench report --quick` (what `scripts/gpu-report.sh --quick` runs) end to end on the
//! adapter under test, so the prepared GPU report cannot rot: every part runs at smoke sizes and
//! must succeed, and results.json / report.md must carry the figures the targets speak of.
//! `demo_gpu` is left out here: `demo --quick` on a software adapter takes minutes; its command
//! is `demo_cpu`'s with `--backend gpu`. GPU-only (skipped loudly without an adapter, failing
//! under CI=true).

#[path = "common/mod.rs"]
mod common;

use serde_json::Value;

#[test]
fn quick_gpu_report_runs_every_part_and_writes_its_figures() {
    if common::gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let st = crate::common::cli::command()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // The tuner on (lavapipe leaves it off by default): its table must reach report.md.
        .env("AINRNN_MATMUL_TUNE", "1")
        // The parts but `shader_checks` take the default.
        .env_remove("AINRNN_SHADER_CHECKS")
        .args(["bench", "report", "--quick", "--skip", "demo_gpu", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "bench report exited with {st}");
    let r: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    for p in r["parts"].as_array().unwrap() {
        let (name, status) = (p["name"].as_str().unwrap(), p["status"].as_str().unwrap());
        let want = if name == "demo_gpu" { "skipped" } else { "ok" };
        assert_eq!(status, want, "part {name}: {}", p["error"]);
    }
    let s = &r["summary"];
    for key in [
        "gpu",
        // The device-local heap its Vulkan driver reports (lavapipe: 2 GiB, no budget).
        "gpu_memory_heap_bytes",
        "epoch_seconds_gpu",
        "epoch_seconds_cpu_projected",
        "features_clips_per_second_kernel",
        // The features' wall on each backend: what a user's `features` run gains.
        "features_gpu_seconds_per_clip",
        "features_cpu_seconds_per_clip",
        "scattering_gpu_seconds_per_clip",
        "ndcg10_cpu",
        "ndcg10_gpu",
        "demo_quick_seconds_cpu",
        "gpu_host_seconds_per_step",
        // Every user's list at the epoch's size, on each backend.
        "rank_all_users_seconds_gpu",
        "rank_all_users_seconds_cpu",
        "rank_speedup_gpu_over_cpu",
        "gpu_kernel_seconds_per_step",
        // The step with the song table's AdamW fused and with its gradient formed whole.
        "table_step_seconds_fused",
        "table_step_seconds_formed",
        // The same step compiled with every runtime check and with none.
        "shader_checks_all_step_seconds",
        "shader_checks_none_step_seconds",
        "shader_checks_none_step_kernel_seconds",
        // The tuner is on in this test: its choice for the ops' product.
        "ops_matmul_tuned",
        // The device's own ceilings that the step's kernels are set against.
        "ceiling_bandwidth_GB_per_s",
        "ceiling_matmul_GFLOP_per_s",
        "ceiling_dispatch_floor_us",
        // The step's kernels at those ceilings, and an epoch of such steps.
        "gpu_step_floor_seconds",
        "epoch_seconds_gpu_floor",
    ] {
        assert!(s.get(key).is_some(), "summary lacks {key}: {s}");
    }
    let (c, g) = (
        s["ndcg10_cpu"].as_f64().unwrap(),
        s["ndcg10_gpu"].as_f64().unwrap(),
    );
    assert!(
        (c - g).abs() <= 0.01,
        "GPU and CPU NDCG@10 after 2 epochs: {g} vs {c}"
    );
    let part = |name: &str| {
        r["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
    };
    // The GPU's run of a `bench train` output.
    let gpu_run = |out: &Value| -> Value {
        let runs = out["runs"].as_array().unwrap();
        runs.iter().find(|r| r["device"] == "gpu").unwrap().clone()
    };
    // The epoch's floor is its steps' floors; a step's floor is positive and no kernel's time
    // is needed to state it (the ceilings and the declared work are).
    let epoch = gpu_run(
        part("train_epoch")["outputs"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
    );
    let (floor, steps) = (
        s["gpu_step_floor_seconds"].as_f64().unwrap(),
        epoch["steps_per_epoch"].as_f64().unwrap(),
    );
    assert!(floor > 0.0 && steps >= 1.0, "{floor} {steps}");
    let want = floor * steps;
    let got = s["epoch_seconds_gpu_floor"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
    // Each table-step run took the path it asked for, whatever the adapter's default.
    let table = part("table_step");
    for (i, fused) in [true, false].into_iter().enumerate() {
        let gpu = gpu_run(&table["outputs"][i]);
        assert_eq!(gpu["fused_table"], fused, "{gpu}");
        assert_eq!(gpu["gpu"]["shader_checks"], "bounds", "{gpu}");
    }
    // The shader-check A/B: `bench ops` and the fused step under `all`, then `none`, each run
    // compiled as its command line says; the other parts under the default.
    assert_eq!(part("ops")["outputs"][0]["gpu_shader_checks"], "bounds");
    let ab = part("shader_checks");
    for (i, c) in ["all", "none"].into_iter().enumerate() {
        let (ops, step) = (&ab["outputs"][2 * i], &ab["outputs"][2 * i + 1]);
        assert_eq!(ops["gpu_shader_checks"], c, "{ops}");
        assert!(!ops["rows"].as_array().unwrap().is_empty(), "{ops}");
        let gpu = gpu_run(step);
        assert_eq!(gpu["gpu"]["shader_checks"], c, "{gpu}");
        assert_eq!(gpu["fused_table"], true, "{gpu}");
        assert!(ab["commands"][2 * i]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "AINRNN_SHADER_CHECKS={c} ainrnn --backend gpu --json bench ops"
            )));
    }
    // The demo's steps, each timed, in the order they ran, adding up to no more than the demo.
    let demo = part("demo_cpu");
    let out_json = demo["outputs"].as_array().unwrap().last().unwrap();
    let stages = out_json["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "features",
            "datasets",
            "compare_taste",
            "recommend_taste",
            "compare_hetrec",
            "recommend_hetrec",
            "synthetic_data",
            "synthetic_fig6"
        ]
    );
    let sum: f64 = stages.iter().map(|s| s["seconds"].as_f64().unwrap()).sum();
    assert!(
        stages.iter().all(|s| s["seconds"].as_f64().unwrap() > 0.0)
            && sum <= out_json["seconds"].as_f64().unwrap(),
        "{stages:?}"
    );
    // AINRNN's lists for fold 0's test users of each real dataset: a header and 10 rows a user.
    let recs = out_json["recommendations"].as_array().unwrap();
    assert_eq!(recs.len(), 2, "{out_json}");
    for p in recs {
        let text = std::fs::read_to_string(p.as_str().unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("user\trank\tsong_id\tscore\ttitle\tartist\tgenre")
        );
        let rows: Vec<&str> = lines.collect();
        assert!(
            !rows.is_empty() && rows.len().is_multiple_of(10),
            "{p}: {} rows",
            rows.len()
        );
    }
    // The CPU run has no GPU counters.
    assert!(stages.iter().all(|s| s.get("gpu").is_none()), "{stages:?}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## Targets") && md.contains("| agreement | ok |"),
        "{md}"
    );
    assert!(
        md.contains("## Demo steps") && md.contains("| compare_hetrec | "),
        "{md}"
    );
    // The adapters CI uses have timestamp queries: the step's kernel breakdown is there, and
    // the tuner's choice for each class of the step's products.
    assert!(
        md.contains("## Where the GPU step's time goes")
            && md.contains("`matmul::matmul")
            && md.contains("The matmul tuner's choices for this step"),
        "{md}"
    );
    // What limits the step and each of its kernels, against the ceilings: every kernel row
    // ends in a verdict, and the matmul rows have a FLOP rate.
    assert!(md.contains("Over the whole step, **"), "{md}");
    // How far the kernels are from the ceilings: the step's floor and each kernel's.
    assert!(
        md.contains("At this device's ceilings the kernels would take")
            && md.contains(&format!(
                "Over an epoch's {steps:.0} steps that is {got:.2} s"
            )),
        "{md}"
    );
    let rows: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("| phase | kernel |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(!rows.is_empty(), "{md}");
    let verdicts = [
        "compute (",
        "memory bandwidth (",
        "launch (",
        "occupancy (",
        "latency (",
    ];
    for row in &rows {
        let last = row.trim_end_matches('|').rsplit('|').next().unwrap().trim();
        assert!(
            verdicts.iter().any(|v| last.starts_with(v)),
            "a kernel row without a limit: {row}"
        );
        let floor = row.split('|').nth(10).unwrap().trim();
        assert!(floor.parse::<f64>().is_ok_and(|f| f >= 0.0), "{row}");
        if row.contains("`matmul::") {
            let gflops = row.split('|').nth(9).unwrap().trim();
            assert!(gflops.parse::<f64>().is_ok_and(|g| g > 0.0), "{row}");
        }
    }
}

/// A wrong `AINRNN_MATMUL_TUNE` is an error naming the variable, with `--backend gpu` and with
/// `auto` alike (not a silent fall-back to the CPU).
#[test]
fn a_wrong_tuner_setting_is_an_error_naming_it() {
    if common::gpu().is_none() {
        return;
    }
    for backend in ["gpu", "auto"] {
        let o = crate::common::cli::command()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("AINRNN_MATMUL_TUNE", "maybe")
            .args(["--backend", backend, "bench", "ops", "--quick"])
            .output()
            .unwrap();
        crate::common::cli::fails_with(&o, &["AINRNN_MATMUL_TUNE=\"maybe\"", "1 (on) or 0 (off)"]);
    }
    // `info` says whether the tuner runs, and why no device opened when the setting is wrong.
    let info_with = |var: &str, v: &str| -> Value {
        let o = crate::common::cli::command()
            .env(var, v)
            .args(["--json", "info"])
            .output()
            .unwrap();
        assert!(o.status.success());
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // A wrong value opens no device, and `info` says which setting was wrong.
    let refused = |var: &str, v: &str| {
        let bad = info_with(var, v);
        assert!(bad["chosen"].is_null(), "{var}={v}: {bad}");
        let error = bad["gpu_error"].as_str().unwrap();
        assert!(error.contains(&format!("{var}=\"{v}\"")), "{error}");
        assert_eq!(bad["env"][var], v);
    };
    let info = |v: &str| info_with("AINRNN_MATMUL_TUNE", v);
    assert_eq!(info("1")["chosen"]["matmul_tuning"], true);
    assert_eq!(info("0")["chosen"]["matmul_tuning"], false);
    refused("AINRNN_MATMUL_TUNE", "maybe");
    // The poison switch is read the same way, and `info` says whether it is on.
    // So is the fused song-table step's.
    let fused = |v: &str| info_with("AINRNN_FUSED_TABLE", v);
    assert_eq!(fused("1")["chosen"]["fused_table"], true);
    assert_eq!(fused("0")["chosen"]["fused_table"], false);
    refused("AINRNN_FUSED_TABLE", "maybe");
    // And the runtime checks the kernels are compiled with.
    let checks = |v: &str| info_with("AINRNN_SHADER_CHECKS", v);
    for c in ["all", "bounds", "none"] {
        assert_eq!(checks(c)["chosen"]["shader_checks"], c);
    }
    refused("AINRNN_SHADER_CHECKS", "1");
    let poison = |v: &str| info_with("AINRNN_GPU_POISON", v);
    assert_eq!(poison("1")["chosen"]["poisoned_buffers"], true);
    assert_eq!(poison("0")["chosen"]["poisoned_buffers"], false);
    refused("AINRNN_GPU_POISON", "maybe");
}
