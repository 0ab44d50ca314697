//! From-scratch initialisation (`reid_backbones::init`) of every ReIDZoo
//! family at a reduced size, against CION's model code
//! (Zplusdragon/CION_ReIDZoo@7ac6fd7, `CION_Pretrain/models/*.py`).
//!
//! The expected law of each tensor is stated here from the Python code,
//! independently of the crate's rule table: per tensor and pooled per law,
//! the empirical mean and standard deviation must match the reference
//! formula within five standard errors of the element count; constants
//! (norm weights and biases, zero biases, layer scales) must be exact; the
//! draws must depend on the seed alone (bit-identical across builds and
//! threads, different for another seed).

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Distribution, Tensor};
use reid_backbones::init::{init_from_scratch, plan};
use reid_backbones::{
    Arch, ConvNeXtConfig, EdgeNeXtConfig, FastVitConfig, GhostNetConfig, RepVitConfig, SwinConfig,
    ViTConfig, VoloConfig, ZooFamily, ZooModel, ZooNet,
};

/// One float tensor: its path, the type of the module holding it, shape
/// and values.
struct Seen {
    path: String,
    owner: String,
    dims: Vec<usize>,
    values: Vec<f32>,
}

impl Seen {
    fn leaf(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or("")
    }

    fn parent(&self) -> &str {
        self.path.rsplit_once('.').map_or("", |(p, _)| p)
    }
}

#[derive(Default)]
struct Gather {
    names: Vec<String>,
    owners: Vec<String>,
    seen: Vec<Seen>,
}

impl ModuleVisitor for Gather {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.names.push(name.to_string());
        self.owners.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.names.pop();
        self.owners.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        self.seen.push(Seen {
            path: self.names.join("."),
            owner: self
                .owners
                .last()
                .map(|o| o.trim_start_matches("Struct:").to_string())
                .unwrap_or_default(),
            dims: t.dims().to_vec(),
            values: t.into_data().iter::<f32>().collect(),
        });
    }
}

fn gather<M: Module>(m: &M) -> Vec<Seen> {
    let mut g = Gather::default();
    m.visit(&mut g);
    g.seen
}

/// The law CION's code draws a tensor from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// `U(±bound)`: `nn.Conv2d` / `nn.Linear` `reset_parameters`
    /// (`kaiming_uniform_(a=√5)` and the bias, both `1/√fan_in`).
    Uniform(f64),
    /// `N(0, std²)`: ResNet `kaiming_normal_(mode="fan_out")`.
    Normal(f64),
    /// timm `trunc_normal_(std=.02)` (bounds ±2 absolute).
    Trunc,
    /// A constant.
    Exact(f32),
}

/// `fan_in` of a weight: convolutions `[out, in/g, kh, kw]`, the
/// PyTorch-layout linears `[out, in]`, burn's `Linear` `[in, out]`.
fn fan_in(owner: &str, dims: &[usize]) -> f64 {
    (match (owner, dims) {
        ("Conv2d", [_, i, kh, kw]) => i * kh * kw,
        ("Linear", [i, _]) => *i,
        (_, [_, i]) => *i,
        _ => panic!("{owner} {dims:?} is not a layer"),
    }) as f64
}

