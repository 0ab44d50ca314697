//! The recipe files in `configs/` parse into their configurations, and the
//! full-size ones equal the library defaults (the paper's values).

use reid::train::finetune::mgn::MgnFinetuneConfig;
use reid::train::{CionConfig, FinetuneConfig, MocoConfig, PnlConfig};

fn read<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn full_size_recipes_are_the_defaults() {
    assert_eq!(read::<CionConfig>("cion.toml"), CionConfig::default());
    assert_eq!(read::<MocoConfig>("moco.toml"), MocoConfig::default());
    assert_eq!(read::<PnlConfig>("pnl.toml"), PnlConfig::default());
    assert_eq!(
        read::<FinetuneConfig>("bot.toml"),
        FinetuneConfig::default()
    );
}

#[test]
fn tiny_recipes_parse_and_validate() {
    read::<CionConfig>("cion-tiny.toml").validate().unwrap();
    read::<CionConfig>("cion-small.toml").validate().unwrap();
    read::<CionConfig>("cion-after-pnl.toml")
        .validate()
        .unwrap();
    read::<MocoConfig>("moco-tiny.toml").validate().unwrap();
    read::<PnlConfig>("pnl-tiny.toml").validate().unwrap();
    read::<MgnFinetuneConfig>("mgn-tiny.toml")
        .validate()
        .unwrap();
}

// ---------------------------------------------------------------------------
// Our full-size recipes against the upstream values
// (tests/fixtures/upstream_configs.json, written by
// tools/fixtures/gen_upstream_configs.py from the three upstream checkouts).
//
// Each row maps one of our fields (or a value our code hard-codes, for an
// upstream setting we have no field for) to upstream keys, through a unit
// conversion. A row without a listed difference must agree; a row with one
// must disagree (so the test fails when the difference goes away). Every
// field of our recipe and every upstream key of the fixture must be covered
// by a row. docs/reproduce.md lists the same differences.

use serde_json::{Value, json};

/// Converts the upstream values (in the order of `Row::up`) to our units.
type Conv = fn(&[Value]) -> Value;

enum Ours {
    /// A field of our recipe, dotted path in its JSON form.
    Field(&'static str),
    /// What our code hard-codes where the recipe has no field.
    Const(Value),
}

struct Row {
    ours: Ours,
    up: &'static [&'static str],
    conv: Conv,
    /// `Some(reason)`: a listed, deliberate difference.
    differs: Option<&'static str>,
    /// Why the row is as it is (ours-only fields, hard-coded values).
    #[allow(dead_code)]
    note: &'static str,
}

fn id(v: &[Value]) -> Value {
    v[0].clone()
}
fn pair(v: &[Value]) -> Value {
    json!([v[0], v[1]])
}
fn int_to_bool(v: &[Value]) -> Value {
    Value::Bool(v[0].as_i64().unwrap() != 0)
}
fn csv_ints(v: &[Value]) -> Value {
    let s = v[0].as_str().unwrap();
    json!(
        s.split(',')
            .map(|x| x.trim().parse::<u64>().unwrap())
            .collect::<Vec<_>>()
    )
}
fn product(v: &[Value]) -> Value {
    json!(v.iter().map(|x| x.as_f64().unwrap()).product::<f64>())
}
fn quotient(v: &[Value]) -> Value {
    json!(v[0].as_u64().unwrap() / v[1].as_u64().unwrap())
}
fn first(v: &[Value]) -> Value {
    v[0][0].clone()
}
fn second(v: &[Value]) -> Value {
    v[0][1].clone()
}
/// CION's `resnet50_ibn` is `ResNet_IBN.resnet50_ibn_a`.
fn cion_arch(v: &[Value]) -> Value {
    let a = v[0].as_str().unwrap();
    json!(if a.ends_with("_ibn") {
        format!("{a}_a")
    } else {
        a.to_string()
    })
}
/// fast-reid `DEPTH` "50x" + `WITH_IBN` -> our backbone name.
fn fastreid_arch(v: &[Value]) -> Value {
    let depth = v[0].as_str().unwrap().trim_end_matches('x');
    let ibn = if v[1].as_bool().unwrap() {
        "_ibn_a"
    } else {
        ""
    };
    json!(format!("resnet{depth}{ibn}"))
}
/// Epochs in LUPerson's fast-reid fork (its trainer multiplies by the
/// iterations per epoch) -> iterations on Market-1501 (12,936 // 64 = 202).
fn epochs_to_market_iters(v: &[Value]) -> Value {
    json!(v[0].as_u64().unwrap() * (12_936 / 64))
}
fn sched_kind(v: &[Value]) -> Value {
    json!(match v[0].as_str().unwrap() {
        "WarmupMultiStepLR" => "multi_step",
        "WarmupCosineAnnealingLR" => "cosine",
        other => other,
    })
}
/// 0-255 pixel statistics -> 0-1, to our 4 decimals.
fn per_255(v: &[Value]) -> Value {
    json!(
        v[0].as_array()
            .unwrap()
            .iter()
            .map(|x| (x.as_f64().unwrap() / 255.0 * 1e4).round() / 1e4)
            .collect::<Vec<_>>()
    )
}

