//! The exception classes of `stokehold.errors`, declared here so that a
//! wrong name fails to compile, and the one place that turns a Rust error
//! into one of them, with its structure: `filename`/`errno` on OS errors,
//! `path`/`index` on errors about a sample, `findings` on strict-mode and
//! empty-dataset errors.

use std::path::PathBuf;

use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyIndexError, PyKeyboardInterrupt,
    PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

use crate::manifest::Finding;

/// A base class of an exception: one of ours or a built-in.
#[derive(Clone, Copy)]
enum Base {
    Ours(Exc),
    Exception,
    FileNotFound,
    OsError,
    Value,
    FileExists,
    Index,
    Runtime,
}

macro_rules! exceptions {
    ($($name:ident($($base:expr),+) => $doc:literal;)+) => {
        /// Every exception class stokehold raises, named as in Python.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(clippy::enum_variant_names)]
        pub(crate) enum Exc {
            $($name,)+
        }

        impl Exc {
            /// In declaration order: every base before its subclasses.
            const ALL: &'static [Exc] = &[$(Exc::$name,)+];

            fn name(self) -> &'static str {
                match self {
                    $(Exc::$name => stringify!($name),)+
                }
            }

            fn doc(self) -> &'static str {
                match self {
                    $(Exc::$name => $doc,)+
                }
            }

            fn bases(self) -> &'static [Base] {
                match self {
                    $(Exc::$name => &[$($base),+],)+
                }
            }
        }
    };
}

use Base::*;

exceptions! {
    StokeholdError(Exception) => "Base class of every stokehold error.";
    SourceNotFoundError(Ours(Exc::StokeholdError), FileNotFound) =>
        "A source, manifest, packed file or image path does not exist (`.filename`, `.errno`).";
    StokeholdIOError(Ours(Exc::StokeholdError), OsError) =>
        "Reading or writing a file failed: permissions, disk full, not a regular file (`.filename`, `.errno`).";
    InvalidSourceError(Ours(Exc::StokeholdError), Value) =>
        "A source or manifest is not valid for its format: bad JSON, a missing column (`.filename`, `.line` when known).";
    InvalidArgumentError(Ours(Exc::StokeholdError), Value) =>
        "An argument is out of its range or names something unknown; the message names the parameter.";
    StrictModeError(Ours(Exc::StokeholdError), Value) =>
        "`strict=True` and problems were found; `.findings` lists them all.";
    OutputExistsError(Ours(Exc::StokeholdError), FileExists) =>
        "The output exists and `force=True` was not given (`.filename`).";
    EmptyDatasetError(Ours(Exc::StokeholdError), Value) =>
        "No sample could be packed; `.findings` says why for each.";
    InvalidFileError(Ours(Exc::StokeholdError), Value) =>
        "A file is not a valid stokehold packed file: damaged, of a newer format version, or changed while open (`.filename`).";
    SampleIndexError(Ours(Exc::StokeholdError), Index) =>
        "A sample or batch index past the end (`.index`).";
    SampleError(Ours(Exc::StokeholdError), Value) =>
        "A sample could not be read or decoded while loading (`.path`, `.index`).";
    LoaderClosedError(Ours(Exc::StokeholdError), Runtime) =>
        "The dataset was closed; make a new one to read again.";
}

