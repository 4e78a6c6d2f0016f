//! `ainrnn demo`: the whole pipeline on the bundled real data, in a few minutes on a 2-core
//! machine: audio features of the bundled tracks, the Taste-Profile and HetRec dataset files,
//! then `compare` (AINRNN, its baselines and the classic ones) with report and figures. A last,
//! **synthetic** step runs the paper's Fig. 6 end to end: `synth --audio` (generated clips whose
//! sound follows the songs' latent clusters), features, `prepare --features`, and AINRNN per
//! feature set (MFCC, scattering, all) on fold 0; no bundled listened song has audio.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::audio::job::{self, JobOptions};
use crate::audio::scattering::Stage;
use crate::audio::store;
use crate::audio::store::segments_dir;
use crate::backend::gpu::GpuStats;
use crate::backend::select::Selected;
use crate::data::prepare::{prepare, Input, PrepareOptions};
use crate::data::synth::SynthOptions;
use crate::data::synth_audio::{synth_with_audio, AudioOptions};
use crate::error::{Error, IoError};
use crate::eval::compare::{compare, summary_table, CompareOptions, CompareReport, Method};
use crate::model::ModelKind;
use crate::train::corpus::FeatureSet;
use crate::train::run::TrainOptions;
use crate::with_backend;

pub struct DemoOptions {
    /// The bundled data folder (`data/`).
    pub data: PathBuf,
    /// Where everything is written (`out/demo`).
    pub out: PathBuf,
    /// Smoke-test sizes: one fold, two epochs.
    pub quick: bool,
}

#[derive(Debug, Serialize)]
pub struct DemoSummary {
    pub backend: String,
    pub features: PathBuf,
    pub datasets: Vec<PathBuf>,
    pub reports: Vec<PathBuf>,
    /// AINRNN's (fold 0) top 10 for fold 0's test users of each real dataset, tab-separated.
    pub recommendations: Vec<PathBuf>,
    pub seconds: f64,
    /// Each step's wall time, with what the GPU did in it: where a backend spends the demo.
    pub stages: Vec<DemoStage>,
    #[serde(skip)]
    pub comparisons: Vec<CompareReport>,
}

/// One step of the demo: its wall time and, on a GPU, the context's counters over it
/// (dispatches, submits, read-backs, buffers created, bytes uploaded, pipelines compiled).
#[derive(Debug, Serialize)]
pub struct DemoStage {
    pub name: &'static str,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuStats>,
}

/// Times the demo's steps one after another.
struct Stages<'a> {
    sel: &'a Selected,
    start: Instant,
    gpu: Option<GpuStats>,
    done: Vec<DemoStage>,
}

impl<'a> Stages<'a> {
    fn new(sel: &'a Selected) -> Self {
        Stages {
            sel,
            start: Instant::now(),
            gpu: Self::gpu_stats(sel),
            done: Vec::new(),
        }
    }

    fn gpu_stats(sel: &Selected) -> Option<GpuStats> {
        match sel {
            Selected::Gpu(g) => Some(g.context().stats()),
            Selected::Cpu(_) => None,
        }
    }

    /// Closes the step that ran since the last call (or since `new`).
    fn end(&mut self, name: &'static str) {
        let now = Self::gpu_stats(self.sel);
        let gpu = match (&now, &self.gpu) {
            (Some(z), Some(a)) => Some(z.since(a)),
            _ => None,
        };
        self.done.push(DemoStage {
            name,
            seconds: self.start.elapsed().as_secs_f64(),
            gpu,
        });
        self.start = Instant::now();
        self.gpu = now;
    }
}

