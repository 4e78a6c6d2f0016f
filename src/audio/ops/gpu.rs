//! Host side of `shaders/fft.wgsl` and `shaders/audio.wgsl`: the GPU implementation of
//! [`AudioOps`]. Everything stays on the device from the uploaded PCM to the packed features;
//! dense products (mel bank, DCT, HFC) go through the GEMM kernel.

use crate::audio::ops::check::{ClipDims, FftDims, PcmDims};
use crate::audio::ops::{clip_frames, AudioOps, AudioPlan, Spectral};
use crate::audio::{n_frames, N_BINS, N_FFT};
use crate::backend::gpu::pipeline::Kernel;
use crate::backend::gpu::shader::Shader;
use crate::backend::gpu::{raw, GpuBackend, GpuTensor};
use crate::backend::{Backend, DType, OpResult, ReduceOp};
use crate::error::OpError;

crate::kernel_params! {
    /// Parameters of `fft.wgsl`.
    struct FftParams {
        clips: u32,
        len: u32,
        frames: u32,
        hop: u32,
        n: u32,
        log2n: u32,
        batch: u32,
        _pad: u32,
    }
}

pub static FFT: Shader = crate::wgsl_shader!(
    "fft",
    FftParams,
    bindings: ["x", "window", "tw", "valid", "out"],
);

crate::kernel_params! {
    /// Parameters of `audio.wgsl`.
    struct Params {
        n: u32,
        clips: u32,
        rows: u32,
        frames: u32,
        offset: u32,
        half: u32,
        order: u32,
        bins: u32,
        amin: f32,
        top_db: f32,
        s1: f32,
        m2: f32,
        s2: f32,
        sr: f32,
        min_f: f32,
        max_f: f32,
        split_f: f32,
        ref_f: f32,
        max_peaks: u32,
        _pad: u32,
    }
}

pub static AUDIO: Shader = crate::wgsl_shader!(
    "audio",
    Params,
    bindings: ["x", "aux", "valid", "out"],
);

fn u32_of(op: &'static str, what: &'static str, v: usize) -> OpResult<u32> {
    u32::try_from(v).map_err(|_| OpError::Invalid {
        op,
        detail: format!("{what} = {v} exceeds u32"),
    })
}

impl GpuBackend {
    fn audio(
        &self,
        entry: &'static str,
        p: &Params,
        b: &[(&str, &GpuTensor)],
        n: u64,
    ) -> OpResult<()> {
        let bindings: Vec<_> = b.iter().map(|(i, t)| (*i, raw(t))).collect();
        self.context().dispatch(
            &Kernel::new(&AUDIO, entry),
            p,
            &bindings,
            self.grid(entry, n)?,
        )?;
        Ok(())
    }
}

impl AudioOps for GpuBackend {
    /// The clips padded straight into the upload's staging memory (the default pads a host copy
    /// first: for 256 clips of 30 s, 677 MB written once more).
    fn spectral_of_clips_kernel(
        &self,
        plan: &AudioPlan<Self>,
        clips: &[&[f32]],
        hfc_hpcp: bool,
    ) -> OpResult<Spectral<Self>> {
        let (len, valid) = clip_frames(clips);
        let pcm = self.upload_padded_rows(clips, len, "clips")?;
        let valid = self.upload_u32(&valid, &[clips.len()])?;
        self.spectral(plan, &pcm, &valid, n_frames(len), hfc_hpcp)
    }

    fn stft_power_kernel(
        &self,
        plan: &AudioPlan<Self>,
        pcm: &GpuTensor,
        valid: &GpuTensor,
        frames: usize,
        d: &PcmDims,
    ) -> OpResult<GpuTensor> {
        let (clips, len) = (d.clips(), d.samples());
        let out = self.empty(&[clips, frames, N_BINS], DType::F32, "stft power")?;
        let n = N_FFT / 2;
        let p = FftParams {
            clips: u32_of("stft_power", "clips", clips)?,
            len: u32_of("stft_power", "samples", len)?,
            frames: u32_of("stft_power", "frames", frames)?,
            hop: crate::audio::HOP as u32,
            n: n as u32,
            log2n: n.trailing_zeros(),
            ..Default::default()
        };
        self.context().dispatch(
            &Kernel::new(&FFT, "stft_power"),
            &p,
            &[
                ("x", raw(pcm)),
                ("window", raw(&plan.window)),
                ("tw", raw(&plan.twiddles)),
                ("valid", raw(valid)),
                ("out", raw(&out)),
            ],
            self.context().grid("stft_power", (clips * frames) as u64)?,
        )?;
        Ok(out)
    }

    fn mel_spectrogram_kernel(
        &self,
        plan: &AudioPlan<Self>,
        power: &GpuTensor,
        _d: &ClipDims,
    ) -> OpResult<GpuTensor> {
        // [n_mels, bins] · [clips, frames, bins]ᵀ = [clips, n_mels, frames]
        self.matmul(&plan.mel, power, false, true)
    }

