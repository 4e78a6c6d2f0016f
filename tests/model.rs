//! Whole-model checks on both backends: every parameter's gradient against central finite
//! differences of the loss, GPU against CPU on the same weights and batch, checkpoints across
//! backends. (Op-level forward/backward checks live in tests/ops.)

#[macro_use]
#[path = "common/mod.rs"]
mod common;

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::gpu::GpuBackend;
use ainrnn::backend::model_ops::ModelOps;
use ainrnn::backend::{Backend, BackendKind};
use ainrnn::model::batch::{upload, DeviceBatch, Example, PortraitTable};
use ainrnn::model::params::PId;
use ainrnn::model::{Connection, Model, ModelConfig, ModelKind, PoolingKind};
use rand::Rng;

use common::*;

const SONGS: usize = 23;
const FEAT: usize = 3;

fn config(kind: ModelKind) -> ModelConfig {
    let mut c = ModelConfig::new(kind, SONGS);
    c.hidden = 6;
    c.layers = if kind == ModelKind::Lstm { 2 } else { 3 };
    c.emb = 5;
    c.att = 4;
    c.portrait_dim = 3;
    c.max_history = 6;
    c.dropout = 0.0;
    c.feature_dim = FEAT;
    c.n_age = 3;
    c.n_lang = 2;
    c.n_genre = 4;
    c.tile = 7; // several catalogue tiles, the last one short
    c.seed = 5;
    c.song_weights = true;
    c.pair_weights = true;
    c.neighbours = 10; // the pair weights' rows: 10 per song
    c
}

fn features() -> Vec<f32> {
    let mut r = rng(1);
    uniform(&mut r, SONGS * FEAT, -1.0, 1.0)
}

fn portraits() -> PortraitTable {
    PortraitTable {
        age: vec![0, 1, 2, 1, 0],
        // Songs 0..23: genres cycle through 0..4 with every fifth unknown; languages 0 or 1.
        song_genre: (0..SONGS)
            .map(|s| {
                if s % 5 == 4 {
                    ainrnn::data::portrait::NO_GENRE
                } else {
                    (s % 4) as u8
                }
            })
            .collect(),
        song_lang: (0..SONGS).map(|s| (s % 3 == 0) as u16).collect(),
        n_genre: 4,
        n_lang: 2,
    }
}

/// A model with its item-neighbourhood term fitted on a few overlapping histories, so every
/// test also exercises that term.
fn new_model<B: ModelOps>(b: &B, cfg: ModelConfig, feats: &[f32]) -> Model<B> {
    let feats = (cfg.feature_dim > 0).then_some(feats);
    let mut m = Model::new(b, cfg, feats).unwrap();
    let histories: Vec<(Vec<u32>, Vec<f32>)> = (0..8u32)
        .map(|u| {
            let s: Vec<u32> = (0..6u32).map(|k| (u * 3 + k * 5) % SONGS as u32).collect();
            let p = vec![1.0; s.len()];
            (s, p)
        })
        .collect();
    let users: Vec<u32> = (0..8).collect();
    m.fit_neighbours(
        &histories,
        &users,
        ainrnn::model::neighbours::Similarity::COSINE,
    );
    assert!(
        m.scorer.neighbours().iter().any(|l| !l.is_empty()),
        "the term has neighbours"
    );
    m
}

/// Histories of different lengths (one longer than max_history), several targets each.
fn examples() -> Vec<Example> {
    vec![
        Example {
            user: 0,
            songs: vec![1, 4, 7],
            plays: vec![1.0, 5.0, 2.0],
            targets: vec![2, 9, 15],
            exclude: vec![1, 4, 7],
        },
        Example {
            user: 2,
            songs: vec![3, 5, 8, 13, 21, 22, 0, 11],
            plays: vec![2.0, 1.0, 1.0, 30.0, 1.0, 4.0, 1.0, 2.0],
            targets: vec![6],
            exclude: vec![],
        },
        Example {
            user: 4,
            songs: vec![19],
            plays: vec![7.0],
            targets: vec![14, 20],
            exclude: vec![19],
        },
    ]
}

fn total_loss<B: ModelOps>(b: &B, model: &mut Model<B>) -> f64 {
    let batch = upload(b, &model.cfg, Some(&portraits()), &examples()).unwrap();
    b.to_f32(&model.eval_loss(b, &batch).unwrap()).unwrap()[0] as f64
}

/// Every parameter tensor: a few entries checked against (L(θ+h) − L(θ−h)) / 2h.
fn gradients_match_finite_differences<B: ModelOps>(b: &B, kind: ModelKind) {
    fd_check(b, config(kind));
}

