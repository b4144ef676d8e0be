//! Where the source lands in the output, for pixels and boxes alike.

/// How an image is fitted to the output size.
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
pub enum ResizePolicy {
    /// Scale each axis independently to fill the output (aspect changes).
    #[default]
    Stretch,
    /// Keep the aspect: scale to fit inside, centre, pad with a fill value.
    Letterbox,
    /// Keep the aspect: scale the shorter side to the output, centre-crop the rest.
    Crop,
    /// Keep the aspect and the sample's own shape: the longer side at most
    /// a maximum (see [`fit_size`]); samples of one dataset differ in shape.
    Fit,
}

/// The output size of the `fit` policy for a `src_w × src_h` image: the
/// aspect kept, the longer side at most `max_size` (never enlarged), then
/// each side rounded to the nearest multiple of `multiple` (at least one
/// multiple, at most `max_size` rounded down to one) by a slight resize.
/// Returns `(width, height)`.
pub fn fit_size(src_w: u32, src_h: u32, max_size: u32, multiple: u32) -> (u32, u32) {
    let (sw, sh) = (f64::from(src_w.max(1)), f64::from(src_h.max(1)));
    let scale = (f64::from(max_size) / sw.max(sh)).min(1.0);
    let m = multiple.max(1);
    let top = (max_size / m).max(1) * m;
    let round = |v: f64| -> u32 {
        let v = v.round().max(1.0) as u32;
        if m == 1 {
            v.min(max_size.max(1))
        } else {
            (((v + m / 2) / m).max(1) * m).min(top)
        }
    };
    (round(sw * scale), round(sh * scale))
}

impl ResizePolicy {
    /// `"stretch"`, `"letterbox"` or `"crop"`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An affine map from a source window to a destination rectangle of the
/// output: `x_out = dst.x + (x_src - src.x) × dst.w / src.w`, same for y.
///
/// Pixels are resampled from `src` into `dst`; output pixels outside `dst`
/// get the fill value. Coordinates are continuous: pixel `(i, j)` covers
/// `[i, i+1) × [j, j+1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Source window `[x, y, w, h]` in source pixels.
    pub src: [f64; 4],
    /// Destination rectangle `[x, y, w, h]` in output pixels.
    pub dst: [u32; 4],
    /// Output width.
    pub out_width: u32,
    /// Output height.
    pub out_height: u32,
}

impl Geometry {
    /// The geometry of `policy` for a `src_w × src_h` image and a
    /// `out_w × out_h` output.
    pub fn new(policy: ResizePolicy, src_w: u32, src_h: u32, out_w: u32, out_h: u32) -> Geometry {
        let (sw, sh) = (f64::from(src_w), f64::from(src_h));
        let (ow, oh) = (f64::from(out_w), f64::from(out_h));
        let full_src = [0.0, 0.0, sw, sh];
        let full_dst = [0, 0, out_w, out_h];
        let (src, dst) = match policy {
            // Fit: the caller sized the output with `fit_size`, so the whole
            // image fills it (an aspect change of at most a rounding).
            ResizePolicy::Stretch | ResizePolicy::Fit => (full_src, full_dst),
            ResizePolicy::Letterbox => {
                let scale = (ow / sw).min(oh / sh);
                let w = ((sw * scale).round() as u32).clamp(1, out_w);
                let h = ((sh * scale).round() as u32).clamp(1, out_h);
                (full_src, [(out_w - w) / 2, (out_h - h) / 2, w, h])
            }
            ResizePolicy::Crop => {
                let scale = (ow / sw).max(oh / sh);
                let (cw, ch) = ((ow / scale).min(sw), (oh / scale).min(sh));
                ([(sw - cw) / 2.0, (sh - ch) / 2.0, cw, ch], full_dst)
            }
        };
        Geometry {
            src,
            dst,
            out_width: out_w,
            out_height: out_h,
        }
    }

