//! Evaluation: ranking metrics and (in `compare`) the classic baselines.

pub mod baselines;
pub mod metrics;
pub mod run;
