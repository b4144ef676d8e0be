//! Sharded stokehold datasets in S3-compatible object storage.
//!
//! A dataset directory written by `pack` (shards and `dataset.json`) can
//! live under `s3://bucket/prefix/`. Opening it reads the index once;
//! every sample is then read by HTTP range request at the byte address the
//! index gives, never through libhdf5 and never a whole shard: the samples
//! of a batch are planned together ([`plan`]), neighbouring samples of a
//! shard in one request, and the requests run concurrently
//! ([`RemoteOptions::max_in_flight`]). A failed or short response is
//! retried with backoff a bounded number of times ([`RemoteOptions::retries`]),
//! then reported with the object, the sample and the status; a body of the
//! wrong length is never handed on. An optional block cache on local disk
//! ([`RemoteOptions::cache_dir`]) serves later epochs.
//!
//! Writing: [`Remote::upload_file`] (multipart for large files) and
//! [`Remote::put`]; `pack` writes shards locally and uploads each one as it
//! is closed, the index last.
//!
//! Credentials, region and endpoint come from `storage_options`, then the
//! standard `AWS_*` environment variables, then the AWS shared config and
//! credentials files (`~/.aws/config`, `~/.aws/credentials`, profile
//! `AWS_PROFILE` or `default`).

mod cache;
mod config;
mod plan;
mod write;

use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use stokehold_store::{DatasetIndex, Error, PackedDataset, RangeReader, RemoteKind, INDEX_FILE};

pub use cache::BlockCache;
pub use config::{is_remote, remote_url, RemoteOptions, S3Location};
pub use plan::{plan, Run};
pub use write::{clear_output, commit_into, commit_remote, pack_into, pack_to_remote};

/// The tokio runtime every remote dataset of the process shares (two
/// threads: requests are I/O, the work is done by the callers' threads).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stokehold-io")
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Requests and bytes a [`Remote`] has fetched (ranges and whole objects).
#[derive(Debug, Default)]
pub struct Counters {
    /// GET requests answered in full (retries not counted).
    pub requests: AtomicU64,
    /// Bytes received in those answers.
    pub bytes: AtomicU64,
    /// Attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Ranges served from the local cache.
    pub cache_hits: AtomicU64,
}

/// A dataset location in object storage and a client for it.
#[derive(Debug, Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    location: S3Location,
    options: RemoteOptions,
    counters: Arc<Counters>,
    cache: Option<Arc<BlockCache>>,
}

impl Remote {
    /// A client for `url` (`s3://bucket/prefix/`, the dataset's folder, or
    /// its `dataset.json`).
    pub fn connect(url: &str, options: RemoteOptions) -> Result<Remote, Error> {
        let location = S3Location::parse(url)?;
        let store = options.build_store(&location)?;
        Remote::with_store(store, location, options)
    }

