//! Decoding any supported format to 8-bit RGB or gray.
//!
//! JPEG goes through libjpeg-turbo (the `turbojpeg` crate, built from
//! source): it is the fastest decoder there is, it reports data that ends
//! before the image is complete (a truncated file, a frame header that
//! claims more rows than the data holds) instead of filling the rest with
//! gray, and it can decode at 1/2, 1/4 or 1/8 of the size in the DCT domain.
//! Every other format goes through the `image` crate, with its memory
//! bounded by the image's own size so that an ancillary chunk (a PNG iCCP
//! or zTXt) cannot inflate to gigabytes.

use std::cell::RefCell;
use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageReader, Limits};

use crate::{Error, Pixels};

/// How to decode.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// 3 for RGB, 1 for gray (ITU-R BT.601 luma, as Pillow and OpenCV
    /// compute it; gray sources are kept as they are).
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

/// Memory an ancillary chunk may take besides the pixels (an ICC profile
/// is at most a few hundred kB; Pillow allows 64 kB of text per chunk).
const ANCILLARY_BYTES: u64 = 16 << 20;

/// Decodes an encoded image: the format is guessed from its bytes, EXIF
/// orientation is applied (so the result is the image as displayed), 16-bit
/// samples are scaled to 8 bits, palettes expanded, CMYK converted to RGB,
/// and alpha composited over `options.background`.
pub fn decode(bytes: &[u8], options: &DecodeOptions) -> Result<Pixels, Error> {
    if is_jpeg(bytes) {
        return decode_jpeg(bytes, options);
    }
    let (w, h) = match crate::header::bmp_size(bytes) {
        Some((w, h)) => (u64::from(w), u64::from(h)),
        None => imagesize::blob_size(bytes)
            .map(|s| (s.width as u64, s.height as u64))
            .map_err(|e| Error::Decode(format!("cannot read the image header: {e}")))?,
    };
    check_size(w, h, options.max_pixels)?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode(e.to_string()))?;
    let mut limits = Limits::default();
    // The decoded image takes at most 8 bytes a pixel (RGBA, 16 bits);
    // anything a decoder allocates beyond that is ancillary data.
    limits.max_alloc = Some(w * h * 8 + ANCILLARY_BYTES);
    reader.limits(limits);
    let err = |e: image::ImageError| Error::Decode(e.to_string());
    let mut decoder = reader.into_decoder().map_err(err)?;
    let (dw, dh) = decoder.dimensions();
    check_size(u64::from(dw), u64::from(dh), options.max_pixels)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(err)?;
    img.apply_orientation(orientation);
    Ok(to_channels(img, options))
}

fn check_size(w: u64, h: u64, max_pixels: u64) -> Result<(), Error> {
    if w == 0 || h == 0 {
        return Err(Error::Decode(format!("the header says {w}×{h} pixels")));
    }
    if w.saturating_mul(h) > max_pixels || w > u64::from(u32::MAX) || h > u64::from(u32::MAX) {
        return Err(Error::TooLarge {
            width: w.min(u64::from(u32::MAX)) as u32,
            height: h.min(u64::from(u32::MAX)) as u32,
            limit: max_pixels,
        });
    }
    Ok(())
}

/// Whether `bytes` start like a JPEG (SOI then a marker).
pub(crate) fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
}

thread_local! {
    // One libjpeg-turbo handle per thread: its buffers are reused.
    static DECOMPRESSOR: RefCell<Option<turbojpeg::Decompressor>> = const { RefCell::new(None) };
}

/// What a JPEG's header says: stored size, EXIF orientation, and whether
/// it can be scaled in the DCT domain (lossless JPEGs cannot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegInfo {
    /// Stored width.
    pub width: u32,
    /// Stored height.
    pub height: u32,
    /// EXIF orientation, 1 to 8.
    pub orientation: u8,
    /// Whether DCT scaling applies.
    pub scalable: bool,
}

impl JpegInfo {
    /// `(width, height)` as displayed.
    pub fn displayed(&self) -> (u32, u32) {
        if crate::header::swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// The header of a JPEG (`None` when `bytes` are not a JPEG), read without
/// decoding: the size from libjpeg-turbo, the orientation from the markers.
pub fn jpeg_info(bytes: &[u8]) -> Option<JpegInfo> {
    if !is_jpeg(bytes) {
        return None;
    }
    let header = turbojpeg::read_header(bytes).ok()?;
    let markers = crate::header::jpeg_markers(&mut Cursor::new(bytes)).unwrap_or_default();
    Some(JpegInfo {
        width: u32::try_from(header.width).ok()?,
        height: u32::try_from(header.height).ok()?,
        orientation: markers.orientation,
        scalable: !header.is_lossless,
    })
}

/// The DCT scales libjpeg-turbo decodes at, as `eighths`: 1/8, 1/4, 1/2, 1.
pub const JPEG_SCALES: [u32; 4] = [1, 2, 4, 8];

/// The smallest DCT scale (in eighths) that is at least `factor`: decoding
/// at it gives at least `factor` × the pixels on both axes.
pub fn jpeg_scale_for(factor: f64) -> u32 {
    JPEG_SCALES
        .into_iter()
        .find(|&e| f64::from(e) / 8.0 >= factor)
        .unwrap_or(8)
}

/// Decodes a JPEG at `eighths`/8 of its size in the DCT domain (8: full
/// size), orientation applied; other images (or a lossless JPEG) at full
/// size. Returns the pixels and the full size as displayed.
pub fn decode_scaled(
    bytes: &[u8],
    options: &DecodeOptions,
    eighths: u32,
) -> Result<(Pixels, (u32, u32)), Error> {
    if !is_jpeg(bytes) {
        let px = decode(bytes, options)?;
        let size = (px.width, px.height);
        return Ok((px, size));
    }
    decode_jpeg_scaled(bytes, options, eighths)
}

fn decode_jpeg(bytes: &[u8], options: &DecodeOptions) -> Result<Pixels, Error> {
    decode_jpeg_scaled(bytes, options, 8).map(|(px, _)| px)
}

/// A JPEG at `eighths`/8, with this thread's decoder (made on first use).
fn decode_jpeg_scaled(
    bytes: &[u8],
    options: &DecodeOptions,
    eighths: u32,
) -> Result<(Pixels, (u32, u32)), Error> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(
                turbojpeg::Decompressor::new()
                    .map_err(|e| Error::Decode(format!("cannot start the JPEG decoder: {e}")))?,
            );
        }
        let d = slot.as_mut().expect("set above");
        decode_jpeg_at(d, bytes, options, eighths)
    })
}