fn fd_check<B: ModelOps>(b: &B, cfg: ModelConfig) {
    let kind = cfg.kind;
    let feats = features();
    let mut model = new_model(b, cfg, &feats);
    // Per-song weights away from their initial 1, so that each history song's weight matters.
    if let Some(w) = model.scorer.song_weights {
        let mut r = rng(11);
        let v: Vec<f32> = (0..SONGS).map(|_| r.random_range(-0.5..0.5)).collect();
        model.params.set(b, w, &v).unwrap();
    }
    // γ away from its initial 1, so that every gradient it scales is checked with it.
    if let Some(g) = model.scorer.gamma {
        model.params.set(b, g, &[1.5]).unwrap();
    }
    // Pair weights likewise (the padding past a list's end too: it must stay unread).
    if let Some(w) = model.scorer.pair_weights {
        let mut r = rng(12);
        let v: Vec<f32> = (0..SONGS * model.cfg.neighbours)
            .map(|_| r.random_range(-0.5..0.5))
            .collect();
        model.params.set(b, w, &v).unwrap();
    }
    // Shortcut gates away from their initial 1, each unit its own, so that a gradient missing
    // the gate's factor shows.
    let gates: Vec<(usize, usize)> = (model.params.list.iter().enumerate())
        .filter(|(_, p)| p.name.starts_with("stack.gate"))
        .map(|(i, p)| (i, p.shape[0]))
        .collect();
    for (i, n) in gates {
        let mut r = rng(13 + i as u64);
        let v: Vec<f32> = (0..n).map(|_| r.random_range(0.3..1.5)).collect();
        model.params.set(b, PId(i), &v).unwrap();
    }
    let batch = upload(b, &model.cfg, Some(&portraits()), &examples()).unwrap();
    let (u, cache) = model.forward(b, &batch, None).unwrap();
    let nb = model
        .scorer
        .neighbour_blocks(b, &model.params, &batch.history)
        .unwrap();
    assert!(nb.applies(), "the batch has neighbour scores");
    let (_, du) = model
        .scorer
        .loss_backward(b, &mut model.params, &u, &batch.targets, &nb)
        .unwrap();
    model.backward(b, &batch, &cache, &du).unwrap();
    // A backend that fuses the table's step keeps a one-tile catalogue's gradient unformed
    // (song features or not): the checks below then read it formed from the kept product.
    assert_eq!(
        model.params.product_kept(model.scorer.emb),
        b.fused_table() && model.cfg.tile >= SONGS,
        "{kind:?}: the table's gradient kept unformed"
    );
    let grads: Vec<Option<Vec<f32>>> = (0..model.params.list.len())
        .map(|i| {
            let g = model.params.grad(b, PId(i)).unwrap();
            g.map(|g| b.to_f32(g).unwrap())
        })
        .collect();
    model.params.zero_grads(b).unwrap();
    let mut r = rng(7);
    let h = 2e-3f32;
    let l0 = total_loss(b, &mut model);
    let (mut checked, mut kinks) = (0, Vec::new());
    for (i, grad) in grads.iter().enumerate() {
        let name = model.params.list[i].name.clone();
        let values = b.to_f32(&model.params.list[i].value).unwrap();
        let Some(g) = grad else {
            panic!("{kind:?}: parameter {name} got no gradient");
        };
        let mut picks: Vec<usize> = (0..4.min(values.len()))
            .map(|_| r.random_range(0..values.len()))
            .collect();
        // The per-song weights: the history songs' (the others have no gradient).
        if name == "songs.neighbour_logw" {
            picks = examples()
                .iter()
                .flat_map(|e| e.songs.iter().map(|&s| s as usize))
                .collect();
        }
        // The pair weights: the first, a middle and the last pair of each history song's list
        // (the others, and the padding, have no gradient).
        if name == "songs.neighbour_pair_logw" {
            let keep = model.cfg.neighbours;
            picks = examples()
                .iter()
                .flat_map(|e| e.songs.iter().map(|&s| s as usize))
                .flat_map(|s| {
                    let n = model.scorer.neighbours()[s].len();
                    [0, n / 2, n.saturating_sub(1)]
                        .into_iter()
                        .filter(move |&k| k < n)
                        .map(move |k| s * keep + k)
                })
                .collect();
            picks.sort_unstable();
            picks.dedup();
            assert!(picks.len() > 10, "pair weights to check: {picks:?}");
        }
        for &j in &picks {
            let mut v = values.clone();
            v[j] = values[j] + h;
            b.write_f32(&mut model.params.list[i].value, &v).unwrap();
            let lp = total_loss(b, &mut model);
            v[j] = values[j] - h;
            b.write_f32(&mut model.params.list[i].value, &v).unwrap();
            let lm = total_loss(b, &mut model);
            b.write_f32(&mut model.params.list[i].value, &values)
                .unwrap();
            let (fwd, bwd) = ((lp - l0) / h as f64, (l0 - lm) / h as f64);
            let an = g[j] as f64;
            // A ReLU kink within ±h (a pre-activation that close to 0, which a 5-unit model
            // with zero biases meets now and then) makes the one-sided slopes disagree: the
            // central difference is then no derivative at all. Such entries are listed and
            // must be rare; the analytic value must still equal one of the two sides.
            if (fwd - bwd).abs() > 2e-3 + 0.1 * fwd.abs().max(bwd.abs()) {
                assert!(
                    [fwd, bwd]
                        .iter()
                        .any(|s| (s - an).abs() <= 5e-3 + 5e-2 * s.abs().max(an.abs())),
                    "{kind:?} {name}[{j}] at a kink: analytic {an:.6}, one-sided {fwd:.6} / {bwd:.6}"
                );
                kinks.push(format!("{name}[{j}]"));
                continue;
            }
            let fd = (lp - lm) / (2.0 * h as f64);
            // f32 forward passes: differences carry ~1e-5 noise.
            assert!(
                (fd - an).abs() <= 2e-3 + 2e-2 * fd.abs().max(an.abs()),
                "{kind:?} {name}[{j}]: analytic {an:.6}, finite difference {fd:.6} (one-sided {fwd:.6} / {bwd:.6})"
            );
            checked += 1;
        }
    }
    assert!(kinks.len() <= 3, "{kind:?}: too many kinks: {kinks:?}");
    assert!(checked > 40, "{kind:?}: only {checked} entries checked");
}

fn ainrnn_gradients<B: ModelOps>(b: &B) {
    gradients_match_finite_differences(b, ModelKind::Ainrnn)
}

fn indrnn_gradients<B: ModelOps>(b: &B) {
    gradients_match_finite_differences(b, ModelKind::Indrnn)
}

fn lstm_gradients<B: ModelOps>(b: &B) {
    gradients_match_finite_differences(b, ModelKind::Lstm)
}

// One tile over the whole catalogue and no song features: the scorer's fused path (one
// cross-entropy pass, the song table used in place, its gradient taken whole).
fn one_tile_gradients<B: ModelOps>(b: &B) {
    let mut cfg = config(ModelKind::Ainrnn);
    cfg.tile = SONGS;
    cfg.feature_dim = 0;
    fd_check(b, cfg)
}

/// One tile with song features and the table's step fused: the projection's gradient taken as
/// (g·F)ᵀ·u, the table's formed from the kept product when read, against finite differences.
fn fused_table_with_features() -> ModelConfig {
    let mut cfg = config(ModelKind::Ainrnn);
    cfg.tile = SONGS;
    cfg
}

#[test]
fn cpu_fused_table_gradients_with_features() {
    fd_check(
        &CpuBackend::new().with_fused_table(true),
        fused_table_with_features(),
    );
}

#[test]
fn gpu_fused_table_gradients_with_features() {
    if let Some(g) = common::gpu() {
        fd_check(&g.with_fused_table(true), fused_table_with_features());
    }
}

/// `kind` with its stacking and pooling set apart from the kind's own.
fn variant(kind: ModelKind, conn: Connection, pool: PoolingKind) -> ModelConfig {
    ModelConfig {
        connection: Some(conn),
        pooling: Some(pool),
        ..config(kind)
    }
}

