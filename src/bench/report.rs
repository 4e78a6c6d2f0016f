//! `ainrnn bench report` (and `scripts/gpu-report.sh`): the one prepared GPU report that a person
//! with a GPU runs once. Every part is this same binary run as a child process under its own
//! timeout; a part that fails or times out is recorded as such and the others carry on. Writes
//! `results.json` (every part's own JSON, its status and time, a summary and the issue's
//! targets) and `report.md`, atomically; logs go to `logs/<part>.log`.
//!
//! `--quick` shrinks every size so the whole report runs on a software adapter (lavapipe) in CI:
//! the script cannot rot unnoticed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use super::limits::{
    floor_seconds, limit, step_limit, Ceilings, Rates, BOUND_SHARE, FEW_WORKGROUPS, LAUNCH_FACTOR,
};
use crate::backend::gpu::{ShaderChecks, SHADER_CHECKS_ENV};
use crate::error::{Error, IoError};
use crate::io::write_atomic;

/// The paper's catalogue and user count (MSD + Taste Profile after the paper's filtering).
pub const PAPER_SONGS: usize = 359_687;
pub const PAPER_USERS: usize = 82_310;

pub struct ReportOptions {
    /// Folder for `results.json`, `report.md`, `logs/` and `work/`.
    pub out: PathBuf,
    /// Smoke sizes (lavapipe, CI).
    pub quick: bool,
    /// The `ainrnn` binary the parts run (normally the running one).
    pub exe: PathBuf,
    /// The bundled data folder.
    pub data: PathBuf,
    /// Parts to leave out, by name.
    pub skip: Vec<String>,
    /// The whole report's time limit: a step gets at most what is left of it (the parts after
    /// it are recorded as not run), so a hung device cannot hold the machine.
    pub budget: Duration,
}

/// One step of the report: a command line of the binary (run with `--json`: its standard output
/// is JSON), the environment variables it sets, and its time limit.
struct Step {
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    timeout: Duration,
}

/// One part of the report: its name, what it shows, and its steps (run in order; the part
/// stops at the first that fails). The last step's JSON is the part's result.
struct Part {
    name: &'static str,
    title: &'static str,
    steps: Vec<Step>,
}

