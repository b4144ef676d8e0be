//! A grid of packed samples with class names and boxes: the picture a user
//! looks at to trust their preprocessing.

use std::path::{Path, PathBuf};

use stokehold_core::splitmix64;
use stokehold_image::draw::Canvas;
use stokehold_image::{decode, DecodeOptions};
use stokehold_store::{PackedDataset, Storage};

use crate::Error;

/// Options of [`preview`].
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// How many samples (at most the file's count).
    pub n: usize,
    /// Which samples: a seeded random choice, without repeats.
    pub seed: u64,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        PreviewOptions { n: 64, seed: 0 }
    }
}

/// Box colours, one per class (cycled): distinct on photos.
const PALETTE: [[u8; 3]; 8] = [
    [255, 59, 48],
    [52, 199, 89],
    [0, 122, 255],
    [255, 204, 0],
    [175, 82, 222],
    [255, 149, 0],
    [90, 200, 250],
    [255, 45, 85],
];

/// Tiles are drawn at least this wide and tall (small images are zoomed by
/// a whole factor): boxes and shapes must be visible in the grid.
const MIN_TILE: u32 = 160;

/// `text` cut to at most `width` pixels at `scale`, ending in ".." when cut.
fn fit_text(text: &str, width: u32, scale: u32) -> String {
    if Canvas::text_width(text, scale) <= width {
        return text.to_owned();
    }
    let fits = (width.saturating_sub(2) / (8 * scale.max(1))) as usize;
    let keep = fits.saturating_sub(2);
    let mut out: String = text.chars().take(keep).collect();
    out.push_str("..");
    out
}

/// Draws `options.n` samples of the packed file (or dataset directory) at `path` into a PNG grid at
/// `out`: each tile is the stored image (zoomed by a whole factor to at
/// least 160 pixels) with its boxes outlined in their class colour, and its
/// class name and index in a caption under it. Returns the sample indices
/// drawn, in tile order.
pub fn preview(path: &Path, out: &Path, options: &PreviewOptions) -> Result<Vec<usize>, Error> {
    let reader = PackedDataset::open(path, stokehold_core::Limits::DEFAULT_MAX_SOURCE_BYTES)?;
    preview_dataset(&reader, out, options)
}

/// [`preview`] of an opened dataset (a local one, or one in object storage).
pub fn preview_dataset(
    reader: &PackedDataset,
    out: &Path,
    options: &PreviewOptions,
) -> Result<Vec<usize>, Error> {
    let n = options.n.min(reader.len());
    // A seeded choice without repeats: sort by a hash of (seed, index).
    let mut chosen: Vec<usize> = (0..reader.len()).collect();
    chosen.sort_by_key(|&i| splitmix64(splitmix64(options.seed) ^ i as u64));
    chosen.truncate(n);
    chosen.sort_unstable();

    // Varying shapes: tiles sized for the largest sample drawn.
    let (mut h, mut w) = (1u32, 1u32);
    for &i in &chosen {
        let [sh, sw, _] = reader.sample_shape(i);
        h = h.max(sh as u32);
        w = w.max(sw as u32);
    }
    let c = reader.info().image_shape[2];
    let zoom = MIN_TILE.div_ceil(h.max(w)).max(1);
    let (tw, th) = (w * zoom, h * zoom);
    let scale = if tw >= 320 { 2 } else { 1 };
    let caption = 8 * scale + 6;
    let cols = (n as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (n as u32).div_ceil(cols).max(1);
    let gap = 6;
    let mut canvas = Canvas::new(
        cols * (tw + gap) + gap,
        rows * (th + caption + gap) + gap,
        [32, 32, 32],
    );
    let classes = &reader.info().attrs.classes;
    let mut bytes = Vec::new();
    for (tile, &i) in chosen.iter().enumerate() {
        let (x, y) = (
            (tile as u32 % cols) * (tw + gap) + gap,
            (tile as u32 / cols) * (th + caption + gap) + gap,
        );
        let [sh, sw, _] = reader.sample_shape(i);
        reader.read_bytes(i, &mut bytes)?;
        let pixels = match &reader.info().storage {
            Storage::Raw => std::mem::take(&mut bytes),
            Storage::Encoded { .. } => {
                let options = DecodeOptions {
                    channels: c as u8,
                    ..DecodeOptions::default()
                };
                decode(&bytes, &options)?.data
            }
        };
        canvas.blit_scaled(
            i64::from(x),
            i64::from(y),
            sw as u32,
            sh as u32,
            c as u8,
            &pixels,
            zoom,
        );
        let z = zoom as f32;
        let (boxes, labels) = reader.boxes(i);
        for (b, &l) in boxes.iter().zip(labels) {
            let color = PALETTE[l.max(0) as usize % PALETTE.len()];
            let shifted = [
                b[0] * z + x as f32,
                b[1] * z + y as f32,
                b[2] * z + x as f32,
                b[3] * z + y as f32,
            ];
            canvas.rect(shifted, 2, color);
        }
        let label = reader.label(i);
        let name = usize::try_from(label)
            .ok()
            .and_then(|l| classes.get(l))
            .map_or("(no class)", String::as_str);
        let color = if label >= 0 {
            PALETTE[label as usize % PALETTE.len()]
        } else {
            [255, 255, 255]
        };
        let text = fit_text(&format!("{name} #{i}"), tw, scale);
        canvas.text(
            i64::from(x),
            i64::from(y + th + 2),
            &text,
            scale,
            color,
            [0, 0, 0],
        );
    }
    image::save_buffer(
        out,
        &canvas.data,
        canvas.width,
        canvas.height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| Error::Output {
        path: PathBuf::from(out),
        message: e.to_string(),
    })?;
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_fit_their_tile() {
        assert_eq!(fit_text("circle #12", 160, 1), "circle #12");
        let cut = fit_text("a-very-long-class-name-indeed #123", 160, 1);
        assert!(
            Canvas::text_width(&cut, 1) <= 160 && cut.ends_with(".."),
            "{cut}"
        );
    }
}
