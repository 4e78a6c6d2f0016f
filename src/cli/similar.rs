//! Arguments and wiring of `similar`. The work is in `ainrnn::eval::similar`.

use crate::cli::usage;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use ainrnn::backend::cpu::CpuBackend;
use ainrnn::backend::model_ops::ModelOps;
use ainrnn::backend::select::BackendChoice;
use ainrnn::eval::similar::{self, Measure, Seeds, Similar, SongFinder};
use ainrnn::model::neighbours::Similarity;
use ainrnn::with_backend;

use super::{parse, paths, print_json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ByArg {
    /// The same people play them: co-listening similarity over every user of the dataset.
    Listens,
    /// They are alike: cosine over the song vectors (MSD or audio features) and the genre.
    Content,
    /// What a trained model plays next after the seeds (needs --checkpoint).
    Model,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("seeds").required(true).args(["song", "all", "songs"])))]
pub struct SimilarArgs {
    /// The dataset file (from `ainrnn prepare`).
    #[arg(long, value_name = "H5")]
    pub data: PathBuf,
    /// A song: its id, its "artist - title", its title, or a part of "artist - title" that
    /// names one song (case and spacing ignored). Given again, the list is for the songs
    /// together.
    #[arg(long, value_name = "SONG")]
    pub song: Vec<String>,
    /// Every song of the catalogue, each list written to -o.
    #[arg(long, conflicts_with = "song")]
    pub all: bool,
    /// The songs a file names (one a line, an id or a name as --song takes; `#` comments),
    /// each list written to -o; a line naming no song, or several, is skipped and reported.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["song", "all"])]
    pub songs: Option<PathBuf>,
    /// What makes songs alike (default: model with --checkpoint, else listens). listens runs
    /// on the CPU; content (without --artist-weight) and model on the backend.
    #[arg(long, value_enum)]
    pub by: Option<ByArg>,
    /// The model of --by model (from `ainrnn train -o`).
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: Option<PathBuf>,
    /// With --all or --songs: the file to write, tab-separated with a header (song, rank,
    /// song_id, score, title, artist, genre), written atomically.
    #[arg(short = 'o', long, value_name = "TSV")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub list: super::model::ListFlags,
    /// --by listens: the co-listening similarity, `cosine` (default) or ALPHA,SHRINK,POWER as
    /// for `train`.
    #[arg(long, value_name = "S", value_parser = |s: &str| s.parse::<Similarity>())]
    pub similarity: Option<Similarity>,
    /// --by content: the weight of "same artist" beside the vectors and the genre (default 0:
    /// the artist does not count, so other artists' songs come forward).
    #[arg(long, value_name = "W", value_parser = parse::non_negative_f32)]
    pub artist_weight: Option<f32>,
}

pub fn run(a: SimilarArgs, choice: BackendChoice, json: bool) -> Result<std::process::ExitCode> {
    let by = a.by.unwrap_or(if a.checkpoint.is_some() {
        ByArg::Model
    } else {
        ByArg::Listens
    });
    // Flags the chosen measure would not read are refused, not ignored.
    let measure = match (by, a.checkpoint.as_deref()) {
        (ByArg::Model, Some(ckpt)) => Measure::Model(ckpt),
        (ByArg::Model, None) => {
            usage!("--by model ranks with a trained model: give --checkpoint CKPT")
        }
        (ByArg::Listens, _) => Measure::Listens(a.similarity.unwrap_or(Similarity::COSINE)),
        (ByArg::Content, _) => Measure::Content {
            artist_weight: a.artist_weight.unwrap_or(0.0),
        },
    };
    if a.checkpoint.is_some() && by != ByArg::Model {
        usage!(
            "--checkpoint is read by --by model only (--by {} needs no model)",
            measure.name()
        );
    }
    if a.similarity.is_some() && by != ByArg::Listens {
        usage!("--similarity is read by --by listens only");
    }
    if a.artist_weight.is_some() && by != ByArg::Content {
        usage!("--artist-weight is read by --by content only");
    }
    let many = match (a.all, &a.songs) {
        (true, _) => Some(Seeds::All),
        (false, Some(f)) => Some(Seeds::File(f)),
        (false, None) => None,
    };
    match (&many, &a.output) {
        (Some(_), None) => {
            usage!("--all and --songs write every list to a file: give -o FILE (tab-separated)")
        }
        (None, Some(_)) => usage!(
            "-o writes the lists of --all or --songs; --song prints its list on stdout (--json for JSON)"
        ),
        _ => {}
    }
    if let Some(out) = &a.output {
        let mut inputs = vec![("--data", a.data.as_path())];
        if let Some(c) = &a.checkpoint {
            inputs.push(("--checkpoint", c.as_path()));
        }
        if let Some(f) = &a.songs {
            inputs.push(("--songs", f.as_path()));
        }
        paths::refuse_overwriting_inputs("-o", out, &inputs)?;
    }
    let _lock = match &a.output {
        Some(out) => Some(paths::lock_output("-o", out)?),
        None => None,
    };
    if by == ByArg::Listens {
        // Sparse co-listens are host work: no device is opened for them.
        run_on(&CpuBackend::new(), &a, measure, many, json)
    } else {
        let sel = super::model::backend(choice)?;
        with_backend!(sel, b => run_on(&b, &a, measure, many, json))
    }
}