/// The variants of the ablation and the residual baseline: each new path of the forward and
/// backward passes once (shortcuts, attention over the last layer only, attention without play
/// counts, mean and last pooling of the dense blocks, no portrait).
fn variants() -> Vec<(&'static str, ModelConfig)> {
    use Connection::*;
    use PoolingKind::*;
    vec![
        ("resindrnn", config(ModelKind::Resindrnn)),
        (
            "residual plays-attention",
            variant(ModelKind::Ainrnn, Residual, PlaysAttention),
        ),
        (
            "gated plays-attention",
            variant(ModelKind::Ainrnn, Gated, PlaysAttention),
        ),
        (
            "plain attention",
            variant(ModelKind::Indrnn, Plain, Attention),
        ),
        (
            "dense attention without plays",
            variant(ModelKind::Ainrnn, Dense, Attention),
        ),
        ("dense mean", variant(ModelKind::Ainrnn, Dense, Mean)),
        (
            "residual mean",
            variant(ModelKind::Resindrnn, Residual, Mean),
        ),
        ("dense last", variant(ModelKind::Ainrnn, Dense, Last)),
        (
            "ainrnn without per-song weights",
            ModelConfig {
                song_weights: false,
                ..config(ModelKind::Ainrnn)
            },
        ),
        (
            "ainrnn without pair weights",
            ModelConfig {
                pair_weights: false,
                ..config(ModelKind::Ainrnn)
            },
        ),
        (
            "ainrnn without portrait",
            ModelConfig {
                n_age: 0,
                n_lang: 0,
                n_genre: 0,
                ..config(ModelKind::Ainrnn)
            },
        ),
    ]
}

fn variant_gradients<B: ModelOps>(b: &B) {
    for (name, cfg) in variants() {
        eprintln!("{name}");
        fd_check(b, cfg);
    }
}

backend_tests! {
    ainrnn_gradients => ainrnn_gradients,
    indrnn_gradients => indrnn_gradients,
    lstm_gradients => lstm_gradients,
    one_tile_gradients => one_tile_gradients,
    variant_gradients => variant_gradients,
}

/// The variants are what they say: the residual stack adds its input to every layer past the
/// first (zeroing a layer's input map leaves its ReLU branch at 0, so the stream passes through
/// unchanged), attention without plays has no β, mean and last pooling have no attention, and
/// without the portrait the user vector does not depend on it.
#[test]
fn variants_are_built_as_named() {
    let c = CpuBackend::new();
    let feats = features();
    let names = |cfg: ModelConfig| -> Vec<String> {
        let m = new_model(&c, cfg, &feats);
        m.params.list.iter().map(|p| p.name.clone()).collect()
    };
    let has = |n: &[String], p: &str| n.iter().any(|x| x.starts_with(p));
    let plays = names(config(ModelKind::Ainrnn));
    assert!(has(&plays, "attention.beta") && has(&plays, "portrait.age"));
    let no_plays = names(variant(
        ModelKind::Ainrnn,
        Connection::Dense,
        PoolingKind::Attention,
    ));
    assert!(has(&no_plays, "attention.v") && !has(&no_plays, "attention.beta"));
    for pool in [PoolingKind::Mean, PoolingKind::Last] {
        let n = names(variant(ModelKind::Ainrnn, Connection::Dense, pool));
        assert!(!has(&n, "attention."), "{pool:?}: {n:?}");
    }
    let no_portrait = ModelConfig {
        n_age: 0,
        n_lang: 0,
        n_genre: 0,
        ..config(ModelKind::Ainrnn)
    };
    assert!(!has(&names(no_portrait.clone()), "portrait."));

    // User vectors of a model, with the portraits given.
    let users = |m: &Model<CpuBackend>, pt: &PortraitTable| -> Vec<f32> {
        let batch = upload(&c, &m.cfg, Some(pt), &examples()).unwrap();
        c.to_f32(&m.forward(&c, &batch, None).unwrap().0).unwrap()
    };
    let mut other = portraits();
    other.age = vec![2, 0, 1, 2, 1];
    other.song_lang.iter_mut().for_each(|l| *l = 1 - *l);
    let with = new_model(&c, config(ModelKind::Ainrnn), &feats);
    assert_ne!(users(&with, &portraits()), users(&with, &other));
    let without = new_model(&c, no_portrait, &feats);
    assert_eq!(users(&without, &portraits()), users(&without, &other));

    // Residual: with layers 1.. of the stack silenced (input maps and biases zero, so each
    // branch is ReLU(0 + u·0) = 0), the user vector equals that of a 1-layer residual stack
    // with the same first layer and user map; a plain stack would give 0 to the user map.
    let mut deep = new_model(&c, config(ModelKind::Resindrnn), &feats);
    for p in deep.params.list.iter_mut() {
        if p.name.starts_with("indrnn1.in") || p.name.starts_with("indrnn2.in") {
            let z = vec![0.0; p.value.len()];
            c.write_f32(&mut p.value, &z).unwrap();
        }
    }
    let mut plain = new_model(
        &c,
        ModelConfig {
            connection: Some(Connection::Plain),
            ..config(ModelKind::Resindrnn)
        },
        &feats,
    );
    for (p, q) in plain.params.list.iter_mut().zip(&deep.params.list) {
        assert_eq!(p.name, q.name);
        let v = c.to_f32(&q.value).unwrap();
        c.write_f32(&mut p.value, &v).unwrap();
    }
    let mut shallow_cfg = config(ModelKind::Resindrnn);
    shallow_cfg.layers = 1;
    let mut shallow = new_model(&c, shallow_cfg, &feats);
    for p in shallow.params.list.iter_mut() {
        let q = deep
            .params
            .list
            .iter()
            .find(|q| q.name == p.name)
            .expect("the shallow stack's parameters are the deep one's");
        let v = c.to_f32(&q.value).unwrap();
        c.write_f32(&mut p.value, &v).unwrap();
    }
    let pt = portraits();
    assert_eq!(users(&deep, &pt), users(&shallow, &pt));
    assert_ne!(users(&plain, &pt), users(&deep, &pt));
}

