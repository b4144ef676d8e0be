//! Integration tests of the packed-file reader's validation.

use std::path::Path;

use stokehold_store::{
    Attrs, Error, PackedSample, Storage, StoreReader, StoreWriter, WriterConfig,
};

fn write(dest: &Path, n: usize) {
    let config = WriterConfig {
        image_shape: [4, 4, 3],
        storage: Storage::Raw,
        capacity: n,
    };
    let mut w = StoreWriter::create(dest, config).unwrap();
    for i in 0..n {
        let data = vec![i as u8; 48];
        let boxes = [[0.0, 0.0, 1.0, 1.0]];
        w.push(&PackedSample {
            data: &data,
            shape: [4, 4, 3],
            label: Some(0),
            boxes: &boxes,
            box_labels: &[0],
            path: Path::new("x.png"),
            orig_size: [4, 4],
            source_index: i,
        })
        .unwrap();
    }
    let attrs = Attrs {
        classes: vec!["a".into()],
        mean: vec![0.0; 3],
        std: vec![0.0; 3],
        ..Attrs::default()
    };
    w.finish(&attrs).unwrap().0.persist(dest).unwrap();
}

#[test]
fn reads_every_sample_from_many_threads() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("s.h5");
    write(&path, 50);
    let r = StoreReader::open(&path).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let r = &r;
            s.spawn(move || {
                let mut buf = vec![0; 48];
                for i in (t..50).step_by(4) {
                    r.read_raw(i, &mut buf).unwrap();
                    assert!(buf.iter().all(|&b| b == i as u8));
                }
            });
        }
    });
    assert!(matches!(
        r.read_raw(50, &mut [0; 48]),
        Err(Error::OutOfRange { index: 50, len: 50 })
    ));
    assert_eq!(r.num_boxes(), 50);
}

#[test]
fn truncated_and_foreign_files_are_refused_with_a_reason() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("s.h5");
    write(&path, 200);
    let len = std::fs::metadata(&path).unwrap().len();
    // Half a file has lost pixels or metadata; either way opening fails
    // with an error that names the file.
    let cut = d.path().join("cut.h5");
    std::fs::write(&cut, &std::fs::read(&path).unwrap()[..(len / 2) as usize]).unwrap();
    let err = StoreReader::open(&cut).unwrap_err().to_string();
    assert!(err.contains("cut.h5"), "{err}");

    let text = d.path().join("t.h5");
    std::fs::write(&text, b"hello").unwrap();
    let err = StoreReader::open(&text).unwrap_err().to_string();
    assert!(err.contains("not an HDF5 file"), "{err}");

    let missing = StoreReader::open(&d.path().join("none.h5")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }));
}

/// Format 2 keeps encoded images (and raw images of varying shape) in one
/// contiguous array: every sample is one `pread` at an address known at
/// open, and the exact pixel sums come back.
#[test]
fn table_storage_round_trips_by_address() {
    let d = tempfile::tempdir().unwrap();
    for (storage, fixed) in [
        (
            Storage::Encoded {
                codec: "png".into(),
            },
            [8, 8, 3],
        ),
        (Storage::Raw, [0, 0, 3]),
    ] {
        let path = d.path().join(format!("{}.h5", storage.kind()));
        let config = WriterConfig {
            image_shape: fixed,
            storage: storage.clone(),
            capacity: 5,
        };
        let mut w = StoreWriter::create(&path, config).unwrap();
        let mut expected = Vec::new();
        for i in 0..5u32 {
            let (h, wd) = (i + 1, 2 * i + 1);
            let data: Vec<u8> = (0..h * wd * 3).map(|v| (v * 7 + i) as u8).collect();
            w.add_pixels(&data);
            w.push(&PackedSample {
                data: &data,
                shape: if fixed[0] == 0 { [h, wd, 3] } else { [8, 8, 3] },
                label: None,
                boxes: &[],
                box_labels: &[],
                path: Path::new("p.png"),
                orig_size: [h, wd],
                source_index: i as usize,
            })
            .unwrap();
            expected.push(data);
        }
        let attrs = Attrs {
            classes: vec!["a".into()],
            ..Attrs::default()
        };
        let (tmp, sums) = w.finish(&attrs).unwrap();
        tmp.persist(&path).unwrap();
        let r = StoreReader::open(&path).unwrap();
        assert_eq!(r.info().format_version, 2);
        assert_eq!(r.info().sums, sums);
        let mut buf = Vec::new();
        for (i, want) in expected.iter().enumerate() {
            r.read_bytes(i, &mut buf).unwrap();
            assert_eq!(&buf, want);
            if fixed[0] == 0 {
                assert_eq!(r.sample_shape(i), [i + 1, 2 * i + 1, 3]);
            }
        }
        assert_eq!(r.labels(), [-1; 5]);
    }
}

/// Regression (reliability issue, item 14): a file rewritten in place
/// while open gave new pixels with old labels.
#[test]
fn a_file_rewritten_while_open_is_detected() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("s.h5");
    let other = d.path().join("o.h5");
    write(&path, 10);
    write(&other, 12);
    let r = StoreReader::open(&path).unwrap();
    let mut buf = vec![0; 48];
    r.read_raw(3, &mut buf).unwrap();
    // What `cp other.h5 s.h5` does: same inode, new content.
    std::fs::write(&path, std::fs::read(&other).unwrap()).unwrap();
    let err = r.read_raw(3, &mut buf).unwrap_err().to_string();
    assert!(err.contains("changed after it was opened"), "{err}");
}
