//! Decoding any supported format to 8-bit RGB or gray.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::{Error, Pixels};

/// How to decode.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// 3 for RGB, 1 for gray (BT.709 luma of the RGB image).
    pub channels: u8,
    /// Colour that transparent pixels are composited over.
    pub background: [u8; 3],
    /// Refuse images with more pixels than this (checked from the header,
    /// before any pixel is decoded).
    pub max_pixels: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { channels: 3, background: [255, 255, 255], max_pixels: 100_000_000 }
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
        return Err(Error::TooLarge { width: w, height: h, limit: options.max_pixels });
    }
    if w == 0 || h == 0 {
        return Err(Error::Decode(format!("the header says {w}×{h} pixels")));
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
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
    } else if options.channels == 1 {
        // Gray sources stay exactly as they are.
        return Pixels { width, height, channels: 1, data: img.into_luma8().into_raw() };
    } else {
        img.into_rgb8().into_raw()
    };
    if options.channels == 1 {
        let rgb = image::RgbImage::from_raw(width, height, rgb).expect("sized above");
        let gray = DynamicImage::ImageRgb8(rgb).into_luma8().into_raw();
        return Pixels { width, height, channels: 1, data: gray };
    }
    Pixels { width, height, channels: 3, data: rgb }
}
