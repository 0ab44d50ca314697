//! The synthetic world's writers: determinism by seed, the on-disk layouts,
//! and reported statistics equal to what a plain walk of the tree finds.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use reid_data::{DatasetStats, ImageRecord, SplitStats};
use reid_synth::SynthError;

use crate::common::tmp_dir;
use reid_synth::truth::SynthTruth;
use reid_synth::{
    Cuhk03Config, DukeConfig, LupersonConfig, LupersonNlConfig, Market1501Config, Msmt17Config,
    MsmtVersion, PartStats, Span, SynthReport, VideoConfig, WorldConfig, write_cuhk03_np,
    write_dukemtmc, write_luperson, write_luperson_nl, write_market1501, write_msmt17,
};

/// A fresh, empty temporary folder unique to this test process and `name`.
fn tmp(name: &str) -> PathBuf {
    tmp_dir("reid-synth", name)
}

fn tiny_world(seed: u64) -> WorldConfig {
    WorldConfig::sized(seed, 64, 32)
}

fn tiny_market() -> Market1501Config {
    Market1501Config::default()
        .with_train_ids(6)
        .with_test_ids(5)
        .with_cams_per_id(Span::new(2, 3))
        .with_images_per_cam(Span::new(1, 2))
        .with_junk(4)
        .with_distractors(3)
}

fn tiny_duke() -> DukeConfig {
    DukeConfig::default()
        .with_train_ids(5)
        .with_test_ids(5)
        .with_distractor_ids(3)
        .with_cams_per_id(Span::new(2, 3))
        .with_images_per_cam(Span::new(1, 2))
}

fn tiny_msmt(version: MsmtVersion) -> Msmt17Config {
    Msmt17Config::default()
        .with_version(version)
        .with_train_ids(6)
        .with_test_ids(5)
        .with_cams_per_id(Span::new(2, 3))
        .with_images_per_cam(Span::new(1, 3))
        .with_val_fraction(0.2)
}

fn tiny_cuhk() -> Cuhk03Config {
    Cuhk03Config::default()
        .with_train_ids(5)
        .with_test_ids(4)
        .with_images_per_view(Span::new(2, 3))
        .with_detection_miss(0.3)
}

fn tiny_video() -> VideoConfig {
    VideoConfig::default()
        .with_countries(2)
        .with_cities_per_country(2)
        .with_videos(5)
        .with_persons_per_video(Span::new(2, 4))
        .with_track_len(Span::new(2, 5))
}

/// Writes every layout into `out` with `world`.
fn write_everything(out: &Path, world: &WorldConfig) -> Vec<SynthReport> {
    vec![
        write_market1501(out, world, &tiny_market()).unwrap(),
        write_dukemtmc(out, world, &tiny_duke()).unwrap(),
        write_msmt17(out, world, &tiny_msmt(MsmtVersion::V1)).unwrap(),
        write_msmt17(out, world, &tiny_msmt(MsmtVersion::V2)).unwrap(),
        write_cuhk03_np(out, world, &tiny_cuhk()).unwrap(),
        write_luperson_nl(
            out,
            world,
            &LupersonNlConfig::default().with_video(tiny_video()),
        )
        .unwrap(),
        write_luperson(
            out,
            world,
            &LupersonConfig::default().with_video(tiny_video()),
        )
        .unwrap(),
    ]
}

