//! Several views of each image in one pass ([`ViewsTransform`]): the
//! pre-training recipes' inputs (MoCo's two crops, PNL's weak/strong pair,
//! CION's 2 global + N local crops), and a single [`ItemTransform`] as the
//! one-view case. [`HostViews`] holds a loaded batch view-major on the host.

use std::ops::Range;

use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};

use super::item::ItemTransform;
use crate::views::{MultiCrop, PnlViews, TwoCrops};

/// Turns one decoded image into `V` views, view `v` of shape
/// `[channels, h_v, w_v]` (channel-major floats), drawing its randomness
/// from the per-item generator the loader hands in.
pub trait ViewsTransform: Send + Sync {
    /// The shape of each view, `[channels, height, width]`; at least one.
    fn view_shapes(&self) -> Vec<[usize; 3]>;

    /// Writes the views of `img` into `out` (one slice per view, each of
    /// length `channels · height · width` of its shape, checked by the
    /// caller).
    fn write_views(
        &self,
        img: &RgbImage,
        rng: &mut ChaCha8Rng,
        out: &mut [&mut [f32]],
    ) -> Result<()>;
}

/// An [`ItemTransform`] is the one-view case.
impl<T: ItemTransform> ViewsTransform for T {
    fn view_shapes(&self) -> Vec<[usize; 3]> {
        vec![self.shape()]
    }

    fn write_views(
        &self,
        img: &RgbImage,
        rng: &mut ChaCha8Rng,
        out: &mut [&mut [f32]],
    ) -> Result<()> {
        match out {
            [one] => self.write(img, rng, one),
            _ => Err(DataError::InvalidArgument(format!(
                "a one-view transform was given {} output buffers",
                out.len()
            ))),
        }
    }
}

/// A closure that returns the views of an image (one `Vec` per view, in
/// [`ViewsTransform::view_shapes`] order) as a [`ViewsTransform`] with
/// declared shapes; a view of another length is an error.
pub struct FnViews<F> {
    shapes: Vec<[usize; 3]>,
    f: F,
}

impl<F> std::fmt::Debug for FnViews<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnViews")
            .field("shapes", &self.shapes)
            .finish()
    }
}

impl<F> FnViews<F>
where
    F: Fn(&RgbImage, &mut ChaCha8Rng) -> Result<Vec<Vec<f32>>> + Send + Sync,
{
    /// Wraps `f`, which draws `shapes.len()` views of the given
    /// `[channels, height, width]` shapes. Errors when there is no view or
    /// a dimension is 0.
    pub fn new(shapes: Vec<[usize; 3]>, f: F) -> Result<Self> {
        if shapes.is_empty() || shapes.iter().any(|s| s.contains(&0)) {
            return Err(DataError::InvalidArgument(format!(
                "view shapes must be at least one non-empty [channels, height, width], got {shapes:?}"
            )));
        }
        Ok(Self { shapes, f })
    }
}

impl<F> ViewsTransform for FnViews<F>
where
    F: Fn(&RgbImage, &mut ChaCha8Rng) -> Result<Vec<Vec<f32>>> + Send + Sync,
{
    fn view_shapes(&self) -> Vec<[usize; 3]> {
        self.shapes.clone()
    }

    fn write_views(
        &self,
        img: &RgbImage,
        rng: &mut ChaCha8Rng,
        out: &mut [&mut [f32]],
    ) -> Result<()> {
        let views = (self.f)(img, rng)?;
        let lengths: Vec<usize> = views.iter().map(Vec::len).collect();
        let expected: Vec<usize> = out.iter().map(|o| o.len()).collect();
        if lengths != expected {
            return Err(DataError::InvalidArgument(format!(
                "the view function produced views of {lengths:?} floats, expected {expected:?} \
                 (shapes {:?})",
                self.shapes
            )));
        }
        for (o, v) in out.iter_mut().zip(&views) {
            o.copy_from_slice(v);
        }
        Ok(())
    }
}

