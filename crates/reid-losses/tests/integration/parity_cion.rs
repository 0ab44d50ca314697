//! Parity of the CION objectives with the PyTorch references of
//! `tools/fixtures/gen_cion_loss_fixtures.py` (`tests/fixtures/losses/cion.json`):
//! DINO head forward/backward, identity-guided DINO loss and its gradient
//! (K = 1, 2, 3), center update, schedules, teacher EMA, per-tensor gradient
//! clipping and fast-reid adaptive label smoothing; plus the input checks.
//! Tolerance: 1e-5 absolute (schedules 1e-12).

use crate::common;

use common::{
    TOL, assert_grad_matches_torch, assert_invalid_parameter, assert_loss_matches_torch, fixture,
    floats, max_diff, usizes,
};

use burn::module::{Module, Param, ParamId};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use reid_losses::schedule::{CLIP_EPSILON, cion_instances};
use reid_losses::{
    CION_OUT_DIM, CrossEntropyConfig, DinoCenter, DinoHead, DinoHeadConfig, DinoLossConfig,
    LossError, SmoothingConvention, WeightNormLinear, clip_gradients_per_param, cosine_schedule,
    cross_entropy_adaptive_smooth, cross_entropy_label_smooth, dino_loss, ema_update,
    identity_guided_dino_loss, schedule_at, teacher_momentum_schedule,
};
use serde_json::Value;

fn tensor2(data: &Value, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(floats(data), shape), device)
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.to_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    let worst = max_diff(got, want);
    assert!(worst <= TOL, "{what}: max |rust − torch| = {worst}");
}

fn param_shape(p: &Value) -> [usize; 2] {
    let s = usizes(&p["shape"]);
    match s.as_slice() {
        [a, b] => [*a, *b],
        [a] => [1, *a],
        _ => panic!("bad shape"),
    }
}

/// Builds the fixture's head (PyTorch `[out, in]` weights) on `device`.
fn load_head(params: &Value, device: &Device) -> DinoHead {
    let dims = &fixture("cion.json")["head"]["dims"];
    let mut head = DinoHeadConfig::new(dims["in_dim"].as_u64().unwrap() as usize)
        .with_hidden_dim(dims["hidden"].as_u64().unwrap() as usize)
        .with_bottleneck_dim(dims["bottleneck"].as_u64().unwrap() as usize)
        .with_out_dim(dims["out_dim"].as_u64().unwrap() as usize)
        .init(device)
        .unwrap();
    for (i, layer) in head.mlp.iter_mut().enumerate() {
        let w = &params[format!("mlp.{i}.weight")];
        let b = &params[format!("mlp.{i}.bias")];
        let weight = tensor2(&w["data"], param_shape(w), device).transpose();
        let [_, n] = param_shape(b);
        *layer = Linear {
            weight: Param::from_tensor(weight),
            bias: Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(floats(&b["data"]), [n]),
                device,
            ))),
        };
    }
    let g = &params["last_layer.weight_g"];
    let v = &params["last_layer.weight_v"];
    head.last_layer = WeightNormLinear::new(
        tensor2(&g["data"], param_shape(g), device),
        tensor2(&v["data"], param_shape(v), device),
    );
    head
}

/// The fixture's `{name: {shape, data}}` map with the data replaced by `data[name]`.
fn with_data(params: &Value, data: &Value) -> Value {
    let mut out = params.clone();
    for (name, p) in out.as_object_mut().unwrap() {
        p["data"] = data[name].clone();
    }
    out
}

/// (PyTorch name, id, whether burn stores it transposed) of every head parameter.
fn named_params(head: &DinoHead) -> Vec<(String, ParamId, bool)> {
    let mut out = Vec::new();
    for (i, layer) in head.mlp.iter().enumerate() {
        out.push((format!("mlp.{i}.weight"), layer.weight.id, true));
        out.push((
            format!("mlp.{i}.bias"),
            layer.bias.as_ref().unwrap().id,
            false,
        ));
    }
    out.push((
        "last_layer.weight_g".into(),
        head.last_layer.weight_g.id,
        false,
    ));
    out.push((
        "last_layer.weight_v".into(),
        head.last_layer.weight_v.id,
        false,
    ));
    out
}

/// The gradient of parameter `name` (`id`) in `grads`, in torch's layout:
/// biases as one row, `transposed` weights transposed back.
fn torch_layout(grads: &GradientsParams, name: &str, id: ParamId, transposed: bool) -> Vec<f32> {
    if name.ends_with("bias") {
        values(grads.get::<1>(id).unwrap().reshape([1, -1]))
    } else if transposed {
        values(grads.get::<2>(id).unwrap().transpose())
    } else {
        values(grads.get::<2>(id).unwrap())
    }
}

