//! Issue 14, damaged files: seeded byte flips and truncations of a small dataset and checkpoint,
//! run through `stats`, `train`, `eval` and `recommend` in child processes. Every run ends with
//! an error exit naming the damaged file, or (a flip in unused bytes) succeeds with exactly the
//! undamaged output; never with a signal (libhdf5 used to die with SIGSEGV on a damaged global
//! heap).

#[path = "common/mod.rs"]
mod common;

#[cfg(unix)]
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::{ainrnn, s, small, succeeds, tiny_train_args};

/// A user of the bundled small triplets.
const USER: &str = "fd50c4007b68a3737fe052d5a4f78ce8aa117f3d";

/// splitmix64: a seeded generator, so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `bytes` with 1 to 4 bits flipped (seeded), or cut at a seeded length when `cut`.
fn damage(bytes: &[u8], seed: u64, cut: bool) -> Vec<u8> {
    let mut r = Rng(seed);
    if cut {
        return bytes[..r.below(bytes.len())].to_vec();
    }
    let mut d = bytes.to_vec();
    for _ in 0..1 + r.below(4) {
        let i = r.below(d.len());
        d[i] ^= 1 << r.below(8);
    }
    d
}

/// The outcome rule: an error exit (code 1, no panic) whose message names `damaged`, or success
/// with the undamaged run's standard output. Never a signal. Returns whether it failed.
fn check(o: &Output, damaged: &Path, baseline: &str, case: &str) -> bool {
    let e = String::from_utf8_lossy(&o.stderr);
    #[cfg(unix)]
    assert_eq!(o.status.signal(), None, "{case}: killed by a signal\n{e}");
    assert!(!e.contains("panicked"), "{case}: panicked\n{e}");
    if o.status.success() {
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            baseline,
            "{case}: succeeded with other output than the undamaged file\n{e}"
        );
        return false;
    }
    assert_eq!(o.status.code(), Some(1), "{case}\n{e}");
    let name = damaged.file_name().unwrap().to_str().unwrap();
    assert!(
        e.contains(name),
        "{case}: the error does not name {name}\n{e}"
    );
    true
}

fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    let data = small(dir);
    let ck = dir.join("m.ckpt");
    succeeds(&ainrnn(&tiny_train_args(&data, &ck)));
    (data, ck)
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn damaged_dataset_gives_an_error_never_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = trained(dir.path());
    let bytes = std::fs::read(&data).unwrap();
    let bad = dir.path().join("damaged.h5");
    let out = dir.path().join("out.ckpt");
    let eval = |d: &Path| ainrnn(&["eval", "--data", s(d), "--checkpoint", s(&ck)]);
    let stats_ok = stdout(&ainrnn(&["stats", s(&data)]));
    let eval_ok = stdout(&eval(&data));
    let train_ok = stdout(&ainrnn(&tiny_train_args(&data, &out)));
    let mut errors = 0;
    for seed in 0..160u64 {
        let cut = seed % 8 == 7;
        std::fs::write(&bad, damage(&bytes, seed, cut)).unwrap();
        let case = format!("dataset seed {seed} (cut {cut})");
        errors += check(&ainrnn(&["stats", s(&bad)]), &bad, &stats_ok, &case) as usize;
        if seed % 4 == 0 {
            check(&eval(&bad), &bad, &eval_ok, &format!("eval, {case}"));
        }
        if seed % 8 == 1 {
            let o = ainrnn(&tiny_train_args(&bad, &out));
            check(&o, &bad, &train_ok, &format!("train, {case}"));
        }
    }
    // Nearly every flip lands in checksummed data or metadata.
    assert!(
        errors >= 140,
        "only {errors} of 160 damaged datasets were refused"
    );
}

#[test]
fn damaged_checkpoint_gives_an_error_never_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let (data, ck) = trained(dir.path());
    let bytes = std::fs::read(&ck).unwrap();
    let bad = dir.path().join("damaged.ckpt");
    let eval = |c: &Path| ainrnn(&["eval", "--data", s(&data), "--checkpoint", s(c)]);
    let rec = |c: &Path| {
        ainrnn(&[
            "recommend",
            "--data",
            s(&data),
            "--checkpoint",
            s(c),
            "--user",
            USER,
        ])
    };
    let eval_ok = stdout(&eval(&ck));
    let rec_ok = stdout(&rec(&ck));
    let mut errors = 0;
    for seed in 0..120u64 {
        let cut = seed % 8 == 7;
        std::fs::write(&bad, damage(&bytes, seed, cut)).unwrap();
        let case = format!("checkpoint seed {seed} (cut {cut})");
        errors += check(&eval(&bad), &bad, &eval_ok, &format!("eval, {case}")) as usize;
        if seed % 3 == 0 {
            check(&rec(&bad), &bad, &rec_ok, &format!("recommend, {case}"));
        }
    }
    assert!(
        errors >= 100,
        "only {errors} of 120 damaged checkpoints were refused"
    );
}