/// Every file under `dir`: relative path -> bytes.
fn all_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn files_in(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Market/Duke/CUHK03 naming: `{pid}_c{cam}...`; junk (-1) dropped.
fn walk_bbox_folder(dir: &Path, ext: &str) -> SplitStats {
    let recs: Vec<ImageRecord> = files_in(dir, ext)
        .iter()
        .map(|n| {
            let (pid, rest) = n.split_once("_c").unwrap();
            let cam: u32 = rest[..1].parse().unwrap();
            (pid.parse::<i64>().unwrap(), cam)
        })
        .filter(|&(pid, _)| pid != -1)
        .map(|(pid, cam)| ImageRecord::new("x", pid, cam - 1))
        .collect();
    SplitStats::of(&recs)
}

fn walk_bbox_dataset(dir: &Path, ext: &str) -> DatasetStats {
    DatasetStats {
        train: walk_bbox_folder(&dir.join("bounding_box_train"), ext),
        query: walk_bbox_folder(&dir.join("query"), ext),
        gallery: walk_bbox_folder(&dir.join("bounding_box_test"), ext),
    }
}

fn image_stats(r: &SynthReport, part: usize) -> DatasetStats {
    match r.parts[part].stats {
        PartStats::Images(s) => s,
        PartStats::Corpus(_) => panic!("not an image dataset"),
    }
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let (a, b, c) = (tmp("det-a"), tmp("det-b"), tmp("det-c"));
    write_everything(&a, &tiny_world(11));
    write_everything(&b, &tiny_world(11));
    write_everything(&c, &tiny_world(12));
    let (fa, fb, fc) = (all_files(&a), all_files(&b), all_files(&c));
    assert!(fa.len() > 300, "only {} files", fa.len());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (path, bytes) in &fa {
        assert!(
            fb[path] == *bytes,
            "{} differs between two runs with the same seed",
            path.display()
        );
    }
    // Another seed: other names and other pixels.
    assert_ne!(fa, fc);
    let contents_a: BTreeSet<&Vec<u8>> = fa
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e != "txt" && e != "json"))
        .map(|(_, b)| b)
        .collect();
    let shared = fc.values().filter(|b| contents_a.contains(b)).count();
    assert_eq!(shared, 0, "{shared} images identical across seeds");
    for d in [a, b, c] {
        let _ = fs::remove_dir_all(d);
    }
}

#[test]
fn market_layout_names_and_stats() {
    let out = tmp("market");
    let cfg = tiny_market();
    let r = write_market1501(&out, &tiny_world(3), &cfg).unwrap();
    let dir = out.join("Market-1501-v15.09.15");
    assert_eq!(r.dataset_dir, dir);
    assert_eq!(image_stats(&r, 0), walk_bbox_dataset(&dir, ".jpg"));
    let s = image_stats(&r, 0);
    assert_eq!(s.train.ids, 6);
    assert_eq!(s.query.ids, 5);
    assert_eq!(s.gallery.ids, 5 + 1, "test ids plus the distractor pid 0");

    let gallery = files_in(&dir.join("bounding_box_test"), ".jpg");
    let junk: Vec<_> = gallery.iter().filter(|n| n.starts_with("-1_c")).collect();
    let distractors: Vec<_> = gallery.iter().filter(|n| n.starts_with("0000_c")).collect();
    assert_eq!(junk.len(), 4);
    assert_eq!(distractors.len(), 3);
    for split in ["bounding_box_train", "query"] {
        assert!(
            files_in(&dir.join(split), ".jpg")
                .iter()
                .all(|n| !n.starts_with("-1_") && !n.starts_with("0000_"))
        );
    }
    // Every name is `{pid:04}_c{cam}s{seq}_{frame:06}_{bbox:02}.jpg`.
    for split in ["bounding_box_train", "query", "bounding_box_test"] {
        for n in files_in(&dir.join(split), ".jpg") {
            let stem = n.strip_suffix(".jpg").unwrap();
            let parts: Vec<&str> = stem.split('_').collect();
            assert_eq!(parts.len(), 4, "{n}");
            assert!(
                parts[0] == "-1" || (parts[0].len() == 4 && parts[0].parse::<u32>().is_ok()),
                "{n}"
            );
            let cs = parts[1].as_bytes();
            assert!(cs.len() == 4 && cs[0] == b'c' && cs[2] == b's', "{n}");
            assert!(
                (b'1'..=b'6').contains(&cs[1]) && (b'1'..=b'6').contains(&cs[3]),
                "{n}"
            );
            assert_eq!(parts[2].len(), 6, "{n}");
            assert_eq!(parts[3].len(), 2, "{n}");
        }
    }
    // Images are decodable JPEGs of the requested size.
    let img = image::open(
        dir.join("query")
            .join(&files_in(&dir.join("query"), ".jpg")[0]),
    )
    .unwrap();
    assert_eq!((img.width(), img.height()), (32, 64));
    // The sidecar agrees with the report and lists every file.
    let truth = SynthTruth::read(&dir).unwrap();
    assert_eq!(truth.seed, 3);
    assert_eq!(truth.parts[0].stats, PartStats::Images(s));
    assert_eq!(truth.images.len(), r.images_written);
    for e in &truth.images {
        assert!(dir.join(&e.path).is_file(), "{}", e.path);
    }
    let _ = fs::remove_dir_all(out);
}

