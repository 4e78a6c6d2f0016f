//! The classic baselines users compare against, fitted on the training users' histories
//! (binary user × song matrix) and queried with a test user's visible history:
//! - **popularity**: songs by number of training users;
//! - **item-kNN**: co-listening similarity of songs (cosine, or the asymmetric variants of
//!   `model::neighbours::Similarity`), a user's score for a song is the sum of its similarities
//!   to the songs in the history (keeping each song's `neighbours` most similar songs);
//! - **EASE** (Steck 2019): `B = I − P·diag(1/diag(P))` with `P = (XᵀX + λI)⁻¹`, scores `x·B`,
//!   computed on the `max_items` most popular songs (one dense solve; the rest score nothing).

use std::collections::HashMap;

use rayon::prelude::*;

use crate::backend::cpu::par_gemm;
use crate::model::batch::Example;
use crate::model::neighbours::{self, user_rows, NeighbourLists, Similarity};

pub use crate::train::metrics::top_k;

pub struct Popularity {
    pub counts: Vec<f32>,
}

impl Popularity {
    pub fn fit(songs: usize, histories: &[(Vec<u32>, Vec<f32>)], users: &[u32]) -> Self {
        let mut counts = vec![0.0f32; songs];
        for r in user_rows(histories, users) {
            for s in r {
                counts[s as usize] += 1.0;
            }
        }
        Popularity { counts }
    }

    pub fn recommend(&self, e: &Example, k: usize) -> Vec<u32> {
        top_k(&self.counts, &e.exclude, k)
    }
}

pub struct ItemKnn {
    /// For each song, its most similar songs with their similarity.
    pub neighbours: NeighbourLists,
    pub songs: usize,
}

impl ItemKnn {
    /// Item-kNN with the co-listening similarity `sim` (`Similarity::COSINE`: plain cosine).
    pub fn fit(
        songs: usize,
        histories: &[(Vec<u32>, Vec<f32>)],
        users: &[u32],
        keep: usize,
        sim: Similarity,
    ) -> Self {
        ItemKnn {
            neighbours: neighbours::fit_with(songs, histories, users, keep, sim),
            songs,
        }
    }

    pub fn scores(&self, history: &[u32]) -> Vec<f32> {
        neighbours::knn_scores(&self.neighbours, self.songs, history)
    }

    pub fn recommend(&self, e: &Example, k: usize) -> Vec<u32> {
        let mut s = self.scores(&e.songs);
        // Songs no neighbour reaches keep a score of 0; rank them by nothing rather than by id.
        s.iter_mut()
            .filter(|x| **x == 0.0)
            .for_each(|x| *x = f32::NEG_INFINITY);
        top_k(&s, &e.exclude, k)
    }
}

pub struct Ease {
    /// Songs modelled (most popular first) and their position in `b`.
    pub items: Vec<u32>,
    pub index: HashMap<u32, usize>,
    /// `n × n` weights, row-major, zero diagonal.
    pub b: Vec<f32>,
    pub songs: usize,
    pub lambda: f32,
}

/// Why EASE could not be fitted.
#[derive(Debug, thiserror::Error)]
#[error("EASE: the Gram matrix is not positive definite at column {0} (raise λ)")]
pub struct NotPositiveDefinite(pub usize);

