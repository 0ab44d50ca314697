//! The bad-input corpus (issue 25): small bad files and arguments for every
//! program of the `reid` command, each run through the binary (the most
//! faithful check of exit codes, panics and aborts), each asserting
//!
//! - no panic (exit code 101) and no abort (134, or any signal);
//! - the documented exit code (`docs/errors.md`: 2 for the user's
//!   arguments or input, 1 for the environment, 0 for valid input);
//! - a message that names the file, flag or field and what was expected,
//!   without library internals (debug output, loader summaries);
//! - for the cases that used to exit 0 with a wrong result, the right
//!   outcome (an error, or a note and a correct file).
//!
//! `REID_CORPUS_BIN=/path/to/reid` measures another build (e.g. an older
//! one) and `REID_CORPUS_REPORT=1` prints the verdicts without failing.

pub(crate) mod fixtures;
mod support;

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use fixtures::{Fixtures, f32s, i64s, noise, npy, png_claiming};
use support::{Case, Class, Verdict, a, run_groups};

/// `Case::new` with `&str` and path arguments mixed.
macro_rules! case {
    ($name:expr, $class:expr, [$($arg:expr),* $(,)?], $code:expr, [$($say:expr),* $(,)?]) => {
        Case::new($name, $class, &[$(OsString::from($arg)),*], $code, &[$($say),*])
    };
}

/// `name` as an argument.
fn s(x: &str) -> OsString {
    OsString::from(x)
}

fn argv_cases(_f: &Fixtures) -> Vec<Case> {
    use Class::Arguments as A;
    vec![
        Case::new("cli/no-subcommand", A, &[] as &[&str], 2, &["usage"]),
        case!(
            "cli/unknown-subcommand",
            A,
            ["frobnicate"],
            2,
            ["frobnicate"]
        ),
        case!("cli/unknown-flag", A, ["extract", "--frob"], 2, ["--frob"]),
        case!("cli/missing-required", A, ["evaluate"], 2, ["required"]),
        case!(
            "cli/not-a-number",
            A,
            ["synth", "--out", "x", "--height", "abc"],
            2,
            ["--height"]
        ),
        case!(
            "cli/negative-count",
            A,
            ["synth", "--out", "x", "--height", "-3"],
            2,
            ["-3"]
        ),
        case!(
            "cli/help",
            Class::Good,
            ["extract", "--help"],
            0,
            ["--on-corrupt"]
        ),
        case!("cli/version", Class::Good, ["--version"], 0, ["reid"]),
    ]
}

fn synth_cases(f: &Fixtures) -> Vec<Case> {
    use Class::Arguments as A;
    let out = a(&f.p("synth-out"));
    let file = f.file("synth-a-file", "x");
    let busy = f.p("synth-busy");
    std::fs::create_dir_all(busy.join("Market-1501-v15.09.15")).unwrap();
    std::fs::write(busy.join("Market-1501-v15.09.15/x"), "x").unwrap();
    let mk = |name: &str, extra: &[&str], says: &[&str]| {
        let mut args = vec![
            s("synth"),
            s("--out"),
            out.clone(),
            s("--kind"),
            s("market1501"),
        ];
        args.extend(extra.iter().map(|x| s(x)));
        Case::new(format!("synth/{name}"), A, &args, 2, says)
    };
    vec![
        mk(
            "height-0",
            &["--height", "0"],
            &["image size 0x64", "too small"],
        ),
        mk("width-0", &["--width", "0"], &["too small"]),
        mk(
            "huge-size",
            &["--height", "100000", "--width", "100000"],
            &["too large"],
        ),
        mk("quality-0", &["--quality", "0"], &["jpeg quality 0"]),
        mk("quality-101", &["--quality", "101"], &["jpeg quality 101"]),
        mk(
            "occlusion-1.5",
            &["--occlusion", "1.5"],
            &["occlusion probability 1.5"],
        ),
        mk(
            "occlusion-nan",
            &["--occlusion", "NaN"],
            &["occlusion probability nan"],
        ),
        mk("cameras-0", &["--cameras", "0"], &["cameras"]),
        mk("cameras-99", &["--cameras", "99"], &["cameras"]),
        mk("train-ids-0", &["--train-ids", "0"], &["train identities"]),
        Case::new(
            "synth/nl-switch-2",
            A,
            &[
                s("synth"),
                s("--out"),
                out.clone(),
                s("--kind"),
                s("luperson-nl"),
                s("--switch"),
                s("2"),
            ],
            2,
            &["switch"],
        ),
        Case::new(
            "synth/out-is-a-file",
            Class::ExitCode,
            &[
                s("synth"),
                s("--out"),
                a(&file),
                s("--kind"),
                s("market1501"),
                s("--height"),
                s("32"),
                s("--width"),
                s("16"),
            ],
            2,
            &["synth-a-file"],
        ),
        Case::new(
            "synth/out-not-empty",
            A,
            &[
                s("synth"),
                s("--out"),
                a(&busy),
                s("--kind"),
                s("market1501"),
            ],
            2,
            &["exists and is not empty", "--force"],
        ),
    ]
}

fn inspect_cases(f: &Fixtures) -> Vec<Case> {
    use Class::*;
    let insp = |name: &str, class: Class, ds: &str, root: &Path, code: i32, says: &[&str]| {
        Case::new(
            format!("inspect/{name}"),
            class,
            &[s("inspect"), s("--dataset"), s(ds), s("--root"), a(root)],
            code,
            says,
        )
    };
    let empty = f.p("inspect-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let file = f.file("inspect-file", "x");
    let malformed = f.market_copy("inspect-malformed", |train| {
        std::fs::copy(
            train
                .parent()
                .unwrap()
                .join("query")
                .read_dir()
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
            train.join("abcd_c1s1_000001_00.jpg"),
        )
        .unwrap();
    });
    let non_utf8 = f.market_copy("inspect-nonutf8", |train| {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"0002_c1s1_\xff\xfe_00.jpg");
        std::fs::write(train.join(name), b"x").unwrap();
    });
    let dangling = f.market_copy("inspect-dangling", |train| {
        std::os::unix::fs::symlink("/nonexistent/x.jpg", train.join("0002_c1s1_000999_00.jpg"))
            .unwrap();
    });
    let looping = f.market_copy("inspect-loop", |train| {
        std::os::unix::fs::symlink(
            "0002_c1s1_000998_00.jpg",
            train.join("0002_c1s1_000998_00.jpg"),
        )
        .unwrap();
    });
    let no_query = f.market_copy("inspect-no-query", |train| {
        std::fs::remove_dir_all(train.parent().unwrap().join("query")).unwrap();
    });
    let bad_json = f.file("inspect-cional/annos.json", "[{\"file_path\": 3}]");
    let not_list = f.file("inspect-cional2/annos.json", "{\"a\": 1}");
    let empty_list = f.file("inspect-cional3/annos.json", "[]");
    let missing_img = f.file(
        "inspect-cional4/annos.json",
        "[{\"file_path\": \"nope/x.jpg\", \"id\": 1}]",
    );
    vec![
        insp(
            "missing-root",
            ExitCode,
            "market1501",
            &f.p("nope"),
            2,
            &["nope"],
        ),
        insp(
            "root-is-file",
            ExitCode,
            "market1501",
            &file,
            2,
            &["inspect-file"],
        ),
        insp(
            "empty-root",
            ExitCode,
            "market1501",
            &empty,
            2,
            &["inspect-empty", "expected"],
        ),
        insp(
            "malformed-name",
            Malformed,
            "market1501",
            &malformed,
            2,
            &["abcd_c1s1_000001_00.jpg"],
        ),
        insp(
            "non-utf8-name",
            Unreadable,
            "market1501",
            &non_utf8,
            2,
            &["utf-8"],
        ),
        insp(
            "dangling-symlink",
            Unreadable,
            "market1501",
            &dangling,
            2,
            &["0002_c1s1_000999_00.jpg"],
        ),
        insp(
            "symlink-loop",
            Unreadable,
            "market1501",
            &looping,
            2,
            &["0002_c1s1_000998_00.jpg"],
        ),
        insp("no-query", ExitCode, "market1501", &no_query, 2, &["query"]),
        insp(
            "cional-bad-json",
            Malformed,
            "cional",
            &bad_json,
            2,
            &["annos.json"],
        ),
        insp(
            "cional-not-a-list",
            Malformed,
            "cional",
            &not_list,
            2,
            &["annos.json"],
        ),
        insp(
            "cional-empty-list",
            Empty,
            "cional",
            &empty_list,
            2,
            &["annos.json", "empty"],
        ),
        insp(
            "cional-missing-image",
            Unreadable,
            "cional",
            &missing_img,
            2,
            &["nope/x.jpg", "not there"],
        ),
        insp(
            "luperson-nl-empty",
            ExitCode,
            "luperson-nl",
            &empty,
            2,
            &["inspect-empty"],
        ),
        insp("good-market", Good, "market1501", &f.market, 0, &["train"]),
        insp("good-nl", Good, "luperson-nl", &f.nl, 0, &[]),
    ]
}

