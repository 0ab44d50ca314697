//! Property tests of the parsers (issue 25): random and mutated inputs
//! never panic, and what they accept is what they document. Dataset file
//! names and list files, `.npy` headers, `annos.json`, recipe files and
//! `--set` overrides, checkpoint key names and checkpoint folders.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use crate::bad_inputs::fixtures::npy_with_header;
use reid::data::datasets::{cional, luperson_nl, msmt17, naming};
use reid::train::config::{Override, load_recipe};
use reid::train::{CionConfig, FinetuneConfig, MocoConfig};

/// A fresh scratch folder per call.
fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "reid-props-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Bytes of `base` with up to 8 positions overwritten, a cut and an
/// insertion, chosen by `ops`.
fn mutate(base: &[u8], ops: &[(usize, u8)], cut: Option<usize>, insert: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(i, v) in ops {
        if !b.is_empty() {
            let n = b.len();
            b[i % n] = v;
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (base.len() + 1));
    }
    let at = insert.len() % (b.len() + 1);
    b.splice(at..at, insert.iter().copied());
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// The `([-\d]+)_c(\d)` search returns a substring of the name whose
    /// camera is one digit; names with no `_c` after digits give nothing.
    #[test]
    fn pid_camera_search_on_any_name(name in "\\PC{0,40}") {
        if let Some((pid, cam)) = naming::find_pid_cam(&name) {
            prop_assert!(name.contains(pid));
            prop_assert!(cam <= 9);
            prop_assert!(pid.bytes().all(|b| b == b'-' || b.is_ascii_digit()));
        }
        let _ = naming::parse_int(&name);
    }

    /// LUPerson-NL names (`{pid}_{frame}_{obj}`) and LMDB keys parse only
    /// when every field is a number.
    #[test]
    fn luperson_nl_names(stem in "[0-9a-z_]{0,24}", key in "[0-9a-z_/]{0,40}") {
        if let Some([a, b, c]) = luperson_nl::parse_name(&stem) {
            prop_assert_eq!(stem.split('_').count(), 3);
            let _ = (a, b, c);
        }
        let _ = luperson_nl::parse_key(&key);
    }

    /// A well-formed LUPerson-NL name always parses back to its numbers.
    #[test]
    fn luperson_nl_names_round_trip(pid in 0u64..1_000_000, frame in 0u64..10_000_000, obj in 0u64..100) {
        let stem = format!("{pid:06}_{frame:07}_{obj:02}");
        prop_assert_eq!(luperson_nl::parse_name(&stem), Some([pid, frame, obj]));
    }

    /// MSMT17 list files: any text is read or refused with an error naming
    /// the list, never a panic; accepted lines name existing pids.
    #[test]
    fn msmt17_list_files(lines in proptest::collection::vec("[ -~]{0,30}", 0..6)) {
        let d = scratch("msmt");
        let list = d.join("list_train.txt");
        std::fs::write(&list, lines.join("\n")).unwrap();
        match msmt17::read_list(&list, &d) {
            Ok(records) => prop_assert!(records.len() <= lines.len()),
            Err(e) => prop_assert!(e.to_string().contains("list_train.txt") || e.to_string().contains(d.to_str().unwrap())),
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Market-style folders with random file names: parsed or refused with
    /// an error naming the file, never a panic; every parsed record is a
    /// file of the folder.
    #[test]
    fn market_folders_with_random_names(names in proptest::collection::vec("[0-9a-z_.-]{1,24}", 1..6)) {
        let d = scratch("market");
        let m = d.join("Market-1501-v15.09.15");
        for sub in ["bounding_box_train", "query", "bounding_box_test"] {
            std::fs::create_dir_all(m.join(sub)).unwrap();
            for n in &names {
                std::fs::write(m.join(sub).join(format!("{n}.jpg")), b"x").unwrap();
            }
        }
        if let Ok(parsed) = reid::data::datasets::market1501::parse(&d, &Default::default()) {
            for r in parsed.splits.train.iter().chain(&parsed.splits.query) {
                if let reid::data::ImageLocation::Path(p) = &r.location {
                    prop_assert!(p.is_file());
                }
            }
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// `annos.json`: random and mutated documents are read or refused with
    /// an error naming the file.
    #[test]
    fn annos_json(
        ops in proptest::collection::vec((0usize..200, any::<u8>()), 0..8),
        cut in proptest::option::of(0usize..200),
        insert in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let good = br#"[{"file_path": "a/b.jpg", "id": 3}, {"file_path": "a/c.jpg", "id": 4}]"#;
        let d = scratch("annos");
        let p = d.join("annos.json");
        std::fs::write(&p, mutate(good, &ops, cut, &insert)).unwrap();
        match cional::read_annos(&p) {
            Ok(v) => prop_assert!(v.len() <= 2),
            Err(e) => prop_assert!(e.to_string().contains("annos.json"), "{}", e),
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// `.npy` headers: mutated headers are read or refused with an error
    /// naming the file; a header is never trusted beyond the file's size.
    #[test]
    fn npy_headers(
        descr in prop::sample::select(vec!["<f4", ">f4", "<f8", "<i8", "<i4", "|u1", "<f2", "x"]),
        dims in proptest::collection::vec(0u64..5_000_000_000_000, 0..5),
        fortran in any::<bool>(),
        ops in proptest::collection::vec((0usize..128, any::<u8>()), 0..6),
        cut in proptest::option::of(0usize..256),
        data_len in 0usize..256,
    ) {
        let shape = match dims.len() {
            0 => "()".to_string(),
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        };
        let header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        let bytes = mutate(&npy_with_header(&header, &vec![0u8; data_len]), &ops, cut, &[]);
        let d = scratch("npy");
        let p = d.join("x.npy");
        std::fs::write(&p, &bytes).unwrap();
        for r in [
            reid::metrics::npy::read_float_array(&p).map(|a| a.len()),
            reid::metrics::npy::read_matrix(&p).map(|a| a.len()),
            reid::metrics::npy::read_ids(&p).map(|a| a.len()),
        ] {
            match r {
                // Never more values than the file holds bytes.
                Ok(n) => prop_assert!(n * 4 <= bytes.len()),
                Err(e) => prop_assert!(e.to_string().contains("x.npy"), "{}", e),
            }
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// `--set` overrides: any text is parsed or refused; a parsed override
    /// applied to a recipe gives the recipe or an error, never a panic.
    #[test]
    fn overrides(text in "[ -~]{0,40}") {
        if let Ok(o) = Override::parse(&text) {
            let _ = load_recipe::<CionConfig>(None, std::slice::from_ref(&o));
            let _ = load_recipe::<MocoConfig>(None, &[o]);
        }
    }

    /// Recipe files: mutated TOML is loaded or refused with an error naming
    /// the file; an unknown key anywhere is refused.
    #[test]
    fn recipe_files(
        ops in proptest::collection::vec((0usize..400, any::<u8>()), 0..6),
        cut in proptest::option::of(0usize..400),
        insert in "[a-z_ =\\[\\]0-9\\n]{0,12}",
    ) {
        let good = "epochs = 3\nbatch_size = 8\n[k_schedule]\nepochs = [2, 1000]\ninstances = [2, 4]\n";
        let d = scratch("toml");
        let p = d.join("cion.toml");
        std::fs::write(&p, mutate(good.as_bytes(), &ops, cut, insert.as_bytes())).unwrap();
        if let Err(e) = load_recipe::<CionConfig>(Some(&p), &[]) {
            prop_assert!(e.to_string().contains("cion.toml"), "{}", e);
        }
        let bot = d.join("bot.json");
        std::fs::write(&bot, mutate(br#"{"epochs": 2, "warmup": {"iters": 3}}"#, &ops, cut, &[])).unwrap();
        if let Err(e) = load_recipe::<FinetuneConfig>(Some(&bot), &[]) {
            prop_assert!(e.to_string().contains("bot.json"), "{}", e);
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Checkpoint folders with random entries: the newest complete
    /// checkpoint is found or none, never a panic.
    #[test]
    fn checkpoint_folders(names in proptest::collection::vec("(step-)?[0-9a-z.]{0,12}", 0..6), latest in "[ -~]{0,16}") {
        let d = scratch("ckpt");
        for n in &names {
            if !n.is_empty() && n != "." && n != ".." {
                let _ = std::fs::create_dir_all(d.join(n));
            }
        }
        std::fs::write(d.join("latest"), &latest).unwrap();
        let dir = reid::train::checkpoint::CheckpointDir::new(&d, 2);
        if let Ok(Some(c)) = dir.latest() {
            prop_assert!(c.path.is_dir());
            prop_assert!(c.path.file_name().unwrap().to_string_lossy().starts_with("step-"));
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// A safetensors file holding float32 tensors `(name, shape)` (zeros).
fn safetensors(path: &Path, tensors: &[(String, Vec<usize>)]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in tensors {
        let n: usize = shape.iter().product::<usize>() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}),
        );
        offset += n;
    }
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(vec![0u8; offset]);
    std::fs::write(path, out).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// Checkpoint key names: a ResNet-18's keys with random renames, drops
    /// and additions load only when the set is exactly right; otherwise the
    /// error names a key, never a panic, never a silent partial load.
    #[test]
    fn checkpoint_key_names(
        renames in proptest::collection::vec((0usize..200, "[a-z0-9_.]{1,20}"), 0..3),
        drops in proptest::collection::vec(0usize..200, 0..2),
        extra in proptest::collection::vec("[a-z0-9_.]{1,20}", 0..2),
    ) {
        let device = reid::burn::tensor::Device::flex();
        let model = reid::backbones::build_backbone("resnet18", 4, 1, &device).unwrap();
        let d = scratch("keys");
        let good = d.join("good.safetensors");
        reid::backbones::import::save_safetensors(&model, &good).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let mut tensors: Vec<(String, Vec<usize>)> = header
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(k, v)| (k.clone(), v["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()))
            .collect();
        tensors.sort();
        let original: Vec<String> = tensors.iter().map(|t| t.0.clone()).collect();
        for (i, name) in &renames {
            let n = tensors.len();
            tensors[i % n].0 = name.clone();
        }
        for i in &drops {
            let n = tensors.len();
            tensors.remove(i % n);
        }
        for name in &extra {
            tensors.push((name.clone(), vec![2]));
        }
        tensors.sort();
        tensors.dedup_by(|a, b| a.0 == b.0);
        let p = d.join("mutated.safetensors");
        safetensors(&p, &tensors);
        let _ = reid::backbones::import::Layout::detect(tensors.iter().map(|t| &t.0));
        let mut target = reid::backbones::build_backbone("resnet18", 4, 1, &device).unwrap();
        let same: Vec<String> = tensors.iter().map(|t| t.0.clone()).collect();
        match reid::backbones::import::load_backbone(&mut target, &p, &Default::default()) {
            // Nothing the model needs may be missing from what loaded.
            Ok(_) => prop_assert!(original.iter().all(|k| same.contains(k)), "{:?}", same),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.contains("Tensor Loading Summary"), "{}", text);
                prop_assert!(text.contains("mutated.safetensors"), "{}", text);
            }
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Exported safetensors are byte-reproducible: the same weights, saved
/// again and again, give the same bytes (the header's order does not
/// depend on a hash map's seed).
#[test]
fn safetensors_export_is_byte_reproducible() {
    let device = reid::burn::tensor::Device::flex();
    device.seed(1);
    let model = reid::backbones::build_backbone("resnet18", 4, 1, &device).unwrap();
    let d = scratch("export");
    let files: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let p = d.join(format!("{i}.safetensors"));
            reid::backbones::import::save_safetensors(&model, &p).unwrap();
            std::fs::read(&p).unwrap()
        })
        .collect();
    assert!(files.windows(2).all(|w| w[0] == w[1]), "the exports differ");
    let _ = std::fs::remove_dir_all(&d);
}

/// Every table of every recipe refuses a key it does not have: for each
/// object in a recipe's defaults (nested ones included), a file with one
/// unknown key added there must be an error naming that key.
#[test]
fn every_recipe_table_refuses_unknown_keys() {
    fn tables(v: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if let serde_json::Value::Object(m) = v {
            out.push(path.clone());
            for (k, x) in m {
                path.push(k.clone());
                tables(x, path, out);
                path.pop();
            }
        }
    }
    fn check<T>(name: &str) -> Vec<String>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + Default,
    {
        let d = scratch("tables");
        let base = serde_json::to_value(T::default()).unwrap();
        let mut found = Vec::new();
        tables(&base, &mut Vec::new(), &mut found);
        let mut accepted = Vec::new();
        for path in found {
            let mut v = base.clone();
            let mut node = &mut v;
            for k in &path {
                node = node.get_mut(k).unwrap();
            }
            node.as_object_mut()
                .unwrap()
                .insert("zz_unknown_key".into(), 1.into());
            let p = d.join(format!("{name}.json"));
            std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
            match load_recipe::<T>(Some(&p), &[]) {
                Ok(_) => accepted.push(format!("{name}: [{}]", path.join("."))),
                Err(e) => assert!(e.to_string().contains("zz_unknown_key"), "{name}: {e}"),
            }
        }
        let _ = std::fs::remove_dir_all(&d);
        accepted
    }
    let mut accepted = Vec::new();
    accepted.extend(check::<CionConfig>("cion"));
    accepted.extend(check::<MocoConfig>("moco"));
    accepted.extend(check::<reid::train::PnlConfig>("pnl"));
    accepted.extend(check::<FinetuneConfig>("bot"));
    accepted.extend(check::<reid::train::finetune::mgn::MgnFinetuneConfig>(
        "mgn",
    ));
    assert!(
        accepted.is_empty(),
        "tables that accept unknown keys: {accepted:?}"
    );
}
