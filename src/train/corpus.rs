//! From the dataset file to what the models consume: histories, song features (the chosen
//! subset of columns), portraits, and the train / validation / test examples of a fold.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::metrics::Catalogue;
use super::Corpus;
use crate::data::vectors::msd_names;
use crate::data::Dataset;
use crate::error::Error;
use crate::model::batch::{Example, PortraitTable};

/// Which song-vector columns feed the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureSet {
    /// Every column the dataset has.
    All,
    /// Columns from the audio stage (features.h5).
    Audio,
    /// Columns from the MSD analysis (timbre, pitches, tempo, …).
    Msd,
    /// Audio columns derived from MFCCs.
    Mfcc,
    /// Audio columns derived from the scattering transform.
    Scattering,
    /// No song features: learned embeddings only.
    None,
}

impl std::str::FromStr for FeatureSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "all" => FeatureSet::All,
            "audio" => FeatureSet::Audio,
            "msd" => FeatureSet::Msd,
            "mfcc" => FeatureSet::Mfcc,
            "scattering" => FeatureSet::Scattering,
            "none" => FeatureSet::None,
            o => {
                return Err(format!(
                    "unknown feature set {o:?} (audio, msd, mfcc, scattering, all, none)"
                ))
            }
        })
    }
}

impl FeatureSet {
    pub fn name(self) -> &'static str {
        match self {
            FeatureSet::All => "all",
            FeatureSet::Audio => "audio",
            FeatureSet::Msd => "msd",
            FeatureSet::Mfcc => "mfcc",
            FeatureSet::Scattering => "scattering",
            FeatureSet::None => "none",
        }
    }

    fn keeps(self, name: &str, msd: &HashSet<String>) -> bool {
        let is_msd = msd.contains(name);
        match self {
            FeatureSet::All => true,
            FeatureSet::Msd => is_msd,
            FeatureSet::Audio => !is_msd,
            FeatureSet::Mfcc => !is_msd && name.contains("mfcc"),
            FeatureSet::Scattering => !is_msd && name.contains("scatter"),
            FeatureSet::None => false,
        }
    }
}

/// `(values songs × dim, dim, column names)`.
pub type SelectedFeatures = (Vec<f32>, usize, Vec<String>);

/// Chosen feature columns: `(values songs × dim, dim, names)`; `None` when no column is chosen
/// (an explicit set the dataset lacks is an error naming what is there).
pub fn select_features(ds: &Dataset, set: FeatureSet) -> Result<Option<SelectedFeatures>, Error> {
    if set == FeatureSet::None {
        return Ok(None);
    }
    let Some(v) = &ds.song_vectors else {
        if set == FeatureSet::All {
            return Ok(None);
        }
        return Err(Error::Other(format!(
            "--features {}: the dataset has no song vectors (prepare it with --msd/--metadata or --features)",
            set.name()
        )));
    };
    let msd: HashSet<String> = msd_names().into_iter().collect();
    let cols: Vec<usize> = (0..v.dim)
        .filter(|&c| set.keeps(&v.names[c], &msd))
        .collect();
    if cols.is_empty() {
        if set == FeatureSet::All {
            return Ok(None);
        }
        return Err(Error::Other(format!(
            "--features {}: no such columns in the dataset's song vectors (source {:?}, columns like {:?})",
            set.name(),
            v.source,
            v.names.iter().take(4).collect::<Vec<_>>()
        )));
    }
    let songs = ds.songs();
    let mut out = Vec::with_capacity(songs * cols.len());
    for s in 0..songs {
        let row = &v.values[s * v.dim..(s + 1) * v.dim];
        out.extend(cols.iter().map(|&c| row[c]));
    }
    let names = cols.iter().map(|&c| v.names[c].clone()).collect();
    Ok(Some((out, cols.len(), names)))
}