/// The GPU model computes what the CPU model computes: user vectors, loss, every gradient, and
/// the parameters after a few optimizer steps with dropout.
#[test]
fn gpu_matches_cpu_forward_backward_and_steps() {
    let Some(g) = common::gpu() else { return };
    let c = CpuBackend::new();
    let feats = features();
    let kinds =
        [ModelKind::Ainrnn, ModelKind::Indrnn, ModelKind::Lstm].map(|k| (k.name(), config(k)));
    for (kind, mut cfg) in kinds.into_iter().chain(variants()) {
        cfg.dropout = 0.5;
        let mut mc = new_model(&c, cfg.clone(), &feats);
        let mut mg = new_model(&g, cfg.clone(), &feats);
        let bc = upload(&c, &cfg, Some(&portraits()), &examples()).unwrap();
        let bg = upload(&g, &cfg, Some(&portraits()), &examples()).unwrap();
        // The mean of the centred log plays over a history is 0, so with dense mean pooling
        // the user map's weight on that block gets a gradient of rounding noise only, which
        // Adam turns into full steps of either sign: that one weight is left out.
        let logc_block = format!("user.w{}", 1 + (cfg.feature_dim > 0) as usize);
        let noise_only = |name: &str| {
            cfg.connection() == Connection::Dense
                && cfg.pooling() == PoolingKind::Mean
                && name == logc_block
        };
        let optim = ainrnn::model::params::OptimConfig::default();
        let (bc, bg) = ([&bc; 3], [&bg; 3]);
        steps_agree(
            kind,
            (&c, &mut mc, &bc),
            (&g, &mut mg, &bg),
            &optim,
            noise_only,
        );
    }
}

/// A CPU model and a GPU model built alike compute the same: the user vectors of the first
/// batch within 1e-4 relative, then one training step with dropout per batch (the same
/// dropout draws), each loss within 1e-4, and every parameter after them within 1e-3 (but
/// those `skip` names).
fn steps_agree(
    what: &str,
    (c, mc, bc): (
        &CpuBackend,
        &mut Model<CpuBackend>,
        &[&DeviceBatch<CpuBackend>],
    ),
    (g, mg, bg): (
        &GpuBackend,
        &mut Model<GpuBackend>,
        &[&DeviceBatch<GpuBackend>],
    ),
    optim: &ainrnn::model::params::OptimConfig,
    skip: impl Fn(&str) -> bool,
) {
    let (uc, _) = mc.forward(c, bc[0], None).unwrap();
    let (ug, _) = mg.forward(g, bg[0], None).unwrap();
    assert_close(
        &format!("{what} user vectors"),
        &g.to_f32(&ug).unwrap(),
        &to_f64(&c.to_f32(&uc).unwrap()),
        Tol {
            rel: 1e-4,
            abs: 1e-5,
        },
    );
    let mut rc = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
    let mut rg = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
    for (step, (bc, bg)) in bc.iter().zip(bg).enumerate() {
        let lc = c
            .to_f32(&mc.train_step(c, bc, &mut rc, optim).unwrap())
            .unwrap()[0];
        let lg = g
            .to_f32(&mg.train_step(g, bg, &mut rg, optim).unwrap())
            .unwrap()[0];
        assert!(
            (lc - lg).abs() <= 1e-4 * lc.abs().max(1.0),
            "{what} step {step}: loss cpu {lc} gpu {lg}"
        );
    }
    for (pc, pg) in mc.params.list.iter().zip(&mg.params.list) {
        if skip(&pc.name) {
            continue;
        }
        assert_close(
            &format!("{what} {} after {} steps", pc.name, bc.len()),
            &g.to_f32(&pg.value).unwrap(),
            &to_f64(&c.to_f32(&pc.value).unwrap()),
            Tol {
                rel: 1e-3,
                abs: 1e-5,
            },
        );
    }
}

/// A song table's fused optimizer step (its catalogue gradient kept as gᵀ·u plus the history's
/// rows, formed in the AdamW pass) moves every parameter as the step with the gradient formed
/// whole: three steps with dropout, each model kind, with the clipping idle and with it
/// active (its norm then comes from g·gᵀ and u·uᵀ). One tile and no song features: the
/// scorer's path that keeps the product.
fn fused_table_matches_formed<B: ModelOps>(fused: &B, formed: &B, exact: bool) {
    assert!(fused.fused_table() && !formed.fused_table());
    let feats = features();
    for (kind, feature_dim) in [
        (ModelKind::Ainrnn, 0),
        (ModelKind::Indrnn, 0),
        (ModelKind::Lstm, 0),
        // With song features the projection's gradient is (g·F)ᵀ·u when the table's is kept
        // unformed, Fᵀ·(gᵀ·u) when formed: the same up to rounding.
        (ModelKind::Ainrnn, FEAT),
        (ModelKind::Lstm, FEAT),
    ] {
        for clip_norm in [1e6f32, 0.05] {
            let mut cfg = config(kind);
            cfg.tile = SONGS;
            cfg.feature_dim = feature_dim;
            cfg.dropout = 0.5;
            let optim = ainrnn::model::params::OptimConfig {
                clip_norm,
                ..Default::default()
            };
            let run = |b: &B| {
                let mut m = new_model(b, cfg.clone(), &feats);
                let batch = upload(b, &cfg, Some(&portraits()), &examples()).unwrap();
                let mut r = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
                let mut losses = Vec::new();
                for _ in 0..3 {
                    let l = m.train_step(b, &batch, &mut r, &optim).unwrap();
                    losses.push(b.to_f32(&l).unwrap()[0]);
                }
                (m, losses)
            };
            let (mf, lf) = run(fused);
            let (mw, lw) = run(formed);
            let what = format!("{kind:?}, {feature_dim} features, clip norm {clip_norm}");
            assert!(
                lf.iter()
                    .zip(&lw)
                    .all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs()),
                "{what}: losses {lf:?} fused, {lw:?} formed"
            );
            let table = &mf.params.list[0];
            assert!(table.table, "{what}: the song table is marked");
            // Values and both moments: Adam's step hardly depends on the gradient's scale,
            // the first moment is proportional to it (a wrong clipping norm shows there).
            for (pf, pw) in mf.params.list.iter().zip(&mw.params.list) {
                for (part, tf, tw) in [
                    ("values", &pf.value, &pw.value),
                    ("first moments", &pf.m, &pw.m),
                    ("second moments", &pf.v, &pw.v),
                ] {
                    let (vf, vw) = (fused.to_f32(tf).unwrap(), formed.to_f32(tw).unwrap());
                    let what = format!("{what}: {} {part} after 3 steps", pf.name);
                    // With the clipping idle the GPU's fused step sums every gradient element
                    // in the products' order: the same bits.
                    if exact && clip_norm > 1.0 && feature_dim == 0 {
                        assert!(vf == vw, "{what} differ");
                        continue;
                    }
                    let tol = Tol {
                        rel: 1e-4,
                        abs: 1e-7,
                    };
                    assert_close(&what, &vf, &to_f64(&vw), tol);
                }
            }
        }
    }
}

