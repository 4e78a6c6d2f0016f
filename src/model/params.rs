//! Trainable parameters with their gradients and Adam moments, on one backend.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::backend::model_ops::{AdamStep, ModelOps};
use crate::backend::{BTensor, Backend, IndexPlan, OpResult};

/// Handle to a parameter in a [`Params`] store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PId(pub usize);

pub struct Param<B: Backend> {
    pub name: String,
    pub shape: Vec<usize>,
    pub value: BTensor<B>,
    pub m: BTensor<B>,
    pub v: BTensor<B>,
    /// Accumulated gradient of the current step (`None`: untouched this step).
    pub grad: Option<BTensor<B>>,
    /// AdamW weight decay applies (not to biases and scalars).
    pub decay: bool,
    /// Clamp after each step (IndRNN recurrent weights).
    pub clamp: Option<(f32, f32)>,
}

/// Optimizer settings (defaults from the AINRNN paper: learning rate 0.0005).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct OptimConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// Global gradient-norm limit.
    pub clip_norm: f32,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            lr: 5e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-5,
            clip_norm: 5.0,
        }
    }
}

pub struct Params<B: Backend> {
    pub list: Vec<Param<B>>,
    /// Optimizer steps taken (Adam's t).
    pub step: u32,
}

impl<B: ModelOps> Params<B> {
    pub fn new() -> Self {
        Params {
            list: Vec::new(),
            step: 0,
        }
    }

    /// Adds a parameter with the given initial values.
    pub fn add(
        &mut self,
        b: &B,
        name: &str,
        shape: &[usize],
        init: Vec<f32>,
        decay: bool,
    ) -> OpResult<PId> {
        let value = b.upload_f32(&init, shape)?;
        self.list.push(Param {
            name: name.to_string(),
            shape: shape.to_vec(),
            value,
            m: b.zeros(shape)?,
            v: b.zeros(shape)?,
            grad: None,
            decay,
            clamp: None,
        });
        Ok(PId(self.list.len() - 1))
    }

    /// Xavier/Glorot-uniform matrix `[fan_in, fan_out]`.
    pub fn xavier(
        &mut self,
        b: &B,
        rng: &mut impl Rng,
        name: &str,
        fan_in: usize,
        fan_out: usize,
    ) -> OpResult<PId> {
        let a = (6.0 / (fan_in + fan_out).max(1) as f32).sqrt();
        let init = (0..fan_in * fan_out)
            .map(|_| rng.random_range(-a..a))
            .collect();
        self.add(b, name, &[fan_in, fan_out], init, true)
    }

    /// Uniform `[-a, a)` tensor.
    pub fn uniform(
        &mut self,
        b: &B,
        rng: &mut impl Rng,
        name: &str,
        shape: &[usize],
        a: f32,
        decay: bool,
    ) -> OpResult<PId> {
        let n: usize = shape.iter().product();
        let init = (0..n)
            .map(|_| {
                if a > 0.0 {
                    rng.random_range(-a..a)
                } else {
                    0.0
                }
            })
            .collect();
        self.add(b, name, shape, init, decay)
    }

    pub fn zeros(&mut self, b: &B, name: &str, shape: &[usize]) -> OpResult<PId> {
        self.add(b, name, shape, vec![0.0; shape.iter().product()], false)
    }

    pub fn get(&self, id: PId) -> &BTensor<B> {
        &self.list[id.0].value
    }

    /// Replaces parameter `id`'s values (its shape's worth; the optimizer moments are kept).
    pub fn set(&mut self, b: &B, id: PId, values: &[f32]) -> OpResult<()> {
        let p = &mut self.list[id.0];
        p.value = b.upload_f32(values, &p.shape)?;
        Ok(())
    }

    /// Adds `g` to the parameter's gradient of this step.
    pub fn acc_grad(&mut self, b: &B, id: PId, g: BTensor<B>) -> OpResult<()> {
        let p = &mut self.list[id.0];
        match &mut p.grad {
            None => p.grad = Some(g.reshape(&p.shape)?),
            Some(acc) => b.axpy(acc, &g, 1.0)?,
        }
        Ok(())
    }

    /// Adds `g`'s rows into the rows of parameter `id`'s gradient that `plan` names (the
    /// backward of a row gather), in place when the gradient exists: a `[rows, dim]` table
    /// gradient is zeroed once per step, not once per gather.
    pub fn acc_grad_rows(
        &mut self,
        b: &B,
        id: PId,
        g: &BTensor<B>,
        plan: &IndexPlan<B::Storage>,
    ) -> OpResult<()> {
        let p = &mut self.list[id.0];
        if p.grad.is_none() {
            p.grad = Some(b.zeros(&p.shape)?);
        }
        let acc = p.grad.as_mut().expect("set just above");
        b.scatter_add_rows(acc, g, plan)
    }

    pub fn zero_grads(&mut self) {
        for p in &mut self.list {
            p.grad = None;
        }
    }

    /// Global-norm clipping factor and one AdamW step over every parameter with a gradient,
    /// all on the device (no read-back), the clamps inside the Adam pass. Clears the gradients.
    pub fn apply(&mut self, b: &B, cfg: &OptimConfig) -> OpResult<()> {
        self.step += 1;
        let mut sumsq = b.zeros(&[1])?;
        let grads: Vec<&BTensor<B>> = self.list.iter().filter_map(|p| p.grad.as_ref()).collect();
        b.sum_squares_many_into(&mut sumsq, &grads)?;
        let scale = b.clip_scale(&sumsq, cfg.clip_norm)?;
        for p in &mut self.list {
            let Some(g) = p.grad.take() else { continue };
            let step = AdamStep {
                lr: cfg.lr,
                beta1: cfg.beta1,
                beta2: cfg.beta2,
                eps: cfg.eps,
                weight_decay: if p.decay { cfg.weight_decay } else { 0.0 },
                t: self.step,
                clamp: p.clamp,
            };
            b.adam_step(&mut p.value, &g, &mut p.m, &mut p.v, &scale, &step)?;
        }
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.list
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum()
    }
}

impl<B: ModelOps> Default for Params<B> {
    fn default() -> Self {
        Self::new()
    }
}
