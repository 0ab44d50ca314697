//! The rasteriser: draws a person (an [`Identity`]) seen by a [`Camera`] in
//! one [`Shot`] (pose, framing, occlusion) into an `RgbImage`.
//!
//! The person is an implicit 2-D body model in *body coordinates*: `u` is the
//! horizontal distance from the body axis and `v` the height from the top of
//! the head (0) to the soles (1), both in body heights. Each output pixel is
//! mapped back into body coordinates (through the camera's scale, offset,
//! aspect and shear) and coloured by the first body part it hits, front to
//! back. Illumination, blur and sensor noise are applied to the whole frame.

use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::camera::{Camera, Texture, View};
use super::identity::{Identity, LowerGarment, Pattern, Rgb, sample_clothing_colour};

/// A rectangle that hides part of the frame (a pole, a car, another person).
/// Coordinates are fractions of the image width (`x`) and height (`y`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Occlusion {
    /// Left edge, `[0, 1]`.
    pub x0: f32,
    /// Top edge, `[0, 1]`.
    pub y0: f32,
    /// Right edge, `[0, 1]`.
    pub x1: f32,
    /// Bottom edge, `[0, 1]`.
    pub y1: f32,
    /// Fill colour.
    pub colour: Rgb,
    /// `true`: textured like the background; `false`: a flat, shaded object.
    pub textured: bool,
}

/// Everything that varies from one image of a person to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shot {
    /// Which side of the person faces the camera.
    pub view: View,
    /// Side view only: `true` when the person walks to the left.
    pub mirrored: bool,
    /// Walking phase, radians (legs and arms swing with `sin(leg_phase)`).
    pub leg_phase: f32,
    /// Horizontal shift of the person, in image widths.
    pub dx: f32,
    /// Vertical shift of the person, in image heights.
    pub dy: f32,
    /// Multiplier on the camera's person scale (1 = the camera's tight box;
    /// below 1 = a looser box with more background, as detectors give).
    pub zoom: f32,
    /// Per-image brightness multiplier.
    pub gain: f32,
    /// Phase of the background texture, in pixels.
    pub bg_shift: f32,
    /// An occluder, if any.
    pub occlusion: Option<Occlusion>,
}

impl Shot {
    /// Samples the per-image variation of a hand-drawn (tight) box taken by `camera`:
    /// view, pose jitter, small framing jitter, brightness jitter and, with the
    /// camera's occlusion probability, an occluder.
    pub fn random<R: Rng + ?Sized>(camera: &Camera, rng: &mut R) -> Self {
        let view = camera.sample_view(rng);
        let occlusion = rng
            .random_bool(f64::from(camera.occlusion_prob))
            .then(|| Occlusion::random(camera, rng));
        Self {
            view,
            mirrored: rng.random_bool(0.5),
            leg_phase: rng.random_range(0.0..std::f32::consts::TAU),
            dx: rng.random_range(-0.04..0.04),
            dy: rng.random_range(-0.02..0.02),
            zoom: rng.random_range(0.94..1.04),
            gain: rng.random_range(0.88..1.12),
            bg_shift: rng.random_range(0.0..64.0),
            occlusion,
        }
    }

    /// Loosens and shifts the box like a person detector would (CUHK03
    /// "detected", video crops): smaller person, larger offsets.
    pub fn detector_jitter<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        self.zoom *= rng.random_range(0.82..1.02);
        self.dx += rng.random_range(-0.09..0.09);
        self.dy += rng.random_range(-0.05..0.05);
    }
}

impl Occlusion {
    /// Samples an occluder entering from the bottom or from a side, covering
    /// 15–45 % of the frame, coloured like the background or like clothing.
    pub fn random<R: Rng + ?Sized>(camera: &Camera, rng: &mut R) -> Self {
        let frac = rng.random_range(0.15..0.45);
        let (x0, y0, x1, y1) = match rng.random_range(0..3) {
            0 => (0.0, 1.0 - frac, 1.0, 1.0),
            1 => (0.0, rng.random_range(0.0..0.3), frac * 1.4, 1.0),
            _ => (1.0 - frac * 1.4, rng.random_range(0.0..0.3), 1.0, 1.0),
        };
        let textured = rng.random_bool(0.5);
        let colour = if textured {
            camera.accent
        } else {
            sample_clothing_colour(rng)
        };
        Self {
            x0,
            y0,
            x1,
            y1,
            colour,
            textured,
        }
    }
}

