//! The feature kernels against independent f64 oracles written here.

use ainrnn::audio::features::{extract_batch, ClipFeatures};
use ainrnn::audio::ops::{AudioOps, AudioPlan};
use ainrnn::audio::stft::{hann, twiddles};
use ainrnn::audio::{n_frames, HOP, N_BINS, N_FFT};
use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::Backend;
use rand::Rng;

use crate::common::{assert_close, rel_l2, rng, uniform, Tol};

fn naive_dft(re: &[f64], im: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = re.len();
    let mut or = vec![0.0; n];
    let mut oi = vec![0.0; n];
    for k in 0..n {
        for m in 0..n {
            let a = -2.0 * std::f64::consts::PI * ((k * m) % n) as f64 / n as f64;
            let (s, c) = a.sin_cos();
            or[k] += re[m] * c - im[m] * s;
            oi[k] += re[m] * s + im[m] * c;
        }
    }
    (or, oi)
}

/// Complex FFT at every power-of-two size up to 1,024 (the STFT uses 1,024), batched.
pub fn fft_every_size_against_naive_dft<B: AudioOps>(b: &B) {
    let mut r = rng(11);
    for log2n in 0..=10 {
        let n = 1usize << log2n;
        let batch = if n >= 512 { 2 } else { 3 };
        let x = uniform(&mut r, batch * n * 2, -1.0, 1.0);
        let xt = b.upload_f32(&x, &[batch, n, 2]).unwrap();
        let tw = b.upload_f32(&twiddles(2 * n), &[2 * n, 2]).unwrap();
        let got = b.to_f32(&b.fft(&xt, &tw).unwrap()).unwrap();
        let mut want = Vec::new();
        for row in x.chunks_exact(2 * n) {
            let re: Vec<f64> = row.iter().step_by(2).map(|&v| v as f64).collect();
            let im: Vec<f64> = row.iter().skip(1).step_by(2).map(|&v| v as f64).collect();
            let (or, oi) = naive_dft(&re, &im);
            for k in 0..n {
                want.push(or[k]);
                want.push(oi[k]);
            }
        }
        // Sums of n terms of magnitude ≤ 1: absolute error grows like √n·log n·ε.
        let tol = Tol {
            rel: 1e-5,
            abs: 2e-6 * (n as f64).sqrt() * (log2n.max(1) as f64),
        };
        assert_close(&format!("fft n={n}"), &got, &want, tol);
    }
}

/// The GPU FFT against rustfft at every size.
pub fn fft_against_rustfft<B: AudioOps>(b: &B) {
    let cpu = CpuBackend::new();
    let mut r = rng(12);
    for log2n in 0..=10 {
        let n = 1usize << log2n;
        let x = uniform(&mut r, 4 * n * 2, -1.0, 1.0);
        let tw = twiddles(2 * n);
        let got = b
            .to_f32(
                &b.fft(
                    &b.upload_f32(&x, &[4, n, 2]).unwrap(),
                    &b.upload_f32(&tw, &[2 * n, 2]).unwrap(),
                )
                .unwrap(),
            )
            .unwrap();
        let want = cpu
            .to_f32(
                &cpu.fft(
                    &cpu.upload_f32(&x, &[4, n, 2]).unwrap(),
                    &cpu.upload_f32(&tw, &[2 * n, 2]).unwrap(),
                )
                .unwrap(),
            )
            .unwrap();
        let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
        assert!(
            rel_l2(&got, &want) < 1e-6,
            "fft n={n} vs rustfft: {}",
            rel_l2(&got, &want)
        );
    }
}

/// |DFT|² of one centred, windowed frame in f64.
fn frame_power(x: &[f32], t: usize) -> Vec<f64> {
    let w = hann(N_FFT);
    let start = (t * HOP) as isize - (N_FFT / 2) as isize;
    let re: Vec<f64> = (0..N_FFT)
        .map(|m| {
            let i = start + m as isize;
            if i >= 0 && (i as usize) < x.len() {
                x[i as usize] as f64 * w[m] as f64
            } else {
                0.0
            }
        })
        .collect();
    let (or, oi) = naive_dft(&re, &vec![0.0; N_FFT]);
    (0..N_BINS).map(|k| or[k] * or[k] + oi[k] * oi[k]).collect()
}

