//! MGN (Wang et al., "Learning Discriminative Features with Multiple
//! Granularities", 2018) as fast-reid builds it (`meta_arch/mgn.py`,
//! including the LUPerson fork's extra BN per branch).
//!
//! - shared trunk: `conv1, bn1, relu, maxpool, layer1, layer2, layer3[0]`;
//! - three branches, each `layer3[1:]` followed by `layer4` (b1, the global
//!   branch, with the configured last stride) or by three stride-1
//!   bottlenecks (b2, b3);
//! - optionally a `BatchNorm2d` on each branch map (fast-reid
//!   `EXTRA_BN`, used with LUPerson / LUPerson-NL pre-trained weights;
//!   PyTorch names `heads_extra_bn_b{1,2,3}`);
//! - parts by `torch.chunk` along the height: b2 → 2, b3 → 3 (chunk size
//!   `⌈h/n⌉`, the last part possibly smaller: 16 rows → 6/6/4);
//! - 8 [`EmbeddingHead`]s (`b1_head`, `b2_head`, `b21_head`, `b22_head`,
//!   `b3_head`, `b31_head`, `b32_head`, `b33_head`), each GeM-P → 1×1 conv to
//!   `embedding_dim` (256) → BNNeck, circle-softmax classifier;
//! - inference feature: the 8 post-BN features concatenated in the order
//!   b1, b2, b3, b21, b22, b31, b32, b33 (`[batch, 8·embedding_dim]`).
//!
//! Parameter paths follow fast-reid's names except for the trunk's
//! `nn.Sequential` indices (`backbone.{0,1,4,5,6}` → `backbone.{conv1, bn1,
//! layer1, layer2, layer3_0}`) and the branches' (`b1.{0,1}` →
//! `b1.{res_conv4, res_conv5}`); `crate::import::load_mgn` maps them.
//!
//! Initialisation, as fast-reid builds the model from a pre-trained trunk:
//! [`Mgn::from_trunk`] (or [`Mgn::load_trunk`] on a built model) copies a
//! [`ResNet`]'s stem, `layer1`, `layer2` and `layer3[0]` into `backbone`,
//! `layer3[1:]` into every branch's `res_conv4` and `layer4` into every
//! branch's `res_conv5`, BatchNorm running statistics included. b2 and b3
//! take `layer4`'s weights although they run at stride 1 (fast-reid's
//! `res_p_conv5.load_state_dict(backbone.layer4.state_dict())`: the
//! downsample is a 1×1 convolution either way, so the shapes agree). Each
//! branch owns its parameters (fresh [`burn::module::ParamId`]s holding
//! copied values, as `copy.deepcopy` gives in PyTorch), so they train apart.
//! The heads and the extra BNs stay freshly initialised. [`MgnConfig::init`]
//! alone initialises every part randomly; [`crate::import::load_mgn`] loads
//! a whole trained MGN instead.

use std::collections::BTreeMap;

use burn::config::Config;
use burn::module::Module;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::store::ModuleSnapshot;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::error::BackboneError;
use crate::head::{
    ClassifierKind, EmbeddingHead, EmbeddingHeadConfig, HeadOutput, HeadPool, NeckFeat,
};
use crate::norm::{Norm, TorchBatchNorm, batch_norm};
use crate::precision::Precision;
use crate::resnet::{IbnMode, ResNet, ResNetConfig, ResNetDepth, ResidualBlock};

/// Configuration of an [`Mgn`].
#[derive(Config, Debug)]
pub struct MgnConfig {
    /// The trunk (a bottleneck ResNet with at least 2 blocks in layer 3 and
    /// exactly 3 in layer 4; IBN-a allowed, IBN-b not, as in fast-reid).
    /// fast-reid uses its stem ([`crate::StemPool::FastReid`]) and last
    /// stride 1.
    pub trunk: ResNetConfig,
    /// Output size of each head's 1×1 conv (256 in fast-reid).
    #[config(default = 256)]
    pub embedding_dim: usize,
    /// Training identities; 0 for no classifiers.
    #[config(default = 0)]
    pub num_classes: usize,
    /// The extra BatchNorm on each branch map (LUPerson weights).
    #[config(default = true)]
    pub extra_bn: bool,
    /// Logits of each head (circle softmax, scale 64, margin 0.35 in
    /// fast-reid's MGN config).
    #[config(default = "ClassifierKind::CircleSoftmax { scale: 64.0, margin: 0.35 }")]
    pub classifier: ClassifierKind,
}

