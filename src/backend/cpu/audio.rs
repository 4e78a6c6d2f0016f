//! CPU implementation of [`AudioOps`]: realfft per frame, rayon over frames and clips, the mel
//! bank applied sparsely (only each filter's non-zero bins), the algorithms of `crate::audio`.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::{f32s, tensor, u32s, CpuBackend, CpuTensor};
use crate::audio::hfc::hfc;
use crate::audio::hpcp::hpcp_frame;
use crate::audio::mfcc::{delta_coeffs, delta_row, power_to_db};
use crate::audio::stft::CpuStft;
use crate::audio::{N_BINS, N_MELS};
use crate::backend::audio::{check, AudioOps, AudioPlan};
use crate::backend::OpResult;
use crate::error::OpError;

fn stft_plan() -> &'static CpuStft {
    static PLAN: OnceLock<CpuStft> = OnceLock::new();
    PLAN.get_or_init(CpuStft::new)
}

impl AudioOps for CpuBackend {
    fn stft_power(
        &self,
        _plan: &AudioPlan<Self>,
        pcm: &CpuTensor,
        valid: &CpuTensor,
        frames: usize,
    ) -> OpResult<CpuTensor> {
        let x = f32s("stft_power", pcm)?;
        let (clips, _) = match *pcm.shape() {
            [c, n] => (c, n),
            _ => {
                return Err(OpError::Shape {
                    op: "stft_power",
                    detail: format!("pcm must be [clips, samples], got {:?}", pcm.shape()),
                })
            }
        };
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
        // Time-major first ([clips·frames, 12]), then transposed per clip.
        let mut tm = vec![0f32; clips * frames * 12];
        tm.par_chunks_mut(12).enumerate().for_each_init(
            || (Vec::with_capacity(128), vec![0f32; N_BINS]),
            |(peaks, mag), (r, o)| {
                if (r % frames.max(1)) >= v[r / frames.max(1)] as usize {
                    return;
                }
                for (m, &pw) in mag.iter_mut().zip(&p[r * N_BINS..(r + 1) * N_BINS]) {
                    *m = pw.sqrt();
                }
                o.copy_from_slice(&hpcp_frame(mag, &plan.hpcp, peaks));
            },
        );
        let mut out = vec![0f32; tm.len()];
        for c in 0..clips {
            for t in 0..frames {
                for k in 0..12 {
                    out[(c * 12 + k) * frames + t] = tm[(c * frames + t) * 12 + k];
                }
            }
        }
        Ok(tensor(vec![clips, 12, frames], out))
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
