//! Audio feature ops, a trait of their own on top of [`Backend`] (the core trait stays
//! music-free). Both backends implement it: the CPU with realfft, rayon and the sparse mel
//! bank; the GPU with the WGSL kernels in `shaders/fft.wgsl` and `shaders/audio.wgsl`. Dense
//! products (DCT, and on the GPU the mel bank and HFC) reuse [`Backend::matmul`].
//!
//! Layouts: a batch of clips is `[clips, samples]` (zero-padded to the longest), spectra are
//! `[clips, frames, bins]`, features `[clips, features, frames]` (librosa's orientation per
//! clip). `valid` is a `[clips]` u32 tensor of each clip's own frame count; frames past it are
//! zero in the spectra and in the deltas.

mod cpu;
mod gpu;

pub use gpu::{AUDIO, FFT};

use std::sync::Arc;

use crate::audio::hfc::bin_freqs;
use crate::audio::hpcp::{HpcpConfig, HpcpFast};
use crate::audio::mel::MelBank;
use crate::audio::mfcc::dct_matrix;
use crate::audio::stft::{hann, twiddles};
use crate::audio::{n_frames, N_BINS, N_FFT, N_MELS, N_MFCC, SAMPLE_RATE};
use crate::backend::{BTensor, Backend, OpResult};

/// Constants of the feature pipeline, uploaded once per run (window, FFT twiddles, mel bank,
/// DCT matrix, bin frequencies).
pub struct AudioPlan<B: Backend> {
    /// Periodic Hann window `[N_FFT]`.
    pub window: BTensor<B>,
    /// `exp(-2πik/N_FFT)`, `[N_FFT, 2]`.
    pub twiddles: BTensor<B>,
    /// Slaney mel bank `[N_MELS, N_BINS]`.
    pub mel: BTensor<B>,
    /// Orthonormal DCT-II `[N_MFCC, N_MELS]`.
    pub dct: BTensor<B>,
    /// Bin frequencies in Hz `[1, N_BINS]`.
    pub freqs: BTensor<B>,
    /// The same mel bank on the host, with its non-zero ranges (CPU path).
    pub mel_bank: Arc<MelBank>,
    pub hpcp: HpcpConfig,
    /// HPCP tables of the CPU path.
    pub hpcp_fast: Arc<HpcpFast>,
}

impl<B: Backend> AudioPlan<B> {
    pub fn new(b: &B) -> OpResult<Self> {
        let sr = SAMPLE_RATE as f64;
        let bank = MelBank::new(sr, N_FFT, N_MELS);
        Ok(AudioPlan {
            window: b.upload_f32(&hann(N_FFT), &[N_FFT])?,
            twiddles: b.upload_f32(&twiddles(N_FFT), &[N_FFT, 2])?,
            mel: b.upload_f32(&bank.weights, &[N_MELS, N_BINS])?,
            dct: b.upload_f32(&dct_matrix(N_MFCC, N_MELS), &[N_MFCC, N_MELS])?,
            freqs: b.upload_f32(&bin_freqs(sr, N_FFT), &[1, N_BINS])?,
            mel_bank: Arc::new(bank),
            hpcp: HpcpConfig::new(SAMPLE_RATE as f32),
            hpcp_fast: Arc::new(HpcpFast::new(HpcpConfig::new(SAMPLE_RATE as f32), N_BINS)),
        })
    }
}

/// What [`AudioOps::spectral`] returns.
pub struct Spectral<B: Backend> {
    /// `[clips, N_MELS, frames]` mel power.
    pub mel: BTensor<B>,
    /// `[clips, 1, frames]` (when asked for).
    pub hfc: Option<BTensor<B>>,
    /// `[clips, 12, frames]` (when asked for).
    pub hpcp: Option<BTensor<B>>,
}

