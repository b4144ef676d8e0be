//! CSV: a header row with `path,label` and optionally
//! `x_min,y_min,x_max,y_max`; one row per box; rows of one path merge.

use std::collections::HashMap;
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

/// Reads the CSV at `path`. Relative image paths are resolved against
/// `image_root`, or the CSV's folder. Quoted fields, a UTF-8 byte-order mark
/// and CRLF line ends are handled.
///
/// Labels: without box columns the row's `label` is the sample's class. With
/// them, a row with coordinates adds a box of class `label`, a row with empty
/// coordinates gives the sample its class; a sample with boxes and no such
/// row takes the class of its largest box.
pub(crate) fn read(path: &Path, image_root: Option<&Path>) -> Result<Draft, Error> {
    let invalid = |reason: String| Error::InvalidSource {
        path: path.into(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|e| invalid(e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| invalid(e.to_string()))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let found = || headers.iter().collect::<Vec<_>>().join(",");
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
    let box_cols: Option<[usize; 4]> = match box_cols.iter().filter(|c| c.is_some()).count() {
        0 => None,
        4 => Some([
            box_cols[0].unwrap(),
            box_cols[1].unwrap(),
            box_cols[2].unwrap(),
            box_cols[3].unwrap(),
        ]),
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
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                draft.findings.push(
                    Finding::skip(
                        FindingKind::InvalidAnnotation,
                        path,
                        format!("unreadable row: {e}"),
                    )
                    .at(format!("line {line}")),
                );
                // An I/O error or bad UTF-8 ends the file as far as we can read it.
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let bad_row = |msg: String| {
            Finding::skip(FindingKind::InvalidAnnotation, path, msg).at(format!("line {line}"))
        };
        let field = |i: usize| record.get(i).unwrap_or("");
        let raw_path = field(path_col);
        if raw_path.is_empty() {
            draft.findings.push(bad_row("empty path".into()));
            continue;
        }
        let label = field(label_col);
        let bbox = match box_cols {
            None => None,
            Some(cols) => {
                let texts = cols.map(field);
                if texts.iter().all(|t| t.is_empty()) {
                    None
                } else {
                    match texts.map(str::parse::<f64>) {
                        [Ok(a), Ok(b), Ok(c), Ok(d)] => Some([a, b, c, d]),
                        _ => {
                            draft.findings.push(bad_row(format!(
                                "box coordinates {texts:?} are not all numbers"
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
        let image = base.join(raw_path);
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
                        "conflicting label {label:?} for {raw_path}; the first one is kept"
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
