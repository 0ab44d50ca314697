//! Learning-rate parity with PyTorch's schedulers driven the way fast-reid's
//! trainer drives them (`tools/fixtures/gen_schedule_fixtures.py` →
//! `tests/fixtures/schedule/schedules.json`): per-iteration warm-up,
//! per-epoch multi-step / cosine decay stepped only after warm-up.

use std::path::PathBuf;

use reid_train::{Decay, LrSchedule, Warmup};
use serde_json::Value;

fn schedule(case: &Value) -> LrSchedule {
    let decay = &case["decay"];
    let decay = match decay["kind"].as_str().unwrap() {
        "multi_step" => Decay::MultiStep {
            milestones: decay["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap() as usize)
                .collect(),
            gamma: decay["gamma"].as_f64().unwrap(),
        },
        "cosine" => Decay::Cosine {
            eta_min: decay["eta_min"].as_f64().unwrap(),
            delay_epochs: decay["delay_epochs"].as_u64().unwrap() as usize,
        },
        other => panic!("unknown decay {other}"),
    };
    LrSchedule {
        base_lr: case["base_lr"].as_f64().unwrap(),
        warmup: Warmup {
            iters: case["warmup_iters"].as_u64().unwrap() as usize,
            factor: case["warmup_factor"].as_f64().unwrap(),
        },
        decay,
        epochs: case["epochs"].as_u64().unwrap() as usize,
        iters_per_epoch: case["iters_per_epoch"].as_u64().unwrap() as usize,
    }
}

#[test]
fn lr_matches_torch_schedulers_driven_like_fast_reid() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schedule/schedules.json");
    let text = std::fs::read_to_string(&path).expect("schedule fixture");
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let s = schedule(case);
        s.validate().unwrap();
        let mut worst = 0.0f64;
        for pair in case["samples"].as_array().unwrap() {
            let i = pair[0].as_u64().unwrap() as usize;
            let want = pair[1].as_f64().unwrap();
            let got = s.lr_at(i);
            let rel = (got - want).abs() / want.abs().max(1e-300);
            assert!(
                rel < 1e-9,
                "{name}: iteration {i}: ours {got:e}, torch {want:e}"
            );
            worst = worst.max(rel);
        }
        eprintln!("{name}: max relative error {worst:e}");
    }
}
