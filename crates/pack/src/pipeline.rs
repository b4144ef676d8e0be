//! The pack pipeline: parallel decode/resize, ordered write to one file or
//! to shards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use stokehold_core::{Control, Finding, FindingKind, Sample, SampleSource};
use stokehold_store::index::{part_dir_name, write_json_atomic, PART_FILE};
use stokehold_store::{
    check_class_names, Attrs, DatasetSpec, PartRecord, ShardSpill, Storage, StoreWriter,
    WriterConfig,
};

use crate::options::{validate, PackOptions, PackReport, StorageKind, StorageOption};
use crate::process::{process, Packed};
use crate::sink::{clear_dataset_dir, holds_dataset, FileSink, ShardSink, Sink, Upload};
use crate::Error;

/// Everything that could fail at the end of a pack, checked before any
/// image is decoded: the class names, the destination (not a directory,
/// not the source or one of its images, not being written by another
/// pack, not existing unless `force`).
fn preflight(samples: &dyn SampleSource, dest: &Path, options: &PackOptions) -> Result<(), Error> {
    check_class_names(samples.classes()).map_err(Error::InvalidArgument)?;
    if options.sharded() {
        check_output_dir(dest, options)?;
    } else {
        check_output(dest, options.force)?;
    }
    let dest_abs = std::path::absolute(dest).unwrap_or_else(|_| dest.to_path_buf());
    let dest_real = std::fs::canonicalize(dest).ok();
    let same = |p: &Path| {
        p == dest_abs
            || dest_real.as_deref() == Some(p)
            || std::fs::canonicalize(p).ok().as_deref() == Some(dest_abs.as_path())
    };
    if let Some(source) = samples.source() {
        if same(&source.path) {
            return Err(Error::InvalidArgument(format!(
                "the output {} is the source being packed; write elsewhere",
                dest.display()
            )));
        }
    }
    // Read for this check only (a manifest file is parsed again, sample by
    // sample, when packed); a line that does not parse is a finding later.
    for i in 0..samples.len() {
        if let Ok(s) = samples.sample(i) {
            if s.path == dest_abs || dest_real.as_deref() == Some(s.path.as_path()) {
                return Err(Error::InvalidArgument(format!(
                    "the output {} is one of the images being packed ({}); write elsewhere",
                    dest.display(),
                    s.path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Checks the destination before anything is read: not a directory, and
/// not an existing file unless `force`. Callers that index first (the
/// command line, Python) call it before indexing too.
pub fn check_output(dest: &Path, force: bool) -> Result<(), Error> {
    if dest.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "the output {} is a directory; give a file name such as {}",
            dest.display(),
            dest.join("data.h5").display()
        )));
    }
    if dest.exists() && !force {
        return Err(Error::Exists {
            path: dest.to_path_buf(),
        });
    }
    match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(Error::Store(stokehold_store::Error::Io {
                path: dir.to_path_buf(),
                error: std::io::Error::from(std::io::ErrorKind::NotFound),
            }))
        }
        _ => Ok(()),
    }
}

/// Checks a dataset directory before anything is read: not a file; not
/// holding a dataset (or, for a part, that part) unless `force`.
pub fn check_output_dir(dest: &Path, options: &PackOptions) -> Result<(), Error> {
    if dest.exists() && !dest.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "the output {} is a file; a sharded dataset is written into a directory",
            dest.display()
        )));
    }
    if options.force {
        return Ok(());
    }
    let taken = match options.part {
        Some((i, n)) => dest.join(part_dir_name(i, n)).join(PART_FILE).exists(),
        None => holds_dataset(dest),
    };
    if taken {
        return Err(Error::Exists {
            path: dest.to_path_buf(),
        });
    }
    Ok(())
}

