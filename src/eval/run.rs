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

#[derive(Clone, Debug, Serialize)]
pub struct Recommendation {
    pub rank: usize,
    pub song_id: String,
    pub title: String,
    pub artist: String,
    pub genre: String,
    pub score: f32,
}

/// Why a list is what it is ([`Recommender::explain`], `recommend --explain`).
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// The history songs the model read (its most recent `max_history`), oldest first, each
    /// with the attention's weight (they sum to 1); `None` when the model does not pool by
    /// attention (IndRNN and LSTM read the last state).
    pub attention: Option<Vec<HistoryWeight>>,
    /// Whether the model has the co-listening term (with neighbour lists): without it every
    /// score is all taste.
    pub co_listening_term: bool,
    /// Per listed song, in the list's order.
    pub songs: Vec<SongWhy>,
}

/// A history song and the attention's weight on it.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryWeight {
    pub song_id: String,
    /// "artist - title".
    pub name: String,
    pub weight: f32,
}

/// One listed song's score, split.
#[derive(Clone, Debug, Serialize)]
pub struct SongWhy {
    pub song_id: String,
    pub score: f32,
    /// What the co-listening (item-neighbourhood) term adds: γ times the history songs'
    /// weighted similarity to this song.
    pub co_listening: f32,
    /// The rest of the score: the user vector's product with the song's representation, and
    /// the song's bias (`score − co_listening`).
    pub taste: f32,
    /// The history songs whose co-listening adds most, largest first (at most [`BECAUSE`]).
    pub because: Vec<Because>,
}

/// A history song's part of a listed song's co-listening term.
#[derive(Clone, Debug, Serialize)]
pub struct Because {
    pub song_id: String,
    pub name: String,
    pub part: f32,
}

/// How many history songs [`SongWhy::because`] names.
pub const BECAUSE: usize = 3;

/// Where the history of the user to recommend for comes from.
pub enum Who<'a> {
    /// A user of the dataset (by original id): their whole history is the input.
    User(&'a str),
    /// A new user: song ids (and optional play counts) from a file, one per line.
    History(&'a Path),
}

/// A history read from lines: songs in the order they were first listed, a song listed again
/// adding its plays to its first entry (as `prepare` merges a user's repeated records).
#[derive(Default)]
struct Listens {
    songs: Vec<u32>,
    plays: Vec<f32>,
    at: std::collections::HashMap<u32, usize>,
}

impl Listens {
    /// Adds `plays` plays of `song`; true when the song was listed before.
    fn add(&mut self, song: u32, plays: f32) -> bool {
        match self.at.entry(song) {
            std::collections::hash_map::Entry::Occupied(e) => {
                self.plays[*e.get()] += plays;
                true
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(self.songs.len());
                self.songs.push(song);
                self.plays.push(plays);
                false
            }
        }
    }
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
    let mut listens = Listens::default();
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
        listens.add(s, p as f32);
    }
    if listens.songs.is_empty() {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: "no song ids in the history file".into(),
        }
        .into());
    }
    Ok((listens.songs, listens.plays))
}

/// Refuses a list length of 0 and a genre cap of 0 (the library's own check of what the CLI's
/// parsers refuse).
pub(crate) fn check_list(k: usize, max_per_genre: Option<usize>) -> Result<(), Error> {
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
    Ok(())
}

/// A dataset and a checkpoint (with its ensemble's other members) opened for recommendations:
/// what `recommend` loads once, whether for one user or for every user.
pub struct Recommender<B: ModelOps> {
    ds: Dataset,
    models: Vec<Model<B>>,
    corpus: Corpus,
    /// The corpus's users at `open` (new users are added after them).
    known_users: usize,
}

impl<B: ModelOps> Recommender<B> {
    /// Loads `data` and the checkpoint `ckpt` (checked to be trained on it, see
    /// [`load_ensemble`]).
    pub fn open(b: &B, data: &Path, ckpt: &Path) -> Result<Self, Error> {
        let ds = Dataset::load(data)?;
        let (models, corpus, _) = load_ensemble(b, &ds, ckpt)?;
        let known_users = corpus.histories.len();
        Ok(Recommender {
            ds,
            models,
            corpus,
            known_users,
        })
    }