#[derive(Debug, Serialize)]
pub struct PartResult {
    pub name: String,
    pub title: String,
    /// `ok`, `failed`, `timeout` or `skipped`.
    pub status: String,
    pub seconds: f64,
    pub commands: Vec<String>,
    /// The JSON each step printed (null where it printed none).
    pub outputs: Vec<Value>,
    /// The reason, for a part that did not finish.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub value: Option<f64>,
    pub met: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub quick: bool,
    pub gpu: Option<String>,
    pub parts: Vec<PartResult>,
    pub summary: serde_json::Map<String, Value>,
    pub targets: Vec<Target>,
    pub seconds: f64,
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Step {
    /// A step with no environment of its own.
    fn new(args: Vec<String>, timeout: Duration) -> Step {
        Step {
            args,
            env: Vec::new(),
            timeout,
        }
    }
}

fn step(v: &[&str], secs: u64) -> Step {
    Step::new(args(v), Duration::from_secs(secs))
}

fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn parts(o: &ReportOptions, work: &Path) -> Vec<Part> {
    let q = o.quick;
    let gpu = ["--backend", "gpu", "--json"];
    // The bundled clips under --data (not the working folder's data/audio).
    let audio = path_arg(&o.data.join("audio"));
    let with = |head: &[&str], tail: &[&str]| -> Vec<String> {
        head.iter().chain(tail).map(|s| s.to_string()).collect()
    };
    let (songs, users, layers) = if q {
        ("3000".to_string(), "256".to_string(), "2")
    } else {
        (PAPER_SONGS.to_string(), PAPER_USERS.to_string(), "5")
    };
    let ops = |env| Step {
        env,
        ..Step::new(
            with(
                &gpu,
                if q {
                    &["bench", "ops", "--quick", "--min-seconds", "0.05"]
                } else {
                    &["bench", "ops", "--large"]
                },
            ),
            Duration::from_secs(180),
        )
    };
    // `bench train` of AINRNN on the GPU at the report's sizes (the trainer's settings, no
    // PyTorch), `users` an epoch, then `extra`.
    let ainrnn_train = |users: &str, extra: &[&str]| -> Vec<String> {
        let head = [
            "bench",
            "train",
            "--songs",
            &songs,
            "--users",
            users,
            "--layers",
            layers,
            "--models",
            "ainrnn",
            "--no-torch",
        ];
        let mut v = with(&gpu, &head);
        v.extend(args(extra));
        v
    };
    // The paper-scale step (640 users for 8 steps and a warm-up), its song table's optimizer
    // step fused or formed.
    let table_step = |how: &str, env| Step {
        args: ainrnn_train("640", &["--steps", "8", "--table-step", how]),
        env,
        timeout: Duration::from_secs(if q { 120 } else { 90 }),
    };
    let hetrec = work.join("hetrec.h5");
    let data = o.data.join("hetrec/user_artists.dat");
    // Agreement: the same short training on both backends, then NDCG@10 on fold 0's test users.
    let small: &[&str] = if q {
        &["--hidden", "16", "--emb", "16", "--layers", "2"]
    } else {
        &[]
    };
    let train_eval = |backend: &str| -> Vec<Step> {
        let ckpt = path_arg(&work.join(format!("agreement-{backend}.ckpt")));
        let data = path_arg(&hetrec);
        let mut train = args(&["--backend", backend, "--json", "train", "--data", &data]);
        train.extend(args(&[
            "--fold", "0", "--epochs", "2", "--seed", "7", "-o", &ckpt,
        ]));
        train.extend(args(small));
        vec![
            Step::new(train, Duration::from_secs(240)),
            step(
                &[
                    "--backend",
                    backend,
                    "--json",
                    "eval",
                    "--data",
                    &data,
                    "--checkpoint",
                    &ckpt,
                    "--fold",
                    "0",
                    "--k",
                    "10",
                ],
                120,
            ),
        ]
    };
    let demo = |backend: &str| Part {
        name: if backend == "cpu" {
            "demo_cpu"
        } else {
            "demo_gpu"
        },
        title: "`demo --quick` wall time",
        steps: vec![Step::new(
            args(&[
                "--backend",
                backend,
                "--json",
                "demo",
                "--quick",
                "--data",
                &path_arg(&o.data),
                "--out",
                &path_arg(&work.join(format!("demo-{backend}"))),
            ]),
            Duration::from_secs(if q { 600 } else { 240 }),
        )],
    };
    let mut agreement = vec![step(
        &[
            "--json",
            "prepare",
            "--hetrec",
            &path_arg(&data),
            "--folds",
            "5",
            "-o",
            &path_arg(&hetrec),
        ],
        120,
    )];
    agreement.extend(train_eval("cpu"));
    agreement.extend(train_eval("gpu"));
    vec![
        Part {
            name: "info",
            title: "adapters and the chosen GPU",
            steps: vec![step(&["--backend", "gpu", "--json", "info"], 60)],
        },
        Part {
            name: "ops",
            title: "`bench ops` (matmul 4096³, softmax 256 × 360,000, …)",
            steps: vec![ops(Vec::new())],
        },
        Part {
            name: "features",
            title: "`bench features` (256 clips of 30 s)",
            steps: vec![Step::new(
                with(
                    &gpu,
                    &[
                        &["bench", "features", "--data", &audio][..],
                        if q {
                            &["--clips", "2", "--seconds", "3"]
                        } else {
                            &["--clips", "256"]
                        },
                    ]
                    .concat(),
                ),
                Duration::from_secs(240),
            )],
        },
        Part {
            name: "scattering",
            title: "`bench scattering` (one 30 s clip, J = 8, Q = 8)",
            steps: vec![Step::new(
                with(
                    &gpu,
                    if q {
                        &[
                            "bench",
                            "scattering",
                            "--no-reference",
                            "--seconds",
                            "2",
                            "--min-seconds",
                            "0.1",
                        ]
                    } else {
                        &["bench", "scattering", "--no-reference"]
                    },
                ),
                Duration::from_secs(180),
            )],
        },
        Part {
            name: "train_epoch",
            title: "`bench train --epoch`: one AINRNN epoch at paper scale on the GPU, the CPU's projected",
            steps: vec![Step::new(
                ainrnn_train(&users, &["--epoch", "--epoch-gpu-only"]),
                Duration::from_secs(if q { 180 } else { 300 }),
            )],
        },
        Part {
            name: "table_step",
            title: "the same step with the song table's AdamW fused, then with its gradient formed whole",
            steps: ["fused", "formed"]
                .map(|how| table_step(how, Vec::new()))
                .into(),
        },
        Part {
            name: "agreement",
            title: "GPU vs CPU: `train` 2 epochs on HetRec fold 0, NDCG@10 of each",
            steps: agreement,
        },
        demo("cpu"),
        demo("gpu"),
        // Last: `none` is the one setting that could lose the device on a kernel's bug.
        Part {
            name: "shader_checks",
            title: "what naga's runtime checks cost: `bench ops` and the fused `table_step` compiled with every check (`all`), then none (`none`); the parts above ran with the default (`bounds`)",
            steps: SHADER_CHECKS_AB
                .iter()
                .flat_map(|c| {
                    let env = vec![(SHADER_CHECKS_ENV, c.name())];
                    [ops(env.clone()), table_step("fused", env)]
                })
                .collect(),
        },
    ]
}

/// The settings of naga's runtime checks the part `shader_checks` times beside the default.
const SHADER_CHECKS_AB: [ShaderChecks; 2] = [ShaderChecks::All, ShaderChecks::None];

/// Runs one command with a time limit; returns (stdout, error).
fn run_step(exe: &Path, s: &Step, log: &Path) -> (String, Option<(String, &'static str)>) {
    let log_file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        Ok(f) => f,
        Err(e) => {
            return (
                String::new(),
                Some((format!("{}: {e}", log.display()), "failed")),
            )
        }
    };
    let mut cmd = Command::new(exe);
    // Its own process group, so a timeout also stops what the step started (a Python
    // reference, say), and the pipe it holds closes.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd
        .args(&s.args)
        .envs(s.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return (
                String::new(),
                Some((format!("{}: {e}", exe.display()), "failed")),
            )
        }
    };
    let mut out = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if t0.elapsed() > s.timeout => {
                #[cfg(unix)]
                // SAFETY: signals the process group created for this child above.
                unsafe {
                    libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "timed out after {} s (see the log)",
                    s.timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => break Err(e.to_string()),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    match status {
        Ok(st) if st.success() => (stdout, None),
        Ok(st) => (
            stdout,
            Some((format!("exited with {st} (see the log)"), "failed")),
        ),
        Err(e) => {
            let kind = if e.starts_with("timed out") {
                "timeout"
            } else {
                "failed"
            };
            (stdout, Some((e, kind)))
        }
    }
}

/// The JSON object a command printed, or the last of several lines of JSON (a `train --json`
/// of before 2026-12-07 printed one line per epoch).
fn last_json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .unwrap_or(Value::Null)
    })
}

