//! `compare --cold-songs F`: item cold start. A share F of the songs (the *cold* songs, drawn
//! uniformly among the songs by the seed, the same for every method and fold) is held out
//! entirely: no listen of a cold song is seen in training — not by the training or validation
//! users, not in any history the models read, not in the neighbour lists, popularity or
//! EASE fits. For each fold, every test user with at least one cold and one warm song is asked
//! to rank **the cold songs**: candidates = all cold songs, relevant = the user's cold songs,
//! history = **all** the user's warm songs (none of them is a target here, so the visible/held-out
//! split of warm evaluation has nothing to protect; the whole warm history is what a service
//! would know when a new song arrives). Users without a cold or without a warm song are skipped
//! and counted.
//!
//! Methods: `contentknn` (mean cosine of content vectors with the artist, its weight chosen on the
//! warm view's validation users, [`ContentKnn`]); `popularity` as
//! [`ArtistPopularity`] (plain popularity is 0 for every cold song); the learned models, trained
//! on the *warm view* of the dataset ([`warm_view`]: cold songs removed from the catalogue, so
//! they are not even negatives of the training softmax), then scoring a cold song from its
//! features and artist: the feature projection `V[s] W_o` of `q_s = E[s] + V[s] W_o` plus the
//! mean learned row `E` and bias of the warm songs by its artist, or, when its artist has none,
//! an attribute-to-feature mapping fitted after training from the warm songs' features to their
//! learned rows `E[s]` and biases ([`fit_mapping`]); a cold song has no learned row, no bias and
//! no neighbour (it has no co-listen). item-kNN and EASE cannot
//! rank a song without co-listens: "not applicable" rows.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use serde_json::{json, Value};

use super::folds::DEPTH;
use super::options::{CompareOptions, Method};
use super::report::mean_std;
use crate::backend::model_ops::ModelOps;
use crate::data::{Dataset, SongVectors};
use crate::error::{Error, IoError};
use crate::eval::baselines::{spd_inverse, ArtistPopularity, ContentKnn};
use crate::eval::metrics::{evaluate, Catalogue, Metrics};
use crate::io::write_atomic;
use crate::model::batch::{upload, Example};
use crate::train::corpus::{fold_data, select_features, FeatureSet};
use crate::train::run::train;
use crate::train::Truth;
use crate::train::{truths, Corpus};

/// Fewest cold songs `--cold-songs` may leave: a top-10 list among fewer says little.
pub const MIN_COLD_SONGS: usize = 20;

/// Which songs are cold.
#[derive(Clone, Debug)]
pub struct ColdSplit {
    /// Per song.
    pub cold: Vec<bool>,
    /// The cold songs, ascending.
    pub songs: Vec<u32>,
}

/// Draws `round(share × songs)` cold songs uniformly (a seeded shuffle): the cold set then has
/// the catalogue's mix of popular and long-tail songs, as new releases of every kind would.
pub fn cold_split(songs: usize, share: f64, seed: u64) -> Result<ColdSplit, Error> {
    if !(share > 0.0 && share < 1.0) {
        return Err(Error::Other(format!(
            "--cold-songs {share}: must be a share of the songs, 0 < F < 1"
        )));
    }
    let n = (share * songs as f64).round() as usize;
    if n < MIN_COLD_SONGS {
        return Err(Error::Other(format!(
            "--cold-songs {share}: {} of {songs}; ranking among them needs at least {MIN_COLD_SONGS} (raise F)",
            crate::text::count(n as u64, "cold song")
        )));
    }
    if n >= songs {
        return Err(Error::Other(format!(
            "--cold-songs {share}: all {songs} songs would be cold, none left to train on"
        )));
    }
    let mut order: Vec<u32> = (0..songs as u32).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0xc01d_5065));
    let mut cold_songs = order[..n].to_vec();
    cold_songs.sort_unstable();
    let mut cold = vec![false; songs];
    for &s in &cold_songs {
        cold[s as usize] = true;
    }
    Ok(ColdSplit {
        cold,
        songs: cold_songs,
    })
}

