//! Batches of users: histories right-aligned and padded to the longest in the batch (padding is
//! masked, so recurrences keep a zero state through it and the last step is the last listen),
//! prepared on the host and uploaded once per step.

use super::config::ModelConfig;
use crate::backend::model_ops::ModelOps;
use crate::backend::{BTensor, IndexPlan, OpResult};
use crate::error::OpError;

/// One user's input and, for training or evaluation, what should be predicted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Example {
    pub user: u32,
    /// Visible history in listening order, with play counts.
    pub songs: Vec<u32>,
    pub plays: Vec<f32>,
    /// Songs to predict (weights are spread evenly over them).
    pub targets: Vec<u32>,
    /// Songs never to recommend (the visible history).
    pub exclude: Vec<u32>,
}

/// What the user portraits are made of: the age bucket of every user (from the profile table,
/// independent of listening) and every song's labels, from which each example's language and
/// genre distribution are computed over its visible history only.
#[derive(Clone, Debug, Default)]
pub struct PortraitTable {
    /// Per user.
    pub age: Vec<u8>,
    /// Per song: genre category (`portrait::NO_GENRE` = unknown) and language (0 = unknown).
    pub song_genre: Vec<u8>,
    pub song_lang: Vec<u16>,
    pub n_genre: usize,
    pub n_lang: usize,
}

impl PortraitTable {
    /// `(language, genre distribution)` of a visible history.
    pub fn of_history(&self, songs: &[u32], plays: &[f32]) -> (u16, Vec<f32>) {
        let mut genre = vec![0.0; self.n_genre];
        let mut scratch = vec![0.0; self.n_lang.max(1)];
        let lang = crate::data::portrait::of_history(
            songs,
            plays,
            &self.song_genre,
            &self.song_lang,
            &mut genre,
            &mut scratch,
        );
        (lang, genre)
    }
}

pub struct DeviceBatch<B: ModelOps> {
    pub size: usize,
    pub steps: usize,
    pub users: Vec<u32>,
    /// History song of every (user, step), padding = song 0 (masked).
    pub songs: IndexPlan<B::Storage>,
    /// `[B, L]`: 1 for real steps, 0 for padding.
    pub mask: BTensor<B>,
    /// `[B, L]`: 0 for real steps, −∞ for padding (added to attention scores).
    pub mask_add: BTensor<B>,
    /// `[B, L]`: log(1 + plays) minus the user's mean of it, 0 on padding.
    pub logc: BTensor<B>,
    /// Rows `b·L + L − 1`: the last step of every sequence.
    pub last: IndexPlan<B::Storage>,
    pub age: IndexPlan<B::Storage>,
    pub lang: IndexPlan<B::Storage>,
    /// `[B, n_genre]` (empty when the model has no genre input).
    pub genre: BTensor<B>,
    /// `(row, song, weight)`, weights summing to 1/B per user with targets (the loss is the
    /// batch mean of each user's mean negative log-likelihood).
    pub targets: Vec<(u32, u32, f32)>,
    pub exclude: Vec<Vec<u32>>,
    /// The songs fed to the model per row (the kept part of the history), on the host: the
    /// scores' item-neighbourhood term is built from them.
    pub history: Vec<Vec<u32>>,
}