/// The shared part of the trunk.
#[derive(Module, Debug)]
pub struct MgnBackbone {
    /// Stem convolution.
    pub conv1: Conv2d,
    /// Stem norm.
    pub bn1: Norm,
    /// Stem max-pool.
    pub maxpool: MaxPool2d,
    /// Stage 1.
    pub layer1: Vec<ResidualBlock>,
    /// Stage 2.
    pub layer2: Vec<ResidualBlock>,
    /// The first block of stage 3.
    pub layer3_0: ResidualBlock,
}

impl MgnBackbone {
    fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = self
            .maxpool
            .forward(relu(self.bn1.forward(self.conv1.forward(images))));
        for b in self.layer1.iter().chain(&self.layer2) {
            x = b.forward(x);
        }
        self.layer3_0.forward(x)
    }
}

/// One branch: the rest of stage 3, then a stage-4-like sequence.
#[derive(Module, Debug)]
pub struct MgnBranch {
    /// `layer3[1:]`.
    pub res_conv4: Vec<ResidualBlock>,
    /// `layer4` (b1) or three stride-1 bottlenecks (b2, b3).
    pub res_conv5: Vec<ResidualBlock>,
}

impl MgnBranch {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = x;
        for b in self.res_conv4.iter().chain(&self.res_conv5) {
            x = b.forward(x);
        }
        x
    }
}

/// fast-reid's MGN; see the module documentation.
#[derive(Module, Debug)]
pub struct Mgn {
    /// Shared trunk up to `layer3[0]`.
    pub backbone: MgnBackbone,
    /// Global branch.
    pub b1: MgnBranch,
    /// Two-part branch.
    pub b2: MgnBranch,
    /// Three-part branch.
    pub b3: MgnBranch,
    /// Head of the whole b1 map.
    pub b1_head: EmbeddingHead,
    /// Head of the whole b2 map.
    pub b2_head: EmbeddingHead,
    /// Head of b2's upper part.
    pub b21_head: EmbeddingHead,
    /// Head of b2's lower part.
    pub b22_head: EmbeddingHead,
    /// Head of the whole b3 map.
    pub b3_head: EmbeddingHead,
    /// Head of b3's first part.
    pub b31_head: EmbeddingHead,
    /// Head of b3's second part.
    pub b32_head: EmbeddingHead,
    /// Head of b3's third part.
    pub b33_head: EmbeddingHead,
    /// Extra BN on the b1 map.
    pub heads_extra_bn_b1: Option<BatchNorm>,
    /// Extra BN on the b2 map.
    pub heads_extra_bn_b2: Option<BatchNorm>,
    /// Extra BN on the b3 map.
    pub heads_extra_bn_b3: Option<BatchNorm>,
    /// The float type the trunk and the branches compute in
    /// ([`Precision`]; the extra BNs and the heads stay in `f32`). Not
    /// saved with the weights.
    #[module(skip)]
    pub precision: Precision,
}

