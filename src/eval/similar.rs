//! Songs like a song (`ainrnn similar`): "more like this" for one song, or for a few songs
//! together, by one of three measures.
//!
//! - **listens**: the same people play them. The co-listening similarity of the item-neighbour
//!   lists ([`crate::model::neighbours`]; cosine unless another is given) over every user of
//!   the dataset. A song's score for a set of seeds is its mean similarity to them.
//! - **content**: they are alike. Content-kNN's cosine over the song vectors (MSD metadata or
//!   audio features) and the genre, with the artist when weighted ([`ContentKnn`]). It needs
//!   no listen, so it also finds songs nobody played beside the seed.
//! - **model**: what a trained model plays next. The checkpoint's list for a new user who
//!   played the seeds once each, as `recommend --history` gives it: a radio station started
//!   from the seeds.
//!
//! Listens run on the CPU (sparse co-listens). Content runs on the backend: one product of the
//! seeds' rows with every song's, and the top-k kernel, so only a few candidates per list are
//! read back; the host scores those (and, with an artist weight, whose one-hot part is sparse,
//! the songs of the seeds' artists) exactly, so the lists are the host path's to the bit. The
//! model ranks on the backend as `recommend` ranks. The seeds are never listed.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use super::baselines::ContentKnn;
use super::run::{
    best_first, check_list, read_lines, select, Recommendation, Recommender, SkippedLine, WriteList,
};
use crate::backend::model_ops::{ModelOps, MAX_TOPK};
use crate::backend::BTensor;
use crate::data::Dataset;
use crate::error::Error;
use crate::model::neighbours::{CoListens, NeighbourLists, Similarity};

/// What makes songs alike, and what it needs.
#[derive(Clone, Copy, Debug)]
pub enum Measure<'a> {
    /// Co-listening, with this similarity.
    Listens(Similarity),
    /// Content, with the artist one-hot weighted by `artist_weight` (0: none).
    Content { artist_weight: f32 },
    /// The list of this checkpoint (and its ensemble) for a history of the seeds.
    Model(&'a Path),
}

impl Measure<'_> {
    /// `listens`, `content` or `model`.
    pub fn name(&self) -> &'static str {
        match self {
            Measure::Listens(_) => "listens",
            Measure::Content { .. } => "content",
            Measure::Model(_) => "model",
        }
    }
}

enum Scorer<B: ModelOps> {
    Listens {
        ds: Dataset,
        co: CoListens,
        sim: Similarity,
    },
    Content {
        ds: Dataset,
        knn: ContentKnn,
        /// Per song: whether it has content to compare ([`ContentKnn::has_content`]).
        present: Vec<bool>,
        /// Every song's unit row without its artist part, and a last column that sinks the
        /// songs without content ([`NO_CONTENT`]), on the backend, `songs × (dim + 1)` (none
        /// when that is more than one binding takes: the host scores then).
        rows: Option<BTensor<B>>,
        /// Per artist of [`ContentKnn::artist`]: its songs (none without an artist weight).
        by_artist: Vec<Vec<u32>>,
        /// Per song: its genre as the genre cap counts it (an index; `u32::MAX` for none), and
        /// on the backend with `rows`; how many genres.
        genres: GenreGroups<B>,
        /// Lists scored on the host so far (every song scored there), for the tests.
        on_host: usize,
    },
    Model(Box<Recommender<B>>),
}

/// A dataset opened to find songs like others by one [`Measure`].
pub struct Similar<B: ModelOps>(Scorer<B>);

