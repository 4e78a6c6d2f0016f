//! `ainrnn prepare`: listening data + song knowledge + profiles → one `dataset.h5`.
//!
//! Filtering ([`filter`]): users with fewer than `min_listens` listens and songs with fewer than
//! `min_song_users` users are dropped, repeatedly, until neither rule drops anything (dropping a
//! song can take a user below the minimum and the other way round), so the written dataset
//! satisfies both rules. A "listen" here is a (user, song) record, i.e. a distinct song in the
//! user's history, not a play: the model reads histories of songs, and a test user needs at least
//! two songs to have both a visible history and a held-out truth. Users and songs left without
//! interactions are always dropped. Ids are then remapped to dense indices in order of first
//! appearance, and the mapping is stored.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Serialize;

use super::catalog::Catalog;
use super::dataset::{Dataset, SongMeta};
use super::diag::FileReport;
use super::features;
use super::folds;
use super::hetrec;
use super::interactions::Interactions;
use super::metadata;
use super::msd;
use super::portrait::{self, SongLabels};
use super::profiles;
use super::stats::{self, Stats};
use super::terms;
use super::triplets;
use super::vectors::{self, Block};
use super::{DataError, DataResult};
use crate::io::features_h5::read_song_table;

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
            output,
        }
    }
}

/// One filtering step and what it dropped.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FilterStep {
    pub rule: String,
    pub users_dropped: usize,
    pub songs_dropped: usize,
    pub interactions_dropped: usize,
    pub users: usize,
    pub songs: usize,
    pub interactions: usize,
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

/// Drops users and songs below the minimums until stable; see the module doc. Steps of the
/// first pass are always listed; later passes only when they drop something.
pub fn filter(
    x: Interactions,
    min_listens: u32,
    min_song_users: u32,
) -> (Interactions, Vec<FilterStep>) {
    let (users, songs) = (x.users(), x.songs());
    let min_l = min_listens.max(1) as usize;
    let min_s = min_song_users.max(1) as usize;
    let mut keep_user = vec![true; users];
    let mut keep_song = vec![true; songs];
    let mut per_user = vec![0usize; users];
    let mut per_song = vec![0usize; songs];
    // Recounts per-user and per-song interactions over kept users and songs; returns totals.
    let recount = |ku: &[bool], ks: &[bool], pu: &mut [usize], ps: &mut [usize]| {
        pu.fill(0);
        ps.fill(0);
        for u in (0..users).filter(|&u| ku[u]) {
            for r in x.row(u) {
                let s = x.indices[r] as usize;
                if ks[s] {
                    pu[u] += 1;
                    ps[s] += 1;
                }
            }
        }
        (
            ku.iter().filter(|&&k| k).count(),
            ks.iter().filter(|&&k| k).count(),
            pu.iter().sum::<usize>(),
        )
    };
    let mut totals = recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
    let mut steps = Vec::new();
    for pass in 1.. {
        // Users below the minimum; songs left without users go with them.
        let before = totals;
        for u in 0..users {
            keep_user[u] &= per_user[u] >= min_l;
        }
        recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
        for s in 0..songs {
            keep_song[s] &= per_song[s] > 0;
        }
        totals = recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
        let dropped_a = totals != before;
        if pass == 1 || dropped_a {
            steps.push(step(
                format!("pass {pass}: users with fewer than {min_l} songs"),
                before,
                totals,
            ));
        }
        // Songs below the minimum; users left without songs go with them.
        let before = totals;
        for s in 0..songs {
            keep_song[s] &= per_song[s] >= min_s;
        }
        recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
        for u in 0..users {
            keep_user[u] &= per_user[u] > 0;
        }
        totals = recount(&keep_user, &keep_song, &mut per_user, &mut per_song);
        let dropped_b = totals != before;
        if pass == 1 || dropped_b {
            steps.push(step(
                format!("pass {pass}: songs with fewer than {min_s} users"),
                before,
                totals,
            ));
        }
        let users_ok = (0..users).all(|u| !keep_user[u] || per_user[u] >= min_l);
        if users_ok || !(dropped_a || dropped_b) {
            break;
        }
    }
    // Dense remap in order of first appearance.
    let mut song_map = vec![u32::MAX; songs];
    let mut song_ids = Vec::new();
    let mut user_ids = Vec::new();
    let mut indptr = vec![0u64];
    let mut indices = Vec::new();
    let mut plays = Vec::new();
    for u in (0..users).filter(|&u| keep_user[u]) {
        for r in x.row(u) {
            let s = x.indices[r] as usize;
            if !keep_song[s] {
                continue;
            }
            if song_map[s] == u32::MAX {
                song_map[s] = song_ids.len() as u32;
                song_ids.push(x.song_ids[s].clone());
            }
            indices.push(song_map[s]);
            plays.push(x.plays[r]);
        }
        user_ids.push(x.user_ids[u].clone());
        indptr.push(indices.len() as u64);
    }
    (
        Interactions {
            user_ids,
            song_ids,
            indptr,
            indices,
            plays,
            duplicates_merged: x.duplicates_merged,
        },
        steps,
    )
}

