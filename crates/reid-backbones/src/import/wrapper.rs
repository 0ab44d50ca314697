//! The wrappers a backbone's keys come in (a CION `teacher` dictionary,
//! an official `model` dictionary, a TransReID fine-tuned model, a bare
//! state dict) and how each key is unwrapped or set aside; shared by every
//! family importer ([`super::family`]).

/// The wrapper a checkpoint's backbone keys were found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointWrapper {
    /// A CION pre-training checkpoint's `teacher` dictionary.
    CionTeacher,
    /// The `model` dictionary of the official ImageNet release.
    Model,
    /// A model fine-tuned by CION's TransReID code (`make_model.build_model`
    /// saved with `model.state_dict()`): the backbone under `base.`, the
    /// BNNeck `bottleneck.*`, the classifier `classifier.weight` (and
    /// `fcneck.weight` with `REDUCE_FEAT_DIM`). CION's test feature
    /// (`NECK_FEAT: 'before'`) is the backbone's own output, so the head is
    /// set aside.
    TransReid,
    /// A bare state dict (possibly with a common `module.` / `backbone.`
    /// prefix).
    Bare,
}

/// What happens to one key of the file before matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFate {
    /// Matched against the model under this name.
    Keep(String),
    /// Set aside for this reason (reported in the import report).
    Ignore(&'static str),
}

const CION_HEAD: &str = "CION teacher DINO head";
const CION_OUTSIDE: &str =
    "CION training state outside the teacher (student, optimizer, loss center, scaler)";
const MODEL_OUTSIDE: &str = "training state outside `model` (EMA copy, optimizer)";
const TRANSREID_HEAD: &str =
    "TransReID head (BNNeck, classifier, fcneck; CION tests with the feature before it)";

/// Which wrapper the file's `keys` show: a `teacher.` subtree →
/// [`CheckpointWrapper::CionTeacher`]; a `model.` subtree →
/// [`CheckpointWrapper::Model`]; `base.` and `bottleneck.` subtrees →
/// [`CheckpointWrapper::TransReid`]; otherwise [`CheckpointWrapper::Bare`].
pub fn detect_wrapper<'a>(keys: impl IntoIterator<Item = &'a String> + Clone) -> CheckpointWrapper {
    let any = |p: &str| keys.clone().into_iter().any(|k| k.starts_with(p));
    if any("teacher.") {
        CheckpointWrapper::CionTeacher
    } else if any("model.") {
        CheckpointWrapper::Model
    } else if any("base.") && any("bottleneck.") {
        CheckpointWrapper::TransReid
    } else {
        CheckpointWrapper::Bare
    }
}

/// What happens to `key` under `wrapper`, before the common-prefix removal:
/// CION teacher keys containing `backbone` lose `module.backbone.` or
/// `backbone.` (as CION's fine-tuning code strips them), other teacher keys
/// are the DINO head; keys outside the wrapper are training state.
/// TransReID: `base.` is removed, the head (`bottleneck.*`,
/// `classifier.*`, `fcneck.*`) set aside, any other key kept as it is (and
/// then reported as unexpected).
pub fn unwrap_key(key: &str, wrapper: CheckpointWrapper) -> KeyFate {
    match wrapper {
        CheckpointWrapper::CionTeacher => match key.strip_prefix("teacher.") {
            Some(rest) if rest.contains("backbone") => KeyFate::Keep(
                rest.strip_prefix("module.backbone.")
                    .or_else(|| rest.strip_prefix("backbone."))
                    .unwrap_or(rest)
                    .to_string(),
            ),
            Some(_) => KeyFate::Ignore(CION_HEAD),
            None => KeyFate::Ignore(CION_OUTSIDE),
        },
        CheckpointWrapper::Model => match key.strip_prefix("model.") {
            Some(rest) => KeyFate::Keep(rest.to_string()),
            None => KeyFate::Ignore(MODEL_OUTSIDE),
        },
        CheckpointWrapper::TransReid => match key.strip_prefix("base.") {
            Some(rest) => KeyFate::Keep(rest.to_string()),
            None if ["bottleneck.", "classifier.", "fcneck."]
                .iter()
                .any(|p| key.starts_with(p)) =>
            {
                KeyFate::Ignore(TRANSREID_HEAD)
            }
            None => KeyFate::Keep(key.to_string()),
        },
        CheckpointWrapper::Bare => KeyFate::Keep(key.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::owned;

    #[test]
    fn cion_and_model_wrappers_are_unwrapped() {
        use CheckpointWrapper::*;
        let keep = |s: &str| KeyFate::Keep(s.to_string());
        let cases = [
            (
                "teacher.backbone.norm.weight",
                CionTeacher,
                keep("norm.weight"),
            ),
            (
                "teacher.module.backbone.stages.0.0.gamma",
                CionTeacher,
                keep("stages.0.0.gamma"),
            ),
            (
                "teacher.head.mlp.0.weight",
                CionTeacher,
                KeyFate::Ignore(CION_HEAD),
            ),
            (
                "student.backbone.norm.weight",
                CionTeacher,
                KeyFate::Ignore(CION_OUTSIDE),
            ),
            ("model.head.weight", Model, keep("head.weight")),
            (
                "model_ema.norm.weight",
                Model,
                KeyFate::Ignore(MODEL_OUTSIDE),
            ),
            ("module.norm.bias", Bare, keep("module.norm.bias")),
            (
                "base.features.0.0.c.weight",
                TransReid,
                keep("features.0.0.c.weight"),
            ),
            (
                "bottleneck.running_mean",
                TransReid,
                KeyFate::Ignore(TRANSREID_HEAD),
            ),
            (
                "classifier.weight",
                TransReid,
                KeyFate::Ignore(TRANSREID_HEAD),
            ),
            ("other.weight", TransReid, keep("other.weight")),
        ];
        for (key, wrapper, fate) in cases {
            assert_eq!(unwrap_key(key, wrapper), fate, "{key}");
        }
        assert_eq!(
            detect_wrapper(&owned(&["student.x", "teacher.backbone.norm.weight"])),
            CionTeacher
        );
        assert_eq!(detect_wrapper(&owned(&["model.norm.weight"])), Model);
        assert_eq!(detect_wrapper(&owned(&["backbone.norm.weight"])), Bare);
        assert_eq!(
            detect_wrapper(&owned(&["base.norm.weight", "bottleneck.weight"])),
            TransReid
        );
        // `base.` alone is not enough.
        assert_eq!(detect_wrapper(&owned(&["base.norm.weight"])), Bare);
    }
}
