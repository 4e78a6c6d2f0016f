//! What `compare` runs: the methods and the options.

use std::path::PathBuf;

use crate::model::ModelKind;
use crate::train::corpus::FeatureSet;
use crate::train::run::TrainOptions;

/// A model `compare` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Popularity,
    ItemKnn,
    Ease,
    /// Mean cosine of song content vectors (see `baselines::ContentKnn`).
    ContentKnn,
    Neural(ModelKind),
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Popularity => "popularity",
            Method::ItemKnn => "itemknn",
            Method::Ease => "ease",
            Method::ContentKnn => "contentknn",
            Method::Neural(k) => k.name(),
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "popularity" | "pop" => Ok(Method::Popularity),
            "itemknn" | "item-knn" | "knn" => Ok(Method::ItemKnn),
            "ease" => Ok(Method::Ease),
            "contentknn" | "content-knn" | "content" => Ok(Method::ContentKnn),
            other => other.parse::<ModelKind>().map(Method::Neural).map_err(|_| {
                format!("unknown model {other:?} (popularity, itemknn, ease, contentknn, indrnn, resindrnn, lstm, ainrnn)")
            }),
        }
    }
}

pub struct CompareOptions {
    pub data: PathBuf,
    pub methods: Vec<Method>,
    pub folds: u32,
    pub k: usize,
    /// Training settings of the learned models (`data`, `kind`, `fold` and `out` are set per run).
    pub train: TrainOptions,
    pub report: PathBuf,
    /// Feature sets compared for the accuracy-per-epoch figure (AINRNN on fold 0); empty: the
    /// available ones of mfcc/scattering, else of msd/none.
    pub feature_sets: Vec<FeatureSet>,
    /// EASE's λ; `None`: chosen on fold 0's validation users.
    pub ease_lambda: Option<f32>,
    pub ease_max_items: usize,
    pub knn_neighbours: usize,
}

impl CompareOptions {
    /// Where the learned model `kind` of `fold` is kept: `REPORT/checkpoints/KIND-foldF.ckpt`
    /// (its ensemble's other members beside it), for `eval` and `recommend` afterwards.
    pub fn checkpoint(&self, kind: ModelKind, fold: u32) -> PathBuf {
        self.report
            .join("checkpoints")
            .join(format!("{}-fold{fold}.ckpt", kind.name()))
    }
}
