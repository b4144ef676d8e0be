//! Aspect-ratio buckets: batches of one shape from samples of many.
//!
//! Each sample goes to the smallest bucket (by area) that holds it whole,
//! and is placed there unchanged, padded on the right and bottom: the least
//! change, no pixel resampled. A sample that no bucket holds (only with
//! shapes given explicitly) goes to the bucket nearest its aspect ratio (in
//! log space) and is scaled down, its aspect kept, to fit. Derived buckets
//! hold every sample of their group: the samples sorted by aspect ratio and
//! cut into groups of equal size, a group's shape its largest height and
//! width (rounded up to a multiple of 8).
//!
//! An epoch walks its global permutation and fills each bucket's current
//! batch in that order, emitting a batch when it is full; what is left of
//! each bucket at the end is one shorter batch (or dropped with
//! `drop_last`). The number of batches is therefore known up front (it
//! depends only on the buckets' sizes), every sample is in exactly one
//! batch per epoch, and the batch order is as random as the permutation.
//! Ranks cut the list of batches in lockstep, as the plain [`crate::Plan`]
//! cuts samples: step `k` is batches `k·W … k·W + W - 1`.

use crate::plan::Shard;

/// How the bucket shapes are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Buckets {
    /// About this many buckets, from the data: the samples sorted by aspect
    /// ratio and cut into groups of equal size; a group's shape is its
    /// largest height and width (rounded up to a multiple of 8).
    Auto(usize),
    /// These `(height, width)` shapes.
    Shapes(Vec<[usize; 2]>),
}

/// The buckets of a dataset: their shapes and each sample's bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSet {
    /// `(height, width)` of each bucket, by increasing aspect ratio.
    pub shapes: Vec<[usize; 2]>,
    /// The bucket of each sample.
    pub of_sample: Vec<u16>,
    /// The samples of each bucket, in index order.
    pub members: Vec<Vec<usize>>,
}

fn log_aspect([h, w]: [usize; 2]) -> f64 {
    (w.max(1) as f64 / h.max(1) as f64).ln()
}

fn ceil8(v: usize) -> usize {
    v.div_ceil(8).max(1) * 8
}

impl BucketSet {
    /// Buckets for samples of these natural `(height, width)` shapes.
    pub fn new(sizes: &[[usize; 2]], spec: &Buckets) -> Result<BucketSet, String> {
        let mut shapes = match spec {
            Buckets::Shapes(s) => {
                if s.is_empty()
                    || s.len() > 256
                    || s.iter()
                        .any(|&[h, w]| h == 0 || w == 0 || h > 16384 || w > 16384)
                {
                    return Err(
                        "buckets must be 1 to 256 shapes (height, width), each side 1 to 16384"
                            .into(),
                    );
                }
                s.clone()
            }
            Buckets::Auto(k) => {
                if *k == 0 || *k > 256 {
                    return Err(format!("buckets must be between 1 and 256, got {k}"));
                }
                let mut order: Vec<usize> = (0..sizes.len()).collect();
                order.sort_by(|&a, &b| log_aspect(sizes[a]).total_cmp(&log_aspect(sizes[b])));
                let k = (*k).min(sizes.len().max(1));
                let mut shapes = Vec::with_capacity(k);
                for g in 0..k {
                    let group = &order[g * order.len() / k..(g + 1) * order.len() / k];
                    if group.is_empty() {
                        continue;
                    }
                    let most = |pick: fn(&[usize; 2]) -> usize| {
                        group.iter().map(|&i| pick(&sizes[i])).max().unwrap_or(1)
                    };
                    shapes.push([ceil8(most(|s| s[0])), ceil8(most(|s| s[1]))]);
                }
                shapes
            }
        };
        shapes.sort_by(|a, b| log_aspect(*a).total_cmp(&log_aspect(*b)));
        shapes.dedup();
        let aspects: Vec<f64> = shapes.iter().map(|&s| log_aspect(s)).collect();
        let mut members = vec![Vec::new(); shapes.len()];
        let of_sample = sizes
            .iter()
            .enumerate()
            .map(|(i, &[h, w])| {
                let holds = (0..shapes.len())
                    .filter(|&b| shapes[b][0] >= h && shapes[b][1] >= w)
                    .min_by_key(|&b| (shapes[b][0] * shapes[b][1], b));
                let a = log_aspect([h, w]);
                let nearest = || {
                    (0..shapes.len())
                        .min_by(|&x, &y| (aspects[x] - a).abs().total_cmp(&(aspects[y] - a).abs()))
                        .unwrap_or(0)
                };
                let b = holds.unwrap_or_else(nearest);
                members[b].push(i);
                b as u16
            })
            .collect();
        Ok(BucketSet {
            shapes,
            of_sample,
            members,
        })
    }

