//! Tensors and the `Backend` trait that the CPU reference and the wgpu backend both implement.
//!
//! A tensor is a contiguous, row-major block of `f32` or `u32` values with a shape. Storage is
//! reference counted: cloning a tensor is cheap and shares the data; ops that write in place take
//! `&mut Tensor` and copy first when the storage is shared (copy-on-write). Everything above this
//! module (audio, model, train) is written against `Backend`, so one op test suite checks both.

pub mod check;
pub mod cpu;
pub mod gpu;
pub mod model_ops;
pub mod select;

use crate::error::OpError;

use check::MatmulDims;

pub type OpResult<T> = std::result::Result<T, OpError>;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    U32,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::U32 => "u32",
        }
    }
}

/// A shaped, typed handle to backend storage.
#[derive(Clone)]
pub struct Tensor<S> {
    shape: Vec<usize>,
    dtype: DType,
    storage: S,
}

impl<S> std::fmt::Debug for Tensor<S> {
    // Shape and type only: printing a catalogue-sized buffer helps nobody.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor<{}>{:?}", self.dtype.name(), self.shape)
    }
}

/// The tensor type of backend `B`.
pub type BTensor<B> = Tensor<<B as Backend>::Storage>;

impl<S> Tensor<S> {
    /// Wraps storage; used by backends only. `shape` must describe exactly the stored elements.
    pub fn from_parts(shape: Vec<usize>, dtype: DType, storage: S) -> Self {
        Tensor {
            shape,
            dtype,
            storage,
        }
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn storage(&self) -> &S {
        &self.storage
    }
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Size of the last axis (1 for a scalar).
    pub fn cols(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }
    /// Product of all axes but the last: the number of rows in the row-wise ops.
    pub fn rows(&self) -> usize {
        if self.shape.is_empty() {
            1
        } else {
            self.shape[..self.shape.len() - 1].iter().product()
        }
    }
    /// Same data, new shape with the same element count. Free: storage is contiguous.
    pub fn reshape(mut self, shape: &[usize]) -> OpResult<Self> {
        self.set_shape(shape)?;
        Ok(self)
    }
    /// [`Tensor::reshape`] in place.
    pub fn set_shape(&mut self, shape: &[usize]) -> OpResult<()> {
        let n = check::elements("reshape", shape)?;
        if n != self.len() {
            return Err(OpError::Shape {
                op: "reshape",
                detail: format!(
                    "{:?} ({} elements) to {:?} ({n})",
                    self.shape,
                    self.len(),
                    shape
                ),
            });
        }
        self.shape = shape.to_vec();
        Ok(())
    }
    pub(crate) fn expect_dtype(&self, op: &'static str, dtype: DType) -> OpResult<()> {
        if self.dtype != dtype {
            return Err(OpError::DType {
                op,
                expected: dtype.name(),
                got: self.dtype.name(),
            });
        }
        Ok(())
    }
}

/// Element-wise binary ops. The right operand may be broadcast: when `b` has fewer elements than
/// `a`, `a.len()` must be a multiple of `b.len()` and `b` repeats (a bias row added to every row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `log(exp(a) + exp(b))`, stable; merges log-sum-exps of catalogue tiles.
    LogAddExp,
}

/// Element-wise unary ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Relu,
    Exp,
    /// Natural log; `ln(x)` of non-positive values gives -inf/NaN as in IEEE.
    Log,
    Neg,
    Sqrt,
    Tanh,
    Sigmoid,
}

/// Row-wise reductions over the last axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Max,
    Mean,
}

/// A validated row index list prepared for gather (forward) and a deterministic scatter-add
/// (backward) without float atomics: positions are grouped by target row on the host once.
/// Built by [`Backend::index_plan`] and read through its methods:
///
/// ```
/// use ainrnn::backend::{cpu::CpuBackend, Backend};
/// let plan = CpuBackend::new().index_plan(&[2, 0, 2], 3).unwrap();
/// assert_eq!((plan.len(), plan.table_rows(), plan.segments()), (3, 3, 2));
/// ```
///
/// A caller cannot edit one into a plan the kernels would index past a table with:
///
/// ```compile_fail
/// use ainrnn::backend::{cpu::CpuBackend, Backend};
/// let mut plan = CpuBackend::new().index_plan(&[2, 0, 2], 3).unwrap();
/// plan.len = 1000;
/// ```
#[derive(Clone, Debug)]
pub struct IndexPlan<S> {
    /// Target row of every position, `[n]` u32.
    pub(crate) idx: Tensor<S>,
    /// Positions sorted by target row, `[n]` u32.
    pub(crate) order: Tensor<S>,
    /// Distinct target rows, `[segments]` u32, ascending.
    pub(crate) seg_rows: Tensor<S>,
    /// Segment boundaries into `order`, `[segments + 1]` u32.
    pub(crate) seg_ptr: Tensor<S>,
    /// Number of rows in the table indexed.
    pub(crate) table_rows: usize,
    /// Number of positions (`idx.len()`).
    pub(crate) len: usize,
    /// Number of distinct rows.
    pub(crate) segments: usize,
}

