//! stokehold's own JSON-lines manifest: a header line, then one sample per
//! line. Paths under the manifest's folder are written relative to it, so a
//! dataset folder that holds its manifest can be moved as a whole.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{BoxAnn, Error, Manifest, Sample, SourceInfo};

/// The manifest format version this build writes (and the newest it reads).
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

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
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleLine {
    path: String,
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
            source: self.source.as_ref().map(|s| SourceLine {
                format: s.format.as_str().into(),
                path: s.path.to_string_lossy().into_owned(),
            }),
            num_samples: Some(self.samples.len()),
        };
        let io = |e| Error::io(path, e);
        serde_json::to_writer(&mut out, &header).map_err(|e| io(e.into()))?;
        out.write_all(b"\n").map_err(io)?;
        for s in &self.samples {
            let rel = s.path.strip_prefix(&base).unwrap_or(&s.path);
            let line = SampleLine {
                path: rel.to_string_lossy().into_owned(),
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

    /// Reads a JSON-lines manifest. Relative sample paths are resolved
    /// against the manifest's folder. Every line is checked: a bad line is
    /// an error naming its line number.
    pub fn load(path: &Path) -> Result<Manifest, Error> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let base = base_dir(path);
        let bad = |line: usize, reason: String| Error::Manifest {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut lines = BufReader::new(file).lines().enumerate();
        let header: Header = match lines.next() {
            None => return Err(bad(1, "empty file, expected a header line".into())),
            Some((_, line)) => {
                let line = line.map_err(|e| Error::io(path, e))?;
                serde_json::from_str(line.trim_start_matches('\u{feff}'))
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
        let n_classes = header.classes.len();
        let source = match header.source {
            Some(s) => Some(SourceInfo {
                format: s.format.parse().map_err(|e: Error| bad(1, e.to_string()))?,
                path: s.path.into(),
            }),
            None => None,
        };
        let mut manifest = Manifest::new(header.classes);
        manifest.source = source;
        for (i, line) in lines {
            let lineno = i + 1;
            let line = line.map_err(|e| Error::io(path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let s: SampleLine =
                serde_json::from_str(&line).map_err(|e| bad(lineno, e.to_string()))?;
            if let Some(l) = s.label {
                if l as usize >= n_classes {
                    return Err(bad(
                        lineno,
                        format!("label {l} is not below the {n_classes} classes"),
                    ));
                }
                if let Some(name) = &s.class {
                    if manifest.classes[l as usize] != *name {
                        return Err(bad(
                            lineno,
                            format!(
                                "class {name:?} does not match label {l} ({:?})",
                                manifest.classes[l as usize]
                            ),
                        ));
                    }
                }
            }
            if let Some(b) = s.boxes.iter().find(|b| b.label as usize >= n_classes) {
                return Err(bad(
                    lineno,
                    format!("box label {} is not below the {n_classes} classes", b.label),
                ));
            }
            let sample_path = PathBuf::from(&s.path);
            manifest.samples.push(Sample {
                path: if sample_path.is_absolute() {
                    sample_path
                } else {
                    base.join(sample_path)
                },
                label: s.label,
                width: s.width,
                height: s.height,
                format: s
                    .format
                    .parse()
                    .map_err(|e: Error| bad(lineno, e.to_string()))?,
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
            });
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
}
