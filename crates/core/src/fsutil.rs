//! Reading files that stokehold does not trust: only regular files are
//! opened, and what is read from them is capped.
//!
//! A FIFO named `x.jpg` would block a plain `open()` forever and a
//! character device such as `/dev/zero` would be read until memory runs
//! out, so every file an index, pack or loader reads goes through
//! [`open_regular`]: it opens with `O_NONBLOCK` (an `open()` that never
//! waits for a writer), checks with `fstat` that the file is a regular file,
//! and only then reads, never more than a caller's limit.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Bounds on what stokehold reads from files it is given. Each is a
/// keyword of `index`, `pack` and `Dataset` (and a `--max-…` flag of the
/// command line) of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Images with more pixels than this are refused (decompression-bomb
    /// guard), checked from the header before any pixel is decoded.
    pub max_pixels: u64,
    /// Image files larger than this are refused without being read.
    pub max_file_bytes: u64,
    /// Annotation sources (a CSV, COCO JSON or VOC XML file) larger than this
    /// are refused without being read.
    pub max_source_bytes: u64,
    /// A line of a CSV or JSON-lines manifest longer than this is refused.
    pub max_line_bytes: u64,
}

impl Limits {
    /// 100 megapixels: a 10,000 × 10,000 image; the largest phone photos are
    /// about 50.
    pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;
    /// 1 GiB: far above any real photo, below what would exhaust memory on
    /// a worker holding a few of them.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 30;
    /// 4 GiB: COCO-style annotation files of the largest public datasets are
    /// 1–2 GB.
    pub const DEFAULT_MAX_SOURCE_BYTES: u64 = 4 << 30;
    /// 16 MiB: a manifest line with ten thousand boxes is about 600 kB.
    pub const DEFAULT_MAX_LINE_BYTES: u64 = 16 << 20;

    /// Checks that every limit is positive; `Err` names the one that is not.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("max_pixels", self.max_pixels),
            ("max_file_bytes", self.max_file_bytes),
            ("max_source_bytes", self.max_source_bytes),
            ("max_line_bytes", self.max_line_bytes),
        ] {
            if v == 0 {
                return Err(format!("{name} must be positive, got 0"));
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: Self::DEFAULT_MAX_PIXELS,
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            max_source_bytes: Self::DEFAULT_MAX_SOURCE_BYTES,
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
        }
    }
}

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The operating system refused (missing, permissions, I/O error).
    Io(io::Error),
    /// The path is not a regular file (`"a directory"`, `"a FIFO"`, …).
    NotRegular(&'static str),
    /// The file is larger than the limit named `limit_name`.
    TooLarge {
        /// The file's size in bytes (at least; it may still be growing).
        len: u64,
        /// The limit.
        limit: u64,
        /// The limit's name, e.g. `"max_file_bytes"`.
        limit_name: &'static str,
    },
}

impl ReadError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{}", io_message(e)),
            ReadError::NotRegular(what) => write!(f, "is {what}, not a regular file"),
            ReadError::TooLarge {
                len,
                limit,
                limit_name,
            } => write!(
                f,
                "file is {len} bytes, over the limit of {limit} ({limit_name})"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<ReadError> for io::Error {
    /// The operating system's error as it is; the others as `InvalidInput`
    /// errors whose text is the reason.
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// The operating system's reason without the `(os error N)` suffix that
/// Rust appends, for messages that already name the file.
pub fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_owned(),
        _ => text,
    }
}

fn describe(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file (symbolic links are
/// followed); returns the file and its length. Never blocks: the open uses
/// `O_NONBLOCK`, which a FIFO honours and a regular file ignores.
pub fn open_regular(path: &Path) -> Result<(File, u64), ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(describe(meta.file_type())));
    }
    Ok((file, meta.len()))
}

