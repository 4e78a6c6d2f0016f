//! GPU scattering transform: all clips × paths in a few dispatches per stage, data on the device
//! from the clips to the final `[batch, paths, frames]` tensor.
//!
//! Per group of clips (as many as fit one storage binding):
//! 1. `pad_reflect` → forward FFT of every padded clip (`fft_long`, one batch).
//! 2. Order 0: `spec_mul` with the low-pass filter → inverse FFT → `extract`.
//! 3. Per round of first-order jobs (clip, wavelet), sized to fit one binding: `spec_mul`
//!    (every wavelet, periodised to its own subsampled length) → one batched inverse FFT over
//!    the mixed sizes → `modulus` → forward FFT (|U1| spectra, kept) → low-pass + `extract`
//!    (order 1) → the same from |U1| with the second-order wavelets (j2 > j1) → order 2.
//!
//! The filters (sparse, f32), the twiddles and the job tables (per group size) are uploaded once
//! and kept in the plan's cache; per call only pooled work buffers are taken.

mod fft;

pub use fft::{fft_batch, FFT_LONG};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::audio::scattering::{Scattering, ScatteringOps, Sparse};
use crate::backend::gpu::pipeline::Kernel;
use crate::backend::gpu::shader::Shader;
use crate::backend::gpu::{raw, GpuBackend, GpuBuffer, GpuContext, GpuTensor};
use crate::backend::{DType, OpResult};
use crate::error::GpuError;
use fft::{FftJobs, Twiddles};

/// Work buffers hold at most this many complex values (256 MiB), below the binding limit.
const MAX_ELEMS: u64 = 1 << 25;

crate::kernel_params! {
    /// Parameters of `scattering.wgsl`.
    struct Params {
        clips: u32,
        n: u32,
        n_padded: u32,
        pad_left: u32,
        first_clip: u32,
        n_jobs: u32,
        total: u32,
        count: u32,
        job_len: u32,
        ind_start: u32,
        frames: u32,
        row_base: u32,
    }
}

pub static SCATTERING: Shader = crate::wgsl_shader!(
    "scattering",
    Params,
    bindings: ["src", "dst", "jobs", "vals", "out", "inout"],
);

/// Where a sparse filter sits in the uploaded filter values.
#[derive(Clone, Copy, Debug)]
struct FiltRef {
    off: u32,
    lo: u32,
    len: u32,
}

/// One `spec_mul` job before upload.
#[derive(Clone, Copy, Debug)]
struct Job {
    m_out: usize,
    src_off: usize,
    m_in: usize,
    filt: FiltRef,
}

/// An uploaded `spec_mul` table plus the FFT table over the same layout.
struct SpecStage {
    table: GpuBuffer,
    n_jobs: u32,
    total: u32,
    fft: FftJobs,
}

/// A low-pass stage: spectral product, inverse FFT, extraction to the given output rows.
struct Lowpass {
    spec: SpecStage,
    rows: GpuBuffer,
}

struct Round {
    order1: SpecStage,
    lowpass1: Lowpass,
    order2: Vec<(SpecStage, Lowpass)>,
}

/// Job tables for groups of `clips` clips.
struct Tables {
    x_fft: FftJobs,
    lowpass0: Lowpass,
    rounds: Vec<Round>,
    max1: u64,
    max2: u64,
    max_lp: u64,
}

/// What the GPU keeps per plan and device.
pub struct GpuScatterCache {
    ctx: Weak<GpuContext>,
    filters: GpuBuffer,
    psi1: Vec<FiltRef>,
    /// `psi2[n2][k]`: second-order wavelet `n2` at subsampling level `k`.
    psi2: Vec<Vec<FiltRef>>,
    phi: Vec<FiltRef>,
    tw: Twiddles,
    /// Complex values per work buffer at most (binding limit, `MAX_ELEMS`).
    cap: u64,
    /// Keyed by (clips per group, buffer cap).
    tables: Mutex<HashMap<(usize, u64), Arc<Tables>>>,
}

