//! The pre-training study (`reid::study`) at a toy size: every row runs a
//! handful of steps, the report is written with every row, and a second
//! call on the same folder skips every stage and reports the same results;
//! a stage whose record is gone runs again and resumes from its checkpoint;
//! other settings on the same folder are refused. Behaviour, not numbers.

use std::path::{Path, PathBuf};

use reid::Backend;
use reid::study::{
    Recipes, Row, RowConfig, StageDone, StageId, StageKind, StageStatus, StudyConfig, StudyError,
    StudyEvent, StudyOptions, StudyReport, run_study, stage_list,
};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reid-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs the study; returns the report, the finished stages and whether any
/// stage started or stepped.
fn run(cfg: &StudyConfig, out: &Path) -> (Result<StudyReport, StudyError>, Vec<StageDone>, bool) {
    let opts = StudyOptions::new(out, Backend::Flex);
    let mut done = Vec::new();
    let mut started = false;
    let report = run_study(cfg, &opts, |e| match e {
        StudyEvent::Done(d) => {
            // The progress line names the stage and its position.
            let line = d.to_string();
            assert!(line.contains(&d.stage.to_string()), "{line}");
            done.push(d.clone());
        }
        StudyEvent::Start { .. } | StudyEvent::Step { .. } => started = true,
    });
    (report, done, started)
}

#[test]
fn builtin_recipes_are_the_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/study");
    assert_eq!(Recipes::load(&dir).unwrap(), Recipes::builtin());
    let bad = tmp("study-recipes");
    std::fs::create_dir_all(&bad).unwrap();
    for f in reid::study::RECIPE_FILES {
        std::fs::copy(dir.join(f), bad.join(f)).unwrap();
    }
    std::fs::write(bad.join("pnl.toml"), "no_such_key = 1\n").unwrap();
    let err = Recipes::load(&bad).unwrap_err();
    assert!(
        err.is_usage() && err.to_string().contains("pnl.toml"),
        "{err}"
    );
    std::fs::remove_dir_all(&bad).ok();
}

#[test]
fn budget_buys_fewer_steps_for_more_crops() {
    let cfg = StudyConfig::default_size(Recipes::builtin());
    let moco = cfg.plan(Row::Moco, 0, 3000, None).unwrap();
    let cion = cfg.plan(Row::Cion, 0, 3000, Some(90)).unwrap();
    let sup = cfg.plan(Row::Supervised, 0, 3000, None).unwrap();
    // 2 views x batch 32; 32 x (2 + 2 global crops of a quarter of the
    // study's area, no locals); BoT's 16 x 4.
    assert_eq!(moco.passes_per_step, 64.0);
    assert_eq!(cion.passes_per_step, 32.0);
    assert_eq!(sup.passes_per_step, 64.0);
    assert_eq!(moco.budget_steps, 750);
    assert_eq!(cion.budget_steps, 1500);
    let RowConfig::Cion(c) = &cion.config else {
        panic!("the cion row plans a CION run");
    };
    assert_eq!((c.global_size, c.local_crops), ([64, 32], 0));
    // Another study size scales the file's crops with it.
    let mut half = cfg.clone();
    (half.height, half.width) = (64, 32);
    let RowConfig::Cion(c) = half.plan(Row::Cion, 0, 3000, Some(90)).unwrap().config else {
        panic!("the cion row plans a CION run");
    };
    assert_eq!(c.global_size, [32, 16]);
    for p in [&moco, &cion, &sup] {
        let planned = p.epochs * p.steps_per_epoch;
        assert!(planned >= p.budget_steps && planned < p.budget_steps + p.epochs);
        assert!(p.planned_passes() >= cfg.budget_passes);
    }
    assert!(cfg.plan(Row::Scratch, 0, 3000, None).is_err());
    // The default fine-tuning is the demo's BoT recipe; shorter runs scale
    // its warm-up and milestones with their epochs.
    let ft = cfg.finetune_config(0);
    assert_eq!((ft.epochs, ft.warmup.iters), (24, 130));
    let quick = StudyConfig::quick(Recipes::builtin()).finetune_config(0);
    assert_eq!((quick.epochs, quick.warmup.iters), (8, 43));
    assert_eq!("cion-oracle".parse::<Row>().unwrap(), Row::CionOracle);
    assert!("nope".parse::<Row>().unwrap_err().is_usage());
}

