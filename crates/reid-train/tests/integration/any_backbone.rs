//! Every recipe trains any `TrainBackbone`, not only the ResNet its
//! configuration names: tiny ViT, ConvNeXt, GhostNet and RepViT trunks,
//! bare and inside `ZooNet`, go through CION, MoCo, PNL and BoT fine-tuning;
//! their weights move, the heads sit on the family's pooled feature, and a
//! CION run on a `ZooNet` resumes bit-exactly from its checkpoint.

use crate::common;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use common::{
    Outcome, assert_resume_is_exact, pattern_input, stopping, tiny_cion, tiny_contrast,
    tiny_records,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reid_backbones::{
    Backbone, ConvNeXtConfig, GhostNetConfig, RepVitConfig, ViT, ViTConfig, ZooNet,
};
use reid_data::batch::TestTransform;
use reid_data::sampler_identity::KSchedule;
use reid_train::pretrain::moco::MocoConfig;
use reid_train::{
    CionConfig, FinetuneConfig, PnlConfig, RunOptions, Warmup, evaluate_model, finetune,
    pretrain_cion, pretrain_moco, pretrain_pnl,
};

/// All float tensors of a module, concatenated in visit order.
struct Values(Vec<f32>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0
            .extend(param.val().into_data().try_to_vec::<f32>().unwrap());
    }
}

/// All float tensors of `m` (BatchNorm running statistics included, with
/// burn's lazily applied updates folded in first by `valid()`).
fn values<M: Module>(m: &M) -> Vec<f32> {
    let _ = m.valid();
    let mut v = Values(Vec::new());
    m.visit(&mut v);
    v.0
}

