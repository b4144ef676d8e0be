//! Integration tests of the loader: order, coverage, sharding, determinism,
//! resume, errors, cancellation, memory bound, hooks and collation.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stokehold_core::{BoxAnn, Control, ImageFormat, Manifest, Sample};
use stokehold_loader::{
    Augment, Batch, Dataset, DatasetOptions, Dtype, Error, Images, JitSource, Layout, Loader,
    LoaderOptions, Order, PackedSource, SampleData, Sequence, Shard, Source,
};

/// Sample `i` is an image filled with `i % 251`, label `i % 3`, and `i % 4` boxes.
struct Mem {
    n: usize,
    fail_at: Option<usize>,
    classes: Vec<String>,
}

impl Mem {
    fn new(n: usize) -> Self {
        Mem {
            n,
            fail_at: None,
            classes: vec!["a".into(), "b".into(), "c".into()],
        }
    }
}

impl Source for Mem {
    fn len(&self) -> usize {
        self.n
    }
    fn image_shape(&self) -> [usize; 3] {
        [4, 6, 3]
    }
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn stats(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        Some((vec![100.0; 3], vec![50.0; 3]))
    }
    fn load(&self, index: usize, out: &mut [u8]) -> Result<SampleData, Error> {
        if Some(index) == self.fail_at {
            return Err(Error::Sample {
                index,
                path: "mem".into(),
                reason: "planted failure".into(),
            });
        }
        out.fill((index % 251) as u8);
        let k = index % 4;
        Ok(SampleData {
            label: (index % 3) as i64,
            boxes: (0..k)
                .map(|j| [j as f32, 0.0, j as f32 + 1.0, 2.0])
                .collect(),
            box_labels: (0..k).map(|j| j as i64).collect(),
        })
    }
}

fn loader(n: usize, opts: DatasetOptions, workers: usize) -> Loader<Dataset<Mem>> {
    let ds = Dataset::new(Mem::new(n), opts).unwrap();
    Loader::new(
        Arc::new(ds),
        LoaderOptions {
            threads: workers,
            prefetch: 3,
            ..Default::default()
        },
    )
    .unwrap()
}

fn samples(batches: &[Batch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.sample_indices.clone())
        .collect()
}

#[test]
fn every_sample_once_in_order_for_1_to_8_workers() {
    let opts = DatasetOptions {
        batch_size: 7,
        seed: 5,
        ..Default::default()
    };
    let reference: Vec<Batch> = loader(100, opts.clone(), 1)
        .epoch()
        .map(Result::unwrap)
        .collect();
    for workers in 1..=8 {
        let mut l = loader(100, opts.clone(), workers);
        let batches: Vec<Batch> = l.epoch().map(Result::unwrap).collect();
        assert_eq!(
            batches.iter().map(|b| b.index).collect::<Vec<_>>(),
            (0..15).collect::<Vec<_>>()
        );
        let mut s = samples(&batches);
        assert_eq!(
            batches, reference,
            "identical batches with {workers} workers"
        );
        s.sort_unstable();
        assert_eq!(s, (0..100).collect::<Vec<_>>(), "{workers} workers");
        assert_eq!(
            batches.last().unwrap().shape,
            [2, 4, 6, 3],
            "the last batch is partial"
        );
        // The next epoch is a different permutation of the same samples.
        let next: Vec<Batch> = l.epoch().map(Result::unwrap).collect();
        assert_ne!(samples(&next), samples(&batches));
    }
}

#[test]
fn no_shuffle_is_manifest_order_and_drop_last_drops() {
    let opts = DatasetOptions {
        batch_size: 8,
        shuffle: false,
        drop_last: true,
        ..Default::default()
    };
    let mut l = loader(20, opts, 2);
    let batches: Vec<Batch> = l.epoch().map(Result::unwrap).collect();
    assert_eq!(samples(&batches), (0..16).collect::<Vec<_>>());
}

