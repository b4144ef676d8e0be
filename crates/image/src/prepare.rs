//! Decode + resize in one call: what pack does once and the just-in-time
//! loader does per sample, so both produce the same pixels.

use std::cell::RefCell;

use crate::{decode, DecodeOptions, Error, Filter, Geometry, Pixels, ResizePolicy, Resizer};

/// How to turn an encoded image into a fixed-size one.
#[derive(Debug, Clone, Copy)]
pub struct Prepare {
    /// Channels, background, pixel limit.
    pub decode: DecodeOptions,
    /// Output `(height, width)`.
    pub size: (u32, u32),
    /// How the image is fitted to `size`.
    pub resize: ResizePolicy,
    /// Resampling filter.
    pub filter: Filter,
    /// Letterbox padding value.
    pub fill: u8,
}

/// A decoded, resized image and the geometry that placed it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `size.0 × size.1 × channels` pixels.
    pub pixels: Pixels,
    /// Source-to-output map, for the boxes.
    pub geometry: Geometry,
    /// `(width, height)` of the decoded source, as displayed.
    pub source_size: (u32, u32),
}

thread_local! {
    // One resampler per thread: its scratch buffers are reused.
    static RESIZER: RefCell<Option<(Filter, Resizer)>> = const { RefCell::new(None) };
}

/// Resamples with this thread's reusable [`Resizer`].
pub fn resize_with_thread_resizer(
    filter: Filter,
    src: &Pixels,
    geometry: &Geometry,
    fill: u8,
    out: &mut [u8],
) -> Result<(), Error> {
    RESIZER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !matches!(&*slot, Some((f, _)) if *f == filter) {
            *slot = Some((filter, Resizer::new(filter)));
        }
        let (_, resizer) = slot.as_mut().expect("set above");
        resizer.resize(src, geometry, fill, out)
    })
}

/// Decodes `bytes` and resizes the result to `p.size` with `p.resize`.
pub fn prepare(bytes: &[u8], p: &Prepare) -> Result<Prepared, Error> {
    let (h, w) = p.size;
    let channels = p.decode.channels;
    let mut data = vec![0u8; h as usize * w as usize * channels as usize];
    let (geometry, source_size) = prepare_into(bytes, p, &mut data)?;
    Ok(Prepared {
        pixels: Pixels {
            width: w,
            height: h,
            channels,
            data,
        },
        geometry,
        source_size,
    })
}

/// [`prepare`] into a caller's buffer (`size.0 × size.1 × channels` bytes),
/// for the loader's hot path: no allocation, no copy of the result.
/// Returns the geometry and the decoded source's `(width, height)`.
pub fn prepare_into(
    bytes: &[u8],
    p: &Prepare,
    out: &mut [u8],
) -> Result<(Geometry, (u32, u32)), Error> {
    let src = decode(bytes, &p.decode)?;
    let (h, w) = p.size;
    let geometry = Geometry::new(p.resize, src.width, src.height, w, h);
    resize_with_thread_resizer(p.filter, &src, &geometry, p.fill, out)?;
    Ok((geometry, (src.width, src.height)))
}