/// The parts' names, in the order they run (what `--skip` takes).
pub const PARTS: [&str; 10] = [
    "info",
    "ops",
    "features",
    "scattering",
    "train_epoch",
    "table_step",
    "agreement",
    "demo_cpu",
    "demo_gpu",
    "shader_checks",
];

/// Runs the report; `log` sees one line per part.
pub fn run(o: &ReportOptions, log: &mut dyn FnMut(&str)) -> Result<Report, Error> {
    let t0 = Instant::now();
    let (logs, work) = (o.out.join("logs"), o.out.join("work"));
    let parts = parts(o, &work);
    if let Some(bad) = o.skip.iter().find(|s| !parts.iter().any(|p| p.name == *s)) {
        let names: Vec<&str> = parts.iter().map(|p| p.name).collect();
        return Err(Error::Other(format!(
            "--skip {bad}: no such part (the parts: {})",
            names.join(", ")
        )));
    }
    // Four parts read the bundled data: without it they would each fail, after the others ran.
    let reads_data = ["features", "agreement", "demo_cpu", "demo_gpu"];
    if reads_data.iter().any(|p| !o.skip.iter().any(|s| s == p)) {
        for need in [o.data.join("audio"), o.data.join("hetrec/user_artists.dat")] {
            if !need.exists() {
                return Err(Error::Io(IoError::Format {
                    path: need,
                    reason: "missing: the report runs on the bundled data (run it from the repository root or pass --data DIR)".into(),
                }));
            }
        }
    }
    for d in [&o.out, &logs, &work] {
        std::fs::create_dir_all(d).map_err(|e| IoError::io(d, e))?;
    }
    let mut results = Vec::new();
    for part in parts {
        let mut r = PartResult {
            name: part.name.into(),
            title: part.title.into(),
            status: "ok".into(),
            seconds: 0.0,
            commands: Vec::new(),
            outputs: Vec::new(),
            error: None,
        };
        if o.skip.iter().any(|s| s == part.name) {
            r.status = "skipped".into();
            results.push(r);
            continue;
        }
        let log_path = logs.join(format!("{}.log", part.name));
        let _ = std::fs::remove_file(&log_path);
        let tp = Instant::now();
        for s in &part.steps {
            let env: String = s.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
            r.commands.push(format!("{env}ainrnn {}", s.args.join(" ")));
            let left = o.budget.saturating_sub(t0.elapsed());
            if left.is_zero() {
                r.status = "timeout".into();
                r.error = Some(format!(
                    "not run: the report's budget of {} s was spent",
                    o.budget.as_secs()
                ));
                break;
            }
            let s = &Step {
                args: s.args.clone(),
                env: s.env.clone(),
                timeout: s.timeout.min(left),
            };
            let (stdout, err) = run_step(&o.exe, s, &log_path);
            r.outputs.push(last_json(&stdout));
            if let Some((e, kind)) = err {
                r.status = kind.into();
                r.error = Some(e);
                break;
            }
        }
        r.seconds = tp.elapsed().as_secs_f64();
        log(&format!(
            "{:<13} {:<8} {:>7.1} s{}",
            r.name,
            r.status,
            r.seconds,
            r.error
                .as_ref()
                .map(|e| format!("  {e}"))
                .unwrap_or_default()
        ));
        results.push(r);
    }
    let summary = summarise(&results);
    let targets = targets(&summary, o.quick);
    let report = Report {
        quick: o.quick,
        gpu: summary
            .get("gpu")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        parts: results,
        summary,
        targets,
        seconds: t0.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(&o.out.join("results.json"), &json)?;
    write_atomic(&o.out.join("report.md"), markdown(&report).as_bytes())?;
    Ok(report)
}

fn part<'a>(parts: &'a [PartResult], name: &str) -> Option<&'a PartResult> {
    parts.iter().find(|p| p.name == name && p.status == "ok")
}

