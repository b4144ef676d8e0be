//! `stokehold._native`: the private extension module behind the `stokehold`
//! Python package. Glue only: thin `#[pyclass]` wrappers over the library
//! crates, one helper for blocking calls (`blocking::run_blocking`) and one
//! place that turns errors into Python exceptions (`errors`).

mod blocking;
mod errors;
mod loader;
mod manifest;
mod pack;
mod remote;

use pyo3::prelude::*;

/// Runs the `stokehold` command line with `argv` (program name first) and
/// returns its exit status. `pack --engine ray` runs through
/// `stokehold.ray` (Python).
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> PyResult<i32> {
    let ray_pack = |options: serde_json::Value| -> anyhow::Result<String> {
        Python::attach(|py| -> PyResult<String> {
            let ray = py.import("stokehold.ray")?;
            ray.call_method1("_cli_pack", (options.to_string(),))?
                .extract::<String>()
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let hooks = stokehold_cli::Hooks {
        ray_pack: Some(&ray_pack),
    };
    blocking::run_blocking(py, None, |control| {
        Ok::<_, errors::Failure>(stokehold_cli::run_with(argv, control, &hooks))
    })
}

/// Bytes from `"2GB"`, `"512MiB"` or a number (the command line's parser).
#[pyfunction]
fn parse_bytes(text: &str) -> PyResult<u64> {
    Ok(stokehold_core::vocab::parse_bytes(text).map_err(errors::Failure::Argument)?)
}

/// Every option word, by option name: the one vocabulary that the
/// command line and the library parse.
fn vocabulary(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    use stokehold_core::vocab::VariantNames;
    let d = pyo3::types::PyDict::new(py);
    d.set_item("format", stokehold_core::SourceFormat::VARIANTS)?;
    d.set_item("resize", stokehold_image::ResizePolicy::VARIANTS)?;
    d.set_item("filter", stokehold_image::Filter::VARIANTS)?;
    d.set_item("storage", stokehold_pack::StorageKind::VARIANTS)?;
    d.set_item("dtype", stokehold_loader::Dtype::VARIANTS)?;
    d.set_item("data_format", stokehold_loader::Layout::VARIANTS)?;
    d.set_item("shard", stokehold_loader::Shard::VARIANTS)?;
    d.set_item("on_error", stokehold_loader::OnError::VARIANTS)?;
    Ok(d)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add("CHOICES", vocabulary(m.py())?)?;
    let limits = stokehold_core::Limits::default();
    m.add("DEFAULT_MAX_PIXELS", limits.max_pixels)?;
    m.add("DEFAULT_MAX_FILE_BYTES", limits.max_file_bytes)?;
    m.add("DEFAULT_MAX_SOURCE_BYTES", limits.max_source_bytes)?;
    m.add("DEFAULT_MAX_LINE_BYTES", limits.max_line_bytes)?;
    m.add("MAX_THREADS", stokehold_core::max_threads())?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(parse_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(manifest::index, m)?)?;
    m.add_class::<manifest::Manifest>()?;
    m.add_class::<manifest::Sample>()?;
    m.add_class::<manifest::Box>()?;
    m.add_class::<manifest::Finding>()?;
    m.add_function(wrap_pyfunction!(pack::pack, m)?)?;
    m.add_function(wrap_pyfunction!(pack::check_output, m)?)?;
    m.add_function(wrap_pyfunction!(pack::commit, m)?)?;
    m.add_function(wrap_pyfunction!(pack::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(pack::preview, m)?)?;
    m.add_class::<pack::PackReport>()?;
    m.add_class::<loader::NativeLoader>()?;
    m.add_class::<loader::PixelBuffer>()?;
    Ok(())
}
