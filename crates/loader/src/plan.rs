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

/// The sample indices rank `rank` of `world_size` reads in epoch `epoch`.
///
/// The order is the identity when `shuffle` is false, else a Fisher-Yates
/// shuffle keyed by `(seed, epoch)`; all ranks compute the same order and
/// take every `world_size`-th position from `rank`, so their shares are
/// disjoint (except padding) and of equal length.
pub fn epoch_order(
    n: usize,
    shuffle: bool,
    seed: u64,
    epoch: u64,
    rank: usize,
    world_size: usize,
    shard: Shard,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        let mut rng = Rng::keyed(&[seed, epoch]);
        for i in (1..n).rev() {
            let j = rng.below(i + 1);
            order.swap(i, j);
        }
    }
    let world_size = world_size.max(1);
    if world_size == 1 || n == 0 {
        return order;
    }
    let total = match shard {
        Shard::Pad => n.div_ceil(world_size) * world_size,
        Shard::Drop => n / world_size * world_size,
    };
    (rank..total)
        .step_by(world_size)
        .map(|p| order[p % n])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation_that_changes_with_epoch_and_seed() {
        let a = epoch_order(1000, true, 1, 0, 0, 1, Shard::Pad);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(1000, true, 1, 0, 0, 1, Shard::Pad));
        assert_ne!(a, epoch_order(1000, true, 1, 1, 0, 1, Shard::Pad));
        assert_ne!(a, epoch_order(1000, true, 2, 0, 0, 1, Shard::Pad));
        assert_eq!(
            epoch_order(5, false, 9, 3, 0, 1, Shard::Pad),
            [0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn shards_are_disjoint_equal_and_cover_everything() {
        for world in 1..=4 {
            for n in [0usize, 1, 7, 10, 101] {
                let shares: Vec<Vec<usize>> = (0..world)
                    .map(|r| epoch_order(n, true, 3, 2, r, world, Shard::Pad))
                    .collect();
                let len = shares[0].len();
                assert!(shares.iter().all(|s| s.len() == len), "equal lengths");
                let mut all: Vec<usize> = shares.concat();
                all.sort_unstable();
                all.dedup();
                assert_eq!(
                    all.len(),
                    n,
                    "every sample somewhere (world {world}, n {n})"
                );
                let dropped: Vec<Vec<usize>> = (0..world)
                    .map(|r| epoch_order(n, true, 3, 2, r, world, Shard::Drop))
                    .collect();
                let mut d = dropped.concat();
                let total = d.len();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), total, "no duplicate with drop");
                assert_eq!(total, n / world * world);
            }
        }
    }
}
