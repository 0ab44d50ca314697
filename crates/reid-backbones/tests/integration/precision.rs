//! `Precision::run`: a ResNet computing in `bf16` / `f16` gives the output,
//! the gradients and the BatchNorm running statistics of the exact (`f64`)
//! computation up to the low type's rounding (as amplified by the network,
//! measured with `f32`); the gradients land on the `f32` parameters and
//! the running statistics stay `f32`.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData};
use reid_backbones::norm::Norm;
use reid_backbones::{Arch, Backbone, Precision, ResNet};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// `‖a − b‖∞ / ‖b‖∞`.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

fn stem_running_mean(m: &ResNet) -> Tensor<1> {
    match &m.bn1 {
        Norm::Batch(bn) => bn.running_mean.value_sync(),
        other => panic!("expected a BatchNorm stem, got {other:?}"),
    }
}

/// Every parameter gradient of `m` in `grads`, flattened in visiting order.
fn all_grads(m: &ResNet, grads: &burn::tensor::Gradients) -> Vec<f32> {
    struct G<'a>(&'a burn::tensor::Gradients, Vec<f32>);
    impl ModuleVisitor for G<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = p.val().grad(self.0) {
                assert_eq!(g.dtype(), DType::F32, "gradients arrive in f32");
                self.1.extend(values(g));
            }
        }
    }
    let mut g = G(grads, Vec::new());
    m.visit(&mut g);
    g.1
}

/// A copy of `m` whose parameters are tracked casts to `dtype` (the f64
/// reference computation).
fn cast_copy(m: &ResNet, dtype: FloatDType) -> ResNet {
    struct C(FloatDType);
    impl ModuleMapper for C {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let d = self.0;
            p.map(|t| t.cast(d))
        }
    }
    m.clone().map(&mut C(dtype))
}

/// `m` with every convolution weight (`[out, in, kh, kw]`) redrawn from a
/// fixed sequence, `U(±1/√fan_in)` (burn's initial draw is unseeded); the
/// BatchNorm parameters keep their deterministic γ = 1, β = 0.
fn fixed_weights(m: ResNet) -> ResNet {
    struct W(u64);
    impl ModuleMapper for W {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if D != 4 {
                return p;
            }
            p.map(|t| {
                let shape = t.shape();
                let dims: [usize; D] = t.dims();
                let fan_in = (dims[1] * dims[2] * dims[3]) as f32;
                let bound = 1.0 / fan_in.sqrt();
                let v: Vec<f32> = (0..shape.num_elements())
                    .map(|_| {
                        // SplitMix64.
                        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        let mut z = self.0;
                        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                        z ^= z >> 31;
                        ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * bound
                    })
                    .collect();
                let device = t.device();
                Tensor::from_data(TensorData::new(v, shape), &device).require_grad()
            })
        }
    }
    m.map(&mut W(7))
}

#[test]
fn low_precision_forward_and_backward_follow_f32() {
    let device = Device::flex().autodiff();
    let model = Arch::from_name("resnet18")
        .unwrap()
        .config()
        .with_base_width(8)
        .init(&device)
        .unwrap();
    let model = fixed_weights(model).train();
    let n = 8 * 3 * 64 * 32;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [8, 3, 64, 32]), &device);

    // Output, every gradient of `sum(out²)` and the stem's running mean
    // after one forward pass, each run on its own copy (`train()` gives it
    // running statistics of its own; clones share them).
    let run = |p: Option<Precision>| {
        let m = model.clone().train();
        let out = match p {
            Some(p) => p.run(&m, x.clone(), |b, x| b.forward_pooled(x)),
            // f64 reference.
            None => cast_copy(&m, FloatDType::F64)
                .forward_pooled(x.clone().cast(FloatDType::F64))
                .cast(FloatDType::F32),
        };
        assert_eq!(out.dtype(), DType::F32, "output in f32");
        let grads = out.clone().powi_scalar(2).sum().backward();
        let g = all_grads(&m, &grads);
        assert!(m.conv1.weight.val().dtype() == DType::F32);
        let rm = stem_running_mean(&m);
        if p.is_some() {
            assert_eq!(rm.dtype(), DType::F32, "running mean back in f32");
        }
        (values(out), g, values(rm.cast(FloatDType::F32)))
    };
    let (out64, g64, rm64) = run(None);
    let (out32, g32, rm32) = run(Some(Precision::F32));
    let rm0 = values(stem_running_mean(&model.clone().train()));
    assert_ne!(rm32, rm0, "the forward pass moved the running mean");
    // The f32 run against the f64 one measures how much this network
    // amplifies rounding (BatchNorm over small batches cancels a lot); a
    // low-precision run must stay within 10x of that amplification times
    // its type's unit roundoff.
    let u32 = f32::EPSILON / 2.0;
    let amplification = [
        rel_err(&out32, &out64) / u32,
        rel_err(&g32, &g64) / u32,
        rel_err(&rm32, &rm64) / u32,
    ]
    .map(|k| k.max(1.0));
    for (p, u) in [
        (Precision::Bf16, 2f32.powi(-8)),
        (Precision::F16, 2f32.powi(-11)),
    ] {
        let (out, g, rm) = run(Some(p));
        let errs = [
            rel_err(&out, &out64),
            rel_err(&g, &g64),
            rel_err(&rm, &rm64),
        ];
        eprintln!(
            "{p}: errors (output, gradients, running mean) {:?}, amplification {amplification:.0?}",
            errs.map(|e| format!("{e:.1e}"))
        );
        for ((what, e), k) in ["output", "gradients", "running mean"]
            .iter()
            .zip(errs)
            .zip(amplification)
        {
            assert!(
                e <= 10.0 * k * u && e < 1.0,
                "{p} {what}: error {e:.2e}, amplification {k:.0}, unit roundoff {u:.1e}"
            );
        }
    }
    // f32 is the plain call.
    let m = model.clone().train();
    assert_eq!(values(m.forward_pooled(x.clone())), out32);
}

#[test]
fn precision_check_accepts_what_flex_computes() {
    for p in [Precision::F32, Precision::F16, Precision::Bf16] {
        p.check(&Device::flex()).unwrap();
    }
}
