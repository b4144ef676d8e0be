//! Batch buffers that go back to their dataset when dropped.
//!
//! A float32 batch of 64×224×224×3 is 38.5 MB: above glibc's largest mmap
//! threshold (32 MB), so a fresh `Vec` per batch is a fresh mapping whose
//! 9,400 pages the kernel faults in and zeroes, and unmaps again on drop.
//! Measured on the 2-core reference machine, that took more time than the
//! normalization itself. Recycled buffers are already mapped.
//!
//! Every buffer starts on a 64-byte boundary. A plain large allocation
//! starts 16 bytes past a page boundary, and JAX on the CPU copies such an
//! array when it is handed one (35 ms for that float32 batch, measured),
//! where a 64-byte aligned one is taken as it is (0.1 ms).

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

/// The unit buffers are allocated in: 64 bytes on a 64-byte boundary.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
struct Block([u8; 64]);

type Blocks = Vec<Block>;

fn blocks_for<T>(len: usize) -> usize {
    (len * std::mem::size_of::<T>()).div_ceil(std::mem::size_of::<Block>())
}

/// Free buffers of one element type. Only buffers that were live before
/// are kept, so live + free never exceeds the most batches ever live at once.
pub(crate) struct Pool<T> {
    free: Arc<Mutex<Vec<Blocks>>>,
    kind: PhantomData<T>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            free: Arc::new(Mutex::new(Vec::new())),
            kind: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let free = self.free.lock().map(|f| f.len()).unwrap_or(0);
        write!(f, "Pool({free} free)")
    }
}

impl<T: Pod> Pool<T> {
    /// A buffer of exactly `len` elements (contents unspecified: the caller
    /// overwrites all of them), or `None` when the memory cannot be had (a
    /// failed allocation is an error for the caller, not an abort).
    pub fn take(&self, len: usize) -> Option<Buffer<T>> {
        let needed = len
            .checked_mul(std::mem::size_of::<T>())?
            .div_ceil(std::mem::size_of::<Block>());
        // Batches of several shapes (buckets) share the pool: the smallest
        // free buffer that holds this one, else the largest, grown. Only
        // `len` elements are ever seen, so a bigger buffer serves as is.
        let recycled = self.free.lock().ok().and_then(|mut free| {
            let fits = (0..free.len())
                .filter(|&i| free[i].len() >= needed)
                .min_by_key(|&i| free[i].len());
            let pick = fits.or_else(|| (0..free.len()).max_by_key(|&i| free[i].len()))?;
            Some(free.swap_remove(pick))
        });
        let mut blocks = recycled.unwrap_or_default();
        if blocks.len() < needed {
            blocks.try_reserve_exact(needed - blocks.len()).ok()?;
            blocks.resize(needed, Block::zeroed());
        }
        Some(Buffer {
            blocks,
            len,
            home: Some(Arc::clone(&self.free)),
            kind: PhantomData,
        })
    }
}

/// A contiguous buffer of a batch, starting on a 64-byte boundary.
/// Dereferences to a slice; returns to its dataset's pool when dropped.
pub struct Buffer<T> {
    blocks: Blocks,
    len: usize,
    home: Option<Arc<Mutex<Vec<Blocks>>>>,
    kind: PhantomData<T>,
}

impl<T: Pod> Buffer<T> {
    /// A buffer that belongs to no pool, holding a copy of `data`.
    pub fn from_slice(data: &[T]) -> Self {
        let mut blocks = vec![Block::zeroed(); blocks_for::<T>(data.len())];
        bytemuck::cast_slice_mut::<Block, T>(&mut blocks)[..data.len()].copy_from_slice(data);
        Buffer {
            blocks,
            len: data.len(),
            home: None,
            kind: PhantomData,
        }
    }
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            if let Ok(mut free) = home.lock() {
                free.push(std::mem::take(&mut self.blocks));
            }
        }
    }
}

impl<T: Pod> Deref for Buffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &bytemuck::cast_slice::<Block, T>(&self.blocks)[..self.len]
    }
}

impl<T: Pod> DerefMut for Buffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut bytemuck::cast_slice_mut::<Block, T>(&mut self.blocks)[..self.len]
    }
}

impl<T: Pod> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        Buffer::from_slice(self)
    }
}

impl<T: Pod + PartialEq> PartialEq for Buffer<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T> std::fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer(len {})", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_64_bytes_and_are_recycled() {
        let pool = Pool::<f32>::default();
        let a = pool.take(1000).unwrap();
        assert_eq!(a.len(), 1000);
        assert_eq!(a.as_ptr() as usize % 64, 0);
        let ptr = a.as_ptr();
        drop(a);
        let b = pool.take(1000).unwrap();
        assert_eq!(b.as_ptr(), ptr, "the same memory again");
        let odd = Pool::<u8>::default().take(3 * 224 * 224 + 5).unwrap();
        assert_eq!(odd.as_ptr() as usize % 64, 0);
        assert_eq!(odd.len(), 3 * 224 * 224 + 5);
        assert!(
            Pool::<f32>::default().take(usize::MAX / 2).is_none(),
            "no abort"
        );
        let copy = Buffer::from_slice(&[1u8, 2, 3]);
        assert_eq!(&copy[..], &[1, 2, 3]);
        assert_eq!(copy.clone(), copy);
    }

    /// Batches of several shapes (buckets) reuse the pool's memory instead
    /// of allocating (and faulting in) a new buffer whenever the size
    /// changes; the pool keeps as many buffers as were out at once.
    #[test]
    fn buffers_of_other_sizes_are_reused() {
        let pool = Pool::<f32>::default();
        let (big, small) = (pool.take(4000).unwrap(), pool.take(1000).unwrap());
        let (pb, ps) = (big.as_ptr(), small.as_ptr());
        drop((big, small));
        let a = pool.take(900).unwrap();
        assert_eq!(a.as_ptr(), ps, "the smallest that fits");
        assert_eq!(a.len(), 900);
        let b = pool.take(3000).unwrap();
        assert_eq!(b.as_ptr(), pb);
        drop((a, b));
        let c = pool.take(5000).unwrap();
        assert_eq!(c.len(), 5000, "the largest, grown");
        assert_eq!(pool.free.lock().unwrap().len(), 1);
    }
}
