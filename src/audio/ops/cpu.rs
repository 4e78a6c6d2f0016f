//! CPU implementation of [`AudioOps`]. The feature pipeline's [`AudioOps::spectral`] runs on
//! tiles of [`TILE`] consecutive frames of one clip, one rayon task each, with per-thread
//! buffers (nothing is allocated per frame and the power spectrogram is never stored):
//! each frame is windowed, transformed and squared into a row of the tile (and its HPCP
//! taken from that row); the tile is then turned bin-major so that the mel bands and HFC of
//! its eight frames are computed together, one frame per vector lane. The separate ops
//! (`stft_power`, `mel_spectrogram`, …) use the same per-frame code and remain for the
//! GPU-shaped API and the tests.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::audio::hfc::{hfc, hfc_tile};
use crate::audio::hpcp::{HpcpFast, HpcpScratch};
use crate::audio::mel::{MelBank, TILE};
use crate::audio::mfcc::{delta_coeffs, delta_row, power_to_db, power_to_db_into};
use crate::audio::ops::check::{self, ClipDims, FftDims, MfccDims, PcmDims};
use crate::audio::ops::{clip_frames, AudioOps, AudioPlan, Spectral};
use crate::audio::stft::{CpuStft, StftScratch};
use crate::audio::{n_frames, HPCP_SIZE, N_BINS, N_MELS};
#[cfg(target_arch = "x86_64")]
use crate::backend::cpu::math::has_avx2;
use crate::backend::cpu::math::with_avx2;
use crate::backend::cpu::{f32s, sgemm_rm, tensor, u32s, CpuBackend, CpuTensor};
use crate::backend::OpResult;
use crate::error::OpError;

fn stft_plan() -> &'static CpuStft {
    static PLAN: OnceLock<CpuStft> = OnceLock::new();
    PLAN.get_or_init(CpuStft::new)
}

/// Per-thread buffers of the tiled pass.
struct TileScratch {
    stft: StftScratch,
    /// `TILE` power spectra, frame-major (`N_BINS` each).
    rows: Vec<f32>,
    /// The same, bin-major.
    bins: Vec<[f32; TILE]>,
    hpcp: HpcpScratch,
}

/// The tiled pass of [`AudioOps::spectral`] over `clips`: tile `j` of clip `c` covers frames
/// `TILE·j ..`; frames `≥ valid[c]` are zero.
struct SpectralTask<'a> {
    stft: &'a CpuStft,
    bank: &'a MelBank,
    hp: &'a HpcpFast,
    freqs: &'a [f32],
    /// The clips' samples (rows of the padded batch, or the clips themselves).
    clips: Vec<&'a [f32]>,
    /// Tiles per clip.
    tiles: usize,
    valid: &'a [u32],
    hfc_hpcp: bool,
}

/// One tile's outputs: `[N_MELS]`, `[1]` and `[HPCP_SIZE]` rows of `TILE` frames.
struct TileOut<'o> {
    mel: &'o mut [[f32; TILE]],
    hfc: &'o mut [[f32; TILE]],
    hpcp: &'o mut [[f32; TILE]],
}

