//! The neighbourhood term's weight γ is chosen on the validation users after training, and the
//! best checkpoint keeps the chosen weight (issue 15).

#[path = "common/mod.rs"]
mod common;

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::Backend;
use ainrnn::data::Dataset;
use ainrnn::model::checkpoint::Checkpoint;
use ainrnn::model::neighbours::{fit_with, Similarity};
use ainrnn::model::ModelKind;
use ainrnn::train::run::{train, TrainOptions, GAMMA_GRID};
use ainrnn::train::Corpus;

fn options(dir: &std::path::Path, neighbours: usize) -> TrainOptions {
    let data = common::cli::small(dir);
    let mut o = TrainOptions::new(
        data,
        ModelKind::Ainrnn,
        dir.join(format!("n{neighbours}.ckpt")),
    );
    (o.epochs, o.hidden, o.emb, o.layers, o.max_history) = (2, 8, 16, Some(2), 10);
    o.neighbours = neighbours;
    o
}

#[test]
fn the_chosen_weight_is_saved_in_the_best_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let b = CpuBackend::new();
    let o = options(dir.path(), 20);
    let s = train(&b, &o, |_| {}, |_, _, _, _| {}).unwrap();
    let w = s
        .neighbour_weight
        .expect("a model with the term gets a chosen weight");
    assert!(w.ndcg_chosen >= w.ndcg_trained, "{w:?}");
    assert!(
        GAMMA_GRID.contains(&w.chosen) || w.chosen == w.trained,
        "{w:?}"
    );
    let ck = Checkpoint::load(&o.out).unwrap();
    let model = ck.restore(&b, None).unwrap();
    let gamma = b
        .to_f32(model.params.get(model.scorer.gamma.unwrap()))
        .unwrap()[0];
    assert_eq!(gamma, w.chosen, "the checkpoint keeps the chosen weight");
}

#[test]
fn without_the_term_there_is_nothing_to_choose() {
    let dir = tempfile::tempdir().unwrap();
    let s = train(
        &CpuBackend::new(),
        &options(dir.path(), 0),
        |_| {},
        |_, _, _, _| {},
    )
    .unwrap();
    assert!(s.neighbour_weight.is_none());
}

/// After the choice the saved lists are refitted on all the fold's non-test users (training and
/// validation), with the similarity stored beside them; resuming the finished run chooses γ
/// again on the training users' lists, so it keeps the same weight and validation NDCG.
/// Without pair weights, so that the similarity is chosen on the validation users too.
#[test]
fn saved_lists_are_refitted_on_the_non_test_users_and_a_resumed_run_chooses_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let b = CpuBackend::new();
    let mut o = options(dir.path(), 20);
    o.pair_weights = false;
    let first = train(&b, &o, |_| {}, |_, _, _, _| {}).unwrap();
    let w = first.neighbour_weight.clone().unwrap();
    let chosen = first.similarity.as_ref().unwrap().chosen;

    let ds = Dataset::load(&o.data).unwrap();
    let (corpus, _) = Corpus::from_dataset(&ds, o.features).unwrap();
    let non_test = ds.split(o.fold).train_users;
    assert_eq!(w.list_users, non_test.len(), "{w:?}");
    assert!(w.list_users > first.train_users, "{w:?}");
    let ck = Checkpoint::load(&o.out).unwrap();
    let stored: Option<Similarity> = ck.get("similarity").unwrap().unwrap();
    assert_eq!(stored, Some(chosen));
    let saved = ck.restore(&b, None).unwrap().scorer.neighbours().clone();
    let all = fit_with(corpus.songs, &corpus.histories, &non_test, 20, chosen);
    assert_eq!(
        saved, all,
        "the saved lists are those of the non-test users"
    );

    let mut again = o.clone();
    again.resume = true;
    let second = train(&b, &again, |_| {}, |_, _, _, _| {}).unwrap();
    assert_eq!(second.epochs_run, first.epochs_run, "nothing left to train");
    let w2 = second.neighbour_weight.unwrap();
    assert_eq!(w2.chosen, w.chosen, "{w:?} {w2:?}");
    assert_eq!(w2.ndcg_chosen, w.ndcg_chosen, "chosen on the same lists");
    let saved2 = Checkpoint::load(&o.out)
        .unwrap()
        .restore(&b, None)
        .unwrap()
        .scorer
        .neighbours()
        .clone();
    assert_eq!(saved2, all);
}

/// With pair weights (the default) the lists are cosine, not chosen on the validation users:
/// nothing is reported as chosen, cosine is stored, and the saved lists are the non-test users'
/// cosine lists; a similarity given explicitly is used as given. Without pair weights, or above
/// their cap, `auto` chooses.
#[test]
fn lists_are_cosine_with_pair_weights_and_chosen_without() {
    let dir = tempfile::tempdir().unwrap();
    let b = CpuBackend::new();
    let o = options(dir.path(), 20);
    assert!(o.pair_weights && o.similarity.is_none(), "the defaults");
    let s = train(&b, &o, |_| {}, |_, _, _, _| {}).unwrap();
    assert!(s.similarity.is_none(), "nothing chosen: {:?}", s.similarity);
    let ck = Checkpoint::load(&o.out).unwrap();
    let stored: Option<Similarity> = ck.get("similarity").unwrap().unwrap();
    assert_eq!(stored, Some(Similarity::COSINE));
    let ds = Dataset::load(&o.data).unwrap();
    let (corpus, _) = Corpus::from_dataset(&ds, o.features).unwrap();
    let non_test = ds.split(o.fold).train_users;
    let saved = ck.restore(&b, None).unwrap().scorer.neighbours().clone();
    let cosine = fit_with(
        corpus.songs,
        &corpus.histories,
        &non_test,
        20,
        Similarity::COSINE,
    );
    assert_eq!(saved, cosine);

    let songs = corpus.songs;
    assert_eq!(o.list_similarity(songs), Some(Similarity::COSINE));
    let given: Similarity = "0.8,5,0.5".parse().unwrap();
    let mut fixed = o.clone();
    fixed.similarity = Some(given);
    assert_eq!(fixed.list_similarity(songs), Some(given));
    let mut none = o.clone();
    none.pair_weights = false;
    assert_eq!(none.list_similarity(songs), None);
    // Above the cap no pair weights are learned: the similarity is chosen.
    let capped = ainrnn::train::run::PAIR_WEIGHTS_MAX / o.neighbours + 1;
    assert_eq!(o.list_similarity(capped), None);
    let mut no_term = o.clone();
    no_term.neighbours = 0;
    assert_eq!(no_term.list_similarity(songs), None);
}

