//! Epoch order and sharding: pure functions of (seed, epoch, rank, world size).

/// What to do when the samples do not divide evenly among ranks (`"pad"`,
/// `"drop"`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum Shard {
    /// Repeat samples from the start of the epoch's order so every rank gets
    /// `ceil(n / world_size)` (no sample left out; a few seen twice).
    #[default]
    Pad,
    /// Leave the last `n % world_size` samples of the epoch's order out.
    Drop,
}

pub(crate) use stokehold_core::splitmix64;

/// A counter-based random stream: `next` is splitmix64 of a running key.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A stream keyed by these values (e.g. seed, epoch, sample).
    pub fn keyed(keys: &[u64]) -> Rng {
        Rng(keys.iter().fold(0x5EED_u64, |acc, &k| splitmix64(acc ^ k)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.0)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (multiply-shift; bias below 2^-32 for any n here).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The global order of epoch `epoch`: the identity when `shuffle` is
/// false, else a Fisher-Yates shuffle keyed by `(seed, epoch)`. It does
/// not depend on the number of ranks, so that a job can resume on another.
pub fn permutation(n: usize, shuffle: bool, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = Rng::keyed(&[seed, epoch]);
        for i in (1..n).rev() {
            let j = rng.below(i + 1);
            order.swap(i, j);
        }
    }
    order
}

/// How the ranks of a job cut an epoch's global order into batches.
///
/// The rule (documented in `docs/scale.md`): ranks step in lockstep. Global
/// step `k` covers the `world × batch` positions of the order that follow
/// the previous step; rank `r` takes the `r`-th run of `batch` of them. The
/// positions from `start` (where the epoch began, or resumed) to the end
/// are shared out so that each rank gets `ceil(R / world)` samples
/// (`Shard::Pad`: the last step is topped up from the start of the order)
/// or `floor(R / world)` (`Shard::Drop`), `R` being the samples left; in
/// the last, short step each rank takes an equal run. So every rank has
/// the same number of batches, the samples consumed by the whole job after
/// `k` steps is one number, and the rest of the epoch can be cut again for
/// any other number of ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Samples in the dataset.
    pub n: usize,
    /// Ranks.
    pub world: usize,
    /// This rank.
    pub rank: usize,
    /// Samples per rank per step.
    pub batch: usize,
    /// Pad or drop to equal shares.
    pub shard: Shard,
    /// Leave out a last batch smaller than `batch`.
    pub drop_last: bool,
    /// Position of the order where this epoch's cut starts.
    pub start: usize,
}

impl Plan {
    /// Samples each rank reads from `start` to the epoch's end.
    pub fn per_rank(&self) -> usize {
        let left = self.n.saturating_sub(self.start);
        let w = self.world.max(1);
        match self.shard {
            _ if w == 1 => left,
            Shard::Pad => left.div_ceil(w),
            Shard::Drop => left / w,
        }
    }

    /// Batches each rank gets.
    pub fn batches(&self) -> usize {
        let m = self.per_rank();
        let b = self.batch.max(1);
        if self.drop_last {
            m / b
        } else {
            m.div_ceil(b)
        }
    }

    /// Positions of the global order (`start`-based; positions past `n`
    /// wrap to the order's beginning: padding) in this rank's batch `k`.
    pub fn positions(&self, k: usize) -> std::ops::Range<usize> {
        let (w, b) = (self.world.max(1), self.batch.max(1));
        let m = self.per_rank();
        let done = k * b; // samples per rank before batch k
        let size = b.min(m.saturating_sub(done));
        let step = self.start + done * w;
        let first = step + self.rank * size;
        first..first + size
    }

    /// Samples of the order consumed by the whole job once every rank has
    /// read `k` batches (at most `n`: padding is not counted).
    pub fn consumed(&self, k: usize) -> usize {
        let (w, b) = (self.world.max(1), self.batch.max(1));
        let m = self.per_rank();
        (self.start + (k * b).min(m) * w).min(self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation_that_changes_with_epoch_and_seed() {
        let a = permutation(1000, true, 1, 0);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, permutation(1000, true, 1, 0));
        assert_ne!(a, permutation(1000, true, 1, 1));
        assert_ne!(a, permutation(1000, true, 2, 0));
        assert_eq!(permutation(5, false, 9, 3), [0, 1, 2, 3, 4]);
    }

    fn share(plan: &Plan) -> Vec<usize> {
        (0..plan.batches())
            .flat_map(|k| plan.positions(k))
            .collect()
    }

    #[test]
    fn ranks_step_in_lockstep_with_disjoint_shares_covering_everything() {
        for world in 1..=5 {
            for n in [0usize, 1, 7, 10, 101] {
                for batch in [1, 3, 8] {
                    for shard in [Shard::Pad, Shard::Drop] {
                        let plans: Vec<Plan> = (0..world)
                            .map(|rank| Plan {
                                n,
                                world,
                                rank,
                                batch,
                                shard,
                                drop_last: false,
                                start: 0,
                            })
                            .collect();
                        let batches = plans[0].batches();
                        assert!(plans.iter().all(|p| p.batches() == batches), "lockstep");
                        let mut all: Vec<usize> = plans.iter().flat_map(share).collect();
                        let total = all.len();
                        all.sort_unstable();
                        let real: Vec<usize> = all.iter().copied().filter(|&p| p < n).collect();
                        let mut dedup = real.clone();
                        dedup.dedup();
                        assert_eq!(
                            dedup.len(),
                            real.len(),
                            "no sample twice (world {world}, n {n})"
                        );
                        match shard {
                            Shard::Pad => {
                                assert_eq!(dedup, (0..n).collect::<Vec<_>>(), "every sample")
                            }
                            Shard::Drop => {
                                assert_eq!(total, n / world * world);
                                assert!(all.iter().all(|&p| p < n));
                            }
                        }
                        // Within a step, the ranks' runs follow one another.
                        for k in 0..batches {
                            let runs: Vec<_> = plans.iter().map(|p| p.positions(k)).collect();
                            for w in runs.windows(2) {
                                assert_eq!(w[0].end, w[1].start);
                            }
                            assert_eq!(plans[0].consumed(k + 1), runs.last().unwrap().end.min(n));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_rest_of_an_epoch_resumes_exactly_once_on_another_world_size() {
        let n = 103;
        let plan = |world, rank, start| Plan {
            n,
            world,
            rank,
            batch: 4,
            shard: Shard::Pad,
            drop_last: false,
            start,
        };
        // Four ranks read three batches each, then the job stops.
        let seen: Vec<usize> = (0..4)
            .flat_map(|r| (0..3).flat_map(move |k| plan(4, r, 0).positions(k)))
            .collect();
        let position = plan(4, 0, 0).consumed(3);
        assert_eq!(position, 48);
        // Two ranks resume at that position.
        let rest: Vec<usize> = (0..2)
            .flat_map(|r| {
                let p = plan(2, r, position);
                (0..p.batches()).flat_map(move |k| p.positions(k))
            })
            .filter(|&p| p < n)
            .collect();
        let mut all = [seen, rest].concat();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..n).collect::<Vec<_>>(),
            "the remaining samples exactly once"
        );
        // The same world size resumes as if it had not stopped.
        let straight: Vec<usize> = (3..plan(4, 1, 0).batches())
            .flat_map(|k| plan(4, 1, 0).positions(k))
            .collect();
        let resumed: Vec<usize> = (0..plan(4, 1, position).batches())
            .flat_map(|k| plan(4, 1, position).positions(k))
            .collect();
        assert_eq!(straight, resumed);
    }
}