fn same(field: &'static str, up: &'static [&'static str], conv: Conv) -> Row {
    Row {
        ours: Ours::Field(field),
        up,
        conv,
        differs: None,
        note: "",
    }
}
fn differs(field: &'static str, up: &'static [&'static str], conv: Conv, why: &'static str) -> Row {
    Row {
        ours: Ours::Field(field),
        up,
        conv,
        differs: Some(why),
        note: "",
    }
}
fn ours_only(field: &'static str, why: &'static str) -> Row {
    Row {
        ours: Ours::Field(field),
        up: &[],
        conv: id,
        differs: None,
        note: why,
    }
}
fn fixed(up: &'static [&'static str], ours: Value, conv: Conv, why: &'static str) -> Row {
    Row {
        ours: Ours::Const(ours),
        up,
        conv,
        differs: None,
        note: why,
    }
}
fn fixed_differs(up: &'static [&'static str], ours: Value, conv: Conv, why: &'static str) -> Row {
    Row {
        ours: Ours::Const(ours),
        up,
        conv,
        differs: Some(why),
        note: "",
    }
}

const SEED: &str = "upstream leaves the run unseeded (argparse default None); ours is seeded for reproducible runs";
const AMP: &str =
    "upstream trains with AMP; ours keeps precision a run option (--precision f16), f32 by default";

fn moco_rows() -> Vec<Row> {
    vec![
        same("arch", &["arch"], id),
        ours_only(
            "base_width",
            "torchvision's ResNet50 stem width; no upstream setting",
        ),
        ours_only(
            "last_stride",
            "upstream uses torchvision's resnet50 as is (stride 2); no setting",
        ),
        same(
            "size",
            &["get_lup_transformer.height", "get_lup_transformer.width"],
            pair,
        ),
        same("batch_size", &["batch_size"], id),
        same("bn_groups", &["gpus"], id),
        same("epochs", &["epochs"], id),
        ours_only(
            "max_steps_per_epoch",
            "a cap for short runs; None = upstream's full epoch",
        ),
        same("lr", &["lr"], id),
        same("cosine", &["cos"], int_to_bool),
        same("momentum", &["momentum"], id),
        same("weight_decay", &["weight_decay"], id),
        ours_only(
            "mlp_hidden_dim",
            "upstream takes the trunk's width (2048 for ResNet50); no setting",
        ),
        same("dim", &["moco_dim"], id),
        same("queue_size", &["moco_k"], id),
        same("key_momentum", &["moco_m"], id),
        same("temperature", &["T"], id),
        ours_only(
            "grayscale_p",
            "upstream's view has RandomGrayscale(p=0.2) written in, no flag; ours defaults to 0.2",
        ),
        ours_only(
            "blur_p",
            "upstream's view has its Gaussian blur at p=0.5 written in, no flag; ours defaults to 0.5",
        ),
        differs("seed", &["seed"], id, SEED),
        fixed(
            &["optimizer"],
            json!("SGD"),
            id,
            "our MoCo is SGD (no LARS)",
        ),
        fixed(&["warmup_epochs"], json!(0), id, "no warm-up in ours"),
        fixed(
            &["mlp"],
            json!(1),
            id,
            "our MoCo always has the MLP projection",
        ),
        fixed(
            &["schedule"],
            json!("60,80"),
            id,
            "read only with --cos 0; the script runs the cosine",
        ),
        fixed(
            &["aug_type"],
            json!("ori-cj+sre"),
            id,
            "our MoCo view is this pipeline",
        ),
        fixed(
            &["mean_type"],
            json!("lup"),
            id,
            "reid_data::normalize::LUPERSON",
        ),
        fixed_differs(&["mix"], json!(0), id, AMP),
    ]
}