fn run_on<B: ModelOps>(
    b: &B,
    a: &SimilarArgs,
    measure: Measure<'_>,
    many: Option<Seeds<'_>>,
    json: bool,
) -> Result<std::process::ExitCode> {
    let mut s = Similar::open(b, &a.data, measure)?;
    match (many, &a.output) {
        (Some(seeds), Some(out)) => write_many(b, &mut s, a, seeds, out, measure, json),
        _ => one_list(b, &mut s, a, measure, json),
    }
}

/// `similar --song …`: one list, for the songs together, on stdout.
fn one_list<B: ModelOps>(
    b: &B,
    s: &mut Similar<B>,
    a: &SimilarArgs,
    measure: Measure<'_>,
    json: bool,
) -> Result<std::process::ExitCode> {
    let seeds: Vec<u32> = {
        let finder = SongFinder::new(s.dataset());
        a.song
            .iter()
            .map(|q| {
                finder
                    .find(q)
                    .map_err(|why| anyhow::anyhow!("--song {q:?} in {}: {why}", a.data.display()))
            })
            .collect::<Result<_>>()?
    };
    // A song named twice (by id and by name, say) is one seed.
    let mut seen = std::collections::HashSet::new();
    let seeds: Vec<u32> = seeds.into_iter().filter(|&i| seen.insert(i)).collect();
    let ds = s.dataset();
    let named: Vec<serde_json::Value> = seeds
        .iter()
        .map(|&i| {
            let m = &ds.song_meta[i as usize];
            serde_json::json!({
                "song_id": ds.song_ids[i as usize],
                "title": m.title,
                "artist": m.artist,
                "genre": m.genre,
            })
        })
        .collect();
    let names: Vec<String> = seeds
        .iter()
        .map(|&i| {
            let n = ds.song_meta[i as usize].name();
            let id = &ds.song_ids[i as usize];
            if n.is_empty() {
                id.clone()
            } else {
                format!("{n} ({id})")
            }
        })
        .collect();
    eprintln!("songs like {} by {}:", names.join(" + "), measure.name());
    let list = s
        .lists(
            b,
            std::slice::from_ref(&seeds),
            a.list.k,
            a.list.max_per_genre,
        )?
        .pop()
        .unwrap_or_default();
    if list.len() < a.list.k {
        eprintln!(
            "note: --k {}: {}",
            a.list.k,
            short_list_reason(measure, list.len())
        );
    }
    if json {
        print_json(&serde_json::json!({
            "data": a.data,
            "by": measure.name(),
            "checkpoint": a.checkpoint,
            "songs": named,
            "k": a.list.k,
            "max_per_genre": a.list.max_per_genre,
            "similarity": a.similarity.map(|s| s.to_string()),
            "artist_weight": a.artist_weight,
            "similar": list,
        }))?;
    } else {
        super::model::print_list(&list)?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Why a list has fewer songs than asked for.
fn short_list_reason(measure: Measure<'_>, n: usize) -> String {
    let found = ainrnn::text::count(n as u64, "song");
    match measure {
        Measure::Listens(_) => format!(
            "{found} share a listener with the seeds (songs nobody played beside them are not alike by listens; --by content compares what the songs are)"
        ),
        Measure::Content { .. } => format!(
            "{found} with content to compare (a song vector, a genre) within the limits given"
        ),
        Measure::Model(_) => format!("{found} can be listed within the limits given"),
    }
}

/// `similar --all | --songs FILE -o OUT`: every list into one tab-separated file, written
/// atomically; exit status 3 when lines of the songs file were skipped.
fn write_many<B: ModelOps>(
    b: &B,
    s: &mut Similar<B>,
    a: &SimilarArgs,
    seeds: Seeds<'_>,
    out: &std::path::Path,
    measure: Measure<'_>,
    json: bool,
) -> Result<std::process::ExitCode> {
    let bar = super::count_bar("songs");
    let mut progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let summary = similar::similar_songs_tsv(
        b,
        s,
        seeds,
        a.list.k,
        a.list.max_per_genre,
        out,
        &mut progress,
    )?;
    bar.finish_and_clear();
    let input = a
        .songs
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    super::model::report_skipped(&input, "song", &summary.skipped, json);
    if summary.repeated > 0 {
        eprintln!(
            "note: {input}: {} named again; each list is written once",
            ainrnn::text::count(summary.repeated as u64, "song")
        );
    }
    if summary.empty > 0 {
        eprintln!(
            "note: {} like no other song by {} (no row written): {}",
            ainrnn::text::count(summary.empty as u64, "song"),
            measure.name(),
            short_list_reason(measure, 0)
        );
    }
    eprintln!(
        "similar: the top {} by {} of {} written to {} in {:.1} s{}",
        a.list.k,
        measure.name(),
        ainrnn::text::count(summary.songs as u64, "song"),
        out.display(),
        summary.seconds,
        super::model::skipped_suffix(&input, summary.skipped.len())
    );
    if json {
        let skipped: Vec<serde_json::Value> = summary
            .skipped
            .iter()
            .map(|l| serde_json::json!({"line": l.line, "song": l.id, "reason": l.reason}))
            .collect();
        print_json(&serde_json::json!({
            "output": out,
            "data": a.data,
            "by": measure.name(),
            "checkpoint": a.checkpoint,
            "songs_file": a.songs,
            "k": a.list.k,
            "max_per_genre": a.list.max_per_genre,
            "similarity": a.similarity.map(|s| s.to_string()),
            "artist_weight": a.artist_weight,
            "songs": summary.songs,
            "empty": summary.empty,
            "skipped": skipped,
            "repeated": summary.repeated,
            "seconds": summary.seconds,
        }))?;
    }
    Ok(super::partial(!summary.skipped.is_empty()))
}