#[test]
fn duke_layout_has_gallery_only_distractor_ids() {
    let out = tmp("duke");
    let r = write_dukemtmc(&out, &tiny_world(4), &tiny_duke()).unwrap();
    let dir = out.join("DukeMTMC-reID");
    let walked = walk_bbox_dataset(&dir, ".jpg");
    assert_eq!(image_stats(&r, 0), walked);
    assert_eq!(walked.gallery.ids, 5 + 3);
    assert_eq!(walked.query.ids, 5);
    for split in ["bounding_box_train", "query", "bounding_box_test"] {
        for n in files_in(&dir.join(split), ".jpg") {
            // 0001_c2_f0046182.jpg
            assert_eq!(n.len(), "0001_c2_f0046182.jpg".len(), "{n}");
            assert_eq!(&n[4..6], "_c");
            assert_eq!(&n[7..9], "_f");
            assert!(!n.starts_with("-1"));
        }
    }
    let _ = fs::remove_dir_all(out);
}

fn read_list(path: &Path) -> Vec<(String, i64)> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let (p, pid) = l.split_once(' ').unwrap();
            (p.to_string(), pid.parse().unwrap())
        })
        .collect()
}

fn list_stats(list: &[(String, i64)]) -> SplitStats {
    let recs: Vec<ImageRecord> = list
        .iter()
        .map(|(p, pid)| {
            let cam: u32 = p.split('_').nth(2).unwrap().parse().unwrap();
            ImageRecord::new(p, *pid, cam - 1)
        })
        .collect();
    SplitStats::of(&recs)
}

#[test]
fn msmt_lists_are_consistent_with_the_files() {
    let out = tmp("msmt");
    for version in [MsmtVersion::V1, MsmtVersion::V2] {
        let r = write_msmt17(&out, &tiny_world(5), &tiny_msmt(version)).unwrap();
        let (folder, train_dir, test_dir) = version.folders();
        let dir = out.join(folder);
        let lists: BTreeMap<&str, Vec<(String, i64)>> = ["train", "val", "query", "gallery"]
            .into_iter()
            .map(|s| (s, read_list(&dir.join(format!("list_{s}.txt")))))
            .collect();
        assert!(!lists["val"].is_empty());
        for (split, base) in [
            ("train", train_dir),
            ("val", train_dir),
            ("query", test_dir),
            ("gallery", test_dir),
        ] {
            for (p, pid) in &lists[split] {
                assert!(dir.join(base).join(p).is_file(), "{split}: {p} missing");
                let folder_pid: i64 = p.split('/').next().unwrap().parse().unwrap();
                assert_eq!(folder_pid, *pid, "{p}");
                let cam: u32 = p.split('_').nth(2).unwrap().parse().unwrap();
                assert!((1..=15).contains(&cam));
            }
        }
        // Every file is listed exactly once.
        for (base, splits) in [
            (train_dir, ["train", "val"]),
            (test_dir, ["query", "gallery"]),
        ] {
            let mut on_disk = BTreeSet::new();
            for pid_dir in subdirs(&dir.join(base)) {
                let pid = pid_dir.file_name().unwrap().to_str().unwrap().to_string();
                for f in files_in(&pid_dir, ".jpg") {
                    on_disk.insert(format!("{pid}/{f}"));
                }
            }
            let listed: Vec<&String> = splits
                .iter()
                .flat_map(|s| lists[s].iter().map(|(p, _)| p))
                .collect();
            assert_eq!(listed.len(), on_disk.len());
            assert_eq!(
                listed.into_iter().cloned().collect::<BTreeSet<_>>(),
                on_disk
            );
        }
        // Pids are 0-based and contiguous per split.
        let train_pids: BTreeSet<i64> = lists["train"]
            .iter()
            .chain(&lists["val"])
            .map(|x| x.1)
            .collect();
        assert_eq!(train_pids, (0..6).collect());
        let test_pids: BTreeSet<i64> = lists["query"]
            .iter()
            .chain(&lists["gallery"])
            .map(|x| x.1)
            .collect();
        assert_eq!(test_pids, (0..5).collect());
        let walked = DatasetStats {
            train: list_stats(&lists["train"]),
            query: list_stats(&lists["query"]),
            gallery: list_stats(&lists["gallery"]),
        };
        assert_eq!(image_stats(&r, 0), walked);
        let truth = SynthTruth::read(&dir).unwrap();
        assert_eq!(
            truth.extra,
            vec![("val".to_string(), list_stats(&lists["val"]))]
        );
    }
    let _ = fs::remove_dir_all(out);
}