/// What CION's `<family>.py` gives `t` (`all`: the whole network, for a
/// bias's weight).
fn want(family: ZooFamily, t: &Seen, all: &[Seen], layer_scale: f32) -> Want {
    let (owner, leaf, path) = (t.owner.as_str(), t.leaf(), t.path.as_str());
    use ZooFamily::*;
    if ["BatchNorm", "LayerNorm", "ChannelNorm", "InstanceNorm"].contains(&owner) {
        return match leaf {
            // RepViT.py: Conv2d_BN(2·oup, oup, bn_weight_init=0) ends each
            // channel mixer (ours: `channel_mixer` in blocks, `ffn` in the
            // down-sampling rows).
            "gamma" | "weight"
                if family == RepViT
                    && (path.ends_with("channel_mixer.conv2.bn.gamma")
                        || path.ends_with("ffn.conv2.bn.gamma")) =>
            {
                Want::Exact(0.0)
            }
            "gamma" | "weight" | "running_var" => Want::Exact(1.0),
            "beta" | "bias" | "running_mean" => Want::Exact(0.0),
            _ => panic!("{path}"),
        };
    }
    match (family, leaf) {
        (ViT | Volo, "cls_token" | "pos_embed") | (Swin, "relative_position_bias_table") => {
            return Want::Trunc;
        }
        (ConvNeXt | EdgeNeXt, "gamma" | "gamma_xca") | (FastViT, "gamma") => {
            return Want::Exact(layer_scale);
        }
        (EdgeNeXt, "temperature") => return Want::Exact(1.0),
        _ => {}
    }
    let trunc = match family {
        ViT => owner == "Linear",
        Swin | Volo => owner == "TorchLinear",
        // ConvFFN (ours: `mlp`) applies trunc_normal_ to its Conv2d; the
        // attention's nn.Linear are ours TorchLinear.
        FastViT => owner == "TorchLinear" || path.contains(".mlp."),
        _ => false,
    };
    match leaf {
        "weight" if trunc => Want::Trunc,
        "bias" if trunc => Want::Exact(0.0),
        "weight" if matches!(family, ResNet | ResNetIbn) => {
            let d = &t.dims;
            Want::Normal((2.0 / (d[0] * d[2] * d[3]) as f64).sqrt())
        }
        "weight" => Want::Uniform(1.0 / fan_in(owner, &t.dims).sqrt()),
        "bias" => {
            let w = all
                .iter()
                .find(|w| w.parent() == t.parent() && w.leaf() == "weight")
                .unwrap_or_else(|| panic!("{path}: no weight"));
            Want::Uniform(1.0 / fan_in(owner, &w.dims).sqrt())
        }
        _ => panic!("{family}: no expectation for {path} ({owner})"),
    }
}

