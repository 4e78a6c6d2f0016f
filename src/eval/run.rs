//! `ainrnn eval` and `ainrnn recommend` as library calls.

use std::path::Path;

use serde::Serialize;

use super::metrics::{curves, evaluate, Metrics};
use crate::backend::model_ops::ModelOps;
use crate::data::Dataset;
use crate::error::{Error, IoError};
use crate::model::batch::{upload, Example};
use crate::model::checkpoint::Checkpoint;
use crate::model::Model;
use crate::train::corpus::{fold_data, song_genres, FeatureSet};
use crate::train::run::{other_split, split_digest, DataFingerprint};
use crate::train::{rank_examples, Corpus};

/// Loads a checkpoint for `ds`, checking it was trained on the same data and feature columns.
pub fn load_model<B: ModelOps>(
    b: &B,
    ds: &Dataset,
    path: &Path,
) -> Result<(Model<B>, Corpus, DataFingerprint), Error> {
    model_from(b, ds, &Checkpoint::load(path)?, path)
}

/// [`load_model`] from checkpoint `ck`, read from `path`.
fn model_from<B: ModelOps>(
    b: &B,
    ds: &Dataset,
    ck: &Checkpoint,
    path: &Path,
) -> Result<(Model<B>, Corpus, DataFingerprint), Error> {
    let fp = fingerprint(ck, path)?;
    let (corpus, names) = Corpus::from_dataset(ds, fp.features)?;
    if fp.users != ds.users()
        || fp.songs != ds.songs()
        || fp.interactions != ds.interactions()
        || names != fp.feature_names
    {
        return Err(Error::Other(format!(
            "{}: trained on a different dataset ({} users, {} songs, {} interactions, {} feature columns); this one has {} users, {} songs, {} interactions, {} feature columns",
            path.display(),
            fp.users,
            fp.songs,
            fp.interactions,
            fp.feature_names.len(),
            ds.users(),
            ds.songs(),
            ds.interactions(),
            names.len()
        )));
    }
    if fp.other_split(&split_digest(ds)) {
        return Err(other_split(path));
    }
    let model = ck.restore(b, corpus.features.as_ref().map(|f| f.0.as_slice()))?;
    Ok((model, corpus, fp))
}

/// Loads the checkpoint at `path` and, when it is the first member of an ensemble, the other
/// members beside it (`train --ensemble`), each checked to be trained on the same data, fold
/// and feature columns for the same catalogue. The first member comes first.
pub fn load_ensemble<B: ModelOps>(
    b: &B,
    ds: &Dataset,
    path: &Path,
) -> Result<(Vec<Model<B>>, Corpus, DataFingerprint), Error> {
    let ck = Checkpoint::load(path)?;
    let (first, corpus, fp) = model_from(b, ds, &ck, path)?;
    let paths = ck.member_paths(path)?;
    let recorded = ck.member_checksums();
    let mut seen = vec![ck.checksum().to_string()];
    drop(ck); // the first's tensors are on the device now
    let mut models = vec![first];
    for (i, p) in paths.into_iter().enumerate() {
        let ck = Checkpoint::load(&p).map_err(|e| {
            Error::Other(format!(
                "ensemble member of {}: {e} (a member's file must stay beside the first's)",
                path.display()
            ))
        })?;
        // Members differ by seed, so two equal checksums mean a file copied over another.
        let sum = ck.checksum().to_string();
        if let Some(want) = recorded.as_ref().and_then(|r| r.get(i)) {
            if *want != sum {
                return Err(Error::Other(format!(
                    "{}: not the ensemble member {} was trained with (checksum {sum}, recorded {want}): the file was replaced; restore it or retrain the ensemble",
                    p.display(),
                    path.display()
                )));
            }
        }
        if !sum.is_empty() && seen.contains(&sum) {
            return Err(Error::Other(format!(
                "{}: a copy of another member of the ensemble {} (the same checksum {sum}): restore it or retrain the ensemble",
                p.display(),
                path.display()
            )));
        }
        seen.push(sum);
        let theirs = fingerprint(&ck, &p)?;
        if theirs != fp {
            return Err(Error::Other(format!(
                "{}: ensemble member trained on other data or another fold than {} (fold {} and {} users, against fold {} and {} users)",
                p.display(),
                path.display(),
                theirs.fold,
                theirs.users,
                fp.fold,
                fp.users
            )));
        }
        let m = ck.restore(b, corpus.features.as_ref().map(|f| f.0.as_slice()))?;
        if m.cfg.songs != models[0].cfg.songs || m.cfg.tile != models[0].cfg.tile {
            return Err(Error::Other(format!(
                "{}: ensemble member scores {} songs in tiles of {}, {} scores {} in tiles of {}",
                p.display(),
                m.cfg.songs,
                m.cfg.tile,
                path.display(),
                models[0].cfg.songs,
                models[0].cfg.tile
            )));
        }
        models.push(m);
    }
    Ok((models, corpus, fp))
}

