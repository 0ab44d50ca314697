//! Seeded from-scratch initialisation of the ReIDZoo families, as CION's
//! own model code initialises them.
//!
//! CION's checkpoints come from the model files of its pre-training code
//! (`Zplusdragon/CION_ReIDZoo@7ac6fd7`, `CION_Pretrain/models/<file>.py`),
//! so a model trained here from scratch starts from the distributions those
//! files draw. [`plan`] gives every float tensor of a network its [`Init`]
//! from its family's rule table; [`init_from_scratch`] draws them.
//!
//! Rules (the table in `docs/backbones.md` cites the upstream lines):
//!
//! - **normalisation layers** (BatchNorm, LayerNorm, channel LayerNorm,
//!   InstanceNorm): weight 1, bias 0, running mean 0, running variance 1
//!   (PyTorch's defaults; RepViT: the BatchNorm closing each FFN starts
//!   at weight 0, `Conv2d_BN(..., bn_weight_init=0)`);
//! - **ResNet / ResNet-IBN**: convolutions `N(0, 2/fan_out)`,
//!   `fan_out = out · kh · kw` (torchvision's
//!   `kaiming_normal_(mode="fan_out")`, IBN-Net's `normal_(0, √(2/n))`);
//! - **ViT, Swin, VOLO**: linear weights timm `trunc_normal_(std=.02)`,
//!   biases 0; `cls_token`, `pos_embed` and Swin's
//!   `relative_position_bias_table` `trunc_normal_(std=.02)`;
//!   convolutions (stems, patch projections) PyTorch's default;
//! - **FastViT**: the convolutions of every `ConvFFN` and the attention's
//!   linear layers `trunc_normal_(std=.02)`, biases 0; other convolutions
//!   PyTorch's default;
//! - **ConvNeXt, EdgeNeXt, GhostNet, RepViT**: PyTorch's default for every
//!   convolution and linear layer (CION's ConvNeXt and EdgeNeXt define
//!   `_init_weights` but never `apply` it);
//! - **PyTorch's default** (`reset_parameters` of `nn.Conv2d` /
//!   `nn.Linear`): weight `U(±1/√fan_in)` (`kaiming_uniform_(a=√5)`),
//!   bias `U(±1/√fan_in)` with the weight's `fan_in = in/groups · kh · kw`;
//! - **layer scales** (ConvNeXt, EdgeNeXt `gamma`/`gamma_xca`, FastViT):
//!   left as constructed (the configuration's `layer_scale_init`: 1e-6,
//!   1e-6, 1e-5 in the presets, as upstream); EdgeNeXt's XCA temperature 1.
//!
//! timm's `trunc_normal_(tensor, std=.02)` truncates at `a = −2`, `b = 2`
//! **absolute**, i.e. at ±100 σ: it is a plain `N(0, 0.02²)` in practice
//! (actual std 0.02; a truncation at ±2 σ would give 0.0176). [`Init`]
//! keeps the absolute bounds and samples by rejection, which has the same
//! distribution as timm's inverse-CDF method.
//!
//! Determinism: tensor `i` (the `i`-th float tensor in traversal order,
//! constants included) is drawn from its own ChaCha8 stream seeded by
//! `(seed, i)`, the scheme of `reid_train`'s `reinit_weights`; nothing uses
//! burn's process-global generator, so threads training at the same time
//! do not change the draws. The ResNet rule gives bit for bit the trunk
//! that `reinit_weights` draws.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::BackboneError;
use crate::family::ZooFamily;

/// How one float tensor is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// `N(0, std²)` (ResNet convolutions: `std = √(2/fan_out)`).
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// timm's `trunc_normal_(std, a, b)`: `N(0, std²)` restricted to
    /// `[a, b]`; `a` and `b` are absolute values, not multiples of `std`.
    TruncNormal {
        /// Standard deviation of the untruncated normal.
        std: f64,
        /// Lower bound (absolute).
        a: f64,
        /// Upper bound (absolute).
        b: f64,
    },
    /// `U(−bound, bound)` (PyTorch's default: `bound = 1/√fan_in`).
    Uniform {
        /// Half-width of the interval.
        bound: f64,
    },
    /// Every element equal to the value.
    Constant(f64),
    /// Left as constructed (layer-scale γ: the configured value).
    Keep,
}

