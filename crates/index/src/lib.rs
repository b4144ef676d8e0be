//! Builds a stokehold [`Manifest`] from a dataset source.
//!
//! Sources are detected from the path ([`detect_format`]) or named with
//! [`IndexOptions::format`]:
//!
//! | source | layout | class order |
//! |---|---|---|
//! | folder | `root/<class>/…/<file>` | sorted folder names |
//! | CSV | `path,label[,x_min,y_min,x_max,y_max]`, one row per box | first appearance |
//! | COCO | instances JSON: `images`, `annotations`, `categories` | category id |
//! | VOC | `Annotations/*.xml` with `JPEGImages/` | sorted names |
//! | manifest | stokehold JSON-lines | as in its header |
//!
//! Each image's width, height and format are read from its header, without
//! decoding pixels, on a pool of threads. Every problem becomes a
//! [`Finding`]; by default the sample is skipped (or its box repaired) and
//! indexing goes on; with [`IndexOptions::strict`] any finding fails the run.
//!
//! ```
//! use stokehold_core::Control;
//! use stokehold_index::{index, IndexOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::create_dir(dir.path().join("cat")).unwrap();
//! // A PNG header is all that indexing reads.
//! let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
//! png.extend_from_slice(&64u32.to_be_bytes());
//! png.extend_from_slice(&48u32.to_be_bytes());
//! png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
//! std::fs::write(dir.path().join("cat/1.png"), &png).unwrap();
//!
//! let manifest = index(dir.path(), &IndexOptions::default(), &Control::new()).unwrap();
//! assert_eq!(manifest.classes, ["cat"]);
//! assert_eq!((manifest.samples[0].width, manifest.samples[0].height), (64, 48));
//! ```

mod coco;
mod csv_source;
mod detect;
mod draft;
mod folder;
mod probe;
mod voc;

use std::path::{Path, PathBuf};

pub use detect::detect_format;
pub use probe::{probe, Probe, DEFAULT_MAX_PIXELS};
use stokehold_core::{Control, Finding, Limits, Manifest, SourceFormat, SourceInfo};

/// How to index a source.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// The source's format; `None` detects it from the path.
    pub format: Option<SourceFormat>,
    /// Fail on any finding instead of skipping and reporting.
    pub strict: bool,
    /// Bounds on what is read: pixels per image, bytes per image file,
    /// per annotation source and per line.
    pub limits: Limits,
    /// Class names in the order to use; a label outside them is a finding.
    pub classes: Option<Vec<String>>,
    /// Folder that relative image paths are resolved against; by default the
    /// annotation file's folder (CSV, COCO) or `JPEGImages/` (VOC).
    pub image_root: Option<PathBuf>,
    /// Threads probing headers and parsing annotation files; `None` uses
    /// `STOKEHOLD_NUM_THREADS` or the core count (see
    /// [`stokehold_core::resolve_threads`]).
    pub threads: Option<usize>,
}

/// What can stop indexing as a whole (as opposed to a [`Finding`] about one
/// sample).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source path does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The source path.
        path: PathBuf,
    },
    /// The source could not be read.
    #[error("{}: {}", path.display(), stokehold_core::fsutil::io_message(error))]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason (part of the message, not also
        /// given as the error's source).
        error: std::io::Error,
    },
    /// The source is not valid for its format (bad JSON, missing CSV column…).
    #[error("{}: {reason}", path.display())]
    InvalidSource {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Strict mode met findings; all of them are listed.
    #[error("strict mode: {} problem(s) found:\n{}", findings.len(), list_findings(findings))]
    Strict {
        /// Every finding of the run.
        findings: Vec<Finding>,
    },
    /// The run was cancelled through its [`Control`].
    #[error("cancelled")]
    Cancelled,
    /// An option is out of its range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Reading a JSON-lines manifest failed.
    #[error(transparent)]
    Manifest(#[from] stokehold_core::Error),
}

fn list_findings(findings: &[Finding]) -> String {
    const SHOWN: usize = 50;
    let mut text: Vec<String> = findings
        .iter()
        .take(SHOWN)
        .map(|f| format!("  {f}"))
        .collect();
    if findings.len() > SHOWN {
        text.push(format!("  … and {} more", findings.len() - SHOWN));
    }
    text.join("\n")
}

/// Indexes `source` into a manifest: reads its annotations, probes every
/// image's header in parallel, validates boxes, and collects findings.
///
/// `control` reports progress (one unit per image probed) and is checked for
/// cancellation between images.
pub fn index(source: &Path, options: &IndexOptions, control: &Control) -> Result<Manifest, Error> {
    options.limits.check().map_err(Error::InvalidArgument)?;
    let threads = stokehold_core::resolve_threads(options.threads, "threads")
        .map_err(Error::InvalidArgument)?;
    if std::fs::symlink_metadata(source).is_err() {
        return Err(Error::NotFound {
            path: source.to_path_buf(),
        });
    }
    let format = match options.format {
        Some(f) => f,
        None => detect_format(source)?,
    };
    let root = std::path::absolute(source).map_err(|e| Error::Io {
        path: source.into(),
        error: e,
    })?;
    let image_root = match &options.image_root {
        Some(r) => Some(std::path::absolute(r).map_err(|e| Error::Io {
            path: r.clone(),
            error: e,
        })?),
        None => None,
    };
    // Every parallel step of this call runs on this pool, never on rayon's
    // global one: its threads would not exist in a process forked after
    // they started, and it would ignore the thread setting.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        // Linux keeps 15 bytes of a thread name: "stokehold-ix-15" fits.
        .thread_name(|i| format!("stokehold-ix-{i}"))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?;
    let limits = &options.limits;
    let draft = match format {
        SourceFormat::Folder => folder::read(&root, control)?,
        SourceFormat::Csv => csv_source::read(&root, image_root.as_deref(), limits)?,
        SourceFormat::Coco => coco::read(&root, image_root.as_deref(), limits)?,
        SourceFormat::Voc => voc::read(&root, image_root.as_deref(), limits, &pool, control)?,
        SourceFormat::Manifest => draft::from_manifest(Manifest::load_with(&root, limits)?),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "unsupported source format {format}"
            )))
        }
    };
    let mut manifest = draft.resolve(options, &pool, control)?;
    manifest.source = Some(SourceInfo { format, path: root });
    if options.strict && !manifest.findings.is_empty() {
        return Err(Error::Strict {
            findings: manifest.findings,
        });
    }
    Ok(manifest)
}
