//! What an image's header says without decoding its pixels: the EXIF
//! orientation (which decides the displayed size), and the size of a
//! top-down BMP, whose negative height generic readers take for 4 billion.
//!
//! Every reader here seeks past what it does not need, so probing a large
//! photo reads a few kilobytes.

use std::io::{self, Read, Seek, SeekFrom};

use image::metadata::Orientation;
use stokehold_core::ImageFormat;

/// What the marker segments of a JPEG say before its first scan.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JpegMarkers {
    /// EXIF orientation, 1 to 8 (1 when absent).
    pub orientation: u8,
    /// An Adobe APP14 segment is present: CMYK samples are stored inverted.
    pub adobe: bool,
}

/// EXIF data is at most one 64 KiB segment (JPEG) or chunk; a larger one
/// is not read.
const MAX_EXIF: u64 = 1 << 16;

fn orientation_of_exif(tiff: &[u8]) -> u8 {
    Orientation::from_exif_chunk(tiff).map_or(1, Orientation::to_exif)
}

fn read_exact_vec<R: Read>(r: &mut R, n: u64) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.take(n).read_to_end(&mut v)?;
    if (v.len() as u64) < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(v)
}

/// Walks a JPEG's marker segments from its start up to the first scan,
/// skipping each by its length (so nothing inside one is taken for a
/// marker). A file that ends early gives what was found so far.
pub fn jpeg_markers<R: Read + Seek>(r: &mut R) -> io::Result<JpegMarkers> {
    let mut found = JpegMarkers {
        orientation: 1,
        adobe: false,
    };
    r.seek(SeekFrom::Start(2))?;
    let mut seen_exif = false;
    let mut head = [0u8; 2];
    loop {
        if r.read_exact(&mut head).is_err() || head[0] != 0xFF {
            return Ok(found);
        }
        let mut marker = head[1];
        // Fill bytes: any number of 0xFF before the marker code.
        while marker == 0xFF {
            let mut b = [0u8];
            if r.read_exact(&mut b).is_err() {
                return Ok(found);
            }
            marker = b[0];
        }
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xDA | 0xD9 => return Ok(found),
            _ => {}
        }
        let mut len = [0u8; 2];
        if r.read_exact(&mut len).is_err() {
            return Ok(found);
        }
        let body = u64::from(u16::from_be_bytes(len)).saturating_sub(2);
        let wanted = (marker == 0xE1 && !seen_exif) || marker == 0xEE;
        if wanted && body <= MAX_EXIF {
            let Ok(data) = read_exact_vec(r, body) else {
                return Ok(found);
            };
            if marker == 0xE1 && data.starts_with(b"Exif\0\0") {
                seen_exif = true;
                found.orientation = orientation_of_exif(&data[6..]);
            } else if marker == 0xEE && data.starts_with(b"Adobe") {
                found.adobe = true;
            }
        } else {
            r.seek(SeekFrom::Current(body as i64))?;
        }
    }
}

/// The EXIF orientation (1 to 8; 1 when there is none) of an image whose
/// reader is at any position; it is read from the start. JPEG (APP1), PNG
/// (`eXIf` before the image data), WebP (`EXIF` chunk) and TIFF (IFD0)
/// carry it; other formats are always 1.
pub fn orientation<R: Read + Seek>(r: &mut R, format: ImageFormat) -> io::Result<u8> {
    match format {
        ImageFormat::Jpeg => Ok(jpeg_markers(r)?.orientation),
        ImageFormat::Png => png_orientation(r),
        ImageFormat::Webp => webp_orientation(r),
        ImageFormat::Tiff => {
            r.seek(SeekFrom::Start(0))?;
            let mut head = Vec::new();
            r.take(MAX_EXIF).read_to_end(&mut head)?;
            Ok(orientation_of_exif(&head))
        }
        _ => Ok(1),
    }
}

fn png_orientation<R: Read + Seek>(r: &mut R) -> io::Result<u8> {
    r.seek(SeekFrom::Start(8))?;
    let mut head = [0u8; 8];
    while r.read_exact(&mut head).is_ok() {
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        match &head[4..8] {
            b"eXIf" if len <= MAX_EXIF => {
                let data = read_exact_vec(r, len)?;
                return Ok(orientation_of_exif(&data));
            }
            // The image data starts: the decoder reads no eXIf after it.
            b"IDAT" | b"IEND" => return Ok(1),
            _ => {
                r.seek(SeekFrom::Current(len as i64 + 4))?;
            }
        }
    }
    Ok(1)
}

