//! The wgpu backend: hand-written WGSL kernels (`shaders/*.wgsl`) behind the same `Backend`
//! trait as the CPU reference. One `call`-style host function per kernel family lives in the
//! op files; the device, pool, batching and read-back live in `context`.

pub mod adapter;
pub mod context;
mod elementwise;
mod embed;
mod matmul;
pub mod memory;
mod model;
pub mod pipeline;
mod reduce;
pub mod shader;
mod softmax;
mod table;

use std::sync::{Arc, Mutex};

pub use context::{GpuBuffer, GpuContext, GpuStats, KernelTime, TimerReport, Work};
pub use elementwise::EwParams;
pub use matmul::{KernelTiming, MatmulKernel, TunedProduct, Tuner};
pub use pipeline::{ShaderChecks, SHADER_CHECKS_ENV};
pub use shader::{Shader, WORKGROUP_SIZE};

/// The shaders of the generic ops (the audio module lists its own: `crate::audio::SHADERS`).
pub static SHADERS: [&Shader; 13] = [
    &elementwise::ELEMENTWISE,
    &matmul::MATMUL,
    &reduce::REDUCE,
    &softmax::SOFTMAX,
    &embed::EMBED,
    &model::INDRNN,
    &model::LSTM,
    &model::OPTIM,
    &model::TOPK,
    &model::NEIGHBOURS,
    &model::DROPOUT,
    &model::SUMSQ,
    &table::TABLE,
];

use super::check::MatmulDims;
use super::{
    Backend, BackendKind, BinaryOp, DType, HostTensor, IndexPlan, LaterRead, OpResult, Packed,
    ReduceOp, Targets, Tensor, UnaryOp,
};
use crate::error::GpuError;

/// A host vector of `t`'s type and length, for a read-back to fill ([`fill_host`]).
fn host_zeros(t: &GpuTensor) -> HostTensor {
    match t.dtype() {
        DType::F32 => HostTensor::F32(vec![0.0; t.len()]),
        DType::U32 => HostTensor::U32(vec![0; t.len()]),
    }
}

/// Copies a tensor's read-back bytes into its host vector.
fn fill_host(out: &mut HostTensor, bytes: &[u8]) {
    match out {
        HostTensor::F32(v) => bytemuck::cast_slice_mut::<f32, u8>(v).copy_from_slice(bytes),
        HostTensor::U32(v) => bytemuck::cast_slice_mut::<u32, u8>(v).copy_from_slice(bytes),
    }
}

pub type GpuStorage = Arc<GpuBuffer>;
pub type GpuTensor = Tensor<GpuStorage>;

/// Device tensors kept under the key they were built for ([`GpuBackend::kept`]).
type Kept = (Vec<u32>, Vec<GpuTensor>);

/// The GPU backend. Cheap to clone; all clones share one device.
#[derive(Clone)]
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    /// Small constant tensors uploaded once and reused while steps repeat them ([`Self::kept`]).
    kept: Arc<Mutex<Vec<Kept>>>,
    /// Which kernel runs products (see [`MatmulKernel`]).
    matmul: MatmulKernel,
    /// Whether `MatmulKernel::Auto` asks the tuner (see [`Self::with_matmul_tuning`]).
    tune: bool,
    tuner: Arc<Tuner>,
    /// Whether a table's optimizer step forms its gradient in the tile (see
    /// [`Self::with_fused_table`]).
    fused_table: bool,
}

/// The environment variable that turns the matmul tuner on (`1`) or off (`0`) whatever the
/// adapter (default: on for hardware GPUs, off for software ones such as lavapipe).
pub const TUNE_ENV: &str = "AINRNN_MATMUL_TUNE";

/// The environment variable that turns the song table's fused optimizer step on (`1`) or off
/// (`0`: the table's gradient formed whole) whatever the device (default: on for hardware GPUs,
/// where it saves memory passes; off for software adapters such as lavapipe, where memory is
/// not what limits and the tile's extra work makes the step slower, and for the CPU backend,
/// whose measured quality figures it would move in the fourth digit; see
/// `CpuBackend::with_fused_table`).
pub const FUSED_TABLE_ENV: &str = "AINRNN_FUSED_TABLE";

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBackend({})", self.ctx.adapter.name)
    }
}