impl<B: ModelOps> Similar<B> {
    /// Loads `data` (and for [`Measure::Model`] the checkpoint, checked to be trained on it)
    /// and builds what the measure scores with.
    pub fn open(b: &B, data: &Path, measure: Measure<'_>) -> Result<Self, Error> {
        Ok(Similar(match measure {
            Measure::Listens(sim) => {
                sim.check()
                    .map_err(|e| Error::Other(format!("the similarity: {e}")))?;
                let ds = Dataset::load(data)?;
                let histories: Vec<(Vec<u32>, Vec<f32>)> = (0..ds.users())
                    .map(|u| {
                        let (s, p) = ds.history(u);
                        (s.to_vec(), p.to_vec())
                    })
                    .collect();
                let users: Vec<u32> = (0..ds.users() as u32).collect();
                let co = CoListens::new(ds.songs(), &histories, &users);
                Scorer::Listens { ds, co, sim }
            }
            Measure::Content { artist_weight } => {
                if !(artist_weight.is_finite() && artist_weight >= 0.0) {
                    return Err(Error::Other(format!(
                        "the artist weight must be a number >= 0, got {artist_weight}"
                    )));
                }
                let ds = Dataset::load(data)?;
                let knn = ContentKnn::new(&ds, artist_weight).ok_or_else(|| {
                    Error::Other(format!(
                        "{}: no song has a song vector or a known genre, so there is no content to compare (prepare the data with --metadata or --msd, or --features)",
                        data.display()
                    ))
                })?;
                let present: Vec<bool> =
                    (0..ds.songs() as u32).map(|s| knn.has_content(s)).collect();
                // The artist part is sparse (one column per artist), so it stays on the host:
                // the rows carry the dense part; the host scores when they would not fit one
                // binding of the device.
                let (d, w) = (knn.dim, knn.dim + 1);
                let fits = (ds.songs() * w * 4) as u64 <= b.max_binding_bytes();
                let rows = if fits {
                    let mut m = vec![0.0f32; ds.songs() * w];
                    for (s, row) in m.chunks_exact_mut(w).enumerate() {
                        row[..d].copy_from_slice(&knn.vecs[s * d..(s + 1) * d]);
                        row[d] = if present[s] { 0.0 } else { NO_CONTENT };
                    }
                    Some(b.upload_f32(&m, &[ds.songs(), w])?)
                } else {
                    None
                };
                let mut by_artist: Vec<Vec<u32>> = Vec::new();
                for s in 0..ds.songs() as u32 {
                    if let Some(a) = knn.artist(s) {
                        let a = a as usize;
                        if by_artist.len() <= a {
                            by_artist.resize_with(a + 1, Vec::new);
                        }
                        by_artist[a].push(s);
                    }
                }
                let genres = GenreGroups::new(b, &ds, rows.is_some())?;
                Scorer::Content {
                    ds,
                    knn,
                    present,
                    rows,
                    by_artist,
                    genres,
                    on_host: 0,
                }
            }
            Measure::Model(ckpt) => Scorer::Model(Box::new(Recommender::open(b, data, ckpt)?)),
        }))
    }

    /// How many content lists were scored on the host, every song scored there, since `open`:
    /// the backend's picks did not settle them (0 for the other measures).
    pub fn lists_on_host(&self) -> usize {
        match &self.0 {
            Scorer::Content { on_host, .. } => *on_host,
            _ => 0,
        }
    }

    /// The dataset the songs are of.
    pub fn dataset(&self) -> &Dataset {
        match &self.0 {
            Scorer::Listens { ds, .. } | Scorer::Content { ds, .. } => ds,
            Scorer::Model(r) => r.dataset(),
        }
    }