/// The weight files: good, and broken in each way.
fn weight_files(
    f: &Fixtures,
) -> Vec<(
    &'static str,
    Class,
    std::path::PathBuf,
    &'static [&'static str],
)> {
    let good = std::fs::read(&f.weights).unwrap();
    // Patch the first value of a tensor (safetensors: 8-byte header length,
    // a JSON header, then the data).
    let patch = |name: &str, value: f32| -> Vec<u8> {
        let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&good[8..8 + n]).unwrap();
        let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize;
        let mut b = good.clone();
        b[8 + n + start..8 + n + start + 4].copy_from_slice(&value.to_le_bytes());
        b
    };
    let device = reid::burn::tensor::Device::flex();
    let other = f.p("w-resnet34.safetensors");
    let m = reid::backbones::build_backbone("resnet34", 4, 1, &device).unwrap();
    reid::backbones::import::save_safetensors(&m, &other).unwrap();
    let wide = f.p("w-wide.safetensors");
    let m = reid::backbones::build_backbone("resnet18", 8, 1, &device).unwrap();
    reid::backbones::import::save_safetensors(&m, &wide).unwrap();
    vec![
        (
            "nan-weight",
            Class::NaN,
            f.file("w-nan.safetensors", patch("conv1.weight", f32::NAN)),
            &["conv1.weight", "nan"],
        ),
        (
            "nan-bn-weight",
            Class::NaN,
            f.file(
                "w-nan-bn.safetensors",
                patch("layer1.0.bn1.weight", f32::NAN),
            ),
            &["layer1.0.bn1.weight", "nan"],
        ),
        (
            "inf-weight",
            Class::NaN,
            f.file(
                "w-inf.safetensors",
                patch("layer4.1.conv2.weight", f32::INFINITY),
            ),
            &["layer4.1.conv2.weight", "inf"],
        ),
        (
            "truncated",
            Class::Malformed,
            f.file("w-trunc.safetensors", &good[..good.len() / 2]),
            &["w-trunc.safetensors"],
        ),
        (
            "empty",
            Class::Malformed,
            f.file("w-empty.safetensors", b""),
            &["w-empty.safetensors"],
        ),
        (
            "garbage",
            Class::Malformed,
            f.file(
                "w-garbage.pth",
                noise(300, 5)
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
            &["w-garbage.pth"],
        ),
        (
            "text",
            Class::Malformed,
            f.file("w-text.pth", "not weights\n"),
            &["w-text.pth"],
        ),
        (
            "huge-header",
            Class::Abort,
            f.file("w-huge.safetensors", {
                let mut b = (u64::MAX / 2).to_le_bytes().to_vec();
                b.extend(b"{}");
                b
            }),
            &["w-huge.safetensors"],
        ),
        (
            "other-arch",
            Class::Message,
            other,
            &["w-resnet34.safetensors", "layer1.2"],
        ),
        (
            "wider",
            Class::Message,
            wide,
            &["w-wide.safetensors", "conv1.weight"],
        ),
        (
            "missing",
            Class::ExitCode,
            f.p("w-missing.safetensors"),
            &["w-missing.safetensors"],
        ),
        ("directory", Class::ExitCode, f.root.clone(), &[]),
    ]
}

/// The fixture weights stored as float16 (each value rounded to float16),
/// and the same rounded values stored as float32: a checkpoint in float16
/// must give exactly the features of its float32 copy (PyTorch's
/// `load_state_dict` casts such tensors), never be misread.
fn half_weights(f: &Fixtures) -> (std::path::PathBuf, std::path::PathBuf) {
    use reid::burn::tensor::f16;
    let good = std::fs::read(&f.weights).unwrap();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&good[8..8 + n]).unwrap();
    let data = &good[8 + n..];
    let mut names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    names.sort();
    let write = |file: &str, width: u64, dtype: &str| {
        let mut out = serde_json::Map::new();
        let mut bytes = Vec::new();
        for k in &names {
            let v = &header[k.as_str()];
            assert_eq!(v["dtype"], "F32", "{k}");
            let start = v["data_offsets"][0].as_u64().unwrap() as usize;
            let end = v["data_offsets"][1].as_u64().unwrap() as usize;
            let begin = bytes.len() as u64;
            for c in data[start..end].chunks_exact(4) {
                let h = f16::from_f32(f32::from_le_bytes(c.try_into().unwrap()));
                if width == 2 {
                    bytes.extend(h.to_le_bytes());
                } else {
                    bytes.extend(h.to_f32().to_le_bytes());
                }
            }
            out.insert(
                (*k).clone(),
                serde_json::json!({"dtype": dtype, "shape": v["shape"], "data_offsets": [begin, bytes.len() as u64]}),
            );
        }
        let text = serde_json::to_vec(&out).unwrap();
        let mut b = (text.len() as u64).to_le_bytes().to_vec();
        b.extend(text);
        b.extend(bytes);
        f.file(file, b)
    };
    (
        write("w-f16.safetensors", 2, "F16"),
        write("w-f16-as-f32.safetensors", 4, "F32"),
    )
}

