//! Evaluates ReID features or a distance matrix with the Market-1501 protocol
//! (CMC, mAP, mINP), optionally after k-reciprocal re-ranking.
//!
//! ```text
//! cargo run --release --example evaluate -- --query Q.npy --gallery G.npy \
//!     --query-pids QP.npy --query-camids QC.npy --gallery-pids GP.npy --gallery-camids GC.npy \
//!     [--metric euclidean|cosine] [--normalize] [--rerank] [--k1 20] [--k2 6] [--lambda 0.3] \
//!     [--max-rank 50] [--json]
//! ```
//! or `--distmat D.npy` (`[n_query, n_gallery]`) instead of `--query/--gallery`
//! (re-ranking then also needs `--distmat-qq` and `--distmat-gg`).
//! Features: float32/float64 `[n, dim]`; ids: int64/int32 `[n]`.
//! Bad input (mismatched lengths, wrong dtypes, NaN, empty gallery) exits with code 2.

fn main() -> std::process::ExitCode {
    reid::cli::evaluate::main()
}
