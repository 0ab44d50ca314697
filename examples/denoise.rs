//! CION-style progressive multi-level denoising of a LUPerson-NL corpus
//! into CION-AL style identities (`reid denoise`; see `reid::cli::denoise`).
//!
//! ```sh
//! cargo run --release --example denoise -- --corpus DIR \
//!     (--features F.npy | --arch resnet50 --weights W [--weights-format …]) \
//!     --out annos.json [stage parameters]
//! ```
//! Bad arguments or inputs exit with code 2.

fn main() -> std::process::ExitCode {
    reid::cli::denoise::main()
}
