//! Arguments and wiring of `train`, `eval` and `recommend`. The work is in `ainrnn::train` and
//! `ainrnn::eval`; this file picks the backend, shows progress and prints results.

use crate::cli::usage;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use ainrnn::backend::select::{select, BackendChoice};
use ainrnn::eval::run::{self as evalrun, Who};
use ainrnn::model::ModelKind;
use ainrnn::train::corpus::FeatureSet;
use ainrnn::train::run::{resume_checkpoint, resume_refused, saved_options, train, TrainOptions};
use ainrnn::with_backend;

use super::{parse, paths, print_json};

/// The training flags `train` and `compare` share.
#[derive(Args, Debug)]
pub struct TrainingFlags {
    /// Song features fed to the learned models: audio, msd, mfcc, scattering, all or none.
    #[arg(long, default_value = "all")]
    pub features: FeatureSet,
    /// Most epochs (training stops earlier by --patience).
    #[arg(long, default_value_t = 40, value_parser = parse::positive_u32)]
    pub epochs: u32,
    /// Users per step.
    #[arg(long, default_value_t = 32, value_parser = parse::positive_usize)]
    pub batch: usize,
    /// Width of the recurrent state.
    #[arg(long, default_value_t = 32, value_parser = parse::positive_usize)]
    pub hidden: usize,
    /// Size of the song table: the input embedding, tied with the songs' learned output vectors.
    #[arg(long, default_value_t = 128, value_parser = parse::positive_usize)]
    pub emb: usize,
    /// Recurrent layers (default 5 for ainrnn/indrnn/resindrnn, 2 for lstm).
    #[arg(long, value_parser = parse::positive_usize)]
    pub layers: Option<usize>,
    /// Most recent listens kept per user.
    #[arg(long, default_value_t = 50, value_parser = parse::positive_usize)]
    pub max_history: usize,
    /// Adam learning rate in (0, 1] (the paper's: 0.0005).
    #[arg(long, default_value_t = 1e-3, value_parser = parse::learning_rate)]
    pub lr: f32,
    /// Dropout on the recurrent outputs in [0, 0.95], mask shared over time (the paper's: 0.5).
    #[arg(long, default_value_t = 0.2, value_parser = parse::dropout)]
    pub dropout: f32,
    /// AdamW weight decay (decoupled, ≥ 0) on weights and embeddings.
    #[arg(long, default_value_t = 1e-5, value_parser = parse::non_negative_f32)]
    pub weight_decay: f32,
    /// Stop after this many epochs without a better validation NDCG@10 (0: never).
    #[arg(long, default_value_t = 6, value_parser = parse::int_at_least(0u32))]
    pub patience: u32,
    /// Seed of the initial weights, dropout, batch order and validation users (an ensemble's
    /// member i uses seed + i).
    #[arg(long, default_value_t = 42, value_parser = parse::int_at_least(0u64))]
    pub seed: u64,
    /// Neighbours per song in the scores' item-neighbourhood term, fitted on the training users
    /// (0: the learned low-rank scores only).
    #[arg(long, default_value_t = ainrnn::model::DEFAULT_NEIGHBOURS, value_parser = parse::int_at_least(0usize))]
    pub neighbours: usize,
    /// Co-listening similarity of the neighbour lists (the neighbourhood term and item-kNN):
    /// auto = cosine for a learned model with pair weights (they reweigh every pair), else
    /// (item-kNN, no pair weights) chosen on the validation users from a small grid (cosine among
    /// them); cosine; or ALPHA,SHRINK,POWER: Σ 1/|u|^POWER over co-listeners / (n_i^ALPHA
    /// n_j^(1-ALPHA) + SHRINK).
    #[arg(long, default_value = "auto", value_parser = parse::similarity)]
    pub similarity: parse::SimilarityFlag,
    /// Layer stacking: dense (the AINRNN paper's), residual (shortcuts, as in resindrnn), gated
    /// (shortcuts scaled by a learned per-unit gate, starting at 1) or plain; default: plain for
    /// ainrnn (dense with --paper: on the bundled data the plain stack is the one level with
    /// IndRNN on both datasets, README, Stacking), the model's own for the others (plain for
    /// indrnn and lstm, residual for resindrnn). LSTM is built plain only.
    #[arg(long)]
    pub connection: Option<ainrnn::model::Connection>,
    /// History pooling: plays-attention (AINRNN's), attention (without play counts), last
    /// (IndRNN's, resindrnn's, LSTM's) or mean; default: the model's own. LSTM: last only.
    #[arg(long)]
    pub pooling: Option<ainrnn::model::PoolingKind>,
    /// Leave the user portrait (age, language, genre) out of the user vector.
    #[arg(long)]
    pub no_portrait: bool,
    /// Neighbourhood term without the learned per-song weights of the history songs (every
    /// history song's list counts the same, as in item-kNN).
    #[arg(long)]
    pub no_song_weights: bool,
    /// Neighbourhood term without the learned weights of its (song, neighbour) pairs (every
    /// pair counts its co-listening similarity, as in item-kNN). They are learned only up to
    /// 16.8 M pairs (songs × --neighbours): beyond, their optimizer state grows past 256 MiB.
    #[arg(long)]
    pub no_pair_weights: bool,
    /// Models per run, ranking by their summed scores: auto = 3 when a fold has fewer than
    /// 5,000 training users (where it gained), else 1; or a number in 1..=16. Member m trains
    /// with seed + m (its own validation users, weights and batches) into the checkpoint's path
    /// + `.member<m>` (train's --out; compare's and ablate's checkpoints/ folder).
    #[arg(long, default_value = "auto", value_parser = parse::ensemble)]
    pub ensemble: parse::EnsembleFlag,
    /// The paper's settings instead of ours: lr 0.0005, dropout 0.5, 75 epochs without early
    /// stopping, hidden 64, emb 64, batch 64, no neighbourhood term, one model (no ensemble),
    /// and ainrnn with dense connections.
    /// Flags given explicitly still win.
    #[arg(long)]
    pub paper: bool,
}

