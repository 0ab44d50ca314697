//! Checkpoint layouts: where the weights sit inside a file, which keys are
//! the model's, and which are other training state to leave aside.
//!
//! Every key a layout sets aside is reported with its reason in
//! [`super::ImportReport::ignored`]; nothing is dropped silently. Keys a
//! layout keeps are then matched one-to-one against the model, and any
//! leftover is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;

use super::options::{ImportOptions, WeightsFormat};
use super::source::{self, Container};
use crate::error::BackboneError;

/// How the model's weights are laid out inside a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A bare torchvision-style state dict (`conv1.weight`, `layer1.0.…`),
    /// optionally with DataParallel's `module.` prefix. Also the released
    /// LUPerson / LUPerson-NL backbone weights.
    Torchvision,
    /// A LUPerson MoCo v2 or LUPerson-NL (PNL) training snapshot: the trunk
    /// under `[state_dict.]module.encoder_q.`; the encoder's heads (`fc.*`,
    /// classifier / projection branches), the key encoder, queues and
    /// prototypes are set aside.
    Lup,
    /// A CION / ReIDZoo pre-training checkpoint: the `teacher` dictionary's
    /// keys containing `backbone`, with the `module.backbone.` (BN models,
    /// DDP-wrapped) or `backbone.` prefix removed; the DINO head, the student
    /// and the optimizer are set aside.
    Cion,
    /// A fast-reid checkpoint (`{"model": state_dict, …}`): `backbone.*` and
    /// `heads.*`, in the current (`heads.bottleneck.0.*`, `heads.weight`) or
    /// the v0.1 model-zoo naming (`heads.bnneck.*`,
    /// `heads.classifier.weight`, plus the `pixel_mean`/`pixel_std` buffers,
    /// which are set aside).
    FastReid,
    /// A TransReID-style fine-tuned model (CION's fine-tuning code): a bare
    /// state dict with the trunk under `base.`, the BNNeck as `bottleneck.*`
    /// (BatchNorm1d) and a bias-free `classifier.weight`.
    TransReid,
}

/// A ViT or Swin checkpoint (`family`, in messages) read: its container,
/// every tensor, and the layout [`trunk_layout`] picks (`detect` sees the
/// tensors); an unusable format names `path`.
pub(crate) fn read_trunk(
    path: &Path,
    options: &ImportOptions,
    family: &str,
    detect: impl FnOnce(&BTreeMap<String, PackTensor>) -> Layout,
) -> Result<(Container, BTreeMap<String, PackTensor>, Layout), BackboneError> {
    let (container, raw) = source::read_file(path, options)?;
    let layout = trunk_layout(options.format, family, || detect(&raw))
        .map_err(|message| source::layout_error(path, message))?;
    Ok((container, raw, layout))
}

/// The layout a ViT or Swin checkpoint (`family`, in messages) is read
/// as under `format`: `detect`ed under [`WeightsFormat::Auto`] /
/// [`WeightsFormat::Safetensors`]; [`WeightsFormat::Torchvision`] (a bare
/// state dict), [`WeightsFormat::Cion`] and [`WeightsFormat::TransReid`]
/// forced; the LUPerson and fast-reid formats, which have no such
/// checkpoints, an error message.
pub(crate) fn trunk_layout(
    format: WeightsFormat,
    family: &str,
    detect: impl FnOnce() -> Layout,
) -> Result<Layout, String> {
    Ok(match format {
        WeightsFormat::Auto | WeightsFormat::Safetensors => detect(),
        WeightsFormat::Torchvision => Layout::Torchvision,
        WeightsFormat::Cion => Layout::Cion,
        WeightsFormat::TransReid => Layout::TransReid,
        WeightsFormat::Lup | WeightsFormat::FastReid => {
            return Err(format!(
                "format {format:?} has no {family} checkpoints; use auto, torchvision (bare \
                 state dict), cion, transreid or safetensors"
            ));
        }
    })
}

