//! CPU implementation of [`AudioOps`]. The feature pipeline's [`AudioOps::spectral`] is one
//! pass per frame (window → FFT → power → sparse mel, HFC, HPCP) on rayon tasks of
//! [`FRAMES_PER_TASK`] frames, with per-thread buffers: the power spectrogram is never stored
//! and nothing is allocated per frame. The separate ops (`stft_power`, `mel_spectrogram`, …)
//! use the same per-frame code and remain for the GPU-shaped API and the tests.

use std::sync::OnceLock;

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::math::has_avx2;
use super::math::with_avx2;
use super::matmul::sgemm_rm;
use super::{f32s, tensor, u32s, CpuBackend, CpuTensor};
use crate::audio::hfc::hfc;
use crate::audio::hpcp::{HpcpFast, HpcpScratch};
use crate::audio::mel::MelBank;
use crate::audio::mfcc::{delta_coeffs, delta_row, power_to_db, power_to_db_into};
use crate::audio::stft::{CpuStft, StftScratch};
use crate::audio::{n_frames, HPCP_SIZE, N_BINS, N_MELS};
use crate::backend::audio::{check, AudioOps, AudioPlan, Spectral};
use crate::backend::OpResult;
use crate::error::OpError;

/// Frames per rayon task of the per-frame passes (a 30 s clip has 1,293 frames).
const FRAMES_PER_TASK: usize = 16;

fn stft_plan() -> &'static CpuStft {
    static PLAN: OnceLock<CpuStft> = OnceLock::new();
    PLAN.get_or_init(CpuStft::new)
}

fn pcm_shape(pcm: &CpuTensor) -> OpResult<(usize, usize)> {
    match *pcm.shape() {
        [c, n] => Ok((c, n)),
        _ => Err(OpError::Shape {
            op: "stft_power",
            detail: format!("pcm must be [clips, samples], got {:?}", pcm.shape()),
        }),
    }
}

/// Per-thread buffers of the fused pass.
struct FrameScratch {
    stft: StftScratch,
    power: Vec<f32>,
    hpcp: HpcpScratch,
}

/// One rayon task of [`AudioOps::spectral`]: frames `first..` (rows of all clips in order)
/// into time-major mel, HFC and HPCP slices.
struct SpectralTask<'a> {
    stft: &'a CpuStft,
    bank: &'a MelBank,
    hp: &'a HpcpFast,
    freqs: &'a [f32],
    /// The clips' samples (rows of the padded batch, or the clips themselves).
    clips: Vec<&'a [f32]>,
    frames: usize,
    valid: &'a [u32],
    hfc_hpcp: bool,
}

impl SpectralTask<'_> {
    /// Runs the task, with the AVX2 build of its loops when the CPU has AVX2.
    fn run(&self, s: &mut FrameScratch, first: usize, m: &mut [f32], h: &mut [f32], c: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked at run time just above).
            unsafe { self.run_avx2(s, first, m, h, c) };
            return;
        }
        self.body(s, first, m, h, c);
    }

    /// [`Self::body`] compiled for AVX2: the per-frame loops (window, spectrum split, mel
    /// dots, HPCP passes) are inlined into it and vectorise 8 lanes wide. They are
    /// element-wise or use explicit lanes, so the results are the same bit for bit.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(
        &self,
        s: &mut FrameScratch,
        first: usize,
        m: &mut [f32],
        h: &mut [f32],
        c: &mut [f32],
    ) {
        self.body(s, first, m, h, c);
    }

    #[inline(always)]
    fn body(
        &self,
        s: &mut FrameScratch,
        first: usize,
        m: &mut [f32],
        h: &mut [f32],
        c: &mut [f32],
    ) {
        let frames = self.frames;
        for (i, mrow) in m.chunks_exact_mut(N_MELS).enumerate() {
            let (clip, t) = ((first + i) / frames, (first + i) % frames);
            if t >= self.valid[clip] as usize {
                continue;
            }
            self.stft
                .frame_power(self.clips[clip], t, &mut s.stft, &mut s.power);
            self.bank.apply(&s.power, mrow);
            if self.hfc_hpcp {
                h[i] = hfc(&s.power, self.freqs);
                c[i * HPCP_SIZE..(i + 1) * HPCP_SIZE]
                    .copy_from_slice(&self.hp.frame(&s.power, &mut s.hpcp));
            }
        }
    }
}

