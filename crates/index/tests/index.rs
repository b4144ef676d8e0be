//! Integration tests of `stokehold_index::index` on every source format,
//! every finding kind, and determinism. Fixtures are written by the tests:
//! image files carry just a valid header, which is all indexing reads.

use std::fs;
use std::path::{Path, PathBuf};

use stokehold_core::{Control, FindingKind, ImageFormat, Manifest, SourceFormat};
use stokehold_index::{detect_format, index, Error, IndexOptions};

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    b
}

/// SOI, an APP0 segment, then a baseline SOF0 with the size.
fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    b.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    b.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
    b
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn run(source: &Path) -> Manifest {
    index(source, &IndexOptions::default(), &Control::new()).unwrap()
}

fn kinds(m: &Manifest) -> Vec<FindingKind> {
    m.findings.iter().map(|f| f.kind).collect()
}

fn names(m: &Manifest) -> Vec<String> {
    m.samples
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn folder_tree_sorted_nested_hidden_and_stray_files() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(&r.join("zebra/b.png"), &png(10, 20));
    write(&r.join("zebra/a.jpg"), &jpeg(30, 40));
    write(&r.join("ant/deep/er/c.png"), &png(5, 6));
    write(&r.join("ant/.hidden.png"), &png(5, 6));
    write(&r.join(".cache/x.png"), &png(5, 6));
    fs::create_dir_all(r.join("empty_class")).unwrap();
    write(&r.join("README.txt"), b"not in a class");
    let m = run(r);
    assert_eq!(m.classes, ["ant", "empty_class", "zebra"]);
    assert_eq!(names(&m), ["c.png", "a.jpg", "b.png"]);
    assert_eq!(
        m.samples.iter().map(|s| s.label).collect::<Vec<_>>(),
        [Some(0), Some(2), Some(2)]
    );
    let a = &m.samples[1];
    assert_eq!((a.width, a.height, a.format), (30, 40, ImageFormat::Jpeg));
    assert!(a.path.is_absolute());
    assert_eq!(kinds(&m), [FindingKind::UnknownClass]);
    assert!(m.findings[0].path.ends_with("README.txt"));
    assert_eq!(m.source.as_ref().unwrap().format, SourceFormat::Folder);
}

#[cfg(unix)]
#[test]
fn folder_symlinks_are_followed_and_loops_reported() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("root");
    write(&r.join("cat/1.png"), &png(4, 4));
    write(&d.path().join("outside/2.png"), &png(4, 4));
    std::os::unix::fs::symlink(d.path().join("outside"), r.join("cat/linked")).unwrap();
    std::os::unix::fs::symlink(&r, r.join("cat/loop")).unwrap();
    let m = run(&r);
    assert_eq!(names(&m), ["1.png", "2.png"]);
    assert_eq!(kinds(&m), [FindingKind::SymlinkLoop]);
}

#[test]
fn csv_quotes_bom_crlf_merge_and_relative_and_absolute_paths() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(&r.join("img/a, b.png"), &png(100, 50));
    write(&r.join("img/c.png"), &png(100, 50));
    let abs = r.join("elsewhere/d.png");
    write(&abs, &png(8, 8));
    let csv = format!(
        "\u{feff}path,label,x_min,y_min,x_max,y_max\r\n\
         \"img/a, b.png\",dog,1,2,30,40\r\n\
         img/c.png,cat,,,,\r\n\
         \"img/a, b.png\",\"cat\",0,0,10,10\r\n\
         {},bird,,,,\r\n",
        abs.display()
    );
    write(&r.join("labels.csv"), csv.as_bytes());
    let m = run(&r.join("labels.csv"));
    assert!(m.findings.is_empty(), "{:?}", m.findings);
    assert_eq!(m.classes, ["dog", "cat", "bird"], "first appearance");
    assert_eq!(names(&m), ["a, b.png", "c.png", "d.png"]);
    let ab = &m.samples[0];
    assert_eq!(ab.boxes.len(), 2, "rows of one path merge");
    assert_eq!(ab.boxes[0].bbox, [1.0, 2.0, 30.0, 40.0]);
    assert_eq!(ab.label, Some(0), "largest box decides");
    assert_eq!(m.samples[1].label, Some(1));
    assert_eq!(m.samples[2].path, abs);
}

