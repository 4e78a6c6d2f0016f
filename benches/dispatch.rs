//! The host's cost of recording one dispatch: 20,000 small `axpy` kernels back to back on the
//! GPU backend, timed on the host with the time inside queue submits left out (a software
//! adapter such as lavapipe runs the kernels there), and again with the device's time
//! included (a sync at the end). A training step is hundreds of such dispatches, so this cost
//! times the dispatch count bounds a step from below. Run: `cargo bench --bench dispatch`
//! (skipped, with a note, without an adapter).

use std::time::Instant;

use ainrnn::backend::gpu::GpuBackend;
use ainrnn::backend::Backend;

const DISPATCHES: usize = 20_000;
const ROUNDS: usize = 5;

fn main() {
    let g = match GpuBackend::new() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("no GPU adapter ({e}): the dispatch bench is skipped");
            return;
        }
    };
    println!("{}", g.describe());
    let n = 4096;
    // Eight inputs taken in turn, so consecutive dispatches bind different buffers.
    let xs: Vec<_> = (0..8)
        .map(|i| g.upload_f32(&vec![i as f32; n], &[n]).unwrap())
        .collect();
    let mut acc = g.zeros(&[n]).unwrap();
    let (mut host, mut total) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        g.sync().unwrap();
        let s0 = g.context().stats();
        let t0 = Instant::now();
        for i in 0..DISPATCHES {
            g.axpy(&mut acc, &xs[i % 8], 1e-6).unwrap();
        }
        let recorded = t0.elapsed().as_secs_f64();
        let s1 = g.context().stats();
        g.sync().unwrap();
        let all = t0.elapsed().as_secs_f64();
        let submits = (s1.submit_nanos - s0.submit_nanos) as f64 * 1e-9;
        host.push((recorded - submits) / DISPATCHES as f64);
        total.push(all / DISPATCHES as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] * 1e6
    };
    println!(
        "host per dispatch (recording, submits excluded): {:.2} µs; with the device, synced: {:.2} µs  (median of {ROUNDS} rounds of {DISPATCHES})",
        median(&mut host),
        median(&mut total)
    );
}
