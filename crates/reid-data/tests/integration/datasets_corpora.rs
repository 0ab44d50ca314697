//! LUPerson and LUPerson-NL folder layouts.

use std::fs;
use std::path::{Path, PathBuf};

use reid_data::datasets::{RelabelOrder, luperson, luperson_nl};
use reid_data::record::ImageLocation;

use crate::common::{assert_layout, assert_malformed, corpus_stats, touch};

fn write_nl(out: &Path) -> PathBuf {
    let ds = out.join(luperson_nl::FOLDER);
    touch(
        &ds.join("country00/city00/vid00001"),
        &[
            "000000_0000001_00.jpg",
            "000000_0000002_00.jpg",
            "000001_0000001_01.jpg",
            "notes.txt",
        ],
    );
    touch(
        &ds.join("country00/city01/vid00000"),
        &["000002_0000010_00.jpg"],
    );
    touch(
        &ds.join("country01/city00/vid00003"),
        &[
            "000003_0000000_00.jpg",
            "000003_0000000_01.jpg",
            "000004_0000005_00.jpg",
        ],
    );
    ds
}

#[test]
fn luperson_nl_videos_tracklets_images() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = write_nl(tmp.path());
    let c = luperson_nl::parse(tmp.path()).unwrap();
    assert_eq!(c.root, ds);
    assert_eq!(c.stats(), corpus_stats(3, 5, 7));
    assert!(c.warnings.is_empty());
    let v0 = &c.videos[0];
    assert_eq!(v0.name, "vid00001");
    assert_eq!(v0.country.as_deref(), Some("country00"));
    assert_eq!(v0.city.as_deref(), Some("city00"));
    assert_eq!(v0.tracklets[0].pid, 0);
    let frames: Vec<Option<u64>> = v0.tracklets[0].images.iter().map(|r| r.frame).collect();
    assert_eq!(frames, vec![Some(1), Some(2)]);
    let r = &c.videos[2].tracklets[0].images[1];
    assert_eq!(
        (r.pid, r.video, r.tracklet, r.frame),
        (3, Some(2), Some(3), Some(0))
    );
    let (train, n) = c.tracked_train(RelabelOrder::Ascending);
    assert_eq!((train.len(), n), (7, 5));
    // Root given as the corpus folder itself.
    assert_eq!(luperson_nl::parse(&ds).unwrap().stats(), c.stats());
}

#[test]
fn luperson_nl_warns_on_pid_in_two_videos_and_rejects_bad_names() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = write_nl(tmp.path());
    touch(
        &ds.join("country01/city00/vid00003"),
        &["000000_0000009_00.jpg"],
    );
    let c = luperson_nl::parse(&ds).unwrap();
    assert_eq!(c.stats().tracklets, 6);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let bad = ds.join("country00/city00/vid00001/0001_0000001.jpg");
    fs::write(&bad, b"").unwrap();
    assert_malformed(luperson_nl::parse(&ds), &bad);
    let empty = tempfile::tempdir().unwrap();
    assert_layout(
        luperson_nl::parse(empty.path()),
        &empty.path().join("LUPerson-NL"),
    );
}

#[test]
fn luperson_tree_and_flat_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join(luperson::FOLDER);
    touch(
        &ds.join("country00/city00/vid0"),
        &["00_00_0000_00000000.jpg", "00_00_0000_00000001.jpg"],
    );
    touch(
        &ds.join("country00/city00/vid1"),
        &["00_00_0001_00000000.jpg"],
    );
    touch(
        &ds.join("country01/city00/vidx"),
        &["01_00_0000_00000000.jpg"],
    );
    let c = luperson::parse(tmp.path()).unwrap();
    assert_eq!(c.root, ds);
    assert_eq!(c.stats(), corpus_stats(3, 0, 4));
    let r = &c.videos[2].untracked[0];
    assert_eq!(
        (r.pid, r.video, r.tracklet, r.frame),
        (-1, Some(2), None, None)
    );

    // Flat: key-named files in one folder, grouped by (i, j, k).
    let flat = tmp.path().join("flat");
    touch(
        &flat,
        &[
            "30_00_0292_00000238.jpg",
            "30_00_0292_00000001.jpg",
            "00_01_0000_00000000.jpg",
        ],
    );
    let f = luperson::parse(&flat).unwrap();
    assert_eq!(f.stats(), corpus_stats(2, 0, 3));
    assert_eq!(f.videos[1].name, "30_00_0292");
    assert_eq!(
        f.videos[1].untracked[0].location,
        ImageLocation::Path(flat.join("30_00_0292_00000001.jpg"))
    );

    let bad = ds.join("country00/city00/vid1/frame_1.jpg");
    fs::write(&bad, b"").unwrap();
    assert_malformed(luperson::parse(&ds), &bad);
}