#[test]
fn csv_without_box_columns_and_with_explicit_classes() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.png"), &png(3, 3));
    write(&d.path().join("b.png"), &png(3, 3));
    write(&d.path().join("l.csv"), b"path,label\na.png,x\nb.png,y\n");
    let options = IndexOptions {
        classes: Some(vec!["y".into(), "z".into()]),
        ..Default::default()
    };
    let m = index(&d.path().join("l.csv"), &options, &Control::new()).unwrap();
    assert_eq!(m.classes, ["y", "z"]);
    assert_eq!(names(&m), ["b.png"]);
    assert_eq!(m.samples[0].label, Some(0));
    assert_eq!(kinds(&m), [FindingKind::UnknownClass]);
}

#[test]
fn csv_bad_rows_are_findings_and_bad_headers_are_errors() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.png"), &png(3, 3));
    write(
        &d.path().join("l.csv"),
        b"path,label,x_min,y_min,x_max,y_max\na.png,x,0,0,1,one\n,x,,,,\na.png,,0,0,1,1\na.png,x,0,0,2,2\n",
    );
    let m = run(&d.path().join("l.csv"));
    assert_eq!(kinds(&m), [FindingKind::InvalidAnnotation; 3]);
    assert_eq!(m.findings[0].location.as_deref(), Some("line 2"));
    assert_eq!(m.samples.len(), 1);

    write(&d.path().join("bad.csv"), b"file,class\na.png,x\n");
    let err = index(
        &d.path().join("bad.csv"),
        &IndexOptions::default(),
        &Control::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidSource { .. }));
    assert!(err.to_string().contains("no `path` column"), "{err}");
}

#[test]
fn coco_boxes_classes_by_id_iscrowd_and_problems() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("imgs/1.png"), &png(100, 100));
    write(&d.path().join("imgs/2.png"), &png(100, 100));
    write(&d.path().join("imgs/3.png"), &png(100, 100));
    let coco = r#"{
      "images": [{"id": 7, "file_name": "imgs/1.png", "width": 100, "height": 100},
                 {"id": 8, "file_name": "imgs/2.png"},
                 {"id": 9, "file_name": "imgs/3.png"}],
      "annotations": [
        {"id": 1, "image_id": 7, "category_id": 20, "bbox": [10, 10, 20, 20], "iscrowd": 0},
        {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 90, 90], "iscrowd": 1},
        {"id": 3, "image_id": 8, "category_id": 99, "bbox": [0, 0, 5, 5]},
        {"id": 4, "image_id": 42, "category_id": 3, "bbox": [0, 0, 5, 5]}
      ],
      "categories": [{"id": 20, "name": "zebra"}, {"id": 3, "name": "ant"}]
    }"#;
    write(&d.path().join("instances.json"), coco.as_bytes());
    let m = run(&d.path().join("instances.json"));
    assert_eq!(m.classes, ["ant", "zebra"], "category id order");
    assert_eq!(names(&m), ["1.png", "3.png"]);
    let s = &m.samples[0];
    assert_eq!(s.boxes[0].bbox, [10.0, 10.0, 30.0, 30.0]);
    assert!(s.boxes[1].iscrowd);
    assert_eq!(s.label, Some(1), "the largest non-crowd box decides");
    assert_eq!(m.samples[1].label, None, "no boxes, no class");
    let mut k = kinds(&m);
    k.sort();
    assert_eq!(
        k,
        [FindingKind::UnknownClass, FindingKind::InvalidAnnotation]
    );

    write(&d.path().join("broken.json"), b"{\"images\": [");
    let err = index(
        &d.path().join("broken.json"),
        &IndexOptions::default(),
        &Control::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn voc_is_one_based_keeps_difficult_and_reports_bad_xml() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(&r.join("JPEGImages/a.jpg"), &jpeg(50, 40));
    write(
        &r.join("Annotations/a.xml"),
        b"<annotation><filename>a.jpg</filename><size><width>50</width><height>40</height></size>\
          <object><name>dog</name><difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>50</xmax><ymax>40</ymax></bndbox></object>\
          <object><name>cat</name><bndbox><xmin>11</xmin><ymin>6</ymin><xmax>20</xmax><ymax>15</ymax></bndbox></object></annotation>",
    );
    write(
        &r.join("Annotations/b.xml"),
        b"<annotation><filename>b.jpg</filename><object>",
    );
    assert_eq!(detect_format(r).unwrap(), SourceFormat::Voc);
    let m = run(r);
    assert_eq!(m.classes, ["cat", "dog"]);
    let s = &m.samples[0];
    assert_eq!(s.boxes[0].bbox, [0.0, 0.0, 50.0, 40.0], "whole image");
    assert!(s.boxes[0].difficult && !s.boxes[1].difficult);
    assert_eq!(s.boxes[1].bbox, [10.0, 5.0, 20.0, 15.0]);
    assert_eq!(s.label, Some(1));
    assert_eq!(kinds(&m), [FindingKind::InvalidAnnotation]);
    assert!(m.findings[0].path.ends_with("b.xml"));
}