fn extract_cases(f: &Fixtures) -> Vec<Case> {
    use Class::*;
    let out = f.p("extract-out/f.npy");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let w = a(&f.weights);
    let base = |extra: Vec<OsString>| -> Vec<OsString> {
        let mut v = vec![
            s("extract"),
            s("--arch"),
            s("resnet18"),
            s("--base-width"),
            s("4"),
            s("--weights"),
            w.clone(),
            s("--output"),
            a(&out),
        ];
        v.extend(extra);
        v
    };
    let x = |name: &str, bytes: Vec<u8>| f.file(&format!("x-{name}.npy"), bytes);
    let good = noise(2 * 3 * 32 * 16, 1);
    let mut nan = good.clone();
    nan[777] = f32::NAN;
    let mut inf = good.clone();
    inf[5] = f32::NEG_INFINITY;
    let inputs: Vec<(&str, Class, std::path::PathBuf, i32, Vec<&str>)> = vec![
        (
            "ok",
            Good,
            x("ok", npy("<f4", "(2, 3, 32, 16)", false, &f32s(&good))),
            0,
            vec!["wrote 2 features"],
        ),
        (
            "fortran",
            Good,
            x("fortran", npy("<f4", "(2, 3, 32, 16)", true, &f32s(&good))),
            0,
            vec!["wrote 2 features"],
        ),
        (
            "big-endian",
            Good,
            x(
                "be",
                npy(
                    ">f4",
                    "(2, 3, 32, 16)",
                    false,
                    &good
                        .iter()
                        .flat_map(|v| v.to_be_bytes())
                        .collect::<Vec<u8>>(),
                ),
            ),
            0,
            vec!["wrote 2"],
        ),
        (
            "too-small",
            Panic,
            x(
                "small",
                npy("<f4", "(1, 3, 4, 2)", false, &f32s(&noise(24, 2))),
            ),
            2,
            vec!["x-small.npy", "4x2", "output stride"],
        ),
        (
            "one-pixel",
            Panic,
            x(
                "pixel",
                npy("<f4", "(1, 3, 1, 1)", false, &f32s(&[0.1, 0.2, 0.3])),
            ),
            2,
            vec!["x-pixel.npy", "output stride"],
        ),
        (
            "huge-header",
            Abort,
            x(
                "huge",
                npy(
                    "<f4",
                    "(1000000000000, 3, 32, 16)",
                    false,
                    &f32s(&noise(16, 3)),
                ),
            ),
            2,
            vec!["x-huge.npy", "1000000000000"],
        ),
        (
            "huge-header-2d",
            Abort,
            x("huge2", npy("<f4", "(1000000000000, 8)", false, &[0u8; 64])),
            2,
            vec!["x-huge2.npy"],
        ),
        (
            "ndim-3",
            Message,
            x(
                "ndim3",
                npy("<f4", "(2, 3, 32)", false, &f32s(&noise(192, 4))),
            ),
            2,
            vec!["x-ndim3.npy", "[n, 3, h, w]"],
        ),
        (
            "channels-1",
            Message,
            x(
                "c1",
                npy("<f4", "(2, 1, 32, 16)", false, &f32s(&noise(1024, 4))),
            ),
            2,
            vec!["x-c1.npy", "3"],
        ),
        (
            "nan-pixel",
            NaN,
            x("nan", npy("<f4", "(2, 3, 32, 16)", false, &f32s(&nan))),
            2,
            vec!["x-nan.npy", "nan"],
        ),
        (
            "inf-pixel",
            NaN,
            x("inf", npy("<f4", "(2, 3, 32, 16)", false, &f32s(&inf))),
            2,
            vec!["x-inf.npy", "inf"],
        ),
        (
            "float16",
            Malformed,
            x(
                "f16",
                npy("<f2", "(2, 3, 32, 16)", false, &[0u8; 2 * 3 * 32 * 16 * 2]),
            ),
            2,
            vec!["x-f16.npy", "<f2"],
        ),
        (
            "int32",
            Malformed,
            x(
                "i32",
                npy("<i4", "(2, 3, 32, 16)", false, &[0u8; 2 * 3 * 32 * 16 * 4]),
            ),
            2,
            vec!["x-i32.npy", "float"],
        ),
        (
            "truncated",
            Malformed,
            x(
                "trunc",
                npy("<f4", "(2, 3, 32, 16)", false, &f32s(&good[..100])),
            ),
            2,
            vec!["x-trunc.npy"],
        ),
        (
            "not-npy",
            Malformed,
            f.file("x-notnpy.npy", "hello"),
            2,
            vec!["x-notnpy.npy"],
        ),
        (
            "empty-file",
            Malformed,
            f.file("x-empty.npy", b""),
            2,
            vec!["x-empty.npy"],
        ),
        (
            "zero-rows",
            Empty,
            x("zero", npy("<f4", "(0, 3, 32, 16)", false, &[])),
            2,
            vec!["x-zero.npy"],
        ),
        (
            "zero-width",
            Empty,
            x("zerow", npy("<f4", "(2, 3, 32, 0)", false, &[])),
            2,
            vec!["x-zerow.npy"],
        ),
        (
            "bad-header",
            Malformed,
            f.file("x-badhdr.npy", {
                let mut b = b"\x93NUMPY\x01\x00\x10\x00".to_vec();
                b.extend(b"{'descr': 7}   \n");
                b
            }),
            2,
            vec!["x-badhdr.npy"],
        ),
        (
            "missing",
            ExitCode,
            f.p("x-missing.npy"),
            2,
            vec!["x-missing.npy"],
        ),
        ("directory", ExitCode, f.root.clone(), 2, vec![]),
    ];
    let mut cases: Vec<Case> = inputs
        .into_iter()
        .map(|(name, class, path, code, says)| {
            Case::new(
                format!("extract/input-{name}"),
                class,
                &base(vec![s("--input-tensor"), a(&path)]),
                code,
                &says,
            )
        })
        .collect();
    // The output file holds finite values of the right shape.
    let good_out = f.p("extract-out/good.npy");
    let mut ok = base(vec![s("--input-tensor"), a(&f.p("x-ok.npy"))]);
    let i = ok.iter().position(|x| x == "--output").unwrap();
    ok[i + 1] = a(&good_out);
    cases.push(
        Case::new(
            "extract/output-is-finite",
            Good,
            &ok,
            0,
            &["wrote 2 features of dimension 32"],
        )
        .with_check(move |_| {
            let m = reid::metrics::npy::read_matrix(&good_out).map_err(|e| e.to_string())?;
            if m.dim() != (2, 32) {
                return Err(format!("shape {:?}", m.dim()));
            }
            Ok(())
        }),
    );
    for (name, class, path, says) in weight_files(f) {
        let mut args = base(vec![s("--input-tensor"), a(&f.p("x-ok.npy"))]);
        let i = args.iter().position(|x| x == "--weights").unwrap();
        args[i + 1] = a(&path);
        cases.push(Case::new(
            format!("extract/weights-{name}"),
            class,
            &args,
            2,
            says,
        ));
    }
    // Float16 weights: loaded as float32, the same features as the float32
    // copy of the same values (compared with a reference run of the binary).
    {
        let (half, reference) = half_weights(f);
        let out_half = f.p("extract-out/f16.npy");
        let out_ref = f.p("extract-out/f16-ref.npy");
        let with = |weights: &Path, output: &Path| {
            let mut args = base(vec![s("--input-tensor"), a(&f.p("x-ok.npy"))]);
            let i = args.iter().position(|x| x == "--weights").unwrap();
            args[i + 1] = a(weights);
            let i = args.iter().position(|x| x == "--output").unwrap();
            args[i + 1] = a(output);
            args
        };
        let ref_args = with(&reference, &out_ref);
        let (oh, or) = (out_half.clone(), out_ref.clone());
        cases.push(
            Case::new(
                "extract/weights-float16",
                Good,
                &with(&half, &out_half),
                0,
                &["wrote 2 features"],
            )
            .with_check(move |_| {
                let r = support::run(&ref_args, Duration::from_secs(120));
                if r.code != Some(0) {
                    return Err(format!("the float32 reference run failed: {}", r.stderr));
                }
                let (h, r) = (std::fs::read(&oh), std::fs::read(&or));
                match (h, r) {
                    (Ok(h), Ok(r)) if h == r => Ok(()),
                    (Ok(_), Ok(_)) => {
                        Err("float16 weights give other features than their float32 copy".into())
                    }
                    _ => Err("a feature file is missing".into()),
                }
            }),
        );
    }
    // Argument errors.
    for (name, extra, says) in [
        ("arch-unknown", vec!["--arch", "resnet19"], vec!["resnet19"]),
        ("ibn-c", vec!["--ibn", "c"], vec!["--ibn"]),
        (
            "base-width-0",
            vec!["--base-width", "0"],
            vec!["--base-width"],
        ),
        ("last-stride-5", vec!["--last-stride", "5"], vec!["stride"]),
        (
            "format-bogus",
            vec!["--weights-format", "bogus"],
            vec!["bogus"],
        ),
        (
            "batch-size-0",
            vec!["--batch-size", "0"],
            vec!["--batch-size"],
        ),
        ("backend-bogus", vec!["--backend", "bogus"], vec!["bogus"]),
        (
            "zoo-with-ibn",
            vec!["--arch", "ghostnet_0_5", "--ibn", "a"],
            vec!["resnet"],
        ),
    ] {
        let mut args = base(vec![s("--input-tensor"), a(&f.p("x-ok.npy"))]);
        // Later flags win in clap only for repeated single values: replace.
        for pair in extra.chunks(2) {
            if let Some(i) = args.iter().position(|x| x == pair[0]) {
                args[i + 1] = s(pair[1]);
            } else {
                args.push(s(pair[0]));
                args.push(s(pair[1]));
            }
        }
        cases.push(Case::new(
            format!("extract/{name}"),
            Class::Arguments,
            &args,
            2,
            &says,
        ));
    }
    // Output paths.
    let mut args = base(vec![s("--input-tensor"), a(&f.p("x-ok.npy"))]);
    let i = args.iter().position(|x| x == "--output").unwrap();
    args[i + 1] = a(&f.p("no-such-folder/f.npy"));
    cases.push(Case::new(
        "extract/output-folder-missing",
        ExitCode,
        &args,
        2,
        &["no-such-folder"],
    ));
    args[i + 1] = a(&f.root);
    cases.push(Case::new(
        "extract/output-is-folder",
        ExitCode,
        &args,
        2,
        &["--output"],
    ));

    // Image folders.
    let jpg = f.jpg_bytes();
    let trunc = jpg[..jpg.len() / 2].to_vec();
    /// Name, class, folder, further arguments, exit code, what it says.
    type Dir<'a> = (
        &'a str,
        Class,
        std::path::PathBuf,
        &'a [&'a str],
        i32,
        Vec<&'a str>,
    );
    let dirs: Vec<Dir> = vec![
        (
            "images-ok",
            Good,
            f.image_dir("img-ok", &["a.jpg", "b.jpg", "c.JPG"], &[]),
            &[],
            0,
            vec!["wrote 3 features"],
        ),
        (
            "images-empty",
            Empty,
            f.image_dir("img-empty", &[], &[("notes.txt", b"x".to_vec())]),
            &[],
            2,
            vec!["img-empty", "no .jpg"],
        ),
        (
            "images-missing",
            ExitCode,
            f.p("img-nope"),
            &[],
            2,
            vec!["img-nope"],
        ),
        (
            "images-garbage",
            ExitCode,
            f.image_dir(
                "img-garbage",
                &["a.jpg"],
                &[("b.jpg", b"not an image".to_vec())],
            ),
            &[],
            2,
            vec!["b.jpg"],
        ),
        (
            "images-truncated",
            ExitCode,
            f.image_dir("img-trunc", &["a.jpg"], &[("b.jpg", trunc.clone())]),
            &[],
            2,
            vec!["b.jpg", "truncated"],
        ),
        (
            "images-zero-bytes",
            ExitCode,
            f.image_dir("img-zero", &["a.jpg"], &[("b.jpg", Vec::new())]),
            &[],
            2,
            vec!["b.jpg"],
        ),
        (
            "images-png-bomb",
            Abort,
            f.image_dir(
                "img-bomb",
                &["a.jpg"],
                &[("b.png", png_claiming(60000, 60000))],
            ),
            &[],
            2,
            vec!["b.png"],
        ),
        (
            "images-skip",
            Corrupt,
            f.image_dir("img-skip", &["a.jpg", "c.jpg"], &[("b.jpg", trunc.clone())]),
            &["--on-corrupt", "skip"],
            0,
            vec!["wrote 2 features", "skipped 1 corrupt image", "b.jpg"],
        ),
        (
            "images-skip-all",
            Corrupt,
            f.image_dir("img-skip-all", &[], &[("b.jpg", trunc)]),
            &["--on-corrupt", "skip"],
            2,
            vec!["every image is corrupt"],
        ),
        (
            "images-on-corrupt-bogus",
            Arguments,
            f.p("img-ok"),
            &["--on-corrupt", "maybe"],
            2,
            vec!["maybe"],
        ),
    ];
    for (name, class, dir, extra, code, says) in dirs {
        let mut extra: Vec<OsString> = extra.iter().map(|x| s(x)).collect();
        extra.extend([s("--images"), a(&dir)]);
        cases.push(Case::new(
            format!("extract/{name}"),
            class,
            &base(extra),
            code,
            &says,
        ));
    }
    // Unreadable entries that were dropped silently.
    let d = f.image_dir("img-dangling", &["a.jpg"], &[]);
    std::os::unix::fs::symlink("/nonexistent/b.jpg", d.join("b.jpg")).unwrap();
    cases.push(Case::new(
        "extract/images-dangling",
        Unreadable,
        &base(vec![s("--images"), a(&d)]),
        2,
        &["b.jpg"],
    ));
    let d = f.image_dir("img-loop", &["a.jpg"], &[]);
    std::os::unix::fs::symlink("b.jpg", d.join("b.jpg")).unwrap();
    cases.push(Case::new(
        "extract/images-loop",
        Unreadable,
        &base(vec![s("--images"), a(&d)]),
        2,
        &["b.jpg"],
    ));
    let d = f.image_dir("img-nonutf8", &["a.jpg"], &[]);
    {
        use std::os::unix::ffi::OsStrExt;
        std::fs::write(
            d.join(std::ffi::OsStr::from_bytes(b"b\xff.jpg")),
            f.jpg_bytes(),
        )
        .unwrap();
    }
    cases.push(Case::new(
        "extract/images-non-utf8",
        Unreadable,
        &base(vec![s("--images"), a(&d)]),
        2,
        &["utf-8"],
    ));
    let txt = f.p("extract-out/listed.npy");
    let mut args = base(vec![s("--images"), a(&f.p("img-ok"))]);
    let i = args.iter().position(|x| x == "--output").unwrap();
    args[i + 1] = a(&txt);
    cases.push(
        Case::new("extract/images-list", Good, &args, 0, &[]).with_check(move |_| {
            let list = std::fs::read_to_string(format!("{}.txt", txt.display()))
                .map_err(|e| e.to_string())?;
            if list != "a.jpg\nb.jpg\nc.JPG\n" {
                return Err(format!("list {list:?}"));
            }
            Ok(())
        }),
    );
    cases
}