/// The figures the targets speak of, from the parts' own JSON.
fn summarise(parts: &[PartResult]) -> serde_json::Map<String, Value> {
    let ops_rows = part(parts, "ops")
        .and_then(|p| p.outputs.last())
        .and_then(|o| o["rows"].as_array());
    // The ceilings the step's kernels are set against (see `limits`).
    let ceilings = ops_rows.map_or_else(Ceilings::default, |rows| Ceilings::from_ops_rows(rows));
    let mut s = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            s.insert(k.to_string(), v);
        }
    };
    let last = |name: &str| part(parts, name).and_then(|p| p.outputs.last());
    put(
        "gpu",
        last("info").and_then(|i| i.pointer("/chosen/name").cloned()),
    );
    // The device memory its driver reports (Vulkan, Metal, DX12; `null` on GL): heap, budget, used.
    for (key, field) in [
        ("gpu_memory_heap_bytes", "heap_bytes"),
        ("gpu_memory_budget_bytes", "budget_bytes"),
        ("gpu_memory_used_bytes", "used_bytes"),
    ] {
        put(
            key,
            last("info")
                .and_then(|i| i.pointer(&format!("/chosen/memory/{field}")).cloned())
                .filter(|v| !v.is_null()),
        );
    }
    if let Some(rows) = ops_rows {
        for r in rows {
            let kernel = r["kernel"].as_str().map(|k| format!("_{k}"));
            let key = format!(
                "ops_{}{}_{}_gpu_{}",
                r["op"].as_str().unwrap_or("?"),
                kernel.unwrap_or_default(),
                r["size"].as_str().unwrap_or("?"),
                r["unit"].as_str().unwrap_or("").replace('/', "_per_")
            );
            put(&key, r.get("gpu_rate").cloned());
        }
        let (tflops, fastest) = matmul_4096(rows);
        put("matmul_4096_tflops", tflops);
        put("matmul_4096_fastest_kernel", fastest);
        put(
            "ceiling_bandwidth_GB_per_s",
            ceilings.bandwidth_gb_s.map(|x| json!(x)),
        );
        put(
            "ceiling_matmul_GFLOP_per_s",
            ceilings.matmul_gflop_s.map(|x| json!(x)),
        );
        put(
            "ceiling_dispatch_floor_us",
            ceilings.floor_us.map(|x| json!(x)),
        );
    }
    // What the matmul tuner chose for the products `bench ops` timed (the rows without a
    // forced kernel ran on these): beside the forced kernels' rates above, a check on it.
    let tuned: Vec<String> = last("ops")
        .and_then(|o| o["matmul_tuned"].as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            format!(
                "{}x{}x{}: {}",
                n("m"),
                n("n"),
                n("k"),
                t["kernel"].as_str().unwrap_or("?")
            )
        })
        .collect();
    put(
        "ops_matmul_tuned",
        (!tuned.is_empty()).then(|| json!(tuned.join(", "))),
    );
    if let Some(f) = last("features") {
        put(
            "features_clips_per_second_kernel",
            f["gpu_kernel_seconds_per_clip"]
                .as_f64()
                .filter(|&x| x > 0.0)
                .map(|x| json!(1.0 / x)),
        );
        put("features_clips", f.get("clips").cloned());
        put(
            "features_cpu_seconds_per_clip",
            f.get("cpu_seconds_per_clip").cloned(),
        );
        // The GPU's wall per clip (upload to read-back) beside the CPU's: whether a user's
        // `features` run gains from the GPU, which the kernel-time target does not say.
        put(
            "features_gpu_seconds_per_clip",
            f.get("gpu_seconds_per_clip").cloned(),
        );
    }
    if let Some(sc) = last("scattering") {
        put(
            "scattering_gpu_seconds_per_clip",
            sc.get("gpu_seconds").cloned(),
        );
        put(
            "scattering_cpu_seconds_per_clip",
            sc.get("cpu_seconds").cloned(),
        );
    }
    if let Some(runs) = last("train_epoch").and_then(|t| t["runs"].as_array()) {
        let find = |dev: &str| runs.iter().find(|r| r["device"] == dev);
        let gpu_epoch = find("gpu").and_then(|r| r["epoch_seconds"].as_f64());
        let cpu_epoch = find("cpu").and_then(|r| r["projected_epoch_seconds"].as_f64());
        put("epoch_seconds_gpu", gpu_epoch.map(|x| json!(x)));
        put("epoch_seconds_cpu_projected", cpu_epoch.map(|x| json!(x)));
        if let (Some(g), Some(c)) = (gpu_epoch, cpu_epoch) {
            put("epoch_speedup_gpu_over_cpu", Some(json!(c / g.max(1e-12))));
        }
        // Every user's list (eval, recommend --all) on each backend.
        let rank = |dev: &str| find(dev).and_then(|r| r["rank_all_users_seconds"].as_f64());
        put("rank_all_users_seconds_gpu", rank("gpu").map(|x| json!(x)));
        put("rank_all_users_seconds_cpu", rank("cpu").map(|x| json!(x)));
        if let (Some(g), Some(c)) = (rank("gpu"), rank("cpu")) {
            put("rank_speedup_gpu_over_cpu", Some(json!(c / g.max(1e-12))));
        }
        put(
            "gpu_step_seconds",
            find("gpu").and_then(|r| r.get("seconds_per_step").cloned()),
        );
        put(
            "gpu_bytes_allocated",
            find("gpu").and_then(|r| r.pointer("/gpu/bytes_allocated").cloned()),
        );
        put(
            "gpu_dispatches_per_step",
            find("gpu").and_then(|r| r.pointer("/gpu/dispatches_per_step").cloned()),
        );
        put(
            "gpu_host_seconds_per_step",
            find("gpu").and_then(|r| r.get("host_seconds_per_step").cloned()),
        );
        put(
            "gpu_kernel_seconds_per_step",
            find("gpu").and_then(kernel_seconds),
        );
        // The least the step's kernels could take at this device's ceilings, and an epoch of
        // such steps: how near the 10 s target this GPU could come at all.
        let floor = find("gpu").and_then(|r| step_floor(&step_kernel_rows(r), &ceilings));
        put("gpu_step_floor_seconds", floor.map(|x| json!(x)));
        let steps = find("gpu").and_then(|r| r["steps_per_epoch"].as_f64());
        put(
            "epoch_seconds_gpu_floor",
            floor.zip(steps).map(|(f, n)| json!(f * n)),
        );
    }
    if let Some(t) = part(parts, "table_step") {
        // Outputs: fused, formed; each run's GPU step (wall and kernel time).
        for (i, how) in ["fused", "formed"].iter().enumerate() {
            let run = t.outputs.get(i).and_then(gpu_run);
            put(
                &format!("table_step_seconds_{how}"),
                run.and_then(|r| r.get("seconds_per_step").cloned()),
            );
            put(
                &format!("table_step_kernel_seconds_{how}"),
                run.and_then(kernel_seconds),
            );
        }
    }
    // Every step that ran, even when a later one failed: `none` may lose the device after
    // `all` gave its figures. Outputs: per setting, `bench ops` then the fused step.
    if let Some(p) = parts.iter().find(|p| p.name == "shader_checks") {
        for (i, c) in SHADER_CHECKS_AB.iter().enumerate() {
            let c = c.name();
            if let Some(rows) = p.outputs.get(2 * i).and_then(|o| o["rows"].as_array()) {
                let (tflops, fastest) = matmul_4096(rows);
                put(&format!("shader_checks_{c}_matmul_4096_tflops"), tflops);
                put(
                    &format!("shader_checks_{c}_matmul_4096_fastest_kernel"),
                    fastest,
                );
            }
            let run = p.outputs.get(2 * i + 1).and_then(gpu_run);
            put(
                &format!("shader_checks_{c}_step_seconds"),
                run.and_then(|r| r.get("seconds_per_step").cloned()),
            );
            put(
                &format!("shader_checks_{c}_step_kernel_seconds"),
                run.and_then(kernel_seconds),
            );
        }
    }
    if let Some(a) = part(parts, "agreement") {
        // Outputs: prepare, train cpu, eval cpu, train gpu, eval gpu.
        let ndcg = |i: usize| a.outputs.get(i).and_then(|e| e["ndcg"].as_f64());
        put("ndcg10_cpu", ndcg(2).map(|x| json!(x)));
        put("ndcg10_gpu", ndcg(4).map(|x| json!(x)));
        if let (Some(c), Some(g)) = (ndcg(2), ndcg(4)) {
            put("ndcg10_abs_difference", Some(json!((c - g).abs())));
        }
    }
    for (name, key) in [
        ("demo_cpu", "demo_quick_seconds_cpu"),
        ("demo_gpu", "demo_quick_seconds_gpu"),
    ] {
        put(key, part(parts, name).map(|p| json!(p.seconds)));
    }
    s
}

