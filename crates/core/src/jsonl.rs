//! stokehold's own JSON-lines manifest: a header line, then one sample per
//! line. Paths under the manifest's folder are written relative to it, so a
//! dataset folder that holds its manifest can be moved as a whole.

use std::io::{BufReader, BufWriter, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::fsutil::{open_regular, read_line_capped};
use crate::{BoxAnn, Error, Limits, Manifest, Sample, SourceInfo};

/// The manifest format version this build writes (and the newest it reads).
///
/// Version 2: `width`/`height` are the size as displayed (EXIF orientation
/// applied), and a path that is not valid UTF-8 is kept exactly in
/// `path_b64`. Version 1 files are read as before.
pub const MANIFEST_FORMAT_VERSION: u32 = 2;

const FORMAT_TAG: &str = "stokehold-manifest";

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    format_version: u32,
    classes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<SourceLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_samples: Option<usize>,
}

#[derive(Serialize, Deserialize)]
struct SourceLine {
    format: String,
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_b64: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleLine {
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_b64: Option<String>,
    label: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
    width: u32,
    height: u32,
    format: String,
    #[serde(default)]
    boxes: Vec<BoxLine>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BoxLine {
    bbox: [f32; 4],
    label: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    iscrowd: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    difficult: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The folder relative paths are resolved against.
fn base_dir(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    abs.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A path as JSON: its text, and when it is not valid UTF-8 its exact bytes
/// in base64 (the text then has U+FFFD where bytes were invalid).
fn encode_path(p: &Path) -> (String, Option<String>) {
    match p.to_str() {
        Some(s) => (s.to_owned(), None),
        None => (
            p.to_string_lossy().into_owned(),
            Some(base64::engine::general_purpose::STANDARD.encode(p.as_os_str().as_bytes())),
        ),
    }
}

fn decode_path(text: String, b64: Option<String>) -> Result<PathBuf, String> {
    match b64 {
        None => Ok(PathBuf::from(text)),
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map(|bytes| PathBuf::from(std::ffi::OsString::from_vec(bytes)))
            .map_err(|e| format!("path_b64 is not base64: {e}")),
    }
}

impl Manifest {
    /// Writes the JSON-lines form to `path`, atomically: a temporary file
    /// beside it is written, flushed and renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let base = base_dir(path);
        let mut tmp = tempfile::Builder::new()
            .prefix(".stokehold-")
            .suffix(".tmp")
            // Readable like any file the user creates (0666 less the umask),
            // not the 0600 of a private temporary file: rename keeps the mode.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(&base)
            .map_err(|e| Error::io(&base, e))?;
        let mut out = BufWriter::new(tmp.as_file_mut());
        let header = Header {
            format: FORMAT_TAG.into(),
            format_version: MANIFEST_FORMAT_VERSION,
            classes: self.classes.clone(),
            source: self.source.as_ref().map(|s| {
                let (path, path_b64) = encode_path(&s.path);
                SourceLine {
                    format: s.format.as_str().into(),
                    path,
                    path_b64,
                }
            }),
            num_samples: Some(self.samples.len()),
        };
        let io = |e| Error::io(path, e);
        serde_json::to_writer(&mut out, &header).map_err(|e| io(e.into()))?;
        out.write_all(b"\n").map_err(io)?;
        for s in &self.samples {
            let rel = s.path.strip_prefix(&base).unwrap_or(&s.path);
            let (text, path_b64) = encode_path(rel);
            let line = SampleLine {
                path: text,
                path_b64,
                label: s.label,
                class: self.class_name(s.label).map(str::to_owned),
                width: s.width,
                height: s.height,
                format: s.format.as_str().into(),
                boxes: s
                    .boxes
                    .iter()
                    .map(|b| BoxLine {
                        bbox: b.bbox,
                        label: b.label,
                        iscrowd: b.iscrowd,
                        difficult: b.difficult,
                    })
                    .collect(),
            };
            serde_json::to_writer(&mut out, &line).map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)?;
        }
        out.flush().map_err(io)?;
        drop(out);
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Reads a JSON-lines manifest with the default [`Limits`].
    pub fn load(path: &Path) -> Result<Manifest, Error> {
        Manifest::load_with(path, &Limits::default())
    }

    /// Reads a JSON-lines manifest. Relative sample paths are resolved
    /// against the manifest's folder. Every line is checked: a bad line (or
    /// one longer than `limits.max_line_bytes`) is an error naming its line
    /// number. Only a regular file is read.
    pub fn load_with(path: &Path, limits: &Limits) -> Result<Manifest, Error> {
        let bad = |line: usize, reason: String| Error::Manifest {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let (file, _) = open_regular(path).map_err(|e| Error::io(path, e.into()))?;
        let base = base_dir(path);
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut lineno = 0usize;
        let mut next_line = |buf: &mut Vec<u8>| -> Result<Option<usize>, Error> {
            lineno += 1;
            match read_line_capped(&mut reader, buf, limits.max_line_bytes) {
                Ok(true) => Ok(Some(lineno)),
                Ok(false) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    Err(bad(lineno, crate::fsutil::io_message(&e)))
                }
                Err(e) => Err(Error::io(path, e)),
            }
        };
        let text = |line: usize, buf: &[u8]| -> Result<String, Error> {
            String::from_utf8(buf.to_vec()).map_err(|e| {
                bad(
                    line,
                    format!(
                        "not UTF-8 text (invalid byte at column {})",
                        e.utf8_error().valid_up_to() + 1
                    ),
                )
            })
        };
        let header: Header = match next_line(&mut buf)? {
            None => return Err(bad(1, "empty file, expected a header line".into())),
            Some(line) => {
                let t = text(line, &buf)?;
                serde_json::from_str(t.trim_start_matches('\u{feff}'))
                    .map_err(|e| bad(1, format!("not a stokehold manifest header: {e}")))?
            }
        };
        if header.format != FORMAT_TAG {
            return Err(bad(
                1,
                format!("format is {:?}, expected {FORMAT_TAG:?}", header.format),
            ));
        }
        if header.format_version > MANIFEST_FORMAT_VERSION {
            return Err(bad(
                1,
                format!(
                    "format version {} is newer than this stokehold reads ({MANIFEST_FORMAT_VERSION})",
                    header.format_version
                ),
            ));
        }
        let source = match header.source {
            Some(s) => Some(SourceInfo {
                format: crate::vocab::parse_choice::<crate::SourceFormat>(
                    "source format",
                    &s.format,
                )
                .map_err(|e| bad(1, e))?,
                path: decode_path(s.path, s.path_b64).map_err(|e| bad(1, e))?,
            }),
            None => None,
        };
        let mut manifest = Manifest::new(header.classes);
        manifest.source = source;
        while let Some(lineno) = next_line(&mut buf)? {
            let line = text(lineno, &buf)?;
            if line.trim().is_empty() {
                continue;
            }
            manifest
                .samples
                .push(parse_sample(&line, &manifest.classes, &base).map_err(|e| bad(lineno, e))?);
        }
        if let Some(n) = header.num_samples {
            if n != manifest.samples.len() {
                return Err(bad(
                    1,
                    format!(
                        "header says {n} samples, the file holds {} (truncated?)",
                        manifest.samples.len()
                    ),
                ));
            }
        }
        Ok(manifest)
    }
}

/// One sample line, checked against the classes; relative paths are
/// resolved against `base`. The error is the reason, for the caller to
/// place at its line.
fn parse_sample(line: &str, classes: &[String], base: &Path) -> Result<Sample, String> {
    let n_classes = classes.len();
    let s: SampleLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if let Some(l) = s.label {
        if l as usize >= n_classes {
            return Err(format!("label {l} is not below the {n_classes} classes"));
        }
        if let Some(name) = &s.class {
            if classes[l as usize] != *name {
                return Err(format!(
                    "class {name:?} does not match label {l} ({:?})",
                    classes[l as usize]
                ));
            }
        }
    }
    if let Some(b) = s.boxes.iter().find(|b| b.label as usize >= n_classes) {
        return Err(format!(
            "box label {} is not below the {n_classes} classes",
            b.label
        ));
    }
    if let Some(b) = s
        .boxes
        .iter()
        .find(|b| !b.bbox.iter().all(|v| v.is_finite()))
    {
        return Err(format!(
            "box {:?} has a coordinate that is not a finite number",
            b.bbox
        ));
    }
    let sample_path = decode_path(s.path, s.path_b64)?;
    Ok(Sample {
        path: if sample_path.is_absolute() {
            sample_path
        } else {
            base.join(sample_path)
        },
        label: s.label,
        width: s.width,
        height: s.height,
        format: crate::vocab::parse_choice::<crate::ImageFormat>("format", &s.format)?,
        boxes: s
            .boxes
            .into_iter()
            .map(|b| BoxAnn {
                bbox: b.bbox,
                label: b.label,
                iscrowd: b.iscrowd,
                difficult: b.difficult,
            })
            .collect(),
    })
}

/// A manifest read line by line on demand: opening it reads the header and
/// the byte address of every sample line (8 bytes a sample), and
/// [`ManifestFile::sample`] parses one line when it is asked for. A job that
/// goes through a manifest once (a pack) then needs memory for the samples
/// in flight, not for the whole manifest.
#[derive(Debug)]
pub struct ManifestFile {
    path: PathBuf,
    base: PathBuf,
    file: std::fs::File,
    classes: Vec<String>,
    source: Option<SourceInfo>,
    /// Byte offset of each sample line, then the file's length.
    offsets: Vec<u64>,
    /// Where blank lines come before a sample line: `(sample, blank lines
    /// before it in all)`, for the line numbers in errors (usually empty).
    blanks: Vec<(usize, usize)>,
    /// The longest line allowed (every line was checked at the open).
    max_line: u64,
}

impl ManifestFile {
    /// Opens a JSON-lines manifest: checks its header and every line's
    /// length and text encoding, and records where each sample line is.
    /// `as_source` records the file itself as the source (what a pack of it
    /// packs) instead of the source named in its header.
    pub fn open(path: &Path, limits: &Limits, as_source: bool) -> Result<ManifestFile, Error> {
        let bad = |line: usize, reason: String| Error::Manifest {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let (file, _) = open_regular(path).map_err(|e| Error::io(path, e.into()))?;
        let scan = file.try_clone().map_err(|e| Error::io(path, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, scan);
        let mut buf = Vec::new();
        let read = |reader: &mut BufReader<std::fs::File>, buf: &mut Vec<u8>, lineno: usize| {
            read_line_capped(reader, buf, limits.max_line_bytes).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    bad(lineno, crate::fsutil::io_message(&e))
                } else {
                    Error::io(path, e)
                }
            })
        };
        if !read(&mut reader, &mut buf, 1)? {
            return Err(bad(1, "empty file, expected a header line".into()));
        }
        let head_text = std::str::from_utf8(&buf).map_err(|_| bad(1, "not UTF-8 text".into()))?;
        let header: Header = serde_json::from_str(head_text.trim_start_matches('\u{feff}'))
            .map_err(|e| bad(1, format!("not a stokehold manifest header: {e}")))?;
        if header.format != FORMAT_TAG {
            return Err(bad(
                1,
                format!("format is {:?}, expected {FORMAT_TAG:?}", header.format),
            ));
        }
        if header.format_version > MANIFEST_FORMAT_VERSION {
            return Err(bad(
                1,
                format!(
                    "format version {} is newer than this stokehold reads ({MANIFEST_FORMAT_VERSION})",
                    header.format_version
                ),
            ));
        }
        let mut offset = buf.len() as u64;
        let (mut offsets, mut blanks) = (Vec::new(), Vec::new());
        let mut lineno = 1usize;
        loop {
            lineno += 1;
            if !read(&mut reader, &mut buf, lineno)? {
                break;
            }
            if std::str::from_utf8(&buf).is_err() {
                return Err(bad(lineno, "not UTF-8 text".into()));
            }
            if !buf.iter().all(u8::is_ascii_whitespace) {
                let blank = lineno - 2 - offsets.len();
                if blank > blanks.last().map_or(0, |&(_, b)| b) {
                    blanks.push((offsets.len(), blank));
                }
                offsets.push(offset);
            }
            offset += buf.len() as u64;
        }
        let samples = offsets.len();
        offsets.push(offset);
        offsets.shrink_to_fit();
        if let Some(n) = header.num_samples {
            if n != samples {
                return Err(bad(
                    1,
                    format!("header says {n} samples, the file holds {samples} (truncated?)"),
                ));
            }
        }
        let source = if as_source {
            Some(SourceInfo {
                format: crate::SourceFormat::Manifest,
                path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            })
        } else {
            match header.source {
                Some(s) => Some(SourceInfo {
                    format: crate::vocab::parse_choice::<crate::SourceFormat>(
                        "source format",
                        &s.format,
                    )
                    .map_err(|e| bad(1, e))?,
                    path: decode_path(s.path, s.path_b64).map_err(|e| bad(1, e))?,
                }),
                None => None,
            }
        };
        Ok(ManifestFile {
            path: path.to_path_buf(),
            base: base_dir(path),
            file,
            classes: header.classes,
            source,
            offsets,
            blanks,
            max_line: limits.max_line_bytes,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The 1-based line number of sample `index`.
    fn line_of(&self, index: usize) -> usize {
        let k = self.blanks.partition_point(|&(i, _)| i <= index);
        let blank = if k == 0 { 0 } else { self.blanks[k - 1].1 };
        index + 2 + blank
    }

    /// Class names.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Where it was indexed from (or the file itself, see [`ManifestFile::open`]).
    pub fn source(&self) -> Option<&SourceInfo> {
        self.source.as_ref()
    }

    /// Sample `index`, read and parsed now (one `pread`); an error names
    /// the line.
    pub fn sample(&self, index: usize) -> Result<Sample, Error> {
        use std::os::unix::fs::FileExt;
        // The line and any blank lines after it, up to the longest line allowed.
        let (start, next) = (self.offsets[index], self.offsets[index + 1]);
        let mut buf = vec![0u8; (next - start).min(self.max_line) as usize];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| Error::io(&self.path, e))?;
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            buf.truncate(end + 1);
        }
        let bad = |reason: String| Error::Manifest {
            path: self.path.clone(),
            line: self.line_of(index),
            reason,
        };
        let text = std::str::from_utf8(&buf)
            .map_err(|_| bad("not UTF-8 text (the file changed after it was opened?)".into()))?;
        parse_sample(text, &self.classes, &self.base).map_err(bad)
    }
}

impl crate::SampleSource for ManifestFile {
    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn source(&self) -> Option<&SourceInfo> {
        self.source.as_ref()
    }

    fn len(&self) -> usize {
        ManifestFile::len(self)
    }

    fn sample(&self, index: usize) -> Result<std::borrow::Cow<'_, Sample>, Error> {
        ManifestFile::sample(self, index).map(std::borrow::Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImageFormat, SourceFormat};

    fn sample_manifest(dir: &Path) -> Manifest {
        let mut m = Manifest::new(vec!["a".into(), "b \"quoted\"".into()]);
        m.source = Some(SourceInfo {
            format: SourceFormat::Csv,
            path: "/x/labels.csv".into(),
        });
        m.samples.push(Sample {
            path: dir.join("sub/ü 1.png"),
            label: Some(1),
            width: 3,
            height: 4,
            format: ImageFormat::Png,
            boxes: vec![
                BoxAnn::new([0.5, 1.0, 2.0, 3.25], 0),
                BoxAnn {
                    iscrowd: true,
                    difficult: true,
                    ..BoxAnn::new([0.0, 0.0, 1.0, 1.0], 1)
                },
            ],
        });
        m.samples.push(Sample {
            path: "/elsewhere/x.jpg".into(),
            label: None,
            width: 10,
            height: 20,
            format: ImageFormat::Jpeg,
            boxes: vec![],
        });
        m
    }

    #[test]
    fn round_trip_keeps_everything_and_relativizes_paths() {
        let dir = tempfile::tempdir().unwrap();
        let m = sample_manifest(dir.path());
        let path = dir.path().join("m.jsonl");
        m.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"path\":\"sub/ü 1.png\""), "{text}");
        assert!(text.contains("\"/elsewhere/x.jpg\""));
        let back = Manifest::load(&path).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        sample_manifest(dir.path()).save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = r#"{"path":"x.jpg","label":7,"width":1,"height":1,"format":"jpeg"}"#;
        std::fs::write(&path, lines.join("\n")).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("label 7"), "{err}");
    }