#[test]
fn cuhk03_labeled_and_detected() {
    let out = tmp("cuhk");
    let r = write_cuhk03_np(&out, &tiny_world(6), &tiny_cuhk()).unwrap();
    let dir = out.join("cuhk03-np");
    assert_eq!(r.parts.len(), 2);
    for (i, kind) in ["labeled", "detected"].into_iter().enumerate() {
        let walked = walk_bbox_dataset(&dir.join(kind), ".png");
        assert_eq!(r.parts[i].name, kind);
        assert_eq!(image_stats(&r, i), walked, "{kind}");
        assert_eq!(walked.train.ids, 5);
        assert_eq!(walked.query.ids, 4);
        assert_eq!(
            walked.query.images, 8,
            "one query per test identity per view"
        );
        assert_eq!(walked.gallery.cams, 2);
        for n in files_in(&dir.join(kind).join("query"), ".png") {
            assert_eq!(n.len(), "0001_c1_01.png".len(), "{n}");
        }
    }
    let train: BTreeSet<String> = files_in(&dir.join("labeled/bounding_box_train"), ".png")
        .into_iter()
        .collect();
    let test: BTreeSet<String> = files_in(&dir.join("labeled/bounding_box_test"), ".png")
        .into_iter()
        .collect();
    let ids = |s: &BTreeSet<String>| {
        s.iter()
            .map(|n| n[..4].to_string())
            .collect::<BTreeSet<_>>()
    };
    assert!(ids(&train).is_disjoint(&ids(&test)));
    // Detected shows the same shots with another box: same names (minus misses), other pixels.
    let det: BTreeSet<String> = files_in(&dir.join("detected/bounding_box_train"), ".png")
        .into_iter()
        .collect();
    assert!(det.is_subset(&train));
    let name = det.iter().next().unwrap();
    let a = fs::read(dir.join("labeled/bounding_box_train").join(name)).unwrap();
    let b = fs::read(dir.join("detected/bounding_box_train").join(name)).unwrap();
    assert_ne!(a, b);
    let _ = fs::remove_dir_all(out);
}

/// Parses `{pid:06}_{frame:07}_{obj:02}.jpg`.
fn nl_name(n: &str) -> (u64, u64, u32) {
    let stem = n.strip_suffix(".jpg").unwrap();
    let t: Vec<&str> = stem.split('_').collect();
    assert_eq!(t.len(), 3, "{n}");
    assert_eq!((t[0].len(), t[1].len(), t[2].len()), (6, 7, 2), "{n}");
    (
        t[0].parse().unwrap(),
        t[1].parse().unwrap(),
        t[2].parse().unwrap(),
    )
}

/// Video folders in sorted order, as `(country index, city index, path)`.
fn video_dirs(dir: &Path) -> Vec<(usize, usize, PathBuf)> {
    let mut out = Vec::new();
    for (i, country) in subdirs(dir).into_iter().enumerate() {
        assert!(
            country
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("country")
        );
        for (j, city) in subdirs(&country).into_iter().enumerate() {
            assert!(
                city.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("city")
            );
            for v in subdirs(&city) {
                assert!(v.file_name().unwrap().to_str().unwrap().starts_with("vid"));
                out.push((i, j, v));
            }
        }
    }
    out
}