fn evaluate_cases(f: &Fixtures) -> Vec<Case> {
    use Class::*;
    let m = |name: &str, shape: &str, v: &[f32]| {
        f.file(&format!("e-{name}.npy"), npy("<f4", shape, false, &f32s(v)))
    };
    let ids = |name: &str, v: &[i64]| {
        f.file(
            &format!("e-{name}.npy"),
            npy("<i8", &format!("({},)", v.len()), false, &i64s(v)),
        )
    };
    let q = m("q", "(4, 8)", &noise(32, 11));
    let g = m("g", "(6, 8)", &noise(48, 12));
    let qp = ids("qp", &[1, 2, 3, 4]);
    let qc = ids("qc", &[0, 0, 0, 0]);
    let gp = ids("gp", &[1, 2, 3, 4, 5, 6]);
    let gc = ids("gc", &[1, 1, 1, 1, 1, 1]);
    let labels = |qp: &Path, qc: &Path, gp: &Path, gc: &Path| -> Vec<OsString> {
        vec![
            s("--query-pids"),
            a(qp),
            s("--query-camids"),
            a(qc),
            s("--gallery-pids"),
            a(gp),
            s("--gallery-camids"),
            a(gc),
        ]
    };
    let feat = |q: &Path, g: &Path| -> Vec<OsString> {
        let mut v = vec![s("evaluate"), s("--query"), a(q), s("--gallery"), a(g)];
        v.extend(labels(&qp, &qc, &gp, &gc));
        v
    };
    let dist = |d: &Path| -> Vec<OsString> {
        let mut v = vec![s("evaluate"), s("--distmat"), a(d)];
        v.extend(labels(&qp, &qc, &gp, &gc));
        v
    };
    let mut nan = noise(32, 11);
    nan[9] = f32::NAN;
    let mut inf = noise(48, 12);
    inf[47] = f32::INFINITY;
    let mut cases = vec![
        Case::new("evaluate/good", Good, &feat(&q, &g), 0, &["mAP", "Rank-1"]),
        Case::new(
            "evaluate/good-json",
            Good,
            &[feat(&q, &g), vec![s("--json")]].concat(),
            0,
            &["\"mAP\""],
        ),
        Case::new(
            "evaluate/good-rerank",
            Good,
            &[
                feat(&q, &g),
                vec![s("--rerank"), s("--k1"), s("3"), s("--k2"), s("2")],
            ]
            .concat(),
            0,
            &["mAP"],
        ),
        Case::new(
            "evaluate/good-distmat",
            Good,
            &dist(&m(
                "d",
                "(4, 6)",
                &noise(24, 13).iter().map(|x| x.abs()).collect::<Vec<_>>(),
            )),
            0,
            &["mAP"],
        ),
        Case::new(
            "evaluate/query-missing",
            ExitCode,
            &feat(&f.p("e-nope.npy"), &g),
            2,
            &["e-nope.npy"],
        ),
        Case::new(
            "evaluate/query-huge-header",
            Abort,
            &feat(
                &f.file(
                    "e-huge.npy",
                    npy("<f4", "(1000000000000, 8)", false, &[0u8; 64]),
                ),
                &g,
            ),
            2,
            &["e-huge.npy"],
        ),
        Case::new(
            "evaluate/query-zero-dim",
            Empty,
            &feat(&m("q0", "(4, 0)", &[]), &m("g0", "(6, 0)", &[])),
            2,
            &["e-q0.npy"],
        ),
        Case::new(
            "evaluate/gallery-zero-rows",
            Empty,
            &feat(&q, &m("g00", "(0, 8)", &[])),
            2,
            &["e-g00.npy"],
        ),
        Case::new(
            "evaluate/query-1d",
            Malformed,
            &feat(&m("q1d", "(8,)", &noise(8, 1)), &g),
            2,
            &["e-q1d.npy"],
        ),
        Case::new(
            "evaluate/query-3d",
            Malformed,
            &feat(&m("q3d", "(4, 2, 4)", &noise(32, 1)), &g),
            2,
            &["e-q3d.npy"],
        ),
        Case::new(
            "evaluate/query-int",
            Malformed,
            &feat(
                &f.file("e-qint.npy", npy("<i8", "(4, 8)", false, &i64s(&[0; 32]))),
                &g,
            ),
            2,
            &["e-qint.npy", "float"],
        ),
        Case::new(
            "evaluate/query-nan",
            NaN,
            &feat(&m("qnan", "(4, 8)", &nan), &g),
            2,
            &["e-qnan.npy", "nan"],
        ),
        Case::new(
            "evaluate/gallery-inf",
            NaN,
            &feat(&q, &m("ginf", "(6, 8)", &inf)),
            2,
            &["e-ginf.npy", "inf"],
        ),
        Case::new(
            "evaluate/dim-mismatch",
            Malformed,
            &feat(&q, &m("g5", "(6, 5)", &noise(30, 1))),
            2,
            &["dimension 8", "dimension 5"],
        ),
        Case::new(
            "evaluate/not-npy",
            Malformed,
            &feat(&f.file("e-text.npy", "1,2,3"), &g),
            2,
            &["e-text.npy"],
        ),
        Case::new(
            "evaluate/truncated",
            Malformed,
            &feat(
                &f.file(
                    "e-trunc.npy",
                    npy("<f4", "(4, 8)", false, &f32s(&noise(10, 1))),
                ),
                &g,
            ),
            2,
            &["e-trunc.npy"],
        ),
        Case::new(
            "evaluate/empty-file",
            Malformed,
            &feat(&f.file("e-empty.npy", ""), &g),
            2,
            &["e-empty.npy"],
        ),
        Case::new("evaluate/directory", ExitCode, &feat(&f.root, &g), 2, &[]),
        Case::new(
            "evaluate/distmat-huge-header",
            Abort,
            &dist(&f.file(
                "e-dhuge.npy",
                npy("<f8", "(4, 100000000000000)", false, &[0u8; 64]),
            )),
            2,
            &["e-dhuge.npy"],
        ),
        Case::new(
            "evaluate/distmat-wrong-shape",
            Malformed,
            &dist(&m("d45", "(4, 5)", &noise(20, 1))),
            2,
            &["expected 5 ids", "e-gp.npy"],
        ),
        Case::new(
            "evaluate/distmat-nan",
            NaN,
            &dist(&m("dnan", "(4, 6)", &{
                let mut v = noise(24, 1);
                v[3] = f32::NAN;
                v
            })),
            2,
            &["e-dnan.npy", "nan"],
        ),
        Case::new(
            "evaluate/distmat-rerank-alone",
            Arguments,
            &[dist(&m("d2", "(4, 6)", &noise(24, 2))), vec![s("--rerank")]].concat(),
            2,
            &["--distmat-qq"],
        ),
        Case::new(
            "evaluate/distmat-qq-wrong",
            Malformed,
            &[
                dist(&m("d3", "(4, 6)", &noise(24, 3))),
                vec![
                    s("--rerank"),
                    s("--distmat-qq"),
                    a(&m("qq", "(3, 3)", &noise(9, 1))),
                    s("--distmat-gg"),
                    a(&m("gg", "(6, 6)", &noise(36, 1))),
                ],
            ]
            .concat(),
            2,
            &["e-qq.npy", "[4, 4]"],
        ),
    ];
    // Id files.
    let with_labels = |name: &str, class: Class, l: Vec<OsString>, says: &[&str]| {
        let mut v = vec![s("evaluate"), s("--query"), a(&q), s("--gallery"), a(&g)];
        v.extend(l);
        Case::new(format!("evaluate/{name}"), class, &v, 2, says)
    };
    let short = ids("qp-short", &[1, 2, 3]);
    let fl = f.file(
        "e-qp-float.npy",
        npy("<f4", "(4,)", false, &f32s(&[1.0, 2.0, 3.0, 4.0])),
    );
    let two_d = f.file(
        "e-qp-2d.npy",
        npy("<i8", "(2, 2)", false, &i64s(&[1, 2, 3, 4])),
    );
    let huge = f.file(
        "e-qp-huge.npy",
        npy("<i8", "(100000000000000,)", false, &[0u8; 64]),
    );
    cases.extend([
        with_labels(
            "pids-short",
            Malformed,
            labels(&short, &qc, &gp, &gc),
            &["e-qp-short.npy", "expected 4 ids"],
        ),
        with_labels(
            "camids-short",
            Malformed,
            labels(&qp, &ids("qc-short", &[0]), &gp, &gc),
            &["e-qc-short.npy", "expected 4 ids"],
        ),
        with_labels(
            "pids-float",
            Malformed,
            labels(&fl, &qc, &gp, &gc),
            &["e-qp-float.npy", "int"],
        ),
        with_labels(
            "pids-2d",
            Malformed,
            labels(&two_d, &qc, &gp, &gc),
            &["e-qp-2d.npy"],
        ),
        with_labels(
            "pids-huge-header",
            Abort,
            labels(&huge, &qc, &gp, &gc),
            &["e-qp-huge.npy"],
        ),
        with_labels(
            "pids-missing",
            ExitCode,
            labels(&f.p("e-nope-ids.npy"), &qc, &gp, &gc),
            &["e-nope-ids.npy"],
        ),
        with_labels(
            "no-valid-query",
            Malformed,
            labels(&qp, &qc, &ids("gp-other", &[7, 8, 9, 10, 11, 12]), &gc),
            &["absent from the gallery"],
        ),
    ]);
    // Parameters.
    for (name, extra, says) in [
        ("k1-0", vec!["--rerank", "--k1", "0"], vec!["k1"]),
        (
            "lambda-neg",
            vec!["--rerank", "--lambda=-1"],
            vec!["lambda"],
        ),
        (
            "lambda-nan",
            vec!["--rerank", "--lambda", "NaN"],
            vec!["lambda"],
        ),
        ("max-rank-0", vec!["--max-rank", "0"], vec!["max_rank"]),
        (
            "metric-bogus",
            vec!["--metric", "manhattan"],
            vec!["manhattan"],
        ),
    ] {
        let mut v = feat(&q, &g);
        v.extend(extra.iter().map(|x| s(x)));
        cases.push(Case::new(
            format!("evaluate/{name}"),
            Arguments,
            &v,
            2,
            &says,
        ));
    }
    // All-zero features under cosine: every distance is undefined.
    let zq = m("zq", "(4, 8)", &[0.0; 32]);
    let zg = m("zg", "(6, 8)", &[0.0; 48]);
    cases.push(Case::new(
        "evaluate/zero-features-cosine",
        NaN,
        &[feat(&zq, &zg), vec![s("--metric"), s("cosine")]].concat(),
        2,
        &["e-zq.npy"],
    ));
    cases
}

