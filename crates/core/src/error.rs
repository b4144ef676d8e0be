//! Errors of the core types.

use std::path::PathBuf;

/// What went wrong reading or writing a manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or written.
    #[error("{}: {}", path.display(), crate::fsutil::io_message(error))]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason (its text is part of this error's
        /// message, so it is not also given as the error's source).
        error: std::io::Error,
    },
    /// A line of a JSON-lines manifest is not what the format says.
    #[error("{}, line {line}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An argument is out of its range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}