#[test]
fn cpu_fused_table_step_matches_the_formed_one() {
    let c = CpuBackend::new();
    fused_table_matches_formed(&c.with_fused_table(true), &c, false);
}

#[test]
fn gpu_fused_table_step_matches_the_formed_one() {
    let Some(g) = common::gpu() else { return };
    fused_table_matches_formed(&g.with_fused_table(true), &g.with_fused_table(false), true);
}

/// Training gives the same bits whatever runtime checks naga compiled into the kernels: a kernel
/// that read past a workgroup array (which a clamp would hide) would differ between `none` and
/// `all`. Every model kind, three steps with dropout, over several catalogue tiles with song
/// features and the neighbour term, and with the song table's step fused.
#[test]
fn gpu_training_is_the_same_to_the_bit_under_every_shader_check_setting() {
    let Some(gs) = common::gpu_per_shader_checks() else {
        return;
    };
    let feats = features();
    for kind in [ModelKind::Ainrnn, ModelKind::Indrnn, ModelKind::Lstm] {
        for fused in [false, true] {
            let mut cfg = config(kind);
            cfg.dropout = 0.5;
            if fused {
                // The fused step takes a catalogue of one tile without song features.
                (cfg.tile, cfg.feature_dim) = (SONGS, 0);
            }
            let run = |g: &ainrnn::backend::gpu::GpuBackend| -> Vec<Vec<f32>> {
                let g = g.with_fused_table(fused);
                let mut m = new_model(&g, cfg.clone(), &feats);
                let batch = upload(&g, &cfg, Some(&portraits()), &examples()).unwrap();
                let mut r = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
                let mut out = Vec::new();
                for _ in 0..3 {
                    let l = m
                        .train_step(&g, &batch, &mut r, &Default::default())
                        .unwrap();
                    out.push(g.to_f32(&l).unwrap());
                }
                for p in &m.params.list {
                    for t in [&p.value, &p.m, &p.v] {
                        out.push(g.to_f32(t).unwrap());
                    }
                }
                out
            };
            let what = format!("{kind:?} training (table fused: {fused})");
            common::same_under_every_shader_check(&gs, &what, run);
        }
    }
}

/// Save on one backend, load on the other (and back): same parameters, moments and outputs.
#[test]
fn checkpoints_move_between_backends() {
    let c = CpuBackend::new();
    let feats = features();
    let cfg = config(ModelKind::Ainrnn);
    let mut m = new_model(&c, cfg.clone(), &feats);
    let batch = upload(&c, &cfg, Some(&portraits()), &examples()).unwrap();
    let mut r = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    m.train_step(&c, &batch, &mut r, &Default::default())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The stacking and pooling travel with the checkpoint.
    let vcfg = variant(ModelKind::Indrnn, Connection::Residual, PoolingKind::Mean);
    let vm = new_model(&c, vcfg.clone(), &feats);
    let vpath = dir.path().join("v.ckpt");
    ainrnn::model::checkpoint::save(&c, &vm, &[], &vpath).unwrap();
    let vck = ainrnn::model::checkpoint::Checkpoint::load(&vpath).unwrap();
    assert_eq!(
        (vck.config.connection(), vck.config.pooling()),
        (Connection::Residual, PoolingKind::Mean)
    );
    let vback = vck.restore(&c, Some(&feats)).unwrap();
    assert_eq!(vback.params.list.len(), vm.params.list.len());
    // A config written before the fields existed reads as the kind's own.
    let mut old: serde_json::Value = serde_json::to_value(&cfg).unwrap();
    let o = old.as_object_mut().unwrap();
    assert!(o.remove("connection").is_some() && o.remove("pooling").is_some());
    let old: ModelConfig = serde_json::from_value(old).unwrap();
    assert_eq!(old, cfg);
    assert_eq!(
        (old.connection(), old.pooling()),
        (Connection::Dense, PoolingKind::PlaysAttention)
    );
    let path = dir.path().join("m.ckpt");
    ainrnn::model::checkpoint::save(&c, &m, &[("note", &"test")], &path).unwrap();
    let ck = ainrnn::model::checkpoint::Checkpoint::load(&path).unwrap();
    assert_eq!(ck.config, cfg);
    assert_eq!(ck.get::<String>("note").unwrap().unwrap(), "test");
    let back = ck.restore(&c, Some(&feats)).unwrap();
    assert_eq!(back.params.step, 1);
    assert_eq!(
        back.scorer.neighbours(),
        m.scorer.neighbours(),
        "the neighbourhood lists travel with the checkpoint"
    );
    for (a, b2) in m.params.list.iter().zip(&back.params.list) {
        assert_eq!(
            c.to_f32(&a.value).unwrap(),
            c.to_f32(&b2.value).unwrap(),
            "{}",
            a.name
        );
        assert_eq!(
            c.to_f32(&a.v).unwrap(),
            c.to_f32(&b2.v).unwrap(),
            "{} second moment",
            a.name
        );
    }
    if let Some(g) = common::gpu() {
        let mg = ck.restore(&g, Some(&feats)).unwrap();
        let p2 = dir.path().join("g.ckpt");
        ainrnn::model::checkpoint::save(&g, &mg, &[], &p2).unwrap();
        let again = ainrnn::model::checkpoint::Checkpoint::load(&p2)
            .unwrap()
            .restore(&c, Some(&feats))
            .unwrap();
        for (a, b2) in m.params.list.iter().zip(&again.params.list) {
            assert_eq!(
                c.to_f32(&a.value).unwrap(),
                c.to_f32(&b2.value).unwrap(),
                "{} via the GPU",
                a.name
            );
        }
    }
    // A corrupt file is a clear error, not a panic.
    std::fs::write(&path, b"not a checkpoint").unwrap();
    let e = ainrnn::model::checkpoint::Checkpoint::load(&path)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("m.ckpt") && e.contains("a text file, not a checkpoint"),
        "{e}"
    );
    std::fs::write(&path, [0u8, 1, 2, 255, 254]).unwrap();
    let e = ainrnn::model::checkpoint::Checkpoint::load(&path)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("m.ckpt: not a safetensors checkpoint"), "{e}");
}

