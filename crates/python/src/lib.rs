//! `stokehold._native`: the private extension module behind the `stokehold`
//! Python package. Glue only: thin `#[pyclass]` wrappers over the library
//! crates, one helper for blocking calls (`blocking::run_blocking`) and one
//! place that turns errors into Python exceptions (`errors`).

mod blocking;
mod errors;
mod loader;
mod manifest;
mod pack;

use pyo3::prelude::*;

/// Runs the `stokehold` command line with `argv` (program name first) and
/// returns its exit status.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> PyResult<i32> {
    blocking::run_blocking(py, |control| {
        Ok::<_, errors::Failure>(stokehold_cli::run(argv, control))
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_MAX_PIXELS", stokehold_index::DEFAULT_MAX_PIXELS)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(manifest::index, m)?)?;
    m.add_class::<manifest::Manifest>()?;
    m.add_class::<manifest::Sample>()?;
    m.add_class::<manifest::Box>()?;
    m.add_class::<manifest::Finding>()?;
    m.add_function(wrap_pyfunction!(pack::pack, m)?)?;
    m.add_function(wrap_pyfunction!(pack::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(pack::preview, m)?)?;
    m.add_class::<pack::PackReport>()?;
    m.add_class::<loader::NativeLoader>()?;
    m.add_class::<loader::PixelBuffer>()?;
    Ok(())
}
