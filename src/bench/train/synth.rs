//! The benchmark's SYNTHETIC listening histories, made in memory (never real data).

use rustc_hash::FxHashSet;

use crate::data::rng::Rng;
use crate::model::batch::Example;

/// SYNTHETIC histories: song popularity follows Zipf's law (weight `1/(rank+1)`, ranks a random
/// permutation), songs of a user are distinct, play counts are ⌈log-normal(−0.3, 1.5)⌉ as in
/// `ainrnn synth`. Each user is drawn from its own seeded stream, so any subset is reproducible.
pub struct SyntheticHistories {
    cum: Vec<f64>,
    songs: usize,
    seed: u64,
}

impl SyntheticHistories {
    pub fn new(songs: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut rank: Vec<u32> = (0..songs as u32).collect();
        rng.shuffle(&mut rank);
        let mut acc = 0.0;
        let cum = rank
            .iter()
            .map(|&r| {
                acc += 1.0 / (r as f64 + 1.0);
                acc
            })
            .collect();
        SyntheticHistories { cum, songs, seed }
    }

    fn song(&self, rng: &mut Rng) -> u32 {
        let total = self.cum.last().copied().unwrap_or(0.0);
        let x = rng.uniform() * total;
        self.cum.partition_point(|&c| c <= x).min(self.songs - 1) as u32
    }

    /// User `user`'s example: `history` listens (with play counts) and `targets` other songs.
    pub fn example(&self, user: u32, history: usize, targets: usize) -> Example {
        let mut rng = Rng::derived(self.seed, user as u64);
        let want = (history + targets).min(self.songs);
        let mut seen = FxHashSet::default();
        let mut songs = Vec::with_capacity(want);
        let mut attempts = 0;
        while songs.len() < want && attempts < 50 * want + 100 {
            attempts += 1;
            let s = self.song(&mut rng);
            if seen.insert(s) {
                songs.push(s);
            }
        }
        let n_hist = history.min(songs.len().saturating_sub(1)).max(1);
        let tgt = songs.split_off(n_hist.min(songs.len()));
        let plays = songs
            .iter()
            .map(|_| {
                let u1 = 1.0 - rng.uniform();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * rng.uniform()).cos();
                (-0.3 + 1.5 * z).exp().ceil().clamp(1.0, 1e6) as f32
            })
            .collect();
        Example {
            user,
            songs,
            plays,
            targets: tgt,
            exclude: Vec::new(),
        }
    }

    /// Examples of users `first..first + n`.
    pub fn examples(&self, first: usize, n: usize, history: usize, targets: usize) -> Vec<Example> {
        (first..first + n)
            .map(|u| self.example(u as u32, history, targets))
            .collect()
    }
}
