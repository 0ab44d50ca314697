//! The demo as a library function at a toy size: every stage runs, the
//! outputs it documents are written, and bad settings are refused before
//! anything runs.

use reid::demo::{DemoConfig, DemoEvent, PretrainPlan, run_demo};

fn toy(name: &str) -> DemoConfig {
    let out = std::env::temp_dir().join(format!("reid-demo-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    DemoConfig::default()
        .with_out(out)
        .with_base_width(4)
        .with_height(32)
        .with_width(16)
        .with_videos(6)
        .with_pretrain_epochs(1)
        .with_finetune_epochs(1)
        .with_tracklet_epochs(1)
        .with_pnl_epochs(1)
}

#[test]
fn the_demo_runs_every_stage_and_writes_its_outputs() {
    // Level 2's stitching on, as the study's `cion` row denoises.
    let cfg = toy("full")
        .with_stitch_gap_steps(2.0)
        .with_stitch_threshold(4.0);
    let device = reid::burn::tensor::Device::flex();
    let mut lines = Vec::new();
    let mut cion_steps = 0;
    let mut finetune_steps = 0;
    let out = run_demo(&cfg, &device, &mut |e| match e {
        DemoEvent::Line(s) => lines.push(s),
        DemoEvent::Pretrain {
            stage: "cion",
            event: reid::train::PretrainEvent::Step(_),
        } => {
            cion_steps += 1;
        }
        DemoEvent::FinetuneStep { .. } => finetune_steps += 1,
        _ => {}
    })
    .unwrap();
    assert!(cion_steps > 0, "no CION step ran");
    assert!(finetune_steps > 0, "no fine-tuning step ran");
    assert!(lines.iter().any(|l| l.starts_with("1. world")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("level 3")),
        "denoising was not scored: {lines:?}"
    );
    let inits: Vec<&str> = out.finetuned.iter().map(|r| r.init).collect();
    assert_eq!(inits, ["random init", PretrainPlan::PnlCion.label()]);
    assert_eq!(out.backbone_only.len(), 2);
    for r in out.backbone_only.iter().chain(&out.finetuned) {
        assert!(
            (0.0..=1.0).contains(&r.result.map),
            "{}: mAP {}",
            r.init,
            r.result.map
        );
    }
    let table = out.table();
    assert_eq!(table.lines().count(), 2 + 4, "{table}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "seed",
        "arch",
        "base_width",
        "size",
        "backend",
        "precision",
        "denoise_quality",
        "pretrain",
        "pnl",
        "supervised",
        "cion",
        "finetune",
        "backbone_features_only",
        "results",
        "pictures",
        "seconds",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(summary["pretrain"], "pnl+cion");
    assert_eq!(summary["results"].as_array().unwrap().len(), 2);
    for f in [
        "cmc.png",
        "ranklist.png",
        "finetune-random.jsonl",
        "finetune-cion.jsonl",
        "pnl/metrics.jsonl",
        "cion/metrics.jsonl",
    ] {
        assert!(cfg.out.join(f).is_file(), "{f} was not written");
    }
    std::fs::remove_dir_all(&cfg.out).unwrap();
}

#[test]
fn bad_settings_are_refused_before_anything_runs() {
    let device = reid::burn::tensor::Device::flex();
    for cfg in [
        toy("bad-level").with_denoise_level(4),
        toy("bad-epochs").with_finetune_epochs(0),
        toy("bad-size").with_height(4),
        toy("bad-stitch-gap").with_stitch_gap_steps(-1.0),
        toy("bad-stitch-threshold").with_stitch_threshold(f32::NAN),
    ] {
        let e = run_demo(&cfg, &device, &mut |_| {}).unwrap_err();
        assert!(e.is_usage(), "{e}");
        assert!(!cfg.out.exists(), "{} was written", cfg.out.display());
    }
    assert!("tracklets+cion".parse::<PretrainPlan>().is_ok());
    let e = "cion+tracklets"
        .parse::<PretrainPlan>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("tracklets+cion"), "{e}");
}
