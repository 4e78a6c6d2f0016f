//! Arguments and wiring of the data subcommands: `prepare`, `synth`, `stats`, `bench data`.
//! The work is done in `ainrnn::data`; this file only turns arguments into options and results
//! into text (stderr) or one JSON object (stdout).

use crate::cli::usage;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{ArgGroup, Args};

use ainrnn::data::prepare::{self, Input, PrepareOptions};
use ainrnn::data::synth::SynthOptions;
use ainrnn::data::synth_audio::{self, AudioOptions};
use ainrnn::data::{stats, Dataset};

use super::{parse, paths, print_json};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("input").required(true).args(["triplets", "hetrec"])))]
pub struct PrepareArgs {
    /// Taste-Profile triplets `user<TAB>song<TAB>playcount` (or `ainrnn synth` output).
    #[arg(long, value_name = "FILE")]
    pub triplets: Option<PathBuf>,
    /// HetRec-2011 Last.fm-2K `user_artists.dat` (items are artists).
    #[arg(long, value_name = "FILE")]
    pub hetrec: Option<PathBuf>,
    /// HetRec `artists.dat` for names (default: beside `user_artists.dat`); only with --hetrec.
    #[arg(long, value_name = "FILE")]
    pub artists: Option<PathBuf>,
    /// MSD HDF5: a per-track file, an aggregate or summary file, or a directory tree of them.
    #[arg(long, value_name = "DIR_OR_H5")]
    pub msd: Option<PathBuf>,
    /// MSD subset CSV (e.g. subset_10k.csv); its artist-term tables are picked up beside it.
    #[arg(long, value_name = "CSV")]
    pub metadata: Option<PathBuf>,
    /// `artist_id,term` table (default: subset_artist_term.csv beside --metadata).
    #[arg(long, value_name = "CSV")]
    pub artist_terms: Option<PathBuf>,
    /// `artist_id,tag` MusicBrainz table (default: subset_artist_mbtag.csv beside --metadata).
    #[arg(long, value_name = "CSV")]
    pub artist_mbtags: Option<PathBuf>,
    /// Last.fm-360K user profiles TSV (user, gender, age, country, signup).
    #[arg(long, value_name = "TSV")]
    pub profiles: Option<PathBuf>,
    /// Audio song vectors from the audio stage (features.h5).
    #[arg(long, value_name = "H5")]
    pub features: Option<PathBuf>,
    /// Drop users with fewer distinct songs than this (a listen = a (user, song) record).
    #[arg(long, default_value_t = prepare::DEFAULT_MIN_LISTENS, value_parser = parse::int_at_least(0u32))]
    pub min_listens: u32,
    /// Drop songs with fewer users than this.
    #[arg(long, default_value_t = prepare::DEFAULT_MIN_SONG_USERS, value_parser = parse::int_at_least(0u32))]
    pub min_song_users: u32,
    /// Number of cross-validation folds (by user), at least 2 and at most the users kept.
    #[arg(long, default_value_t = 10, value_parser = parse::int_at_least(2u32))]
    pub folds: u32,
    /// Seed of the folds and of the visible/held-out choice.
    #[arg(long, default_value_t = 42, value_parser = parse::int_at_least(0u64))]
    pub seed: u64,
    /// Share of each test user's songs shown as visible history (the rest is held out).
    #[arg(long, default_value_t = 0.5, value_parser = parse::probability)]
    pub visible_share: f64,
    /// Stop at the first malformed line or unreadable file instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// The dataset file to write.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Synthetic users to generate (≥ 1; the paper's Taste-Profile subset: 82310).
    #[arg(long, value_parser = parse::positive_usize)]
    pub users: usize,
    /// Songs in the synthetic catalogue (≥ 1; the paper's: 359687). Songs nobody drew are not
    /// written.
    #[arg(long, value_parser = parse::positive_usize)]
    pub songs: usize,
    /// Mean number of distinct songs per user (≥ 1).
    #[arg(long, value_parser = parse::real_in(parse::End::Incl(1.0), parse::End::Inf))]
    pub mean_listens: f64,
    /// Seed of the generator: the same seed and sizes give the same file.
    #[arg(long, default_value_t = 42, value_parser = parse::int_at_least(0u64))]
    pub seed: u64,
    /// Latent taste clusters.
    #[arg(long, default_value_t = 20, value_parser = parse::positive_usize)]
    pub genres: usize,
    /// Zipf exponent of song popularity (≥ 0).
    #[arg(long, default_value_t = 1.0, value_parser = parse::non_negative_f64)]
    pub zipf: f64,
    /// Probability that a listen ignores the user's taste.
    #[arg(long, default_value_t = 0.15, value_parser = parse::probability)]
    pub explore: f64,
    /// The triplets file to write (user, song, plays; tab-separated, like the Taste Profile).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
    /// Also write one SYNTHETIC generated clip per song, DIR/<song id>.wav (22,050 Hz mono
    /// 16-bit), whose harmony, timbre and rhythm follow the song's latent taste cluster, and
    /// DIR/README.txt saying so. DIR is created when missing. The triplets do not change.
    #[arg(long, value_name = "DIR")]
    pub audio: Option<PathBuf>,
    /// Length of each synthetic clip in seconds, in [0.2, 60] (default 3; needs --audio; `features` needs 0.19 s).
    #[arg(long, value_name = "S", requires = "audio", value_parser = parse::real_in(parse::End::Incl(synth_audio::MIN_CLIP_SECONDS), parse::End::Incl(synth_audio::MAX_CLIP_SECONDS)))]
    pub clip_seconds: Option<f64>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// A dataset file written by `ainrnn prepare`.
    pub dataset: PathBuf,
}

