//! Million Song Dataset HDF5 files: per-track files (`A/B/C/TR….h5`, one song each), aggregate
//! files (many songs, arrays concatenated with `idx_*` offsets) and the summary file (many songs,
//! the three compound tables only, no arrays).
//!
//! Read from the compound tables `/metadata/songs`, `/analysis/songs`, `/musicbrainz/songs`:
//! song and track ids, title, artist name, id and location, release, year, duration, tempo, key,
//! mode, loudness; from the arrays: `artist_terms` with `artist_terms_weight`, `artist_mbtags`
//! with counts, and `segments_timbre` (n × 12), `segments_pitches` (n × 12),
//! `segments_loudness_max` (n), of which the song vector keeps per-dimension means and standard
//! deviations ([`SegmentStats`]). Only the compound fields named in the row structs below are
//! read (HDF5 converts a compound to a subset of its members by name).
//!
//! The MSD stores strings as fixed-length "ASCII" that in practice hold UTF-8; they are decoded
//! leniently (invalid bytes become U+FFFD).

use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5::types::FixedAscii;
use hdf5::H5Type;

use super::diag::FileReport;
use super::plausible::{self, Finding};
use super::progress::Progress;
use crate::error::IoError;
use crate::io::h5::h5err;

#[derive(H5Type, Clone, Copy)]
#[repr(C)]
struct MetaRow {
    song_id: FixedAscii<64>,
    title: FixedAscii<1024>,
    artist_name: FixedAscii<1024>,
    artist_id: FixedAscii<64>,
    artist_location: FixedAscii<1024>,
    release: FixedAscii<1024>,
}

#[derive(H5Type, Clone, Copy)]
#[repr(C)]
struct AnalysisRow {
    track_id: FixedAscii<64>,
    duration: f64,
    tempo: f64,
    loudness: f64,
    key: i32,
    mode: i32,
}

#[derive(H5Type, Clone, Copy)]
#[repr(C)]
struct MusicbrainzRow {
    year: i32,
}

/// Means and standard deviations (population, over segments) of the segment features.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentStats {
    pub segments: usize,
    pub timbre_mean: [f64; 12],
    pub timbre_std: [f64; 12],
    pub pitch_mean: [f64; 12],
    pub pitch_std: [f64; 12],
    pub loudness_max_mean: f64,
    pub loudness_max_std: f64,
}

/// One song of an MSD file.
#[derive(Clone, Debug, PartialEq)]
pub struct MsdSong {
    pub song_id: String,
    pub track_id: String,
    pub title: String,
    pub artist_name: String,
    pub artist_id: String,
    pub artist_location: String,
    pub release: String,
    /// 0 = unknown (as in the MSD).
    pub year: u16,
    pub duration: f64,
    pub tempo: f64,
    pub loudness: f64,
    pub key: i32,
    pub mode: i32,
    /// Echo Nest artist terms with weights, highest weight first.
    pub terms: Vec<(String, f64)>,
    /// MusicBrainz tags with counts, as stored.
    pub mbtags: Vec<(String, i32)>,
    /// Segment statistics; `None` for the summary file (no arrays) or a song without segments.
    pub segments: Option<SegmentStats>,
}

fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(s)
        .trim_end_matches('\0')
        .trim()
        .to_string()
}

/// Offsets of row `i` in an array indexed by `idx` (the next row's offset, or the array end).
/// The most rows one song may take in a per-song array (terms, tags, segments). Real songs have
/// at most a few thousand segments; a larger span comes from damaged offsets or shapes and must
/// not size an allocation (1 Mi rows of 12 f64 = 96 MiB).
const MAX_SPAN: usize = 1 << 20;

fn span(
    idx: &[i32],
    i: usize,
    len: usize,
    path: &Path,
    field: &str,
) -> Result<Range<usize>, IoError> {
    let start = idx[i];
    let end = idx.get(i + 1).map_or(len as i64, |&e| e as i64);
    if start >= 0 && end - start as i64 > MAX_SPAN as i64 {
        return Err(IoError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason: format!(
                "song {i} claims {} rows (offsets {start}..{end}), more than {MAX_SPAN}: damaged",
                end - start as i64
            ),
        });
    }
    if start < 0 || (start as i64) > end || end > len as i64 {
        return Err(IoError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason: format!(
                "offsets {start}..{end} of song {i} lie outside the array of length {len}"
            ),
        });
    }
    Ok(start as usize..end as usize)
}

