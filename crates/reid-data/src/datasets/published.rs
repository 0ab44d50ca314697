//! Published split sizes and the rule deciding when a parsed dataset is
//! compared against them.
//!
//! # When counts are checked ([`ExpectFull`])
//! A parsed dataset is compared with its published sizes only when it *claims
//! to be the full set*. With [`ExpectFull::Auto`] (the default) that is the
//! case when the total number of images over the splits that have a published
//! size lies within ±[`FULL_SET_MARGIN`] (10 %) of the published total: a
//! complete download with a few files missing or extra is flagged, while a
//! small synthetic or hand-made subset in the canonical folder is not (it
//! could not act on such warnings). [`ExpectFull::Always`] and
//! [`ExpectFull::Never`] force the check on or off. Each split whose image or
//! identity count differs yields one warning naming both numbers; warnings
//! never abort parsing.

use crate::record::{DatasetStats, SplitStats};

use super::naming::thousands;

/// Relative margin around the published total inside which a dataset is
/// taken to claim to be the full set (see the module doc).
pub const FULL_SET_MARGIN: f64 = 0.10;

/// When to compare a parsed dataset with its published sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExpectFull {
    /// Compare when the total image count is within ±10 % of the published total.
    #[default]
    Auto,
    /// Always compare (warn about every difference).
    Always,
    /// Never compare.
    Never,
}

/// Published size of one split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedSplit {
    /// Number of distinct identities.
    pub ids: usize,
    /// Number of images.
    pub images: usize,
}

/// Published sizes of a train/query/gallery benchmark; `None` where no
/// confirmed figure exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Display name used in warnings ("Market-1501").
    pub dataset: &'static str,
    /// Training split.
    pub train: Option<PublishedSplit>,
    /// Query split.
    pub query: Option<PublishedSplit>,
    /// Gallery split (distractor identities included).
    pub gallery: Option<PublishedSplit>,
}

const fn split(ids: usize, images: usize) -> Option<PublishedSplit> {
    Some(PublishedSplit { ids, images })
}

/// Market-1501 (junk `-1` dropped; the gallery's 751 ids include the pid-0 distractors).
pub const MARKET1501: Published = Published {
    dataset: "Market-1501",
    train: split(751, 12_936),
    query: split(750, 3_368),
    gallery: split(751, 15_913),
};

/// DukeMTMC-reID (gallery: 702 test ids + 408 distractor ids).
pub const DUKEMTMC: Published = Published {
    dataset: "DukeMTMC-reID",
    train: split(702, 16_522),
    query: split(702, 2_228),
    gallery: split(1_110, 17_661),
};

/// MSMT17 without `list_val` in train: the train-only size is not confirmed
/// by the sources we read, so only query and gallery are checked.
pub const MSMT17: Published = Published {
    dataset: "MSMT17",
    train: None,
    query: split(3_060, 11_659),
    gallery: split(3_060, 82_161),
};

/// MSMT17 with `list_val` merged into train (32,621 images, 1,041 ids).
pub const MSMT17_TRAIN_VAL: Published = Published {
    dataset: "MSMT17",
    train: split(1_041, 32_621),
    query: split(3_060, 11_659),
    gallery: split(3_060, 82_161),
};

/// CUHK03-NP labeled (767/700 protocol).
pub const CUHK03_NP_LABELED: Published = Published {
    dataset: "CUHK03-NP (labeled)",
    train: split(767, 7_368),
    query: split(700, 1_400),
    gallery: split(700, 5_328),
};

/// CUHK03-NP detected (767/700 protocol).
pub const CUHK03_NP_DETECTED: Published = Published {
    dataset: "CUHK03-NP (detected)",
    train: split(767, 7_365),
    query: split(700, 1_400),
    gallery: split(700, 5_332),
};