fn pnl_rows() -> Vec<Row> {
    vec![
        same("arch", &["arch"], id),
        ours_only(
            "base_width",
            "torchvision's ResNet50 stem width; no upstream setting",
        ),
        ours_only(
            "last_stride",
            "upstream uses torchvision's resnet50 as is (stride 2); no setting",
        ),
        same(
            "size",
            &[
                "get_reid_train_transformer.height",
                "get_reid_train_transformer.width",
            ],
            pair,
        ),
        same(
            "size",
            &["get_lup_transformer.height", "get_lup_transformer.width"],
            pair,
        ),
        same("batch_size", &["batch_size"], id),
        same("bn_groups", &["gpus"], id),
        same("epochs", &["epochs"], id),
        ours_only(
            "max_steps_per_epoch",
            "a cap for short runs; None = upstream's full epoch",
        ),
        same("lr", &["lr"], id),
        same("lr_milestones", &["schedule"], csv_ints),
        same("lr_gamma", &["step_gamma"], id),
        same("momentum", &["momentum"], id),
        same("weight_decay", &["weight_decay"], id),
        same("cls_dim", &["cls_dim"], id),
        ours_only(
            "mlp_hidden_dim",
            "upstream takes the trunk's width (2048 for ResNet50); no setting",
        ),
        same("dim", &["moco_dim"], id),
        same("queue_size", &["moco_k"], id),
        same("key_momentum", &["moco_m"], id),
        same("proto_momentum", &["proto_m"], id),
        same("temperature", &["T"], id),
        same("alpha", &["alpha"], id),
        same("threshold", &["pseudo_th"], id),
        same("start_clean_epoch", &["start_clean_epoch"], id),
        same("start_supcont_epoch", &["start_supcont_epoch"], id),
        same("start_proto_epoch", &["first_proto_epoch"], id),
        differs("seed", &["seed"], id, SEED),
        fixed(&["optimizer"], json!("SGD"), id, "our PNL is SGD"),
        fixed(&["warmup_epochs"], json!(0), id, "no warm-up in ours"),
        fixed(&["cos"], json!(0), id, "our PNL has the step schedule only"),
        fixed(&["w_inst"], json!(1), id, "loss weights are 1 in ours"),
        fixed(&["w_proto"], json!(1), id, "loss weights are 1 in ours"),
        fixed(
            &["aug_type"],
            json!("ori-cj+sre"),
            id,
            "our strong view is this pipeline",
        ),
        fixed(
            &["mean_type"],
            json!("lmdb_200_20"),
            id,
            "reid_data::normalize::LUPERSON_NL",
        ),
        fixed_differs(&["mix"], json!(0), id, AMP),
    ]
}

fn cion_rows() -> Vec<Row> {
    vec![
        same("arch", &["arch"], cion_arch),
        ours_only(
            "base_width",
            "the published ResNets' stem width; no upstream setting",
        ),
        ours_only(
            "last_stride",
            "hard-coded stride 1 in CION's ResNet(-IBN) layer4; no setting",
        ),
        same("global_size", &["image_size"], id),
        same("local_size", &["crop_size"], id),
        same("local_crops", &["local_crops_number"], id),
        same("global_crops_scale", &["global_crops_scale"], id),
        same("local_crops_scale", &["local_crops_scale"], id),
        differs(
            "batch_size",
            &["batch_size_per_gpu", "nproc_per_node"],
            product,
            "ours is the whole step, defaulting to one GPU's share (120); upstream's step is 120 per GPU x 8 = 960 (--set batch_size=960)",
        ),
        same("k_schedule.epochs", &["gradual_epochs"], id),
        same("k_schedule.instances", &["gradual_instances"], id),
        same("epochs", &["epochs"], id),
        ours_only(
            "max_steps_per_epoch",
            "a cap for short runs; None = upstream's full epoch",
        ),
        same("lr", &["lr"], id),
        same("min_lr", &["min_lr"], id),
        same("warmup_epochs", &["warmup_epochs"], id),
        same("weight_decay", &["weight_decay"], id),
        same("weight_decay_end", &["weight_decay_end"], id),
        same("momentum_teacher", &["momentum_teacher"], id),
        same("clip_grad", &["clip_grad"], id),
        ours_only(
            "clip_scaled_gradients",
            "CION's (true, default) or DINO's clipping under f16; no setting upstream",
        ),
        same("freeze_last_layer", &["freeze_last_layer"], id),
        same("head_hidden_dim", &["head.hidden_dim"], id),
        same("head_bottleneck_dim", &["head.bottleneck_dim"], id),
        same("out_dim", &["output_dim"], id),
        same("use_bn_in_head", &["use_bn_in_head"], id),
        same("student_temp", &["loss.student_temp"], id),
        same("teacher_temp", &["teacher_temp"], id),
        same("teacher_temp", &["loss.teacher_temp"], id),
        same("warmup_teacher_temp", &["warmup_teacher_temp"], id),
        same(
            "warmup_teacher_temp_epochs",
            &["warmup_teacher_temp_epochs"],
            id,
        ),
        same("center_momentum", &["loss.center_momentum"], id),
        ours_only(
            "teacher_drop_path",
            "true = CION's teacher in train mode; false = DINO; no setting upstream",
        ),
        ours_only(
            "sinkhorn_iterations",
            "not in CION (0 = its centering); an option for small batches",
        ),
        same("seed", &["seed"], id),
        fixed(&["optimizer"], json!("adamw"), id, "our CION is AdamW"),
        fixed(
            &["norm_last_layer"],
            json!(true),
            id,
            "our head's last layer is weight-normalised, g fixed",
        ),
        fixed(&["head.nlayers"], json!(3), id, "our head has 3 layers"),
        fixed_differs(&["use_fp16"], json!(false), id, AMP),
    ]
}