/// Reads every song of one MSD file (per-track, aggregate or summary) whose `song_id` passes
/// `wanted`; arrays are only read for wanted songs. Implausible values are taken as unknown
/// (`screen`).
pub fn read_msd_file(path: &Path, wanted: &dyn Fn(&str) -> bool) -> Result<Vec<MsdSong>, IoError> {
    read_msd_file_screened(path, wanted).map(|(songs, _)| songs)
}

/// A song id and the values of that song taken as unknown.
pub type SongFindings = (String, Vec<Finding>);

/// [`read_msd_file`], also returning, per song with any, the values taken as unknown.
pub fn read_msd_file_screened(
    path: &Path,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<(Vec<MsdSong>, Vec<SongFindings>), IoError> {
    let file = crate::io::h5::open_file(path).map_err(|e| h5err(path, "opening the file", e))?;
    if let Some(kind) = crate::io::h5::other_kind(&file, crate::io::h5::MSD_KIND) {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!("is {kind}, not an MSD file"),
        });
    }
    let open = |name: &str| {
        file.dataset(name).map_err(|e| IoError::Field {
            path: path.to_path_buf(),
            field: name.to_string(),
            reason: format!("missing or unreadable ({e}); is this an MSD file?"),
        })
    };
    let meta_ds = open("/metadata/songs")?;
    let ana_ds = open("/analysis/songs")?;
    let mb_ds = open("/musicbrainz/songs")?;
    let n = meta_ds.size();
    // Every row takes at least a byte of the file, even compressed: a larger count comes from
    // a damaged header and must not size an allocation.
    let file_len = std::fs::metadata(path)
        .map_err(|e| IoError::io(path, e))?
        .len() as usize;
    if n > file_len {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "/metadata/songs claims {n} rows, more than the file's {file_len} bytes: damaged"
            ),
        });
    }
    if ana_ds.size() != n || mb_ds.size() != n {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "the song tables disagree: /metadata/songs has {n} rows, /analysis/songs {}, /musicbrainz/songs {}",
                ana_ds.size(),
                mb_ds.size()
            ),
        });
    }
    let arrays = ArrayFile::open(&file, path)?;
    let mut out = Vec::new();
    let mut findings = Vec::new();
    // Chunks bound the memory of the summary file (a million rows of 4 KiB strings).
    const CHUNK: usize = 2048;
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let read_err = |what: &str| {
            let what = what.to_string();
            move |e: hdf5::Error| IoError::Field {
                path: path.to_path_buf(),
                field: what.clone(),
                reason: format!("cannot be read as the MSD layout: {e}"),
            }
        };
        let meta = meta_ds
            .read_slice_1d::<MetaRow, _>(start..end)
            .map_err(read_err("/metadata/songs"))?;
        let ana = ana_ds
            .read_slice_1d::<AnalysisRow, _>(start..end)
            .map_err(read_err("/analysis/songs"))?;
        let mb = mb_ds
            .read_slice_1d::<MusicbrainzRow, _>(start..end)
            .map_err(read_err("/musicbrainz/songs"))?;
        for k in 0..end - start {
            let m = &meta[k];
            let song_id = text(m.song_id.as_bytes());
            if !wanted(&song_id) {
                continue;
            }
            let a = &ana[k];
            let b = &mb[k];
            let mut song = MsdSong {
                song_id,
                track_id: text(a.track_id.as_bytes()),
                title: text(m.title.as_bytes()),
                artist_name: text(m.artist_name.as_bytes()),
                artist_id: text(m.artist_id.as_bytes()),
                artist_location: text(m.artist_location.as_bytes()),
                release: text(m.release.as_bytes()),
                year: 0, // set by the screen below
                duration: a.duration,
                tempo: a.tempo,
                loudness: a.loudness,
                key: a.key,
                mode: a.mode,
                terms: Vec::new(),
                mbtags: Vec::new(),
                segments: None,
            };
            arrays.fill(&mut song, start + k, path)?;
            let f = screen(&mut song, b.year as f64);
            if !f.is_empty() {
                findings.push((song.song_id.clone(), f));
            }
            out.push(song);
        }
        start = end;
    }
    Ok((out, findings))
}

/// The optional arrays of a per-track or aggregate file, with the per-song offset columns.
struct ArrayFile {
    terms: Option<(hdf5::Dataset, Option<hdf5::Dataset>)>,
    mbtags: Option<(hdf5::Dataset, Option<hdf5::Dataset>)>,
    timbre: Option<hdf5::Dataset>,
    pitches: Option<hdf5::Dataset>,
    loudness_max: Option<hdf5::Dataset>,
    offsets: Offsets,
}