impl SpectralTask<'_> {
    fn scratch(&self) -> TileScratch {
        TileScratch {
            stft: self.stft.scratch(),
            rows: vec![0f32; TILE * N_BINS],
            bins: vec![[0f32; TILE]; N_BINS],
            hpcp: self.hp.scratch(),
        }
    }

    /// Runs tile `tile` (counted over all clips), with the AVX2 build of its loops when the
    /// CPU has AVX2.
    fn run(&self, s: &mut TileScratch, tile: usize, out: TileOut<'_>) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked at run time just above).
            unsafe { self.run_avx2(s, tile, out) };
            return;
        }
        self.body(s, tile, out);
    }

    /// [`Self::body`] compiled for AVX2: the per-frame and per-tile loops (window, spectrum
    /// split, transposition, mel bands, HPCP passes) are inlined into it and vectorise 8
    /// lanes wide. They are element-wise or use explicit lanes, so the results are the same
    /// bit for bit.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, s: &mut TileScratch, tile: usize, out: TileOut<'_>) {
        self.body(s, tile, out);
    }

    #[inline(always)]
    fn body(&self, s: &mut TileScratch, tile: usize, out: TileOut<'_>) {
        let (clip, first) = (tile / self.tiles, (tile % self.tiles) * TILE);
        let valid = self.valid[clip] as usize;
        for (f, row) in s.rows.chunks_exact_mut(N_BINS).enumerate() {
            let t = first + f;
            if t >= valid {
                row.fill(0.0);
                for h in out.hpcp.iter_mut() {
                    h[f] = 0.0;
                }
                continue;
            }
            self.stft.frame_power(self.clips[clip], t, &mut s.stft, row);
            if self.hfc_hpcp {
                let h = self.hp.frame(row, &mut s.hpcp);
                for (o, &v) in out.hpcp.iter_mut().zip(&h) {
                    o[f] = v;
                }
            }
        }
        bin_major(&s.rows, &mut s.bins);
        self.bank.apply_tile(&s.bins, out.mel);
        if self.hfc_hpcp {
            out.hfc[0] = hfc_tile(&s.bins, self.freqs);
        }
    }
}

/// `TILE` rows of `N_BINS` → `N_BINS` rows of `TILE` (LLVM turns it into 8×8 shuffles).
#[inline(always)]
fn bin_major(rows: &[f32], out: &mut [[f32; TILE]]) {
    let r: [&[f32]; TILE] = std::array::from_fn(|f| &rows[f * N_BINS..(f + 1) * N_BINS]);
    for (k, o) in out[..N_BINS].iter_mut().enumerate() {
        *o = [
            r[0][k], r[1][k], r[2][k], r[3][k], r[4][k], r[5][k], r[6][k], r[7][k],
        ];
    }
}

/// `[clips, tiles, rows]` of `TILE` frames → `[clips, rows, frames]` (librosa's orientation).
fn from_tiles(t: &[[f32; TILE]], clips: usize, frames: usize, rows: usize) -> Vec<f32> {
    let mut out = vec![0f32; clips * rows * frames];
    if frames == 0 || rows == 0 {
        return out;
    }
    let tiles = frames.div_ceil(TILE);
    out.par_chunks_mut(rows * frames)
        .zip(t.par_chunks(tiles * rows))
        .for_each(|(o, tc)| {
            for (r, orow) in o.chunks_exact_mut(frames).enumerate() {
                for (j, dst) in orow.chunks_mut(TILE).enumerate() {
                    dst.copy_from_slice(&tc[j * rows + r][..dst.len()]);
                }
            }
        });
    out
}

/// The tiled pass over `clips` (frames `≥ valid[c]` zero).
fn spectral_pass(
    plan: &AudioPlan<CpuBackend>,
    clips: Vec<&[f32]>,
    valid: &[u32],
    frames: usize,
    hfc_hpcp: bool,
) -> OpResult<Spectral<CpuBackend>> {
    let n = clips.len();
    if let Some((c, &v)) = valid.iter().enumerate().find(|(_, &v)| v as usize > frames) {
        return Err(OpError::Invalid {
            op: "spectral",
            detail: format!("clip {c} has {v} valid frames of {frames}"),
        });
    }
    let tiles = frames.div_ceil(TILE);
    let ctx = SpectralTask {
        stft: stft_plan(),
        bank: &plan.mel_bank,
        hp: &plan.hpcp_fast,
        freqs: f32s("spectral", &plan.freqs)?,
        clips,
        tiles,
        valid,
        hfc_hpcp,
    };
    // Tile-major outputs; HFC and HPCP stay untouched (lazily zeroed pages) when not asked.
    let z = [0f32; TILE];
    let (mut mel, mut hf, mut hc) = (
        vec![z; n * tiles * N_MELS],
        vec![z; n * tiles],
        vec![z; n * tiles * HPCP_SIZE],
    );
    if tiles > 0 {
        mel.par_chunks_mut(N_MELS)
            .zip(hf.par_chunks_mut(1))
            .zip(hc.par_chunks_mut(HPCP_SIZE))
            .enumerate()
            .for_each_init(
                || ctx.scratch(),
                |s, (tile, ((mel, hfc), hpcp))| ctx.run(s, tile, TileOut { mel, hfc, hpcp }),
            );
    }
    let mel = tensor(vec![n, N_MELS, frames], from_tiles(&mel, n, frames, N_MELS));
    let (hfc, hpcp) = if hfc_hpcp {
        (
            Some(tensor(vec![n, 1, frames], from_tiles(&hf, n, frames, 1))),
            Some(tensor(
                vec![n, HPCP_SIZE, frames],
                from_tiles(&hc, n, frames, HPCP_SIZE),
            )),
        )
    } else {
        (None, None)
    };
    Ok(Spectral { mel, hfc, hpcp })
}

