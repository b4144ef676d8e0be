//! Writes the generated seed inputs under `fuzz/seeds/`: small images of
//! every decodable format (`decode/`, `probe/`), manifests written by
//! `Manifest::save` (`manifest/`) and packed files written by `StoreWriter`
//! (`packed/`), beside the frozen format-1 files copied from
//! `python/tests/data/`. The CSV, COCO and VOC seeds are written by hand.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`

use std::ffi::OsString;
use std::io::Cursor;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat as Format, Rgb, RgbImage, Rgba, RgbaImage};
use stokehold_core::{BoxAnn, ImageFormat, Manifest, Sample};
use stokehold_store::{Attrs, PackedSample, Storage, StoreWriter, WriterConfig};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = root.join("seeds");
    images(&seeds)?;
    manifests(&seeds.join("manifest"))?;
    packed(&seeds.join("packed"), &root.join("../python/tests/data"))?;
    Ok(())
}

/// A `w × h` RGB gradient: every pixel differs, so encoders keep detail.
fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 40) as u8, (y * 60) as u8, ((x + y) * 20) as u8])
    })
}

fn encoded(img: &DynamicImage, format: Format) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format)?;
    Ok(out.into_inner())
}

/// `jpeg` with an EXIF APP1 segment (little-endian TIFF, one IFD entry:
/// Orientation = `orientation`) inserted after its SOI marker.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // tag: Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // type: SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // count
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // value padding, next IFD = 0
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn images(seeds: &Path) -> Result<()> {
    let rgb = DynamicImage::ImageRgb8(gradient(5, 3));
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(4, 3, |x, y| {
        Rgba([x as u8 * 60, y as u8 * 80, 100, (x * 60 + y * 20) as u8])
    }));
    let gray16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(3, 2, |x, y| {
        image::Luma([(x * 20000 + y * 7000) as u16])
    }));
    let jpeg = std::fs::read(seeds.join("decode/tiny.jpg"))?;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("rgb.png", encoded(&rgb, Format::Png)?),
        ("rgba.png", encoded(&rgba, Format::Png)?),
        ("gray16.png", encoded(&gray16, Format::Png)?),
        ("rgb.bmp", encoded(&rgb, Format::Bmp)?),
        ("rgba.gif", encoded(&rgba, Format::Gif)?),
        ("rgb.webp", encoded(&rgb, Format::WebP)?),
        ("rgb.tif", encoded(&rgb, Format::Tiff)?),
        (
            "gray.jpg",
            encoded(&DynamicImage::ImageLuma8(rgb.to_luma8()), Format::Jpeg)?,
        ),
        ("exif6.jpg", with_orientation(&jpeg, 6)),
        ("tiny.jpg", jpeg),
    ];
    for dir in ["decode", "probe"] {
        std::fs::create_dir_all(seeds.join(dir))?;
        for (name, bytes) in &files {
            std::fs::write(seeds.join(dir).join(name), bytes)?;
        }
    }
    Ok(())
}

fn manifests(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut m = Manifest::new(vec!["cat".into(), "dog".into()]);
    m.samples.push(Sample {
        path: "a.jpg".into(),
        label: Some(1),
        width: 16,
        height: 16,
        format: ImageFormat::Jpeg,
        boxes: vec![
            BoxAnn::new([1.0, 2.0, 10.0, 12.0], 1),
            BoxAnn {
                iscrowd: true,
                difficult: true,
                ..BoxAnn::new([0.0, 0.0, 3.5, 4.5], 0)
            },
        ],
    });
    m.samples.push(Sample {
        path: "a.png".into(),
        label: Some(0),
        width: 3,
        height: 2,
        format: ImageFormat::Png,
        boxes: vec![],
    });
    m.samples.push(Sample {
        // Not UTF-8: written with `path_b64`.
        path: PathBuf::from(OsString::from_vec(b"b\xff.png".to_vec())),
        label: None,
        width: 3,
        height: 2,
        format: ImageFormat::Png,
        boxes: vec![],
    });
    m.save(&dir.join("boxes.jsonl"))?;
    Manifest::new(vec![]).save(&dir.join("empty.jsonl"))?;
    Ok(())
}

fn packed(dir: &Path, frozen: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for name in ["format_v1_raw.h5", "format_v1_jpeg.h5"] {
        std::fs::copy(frozen.join(name), dir.join(name))?;
    }
    let attrs = Attrs {
        classes: vec!["cat".into(), "dog".into()],
        resize: "letterbox".into(),
        filter: "bilinear".into(),
        source: "fuzz seeds".into(),
        ..Attrs::default()
    };
    let pixels = |w: u32, h: u32| gradient(w, h).into_raw();
    let boxes = [[0.5f32, 0.5, 3.0, 2.0], [1.0, 0.0, 2.0, 1.0]];
    let box_labels = [1u32, 0];

    // Raw, one shape: `/images (N, H, W, C)`.
    let write = |name: &str, config: WriterConfig, samples: &[(Vec<u8>, [u32; 3])]| -> Result<()> {
        let dest = dir.join(name);
        let mut writer = StoreWriter::create(&dest, config)?;
        for (i, (data, shape)) in samples.iter().enumerate() {
            let k = i % 3;
            writer.push(&PackedSample {
                data,
                shape: *shape,
                label: (i != 2).then_some((i % 2) as u32),
                boxes: &boxes[..k.min(2)],
                box_labels: &box_labels[..k.min(2)],
                path: format!("img/{i}.png").as_ref(),
                orig_size: [shape[0] * 2, shape[1] * 2],
                source_index: i,
            })?;
        }
        let (tmp, _) = writer.finish(&attrs)?;
        tmp.persist(&dest)?;
        Ok(())
    };
    let fixed: Vec<_> = (0..3).map(|_| (pixels(4, 3), [3, 4, 3])).collect();
    write(
        "v2_raw_fixed.h5",
        WriterConfig {
            image_shape: [3, 4, 3],
            storage: Storage::Raw,
            capacity: 4,
        },
        &fixed,
    )?;
    // Raw, varying shapes: `/data` + `/offsets` + `/shapes`.
    let varying = vec![
        (pixels(4, 3), [3, 4, 3]),
        (pixels(2, 5), [5, 2, 3]),
        (pixels(1, 1), [1, 1, 3]),
    ];
    write(
        "v2_raw_varying.h5",
        WriterConfig {
            image_shape: [0, 0, 3],
            storage: Storage::Raw,
            capacity: 3,
        },
        &varying,
    )?;
    // Encoded JPEG: `/data` + `/offsets`.
    let jpeg = |w, h| encoded(&DynamicImage::ImageRgb8(gradient(w, h)), Format::Jpeg);
    let jpegs = vec![
        (jpeg(4, 3)?, [3, 4, 3]),
        (jpeg(2, 5)?, [5, 2, 3]),
        (jpeg(8, 8)?, [8, 8, 3]),
    ];
    write(
        "v2_jpeg.h5",
        WriterConfig {
            image_shape: [0, 0, 3],
            storage: Storage::Encoded {
                codec: "jpeg".into(),
            },
            capacity: 3,
        },
        &jpegs,
    )?;
    Ok(())
}