/// A head parameter's values in PyTorch layout.
fn head_param(head: &DinoHead, name: &str) -> Vec<f32> {
    if let Some(rest) = name.strip_prefix("mlp.") {
        let (i, field) = rest.split_once('.').unwrap();
        let layer = &head.mlp[i.parse::<usize>().unwrap()];
        return match field {
            "weight" => values(layer.weight.val().transpose()),
            _ => values(layer.bias.as_ref().unwrap().val().reshape([1, -1])),
        };
    }
    match name {
        "last_layer.weight_g" => values(head.last_layer.weight_g.val()),
        _ => values(head.last_layer.weight_v.val()),
    }
}

#[test]
fn dino_head_forward_and_backward_match_torch() {
    let fx = fixture("cion.json");
    let h = &fx["head"];
    let device = common::device().autodiff();
    let head = load_head(&h["params"], &device);
    let x = tensor2(&h["input"], [5, 8], &device).require_grad();
    let y = head.forward(x.clone()).unwrap();
    assert_eq!(y.dims(), [5, 12]);
    assert_close("head output", &values(y.clone()), &floats(&h["output"]));

    let probe = tensor2(&h["probe"], [5, 12], &device);
    let grads = y.mul(probe).sum().backward();
    assert_close(
        "head input grad",
        &values(x.grad(&grads).unwrap()),
        &floats(&h["input_grad"]),
    );
    let grads = GradientsParams::from_grads(grads, &head);
    assert!(
        grads.get::<2>(head.last_layer.weight_g.id).is_none(),
        "weight_g is frozen"
    );
    for (name, id, transposed) in named_params(&head) {
        let Some(want) = h["grads"].get(&name) else {
            continue;
        };
        let got = torch_layout(&grads, &name, id, transposed);
        assert_close(&format!("grad {name}"), &got, &floats(want));
    }
}

#[test]
fn dino_head_init_and_last_layer_helpers() {
    let device = common::device().autodiff();
    let config = DinoHeadConfig::new(6)
        .with_hidden_dim(10)
        .with_bottleneck_dim(4)
        .with_out_dim(7);
    assert_eq!(DinoHeadConfig::new(2048).out_dim, CION_OUT_DIM);
    assert_eq!(CION_OUT_DIM, 65336);
    let head = config.init(&device).unwrap();
    assert_eq!((head.in_dim(), head.out_dim(), head.mlp.len()), (6, 7, 3));
    let bias = values(head.mlp[0].bias.as_ref().unwrap().val().reshape([1, -1]));
    assert!(bias.iter().all(|&b| b == 0.0));
    assert!(
        values(head.last_layer.weight_g.val())
            .iter()
            .all(|&g| g == 1.0)
    );
    // The effective last-layer rows have unit norm (g = 1).
    let w = values(head.last_layer.weight());
    for row in w.chunks(4) {
        let n: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "row norm {n}");
    }
    // V ~ U(−1/√4, 1/√4).
    assert!(
        values(head.last_layer.weight_v.val())
            .iter()
            .all(|v| v.abs() <= 0.5)
    );
    let x = Tensor::<2>::ones([3, 6], &device);
    let out = head.forward(x.clone()).unwrap();
    let mut grads = GradientsParams::from_grads(out.sum().backward(), &head);
    assert!(grads.get::<2>(head.last_layer.weight_v.id).is_some());
    head.cancel_last_layer_gradients(&mut grads);
    assert!(grads.get::<2>(head.last_layer.weight_v.id).is_none());
    assert!(grads.get::<2>(head.mlp[0].weight.id).is_some());
    assert_eq!(head.last_layer_param_ids().len(), 2);

    // One-layer MLP and errors.
    let one = config.clone().with_nlayers(1).init(&device).unwrap();
    assert_eq!(one.mlp.len(), 1);
    assert_eq!(one.forward(x).unwrap().dims(), [3, 7]);
    let err = head
        .forward(Tensor::<2>::ones([3, 5], &device))
        .unwrap_err();
    assert!(matches!(err, LossError::InvalidShape { what: "input", .. }));
    let err = config.with_nlayers(0).init(&device).unwrap_err();
    assert_invalid_parameter(&err, "nlayers");
}

struct LossInputs {
    student: Tensor<2>,
    teacher: Tensor<2>,
    center: Tensor<2>,
    config: DinoLossConfig,
}