/// `[clips, frames, rows]` (time-major, as the per-frame passes write) →
/// `[clips, rows, frames]` (librosa's orientation), in blocks of 16 frames.
fn feature_major(tm: &[f32], frames: usize, rows: usize) -> Vec<f32> {
    let mut out = vec![0f32; tm.len()];
    if frames == 0 || rows == 0 {
        return out;
    }
    out.par_chunks_mut(rows * frames)
        .zip(tm.par_chunks(rows * frames))
        .for_each(|(o, t)| {
            for t0 in (0..frames).step_by(16) {
                let t1 = (t0 + 16).min(frames);
                for r in 0..rows {
                    for (k, v) in o[r * frames + t0..r * frames + t1].iter_mut().enumerate() {
                        *v = t[(t0 + k) * rows + r];
                    }
                }
            }
        });
    out
}

/// The fused per-frame pass over `clips` (frames `≥ valid[c]` zero).
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
    let (stft, bank, hp) = (stft_plan(), &*plan.mel_bank, &*plan.hpcp_fast);
    let rows = n * frames;
    // Time-major outputs; HFC and HPCP stay untouched (lazily zeroed pages) when not asked.
    let mut mel = vec![0f32; rows * N_MELS];
    let mut hf = vec![0f32; rows];
    let mut hc = vec![0f32; rows * HPCP_SIZE];
    let ctx = SpectralTask {
        stft,
        bank,
        hp,
        freqs: f32s("spectral", &plan.freqs)?,
        clips,
        frames,
        valid,
        hfc_hpcp,
    };
    let f = FRAMES_PER_TASK;
    mel.par_chunks_mut(f * N_MELS)
        .zip(hf.par_chunks_mut(f))
        .zip(hc.par_chunks_mut(f * HPCP_SIZE))
        .enumerate()
        .for_each_init(
            || FrameScratch {
                stft: stft.scratch(),
                power: vec![0f32; N_BINS],
                hpcp: hp.scratch(),
            },
            |s, (task, ((m, h), c))| ctx.run(s, task * f, m, h, c),
        );
    let mel = tensor(vec![n, N_MELS, frames], feature_major(&mel, frames, N_MELS));
    let (hfc, hpcp) = if hfc_hpcp {
        (
            Some(tensor(vec![n, 1, frames], hf)),
            Some(tensor(
                vec![n, HPCP_SIZE, frames],
                feature_major(&hc, frames, HPCP_SIZE),
            )),
        )
    } else {
        (None, None)
    };
    Ok(Spectral { mel, hfc, hpcp })
}

impl AudioOps for CpuBackend {
    fn spectral(
        &self,
        plan: &AudioPlan<Self>,
        pcm: &CpuTensor,
        valid: &CpuTensor,
        frames: usize,
        hfc_hpcp: bool,
    ) -> OpResult<Spectral<Self>> {
        let x = f32s("spectral", pcm)?;
        let (clips, len) = pcm_shape(pcm)?;
        check::valid("spectral", valid, clips)?;
        let v = u32s("spectral", valid)?;
        let rows: Vec<&[f32]> = if len == 0 {
            vec![&[]; clips]
        } else {
            x.chunks_exact(len).collect()
        };
        spectral_pass(plan, rows, v, frames, hfc_hpcp)
    }

    fn spectral_of_clips(
        &self,
        plan: &AudioPlan<Self>,
        clips: &[&[f32]],
        hfc_hpcp: bool,
    ) -> OpResult<Spectral<Self>> {
        let len = clips.iter().map(|c| c.len()).max().unwrap_or(0);
        let valid: Vec<u32> = clips.iter().map(|c| n_frames(c.len()) as u32).collect();
        spectral_pass(plan, clips.to_vec(), &valid, n_frames(len), hfc_hpcp)
    }

    fn mfcc(
        &self,
        plan: &AudioPlan<Self>,
        mel: &CpuTensor,
        amin: f32,
        top_db: f32,
    ) -> OpResult<CpuTensor> {
        let [clips, rows, frames] = check::clips_rows_cols("mfcc", mel)?;
        let n_out = match *plan.dct.shape() {
            [o, i] if i == rows => o,
            _ => {
                return Err(OpError::Shape {
                    op: "mfcc",
                    detail: format!("DCT {:?} does not fit {rows} mel bands", plan.dct.shape()),
                })
            }
        };
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

    fn upload_f32_vec(&self, data: Vec<f32>, shape: &[usize]) -> OpResult<CpuTensor> {
        crate::backend::check::shape_len("upload_f32", shape, data.len())?;
        Ok(tensor(shape.to_vec(), data))
    }

    fn read_packed(&self, parts: &[&CpuTensor]) -> OpResult<Vec<f32>> {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            out.extend_from_slice(f32s("read_packed", p)?);
        }
        Ok(out)
    }