/// timm's `trunc_normal_(std=.02)`, as ViT, Swin, VOLO and FastViT call it
/// (default bounds `a = −2`, `b = 2`).
pub const TRUNC_NORMAL_002: Init = Init::TruncNormal {
    std: 0.02,
    a: -2.0,
    b: 2.0,
};

/// The initialisation [`plan`] chose for one float tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInit {
    /// Module path with the field name (`stages.0.blocks.1.dwconv.weight`).
    pub path: String,
    /// Type of the module holding the tensor (`Conv2d`, `LayerNorm`, …).
    pub owner: String,
    /// Shape of the tensor.
    pub dims: Vec<usize>,
    /// Its initialisation.
    pub init: Init,
}

/// One float tensor as the traversal sees it: field names from the root
/// and the type of the module holding each of them.
struct Site {
    names: Vec<String>,
    owners: Vec<String>,
    dims: Vec<usize>,
}

impl Site {
    fn leaf(&self) -> &str {
        self.names.last().map_or("", String::as_str)
    }

    fn owner(&self) -> &str {
        self.owners.last().map_or("", String::as_str)
    }

    fn parent(&self) -> String {
        self.names[..self.names.len().saturating_sub(1)].join(".")
    }

    fn within(&self, owner: &str) -> bool {
        self.owners.iter().any(|o| o == owner)
    }
}

#[derive(Default)]
struct Collect {
    names: Vec<String>,
    owners: Vec<String>,
    sites: Vec<Site>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.names.push(name.to_string());
        let owner = container_type
            .strip_prefix("Struct:")
            .or_else(|| container_type.strip_prefix("Enum:"))
            .unwrap_or(container_type);
        self.owners.push(owner.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.names.pop();
        self.owners.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.sites.push(Site {
            names: self.names.clone(),
            owners: self.owners.clone(),
            dims: param.lazy_shape().to_vec(),
        });
    }
}

/// `fan_in` of a weight held by `owner`, or `None` for a module that is not
/// a convolution or a linear layer. Convolutions `[out, in/groups, kh,
/// kw]`; burn's `Linear` `[in, out]`; this crate's PyTorch-layout linears
/// (`TorchLinear`, `PointwiseLinear`) `[out, in]`.
fn fan_in(owner: &str, dims: &[usize]) -> Option<usize> {
    match (owner, dims) {
        ("Conv2d", [_, i, kh, kw]) => Some(i * kh * kw),
        ("Linear", [i, _]) => Some(*i),
        ("TorchLinear" | "PointwiseLinear", [_, i]) => Some(*i),
        _ => None,
    }
}

/// PyTorch's `U(±1/√fan_in)`.
fn torch_default(fan_in: usize) -> Init {
    Init::Uniform {
        bound: 1.0 / (fan_in.max(1) as f64).sqrt(),
    }
}

/// Whether `family`'s upstream code draws this convolution / linear layer
/// with `trunc_normal_(std=.02)` (bias 0) instead of PyTorch's default.
fn truncated(family: ZooFamily, site: &Site) -> bool {
    let owner = site.owner();
    match family {
        // Vision_Transformer.py `_init_weights` on `nn.Linear`.
        ZooFamily::ViT => owner == "Linear",
        // Swin_Transformer.py `init_weights`, VOLO.py `_init_weights`.
        ZooFamily::Swin | ZooFamily::Volo => owner == "TorchLinear",
        // FastViT.py: `ConvFFN._init_weights` (every Conv2d of the FFN) and
        // `cls_init_weights` (the attention's nn.Linear).
        ZooFamily::FastViT => {
            owner == "TorchLinear" || (owner == "Conv2d" && site.within("ConvMlp"))
        }
        _ => false,
    }
}