/// The 4096³ product of `bench ops` rows: the rate of the backend's own choice (TFLOP/s), and
/// the fastest kernel forced on it with its rate (what the choice for large products should be
/// on this GPU).
fn matmul_4096(rows: &[Value]) -> (Option<Value>, Option<Value>) {
    let of_size = || {
        rows.iter()
            .filter(|r| r["op"] == "matmul" && r["size"] == "4096x4096x4096")
    };
    let chosen = of_size()
        .find(|r| r["kernel"].is_null())
        .and_then(|r| r["gpu_rate"].as_f64())
        .map(|g| json!(g / 1e3));
    let best = of_size()
        .filter_map(|r| Some((r["kernel"].as_str()?, r["gpu_rate"].as_f64()?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, g)| json!(format!("{k}: {:.2} TFLOP/s", g / 1e3)));
    (chosen, best)
}

/// The GPU's run in `bench train --json` output.
fn gpu_run(out: &Value) -> Option<&Value> {
    out["runs"]
        .as_array()?
        .iter()
        .find(|r| r["device"] == "gpu")
}

/// A `bench train` run's kernel time per step (its phases' timestamp sums).
fn kernel_seconds(run: &Value) -> Option<Value> {
    let p = run["phases_kernel"].as_object()?;
    Some(json!(p.values().filter_map(Value::as_f64).sum::<f64>()))
}

/// The issue's targets for one data-centre GPU (H100/H200 class). In `--quick` mode the sizes
/// are not the targets' sizes: only the agreement is judged.
fn targets(s: &serde_json::Map<String, Value>, quick: bool) -> Vec<Target> {
    let get = |k: &str| s.get(k).and_then(|v| v.as_f64());
    let mut t = Vec::new();
    let mut add = |what: &str, target: &str, value: Option<f64>, ok: fn(f64) -> bool, sized| {
        t.push(Target {
            what: what.into(),
            target: target.into(),
            value,
            met: if quick && sized { None } else { value.map(ok) },
        });
    };
    add(
        "paper-scale AINRNN epoch on the GPU (s)",
        "≤ 10",
        get("epoch_seconds_gpu"),
        |v| v <= 10.0,
        true,
    );
    add(
        "GPU epoch speed-up over the CPU backend",
        "≥ 20×",
        get("epoch_speedup_gpu_over_cpu"),
        |v| v >= 20.0,
        true,
    );
    add(
        "matmul 4096³ fp32 (TFLOP/s)",
        "≥ 20",
        get("matmul_4096_tflops"),
        |v| v >= 20.0,
        true,
    );
    add(
        "audio features, kernel time (clips/s)",
        "≥ 2,000",
        get("features_clips_per_second_kernel"),
        |v| v >= 2000.0,
        true,
    );
    add(
        "NDCG@10 difference, GPU vs CPU, after 2 epochs",
        "≤ 0.01",
        get("ndcg10_abs_difference"),
        |v| v <= 0.01,
        false,
    );
    t
}

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.4}"),
        None => "—".into(),
    }
}

