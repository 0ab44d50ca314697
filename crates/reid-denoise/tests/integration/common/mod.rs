//! Helpers shared by the integration test modules.

use reid_denoise::synthetic::{SyntheticConfig, SyntheticCorpus};
use reid_denoise::{DenoiseConfig, DenoiseOutput, Level3Config, VideoBlock, run};

/// Every video block of the synthetic corpus `cfg`, with the true person of
/// every crop in corpus order.
pub fn corpus(cfg: SyntheticConfig) -> (Vec<VideoBlock>, Vec<i64>) {
    let mut g = SyntheticCorpus::new(cfg).unwrap();
    let mut blocks = Vec::new();
    let mut truth = Vec::new();
    while let Some((b, t)) = g.next_video() {
        blocks.push(b);
        truth.extend(t);
    }
    (blocks, truth)
}

/// The default pipeline recording every level's labels, in chunks of 7
/// videos, with a level-3 window of 8 videos moving by 4.
pub fn recorded() -> DenoiseConfig {
    DenoiseConfig::default()
        .with_record_levels(true)
        .with_chunk_videos(7)
        .with_level3(Level3Config::default().with_window(8).with_stride(4))
}

/// The pipeline `cfg` run on `blocks` (cloned), which must succeed.
pub fn run_on(cfg: &DenoiseConfig, blocks: &[VideoBlock]) -> DenoiseOutput {
    run(cfg, blocks.iter().cloned().map(Ok), |_| {}).unwrap()
}

/// The pipeline `cfg` run on `blocks` twice: as configured, then with
/// `chunk_videos` videos per chunk.
pub fn run_chunked(
    cfg: &DenoiseConfig,
    blocks: &[VideoBlock],
    chunk_videos: usize,
) -> (DenoiseOutput, DenoiseOutput) {
    let mut other = *cfg;
    other.chunk_videos = chunk_videos;
    (run_on(cfg, blocks), run_on(&other, blocks))
}