#[derive(Args, Debug)]
pub struct BenchDataArgs {
    /// Size of the synthetic triplet file in MB.
    #[arg(long, default_value_t = 300.0, value_parser = parse::positive_f64)]
    pub mb: f64,
    /// Folder for the temporary file (default: the system temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seed of the synthetic file's contents.
    #[arg(long, default_value_t = 42, value_parser = parse::int_at_least(0u64))]
    pub seed: u64,
}

pub fn run_prepare(a: PrepareArgs, json: bool) -> Result<()> {
    // clap's `requires = "hetrec"` let `--triplets … --artists F` through (the group `input` is
    // satisfied), and the file was then ignored.
    if let (Some(f), None) = (&a.artists, &a.hetrec) {
        usage!(
            "--artists {} goes with --hetrec (it names HetRec artists); with --triplets it would be ignored",
            f.display()
        );
    }
    let input = match (a.triplets.clone(), a.hetrec.clone()) {
        (Some(t), _) => Input::Triplets(t),
        (None, Some(h)) => Input::Hetrec {
            user_artists: h,
            artists: a.artists.clone(),
        },
        (None, None) => usage!("give --triplets FILE or --hetrec FILE"),
    };
    let mut o = PrepareOptions::new(input, a.output.clone());
    o.msd = a.msd.clone();
    o.metadata = a.metadata.clone();
    o.artist_terms = a.artist_terms.clone();
    o.artist_mbtags = a.artist_mbtags.clone();
    o.profiles = a.profiles.clone();
    o.features = a.features.clone();
    o.min_listens = a.min_listens;
    o.min_song_users = a.min_song_users;
    o.folds = a.folds;
    o.seed = a.seed;
    o.visible_share = a.visible_share;
    o.strict = a.strict;
    // Refused before the lock as well as in `prepare` (which checks every input, named or not).
    o.check_output_is_not_an_input()?;
    o.user_per_fold = true;
    let _lock = paths::lock_output("--output", &a.output)?;
    let report = prepare::prepare(&o, &mut |msg: &str| {
        let msg = msg.trim_end();
        if !msg.is_empty() {
            eprintln!("{msg}");
        }
    })
    .context("prepare failed")?;
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    if report.malformed > 0 {
        eprintln!(
            "skipped {} malformed record(s) in total (lines, or files of an --msd folder; see above; --strict makes them fatal)",
            report.malformed
        );
    }
    eprintln!("wrote {}", report.output.display());
    eprint!("{}", stats::render(&report.stats));
    if json {
        print_json(&report)?;
    }
    Ok(())
}

pub fn run_synth(a: SynthArgs, json: bool) -> Result<()> {
    let mut o = SynthOptions::new(a.users, a.songs, a.mean_listens);
    o.seed = a.seed;
    o.genres = a.genres;
    o.zipf = a.zipf;
    o.explore = a.explore;
    let audio = a.audio.map(|dir| AudioOptions {
        dir,
        clip_seconds: a.clip_seconds.unwrap_or(synth_audio::DEFAULT_CLIP_SECONDS),
    });
    if let Some(x) = &audio {
        if paths::canonical(&x.dir).is_some()
            && paths::canonical(&x.dir) == paths::canonical(&a.output)
        {
            anyhow::bail!(
                "--audio {} is the --output file: give the clips a folder of their own",
                x.dir.display()
            );
        }
        if x.dir.exists() && !x.dir.is_dir() {
            anyhow::bail!(
                "--audio {}: is a file; give a folder for the clips (created when missing)",
                x.dir.display()
            );
        }
    }
    let _lock = paths::lock_output("--output", &a.output)?;
    let r = synth_audio::synth_with_audio(&o, &a.output, audio.as_ref()).context("synth failed")?;
    eprintln!(
        "wrote SYNTHETIC triplets {}: {} users, {} songs ({} used), {} interactions, {} plays, {:.1} MB",
        a.output.display(),
        r.users,
        r.songs,
        r.songs_used,
        r.interactions,
        r.plays,
        r.bytes as f64 / 1e6
    );
    if let Some(dir) = &r.audio_dir {
        eprintln!(
            "wrote {} SYNTHETIC clips ({} s, 22,050 Hz mono) and README.txt into {dir}",
            r.clips,
            audio.as_ref().map_or(0.0, |x| x.clip_seconds)
        );
    }
    if json {
        print_json(&r)?;
    }
    Ok(())
}

pub fn run_stats(a: StatsArgs, json: bool) -> Result<()> {
    let d = Dataset::load(&a.dataset)?;
    let s = stats::compute(&d);
    if json {
        print_json(&s)?;
    } else {
        out!("{}", stats::render(&s));
    }
    Ok(())
}

pub fn run_bench(a: BenchDataArgs, json: bool) -> Result<()> {
    eprintln!(
        "bench data: writing a synthetic triplet file of about {} MB, then reading it",
        a.mb
    );
    let b = ainrnn::bench::data::run(a.mb, a.dir, a.seed)?;
    if json {
        print_json(&b)?;
    } else {
        out!("{}", ainrnn::bench::data::render(&b));
    }
    Ok(())
}