#[derive(Default)]
struct Offsets {
    terms: Vec<i32>,
    mbtags: Vec<i32>,
    timbre: Vec<i32>,
    pitches: Vec<i32>,
    loudness_max: Vec<i32>,
}

impl ArrayFile {
    fn open(file: &hdf5::File, path: &Path) -> Result<Self, IoError> {
        let opt = |name: &str| {
            if file.link_exists(name) {
                file.dataset(name).ok()
            } else {
                None
            }
        };
        let terms =
            opt("/metadata/artist_terms").map(|t| (t, opt("/metadata/artist_terms_weight")));
        let mbtags =
            opt("/musicbrainz/artist_mbtags").map(|t| (t, opt("/musicbrainz/artist_mbtags_count")));
        let mut offsets = Offsets::default();
        let meta_ds = file
            .dataset("/metadata/songs")
            .map_err(|e| h5err(path, "/metadata/songs", e))?;
        let ana_ds = file
            .dataset("/analysis/songs")
            .map_err(|e| h5err(path, "/analysis/songs", e))?;
        let mb_ds = file
            .dataset("/musicbrainz/songs")
            .map_err(|e| h5err(path, "/musicbrainz/songs", e))?;
        // The offset columns are small (4 bytes a song); read them whole when arrays exist.
        #[derive(H5Type, Clone, Copy)]
        #[repr(C)]
        struct MetaIdx {
            idx_artist_terms: i32,
        }
        #[derive(H5Type, Clone, Copy)]
        #[repr(C)]
        struct MbIdx {
            idx_artist_mbtags: i32,
        }
        #[derive(H5Type, Clone, Copy)]
        #[repr(C)]
        struct AnaIdx {
            idx_segments_timbre: i32,
            idx_segments_pitches: i32,
            idx_segments_loudness_max: i32,
        }
        let field = |f: &str, e: hdf5::Error| IoError::Field {
            path: path.to_path_buf(),
            field: f.to_string(),
            reason: e.to_string(),
        };
        let timbre = opt("/analysis/segments_timbre");
        let pitches = opt("/analysis/segments_pitches");
        let loudness_max = opt("/analysis/segments_loudness_max");
        if terms.is_some() {
            offsets.terms = meta_ds
                .read_raw::<MetaIdx>()
                .map_err(|e| field("/metadata/songs.idx_artist_terms", e))?
                .iter()
                .map(|r| r.idx_artist_terms)
                .collect();
        }
        if mbtags.is_some() {
            offsets.mbtags = mb_ds
                .read_raw::<MbIdx>()
                .map_err(|e| field("/musicbrainz/songs.idx_artist_mbtags", e))?
                .iter()
                .map(|r| r.idx_artist_mbtags)
                .collect();
        }
        if timbre.is_some() || pitches.is_some() || loudness_max.is_some() {
            let rows = ana_ds
                .read_raw::<AnaIdx>()
                .map_err(|e| field("/analysis/songs.idx_segments_*", e))?;
            offsets.timbre = rows.iter().map(|r| r.idx_segments_timbre).collect();
            offsets.pitches = rows.iter().map(|r| r.idx_segments_pitches).collect();
            offsets.loudness_max = rows.iter().map(|r| r.idx_segments_loudness_max).collect();
        }
        Ok(ArrayFile {
            terms,
            mbtags,
            timbre,
            pitches,
            loudness_max,
            offsets,
        })
    }

