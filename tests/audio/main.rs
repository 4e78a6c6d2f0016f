//! Audio feature tests. Kernel tests are generic over the backend and emitted for `cpu::` and
//! `gpu::` (as in `tests/ops`); golden tests compare both backends with fixtures computed by
//! librosa 0.11 and Essentia (`tests/golden/make_golden.py`) on excerpts of the bundled real
//! clips; the rest covers decoding, resampling, the store and the `features` command.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod cli;
mod decode;
mod golden;
mod kernels;
mod store;

backend_tests! {
    kernels::fft_every_size_against_naive_dft => fft_every_size_against_naive_dft,
    kernels::stft_power_against_naive_dft => stft_power_against_naive_dft,
    kernels::delta_against_polynomial_fit => delta_against_polynomial_fit,
    kernels::stft_frames_beyond_the_samples_are_refused => stft_frames_beyond_the_samples_are_refused,
    kernels::power_to_db_per_clip_floor => power_to_db_per_clip_floor,
    kernels::hpcp_of_pure_tones => hpcp_of_pure_tones,
    kernels::fused_ops_match_separate_ops => fused_ops_match_separate_ops,
    golden::features_match_librosa_and_essentia => golden_features_match_librosa_and_essentia,
}

/// GPU against CPU for every feature, on real clips and random noise of mixed lengths.
#[test]
fn gpu_matches_cpu_for_every_feature() {
    if let Some(g) = common::gpu() {
        kernels::gpu_matches_cpu(&g);
    }
}

/// Every feature kernel gives the same bits whatever runtime checks naga compiled into it: one
/// that read past a workgroup array (which a clamp would hide) would differ between `none` and
/// `all`.
#[test]
fn gpu_features_are_the_same_to_the_bit_under_every_shader_check_setting() {
    let Some(gs) = common::gpu_per_shader_checks() else {
        return;
    };
    let clips = kernels::real_and_random_clips();
    let flat = |g: &ainrnn::backend::gpu::GpuBackend| -> Vec<Vec<f32>> {
        kernels::features(g, &clips)
            .into_iter()
            .flat_map(|f| [f.mel, f.mfcc, f.mfcc_delta, f.mfcc_delta2, f.hfc, f.hpcp])
            .collect()
    };
    common::same_under_every_shader_check(&gs, "the features", flat);
}

/// The GPU FFT against rustfft (as well as the naive DFT above) at every size.
#[test]
fn gpu_fft_matches_rustfft() {
    if let Some(g) = common::gpu() {
        kernels::fft_against_rustfft(&g);
    }
}