#[test]
fn completion_order_delivers_each_batch_once() {
    let ds = Dataset::new(
        Mem::new(64),
        DatasetOptions {
            batch_size: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let opts = LoaderOptions {
        threads: 4,
        prefetch: 4,
        order: Order::Completion,
        epoch: 0,
    };
    let mut l = Loader::new(Arc::new(ds), opts).unwrap();
    let mut idx: Vec<usize> = l.epoch().map(|b| b.unwrap().index).collect();
    idx.sort_unstable();
    assert_eq!(idx, (0..16).collect::<Vec<_>>());
    assert_eq!(l.state().epoch, 1);
}

#[test]
fn ranks_get_disjoint_equal_shares_covering_all() {
    for world in 1..=4 {
        let mut all = Vec::new();
        let mut lens = HashSet::new();
        for rank in 0..world {
            let opts = DatasetOptions {
                batch_size: 5,
                world_size: world,
                rank,
                seed: 9,
                ..Default::default()
            };
            let mut l = loader(23, opts, 2);
            let s = samples(&l.epoch().map(Result::unwrap).collect::<Vec<_>>());
            lens.insert(s.len());
            all.extend(s);
        }
        assert_eq!(lens.len(), 1, "equal shares for world size {world}");
        let distinct: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), 23, "world size {world} covers every sample");
        assert_eq!(
            all.len(),
            23usize.div_ceil(world) * world,
            "padding only to even out"
        );
        let opts = DatasetOptions {
            batch_size: 5,
            world_size: world,
            rank: 0,
            shard: Shard::Drop,
            ..Default::default()
        };
        assert_eq!(
            samples(
                &loader(23, opts, 1)
                    .epoch()
                    .map(Result::unwrap)
                    .collect::<Vec<_>>()
            )
            .len(),
            23 / world
        );
    }
}

#[test]
fn augmentations_are_deterministic_across_runs_and_worker_counts() {
    let augment = Augment {
        hflip: 0.5,
        random_resized_crop: Some(((0.3, 1.0), (0.75, 1.33))),
    };
    let opts = DatasetOptions {
        batch_size: 6,
        augment,
        ..Default::default()
    };
    let a: Vec<Batch> = loader(40, opts.clone(), 1)
        .epoch()
        .map(Result::unwrap)
        .collect();
    let b: Vec<Batch> = loader(40, opts.clone(), 5)
        .epoch()
        .map(Result::unwrap)
        .collect();
    assert_eq!(a, b);
    let c: Vec<Batch> = loader(40, DatasetOptions { seed: 1, ..opts }, 3)
        .epoch()
        .map(Result::unwrap)
        .collect();
    assert_ne!(a, c);
}

