//! The training loader on a tiny synthetic Market-1501 set: determinism
//! across runs and thread counts, labels, the corrupt-image policy, the
//! prefetch bound and error propagation, and burn's Dataset/Batcher traits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Int, Tensor};
use reid_data::augment::TrainTransform;
use reid_data::datasets::{ImageDatasetOptions, market1501};
use reid_data::loader::{
    CorruptPolicy, FnTransform, HostBatch, Prefetch, ReidDataset, TrainBatcher, TrainLoader,
};
use reid_data::sampler::PkSampler;
use reid_data::{DataError, ImageRecord};
use reid_synth::{Market1501Config, WorldConfig, write_market1501};

const H: u32 = 32;
const W: u32 = 16;

/// A tiny Market-style set in a fresh temp dir; returns the dir (kept alive
/// by the caller) and the training records.
/// The values of an integer tensor as `i64`.
fn ints(t: Tensor<1, Int>) -> Vec<i64> {
    t.into_data().convert::<i64>().try_to_vec::<i64>().unwrap()
}

fn market(seed: u64) -> (tempfile::TempDir, Vec<ImageRecord>) {
    let dir = tempfile::tempdir().unwrap();
    let world = WorldConfig::sized(seed, 48, 24);
    let cfg = Market1501Config::small(6, 2);
    write_market1501(dir.path(), &world, &cfg).unwrap();
    let parsed = market1501::parse(dir.path(), &ImageDatasetOptions::default()).unwrap();
    (dir, parsed.splits.train)
}

fn loader(records: &[ImageRecord], seed: u64, threads: usize) -> TrainLoader<TrainTransform> {
    TrainLoader::new(
        ReidDataset::from_files(records.to_vec()),
        TrainTransform::bot(H, W),
        seed,
    )
    .with_threads(threads)
    .unwrap()
}

fn load_all(l: &TrainLoader<TrainTransform>, batches: &[Vec<usize>], epoch: u64) -> Vec<HostBatch> {
    batches
        .iter()
        .enumerate()
        .map(|(b, idx)| l.load(idx, epoch, b as u64).unwrap())
        .collect()
}

/// Writes a truncated copy of `src` and a garbage file next to it.
fn corrupt_files(src: &Path) -> (PathBuf, PathBuf) {
    let dir = src.parent().unwrap();
    let bytes = std::fs::read(src).unwrap();
    let truncated = dir.join("truncated_c1s1_000001_01.jpg");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.join("garbage_c1s1_000002_01.jpg");
    std::fs::write(&garbage, b"\xFF\xD8\xFF\xE0 this is not image data at all").unwrap();
    (truncated, garbage)
}

/// Appends a truncated (pid 0, camera 0) and a garbage (pid 1, camera
/// `garbage_camid`) copy of the first record's image to `recs`; returns
/// their paths.
fn push_corrupt_copies(recs: &mut Vec<ImageRecord>, garbage_camid: u32) -> (PathBuf, PathBuf) {
    let (truncated, garbage) = corrupt_files(path_of(&recs[0]));
    recs.push(ImageRecord::new(&truncated, 0, 0));
    recs.push(ImageRecord::new(&garbage, 1, garbage_camid));
    (truncated, garbage)
}

fn path_of(r: &ImageRecord) -> &Path {
    match &r.location {
        reid_data::ImageLocation::Path(p) => p,
        reid_data::ImageLocation::LmdbKey(_) => panic!("expected a file record"),
    }
}