/// The dataset without the cold songs: they leave the catalogue (songs renumbered in order) and
/// every listen of them leaves the histories; users, folds and the visible flags of the other
/// listens stay. Returns it and, per song of the original, its index in the view
/// (`u32::MAX` for a cold song).
pub fn warm_view(ds: &Dataset, cold: &[bool]) -> (Dataset, Vec<u32>) {
    let mut map = vec![u32::MAX; ds.songs()];
    let mut next = 0u32;
    for (s, m) in map.iter_mut().enumerate() {
        if !cold[s] {
            *m = next;
            next += 1;
        }
    }
    let keep = |s: usize| !cold[s];
    let pick = |v: &[String]| -> Vec<String> {
        v.iter()
            .enumerate()
            .filter(|(s, _)| keep(*s))
            .map(|(_, x)| x.clone())
            .collect()
    };
    let mut w = ds.clone();
    w.song_ids = pick(&ds.song_ids);
    w.song_meta = (0..ds.songs())
        .filter(|&s| keep(s))
        .map(|s| ds.song_meta[s].clone())
        .collect();
    w.portrait.song_genre = (0..ds.songs())
        .filter(|&s| keep(s))
        .map(|s| ds.portrait.song_genre[s])
        .collect();
    w.portrait.song_language = (0..ds.songs())
        .filter(|&s| keep(s))
        .map(|s| ds.portrait.song_language[s])
        .collect();
    w.song_vectors = ds.song_vectors.as_ref().map(|v| SongVectors {
        values: (0..ds.songs())
            .filter(|&s| keep(s))
            .flat_map(|s| v.values[s * v.dim..(s + 1) * v.dim].iter().copied())
            .collect(),
        present: (0..ds.songs())
            .filter(|&s| keep(s))
            .map(|s| v.present[s])
            .collect(),
        ..v.clone()
    });
    w.indptr = vec![0];
    w.indices.clear();
    w.plays.clear();
    w.visible.clear();
    for u in 0..ds.users() {
        for r in ds.indptr[u] as usize..ds.indptr[u + 1] as usize {
            let s = ds.indices[r] as usize;
            if keep(s) {
                w.indices.push(map[s]);
                w.plays.push(ds.plays[r]);
                w.visible.push(ds.visible[r]);
            }
        }
        w.indptr.push(w.indices.len() as u64);
    }
    (w, map)
}

/// One fold's cold-start questions: per test user with cold and warm songs, the warm history
/// (original song ids) and the cold songs as truth.
pub struct ColdQuestions {
    pub examples: Vec<Example>,
    pub truths: Vec<Truth>,
    pub skipped_no_cold: usize,
    pub skipped_no_warm: usize,
}

pub fn cold_questions(ds: &Dataset, split: &ColdSplit, fold: u32) -> ColdQuestions {
    let mut q = ColdQuestions {
        examples: vec![],
        truths: vec![],
        skipped_no_cold: 0,
        skipped_no_warm: 0,
    };
    for u in ds.split(fold).test_users {
        let (songs, plays) = ds.history(u as usize);
        let (mut warm, mut warm_plays, mut truth) = (vec![], vec![], Truth::new());
        for (&s, &p) in songs.iter().zip(plays) {
            if split.cold[s as usize] {
                if !truth.iter().any(|t| t.0 == s) {
                    truth.push((s, p));
                }
            } else {
                warm.push(s);
                warm_plays.push(p);
            }
        }
        if truth.is_empty() {
            q.skipped_no_cold += 1;
        } else if warm.is_empty() {
            q.skipped_no_warm += 1;
        } else {
            q.examples.push(Example {
                user: u,
                songs: warm,
                plays: warm_plays,
                targets: truth.iter().map(|t| t.0).collect(),
                exclude: vec![],
            });
            q.truths.push(truth);
        }
    }
    q
}

/// The `k` best of `candidates` by `scores` (aligned with them), ties broken by `tie` (a seeded
/// rank per song, so that no method gains from the order of song ids).
pub fn rank_candidates(scores: &[f32], candidates: &[u32], tie: &[u32], k: usize) -> Vec<u32> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        scores[b]
            .total_cmp(&scores[a])
            .then(tie[candidates[a] as usize].cmp(&tie[candidates[b] as usize]))
    });
    order.into_iter().take(k).map(|i| candidates[i]).collect()
}

/// One method on one fold.
#[derive(Clone, Debug, Serialize)]
pub struct ColdFold {
    pub fold: u32,
    pub metrics: Metrics,
    pub seconds: f64,
}