/// `(mean, population std)` of `v`.
fn moments(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Standardised values `x / scale` pooled per law, for the pooled checks.
#[derive(Default)]
struct Pool {
    by_law: BTreeMap<&'static str, Vec<f64>>,
}

/// Checks `t` against `w`: constants exactly; random laws through the
/// standardised values `z = x / scale` (`E z = 0`; `sd z` = 1 for the
/// normals, 1/√3 for the uniform), per tensor when it has ≥ 16 elements
/// (mean within 5 sd/√n, sd within 5 relative standard errors), and pooled.
fn check(t: &Seen, w: Want, pool: &mut Pool) {
    let (law, scale, sd) = match w {
        Want::Exact(c) => {
            assert!(
                t.values.iter().all(|&x| x == c),
                "{}: want every element {c}, got {:?}…",
                t.path,
                &t.values[..t.values.len().min(4)]
            );
            return;
        }
        Want::Uniform(b) => {
            let over = t
                .values
                .iter()
                .filter(|x| f64::from(x.abs()) > b * (1.0 + 1e-6));
            assert_eq!(over.count(), 0, "{}: values beyond ±{b}", t.path);
            ("uniform", b, 1.0 / 3f64.sqrt())
        }
        Want::Normal(s) => ("normal", s, 1.0),
        Want::Trunc => {
            assert!(t.values.iter().all(|x| x.abs() <= 2.0), "{}", t.path);
            ("trunc_normal_0.02", 0.02, 1.0)
        }
    };
    let z: Vec<f64> = t.values.iter().map(|&x| f64::from(x) / scale).collect();
    let n = z.len() as f64;
    if z.len() >= 16 {
        let (mean, std) = moments(&z);
        assert!(
            mean.abs() <= 5.0 * sd / n.sqrt(),
            "{} ({law}, {:?}): mean {mean:.4} (standardised)",
            t.path,
            t.dims
        );
        // Relative standard error of a sample sd: 1/√(2n) for a normal,
        // √0.8/(2√n) ≈ 0.45/√n for a uniform; 1/√(2n) bounds both.
        let tol = 5.0 / (2.0 * n).sqrt();
        assert!(
            (std / sd - 1.0).abs() <= tol,
            "{} ({law}, {:?}): sd {std:.4} vs {sd:.4} (tol {tol:.3})",
            t.path,
            t.dims
        );
    }
    pool.by_law.entry(law).or_default().extend(z);
}

/// Pooled checks of one family; returns a line of figures.
fn check_pooled(family: ZooFamily, pool: &Pool) -> String {
    let mut line = format!("{family}:");
    for (law, z) in &pool.by_law {
        let n = z.len() as f64;
        let (mean, std) = moments(z);
        let sd = if *law == "uniform" {
            1.0 / 3f64.sqrt()
        } else {
            1.0
        };
        assert!(
            mean.abs() <= 5.0 * sd / n.sqrt(),
            "{family} {law}: pooled mean {mean}"
        );
        assert!(
            (std / sd - 1.0).abs() <= 5.0 / (2.0 * n).sqrt(),
            "{family} {law}: pooled sd {std} vs {sd} over {n}"
        );
        let max = z.iter().fold(0f64, |m, x| m.max(x.abs()));
        if *law == "uniform" {
            assert!(max > 0.99 && max <= 1.0 + 1e-6, "{family}: max |z| {max}");
        } else if n >= 1000.0 {
            // timm truncates at ±2 absolute (±100 σ): about 4.55 % of the
            // draws lie beyond 2 σ (none would with a ±2 σ truncation,
            // whose sd is 0.88 σ).
            let beyond = z.iter().filter(|x| x.abs() > 2.0).count() as f64 / n;
            assert!(
                (0.0455 - beyond).abs() <= 5.0 * (0.0455 * 0.9545 / n).sqrt(),
                "{family} {law}: {beyond} beyond 2 sd"
            );
        }
        line += &format!(
            " {law} n={n} mean={mean:+.4} sd={:.4} (want {sd:.4}) max|z|={max:.2};",
            std
        );
    }
    line
}

/// A reduced network of every family, built on `device`, with its
/// layer-scale value.
fn reduced(family: ZooFamily, device: &Device) -> (ZooNet, f32) {
    use ZooFamily::*;
    match family {
        ResNet | ResNetIbn => (
            ZooNet::ResNet(
                Arch::from_name("resnet18_ibn_a")
                    .unwrap()
                    .config()
                    .with_base_width(8)
                    .init(device)
                    .unwrap(),
            ),
            0.0,
        ),
        GhostNet => (
            ZooNet::GhostNet(
                GhostNetConfig::new(0.1)
                    .with_num_features(32)
                    .init(device)
                    .unwrap(),
            ),
            0.0,
        ),
        EdgeNeXt => (
            ZooNet::EdgeNeXt(
                EdgeNeXtConfig::new([1, 2, 1, 1], [16, 24, 32, 32], [2, 2, 4, 4])
                    .init(device)
                    .unwrap(),
            ),
            1e-6,
        ),
        RepViT => (
            ZooNet::RepVit(
                RepVitConfig::new([2, 1, 1, 1], [16, 16, 24, 32])
                    .init(device)
                    .unwrap(),
            ),
            0.0,
        ),
        ConvNeXt => (
            ZooNet::ConvNeXt(
                ConvNeXtConfig::new([1, 1, 2, 1], [16, 24, 32, 40])
                    .init(device)
                    .unwrap(),
            ),
            1e-6,
        ),
        ViT => (
            ZooNet::ViT(
                ViTConfig::new()
                    .with_embed_dim(32)
                    .with_depth(2)
                    .with_num_heads(2)
                    .with_stem_hidden(8)
                    .with_img_size([64, 32])
                    .init(device)
                    .unwrap(),
            ),
            0.0,
        ),
        Swin => (
            ZooNet::Swin(
                SwinConfig::new()
                    .with_embed_dim(8)
                    .with_depths([1, 1, 1, 1])
                    .with_num_heads([1, 1, 2, 2])
                    .with_window_size(4)
                    .init(device)
                    .unwrap(),
            ),
            0.0,
        ),
        FastViT => (
            ZooNet::FastVit(
                FastVitConfig::new(
                    [1, 1, 1, 1],
                    [16, 16, 32, 32],
                    [false, false, false, true],
                    [false, false, false, true],
                )
                .with_head_dim(8)
                .init(device)
                .unwrap(),
            ),
            1e-5,
        ),
        Volo => (
            ZooNet::Volo(
                VoloConfig::new([1, 1, 1, 1], [16, 32, 32, 32], [2, 4, 4, 4])
                    .with_img_size([64, 32])
                    .with_stem_hidden_dim(8)
                    .init(device)
                    .unwrap(),
            ),
            0.0,
        ),
    }
}

const FAMILIES: [ZooFamily; 9] = [
    ZooFamily::ResNetIbn,
    ZooFamily::GhostNet,
    ZooFamily::EdgeNeXt,
    ZooFamily::RepViT,
    ZooFamily::ConvNeXt,
    ZooFamily::ViT,
    ZooFamily::Swin,
    ZooFamily::FastViT,
    ZooFamily::Volo,
];

/// Every tensor of every family follows CION's law: per tensor, pooled per
/// law, constants exact.
#[test]
fn every_family_follows_cions_initialisation() {
    let device = Device::flex();
    for family in FAMILIES {
        let (net, layer_scale) = reduced(family, &device);
        let net = net.init_from_scratch(17).unwrap();
        let all = gather(&net);
        let mut pool = Pool::default();
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for t in &all {
            let w = want(family, t, &all, layer_scale);
            check(t, w, &mut pool);
            let kind = match w {
                Want::Exact(_) => "constant",
                Want::Uniform(_) => "torch default",
                Want::Normal(_) => "kaiming normal",
                Want::Trunc => "trunc normal",
            };
            *kinds.entry(format!("{} {kind}", t.owner)).or_default() += 1;
        }
        eprintln!("{}", check_pooled(family, &pool));
        eprintln!("  {kinds:?}");
    }
}

/// The same seed gives bit-identical weights whatever burn's generator drew
/// at construction; another seed changes every random tensor and no
/// constant.
#[test]
fn draws_depend_on_the_seed_alone() {
    let device = Device::flex();
    for family in FAMILIES {
        device.seed(1);
        let a = gather(&reduced(family, &device).0.init_from_scratch(5).unwrap());
        device.seed(2);
        let (b, layer_scale) = reduced(family, &device);
        let c = gather(&b.clone().init_from_scratch(6).unwrap());
        let b = gather(&b.init_from_scratch(5).unwrap());
        assert_eq!(a.len(), b.len());
        for ((ta, tb), tc) in a.iter().zip(&b).zip(&c) {
            let same_bits = |x: &[f32], y: &[f32]| {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
            };
            assert!(same_bits(&ta.values, &tb.values), "{family}: {}", ta.path);
            let constant = matches!(want(family, ta, &a, layer_scale), Want::Exact(_));
            assert_eq!(
                same_bits(&ta.values, &tc.values),
                constant,
                "{family}: {} under another seed",
                ta.path
            );
        }
    }
}

/// Two threads initialising while a third draws from burn's generator get
/// the weights of a sequential run.
#[test]
fn draws_do_not_depend_on_other_threads() {
    let device = Device::flex();
    let values = |net: ZooNet| -> Vec<Vec<f32>> {
        gather(&net.init_from_scratch(23).unwrap())
            .into_iter()
            .map(|t| t.values)
            .collect()
    };
    let sequential = values(reduced(ZooFamily::ViT, &device).0);
    let parallel: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| s.spawn(|| values(reduced(ZooFamily::ViT, &Device::flex()).0)))
            .collect();
        for _ in 0..50 {
            let _ = Tensor::<2>::random([64, 64], Distribution::Default, &device).into_data();
        }
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for p in parallel {
        assert!(p == sequential);
    }
}