impl GpuScatterCache {
    fn new(g: &GpuBackend, plan: &Scattering) -> OpResult<Self> {
        let bank = plan.bank();
        let mut vals: Vec<f32> = Vec::new();
        let mut add = |s: &Sparse| {
            let r = FiltRef {
                off: vals.len() as u32,
                lo: s.lo as u32,
                len: s.vals.len() as u32,
            };
            vals.extend_from_slice(&s.vals);
            r
        };
        let psi1: Vec<FiltRef> = bank.psi1.iter().map(|w| add(&w.levels[0])).collect();
        let psi2: Vec<Vec<FiltRef>> = bank
            .psi2
            .iter()
            .map(|w| w.levels.iter().map(&mut add).collect())
            .collect();
        let phi: Vec<FiltRef> = bank.phi.iter().map(&mut add).collect();
        if vals.is_empty() {
            vals.push(0.0);
        }
        let limits = &g.context().limits;
        let cap = (limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            / 8)
        .min(MAX_ELEMS);
        Ok(GpuScatterCache {
            ctx: Arc::downgrade(g.context()),
            filters: g
                .context()
                .upload(bytemuck::cast_slice(&vals), "scattering filters")?,
            psi1,
            psi2,
            phi,
            tw: Twiddles::new(g.context(), bank.log2_n_padded)?,
            cap,
            tables: Mutex::new(HashMap::new()),
        })
    }

    fn same_device(&self, g: &GpuBackend) -> bool {
        self.ctx.upgrade().is_some() && Weak::as_ptr(&self.ctx) == Arc::as_ptr(g.context())
    }

    fn spec_stage(&self, ctx: &GpuContext, jobs: &[Job]) -> Result<SpecStage, GpuError> {
        let mut words = Vec::with_capacity(8 * jobs.len());
        let mut logs = Vec::with_capacity(jobs.len());
        let mut off = 0usize;
        for j in jobs {
            words.extend_from_slice(&[
                off as u32,
                j.m_out as u32,
                j.src_off as u32,
                j.m_in as u32,
                j.filt.off,
                j.filt.lo,
                j.filt.len,
                0,
            ]);
            logs.push(j.m_out.trailing_zeros());
            off += j.m_out;
        }
        Ok(SpecStage {
            table: ctx.upload(bytemuck::cast_slice(&words), "scattering jobs")?,
            n_jobs: jobs.len() as u32,
            total: off as u32,
            fft: FftJobs::new(ctx, &logs)?,
        })
    }

    fn lowpass(&self, ctx: &GpuContext, jobs: &[Job], rows: &[u32]) -> Result<Lowpass, GpuError> {
        Ok(Lowpass {
            spec: self.spec_stage(ctx, jobs)?,
            rows: ctx.upload(bytemuck::cast_slice(rows), "scattering rows")?,
        })
    }