    /// The input of dataset user `u`: their whole history, none of it recommended again.
    pub fn user(&self, u: u32) -> Example {
        let (s, p) = self.ds.history(u as usize);
        Example {
            user: u,
            songs: s.to_vec(),
            plays: p.to_vec(),
            targets: vec![],
            exclude: s.to_vec(),
        }
    }

    /// The input of a new user who listened to `songs` (`plays` each): an extra row with an
    /// unknown age; language and genre come from the given history, as for every user.
    pub fn new_user(&mut self, songs: Vec<u32>, plays: Vec<f32>) -> Example {
        let u = self.corpus.histories.len() as u32;
        self.corpus.histories.push((songs.clone(), plays.clone()));
        if let Some(pt) = self.corpus.portraits.as_mut() {
            pt.age.push(0);
        }
        Example {
            user: u,
            songs: songs.clone(),
            plays,
            targets: vec![],
            exclude: songs,
        }
    }

    /// The top-`k` list of each example (at most `max_per_genre` songs of one genre when
    /// given), ranked by the members' summed scores, best first, ties to the lower song index.
    ///
    /// The examples are ranked together on the device and only their best [`MAX_TOPK`] songs
    /// read back (every user of a batch in one read-back). Users whose list that leaves short
    /// (a `k` above it, or a genre cap that drops too many of them) are ranked again over the
    /// whole catalogue, every score read back (at most 64 MiB of them a batch). Each user's
    /// list depends on that user's history alone.
    ///
    /// [`MAX_TOPK`]: crate::backend::model_ops::MAX_TOPK
    pub fn lists(
        &self,
        b: &B,
        examples: &[Example],
        k: usize,
        max_per_genre: Option<usize>,
    ) -> Result<Vec<Vec<Recommendation>>, Error> {
        Ok(self.lists_counted(b, examples, k, max_per_genre)?.0)
    }