impl<S> IndexPlan<S> {
    // Read-only: the plan is built only by [`Backend::index_plan`], which checks the indices on
    // the host, so the kernels on either backend may index with it (fields a caller could set
    // would let a forged plan read past a table: a panic on the CPU, wrong rows on the GPU).
    /// Target row of every position, `[n]` u32.
    pub fn idx(&self) -> &Tensor<S> {
        &self.idx
    }
    /// Positions sorted by target row, `[n]` u32.
    pub fn order(&self) -> &Tensor<S> {
        &self.order
    }
    /// Distinct target rows, `[segments]` u32, ascending.
    pub fn seg_rows(&self) -> &Tensor<S> {
        &self.seg_rows
    }
    /// Segment boundaries into `order`, `[segments + 1]` u32.
    pub fn seg_ptr(&self) -> &Tensor<S> {
        &self.seg_ptr
    }
    /// Number of rows in the table indexed.
    pub fn table_rows(&self) -> usize {
        self.table_rows
    }
    /// Number of positions.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Number of distinct rows.
    pub fn segments(&self) -> usize {
        self.segments
    }
}

/// A table's gradient kept unformed ([`model_ops::ModelOps::table_rows`],
/// [`model_ops::ModelOps::adam_table`]): row `r` of `[N, D]` is `Σ_k g[k, r]·u[k]` (g `[K, N]`,
/// u `[K, D]`: the catalogue softmax's `gᵀ·u`), plus, at the rows `rows`' plan names, the sum
/// of the source rows routed there (the backward of a row gather from the table, as
/// [`Backend::scatter_add_rows`] adds it).
pub struct ProductGrad<'a, S> {
    pub g: &'a Tensor<S>,
    pub u: &'a Tensor<S>,
    pub rows: Option<(&'a Tensor<S>, &'a IndexPlan<S>)>,
}

impl<S> ProductGrad<'_, S> {
    /// Rows of the table (`N`).
    pub fn table_rows(&self) -> usize {
        self.g.cols()
    }

    /// Rows named by the plan (`S`; 0 without one).
    pub fn segments(&self) -> usize {
        self.rows.map_or(0, |(_, plan)| plan.segments)
    }
}

/// Sparse cross-entropy targets in CSR form: for row `r`, the target columns
/// `cols[row_ptr[r]..row_ptr[r+1]]` with weights `weights[..]` (distinct columns within a row).
/// Built by [`Backend::targets`] and read through its methods; a caller cannot swap in
/// columns the kernels would index past a row with:
///
/// ```compile_fail
/// use ainrnn::backend::{cpu::CpuBackend, Backend};
/// let be = CpuBackend::new();
/// let mut t = be.targets(2, 3, &[(0, 1, 1.0)]).unwrap();
/// t.cols = be.upload_u32(&[77], &[1]).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Targets<S> {
    pub(crate) row_ptr: Tensor<S>,
    pub(crate) cols: Tensor<S>,
    pub(crate) weights: Tensor<S>,
    pub(crate) rows: usize,
    pub(crate) classes: usize,
}