fn plot_cases(f: &Fixtures) -> Vec<Case> {
    use Class::*;
    let out = f.p("plot-out");
    let p = |name: &str, class: Class, log: &Path, extra: &[&str], code: i32, says: &[&str]| {
        let mut v = vec![s("plot"), s("--log"), a(log), s("--out"), a(&out)];
        v.extend(extra.iter().map(|x| s(x)));
        Case::new(format!("plot/{name}"), class, &v, code, says)
    };
    let good = "{\"step\":0,\"epoch\":0,\"loss\":2.0,\"lr\":0.1}\n{\"step\":1,\"epoch\":0,\"loss\":1.5,\"lr\":0.1}\n";
    let torn_out = f.p("plot-torn-out");
    let torn = f.file("log-torn.jsonl", format!("{good}{{\"step\":2,\"lo"));
    vec![
        p(
            "good",
            Good,
            &f.file("log-good.jsonl", good),
            &[],
            0,
            &["loss.png"],
        ),
        p(
            "missing",
            ExitCode,
            &f.p("log-nope.jsonl"),
            &[],
            2,
            &["log-nope.jsonl"],
        ),
        p(
            "empty",
            Plot,
            &f.file("log-empty.jsonl", ""),
            &[],
            2,
            &["log-empty.jsonl", "nothing to draw"],
        ),
        p(
            "blank-lines",
            Plot,
            &f.file("log-blank.jsonl", "\n\n  \n"),
            &[],
            2,
            &["nothing to draw"],
        ),
        p(
            "single-field",
            Plot,
            &f.file("log-step.jsonl", "{\"step\":0}\n{\"step\":1}\n"),
            &[],
            2,
            &["log-step.jsonl", "nothing to draw"],
        ),
        p(
            "epoch-only",
            Plot,
            &f.file("log-epoch.jsonl", "{\"step\":0,\"epoch\":0}\n"),
            &[],
            2,
            &["nothing to draw"],
        ),
        p(
            "bad-middle-line",
            Malformed,
            &f.file(
                "log-bad.jsonl",
                format!("{{\"step\":0,\"loss\":1}}\nnot json\n{good}"),
            ),
            &[],
            2,
            &["log-bad.jsonl", "line 2"],
        ),
        p(
            "no-step",
            Malformed,
            &f.file("log-nostep.jsonl", "{\"loss\":1}\n"),
            &[],
            2,
            &["step"],
        ),
        p(
            "not-object",
            Malformed,
            &f.file("log-array.jsonl", "[1,2]\n"),
            &[],
            2,
            &["line 1"],
        ),
        p(
            "unknown-key",
            Arguments,
            &f.p("log-good.jsonl"),
            &["--keys", "accuracy"],
            2,
            &["accuracy"],
        ),
        p("directory", ExitCode, &f.root, &[], 2, &[]),
        p(
            "binary",
            Malformed,
            &f.file("log-bin.jsonl", [0xffu8, 0xfe, 0x00, 0x01]),
            &[],
            2,
            &["log-bin.jsonl"],
        ),
        Case::new(
            "plot/torn-last-line",
            Plot,
            &[s("plot"), s("--log"), a(&torn), s("--out"), a(&torn_out)],
            0,
            &["line 3", "cut short"],
        )
        .with_check({
            let torn_out = torn_out.clone();
            move |_| {
                if torn_out.join("loss.png").is_file() {
                    Ok(())
                } else {
                    Err("no loss.png".into())
                }
            }
        }),
        Case::new(
            "plot/out-is-file",
            ExitCode,
            &[
                s("plot"),
                s("--log"),
                a(&f.p("log-good.jsonl")),
                s("--out"),
                a(&f.file("plot-a-file", "x")),
            ],
            2,
            &["plot-a-file"],
        ),
    ]
}

