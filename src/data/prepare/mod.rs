//! `ainrnn prepare`: listening data + song knowledge + profiles → one `dataset.h5`.
//!
//! Filtering ([`filter()`]): users with fewer than `min_listens` listens and songs with fewer than
//! `min_song_users` users are dropped, repeatedly, until neither rule drops anything (dropping a
//! song can take a user below the minimum and the other way round), so the written dataset
//! satisfies both rules. A "listen" here is a (user, song) record, i.e. a distinct song in the
//! user's history, not a play: the model reads histories of songs, and a test user needs at least
//! two songs to have both a visible history and a held-out truth. Users and songs left without
//! interactions are always dropped. Ids are then remapped to dense indices in order of first
//! appearance, and the mapping is stored.
//!
//! One file per step, in order: `read.rs` (interactions), `filter.rs`, `songs.rs` (song
//! knowledge), `portraits.rs`, `song_vectors.rs`; the folds and the write are here.

mod filter;
mod portraits;
mod read;
mod song_vectors;
mod songs;

use std::path::PathBuf;

use serde::Serialize;

use super::diag::FileReport;
use super::folds;
use super::stats::{self, Stats};
use super::{hetrec, metadata, DataError, DataResult, Dataset};

pub use filter::{filter, FilterStep};

/// Default `--min-listens`: every kept user has a visible and a held-out song when tested. The
/// paper's 100 listening records would leave no user of the bundled Taste-Profile sample (none
/// has more than 48 songs; see data/README.md).
pub const DEFAULT_MIN_LISTENS: u32 = 2;
/// Default `--min-song-users`: a song heard by one user only cannot be learnt from others.
pub const DEFAULT_MIN_SONG_USERS: u32 = 2;

#[derive(Clone, Debug)]
pub enum Input {
    /// Taste-Profile-style triplets (or `ainrnn synth` output).
    Triplets(PathBuf),
    /// HetRec `user_artists.dat`, with `artists.dat` for names (default: beside it).
    Hetrec {
        user_artists: PathBuf,
        artists: Option<PathBuf>,
    },
}

#[derive(Clone, Debug)]
pub struct PrepareOptions {
    pub input: Input,
    /// MSD per-track/aggregate/summary `.h5` file or a directory tree of them.
    pub msd: Option<PathBuf>,
    /// MSD subset CSV (`subset_10k.csv`).
    pub metadata: Option<PathBuf>,
    /// `artist_id,term` table; default: `subset_artist_term.csv` beside `metadata`.
    pub artist_terms: Option<PathBuf>,
    /// `artist_id,mbtag` table; default: `subset_artist_mbtag.csv` beside `metadata`.
    pub artist_mbtags: Option<PathBuf>,
    /// Last.fm-360K profile TSV.
    pub profiles: Option<PathBuf>,
    /// Audio stage `features.h5`.
    pub features: Option<PathBuf>,
    pub min_listens: u32,
    pub min_song_users: u32,
    pub folds: u32,
    pub seed: u64,
    pub visible_share: f64,
    pub strict: bool,
    /// Refuse more folds than users left after filtering (every fold then has a test user).
    /// The CLI sets it; when unset, as many folds as there are users are made, with a note
    /// (`PrepareReport::notes`): a dataset with a fold of no user does not load.
    pub user_per_fold: bool,
    pub output: PathBuf,
}

impl PrepareOptions {
    pub fn new(input: Input, output: PathBuf) -> Self {
        PrepareOptions {
            input,
            msd: None,
            metadata: None,
            artist_terms: None,
            artist_mbtags: None,
            profiles: None,
            features: None,
            min_listens: DEFAULT_MIN_LISTENS,
            min_song_users: DEFAULT_MIN_SONG_USERS,
            folds: 10,
            seed: 42,
            visible_share: 0.5,
            strict: false,
            user_per_fold: false,
            output,
        }
    }
}

impl PrepareOptions {
    /// The HetRec `artists.dat` read for names: `--artists`, else the one beside
    /// `user_artists.dat`; `None` for triplets.
    pub fn artists_file(&self) -> Option<PathBuf> {
        match &self.input {
            Input::Hetrec {
                user_artists,
                artists,
            } => artists
                .clone()
                .or_else(|| hetrec::artists_beside(user_artists)),
            Input::Triplets(_) => None,
        }
    }

    /// The artist-terms table read: `artist_terms`, else `subset_artist_term.csv` beside
    /// `metadata`.
    pub fn artist_terms_file(&self) -> Option<PathBuf> {
        self.artist_terms.clone().or_else(|| {
            self.metadata
                .as_deref()
                .and_then(|m| metadata::beside(m, "subset_artist_term.csv"))
        })
    }