    /// [`Recommender::lists`], and how many users were ranked over the whole catalogue.
    fn lists_counted(
        &self,
        b: &B,
        examples: &[Example],
        k: usize,
        max_per_genre: Option<usize>,
    ) -> Result<(Vec<Vec<Recommendation>>, usize), Error> {
        check_list(k, max_per_genre)?;
        let max_k = crate::backend::model_ops::MAX_TOPK;
        // With a cap, the best MAX_TOPK leave room to skip songs of a full genre (a k past
        // MAX_TOPK goes to the whole catalogue at once).
        let kk = if max_per_genre.is_some() {
            max_k.max(k)
        } else {
            k
        };
        let mut out: Vec<Option<Vec<Recommendation>>> = vec![None; examples.len()];
        if kk <= max_k {
            let ranked = crate::train::rank_scored(
                b,
                &self.models,
                &self.corpus,
                examples,
                kk,
                crate::train::RANK_BATCH,
            )?;
            for (o, cands) in out.iter_mut().zip(ranked) {
                let seen_all = cands.len() < kk;
                let list = select(&self.ds, &mut cands.into_iter(), k, max_per_genre);
                if list.len() == k || seen_all {
                    *o = Some(list);
                }
            }
        }
        let short: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_none()).collect();
        let model = &self.models[0];
        // Whole score rows of at most 64 MiB a batch (and a block a binding takes).
        let rows = (64 << 20) / (4 * model.cfg.songs.max(1));
        let batch = crate::train::ranking_batch(b, model, rows.clamp(1, crate::train::RANK_BATCH));
        for ids in short.chunks(batch) {
            let exs: Vec<Example> = ids.iter().map(|&i| examples[i].clone()).collect();
            for (&i, list) in ids
                .iter()
                .zip(self.whole_catalogue(b, &exs, k, max_per_genre)?)
            {
                out[i] = Some(list);
            }
        }
        Ok((out.into_iter().flatten().collect(), short.len()))
    }

    /// The examples' lists from every song's score, read back whole.
    fn whole_catalogue(
        &self,
        b: &B,
        examples: &[Example],
        k: usize,
        max_per_genre: Option<usize>,
    ) -> Result<Vec<Vec<Recommendation>>, Error> {
        let model = &self.models[0];
        let batch = upload(b, &model.cfg, self.corpus.portraits.as_ref(), examples)?;
        // An ensemble's score is the sum of its members' (in member order, as on the device).
        let mut scores = vec![vec![0.0f32; model.cfg.songs]; examples.len()];
        for m in &self.models {
            let (u, _) = m.forward(b, &batch, None)?;
            let nb = m.scorer.neighbour_blocks(b, &m.params, &batch.history)?;
            for (sum, row) in scores
                .iter_mut()
                .zip(m.scorer.scores(b, &m.params, &u, &nb)?)
            {
                for (s, x) in sum.iter_mut().zip(row) {
                    *s += x;
                }
            }
        }
        let mut lists = Vec::with_capacity(examples.len());
        for (mut scores, ex) in scores.into_iter().zip(examples) {
            for &s in &ex.exclude {
                if let Some(x) = scores.get_mut(s as usize) {
                    *x = f32::NEG_INFINITY;
                }
            }
            let list = best_first(&scores, k, |ranked| {
                select(&self.ds, ranked, k, max_per_genre)
            });
            lists.push(list);
        }
        Ok(lists)
    }

    /// The dataset the recommendations are for.
    pub fn dataset(&self) -> &Dataset {
        &self.ds
    }

    /// Why `list` (example `ex`'s list from [`Recommender::lists`]) is what it is: each song's
    /// score split into what the co-listening term adds and the rest (the user vector's product
    /// with the song, and its bias), the history songs whose co-listening adds most, and, when
    /// the model pools by attention, the attention's weight on each song of the history it read.
    /// An ensemble's parts are its members' summed, its attention their mean.
    pub fn explain(
        &self,
        b: &B,
        ex: &Example,
        list: &[Recommendation],
    ) -> Result<Explanation, Error> {
        let Some(model) = self.models.first() else {
            return Err(Error::Other("explain: the checkpoint has no model".into()));
        };
        let songs: Vec<u32> = list
            .iter()
            .map(
                |r| match self.ds.song_ids.iter().position(|s| *s == r.song_id) {
                    Some(i) => Ok(i as u32),
                    None => Err(Error::Other(format!(
                        "explain: song {:?} is not in the catalogue",
                        r.song_id
                    ))),
                },
            )
            .collect::<Result<_, _>>()?;
        let batch = upload(
            b,
            &model.cfg,
            self.corpus.portraits.as_ref(),
            std::slice::from_ref(ex),
        )?;
        let kept = batch.history.first().cloned().unwrap_or_default();
        // Per listed song: history song → its part, summed over the members.
        let mut parts: Vec<std::collections::BTreeMap<u32, f64>> =
            vec![Default::default(); songs.len()];
        let (mut alpha, mut pooled) = (vec![0.0f64; kept.len()], 0usize);
        for m in &self.models {
            for (sum, p) in parts
                .iter_mut()
                .zip(m.scorer.term_parts(b, &m.params, &kept, &songs)?)
            {
                for (h, x) in p {
                    *sum.entry(h).or_default() += x as f64;
                }
            }
            if let Some(a) = m.attention(b, &batch)? {
                // One user, no padding: one weight per kept song.
                alpha.iter_mut().zip(&a).for_each(|(s, &x)| *s += x as f64);
                pooled += 1;
            }
        }
        let name = |s: u32| self.ds.song_meta[s as usize].name();
        let attention = (pooled > 0).then(|| {
            kept.iter()
                .zip(&alpha)
                .map(|(&s, &a)| HistoryWeight {
                    song_id: self.ds.song_ids[s as usize].clone(),
                    name: name(s),
                    weight: (a / pooled as f64) as f32,
                })
                .collect()
        });
        let songs = list
            .iter()
            .zip(parts)
            .map(|(r, p)| {
                let co: f64 = p.values().sum();
                let mut because: Vec<(u32, f64)> = p.into_iter().collect();
                because.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                SongWhy {
                    song_id: r.song_id.clone(),
                    score: r.score,
                    // `+ 0.0`: no term gives 0, not the -0 of an empty sum.
                    co_listening: co as f32 + 0.0,
                    taste: (r.score as f64 - co) as f32,
                    because: because
                        .into_iter()
                        .take(BECAUSE)
                        .map(|(h, x)| Because {
                            song_id: self.ds.song_ids[h as usize].clone(),
                            name: name(h),
                            part: x as f32,
                        })
                        .collect(),
                }
            })
            .collect();
        let co_listening_term = self.models.iter().any(|m| {
            m.scorer.gamma.is_some() && m.scorer.neighbours().iter().any(|l| !l.is_empty())
        });
        Ok(Explanation {
            attention,
            co_listening_term,
            songs,
        })
    }

    /// Drops the new users [`Recommender::new_user`] added since `open` (their examples must not
    /// be ranked afterwards): a long run of new users does not keep every history.
    pub fn forget_new_users(&mut self) {
        // `new_user` pushed one history and (with portraits) one age each.
        let added = self.corpus.histories.len() - self.known_users;
        self.corpus.histories.truncate(self.known_users);
        if let Some(pt) = self.corpus.portraits.as_mut() {
            pt.age.truncate(pt.age.len() - added);
        }
    }
}