#[test]
fn batches_are_identical_across_runs_and_thread_counts() {
    let (_dir, recs) = market(3);
    let batches = PkSampler::new(&recs, 3, 2, 11).unwrap().epoch(0);
    assert!(batches.len() >= 2, "{} batches", batches.len());
    let one = load_all(&loader(&recs, 5, 1), &batches, 0);
    let two = load_all(&loader(&recs, 5, 2), &batches, 0);
    let again = load_all(&loader(&recs, 5, 2), &batches, 0);
    assert_eq!(one, two, "1 vs 2 threads");
    assert_eq!(two, again, "two runs");
    // Same indices, another seed or epoch: other augmentations.
    let other_seed = load_all(&loader(&recs, 6, 2), &batches, 0);
    let other_epoch = load_all(&loader(&recs, 5, 2), &batches, 1);
    assert_ne!(one[0].data, other_seed[0].data);
    assert_ne!(one[0].data, other_epoch[0].data);
    for b in &one {
        assert_eq!(b.shape, [6, 3, H as usize, W as usize]);
        assert_eq!(b.data.len(), 6 * 3 * (H * W) as usize);
        assert!(b.data.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn labels_and_tensors_follow_the_records() {
    let (_dir, recs) = market(4);
    let l = loader(&recs, 1, 2);
    let batches = PkSampler::new(&recs, 2, 3, 2).unwrap().epoch(0);
    let device = Device::flex();
    for (b, idx) in batches.iter().enumerate() {
        let host = l.load(idx, 0, b as u64).unwrap();
        assert_eq!(&host.indices, idx);
        let pids: Vec<i64> = idx.iter().map(|&i| recs[i].pid).collect();
        let cams: Vec<i64> = idx.iter().map(|&i| i64::from(recs[i].camid)).collect();
        assert_eq!(host.pids, pids);
        assert_eq!(host.camids, cams);
        let t = host.clone().into_tensors(&device);
        assert_eq!(t.images.dims(), [6, 3, H as usize, W as usize]);
        assert_eq!(ints(t.pids), pids);
        assert_eq!(ints(t.camids), cams);
        let ti: Vec<f32> = t.images.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(ti, host.data);
    }
    let stats = l.stats();
    assert_eq!(stats.images, 6 * batches.len() as u64);
    assert_eq!(stats.skipped, 0);
}

#[test]
fn skip_policy_drops_and_counts_corrupt_images() {
    let (_dir, mut recs) = market(5);
    let (truncated, garbage) = push_corrupt_copies(&mut recs, 2);
    let n = recs.len();
    let batch = vec![0, n - 2, 1, n - 1, 2];
    let l = loader(&recs, 0, 2).with_policy(CorruptPolicy::Skip);
    let host = l.load(&batch, 0, 0).unwrap();
    assert_eq!(host.indices, vec![0, 1, 2]);
    assert_eq!(host.skipped, vec![n - 2, n - 1]);
    assert_eq!(host.shape[0], 3);
    assert_eq!(host.data.len(), 3 * 3 * (H * W) as usize);
    let stats = l.stats();
    assert_eq!(stats.images, 3);
    assert_eq!(stats.skipped, 2);
    assert_eq!(
        stats.skipped_paths,
        vec![truncated.clone(), garbage.clone()]
    );
    // The kept images are the same as in a batch without the bad ones, up to
    // their position (the seed includes the position): check position 0.
    let clean = loader(&recs, 0, 1).load(&[0], 0, 0).unwrap();
    let per = 3 * (H * W) as usize;
    assert_eq!(host.data[..per], clean.data[..]);
    // A batch of corrupt images only is dropped from an epoch.
    let epoch: Vec<HostBatch> = l
        .epoch(vec![vec![n - 2, n - 1], vec![0, 1]], 0, 2)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(epoch.len(), 1);
    assert_eq!(epoch[0].indices, vec![0, 1]);
    assert_eq!(l.stats().skipped, 4);
}

#[test]
fn error_policy_names_the_corrupt_file() {
    let (_dir, mut recs) = market(6);
    let (truncated, garbage) = push_corrupt_copies(&mut recs, 0);
    let n = recs.len();
    let l = loader(&recs, 0, 2);
    assert_eq!(l.policy(), CorruptPolicy::Error);
    for (bad, path) in [(n - 2, &truncated), (n - 1, &garbage)] {
        let err = l.load(&[0, bad, 1], 0, 0).unwrap_err();
        assert!(matches!(err, DataError::Image { .. }), "{err}");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(err.to_string().contains(name), "{err}");
    }
    // A missing file is an error even when skipping corrupt ones.
    recs.push(ImageRecord::new(recs[0].location_path_missing(), 0, 0));
    let l = loader(&recs, 0, 1).with_policy(CorruptPolicy::Skip);
    let err = l.load(&[recs.len() - 1], 0, 0).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err}");
    // An index out of range is an error, not a panic.
    assert!(l.load(&[recs.len()], 0, 0).is_err());
}

/// Test helper: a path next to a record's file that does not exist.
trait MissingPath {
    fn location_path_missing(&self) -> PathBuf;
}

impl MissingPath for ImageRecord {
    fn location_path_missing(&self) -> PathBuf {
        path_of(self).with_file_name("missing_c1s1_000003_01.jpg")
    }
}

/// Polls `f` until it returns true or 5 s pass.
fn eventually(f: impl Fn() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

#[test]
fn prefetch_never_runs_more_than_capacity_ahead() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pulled);
    let source = (0..100usize).map(move |i| {
        p.fetch_add(1, Ordering::SeqCst);
        Ok::<_, DataError>(i)
    });
    let capacity = 3;
    let mut it = Prefetch::spawn(capacity, source).unwrap();
    // Nothing received: the producer fills up to `capacity` and stops there.
    assert!(eventually(|| pulled.load(Ordering::SeqCst) == capacity));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pulled.load(Ordering::SeqCst), capacity);
    for received in 1..=5 {
        assert_eq!(it.next().unwrap().unwrap(), received - 1);
        assert!(eventually(
            || pulled.load(Ordering::SeqCst) == received + capacity
        ));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(pulled.load(Ordering::SeqCst), received + capacity);
    }
    // Dropping stops the producer.
    drop(it);
    let at_drop = pulled.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pulled.load(Ordering::SeqCst), at_drop);
    assert!(at_drop <= 5 + capacity + 1);
    assert!(Prefetch::spawn(0, std::iter::empty::<Result<(), DataError>>()).is_err());
}