impl Corpus {
    pub fn from_dataset(ds: &Dataset, set: FeatureSet) -> Result<(Self, Vec<String>), Error> {
        let histories = (0..ds.users())
            .map(|u| {
                let (s, p) = ds.history(u);
                (s.to_vec(), p.to_vec())
            })
            .collect();
        let feats = select_features(ds, set)?;
        let names = feats.as_ref().map(|f| f.2.clone()).unwrap_or_default();
        let pt = &ds.portrait;
        let n_genre = pt.genre_names.len();
        let portraits = PortraitTable {
            age: pt.age_bucket.clone(),
            song_genre: pt.song_genre.clone(),
            song_lang: pt.song_language.clone(),
            n_genre,
            n_lang: pt.language_names.len(),
        };
        Ok((
            Corpus {
                songs: ds.songs(),
                histories,
                features: feats.map(|(v, d, _)| (v, d)),
                portraits: Some(portraits),
                n_age: pt.age_bucket_names.len().max(1),
                n_lang: pt.language_names.len().max(1),
            },
            names,
        ))
    }

    /// Popularity (training users per song) and genres, for the metrics.
    pub fn catalogue(&self, train_users: &[u32], genre: Option<Vec<u16>>) -> Catalogue {
        let mut popularity = vec![0u32; self.songs];
        for &u in train_users {
            let mut s = self.histories[u as usize].0.clone();
            s.sort_unstable();
            s.dedup();
            for x in s {
                popularity[x as usize] += 1;
            }
        }
        Catalogue {
            songs: self.songs,
            popularity,
            genre,
        }
    }
}

/// Genre index per song (for diversity), from the song metadata's genre names.
pub fn song_genres(ds: &Dataset) -> Option<Vec<u16>> {
    let mut names: Vec<&str> = Vec::new();
    let mut out = Vec::with_capacity(ds.songs());
    let mut known = false;
    for m in &ds.song_meta {
        let g = m.genre.as_str();
        known |= m.has_genre();
        let i = match names.iter().position(|&n| n == g) {
            Some(i) => i,
            None => {
                names.push(g);
                names.len() - 1
            }
        };
        out.push(i as u16);
    }
    known.then_some(out)
}

/// The users and examples of one cross-validation fold.
pub struct FoldData {
    /// Users whose whole histories train the model.
    pub train_users: Vec<u32>,
    /// Validation users (taken from the non-test users, not trained on), with a fixed split.
    pub validation: Vec<Example>,
    /// Test users of the fold: the dataset's visible history in, held-out songs as truth.
    pub test: Vec<Example>,
}

/// Validation users: this share of the non-test users (at least 1, at most `max`).
pub const VALIDATION_SHARE: f64 = 0.1;

pub fn fold_data(
    ds: &Dataset,
    corpus: &Corpus,
    fold: u32,
    seed: u64,
    max_validation: usize,
) -> Result<FoldData, Error> {
    if fold >= ds.folds {
        return Err(Error::Other(format!(
            "--fold {fold} is out of range: the dataset has {} folds (0..{})",
            ds.folds,
            ds.folds.saturating_sub(1)
        )));
    }
    let split = ds.split(fold);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_f01d ^ fold as u64);
    let mut others = split.train_users.clone();
    others.shuffle(&mut rng);
    let n_val = ((others.len() as f64 * VALIDATION_SHARE).round() as usize)
        .clamp(1.min(others.len()), max_validation);
    let (val_users, train) = others.split_at(n_val.min(others.len()));
    let mut train_users = train.to_vec();
    train_users.sort_unstable();
    let validation = val_users
        .iter()
        .filter_map(|&u| {
            let (s, p) = &corpus.histories[u as usize];
            super::split_example(u, s, p, ds.visible_share, &mut rng)
        })
        .collect();
    let test = split
        .test_users
        .iter()
        .zip(split.visible.iter().zip(&split.held_out))
        .map(|(&u, ((vs, vp), (hs, _)))| Example {
            user: u,
            songs: vs.clone(),
            plays: vp.clone(),
            targets: hs.clone(),
            exclude: vs.clone(),
        })
        .collect();
    Ok(FoldData {
        train_users,
        validation,
        test,
    })
}