    /// Builds the job tables for groups of `clips` clips (rows relative to the group's first).
    fn build_tables(
        &self,
        ctx: &GpuContext,
        plan: &Scattering,
        clips: usize,
        cap: u64,
    ) -> Result<Tables, GpuError> {
        let bank = plan.bank();
        let n = bank.n_padded;
        let lt = bank.log2_t;
        let mlp = n >> lt;
        let paths = plan.n_paths();
        let o2_first: Vec<usize> = (0..bank.psi1.len())
            .map(|n1| {
                plan.paths()
                    .iter()
                    .position(|p| p.order == 2 && p.n1 == n1)
                    .unwrap_or(0)
            })
            .collect();
        let lp_job = |src_off: usize, m_in: usize, level: usize| Job {
            m_out: mlp,
            src_off,
            m_in,
            filt: self.phi[level],
        };
        let x_fft = FftJobs::new(ctx, &vec![bank.log2_n_padded; clips])?;
        let lp0: Vec<Job> = (0..clips).map(|b| lp_job(b * n, n, 0)).collect();
        let rows0: Vec<u32> = (0..clips).map(|b| (b * paths) as u32).collect();
        let lowpass0 = self.lowpass(ctx, &lp0, &rows0)?;

        // First-order jobs, cut into rounds that fit one buffer.
        let mut o1: Vec<(usize, usize, Job)> = Vec::new();
        for b in 0..clips {
            for (n1, w) in bank.psi1.iter().enumerate() {
                let k1 = w.j.min(lt) as usize;
                o1.push((
                    b,
                    n1,
                    Job {
                        m_out: n >> k1,
                        src_off: b * n,
                        m_in: n,
                        filt: self.psi1[n1],
                    },
                ));
            }
        }
        let mut rounds = Vec::new();
        let (mut max1, mut max2, mut max_lp) = (0u64, 0u64, (clips * mlp) as u64);
        for chunk in split_by_size(&o1, cap, |j| j.2.m_out) {
            let mut lp1 = Vec::new();
            let mut rows1 = Vec::new();
            let mut o2: Vec<(Job, usize, usize)> = Vec::new(); // job, level k1+k2, row
            let mut off = 0usize;
            for &(b, n1, j) in chunk {
                let w1 = &bank.psi1[n1];
                let k1 = w1.j.min(lt) as usize;
                lp1.push(lp_job(off, j.m_out, k1));
                rows1.push((b * paths + 1 + n1) as u32);
                let mut row = b * paths + o2_first[n1];
                for (n2, w2) in bank.psi2.iter().enumerate() {
                    if w2.j <= w1.j {
                        continue;
                    }
                    let k2 = (w2.j.min(lt) as usize).saturating_sub(k1);
                    o2.push((
                        Job {
                            m_out: j.m_out >> k2,
                            src_off: off,
                            m_in: j.m_out,
                            filt: self.psi2[n2][k1],
                        },
                        k1 + k2,
                        row,
                    ));
                    row += 1;
                }
                off += j.m_out;
            }
            let order1: Vec<Job> = chunk.iter().map(|c| c.2).collect();
            max1 = max1.max(off as u64);
            max_lp = max_lp.max((lp1.len() * mlp) as u64);
            let mut order2 = Vec::new();
            for sub in split_by_size(&o2, cap, |j| j.0.m_out) {
                let jobs: Vec<Job> = sub.iter().map(|s| s.0).collect();
                let mut lp = Vec::new();
                let mut rows = Vec::new();
                let mut off2 = 0usize;
                for &(j, level, row) in sub {
                    lp.push(lp_job(off2, j.m_out, level));
                    rows.push(row as u32);
                    off2 += j.m_out;
                }
                max2 = max2.max(off2 as u64);
                max_lp = max_lp.max((lp.len() * mlp) as u64);
                order2.push((self.spec_stage(ctx, &jobs)?, self.lowpass(ctx, &lp, &rows)?));
            }
            rounds.push(Round {
                order1: self.spec_stage(ctx, &order1)?,
                lowpass1: self.lowpass(ctx, &lp1, &rows1)?,
                order2,
            });
        }
        Ok(Tables {
            x_fft,
            lowpass0,
            rounds,
            max1,
            max2,
            max_lp,
        })
    }

    fn tables(
        &self,
        ctx: &GpuContext,
        plan: &Scattering,
        clips: usize,
        cap: u64,
    ) -> Result<Arc<Tables>, GpuError> {
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(x) = t.get(&(clips, cap)) {
            return Ok(x.clone());
        }
        let x = Arc::new(self.build_tables(ctx, plan, clips, cap)?);
        t.insert((clips, cap), x.clone());
        Ok(x)
    }
}