    fn stft_power(
        &self,
        _plan: &AudioPlan<Self>,
        pcm: &CpuTensor,
        valid: &CpuTensor,
        frames: usize,
    ) -> OpResult<CpuTensor> {
        let x = f32s("stft_power", pcm)?;
        let (clips, _) = pcm_shape(pcm)?;
        check::valid("stft_power", valid, clips)?;
        let v = u32s("stft_power", valid)?;
        let mut out = vec![0f32; clips * frames * N_BINS];
        stft_plan().power(x, clips, frames, v, &mut out);
        Ok(tensor(vec![clips, frames, N_BINS], out))
    }

    fn mel_spectrogram(&self, plan: &AudioPlan<Self>, power: &CpuTensor) -> OpResult<CpuTensor> {
        let [clips, frames, _] = check::power("mel_spectrogram", power)?;
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

    fn hfc(&self, plan: &AudioPlan<Self>, power: &CpuTensor) -> OpResult<CpuTensor> {
        let [clips, frames, _] = check::power("hfc", power)?;
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

    fn power_to_db(&self, x: &CpuTensor, amin: f32, top_db: f32) -> OpResult<CpuTensor> {
        let [clips, rows, cols] = check::clips_rows_cols("power_to_db", x)?;
        let mut out = f32s("power_to_db", x)?.to_vec();
        if rows * cols > 0 {
            out.par_chunks_mut(rows * cols)
                .for_each(|c| power_to_db(c, amin, top_db));
        }
        Ok(tensor(vec![clips, rows, cols], out))
    }

    fn delta(
        &self,
        x: &CpuTensor,
        valid: &CpuTensor,
        width: usize,
        order: u32,
    ) -> OpResult<CpuTensor> {
        let [clips, rows, frames] = check::clips_rows_cols("delta", x)?;
        check::valid("delta", valid, clips)?;
        let v = u32s("delta", valid)?;
        check::delta(width, order, v)?;
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

    fn hpcp(
        &self,
        plan: &AudioPlan<Self>,
        power: &CpuTensor,
        valid: &CpuTensor,
    ) -> OpResult<CpuTensor> {
        let [clips, frames, _] = check::power("hpcp", power)?;
        check::valid("hpcp", valid, clips)?;
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
        Ok(tensor(
            vec![clips, HPCP_SIZE, frames],
            feature_major(&tm, frames, HPCP_SIZE),
        ))
    }

    fn concat(&self, parts: &[&CpuTensor]) -> OpResult<CpuTensor> {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            out.extend_from_slice(f32s("concat", p)?);
        }
        let n = out.len();
        Ok(tensor(vec![n], out))
    }

    fn fft(&self, x: &CpuTensor, twiddles: &CpuTensor) -> OpResult<CpuTensor> {
        let (batch, n) = check::fft(x, twiddles)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::mfcc::power_to_db_into;

    /// The AVX2 build of the per-frame loops gives the baseline build's results bit for bit
    /// (element-wise and fixed-lane arithmetic, no FMA contraction).
    #[test]
    fn avx2_build_matches_the_baseline_bit_for_bit() {
        #[cfg(target_arch = "x86_64")]
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
            let valid = [frames as u32];
            let task = SpectralTask {
                stft: stft_plan(),
                bank: &plan.mel_bank,
                hp: &plan.hpcp_fast,
                freqs: f32s("test", &plan.freqs).unwrap_or_else(|e| panic!("{e}")),
                clips: vec![&clip],
                frames,
                valid: &valid,
                hfc_hpcp: true,
            };
            let run = |avx2: bool| {
                let mut s = FrameScratch {
                    stft: task.stft.scratch(),
                    power: vec![0f32; N_BINS],
                    hpcp: task.hp.scratch(),
                };
                let (mut m, mut h, mut c) = (
                    vec![0f32; frames * N_MELS],
                    vec![0f32; frames],
                    vec![0f32; frames * HPCP_SIZE],
                );
                if avx2 {
                    // SAFETY: AVX2 support was checked above.
                    unsafe { task.run_avx2(&mut s, 0, &mut m, &mut h, &mut c) };
                } else {
                    task.body(&mut s, 0, &mut m, &mut h, &mut c);
                }
                (m, h, c)
            };
            let (base, fast) = (run(false), run(true));
            assert!(base.0.iter().any(|&v| v > 0.0) && base.2.contains(&1.0));
            assert_eq!(base, fast);

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
