//! The class-per-folder tree: `root/<class>/…/<file>`.

use std::path::Path;

use stokehold_core::{Control, Finding, FindingKind};
use walkdir::WalkDir;

use crate::draft::{Candidate, Draft};
use crate::Error;

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Walks the tree in sorted order. Each top-level folder is a class (in
/// sorted order, even when empty); every file below it, at any depth, is a
/// sample of that class. Hidden files and folders are ignored; symbolic
/// links are followed, and a link back to an ancestor is a finding.
pub(crate) fn read(root: &Path, control: &Control) -> Result<Draft, Error> {
    if !root.is_dir() {
        return Err(Error::InvalidSource {
            path: root.into(),
            reason: "a folder source must be a directory".into(),
        });
    }
    let mut draft = Draft::default();
    let walker = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !is_hidden(e.file_name()));
    for entry in walker {
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                if let Some(ancestor) = e.loop_ancestor() {
                    let msg = format!(
                        "symbolic link loops back to {}; not followed",
                        ancestor.display()
                    );
                    draft
                        .findings
                        .push(Finding::skip(FindingKind::SymlinkLoop, path, msg));
                    continue;
                }
                if e.depth() == 0 {
                    return Err(Error::Io {
                        path,
                        error: e.into(),
                    });
                }
                let msg = format!(
                    "cannot read: {}",
                    e.io_error()
                        .map_or_else(|| e.to_string(), |io| io.to_string())
                );
                draft
                    .findings
                    .push(Finding::skip(FindingKind::Unreadable, path, msg));
                continue;
            }
        };
        let is_dir = entry.file_type().is_dir();
        if entry.depth() == 1 {
            if is_dir {
                draft
                    .classes
                    .push(entry.file_name().to_string_lossy().into_owned());
            } else {
                draft.findings.push(Finding::skip(
                    FindingKind::UnknownClass,
                    entry.path(),
                    "file is not inside a class folder",
                ));
            }
            continue;
        }
        if !is_dir {
            let label = draft.classes.len() as u32 - 1;
            draft
                .candidates
                .push(Candidate::new(entry.into_path(), Some(label)));
        }
    }
    Ok(draft)
}
