//! The simulated street-video world behind the LUPerson-style corpora.
//!
//! A global pool of persons walks through many videos, grouped into
//! countries and cities. Each video has its own camera (viewpoint,
//! illumination, background); each person in a video walks through a
//! contiguous range of frames (a *true track*), sampled every
//! [`VideoConfig::frame_step`] frames. Some persons appear in several videos
//! (the same person in another scene). A video is a street of shop fronts
//! ([`VideoConfig::street_speed`]): a person walking along it passes from one
//! backdrop to the next, so the background changes within a track and
//! differs between the persons of one video. The tracker ([`super::tracker`]) turns
//! the true tracks into noisy tracklets.

use derive_setters::Setters;
use std::f32::consts::TAU;
use std::path::PathBuf;

use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::camera::{Camera, View};
use super::identity::Identity;
use super::render::{Occlusion, Shot, render};
use super::{Layout, Purpose, Span, WorldConfig, check_count, check_range, invalid, stream_rng};
use crate::error::Result;

/// The shape of a video corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
#[non_exhaustive]
pub struct VideoConfig {
    /// Countries (folders `country00`, …), 1..=100.
    pub countries: u32,
    /// Cities per country (folders `city00`, …), 1..=100.
    pub cities_per_country: u32,
    /// Videos in total, spread evenly over the cities in order (folders
    /// `vid00000`, … numbered across the corpus).
    pub videos: u32,
    /// Persons walking through each video.
    pub persons_per_video: Span,
    /// Probability that a person slot of a video is filled by someone
    /// already seen in an earlier video (the same person in another scene).
    pub recurrence: f32,
    /// Sampled frames per true track (clamped to what fits in the video).
    pub track_len: Span,
    /// Frames between two sampled frames.
    pub frame_step: u32,
    /// Frames per video.
    pub video_frames: u32,
    /// Backdrop segments of the street a person walks past per frame (each
    /// person's pace is this × `[0.5, 1.5]`, in either direction, from a
    /// random place on the street). Every segment has its own wall, floor
    /// and accent colours and texture (the video's camera keeps its
    /// viewpoint, illumination and sensor), so the background varies
    /// within a track and between the persons of a video, as behind people
    /// walking past shop fronts. `0` gives every crop of a video the
    /// camera's one background (a world in which the background names the
    /// video); configurations written before this field read as `0`.
    #[serde(default)]
    pub street_speed: f32,
    /// Probability that a new person (one not recurring) is a look-alike of
    /// a person already seen: the same garments — kinds, pattern, sleeves —
    /// in colours moved by at most [`LOOKALIKE_SHADE`] per channel, with
    /// body, skin, hair, shoes and accessories drawn anew (two people in
    /// the same uniform or the same popular outfit). `0` (the default, and
    /// what configurations written before this field read as) draws every
    /// person independently.
    #[serde(default)]
    pub lookalikes: f32,
    /// Strength of each video's appearance shift: every video's camera has
    /// a gain and a white balance (one colour cast on all its crops); their
    /// deviations from neutral are multiplied by this (`1`, the default,
    /// keeps [`super::Camera::random`]'s ranges, gain `[0.7, 1.2]` and
    /// white balance `[0.88, 1.12]` per channel; `2` doubles them). In
    /// `[0, 4]`.
    #[serde(default = "one")]
    pub appearance_shift: f32,
    /// Multiplier of each video camera's sensor noise (per-pixel standard
    /// deviation drawn in `[0.008, 0.04]` of full scale by
    /// [`super::Camera::random`]): crop noise, in `[0, 10]`; `1` (the
    /// default) keeps the drawn level.
    #[serde(default = "one")]
    pub sensor_noise: f32,
}

fn one() -> f32 {
    1.0
}

/// The largest change of a look-alike's garment colours per channel (of 1).
pub const LOOKALIKE_SHADE: f32 = 0.06;