fn finetune_cases(f: &Fixtures) -> Vec<Vec<Case>> {
    use Class::*;
    let data = a(&f.market);
    let cfg = a(&f.bot_toml);
    let ft = |extra: &[OsString]| -> Vec<OsString> {
        let mut v = vec![
            s("finetune"),
            s("--data"),
            data.clone(),
            s("--config"),
            cfg.clone(),
        ];
        v.extend(extra.iter().cloned());
        v
    };
    let toml = |name: &str, text: &str| f.file(&format!("ft-{name}.toml"), text);
    let base = std::fs::read_to_string(&f.bot_toml).unwrap();
    let with_cfg = |name: &str, class: Class, text: String, says: &[&str]| {
        let p = toml(name, &text);
        let v = vec![
            s("finetune"),
            s("--data"),
            data.clone(),
            s("--config"),
            a(&p),
        ];
        Case::new(format!("finetune/config-{name}"), class, &v, 2, says)
    };
    let quick = vec![
        Case::new(
            "finetune/data-missing",
            ExitCode,
            &ft(&[])
                .into_iter()
                .map(|x| if x == data { a(&f.p("ft-nope")) } else { x })
                .collect::<Vec<_>>(),
            2,
            &["ft-nope"],
        ),
        Case::new(
            "finetune/head-bogus",
            Arguments,
            &ft(&[s("--head"), s("arc")]),
            2,
            &["--head", "arc"],
        ),
        Case::new(
            "finetune/weights-of-another-depth",
            Arguments,
            &ft(&[
                s("--weights"),
                a(&f.weights),
                s("--arch"),
                s("resnet34"),
                s("--base-width"),
                s("4"),
            ]),
            2,
            &["does not match", "missing keys"],
        ),
        Case::new(
            "finetune/config-missing",
            ExitCode,
            &[
                s("finetune"),
                s("--data"),
                data.clone(),
                s("--config"),
                a(&f.p("ft-nope.toml")),
            ],
            2,
            &["ft-nope.toml"],
        ),
        Case::new(
            "finetune/config-ext",
            Arguments,
            &[
                s("finetune"),
                s("--data"),
                data.clone(),
                s("--config"),
                a(&f.file("ft.yaml", "a: 1")),
            ],
            2,
            &[".toml"],
        ),
        with_cfg(
            "unknown-key",
            Arguments,
            format!("bogus = 1\n{base}"),
            &["bogus"],
        ),
        with_cfg(
            "nested-warmup-key",
            NestedKey,
            base.replace("[warmup]\niters = 0\n", "[warmup]\niters = 0\nbogus = 1\n"),
            &["bogus"],
        ),
        with_cfg(
            "nested-decay-key",
            NestedKey,
            format!(
                "{base}[decay]\nkind = \"cosine\"\neta_min = 0.0\ndelay_epochs = 0\nbogus = 1\n"
            ),
            &["bogus"],
        ),
        with_cfg(
            "decay-kind-bogus",
            Malformed,
            format!("{base}[decay]\nkind = \"exponential\"\n"),
            &["exponential"],
        ),
        with_cfg(
            "wrong-type",
            Malformed,
            base.replace("p = 2", "p = \"two\""),
            &["p"],
        ),
        with_cfg(
            "last-stride-5",
            ExitCode,
            format!("last_stride = 5\n{base}"),
            &["last_stride"],
        ),
        with_cfg(
            "not-toml",
            Malformed,
            "this is = = not toml".into(),
            &["ft-not-toml.toml"],
        ),
        Case::new(
            "finetune/arch-bogus",
            ExitCode,
            &ft(&[s("--arch"), s("resnet19")]),
            2,
            &["resnet19"],
        ),
        Case::new(
            "finetune/base-width-0",
            ExitCode,
            &ft(&[s("--base-width"), s("0")]),
            2,
            &["base_width"],
        ),
        Case::new(
            "finetune/k-0",
            ExitCode,
            &ft(&[s("--k"), s("0")]),
            2,
            &["k"],
        ),
        Case::new(
            "finetune/lr-nan",
            ExitCode,
            &ft(&[s("--lr"), s("NaN")]),
            2,
            &["learning rate", "nan"],
        ),
        Case::new(
            "finetune/lr-negative",
            ExitCode,
            &ft(&[s("--lr=-1")]),
            2,
            &["learning rate", "-1"],
        ),
        Case::new(
            "finetune/height-0",
            ExitCode,
            &ft(&[s("--height"), s("0")]),
            2,
            &["height"],
        ),
        Case::new(
            "finetune/eval-batch-0",
            Arguments,
            &ft(&[s("--eval-batch-size"), s("0")]),
            2,
            &["--eval-batch-size"],
        ),
        Case::new(
            "finetune/devices-0",
            Arguments,
            &ft(&[s("--devices"), s("0")]),
            2,
            &["--devices"],
        ),
        Case::new(
            "finetune/precision-bogus",
            Arguments,
            &ft(&[s("--precision"), s("f8")]),
            2,
            &["f8"],
        ),
        Case::new(
            "finetune/out-folder-missing",
            ExitCode,
            &ft(&[s("--out"), a(&f.p("ft-nope/m.bpk"))]),
            2,
            &["ft-nope"],
        ),
        Case::new(
            "finetune/p-too-large",
            ExitCode,
            &ft(&[s("--p"), s("50")]),
            2,
            &["50"],
        ),
    ];

    // Images that cannot be decoded, and the skip policy.
    let trunc = {
        let b = f.jpg_bytes();
        b[..b.len() / 2].to_vec()
    };
    let corrupt = f.market_copy("ft-corrupt", |train| {
        let victim = std::fs::read_dir(train)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .min()
            .unwrap();
        std::fs::write(&victim, &trunc).unwrap();
    });
    let corrupt_args = |extra: &[&str]| {
        let mut v = vec![
            s("finetune"),
            s("--data"),
            a(&corrupt),
            s("--config"),
            cfg.clone(),
        ];
        v.extend(extra.iter().map(|x| s(x)));
        v
    };
    let ckpt = f.p("ft-ckpt");
    let ft_log = f.p("ft-log.jsonl");
    let training = vec![
        Case::new(
            "finetune/log-json-lines",
            Good,
            &ft(&[s("--log"), a(&ft_log)]),
            0,
            &["mAP"],
        )
        .with_check({
            let ft_log = ft_log.clone();
            move |_| {
                // The engine's JSON-lines log (what `plot` reads): a `step`
                // on every line, counting from 0, and the final evaluation
                // on the last one; not a JSON array with `iteration` keys.
                let text = std::fs::read_to_string(&ft_log).map_err(|e| e.to_string())?;
                let mut last = None;
                for (i, line) in text.lines().enumerate() {
                    let v: serde_json::Value =
                        serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
                    let step = v["step"]
                        .as_u64()
                        .ok_or_else(|| format!("line {}: no step: {line}", i + 1))?;
                    if last.is_none() && step != 0 {
                        return Err(format!("the log starts at step {step}"));
                    }
                    last = Some(v);
                }
                match last {
                    Some(v) if v["mAP"].is_number() => {}
                    _ => return Err("no evaluation (mAP) on the last line".into()),
                }
                Ok(())
            }
        }),
        Case::new(
            "finetune/corrupt-image",
            ExitCode,
            &corrupt_args(&[]),
            2,
            &["bounding_box_train", "truncated"],
        ),
        Case::new(
            "finetune/corrupt-image-skip",
            Corrupt,
            &corrupt_args(&["--on-corrupt", "skip"]),
            0,
            &["skipped 1 corrupt image", "mAP"],
        ),
        Case::new(
            "finetune/resume-nothing",
            Resume,
            &ft(&[
                s("--checkpoint-dir"),
                a(&ckpt),
                s("--resume"),
                s("--stop-after"),
                s("1"),
            ]),
            0,
            &["holds no checkpoint", "starting a fresh run"],
        ),
        Case::new(
            "finetune/resume-other-config",
            Resume,
            &ft(&[
                s("--checkpoint-dir"),
                a(&ckpt),
                s("--resume"),
                s("--lr"),
                s("0.5"),
            ]),
            2,
            &["another configuration", "`lr`"],
        ),
    ];
    vec![quick, training]
}