/// Writes `checkpoint`'s top 10 for every test user of fold 0 of `data` to `out`
/// (`recommend --all --fold 0 -o OUT`) and returns the log's lines: where, how many, and one
/// such user's songs and list.
fn recommendations(
    sel: &Selected,
    data: &Path,
    checkpoint: &Path,
    out: &Path,
) -> Result<String, Error> {
    use crate::eval::run::{recommend_explained, recommend_users_tsv, ListRequest, Users, Who};
    let t = Instant::now();
    let req = ListRequest {
        users: Users::All,
        k: 10,
        max_per_genre: None,
        fold: Some(0),
    };
    let s = with_backend!(sel, b => recommend_users_tsv(b, data, checkpoint, req, out, &mut |_, _| {}))?;
    let mut lines = format!(
        "   recommendations: AINRNN (fold 0) top 10 for fold 0's {} (never trained on) -> {} ({:.1} s; `ainrnn recommend --all --fold 0`)",
        crate::text::count(s.users as u64, "test user"),
        out.display(),
        t.elapsed().as_secs_f64()
    );
    let ds = crate::data::Dataset::load(data)?;
    // The first test user with a few songs: a history of one or two says little.
    let test_users = || (0..ds.users()).filter(|&u| ds.user_fold[u] == 0);
    let shown = test_users()
        .find(|&u| ds.history(u).0.len() >= 5)
        .or_else(|| test_users().next());
    if let Some(u) = shown {
        let id = &ds.user_ids[u];
        let song = |s: u32| ds.song_meta[s as usize].name();
        let label = |r: &crate::eval::run::Recommendation| {
            crate::data::dataset::SongMeta {
                artist: r.artist.clone(),
                title: r.title.clone(),
                ..crate::data::dataset::SongMeta::unknown()
            }
            .name()
        };
        let heard = ds.history(u).0;
        let (list, why) = with_backend!(sel, b => recommend_explained(b, data, checkpoint, Who::User(id), 5, None, Some(0)))?;
        lines.push_str(&format!(
            "\n   e.g. user {}, a history of {} ({}): top 5 {}",
            crate::text::clip(id, 12),
            heard.len(),
            heard
                .iter()
                .take(3)
                .map(|&s| song(s))
                .chain((heard.len() > 3).then(|| "...".to_string()))
                .collect::<Vec<_>>()
                .join("; "),
            list.iter()
                .map(|r| format!("{}. {}", r.rank, label(r)))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        // Why the first is there: the score's split, and where the attention looked.
        if let (Some(r), Some(w)) = (list.first(), why.songs.first()) {
            let from = w
                .because
                .first()
                .map(|b| format!(", most from {} ({:+.2})", b.name, b.part))
                .unwrap_or_default();
            let att = why
                .attention
                .iter()
                .flatten()
                .max_by(|a, b| a.weight.total_cmp(&b.weight))
                .map(|h| {
                    format!(
                        "; attention mostly on {} ({:.0}%)",
                        h.name,
                        100.0 * h.weight
                    )
                })
                .unwrap_or_default();
            lines.push_str(&format!(
                "\n   why 1. {}: taste {:.2} + co-listening {:.2}{from}{att} (`ainrnn recommend --explain`)",
                label(r),
                w.taste,
                w.co_listening
            ));
        }
        // Songs like the first of them, by who plays them and (where the data has content)
        // by what they are.
        use crate::eval::similar::{Measure, Similar};
        let cpu = crate::backend::cpu::CpuBackend::new();
        let seed = [vec![heard[0]]];
        let measures = [
            Measure::Listens(crate::model::neighbours::Similarity::COSINE),
            Measure::Content { artist_weight: 0.0 },
        ];
        for m in measures {
            let mut like = match Similar::open(&cpu, data, m) {
                Ok(l) => l,
                // No content to compare: HetRec's artists have neither vectors nor genres.
                Err(_) if matches!(m, Measure::Content { .. }) => continue,
                Err(e) => return Err(e),
            };
            let list = like.lists(&cpu, &seed, 3, None)?.pop().unwrap_or_default();
            lines.push_str(&format!(
                "\n   songs like {} by {}: {} (`ainrnn similar --by {}`)",
                song(heard[0]),
                m.name(),
                list.iter().map(label).collect::<Vec<_>>().join("; "),
                m.name()
            ));
        }
    }
    Ok(lines)
}

fn need(path: &Path) -> Result<(), Error> {
    if path.exists() {
        Ok(())
    } else {
        Err(Error::Io(IoError::Format {
            path: path.to_path_buf(),
            reason: "missing: the demo runs on the bundled data (run it from the repository root or pass --data)".into(),
        }))
    }
}

/// Removes the demo's own feature store (and its segments) when this run cannot extend it: one
/// this build cannot read (written by an older ainrnn into `out/demo`), or one whose tracks
/// were cut at other than `seconds` (a `--quick` run's 5 s before a full run's 30 s). The demo
/// owns that folder, and either would stop it at step 1 with advice about flags it does not
/// have. Returns why it was removed.
pub fn clear_unusable_store(path: &Path, seconds: f64) -> Result<Option<String>, Error> {
    if !path.exists() {
        return Ok(None);
    }
    let why = match store::list_tracks(path).and_then(|_| store::stored_seconds(path)) {
        Err(e) => e.to_string(),
        Ok(Some(s)) if s != seconds => {
            format!("its tracks were cut at {s} s, this run takes {seconds} s")
        }
        Ok(_) => return Ok(None),
    };
    let e = why;
    std::fs::remove_file(path).map_err(|err| IoError::io(path, err))?;
    let segments = store::segments_dir(path);
    if segments.exists() {
        std::fs::remove_dir_all(&segments).map_err(|err| IoError::io(&segments, err))?;
    }
    Ok(Some(e))
}

/// The lines `prepare` skipped in its inputs, each named with its file and line (a bad line in
/// the bundled data would otherwise pass unseen).
fn log_rejects(r: &crate::data::prepare::PrepareReport, log: &mut dyn FnMut(&str)) {
    for f in &r.inputs {
        for line in f.render_problems().lines() {
            log(&format!(" {line}"));
        }
    }
}

/// Runs the demo; `log` receives progress lines.
pub fn run(
    sel: &Selected,
    o: &DemoOptions,
    log: &mut dyn FnMut(&str),
) -> Result<DemoSummary, Error> {
    let t0 = Instant::now();
    let mut stages = Stages::new(sel);
    let d = &o.data;
    for p in [
        "audio",
        "taste/triplets_dev.txt",
        "msd/subset_10k.csv",
        "hetrec/user_artists.dat",
    ] {
        need(&d.join(p))?;
    }
    std::fs::create_dir_all(&o.out).map_err(|e| IoError::io(&o.out, e))?;

    // 1. Audio features of the bundled tracks (first 30 s each).
    log(&format!(
        "== 1/5 audio features (STFT, mel, MFCC + deltas, HFC, HPCP, scattering) of {}",
        d.join("audio").display()
    ));
    let features = o.out.join("features.h5");
    let seconds = if o.quick { 5.0 } else { 30.0 };
    if let Some(reason) = clear_unusable_store(&features, seconds)? {
        log(&format!(
            "   {} was removed and is rebuilt: {reason}",
            features.display()
        ));
    }
    let jo = JobOptions {
        inputs: vec![d.join("audio")],
        output: features.clone(),
        seconds: Some(seconds),
        shard: None,
        batch: 8,
        stop: None,
    };
    let stage = Stage::new(Default::default())?;
    let js = with_backend!(sel, b => {
        let f = |b: &_, x: &_| stage.run(b, x);
        job::run(b, &jo, Some((&f as &crate::audio::features::ScatteringFn<'_, _>, stage.first_order())), |_, _| {})
    })?;
    log(&format!(
        "   {} tracks written, {} already there, {} skipped, {:.1} s",
        js.written.len(),
        js.already_done.len(),
        js.skipped.len(),
        js.seconds
    ));
    // Each file skipped, and why (a bad clip dropped into the data folder).
    for k in &js.skipped {
        log(&format!("   skipped {}: {}", k.file, k.reason));
    }
    stages.end("features");

    // 2. Dataset files.
    log("== 2/5 dataset files: Taste-Profile triplets + MSD metadata + profiles (+ audio vectors whose file stem is a song or track id); HetRec Last.fm-2K");
    let folds = 5;
    let taste = o.out.join("taste.h5");
    let mut po = PrepareOptions::new(
        Input::Triplets(d.join("taste/triplets_dev.txt")),
        taste.clone(),
    );
    po.metadata = Some(d.join("msd/subset_10k.csv"));
    po.msd = Some(d.join("msd"));
    po.profiles = Some(d.join("portrait/lastfm360k_profile_sample.tsv")).filter(|p| p.exists());
    po.features = Some(features.clone());
    po.folds = folds;
    let mut quiet = |_: &str| {};
    let r1 = prepare(&po, &mut quiet)?;
    log_rejects(&r1, log);
    for n in &r1.notes {
        log(&format!("   note: {n}"));
    }
    log(&format!(
        "   taste.h5: audio vectors joined to {} of {} songs",
        r1.joins.songs_with_audio.unwrap_or(0),
        r1.stats.songs
    ));
    let hetrec = o.out.join("hetrec.h5");
    let mut ph = PrepareOptions::new(
        Input::Hetrec {
            user_artists: d.join("hetrec/user_artists.dat"),
            artists: None,
        },
        hetrec.clone(),
    );
    ph.folds = folds;
    log_rejects(&prepare(&ph, &mut quiet)?, log);
    log(&format!("   {} and {}", taste.display(), hetrec.display()));
    stages.end("datasets");

    // 3–4. Comparisons.
    let mut reports = Vec::new();
    let mut recommendations_written = Vec::new();
    let mut comparisons = Vec::new();
    for (i, (name, data, n_folds)) in [
        ("taste", &taste, if o.quick { 1 } else { 5 }),
        ("hetrec", &hetrec, if o.quick { 1 } else { 5 }),
    ]
    .into_iter()
    .enumerate()
    {
        log(&format!(
            "== {}/5 compare on {name}: popularity, item-kNN, EASE, IndRNN, LSTM, AINRNN ({})",
            3 + i,
            crate::text::count(n_folds as u64, "fold")
        ));
        // The training defaults (TrainOptions::new) are the best setting known on these data.
        let mut t = TrainOptions::new(data.clone(), ModelKind::Ainrnn, PathBuf::new());
        if o.quick {
            t.epochs = 2;
        }
        let co = CompareOptions {
            data: data.clone(),
            methods: vec![
                Method::Popularity,
                Method::ItemKnn,
                Method::Ease,
                Method::Neural(ModelKind::Indrnn),
                Method::Neural(ModelKind::Lstm),
                Method::Neural(ModelKind::Ainrnn),
            ],
            folds: n_folds,
            k: 10,
            train: t,
            report: o.out.join(format!("report_{name}")),
            feature_sets: vec![],
            ease_lambda: None,
            ease_max_items: if o.quick { 500 } else { 3000 },
            knn_neighbours: 200,
        };
        let r = with_backend!(sel, b => compare(b, &co, |l| log(&format!("   {l}"))))?;
        log(&summary_table(&r));
        reports.push(co.report.join("report.md"));
        comparisons.push(r);
        stages.end(if name == "taste" {
            "compare_taste"
        } else {
            "compare_hetrec"
        });
        // What the recommender is for: AINRNN's lists for the users it never trained on.
        let recs = o.out.join(format!("recommendations_{name}.tsv"));
        log(&recommendations(
            sel,
            data,
            &co.checkpoint(ModelKind::Ainrnn, 0),
            &recs,
        )?);
        recommendations_written.push(recs);
        stages.end(if name == "taste" {
            "recommend_taste"
        } else {
            "recommend_hetrec"
        });
    }

    // 5. SYNTHETIC: the paper's Fig. 6 end to end, on generated listens and generated audio.
    let (users, songs, clip_seconds) = if o.quick {
        (300, 60, 1.0)
    } else {
        (1000, 300, 3.0)
    };
    log(&format!(
        "== 5/5 SYNTHETIC data (generated listens and generated clips, not real music): the paper's Fig. 6 end to end: \
         synth --audio ({users} users, {songs} songs, {clip_seconds} s clips), features, prepare --features, \
         AINRNN per feature set mfcc, scattering, all on fold 0"
    ));
    let syn = o.out.join(if o.quick {
        "synthetic_quick"
    } else {
        "synthetic"
    });
    std::fs::create_dir_all(&syn).map_err(|e| IoError::io(&syn, e))?;
    let so = SynthOptions::new(users, songs, 20.0);
    let audio = AudioOptions {
        dir: syn.join("audio"),
        clip_seconds,
    };
    let sr = synth_with_audio(&so, &syn.join("triplets.txt"), Some(&audio))?;
    // A fresh store: features of clips from an older build would be kept by the resume.
    let syn_features = syn.join("features.h5");
    for (p, dir) in [
        (syn_features.clone(), false),
        (segments_dir(&syn_features), true),
    ] {
        let r = if dir {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Io(IoError::io(&p, e)))
            }
            _ => {}
        }
    }
    let sjo = JobOptions {
        inputs: vec![audio.dir.clone()],
        output: syn_features.clone(),
        seconds: None,
        shard: None,
        batch: 8,
        stop: None,
    };
    let sjs = with_backend!(sel, b => {
        let f = |b: &_, x: &_| stage.run(b, x);
        job::run(b, &sjo, Some((&f as &crate::audio::features::ScatteringFn<'_, _>, stage.first_order())), |_, _| {})
    })?;
    let synthetic = syn.join("synthetic.h5");
    let mut ps = PrepareOptions::new(Input::Triplets(syn.join("triplets.txt")), synthetic.clone());
    ps.features = Some(syn_features);
    ps.folds = folds;
    let rs = prepare(&ps, &mut quiet)?;
    log(&format!(
        "   {}: {} SYNTHETIC clips, features of {} in {:.1} s; audio vectors joined to {} of {} songs",
        syn.display(),
        sr.clips,
        sjs.written.len(),
        sjs.seconds,
        rs.joins.songs_with_audio.unwrap_or(0),
        rs.stats.songs
    ));
    stages.end("synthetic_data");
    let mut t = TrainOptions::new(synthetic.clone(), ModelKind::Ainrnn, PathBuf::new());
    if o.quick {
        t.epochs = 2;
    }
    let co = CompareOptions {
        data: synthetic.clone(),
        methods: vec![Method::Neural(ModelKind::Ainrnn)],
        folds: 1,
        k: 10,
        train: t,
        report: o.out.join("report_synthetic_fig6"),
        feature_sets: vec![FeatureSet::Mfcc, FeatureSet::Scattering, FeatureSet::All],
        ease_lambda: None,
        ease_max_items: 500,
        knn_neighbours: 200,
    };
    let r = with_backend!(sel, b => compare(b, &co, |l| log(&format!("   {l}"))))?;
    let finals: Vec<String> = r
        .feature_runs
        .iter()
        .map(|(name, h)| {
            let last = h.last();
            format!(
                "{name} {:.4} ({:.4})",
                last.map(|e| e.ndcg_at_10).unwrap_or(0.0),
                last.map(|e| e.precision_at_10).unwrap_or(0.0)
            )
        })
        .collect();
    // P@10 is what the chart `accuracy_per_epoch` plots; NDCG@10 what the tables rank by.
    log(&format!(
        "   SYNTHETIC Fig. 6, final validation NDCG@10 (P@10, the chart's) of AINRNN on fold 0 per feature set: {}",
        finals.join(", ")
    ));
    reports.push(co.report.join("report.md"));
    comparisons.push(r);
    stages.end("synthetic_fig6");

    Ok(DemoSummary {
        backend: with_backend!(sel, b => crate::backend::Backend::describe(b)),
        features,
        datasets: vec![taste, hetrec, synthetic],
        reports,
        recommendations: recommendations_written,
        seconds: t0.elapsed().as_secs_f64(),
        stages: stages.done,
        comparisons,
    })
}