/// The paper-scale GPU step's kernel time per kernel (timestamp queries), largest first, and
/// what limits each against this device's ceilings (`limits`): what to tune next. Empty when
/// the epoch part did not run or the adapter has no timestamps.
fn step_kernels(parts: &[PartResult], summary: &serde_json::Map<String, Value>) -> String {
    let run = part(parts, "train_epoch")
        .and_then(|p| p.outputs.last())
        .and_then(|t| t["runs"].as_array())
        .and_then(|runs| runs.iter().find(|r| r["device"] == "gpu"));
    let Some(run) = run else {
        return String::new();
    };
    let ks = step_kernel_rows(run);
    let total: f64 = ks
        .iter()
        .filter_map(|k| k["seconds_per_step"].as_f64())
        .sum();
    if ks.is_empty() || total <= 0.0 {
        return String::new();
    }
    let get = |k: &str| summary.get(k).and_then(Value::as_f64);
    let c = Ceilings {
        bandwidth_gb_s: get("ceiling_bandwidth_GB_per_s"),
        matmul_gflop_s: get("ceiling_matmul_GFLOP_per_s"),
        floor_us: get("ceiling_dispatch_floor_us"),
    };
    let dispatches = run
        .pointer("/gpu/dispatches_per_step")
        .and_then(Value::as_f64);
    let (wall, host) = (
        run["seconds_per_step"].as_f64(),
        run["host_seconds_per_step"].as_f64(),
    );
    let pace = match (wall, host, dispatches) {
        (Some(w), Some(h), Some(d)) => {
            format!(" Over the whole step, {}.", step_limit(w, h, total, d))
        }
        _ => String::new(),
    };
    let headroom = headroom(&ks, &c, total, run["steps_per_epoch"].as_f64());
    let mut m = format!(
        "\n## Where the GPU step's time goes\n\nThe paper-scale AINRNN step (train_epoch): {} of kernel time in {} dispatches, \
         {} of host time (encoding, not waiting), {} of wall time per step.{pace}{headroom}\n\n\
         Per kernel, largest first, with what limits it against this device's own ceilings \
         (from `bench ops` above: bandwidth {} GB/s, an `axpy` streaming; compute {} GFLOP/s, the best matmul; \
         {} µs a dispatch doing nothing, the floor). GB/s counts the bytes a kernel declares it moves \
         (a gather's rows, the neighbour lists it walks, a buffer updated in place read and written), \
         else each byte bound to it once; GFLOP/s is shown for the kernels that form products. A limit is the first that holds: compute or bandwidth at {:.0} % or more \
         of its ceiling, launch at {:.0}× the floor or less, occupancy under {:.0} workgroups a dispatch, \
         else latency. *ms at the ceilings*: the least the kernel could take here, those bytes at the \
         bandwidth, its operations at the compute rate, each dispatch at least the floor.\n\n\
         | phase | kernel | ms per step | share | dispatches per step | µs per dispatch | workgroups per dispatch | GB/s | GFLOP/s | ms at the ceilings | limit |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        fmt(Some(total * 1e3)) + " ms",
        fmt(dispatches),
        fmt(host.map(|x| x * 1e3)) + " ms",
        fmt(wall.map(|x| x * 1e3)) + " ms",
        fmt(c.bandwidth_gb_s),
        fmt(c.matmul_gflop_s),
        fmt(c.floor_us),
        100.0 * BOUND_SHARE,
        LAUNCH_FACTOR,
        FEW_WORKGROUPS,
    );
    for k in ks.iter().take(15) {
        let f = |key: &str| k[key].as_f64().unwrap_or(0.0);
        let secs = f("seconds_per_step");
        let r = Rates::new(
            secs,
            f("dispatches_per_step"),
            f("bytes_per_step"),
            f("flops_per_step"),
            f("workgroups_per_step"),
        );
        let floor = kernel_floor(k, &c);
        m.push_str(&format!(
            "| {} | `{}` | {} | {:.1} % | {} | {} | {} | {} | {} | {} | {} |\n",
            k["phase"].as_str().unwrap_or("?"),
            k["kernel"].as_str().unwrap_or("?"),
            fmt(Some(secs * 1e3)),
            100.0 * secs / total,
            fmt(k["dispatches_per_step"].as_f64()),
            fmt(Some(r.micros_per_dispatch)),
            fmt(Some(r.workgroups_per_dispatch)),
            fmt(Some(r.gb_s)),
            fmt(r.gflop_s),
            fmt(floor.map(|x| x * 1e3)),
            limit(&r, &c),
        ));
    }
    m.push_str(&tuned_products(run));
    m
}

/// [`floor_seconds`] of one kernel row of `bench train --json` (`gpu.kernels[]`).
fn kernel_floor(k: &Value, c: &Ceilings) -> Option<f64> {
    let f = |key: &str| k[key].as_f64().unwrap_or(0.0);
    floor_seconds(
        f("dispatches_per_step"),
        f("bytes_per_step"),
        f("flops_per_step"),
        c,
    )
}

