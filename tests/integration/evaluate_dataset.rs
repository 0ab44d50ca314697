//! The evaluate-a-model workflow end to end, through the `reid` binary:
//! fine-tune BoT on a synthetic Market-1501-style set, export the whole
//! model, evaluate it with `reid evaluate --dataset … --weights …`, and get
//! the mAP that fine-tuning reported (to 1e-6), plus the files `--out`
//! promises; then the same command with a wrong architecture is a clear
//! error with exit code 2, and the exported model starts a BoT run with
//! `finetune --weights`. The same images given as list files
//! (`--dataset lists`) train to the same mAP.

use std::path::{Path, PathBuf};
use std::process::Command;

fn reid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reid"))
}

/// `reid finetune` for one epoch of a ResNet (base width 8) at 64×32 on the
/// dataset at `data`, then `extra`.
fn finetune(arch: &str, data: &Path, extra: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut c = reid();
    c.args([
        "finetune",
        "--epochs",
        "1",
        "--arch",
        arch,
        "--base-width",
        "8",
    ])
    .args(["--height", "64", "--width", "32", "--data"])
    .arg(data)
    .args(extra.iter().map(|a| a.as_ref()));
    c
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("the reid binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` and asserts that it succeeded; returns its stdout and stderr.
#[track_caller]
fn run_ok(cmd: &mut Command) -> (String, String) {
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{out}\n{err}");
    (out, err)
}

/// Runs `cmd`, asserts that it succeeded, and parses its stdout as JSON.
#[track_caller]
fn run_json(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_str(run_ok(cmd).0.trim()).unwrap()
}

/// Runs `cmd` and asserts that it was refused as a usage error (exit 2)
/// with a message containing `needle`.
#[track_caller]
fn run_refused(cmd: &mut Command, needle: &str) {
    let (code, _, err) = run(cmd);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(needle), "{err}");
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A fresh temporary folder for the test `name` holding a synthetic
/// Market-1501 set at 64×32: the folder and the set's root.
fn synth_market(name: &str) -> (PathBuf, PathBuf) {
    let d = std::env::temp_dir().join(format!("reid-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let (code, _, err) = run(reid()
        .args(["synth", "--kind", "market1501", "--height", "64"])
        .args(["--width", "32", "--out"])
        .arg(&d));
    assert_eq!(code, 0, "{err}");
    let root = d.join("Market-1501-v15.09.15");
    (d, root)
}

/// `reid evaluate --dataset market1501 --root root --weights weights`.
fn evaluate(root: &Path, weights: &Path) -> Command {
    let mut c = reid();
    c.args(["evaluate", "--dataset", "market1501", "--root"])
        .arg(root)
        .arg("--weights")
        .arg(weights);
    c
}

/// `reid evaluate --dataset market1501 --root root --weights weights --json`.
fn evaluate_json(root: &Path, weights: &Path) -> serde_json::Value {
    run_json(evaluate(root, weights).arg("--json"))
}

/// `reid export --weights weights --out out`.
fn export(weights: &Path, out: &Path) -> Command {
    let mut c = reid();
    c.arg("export")
        .arg("--weights")
        .arg(weights)
        .arg("--out")
        .arg(out);
    c
}

/// The last mAP a fine-tuning log at `path` holds (its final evaluation).
fn final_map(path: &Path) -> f64 {
    json_lines(path)
        .into_iter()
        .rev()
        .find_map(|l| l.get("mAP").and_then(|v| v.as_f64()))
        .expect("the log holds the final evaluation")
}

/// `reid inspect --dataset dataset --json --root root`, parsed.
fn inspect_json(dataset: &str, root: &Path) -> serde_json::Value {
    run_json(
        reid()
            .args(["inspect", "--dataset", dataset, "--json", "--root"])
            .arg(root),
    )
}

#[test]
fn a_fine_tuned_model_evaluates_to_the_same_map_through_evaluate_dataset() {
    let (d, root) = synth_market("evaluate-dataset");
    let model = d.join("model.safetensors");
    let log = d.join("ft.jsonl");
    run_ok(&mut finetune(
        "resnet18",
        &root,
        &[&"--export-model", &model, &"--log", &log],
    ));
    let reported = final_map(&log);

    // The same images as your own dataset (list files `path pid camid`,
    // in the Market parser's order): the same run, the same mAP.
    let lists = d.join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    for (dir, list) in [
        ("bounding_box_train", "train.txt"),
        ("query", "query.txt"),
        ("bounding_box_test", "gallery.txt"),
    ] {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".jpg"))
            .collect();
        names.sort();
        let mut text = String::from("# path pid camid\n");
        for n in names {
            let pid: i64 = n.split('_').next().unwrap().parse().unwrap();
            let cam: u32 = n.split("_c").nth(1).unwrap()[..1].parse().unwrap();
            let path = root.join(dir).join(&n);
            text += &format!("{} {pid} {}\n", path.display(), cam - 1);
        }
        std::fs::write(lists.join(list), text).unwrap();
    }
    let log_lists = d.join("ft-lists.jsonl");
    run_ok(&mut finetune(
        "resnet18",
        &lists,
        &[&"--dataset", &"lists", &"--log", &log_lists],
    ));
    let from_lists = final_map(&log_lists);
    assert_eq!(from_lists, reported);
    let own = inspect_json("lists", &lists);
    let market = inspect_json("market1501", &root);
    for split in ["train", "query", "gallery"] {
        assert_eq!(own[split], market[split], "{split}: {own} vs {market}");
    }

    let ev = d.join("ev");
    let summary = run_json(evaluate(&root, &model).arg("--out").arg(&ev).arg("--json"));
    let map = summary["mAP"].as_f64().unwrap();
    assert!(
        (map - reported).abs() <= 1e-6,
        "evaluate: {map}, fine-tuning: {reported}"
    );
    // Nothing but the file told it the architecture and the input size.
    let described = summary["model"].to_string();
    for what in [
        "arch resnet18 (file)",
        "base_width 8 (file)",
        "height 64 (file)",
    ] {
        assert!(described.contains(what), "{described}");
    }
    for f in [
        "metrics.json",
        "query.npy",
        "gallery.npy",
        "query_pids.npy",
        "query_camids.npy",
        "gallery_pids.npy",
        "gallery_camids.npy",
        "cmc.png",
        "ranklist.png",
    ] {
        assert!(ev.join(f).is_file(), "{f} missing");
    }
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(written["mAP"], summary["mAP"]);

    // The saved features give the same mAP through the features mode.
    let again = run_json(
        reid()
            .arg("evaluate")
            .arg("--query")
            .arg(ev.join("query.npy"))
            .arg("--gallery")
            .arg(ev.join("gallery.npy"))
            .arg("--query-pids")
            .arg(ev.join("query_pids.npy"))
            .arg("--query-camids")
            .arg(ev.join("query_camids.npy"))
            .arg("--gallery-pids")
            .arg(ev.join("gallery_pids.npy"))
            .arg("--gallery-camids")
            .arg(ev.join("gallery_camids.npy"))
            .args(["--metric", "cosine", "--json"]),
    );
    assert!((again["mAP"].as_f64().unwrap() - map).abs() <= 1e-9);

    // Flip averaging changes the features, so the result (a real second pass).
    let flipped = run_json(evaluate(&root, &model).args(["--flip", "--json"]));
    assert_eq!(flipped["flip"], true);
    assert_ne!(flipped["mAP"], summary["mAP"]);

    // A wrong architecture is the user's error, naming the tensors.
    run_refused(
        evaluate(&root, &model).args(["--arch", "resnet50"]),
        "heads.bottleneck.0.weight",
    );

    // The exported model is also a starting point for BoT (its trunk under
    // a fresh head), and a trunk of another depth is refused.
    let (_, err) = run_ok(&mut finetune("resnet18", &root, &[&"--weights", &model]));
    assert!(err.contains("100 tensors loaded"), "{err}");
    run_refused(
        &mut finetune("resnet34", &root, &[&"--weights", &model]),
        "missing keys",
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// `reid export`: the fine-tuned IBN-a model in inference form (BatchNorms
/// folded) computes the source model's features; the training form
/// evaluates to the same mAP as the source file; the folded file is refused
/// by `evaluate` with a message naming what it is; a re-parameterised zoo
/// family is refused. (The PyTorch / ONNX / onnxruntime side of the route
/// is `tools/onnx_export_check.py`, see docs/deployment.md.)
#[test]
fn a_fine_tuned_model_exports_for_deployment() {
    let (d, root) = synth_market("export");
    let model = d.join("model.safetensors");
    run_ok(&mut finetune(
        "resnet18_ibn_a",
        &root,
        &[&"--export-model", &model],
    ));

    let x = d.join("x.npy");
    let values: Vec<f32> = (0..2 * 3 * 64 * 32)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    ndarray_npy::write_npy(
        &x,
        &ndarray::Array4::from_shape_vec((2, 3, 64, 32), values).unwrap(),
    )
    .unwrap();
    let folded = d.join("deploy.safetensors");
    let feats = d.join("deploy.npy");
    let report = run_json(
        export(&model, &folded)
            .arg("--input-tensor")
            .arg(&x)
            .arg("--features")
            .arg(&feats)
            .arg("--json"),
    );
    assert_eq!(report["form"], "folded");
    let rel = report["max_rel_diff_vs_source"].as_f64().unwrap();
    assert!(rel < 1e-5, "folded vs source: {rel}");
    let f: ndarray::Array2<f32> = ndarray_npy::read_npy(&feats).unwrap();
    assert_eq!(f.dim(), (2, 64));
    assert!(f.iter().all(|v| v.is_finite()));

    // The folded file is for deployment, not for evaluation or training.
    run_refused(&mut evaluate(&root, &folded), "reid.form = folded");

    // The training form evaluates exactly as the source file.
    let trained = d.join("trained.safetensors");
    run_ok(export(&model, &trained).args(["--form", "trained"]));
    assert_eq!(
        evaluate_json(&root, &trained)["mAP"],
        evaluate_json(&root, &model)["mAP"]
    );

    // FastViT's inference form is re-parameterised: refused, exit 2.
    let fastvit = d.join("fastvit.safetensors");
    run_refused(
        export(&model, &fastvit).args(["--arch", "fastvit_s12"]),
        "re-parameterised",
    );
    std::fs::remove_dir_all(d).unwrap();
}

/// MGN the same way: `finetune --head mgn --export-model` writes fast-reid's
/// MGN names with `reid.model = mgn`; `evaluate --dataset` rebuilds it from
/// the file alone and gets fine-tuning's mAP. At 96×32 the test images are
/// resized, so this also pins the test transform to fine-tuning's (bicubic).
#[test]
fn a_fine_tuned_mgn_evaluates_to_the_same_map_through_evaluate_dataset() {
    let (d, root) = synth_market("evaluate-mgn");
    let recipe = d.join("mgn.toml");
    std::fs::write(
        &recipe,
        "arch = \"resnet50\"\nbase_width = 4\nheight = 96\nwidth = 32\np = 4\nk = 4\n\
         epochs = 2\nwarmup_epochs = 1\ndelay_epochs = 0\nfreeze_epochs = 0\nembedding_dim = 8\n",
    )
    .unwrap();
    let model = d.join("mgn.safetensors");
    let log = d.join("mgn.jsonl");
    run_ok(
        reid()
            .args([
                "finetune",
                "--head",
                "mgn",
                "--iters-per-epoch",
                "2",
                "--config",
            ])
            .arg(&recipe)
            .arg("--data")
            .arg(&root)
            .arg("--export-model")
            .arg(&model)
            .arg("--log")
            .arg(&log),
    );
    let reported = final_map(&log);
    let summary = evaluate_json(&root, &model);
    let map = summary["mAP"].as_f64().unwrap();
    assert!(
        (map - reported).abs() <= 1e-6,
        "evaluate: {map}, fine-tuning: {reported}"
    );
    assert!(
        summary["model"]
            .to_string()
            .contains("embedding_dim 8 (file)")
    );
    // BoT's export path refuses it, naming what the file is.
    let (code, _, err) = run(&mut export(&model, &d.join("x.safetensors")));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reid.model = \"mgn\""), "{err}");
    std::fs::remove_dir_all(d).unwrap();
}
