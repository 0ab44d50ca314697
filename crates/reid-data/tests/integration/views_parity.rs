//! Pixel parity of the pre-training view ops against Pillow / torchvision:
//! fixtures from `tools/fixtures/gen_view_fixtures.py` (tests/fixtures/views/).

use std::collections::BTreeMap;

use image::RgbImage;
use reid_data::transform::Interpolation;
use reid_data::views::color::{
    ColorJitter, JitterOp, JitterParams, adjust_brightness, adjust_contrast, adjust_hue,
    adjust_saturation, grayscale, solarize,
};
use reid_data::views::resized_crop::{CropBox, RandomResizedCrop, resized_crop};
use reid_data::views::{ViewParams, ViewPipeline, gaussian_blur};
use serde_json::Value;

use crate::common::{fixture_manifest, load_fixture};

fn load(name: &str) -> RgbImage {
    load_fixture("views", name)
}

fn manifest() -> Value {
    fixture_manifest("views")
}

/// (max abs difference, number of differing bytes) in 0–255 units.
fn diff(a: &RgbImage, b: &RgbImage) -> (u8, usize) {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut max = 0u8;
    let mut n = 0;
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        n += usize::from(d > 0);
    }
    (max, n)
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn u(v: &Value, key: &str) -> u32 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}")) as u32
}

/// The array of non-negative integers `v[key]`.
fn us(v: &Value, key: &str) -> Vec<u32> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn interp(name: &str) -> Interpolation {
    match name {
        "bilinear" => Interpolation::Bilinear,
        "bicubic" => Interpolation::Bicubic,
        other => panic!("unknown filter {other}"),
    }
}

/// Our output for one manifest case.
fn run_case(case: &Value, src: &RgbImage) -> RgbImage {
    let p = &case["params"];
    match case["op"].as_str().unwrap() {
        "grayscale" => grayscale(src),
        "brightness" => adjust_brightness(src, f(p, "factor")),
        "contrast" => adjust_contrast(src, f(p, "factor")),
        "saturation" => adjust_saturation(src, f(p, "factor")),
        "hue" => adjust_hue(src, f(p, "factor")).unwrap(),
        "solarize" => solarize(src, u(p, "threshold") as u8),
        "gaussian_blur" => gaussian_blur(src, f(p, "radius") as f32),
        "resized_crop" => resized_crop(
            src,
            CropBox {
                top: u(p, "top"),
                left: u(p, "left"),
                height: u(p, "height"),
                width: u(p, "width"),
            },
            u(p, "out_height"),
            u(p, "out_width"),
            interp(p["interpolation"].as_str().unwrap()),
        )
        .unwrap(),
        "chain" => {
            let (c, size, order) = (us(p, "crop"), us(p, "out_size"), us(p, "jitter_order"));
            let mut view = ViewPipeline::lup();
            view.crop = RandomResizedCrop {
                height: size[0],
                width: size[1],
                ..view.crop
            };
            view.crop.interpolation = interp(p["interpolation"].as_str().unwrap());
            let params = ViewParams {
                crop: CropBox {
                    top: c[0],
                    left: c[1],
                    height: c[2],
                    width: c[3],
                },
                flip: p["flip"].as_bool().unwrap(),
                jitter: Some(JitterParams {
                    order: std::array::from_fn(|i| JitterOp::from_index(order[i] as usize)),
                    brightness: Some(f(p, "brightness")),
                    contrast: Some(f(p, "contrast")),
                    saturation: Some(f(p, "saturation")),
                    hue: Some(f(p, "hue")),
                }),
                grayscale: p["grayscale"].as_bool().unwrap(),
                blur_sigma: Some(f(p, "blur_radius")),
                solarize: p["solarize"].as_bool().unwrap(),
                erase: None,
            };
            view.render_image(src, &params).unwrap()
        }
        other => panic!("unknown op {other}"),
    }
}

#[test]
fn every_op_matches_pillow_exactly() {
    let m = manifest();
    let cases = m["cases"].as_array().expect("cases");
    assert!(cases.len() >= 60, "{} cases", cases.len());
    // op -> (max abs error, differing bytes, cases)
    let mut summary: BTreeMap<String, (u8, usize, usize)> = BTreeMap::new();
    for case in cases {
        let src = load(case["source"].as_str().unwrap());
        let expected = load(case["expected"].as_str().unwrap());
        let got = run_case(case, &src);
        let (max, n) = diff(&got, &expected);
        let e = summary
            .entry(case["op"].as_str().unwrap().to_string())
            .or_default();
        e.0 = e.0.max(max);
        e.1 += n;
        e.2 += 1;
        if max > 0 {
            eprintln!("{}: max {max}, {n} bytes differ", case["expected"]);
        }
    }
    for (op, (max, n, count)) in &summary {
        eprintln!("{op:>14}: {count} cases, max abs error {max}/255, {n} bytes differ");
    }
    for (op, (max, _, _)) in &summary {
        assert_eq!(*max, 0, "{op} differs from Pillow");
    }
}

#[test]
fn random_resized_crop_fallback_matches_torchvision() {
    let m = manifest();
    let cases = m["rrc_fallback"].as_array().expect("rrc_fallback");
    assert!(!cases.is_empty());
    for c in cases {
        let (h, w) = (u(c, "height"), u(c, "width"));
        let r: Vec<f64> = c["ratio"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let b: Vec<u32> = c["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let rrc = RandomResizedCrop {
            scale: (5.0, 6.0),
            ratio: (r[0], r[1]),
            ..RandomResizedCrop::new(16, 8)
        };
        let expected = CropBox {
            top: b[0],
            left: b[1],
            height: b[2],
            width: b[3],
        };
        assert_eq!(rrc.fallback(h, w), expected, "{c}");
        // An unreachable scale always ends in the fallback.
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        assert_eq!(rrc.sample(h, w, &mut rng).unwrap(), expected, "{c}");
    }
}

#[test]
fn color_jitter_default_is_dino_strengths() {
    let cj = ColorJitter::default();
    assert_eq!(
        (cj.brightness, cj.contrast, cj.saturation, cj.hue),
        (0.4, 0.4, 0.2, 0.1)
    );
}