/// Consecutive runs of `items` whose sizes sum to at most `cap` (an item larger than `cap` is
/// a run of its own; the caller guarantees none is).
fn split_by_size<T>(items: &[T], cap: u64, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut acc) = (0usize, 0u64);
    for (i, it) in items.iter().enumerate() {
        let s = size(it) as u64;
        if acc + s > cap && i > start {
            out.push(&items[start..i]);
            start = i;
            acc = 0;
        }
        acc += s;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

fn spec_mul(
    g: &GpuBackend,
    st: &SpecStage,
    src: &GpuBuffer,
    dst: &GpuBuffer,
    filters: &GpuBuffer,
) -> Result<(), GpuError> {
    let p = Params {
        n_jobs: st.n_jobs,
        total: st.total,
        ..Default::default()
    };
    g.context().dispatch(
        &Kernel::new(&SCATTERING, "spec_mul"),
        &p,
        &[
            ("src", src),
            ("dst", dst),
            ("jobs", &st.table),
            ("vals", filters),
        ],
        g.context().threads_grid("scattering", st.total as u64)?,
    )
}

fn modulus(g: &GpuBackend, buf: &GpuBuffer, count: u32) -> Result<(), GpuError> {
    let p = Params {
        count,
        ..Default::default()
    };
    g.context().dispatch(
        &Kernel::new(&SCATTERING, "modulus"),
        &p,
        &[("inout", buf)],
        g.context().threads_grid("scattering", count as u64)?,
    )
}

/// Everything one call needs besides the cache: work buffers and the output.
struct Work<'a> {
    g: &'a GpuBackend,
    cache: &'a GpuScatterCache,
    lp: [GpuBuffer; 2],
    out: &'a GpuBuffer,
    mlp: u32,
    ind_start: u32,
    frames: u32,
}

impl Work<'_> {
    /// `spec_mul` with phi, inverse FFT, then the real part at the output rows.
    fn lowpass(&self, l: &Lowpass, src: &GpuBuffer, row_base: u32) -> Result<(), GpuError> {
        let c = self.cache;
        spec_mul(self.g, &l.spec, src, &self.lp[0], &c.filters)?;
        let r = fft::run(
            self.g,
            [&self.lp[0], &self.lp[1]],
            0,
            &l.spec.fft,
            &c.tw,
            true,
        )?;
        let p = Params {
            n_jobs: l.spec.n_jobs,
            job_len: self.mlp,
            ind_start: self.ind_start,
            frames: self.frames,
            row_base,
            ..Default::default()
        };
        self.g.context().dispatch(
            &Kernel::new(&SCATTERING, "extract"),
            &p,
            &[("src", &self.lp[r]), ("jobs", &l.rows), ("out", self.out)],
            self.g
                .context()
                .threads_grid("scattering", l.spec.n_jobs as u64 * self.frames as u64)?,
        )
    }

    /// Wavelet stage: spectral products into `bufs[0]`, inverse FFT, modulus, forward FFT.
    /// Returns the buffer index holding the |U| spectra.
    fn wavelets(
        &self,
        st: &SpecStage,
        src: &GpuBuffer,
        bufs: [&GpuBuffer; 2],
    ) -> Result<usize, GpuError> {
        let c = self.cache;
        spec_mul(self.g, st, src, bufs[0], &c.filters)?;
        let r = fft::run(self.g, bufs, 0, &st.fft, &c.tw, true)?;
        modulus(self.g, bufs[r], st.total)?;
        fft::run(self.g, bufs, r, &st.fft, &c.tw, false)
    }
}

/// The kernel of [`ScatteringOps::scattering`] on checked clips.
pub fn scattering(g: &GpuBackend, plan: &Scattering, clips: &GpuTensor) -> OpResult<GpuTensor> {
    capped(g, plan, clips, None)
}

/// [`scattering`] with work buffers of at most `cap` complex values (default: the device's
/// binding limit, at most 2^25). A small cap forces several clip groups and rounds, which the
/// tests use to check the splitting on small inputs.
#[doc(hidden)]
pub fn scattering_capped(
    g: &GpuBackend,
    plan: &Scattering,
    clips: &GpuTensor,
    cap: Option<u64>,
) -> OpResult<GpuTensor> {
    crate::audio::scattering::check_clips(plan, clips)?;
    capped(g, plan, clips, cap)
}