/// STFT power of two clips of different lengths in one batch: first, middle, last frames and
/// the zeroed frames past the shorter clip.
pub fn stft_power_against_naive_dft<B: AudioOps>(b: &B) {
    let plan = AudioPlan::new(b).unwrap();
    let mut r = rng(13);
    let lens = [5000usize, 3 * HOP + 17];
    let len = lens[0];
    let frames = n_frames(len);
    let mut pcm = vec![0f32; 2 * len];
    let clips: Vec<Vec<f32>> = lens
        .iter()
        .map(|&l| uniform(&mut r, l, -1.0, 1.0))
        .collect();
    for (c, x) in clips.iter().enumerate() {
        pcm[c * len..c * len + x.len()].copy_from_slice(x);
    }
    let valid: Vec<u32> = lens.iter().map(|&l| n_frames(l) as u32).collect();
    let p = b
        .stft_power(
            &plan,
            &b.upload_f32(&pcm, &[2, len]).unwrap(),
            &b.upload_u32(&valid, &[2]).unwrap(),
            frames,
        )
        .unwrap();
    assert_eq!(p.shape(), &[2, frames, N_BINS]);
    let p = b.to_f32(&p).unwrap();
    for (c, x) in clips.iter().enumerate() {
        for t in 0..frames {
            let got = &p[(c * frames + t) * N_BINS..(c * frames + t + 1) * N_BINS];
            if t >= valid[c] as usize {
                assert!(
                    got.iter().all(|&v| v == 0.0),
                    "clip {c} frame {t} past the clip is not zero"
                );
                continue;
            }
            if t == 0 || t == 4 || t + 1 == valid[c] as usize {
                let want = frame_power(x, t);
                let e = rel_l2(got, &want);
                assert!(e < 1e-5, "clip {c} frame {t}: relative L2 error {e}");
            }
        }
    }
}

/// Least-squares polynomial derivative in f64 (the definition savgol_filter implements).
#[allow(clippy::needless_range_loop)] // index-style linear algebra reads best here
fn lsq_derivative(y: &[f64], order: u32) -> f64 {
    // Fit y(j) = Σ a_p j^p, j = -4..4, p ≤ order; return (d/dj)^order at 0 = order!·a_order.
    let js: Vec<f64> = (-4..=4).map(|j| j as f64).collect();
    let p = order as usize + 1;
    let mut ata = vec![vec![0.0; p]; p];
    let mut aty = vec![0.0; p];
    for (j, &yv) in js.iter().zip(y) {
        for a in 0..p {
            aty[a] += j.powi(a as i32) * yv;
            for bb in 0..p {
                ata[a][bb] += j.powi((a + bb) as i32);
            }
        }
    }
    // Gaussian elimination (p ≤ 3).
    for i in 0..p {
        for k in i + 1..p {
            let f = ata[k][i] / ata[i][i];
            for c in 0..p {
                ata[k][c] -= f * ata[i][c];
            }
            aty[k] -= f * aty[i];
        }
    }
    let mut sol = vec![0.0; p];
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|c| ata[i][c] * sol[c]).sum();
        sol[i] = (aty[i] - s) / ata[i][i];
    }
    let fact = if order == 2 { 2.0 } else { 1.0 };
    fact * sol[order as usize]
}

pub fn delta_against_polynomial_fit<B: AudioOps>(b: &B) {
    let mut r = rng(14);
    let (clips, rows, frames) = (2usize, 3usize, 23usize);
    let valid = [23u32, 9];
    let x = uniform(&mut r, clips * rows * frames, -5.0, 5.0);
    let xt = b.upload_f32(&x, &[clips, rows, frames]).unwrap();
    let vt = b.upload_u32(&valid, &[clips]).unwrap();
    for order in [1u32, 2] {
        let got = b.to_f32(&b.delta(&xt, &vt, 9, order).unwrap()).unwrap();
        let mut want = vec![0.0f64; x.len()];
        for c in 0..clips {
            let v = valid[c] as usize;
            for rr in 0..rows {
                let row = &x[(c * rows + rr) * frames..];
                for t in 0..v {
                    let centre = t.clamp(4, v - 5);
                    let y: Vec<f64> = (0..9).map(|j| row[centre + j - 4] as f64).collect();
                    want[(c * rows + rr) * frames + t] = lsq_derivative(&y, order);
                }
            }
        }
        assert_close(
            &format!("delta order {order}"),
            &got,
            &want,
            Tol {
                rel: 1e-5,
                abs: 1e-5,
            },
        );
    }
    // Too few frames, or more than the row has, is an error, not garbage (checked where the
    // valid counts are on the host); on the GPU a count past the row reads as the row: no
    // window reaches into the next row.
    let long = b.upload_u32(&[23, 40], &[2]).unwrap();
    if b.kind() == ainrnn::backend::BackendKind::Cpu {
        let short = b.upload_u32(&[8, 9], &[2]).unwrap();
        assert!(b.delta(&xt, &short, 9, 1).is_err());
        let e = b.delta(&xt, &long, 9, 1).unwrap_err().to_string();
        assert!(e.contains("more than the tensor's 23"), "{e}");
    } else {
        let whole = b.upload_u32(&[23, 23], &[2]).unwrap();
        let want = b.to_f32(&b.delta(&xt, &whole, 9, 1).unwrap()).unwrap();
        let got = b.to_f32(&b.delta(&xt, &long, 9, 1).unwrap()).unwrap();
        assert_eq!(got, want);
    }
}

