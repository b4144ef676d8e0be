//! Range planning, and a packed dataset read back from an in-memory object store.

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use stokehold_core::{Control, ImageFormat, Manifest, Sample};
use stokehold_pack::{pack, PackOptions, ShardOptions, StorageOption};

use super::*;

fn r(object: &str, a: u64, b: u64) -> (&str, Range<u64>) {
    (object, a..b)
}

#[test]
fn neighbours_are_one_request_and_limits_hold() {
    let requests = [
        r("s1", 30, 40),
        r("s0", 10, 20),
        r("s0", 0, 10),
        r("s1", 0, 10),
        r("s0", 25, 30),
        r("s1", 10, 30),
        r("s0", 20, 25),
    ];
    let runs = plan(&requests, 0, u64::MAX);
    // s0: 0..30 in one, s1: 0..40 in one.
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].range.clone(), runs[1].range.clone()),
        (0..30, 0..40)
    );
    let mut all: Vec<usize> = runs.iter().flat_map(|r| r.members.clone()).collect();
    all.sort();
    assert_eq!(all, (0..requests.len()).collect::<Vec<_>>());
    // A gap splits unless max_gap covers it.
    let gapped = [r("s", 0, 10), r("s", 15, 20), r("s", 100, 110)];
    assert_eq!(plan(&gapped, 0, u64::MAX).len(), 3);
    let runs = plan(&gapped, 5, u64::MAX);
    assert_eq!(
        runs.iter().map(|r| r.range.clone()).collect::<Vec<_>>(),
        [0..20, 100..110]
    );
    // No run longer than max_run, unless one range is longer by itself.
    let many: Vec<_> = (0..10).map(|i| r("s", i * 10, i * 10 + 10)).collect();
    let runs = plan(&many, 0, 35);
    assert!(
        runs.iter().all(|r| r.range.end - r.range.start <= 35),
        "{runs:?}"
    );
    assert_eq!(runs.len(), 4);
    assert_eq!(plan(&[r("s", 0, 100)], 0, 10)[0].range, 0..100);
    // The same range twice, and overlaps: one run, both served.
    let runs = plan(&[r("s", 5, 10), r("s", 5, 10), r("s", 0, 7)], 0, u64::MAX);
    assert_eq!(
        (runs.len(), runs[0].range.clone(), runs[0].members.len()),
        (1, 0..10, 3)
    );
    assert!(plan(&[], 0, 10).is_empty());
}

fn image(dir: &std::path::Path, i: usize) -> Sample {
    let path = dir.join(format!("{i}.png"));
    let img = image::RgbImage::from_fn(8 + (i % 3) as u32, 8, |x, y| {
        image::Rgb([x as u8 * 9, y as u8 * 13, i as u8])
    });
    img.save(&path).unwrap();
    Sample {
        path,
        label: Some((i % 2) as u32),
        width: 8 + (i % 3) as u32,
        height: 8,
        format: ImageFormat::Png,
        boxes: vec![],
    }
}

/// 40 images packed into shards of 10 (`storage`), the local copy, and an
/// in-memory bucket holding it under `ds/`.
fn packed(storage: StorageOption) -> (tempfile::TempDir, PackedDataset, Arc<InMemory>) {
    let d = tempfile::tempdir().unwrap();
    let mut m = Manifest::new(vec!["a".into(), "b".into()]);
    for i in 0..40 {
        m.samples.push(image(d.path(), i));
    }
    let out = d.path().join("ds");
    let options = PackOptions {
        size: (8, 8),
        threads: Some(2),
        storage,
        shards: Some(ShardOptions {
            samples: Some(10),
            ..ShardOptions::default()
        }),
        ..PackOptions::default()
    };
    pack(&m, &out, &options, &Control::new()).unwrap();
    let store = Arc::new(InMemory::new());
    for entry in std::fs::read_dir(&out).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        runtime()
            .block_on(store.put(
                &ObjectPath::from(format!("ds/{name}")),
                PutPayload::from(bytes),
            ))
            .unwrap();
    }
    let local = PackedDataset::open(&out, u64::MAX).unwrap();
    (d, local, store)
}

fn remote(store: &Arc<InMemory>, options: RemoteOptions) -> Remote {
    let store: Arc<dyn ObjectStore> = store.clone();
    Remote::with_store(
        store,
        S3Location::parse("s3://bucket/ds/").unwrap(),
        options,
    )
    .unwrap()
}

