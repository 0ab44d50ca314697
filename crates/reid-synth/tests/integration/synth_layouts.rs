//! Cross-check of the two sides of the layout contract: what the synthetic
//! world writes (`reid_synth`) parses with the dataset parsers
//! (`reid_data::datasets`) into exactly the statistics the writer reports.
//!
//! (Reconstruction: an earlier file of this name with these test names was
//! overwritten by mistake; see the synth engineer's report.)

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use reid_data::datasets::{
    self, Cuhk03Kind, Cuhk03Options, ImageDatasetOptions, Msmt17Options, Msmt17Version,
};
use reid_data::{ImageLocation, ImageRecord};

use crate::common::tmp_dir;
use reid_synth::truth::SynthTruth;
use reid_synth::{
    Cuhk03Config, DukeConfig, LupersonConfig, LupersonNlConfig, Market1501Config, Msmt17Config,
    MsmtVersion, PartStats, Span, VideoConfig, WorldConfig, write_cuhk03_np, write_dukemtmc,
    write_luperson, write_luperson_nl, write_market1501, write_msmt17,
};

fn tmp(name: &str) -> PathBuf {
    tmp_dir("reid-synth-parse", name)
}

fn world(seed: u64) -> WorldConfig {
    WorldConfig::sized(seed, 32, 16)
}

fn video() -> VideoConfig {
    VideoConfig::default()
        .with_videos(6)
        .with_persons_per_video(Span::new(2, 5))
        .with_track_len(Span::new(2, 6))
}

#[test]
fn market1501_synth_matches_parser() {
    let out = tmp("market");
    let cfg = Market1501Config::default()
        .with_train_ids(8)
        .with_test_ids(7)
        .with_junk(5)
        .with_distractors(4);
    let r = write_market1501(&out, &world(1), &cfg).unwrap();
    let parsed = datasets::market1501::parse(&out, &ImageDatasetOptions::default()).unwrap();
    assert_eq!(parsed.splits.stats(), r.dataset_stats().unwrap());
    assert_eq!(parsed.num_train_ids, 8);
    assert!(
        parsed.splits.gallery.iter().any(|x| x.pid == 0),
        "distractors kept"
    );
    assert!(
        parsed.splits.gallery.iter().all(|x| x.pid != -1),
        "junk dropped"
    );
    let _ = fs::remove_dir_all(out);
}

#[test]
fn dukemtmc_synth_matches_parser() {
    let out = tmp("duke");
    let cfg = DukeConfig::default()
        .with_train_ids(8)
        .with_test_ids(6)
        .with_distractor_ids(3);
    let r = write_dukemtmc(&out, &world(2), &cfg).unwrap();
    let parsed = datasets::dukemtmc::parse(&out, &ImageDatasetOptions::default()).unwrap();
    assert_eq!(parsed.splits.stats(), r.dataset_stats().unwrap());
    let _ = fs::remove_dir_all(out);
}

#[test]
fn msmt17_v1_and_v2_synth_match_parser() {
    let out = tmp("msmt");
    for (version, parser_version) in [
        (MsmtVersion::V1, Msmt17Version::V1),
        (MsmtVersion::V2, Msmt17Version::V2),
    ] {
        let cfg = Msmt17Config::default()
            .with_version(version)
            .with_train_ids(7)
            .with_test_ids(6)
            .with_val_fraction(0.2);
        let r = write_msmt17(&out, &world(3), &cfg).unwrap();
        let opts = Msmt17Options::default().with_version(Some(parser_version));
        let parsed = datasets::msmt17::parse(&out, &opts).unwrap();
        assert_eq!(
            parsed.splits.stats(),
            r.dataset_stats().unwrap(),
            "{version:?}"
        );
        // With val merged, train = list_train + list_val.
        let merged = datasets::msmt17::parse(&out, &opts.with_merge_val(true)).unwrap();
        let truth = SynthTruth::read(&r.dataset_dir).unwrap();
        let val = truth.extra.iter().find(|(n, _)| n == "val").unwrap().1;
        assert_eq!(
            merged.splits.train.len(),
            r.dataset_stats().unwrap().train.images + val.images
        );
    }
    let _ = fs::remove_dir_all(out);
}

#[test]
fn cuhk03_np_synth_matches_parser_for_both_kinds() {
    let out = tmp("cuhk");
    let cfg = Cuhk03Config::default()
        .with_train_ids(7)
        .with_test_ids(5)
        .with_detection_miss(0.3);
    let r = write_cuhk03_np(&out, &world(4), &cfg).unwrap();
    for (i, kind) in [Cuhk03Kind::Labeled, Cuhk03Kind::Detected]
        .into_iter()
        .enumerate()
    {
        let opts = Cuhk03Options::default()
            .with_kind(kind)
            .with_common(ImageDatasetOptions::default());
        let parsed = datasets::cuhk03::parse(&out, &opts).unwrap();
        let PartStats::Images(expected) = r.parts[i].stats else {
            panic!("not an image part")
        };
        assert_eq!(parsed.splits.stats(), expected, "{kind:?}");
    }
    let _ = fs::remove_dir_all(out);
}

fn file_name(r: &ImageRecord) -> String {
    match &r.location {
        ImageLocation::Path(p) => p.file_name().unwrap().to_string_lossy().into_owned(),
        ImageLocation::LmdbKey(k) => k.clone(),
    }
}

#[test]
fn luperson_nl_synth_matches_parser() {
    let out = tmp("nl");
    let cfg = LupersonNlConfig::default().with_video(video());
    let r = write_luperson_nl(&out, &world(5), &cfg).unwrap();
    let corpus = datasets::luperson_nl::parse(&out).unwrap();
    assert_eq!(corpus.stats(), r.corpus_stats().unwrap());
    // Every parsed image carries the tracklet pid, video and frame the sidecar records.
    let truth = SynthTruth::read(&r.dataset_dir).unwrap();
    let by_name: BTreeMap<String, _> = truth
        .frames
        .iter()
        .map(|f| {
            (
                f.path.rsplit('/').next().unwrap().to_string() + &f.video.to_string(),
                f,
            )
        })
        .collect();
    let mut seen = 0;
    for img in corpus.images() {
        let f = by_name[&(file_name(img) + &img.video.unwrap().to_string())];
        assert_eq!(img.tracklet, f.tracklet);
        assert_eq!(img.frame, Some(f.frame));
        seen += 1;
    }
    assert_eq!(seen, truth.frames.len());
    let _ = fs::remove_dir_all(out);
}

#[test]
fn luperson_synth_matches_parser() {
    let out = tmp("lup");
    let cfg = LupersonConfig::default().with_video(video());
    let r = write_luperson(&out, &world(6), &cfg).unwrap();
    let corpus = datasets::luperson::parse(&out).unwrap();
    assert_eq!(corpus.stats(), r.corpus_stats().unwrap());
    let per_video: Vec<usize> = corpus.videos.iter().map(|v| v.num_images()).collect();
    let truth = SynthTruth::read(&r.dataset_dir).unwrap();
    let mut expected = vec![0usize; per_video.len()];
    for f in &truth.frames {
        expected[f.video as usize] += 1;
    }
    assert_eq!(per_video, expected);
    let _ = fs::remove_dir_all(out);
}
