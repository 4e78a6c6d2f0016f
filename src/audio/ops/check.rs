//! The contracts of the audio ops: one check function per op, called once by the public op
//! methods of [`super::AudioOps`] before the backend's kernel runs. The dims structs they
//! return can only be built here.

use crate::audio::N_BINS;
use crate::backend::{DType, OpResult, Tensor};
use crate::error::OpError;

/// `[clips, rows, cols]` of a checked f32 feature tensor (for spectra: `[clips, frames, bins]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClipDims {
    dims: [usize; 3],
}

impl ClipDims {
    pub fn dims(&self) -> [usize; 3] {
        self.dims
    }
}

/// `(clips, samples)` of a checked `pcm [clips, samples]` batch with its `valid [clips]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmDims {
    clips: usize,
    samples: usize,
}

impl PcmDims {
    pub fn clips(&self) -> usize {
        self.clips
    }
    pub fn samples(&self) -> usize {
        self.samples
    }
}

/// `(batch, n)` of a checked FFT input `[batch, n, 2]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FftDims {
    batch: usize,
    n: usize,
}

impl FftDims {
    pub fn batch(&self) -> usize {
        self.batch
    }
    pub fn n(&self) -> usize {
        self.n
    }
}

/// The dims of a checked MFCC input `[clips, mels, frames]` and the DCT's output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MfccDims {
    mel: ClipDims,
    n_out: usize,
}

impl MfccDims {
    /// `[clips, mels, frames]` of the mel spectrogram.
    pub fn mel(&self) -> [usize; 3] {
        self.mel.dims
    }
    /// MFCC per frame (rows of the DCT).
    pub fn n_out(&self) -> usize {
        self.n_out
    }
}

pub fn clips_rows_cols<S>(op: &'static str, x: &Tensor<S>) -> OpResult<ClipDims> {
    x.expect_dtype(op, DType::F32)?;
    match *x.shape() {
        [a, b, c] => Ok(ClipDims { dims: [a, b, c] }),
        _ => Err(OpError::Shape {
            op,
            detail: format!("expected [clips, rows, frames], got {:?}", x.shape()),
        }),
    }
}

pub fn valid<S>(op: &'static str, v: &Tensor<S>, clips: usize) -> OpResult<()> {
    v.expect_dtype(op, DType::U32)?;
    if v.len() != clips {
        return Err(OpError::Shape {
            op,
            detail: format!("valid has {} entries for {clips} clips", v.len()),
        });
    }
    Ok(())
}

/// An f32 `pcm [clips, samples]` batch with its `valid [clips]` frame counts, framed into
/// `frames` frames: at most `n_frames(samples)`, the frames the samples have (more would read
/// past each clip's row).
pub fn pcm<S>(
    op: &'static str,
    pcm: &Tensor<S>,
    v: &Tensor<S>,
    frames: usize,
) -> OpResult<PcmDims> {
    pcm.expect_dtype(op, DType::F32)?;
    let (clips, samples) = match *pcm.shape() {
        [c, n] => (c, n),
        _ => {
            return Err(OpError::Shape {
                op,
                detail: format!("pcm must be [clips, samples], got {:?}", pcm.shape()),
            })
        }
    };
    valid(op, v, clips)?;
    if frames > crate::audio::n_frames(samples) {
        return Err(OpError::Invalid {
            op,
            detail: format!(
                "{frames} frames asked of {samples} samples, which have {}",
                crate::audio::n_frames(samples)
            ),
        });
    }
    Ok(PcmDims { clips, samples })
}

pub fn power<S>(op: &'static str, p: &Tensor<S>) -> OpResult<ClipDims> {
    let s = clips_rows_cols(op, p)?;
    if s.dims[2] != N_BINS {
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

/// A power spectrogram with its `valid [clips]` frame counts.
pub fn power_valid<S>(op: &'static str, p: &Tensor<S>, v: &Tensor<S>) -> OpResult<ClipDims> {
    let s = power(op, p)?;
    valid(op, v, s.dims[0])?;
    Ok(s)
}

/// A mel spectrogram `[clips, mels, frames]` and a DCT `[n_out, mels]` that fits it.
pub fn mfcc<S>(dct: &Tensor<S>, mel: &Tensor<S>) -> OpResult<MfccDims> {
    let d = clips_rows_cols("mfcc", mel)?;
    let rows = d.dims[1];
    let n_out = match *dct.shape() {
        [o, i] if i == rows => o,
        _ => {
            return Err(OpError::Shape {
                op: "mfcc",
                detail: format!("DCT {:?} does not fit {rows} mel bands", dct.shape()),
            })
        }
    };
    dct.expect_dtype("mfcc", DType::F32)?;
    Ok(MfccDims { mel: d, n_out })
}

/// Every part f32 (the packing ops).
pub fn parts<S>(op: &'static str, parts: &[&Tensor<S>]) -> OpResult<()> {
    parts
        .iter()
        .try_for_each(|p| p.expect_dtype(op, DType::F32))
}

pub fn fft<S>(x: &Tensor<S>, tw: &Tensor<S>) -> OpResult<FftDims> {
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
    tw.expect_dtype("fft", DType::F32)?;
    Ok(FftDims { batch, n })
}

/// `delta`'s tensors and parameters: odd `width ≥ 3`, `order` 1 or 2.
pub fn delta<S>(x: &Tensor<S>, v: &Tensor<S>, width: usize, order: u32) -> OpResult<ClipDims> {
    let d = clips_rows_cols("delta", x)?;
    valid("delta", v, d.dims[0])?;
    if width < 3 || width.is_multiple_of(2) || !(1..=2).contains(&order) {
        return Err(OpError::Invalid {
            op: "delta",
            detail: format!("width {width} (odd, ≥ 3) and order {order} (1 or 2)"),
        });
    }
    Ok(d)
}

/// Every clip has at least `width` valid frames, and at most the tensor's `frames`. Needs the
/// counts on the host: the CPU checks them in its kernel (a GPU check would cost a read-back per
/// call; its kernel takes a count past the row as the row).
pub fn delta_frames(width: usize, frames: usize, valid: &[u32]) -> OpResult<()> {
    if let Some(v) = valid.iter().find(|&&v| v as usize > frames) {
        return Err(OpError::Invalid {
            op: "delta",
            detail: format!("a clip has {v} valid frames, more than the tensor's {frames}"),
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