static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn builtin(py: Python<'_>, base: Base) -> Bound<'_, PyType> {
    match base {
        Exception => py.get_type::<PyException>(),
        FileNotFound => py.get_type::<PyFileNotFoundError>(),
        OsError => py.get_type::<PyOSError>(),
        Value => py.get_type::<PyValueError>(),
        FileExists => py.get_type::<PyFileExistsError>(),
        Index => py.get_type::<PyIndexError>(),
        Runtime => py.get_type::<PyRuntimeError>(),
        Ours(_) => unreachable!("not a built-in"),
    }
}

/// Makes the classes (once) and adds them to `module`.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let types = TYPES.get_or_try_init(py, || -> PyResult<Vec<Py<PyType>>> {
        let type_ = py.get_type::<PyType>();
        let mut made: Vec<Py<PyType>> = Vec::with_capacity(Exc::ALL.len());
        for exc in Exc::ALL {
            let bases: Vec<Bound<'_, PyType>> = exc
                .bases()
                .iter()
                .map(|&b| match b {
                    Ours(o) => made[o as usize].bind(py).clone(),
                    other => builtin(py, other),
                })
                .collect();
            let ns = PyDict::new(py);
            ns.set_item("__module__", "stokehold.errors")?;
            ns.set_item("__doc__", exc.doc())?;
            // OSError's own str() becomes "[Errno N] strerror: filename" once
            // `filename` is set; the message already names the file.
            ns.set_item(
                "__str__",
                py.get_type::<pyo3::exceptions::PyBaseException>()
                    .getattr("__str__")?,
            )?;
            let class = type_.call1((exc.name(), PyTuple::new(py, bases)?, ns))?;
            made.push(class.cast_into::<PyType>()?.unbind());
        }
        Ok(made)
    })?;
    for (exc, class) in Exc::ALL.iter().zip(types) {
        module.add(exc.name(), class.bind(py))?;
    }
    Ok(())
}

/// What an exception carries besides its message.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    pub filename: Option<PathBuf>,
    pub errno: Option<i32>,
    pub path: Option<String>,
    pub index: Option<usize>,
    pub line: Option<usize>,
    pub findings: Option<Vec<stokehold_core::Finding>>,
}

impl Exc {
    /// The exception, with its attributes set.
    pub(crate) fn err(self, py: Python<'_>, message: impl Into<String>, extra: Extra) -> PyErr {
        let message = message.into();
        let Some(types) = TYPES.get(py) else {
            return PyRuntimeError::new_err(message);
        };
        let class = types[self as usize].bind(py);
        let value = match class.call1((message.clone(),)) {
            Ok(v) => v,
            Err(e) => return e,
        };
        let set = |name: &str, v: Bound<'_, PyAny>| {
            let _ = value.setattr(name, v);
        };
        let is_os = matches!(
            self,
            Exc::SourceNotFoundError | Exc::StokeholdIOError | Exc::OutputExistsError
        );
        if let Some(f) = &extra.filename {
            let v = f.as_os_str().into_pyobject(py).expect("infallible");
            set("filename", v.into_any());
        }
        if is_os {
            if let Some(errno) = extra.errno {
                set(
                    "errno",
                    errno.into_pyobject(py).expect("infallible").into_any(),
                );
                set(
                    "strerror",
                    pyo3::types::PyString::new(
                        py,
                        &stokehold_core::fsutil::io_message(&std::io::Error::from_raw_os_error(
                            errno,
                        )),
                    )
                    .into_any(),
                );
            }
        }
        set(
            "path",
            extra.path.as_deref().map_or_else(
                || py.None().into_bound(py),
                |p| pyo3::types::PyString::new(py, p).into_any(),
            ),
        );
        set(
            "index",
            extra.index.map_or_else(
                || py.None().into_bound(py),
                |i| i.into_pyobject(py).expect("infallible").into_any(),
            ),
        );
        if let Some(line) = extra.line {
            set(
                "line",
                line.into_pyobject(py).expect("infallible").into_any(),
            );
        }
        if matches!(self, Exc::StrictModeError | Exc::EmptyDatasetError) {
            let list: Vec<Finding> = extra
                .findings
                .unwrap_or_default()
                .into_iter()
                .map(Finding::from)
                .collect();
            if let Ok(list) = PyList::new(py, list) {
                set("findings", list.into_any());
            }
        }
        PyErr::from_value(value)
    }
}

/// Any error a native call can end with.
#[derive(Debug)]
pub(crate) enum Failure {
    Index(stokehold_index::Error),
    Core(stokehold_core::Error),
    Pack(stokehold_pack::Error),
    Store(stokehold_store::Error),
    Loader(stokehold_loader::Error),
    /// An argument that Rust rejected while parsing it (the message names it).
    Argument(String),
    /// A panic caught at the boundary (its message).
    Panic(String),
    /// Ctrl-C.
    Interrupted,
}

