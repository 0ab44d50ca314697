//! Market-1501, DukeMTMC-reID and CUHK03-NP folder layouts on tiny
//! hand-written datasets (empty files: the parsers do not decode).

use std::fs;
use std::path::{Path, PathBuf};

use reid_data::DataError;
use reid_data::datasets::{
    Cuhk03Kind, Cuhk03Options, ExpectFull, ImageDatasetOptions, RelabelOrder, cuhk03, dukemtmc,
    market1501,
};
use reid_data::record::ImageLocation;

use crate::common::{assert_layout, assert_malformed, name_of, split_stats, touch};

/// Creates the three folders of an image dataset `ds` with empty files:
/// `bounding_box_train`, `query` and `bounding_box_test`; returns `ds`.
fn write_split_folders(ds: PathBuf, train: &[&str], query: &[&str], gallery: &[&str]) -> PathBuf {
    touch(&ds.join("bounding_box_train"), train);
    touch(&ds.join("query"), query);
    touch(&ds.join("bounding_box_test"), gallery);
    ds
}

/// A tiny Market-1501 under `<out>/Market-1501-v15.09.15`.
fn write_market(out: &Path) -> PathBuf {
    let ds = out.join(market1501::FOLDER);
    write_split_folders(
        ds,
        &[
            "0007_c1s1_000151_01.jpg",
            "0007_c2s1_000301_01.jpg",
            "0002_c6s2_000451_03.jpg",
            "1000_c3s3_000010_00.jpg",
            "Thumbs.db",
        ],
        &["0003_c1s1_000001_00.jpg", "0004_c2s1_000001_00.jpg"],
        &[
            "0003_c4s1_000002_00.jpg",
            "0004_c5s1_000003_00.jpg",
            "0000_c1s1_000004_00.jpg",
            "0000_c2s1_000005_00.jpg",
            "-1_c3s2_000127_01.jpg",
            "-1_c1s2_000128_01.jpg",
        ],
    )
}

#[test]
fn market_counts_junk_distractors_relabel_and_camids() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = write_market(tmp.path());
    let d = market1501::parse(tmp.path(), &ImageDatasetOptions::default()).unwrap();
    assert_eq!(d.root, ds);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let s = d.splits.stats();
    assert_eq!(s.train, split_stats(4, 3, 4));
    assert_eq!(s.query, split_stats(2, 2, 2));
    // Junk -1 dropped, distractor 0 kept (one id).
    assert_eq!(s.gallery, split_stats(4, 3, 4));
    assert_eq!(d.num_train_ids, 3);
    // Sorted discovery; ascending relabel: 2 -> 0, 7 -> 1, 1000 -> 2.
    let train: Vec<(String, i64, u32)> = d
        .splits
        .train
        .iter()
        .map(|r| (name_of(r), r.pid, r.camid))
        .collect();
    assert_eq!(
        train,
        vec![
            ("0002_c6s2_000451_03.jpg".to_string(), 0, 5),
            ("0007_c1s1_000151_01.jpg".to_string(), 1, 0),
            ("0007_c2s1_000301_01.jpg".to_string(), 1, 1),
            ("1000_c3s3_000010_00.jpg".to_string(), 2, 2),
        ]
    );
    // Query/gallery keep raw pids.
    let gallery_pids: Vec<i64> = d.splits.gallery.iter().map(|r| r.pid).collect();
    assert_eq!(gallery_pids, vec![0, 0, 3, 4]);
    assert!(d.splits.gallery.iter().all(|r| r.pid != -1));
}

#[test]
fn market_fastreid_relabel_order_is_lexicographic() {
    let tmp = tempfile::tempdir().unwrap();
    write_market(tmp.path());
    let opts = ImageDatasetOptions::default().with_relabel(RelabelOrder::FastReid);
    let d = market1501::parse(tmp.path(), &opts).unwrap();
    // "1000" < "2" < "7"
    let by_name: Vec<(String, i64)> = d.splits.train.iter().map(|r| (name_of(r), r.pid)).collect();
    assert_eq!(by_name[0].1, 1); // pid 2
    assert_eq!(by_name[1].1, 2); // pid 7
    assert_eq!(by_name[3].1, 0); // pid 1000
}

