//! The neighbourhood term's weight γ is chosen on the validation users after training, and the
//! best checkpoint keeps the chosen weight (issue 15).

#[path = "common/mod.rs"]
mod common;

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::Backend;
use ainrnn::model::checkpoint::Checkpoint;
use ainrnn::model::ModelKind;
use ainrnn::train::run::{train, TrainOptions, GAMMA_GRID};

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
