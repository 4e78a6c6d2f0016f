//! `ainrnn synth`: **synthetic** Taste-Profile-shaped interactions for scale and speed tests.
//! Never real data: the file starts with a `# synthetic ...` header, ids start with `synthetic`
//! (users) and `SYN` (songs), and `prepare` labels the dataset source "synthetic (...)".
//!
//! Model (all draws from the seeded [`Rng`], so the same options give the same bytes):
//! - songs: popularity follows Zipf's law, weight `(rank + 1)^-zipf`, with ranks assigned by a
//!   random permutation; each song belongs to one of `genres` latent taste clusters.
//! - users: a taste = 1 to 3 favourite clusters with random weights, plus 5 % spread over all
//!   clusters; each listen picks a cluster from the taste and a song from that cluster by
//!   popularity, or (with probability `explore`) a song from the whole catalogue by popularity.
//!   Songs of a user are distinct. Users therefore share structure a recommender can learn.
//! - songs per user: log-normal with mean `mean_listens` (σ = 0.9), at least 1.
//! - play counts: ⌈log-normal(μ = -0.3, σ = 1.5)⌉: median 1, mean ≈ 2.8, like the Taste
//!   Profile (2.9).
//!
//! Output is streamed: memory is O(songs), whatever the number of users.
//!
//! With `--audio DIR`, the `synth_audio` module also writes one synthetic clip per song whose
//! sound follows the song's latent cluster.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rustc_hash::FxHashSet;
use serde::Serialize;

use super::progress::Progress;
use super::rng::{splitmix64, Rng};
use crate::error::IoError;
use crate::io::{check_output, AtomicFile};

#[derive(Clone, Debug)]
pub struct SynthOptions {
    pub users: usize,
    pub songs: usize,
    /// Mean number of distinct songs per user.
    pub mean_listens: f64,
    pub seed: u64,
    /// Latent taste clusters.
    pub genres: usize,
    /// Zipf exponent of song popularity.
    pub zipf: f64,
    /// Probability that a listen ignores the user's taste.
    pub explore: f64,
}

impl SynthOptions {
    pub fn new(users: usize, songs: usize, mean_listens: f64) -> Self {
        SynthOptions {
            users,
            songs,
            mean_listens,
            seed: 42,
            genres: 20,
            zipf: 1.0,
            explore: 0.15,
        }
    }

