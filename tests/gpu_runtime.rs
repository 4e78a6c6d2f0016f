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
    assert!(
        after.bind_groups_reused > before.bind_groups_reused,
        "repeated dispatches on pooled buffers find their bind groups: {before:?} -> {after:?}"
    );
}

/// A request whose size class has no idle buffer takes an idle one of a class up to 4× larger
/// (index uploads vary in length from batch to batch), never a far larger one; the buffer goes
/// back to its own class. Contents and bound size are the request's.
#[test]
fn pool_lends_a_somewhat_larger_idle_buffer_before_creating_one() {
    let Some(g) = common::fresh_gpu() else { return };
    let ctx = g.context().clone();
    // Sizes in classes of their own (no other test of this fresh device uses them): 5,000 u32
    // (20,000 bytes → class 32,768) and 40,000 u32 (160,000 bytes → class 163,840).
    let big = g.upload_u32(&vec![7; 5_000], &[5_000]).unwrap();
    let huge = g.upload_u32(&vec![9; 40_000], &[40_000]).unwrap();
    drop((big, huge));
    g.sync().unwrap();
    let before = ctx.stats();
    // 2,500 u32 (10,000 bytes → class 16,384): the idle 32,768 one is 2× and is lent.
    let small: Vec<u32> = (0..2_500).collect();
    let t = g.upload_u32(&small, &[2_500]).unwrap();
    assert_eq!(g.to_u32(&t).unwrap(), small);
    let mid = ctx.stats();
    assert_eq!(
        mid.buffers_created, before.buffers_created,
        "a 2× larger idle buffer is lent: {before:?} -> {mid:?}"
    );
    // 1,000 u32 (4,000 bytes → class 4,096): the idle 163,840 one is 40× larger, not lent.
    let tiny: Vec<u32> = (0..1_000).rev().collect();
    let u = g.upload_u32(&tiny, &[1_000]).unwrap();
    assert_eq!(g.to_u32(&u).unwrap(), tiny);
    let after = ctx.stats();
    assert_eq!(
        after.buffers_created,
        mid.buffers_created + 1,
        "a far larger idle buffer is not lent: {mid:?} -> {after:?}"
    );
    // Given back, the lent buffer serves its own class again.
    drop((t, u));
    g.sync().unwrap();
    let again = g.upload_u32(&vec![1; 5_000], &[5_000]).unwrap();
    assert_eq!(g.to_u32(&again).unwrap(), vec![1; 5_000]);
    assert_eq!(ctx.stats().buffers_created, after.buffers_created);
}

/// An output freed while the commands that read it are still pending serves the next output
/// of its size at once: a loop of ops with no read-back between them (a benchmark's repetitions)
/// does not create (and zero-fill) a buffer per repetition and hold them all until the submit.
#[test]
fn outputs_freed_by_pending_work_serve_the_next_output_before_the_submit() {
    let Some(g) = common::fresh_gpu() else { return };
    let ctx = g.context().clone();
    // 48 × 1,500 floats (288,000 bytes): a size class no other tensor here has.
    let x = g.upload_f32(&vec![0.5; 48 * 1500], &[48, 1500]).unwrap();
    drop(g.softmax_rows(&x, false).unwrap());
    g.sync().unwrap();
    let before = ctx.stats();
    for _ in 0..20 {
        drop(g.softmax_rows(&x, false).unwrap());
    }
    let after = ctx.stats();
    assert_eq!(
        after.submits, before.submits,
        "the loop stays within one submit"
    );
    assert!(
        after.buffers_created - before.buffers_created <= 2,
        "20 softmax outputs, each freed before the next: {before:?} -> {after:?}"
    );
}

/// The other half of the pool's ordering rule: a host upload never gets a buffer that pending
/// commands still read (`Queue::write_buffer` runs before them), while outputs do reuse freed
/// buffers within the submit. Every product of the chain, each of its own freshly uploaded
/// operand of one size class, must match the CPU's.
#[test]
fn uploads_never_overwrite_what_pending_commands_read() {
    use ainrnn::backend::cpu::CpuBackend;
    let Some(g) = common::fresh_gpu() else { return };
    let cpu = CpuBackend::new();
    let (m, k, n) = (24, 40, 56);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0)
        .collect();
    let xa = g.upload_f32(&a, &[m, k]).unwrap();
    let ca = cpu.upload_f32(&a, &[m, k]).unwrap();
    let before = g.context().stats();
    let mut sums = Vec::new();
    let mut want = Vec::new();
    for i in 0..12 {
        let b: Vec<f32> = (0..k * n)
            .map(|j| ((j * (i + 3)) % 17) as f32 / 8.0 - 1.0)
            .collect();
        // Operand, product and row sums freed or kept as a training step does: the operand and
        // the product go back to the pool while the commands reading them are pending.
        let y = g.matmul(&g.upload_f32(&b, &[k, n]).unwrap(), &xa, true, true);
        let y = y.unwrap();
        sums.push(g.reduce_rows(ReduceOp::Sum, &y).unwrap());
        let cy = cpu
            .matmul(&cpu.upload_f32(&b, &[k, n]).unwrap(), &ca, true, true)
            .unwrap();
        want.push(
            cpu.to_f32(&cpu.reduce_rows(ReduceOp::Sum, &cy).unwrap())
                .unwrap(),
        );
    }
    assert_eq!(
        g.context().stats().submits,
        before.submits,
        "the chain stays within one submit"
    );
    for (i, (s, w)) in sums.iter().zip(&want).enumerate() {
        let got = g.to_f32(s).unwrap();
        for (j, (a, b)) in got.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "product {i}, row {j}: GPU {a}, CPU {b}"
            );
        }
    }
}