impl Default for VideoConfig {
    /// About 12 videos × 5 persons × 9 frames ≈ 550 crops.
    fn default() -> Self {
        Self {
            countries: 2,
            cities_per_country: 2,
            videos: 12,
            persons_per_video: Span::new(3, 8),
            recurrence: 0.3,
            track_len: Span::new(4, 14),
            frame_step: 5,
            video_frames: 400,
            street_speed: 0.04,
            lookalikes: 0.0,
            appearance_shift: 1.0,
            sensor_noise: 1.0,
        }
    }
}

/// The largest number of persons per video (keeps detections per frame in the 2-digit `obj` field).
pub const MAX_PERSONS_PER_VIDEO: u32 = 30;

impl VideoConfig {
    /// Checks the corpus shape against the folder and file-name formats.
    pub fn validate(&self) -> Result<()> {
        check_count("video corpus countries", self.countries, 1, 100)?;
        check_count(
            "video corpus cities per country",
            self.cities_per_country,
            1,
            100,
        )?;
        check_count("video corpus videos", self.videos, 1, 99_999)?;
        let cities = self.countries * self.cities_per_country;
        if self.videos.div_ceil(cities) > 10_000 {
            return Err(invalid(format!(
                "{} videos over {cities} cities exceed 10,000 videos per city (the 4-digit video field)",
                self.videos
            )));
        }
        self.persons_per_video
            .check("persons per video", 1, MAX_PERSONS_PER_VIDEO)?;
        self.track_len.check("frames per track", 1, 10_000)?;
        check_count("frame step", self.frame_step, 1, 10_000)?;
        check_count("frames per video", self.video_frames, 1, 9_999_999)?;
        check_range(
            "street speed",
            self.street_speed,
            0.0,
            10.0,
            " backdrop segments per frame",
        )?;
        check_range("recurrence probability", self.recurrence, 0.0, 1.0, "")?;
        check_range("look-alike probability", self.lookalikes, 0.0, 1.0, "")?;
        check_range("sensor noise multiplier", self.sensor_noise, 0.0, 10.0, "")?;
        check_range("appearance shift", self.appearance_shift, 0.0, 4.0, "")?;
        Ok(())
    }
}

/// Where a video sits in the corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInfo {
    /// Video index in corpus order (= sorted folder order).
    pub index: u32,
    /// Country index.
    pub country: u32,
    /// City index within the country.
    pub city: u32,
    /// Video index within the city.
    pub k: u32,
    /// `country{:02}/city{:02}/vid{:05}`.
    pub dir: PathBuf,
}

/// How one person looks and moves during one true track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackStyle {
    view: View,
    mirrored: bool,
    phase0: f32,
    /// Walking phase per frame, radians.
    speed: f32,
    zoom: f32,
    gain: f32,
    bg0: f32,
    bg_speed: f32,
    /// Position on the street at the track's first frame, in segments.
    street0: f32,
    /// Segments passed per frame (signed).
    street_speed: f32,
    /// Horizontal order of the person in the frame (sorts detections into `obj` indices).
    pub x: f32,
}

/// One person's passage through one video.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueTrack {
    /// Video index.
    pub video: u32,
    /// Global person id.
    pub person: u64,
    /// Sampled frames, ascending.
    pub frames: Vec<u64>,
    /// Look and motion.
    pub style: TrackStyle,
}

/// The whole simulated corpus before tracking.
#[derive(Debug, Clone)]
pub struct VideoWorld {
    /// The layout whose random streams are used.
    pub layout: Layout,
    /// The world config.
    pub world: WorldConfig,
    /// The videos, in corpus order.
    pub videos: Vec<VideoInfo>,
    /// One camera per video.
    pub cameras: Vec<Camera>,
    /// True tracks, grouped by video in corpus order.
    pub tracks: Vec<TrueTrack>,
    /// Number of distinct persons.
    pub persons: u64,
    /// [`VideoConfig::street_speed`]: `0` when every crop shows its camera's one background.
    pub street_speed: f32,
    /// Per person, the earlier person it is a look-alike of
    /// ([`VideoConfig::lookalikes`]); `None` for an independent person.
    /// Empty when there are no look-alikes.
    pub lookalike_of: Vec<Option<u64>>,
}

