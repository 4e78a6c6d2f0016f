//! `ainrnn demo` rebuilds a feature store in its output folder that this build cannot read (one
//! from an older version) instead of stopping at step 1.

mod common;

use ainrnn::demo::clear_unreadable_store;

#[test]
fn an_older_store_in_the_demo_folder_is_removed_with_its_reason_and_a_readable_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.h5");
    assert_eq!(clear_unreadable_store(&path).unwrap(), None);

    common::write_version_1_store(&path);
    let seg = ainrnn::audio::store::segments_dir(&path);
    std::fs::create_dir_all(&seg).unwrap();
    std::fs::write(seg.join("seg-000001.h5"), b"old").unwrap();
    let reason = clear_unreadable_store(&path).unwrap().expect("removed");
    assert!(reason.contains("version 1"), "{reason}");
    assert!(!path.exists() && !seg.exists());

    // A store this build wrote stays.
    let w = ainrnn::audio::store::StoreWriter::open(&path, vec![]).unwrap();
    w.finish().unwrap();
    assert_eq!(clear_unreadable_store(&path).unwrap(), None);
    assert!(path.exists());
}
