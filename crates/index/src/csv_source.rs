//! CSV: a header row with `path,label` and optionally
//! `x_min,y_min,x_max,y_max`; one row per box; rows of one path merge.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use stokehold_core::{Finding, FindingKind};

use crate::draft::{Candidate, Draft, RawBox};
use crate::Error;

const BOX_COLUMNS: [&str; 4] = ["x_min", "y_min", "x_max", "y_max"];

/// Class names in order of first appearance.
#[derive(Default)]
struct Classes {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Classes {
    fn get_or_add(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        i
    }
}

/// Reads the CSV at `path` (a regular file of at most
/// `limits.max_source_bytes`). Relative image paths are resolved against
/// `image_root`, or the CSV's folder. Quoted fields, a UTF-8 byte-order mark
/// and CRLF line ends are handled.
///
/// Labels: without box columns the row's `label` is the sample's class. With
/// them, a row with coordinates adds a box of class `label`, a row with empty
/// coordinates gives the sample its class; a sample with boxes and no such
/// row takes the class of its largest box.
///
/// A bad row is one finding naming its line, and reading goes on with the
/// next line: a label that is not UTF-8 text, a quote that is never closed
/// (or a line break inside quotes, which no path or label holds), a row
/// longer than `limits.max_line_bytes`. A path may be any bytes, as file
/// names on Linux may.
pub(crate) fn read(
    path: &Path,
    image_root: Option<&Path>,
    limits: &stokehold_core::Limits,
) -> Result<Draft, Error> {
    let invalid = |reason: String| Error::InvalidSource {
        path: path.into(),
        reason,
    };
    let data =
        stokehold_core::fsutil::read_capped(path, limits.max_source_bytes, "max_source_bytes")
            .map_err(|e| Error::Io {
                path: path.into(),
                error: e.into(),
            })?;
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&data);
    let builder = {
        let mut b = csv::ReaderBuilder::new();
        b.trim(csv::Trim::All).flexible(true).has_headers(false);
        b
    };
    let mut rows = Rows {
        data,
        builder,
        offset: 0,
        line_base: 0,
        max_line: limits.max_line_bytes,
        reader: None,
    };
    let (headers, _) = match rows.next() {
        None => {
            return Err(invalid(
                "empty file: expected a header row with path,label".into(),
            ))
        }
        Some(Ok(row)) => row,
        Some(Err((line, msg))) => return Err(invalid(format!("line {line}: {msg}"))),
    };
    let headers: Vec<String> = headers
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let found = || headers.join(",");
    let path_col = column("path").ok_or_else(|| {
        invalid(format!(
            "no `path` column in the header (found: {})",
            found()
        ))
    })?;
    let label_col = column("label").ok_or_else(|| {
        invalid(format!(
            "no `label` column in the header (found: {})",
            found()
        ))
    })?;
    let box_cols: Vec<Option<usize>> = BOX_COLUMNS.iter().map(|c| column(c)).collect();
    let box_cols: Option<[usize; 4]> = match box_cols[..] {
        [None, None, None, None] => None,
        [Some(a), Some(b), Some(c), Some(d)] => Some([a, b, c, d]),
        _ => {
            return Err(invalid(format!(
                "box columns must be all of x_min,y_min,x_max,y_max or none (found: {})",
                found()
            )))
        }
    };
    let base = image_root
        .map(Path::to_path_buf)
        .unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());

    let mut draft = Draft::default();
    let mut classes = Classes::default();
    let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
    // Per candidate: whether a row named its class explicitly.
    let mut explicit: Vec<bool> = Vec::new();
    while let Some(row) = rows.next() {
        let (record, line) = match row {
            Ok(r) => r,
            Err((line, msg)) => {
                draft.findings.push(
                    Finding::skip(
                        FindingKind::InvalidAnnotation,
                        path,
                        format!("line {line}: {msg}"),
                    )
                    .at(format!("line {line}")),
                );
                continue;
            }
        };
        let bad_row = |msg: String| {
            Finding::skip(
                FindingKind::InvalidAnnotation,
                path,
                format!("line {line}: {msg}"),
            )
            .at(format!("line {line}"))
        };
        let field = |i: usize| record.get(i).unwrap_or(b"");
        let raw_path = field(path_col);
        if raw_path.is_empty() {
            draft.findings.push(bad_row("empty path".into()));
            continue;
        }
        let label = match std::str::from_utf8(field(label_col)) {
            Ok(l) => l,
            Err(e) => {
                draft.findings.push(bad_row(format!(
                    "the label is not UTF-8 text (invalid byte at column {})",
                    e.valid_up_to() + 1
                )));
                continue;
            }
        };
        let bbox = match box_cols {
            None => None,
            Some(cols) => {
                let texts = cols.map(|c| String::from_utf8_lossy(field(c)).into_owned());
                if texts.iter().all(|t| t.is_empty()) {
                    None
                } else {
                    match texts.clone().map(|t| t.parse::<f64>()) {
                        [Ok(a), Ok(b), Ok(c), Ok(d)] => Some([a, b, c, d]),
                        _ => {
                            draft.findings.push(bad_row(format!(
                                "box coordinates {} are not all numbers",
                                texts.join(", ")
                            )));
                            continue;
                        }
                    }
                }
            }
        };
        if bbox.is_some() && label.is_empty() {
            draft
                .findings
                .push(bad_row("a box row needs a label".into()));
            continue;
        }
        let label_idx = (!label.is_empty()).then(|| classes.get_or_add(label));
        let image = base.join(std::ffi::OsStr::from_bytes(raw_path));
        let idx = *by_path.entry(image.clone()).or_insert_with(|| {
            let mut c = Candidate::new(image, None);
            c.label_from_boxes = box_cols.is_some();
            draft.candidates.push(c);
            explicit.push(false);
            draft.candidates.len() - 1
        });
        let cand = &mut draft.candidates[idx];
        match bbox {
            Some(bbox) => cand.boxes.push(RawBox {
                bbox,
                label: label_idx.expect("checked non-empty above"),
                iscrowd: false,
                difficult: false,
            }),
            None => {
                if explicit[idx] && cand.label != label_idx {
                    draft.findings.push(bad_row(format!(
                        "conflicting label {label:?} for {}; the first one is kept",
                        String::from_utf8_lossy(raw_path)
                    )));
                    continue;
                }
                cand.label = label_idx;
                explicit[idx] = true;
            }
        }
    }
    draft.classes = classes.names;
    Ok(draft)
}