/// The feature kernels.
pub trait AudioOps: Backend {
    /// Everything the pipeline takes from the power spectrum: the mel spectrogram and, with
    /// `hfc_hpcp`, HFC and HPCP, from `pcm [clips, samples]` (frames `≥ valid[c]` zero).
    /// The default is [`stft_power`](Self::stft_power) followed by
    /// [`mel_spectrogram`](Self::mel_spectrogram), [`hfc`](Self::hfc) and [`hpcp`](Self::hpcp)
    /// (the GPU keeps the power spectrogram on the device); the CPU overrides it with one pass
    /// per frame while the spectrum is in cache, never storing the power spectrogram.
    fn spectral(
        &self,
        plan: &AudioPlan<Self>,
        pcm: &BTensor<Self>,
        valid: &BTensor<Self>,
        frames: usize,
        hfc_hpcp: bool,
    ) -> OpResult<Spectral<Self>> {
        let power = self.stft_power(plan, pcm, valid, frames)?;
        let mel = self.mel_spectrogram(plan, &power)?;
        let (hfc, hpcp) = if hfc_hpcp {
            (
                Some(self.hfc(plan, &power)?),
                Some(self.hpcp(plan, &power, valid)?),
            )
        } else {
            (None, None)
        };
        Ok(Spectral { mel, hfc, hpcp })
    }

    /// [`spectral`](Self::spectral) of clips still on the host (mono, any lengths): the batch
    /// is `[clips, longest]` with `frames = n_frames(longest)` and each clip's own frame count
    /// as `valid`. The default pads the clips into one buffer and uploads it; the CPU reads
    /// them where they are (no padded copy).
    fn spectral_of_clips(
        &self,
        plan: &AudioPlan<Self>,
        clips: &[&[f32]],
        hfc_hpcp: bool,
    ) -> OpResult<Spectral<Self>> {
        let len = clips.iter().map(|c| c.len()).max().unwrap_or(0);
        let valid: Vec<u32> = clips.iter().map(|c| n_frames(c.len()) as u32).collect();
        let pcm = self.upload_f32_vec(pad_clips(clips, len), &[clips.len(), len])?;
        let valid = self.upload_u32(&valid, &[clips.len()])?;
        self.spectral(plan, &pcm, &valid, n_frames(len), hfc_hpcp)
    }

    /// MFCC of a mel spectrogram: `power_to_db(mel, amin, top_db)` (floor per clip), then the
    /// DCT `plan.dct` on every frame: `[clips, N_MELS, frames]` → `[clips, N_MFCC, frames]`.
    /// The default is [`power_to_db`](Self::power_to_db) then [`Backend::matmul`]; the CPU
    /// does both clip by clip in a per-thread buffer instead of a whole dB copy.
    fn mfcc(
        &self,
        plan: &AudioPlan<Self>,
        mel: &BTensor<Self>,
        amin: f32,
        top_db: f32,
    ) -> OpResult<BTensor<Self>> {
        let db = self.power_to_db(mel, amin, top_db)?;
        self.matmul(&plan.dct, &db, false, false)
    }

    /// Uploads an owned buffer (the CPU keeps it as the tensor's storage, no copy).
    fn upload_f32_vec(&self, data: Vec<f32>, shape: &[usize]) -> OpResult<BTensor<Self>> {
        self.upload_f32(&data, shape)
    }

    /// Reads tensors back as one flat vector, in order. The default is
    /// [`concat`](Self::concat) and one read-back (one transfer per batch on the GPU); the CPU
    /// copies each part once.
    fn read_packed(&self, parts: &[&BTensor<Self>]) -> OpResult<Vec<f32>> {
        self.to_f32(&self.concat(parts)?)
    }

    /// Power spectrogram `|STFT|²`: `pcm [clips, samples]` → `[clips, frames, N_BINS]`, frames
    /// `≥ valid[c]` zeroed.
    fn stft_power(
        &self,
        plan: &AudioPlan<Self>,
        pcm: &BTensor<Self>,
        valid: &BTensor<Self>,
        frames: usize,
    ) -> OpResult<BTensor<Self>>;