impl GpuBackend {
    /// Opens the adapter chosen from the environment (see [`adapter::choose`]); the matmul
    /// tuner is on for a hardware GPU unless [`TUNE_ENV`] says otherwise.
    pub fn new() -> Result<Self, GpuError> {
        let g = Self::from_context(Arc::new(GpuContext::new()?));
        let g = match context::env_switch(TUNE_ENV)? {
            Some(on) => g.with_matmul_tuning(on),
            None => g,
        };
        Ok(match context::env_switch(FUSED_TABLE_ENV)? {
            Some(on) => g.with_fused_table(on),
            None => g,
        })
    }

    /// A backend on `ctx`, tuning its products and fusing the song table's step when the
    /// adapter is a hardware GPU: there the fastest kernel depends on the chip, and memory
    /// passes set the step's pace, while on a software adapter timing every kernel costs more
    /// than it saves, and the fused step's extra arithmetic costs more than the passes it saves.
    pub fn from_context(ctx: Arc<GpuContext>) -> Self {
        let hardware = !ctx.adapter.software;
        GpuBackend {
            ctx,
            kept: Arc::default(),
            matmul: MatmulKernel::Auto,
            tune: hardware,
            tuner: Arc::default(),
            fused_table: hardware,
        }
    }

    /// The same device and pools with the song table's optimizer step fused or not: fused, the
    /// catalogue gradient gᵀ·u is formed in the tiles of the AdamW pass (`shaders/table.wgsl`)
    /// and never whole; else it is formed, read for the norm, read by AdamW and zeroed, as the
    /// CPU does. The same update up to the norm's rounding.
    pub fn with_fused_table(&self, on: bool) -> Self {
        GpuBackend {
            fused_table: on,
            ..self.clone()
        }
    }

    /// The same device and pools with the matmul tuner on or off: on, each class of products
    /// (transposes, sizes to the next power of two) is timed on every kernel the first time
    /// one runs and then runs on the fastest ([`Tuner`]); off, a fixed rule by size picks the
    /// kernel. Either way a product's result is the same.
    pub fn with_matmul_tuning(&self, on: bool) -> Self {
        GpuBackend {
            tune: on,
            ..self.clone()
        }
    }

    /// Whether products with the backend's own choice of kernel are tuned.
    pub fn matmul_tuning(&self) -> bool {
        self.tune && self.matmul == MatmulKernel::Auto
    }

    /// The tuner's decisions so far (empty when it is off or no product has run).
    pub fn matmul_tuned(&self) -> Vec<TunedProduct> {
        self.tuner.decisions()
    }

    /// The same device and pools with every product (but split-K ones) run by `kernel`:
    /// `bench ops` compares the kernels on one GPU, the op suite checks each.
    pub fn with_matmul_kernel(&self, kernel: MatmulKernel) -> Self {
        GpuBackend {
            matmul: kernel,
            ..self.clone()
        }
    }

