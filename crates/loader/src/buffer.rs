//! Batch buffers that go back to their dataset when dropped.
//!
//! A float32 batch of 64×224×224×3 is 38.5 MB: above glibc's largest mmap
//! threshold (32 MB), so a fresh `Vec` per batch is a fresh mapping whose
//! 9,400 pages the kernel faults in and zeroes, and unmaps again on drop.
//! Measured on the 2-core reference machine, that took more time than the
//! normalization itself. Recycled buffers are already mapped.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

/// Free buffers of one element type. Only buffers that were live before
/// are kept, so live + free never exceeds the most batches ever live at once.
#[derive(Debug)]
pub(crate) struct Pool<T> {
    free: Arc<Mutex<Vec<Vec<T>>>>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            free: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T: Copy + Default> Pool<T> {
    /// A buffer of exactly `len` elements (contents unspecified: the caller
    /// overwrites all of them).
    pub fn take(&self, len: usize) -> Buffer<T> {
        let recycled = self.free.lock().ok().and_then(|mut f| f.pop());
        let mut data = recycled.unwrap_or_default();
        if data.len() != len {
            data.clear();
            data.resize(len, T::default());
        }
        Buffer {
            data,
            home: Some(Arc::clone(&self.free)),
        }
    }
}

/// A contiguous buffer of a batch. Dereferences to a slice; returns to its
/// dataset's pool when dropped (or use [`Buffer::into_vec`] to keep it).
pub struct Buffer<T> {
    data: Vec<T>,
    home: Option<Arc<Mutex<Vec<Vec<T>>>>>,
}

impl<T> Buffer<T> {
    /// A buffer that belongs to no pool.
    pub fn from_vec(data: Vec<T>) -> Self {
        Buffer { data, home: None }
    }

    /// The elements, taken out of the pool's reach.
    pub fn into_vec(mut self) -> Vec<T> {
        self.home = None;
        std::mem::take(&mut self.data)
    }
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            if let Ok(mut free) = home.lock() {
                free.push(std::mem::take(&mut self.data));
            }
        }
    }
}

impl<T> Deref for Buffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.data
    }
}

impl<T> DerefMut for Buffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
}

impl<T: Clone> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        Buffer::from_vec(self.data.clone())
    }
}

impl<T: PartialEq> PartialEq for Buffer<T> {
    fn eq(&self, other: &Self) -> bool {
        self.data == other.data
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer(len {})", self.data.len())
    }
}