#[test]
fn luperson_nl_tracklets_and_truth() {
    let out = tmp("nl");
    let cfg = LupersonNlConfig::default().with_video(tiny_video());
    let r = write_luperson_nl(&out, &tiny_world(7), &cfg).unwrap();
    let dir = out.join("LUPerson-NL");
    let videos = video_dirs(&dir);
    let mut pids_in_order = Vec::new();
    let mut images = 0;
    let mut tracklets = BTreeSet::new();
    for (v, (_, _, vdir)) in videos.iter().enumerate() {
        let mut first_seen = Vec::new();
        let mut names: Vec<(u64, u64, u32)> =
            files_in(vdir, ".jpg").iter().map(|n| nl_name(n)).collect();
        // Corpus order inside a video: by frame, then object.
        names.sort_by_key(|&(_, f, o)| (f, o));
        let mut frame_objs = BTreeSet::new();
        for (pid, frame, obj) in names {
            assert!(
                frame_objs.insert((frame, obj)),
                "duplicate (frame, obj) in video {v}"
            );
            if !first_seen.contains(&pid) {
                first_seen.push(pid);
            }
            assert!(tracklets.insert((pid, v)) || first_seen.contains(&pid));
            images += 1;
        }
        pids_in_order.extend(first_seen);
    }
    // Pids are global, contiguous 0..N-1, in corpus order, each in one video only.
    assert_eq!(
        pids_in_order,
        (0..pids_in_order.len() as u64).collect::<Vec<_>>()
    );
    let stats = r.corpus_stats().unwrap();
    assert_eq!(stats.videos, videos.len());
    assert_eq!(stats.videos, 5);
    assert_eq!(stats.tracklets, tracklets.len());
    assert_eq!(stats.tracklets, pids_in_order.len());
    assert_eq!(stats.images, images);

    let truth = SynthTruth::read(&dir).unwrap();
    assert_eq!(truth.frames.len(), images);
    for f in &truth.frames {
        assert!(dir.join(&f.path).is_file(), "{}", f.path);
        let (pid, frame, obj) = nl_name(f.path.rsplit('/').next().unwrap());
        assert_eq!((Some(pid), frame, obj), (f.tracklet, f.frame, f.obj));
    }
    let noise = r.noise.clone().unwrap();
    let tn = truth.noise.clone().unwrap();
    assert_eq!(
        (
            tn.images,
            tn.tracklets,
            tn.true_tracks,
            tn.mixed_tracklets,
            tn.false_detections
        ),
        (
            noise.images,
            noise.tracklets,
            noise.true_tracks,
            noise.mixed_tracklets,
            noise.false_detections
        )
    );
    // JSON keeps floats to about 1e-15.
    assert!((tn.mislabeled_fraction - noise.mislabeled_fraction).abs() < 1e-12);
    assert_eq!(noise.images, images);
    assert!(
        truth.frames.iter().any(|f| f.person == -1),
        "some false detections"
    );
    let _ = fs::remove_dir_all(out);
}

#[test]
fn luperson_nl_default_corpus_is_realistically_noisy() {
    let out = tmp("nl-default");
    let world = WorldConfig::default().with_height(32).with_width(16);
    let r = write_luperson_nl(&out, &world, &LupersonNlConfig::default()).unwrap();
    let n = r.noise.unwrap();
    assert!(
        (0.08..=0.25).contains(&n.mislabeled_fraction),
        "mislabeled fraction {}",
        n.mislabeled_fraction
    );
    assert!(
        n.tracklets_per_track > 1.1,
        "fragmentation {}",
        n.tracklets_per_track
    );
    assert!(n.mixed_tracklets > 0);
    assert!(n.persons_in_several_videos > 0);
    let _ = fs::remove_dir_all(out);
}