impl<S> Targets<S> {
    // Read-only, as [`IndexPlan`]: built only by [`Backend::targets`], which checks the triples.
    /// Row pointers, `[rows + 1]` u32.
    pub fn row_ptr(&self) -> &Tensor<S> {
        &self.row_ptr
    }
    /// Target columns, `[nnz]` u32, each below `classes`.
    pub fn cols(&self) -> &Tensor<S> {
        &self.cols
    }
    /// Target weights, `[nnz]` f32, finite.
    pub fn weights(&self) -> &Tensor<S> {
        &self.weights
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn classes(&self) -> usize {
        self.classes
    }
}

/// What the LSTM forward keeps for its backward pass.
#[derive(Clone, Debug)]
pub struct LstmCache<T> {
    /// Hidden states `[B, L, H]`.
    pub h: T,
    /// Hidden states shifted by one step (`h_{t-1}`, zero at t = 0), `[B, L, H]`; used for ∂W_h.
    pub h_prev: T,
    /// Cell states `[B, L, H]`.
    pub c: T,
    /// Activated gates `[B, L, 4H]` in the order input, forget, cell (tanh), output.
    pub gates: T,
}

/// A validated CSR block `[rows, ncols]` on the device: for row `r`, the columns
/// `cols[row_ptr[r]..row_ptr[r+1]]` (with `vals[..]`, when it has values). Built only by
/// [`model_ops::ModelOps::csr`], which checks the contents on the host before the upload, so the kernels
/// on either backend may index with it.
#[derive(Clone, Debug)]
pub struct Csr<S> {
    row_ptr: Tensor<S>,
    cols: Tensor<S>,
    vals: Option<Tensor<S>>,
    rows: usize,
    ncols: usize,
    sorted: bool,
    /// Entries of the longest row.
    max_row: usize,
}

impl<S> Csr<S> {
    /// Row pointers, `[rows + 1]` u32.
    pub fn row_ptr(&self) -> &Tensor<S> {
        &self.row_ptr
    }
    /// Columns, `[nnz]` u32, each below `ncols`.
    pub fn cols(&self) -> &Tensor<S> {
        &self.cols
    }
    /// Values, `[nnz]` f32 and finite.
    pub fn vals(&self) -> Option<&Tensor<S>> {
        self.vals.as_ref()
    }
    /// The values, or `op`'s error for a block built without them.
    pub fn expect_vals(&self, op: &'static str) -> OpResult<&Tensor<S>> {
        self.vals.as_ref().ok_or_else(|| OpError::Invalid {
            op,
            detail: "the CSR block has no values".into(),
        })
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn ncols(&self) -> usize {
        self.ncols
    }
    /// Number of entries.
    pub fn nnz(&self) -> usize {
        self.cols.len()
    }
    /// Whether every row's columns strictly increase (checked on the host when built).
    pub fn sorted(&self) -> bool {
        self.sorted
    }
    /// Number of entries of the longest row.
    pub fn max_row(&self) -> usize {
        self.max_row
    }
    /// The same block with `vals` (`[nnz]` f32, e.g. computed on the device) as its values;
    /// the caller keeps them finite.
    pub fn with_vals(mut self, vals: Tensor<S>) -> OpResult<Self> {
        vals.expect_dtype("csr values", DType::F32)?;
        if vals.len() != self.nnz() {
            return Err(OpError::Shape {
                op: "csr values",
                detail: format!("{} values for {} entries", vals.len(), self.nnz()),
            });
        }
        self.vals = Some(vals);
        Ok(self)
    }
}

/// The largest `k` the top-k kernels support (private arrays in the shader).
pub const MAX_TOPK: usize = 32;

/// Host-side preparation shared by both backends.
pub(crate) struct HostIndexPlan {
    pub order: Vec<u32>,
    pub seg_rows: Vec<u32>,
    pub seg_ptr: Vec<u32>,
}

pub(crate) fn host_index_plan(idx: &[u32], table_rows: usize) -> OpResult<HostIndexPlan> {
    if let Some(&bad) = idx.iter().find(|&&i| i as usize >= table_rows) {
        return Err(OpError::Index {
            op: "index_plan",
            index: bad,
            len: table_rows,
        });
    }
    let mut order: Vec<u32> = (0..idx.len() as u32).collect();
    // Stable sort keeps positions of one row in order, so sums are deterministic.
    order.sort_by_key(|&p| idx[p as usize]);
    let mut seg_rows = Vec::new();
    let mut seg_ptr = Vec::new();
    for (j, &p) in order.iter().enumerate() {
        let row = idx[p as usize];
        if seg_rows.last() != Some(&row) {
            seg_rows.push(row);
            seg_ptr.push(j as u32);
        }
    }
    seg_ptr.push(order.len() as u32);
    Ok(HostIndexPlan {
        order,
        seg_rows,
        seg_ptr,
    })
}

/// `n` zeroed values, or [`OpError::HostMemory`] when the allocator refuses: `vec![0; n]`
/// aborts the process instead. The pages stay lazily zeroed, as with `vec!`'s calloc.
pub(crate) fn host_zeroed<T: bytemuck::Zeroable>(op: &'static str, n: usize) -> OpResult<Vec<T>> {
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| OpError::HostMemory {
        op,
        bytes: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
    })?;
    if layout.size() == 0 {
        let mut v = Vec::new();
        v.resize_with(n, T::zeroed);
        return Ok(v);
    }
    // SAFETY: the layout's size is non-zero; a non-null pointer comes from the global
    // allocator with `T`'s size and alignment for `n` values, as `Vec` needs, and zero bytes
    // are a valid `T` (`Zeroable`).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(OpError::HostMemory {
            op,
            bytes: layout.size() as u64,
        });
    }
    // SAFETY: see above; length and capacity are the `n` values allocated.
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// Validates `(row, col, weight)` triples and packs them in CSR order. The row pointers must
/// fit `max_binding` bytes (the device's binding limit): refused before the host builds them.
pub(crate) fn host_targets(
    rows: usize,
    classes: usize,
    triples: &[(u32, u32, f32)],
    max_binding: u64,
) -> OpResult<(Vec<u32>, Vec<u32>, Vec<f32>)> {
    // Rows and classes are indexed with u32 on both backends; the row pointers are one longer.
    if rows >= u32::MAX as usize || classes >= u32::MAX as usize {
        return Err(OpError::Invalid {
            op: "targets",
            detail: format!("{rows} rows x {classes} classes: each must be below 2^32 - 1"),
        });
    }
    let needed = (rows as u64 + 1) * 4;
    if needed > max_binding {
        return Err(OpError::Gpu(crate::error::GpuError::Limit {
            op: "targets",
            what: "max_storage_buffer_binding_size",
            needed,
            limit: max_binding,
        }));
    }
    let mut sorted: Vec<(u32, u32, f32)> = triples.to_vec();
    sorted.sort_by_key(|t| (t.0, t.1));
    let mut row_ptr = host_zeroed::<u32>("targets", rows + 1)?;
    for w in sorted.windows(2) {
        if w[0].0 == w[1].0 && w[0].1 == w[1].1 {
            return Err(OpError::Invalid {
                op: "targets",
                detail: format!("row {} lists column {} twice", w[0].0, w[0].1),
            });
        }
    }
    for &(r, c, w) in &sorted {
        if r as usize >= rows || c as usize >= classes {
            return Err(OpError::Invalid {
                op: "targets",
                detail: format!("target ({r}, {c}) outside {rows} rows x {classes} classes"),
            });
        }
        if !w.is_finite() {
            return Err(OpError::Invalid {
                op: "targets",
                detail: format!("target ({r}, {c}) has weight {w}"),
            });
        }
        row_ptr[r as usize + 1] += 1;
    }
    for r in 0..rows {
        row_ptr[r + 1] += row_ptr[r];
    }
    Ok((
        row_ptr,
        sorted.iter().map(|t| t.1).collect(),
        sorted.iter().map(|t| t.2).collect(),
    ))
}

