//! Behaviour of the random pre-training views: shapes, determinism, the
//! per-recipe probabilities and the RandomResizedCrop box distribution.

use image::{Rgb, RgbImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use reid_data::normalize::{IMAGENET, LUPERSON, LUPERSON_NL};
use reid_data::transform::{Interpolation, resize, to_chw_normalized};
use reid_data::views::resized_crop::{CropBox, RandomResizedCrop};
use reid_data::views::{MultiCrop, PnlViews, TwoCrops, ViewParams, ViewPipeline};

fn test_image(h: u32, w: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 255 / w.max(1)) as u8,
            (y * 255 / h.max(1)) as u8,
            ((x * 7 + y * 13) % 256) as u8,
        ])
    })
}

#[test]
fn lup_view_shape_determinism_and_normalisation() {
    let img = test_image(120, 50);
    let view = ViewPipeline::lup();
    assert_eq!(view.norm, LUPERSON);
    let a = view.apply(&img, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
    let b = view.apply(&img, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
    let c = view.apply(&img, &mut ChaCha8Rng::seed_from_u64(6)).unwrap();
    assert_eq!(a.len(), 3 * 256 * 128);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Replaying identity parameters = resize + normalise.
    let params = ViewParams {
        crop: CropBox {
            top: 0,
            left: 0,
            height: 120,
            width: 50,
        },
        flip: false,
        jitter: None,
        grayscale: false,
        blur_sigma: None,
        solarize: false,
        erase: None,
    };
    let mut out = vec![0.0; view.len()];
    view.render(&img, &params, &mut out).unwrap();
    let expected = to_chw_normalized(&resize(&img, 256, 128, Interpolation::Bilinear), &LUPERSON);
    assert_eq!(out, expected);
    // Wrong buffer length is an error, not a panic.
    assert!(view.render(&img, &params, &mut out[1..]).is_err());
}

#[test]
fn lup_view_probabilities() {
    let view = ViewPipeline::lup();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let n = 4000;
    let (mut gray, mut blur, mut flip, mut erase) = (0, 0, 0, 0);
    for _ in 0..n {
        let p = view.sample(300, 120, &mut rng).unwrap();
        gray += usize::from(p.grayscale);
        blur += usize::from(p.blur_sigma.is_some());
        flip += usize::from(p.flip);
        erase += usize::from(p.erase.is_some());
        assert!(p.jitter.is_none() && !p.solarize);
        if let Some(s) = p.blur_sigma {
            assert!((0.1..=2.0).contains(&s));
        }
        if let Some(r) = p.erase {
            let frac = (r.height * r.width) as f64 / (256.0 * 128.0);
            assert!(frac > 0.015 && frac < 0.65, "{r:?}");
            assert!(r.top + r.height <= 256 && r.left + r.width <= 128);
        }
    }
    let rate = |k: usize| k as f64 / n as f64;
    assert!((rate(gray) - 0.2).abs() < 0.03, "{}", rate(gray));
    assert!((rate(blur) - 0.5).abs() < 0.04);
    assert!((rate(flip) - 0.5).abs() < 0.04);
    // Erasing: p = 0.5, and (almost) every draw finds a fitting rectangle.
    assert!((rate(erase) - 0.5).abs() < 0.04, "{}", rate(erase));
}

#[test]
fn random_resized_crop_boxes_follow_scale_and_ratio() {
    let rrc = RandomResizedCrop {
        scale: (0.2, 1.0),
        ..RandomResizedCrop::new(256, 128)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (h, w) = (200u32, 90u32);
    for _ in 0..2000 {
        let b = rrc.sample(h, w, &mut rng).unwrap();
        assert!(b.top + b.height <= h && b.left + b.width <= w, "{b:?}");
        let frac = f64::from(b.height * b.width) / f64::from(h * w);
        let ratio = f64::from(b.width) / f64::from(b.height);
        let fallback = b == rrc.fallback(h, w);
        if !fallback {
            assert!(frac > 0.17 && frac < 1.0 + 1e-9, "{b:?} {frac}");
            assert!(ratio > 0.7 && ratio < 1.42, "{b:?} {ratio}");
        }
    }
    assert!(rrc.sample(0, 5, &mut rng).is_err());
    let bad = RandomResizedCrop {
        scale: (0.9, 0.2),
        ..rrc
    };
    assert!(bad.sample(10, 10, &mut rng).is_err());
}

#[test]
fn two_crops_are_independent_draws() {
    let img = test_image(100, 40);
    let t = TwoCrops::lup();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let [q, k] = t.apply(&img, &mut rng).unwrap();
    assert_eq!(q.len(), 3 * 256 * 128);
    assert_ne!(q, k);
}

#[test]
fn pnl_views_use_lupnl_statistics() {
    let img = test_image(90, 40);
    let v = PnlViews::new();
    assert_eq!(v.weak.norm, LUPERSON_NL);
    assert_eq!(v.strong.norm, LUPERSON_NL);
    assert!(v.weak.erasing.is_none());
    assert_eq!(v.weak.interpolation, Interpolation::Bicubic);
    assert_eq!(v.weak.padding, 10);
    let (weak, strong) = v.apply(&img, &mut ChaCha8Rng::seed_from_u64(3)).unwrap();
    assert_eq!(weak.len(), 3 * 256 * 128);
    assert_eq!(strong.len(), 3 * 256 * 128);
    let mut short = vec![0.0; 10];
    let mut s2 = vec![0.0; strong.len()];
    assert!(
        v.write(&img, &mut ChaCha8Rng::seed_from_u64(3), &mut short, &mut s2)
            .is_err()
    );
}

#[test]
fn multicrop_order_sizes_and_probabilities() {
    let img = test_image(160, 64);
    let mc = MultiCrop::cion(8);
    assert_eq!(mc.num_crops(), 10);
    assert_eq!(mc.global1.norm, IMAGENET);
    let crops = mc.apply(&img, &mut ChaCha8Rng::seed_from_u64(9)).unwrap();
    let sizes = mc.crop_sizes();
    assert_eq!(sizes[0], (256, 128));
    assert_eq!(sizes[1], (256, 128));
    assert!(sizes[2..].iter().all(|&s| s == (128, 64)));
    for (c, (h, w)) in crops.iter().zip(&sizes) {
        assert_eq!(c.len(), 3 * (*h as usize) * (*w as usize));
    }
    // Wrong number of buffers.
    let mut a = vec![0.0; 3 * 256 * 128];
    let mut outs: Vec<&mut [f32]> = vec![&mut a];
    assert!(
        mc.write(&img, &mut ChaCha8Rng::seed_from_u64(9), &mut outs)
            .is_err()
    );

    // Probabilities per crop kind.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let n = 3000;
    let mut count = [[0usize; 4]; 3]; // [g1, g2, local] x [jitter, gray, blur, solarize]
    for _ in 0..n {
        for (k, view) in [&mc.global1, &mc.global2, &mc.local]
            .into_iter()
            .enumerate()
        {
            let p = view.sample(160, 64, &mut rng).unwrap();
            count[k][0] += usize::from(p.jitter.is_some());
            count[k][1] += usize::from(p.grayscale);
            count[k][2] += usize::from(p.blur_sigma.is_some());
            count[k][3] += usize::from(p.solarize);
            assert!(p.erase.is_none());
            let ratio = f64::from(p.crop.width) / f64::from(p.crop.height);
            let frac = f64::from(p.crop.width * p.crop.height) / (160.0 * 64.0);
            if k < 2 {
                assert!(frac > 0.75, "{frac}");
            } else {
                assert!(frac < 0.85, "{frac}");
            }
            assert!((0.35..0.65).contains(&ratio), "{ratio} {:?}", p.crop);
        }
    }
    let rate = |c: usize| c as f64 / n as f64;
    let expect = [
        [0.8, 0.2, 1.0, 0.0],
        [0.8, 0.2, 0.1, 0.2],
        [0.8, 0.2, 0.5, 0.0],
    ];
    for k in 0..3 {
        for j in 0..4 {
            let got = rate(count[k][j]);
            assert!(
                (got - expect[k][j]).abs() < 0.04,
                "crop {k} stat {j}: {got}"
            );
        }
    }
}

#[test]
fn views_reject_empty_images() {
    let img = RgbImage::new(0, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert!(ViewPipeline::lup().apply(&img, &mut rng).is_err());
    assert!(MultiCrop::cion(2).apply(&img, &mut rng).is_err());
    assert!(PnlViews::new().apply(&img, &mut rng).is_err());
}

#[test]
fn invalid_view_parameters_are_errors() {
    let img = test_image(50, 20);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut v = reid_data::views::LupView::lup();
    v.erasing = v.erasing.map(|mut e| {
        e.scale = (0.5, 0.1);
        e
    });
    assert!(v.apply(&img, &mut rng).is_err());
    let mut v = ViewPipeline::lup();
    v.grayscale_p = 1.5;
    assert!(v.apply(&img, &mut rng).is_err());
    let mut v = MultiCrop::cion(2);
    v.local.jitter = v.local.jitter.map(|mut j| {
        j.hue = 0.7;
        j
    });
    assert!(v.apply(&img, &mut rng).is_err());
}
