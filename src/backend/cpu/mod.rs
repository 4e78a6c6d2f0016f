//! The CPU reference backend: plain Rust, f64 accumulation where it matters for accuracy,
//! threads (rayon) and a well-kept GEMM (`matrixmultiply`, beside unpacked kernels for the
//! catalogue's few-row products) for speed. Every GPU kernel is
//! tested against this backend.
//!
//! Kernel API for the modules above `backend` (audio writes its CPU kernels against it, as
//! burn's custom-kernel example does): [`f32s`], [`u32s`], [`f32s_mut`], [`tensor`] for
//! typed access to a tensor's host storage, [`math`] for the vector helpers, and the GEMM
//! drivers [`sgemm_rm`] and [`par_gemm`].

mod elementwise;
mod embed;
pub mod math;
mod matmul;
pub(crate) mod model;
mod reduce;
#[cfg(target_arch = "x86_64")]
mod skinny;
mod softmax;

use std::sync::Arc;

pub use matmul::{par_gemm, sgemm_rm, Gemm};

use super::check::MatmulDims;
use super::{
    Backend, BackendKind, BinaryOp, DType, IndexPlan, OpResult, ReduceOp, Targets, Tensor, UnaryOp,
};
use crate::error::OpError;

/// Host storage: a shared vector of either element type.
#[derive(Clone, Debug)]
pub enum CpuData {
    F32(Vec<f32>),
    U32(Vec<u32>),
}

pub type CpuStorage = Arc<CpuData>;
pub type CpuTensor = Tensor<CpuStorage>;

/// Work below this many elements runs on one thread: spawning costs more than it saves.
pub(crate) const PAR_MIN: usize = 1 << 15;

/// The CPU backend. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CpuBackend {
    /// Whether a song table's optimizer step forms its gradient block by block (off by
    /// default: see [`Self::with_fused_table`]).
    fused_table: bool,
}

impl CpuBackend {
    pub fn new() -> Self {
        keep_freed_memory();
        CpuBackend { fused_table: false }
    }