fn loss_inputs(fx: &Value, device: &Device) -> LossInputs {
    let l = &fx["loss"];
    let b = l["batch"].as_u64().unwrap() as usize;
    let v = l["n_crops"].as_u64().unwrap() as usize;
    let d = l["dim"].as_u64().unwrap() as usize;
    LossInputs {
        student: tensor2(&l["student"], [v * b, d], device),
        teacher: tensor2(&l["teacher"], [2 * b, d], device),
        center: tensor2(&l["center"], [1, d], device),
        config: DinoLossConfig::default()
            .with_n_crops(v)
            .with_student_temp(l["student_temp"].as_f64().unwrap())
            .with_teacher_temp(l["teacher_temp"].as_f64().unwrap())
            .with_sinkhorn_iterations(0),
    }
}

#[test]
fn identity_guided_loss_matches_torch() {
    let fx = fixture("cion.json");
    let device = common::device().autodiff();
    let mut seen = 0;
    for case in fx["loss"]["cases"].as_array().unwrap() {
        let k = case["instances"].as_u64().unwrap() as usize;
        let inp = loss_inputs(&fx, &device);
        let student = inp.student.require_grad();
        let teacher = inp.teacher.require_grad();
        let loss =
            identity_guided_dino_loss(student.clone(), teacher.clone(), inp.center, k, &inp.config)
                .unwrap();
        assert_eq!(loss.dims(), [1]);
        assert_loss_matches_torch(&format!("K={k}"), &loss, &case["loss"]);
        let grads = loss.backward();
        assert_grad_matches_torch(
            &format!("K={k} student grad"),
            &student,
            &grads,
            &case["grad"],
        );
        assert!(
            teacher.grad(&grads).is_none(),
            "no gradient reaches the teacher"
        );
        seen += 1;
    }
    assert_eq!(seen, 3);
}

#[test]
fn k1_is_plain_dino() {
    let fx = fixture("cion.json");
    let device = common::device();
    let inp = loss_inputs(&fx, &device);
    let a: f32 = dino_loss(
        inp.student.clone(),
        inp.teacher.clone(),
        inp.center.clone(),
        &inp.config,
    )
    .unwrap()
    .into_scalar();
    let b: f32 = identity_guided_dino_loss(inp.student, inp.teacher, inp.center, 1, &inp.config)
        .unwrap()
        .into_scalar();
    assert_eq!(a, b);
    let want = fx["loss"]["cases"][0]["loss"].as_f64().unwrap() as f32;
    assert!((a - want).abs() <= TOL);
}

#[test]
fn center_update_matches_torch() {
    let fx = fixture("cion.json");
    let device = common::device();
    let inp = loss_inputs(&fx, &device);
    let mut center = DinoCenter::from_tensor(inp.center, 0.9).unwrap();
    center.update(inp.teacher).unwrap();
    assert_close(
        "center",
        &values(center.value()),
        &floats(&fx["loss"]["center_after"]),
    );
    let zero = DinoCenter::new(16, &device);
    assert_eq!((zero.dim(), zero.momentum()), (16, 0.9));
    let mut c = zero.clone();
    let err = c.update(Tensor::<2>::ones([3, 15], &device)).unwrap_err();
    assert!(matches!(err, LossError::InvalidShape { .. }));
    assert!(zero.with_momentum(1.5).is_err());
}

#[test]
fn loss_input_errors() {
    let fx = fixture("cion.json");
    let device = common::device();
    let inp = loss_inputs(&fx, &device);
    let run = |student: Tensor<2>, teacher: Tensor<2>, center: Tensor<2>, k, config| {
        identity_guided_dino_loss(student, teacher, center, k, &config).unwrap_err()
    };
    let (s, t, c) = (
        || inp.student.clone(),
        || inp.teacher.clone(),
        || inp.center.clone(),
    );
    // (student, teacher, center, K, config, the input the error names).
    let shape_cases = [
        // B = 6 is not divisible by K = 4.
        (s(), t(), c(), 4, inp.config, Some("teacher")),
        (s(), t(), c(), 0, inp.config, None),
        // Crop count inconsistent with the student rows.
        (
            s(),
            t(),
            c(),
            2,
            inp.config.with_n_crops(5),
            Some("student"),
        ),
        // Odd teacher rows.
        (
            s(),
            t().narrow(0, 0, 11),
            c(),
            1,
            inp.config,
            Some("teacher"),
        ),
        // Center width.
        (
            s(),
            t(),
            Tensor::zeros([1, 15], &device),
            1,
            inp.config,
            Some("center"),
        ),
    ];
    for (student, teacher, center, k, config, want) in shape_cases {
        match run(student, teacher, center, k, config) {
            LossError::InvalidShape { what, .. } => {
                if let Some(want) = want {
                    assert_eq!(what, want);
                }
            }
            other => panic!("expected InvalidShape, got {other}"),
        }
    }
    for (student_temp, teacher_temp) in [(0.0, 0.04), (0.1, -0.04), (f64::NAN, 0.04)] {
        let config = inp
            .config
            .with_student_temp(student_temp)
            .with_teacher_temp(teacher_temp);
        let err = run(
            inp.student.clone(),
            inp.teacher.clone(),
            inp.center.clone(),
            1,
            config,
        );
        assert!(matches!(err, LossError::InvalidParameter { .. }), "{err}");
    }
    let config = inp.config.with_n_crops(1);
    let err = run(
        inp.student.narrow(0, 0, 6),
        inp.teacher,
        inp.center,
        1,
        config,
    );
    assert_invalid_parameter(&err, "n_crops");
}

