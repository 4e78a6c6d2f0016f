//! The ranking metrics, defined below training (its validation uses them) in
//! [`crate::train::metrics`]; re-exported here under their evaluation path.

pub use crate::train::metrics::*;