/// The CSV's records with their 1-based line numbers. A record that the
/// parser cannot end where its line ends (an unterminated quote swallows
/// the rest of the file as one field) is an error for its line, and
/// parsing starts again on the next line, so one bad row costs one row.
struct Rows<'a> {
    data: &'a [u8],
    builder: csv::ReaderBuilder,
    /// Byte offset of the current parser's input in `data`.
    offset: usize,
    /// Lines before the current parser's input.
    line_base: u64,
    max_line: u64,
    reader: Option<csv::Reader<&'a [u8]>>,
}

impl Rows<'_> {
    fn restart_after(&mut self, start: usize, line: u64) {
        let next = self.data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.data.len(), |i| start + i + 1);
        self.offset = next;
        self.line_base = line;
        self.reader = None;
    }

    fn next(&mut self) -> Option<Result<(csv::ByteRecord, u64), (u64, String)>> {
        if self.offset >= self.data.len() {
            return None;
        }
        let data = self.data;
        let offset = self.offset;
        let reader = self
            .reader
            .get_or_insert_with(|| self.builder.from_reader(&data[offset..]));
        let mut record = csv::ByteRecord::new();
        let result = reader.read_byte_record(&mut record);
        let end = offset + reader.position().byte() as usize;
        let (start, line) = match record.position() {
            Some(p) => (offset + p.byte() as usize, self.line_base + p.line()),
            None => (offset, self.line_base + 1),
        };
        match result {
            Ok(false) => {
                self.offset = data.len();
                None
            }
            Ok(true) => {
                let spans_lines = record
                    .iter()
                    .any(|f| f.contains(&b'\n') || f.contains(&b'\r'));
                if spans_lines {
                    self.restart_after(start, line);
                    return Some(Err((
                        line,
                        "a quote is not closed on its line (or a quoted field holds a line break); \
                         the row is skipped"
                            .into(),
                    )));
                }
                if (end - start) as u64 > self.max_line {
                    return Some(Err((
                        line,
                        format!(
                            "row longer than the limit of {} bytes (max_line_bytes)",
                            self.max_line
                        ),
                    )));
                }
                Some(Ok((record, line)))
            }
            Err(e) => {
                self.restart_after(start, line);
                Some(Err((line, format!("unreadable row: {e}"))))
            }
        }
    }
}