/// The choice of the term's weights ranks the validation users with their user vectors computed
/// once (`Trainer::validation_users`): with any γ and per-song weights, that validation gives
/// exactly what a full one gives (recurrent layers run again), on both backends; the catalogue
/// in two tiles.
#[test]
fn validation_with_kept_user_vectors_is_a_full_validation() {
    use ainrnn::backend::model_ops::ModelOps;
    use ainrnn::model::params::OptimConfig;
    use ainrnn::model::{Model, ModelConfig};
    use ainrnn::train::corpus::fold_data;
    use ainrnn::train::{TrainConfig, TrainState, Trainer};

    fn check<B: ModelOps>(b: &B, data: &std::path::Path) {
        let ds = Dataset::load(data).unwrap();
        let (corpus, _) =
            Corpus::from_dataset(&ds, ainrnn::train::corpus::FeatureSet::None).unwrap();
        let fold = fold_data(&ds, &corpus, 0, 7, usize::MAX).unwrap();
        let mut mc = ModelConfig::new(ModelKind::Ainrnn, corpus.songs);
        (mc.layers, mc.hidden, mc.emb, mc.max_history) = (2, 8, 16, 10);
        (mc.neighbours, mc.song_weights) = (20, true);
        mc.tile = corpus.songs.div_ceil(2);
        let mut model = Model::new(b, mc, None).unwrap();
        model.fit_neighbours(&corpus.histories, &fold.train_users, Similarity::COSINE);
        assert_eq!(model.scorer.tiles.len(), 2);
        let mut t = Trainer {
            b: b.clone(),
            model,
            corpus: &corpus,
            train_users: fold.train_users.clone(),
            validation: fold.validation.clone(),
            catalogue: corpus.catalogue(&fold.train_users, None),
            cfg: TrainConfig {
                epochs: 1,
                batch: 32,
                optim: OptimConfig::default(),
                patience: 0,
                seed: 3,
                visible_share: ds.visible_share,
                k: 10,
                rank_batch: 32,
            },
            state: TrainState::default(),
        };
        t.run_epoch(|_, _, _| {}).unwrap();
        assert!(t.validation.len() > t.cfg.rank_batch, "several batches");
        // A user's list does not depend on the users ranked beside it: the trainer's default
        // ranking batch (one batch here) gives the same metrics as batches of 32.
        let narrow = t.validate().unwrap();
        assert!(t.validation_users().unwrap().batch_count() > 1);
        t.cfg.rank_batch = ainrnn::train::RANK_BATCH;
        assert_eq!(t.validation_users().unwrap().batch_count(), 1);
        let wide = t.validate().unwrap();
        assert_eq!(
            (wide.ndcg, wide.precision, wide.recall, wide.users),
            (narrow.ndcg, narrow.precision, narrow.recall, narrow.users)
        );
        t.cfg.rank_batch = 32;
        let users = t.validation_users().unwrap();
        let (gid, wid) = (
            t.model.scorer.gamma.unwrap(),
            t.model.scorer.song_weights.unwrap(),
        );
        let learned = b.to_f32(t.model.params.get(wid)).unwrap();
        let mut seen = Vec::new();
        for (g, s) in [(0.0, 1.0), (3.0, 1.0), (64.0, 1.0), (3.0, 0.5), (8.0, 0.0)] {
            t.model.params.set(b, gid, &[g]).unwrap();
            let w: Vec<f32> = learned.iter().map(|x| s * x).collect();
            t.model.params.set(b, wid, &w).unwrap();
            let (kept, full) = (t.validate_with(&users).unwrap(), t.validate().unwrap());
            assert_eq!(
                (kept.ndcg, kept.precision, kept.recall, kept.users),
                (full.ndcg, full.precision, full.recall, full.users),
                "γ {g}, weights × {s}"
            );
            seen.push(kept.ndcg);
        }
        seen.dedup();
        assert!(seen.len() > 1, "the weights change the ranking: {seen:?}");
    }

    // HetRec as prepared (1,503 users, 6,000 artists): ~120 validation users, who do get hits.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hetrec.h5");
    common::cli::succeeds(&common::cli::ainrnn(&[
        "prepare",
        "--hetrec",
        "data/hetrec/user_artists.dat",
        "--folds",
        "5",
        "-o",
        common::cli::s(&data),
    ]));
    check(&CpuBackend::new(), &data);
    if let Some(g) = common::gpu() {
        check(&g, &data);
    }
}
