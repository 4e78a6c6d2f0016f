//! The GPU runtime itself: buffer pool reuse, pipeline cache, typed errors, timestamp timer.
//! GPU-only (skipped loudly without an adapter, failing under CI=true).

#[path = "common/mod.rs"]
mod common;

use ainrnn::backend::gpu::pipeline::Kernel;
use ainrnn::backend::{Backend, ReduceOp};

#[test]
fn repeated_calls_reuse_buffers_and_pipelines() {
    let Some(g) = common::fresh_gpu() else { return };
    let ctx = g.context().clone();
    let x = g.upload_f32(&vec![1.0; 64 * 1000], &[64, 1000]).unwrap();
    // Warm up: compiles the pipelines, fills the pool.
    for _ in 0..2 {
        let s = g.softmax_rows(&x, false).unwrap();
        g.reduce_rows(ReduceOp::Sum, &s).unwrap();
    }
    g.sync().unwrap();
    let before = ctx.stats();
    for _ in 0..5 {
        let s = g.softmax_rows(&x, false).unwrap();
        let r = g.reduce_rows(ReduceOp::Sum, &s).unwrap();
        assert_eq!(g.to_f32(&r).unwrap().len(), 64);
    }
    let after = ctx.stats();
    assert_eq!(
        after.pipelines, before.pipelines,
        "no new pipelines for repeated calls"
    );
    assert!(
        after.buffers_reused > before.buffers_reused,
        "pool hands buffers back: {before:?} -> {after:?}"
    );
    assert!(
        after.buffers_created - before.buffers_created <= 2,
        "steady state allocates (almost) nothing new: {before:?} -> {after:?}"
    );
    assert!(after.dispatches > before.dispatches);
}

ainrnn::kernel_params! {
    /// The layout of `elementwise.wgsl`'s Params under another name.
    struct NotEwParams {
        n: u32,
        nb: u32,
        alpha: f32,
        beta: f32,
        inner: u32,
        _pad: [u32; 3],
    }
}

#[test]
fn binding_mistakes_are_typed_errors_naming_the_kernel() {
    let Some(g) = common::gpu() else { return };
    let ctx = g.context();
    let buf = ctx.alloc(1024, "test").unwrap();
    let elementwise = ainrnn::backend::gpu::SHADERS
        .iter()
        .find(|s| s.name == "elementwise")
        .unwrap();
    let k = Kernel::new(elementwise, "unary").with("OP", 0);
    let params = NotEwParams::default();
    // Parameters of another type than the shader's.
    let e = ctx
        .dispatch(&k, &params, &[("a", &buf), ("out", &buf)], [1, 1, 1])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("elementwise::unary") && e.contains("NotEwParams"),
        "{e}"
    );
    // A binding name the shader does not declare.
    let p = bytemuck::Zeroable::zeroed();
    let e = dispatch_ew(ctx, &k, &p, &[("a", &buf), ("output", &buf)]);
    assert!(
        e.contains("elementwise::unary") && e.contains("output"),
        "{e}"
    );
    // `unary` uses `a` and `out`; binding `b` as well is a layout mismatch.
    let e = dispatch_ew(ctx, &k, &p, &[("a", &buf), ("b", &buf), ("out", &buf)]);
    assert!(e.contains("elementwise::unary"), "{e}");
    // The device is still usable afterwards.
    let t = g.upload_f32(&[1.0, -2.0], &[2]).unwrap();
    assert_eq!(
        g.to_f32(&g.affine(&t, 2.0, 0.0).unwrap()).unwrap(),
        vec![2.0, -4.0]
    );
}

fn dispatch_ew(
    ctx: &ainrnn::backend::gpu::GpuContext,
    k: &Kernel,
    p: &ainrnn::backend::gpu::EwParams,
    bindings: &[(&str, &ainrnn::backend::gpu::GpuBuffer)],
) -> String {
    ctx.dispatch(k, p, bindings, [1, 1, 1])
        .unwrap_err()
        .to_string()
}

