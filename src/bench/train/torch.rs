//! The PyTorch reference: `scripts/bench_torch.py` on the same shapes, and finding or making a
//! Python that imports torch.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::options::TrainBenchOptions;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TorchModel {
    pub model: String,
    /// Mean over the timed steps.
    pub seconds_per_step: f64,
    /// Median step: OpenMP threads stall badly when other processes share the cores.
    #[serde(default)]
    pub median_seconds_per_step: Option<f64>,
    /// The catalogue softmax alone (logits, log-softmax, loss, forward and backward for a fixed
    /// user batch): the counterpart of `phases.softmax`.
    #[serde(default)]
    pub softmax_seconds_per_step: Option<f64>,
    #[serde(default)]
    pub mean_loss: Option<f64>,
    /// LSTM: whether oneDNN's path was the faster one (the script times both).
    #[serde(default)]
    pub onednn: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TorchRun {
    #[serde(default)]
    pub python: String,
    pub torch: String,
    pub threads: usize,
    pub models: Vec<TorchModel>,
}

/// Runs `scripts/bench_torch.py` with the same shapes and thread count.
pub(super) fn run_torch(
    python: &str,
    script: &Path,
    o: &TrainBenchOptions,
    models: &[&str],
) -> Result<TorchRun, String> {
    let mut r: TorchRun = crate::bench::run_json(
        Command::new(python)
            .arg(script)
            .args(["--songs", &o.songs.to_string()])
            .args(["--batch", &o.batch.to_string()])
            .args(["--history", &o.history.to_string()])
            .args(["--targets", &o.targets.to_string()])
            .args(["--hidden", &o.hidden.to_string()])
            .args(["--emb", &o.emb.to_string()])
            .args(["--layers", &o.layers.to_string()])
            .args(["--steps", &o.steps.max(1).to_string()])
            .args(["--warmup", &o.warmup.to_string()])
            .args(["--dropout", &o.dropout.to_string()])
            .args(["--seed", &o.seed.to_string()])
            .args(["--threads", &rayon::current_num_threads().to_string()])
            .args(["--models", &models.join(",")]),
        python,
        script,
    )?;
    r.python = python.to_string();
    Ok(r)
}

/// A Python that imports torch: the given one, `.venv-torch`, `.venv-bench`, `.venv`, `python3`.
pub fn find_python(given: Option<&str>) -> Result<String, String> {
    crate::bench::python_with(
        "torch",
        given,
        &[
            ".venv-torch/bin/python",
            ".venv-bench/bin/python",
            ".venv/bin/python",
            "python3",
        ],
        "pass --install-reference to create .venv-torch",
    )
}

/// Creates `.venv-torch` with PyTorch from PyPI (large: the wheel pulls the CUDA libraries too;
/// only the CPU is used).
pub fn install_reference() -> Result<String, String> {
    crate::bench::make_venv(".venv-torch", &["torch"])
}
