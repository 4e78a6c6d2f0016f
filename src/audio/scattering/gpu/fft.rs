//! Host side of `shaders/fft_long.wgsl`: batched multi-pass Stockham FFTs over global memory
//! (radix 8, then 4 or 2) for transforms of mixed power-of-two sizes laid out back to back.

use std::sync::Arc;

use crate::backend::gpu::pipeline::Kernel;
use crate::backend::gpu::shader::Shader;
use crate::backend::gpu::{GpuBackend, GpuBuffer, GpuContext};
use crate::backend::OpResult;
use crate::error::{GpuError, OpError};

crate::kernel_params! {
    /// Parameters of `fft_long.wgsl`.
    struct Params {
        n_jobs: u32,
        total_units: u32,
        step: u32,
        npass: u32,
        log2_tw: u32,
        inverse: u32,
    }
}

pub static FFT_LONG: Shader = crate::wgsl_shader!(
    "fft_long",
    Params,
    bindings: ["src", "dst", "jobs", "tw"],
);

/// `exp(-2πi k / 2^log2)` for `k < 2^log2` (radix 8 reads up to 7/8 of the circle), computed in
/// f64 and uploaded once; serves every power-of-two size up to `2^log2`.
pub struct Twiddles {
    pub buf: GpuBuffer,
    pub log2: u32,
}

impl Twiddles {
    pub fn new(ctx: &GpuContext, log2: u32) -> Result<Self, GpuError> {
        let n = 1usize << log2;
        let mut v = Vec::with_capacity(2 * n);
        for k in 0..n {
            let a = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
            v.push(a.cos() as f32);
            v.push(a.sin() as f32);
        }
        Ok(Twiddles {
            buf: ctx.upload(bytemuck::cast_slice(&v), "fft twiddles")?,
            log2,
        })
    }
}

/// The job table of one batch of transforms: `[offset, log2 size, first unit]` per transform
/// (a unit is the eight elements one invocation handles, or a whole transform of 2 or 4).
pub struct FftJobs {
    pub table: GpuBuffer,
    pub n_jobs: u32,
    pub units: u32,
    /// Passes of the longest transform: ceil(log2 size / 3).
    pub npass: u32,
}

impl FftJobs {
    /// `log2_sizes` in layout order; every size must be at least 2.
    pub fn new(ctx: &GpuContext, log2_sizes: &[u32]) -> Result<Self, GpuError> {
        let mut words = Vec::with_capacity(3 * log2_sizes.len());
        let (mut off, mut units) = (0u64, 0u64);
        for &l in log2_sizes {
            debug_assert!(l >= 1, "FFT sizes must be at least 2");
            words.extend_from_slice(&[off as u32, l, units as u32]);
            off += 1u64 << l;
            units += (1u64 << l).div_ceil(8);
        }
        Ok(FftJobs {
            table: ctx.upload(bytemuck::cast_slice(&words), "fft jobs")?,
            n_jobs: log2_sizes.len() as u32,
            units: units as u32,
            npass: log2_sizes.iter().map(|l| l.div_ceil(3)).max().unwrap_or(0),
        })
    }
}

/// Records the passes of one batched transform. The data starts in `bufs[start]`; returns the
/// index of the buffer holding the result (the passes ping-pong between the two).
pub fn run(
    g: &GpuBackend,
    bufs: [&GpuBuffer; 2],
    start: usize,
    jobs: &FftJobs,
    tw: &Twiddles,
    inverse: bool,
) -> Result<usize, GpuError> {
    if jobs.n_jobs == 0 {
        return Ok(start);
    }
    let groups = g.context().threads_grid("fft_long", jobs.units as u64)?;
    let kernel = Kernel::new(&FFT_LONG, "stockham_pass");
    for pass in 0..jobs.npass {
        let src = bufs[(start + pass as usize) % 2];
        let dst = bufs[(start + pass as usize + 1) % 2];
        let p = Params {
            n_jobs: jobs.n_jobs,
            total_units: jobs.units,
            step: pass,
            npass: jobs.npass,
            log2_tw: tw.log2,
            inverse: inverse as u32,
        };
        g.context().dispatch(
            &kernel,
            &p,
            &[
                ("src", src),
                ("dst", dst),
                ("jobs", &jobs.table),
                ("tw", &tw.buf),
            ],
            groups,
        )?;
    }
    Ok((start + jobs.npass as usize) % 2)
}

/// Unnormalised DFTs (forward: `exp(-2πi jk/n)`; inverse: conjugate) of several complex
/// signals of power-of-two sizes in one batch, as the scattering transform runs them. `data` is
/// interleaved (re, im) for all signals back to back. Exposed for the tests against rustfft.
pub fn fft_batch(
    g: &GpuBackend,
    data: &[f32],
    sizes: &[usize],
    inverse: bool,
) -> OpResult<Vec<f32>> {
    let total: usize = sizes.iter().sum();
    if data.len() != 2 * total {
        return Err(OpError::Shape {
            op: "fft_batch",
            detail: format!(
                "{} floats for sizes summing to {total} complex values",
                data.len()
            ),
        });
    }
    if let Some(bad) = sizes.iter().find(|&&n| n < 2 || !n.is_power_of_two()) {
        return Err(OpError::Invalid {
            op: "fft_batch",
            detail: format!("size {bad} is not a power of two >= 2"),
        });
    }
    if total as u64 >= 1 << 31 {
        return Err(OpError::Invalid {
            op: "fft_batch",
            detail: format!("{total} elements exceed the 32-bit indexing of the kernels"),
        });
    }
    let logs: Vec<u32> = sizes.iter().map(|n| n.trailing_zeros()).collect();
    let ctx: &Arc<GpuContext> = g.context();
    let tw = Twiddles::new(ctx, logs.iter().copied().max().unwrap_or(1))?;
    let jobs = FftJobs::new(ctx, &logs)?;
    let a = ctx.upload(bytemuck::cast_slice(data), "fft_batch a")?;
    let b = ctx.alloc(data.len() as u64 * 4, "fft_batch b")?;
    let r = run(g, [&a, &b], 0, &jobs, &tw, inverse)?;
    Ok(ctx.download_as([&a, &b][r], data.len() as u64 * 4)?)
}
