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
            label: Some(0),
            boxes: &boxes,
            box_labels: &[0],
            path: "x.png",
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
    w.finish(&attrs).unwrap().persist(dest).unwrap();
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