impl MgnConfig {
    /// Builds the model on `device`.
    pub fn init(&self, device: &Device) -> Result<Mgn, BackboneError> {
        let blocks = self.trunk.depth.blocks();
        if !self.trunk.depth.is_bottleneck() || blocks[2] < 2 || blocks[3] != 3 {
            return Err(BackboneError::InvalidConfig(format!(
                "MGN needs a bottleneck trunk with at least 2 blocks in layer3 and 3 in layer4, \
                 got {:?}",
                self.trunk.depth
            )));
        }
        if self.trunk.ibn == Some(IbnMode::B) {
            return Err(BackboneError::InvalidConfig(
                "MGN with IBN-b is not defined by fast-reid".into(),
            ));
        }
        if self.embedding_dim == 0 {
            return Err(BackboneError::InvalidConfig(
                "MGN embedding_dim must be positive".into(),
            ));
        }
        let global = self.trunk.init(device)?;
        let out_ch = global.out_channels;
        let part_cfg = self
            .trunk
            .clone()
            .with_depth(ResNetDepth::Custom {
                blocks,
                bottleneck: true,
            })
            .with_last_stride(1);
        let branch = |r: crate::resnet::ResNet| MgnBranch {
            res_conv4: r.layer3.into_iter().skip(1).collect(),
            res_conv5: r.layer4,
        };
        let mut layer3 = global.layer3;
        let layer3_0 = layer3.remove(0);
        let backbone = MgnBackbone {
            conv1: global.conv1,
            bn1: global.bn1,
            maxpool: global.maxpool,
            layer1: global.layer1,
            layer2: global.layer2,
            layer3_0,
        };
        let b1 = MgnBranch {
            res_conv4: layer3,
            res_conv5: global.layer4,
        };
        let b2 = branch(part_cfg.init(device)?);
        let b3 = branch(part_cfg.init(device)?);
        let head = || {
            EmbeddingHeadConfig::new(out_ch)
                .with_embedding_dim(self.embedding_dim)
                .with_num_classes(self.num_classes)
                .with_pool(HeadPool::Gem)
                .with_classifier(self.classifier)
                .with_bn_eps(self.trunk.bn_eps)
                .init(device)
        };
        let extra = || {
            self.extra_bn
                .then(|| batch_norm(out_ch, self.trunk.bn_eps, device))
        };
        Ok(Mgn {
            backbone,
            b1,
            b2,
            b3,
            b1_head: head()?,
            b2_head: head()?,
            b21_head: head()?,
            b22_head: head()?,
            b3_head: head()?,
            b31_head: head()?,
            b32_head: head()?,
            b33_head: head()?,
            heads_extra_bn_b1: extra(),
            heads_extra_bn_b2: extra(),
            heads_extra_bn_b3: extra(),
            precision: Precision::F32,
        })
    }
}

/// `torch.chunk(x, n, dim=2)`: parts of `⌈h/n⌉` rows, the last one smaller;
/// an error when that gives fewer than `n` parts (as fast-reid's unpacking
/// would fail).
fn chunk_rows(x: Tensor<4>, n: usize) -> Result<Vec<Tensor<4>>, BackboneError> {
    let [_, _, h, _] = x.dims();
    let size = h.div_ceil(n);
    if size == 0 || h.div_ceil(size) != n {
        return Err(BackboneError::InvalidConfig(format!(
            "MGN: a branch map of {h} rows cannot be chunked into {n} parts; use a taller input"
        )));
    }
    Ok((0..n)
        .map(|i| {
            let start = i * size;
            x.clone().narrow(2, start, size.min(h - start))
        })
        .collect())
}

fn extra_bn(bn: &Option<BatchNorm>, x: Tensor<4>) -> Tensor<4> {
    match bn {
        Some(bn) => bn.forward_torch(x),
        None => x,
    }
}

impl Mgn {
    /// The 8 heads in output order: b1, b2, b3, b21, b22, b31, b32, b33.
    pub fn heads(&self) -> [&EmbeddingHead; 8] {
        [
            &self.b1_head,
            &self.b2_head,
            &self.b3_head,
            &self.b21_head,
            &self.b22_head,
            &self.b31_head,
            &self.b32_head,
            &self.b33_head,
        ]
    }

