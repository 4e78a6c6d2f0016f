//! What `bench train` reports: every run, the IndRNN-vs-LSTM and PyTorch ratios, memory.

use serde::Serialize;

use super::options::TrainBenchOptions;
use super::step::ModelRun;
use super::torch::TorchRun;

#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub model: String,
    /// Median steps (means when a median is missing).
    pub torch_seconds_per_step: f64,
    pub ours_cpu_seconds_per_step: f64,
    /// torch ÷ ours: above 1, our CPU backend is faster.
    pub cpu_speedup_vs_torch: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainBench {
    /// Always "synthetic": the histories are generated, not read from data.
    pub data: &'static str,
    pub options: TrainBenchOptions,
    pub cpu_threads: usize,
    pub runs: Vec<ModelRun>,
    /// LSTM seconds per step ÷ IndRNN's, per device (above 1: IndRNN is faster).
    pub indrnn_speedup_over_lstm: Vec<(String, f64)>,
    /// The same for the recurrent part alone (forward + backward phases, without the catalogue
    /// softmax and the optimizer, which are the same for both), per device.
    pub indrnn_encoder_speedup_over_lstm: Vec<(String, f64)>,
    pub gpu_note: Option<String>,
    pub torch: Option<TorchRun>,
    pub torch_note: Option<String>,
    pub vs_torch: Vec<Ratio>,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: Option<u64>,
}
