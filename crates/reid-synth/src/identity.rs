//! The stable appearance of one synthetic person: clothing colours and
//! patterns, body proportions, skin and hair, accessories.
//!
//! An [`Identity`] never changes between images; everything that varies per
//! image (pose, occlusion, framing) lives in [`super::render::Shot`].

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A linear RGB colour, each channel in `[0, 1]`.
pub type Rgb = [f32; 3];

/// Converts HSV (`h` in degrees `[0, 360)`, `s` and `v` in `[0, 1]`) to RGB in `[0, 1]`.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> Rgb {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let m = v - c;
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    [r + m, g + m, b + m]
}

/// Samples a clothing colour: about 40 % near-neutral (black, grey, white,
/// the most common colours of real street clothing), the rest saturated.
pub fn sample_clothing_colour<R: Rng + ?Sized>(rng: &mut R) -> Rgb {
    let h = rng.random_range(0.0..360.0);
    if rng.random_bool(0.4) {
        // Neutral: low saturation, value skewed to dark.
        let s = rng.random_range(0.0..0.15);
        let v = rng.random_range(0.08f32..0.95).powf(1.3);
        hsv_to_rgb(h, s, v)
    } else {
        let s = rng.random_range(0.35..0.95);
        let v = rng.random_range(0.25..0.95);
        hsv_to_rgb(h, s, v)
    }
}

/// The pattern printed on a garment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Pattern {
    /// One colour.
    Solid,
    /// Horizontal stripes of the second colour, `period` in person-height units.
    Stripes {
        /// Stripe period, as a fraction of the body height.
        period: f32,
    },
    /// A checkerboard of the two colours, `period` in person-height units.
    Checks {
        /// Cell size, as a fraction of the body height.
        period: f32,
    },
    /// A chest logo in the second colour (visible from the front only).
    Logo {
        /// `true`: a disc; `false`: a rectangle.
        round: bool,
    },
}

/// What the legs wear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LowerGarment {
    /// Long trousers down to the shoes.
    Trousers,
    /// Shorts above the knee (legs below are skin).
    Shorts,
    /// A skirt or dress bottom (a trapezoid; legs below are skin).
    Skirt,
}

/// Accessories; which are visible depends on the viewpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accessories {
    /// Backpack colour, if any (visible from the back and side; straps from the front).
    pub backpack: Option<Rgb>,
    /// Hand or shoulder bag colour and side (`true` = person's right), if any.
    pub bag: Option<(Rgb, bool)>,
    /// Hat or cap colour, if any.
    pub hat: Option<Rgb>,
}

/// The stable attributes of one person. Lengths are fractions of the body
/// height (head top to sole = 1.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Body height relative to the average person (`[0.88, 1.08]`).
    pub stature: f32,
    /// Half the shoulder width, in body heights (`[0.10, 0.15]`).
    pub shoulder: f32,
    /// Leg length (hip to sole), in body heights (`[0.42, 0.52]`).
    pub leg_length: f32,
    /// Body girth multiplier applied to torso and limbs (`[0.85, 1.25]`).
    pub girth: f32,
    /// Skin colour.
    pub skin: Rgb,
    /// Hair colour.
    pub hair: Rgb,
    /// `true` when the hair falls to the shoulders.
    pub long_hair: bool,
    /// Upper garment colour.
    pub upper: Rgb,
    /// Secondary upper colour (stripes, checks, logo).
    pub upper_second: Rgb,
    /// Upper garment pattern.
    pub upper_pattern: Pattern,
    /// `true` for short sleeves (forearms are skin).
    pub short_sleeves: bool,
    /// Lower garment colour.
    pub lower: Rgb,
    /// Lower garment kind.
    pub lower_kind: LowerGarment,
    /// Shoe colour.
    pub shoes: Rgb,
    /// Accessories.
    pub accessories: Accessories,
}

