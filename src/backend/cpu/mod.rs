//! The CPU reference backend: plain Rust, f64 accumulation where it matters for accuracy,
//! threads (rayon) and a well-kept GEMM (`matrixmultiply`) for speed. Every GPU kernel is
//! tested against this backend.

pub mod audio;
mod elementwise;
mod embed;
pub(crate) mod math;
pub(crate) mod matmul;
pub(crate) mod model;
mod reduce;
mod scattering;
mod softmax;

pub(crate) use matmul::par_gemm;

use std::sync::Arc;

use super::{check, BTensor, Backend, BackendKind, DType, IndexPlan, OpResult, Targets, Tensor};
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
pub struct CpuBackend;

impl CpuBackend {
    pub fn new() -> Self {
        keep_freed_memory();
        CpuBackend
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

pub(crate) fn f32s<'a>(op: &'static str, t: &'a CpuTensor) -> OpResult<&'a [f32]> {
    match &**t.storage() {
        CpuData::F32(v) => Ok(v),
        CpuData::U32(_) => Err(OpError::DType {
            op,
            expected: "f32",
            got: "u32",
        }),
    }
}

pub(crate) fn u32s<'a>(op: &'static str, t: &'a CpuTensor) -> OpResult<&'a [u32]> {
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
pub(crate) fn f32s_mut<'a>(op: &'static str, t: &'a mut CpuTensor) -> OpResult<&'a mut [f32]> {
    match Arc::make_mut(t.storage_mut()) {
        CpuData::F32(v) => Ok(v),
        CpuData::U32(_) => Err(OpError::DType {
            op,
            expected: "f32",
            got: "u32",
        }),
    }
}

pub(crate) fn tensor(shape: Vec<usize>, data: Vec<f32>) -> CpuTensor {
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

    fn upload_f32(&self, data: &[f32], shape: &[usize]) -> OpResult<CpuTensor> {
        check::shape_len("upload_f32", shape, data.len())?;
        Ok(tensor(shape.to_vec(), data.to_vec()))
    }

    fn upload_u32(&self, data: &[u32], shape: &[usize]) -> OpResult<CpuTensor> {
        check::shape_len("upload_u32", shape, data.len())?;
        Ok(Tensor::from_parts(
            shape.to_vec(),
            DType::U32,
            Arc::new(CpuData::U32(data.to_vec())),
        ))
    }

    fn zeros(&self, shape: &[usize]) -> OpResult<CpuTensor> {
        Ok(tensor(shape.to_vec(), vec![0.0; shape.iter().product()]))
    }

    fn to_f32(&self, t: &CpuTensor) -> OpResult<Vec<f32>> {
        Ok(f32s("to_f32", t)?.to_vec())
    }

    fn to_u32(&self, t: &CpuTensor) -> OpResult<Vec<u32>> {
        Ok(u32s("to_u32", t)?.to_vec())
    }

    fn write_f32(&self, t: &mut CpuTensor, data: &[f32]) -> OpResult<()> {
        check::shape_len("write_f32", t.shape(), data.len())?;
        f32s_mut("write_f32", t)?.copy_from_slice(data);
        Ok(())
    }

    fn sync(&self) -> OpResult<()> {
        Ok(())
    }

    fn matmul(&self, a: &CpuTensor, b: &CpuTensor, ta: bool, tb: bool) -> OpResult<CpuTensor> {
        matmul::matmul(a, b, ta, tb)
    }

    fn matmul_bias(
        &self,
        a: &CpuTensor,
        b: &CpuTensor,
        ta: bool,
        tb: bool,
        bias: &CpuTensor,
    ) -> OpResult<CpuTensor> {
        matmul::matmul_bias(a, b, ta, tb, bias)
    }

    fn matmul_into(
        &self,
        out: &mut CpuTensor,
        a: &CpuTensor,
        b: &CpuTensor,
        ta: bool,
        tb: bool,
        alpha: f32,
        beta: f32,
    ) -> OpResult<()> {
        matmul::matmul_into(out, a, b, ta, tb, alpha, beta)
    }

    fn binary(&self, op: super::BinaryOp, a: &CpuTensor, b: &CpuTensor) -> OpResult<CpuTensor> {
        elementwise::binary(op, a, b)
    }

    fn unary(&self, op: super::UnaryOp, a: &CpuTensor) -> OpResult<CpuTensor> {
        elementwise::unary(op, a)
    }

    fn affine(&self, a: &CpuTensor, alpha: f32, beta: f32) -> OpResult<CpuTensor> {
        elementwise::affine(a, alpha, beta)
    }

    fn axpy(&self, acc: &mut CpuTensor, x: &CpuTensor, alpha: f32) -> OpResult<()> {
        elementwise::axpy(acc, x, alpha)
    }

    fn relu_backward(&self, y: &CpuTensor, dy: &CpuTensor) -> OpResult<CpuTensor> {
        elementwise::relu_backward(y, dy)
    }

    fn reduce_rows(&self, op: super::ReduceOp, a: &CpuTensor) -> OpResult<CpuTensor> {
        reduce::reduce_rows(op, a)
    }

    fn sum_cols(&self, a: &CpuTensor) -> OpResult<CpuTensor> {
        reduce::sum_cols(a)
    }

    fn softmax_rows(&self, a: &CpuTensor, log: bool) -> OpResult<CpuTensor> {
        softmax::softmax_rows(a, log)
    }

    fn softmax_rows_backward(
        &self,
        y: &CpuTensor,
        dy: &CpuTensor,
        log: bool,
    ) -> OpResult<CpuTensor> {
        softmax::softmax_rows_backward(y, dy, log)
    }

    fn logsumexp_rows(&self, a: &CpuTensor) -> OpResult<CpuTensor> {
        softmax::logsumexp_rows(a)
    }

    fn cross_entropy(
        &self,
        logits: &CpuTensor,
        targets: &Targets<CpuStorage>,
    ) -> OpResult<(CpuTensor, CpuTensor)> {
        softmax::cross_entropy(logits, targets)
    }

    fn cross_entropy_tile(
        &self,
        logits: &CpuTensor,
        lse: &CpuTensor,
        row_weight: &CpuTensor,
        targets: &Targets<CpuStorage>,
    ) -> OpResult<(CpuTensor, CpuTensor)> {
        softmax::cross_entropy_tile(logits, lse, row_weight, targets)
    }

    fn gather_rows(&self, table: &CpuTensor, plan: &IndexPlan<CpuStorage>) -> OpResult<CpuTensor> {
        embed::gather_rows(table, plan)
    }

    fn scatter_add_rows(
        &self,
        dst: &mut BTensor<Self>,
        src: &CpuTensor,
        plan: &IndexPlan<CpuStorage>,
    ) -> OpResult<()> {
        embed::scatter_add_rows(dst, src, plan)
    }
}