fn webp_orientation<R: Read + Seek>(r: &mut R) -> io::Result<u8> {
    r.seek(SeekFrom::Start(12))?;
    let mut head = [0u8; 8];
    while r.read_exact(&mut head).is_ok() {
        let len = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        if &head[..4] == b"EXIF" && len <= MAX_EXIF {
            let data = read_exact_vec(r, len)?;
            // Some writers keep JPEG's "Exif\0\0" prefix.
            let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(&data);
            return Ok(orientation_of_exif(tiff));
        }
        // Chunks are padded to an even length.
        r.seek(SeekFrom::Current((len + (len & 1)) as i64))?;
    }
    Ok(1)
}

/// `(width, height)` of a BMP from its first 26 bytes: a negative height
/// (a top-down bitmap) is its absolute value. `None` when the bytes are not
/// a BMP with a Windows (40-byte or larger) header.
pub fn bmp_size(head: &[u8]) -> Option<(u32, u32)> {
    if head.len() < 26 || !head.starts_with(b"BM") {
        return None;
    }
    let header_len = u32::from_le_bytes(head[14..18].try_into().ok()?);
    if header_len < 40 {
        // The old OS/2 header has unsigned 16-bit sizes: nothing to fix.
        return None;
    }
    let w = i32::from_le_bytes(head[18..22].try_into().ok()?);
    let h = i32::from_le_bytes(head[22..26].try_into().ok()?);
    Some((w.unsigned_abs(), h.unsigned_abs()))
}

/// Whether an orientation (1 to 8) swaps width and height.
pub fn swaps_axes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn exif_with_orientation(o: u8) -> Vec<u8> {
        // Little-endian TIFF header, IFD0 with one entry: Orientation (0x0112), SHORT, 1, o.
        let mut t = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        t.extend_from_slice(&[o, 0, 0, 0, 0, 0, 0, 0]);
        t
    }

    #[test]
    fn jpeg_markers_skip_segments_and_find_orientation_and_adobe() {
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend(exif_with_orientation(6));
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xFF, 0xD9];
        jpeg.extend_from_slice(&[0xFF, 0xE1]);
        jpeg.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        jpeg.extend_from_slice(&app1);
        jpeg.extend_from_slice(&[0xFF, 0xFF, 0xEE, 0x00, 0x07]);
        jpeg.extend_from_slice(b"Adobe");
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02]);
        let m = jpeg_markers(&mut Cursor::new(&jpeg)).unwrap();
        assert_eq!(
            m,
            JpegMarkers {
                orientation: 6,
                adobe: true
            },
            "the FF D9 inside APP0 is skipped, fill bytes too"
        );
        assert_eq!(
            jpeg_markers(&mut Cursor::new(&[0xFF, 0xD8]))
                .unwrap()
                .orientation,
            1
        );
        // Cut inside the EXIF segment: what was found so far.
        let cut = &jpeg[..12];
        assert_eq!(jpeg_markers(&mut Cursor::new(cut)).unwrap().orientation, 1);
    }

    #[test]
    fn png_and_webp_orientation() {
        let exif = exif_with_orientation(8);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&[0; 13 + 4]);
        png.extend_from_slice(&(exif.len() as u32).to_be_bytes());
        png.extend_from_slice(b"eXIf");
        png.extend_from_slice(&exif);
        png.extend_from_slice(&[0; 4]);
        assert_eq!(
            orientation(&mut Cursor::new(&png), ImageFormat::Png).unwrap(),
            8
        );

        let mut webp = b"RIFF\0\0\0\0WEBP".to_vec();
        webp.extend_from_slice(b"VP8X");
        webp.extend_from_slice(&10u32.to_le_bytes());
        webp.extend_from_slice(&[0; 10]);
        webp.extend_from_slice(b"EXIF");
        webp.extend_from_slice(&(exif.len() as u32).to_le_bytes());
        webp.extend_from_slice(&exif);
        assert_eq!(
            orientation(&mut Cursor::new(&webp), ImageFormat::Webp).unwrap(),
            8
        );
        assert_eq!(
            orientation(&mut Cursor::new(&webp), ImageFormat::Gif).unwrap(),
            1
        );
    }

    #[test]
    fn top_down_bmp_has_a_positive_height() {
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        bmp.extend_from_slice(&7i32.to_le_bytes());
        bmp.extend_from_slice(&(-48i32).to_le_bytes());
        assert_eq!(bmp_size(&bmp), Some((7, 48)));
        assert_eq!(bmp_size(b"GIF89a"), None);
    }
}
