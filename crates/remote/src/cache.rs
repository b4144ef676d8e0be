//! A block cache on local disk for remote shards: fixed-size blocks of the
//! shard objects, one file each, written to a temporary name and renamed
//! (so that the processes of one machine can share it: a reader sees a
//! whole block or none), the blocks used longest ago removed first when
//! the cache outgrows its limit.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use stokehold_store::Error;

/// Blocks of one dataset's shards under `dir/<dataset key>/`.
#[derive(Debug)]
pub struct BlockCache {
    dir: PathBuf,
    block: u64,
    limit: u64,
    /// Object sizes (from the index): the last block of an object is short.
    sizes: HashMap<String, u64>,
    /// This process's estimate of the bytes cached (checked by a scan when
    /// it passes the limit).
    used: AtomicU64,
}

impl BlockCache {
    /// The cache of the dataset identified by `identity` (its address and
    /// the hash of its index: a dataset packed again is another dataset),
    /// whose objects have `sizes`, in `root`; `limit` bytes at most (0: no
    /// limit) in blocks of `block` bytes.
    pub fn open(
        root: &Path,
        identity: &str,
        sizes: HashMap<String, u64>,
        limit: u64,
        block: u64,
    ) -> Result<BlockCache, Error> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        identity.hash(&mut h);
        let dir = root.join(format!("{:016x}", h.finish()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
            path: dir.clone(),
            error: e,
        })?;
        let cache = BlockCache {
            used: AtomicU64::new(0),
            dir,
            block: block.max(4096),
            limit,
            sizes,
        };
        cache
            .used
            .store(cache.scan().iter().map(|f| f.1).sum(), Ordering::Relaxed);
        Ok(cache)
    }

    /// The folder of this dataset's blocks.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The blocks that hold `range`.
    pub fn blocks(&self, range: Range<u64>) -> Range<u64> {
        if range.is_empty() {
            return 0..0;
        }
        range.start / self.block..(range.end - 1) / self.block + 1
    }

    /// The bytes of block `block` of object `name` (the last block of an
    /// object ends with it).
    pub fn block_range(&self, name: &str, block: u64) -> Option<Range<u64>> {
        let size = *self.sizes.get(name)?;
        let start = block * self.block;
        (start < size).then(|| start..(start + self.block).min(size))
    }

    fn file(&self, name: &str, block: u64) -> PathBuf {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!("{safe}.{block}"))
    }

    /// A cached block, if whole.
    pub fn get(&self, name: &str, block: u64) -> Option<Vec<u8>> {
        let want = self.block_range(name, block)?;
        let path = self.file(name, block);
        let bytes = std::fs::read(&path).ok()?;
        if bytes.len() as u64 != want.end - want.start {
            return None;
        }
        // Used now: the last to be evicted.
        if let Ok(f) = std::fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(bytes)
    }

    /// Keeps a block (errors only lose the caching, never the read).
    pub fn put(&self, name: &str, block: u64, bytes: &[u8]) {
        let path = self.file(name, block);
        let written = (|| -> std::io::Result<()> {
            let mut tmp = tempfile::Builder::new()
                .prefix(".block-")
                .tempfile_in(&self.dir)?;
            tmp.write_all(bytes)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        if written.is_ok() {
            let used =
                self.used.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64;
            if self.limit > 0 && used > self.limit {
                self.evict();
            }
        }
    }

    fn scan(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with(".block-"))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((e.path(), m.len(), m.modified().ok()?))
            })
            .collect()
    }

    /// Removes the blocks used longest ago until the cache holds at most
    /// 90% of its limit.
    fn evict(&self) {
        let mut files = self.scan();
        files.sort_by_key(|f| f.2);
        let mut used: u64 = files.iter().map(|f| f.1).sum();
        let target = self.limit / 10 * 9;
        for (path, len, _) in files {
            if used <= target {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                used -= len;
            }
        }
        self.used.store(used, Ordering::Relaxed);
    }
}