#[test]
fn a_remote_dataset_reads_the_same_bytes_with_one_request_per_run() {
    for storage in [StorageOption::Raw, StorageOption::Png] {
        let (_d, local, store) = packed(storage);
        let client = remote(&store, RemoteOptions::default());
        let counters = Arc::clone(&client.counters);
        let ds = client.open(u64::MAX, None).unwrap();
        assert!(ds.is_remote());
        assert_eq!((ds.len(), ds.num_shards()), (40, 4));
        assert_eq!(ds.labels(), local.labels());
        assert_eq!(ds.path().to_string_lossy(), "s3://bucket/ds/dataset.json");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..40 {
            ds.read_bytes(i, &mut a).unwrap();
            local.read_bytes(i, &mut b).unwrap();
            assert_eq!(a, b, "sample {i}");
        }
        // A batch: 3..7 of shard 0 (one run), 12 and 14 (two), 35 (one).
        let before = counters.requests.load(Ordering::Relaxed);
        let bytes_before = counters.bytes.load(Ordering::Relaxed);
        let batch = [14, 5, 35, 3, 12, 6, 4];
        ds.prefetch(&batch);
        assert_eq!(counters.requests.load(Ordering::Relaxed) - before, 4);
        let mut wanted = 0;
        for &i in &batch {
            ds.read_bytes(i, &mut a).unwrap();
            local.read_bytes(i, &mut b).unwrap();
            assert_eq!(a, b, "sample {i}");
            wanted += b.len() as u64;
        }
        // Read from what was prefetched: nothing more fetched, no byte twice.
        assert_eq!(counters.requests.load(Ordering::Relaxed) - before, 4);
        assert_eq!(
            counters.bytes.load(Ordering::Relaxed) - bytes_before,
            wanted
        );
    }
}

/// The error of opening `client`'s dataset, as text.
fn open_error(client: Remote) -> String {
    client
        .open(u64::MAX, None)
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn missing_objects_are_clear_errors() {
    let (_d, _local, store) = packed(StorageOption::Raw);
    let ds = remote(&store, RemoteOptions::default())
        .open(u64::MAX, None)
        .unwrap();
    runtime()
        .block_on(store.delete(&ObjectPath::from("ds/shard-00002.h5")))
        .unwrap();
    // Found at the open.
    let err = open_error(remote(&store, RemoteOptions::default()));
    assert!(
        err.contains("s3://bucket/ds/shard-00002.h5") && err.contains("missing"),
        "{err}"
    );
    // Gone after the open: the sample's read names it.
    let mut out = Vec::new();
    ds.read_bytes(5, &mut out).unwrap();
    let err = ds.read_bytes(25, &mut out).unwrap_err().to_string();
    assert!(
        err.contains("s3://bucket/ds/shard-00002.h5")
            && err.contains("sample 25")
            && err.contains("404"),
        "{err}"
    );
    // Prefetched together: the error is the sample's, the others are served.
    ds.prefetch(&[5, 25]);
    ds.read_bytes(5, &mut out).unwrap();
    assert!(ds.read_bytes(25, &mut out).is_err());
    let err = open_error(
        Remote::with_store(
            store as Arc<dyn ObjectStore>,
            S3Location::parse("s3://bucket/nothing/").unwrap(),
            RemoteOptions::default(),
        )
        .unwrap(),
    );
    assert!(
        err.contains("s3://bucket/nothing/dataset.json") && err.contains("no packed dataset"),
        "{err}"
    );
}

#[test]
fn the_cache_serves_later_epochs_and_keeps_to_its_limit() {
    let (_d, local, store) = packed(StorageOption::Raw);
    let cache = tempfile::tempdir().unwrap();
    let options = RemoteOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        cache_block: 4096,
        ..RemoteOptions::default()
    };
    let client = remote(&store, options.clone());
    let counters = Arc::clone(&client.counters);
    let ds = client.open(u64::MAX, None).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let all: Vec<usize> = (0..40).rev().collect();
    ds.prefetch(&all);
    let first = counters.requests.load(Ordering::Relaxed);
    for epoch in 0..2 {
        ds.prefetch(&all);
        for &i in &all {
            ds.read_bytes(i, &mut a).unwrap();
            local.read_bytes(i, &mut b).unwrap();
            assert_eq!(a, b, "epoch {epoch} sample {i}");
        }
    }
    assert_eq!(
        counters.requests.load(Ordering::Relaxed),
        first,
        "later epochs from the cache"
    );
    assert!(counters.cache_hits.load(Ordering::Relaxed) > 0);
    // Another process (another client) shares it.
    let other = remote(&store, options);
    let other_counters = Arc::clone(&other.counters);
    let ds2 = other.open(u64::MAX, None).unwrap();
    ds2.read_bytes(7, &mut a).unwrap();
    assert_eq!(
        other_counters.requests.load(Ordering::Relaxed),
        1,
        "only the index"
    );
    // A limit: the oldest blocks go.
    let small = tempfile::tempdir().unwrap();
    let client = remote(
        &store,
        RemoteOptions {
            cache_dir: Some(small.path().to_path_buf()),
            cache_block: 4096,
            cache_limit: 10_000,
            ..RemoteOptions::default()
        },
    );
    let ds = client.open(u64::MAX, None).unwrap();
    for &i in &all {
        ds.read_bytes(i, &mut a).unwrap();
        local.read_bytes(i, &mut b).unwrap();
        assert_eq!(a, b);
    }
    let kept: u64 = walk(small.path());
    assert!(kept > 0 && kept <= 10_000, "{kept}");
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

#[test]
fn locations_and_options_are_checked() {
    let l = S3Location::parse("s3://b/a/ds/dataset.json").unwrap();
    assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("b", "a/ds"));
    assert_eq!(l.url("shard-00000.h5"), "s3://b/a/ds/shard-00000.h5");
    assert_eq!(S3Location::parse("s3://b").unwrap().key("x"), "x");
    for bad in ["s3:///x", "http://b/x", "s3://b/../x"] {
        assert!(S3Location::parse(bad).is_err(), "{bad}");
    }
    let mut o = RemoteOptions::default();
    o.set("max_in_flight", "4").unwrap();
    o.set("endpoint_url", "http://127.0.0.1:9").unwrap();
    assert_eq!((o.max_in_flight, o.storage.len()), (4, 1));
    let err = o.set("retries", "many").unwrap_err().to_string();
    assert!(
        err.contains("retries") && err.contains("whole number"),
        "{err}"
    );
    o.set("no_such_setting", "1").unwrap();
    let err = o.build_store(&l).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("no_such_setting"), "{err}");
    let text = "[default]\nregion = x\n[profile p]\nregion = eu-west-3\nendpoint_url=http://h:1\n";
    assert_eq!(
        config::ini_section(text, "profile p"),
        [
            ("region".to_owned(), "eu-west-3".to_owned()),
            ("endpoint_url".to_owned(), "http://h:1".to_owned())
        ]
    );
}