impl Ease {
    pub fn fit(
        songs: usize,
        histories: &[(Vec<u32>, Vec<f32>)],
        users: &[u32],
        lambda: f32,
        max_items: usize,
    ) -> Result<Self, NotPositiveDefinite> {
        let rows = user_rows(histories, users);
        let mut count = vec![0u32; songs];
        for r in &rows {
            for &s in r {
                count[s as usize] += 1;
            }
        }
        let mut items: Vec<u32> = (0..songs as u32)
            .filter(|&s| count[s as usize] > 0)
            .collect();
        items.sort_by(|&a, &b| count[b as usize].cmp(&count[a as usize]).then(a.cmp(&b)));
        items.truncate(max_items);
        let n = items.len();
        let index: HashMap<u32, usize> = items.iter().enumerate().map(|(i, &s)| (s, i)).collect();
        // G = XᵀX + λI over the modelled items, accumulated in f64.
        let mut g = vec![0.0f64; n * n];
        for r in &rows {
            let cols: Vec<usize> = r.iter().filter_map(|s| index.get(s).copied()).collect();
            for &a in &cols {
                for &c in &cols {
                    g[a * n + c] += 1.0;
                }
            }
        }
        for i in 0..n {
            g[i * n + i] += lambda as f64;
        }
        let p = spd_inverse(g, n)?;
        let mut b = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    b[i * n + j] = (-p[i * n + j] / p[j * n + j]) as f32;
                }
            }
        }
        Ok(Ease {
            items,
            index,
            b,
            songs,
            lambda,
        })
    }

    pub fn scores(&self, history: &[u32]) -> Vec<f32> {
        let n = self.items.len();
        let mut x: Vec<usize> = history
            .iter()
            .filter_map(|s| self.index.get(s).copied())
            .collect();
        x.sort_unstable();
        x.dedup();
        let mut scores = vec![f32::NEG_INFINITY; self.songs];
        let mut acc = vec![0.0f32; n];
        for r in x {
            for (a, w) in acc.iter_mut().zip(&self.b[r * n..(r + 1) * n]) {
                *a += w;
            }
        }
        for (j, &s) in self.items.iter().enumerate() {
            scores[s as usize] = acc[j];
        }
        scores
    }

    pub fn recommend(&self, e: &Example, k: usize) -> Vec<u32> {
        top_k(&self.scores(&e.songs), &e.exclude, k)
    }
}

/// Block size of the blocked factorisations: the bulk of the work runs in `dgemm` on
/// `NB`-wide panels.
const NB: usize = 96;