/// The rule of `family` for `site`; `weight_dims` is the shape of the
/// weight beside a bias. `None`: no rule (an error for [`plan`]).
fn rule(family: ZooFamily, site: &Site, weight_dims: Option<&[usize]>) -> Option<Init> {
    let (owner, leaf) = (site.owner(), site.leaf());
    if matches!(
        owner,
        "BatchNorm" | "LayerNorm" | "ChannelNorm" | "InstanceNorm"
    ) {
        return Some(match leaf {
            "gamma" | "weight" if family == ZooFamily::RepViT && repvit_ffn_out(site) => {
                Init::Constant(0.0)
            }
            "gamma" | "weight" | "running_var" => Init::Constant(1.0),
            "beta" | "bias" | "running_mean" => Init::Constant(0.0),
            _ => return None,
        });
    }
    if fan_in(owner, &site.dims).is_some() || (leaf == "bias" && weight_dims.is_some()) {
        let resnet = matches!(family, ZooFamily::ResNet | ZooFamily::ResNetIbn);
        return Some(match leaf {
            "weight" if truncated(family, site) => TRUNC_NORMAL_002,
            "bias" if truncated(family, site) => Init::Constant(0.0),
            "weight" if resnet && owner == "Conv2d" => Init::Normal {
                std: resnet_conv_std(&site.dims),
            },
            "weight" => torch_default(fan_in(owner, &site.dims)?),
            "bias" => torch_default(fan_in(owner, weight_dims?)?),
            _ => return None,
        });
    }
    match (family, owner, leaf) {
        // Vision_Transformer.py / VOLO.py: `trunc_normal_(self.cls_token,
        // std=.02)`, `trunc_normal_(self.pos_embed, std=.02)`.
        (ZooFamily::ViT | ZooFamily::Volo, _, "cls_token" | "pos_embed") => Some(TRUNC_NORMAL_002),
        // Swin_Transformer.py `WindowAttention`.
        (ZooFamily::Swin, "WindowAttention", "relative_position_bias_table") => {
            Some(TRUNC_NORMAL_002)
        }
        // Layer scales: `layer_scale_init_value * torch.ones(dim)`.
        // (EdgeNeXt's conv encoder is a `ConvNeXtBlock`.)
        (ZooFamily::ConvNeXt, "ConvNeXtBlock", "gamma")
        | (ZooFamily::EdgeNeXt, "ConvNeXtBlock" | "SdtaEncoder", "gamma" | "gamma_xca")
        | (ZooFamily::FastViT, "LayerScale", "gamma") => Some(Init::Keep),
        // EdgeNext.py `XCA`: `torch.ones(num_heads, 1, 1)`.
        (ZooFamily::EdgeNeXt, "Xca", "temperature") => Some(Init::Constant(1.0)),
        _ => None,
    }
}

/// RepViT.py: the `Conv2d_BN` closing a channel mixer is built with
/// `bn_weight_init=0` (ours: `….channel_mixer.conv2.bn`, `….ffn.conv2.bn`).
fn repvit_ffn_out(site: &Site) -> bool {
    let n = site.names.len();
    n >= 3 && site.owners[n - 3] == "RepVitMlp" && site.names[n - 3] == "conv2"
}

/// Standard deviation of a ResNet convolution `[out, in/groups, kh, kw]`:
/// `√(2 / (out · kh · kw))` (torchvision `kaiming_normal_(mode="fan_out",
/// nonlinearity="relu")`).
pub fn resnet_conv_std(dims: &[usize]) -> f64 {
    let fan_out = dims.first().copied().unwrap_or(1) * dims.iter().skip(2).product::<usize>();
    (2.0 / fan_out.max(1) as f64).sqrt()
}