/// The fold a checkpoint was trained for (its test users were never trained on).
pub fn checkpoint_fold(path: &Path) -> Result<u32, Error> {
    Ok(fingerprint(&Checkpoint::load(path)?, path)?.fold)
}

/// The dataset fingerprint stored in checkpoint `ck` (read from `path`).
fn fingerprint(ck: &Checkpoint, path: &Path) -> Result<DataFingerprint, Error> {
    ck.get("dataset")
        .ok_or_else(|| {
            Error::Other(format!(
                "{}: no dataset fingerprint in the checkpoint",
                path.display()
            ))
        })?
        .map_err(|e| Error::Other(format!("{}: dataset fingerprint: {e}", path.display())))
}

/// Refuses `--fold fold` for a checkpoint trained for fold `trained`, unless `other_fold`: the
/// other fold's test users were among that model's training users.
pub fn check_fold(ckpt: &Path, trained: u32, fold: u32, other_fold: bool) -> Result<(), Error> {
    if fold != trained && !other_fold {
        return Err(Error::Other(format!(
            "--fold {fold}: {} was trained for fold {trained}, so the test users of fold {fold} were among its training users; use --fold {trained}, or add --other-fold to go on anyway",
            ckpt.display()
        )));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub checkpoint: String,
    pub fold: u32,
    pub features: FeatureSet,
    #[serde(flatten)]
    pub metrics: Metrics,
    /// `(k, precision@k, NDCG@k)` for k = 1..=20.
    pub curve: Vec<(usize, f64, f64)>,
    pub seconds: f64,
}

/// Ranks every song for each test user of `fold` (default: the checkpoint's), excluding the
/// visible history, and scores the lists against the held-out songs. Another fold than the
/// checkpoint's is refused unless `other_fold` (see [`check_fold`]).
pub fn eval<B: ModelOps>(
    b: &B,
    data: &Path,
    ckpt: &Path,
    fold: Option<u32>,
    other_fold: bool,
    k: usize,
) -> Result<EvalReport, Error> {
    let t0 = std::time::Instant::now();
    let max_k = crate::backend::model_ops::MAX_TOPK;
    if k == 0 || k > max_k {
        return Err(Error::Other(format!(
            "--k {k}: the cut-off must be between 1 and {max_k}"
        )));
    }
    let ds = Dataset::load(data)?;
    let (models, corpus, fp) = load_ensemble(b, &ds, ckpt)?;
    let model = &models[0];
    let fold = fold.unwrap_or(fp.fold);
    check_fold(ckpt, fp.fold, fold, other_fold)?;
    let fd = fold_data(&ds, &corpus, fold, model.cfg.seed, 1)?;
    // Rank 20 deep at least, for the precision/NDCG curves up to k = 20.
    let kk = k.max(20);
    let (lists, truths) =
        rank_examples(b, &models, &corpus, &fd.test, kk, crate::train::RANK_BATCH)?;
    let cat = corpus.catalogue(&fd.train_users, song_genres(&ds));
    let metrics = evaluate(&lists, &truths, k, &cat);
    // Zeros averaged over nobody would read as a model that recommends nothing right.
    if metrics.users == 0 {
        return Err(Error::Other(format!(
            "{}: fold {fold} has no test user with held-out songs ({} test users, none with a song held out): nothing to evaluate; prepare the data with fewer --folds or a smaller --visible-share",
            data.display(),
            metrics.users_without_truth
        )));
    }
    Ok(EvalReport {
        model: model.cfg.kind.name().to_string(),
        checkpoint: ckpt.display().to_string(),
        fold,
        features: fp.features,
        metrics,
        curve: curves(&lists, &truths, 20),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[derive(Debug, Serialize)]
pub struct Recommendation {
    pub rank: usize,
    pub song_id: String,
    pub title: String,
    pub artist: String,
    pub genre: String,
    pub score: f32,
}

/// Where the history of the user to recommend for comes from.
pub enum Who<'a> {
    /// A user of the dataset (by original id): their whole history is the input.
    User(&'a str),
    /// A new user: song ids (and optional play counts) from a file, one per line.
    History(&'a Path),
}

/// Reads a cold-start history: `song_id[<TAB or space>plays]` per line, in listening order;
/// unknown ids and bad lines are errors naming the line. Plays are what `prepare` takes: a
/// whole number from 1 to 999,999,999 (1 when left out). A song listed again adds its plays to
/// its first line, as `prepare` merges a user's repeated (user, song) records.
pub fn read_history(path: &Path, ds: &Dataset) -> Result<(Vec<u32>, Vec<f32>), Error> {
    let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    let index: std::collections::HashMap<&str, u32> = ds
        .song_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let (mut songs, mut plays) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashMap::new();
    for (n, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(IoError::Line {
                path: path.to_path_buf(),
                line: n + 1,
                reason: "not valid UTF-8 (song ids are text)".into(),
            }
            .into());
        };
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let id = parts.next().unwrap_or_default();
        let Some(&s) = index.get(id) else {
            return Err(IoError::Line {
                path: path.to_path_buf(),
                line: n + 1,
                reason: format!(
                    "song {:?} is not in the dataset's catalogue",
                    crate::text::clip(id, 60)
                ),
            }
            .into());
        };
        let bad = |reason: String| -> Error {
            IoError::Line {
                path: path.to_path_buf(),
                line: n + 1,
                reason,
            }
            .into()
        };
        let p = match parts.next() {
            None => 1,
            Some(v) => {
                crate::data::triplets::parse_count(v.as_bytes(), "play count").map_err(bad)?
            }
        };
        if let Some(extra) = parts.next() {
            return Err(bad(format!(
                "expected `song_id [plays]`, found a third field {extra:?}"
            )));
        }
        match seen.entry(s) {
            std::collections::hash_map::Entry::Occupied(e) => plays[*e.get()] += p as f32,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(songs.len());
                songs.push(s);
                plays.push(p as f32);
            }
        }
    }
    if songs.is_empty() {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: "no song ids in the history file".into(),
        }
        .into());
    }
    Ok((songs, plays))
}

/// The top-`k` list for one user, at most `max_per_genre` songs of one genre when given.
pub fn recommend<B: ModelOps>(
    b: &B,
    data: &Path,
    ckpt: &Path,
    who: Who<'_>,
    k: usize,
    max_per_genre: Option<usize>,
    fold: Option<u32>,
) -> Result<Vec<Recommendation>, Error> {
    if k == 0 {
        return Err(Error::Other(
            "--k 0: the list length must be a whole number >= 1".into(),
        ));
    }
    if max_per_genre == Some(0) {
        return Err(Error::Other(
            "--max-per-genre 0: must be a whole number >= 1 (0 would allow no song)".into(),
        ));
    }
    let ds = Dataset::load(data)?;
    let (models, mut corpus, _) = load_ensemble(b, &ds, ckpt)?;
    let model = &models[0];
    let (user, songs, plays) = match who {
        Who::User(id) => {
            let u = ds.user_ids.iter().position(|x| x == id).ok_or_else(|| {
                Error::Other(format!(
                    "user {id:?} is not in {} (it has {} users, e.g. {:?})",
                    data.display(),
                    ds.users(),
                    ds.user_ids.iter().take(3).collect::<Vec<_>>()
                ))
            })?;
            // Asked for a fold, the user must be one of its test users: any other user's
            // listens were training data of that fold's model.
            if let Some(f) = fold {
                let theirs = ds.user_fold.get(u).copied().unwrap_or(u32::MAX);
                if theirs != f {
                    return Err(Error::Other(format!(
                        "--user {id:?} with --fold {f}: that user is in fold {theirs} of {}, not a test user of fold {f} (a model for fold {f} trains on their listens); give a test user of fold {f}, or drop --fold",
                        data.display()
                    )));
                }
            }
            let (s, p) = ds.history(u);
            (u as u32, s.to_vec(), p.to_vec())
        }
        Who::History(path) => {
            let (s, p) = read_history(path, &ds)?;
            // A new user: an extra row with an unknown age; language and genre come from the
            // given history, as for every user.
            let u = corpus.histories.len() as u32;
            corpus.histories.push((s.clone(), p.clone()));
            if let Some(pt) = corpus.portraits.as_mut() {
                pt.age.push(0);
            }
            (u, s, p)
        }
    };
    let ex = Example {
        user,
        songs: songs.clone(),
        plays,
        targets: vec![],
        exclude: songs,
    };
    let batch = upload(
        b,
        &model.cfg,
        corpus.portraits.as_ref(),
        std::slice::from_ref(&ex),
    )?;
    // An ensemble's score is the sum of its members'.
    let mut scores = vec![0.0f32; model.cfg.songs];
    for m in &models {
        let (u, _) = m.forward(b, &batch, None)?;
        let nb = m.scorer.neighbour_blocks(b, &m.params, &batch.history)?;
        for (s, x) in scores
            .iter_mut()
            .zip(m.scorer.scores(b, &m.params, &u, &nb)?)
        {
            *s += x;
        }
    }
    for &s in &ex.exclude {
        scores[s as usize] = f32::NEG_INFINITY;
    }
    let mut order: Vec<u32> = (0..scores.len() as u32)
        .filter(|&s| scores[s as usize] > f32::NEG_INFINITY)
        .collect();
    order.sort_by(|&a, &b2| {
        scores[b2 as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b2))
    });
    let mut per_genre: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for s in order {
        let meta = &ds.song_meta[s as usize];
        // Songs of unknown genre are not one genre: they are not capped together.
        if let (Some(cap), true) = (max_per_genre, meta.has_genre()) {
            let c = per_genre.entry(meta.genre.as_str()).or_default();
            if *c >= cap {
                continue;
            }
            *c += 1;
        }
        out.push(Recommendation {
            rank: out.len() + 1,
            song_id: ds.song_ids[s as usize].clone(),
            title: meta.title.clone(),
            artist: meta.artist.clone(),
            genre: meta.genre.clone(),
            score: scores[s as usize],
        });
        if out.len() == k {
            break;
        }
    }
    Ok(out)
}
