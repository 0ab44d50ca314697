//! Re-identification on the synthetic world is learnable but not trivial:
//! on the default Market-style set, a crude descriptor (mean colour of 8
//! horizontal stripes) with nearest-neighbour matching across cameras scores
//! a rank-1 far above chance and far below perfect.

use std::fs;
use std::path::{Path, PathBuf};

use reid_synth::{Market1501Config, WorldConfig, write_market1501};

/// Mean RGB of `STRIPES` horizontal stripes, each stripe's vector
/// L2-normalised (so brightness changes matter less), concatenated.
const STRIPES: u32 = 8;

fn descriptor(path: &Path) -> Vec<f32> {
    let img = image::open(path).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let mut d = Vec::with_capacity((STRIPES * 3) as usize);
    for s in 0..STRIPES {
        let (y0, y1) = (s * h / STRIPES, (s + 1) * h / STRIPES);
        let mut acc = [0f32; 3];
        for y in y0..y1 {
            for x in 0..w {
                let p = img.get_pixel(x, y);
                for c in 0..3 {
                    acc[c] += f32::from(p[c]);
                }
            }
        }
        let norm = acc.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
        d.extend(acc.iter().map(|v| v / norm));
    }
    d
}

/// `(pid, camera, descriptor)` of every image in `dir`, junk dropped.
fn load(dir: &Path) -> Vec<(i64, u32, Vec<f32>)> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let n = p.file_name().unwrap().to_str().unwrap().to_string();
        let (pid, rest) = n.split_once("_c").unwrap();
        let pid: i64 = pid.parse().unwrap();
        if pid == -1 {
            continue;
        }
        out.push((pid, rest[..1].parse().unwrap(), descriptor(&p)));
    }
    out
}

#[test]
fn crude_descriptor_rank1_is_above_chance_and_below_perfect() {
    let out = std::env::temp_dir().join(format!("reid-synth-difficulty-{}", std::process::id()));
    let _ = fs::remove_dir_all(&out);
    let seed = std::env::var("SYNTH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let r = write_market1501(
        &out,
        &WorldConfig::default().with_seed(seed),
        &Market1501Config::default(),
    )
    .unwrap();
    let query = load(&r.dataset_dir.join("query"));
    let gallery = load(&r.dataset_dir.join("bounding_box_test"));
    let mut hits = 0;
    let mut valid = 0;
    for (qp, qc, qd) in &query {
        let best = gallery
            .iter()
            .filter(|(_, gc, _)| gc != qc)
            .map(|(gp, _, gd)| {
                let d: f32 = qd.iter().zip(gd).map(|(a, b)| (a - b) * (a - b)).sum();
                (d, *gp)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, gp)) = best {
            valid += 1;
            hits += usize::from(gp == *qp);
        }
    }
    let rank1 = hits as f64 / valid as f64;
    let gallery_ids = r.dataset_stats().unwrap().gallery.ids as f64;
    let chance = 1.0 / gallery_ids;
    println!(
        "rank-1 {rank1:.3} over {valid} queries; chance {chance:.4} ({gallery_ids} gallery ids)"
    );
    assert!(
        rank1 > 5.0 * chance,
        "rank-1 {rank1} is not clearly above chance {chance}"
    );
    assert!(rank1 < 0.9, "rank-1 {rank1} is too easy");
    let _ = fs::remove_dir_all(out);
}