/// The zoo entry point: a full-size model by name, seeded; every family's
/// smallest preset is covered by the rules; the folded ResNet and a
/// mismatched family are errors naming the problem.
#[test]
fn zoo_models_initialise_from_scratch_by_name() {
    let device = Device::flex();
    let a = ZooModel::from_scratch("ghostnet_0_5", 9, &device).unwrap();
    let b = ZooModel::from_scratch("ghostnet_0_5", 9, &device).unwrap();
    let (va, vb) = (gather(&a.net), gather(&b.net));
    assert_eq!(va.len(), vb.len());
    assert!(va.iter().zip(&vb).all(|(x, y)| x.values == y.values));
    let mut pool = Pool::default();
    for t in &va {
        check(t, want(ZooFamily::GhostNet, t, &va, 0.0), &mut pool);
    }
    eprintln!("full size {}", check_pooled(ZooFamily::GhostNet, &pool));

    for name in [
        "edgenext_x_small",
        "repvit_m0_9",
        "fastvit_sa12",
        "resnet18_ibn",
        "vit_tiny",
        "swin_tiny",
        "convnext_tiny",
        "volo_d1",
    ] {
        let m = ZooModel::build(name, &device).unwrap();
        let plans = plan(&m.net, m.entry.family).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!plans.is_empty());
    }

    let fused = ZooModel::build("resnet18", &device)
        .unwrap()
        .into_inference();
    let err = fused.init_from_scratch(1).unwrap_err().to_string();
    assert!(err.contains("into_inference"), "{err}");

    let (vit, _) = reduced(ZooFamily::ViT, &device);
    let err = init_from_scratch(vit, ZooFamily::ConvNeXt, 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cls_token") && err.contains("ConvNeXt"),
        "{err}"
    );
}