/// One method over the folds, or why it did not run.
#[derive(Clone, Debug, Serialize)]
pub struct ColdRow {
    pub name: String,
    pub folds: Vec<ColdFold>,
    /// "not applicable: …" or "not run: …".
    pub not_run: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ColdReport {
    pub data: String,
    pub source: String,
    pub share: f64,
    pub songs: usize,
    pub cold_songs: usize,
    pub k: usize,
    pub folds: u32,
    pub backend: String,
    pub seed: u64,
    /// Per fold: users ranked, and users skipped for having no cold / no warm song.
    pub users: Vec<(u32, usize, usize, usize)>,
    pub rows: Vec<ColdRow>,
    pub notes: Vec<String>,
    pub files: Vec<std::path::PathBuf>,
    pub seconds: f64,
}

/// Runs the item-cold-start comparison (`compare --cold-songs share`).
pub fn compare_cold<B: ModelOps>(
    b: &B,
    o: &CompareOptions,
    share: f64,
    mut log: impl FnMut(&str),
) -> Result<ColdReport, Error> {
    let t_all = Instant::now();
    let ds = Dataset::load(&o.data)?;
    super::check_folds_and_k(o, &ds)?;
    let split = cold_split(ds.songs(), share, o.train.seed)?;
    let ckdir = o.report.join("checkpoints");
    std::fs::create_dir_all(&ckdir).map_err(|e| IoError::io(&o.report, e))?;
    log(&format!(
        "cold start: {} of {} songs held out (--cold-songs {share}, seed {})",
        split.songs.len(),
        ds.songs(),
        o.train.seed
    ));
    let mut tie: Vec<u32> = (0..ds.songs() as u32).collect();
    tie.shuffle(&mut StdRng::seed_from_u64(o.train.seed ^ 0x7133));
    let mut tie_rank = vec![0u32; ds.songs()];
    for (r, &s) in tie.iter().enumerate() {
        tie_rank[s as usize] = r as u32;
    }
    let cat = Catalogue {
        songs: ds.songs(),
        popularity: vec![0; ds.songs()],
        genre: None,
    };
    // The learned models' features for the cold songs, and the warm view they train on.
    let features = select_features(&ds, o.train.features)?;
    let needs_view = features.is_some() && o.methods.iter().any(|m| matches!(m, Method::Neural(_)));
    let (view_path, map) = if needs_view {
        let (view, map) = warm_view(&ds, &split.cold);
        let p = ckdir.join("cold-warm-view.h5");
        view.save(&p)?;
        (Some((p, view)), map)
    } else {
        (None, vec![])
    };
    let cold_artists: Vec<String> = split
        .songs
        .iter()
        .map(|&s| ds.song_meta[s as usize].artist.clone())
        .collect();
    let (content, content_note) = if o.methods.contains(&Method::ContentKnn) {
        match cold_content(&ds, &split.cold, o)? {
            Some((c, note)) => (Some(c), Some(note)),
            None => (None, None),
        }
    } else {
        (None, None)
    };
    let mut rows: Vec<ColdRow> = o
        .methods
        .iter()
        .map(|m| ColdRow {
            name: m.name().to_string(),
            folds: vec![],
            not_run: match m {
                Method::ItemKnn | Method::Ease => {
                    Some("not applicable: it ranks by co-listens, and a cold song has none".into())
                }
                Method::ContentKnn if content.is_none() => {
                    Some("not run: no song vectors and no song genres".into())
                }
                Method::Neural(_) if features.is_none() => Some(format!(
                    "not run: no song features (--features {} selects none)",
                    o.train.features.name()
                )),
                _ => None,
            },
        })
        .collect();
    let mut users = vec![];
    let mut notes = vec![
        "history = all of a test user's warm songs; candidates = all cold songs; relevant = the user's cold songs".to_string(),
        "popularity = listens of the fitting users to the song's artist's warm songs (0 without artist)".to_string(),
    ];
    notes.extend(content_note);
    if needs_view {
        notes.push("learned models: trained on the warm view (cold songs out of the catalogue), cold song score = u·q̂ + b̂ with [q̂, b̂] = V[s]·[W_o, 0] plus the mean learned row and bias of the warm songs by the song's artist, or, for an artist without warm songs, V[s]·R, R the attribute-to-feature mapping fitted after training from the warm songs' features to their learned rows and biases".into());
    }
    for fold in 0..o.folds {
        let q = cold_questions(&ds, &split, fold);
        users.push((fold, q.examples.len(), q.skipped_no_cold, q.skipped_no_warm));
        log(&format!(
            "fold {fold}: {} test users ranked, {} without a cold song, {} without a warm song",
            q.examples.len(),
            q.skipped_no_cold,
            q.skipped_no_warm
        ));
        let fit_users = ds.split(fold).train_users;
        for (mi, &m) in o.methods.iter().enumerate() {
            if rows[mi].not_run.is_some() {
                continue;
            }
            let t0 = Instant::now();
            let lists: Vec<Vec<u32>> = match m {
                Method::Popularity => {
                    let p = ArtistPopularity::fit(&ds, &fit_users, &split.cold);
                    let sc: Vec<f32> = split.songs.iter().map(|&s| p.scores[s as usize]).collect();
                    q.examples
                        .iter()
                        .map(|_| rank_candidates(&sc, &split.songs, &tie_rank, DEPTH))
                        .collect()
                }
                Method::ContentKnn => {
                    let c = content.as_ref().expect("checked above");
                    q.examples
                        .iter()
                        .map(|e| {
                            let sc = c.scores(&e.songs, &split.songs);
                            rank_candidates(&sc, &split.songs, &tie_rank, DEPTH)
                        })
                        .collect()
                }
                Method::Neural(kind) => {
                    let (path, view) = view_path.as_ref().expect("checked above");
                    let (fv, d, _) = features.as_ref().expect("checked above");
                    let mut opts = o.train.clone();
                    opts.kind = kind;
                    opts.fold = fold;
                    opts.data = path.clone();
                    opts.resume = false;
                    opts.out = ckdir.join(format!("{}-cold-fold{fold}.ckpt", kind.name()));
                    train(b, &opts, |_| {}, |_, _, _, _| {})?.remove_latest();
                    let scores = neural_cold_scores(
                        b,
                        view,
                        &opts.out,
                        &q.examples,
                        &map,
                        ColdSongs {
                            songs: &split.songs,
                            artists: &cold_artists,
                        },
                        (fv, *d),
                    )?;
                    scores
                        .iter()
                        .map(|sc| rank_candidates(sc, &split.songs, &tie_rank, DEPTH))
                        .collect()
                }
                Method::ItemKnn | Method::Ease => unreachable!("not applicable rows skip"),
            };
            let metrics = evaluate(&lists, &q.truths, o.k, &cat);
            let seconds = t0.elapsed().as_secs_f64();
            log(&format!(
                "fold {fold} {:<10} P@{k} {:.4}  R@{k} {:.4}  NDCG@{k} {:.4}  mAP@{k} {:.4}  ({} users, {seconds:.1} s)",
                m.name(),
                metrics.precision,
                metrics.recall,
                metrics.ndcg,
                metrics.map,
                metrics.users,
                k = o.k
            ));
            rows[mi].folds.push(ColdFold {
                fold,
                metrics,
                seconds,
            });
        }
    }
    let mut r = ColdReport {
        data: o.data.display().to_string(),
        source: ds.source.clone(),
        share,
        songs: ds.songs(),
        cold_songs: split.songs.len(),
        k: o.k,
        folds: o.folds,
        backend: b.describe(),
        seed: o.train.seed,
        users,
        rows,
        notes,
        files: vec![],
        seconds: 0.0,
    };
    let md = o.report.join("report.md");
    write_atomic(&md, cold_markdown(&r).as_bytes())?;
    let js = o.report.join("results.json");
    r.files = vec![md, js.clone()];
    r.seconds = t_all.elapsed().as_secs_f64();
    let mut full = r.json();
    full["per_fold"] = serde_json::to_value(&r.rows).unwrap_or(Value::Null);
    write_atomic(
        &js,
        serde_json::to_string_pretty(&full)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(r)
}

/// Ridge penalty of the attribute-to-feature mapping (the song vectors are z-scored, so one
/// unit per column; small next to the ~1,000 warm songs of the bundled data).
pub const MAPPING_RIDGE: f64 = 1.0;

/// The attribute-to-feature mapping (Gantner et al., ICDM 2010): the least-squares map `R`
/// (`[d, dim + 1]`, ridge `lambda`) from the warm songs' feature vectors `x` (`[n, d]`) to what
/// the model learned for them beyond the projection, `[E[s], b_s]` (`y`, `[n, dim + 1]`).
pub fn fit_mapping(
    x: &[f32],
    y: &[f32],
    n: usize,
    d: usize,
    out: usize,
    lambda: f64,
) -> Result<Vec<f32>, Error> {
    let mut g = vec![0.0f64; d * d];
    let mut xty = vec![0.0f64; d * out];
    for r in 0..n {
        let xr = &x[r * d..(r + 1) * d];
        let yr = &y[r * out..(r + 1) * out];
        for (i, &a) in xr.iter().enumerate() {
            for (j, &c) in xr.iter().enumerate() {
                g[i * d + j] += a as f64 * c as f64;
            }
            for (k, &t) in yr.iter().enumerate() {
                xty[i * out + k] += a as f64 * t as f64;
            }
        }
    }
    for i in 0..d {
        g[i * d + i] += lambda;
    }
    let inv = spd_inverse(g, d).map_err(|e| Error::Other(format!("cold-start mapping: {e}")))?;
    let mut m = vec![0.0f32; d * out];
    for i in 0..d {
        for k in 0..out {
            m[i * out + k] = (0..d)
                .map(|j| inv[i * d + j] * xty[j * out + k])
                .sum::<f64>() as f32;
        }
    }
    Ok(m)
}

/// A learned model's scores of the cold songs for each example (history in original ids):
/// `u·q̂_s + b̂_s` with `[q̂_s, b̂_s] = V[s] [W_o, 0] + V[s] R`: the model's feature projection
/// `W_o` plus the attribute-to-feature mapping `R` ([`fit_mapping`]) fitted after training from
/// the warm songs' features to their learned rows `E[s]` and biases `b_s`, so a cold song gets
/// the part of the song representation that the model put in `E` and its features predict.
/// Only the cold song's features enter. `u` is the model's user vector for the history mapped
/// into the warm view (`map`). The model (trained on `view`) is read from `ckpt`.
/// Content-kNN for the cold songs, its artist weight chosen on fold 0's validation users of the
/// warm view (warm songs only: no listen of a cold song is read), with a note saying so.
fn cold_content(
    ds: &Dataset,
    cold: &[bool],
    o: &CompareOptions,
) -> Result<Option<(ContentKnn, String)>, Error> {
    let (view, _) = warm_view(ds, cold);
    let (corpus, _) = Corpus::from_dataset(&view, FeatureSet::None)?;
    let fd = fold_data(&view, &corpus, 0, o.train.seed, o.train.max_validation)?;
    let cat = corpus.catalogue(&fd.train_users, None);
    let t = truths(&corpus, &fd.validation);
    let Some((c, tried)) = ContentKnn::choose(&view, &fd.validation, &t, o.k, &cat) else {
        return Ok(None);
    };
    let note = format!(
        "content-kNN artist weight {} chosen by NDCG@{} of warm ranking on fold 0's validation users of the warm view ({})",
        c.artist_weight,
        o.k,
        super::folds::artist_weights_tried(&tried)
    );
    Ok(ContentKnn::new(ds, c.artist_weight).map(|c| (c, note)))
}

/// The cold songs to score (indices of the full dataset) and their artists (empty: unknown).
#[derive(Clone, Copy)]
pub struct ColdSongs<'a> {
    pub songs: &'a [u32],
    pub artists: &'a [String],
}

/// Each example's score of every cold song by the model in `ckpt` (trained on the warm `view`);
/// an ensemble's is the sum of its members' scores.
pub fn neural_cold_scores<B: ModelOps>(
    b: &B,
    view: &Dataset,
    ckpt: &Path,
    examples: &[Example],
    map: &[u32],
    cold: ColdSongs<'_>,
    features: (&[f32], usize),
) -> Result<Vec<Vec<f32>>, Error> {
    let (models, corpus, _) = crate::eval::run::load_ensemble(b, view, ckpt)?;
    let mut sum: Vec<Vec<f32>> = Vec::new();
    for model in &models {
        let s = member_cold_scores(b, view, ckpt, model, &corpus, examples, map, cold, features)?;
        if sum.is_empty() {
            sum = s;
        } else {
            for (acc, x) in sum.iter_mut().zip(s) {
                acc.iter_mut().zip(x).for_each(|(a, v)| *a += v);
            }
        }
    }
    Ok(sum)
}

/// [`neural_cold_scores`] of one model.
#[allow(clippy::too_many_arguments)]
fn member_cold_scores<B: ModelOps>(
    b: &B,
    view: &Dataset,
    ckpt: &Path,
    model: &crate::model::Model<B>,
    corpus: &Corpus,
    examples: &[Example],
    map: &[u32],
    cold: ColdSongs<'_>,
    features: (&[f32], usize),
) -> Result<Vec<Vec<f32>>, Error> {
    let ColdSongs {
        songs: cold,
        artists: cold_artists,
    } = cold;
    let (fv, d) = features;
    let proj = model.scorer.proj.ok_or_else(|| {
        Error::Other(format!(
            "{}: the model has no feature projection",
            ckpt.display()
        ))
    })?;
    let w = b.to_f32(model.params.get(proj))?;
    let dim = model.scorer.dim;
    if w.len() != d * dim {
        return Err(Error::Other(format!(
            "{}: feature projection is {} values, expected {d} × {dim}",
            ckpt.display(),
            w.len()
        )));
    }
    // The warm songs' learned rows and biases, against their features (the view's own).
    let (wx, wd) = corpus.features.as_ref().ok_or_else(|| {
        Error::Other(format!(
            "{}: the warm view has no song features",
            ckpt.display()
        ))
    })?;
    if *wd != d {
        return Err(Error::Other(format!(
            "{}: the warm view has {wd} feature columns, the cold songs {d}",
            ckpt.display()
        )));
    }
    let warm = corpus.songs;
    let e = b.to_f32(model.params.get(model.scorer.emb))?;
    let mut bias = Vec::with_capacity(warm);
    for &id in &model.scorer.bias {
        bias.extend(b.to_f32(model.params.get(id))?);
    }
    if e.len() != warm * dim || bias.len() != warm {
        return Err(Error::Other(format!(
            "{}: song table of {} values and {} biases for {warm} songs × {dim}",
            ckpt.display(),
            e.len(),
            bias.len()
        )));
    }
    let out_w = dim + 1;
    let mut y = vec![0.0f32; warm * out_w];
    for s in 0..warm {
        y[s * out_w..s * out_w + dim].copy_from_slice(&e[s * dim..(s + 1) * dim]);
        y[s * out_w + dim] = bias[s];
    }
    let r = fit_mapping(wx, &y, warm, d, out_w, MAPPING_RIDGE)?;
    // Per artist of the warm songs: the sum of their learned rows and biases, and how many.
    let mut artists: HashMap<&str, (Vec<f32>, f32)> = HashMap::new();
    for (s, m) in view.song_meta.iter().enumerate().take(warm) {
        if m.artist.is_empty() {
            continue;
        }
        let (sum, n) = artists
            .entry(m.artist.as_str())
            .or_insert_with(|| (vec![0.0; out_w], 0.0));
        sum.iter_mut()
            .zip(&y[s * out_w..(s + 1) * out_w])
            .for_each(|(a, x)| *a += x);
        *n += 1.0;
    }
    // [q̂_c, b̂_c] = V[c] [W_o, 0] + the learned part: the mean row and bias of the warm songs by
    // the cold song's artist when it has any, else the mapping's V[c] R.
    let mut p = vec![0.0f32; cold.len() * out_w];
    for (i, &c) in cold.iter().enumerate() {
        let v = &fv[c as usize * d..(c as usize + 1) * d];
        let row = &mut p[i * out_w..(i + 1) * out_w];
        let same = cold_artists
            .get(i)
            .filter(|a| !a.is_empty())
            .and_then(|a| artists.get(a.as_str()));
        for (j, &x) in v.iter().enumerate() {
            for (k, o) in row.iter_mut().enumerate() {
                let wo = if k < dim { w[j * dim + k] } else { 0.0 };
                let mapped = if same.is_some() {
                    0.0
                } else {
                    r[j * out_w + k]
                };
                *o += x * (wo + mapped);
            }
        }
        if let Some((sum, n)) = same {
            row.iter_mut().zip(sum).for_each(|(o, s)| *o += s / n);
        }
    }
    let mapped: Vec<Example> = examples
        .iter()
        .map(|e| Example {
            user: e.user,
            songs: e.songs.iter().map(|&s| map[s as usize]).collect(),
            plays: e.plays.clone(),
            targets: vec![],
            exclude: vec![],
        })
        .collect();
    let mut out = Vec::with_capacity(examples.len());
    for chunk in mapped.chunks(256) {
        let db = upload(b, &model.cfg, corpus.portraits.as_ref(), chunk)?;
        let (u, _) = model.forward(b, &db, None)?;
        let u = b.to_f32(&u)?;
        for r in 0..chunk.len() {
            let ur = &u[r * dim..(r + 1) * dim];
            out.push(
                (0..cold.len())
                    .map(|i| {
                        let q = &p[i * out_w..(i + 1) * out_w];
                        q[..dim].iter().zip(ur).map(|(a, b)| a * b).sum::<f32>() + q[dim]
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// Reads one metric.
type MetricOf = fn(&Metrics) -> f64;

impl ColdRow {
    fn stat(&self, f: impl Fn(&Metrics) -> f64) -> (f64, f64) {
        mean_std(&self.folds.iter().map(|x| f(&x.metrics)).collect::<Vec<_>>())
    }
    fn text(&self, f: impl Fn(&Metrics) -> f64) -> String {
        let (m, s) = self.stat(f);
        format!("{m:.4} ± {s:.4}")
    }
}

impl ColdReport {
    /// `{"cold_start": {"share", "cold_songs", "models": {name: {"ndcg_at_10", "_std", …} or
    /// {"not_run": reason}}}}` plus the run's data.
    pub fn json(&self) -> Value {
        let k = self.k;
        let mut models = serde_json::Map::new();
        for r in &self.rows {
            let v = match &r.not_run {
                Some(why) => json!({ "not_run": why }),
                None => {
                    let mut o = serde_json::Map::new();
                    let fields: [(&str, MetricOf); 4] = [
                        ("precision", |m| m.precision),
                        ("recall", |m| m.recall),
                        ("ndcg", |m| m.ndcg),
                        ("map", |m| m.map),
                    ];
                    for (name, f) in fields {
                        let (mean, std) = r.stat(f);
                        o.insert(format!("{name}_at_{k}"), json!(mean));
                        o.insert(format!("{name}_at_{k}_std"), json!(std));
                    }
                    o.insert(
                        "users_ranked".into(),
                        json!(r.folds.iter().map(|f| f.metrics.users).sum::<usize>()),
                    );
                    Value::Object(o)
                }
            };
            models.insert(r.name.clone(), v);
        }
        json!({
            "k": k,
            "folds": self.folds,
            "data": self.data,
            "source": self.source,
            "backend": self.backend,
            "seed": self.seed,
            "cold_start": {
                "share": self.share,
                "songs": self.songs,
                "cold_songs": self.cold_songs,
                "users_per_fold": self.users.iter().map(|u| json!({"fold": u.0, "ranked": u.1, "no_cold_song": u.2, "no_warm_song": u.3})).collect::<Vec<_>>(),
                "models": models,
            },
            "notes": self.notes,
            "files": self.files,
            "seconds": self.seconds,
        })
    }

    /// The "Cold start" table: method, NDCG@k, P@k, R@k (mean ± std over folds), users ranked.
    pub fn table(&self) -> String {
        let k = self.k;
        let mut s = format!(
            "| method | NDCG@{k} | P@{k} | R@{k} | users ranked |\n|---|---:|---:|---:|---:|\n"
        );
        for r in &self.rows {
            match &r.not_run {
                Some(why) => s.push_str(&format!("| {} | {why} | | | |\n", r.name)),
                None => s.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    r.name,
                    r.text(|m| m.ndcg),
                    r.text(|m| m.precision),
                    r.text(|m| m.recall),
                    r.folds.iter().map(|f| f.metrics.users).sum::<usize>()
                )),
            }
        }
        s
    }
}

fn cold_markdown(r: &ColdReport) -> String {
    let mut md = String::from("# Model comparison: item cold start\n\n");
    md.push_str(&format!(
        "Data: `{}` ({}). {} of {} songs cold (`--cold-songs {}`, drawn uniformly with seed {}), {} folds by user, cut-off k = {}, backend: {}.\n\n",
        r.data, r.source, r.cold_songs, r.songs, r.share, r.seed, r.folds, r.k, r.backend
    ));
    md.push_str("## Cold start\n\n");
    md.push_str(&r.table());
    md.push_str("\nMean ± standard deviation over folds; users ranked summed over folds.\n\n");
    md.push_str("| fold | users ranked | skipped: no cold song | skipped: no warm song |\n|---:|---:|---:|---:|\n");
    for u in &r.users {
        md.push_str(&format!("| {} | {} | {} | {} |\n", u.0, u.1, u.2, u.3));
    }
    md.push_str("\n## Notes\n\n");
    for n in &r.notes {
        md.push_str(&format!("- {n}\n"));
    }
    md
}