    /// The three branch maps `[batch, C, h, w]` in the order b1, b2, b3,
    /// before the extra BNs: `C` = the trunk's output channels (4 × 8 ×
    /// base width), `h × w` = the input size / 16 (b1 with last stride 2:
    /// / 32).
    pub fn branch_maps(&self, images: Tensor<4>) -> [Tensor<4>; 3] {
        let p = self.precision;
        let f = p.run(&self.backbone, images, |m, x| m.forward(x));
        [
            p.run(&self.b1, f.clone(), |m, x| m.forward(x)),
            p.run(&self.b2, f.clone(), |m, x| m.forward(x)),
            p.run(&self.b3, f, |m, x| m.forward(x)),
        ]
    }

    /// What each of the 8 heads computes (before and after its BNNeck), in
    /// the order of [`Mgn::heads`]; for training (logits via
    /// [`EmbeddingHead::logits`], triplet on the features).
    pub fn train_outputs(&self, images: Tensor<4>) -> Result<Vec<HeadOutput>, BackboneError> {
        let [b1, b2, b3] = self.branch_maps(images);
        let b1 = extra_bn(&self.heads_extra_bn_b1, b1);
        let b2 = extra_bn(&self.heads_extra_bn_b2, b2);
        let b3 = extra_bn(&self.heads_extra_bn_b3, b3);
        let p2 = chunk_rows(b2.clone(), 2)?;
        let p3 = chunk_rows(b3.clone(), 3)?;
        let maps = [b1, b2, b3].into_iter().chain(p2).chain(p3);
        Ok(self
            .heads()
            .into_iter()
            .zip(maps)
            .map(|(head, map)| head.forward(map))
            .collect())
    }

    /// The 8 head features `[batch, embedding_dim]` in the order b1, b2, b3,
    /// b21, b22, b31, b32, b33 (each the head's test feature: post-BN for
    /// fast-reid heads).
    pub fn head_features(&self, images: Tensor<4>) -> Result<Vec<Tensor<2>>, BackboneError> {
        let outs = self.train_outputs(images)?;
        Ok(self
            .heads()
            .into_iter()
            .zip(outs)
            .map(|(head, out)| match head.test_feature {
                NeckFeat::Before => out.before_neck,
                NeckFeat::After => out.after_neck,
            })
            .collect())
    }

    /// The inference feature `[batch, 8·embedding_dim]` (fast-reid's
    /// `pred_feat`); an error when the input is too short to chunk.
    pub fn forward(&self, images: Tensor<4>) -> Result<Tensor<2>, BackboneError> {
        Ok(Tensor::cat(self.head_features(images)?, 1))
    }
}

/// The branches, as named in parameter paths.
const BRANCHES: [&str; 3] = ["b1", "b2", "b3"];

/// Where a trunk tensor goes in an MGN: `conv1.weight` →
/// `backbone.conv1.weight`, `layer3.0.*` → `backbone.layer3_0.*`,
/// `layer3.i.*` (i ≥ 1) → `b{1,2,3}.res_conv4.{i-1}.*`, `layer4.*` →
/// `b{1,2,3}.res_conv5.*`; `None` for a path outside these.
fn mgn_targets(trunk_path: &str) -> Option<Vec<String>> {
    let (head, rest) = trunk_path.split_once('.')?;
    match head {
        "conv1" | "bn1" | "layer1" | "layer2" => Some(vec![format!("backbone.{trunk_path}")]),
        "layer3" => {
            let (index, tail) = rest.split_once('.')?;
            let index: usize = index.parse().ok()?;
            Some(match index {
                0 => vec![format!("backbone.layer3_0.{tail}")],
                i => BRANCHES
                    .iter()
                    .map(|b| format!("{b}.res_conv4.{}.{tail}", i - 1))
                    .collect(),
            })
        }
        "layer4" => Some(
            BRANCHES
                .iter()
                .map(|b| format!("{b}.res_conv5.{rest}"))
                .collect(),
        ),
        _ => None,
    }
}

