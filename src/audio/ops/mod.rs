//! Audio feature ops, a trait of their own on top of [`Backend`] (the core trait stays
//! music-free). Both backends implement it: the CPU with realfft, rayon and the sparse mel
//! bank; the GPU with the WGSL kernels in `shaders/fft.wgsl` and `shaders/audio.wgsl`. Dense
//! products (DCT, and on the GPU the mel bank and HFC) reuse [`Backend::matmul`].
//!
//! Layouts: a batch of clips is `[clips, samples]` (zero-padded to the longest), spectra are
//! `[clips, frames, bins]`, features `[clips, features, frames]` (librosa's orientation per
//! clip). `valid` is a `[clips]` u32 tensor of each clip's own frame count; frames past it are
//! zero in the spectra and in the deltas.

pub mod check;
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

use check::{ClipDims, FftDims, MfccDims, PcmDims};

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
        let bank = MelBank::new(sr, N_FFT, N_MELS)?;
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

/// The feature ops. Every op validates its arguments once, here (the contracts live in
/// [`check`]); a backend implements only the `_kernel` methods, which run on validated
/// arguments.
pub trait AudioOps: Backend {
    // ==== what a backend implements ==========================================================

    /// Kernel of [`AudioOps::spectral`]. The default is
    /// [`stft_power`](Self::stft_power_kernel) followed by
    /// [`mel_spectrogram`](Self::mel_spectrogram), [`hfc`](Self::hfc) and [`hpcp`](Self::hpcp)
    /// (the GPU keeps the power spectrogram on the device); the CPU overrides it with one pass
    /// per frame while the spectrum is in cache, never storing the power spectrogram.
    fn spectral_kernel(
        &self,
        plan: &AudioPlan<Self>,
        pcm: &BTensor<Self>,
        valid: &BTensor<Self>,
        frames: usize,
        hfc_hpcp: bool,
        d: &PcmDims,
    ) -> OpResult<Spectral<Self>> {
        let power = self.stft_power_kernel(plan, pcm, valid, frames, d)?;
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

    /// Kernel of [`AudioOps::spectral_of_clips`]. The default pads the clips into one buffer and
    /// uploads it; the CPU reads them where they are (no padded copy).
    fn spectral_of_clips_kernel(
        &self,
        plan: &AudioPlan<Self>,
        clips: &[&[f32]],
        hfc_hpcp: bool,
    ) -> OpResult<Spectral<Self>> {
        let (len, valid) = clip_frames(clips);
        let pcm = self.upload_f32_vec(pad_clips(clips, len), &[clips.len(), len])?;
        let valid = self.upload_u32(&valid, &[clips.len()])?;
        self.spectral(plan, &pcm, &valid, n_frames(len), hfc_hpcp)
    }

    /// Kernel of [`AudioOps::mfcc`]. The default is [`power_to_db`](Self::power_to_db) then
    /// [`Backend::matmul`]; the CPU does both clip by clip in a per-thread buffer instead of a
    /// whole dB copy.
    fn mfcc_kernel(
        &self,
        plan: &AudioPlan<Self>,
        mel: &BTensor<Self>,
        amin: f32,
        top_db: f32,
        _d: &MfccDims,
    ) -> OpResult<BTensor<Self>> {
        let db = self.power_to_db(mel, amin, top_db)?;
        self.matmul(&plan.dct, &db, false, false)
    }

    /// Kernel of [`AudioOps::upload_f32_vec`] (the CPU keeps the buffer, no copy).
    fn upload_f32_vec_kernel(&self, data: Vec<f32>, shape: &[usize]) -> OpResult<BTensor<Self>> {
        self.upload_f32_kernel(&data, shape)
    }

    /// Kernel of [`AudioOps::read_packed`]. The default is [`concat`](Self::concat) and one
    /// read-back (one transfer per batch on the GPU); the CPU copies each part once.
    fn read_packed_kernel(&self, parts: &[&BTensor<Self>]) -> OpResult<Vec<f32>> {
        self.to_f32(&self.concat(parts)?)
    }

    /// Kernel of [`AudioOps::stft_power`].
    fn stft_power_kernel(
        &self,
        plan: &AudioPlan<Self>,
        pcm: &BTensor<Self>,
        valid: &BTensor<Self>,
        frames: usize,
        d: &PcmDims,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`AudioOps::mel_spectrogram`].
    fn mel_spectrogram_kernel(
        &self,
        plan: &AudioPlan<Self>,
        power: &BTensor<Self>,
        d: &ClipDims,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`AudioOps::hfc`].
    fn hfc_kernel(
        &self,
        plan: &AudioPlan<Self>,
        power: &BTensor<Self>,
        d: &ClipDims,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`AudioOps::power_to_db`].
    fn power_to_db_kernel(
        &self,
        x: &BTensor<Self>,
        amin: f32,
        top_db: f32,
        d: &ClipDims,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`AudioOps::delta`].
    fn delta_kernel(
        &self,
        x: &BTensor<Self>,
        valid: &BTensor<Self>,
        width: usize,
        order: u32,
        d: &ClipDims,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`AudioOps::hpcp`].
    fn hpcp_kernel(
        &self,
        plan: &AudioPlan<Self>,
        power: &BTensor<Self>,
        valid: &BTensor<Self>,
        d: &ClipDims,
    ) -> OpResult<BTensor<Self>>;

    /// Kernel of [`AudioOps::concat`].
    fn concat_kernel(&self, parts: &[&BTensor<Self>]) -> OpResult<BTensor<Self>>;

    /// Kernel of [`AudioOps::fft`].
    fn fft_kernel(
        &self,
        x: &BTensor<Self>,
        twiddles: &BTensor<Self>,
        d: &FftDims,
    ) -> OpResult<BTensor<Self>>;

    // ==== the op API: contract, then kernel ==================================================

    /// Everything the pipeline takes from the power spectrum: the mel spectrogram and, with
    /// `hfc_hpcp`, HFC and HPCP, from `pcm [clips, samples]` (frames `≥ valid[c]` zero).
    fn spectral(
        &self,
        plan: &AudioPlan<Self>,
        pcm: &BTensor<Self>,
        valid: &BTensor<Self>,
        frames: usize,
        hfc_hpcp: bool,
    ) -> OpResult<Spectral<Self>> {
        let d = check::pcm("spectral", pcm, valid, frames)?;
        self.spectral_kernel(plan, pcm, valid, frames, hfc_hpcp, &d)
    }

    /// [`spectral`](Self::spectral) of clips still on the host (mono, any lengths): the batch
    /// is `[clips, longest]` with `frames = n_frames(longest)` and each clip's own frame count
    /// as `valid`. Any host clips are valid input.
    fn spectral_of_clips(
        &self,
        plan: &AudioPlan<Self>,
        clips: &[&[f32]],
        hfc_hpcp: bool,
    ) -> OpResult<Spectral<Self>> {
        self.spectral_of_clips_kernel(plan, clips, hfc_hpcp)
    }

    /// MFCC of a mel spectrogram: `power_to_db(mel, amin, top_db)` (floor per clip), then the
    /// DCT `plan.dct` on every frame: `[clips, N_MELS, frames]` → `[clips, N_MFCC, frames]`.
    fn mfcc(
        &self,
        plan: &AudioPlan<Self>,
        mel: &BTensor<Self>,
        amin: f32,
        top_db: f32,
    ) -> OpResult<BTensor<Self>> {
        let d = check::mfcc(&plan.dct, mel)?;
        self.mfcc_kernel(plan, mel, amin, top_db, &d)
    }

    /// Uploads an owned buffer.
    fn upload_f32_vec(&self, data: Vec<f32>, shape: &[usize]) -> OpResult<BTensor<Self>> {
        crate::backend::check::shape_len("upload_f32", shape, data.len())?;
        self.upload_f32_vec_kernel(data, shape)
    }

    /// Reads f32 tensors back as one flat vector, in order.
    fn read_packed(&self, parts: &[&BTensor<Self>]) -> OpResult<Vec<f32>> {
        check::parts("read_packed", parts)?;
        self.read_packed_kernel(parts)
    }

    /// Power spectrogram `|STFT|²`: `pcm [clips, samples]` → `[clips, frames, N_BINS]`, frames
    /// `≥ valid[c]` zeroed.
    fn stft_power(
        &self,
        plan: &AudioPlan<Self>,
        pcm: &BTensor<Self>,
        valid: &BTensor<Self>,
        frames: usize,
    ) -> OpResult<BTensor<Self>> {
        let d = check::pcm("stft_power", pcm, valid, frames)?;
        self.stft_power_kernel(plan, pcm, valid, frames, &d)
    }

    /// Mel spectrogram: `[clips, frames, N_BINS]` → `[clips, N_MELS, frames]`.
    fn mel_spectrogram(
        &self,
        plan: &AudioPlan<Self>,
        power: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>> {
        let d = check::power("mel_spectrogram", power)?;
        self.mel_spectrogram_kernel(plan, power, &d)
    }

    /// HFC of every frame: `power [clips, frames, N_BINS]` → `[clips, 1, frames]`.
    fn hfc(&self, plan: &AudioPlan<Self>, power: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        let d = check::power("hfc", power)?;
        self.hfc_kernel(plan, power, &d)
    }

    /// `power_to_db` with the floor taken per clip: `x [clips, rows, cols]` →
    /// `max(10·log10(max(x, amin)), clip_max − top_db)`.
    fn power_to_db(&self, x: &BTensor<Self>, amin: f32, top_db: f32) -> OpResult<BTensor<Self>> {
        let d = check::clips_rows_cols("power_to_db", x)?;
        self.power_to_db_kernel(x, amin, top_db, &d)
    }

    /// librosa `feature.delta(width, order)` along the last axis of `[clips, rows, frames]`,
    /// each clip over its own `valid` frames (at least `width`).
    fn delta(
        &self,
        x: &BTensor<Self>,
        valid: &BTensor<Self>,
        width: usize,
        order: u32,
    ) -> OpResult<BTensor<Self>> {
        let d = check::delta(x, valid, width, order)?;
        self.delta_kernel(x, valid, width, order, &d)
    }

    /// HPCP of every frame: `power [clips, frames, N_BINS]` → `[clips, 12, frames]`.
    fn hpcp(
        &self,
        plan: &AudioPlan<Self>,
        power: &BTensor<Self>,
        valid: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>> {
        let d = check::power_valid("hpcp", power, valid)?;
        self.hpcp_kernel(plan, power, valid, &d)
    }

    /// Concatenates f32 tensors into one flat tensor (one read-back per batch).
    fn concat(&self, parts: &[&BTensor<Self>]) -> OpResult<BTensor<Self>> {
        check::parts("concat", parts)?;
        self.concat_kernel(parts)
    }

    /// Forward complex FFT of each row of `x [batch, n, 2]` (interleaved re, im), `n` a power
    /// of two up to 1024; `twiddles` is `exp(-2πik/(2n))`, `[2n, 2]`. The STFT's kernel uses the
    /// same transform at `n = 1024`; this entry point exists to test it at every size.
    fn fft(&self, x: &BTensor<Self>, twiddles: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        let d = check::fft(x, twiddles)?;
        self.fft_kernel(x, twiddles, &d)
    }
}

/// The longest clip's length and each clip's own frame count: the batch geometry of
/// [`AudioOps::spectral_of_clips`].
pub fn clip_frames(clips: &[&[f32]]) -> (usize, Vec<u32>) {
    let len = clips.iter().map(|c| c.len()).max().unwrap_or(0);
    (
        len,
        clips.iter().map(|c| n_frames(c.len()) as u32).collect(),
    )
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