fn max_change(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A 1-block ViT for 64×32 inputs (4×2 patches of 16), width 16.
fn tiny_vit(device: &Device) -> ViT {
    ViTConfig::new()
        .with_embed_dim(16)
        .with_depth(1)
        .with_num_heads(2)
        .with_stem_hidden(4)
        .with_img_size([64, 32])
        .init(device)
        .unwrap()
}

/// A 3-block ViT for 64×32 inputs with stochastic depth at rate 0.5.
fn drop_path_vit(device: &Device) -> ViT {
    ViTConfig::new()
        .with_embed_dim(16)
        .with_depth(3)
        .with_num_heads(2)
        .with_stem_hidden(4)
        .with_img_size([64, 32])
        .with_drop_path_rate(0.5)
        .init(device)
        .unwrap()
}

/// The shared tiny CION recipe at K = 2 (its `arch` and `base_width` are
/// unused: the backbone is given).
fn cion_config(epochs: usize, steps: usize) -> CionConfig {
    tiny_cion(epochs, steps).with_k_schedule(KSchedule::constant(2))
}

#[test]
fn cion_trains_a_vit_on_its_class_token() {
    let (dir, recs) = tiny_records("any-cion-vit");
    let device = Device::flex();
    let vit = tiny_vit(&device);
    assert_eq!(vit.pooled_dim(), 16);
    let before = values(&vit);
    let plain = RunOptions::default();
    let out = pretrain_cion(&cion_config(1, 2), vit, &recs, &device, &plain, |_| {}).unwrap();
    assert_eq!(out.steps_done, 2);
    assert!(out.log.iter().all(|l| l.get("loss").unwrap().is_finite()));
    // The DINO head reads the 16-wide class token.
    assert_eq!(out.student.head.mlp[0].weight.val().dims()[0], 16);
    let moved = max_change(&before, &values(&out.student.backbone));
    assert!(moved > 0.0, "the ViT was not trained");
    // The teacher is an EMA copy with its own parameters, not the student.
    let t = values(&out.teacher.backbone);
    assert!(max_change(&t, &values(&out.student.backbone)) > 0.0);
    std::fs::remove_dir_all(dir).ok();
}

/// CION with each batch sharded over two device handles (data parallelism,
/// identity groups kept whole) follows the single-device run: the same
/// losses and weights up to float rounding, as ConvNeXt (LayerNorm) and the
/// DINO head have no batch-coupled layer. (With BatchNorm — ResNet, the ViT's
/// ICS stem — each device normalises its own shard, as in PyTorch DDP
/// without SyncBatchNorm, and the runs differ.)
#[test]
fn cion_data_parallel_matches_one_device() {
    let (dir, recs) = tiny_records("any-cion-dp");
    let device = Device::flex();
    let vit = ConvNeXtConfig::new([1, 1, 1, 1], [4, 6, 8, 10])
        .init(&device)
        .unwrap();
    let before = values(&vit);
    let cfg = cion_config(1, 3).with_local_size([64, 32]);
    let plain = RunOptions::default();
    let one = pretrain_cion(&cfg, vit.clone(), &recs, &device, &plain, |_| {}).unwrap();
    let run = RunOptions::default().with_devices(vec![device.clone(), device.clone()]);
    let two = pretrain_cion(&cfg, vit, &recs, &device, &run, |_| {}).unwrap();
    assert_eq!(one.steps_done, 3);
    assert_eq!(two.steps_done, 3);
    for (a, b) in one.log.iter().zip(&two.log) {
        let (a, b) = (a.get("loss").unwrap(), b.get("loss").unwrap());
        assert!((a - b).abs() <= 1e-5 * a.abs(), "losses {a} vs {b}");
    }
    let (w1, w2) = (values(&one.student.backbone), values(&two.student.backbone));
    assert!(max_change(&before, &w1) > 1e-4, "the ViT was not trained");
    let diff = max_change(&w1, &w2);
    assert!(diff < 1e-5, "data-parallel weights differ by {diff}");
    let t = max_change(
        &values(&one.teacher.backbone),
        &values(&two.teacher.backbone),
    );
    assert!(t < 1e-5, "teachers differ by {t}");
    std::fs::remove_dir_all(dir).ok();
}

/// A ConvNeXt trunk small enough for 64×32 crops (LayerNorm only: no
/// layer couples the rows of a batch).
fn tiny_convnext(device: &Device) -> reid_backbones::ConvNeXt {
    let trunk = ConvNeXtConfig::new([1, 1, 1, 1], [4, 6, 8, 10])
        .init(device)
        .unwrap();
    trunk.map(&mut Redraw(ChaCha8Rng::seed_from_u64(7)))
}

/// Redraws every randomly initialised float tensor from its own seeded
/// stream, so that a test's weights do not depend on burn's process-wide
/// RNG (which tests running in parallel share): weights (rank ≥ 2)
/// uniform in ±1/√fan_in, non-constant vectors (biases) in ±0.1; constant
/// tensors (norm scales and shifts, layer scales) are kept.
struct Redraw(ChaCha8Rng);

impl ModuleMapper for Redraw {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, old, mapper) = param.consume();
        let dims = old.dims();
        let v = old.clone().into_data().try_to_vec::<f32>().unwrap();
        if v.windows(2).all(|w| w[0] == w[1]) {
            return Param::from_mapped_value(id, old, mapper);
        }
        let bound = if D >= 2 {
            1.0 / ((v.len() / dims[0]) as f32).sqrt()
        } else {
            0.1
        };
        let new: Vec<f32> = v
            .iter()
            .map(|_| self.0.random_range(-bound..bound))
            .collect();
        let value = Tensor::from_data(TensorData::new(new, dims), &old.device());
        Param::from_mapped_value(id, value, mapper)
    }
}

/// The data-parallel MoCo and PNL runs' settings (their setters are named
/// alike): 64×32 views, 6-image batches in 3 shuffle-BN groups, a 16-wide
/// hidden layer, 8-dimensional keys, a queue of 10.
macro_rules! dp_contrast {
    ($cfg:expr) => {
        $cfg.with_size([64, 32])
            .with_batch_size(6)
            .with_bn_groups(3)
            .with_mlp_hidden_dim(16)
            .with_dim(8)
            .with_queue_size(10)
    };
}

/// PNL on 6-image batches over 2 epochs of 2 steps, with label correction
/// and the prototype loss from epoch 1.
fn dp_pnl(seed: u64) -> PnlConfig {
    dp_contrast!(PnlConfig::default())
        .with_epochs(2)
        .with_max_steps_per_epoch(Some(2))
        .with_cls_dim(8)
        .with_start_clean_epoch(1)
        .with_start_proto_epoch(1)
        .with_seed(seed)
}

/// BoT at 64×32, P×K 4×2, `epochs` of 2 iterations at a constant rate
/// (fast-reid's default warm-up and seed; the backbone is given).
fn tiny_bot(epochs: usize) -> FinetuneConfig {
    let defaults = FinetuneConfig::default();
    common::tiny_bot(epochs, 2)
        .with_k(2)
        .with_warmup(defaults.warmup)
        .with_seed(defaults.seed)
}