#[test]
fn market_root_resolution_at_every_level() {
    let tmp = tempfile::tempdir().unwrap();
    // torchreid: <root>/market1501/Market-1501-v15.09.15
    let tr = tmp.path().join("tr");
    let ds_tr = write_market(&tr.join("market1501"));
    // fast-reid: datasets/Market-1501-v15.09.15
    let fr = tmp.path().join("datasets");
    let ds_fr = write_market(&fr);
    let o = ImageDatasetOptions::default();
    assert_eq!(market1501::parse(&tr, &o).unwrap().root, ds_tr);
    assert_eq!(market1501::parse(&fr, &o).unwrap().root, ds_fr);
    assert_eq!(market1501::parse(&ds_fr, &o).unwrap().root, ds_fr);
    // torchreid's fallback: <root>/market1501 without the versioned folder.
    let fb = tmp.path().join("fb");
    let inner = write_market(&fb);
    fs::rename(&inner, fb.join("market1501")).unwrap();
    assert_eq!(
        market1501::parse(&fb, &o).unwrap().root,
        fb.join("market1501")
    );
}

#[test]
fn market_wrong_layout_names_expected_path() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join(market1501::FOLDER);
    touch(&ds.join("bounding_box_train"), &["0001_c1s1_000001_00.jpg"]);
    touch(&ds.join("query"), &[]);
    let err = market1501::parse(tmp.path(), &ImageDatasetOptions::default()).unwrap_err();
    match &err {
        DataError::Layout { path, expected } => {
            assert_eq!(path, &ds);
            assert!(expected.contains("bounding_box_test"), "{expected}");
            assert!(
                expected.contains("market1501/Market-1501-v15.09.15"),
                "{expected}"
            );
        }
        other => panic!("expected a layout error, got {other}"),
    }
    assert!(err.to_string().contains(&ds.display().to_string()));
}

#[test]
fn market_bad_names_and_cameras_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = write_market(tmp.path());
    let bad = ds.join("query").join("person_01.jpg");
    fs::write(&bad, b"").unwrap();
    assert_malformed(
        market1501::parse(tmp.path(), &ImageDatasetOptions::default()),
        &bad,
    );
    fs::remove_file(&bad).unwrap();

    let cam7 = ds.join("bounding_box_test").join("0003_c7s1_000002_00.jpg");
    fs::write(&cam7, b"").unwrap();
    let err = market1501::parse(tmp.path(), &ImageDatasetOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("0003_c7s1_000002_00.jpg") && msg.contains("1..=6"),
        "{msg}"
    );
    fs::remove_file(&cam7).unwrap();

    let neg = ds.join("bounding_box_test").join("-2_c1s1_000002_00.jpg");
    fs::write(&neg, b"").unwrap();
    let err = market1501::parse(tmp.path(), &ImageDatasetOptions::default()).unwrap_err();
    assert!(err.to_string().contains("-2_c1s1_000002_00.jpg"), "{err}");
}

#[test]
fn market_forced_count_check_warns_with_both_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    write_market(tmp.path());
    let opts = ImageDatasetOptions::default().with_expect_full(ExpectFull::Always);
    let d = market1501::parse(tmp.path(), &opts).unwrap();
    assert!(
        d.warnings.contains(
            &"Market-1501: gallery has 4 images, the published full set has 15,913".to_string()
        ),
        "{:?}",
        d.warnings
    );
    assert_eq!(d.warnings.len(), 6);
}

fn write_duke(out: &Path) -> PathBuf {
    let ds = out.join(dukemtmc::FOLDER);
    write_split_folders(
        ds,
        &[
            "0005_c2_f0046182.jpg",
            "0001_c8_f0000001.jpg",
            "0005_c3_f0046200.jpg",
        ],
        &["0010_c1_f0000100.jpg"],
        &["0010_c4_f0000200.jpg", "7140_c5_f0000300.jpg", "readme.txt"],
    )
}

#[test]
fn duke_parses_with_distractor_ids_and_eight_cameras() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = write_duke(&tmp.path().join("dukemtmc-reid"));
    let o = ImageDatasetOptions::default();
    let d = dukemtmc::parse(tmp.path(), &o).unwrap();
    assert_eq!(d.root, ds);
    let s = d.splits.stats();
    assert_eq!(s.train, split_stats(3, 2, 3));
    assert_eq!(s.gallery, split_stats(2, 2, 2));
    let cams: Vec<u32> = d.splits.train.iter().map(|r| r.camid).collect();
    assert_eq!(cams, vec![7, 1, 2]);
    let pids: Vec<i64> = d.splits.train.iter().map(|r| r.pid).collect();
    assert_eq!(pids, vec![0, 1, 1]);
    assert_eq!(dukemtmc::parse(&ds, &o).unwrap().root, ds);
    assert_eq!(
        dukemtmc::parse(&tmp.path().join("dukemtmc-reid"), &o)
            .unwrap()
            .root,
        ds
    );
    fs::write(ds.join("query").join("0010_c9_f0000100.jpg"), b"").unwrap();
    let err = dukemtmc::parse(&ds, &o).unwrap_err();
    assert!(err.to_string().contains("1..=8"), "{err}");
}