    /// For each set of seed songs (song indices; for the model, a history in that order), the
    /// `k` songs most like them together (at
    /// most `max_per_genre` of one genre when given), best first, ties to the lower song index;
    /// no seed is listed. A list is shorter than `k`, or empty, when fewer songs are alike at
    /// all: for listens, songs that share no listener with a seed are not alike; for content,
    /// a song without content (no vector, genre or weighted artist) is like none, and a set
    /// of such seeds has an empty list.
    pub fn lists(
        &mut self,
        b: &B,
        seeds: &[Vec<u32>],
        k: usize,
        max_per_genre: Option<usize>,
    ) -> Result<Vec<Vec<Recommendation>>, Error> {
        check_list(k, max_per_genre)?;
        let songs = self.dataset().songs();
        let seeds: Vec<Vec<u32>> = seeds
            .iter()
            .map(|set| {
                // Each seed once, in the order given (the model reads the seeds as a history).
                let mut seen = HashSet::new();
                let set: Vec<u32> = set.iter().copied().filter(|&s| seen.insert(s)).collect();
                match set.iter().find(|&&s| s as usize >= songs) {
                    _ if set.is_empty() => Err(Error::Other("a set of seed songs is empty".into())),
                    Some(s) => Err(Error::Other(format!(
                        "seed song {s} is out of range: the catalogue has {songs} songs"
                    ))),
                    None => Ok(set),
                }
            })
            .collect::<Result<_, _>>()?;
        match &mut self.0 {
            Scorer::Model(r) => {
                let examples: Vec<_> = seeds
                    .iter()
                    .map(|set| r.new_user(set.clone(), vec![1.0; set.len()]))
                    .collect();
                let lists = r.lists(b, &examples, k, max_per_genre);
                r.forget_new_users();
                lists
            }
            Scorer::Listens { ds, co, sim } => {
                let mut wanted = vec![false; songs];
                seeds
                    .iter()
                    .flatten()
                    .for_each(|&s| wanted[s as usize] = true);
                // A lone seed's list is the start of its row; a mix sums whole rows.
                let keep = if max_per_genre.is_none() && seeds.iter().all(|s| s.len() == 1) {
                    k
                } else {
                    usize::MAX
                };
                let rows = co.fit_rows(keep, *sim, Some(&wanted));
                Ok(seeds
                    .par_iter()
                    .map(|set| listens_list(ds, &rows, set, k, max_per_genre))
                    .collect())
            }
            Scorer::Content {
                ds,
                knn,
                present,
                rows: Some(rows),
                by_artist,
                genres,
                on_host,
            } if seeds.iter().all(|set| k + set.len() <= MAX_TOPK) => {
                let content = Content { ds, knn, present };
                let on = OnBackend {
                    rows,
                    by_artist,
                    genres,
                };
                let (lists, host) = content_on_backend(b, &content, &on, &seeds, k, max_per_genre)?;
                *on_host += host;
                Ok(lists)
            }
            Scorer::Content {
                ds,
                knn,
                present,
                on_host,
                ..
            } => {
                let content = Content { ds, knn, present };
                *on_host += seeds.len();
                Ok(seeds
                    .par_iter()
                    .map(|set| content.on_host(set, k, max_per_genre))
                    .collect())
            }
        }
    }
}

/// What content lists are scored with.
struct Content<'a> {
    ds: &'a Dataset,
    knn: &'a ContentKnn,
    present: &'a [bool],
}

impl Content<'_> {
    /// The list of `set` with every song scored on the host ([`ContentKnn::scores`]).
    fn on_host(&self, set: &[u32], k: usize, max_per_genre: Option<usize>) -> Vec<Recommendation> {
        if !set.iter().any(|&s| self.present[s as usize]) {
            return Vec::new();
        }
        let all: Vec<u32> = (0..self.ds.songs() as u32).collect();
        let mut scores = self.knn.scores(set, &all);
        for (x, &p) in scores.iter_mut().zip(self.present) {
            if !p {
                *x = f32::NEG_INFINITY;
            }
        }
        set.iter()
            .for_each(|&s| scores[s as usize] = f32::NEG_INFINITY);
        best_first(&scores, k, |r| select(self.ds, r, k, max_per_genre))
    }
}

/// The score of a song without content in the backend's products: far below any cosine (in
/// [-1, 1]), finite (an infinity times 0 would be NaN), so the top-k reaches such a song only
/// when no song with content is left, and those are dropped.
const NO_CONTENT: f32 = -1.0e4;