    #[test]
    fn truncated_file_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        sample_manifest(dir.path()).save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let first_two: Vec<&str> = text.lines().take(2).collect();
        std::fs::write(&path, first_two.join("\n")).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn newer_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        std::fs::write(
            &path,
            r#"{"format":"stokehold-manifest","format_version":99,"classes":[]}"#,
        )
        .unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }

    #[test]
    fn a_manifest_file_reads_each_sample_on_demand_like_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let m = sample_manifest(dir.path());
        m.save(&path).unwrap();
        let f = ManifestFile::open(&path, &Limits::default(), false).unwrap();
        assert_eq!((f.len(), f.classes()), (2, &m.classes[..]));
        assert_eq!(f.source(), m.source.as_ref());
        for i in 0..2 {
            assert_eq!(f.sample(i).unwrap(), m.samples[i]);
        }
        let own = ManifestFile::open(&path, &Limits::default(), true).unwrap();
        assert_eq!(
            own.source().unwrap().path,
            std::path::absolute(&path).unwrap()
        );
        // A bad line is found when its sample is read, named by its line.
        let text = std::fs::read_to_string(&path).unwrap();
        let broken = text.replace("\"label\":1", "\"label\":9");
        std::fs::write(&path, broken).unwrap();
        let f = ManifestFile::open(&path, &Limits::default(), false).unwrap();
        let err = f.sample(0).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("label 9"), "{err}");
    }

    #[test]
    fn a_manifest_file_with_blank_lines_names_the_right_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let m = sample_manifest(dir.path());
        m.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // header, blank, sample 0, two blanks, sample 1 with a bad label, blanks.
        let broken = lines[2].replace("\"width\":10", "\"width\":\"ten\"");
        let edited = format!("{}\n\n{}\n  \n\n{}\n\n\n", lines[0], lines[1], broken);
        std::fs::write(&path, &edited).unwrap();
        let longest = edited.lines().map(str::len).max().unwrap() as u64;
        let limits = Limits {
            max_line_bytes: longest + 1,
            ..Limits::default()
        };
        let f = ManifestFile::open(&path, &limits, false).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f.sample(0).unwrap(), m.samples[0]);
        let err = f.sample(1).unwrap_err().to_string();
        assert!(err.contains("line 6") && err.contains("\"ten\""), "{err}");
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 6"), "{err}");
    }

    #[test]
    fn non_utf8_paths_round_trip_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample_manifest(dir.path());
        let odd = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9 \xff.jpg"));
        m.samples[0].path = odd.clone();
        let path = dir.path().join("m.jsonl");
        m.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("path_b64"), "{text}");
        let back = Manifest::load(&path).unwrap();
        assert_eq!(back.samples[0].path, odd);
    }

    #[test]
    fn endless_or_binary_lines_are_refused_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        sample_manifest(dir.path()).save(&path).unwrap();
        let mut text = std::fs::read(&path).unwrap();
        let longest = text.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap();
        let limits = Limits {
            max_line_bytes: longest as u64 + 1,
            ..Limits::default()
        };
        text.extend_from_slice(&[b'x'; 500]);
        std::fs::write(&path, &text).unwrap();
        let err = Manifest::load_with(&path, &limits).unwrap_err().to_string();
        assert!(
            err.contains("line 4") && err.contains("max_line_bytes"),
            "{err}"
        );
        let mut bytes =
            b"{\"format\":\"stokehold-manifest\",\"format_version\":1,\"classes\":[]}\n".to_vec();
        bytes.extend_from_slice(b"{\"path\": \"\xff\"}\n");
        std::fs::write(&path, &bytes).unwrap();
        let err = Manifest::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("UTF-8"), "{err}");
        let err = Manifest::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
