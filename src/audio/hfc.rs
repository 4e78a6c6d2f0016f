//! High-frequency content per frame, Masri's definition as in Essentia's `HFC(type="Masri")`:
//! `Σ_k f_k · |X_k|²`, with `f_k = k · sr / n_fft` the bin frequency in Hz (Essentia's
//! `bin2hz = (sr/2) / (size − 1)` is the same number for a one-sided spectrum).

/// Bin frequencies `f_k` in Hz.
pub fn bin_freqs(sr: f64, n_fft: usize) -> Vec<f32> {
    (0..n_fft / 2 + 1)
        .map(|k| (k as f64 * sr / n_fft as f64) as f32)
        .collect()
}

/// HFC of one power-spectrum frame (f32, 8 lanes).
#[inline(always)]
pub fn hfc(power: &[f32], freqs: &[f32]) -> f32 {
    crate::backend::cpu::math::dot_f32(power, freqs)
}

/// HFC of [`TILE`](crate::audio::mel::TILE) frames stored bin-major (`power[k][f]`): a
/// sequential f32 sum over the bins per frame, the frames in the vector lanes.
#[inline(always)]
pub fn hfc_tile(
    power: &[[f32; crate::audio::mel::TILE]],
    freqs: &[f32],
) -> [f32; crate::audio::mel::TILE] {
    let mut acc = [0f32; crate::audio::mel::TILE];
    for (p, &fk) in power.iter().zip(freqs) {
        for (a, &v) in acc.iter_mut().zip(p) {
            *a += fk * v;
        }
    }
    acc
}