#[test]
fn schedules_match_numpy() {
    let fx = fixture("cion.json");
    for case in fx["schedules"].as_array().unwrap() {
        let a = case["args"].as_array().unwrap();
        let f = |i: usize| a[i].as_f64().unwrap();
        let u = |i: usize| a[i].as_u64().unwrap() as usize;
        let got = cosine_schedule(f(0), f(1), u(2), u(3), u(4), f(5)).unwrap();
        let want: Vec<f64> = case["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), want.len(), "{}", case["name"]);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-12, "{}: {g} vs {w}", case["name"]);
        }
        if case["name"] == "momentum" {
            assert_eq!(teacher_momentum_schedule(f(0), u(2), u(3)).unwrap(), got);
        }
    }
    assert!(cosine_schedule(1.0, 0.0, 2, 3, 3, 0.0).is_err());
    assert!(cosine_schedule(1.0, 0.0, 0, 3, 0, 0.0).is_err());
    assert!(cosine_schedule(f64::INFINITY, 0.0, 1, 3, 0, 0.0).is_err());
    assert_eq!(schedule_at(&[1.0, 2.0], 1), Some(2.0));
    assert_eq!(schedule_at(&[1.0, 2.0], 7), Some(2.0));
    assert_eq!(schedule_at(&[], 0), None);
    let ks: Vec<_> = [0, 39, 40, 59, 60, 79, 80, 99, 100]
        .into_iter()
        .map(cion_instances)
        .collect();
    assert_eq!(
        ks,
        [
            Some(2),
            Some(2),
            Some(4),
            Some(4),
            Some(6),
            Some(6),
            Some(8),
            Some(8),
            None
        ]
    );
}

#[test]
fn ema_matches_torch() {
    let fx = fixture("cion.json");
    let device = common::device();
    let params = &fx["head"]["params"];
    let mut teacher = load_head(params, &device);
    let student = load_head(&with_data(params, &fx["ema"]["student"]), &device);
    let m = fx["ema"]["momentum"].as_f64().unwrap();
    ema_update(&mut teacher, &student, m).unwrap();
    for (name, _, _) in named_params(&teacher) {
        let want = floats(&fx["ema"]["result"][&name]);
        assert_close(&format!("ema {name}"), &head_param(&teacher, &name), &want);
    }
    // Mismatched structures are rejected and leave the teacher unchanged.
    let other = DinoHeadConfig::new(8)
        .with_hidden_dim(16)
        .with_bottleneck_dim(8)
        .with_out_dim(13)
        .init(&device)
        .unwrap();
    let before = head_param(&teacher, "last_layer.weight_v");
    let err = ema_update(&mut teacher, &other, m).unwrap_err();
    assert!(matches!(err, LossError::ModuleMismatch { .. }));
    assert_eq!(head_param(&teacher, "last_layer.weight_v"), before);
    assert!(ema_update(&mut teacher, &student, 1.5).is_err());
}

#[derive(Module, Debug)]
struct WithNorm {
    fc: Linear,
    bn: BatchNorm,
}