/// Songs the backend's top-k picks past the `k + seeds` a list can need without a genre cap, so
/// that the bound below rarely sends a list to the host. (Each pick costs the top-k kernel: all
/// 32 took lavapipe 19 s against 11 s for `--all` at 20,000 songs.)
const ROUNDING_MARGIN: usize = 4;

/// How far the device's product of two unit rows may be from the host's: far above f32's
/// rounding of a dot product of a few hundred terms in [-1, 1].
const DEVICE_ROUNDING: f32 = 1e-5;

/// Each song's genre as the genre cap counts it ([`select`]: the genre's name, songs of an
/// unknown genre in none), as an index, and those indices on the backend when the content
/// rows are there.
struct GenreGroups<B: ModelOps> {
    /// Per song: its genre's index, or `u32::MAX`.
    of: Vec<u32>,
    /// How many genres.
    count: usize,
    on_backend: Option<BTensor<B>>,
}

impl<B: ModelOps> GenreGroups<B> {
    fn new(b: &B, ds: &Dataset, upload: bool) -> Result<Self, Error> {
        let mut index: HashMap<&str, u32> = HashMap::new();
        let of: Vec<u32> = (0..ds.songs())
            .map(|s| match ds.song_meta.get(s) {
                Some(m) if m.has_genre() => {
                    let next = index.len() as u32;
                    *index.entry(m.genre.as_str()).or_insert(next)
                }
                _ => u32::MAX,
            })
            .collect();
        let on_backend = match upload {
            true => Some(b.upload_u32(&of, &[of.len()])?),
            false => None,
        };
        Ok(GenreGroups {
            count: index.len(),
            of,
            on_backend,
        })
    }
}

/// What the backend path scores with besides [`Content`].
struct OnBackend<'a, B: ModelOps> {
    rows: &'a BTensor<B>,
    by_artist: &'a [Vec<u32>],
    genres: &'a GenreGroups<B>,
}

/// Where one list stands after a round of [`content_on_backend`].
enum Round {
    /// The list, as the host path would give it.
    Done(Vec<(u32, f32)>),
    /// Under a genre cap, short: the list so far (the first songs of the host path's list),
    /// and the genres it has filled, taken out of the next round's scores.
    Capped(Vec<(u32, f32)>, Vec<u32>),
    /// Not settled by the backend's picks: to be scored on the host.
    Host,
}