/// The portrait part of the input (language, genre distribution) comes from the visible
/// history alone: the held-out songs (targets) never reach it.
#[test]
fn portrait_comes_from_the_visible_history_only() {
    let c = CpuBackend::new();
    let cfg = config(ModelKind::Ainrnn);
    let pt = portraits();
    // Visible: songs 0 (genre 0, language 1) played 3 times and 5 (genre 1, language 0) once;
    // song 4 has no genre. Targets: songs of genres 2 and 3 only.
    let e = Example {
        user: 1,
        songs: vec![0, 5, 4],
        plays: vec![3.0, 1.0, 9.0],
        targets: vec![2, 3, 7],
        exclude: vec![0, 5, 4],
    };
    let batch = upload(&c, &cfg, Some(&pt), std::slice::from_ref(&e)).unwrap();
    assert_eq!(c.to_f32(&batch.genre).unwrap(), vec![0.75, 0.25, 0.0, 0.0]);
    let mut other = e.clone();
    other.targets = vec![1, 6, 10, 11];
    let again = upload(&c, &cfg, Some(&pt), &[other]).unwrap();
    assert_eq!(
        c.to_f32(&again.genre).unwrap(),
        c.to_f32(&batch.genre).unwrap()
    );
    assert_eq!(pt.of_history(&e.songs, &e.plays).0, 1, "language of song 0");
    assert_eq!(pt.of_history(&[], &[]), (0, vec![0.0; 4]), "nothing known");
}

/// Ranking excludes the given songs and returns the best scores first.
#[test]
fn recommend_excludes_and_orders() {
    let c = CpuBackend::new();
    let feats = features();
    let cfg = config(ModelKind::Indrnn);
    let m = new_model(&c, cfg.clone(), &feats);
    let batch = upload(&c, &cfg, Some(&portraits()), &examples()).unwrap();
    let ranked = m.recommend(&c, &batch, 10).unwrap();
    assert_eq!(ranked.len(), 3);
    for (r, e) in ranked.iter().zip(examples()) {
        assert_eq!(r.len(), 10);
        assert!(r.windows(2).all(|w| w[0].1 >= w[1].1), "scores descending");
        assert!(
            r.iter().all(|(s, _)| !e.exclude.contains(s)),
            "excluded songs never recommended"
        );
    }
    // Read-backs that are not the pending tensors' (too short, or none) are refused, not
    // indexed past.
    let models = std::slice::from_ref(&m);
    let pending = ainrnn::model::recommend_sum_pending(&c, models, &batch, 10).unwrap();
    let mut host = c.to_host(&pending.tensors()).unwrap();
    match &mut host[0] {
        ainrnn::backend::HostTensor::F32(v) => v.truncate(v.len() - 1),
        other => panic!("scores read back as {other:?}"),
    }
    let e = pending
        .finish(&mut host.into_iter())
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected 3 rows"), "{e}");
    let pending = ainrnn::model::recommend_sum_pending(&c, models, &batch, 10).unwrap();
    let e = pending
        .finish(&mut std::iter::empty())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not read back"), "{e}");
    if let Some(g) = common::gpu() {
        let mg = new_model(&g, cfg.clone(), &feats);
        let bg = upload(&g, &cfg, Some(&portraits()), &examples()).unwrap();
        let rg = mg.recommend(&g, &bg, 10).unwrap();
        for (a, b2) in ranked.iter().zip(&rg) {
            let ids_a: Vec<u32> = a.iter().map(|x| x.0).collect();
            let ids_b: Vec<u32> = b2.iter().map(|x| x.0).collect();
            assert_eq!(ids_a, ids_b, "same top-10 on CPU and GPU");
        }
    }
}

/// An ensemble ranks by the sum of its members' scores: the device-side sum per catalogue tile
/// (`recommend_sum`) gives the lists that the members' full score vectors, summed on the host,
/// give; on the GPU the same lists as on the CPU.
fn ensemble_ranking<B: ModelOps>(b: &B) -> Vec<Vec<u32>> {
    let feats = features();
    let members: Vec<Model<B>> = [3u64, 4, 5]
        .iter()
        .map(|&seed| {
            let mut cfg = config(ModelKind::Ainrnn);
            cfg.seed = seed;
            new_model(b, cfg, &feats)
        })
        .collect();
    let cfg = members[0].cfg.clone();
    let exs = examples();
    let batch = upload(b, &cfg, Some(&portraits()), &exs).unwrap();
    let ranked = ainrnn::model::recommend_sum(b, &members, &batch, 10).unwrap();
    let single = members[0].recommend(b, &batch, 10).unwrap();
    assert_ne!(
        ranked, single,
        "three members rank otherwise than the first alone"
    );
    for (r, e) in ranked.iter().zip(&exs) {
        let one = upload(b, &cfg, Some(&portraits()), std::slice::from_ref(e)).unwrap();
        let mut sum = [0.0f32; SONGS];
        for m in &members {
            let (u, _) = m.forward(b, &one, None).unwrap();
            let nb = m
                .scorer
                .neighbour_blocks(b, &m.params, &one.history)
                .unwrap();
            for (acc, x) in sum
                .iter_mut()
                .zip(&m.scorer.scores(b, &m.params, &u, &nb).unwrap()[0])
            {
                *acc += x;
            }
        }
        let mut order: Vec<u32> = (0..SONGS as u32)
            .filter(|s| !e.exclude.contains(s))
            .collect();
        order.sort_by(|&x, &y| sum[y as usize].total_cmp(&sum[x as usize]).then(x.cmp(&y)));
        let ids: Vec<u32> = r.iter().map(|x| x.0).collect();
        assert_eq!(ids, order[..10], "{}: summed scores' top 10", b.describe());
        for (s, v) in r {
            assert!(
                (v - sum[*s as usize]).abs() <= 1e-5 * (1.0 + v.abs()),
                "{}: song {s} scores {v} ranked, {} summed",
                b.describe(),
                sum[*s as usize]
            );
        }
    }
    ranked
        .iter()
        .map(|r| r.iter().map(|x| x.0).collect())
        .collect()
}

