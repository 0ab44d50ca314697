//! Supervised fine-tuning with the BoT recipe (`reid_train::finetune`) or,
//! with `--head mgn`, MGN as LUPerson fine-tunes it
//! (`reid_train::finetune::mgn`), on a Market-1501-style dataset, then
//! evaluation on its query/gallery split.
//!
//! ```sh
//! cargo run --release --example finetune -- (--data DIR | --synth) [--head bot|mgn] [--config FILE.toml|json]
//!     [--epochs N] [--arch resnet18] [--base-width 16] [--height 128] [--width 64]
//!     [--p 16] [--k 4] [--iters-per-epoch N] [--lr 3.5e-4] [--warmup-iters N]
//!     [--seed 0] [--eval-every N] [--baseline] [--out model.bpk] [--export-backbone trunk.safetensors]
//!     [--log log.json] [--checkpoint-dir DIR] [--checkpoint-every N] [--resume] [--stop-after N]
//!     [--weights TRUNK.pth [--weights-format auto] [--allow-unexpected KEY]]  (--head mgn)
//!     [--backend flex] [--devices N] [--precision f32|bf16|f16]
//! ```
//!
//! Values come from the BoT defaults (`FinetuneConfig::default()`), then the
//! config file, then the flags given. `--synth` writes the default synthetic
//! Market-1501-style set (`reid_synth`, 100 + 100 identities) at
//! `--height × --width` into a temporary folder (one per process, removed at
//! the end). Prints the loss per epoch,
//! then mAP / Rank-k (fast-reid protocol: BNNeck feature, cosine distance).
//! `--baseline` first evaluates a randomly initialised backbone of the same
//! architecture (global-average-pooled features), for comparison.
//! `--out` writes the trained model as a burn record (burnpack);
//! `--export-backbone` the trunk as safetensors with torchvision names.
//! With either head, `--eval-every N` also evaluates every N epochs, and
//! `--checkpoint-dir` writes atomic checkpoints there
//! (every `--checkpoint-every` steps and at the end) and a `metrics.jsonl`
//! log: one line per step, and one per evaluation (`mAP`, `rank1`, `rank5`,
//! `rank10`, `mINP` at the epoch's last step; the final evaluation too), so
//! `plot` draws the mAP curve; `--resume` continues bit-exactly from the
//! newest one (same head, recipe and dataset required); `--stop-after N`
//! stops after N steps in total (with a checkpoint) and skips the final
//! evaluation.
//! With `--head mgn`, `--weights` initialises MGN from a pre-trained ResNet
//! trunk (a LUPerson / LUPerson-NL / torchvision / CION / fast-reid
//! checkpoint of the `--arch` and `--base-width` given, read as
//! `reid_backbones::import::load_backbone` reads it; an ImageNet
//! classifier's `fc.*` is set aside): its stem, `layer1`, `layer2` and
//! `layer3[0]` become the shared trunk and `layer3[1:]` + `layer4` every
//! branch, as LUPerson's fast-reid configs do; without it MGN starts from
//! random weights. Bad arguments exit with code 2; failures while running
//! exit with code 1.

fn main() -> std::process::ExitCode {
    reid::cli::finetune::main()
}