impl AudioOps for CpuBackend {
    fn spectral_kernel(
        &self,
        plan: &AudioPlan<Self>,
        pcm: &CpuTensor,
        valid: &CpuTensor,
        frames: usize,
        hfc_hpcp: bool,
        d: &PcmDims,
    ) -> OpResult<Spectral<Self>> {
        let x = f32s("spectral", pcm)?;
        let (clips, len) = (d.clips(), d.samples());
        let v = u32s("spectral", valid)?;
        let rows: Vec<&[f32]> = if len == 0 {
            vec![&[]; clips]
        } else {
            x.chunks_exact(len).collect()
        };
        spectral_pass(plan, rows, v, frames, hfc_hpcp)
    }

    fn spectral_of_clips_kernel(
        &self,
        plan: &AudioPlan<Self>,
        clips: &[&[f32]],
        hfc_hpcp: bool,
    ) -> OpResult<Spectral<Self>> {
        let (len, valid) = clip_frames(clips);
        spectral_pass(plan, clips.to_vec(), &valid, n_frames(len), hfc_hpcp)
    }

    fn mfcc_kernel(
        &self,
        plan: &AudioPlan<Self>,
        mel: &CpuTensor,
        amin: f32,
        top_db: f32,
        d: &MfccDims,
    ) -> OpResult<CpuTensor> {
        let ([clips, rows, frames], n_out) = (d.mel(), d.n_out());
        let (x, dct) = (f32s("mfcc", mel)?, f32s("mfcc", &plan.dct)?);
        let mut out = vec![0f32; clips * n_out * frames];
        if rows * frames > 0 {
            out.par_chunks_mut(n_out * frames)
                .zip(x.par_chunks(rows * frames))
                .for_each_init(Vec::new, |db, (o, xc)| {
                    db.resize(xc.len(), 0.0);
                    with_avx2(
                        #[inline(always)]
                        || power_to_db_into(xc, db, amin, top_db),
                    );
                    sgemm_rm(n_out, rows, frames, dct, db, o);
                });
        }
        Ok(tensor(vec![clips, n_out, frames], out))
    }

    fn upload_f32_vec_kernel(&self, data: Vec<f32>, shape: &[usize]) -> OpResult<CpuTensor> {
        Ok(tensor(shape.to_vec(), data))
    }

