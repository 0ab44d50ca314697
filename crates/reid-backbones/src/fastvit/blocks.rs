//! FastViT's stage components: patch embedding, RepMixer, conditional
//! positional encoding, convolutional FFN, attention and the two block types.

use burn::module::{Module, Param};
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::softmax;

use burn::tensor::{Device, Distribution, Tensor};

use super::mobileone::{
    ConvBn, MobileOneBlock, MobileOneOptions, ReparamLargeKernelConv, identity_kernel, with_weights,
};
use crate::layers::conv2d;
use crate::layers::drop_path;
use crate::layers::transformer::split_qkv;
use crate::norm::TorchBatchNorm;
use crate::norm::batch_norm;

/// Per-channel layer scale, PyTorch `gamma` `[dim, 1, 1]` (timm
/// `…layer_scale.gamma`; the official code names the bare parameter
/// `…layer_scale`). Initialised to `init` (1e-5).
#[derive(Module, Debug)]
pub struct LayerScale {
    /// `[dim, 1, 1]`.
    pub gamma: Param<Tensor<3>>,
}

impl LayerScale {
    /// `dim` channels, all `init`.
    pub fn new(dim: usize, init: f64, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([dim, 1, 1], device).mul_scalar(init)),
        }
    }

    /// `[b, dim, h, w]` scaled per channel.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        x * self.gamma.val().unsqueeze::<4>()
    }
}

/// Down-sampling patch embedding between stages: a 7×7 (stride 2,
/// `groups = in`) [`ReparamLargeKernelConv`] `in → out`, then a 1×1
/// [`MobileOneBlock`] `out → out` with GELU. PyTorch: `downsample.proj.0`
/// and `downsample.proj.1` (official `network.N.proj.{0,1}`).
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// `proj.0`.
    pub large: ReparamLargeKernelConv,
    /// `proj.1`.
    pub pointwise: MobileOneBlock,
}

impl PatchEmbed {
    /// `c_in → c_out` with kernel `patch` and stride 2.
    pub fn new(c_in: usize, c_out: usize, patch: usize, eps: f64, device: &Device) -> Self {
        Self {
            large: ReparamLargeKernelConv::new(c_in, c_out, patch, 2, c_in, eps, device),
            pointwise: MobileOneBlock::new(
                c_out,
                c_out,
                MobileOneOptions::new(1, 1, 1),
                eps,
                device,
            ),
        }
    }

    /// `[b, in, h, w]` → `[b, out, ⌈h/2⌉, ⌈w/2⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pointwise.forward(self.large.forward(x))
    }

    /// Both parts in their inference form.
    pub fn reparameterize(self) -> Self {
        Self {
            large: self.large.reparameterize(),
            pointwise: self.pointwise.reparameterize(),
        }
    }
}

/// RepMixer token mixer: `x + γ·(mixer(x) − norm(x))` where `mixer` is a
/// depth-wise k×k MobileOne block without activation (k×k conv-BN, 1×1
/// conv-BN, BN skip) and `norm` its BN-skip-only sibling. Folds to one
/// depth-wise k×k convolution with bias ([`RepMixer::reparameterize`]).
#[derive(Module, Debug)]
pub struct RepMixer {
    /// BN-only MobileOne block (`token_mixer.norm`).
    pub norm: Option<MobileOneBlock>,
    /// Depth-wise MobileOne block (`token_mixer.mixer`).
    pub mixer: Option<MobileOneBlock>,
    /// `token_mixer.layer_scale`.
    pub layer_scale: Option<LayerScale>,
    /// The fused depth-wise convolution of the inference form.
    pub reparam_conv: Option<Conv2d>,
}

impl RepMixer {
    /// A mixer over `dim` channels with kernel `k`.
    pub fn new(dim: usize, k: usize, layer_scale: f64, eps: f64, device: &Device) -> Self {
        let norm = MobileOneOptions {
            conv_branches: 0,
            scale_branch: false,
            act: false,
            ..MobileOneOptions::new(k, 1, dim)
        };
        let mixer = MobileOneOptions {
            act: false,
            ..MobileOneOptions::new(k, 1, dim)
        };
        Self {
            norm: Some(MobileOneBlock::new(dim, dim, norm, eps, device)),
            mixer: Some(MobileOneBlock::new(dim, dim, mixer, eps, device)),
            layer_scale: Some(LayerScale::new(dim, layer_scale, device)),
            reparam_conv: None,
        }
    }

