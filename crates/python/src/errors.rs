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

impl Failure {
    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        use stokehold_index::Error as E;
        match self {
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
                let message = e.to_string();
                let err = raise(py, name, message);
                if let E::Strict { findings } = e {
                    let list: Vec<Finding> = findings.into_iter().map(Finding::from).collect();
                    if let Ok(list) = PyList::new(py, list) {
                        let _ = err.value(py).setattr("findings", list);
                    }
                }
                err
            }
        }
    }
}

/// A panic caught at the boundary.
pub(crate) fn internal_error(py: Python<'_>, panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    raise(
        py,
        "StokeholdError",
        format!("internal error (please report it): {what}"),
    )
}