#[test]
fn luperson_keys_follow_the_converter() {
    let out = tmp("lup");
    let cfg = LupersonConfig::default().with_video(tiny_video());
    let r = write_luperson(&out, &tiny_world(8), &cfg).unwrap();
    let dir = out.join("LUPerson");
    let mut images = 0;
    let mut k_in_city: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let videos = video_dirs(&dir);
    for (i, j, vdir) in &videos {
        let k = *k_in_city
            .entry((*i, *j))
            .and_modify(|k| *k += 1)
            .or_insert(0);
        let names = files_in(vdir, ".jpg");
        for (m, n) in names.iter().enumerate() {
            assert_eq!(*n, format!("{i:02}_{j:02}_{k:04}_{m:08}.jpg"));
        }
        images += names.len();
    }
    let stats = r.corpus_stats().unwrap();
    assert_eq!(
        (stats.videos, stats.tracklets, stats.images),
        (videos.len(), 0, images)
    );
    let truth = SynthTruth::read(&dir).unwrap();
    assert!(truth.frames.iter().all(|f| f.tracklet.is_none()));
    // m follows (frame, obj) order.
    let mut by_video: BTreeMap<u32, Vec<(u64, u32, String)>> = BTreeMap::new();
    for f in &truth.frames {
        by_video
            .entry(f.video)
            .or_default()
            .push((f.frame, f.obj, f.path.clone()));
    }
    for v in by_video.values() {
        let mut sorted = v.clone();
        sorted.sort();
        let paths: Vec<_> = v.iter().map(|x| &x.2).collect();
        let mut by_name = paths.clone();
        by_name.sort();
        assert_eq!(paths, by_name);
        assert_eq!(*v, sorted);
    }
    let _ = fs::remove_dir_all(out);
}

#[test]
fn existing_output_is_refused_unless_overwrite() {
    let out = tmp("overwrite");
    let world = tiny_world(9);
    let cfg = tiny_market();
    write_market1501(&out, &world, &cfg).unwrap();
    let err = write_market1501(&out, &world, &cfg).unwrap_err();
    assert!(matches!(err, SynthError::InvalidArgument(_)));
    assert!(err.to_string().contains("not empty"), "{err}");
    let again = world.clone().with_overwrite(true).with_seed(10);
    write_market1501(&out, &again, &cfg).unwrap();
    assert_eq!(
        SynthTruth::read(&out.join("Market-1501-v15.09.15"))
            .unwrap()
            .seed,
        10
    );
    // A folder this generator did not write is never deleted, even with overwrite.
    let foreign = out.join("DukeMTMC-reID");
    fs::create_dir_all(&foreign).unwrap();
    fs::write(foreign.join("precious.txt"), b"keep me").unwrap();
    let err = write_dukemtmc(&out, &again, &tiny_duke()).unwrap_err();
    assert!(err.to_string().contains("refusing to delete"), "{err}");
    assert!(foreign.join("precious.txt").is_file());
    let _ = fs::remove_dir_all(out);
}

#[test]
fn bad_configs_are_invalid_arguments() {
    let out = tmp("bad");
    let w = tiny_world(0);
    let is_invalid = |r: reid_synth::Result<SynthReport>, needle: &str| match r {
        Err(SynthError::InvalidArgument(m)) => {
            assert!(m.contains(needle), "{m:?} lacks {needle:?}")
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let small = w.clone().with_height(8).with_width(4);
    let no_videos = LupersonNlConfig::default().with_video(tiny_video().with_videos(0));
    let market = |c: Market1501Config| write_market1501(&out, &w, &c);
    let msmt = tiny_msmt(MsmtVersion::V1).with_cameras(16);
    let cases = [
        (market(tiny_market().with_train_ids(0)), "train identities"),
        (market(tiny_market().with_cameras(7)), "cameras"),
        (market(tiny_market().with_cameras(0)), "cameras"),
        (
            write_dukemtmc(&out, &w, &tiny_duke().with_cameras(9)),
            "cameras",
        ),
        (write_msmt17(&out, &w, &msmt), "cameras"),
        (
            write_cuhk03_np(&out, &w, &tiny_cuhk().with_cameras(3)),
            "views",
        ),
        (write_market1501(&out, &small, &tiny_market()), "too small"),
        (write_luperson_nl(&out, &w, &no_videos), "videos"),
    ];
    for (r, needle) in cases {
        is_invalid(r, needle);
    }
    // Nothing was written for refused configs.
    assert!(fs::read_dir(&out).unwrap().next().is_none());
    let _ = fs::remove_dir_all(out);
}