/// Renders `identity` (or, with `None`, only the background: a false
/// detection) as seen by `camera` in `shot`, into a `height × width` RGB
/// image. `rng` drives the sensor noise only, so the same `(identity,
/// camera, shot, rng state)` always gives the same pixels.
pub fn render<R: Rng + ?Sized>(
    identity: Option<&Identity>,
    camera: &Camera,
    shot: &Shot,
    height: u32,
    width: u32,
    rng: &mut R,
) -> RgbImage {
    let (h, w) = (height as usize, width as usize);
    let mut buf = vec![0.0f32; h * w * 3];
    let px_scale = height as f32 / 128.0;
    draw_background(&mut buf, h, w, camera, shot, px_scale);
    if let Some(id) = identity {
        draw_person(&mut buf, h, w, id, camera, shot);
    }
    if let Some(occ) = &shot.occlusion {
        draw_occlusion(&mut buf, h, w, occ, camera, shot, px_scale);
    }
    // Illumination.
    for px in buf.chunks_exact_mut(3) {
        for (c, v) in px.iter_mut().enumerate() {
            *v *= camera.gain * shot.gain * camera.white_balance[c];
        }
    }
    let radius = (camera.blur as f32 * px_scale).round() as usize;
    if radius > 0 {
        box_blur(&mut buf, h, w, radius);
    }
    // Sensor noise: a sum of four uniforms (Irwin–Hall; four bytes of one
    // random u32, each uniform on [0, 1]), scaled to unit variance.
    let sigma = camera.noise * 3f32.sqrt();
    let mut out = RgbImage::new(width, height);
    for (dst, v) in out.as_mut().iter_mut().zip(buf.iter()) {
        let r = rng.next_u32().to_le_bytes();
        let sum = f32::from(r[0]) + f32::from(r[1]) + f32::from(r[2]) + f32::from(r[3]);
        let n = sum / 255.0 - 2.0;
        *dst = ((v + n * sigma).clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    }
    out
}

/// Renders one image of `identity` seen by `camera` with a freshly sampled
/// [`Shot`] (view, pose, framing, occlusion): the in-memory entry point for
/// training code that needs no files. The image is `height × width` RGB.
pub fn render_person<R: Rng + ?Sized>(
    identity: &Identity,
    camera: &Camera,
    height: u32,
    width: u32,
    rng: &mut R,
) -> RgbImage {
    let shot = Shot::random(camera, rng);
    render(Some(identity), camera, &shot, height, width, rng)
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn scale(a: Rgb, s: f32) -> Rgb {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// The background colour of camera `camera` at pixel `(x, y)`.
fn background_at(camera: &Camera, x: f32, y: f32, h: f32, shift: f32, px_scale: f32) -> Rgb {
    let wall = y < camera.horizon * h;
    let base = if wall { camera.wall } else { camera.floor };
    let shade = 0.85 + 0.3 * (y / h);
    let period = (camera.texture_period * px_scale).max(2.0);
    let xs = x + shift;
    let t = match camera.texture {
        Texture::Gradient => 0.0,
        Texture::Stripes => {
            if wall && (xs / period).floor().rem_euclid(2.0) < 1.0 {
                0.35
            } else {
                0.0
            }
        }
        Texture::Tiles => {
            let gx = (xs / period).fract();
            let gy = (y / (period * 0.6)).fract();
            if gx < 0.12 || gy < 0.15 { 0.5 } else { 0.0 }
        }
        Texture::Blotches => {
            let s = (xs / period).sin()
                * (y / (period * 1.3) + 0.7 * (xs / (period * 2.1)).cos()).sin();
            0.3 * (0.5 + 0.5 * s)
        }
    };
    scale(mix(base, camera.accent, t), shade)
}

fn draw_background(
    buf: &mut [f32],
    h: usize,
    w: usize,
    camera: &Camera,
    shot: &Shot,
    px_scale: f32,
) {
    for y in 0..h {
        for x in 0..w {
            let c = background_at(
                camera,
                x as f32,
                y as f32,
                h as f32,
                shot.bg_shift,
                px_scale,
            );
            let i = (y * w + x) * 3;
            buf[i..i + 3].copy_from_slice(&c);
        }
    }
}

fn draw_occlusion(
    buf: &mut [f32],
    h: usize,
    w: usize,
    occ: &Occlusion,
    camera: &Camera,
    shot: &Shot,
    px_scale: f32,
) {
    let (hf, wf) = (h as f32, w as f32);
    for y in 0..h {
        let yf = (y as f32 + 0.5) / hf;
        if yf < occ.y0 || yf > occ.y1 {
            continue;
        }
        for x in 0..w {
            let xf = (x as f32 + 0.5) / wf;
            if xf < occ.x0 || xf > occ.x1 {
                continue;
            }
            let c = if occ.textured {
                // Another piece of scene, shifted so it does not line up with the background.
                let b = background_at(
                    camera,
                    x as f32,
                    y as f32,
                    hf,
                    shot.bg_shift + 17.0,
                    px_scale,
                );
                mix(b, occ.colour, 0.4)
            } else {
                let cx = (occ.x0 + occ.x1) * 0.5;
                let half = ((occ.x1 - occ.x0) * 0.5).max(1e-3);
                let d = (xf - cx) / half;
                scale(occ.colour, 1.0 - 0.3 * d * d)
            };
            let i = (y * w + x) * 3;
            buf[i..i + 3].copy_from_slice(&c);
        }
    }
}

fn box_blur(buf: &mut [f32], h: usize, w: usize, r: usize) {
    let mut tmp = vec![0.0f32; buf.len()];
    // Horizontal pass into tmp, vertical pass back into buf; edges clamp.
    for y in 0..h {
        for x in 0..w {
            let lo = x.saturating_sub(r);
            let hi = (x + r).min(w - 1);
            let n = (hi - lo + 1) as f32;
            for c in 0..3 {
                let mut s = 0.0;
                for xx in lo..=hi {
                    s += buf[(y * w + xx) * 3 + c];
                }
                tmp[(y * w + x) * 3 + c] = s / n;
            }
        }
    }
    for y in 0..h {
        let lo = y.saturating_sub(r);
        let hi = (y + r).min(h - 1);
        let n = (hi - lo + 1) as f32;
        for x in 0..w {
            for c in 0..3 {
                let mut s = 0.0;
                for yy in lo..=hi {
                    s += tmp[(yy * w + x) * 3 + c];
                }
                buf[(y * w + x) * 3 + c] = s / n;
            }
        }
    }
}

/// Distance from `p` to the segment `a`–`b`.
fn seg_dist(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (qx * qx + qy * qy).sqrt()
}

fn in_ellipse(p: (f32, f32), c: (f32, f32), rx: f32, ry: f32) -> bool {
    let (a, b) = ((p.0 - c.0) / rx, (p.1 - c.1) / ry);
    a * a + b * b <= 1.0
}

fn in_rect(p: (f32, f32), u0: f32, u1: f32, v0: f32, v1: f32) -> bool {
    p.0 >= u0 && p.0 <= u1 && p.1 >= v0 && p.1 <= v1
}

/// Pre-computed body geometry of one person in one shot.
struct Body<'a> {
    id: &'a Identity,
    view: View,
    /// Torso half width at the shoulders.
    sw: f32,
    shoulder_y: f32,
    hip_y: f32,
    /// Limb radius.
    limb: f32,
    /// Arm segments (shoulder, elbow, hand), near arm first.
    arms: [[(f32, f32); 3]; 2],
    /// Leg segments (hip, knee, foot), near leg first.
    legs: [[(f32, f32); 3]; 2],
}

impl<'a> Body<'a> {
    fn new(id: &'a Identity, shot: &Shot) -> Self {
        let g = id.girth;
        let shoulder_y = 0.165;
        let hip_y = 1.0 - id.leg_length;
        let s = shot.leg_phase.sin();
        let side = shot.view == View::Side;
        let sw = if side {
            id.shoulder * g * 0.55
        } else {
            id.shoulder * g
        };
        let limb = 0.027 * g;
        let arm_len = hip_y + 0.05 - shoulder_y;
        let arms = if side {
            let swing = 0.14 * s;
            let elbow_v = shoulder_y + arm_len * 0.5;
            [
                [
                    (0.0, shoulder_y + 0.02),
                    (swing * 0.4, elbow_v),
                    (swing, shoulder_y + arm_len),
                ],
                [
                    (0.0, shoulder_y + 0.02),
                    (-swing * 0.4, elbow_v),
                    (-swing, shoulder_y + arm_len),
                ],
            ]
        } else {
            let a = 0.012 * s;
            let mk = |sign: f32, sw_: f32| {
                let x0 = sign * (sw_ - 0.01);
                [
                    (x0, shoulder_y + 0.025),
                    (sign * (sw_ + 0.012), shoulder_y + arm_len * 0.5 + a * sign),
                    (sign * (sw_ + 0.018), shoulder_y + arm_len + a * sign),
                ]
            };
            [mk(1.0, sw), mk(-1.0, sw)]
        };
        let foot_v = 0.975;
        let legs = if side {
            let stride = 0.12 * s;
            let knee_v = hip_y + (foot_v - hip_y) * 0.5;
            [
                [
                    (0.0, hip_y),
                    (stride * 0.5 + 0.015, knee_v),
                    (stride, foot_v),
                ],
                [
                    (0.0, hip_y),
                    (-stride * 0.5 + 0.015, knee_v),
                    (-stride, foot_v),
                ],
            ]
        } else {
            let lift = 0.018 * s;
            let hx = 0.045 * g;
            let knee_v = hip_y + (foot_v - hip_y) * 0.5;
            [
                [
                    (hx, hip_y),
                    (hx + 0.004, knee_v),
                    (hx + 0.008, foot_v - lift.max(0.0)),
                ],
                [
                    (-hx, hip_y),
                    (-hx - 0.004, knee_v),
                    (-hx - 0.008, foot_v + lift.min(0.0)),
                ],
            ]
        };
        Self {
            id,
            view: shot.view,
            sw,
            shoulder_y,
            hip_y,
            limb,
            arms,
            legs,
        }
    }

    fn torso_colour(&self, p: (f32, f32)) -> Rgb {
        let id = self.id;
        match id.upper_pattern {
            Pattern::Solid => id.upper,
            Pattern::Stripes { period } => {
                if ((p.1 - self.shoulder_y) / period).floor().rem_euclid(2.0) < 1.0 {
                    id.upper
                } else {
                    id.upper_second
                }
            }
            Pattern::Checks { period } => {
                let k = (p.0 / period).floor() + ((p.1 - self.shoulder_y) / period).floor();
                if k.rem_euclid(2.0) < 1.0 {
                    id.upper
                } else {
                    id.upper_second
                }
            }
            Pattern::Logo { round } => {
                let c = (0.0, self.shoulder_y + 0.1);
                let hit = self.view == View::Front
                    && if round {
                        in_ellipse(p, c, 0.04, 0.04)
                    } else {
                        in_rect(p, -0.05, 0.05, c.1 - 0.035, c.1 + 0.035)
                    };
                if hit { id.upper_second } else { id.upper }
            }
        }
    }

    fn in_torso(&self, p: (f32, f32)) -> bool {
        let (v0, v1) = (self.shoulder_y - 0.01, self.hip_y + 0.03);
        if p.1 < v0 || p.1 > v1 {
            return false;
        }
        let t = (p.1 - v0) / (v1 - v0);
        let half = self.sw * (1.0 - 0.2 * t);
        p.0.abs() <= half
    }

    fn head(&self, p: (f32, f32)) -> Option<Rgb> {
        let id = self.id;
        let c = (0.0, 0.07);
        let (rx, ry) = (if self.view == View::Side { 0.05 } else { 0.046 }, 0.062);
        if let Some(hat) = id.accessories.hat {
            let brim = match self.view {
                View::Side => in_rect(p, -0.05, 0.085, 0.035, 0.048),
                _ => in_rect(p, -0.062, 0.062, 0.035, 0.046),
            };
            if brim || (in_ellipse(p, c, rx * 1.08, ry * 1.05) && p.1 < 0.045) {
                return Some(hat);
            }
        }
        if in_ellipse(p, c, rx, ry) {
            let hair = match self.view {
                View::Back => true,
                View::Front => p.1 < 0.03 || (id.long_hair && p.0.abs() > rx * 0.75),
                View::Side => p.1 < 0.03 || p.0 < -0.01,
            };
            return Some(if hair { id.hair } else { id.skin });
        }
        // Neck.
        if in_rect(p, -0.02, 0.02, 0.12, self.shoulder_y) {
            return Some(id.skin);
        }
        None
    }

    fn long_hair(&self, p: (f32, f32)) -> Option<Rgb> {
        if !self.id.long_hair {
            return None;
        }
        let hit = match self.view {
            View::Back => in_rect(p, -0.05, 0.05, 0.06, self.shoulder_y + 0.07),
            View::Front => in_rect(p, -0.055, 0.055, 0.06, self.shoulder_y + 0.03),
            View::Side => in_rect(p, -0.055, -0.005, 0.06, self.shoulder_y + 0.05),
        };
        hit.then_some(self.id.hair)
    }

    fn arm(&self, p: (f32, f32), k: usize) -> Option<Rgb> {
        let [s, e, hnd] = self.arms[k];
        let id = self.id;
        if in_ellipse(p, (hnd.0, hnd.1 + 0.01), self.limb * 0.9, self.limb * 1.1) {
            return Some(id.skin);
        }
        if seg_dist(p, s, e) <= self.limb * 1.1 {
            return Some(id.upper);
        }
        if seg_dist(p, e, hnd) <= self.limb {
            return Some(if id.short_sleeves { id.skin } else { id.upper });
        }
        None
    }

    fn leg(&self, p: (f32, f32), k: usize) -> Option<Rgb> {
        let [hip, knee, foot] = self.legs[k];
        let id = self.id;
        let fwd = if self.view == View::Side { 0.025 } else { 0.0 };
        if in_ellipse(p, (foot.0 + fwd, foot.1 + 0.01), 0.038, 0.016) {
            return Some(id.shoes);
        }
        let r = self.limb * 1.35;
        if seg_dist(p, hip, knee) <= r || seg_dist(p, knee, foot) <= r * 0.85 {
            let covered = match id.lower_kind {
                LowerGarment::Trousers => true,
                LowerGarment::Shorts => p.1 < self.hip_y + (1.0 - self.hip_y) * 0.35,
                LowerGarment::Skirt => false,
            };
            return Some(if covered { id.lower } else { id.skin });
        }
        None
    }

    fn skirt(&self, p: (f32, f32)) -> Option<Rgb> {
        if self.id.lower_kind != LowerGarment::Skirt {
            return None;
        }
        let (v0, v1) = (self.hip_y, self.hip_y + (1.0 - self.hip_y) * 0.5);
        if p.1 < v0 || p.1 > v1 {
            return None;
        }
        let t = (p.1 - v0) / (v1 - v0);
        let half = self.sw * 0.8 + 0.04 * t;
        (p.0.abs() <= half).then_some(self.id.lower)
    }

    fn backpack(&self, p: (f32, f32)) -> Option<Rgb> {
        let colour = self.id.accessories.backpack?;
        let (v0, v1) = (self.shoulder_y + 0.02, self.hip_y - 0.01);
        let hit = match self.view {
            View::Back => in_rect(p, -self.sw * 0.75, self.sw * 0.75, v0, v1),
            View::Side => in_rect(p, -self.sw - 0.065, -self.sw + 0.01, v0, v1),
            View::Front => {
                (p.0.abs() - self.sw * 0.55).abs() < 0.012
                    && p.1 > self.shoulder_y
                    && p.1 < self.shoulder_y + 0.17
            }
        };
        hit.then_some(colour)
    }

    fn bag(&self, p: (f32, f32)) -> Option<Rgb> {
        let (colour, right) = self.id.accessories.bag?;
        let (v0, v1) = (self.hip_y - 0.07, self.hip_y + 0.07);
        // The person's right is the image's left when seen from the front.
        let sign = match (self.view, right) {
            (View::Front, true) | (View::Back, false) => -1.0,
            (View::Front, false) | (View::Back, true) => 1.0,
            (View::Side, _) => 0.0,
        };
        let hit = if self.view == View::Side {
            right && in_rect(p, -0.03, 0.05, v0, v1)
        } else {
            let a = sign * (self.sw + 0.012);
            let b = sign * (self.sw + 0.07);
            in_rect(p, a.min(b), a.max(b), v0, v1)
        };
        hit.then_some(colour)
    }

    /// The colour at body point `p`, front-most part first, or `None` for background.
    fn colour_at(&self, p: (f32, f32)) -> Option<Rgb> {
        if p.1 < -0.02 || p.1 > 1.02 || p.0.abs() > 0.4 {
            return None;
        }
        let torso = |p| self.in_torso(p).then(|| self.torso_colour(p));
        match self.view {
            View::Front => self
                .head(p)
                .or_else(|| self.backpack(p))
                .or_else(|| self.arm(p, 0))
                .or_else(|| self.arm(p, 1))
                .or_else(|| self.bag(p))
                .or_else(|| torso(p))
                .or_else(|| self.long_hair(p))
                .or_else(|| self.skirt(p))
                .or_else(|| self.leg(p, 0))
                .or_else(|| self.leg(p, 1)),
            View::Back => self
                .head(p)
                .or_else(|| self.long_hair(p))
                .or_else(|| self.backpack(p))
                .or_else(|| self.arm(p, 0))
                .or_else(|| self.arm(p, 1))
                .or_else(|| self.bag(p))
                .or_else(|| torso(p))
                .or_else(|| self.skirt(p))
                .or_else(|| self.leg(p, 0))
                .or_else(|| self.leg(p, 1)),
            View::Side => self
                .arm(p, 0)
                .or_else(|| self.bag(p))
                .or_else(|| self.head(p))
                .or_else(|| torso(p))
                .or_else(|| self.long_hair(p))
                .or_else(|| self.backpack(p))
                .or_else(|| self.skirt(p))
                .or_else(|| self.leg(p, 0))
                .or_else(|| self.arm(p, 1))
                .or_else(|| self.leg(p, 1)),
        }
    }
}

fn draw_person(buf: &mut [f32], h: usize, w: usize, id: &Identity, camera: &Camera, shot: &Shot) {
    let body = Body::new(id, shot);
    let (hf, wf) = (h as f32, w as f32);
    let size = camera.scale * shot.zoom;
    let person_h = (hf * size * id.stature).max(1.0);
    let foot = hf * (0.5 + 0.5 * size + shot.dy);
    let top = foot - person_h;
    let cx = wf * (0.5 + camera.offset + shot.dx);
    let flip = if shot.view == View::Side && shot.mirrored {
        -1.0
    } else {
        1.0
    };
    for y in 0..h {
        let v = (y as f32 + 0.5 - top) / person_h;
        if !(-0.02..=1.02).contains(&v) {
            continue;
        }
        let x_axis = cx + camera.shear * wf * (1.0 - v);
        for x in 0..w {
            let u = flip * (x as f32 + 0.5 - x_axis) / (person_h * camera.aspect);
            if let Some(c) = body.colour_at((u, v)) {
                // Cheap volume: darker towards the silhouette's sides and the feet.
                let shade = (1.05 - 0.12 * v) * (1.0 - 1.8 * (u * u).min(0.08));
                let i = (y * w + x) * 3;
                buf[i..i + 3].copy_from_slice(&scale(c, shade));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn setup(seed: u64) -> (Identity, Camera) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (Identity::random(&mut rng), Camera::random(&mut rng, 0.0))
    }

    #[test]
    fn same_rng_state_gives_same_pixels() {
        let (id, cam) = setup(1);
        let a = render_person(&id, &cam, 64, 32, &mut ChaCha8Rng::seed_from_u64(9));
        let b = render_person(&id, &cam, 64, 32, &mut ChaCha8Rng::seed_from_u64(9));
        assert_eq!(a.dimensions(), (32, 64));
        assert_eq!(a, b);
        let c = render_person(&id, &cam, 64, 32, &mut ChaCha8Rng::seed_from_u64(10));
        assert_ne!(a, c);
    }

    #[test]
    fn person_differs_from_background() {
        let (id, cam) = setup(2);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let shot = Shot::random(&cam, &mut rng);
        let with = render(
            Some(&id),
            &cam,
            &shot,
            128,
            64,
            &mut ChaCha8Rng::seed_from_u64(5),
        );
        let without = render(
            None,
            &cam,
            &shot,
            128,
            64,
            &mut ChaCha8Rng::seed_from_u64(5),
        );
        let changed = with
            .pixels()
            .zip(without.pixels())
            .filter(|(a, b)| a != b)
            .count();
        // The body covers a sizeable part of the frame (roughly 15-45 %).
        let frac = changed as f32 / (128.0 * 64.0);
        assert!(frac > 0.1 && frac < 0.6, "person covers {frac}");
    }

    #[test]
    fn box_blur_keeps_constant_images() {
        let mut buf = vec![0.25f32; 5 * 4 * 3];
        box_blur(&mut buf, 5, 4, 2);
        assert!(buf.iter().all(|v| (v - 0.25).abs() < 1e-6));
    }
}
