//! Popularity, item-kNN and EASE on a case small enough to compute by hand.

use ainrnn::eval::baselines::{spd_inverse, top_k, Ease, ItemKnn, Popularity};
use ainrnn::model::batch::Example;
use ainrnn::model::neighbours::Similarity;

/// Training users: u0 {0,1}, u1 {0,1,2}, u2 {1,2}, u3 {3}.
fn histories() -> Vec<(Vec<u32>, Vec<f32>)> {
    vec![
        (vec![0, 1], vec![1.0, 1.0]),
        (vec![0, 1, 2, 1], vec![1.0, 1.0, 1.0, 1.0]), // a repeated song counts once
        (vec![1, 2], vec![1.0, 1.0]),
        (vec![3], vec![5.0]),
    ]
}

fn ex(songs: &[u32]) -> Example {
    Example {
        user: 0,
        songs: songs.to_vec(),
        plays: vec![1.0; songs.len()],
        targets: vec![],
        exclude: songs.to_vec(),
    }
}

#[test]
fn popularity_by_user_count_ties_to_lower_id() {
    let p = Popularity::fit(4, &histories(), &[0, 1, 2, 3]);
    assert_eq!(p.counts, vec![2.0, 3.0, 2.0, 1.0]);
    assert_eq!(p.recommend(&ex(&[1]), 10), vec![0, 2, 3]);
    assert_eq!(p.recommend(&ex(&[]), 2), vec![1, 0]);
}

#[test]
fn item_knn_cosine_by_hand() {
    let knn = ItemKnn::fit(4, &histories(), &[0, 1, 2, 3], 10, Similarity::COSINE);
    // co(0,1)=2, |0|=2, |1|=3 → 2/√6; co(0,2)=1, |2|=2 → 1/2; co(1,2)=2 → 2/√6.
    let s = knn.scores(&[0]);
    assert!(
        (s[1] - 2.0 / 6f32.sqrt()).abs() < 1e-6 && (s[2] - 0.5).abs() < 1e-6 && s[3] == 0.0,
        "{s:?}"
    );
    let s = knn.scores(&[0, 2]);
    assert!((s[1] - 4.0 / 6f32.sqrt()).abs() < 1e-6);
    assert_eq!(
        knn.recommend(&ex(&[0]), 10),
        vec![1, 2],
        "song 3 shares no user: never recommended"
    );
    let small = ItemKnn::fit(4, &histories(), &[0, 1, 2, 3], 1, Similarity::COSINE);
    assert_eq!(
        small.neighbours[0].len(),
        1,
        "only the closest neighbour kept"
    );
}

/// Gauss–Jordan inverse, the independent oracle for the Cholesky-based one.
fn gauss_jordan(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    let mut inv: Vec<f64> = (0..n * n)
        .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
        .collect();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&x, &y| a[x * n + c].abs().total_cmp(&a[y * n + c].abs()))
            .unwrap();
        for j in 0..n {
            a.swap(c * n + j, p * n + j);
            inv.swap(c * n + j, p * n + j);
        }
        let d = a[c * n + c];
        for j in 0..n {
            a[c * n + j] /= d;
            inv[c * n + j] /= d;
        }
        for r in 0..n {
            if r != c {
                let f = a[r * n + c];
                for j in 0..n {
                    a[r * n + j] -= f * a[c * n + j];
                    inv[r * n + j] -= f * inv[c * n + j];
                }
            }
        }
    }
    inv
}

#[test]
fn ease_weights_by_hand() {
    let lambda = 1.0f64;
    let e = Ease::fit(4, &histories(), &[0, 1, 2, 3], lambda as f32, 10).unwrap();
    // Items ordered by popularity: 1 (3 users), 0, 2 (2 each, lower id first), 3.
    assert_eq!(e.items, vec![1, 0, 2, 3]);
    // G = XᵀX + λI in that item order.
    let g = vec![
        3.0 + lambda,
        2.0,
        2.0,
        0.0, //
        2.0,
        2.0 + lambda,
        1.0,
        0.0, //
        2.0,
        1.0,
        2.0 + lambda,
        0.0, //
        0.0,
        0.0,
        0.0,
        1.0 + lambda,
    ];
    let p = gauss_jordan(g, 4);
    for i in 0..4 {
        for j in 0..4 {
            let want = if i == j {
                0.0
            } else {
                -p[i * 4 + j] / p[j * 4 + j]
            };
            assert!(
                (e.b[i * 4 + j] as f64 - want).abs() < 1e-6,
                "B[{i}][{j}] = {} want {want}",
                e.b[i * 4 + j]
            );
        }
    }
    // Scores of a user who played song 0: row of item 0 (index 1) in B, mapped back to songs.
    let s = e.scores(&[0]);
    assert!((s[1] - e.b[4]).abs() < 1e-7 && (s[2] - e.b[4 + 2]).abs() < 1e-7);
    assert_eq!(
        e.recommend(&ex(&[0]), 1),
        vec![if s[1] >= s[2] { 1 } else { 2 }]
    );
    // Only the most popular item modelled: others score -inf and are never recommended.
    let e1 = Ease::fit(4, &histories(), &[0, 1, 2, 3], lambda as f32, 1).unwrap();
    assert_eq!(e1.recommend(&ex(&[0]), 5), vec![1]);
}

#[test]
fn spd_inverse_matches_gauss_jordan_on_random_matrices() {
    // 37: one block; 250: several blocks and a short last one.
    for n in [37usize, 250] {
        check_inverse(n);
    }
    assert!(
        spd_inverse(vec![1.0, 2.0, 2.0, 1.0], 2).is_err(),
        "indefinite matrix rejected"
    );
}

fn check_inverse(n: usize) {
    let mut x = vec![0.0f64; n * n];
    let mut s = 1u64;
    for v in x.iter_mut() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *v = ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
    }
    // G = XᵀX + I is symmetric positive definite.
    let mut g = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            g[i * n + j] = (0..n).map(|k| x[k * n + i] * x[k * n + j]).sum::<f64>()
                + if i == j { 1.0 } else { 0.0 };
        }
    }
    let a = spd_inverse(g.clone(), n).unwrap();
    let b = gauss_jordan(g, n);
    for i in 0..n * n {
        assert!(
            (a[i] - b[i]).abs() < 1e-9,
            "entry {i}: {} vs {}",
            a[i],
            b[i]
        );
    }
    assert!(
        spd_inverse(vec![1.0, 2.0, 2.0, 1.0], 2).is_err(),
        "indefinite matrix rejected"
    );
}

#[test]
fn top_k_skips_excluded_and_non_finite() {
    let s = [0.5, f32::NAN, 2.0, f32::NEG_INFINITY, 2.0, 1.0];
    assert_eq!(top_k(&s, &[5], 10), vec![2, 4, 0]);
    assert_eq!(top_k(&s, &[], 2), vec![2, 4]);
}