/// The first `k` of `ranked` (best first) that the genre cap lets through, as the songs of `ds`.
pub(crate) fn select(
    ds: &Dataset,
    ranked: &mut dyn Iterator<Item = (u32, f32)>,
    k: usize,
    max_per_genre: Option<usize>,
) -> Vec<Recommendation> {
    recommendations(ds, &capped(ds, ranked, k, max_per_genre))
}

/// [`select`]'s songs and scores, in order.
pub(crate) fn capped(
    ds: &Dataset,
    ranked: &mut dyn Iterator<Item = (u32, f32)>,
    k: usize,
    max_per_genre: Option<usize>,
) -> Vec<(u32, f32)> {
    let mut per_genre: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (s, score) in ranked {
        let meta = &ds.song_meta[s as usize];
        // Songs of unknown genre are not one genre: they are not capped together.
        if let (Some(cap), true) = (max_per_genre, meta.has_genre()) {
            let c = per_genre.entry(meta.genre.as_str()).or_default();
            if *c >= cap {
                continue;
            }
            *c += 1;
        }
        out.push((s, score));
        if out.len() == k {
            break;
        }
    }
    out
}

/// The list of `songs` (best first, with their scores) as recommendations of `ds`'s songs.
pub(crate) fn recommendations(ds: &Dataset, songs: &[(u32, f32)]) -> Vec<Recommendation> {
    songs
        .iter()
        .enumerate()
        .map(|(i, &(s, score))| {
            let meta = &ds.song_meta[s as usize];
            Recommendation {
                rank: i + 1,
                song_id: ds.song_ids[s as usize].clone(),
                title: meta.title.clone(),
                artist: meta.artist.clone(),
                genre: meta.genre.clone(),
                score,
            }
        })
        .collect()
}

/// `pick`'s list from the songs of `scores` best first (ties to the lower index; -inf and NaN
/// never rank, as on the device), given a growing prefix of that order until `pick` returns `k`
/// songs or has seen every song: the best m are selected and sorted, m = max(4k, 64) and then 4
/// times more each round, not every song sorted (a total order, so each prefix is the full
/// sort's).
pub(crate) fn best_first<T>(
    scores: &[f32],
    k: usize,
    mut pick: impl FnMut(&mut dyn Iterator<Item = (u32, f32)>) -> Vec<T>,
) -> Vec<T> {
    let mut order: Vec<u32> = (0..scores.len() as u32)
        .filter(|&s| scores[s as usize] > f32::NEG_INFINITY)
        .collect();
    let better = |a: &u32, b: &u32| {
        scores[*b as usize]
            .total_cmp(&scores[*a as usize])
            .then(a.cmp(b))
    };
    let (mut m, n) = ((4 * k).max(64), order.len());
    loop {
        let head = if m < n {
            order.select_nth_unstable_by(m, better);
            &mut order[..m]
        } else {
            &mut order[..]
        };
        head.sort_by(better);
        let all = head.len() == n;
        let list = pick(&mut head.iter().map(|&s| (s, scores[s as usize])));
        if list.len() == k || all {
            return list;
        }
        m = m.saturating_mul(4);
    }
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
    Ok(one_list(b, data, ckpt, who, k, max_per_genre, fold)?.2)
}

/// [`recommend`], and why each song is listed ([`Recommender::explain`]).
pub fn recommend_explained<B: ModelOps>(
    b: &B,
    data: &Path,
    ckpt: &Path,
    who: Who<'_>,
    k: usize,
    max_per_genre: Option<usize>,
    fold: Option<u32>,
) -> Result<(Vec<Recommendation>, Explanation), Error> {
    let (r, ex, list) = one_list(b, data, ckpt, who, k, max_per_genre, fold)?;
    let why = r.explain(b, &ex, &list)?;
    Ok((list, why))
}

