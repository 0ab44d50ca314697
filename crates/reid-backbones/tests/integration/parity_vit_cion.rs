//! A ViT fine-tuned by CION's TransReID code, as CION's test code computes
//! its feature: CION's `make_model.build_model` hands the backbone yacs'
//! *list* `INPUT.SIZE_TRAIN`, and CION's `Vision_Transformer.py` resizes its
//! position embedding whenever `self.img_size != (h, w)` — always, for a
//! list — so the fine-tuned model interpolates `pos_embed` (DINO's scale
//! factors) even at its own input size. `load_vit` selects
//! [`PosEmbedInterpolation::DinoScaleFactorAlways`] for TransReID files.
//!
//! Fixtures: `tools/fixtures/gen_cion_vit_fixtures.py --cion PATH`
//! (`tests/fixtures/backbones/vit_cion/`), built with CION's own
//! pre-training and fine-tuning code. Besides the fine-tuned file, a CION
//! pre-training checkpoint (`cion_pretrain.pth`: teacher dictionary with
//! `module.backbone.` keys, DINO head, pickled `args`) of CION's
//! pre-training `TransReID_ViT` (CION_ReIDZoo 7ac6fd7,
//! `CION_Pretrain/models/Vision_Transformer.py`) with its ICS stem narrowed
//! in memory from 64 to 8 channels (line 248, `hidden_dim=64`; see the
//! generator), read as `extract --arch vit_small --weights FILE` reads it.
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|`.

use reid_backbones::Embed;
use reid_backbones::import::{ImportOptions, Layout, WeightsFormat, load_vit};
use reid_backbones::zoo::{ZooModel, ZooNet, zoo_entry};
use reid_backbones::{PosEmbedInterpolation, ViT, ViTConfig};

use crate::common;

use common::family::assert_ignored;
use common::{assert_close, tensor_err, tensor4, uint, usizes};

fixture_fns!("vit_cion");

fn config() -> ViTConfig {
    let m = manifest();
    let img = usizes(&m["img_size"]);
    let n = |k: &str| uint(&m[k]);
    ViTConfig::new()
        .with_embed_dim(n("embed_dim"))
        .with_depth(n("depth"))
        .with_num_heads(n("num_heads"))
        .with_stem_hidden(n("stem_hidden"))
        .with_img_size([img[0], img[1]])
}

fn feature_error(m: &ViT, input: &str, reference: &str) -> f32 {
    let x = tensor4(&npy(input), &common::device());
    tensor_err(m.forward_embedding(x).unwrap(), &npy(reference), reference)
}

#[test]
fn transreid_checkpoint_resizes_pos_embed_as_cions_fine_tuned_model() {
    let device = common::device();
    let mut m = config().init(&device).unwrap();
    assert_eq!(
        m.pos_interpolation(),
        PosEmbedInterpolation::DinoScaleFactor
    );
    let report = load_vit(
        &mut m,
        dir().join("transreid.pth"),
        &ImportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    println!("{report}");
    assert_eq!(report.layout, Layout::TransReid);
    assert_eq!(
        m.pos_interpolation(),
        PosEmbedInterpolation::DinoScaleFactorAlways
    );
    assert_ignored(&report, &["classifier.weight", "bottleneck.running_var"]);
    let at_size = feature_error(&m, "input.npy", "feat.npy");
    let larger = feature_error(&m, "input_large.npy", "feat_large.npy");
    println!(
        "CION fine-tuned ViT (TransReID file): feature rel. error {at_size:.3e} at 64x32, \
         {larger:.3e} at 96x48"
    );
    assert!(at_size <= 1e-4 && larger <= 1e-4, "{at_size} {larger}");

    // The quirk matters: with the pre-training rule (no resize at the
    // trained size) the feature is the tuple model's, not CION's.
    m.set_pos_interpolation(PosEmbedInterpolation::DinoScaleFactor);
    let tuple = feature_error(&m, "input.npy", "feat_tuple.npy");
    let off = feature_error(&m, "input.npy", "feat.npy");
    println!("pre-training rule: {tuple:.3e} against the tuple model, {off:.3e} against CION's");
    assert!(tuple <= 1e-4, "{tuple}");
    assert!(off > 1e-3, "{off}");
    // Larger inputs are resized by both rules alike.
    assert!(feature_error(&m, "input_large.npy", "feat_large.npy") <= 1e-4);
}

/// A model set to plain size-based resizing keeps its rule: the switch only
/// replaces the pre-training DINO rule.
#[test]
fn an_explicit_size_rule_is_kept() {
    let device = common::device();
    let mut m = config()
        .with_pos_interpolation(PosEmbedInterpolation::Size)
        .init(&device)
        .unwrap();
    load_vit(
        &mut m,
        dir().join("transreid.pth"),
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(m.pos_interpolation(), PosEmbedInterpolation::Size);
}

/// The reduced network of the pre-training fixture (its narrowed stem).
fn pretrain_config() -> ViTConfig {
    let stem = uint(&manifest()["pretrain"]["stem_hidden"]);
    config().with_stem_hidden(stem)
}

/// A CION pre-training checkpoint, read by `load_vit` (auto-detected and
/// `WeightsFormat::Cion`) and by the zoo path of `extract --arch vit_small`:
/// the teacher's `module.backbone.` prefix cut, the DINO head and the other
/// entries set aside, the pickled `args` skipped, and CION's pre-training
/// position rule kept (no resize at the trained size).
#[test]
fn cion_pretraining_checkpoint_matches_cions_vit() {
    let device = common::device();
    let p = &manifest()["pretrain"];
    let file = dir().join(p["file"].as_str().unwrap());
    let s = |k: &str| p[k].as_str().unwrap();
    for format in [WeightsFormat::Auto, WeightsFormat::Cion] {
        let mut m = pretrain_config().init(&device).unwrap();
        assert_eq!(
            m.num_weights() as u64,
            p["num_params_backbone"].as_u64().unwrap(),
            "parameter count of CION's module"
        );
        let options = ImportOptions::default().with_format(format);
        let report = load_vit(&mut m, &file, &options).unwrap_or_else(|e| panic!("{e}"));
        println!("{report}");
        assert_eq!(report.layout, Layout::Cion, "{report}");
        assert_ignored(&report, &["teacher.module.head.last_layer.weight_v"]);
        assert_eq!(
            m.pos_interpolation(),
            PosEmbedInterpolation::DinoScaleFactor
        );
        let at_size = feature_error(&m, s("input"), s("embedding"));
        let larger = feature_error(&m, s("input_large"), s("embedding_large"));
        println!(
            "CION pre-training ViT ({format:?}): CLS feature rel. error {at_size:.3e} at 64x32, \
             {larger:.3e} at 96x48"
        );
        assert!(at_size <= 1e-4 && larger <= 1e-4, "{at_size} {larger}");
    }

    // The zoo path (`ZooModel::load`, `into_inference`, `embed`), with the
    // reduced network under the `vit_small` entry.
    let mut zoo = ZooModel {
        entry: zoo_entry("vit_small").unwrap(),
        net: ZooNet::ViT(pretrain_config().init(&device).unwrap()),
    };
    let report = zoo
        .load(&file, &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let text = report.to_string();
    assert!(text.contains("CION teacher DINO head"), "{text}");
    let x = tensor4(&npy(s("input")), &device);
    let emb = zoo.into_inference().embed(x).unwrap();
    assert_close(emb, &npy(s("embedding")), "CION pre-training ViT, zoo path");
}