    /// Small constant tensors on the device, built and uploaded only when none are kept for
    /// `key` (the fused optimizer's parameter list and block map, the ones of a split-K sum:
    /// the same every step). A few keys are kept, the least recently used dropped first.
    pub fn kept(
        &self,
        key: &[u32],
        build: impl FnOnce() -> OpResult<Vec<GpuTensor>>,
    ) -> OpResult<Vec<GpuTensor>> {
        const KEEP: usize = 8;
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = kept.iter().position(|(k, _)| k == key) {
            let hit = kept.remove(i);
            let tensors = hit.1.clone();
            kept.push(hit);
            return Ok(tensors);
        }
        let tensors = build()?;
        if kept.len() >= KEEP {
            kept.remove(0);
        }
        kept.push((key.to_vec(), tensors.clone()));
        Ok(tensors)
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// An uninitialised tensor; every kernel writing into it covers all elements.
    pub fn empty(&self, shape: &[usize], dtype: DType, what: &str) -> OpResult<GpuTensor> {
        let n = crate::backend::check::elements("alloc", shape)?;
        let buf = self.ctx.alloc(n as u64 * 4, what)?;
        Ok(Tensor::from_parts(shape.to_vec(), dtype, Arc::new(buf)))
    }

    /// `[rows.len(), len]`: each row cut or padded with zeros to `len` values, written straight
    /// into the upload's staging memory (no padded copy on the host first).
    pub fn upload_padded_rows(
        &self,
        rows: &[&[f32]],
        len: usize,
        what: &str,
    ) -> OpResult<GpuTensor> {
        let bytes = (rows.len() * len * 4) as u64;
        let buf = self.ctx.upload_with(bytes, what, |view| {
            write_padded_rows(view.slice(..), rows, len)
        })?;
        Ok(Tensor::from_parts(
            vec![rows.len(), len],
            DType::F32,
            Arc::new(buf),
        ))
    }

    /// Workgroup grid for one invocation per item, [`WORKGROUP_SIZE`] invocations per workgroup.
    pub fn grid(&self, op: &'static str, threads: u64) -> OpResult<[u32; 3]> {
        Ok(self.ctx.threads_grid(op, threads)?)
    }
}

/// Writes `rows` as f32 bytes into `dst` (`rows.len() × len × 4` bytes), each row cut or padded
/// with zeros to `len` values: every byte is written (staging memory may hold old data).
pub fn write_padded_rows(mut dst: wgpu::WriteOnly<'_, [u8]>, rows: &[&[f32]], len: usize) {
    let row_bytes = len * 4;
    for (i, r) in rows.iter().enumerate() {
        let r = &r[..r.len().min(len)];
        let (at, data) = (i * row_bytes, r.len() * 4);
        dst.slice(at..at + data)
            .copy_from_slice(bytemuck::cast_slice(r));
        dst.slice(at + data..at + row_bytes).fill(0);
    }
}

pub fn raw(t: &GpuTensor) -> &GpuBuffer {
    t.storage()
}

/// Copy-on-write: gives `t` storage of its own before an in-place kernel writes to it.
pub fn make_unique(ctx: &GpuContext, t: &mut GpuTensor) -> OpResult<()> {
    if Arc::strong_count(t.storage()) > 1 {
        let copy = ctx.duplicate(t.storage(), t.len() as u64 * 4)?;
        *t.storage_mut() = Arc::new(copy);
    }
    Ok(())
}

impl Backend for GpuBackend {
    type Storage = GpuStorage;

    fn kind(&self) -> BackendKind {
        BackendKind::Gpu
    }

    fn describe(&self) -> String {
        format!(
            "gpu: {} ({}, {}{})",
            self.ctx.adapter.name,
            self.ctx.adapter.backend,
            self.ctx.adapter.device_type,
            if self.matmul_tuning() {
                ", matmul kernels tuned"
            } else {
                ""
            }
        )
    }

    fn zeros(&self, shape: &[usize]) -> OpResult<GpuTensor> {
        let t = self.empty(shape, DType::F32, "zeros")?;
        self.ctx.clear(raw(&t), t.len() as u64 * 4);
        Ok(t)
    }

    fn sync(&self) -> OpResult<()> {
        Ok(self.ctx.sync()?)
    }

    fn flush(&self) -> OpResult<()> {
        Ok(self.ctx.flush()?)
    }

    fn available_memory(&self) -> Option<u64> {
        self.ctx.available_memory()
    }

    fn max_binding_bytes(&self) -> u64 {
        self.ctx.limits.max_storage_buffer_binding_size
    }