/// The IBN variant a set of norms and blocks shows (`"IBN-a"`, `"IBN-b"` or
/// `"plain BatchNorm"`), for error messages.
fn ibn_layout<'a>(
    stem: &Norm,
    blocks: impl IntoIterator<Item = &'a ResidualBlock>,
) -> &'static str {
    let mut ibn_a = false;
    let mut ibn_b = matches!(stem, Norm::Instance(_));
    for b in blocks {
        let (bn1, post) = match b {
            ResidualBlock::Basic(b) => (&b.bn1, b.post_norm.is_some()),
            ResidualBlock::Bottleneck(b) => (&b.bn1, b.post_norm.is_some()),
        };
        ibn_a |= matches!(bn1, Norm::Ibn(_));
        ibn_b |= post;
    }
    match (ibn_a, ibn_b) {
        (true, true) => "IBN-a and IBN-b mixed",
        (true, false) => "IBN-a",
        (false, true) => "IBN-b",
        (false, false) => "plain BatchNorm",
    }
}

/// How many differences an error message lists before summarising.
const SHOWN: usize = 8;

fn listed(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(", … ({} in all)", items.len()));
    }
    s
}

impl Mgn {
    /// Builds an MGN from `cfg` on `device` and initialises its shared
    /// trunk and all three branches from `trunk` (e.g. an ImageNet or
    /// LUPerson ResNet50 loaded with [`crate::import::load_backbone`]), as
    /// fast-reid's `MGN.__init__` does; see the module documentation and
    /// [`Mgn::load_trunk`]. The heads and extra BNs are fresh.
    ///
    /// Strides, stem pooling, BN epsilon and frozen BatchNorm come from
    /// `cfg` (they are not weights): a trunk built with last stride 2 gives
    /// the same MGN as one with last stride 1. `trunk` may live on another
    /// device (e.g. plain, with the MGN on its autodiff version).
    ///
    /// Errors: `cfg` is invalid for MGN, or `trunk` does not fit it (block
    /// type, blocks per stage, width or IBN variant differ), with a message
    /// naming the difference.
    pub fn from_trunk(
        trunk: &ResNet,
        cfg: &MgnConfig,
        device: &Device,
    ) -> Result<Mgn, BackboneError> {
        let mut mgn = cfg.init(device)?;
        mgn.load_trunk(trunk)?;
        Ok(mgn)
    }

