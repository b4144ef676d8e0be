//! A grid of packed samples with class names and boxes: the picture a user
//! looks at to trust their preprocessing.

use std::path::{Path, PathBuf};

use stokehold_core::splitmix64;
use stokehold_image::draw::Canvas;
use stokehold_image::{decode, DecodeOptions};
use stokehold_store::{Storage, StoreReader};

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

/// Draws `options.n` samples of the packed file at `path` into a PNG grid at
/// `out`: each tile is the stored image with its boxes outlined in their
/// class colour, and its class name (and index) written on top. Returns the
/// sample indices drawn, in tile order.
pub fn preview(path: &Path, out: &Path, options: &PreviewOptions) -> Result<Vec<usize>, Error> {
    let reader = StoreReader::open(path)?;
    let n = options.n.min(reader.len());
    // A seeded choice without repeats: sort by a hash of (seed, index).
    let mut chosen: Vec<usize> = (0..reader.len()).collect();
    chosen.sort_by_key(|&i| splitmix64(splitmix64(options.seed) ^ i as u64));
    chosen.truncate(n);
    chosen.sort_unstable();

    let [h, w, c] = reader.info().image_shape;
    let (h, w) = (h as u32, w as u32);
    let cols = (n as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (n as u32).div_ceil(cols).max(1);
    let gap = 4;
    let mut canvas = Canvas::new(cols * (w + gap) + gap, rows * (h + gap) + gap, [32, 32, 32]);
    let scale = if w >= 160 { 2 } else { 1 };
    let classes = &reader.info().attrs.classes;
    let mut raw = vec![0u8; reader.sample_bytes()];
    for (tile, &i) in chosen.iter().enumerate() {
        let (x, y) = (
            (tile as u32 % cols) * (w + gap) + gap,
            (tile as u32 / cols) * (h + gap) + gap,
        );
        let pixels: &[u8] = match &reader.info().storage {
            Storage::Raw => {
                reader.read_raw(i, &mut raw)?;
                &raw
            }
            Storage::Encoded { .. } => {
                let bytes = reader.read_encoded(i)?;
                let options = DecodeOptions {
                    channels: c as u8,
                    ..DecodeOptions::default()
                };
                raw = decode(&bytes, &options)?.data;
                &raw
            }
        };
        canvas.blit(i64::from(x), i64::from(y), w, h, c as u8, pixels);
        let (boxes, labels) = reader.boxes(i);
        for (b, &l) in boxes.iter().zip(labels) {
            let color = PALETTE[l.max(0) as usize % PALETTE.len()];
            let shifted = [
                b[0] + x as f32,
                b[1] + y as f32,
                b[2] + x as f32,
                b[3] + y as f32,
            ];
            canvas.rect(shifted, 2, color);
        }
        let label = reader.label(i);
        let name = usize::try_from(label)
            .ok()
            .and_then(|l| classes.get(l))
            .map_or("(none)", String::as_str);
        let color = if label >= 0 {
            PALETTE[label as usize % PALETTE.len()]
        } else {
            [255, 255, 255]
        };
        canvas.text(
            i64::from(x),
            i64::from(y),
            &format!("{name} #{i}"),
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