#[test]
fn ensemble_ranks_by_summed_scores() {
    let cpu = ensemble_ranking(&CpuBackend::new());
    if let Some(g) = common::gpu() {
        assert_eq!(ensemble_ranking(&g), cpu, "same top-10 on CPU and GPU");
    }
}

/// After warm-up, training steps create no GPU buffer and read nothing back: the pool serves
/// every temporary (batches of different sizes included) and each step ends with a submit, not a
/// wait. Counted on a device of its own.
#[test]
fn gpu_training_steps_allocate_nothing_after_warm_up() {
    let Some(g) = common::fresh_gpu() else { return };
    let feats = features();
    let mut r = rng(21);
    // Four different batches: history lengths, target counts and distinct songs all vary.
    let batches: Vec<Vec<Example>> = (0..4)
        .map(|i| {
            (0..3 + i)
                .map(|u| {
                    let n = r.random_range(1..9);
                    let songs: Vec<u32> = (0..n).map(|_| r.random_range(0..SONGS as u32)).collect();
                    Example {
                        user: (u % 5) as u32,
                        plays: songs.iter().map(|_| r.random_range(1.0..9.0)).collect(),
                        targets: (0..r.random_range(1..5))
                            .map(|_| r.random_range(0..SONGS as u32))
                            .collect(),
                        exclude: Vec::new(),
                        songs,
                    }
                })
                .collect()
        })
        .collect();
    let optim = ainrnn::model::params::OptimConfig::default();
    let kinds =
        [ModelKind::Ainrnn, ModelKind::Indrnn, ModelKind::Lstm].map(|k| (k.name(), config(k)));
    // The song table's fused step (one tile), with song features and without.
    let one_tile = |kind, feature_dim| ModelConfig {
        tile: SONGS,
        feature_dim,
        ..config(kind)
    };
    let fused = [
        (
            "ainrnn, table fused, features",
            one_tile(ModelKind::Ainrnn, FEAT),
        ),
        ("lstm, table fused", one_tile(ModelKind::Lstm, 0)),
    ];
    let runs = (kinds
        .into_iter()
        .chain(variants())
        .map(|(k, c)| (k, c, false)))
    .chain(fused.map(|(k, c)| (k, c, true)));
    for (kind, mut cfg, fused) in runs {
        let g = g.with_fused_table(fused);
        cfg.dropout = 0.5;
        let mut m = new_model(&g, cfg.clone(), &feats);
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let mut step = |m: &mut Model<_>, i: usize| {
            let b = upload(&g, &cfg, Some(&portraits()), &batches[i % batches.len()]).unwrap();
            m.train_step(&g, &b, &mut rng, &optim).unwrap();
        };
        for i in 0..8 {
            step(&mut m, i);
        }
        g.sync().unwrap();
        let before = g.context().stats();
        for i in 0..8 {
            step(&mut m, i);
        }
        g.sync().unwrap();
        let after = g.context().stats();
        assert_eq!(
            after.buffers_created,
            before.buffers_created,
            "{kind:?}: {} buffers created in 8 steps after warm-up",
            after.buffers_created - before.buffers_created
        );
        assert_eq!(
            after.readbacks, before.readbacks,
            "{kind:?}: read-backs during training steps"
        );
        assert_eq!(
            after.submits - before.submits,
            8,
            "{kind:?}: one submit per step"
        );
        // The steps did real work: the loss is finite after them.
        let b = upload(&g, &cfg, Some(&portraits()), &batches[0]).unwrap();
        let loss = g.to_f32(&m.eval_loss(&g, &b).unwrap()).unwrap()[0];
        assert!(loss.is_finite(), "{kind:?}: loss {loss}");
        if fused {
            // The fused path was taken: the table's gradient is kept unformed in a step.
            let b = upload(&g, &cfg, Some(&portraits()), &batches[1]).unwrap();
            let (u, _) = m.forward(&g, &b, None).unwrap();
            let nb = m
                .scorer
                .neighbour_blocks(&g, &m.params, &b.history)
                .unwrap();
            m.scorer
                .loss_backward(&g, &mut m.params, &u, &b.targets, &nb)
                .unwrap();
            assert!(m.params.product_kept(m.scorer.emb), "{kind:?}");
        }
    }
}

