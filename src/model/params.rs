//! Trainable parameters with their gradients and Adam moments, on one backend.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::backend::model_ops::{AdamSlot, AdamStep, ModelOps, ProductGrad};
use crate::backend::{check, BTensor, Backend, IndexPlan, OpResult};
use crate::error::OpError;

/// Bytes a parameter takes in a packed group at most (the GPU starts each range on a 1 KiB
/// boundary, its workgroup of 256 elements).
fn packed_bytes(shape: &[usize]) -> u64 {
    (shape.iter().product::<usize>() as u64 * 4)
        .max(4)
        .next_multiple_of(1024)
}

/// Handle to a parameter in a [`Params`] store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PId(pub usize);

pub struct Param<B: Backend> {
    pub name: String,
    pub shape: Vec<usize>,
    pub value: BTensor<B>,
    pub m: BTensor<B>,
    pub v: BTensor<B>,
    /// Gradient accumulator, zero between steps (`None` until the store is packed).
    grad: Option<BTensor<B>>,
    /// A gradient was accumulated into `grad` this step.
    touched: bool,
    /// AdamW weight decay applies (not to biases and scalars).
    pub decay: bool,
    /// Clamp after each step (IndRNN recurrent weights).
    pub clamp: Option<(f32, f32)>,
    /// A song table: its gradient may be kept unformed (see [`Params::acc_grad_product`]).
    pub table: bool,
    /// This step's unformed gradient, when kept.
    product: Option<Product<B>>,
}

/// A table's gradient kept unformed: `gᵀ·u` plus routed rows (see [`ProductGrad`]).
struct Product<B: Backend> {
    g: BTensor<B>,
    u: BTensor<B>,
    rows: Option<(BTensor<B>, IndexPlan<B::Storage>)>,
}

impl<B: Backend> Product<B> {
    fn ops(&self) -> ProductGrad<'_, B::Storage> {
        ProductGrad {
            g: &self.g,
            u: &self.u,
            rows: self.rows.as_ref().map(|(src, plan)| (src, plan)),
        }
    }
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

/// The parameters of a model. At the first gradient the store is *packed*: values, gradients
/// and Adam moments move into [`Backend::zeros_packed`] groups (on the GPU, four buffers per
/// group, every parameter at the same offset in each), so that the optimizer step over all
/// parameters is one dispatch per group and the gradient norm one reduction per group.
pub struct Params<B: Backend> {
    pub list: Vec<Param<B>>,
    /// Optimizer steps taken (Adam's t).
    pub step: u32,
    packed: bool,
    /// Each group's parameters and their gradients as one flat tensor (GPU), read for the
    /// global norm.
    grad_wholes: Vec<(std::ops::Range<usize>, BTensor<B>)>,
    /// Tables keep their catalogue gradient unformed ([`ModelOps::fused_table`], read when
    /// packing): each table then packs alone, so that the norm skips its unused gradient.
    fused: bool,
}