fn pretrain_cases(f: &Fixtures) -> Vec<Vec<Case>> {
    use Class::*;
    let pt =
        |recipe: &str, data: &Path, cfg: &Path, out: &str, extra: &[OsString]| -> Vec<OsString> {
            let mut v = vec![
                s("pretrain"),
                s(recipe),
                s("--data"),
                a(data),
                s("--config"),
                a(cfg),
                s("--out"),
                a(&f.p(out)),
            ];
            v.extend(extra.iter().cloned());
            v
        };
    let set = |kv: &str| vec![s("--set"), s(kv)];
    let cion = |out: &str, extra: &[OsString]| pt("cion", &f.annos, &f.cion_toml, out, extra);
    let annos_dir = f.annos.parent().unwrap().to_path_buf();
    let annos = |name: &str, text: &str| {
        let p = annos_dir.join(format!("{name}.json"));
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut quick = vec![
        Case::new(
            "pretrain/moco-data-missing",
            ExitCode,
            &pt("moco", &f.p("nope"), &f.moco_toml, "pt-x", &[]),
            2,
            &["nope"],
        ),
        Case::new(
            "pretrain/pnl-data-missing",
            ExitCode,
            &pt("pnl", &f.p("nope"), &f.pnl_toml, "pt-x", &[]),
            2,
            &["nope"],
        ),
        Case::new(
            "pretrain/cion-data-missing",
            ExitCode,
            &pt("cion", &f.p("nope"), &f.cion_toml, "pt-x", &[]),
            2,
            &["nope"],
        ),
        Case::new(
            "pretrain/moco-on-market",
            ExitCode,
            &pt("moco", &f.p("img-ok"), &f.moco_toml, "pt-x", &[]),
            2,
            &["img-ok"],
        ),
        Case::new(
            "pretrain/cion-nested-key-set",
            NestedKey,
            &cion("pt-x", &set("k_schedule.bogus=1")),
            2,
            &["bogus"],
        ),
        Case::new(
            "pretrain/cion-nested-key-file",
            NestedKey,
            &pt(
                "cion",
                &f.annos,
                &f.file(
                    "pt-nested.toml",
                    format!(
                        "{}bogus = 3\n",
                        std::fs::read_to_string(&f.cion_toml).unwrap()
                    ),
                ),
                "pt-x",
                &[],
            ),
            2,
            &["bogus"],
        ),
        Case::new(
            "pretrain/cion-unknown-key",
            Arguments,
            &cion("pt-x", &set("epoch=3")),
            2,
            &["epoch"],
        ),
        Case::new(
            "pretrain/cion-arch-bogus",
            ExitCode,
            &cion("pt-x", &set("arch=resnet19")),
            2,
            &["resnet19"],
        ),
        Case::new(
            "pretrain/cion-base-width-0",
            ExitCode,
            &cion("pt-x", &set("base_width=0")),
            2,
            &["base_width"],
        ),
        Case::new(
            "pretrain/cion-last-stride-5",
            ExitCode,
            &cion("pt-x", &set("last_stride=5")),
            2,
            &["stride"],
        ),
        Case::new(
            "pretrain/cion-batch-too-large",
            ExitCode,
            &cion("pt-x", &set("batch_size=400")),
            2,
            &["400"],
        ),
        Case::new(
            "pretrain/cion-k-schedule-0",
            ExitCode,
            &cion("pt-x", &set("k_schedule.instances=[0]")),
            2,
            &["k_schedule"],
        ),
        Case::new(
            "pretrain/cion-wrong-type",
            Malformed,
            &cion("pt-x", &set("epochs=\"two\"")),
            2,
            &["epochs"],
        ),
        Case::new(
            "pretrain/moco-nested-key",
            NestedKey,
            &pt("moco", &f.lup, &f.moco_toml, "pt-x", &set("size.bogus=1")),
            2,
            &["size"],
        ),
        Case::new(
            "pretrain/pnl-queue-0",
            ExitCode,
            &pt("pnl", &f.nl, &f.pnl_toml, "pt-x", &set("queue_size=0")),
            2,
            &["queue_size"],
        ),
        Case::new(
            "pretrain/devices-0",
            Arguments,
            &cion("pt-x", &[s("--devices"), s("0")]),
            2,
            &["--devices"],
        ),
        Case::new(
            "pretrain/set-no-equals",
            Arguments,
            &cion("pt-x", &set("epochs")),
            2,
            &["epochs"],
        ),
        Case::new(
            "pretrain/config-missing",
            ExitCode,
            &pt("cion", &f.annos, &f.p("pt-nope.toml"), "pt-x", &[]),
            2,
            &["pt-nope.toml"],
        ),
        Case::new(
            "pretrain/annos-not-json",
            Malformed,
            &pt(
                "cion",
                &annos("bad1", "not json"),
                &f.cion_toml,
                "pt-x",
                &[],
            ),
            2,
            &["bad1.json"],
        ),
        Case::new(
            "pretrain/annos-not-list",
            Malformed,
            &pt(
                "cion",
                &annos("bad2", "{\"file_path\": \"a\"}"),
                &f.cion_toml,
                "pt-x",
                &[],
            ),
            2,
            &["bad2.json"],
        ),
        Case::new(
            "pretrain/annos-empty",
            Empty,
            &pt("cion", &annos("bad3", "[]"), &f.cion_toml, "pt-x", &[]),
            2,
            &["bad3.json"],
        ),
        Case::new(
            "pretrain/annos-wrong-type",
            Malformed,
            &pt(
                "cion",
                &annos("bad4", "[{\"file_path\": \"a.jpg\", \"id\": \"x\"}]"),
                &f.cion_toml,
                "pt-x",
                &[],
            ),
            2,
            &["bad4.json"],
        ),
        Case::new(
            "pretrain/annos-missing-image",
            Unreadable,
            &pt(
                "cion",
                &annos(
                    "bad5",
                    "[{\"file_path\": \"nope/a.jpg\", \"id\": 1}, {\"file_path\": \"nope/b.jpg\", \"id\": 2}, {\"file_path\": \"nope/c.jpg\", \"id\": 1}, {\"file_path\": \"nope/d.jpg\", \"id\": 2}]",
                ),
                &f.cion_toml,
                "pt-x",
                &[],
            ),
            2,
            &["nope/", "no such file"],
        ),
        Case::new(
            "pretrain/annos-escape",
            Malformed,
            &pt(
                "cion",
                &annos("bad6", "[{\"file_path\": \"../../etc/passwd\", \"id\": 1}]"),
                &f.cion_toml,
                "pt-x",
                &[],
            ),
            2,
            &["bad6.json"],
        ),
    ];
    // A corrupt image in the annotations.
    let trunc = {
        let b = f.jpg_bytes();
        b[..b.len() / 2].to_vec()
    };
    let market_corrupt = f.market_copy("pt-corrupt", |train| {
        let victim = std::fs::read_dir(train)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .min()
            .unwrap();
        std::fs::write(&victim, &trunc).unwrap();
    });
    quick.push(Case::new(
        "pretrain/cion-corrupt-image",
        ExitCode,
        &pt(
            "cion",
            &market_corrupt.join("annos.json"),
            &f.cion_toml,
            "pt-corrupt-run",
            &[],
        ),
        2,
        &["bounding_box_train"],
    ));

    // Resume scenarios, in order.
    let run = "pt-run";
    let fewer = {
        let text = std::fs::read_to_string(&f.annos).unwrap();
        let mut v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        v.pop();
        annos("annos-fewer", &serde_json::to_string(&v).unwrap())
    };
    let ckdir = f.p(run).join("checkpoints");
    let (ck1, ck2, ck3, ck4) = (ckdir.clone(), ckdir.clone(), ckdir.clone(), ckdir.clone());
    let latest = |dir: &Path| -> Result<std::path::PathBuf, String> {
        let name = std::fs::read_to_string(dir.join("latest")).map_err(|e| e.to_string())?;
        Ok(dir.join(name.trim()))
    };
    let resume = vec![
        Case::new(
            "pretrain/cion-resume-nothing",
            Resume,
            &cion(
                run,
                &[
                    s("--resume"),
                    s("--stop-after"),
                    s("2"),
                    s("--checkpoint-every"),
                    s("1"),
                ],
            ),
            0,
            &["holds no checkpoint", "starting a fresh run"],
        ),
        Case::new(
            "pretrain/cion-resume-other-data",
            Resume,
            &pt("cion", &fewer, &f.cion_toml, run, &[s("--resume")]),
            2,
            &["another training set"],
        ),
        Case::new(
            "pretrain/cion-resume-other-config",
            Resume,
            &cion(run, &[s("--resume"), s("--set"), s("lr=0.5")]),
            2,
            &["another configuration", "`lr`"],
        ),
        // A stale temporary folder of a failed save blocks nothing and is
        // cleaned.
        Case::new(
            "pretrain/cion-resume-stale-tmp",
            Resume,
            &cion(
                run,
                &[
                    s("--resume"),
                    s("--stop-after"),
                    s("3"),
                    s("--checkpoint-every"),
                    s("1"),
                ],
            ),
            0,
            &["resumed from"],
        )
        .after(move || {
            std::fs::create_dir_all(ck1.join("step-000000099.tmp")).map_err(|e| e.to_string())?;
            std::fs::write(ck1.join("step-000000099.tmp/student.bpk"), b"half")
                .map_err(|e| e.to_string())
        })
        .with_check(move |_| {
            let stale = std::fs::read_dir(&ck2)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"));
            if stale {
                Err("a .tmp folder is left".into())
            } else {
                Ok(())
            }
        }),
        // One flipped bit in a checkpoint file.
        Case::new(
            "pretrain/cion-resume-bitflip",
            Resume,
            &cion(run, &[s("--resume")]),
            2,
            &["student.bpk", "damaged"],
        )
        .after(move || {
            let part = latest(&ck3)?.join("student.bpk");
            let mut b = std::fs::read(&part).map_err(|e| e.to_string())?;
            let i = b.len() - 5;
            b[i] ^= 0x10;
            std::fs::write(&part, b).map_err(|e| e.to_string())
        }),
        // The damaged checkpoint deleted and `latest` garbage: the newest
        // complete checkpoint is found.
        Case::new(
            "pretrain/cion-resume-latest-garbage",
            Resume,
            &cion(run, &[s("--resume"), s("--stop-after"), s("3")]),
            0,
            &["resumed from"],
        )
        .after(move || {
            std::fs::remove_dir_all(latest(&ck4)?).map_err(|e| e.to_string())?;
            std::fs::write(ck4.join("latest"), "garbage\n").map_err(|e| e.to_string())
        }),
    ];
    // MoCo and PNL: one short run each, resumed with nothing there.
    let others = vec![
        Case::new(
            "pretrain/moco-resume-nothing",
            Resume,
            &pt(
                "moco",
                &f.lup,
                &f.moco_toml,
                "pt-moco",
                &[s("--resume"), s("--stop-after"), s("1")],
            ),
            0,
            &["holds no checkpoint"],
        ),
        Case::new(
            "pretrain/pnl-resume-nothing",
            Resume,
            &pt(
                "pnl",
                &f.nl,
                &f.pnl_toml,
                "pt-pnl",
                &[s("--resume"), s("--stop-after"), s("1")],
            ),
            0,
            &["holds no checkpoint"],
        ),
    ];
    vec![quick, resume, others]
}

/// The images of a corpus folder tree, counted recursively.
fn count_images(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                count_images(&p)
            } else {
                usize::from(p.extension().is_some_and(|e| e == "jpg"))
            }
        })
        .sum()
}