/// A feature store of three tracks, written by the store writer.
fn store(path: &Path) {
    use ainrnn::audio::store::{AttrValue, StoreWriter, TrackRecord};
    let mut w = StoreWriter::open(path, vec!["a".into(), "b".into()]).unwrap();
    for (i, stem) in ["SOAAAAA12A8C13A6A1", "SOBBBBB12A8C13A6A2", "sóng ✓"]
        .iter()
        .enumerate()
    {
        w.write(&TrackRecord {
            stem: stem.to_string(),
            datasets: vec![("hfc".into(), vec![3], vec![1.0, 2.0, i as f32])],
            attrs: vec![
                ("source_file".into(), AttrValue::S(format!("{stem}.wav"))),
                ("song_vector".into(), AttrValue::FV(vec![i as f32, 1.0])),
            ],
        })
        .unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn damaged_feature_store_gives_an_error_never_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("features.h5");
    store(&good);
    let t = ainrnn::io::features_h5::read_song_table(&good).unwrap();
    assert_eq!(t.ids[2], "sóng ✓");
    assert_eq!(t.names, ["a", "b"]);
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.path().join("damaged.h5");
    let out = dir.path().join("d.h5");
    let prepare = |features: &Path| {
        ainrnn(&[
            "prepare",
            "--triplets",
            "data/taste/triplets_small.txt",
            "--min-listens",
            "1",
            "--min-song-users",
            "1",
            "--features",
            s(features),
            "-o",
            s(&out),
        ])
    };
    let ok = stdout(&prepare(&good));
    for seed in 0..40u64 {
        std::fs::write(&bad, damage(&bytes, seed, seed % 8 == 7)).unwrap();
        check(&prepare(&bad), &bad, &ok, &format!("features seed {seed}"));
    }
}

#[test]
fn older_feature_store_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("old.h5");
    // Version 1 stored its strings (the format attribute too) as variable-length strings.
    common::write_version_1_store(&p);
    let e = ainrnn::io::features_h5::read_song_table(&p)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("old.h5")
            && e.contains("written by an older ainrnn (format 1); run features again"),
        "{e}"
    );
}

/// A file of the other kind (a feature store given as a dataset, a dataset as a feature store)
/// is named as such, not as an older file of the expected kind; a folder is named as a folder,
/// not with HDF5's dump of its low-level read.
#[test]
fn a_file_of_the_other_kind_or_a_folder_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("features.h5");
    store(&store_path);
    let data = small(dir.path());
    let e = ainrnn::data::Dataset::load(&store_path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("features.h5") && e.contains("is a feature store") && !e.contains("older"),
        "{e}"
    );
    let e = ainrnn::io::features_h5::read_song_table(&data)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("small.h5") && e.contains("is a dataset") && !e.contains("version"),
        "{e}"
    );
    let e = ainrnn::data::Dataset::load(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("is a folder") && !e.contains("bytes actually read"),
        "{e}"
    );
    let e = ainrnn::io::features_h5::read_song_table(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a folder"), "{e}");
    // The MSD's files, checkpoints and text are named too (HDF5 said "file signature not
    // found", safetensors "header too large", a missing field "is this an MSD file?").
    let msd = Path::new("data/msd/TRAAABD128F429CF47.h5");
    for e in [
        ainrnn::data::Dataset::load(msd).unwrap_err().to_string(),
        ainrnn::io::features_h5::read_song_table(msd)
            .unwrap_err()
            .to_string(),
    ] {
        assert!(
            e.contains("is an MSD file (read by `ainrnn prepare --msd`)"),
            "{e}"
        );
    }
    for p in [&data, &store_path] {
        let e = ainrnn::data::msd::read_msd_file(p, &|_| true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(", not an MSD file") && e.contains("written by `ainrnn"),
            "{e}"
        );
    }
    let ck = dir.path().join("m.ckpt");
    let header = br#"{"__metadata__":{"format":"x"}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    std::fs::write(&ck, bytes).unwrap();
    let e = ainrnn::data::Dataset::load(&ck).unwrap_err().to_string();
    assert!(
        e.contains("m.ckpt") && e.contains("a safetensors file"),
        "{e}"
    );
    let e = ainrnn::model::checkpoint::Checkpoint::load(&data)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("small.h5: an HDF5 file") && e.contains("not a checkpoint"),
        "{e}"
    );
    let csv = Path::new("data/msd/subset_10k.csv");
    let e = ainrnn::data::Dataset::load(csv).unwrap_err().to_string();
    assert!(e.contains("a text file, not an HDF5 file"), "{e}");
    let e = ainrnn::model::checkpoint::Checkpoint::load(csv)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("a text file, not a checkpoint"), "{e}");
}

/// HDF5 files open without HDF5's own lock: a child spawned while a file is open for writing
/// keeps the descriptor (HDF5 opens without close-on-exec); with HDF5's `flock` it kept the lock
/// too, and the file, written and closed, would not open again until the child exited ("unable
/// to lock file, errno = 11", seen once as a flaky test while another test ran the CLI).
#[test]
fn a_file_opens_while_a_child_that_inherited_its_descriptor_runs() {
    use ainrnn::io::h5::{create_file, open_file};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.h5");
    let f = create_file(&path).unwrap();
    f.new_dataset::<u32>()
        .shape(3)
        .create("a")
        .unwrap()
        .write(&[1u32, 2, 3])
        .unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    f.close().unwrap();
    let r = open_file(&path).and_then(|f| f.dataset("a")?.read_raw::<u32>());
    child.kill().ok();
    child.wait().ok();
    assert_eq!(r.unwrap(), vec![1, 2, 3]);
}
