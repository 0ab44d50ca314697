//! Shared by the step-parity tests (`*_step_parity.rs`): reading the
//! fixtures a `tools/fixtures/gen_*_step_fixtures.py` generator wrote from upstream's
//! training code, and comparing our final tensors with PyTorch's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array, IxDyn};
use reid_backbones::visit::{PathVisitor, visit_with_paths};
use reid_backbones::{ResNetConfig, ResNetDepth};
use reid_train::LogLine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The fixture folder `tests/fixtures/{name}`.
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The fixture's `expected.json`.
pub fn expected(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A fixture's `expected.json`, our configuration of it (see
/// [`config_from`]) and the width of its networks (`config.width`).
pub struct Fixture<C> {
    /// `expected.json`.
    pub exp: Value,
    /// Our configuration of the run.
    pub cfg: C,
    /// The networks' base width.
    pub width: usize,
}

impl<C> Fixture<C> {
    /// The fixture in `dir`, with `config` turning its `config` object
    /// into ours.
    pub fn read(dir: &Path, config: impl FnOnce(&Value) -> C) -> Self {
        let exp = expected(dir);
        let cfg = config(&exp["config"]);
        let width = usize_at(&exp["config"], "width");
        Self { exp, cfg, width }
    }
}

/// The fixtures' small ResNets: one block per stage (Bottleneck or basic),
/// `width` channels in the stem, last stride 2.
pub fn one_block_resnet(width: usize, bottleneck: bool) -> ResNetConfig {
    ResNetConfig::new()
        .with_depth(ResNetDepth::Custom {
            blocks: [1, 1, 1, 1],
            bottleneck,
        })
        .with_base_width(width)
        .with_last_stride(2)
}

/// Unsigned `c[key]`.
pub fn usize_at(c: &Value, key: &str) -> usize {
    c[key].as_u64().unwrap() as usize
}

/// Our configuration `C`: its defaults with the values of `keys` (names
/// separated by white space) taken from the fixture's configuration `c`,
/// where both name them alike.
pub fn config_from<C: Serialize + DeserializeOwned + Default>(c: &Value, keys: &str) -> C {
    let mut ours = serde_json::to_value(C::default()).unwrap();
    for key in keys.split_whitespace() {
        ours[key] = c[key].clone();
    }
    serde_json::from_value(ours).unwrap()
}

/// Runs the fixture's 12 steps: `step(i, epoch, want)` runs step `i` (of
/// `epoch`; `want`: upstream's record of it) and returns our log line, whose
/// `keys` must each be upstream's within 1e-4 ([`close`]). Returns the worst
/// relative error of the loss terms (`keys` starting with `loss`, where
/// upstream's value is not 0).
pub fn run_steps<F>(exp: &Value, keys: &[&str], mut step: F) -> f64
where
    F: FnMut(usize, usize, &Value) -> LogLine,
{
    let steps = exp["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12);
    let mut worst_loss: f64 = 0.0;
    for (i, want) in steps.iter().enumerate() {
        let line = step(i, usize_at(want, "epoch"), want);
        for key in keys {
            let w = want[*key].as_f64().unwrap();
            let rel = close(&format!("step {i} {key}"), line.get(key).unwrap(), w);
            if key.starts_with("loss") && w != 0.0 {
                worst_loss = worst_loss.max(rel);
            }
        }
    }
    worst_loss
}

/// The float32 tensors of a safetensors file whose names start with
/// `prefix` (prefix removed): name → (PyTorch shape, row-major values).
pub fn tensors(path: &Path, prefix: &str) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .filter_map(|(name, view)| {
            let rest = name.strip_prefix(prefix)?.to_string();
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Some((rest, (view.shape().to_vec(), values)))
        })
        .collect()
}

/// A `[shape[0], shape[1]]` tensor of `values`.
pub fn tensor2(shape: &[usize], values: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [shape[0], shape[1]]),
        device,
    )
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
pub fn transpose(shape: &[usize], values: &[f32]) -> Vec<f32> {
    let (r, c) = (shape[0], shape[1]);
    (0..c * r).map(|i| values[(i % r) * c + i / r]).collect()
}

/// A burn [`Linear`] holding PyTorch's `weight` (`[out, in]`) and `bias`,
/// transposed on the host so that the parameters are leaves.
pub fn linear(
    weight: &(Vec<usize>, Vec<f32>),
    bias: &(Vec<usize>, Vec<f32>),
    device: &Device,
) -> Linear {
    let (ws, w) = weight;
    let (_, b) = bias;
    Linear {
        weight: Param::from_tensor(tensor2(&[ws[1], ws[0]], &transpose(ws, w), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b.clone(), [b.len()]),
            device,
        ))),
    }
}

/// Every float tensor of `module` (parameters and BatchNorm statistics), in
/// walk order, with its path.
pub fn floats<M: Module>(module: &M) -> Vec<(String, Vec<f32>)> {
    struct Collect(Vec<(String, Vec<f32>)>);
    impl PathVisitor for Collect {
        fn visit_float_at<const D: usize>(&mut self, path: &[String], param: &Param<Tensor<D>>) {
            let v = param.val().into_data().iter::<f32>().collect();
            self.0.push((path.join("."), v));
        }
    }
    visit_with_paths(module, Collect(Vec::new())).0
}