fn assert_same_losses(one: &[reid_train::LogLine], two: &[reid_train::LogLine], names: &[&str]) {
    assert_eq!(one.len(), two.len());
    for (a, b) in one.iter().zip(two) {
        for name in names {
            let (x, y) = (a.get(name).unwrap(), b.get(name).unwrap());
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1e-3),
                "step {}: {name} {x} vs {y}",
                a.step
            );
        }
    }
}

/// MoCo and PNL with each batch sharded over two device handles follow the
/// single-device runs: shuffle-BN's groups spread over the devices give the
/// same keys, each device's queries meet the same queue (and, for PNL, the
/// same prototypes; label correction and the prototype loss are on from the
/// start), and the queue and the bank are updated in batch order. ConvNeXt
/// and the projections have no batch-coupled layer, so losses and weights
/// agree to float rounding.
#[test]
fn moco_and_pnl_data_parallel_match_one_device() {
    let (dir, recs) = tiny_records("any-moco-pnl-dp");
    let device = Device::flex();
    let trunk = tiny_convnext(&device);
    let before = values(&trunk);
    let two = RunOptions::default().with_devices(vec![device.clone(), device.clone()]);
    let moco = dp_contrast!(MocoConfig::default())
        .with_epochs(1)
        .with_max_steps_per_epoch(Some(3))
        .with_lr(0.05)
        .with_seed(3);
    let plain = RunOptions::default();
    let a = pretrain_moco(&moco, trunk.clone(), &recs, &device, &plain, |_| {}).unwrap();
    let b = pretrain_moco(&moco, trunk.clone(), &recs, &device, &two, |_| {}).unwrap();
    assert_eq!((a.steps_done, b.steps_done), (3, 3));
    assert_same_losses(&a.log, &b.log, &["loss"]);
    let w = values(&a.query.backbone);
    assert!(max_change(&before, &w) > 1e-4, "MoCo did not train");
    let diff = max_change(&w, &values(&b.query.backbone));
    assert!(diff < 1e-5, "MoCo data-parallel weights differ by {diff}");
    let diff = max_change(&values(&a.key), &values(&b.key));
    assert!(diff < 1e-5, "MoCo key encoders differ by {diff}");

    let pnl = dp_pnl(4).with_start_supcont_epoch(0).with_threshold(0.0);
    let a = pretrain_pnl(&pnl, trunk.clone(), &recs, &device, &plain, |_| {}).unwrap();
    let b = pretrain_pnl(&pnl, trunk, &recs, &device, &two, |_| {}).unwrap();
    assert_eq!((a.steps_done, b.steps_done), (4, 4));
    assert_same_losses(
        &a.log,
        &b.log,
        &["loss", "loss_cls", "loss_inst", "loss_proto"],
    );
    assert!(
        a.log[3].get("loss_proto").unwrap() > 0.0,
        "the prototype loss is off"
    );
    let w = values(&a.query.backbone);
    let change = max_change(&before, &w);
    assert!(change > 1e-4, "PNL did not train");
    let diff = max_change(&w, &values(&b.query.backbone));
    // Summation order only: 1.4e-5 after 4 steps with LUPerson-NL's head
    // initialisation (kaiming fan-out projection, 2026-12-06), 2.9e-6 with
    // the smaller default one before.
    eprintln!("PNL data-parallel: weights moved {change:.3e}, runs differ by {diff:.3e}");
    assert!(
        diff < 5e-5 && diff < 1e-2 * change,
        "PNL data-parallel weights differ by {diff} (moved {change})"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A data-parallel PNL run (two device handles, a trunk with BatchNorm)
/// stopped after 2 of 4 steps and resumed computes the uninterrupted
/// data-parallel run's losses and weights exactly.
#[test]
fn pnl_data_parallel_resumes_exactly() {
    let (dir, recs) = tiny_records("any-pnl-dp-resume");
    let device = Device::flex();
    let trunk = || {
        ZooNet::RepVit(
            RepVitConfig::new([1, 1, 1, 1], [8, 16, 16, 24])
                .init(&device)
                .unwrap(),
        )
    };
    let cfg = dp_pnl(6);
    let two = RunOptions::default().with_devices(vec![device.clone(), device.clone()]);
    let start = trunk();
    let stopped = stopping(&dir, 1, 2).with_devices(two.devices.clone());
    let [.., second] = assert_resume_is_exact(&two, &stopped, |run| {
        // The resumed run gets its weights from the checkpoint.
        let from = if run.resume { trunk() } else { start.clone() };
        let out = pretrain_pnl(&cfg, from, &recs, &device, run, |_| {}).unwrap();
        let probes = vec![values(&out.query)];
        Outcome::of_log(&out.log, out.steps_done, out.finished, probes)
    });
    assert_eq!(second.steps_done, 4);
    std::fs::remove_dir_all(dir).ok();
}

/// BoT fine-tuning sharded over two device handles runs, trains and is
/// deterministic. (Its BNNeck normalises each shard on its own device, as
/// DDP without SyncBatchNorm does, so it is not the single-device run; the
/// sharding itself is checked against one device in the crate's unit tests.)
#[test]
fn bot_fine_tunes_data_parallel() {
    let (dir, recs) = tiny_records("any-bot-multi");
    let device = Device::flex();
    let trunk = tiny_convnext(&device);
    let before = values(&trunk);
    let cfg = tiny_bot(1);
    let two = RunOptions::default().with_devices(vec![device.clone(), device.clone()]);
    let run = || finetune(&cfg, trunk.clone(), &recs, &device, &two, |_| {}).unwrap();
    let (a, b) = (run(), run());
    assert_eq!(a.log.len(), 2);
    assert!(
        a.log
            .iter()
            .all(|l| l.loss_ce.is_finite() && l.loss_tri.is_finite())
    );
    assert_eq!(values(&a.model), values(&b.model), "not deterministic");
    assert!(max_change(&before, &values(&a.model.backbone)) > 0.0);
    std::fs::remove_dir_all(dir).ok();
}

/// A CION run stopped after 3 of 4 steps and resumed with a differently
/// initialised trunk (the structure comes from `make`, the weights from the
/// checkpoint) computes the uninterrupted run's losses and weights exactly.
fn assert_cion_resumes_exactly<M, F>(tag: &str, cfg: &CionConfig, make: F)
where
    M: reid_backbones::TrainBackbone,
    F: Fn() -> M,
{
    let (dir, recs) = tiny_records(tag);
    let device = Device::flex();
    let run_dir = dir.join("runs");
    // The trunk's initial weights come from burn's generator: the
    // uninterrupted and the stopped run start from one copy.
    let start = make();
    let stopped = stopping(&run_dir, 1, 3).with_keep_checkpoints(1);
    let [.., second] = assert_resume_is_exact(&RunOptions::default(), &stopped, |run| {
        let from = if run.resume { make() } else { start.clone() };
        let out = pretrain_cion(cfg, from, &recs, &device, run, |_| {}).unwrap();
        let probes = vec![values(&out.student.backbone)];
        Outcome::of_log(&out.log, out.steps_done, out.finished, probes)
    });
    assert_eq!(second.steps_done, 4);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn cion_on_a_zoo_net_resumes_exactly() {
    let device = Device::flex();
    // ConvNeXt's stride 32 needs crops of at least 64×32.
    let cfg = cion_config(2, 2).with_local_size([64, 32]);
    assert_cion_resumes_exactly("any-cion-zoo", &cfg, || {
        ZooNet::ConvNeXt(
            ConvNeXtConfig::new([1, 1, 1, 1], [4, 6, 8, 10])
                .init(&device)
                .unwrap(),
        )
    });
}

/// CION's teacher drops paths as its student does (`teacher_drop_path`,
/// on by default as upstream): switching it off changes the first step's
/// loss of a ViT with stochastic depth, and the teacher's draws are
/// repeatable.
#[test]
fn cion_teacher_stochastic_depth_follows_its_switch() {
    let (dir, recs) = tiny_records("any-cion-teacher-dp");
    let device = Device::flex();
    let vit = drop_path_vit(&device);
    let first_loss = |teacher_drop_path: bool| -> f64 {
        let cfg = cion_config(1, 1).with_teacher_drop_path(teacher_drop_path);
        let plain = RunOptions::default();
        let out = pretrain_cion(&cfg, vit.clone(), &recs, &device, &plain, |_| {}).unwrap();
        out.log[0].get("loss").unwrap()
    };
    let on = first_loss(true);
    assert_eq!(on.to_bits(), first_loss(true).to_bits());
    assert_ne!(
        on,
        first_loss(false),
        "the teacher's drop-path does not act"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn vit_stochastic_depth_is_seeded_per_step_and_resumes_exactly() {
    let device = Device::flex();
    let vit = || drop_path_vit(&device);
    let m = vit();
    let x = pattern_input([4, 3, 64, 32], (7, 23, 11.0), &device);
    let at = |seed: u64| -> Vec<f32> {
        m.forward_pooled_seeded(x.clone(), seed)
            .into_data()
            .try_to_vec()
            .unwrap()
    };
    assert_eq!(at(1), at(1));
    assert_ne!(at(1), at(2), "drop-path does not act");
    let plain: Vec<f32> = m
        .forward_pooled(x.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_ne!(at(1), plain);
    assert_cion_resumes_exactly("any-cion-vit-nodp", &cion_config(2, 2), || {
        tiny_vit(&device)
    });
    assert_cion_resumes_exactly("any-cion-vit-dp", &cion_config(2, 2), vit);
}

#[test]
fn moco_and_pnl_train_other_families() {
    let (dir, recs) = tiny_records("any-moco-pnl");
    let device = Device::flex();
    let ghost = GhostNetConfig::new(0.25)
        .with_num_features(24)
        .init(&device)
        .unwrap();
    assert_eq!(ghost.pooled_dim(), 24);
    let before = values(&ghost);
    // The tiny recipes' settings (their `arch` is unused: the backbone is
    // given).
    let moco = tiny_contrast!(MocoConfig::default(), 1, 2).with_seed(3);
    let plain = RunOptions::default();
    let out = pretrain_moco(&moco, ghost, &recs, &device, &plain, |_| {}).unwrap();
    assert_eq!(out.steps_done, 2);
    assert!(out.log.iter().all(|l| l.get("loss").unwrap().is_finite()));
    assert_eq!(out.query.fc1.weight.val().dims(), [24, 32]);
    assert!(max_change(&before, &values(&out.query.backbone)) > 0.0);

    let repvit = ZooNet::RepVit(
        RepVitConfig::new([1, 1, 1, 1], [8, 16, 16, 24])
            .init(&device)
            .unwrap(),
    );
    let before = values(&repvit);
    let pnl = tiny_contrast!(PnlConfig::default(), 1, 2)
        .with_lr(PnlConfig::default().lr)
        .with_cls_dim(16)
        .with_seed(4);
    let out = pretrain_pnl(&pnl, repvit, &recs, &device, &plain, |_| {}).unwrap();
    assert_eq!(out.steps_done, 2);
    assert!(out.log.iter().all(|l| l.get("loss").unwrap().is_finite()));
    assert_eq!(out.query.cls_embed.weight.val().dims(), [24, 16]);
    assert!(max_change(&before, &values(&out.query.backbone)) > 0.0);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bot_finetunes_and_evaluates_a_vit() {
    let (dir, recs) = tiny_records("any-bot");
    let device = Device::flex();
    let vit = tiny_vit(&device);
    let before = values(&vit);
    let cfg = tiny_bot(1).with_warmup(Warmup {
        iters: 1,
        factor: 0.1,
    });
    let plain = RunOptions::default();
    let out = finetune(&cfg, vit, &recs, &device, &plain, |_| {}).unwrap();
    assert_eq!(out.log.len(), 2);
    assert!(out.log.iter().all(|l| l.loss_ce.is_finite()));
    assert!(max_change(&before, &values(&out.model.backbone)) > 0.0);
    // The head pools the ViT's patch-token map: BNNeck of width 16.
    assert_eq!(out.model.heads.neck.gamma.val().dims(), [16]);
    let r = evaluate_model(
        &out.model,
        &recs[..6],
        &recs[6..],
        TestTransform::new(64, 32),
        4,
        &device,
    )
    .unwrap();
    assert!(r.map.is_finite() && (0.0..=1.0).contains(&r.map));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_zoo_net_is_a_backbone_with_its_family_feature() {
    let device = Device::flex();
    let x = pattern_input([2, 3, 64, 32], (13, 29, 14.0), &device);
    let vit = tiny_vit(&device);
    let direct: Vec<f32> = vit
        .forward_embedding(x.clone())
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let zoo = ZooNet::ViT(vit);
    assert_eq!(zoo.pooled_dim(), 16);
    let via: Vec<f32> = zoo.forward_pooled(x).into_data().try_to_vec().unwrap();
    assert_eq!(direct, via);
}

#[test]
fn bot_with_a_drop_path_vit_resumes_exactly() {
    let (dir, recs) = tiny_records("any-bot-dp");
    let device = Device::flex();
    let start = drop_path_vit(&device);
    let cfg = tiny_bot(2);
    let plain = RunOptions::default();
    let [.., second] = assert_resume_is_exact(&plain, &stopping(&dir, 1, 3), |run| {
        let out = finetune(&cfg, start.clone(), &recs, &device, run, |_| {}).unwrap();
        Outcome::of_finetune(&out, vec![values(&out.model)])
    });
    assert_eq!(second.steps_done, 4);
    std::fs::remove_dir_all(dir).ok();
}