    /// Batches per epoch over all ranks: each bucket's samples in batches
    /// of `batch`, its last shorter one kept unless `drop_last`.
    pub fn total_batches(&self, batch: usize, drop_last: bool) -> usize {
        self.members
            .iter()
            .map(|m| {
                if drop_last {
                    m.len() / batch.max(1)
                } else {
                    m.len().div_ceil(batch.max(1))
                }
            })
            .sum()
    }

    /// The batches of an epoch whose global order is `order`: each a
    /// bucket and its samples, in the order they fill up.
    pub fn epoch_batches(
        &self,
        order: &[usize],
        batch: usize,
        drop_last: bool,
    ) -> Vec<(u16, Vec<usize>)> {
        let b = batch.max(1);
        let mut open: Vec<Vec<usize>> = vec![Vec::with_capacity(b); self.shapes.len()];
        let mut out = Vec::with_capacity(self.total_batches(b, drop_last));
        for &i in order {
            let k = self.of_sample[i];
            let bucket = &mut open[k as usize];
            bucket.push(i);
            if bucket.len() == b {
                out.push((k, std::mem::replace(bucket, Vec::with_capacity(b))));
            }
        }
        if !drop_last {
            for (k, rest) in open.into_iter().enumerate() {
                if !rest.is_empty() {
                    out.push((k as u16, rest));
                }
            }
        }
        out
    }
}

/// Rank `rank`'s batches of `total` (from position `start`) in lockstep:
/// step `k` is the `k`-th run of `world` batches; `Shard::Pad` tops up the
/// last step from the start of the list, `Shard::Drop` leaves it out.
pub(crate) fn rank_batch_count(total: usize, world: usize, shard: Shard, start: usize) -> usize {
    let left = total.saturating_sub(start);
    let w = world.max(1);
    match shard {
        _ if w == 1 => left,
        Shard::Pad => left.div_ceil(w),
        Shard::Drop => left / w,
    }
}

/// Index in the epoch's batch list of rank `rank`'s batch `k`.
pub(crate) fn rank_batch(total: usize, world: usize, rank: usize, start: usize, k: usize) -> usize {
    (start + k * world.max(1) + rank) % total.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_go_to_the_nearest_aspect_and_every_one_is_batched_once() {
        let sizes: Vec<[usize; 2]> = (0..100)
            .map(|i| {
                if i % 3 == 0 {
                    [480, 640]
                } else if i % 3 == 1 {
                    [640, 480]
                } else {
                    [512, 512]
                }
            })
            .collect();
        let set = BucketSet::new(&sizes, &Buckets::Auto(3)).unwrap();
        assert_eq!(set.shapes, vec![[640, 480], [512, 512], [480, 640]]);
        assert_eq!(set.of_sample[0], 2);
        assert_eq!(set.of_sample[1], 0);
        let order: Vec<usize> = (0..100).rev().collect();
        let batches = set.epoch_batches(&order, 8, false);
        assert_eq!(batches.len(), set.total_batches(8, false));
        let mut all: Vec<usize> = batches.iter().flat_map(|(_, s)| s.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        for (k, s) in &batches {
            assert!(
                s.iter().all(|&i| set.of_sample[i] == *k),
                "one bucket a batch"
            );
        }
        let dropped = set.epoch_batches(&order, 8, true);
        assert!(dropped.iter().all(|(_, s)| s.len() == 8));
        assert_eq!(dropped.len(), set.total_batches(8, true));
    }

    #[test]
    fn explicit_shapes_and_lockstep_ranks() {
        let set = BucketSet::new(
            &[[100, 300], [300, 100]],
            &Buckets::Shapes(vec![[256, 128], [128, 384]]),
        )
        .unwrap();
        assert_eq!(set.shapes, vec![[256, 128], [128, 384]]);
        assert_eq!(set.of_sample, vec![1, 0]);
        assert_eq!(rank_batch_count(10, 4, Shard::Pad, 0), 3);
        assert_eq!(rank_batch_count(10, 4, Shard::Drop, 0), 2);
        let mut seen: Vec<usize> = (0..4)
            .flat_map(|r| (0..3).map(move |k| rank_batch(10, 4, r, 0, k)))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen.len(), 12, "4 ranks × 3 steps");
        seen.dedup();
        assert_eq!(
            seen,
            (0..10).collect::<Vec<_>>(),
            "every batch, two of them twice (padding)"
        );
        assert!(BucketSet::new(&[[1, 1]], &Buckets::Auto(0)).is_err());
    }
}
