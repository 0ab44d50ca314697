//! MSMT17 (V1/V2 list files) and CION-AL `annos.json`.

use std::fs;
use std::path::{Path, PathBuf};

use reid_data::DataError;
use reid_data::datasets::cional::{self, Anno, CionAl};
use reid_data::datasets::{ImageDatasetOptions, Msmt17Options, Msmt17Version, msmt17};

use crate::common::{assert_layout, assert_malformed, split_stats};

fn touch(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"").unwrap();
}

/// A tiny MSMT17 of `version` under `out`; returns the version folder.
fn write_msmt(out: &Path, version: Msmt17Version) -> PathBuf {
    let ds = out.join(version.folder());
    let (train, test) = version.image_dirs();
    let train_lines = [
        "0000/0000_000_01_0303morning_0015_0.jpg 0",
        "0000/0000_001_03_0303morning_0016_0.jpg 0",
        "0001/0001_000_15_0303noon_0001_1.jpg 1",
    ];
    let val_lines = ["0002/0002_000_02_0303afternoon_0001_0.jpg 2"];
    let query_lines = ["0000/0000_000_05_0113morning_0001_0.jpg 0"];
    let gallery_lines = [
        "0000/0000_001_06_0113morning_0002_0.jpg 0",
        "0001/0001_000_07_0113noon_0003_0.jpg 1",
    ];
    for (list, dir, lines) in [
        ("list_train.txt", train, &train_lines[..]),
        ("list_val.txt", train, &val_lines[..]),
        ("list_query.txt", test, &query_lines[..]),
        ("list_gallery.txt", test, &gallery_lines[..]),
    ] {
        let mut text = String::new();
        for l in lines {
            touch(&ds.join(dir).join(l.split(' ').next().unwrap()));
            text.push_str(l);
            text.push('\n');
        }
        fs::write(ds.join(list), text).unwrap();
    }
    ds
}

#[test]
fn msmt17_v1_lists_camids_and_val_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = write_msmt(&tmp.path().join("msmt17"), Msmt17Version::V1);
    let d = msmt17::parse(tmp.path(), &Msmt17Options::default()).unwrap();
    assert_eq!(d.root, ds);
    let s = d.splits.stats();
    assert_eq!(s.train, split_stats(3, 2, 3));
    assert_eq!(s.query, split_stats(1, 1, 1));
    assert_eq!(s.gallery, split_stats(2, 2, 2));
    let cams: Vec<u32> = d.splits.train.iter().map(|r| r.camid).collect();
    assert_eq!(cams, vec![0, 2, 14]);
    assert!(d.warnings.is_empty());
    let merged = msmt17::parse(&ds, &Msmt17Options::default().with_merge_val(true)).unwrap();
    assert_eq!(merged.splits.train.len(), 4);
    assert_eq!(merged.num_train_ids, 3);
}

#[test]
fn msmt17_v2_folders_and_version_pinning() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = write_msmt(tmp.path(), Msmt17Version::V2);
    let d = msmt17::parse(tmp.path(), &Msmt17Options::default()).unwrap();
    assert_eq!(d.root, ds);
    assert!(
        d.splits.train[0]
            .location
            .eq(&reid_data::ImageLocation::Path(ds.join(
                "mask_train_v2/0000/0000_000_01_0303morning_0015_0.jpg"
            )))
    );
    assert_layout(
        msmt17::parse(
            tmp.path(),
            &Msmt17Options::default().with_version(Some(Msmt17Version::V1)),
        ),
        &tmp.path().join("MSMT17_V1"),
    );
}

#[test]
fn msmt17_bad_lines_and_missing_images_name_the_list() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = write_msmt(tmp.path(), Msmt17Version::V1);
    let list = ds.join("list_query.txt");
    fs::write(&list, "0000/0000_000_05_0113morning_0001_0.jpg 0 extra\n").unwrap();
    let err = assert_malformed(msmt17::parse(tmp.path(), &Msmt17Options::default()), &list);
    assert!(err.to_string().contains("line 1"), "{err}");

    fs::write(&list, "0000/0000_000_16_0113morning_0001_0.jpg 0\n").unwrap();
    let err = msmt17::parse(tmp.path(), &Msmt17Options::default()).unwrap_err();
    assert!(err.to_string().contains("1..=15"), "{err}");

    fs::write(&list, "0000/0000_009_05_0113morning_0001_0.jpg 0\n").unwrap();
    let err = msmt17::parse(tmp.path(), &Msmt17Options::default()).unwrap_err();
    match &err {
        DataError::Layout { path, expected } => {
            assert!(path.ends_with("test/0000/0000_009_05_0113morning_0001_0.jpg"));
            assert!(expected.contains("line 1") && expected.contains("list_query.txt"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn cional_write_sorts_by_id_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("CION_AL");
    fs::create_dir_all(&dir).unwrap();
    let annos = vec![
        Anno {
            file_path: "sec1/vid2/b.jpg".into(),
            id: 3,
        },
        Anno {
            file_path: "sec0/vid1/a.jpg".into(),
            id: 0,
        },
        Anno {
            file_path: "sec0/vid1/c.jpg".into(),
            id: 3,
        },
        Anno {
            file_path: "top.jpg".into(),
            id: 1,
        },
    ];
    let path = dir.join("cional_annos.json");
    cional::write_annos(&path, &annos).unwrap();
    let back = cional::read_annos(&path).unwrap();
    let ids: Vec<i64> = back.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![0, 1, 3, 3]);
    assert_eq!(back[2].file_path, "sec0/vid1/c.jpg");
    // It is plain JSON of the documented shape.
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        v[0],
        serde_json::json!({"file_path": "sec0/vid1/a.jpg", "id": 0})
    );

    let set = CionAl::open(tmp.path()).unwrap();
    assert_eq!(set.annos_path, path);
    assert_eq!(set.by_identity().get(&3).map(Vec::len), Some(2));
    let dirs: Vec<String> = set.by_directory().keys().cloned().collect();
    assert_eq!(dirs, vec!["", "sec0/vid1", "sec1/vid2"]);

    let d = cional::parse(&path, &ImageDatasetOptions::default()).unwrap();
    assert_eq!(d.num_train_ids, 3);
    assert_eq!(d.splits.stats().train, split_stats(4, 3, 1));
    assert!(d.splits.query.is_empty() && d.splits.gallery.is_empty());
    let pids: Vec<i64> = d.splits.train.iter().map(|r| r.pid).collect();
    assert_eq!(pids, vec![0, 1, 2, 2]);
}

#[test]
fn cional_bad_entry_names_file_and_index() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("annos.json");
    fs::write(
        &path,
        r#"[{"file_path": "a.jpg", "id": 0}, {"file_path": "b.jpg", "id": "x"}]"#,
    )
    .unwrap();
    let err = cional::read_annos(&path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("annos.json") && msg.contains("entry 1"),
        "{msg}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert_layout(CionAl::open(empty.path()), &empty.path().join("CION_AL"));
}