    /// Mel spectrogram: `[clips, frames, N_BINS]` → `[clips, N_MELS, frames]`.
    fn mel_spectrogram(
        &self,
        plan: &AudioPlan<Self>,
        power: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>>;

    /// HFC of every frame: `power [clips, frames, N_BINS]` → `[clips, 1, frames]`.
    fn hfc(&self, plan: &AudioPlan<Self>, power: &BTensor<Self>) -> OpResult<BTensor<Self>>;

    /// `power_to_db` with the floor taken per clip: `x [clips, rows, cols]` →
    /// `max(10·log10(max(x, amin)), clip_max − top_db)`.
    fn power_to_db(&self, x: &BTensor<Self>, amin: f32, top_db: f32) -> OpResult<BTensor<Self>>;

    /// librosa `feature.delta(width, order)` along the last axis of `[clips, rows, frames]`,
    /// each clip over its own `valid` frames (at least `width`).
    fn delta(
        &self,
        x: &BTensor<Self>,
        valid: &BTensor<Self>,
        width: usize,
        order: u32,
    ) -> OpResult<BTensor<Self>>;

    /// HPCP of every frame: `power [clips, frames, N_BINS]` → `[clips, 12, frames]`.
    fn hpcp(
        &self,
        plan: &AudioPlan<Self>,
        power: &BTensor<Self>,
        valid: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>>;

    /// Concatenates tensors into one flat tensor (one read-back per batch).
    fn concat(&self, parts: &[&BTensor<Self>]) -> OpResult<BTensor<Self>>;

    /// Forward complex FFT of each row of `x [batch, n, 2]` (interleaved re, im), `n` a power
    /// of two up to 1024; `twiddles` is `exp(-2πik/(2n))`, `[2n, 2]`. The STFT's kernel uses the
    /// same transform at `n = 1024`; this entry point exists to test it at every size.
    fn fft(&self, x: &BTensor<Self>, twiddles: &BTensor<Self>) -> OpResult<BTensor<Self>>;
}

/// The clips one per row, zero-padded to `len` samples (`[clips, len]`), written once
/// (no zero-fill first).
pub fn pad_clips(clips: &[&[f32]], len: usize) -> Vec<f32> {
    let mut pcm = Vec::with_capacity(clips.len() * len);
    for c in clips {
        let c = &c[..c.len().min(len)];
        pcm.extend_from_slice(c);
        pcm.resize(pcm.len() + len - c.len(), 0.0);
    }
    pcm
}

/// Shape checks shared by both implementations.
pub(crate) mod check {
    use super::*;
    use crate::backend::DType;
    use crate::error::OpError;

    pub fn clips_rows_cols<S>(
        op: &'static str,
        x: &crate::backend::Tensor<S>,
    ) -> OpResult<[usize; 3]> {
        x.expect_dtype(op, DType::F32)?;
        match *x.shape() {
            [a, b, c] => Ok([a, b, c]),
            _ => Err(OpError::Shape {
                op,
                detail: format!("expected [clips, rows, frames], got {:?}", x.shape()),
            }),
        }
    }

    pub fn valid<S>(op: &'static str, v: &crate::backend::Tensor<S>, clips: usize) -> OpResult<()> {
        v.expect_dtype(op, DType::U32)?;
        if v.len() != clips {
            return Err(OpError::Shape {
                op,
                detail: format!("valid has {} entries for {clips} clips", v.len()),
            });
        }
        Ok(())
    }

    pub fn power<S>(op: &'static str, p: &crate::backend::Tensor<S>) -> OpResult<[usize; 3]> {
        let s = clips_rows_cols(op, p)?;
        if s[2] != N_BINS {
            return Err(OpError::Shape {
                op,
                detail: format!(
                    "power must be [clips, frames, {N_BINS}], got {:?}",
                    p.shape()
                ),
            });
        }
        Ok(s)
    }

    pub fn fft<S>(
        x: &crate::backend::Tensor<S>,
        tw: &crate::backend::Tensor<S>,
    ) -> OpResult<(usize, usize)> {
        x.expect_dtype("fft", DType::F32)?;
        let (batch, n) = match *x.shape() {
            [b, n, 2] => (b, n),
            _ => {
                return Err(OpError::Shape {
                    op: "fft",
                    detail: format!("expected [batch, n, 2], got {:?}", x.shape()),
                })
            }
        };
        if !n.is_power_of_two() || n > 1024 {
            return Err(OpError::Invalid {
                op: "fft",
                detail: format!("size {n} must be a power of two ≤ 1024"),
            });
        }
        if tw.shape() != [2 * n, 2] {
            return Err(OpError::Shape {
                op: "fft",
                detail: format!("twiddles must be [{}, 2], got {:?}", 2 * n, tw.shape()),
            });
        }
        Ok((batch, n))
    }

    pub fn delta(width: usize, order: u32, valid: &[u32]) -> OpResult<()> {
        if width < 3 || width % 2 == 0 || !(1..=2).contains(&order) {
            return Err(OpError::Invalid {
                op: "delta",
                detail: format!("width {width} (odd, ≥ 3) and order {order} (1 or 2)"),
            });
        }
        if let Some(v) = valid.iter().find(|&&v| (v as usize) < width) {
            return Err(OpError::Invalid {
                op: "delta",
                detail: format!("a clip has {v} frames, fewer than the delta width {width}"),
            });
        }
        Ok(())
    }
}
