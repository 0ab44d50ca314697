//! The generic harness of the backbone family parity tests.
//!
//! A family module declares its [`FamilyFixture`] with [`family_fixture!`]:
//! its fixture folder (`tests/fixtures/backbones/<family>/`, written by
//! `tools/fixtures/gen_*_fixtures.py`), the fixture model built from the manifest,
//! its importer and the embedding its forward is compared on. The
//! functions below are the test bodies the families share, generic over
//! the fixture; [`family_tests!`] stamps the `#[test]` functions that are
//! nothing but one of them, so a family module keeps only what is its own.
//!
//! Tolerance of every numerical check: `max |ours − torch| ≤ 1e-4 ·
//! max |torch|` over each compared output ([`TOLERANCE`]).

use std::fmt::{Debug, Display};
use std::path::{Path, PathBuf};

use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Tensor};
use ndarray::ArrayD;
use reid_backbones::import::{
    CheckpointWrapper, FamilyImportReport, Ignored, ImportOptions, ImportReport, Layout,
    WeightsFormat,
};
use reid_backbones::{Backbone, BackboneError, KeyMismatch};
use serde_json::Value;

use super::{
    TOLERANCE, device, fixture_dir, fixture_manifest, fixture_npy, tensor_count, tensor_err,
    tensor4,
};

/// What the checks read of an import report: [`FamilyImportReport`] (the
/// family importers) and [`ImportReport`] (ResNet, ViT, Swin).
pub trait Report: Display {
    /// The report's layout type (`ConvNeXtLayout`, [`Layout`], `&str`, …).
    type Layout: PartialEq + Debug;
    /// The key naming the file was read as.
    fn layout(&self) -> &Self::Layout;
    /// Where the backbone keys were found; `None` where the report does
    /// not say ([`ImportReport`]).
    fn wrapper(&self) -> Option<CheckpointWrapper>;
    /// Model tensors written from the file.
    fn applied(&self) -> usize;
    /// File keys set aside by rule, with the reason.
    fn ignored(&self) -> &[Ignored];
    /// Unused file keys accepted through the allow-list.
    fn allowed_unexpected(&self) -> &[String];
    /// Model parameters left at their initialisation through the allow-list.
    fn allowed_missing(&self) -> &[String];
}

/// [`Report`] of a report type with the usual fields (`$wrapper`: what
/// [`Report::wrapper`] returns of `$r`, the report; `<$l>`: its layout
/// type parameter, if any).
macro_rules! impl_report {
    ($report:ty, $layout:ty, |$r:ident| $wrapper:expr $(, <$l:ident>)?) => {
        impl$(<$l: PartialEq + Debug + Display>)? Report for $report {
            type Layout = $layout;
            fn layout(&self) -> &$layout {
                &self.layout
            }
            fn wrapper(&self) -> Option<CheckpointWrapper> {
                let $r = self;
                $wrapper
            }
            fn applied(&self) -> usize {
                self.applied
            }
            fn ignored(&self) -> &[Ignored] {
                &self.ignored
            }
            fn allowed_unexpected(&self) -> &[String] {
                &self.allowed_unexpected
            }
            fn allowed_missing(&self) -> &[String] {
                &self.allowed_missing
            }
        }
    };
}

impl_report!(FamilyImportReport<L>, L, |r| Some(r.wrapper), <L>);
impl_report!(ImportReport, Layout, |_r| None);

/// Every key `report` set aside, whatever the reason.
pub fn ignored_keys(report: &impl Report) -> Vec<&str> {
    let groups = report.ignored().iter();
    groups.flat_map(|g| &g.keys).map(String::as_str).collect()
}

/// Each of `keys` is among the keys `report` set aside.
pub fn assert_ignored(report: &impl Report, keys: &[&str]) {
    let ignored = ignored_keys(report);
    for key in keys {
        assert!(ignored.contains(key), "{key} not set aside: {report}");
    }
}

