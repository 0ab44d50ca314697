//! BoT train augmentations: exact deterministic parts, seeded random draws.

use image::{Rgb, RgbImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use reid_data::augment::{
    RandomErasing, Rect, TrainTransform, erase, hflip, pad_crop, random_hflip, random_pad_crop,
};
use reid_data::normalize::IMAGENET;

fn ramp(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, (x + 10 * y) as u8]))
}

#[test]
fn hflip_mirrors_columns() {
    let img = ramp(5, 3);
    let f = hflip(&img);
    for y in 0..3 {
        for x in 0..5 {
            assert_eq!(f.get_pixel(x, y), img.get_pixel(4 - x, y));
        }
    }
}

#[test]
fn random_hflip_rate_is_about_half_and_seeded() {
    let img = ramp(4, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let flips = (0..4000)
        .filter(|_| random_hflip(img.clone(), 0.5, &mut rng) != img)
        .count();
    assert!((1850..=2150).contains(&flips), "{flips}");
    let mut a = ChaCha8Rng::seed_from_u64(9);
    let mut b = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..20 {
        assert_eq!(
            random_hflip(img.clone(), 0.5, &mut a),
            random_hflip(img.clone(), 0.5, &mut b)
        );
    }
}

#[test]
fn pad_crop_at_given_offsets() {
    let img = ramp(6, 4);
    let fill = [1, 2, 3];
    // Offset (pad, pad) is the identity.
    assert_eq!(pad_crop(&img, 2, 2, 2, fill), img);
    // Offset (0, 0): shifted right/down by pad, fill on top/left.
    let c = pad_crop(&img, 2, 0, 0, fill);
    for y in 0..4 {
        for x in 0..6 {
            let expected = if x < 2 || y < 2 {
                Rgb(fill)
            } else {
                *img.get_pixel(x - 2, y - 2)
            };
            assert_eq!(*c.get_pixel(x, y), expected, "({x},{y})");
        }
    }
    // Offset (2·pad, 2·pad - 1): shifted up by pad, left by pad - 1.
    let c = pad_crop(&img, 2, 4, 3, fill);
    for y in 0..4 {
        for x in 0..6 {
            let (sx, sy) = (x + 1, y + 2);
            let expected = if sx >= 6 || sy >= 4 {
                Rgb(fill)
            } else {
                *img.get_pixel(sx, sy)
            };
            assert_eq!(*c.get_pixel(x, y), expected, "({x},{y})");
        }
    }
}

#[test]
fn random_pad_crop_offsets_cover_the_range() {
    // A single white pixel at the centre reveals the offset.
    let mut img = RgbImage::from_pixel(31, 31, Rgb([0, 0, 0]));
    img.put_pixel(15, 15, Rgb([255, 255, 255]));
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3000 {
        let c = random_pad_crop(&img, 10, [0; 3], &mut rng);
        let (x, y) = c
            .enumerate_pixels()
            .find(|(_, _, p)| p.0[0] == 255)
            .map(|(x, y, _)| (x, y))
            .unwrap();
        seen.insert((x, y));
    }
    // Offsets 0..=20 on each axis → pixel positions 5..=25: 21 × 21 values.
    assert_eq!(seen.len(), 21 * 21);
}

#[test]
fn erase_fills_exactly_the_rectangle() {
    let (h, w) = (5, 4);
    let mut buf: Vec<f32> = (0..3 * h * w).map(|i| i as f32).collect();
    let orig = buf.clone();
    let rect = Rect {
        top: 1,
        left: 2,
        height: 3,
        width: 5,
    };
    erase(&mut buf, h, w, rect, [-1.0, -2.0, -3.0]);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let i = c * h * w + y * w + x;
                let inside = (1..4).contains(&y) && x >= 2;
                let expected = if inside { -(c as f32) - 1.0 } else { orig[i] };
                assert_eq!(buf[i], expected, "c{c} ({x},{y})");
            }
        }
    }
}

fn check_erasing_distribution(e: RandomErasing, max_area: f64, rmin: f64, rmax: f64) {
    let (h, w) = (256usize, 128usize);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let n = 4000;
    let mut hits = 0;
    for _ in 0..n {
        if let Some(r) = e.sample_rect(h, w, &mut rng) {
            hits += 1;
            assert!(r.top + r.height <= h && r.left + r.width <= w);
            assert!(r.height < h && r.width < w);
            let area = (r.height * r.width) as f64 / (h * w) as f64;
            assert!(area < max_area * 1.1 && area > 0.02 * 0.8, "area {area}");
            let ratio = r.height as f64 / r.width as f64;
            assert!(ratio > rmin * 0.8 && ratio < rmax * 1.25, "ratio {ratio}");
        }
    }
    // p = 0.5, and some draws do not fit (tall rectangles in a 256 × 128 image).
    assert!((1500..=2150).contains(&hits), "{hits}");
}

#[test]
fn erasing_variants_have_the_upstream_parameters() {
    let f = RandomErasing::fastreid();
    assert_eq!(
        (f.p, f.scale, f.ratio, f.attempts, f.fill),
        (0.5, (0.02, 0.33), (0.3, 3.3), 10, [0.0; 3])
    );
    let t = RandomErasing::torchreid(&IMAGENET);
    assert_eq!(
        (t.p, t.scale, t.attempts, t.fill),
        (0.5, (0.02, 0.4), 100, IMAGENET.mean)
    );
    check_erasing_distribution(f, 0.33, 0.3, 3.3);
    check_erasing_distribution(t, 0.4, 0.3, 1.0 / 0.3);
}

#[test]
fn erasing_applies_the_fill_and_is_seeded() {
    let (h, w) = (16usize, 8usize);
    let t = RandomErasing {
        p: 1.0,
        ..RandomErasing::torchreid(&IMAGENET)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut buf = vec![9.0f32; 3 * h * w];
    let r = t.apply(&mut buf, h, w, &mut rng).expect("p = 1 erases");
    let erased = buf.iter().filter(|&&v| v != 9.0).count();
    assert_eq!(erased, 3 * r.height * r.width);
    assert_eq!(buf[r.top * w + r.left], IMAGENET.mean[0]);
    assert_eq!(buf[2 * h * w + r.top * w + r.left], IMAGENET.mean[2]);
    let mut rng2 = ChaCha8Rng::seed_from_u64(2);
    assert_eq!(t.sample_rect(h, w, &mut rng2), Some(r));
}

#[test]
fn train_transform_shapes_determinism_and_no_augment_identity() {
    let img = ramp(64, 128);
    let bot = TrainTransform::bot(256, 128);
    let a = bot.apply(&img, &mut ChaCha8Rng::seed_from_u64(1));
    let b = bot.apply(&img, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(a.len(), 3 * 256 * 128);
    assert_eq!(a, b);
    let any_diff = (2..10).any(|s| bot.apply(&img, &mut ChaCha8Rng::seed_from_u64(s)) != a);
    assert!(any_diff);
    // With every augmentation off it is resize + normalise.
    let plain = TrainTransform {
        flip_p: 0.0,
        padding: 0,
        erasing: None,
        ..bot.clone()
    };
    let got = plain.apply(&img, &mut ChaCha8Rng::seed_from_u64(0));
    let resized = reid_data::transform::resize(&img, 256, 128, bot.interpolation);
    assert_eq!(
        got,
        reid_data::transform::to_chw_normalized(&resized, &IMAGENET)
    );
}