/// Content lists on the backend: per set, the mean of its seeds' rows (the dense part, and 1 in
/// the last column) times every song's row, and the best `kk` of each product row picked there
/// (the top-k kernel) and read back; score rows of at most 64 MiB a product. The host then
/// scores those, and with an artist weight the songs of the seeds' artists, as
/// [`ContentKnn::scores`] does, and walks them best first (under the genre cap when given).
/// Returns the lists, and how many were scored on the host instead.
///
/// Why that is the host path's list: a song left out is of no seed's artist, so its score is
/// its dense part, at most that of every pick (the artist part is never negative), so at most
/// the lowest pick's score (`bound`, plus [`DEVICE_ROUNDING`]). Every candidate scoring above
/// `bound` is therefore ranked where the whole catalogue would rank it.
///
/// A genre cap skips songs, and the picks are mostly of the seeds' genres: a walk that ends
/// short has listed the first songs of the host's list (every song above `bound` was walked)
/// and filled some genres, which no later song can enter. The next round takes those genres'
/// songs out of the product (`mask_groups`) and picks again; the walk then starts with the list
/// so far, whose songs all score above everything the new picks add. A round that fills no
/// new genre, or a list short without a cap (exact ties at the bound), is scored on the host.
/// So the lists and scores are the host path's, to the bit.
fn content_on_backend<B: ModelOps>(
    b: &B,
    c: &Content<'_>,
    on: &OnBackend<'_, B>,
    seeds: &[Vec<u32>],
    k: usize,
    max_per_genre: Option<usize>,
) -> Result<(Vec<Vec<Recommendation>>, usize), Error> {
    let Content { ds, knn, present } = *c;
    let (d, w, songs) = (knn.dim, knn.dim + 1, ds.songs());
    let per = ((64usize << 20) / (4 * songs.max(1))).clamp(1, SONGS_PER_ROUND);
    let words = on.genres.count.div_ceil(32).max(1);
    let mut out = Vec::with_capacity(seeds.len());
    let mut host = 0;
    for sets in seeds.chunks(per) {
        // Per set: the list so far and its full genres while rounds go on.
        let mut state: Vec<Round> = sets
            .iter()
            .map(|set| match set.iter().any(|&s| present[s as usize]) {
                true => Round::Capped(Vec::new(), Vec::new()),
                false => Round::Done(Vec::new()),
            })
            .collect();
        loop {
            let pending: Vec<usize> = (0..sets.len())
                .filter(|&i| matches!(state[i], Round::Capped(..)))
                .collect();
            if pending.is_empty() {
                break;
            }
            let most = pending.iter().map(|&i| sets[i].len()).max().unwrap_or(0);
            // A genre cap skips songs: it gets every pick the kernel gives.
            let kk = match max_per_genre {
                Some(_) => MAX_TOPK,
                None => k + most + ROUNDING_MARGIN,
            }
            .min(MAX_TOPK)
            .min(songs);
            let mut a = vec![0.0f32; pending.len() * w];
            for (row, &i) in a.chunks_exact_mut(w).zip(&pending) {
                for &s in &sets[i] {
                    let v = &knn.vecs[s as usize * d..(s as usize + 1) * d];
                    row[..d].iter_mut().zip(v).for_each(|(m, x)| *m += x);
                }
                let n = sets[i].len() as f32;
                row[..d].iter_mut().for_each(|m| *m /= n);
                row[d] = 1.0;
            }
            let a = b.upload_f32(&a, &[pending.len(), w])?;
            let mut scores = b.matmul(&a, on.rows, false, true)?;
            let mut banned = vec![0u32; pending.len() * words];
            let mut any = false;
            for (set, &i) in banned.chunks_exact_mut(words).zip(&pending) {
                if let Round::Capped(_, full) = &state[i] {
                    for &g in full {
                        set[g as usize / 32] |= 1 << (g % 32);
                        any = true;
                    }
                }
            }
            if let (true, Some(groups)) = (any, &on.genres.on_backend) {
                let banned = b.upload_u32(&banned, &[pending.len(), words])?;
                b.mask_groups(&mut scores, groups, &banned)?;
            }
            let (_, idx) = b.topk_rows(&scores, kk)?;
            let idx = match b.to_host(&[&idx])?.into_iter().next() {
                Some(i) => i.into_u32("similar")?,
                None => return Err(Error::Other("similar: the top-k read back nothing".into())),
            };
            let next: Vec<Round> = pending
                .par_iter()
                .enumerate()
                .map(|(r, &i)| {
                    let (so_far, full) = match &state[i] {
                        Round::Capped(l, f) => (l.as_slice(), f.as_slice()),
                        _ => (&[][..], &[][..]),
                    };
                    let picks = &idx[r * kk..(r + 1) * kk];
                    round(c, on, &sets[i], picks, so_far, full, k, max_per_genre)
                })
                .collect();
            for (&i, n) in pending.iter().zip(next) {
                state[i] = n;
            }
        }
        host += state.iter().filter(|s| matches!(s, Round::Host)).count();
        let lists: Vec<Vec<Recommendation>> = sets
            .par_iter()
            .zip(state)
            .map(|(set, st)| match st {
                Round::Done(list) => super::run::recommendations(ds, &list),
                _ => c.on_host(set, k, max_per_genre),
            })
            .collect();
        out.extend(lists);
    }
    Ok((out, host))
}

