//! The paper's Fig. 6: AINRNN trained on fold 0 once per feature set, validation metrics per
//! epoch.

use super::options::{CompareOptions, Method};
use crate::backend::model_ops::ModelOps;
use crate::data::Dataset;
use crate::error::Error;
use crate::model::ModelKind;
use crate::train::corpus::{select_features, FeatureSet};
use crate::train::run::train;
use crate::train::EpochReport;

/// The feature sets to compare: the asked ones, else MFCC and scattering when the dataset has
/// both, else those of MSD and none it has (with a line in `notes` saying so). None when AINRNN
/// is not compared: the figure is AINRNN's.
pub(super) fn feature_sets(
    o: &CompareOptions,
    ds: &Dataset,
    notes: &mut Vec<String>,
) -> Vec<FeatureSet> {
    if !o.methods.contains(&Method::Neural(ModelKind::Ainrnn)) {
        return vec![];
    }
    let mut sets = o.feature_sets.clone();
    if sets.is_empty() {
        let has = |fs: FeatureSet| {
            select_features(ds, fs)
                .map(|f| f.is_some())
                .unwrap_or(false)
        };
        sets = if has(FeatureSet::Mfcc) && has(FeatureSet::Scattering) {
            vec![FeatureSet::Mfcc, FeatureSet::Scattering]
        } else {
            notes.push(
                "Fig. 6 compares MFCC with scattering features, but this dataset has no audio feature columns for its songs \
                 (run `ainrnn features` on the songs' audio and `prepare --features`); the figure compares the feature sets it has instead."
                    .into(),
            );
            [FeatureSet::Msd, FeatureSet::None]
                .into_iter()
                .filter(|&f| f == FeatureSet::None || has(f))
                .collect()
        };
    }
    sets
}

/// AINRNN on fold 0 per feature set, without early stopping (when AINRNN is compared and there
/// are two sets or more); `log` gets each final NDCG@10.
pub(super) fn feature_runs<B: ModelOps>(
    b: &B,
    o: &CompareOptions,
    sets: &[FeatureSet],
    log: &mut impl FnMut(&str),
) -> Result<Vec<(String, Vec<EpochReport>)>, Error> {
    let mut feature_runs = Vec::new();
    if o.methods.contains(&Method::Neural(ModelKind::Ainrnn)) && sets.len() >= 2 {
        for fs in sets {
            let mut opts = o.train.clone();
            opts.kind = ModelKind::Ainrnn;
            opts.fold = 0;
            opts.features = *fs;
            opts.data = o.data.clone();
            opts.resume = false;
            opts.patience = 0; // the whole curve, no early stop
            opts.ensemble = Some(1); // one model's curve
            opts.out = o
                .report
                .join("checkpoints")
                .join(format!("ainrnn-features-{}.ckpt", fs.name()));
            let s = train(b, &opts, |_| {}, |_, _, _, _| {})?;
            s.remove_latest();
            // P@10 too: it is what the Fig. 6 chart plots (the paper's "accuracy").
            let last = s.history.last();
            log(&format!(
                "features {:<10} final validation NDCG@10 {:.4}, P@10 {:.4}",
                fs.name(),
                last.map(|r| r.ndcg_at_10).unwrap_or(0.0),
                last.map(|r| r.precision_at_10).unwrap_or(0.0)
            ));
            feature_runs.push((fs.name().to_string(), s.history));
        }
    }
    Ok(feature_runs)
}