    /// `[b, dim, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if let Some(conv) = &self.reparam_conv {
            return crate::layers::dispatch::conv2d(conv, x);
        }
        let (Some(norm), Some(mixer)) = (&self.norm, &self.mixer) else {
            return x;
        };
        let d = mixer.forward(x.clone()) - norm.forward(x.clone());
        match &self.layer_scale {
            Some(ls) => x + ls.forward(d),
            None => x + d,
        }
    }

    /// The inference form: `w = I + γ·(W_mixer − W_norm)`,
    /// `b = γ·(b_mixer − b_norm)`.
    pub fn reparameterize(self) -> Self {
        let (Some(norm), Some(mixer)) = (&self.norm, &self.mixer) else {
            return self;
        };
        let (Some((wm, bm)), Some((wn, bn))) = (mixer.kernel_bias(), norm.kernel_bias()) else {
            return self;
        };
        let [c, _, k, _] = wm.dims();
        let device = wm.device();
        let (dw, db) = (wm - wn, bm - bn);
        let (dw, db) = match &self.layer_scale {
            Some(ls) => {
                let g = ls.gamma.val().reshape([c]);
                (dw * g.clone().reshape([c, 1, 1, 1]), db * g)
            }
            None => (dw, db),
        };
        let w = identity_kernel(c, c, k, &device) + dw;
        let template = conv2d(c, c, k, 1, c, true, &device);
        Self {
            norm: None,
            mixer: None,
            layer_scale: None,
            reparam_conv: Some(with_weights(&template, w, db)),
        }
    }
}

/// Conditional positional encoding: `x + dwconv7×7(x)` (bias), PyTorch
/// `pos_emb.pos_enc` (official `network.N.pe`). Folds to one depth-wise
/// convolution with the identity added to the kernel.
#[derive(Module, Debug)]
pub struct RepCpe {
    /// Depth-wise 7×7 convolution with bias.
    pub pos_enc: Option<Conv2d>,
    /// The fused convolution of the inference form.
    pub reparam_conv: Option<Conv2d>,
}

impl RepCpe {
    /// Over `dim` channels with a `k×k` kernel (7).
    pub fn new(dim: usize, k: usize, device: &Device) -> Self {
        Self {
            pos_enc: Some(conv2d(dim, dim, k, 1, dim, true, device)),
            reparam_conv: None,
        }
    }

    /// `[b, dim, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match (&self.reparam_conv, &self.pos_enc) {
            (Some(conv), _) => crate::layers::dispatch::conv2d(conv, x),
            (None, Some(pe)) => crate::layers::dispatch::conv2d(pe, x.clone()) + x,
            (None, None) => x,
        }
    }

    /// The inference form: kernel `I + W`, same bias.
    pub fn reparameterize(self) -> Self {
        let Some(pe) = &self.pos_enc else {
            return self;
        };
        let w = pe.weight.val();
        let [c, _, k, _] = w.dims();
        let device = w.device();
        let b = match &pe.bias {
            Some(b) => b.val(),
            None => Tensor::zeros([c], &device),
        };
        let w = identity_kernel(c, c, k, &device) + w;
        Self {
            reparam_conv: Some(with_weights(pe, w, b)),
            pos_enc: None,
        }
    }
}

/// Convolutional FFN: depth-wise 7×7 conv-BN → 1×1 conv `dim → hidden`
/// (bias) → GELU → 1×1 conv back (bias). PyTorch `mlp.{conv.conv,
/// conv.bn, fc1, fc2}` (official `convffn.*`).
#[derive(Module, Debug)]
pub struct ConvMlp {
    /// Depth-wise 7×7 conv-BN.
    pub conv: ConvBn,
    /// `dim → hidden`, 1×1.
    pub fc1: Conv2d,
    /// `hidden → dim`, 1×1.
    pub fc2: Conv2d,
}

impl ConvMlp {
    /// `dim → hidden → dim`.
    pub fn new(dim: usize, hidden: usize, eps: f64, device: &Device) -> Self {
        Self {
            conv: ConvBn::new(dim, dim, 7, 1, dim, eps, device),
            fc1: conv2d(dim, hidden, 1, 1, 1, true, device),
            fc2: conv2d(hidden, dim, 1, 1, 1, true, device),
        }
    }

    /// `[b, dim, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = crate::layers::dispatch::conv2d_gelu(&self.fc1, self.conv.forward(x));
        crate::layers::dispatch::conv2d(&self.fc2, y)
    }

    /// The BN folded into the depth-wise convolution.
    pub fn reparameterize(self) -> Self {
        Self {
            conv: self.conv.fuse(),
            ..self
        }
    }
}

/// A fully-connected layer in PyTorch's orientation (`weight`
/// `[out, in]`, optional `bias` `[out]`), initialised like `nn.Linear`.
#[derive(Module, Debug)]
pub struct TorchLinear {
    /// `[out, in]`.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl TorchLinear {
    /// `d_in → d_out`.
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        let dist = Distribution::Uniform(-bound, bound);
        Self {
            weight: Param::from_tensor(Tensor::random([d_out, d_in], dist, device)),
            bias: bias.then(|| Param::from_tensor(Tensor::random([d_out], dist, device))),
        }
    }

    /// `[rows, in]` → `[rows, out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight.val().transpose());
        match &self.bias {
            Some(b) => y + b.val().unsqueeze::<2>(),
            None => y,
        }
    }
}

