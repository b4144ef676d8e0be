//! Image kernels of stokehold: pure functions on buffers.
//!
//! - [`decode`]: any supported file (JPEG incl. progressive, grayscale and
//!   CMYK; PNG 8/16-bit, palette, alpha; BMP; GIF first frame; WebP; TIFF)
//!   to 8-bit RGB or grayscale, EXIF orientation applied, alpha composited
//!   over a background.
//! - [`Geometry`]: where a source window lands in the output for a
//!   [`ResizePolicy`] (`stretch`, `letterbox`, `crop`); boxes go through the
//!   same transform ([`Geometry::map_box`]). Pack and the loader share it.
//! - [`Resizer`]: antialiased resampling into a [`Geometry`]'s output.
//! - [`prepare`]: decode + resize in one call, as pack and the
//!   just-in-time loader both do.
//! - [`encode`]: JPEG or PNG for encoded storage.
//! - [`draw`]: rectangles and text for previews.
//!
//! ```
//! use stokehold_image::{Filter, Geometry, Pixels, ResizePolicy, Resizer};
//!
//! // A 4×2 RGB image, letterboxed into 4×4: the content fills rows 1..3.
//! let src = Pixels { width: 4, height: 2, channels: 3, data: vec![200; 4 * 2 * 3] };
//! let geometry = Geometry::new(ResizePolicy::Letterbox, 4, 2, 4, 4);
//! let mut out = vec![0u8; 4 * 4 * 3];
//! Resizer::new(Filter::Bilinear).resize(&src, &geometry, 0, &mut out).unwrap();
//! assert_eq!(&out[..12], &[0; 12]);
//! assert_eq!(&out[12..24], &[200; 12]);
//! assert_eq!(geometry.map_box([0.0, 0.0, 4.0, 2.0]), Some([0.0, 1.0, 4.0, 3.0]));
//! ```

mod decode;
pub mod draw;
mod encode;
mod geometry;
pub mod header;
mod prepare;
mod resize;

pub use decode::{
    decode, decode_scaled, jpeg_info, jpeg_scale_for, DecodeOptions, JpegInfo, JPEG_SCALES,
};
pub use encode::{encode, Codec};
pub use geometry::{fit_size, Geometry, ResizePolicy};
pub use prepare::{
    jpeg_eighths, prepare, prepare_into, prepare_window, resize_with_thread_resizer, scale_needed,
    Prepare, Prepared, DECODE_MARGIN,
};
pub use resize::{Filter, Resizer};

/// An 8-bit image in row-major, channel-interleaved order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// 1 (gray) or 3 (RGB).
    pub channels: u8,
    /// `height × width × channels` bytes.
    pub data: Vec<u8>,
}

/// What can go wrong with one image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a decodable image (corrupt, truncated, unsupported).
    #[error("cannot decode: {0}")]
    Decode(String),
    /// The image has more pixels than allowed.
    #[error("{width}×{height} = {} pixels is over the limit of {limit}", *width as u64 * *height as u64)]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The pixel limit.
        limit: u64,
    },
    /// Resampling failed (a size of zero, a buffer of the wrong length).
    #[error("cannot resize: {0}")]
    Resize(String),
    /// Encoding failed.
    #[error("cannot encode: {0}")]
    Encode(String),
}
