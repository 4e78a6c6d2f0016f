//! The human-readable table of a [`TrainBench`] (printed on stderr).

use super::report::TrainBench;
use super::step::KernelShare;

fn human_seconds(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

/// The table printed on stderr.
pub fn render(r: &TrainBench) -> String {
    let o = &r.options;
    let mut s = format!(
        "bench train on SYNTHETIC histories: {} songs, batch {}, history {}, targets {}, hidden {}, song table {}, \
         dropout {}, layers {}, neighbours {}, connection {}, {} timed steps after {} warm-up; epoch = {} users = {} steps; {} CPU threads\n",
        o.songs,
        o.batch,
        o.history,
        o.targets,
        o.hidden,
        o.emb,
        o.dropout,
        o.layers,
        o.neighbours,
        o.connection.map_or_else(
            || {
                use crate::model::ModelKind::{Ainrnn, Indrnn};
                let of = |k| crate::train::run::default_connection(k, false).name();
                format!("the trainer's (ainrnn {}, indrnn {})", of(Ainrnn), of(Indrnn))
            },
            |c| c.name().to_string()
        ),
        o.steps,
        o.warmup,
        o.users,
        o.users.div_ceil(o.batch.max(1)),
        r.cpu_threads
    );
    s += &format!(
        "  {:<7} {:<4} {:>10} {:>9} {:>8} {:>11} {:>11} {:>9} {:>8} {:>9}\n",
        "model",
        "dev",
        "step",
        "users/s",
        "softmax",
        "epoch est.",
        "epoch run",
        "GPU MB",
        "new buf",
        "disp/step"
    );
    for x in &r.runs {
        let g = x.gpu.as_ref();
        s += &format!(
            "  {:<7} {:<4} {:>10} {:>9.0} {:>7.0}% {:>11} {:>11} {:>9} {:>8} {:>9}\n",
            x.model,
            x.device,
            human_seconds(x.seconds_per_step),
            x.users_per_second,
            x.softmax_share * 100.0,
            human_seconds(x.projected_epoch_seconds),
            x.epoch_seconds
                .map(human_seconds)
                .unwrap_or_else(|| "-".into()),
            g.map(|g| format!("{:.1}", g.bytes_allocated as f64 / 1e6))
                .unwrap_or_else(|| "-".into()),
            g.map(|g| format!("{:.1}", g.buffers_created_per_step))
                .unwrap_or_else(|| "-".into()),
            g.map(|g| format!("{:.0}", g.dispatches_per_step))
                .unwrap_or_else(|| "-".into()),
        );
    }
    s += "  phases per step (synced; GPU: kernel time when timestamps work):\n";
    for x in &r.runs {
        let p = x.phases_kernel.as_ref().unwrap_or(&x.phases);
        s += &format!(
            "    {:<7} {:<4} upload {:>9}  forward {:>9}  softmax {:>9}  backward {:>9}  adam {:>9}{}\n",
            x.model,
            x.device,
            human_seconds(p.upload),
            human_seconds(p.forward),
            human_seconds(p.softmax),
            human_seconds(p.backward),
            human_seconds(p.optimizer),
            if x.phases_kernel.is_some() { "  (kernels)" } else { "" }
        );
    }
    s += "  ranking (eval, validation, recommend --all): every song, top 10 read back, users ranked together:\n";
    for x in &r.runs {
        s += &format!(
            "    {:<7} {:<4} {:>9.0} users/s, all {} users in {}\n",
            x.model,
            x.device,
            1.0 / x.rank_seconds_per_user.max(1e-12),
            o.users,
            human_seconds(x.rank_all_users_seconds)
        );
    }
    for x in r.runs.iter().filter_map(|x| x.gpu.as_ref().map(|g| (x, g))) {
        s += &format!(
            "  {} gpu per step: {:.0} dispatches, {:.1} submits, {:.1} read-backs, {:.1} new buffers, \
             {:.1} KiB uploaded ({:.1} KiB of it kernel parameters), host {}\n",
            x.0.model,
            x.1.dispatches_per_step,
            x.1.submits_per_step,
            x.1.readbacks_per_step,
            x.1.buffers_created_per_step,
            x.1.upload_bytes_per_step / 1024.0,
            x.1.param_bytes_per_step / 1024.0,
            human_seconds(x.0.host_seconds_per_step)
        );
        s += &top_kernels(&x.1.kernels, 8);
    }
    for ((dev, ratio), (_, enc)) in r
        .indrnn_speedup_over_lstm
        .iter()
        .zip(&r.indrnn_encoder_speedup_over_lstm)
    {
        s += &format!(
            "  IndRNN vs LSTM on {dev}: whole step {ratio:.2}x, recurrent layers (forward + backward) {enc:.2}x (above 1: IndRNN faster)\n"
        );
    }
    if let Some(t) = &r.torch {
        s += &format!(
            "  PyTorch {} on the CPU ({} threads, {}), median step:\n",
            t.torch, t.threads, t.python
        );
        for v in &r.vs_torch {
            s += &format!(
                "    {:<7} torch {:>10}  ours {:>10}  ours {:.2}x {}\n",
                v.model,
                human_seconds(v.torch_seconds_per_step),
                human_seconds(v.ours_cpu_seconds_per_step),
                if v.cpu_speedup_vs_torch >= 1.0 {
                    v.cpu_speedup_vs_torch
                } else {
                    1.0 / v.cpu_speedup_vs_torch
                },
                if v.cpu_speedup_vs_torch >= 1.0 {
                    "faster"
                } else {
                    "slower"
                }
            );
        }
    }
    if let Some(n) = &r.torch_note {
        s += &format!("  note: {n}\n");
    }
    if let Some(n) = &r.gpu_note {
        s += &format!("  note: {n}\n");
    }
    if let Some(p) = r.peak_rss_bytes {
        s += &format!("  peak CPU RSS {:.0} MB\n", p as f64 / 1e6);
    }
    s
}

/// The `n` kernels that take most of a step's GPU time, one line each, and the rest summed.
fn top_kernels(ks: &[KernelShare], n: usize) -> String {
    let total: f64 = ks.iter().map(|k| k.seconds_per_step).sum();
    if ks.is_empty() || total <= 0.0 {
        return String::new();
    }
    let mut s = String::from(
        "    kernel time per step, largest first (time, share, dispatches, workgroups and GB bound per dispatch):\n",
    );
    for k in ks.iter().take(n) {
        let d = k.dispatches_per_step.max(1e-12);
        s += &format!(
            "    {:>10} {:>5.1}%  {:>5.0}x  {:>8.0} wg  {:>8.4} GB  {:<9} {}\n",
            human_seconds(k.seconds_per_step),
            100.0 * k.seconds_per_step / total,
            k.dispatches_per_step,
            k.workgroups_per_step / d,
            k.bytes_per_step / d / 1e9,
            k.phase,
            k.kernel
        );
    }
    if ks.len() > n {
        let rest: f64 = ks[n..].iter().map(|k| k.seconds_per_step).sum();
        let d: f64 = ks[n..].iter().map(|k| k.dispatches_per_step).sum();
        s += &format!(
            "    {:>10} {:>5.1}%  {:>5.0}x  ({} more kernels)\n",
            human_seconds(rest),
            100.0 * rest / total,
            d,
            ks.len() - n
        );
    }
    s
}
