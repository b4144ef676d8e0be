//! Reading an image's size and format from its header, without decoding.

use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

use imagesize::{ImageError, ImageType};
use stokehold_core::fsutil::{open_regular, ReadError};
use stokehold_core::{FindingKind, ImageFormat, Limits};
use stokehold_image::header;

/// The default pixel limit: 100 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = Limits::DEFAULT_MAX_PIXELS;

/// What an image's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Width as displayed (EXIF orientation applied).
    pub width: u32,
    /// Height as displayed.
    pub height: u32,
    /// The encoded format.
    pub format: ImageFormat,
    /// EXIF orientation, 1 to 8 (1: none).
    pub orientation: u8,
}

/// Reads the size (as displayed: an EXIF orientation of 5 to 8 swaps width
/// and height), format and orientation of the image at `path` from its
/// header.
///
/// On failure returns the finding kind and a sentence for the user: a
/// missing, empty, unreadable or unrecognised file, something that is not a
/// regular file (a FIFO is never opened for a blocking read), a format
/// stokehold cannot decode, or an image over `limits.max_pixels` or
/// `limits.max_file_bytes`.
pub fn probe(path: &Path, limits: &Limits) -> Result<Probe, (FindingKind, String)> {
    let (file, len) = open_regular(path).map_err(|e| match e {
        e if e.is_not_found() => (FindingKind::MissingFile, "file does not exist".to_string()),
        ReadError::NotRegular("a directory") => (FindingKind::NotAnImage, "is a directory".into()),
        ReadError::NotRegular(what) => (
            FindingKind::Unreadable,
            format!("is {what}, not a regular file; not opened"),
        ),
        other => (FindingKind::Unreadable, format!("cannot open: {other}")),
    })?;
    if len == 0 {
        return Err((FindingKind::EmptyFile, "file is empty (0 bytes)".into()));
    }
    if len > limits.max_file_bytes {
        return Err((
            FindingKind::TooLarge,
            format!(
                "file is {len} bytes, over the limit of {} (max_file_bytes)",
                limits.max_file_bytes
            ),
        ));
    }
    // 4 KiB covers the headers of PNG, GIF, BMP and WebP in one read; JPEG
    // and TIFF seek on to the marker that holds the size.
    let mut reader = BufReader::with_capacity(4096, file);
    let kind = imagesize::reader_type(&mut reader).map_err(|e| header_error(e, len))?;
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
    let unreadable = |e: std::io::Error| (FindingKind::Unreadable, format!("cannot read: {e}"));
    reader.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let (w, h) = if format == ImageFormat::Bmp {
        let mut head = [0u8; 26];
        reader
            .read_exact(&mut head)
            .map_err(|e| header_error(ImageError::IoError(e), len))?;
        header::bmp_size(&head).ok_or((
            FindingKind::NotAnImage,
            format!("corrupt BMP header ({len} bytes)"),
        ))?
    } else {
        let size = imagesize::reader_size(&mut reader).map_err(|e| header_error(e, len))?;
        (
            u32::try_from(size.width).unwrap_or(u32::MAX),
            u32::try_from(size.height).unwrap_or(u32::MAX),
        )
    };
    let (w, h) = (u64::from(w), u64::from(h));
    if w == 0 || h == 0 {
        return Err((
            FindingKind::NotAnImage,
            format!("{format} header says {w}×{h} pixels"),
        ));
    }
    if w * h > limits.max_pixels {
        return Err((
            FindingKind::TooLarge,
            format!(
                "{w}×{h} = {} pixels is over the limit of {} (max_pixels)",
                w * h,
                limits.max_pixels
            ),
        ));
    }
    let orientation = header::orientation(&mut reader, format).map_err(unreadable)?;
    let (w, h) = if header::swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    Ok(Probe {
        width: w as u32,
        height: h as u32,
        format,
        orientation,
    })
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

    fn lim(max_pixels: u64) -> Limits {
        Limits {
            max_pixels,
            ..Limits::default()
        }
    }

    #[test]
    fn each_failure_has_its_kind() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let ok = probe(&p("ok.png", &png(30, 20)), &lim(1000)).unwrap();
        assert_eq!((ok.width, ok.height, ok.format), (30, 20, ImageFormat::Png));
        assert_eq!(
            probe(&dir.path().join("nope.png"), &lim(1000))
                .unwrap_err()
                .0,
            FindingKind::MissingFile
        );
        assert_eq!(
            probe(&p("empty.png", b""), &lim(1000)).unwrap_err().0,
            FindingKind::EmptyFile
        );
        assert_eq!(
            probe(&p("text.png", b"hello, world, not an image"), &lim(1000))
                .unwrap_err()
                .0,
            FindingKind::NotAnImage
        );
        assert_eq!(
            probe(&p("big.png", &png(100, 100)), &lim(9_999))
                .unwrap_err()
                .0,
            FindingKind::TooLarge
        );
        assert_eq!(
            probe(&p("cut.png", &png(30, 20)[..14]), &lim(1000))
                .unwrap_err()
                .0,
            FindingKind::NotAnImage
        );
        assert_eq!(
            probe(dir.path(), &lim(1000)).unwrap_err().0,
            FindingKind::NotAnImage
        );
        let psd = p(
            "x.psd",
            b"8BPS\0\x01\0\0\0\0\0\0\0\x03\0\0\0\x10\0\0\0\x20\0\x08\0\x03",
        );
        assert_eq!(
            probe(&psd, &lim(1000)).unwrap_err().0,
            FindingKind::UnsupportedFormat
        );
    }
}