fn denoise_cases(f: &Fixtures) -> Vec<Case> {
    use Class::*;
    let corpus = f.nl.join("LUPerson-NL");
    let n = count_images(&corpus);
    assert!(n > 0, "no images in {}", corpus.display());
    let dim = 8;
    let feats = |name: &str, values: &[f32]| {
        f.file(
            &format!("dn-{name}.npy"),
            npy("<f4", &format!("({n}, {dim})"), false, &f32s(values)),
        )
    };
    let good = feats("good", &noise(n * dim, 11));
    let zeros = feats("zeros", &vec![0.0; n * dim]);
    let constant = feats("const", &vec![0.5; n * dim]);
    let mut nan = noise(n * dim, 12);
    nan[3 * dim + 1] = f32::NAN;
    let nan = feats("nan", &nan);
    let short = f.file(
        "dn-short.npy",
        npy(
            "<f4",
            &format!("({}, {dim})", n - 1),
            false,
            &f32s(&noise((n - 1) * dim, 13)),
        ),
    );
    let huge = f.file(
        "dn-huge.npy",
        npy("<f4", "(1000000000000, 8)", false, &f32s(&noise(16, 14))),
    );
    let out = a(&f.p("dn-out/annos.json"));
    std::fs::create_dir_all(f.p("dn-out")).unwrap();
    let with = |extra: Vec<OsString>| -> Vec<OsString> {
        let mut v = vec![
            s("denoise"),
            s("--corpus"),
            a(&corpus),
            s("--out"),
            out.clone(),
        ];
        v.extend(extra);
        v
    };
    let features = |p: &Path, more: &[&str]| {
        let mut v = vec![s("--features"), a(p)];
        v.extend(more.iter().map(|x| s(x)));
        with(v)
    };
    let model = |more: &[&str]| {
        let mut v = vec![
            s("--arch"),
            s("resnet18"),
            s("--base-width"),
            s("4"),
            s("--weights"),
            a(&f.weights),
        ];
        v.extend(more.iter().map(|x| s(x)));
        with(v)
    };
    vec![
        Case::new(
            "denoise/good-features",
            Good,
            &features(&good, &[]),
            0,
            &["wrote"],
        ),
        Case::new(
            "denoise/good-weights",
            Good,
            &model(&["--height", "32", "--width", "16"]),
            0,
            &["wrote"],
        ),
        Case::new(
            "denoise/zero-features-cosine",
            Empty,
            &features(&zeros, &[]),
            2,
            &["row 0", "all zeros", "cosine"],
        ),
        Case::new(
            "denoise/zero-features-euclidean",
            Empty,
            &features(&zeros, &["--metric", "euclidean"]),
            2,
            &["identical features"],
        ),
        Case::new(
            "denoise/constant-features-cosine",
            Message,
            &features(&constant, &[]),
            2,
            &["identical features"],
        ),
        Case::new(
            "denoise/constant-features-euclidean",
            Message,
            &features(&constant, &["--metric", "euclidean"]),
            2,
            &["identical features"],
        ),
        Case::new(
            "denoise/nan-feature",
            NaN,
            &features(&nan, &[]),
            2,
            &["non-finite", "row 3"],
        ),
        Case::new(
            "denoise/too-few-rows",
            Malformed,
            &features(&short, &[]),
            2,
            &["dn-short.npy"],
        ),
        Case::new(
            "denoise/huge-header",
            Abort,
            &features(&huge, &[]),
            2,
            &["dn-huge.npy"],
        ),
        Case::new(
            "denoise/features-missing",
            ExitCode,
            &features(&f.p("dn-nope.npy"), &[]),
            2,
            &["dn-nope.npy"],
        ),
        Case::new(
            "denoise/height-0",
            Panic,
            &model(&["--height", "0"]),
            2,
            &["--height 0", "output stride"],
        ),
        Case::new(
            "denoise/width-below-stride",
            Panic,
            &model(&["--height", "32", "--width", "8"]),
            2,
            &["--width 8", "output stride 16"],
        ),
        Case::new(
            "denoise/huge-size",
            Abort,
            &model(&["--height", "100000", "--width", "100000"]),
            2,
            &["--height 100000", "too large"],
        ),
        Case::new(
            "denoise/no-features-no-weights",
            Arguments,
            &with(vec![]),
            2,
            &["--features"],
        ),
        Case::new(
            "denoise/corpus-missing",
            ExitCode,
            &[
                s("denoise"),
                s("--corpus"),
                a(&f.p("dn-no-corpus")),
                s("--features"),
                a(&good),
                s("--out"),
                out.clone(),
            ],
            2,
            &["--corpus", "dn-no-corpus", "no such"],
        ),
        Case::new(
            "denoise/target-precision-1.5",
            Arguments,
            &features(&good, &["--target-precision", "1.5"]),
            2,
            &["precision"],
        ),
        Case::new(
            "denoise/out-folder-missing",
            ExitCode,
            &[
                s("denoise"),
                s("--corpus"),
                a(&corpus),
                s("--features"),
                a(&good),
                s("--out"),
                a(&f.p("dn-nowhere/sub/annos.json")),
            ],
            2,
            &["--out", "dn-nowhere", "does not exist"],
        ),
    ]
}

fn study_demo_cases(f: &Fixtures) -> Vec<Case> {
    use Class::*;
    let out = a(&f.p("study-out"));
    let st = |name: &str, extra: &[&str], says: &[&str]| {
        let mut v = vec![s("study"), s("--out"), out.clone()];
        v.extend(extra.iter().map(|x| s(x)));
        Case::new(format!("study/{name}"), Arguments, &v, 2, says)
    };
    let dm = |name: &str, class: Class, extra: Vec<OsString>, says: &[&str]| {
        let mut v = vec![s("demo"), s("--out"), a(&f.p(&format!("demo-out-{name}")))];
        v.extend(extra);
        Case::new(format!("demo/{name}"), class, &v, 2, says)
    };
    let nested = f.file(
        "demo-cion.toml",
        format!("{}[k_schedule]\nbogus = 1\n", "epochs = 1\n"),
    );
    vec![
        st(
            "config-dir-missing",
            &["--config-dir", "/nonexistent/reid"],
            &["/nonexistent/reid"],
        ),
        st("rows-bogus", &["--rows", "dino"], &["dino"]),
        st("budget-negative", &["--budget=-5"], &["budget"]),
        st("budget-nan", &["--budget", "NaN"], &["budget"]),
        st("seeds-0", &["--seeds", "0"], &["seed"]),
        st(
            "finetune-epochs-0",
            &["--finetune-epochs", "0"],
            &["finetune_epochs"],
        ),
        st("backend-bogus", &["--backend", "tpu"], &["tpu"]),
        st(
            "denoise-features-scratch",
            &["--denoise-features", "scratch"],
            &["denoise_features", "moco or pnl"],
        ),
        st(
            "denoise-features-bogus",
            &["--denoise-features", "dino"],
            &["dino"],
        ),
        dm(
            "height-0",
            Arguments,
            vec![s("--height"), s("0")],
            &["16×8"],
        ),
        dm(
            "denoise-level-7",
            Arguments,
            vec![s("--denoise-level"), s("7")],
            &["level"],
        ),
        dm(
            "videos-0",
            Arguments,
            vec![s("--videos"), s("0")],
            &["videos"],
        ),
        dm(
            "cion-config-missing",
            ExitCode,
            vec![s("--cion-config"), a(&f.p("nope.toml"))],
            &["nope.toml"],
        ),
        dm(
            "cion-config-nested-key",
            NestedKey,
            vec![s("--cion-config"), a(&nested)],
            &["bogus"],
        ),
        dm(
            "arch-bogus",
            Arguments,
            vec![s("--arch"), s("resnet19")],
            &["resnet19"],
        ),
        dm(
            "base-width-0",
            Arguments,
            vec![s("--base-width"), s("0")],
            &["base"],
        ),
    ]
}

#[test]
fn the_bad_input_corpus() {
    let f = fixtures::build();
    let mut groups: Vec<Vec<Case>> = Vec::new();
    for c in argv_cases(&f)
        .into_iter()
        .chain(synth_cases(&f))
        .chain(inspect_cases(&f))
        .chain(extract_cases(&f))
        .chain(evaluate_cases(&f))
        .chain(plot_cases(&f))
        .chain(denoise_cases(&f))
        .chain(study_demo_cases(&f))
    {
        groups.push(vec![c]);
    }
    groups.extend(finetune_cases(&f));
    groups.extend(pretrain_cases(&f));
    // Longest groups first (they are popped from the end).
    groups.sort_by_key(Vec::len);
    let total: usize = groups.iter().map(Vec::len).sum();
    let results = run_groups(groups, 3, Duration::from_secs(240));
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    println!(
        "bad-input corpus: {total} cases; {} pass, {} panics, {} aborts, {} silent wrong results, {} other failures",
        count(Verdict::Pass),
        count(Verdict::Panic),
        count(Verdict::Abort),
        count(Verdict::Wrong),
        count(Verdict::Bad)
    );
    let mut by_class = std::collections::BTreeMap::new();
    for r in &results {
        *by_class.entry(format!("{:?}", r.class)).or_insert(0) += 1;
    }
    println!("cases per class: {by_class:?}");
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| format!("{} [{:?}, {:?}]: {}", r.name, r.class, r.verdict, r.why))
        .collect();
    for line in &failed {
        println!("FAIL {line}");
    }
    let _ = std::fs::remove_dir_all(&f.root);
    assert!(total >= 150, "the corpus has {total} cases");
    if std::env::var_os("REID_CORPUS_REPORT").is_none() {
        assert!(
            failed.is_empty(),
            "{} of {total} cases failed:\n{}",
            failed.len(),
            failed.join("\n")
        );
    }
}
