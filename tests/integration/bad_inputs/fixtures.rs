//! The small files the corpus feeds the programs: weights, `.npy` arrays,
//! images, datasets, annotation files, recipes and logs — good ones and bad
//! ones, all written into one temporary folder.

use std::path::{Path, PathBuf};

use super::support::{a, run};

/// The `.npy` bytes of an array: format 1.0, the given header fields.
pub fn npy(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
    let header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    npy_with_header(&header, data)
}

/// The `.npy` bytes of format 1.0 with the header dictionary `header` as
/// given (padded to 64 bytes) and then `data`.
pub fn npy_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    let total = 10 + h.len() + 1;
    h.push_str(&" ".repeat((64 - total % 64) % 64));
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

/// Little-endian float32 bytes.
pub fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian int64 bytes.
pub fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `n` pseudo-random floats in `[-1, 1)` from `seed`.
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// CRC-32 (IEEE) of `bytes`, for hand-made PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A PNG whose header claims `w × h` RGB pixels, with a few bytes of data.
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunk = |out: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Every file the corpus uses.
pub struct Fixtures {
    /// The temporary folder holding them.
    pub root: PathBuf,
    /// A Market-1501-style dataset root (`Market-1501-v15.09.15` inside).
    pub market: PathBuf,
    /// A LUPerson-NL-style corpus root.
    pub nl: PathBuf,
    /// A LUPerson-style corpus root.
    pub lup: PathBuf,
    /// A valid JPEG crop.
    pub jpg: PathBuf,
    /// Tiny ResNet-18 (base width 4) weights as safetensors.
    pub weights: PathBuf,
    /// CION annotations over the Market train images.
    pub annos: PathBuf,
    /// The tiny CION recipe.
    pub cion_toml: PathBuf,
    /// The tiny BoT recipe.
    pub bot_toml: PathBuf,
    /// The tiny MoCo recipe.
    pub moco_toml: PathBuf,
    /// The tiny PNL recipe.
    pub pnl_toml: PathBuf,
}

impl Fixtures {
    /// A path under the root.
    pub fn p(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Writes `bytes` to `name` under the root; returns its path.
    pub fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.p(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A folder `name` under the root holding copies of the good JPEG
    /// named `good` and the extra `(name, bytes)` files.
    pub fn image_dir(&self, name: &str, good: &[&str], extra: &[(&str, Vec<u8>)]) -> PathBuf {
        let d = self.p(name);
        std::fs::create_dir_all(&d).unwrap();
        for g in good {
            std::fs::copy(&self.jpg, d.join(g)).unwrap();
        }
        for (n, b) in extra {
            std::fs::write(d.join(n), b).unwrap();
        }
        d
    }

    /// A copy of the Market dataset under `name`, changed by `edit` (given
    /// the `bounding_box_train` folder).
    pub fn market_copy(&self, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
        let to = self.p(name);
        copy_tree(&self.market, &to);
        edit(&to.join("Market-1501-v15.09.15").join("bounding_box_train"));
        to
    }

    /// The bytes of the good JPEG.
    pub fn jpg_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.jpg).unwrap()
    }
}

/// Copies a folder tree (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// The first `.jpg` below `dir`, depth first, sorted.
fn first_jpg(dir: &Path) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            if let Some(j) = first_jpg(&e) {
                return Some(j);
            }
        } else if e.extension().is_some_and(|x| x == "jpg") {
            return Some(e);
        }
    }
    None
}