fn jpeg_error(e: turbojpeg::Error) -> Error {
    let text = match e {
        turbojpeg::Error::TurboJpegError(msg) => msg,
        other => other.to_string(),
    };
    Error::Decode(format!("corrupt or truncated JPEG: {}", text.trim()))
}

fn decode_jpeg_at(
    d: &mut turbojpeg::Decompressor,
    bytes: &[u8],
    options: &DecodeOptions,
    eighths: u32,
) -> Result<(Pixels, (u32, u32)), Error> {
    use turbojpeg::{Colorspace, PixelFormat};
    let header = d.read_header(bytes).map_err(jpeg_error)?;
    // The guard is on the full size the header claims, whatever the scale.
    check_size(
        header.width as u64,
        header.height as u64,
        options.max_pixels,
    )?;
    let eighths = if header.is_lossless {
        8
    } else {
        eighths.clamp(1, 8)
    };
    let factor = turbojpeg::ScalingFactor::new(eighths as usize, 8);
    d.set_scaling_factor(factor).map_err(jpeg_error)?;
    let markers = crate::header::jpeg_markers(&mut Cursor::new(bytes)).unwrap_or_default();
    let full = if crate::header::swaps_axes(markers.orientation) {
        (header.height as u32, header.width as u32)
    } else {
        (header.width as u32, header.height as u32)
    };
    let scaled = header.scaled(factor);
    let (w, h) = (scaled.width, scaled.height);
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let gray_source = header.colorspace == Colorspace::Gray;
    let format = if cmyk {
        PixelFormat::CMYK
    } else if options.channels == 1 || gray_source {
        PixelFormat::GRAY
    } else {
        PixelFormat::RGB
    };
    let px = format.size();
    let mut data = Vec::new();
    data.try_reserve_exact(w * h * px)
        .map_err(|_| Error::Decode(format!("cannot allocate {w}×{h} pixels")))?;
    data.resize(w * h * px, 0);
    let image = turbojpeg::Image {
        pixels: &mut data[..],
        width: w,
        pitch: w * px,
        height: h,
        format,
    };
    // libjpeg-turbo reports a warning (data that ends early, corrupt entropy
    // data) as an error after decoding as much as it could: such an image
    // is refused rather than kept with a flat gray bottom.
    d.decompress(bytes, image).map_err(jpeg_error)?;
    let (mut data, channels) = if cmyk {
        (cmyk_to_rgb(&data, markers.adobe), 3u8)
    } else {
        (data, px as u8)
    };
    let (mut width, mut height) = (w as u32, h as u32);
    if markers.orientation != 1 {
        let orientation =
            Orientation::from_exif(markers.orientation).unwrap_or(Orientation::NoTransforms);
        let mut img = if channels == 1 {
            DynamicImage::ImageLuma8(ImageBuffer::from_raw(width, height, data).expect("sized"))
        } else {
            DynamicImage::ImageRgb8(ImageBuffer::from_raw(width, height, data).expect("sized"))
        };
        img.apply_orientation(orientation);
        (width, height) = (img.width(), img.height());
        data = img.into_bytes();
    }
    let pixels = Pixels {
        width,
        height,
        channels,
        data,
    };
    let pixels = match (pixels.channels, options.channels) {
        (1, 3) => Pixels {
            data: pixels.data.iter().flat_map(|&v| [v, v, v]).collect(),
            channels: 3,
            ..pixels
        },
        (3, 1) => Pixels {
            data: luma(&pixels.data),
            channels: 1,
            ..pixels
        },
        _ => pixels,
    };
    Ok((pixels, full))
}

/// CMYK (as libjpeg hands it over, YCCK already converted) to RGB with
/// `R = (255 - C)(255 - K) / 255`, as Pillow converts. Adobe's files store
/// the samples inverted (`raw = 255 - C`), then `R = raw_C · raw_K / 255`.
fn cmyk_to_rgb(cmyk: &[u8], inverted: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for p in cmyk.chunks_exact(4) {
        let [c, m, y, k] = if inverted {
            [p[0], p[1], p[2], p[3]].map(u32::from)
        } else {
            [255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]].map(u32::from)
        };
        let f = |v: u32| ((v * k + 127) / 255) as u8;
        out.extend_from_slice(&[f(c), f(m), f(y)]);
    }
    out
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
    fn cmyk_follows_pillow() {
        // Adobe-inverted: raw C=255 (no cyan), K=255 (no black) → white.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255], true), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 255, 255, 255], true), [0, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), [255, 255, 255]);
    }
}