    fn fill(&self, song: &mut MsdSong, i: usize, path: &Path) -> Result<(), IoError> {
        let field_err = |f: &str, e: hdf5::Error| IoError::Field {
            path: path.to_path_buf(),
            field: f.to_string(),
            reason: e.to_string(),
        };
        if let Some((names, weights)) = &self.terms {
            let r = span(
                &self.offsets.terms,
                i,
                names.size(),
                path,
                "/metadata/artist_terms",
            )?;
            if !r.is_empty() {
                let t = names
                    .read_slice_1d::<FixedAscii<512>, _>(r.clone())
                    .map_err(|e| field_err("/metadata/artist_terms", e))?;
                let w: Vec<f64> = match weights {
                    Some(w) if w.size() == names.size() => w
                        .read_slice_1d::<f64, _>(r.clone())
                        .map_err(|e| field_err("/metadata/artist_terms_weight", e))?
                        .to_vec(),
                    // Without weights, the stored order (by weight) gives a rank weight.
                    _ => (0..r.len()).map(|k| 1.0 / (k as f64 + 1.0)).collect(),
                };
                let mut terms: Vec<(String, f64)> = t
                    .iter()
                    .zip(w)
                    .map(|(t, w)| (text(t.as_bytes()), w))
                    .filter(|(t, _)| !t.is_empty())
                    .collect();
                // Stable sort: ties keep the stored order.
                terms.sort_by(|a, b| b.1.total_cmp(&a.1));
                song.terms = terms;
            }
        }
        if let Some((names, counts)) = &self.mbtags {
            let r = span(
                &self.offsets.mbtags,
                i,
                names.size(),
                path,
                "/musicbrainz/artist_mbtags",
            )?;
            if !r.is_empty() {
                let t = names
                    .read_slice_1d::<FixedAscii<512>, _>(r.clone())
                    .map_err(|e| field_err("/musicbrainz/artist_mbtags", e))?;
                let c: Vec<i32> = match counts {
                    Some(c) if c.size() == names.size() => c
                        .read_slice_1d::<i32, _>(r.clone())
                        .map_err(|e| field_err("/musicbrainz/artist_mbtags_count", e))?
                        .to_vec(),
                    _ => vec![0; r.len()],
                };
                song.mbtags = t
                    .iter()
                    .zip(c)
                    .map(|(t, c)| (text(t.as_bytes()), c))
                    .filter(|(t, _)| !t.is_empty())
                    .collect();
            }
        }
        if let (Some(timbre), Some(pitches), Some(lmax)) =
            (&self.timbre, &self.pitches, &self.loudness_max)
        {
            let rt = span(
                &self.offsets.timbre,
                i,
                rows(timbre),
                path,
                "/analysis/segments_timbre",
            )?;
            let rp = span(
                &self.offsets.pitches,
                i,
                rows(pitches),
                path,
                "/analysis/segments_pitches",
            )?;
            let rl = span(
                &self.offsets.loudness_max,
                i,
                lmax.size(),
                path,
                "/analysis/segments_loudness_max",
            )?;
            if !rt.is_empty() && rt.len() == rp.len() && rt.len() == rl.len() {
                let t = read_rows12(timbre, rt, path, "/analysis/segments_timbre")?;
                let p = read_rows12(pitches, rp, path, "/analysis/segments_pitches")?;
                let l = lmax
                    .read_slice_1d::<f64, _>(rl)
                    .map_err(|e| field_err("/analysis/segments_loudness_max", e))?
                    .to_vec();
                song.segments = Some(segment_stats(&t, &p, &l));
            } else if rt.len() != rp.len() || rt.len() != rl.len() {
                return Err(IoError::Field {
                    path: path.to_path_buf(),
                    field: "/analysis/segments_*".into(),
                    reason: format!(
                        "segment arrays of song {} disagree in length: timbre {}, pitches {}, loudness_max {}",
                        song.song_id,
                        rt.len(),
                        rp.len(),
                        rl.len()
                    ),
                });
            }
        }
        Ok(())
    }
}

fn rows(ds: &hdf5::Dataset) -> usize {
    ds.shape().first().copied().unwrap_or(0)
}

/// Reads rows `r` of an (n, 12) array as a flat row-major vector.
fn read_rows12(
    ds: &hdf5::Dataset,
    r: Range<usize>,
    path: &Path,
    field: &str,
) -> Result<Vec<f64>, IoError> {
    let shape = ds.shape();
    if shape.len() != 2 || shape[1] != 12 {
        return Err(IoError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason: format!("expected shape (n, 12), found {shape:?}"),
        });
    }
    let a = ds
        .read_slice_2d::<f64, _>((r, ..))
        .map_err(|e| IoError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason: e.to_string(),
        })?;
    Ok(a.iter().copied().collect())
}

/// Per-dimension mean and population standard deviation (two-pass, f64).
fn mean_std12(x: &[f64]) -> ([f64; 12], [f64; 12]) {
    let n = (x.len() / 12) as f64;
    let mut mean = [0.0; 12];
    for row in x.chunks_exact(12) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = [0.0; 12];
    for row in x.chunks_exact(12) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    let std = var.map(|s| (s / n).sqrt());
    (mean, std)
}

pub fn segment_stats(timbre: &[f64], pitches: &[f64], loudness_max: &[f64]) -> SegmentStats {
    let (timbre_mean, timbre_std) = mean_std12(timbre);
    let (pitch_mean, pitch_std) = mean_std12(pitches);
    let n = loudness_max.len() as f64;
    let lm = loudness_max.iter().sum::<f64>() / n;
    let lv = loudness_max
        .iter()
        .map(|v| (v - lm) * (v - lm))
        .sum::<f64>()
        / n;
    SegmentStats {
        segments: loudness_max.len(),
        timbre_mean,
        timbre_std,
        pitch_mean,
        pitch_std,
        loudness_max_mean: lm,
        loudness_max_std: lv.sqrt(),
    }
}