/// The initialisation of every float tensor of `module` (a network of
/// `family`), in traversal order. An error lists the tensors the family's
/// rules do not cover (a module that is not that family's).
pub fn plan<M: Module>(module: &M, family: ZooFamily) -> Result<Vec<ParamInit>, BackboneError> {
    let mut collect = Collect::default();
    module.visit(&mut collect);
    let weights: HashMap<String, &[usize]> = collect
        .sites
        .iter()
        .filter(|s| s.leaf() == "weight")
        .map(|s| (s.parent(), s.dims.as_slice()))
        .collect();
    let mut missing = Vec::new();
    let plans: Vec<ParamInit> = collect
        .sites
        .iter()
        .map(|site| {
            let weight_dims = (site.leaf() == "bias")
                .then(|| weights.get(&site.parent()).copied())
                .flatten();
            let init = rule(family, site, weight_dims).unwrap_or_else(|| {
                missing.push(format!("{} ({})", site.names.join("."), site.owner()));
                Init::Keep
            });
            ParamInit {
                path: site.names.join("."),
                owner: site.owner().to_string(),
                dims: site.dims.clone(),
                init,
            }
        })
        .collect();
    if missing.is_empty() {
        Ok(plans)
    } else {
        Err(BackboneError::InvalidConfig(format!(
            "no {family} initialisation rule for {} tensor(s): {}",
            missing.len(),
            missing.join(", ")
        )))
    }
}

/// `module` (a network of `family`, e.g. fresh from its configuration's
/// `init`) with every tensor redrawn as [`plan`] says, from streams seeded
/// by `seed`. Deterministic: the same `seed` gives bit-identical weights on
/// any thread, whatever else draws random numbers meanwhile (burn's own
/// lazy initialisers of the redrawn tensors never run). An error (see
/// [`plan`]) leaves nothing drawn.
pub fn init_from_scratch<M: Module>(
    module: M,
    family: ZooFamily,
    seed: u64,
) -> Result<M, BackboneError> {
    let plans = plan(&module, family)?;
    Ok(module.map(&mut Draw {
        plans: &plans,
        seed,
        index: 0,
    }))
}

struct Draw<'a> {
    plans: &'a [ParamInit],
    seed: u64,
    index: usize,
}

impl ModuleMapper for Draw<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.index;
        self.index += 1;
        let init = self.plans[index].init;
        if init == Init::Keep {
            return param;
        }
        let dims = param.lazy_shape().to_vec();
        let n: usize = dims.iter().product();
        let mut rng = ChaCha8Rng::seed_from_u64(param_seed(self.seed, index));
        let values = sample(init, n, &mut rng);
        let tensor = Tensor::<D>::from_data(TensorData::new(values, dims), &param.lazy_device());
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

/// Seed of the stream of the `index`-th float tensor: `reid_train`'s
/// `augment_seed(seed, usize::MAX, index)` (three SplitMix64 rounds).
fn param_seed(seed: u64, index: usize) -> u64 {
    splitmix(splitmix(splitmix(seed) ^ u64::MAX) ^ index as u64)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// One standard-normal draw (Box–Muller, cosine branch), as `reid_train`
/// draws them.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` draws of `init` (not [`Init::Keep`]).
fn sample(init: Init, n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    match init {
        Init::Normal { std } => (0..n)
            .map(|_| (standard_normal(rng) * std) as f32)
            .collect(),
        Init::TruncNormal { std, a, b } => (0..n)
            .map(|_| {
                // Rejection: the same law as timm's inverse-CDF sampling.
                // Bounds of negligible mass fall back to clamping, as timm's
                // final `clamp_` would.
                for _ in 0..1000 {
                    let x = standard_normal(rng) * std;
                    if (a..=b).contains(&x) {
                        return x as f32;
                    }
                }
                (standard_normal(rng) * std).clamp(a, b) as f32
            })
            .collect(),
        Init::Uniform { bound } => (0..n)
            .map(|_| ((2.0 * rng.random::<f64>() - 1.0) * bound) as f32)
            .collect(),
        Init::Constant(v) => vec![v as f32; n],
        Init::Keep => Vec::new(),
    }
}