    fn hfc_kernel(
        &self,
        plan: &AudioPlan<Self>,
        power: &GpuTensor,
        _d: &ClipDims,
    ) -> OpResult<GpuTensor> {
        // [1, bins] · [clips, frames, bins]ᵀ = [clips, 1, frames]
        self.matmul(&plan.freqs, power, false, true)
    }

    fn power_to_db_kernel(
        &self,
        x: &GpuTensor,
        amin: f32,
        top_db: f32,
        d: &ClipDims,
    ) -> OpResult<GpuTensor> {
        let [clips, rows, cols] = d.dims();
        let n = x.len();
        let dbv = self.empty(x.shape(), DType::F32, "db")?;
        let p = Params {
            n: u32_of("power_to_db", "elements", n)?,
            clips: clips as u32,
            rows: rows as u32,
            frames: cols as u32,
            amin,
            top_db,
            ..Default::default()
        };
        self.audio("db", &p, &[("x", x), ("out", &dbv)], n as u64)?;
        let max = self.reduce_rows(ReduceOp::Max, &dbv.clone().reshape(&[clips, rows * cols])?)?;
        let out = self.empty(x.shape(), DType::F32, "db floor")?;
        self.audio(
            "db_floor",
            &p,
            &[("x", &dbv), ("aux", &max), ("out", &out)],
            n as u64,
        )?;
        Ok(out)
    }

    fn delta_kernel(
        &self,
        x: &GpuTensor,
        valid: &GpuTensor,
        width: usize,
        order: u32,
        d: &ClipDims,
    ) -> OpResult<GpuTensor> {
        let [clips, rows, frames] = d.dims();
        let h = (width / 2) as i64;
        let s1: f64 = (-h..=h).map(|j| (j * j) as f64).sum();
        let m2 = s1 / width as f64;
        let s2: f64 = (-h..=h).map(|j| ((j * j) as f64 - m2).powi(2)).sum();
        let n = x.len();
        let out = self.empty(x.shape(), DType::F32, "delta")?;
        let p = Params {
            n: u32_of("delta", "elements", n)?,
            clips: clips as u32,
            rows: rows as u32,
            frames: frames as u32,
            half: h as u32,
            order,
            s1: s1 as f32,
            m2: m2 as f32,
            s2: s2 as f32,
            ..Default::default()
        };
        self.audio(
            "delta",
            &p,
            &[("x", x), ("valid", valid), ("out", &out)],
            n as u64,
        )?;
        Ok(out)
    }

    fn hpcp_kernel(
        &self,
        plan: &AudioPlan<Self>,
        power: &GpuTensor,
        valid: &GpuTensor,
        d: &ClipDims,
    ) -> OpResult<GpuTensor> {
        let [clips, frames, bins] = d.dims();
        let out = self.empty(&[clips, 12, frames], DType::F32, "hpcp")?;
        let c = &plan.hpcp;
        let p = Params {
            n: u32_of("hpcp", "frames", clips * frames)?,
            clips: clips as u32,
            frames: frames as u32,
            bins: bins as u32,
            sr: c.sample_rate,
            min_f: c.min_frequency,
            max_f: c.max_frequency,
            split_f: c.split_frequency,
            ref_f: c.reference_frequency,
            max_peaks: c.max_peaks,
            ..Default::default()
        };
        self.audio(
            "hpcp",
            &p,
            &[("x", power), ("valid", valid), ("out", &out)],
            (clips * frames) as u64,
        )?;
        Ok(out)
    }

    fn concat_kernel(&self, parts: &[&GpuTensor]) -> OpResult<GpuTensor> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let out = self.empty(&[total], DType::F32, "concat")?;
        let mut offset = 0usize;
        for part in parts {
            let p = Params {
                n: u32_of("concat", "elements", part.len())?,
                offset: u32_of("concat", "offset", offset)?,
                ..Default::default()
            };
            self.audio(
                "copy_at",
                &p,
                &[("x", part), ("out", &out)],
                part.len() as u64,
            )?;
            offset += part.len();
        }
        Ok(out)
    }

    fn fft_kernel(&self, x: &GpuTensor, twiddles: &GpuTensor, d: &FftDims) -> OpResult<GpuTensor> {
        let (batch, n) = (d.batch(), d.n());
        let out = self.empty(x.shape(), DType::F32, "fft")?;
        let p = FftParams {
            n: n as u32,
            log2n: n.trailing_zeros(),
            batch: u32_of("fft", "batch", batch)?,
            ..Default::default()
        };
        self.context().dispatch(
            &Kernel::new(&FFT, "fft_c2c"),
            &p,
            &[("x", raw(x)), ("tw", raw(twiddles)), ("out", raw(&out))],
            self.context().grid("fft", batch as u64)?,
        )?;
        Ok(out)
    }
}