    pub fn header(&self) -> String {
        format!(
            "# synthetic Taste-Profile-shaped triplets from ainrnn synth: users={} songs={} mean_listens={} genres={} zipf={} explore={} seed={}",
            self.users, self.songs, self.mean_listens, self.genres, self.zipf, self.explore, self.seed
        )
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SynthReport {
    /// Always "synthetic".
    pub kind: &'static str,
    pub users: usize,
    pub songs: usize,
    /// Distinct songs that received at least one listen.
    pub songs_used: usize,
    pub interactions: u64,
    pub plays: u64,
    pub bytes: u64,
    pub seed: u64,
    /// Synthetic clips written (`synth --audio`; 0 without it).
    pub clips: usize,
    /// The clips' folder (`synth --audio DIR`).
    pub audio_dir: Option<String>,
}

/// Cumulative weights for sampling by binary search.
struct Cdf {
    items: Vec<u32>,
    cum: Vec<f64>,
}

impl Cdf {
    fn new(items: Vec<u32>, weight: impl Fn(u32) -> f64) -> Self {
        let mut acc = 0.0;
        let cum = items
            .iter()
            .map(|&i| {
                acc += weight(i);
                acc
            })
            .collect();
        Cdf { items, cum }
    }

    fn sample(&self, rng: &mut Rng) -> Option<u32> {
        let total = *self.cum.last()?;
        let x = rng.uniform() * total;
        let i = self
            .cum
            .partition_point(|&c| c <= x)
            .min(self.items.len() - 1);
        Some(self.items[i])
    }
}

fn normal(rng: &mut Rng) -> f64 {
    // Box–Muller; 1 - u keeps the logarithm finite.
    let u1 = 1.0 - rng.uniform();
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub fn user_id(u: usize) -> String {
    let mut s = u as u64;
    format!("synthetic{:031x}", splitmix64(&mut s))
}

pub fn song_id(j: usize) -> String {
    // Multiplying by an odd constant is a bijection modulo 2^60: ids are distinct.
    let x = (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) & ((1u64 << 60) - 1);
    format!("SYN{x:015X}")
}

/// The song side of the generator: popularity and latent clusters.
pub struct SongModel {
    /// Latent taste cluster of each song.
    pub cluster: Vec<u32>,
    /// Popularity rank of each song (0 = most popular).
    pub rank: Vec<u32>,
    clusters: Vec<Cdf>,
    global: Cdf,
}

impl SongModel {
    fn new(o: &SynthOptions, rng: &mut Rng) -> Self {
        let s = o.songs;
        let k = o.genres.max(1);
        let mut rank: Vec<u32> = (0..s as u32).collect();
        rng.shuffle(&mut rank);
        let weight = |j: u32| (rank[j as usize] as f64 + 1.0).powf(-o.zipf);
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); k];
        let mut cluster = vec![0u32; s];
        for j in 0..s as u32 {
            let c = rng.below(k as u64) as usize;
            cluster[j as usize] = c as u32;
            members[c].push(j);
        }
        let clusters = members.into_iter().map(|m| Cdf::new(m, weight)).collect();
        let global = Cdf::new((0..s as u32).collect(), weight);
        SongModel {
            cluster,
            rank,
            clusters,
            global,
        }
    }
}

/// The song clusters and popularity ranks that [`write_synthetic`] uses for these options (for
/// tests and analysis of the synthetic data).
pub fn song_model(o: &SynthOptions) -> SongModel {
    SongModel::new(o, &mut Rng::new(o.seed))
}

/// Writes synthetic triplets to `w`.
pub fn write_synthetic<W: Write>(
    o: &SynthOptions,
    w: &mut W,
    progress: &Progress,
) -> std::io::Result<SynthReport> {
    let mut rng = Rng::new(o.seed);
    let s = o.songs;
    let k = o.genres.max(1);
    let model = SongModel::new(o, &mut rng);
    let song_ids: Vec<String> = (0..s).map(song_id).collect();

    let sigma = 0.9f64;
    let mu = o.mean_listens.max(1.0).ln() - sigma * sigma / 2.0;
    let mut used = vec![false; s];
    let mut chosen: Vec<u32> = Vec::new();
    let mut seen: FxHashSet<u32> = FxHashSet::default();
    let mut taste = vec![0f64; k];
    let mut report = SynthReport {
        kind: "synthetic",
        users: o.users,
        songs: s,
        songs_used: 0,
        interactions: 0,
        plays: 0,
        bytes: 0,
        seed: o.seed,
        clips: 0,
        audio_dir: None,
    };
    let header = o.header();
    writeln!(w, "{header}")?;
    report.bytes += header.len() as u64 + 1;
    let mut line = String::with_capacity(128);
    for u in 0..o.users {
        // Taste: 1-3 favourite clusters + 5 % spread.
        taste.fill(0.05 / k as f64);
        let favourites = 1 + rng.below(3) as usize;
        let mut weights = Vec::with_capacity(favourites);
        for _ in 0..favourites {
            weights.push((rng.below(k as u64) as usize, 0.2 + rng.uniform()));
        }
        let wsum: f64 = weights.iter().map(|w| w.1).sum();
        for (c, wt) in weights {
            taste[c] += 0.95 * wt / wsum;
        }
        let taste_cdf = Cdf::new((0..k as u32).collect(), |c| taste[c as usize]);

        let n = ((mu + sigma * normal(&mut rng)).exp().round() as usize).clamp(1, s.max(1));
        chosen.clear();
        seen.clear();
        let mut attempts = 0;
        while chosen.len() < n && attempts < 50 * n + 100 {
            attempts += 1;
            let pick = if rng.uniform() < o.explore {
                model.global.sample(&mut rng)
            } else {
                taste_cdf
                    .sample(&mut rng)
                    .and_then(|c| model.clusters[c as usize].sample(&mut rng))
            };
            if let Some(j) = pick {
                if seen.insert(j) {
                    chosen.push(j);
                }
            }
        }
        let uid = user_id(u);
        for &j in &chosen {
            let plays = (-0.3 + 1.5 * normal(&mut rng)).exp().ceil().clamp(1.0, 1e6) as u64;
            line.clear();
            line.push_str(&uid);
            line.push('\t');
            line.push_str(&song_ids[j as usize]);
            line.push('\t');
            line.push_str(&plays.to_string());
            line.push('\n');
            w.write_all(line.as_bytes())?;
            report.bytes += line.len() as u64;
            report.interactions += 1;
            report.plays += plays;
            if !used[j as usize] {
                used[j as usize] = true;
                report.songs_used += 1;
            }
        }
        if u % 1024 == 0 {
            progress.set(u as u64);
        }
    }
    progress.finish();
    Ok(report)
}

/// Memory a song of the catalogue takes while the triplets are drawn: its id (a string of 18
/// characters), cluster, rank, "used" flag and its entries in the popularity tables.
const BYTES_PER_SONG: f64 = 100.0;

/// Bytes of a triplet line: a 40-character user id, an 18-character song id, a play count.
const BYTES_PER_LINE: f64 = 63.0;

/// Refuses sizes this machine cannot hold, before the allocation that would abort the process
/// or the file that would fill the disk.
fn check_room(o: &SynthOptions, path: &Path) -> Result<(), IoError> {
    let refuse = |reason: String| {
        Err(IoError::Format {
            path: path.to_path_buf(),
            reason,
        })
    };
    if o.songs > u32::MAX as usize {
        return refuse(format!(
            "--songs {} is more than a catalogue can index (at most {})",
            o.songs,
            u32::MAX
        ));
    }
    let need = o.songs as f64 * BYTES_PER_SONG;
    if let Some(avail) = crate::io::space::memory_short_of(need) {
        return refuse(format!(
            "--songs {}: the catalogue's tables need about {:.0} MB of memory, and {:.0} MB are available: choose fewer --songs",
            o.songs,
            need / 1e6,
            avail as f64 / 1e6
        ));
    }
    let bytes = o.users as f64 * o.mean_listens.min(o.songs as f64) * BYTES_PER_LINE;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Some(free) = crate::io::space::free_disk_bytes(dir) {
        if bytes * 1.05 > free as f64 {
            return refuse(format!(
                "--users {} with --mean-listens {} make a file of about {:.0} MB, and {:.0} MB are free on {}: choose fewer --users or --mean-listens",
                o.users,
                o.mean_listens,
                bytes / 1e6,
                free as f64 / 1e6,
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Writes synthetic triplets to `path` atomically.
pub fn synth(o: &SynthOptions, path: &Path) -> Result<SynthReport, IoError> {
    if o.users == 0 || o.songs == 0 {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: "synthetic data needs at least one user and one song".into(),
        });
    }
    if !(o.mean_listens.is_finite() && o.mean_listens >= 1.0) {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!("--mean-listens must be at least 1, got {}", o.mean_listens),
        });
    }
    let bad = |flag: &str, range: &str, v: f64| IoError::Format {
        path: path.to_path_buf(),
        reason: format!("{flag} must be a finite number in {range}, got {v}"),
    };
    if o.genres == 0 {
        return Err(bad("--genres", "1..", 0.0));
    }
    if !(o.zipf.is_finite() && o.zipf >= 0.0) {
        return Err(bad("--zipf", "[0, inf)", o.zipf));
    }
    if !(o.explore.is_finite() && (0.0..=1.0).contains(&o.explore)) {
        return Err(bad("--explore", "[0, 1]", o.explore));
    }
    check_room(o, path)?;
    check_output(path)?;
    let out = AtomicFile::new(path);
    let f = File::create(out.temp()).map_err(|e| IoError::io(path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let progress = Progress::items(o.users as u64, "writing synthetic triplets");
    let r = write_synthetic(o, &mut w, &progress).map_err(|e| IoError::io(path, e))?;
    w.flush().map_err(|e| IoError::io(path, e))?;
    drop(w);
    out.commit()?;
    Ok(r)
}
