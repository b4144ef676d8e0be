//! Per-sample problems met while indexing or packing.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// The kind of a [`Finding`]; its `snake_case` name is stable and appears in
/// reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FindingKind {
    /// The image file does not exist.
    MissingFile,
    /// The image file has zero bytes.
    EmptyFile,
    /// The file could not be opened or read (permissions, I/O error).
    Unreadable,
    /// The file is not a recognised image.
    NotAnImage,
    /// The file is an image in a format stokehold cannot decode.
    UnsupportedFormat,
    /// The image has more pixels than the limit (decompression-bomb guard).
    TooLarge,
    /// A box reached outside the image and was clipped to it.
    BoxClipped,
    /// A box had no area (after clipping) or a non-finite coordinate and was dropped.
    BoxDegenerate,
    /// A label names no known class, or a file sits outside any class folder.
    UnknownClass,
    /// The same image path appears twice; the later one is skipped.
    DuplicatePath,
    /// An annotation record could not be parsed.
    InvalidAnnotation,
    /// A symbolic link leads back to one of its own ancestors.
    SymlinkLoop,
}

impl FindingKind {
    /// The stable `snake_case` name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::MissingFile => "missing_file",
            FindingKind::EmptyFile => "empty_file",
            FindingKind::Unreadable => "unreadable",
            FindingKind::NotAnImage => "not_an_image",
            FindingKind::UnsupportedFormat => "unsupported_format",
            FindingKind::TooLarge => "too_large",
            FindingKind::BoxClipped => "box_clipped",
            FindingKind::BoxDegenerate => "box_degenerate",
            FindingKind::UnknownClass => "unknown_class",
            FindingKind::DuplicatePath => "duplicate_path",
            FindingKind::InvalidAnnotation => "invalid_annotation",
            FindingKind::SymlinkLoop => "symlink_loop",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one sample, annotation or file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingKind,
    /// The file it concerns (the image, or the annotation file).
    pub path: PathBuf,
    /// Where inside an annotation file, when it matters (`"line 12"`,
    /// `"annotation 57"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// A sentence for a person.
    pub message: String,
    /// Whether the sample was left out because of it (otherwise it was
    /// repaired, e.g. a box clipped, and kept).
    pub skipped: bool,
}

impl Finding {
    /// A finding that left the sample out.
    pub fn skip(kind: FindingKind, path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Finding {
            kind,
            path: path.into(),
            location: None,
            message: message.into(),
            skipped: true,
        }
    }

    /// A finding that repaired the sample and kept it.
    pub fn repair(kind: FindingKind, path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Finding {
            skipped: false,
            ..Finding::skip(kind, path, message)
        }
    }

    /// The same finding, located inside its file.
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(loc) = &self.location {
            write!(f, " ({loc})")?;
        }
        write!(f, ": {}: {}", self.kind, self.message)
    }
}