impl<B: ModelOps> Params<B> {
    pub fn new() -> Self {
        Params {
            list: Vec::new(),
            step: 0,
            packed: false,
            grad_wholes: Vec::new(),
            fused: false,
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
            touched: false,
            decay,
            clamp: None,
            table: false,
            product: None,
        });
        self.packed = false;
        Ok(PId(self.list.len() - 1))
    }

    /// The element count of a parameter of `shape`, refused before its initial values are made
    /// on the host when the backend could not hold it in one tensor: a `--hidden` of 2^40 on
    /// the GPU otherwise aborted the process allocating them (the CPU's sizes are checked
    /// against the memory available by [`crate::model::fits_in_memory`]).
    fn elements(b: &B, name: &str, shape: &[usize]) -> OpResult<usize> {
        let n = check::elements("params", shape)?;
        let (bytes, limit) = (n as u64 * 4, b.max_binding_bytes());
        if bytes > limit {
            return Err(OpError::Invalid {
                op: "params",
                detail: format!(
                    "parameter {name} {shape:?} takes {bytes} bytes; the backend binds at most {limit}"
                ),
            });
        }
        Ok(n)
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
        let n = Self::elements(b, name, &[fan_in, fan_out])?;
        let a = (6.0 / (fan_in + fan_out).max(1) as f32).sqrt();
        let init = (0..n).map(|_| rng.random_range(-a..a)).collect();
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
        let n = Self::elements(b, name, shape)?;
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
        let n = Self::elements(b, name, shape)?;
        self.add(b, name, shape, vec![0.0; n], false)
    }

    pub fn get(&self, id: PId) -> &BTensor<B> {
        &self.list[id.0].value
    }

    /// Replaces parameter `id`'s values (its shape's worth; the optimizer moments are kept).
    pub fn set(&mut self, b: &B, id: PId, values: &[f32]) -> OpResult<()> {
        b.write_f32(&mut self.list[id.0].value, values)
    }

    /// Moves every parameter into packed groups (see [`Params`]); a no-op once packed, until a
    /// parameter is added. Groups are consecutive parameters whose bytes fit one binding.
    fn pack(&mut self, b: &B) -> OpResult<()> {
        if self.packed {
            return Ok(());
        }
        let limit = b.max_binding_bytes();
        self.fused = b.fused_table();
        let alone = |p: &Param<B>| self.fused && p.table;
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let mut bytes = 0u64;
        for (i, p) in self.list.iter().enumerate() {
            let need = packed_bytes(&p.shape);
            match groups.last_mut() {
                Some(g) if bytes + need <= limit && !alone(p) && !alone(&self.list[g.start]) => {
                    g.end = i + 1;
                    bytes += need;
                }
                _ => {
                    groups.push(i..i + 1);
                    bytes = need;
                }
            }
        }
        self.grad_wholes.clear();
        for range in groups {
            let list = &mut self.list[range.clone()];
            let shapes: Vec<Vec<usize>> = list.iter().map(|p| p.shape.clone()).collect();
            let [values, grads, ms, vs] = [(); 4].map(|_| b.zeros_packed(&shapes));
            let (values, grads, ms, vs) = (values?, grads?, ms?, vs?);
            let parts = values
                .parts
                .into_iter()
                .zip(grads.parts)
                .zip(ms.parts)
                .zip(vs.parts);
            for (p, (((mut value, mut grad), mut m), mut v)) in list.iter_mut().zip(parts) {
                // 0 + x: an exact copy on both backends.
                b.axpy(&mut value, &p.value, 1.0)?;
                b.axpy(&mut m, &p.m, 1.0)?;
                b.axpy(&mut v, &p.v, 1.0)?;
                if let (Some(old), true) = (&p.grad, p.touched) {
                    b.axpy(&mut grad, old, 1.0)?;
                }
                (p.value, p.m, p.v, p.grad) = (value, m, v, Some(grad));
            }
            self.grad_wholes.extend(grads.whole.map(|w| (range, w)));
        }
        self.packed = true;
        Ok(())
    }

    /// Parameter `id`'s gradient accumulator, marked as written this step.
    fn grad_slot(&mut self, b: &B, id: PId) -> OpResult<&mut BTensor<B>> {
        self.pack(b)?;
        let p = &mut self.list[id.0];
        p.touched = true;
        p.grad.as_mut().ok_or_else(|| OpError::Invalid {
            op: "acc_grad",
            detail: format!("parameter {} has no gradient after packing", p.name),
        })
    }

    /// The gradient accumulated this step, formed (`None` when the parameter got none).
    pub fn grad(&mut self, b: &B, id: PId) -> OpResult<Option<&BTensor<B>>> {
        self.form_product(b, id)?;
        let p = &self.list[id.0];
        Ok(p.grad.as_ref().filter(|_| p.touched))
    }

    /// Forms a kept product gradient into the parameter's gradient accumulator.
    fn form_product(&mut self, b: &B, id: PId) -> OpResult<()> {
        let Some(t) = self.list[id.0].product.take() else {
            return Ok(());
        };
        let slot = self.grad_slot(b, id)?;
        b.matmul_into(slot, &t.g, &t.u, true, false, 1.0, 1.0)?;
        if let Some((src, plan)) = &t.rows {
            b.scatter_add_rows(slot, src, plan)?;
        }
        Ok(())
    }

    /// Adds `gᵀ·u` (g `[K, N]`, u `[K, D]`: the catalogue softmax's gradient of a song table
    /// `[N, D]`) to the gradient of parameter `id`. A table on a backend that fuses its step
    /// keeps the two factors instead (and, by [`Params::acc_grad_rows`], one set of routed
    /// rows): the optimizer forms each element where it uses it ([`ModelOps::adam_table`]).
    pub fn acc_grad_product(
        &mut self,
        b: &B,
        id: PId,
        g: &BTensor<B>,
        u: &BTensor<B>,
    ) -> OpResult<()> {
        self.pack(b)?;
        let p = &mut self.list[id.0];
        if self.fused && p.table && p.product.is_none() {
            check::matmul(g, u, true, false)?;
            if p.shape != [g.cols(), u.cols()] {
                return Err(OpError::Shape {
                    op: "acc_grad_product",
                    detail: format!(
                        "gradient {} x {} for parameter {} of {:?}",
                        g.cols(),
                        u.cols(),
                        p.name,
                        p.shape
                    ),
                });
            }
            p.product = Some(Product {
                g: g.clone(),
                u: u.clone(),
                rows: None,
            });
            return Ok(());
        }
        self.acc_grad_matmul(b, id, g, u, true, false)
    }

    /// Whether the next [`Self::acc_grad_product`] into table `id` keeps its gradient
    /// unformed: the backend fuses the table's optimizer step and none is kept yet this step.
    pub fn keeps_product(&mut self, b: &B, id: PId) -> OpResult<bool> {
        self.pack(b)?;
        let p = &self.list[id.0];
        Ok(self.fused && p.table && p.product.is_none())
    }

    /// Whether table `id` holds this step's gradient unformed (read by the tests).
    pub fn product_kept(&self, id: PId) -> bool {
        self.list[id.0].product.is_some()
    }

    /// Adds `g` (the parameter's element count, any shape) to the parameter's gradient.
    pub fn acc_grad(&mut self, b: &B, id: PId, g: BTensor<B>) -> OpResult<()> {
        b.axpy(self.grad_slot(b, id)?, &g, 1.0)
    }

    /// Adds the product `op(x) · op(y)` (the parameter's element count, any shape: a `[1, 1]`
    /// dot product into a scalar) to its gradient, in the matmul.
    pub fn acc_grad_matmul(
        &mut self,
        b: &B,
        id: PId,
        x: &BTensor<B>,
        y: &BTensor<B>,
        trans_x: bool,
        trans_y: bool,
    ) -> OpResult<()> {
        let out = check::matmul(x, y, trans_x, trans_y)?.out_shape();
        let slot = self.grad_slot(b, id)?;
        if slot.shape() == out.as_slice() {
            return b.matmul_into(slot, x, y, trans_x, trans_y, 1.0, 1.0);
        }
        let shape = slot.shape().to_vec();
        slot.set_shape(&out)?;
        let r = b.matmul_into(slot, x, y, trans_x, trans_y, 1.0, 1.0);
        slot.set_shape(&shape)?;
        r
    }

    /// Adds the column sums of `g` to the parameter's gradient (a bias).
    pub fn acc_grad_sum_cols(&mut self, b: &B, id: PId, g: &BTensor<B>) -> OpResult<()> {
        b.sum_cols_into(self.grad_slot(b, id)?, g)
    }

    /// Adds `g`'s rows into the rows of parameter `id`'s gradient that `plan` names (the
    /// backward of a row gather), in place.
    pub fn acc_grad_rows(
        &mut self,
        b: &B,
        id: PId,
        g: &BTensor<B>,
        plan: &IndexPlan<B::Storage>,
    ) -> OpResult<()> {
        let p = &mut self.list[id.0];
        if let Some(t) = p.product.as_mut().filter(|t| t.rows.is_none()) {
            check::scatter(&p.value, g, plan)?;
            t.rows = Some((g.clone(), plan.clone()));
            return Ok(());
        }
        b.scatter_add_rows(self.grad_slot(b, id)?, g, plan)
    }

    /// Discards this step's gradients.
    pub fn zero_grads(&mut self, b: &B) -> OpResult<()> {
        for p in &mut self.list {
            if let (Some(g), true) = (&mut p.grad, p.touched) {
                b.fill_zero(g)?;
            }
            p.touched = false;
            p.product = None;
        }
        Ok(())
    }

    /// Global-norm clipping factor and one AdamW step over every parameter with a gradient,
    /// all on the device (no read-back), the clamps inside the Adam pass; on the GPU one
    /// dispatch per packed group, and one per table whose gradient was kept unformed. Leaves
    /// the gradients zeroed.
    pub fn apply(&mut self, b: &B, cfg: &OptimConfig) -> OpResult<()> {
        self.step += 1;
        // A kept product that met another gradient (not the rows it keeps) is formed into it.
        for i in 0..self.list.len() {
            if self.list[i].touched {
                self.form_product(b, PId(i))?;
            }
        }
        let mut sumsq = b.zeros(&[1])?;
        // Untouched gradients are zero: the packed wholes of groups with a gradient give the
        // same norm in fewer passes.
        let grads: Vec<&BTensor<B>> = if self.packed && !self.grad_wholes.is_empty() {
            self.grad_wholes
                .iter()
                .filter(|(r, _)| self.list[r.clone()].iter().any(|p| p.touched))
                .map(|(_, w)| w)
                .collect()
        } else {
            self.list
                .iter()
                .filter(|p| p.touched)
                .filter_map(|p| p.grad.as_ref())
                .collect()
        };
        b.sum_squares_many_into(&mut sumsq, &grads)?;
        // Kept products: |gᵀu|² = Σ (g·gᵀ) ∘ (u·uᵀ), two K x K products (K the batch) instead
        // of a pass over N x D, then each named row's correction (`table_rows`).
        let mut rows = Vec::new();
        for (i, p) in self.list.iter().enumerate() {
            let Some(t) = &p.product else { continue };
            let (x, corr) = b.table_rows(&t.ops())?;
            let gg = b.matmul(&t.g, &t.g, false, true)?;
            let uu = b.matmul(&t.u, &t.u, false, true)?;
            let kk = gg.len();
            sumsq.set_shape(&[1, 1])?;
            let dot = b.matmul_into(
                &mut sumsq,
                &gg.reshape(&[1, kk])?,
                &uu.reshape(&[kk, 1])?,
                false,
                false,
                1.0,
                1.0,
            );
            sumsq.set_shape(&[1])?;
            dot?;
            b.sum_cols_into(&mut sumsq, &corr)?;
            rows.push((i, x));
        }
        let scale = b.clip_scale(&sumsq, cfg.clip_norm)?;
        let t = self.step;
        let step_of = |p: &Param<B>| AdamStep {
            lr: cfg.lr,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.eps,
            weight_decay: if p.decay { cfg.weight_decay } else { 0.0 },
            t,
            clamp: p.clamp,
        };
        for (i, x) in rows {
            let p = &mut self.list[i];
            let step = step_of(p);
            if let Some(t) = p.product.take() {
                b.adam_table(
                    &mut p.value,
                    &mut p.m,
                    &mut p.v,
                    &t.ops(),
                    &x,
                    &scale,
                    &step,
                )?;
            }
        }
        let mut slots: Vec<AdamSlot<'_, B::Storage>> = self
            .list
            .iter_mut()
            .filter(|p| p.touched)
            .filter_map(|p| {
                let step = step_of(p);
                p.touched = false;
                Some(AdamSlot {
                    p: &mut p.value,
                    g: p.grad.as_mut()?,
                    m: &mut p.m,
                    v: &mut p.v,
                    step,
                })
            })
            .collect();
        b.adam_many(&mut slots, &scale)
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
