//! `ainrnn bench data`: throughput of the streaming triplet reader on a **synthetic** file of a
//! few hundred MB written to a temporary folder (removed afterwards). Three numbers: writing the
//! synthetic file, parsing only (split + validate every line), and the full read (parse + intern
//! ids + build CSR), which is what `prepare` does with the 3 GB Taste Profile.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::data::lines::{LineReader, READ_BUFFER};
use crate::data::progress::Progress;
use crate::data::synth::{synth, SynthOptions};
use crate::data::triplets::{self, parse_line, Line};
use crate::error::IoError;
use crate::io::space::{free_disk_bytes, memory_short_of};

#[derive(Clone, Debug, Serialize)]
pub struct DataBench {
    /// Always notes that the input is synthetic.
    pub input: String,
    pub file_bytes: u64,
    pub lines: u64,
    pub users: usize,
    pub songs: usize,
    pub synth_seconds: f64,
    pub synth_mb_per_s: f64,
    pub parse_seconds: f64,
    pub parse_mb_per_s: f64,
    pub read_seconds: f64,
    pub read_mb_per_s: f64,
    /// The target from the issue.
    pub target_mb_per_s: f64,
}

/// Runs the benchmark with a file of about `mb` megabytes (10^6 bytes) in `dir` (default: the
/// system temporary folder).
pub fn run(mb: f64, dir: Option<PathBuf>, seed: u64) -> Result<DataBench, IoError> {
    let dir = dir.unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("ainrnn-bench-data-{}.txt", std::process::id()));
    // A Taste-Profile line is ~63 bytes (40-char user, 18-char song, count); 40 songs per user.
    let mean_listens = 40.0;
    let lines = (mb * 1e6 / 63.0).max(1.0);
    let users = ((lines / mean_listens).ceil() as usize).max(1);
    // A huge `--mb` must fail at once, not after filling the disk or being killed for memory.
    let want = (mb * 1e6) as u64;
    if let Some(free) = free_disk_bytes(&dir) {
        if want.saturating_add(want / 10) > free {
            return Err(IoError::Format {
                path: dir,
                reason: format!(
                    "--mb {mb} needs about {:.0} MB of disk here, and {:.0} MB are free: choose a smaller --mb or another --dir",
                    want as f64 / 1e6,
                    free as f64 / 1e6
                ),
            });
        }
    }
    // The full read keeps the interned triplets: about 0.8 bytes of memory per byte of file.
    let need = want as f64 * 0.8;
    if let Some(avail) = memory_short_of(need) {
        return Err(IoError::Format {
            path: dir,
            reason: format!(
                "--mb {mb}: reading the file back needs about {:.0} MB of memory, and {:.0} MB are available: choose a smaller --mb",
                need / 1e6,
                avail as f64 / 1e6
            ),
        });
    }
    let mut o = SynthOptions::new(users, 359_687, mean_listens);
    o.seed = seed;
    let t0 = Instant::now();
    let rep = synth(&o, &path)?;
    let synth_seconds = t0.elapsed().as_secs_f64();

    let result = (|| {
        let t0 = Instant::now();
        let f = File::open(&path).map_err(|e| IoError::io(&path, e))?;
        let mut r = LineReader::new(BufReader::with_capacity(READ_BUFFER, f));
        let mut n = 0u64;
        while let Some((_, l)) = r.next_line().map_err(|e| IoError::io(&path, e))? {
            if let Ok(Line::Triplet { plays, .. }) = parse_line(l) {
                n += plays as u64 & 1;
            }
        }
        std::hint::black_box(n);
        let parse_seconds = t0.elapsed().as_secs_f64();

        let t0 = Instant::now();
        let (reader, _) = LineReader::open(&path)?;
        let t = triplets::read_triplets_from(reader, &path, false, &Progress::hidden())?;
        let read_seconds = t0.elapsed().as_secs_f64();
        let mbs = |s: f64| rep.bytes as f64 / 1e6 / s;
        Ok(DataBench {
            input: o.header().trim_start_matches("# ").to_string(),
            file_bytes: rep.bytes,
            lines: rep.interactions,
            users: t.interactions.users(),
            songs: t.interactions.songs(),
            synth_seconds,
            synth_mb_per_s: mbs(synth_seconds),
            parse_seconds,
            parse_mb_per_s: mbs(parse_seconds),
            read_seconds,
            read_mb_per_s: mbs(read_seconds),
            target_mb_per_s: 50.0,
        })
    })();
    let _ = std::fs::remove_file(&path);
    result
}

pub fn render(b: &DataBench) -> String {
    format!(
        "input: {}\nfile: {:.1} MB, {} lines, {} users, {} songs\n\
         write synthetic   {:>8.2} s  {:>8.1} MB/s\n\
         parse only        {:>8.2} s  {:>8.1} MB/s\n\
         read (parse + intern + CSR) {:>8.2} s  {:>8.1} MB/s   (target >= {} MB/s)\n",
        b.input,
        b.file_bytes as f64 / 1e6,
        b.lines,
        b.users,
        b.songs,
        b.synth_seconds,
        b.synth_mb_per_s,
        b.parse_seconds,
        b.parse_mb_per_s,
        b.read_seconds,
        b.read_mb_per_s,
        b.target_mb_per_s
    )
}
