//! A synthetic camera: its viewpoint, illumination, background and sensor.
//!
//! Every image taken by one camera shares these properties, which is what
//! makes cross-camera re-identification harder than same-camera matching.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::identity::{Rgb, hsv_to_rgb};

/// Which side of the person faces the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum View {
    /// Face, chest logo and backpack straps visible.
    Front,
    /// Hair, backpack visible; no logo.
    Back,
    /// Narrow silhouette; backpack and bag stick out on one side.
    Side,
}

/// The texture of a camera's background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Texture {
    /// A smooth vertical gradient.
    Gradient,
    /// Vertical stripes (fences, shop fronts).
    Stripes,
    /// A grid of tiles or bricks.
    Tiles,
    /// Blotchy low-frequency noise (foliage, crowds far away).
    Blotches,
}

/// A camera's fixed properties. Fractions are of the image size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    /// The dominant view of this camera.
    pub view: View,
    /// Probability that an image shows the dominant view (`[0.5, 0.9]`); other views are equally likely.
    pub view_prob: f32,
    /// Person height as a fraction of the image height (`[0.76, 0.92]`).
    pub scale: f32,
    /// Horizontal offset of the person's centre, in image widths (`[-0.07, 0.07]`).
    pub offset: f32,
    /// Horizontal stretch of the person (`[0.85, 1.15]`, 1 = none).
    pub aspect: f32,
    /// Horizontal shear: x shift per unit of height, in image widths (`[-0.08, 0.08]`).
    pub shear: f32,
    /// Global brightness gain (`[0.7, 1.2]`).
    pub gain: f32,
    /// Per-channel white balance multipliers (`[0.88, 1.12]` each).
    pub white_balance: Rgb,
    /// Wall (upper background) colour.
    pub wall: Rgb,
    /// Floor (lower background) colour.
    pub floor: Rgb,
    /// Accent colour of the texture.
    pub accent: Rgb,
    /// Texture kind.
    pub texture: Texture,
    /// Texture period in pixels at 128 rows (scaled with the image height).
    pub texture_period: f32,
    /// Horizon height as a fraction of the image height, from the top.
    pub horizon: f32,
    /// Standard deviation of the additive sensor noise, on the `[0, 1]` scale.
    pub noise: f32,
    /// Box-blur radius in pixels at 128 rows (0, 1 or 2).
    pub blur: u32,
    /// Probability that an image from this camera is partly occluded.
    pub occlusion_prob: f32,
}

/// Draws a scene's wall, floor and accent colours and its texture kind.
fn scene<R: Rng + ?Sized>(rng: &mut R) -> (Rgb, Rgb, Rgb, Texture) {
    let mut bg = |vmin: f32, vmax: f32| {
        hsv_to_rgb(
            rng.random_range(0.0..360.0),
            rng.random_range(0.0..0.3),
            rng.random_range(vmin..vmax),
        )
    };
    let wall = bg(0.25, 0.85);
    let floor = bg(0.2, 0.7);
    let accent = bg(0.1, 0.9);
    let texture = match rng.random_range(0..4) {
        0 => Texture::Gradient,
        1 => Texture::Stripes,
        2 => Texture::Tiles,
        _ => Texture::Blotches,
    };
    (wall, floor, accent, texture)
}

impl Camera {
    /// Samples a camera. `occlusion_prob` is the world's base occlusion
    /// probability; each camera scales it by `[0.5, 1.5]`.
    pub fn random<R: Rng + ?Sized>(rng: &mut R, occlusion_prob: f32) -> Self {
        let view = match rng.random_range(0..3) {
            0 => View::Front,
            1 => View::Back,
            _ => View::Side,
        };
        let (wall, floor, accent, texture) = scene(rng);
        Self {
            view,
            view_prob: rng.random_range(0.5..0.9),
            scale: rng.random_range(0.76..0.92),
            offset: rng.random_range(-0.07..0.07),
            aspect: rng.random_range(0.85..1.15),
            shear: rng.random_range(-0.08..0.08),
            gain: rng.random_range(0.7..1.2),
            white_balance: [
                rng.random_range(0.88..1.12),
                rng.random_range(0.88..1.12),
                rng.random_range(0.88..1.12),
            ],
            wall,
            floor,
            accent,
            texture,
            texture_period: rng.random_range(6.0..24.0),
            horizon: rng.random_range(0.55..0.85),
            noise: rng.random_range(0.008..0.04),
            blur: rng.random_range(0..3),
            occlusion_prob: (occlusion_prob * rng.random_range(0.5..1.5)).clamp(0.0, 1.0),
        }
    }

    /// This camera with its gain's and white balance's deviations from
    /// neutral (1) multiplied by `strength` (the per-video colour cast made
    /// stronger or weaker; `1` returns it unchanged). Gains stay ≥ 0.05.
    pub fn with_shift_strength(mut self, strength: f32) -> Self {
        if strength != 1.0 {
            let scale = |g: f32| (1.0 + (g - 1.0) * strength).max(0.05);
            self.gain = scale(self.gain);
            for c in &mut self.white_balance {
                *c = scale(*c);
            }
        }
        self
    }

    /// This camera with its sensor noise multiplied by `factor` (`1`
    /// returns it unchanged).
    pub fn with_noise_scaled(mut self, factor: f32) -> Self {
        self.noise *= factor;
        self
    }

    /// This camera in front of another stretch of scene: the wall, floor and
    /// accent colours, the texture and its period are drawn again from
    /// `rng` (with [`Camera::random`]'s distributions); viewpoint, framing,
    /// illumination, sensor and occlusion stay. A video's street of shop
    /// fronts is one camera with one such backdrop per segment.
    pub fn with_backdrop<R: Rng + ?Sized>(&self, rng: &mut R) -> Self {
        let (wall, floor, accent, texture) = scene(rng);
        Self {
            wall,
            floor,
            accent,
            texture,
            texture_period: rng.random_range(6.0..24.0),
            ..self.clone()
        }
    }

    /// Draws the view of one image: the dominant view with probability
    /// [`Camera::view_prob`], otherwise one of the two others.
    pub fn sample_view<R: Rng + ?Sized>(&self, rng: &mut R) -> View {
        if rng.random_bool(f64::from(self.view_prob.clamp(0.0, 1.0))) {
            return self.view;
        }
        let others: [View; 2] = match self.view {
            View::Front => [View::Back, View::Side],
            View::Back => [View::Front, View::Side],
            View::Side => [View::Front, View::Back],
        };
        others[usize::from(rng.random_bool(0.5))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn dominant_view_is_most_frequent() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let cam = Camera::random(&mut rng, 0.2);
        let n = 2000;
        let hits = (0..n)
            .filter(|_| cam.sample_view(&mut rng) == cam.view)
            .count();
        let p = hits as f32 / n as f32;
        assert!((p - cam.view_prob).abs() < 0.05, "{p} vs {}", cam.view_prob);
    }

    #[test]
    fn a_backdrop_changes_the_scene_only() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let cam = Camera::random(&mut rng, 0.2);
        let other = cam.with_backdrop(&mut rng);
        assert_ne!(other.wall, cam.wall);
        assert_ne!(other.floor, cam.floor);
        let same_optics = Camera {
            wall: cam.wall,
            floor: cam.floor,
            accent: cam.accent,
            texture: cam.texture,
            texture_period: cam.texture_period,
            ..other
        };
        assert_eq!(same_optics, cam);
    }
}