/// Asking the STFT for more frames than the samples have is an error on both backends (the CPU
/// sliced past each clip's row and panicked).
pub fn stft_frames_beyond_the_samples_are_refused<B: AudioOps>(b: &B) {
    let plan = AudioPlan::new(b).unwrap();
    let n = 4 * HOP;
    let pcm = b.upload_f32(&vec![0.1; n], &[1, n]).unwrap();
    let valid = b.upload_u32(&[n_frames(n) as u32], &[1]).unwrap();
    assert!(b.stft_power(&plan, &pcm, &valid, n_frames(n)).is_ok());
    for frames in [n_frames(n) + 1, n_frames(n) + 3] {
        let e = b
            .stft_power(&plan, &pcm, &valid, frames)
            .unwrap_err()
            .to_string();
        assert!(e.contains("frames asked of"), "{e}");
    }
}

pub fn power_to_db_per_clip_floor<B: AudioOps>(b: &B) {
    // Clip 0 spans 1e-12..1e2 (floor at 20 − 80 = −60 dB); clip 1 is all zero (amin → −100 dB).
    let x: Vec<f32> = vec![1e2, 1e-3, 1e-12, 1.0, 0.0, 0.0, 0.0, 0.0];
    let got = b
        .to_f32(
            &b.power_to_db(&b.upload_f32(&x, &[2, 2, 2]).unwrap(), 1e-10, 80.0)
                .unwrap(),
        )
        .unwrap();
    let want = [20.0, -30.0, -60.0, 0.0, -100.0, -100.0, -100.0, -100.0];
    assert_close(
        "power_to_db",
        &got,
        &want,
        Tol {
            rel: 1e-5,
            abs: 1e-4,
        },
    );
}

/// A pure tone at A4 = 440 Hz puts the HPCP maximum (1) on pitch class 0 (A, the reference),
/// and C5 (523.25 Hz) on class 3.
pub fn hpcp_of_pure_tones<B: AudioOps>(b: &B) {
    let plan = AudioPlan::new(b).unwrap();
    let sr = 22050.0f64;
    let n = 8 * HOP + 1;
    let mut pcm = Vec::new();
    for f in [440.0f64, 523.2511] {
        pcm.extend(
            (0..n).map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / sr).sin() as f32 * 0.5),
        );
    }
    let frames = n_frames(n);
    let valid = b.upload_u32(&[frames as u32, frames as u32], &[2]).unwrap();
    let p = b
        .stft_power(&plan, &b.upload_f32(&pcm, &[2, n]).unwrap(), &valid, frames)
        .unwrap();
    let h = b.to_f32(&b.hpcp(&plan, &p, &valid).unwrap()).unwrap();
    for (c, class) in [(0usize, 0usize), (1, 3)] {
        let t = frames / 2;
        let col: Vec<f32> = (0..12).map(|k| h[(c * 12 + k) * frames + t]).collect();
        let arg = col
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|x| x.0)
            .unwrap();
        assert_eq!(arg, class, "clip {c}: hpcp {col:?}");
        assert!((col[class] - 1.0).abs() < 1e-6, "unit max: {col:?}");
    }
}

pub fn real_and_random_clips() -> Vec<Vec<f32>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/audio");
    let mut clips = Vec::new();
    for f in ["singularity_awakening_30s.wav", "gtzan_country.00000.wav"] {
        clips.push(
            ainrnn::audio::decode::load(&root.join(f), Some(1.5))
                .unwrap()
                .samples,
        );
    }
    let mut r = rng(15);
    for len in [9 * HOP, 20_000] {
        // Noise with a slow envelope so the dB floor matters.
        clips.push(
            (0..len)
                .map(|i| r.random_range(-1.0f32..1.0) * (1.0 + (i as f32 / 3000.0).sin()) * 0.3)
                .collect(),
        );
    }
    clips
}

pub fn features<B: AudioOps>(b: &B, clips: &[Vec<f32>]) -> Vec<ClipFeatures> {
    let plan = AudioPlan::new(b).unwrap();
    let refs: Vec<&[f32]> = clips.iter().map(|c| c.as_slice()).collect();
    extract_batch(b, &plan, &refs, None).unwrap()
}