/// Street positions are drawn from `[0, STREET_SEGMENTS)`.
const STREET_SEGMENTS: f32 = 1000.0;

/// The key of segment `segment`'s backdrop stream in video `video` (apart
/// from the per-track keys, which are small).
fn backdrop_key(video: u32, segment: i64) -> u64 {
    (1 << 63) | (u64::from(video) << 32) | u64::from(segment as u32)
}

/// A crop to render: a true track's frame, or a false detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop {
    /// Video index.
    pub video: u32,
    /// Index into [`VideoWorld::tracks`], `None` for a false detection.
    pub track: Option<usize>,
    /// Frame index.
    pub frame: u64,
    /// Key of the crop's random stream.
    pub key: u64,
}

impl VideoWorld {
    /// Simulates the corpus `cfg` with `world`'s seed, using `layout`'s streams.
    pub fn simulate(layout: Layout, world: &WorldConfig, cfg: &VideoConfig) -> Self {
        let mut rng = stream_rng(world.seed, layout, Purpose::Plan, 0);
        let cities = cfg.countries * cfg.cities_per_country;
        let (base, extra) = (cfg.videos / cities, cfg.videos % cities);
        let mut videos = Vec::with_capacity(cfg.videos as usize);
        for c in 0..cities {
            let n = base + u32::from(c < extra);
            for k in 0..n {
                let index = videos.len() as u32;
                let (country, city) = (c / cfg.cities_per_country, c % cfg.cities_per_country);
                videos.push(VideoInfo {
                    index,
                    country,
                    city,
                    k,
                    dir: PathBuf::from(format!("country{country:02}"))
                        .join(format!("city{city:02}"))
                        .join(format!("vid{index:05}")),
                });
            }
        }
        let cameras = (0..u64::from(cfg.videos))
            .map(|v| {
                Camera::random(
                    &mut stream_rng(world.seed, layout, Purpose::Camera, v),
                    world.occlusion,
                )
                .with_shift_strength(cfg.appearance_shift)
                .with_noise_scaled(cfg.sensor_noise)
            })
            .collect();
        // From a stream of its own, so `lookalikes = 0` leaves the plan as it was.
        let mut alike = stream_rng(world.seed, layout, Purpose::Lookalike, 0);
        let mut lookalike_of: Vec<Option<u64>> = Vec::new();
        let step = u64::from(cfg.frame_step);
        let slots = (u64::from(cfg.video_frames) - 1) / step + 1;
        let mut seen: Vec<u64> = Vec::new();
        let mut next_person = 0u64;
        let mut tracks = Vec::new();
        for v in &videos {
            let n = cfg.persons_per_video.sample(&mut rng);
            let mut here: Vec<u64> = Vec::new();
            for _ in 0..n {
                let mut person = None;
                if !seen.is_empty() && rng.random_bool(f64::from(cfg.recurrence)) {
                    for _ in 0..4 {
                        let p = seen[rng.random_range(0..seen.len())];
                        if !here.contains(&p) {
                            person = Some(p);
                            break;
                        }
                    }
                }
                let person = person.unwrap_or_else(|| {
                    if cfg.lookalikes > 0.0 {
                        let of = (!seen.is_empty() && alike.random_bool(f64::from(cfg.lookalikes)))
                            .then(|| seen[alike.random_range(0..seen.len())]);
                        lookalike_of.push(of);
                    }
                    next_person += 1;
                    next_person - 1
                });
                here.push(person);
                let len = u64::from(cfg.track_len.sample(&mut rng)).min(slots);
                let start = rng.random_range(0..=slots - len);
                let frames = (start..start + len).map(|s| s * step).collect();
                let mut style = TrackStyle::random(&mut rng);
                // From a stream of its own, so `street_speed = 0` leaves the plan as it was.
                let mut street =
                    stream_rng(world.seed, layout, Purpose::Street, tracks.len() as u64);
                style.street0 = street.random_range(0.0..STREET_SEGMENTS);
                let pace = cfg.street_speed * street.random_range(0.5..1.5);
                style.street_speed = if street.random_bool(0.5) { pace } else { -pace };
                tracks.push(TrueTrack {
                    video: v.index,
                    person,
                    frames,
                    style,
                });
            }
            for p in here {
                if !seen.contains(&p) {
                    seen.push(p);
                }
            }
        }
        Self {
            layout,
            world: world.clone(),
            videos,
            cameras,
            tracks,
            persons: next_person,
            street_speed: cfg.street_speed,
            lookalike_of,
        }
    }