#[test]
fn every_probe_and_box_finding_in_one_source() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(&r.join("ok.png"), &png(100, 100));
    write(&r.join("empty.png"), b"");
    write(&r.join("text.png"), b"just some text, honestly");
    write(&r.join("bomb.png"), &png(20_000, 20_000));
    write(&r.join("tiny.png"), &png(10, 10));
    let csv = "path,label,x_min,y_min,x_max,y_max\n\
               ok.png,a,-5,10,50,120\n\
               ok.png,a,10,10,10,50\n\
               ok.png,a,1,1,20,20\n\
               missing.png,a,,,,\n\
               empty.png,a,,,,\n\
               text.png,a,,,,\n\
               bomb.png,a,,,,\n\
               tiny.png,b,,,,\n";
    write(&r.join("l.csv"), csv.as_bytes());
    let options = IndexOptions {
        classes: Some(vec!["a".into()]),
        ..Default::default()
    };
    let m = index(&r.join("l.csv"), &options, &Control::new()).unwrap();
    assert_eq!(names(&m), ["ok.png"]);
    assert_eq!(m.samples[0].boxes.len(), 2);
    assert_eq!(m.samples[0].boxes[0].bbox, [0.0, 10.0, 50.0, 100.0]);
    let mut k = kinds(&m);
    k.sort();
    assert_eq!(
        k,
        [
            FindingKind::MissingFile,
            FindingKind::EmptyFile,
            FindingKind::NotAnImage,
            FindingKind::TooLarge,
            FindingKind::BoxClipped,
            FindingKind::BoxDegenerate,
            FindingKind::UnknownClass,
        ]
    );
    let summary = m.summary();
    assert!(
        summary.contains("skipped 5") && summary.contains("repaired 2"),
        "{summary}"
    );

    // A raised limit lets the big image through.
    let options = IndexOptions {
        limits: stokehold_core::Limits {
            max_pixels: 1_000_000_000,
            ..options.limits
        },
        ..options
    };
    let m = index(&r.join("l.csv"), &options, &Control::new()).unwrap();
    assert!(names(&m).contains(&"bomb.png".to_string()));
}

#[test]
fn duplicate_paths_keep_the_first() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.png"), &png(3, 3));
    let mut m = Manifest::new(vec!["x".into()]);
    let sample = stokehold_core::Sample {
        path: d.path().join("a.png"),
        label: Some(0),
        width: 3,
        height: 3,
        format: ImageFormat::Png,
        boxes: vec![],
    };
    m.samples = vec![sample.clone(), sample];
    m.save(&d.path().join("m.jsonl")).unwrap();
    let out = run(&d.path().join("m.jsonl"));
    assert_eq!(out.samples.len(), 1);
    assert_eq!(kinds(&out), [FindingKind::DuplicatePath]);
}

#[test]
fn strict_mode_fails_listing_every_finding() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a/ok.png"), &png(3, 3));
    write(&d.path().join("a/empty.png"), b"");
    write(&d.path().join("a/text.png"), b"hello there");
    let options = IndexOptions {
        strict: true,
        ..Default::default()
    };
    match index(d.path(), &options, &Control::new()) {
        Err(Error::Strict { findings }) => {
            assert_eq!(findings.len(), 2);
            let text = Error::Strict { findings }.to_string();
            assert!(
                text.contains("empty.png") && text.contains("text.png"),
                "{text}"
            );
        }
        other => panic!("expected a strict-mode error, got {other:?}"),
    }
}

