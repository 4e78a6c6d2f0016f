//! Sample-rate conversion with rubato's synchronous FFT resampler (`FftFixedInOut`): the
//! signal is cut into blocks, each block's spectrum is multiplied by a windowed-sinc
//! anti-aliasing low-pass (Blackman–Harris², cut-off just below the lower Nyquist frequency)
//! and resized to the output rate, blocks are overlap-added. The fixed rate pair makes this
//! exact-ratio and high quality (comparable to soxr "HQ", librosa's default). The resampler's
//! delay is trimmed so output sample 0 lines up with input sample 0, and the output has
//! `ceil(n · out / in)` samples, as soxr gives.

use rubato::{FftFixedInOut, Resampler};

/// The sample rates resampled, and so those a file may declare ([`super::decode`] refuses a
/// header outside them): the resampler's FFT sizes grow with the rates' reduced ratio.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// What the store records as the resampler.
pub const DESCRIPTION: &str =
    "rubato 0.16 FftFixedInOut (synchronous FFT resampler, windowed-sinc anti-aliasing), skipped at 22,050 Hz";

/// Why [`resample`] refused or failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample from {from} Hz to {to} Hz (rates must be in {lo}..={hi} Hz)", lo = SAMPLE_RATES.start(), hi = SAMPLE_RATES.end())]
    Rate { from: u32, to: u32 },
    #[error("sample {index} is {value}, not a finite number")]
    NotFinite { index: usize, value: f32 },
    /// The resampler's own error (building it, or a block).
    #[error("resampling from {from} Hz to {to} Hz: {reason}")]
    Resampler { from: u32, to: u32, reason: String },
}

/// Resamples mono `x` from `from` Hz to `to` Hz. Returns `x` unchanged when the rates agree.
/// The rates must be in [`SAMPLE_RATES`] (1 Hz to 4 GHz aborted the process allocating
/// terabytes) and the samples finite.
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>, ResampleError> {
    if from == to {
        return Ok(x.to_vec());
    }
    if !SAMPLE_RATES.contains(&from) || !SAMPLE_RATES.contains(&to) {
        return Err(ResampleError::Rate { from, to });
    }
    // The FFT resampler panics on a NaN ("Imaginary part of first value was non-zero").
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(ResampleError::NotFinite {
            index: i,
            value: x[i],
        });
    }
    let mut r = FftFixedInOut::<f32>::new(from as usize, to as usize, 1024, 1).map_err(|e| {
        ResampleError::Resampler {
            from,
            to,
            reason: e.to_string(),
        }
    })?;
    let delay = r.output_delay();
    let want = ((x.len() as u64 * to as u64).div_ceil(from as u64)) as usize;
    let mut out: Vec<f32> = Vec::with_capacity(want + delay + r.output_frames_max());
    let mut block = vec![vec![0f32; r.output_frames_max()]];
    let mut pos = 0usize;
    while out.len() < want + delay {
        let need = r.input_frames_next();
        let res = if pos + need <= x.len() {
            let r2 = r.process_into_buffer(&[&x[pos..pos + need]], &mut block, None);
            pos += need;
            r2
        } else if pos < x.len() {
            let r2 = r.process_partial_into_buffer(Some(&[&x[pos..]]), &mut block, None);
            pos = x.len();
            r2
        } else {
            // Flush the tail out of the resampler's overlap buffer.
            r.process_partial_into_buffer(None::<&[&[f32]]>, &mut block, None)
        };
        let (_, produced) = res.map_err(|e| ResampleError::Resampler {
            from,
            to,
            reason: e.to_string(),
        })?;
        out.extend_from_slice(&block[0][..produced]);
    }
    out.drain(..delay);
    out.truncate(want);
    Ok(out)
}