/// Reads the whole regular file at `path`, refusing it when it is larger
/// than `limit` bytes (named `limit_name` in the error).
pub fn read_capped(
    path: &Path,
    limit: u64,
    limit_name: &'static str,
) -> Result<Vec<u8>, ReadError> {
    let (file, len) = open_regular(path)?;
    let too_large = |len| ReadError::TooLarge {
        len,
        limit,
        limit_name,
    };
    if len > limit {
        return Err(too_large(len));
    }
    let mut data = Vec::new();
    data.try_reserve_exact(len as usize).map_err(|_| {
        ReadError::Io(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot allocate {len} bytes"),
        ))
    })?;
    // The file may grow while it is read: never read past the limit.
    file.take(limit.saturating_add(1)).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(too_large(data.len() as u64));
    }
    Ok(data)
}

/// Reads one line (through `\n`, which is kept) into `buf`, cleared first;
/// returns `Ok(false)` at the end of the input. A line longer than `limit`
/// bytes is an `InvalidData` error, and no more than `limit + 1` bytes of it
/// are held in memory.
pub fn read_line_capped(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: u64,
) -> io::Result<bool> {
    buf.clear();
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(!buf.is_empty());
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if (buf.len() + take) as u64 > limit.saturating_add(1) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line longer than the limit of {limit} bytes (max_line_bytes)"),
            ));
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            if buf.len() as u64 > limit.saturating_add(1) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("line longer than the limit of {limit} bytes (max_line_bytes)"),
                ));
            }
            return Ok(true);
        }
    }
}

/// Hands memory that was freed, but that the allocator still holds, back to
/// the operating system (glibc's `malloc_trim`; a no-op elsewhere). Opening a
/// large dataset index parses megabytes of JSON whose buffers are freed in
/// the middle of the heap, where glibc keeps them: measured on a
/// 200,000-sample index, 32 of the 51 bytes per sample that the process grew.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim has no preconditions; it only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_opened_and_reads_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.jpg");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY-free alternative: mkfifo through the shell is not available
        // everywhere; libc::mkfifo is the direct call.
        assert_eq!(make_fifo(&c), 0);
        let err = open_regular(&fifo).unwrap_err();
        assert!(matches!(err, ReadError::NotRegular("a FIFO")), "{err}");
        let err = open_regular(dir.path()).unwrap_err();
        assert_eq!(err.to_string(), "is a directory, not a regular file");
        let err = read_capped(Path::new("/dev/zero"), 10, "max_file_bytes").unwrap_err();
        assert_eq!(err.to_string(), "is a character device, not a regular file");

        let file = dir.path().join("f");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(
            read_capped(&file, 10, "max_file_bytes").unwrap(),
            b"0123456789"
        );
        let err = read_capped(&file, 9, "max_file_bytes").unwrap_err();
        assert_eq!(
            err.to_string(),
            "file is 10 bytes, over the limit of 9 (max_file_bytes)"
        );
        assert!(read_capped(&dir.path().join("nope"), 9, "x")
            .unwrap_err()
            .is_not_found());
    }

    #[allow(unsafe_code)]
    fn make_fifo(path: &std::ffi::CStr) -> i32 {
        // SAFETY: a valid NUL-terminated path; mkfifo reads it only.
        unsafe { libc::mkfifo(path.as_ptr(), 0o600) }
    }

    #[test]
    fn lines_are_capped_without_holding_more_than_the_limit() {
        let mut buf = Vec::new();
        let mut r = io::BufReader::with_capacity(4, &b"ab\ncdefgh\nij"[..]);
        assert!(read_line_capped(&mut r, &mut buf, 5).unwrap());
        assert_eq!(buf, b"ab\n");
        let err = read_line_capped(&mut r, &mut buf, 5).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(buf.len() <= 6);
        let mut r = io::BufReader::new(&b"ij"[..]);
        assert!(read_line_capped(&mut r, &mut buf, 5).unwrap());
        assert_eq!(buf, b"ij");
        assert!(!read_line_capped(&mut r, &mut buf, 5).unwrap());
        // An endless line is refused after reading just past the limit.
        let mut zero = io::BufReader::new(io::repeat(0));
        assert!(read_line_capped(&mut zero, &mut buf, 1000).is_err());
    }

    #[test]
    fn os_error_suffix_is_dropped() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&e), "No such file or directory");
    }
}