/// Tensors made by [`Backend::zeros_packed`].
#[derive(Debug)]
pub struct Packed<S> {
    /// One tensor per requested shape.
    pub parts: Vec<Tensor<S>>,
    /// The whole allocation as one flat f32 tensor (ranges and the zero padding between them),
    /// when the parts share one; read it only: writing through it would copy it first.
    pub whole: Option<Tensor<S>>,
}

/// A tensor's values on the host, of its element type ([`Backend::to_host`]).
#[derive(Clone, Debug, PartialEq)]
pub enum HostTensor {
    F32(Vec<f32>),
    U32(Vec<u32>),
}

impl HostTensor {
    /// The `f32` values; an error naming `op` for a `u32` tensor.
    pub fn into_f32(self, op: &'static str) -> OpResult<Vec<f32>> {
        match self {
            HostTensor::F32(v) => Ok(v),
            HostTensor::U32(_) => Err(OpError::DType {
                op,
                expected: DType::F32.name(),
                got: DType::U32.name(),
            }),
        }
    }

    /// The `u32` values; an error naming `op` for an `f32` tensor.
    pub fn into_u32(self, op: &'static str) -> OpResult<Vec<u32>> {
        match self {
            HostTensor::U32(v) => Ok(v),
            HostTensor::F32(_) => Err(OpError::DType {
                op,
                expected: DType::U32.name(),
                got: DType::F32.name(),
            }),
        }
    }
}

/// Values whose read-back [`Backend::read_later`] started; [`LaterRead::wait`] gives them.
pub struct LaterRead(Box<dyn FnOnce() -> OpResult<Vec<HostTensor>> + Send>);

impl LaterRead {
    pub fn new(wait: impl FnOnce() -> OpResult<Vec<HostTensor>> + Send + 'static) -> Self {
        LaterRead(Box::new(wait))
    }

    /// The values the tensors held when the read was started, in order.
    pub fn wait(self) -> OpResult<Vec<HostTensor>> {
        (self.0)()
    }
}

/// Which implementation a backend is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Cpu,
    Gpu,
}