    fn zeros_packed(&self, shapes: &[Vec<usize>]) -> OpResult<Packed<GpuStorage>> {
        let sizes: Vec<u64> = shapes
            .iter()
            .map(|s| Ok(crate::backend::check::elements("zeros_packed", s)? as u64 * 4))
            .collect::<OpResult<_>>()?;
        // Each range on a workgroup boundary: `adam_packed` gives every workgroup one tensor.
        let align = u64::from(WORKGROUP_SIZE) * 4;
        let (parent, views) = self.ctx.pack(&sizes, align, "packed tensors")?;
        let whole_len = (parent.bytes() / 4) as usize;
        let parts = shapes
            .iter()
            .zip(views)
            .map(|(s, v)| Tensor::from_parts(s.clone(), DType::F32, Arc::new(v)))
            .collect();
        Ok(Packed {
            parts,
            whole: Some(Tensor::from_parts(vec![whole_len], DType::F32, parent)),
        })
    }

    fn fill_zero(&self, t: &mut GpuTensor) -> OpResult<()> {
        t.expect_dtype("fill_zero", DType::F32)?;
        if Arc::strong_count(t.storage()) > 1 {
            *t = self.zeros(t.shape())?;
            return Ok(());
        }
        self.ctx.clear(raw(t), t.len() as u64 * 4);
        Ok(())
    }

    fn upload_f32_kernel(&self, data: &[f32], shape: &[usize]) -> OpResult<GpuTensor> {
        let buf = self.ctx.upload(bytemuck::cast_slice(data), "tensor f32")?;
        Ok(Tensor::from_parts(
            shape.to_vec(),
            DType::F32,
            Arc::new(buf),
        ))
    }

    fn upload_u32_kernel(&self, data: &[u32], shape: &[usize]) -> OpResult<GpuTensor> {
        let buf = self.ctx.upload(bytemuck::cast_slice(data), "tensor u32")?;
        Ok(Tensor::from_parts(
            shape.to_vec(),
            DType::U32,
            Arc::new(buf),
        ))
    }

    fn to_f32_kernel(&self, t: &GpuTensor) -> OpResult<Vec<f32>> {
        Ok(self.ctx.download_as(raw(t), t.len() as u64 * 4)?)
    }

    fn to_u32_kernel(&self, t: &GpuTensor) -> OpResult<Vec<u32>> {
        Ok(self.ctx.download_as(raw(t), t.len() as u64 * 4)?)
    }

    fn read_later_kernel(&self, ts: &[&GpuTensor]) -> OpResult<LaterRead> {
        let mut out: Vec<HostTensor> = ts.iter().map(|t| host_zeros(t)).collect();
        let srcs: Vec<(&GpuBuffer, u64)> =
            ts.iter().map(|t| (raw(t), t.len() as u64 * 4)).collect();
        let later = self.ctx.download_later(&srcs)?;
        Ok(LaterRead::new(move || {
            later.wait(|i, bytes| fill_host(&mut out[i], bytes))?;
            Ok(out)
        }))
    }

    fn to_host_kernel(&self, ts: &[&GpuTensor]) -> OpResult<Vec<HostTensor>> {
        let mut out: Vec<HostTensor> = ts.iter().map(|t| host_zeros(t)).collect();
        let srcs: Vec<(&GpuBuffer, u64)> =
            ts.iter().map(|t| (raw(t), t.len() as u64 * 4)).collect();
        self.ctx
            .download_many(&srcs, |i, bytes| fill_host(&mut out[i], bytes))?;
        Ok(out)
    }

    fn write_f32_kernel(&self, t: &mut GpuTensor, data: &[f32]) -> OpResult<()> {
        if Arc::strong_count(t.storage()) > 1 {
            // Others still see the old values: write into fresh storage instead.
            let buf = self.ctx.upload(bytemuck::cast_slice(data), "tensor f32")?;
            *t.storage_mut() = Arc::new(buf);
            return Ok(());
        }
        Ok(self.ctx.overwrite(raw(t), bytemuck::cast_slice(data))?)
    }