#[test]
fn loader_epoch_is_bounded_and_equals_direct_loads() {
    let (_dir, recs) = market(7);
    let done = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&done);
    let bot = TrainTransform::bot(H, W);
    let counting = FnTransform::new([3, H as usize, W as usize], move |img, rng, out| {
        bot.write(img, rng, out);
        d.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    let sampler = PkSampler::new(&recs, 2, 2, 3).unwrap();
    let batches = sampler.epoch(0);
    assert!(batches.len() >= 4, "{} batches", batches.len());
    let l = TrainLoader::new(ReidDataset::from_files(recs.clone()), counting, 9)
        .with_threads(2)
        .unwrap();
    let capacity = 2;
    let mut it = l.epoch(batches.clone(), 0, capacity).unwrap();
    // At rest, exactly `capacity` batches of 4 images have been built.
    assert!(eventually(|| done.load(Ordering::SeqCst) == capacity * 4));
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(done.load(Ordering::SeqCst), capacity * 4);
    let first = it.next().unwrap().unwrap();
    let mut got = vec![first];
    got.extend(it.map(Result::unwrap));
    assert_eq!(got.len(), batches.len());
    // Same bytes as loading directly with the plain BoT transform.
    let direct = load_all(&loader(&recs, 9, 1), &batches, 0);
    assert_eq!(got, direct);
}

#[test]
fn prefetch_passes_errors_on_and_stops() {
    let (_dir, mut recs) = market(8);
    let (truncated, _) = corrupt_files(path_of(&recs[0]));
    recs.push(ImageRecord::new(&truncated, 0, 0));
    let bad = recs.len() - 1;
    let l = loader(&recs, 0, 2);
    let mut it = l
        .epoch(vec![vec![0, 1], vec![2, bad], vec![3, 4]], 0, 2)
        .unwrap();
    assert_eq!(it.next().unwrap().unwrap().indices, vec![0, 1]);
    let err = it.next().unwrap().unwrap_err().to_string();
    assert!(err.contains("truncated_c1s1_000001_01.jpg"), "{err}");
    assert!(it.next().is_none());
}

#[test]
fn burn_dataset_and_batcher_traits() {
    let (_dir, recs) = market(9);
    let ds = ReidDataset::from_files(recs.clone());
    assert_eq!(Dataset::len(&ds), recs.len());
    let item = ds.get(2).unwrap();
    assert_eq!(
        (item.index, item.pid, item.camid),
        (2, recs[2].pid, recs[2].camid)
    );
    assert_eq!(item.image.dimensions(), (24, 48));
    assert!(ds.get(recs.len()).is_err());
    let items = ds.get_many(vec![0, 1, 2, 3]).unwrap();
    let device = Device::flex();
    let one = TrainBatcher::new(TrainTransform::bot(H, W), 4)
        .with_threads(1)
        .unwrap();
    let two = TrainBatcher::new(TrainTransform::bot(H, W), 4)
        .with_threads(2)
        .unwrap();
    let a = one.batch(items.clone(), &device).unwrap();
    let b = two.batch(items.clone(), &device).unwrap();
    assert_eq!(a.images.dims(), [4, 3, H as usize, W as usize]);
    assert_eq!(a.indices, vec![0, 1, 2, 3]);
    let (va, vb): (Vec<f32>, Vec<f32>) = (
        a.images.into_data().try_to_vec::<f32>().unwrap(),
        b.images.into_data().try_to_vec::<f32>().unwrap(),
    );
    assert_eq!(va, vb);
    two.set_epoch(1);
    let c: Vec<f32> = two
        .batch(items, &device)
        .unwrap()
        .images
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_ne!(va, c);
    // Through burn's own data loader (2 worker threads, batches of 3).
    let dl = DataLoaderBuilder::new(TrainBatcher::new(TrainTransform::bot(H, W), 4))
        .batch_size(3)
        .num_workers(2)
        .build(ReidDataset::from_files(recs[..7].to_vec()).into_burn());
    let mut seen = Vec::new();
    for batch in dl.iter() {
        let batch = batch.unwrap().unwrap();
        assert_eq!(batch.images.dims()[1..], [3, H as usize, W as usize]);
        seen.extend(batch.indices);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..7).collect::<Vec<_>>());
}