macro_rules! from_error {
    ($($variant:ident($t:ty)),+) => {
        $(impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::$variant(e)
            }
        })+
    };
}

from_error!(
    Index(stokehold_index::Error),
    Core(stokehold_core::Error),
    Pack(stokehold_pack::Error),
    Store(stokehold_store::Error),
    Loader(stokehold_loader::Error)
);

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Argument(message)
    }
}

fn io_class(e: &std::io::Error) -> Exc {
    if e.kind() == std::io::ErrorKind::NotFound {
        Exc::SourceNotFoundError
    } else {
        Exc::StokeholdIOError
    }
}

fn io_extra(path: &std::path::Path, e: &std::io::Error) -> Extra {
    Extra {
        filename: Some(path.to_path_buf()),
        errno: e.raw_os_error(),
        ..Extra::default()
    }
}

impl Failure {
    /// The class, message and attributes: every error variant of every
    /// crate maps to exactly one class here.
    fn describe(self) -> Result<(Exc, String, Extra), PyErr> {
        let message = |e: &dyn std::fmt::Display| e.to_string();
        Ok(match self {
            Failure::Interrupted => return Err(PyKeyboardInterrupt::new_err("cancelled")),
            Failure::Argument(m) => (Exc::InvalidArgumentError, m, Extra::default()),
            Failure::Panic(m) => (
                Exc::StokeholdError,
                format!("internal error (please report it): {m}"),
                Extra::default(),
            ),
            Failure::Core(e) => {
                use stokehold_core::Error as E;
                match &e {
                    E::Io { path, error } => (io_class(error), message(&e), io_extra(path, error)),
                    E::Manifest { path, line, .. } => (
                        Exc::InvalidSourceError,
                        message(&e),
                        Extra {
                            filename: Some(path.clone()),
                            line: Some(*line),
                            ..Extra::default()
                        },
                    ),
                    _ => (Exc::InvalidArgumentError, strip(&e), Extra::default()),
                }
            }
            Failure::Index(e) => {
                use stokehold_index::Error as E;
                match e {
                    E::Manifest(core) => return Failure::Core(core).describe(),
                    E::Cancelled => return Err(PyKeyboardInterrupt::new_err("cancelled")),
                    E::NotFound { ref path } => (
                        Exc::SourceNotFoundError,
                        message(&e),
                        Extra {
                            filename: Some(path.clone()),
                            errno: Some(2),
                            ..Extra::default()
                        },
                    ),
                    E::Io {
                        ref path,
                        ref error,
                    } => (io_class(error), message(&e), io_extra(path, error)),
                    E::InvalidSource { ref path, .. } => (
                        Exc::InvalidSourceError,
                        message(&e),
                        Extra {
                            filename: Some(path.clone()),
                            ..Extra::default()
                        },
                    ),
                    E::Strict { ref findings } => {
                        let findings = findings.clone();
                        (
                            Exc::StrictModeError,
                            message(&e),
                            Extra {
                                findings: Some(findings),
                                ..Extra::default()
                            },
                        )
                    }
                    other => (Exc::InvalidArgumentError, strip(&other), Extra::default()),
                }
            }
            Failure::Store(e) => store(e),
            Failure::Pack(e) => {
                use stokehold_pack::Error as E;
                match e {
                    E::Store(s) => store(s),
                    E::Cancelled => return Err(PyKeyboardInterrupt::new_err("cancelled")),
                    E::Exists { ref path } => (
                        Exc::OutputExistsError,
                        message(&e),
                        Extra {
                            filename: Some(path.clone()),
                            errno: Some(17),
                            ..Extra::default()
                        },
                    ),
                    E::Strict { ref finding } => {
                        let f = finding.clone();
                        (
                            Exc::StrictModeError,
                            message(&e),
                            Extra {
                                path: Some(f.path.to_string_lossy().into_owned()),
                                findings: Some(vec![f]),
                                ..Extra::default()
                            },
                        )
                    }
                    E::Empty { ref findings } => {
                        let findings = findings.clone();
                        (
                            Exc::EmptyDatasetError,
                            message(&e),
                            Extra {
                                findings: Some(findings),
                                ..Extra::default()
                            },
                        )
                    }
                    E::Image(_) => (Exc::InvalidSourceError, message(&e), Extra::default()),
                    E::Output { ref path, .. } => (
                        Exc::StokeholdIOError,
                        message(&e),
                        Extra {
                            filename: Some(path.clone()),
                            ..Extra::default()
                        },
                    ),
                    other => (Exc::InvalidArgumentError, strip(&other), Extra::default()),
                }
            }
            Failure::Loader(e) => {
                use stokehold_loader::Error as L;
                match &e {
                    L::Sample { index, path, .. } => (
                        Exc::SampleError,
                        message(&e),
                        Extra {
                            path: Some(path.clone()),
                            index: Some(*index),
                            ..Extra::default()
                        },
                    ),
                    L::OutOfRange { index, .. } => (
                        Exc::SampleIndexError,
                        message(&e),
                        Extra {
                            index: Some(*index),
                            ..Extra::default()
                        },
                    ),
                    L::Open(_) => (Exc::InvalidFileError, message(&e), Extra::default()),
                    L::Closed => (
                        Exc::LoaderClosedError,
                        "the dataset is closed; make a new Dataset to read again".into(),
                        Extra::default(),
                    ),
                    L::InvalidArgument(_) => {
                        (Exc::InvalidArgumentError, strip(&e), Extra::default())
                    }
                    _ => (Exc::StokeholdError, message(&e), Extra::default()),
                }
            }
        })
    }

    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self.describe() {
            Ok((exc, message, extra)) => exc.err(py, message, extra),
            Err(e) => e,
        }
    }
}

