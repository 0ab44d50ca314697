//! The README's main command: the whole story on the built-in synthetic
//! world, in about ten minutes on two cores.
//!
//! 1. generate the world: a Market-1501-style set and a LUPerson-NL-style
//!    video corpus with noisy tracklet labels (other persons);
//! 2. pre-train with LUPerson-NL's PNL on the tracker's noisy tracklet
//!    labels, denoise the corpus (levels 1–3, level 2's stitching on) with
//!    its features, write CION-AL `annos.json`, score it against the truth;
//! 3. pre-train the backbone further with CION on those identities
//!    (`configs/cion-after-pnl.toml`);
//! 4. fine-tune with BoT on the Market-style train split twice, from random
//!    init and from the pre-trained teacher backbone;
//! 5. evaluate both (Market protocol) and print a table; write a CMC plot
//!    (`cmc.png`), a rank-list picture (`ranklist.png`), the metrics logs
//!    and `summary.json` to `--out`.
//!
//! ```sh
//! cargo run --release --example demo -- [--out DIR] [--seed N] [--backend flex] [--json]
//!     [--pretrain-epochs N] [--finetune-epochs N] [--videos N] [--skip-pretrain]
//!     [--pretrain pnl+cion|pnl|tracklets+cion|tracklets|cion|cion-oracle|
//!                cion-oracle-video|cion-oracle-tracklets|cion-twice|oracle]
//!     [--pnl-epochs N] [--tracklet-epochs N] [--oracle-epochs N] [--eval-every N]
//!     [--stitch-gap-steps G] [--stitch-threshold T] [--cion-config FILE]
//! ```
//! Bad arguments exit with code 2; failures while running exit with code 1.

fn main() -> std::process::ExitCode {
    reid::cli::demo::main()
}