#[cfg(feature = "lmdb")]
#[test]
fn lmdb_records_load_like_files_and_skip_corrupt_values() {
    use reid_data::ImageLocation;
    use reid_data::datasets::lmdb::{LmdbReader, write_env};
    use reid_data::loader::ImageSource;

    let (dir, recs) = market(10);
    let keys: Vec<String> = (0..4).map(|i| format!("vid0/{i:02}.jpg")).collect();
    let bytes: Vec<Vec<u8>> = recs[..4]
        .iter()
        .map(|r| std::fs::read(path_of(r)).unwrap())
        .collect();
    let bad = bytes[0][..bytes[0].len() / 2].to_vec();
    let env = dir.path().join("lmdb");
    let mut items: Vec<(&str, &[u8])> = keys
        .iter()
        .zip(&bytes)
        .map(|(k, b)| (k.as_str(), b.as_slice()))
        .collect();
    items.push(("vid0/bad.jpg", &bad));
    write_env(&env, items, 1 << 24).unwrap();
    let reader = Arc::new(LmdbReader::open(&env).unwrap());
    let with_key = |key: &str, r: &ImageRecord| ImageRecord {
        location: ImageLocation::LmdbKey(key.to_string()),
        ..r.clone()
    };
    let mut lrecs: Vec<ImageRecord> = keys
        .iter()
        .zip(&recs)
        .map(|(k, r)| with_key(k, r))
        .collect();
    lrecs.push(with_key("vid0/bad.jpg", &recs[0]));
    lrecs.push(with_key("vid0/missing.jpg", &recs[0]));
    let from_lmdb = TrainLoader::new(
        ReidDataset::new(lrecs, ImageSource::lmdb(reader)),
        TrainTransform::bot(H, W),
        3,
    )
    .with_policy(CorruptPolicy::Skip);
    let from_files = TrainLoader::new(
        ReidDataset::from_files(recs[..4].to_vec()),
        TrainTransform::bot(H, W),
        3,
    );
    // The corrupt value is last, so the others keep their positions (seeds).
    let a = from_lmdb.load(&[0, 1, 2, 3, 4], 0, 0).unwrap();
    let b = from_files.load(&[0, 1, 2, 3], 0, 0).unwrap();
    assert_eq!(a.data, b.data);
    assert_eq!(a.pids, b.pids);
    assert_eq!(a.skipped, vec![4]);
    assert_eq!(
        from_lmdb.stats().skipped_paths,
        vec![env.join("vid0/bad.jpg")]
    );
    // A missing key is an error naming it, whatever the policy.
    let err = from_lmdb.load(&[5], 0, 0).unwrap_err().to_string();
    assert!(err.contains("vid0/missing.jpg"), "{err}");
}