/// The GPU model computes what the CPU model computes on real users at the trainer's sizes:
/// AINRNN as `train` builds it for HetRec's fold 0 (the 6,000 artists `prepare` keeps, so the
/// catalogue's product `g·q` runs over a long K, split on both backends; 5 layers, hidden 32,
/// song table 128, portraits;
/// the neighbourhood term over each song's 200 cosine neighbours among the fold's training
/// users, with per-song and pair weights), on batches of 32 real training users split as an
/// epoch splits them: the user vectors, the loss of three steps with dropout, and every
/// parameter after them. (`gpu_matches_cpu_forward_backward_and_steps` covers every model
/// kind and variant on a hand-made batch over 23 songs.)
#[test]
fn gpu_matches_cpu_on_real_users_at_the_trainers_sizes() {
    use ainrnn::data::prepare::{prepare, Input, PrepareOptions};
    use ainrnn::data::Dataset;
    use ainrnn::model::neighbours::Similarity;
    use ainrnn::train::corpus::fold_data;
    use ainrnn::train::run::TrainOptions;
    use ainrnn::train::{split_example, Corpus};
    use rand::seq::SliceRandom;

    let Some(g) = common::gpu() else { return };
    let c = CpuBackend::new();
    // As `ainrnn prepare --hetrec data/hetrec/user_artists.dat --folds 5` prepares it, through
    // the library: the bundle runs this suite where there is no `ainrnn` command to call (from
    // the project root, where `data/` is).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hetrec.h5");
    let input = Input::Hetrec {
        user_artists: "data/hetrec/user_artists.dat".into(),
        artists: None,
    };
    let mut p = PrepareOptions::new(input, data.clone());
    p.folds = 5;
    prepare(&p, &mut |_| {}).unwrap();
    let ds = Dataset::load(&data).unwrap();
    let opts = TrainOptions::new(data.clone(), ModelKind::Ainrnn, dir.path().join("m.ckpt"));
    let (corpus, _) = Corpus::from_dataset(&ds, opts.features).unwrap();
    let fold = fold_data(&ds, &corpus, 0, opts.seed, opts.max_validation).unwrap();
    assert_eq!(corpus.songs, 6_000);

    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    let mut users = fold.train_users.clone();
    users.shuffle(&mut rng);
    let batches: Vec<Vec<Example>> = users[..3 * opts.batch]
        .chunks(opts.batch)
        .map(|chunk| {
            chunk
                .iter()
                .filter_map(|&u| {
                    let (s, p) = &corpus.histories[u as usize];
                    split_example(u, s, p, ds.visible_share, &mut rng)
                })
                .collect()
        })
        .collect();
    assert!(batches.iter().all(|b| b.len() > opts.batch / 2));

    let (cc, cg) = (
        opts.model_config_for(&c, &corpus),
        opts.model_config_for(&g, &corpus),
    );
    // The same model on both: one tile each here, the term on, its weights learned.
    assert_eq!(cc, cg);
    let cfg = cc;
    assert_eq!(cfg.tile, corpus.songs);
    assert!(cfg.neighbours == 200 && cfg.song_weights && cfg.pair_weights && cfg.n_age > 0);
    let mut mc = Model::new(&c, cfg.clone(), None).unwrap();
    let mut mg = Model::new(&g, cfg.clone(), None).unwrap();
    mc.fit_neighbours(&corpus.histories, &fold.train_users, Similarity::COSINE);
    mg.fit_neighbours(&corpus.histories, &fold.train_users, Similarity::COSINE);
    let pt = corpus.portraits.as_ref();
    let bc: Vec<_> = batches
        .iter()
        .map(|e| upload(&c, &cfg, pt, e).unwrap())
        .collect();
    let bg: Vec<_> = batches
        .iter()
        .map(|e| upload(&g, &cfg, pt, e).unwrap())
        .collect();

    let optim = ainrnn::model::params::OptimConfig {
        lr: opts.lr,
        weight_decay: opts.weight_decay,
        ..Default::default()
    };
    let (bc, bg): (Vec<_>, Vec<_>) = (bc.iter().collect(), bg.iter().collect());
    steps_agree(
        "HetRec",
        (&c, &mut mc, &bc),
        (&g, &mut mg, &bg),
        &optim,
        |_| false,
    );
}

/// A library caller's batch is checked before upload, with the example and the reason named:
/// plays of another length than the history (a panic on a truncated history, dropped songs
/// otherwise), play counts that are not finite (NaN inputs), targets outside the catalogue (a
/// loss of 0 for that user).
fn bad_batches<B: ModelOps>(b: &B) {
    let cfg = config(ModelKind::Ainrnn);
    let ok = examples();
    assert!(upload(b, &cfg, Some(&portraits()), &ok).is_ok());
    // (what, how the second example is spoiled, what the error says)
    type Case = (&'static str, fn(&mut Example), &'static str);
    let cases: [Case; 5] = [
        (
            "fewer plays",
            |e| e.plays.truncate(1),
            "1 play counts for 8",
        ),
        ("more plays", |e| e.plays.push(1.0), "9 play counts for 8"),
        (
            "infinite plays",
            |e| e.plays[7] = f32::INFINITY,
            "inf is not finite",
        ),
        ("NaN plays", |e| e.plays[0] = f32::NAN, "NaN is not finite"),
        (
            "a target past the catalogue",
            |e| e.targets.push(SONGS as u32),
            "target song 23",
        ),
    ];
    for (what, spoil, want) in cases {
        let mut ex = ok.clone();
        spoil(&mut ex[1]);
        let e = upload(b, &cfg, Some(&portraits()), &ex)
            .err()
            .unwrap_or_else(|| panic!("{what} must be refused"))
            .to_string();
        assert!(
            e.contains("batch") && e.contains("example 1 (user 2)"),
            "{what}: {e}"
        );
        assert!(e.contains(want), "{what}: {e}");
    }
}

#[test]
fn cpu_bad_batches() {
    bad_batches(&CpuBackend::new());
}

#[test]
fn gpu_bad_batches() {
    if let Some(g) = common::gpu() {
        bad_batches(&g);
    }
}

/// Song features that are not finite are refused (they made every score NaN); a parameter the
/// backend cannot hold is refused before its initial values are made on the host (a hidden
/// size of 2^40 aborted the process on the GPU).
fn bad_models<B: ModelOps>(b: &B) {
    let cfg = config(ModelKind::Ainrnn);
    let mut feats = features();
    feats[FEAT + 1] = f32::NAN;
    let e = Model::new(b, cfg.clone(), Some(&feats))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model features") && e.contains("song 1 (feature 1)"),
        "{e}"
    );
    // A model that takes features, given none, is refused (it was built without the input).
    let e = Model::new(b, cfg.clone(), None).err().unwrap().to_string();
    assert!(e.contains(&format!("takes {FEAT} song features")), "{e}");
    let mut huge = cfg.clone();
    huge.hidden = 1 << 40;
    let e = Model::new(b, huge, Some(&features()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("bytes") || e.contains("memory"), "{e}");
    // Where the backend knows what memory is left (Linux's host memory, a GPU driver's
    // heaps), a model larger than it is refused up front, with the figures, on either backend.
    let Some(avail) = b.available_memory() else {
        eprintln!(
            "!!! {}: no memory figure here, the up-front refusal is not checked",
            b.describe()
        );
        return;
    };
    let mut big = cfg;
    big.songs = 1 << 20;
    big.emb = usize::try_from(avail / (16 << 20)).unwrap() + 1;
    assert!(big.approx_bytes(1) > avail as f64);
    let e = Model::new(b, big, None).err().unwrap().to_string();
    let what = match b.kind() {
        BackendKind::Cpu => "GB of memory (",
        BackendKind::Gpu => "GB of GPU memory (",
    };
    assert!(
        e.contains(what) && e.contains("choose smaller sizes"),
        "{e}"
    );
}

#[test]
fn cpu_bad_models() {
    bad_models(&CpuBackend::new());
}

#[test]
fn gpu_bad_models() {
    if let Some(g) = common::gpu() {
        bad_models(&g);
    }
}
