//! Ranking metrics against values computed by hand.

use ainrnn::eval::metrics::{curves, evaluate, score_user, top_k, Catalogue};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn one_hit_at_rank_two() {
    // ranked 1..5, held out {2, 5, 9}, k = 3: one hit at position 2.
    let u = score_user(&[1, 2, 3, 4, 5], &[(2, 1.0), (5, 1.0), (9, 1.0)], 3).unwrap();
    assert!(close(u.precision, 1.0 / 3.0));
    assert!(close(u.recall, 1.0 / 3.0));
    let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
    assert!(close(u.ndcg, (1.0 / 3f64.log2()) / idcg), "{}", u.ndcg);
    assert!(close(u.ap, (1.0 / 2.0) / 3.0));
    assert!(u.hit);
    // At k = 5 the second hit (rank 5) counts too.
    let u5 = score_user(&[1, 2, 3, 4, 5], &[(2, 1.0), (5, 1.0), (9, 1.0)], 5).unwrap();
    assert!(close(u5.precision, 2.0 / 5.0));
    assert!(close(u5.ap, (1.0 / 2.0 + 2.0 / 5.0) / 3.0));
}

#[test]
fn k_larger_than_the_list_and_empty_truth() {
    let u = score_user(&[7], &[(7, 2.0)], 10).unwrap();
    assert!(close(u.precision, 0.1));
    assert!(close(u.recall, 1.0));
    assert!(close(u.ndcg, 1.0));
    assert!(close(u.ap, 1.0));
    assert!(
        score_user(&[1, 2], &[], 10).is_none(),
        "no held-out songs: not scored"
    );
    let miss = score_user(&[1, 2], &[(3, 1.0)], 2).unwrap();
    assert_eq!(
        (miss.precision, miss.ndcg, miss.ap, miss.hit),
        (0.0, 0.0, 0.0, false)
    );
}

#[test]
fn graded_ndcg_uses_play_counts() {
    // gains ln(1+3) and ln(1+1); ranked [5, 2] puts the smaller gain first.
    let u = score_user(&[5, 2], &[(2, 3.0), (5, 1.0)], 2).unwrap();
    let (g2, g5) = (4f64.ln(), 2f64.ln());
    let dcg = g5 + g2 / 3f64.log2();
    let idcg = g2 + g5 / 3f64.log2();
    assert!(close(u.ndcg_graded, dcg / idcg), "{}", u.ndcg_graded);
    assert!(close(u.ndcg, 1.0), "binary NDCG is perfect: both are hits");
}

#[test]
fn duplicate_truth_entries_and_ties_in_scores_do_not_double_count() {
    // The ranker resolves ties; the metric only sees the order, and a song counts once.
    // The list repeats 4 and the truth lists it twice: one relevant song, one hit at rank 1.
    let u = score_user(&[4, 4, 6], &[(4, 1.0), (4, 1.0)], 3).unwrap();
    assert!(close(u.recall, 1.0), "recall {}", u.recall);
    assert!(close(u.precision, 1.0 / 3.0), "precision {}", u.precision);
    assert!(close(u.ndcg, 1.0), "ndcg {}", u.ndcg);
    assert!(close(u.ap, 1.0), "ap {}", u.ap);
    // A list repeating a song it hit scores no more than the list with it once.
    let rep = score_user(&[1, 1, 1], &[(1, 1.0), (2, 1.0)], 3).unwrap();
    let once = score_user(&[1, 3, 4], &[(1, 1.0), (2, 1.0)], 3).unwrap();
    assert_eq!(rep, once);
    // The truth listed twice is the truth listed once.
    let twice = score_user(&[5, 2], &[(2, 3.0), (2, 3.0), (9, 1.0)], 2).unwrap();
    let single = score_user(&[5, 2], &[(2, 3.0), (9, 1.0)], 2).unwrap();
    assert_eq!(twice, single);
}

#[test]
fn top_k_of_zero_or_more_than_the_catalogue() {
    let scores = [0.5, 2.0, f32::NEG_INFINITY, 1.0];
    assert!(top_k(&scores, &[], 0).is_empty(), "k = 0 gives nothing");
    assert_eq!(top_k(&scores, &[3], usize::MAX), vec![1, 0]);
    assert_eq!(top_k(&scores, &[], 2), vec![1, 3]);
}

/// 10 songs in 5 genres of two; popularity makes songs 0 and 1 the head (top 20 %).
fn ten_songs() -> Catalogue {
    Catalogue {
        songs: 10,
        popularity: vec![9, 8, 1, 1, 1, 1, 1, 1, 1, 1],
        genre: Some(vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]),
    }
}

#[test]
fn averages_coverage_long_tail_and_diversity() {
    // 10 songs; popularity makes songs 0 and 1 the head (top 20 %).
    let cat = ten_songs();
    let lists = vec![vec![0, 2], vec![1, 0], vec![5, 6]];
    let truths = vec![vec![(2, 1.0)], vec![], vec![(9, 1.0)]];
    let m = evaluate(&lists, &truths, 2, &cat);
    assert_eq!((m.users, m.users_without_truth), (2, 1));
    assert!(close(m.precision, (0.5 + 0.0) / 2.0));
    assert!(close(m.hit_rate, 0.5));
    assert!(close(m.coverage, 5.0 / 10.0), "songs 0, 1, 2, 5, 6");
    assert!(
        close(m.long_tail_share, 3.0 / 6.0),
        "slots: 0 2 | 1 0 | 5 6 → tail: 2, 5, 6"
    );
    // Lists: genres {0,1} → 0.5; {0,0} → 0; {2,3} → 0.5.
    assert!(close(m.genre_diversity.unwrap(), 1.0 / 3.0));
    let c = curves(&lists, &truths, 2);
    assert_eq!(c.len(), 2);
    assert!(close(c[0].1, 0.0) && close(c[1].1, 0.25), "{c:?}");
}

#[test]
fn a_repeated_or_unknown_song_adds_no_coverage_tail_or_genre() {
    let cat = ten_songs();
    let truths = vec![vec![(2, 1.0)]];
    // Song 2 (tail, genre 1) twice beside song 0 (head, genre 0); song 99 is not in the
    // catalogue.
    let m = evaluate(&[vec![2, 2, 0, 99]], &truths, 4, &cat);
    assert!(close(m.coverage, 2.0 / 10.0), "coverage {}", m.coverage);
    // Slots 2 2 0 99: distinct tail songs 2 and 99 over four slots.
    assert!(
        close(m.long_tail_share, 2.0 / 4.0),
        "tail {}",
        m.long_tail_share
    );
    // Distinct songs 2, 0, 99 have genres 1, 0 and (unknown) 0: 1 - (1/9 + 4/9).
    assert!(
        close(m.genre_diversity.unwrap(), 4.0 / 9.0),
        "{:?}",
        m.genre_diversity
    );
    let once = evaluate(&[vec![2, 0, 99]], &truths, 4, &cat);
    assert_eq!((m.precision, m.recall), (once.precision, once.recall));
}