impl TrainingFlags {
    /// Sets these flags on `opts` (their ranges were checked by the value parsers, and again by
    /// `TrainOptions::check`).
    /// With `--paper`, the paper's settings replace the defaults of the flags not given
    /// (`matches`: this command's, to tell given flags from defaults).
    fn apply(&self, opts: &mut TrainOptions, matches: Option<&clap::ArgMatches>) {
        opts.features = self.features;
        opts.epochs = self.epochs;
        opts.batch = self.batch;
        opts.hidden = self.hidden;
        opts.emb = self.emb;
        opts.layers = self.layers;
        opts.max_history = self.max_history;
        opts.lr = self.lr;
        opts.dropout = self.dropout;
        opts.weight_decay = self.weight_decay;
        opts.patience = self.patience;
        opts.seed = self.seed;
        opts.neighbours = self.neighbours;
        opts.connection = self.connection;
        opts.pooling = self.pooling;
        opts.portrait = !self.no_portrait;
        opts.song_weights = !self.no_song_weights;
        opts.pair_weights = !self.no_pair_weights;
        opts.similarity = self.similarity.0;
        opts.ensemble = self.ensemble.0;
        if self.paper {
            let p = opts.paper_settings();
            let default = |f: &str| !given(matches, f);
            if default("--lr") {
                opts.lr = p.lr;
            }
            if default("--dropout") {
                opts.dropout = p.dropout;
            }
            if default("--epochs") {
                opts.epochs = p.epochs;
            }
            if default("--patience") {
                opts.patience = p.patience;
            }
            if default("--hidden") {
                opts.hidden = p.hidden;
            }
            if default("--emb") {
                opts.emb = p.emb;
            }
            if default("--batch") {
                opts.batch = p.batch;
            }
            if default("--neighbours") {
                opts.neighbours = p.neighbours;
            }
            if default("--no-song-weights") {
                opts.song_weights = p.song_weights;
            }
            if default("--no-pair-weights") {
                opts.pair_weights = p.pair_weights;
            }
            if default("--ensemble") {
                opts.ensemble = p.ensemble;
            }
            // Only where --connection is not given: it names the stacking itself.
            opts.paper_connection = p.paper_connection;
        }
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The dataset file (from `ainrnn prepare`).
    #[arg(long, value_name = "H5")]
    pub data: PathBuf,
    /// ainrnn (the paper's model), indrnn, resindrnn (residual IndRNN, the baseline the paper
    /// changes from) or lstm.
    #[arg(long, default_value = "ainrnn")]
    pub model: ModelKind,
    /// Test fold (its users are never trained on).
    #[arg(long, default_value_t = 0, value_parser = parse::int_at_least(0u32))]
    pub fold: u32,
    #[command(flatten)]
    pub training: TrainingFlags,
    /// Checkpoint of the best epoch; the latest epoch goes to `<out>.last`.
    #[arg(long, short, default_value = "model.ckpt")]
    pub out: PathBuf,
    /// Continue an interrupted run from `<out>.last` (or `<out>`), with its settings; with
    /// neither, train from the start (a note says so).
    #[arg(long, conflicts_with = "paper")]
    pub resume: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The dataset file (from `ainrnn prepare`).
    #[arg(long, value_name = "H5")]
    pub data: PathBuf,
    /// The checkpoint (from `ainrnn train -o`; the other members of an ensemble are read
    /// from beside it).
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: PathBuf,
    /// Test fold (default: the one the checkpoint was trained for; another one is refused
    /// unless --other-fold).
    #[arg(long, value_parser = parse::int_at_least(0u32))]
    pub fold: Option<u32>,
    /// Allow a --fold other than the checkpoint's (its test users were training users then).
    #[arg(long)]
    pub other_fold: bool,
    /// Cut-off of the metrics, 1..=32.
    #[arg(long, default_value_t = 10, value_parser = parse::int_in(1usize, ainrnn::backend::MAX_TOPK))]
    pub k: usize,
}

/// The list flags `recommend` and `similar` share.
#[derive(Args, Debug)]
pub struct ListFlags {
    /// Length of the list (≥ 1).
    #[arg(long, default_value_t = 10, value_parser = parse::positive_usize)]
    pub k: usize,
    /// At most N songs of the same genre in the list (N ≥ 1; songs of unknown genre are not
    /// capped).
    #[arg(long, value_name = "N", value_parser = parse::positive_usize)]
    pub max_per_genre: Option<usize>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["user", "history", "all", "users", "histories"])))]
