//! Per-sample augmentation and the normalize/collate kernels.

use stokehold_image::{resize_with_thread_resizer, Filter, Geometry, Pixels};

use crate::plan::Rng;

/// Random augmentations, drawn from a stream keyed by
/// `(seed, epoch, sample)`: the result does not depend on worker count or
/// timing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Augment {
    /// Probability of a horizontal flip.
    pub hflip: f64,
    /// Random resized crop: `(scale range, aspect-ratio range)` of the crop
    /// window relative to the image, resized back to the image's size.
    pub random_resized_crop: Option<((f64, f64), (f64, f64))>,
}

impl Augment {
    /// Checks that the probability is in [0, 1] and the crop ranges are
    /// ordered and positive (scale at most 1).
    pub fn check(&self) -> Result<(), crate::Error> {
        let bad = |m: String| Err(crate::Error::InvalidArgument(m));
        if !(0.0..=1.0).contains(&self.hflip) {
            return bad(format!(
                "augment hflip is a probability between 0 and 1, got {}",
                self.hflip
            ));
        }
        if let Some(((s0, s1), (r0, r1))) = self.random_resized_crop {
            if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
                return bad(format!(
                    "augment random_resized_crop scale ({s0}, {s1}) must satisfy 0 < low <= high <= 1"
                ));
            }
            if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
                return bad(format!(
                    "augment random_resized_crop ratio ({r0}, {r1}) must satisfy 0 < low <= high"
                ));
            }
        }
        Ok(())
    }

    /// Whether any augmentation is on.
    pub fn is_active(&self) -> bool {
        self.hflip > 0.0 || self.random_resized_crop.is_some()
    }

    /// The window of a random resized crop of a `width × height` image, as
    /// fractions of it (`None` when the crop is off).
    pub(crate) fn crop_fraction(&self, rng: &mut Rng, width: u32, height: u32) -> Option<[f64; 4]> {
        let ((s0, s1), (r0, r1)) = self.random_resized_crop?;
        let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
        let [x, y, cw, ch] = crop_window(rng, w, h, (s0, s1), (r0, r1));
        Some([x / w, y / h, cw / w, ch / h])
    }

    /// Flips one `H × W × C` image and its boxes with probability `hflip`.
    pub(crate) fn flip(
        &self,
        rng: &mut Rng,
        pixels: &mut [u8],
        [_, w, c]: [usize; 3],
        boxes: &mut [[f32; 4]],
    ) {
        if self.hflip > 0.0 && rng.uniform() < self.hflip {
            for row in pixels.chunks_exact_mut(w * c) {
                for x in 0..w / 2 {
                    let (a, b) = (x * c, (w - 1 - x) * c);
                    for k in 0..c {
                        row.swap(a + k, b + k);
                    }
                }
            }
            for b in boxes.iter_mut() {
                *b = [w as f32 - b[2], b[1], w as f32 - b[0], b[3]];
            }
        }
    }
}

/// Resizes `window` (fractions of the image) of one `H × W × C` image onto
/// the whole of it, in place; boxes follow and those left without area are
/// dropped.
pub(crate) fn crop_resize(
    pixels: &mut [u8],
    [h, w, c]: [usize; 3],
    [x, y, cw, ch]: [f64; 4],
    boxes: &mut Vec<[f32; 4]>,
    labels: &mut Vec<i64>,
) {
    let (fw, fh) = (w as f64, h as f64);
    let geometry = Geometry::window([x * fw, y * fh, cw * fw, ch * fh], w as u32, h as u32);
    let src = Pixels {
        width: w as u32,
        height: h as u32,
        channels: c as u8,
        data: pixels.to_vec(),
    };
    resize_with_thread_resizer(Filter::Bilinear, &src, &geometry, 0, pixels)
        .expect("window inside the image, buffers sized");
    let mut kept = 0;
    for i in 0..boxes.len() {
        if let Some(b) = geometry.map_box(boxes[i]) {
            boxes[kept] = b;
            labels[kept] = labels[i];
            kept += 1;
        }
    }
    boxes.truncate(kept);
    labels.truncate(kept);
}

/// The crop window of a random resized crop, as torchvision draws it: up to
/// ten tries at a window of random area and aspect ratio inside the image,
/// else the largest centred window within the ratio range.
fn crop_window(rng: &mut Rng, w: f64, h: f64, scale: (f64, f64), ratio: (f64, f64)) -> [f64; 4] {
    let area = w * h;
    let (lr0, lr1) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * (scale.0 + rng.uniform() * (scale.1 - scale.0));
        let aspect = (lr0 + rng.uniform() * (lr1 - lr0)).exp();
        let cw = (target * aspect).sqrt().round();
        let ch = (target / aspect).sqrt().round();
        if cw > 0.0 && ch > 0.0 && cw <= w && ch <= h {
            let x = (rng.uniform() * (w - cw + 1.0)).floor().min(w - cw);
            let y = (rng.uniform() * (h - ch + 1.0)).floor().min(h - ch);
            return [x, y, cw, ch];
        }
    }
    let in_ratio = w / h;
    let (cw, ch) = if in_ratio < ratio.0 {
        (w, (w / ratio.0).round())
    } else if in_ratio > ratio.1 {
        ((h * ratio.1).round(), h)
    } else {
        (w, h)
    };
    [((w - cw) / 2.0).floor(), ((h - ch) / 2.0).floor(), cw, ch]
}