/// Every feature on the GPU against the CPU (relative L2 ≤ 1e-4; HPCP ≤ 1e-3 because a peak
/// whose neighbours tie in f32 may resolve differently).
pub fn gpu_matches_cpu<B: AudioOps>(g: &B) {
    let clips = real_and_random_clips();
    let want = features(&CpuBackend::new(), &clips);
    let got = features(g, &clips);
    for (c, (w, gf)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w.frames, gf.frames);
        for (name, a, bb, tol) in [
            ("mel", &gf.mel, &w.mel, 1e-4),
            ("mfcc", &gf.mfcc, &w.mfcc, 1e-4),
            ("mfcc_delta", &gf.mfcc_delta, &w.mfcc_delta, 1e-4),
            ("mfcc_delta2", &gf.mfcc_delta2, &w.mfcc_delta2, 1e-4),
            ("hfc", &gf.hfc, &w.hfc, 1e-4),
            ("hpcp", &gf.hpcp, &w.hpcp, 1e-3),
        ] {
            let wd: Vec<f64> = bb.iter().map(|&v| v as f64).collect();
            let e = rel_l2(a, &wd);
            assert!(
                e <= tol,
                "clip {c} {name}: GPU vs CPU relative L2 {e} > {tol}"
            );
        }
    }
}

/// The fused entry points against the separate ops they stand for, on real and random clips of
/// mixed lengths: `spectral` (padded batch) and `spectral_of_clips` (clips in place) against
/// `stft_power` → `mel_spectrogram` / `hfc` / `hpcp`; `mfcc` against `power_to_db` + DCT
/// matmul; `read_packed` against `concat` + read-back; `upload_f32_vec` against `upload_f32`.
pub fn fused_ops_match_separate_ops<B: AudioOps>(b: &B) {
    use ainrnn::audio::ops::pad_clips;
    use ainrnn::audio::{AMIN, TOP_DB};
    let plan = AudioPlan::new(b).unwrap();
    let clips = real_and_random_clips();
    let refs: Vec<&[f32]> = clips.iter().map(|c| c.as_slice()).collect();
    let len = refs.iter().map(|c| c.len()).max().unwrap();
    let frames = n_frames(len);
    let valid: Vec<u32> = refs.iter().map(|c| n_frames(c.len()) as u32).collect();
    let pcm = pad_clips(&refs, len);
    assert_eq!(pcm.len(), refs.len() * len);
    let pcm_t = b.upload_f32_vec(pcm.clone(), &[refs.len(), len]).unwrap();
    assert_eq!(b.to_f32(&pcm_t).unwrap(), pcm);
    let valid_t = b.upload_u32(&valid, &[refs.len()]).unwrap();

    let power = b.stft_power(&plan, &pcm_t, &valid_t, frames).unwrap();
    let want = |t: &ainrnn::backend::BTensor<B>| -> Vec<f64> {
        b.to_f32(t).unwrap().iter().map(|&v| v as f64).collect()
    };
    let mel = want(&b.mel_spectrogram(&plan, &power).unwrap());
    let hfc = want(&b.hfc(&plan, &power).unwrap());
    let hpcp = want(&b.hpcp(&plan, &power, &valid_t).unwrap());
    for (name, s) in [
        (
            "spectral",
            b.spectral(&plan, &pcm_t, &valid_t, frames, true).unwrap(),
        ),
        (
            "spectral_of_clips",
            b.spectral_of_clips(&plan, &refs, true).unwrap(),
        ),
    ] {
        assert_eq!(s.mel.shape(), &[refs.len(), ainrnn::audio::N_MELS, frames]);
        let e = rel_l2(&b.to_f32(&s.mel).unwrap(), &mel);
        assert!(e < 1e-5, "{name} mel: relative L2 {e}");
        let e = rel_l2(&b.to_f32(s.hfc.as_ref().unwrap()).unwrap(), &hfc);
        assert!(e < 1e-5, "{name} hfc: relative L2 {e}");
        let e = rel_l2(&b.to_f32(s.hpcp.as_ref().unwrap()).unwrap(), &hpcp);
        assert!(e < 1e-4, "{name} hpcp: relative L2 {e}");
    }
    let mel_only = b.spectral_of_clips(&plan, &refs, false).unwrap();
    assert!(mel_only.hfc.is_none() && mel_only.hpcp.is_none());

    let mel_t = mel_only.mel;
    let mfcc = b
        .to_f32(&b.mfcc(&plan, &mel_t, AMIN, TOP_DB).unwrap())
        .unwrap();
    let db = b.power_to_db(&mel_t, AMIN, TOP_DB).unwrap();
    let want_mfcc = want(&b.matmul(&plan.dct, &db, false, false).unwrap());
    let e = rel_l2(&mfcc, &want_mfcc);
    assert!(e < 1e-5, "mfcc: relative L2 {e}");

    let parts = [&mel_t, &db];
    let packed = b.read_packed(&parts).unwrap();
    assert_eq!(packed, b.to_f32(&b.concat(&parts).unwrap()).unwrap());
}
