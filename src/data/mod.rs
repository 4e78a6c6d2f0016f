//! The data layer: readers for the listening data (Taste Profile triplets, HetRec Last.fm-2K,
//! synthetic triplets), the song side (MSD per-track and summary HDF5 files, the MSD subset CSV
//! and artist-term tables, audio feature files), user profiles, filtering, user portraits,
//! cross-validation folds, and the one dataset file (`dataset.h5`) the model and evaluation read.
//!
//! Pipeline of `ainrnn prepare` ([`prepare::prepare`]): read interactions (streaming, into CSR
//! with interned ids) → filter users and songs → join song metadata and artist terms → portraits
//! → song vectors → folds → [`Dataset::save`]. Every reader reports malformed lines with file,
//! line number and reason, counts and skips them (or fails on the first with `strict`).
//!
//! History order: the Taste Profile has no timestamps; a user's interactions are kept in the
//! order they appear in the input file. That order is *not* temporal.

pub mod catalog;
pub mod dataset;
pub mod diag;
pub mod features;
pub mod folds;
pub mod hetrec;
pub mod interactions;
pub mod lines;
pub mod metadata;
pub mod msd;
pub mod plausible;
pub mod portrait;
pub mod prepare;
pub mod profiles;
pub mod progress;
pub mod rng;
pub mod stats;
pub mod synth;
pub mod synth_audio;
pub mod terms;
pub mod triplets;
pub mod vectors;

pub use dataset::{Dataset, Portraits, SongMeta, SongVectors, Split};
pub use diag::{Duplicates, FileReport, Implausible, Malformed};
pub use interactions::Interactions;

pub use crate::error::{DataError, DataResult};