/// Uploads a batch. Histories longer than `max_history` keep their most recent part. Every
/// example needs one finite play count per history song and targets inside the catalogue.
pub fn upload<B: ModelOps>(
    b: &B,
    cfg: &ModelConfig,
    portraits: Option<&PortraitTable>,
    examples: &[Example],
) -> OpResult<DeviceBatch<B>> {
    check_examples(cfg, examples)?;
    let bs = examples.len();
    let steps = examples
        .iter()
        .map(|e| e.songs.len().min(cfg.max_history))
        .max()
        .unwrap_or(0)
        .max(1);
    let mut songs = vec![0u32; bs * steps];
    let mut mask = vec![0.0f32; bs * steps];
    let mut mask_add = vec![f32::NEG_INFINITY; bs * steps];
    let mut logc = vec![0.0f32; bs * steps];
    let with_targets = examples
        .iter()
        .filter(|e| !e.targets.is_empty())
        .count()
        .max(1);
    let mut targets = Vec::new();
    for (r, e) in examples.iter().enumerate() {
        let n = e.songs.len().min(cfg.max_history);
        let skip = e.songs.len() - n;
        // Play counts as preference relative to the user's own habit: log(1 + plays) minus its
        // mean over the history, so heavy and light listeners (HetRec weights reach 475,000,
        // Taste-Profile counts stay below 1,000) feed the same scale to the network.
        let kept = &e.plays[skip..];
        let mean = kept.iter().map(|&c| c.max(0.0).ln_1p()).sum::<f32>() / kept.len().max(1) as f32;
        for (k, (&s, &c)) in e.songs[skip..].iter().zip(kept).enumerate() {
            let i = r * steps + (steps - n) + k;
            songs[i] = s;
            mask[i] = 1.0;
            mask_add[i] = 0.0;
            logc[i] = c.max(0.0).ln_1p() - mean;
        }
        let mut t = e.targets.clone();
        t.sort_unstable();
        t.dedup();
        let w = 1.0 / (t.len().max(1) * with_targets) as f32;
        targets.extend(t.into_iter().map(|s| (r as u32, s, w)));
    }
    let last: Vec<u32> = (0..bs).map(|r| (r * steps + steps - 1) as u32).collect();
    let (age, lang, genre, ng) = match portraits {
        Some(pt) => {
            let ng = pt.n_genre;
            let (mut age, mut lang, mut genre) = (Vec::new(), Vec::new(), Vec::new());
            for e in examples {
                // The whole visible history, as the user's portrait (not the truncated input).
                let (l, g) = pt.of_history(&e.songs, &e.plays);
                age.push(pt.age.get(e.user as usize).copied().unwrap_or(0) as u32);
                lang.push(l as u32);
                genre.extend_from_slice(&g);
            }
            (age, lang, genre, ng)
        }
        None => (vec![0u32; bs], vec![0u32; bs], Vec::new(), 0),
    };
    // A model built without (part of) the portrait (`--no-portrait`: tables of size 0) reads
    // none of that part, whatever portraits the data has.
    let age = if cfg.n_age == 0 { vec![0u32; bs] } else { age };
    let lang = if cfg.n_lang == 0 {
        vec![0u32; bs]
    } else {
        lang
    };
    let (genre, ng) = if cfg.n_genre == 0 {
        (Vec::new(), 0)
    } else {
        (genre, ng)
    };
    Ok(DeviceBatch {
        size: bs,
        steps,
        users: examples.iter().map(|e| e.user).collect(),
        songs: b.index_plan(&songs, cfg.songs)?,
        mask: b.upload_f32(&mask, &[bs, steps])?,
        mask_add: b.upload_f32(&mask_add, &[bs, steps])?,
        logc: b.upload_f32(&logc, &[bs, steps])?,
        last: b.index_plan(&last, bs * steps)?,
        age: b.index_plan(&age, cfg.n_age.max(1))?,
        lang: b.index_plan(&lang, cfg.n_lang.max(1))?,
        genre: b.upload_f32(&genre, &[bs, ng])?,
        targets,
        exclude: examples.iter().map(|e| e.exclude.clone()).collect(),
        history: examples
            .iter()
            .map(|e| e.songs[e.songs.len() - e.songs.len().min(cfg.max_history)..].to_vec())
            .collect(),
    })
}

/// What [`upload`] needs of its examples: plays and songs of the same length (a shorter `plays`
/// panicked on a truncated history and silently dropped songs otherwise), finite play counts
/// (an infinite one made the whole sequence's inputs NaN), and targets inside the catalogue
/// (one outside it was left out of every tile's loss: a loss of 0 for that user). History songs
/// are checked by the index plan.
fn check_examples(cfg: &ModelConfig, examples: &[Example]) -> OpResult<()> {
    for (i, e) in examples.iter().enumerate() {
        let bad = |detail: String| {
            Err(OpError::Invalid {
                op: "batch",
                detail: format!("example {i} (user {}): {detail}", e.user),
            })
        };
        if e.plays.len() != e.songs.len() {
            return bad(format!(
                "{} play counts for {} history songs",
                e.plays.len(),
                e.songs.len()
            ));
        }
        if let Some(p) = e.plays.iter().find(|p| !p.is_finite()) {
            return bad(format!("play count {p} is not finite"));
        }
        if let Some(t) = e.targets.iter().find(|&&t| t as usize >= cfg.songs) {
            return bad(format!(
                "target song {t} is outside the catalogue of {} songs",
                cfg.songs
            ));
        }
    }
    Ok(())
}