const DEPTH_IBN: &[&str] = &["MODEL.BACKBONE.DEPTH", "MODEL.BACKBONE.WITH_IBN"];

/// The rows BoT and MGN share: fields both recipes take from fast-reid's
/// `MODEL`, `INPUT`, `DATALOADER` and `SOLVER` sections the same way.
fn fastreid_common_rows() -> Vec<Row> {
    vec![
        same("arch", DEPTH_IBN, fastreid_arch),
        ours_only(
            "base_width",
            "the published ResNets' stem width; no upstream setting",
        ),
        same("height", &["INPUT.SIZE_TRAIN"], first),
        same("width", &["INPUT.SIZE_TRAIN"], second),
        same(
            "p",
            &["SOLVER.IMS_PER_BATCH", "DATALOADER.NUM_INSTANCE"],
            quotient,
        ),
        same("k", &["DATALOADER.NUM_INSTANCE"], id),
        same("epochs", &["SOLVER.MAX_ITER"], id),
        ours_only("iters_per_epoch", "None = fast-reid's len(train) // batch"),
        same("lr", &["SOLVER.BASE_LR"], id),
        same("weight_decay", &["SOLVER.WEIGHT_DECAY"], id),
    ]
}

fn bot_rows() -> Vec<Row> {
    let mut rows = fastreid_common_rows();
    rows.extend([
        same("last_stride", &["MODEL.BACKBONE.LAST_STRIDE"], id),
        same("weight_decay", &["SOLVER.WEIGHT_DECAY_BIAS"], id),
        differs(
            "warmup.iters",
            &["SOLVER.WARMUP_ITERS"],
            epochs_to_market_iters,
            "ours is fast-reid v1's Base-bagtricks (2,000 iterations); the fork says 10 epochs (2,020 iterations on Market-1501)",
        ),
        differs(
            "warmup.factor",
            &["SOLVER.WARMUP_FACTOR"],
            id,
            "ours is fast-reid v1's Base-bagtricks (0.1); the fork's is 0.01",
        ),
        same("decay.kind", &["SOLVER.SCHED"], sched_kind),
        same("decay.milestones", &["SOLVER.STEPS"], id),
        same("decay.gamma", &["SOLVER.GAMMA"], id),
        same("ce_epsilon", &["MODEL.LOSSES.CE.EPSILON"], id),
        same("triplet_margin", &["MODEL.LOSSES.TRI.MARGIN"], id),
        ours_only("seed", "the fork's config has no seed"),
        same("eval_every", &["TEST.EVAL_PERIOD"], id),
        fixed(
            &["MODEL.HEADS.NECK_FEAT"],
            json!("before"),
            id,
            "BNNeck, pre-BN feature to the triplet",
        ),
        fixed(
            &["MODEL.HEADS.POOL_LAYER"],
            json!("avgpool"),
            id,
            "BoT pools by average",
        ),
        fixed(
            &["MODEL.HEADS.CLS_LAYER"],
            json!("linear"),
            id,
            "BoT classifier",
        ),
        fixed(
            &["MODEL.LOSSES.TRI.HARD_MINING"],
            json!(true),
            id,
            "batch-hard triplet",
        ),
        fixed(&["SOLVER.OPT"], json!("Adam"), id, "our BoT is Adam"),
        fixed_differs(
            &["SOLVER.BIAS_LR_FACTOR"],
            json!(1.0),
            id,
            "ours trains biases at the base rate (fast-reid v1); the fork's Base-bagtricks doubles it",
        ),
    ]);
    rows
}

