//! A ViT fine-tuned by CION's TransReID code, as CION's test code computes
//! its feature: CION's `make_model.build_model` hands the backbone yacs'
//! *list* `INPUT.SIZE_TRAIN`, and CION's `Vision_Transformer.py` resizes its
//! position embedding whenever `self.img_size != (h, w)` — always, for a
//! list — so the fine-tuned model interpolates `pos_embed` (DINO's scale
//! factors) even at its own input size. `load_vit` selects
//! [`PosEmbedInterpolation::DinoScaleFactorAlways`] for TransReID files.
//!
//! Fixtures: `tools/gen_cion_vit_fixtures.py --cion PATH`
//! (`tests/fixtures/backbones/vit_cion/`), built with CION's own
//! pre-training and fine-tuning code. Tolerance: `max |ours − torch| ≤
//! 1e-4 · max |torch|`.

use reid_backbones::import::{ImportOptions, Layout, load_vit};
use reid_backbones::{PosEmbedInterpolation, ViT, ViTConfig};

mod common;

use common::{rel_err, tensor4};

fixture_fns!("vit_cion");

fn config() -> ViTConfig {
    let m = manifest();
    let img: Vec<usize> = m["img_size"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let n = |k: &str| m[k].as_u64().unwrap() as usize;
    ViTConfig::new()
        .with_embed_dim(n("embed_dim"))
        .with_depth(n("depth"))
        .with_num_heads(n("num_heads"))
        .with_stem_hidden(n("stem_hidden"))
        .with_img_size([img[0], img[1]])
}

fn feature_error(m: &ViT, input: &str, reference: &str) -> f32 {
    let x = tensor4(&npy(input), &common::device());
    let e = m.forward_embedding(x).unwrap();
    let shape = e.dims().to_vec();
    rel_err(
        e.into_data().try_to_vec::<f32>().unwrap(),
        &shape,
        &npy(reference),
        reference,
    )
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
    let ignored: Vec<&String> = report.ignored.iter().flat_map(|g| &g.keys).collect();
    for want in ["classifier.weight", "bottleneck.running_var"] {
        assert!(ignored.contains(&&want.to_string()), "{want}: {report}");
    }
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