fn store(e: stokehold_store::Error) -> (Exc, String, Extra) {
    use stokehold_store::Error as E;
    let message = e.to_string();
    match &e {
        E::Io { path, error } => (io_class(error), message, io_extra(path, error)),
        E::Hdf5 { path, .. } => (
            Exc::StokeholdIOError,
            message,
            Extra {
                filename: Some(path.clone()),
                ..Extra::default()
            },
        ),
        E::Format { path, .. } | E::Changed { path, .. } => (
            Exc::InvalidFileError,
            message,
            Extra {
                filename: Some(path.clone()),
                ..Extra::default()
            },
        ),
        E::OutOfRange { index, .. } => (
            Exc::SampleIndexError,
            message,
            Extra {
                index: Some(*index),
                ..Extra::default()
            },
        ),
        E::BadSample { index, .. } => (
            Exc::InvalidArgumentError,
            message,
            Extra {
                index: Some(*index),
                ..Extra::default()
            },
        ),
        E::Remote { location, kind, .. } => {
            let class = match kind {
                stokehold_store::RemoteKind::Setting => Exc::InvalidArgumentError,
                stokehold_store::RemoteKind::Missing => Exc::SourceNotFoundError,
                stokehold_store::RemoteKind::Failed => Exc::StokeholdIOError,
            };
            (
                class,
                message,
                Extra {
                    filename: Some(PathBuf::from(location)),
                    ..Extra::default()
                },
            )
        }
        _ => (Exc::StokeholdError, message, Extra::default()),
    }
}

/// The message of an `InvalidArgument` error without the "invalid
/// argument: " prefix that the Rust `Display` adds (the Python class says it).
fn strip(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    text.strip_prefix("invalid argument: ")
        .map(str::to_owned)
        .unwrap_or(text)
}

/// For `?` in methods that hold no `Python` token: takes the GIL to build
/// the exception.
impl From<Failure> for PyErr {
    fn from(failure: Failure) -> PyErr {
        Python::attach(|py| failure.into_pyerr(py))
    }
}

/// Runs `f`, turning a panic into a `StokeholdError` instead of letting
/// pyo3 raise `PanicException` (a `BaseException` that `except Exception`
/// does not catch).
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => Err(Failure::Panic(stokehold_core::panic_message(&*panic)).into()),
    }
}
