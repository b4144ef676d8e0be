//! Integration tests of `stokehold_pack::pack` on images written by the test.

use std::path::Path;

use stokehold_core::{BoxAnn, Control, ImageFormat, Manifest, Sample};
use stokehold_pack::{pack, Error, PackOptions, StorageOption};
use stokehold_store::StoreReader;

/// A `w × h` PNG whose pixel (x, y) is (x, y, 7), and its sample.
fn image(dir: &Path, name: &str, w: u32, h: u32, label: u32) -> Sample {
    let path = dir.join(name);
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
    img.save(&path).unwrap();
    Sample {
        path,
        label: Some(label),
        width: w,
        height: h,
        format: ImageFormat::Png,
        boxes: vec![],
    }
}

fn options(size: (u32, u32)) -> PackOptions {
    PackOptions {
        size,
        threads: Some(2),
        ..PackOptions::default()
    }
}

#[test]
fn identity_size_keeps_pixels_and_boxes_exactly() {
    let d = tempfile::tempdir().unwrap();
    let mut m = Manifest::new(vec!["a".into(), "b".into()]);
    m.samples.push(image(d.path(), "0.png", 16, 8, 1));
    m.samples[0]
        .boxes
        .push(BoxAnn::new([1.0, 2.0, 5.0, 6.0], 0));
    m.samples.push(image(d.path(), "1.png", 16, 8, 0));
    let out = d.path().join("o.h5");
    let report = pack(&m, &out, &options((8, 16)), &Control::new()).unwrap();
    assert_eq!((report.num_samples, report.num_skipped), (2, 0));
    assert_eq!(report.class_counts, [1, 1]);
    let r = StoreReader::open(&out).unwrap();
    let mut px = vec![0; r.sample_bytes()];
    r.read_raw(0, &mut px).unwrap();
    assert_eq!(&px[..6], &[0, 0, 7, 1, 0, 7]);
    assert_eq!(r.boxes(0).0, &[[1.0, 2.0, 5.0, 6.0]]);
    assert_eq!(r.labels(), &[1, 0]);
    // mean of x over 0..16 is 7.5, of y over 0..8 is 3.5, the blue channel is 7.
    assert_eq!(report.mean, [7.5, 3.5, 7.0]);
    assert_eq!(r.info().attrs.mean, report.mean);
}

#[test]
fn skipped_samples_are_compacted_out_and_reported() {
    let d = tempfile::tempdir().unwrap();
    let mut m = Manifest::new(vec!["a".into()]);
    for i in 0..6 {
        m.samples
            .push(image(d.path(), &format!("{i}.png"), 10, 10, 0));
    }
    std::fs::write(&m.samples[1].path, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::remove_file(&m.samples[4].path).unwrap();
    let out = d.path().join("o.h5");
    let report = pack(&m, &out, &options((4, 4)), &Control::new()).unwrap();
    assert_eq!((report.num_samples, report.num_skipped), (4, 2));
    let kinds: Vec<_> = report.findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["not_an_image", "missing_file"]);
    let r = StoreReader::open(&out).unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(
        r.source_path(3).unwrap(),
        m.samples[5].path.to_string_lossy()
    );
    let leftovers: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".stokehold-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn strict_exists_empty_and_cancelled_write_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut m = Manifest::new(vec!["a".into()]);
    m.samples.push(image(d.path(), "0.png", 10, 10, 0));
    m.samples.push(image(d.path(), "1.png", 10, 10, 0));
    std::fs::write(&m.samples[1].path, b"junk").unwrap();
    let out = d.path().join("o.h5");
    let strict = PackOptions {
        strict: true,
        ..options((4, 4))
    };
    assert!(matches!(
        pack(&m, &out, &strict, &Control::new()),
        Err(Error::Strict { .. })
    ));
    assert!(!out.exists());

    let control = Control::new();
    control.cancel();
    assert!(matches!(
        pack(&m, &out, &options((4, 4)), &control),
        Err(Error::Cancelled)
    ));
    assert!(!out.exists());

    let mut bad = Manifest::new(vec!["a".into()]);
    bad.samples.push(m.samples[1].clone());
    assert!(matches!(
        pack(&bad, &out, &options((4, 4)), &Control::new()),
        Err(Error::Empty { .. })
    ));

    std::fs::write(&out, b"keep me").unwrap();
    assert!(matches!(
        pack(&m, &out, &options((4, 4)), &Control::new()),
        Err(Error::Exists { .. })
    ));
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let leftovers = std::fs::read_dir(d.path()).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".stokehold-")
    });
    assert_eq!(leftovers.count(), 0);
}

#[test]
fn encoded_png_round_trips_exactly() {
    let d = tempfile::tempdir().unwrap();
    let mut m = Manifest::new(vec!["a".into()]);
    m.samples.push(image(d.path(), "0.png", 12, 6, 0));
    let out = d.path().join("o.h5");
    let opts = PackOptions {
        storage: StorageOption::Png,
        ..options((6, 12))
    };
    pack(&m, &out, &opts, &Control::new()).unwrap();
    let r = StoreReader::open(&out).unwrap();
    let bytes = r.read_encoded(0).unwrap();
    let back = image::load_from_memory(&bytes).unwrap().into_rgb8();
    let original = image::open(&m.samples[0].path).unwrap().into_rgb8();
    assert_eq!(back, original);
}
