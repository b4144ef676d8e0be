//! Turning Rust errors into the `stokehold.errors` exception hierarchy.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::manifest::Finding;

/// Any error a native call can end with.
#[derive(Debug)]
pub(crate) enum Failure {
    Index(stokehold_index::Error),
    Core(stokehold_core::Error),
    Pack(stokehold_pack::Error),
    Store(stokehold_store::Error),
    Loader(stokehold_loader::Error),
    /// An argument that Rust rejected while parsing it.
    Argument(String),
}

impl From<stokehold_pack::Error> for Failure {
    fn from(e: stokehold_pack::Error) -> Self {
        Failure::Pack(e)
    }
}

impl From<stokehold_loader::Error> for Failure {
    fn from(e: stokehold_loader::Error) -> Self {
        Failure::Loader(e)
    }
}

impl From<stokehold_store::Error> for Failure {
    fn from(e: stokehold_store::Error) -> Self {
        Failure::Store(e)
    }
}

impl From<stokehold_index::Error> for Failure {
    fn from(e: stokehold_index::Error) -> Self {
        Failure::Index(e)
    }
}

impl From<stokehold_core::Error> for Failure {
    fn from(e: stokehold_core::Error) -> Self {
        Failure::Core(e)
    }
}

/// Builds `stokehold.errors.<name>(message)`; falls back to `RuntimeError`
/// if the package cannot be imported (the native module used on its own).
fn raise(py: Python<'_>, name: &str, message: String) -> PyErr {
    let class = py.import("stokehold.errors").and_then(|m| m.getattr(name));
    match class.and_then(|c| c.call1((message.clone(),))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) => PyRuntimeError::new_err(message),
    }
}

fn core_error(py: Python<'_>, e: stokehold_core::Error) -> PyErr {
    use stokehold_core::Error as E;
    let name = match &e {
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "SourceNotFoundError"
        }
        E::Io { .. } => "StokeholdIOError",
        E::Manifest { .. } => "InvalidSourceError",
        _ => "InvalidArgumentError",
    };
    raise(py, name, e.to_string())
}

fn store_error(py: Python<'_>, e: stokehold_store::Error) -> PyErr {
    use stokehold_store::Error as E;
    let name = match &e {
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "SourceNotFoundError"
        }
        E::Io { .. } | E::Hdf5 { .. } => "StokeholdIOError",
        E::Format { .. } => "InvalidFileError",
        E::OutOfRange { .. } => "SampleIndexError",
        _ => "InvalidArgumentError",
    };
    raise(py, name, e.to_string())
}

fn with_findings(py: Python<'_>, err: PyErr, findings: Vec<stokehold_core::Finding>) -> PyErr {
    let list: Vec<Finding> = findings.into_iter().map(Finding::from).collect();
    if let Ok(list) = PyList::new(py, list) {
        let _ = err.value(py).setattr("findings", list);
    }
    err
}

fn pack_error(py: Python<'_>, e: stokehold_pack::Error) -> PyErr {
    use stokehold_pack::Error as E;
    let message = e.to_string();
    match e {
        E::Store(e) => store_error(py, e),
        E::Exists { .. } => raise(py, "OutputExistsError", message),
        E::Strict { finding } => {
            with_findings(py, raise(py, "StrictModeError", message), vec![finding])
        }
        E::Empty { findings } => {
            with_findings(py, raise(py, "EmptyDatasetError", message), findings)
        }
        E::Cancelled => pyo3::exceptions::PyKeyboardInterrupt::new_err("cancelled"),
        E::Image(_) => raise(py, "InvalidSourceError", message),
        E::Output { .. } => raise(py, "StokeholdIOError", message),
        _ => raise(py, "InvalidArgumentError", message),
    }
}

/// For `?` in methods that hold no `Python` token: takes the GIL to build
/// the exception.
impl From<Failure> for PyErr {
    fn from(failure: Failure) -> PyErr {
        Python::attach(|py| failure.into_pyerr(py))
    }
}

impl Failure {
    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        use stokehold_index::Error as E;
        match self {
            Failure::Pack(e) => pack_error(py, e),
            Failure::Store(e) => store_error(py, e),
            Failure::Loader(e) => {
                use stokehold_loader::Error as L;
                let name = match &e {
                    L::Sample { .. } => "SampleError",
                    L::OutOfRange { .. } => "SampleIndexError",
                    L::Open(_) => "InvalidFileError",
                    L::Closed => "LoaderClosedError",
                    L::Panic { .. } => "StokeholdError",
                    _ => "InvalidArgumentError",
                };
                raise(py, name, e.to_string())
            }
            Failure::Argument(message) => raise(py, "InvalidArgumentError", message),
            Failure::Core(e) | Failure::Index(E::Manifest(e)) => core_error(py, e),
            Failure::Index(e) => {
                let name = match &e {
                    E::NotFound { .. } => "SourceNotFoundError",
                    E::Io { .. } => "StokeholdIOError",
                    E::InvalidSource { .. } => "InvalidSourceError",
                    E::Strict { .. } => "StrictModeError",
                    E::Cancelled => {
                        return pyo3::exceptions::PyKeyboardInterrupt::new_err("cancelled")
                    }
                    _ => "InvalidArgumentError",
                };
                let err = raise(py, name, e.to_string());
                match e {
                    E::Strict { findings } => with_findings(py, err, findings),
                    _ => err,
                }
            }
        }
    }
}

/// A panic caught at the boundary.
pub(crate) fn internal_error(py: Python<'_>, panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = stokehold_core::panic_message(&*panic);
    raise(
        py,
        "StokeholdError",
        format!("internal error (please report it): {what}"),
    )
}
