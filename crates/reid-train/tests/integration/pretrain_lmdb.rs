//! Pre-training from an LMDB corpus (cargo feature `lmdb`): the same images
//! packed into a LUPerson LMDB (`keys.pkl` + `data.mdb`, as the upstream
//! converter writes) train bit-identically to the image files, and LMDB
//! keys without an LMDB image source are a clear error.
//!
//! ```sh
//! cargo test --workspace --features reid/lmdb --test pretrain_lmdb
//! ```
#![cfg(feature = "lmdb")]

use crate::common;
use reid_train::FromConfig;

use burn::tensor::Device;
use common::{loss_bits, tiny_moco, tiny_records};
use reid_data::ImageLocation;
use reid_data::datasets::lmdb::{write_env, write_keys};
use reid_data::datasets::luperson;
use reid_train::pretrain::moco::{MocoConfig, pretrain_moco};
use reid_train::{PretrainEvent, RunOptions};

/// The tiny MoCo recipe, 2 epochs of 3 steps.
fn tiny_config() -> MocoConfig {
    tiny_moco(2).with_max_steps_per_epoch(Some(3)).with_seed(11)
}

#[test]
fn moco_on_an_lmdb_equals_moco_on_the_same_files() {
    let (dir, files) = tiny_records("moco-lmdb");
    // Pack the files into a LUPerson LMDB, key i ↔ file i (one video).
    let keys: Vec<String> = (0..files.len())
        .map(|i| format!("00_00_0000_{i:08}"))
        .collect();
    let bytes: Vec<Vec<u8>> = files
        .iter()
        .map(|r| match &r.location {
            ImageLocation::Path(p) => std::fs::read(p).unwrap(),
            ImageLocation::LmdbKey(_) => unreachable!("synthetic files"),
        })
        .collect();
    let lmdb = dir.join("LUPerson");
    write_env(
        &lmdb,
        keys.iter()
            .map(String::as_str)
            .zip(bytes.iter().map(Vec::as_slice)),
        64 << 20,
    )
    .unwrap();
    write_keys(&lmdb.join("keys.pkl"), &keys, None, false).unwrap();
    let corpus = luperson::parse(&dir).unwrap();
    let packed: Vec<_> = corpus.images().cloned().collect();
    assert_eq!(packed.len(), files.len());
    assert_eq!(
        packed[3].location,
        ImageLocation::LmdbKey("00_00_0000_00000003".into())
    );

    let device = Device::flex();
    let cfg = tiny_config();
    let plain = RunOptions::default();
    let on_files = pretrain_moco(&cfg, FromConfig, &files, &device, &plain, |_| {}).unwrap();

    // Without an LMDB source the keys are refused before training starts.
    let Err(err) = pretrain_moco(&cfg, FromConfig, &packed, &device, &plain, |_| {}) else {
        panic!("LMDB keys without an LMDB source were accepted");
    };
    assert!(
        err.to_string().contains("00_00_0000_00000000") && err.to_string().contains("LMDB"),
        "{err}"
    );

    let run = RunOptions::default().with_image_source(corpus.image_source().unwrap());
    let mut steps = 0;
    let on_lmdb = pretrain_moco(&cfg, FromConfig, &packed, &device, &run, |e| {
        if let PretrainEvent::Step(_) = e {
            steps += 1;
        }
    })
    .unwrap();
    assert_eq!(steps, 6);
    assert_eq!(on_lmdb.steps_done, on_files.steps_done);
    assert_eq!(
        loss_bits(&on_lmdb.log),
        loss_bits(&on_files.log),
        "LMDB and file runs must draw the same batches and views"
    );

    // A key missing from the database names the database and the key.
    let mut broken = packed.clone();
    broken[0].location = ImageLocation::LmdbKey("00_00_0000_99999999".into());
    let Err(err) = pretrain_moco(&cfg, FromConfig, &broken, &device, &run, |_| {}) else {
        panic!("a key missing from the LMDB was accepted");
    };
    assert!(err.to_string().contains("99999999"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