/// The two buffers of a two-view transform, or an error naming `what`.
fn two_outs<'a>(out: &'a mut [&mut [f32]], what: &str) -> Result<(&'a mut [f32], &'a mut [f32])> {
    match out {
        [a, b] => Ok((a, b)),
        _ => Err(DataError::InvalidArgument(format!(
            "{what} writes 2 views, was given {} output buffers",
            out.len()
        ))),
    }
}

/// MoCo's query and key views, written straight into the batch (no
/// per-image buffers): `[[3, h, w], [3, h, w]]`.
impl ViewsTransform for TwoCrops {
    fn view_shapes(&self) -> Vec<[usize; 3]> {
        let s = [3, self.view.height() as usize, self.view.width() as usize];
        vec![s, s]
    }

    fn write_views(
        &self,
        img: &RgbImage,
        rng: &mut ChaCha8Rng,
        out: &mut [&mut [f32]],
    ) -> Result<()> {
        let (q, k) = two_outs(out, "MoCo's two crops")?;
        self.write(img, rng, q, k)
    }
}

/// PNL's weak and strong views, written straight into the batch:
/// `[[3, h_weak, w_weak], [3, h_strong, w_strong]]`.
impl ViewsTransform for PnlViews {
    fn view_shapes(&self) -> Vec<[usize; 3]> {
        vec![
            [3, self.weak.height as usize, self.weak.width as usize],
            [
                3,
                self.strong.height() as usize,
                self.strong.width() as usize,
            ],
        ]
    }

    fn write_views(
        &self,
        img: &RgbImage,
        rng: &mut ChaCha8Rng,
        out: &mut [&mut [f32]],
    ) -> Result<()> {
        let (weak, strong) = two_outs(out, "PNL's weak/strong views")?;
        self.write(img, rng, weak, strong)
    }
}

/// CION's 2 global + N local crops, written straight into the batch: one
/// `[3, h, w]` shape per crop ([`MultiCrop::crop_sizes`]).
impl ViewsTransform for MultiCrop {
    fn view_shapes(&self) -> Vec<[usize; 3]> {
        self.crop_sizes()
            .into_iter()
            .map(|(h, w)| [3, h as usize, w as usize])
            .collect()
    }

    fn write_views(
        &self,
        img: &RgbImage,
        rng: &mut ChaCha8Rng,
        out: &mut [&mut [f32]],
    ) -> Result<()> {
        self.write(img, rng, out)
    }
}

/// A loaded batch of `V` views on the host: view `v` is
/// `[kept, channels, h_v, w_v]`, rows in batch order (skipped images
/// dropped from every view alike).
#[derive(Debug, Clone, PartialEq)]
pub struct HostViews {
    /// One buffer per view, layout `[kept, channels, h_v, w_v]`, row-major.
    pub views: Vec<Vec<f32>>,
    /// The shape of each view's buffer, `[kept, channels, h_v, w_v]`.
    pub shapes: Vec<[usize; 4]>,
    /// Identity label of each kept image, `[kept]`.
    pub pids: Vec<i64>,
    /// 0-based camera of each kept image, `[kept]`.
    pub camids: Vec<i64>,
    /// Dataset index of each kept image, `[kept]`.
    pub indices: Vec<usize>,
    /// Dataset indices dropped as corrupt ([`super::CorruptPolicy::Skip`]).
    pub skipped: Vec<usize>,
}

impl HostViews {
    /// Number of kept images.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when every image of the batch was skipped.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Rows `rows` of every view as `[rows.len(), channels, h_v, w_v]`
    /// tensors on `device` (a data-parallel shard); an out-of-range `rows`
    /// is an error.
    pub fn rows_to_device(&self, rows: Range<usize>, device: &Device) -> Result<Vec<Tensor<4>>> {
        if rows.start > rows.end || rows.end > self.len() {
            return Err(DataError::InvalidArgument(format!(
                "rows {rows:?} of a batch of {} images",
                self.len()
            )));
        }
        Ok(self
            .views
            .iter()
            .zip(&self.shapes)
            .map(|(data, s)| {
                let per = s[1] * s[2] * s[3];
                let part = data[rows.start * per..rows.end * per].to_vec();
                Tensor::from_data(
                    TensorData::new(part, [rows.len(), s[1], s[2], s[3]]),
                    device,
                )
            })
            .collect())
    }