    fn read_packed_kernel(&self, parts: &[&CpuTensor]) -> OpResult<Vec<f32>> {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            out.extend_from_slice(f32s("read_packed", p)?);
        }
        Ok(out)
    }

    fn stft_power_kernel(
        &self,
        _plan: &AudioPlan<Self>,
        pcm: &CpuTensor,
        valid: &CpuTensor,
        frames: usize,
        d: &PcmDims,
    ) -> OpResult<CpuTensor> {
        let x = f32s("stft_power", pcm)?;
        let clips = d.clips();
        let v = u32s("stft_power", valid)?;
        let mut out = vec![0f32; clips * frames * N_BINS];
        stft_plan().power(x, clips, frames, v, &mut out);
        Ok(tensor(vec![clips, frames, N_BINS], out))
    }

    fn mel_spectrogram_kernel(
        &self,
        plan: &AudioPlan<Self>,
        power: &CpuTensor,
        d: &ClipDims,
    ) -> OpResult<CpuTensor> {
        let [clips, frames, _] = d.dims();
        let p = f32s("mel_spectrogram", power)?;
        let bank = &plan.mel_bank;
        let mut out = vec![0f32; clips * N_MELS * frames];
        out.par_chunks_mut(N_MELS * frames)
            .zip(p.par_chunks(frames * N_BINS))
            .for_each(|(o, pc)| {
                let mut col = [0f32; N_MELS];
                for t in 0..frames {
                    bank.apply(&pc[t * N_BINS..(t + 1) * N_BINS], &mut col);
                    for (m, &v) in col.iter().enumerate() {
                        o[m * frames + t] = v;
                    }
                }
            });
        Ok(tensor(vec![clips, N_MELS, frames], out))
    }

    fn hfc_kernel(
        &self,
        plan: &AudioPlan<Self>,
        power: &CpuTensor,
        d: &ClipDims,
    ) -> OpResult<CpuTensor> {
        let [clips, frames, _] = d.dims();
        let p = f32s("hfc", power)?;
        let freqs = f32s("hfc", &plan.freqs)?;
        let mut out = vec![0f32; clips * frames];
        out.par_chunks_mut(1024)
            .zip(p.par_chunks(1024 * N_BINS))
            .for_each(|(o, pc)| {
                for (v, row) in o.iter_mut().zip(pc.chunks_exact(N_BINS)) {
                    *v = hfc(row, freqs);
                }
            });
        Ok(tensor(vec![clips, 1, frames], out))
    }

    fn power_to_db_kernel(
        &self,
        x: &CpuTensor,
        amin: f32,
        top_db: f32,
        d: &ClipDims,
    ) -> OpResult<CpuTensor> {
        let [clips, rows, cols] = d.dims();
        let mut out = f32s("power_to_db", x)?.to_vec();
        if rows * cols > 0 {
            out.par_chunks_mut(rows * cols)
                .for_each(|c| power_to_db(c, amin, top_db));
        }
        Ok(tensor(vec![clips, rows, cols], out))
    }

    fn delta_kernel(
        &self,
        x: &CpuTensor,
        valid: &CpuTensor,
        width: usize,
        order: u32,
        d: &ClipDims,
    ) -> OpResult<CpuTensor> {
        let [clips, rows, frames] = d.dims();
        let v = u32s("delta", valid)?;
        // The frame counts are readable here: a clip shorter than the width is an error.
        check::delta_frames(width, frames, v)?;
        let c = delta_coeffs(width, order);
        let xs = f32s("delta", x)?;
        let mut out = vec![0f32; xs.len()];
        if frames > 0 {
            out.par_chunks_mut(frames)
                .zip(xs.par_chunks(frames))
                .enumerate()
                .for_each(|(r, (o, xr))| delta_row(xr, &c, v[r / rows] as usize, o));
        }
        Ok(tensor(vec![clips, rows, frames], out))
    }

    fn hpcp_kernel(
        &self,
        plan: &AudioPlan<Self>,
        power: &CpuTensor,
        valid: &CpuTensor,
        d: &ClipDims,
    ) -> OpResult<CpuTensor> {
        let [clips, frames, _] = d.dims();
        let v = u32s("hpcp", valid)?;
        let p = f32s("hpcp", power)?;
        let hp = &plan.hpcp_fast;
        // Time-major first ([clips·frames, 12]), then transposed per clip.
        let mut tm = vec![0f32; clips * frames * HPCP_SIZE];
        tm.par_chunks_mut(HPCP_SIZE).enumerate().for_each_init(
            || hp.scratch(),
            |s, (r, o)| {
                if (r % frames.max(1)) >= v[r / frames.max(1)] as usize {
                    return;
                }
                o.copy_from_slice(&hp.frame(&p[r * N_BINS..(r + 1) * N_BINS], s));
            },
        );
        let mut out = vec![0f32; tm.len()];
        for c in 0..clips {
            for t in 0..frames {
                for k in 0..HPCP_SIZE {
                    out[(c * HPCP_SIZE + k) * frames + t] = tm[(c * frames + t) * HPCP_SIZE + k];
                }
            }
        }
        Ok(tensor(vec![clips, HPCP_SIZE, frames], out))
    }

    fn concat_kernel(&self, parts: &[&CpuTensor]) -> OpResult<CpuTensor> {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            out.extend_from_slice(f32s("concat", p)?);
        }
        let n = out.len();
        Ok(tensor(vec![n], out))
    }

    fn fft_kernel(&self, x: &CpuTensor, _twiddles: &CpuTensor, d: &FftDims) -> OpResult<CpuTensor> {
        let (batch, n) = (d.batch(), d.n());
        let xs = f32s("fft", x)?;
        let mut planner = rustfft::FftPlanner::<f32>::new();
        let f = planner.plan_fft_forward(n);
        let mut buf: Vec<rustfft::num_complex::Complex<f32>> = xs
            .chunks_exact(2)
            .map(|c| rustfft::num_complex::Complex::new(c[0], c[1]))
            .collect();
        if batch > 0 && n > 0 {
            f.process(&mut buf);
        }
        let out = buf.iter().flat_map(|c| [c.re, c.im]).collect();
        Ok(tensor(vec![batch, n, 2], out))
    }
}