impl Identity {
    /// Samples a new person from `rng`.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let skin_v = rng.random_range(0.3..0.95);
        let skin = hsv_to_rgb(
            rng.random_range(15.0..35.0),
            rng.random_range(0.25..0.55),
            skin_v,
        );
        let hair = if rng.random_bool(0.8) {
            hsv_to_rgb(
                rng.random_range(15.0..40.0),
                rng.random_range(0.2..0.6),
                rng.random_range(0.05..0.3),
            )
        } else {
            hsv_to_rgb(
                rng.random_range(20.0..50.0),
                rng.random_range(0.1..0.6),
                rng.random_range(0.35..0.85),
            )
        };
        let upper = sample_clothing_colour(rng);
        let upper_second = sample_clothing_colour(rng);
        let upper_pattern = match rng.random_range(0..10) {
            0..=4 => Pattern::Solid,
            5 | 6 => Pattern::Stripes {
                period: rng.random_range(0.035..0.08),
            },
            7 => Pattern::Checks {
                period: rng.random_range(0.04..0.08),
            },
            _ => Pattern::Logo {
                round: rng.random_bool(0.5),
            },
        };
        let lower_kind = match rng.random_range(0..10) {
            0..=6 => LowerGarment::Trousers,
            7 | 8 => LowerGarment::Shorts,
            _ => LowerGarment::Skirt,
        };
        let shoes = if rng.random_bool(0.6) {
            hsv_to_rgb(0.0, 0.0, rng.random_range(0.05..0.25))
        } else {
            sample_clothing_colour(rng)
        };
        let accessories = Accessories {
            backpack: rng.random_bool(0.3).then(|| sample_clothing_colour(rng)),
            bag: rng
                .random_bool(0.25)
                .then(|| (sample_clothing_colour(rng), rng.random_bool(0.5))),
            hat: rng.random_bool(0.15).then(|| sample_clothing_colour(rng)),
        };
        Self {
            stature: rng.random_range(0.88..1.08),
            shoulder: rng.random_range(0.10..0.15),
            leg_length: rng.random_range(0.42..0.52),
            girth: rng.random_range(0.85..1.25),
            skin,
            hair,
            long_hair: rng.random_bool(0.3),
            upper,
            upper_second,
            upper_pattern,
            short_sleeves: rng.random_bool(0.35),
            lower: sample_clothing_colour(rng),
            lower_kind,
            shoes,
            accessories,
        }
    }
}

impl Identity {
    /// This person (body, skin, hair, shoes, accessories) in `other`'s
    /// garments — kinds, pattern, sleeves — with each garment colour
    /// channel moved by a uniform draw in `±shade` from `rng` (clamped to
    /// `[0, 1]`).
    pub fn dressed_like<R: Rng + ?Sized>(
        mut self,
        other: &Identity,
        shade: f32,
        rng: &mut R,
    ) -> Self {
        let mut nudge = |c: Rgb| -> Rgb {
            let mut out = c;
            for v in &mut out {
                *v = (*v + rng.random_range(-shade..=shade)).clamp(0.0, 1.0);
            }
            out
        };
        self.upper = nudge(other.upper);
        self.upper_second = nudge(other.upper_second);
        self.lower = nudge(other.lower);
        self.upper_pattern = other.upper_pattern;
        self.short_sleeves = other.short_sleeves;
        self.lower_kind = other.lower_kind;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn hsv_primaries() {
        assert_eq!(hsv_to_rgb(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]);
        assert_eq!(hsv_to_rgb(120.0, 1.0, 1.0), [0.0, 1.0, 0.0]);
        assert_eq!(hsv_to_rgb(240.0, 1.0, 1.0), [0.0, 0.0, 1.0]);
        assert_eq!(hsv_to_rgb(77.0, 0.0, 0.5), [0.5, 0.5, 0.5]);
    }

    #[test]
    fn identities_are_reproducible_and_in_range() {
        let a = Identity::random(&mut ChaCha8Rng::seed_from_u64(7));
        let b = Identity::random(&mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(a, b);
        for s in 0..200 {
            let id = Identity::random(&mut ChaCha8Rng::seed_from_u64(s));
            assert!((0.88..1.08).contains(&id.stature));
            for c in [id.upper, id.lower, id.skin, id.hair, id.shoes] {
                assert!(c.iter().all(|v| (0.0..=1.0).contains(v)), "{c:?}");
            }
        }
    }
}