/// The op set both backends implement. Shapes follow the row-major convention: "rows" are all
/// axes but the last. Every op validates its arguments once, here (the contracts live in
/// [`check`]), and returns `OpError` instead of panicking; a backend implements only the
/// `_kernel` methods, which run on validated arguments.
pub trait Backend: Clone + Send + Sync + 'static {
    type Storage: Clone + Send + Sync + std::fmt::Debug;

    fn kind(&self) -> BackendKind;
    /// Short human description, e.g. `cpu (2 threads)` or `gpu: llvmpipe (Vulkan)`.
    fn describe(&self) -> String;

    // ==== what a backend implements ==========================================================

    // --- data movement (no contract) ------------------------------------------------------
    fn zeros(&self, shape: &[usize]) -> OpResult<BTensor<Self>>;
    /// Waits until all queued work is finished (a no-op on the CPU).
    fn sync(&self) -> OpResult<()>;
    /// Submits the work recorded so far without waiting (a no-op on the CPU). A training step
    /// ends with it: the device starts while the host records the next step, and buffers freed
    /// during the step go back to the pool at a fixed point of every step.
    fn flush(&self) -> OpResult<()> {
        Ok(())
    }
    /// The memory this backend's tensors may still take, in bytes: the system's available
    /// memory on the CPU, the device memory left in the driver's budget on a GPU; `None` where
    /// the system or driver cannot say.
    fn available_memory(&self) -> Option<u64>;
    /// The largest tensor (in bytes) one kernel may bind; unbounded on the CPU.
    fn max_binding_bytes(&self) -> u64 {
        u64::MAX
    }
    /// Zeroed f32 tensors of the given shapes, packed where that helps: on the GPU they are
    /// ranges of one buffer, so that one dispatch reaches all of them (the fused optimizer step),
    /// and `whole` reads them at once (zeros between the ranges); the CPU gives separate tensors.
    /// The shapes' bytes together must fit [`Backend::max_binding_bytes`].
    fn zeros_packed(&self, shapes: &[Vec<usize>]) -> OpResult<Packed<Self::Storage>> {
        Ok(Packed {
            parts: shapes
                .iter()
                .map(|s| self.zeros(s))
                .collect::<OpResult<_>>()?,
            whole: None,
        })
    }
    /// Zeroes an f32 tensor in place; a tensor sharing its storage gets storage of its own.
    fn fill_zero(&self, t: &mut BTensor<Self>) -> OpResult<()> {
        t.expect_dtype("fill_zero", DType::F32)?;
        *t = self.zeros(t.shape())?;
        Ok(())
    }

    // --- kernels, each of the op of the same name on validated arguments ---------------------
    /// Kernel of [`Backend::upload_f32`]: `data` has the shape's element count.
    fn upload_f32_kernel(&self, data: &[f32], shape: &[usize]) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::upload_u32`].
    fn upload_u32_kernel(&self, data: &[u32], shape: &[usize]) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::to_f32`]: `t` is f32.
    fn to_f32_kernel(&self, t: &BTensor<Self>) -> OpResult<Vec<f32>>;
    /// Kernel of [`Backend::to_u32`]: `t` is u32.
    fn to_u32_kernel(&self, t: &BTensor<Self>) -> OpResult<Vec<u32>>;
    /// Starts reading tensors back; the CPU reads them at once. The GPU overrides it: the copies
    /// are submitted after all recorded work, and the wait is for them alone.
    fn read_later_kernel(&self, ts: &[&BTensor<Self>]) -> OpResult<LaterRead> {
        let values = self.to_host_kernel(ts)?;
        Ok(LaterRead::new(move || Ok(values)))
    }
    /// Several tensors' values at once. The GPU overrides it: one wait for all of them where
    /// `to_f32`/`to_u32` wait once each.
    fn to_host_kernel(&self, ts: &[&BTensor<Self>]) -> OpResult<Vec<HostTensor>> {
        ts.iter()
            .map(|t| {
                Ok(match t.dtype() {
                    DType::F32 => HostTensor::F32(self.to_f32_kernel(t)?),
                    DType::U32 => HostTensor::U32(self.to_u32_kernel(t)?),
                })
            })
            .collect()
    }
    /// Kernel of [`Backend::write_f32`].
    fn write_f32_kernel(&self, t: &mut BTensor<Self>, data: &[f32]) -> OpResult<()>;
    /// Kernel of [`Backend::matmul`].
    fn matmul_kernel(
        &self,
        a: &BTensor<Self>,
        b: &BTensor<Self>,
        d: &MatmulDims,
    ) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::matmul_into`]: `out` has the product's shape.
    fn matmul_into_kernel(
        &self,
        out: &mut BTensor<Self>,
        a: &BTensor<Self>,
        b: &BTensor<Self>,
        d: &MatmulDims,
        alpha: f32,
        beta: f32,
    ) -> OpResult<()>;
    /// Kernel of [`Backend::matmul_bias`] (`bias` has `d.n` values). By default a product then a
    /// broadcast add; the CPU writes the bias rows first and accumulates the product onto them
    /// (one output buffer and one pass fewer).
    fn matmul_bias_kernel(
        &self,
        a: &BTensor<Self>,
        b: &BTensor<Self>,
        bias: &BTensor<Self>,
        d: &MatmulDims,
    ) -> OpResult<BTensor<Self>> {
        self.binary(BinaryOp::Add, &self.matmul_kernel(a, b, d)?, bias)
    }
    /// Kernel of [`Backend::binary`].
    fn binary_kernel(
        &self,
        op: BinaryOp,
        a: &BTensor<Self>,
        b: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::unary`].
    fn unary_kernel(&self, op: UnaryOp, a: &BTensor<Self>) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::affine`].
    fn affine_kernel(&self, a: &BTensor<Self>, alpha: f32, beta: f32) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::axpy`].
    fn axpy_kernel(&self, acc: &mut BTensor<Self>, x: &BTensor<Self>, alpha: f32) -> OpResult<()>;
    /// Kernel of [`Backend::relu_backward`].
    fn relu_backward_kernel(
        &self,
        y: &BTensor<Self>,
        dy: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::reduce_rows`].
    fn reduce_rows_kernel(&self, op: ReduceOp, a: &BTensor<Self>) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::sum_cols`].
    fn sum_cols_kernel(&self, a: &BTensor<Self>) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::sum_cols_into`]; by default the sums, then an add.
    fn sum_cols_into_kernel(&self, acc: &mut BTensor<Self>, a: &BTensor<Self>) -> OpResult<()> {
        let s = self.sum_cols_kernel(a)?;
        self.axpy_kernel(acc, &s, 1.0)
    }
    /// Kernel of [`Backend::softmax_rows`].
    fn softmax_rows_kernel(&self, a: &BTensor<Self>, log: bool) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::softmax_rows_backward`].
    fn softmax_rows_backward_kernel(
        &self,
        y: &BTensor<Self>,
        dy: &BTensor<Self>,
        log: bool,
    ) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::logsumexp_rows`].
    fn logsumexp_rows_kernel(&self, a: &BTensor<Self>) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::cross_entropy`].
    fn cross_entropy_kernel(
        &self,
        logits: &BTensor<Self>,
        targets: &Targets<Self::Storage>,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)>;
    /// Kernel of [`Backend::cross_entropy_tile`].
    fn cross_entropy_tile_kernel(
        &self,
        logits: &BTensor<Self>,
        lse: &BTensor<Self>,
        row_weight: &BTensor<Self>,
        targets: &Targets<Self::Storage>,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)>;
    /// Kernel of [`Backend::gather_rows`].
    fn gather_rows_kernel(
        &self,
        table: &BTensor<Self>,
        plan: &IndexPlan<Self::Storage>,
    ) -> OpResult<BTensor<Self>>;
    /// Kernel of [`Backend::scatter_add_rows`].
    fn scatter_add_rows_kernel(
        &self,
        dst: &mut BTensor<Self>,
        src: &BTensor<Self>,
        plan: &IndexPlan<Self::Storage>,
    ) -> OpResult<()>;

    // ==== the op API: contract, then kernel ==================================================

    // --- data movement -------------------------------------------------------------------
    fn upload_f32(&self, data: &[f32], shape: &[usize]) -> OpResult<BTensor<Self>> {
        check::shape_len("upload_f32", shape, data.len())?;
        self.upload_f32_kernel(data, shape)
    }
    fn upload_u32(&self, data: &[u32], shape: &[usize]) -> OpResult<BTensor<Self>> {
        check::shape_len("upload_u32", shape, data.len())?;
        self.upload_u32_kernel(data, shape)
    }
    fn to_f32(&self, t: &BTensor<Self>) -> OpResult<Vec<f32>> {
        t.expect_dtype("to_f32", DType::F32)?;
        self.to_f32_kernel(t)
    }
    fn to_u32(&self, t: &BTensor<Self>) -> OpResult<Vec<u32>> {
        t.expect_dtype("to_u32", DType::U32)?;
        self.to_u32_kernel(t)
    }
    /// The values of several tensors, each of its own type, in order: a checkpoint's parameters
    /// or a ranking's scores and ids with one wait for the device instead of one per tensor.
    fn to_host(&self, ts: &[&BTensor<Self>]) -> OpResult<Vec<HostTensor>> {
        self.to_host_kernel(ts)
    }
    /// [`Backend::to_host`] without waiting now: the values the tensors hold once everything
    /// recorded so far has run (later writes to them do not show), given by
    /// [`LaterRead::wait`]. On a GPU that wait is for the read alone, not for work recorded
    /// after it: the host can queue the next steps before it waits.
    fn read_later(&self, ts: &[&BTensor<Self>]) -> OpResult<LaterRead> {
        self.read_later_kernel(ts)
    }
    /// Overwrites the contents of an existing tensor (same element count), reusing its storage.
    fn write_f32(&self, t: &mut BTensor<Self>, data: &[f32]) -> OpResult<()> {
        check::write_f32(t, data.len())?;
        self.write_f32_kernel(t, data)
    }

    // --- linear algebra ------------------------------------------------------------------
    /// `op(a) · op(b)`, where `op` transposes the last two axes when the flag is set.
    /// `a` is `[m, k]` or `[batch, m, k]` (after `op`), `b` is `[k, n]` or `[batch, k, n]`;
    /// a 2-D operand is shared across the other's batch. Result `[m, n]` or `[batch, m, n]`.
    fn matmul(
        &self,
        a: &BTensor<Self>,
        b: &BTensor<Self>,
        trans_a: bool,
        trans_b: bool,
    ) -> OpResult<BTensor<Self>> {
        let d = check::matmul(a, b, trans_a, trans_b)?;
        self.matmul_kernel(a, b, &d)
    }
    /// `out = alpha · op(a)·op(b) + beta · out` (gradient accumulation without a temporary).
    #[allow(clippy::too_many_arguments)]
    fn matmul_into(
        &self,
        out: &mut BTensor<Self>,
        a: &BTensor<Self>,
        b: &BTensor<Self>,
        trans_a: bool,
        trans_b: bool,
        alpha: f32,
        beta: f32,
    ) -> OpResult<()> {
        let d = check::matmul_into(out, a, b, trans_a, trans_b)?;
        self.matmul_into_kernel(out, a, b, &d, alpha, beta)
    }

    /// `op(a)·op(b) + bias`, the bias `[n]` added to every row: a linear layer.
    fn matmul_bias(
        &self,
        a: &BTensor<Self>,
        b: &BTensor<Self>,
        trans_a: bool,
        trans_b: bool,
        bias: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>> {
        let d = check::matmul_bias(a, b, trans_a, trans_b, bias)?;
        self.matmul_bias_kernel(a, b, bias, &d)
    }

    // --- element-wise --------------------------------------------------------------------
    fn binary(
        &self,
        op: BinaryOp,
        a: &BTensor<Self>,
        b: &BTensor<Self>,
    ) -> OpResult<BTensor<Self>> {
        check::broadcast("binary", a, b)?;
        self.binary_kernel(op, a, b)
    }
    fn unary(&self, op: UnaryOp, a: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        a.expect_dtype("unary", DType::F32)?;
        self.unary_kernel(op, a)
    }
    /// `alpha · a + beta`.
    fn affine(&self, a: &BTensor<Self>, alpha: f32, beta: f32) -> OpResult<BTensor<Self>> {
        a.expect_dtype("affine", DType::F32)?;
        self.affine_kernel(a, alpha, beta)
    }
    /// `acc += alpha · x` in place.
    fn axpy(&self, acc: &mut BTensor<Self>, x: &BTensor<Self>, alpha: f32) -> OpResult<()> {
        check::same_len_f32("axpy", acc, x)?;
        self.axpy_kernel(acc, x, alpha)
    }
    /// `dy · [y > 0]`: backward of ReLU given its output (or input; the sign is the same).
    fn relu_backward(&self, y: &BTensor<Self>, dy: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        check::same_len_f32("relu_backward", y, dy)?;
        self.relu_backward_kernel(y, dy)
    }

    // --- reductions ----------------------------------------------------------------------
    /// Reduces the last axis: `[.., cols] -> [..]`. Works for rows of any length.
    fn reduce_rows(&self, op: ReduceOp, a: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        a.expect_dtype("reduce_rows", DType::F32)?;
        self.reduce_rows_kernel(op, a)
    }
    /// Sums over rows: `[rows, cols] -> [cols]` (bias gradients).
    fn sum_cols(&self, a: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        a.expect_dtype("sum_cols", DType::F32)?;
        self.sum_cols_kernel(a)
    }
    /// `acc += sum_cols(a)` in place (`acc` has `a.cols()` elements): a bias gradient added
    /// straight into its accumulator.
    fn sum_cols_into(&self, acc: &mut BTensor<Self>, a: &BTensor<Self>) -> OpResult<()> {
        a.expect_dtype("sum_cols_into", DType::F32)?;
        acc.expect_dtype("sum_cols_into", DType::F32)?;
        if acc.len() != a.cols() {
            return Err(OpError::Shape {
                op: "sum_cols_into",
                detail: format!(
                    "accumulator {:?} for the column sums of {:?}",
                    acc.shape(),
                    a.shape()
                ),
            });
        }
        self.sum_cols_into_kernel(acc, a)
    }

    // --- softmax family ------------------------------------------------------------------
    /// Row-wise softmax (or log-softmax) over the last axis, stable for any row length.
    fn softmax_rows(&self, a: &BTensor<Self>, log: bool) -> OpResult<BTensor<Self>> {
        a.expect_dtype("softmax_rows", DType::F32)?;
        self.softmax_rows_kernel(a, log)
    }
    /// Backward of `softmax_rows` given its output `y` and the upstream gradient `dy`.
    fn softmax_rows_backward(
        &self,
        y: &BTensor<Self>,
        dy: &BTensor<Self>,
        log: bool,
    ) -> OpResult<BTensor<Self>> {
        check::same_len_f32("softmax_rows_backward", y, dy)?;
        self.softmax_rows_backward_kernel(y, dy, log)
    }
    /// Row-wise `log Σ exp` over the last axis.
    fn logsumexp_rows(&self, a: &BTensor<Self>) -> OpResult<BTensor<Self>> {
        a.expect_dtype("logsumexp_rows", DType::F32)?;
        self.logsumexp_rows_kernel(a)
    }
    /// Fused softmax cross-entropy with sparse weighted targets:
    /// `loss_r = Σ_t w_t (lse_r − z_{r,t})` and `grad = (Σ_t w_t) · softmax(z) − Σ_t w_t e_t`.
    /// Returns `(loss [rows], grad [rows, classes])`.
    fn cross_entropy(
        &self,
        logits: &BTensor<Self>,
        targets: &Targets<Self::Storage>,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        check::cross_entropy(logits, targets)?;
        self.cross_entropy_kernel(logits, targets)
    }
    /// The same loss and gradient for a block of columns (a catalogue tile), given the
    /// log-sum-exp `lse [rows]` of the *whole* row: `loss_r = Σ_{t in tile} w_t (lse_r − z_{r,t})`
    /// and `grad = (Σ_t w_t over the whole row) · exp(z − lse) − Σ_{t in tile} w_t e_t`.
    /// `row_weight [rows]` is Σ_t w_t over the whole row. Summing `loss` over tiles gives the
    /// full cross-entropy.
    fn cross_entropy_tile(
        &self,
        logits: &BTensor<Self>,
        lse: &BTensor<Self>,
        row_weight: &BTensor<Self>,
        targets: &Targets<Self::Storage>,
    ) -> OpResult<(BTensor<Self>, BTensor<Self>)> {
        check::cross_entropy_tile(logits, lse, row_weight, targets)?;
        self.cross_entropy_tile_kernel(logits, lse, row_weight, targets)
    }
    /// Uploads validated sparse targets (see [`Targets`]).
    fn targets(
        &self,
        rows: usize,
        classes: usize,
        triples: &[(u32, u32, f32)],
    ) -> OpResult<Targets<Self::Storage>> {
        let (row_ptr, cols, weights) =
            host_targets(rows, classes, triples, self.max_binding_bytes())?;
        let nnz = cols.len();
        Ok(Targets {
            row_ptr: self.upload_u32(&row_ptr, &[rows + 1])?,
            cols: self.upload_u32(&cols, &[nnz])?,
            weights: self.upload_f32(&weights, &[nnz])?,
            rows,
            classes,
        })
    }

    // --- embeddings ----------------------------------------------------------------------
    /// Validates row indices into a table of `table_rows` rows and uploads a gather/scatter plan.
    fn index_plan(&self, idx: &[u32], table_rows: usize) -> OpResult<IndexPlan<Self::Storage>> {
        let host = host_index_plan(idx, table_rows)?;
        Ok(IndexPlan {
            idx: self.upload_u32(idx, &[idx.len()])?,
            order: self.upload_u32(&host.order, &[idx.len()])?,
            seg_rows: self.upload_u32(&host.seg_rows, &[host.seg_rows.len()])?,
            seg_ptr: self.upload_u32(&host.seg_ptr, &[host.seg_ptr.len()])?,
            table_rows,
            len: idx.len(),
            segments: host.seg_rows.len(),
        })
    }
    /// `out[i] = table[idx[i]]`: `[rows, d]` table → `[n, d]`.
    fn gather_rows(
        &self,
        table: &BTensor<Self>,
        plan: &IndexPlan<Self::Storage>,
    ) -> OpResult<BTensor<Self>> {
        check::gather(table, plan)?;
        self.gather_rows_kernel(table, plan)
    }
    /// `dst[idx[i]] += src[i]` for all `i`, deterministic (no atomics): `[n, d]` into `[rows, d]`.
    fn scatter_add_rows(
        &self,
        dst: &mut BTensor<Self>,
        src: &BTensor<Self>,
        plan: &IndexPlan<Self::Storage>,
    ) -> OpResult<()> {
        check::scatter(dst, src, plan)?;
        self.scatter_add_rows_kernel(dst, src, plan)
    }
}