fn step(rule: String, before: (usize, usize, usize), after: (usize, usize, usize)) -> FilterStep {
    FilterStep {
        rule,
        users_dropped: before.0 - after.0,
        songs_dropped: before.1 - after.1,
        interactions_dropped: before.2 - after.2,
        users: after.0,
        songs: after.1,
        interactions: after.2,
    }
}

fn check_options(o: &PrepareOptions) -> DataResult<()> {
    if o.folds < 2 {
        return Err(DataError::Invalid {
            option: "--folds",
            reason: format!("{} folds: cross-validation needs at least 2", o.folds),
        });
    }
    if !(0.0..=1.0).contains(&o.visible_share) {
        return Err(DataError::Invalid {
            option: "--visible-share",
            reason: format!("{} is not a share between 0 and 1", o.visible_share),
        });
    }
    Ok(())
}

/// Runs the whole stage and writes `o.output`. Human progress goes to `log` (stderr in the CLI).
pub fn prepare(o: &PrepareOptions, log: &mut dyn FnMut(&str)) -> DataResult<PrepareReport> {
    check_options(o)?;
    crate::io::check_output(&o.output)?;
    let mut inputs: Vec<FileReport> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // 1. Interactions.
    let (raw, source, hetrec_names) = match &o.input {
        Input::Triplets(p) => {
            log(&format!("reading triplets {}", p.display()));
            let t = triplets::read_triplets(p, o.strict)?;
            inputs.push(t.report);
            let source = match t.synthetic {
                // The header starts with "synthetic": it is the source label as it stands.
                Some(h) => {
                    notes.push(format!("the input is SYNTHETIC data: {h}"));
                    h
                }
                None => "taste-profile".to_string(),
            };
            (t.interactions, source, None)
        }
        Input::Hetrec {
            user_artists,
            artists,
        } => {
            log(&format!("reading HetRec {}", user_artists.display()));
            let h = hetrec::read_user_artists(user_artists, o.strict)?;
            inputs.push(h.report);
            let artists = artists
                .clone()
                .or_else(|| hetrec::artists_beside(user_artists));
            let names = match artists {
                Some(a) => {
                    let (names, rep) = hetrec::read_artists(&a, o.strict)?;
                    inputs.push(rep);
                    Some(names)
                }
                None => {
                    notes.push(
                        "no artists.dat beside user_artists.dat and no --artists: artist names are empty"
                            .into(),
                    );
                    None
                }
            };
            (h.interactions, "hetrec-lastfm-2k".to_string(), names)
        }
    };
    let input_path = match &o.input {
        Input::Triplets(p) => p.clone(),
        Input::Hetrec { user_artists, .. } => user_artists.clone(),
    };
    for r in &inputs {
        log(&r.render_problems());
    }
    if raw.is_empty() {
        return Err(DataError::Empty(format!(
            "{}: no valid interactions ({} lines read, {} rejected)",
            input_path.display(),
            inputs[0].lines,
            inputs[0].malformed
        )));
    }
    let read = ReadSummary {
        users: raw.users(),
        songs: raw.songs(),
        interactions: raw.len(),
        plays: raw.total_plays().round() as u64,
        duplicates_merged: raw.duplicates_merged,
    };
    if raw.duplicates_merged > 0 {
        notes.push(format!(
            "{} repeated (user, song) records were merged into their first occurrence (plays summed)",
            raw.duplicates_merged
        ));
    }
    log(&format!(
        "read {} users, {} songs, {} interactions, {} plays",
        read.users, read.songs, read.interactions, read.plays
    ));

    // 2. Filters.
    let (x, filters) = filter(raw, o.min_listens, o.min_song_users);
    for f in &filters {
        log(&format!(
            "filter {}: dropped {} users, {} songs, {} interactions -> {} users, {} songs, {} interactions",
            f.rule, f.users_dropped, f.songs_dropped, f.interactions_dropped, f.users, f.songs, f.interactions
        ));
    }
    if x.is_empty() {
        return Err(DataError::Empty(format!(
            "no interactions left after filtering (min listens {}, min song users {}); lower the minimums",
            o.min_listens, o.min_song_users
        )));
    }

    // 3. Song knowledge for the kept songs.
    let wanted: HashSet<&str> = x.song_ids.iter().map(String::as_str).collect();
    let mut catalog = Catalog::new();
    if let Some(m) = &o.msd {
        log(&format!("reading MSD HDF5 {}", m.display()));
        let (songs, rep) = msd::read_msd(m, &|id| wanted.contains(id), o.strict)?;
        log(&rep.render_problems());
        inputs.push(rep);
        songs.into_iter().for_each(|s| catalog.add_msd(s));
    }
    if let Some(csv) = &o.metadata {
        log(&format!("reading MSD subset CSV {}", csv.display()));
        let (songs, rep) = metadata::read_subset_csv(csv, o.strict)?;
        log(&rep.render_problems());
        inputs.push(rep);
        songs
            .into_iter()
            .filter(|s| wanted.contains(s.song_id.as_str()))
            .for_each(|s| catalog.add_subset(s));
    }
    let terms_path = o.artist_terms.clone().or_else(|| {
        o.metadata
            .as_deref()
            .and_then(|m| metadata::beside(m, "subset_artist_term.csv"))
    });
    if let Some(p) = terms_path {
        log(&format!("reading artist terms {}", p.display()));
        let (map, rep) = metadata::read_artist_terms(&p, "artist terms", o.strict)?;
        log(&rep.render_problems());
        inputs.push(rep);
        catalog.add_artist_terms(map);
    }
    let mbtags_path = o.artist_mbtags.clone().or_else(|| {
        o.metadata
            .as_deref()
            .and_then(|m| metadata::beside(m, "subset_artist_mbtag.csv"))
    });
    if let Some(p) = mbtags_path {
        log(&format!("reading artist MusicBrainz tags {}", p.display()));
        let (map, rep) = metadata::read_artist_terms(&p, "artist mbtags", o.strict)?;
        log(&rep.render_problems());
        inputs.push(rep);
        catalog.add_artist_mbtags(map);
    }

    let songs = x.songs();
    let mut song_meta = Vec::with_capacity(songs);
    let mut labels = SongLabels {
        genre: Vec::with_capacity(songs),
        language: Vec::with_capacity(songs),
    };
    let mut msd_rows: Vec<Option<Vec<f64>>> = Vec::with_capacity(songs);
    let (mut with_record, mut with_segments) = (0, 0);
    for id in &x.song_ids {
        if let Some(names) = &hetrec_names {
            // HetRec items are artists: the name is both title and artist; its writing system is
            // the only language evidence.
            let name = names.get(id).cloned().unwrap_or_default();
            labels
                .language
                .push(terms::song_language("", &name, std::iter::empty(), ""));
            labels.genre.push(None);
            song_meta.push(SongMeta {
                title: name.clone(),
                artist: name,
                ..SongMeta::unknown()
            });
            msd_rows.push(None);
            continue;
        }
        let f = catalog.facts(id);
        if let Some(r) = f.record {
            with_record += 1;
            with_segments += r.segments.is_some() as usize;
            msd_rows.push(Some(vectors::msd_row(r)));
        } else {
            msd_rows.push(None);
        }
        labels.genre.push(f.genre);
        labels.language.push(f.language);
        song_meta.push(f.meta);
    }
    if (o.msd.is_some() || o.metadata.is_some()) && with_record == 0 {
        notes.push(format!(
            "none of the {songs} songs was found in the MSD inputs (joined by song_id)"
        ));
    }

    // 4. Portraits.
    let profile_map = match &o.profiles {
        Some(p) => {
            log(&format!("reading profiles {}", p.display()));
            let (m, rep) = profiles::read_profiles(p, o.strict)?;
            log(&rep.render_problems());
            inputs.push(rep);
            Some(m)
        }
        None => None,
    };
    let (portraits, matched) = portrait::build(
        &x.user_ids,
        &x.indptr,
        &x.indices,
        &x.plays,
        &labels,
        profile_map.as_ref(),
    );
    if let Some(m) = &profile_map {
        let msg = format!(
            "profiles: {matched} of {} users matched one of {} profile ids",
            x.users(),
            m.len()
        );
        if matched == 0 {
            notes.push(format!(
                "{msg}; the profile ids belong to another id space (e.g. Last.fm-360K vs Taste Profile), so every age bucket is \"unknown\""
            ));
        } else {
            notes.push(msg);
        }
    }

    // 5. Song vectors.
    let mut blocks = vec![Block {
        tag: "msd",
        names: vectors::msd_names(),
        rows: msd_rows,
    }];
    let (mut audio_read, mut audio_joined) = (None, None);
    if let Some(fp) = &o.features {
        log(&format!("reading audio features {}", fp.display()));
        let a = read_song_table(fp)?;
        let track_ids: Vec<String> = song_meta.iter().map(|m| m.track_id.clone()).collect();
        let join = features::join(&a, &x.song_ids, &track_ids);
        let joined = join.iter().filter(|j| j.is_some()).count();
        audio_read = Some(a.ids.len());
        audio_joined = Some(joined);
        notes.push(format!(
            "audio features: {joined} of {songs} songs joined one of {} vectors (by song id or track id)",
            a.ids.len()
        ));
        blocks.push(Block {
            tag: "audio",
            names: a.names.clone(),
            rows: join
                .iter()
                .map(|j| j.map(|i| a.row(i).iter().map(|&v| v as f64).collect()))
                .collect(),
        });
    }
    let song_vectors = vectors::assemble(songs, blocks);

    // 6. Folds, then write.
    let user_fold = folds::assign_folds(x.users(), o.folds, o.seed);
    let visible = folds::assign_visible(&x.user_ids, &x.indptr, o.visible_share, o.seed);
    let joins = JoinSummary {
        songs_with_record: with_record,
        songs_with_segments: with_segments,
        songs_with_genre: labels.genre.iter().filter(|g| g.is_some()).count(),
        songs_with_language: labels.language.iter().filter(|&&l| l != 0).count(),
        profiles_read: profile_map.as_ref().map(|m| m.len()),
        users_with_profile: profile_map.as_ref().map(|_| matched),
        audio_vectors_read: audio_read,
        songs_with_audio: audio_joined,
    };
    let dataset = Dataset {
        source,
        user_ids: x.user_ids,
        song_ids: x.song_ids,
        song_meta,
        indptr: x.indptr,
        indices: x.indices,
        plays: x.plays,
        folds: o.folds,
        user_fold,
        visible,
        portrait: portraits,
        song_vectors,
        seed: o.seed,
        visible_share: o.visible_share,
        min_listens: o.min_listens,
        min_song_users: o.min_song_users,
    };
    log(&format!("writing {}", o.output.display()));
    dataset.save(&o.output)?;
    let malformed = inputs.iter().map(|r| r.malformed).sum();
    Ok(PrepareReport {
        stats: stats::compute(&dataset),
        output: o.output.clone(),
        read,
        filters,
        joins,
        malformed,
        inputs,
        notes,
    })
}