#[test]
fn toy_study_runs_skips_when_done_and_resumes() {
    let out = tmp("study");
    let cfg = StudyConfig::toy(Recipes::builtin());
    let stages = stage_list(&cfg);

    // 1. Every stage runs.
    let (first, done, _) = run(&cfg, &out);
    let first = first.unwrap();
    eprintln!("{}", first.markdown());
    assert_eq!(done.len(), stages.len());
    assert!(done.iter().all(|d| d.status == StageStatus::Ran));
    assert_eq!(
        done.iter().map(|d| d.stage).collect::<Vec<_>>(),
        stages,
        "stages in stage_list order"
    );
    let rows: Vec<Row> = first.rows.iter().map(|r| r.row).collect();
    assert_eq!(rows, Row::ALL.to_vec());
    for r in &first.rows {
        assert_eq!(r.seeds.len(), 1);
        let s = &r.seeds[0];
        assert!((0.0..=1.0).contains(&s.noft.map) && (0.0..=1.0).contains(&s.finetune.scores.map));
        assert!(s.finetune.steps >= 1);
        match (&s.plan, &s.pretrain) {
            (Some(plan), Some(p)) => {
                assert!(p.steps >= 1 && p.steps <= plan.epochs * plan.steps_per_epoch);
                assert_eq!(p.passes, p.steps as f64 * plan.passes_per_step);
            }
            (None, None) => assert_eq!(r.row, Row::Scratch),
            _ => panic!("{}: plan and pre-training go together", r.row),
        }
        assert_eq!(s.denoise.is_some(), r.row == Row::Cion);
        assert_eq!(r.denoise_f.is_some(), r.row == Row::Cion);
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("study.json")).unwrap()).unwrap();
    let names: Vec<&str> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].as_str().unwrap())
        .collect();
    assert_eq!(names, Row::ALL.map(Row::name).to_vec());
    assert_eq!(json["budget"]["passes"], cfg.budget_passes);
    let md = std::fs::read_to_string(out.join("study.md")).unwrap();
    for row in Row::ALL {
        assert!(
            md.contains(&format!("| {row} |")),
            "{row} missing from study.md"
        );
    }
    let png = std::fs::read(out.join("study.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    // 2. Nothing left to do: every stage is skipped, the results are equal.
    let (second, done, started) = run(&cfg, &out);
    let second = second.unwrap();
    assert!(!started, "no stage may start on a finished study");
    assert_eq!(done.len(), stages.len());
    assert!(done.iter().all(|d| d.status == StageStatus::Cached));
    assert_eq!(second.rows, first.rows);

    // 3. A pre-training whose record is lost runs again, from its last
    //    checkpoint (no step left), and the stages after it stay cached.
    let pnl = StageId {
        seed: Some(0),
        row: Some(Row::Pnl),
        kind: StageKind::Pretrain,
    };
    std::fs::remove_file(pnl.dir(&out).join("result.json")).unwrap();
    let (third, done, _) = run(&cfg, &out);
    let third = third.unwrap();
    for d in &done {
        let want = if d.stage == pnl {
            StageStatus::Ran
        } else {
            StageStatus::Cached
        };
        assert_eq!(d.status, want, "{}", d.stage);
    }
    let row = |r: &StudyReport| r.rows.iter().find(|x| x.row == Row::Pnl).unwrap().clone();
    let (before, after) = (row(&first), row(&third));
    let (b, a) = (
        before.seeds[0].pretrain.as_ref().unwrap(),
        after.seeds[0].pretrain.as_ref().unwrap(),
    );
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.resumed_from, Some(b.steps));
    assert_eq!(after.ft_map, before.ft_map);

    // 4. Other settings on the same folder are refused, naming the stage.
    let mut other = cfg.clone();
    other.finetune_epochs = 2;
    let (err, _, _) = run(&other, &out);
    let err = err.unwrap_err();
    assert!(
        matches!(err, StudyError::Stale { .. }) && err.is_usage(),
        "{err}"
    );
    std::fs::remove_dir_all(&out).ok();
}
