//! Scattering transform benchmarks (divan): J = 8, Q = 8 on clips of a few lengths, CPU backend
//! and, when an adapter opens, GPU backend (each GPU iteration ends with a device sync). The
//! filter bank is built once per length, outside the timed loop, as a feature job reuses it.
//! Run: `cargo bench --bench scattering`. The one-run CPU/GPU/Kymatio table is
//! `ainrnn bench scattering`.

use std::sync::OnceLock;

use ainrnn::audio::scattering::{Scattering, ScatteringConfig};
use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::gpu::GpuBackend;
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

/// A synthetic two-tone signal: the content does not change the speed.
fn synthetic(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let t = i as f32 / 22_050.0;
            0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 3520.0 * t).sin()
        })
        .collect()
}

fn scattering_on<B: ainrnn::audio::scattering::ScatteringOps>(
    bencher: Bencher,
    b: &B,
    seconds: usize,
) {
    let n = seconds * 22_050;
    let plan = Scattering::new(ScatteringConfig::default(), n).unwrap();
    let x = b.upload_f32(&synthetic(n), &[1, n]).unwrap();
    bencher
        .counter(divan::counter::ItemsCount::new(n))
        .bench_local(|| {
            let y = plan.transform(b, &x).unwrap();
            b.sync().unwrap();
            y
        });
}

mod cpu {
    use super::*;

    #[divan::bench(args = [1, 5, 30], sample_count = 10)]
    fn scattering_j8_q8(bencher: Bencher, seconds: usize) {
        scattering_on(bencher, &CpuBackend::new(), seconds);
    }
}

mod gpu {
    use super::*;

    #[divan::bench(args = [1, 5], sample_count = 5)]
    fn scattering_j8_q8(bencher: Bencher, seconds: usize) {
        if let Some(g) = gpu() {
            scattering_on(bencher, g, seconds);
        }
    }
}
