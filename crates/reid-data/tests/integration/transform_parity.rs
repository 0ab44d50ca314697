//! Resize parity against Pillow: fixtures from `tools/fixtures/gen_transform_fixtures.py`.

use image::RgbImage;
use reid_data::transform::{Interpolation, resize, resize_image_crate};

use crate::common::{fixture_manifest, load_fixture};

fn load(name: &str) -> RgbImage {
    load_fixture("transforms", name)
}

/// (max abs difference, mean abs difference) in 0–255 units.
fn diff(a: &RgbImage, b: &RgbImage) -> (u8, f64) {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut max = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += u64::from(d);
    }
    (max, sum as f64 / a.as_raw().len() as f64)
}

fn cases() -> Vec<serde_json::Value> {
    let m = fixture_manifest("transforms");
    m["cases"].as_array().expect("cases").clone()
}

#[test]
fn resize_matches_pil_within_one_level() {
    let cases = cases();
    assert!(cases.len() >= 8);
    for c in cases {
        let src = load(c["source"].as_str().unwrap());
        let expected = load(c["expected"].as_str().unwrap());
        let interp = match c["filter"].as_str().unwrap() {
            "bilinear" => Interpolation::Bilinear,
            "bicubic" => Interpolation::Bicubic,
            f => panic!("unknown filter {f}"),
        };
        let h = c["height"].as_u64().unwrap() as u32;
        let w = c["width"].as_u64().unwrap() as u32;
        let got = resize(&src, h, w, interp);
        let (max, mean) = diff(&got, &expected);
        assert!(max <= 1, "{c}: max diff {max}, mean {mean}");
    }
}

#[test]
fn pil_resampler_is_at_least_as_close_as_image_crate() {
    // Our resampler reproduces PIL's integer arithmetic; `image`'s filters
    // are float-based and only approximately equal.
    let (mut ours_total, mut theirs_total) = (0.0, 0.0);
    let (mut ours_max, mut theirs_max) = (0u8, 0u8);
    for c in cases() {
        let src = load(c["source"].as_str().unwrap());
        let expected = load(c["expected"].as_str().unwrap());
        let interp = if c["filter"] == "bicubic" {
            Interpolation::Bicubic
        } else {
            Interpolation::Bilinear
        };
        let h = c["height"].as_u64().unwrap() as u32;
        let w = c["width"].as_u64().unwrap() as u32;
        let (om, o) = diff(&resize(&src, h, w, interp), &expected);
        let (tm, t) = diff(&resize_image_crate(&src, h, w, interp), &expected);
        ours_total += o;
        theirs_total += t;
        ours_max = ours_max.max(om);
        theirs_max = theirs_max.max(tm);
    }
    eprintln!(
        "PIL parity: ours max {ours_max} mean-sum {ours_total:.4}; image crate max {theirs_max} mean-sum {theirs_total:.4}"
    );
    assert!(ours_max <= 1);
    assert!(ours_total <= theirs_total);
}