#[test]
fn manifest_source_round_trips_and_indexing_is_deterministic() {
    let d = tempfile::tempdir().unwrap();
    for c in ["b", "a", "c"] {
        for i in 0..40 {
            write(
                &d.path().join(format!("tree/{c}/{i:03}.png")),
                &png(10 + i, 20),
            );
        }
    }
    let one = IndexOptions {
        threads: Some(1),
        ..Default::default()
    };
    let four = IndexOptions {
        threads: Some(4),
        ..Default::default()
    };
    let a = index(&d.path().join("tree"), &one, &Control::new()).unwrap();
    let b = index(&d.path().join("tree"), &four, &Control::new()).unwrap();
    assert_eq!(a, b);
    let path = d.path().join("m.jsonl");
    a.save(&path).unwrap();
    let again = run(&path);
    assert_eq!(again.samples, a.samples);
    assert_eq!(again.classes, a.classes);
}

#[test]
fn missing_source_and_cancellation() {
    let err = index(
        Path::new("/definitely/not/here"),
        &IndexOptions::default(),
        &Control::new(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a/1.png"), &png(3, 3));
    let control = Control::new();
    control.cancel();
    assert!(matches!(
        index(d.path(), &IndexOptions::default(), &control),
        Err(Error::Cancelled)
    ));
}

#[test]
fn detection_by_extension_and_content() {
    let d = tempfile::tempdir().unwrap();
    let p = |name: &str, text: &str| -> PathBuf {
        let path = d.path().join(name);
        write(&path, text.as_bytes());
        path
    };
    assert_eq!(
        detect_format(&p("x.csv", "path,label\n")).unwrap(),
        SourceFormat::Csv
    );
    assert_eq!(
        detect_format(&p("x.json", "{}")).unwrap(),
        SourceFormat::Coco
    );
    assert_eq!(
        detect_format(&p("x.jsonl", "")).unwrap(),
        SourceFormat::Manifest
    );
    assert_eq!(
        detect_format(&p(
            "x.txt",
            "{\"format\":\"stokehold-manifest\",\"format_version\":1}\n"
        ))
        .unwrap(),
        SourceFormat::Manifest
    );
    assert_eq!(
        detect_format(&p("y.txt", "  {\"images\": []}")).unwrap(),
        SourceFormat::Coco
    );
    assert_eq!(
        detect_format(&p("z.txt", "path,label\n")).unwrap(),
        SourceFormat::Csv
    );
    assert_eq!(detect_format(d.path()).unwrap(), SourceFormat::Folder);
}

/// A JPEG header whose APP1 segment carries an EXIF orientation.
fn jpeg_with_orientation(w: u16, h: u16, orientation: u8) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
    tiff.extend_from_slice(&[orientation, 0, 0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let plain = jpeg(w, h);
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE1];
    b.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    b.extend(app1);
    b.extend_from_slice(&plain[2..]);
    b
}

/// Regression (reliability issue, item 7): boxes are in the displayed
/// orientation, so they are checked against the displayed size; before,
/// a box in the lower part of a portrait photo stored sideways was clipped
/// or dropped and the sample could lose its class.
#[test]
fn exif_orientation_gives_displayed_sizes_and_boxes_keep_their_class() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    // Stored 400 wide × 300 tall, displayed (orientation 6) 300 × 400.
    write(&r.join("p.jpg"), &jpeg_with_orientation(400, 300, 6));
    write(
        &r.join("l.csv"),
        b"path,label,x_min,y_min,x_max,y_max\np.jpg,cat,10,320,200,390\n",
    );
    let m = run(&r.join("l.csv"));
    assert!(m.findings.is_empty(), "{:?}", m.findings);
    let s = &m.samples[0];
    assert_eq!((s.width, s.height), (300, 400));
    assert_eq!(s.boxes[0].bbox, [10.0, 320.0, 200.0, 390.0]);
    assert_eq!(m.class_name(s.label), Some("cat"));
}

/// Regression (item 8): one row with invalid UTF-8, or a quote that is
/// never closed, dropped every row after it.
#[test]
fn a_bad_csv_row_costs_one_row() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for i in 0..4 {
        write(&r.join(format!("{i}.png")), &png(4, 4));
    }
    let mut csv = b"path,label\n0.png,a\n1.png,\xff\xfe\n\"2.png,b\n3.png,a\n".to_vec();
    csv.extend_from_slice(b"\n");
    write(&r.join("l.csv"), &csv);
    let m = run(&r.join("l.csv"));
    assert_eq!(names(&m), ["0.png", "3.png"]);
    let locations: Vec<_> = m
        .findings
        .iter()
        .map(|f| f.location.clone().unwrap())
        .collect();
    assert_eq!(locations, ["line 3", "line 4"]);
    assert!(m.findings.iter().all(|f| f.message.starts_with("line ")));
}