    /// Person `p`'s identity (for a look-alike, the garments of the person
    /// it resembles in shades of its own, and its own body).
    pub fn identity(&self, p: u64) -> Identity {
        let mut rng = stream_rng(self.world.seed, self.layout, Purpose::Identity, p);
        let own = Identity::random(&mut rng);
        match self.lookalike_of.get(p as usize).copied().flatten() {
            // A look-alike of a look-alike resembles the first one's garments.
            Some(of) => own.dressed_like(&self.identity(of), LOOKALIKE_SHADE, &mut rng),
            None => own,
        }
    }

    /// Renders one crop (a pure function of the crop and the world).
    pub fn render_crop(&self, crop: &Crop) -> RgbImage {
        let mut rng = stream_rng(self.world.seed, self.layout, Purpose::Image, crop.key);
        let camera = &self.cameras[(crop.video as usize).min(self.cameras.len().saturating_sub(1))];
        let track = crop.track.and_then(|t| self.tracks.get(t));
        let dt = track.map_or(0.0, |t| {
            crop.frame
                .saturating_sub(t.frames.first().copied().unwrap_or(0)) as f32
        });
        let backdrop;
        let cam = if self.street_speed > 0.0 {
            let segment = match track {
                Some(t) => (t.style.street0 + t.style.street_speed * dt).floor() as i64,
                None => rng.random_range(0..STREET_SEGMENTS as i64),
            };
            backdrop = camera.with_backdrop(&mut stream_rng(
                self.world.seed,
                self.layout,
                Purpose::Street,
                backdrop_key(crop.video, segment),
            ));
            &backdrop
        } else {
            camera
        };
        let (identity, mut shot) = match track {
            Some(t) => {
                let shot = t.style.shot(cam, dt, &mut rng);
                (Some(self.identity(t.person)), shot)
            }
            None => {
                // A false detection: background, sometimes with a sliver of someone.
                let mut shot = Shot::random(cam, &mut rng);
                let id = if rng.random_bool(0.3) {
                    shot.dx += if rng.random_bool(0.5) { 0.45 } else { -0.45 };
                    Some(Identity::random(&mut rng))
                } else {
                    None
                };
                (id, shot)
            }
        };
        shot.detector_jitter(&mut rng);
        render(
            identity.as_ref(),
            cam,
            &shot,
            self.world.height,
            self.world.width,
            &mut rng,
        )
    }
}