/// Rows written straight into the upload's staging memory: each cut or padded with zeros to
/// the length asked, over memory that held other values before (staging memory is not
/// cleared: lavapipe's happens to be fresh, so the writer is also checked on a dirty slice).
#[test]
fn padded_rows_upload_in_place_with_zero_tails() {
    let long: Vec<f32> = (0..900).map(|i| i as f32 * 0.25 - 3.0).collect();
    let short: Vec<f32> = (0..123).map(|i| -(i as f32)).collect();
    let rows: [&[f32]; 3] = [&short, &[], &long];
    let mut want = vec![0.0f32; 3 * 700];
    want[..123].copy_from_slice(&short);
    want[1400..].copy_from_slice(&long[..700]);
    let mut dirty = vec![0xA5u8; 3 * 700 * 4];
    ainrnn::backend::gpu::write_padded_rows((&mut dirty[..]).into(), &rows, 700);
    assert_eq!(bytemuck::pod_collect_to_vec::<u8, f32>(&dirty), want);
    let Some(g) = common::fresh_gpu() else { return };
    // Dirty the pool: a buffer of the class the rows will take (3 × 700 floats, 8,400 bytes →
    // class 16,384), full of non-zero values, freed and idle.
    drop(g.upload_f32(&vec![7.5; 3000], &[3000]).unwrap());
    g.sync().unwrap();
    let t = g.upload_padded_rows(&rows, 700, "test rows").unwrap();
    assert_eq!(t.shape(), &[3, 700]);
    assert_eq!(g.to_f32(&t).unwrap(), want);
    // No rows, or rows of length 0: an empty tensor, no staging view asked for.
    let e = g.upload_padded_rows(&rows, 0, "test rows").unwrap();
    assert_eq!(e.shape(), &[3, 0]);
    assert!(g.to_f32(&e).unwrap().is_empty());
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

/// The device memory is read from the driver on Vulkan (lavapipe: a 2 GiB heap and no
/// budget; a hardware driver with `VK_EXT_memory_budget` gives one, never above the heap, as
/// the extension promises); a software adapter's room is the host's, whatever heap it claims.
#[test]
fn device_memory_comes_from_the_driver_and_a_software_adapter_uses_the_hosts() {
    let Some(g) = common::gpu() else { return };
    let ctx = g.context();
    let m = ctx.memory();
    eprintln!("{}: {m:?}", g.describe());
    if ctx.adapter.backend == "Vulkan" && cfg!(any(windows, target_os = "linux")) {
        let m = m.expect("a Vulkan adapter reports its heaps");
        assert!(m.heap_bytes > 0);
        if let Some(budget) = m.budget_bytes {
            assert!(budget > 0 && budget <= m.heap_bytes, "{m:?}");
            assert!(m.used_bytes.is_some(), "{m:?}");
        }
        assert!(m.available(0) <= m.heap_bytes);
    }
    let avail = g.available_memory();
    if ctx.adapter.software {
        // Both read the host's available memory, moments apart.
        let host = ainrnn::io::space::available_memory_bytes();
        assert_eq!(avail.is_some(), host.is_some());
        if let (Some(a), Some(h)) = (avail, host) {
            assert!(a.abs_diff(h) < h / 4 + (256 << 20), "{a} vs {h}");
        }
    } else if let Some(m) = m {
        assert!(avail.is_some_and(|a| a <= m.heap_bytes), "{avail:?} {m:?}");
    }
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
    // The rule picks the kernels named below (a hardware GPU would tune the choice).
    let Some(g) = common::fresh_gpu().map(|g| g.with_matmul_tuning(false)) else {
        return;
    };
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

    // Per kernel: two matmuls (one transposed) and three softmaxes, split by kernel, largest
    // first, adding up to the total.
    assert!(ctx.timer_start().unwrap());
    let a = g.matmul(&x, &x, false, false).unwrap();
    let b = g.matmul(&x, &a, true, false).unwrap();
    for _ in 0..3 {
        g.softmax_rows(&b, false).unwrap();
    }
    g.sync().unwrap();
    let r = ctx.timer_report().unwrap().expect("timer was running");
    let find = |name: &str| {
        r.kernels
            .iter()
            .find(|k| k.kernel == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", r.kernels))
    };
    assert_eq!(find("matmul::matmul[TRANS_A=0,TRANS_B=0]").passes, 1);
    assert_eq!(find("matmul::matmul[TRANS_A=1,TRANS_B=0]").passes, 1);
    // What each pass did, for the report's rates: the matmul's 2·m·n·k operations; the bytes
    // of each distinct buffer bound (x·x binds x as A, B and the unused bias: once), 64 × 64
    // tiles; the softmax declares no operations.
    let mat = 256.0 * 256.0 * 4.0;
    let nn = find("matmul::matmul[TRANS_A=0,TRANS_B=0]");
    assert_eq!(nn.flops, 2.0 * 256f64.powi(3));
    assert_eq!(nn.bytes, 2.0 * mat, "x and the output");
    assert_eq!(nn.workgroups, 16.0);
    assert_eq!(find("matmul::matmul[TRANS_A=1,TRANS_B=0]").bytes, 3.0 * mat);
    let sm: Vec<_> = r
        .kernels
        .iter()
        .filter(|k| k.kernel.starts_with("softmax::"))
        .collect();
    assert!(sm.iter().all(|k| k.flops == 0.0), "{sm:?}");
    // The pass that writes the probabilities binds the logits and the output, 3 times over.
    let most = sm.iter().map(|k| k.bytes).fold(0.0, f64::max);
    assert!(most >= 3.0 * 2.0 * mat, "{sm:?}");
    let per_kernel: u64 = r.kernels.iter().map(|k| k.passes).sum();
    assert_eq!(per_kernel, r.passes);
    assert!(r.passes >= 5, "{:?}", r.kernels);
    let sum: f64 = r.kernels.iter().map(|k| k.nanos).sum();
    assert!((sum - r.total.as_nanos() as f64).abs() <= 1.0 + 1e-9 * sum);
    assert!(r.kernels.windows(2).all(|w| w[0].nanos >= w[1].nanos));
    // Stopped: nothing more is counted, and dispatches share passes again.
    assert!(ctx.timer_report().unwrap().is_none());
}

/// Kernels that read a few rows of what they bind, or update a buffer in place, declare what
/// they move: the report's rates and floors would otherwise count a gather's whole table (at
/// the paper's scale 184 MB for the 800 rows a step reads) and an in-place update once.
#[test]
fn the_timer_counts_what_gathers_and_in_place_updates_move() {
    use ainrnn::backend::model_ops::{AdamStep, ModelOps};
    let Some(g) = common::fresh_gpu() else { return };
    let ctx = g.context();
    let (rows, d, n) = (1000usize, 64usize, 4096usize);
    let table = g.upload_f32(&vec![0.25; rows * d], &[rows, d]).unwrap();
    // Ten positions into three distinct rows.
    let idx = [7u32, 3, 7, 900, 3, 3, 7, 900, 900, 7];
    let plan = g.index_plan(&idx, rows).unwrap();
    let mut dst = g.zeros(&[rows, d]).unwrap();
    let x = g.upload_f32(&vec![1.0; n], &[n]).unwrap();
    let mut acc = g.zeros(&[n]).unwrap();
    let (mut p, mut m, mut v) = (
        g.upload_f32(&vec![0.5; n], &[n]).unwrap(),
        g.zeros(&[n]).unwrap(),
        g.zeros(&[n]).unwrap(),
    );
    let one = g.upload_f32(&[1.0], &[1]).unwrap();
    let step = AdamStep {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        t: 1,
        clamp: None,
    };
    if !ctx.timer_start().unwrap() {
        eprintln!("adapter has no timestamp queries; declared traffic not tested");
        return;
    }
    let rows_read = g.gather_rows(&table, &plan).unwrap();
    g.scatter_add_rows(&mut dst, &rows_read, &plan).unwrap();
    g.axpy(&mut acc, &x, 2.0).unwrap();
    g.adam_step(&mut p, &x, &mut m, &mut v, &one, &step)
        .unwrap();
    g.sync().unwrap();
    let r = ctx.timer_report().unwrap().expect("timer was running");
    let bytes = |name: &str| {
        r.kernels
            .iter()
            .find(|k| k.kernel == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", r.kernels))
            .bytes
    };
    let words = |w: usize| 4.0 * w as f64;
    // The ten indices, ten rows read and written; not the 256 KB table.
    assert_eq!(bytes("embed::gather"), words(10 + 2 * 10 * d));
    // Ten source rows and their order, three segments (rows, bounds), three rows read and
    // written.
    assert_eq!(
        bytes("embed::scatter_add"),
        words(10 * (d + 1) + 2 * 3 + 1 + 2 * 3 * d)
    );
    // x read, the accumulator read and written: what `bench ops` counts for its axpy.
    assert_eq!(bytes("elementwise::axpy"), words(3 * n));
    // The value and both moments read and written, the gradient read.
    assert_eq!(bytes("optim::adam"), words(7 * n));
    assert!(r.kernels.iter().all(|k| k.flops == 0.0), "{:?}", r.kernels);
    assert_eq!(g.to_f32(&acc).unwrap()[0], 2.0);
    assert_eq!(g.to_f32(&dst).unwrap()[7 * d], 1.0);
}

/// Runs `f` on `g` under the timestamp timer and returns the passes per kernel that ran (named
/// `shader::entry[overrides]`), or `None` (with a note) on an adapter without timestamps.
fn kernel_passes(
    g: &ainrnn::backend::gpu::GpuBackend,
    f: impl FnOnce(),
) -> Option<std::collections::BTreeMap<String, u64>> {
    if !g.context().timer_start().unwrap() {
        eprintln!("adapter has no timestamp queries; kernel choice not tested");
        return None;
    }
    f();
    g.sync().unwrap();
    let r = g
        .context()
        .timer_report()
        .unwrap()
        .expect("timer was running");
    Some(
        r.kernels
            .into_iter()
            .map(|k| (k.kernel, k.passes))
            .collect(),
    )
}

/// Large products run the 128 × 128 kernel, small ones the 64 × 64 kernel (which kernel ran,
/// from the timer's per-kernel split; the results are checked in the op suite).
#[test]
fn large_products_take_the_128_tile_kernel() {
    // The rule by size; a hardware GPU would tune the choice by default.
    let Some(g) = common::fresh_gpu().map(|g| g.with_matmul_tuning(false)) else {
        return;
    };
    let big = g.upload_f32(&vec![0.25; 1030 * 40], &[1030, 40]).unwrap();
    let small = g.upload_f32(&vec![0.25; 200 * 40], &[200, 40]).unwrap();
    let mut c = None;
    let Some(ran) = kernel_passes(&g, || {
        c = Some(g.matmul(&big, &big, false, true).unwrap());
        g.matmul(&small, &small, false, true).unwrap();
    }) else {
        return;
    };
    let want = [
        ("matmul::matmul128[TRANS_A=0,TRANS_B=1]".to_string(), 1),
        ("matmul::matmul[TRANS_A=0,TRANS_B=1]".to_string(), 1),
    ];
    assert_eq!(ran, want.into_iter().collect());
    assert_eq!(g.to_f32(&c.unwrap()).unwrap()[1030 * 1030 - 1], 2.5);
}

/// Products of at most 32 rows (a batch's catalogue logits `u·qᵀ`; `g·q`, split over K) take
/// the wide 32-row kernel, the sum of the split's partials the 32 × 64 one; 33 rows the 64-row
/// one.
#[test]
fn products_of_32_rows_take_the_wide_32_row_kernel() {
    let Some(g) = common::fresh_gpu().map(|g| g.with_matmul_tuning(false)) else {
        return;
    };
    let u = g.upload_f32(&vec![0.5; 32 * 16], &[32, 16]).unwrap();
    let u33 = g.upload_f32(&vec![0.5; 33 * 16], &[33, 16]).unwrap();
    let q = g.upload_f32(&vec![0.5; 3000 * 16], &[3000, 16]).unwrap();
    let mut z = None;
    let Some(ran) = kernel_passes(&g, || {
        let zz = g.matmul(&u, &q, false, true).unwrap(); // [32, 3000]
        g.matmul(&zz, &q, false, false).unwrap(); // [32, 16] over K = 3000: split-K
        g.matmul(&u33, &q, false, true).unwrap();
        z = Some(zz);
    }) else {
        return;
    };
    let want = [
        ("matmul::matmul32w[TRANS_A=0,TRANS_B=1]".to_string(), 1),
        // Split-K: the partial products, and their sum (one row: 1ᵀ · partials).
        ("matmul::matmul32w[TRANS_A=0,TRANS_B=0]".to_string(), 1),
        ("matmul::matmul32[TRANS_A=0,TRANS_B=0]".to_string(), 1),
        ("matmul::matmul[TRANS_A=0,TRANS_B=1]".to_string(), 1),
    ];
    assert_eq!(ran, want.into_iter().collect());
    assert_eq!(g.to_f32(&z.unwrap()).unwrap()[32 * 3000 - 1], 4.0);
}

/// The matmul tuner: the first product of a class (transposes, sizes to the next power of two)
/// is timed on every kernel, in one submit with one read-back; the class then runs on the
/// fastest, without timing again (a smaller product of the class included). Every kernel gives
/// the same bits, so tuning never changes a result: each product is compared bit for bit with
/// every forced kernel and with the rule by size.
#[test]
fn the_tuner_times_each_class_once_and_changes_no_result() {
    use ainrnn::backend::gpu::MatmulKernel;
    let Some(g) = common::fresh_gpu() else { return };
    let rule = g.with_matmul_tuning(false);
    let g = g.with_matmul_tuning(true);
    assert!(g.matmul_tuning() && g.describe().ends_with(", matmul kernels tuned)"));
    assert!(!g.with_matmul_kernel(MatmulKernel::Tile64).matmul_tuning());
    let timestamps = g
        .context()
        .features
        .contains(wgpu::Features::TIMESTAMP_QUERY);
    let mut rng = common::rng(7);
    let mut rand = |r: usize, c: usize| {
        g.upload_f32(&common::uniform(&mut rng, r * c, -1.0, 1.0), &[r, c])
            .unwrap()
    };
    // u·qᵀ of a batch (32 × 3,000 over 64), a square-ish product, Aᵀ·B, a ∂W-like xᵀ·∂h (a
    // 32 × 128 C over K = 1,100, below the rule's split: timed split too), and a g·q-like
    // product the rule splits (32 × 64 over K = 3,000: its partials' kernel is tuned).
    let u = rand(32, 64);
    let q = rand(3000, 64);
    let a = rand(200, 150);
    let b = rand(150, 300);
    let at = rand(150, 200);
    let xs = rand(1100, 32);
    let dh = rand(1100, 128);
    let gs = rand(32, 3000);
    let products: [(&_, &_, bool, bool); 5] = [
        (&u, &q, false, true),
        (&a, &b, false, false),
        (&at, &b, true, false),
        (&xs, &dh, true, false),
        (&gs, &q, false, false),
    ];
    for (i, &(x, y, ta, tb)) in products.iter().enumerate() {
        g.sync().unwrap();
        let before = g.context().stats().readbacks;
        let c = g.matmul(x, y, ta, tb).unwrap();
        g.sync().unwrap();
        let tuned = g.matmul_tuned();
        assert_eq!(tuned.len(), i + 1, "one decision per class");
        assert_eq!(
            g.context().stats().readbacks - before,
            u64::from(timestamps),
            "tuning reads its timestamps back once"
        );
        let got = g.to_f32(&c).unwrap();
        let mut same = vec![rule.to_f32(&rule.matmul(x, y, ta, tb).unwrap()).unwrap()];
        for k in MatmulKernel::FORCED {
            let gk = g.with_matmul_kernel(k);
            same.push(gk.to_f32(&gk.matmul(x, y, ta, tb).unwrap()).unwrap());
        }
        for s in &same {
            assert!(
                got.iter().zip(s).all(|(p, q)| p.to_bits() == q.to_bits()),
                "product {i}: every kernel must give the same bits"
            );
        }
    }
    for t in g.matmul_tuned() {
        let want_split = ((t.m, t.n, t.k) == (32, 64, 3000)).then_some(512);
        assert_eq!(
            t.split, want_split,
            "only g·q is split, by the rule's slice: {t:?}"
        );
        if !timestamps {
            assert!(t.timings.is_empty(), "no timestamps: the rule decides");
            continue;
        }
        assert_eq!(t.timings.len(), MatmulKernel::FORCED.len(), "{t:?}");
        assert!(t.timings.iter().all(|k| k.micros > 0.0), "{t:?}");
        // Split-K timed, for information, on the small C only, with each slice that fits
        // twice in K (128 and 512 of 1,100).
        let split: Vec<&str> = t.split_k.iter().map(|k| k.kernel).collect();
        if (t.m, t.n, t.k) == (32, 128, 1100) {
            assert_eq!(split, ["split-K 128", "split-K 512"], "{t:?}");
            assert!(t.split_k.iter().all(|k| k.micros > 0.0), "{t:?}");
        } else {
            assert!(split.is_empty(), "{t:?}");
        }
        let best = t
            .timings
            .iter()
            .min_by(|p, q| p.micros.total_cmp(&q.micros))
            .unwrap();
        assert_eq!(t.kernel, best.kernel, "the fastest is chosen: {t:?}");
    }
    // Again, and a 20-row batch (the class of 32): no new decision, no read-back, and the
    // kernel that ran is the one decided.
    let u20 = rand(20, 64);
    let decided = g
        .matmul_tuned()
        .into_iter()
        .find(|t| (t.m, t.n, t.k, t.trans_b) == (32, 3000, 64, true))
        .expect("u·qᵀ was tuned");
    g.sync().unwrap();
    let before = g.context().stats().readbacks;
    let Some(ran) = kernel_passes(&g, || {
        g.matmul(&u, &q, false, true).unwrap();
        g.matmul(&u20, &q, false, true).unwrap();
    }) else {
        return;
    };
    assert_eq!(g.matmul_tuned().len(), 5);
    let want = [(
        format!("matmul::{}[TRANS_A=0,TRANS_B=1]", decided.kernel),
        2,
    )];
    assert_eq!(ran, want.into_iter().collect());
    // The products read nothing back (the timer's own read is not counted).
    assert_eq!(g.context().stats().readbacks, before);
}

/// `with_matmul_kernel` runs every product on the kernel it names, the small product and a
/// split-K product's partials too (their sum stays on `matmul32`): what `bench ops` compares
/// per kernel is what ran.
#[test]
fn a_forced_matmul_kernel_runs_every_product() {
    use ainrnn::backend::gpu::MatmulKernel;
    let Some(g) = common::fresh_gpu() else { return };
    let big = g.upload_f32(&vec![0.25; 1030 * 40], &[1030, 40]).unwrap();
    let small = g.upload_f32(&vec![0.25; 200 * 40], &[200, 40]).unwrap();
    let wide = g.upload_f32(&vec![0.25; 32 * 3000], &[32, 3000]).unwrap();
    let tall = g.upload_f32(&vec![0.5; 3000 * 16], &[3000, 16]).unwrap();
    for (k, name) in [
        (MatmulKernel::Tile16, "matmul16"),
        (MatmulKernel::Tile32, "matmul32"),
        (MatmulKernel::Tile32Wide, "matmul32w"),
        (MatmulKernel::Tile64, "matmul"),
        (MatmulKernel::Tile128, "matmul128"),
        (MatmulKernel::Tile128Prefetch, "matmul128p"),
    ] {
        assert_eq!(k.entry(), name);
        let gk = g.with_matmul_kernel(k);
        let mut c = None;
        let mut split = None;
        let Some(ran) = kernel_passes(&g, || {
            c = Some(gk.matmul(&big, &big, false, true).unwrap());
            gk.matmul(&small, &small, true, false).unwrap();
            split = Some(gk.matmul(&wide, &tall, false, false).unwrap());
        }) else {
            return;
        };
        let mut want: std::collections::BTreeMap<String, u64> = [
            "TRANS_A=0,TRANS_B=1",
            "TRANS_A=1,TRANS_B=0",
            "TRANS_A=0,TRANS_B=0",
        ]
        .map(|t| (format!("matmul::{name}[{t}]"), 1))
        .into_iter()
        .collect();
        // The split product's sum of partials.
        *want
            .entry("matmul::matmul32[TRANS_A=0,TRANS_B=0]".into())
            .or_default() += 1;
        assert_eq!(ran, want, "{k:?}");
        assert_eq!(gk.to_f32(&c.unwrap()).unwrap()[1030 * 1030 - 1], 2.5);
        assert_eq!(gk.to_f32(&split.unwrap()).unwrap()[32 * 16 - 1], 375.0);
    }
}

/// Every matmul kernel gives the same bits whatever runtime checks naga compiled into it, on
/// shapes that are no multiple of any tile, each transpose, and a split-K product.
#[test]
fn every_matmul_kernel_is_the_same_to_the_bit_under_every_shader_check_setting() {
    use ainrnn::backend::gpu::MatmulKernel;
    let Some(gs) = common::gpu_per_shader_checks() else {
        return;
    };
    let mut r = common::rng(3);
    let a = common::uniform(&mut r, 131 * 37, -1.0, 1.0);
    let b = common::uniform(&mut r, 37 * 70, -1.0, 1.0);
    let (wide, tall) = (
        common::uniform(&mut r, 5 * 2100, -1.0, 1.0),
        common::uniform(&mut r, 2100 * 9, -1.0, 1.0),
    );
    let run = |g: &ainrnn::backend::gpu::GpuBackend, k| -> Vec<Vec<f32>> {
        let g = g.with_matmul_kernel(k);
        let up = |v: &[f32], s: &[usize]| g.upload_f32(v, s).unwrap();
        let (a, b) = (up(&a, &[131, 37]), up(&b, &[37, 70]));
        let (wide, tall) = (up(&wide, &[5, 2100]), up(&tall, &[2100, 9]));
        [
            g.matmul(&a, &b, false, false).unwrap(),
            g.matmul(&a, &a, true, false).unwrap(),
            g.matmul(&a, &a, false, true).unwrap(),
            g.matmul(&wide, &tall, false, false).unwrap(),
        ]
        .iter()
        .map(|c| g.to_f32(c).unwrap())
        .collect()
    };
    for k in MatmulKernel::FORCED {
        common::same_under_every_shader_check(&gs, &format!("{k:?}"), |g| run(g, k));
    }
}

/// The catalogue tile the trainer picks: the whole catalogue when its blocks fit (a binding on
/// a GPU, the CPU's budget), else tiles larger on a GPU (fewer dispatches per step) than on the
/// CPU, and never a `[batch, tile]` block beyond one storage binding.
#[test]
fn the_trainer_takes_one_tile_when_it_fits_and_binding_sized_tiles_otherwise() {
    use ainrnn::train::run::{tile_for, CPU_ONE_TILE_BYTES, CPU_TILE, GPU_TILE};
    let cpu = ainrnn::backend::cpu::CpuBackend::new();
    // The CPU: the whole catalogue while its largest block fits the budget, else CPU_TILE.
    assert_eq!(tile_for(&cpu, 64, 64, 10_000), 10_000);
    assert_eq!(tile_for(&cpu, 32, 128, 359_687), 359_687);
    let over = (CPU_ONE_TILE_BYTES / (4 * 128)) as usize + 1;
    assert_eq!(tile_for(&cpu, 32, 128, over), CPU_TILE);
    let Some(g) = common::fresh_gpu() else { return };
    let limit = g.max_binding_bytes();
    for batch in [1usize, 64, 256, 4096] {
        let per_song = 4 * batch.max(64) as u64;
        // A catalogue that fits one binding is one tile.
        let fits = (limit / per_song).min(5_000) as usize;
        assert_eq!(tile_for(&g, batch, 64, fits), fits, "{batch}");
        // One that does not: tiles within the binding, GPU_TILE when that fits.
        let songs = (limit / per_song) as usize + 1;
        let t = tile_for(&g, batch, 64, songs);
        assert!((1024..=GPU_TILE).contains(&t), "{batch}: {t}");
        assert!(t == 1024 || t as u64 * per_song <= limit, "{batch}: {t}");
        if GPU_TILE as u64 * per_song <= limit {
            assert_eq!(t, GPU_TILE, "{batch}");
        }
    }
}

/// A model of `cfg` on the GPU with cosine neighbour lists fitted on `users`' histories.
fn model_with_lists(
    g: &ainrnn::backend::gpu::GpuBackend,
    cfg: &ainrnn::model::ModelConfig,
    users: &[ainrnn::model::batch::Example],
) -> ainrnn::model::Model<ainrnn::backend::gpu::GpuBackend> {
    let fit: Vec<(Vec<u32>, Vec<f32>)> = users
        .iter()
        .map(|e| (e.songs.clone(), e.plays.clone()))
        .collect();
    let ids: Vec<u32> = (0..fit.len() as u32).collect();
    let mut model = ainrnn::model::Model::new(g, cfg.clone(), None).unwrap();
    model.fit_neighbours(&fit, &ids, ainrnn::model::neighbours::Similarity::COSINE);
    model
}

/// `ModelConfig::approx_bytes`, which training refuses a model by when it exceeds the GPU's
/// memory left, is a floor of what training allocates on the GPU too, for every model and
/// either table step: the refusal never turns away a model that would fit.
#[test]
fn the_memory_estimate_is_a_floor_of_what_training_allocates_on_the_gpu() {
    use ainrnn::bench::train::SyntheticHistories;
    use ainrnn::model::batch::upload;
    use ainrnn::model::params::OptimConfig;
    use ainrnn::model::{ModelConfig, ModelKind};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    let (songs, batch, history) = (20_000, 32, 25);
    let synth = SyntheticHistories::new(songs, 3);
    let users = synth.examples(0, 4 * batch, history, 25);
    for (kind, fused) in [
        (ModelKind::Ainrnn, false),
        (ModelKind::Ainrnn, true),
        (ModelKind::Indrnn, false),
        (ModelKind::Lstm, false),
    ] {
        let Some(g) = common::fresh_gpu() else { return };
        let g = g.with_fused_table(fused);
        let mut cfg = ModelConfig::new(kind, songs);
        (cfg.layers, cfg.max_history, cfg.emb) = (5, history, 128);
        let mut model = model_with_lists(&g, &cfg, &users);
        let mut rng = StdRng::seed_from_u64(5);
        for k in 0..2 {
            let b = upload(&g, &model.cfg, None, &users[k * batch..(k + 1) * batch]).unwrap();
            model
                .train_step(&g, &b, &mut rng, &OptimConfig::default())
                .unwrap();
        }
        g.sync().unwrap();
        let (allocated, floor) = (
            g.context().stats().bytes_allocated as f64,
            model.cfg.approx_bytes(batch),
        );
        eprintln!("{kind:?} fused {fused}: {allocated:.0} bytes allocated, floor {floor:.0}");
        assert!(
            floor <= allocated,
            "{kind:?} fused {fused}: the estimate {floor:.0} exceeds the {allocated:.0} bytes allocated"
        );
        // Near it, not a token figure: at least half of what is allocated.
        assert!(
            floor >= 0.5 * allocated,
            "{kind:?}: {floor:.0} of {allocated:.0}"
        );
    }
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
    use ainrnn::model::{ModelConfig, ModelKind, DEFAULT_NEIGHBOURS};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    let Some(g) = common::fresh_gpu() else { return };
    let songs = 20_000;
    let (batch, history, targets) = (64, 25, 25);
    let mut cfg = ModelConfig::new(ModelKind::Ainrnn, songs);
    cfg.layers = 5;
    cfg.max_history = history;
    cfg.tile = 8_192; // three tiles
    cfg.song_weights = true; // the trainer's defaults (4 M pairs: below the pair weights' cap)
    cfg.pair_weights = true;
    assert_eq!(cfg.neighbours, DEFAULT_NEIGHBOURS);
    let synth = SyntheticHistories::new(songs, 3);
    let users = synth.examples(0, 2_000, history, targets);
    let mut model = model_with_lists(&g, &cfg, &users);
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
            .neighbour_blocks(&g, &model.params, &b.history)
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
    // The pool hands a step the same buffers as the step before (free lists in a fixed
    // order), so most bind groups come from the cache (311 of 318 when written; a batch whose
    // history block falls in another size class misses a few).
    let (reused, dispatched) = (
        after.bind_groups_reused - before.bind_groups_reused,
        after.dispatches - before.dispatches,
    );
    assert!(
        2 * reused >= dispatched,
        "bind groups reused in the step: {reused} of {dispatched} dispatches"
    );
    assert!(g.to_f32(&loss).unwrap()[0].is_finite());

    // The optimizer step over all parameters is one dispatch (the store packed at the first
    // gradient), and the gradient norm one reduction of the packed gradients.
    if !ctx.timer_start().unwrap() {
        eprintln!("adapter has no timestamp queries; the optimizer's dispatches not counted");
        return;
    }
    step(4);
    g.sync().unwrap();
    let r = ctx.timer_report().unwrap().expect("timer was running");
    let passes = |name: &str| {
        r.kernels
            .iter()
            .filter(|k| k.kernel == name)
            .map(|k| k.passes)
            .sum::<u64>()
    };
    assert_eq!(passes("optim::adam_packed"), 1, "{:?}", r.kernels);
    assert_eq!(passes("optim::adam"), 0, "{:?}", r.kernels);
    assert_eq!(passes("sumsq::sum_squares"), 0, "{:?}", r.kernels);
}

/// With the song table's step fused, its AdamW is `table_adam` and the other parameters'
/// one `adam_packed`; when its gradient is formed anyway (a catalogue of several tiles adds it
/// tile by tile) the table, packed alone, takes a second `adam_packed`: never one dispatch per
/// parameter.
#[test]
fn a_fused_table_step_takes_one_dispatch_per_packed_group() {
    use ainrnn::bench::train::SyntheticHistories;
    use ainrnn::model::batch::upload;
    use ainrnn::model::params::OptimConfig;
    use ainrnn::model::{ModelConfig, ModelKind};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    let Some(g) = common::fresh_gpu().map(|g| g.with_fused_table(true)) else {
        return;
    };
    let songs = 3_000;
    let synth = SyntheticHistories::new(songs, 4);
    let users = synth.examples(0, 96, 12, 5);
    // (catalogue tile, adam_packed, table_adam)
    for (tile, packed, table) in [(songs, 1, 1), (1_024, 2, 0)] {
        let mut cfg = ModelConfig::new(ModelKind::Ainrnn, songs);
        (cfg.layers, cfg.hidden, cfg.emb, cfg.max_history) = (2, 16, 16, 12);
        (cfg.tile, cfg.neighbours) = (tile, 20);
        let mut model = model_with_lists(&g, &cfg, &users);
        let mut rng = StdRng::seed_from_u64(5);
        let mut step = |k: usize| {
            let b = upload(&g, &model.cfg, None, &users[k * 32..(k + 1) * 32]).unwrap();
            model
                .train_step(&g, &b, &mut rng, &OptimConfig::default())
                .unwrap();
        };
        step(0);
        step(1);
        g.sync().unwrap();
        let Some(passes) = kernel_passes(&g, || step(2)) else {
            return;
        };
        let n = |name: &str| passes.get(name).copied().unwrap_or(0);
        let what = format!("tile {tile}: {passes:?}");
        assert_eq!(n("optim::adam_packed"), packed, "{what}");
        assert_eq!(n("table::table_adam"), table, "{what}");
        assert_eq!(n("table::table_rows"), table, "{what}");
        assert_eq!(n("optim::adam"), 0, "{what}");
    }
}

/// The size, as `bench train --songs 100000 --layers 5 --steps 3 --warmup 3 --users
/// 640 --models ainrnn` runs it: the trainer's AINRNN (a plain stack) in the GPU trainer's
/// tiles with the neighbourhood term; after warm-up a step uploads at most 256 KiB, creates no
/// buffer and reads nothing back. Its batches' index uploads (distinct songs, segment pointers)
/// cross a size class between warm-up and the timed steps: without the pool lending a larger
/// idle buffer, one of the three steps created one.
#[test]
fn bench_steps_at_100k_songs_create_no_buffer_after_warm_up() {
    use ainrnn::bench::train::{run, TrainBenchOptions};
    use ainrnn::model::ModelKind;
    if common::gpu().is_none() {
        return;
    }
    let o = TrainBenchOptions {
        users: 640,
        songs: 100_000,
        layers: 5,
        steps: 3,
        warmup: 3,
        models: vec![ModelKind::Ainrnn],
        ..TrainBenchOptions::default()
    };
    // The song table's AdamW step formed (lavapipe's default) and fused (hardware GPUs').
    for fused in [false, true] {
        let open = || -> Result<ainrnn::backend::gpu::GpuBackend, ainrnn::Error> {
            Ok(ainrnn::backend::gpu::GpuBackend::new()?.with_fused_table(fused))
        };
        let r = run(
            &o,
            Some(&open),
            None,
            Err("no PyTorch here".into()),
            std::path::Path::new("-"),
            |_| {},
        )
        .unwrap();
        let gpu = r
            .runs
            .iter()
            .find(|x| x.device == "gpu")
            .expect("a GPU run");
        assert_eq!((gpu.connection, gpu.fused_table), ("plain", fused));
        let u = gpu.gpu.as_ref().expect("the GPU's counters");
        let counters = (
            u.upload_bytes_per_step,
            u.buffers_created_per_step,
            u.readbacks_per_step,
        );
        assert!(counters.0 <= 256.0 * 1024.0, "fused {fused}: {counters:?}");
        assert_eq!(
            counters.1, 0.0,
            "fused {fused}: new buffers per step: {counters:?}"
        );
        assert_eq!(
            counters.2, 0.0,
            "fused {fused}: read-backs per step: {counters:?}"
        );
    }
}

/// What the trainer reads back comes back with one wait each: a ranking of a catalogue in
/// several tiles (each tile's top-k scores and ids), and a checkpoint (every parameter's value
/// and Adam moments), which restores on the CPU to the values the GPU holds.
#[test]
fn a_ranking_and_a_checkpoint_each_take_one_read_back() {
    use ainrnn::backend::cpu::CpuBackend;
    use ainrnn::bench::train::SyntheticHistories;
    use ainrnn::model::batch::upload;
    use ainrnn::model::checkpoint::{encode, Checkpoint};
    use ainrnn::model::{ModelConfig, ModelKind};

    let Some(g) = common::gpu() else { return };
    let songs = 3_000;
    let mut cfg = ModelConfig::new(ModelKind::Ainrnn, songs);
    (cfg.layers, cfg.hidden, cfg.emb, cfg.max_history) = (2, 16, 16, 12);
    cfg.tile = 1_024; // three tiles
    cfg.neighbours = 20;
    let synth = SyntheticHistories::new(songs, 3);
    let users = synth.examples(0, 300, 12, 5);
    let model = model_with_lists(&g, &cfg, &users);
    assert_eq!(model.scorer.tiles.len(), 3);
    let batch = upload(&g, &model.cfg, None, &users[..40]).unwrap();
    g.sync().unwrap();
    let before = g.context().stats().readbacks;
    let ranked = model.recommend(&g, &batch, 10).unwrap();
    assert_eq!(
        g.context().stats().readbacks - before,
        1,
        "one wait per ranking"
    );
    assert!(ranked.iter().all(|r| r.len() == 10));
    // Batches ranked one after another (validation, evaluation): one wait for all of them,
    // the same lists as each batch ranked alone.
    let corpus = ainrnn::train::Corpus {
        songs,
        histories: users
            .iter()
            .map(|e| (e.songs.clone(), e.plays.clone()))
            .collect(),
        ..Default::default()
    };
    let examples = &users[..100];
    g.sync().unwrap();
    let before = g.context().stats().readbacks;
    let (lists, _) =
        ainrnn::train::rank_examples(&g, std::slice::from_ref(&model), &corpus, examples, 10, 16)
            .unwrap();
    assert_eq!(
        g.context().stats().readbacks - before,
        1,
        "one wait for 7 batches"
    );
    let mut alone = Vec::new();
    for chunk in examples.chunks(16) {
        let db = upload(&g, &model.cfg, None, chunk).unwrap();
        for r in model.recommend(&g, &db, 10).unwrap() {
            alone.push(r.into_iter().map(|(s, _)| s).collect::<Vec<u32>>());
        }
    }
    assert_eq!(lists, alone);

    let before = g.context().stats().readbacks;
    let bytes = encode(&g, &model, &[]).unwrap();
    assert_eq!(
        g.context().stats().readbacks - before,
        1,
        "one wait per checkpoint"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.ckpt");
    std::fs::write(&path, &bytes).unwrap();
    let cpu = Checkpoint::load(&path)
        .unwrap()
        .restore(&CpuBackend::new(), None)
        .unwrap();
    assert_eq!(cpu.params.list.len(), model.params.list.len());
    for (c, p) in cpu.params.list.iter().zip(&model.params.list) {
        assert_eq!(c.name, p.name);
        let cb = CpuBackend::new();
        for (x, y) in [(&c.value, &p.value), (&c.m, &p.m), (&c.v, &p.v)] {
            assert_eq!(cb.to_f32(x).unwrap(), g.to_f32(y).unwrap(), "{}", p.name);
        }
    }
}

/// `ainrnn info` on a machine without a desktop session: Mesa's device-select layer and EGL
/// would print "error: XDG_RUNTIME_DIR is invalid or not set" while the adapters are listed;
/// the binary turns them quiet (`quiet_headless_drivers`), and still finds the adapter.
#[test]
fn info_without_a_desktop_session_prints_no_driver_errors() {
    if common::gpu().is_none() {
        return;
    }
    let o = common::cli::command()
        .arg("info")
        .current_dir(common::cli::root())
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .env_remove("NODEVICE_SELECT")
        .env_remove("EGL_PLATFORM")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let all = common::cli::succeeds(&o);
    assert!(!all.contains("XDG_RUNTIME_DIR"), "{all}");
    assert!(
        all.contains("chosen: "),
        "the adapter is still found: {all}"
    );
}

/// The test scripts run every GPU test with `AINRNN_GPU_POISON=1`: a buffer handed out for the
/// device to write holds NaN, its tail past the tensor's end included, whether it is new or
/// comes back from the pool (an upload's tail past the host's bytes too), so a kernel that reads an output before writing it (or reads
/// padding as data) fails its comparison with the CPU instead of seeing zeros or old values.
#[test]
fn buffers_for_the_device_to_write_are_poisoned_under_the_test_scripts() {
    let Some(g) = common::gpu() else { return };
    let ctx = g.context();
    if !ctx.poisons() {
        assert!(
            !common::in_ci(),
            "CI runs the GPU tests with AINRNN_GPU_POISON=1 (scripts/test.sh sets it)"
        );
        eprintln!("!!! AINRNN_GPU_POISON is not set: the poison is not checked !!!");
        return;
    }
    for round in 0..2 {
        // Round 1 gets round 0's buffer back from the pool, after a kernel wrote it.
        let b = ctx.alloc(1000, "probe").unwrap();
        let class = b.raw().size();
        assert!(class > 1000, "a tail past the tensor's end: {class}");
        let words: Vec<u32> = ctx.download_as(&b, class).unwrap();
        assert!(
            words.iter().all(|&w| w == 0x7FC0_0000),
            "round {round}: {} of {} words are not the NaN poison",
            words.iter().filter(|&&w| w != 0x7FC0_0000).count(),
            words.len()
        );
        ctx.clear(&b, class);
        let zeros: Vec<u32> = ctx.download_as(&b, class).unwrap();
        assert!(zeros.iter().all(|&w| w == 0), "cleared after the poison");
        // An upload keeps what the host wrote; past it, the poison.
        let up = ctx.upload(&[7u8; 1000], "probe upload").unwrap();
        let class = up.raw().size();
        let words: Vec<u32> = ctx.download_as(&up, class).unwrap();
        assert!(
            words[..250].iter().all(|&w| w == 0x0707_0707),
            "round {round}"
        );
        assert!(
            words[250..].iter().all(|&w| w == 0x7FC0_0000),
            "round {round}: the tail of an upload is poisoned"
        );
    }
}