/// `C[m×n] += alpha · A[m×k] · op(B)` on row-major slices with explicit strides: `a` and `b`
/// are `(slice, row stride, column stride)`.
struct Gemm<'a> {
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    a: (&'a [f64], isize, isize),
    b: (&'a [f64], isize, isize),
}

/// Runs `g` into `c` = `(slice, row stride)` (a thin wrapper over `matrixmultiply::dgemm`, on the
/// rayon threads by blocks of C).
fn gemm(g: Gemm<'_>, c: (&mut [f64], isize)) {
    let Gemm {
        m,
        k,
        n,
        alpha,
        a,
        b,
    } = g;
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // SAFETY: callers pass slices that cover the strided m×k, k×n and m×n regions; `c` is a
    // distinct mutable borrow.
    unsafe {
        par_gemm(
            matrixmultiply::dgemm,
            (m, k, n),
            alpha,
            a.0.as_ptr(),
            (a.1, a.2),
            b.0.as_ptr(),
            (b.1, b.2),
            1.0,
            c.0.as_mut_ptr(),
            (c.1, 1),
            true,
        )
    }
}

/// Inverse of a symmetric positive-definite matrix: blocked Cholesky `G = L Lᵀ`, blocked
/// triangular inverse `X = L⁻¹`, then `G⁻¹ = Xᵀ X` — all three dominated by GEMMs, in f64.
pub fn spd_inverse(mut a: Vec<f64>, n: usize) -> Result<Vec<f64>, NotPositiveDefinite> {
    let ni = n as isize;
    // 1. Right-looking blocked Cholesky on the lower triangle.
    let mut j0 = 0;
    while j0 < n {
        let jb = NB.min(n - j0);
        // Unblocked factorisation of the diagonal block.
        for j in j0..j0 + jb {
            let mut d = a[j * n + j];
            for k in j0..j {
                d -= a[j * n + k] * a[j * n + k];
            }
            if d <= 0.0 || !d.is_finite() {
                return Err(NotPositiveDefinite(j));
            }
            let d = d.sqrt();
            a[j * n + j] = d;
            for i in j + 1..j0 + jb {
                let mut v = a[i * n + j];
                for k in j0..j {
                    v -= a[i * n + k] * a[j * n + k];
                }
                a[i * n + j] = v / d;
            }
        }
        // Panel below: L21 = A21 · L11⁻ᵀ (row by row, in parallel).
        let end = j0 + jb;
        let diag: Vec<f64> = (j0..end)
            .flat_map(|r| a[r * n + j0..r * n + end].to_vec())
            .collect();
        a[end * n..].par_chunks_mut(n).for_each(|row| {
            for j in 0..jb {
                let mut v = row[j0 + j];
                for k in 0..j {
                    v -= row[j0 + k] * diag[j * jb + k];
                }
                row[j0 + j] = v / diag[j * jb + j];
            }
        });
        // Trailing update: A22 -= L21 · L21ᵀ (full square; only the lower part is used later).
        let m = n - end;
        if m > 0 {
            let l21: Vec<f64> = (end..n)
                .flat_map(|r| a[r * n + j0..r * n + end].to_vec())
                .collect();
            let jbi = jb as isize;
            let g = Gemm {
                m,
                k: jb,
                n: m,
                alpha: -1.0,
                a: (&l21, jbi, 1),
                b: (&l21, 1, jbi),
            };
            gemm(g, (&mut a[end * n + end..], ni));
        }
        j0 = end;
    }
    for i in 0..n {
        for j in i + 1..n {
            a[i * n + j] = 0.0;
        }
    }
    // 2. X = L⁻¹ by block columns: X_cc = L_cc⁻¹; X_ic = −L_ii⁻¹ Σ_{c≤k<i} L_ik X_kc.
    let mut x = vec![0.0f64; n * n];
    let blocks: Vec<(usize, usize)> = (0..n).step_by(NB).map(|s| (s, NB.min(n - s))).collect();
    let inv_diag: Vec<Vec<f64>> = blocks
        .par_iter()
        .map(|&(s, w)| {
            // Inverse of the w×w lower-triangular diagonal block by forward substitution.
            let mut inv = vec![0.0f64; w * w];
            for c in 0..w {
                for i in c..w {
                    let mut v = if i == c { 1.0 } else { 0.0 };
                    for k in c..i {
                        v -= a[(s + i) * n + s + k] * inv[k * w + c];
                    }
                    inv[i * w + c] = v / a[(s + i) * n + s + i];
                }
            }
            inv
        })
        .collect();
    let cols: Vec<Vec<f64>> = blocks
        .par_iter()
        .enumerate()
        .map(|(cb, &(cs, cw))| {
            // The block column c of X, rows cs..n, as a dense (n − cs) × cw panel.
            let rows = n - cs;
            let mut panel = vec![0.0f64; rows * cw];
            for i in 0..cw {
                panel[i * cw..(i + 1) * cw].copy_from_slice(&inv_diag[cb][i * cw..(i + 1) * cw]);
            }
            for (ib, &(is, iw)) in blocks.iter().enumerate().skip(cb + 1) {
                // t = Σ_{k in cs..is} L[is.., k] · X[k, c]
                let mut t = vec![0.0f64; iw * cw];
                let kk = is - cs;
                let g = Gemm {
                    m: iw,
                    k: kk,
                    n: cw,
                    alpha: 1.0,
                    a: (&a[is * n + cs..], ni, 1),
                    b: (&panel, cw as isize, 1),
                };
                gemm(g, (&mut t, cw as isize));
                let inv = &inv_diag[ib];
                let off = (is - cs) * cw;
                for r in 0..iw {
                    for c in 0..cw {
                        let mut v = 0.0;
                        for q in 0..=r {
                            v -= inv[r * iw + q] * t[q * cw + c];
                        }
                        panel[off + r * cw + c] = v;
                    }
                }
            }
            panel
        })
        .collect();
    for (&(cs, cw), panel) in blocks.iter().zip(&cols) {
        for r in 0..n - cs {
            x[(cs + r) * n + cs..(cs + r) * n + cs + cw]
                .copy_from_slice(&panel[r * cw..(r + 1) * cw]);
        }
    }
    // 3. G⁻¹ = Xᵀ X.
    let mut out = vec![0.0f64; n * n];
    let g = Gemm {
        m: n,
        k: n,
        n,
        alpha: 1.0,
        a: (&x, 1, ni),
        b: (&x, ni, 1),
    };
    gemm(g, (&mut out, ni));
    Ok(out)
}

/// **content-kNN**: a song's content vector is its row of the dataset's song vectors (the MSD
/// columns, z-scored; audio columns when the file has them), scaled to unit length, next to a
/// one-hot of its genre (the highest-weighted genre-bearing artist term, `/portrait/song_genre`)
/// and, with an artist weight `w > 0`, `w` times a one-hot of its artist; the whole then scaled
/// to unit length. With weight 1 the cosine of two songs is the mean of the vectors' cosine,
/// "same genre" and "same artist" (0 or 1); a larger weight lets the artist dominate. A user's
/// score for a song is the **mean** cosine between the song and the history's songs (the sum
/// ranks the same: one user's history is fixed). No listen is used: it ranks songs nobody has
/// heard. The weight is chosen on validation users ([`ContentKnn::choose`]): the artist is most
/// of what content says about a song nobody has heard (item cold start on the Taste sample), and
/// says nothing where every song is its own artist (HetRec).
pub struct ContentKnn {
    pub dim: usize,
    /// `songs × dim`: the song-vector and genre parts of each unit row (zero for a song with
    /// neither).
    pub vecs: Vec<f32>,
    /// Per song: its artist (an index; `u32::MAX` when unknown or the weight is 0) and the
    /// artist one-hot's entry in its unit row (the artist part, kept sparse: a one-hot over
    /// tens of thousands of artists would be most of the vector).
    artist: Vec<u32>,
    artist_entry: Vec<f32>,
    pub artist_weight: f32,
}

/// The artist weights [`ContentKnn::choose`] tries, 0 (no artist part) first.
pub const ARTIST_WEIGHTS: [f32; 4] = [0.0, 1.0, 2.0, 4.0];

impl ContentKnn {
    /// `None` when the dataset has neither song vectors nor a song with a known genre.
    /// `artist_weight`: the artist one-hot's weight (0: none).
    pub fn new(ds: &crate::data::Dataset, artist_weight: f32) -> Option<Self> {
        let songs = ds.songs();
        let vd = ds.song_vectors.as_ref().map(|v| v.dim).unwrap_or(0);
        let genres = &ds.portrait.song_genre;
        let known = |s: usize| {
            genres
                .get(s)
                .copied()
                .filter(|&g| g != crate::data::dataset::NO_GENRE)
        };
        let n_genre = (0..songs)
            .filter_map(known)
            .map(|g| g as usize + 1)
            .max()
            .unwrap_or(0);
        let dim = vd + n_genre;
        if dim == 0 {
            return None;
        }
        let w = if artist_weight.is_finite() && artist_weight > 0.0 {
            artist_weight
        } else {
            0.0
        };
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let artist: Vec<u32> = ds
            .song_meta
            .iter()
            .map(|m| match m.artist.as_str() {
                _ if w == 0.0 => u32::MAX,
                "" => u32::MAX,
                a => {
                    let next = ids.len() as u32;
                    *ids.entry(a).or_insert(next)
                }
            })
            .chain(std::iter::repeat(u32::MAX))
            .take(songs)
            .collect();
        let mut vecs = vec![0.0f32; songs * dim];
        let mut artist_entry = vec![0.0f32; songs];
        for s in 0..songs {
            let row = &mut vecs[s * dim..(s + 1) * dim];
            if let Some(v) = ds.song_vectors.as_ref().filter(|v| v.present[s]) {
                let src = &v.values[s * vd..(s + 1) * vd];
                let n = src.iter().map(|x| x * x).sum::<f32>().sqrt();
                if n > 0.0 && n.is_finite() {
                    row[..vd].iter_mut().zip(src).for_each(|(d, x)| *d = x / n);
                }
            }
            if let Some(g) = known(s) {
                row[vd + g as usize] = 1.0;
            }
            let a = if artist[s] == u32::MAX { 0.0 } else { w };
            let n = (row.iter().map(|x| x * x).sum::<f32>() + a * a).sqrt();
            if n > 0.0 {
                row.iter_mut().for_each(|x| *x /= n);
                artist_entry[s] = a / n;
            }
        }
        Some(ContentKnn {
            dim,
            vecs,
            artist,
            artist_entry,
            artist_weight: w,
        })
    }

    /// The weight of [`ARTIST_WEIGHTS`] whose content-kNN ranks `validation` best by NDCG@`k`
    /// (ties: the smaller weight), and that content-kNN; with each weight's NDCG. `None` as
    /// [`ContentKnn::new`]. `ds` must be the data the validation examples index (for item cold
    /// start, the warm view: the weight is chosen on warm songs only).
    pub fn choose(
        ds: &crate::data::Dataset,
        validation: &[Example],
        truths: &[Vec<(u32, f32)>],
        k: usize,
        cat: &crate::train::metrics::Catalogue,
    ) -> Option<(Self, Vec<(f32, f64)>)> {
        let mut best: Option<(f64, Self)> = None;
        let mut tried = Vec::new();
        for w in ARTIST_WEIGHTS {
            let c = Self::new(ds, w)?;
            let lists: Vec<Vec<u32>> = validation.par_iter().map(|e| c.recommend(e, k)).collect();
            let v = crate::train::metrics::evaluate(&lists, truths, k, cat).ndcg;
            tried.push((w, v));
            if best.as_ref().is_none_or(|b| v > b.0) {
                best = Some((v, c));
            }
        }
        best.map(|(_, c)| (c, tried))
    }

    fn row(&self, s: u32) -> &[f32] {
        &self.vecs[s as usize * self.dim..(s as usize + 1) * self.dim]
    }

    /// Song `s`'s artist (an index), when it has one and the artist is weighted.
    pub fn artist(&self, s: u32) -> Option<u32> {
        self.artist
            .get(s as usize)
            .copied()
            .filter(|&a| a != u32::MAX)
    }

    /// The songs of the catalogue.
    pub fn songs(&self) -> usize {
        self.vecs.len() / self.dim
    }

    /// Whether song `s` has content to compare: a song vector, a known genre, or (weighted) an
    /// artist. A song without scores 0 against every song, which says nothing.
    pub fn has_content(&self, s: u32) -> bool {
        self.artist_entry[s as usize] > 0.0 || self.row(s).iter().any(|&x| x != 0.0)
    }

    /// The mean cosine of each candidate to the history's songs (each distinct song once).
    pub fn scores(&self, history: &[u32], candidates: &[u32]) -> Vec<f32> {
        let mut h = history.to_vec();
        h.sort_unstable();
        h.dedup();
        let mut mean = vec![0.0f32; self.dim];
        // The artist part of the mean row, sparse: artist → summed entries.
        let mut artists: HashMap<u32, f32> = HashMap::new();
        for &s in &h {
            mean.iter_mut().zip(self.row(s)).for_each(|(m, x)| *m += x);
            if let Some(&a) = self.artist.get(s as usize).filter(|&&a| a != u32::MAX) {
                *artists.entry(a).or_default() += self.artist_entry[s as usize];
            }
        }
        let n = h.len().max(1) as f32;
        mean.iter_mut().for_each(|m| *m /= n);
        candidates
            .iter()
            .map(|&c| {
                let dense: f32 = self.row(c).iter().zip(&mean).map(|(a, b)| a * b).sum();
                let same = match self.artist.get(c as usize) {
                    Some(a) if *a != u32::MAX => artists.get(a).copied().unwrap_or(0.0) / n,
                    _ => 0.0,
                };
                dense + self.artist_entry[c as usize] * same
            })
            .collect()
    }

    /// The top `k` of all songs for the visible history, skipping `exclude`.
    pub fn recommend(&self, e: &Example, k: usize) -> Vec<u32> {
        let all: Vec<u32> = (0..self.songs() as u32).collect();
        top_k(&self.scores(&e.songs, &all), &e.exclude, k)
    }
}

/// **artist popularity**, the popularity baseline of item cold start: a song's score is the
/// number of listens (distinct user–song pairs) of the fitting users to the *other* songs of its
/// artist, songs marked `excluded` (the cold songs) left out. A song without artist, or whose
/// artist has no counted listen, scores 0.
pub struct ArtistPopularity {
    /// Per song: its artist's count.
    pub scores: Vec<f32>,
    /// Per artist name: listens counted.
    pub artists: HashMap<String, f32>,
}

impl ArtistPopularity {
    pub fn fit(ds: &crate::data::Dataset, users: &[u32], excluded: &[bool]) -> Self {
        let mut artists: HashMap<String, f32> = HashMap::new();
        for &u in users {
            let (songs, _) = ds.history(u as usize);
            let mut s = songs.to_vec();
            s.sort_unstable();
            s.dedup();
            for x in s {
                if excluded.get(x as usize).copied().unwrap_or(false) {
                    continue;
                }
                let a = &ds.song_meta[x as usize].artist;
                if !a.is_empty() {
                    *artists.entry(a.clone()).or_default() += 1.0;
                }
            }
        }
        let scores = ds
            .song_meta
            .iter()
            .map(|m| artists.get(&m.artist).copied().unwrap_or(0.0))
            .collect();
        ArtistPopularity { scores, artists }
    }
}