/// [`scattering_capped`] on checked clips.
fn capped(
    g: &GpuBackend,
    plan: &Scattering,
    clips: &GpuTensor,
    cap: Option<u64>,
) -> OpResult<GpuTensor> {
    let bank = plan.bank();
    let batch = clips.shape()[0];
    let (paths, frames) = (plan.n_paths(), plan.n_frames());
    let cache = plan.cached(
        |c: &GpuScatterCache| c.same_device(g),
        || GpuScatterCache::new(g, plan),
    )?;
    let out = g.empty(&[batch, paths, frames], DType::F32, "scattering out")?;
    if batch == 0 {
        return Ok(out);
    }
    let n = bank.n_padded as u64;
    let cap = cap.unwrap_or(cache.cap).min(cache.cap);
    if n > cap {
        return Err(GpuError::Limit {
            op: "scattering",
            what: "storage buffer elements (padded clip)",
            needed: n,
            limit: cap,
        }
        .into());
    }
    let group = ((cap / n) as usize).clamp(1, batch);
    let ctx = g.context();
    let lt = bank.log2_t as usize;
    let mut first = 0usize;
    while first < batch {
        let clips_here = group.min(batch - first);
        let t = cache.tables(ctx, plan, clips_here, cap)?;
        let alloc = |elems: u64, what: &str| ctx.alloc(elems.max(1) * 8, what);
        let x = [
            alloc(n * clips_here as u64, "scattering x")?,
            alloc(n * clips_here as u64, "scattering x")?,
        ];
        let s1 = [
            alloc(t.max1, "scattering u1")?,
            alloc(t.max1, "scattering u1")?,
        ];
        let s2 = [
            alloc(t.max2, "scattering u2")?,
            alloc(t.max2, "scattering u2")?,
        ];
        let w = Work {
            g,
            cache: &cache,
            lp: [
                alloc(t.max_lp, "scattering lowpass")?,
                alloc(t.max_lp, "scattering lowpass")?,
            ],
            out: raw(&out),
            mlp: (bank.n_padded >> lt) as u32,
            ind_start: bank.ind_start[lt] as u32,
            frames: frames as u32,
        };
        let p = Params {
            clips: clips_here as u32,
            n: bank.n_input as u32,
            n_padded: bank.n_padded as u32,
            pad_left: bank.pad_left as u32,
            first_clip: first as u32,
            ..Default::default()
        };
        ctx.dispatch(
            &Kernel::new(&SCATTERING, "pad_reflect"),
            &p,
            &[("dst", &x[0]), ("vals", raw(clips))],
            ctx.threads_grid("scattering", n * clips_here as u64)?,
        )?;
        let xi = fft::run(g, [&x[0], &x[1]], 0, &t.x_fft, &cache.tw, false)?;
        let row_base = (first * paths) as u32;
        w.lowpass(&t.lowpass0, &x[xi], row_base)?;
        for round in &t.rounds {
            let r1 = w.wavelets(&round.order1, &x[xi], [&s1[0], &s1[1]])?;
            w.lowpass(&round.lowpass1, &s1[r1], row_base)?;
            for (o2, lp2) in &round.order2 {
                let r2 = w.wavelets(o2, &s1[r1], [&s2[0], &s2[1]])?;
                w.lowpass(lp2, &s2[r2], row_base)?;
            }
        }
        first += clips_here;
    }
    Ok(out)
}

impl ScatteringOps for GpuBackend {
    fn scattering_kernel(&self, plan: &Scattering, clips: &GpuTensor) -> OpResult<GpuTensor> {
        scattering(self, plan, clips)
    }
}

#[cfg(test)]
mod tests {
    use super::split_by_size;

    #[test]
    fn split_by_size_respects_the_cap() {
        let items = [4usize, 4, 2, 8, 1, 1, 16];
        let runs = split_by_size(&items, 8, |&x| x);
        let sums: Vec<usize> = runs.iter().map(|r| r.iter().sum()).collect();
        assert_eq!(sums, vec![8, 2, 8, 2, 16]);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), items.len());
        assert!(split_by_size(&[] as &[usize], 8, |&x| x).is_empty());
    }
}