#[test]
fn a_pack_into_a_bucket_uploads_shards_then_the_index_and_parts_commit() {
    let (d, local, _) = packed(StorageOption::Png);
    let mut m = Manifest::new(vec!["a".into(), "b".into()]);
    for i in 0..40 {
        m.samples.push(image(d.path(), i));
    }
    let options = PackOptions {
        size: (8, 8),
        threads: Some(2),
        storage: StorageOption::Png,
        shards: Some(ShardOptions {
            samples: Some(10),
            ..ShardOptions::default()
        }),
        ..PackOptions::default()
    };
    let store = Arc::new(InMemory::new());
    let client = remote(&store, RemoteOptions::default());
    let report = pack_into(&client, &m, &options, &Control::new()).unwrap();
    assert_eq!((report.num_samples, report.shards), (40, 4));
    assert_eq!(report.path.to_string_lossy(), "s3://bucket/ds/");
    let names: Vec<String> = client.list().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "dataset.json",
            "shard-00000.h5",
            "shard-00001.h5",
            "shard-00002.h5",
            "shard-00003.h5"
        ]
    );
    let ds = remote(&store, RemoteOptions::default())
        .open(u64::MAX, None)
        .unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..40 {
        ds.read_bytes(i, &mut a).unwrap();
        local.read_bytes(i, &mut b).unwrap();
        assert_eq!(a, b, "sample {i}");
    }
    // Again without force: refused; with force: replaced.
    let err = pack_into(&client, &m, &options, &Control::new()).unwrap_err();
    assert!(matches!(err, stokehold_pack::Error::Exists { .. }), "{err}");
    let forced = PackOptions {
        force: true,
        ..options.clone()
    };
    pack_into(&client, &m, &forced, &Control::new()).unwrap();

    // Two parts into another folder, committed there.
    let parts_client = Remote::with_store(
        store.clone() as Arc<dyn ObjectStore>,
        S3Location::parse("s3://bucket/parts/").unwrap(),
        RemoteOptions::default(),
    )
    .unwrap();
    let part = |i| PackOptions {
        part: Some((i, 2)),
        ..options.clone()
    };
    pack_into(&parts_client, &m, &part(0), &Control::new()).unwrap();
    let err = commit_into(&parts_client, u64::MAX)
        .unwrap_err()
        .to_string();
    assert!(err.contains("part-00001-of-00002 (not started)"), "{err}");
    pack_into(&parts_client, &m, &part(1), &Control::new()).unwrap();
    let index = commit_into(&parts_client, u64::MAX).unwrap();
    assert_eq!(index.num_samples, 40);
    let ds = parts_client.clone().open(u64::MAX, None).unwrap();
    for i in 0..40 {
        ds.read_bytes(i, &mut a).unwrap();
        local.read_bytes(i, &mut b).unwrap();
        assert_eq!(a, b, "sample {i}");
    }
    // A pack to object storage must be sharded.
    let one_file = PackOptions {
        shards: None,
        ..options
    };
    assert!(pack_into(&client, &m, &one_file, &Control::new()).is_err());
}
