//! Op benchmarks (divan): matmul, the step's catalogue products, softmax and row sums on the CPU
//! backend and, when an adapter opens, on the GPU backend (each GPU iteration ends with a device
//! sync).
//! Run: `cargo bench --bench ops`. The one-run GPU/CPU table is `ainrnn bench ops`.

use std::sync::OnceLock;

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::gpu::GpuBackend;
use ainrnn::backend::{Backend, ReduceOp};
use divan::Bencher;

fn main() {
    divan::main();
}

fn gpu() -> Option<&'static GpuBackend> {
    static G: OnceLock<Option<GpuBackend>> = OnceLock::new();
    G.get_or_init(|| match GpuBackend::new() {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("no GPU adapter ({e}): GPU benches are skipped");
            None
        }
    })
    .as_ref()
}

fn data(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn matmul_on<B: Backend>(bencher: Bencher, b: &B, n: usize) {
    let x = b.upload_f32(&data(n * n), &[n, n]).unwrap();
    let y = b.upload_f32(&data(n * n), &[n, n]).unwrap();
    bencher
        .counter(divan::counter::ItemsCount::new(2 * n * n * n))
        .bench_local(|| {
            let c = b.matmul(&x, &y, false, false).unwrap();
            b.sync().unwrap();
            c
        });
}

/// The training step's catalogue products at the trainer's sizes (32 users, song table 128):
/// the logits `u·qᵀ` and `∂u = g·q` over `songs` songs (6,000: the demo's HetRec catalogue;
/// 359,687: the paper's).
fn catalogue_on<B: Backend>(bencher: Bencher, b: &B, songs: usize, grad: bool) {
    let (users, dim) = (32, 128);
    // A device that cannot bind the whole table (lavapipe's 128 MiB at the paper's scale) has
    // the trainer split the catalogue into tiles; the one-tile product is not what it runs.
    let bytes = 4 * (songs * dim).max(users * songs) as u64;
    if bytes > b.max_binding_bytes() {
        eprintln!(
            "catalogue products over {songs} songs skipped on {}: {bytes} bytes exceed its \
             largest binding ({} bytes)",
            b.describe(),
            b.max_binding_bytes()
        );
        return;
    }
    let q = b.upload_f32(&data(songs * dim), &[songs, dim]).unwrap();
    let x = if grad {
        b.upload_f32(&data(users * songs), &[users, songs]).unwrap()
    } else {
        b.upload_f32(&data(users * dim), &[users, dim]).unwrap()
    };
    bencher
        .counter(divan::counter::ItemsCount::new(2 * users * dim * songs))
        .bench_local(|| {
            let c = b.matmul(&x, &q, false, !grad).unwrap();
            b.sync().unwrap();
            c
        });
}

fn softmax_on<B: Backend>(bencher: Bencher, b: &B, cols: usize) {
    let rows = 64;
    let x = b.upload_f32(&data(rows * cols), &[rows, cols]).unwrap();
    bencher
        .counter(divan::counter::BytesCount::new(8 * rows * cols))
        .bench_local(|| {
            let y = b.softmax_rows(&x, false).unwrap();
            b.sync().unwrap();
            y
        });
}

fn sum_on<B: Backend>(bencher: Bencher, b: &B, cols: usize) {
    let rows = 1024;
    let x = b.upload_f32(&data(rows * cols), &[rows, cols]).unwrap();
    bencher
        .counter(divan::counter::BytesCount::new(4 * rows * cols))
        .bench_local(|| {
            let y = b.reduce_rows(ReduceOp::Sum, &x).unwrap();
            b.sync().unwrap();
            y
        });
}

mod cpu {
    use super::*;

    #[divan::bench(args = [128, 256, 512])]
    fn matmul(bencher: Bencher, n: usize) {
        matmul_on(bencher, &CpuBackend::new(), n);
    }

    #[divan::bench(args = [6_000, 359_687])]
    fn catalogue_logits(bencher: Bencher, songs: usize) {
        catalogue_on(bencher, &CpuBackend::new(), songs, false);
    }

    #[divan::bench(args = [6_000, 359_687])]
    fn catalogue_grad(bencher: Bencher, songs: usize) {
        catalogue_on(bencher, &CpuBackend::new(), songs, true);
    }

    #[divan::bench(args = [4096, 65536, 360_000])]
    fn softmax_64_rows(bencher: Bencher, cols: usize) {
        softmax_on(bencher, &CpuBackend::new(), cols);
    }

    #[divan::bench(args = [1024, 16384])]
    fn sum_1024_rows(bencher: Bencher, cols: usize) {
        sum_on(bencher, &CpuBackend::new(), cols);
    }
}

mod gpu {
    use super::*;

    #[divan::bench(args = [128, 256, 512])]
    fn matmul(bencher: Bencher, n: usize) {
        if let Some(g) = gpu() {
            matmul_on(bencher, g, n);
        }
    }

    #[divan::bench(args = [6_000, 359_687])]
    fn catalogue_logits(bencher: Bencher, songs: usize) {
        if let Some(g) = gpu() {
            catalogue_on(bencher, g, songs, false);
        }
    }

    #[divan::bench(args = [6_000, 359_687])]
    fn catalogue_grad(bencher: Bencher, songs: usize) {
        if let Some(g) = gpu() {
            catalogue_on(bencher, g, songs, true);
        }
    }

    #[divan::bench(args = [4096, 65536, 360_000])]
    fn softmax_64_rows(bencher: Bencher, cols: usize) {
        if let Some(g) = gpu() {
            softmax_on(bencher, g, cols);
        }
    }

    #[divan::bench(args = [1024, 16384])]
    fn sum_1024_rows(bencher: Bencher, cols: usize) {
        if let Some(g) = gpu() {
            sum_on(bencher, g, cols);
        }
    }
}