    /// A client reading `location`'s keys from `store` (any object store:
    /// tests use an in-memory one).
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        location: S3Location,
        options: RemoteOptions,
    ) -> Result<Remote, Error> {
        Ok(Remote {
            store,
            location,
            options,
            counters: Arc::new(Counters::default()),
            cache: None,
        })
    }

    /// The dataset's location.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// What was fetched so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn key(&self, name: &str) -> ObjectPath {
        ObjectPath::from(self.location.key(name))
    }

    fn fail(&self, name: &str, reason: impl std::fmt::Display) -> Error {
        self.error(RemoteKind::Failed, name, reason)
    }

    fn error(&self, kind: RemoteKind, name: &str, reason: impl std::fmt::Display) -> Error {
        Error::Remote {
            location: self.location.url(name),
            reason: reason.to_string(),
            kind,
        }
    }

    /// Runs `fut` on the shared runtime; `stop` (checked every 100 ms) gives
    /// up waiting: `None` then.
    fn block<F>(&self, fut: F, stop: Option<&dyn Fn() -> bool>) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(stop) = stop else {
            return Some(runtime().block_on(fut));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let task = runtime().spawn(async move {
            let _ = tx.send(fut.await);
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(v) => return Some(v),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if stop() => {
                    task.abort();
                    return None;
                }
                Err(_) => {}
            }
        }
    }

    /// The whole object `name` (relative to the dataset), retried like a
    /// range; `stop` as in [`Remote::open`].
    pub fn get(&self, name: &str, stop: Option<&dyn Fn() -> bool>) -> Result<Bytes, Error> {
        let this = self.clone();
        let name_owned = name.to_owned();
        self.block(async move { this.get_async(&name_owned, None).await }, stop)
            .unwrap_or_else(|| Err(self.fail(name, "interrupted")))
    }

    /// Range `range` of `name` (the whole object for `None`), with retries;
    /// a body of another length than asked is an error (and retried).
    async fn get_async(&self, name: &str, range: Option<Range<u64>>) -> Result<Bytes, Error> {
        let key = self.key(name);
        let mut delay = self.options.backoff;
        let mut attempt = 0u32;
        loop {
            let what = match &range {
                Some(r) => format!("bytes {}..{}: ", r.start, r.end),
                None => String::new(),
            };
            let options = object_store::GetOptions::new().with_range(range.clone());
            let failure = match self.store.get_opts(&key, options).await {
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(self.error(RemoteKind::Missing, name, "not found (404)"));
                }
                Err(e) => format!("{what}{}", one_line(&e)),
                Ok(got) => {
                    // Read as a stream, so that a body cut short is told
                    // apart from a request that failed.
                    let want = got.range.end - got.range.start;
                    let mut body = Vec::with_capacity(want as usize);
                    let mut stream = got.into_stream();
                    let mut broken = None;
                    while let Some(chunk) = stream.next().await {
                        match chunk {
                            Ok(c) => body.extend_from_slice(&c),
                            Err(e) => {
                                broken = Some(one_line(&e));
                                break;
                            }
                        }
                    }
                    let asked = range.as_ref().map_or(want, |r| r.end - r.start);
                    match broken {
                        Some(e) => format!(
                            "{what}the response was cut short after {} of {want} bytes ({e})",
                            body.len()
                        ),
                        None if body.len() as u64 != asked || want != asked => format!(
                            "{what}the response held {} bytes of {asked} (cut short)",
                            body.len()
                        ),
                        None => {
                            self.counters.requests.fetch_add(1, Ordering::Relaxed);
                            self.counters
                                .bytes
                                .fetch_add(body.len() as u64, Ordering::Relaxed);
                            return Ok(Bytes::from(body));
                        }
                    }
                }
            };
            if attempt >= self.options.retries {
                return Err(self.fail(
                    name,
                    format!("{failure} (gave up after {} attempts)", attempt + 1),
                ));
            }
            attempt += 1;
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// One planned run: from the cache's blocks, or one range request.
    async fn fetch_run(&self, name: &str, range: Range<u64>) -> Result<Bytes, Error> {
        let Some(cache) = &self.cache else {
            return self.get_async(name, Some(range)).await;
        };
        let past_end = || {
            self.fail(
                name,
                format!("bytes {}..{} are past its end", range.start, range.end),
            )
        };
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        for block in cache.blocks(range.clone()) {
            let span = cache.block_range(name, block).ok_or_else(past_end)?;
            let bytes = match cache.get(name, block) {
                Some(b) => {
                    self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                    b
                }
                None => {
                    let b = self.get_async(name, Some(span.clone())).await?;
                    cache.put(name, block, &b);
                    b.to_vec()
                }
            };
            let from = range.start.max(span.start) - span.start;
            let to = range.end.min(span.end) - span.start;
            out.extend_from_slice(&bytes[from as usize..to as usize]);
        }
        if out.len() as u64 != range.end - range.start {
            return Err(past_end());
        }
        Ok(Bytes::from(out))
    }

    /// Writes `bytes` to object `name` (one request).
    pub fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), Error> {
        runtime().block_on(async {
            self.store
                .put(&self.key(name), PutPayload::from(bytes))
                .await
                .map_err(|e| self.fail(name, one_line(&e)))?;
            Ok(())
        })
    }

    /// Uploads local file `path` to object `name`: one request up to
    /// [`RemoteOptions::multipart_bytes`], else a multipart upload in parts
    /// of that size, a few at a time. The object appears whole or not at all.
    pub fn upload_file(&self, path: &Path, name: &str) -> Result<(), Error> {
        let io = |e: std::io::Error| Error::Io {
            path: path.to_path_buf(),
            error: e,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        let part = self.options.multipart_bytes.max(5 << 20);
        if len <= part {
            return self.put(name, std::fs::read(path).map_err(io)?);
        }
        runtime().block_on(async {
            use std::io::Read;
            let upload = self
                .store
                .put_multipart(&self.key(name))
                .await
                .map_err(|e| self.fail(name, one_line(&e)))?;
            let mut writer =
                object_store::WriteMultipart::new_with_chunk_size(upload, part as usize);
            let mut file = std::fs::File::open(path).map_err(io)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                writer
                    .wait_for_capacity(4)
                    .await
                    .map_err(|e| self.fail(name, one_line(&e)))?;
                let n = file.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                writer.write(&buf[..n]);
            }
            writer
                .finish()
                .await
                .map_err(|e| self.fail(name, one_line(&e)))?;
            Ok(())
        })
    }

    /// Deletes object `name` (nothing if it is not there).
    pub fn delete(&self, name: &str) -> Result<(), Error> {
        runtime().block_on(async {
            match self.store.delete(&self.key(name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.fail(name, one_line(&e))),
            }
        })
    }

    /// Names (relative to the dataset) and sizes of the objects under it, sorted.
    pub fn list(&self) -> Result<Vec<(String, u64)>, Error> {
        runtime().block_on(async {
            let prefix = self.location.prefix_path();
            let mut names = Vec::new();
            let mut listing = self.store.list(prefix.as_ref());
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|e| self.fail("", one_line(&e)))?;
                let key = meta.location.to_string();
                let rel = match &prefix {
                    Some(p) => key
                        .strip_prefix(&format!("{p}/"))
                        .unwrap_or(&key)
                        .to_owned(),
                    None => key,
                };
                names.push((rel, meta.size));
            }
            names.sort();
            Ok(names)
        })
    }

    /// Opens the dataset: reads `dataset.json` once (refusing one larger
    /// than `max_index_bytes`), then serves samples by range. `stop` is
    /// checked while waiting (Ctrl-C in Python).
    pub fn open(
        self,
        max_index_bytes: u64,
        stop: Option<&dyn Fn() -> bool>,
    ) -> Result<PackedDataset, Error> {
        let index = self.get(INDEX_FILE, stop).map_err(|e| match e {
            Error::Remote {
                location,
                kind: RemoteKind::Missing,
                ..
            } => {
                let parts = self
                    .list()
                    .map(|names| names.iter().any(|(n, _)| n.starts_with("part-")))
                    .unwrap_or(false);
                if parts {
                    Error::Remote {
                        location,
                        reason: "no dataset.json: the parts packed here are not committed yet (stokehold commit)".into(),
                        kind: RemoteKind::Failed,
                    }
                } else {
                    Error::Remote {
                        location,
                        reason: "not found: no packed dataset here (no dataset.json)".into(),
                        kind: RemoteKind::Missing,
                    }
                }
            }
            e => e,
        })?;
        if index.len() as u64 > max_index_bytes {
            return Err(self.fail(
                INDEX_FILE,
                format!(
                    "the index has {} bytes, more than max_source_bytes ({max_index_bytes})",
                    index.len()
                ),
            ));
        }
        let location = self.location.url(INDEX_FILE);
        let parsed = DatasetIndex::parse(&index, Path::new(&location))?;
        // Every shard must be there, at its recorded size: one listing
        // (a thousand keys a page) finds a missing or replaced one now.
        let sizes: std::collections::HashMap<String, u64> = parsed
            .shards
            .iter()
            .map(|s| (s.path.clone(), s.file_bytes))
            .collect();
        let mut this = self;
        let listed: std::collections::HashMap<String, u64> = this.list()?.into_iter().collect();
        let mut names: Vec<&String> = sizes.keys().collect();
        names.sort();
        for name in names {
            match listed.get(name) {
                None => {
                    return Err(this.error(
                        RemoteKind::Missing,
                        name,
                        "missing: the dataset's index lists this shard, the bucket does not hold it",
                    ))
                }
                Some(&size) if size != sizes[name] => {
                    return Err(this.fail(
                        name,
                        format!(
                            "the shard has {size} bytes, the dataset's index says {}: it was replaced or damaged",
                            sizes[name]
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(dir) = &this.options.cache_dir {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&index[..], &mut h);
            let identity = format!("{}#{:016x}", this.location, std::hash::Hasher::finish(&h));
            this.cache = Some(Arc::new(BlockCache::open(
                dir,
                &identity,
                sizes,
                this.options.cache_limit,
                this.options.cache_block,
            )?));
        }
        Ok(PackedDataset::from_remote(
            &location,
            parsed,
            Box::new(this),
        ))
    }
}

impl stokehold_pack::Upload for Remote {
    fn upload(&self, path: &Path, name: &str) -> Result<(), Error> {
        self.upload_file(path, name)
    }
}

impl RangeReader for Remote {
    fn counters(&self) -> [u64; 4] {
        let c = &self.counters;
        [
            c.requests.load(Ordering::Relaxed),
            c.bytes.load(Ordering::Relaxed),
            c.retries.load(Ordering::Relaxed),
            c.cache_hits.load(Ordering::Relaxed),
        ]
    }

    fn read(&self, requests: &[(&str, Range<u64>)]) -> Vec<Result<Vec<u8>, Error>> {
        let runs = plan(
            requests,
            self.options.max_gap,
            self.options.max_request_bytes,
        );
        let in_flight = self.options.max_in_flight.max(1);
        let fetched: Vec<Result<Bytes, Error>> = runtime().block_on(
            stream::iter(&runs)
                .map(|r| self.fetch_run(requests[r.members[0]].0, r.range.clone()))
                .buffered(in_flight)
                .collect(),
        );
        let mut out: Vec<Option<Result<Vec<u8>, Error>>> =
            (0..requests.len()).map(|_| None).collect();
        for (run, result) in runs.iter().zip(fetched) {
            for &m in &run.members {
                let r = &requests[m].1;
                out[m] = Some(match &result {
                    Ok(bytes) => {
                        let from = (r.start - run.range.start) as usize;
                        Ok(bytes[from..from + (r.end - r.start) as usize].to_vec())
                    }
                    Err(Error::Remote {
                        location,
                        reason,
                        kind,
                    }) => Err(Error::Remote {
                        location: location.clone(),
                        reason: reason.clone(),
                        kind: *kind,
                    }),
                    Err(e) => Err(self.fail(requests[m].0, e)),
                });
            }
        }
        out.into_iter()
            .map(|r| r.expect("every request is in one run"))
            .collect()
    }
}

/// Opens a packed file, a dataset directory (or its `dataset.json`), or a
/// dataset in object storage (`s3://bucket/prefix/`, read with `options`);
/// `stop` is checked while waiting on the network.
pub fn open_dataset(
    location: &Path,
    options: RemoteOptions,
    max_index_bytes: u64,
    stop: Option<&dyn Fn() -> bool>,
) -> Result<PackedDataset, Error> {
    match remote_url(location) {
        Some(url) => Remote::connect(url, options)?.open(max_index_bytes, stop),
        None => PackedDataset::open(location, max_index_bytes),
    }
}

/// An error on one line (the transport's chain of causes joined).
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests;