/// The per-kernel rows of a `bench train` GPU run (`gpu.kernels`; empty without timestamps).
fn step_kernel_rows(run: &Value) -> Vec<Value> {
    run.pointer("/gpu/kernels")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The step's kernels' floors summed ([`floor_seconds`]); `None` without kernels or when a
/// ceiling a kernel needs is missing.
fn step_floor(ks: &[Value], c: &Ceilings) -> Option<f64> {
    if ks.is_empty() {
        return None;
    }
    ks.iter().map(|k| kernel_floor(k, c)).sum()
}

/// How far the step's kernels are from this device's ceilings: their summed floors against
/// their measured time, the same over an epoch of `steps` (when known), and the three kernels
/// losing the most (measured minus floor). Empty when a ceiling is missing.
fn headroom(ks: &[Value], c: &Ceilings, total: f64, steps: Option<f64>) -> String {
    let Some(floors) = step_floor(ks, c) else {
        return String::new();
    };
    let mut lost = Vec::new();
    for k in ks {
        let floor = kernel_floor(k, c).unwrap_or(0.0);
        let name = format!(
            "`{}` ({})",
            k["kernel"].as_str().unwrap_or("?"),
            k["phase"].as_str().unwrap_or("?")
        );
        let secs = k["seconds_per_step"].as_f64().unwrap_or(0.0);
        lost.push((secs - floor, name));
    }
    lost.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top: Vec<String> = lost
        .iter()
        .take(3)
        .filter(|(l, _)| *l > 0.0)
        .map(|(l, n)| format!("{n} {:.3} ms", l * 1e3))
        .collect();
    let epoch = steps.map_or(String::new(), |n| {
        format!(
            " Over an epoch's {n:.0} steps that is {:.2} s at the ceilings against {:.2} s of \
             kernel time (the target: 10 s at the paper's scale).",
            floors * n,
            total * n
        )
    });
    format!(
        " At this device's ceilings the kernels would take {:.3} ms a step, {:.0} % of the {:.3} ms \
         they take{}.{epoch}",
        floors * 1e3,
        100.0 * floors / total.max(1e-12),
        total * 1e3,
        if top.is_empty() {
            String::new()
        } else {
            format!("; the most time above its floor is lost in {}", top.join(", "))
        }
    )
}

/// The matmul tuner's decisions in a GPU run of `bench train`: each class of products, the
/// kernel it chose and every kernel's time. Empty when the tuner was off.
fn tuned_products(run: &Value) -> String {
    let tuned = run
        .pointer("/gpu/matmul_tuned")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if tuned.is_empty() {
        return String::new();
    }
    let mut m = String::from(
        "\nThe matmul tuner's choices for this step (each class of products timed once on every \
         kernel; µs of the fastest of three runs). For a small C over a K the rule does not split, \
         the same product split over K (partials and their sum) is timed too, never chosen (it \
         changes the order of the sum): faster than the choice, it says the rule should split \
         such products. For a product the rule splits, the kernel of its partial products is \
         chosen.\n\n\
         | product (batch × m × n, K) | transposes | chosen | µs per kernel | split-K, not chosen (µs) |\n\
         |---|---|---|---|---|\n",
    );
    let times = |t: &Value, key: &str| -> String {
        let v: Vec<String> = t[key]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|k| {
                format!(
                    "{} {}",
                    k["kernel"].as_str().unwrap_or("?"),
                    fmt(k["micros"].as_f64())
                )
            })
            .collect();
        if v.is_empty() {
            "—".into()
        } else {
            v.join(", ")
        }
    };
    for t in &tuned {
        let n = |k: &str| t[k].as_u64().unwrap_or(0);
        // A class the rule splits over K: the kernels timed on its partial products.
        let split = t["split"]
            .as_u64()
            .map(|c| format!(" (split over K in slices of {c}: the partials)"))
            .unwrap_or_default();
        m.push_str(&format!(
            "| {} × {} × {}, K {}{split} | {}{} | `{}` | {} | {} |\n",
            n("batch"),
            n("m"),
            n("n"),
            n("k"),
            if t["trans_a"] == true { "Aᵀ" } else { "A" },
            if t["trans_b"] == true { "Bᵀ" } else { "B" },
            t["kernel"].as_str().unwrap_or("?"),
            times(t, "timings"),
            times(t, "split_k"),
        ));
    }
    m
}

/// The demo's steps on each backend side by side, with what the GPU did in each (`demo
/// --json`'s `stages`): where a GPU demo slower than the CPU's loses its time. Empty when
/// neither demo part gave its steps.
fn demo_stages(parts: &[PartResult]) -> String {
    let stages = |name: &str| {
        part(parts, name)
            .and_then(|p| p.outputs.last())
            .and_then(|o| o["stages"].as_array())
            .cloned()
            .unwrap_or_default()
    };
    let (cpu, gpu) = (stages("demo_cpu"), stages("demo_gpu"));
    let names: Vec<&str> = if cpu.len() >= gpu.len() { &cpu } else { &gpu }
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    if names.is_empty() {
        return String::new();
    }
    let find = |list: &[Value], n: &str| list.iter().find(|s| s["name"] == n).cloned();
    let mut m = String::from(
        "\n## Demo steps\n\n`demo --quick` step by step on each backend, with what the GPU did in each step.\n\n\
         | step | CPU (s) | GPU (s) | GPU dispatches | submits | read-backs | buffers created | pipelines compiled | uploaded (MiB) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for n in names {
        let c = find(&cpu, n);
        let g = find(&gpu, n);
        let secs = |v: &Option<Value>| fmt(v.as_ref().and_then(|v| v["seconds"].as_f64()));
        let count = |k: &str| {
            g.as_ref()
                .and_then(|v| v["gpu"][k].as_f64())
                .map_or("—".to_string(), |x| format!("{x:.0}"))
        };
        let mib = g
            .as_ref()
            .and_then(|v| v["gpu"]["upload_bytes"].as_f64())
            .map_or("—".to_string(), |x| format!("{:.1}", x / 1048576.0));
        m.push_str(&format!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {mib} |\n",
            secs(&c),
            secs(&g),
            count("dispatches"),
            count("submits"),
            count("readbacks"),
            count("buffers_created"),
            count("pipelines"),
        ));
    }
    m
}

