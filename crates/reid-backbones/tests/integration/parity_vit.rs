//! Numerical parity of the ICS ViT with PyTorch (timm `Block` + our ICS
//! patch embedding), bicubic position-embedding resizing, and strict
//! checkpoint import, on the fixtures of `tools/fixtures/gen_vit_fixtures.py`
//! (`tests/fixtures/backbones/vit/`).
//!
//! Tolerance: `max |ours − torch| ≤ 1e-4 · max |torch|` over each output.

use burn::tensor::{Device, Tensor, TensorData};
use reid_backbones::import::{
    Container, ImportOptions, ImportReport, Layout, WeightsFormat, load_vit,
};
use reid_backbones::vit::{resize_patch_pos_embed, resize_patch_pos_embed_bilinear, source_scales};
use reid_backbones::{Backbone, BackboneError, PosEmbedInterpolation, ViT, ViTConfig};

use crate::common::family::{self, FamilyFixture, mismatch_of};
use crate::common::{assert_close, uint, usizes};

family_fixture! {
    Fx = "vit", ViT = |d: &Device| config().init(d).unwrap(), ImportReport = load_vit,
    embedding: |m: &ViT, x| m.forward_embedding(x).unwrap(),
    check: |m: &ViT, _: &str| check_case(m, "main"),
}

