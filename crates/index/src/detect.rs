//! Telling a source's format from its path.

use std::io::Read;
use std::path::Path;

use stokehold_core::SourceFormat;

use crate::Error;

/// The first 8 bytes of every HDF5 file.
const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Detects the format of `source`:
///
/// - a folder with an `Annotations/` subfolder is Pascal VOC, any other
///   folder a class-per-folder tree;
/// - a file named `*.csv` is CSV, `*.json` COCO, `*.jsonl` / `*.ndjson` a
///   stokehold manifest;
/// - any other file is sniffed: a first line naming `stokehold-manifest` is a
///   manifest, a leading `{` COCO, anything else CSV.
pub fn detect_format(source: &Path) -> Result<SourceFormat, Error> {
    let meta = std::fs::metadata(source).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            path: source.into(),
        },
        _ => Error::Io {
            path: source.into(),
            error: e,
        },
    })?;
    if meta.is_dir() {
        return Ok(if source.join("Annotations").is_dir() {
            SourceFormat::Voc
        } else {
            SourceFormat::Folder
        });
    }
    let ext = source
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("h5" | "hdf5" | "he5") => {
            return Err(Error::InvalidSource {
                path: source.into(),
                reason: "is an HDF5 file (a packed dataset?), not an index source; open it with \
                         stokehold.Dataset or stokehold inspect"
                    .into(),
            })
        }
        Some("csv") => return Ok(SourceFormat::Csv),
        Some("json") => return Ok(SourceFormat::Coco),
        Some("jsonl" | "ndjson") => return Ok(SourceFormat::Manifest),
        _ => {}
    }
    let mut head = [0u8; 512];
    let (mut file, _) = stokehold_core::fsutil::open_regular(source).map_err(|e| Error::Io {
        path: source.into(),
        error: e.into(),
    })?;
    let n = file.read(&mut head).map_err(|e| Error::Io {
        path: source.into(),
        error: e,
    })?;
    if head[..n].starts_with(HDF5_MAGIC) {
        return Err(Error::InvalidSource {
            path: source.into(),
            reason: "is an HDF5 file (a packed dataset?), not an index source; open it with \
                     stokehold.Dataset or stokehold inspect"
                .into(),
        });
    }
    let text = String::from_utf8_lossy(&head[..n]);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let first_line = text.lines().next().unwrap_or("");
    Ok(if first_line.contains("\"stokehold-manifest\"") {
        SourceFormat::Manifest
    } else if text.starts_with('{') {
        SourceFormat::Coco
    } else {
        SourceFormat::Csv
    })
}