fn mgn_rows() -> Vec<Row> {
    let mut rows = fastreid_common_rows();
    rows.extend([
        same("extra_bn", &["MODEL.BACKBONE.EXTRA_BN"], id),
        same("embedding_dim", &["MODEL.HEADS.EMBEDDING_DIM"], id),
        same("warmup_epochs", &["SOLVER.WARMUP_ITERS"], id),
        same("warmup_factor", &["SOLVER.WARMUP_FACTOR"], id),
        same("delay_epochs", &["SOLVER.DELAY_ITERS"], id),
        same("eta_min", &["SOLVER.ETA_MIN_LR"], id),
        same("freeze_epochs", &["SOLVER.FREEZE_ITERS"], id),
        same("ce_epsilon", &["MODEL.LOSSES.CE.EPSILON"], id),
        same(
            "ce_weight",
            &["MODEL.LOSSES.CE.SCALE", "mgn.ce_factor"],
            product,
        ),
        same(
            "triplet_weight",
            &["MODEL.LOSSES.TRI.SCALE", "mgn.triplet_factor"],
            product,
        ),
        same("triplet_margin", &["MODEL.LOSSES.TRI.MARGIN"], id),
        ours_only("seed", "the fork's config has no seed"),
        fixed(&["MODEL.META_ARCHITECTURE"], json!("MGN"), id, "the recipe"),
        fixed(
            &["MODEL.BACKBONE.WITH_NL"],
            json!(false),
            id,
            "no non-local blocks",
        ),
        fixed(
            &["MODEL.BACKBONE.LAST_STRIDE"],
            json!(1),
            id,
            "MGN's trunk has last stride 1",
        ),
        fixed(
            &["MODEL.FREEZE_LAYERS"],
            json!(["backbone", "b1", "b2", "b3"]),
            id,
            "frozen during freeze_epochs",
        ),
        fixed(
            &["MODEL.HEADS.NECK_FEAT"],
            json!("after"),
            id,
            "post-BN feature to the triplet",
        ),
        fixed(
            &["MODEL.HEADS.POOL_LAYER"],
            json!("gempoolP"),
            id,
            "GeM with learnable p",
        ),
        fixed(
            &["MODEL.HEADS.CLS_LAYER"],
            json!("circleSoftmax"),
            id,
            "circle classifier",
        ),
        fixed(&["MODEL.HEADS.SCALE"], json!(64), id, "circle scale"),
        fixed(&["MODEL.HEADS.MARGIN"], json!(0.35), id, "circle margin"),
        fixed(
            &["MODEL.LOSSES.TRI.HARD_MINING"],
            json!(true),
            id,
            "batch-hard triplet",
        ),
        fixed(&["INPUT.DO_AUTOAUG"], json!(false), id, "no AutoAugment"),
        fixed(&["SOLVER.OPT"], json!("Adam"), id, "our MGN is Adam"),
        fixed(
            &["SOLVER.BIAS_LR_FACTOR"],
            json!(1.0),
            id,
            "biases at the base rate",
        ),
        fixed(
            &["SOLVER.SCHED"],
            json!("WarmupCosineAnnealingLR"),
            id,
            "warm-up, delay, cosine",
        ),
        fixed(
            &["TEST.EVAL_PERIOD"],
            json!(60),
            id,
            "evaluation at the end only, as our MGN default",
        ),
        fixed(
            &["MODEL.PIXEL_MEAN"],
            lup_stat(reid::data::normalize::LUPERSON.mean),
            per_255,
            "LUPerson mean",
        ),
        fixed_differs(
            &["MODEL.PIXEL_STD"],
            lup_stat(reid::data::normalize::LUPERSON.std),
            per_255,
            "ours normalises with the pre-training's LUPerson std; the config's differs (first channel 0.2505 vs 0.2660)",
        ),
    ]);
    rows
}

fn lup_stat(v: [f32; 3]) -> Value {
    json!(
        v.iter()
            .map(|x| (f64::from(*x) * 1e4).round() / 1e4)
            .collect::<Vec<_>>()
    )
}

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b))
        }
        _ => a == b,
    }
}

fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, x, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |node, part| node.get(part))
}

/// Checks one recipe; returns (fields compared, listed differences, errors).
fn check_recipe(
    name: &str,
    ours: &Value,
    upstream: &Value,
    rows: &[Row],
) -> (usize, usize, Vec<String>) {
    let values = &upstream["recipes"][name]["values"];
    let mut errors = Vec::new();
    let (mut compared, mut listed) = (0, 0);
    for row in rows {
        let our = match &row.ours {
            Ours::Field(f) => match lookup(ours, f) {
                Some(v) => v.clone(),
                None => {
                    errors.push(format!("{name}: our recipe has no field `{f}`"));
                    continue;
                }
            },
            Ours::Const(v) => v.clone(),
        };
        if row.up.is_empty() {
            continue;
        }
        let ups: Option<Vec<Value>> = row
            .up
            .iter()
            .map(|k| values.get(*k).map(|e| e["value"].clone()))
            .collect();
        let Some(ups) = ups else {
            errors.push(format!("{name}: the fixture lacks one of {:?}", row.up));
            continue;
        };
        let theirs = (row.conv)(&ups);
        compared += 1;
        let what = match &row.ours {
            Ours::Field(f) => format!("`{f}`"),
            Ours::Const(_) => "our hard-coded value".to_string(),
        };
        match (close(&our, &theirs), row.differs) {
            (false, None) => errors.push(format!(
                "{name}: unlisted difference: {what} = {our} but upstream {:?} gives {theirs}",
                row.up
            )),
            (true, Some(why)) => errors.push(format!(
                "{name}: listed difference no longer exists: {what} = {our} = upstream {:?} ({why})",
                row.up
            )),
            (false, Some(_)) => listed += 1,
            (true, None) => {}
        }
    }
    // Every field of ours and every upstream key is covered by a row.
    let mut fields = Vec::new();
    leaves("", ours, &mut fields);
    for f in fields {
        let covered = rows
            .iter()
            .any(|r| matches!(&r.ours, Ours::Field(x) if *x == f));
        if !covered {
            errors.push(format!("{name}: our field `{f}` has no row in the mapping"));
        }
    }
    for key in values.as_object().expect("fixture values").keys() {
        if !rows.iter().any(|r| r.up.contains(&key.as_str())) {
            errors.push(format!(
                "{name}: upstream `{key}` has no row in the mapping"
            ));
        }
    }
    (compared, listed, errors)
}

#[test]
fn full_size_recipes_match_upstream_or_list_why() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upstream_configs.json");
    let upstream: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (recipe, repo) in [
        ("moco", "DengpanFu/LUPerson"),
        ("pnl", "DengpanFu/LUPerson-NL"),
        ("cion", "Zplusdragon/CION_ReIDZoo"),
        ("bot", "DengpanFu/LUPerson"),
        ("mgn", "DengpanFu/LUPerson"),
    ] {
        let src = &upstream["recipes"][recipe]["source"];
        assert_eq!(src["repo"], repo);
        let commit = src["commit"].as_str().unwrap();
        assert!(commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()));
    }
    // LUPerson-NL's fast-reid README runs the same MGN config, byte for byte.
    assert_eq!(
        upstream["recipes"]["mgn"]["source"]["same_in"]["identical"],
        true
    );

    let to = |v: Result<Value, serde_json::Error>| v.unwrap();
    let recipes = [
        (
            "moco",
            to(serde_json::to_value(read::<MocoConfig>("moco.toml"))),
            moco_rows(),
        ),
        (
            "pnl",
            to(serde_json::to_value(read::<PnlConfig>("pnl.toml"))),
            pnl_rows(),
        ),
        (
            "cion",
            to(serde_json::to_value(read::<CionConfig>("cion.toml"))),
            cion_rows(),
        ),
        (
            "bot",
            to(serde_json::to_value(read::<FinetuneConfig>("bot.toml"))),
            bot_rows(),
        ),
        (
            "mgn",
            to(serde_json::to_value(read::<MgnFinetuneConfig>("mgn.toml"))),
            mgn_rows(),
        ),
    ];
    let mut errors = Vec::new();
    for (name, ours, rows) in &recipes {
        let (compared, listed, e) = check_recipe(name, ours, &upstream, rows);
        println!("{name}: {compared} comparisons, {listed} listed differences");
        errors.extend(e);
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}
