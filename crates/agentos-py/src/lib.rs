//! `agentos_ccc._native`: the Rust recorder, delivery and license checks for Python.
//!
//! This crate is deliberately thin. Recording is [`agentos_recorder::Recorder`], delivery is
//! [`agentos_delivery::Uploader`] on a private tokio runtime, redaction and the summary
//! allowlist are [`agentos_core::privacy`], license verification is [`agentos_core::license`].
//! The seed-compatible surface (`CCCClient`, the privacy strategy objects, `LicenseClient`, the
//! exception classes) is the pure-Python shim in `python/agentos_ccc/`, which calls in here.
//!
//! Values cross the boundary as JSON text or plain scalars, so the Python side decodes them
//! with `json.loads` and no Rust type leaks into Python. Errors cross as one exception type,
//! `NativeError(kind, code, message, pointer)`, which the shim turns into `LicenseError`,
//! `ValidationError` or `AgentosError`.
//!
//! Every call that touches files or the network releases the GIL ([`Python::detach`]); the
//! recorder sits behind a mutex, so one client may be used from several threads.

mod native;

use pyo3::prelude::*;

/// The extension module. Its classes and functions are documented in `agentos_ccc/_native.pyi`.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    native::register(m)
}