/// One round of one set's list in [`content_on_backend`]: `picks` are the backend's best
/// (past the catalogue: no song was left to pick), `so_far` the list of the earlier rounds and
/// `full` its full genres, which the product no longer held.
#[allow(clippy::too_many_arguments)]
fn round<B: ModelOps>(
    c: &Content<'_>,
    on: &OnBackend<'_, B>,
    set: &[u32],
    picks: &[u32],
    so_far: &[(u32, f32)],
    full: &[u32],
    k: usize,
    max_per_genre: Option<usize>,
) -> Round {
    let Content { ds, knn, present } = *c;
    let songs = ds.songs();
    let taken_out = |s: u32| full.contains(&on.genres.of[s as usize]);
    let picked: Vec<u32> = picks
        .iter()
        .copied()
        .filter(|&s| (s as usize) < songs)
        .collect();
    let by_seeds_artists = set
        .iter()
        .filter_map(|&s| knn.artist(s))
        .flat_map(|a| on.by_artist[a as usize].iter().copied());
    let mut scored: Vec<u32> = picked
        .iter()
        .copied()
        .chain(by_seeds_artists.filter(|&s| !taken_out(s)))
        .collect();
    scored.sort_unstable();
    scored.dedup();
    // Each score once: the picks' give the bound, the rest are candidates.
    let scores = knn.scores(set, &scored);
    let score = |s: u32| {
        scored
            .binary_search(&s)
            .map_or(f32::NEG_INFINITY, |i| scores[i])
    };
    // Every song the product held was picked (the kernel ran out of songs, or reached one
    // without content, which scores NO_CONTENT there): nothing is left out. Else the lowest
    // pick's score.
    let bound = if picked.len() < picks.len() || picked.len() == songs {
        f32::NEG_INFINITY
    } else {
        picked
            .iter()
            .map(|&s| match present[s as usize] {
                true => score(s),
                false => f32::NEG_INFINITY,
            })
            .fold(f32::INFINITY, f32::min)
            + DEVICE_ROUNDING
    };
    let listed = |s: u32| so_far.iter().any(|&(t, _)| t == s);
    let mut ranked: Vec<(u32, f32)> = scored
        .iter()
        .zip(&scores)
        .map(|(&s, &x)| (s, x))
        .filter(|&(s, x)| present[s as usize] && !set.contains(&s) && x > bound && !listed(s))
        .chain(so_far.iter().copied())
        .collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    let list = super::run::capped(ds, &mut ranked.into_iter(), k, max_per_genre);
    if list.len() == k || bound == f32::NEG_INFINITY {
        return Round::Done(list);
    }
    let (Some(cap), Some(_)) = (max_per_genre, &on.genres.on_backend) else {
        return Round::Host;
    };
    let mut count: HashMap<u32, usize> = HashMap::new();
    for &(s, _) in &list {
        match on.genres.of[s as usize] {
            u32::MAX => {}
            g => *count.entry(g).or_default() += 1,
        }
    }
    let mut now: Vec<u32> = count
        .into_iter()
        .filter(|&(_, n)| n >= cap)
        .map(|(g, _)| g)
        .collect();
    now.sort_unstable();
    // The list so far is in this one, so its full genres are too: no new one, no progress.
    match now.len() > full.len() {
        true => Round::Capped(list, now),
        false => Round::Host,
    }
}

/// The list of songs most like the seeds `set` (distinct) by co-listening: a lone
/// seed's row of `rows` as it is (best first, ties to the lower index, the seed not in it), a
/// mix by the mean of its seeds' rows (songs in none of them are not alike).
fn listens_list(
    ds: &Dataset,
    rows: &NeighbourLists,
    set: &[u32],
    k: usize,
    max_per_genre: Option<usize>,
) -> Vec<Recommendation> {
    if let [s] = set {
        return select(ds, &mut rows[*s as usize].iter().copied(), k, max_per_genre);
    }
    let mut scores = vec![0.0f32; ds.songs()];
    for &s in set {
        for &(j, v) in &rows[s as usize] {
            scores[j as usize] += v;
        }
    }
    let n = set.len() as f32;
    for x in scores.iter_mut() {
        *x = if *x > 0.0 { *x / n } else { f32::NEG_INFINITY };
    }
    set.iter()
        .for_each(|&s| scores[s as usize] = f32::NEG_INFINITY);
    best_first(&scores, k, |r| select(ds, r, k, max_per_genre))
}

