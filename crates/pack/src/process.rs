//! One sample: read, decode, resize, boxes, encode.

use stokehold_core::{Finding, FindingKind, Sample};
use stokehold_image::{encode, prepare, Codec, Pixels};

use crate::options::{PackOptions, StorageOption};

/// One processed sample, ready to write.
pub(crate) struct Packed {
    pub data: Vec<u8>,
    /// `[height, width, channels]` of the stored image.
    pub shape: [u32; 3],
    pub boxes: Vec<[f32; 4]>,
    pub box_labels: Vec<u32>,
    pub orig_size: [u32; 2],
    /// The stored pixels, when the data is encoded (for the statistics).
    pub pixels: Option<Vec<u8>>,
    pub findings: Vec<Finding>,
}

pub(crate) fn process(sample: &Sample, options: &PackOptions) -> Result<Packed, Finding> {
    let path = &sample.path;
    let skip = |kind, msg: String| Finding::skip(kind, path, msg);
    let limits = &options.limits;
    let bytes = stokehold_core::fsutil::read_capped(path, limits.max_file_bytes, "max_file_bytes")
        .map_err(|e| match e {
            e if e.is_not_found() => skip(FindingKind::MissingFile, "file does not exist".into()),
            e @ stokehold_core::fsutil::ReadError::TooLarge { .. } => {
                skip(FindingKind::TooLarge, e.to_string())
            }
            e => skip(FindingKind::Unreadable, format!("cannot read: {e}")),
        })?;
    let prepared = prepare(&bytes, &options.prepare()).map_err(|e| match e {
        stokehold_image::Error::TooLarge { .. } => skip(FindingKind::TooLarge, e.to_string()),
        _ => skip(FindingKind::NotAnImage, e.to_string()),
    })?;
    let geometry = prepared.geometry;
    let (h, w) = (prepared.pixels.height, prepared.pixels.width);
    let out = prepared.pixels.data;
    let mut findings = Vec::new();
    let mut boxes = Vec::with_capacity(sample.boxes.len());
    let mut box_labels = Vec::with_capacity(sample.boxes.len());
    for (i, b) in sample.boxes.iter().enumerate() {
        match geometry.map_box(b.bbox) {
            Some(mapped) => {
                boxes.push(mapped);
                box_labels.push(b.label);
            }
            None => findings.push(
                Finding::repair(
                    FindingKind::BoxDegenerate,
                    path,
                    format!(
                        "box {i} {:?} has no area left after the {} resize; dropped",
                        b.bbox, options.resize
                    ),
                )
                .at(format!("box {i}")),
            ),
        }
    }
    let (data, pixels) = match options.storage {
        StorageOption::Raw => (out, None),
        StorageOption::Jpeg(_) | StorageOption::Png => {
            let codec = match options.storage {
                StorageOption::Jpeg(q) => Codec::Jpeg(q),
                _ => Codec::Png,
            };
            let px = Pixels {
                width: w,
                height: h,
                channels: options.channels,
                data: out,
            };
            let encoded =
                encode(&px, codec).map_err(|e| skip(FindingKind::NotAnImage, e.to_string()))?;
            (encoded, Some(px.data))
        }
    };
    Ok(Packed {
        shape: [h, w, u32::from(options.channels)],
        data,
        boxes,
        box_labels,
        orig_size: [prepared.source_size.1, prepared.source_size.0],
        pixels,
        findings,
    })
}