/// Some key `report` set aside ends with `suffix`.
pub fn assert_ignored_suffix(report: &impl Report, suffix: &str) {
    let ignored = ignored_keys(report);
    let found = ignored.iter().any(|k| k.ends_with(suffix));
    assert!(found, "no *{suffix} set aside: {report}");
}

/// The key mismatch an import must fail with; panics when it loads or
/// fails otherwise.
pub fn mismatch_of<R: Display>(result: Result<R, BackboneError>) -> Box<KeyMismatch> {
    match result {
        Err(BackboneError::KeyMismatch(m)) => m,
        Err(other) => panic!("expected a key mismatch, got {other}"),
        Ok(report) => panic!("expected a key mismatch, loaded {report}"),
    }
}

/// A file with keys the model has no place for (a classifier): a mismatch
/// read as `layout`, exactly `unexpected` unused keys, and nothing missing
/// or mis-shaped.
pub fn assert_only_unexpected(mismatch: &KeyMismatch, layout: &str, unexpected: &[&str]) {
    assert_eq!(mismatch.layout, layout, "{mismatch}");
    assert_eq!(mismatch.unexpected, unexpected, "{mismatch}");
    let fits = mismatch.missing.is_empty() && mismatch.mis_shaped.is_empty();
    assert!(fits, "{mismatch}");
}

/// A file of another architecture: a mismatch read as `layout` that
/// names each of `missing` as missing and each of `mis_shaped` as
/// mis-shaped (PyTorch names), has no unexpected key, and whose message
/// lists the kinds it names.
pub fn assert_wrong_architecture(
    mismatch: &KeyMismatch,
    layout: &str,
    missing: &[&str],
    mis_shaped: &[&str],
) {
    assert_eq!(mismatch.layout, layout, "{mismatch}");
    let text = mismatch.to_string();
    for key in missing {
        let named = mismatch.missing.iter().any(|k| k == key);
        assert!(named, "{key} not missing: {mismatch}");
    }
    let shaped: Vec<&str> = mismatch.mis_shaped.iter().map(|m| m.0.as_str()).collect();
    for key in mis_shaped {
        assert!(shaped.contains(key), "{key} not mis-shaped: {mismatch}");
    }
    assert!(mismatch.unexpected.is_empty(), "{mismatch}");
    assert!(missing.is_empty() || text.contains("missing"), "{text}");
    assert!(
        mis_shaped.is_empty() || text.contains("mis-shaped"),
        "{text}"
    );
}

/// The layout type of `F`'s reports.
pub type LayoutOf<F> = <<F as FamilyFixture>::Report as Report>::Layout;

/// One family's fixtures and importer: what the generic tests need to know
/// of a family. Declare it with [`family_fixture!`].
pub trait FamilyFixture: Sized {
    /// The fixture folder under `tests/fixtures/backbones/`.
    const FAMILY: &'static str;
    /// The backbone.
    type Model: Backbone + ModuleSnapshot;
    /// What its importer returns.
    type Report: Report;

    /// The fixture's (reduced) model, configured from the manifest.
    fn model(device: &Device) -> Self::Model;

    /// The family's importer (`load_convnext`, …).
    fn import(
        model: &mut Self::Model,
        path: &Path,
        options: &ImportOptions,
    ) -> Result<Self::Report, BackboneError>;

    /// The embedding compared with `embedding.npy`.
    fn embedding(model: &Self::Model, x: Tensor<4>) -> Tensor<2>;

    /// The embedding of a feature map (`embed_features`), where the family
    /// has one: [`check_forward_with`] checks its shape.
    fn embedding_from_map(_model: &Self::Model, _map: Tensor<4>) -> Option<Tensor<2>> {
        None
    }

    /// The inference form of a loaded model (re-parameterised), where the
    /// family has one: [`check_loaded`] checks it too.
    fn fused(_model: &Self::Model) -> Option<Self::Model> {
        None
    }

    /// The forward check of a loaded model against the fixtures; default:
    /// feature map and embedding ([`check_forward_with`]).
    fn check(model: &Self::Model, what: &str) {
        check_forward_with::<Self>(model, what, "features.npy", "embedding.npy");
    }

