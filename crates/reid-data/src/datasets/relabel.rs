//! Deterministic relabelling of training identities to `0..num_ids`.
//!
//! Upstream toolkits differ here, and the order only changes which classifier
//! row an identity gets (never retrieval metrics):
//! - torchreid enumerates a Python `set` of pids: CPython's set-iteration
//!   order, ascending only while every pid is below the hash-table size
//!   (true for Market-1501, not for DukeMTMC-reID). We do not reproduce it.
//! - fast-reid turns train pids into strings prefixed with the dataset name
//!   (`"market1501_2"`) and sorts those **lexicographically**
//!   (`_10 < _1002 < _11 < _2`): [`RelabelOrder::FastReid`].
//! - The default, [`RelabelOrder::Ascending`], sorts the integer pids.

use std::collections::BTreeMap;

use crate::record::ImageRecord;

/// Order in which distinct raw training pids receive labels `0..num_ids`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RelabelOrder {
    /// Ascending integer order (default).
    #[default]
    Ascending,
    /// fast-reid's order: lexicographic on the decimal text of the pid (what
    /// sorting `"<dataset>_<pid>"` strings of one dataset amounts to).
    FastReid,
}

/// Replaces every record's `pid` by its label under `order` and returns the
/// number of distinct identities. The records themselves keep their order.
pub fn relabel(records: &mut [ImageRecord], order: RelabelOrder) -> usize {
    let map = label_map(records.iter().map(|r| r.pid), order);
    for r in records.iter_mut() {
        if let Some(&label) = map.get(&r.pid) {
            r.pid = label;
        }
    }
    map.len()
}

/// The raw-pid → label map of `pids` under `order`.
pub fn label_map(pids: impl IntoIterator<Item = i64>, order: RelabelOrder) -> BTreeMap<i64, i64> {
    let mut distinct: Vec<i64> = pids.into_iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if order == RelabelOrder::FastReid {
        distinct.sort_by_key(|p| p.to_string());
    }
    distinct.into_iter().zip(0i64..).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascending_and_fastreid_orders() {
        let pids = [2, 1002, 10, 11, 2, 10];
        let asc = label_map(pids, RelabelOrder::Ascending);
        assert_eq!(asc.get(&2), Some(&0));
        assert_eq!(asc.get(&10), Some(&1));
        assert_eq!(asc.get(&11), Some(&2));
        assert_eq!(asc.get(&1002), Some(&3));
        let fr = label_map(pids, RelabelOrder::FastReid);
        // "10" < "1002" < "11" < "2"
        assert_eq!(fr.get(&10), Some(&0));
        assert_eq!(fr.get(&1002), Some(&1));
        assert_eq!(fr.get(&11), Some(&2));
        assert_eq!(fr.get(&2), Some(&3));
    }

    #[test]
    fn relabel_rewrites_pids_in_place() {
        let mut recs = vec![
            ImageRecord::new("a", 7, 0),
            ImageRecord::new("b", 3, 1),
            ImageRecord::new("c", 7, 2),
        ];
        assert_eq!(relabel(&mut recs, RelabelOrder::Ascending), 2);
        let pids: Vec<i64> = recs.iter().map(|r| r.pid).collect();
        assert_eq!(pids, vec![1, 0, 1]);
    }
}