    /// Every view as a `[kept, channels, h_v, w_v]` tensor on `device`.
    pub fn into_tensors(self, device: &Device) -> Vec<Tensor<4>> {
        self.views
            .into_iter()
            .zip(self.shapes)
            .map(|(data, s)| Tensor::from_data(TensorData::new(data, s), device))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageRecord;
    use crate::augment::TrainTransform;
    use crate::loader::{CorruptPolicy, ReidDataset, TrainLoader};

    /// Three small images (the second corrupt when asked) in a fresh folder.
    fn images(tag: &str, corrupt: bool) -> (std::path::PathBuf, Vec<ImageRecord>) {
        let dir = std::env::temp_dir().join(format!("reid-views-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let recs = (0..3)
            .map(|i| {
                let p = dir.join(format!("{i}.png"));
                if corrupt && i == 1 {
                    std::fs::write(&p, b"not an image").unwrap();
                } else {
                    let img = image::RgbImage::from_fn(16, 32, |x, y| {
                        image::Rgb([(x * 9 + i) as u8, (y * 5) as u8, (40 * i) as u8])
                    });
                    img.save(&p).unwrap();
                }
                ImageRecord::new(p, i as i64, 0)
            })
            .collect();
        (dir, recs)
    }

    /// Two views of different sizes: the image's mean, then its first
    /// pixel repeated, plus one draw of the generator in every float.
    fn two_views() -> FnViews<impl Fn(&RgbImage, &mut ChaCha8Rng) -> Result<Vec<Vec<f32>>>> {
        FnViews::new(
            vec![[3, 2, 2], [3, 1, 4]],
            |img: &RgbImage, rng: &mut ChaCha8Rng| {
                let r: f32 = rand::Rng::random(rng);
                let mean = img.pixels().map(|p| f32::from(p[0])).sum::<f32>() / 512.0;
                let first = f32::from(img.get_pixel(0, 0)[0]);
                Ok(vec![vec![mean + r; 12], vec![first + r; 12]])
            },
        )
        .unwrap()
    }

    #[test]
    fn views_are_view_major_in_batch_order_and_seeded_per_slot() {
        let (dir, recs) = images("order", false);
        let l = TrainLoader::new(ReidDataset::from_files(recs), two_views(), 7);
        let a = l.load_views(&[2, 0], 0, 5).unwrap();
        assert_eq!(a.shapes, vec![[2, 3, 2, 2], [2, 3, 1, 4]]);
        assert_eq!(
            (a.indices.clone(), a.pids.clone()),
            (vec![2, 0], vec![2, 0])
        );
        // Row 0 is image 2 (first pixel red 2), row 1 image 0 (red 0).
        let r0 = a.views[1][0] - 2.0;
        let r1 = a.views[1][12];
        assert!((0.0..1.0).contains(&r0) && (0.0..1.0).contains(&r1));
        // The same batch key draws the same views; another key others.
        assert_eq!(l.load_views(&[2, 0], 0, 5).unwrap(), a);
        assert_ne!(l.load_views(&[2, 0], 0, 6).unwrap().views, a.views);
        // A shard is the batch's rows.
        let dev = Device::default();
        let shard = a.rows_to_device(1..2, &dev).unwrap();
        let got: Vec<f32> = shard[1].clone().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got, a.views[1][12..24].to_vec());
        assert!(a.rows_to_device(1..3, &dev).is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn one_view_transforms_load_as_before_and_corrupt_images_leave_every_view() {
        let (dir, recs) = images("skip", true);
        let bot = TrainTransform::bot(32, 16);
        let l = TrainLoader::new(ReidDataset::from_files(recs.clone()), bot, 3);
        // One view: `load` is `load_views`' only view.
        let e = l.load(&[0, 1], 0, 0).unwrap_err().to_string();
        assert!(e.contains("1.png"), "{e}");
        let l = l.with_policy(CorruptPolicy::Skip);
        let one = l.load(&[0, 2], 0, 0).unwrap();
        let views = l.load_views(&[0, 2], 0, 0).unwrap();
        assert_eq!(views.views, vec![one.data]);
        // Several views: the corrupt image is dropped from both.
        let l = TrainLoader::new(ReidDataset::from_files(recs), two_views(), 1)
            .with_policy(CorruptPolicy::Skip);
        let v = l.load_views(&[0, 1, 2], 0, 0).unwrap();
        assert_eq!(
            (v.indices.clone(), v.skipped.clone()),
            (vec![0, 2], vec![1])
        );
        assert_eq!(v.shapes, vec![[2, 3, 2, 2], [2, 3, 1, 4]]);
        assert_eq!((v.views[0].len(), v.views[1].len()), (24, 24));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_view_of_the_wrong_size_is_an_error_naming_the_file() {
        let (dir, recs) = images("size", false);
        let bad = FnViews::new(vec![[3, 2, 2]], |_: &RgbImage, _: &mut ChaCha8Rng| {
            Ok(vec![vec![0.0; 5]])
        })
        .unwrap();
        let l = TrainLoader::new(ReidDataset::from_files(recs), bad, 0);
        let e = l.load_views(&[1], 0, 0).unwrap_err().to_string();
        assert!(e.contains("1.png") && e.contains("[5]"), "{e}");
        assert!(FnViews::new(vec![], |_: &RgbImage, _: &mut ChaCha8Rng| Ok(vec![])).is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    /// Loads `indices` with `direct` and with the same views drawn through
    /// `apply` into per-image vectors (`FnViews`): the same floats.
    fn same_as_apply<T: ViewsTransform>(
        recs: &[ImageRecord],
        direct: T,
        apply: impl Fn(&RgbImage, &mut ChaCha8Rng) -> Result<Vec<Vec<f32>>> + Send + Sync,
    ) {
        let shapes = direct.view_shapes();
        let a = TrainLoader::new(ReidDataset::from_files(recs.to_vec()), direct, 4)
            .load_views(&[2, 0, 1], 1, 3)
            .unwrap();
        let via = FnViews::new(shapes, apply).unwrap();
        let b = TrainLoader::new(ReidDataset::from_files(recs.to_vec()), via, 4)
            .load_views(&[2, 0, 1], 1, 3)
            .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn recipe_views_write_into_the_batch_as_apply_draws_them() {
        let (dir, recs) = images("direct", false);
        let mut two = TwoCrops::lup();
        (two.view.crop.height, two.view.crop.width) = (32, 16);
        let t = two.clone();
        same_as_apply(&recs, two, move |img, rng| {
            Ok(Vec::from(t.apply(img, rng)?))
        });
        let mut pnl = PnlViews::new();
        (pnl.weak.height, pnl.weak.width) = (32, 16);
        (pnl.strong.crop.height, pnl.strong.crop.width) = (24, 12);
        let p = pnl.clone();
        same_as_apply(&recs, pnl, move |img, rng| {
            let (w, s) = p.apply(img, rng)?;
            Ok(vec![w, s])
        });
        let cion = MultiCrop::cion(2);
        let c = cion.clone();
        same_as_apply(&recs, cion, move |img, rng| c.apply(img, rng));
        // A two-view transform handed the wrong number of buffers.
        let mut one = vec![0f32; 3 * 32 * 16];
        let e = TwoCrops::lup()
            .write_views(
                &RgbImage::new(4, 4),
                &mut rand::SeedableRng::seed_from_u64(0),
                &mut [&mut one],
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 views") && e.contains("1 output"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }
}
