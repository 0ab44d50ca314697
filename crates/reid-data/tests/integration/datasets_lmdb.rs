//! LMDB + keys.pkl routes of LUPerson and LUPerson-NL (feature `lmdb`).
#![cfg(feature = "lmdb")]

use std::io::Cursor;
use std::path::Path;

use reid_data::DataError;
use reid_data::datasets::lmdb::{LmdbReader, read_keys, write_env, write_keys};
use reid_data::datasets::{luperson, luperson_nl};
use reid_data::record::ImageLocation;

use crate::common::corpus_stats;

fn jpeg(v: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(1, 1, image::Rgb([v, v, v]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn write_db(dir: &Path, keys: &[&str]) -> Vec<Vec<u8>> {
    let vals: Vec<Vec<u8>> = (0..keys.len()).map(|i| jpeg(40 * i as u8)).collect();
    write_env(
        dir,
        keys.iter().copied().zip(vals.iter().map(Vec::as_slice)),
        1 << 20,
    )
    .unwrap();
    vals
}

#[test]
fn luperson_lmdb_with_list_or_dict_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("LUPerson");
    let keys = [
        "00_00_0000_00000000",
        "00_00_0000_00000001",
        "01_02_0003_00000000",
    ];
    let vals = write_db(&dir, &keys);
    let owned: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    for as_dict in [false, true] {
        write_keys(&dir.join("keys.pkl"), &owned, None, as_dict).unwrap();
        let kf = read_keys(&dir.join("keys.pkl")).unwrap();
        assert_eq!(kf.keys, owned);
        assert_eq!(kf.pids, None);
        let c = luperson::parse(tmp.path()).unwrap();
        assert_eq!(c.stats(), corpus_stats(2, 0, 3));
        assert_eq!(
            c.videos[1].untracked[0].location,
            ImageLocation::LmdbKey("01_02_0003_00000000".into())
        );
    }
    let reader = LmdbReader::open(&dir).unwrap();
    assert_eq!(reader.len().unwrap(), 3);
    assert_eq!(reader.get(keys[1]).unwrap(), vals[1]);
    assert_eq!(reader.image(keys[2]).unwrap().dimensions(), (1, 1));
    let err = reader.get("99_99_9999_99999999").unwrap_err();
    assert!(err.to_string().contains("99_99_9999_99999999"), "{err}");
}

#[test]
fn luperson_nl_lmdb_keys_and_pids() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("LUPerson-NL");
    let keys = [
        "00001_000000_0000003_00",
        "00001_000000_0000001_00",
        "00001_000001_0000001_01",
        "00002_000002_0000000_00",
    ];
    write_db(&dir.join("lmdb"), &keys);
    let owned: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    write_keys(&dir.join("keys.pkl"), &owned, Some(&[0, 0, 1, 2]), true).unwrap();
    let c = luperson_nl::parse(tmp.path()).unwrap();
    assert_eq!(c.root, dir.join("lmdb"));
    assert_eq!(c.stats(), corpus_stats(2, 3, 4));
    let t0 = &c.videos[0].tracklets[0];
    let frames: Vec<Option<u64>> = t0.images.iter().map(|r| r.frame).collect();
    assert_eq!(frames, vec![Some(1), Some(3)]);
    assert_eq!(c.videos[1].name, "00002");
    // A label that disagrees with the key is an error naming keys.pkl and the entry.
    write_keys(&dir.join("keys.pkl"), &owned, Some(&[0, 0, 1, 5]), true).unwrap();
    let err = luperson_nl::parse(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, DataError::Malformed { path, expected } if path.ends_with("keys.pkl") && expected.contains("entry 3")),
        "{err}"
    );
    // A plain list lacks the labels LUPerson-NL needs.
    write_keys(&dir.join("keys.pkl"), &owned, None, false).unwrap();
    assert!(luperson_nl::parse(tmp.path()).is_err());
}

/// Databases written by the upstream converters' way (python `lmdb` + `pickle`,
/// `tools/fixtures/gen_lmdb_fixtures.py`), read by our reader.
mod python_written {
    use super::*;

    fn fnv1a64(data: &[u8]) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    fn fixture_copy() -> tempfile::TempDir {
        // Copied so that opening the environment (which may create lock.mdb)
        // never touches the repository.
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lmdb");
        let tmp = tempfile::tempdir().unwrap();
        for rel in [
            "LUPerson/data.mdb",
            "LUPerson/keys.pkl",
            "LUPerson-NL/lmdb/data.mdb",
            "LUPerson-NL/keys.pkl",
            "manifest.json",
        ] {
            let dst = tmp.path().join(rel);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(src.join(rel), &dst).unwrap();
        }
        tmp
    }

    fn check_entries(reader: &LmdbReader, entries: &serde_json::Value) {
        for e in entries.as_array().unwrap() {
            let key = e["key"].as_str().unwrap();
            let bytes = reader.get(key).unwrap();
            assert_eq!(bytes.len() as u64, e["len"].as_u64().unwrap(), "{key}");
            assert_eq!(fnv1a64(&bytes), e["fnv1a64"].as_str().unwrap(), "{key}");
            let img = reader.image(key).unwrap();
            assert_eq!(
                img.dimensions(),
                (
                    e["width"].as_u64().unwrap() as u32,
                    e["height"].as_u64().unwrap() as u32
                ),
                "{key}"
            );
        }
    }

    #[test]
    fn luperson_db_and_plain_list_keys_from_python() {
        let tmp = fixture_copy();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("manifest.json")).unwrap())
                .unwrap();
        let kf = read_keys(&tmp.path().join("LUPerson/keys.pkl")).unwrap();
        assert_eq!(kf.keys.len(), 5);
        assert_eq!(kf.pids, None);
        let c = luperson::parse(&tmp.path().join("LUPerson")).unwrap();
        assert_eq!(c.stats(), corpus_stats(3, 0, 5));
        let reader = LmdbReader::open(&tmp.path().join("LUPerson")).unwrap();
        assert_eq!(reader.len().unwrap(), 5);
        check_entries(&reader, &manifest["luperson"]);
    }

    #[test]
    fn luperson_nl_db_and_dict_keys_from_python() {
        let tmp = fixture_copy();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("manifest.json")).unwrap())
                .unwrap();
        let kf = read_keys(&tmp.path().join("LUPerson-NL/keys.pkl")).unwrap();
        let pids: Vec<i64> = manifest["luperson_nl"]["pids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(kf.pids.as_deref(), Some(&pids[..]));
        let c = luperson_nl::parse(&tmp.path().join("LUPerson-NL")).unwrap();
        assert_eq!(c.stats(), corpus_stats(2, 4, 6));
        let reader = LmdbReader::open(&tmp.path().join("LUPerson-NL/lmdb")).unwrap();
        check_entries(&reader, &manifest["luperson_nl"]["entries"]);
    }
}