/// `max |a − b| / max |b|` of two tensors.
pub fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, x| m.max(x.abs() as f64)).max(1e-12);
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    diff / scale
}

/// Compares our tensors with PyTorch's float32 result, tensor by tensor:
/// `max |ours − torch| / max |torch|` must be ≤ 1e-4, or — for tensors whose
/// values are rounding noise (a BatchNorm bias whose gradient cancels, which
/// a normalised or momentum step turns into full-size moves) — no larger
/// than twice PyTorch's own float32 error against its float64 run of the
/// same steps. Returns the worst `ours vs torch` ratio and how many tensors
/// needed the noise floor. `PARITY_VERBOSE=1` prints every tensor.
pub fn compare(
    what: &str,
    ours: &[(String, Vec<f32>)],
    torch32: &[(String, Vec<f32>)],
    torch64: &[(String, Vec<f32>)],
) -> (f64, usize) {
    assert_eq!(ours.len(), torch32.len(), "{what}: tensor count");
    assert_eq!(ours.len(), torch64.len(), "{what}: tensor count (float64)");
    let verbose = std::env::var("PARITY_VERBOSE").is_ok();
    let (mut worst, mut floored) = (0f64, 0);
    for (((name, a), (_, b)), (_, c)) in ours.iter().zip(torch32).zip(torch64) {
        assert_eq!(a.len(), b.len(), "{what} {name}: size");
        let rel = rel_err(a, b);
        let (ours64, torch_noise) = (rel_err(a, c), rel_err(b, c));
        if verbose {
            eprintln!(
                "{what} {name}: vs torch f32 {rel:.2e}; vs f64 ours {ours64:.2e}, torch f32 {torch_noise:.2e}"
            );
        }
        if rel > 1e-4 {
            floored += 1;
            assert!(
                ours64 <= 2.0 * torch_noise + 1e-6,
                "{what} {name}: {rel:.3e} from torch float32, {ours64:.3e} from float64 \
                 (torch float32 itself: {torch_noise:.3e})"
            );
        }
        worst = worst.max(rel);
    }
    (worst, floored)
}

/// Asserts `got` within 1e-4 relative of `want` (or 1e-12 absolute);
/// returns the relative error.
pub fn close(what: &str, got: f64, want: f64) -> f64 {
    let rel = (got - want).abs() / want.abs().max(1e-12);
    assert!(
        rel <= 1e-4 || (got - want).abs() <= 1e-12,
        "{what}: ours {got} upstream {want} (rel {rel:.2e})"
    );
    rel
}

/// The bytes `q` of one image batch (`[B, 3, h, w]` at `index` of the
/// leading axes of `array`) as the crop `(q − 128)/64`.
pub fn crop(array: &Array<u8, IxDyn>, index: &[usize], device: &Device) -> Tensor<4> {
    let mut view = array.view();
    for &i in index {
        view = view.index_axis_move(ndarray::Axis(0), i);
    }
    let s = view.shape().to_vec();
    let values: Vec<f32> = view.iter().map(|&q| (q as f32 - 128.0) / 64.0).collect();
    Tensor::from_data(TensorData::new(values, [s[0], s[1], s[2], s[3]]), device)
}

/// The worst [`compare`] ratio and the noise-floor count over several
/// calls.
#[derive(Debug, Default)]
pub struct Tally {
    /// Worst `max |ours − torch| / max |torch|` so far.
    pub worst: f64,
    /// Tensors that needed the float64 noise floor so far.
    pub floored: usize,
}

impl Tally {
    /// Adds one [`compare`] result.
    pub fn add(&mut self, (worst, floored): (f64, usize)) {
        self.worst = self.worst.max(worst);
        self.floored += floored;
    }

    /// Compares our final network `name` with PyTorch's float32 and
    /// float64 runs: the backbones (`[ours, torch32, torch64]`: parameters
    /// and BatchNorm statistics, in inference mode) and the head tensors
    /// (likewise).
    pub fn add_network<B: Module>(
        &mut self,
        name: &str,
        [ours, torch32, torch64]: [&B; 3],
        heads: [Vec<(String, Vec<f32>)>; 3],
    ) {
        let backbones = [ours, torch32, torch64].map(|b| floats(&b.valid()));
        let [b0, b1, b2] = &backbones;
        self.add(compare(&format!("{name} backbone"), b0, b1, b2));
        let [h0, h1, h2] = &heads;
        self.add(compare(&format!("{name} head"), h0, h1, h2));
    }

    /// Prints the run's figures (the worst per-step loss error too), with
    /// `extra` appended.
    pub fn report(&self, worst_loss: f64, extra: &str) {
        eprintln!(
            "worst per-step loss rel. error {worst_loss:.2e}; worst final tensor {:.2e}; \
             {} tensors at PyTorch's own float32 noise{extra}",
            self.worst, self.floored
        );
    }
}
