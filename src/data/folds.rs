//! Cross-validation by user, as in the MSD Challenge: users are dealt into `F` folds; when a fold
//! is the test fold, each of its users shows a share of their songs as visible history and the
//! rest is held out as the truth to predict.
//!
//! Folds: the users are shuffled with the seed (Fisher–Yates, [`Rng`]) and dealt round-robin, so
//! fold sizes differ by at most one. Visible songs: for a user with `n` songs, `k =
//! round(n × share)` clamped to `1..=n-1` (so every test user with two or more songs has both a
//! history and a truth), chosen uniformly at random with a generator seeded by the seed and the
//! user's original id (so a user's split does not change when filtering changes other users); a
//! user with a single song has it visible and nothing held out. The choice is random rather than
//! a prefix because the history order is file order, not time.

use super::rng::{fnv1a, Rng};

/// Stream constant separating the fold shuffle from other uses of the seed.
const FOLD_STREAM: u64 = 0xF01D;

/// Fold of each user (0..folds).
pub fn assign_folds(users: usize, folds: u32, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..users as u32).collect();
    Rng::derived(seed, FOLD_STREAM).shuffle(&mut order);
    let mut fold = vec![0u32; users];
    for (pos, &u) in order.iter().enumerate() {
        fold[u as usize] = (pos as u64 % folds as u64) as u32;
    }
    fold
}

/// Number of visible songs for a user with `n` songs.
pub fn visible_count(n: usize, share: f64) -> usize {
    match n {
        0 => 0,
        1 => 1,
        _ => ((n as f64 * share).round() as usize).clamp(1, n - 1),
    }
}

/// Visible flag of every interaction (meaningful when its user is in the test fold).
pub fn assign_visible(user_ids: &[String], indptr: &[u64], share: f64, seed: u64) -> Vec<bool> {
    let nnz = indptr.last().copied().unwrap_or(0) as usize;
    let mut visible = vec![false; nnz];
    let mut pos: Vec<usize> = Vec::new();
    for (u, id) in user_ids.iter().enumerate() {
        let (a, b) = (indptr[u] as usize, indptr[u + 1] as usize);
        let n = b - a;
        let k = visible_count(n, share);
        let mut rng = Rng::derived(seed, fnv1a(id.as_bytes()));
        pos.clear();
        pos.extend(0..n);
        // Partial Fisher–Yates: the first k entries become a uniform random k-subset.
        for i in 0..k {
            let j = i + rng.below((n - i) as u64) as usize;
            pos.swap(i, j);
            visible[a + pos[i]] = true;
        }
    }
    visible
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(visible_count(0, 0.5), 0);
        assert_eq!(visible_count(1, 0.5), 1);
        assert_eq!(visible_count(2, 0.5), 1);
        assert_eq!(visible_count(3, 0.5), 2);
        assert_eq!(visible_count(10, 0.5), 5);
        assert_eq!(visible_count(10, 0.0), 1);
        assert_eq!(visible_count(10, 1.0), 9);
    }

    #[test]
    fn balanced_folds() {
        let f = assign_folds(103, 10, 42);
        let mut sizes = [0; 10];
        f.iter().for_each(|&x| sizes[x as usize] += 1);
        assert!(sizes.iter().all(|&s| s == 10 || s == 11), "{sizes:?}");
        assert_eq!(f, assign_folds(103, 10, 42));
        assert_ne!(f, assign_folds(103, 10, 43));
    }
}
