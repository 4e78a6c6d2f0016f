//! Library error types. Every variant names what failed (op, file, field) and why,
//! so the binary can print one clear line; `anyhow` is used only in `main`/`cli`.

use std::path::PathBuf;

/// Errors raised by tensor ops on either backend.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{op}: shape mismatch: {detail}")]
    Shape { op: &'static str, detail: String },
    #[error("{op}: expected {expected} tensor, got {got}")]
    DType {
        op: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error("{op}: index {index} out of range for {len} rows")]
    Index {
        op: &'static str,
        index: u32,
        len: usize,
    },
    #[error("{op}: invalid argument: {detail}")]
    Invalid { op: &'static str, detail: String },
    #[error("{op}: cannot allocate {bytes} bytes of host memory")]
    HostMemory { op: &'static str, bytes: u64 },
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// Errors from the wgpu backend: no adapter, device lost, out of memory, limits.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found (backends: {backends}); install a Vulkan driver (e.g. mesa-vulkan-drivers) or use --backend cpu")]
    NoAdapter { backends: String },
    #[error("no GPU adapter matches WGPU_ADAPTER_NAME={name:?}; adapters seen: {seen}")]
    NoMatchingAdapter { name: String, seen: String },
    #[error("requesting a device from adapter {adapter:?} failed: {reason}")]
    RequestDevice { adapter: String, reason: String },
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    #[error("GPU out of memory while {0}")]
    OutOfMemory(String),
    #[error("GPU validation error in {context}: {message}")]
    Validation { context: String, message: String },
    #[error("{op}: needs {what} = {needed}, but the device allows {limit}")]
    Limit {
        op: &'static str,
        what: &'static str,
        needed: u64,
        limit: u64,
    },
    #[error("reading back GPU buffer failed: {0}")]
    Map(String),
    #[error("waiting for the GPU failed: {0}")]
    Poll(String),
    #[error("{var}={value:?}: expected {expected}")]
    Env {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Errors reading or writing user files. Always carry the path.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    // The OS error is part of the message, not a `source`: `{:#}` chains would print it twice.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}:{line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: field {field}: {reason}")]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("{path}: HDF5 error: {reason}")]
    Hdf5 { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    /// Another run holds the output's writer lock (`io::lock`).
    #[error("{path}: {holder} is writing it; wait for it or choose another output")]
    Locked { path: PathBuf, holder: String },
}

impl IoError {
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        IoError::Io {
            path: path.into(),
            err,
        }
    }
}

/// Errors of the data stages that are not about one file (those are [`IoError`]s).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("invalid {option}: {reason}")]
    Invalid {
        option: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Empty(String),
}

pub type DataResult<T> = std::result::Result<T, DataError>;

/// Top-level library error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Op(#[from] OpError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