    /// The backend with a song table's optimizer step fused (`ModelOps::adam_table`, the
    /// gradient formed a block of 64 rows at a time by the GEMM that forms it whole otherwise,
    /// and stepped while the block is in cache: at the paper's scale a faster step and 175 MB
    /// less memory) or not (formed whole, then AdamW: the default, and the reference the fused
    /// step of either backend is tested against). The default stays formed because the fused
    /// step rounds the clipping norm otherwise, which moves the README's measured quality
    /// figures in their fourth digit (`AINRNN_FUSED_TABLE=1` takes the fused one).
    pub fn with_fused_table(&self, on: bool) -> Self {
        CpuBackend { fused_table: on }
    }
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// Every op returns a fresh output, and a training step frees and reallocates the same large
/// blocks (hundreds of KB to MB) again and again. glibc serves blocks that size by `mmap` and
/// gives them back on `free`, so each step paid page faults and kernel zeroing for all of them
/// (`perf`: page faults and memset ≈ 8 % of an LSTM step; the step 20–25 % slower). Raising the
/// mmap and trim thresholds once keeps freed blocks in the heap for reuse; the cost is that the
/// process keeps its peak heap. Elsewhere (other allocators) nothing changes.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only sets allocator parameters; called once, before heavy use.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}

pub fn f32s<'a>(op: &'static str, t: &'a CpuTensor) -> OpResult<&'a [f32]> {
    match &**t.storage() {
        CpuData::F32(v) => Ok(v),
        CpuData::U32(_) => Err(OpError::DType {
            op,
            expected: "f32",
            got: "u32",
        }),
    }
}

pub fn u32s<'a>(op: &'static str, t: &'a CpuTensor) -> OpResult<&'a [u32]> {
    match &**t.storage() {
        CpuData::U32(v) => Ok(v),
        CpuData::F32(_) => Err(OpError::DType {
            op,
            expected: "u32",
            got: "f32",
        }),
    }
}

/// Mutable access for in-place ops; copies first when the storage is shared.
pub fn f32s_mut<'a>(op: &'static str, t: &'a mut CpuTensor) -> OpResult<&'a mut [f32]> {
    match Arc::make_mut(t.storage_mut()) {
        CpuData::F32(v) => Ok(v),
        CpuData::U32(_) => Err(OpError::DType {
            op,
            expected: "f32",
            got: "u32",
        }),
    }
}

pub fn tensor(shape: Vec<usize>, data: Vec<f32>) -> CpuTensor {
    debug_assert_eq!(shape.iter().product::<usize>(), data.len());
    Tensor::from_parts(shape, DType::F32, Arc::new(CpuData::F32(data)))
}

impl Backend for CpuBackend {
    type Storage = CpuStorage;

    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn describe(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn zeros(&self, shape: &[usize]) -> OpResult<CpuTensor> {
        let n = crate::backend::check::elements("zeros", shape)?;
        Ok(tensor(
            shape.to_vec(),
            crate::backend::host_zeroed("zeros", n)?,
        ))
    }

    fn available_memory(&self) -> Option<u64> {
        crate::io::space::available_memory_bytes()
    }

    fn sync(&self) -> OpResult<()> {
        Ok(())
    }

    fn fill_zero(&self, t: &mut CpuTensor) -> OpResult<()> {
        if Arc::strong_count(t.storage()) > 1 {
            *t = self.zeros(t.shape())?;
            return Ok(());
        }
        f32s_mut("fill_zero", t)?.fill(0.0);
        Ok(())
    }

    fn upload_f32_kernel(&self, data: &[f32], shape: &[usize]) -> OpResult<CpuTensor> {
        Ok(tensor(shape.to_vec(), data.to_vec()))
    }

    fn upload_u32_kernel(&self, data: &[u32], shape: &[usize]) -> OpResult<CpuTensor> {
        Ok(Tensor::from_parts(
            shape.to_vec(),
            DType::U32,
            Arc::new(CpuData::U32(data.to_vec())),
        ))
    }

    fn to_f32_kernel(&self, t: &CpuTensor) -> OpResult<Vec<f32>> {
        Ok(f32s("to_f32", t)?.to_vec())
    }

    fn to_u32_kernel(&self, t: &CpuTensor) -> OpResult<Vec<u32>> {
        Ok(u32s("to_u32", t)?.to_vec())
    }

    fn write_f32_kernel(&self, t: &mut CpuTensor, data: &[f32]) -> OpResult<()> {
        f32s_mut("write_f32", t)?.copy_from_slice(data);
        Ok(())
    }

    fn matmul_kernel(&self, a: &CpuTensor, b: &CpuTensor, d: &MatmulDims) -> OpResult<CpuTensor> {
        matmul::matmul(a, b, d)
    }

    fn matmul_bias_kernel(
        &self,
        a: &CpuTensor,
        b: &CpuTensor,
        bias: &CpuTensor,
        d: &MatmulDims,
    ) -> OpResult<CpuTensor> {
        matmul::matmul_bias(a, b, bias, d)
    }

    fn matmul_into_kernel(
        &self,
        out: &mut CpuTensor,
        a: &CpuTensor,
        b: &CpuTensor,
        d: &MatmulDims,
        alpha: f32,
        beta: f32,
    ) -> OpResult<()> {
        matmul::matmul_into(out, a, b, d, alpha, beta)
    }

    fn binary_kernel(&self, op: BinaryOp, a: &CpuTensor, b: &CpuTensor) -> OpResult<CpuTensor> {
        elementwise::binary(op, a, b)
    }

    fn unary_kernel(&self, op: UnaryOp, a: &CpuTensor) -> OpResult<CpuTensor> {
        elementwise::unary(op, a)
    }

    fn affine_kernel(&self, a: &CpuTensor, alpha: f32, beta: f32) -> OpResult<CpuTensor> {
        elementwise::affine(a, alpha, beta)
    }

    fn axpy_kernel(&self, acc: &mut CpuTensor, x: &CpuTensor, alpha: f32) -> OpResult<()> {
        elementwise::axpy(acc, x, alpha)
    }

    fn relu_backward_kernel(&self, y: &CpuTensor, dy: &CpuTensor) -> OpResult<CpuTensor> {
        elementwise::relu_backward(y, dy)
    }

    fn reduce_rows_kernel(&self, op: ReduceOp, a: &CpuTensor) -> OpResult<CpuTensor> {
        reduce::reduce_rows(op, a)
    }

    fn sum_cols_kernel(&self, a: &CpuTensor) -> OpResult<CpuTensor> {
        reduce::sum_cols(a)
    }

    fn softmax_rows_kernel(&self, a: &CpuTensor, log: bool) -> OpResult<CpuTensor> {
        softmax::softmax_rows(a, log)
    }

    fn softmax_rows_backward_kernel(
        &self,
        y: &CpuTensor,
        dy: &CpuTensor,
        log: bool,
    ) -> OpResult<CpuTensor> {
        softmax::softmax_rows_backward(y, dy, log)
    }

    fn logsumexp_rows_kernel(&self, a: &CpuTensor) -> OpResult<CpuTensor> {
        softmax::logsumexp_rows(a)
    }

    fn cross_entropy_kernel(
        &self,
        logits: &CpuTensor,
        targets: &Targets<CpuStorage>,
    ) -> OpResult<(CpuTensor, CpuTensor)> {
        softmax::cross_entropy(logits, targets)
    }

    fn cross_entropy_tile_kernel(
        &self,
        logits: &CpuTensor,
        lse: &CpuTensor,
        row_weight: &CpuTensor,
        targets: &Targets<CpuStorage>,
    ) -> OpResult<(CpuTensor, CpuTensor)> {
        softmax::cross_entropy_tile(logits, lse, row_weight, targets)
    }

    fn gather_rows_kernel(
        &self,
        table: &CpuTensor,
        plan: &IndexPlan<CpuStorage>,
    ) -> OpResult<CpuTensor> {
        embed::gather_rows(table, plan)
    }

    fn scatter_add_rows_kernel(
        &self,
        dst: &mut CpuTensor,
        src: &CpuTensor,
        plan: &IndexPlan<CpuStorage>,
    ) -> OpResult<()> {
        embed::scatter_add_rows(dst, src, plan)
    }
}
