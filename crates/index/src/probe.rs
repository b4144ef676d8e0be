//! Reading an image's size and format from its header, without decoding.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Seek, SeekFrom};
use std::path::Path;

use imagesize::{ImageError, ImageType};
use stokehold_core::{FindingKind, ImageFormat};

/// The default pixel limit: 100 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Reads `(width, height, format)` from the header of the image at `path`.
///
/// On failure returns the finding kind and a sentence for the user: a
/// missing, empty, unreadable or unrecognised file, a format stokehold
/// cannot decode, or an image over `max_pixels`.
pub fn probe(
    path: &Path,
    max_pixels: u64,
) -> Result<(u32, u32, ImageFormat), (FindingKind, String)> {
    let file = File::open(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => (FindingKind::MissingFile, "file does not exist".to_string()),
        _ => (FindingKind::Unreadable, format!("cannot open: {e}")),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| (FindingKind::Unreadable, format!("cannot stat: {e}")))?;
    if meta.is_dir() {
        return Err((FindingKind::NotAnImage, "is a directory".into()));
    }
    if meta.len() == 0 {
        return Err((FindingKind::EmptyFile, "file is empty (0 bytes)".into()));
    }
    // 4 KiB covers the headers of PNG, GIF, BMP and WebP in one read; JPEG
    // and TIFF seek on to the marker that holds the size.
    let mut reader = BufReader::with_capacity(4096, file);
    let kind = imagesize::reader_type(&mut reader).map_err(|e| header_error(e, meta.len()))?;
    let format = match kind {
        ImageType::Jpeg => ImageFormat::Jpeg,
        ImageType::Png => ImageFormat::Png,
        ImageType::Gif => ImageFormat::Gif,
        ImageType::Bmp => ImageFormat::Bmp,
        ImageType::Webp => ImageFormat::Webp,
        ImageType::Tiff => ImageFormat::Tiff,
        other => {
            return Err((
                FindingKind::UnsupportedFormat,
                format!(
                    "{} images are not supported (JPEG, PNG, GIF, BMP, WebP, TIFF are)",
                    format_name(&other)
                ),
            ))
        }
    };
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| (FindingKind::Unreadable, format!("cannot read: {e}")))?;
    let size = imagesize::reader_size(&mut reader).map_err(|e| header_error(e, meta.len()))?;
    let (w, h) = (size.width as u64, size.height as u64);
    if w == 0 || h == 0 {
        return Err((
            FindingKind::NotAnImage,
            format!("{format} header says {w}×{h} pixels"),
        ));
    }
    if w > u64::from(u32::MAX) || h > u64::from(u32::MAX) || w * h > max_pixels {
        return Err((
            FindingKind::TooLarge,
            format!(
                "{w}×{h} = {} pixels is over the limit of {max_pixels}",
                w * h
            ),
        ));
    }
    Ok((w as u32, h as u32, format))
}

fn header_error(e: ImageError, len: u64) -> (FindingKind, String) {
    match e {
        ImageError::NotSupported => (
            FindingKind::NotAnImage,
            "not a recognised image format".into(),
        ),
        ImageError::CorruptedImage => (
            FindingKind::NotAnImage,
            format!("corrupt image header ({len} bytes)"),
        ),
        ImageError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => (
            FindingKind::NotAnImage,
            format!("file ends inside the image header ({len} bytes)"),
        ),
        ImageError::IoError(e) => (FindingKind::Unreadable, format!("cannot read: {e}")),
    }
}

fn format_name(kind: &ImageType) -> String {
    let debug = format!("{kind:?}");
    debug.split('(').next().unwrap_or(&debug).to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn each_failure_has_its_kind() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        assert_eq!(
            probe(&p("ok.png", &png(30, 20)), 1000).unwrap(),
            (30, 20, ImageFormat::Png)
        );
        assert_eq!(
            probe(&dir.path().join("nope.png"), 1000).unwrap_err().0,
            FindingKind::MissingFile
        );
        assert_eq!(
            probe(&p("empty.png", b""), 1000).unwrap_err().0,
            FindingKind::EmptyFile
        );
        assert_eq!(
            probe(&p("text.png", b"hello, world, not an image"), 1000)
                .unwrap_err()
                .0,
            FindingKind::NotAnImage
        );
        assert_eq!(
            probe(&p("big.png", &png(100, 100)), 9_999).unwrap_err().0,
            FindingKind::TooLarge
        );
        assert_eq!(
            probe(&p("cut.png", &png(30, 20)[..14]), 1000)
                .unwrap_err()
                .0,
            FindingKind::NotAnImage
        );
        assert_eq!(
            probe(dir.path(), 1000).unwrap_err().0,
            FindingKind::NotAnImage
        );
        let psd = p(
            "x.psd",
            b"8BPS\0\x01\0\0\0\0\0\0\0\x03\0\0\0\x10\0\0\0\x20\0\x08\0\x03",
        );
        assert_eq!(
            probe(&psd, 1000).unwrap_err().0,
            FindingKind::UnsupportedFormat
        );
    }
}