/// The generator's input: `f32(1.5 sin(0.731 n + 0.3) + 0.2 cos(0.1137 n))`.
fn formula_input(shape: &[usize], device: &Device) -> Tensor<4> {
    let len: usize = shape.iter().product();
    let data: Vec<f32> = (0..len)
        .map(|n| {
            let n = n as f64;
            (1.5 * (0.731 * n + 0.3).sin() + 0.2 * (0.1137 * n).cos()) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(data, shape.to_vec()), device)
}

fn mode(name: &str) -> PosEmbedInterpolation {
    match name {
        "size" => PosEmbedInterpolation::Size,
        _ => PosEmbedInterpolation::DinoScaleFactor,
    }
}

fn config() -> ViTConfig {
    let c = &Fx::manifest()["config"];
    let img = usizes(&c["img_size"]);
    ViTConfig::new()
        .with_embed_dim(uint(&c["embed_dim"]))
        .with_depth(uint(&c["depth"]))
        .with_num_heads(uint(&c["num_heads"]))
        .with_stem_hidden(uint(&c["stem_hidden"]))
        .with_patch_size(uint(&c["patch_size"]))
        .with_img_size([img[0], img[1]])
}

fn loaded(file: &str, options: &ImportOptions, interp: PosEmbedInterpolation) -> ViT {
    let device = crate::common::device();
    let mut m = config()
        .with_pos_interpolation(interp)
        .init(&device)
        .unwrap();
    Fx::import_file(&mut m, file, options).unwrap_or_else(|e| panic!("{file}: {e}"));
    m
}

/// The embedding and the feature map of `m` on the formula input of
/// `shape` against the fixture files `embedding` and `features`, each
/// within 1e-4; returns the larger relative error.
fn check_outputs(m: &ViT, shape: &[usize], embedding: &str, features: &str, what: &str) -> f32 {
    let x = formula_input(shape, &crate::common::device());
    let emb = m.forward_embedding(x.clone()).unwrap();
    let e1 = assert_close(emb, &Fx::npy(embedding), &format!("{what} embedding"));
    let feat = m.forward_features(x);
    let e2 = assert_close(feat, &Fx::npy(features), &format!("{what} features"));
    e1.max(e2)
}

/// The forward check of manifest case `case` (see [`check_outputs`]).
fn check_case(m: &ViT, case: &str) -> f32 {
    let c = &Fx::manifest()["cases"][case];
    let (emb, feat) = (
        c["embedding"].as_str().unwrap(),
        c["features"].as_str().unwrap(),
    );
    check_outputs(m, &usizes(&c["input_shape"]), emb, feat, case)
}

#[test]
fn every_case_matches_pytorch() {
    let cases = Fx::manifest()["cases"].as_object().unwrap().clone();
    assert_eq!(cases.len(), 6);
    let mut worst = 0f32;
    for (name, c) in cases {
        let interp = mode(c["mode"].as_str().unwrap());
        let m = loaded("vit.pth", &ImportOptions::default(), interp);
        let err = check_case(&m, &name);
        eprintln!("{name}: max relative error {err:e}");
        worst = worst.max(err);
    }
    eprintln!("worst relative error {worst:e}");
}

/// The fixture model loaded with `interp`, its patch position embedding
/// (`[grid h · w, dim]`), and the `count` resize cases of manifest entry
/// `cases` (file → case).
fn pos_embed_cases(
    interp: PosEmbedInterpolation,
    cases: &str,
    count: usize,
) -> (ViT, Tensor<2>, serde_json::Map<String, serde_json::Value>) {
    let m = loaded("vit.pth", &ImportOptions::default(), interp);
    let n = m.grid[0] * m.grid[1];
    let patch = m.pos_embed.val().narrow(1, 1, n).reshape([n, m.embed_dim]);
    let entries = Fx::manifest()[cases].as_object().unwrap().clone();
    assert_eq!(entries.len(), count);
    (m, patch, entries)
}

#[test]
fn bicubic_pos_embed_resize_matches_pytorch() {
    let device = crate::common::device();
    let (m, patch, entries) = pos_embed_cases(PosEmbedInterpolation::Size, "pos_embed", 4);
    for (file, e) in entries {
        let g = usizes(&e["grid"]);
        let to = [g[0], g[1]];
        let scales = source_scales(m.grid, to, mode(e["mode"].as_str().unwrap()));
        let r = resize_patch_pos_embed(patch.clone().to_device(&device), m.grid, to, scales);
        assert_close(r, &Fx::npy(&file), &file);
    }
}

/// Every layout's file loads the same weights (49 tensors) and matches the
/// main case; the timm file's classifier is unexpected unless allowed.
#[test]
fn checkpoint_layouts_load_the_same_weights() {
    let cases = [
        ("vit_cion.pth", Layout::Cion, Container::Pytorch),
        ("vit_transreid.pth", Layout::TransReid, Container::Pytorch),
        (
            "vit_timm.safetensors",
            Layout::Torchvision,
            Container::Safetensors,
        ),
        ("vit.pth", Layout::Torchvision, Container::Pytorch),
    ];
    for (file, layout, container) in cases {
        let (mut m, report) = if container == Container::Safetensors {
            let classifier = ["head.bias", "head.weight"];
            let layout = "torchvision (ViT)";
            family::classifier_is_unexpected_unless_allowed::<Fx>(
                file,
                layout,
                &classifier,
                "head.*",
            )
        } else {
            Fx::load(file, &ImportOptions::default())
        };
        assert_eq!(report.layout, layout, "{file}");
        assert_eq!(report.container, container, "{file}");
        // 2 blocks × 12 + stem 3 convs + 2 IBN (IN 2 + BN 4) + BN 4 + proj 2
        // + cls, pos, norm 2 = 24 + 3 + 12 + 4 + 2 + 4.
        assert_eq!(report.applied, 49, "{file}: {report}");
        match layout {
            Layout::Cion => family::assert_ignored(
                &report,
                &[
                    "teacher.module.head.last_layer.weight_v",
                    "student.module.backbone.cls_token",
                ],
            ),
            Layout::TransReid => {
                family::assert_ignored(&report, &["classifier.weight", "bottleneck.running_mean"]);
                // CION's fine-tuned ViTs resize `pos_embed` at every size
                // (tests/integration/parity_vit_cion.rs); this fixture's reference is
                // the pre-training rule, so compare the weights under it.
                assert_eq!(
                    m.pos_interpolation(),
                    PosEmbedInterpolation::DinoScaleFactorAlways
                );
                m.set_pos_interpolation(PosEmbedInterpolation::DinoScaleFactor);
            }
            _ => {}
        }
        check_case(&m, "main");
    }
}

#[test]
fn forced_formats_and_mismatches_are_reported() {
    let device = crate::common::device();
    let defaults = ImportOptions::default();
    // Forcing the CION layout on a bare dict: no teacher.
    let mut m = Fx::model(&device);
    let forced = ImportOptions::default().with_format(WeightsFormat::Cion);
    assert!(matches!(
        Fx::import_file(&mut m, "vit.pth", &forced),
        Err(BackboneError::Layout { .. })
    ));
    let lup = ImportOptions::default().with_format(WeightsFormat::Lup);
    assert!(Fx::import_file(&mut m, "vit.pth", &lup).is_err());

    // A wider model: every tensor mis-shaped or missing, listed by PyTorch name.
    let mut wide = config().with_embed_dim(32).init(&device).unwrap();
    let km = Fx::mismatch(&mut wide, "vit.pth");
    let shaped = ["blocks.0.attn.qkv.weight", "pos_embed"];
    family::assert_wrong_architecture(&km, "torchvision (ViT)", &[], &shaped);
    let qkv = (
        String::from("blocks.0.attn.qkv.weight"),
        vec![96, 32],
        vec![48, 16],
    );
    assert!(km.mis_shaped.contains(&qkv), "{km}");

    // A deeper model: blocks.2.* missing; allowed, they stay initialised.
    let mut deep = config().with_depth(3).init(&device).unwrap();
    let km = Fx::mismatch(&mut deep, "vit.pth");
    let missing = ["blocks.2.attn.qkv.weight"];
    family::assert_wrong_architecture(&km, "torchvision (ViT)", &missing, &[]);
    assert_eq!(km.missing.len(), 12, "{km}");
    let report = family::load_allowing_missing::<Fx>(&mut deep, "vit.pth", "blocks.2.*");
    assert_eq!(report.allowed_missing.len(), 12);

    // A shallower model: blocks.1.* unexpected unless allowed.
    let mut shallow = config().with_depth(1).init(&device).unwrap();
    let km = mismatch_of(Fx::import_file(&mut shallow, "vit.pth", &defaults));
    assert!(km.unexpected.contains(&"blocks.1.mlp.fc1.bias".to_string()));
    let allow = ImportOptions::default().with_allow_unexpected(vec!["blocks.1.*".into()]);
    assert!(Fx::import_file(&mut shallow, "vit.pth", &allow).is_ok());
}

#[test]
fn full_size_parameter_counts_match_the_generator() {
    let device = crate::common::device();
    let counts = &Fx::manifest()["full_size_params"];
    for (name, cfg) in [
        ("vit_tiny", ViTConfig::tiny()),
        ("vit_small", ViTConfig::small()),
        ("vit_base", ViTConfig::base()),
    ] {
        let m = cfg.init(&device).unwrap();
        assert_eq!(
            m.num_weights() as u64,
            counts[name]["trunk"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            m.num_parameters() as u64,
            counts[name]["with_fc1000"].as_u64().unwrap(),
            "{name}"
        );
    }
}

#[test]
fn load_time_bilinear_resize_matches_the_finetuning_code() {
    let interp = PosEmbedInterpolation::DinoScaleFactor;
    let (m, patch, entries) = pos_embed_cases(interp, "pos_bilinear", 2);
    for (file, g) in entries {
        let g = usizes(&g);
        let r = resize_patch_pos_embed_bilinear(patch.clone(), m.grid, [g[0], g[1]]);
        assert_close(r, &Fx::npy(&file), &file);
    }

    // A model for 96×48 made from the 64×32 weights.
    let mut m = m;
    let r = &Fx::manifest()["resized_model"];
    let img = usizes(&r["img_size"]);
    m.resize_pos_embed([img[0], img[1]]).unwrap();
    assert_eq!(m.grid, [6, 3]);
    assert_eq!(m.pos_embed.dims(), [1, 19, 16]);
    let (emb, feat) = (
        r["embedding"].as_str().unwrap(),
        r["features"].as_str().unwrap(),
    );
    let err = check_outputs(&m, &usizes(&r["input_shape"]), emb, feat, "resized");
    eprintln!("resized model: max relative error {err:e}");
    assert!(m.resize_pos_embed([8, 8]).is_err());
}