impl TrackStyle {
    fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let view = match rng.random_range(0..3) {
            0 => View::Front,
            1 => View::Back,
            _ => View::Side,
        };
        Self {
            view,
            mirrored: rng.random_bool(0.5),
            phase0: rng.random_range(0.0..TAU),
            speed: rng.random_range(0.25..0.45),
            zoom: rng.random_range(0.92..1.04),
            gain: rng.random_range(0.9..1.1),
            bg0: rng.random_range(0.0..64.0),
            bg_speed: rng.random_range(-0.3..0.3),
            street0: 0.0,
            street_speed: 0.0,
            x: rng.random_range(0.0..1.0),
        }
    }

    /// The shot `dt` frames into the track: the walking phase advances, the
    /// background slides, the framing jitters a little, occlusion comes and goes.
    fn shot<R: Rng + ?Sized>(&self, cam: &Camera, dt: f32, rng: &mut R) -> Shot {
        let occlusion = rng
            .random_bool(f64::from(cam.occlusion_prob))
            .then(|| Occlusion::random(cam, rng));
        Shot {
            view: self.view,
            mirrored: self.mirrored,
            leg_phase: self.phase0 + self.speed * dt,
            dx: rng.random_range(-0.03..0.03),
            dy: rng.random_range(-0.02..0.02),
            zoom: self.zoom * rng.random_range(0.97..1.03),
            gain: self.gain * rng.random_range(0.97..1.03),
            bg_shift: self.bg0 + self.bg_speed * dt,
            occlusion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn videos_fill_cities_in_order_and_persons_recur() {
        let cfg = VideoConfig {
            videos: 10,
            recurrence: 0.5,
            ..VideoConfig::default()
        };
        let w = VideoWorld::simulate(Layout::LupersonNl, &WorldConfig::default(), &cfg);
        assert_eq!(w.videos.len(), 10);
        let dirs: Vec<_> = w.videos.iter().map(|v| v.dir.clone()).collect();
        let mut sorted = dirs.clone();
        sorted.sort();
        assert_eq!(dirs, sorted, "sorted folder order must be corpus order");
        // 10 videos over 4 cities: 3, 3, 2, 2.
        assert_eq!(
            w.videos
                .iter()
                .filter(|v| v.country == 0 && v.city == 0)
                .count(),
            3
        );
        let mut videos_of =
            std::collections::BTreeMap::<u64, std::collections::BTreeSet<u32>>::new();
        for t in &w.tracks {
            videos_of.entry(t.person).or_default().insert(t.video);
            assert!(t.frames.iter().all(|&f| f < u64::from(cfg.video_frames)));
            assert!(!t.frames.is_empty());
        }
        assert!(
            videos_of.values().any(|v| v.len() > 1),
            "some person appears in several videos"
        );
    }

    fn small(street_speed: f32) -> VideoWorld {
        let cfg = VideoConfig {
            videos: 4,
            street_speed,
            ..VideoConfig::default()
        };
        let world = WorldConfig {
            height: 32,
            width: 16,
            ..WorldConfig::default()
        };
        VideoWorld::simulate(Layout::LupersonNl, &world, &cfg)
    }

    #[test]
    fn the_street_leaves_the_plan_alone() {
        for bad in [f32::NAN, -0.1, 11.0] {
            let cfg = VideoConfig {
                street_speed: bad,
                ..VideoConfig::default()
            };
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains("street speed"), "{err}");
        }
        let (fixed, street) = (small(0.0), small(0.05));
        assert_eq!(fixed.cameras, street.cameras);
        assert_eq!(fixed.tracks.len(), street.tracks.len());
        for (a, b) in fixed.tracks.iter().zip(&street.tracks) {
            assert_eq!(
                (a.video, a.person, &a.frames),
                (b.video, b.person, &b.frames)
            );
            assert_eq!(a.style.street_speed, 0.0);
            assert!(b.style.street_speed.abs() >= 0.025 && b.style.street_speed.abs() <= 0.075);
        }
    }

    /// Mean colour of the two top corners (wall, clear of the person) of
    /// every frame of a track; the spread of that colour over the track.
    fn corner_spread(w: &VideoWorld, t: usize) -> f32 {
        let colours: Vec<[f32; 3]> = w.tracks[t]
            .frames
            .iter()
            .map(|&frame| {
                let img = w.render_crop(&Crop {
                    video: w.tracks[t].video,
                    track: Some(t),
                    frame,
                    key: frame,
                });
                let mut c = [0.0f32; 3];
                for (x, y) in [(0, 0), (1, 0), (0, 1), (15, 0), (14, 0), (15, 1)] {
                    for (k, v) in img.get_pixel(x, y).0.iter().enumerate() {
                        c[k] += f32::from(*v) / 6.0;
                    }
                }
                c
            })
            .collect();
        let n = colours.len() as f32;
        (0..3)
            .map(|k| {
                let mean = colours.iter().map(|c| c[k]).sum::<f32>() / n;
                colours.iter().map(|c| (c[k] - mean).powi(2)).sum::<f32>() / n
            })
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn walking_along_the_street_changes_the_backdrop() {
        let (fixed, street) = (small(0.0), small(1.0));
        let tracks: Vec<usize> = (0..fixed.tracks.len())
            .filter(|&t| fixed.tracks[t].frames.len() >= 4)
            .take(6)
            .collect();
        assert!(tracks.len() >= 3);
        let mean = |w: &VideoWorld| {
            tracks.iter().map(|&t| corner_spread(w, t)).sum::<f32>() / tracks.len() as f32
        };
        let (f, s) = (mean(&fixed), mean(&street));
        assert!(
            s > 3.0 * f,
            "backdrop spread over a track: street {s}, fixed {f}"
        );
    }

    #[test]
    fn lookalikes_wear_an_earlier_persons_garments_and_leave_the_plan_alone() {
        for (field, bad) in [("look-alike", -0.1f32), ("look-alike", f32::NAN)] {
            let cfg = VideoConfig {
                lookalikes: bad,
                ..VideoConfig::default()
            };
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
        let world = WorldConfig::default();
        let cfg = VideoConfig {
            videos: 12,
            ..VideoConfig::default()
        };
        let plain = VideoWorld::simulate(Layout::LupersonNl, &world, &cfg);
        let alike = VideoWorld::simulate(
            Layout::LupersonNl,
            &world,
            &VideoConfig {
                lookalikes: 0.5,
                ..cfg.clone()
            },
        );
        assert!(plain.lookalike_of.is_empty());
        assert_eq!(plain.tracks.len(), alike.tracks.len());
        for (a, b) in plain.tracks.iter().zip(&alike.tracks) {
            assert_eq!((a.person, &a.frames), (b.person, &b.frames));
        }
        let pairs: Vec<(u64, u64)> = (0..alike.persons)
            .filter_map(|p| alike.lookalike_of[p as usize].map(|of| (p, of)))
            .collect();
        assert!(pairs.len() > 5, "{} look-alikes", pairs.len());
        for (p, of) in pairs {
            assert!(of < p);
            let (me, them) = (alike.identity(p), alike.identity(of));
            assert_eq!(me.upper_pattern, them.upper_pattern);
            assert_eq!(me.lower_kind, them.lower_kind);
            for (x, y) in [(me.upper, them.upper), (me.lower, them.lower)] {
                for c in 0..3 {
                    assert!((x[c] - y[c]).abs() <= LOOKALIKE_SHADE + 1e-6);
                }
            }
            // Their own body and face.
            assert_eq!(me.stature, plain.identity(p).stature);
        }
    }

    #[test]
    fn the_appearance_shift_scales_each_videos_colour_cast() {
        let bad = VideoConfig {
            appearance_shift: 5.0,
            ..VideoConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("appearance shift")
        );
        let world = WorldConfig::default();
        let simulate = |cfg: &VideoConfig| VideoWorld::simulate(Layout::LupersonNl, &world, cfg);
        let base = simulate(&VideoConfig::default());
        let strong = simulate(&VideoConfig {
            appearance_shift: 2.0,
            ..VideoConfig::default()
        });
        for (a, b) in base.cameras.iter().zip(&strong.cameras) {
            assert!(((b.gain - 1.0) - 2.0 * (a.gain - 1.0)).abs() < 1e-5);
            for c in 0..3 {
                let (x, y) = (a.white_balance[c], b.white_balance[c]);
                assert!(((y - 1.0) - 2.0 * (x - 1.0)).abs() < 1e-5);
            }
            assert_eq!(a.wall, b.wall);
        }
        let noisy = simulate(&VideoConfig {
            sensor_noise: 3.0,
            ..VideoConfig::default()
        });
        for (a, b) in base.cameras.iter().zip(&noisy.cameras) {
            assert!((b.noise - 3.0 * a.noise).abs() < 1e-6);
            assert_eq!(a.gain, b.gain);
        }
    }
}