fn write_cuhk(out: &Path, kind: &str) -> PathBuf {
    let ds = out.join("cuhk03-np").join(kind);
    write_split_folders(
        ds,
        &["0001_c1_01.png", "0001_c2_06.png", "0009_c1_02.png"],
        &["0020_c1_01.png", "0021_c2_01.png"],
        &["0020_c2_07.png", "0021_c1_02.png", "0021_c1_03.png"],
    )
}

#[test]
fn cuhk03_np_folders_both_kinds_and_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = write_cuhk(tmp.path(), "labeled");
    let det = write_cuhk(tmp.path(), "detected");
    fs::write(det.join("query").join("0022_c1_01.png"), b"").unwrap();
    let opts = |kind| {
        Cuhk03Options::default()
            .with_kind(kind)
            .with_common(ImageDatasetOptions::default())
    };
    let l = cuhk03::parse(tmp.path(), &opts(Cuhk03Kind::Labeled)).unwrap();
    assert_eq!(l.root, lab);
    let s = l.splits.stats();
    assert_eq!(s.train, split_stats(3, 2, 2));
    assert_eq!(s.query, split_stats(2, 2, 2));
    assert_eq!(s.gallery, split_stats(3, 2, 2));
    let d = cuhk03::parse(&tmp.path().join("cuhk03-np"), &opts(Cuhk03Kind::Detected)).unwrap();
    assert_eq!(d.root, det);
    assert_eq!(d.splits.query.len(), 3);
    assert_eq!(
        cuhk03::parse(&det, &opts(Cuhk03Kind::Detected))
            .unwrap()
            .root,
        det
    );
    // Views outside 1..=2 are errors naming the file.
    let bad = lab.join("query").join("0020_c3_01.png");
    fs::write(&bad, b"").unwrap();
    assert_malformed(cuhk03::parse(tmp.path(), &opts(Cuhk03Kind::Labeled)), &bad);
    // Missing everything: the canonical released path is named.
    let empty = tempfile::tempdir().unwrap();
    assert_layout(
        cuhk03::parse(empty.path(), &opts(Cuhk03Kind::Detected)),
        &empty.path().join("cuhk03-np/detected"),
    );
}

#[test]
fn cuhk03_torchreid_split_json_with_moved_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cuhk03");
    let images = root.join("images_labeled");
    touch(
        &images,
        &[
            "1_001_1_01.png",
            "1_001_2_06.png",
            "1_002_1_01.png",
            "2_010_1_01.png",
            "2_010_2_07.png",
        ],
    );
    // Absolute paths from another machine (moved), and one valid path.
    let json = serde_json::json!([{
        "train": [["/old/cuhk03/images_labeled/1_001_1_01.png", 5, 0],
                  ["/old/cuhk03/images_labeled/1_001_2_06.png", 5, 1],
                  [images.join("1_002_1_01.png").to_string_lossy(), 2, 0]],
        "query": [["/old/cuhk03/images_labeled/2_010_1_01.png", 10, 0]],
        "gallery": [["/old/cuhk03/images_labeled/2_010_2_07.png", 10, 1]],
        "num_train_pids": 2
    }]);
    fs::write(root.join("splits_new_labeled.json"), json.to_string()).unwrap();
    let opts = Cuhk03Options::default();
    let d = cuhk03::parse(tmp.path(), &opts).unwrap();
    assert_eq!(d.num_train_ids, 2);
    let pids: Vec<i64> = d.splits.train.iter().map(|r| r.pid).collect();
    assert_eq!(pids, vec![1, 1, 0]);
    assert_eq!(
        d.splits.train[0].location,
        ImageLocation::Path(images.join("1_001_1_01.png"))
    );
    assert_eq!(d.splits.gallery[0].camid, 1);
    // A listed image that exists nowhere is an error naming the JSON and entry.
    let json = serde_json::json!([{
        "train": [["/old/x/missing.png", 0, 0]], "query": [], "gallery": []
    }]);
    fs::write(root.join("splits_new_labeled.json"), json.to_string()).unwrap();
    let err = cuhk03::parse(&root, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("splits_new_labeled.json") && msg.contains("train entry 0"),
        "{msg}"
    );
}