#[test]
fn oversized_tensors_are_limit_errors_not_panics() {
    let Some(g) = common::gpu() else { return };
    let limit = g.context().limits.max_storage_buffer_binding_size;
    let e = g
        .context()
        .alloc(limit + 4, "huge")
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_storage_buffer_binding_size"), "{e}");
}

#[test]
fn timestamp_timer_measures_kernels_when_supported() {
    let Some(g) = common::fresh_gpu() else { return };
    let ctx = g.context();
    let x = g.upload_f32(&vec![0.5; 256 * 256], &[256, 256]).unwrap();
    if !ctx.timer_start().unwrap() {
        eprintln!("adapter has no timestamp queries; timer not tested");
        return;
    }
    let y = g.matmul(&x, &x, false, false).unwrap();
    g.sync().unwrap();
    let (_, passes) = ctx.timer_stop().unwrap().expect("timer was running");
    assert_eq!(passes, 1, "one compute pass timed");
    assert_eq!(g.to_f32(&y).unwrap()[0], 64.0);
}

/// Issue 13: after warm-up, an AINRNN training step with the item-neighbourhood term on (5
/// layers, the trainer's neighbours per song, a catalogue of several tiles) uploads only its
/// batch (at most 256 KiB, kernel parameters included), creates no buffer and reads nothing
/// back: the neighbour lists stay on the device.
#[test]
fn training_step_with_neighbours_uploads_only_the_batch() {
    use ainrnn::bench::train::SyntheticHistories;
    use ainrnn::model::batch::upload;
    use ainrnn::model::params::OptimConfig;
    use ainrnn::model::{Model, ModelConfig, ModelKind, DEFAULT_NEIGHBOURS};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    let Some(g) = common::fresh_gpu() else { return };
    let songs = 20_000;
    let (batch, history, targets) = (64, 25, 25);
    let mut cfg = ModelConfig::new(ModelKind::Ainrnn, songs);
    cfg.layers = 5;
    cfg.max_history = history;
    cfg.tile = 8_192; // three tiles
    assert_eq!(cfg.neighbours, DEFAULT_NEIGHBOURS);
    let synth = SyntheticHistories::new(songs, 3);
    let users = synth.examples(0, 2_000, history, targets);
    let fit: Vec<(Vec<u32>, Vec<f32>)> = users
        .iter()
        .map(|e| (e.songs.clone(), e.plays.clone()))
        .collect();
    let ids: Vec<u32> = (0..fit.len() as u32).collect();
    let mut model = Model::new(&g, cfg.clone(), None).unwrap();
    model.fit_neighbours(&fit, &ids, ainrnn::model::neighbours::Similarity::COSINE);
    let entries: usize = model.scorer.neighbours().iter().map(Vec::len).sum();
    assert!(
        entries * 8 > 1 << 20,
        "the lists ({entries} entries) outweigh the per-step budget"
    );
    let optim = OptimConfig::default();
    let mut rng = StdRng::seed_from_u64(5);
    let ctx = g.context().clone();
    let mut step = |k: usize| {
        let ex = &users[k * batch..(k + 1) * batch];
        let b = upload(&g, &model.cfg, None, ex).unwrap();
        assert!(model
            .scorer
            .neighbour_blocks(&g, &b.history)
            .unwrap()
            .applies());
        model.train_step(&g, &b, &mut rng, &optim).unwrap()
    };
    for k in 0..3 {
        step(k);
    }
    g.sync().unwrap();
    let before = ctx.stats();
    let loss = step(3);
    g.sync().unwrap();
    let after = ctx.stats();
    let uploaded = after.upload_bytes - before.upload_bytes;
    assert!(
        uploaded > 0,
        "the batch is counted: {before:?} -> {after:?}"
    );
    assert!(
        uploaded <= 256 << 10,
        "one step uploaded {uploaded} bytes ({} of kernel parameters)",
        after.param_bytes - before.param_bytes
    );
    assert_eq!(
        after.buffers_created, before.buffers_created,
        "no new buffer after warm-up"
    );
    assert_eq!(after.readbacks, before.readbacks, "no read-back in a step");
    assert!(g.to_f32(&loss).unwrap()[0].is_finite());
}
