//! The bottom layer under everything that touches files: atomic output ([`AtomicFile`]), writer locks ([`OutputLock`]), free disk and memory ([`space`]), whether an output names an input ([`paths`]), what a file is ([`sniff`]),
//! shared HDF5 helpers ([`h5`]) and the `features.h5` song table reader ([`features_h5`]),
//! which the audio stage writes and the data stage reads. Depends only on [`crate::error`].

pub mod atomic;
pub mod features_h5;
pub mod h5;
pub mod lock;
pub mod paths;
pub mod sniff;
pub mod space;

pub use atomic::{check_output, write_atomic, AtomicFile, BackgroundWriter};
pub use lock::OutputLock;