#[test]
fn ema_leaves_batch_norm_statistics_alone() {
    let device = common::device().autodiff();
    let make = || WithNorm {
        fc: LinearConfig::new(3, 4).init(&device),
        bn: BatchNormConfig::new(4).init(&device),
    };
    let mut teacher = make().no_grad();
    let student = make();
    // Train-mode forwards give the two BNs different running statistics.
    let _ = teacher
        .bn
        .forward(Tensor::<2>::ones([5, 4], &device).reshape([5, 4, 1]));
    let _ = student.bn.forward(Tensor::<3>::random(
        [5, 4, 1],
        burn::tensor::Distribution::Normal(3.0, 2.0),
        &device,
    ));
    let t_mean = teacher.bn.running_mean.value().into_data();
    let t_var = teacher.bn.running_var.value().into_data();
    let (t_w, s_w) = (
        values(teacher.fc.weight.val()),
        values(student.fc.weight.val()),
    );
    ema_update(&mut teacher, &student, 0.5).unwrap();
    assert_eq!(teacher.bn.running_mean.value().into_data(), t_mean);
    assert_eq!(teacher.bn.running_var.value().into_data(), t_var);
    let want: Vec<f32> = t_w
        .iter()
        .zip(&s_w)
        .map(|(t, s)| 0.5 * t + 0.5 * s)
        .collect();
    assert_close("ema fc", &values(teacher.fc.weight.val()), &want);
    assert!(!teacher.fc.weight.val().is_require_grad());
}

#[test]
fn per_param_clipping_matches_torch() {
    let fx = fixture("cion.json");
    let c = &fx["clip"];
    let device = common::device();
    let head = load_head(&fx["head"]["params"], &device);
    let mut grads = GradientsParams::new();
    let shapes = &fx["head"]["params"];
    let mut registered = 0;
    for (name, id, transposed) in named_params(&head) {
        let Some(raw) = c["raw"].get(&name) else {
            continue;
        };
        let shape = param_shape(&shapes[&name]);
        let g = tensor2(raw, shape, &device);
        if name.ends_with("bias") {
            grads.register::<1>(id, g.reshape([shape[1]]));
        } else if transposed {
            grads.register::<2>(id, g.transpose());
        } else {
            grads.register::<2>(id, g);
        }
        registered += 1;
    }
    let max_norm = c["max_norm"].as_f64().unwrap();
    let clipped = clip_gradients_per_param(&head, grads, max_norm).unwrap();
    assert_eq!(clipped.len(), registered);
    for (name, id, transposed) in named_params(&head) {
        let Some(want) = c["clipped"].get(&name) else {
            assert!(clipped.get::<2>(id).is_none());
            continue;
        };
        let got = torch_layout(&clipped, &name, id, transposed);
        assert_close(&format!("clipped {name}"), &got, &floats(want));
        // Every clipped tensor ends at norm c·‖g‖/(‖g‖+ε) ≤ c.
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(norm <= (max_norm + CLIP_EPSILON) as f32 * (1.0 + 1e-6));
    }
    assert!(clip_gradients_per_param(&head, GradientsParams::new(), 0.0).is_err());
}

#[test]
fn adaptive_smoothing_matches_torch() {
    let fx = fixture("cion.json");
    let a = &fx["adaptive_ce"];
    let device = common::device().autodiff();
    let labels: Vec<i64> = a["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    let n = labels.len();
    for case in a["cases"].as_array().unwrap() {
        let alpha = case["alpha"].as_f64().unwrap();
        let dnz = case["divide_by_nonzero"].as_bool().unwrap();
        let logits = tensor2(&a["logits"], [8, 5], &device).require_grad();
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [n]), &device);
        let loss = if alpha == 0.2 && dnz {
            let config = CrossEntropyConfig::fast_reid_adaptive();
            assert_eq!(config.epsilon, -1.0);
            cross_entropy_label_smooth(logits.clone(), y, &config).unwrap()
        } else {
            cross_entropy_adaptive_smooth(logits.clone(), y, alpha, dnz).unwrap()
        };
        assert_loss_matches_torch(&format!("α={alpha}"), &loss, &case["loss"]);
        let grads = loss.backward();
        assert_grad_matches_torch(
            &format!("adaptive CE α={alpha} grad"),
            &logits,
            &grads,
            &case["grad"],
        );
    }
    // ε = −1 is only meaningful in the fast-reid convention; other negatives are errors.
    let logits = Tensor::<2>::zeros([2, 3], &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1], [2]), &device);
    for config in [
        CrossEntropyConfig::default()
            .with_epsilon(-1.0)
            .with_convention(SmoothingConvention::Torchreid)
            .with_divide_by_nonzero(true),
        CrossEntropyConfig::fast_reid().with_epsilon(-0.5),
    ] {
        let err = cross_entropy_label_smooth(logits.clone(), y.clone(), &config).unwrap_err();
        assert_invalid_parameter(&err, "epsilon");
    }
    let err = cross_entropy_adaptive_smooth(logits, y, 1.5, true).unwrap_err();
    assert_invalid_parameter(&err, "alpha");
}