    fn matmul_kernel(&self, a: &GpuTensor, b: &GpuTensor, d: &MatmulDims) -> OpResult<GpuTensor> {
        matmul::matmul(self, a, b, d)
    }

    fn matmul_into_kernel(
        &self,
        out: &mut GpuTensor,
        a: &GpuTensor,
        b: &GpuTensor,
        d: &MatmulDims,
        alpha: f32,
        beta: f32,
    ) -> OpResult<()> {
        matmul::matmul_into(self, out, a, b, d, alpha, beta)
    }

    fn matmul_bias_kernel(
        &self,
        a: &GpuTensor,
        b: &GpuTensor,
        bias: &GpuTensor,
        d: &MatmulDims,
    ) -> OpResult<GpuTensor> {
        matmul::matmul_bias(self, a, b, bias, d)
    }

    fn binary_kernel(&self, op: BinaryOp, a: &GpuTensor, b: &GpuTensor) -> OpResult<GpuTensor> {
        elementwise::binary(self, op, a, b)
    }

    fn unary_kernel(&self, op: UnaryOp, a: &GpuTensor) -> OpResult<GpuTensor> {
        elementwise::unary(self, op, a)
    }

    fn affine_kernel(&self, a: &GpuTensor, alpha: f32, beta: f32) -> OpResult<GpuTensor> {
        elementwise::affine(self, a, alpha, beta)
    }

    fn axpy_kernel(&self, acc: &mut GpuTensor, x: &GpuTensor, alpha: f32) -> OpResult<()> {
        elementwise::axpy(self, acc, x, alpha)
    }

    fn relu_backward_kernel(&self, y: &GpuTensor, dy: &GpuTensor) -> OpResult<GpuTensor> {
        elementwise::relu_backward(self, y, dy)
    }

    fn reduce_rows_kernel(&self, op: ReduceOp, a: &GpuTensor) -> OpResult<GpuTensor> {
        reduce::reduce_rows(self, op, a)
    }

    fn sum_cols_into_kernel(&self, acc: &mut GpuTensor, a: &GpuTensor) -> OpResult<()> {
        reduce::sum_cols_into(self, acc, a)
    }

    fn sum_cols_kernel(&self, a: &GpuTensor) -> OpResult<GpuTensor> {
        reduce::sum_cols(self, a)
    }

    fn softmax_rows_kernel(&self, a: &GpuTensor, log: bool) -> OpResult<GpuTensor> {
        softmax::softmax_rows(self, a, log)
    }

    fn softmax_rows_backward_kernel(
        &self,
        y: &GpuTensor,
        dy: &GpuTensor,
        log: bool,
    ) -> OpResult<GpuTensor> {
        softmax::softmax_rows_backward(self, y, dy, log)
    }

    fn logsumexp_rows_kernel(&self, a: &GpuTensor) -> OpResult<GpuTensor> {
        softmax::logsumexp_rows(self, a)
    }

    fn cross_entropy_kernel(
        &self,
        logits: &GpuTensor,
        targets: &Targets<GpuStorage>,
    ) -> OpResult<(GpuTensor, GpuTensor)> {
        softmax::cross_entropy(self, logits, targets)
    }

    fn cross_entropy_tile_kernel(
        &self,
        logits: &GpuTensor,
        lse: &GpuTensor,
        row_weight: &GpuTensor,
        targets: &Targets<GpuStorage>,
    ) -> OpResult<(GpuTensor, GpuTensor)> {
        softmax::cross_entropy_tile(self, logits, lse, row_weight, targets)
    }

    fn gather_rows_kernel(
        &self,
        table: &GpuTensor,
        plan: &IndexPlan<GpuStorage>,
    ) -> OpResult<GpuTensor> {
        embed::gather_rows(self, table, plan)
    }

    fn scatter_add_rows_kernel(
        &self,
        dst: &mut GpuTensor,
        src: &GpuTensor,
        plan: &IndexPlan<GpuStorage>,
    ) -> OpResult<()> {
        embed::scatter_add_rows(self, dst, src, plan)
    }
}