    /// A geometry that maps the window `src` (`[x, y, w, h]` in source
    /// pixels) onto the whole output, as a random resized crop does.
    pub fn window(src: [f64; 4], out_w: u32, out_h: u32) -> Geometry {
        Geometry {
            src,
            dst: [0, 0, out_w, out_h],
            out_width: out_w,
            out_height: out_h,
        }
    }

    /// Maps a source point to output coordinates.
    pub fn map_point(&self, x: f64, y: f64) -> (f64, f64) {
        let [sx, sy, sw, sh] = self.src;
        let [dx, dy, dw, dh] = self.dst.map(f64::from);
        (dx + (x - sx) * dw / sw, dy + (y - sy) * dh / sh)
    }

    /// Maps a box `[x_min, y_min, x_max, y_max]` from source to output
    /// pixels and clips it to the destination rectangle; `None` when
    /// nothing of it is left.
    pub fn map_box(&self, b: [f32; 4]) -> Option<[f32; 4]> {
        let (x0, y0) = self.map_point(f64::from(b[0]), f64::from(b[1]));
        let (x1, y1) = self.map_point(f64::from(b[2]), f64::from(b[3]));
        let [dx, dy, dw, dh] = self.dst.map(f64::from);
        let clip = |v: f64, lo: f64, hi: f64| v.clamp(lo, hi);
        let (x0, x1) = (clip(x0, dx, dx + dw), clip(x1, dx, dx + dw));
        let (y0, y1) = (clip(y0, dy, dy + dh), clip(y1, dy, dy + dh));
        (x1 > x0 && y1 > y0).then_some([x0 as f32, y0 as f32, x1 as f32, y1 as f32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_scales_each_axis() {
        let g = Geometry::new(ResizePolicy::Stretch, 400, 200, 100, 100);
        assert_eq!(
            g.map_box([40.0, 20.0, 200.0, 100.0]),
            Some([10.0, 10.0, 50.0, 50.0])
        );
    }

    #[test]
    fn letterbox_centres_and_pads() {
        let g = Geometry::new(ResizePolicy::Letterbox, 400, 200, 100, 100);
        assert_eq!(g.dst, [0, 25, 100, 50]);
        assert_eq!(
            g.map_box([0.0, 0.0, 400.0, 200.0]),
            Some([0.0, 25.0, 100.0, 75.0])
        );
        let tall = Geometry::new(ResizePolicy::Letterbox, 100, 300, 90, 90);
        assert_eq!(tall.dst, [30, 0, 30, 90]);
    }

    #[test]
    fn crop_keeps_the_centre_and_clips_boxes() {
        let g = Geometry::new(ResizePolicy::Crop, 400, 200, 100, 100);
        assert_eq!(g.src, [100.0, 0.0, 200.0, 200.0]);
        assert_eq!(
            g.map_box([0.0, 0.0, 150.0, 100.0]),
            Some([0.0, 0.0, 25.0, 50.0])
        );
        assert_eq!(
            g.map_box([0.0, 0.0, 90.0, 100.0]),
            None,
            "outside the crop: vanishes"
        );
    }

    #[test]
    fn fit_keeps_the_aspect_under_a_maximum_and_rounds_to_multiples() {
        assert_eq!(fit_size(4000, 3000, 512, 1), (512, 384));
        assert_eq!(fit_size(300, 200, 512, 1), (300, 200), "never enlarged");
        assert_eq!(fit_size(4000, 3000, 512, 32), (512, 384));
        assert_eq!(fit_size(1000, 333, 512, 32), (512, 160), "170.5 → 160");
        assert_eq!(
            fit_size(100, 5000, 512, 32),
            (32, 512),
            "at least one multiple"
        );
        assert_eq!(
            fit_size(500, 500, 500, 32),
            (480, 480),
            "at most the largest multiple under max_size"
        );
    }

    #[test]
    fn policy_names_round_trip() {
        for p in [
            ResizePolicy::Stretch,
            ResizePolicy::Letterbox,
            ResizePolicy::Crop,
            ResizePolicy::Fit,
        ] {
            assert_eq!(p.as_str().parse::<ResizePolicy>().unwrap(), p);
        }
        assert!("squash".parse::<ResizePolicy>().is_err());
    }
}
