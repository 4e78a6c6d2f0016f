//! `ainrnn demo` rebuilds a feature store in its output folder that this build cannot read (one
//! from an older version), or one cut at another length, instead of stopping at step 1.

mod common;

use ainrnn::demo::clear_unusable_store;

#[test]
fn an_older_store_in_the_demo_folder_is_removed_with_its_reason_and_a_readable_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.h5");
    assert_eq!(clear_unusable_store(&path, 5.0).unwrap(), None);

    common::write_version_1_store(&path);
    let seg = ainrnn::audio::store::segments_dir(&path);
    std::fs::create_dir_all(&seg).unwrap();
    std::fs::write(seg.join("seg-000001.h5"), b"old").unwrap();
    let reason = clear_unusable_store(&path, 5.0).unwrap().expect("removed");
    assert!(reason.contains("version 1"), "{reason}");
    assert!(!path.exists() && !seg.exists());

    // A store this build wrote stays.
    let w = ainrnn::audio::store::StoreWriter::open(&path, vec![]).unwrap();
    w.finish().unwrap();
    assert_eq!(clear_unusable_store(&path, 5.0).unwrap(), None);
    assert!(path.exists());
}

/// A store of 1 s clips is removed for a demo that takes 5 s; one of 5 s is kept.
#[test]
fn a_store_cut_at_another_length_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = |secs: &str| {
        let path = dir.path().join(format!("f{secs}.h5"));
        let o = common::cli::command()
            .args([
                "--backend",
                "cpu",
                "features",
                "--no-scattering",
                "--seconds",
                secs,
                "-o",
            ])
            .arg(&path)
            .arg("data/audio/gtzan_country.00000.wav")
            .current_dir(common::cli::root())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        path
    };
    let five = store("5");
    assert_eq!(clear_unusable_store(&five, 5.0).unwrap(), None);
    assert!(five.exists());
    let one = store("1");
    let why = clear_unusable_store(&one, 5.0).unwrap().expect("removed");
    assert!(why.contains("cut at 1 s, this run takes 5 s"), "{why}");
    assert!(!one.exists() && !ainrnn::audio::store::segments_dir(&one).exists());
}