/// All `.h5` files under `dir` (recursively), sorted, or `dir` itself when it is a file.
pub fn list_h5(dir: &Path) -> Result<Vec<PathBuf>, IoError> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| IoError::io(&d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| IoError::io(&d, e))?;
            let p = entry.path();
            let ft = entry.file_type().map_err(|e| IoError::io(&p, e))?;
            if ft.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("h5")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads an MSD input: one file (per-track, aggregate or summary; a bad file is an error) or a
/// directory tree of them (bad files are reported and skipped, or stop the run when `strict`).
pub fn read_msd(
    input: &Path,
    wanted: &dyn Fn(&str) -> bool,
    strict: bool,
) -> Result<(Vec<MsdSong>, FileReport), IoError> {
    let mut report = FileReport::new(input, "msd hdf5");
    let note = |report: &mut FileReport, file: &Path, findings: Vec<SongFindings>| {
        for (song, f) in findings {
            report.implausible(&f, &format!("{}, song {song}", file.display()));
        }
    };
    if input.is_file() {
        report.lines = 1;
        let (songs, findings) = read_msd_file_screened(input, wanted)?;
        note(&mut report, input, findings);
        report.accepted = 1;
        return Ok((songs, report));
    }
    if !input.is_dir() {
        return Err(IoError::io(
            input,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    let files = list_h5(input)?;
    if files.is_empty() {
        return Err(IoError::Format {
            path: input.to_path_buf(),
            reason: "no .h5 files in this folder or below it".into(),
        });
    }
    let progress = Progress::items(files.len() as u64, "reading MSD files");
    let mut songs = Vec::new();
    for f in &files {
        report.lines += 1;
        match read_msd_file_screened(f, wanted) {
            Ok((s, findings)) => {
                note(&mut report, f, findings);
                songs.extend(s);
                report.accepted += 1;
            }
            Err(e) => {
                if strict {
                    return Err(e);
                }
                report.reject(0, e.to_string(), false)?;
            }
        }
        progress.inc(1);
    }
    progress.finish();
    Ok((songs, report))
}

/// Takes the implausible values of `s` as unknown (NaN, year 0, key or mode -1, no segment
/// statistics) and returns them. `raw_year` is the year as read (before its conversion to
/// `u16`, which could not hold 99999999999). The unknown markers themselves (0 for tempo,
/// duration and year, -1 for key and mode, NaN) are not findings.
pub(crate) fn screen(s: &mut MsdSong, raw_year: f64) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut check = |x: &mut f64, bounds: &'static plausible::Bounds, unknown: Option<f64>| {
        if x.is_nan() || unknown == Some(*x) || bounds.contains(*x) {
            return;
        }
        out.push(Finding { bounds, value: *x });
        *x = f64::NAN;
    };
    check(&mut s.tempo, &plausible::TEMPO, Some(0.0));
    check(&mut s.duration, &plausible::DURATION, Some(0.0));
    check(&mut s.loudness, &plausible::LOUDNESS, None);
    let mut year = raw_year;
    check(&mut year, &plausible::YEAR, Some(0.0));
    s.year = if year.is_nan() { 0 } else { year as u16 };
    let mut key = s.key as f64;
    check(&mut key, &plausible::KEY, Some(-1.0));
    s.key = if key.is_nan() { -1 } else { s.key };
    let mut mode = s.mode as f64;
    check(&mut mode, &plausible::MODE, Some(-1.0));
    s.mode = if mode.is_nan() { -1 } else { s.mode };
    if let Some(st) = &s.segments {
        let groups: [(&'static plausible::Bounds, Vec<f64>); 4] = [
            (&plausible::TIMBRE, [st.timbre_mean, st.timbre_std].concat()),
            (&plausible::PITCH, [st.pitch_mean, st.pitch_std].concat()),
            (&plausible::LOUDNESS_MAX_MEAN, vec![st.loudness_max_mean]),
            (&plausible::LOUDNESS_MAX_STD, vec![st.loudness_max_std]),
        ];
        // One bad statistic spoils the song's: they come from the same segments.
        let bad: Vec<Finding> = groups
            .iter()
            .filter_map(|(bounds, vals)| {
                vals.iter()
                    .find(|v| !bounds.contains(**v))
                    .map(|&value| Finding { bounds, value })
            })
            .collect();
        if !bad.is_empty() {
            out.extend(bad);
            s.segments = None;
        }
    }
    out
}