/// The recommender of `data` and `ckpt`, the input of `who` (with `fold`, checked to be one of
/// its test users), and its list.
fn one_list<B: ModelOps>(
    b: &B,
    data: &Path,
    ckpt: &Path,
    who: Who<'_>,
    k: usize,
    max_per_genre: Option<usize>,
    fold: Option<u32>,
) -> Result<(Recommender<B>, Example, Vec<Recommendation>), Error> {
    check_list(k, max_per_genre)?;
    let mut r = Recommender::open(b, data, ckpt)?;
    let ex = match who {
        Who::User(id) => {
            let ds = &r.ds;
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
            r.user(u as u32)
        }
        Who::History(path) => {
            let (s, p) = read_history(path, &r.ds)?;
            r.new_user(s, p)
        }
    };
    let list = r
        .lists(b, std::slice::from_ref(&ex), k, max_per_genre)?
        .pop()
        .unwrap_or_default();
    Ok((r, ex, list))
}

/// Whose lists [`recommend_users`] makes.
pub enum Users<'a> {
    /// Every user of the dataset (with a fold: that fold's test users).
    All,
    /// The user ids listed in a file, one per line (`#` comments and blank lines skipped).
    File(&'a Path),
    /// New users (cold start): a file of `user song [plays]` lines, each user's history in
    /// its lines' order (`#` comments and blank lines skipped).
    Histories(&'a Path),
}

/// A line of a `--users`, `--histories` or (for `similar`) `--songs` file that was skipped,
/// and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedLine {
    pub line: usize,
    /// The user (or song) the line names, as written (clipped to 60 characters).
    #[serde(rename = "user")]
    pub id: String,
    pub reason: String,
}

/// What [`recommend_users`] did.
#[derive(Debug, Serialize)]
pub struct UsersSummary {
    /// Users whose list was written.
    pub users: usize,
    /// Lines of the users or histories file skipped (unknown id, another fold's user, a song
    /// not in the catalogue, a bad line).
    pub skipped: Vec<SkippedLine>,
    /// Users listed again in a users file (their first line counts), or (user, song) pairs
    /// listed again in a histories file (their plays added to the first).
    pub repeated: usize,
    /// Users ranked over the whole catalogue because the best songs read back did not fill
    /// their list (see [`Recommender::lists`]).
    pub whole_catalogue: usize,
    pub seconds: f64,
}

/// Users whose lists are made and handed out together: the progress and the output advance
/// by this many (16 ranking batches).
const USERS_PER_ROUND: usize = 16 * crate::train::RANK_BATCH;

/// What [`recommend_users`] lists, for whom.
pub struct ListRequest<'a> {
    pub users: Users<'a>,
    /// The length of each list (≥ 1).
    pub k: usize,
    /// At most this many songs of one genre in a list (songs of unknown genre not capped).
    pub max_per_genre: Option<usize>,
    /// Only this fold's test users: `Users::All` takes them, a file's other users are skipped.
    pub fold: Option<u32>,
}

/// Where [`recommend_users`] hands each list: the user's id and the list.
pub type WriteList<'a> = dyn FnMut(&str, &[Recommendation]) -> Result<(), Error> + 'a;

