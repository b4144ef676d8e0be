//! Decode + resize in one call: what pack does once and the just-in-time
//! loader does per sample, so both produce the same pixels.

use std::cell::RefCell;

use crate::{DecodeOptions, Error, Filter, Geometry, Pixels, ResizePolicy, Resizer};

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
    /// `fit`: the longer side at most this (`size` is then ignored).
    pub max_size: u32,
    /// `fit`: both sides rounded to a multiple of this (1: no rounding).
    pub multiple: u32,
}

impl Default for Prepare {
    fn default() -> Self {
        Prepare {
            decode: DecodeOptions::default(),
            size: (224, 224),
            resize: ResizePolicy::Stretch,
            filter: Filter::Bilinear,
            fill: 0,
            max_size: 512,
            multiple: 1,
        }
    }
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

/// Decodes `bytes` and resizes the result to `p.size` with `p.resize` (for
/// `fit`, to the image's own fitted size, [`crate::fit_size`]).
pub fn prepare(bytes: &[u8], p: &Prepare) -> Result<Prepared, Error> {
    let fitted;
    let p = if p.resize == ResizePolicy::Fit {
        let (sw, sh) = displayed_size(bytes)?;
        let (fw, fh) = crate::fit_size(sw, sh, p.max_size, p.multiple);
        fitted = Prepare {
            size: (fh, fw),
            ..*p
        };
        &fitted
    } else {
        p
    };
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
/// Returns the geometry (in the source's full displayed coordinates: boxes
/// map through it) and the source's displayed `(width, height)`.
pub fn prepare_into(
    bytes: &[u8],
    p: &Prepare,
    out: &mut [u8],
) -> Result<(Geometry, (u32, u32)), Error> {
    prepare_window(bytes, p, None, out)
}

/// [`prepare_into`], optionally taking only `window` (`[x, y, w, h]` as
/// fractions of the displayed source's width and height, e.g. a random
/// resized crop) onto the whole output. A JPEG is decoded at the DCT scale
/// [`jpeg_eighths`] picks; the antialiased resize follows.
pub fn prepare_window(
    bytes: &[u8],
    p: &Prepare,
    window: Option<[f64; 4]>,
    out: &mut [u8],
) -> Result<(Geometry, (u32, u32)), Error> {
    let (h, w) = p.size;
    let plan = |sw: u32, sh: u32| match window {
        Some([x, y, ww, wh]) => {
            let (fw, fh) = (f64::from(sw), f64::from(sh));
            Geometry::window(
                clamp_window([x * fw, y * fh, ww * fw, wh * fh], sw, sh),
                w,
                h,
            )
        }
        None => Geometry::new(p.resize, sw, sh, w, h),
    };
    let eighths = match crate::decode::jpeg_info(bytes) {
        Some(info) if info.scalable => {
            let (sw, sh) = info.displayed();
            jpeg_eighths(&plan(sw, sh))
        }
        _ => 8,
    };
    let (src, (full_w, full_h)) = crate::decode::decode_scaled(bytes, &p.decode, eighths)?;
    let geometry = plan(full_w, full_h);
    // The pixels were decoded at a scale: the window in their coordinates.
    let (fx, fy) = (
        f64::from(src.width) / f64::from(full_w),
        f64::from(src.height) / f64::from(full_h),
    );
    let [x, y, gw, gh] = geometry.src;
    // Clamped: the products can round a hair past the decoded pixels.
    let (pw, ph) = (f64::from(src.width), f64::from(src.height));
    let (x, y) = ((x * fx).clamp(0.0, pw), (y * fy).clamp(0.0, ph));
    let pixel_geometry = Geometry {
        src: [x, y, (gw * fx).min(pw - x), (gh * fy).min(ph - y)],
        ..geometry
    };
    resize_with_thread_resizer(p.filter, &src, &pixel_geometry, p.fill, out)?;
    Ok((geometry, (full_w, full_h)))
}

/// `(width, height)` of an encoded image as displayed, from its header.
fn displayed_size(bytes: &[u8]) -> Result<(u32, u32), Error> {
    if let Some(info) = crate::decode::jpeg_info(bytes) {
        return Ok(info.displayed());
    }
    let bad = |e: String| Error::Decode(format!("cannot read the image header: {e}"));
    let (w, h) = match crate::header::bmp_size(bytes) {
        Some(size) => size,
        None => {
            let s = imagesize::blob_size(bytes).map_err(|e| bad(e.to_string()))?;
            (
                u32::try_from(s.width).unwrap_or(u32::MAX),
                u32::try_from(s.height).unwrap_or(u32::MAX),
            )
        }
    };
    let format = match imagesize::image_type(bytes) {
        Ok(imagesize::ImageType::Png) => Some(stokehold_core::ImageFormat::Png),
        Ok(imagesize::ImageType::Webp) => Some(stokehold_core::ImageFormat::Webp),
        Ok(imagesize::ImageType::Tiff) => Some(stokehold_core::ImageFormat::Tiff),
        _ => None,
    };
    let orientation = format.map_or(1, |f| {
        crate::header::orientation(&mut std::io::Cursor::new(bytes), f).unwrap_or(1)
    });
    Ok(if crate::header::swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    })
}

/// How many more source pixels than output pixels (on each axis) a JPEG is
/// decoded to before the antialiased resize. At 1 the result is Pillow's
/// `draft` (the DCT scale's box-like filter then a short resize), which on
/// sharp content is up to 2–3 levels off a full decode resized; at 1.5 the
/// resize does most of the filtering: measured against a full-size decode
/// resized with Pillow, mean absolute error 0.1–0.4 at 224×224 (Pillow
/// draft: 0.4–0.5), and 1.3–1.6 at 64×64 (draft: 2.1–2.6), while 12 MP
/// photos to 224 still decode at 1/8 (see `benchmarks/README.md`).
pub const DECODE_MARGIN: f64 = 1.5;

/// The DCT scale, in eighths (1, 2, 4 or 8), a JPEG is decoded at for
/// `geometry`: the smallest that gives at least [`DECODE_MARGIN`] source
/// pixels per output pixel on both axes.
pub fn jpeg_eighths(geometry: &Geometry) -> u32 {
    crate::decode::jpeg_scale_for(DECODE_MARGIN * scale_needed(geometry))
}

/// The least scale of the source that keeps at least one source pixel per
/// output pixel on both axes: `max(dst.w / src.w, dst.h / src.h)`.
pub fn scale_needed(g: &Geometry) -> f64 {
    let [_, _, sw, sh] = g.src;
    let [_, _, dw, dh] = g.dst;
    (f64::from(dw) / sw.max(1e-9)).max(f64::from(dh) / sh.max(1e-9))
}

fn clamp_window([x, y, w, h]: [f64; 4], sw: u32, sh: u32) -> [f64; 4] {
    let (sw, sh) = (f64::from(sw), f64::from(sh));
    let w = w.clamp(1.0, sw);
    let h = h.clamp(1.0, sh);
    [x.clamp(0.0, sw - w), y.clamp(0.0, sh - h), w, h]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::jpeg_scale_for;
    use crate::ResizePolicy;

    #[test]
    fn the_smallest_scale_with_the_margin_is_chosen() {
        let e = |g: Geometry| jpeg_eighths(&g);
        // 4000×3000 to 224×224, stretched: 1.5 × 224/3000 = 0.11 → 1/8 (500×375).
        assert_eq!(
            e(Geometry::new(ResizePolicy::Stretch, 4000, 3000, 224, 224)),
            1
        );
        // Letterbox: the fitted 224×168 needs 1.5 × 224/4000 → 1/8.
        assert_eq!(
            e(Geometry::new(ResizePolicy::Letterbox, 4000, 3000, 224, 224)),
            1
        );
        // Crop: the 3000×3000 centre to 224 → 1/8.
        assert_eq!(
            e(Geometry::new(ResizePolicy::Crop, 4000, 3000, 224, 224)),
            1
        );
        // 4000×3000 to 512: 1.5 × 512/3000 = 0.26 → 1/2.
        assert_eq!(
            e(Geometry::new(ResizePolicy::Stretch, 4000, 3000, 512, 512)),
            4
        );
        // 1280×960 to 224: 1.5 × 224/960 = 0.35 → 1/2 (640×480).
        assert_eq!(
            e(Geometry::new(ResizePolicy::Stretch, 1280, 960, 224, 224)),
            4
        );
        // 1280×960 letterboxed to 224: the fitted 224×168 needs 0.26 → 1/2.
        assert_eq!(
            e(Geometry::new(ResizePolicy::Letterbox, 1280, 960, 224, 224)),
            4
        );
        // 640×480 to 224×224: 1.5 × 0.47 = 0.7 → full size.
        assert_eq!(
            e(Geometry::new(ResizePolicy::Stretch, 640, 480, 224, 224)),
            8
        );
        // The random crop actually drawn: a small window of a big photo
        // needs more of it than the whole photo would.
        assert_eq!(
            e(Geometry::window([1000.0, 1000.0, 1200.0, 900.0], 224, 224)),
            4,
            "0.37 → 1/2"
        );
        assert_eq!(
            e(Geometry::window([1000.0, 1000.0, 600.0, 450.0], 224, 224)),
            8,
            "0.75 → 1"
        );
        // Upscaling never scales down.
        assert_eq!(
            e(Geometry::new(ResizePolicy::Stretch, 100, 80, 224, 224)),
            8
        );
        assert_eq!(jpeg_scale_for(0.0), 1);
    }

    /// Regression: a JPEG decoded at a DCT scale whose size does not divide
    /// evenly (e.g. 161 pixels at 1/2 is 81) failed with "crop box out of
    /// the image boundaries" by a rounding hair, and pack skipped it.
    #[test]
    fn every_size_prepares_at_every_dct_scale() {
        let policies = [
            ResizePolicy::Stretch,
            ResizePolicy::Letterbox,
            ResizePolicy::Crop,
            ResizePolicy::Fit,
        ];
        for w in (161..=645).step_by(97) {
            for h in (163..=640).step_by(119) {
                let px = Pixels {
                    width: w,
                    height: h,
                    channels: 3,
                    data: (0..w * h * 3).map(|i| (i % 251) as u8).collect(),
                };
                let jpeg = crate::encode(&px, crate::Codec::Jpeg(80)).unwrap();
                for size in [(96, 96), (40, 72)] {
                    for resize in policies {
                        let p = Prepare {
                            size,
                            resize,
                            max_size: 128,
                            multiple: 8,
                            ..Prepare::default()
                        };
                        let out = prepare(&jpeg, &p);
                        assert!(
                            out.is_ok(),
                            "{w}x{h} to {size:?} {resize:?}: {:?}",
                            out.err()
                        );
                        let window = Some([0.13, 0.27, 0.61, 0.55]);
                        let mut buf = vec![0u8; size.0 as usize * size.1 as usize * 3];
                        let got = prepare_window(
                            &jpeg,
                            &Prepare {
                                resize: ResizePolicy::Stretch,
                                ..p
                            },
                            window,
                            &mut buf,
                        );
                        assert!(got.is_ok(), "{w}x{h} window to {size:?}: {:?}", got.err());
                    }
                }
            }
        }
    }
}
