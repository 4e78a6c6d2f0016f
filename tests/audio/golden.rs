//! Both backends against librosa 0.11 and Essentia on the bundled real clips
//! (`tests/golden/golden.h5`, made by `tests/golden/make_golden.py`).

use std::path::{Path, PathBuf};

use ainrnn::audio::decode::load;
use ainrnn::audio::features::extract_batch;
use ainrnn::audio::ops::{AudioOps, AudioPlan};

use crate::common::rel_l2;

pub const CLIPS: [&str; 2] = ["singularity_awakening_30s", "gtzan_country.00000"];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn golden() -> hdf5::File {
    hdf5::File::open(root().join("tests/golden/golden.h5")).expect("tests/golden/golden.h5")
}

pub fn read(f: &hdf5::File, path: &str) -> Vec<f32> {
    f.dataset(path)
        .and_then(|d| d.read_raw::<f32>())
        .unwrap_or_else(|e| panic!("golden {path}: {e}"))
}

fn wav(stem: &str) -> PathBuf {
    Path::new("data/audio").join(format!("{stem}.wav"))
}

pub fn features_match_librosa_and_essentia<B: AudioOps>(b: &B) {
    let g = golden();
    let seconds = g
        .attr("seconds")
        .and_then(|a| a.read_scalar::<f64>())
        .unwrap();
    for lib in ["librosa", "essentia"] {
        assert!(g.attr(lib).is_ok(), "fixture records the {lib} version");
    }
    let mut clips = Vec::new();
    for stem in CLIPS {
        let d = load(&root().join(wav(stem)), Some(seconds)).unwrap();
        // Decode: exactly soundfile's x / 32768.
        let pcm = read(&g, &format!("{stem}/pcm"));
        assert_eq!(
            d.samples, pcm,
            "{stem}: decoded samples differ from soundfile's"
        );
        clips.push(d.samples);
    }
    let plan = AudioPlan::new(b).unwrap();
    let refs: Vec<&[f32]> = clips.iter().map(|c| c.as_slice()).collect();
    let feats = extract_batch(b, &plan, &refs, None).unwrap();
    for (stem, f) in CLIPS.iter().zip(&feats) {
        for (name, got, want_name, tol) in [
            ("mel", &f.mel, "mel", 1e-3),
            ("mfcc", &f.mfcc, "mfcc", 1e-3),
            ("mfcc_delta", &f.mfcc_delta, "mfcc_delta", 1e-3),
            ("mfcc_delta2", &f.mfcc_delta2, "mfcc_delta2", 1e-3),
            ("hfc", &f.hfc, "hfc", 1e-3),
            ("hfc (Essentia)", &f.hfc, "hfc_essentia", 1e-3),
            ("hpcp (Essentia)", &f.hpcp, "hpcp", 5e-2),
        ] {
            let want: Vec<f64> = read(&g, &format!("{stem}/{want_name}"))
                .iter()
                .map(|&v| v as f64)
                .collect();
            let e = rel_l2(got, &want);
            assert!(e <= tol, "{stem} {name}: relative L2 error {e} > {tol}");
        }
    }
}