pub struct RecommendArgs {
    /// The dataset file (from `ainrnn prepare`).
    #[arg(long, value_name = "H5")]
    pub data: PathBuf,
    /// The checkpoint (from `ainrnn train -o`; the other members of an ensemble are read
    /// from beside it).
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: PathBuf,
    /// A user id of the dataset (their whole history is the input).
    #[arg(long)]
    pub user: Option<String>,
    /// Cold start: a file of song ids (optionally `<TAB>plays`), one per line.
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Every user of the dataset (with --fold: that fold's test users), each list written to
    /// -o.
    #[arg(long)]
    pub all: bool,
    /// The users listed in FILE (one id a line, `#` comments), each list written to -o; a line
    /// naming no user of the dataset (or, with --fold, of that fold's test users) is skipped
    /// and reported.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Cold start for many new users: a file of `user<TAB>song[<TAB>plays]` lines (each user's
    /// history in line order), each list written to -o; a line naming a song the catalogue
    /// lacks, or that cannot be read, is skipped and reported.
    #[arg(long, value_name = "FILE")]
    pub histories: Option<PathBuf>,
    /// With --all, --users or --histories: the file to write, tab-separated with a header
    /// (user, rank, song_id, score, title, artist, genre), written atomically.
    #[arg(short = 'o', long, value_name = "TSV")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub list: ListFlags,
    /// The fold the recommendation is for: refused when the checkpoint was trained for another
    /// one (default: the checkpoint's), unless --other-fold; --user must then be one of the
    /// fold's test users, --all takes them, --users skips the others.
    #[arg(long, value_parser = parse::int_at_least(0u32))]
    pub fold: Option<u32>,
    /// Allow a --fold other than the checkpoint's.
    #[arg(long)]
    pub other_fold: bool,
    /// With --user or --history: why each song is listed: its score split into what the
    /// co-listening term adds (and the history songs that add most) and the rest, and for
    /// AINRNN the attention's weight on the history's songs.
    #[arg(long)]
    pub explain: bool,
}

pub(super) fn backend(choice: BackendChoice) -> Result<ainrnn::backend::select::Selected> {
    let (sel, note) = select(choice)?;
    if let Some(n) = note {
        eprintln!("note: {n}");
    }
    Ok(sel)
}

/// Whether `--flag` was given on the command line (not defaulted); without `matches`, every
/// flag counts as given.
fn given(matches: Option<&clap::ArgMatches>, flag: &str) -> bool {
    let Some(id) = flag.strip_prefix("--") else {
        return false;
    };
    let id = id.replace('-', "_");
    matches.is_none_or(|m| {
        m.try_get_raw(&id).is_ok()
            && m.value_source(&id) == Some(clap::parser::ValueSource::CommandLine)
    })
}

/// `train --resume`: the options stored in the checkpoint it continues from, with `--epochs` and
/// `--patience` when given; any other flag given with another value than the checkpoint's is
/// refused, all conflicts listed. Without a checkpoint to resume from, `flags` train anew.
fn resume_options(flags: TrainOptions, matches: Option<&clap::ArgMatches>) -> Result<TrainOptions> {
    let Some(path) = resume_checkpoint(&flags.out) else {
        // A job queue may start the same command again and again: the first run starts anew.
        eprintln!(
            "note: --resume: neither {} nor {} exists; training from the start",
            ainrnn::train::run::last_path(&flags.out).display(),
            flags.out.display()
        );
        return Ok(flags);
    };
    let saved = saved_options(&path)?;
    let mut conflicts = flags.resume_conflicts(&saved, |f| given(matches, f));
    // Not a model setting, but a resumed run trains the members the checkpoint has.
    if given(matches, "--ensemble") && flags.ensemble != saved.ensemble {
        let name = |e: Option<u32>| e.map_or("auto".to_string(), |n| n.to_string());
        conflicts.push(format!(
            "--ensemble {} but the checkpoint was trained with {}",
            name(flags.ensemble),
            name(saved.ensemble)
        ));
    }
    if !conflicts.is_empty() {
        usage!("{}", resume_refused(&path, &conflicts));
    }
    let mut opts = TrainOptions {
        data: flags.data.clone(),
        out: flags.out.clone(),
        resume: true,
        ..saved
    };
    if given(matches, "--epochs") {
        opts.epochs = flags.epochs;
    }
    if given(matches, "--patience") {
        opts.patience = flags.patience;
    }
    eprintln!(
        "resuming from {} with its settings ({} epochs, patience {}; only --epochs and --patience may change)",
        path.display(),
        opts.epochs,
        opts.patience
    );
    if path == flags.out {
        eprintln!(
            "note: {} is missing, so training goes on from {}: the best epoch's model, with the neighbourhood weight chosen after that run, not the interrupted run's latest state",
            ainrnn::train::run::last_path(&flags.out).display(),
            flags.out.display()
        );
    }
    Ok(opts)
}

pub fn run_train(
    a: TrainArgs,
    matches: Option<&clap::ArgMatches>,
    choice: BackendChoice,
    json: bool,
) -> Result<()> {
    let last = ainrnn::train::run::last_path(&a.out);
    paths::refuse_overwriting_inputs("--out", &a.out, &[("--data", &a.data)])?;
    paths::refuse_overwriting_inputs("--out (its .last file)", &last, &[("--data", &a.data)])?;
    // An ensemble also writes `<out>.memberN` and their `.last` files: a dataset so named is one.
    if let Some(run) = ainrnn::train::run::base_output(&a.data) {
        if ainrnn::io::paths::same_path(&run, &a.out) {
            bail!(
                "--data {} is named as a file that training to --out {} writes (an ensemble member's checkpoint or a .last file): writing it would destroy the input; choose another output path",
                a.data.display(),
                a.out.display()
            );
        }
    }
    let _lock = paths::lock_output("--out", &a.out)?;
    ainrnn::io::lock::remove_stale_temps(&last); // the lock on --out covers its .last file
                                                 // `-o m.ckpt.last` (or `.member1`) writes files of the run `-o m.ckpt`: that run's lock too.
    let base = ainrnn::train::run::base_output(&a.out);
    let _base_lock = match &base {
        Some(b) => Some(paths::lock_output("--out", b)?),
        None => None,
    };
    let mut opts = TrainOptions::new(a.data, a.model, a.out);
    a.training.apply(&mut opts, matches);
    opts.fold = a.fold;
    opts.resume = a.resume;
    if opts.resume {
        opts = resume_options(opts, matches)?;
    }
    let sel = backend(choice)?;
    let bar = ProgressBar::hidden();
    // Drawn on stderr once the first progress has set every field (a bar drawn at once showed
    // "epoch  … 0/0 users").
    let draw = std::cell::Cell::new(std::io::stderr().is_terminal());
    if draw.get() {
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} users  {msg}  {rate}  ETA {eta}",
            )
            .map(|s| {
                // Whole users a second ({per_sec} prints four decimals).
                s.with_key(
                    "rate",
                    |st: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} users/s", st.per_sec());
                    },
                )
            })
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    }
    eprintln!(
        "training {} ({} stack, {} pooling) on {} ({})",
        opts.kind.name(),
        opts.connection().name(),
        opts.pooling().name(),
        opts.data.display(),
        sel.name()
    );
    if opts.similarity.is_none() && opts.neighbours > 0 && !opts.resume {
        // Before the first epoch, silent otherwise (~30 s at paper scale on 2 cores).
        let choose = format!(
            "chosen first: {} candidates, each ranked by item-kNN on the validation users (--similarity cosine skips it)",
            ainrnn::model::neighbours::similarity_grid().len()
        );
        if opts.pair_weights {
            eprintln!(
                "neighbour lists: cosine similarity, reweighed by the learned pair weights (above {:.1} M pairs, songs × neighbours, where none are learned, the similarity is {choose})",
                ainrnn::train::run::PAIR_WEIGHTS_MAX as f64 / 1e6
            );
        } else {
            eprintln!("neighbour lists' similarity {choose}");
        }
    }
    let seed = opts.seed;
    // Under --json every member's epochs go into the one object printed at the end.
    let epochs = std::cell::RefCell::new(Vec::new());
    let summary = with_backend!(sel, b => train(
        &b,
        &opts,
        |r| {
            bar.finish_and_clear();
            if json {
                epochs.borrow_mut().push(r.clone());
            }
            if r.member > 0 && r.epoch == 1 {
                eprintln!("ensemble member {} (seed {} + {})", r.member, seed, r.member);
            }
            eprintln!(
                "epoch {:>3}  loss {:.4}  {:.1}s ({:.0} users/s)  val P@10 {:.4}  NDCG@10 {:.4}{}",
                r.epoch, r.loss, r.seconds, r.users_per_second, r.precision_at_10, r.ndcg_at_10,
                if r.best { "  (best)" } else { "" }
            );
        },
        |epoch, done, total, loss| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(format!("loss {loss:.4}"));
            bar.set_prefix(epoch.to_string());
            if draw.replace(false) {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
        },
    ))?;
    eprintln!(
        "best epoch {} (validation NDCG@10 {:.4}) of {}{}; {} parameters; checkpoint {} (latest: {})",
        summary.best_epoch,
        summary.best_ndcg_at_10,
        summary.epochs_run,
        if summary.stopped_early { ", stopped early" } else { "" },
        summary.parameters,
        summary.checkpoint.display(),
        summary.last_checkpoint.display()
    );
    if let Some(c) = &summary.similarity {
        eprintln!(
            "neighbour similarity {} chosen on the validation users before training (item-kNN NDCG@10 {:.4}; cosine {:.4}; {} tried)",
            c.chosen, c.ndcg_chosen, c.ndcg_cosine, c.tried
        );
    }
    if let Some(w) = &summary.neighbour_weight {
        eprintln!(
            "neighbourhood weight γ {:.3} as trained (validation NDCG@10 {:.4}) → {:.3}{} chosen on the validation users (NDCG@10 {:.4}), kept in {} with lists of {} users",
            w.trained,
            w.ndcg_trained,
            w.chosen,
            w.song_weight_shrink
                .map(|s| format!(", per-song log-weights × {s}"))
                .unwrap_or_default()
                + &w.pair_weight_shrink
                    .map(|s| format!(", pair log-weights × {s}"))
                    .unwrap_or_default(),
            w.ndcg_chosen,
            summary.checkpoint.display(),
            w.list_users
        );
    }
    if !summary.members.is_empty() {
        eprintln!(
            "ensemble of {} members (--ensemble; their summed scores rank): {}",
            summary.members.len(),
            summary
                .members
                .iter()
                .map(|m| format!(
                    "{} (seed {}, best epoch {}, validation NDCG@10 {:.4})",
                    m.checkpoint.display(),
                    m.seed,
                    m.best_epoch,
                    m.best_ndcg_at_10
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if json {
        let mut v = serde_json::to_value(&summary)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("epochs".into(), serde_json::to_value(epochs.take())?);
        }
        print_json(&v)?;
    }
    Ok(())
}

pub fn run_eval(a: EvalArgs, choice: BackendChoice, json: bool) -> Result<()> {
    let sel = backend(choice)?;
    let r = with_backend!(sel, b => evalrun::eval(&b, &a.data, &a.checkpoint, a.fold, a.other_fold, a.k))?;
    if json {
        print_json(&r)?;
    } else {
        let m = &r.metrics;
        outln!(
            "{} on fold {} ({} test users, {} without held-out songs skipped)",
            r.model,
            r.fold,
            m.users,
            m.users_without_truth
        );
        outln!(
            "precision@{k} {:.4}  recall@{k} {:.4}  NDCG@{k} {:.4}  NDCG@{k} (graded) {:.4}  mAP@{k} {:.4}  hit rate {:.4}",
            m.precision,
            m.recall,
            m.ndcg,
            m.ndcg_graded,
            m.map,
            m.hit_rate,
            k = m.k
        );
        outln!(
            "coverage {:.4}  long-tail share {:.4}  genre diversity {}",
            m.coverage,
            m.long_tail_share,
            m.genre_diversity
                .map(|d| format!("{d:.4}"))
                .unwrap_or_else(|| "n/a".into())
        );
    }
    Ok(())
}

pub fn run_recommend(
    a: RecommendArgs,
    choice: BackendChoice,
    json: bool,
) -> Result<std::process::ExitCode> {
    let many = match (a.all, &a.users, &a.histories) {
        (true, _, _) => Some(evalrun::Users::All),
        (false, Some(f), _) => Some(evalrun::Users::File(f)),
        (false, None, Some(f)) => Some(evalrun::Users::Histories(f)),
        (false, None, None) => None,
    };
    match (&many, &a.output) {
        (Some(_), None) => usage!(
            "--all, --users and --histories write every list to a file: give -o FILE (tab-separated)"
        ),
        (None, Some(_)) => usage!(
            "-o writes the lists of --all, --users or --histories; --user and --history print their list on stdout (--json for JSON)"
        ),
        _ => {}
    }
    if let (Some(users), Some(out)) = (many, &a.output) {
        if a.explain {
            usage!(
                "--explain explains one list: give --user ID or --history FILE (not --all, --users or --histories)"
            );
        }
        return recommend_many(&a, users, out, choice, json);
    }
    let sel = backend(choice)?;
    let who = match (&a.user, &a.history) {
        (Some(u), _) => Who::User(u),
        (None, Some(h)) => Who::History(h),
        (None, None) => {
            usage!("give --user ID, --history FILE, --all, --users FILE or --histories FILE")
        }
    };
    check_recommend_fold(&a)?;
    let (list, why) = if a.explain {
        let (l, w) = with_backend!(sel, b => evalrun::recommend_explained(&b, &a.data, &a.checkpoint, who, a.list.k, a.list.max_per_genre, a.fold))?;
        (l, Some(w))
    } else {
        let l = with_backend!(sel, b => evalrun::recommend(&b, &a.data, &a.checkpoint, who, a.list.k, a.list.max_per_genre, a.fold))?;
        (l, None)
    };
    if list.len() < a.list.k {
        eprintln!(
            "note: --k {}: {} can be recommended (songs the user has not heard{})",
            a.list.k,
            ainrnn::text::count(list.len() as u64, "song"),
            if a.list.max_per_genre.is_some() {
                ", within --max-per-genre"
            } else {
                ""
            }
        );
    }
    if json {
        print_json(&serde_json::json!({
            "user": a.user,
            "history": a.history,
            "data": a.data,
            "checkpoint": a.checkpoint,
            "fold": a.fold,
            "k": a.list.k,
            "max_per_genre": a.list.max_per_genre,
            "recommendations": list,
            "explanation": why,
        }))?;
    } else if let Some(why) = &why {
        print_explained(&list, why)?;
    } else {
        print_list(&list)?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The skipped lines of a batch's input file `input` on stderr, each naming the `what` (user,
/// song) it gave: the first 20, all of them under `--json` (there, in the result).
pub(super) fn report_skipped(
    input: &str,
    what: &str,
    skipped: &[evalrun::SkippedLine],
    json: bool,
) {
    const SHOWN: usize = 20;
    for s in skipped.iter().take(SHOWN) {
        eprintln!(
            "skipped {input}:{}: {what} {:?}: {}",
            s.line, s.id, s.reason
        );
    }
    if skipped.len() > SHOWN {
        eprintln!(
            "… and {} more skipped lines{}",
            skipped.len() - SHOWN,
            if json {
                ""
            } else {
                " (all of them under --json)"
            }
        );
    }
}

/// The end of a batch's closing line: how many lines of `input` were skipped, if any.
pub(super) fn skipped_suffix(input: &str, skipped: usize) -> String {
    if skipped == 0 {
        String::new()
    } else {
        format!(
            "; {} of {input} skipped (exit status 3)",
            ainrnn::text::count(skipped as u64, "line")
        )
    }
}

/// A list on stdout, a song a line: rank, score, artist — title [genre] (id).
pub(super) fn print_list(list: &[evalrun::Recommendation]) -> Result<()> {
    for r in list {
        outln!(
            "{:>3}. {:<8.4} {} — {} [{}] ({})",
            r.rank,
            r.score,
            r.artist,
            r.title,
            r.genre,
            r.song_id
        );
    }
    Ok(())
}

/// The attention's largest weights shown by `--explain`.
const ATTENTION_SHOWN: usize = 5;

/// `recommend --explain`: the attention's largest weights over the history (AINRNN), then the
/// list, each song followed by its score's split and the history songs that add most.
fn print_explained(list: &[evalrun::Recommendation], why: &evalrun::Explanation) -> Result<()> {
    if let Some(att) = &why.attention {
        let mut by: Vec<&evalrun::HistoryWeight> = att.iter().collect();
        by.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        outln!(
            "attention over the {} the model read (largest {}): {}",
            ainrnn::text::count(att.len() as u64, "history song"),
            ATTENTION_SHOWN.min(att.len()),
            by.iter()
                .take(ATTENTION_SHOWN)
                .map(|h| format!("{:.1}% {}", 100.0 * h.weight, or_id(&h.name, &h.song_id)))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    for (r, w) in list.iter().zip(&why.songs) {
        print_list(std::slice::from_ref(r))?;
        let because = w
            .because
            .iter()
            .map(|b| format!("{} {:+.4}", or_id(&b.name, &b.song_id), b.part))
            .collect::<Vec<_>>()
            .join("; ");
        if !why.co_listening_term {
            outln!(
                "       taste {:.4} (the model has no co-listening term)",
                w.taste
            );
            continue;
        }
        outln!(
            "       taste {:.4} + co-listening {:.4}{}",
            w.taste,
            w.co_listening,
            if because.is_empty() {
                String::new()
            } else {
                format!(" (from {because})")
            }
        );
    }
    Ok(())
}

/// A song's name, or its id when it has none.
fn or_id<'a>(name: &'a str, id: &'a str) -> &'a str {
    if name.is_empty() {
        id
    } else {
        name
    }
}

/// `recommend --fold F`: refused for a checkpoint of another fold unless `--other-fold`.
fn check_recommend_fold(a: &RecommendArgs) -> Result<()> {
    if let Some(fold) = a.fold {
        let trained = evalrun::checkpoint_fold(&a.checkpoint)?;
        evalrun::check_fold(&a.checkpoint, trained, fold, a.other_fold)?;
    }
    Ok(())
}

/// `recommend --all` / `--users FILE` / `--histories FILE` `-o OUT`: every list into one
/// tab-separated file, written atomically; exit status 3 when lines of the input were skipped.
fn recommend_many(
    a: &RecommendArgs,
    users: evalrun::Users<'_>,
    out: &std::path::Path,
    choice: BackendChoice,
    json: bool,
) -> Result<std::process::ExitCode> {
    let mut inputs = vec![
        ("--data", a.data.as_path()),
        ("--checkpoint", a.checkpoint.as_path()),
    ];
    if let Some(u) = &a.users {
        inputs.push(("--users", u.as_path()));
    }
    if let Some(h) = &a.histories {
        inputs.push(("--histories", h.as_path()));
    }
    paths::refuse_overwriting_inputs("-o", out, &inputs)?;
    let _lock = paths::lock_output("-o", out)?;
    check_recommend_fold(a)?;
    let sel = backend(choice)?;
    let bar = super::count_bar("users");
    let mut progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let req = evalrun::ListRequest {
        users,
        k: a.list.k,
        max_per_genre: a.list.max_per_genre,
        fold: a.fold,
    };
    let summary = with_backend!(sel, b => evalrun::recommend_users_tsv(
        &b, &a.data, &a.checkpoint, req, out, &mut progress
    ))?;
    bar.finish_and_clear();
    // The file whose lines were read (--all reads none, and skips nothing).
    let input = a
        .users
        .as_deref()
        .or(a.histories.as_deref())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    report_skipped(&input, "user", &summary.skipped, json);
    if summary.repeated > 0 {
        eprintln!(
            "note: {input}: {}",
            if a.histories.is_some() {
                format!(
                    "{} listed again; their plays were added to the first",
                    ainrnn::text::count(summary.repeated as u64, "(user, song) pair")
                )
            } else {
                format!(
                    "{} listed again; each list is written once",
                    ainrnn::text::count(summary.repeated as u64, "user")
                )
            }
        );
    }
    eprintln!(
        "recommend: the top {} of {} written to {} in {:.1} s{}",
        a.list.k,
        ainrnn::text::count(summary.users as u64, "user"),
        out.display(),
        summary.seconds,
        skipped_suffix(&input, summary.skipped.len())
    );
    if json {
        print_json(&serde_json::json!({
            "output": out,
            "data": a.data,
            "checkpoint": a.checkpoint,
            "users_file": a.users,
            "histories": a.histories,
            "fold": a.fold,
            "k": a.list.k,
            "max_per_genre": a.list.max_per_genre,
            "users": summary.users,
            "skipped": summary.skipped,
            "repeated": summary.repeated,
            "whole_catalogue": summary.whole_catalogue,
            "seconds": summary.seconds,
        }))?;
    }
    Ok(super::partial(!summary.skipped.is_empty()))
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The dataset file (from `ainrnn prepare`).
    #[arg(long, value_name = "H5")]
    pub data: PathBuf,
    /// Comma-separated: popularity, itemknn, ease, contentknn, indrnn, resindrnn, lstm, ainrnn.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "popularity,itemknn,ease,indrnn,resindrnn,lstm,ainrnn"
    )]
    pub models: Vec<ainrnn::eval::compare::Method>,
    /// Folds to run: the first N of the dataset's folds (default: all of them).
    #[arg(long, value_parser = parse::positive_u32)]
    pub folds: Option<u32>,
    /// Cut-off of the metrics, 1..=20.
    #[arg(long, default_value_t = 10, value_parser = parse::int_in(1usize, 20))]
    pub k: usize,
    #[command(flatten)]
    pub training: TrainingFlags,
    /// Feature sets for the accuracy-per-epoch figure (default: mfcc,scattering when present).
    #[arg(long, value_delimiter = ',')]
    pub feature_sets: Vec<FeatureSet>,
    /// EASE regularisation (default: chosen on validation users).
    #[arg(long, value_parser = parse::positive_f32)]
    pub ease_lambda: Option<f32>,
    /// EASE models the N most popular songs (one dense N × N solve).
    #[arg(long, default_value_t = 3000, value_parser = parse::positive_usize)]
    pub ease_items: usize,
    /// Neighbours kept per song by item-kNN.
    #[arg(long, default_value_t = 200, value_parser = parse::positive_usize)]
    pub knn_neighbours: usize,
    /// Folder for report.md, results.json, the figures and the checkpoints.
    #[arg(long, value_name = "DIR")]
    pub report: PathBuf,
    /// Item cold start: hold out this share of the songs (0 < F < 1) entirely and rank each
    /// test user's cold songs among all cold songs (the "Cold start" table).
    #[arg(long, value_name = "F", value_parser = parse::real_in(parse::End::Excl(0.0), parse::End::Excl(1.0)))]
    pub cold_songs: Option<f64>,
}

/// `compare --report DIR` writes report.md, results.json, the figures and checkpoints/ there:
/// refuse a `--data` file among them (or the folder itself).
fn refuse_report_over_data(report: &std::path::Path, data: &std::path::Path) -> Result<()> {
    refuse_written_over_data(
        report,
        data,
        &["report.md", "results.json"],
        &[
            "precision_at_k",
            "ndcg_at_k",
            "accuracy_per_epoch",
            "seconds_per_epoch",
        ],
    )
}

/// A command writing `names` (and files of the `stems`) and `checkpoints/*.ckpt` into `report`:
/// refuse a `--data` file among them (or the folder itself).
fn refuse_written_over_data(
    report: &std::path::Path,
    data: &std::path::Path,
    names: &[&str],
    stems: &[&str],
) -> Result<()> {
    let (Some(dir), Some(d)) = (paths::canonical(report), paths::canonical(data)) else {
        return Ok(());
    };
    let name = d.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name.split('.').next().unwrap_or("");
    let written = d == dir
        || (d.parent() == Some(dir.as_path()) && (names.contains(&name) || stems.contains(&stem)))
        || (d.parent() == Some(dir.join("checkpoints").as_path()) && name.ends_with(".ckpt"));
    if written {
        anyhow::bail!(
            "--report {} would overwrite the input --data {}: choose another report folder",
            report.display(),
            data.display()
        );
    }
    Ok(())
}

/// `--folds`' default: every fold of the dataset (1 where the file cannot be read: the run's
/// own load then says why).
fn all_folds(data: &std::path::Path) -> u32 {
    ainrnn::data::Dataset::stored_folds(data).unwrap_or(1)
}

pub fn run_compare(
    a: CompareArgs,
    matches: Option<&clap::ArgMatches>,
    choice: BackendChoice,
    json: bool,
) -> Result<std::process::ExitCode> {
    refuse_report_over_data(&a.report, &a.data)?;
    if a.cold_songs.is_some() {
        let view = a.report.join("checkpoints").join("cold-warm-view.h5");
        if paths::canonical(&view).is_some() && paths::canonical(&view) == paths::canonical(&a.data)
        {
            anyhow::bail!(
                "--report {} would overwrite the input --data {} (the cold start's warm view): choose another report folder",
                a.report.display(),
                a.data.display()
            );
        }
    }
    if !a.feature_sets.is_empty() {
        if !a
            .models
            .contains(&ainrnn::eval::compare::Method::Neural(ModelKind::Ainrnn))
        {
            usage!(
                "--feature-sets compares AINRNN trained on each feature set, but --models does not include ainrnn"
            );
        }
        if a.feature_sets.len() < 2 {
            usage!("--feature-sets needs two feature sets or more to compare");
        }
        if let Some(fs) = (1..a.feature_sets.len()).find_map(|i| {
            a.feature_sets[..i]
                .contains(&a.feature_sets[i])
                .then_some(a.feature_sets[i])
        }) {
            usage!("--feature-sets lists {} twice", fs.name());
        }
    }
    paths::input_exists("--data", &a.data)?;
    let _lock = paths::lock_output_dir("--report", &a.report)?;
    let sel = backend(choice)?;
    let mut train = TrainOptions::new(a.data.clone(), ModelKind::Ainrnn, PathBuf::new());
    a.training.apply(&mut train, matches);
    train.check()?;
    let folds = a.folds.unwrap_or_else(|| all_folds(&a.data));
    let opts = ainrnn::eval::compare::CompareOptions {
        data: a.data,
        methods: a.models,
        folds,
        k: a.k,
        train,
        report: a.report,
        feature_sets: a.feature_sets,
        ease_lambda: a.ease_lambda,
        ease_max_items: a.ease_items,
        knn_neighbours: a.knn_neighbours,
    };
    if let Some(share) = a.cold_songs {
        let r = with_backend!(sel, b => ainrnn::eval::compare::compare_cold(&b, &opts, share, |line| eprintln!("{line}")))?;
        let table = format!("\nCold start\n{}", r.table());
        if json {
            print_json(&r.json())?;
            eprintln!("{table}");
        } else {
            outln!("{table}");
        }
        eprintln!(
            "report: {} ({:.0} s)",
            opts.report.join("report.md").display(),
            r.seconds
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let r = with_backend!(sel, b => ainrnn::eval::compare::compare(&b, &opts, |line| eprintln!("{line}")))?;
    let table = format!("\n{}", ainrnn::eval::compare::summary_table(&r));
    if json {
        print_json(&r.json())?;
        eprintln!("{table}");
    } else {
        outln!("{table}");
    }
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    eprintln!(
        "report: {} ({:.0} s)",
        opts.report.join("report.md").display(),
        r.seconds
    );
    let failed = r.methods.iter().filter(|m| m.failed.is_some()).count();
    if failed > 0 {
        eprintln!(
            "compare: {} failed (see the report); exit status 3",
            ainrnn::text::count(failed as u64, "model")
        );
    }
    Ok(super::partial(failed > 0))
}

#[derive(Args, Debug)]
pub struct AblateArgs {
    /// The dataset file (from `ainrnn prepare`).
    #[arg(long, value_name = "H5")]
    pub data: PathBuf,
    /// Folds to run: the first N of the dataset's folds (default: all of them); the p-values
    /// need 2 or more.
    #[arg(long, value_parser = parse::positive_u32)]
    pub folds: Option<u32>,
    /// Full AINRNN's settings, as compare's (--connection, --pooling and --no-portrait are
    /// varied by the rows and refused here; --paper gives the paper's dense connections).
    #[command(flatten)]
    pub training: TrainingFlags,
    /// Folder for report.md, results.json, ablation.png and the checkpoints.
    #[arg(long, value_name = "DIR", default_value = "ablation")]
    pub report: PathBuf,
}

pub fn run_ablate(
    a: AblateArgs,
    matches: Option<&clap::ArgMatches>,
    choice: BackendChoice,
    json: bool,
) -> Result<std::process::ExitCode> {
    refuse_written_over_data(
        &a.report,
        &a.data,
        &["report.md", "results.json", "ablation.png"],
        &[],
    )?;
    paths::input_exists("--data", &a.data)?;
    let _lock = paths::lock_output_dir("--report", &a.report)?;
    let sel = backend(choice)?;
    let mut train = TrainOptions::new(a.data.clone(), ModelKind::Ainrnn, PathBuf::new());
    a.training.apply(&mut train, matches);
    train.check()?;
    let folds = a.folds.unwrap_or_else(|| all_folds(&a.data));
    let opts = ainrnn::eval::ablate::AblateOptions {
        data: a.data,
        folds,
        train,
        report: a.report,
    };
    let r = with_backend!(sel, b => ainrnn::eval::ablate::ablate(&b, &opts, |line| eprintln!("{line}")))?;
    let table = format!("\n{}", ainrnn::eval::ablate::markdown(&r));
    if json {
        print_json(&r)?;
        eprintln!("{table}");
    } else {
        outln!("{table}");
    }
    eprintln!(
        "report: {} ({:.0} s)",
        opts.report.join("report.md").display(),
        r.seconds
    );
    // As `features` with skipped files: the report holds what ran, the status says not all did.
    let failed = r
        .rows
        .iter()
        .filter(|row| {
            row.failed
                .as_deref()
                .is_some_and(|f| f.starts_with("failed"))
        })
        .count();
    if failed > 0 {
        eprintln!(
            "ablate: {} failed (see the report); exit status 3",
            ainrnn::text::count(failed as u64, "row")
        );
    }
    Ok(super::partial(failed > 0))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::cli::{Cli, Command};

    /// Every option and argument of every command has a help line (`--help` showed bare flags
    /// such as `synth --users`).
    #[test]
    fn every_argument_has_help() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in c.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&crate::cli::command(), "ainrnn", &mut missing);
        assert!(missing.is_empty(), "no help: {missing:?}");
    }

    /// `train ARGS` parsed and applied as `run_train` does.
    fn options(args: &[&str]) -> TrainOptions {
        let argv = [&["ainrnn", "train", "--data", "d.h5"], args].concat();
        let m = Cli::command().try_get_matches_from(argv).unwrap();
        let cli = Cli::from_arg_matches(&m).unwrap();
        let Command::Train(a) = cli.command else {
            unreachable!()
        };
        let mut o = TrainOptions::new(a.data, a.model, a.out);
        a.training.apply(&mut o, m.subcommand_matches("train"));
        o
    }

    #[test]
    fn cli_defaults_are_the_librarys() {
        let lib = TrainOptions::new("d.h5".into(), ModelKind::Ainrnn, "model.ckpt".into());
        let cli = options(&[]);
        assert_eq!(cli.fixed_settings(), lib.fixed_settings());
        assert_eq!((cli.epochs, cli.patience), (lib.epochs, lib.patience));
        assert_eq!(cli.ensemble, lib.ensemble);
    }

    #[test]
    fn ensemble_flag_is_auto_or_a_member_count() {
        assert_eq!(options(&[]).ensemble, None);
        assert_eq!(options(&["--ensemble", "auto"]).ensemble, None);
        assert_eq!(options(&["--ensemble", "5"]).ensemble, Some(5));
        assert_eq!(options(&["--paper"]).ensemble, Some(1));
        assert_eq!(options(&["--paper", "--ensemble", "3"]).ensemble, Some(3));
        let o = options(&[]);
        assert_eq!((o.members(1_000), o.members(5_000)), (3, 1));
        for bad in ["0", "17", "x"] {
            let e = Cli::command()
                .try_get_matches_from(["ainrnn", "train", "--data", "d", "--ensemble", bad])
                .unwrap_err()
                .to_string();
            assert!(e.contains("--ensemble") && e.contains("auto"), "{e}");
        }
    }

    #[test]
    fn paper_sets_the_papers_settings_and_given_flags_win() {
        let p = options(&["--paper"]);
        assert_eq!((p.lr, p.dropout, p.epochs, p.patience), (5e-4, 0.5, 75, 0));
        assert_eq!((p.hidden, p.emb, p.batch, p.neighbours), (64, 64, 64, 0));
        let p = options(&["--paper", "--lr", "0.002", "--neighbours", "50"]);
        assert_eq!((p.lr, p.neighbours, p.dropout), (0.002, 50, 0.5));
        // AINRNN: a plain stack by default, the paper's dense connections with --paper, and
        // --connection wins over both.
        use ainrnn::model::Connection;
        assert_eq!(options(&[]).connection(), Connection::Plain);
        assert_eq!(options(&["--paper"]).connection(), Connection::Dense);
        let p = options(&["--paper", "--connection", "gated"]);
        assert_eq!(p.connection(), Connection::Gated);
        for model in ["indrnn", "lstm"] {
            for paper in [&[][..], &["--paper"][..]] {
                let o = options(&[&["--model", model][..], paper].concat());
                assert_eq!(o.connection(), Connection::Plain, "{model} {paper:?}");
            }
        }
        let e = Cli::command()
            .try_get_matches_from(["ainrnn", "train", "--data", "d", "--paper", "--resume"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--paper") && e.contains("--resume"), "{e}");
    }

    #[test]
    fn similarity_flag_is_auto_cosine_or_three_numbers() {
        assert_eq!(options(&[]).similarity, None);
        assert_eq!(options(&["--similarity", "auto"]).similarity, None);
        let c = options(&["--similarity", "cosine"]).similarity;
        assert_eq!(c, Some(ainrnn::model::neighbours::Similarity::COSINE));
        let s = options(&["--similarity", "0.7,2,0.5"]).similarity.unwrap();
        assert_eq!((s.alpha, s.shrink, s.power), (0.7, 2.0, 0.5));
        let e = Cli::command()
            .try_get_matches_from(["ainrnn", "train", "--data", "d", "--similarity", "2,0,0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--similarity") && e.contains("alpha"), "{e}");
    }
}
