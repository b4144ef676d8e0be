//! Drawing rectangles and text on RGB buffers, for previews.

use font8x8::UnicodeFonts;

/// An RGB canvas.
#[derive(Debug, Clone)]
pub struct Canvas {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `height × width × 3` bytes.
    pub data: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `color`.
    pub fn new(width: u32, height: u32, color: [u8; 3]) -> Self {
        let data = color
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 3)
            .collect();
        Canvas {
            width,
            height,
            data,
        }
    }

    /// Sets one pixel; points outside the canvas are ignored.
    pub fn put(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.data[i..i + 3].copy_from_slice(&color);
    }

    /// Copies a `w × h` image with `channels` 1 or 3 to `(x, y)`.
    pub fn blit(&mut self, x: i64, y: i64, w: u32, h: u32, channels: u8, pixels: &[u8]) {
        self.blit_scaled(x, y, w, h, channels, pixels, 1);
    }

    /// Copies a `w × h` image with `channels` 1 or 3 to `(x, y)`, each pixel
    /// drawn as a `zoom × zoom` square (so small images stay legible and
    /// their pixels honest).
    #[allow(clippy::too_many_arguments)]
    pub fn blit_scaled(
        &mut self,
        x: i64,
        y: i64,
        w: u32,
        h: u32,
        channels: u8,
        pixels: &[u8],
        zoom: u32,
    ) {
        let z = i64::from(zoom.max(1));
        for row in 0..h {
            for col in 0..w {
                let i = (row as usize * w as usize + col as usize) * channels as usize;
                let c = if channels == 1 {
                    [pixels[i]; 3]
                } else {
                    [pixels[i], pixels[i + 1], pixels[i + 2]]
                };
                for dy in 0..z {
                    for dx in 0..z {
                        self.put(x + i64::from(col) * z + dx, y + i64::from(row) * z + dy, c);
                    }
                }
            }
        }
    }

    /// The width in pixels of `text` written at `scale`.
    pub fn text_width(text: &str, scale: u32) -> u32 {
        text.chars().count() as u32 * 8 * scale.max(1) + 2
    }

    /// Outlines a rectangle `[x0, y0, x1, y1]` (continuous coordinates) with
    /// a line `thickness` pixels wide, inside the box.
    pub fn rect(&mut self, b: [f32; 4], thickness: u32, color: [u8; 3]) {
        let (x0, y0) = (b[0].floor() as i64, b[1].floor() as i64);
        let (x1, y1) = (
            (b[2].ceil() as i64 - 1).max(x0),
            (b[3].ceil() as i64 - 1).max(y0),
        );
        for t in 0..i64::from(thickness) {
            for x in x0..=x1 {
                self.put(x, y0 + t, color);
                self.put(x, y1 - t, color);
            }
            for y in y0..=y1 {
                self.put(x0 + t, y, color);
                self.put(x1 - t, y, color);
            }
        }
    }

    /// Writes `text` in an 8×8 bitmap font at `(x, y)`, scaled by `scale`,
    /// on a filled background box so it reads on any image.
    pub fn text(
        &mut self,
        x: i64,
        y: i64,
        text: &str,
        scale: u32,
        color: [u8; 3],
        background: [u8; 3],
    ) {
        let s = i64::from(scale.max(1));
        let width = text.chars().count() as i64 * 8 * s;
        for yy in y..y + 8 * s + 2 {
            for xx in x..x + width + 2 {
                self.put(xx, yy, background);
            }
        }
        for (k, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(ch)
                .or_else(|| font8x8::BASIC_FONTS.get('?'))
                .unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        for dy in 0..s {
                            for dx in 0..s {
                                let px = x + 1 + (k as i64 * 8 + col) * s + dx;
                                self.put(px, y + 1 + row as i64 * s + dy, color);
                            }
                        }
                    }
                }
            }
        }
    }
}
