//! Audio feature pipelines written against the `Backend` ops.

pub mod scattering;
