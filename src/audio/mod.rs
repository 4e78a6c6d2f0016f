//! Audio features: decode (symphonia) → mono → resample to 22,050 Hz (rubato) → STFT, mel,
//! MFCC and its deltas, HFC, HPCP and the wavelet scattering transform → the HDF5
//! feature store.
//!
//! The per-frame algorithms live here as plain functions (`stft`, `mel`, `mfcc`, `hfc`, `hpcp`);
//! they are the CPU reference that [`ops::AudioOps`] implements on each backend.
//! `features` runs the batched pipeline against any backend, `store` reads and writes
//! `features.h5`.

pub mod decode;
pub mod features;
pub mod hfc;
pub mod hpcp;
pub mod job;
pub mod mel;
pub mod mfcc;
pub mod ops;
pub mod resample;
pub mod scattering;
pub mod stft;
pub mod store;

/// The audio kernels' shaders (the generic ones are [`crate::backend::gpu::SHADERS`]).
pub static SHADERS: [&crate::backend::gpu::Shader; 4] = [
    &ops::FFT,
    &ops::AUDIO,
    &scattering::gpu::FFT_LONG,
    &scattering::gpu::SCATTERING,
];

/// Sample rate every clip is resampled to (Hz).
pub const SAMPLE_RATE: u32 = 22_050;
/// FFT size of the STFT (librosa's default).
pub const N_FFT: usize = 2048;
/// Hop between frames (librosa's default).
pub const HOP: usize = 512;
/// Frequency bins of the one-sided spectrum.
pub const N_BINS: usize = N_FFT / 2 + 1;
/// Mel bands (librosa `melspectrogram` default).
pub const N_MELS: usize = 128;
/// MFCC coefficients kept.
pub const N_MFCC: usize = 20;
/// `power_to_db` floor, relative to the clip's maximum (dB).
pub const TOP_DB: f32 = 80.0;
/// `power_to_db` amplitude floor.
pub const AMIN: f32 = 1e-10;
/// Width of the Savitzky–Golay window of `delta`.
pub const DELTA_WIDTH: usize = 9;
/// HPCP bins (one per semitone).
pub const HPCP_SIZE: usize = 12;

/// Number of STFT frames librosa produces for `n` samples with centred frames.
pub fn n_frames(n: usize) -> usize {
    1 + n / HOP
}
