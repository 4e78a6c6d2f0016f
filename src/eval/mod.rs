//! Evaluation: ranking metrics (defined in `train::metrics`) and (in `compare`) the classic
//! baselines.

pub mod ablate;
pub mod baselines;
pub mod compare;
pub mod metrics;
pub mod plots;
pub mod run;
pub mod similar;