    /// The MusicBrainz-tags table read: `artist_mbtags`, else `subset_artist_mbtag.csv` beside
    /// `metadata`.
    pub fn artist_mbtags_file(&self) -> Option<PathBuf> {
        self.artist_mbtags.clone().or_else(|| {
            self.metadata
                .as_deref()
                .and_then(|m| metadata::beside(m, "subset_artist_mbtag.csv"))
        })
    }

    /// Files the run reads that no option names (found beside a named file), with what they
    /// are; the `--msd` folder's files are [`crate::data::msd::list_h5`]. An output must not
    /// be one of these either: writing it would destroy the input.
    pub fn implicit_inputs(&self) -> Vec<(&'static str, PathBuf)> {
        let mut out = Vec::new();
        if let (Input::Hetrec { artists: None, .. }, Some(p)) = (&self.input, self.artists_file()) {
            out.push(("artists.dat found beside the --hetrec file", p));
        }
        if let (None, Some(p)) = (&self.artist_terms, self.artist_terms_file()) {
            out.push(("artist-terms table found beside the --metadata file", p));
        }
        if let (None, Some(p)) = (&self.artist_mbtags, self.artist_mbtags_file()) {
            out.push(("artist-mbtags table found beside the --metadata file", p));
        }
        out
    }

    /// Every file the run reads, with the flag that names it (or what it is, for the
    /// [`implicit_inputs`](Self::implicit_inputs)), and the `--msd` folder's files when the
    /// output already exists (only an existing file can be one of them: a new output spares
    /// the walk of a large tree).
    pub fn inputs(&self) -> Vec<(&'static str, PathBuf)> {
        let mut out = match &self.input {
            Input::Triplets(t) => vec![("--triplets", t.clone())],
            Input::Hetrec {
                user_artists,
                artists,
            } => {
                let mut v = vec![("--hetrec", user_artists.clone())];
                v.extend(artists.clone().map(|a| ("--artists", a)));
                v
            }
        };
        let named = [
            ("--msd", &self.msd),
            ("--metadata", &self.metadata),
            ("--artist-terms", &self.artist_terms),
            ("--artist-mbtags", &self.artist_mbtags),
            ("--profiles", &self.profiles),
            ("--features", &self.features),
        ];
        out.extend(
            named
                .into_iter()
                .filter_map(|(flag, p)| p.clone().map(|p| (flag, p))),
        );
        out.extend(self.implicit_inputs());
        if let Some(m) = self.msd.as_deref().filter(|m| m.is_dir()) {
            if self.output.is_file() {
                out.extend(
                    super::msd::list_h5(m)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|p| ("MSD file found in the --msd folder", p)),
                );
            }
        }
        out
    }

    /// Refuses an output that is one of the run's [`inputs`](Self::inputs): writing it would
    /// destroy the input. [`prepare()`] checks it first; a caller can check it before taking
    /// the output's lock.
    pub fn check_output_is_not_an_input(&self) -> DataResult<()> {
        for (what, p) in self.inputs() {
            if let Some(reason) = crate::io::paths::overwrites_input(&self.output, what, &p) {
                return Err(DataError::Invalid {
                    option: "--output",
                    reason,
                });
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ReadSummary {
    pub users: usize,
    pub songs: usize,
    pub interactions: usize,
    pub plays: u64,
    pub duplicates_merged: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct JoinSummary {
    /// Songs of the dataset with an MSD record (HDF5 or subset CSV).
    pub songs_with_record: usize,
    /// ... of which with segment statistics (per-track or aggregate HDF5).
    pub songs_with_segments: usize,
    pub songs_with_genre: usize,
    pub songs_with_language: usize,
    /// Profiles read, and dataset users found among them.
    pub profiles_read: Option<usize>,
    pub users_with_profile: Option<usize>,
    /// Audio vectors read, and dataset songs that got one.
    pub audio_vectors_read: Option<usize>,
    pub songs_with_audio: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PrepareReport {
    /// Statistics of the written file (the same object `ainrnn stats --json` prints).
    #[serde(flatten)]
    pub stats: Stats,
    pub output: PathBuf,
    pub read: ReadSummary,
    pub filters: Vec<FilterStep>,
    pub joins: JoinSummary,
    /// Rejected lines over all inputs.
    pub malformed: usize,
    /// Per input file: lines read, accepted, blank, skipped, rejected, first rejected lines.
    pub inputs: Vec<FileReport>,
    /// Human notes (what was assumed, what did not join).
    pub notes: Vec<String>,
}

fn check_options(o: &PrepareOptions) -> DataResult<()> {
    if o.folds < 2 {
        return Err(DataError::Invalid {
            option: "--folds",
            reason: format!("{} folds: cross-validation needs at least 2", o.folds),
        });
    }
    // Artist tables join songs by the artist_id of their MSD record: without an MSD input no
    // song has one, and the table would be read for nothing.
    if o.metadata.is_none() && o.msd.is_none() {
        for (option, file) in [
            ("--artist-terms", &o.artist_terms),
            ("--artist-mbtags", &o.artist_mbtags),
        ] {
            if let Some(f) = file {
                return Err(DataError::Invalid {
                    option,
                    reason: format!(
                        "{} goes with --metadata or --msd: its rows are joined to songs by the artist_id of their MSD record, and without either no song has one",
                        f.display()
                    ),
                });
            }
        }
    }
    if !(0.0..=1.0).contains(&o.visible_share) {
        return Err(DataError::Invalid {
            option: "--visible-share",
            reason: format!("{} is not a share between 0 and 1", o.visible_share),
        });
    }
    Ok(())
}

/// What the steps share: the options, the log, and the input reports and notes they add.
struct Run<'a> {
    o: &'a PrepareOptions,
    log: &'a mut dyn FnMut(&str),
    inputs: Vec<FileReport>,
    notes: Vec<String>,
}

impl Run<'_> {
    /// Logs a side input's rejected lines and keeps its report; an error when nothing in it
    /// was valid ([`FileReport::nothing_accepted`]).
    fn side_input(&mut self, rep: FileReport) -> DataResult<()> {
        (self.log)(&rep.render_problems());
        if let Some(e) = rep.nothing_accepted() {
            return Err(e);
        }
        self.inputs.push(rep);
        Ok(())
    }
}

/// Runs the whole stage and writes `o.output`. Human progress goes to `log` (stderr in the CLI).
pub fn prepare(o: &PrepareOptions, log: &mut dyn FnMut(&str)) -> DataResult<PrepareReport> {
    check_options(o)?;
    o.check_output_is_not_an_input()?;
    crate::io::check_output(&o.output)?;
    let mut run = Run {
        o,
        log,
        inputs: Vec::new(),
        notes: Vec::new(),
    };
    let (raw, input) = run.read_interactions()?;
    let (x, filters) = run.apply_filters(raw)?;
    let mut songs = run.song_facts(&x, input.hetrec_names.as_ref())?;
    let portraits = run.portraits(&x, &songs.labels)?;
    let msd_rows = std::mem::take(&mut songs.msd_rows);
    let vectors = run.song_vectors(&x, &songs.meta, msd_rows)?;

    // Folds, then write. Every fold needs a test user (a dataset with more folds than users
    // does not load).
    let mut folds = o.folds;
    if o.folds as usize > x.users() && !o.user_per_fold {
        folds = x.users().max(1) as u32;
        run.notes.push(format!(
            "{} folds asked for {} users: {folds} made (each fold needs a user)",
            o.folds,
            x.users()
        ));
    } else if o.folds as usize > x.users() {
        return Err(DataError::Invalid {
            option: "--folds",
            reason: format!(
                "{} folds but only {} users are left after filtering: each fold needs at least one user ({})",
                o.folds,
                x.users(),
                if x.users() >= 2 {
                    format!("use --folds {} or fewer", x.users())
                } else {
                    "cross-validation needs at least 2 users; lower --min-listens or --min-song-users, or give more data".into()
                }
            ),
        });
    }
    let user_fold = folds::assign_folds(x.users(), folds, o.seed);
    let visible = folds::assign_visible(&x.user_ids, &x.indptr, o.visible_share, o.seed);
    let joins = JoinSummary {
        songs_with_record: songs.with_record,
        songs_with_segments: songs.with_segments,
        songs_with_genre: songs.labels.genre.iter().filter(|g| g.is_some()).count(),
        songs_with_language: songs.labels.language.iter().filter(|&&l| l != 0).count(),
        profiles_read: portraits.profiles_read,
        users_with_profile: portraits.matched,
        audio_vectors_read: vectors.read,
        songs_with_audio: vectors.joined,
    };
    let dataset = Dataset {
        source: input.source,
        user_ids: x.user_ids,
        song_ids: x.song_ids,
        song_meta: songs.meta,
        indptr: x.indptr,
        indices: x.indices,
        plays: x.plays,
        folds,
        user_fold,
        visible,
        portrait: portraits.portraits,
        song_vectors: vectors.vectors,
        seed: o.seed,
        visible_share: o.visible_share + 0.0, // -0 is 0
        min_listens: o.min_listens,
        min_song_users: o.min_song_users,
    };
    (run.log)(&format!("writing {}", o.output.display()));
    dataset.save(&o.output)?;
    let malformed = run.inputs.iter().map(|r| r.malformed).sum();
    for r in &run.inputs {
        run.notes.extend(r.notes());
    }
    Ok(PrepareReport {
        stats: stats::compute(&dataset),
        output: o.output.clone(),
        read: input.read,
        filters,
        joins,
        malformed,
        inputs: run.inputs,
        notes: run.notes,
    })
}
