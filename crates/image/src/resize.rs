//! Antialiased resampling into a [`Geometry`]'s output.

use std::fmt;

use fast_image_resize as fir;
use fir::images::{CroppedImageMut, Image, ImageRef};

use crate::{Error, Geometry, Pixels};

/// Resampling filter. Downscaling is antialiased: the filter's support
/// grows with the scale factor, as in Pillow.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum Filter {
    /// Nearest neighbour (no antialiasing).
    Nearest,
    /// Bilinear (triangle) filter.
    #[default]
    Bilinear,
    /// Box filter: the mean over each output pixel's area.
    Area,
    /// Lanczos, three lobes.
    Lanczos,
}

impl Filter {
    /// `"nearest"`, `"bilinear"`, `"area"` or `"lanczos"`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn algorithm(self) -> fir::ResizeAlg {
        match self {
            Filter::Nearest => fir::ResizeAlg::Nearest,
            Filter::Bilinear => fir::ResizeAlg::Convolution(fir::FilterType::Bilinear),
            Filter::Area => fir::ResizeAlg::Convolution(fir::FilterType::Box),
            Filter::Lanczos => fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3),
        }
    }
}

/// A reusable resampler: keep one per thread, its scratch buffers are
/// reused from call to call.
pub struct Resizer {
    filter: Filter,
    inner: fir::Resizer,
}

impl fmt::Debug for Resizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resizer")
            .field("filter", &self.filter)
            .finish()
    }
}

impl Resizer {
    /// A resampler with this filter (SIMD picked for this CPU).
    pub fn new(filter: Filter) -> Self {
        Resizer {
            filter,
            inner: fir::Resizer::new(),
        }
    }

    /// Resamples `geometry.src` of `src` into `geometry.dst` of `out`
    /// (`out_height × out_width × channels` bytes); the rest of `out` is set
    /// to `fill`.
    pub fn resize(
        &mut self,
        src: &Pixels,
        geometry: &Geometry,
        fill: u8,
        out: &mut [u8],
    ) -> Result<(), Error> {
        let pixel_type = match src.channels {
            1 => fir::PixelType::U8,
            3 => fir::PixelType::U8x3,
            c => return Err(Error::Resize(format!("{c} channels are not supported"))),
        };
        let (ow, oh) = (geometry.out_width, geometry.out_height);
        let expected = ow as usize * oh as usize * src.channels as usize;
        if out.len() != expected {
            return Err(Error::Resize(format!(
                "output buffer has {} bytes, expected {expected}",
                out.len()
            )));
        }
        let err = |e: &dyn fmt::Display| Error::Resize(e.to_string());
        let src_view =
            ImageRef::new(src.width, src.height, &src.data, pixel_type).map_err(|e| err(&e))?;
        let [x, y, w, h] = geometry.src;
        let options = fir::ResizeOptions::new()
            .resize_alg(self.filter.algorithm())
            .crop(x, y, w, h);
        let [dx, dy, dw, dh] = geometry.dst;
        let mut dst = Image::from_slice_u8(ow, oh, out, pixel_type).map_err(|e| err(&e))?;
        if [dx, dy, dw, dh] == [0, 0, ow, oh] {
            self.inner
                .resize(&src_view, &mut dst, &options)
                .map_err(|e| err(&e))?;
        } else {
            dst.buffer_mut().fill(fill);
            let mut view = CroppedImageMut::new(&mut dst, dx, dy, dw, dh).map_err(|e| err(&e))?;
            self.inner
                .resize(&src_view, &mut view, &options)
                .map_err(|e| err(&e))?;
        }
        Ok(())
    }
}