    /// The fixture folder.
    fn dir() -> PathBuf {
        fixture_dir(Self::FAMILY)
    }

    /// `manifest.json` of the fixtures.
    fn manifest() -> Value {
        fixture_manifest(Self::FAMILY)
    }

    /// A float32 `.npy` array of the fixtures.
    fn npy(name: &str) -> ArrayD<f32> {
        fixture_npy(Self::FAMILY, name)
    }

    /// `file` of the fixtures into `model`.
    fn import_file(
        model: &mut Self::Model,
        file: &str,
        options: &ImportOptions,
    ) -> Result<Self::Report, BackboneError> {
        Self::import(model, &Self::dir().join(file), options)
    }

    /// `file` of the fixtures into a new fixture model; panics on an error.
    fn load(file: &str, options: &ImportOptions) -> (Self::Model, Self::Report) {
        let mut model = Self::model(&device());
        let report =
            Self::import_file(&mut model, file, options).unwrap_or_else(|e| panic!("{file}: {e}"));
        (model, report)
    }

    /// The key mismatch of loading `file` into `model` (default options).
    fn mismatch(model: &mut Self::Model, file: &str) -> Box<KeyMismatch> {
        mismatch_of(Self::import_file(model, file, &ImportOptions::default()))
    }
}

/// Declares `$fx`, the [`FamilyFixture`] of one family:
///
/// ```ignore
/// family_fixture! {
///     Fx = "convnext", ConvNeXt = model, ConvNeXtImportReport = load_convnext,
///     embedding: ConvNeXt::forward_embedding, from_map: ConvNeXt::embed_features,
/// }
/// ```
///
/// the fixture folder, the model type and the function (or closure) that
/// builds the fixture model on a device, the report type and the importer,
/// the embedding compared; optionally `from_map` (the embedding of a
/// feature map), `fused` (the inference form) and `check` (a forward check
/// of the family's own instead of features and embedding).
macro_rules! family_fixture {
    (
        $fx:ident = $family:literal, $model:ty = $build:expr, $report:ty = $load:path,
        embedding: $embedding:expr
        $(, from_map: $from_map:expr)? $(, fused: $fused:expr)? $(, check: $check:expr)? $(,)?
    ) => {
        /// This family's fixtures and importer, for the generic tests of
        /// `common::family`.
        pub struct $fx;

        impl $crate::common::family::FamilyFixture for $fx {
            const FAMILY: &'static str = $family;
            type Model = $model;
            type Report = $report;

            fn model(device: &burn::tensor::Device) -> $model {
                ($build)(device)
            }

            fn import(
                model: &mut $model,
                path: &std::path::Path,
                options: &reid_backbones::import::ImportOptions,
            ) -> Result<$report, reid_backbones::BackboneError> {
                $load(model, path, options)
            }

            fn embedding(model: &$model, x: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<2> {
                ($embedding)(model, x)
            }

            $(
                fn embedding_from_map(
                    model: &$model,
                    map: burn::tensor::Tensor<4>,
                ) -> Option<burn::tensor::Tensor<2>> {
                    Some(($from_map)(model, map))
                }
            )?

            $(
                fn fused(model: &$model) -> Option<$model> {
                    Some(($fused)(model))
                }
            )?

            $(
                fn check(model: &$model, what: &str) {
                    ($check)(model, what);
                }
            )?
        }
    };
}

/// Stamps the tests of a family that are one generic body each:
///
/// ```ignore
/// family_tests!(Fx {
///     non_convnext_files_and_formats_are_errors:
///         wrong_files_and_formats_are_errors("official_cion.pth", "timm.safetensors");
/// });
/// ```
///
/// is `#[test] fn non_convnext_files_and_formats_are_errors()` calling
/// `common::family::wrong_files_and_formats_are_errors::<Fx>(…)`; each
/// body's documentation says what it checks.
macro_rules! family_tests {
    ($fx:ty { $($name:ident: $body:ident($($arg:expr),* $(,)?);)* }) => {
        $(
            #[test]
            fn $name() {
                $crate::common::family::$body::<$fx>($($arg),*);
            }
        )*
    };
}

/// `F`'s fixture input (`input.npy`) on the test device.
pub fn input<F: FamilyFixture>() -> Tensor<4> {
    tensor4(&F::npy("input.npy"), &device())
}

/// The forward check against the fixtures: `model`'s feature map and
/// embedding ([`FamilyFixture::embedding`]) on `input.npy` against
/// `features_npy` and `embedding_npy`, each within 1e-4 of the reference's
/// magnitude; where the family embeds a map
/// ([`FamilyFixture::embedding_from_map`]), that embedding must have the
/// end-to-end one's shape.
pub fn check_forward_with<F: FamilyFixture>(
    model: &F::Model,
    what: &str,
    features_npy: &str,
    embedding_npy: &str,
) {
    let x = input::<F>();
    let features = model.forward_features(x.clone());
    let emb = F::embedding(model, x);
    if let Some(from_map) = F::embedding_from_map(model, features.clone()) {
        let dims = from_map.dims();
        assert_eq!(dims, emb.dims(), "{what}: embedding from the map");
    }
    let f_err = tensor_err(features, &F::npy(features_npy), what);
    let e_err = tensor_err(emb, &F::npy(embedding_npy), what);
    println!("{what}: feature map rel. error {f_err:.3e}, embedding rel. error {e_err:.3e}");
    assert!(f_err <= TOLERANCE, "{what}: feature map rel. error {f_err}");
    assert!(e_err <= TOLERANCE, "{what}: embedding rel. error {e_err}");
}

/// The check of a model loaded from the fixtures: [`FamilyFixture::check`];
/// for a family with an inference form ([`FamilyFixture::fused`]) the same
/// check of that form, which must also hold fewer tensors than the
/// training form and compute its feature map within 1e-4 of its magnitude.
pub fn check_loaded<F: FamilyFixture>(model: &F::Model, what: &str) {
    F::check(model, what);
    let Some(fused) = F::fused(model) else {
        return;
    };
    F::check(&fused, &format!("{what}, re-parameterised"));
    assert!(tensor_count(&fused) < tensor_count(model), "{what}: fused");
    let x = input::<F>();
    let (a, b) = (model.forward_features(x.clone()), fused.forward_features(x));
    let scale: f32 = a.clone().abs().max().into_scalar();
    let diff: f32 = (a - b).abs().max().into_scalar();
    let rel = diff / scale;
    println!("{what}: re-parameterised vs training form (Rust): rel. error {rel:.3e}");
    assert!(
        diff <= TOLERANCE * scale,
        "{what}: fused vs unfused {diff} (scale {scale})"
    );
}

/// A CION pre-training checkpoint `file` loads the teacher's backbone,
/// auto-detected and with `--weights-format cion` alike: wrapper
/// [`CheckpointWrapper::CionTeacher`], layout `layout`, every model tensor
/// written, each of `ignored` among the keys set aside (the DINO head, …),
/// and the forward within 1e-4 ([`check_loaded`]). Returns the
/// auto-detected load.
pub fn cion_teacher_checkpoint_matches<F: FamilyFixture>(
    file: &str,
    layout: LayoutOf<F>,
    ignored: &[&str],
) -> (F::Model, F::Report) {
    let mut first = None;
    for format in [WeightsFormat::Auto, WeightsFormat::Cion] {
        let (model, report) = F::load(file, &ImportOptions::default().with_format(format));
        let what = format!("{file} ({format:?})");
        let wrapper = report.wrapper();
        assert_eq!(wrapper, Some(CheckpointWrapper::CionTeacher), "{what}");
        assert_eq!(report.layout(), &layout, "{what}");
        assert_eq!(report.applied(), tensor_count(&model), "{what}: {report}");
        assert_ignored(&report, ignored);
        check_loaded::<F>(&model, &what);
        first.get_or_insert((model, report));
    }
    first.unwrap()
}

/// `file`, a bare state dict of exactly the model's tensors, loads as it
/// is: wrapper [`CheckpointWrapper::Bare`], layout `layout`, every model
/// tensor written, `ignored` keys set aside (BN counters), and the forward
/// within 1e-4 ([`check_loaded`]).
pub fn bare_checkpoint_matches<F: FamilyFixture>(
    file: &str,
    layout: LayoutOf<F>,
    ignored: usize,
) -> (F::Model, F::Report) {
    let (model, report) = F::load(file, &ImportOptions::default());
    assert_eq!(report.wrapper(), Some(CheckpointWrapper::Bare), "{report}");
    assert_eq!(report.layout(), &layout, "{report}");
    assert_eq!(report.applied(), tensor_count(&model), "{report}");
    assert_eq!(ignored_keys(&report).len(), ignored, "{report}");
    check_loaded::<F>(&model, file);
    (model, report)
}

/// `file` holds a classifier the backbone has no place for: loading it is
/// a mismatch read as `layout` with exactly `unexpected` unused keys
/// ([`assert_only_unexpected`]); with `allow` on the allow-list it loads,
/// reporting exactly those keys as allowed, and the forward is within 1e-4
/// ([`check_loaded`]). Returns that load.
pub fn classifier_is_unexpected_unless_allowed<F: FamilyFixture>(
    file: &str,
    layout: &str,
    unexpected: &[&str],
    allow: &str,
) -> (F::Model, F::Report) {
    let mismatch = F::mismatch(&mut F::model(&device()), file);
    assert_only_unexpected(&mismatch, layout, unexpected);
    let options = ImportOptions::default().with_allow_unexpected(vec![allow.into()]);
    let (model, report) = F::load(file, &options);
    assert_eq!(report.allowed_unexpected(), unexpected, "{report}");
    check_loaded::<F>(&model, &format!("{file}, {allow} allowed"));
    (model, report)
}

/// With `pattern` on the missing allow-list, `file` loads into `model`
/// (which has parameters the file lacks, nothing mis-shaped); returns the
/// report, whose [`Report::allowed_missing`] stayed at their
/// initialisation.
pub fn load_allowing_missing<F: FamilyFixture>(
    model: &mut F::Model,
    file: &str,
    pattern: &str,
) -> F::Report {
    let options = ImportOptions::default().with_allow_missing(vec![pattern.into()]);
    F::import_file(model, file, &options).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Files and formats of another kind are errors: a ResNet checkpoint,
/// `--weights-format safetensors` on a `.pth` (`cion_pth`), and
/// `--weights-format cion` on a file without a `teacher` dictionary
/// (`bare_safetensors`) are [`BackboneError::Layout`] errors; a
/// ResNet-only format and a missing file are errors.
pub fn wrong_files_and_formats_are_errors<F: FamilyFixture>(
    cion_pth: &str,
    bare_safetensors: &str,
) {
    let model = &mut F::model(&device());
    let with = |format| ImportOptions::default().with_format(format);
    let layout_error = |r: Result<F::Report, BackboneError>, what: &str| match r {
        Err(BackboneError::Layout { .. }) => {}
        Err(e) => panic!("{what}: expected a layout error, got {e}"),
        Ok(_) => panic!("{what}: loaded"),
    };
    let resnet = fixture_dir("bottleneck.pth");
    let defaults = ImportOptions::default();
    layout_error(F::import(model, &resnet, &defaults), "a ResNet checkpoint");
    let r = F::import_file(model, cion_pth, &with(WeightsFormat::Safetensors));
    layout_error(r, "safetensors format on a .pth");
    let r = F::import_file(model, bare_safetensors, &with(WeightsFormat::Cion));
    layout_error(r, "cion format without a teacher");
    let r = F::import_file(model, bare_safetensors, &with(WeightsFormat::Lup));
    assert!(r.is_err(), "a ResNet-only format");
    let r = F::import_file(model, "nope.pth", &defaults);
    assert!(r.is_err(), "a missing file");
}