impl Layout {
    /// Lower-case name, as used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Torchvision => "torchvision",
            Self::Lup => "lup",
            Self::Cion => "cion",
            Self::FastReid => "fastreid",
            Self::TransReid => "transreid",
        }
    }

    /// Recognises the layout from the flattened keys of a file, in this
    /// order: an `encoder_q.` subtree → [`Layout::Lup`]; a `teacher.` subtree
    /// → [`Layout::Cion`]; `backbone.` keys (under `model.` or not) →
    /// [`Layout::FastReid`]; `base.conv1.weight` → [`Layout::TransReid`];
    /// `conv1.weight` (with or without `module.`) → [`Layout::Torchvision`].
    pub fn detect<'a>(keys: impl IntoIterator<Item = &'a String> + Clone) -> Option<Self> {
        let any = |f: &dyn Fn(&str) -> bool| keys.clone().into_iter().any(|k| f(k));
        if any(&|k| k.contains("encoder_q.")) {
            Some(Self::Lup)
        } else if any(&|k| k.starts_with("teacher.")) {
            Some(Self::Cion)
        } else if any(&|k| {
            let k = k.strip_prefix("model.").unwrap_or(k);
            let k = k.strip_prefix("module.").unwrap_or(k);
            k.starts_with("backbone.")
        }) {
            Some(Self::FastReid)
        } else if any(&|k| k == "base.conv1.weight" || k == "module.base.conv1.weight") {
            Some(Self::TransReid)
        } else if any(&|k| k == "conv1.weight" || k == "module.conv1.weight") {
            Some(Self::Torchvision)
        } else {
            None
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is being loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A backbone alone: keys relative to the trunk (`conv1.weight`).
    Trunk,
    /// A fast-reid-style model: `backbone.*` and `heads.*`.
    FastReidModel,
    /// fast-reid's MGN: `backbone.{0,1,4,5,6}.*`, `b{1,2,3}.{0,1}.*`,
    /// `b*_head.*`, `heads_extra_bn_b*.*`.
    Mgn,
}

/// fast-reid MGN's `nn.Sequential` indices → our field names; old head
/// names → current ones.
fn mgn_key(key: &str) -> String {
    const BACKBONE: [(&str, &str); 5] = [
        ("backbone.0.", "backbone.conv1."),
        ("backbone.1.", "backbone.bn1."),
        ("backbone.4.", "backbone.layer1."),
        ("backbone.5.", "backbone.layer2."),
        ("backbone.6.", "backbone.layer3_0."),
    ];
    for (from, to) in BACKBONE {
        if let Some(rest) = key.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    for b in ["b1", "b2", "b3"] {
        for (idx, name) in [("0", "res_conv4"), ("1", "res_conv5")] {
            if let Some(rest) = key.strip_prefix(&format!("{b}.{idx}.")) {
                return format!("{b}.{name}.{rest}");
            }
        }
    }
    if let Some((head, rest)) = key.split_once('.')
        && head.ends_with("_head")
    {
        if rest == "classifier.weight" {
            return format!("{head}.weight");
        }
        if let Some(bn) = rest.strip_prefix("bnneck.") {
            return format!("{head}.bottleneck.0.{bn}");
        }
    }
    key.to_string()
}

/// Keys a layout set aside, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Why these keys are not loaded.
    pub reason: String,
    /// The keys, as written in the file (flattened).
    pub keys: Vec<String>,
}

/// The keys to match against the model (PyTorch names relative to the
/// target), and what was set aside.
pub(crate) struct Extracted {
    pub tensors: BTreeMap<String, PackTensor>,
    pub ignored: Vec<Ignored>,
}

/// Collects set-aside keys by reason, in first-seen order.
#[derive(Default)]
struct IgnoredSet(Vec<Ignored>);

impl IgnoredSet {
    fn add(&mut self, reason: &str, key: &str) {
        match self.0.iter_mut().find(|g| g.reason == reason) {
            Some(g) => g.keys.push(key.to_string()),
            None => self.0.push(Ignored {
                reason: reason.to_string(),
                keys: vec![key.to_string()],
            }),
        }
    }
}

/// The documented num_batches_tracked rule.
pub(crate) const NUM_BATCHES_TRACKED: &str = "BatchNorm num_batches_tracked counters (unused: burn's \
     BatchNorm updates its running statistics with a fixed momentum, as PyTorch does with the \
     default momentum 0.1)";

const TRUNK_ROOTS: [&str; 6] = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"];

fn first_segment(key: &str) -> &str {
    key.split('.').next().unwrap_or(key)
}

/// Strips `prefix` from every key that has it when all keys of interest
/// have it (DataParallel's `module.`).
fn strip_common(
    tensors: BTreeMap<String, PackTensor>,
    prefix: &str,
) -> BTreeMap<String, PackTensor> {
    if !tensors.is_empty() && tensors.keys().all(|k| k.starts_with(prefix)) {
        tensors
            .into_iter()
            .map(|(k, mut t)| {
                let k = k[prefix.len()..].to_string();
                t.name = k.clone();
                (k, t)
            })
            .collect()
    } else {
        tensors
    }
}

fn rename(mut t: PackTensor, key: String) -> (String, PackTensor) {
    t.name = key.clone();
    (key, t)
}

/// Splits `raw` (every tensor of the file) into the keys to load for
/// `target` under `layout`, and the keys set aside.
pub(crate) fn extract(
    raw: BTreeMap<String, PackTensor>,
    layout: Layout,
    target: Target,
) -> Result<Extracted, String> {
    let mut ignored = IgnoredSet::default();
    let mut kept = BTreeMap::new();
    match (layout, target) {
        (Layout::Torchvision, Target::Trunk) => kept = strip_common(raw, "module."),
        (Layout::Lup, Target::Trunk) => {
            let prefix = [
                "state_dict.module.encoder_q.",
                "module.encoder_q.",
                "encoder_q.",
            ]
            .into_iter()
            .find(|p| raw.keys().any(|k| k.starts_with(p)));
            let Some(prefix) = prefix else {
                // Released weights: a bare torchvision state dict.
                return extract(raw, Layout::Torchvision, target);
            };
            for (k, t) in raw {
                match k.strip_prefix(prefix) {
                    Some(rest) if TRUNK_ROOTS.contains(&first_segment(rest)) => {
                        let (k, t) = rename(t, rest.to_string());
                        kept.insert(k, t);
                    }
                    Some(_) => ignored.add(
                        "LUPerson encoder_q pre-training heads (MoCo projection fc.*, PNL \
                         classifier / projection branches)",
                        &k,
                    ),
                    None => ignored.add(
                        "MoCo / PNL training state outside encoder_q (key encoder, queues, \
                         prototypes, optimizer)",
                        &k,
                    ),
                }
            }
        }
        (Layout::Cion, Target::Trunk) => {
            if !raw.keys().any(|k| k.starts_with("teacher.")) {
                return Err("a CION checkpoint needs a `teacher` dictionary; none found".into());
            }
            for (k, t) in raw {
                match k.strip_prefix("teacher.") {
                    Some(rest) if rest.contains("backbone") => {
                        let stripped = rest
                            .strip_prefix("module.backbone.")
                            .or_else(|| rest.strip_prefix("backbone."))
                            // Neither prefix: keep the key so it is reported.
                            .unwrap_or(rest);
                        let (k, t) = rename(t, stripped.to_string());
                        kept.insert(k, t);
                    }
                    Some(_) => ignored.add("CION teacher DINO head", &k),
                    None => ignored.add(
                        "CION training state outside the teacher (student, optimizer, loss \
                         center, scaler)",
                        &k,
                    ),
                }
            }
        }
        (Layout::FastReid, _) => {
            let nested = raw.keys().any(|k| k.starts_with("model."));
            let mut model = BTreeMap::new();
            for (k, t) in raw {
                if nested {
                    match k.strip_prefix("model.") {
                        Some(rest) => {
                            let (k, t) = rename(t, rest.to_string());
                            model.insert(k, t);
                        }
                        None => ignored.add(
                            "fast-reid training state outside `model` (optimizer, scheduler)",
                            &k,
                        ),
                    }
                } else {
                    model.insert(k, t);
                }
            }
            for (k, t) in strip_common(model, "module.") {
                if k == "pixel_mean" || k == "pixel_std" {
                    ignored.add(
                        "fast-reid v0.1 input normalisation buffers (normalise the input \
                         outside the model)",
                        &k,
                    );
                    continue;
                }
                if target == Target::Mgn {
                    let (k, t) = rename(t, mgn_key(&k));
                    kept.insert(k, t);
                    continue;
                }
                match (target, k.strip_prefix("backbone.")) {
                    (Target::Trunk, Some(rest)) => {
                        let (k, t) = rename(t, rest.to_string());
                        kept.insert(k, t);
                    }
                    (Target::Trunk, None) if k.starts_with("heads.") => ignored.add(
                        "fast-reid head (load the whole model to use it, or pool the trunk's \
                         features yourself)",
                        &k,
                    ),
                    (Target::FastReidModel, None) if k.starts_with("heads.") => {
                        let renamed = if let Some(rest) = k.strip_prefix("heads.bnneck.") {
                            format!("heads.bottleneck.0.{rest}")
                        } else if k == "heads.classifier.weight" {
                            "heads.weight".to_string()
                        } else {
                            k
                        };
                        let (k, t) = rename(t, renamed);
                        kept.insert(k, t);
                    }
                    _ => {
                        kept.insert(k, t);
                    }
                }
            }
        }
        (Layout::TransReid, Target::Trunk | Target::FastReidModel) => {
            for (k, t) in strip_common(raw, "module.") {
                let head = k.starts_with("bottleneck.") || k.starts_with("classifier.");
                match (target, k.strip_prefix("base.")) {
                    (Target::Trunk, Some(rest)) => {
                        let (k, t) = rename(t, rest.to_string());
                        kept.insert(k, t);
                    }
                    (_, Some(rest)) => {
                        let (k, t) = rename(t, format!("backbone.{rest}"));
                        kept.insert(k, t);
                    }
                    (Target::Trunk, None) if head => ignored.add(
                        "TransReID BNNeck and classifier (load the whole model to use them)",
                        &k,
                    ),
                    (_, None) if k.starts_with("bottleneck.") => {
                        let renamed = format!("heads.bottleneck.0.{}", &k["bottleneck.".len()..]);
                        let (k, t) = rename(t, renamed);
                        kept.insert(k, t);
                    }
                    (_, None) if k == "classifier.weight" => {
                        let (k, t) = rename(t, "heads.weight".to_string());
                        kept.insert(k, t);
                    }
                    _ => {
                        kept.insert(k, t);
                    }
                }
            }
        }
        (layout, Target::FastReidModel | Target::Mgn) => {
            return Err(format!(
                "a {layout} checkpoint holds a backbone only; load it into a backbone"
            ));
        }
    }
    let mut tensors = BTreeMap::new();
    for (k, t) in kept {
        if k.ends_with("num_batches_tracked") {
            ignored.add(NUM_BATCHES_TRACKED, &k);
        } else {
            tensors.insert(k, t);
        }
    }
    Ok(Extracted {
        tensors,
        ignored: ignored.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::owned;

    #[test]
    fn layouts_are_detected_from_key_patterns() {
        let cases = [
            (
                owned(&["conv1.weight", "fc.weight"]),
                Some(Layout::Torchvision),
            ),
            (owned(&["module.conv1.weight"]), Some(Layout::Torchvision)),
            (
                owned(&[
                    "state_dict.module.encoder_q.conv1.weight",
                    "state_dict.module.queue",
                ]),
                Some(Layout::Lup),
            ),
            (
                owned(&[
                    "teacher.module.backbone.conv1.weight",
                    "student.module.head.mlp.0.weight",
                ]),
                Some(Layout::Cion),
            ),
            (
                owned(&["model.backbone.conv1.weight", "model.heads.weight"]),
                Some(Layout::FastReid),
            ),
            (owned(&["backbone.conv1.weight"]), Some(Layout::FastReid)),
            (
                owned(&["base.conv1.weight", "bottleneck.weight"]),
                Some(Layout::TransReid),
            ),
            (owned(&["encoder.weight"]), None),
        ];
        for (ks, want) in cases {
            assert_eq!(Layout::detect(&ks), want, "{ks:?}");
        }
    }
}