/// Regression (item 9): a path that is not UTF-8 is kept exactly.
#[test]
fn non_utf8_paths_are_kept_exactly() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
    write(&r.join("c").join(name), &png(4, 4));
    let mut csv = b"path,label\n".to_vec();
    csv.extend_from_slice(b"c/caf\xe9.png,a\n");
    write(&r.join("l.csv"), &csv);
    for source in [r.join("l.csv"), r.to_path_buf()] {
        let m = index(
            &source,
            &IndexOptions {
                format: Some(if source.is_dir() {
                    SourceFormat::Folder
                } else {
                    SourceFormat::Csv
                }),
                ..IndexOptions::default()
            },
            &Control::new(),
        )
        .unwrap();
        let s = m.samples.iter().find(|s| s.path.ends_with(name)).unwrap();
        assert_eq!(s.path, r.join("c").join(name));
        let saved = d.path().join("m.jsonl");
        m.save(&saved).unwrap();
        assert_eq!(Manifest::load(&saved).unwrap().samples, m.samples);
    }
}

/// Regression (items 3, 4, 18): a FIFO named like an image is never
/// opened for a blocking read; /dev/zero as a CSV is refused; a top-down
/// BMP has its real height; an HDF5 file is not parsed as a CSV.
#[test]
fn fifos_devices_top_down_bmps_and_hdf5_files() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(&r.join("a/ok.png"), &png(4, 4));
    let fifo = std::ffi::CString::new(r.join("a/pipe.jpg").as_os_str().as_encoded_bytes()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(r.join("a/pipe.jpg"))
        .status()
        .unwrap();
    assert!(made.success(), "{fifo:?}");
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0; 12]);
    bmp.extend_from_slice(&40u32.to_le_bytes());
    bmp.extend_from_slice(&7i32.to_le_bytes());
    bmp.extend_from_slice(&(-48i32).to_le_bytes());
    bmp.extend_from_slice(&[0; 40]);
    write(&r.join("a/top.bmp"), &bmp);
    let m = run(r);
    assert_eq!(names(&m), ["ok.png", "top.bmp"]);
    assert_eq!((m.samples[1].width, m.samples[1].height), (7, 48));
    let f = &m.findings[0];
    assert_eq!(f.kind, FindingKind::Unreadable);
    assert!(f.message.contains("FIFO"), "{}", f.message);

    let options = IndexOptions {
        format: Some(SourceFormat::Csv),
        ..IndexOptions::default()
    };
    let err = index(Path::new("/dev/zero"), &options, &Control::new()).unwrap_err();
    assert!(err.to_string().contains("character device"), "{err}");

    write(&r.join("x.h5"), b"\x89HDF\r\n\x1a\n\0\0\0\0");
    write(&r.join("y.dat"), b"\x89HDF\r\n\x1a\n\0\0\0\0");
    for p in ["x.h5", "y.dat"] {
        let err = index(&r.join(p), &IndexOptions::default(), &Control::new()).unwrap_err();
        assert!(err.to_string().contains("HDF5"), "{err}");
    }
}

/// Regression (item 3): a source over `max_source_bytes` is refused
/// without being read, and so is a manifest line over `max_line_bytes`.
#[test]
fn sources_and_lines_are_capped() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        &r.join("l.csv"),
        &[b"path,label\n".as_slice(), &[b'x'; 4000]].concat(),
    );
    let small = IndexOptions {
        limits: stokehold_core::Limits {
            max_source_bytes: 1000,
            ..Default::default()
        },
        ..IndexOptions::default()
    };
    let err = index(&r.join("l.csv"), &small, &Control::new()).unwrap_err();
    assert!(err.to_string().contains("max_source_bytes"), "{err}");
    let short_lines = IndexOptions {
        limits: stokehold_core::Limits {
            max_line_bytes: 100,
            ..Default::default()
        },
        ..IndexOptions::default()
    };
    let m = index(&r.join("l.csv"), &short_lines, &Control::new()).unwrap();
    assert!(
        m.findings[0].message.contains("max_line_bytes"),
        "{:?}",
        m.findings
    );
}