/// Runs `reid synth` for one layout (a fixture step; must succeed).
fn synth(out: &Path, kind: &str, extra: &[&str]) {
    let mut args: Vec<std::ffi::OsString> = vec![
        "synth".into(),
        "--out".into(),
        a(out),
        "--kind".into(),
        kind.into(),
        "--height".into(),
        "32".into(),
        "--width".into(),
        "16".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    let o = run(&args, std::time::Duration::from_secs(300));
    assert_eq!(o.code, Some(0), "fixture synth {kind}: {}", o.stderr);
}

/// The `synth` flags of both corpora (LUPerson-NL and LUPerson styles): two
/// videos of four persons in one city.
const CORPUS_WORLD: [&str; 8] = [
    "--videos",
    "2",
    "--countries",
    "1",
    "--cities",
    "1",
    "--persons-per-video",
    "4",
];

/// Writes every fixture into a fresh temporary folder.
pub fn build() -> Fixtures {
    let root = std::env::temp_dir().join(format!("reid-bad-inputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();

    let market = root.join("market");
    synth(
        &market,
        "market1501",
        &[
            "--train-ids",
            "6",
            "--test-ids",
            "4",
            "--cameras",
            "2",
            "--junk",
            "0",
            "--distractors",
            "0",
        ],
    );
    let nl = root.join("nl");
    synth(&nl, "luperson-nl", &CORPUS_WORLD);
    let lup = root.join("lup");
    synth(&lup, "luperson", &CORPUS_WORLD);
    let train = market
        .join("Market-1501-v15.09.15")
        .join("bounding_box_train");
    let jpg = first_jpg(&train).expect("a synthetic image");

    // Tiny ResNet-18 weights.
    let device = reid::burn::tensor::Device::flex();
    device.seed(3);
    let model = reid::backbones::build_backbone("resnet18", 4, 1, &device).unwrap();
    let weights = root.join("r18w4.safetensors");
    reid::backbones::import::save_safetensors(&model, &weights).unwrap();

    // CION annotations over the Market train images (id = the file's pid).
    let mut entries: Vec<String> = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(&train)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    for n in &names {
        let id: i64 = n[..4].parse().unwrap();
        entries.push(format!(
            "{{\"file_path\": \"Market-1501-v15.09.15/bounding_box_train/{n}\", \"id\": {id}}}"
        ));
    }
    let annos = root.join("annos.json");
    // Relative paths resolve against the JSON's folder: the Market root.
    let annos_in_market = market.join("annos.json");
    std::fs::write(&annos_in_market, format!("[{}]", entries.join(",\n"))).unwrap();
    std::fs::copy(&annos_in_market, &annos).ok();

    let cion_toml = root.join("cion.toml");
    std::fs::write(
        &cion_toml,
        "arch = \"resnet18\"\nbase_width = 4\nglobal_size = [32, 16]\nlocal_size = [16, 8]\n\
         local_crops = 2\nbatch_size = 4\nepochs = 2\nhead_hidden_dim = 16\n\
         head_bottleneck_dim = 8\nout_dim = 16\nwarmup_epochs = 0\n\
         [k_schedule]\nepochs = [1000]\ninstances = [2]\n",
    )
    .unwrap();
    let bot_toml = root.join("bot.toml");
    std::fs::write(
        &bot_toml,
        "arch = \"resnet18\"\nbase_width = 4\nheight = 32\nwidth = 16\np = 2\nk = 2\n\
         epochs = 1\niters_per_epoch = 1\neval_every = 0\n[warmup]\niters = 0\n",
    )
    .unwrap();
    let moco_toml = root.join("moco.toml");
    std::fs::write(
        &moco_toml,
        "arch = \"resnet18\"\nbase_width = 4\nsize = [32, 16]\nbatch_size = 4\nbn_groups = 1\n\
         epochs = 1\nmlp_hidden_dim = 16\ndim = 8\nqueue_size = 16\n",
    )
    .unwrap();
    let pnl_toml = root.join("pnl.toml");
    std::fs::write(
        &pnl_toml,
        "arch = \"resnet18\"\nbase_width = 4\nsize = [32, 16]\nbatch_size = 4\nbn_groups = 1\n\
         epochs = 1\ncls_dim = 8\nmlp_hidden_dim = 16\ndim = 8\nqueue_size = 16\n",
    )
    .unwrap();

    Fixtures {
        root,
        market,
        nl,
        lup,
        jpg,
        weights,
        annos: annos_in_market,
        cion_toml,
        bot_toml,
        moco_toml,
        pnl_toml,
    }
}
