//! Decoding any supported format to 8-bit RGB or gray.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::{Error, Pixels};

/// How to decode.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// 3 for RGB, 1 for gray (ITU-R BT.601 luma of the RGB image, as Pillow
    /// and OpenCV compute it; gray sources are kept as they are).
    pub channels: u8,
    /// Colour that transparent pixels are composited over.
    pub background: [u8; 3],
    /// Refuse images with more pixels than this (checked from the header,
    /// before any pixel is decoded).
    pub max_pixels: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            channels: 3,
            background: [255, 255, 255],
            max_pixels: 100_000_000,
        }
    }
}

/// Decodes an encoded image: the format is guessed from its bytes, EXIF
/// orientation is applied (so the result is the image as displayed), 16-bit
/// samples are scaled to 8 bits, palettes expanded, CMYK converted to RGB,
/// and alpha composited over `options.background`.
pub fn decode(bytes: &[u8], options: &DecodeOptions) -> Result<Pixels, Error> {
    let err = |e: image::ImageError| Error::Decode(e.to_string());
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?;
    let mut limits = Limits::default();
    // The pixel limit is checked below from the header; this keeps a
    // decoder's own allocations bounded too (RGBA 16-bit is 8 bytes/pixel).
    limits.max_alloc = Some(options.max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(err)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > options.max_pixels {
        return Err(Error::TooLarge {
            width: w,
            height: h,
            limit: options.max_pixels,
        });
    }
    if w == 0 || h == 0 {
        return Err(Error::Decode(format!("the header says {w}×{h} pixels")));
    }
    if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_is_complete(bytes) {
        return Err(Error::Decode(format!(
            "truncated JPEG: no end-of-image marker after the scan ({} bytes)",
            bytes.len()
        )));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(err)?;
    img.apply_orientation(orientation);
    Ok(to_channels(img, options))
}

fn to_channels(img: DynamicImage, options: &DecodeOptions) -> Pixels {
    let (width, height) = (img.width(), img.height());
    let has_alpha = img.color().has_alpha();
    let rgb: Vec<u8> = if has_alpha {
        let rgba = img.into_rgba8();
        let [br, bg, bb] = options.background.map(u32::from);
        let mut out = Vec::with_capacity(width as usize * height as usize * 3);
        for px in rgba.as_raw().chunks_exact(4) {
            let a = u32::from(px[3]);
            let blend = |c: u8, b: u32| ((u32::from(c) * a + b * (255 - a) + 127) / 255) as u8;
            out.extend_from_slice(&[blend(px[0], br), blend(px[1], bg), blend(px[2], bb)]);
        }
        out
    } else if options.channels == 1 && !img.color().has_color() {
        // Gray sources stay exactly as they are (16-bit scaled to 8).
        return Pixels {
            width,
            height,
            channels: 1,
            data: img.into_luma8().into_raw(),
        };
    } else {
        img.into_rgb8().into_raw()
    };
    if options.channels == 1 {
        return Pixels {
            width,
            height,
            channels: 1,
            data: luma(&rgb),
        };
    }
    Pixels {
        width,
        height,
        channels: 3,
        data: rgb,
    }
}

/// ITU-R BT.601 luma, `0.299 R + 0.587 G + 0.114 B`, in 16-bit fixed point
/// with rounding: the weights Pillow's `convert("L")` and OpenCV use, so a
/// model trained on either sees the same gray.
fn luma(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| {
            ((u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471 + 0x8000)
                >> 16) as u8
        })
        .collect()
}

/// Whether a JPEG has an end-of-image marker after its first scan. The
/// decoder fills a truncated scan with gray rather than failing; this check
/// keeps such an image out instead of packing it half gray. Marker segments
/// are skipped by their lengths, so an EXIF thumbnail's own end marker does
/// not count; inside entropy-coded data `FF D9` cannot occur by chance
/// (every `FF` there is followed by `00` or a restart marker).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut pos = 2;
    while pos + 4 <= bytes.len() {
        if bytes[pos] != 0xFF {
            return false;
        }
        let marker = bytes[pos + 1];
        match marker {
            0xFF => pos += 1, // fill byte
            0x01 | 0xD0..=0xD7 => pos += 2,
            0xDA => {
                return bytes[pos..].windows(2).any(|w| w == [0xFF, 0xD9]);
            }
            _ => {
                let len = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
                pos += 2 + len;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_uses_bt601_weights() {
        assert_eq!(
            luma(&[255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]),
            [76, 150, 29, 255]
        );
    }

    #[test]
    fn jpeg_completeness_skips_segments_and_needs_eoi_after_the_scan() {
        // SOI, an APP1 holding FF D9, SOS, scan bytes, EOI.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00];
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00, 0x34]);
        assert!(
            !jpeg_is_complete(&jpeg),
            "the thumbnail's FF D9 does not count"
        );
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_is_complete(&jpeg));
    }
}
