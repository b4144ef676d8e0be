//! Encoding for `encoded` storage.

use std::fmt;
use std::str::FromStr;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use crate::{Error, Pixels};

/// The codec of encoded storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// JPEG at this quality (1–100).
    Jpeg(u8),
    /// PNG (lossless).
    Png,
}

impl Codec {
    /// `"jpeg"` or `"png"`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Jpeg(_) => "jpeg",
            Codec::Png => "png",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = String;

    /// `"jpeg"` (quality 90) or `"png"`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "jpeg" | "jpg" => Ok(Codec::Jpeg(90)),
            "png" => Ok(Codec::Png),
            _ => Err(format!("unknown codec {s:?} (expected jpeg or png)")),
        }
    }
}

/// Encodes `pixels` with `codec`.
pub fn encode(pixels: &Pixels, codec: Codec) -> Result<Vec<u8>, Error> {
    let color = match pixels.channels {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        c => return Err(Error::Encode(format!("{c} channels are not supported"))),
    };
    let mut out = Vec::with_capacity(pixels.data.len() / 4);
    let result = match codec {
        Codec::Jpeg(quality) => JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
            .write_image(&pixels.data, pixels.width, pixels.height, color),
        Codec::Png => {
            PngEncoder::new(&mut out).write_image(&pixels.data, pixels.width, pixels.height, color)
        }
    };
    result.map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out)
}
