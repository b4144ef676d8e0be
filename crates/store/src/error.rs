//! Errors of the packed file.

use std::path::PathBuf;

use stokehold_core::fsutil::io_message;

/// What went wrong reading or writing a packed file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused (missing file, permissions, disk full).
    #[error("{}: {}", path.display(), io_message(error))]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason (part of the message, not also
        /// given as the error's source).
        error: std::io::Error,
    },
    /// libhdf5 reported an error.
    #[error("{}: HDF5 error: {message}", path.display())]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// libhdf5's message.
        message: String,
    },
    /// The file is not a valid stokehold file of a version this build reads.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file changed on disk after it was opened (overwritten in place):
    /// its samples no longer match the labels read at open.
    #[error("{}: the file changed after it was opened ({reason}); open it again", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// What differs (size, modification time).
        reason: String,
    },
    /// Object storage failed (after its retries), answered with other
    /// bytes than asked for, has not got the object, or was given a bad
    /// setting.
    #[error("{location}: {reason}")]
    Remote {
        /// The object (shard or index) and, where it applies, the sample;
        /// for a setting, `storage_options[NAME]`.
        location: String,
        /// What happened: the status or the transport's error.
        reason: String,
        /// Which of these it is.
        kind: RemoteKind,
    },
    /// A sample index past the end.
    #[error("sample {index} is out of range: the file holds {len} samples")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// The number of samples.
        len: usize,
    },
    /// A sample given to the writer does not fit the file's shape.
    #[error("sample {index}: {reason}")]
    BadSample {
        /// Its position among the samples written.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// What kind of object-storage error an [`Error::Remote`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// The object (a shard, the index) is not there.
    Missing,
    /// A setting is unknown or has a bad value.
    Setting,
    /// A request failed, or its answer was not what was asked for.
    Failed,
}

impl Error {
    pub(crate) fn io(path: &std::path::Path, error: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

pub(crate) trait Hdf5Context<T> {
    fn at(self, path: &std::path::Path) -> Result<T, Error>;
}

impl<T> Hdf5Context<T> for hdf5::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, Error> {
        // libhdf5's messages carry a newline inside a timestamp; keep one line.
        self.map_err(|e| Error::Hdf5 {
            path: path.to_path_buf(),
            message: e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })
    }
}
