//! The library side of `examples/inspect.rs`: registry, table, JSON, exit codes.

use reid_data::datasets::inspect::{exit_code, inspect};
use reid_data::datasets::{REGISTRY, by_name, names};

use crate::common::{corpus_stats, split_stats, touch};

#[test]
fn registry_knows_every_cli_name() {
    assert_eq!(
        names(),
        vec![
            "market1501",
            "dukemtmc",
            "msmt17",
            "cuhk03-labeled",
            "cuhk03-detected",
            "lists",
            "luperson",
            "luperson-nl",
            "cional"
        ]
    );
    assert!(by_name("luperson-nl").unwrap().is_corpus);
    assert!(!by_name("market1501").unwrap().is_corpus);
    assert!(by_name("market").is_none());
    assert_eq!(REGISTRY.len(), 9);
}

#[test]
fn inspect_prints_table_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("Market-1501-v15.09.15");
    touch(
        &ds.join("bounding_box_train"),
        &["0001_c1s1_000001_00.jpg", "0002_c2s1_000001_00.jpg"],
    );
    touch(&ds.join("query"), &["0003_c1s1_000001_00.jpg"]);
    touch(
        &ds.join("bounding_box_test"),
        &[
            "0003_c2s1_000001_00.jpg",
            "0000_c3s1_000001_00.jpg",
            "-1_c3s1_000001_00.jpg",
        ],
    );
    let r = inspect("market1501", tmp.path(), true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.output).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "train": {"images": 2, "ids": 2, "cams": 2},
            "query": {"images": 1, "ids": 1, "cams": 1},
            "gallery": {"images": 2, "ids": 2, "cams": 2}
        })
    );
    let t = inspect("market1501", tmp.path(), false).unwrap();
    assert!(
        t.output
            .contains("| subset   | # ids   | # images   | # cameras   |"),
        "{}",
        t.output
    );
    assert!(
        t.output
            .contains("| gallery  | 2       | 2          | 2           |"),
        "{}",
        t.output
    );
}

#[test]
fn inspect_corpus_json_and_layout_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    touch(
        &tmp.path().join("LUPerson-NL/c0/c1/v0"),
        &["000000_0000000_00.jpg", "000001_0000000_01.jpg"],
    );
    let r = inspect("luperson-nl", tmp.path(), true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.output).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"videos": 1, "tracklets": 2, "images": 2})
    );
    let t = inspect("luperson-nl", tmp.path(), false).unwrap();
    assert!(t.output.contains("# tracklets"), "{}", t.output);

    let err = inspect("dukemtmc", tmp.path(), false).unwrap_err();
    assert_eq!(exit_code(&err), 2);
    assert!(
        err.to_string()
            .contains(&tmp.path().join("DukeMTMC-reID").display().to_string())
    );
    let err = inspect("nope", tmp.path(), false).unwrap_err();
    assert_eq!(exit_code(&err), 2);
    assert!(err.to_string().contains("market1501"));
}

#[test]
fn json_keys_keep_the_documented_order() {
    use reid_data::datasets::inspect::{corpus_json, image_json};
    use reid_data::record::DatasetStats;
    let s = split_stats(3, 2, 1);
    let stats = DatasetStats {
        train: s,
        query: s,
        gallery: s,
    };
    assert_eq!(
        image_json(&stats),
        r#"{"train":{"images":3,"ids":2,"cams":1},"query":{"images":3,"ids":2,"cams":1},"gallery":{"images":3,"ids":2,"cams":1}}"#
    );
    let c = corpus_stats(1, 2, 3);
    assert_eq!(corpus_json(&c), r#"{"videos":1,"tracklets":2,"images":3}"#);
}