fn markdown(r: &Report) -> String {
    let mut m = String::new();
    m.push_str(&format!(
        "# ainrnn GPU report{}\n\nGPU: **{}**. Total {:.0} s. Every figure comes from `results.json` beside this file (each part's own JSON); logs in `logs/`.\n\n",
        if r.quick { " (--quick: smoke sizes, not the targets' sizes)" } else { "" },
        r.gpu.as_deref().unwrap_or("unknown (the info part failed)"),
        r.seconds
    ));
    m.push_str("## Targets\n\n| what | target | measured | met |\n|---|---|---|---|\n");
    for t in &r.targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        m.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            t.what,
            t.target,
            fmt(t.value),
            met
        ));
    }
    m.push_str("\n## Figures\n\n| figure | value |\n|---|---|\n");
    for (k, v) in &r.summary {
        let shown = match v {
            Value::Number(n) => fmt(n.as_f64()),
            other => other.to_string().trim_matches('"').to_string(),
        };
        m.push_str(&format!("| {k} | {shown} |\n"));
    }
    m.push_str(&step_kernels(&r.parts, &r.summary));
    m.push_str(&demo_stages(&r.parts));
    m.push_str("\n## Parts\n\n| part | status | seconds | what |\n|---|---|---|---|\n");
    for p in &r.parts {
        m.push_str(&format!(
            "| {} | {}{} | {:.1} | {} |\n",
            p.name,
            p.status,
            p.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
            p.seconds,
            p.title
        ));
    }
    m.push_str("\nCommands, in order:\n\n```\n");
    for p in &r.parts {
        for c in &p.commands {
            m.push_str(c);
            m.push('\n');
        }
    }
    m.push_str("```\n");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step_of(args: &[&str], secs: u64) -> Step {
        step(args, secs)
    }

    #[test]
    fn parts_lists_every_part_in_order() {
        for quick in [false, true] {
            let o = ReportOptions {
                out: PathBuf::from("r"),
                quick,
                exe: PathBuf::from("ainrnn"),
                data: PathBuf::from("data"),
                skip: Vec::new(),
                budget: Duration::from_secs(60),
            };
            let names: Vec<&str> = parts(&o, Path::new("w")).iter().map(|p| p.name).collect();
            assert_eq!(names, PARTS);
        }
    }

    /// The parts read the data under `--data`, not the working folder's; without it the report
    /// stops before any part runs (four parts would fail, after the others had run).
    #[test]
    fn the_report_reads_the_data_it_is_given_or_stops_first() {
        let dir = std::env::temp_dir().join(format!("ainrnn-report-data-{}", std::process::id()));
        let o = ReportOptions {
            out: dir.join("r"),
            quick: true,
            exe: PathBuf::from("ainrnn"),
            data: dir.join("elsewhere"),
            skip: Vec::new(),
            budget: Duration::from_secs(60),
        };
        let features = parts(&o, Path::new("w"))
            .into_iter()
            .find(|p| p.name == "features")
            .unwrap();
        let args = &features.steps[0].args;
        let at = args.iter().position(|a| a == "--data").unwrap();
        assert_eq!(Path::new(&args[at + 1]), dir.join("elsewhere/audio"));
        let e = run(&o, &mut |_| {}).err().unwrap().to_string();
        assert!(
            e.contains("elsewhere/audio: missing: the report runs on the bundled data"),
            "{e}"
        );
        assert!(!o.out.exists(), "nothing written before the check");
    }

    #[test]
    fn a_step_that_fails_or_hangs_is_recorded_not_fatal() {
        let dir = std::env::temp_dir().join(format!("ainrnn-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("x.log");
        let sh = Path::new("/bin/sh");
        let (out, err) = run_step(sh, &step_of(&["-c", "echo '{\"a\": 1}'"], 10), &log);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(last_json(&out)["a"], 1);
        let (_, err) = run_step(sh, &step_of(&["-c", "echo oops >&2; exit 3"], 10), &log);
        assert_eq!(err.map(|e| e.1), Some("failed"));
        assert!(std::fs::read_to_string(&log).unwrap().contains("oops"));
        let t = Instant::now();
        let (_, err) = run_step(sh, &step_of(&["-c", "sleep 30"], 1), &log);
        assert_eq!(err.map(|e| e.1), Some("timeout"));
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the child was killed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_demo_steps_table_sets_the_backends_side_by_side_with_the_gpu_counters() {
        let demo = |name: &str, stages: Value| PartResult {
            name: name.into(),
            title: String::new(),
            status: "ok".into(),
            seconds: 1.0,
            commands: vec![],
            outputs: vec![serde_json::json!({ "stages": stages })],
            error: None,
        };
        assert_eq!(demo_stages(&[]), "");
        let cpu = demo(
            "demo_cpu",
            serde_json::json!([{"name": "features", "seconds": 0.25}, {"name": "compare_taste", "seconds": 14.0}]),
        );
        let gpu = demo(
            "demo_gpu",
            serde_json::json!([
                {"name": "features", "seconds": 3.5, "gpu": {"dispatches": 120, "submits": 9, "readbacks": 7,
                  "buffers_created": 30, "pipelines": 41, "upload_bytes": 3145728}},
                {"name": "compare_taste", "seconds": 20.0, "gpu": {"dispatches": 9000, "submits": 300,
                  "readbacks": 250, "buffers_created": 80, "pipelines": 50, "upload_bytes": 1048576}}
            ]),
        );
        let md = demo_stages(&[cpu, gpu]);
        assert!(
            md.contains("| features | 0.2500 | 3.50 | 120 | 9 | 7 | 30 | 41 | 3.0 |"),
            "{md}"
        );
        assert!(
            md.contains("| compare_taste | 14.00 | 20.00 | 9000 | 300 | 250 | 80 | 50 | 1.0 |"),
            "{md}"
        );
        // One backend alone: its column, dashes for the other.
        let only = demo_stages(&[demo(
            "demo_cpu",
            serde_json::json!([{"name": "datasets", "seconds": 0.5}]),
        )]);
        assert!(
            only.contains("| datasets | 0.5000 | — | — | — | — | — | — | — |"),
            "{only}"
        );
    }

    #[test]
    fn json_lines_give_the_last_object() {
        assert_eq!(last_json("{\"epoch\":1}\n{\"epoch\":2}\n")["epoch"], 2);
        assert_eq!(last_json("not json"), Value::Null);
    }
}