    /// Copies `trunk`'s weights into this model in place: stem, `layer1`,
    /// `layer2`, `layer3[0]` → `backbone`; `layer3[1:]` → `b{1,2,3}.res_conv4`;
    /// `layer4` → `b{1,2,3}.res_conv5`; BatchNorm running statistics and
    /// IBN-a InstanceNorm affines included. Every parameter keeps this
    /// model's own [`burn::module::ParamId`] (the three branches stay
    /// independent), its device and its gradient setting; the heads and
    /// the extra BNs are not touched. Returns the number of tensors written.
    ///
    /// Errors (the model is left unchanged): the trunk's block type,
    /// blocks per stage, stem width or IBN variant differ from this
    /// model's, or any tensor has no place or another shape here; the
    /// message names what differs.
    pub fn load_trunk(&mut self, trunk: &ResNet) -> Result<usize, BackboneError> {
        let mismatch = |m: String| {
            BackboneError::InvalidConfig(format!("the trunk does not fit the MGN: {m}"))
        };
        let trunk_stages = [&trunk.layer1, &trunk.layer2, &trunk.layer3, &trunk.layer4];
        if trunk_stages
            .iter()
            .flat_map(|s| s.iter())
            .any(|b| matches!(b, ResidualBlock::Basic(_)))
        {
            return Err(mismatch(
                "it has basic blocks (ResNet18/34 layout); MGN needs bottleneck blocks".into(),
            ));
        }
        let trunk_blocks = trunk_stages.map(|s| s.len());
        let mgn_blocks = [
            self.backbone.layer1.len(),
            self.backbone.layer2.len(),
            1 + self.b1.res_conv4.len(),
            self.b1.res_conv5.len(),
        ];
        if trunk_blocks != mgn_blocks {
            return Err(mismatch(format!(
                "blocks per stage: trunk {trunk_blocks:?}, MGN {mgn_blocks:?} (another depth)"
            )));
        }
        let width = |c: &Conv2d| c.weight.dims()[0];
        let (tw, mw) = (width(&trunk.conv1), width(&self.backbone.conv1));
        if tw != mw {
            return Err(mismatch(format!(
                "stem width (base_width): trunk {tw}, MGN {mw}"
            )));
        }
        let trunk_ibn = ibn_layout(&trunk.bn1, trunk_stages.iter().flat_map(|s| s.iter()));
        let mgn_ibn = ibn_layout(
            &self.backbone.bn1,
            self.backbone
                .layer1
                .iter()
                .chain(&self.backbone.layer2)
                .chain(std::iter::once(&self.backbone.layer3_0))
                .chain(&self.b1.res_conv4)
                .chain(&self.b1.res_conv5),
        );
        if trunk_ibn != mgn_ibn {
            return Err(mismatch(format!(
                "normalisation: trunk {trunk_ibn}, MGN {mgn_ibn} (another IBN mode)"
            )));
        }

        // Tensor by tensor: every trunk tensor lands on same-shaped MGN
        // tensors, and every trunk or branch tensor of the MGN is written.
        let expected: BTreeMap<String, Vec<usize>> = self
            .collect(None, None, true)
            .into_iter()
            .map(|t| (t.name.clone(), t.shape.to_vec()))
            .collect();
        let mut to_apply = Vec::new();
        let mut problems = Vec::new();
        for tensor in trunk.collect(None, None, true) {
            let Some(targets) = mgn_targets(&tensor.name) else {
                problems.push(format!("{} has no place in MGN", tensor.name));
                continue;
            };
            for target in targets {
                match expected.get(&target) {
                    None => problems.push(format!("{} → {target}: not in the MGN", tensor.name)),
                    Some(shape) if shape.as_slice() != tensor.shape.as_slice() => {
                        problems.push(format!(
                            "{} → {target}: trunk {:?}, MGN {shape:?}",
                            tensor.name,
                            tensor.shape.as_slice()
                        ));
                    }
                    Some(_) => {
                        let mut copy = tensor.clone();
                        copy.name = target;
                        // Keep the target's own id: a persisted id would give
                        // the three branches shared parameters.
                        copy.param_id = None;
                        to_apply.push(copy);
                    }
                }
            }
        }
        let written: std::collections::BTreeSet<&str> =
            to_apply.iter().map(|t| t.name.as_str()).collect();
        let unwritten: Vec<String> = expected
            .keys()
            .filter(|k| {
                let trunk_part = k.starts_with("backbone.")
                    || BRANCHES.iter().any(|b| k.starts_with(&format!("{b}.")));
                trunk_part && !written.contains(k.as_str())
            })
            .map(|k| format!("{k}: no trunk tensor"))
            .collect();
        problems.extend(unwritten);
        if !problems.is_empty() {
            return Err(mismatch(listed(&problems)));
        }
        let count = to_apply.len();
        let result = self.apply(to_apply, None, None, true);
        if !result.errors.is_empty() || result.applied.len() != count || !result.unused.is_empty() {
            return Err(mismatch(format!(
                "burn-store did not apply every checked tensor: {result}"
            )));
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_torch_chunk_and_short_maps_are_errors() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([1, 1, 16, 2], &device);
        let rows: Vec<usize> = chunk_rows(x, 3)
            .unwrap()
            .iter()
            .map(|t| t.dims()[2])
            .collect();
        assert_eq!(rows, vec![6, 6, 4]);
        let x = Tensor::<4>::zeros([1, 1, 4, 2], &device);
        assert!(chunk_rows(x, 3).is_err());
    }

    #[test]
    fn invalid_trunks_are_rejected() {
        let device = Device::flex();
        let r18 = ResNetConfig::new().with_depth(ResNetDepth::R18);
        assert!(MgnConfig::new(r18).init(&device).is_err());
    }
}
