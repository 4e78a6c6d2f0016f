//! The 1-D wavelet scattering transform with Kymatio 0.3 `Scattering1D` semantics: a Morlet
//! filter bank built in the Fourier domain, reflect padding to a power of two, orders 0, 1 and 2
//! (second order only for j2 > j1), complex modulus, low-pass averaging over T = 2^J and
//! subsampling, with Kymatio's path order (`meta()`).
//!
//! A [`Scattering`] is a plan for one signal length: the filters are built once (f64, then
//! stored sparsely in f32; shared by every plan with the same padded length, J and Q) and each
//! backend keeps what it derives from them (FFT plans, device buffers) in the plan's cache, so
//! transforming many clips of one length pays for setup once.
//!
//! Computation (both backends): FFT the padded signal once; for every first-order wavelet,
//! multiply in the Fourier domain and periodise the product to the path's subsampled length
//! (subsampling in time), inverse FFT at that length, modulus; FFT |U1| and low-pass it into
//! order 1; repeat from |U1| with the second-order wavelets for order 2.

mod cpu;
mod filter_bank;
pub mod gpu;

pub use filter_bank::{FilterBank, Sparse, Wavelet};

use std::any::Any;
use std::sync::{Arc, Mutex};

use crate::backend::{BTensor, Backend, OpResult};
use crate::error::{Error, OpError};

/// Transform parameters. Kymatio's `Q` int means `Q = (q, 1)`: `q` first-order wavelets per
/// octave and one per octave at order 2; the averaging scale is Kymatio's default T = 2^J.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScatteringConfig {
    pub j: u32,
    pub q: u32,
}

impl Default for ScatteringConfig {
    fn default() -> Self {
        ScatteringConfig { j: 8, q: 8 }
    }
}

/// What one output path (row) is: Kymatio's `meta()` for that row. `j1`/`j2` are the wavelets'
/// maximal dyadic subsamplings (Kymatio's `meta()['j']`), `xi1`/`xi2` their centre frequencies
/// in cycles per sample.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PathMeta {
    pub order: u8,
    pub j1: Option<u32>,
    pub j2: Option<u32>,
    pub xi1: Option<f64>,
    pub xi2: Option<f64>,
}

/// One path of the computation tree, in output order.
#[derive(Clone, Copy, Debug)]
pub struct PathSpec {
    pub order: u8,
    /// First-order wavelet index (orders 1 and 2).
    pub n1: usize,
    /// Second-order wavelet index (order 2).
    pub n2: usize,
}

/// A scattering plan for signals of one length. Cheap to share; `Send + Sync`.
pub struct Scattering {
    cfg: ScatteringConfig,
    bank: FilterBank,
    paths: Vec<PathSpec>,
    /// Per-backend derived state (FFT plans, uploaded filters), built on first use.
    cache: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for Scattering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Scattering(J={}, Q={}, n={}, padded={}, paths={}, frames={})",
            self.cfg.j,
            self.cfg.q,
            self.bank.n_input,
            self.bank.n_padded,
            self.n_paths(),
            self.n_frames()
        )
    }
}

fn invalid(detail: String) -> Error {
    Error::Op(OpError::Invalid {
        op: "scattering",
        detail,
    })
}

impl Scattering {
    /// Builds the filter bank for `n_samples`-sample signals. Errors (typed, never a panic) for
    /// J or Q out of range, or a clip too short for J (shorter than T = 2^J, or needing more
    /// reflect padding than the clip holds, as Kymatio refuses too).
    pub fn new(cfg: ScatteringConfig, n_samples: usize) -> Result<Self, Error> {
        let bank = FilterBank::new(cfg.j, cfg.q, n_samples).map_err(invalid)?;
        let mut paths = vec![PathSpec {
            order: 0,
            n1: 0,
            n2: 0,
        }];
        for n1 in 0..bank.psi1.len() {
            paths.push(PathSpec {
                order: 1,
                n1,
                n2: 0,
            });
        }
        for (n1, w1) in bank.psi1.iter().enumerate() {
            for (n2, w2) in bank.psi2.iter().enumerate() {
                if w2.j > w1.j {
                    paths.push(PathSpec { order: 2, n1, n2 });
                }
            }
        }
        Ok(Scattering {
            cfg,
            bank,
            paths,
            cache: Mutex::new(Vec::new()),
        })
    }

    pub fn config(&self) -> ScatteringConfig {
        self.cfg
    }
    pub fn n_samples(&self) -> usize {
        self.bank.n_input
    }
    /// The padded (power-of-two) length every clip is transformed at.
    pub fn n_padded(&self) -> usize {
        self.bank.n_padded
    }
    pub fn n_paths(&self) -> usize {
        self.paths.len()
    }
    pub fn n_frames(&self) -> usize {
        self.bank.n_frames()
    }
    /// The filter bank (for tests and the backends).
    pub fn bank(&self) -> &FilterBank {
        &self.bank
    }
    /// Paths in output order.
    pub fn paths(&self) -> &[PathSpec] {
        &self.paths
    }

