//! ainrnn: a GPU compute engine for music recommendation (AINRNN: attention-integrated IndRNN).
//!
//! Layers: [`backend`] (tensors, CPU reference and wgpu kernels), then the music-specific
//! modules built on it. The binary (`src/main.rs`, `src/cli.rs`) only wires them together.

pub mod audio;
pub mod backend;
pub mod data;
pub mod demo;
pub mod error;
pub mod eval;
pub mod io;
pub mod model;
pub mod text;
pub mod train;

pub use error::{Error, Result};
pub mod bench;
pub mod info;