/// Multi-head self-attention over the `h·w` positions of a map: `qkv`
/// (no bias) → softmax(q·kᵀ/√head_dim)·v per head → `proj` (bias).
#[derive(Module, Debug)]
pub struct Attention {
    /// `dim → 3·dim`, no bias.
    pub qkv: TorchLinear,
    /// `dim → dim`, with bias.
    pub proj: TorchLinear,
    /// Channels per head (32).
    pub head_dim: usize,
}

impl Attention {
    /// `dim` channels in heads of `head_dim`.
    pub fn new(dim: usize, head_dim: usize, device: &Device) -> Self {
        Self {
            qkv: TorchLinear::new(dim, 3 * dim, false, device),
            proj: TorchLinear::new(dim, dim, true, device),
            head_dim,
        }
    }

    /// `[b, dim, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let heads = c / self.head_dim;
        let d = self.head_dim;
        let tokens = x.reshape([b, c, n]).swap_dims(1, 2).reshape([b * n, c]);
        let [q, k, v] = split_qkv(self.qkv.forward(tokens), [b, n, heads, d]);
        let scale = (d as f64).powf(-0.5);
        let attn = softmax(q.mul_scalar(scale).matmul(k.swap_dims(2, 3)), 3);
        let y = attn.matmul(v).swap_dims(1, 2).reshape([b * n, c]);
        self.proj
            .forward(y)
            .reshape([b, n, c])
            .swap_dims(1, 2)
            .reshape([b, c, h, w])
    }
}

/// RepMixer block: `x = repmixer(x)`, then
/// `x + drop_path(γ·convffn(x))`. PyTorch names: `token_mixer.*`, `mlp.*`
/// (official `convffn.*`), `layer_scale.gamma` (official `layer_scale`).
#[derive(Module, Debug)]
pub struct RepMixerBlock {
    /// The token mixer.
    pub token_mixer: RepMixer,
    /// The convolutional FFN.
    pub mlp: ConvMlp,
    /// Layer scale of the FFN branch.
    pub layer_scale: LayerScale,
    /// Stochastic-depth rate (training only).
    pub drop_path: f64,
}

impl RepMixerBlock {
    /// `[b, dim, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.token_mixer.forward(x);
        let y = self.layer_scale.forward(self.mlp.forward(x.clone()));
        x + drop_path(y, self.drop_path)
    }

    /// RepMixer folded, FFN BN folded.
    pub fn reparameterize(self) -> Self {
        Self {
            token_mixer: self.token_mixer.reparameterize(),
            mlp: self.mlp.reparameterize(),
            ..self
        }
    }
}

/// Attention block: `x + drop_path(γ₁·attn(BN(x)))`, then
/// `x + drop_path(γ₂·convffn(x))`. PyTorch names: `norm.*`,
/// `token_mixer.{qkv,proj}.*`, `mlp.*`, `layer_scale_{1,2}.gamma`.
#[derive(Module, Debug)]
pub struct AttentionBlock {
    /// BatchNorm before attention.
    pub norm: BatchNorm,
    /// Self-attention.
    pub token_mixer: Attention,
    /// Layer scale of the attention branch.
    pub layer_scale_1: LayerScale,
    /// The convolutional FFN.
    pub mlp: ConvMlp,
    /// Layer scale of the FFN branch.
    pub layer_scale_2: LayerScale,
    /// Stochastic-depth rate (training only).
    pub drop_path: f64,
}

impl AttentionBlock {
    /// A block of width `dim`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dim: usize,
        hidden: usize,
        head_dim: usize,
        layer_scale: f64,
        drop_path: f64,
        eps: f64,
        device: &Device,
    ) -> Self {
        Self {
            norm: batch_norm(dim, eps, device),
            token_mixer: Attention::new(dim, head_dim, device),
            layer_scale_1: LayerScale::new(dim, layer_scale, device),
            mlp: ConvMlp::new(dim, hidden, eps, device),
            layer_scale_2: LayerScale::new(dim, layer_scale, device),
            drop_path,
        }
    }

    /// `[b, dim, h, w]` → same shape.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self
            .layer_scale_1
            .forward(self.token_mixer.forward(self.norm.forward_torch(x.clone())));
        let x = x + drop_path(y, self.drop_path);
        let y = self.layer_scale_2.forward(self.mlp.forward(x.clone()));
        x + drop_path(y, self.drop_path)
    }

    /// FFN BN folded (the attention itself has nothing to fold).
    pub fn reparameterize(self) -> Self {
        Self {
            mlp: self.mlp.reparameterize(),
            ..self
        }
    }
}