impl Published {
    fn splits(&self) -> [(&'static str, Option<PublishedSplit>); 3] {
        [
            ("train", self.train),
            ("query", self.query),
            ("gallery", self.gallery),
        ]
    }

    /// True when `stats` claims to be the full set under the `Auto` rule.
    pub fn claims_full(&self, stats: &DatasetStats) -> bool {
        let got = [stats.train, stats.query, stats.gallery];
        let (mut have, mut want) = (0usize, 0usize);
        for ((_, p), s) in self.splits().iter().zip(got) {
            if let Some(p) = p {
                have += s.images;
                want += p.images;
            }
        }
        if want == 0 {
            return false;
        }
        let rel = (have as f64 - want as f64).abs() / want as f64;
        rel <= FULL_SET_MARGIN
    }

    /// Warnings for every split whose images or ids differ from the published
    /// figures, following `expect` (see the module doc). Empty when all match
    /// or when the set does not claim to be full.
    pub fn check(&self, stats: &DatasetStats, expect: ExpectFull) -> Vec<String> {
        let compare = match expect {
            ExpectFull::Never => false,
            ExpectFull::Always => true,
            ExpectFull::Auto => self.claims_full(stats),
        };
        if !compare {
            return Vec::new();
        }
        let got: [SplitStats; 3] = [stats.train, stats.query, stats.gallery];
        let mut out = Vec::new();
        for ((name, p), s) in self.splits().iter().zip(got) {
            let Some(p) = p else { continue };
            if s.images != p.images {
                out.push(format!(
                    "{}: {name} has {} images, the published full set has {}",
                    self.dataset,
                    thousands(s.images),
                    thousands(p.images)
                ));
            }
            if s.ids != p.ids {
                out.push(format!(
                    "{}: {name} has {} identities, the published full set has {}",
                    self.dataset,
                    thousands(s.ids),
                    thousands(p.ids)
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(t: (usize, usize), q: (usize, usize), g: (usize, usize)) -> DatasetStats {
        let s = |(ids, images)| SplitStats {
            images,
            ids,
            cams: 6,
        };
        DatasetStats {
            train: s(t),
            query: s(q),
            gallery: s(g),
        }
    }

    #[test]
    fn exact_full_set_gives_no_warning() {
        let s = stats((751, 12_936), (750, 3_368), (751, 15_913));
        assert!(MARKET1501.check(&s, ExpectFull::Auto).is_empty());
        assert!(MARKET1501.check(&s, ExpectFull::Always).is_empty());
    }

    #[test]
    fn near_full_set_warns_with_both_numbers() {
        let s = stats((751, 12_936), (750, 3_368), (751, 15_900));
        let w = MARKET1501.check(&s, ExpectFull::Auto);
        assert_eq!(
            w,
            vec!["Market-1501: gallery has 15,900 images, the published full set has 15,913"]
        );
    }

    #[test]
    fn small_subset_is_silent_unless_forced() {
        let s = stats((3, 12), (3, 6), (4, 20));
        assert!(!MARKET1501.claims_full(&s));
        assert!(MARKET1501.check(&s, ExpectFull::Auto).is_empty());
        assert_eq!(MARKET1501.check(&s, ExpectFull::Always).len(), 6);
        let near = stats((751, 12_936), (750, 3_368), (751, 15_913 + 3_000));
        assert!(MARKET1501.claims_full(&near));
        let far = stats((751, 12_936), (750, 3_368), (751, 15_913 + 4_000));
        assert!(!MARKET1501.claims_full(&far));
        assert!(MARKET1501.check(&near, ExpectFull::Never).is_empty());
    }

    #[test]
    fn splits_without_published_figure_are_not_checked() {
        let s = stats((1_041, 30_248), (3_060, 11_659), (3_060, 82_161));
        assert!(MSMT17.check(&s, ExpectFull::Always).is_empty());
        let w = MSMT17_TRAIN_VAL.check(&s, ExpectFull::Auto);
        assert_eq!(
            w,
            vec!["MSMT17: train has 30,248 images, the published full set has 32,621"]
        );
    }
}