/// Finds the songs of a dataset by id or by name.
pub struct SongFinder<'a> {
    ds: &'a Dataset,
    ids: HashMap<&'a str, u32>,
    /// Per song: its [`SongMeta::name`](crate::data::dataset::SongMeta::name), folded (see [`fold`]).
    names: Vec<String>,
    /// Folded name → songs, folded title → songs.
    by_name: HashMap<String, Vec<u32>>,
    by_title: HashMap<String, Vec<u32>>,
}

/// Text compared without case and with every run of white space one space.
fn fold(t: &str) -> String {
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl<'a> SongFinder<'a> {
    pub fn new(ds: &'a Dataset) -> Self {
        let ids = ds
            .song_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect();
        let names: Vec<String> = ds.song_meta.iter().map(|m| fold(&m.name())).collect();
        let (mut by_name, mut by_title) = (HashMap::new(), HashMap::new());
        for (i, (n, m)) in names.iter().zip(&ds.song_meta).enumerate() {
            if !n.is_empty() {
                by_name
                    .entry(n.clone())
                    .or_insert_with(Vec::new)
                    .push(i as u32);
            }
            let t = fold(&m.title);
            if !t.is_empty() {
                by_title.entry(t).or_insert_with(Vec::new).push(i as u32);
            }
        }
        SongFinder {
            ds,
            ids,
            names,
            by_name,
            by_title,
        }
    }

    /// The song `query` names: the song with that id; else the one song whose "artist -
    /// title" is the query, or whose title is, or (last) whose "artist - title" contains it,
    /// compared without case and with runs of white space as one. The error says why not: no
    /// song matches, or several do (the first five named, with their ids, to pick from).
    pub fn find(&self, query: &str) -> Result<u32, String> {
        if let Some(&s) = self.ids.get(query.trim()) {
            return Ok(s);
        }
        let q = fold(query);
        if q.is_empty() {
            return Err("no song id or name given".into());
        }
        let contains: Vec<u32>;
        let found: &[u32] = match (self.by_name.get(&q), self.by_title.get(&q)) {
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => {
                contains = (0..self.names.len() as u32)
                    .filter(|&s| self.names[s as usize].contains(&q))
                    .collect();
                &contains
            }
        };
        match found {
            [s] => Ok(*s),
            [] => Err(format!(
                "no song of the catalogue ({}) has the id {:?}, or a title or \"artist - title\" that is or contains it",
                crate::text::count(self.ds.songs() as u64, "song"),
                crate::text::clip(query.trim(), 60)
            )),
            many => {
                const SHOWN: usize = 5;
                let named: Vec<String> = many
                    .iter()
                    .take(SHOWN)
                    .map(|&s| {
                        format!(
                            "{} ({})",
                            self.ds.song_ids[s as usize],
                            self.ds.song_meta[s as usize].name()
                        )
                    })
                    .collect();
                Err(format!(
                    "{:?} names {}: {}{}; give one by its id",
                    crate::text::clip(query.trim(), 60),
                    crate::text::count(many.len() as u64, "song"),
                    named.join(", "),
                    if many.len() > SHOWN { ", …" } else { "" }
                ))
            }
        }
    }
}

/// Whose lists [`similar_songs`] makes.
pub enum Seeds<'a> {
    /// Every song of the catalogue, each alone.
    All,
    /// The songs a file names, one a line (an id or a name, as [`SongFinder::find`] takes;
    /// `#` comments and blank lines skipped), each alone.
    File(&'a Path),
}

/// What [`similar_songs`] did.
#[derive(Debug, Serialize)]
pub struct SongsSummary {
    /// Songs whose list was written.
    pub songs: usize,
    /// Of those, songs like no other song (no row written).
    pub empty: usize,
    /// Lines of the songs file skipped: no song, or several, of that id or name.
    pub skipped: Vec<SkippedLine>,
    /// Songs named again in the songs file (their first line counts).
    pub repeated: usize,
    pub seconds: f64,
}

/// Seeds whose lists are made and handed out together.
const SONGS_PER_ROUND: usize = 1024;

/// The list of songs like each song of `seeds`, alone, handed to `write` with the song's id in
/// the catalogue's or the file's order; `progress` gets (done, total) after each round. A line
/// of the songs file that names no song, or several, is skipped and reported in the summary;
/// a file that names none is an error.
pub fn similar_songs<B: ModelOps>(
    b: &B,
    similar: &mut Similar<B>,
    seeds: Seeds<'_>,
    k: usize,
    max_per_genre: Option<usize>,
    write: &mut WriteList<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SongsSummary, Error> {
    let t0 = std::time::Instant::now();
    check_list(k, max_per_genre)?;
    let (chosen, skipped, repeated) = match seeds {
        Seeds::All => (
            (0..similar.dataset().songs() as u32).collect(),
            Vec::new(),
            0,
        ),
        Seeds::File(path) => {
            let finder = SongFinder::new(similar.dataset());
            let (mut chosen, mut seen, mut repeated) = (Vec::new(), HashSet::new(), 0);
            let skipped = read_lines(path, "names no song of the catalogue", |fields| {
                let query = fields.join(" ");
                let s = finder.find(&query).map_err(|why| (query.clone(), why))?;
                if seen.insert(s) {
                    chosen.push(s);
                } else {
                    repeated += 1;
                }
                Ok(())
            })?;
            (chosen, skipped, repeated)
        }
    };
    let mut empty = 0;
    for (done, round) in chosen.chunks(SONGS_PER_ROUND).enumerate() {
        let sets: Vec<Vec<u32>> = round.iter().map(|&s| vec![s]).collect();
        let lists = similar.lists(b, &sets, k, max_per_genre)?;
        for (&s, list) in round.iter().zip(&lists) {
            empty += usize::from(list.is_empty());
            write(&similar.dataset().song_ids[s as usize], list)?;
        }
        progress(
            (done * SONGS_PER_ROUND + round.len()).min(chosen.len()),
            chosen.len(),
        );
    }
    Ok(SongsSummary {
        songs: chosen.len(),
        empty,
        skipped,
        repeated,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// [`similar_songs`] into the tab-separated file `out`, first column `song` (the seed's id;
/// see [`super::run::recommend_users_tsv`] for the format and the atomic write).
pub fn similar_songs_tsv<B: ModelOps>(
    b: &B,
    similar: &mut Similar<B>,
    seeds: Seeds<'_>,
    k: usize,
    max_per_genre: Option<usize>,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SongsSummary, Error> {
    super::run::write_lists_tsv(out, "song", |write| {
        similar_songs(b, similar, seeds, k, max_per_genre, write, progress)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::SongMeta;

    #[test]
    fn names_fold_case_and_white_space() {
        assert_eq!(fold("  Radiohead -\t15  Step "), "radiohead - 15 step");
        let m = |a: &str, t: &str| SongMeta {
            artist: a.into(),
            title: t.into(),
            ..SongMeta::unknown()
        };
        assert_eq!(m("A", "T").name(), "A - T");
        assert_eq!(m("", "T").name(), "T");
        assert_eq!(m("A", " ").name(), "A");
        assert_eq!(m("", "").name(), "");
        assert_eq!(m("Muse", "Muse").name(), "Muse");
    }
}