/// Converts one `H × W × C` uint8 image to float32 `(x - mean) / std` per
/// channel, channels last (`chw = false`) or first.
///
/// Channels-last works on blocks of 24 values (the least common multiple of
/// 3 channels and 8 AVX lanes) with the per-channel scale and bias laid out
/// to match, so the compiler vectorizes it to one multiply-add per lane.
pub(crate) fn normalize(
    src: &[u8],
    dst: &mut [f32],
    channels: usize,
    scale: &[f32],
    bias: &[f32],
    chw: bool,
) {
    if chw {
        let plane = src.len() / channels;
        for c in 0..channels {
            let (s, b) = (scale[c], bias[c]);
            let out = &mut dst[c * plane..(c + 1) * plane];
            for (o, px) in out.iter_mut().zip(src.chunks_exact(channels)) {
                *o = f32::from(px[c]) * s + b;
            }
        }
        return;
    }
    const BLOCK: usize = 24;
    let mut s = [0f32; BLOCK];
    let mut b = [0f32; BLOCK];
    for i in 0..BLOCK {
        s[i] = scale[i % channels];
        b[i] = bias[i % channels];
    }
    let mut src_blocks = src.chunks_exact(BLOCK);
    let mut dst_blocks = dst.chunks_exact_mut(BLOCK);
    for (i, o) in (&mut src_blocks).zip(&mut dst_blocks) {
        for k in 0..BLOCK {
            o[k] = f32::from(i[k]) * s[k] + b[k];
        }
    }
    // The tail is a multiple of `channels`, so the pattern still lines up.
    for (k, (o, &v)) in dst_blocks
        .into_remainder()
        .iter_mut()
        .zip(src_blocks.remainder())
        .enumerate()
    {
        *o = f32::from(v) * s[k] + b[k];
    }
}

/// Copies one `H × W × C` image to channels-first order.
pub(crate) fn to_chw(src: &[u8], dst: &mut [u8], channels: usize) {
    let plane = src.len() / channels;
    for (i, px) in src.chunks_exact(channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            dst[c * plane + i] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_matches_the_formula_in_both_layouts() {
        let src: Vec<u8> = (0..(5 * 7 * 3)).map(|i| (i * 37 % 256) as u8).collect();
        let (mean, std) = ([10.0f32, 20.0, 30.0], [2.0f32, 4.0, 8.0]);
        let scale: Vec<f32> = std.iter().map(|s| 1.0 / s).collect();
        let bias: Vec<f32> = mean.iter().zip(&std).map(|(m, s)| -m / s).collect();
        let mut hwc = vec![0f32; src.len()];
        normalize(&src, &mut hwc, 3, &scale, &bias, false);
        let mut chw = vec![0f32; src.len()];
        normalize(&src, &mut chw, 3, &scale, &bias, true);
        for (i, &v) in src.iter().enumerate() {
            let c = i % 3;
            let want = (f32::from(v) - mean[c]) / std[c];
            assert!((hwc[i] - want).abs() < 1e-5);
            assert!((chw[c * 35 + i / 3] - want).abs() < 1e-5);
        }
    }

    #[test]
    fn flip_mirrors_pixels_and_boxes() {
        let aug = Augment {
            hflip: 1.0,
            random_resized_crop: None,
        };
        let mut px = vec![1, 2, 3, 4, 5, 6]; // one row, 3 pixels, 2 channels
        let mut boxes = vec![[0.0, 0.0, 1.0, 1.0]];
        aug.flip(&mut Rng::keyed(&[1]), &mut px, [1, 3, 2], &mut boxes);
        assert_eq!(px, [5, 6, 3, 4, 1, 2]);
        assert_eq!(boxes, [[2.0, 0.0, 3.0, 1.0]]);
    }

    #[test]
    fn crop_windows_stay_inside_the_image() {
        let mut rng = Rng::keyed(&[7]);
        for _ in 0..1000 {
            let [x, y, w, h] = crop_window(&mut rng, 100.0, 60.0, (0.08, 1.0), (0.75, 4.0 / 3.0));
            assert!(x >= 0.0 && y >= 0.0 && w > 0.0 && h > 0.0 && x + w <= 100.0 && y + h <= 60.0);
        }
    }
}