#[test]
fn restoring_a_state_resumes_the_exact_sequence() {
    let opts = DatasetOptions {
        batch_size: 3,
        seed: 2,
        ..Default::default()
    };
    let mut full = loader(30, opts.clone(), 2);
    let mut expected: Vec<Batch> = full.epoch().map(Result::unwrap).collect();
    expected.extend(full.epoch().map(Result::unwrap));

    let mut first = loader(30, opts.clone(), 2);
    let mut got: Vec<Batch> = first.epoch().map(Result::unwrap).collect();
    got.extend(first.epoch().take(4).map(Result::unwrap));
    let state = first.state();
    assert_eq!((state.epoch, state.next_batch), (1, 4));
    let json = serde_json::to_string(&state).unwrap();
    first.close();

    let mut second = loader(30, opts.clone(), 3);
    second
        .restore(serde_json::from_str(&json).unwrap())
        .unwrap();
    got.extend(second.epoch().map(Result::unwrap));
    assert_eq!(got, expected);

    let mut other = loader(
        30,
        DatasetOptions {
            batch_size: 4,
            ..opts
        },
        1,
    );
    assert!(matches!(
        other.restore(state),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_failing_sample_is_an_error_naming_it_and_the_epoch_goes_on() {
    let mut mem = Mem::new(20);
    mem.fail_at = Some(13);
    let ds = Dataset::new(
        mem,
        DatasetOptions {
            batch_size: 5,
            shuffle: false,
            ..Default::default()
        },
    )
    .unwrap();
    let mut l = Loader::new(
        Arc::new(ds),
        LoaderOptions {
            threads: 3,
            prefetch: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let results: Vec<Result<Batch, Error>> = l.epoch().collect();
    assert_eq!(results.len(), 4);
    assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
    let err = results[2].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("sample 13") && err.contains("planted failure"),
        "{err}"
    );
}

struct Panicky;
impl Sequence for Panicky {
    type Batch = usize;
    fn len(&self) -> usize {
        3
    }
    fn batch(&self, _: u64, index: usize) -> Result<usize, Error> {
        if index == 1 {
            panic!("boom at {index}");
        }
        Ok(index)
    }
}

#[test]
fn a_worker_panic_reaches_the_consumer_and_nothing_hangs() {
    let mut l = Loader::new(
        Arc::new(Panicky),
        LoaderOptions {
            threads: 2,
            prefetch: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let r: Vec<Result<usize, Error>> = l.epoch().collect();
    assert_eq!(r[0].as_ref().unwrap(), &0);
    assert!(
        matches!(&r[1], Err(Error::Panic { batch: 1, message, .. }) if message.contains("boom"))
    );
    assert_eq!(r[2].as_ref().unwrap(), &2);
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Counts calls and live batches; each batch takes a few milliseconds.
struct Tracked {
    calls: Arc<AtomicUsize>,
    live: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    ended: Arc<Mutex<Vec<u64>>>,
}

struct Live(Arc<AtomicUsize>);
impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Sequence for Tracked {
    type Batch = (u64, usize, Live);
    fn len(&self) -> usize {
        12
    }
    fn batch(&self, epoch: u64, index: usize) -> Result<Self::Batch, Error> {
        // Hooks of every earlier epoch ran before any batch of this one is read.
        let ended = self.ended.lock().unwrap().clone();
        if epoch > 0 && !ended.contains(&(epoch - 1)) {
            return Err(Error::User(format!(
                "epoch {epoch} read before epoch {} ended",
                epoch - 1
            )));
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(3));
        Ok((epoch, index, Live(Arc::clone(&self.live))))
    }
    fn on_epoch_end(&self, epoch: u64) {
        self.ended.lock().unwrap().push(epoch);
    }
}

/// The sequence, and its call counter, peak of live batches and ended epochs.
type Handles = (
    Arc<Tracked>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Arc<Mutex<Vec<u64>>>,
);

fn tracked() -> Handles {
    let (calls, live, peak) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let ended = Arc::new(Mutex::new(Vec::new()));
    let t = Tracked {
        calls: Arc::clone(&calls),
        live,
        peak: Arc::clone(&peak),
        ended: Arc::clone(&ended),
    };
    (Arc::new(t), calls, peak, ended)
}

#[test]
fn at_most_prefetch_batches_exist_beside_the_one_being_used() {
    let (seq, _, peak, _) = tracked();
    let mut l = Loader::new(
        seq,
        LoaderOptions {
            threads: 4,
            prefetch: 3,
            ..Default::default()
        },
    )
    .unwrap();
    for b in l.epoch() {
        let _held = b.unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        peak.load(Ordering::SeqCst) <= 3 + 1,
        "peak {} live batches",
        peak.load(Ordering::SeqCst)
    );
}

#[test]
fn dropping_an_epoch_stops_its_work_and_closing_joins_the_workers() {
    let baseline = threads();
    let (seq, calls, _, _) = tracked();
    let mut l = Loader::new(
        seq,
        LoaderOptions {
            threads: 3,
            prefetch: 3,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(threads(), baseline + 3);
    {
        let mut it = l.epoch();
        it.next().unwrap().unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    let done = calls.load(Ordering::SeqCst);
    assert!(
        done <= 1 + 3,
        "{done} batches built after the consumer left after one"
    );
    assert_eq!(l.state().next_batch, 1);
    l.close();
    assert_eq!(threads(), baseline, "worker threads joined");
}

#[test]
fn epoch_end_hooks_run_between_epochs_in_the_generator_too() {
    let (seq, _, _, ended) = tracked();
    let l = Loader::new(
        seq,
        LoaderOptions {
            threads: 3,
            prefetch: 6,
            ..Default::default()
        },
    )
    .unwrap();
    let generator = Arc::new(l.generator());
    let seen = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..12 {
                    let (e, i, _) = generator.next_batch().unwrap();
                    seen.lock().unwrap().push((e, i));
                }
            });
        }
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort_unstable();
    let expected: Vec<(u64, usize)> = (0..3).flat_map(|e| (0..12).map(move |i| (e, i))).collect();
    assert_eq!(seen, expected, "three epochs, each batch once");
    assert_eq!(*ended.lock().unwrap(), [0, 1, 2]);
    assert_eq!(generator.state().unwrap().epoch, 3);
}

#[test]
fn try_next_batch_takes_only_finished_batches_and_keeps_the_sequence() {
    let (seq, _, _, ended) = tracked();
    let l = Loader::new(
        seq,
        LoaderOptions {
            threads: 2,
            prefetch: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let generator = l.generator();
    // Nothing is made before the first call; each batch takes 3 ms.
    assert!(generator.try_next_batch().is_none(), "not made yet");
    let mut got = Vec::new();
    let mut misses = 0;
    while got.len() < 24 {
        let batch = match generator.try_next_batch() {
            Some(b) => b.unwrap(),
            None => {
                misses += 1;
                if misses % 2 == 0 {
                    generator.next_batch().unwrap()
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            }
        };
        got.push((batch.0, batch.1));
    }
    let expected: Vec<(u64, usize)> = (0..2).flat_map(|e| (0..12).map(move |i| (e, i))).collect();
    assert_eq!(got, expected, "the same order as next_batch alone");
    assert!(misses > 0);
    assert_eq!(*ended.lock().unwrap(), [0, 1]);
    // Within an epoch, after a pause, the read-ahead is done: taken without waiting.
    assert_eq!(generator.next_batch().unwrap().1, 0);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(generator.try_next_batch().map(|b| b.unwrap().1), Some(1));
}

#[test]
fn boxes_collate_padded_and_one_hot_and_layouts() {
    let opts = DatasetOptions {
        batch_size: 4,
        shuffle: false,
        one_hot: true,
        ..Default::default()
    };
    let batch = loader(8, opts, 1).epoch().next().unwrap().unwrap();
    assert_eq!(batch.max_boxes, 3);
    assert_eq!(batch.box_counts, [0, 1, 2, 3]);
    assert_eq!(
        &batch.boxes[..4],
        &[-1.0; 4],
        "sample 0 has no box: padding"
    );
    assert_eq!(
        &batch.boxes[12..16],
        &[0.0, 0.0, 1.0, 2.0],
        "sample 1, box 0"
    );
    assert_eq!(&batch.box_labels[3..6], &[0, -1, -1]);
    assert_eq!(
        batch.one_hot.as_deref().unwrap()[..6],
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    );
    match &batch.images {
        Images::F32(px) => assert!(
            (px[72] - (1.0 - 100.0) / 50.0).abs() < 1e-6,
            "sample 1 normalized"
        ),
        Images::U8(_) => panic!("float32 by default"),
    }
    let fixed = DatasetOptions {
        batch_size: 4,
        shuffle: false,
        max_boxes: Some(2),
        ..Default::default()
    };
    let b = loader(8, fixed, 1).epoch().next().unwrap().unwrap();
    assert_eq!((b.max_boxes, b.box_counts.clone()), (2, vec![0, 1, 2, 2]));
    let u8chw = DatasetOptions {
        batch_size: 2,
        shuffle: false,
        dtype: Dtype::U8,
        layout: Layout::Nchw,
        ..Default::default()
    };
    let b = loader(2, u8chw, 1).epoch().next().unwrap().unwrap();
    assert_eq!(b.shape, [2, 3, 4, 6]);
    assert!(matches!(&b.images, Images::U8(px) if px[72..].iter().all(|&v| v == 1)));
}

fn png(dir: &std::path::Path, i: usize) -> Sample {
    let path = dir.join(format!("{i}.png"));
    image::RgbImage::from_fn(40 + i as u32, 30, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 7) as u8, (i * 20) as u8])
    })
    .save(&path)
    .unwrap();
    Sample {
        path,
        label: Some((i % 2) as u32),
        width: 40 + i as u32,
        height: 30,
        format: ImageFormat::Png,
        boxes: vec![BoxAnn::new([2.0, 3.0, 20.0, 25.0], 1)],
    }
}

#[test]
fn packed_and_just_in_time_sources_give_the_same_batches() {
    let d = tempfile::tempdir().unwrap();
    let mut m = Manifest::new(vec!["x".into(), "y".into()]);
    m.samples = (0..9).map(|i| png(d.path(), i)).collect();
    let pack_opts = stokehold_pack::PackOptions {
        size: (24, 32),
        threads: Some(2),
        ..Default::default()
    };
    let path = d.path().join("p.h5");
    let report = stokehold_pack::pack(&m, &path, &pack_opts, &Control::new()).unwrap();
    let opts = DatasetOptions {
        batch_size: 4,
        seed: 3,
        ..Default::default()
    };
    let packed = Dataset::new(PackedSource::open(&path).unwrap(), opts.clone()).unwrap();
    let stats = Some((report.mean.clone(), report.std.clone()));
    let jit = Dataset::new(JitSource::new(m, pack_opts.prepare(), stats), opts).unwrap();
    let lo = || LoaderOptions {
        threads: 2,
        prefetch: 2,
        ..Default::default()
    };
    let a: Vec<Batch> = Loader::new(Arc::new(packed), lo())
        .unwrap()
        .epoch()
        .map(Result::unwrap)
        .collect();
    let b: Vec<Batch> = Loader::new(Arc::new(jit), lo())
        .unwrap()
        .epoch()
        .map(Result::unwrap)
        .collect();
    assert_eq!(a, b);
    assert_eq!(samples(&a).len(), 9);
    assert_eq!(a[0].max_boxes, 1);
}

/// Regression (reliability issue, item 22): one bad sample failed its whole
/// batch with no way to go on. With `OnError::Skip` it is replaced by the
/// next sample of the epoch's order, recorded, and the batch keeps its size.
#[test]
fn on_error_skip_replaces_a_bad_sample_and_records_it() {
    let opts = DatasetOptions {
        batch_size: 4,
        shuffle: false,
        on_error: stokehold_loader::OnError::Skip,
        ..Default::default()
    };
    let mut mem = Mem::new(10);
    mem.fail_at = Some(5);
    let ds = Arc::new(Dataset::new(mem, opts).unwrap());
    let mut l = Loader::new(
        Arc::clone(&ds),
        LoaderOptions {
            threads: 2,
            prefetch: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let batches: Vec<Batch> = l.epoch().map(Result::unwrap).collect();
    assert_eq!(
        batches.iter().map(|b| b.shape[0]).collect::<Vec<_>>(),
        [4, 4, 2],
        "batch shapes and counts unchanged"
    );
    assert_eq!(samples(&batches), [0, 1, 2, 3, 4, 6, 6, 7, 8, 9]);
    assert_eq!(
        batches[1].labels[1], 0,
        "the replacement's own label (6 % 3)"
    );
    let (skipped, total) = ds.skipped();
    assert_eq!(total, 1);
    assert_eq!((skipped[0].epoch, skipped[0].index), (0, 5));
    assert!(skipped[0].reason.contains("planted failure"));
}

/// Regression (items 12, 21): a zero, negative or NaN std (the file's or
/// the user's), bad augmentation settings and impossible batch sizes are
/// refused at once, naming the setting; a zero std used to become 1.
#[test]
fn bad_settings_are_refused_naming_them() {
    let err = |opts: DatasetOptions| Dataset::new(Mem::new(4), opts).unwrap_err().to_string();
    let e = err(DatasetOptions {
        std: Some(vec![1.0, 0.0, 1.0]),
        ..Default::default()
    });
    assert!(e.contains("std= of channel 1 is 0"), "{e}");
    let e = err(DatasetOptions {
        mean: Some(vec![f64::NAN, 0.0, 1.0]),
        ..Default::default()
    });
    assert!(e.contains("mean= of channel 0 is NaN"), "{e}");
    for hflip in [1.5, -0.1, f64::NAN] {
        let e = err(DatasetOptions {
            augment: Augment {
                hflip,
                random_resized_crop: None,
            },
            ..Default::default()
        });
        assert!(e.contains("hflip"), "{e}");
    }
    let e = err(DatasetOptions {
        augment: Augment {
            hflip: 0.0,
            random_resized_crop: Some(((0.9, 0.1), (0.75, 1.33))),
        },
        ..Default::default()
    });
    assert!(e.contains("scale (0.9, 0.1)"), "{e}");
    let ds = Dataset::new(Mem::new(4), DatasetOptions::default()).unwrap();
    let e = stokehold_loader::check_memory(ds.batch_bytes(), 1 << 40)
        .unwrap_err()
        .to_string();
    assert!(e.contains("prefetch") && e.contains("batch_size"), "{e}");
    assert!(stokehold_loader::check_memory(ds.batch_bytes(), 4).is_ok());
}

/// Regression (item 4): a consumer waiting for a slow batch can stop
/// waiting (Ctrl-C) at once, and the batch is not lost: the next call
/// gets it.
#[test]
fn a_waiting_consumer_stops_without_losing_the_batch() {
    struct Slow;
    impl Sequence for Slow {
        type Batch = usize;
        fn len(&self) -> usize {
            3
        }
        fn batch(&self, _: u64, index: usize) -> Result<usize, Error> {
            std::thread::sleep(Duration::from_millis(300));
            Ok(index)
        }
    }
    let l = Loader::new(
        Arc::new(Slow),
        LoaderOptions {
            threads: 1,
            prefetch: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let g = l.generator();
    let started = std::time::Instant::now();
    let stop = || started.elapsed() > Duration::from_millis(20);
    let first = g.next_batch_until(&stop);
    assert!(first.is_none(), "stopped before the slow batch was made");
    assert!(started.elapsed() < Duration::from_millis(250));
    assert_eq!(g.state().unwrap().next_batch, 0, "nothing consumed");
    assert_eq!(g.next_batch().unwrap(), 0, "the same batch, next call");
    g.close();
    assert!(matches!(g.next_batch(), Err(Error::Closed)));
}

/// Three batches an epoch; the last batch of epoch 0 waits (at most 5 s)
/// for the first of epoch 1 to have started, and says whether it did.
struct Overlap {
    started: Arc<(Mutex<bool>, std::sync::Condvar)>,
    independent: bool,
}

impl Sequence for Overlap {
    type Batch = (u64, usize, bool);
    fn len(&self) -> usize {
        3
    }
    fn batch(&self, epoch: u64, index: usize) -> Result<Self::Batch, Error> {
        let (lock, cv) = &*self.started;
        if (epoch, index) == (1, 0) {
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        let mut overlapped = true;
        if (epoch, index) == (0, 2) {
            let guard = lock.lock().unwrap();
            let (guard, _) = cv
                .wait_timeout_while(guard, Duration::from_secs(5), |s| !*s)
                .unwrap();
            overlapped = *guard;
        }
        Ok((epoch, index, overlapped))
    }
    fn independent_epochs(&self) -> bool {
        self.independent
    }
}

/// Regression (phone-photo benchmark): with few batches an epoch, workers
/// sat idle at every epoch end, since the next epoch was read only once
/// the last batch was delivered (24 photos in batches of 8 scaled 1.5×
/// from 1 to 2 threads). A sequence with independent epochs now reads the
/// next epoch ahead within the same `prefetch` budget; the order delivered
/// is unchanged.
#[test]
fn the_generator_reads_the_next_epoch_ahead_when_epochs_are_independent() {
    let run = |independent: bool| {
        let seq = Overlap {
            started: Arc::new((Mutex::new(false), std::sync::Condvar::new())),
            independent,
        };
        let l = Loader::new(
            Arc::new(seq),
            LoaderOptions {
                threads: 2,
                prefetch: 4,
                ..Default::default()
            },
        )
        .unwrap();
        let generator = l.generator();
        (0..9)
            .map(|_| generator.next_batch().unwrap())
            .collect::<Vec<_>>()
    };
    let got = run(true);
    let order: Vec<(u64, usize)> = got.iter().map(|&(e, i, _)| (e, i)).collect();
    let expected: Vec<(u64, usize)> = (0..3).flat_map(|e| (0..3).map(move |i| (e, i))).collect();
    assert_eq!(order, expected);
    assert!(
        got[2].2,
        "epoch 1 started while epoch 0's last batch was being made"
    );
    // A sequence whose hook must run first is not read ahead.
    assert!(!run(false)[2].2);
}

/// Counts the batches it makes; each takes 100 ms.
struct Counting {
    made: Arc<AtomicUsize>,
}

impl Sequence for Counting {
    type Batch = usize;
    fn len(&self) -> usize {
        8
    }
    fn batch(&self, _: u64, index: usize) -> Result<usize, Error> {
        std::thread::sleep(Duration::from_millis(100));
        self.made.fetch_add(1, Ordering::SeqCst);
        Ok(index)
    }
    fn independent_epochs(&self) -> bool {
        true
    }
}

/// Regression: dropping a generator (a Dataset collected without
/// `close()`) joined the workers before cancelling the queued batches, so
/// the dropping thread waited while up to `prefetch` batches nobody would
/// take were made.
#[test]
fn dropping_a_generator_does_not_make_the_queued_batches() {
    let made = Arc::new(AtomicUsize::new(0));
    let l = Loader::new(
        Arc::new(Counting {
            made: Arc::clone(&made),
        }),
        LoaderOptions {
            threads: 1,
            prefetch: 6,
            ..Default::default()
        },
    )
    .unwrap();
    let g = l.generator();
    assert_eq!(g.next_batch().unwrap(), 0);
    drop(g);
    // Batch 0, and at most the one batch the worker had started.
    let n = made.load(Ordering::SeqCst);
    assert!(
        n <= 2,
        "{n} batches made; the queued ones were not cancelled"
    );
}