    /// Row `i` of the output is `meta()[i]`: order 0, then every first-order path, then the
    /// second-order paths grouped by first-order wavelet (Kymatio's `meta()` order).
    pub fn meta(&self) -> Vec<PathMeta> {
        self.paths
            .iter()
            .map(|p| {
                let w1 = &self.bank.psi1[p.n1];
                let w2 = &self.bank.psi2[p.n2];
                match p.order {
                    0 => PathMeta {
                        order: 0,
                        j1: None,
                        j2: None,
                        xi1: None,
                        xi2: None,
                    },
                    1 => PathMeta {
                        order: 1,
                        j1: Some(w1.j),
                        j2: None,
                        xi1: Some(w1.xi),
                        xi2: None,
                    },
                    _ => PathMeta {
                        order: 2,
                        j1: Some(w1.j),
                        j2: Some(w2.j),
                        xi1: Some(w1.xi),
                        xi2: Some(w2.xi),
                    },
                }
            })
            .collect()
    }

    /// Every FFT length the transform uses: the padded length and each subsampled one.
    pub fn fft_sizes(&self) -> Vec<usize> {
        let lmax = self.bank.log2_n_padded;
        let lmin = lmax - self.bank.log2_t;
        (lmin..=lmax).map(|l| 1usize << l).collect()
    }

    /// `[batch, n_samples]` clips → `[batch, n_paths, n_frames]` scattering coefficients.
    pub fn transform<B: ScatteringOps>(&self, b: &B, clips: &BTensor<B>) -> OpResult<BTensor<B>> {
        b.scattering(self, clips)
    }

    /// The backend's cached state for this plan: the first entry `matches` accepts, else one
    /// built by `make` and kept.
    pub fn cached<T: Any + Send + Sync>(
        &self,
        matches: impl Fn(&T) -> bool,
        make: impl FnOnce() -> OpResult<T>,
    ) -> OpResult<Arc<T>> {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for e in c.iter() {
            if let Ok(t) = e.clone().downcast::<T>() {
                if matches(&t) {
                    return Ok(t);
                }
            }
        }
        let t = Arc::new(make()?);
        c.push(t.clone());
        Ok(t)
    }
}

/// The contract of [`ScatteringOps::scattering`]: clips must be f32 `[batch, plan.n_samples()]`.
pub fn check_clips<S>(plan: &Scattering, clips: &crate::backend::Tensor<S>) -> OpResult<()> {
    clips.expect_dtype("scattering", crate::backend::DType::F32)?;
    if clips.shape().len() != 2 || clips.shape()[1] != plan.n_samples() {
        return Err(OpError::Shape {
            op: "scattering",
            detail: format!(
                "clips must be [batch, {}] for this plan, got {:?}",
                plan.n_samples(),
                clips.shape()
            ),
        });
    }
    Ok(())
}

/// The backend side of the scattering transform. Implemented by `CpuBackend`
/// (`audio/scattering/cpu.rs`) and `GpuBackend` (`audio/scattering/gpu/`).
pub trait ScatteringOps: Backend {
    // ==== what a backend implements ==========================================================

    /// Kernel of [`ScatteringOps::scattering`] on checked clips.
    fn scattering_kernel(
        &self,
        plan: &Scattering,
        clips: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>>;

    // ==== the op API: contract, then kernel ==================================================

    /// `clips`: `[batch, plan.n_samples()]` f32 (see [`check_clips`]).
    /// Returns `[batch, plan.n_paths(), plan.n_frames()]`.
    fn scattering(&self, plan: &Scattering, clips: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        check_clips(plan, clips)?;
        self.scattering_kernel(plan, clips)
    }
}

/// The `features` pipeline's scattering stage: a function of the padded batch `[clips, samples]`
/// that plans once per distinct length (plans of the same padded length share their filters) and
/// returns `[clips, paths, frames]` with the number of first-order paths.
pub struct Stage {
    cfg: ScatteringConfig,
    plans: std::cell::RefCell<std::collections::HashMap<usize, Scattering>>,
    first_order: usize,
}

impl Stage {
    pub fn new(cfg: ScatteringConfig) -> Result<Self, Error> {
        // The first-order paths depend on J and Q only; a short probe plan counts them.
        let probe = Scattering::new(cfg, 1 << (cfg.j + 2).max(12))?;
        let first_order = probe.meta().iter().filter(|m| m.order == 1).count();
        Ok(Stage {
            cfg,
            plans: Default::default(),
            first_order,
        })
    }

    pub fn first_order(&self) -> usize {
        self.first_order
    }

    pub fn run<B: ScatteringOps>(
        &self,
        b: &B,
        clips: &BTensor<B>,
    ) -> OpResult<(BTensor<B>, usize)> {
        let n = clips.cols();
        let mut plans = self.plans.borrow_mut();
        if let std::collections::hash_map::Entry::Vacant(slot) = plans.entry(n) {
            slot.insert(Scattering::new(self.cfg, n).map_err(|e| OpError::Invalid {
                op: "scattering",
                detail: e.to_string(),
            })?);
        }
        let out = plans[&n].transform(b, clips)?;
        Ok((out, self.first_order))
    }
}