// Only x86-64 has the two builds.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::audio::mfcc::power_to_db_into;

    /// The AVX2 build of the per-frame loops gives the baseline build's results bit for bit
    /// (element-wise and fixed-lane arithmetic, no FMA contraction).
    #[test]
    fn avx2_build_matches_the_baseline_bit_for_bit() {
        if has_avx2() {
            let plan = AudioPlan::new(&CpuBackend::new()).unwrap_or_else(|e| panic!("{e}"));
            let clip: Vec<f32> = (0..40 * crate::audio::HOP)
                .map(|i| {
                    let t = i as f32 / 22_050.0;
                    (2.0 * std::f32::consts::PI * 440.0 * t).sin() * 0.5
                        + (2.0 * std::f32::consts::PI * 1234.5 * t).sin() * 0.2
                        + ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.05
                })
                .collect();
            let frames = n_frames(clip.len());
            // The last tile is partial: frames past the clip must come out zero.
            let valid = [frames as u32 - 3];
            let task = SpectralTask {
                stft: stft_plan(),
                bank: &plan.mel_bank,
                hp: &plan.hpcp_fast,
                freqs: f32s("test", &plan.freqs).unwrap_or_else(|e| panic!("{e}")),
                clips: vec![&clip],
                tiles: frames.div_ceil(TILE),
                valid: &valid,
                hfc_hpcp: true,
            };
            let run = |avx2: bool| {
                let mut s = task.scratch();
                let z = [0f32; TILE];
                let (mut m, mut h, mut c) = (
                    vec![z; task.tiles * N_MELS],
                    vec![z; task.tiles],
                    vec![z; task.tiles * HPCP_SIZE],
                );
                for j in 0..task.tiles {
                    let out = TileOut {
                        mel: &mut m[j * N_MELS..(j + 1) * N_MELS],
                        hfc: &mut h[j..j + 1],
                        hpcp: &mut c[j * HPCP_SIZE..(j + 1) * HPCP_SIZE],
                    };
                    if avx2 {
                        // SAFETY: AVX2 support was checked above.
                        unsafe { task.run_avx2(&mut s, j, out) };
                    } else {
                        task.body(&mut s, j, out);
                    }
                }
                (
                    from_tiles(&m, 1, frames, N_MELS),
                    from_tiles(&h, 1, frames, 1),
                    from_tiles(&c, 1, frames, HPCP_SIZE),
                )
            };
            let (base, fast) = (run(false), run(true));
            assert!(base.0.iter().any(|&v| v > 0.0) && base.2.contains(&1.0));
            assert_eq!(base, fast);
            // Frames past the clip's own count are zero in every output.
            for t in valid[0] as usize..frames {
                assert!((0..N_MELS).all(|m| base.0[m * frames + t] == 0.0));
                assert_eq!(base.1[t], 0.0);
                assert!((0..HPCP_SIZE).all(|k| base.2[k * frames + t] == 0.0));
            }

            let mel = base.0;
            let (mut a, mut b) = (vec![0f32; mel.len()], vec![0f32; mel.len()]);
            power_to_db_into(&mel, &mut a, 1e-10, 80.0);
            with_avx2(
                #[inline(always)]
                || power_to_db_into(&mel, &mut b, 1e-10, 80.0),
            );
            assert_eq!(a, b);
        }
    }
}