/// An advisory lock on the destination for as long as a pack runs, so that
/// a second pack to the same file fails at once instead of at its end. The
/// lock file (hidden, beside the destination) is removed when the pack
/// ends; a pack that is killed leaves it, and it locks nothing then.
struct DestLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl DestLock {
    fn take(dest: &Path, sharded: Option<&str>) -> Result<DestLock, Error> {
        let path = match sharded {
            // Inside the directory: one lock per part, one for a whole pack.
            Some(what) => dest.join(format!(".{what}.stokehold-lock")),
            None => {
                let name = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                dest.with_file_name(format!(".{name}.stokehold-lock"))
            }
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| {
                Error::Store(stokehold_store::Error::Io {
                    path: path.clone(),
                    error: e,
                })
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DestLock { path, _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::InvalidArgument(format!(
                "{} is being written by another pack right now",
                dest.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Store(stokehold_store::Error::Io {
                path: path.clone(),
                error: e,
            })),
        }
    }
}

impl Drop for DestLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Packs `manifest` into `dest`: one file, or (with `options.shards` or
/// `options.part`) a directory of shards. See the crate documentation.
///
/// Decode and resize run on `options.threads` threads with at most four
/// samples per thread in flight; samples are written in manifest order. A
/// sample that fails is skipped and reported (or, with `strict`, fails the
/// run). Nothing appears at `dest` unless the whole pack succeeds: a file
/// is renamed into place; a directory's index (or a part's record) is
/// written last.
pub fn pack(
    samples: &dyn SampleSource,
    dest: &Path,
    options: &PackOptions,
    control: &Control,
) -> Result<PackReport, Error> {
    pack_with(samples, dest, options, control, None)
}

/// [`pack`] into the directory `dest` (sharded packs only), each closed
/// shard handed to `upload` and removed from `dest`, the index (or part
/// record) handed over last: how a pack reaches object storage.
pub fn pack_with(
    samples: &dyn SampleSource,
    dest: &Path,
    options: &PackOptions,
    control: &Control,
    upload: Option<&dyn Upload>,
) -> Result<PackReport, Error> {
    if upload.is_some() && !options.sharded() {
        return Err(Error::InvalidArgument(
            "a pack to object storage writes shards: give --shard-size or --samples-per-shard"
                .into(),
        ));
    }
    validate(options)?;
    preflight(samples, dest, options)?;
    let threads = stokehold_core::resolve_threads(options.threads, "threads")
        .map_err(Error::InvalidArgument)?;
    let start = Instant::now();
    let n = samples.len();
    let (first, end) = match options.part {
        Some((i, parts)) => (i * n / parts, (i + 1) * n / parts),
        None => (0, n),
    };
    // `fit`: each sample has its own shape (0 × 0 in the file's config).
    let (h, w) = options.fixed_size().unwrap_or((0, 0));
    let c = u32::from(options.channels);
    let storage = match options.storage {
        StorageOption::Raw => Storage::Raw,
        StorageOption::Jpeg(_) => Storage::Encoded {
            codec: StorageKind::Jpeg.to_string(),
        },
        StorageOption::Png => Storage::Encoded {
            codec: StorageKind::Png.to_string(),
        },
    };
    let config = WriterConfig {
        image_shape: [h as usize, w as usize, c as usize],
        storage: storage.clone(),
        capacity: end - first,
    };
    let attrs = Attrs {
        classes: samples.classes().to_vec(),
        mean: Vec::new(),
        std: Vec::new(),
        resize: options.resize.as_str().into(),
        filter: options.filter.as_str().into(),
        fill: options.fill,
        quality: match options.storage {
            StorageOption::Jpeg(q) => Some(q),
            _ => None,
        },
        source: samples
            .source()
            .map(|s| s.path.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let part_dir = options.part.map(|(i, parts)| part_dir_name(i, parts));
    let _lock;
    let mut sink: Box<dyn Sink + '_> = if options.sharded() {
        std::fs::create_dir_all(dest).map_err(|e| store_io(dest, e))?;
        _lock = DestLock::take(dest, Some(part_dir.as_deref().unwrap_or("dataset")))?;
        let (dir, prefix) = match &part_dir {
            Some(name) => {
                let dir = dest.join(name);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| store_io(&dir, e))?;
                }
                std::fs::create_dir(&dir).map_err(|e| store_io(&dir, e))?;
                (dir, format!("{name}/"))
            }
            None => {
                clear_dataset_dir(dest)?;
                (dest.to_path_buf(), String::new())
            }
        };
        let limits = options.shards.unwrap_or_default();
        let sample_bytes = (h * w * c) as usize;
        let entries = ShardSpill::new(&dir, c as usize, samples.classes().len())?;
        Box::new(ShardSink {
            dir,
            prefix,
            per_shard: ShardSink::per_shard(&limits, sample_bytes, &storage, end - first),
            limits,
            remaining: end - first,
            config,
            current: None,
            current_bytes: 0,
            attrs: attrs.clone(),
            entries,
            written: 0,
            upload,
        })
    } else {
        _lock = DestLock::take(dest, None)?;
        Box::new(FileSink {
            writer: StoreWriter::create(dest, config)?,
            dest: dest.to_path_buf(),
            force: options.force,
        })
    };

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("stokehold-pk-{i}"))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?;
    // Four samples per thread keep every core busy while the writer catches
    // up, and bound memory to a few decoded images per thread.
    let window = threads * 4;
    let mut findings = Vec::new();
    let mut written = 0usize;
    let mut class_counts = vec![0u64; samples.classes().len()];
    control.start((end - first) as u64);

    type Outcome = Result<(Sample, Packed), Finding>;
    let (tx, rx) = mpsc::channel::<(usize, std::thread::Result<Outcome>)>();
    let mut ready: BTreeMap<usize, Outcome> = BTreeMap::new();
    let (mut next_spawn, mut next_write) = (first, first);
    let outcome: Result<(), Error> = pool.in_place_scope(|scope| loop {
        while next_spawn < end && next_spawn - next_write < window && !control.is_cancelled() {
            let i = next_spawn;
            let tx = tx.clone();
            scope.spawn(move |_| {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let sample = samples.sample(i).map_err(|e| {
                        let (path, location) = match &e {
                            stokehold_core::Error::Manifest { path, line, .. } => {
                                (path.clone(), format!("line {line}"))
                            }
                            _ => (PathBuf::new(), format!("sample {i}")),
                        };
                        Finding::skip(FindingKind::InvalidAnnotation, path, e.to_string())
                            .at(location)
                    })?;
                    let packed = process(&sample, options)?;
                    Ok((sample.into_owned(), packed))
                }));
                let _ = tx.send((i, result));
            });
            next_spawn += 1;
        }
        if next_write == end {
            return Ok(());
        }
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let (i, result) = rx.recv().expect("a worker holds a sender until it reports");
        let result = result.unwrap_or_else(|panic| {
            let what = stokehold_core::panic_message(&*panic);
            let path = samples
                .sample(i)
                .map(|s| s.path.clone())
                .unwrap_or_default();
            Err(Finding::skip(
                FindingKind::NotAnImage,
                path,
                format!("internal error: {what}"),
            ))
        });
        ready.insert(i, result);
        while let Some(result) = ready.remove(&next_write) {
            match result {
                Err(finding) => {
                    if options.strict {
                        return Err(Error::Strict { finding });
                    }
                    findings.push(finding);
                }
                Ok((sample, packed)) => {
                    let sample = &sample;
                    sink.push(sample, next_write, &packed)?;
                    if options.strict {
                        if let Some(f) = packed.findings.into_iter().next() {
                            return Err(Error::Strict { finding: f });
                        }
                    } else {
                        findings.extend(packed.findings);
                    }
                    if let Some(count) = sample.label.and_then(|l| class_counts.get_mut(l as usize))
                    {
                        *count += 1;
                    }
                    written += 1;
                }
            }
            next_write += 1;
            control.advance(1);
        }
    });
    drop(tx);
    outcome?;
    if written == 0 && !(options.part.is_some() && first == end) {
        return Err(Error::Empty { findings });
    }
    let out = sink.finish(&attrs, control)?;
    let (mean, std) = out.sums.mean_std();
    let shards = out.shards.as_ref().map_or(1, |s| s.len().max(1));
    if options.sharded() {
        let spec = DatasetSpec {
            image_shape: match options.fixed_size() {
                Some(_) => [i64::from(h), i64::from(w), i64::from(c)],
                None => [-1, -1, i64::from(c)],
            },
            storage: storage.kind().into(),
            codec: match &storage {
                Storage::Encoded { codec } => Some(codec.clone()),
                Storage::Raw => None,
            },
            quality: attrs.quality,
            resize: attrs.resize.clone(),
            filter: attrs.filter.clone(),
            fill: attrs.fill,
            classes: attrs.classes.clone(),
            manifest_samples: n,
            source: attrs.source.clone(),
        };
        match options.part {
            Some((i, parts)) => {
                let record = PartRecord {
                    format: stokehold_store::index::INDEX_FORMAT.into(),
                    part: i,
                    parts,
                    range: [first, end],
                    spec,
                    skipped: (end - first) - written,
                    shards: out.shards.expect("a sharded pack's sink"),
                };
                let name = format!("{}/{PART_FILE}", part_dir_name(i, parts));
                write_json_atomic(&dest.join(&name), &record)?;
                if let Some(upload) = upload {
                    upload.upload(&dest.join(&name), &name)?;
                }
            }
            None => {
                let shards = out.shards.expect("a sharded pack's sink");
                let index = shards.into_index(spec).save(dest)?;
                if let Some(upload) = upload {
                    upload.upload(&index, stokehold_store::INDEX_FILE)?;
                }
            }
        }
    }
    Ok(PackReport {
        path: dest.to_path_buf(),
        shards,
        num_samples: written,
        num_skipped: (end - first) - written,
        findings,
        mean,
        std,
        class_counts,
        seconds: start.elapsed().as_secs_f64(),
        file_bytes: out.file_bytes,
        threads,
    })
}

fn store_io(path: &Path, error: std::io::Error) -> Error {
    Error::Store(stokehold_store::Error::Io {
        path: path.to_path_buf(),
        error,
    })
}