/// The top-`k` list of many users: every user of the dataset (of the fold's test users when
/// given), or those a file names. Each list goes to `write` in the order of the dataset or of
/// the file; `progress` gets (done, total) after each round. A bad or unknown line of the users
/// file is skipped and reported in the summary; a file that names no usable user is an error.
pub fn recommend_users<B: ModelOps>(
    b: &B,
    data: &Path,
    ckpt: &Path,
    req: ListRequest<'_>,
    write: &mut WriteList<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<UsersSummary, Error> {
    let t0 = std::time::Instant::now();
    let ListRequest {
        users,
        k,
        max_per_genre,
        fold,
    } = req;
    check_list(k, max_per_genre)?;
    let mut r = Recommender::open(b, data, ckpt)?;
    // Dataset users by index, or new users with their histories.
    let (chosen, new, skipped, repeated) = match users {
        Users::All => {
            let ds = &r.ds;
            let chosen: Vec<u32> = (0..ds.users())
                .filter(|&u| fold.is_none_or(|f| ds.user_fold.get(u) == Some(&f)))
                .map(|u| u as u32)
                .collect();
            if chosen.is_empty() {
                return Err(Error::Other(format!(
                    "{}: fold {} has no users",
                    data.display(),
                    fold.unwrap_or_default()
                )));
            }
            (chosen, Vec::new(), Vec::new(), 0)
        }
        Users::File(path) => {
            let (chosen, skipped, repeated) = read_user_list(path, &r.ds, data, fold)?;
            (chosen, Vec::new(), skipped, repeated)
        }
        Users::Histories(path) => {
            let (users, skipped, repeated) = read_histories(path, &r.ds)?;
            let new: Vec<(String, Example)> = users
                .into_iter()
                .map(|(id, s, p)| (id, r.new_user(s, p)))
                .collect();
            (Vec::new(), new, skipped, repeated)
        }
    };
    let total = chosen.len() + new.len();
    let mut whole = 0;
    for start in (0..total).step_by(USERS_PER_ROUND) {
        let end = (start + USERS_PER_ROUND).min(total);
        let (names, examples): (Vec<&str>, Vec<Example>) = if new.is_empty() {
            chosen[start..end]
                .iter()
                .map(|&u| (r.ds.user_ids[u as usize].as_str(), r.user(u)))
                .unzip()
        } else {
            new[start..end]
                .iter()
                .map(|(id, ex)| (id.as_str(), ex.clone()))
                .unzip()
        };
        let (lists, w) = r.lists_counted(b, &examples, k, max_per_genre)?;
        for (name, list) in names.into_iter().zip(&lists) {
            write(name, list)?;
        }
        whole += w;
        progress(end, total);
    }
    Ok(UsersSummary {
        users: total,
        skipped,
        repeated,
        whole_catalogue: whole,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// [`recommend_users`] into the tab-separated file `out` (see [`write_lists_tsv`], first
/// column `user`).
pub fn recommend_users_tsv<B: ModelOps>(
    b: &B,
    data: &Path,
    ckpt: &Path,
    req: ListRequest<'_>,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<UsersSummary, Error> {
    write_lists_tsv(out, "user", |write| {
        recommend_users(b, data, ckpt, req, write, progress)
    })
}

/// Lists written by `fill` into the tab-separated file `out`: a header (`FIRST rank song_id
/// score title artist genre`, `first` naming whom or what each list is for), then one row per
/// song of each list (a tab or line break inside a field becomes a space). Written to a
/// temporary beside `out` and renamed over it once `fill` succeeds: a run that fails or is
/// stopped leaves `out` as it was.
pub(crate) fn write_lists_tsv<T>(
    out: &Path,
    first: &str,
    fill: impl FnOnce(&mut WriteList<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    use std::io::Write;
    let file = crate::io::AtomicFile::new(out);
    let io_err = |e: std::io::Error| Error::from(IoError::io(out, e));
    let mut w = std::io::BufWriter::new(std::fs::File::create(file.temp()).map_err(io_err)?);
    writeln!(w, "{first}\trank\tsong_id\tscore\ttitle\tartist\tgenre").map_err(io_err)?;
    let field = |t: &str| t.replace(['\t', '\n', '\r'], " ");
    let result = fill(&mut |who, list| {
        for r in list {
            writeln!(
                w,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                field(who),
                r.rank,
                field(&r.song_id),
                r.score,
                field(&r.title),
                field(&r.artist),
                field(&r.genre)
            )
            .map_err(io_err)?;
        }
        Ok(())
    })?;
    w.into_inner()
        .map_err(|e| io_err(e.into_error()))?
        .sync_all()
        .map_err(io_err)?;
    file.commit()?;
    Ok(result)
}

/// A line's fields: split on tabs when it has one (each field trimmed, trailing empty ones
/// dropped: an empty field in the middle stays, to be named, and the first, an id, may hold a
/// space; the others split on spaces too), else on runs of white space.
fn split_fields(line: &str) -> Vec<&str> {
    let line = line.trim_end_matches(['\n', '\r']);
    if !line.contains('\t') {
        return line.split_whitespace().collect();
    }
    // Past the first field (the id) no field holds a space: a song id, a play count.
    let mut f = Vec::new();
    for (i, part) in line.split('\t').map(str::trim).enumerate() {
        match i == 0 || part.is_empty() {
            true => f.push(part),
            false => f.extend(part.split_whitespace()),
        }
    }
    while f.last().is_some_and(|x| x.is_empty()) {
        f.pop();
    }
    f
}

/// The lines of a `--users`, `--histories` or `--songs` file: each non-blank line that is not a
/// `#` comment goes to `f` with its number and its fields (split as [`split_fields`]; a byte-order
/// mark before the first dropped); `f` returns `Err((id, reason))` to skip it, naming what the
/// line names. Reads line by line (the file may be large). Returns the skipped lines; a file of
/// which no line was kept is an error naming it, `nothing` saying what was looked for.
pub(crate) fn read_lines(
    path: &Path,
    nothing: &str,
    mut f: impl FnMut(&[&str]) -> Result<(), (String, String)>,
) -> Result<Vec<SkippedLine>, Error> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let mut reader = std::io::BufReader::new(file);
    let (mut skipped, mut lines, mut kept) = (Vec::new(), 0usize, 0usize);
    let mut raw = Vec::new();
    for n in 0.. {
        raw.clear();
        if reader
            .read_until(b'\n', &mut raw)
            .map_err(|e| IoError::io(path, e))?
            == 0
        {
            break;
        }
        let fields: Result<Vec<&str>, _> = std::str::from_utf8(&raw).map(|l| {
            let l = if n == 0 {
                l.trim_start_matches('\u{feff}')
            } else {
                l
            };
            split_fields(l)
        });
        let outcome = match fields {
            Ok(f) if f.is_empty() || f[0].starts_with('#') => continue,
            Ok(fields) => f(&fields),
            Err(_) => Err((String::new(), "not valid UTF-8 (ids are text)".into())),
        };
        lines += 1;
        match outcome {
            Ok(()) => kept += 1,
            Err((id, reason)) => skipped.push(SkippedLine {
                line: n + 1,
                id: crate::text::clip(&id, 60).to_string(),
                reason,
            }),
        }
    }
    if kept == 0 {
        let why = match skipped.first() {
            Some(s) => format!(
                "{} of them skipped; line {}: {}",
                skipped.len(),
                s.line,
                s.reason
            ),
            None => "nothing but blank lines and comments".into(),
        };
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "{nothing} ({} read; {why})",
                crate::text::count(lines as u64, "line")
            ),
        }
        .into());
    }
    Ok(skipped)
}

/// The users a `--users` file names (one id a line), in its order: the dataset's user indices,
/// the lines skipped and why (unknown id, a second field, with `fold` another fold's user), and
/// how many users were listed again (their first line counts).
fn read_user_list(
    path: &Path,
    ds: &Dataset,
    data: &Path,
    fold: Option<u32>,
) -> Result<(Vec<u32>, Vec<SkippedLine>, usize), Error> {
    let index: std::collections::HashMap<&str, u32> = ds
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let (mut chosen, mut repeated) = (Vec::new(), 0);
    let mut seen = std::collections::HashSet::new();
    let skipped = read_lines(path, "no user to recommend for", |fields| {
        let id = fields[0];
        let skip = |reason: String| Err((id.to_string(), reason));
        if id.is_empty() {
            return skip("the user id is empty".into());
        }
        if let Some(extra) = fields.get(1) {
            return skip(format!(
                "expected one user id a line, found a second field {:?}",
                crate::text::clip(extra, 60)
            ));
        }
        let Some(&u) = index.get(id) else {
            return skip(format!("not a user of {}", data.display()));
        };
        if let Some(f) = fold {
            let theirs = ds.user_fold.get(u as usize).copied().unwrap_or(u32::MAX);
            if theirs != f {
                return skip(format!(
                    "in fold {theirs}, not a test user of --fold {f} (that fold's model trained on their listens)"
                ));
            }
        }
        if seen.insert(u) {
            chosen.push(u);
        } else {
            repeated += 1;
        }
        Ok(())
    })?;
    Ok((chosen, skipped, repeated))
}

/// A new user of a `--histories` file: id, songs in listening order, plays of each.
type NewUser = (String, Vec<u32>, Vec<f32>);

/// New users' histories from a `--histories` file: `user song [plays]` per line (tab
/// separated, or by spaces in a line without a tab; plays a whole number from 1 to 999,999,999 as in the triplets, 1 when left
/// out), each user's songs in the order of their lines, users in the order of their first line.
/// A line that cannot be read, or names a song the catalogue lacks, is skipped and reported; a
/// (user, song) pair listed again adds its plays to the first. Returns the users, the skipped
/// lines and the count of repeated pairs; a file that gives no user a song is an error naming
/// it.
fn read_histories(
    path: &Path,
    ds: &Dataset,
) -> Result<(Vec<NewUser>, Vec<SkippedLine>, usize), Error> {
    let songs: std::collections::HashMap<&str, u32> = ds
        .song_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let mut users: Vec<(String, Listens)> = Vec::new();
    let mut by_id: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut repeated = 0;
    let skipped = read_lines(path, "no new user with a song of the catalogue", |fields| {
        let user = fields[0];
        let skip = |reason: String| Err((user.to_string(), reason));
        if !(2..=3).contains(&fields.len()) {
            return skip(format!(
                "expected `user song [plays]`, found {}",
                crate::text::count(fields.len() as u64, "field")
            ));
        }
        if user.is_empty() {
            return skip("the user id is empty".into());
        }
        if fields[1].is_empty() {
            return skip("the song id is empty".into());
        }
        let Some(&song) = songs.get(fields[1]) else {
            return skip(format!(
                "song {:?} is not in the dataset's catalogue",
                crate::text::clip(fields[1], 60)
            ));
        };
        let plays = match fields.get(2) {
            None => 1,
            Some(v) => match crate::data::triplets::parse_count(v.as_bytes(), "play count") {
                Ok(p) => p,
                Err(reason) => return skip(reason),
            },
        };
        let u = *by_id.entry(user.to_string()).or_insert_with(|| {
            users.push((user.to_string(), Listens::default()));
            users.len() - 1
        });
        if users[u].1.add(song, plays as f32) {
            repeated += 1;
        }
        Ok(())
    })?;
    let users = users
        .into_iter()
        .map(|(id, l)| (id, l.songs, l.plays))
        .collect();
    Ok((users, skipped, repeated))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tabs split when a line has one (an empty field named, an id with a space kept whole),
    /// else runs of white space.
    #[test]
    fn fields_split_on_tabs_when_there_are_some() {
        assert_eq!(split_fields("u1  SO1 3\n"), ["u1", "SO1", "3"]);
        assert_eq!(split_fields("\tSO1\t1\r\n"), ["", "SO1", "1"]);
        assert_eq!(split_fields("newB\t\t3"), ["newB", "", "3"]);
        assert_eq!(split_fields("new C\tSO1\t\t\n"), ["new C", "SO1"]);
        assert!(split_fields(" \t \n").is_empty());
        assert_eq!(
            split_fields("bob\tSO1 1 extra"),
            ["bob", "SO1", "1", "extra"]
        );
    }

    /// The growing prefix gives the full sort's order whatever `pick` skips: songs that `pick`
    /// passes over past the first round (4k) are reached by the later ones, -inf and NaN never
    /// come, ties go to the lower index, and a list short of k ends once every song was seen.
    #[test]
    fn best_first_walks_the_full_order_as_far_as_pick_needs() {
        let n = 5000u32;
        // Scores with ties (every value twice), two masked songs and a NaN.
        let mut scores: Vec<f32> = (0..n).map(|s| ((s * 7919) % 2500) as f32).collect();
        scores[3] = f32::NEG_INFINITY;
        scores[10] = f32::NAN;
        let mut full: Vec<u32> = (0..n).filter(|&s| s != 3 && s != 10).collect();
        full.sort_by(|a, b| {
            scores[*b as usize]
                .total_cmp(&scores[*a as usize])
                .then(a.cmp(b))
        });
        for (k, every) in [(5, 1), (5, 97), (10, 400), (40, 1), (3000, 2)] {
            let mut rounds = 0;
            let got = best_first(&scores, k, |r| {
                rounds += 1;
                r.map(|(s, _)| s)
                    .filter(|s| s % every == 0)
                    .take(k)
                    .collect()
            });
            let want: Vec<u32> = full
                .iter()
                .copied()
                .filter(|s| s % every == 0)
                .take(k)
                .collect();
            assert_eq!(got, want, "k {k}, every {every}th song");
            if every >= 97 {
                assert!(rounds > 1, "k {k}, every {every}: the prefix never grew");
            }
        }
        // A list short of k: every song seen, then it ends.
        let odd = best_first(&scores, 10, |r| {
            r.map(|(s, _)| s)
                .filter(|&s| s % 1000 == 999)
                .take(10)
                .collect()
        });
        let want: Vec<u32> = full.iter().copied().filter(|s| s % 1000 == 999).collect();
        assert_eq!((odd.len(), odd), (5, want));
    }
}
