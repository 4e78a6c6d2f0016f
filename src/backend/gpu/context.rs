//! The wgpu device and everything kept for its lifetime: the pipeline cache, a buffer pool,
//! one command encoder that batches many dispatches per submit, a uniform arena for kernel
//! parameters, a reusable staging buffer for read-back, and optional timestamp queries.
//!
//! Ordering rule that shapes this file: `Queue::write_buffer` is executed at the start of the
//! *next* submit, before every command recorded in the pending encoder. So (1) parameters live in
//! an arena with one slot per dispatch, written once per submit; (2) a pooled buffer freed while
//! commands are pending is only reused for a host upload after that submit, though at once for
//! a buffer the device writes (commands run in the order recorded, with barriers between
//! dispatches, so a later kernel's writes follow the pending commands' reads); (3) overwriting a
//! live tensor from the host flushes the pending work first.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::adapter::{self, AdapterSummary};
use super::pipeline::{Kernel, PipelineCache, ShaderChecks};
use super::shader::{KernelParams, WORKGROUP_SIZE};
use crate::error::GpuError;

/// Bytes reserved per dispatch for its parameter block (a WGSL uniform struct).
pub const PARAM_SLOT: u64 = 256;
/// Dispatches recorded before the encoder is submitted even without a read-back.
const MAX_BATCH: usize = 512;
/// Pooled (idle) bytes kept at most; beyond this, freed buffers are destroyed.
const POOL_CAP: u64 = 1 << 30;
/// `AINRNN_GPU_POISON=1`: every buffer the pool hands out for the device to write is first
/// filled with NaN (see [`GpuContext::alloc`]). A debugging and test aid: the test scripts set it.
pub const POISON_ENV: &str = "AINRNN_GPU_POISON";
/// Bytes of the NaN source that poisoned buffers are copied from, chunk by chunk.
const POISON_CHUNK: u64 = 4 << 20;
/// The poison: a quiet NaN as `f32`; as `u32` an index far past any tensor.
const POISON_WORD: u32 = 0x7FC0_0000;
/// Bind groups kept for reuse at most; beyond this the cache starts afresh.
const MAX_BIND_GROUPS: usize = 16384;
/// Timestamp queries per query set (two per compute pass).
const TIMER_QUERIES: u32 = 1024;

/// The limits the kernels need, checked against the adapter before requesting a device
/// (`tests/shaders.rs` checks every entry point against them).
pub const NEED_STORAGE_BUFFERS: u32 = 8;
pub const NEED_INVOCATIONS: u32 = WORKGROUP_SIZE;
pub const NEED_WORKGROUP_BYTES: u32 = 16384;

/// A device buffer from the pool, or a view of a range of one (see [`GpuContext::pack`]).
/// A pooled buffer returns itself to the pool when dropped; a view keeps its parent alive.
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    class: u64,
    /// Bytes requested; bindings cover exactly these (rounded up to 4, at least 4).
    bytes: u64,
    /// Start of the range in `buffer` (0 unless a view).
    offset: u64,
    parent: Option<Arc<GpuBuffer>>,
    released: Arc<Mutex<Vec<(u64, wgpu::Buffer)>>>,
}

impl GpuBuffer {
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("GpuBuffer used after release")
    }

    /// Bytes of the range that bindings cover.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Byte offset of this range in [`GpuBuffer::raw`].
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The buffer this one is a view of.
    pub fn parent(&self) -> Option<&Arc<GpuBuffer>> {
        self.parent.as_ref()
    }

    /// The binding of the requested range: a pooled buffer may be larger than asked for, and
    /// its full size may exceed the device's binding limit.
    fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.raw(),
            offset: self.offset,
            size: NonZeroU64::new(self.bytes.max(4).next_multiple_of(4)),
        })
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} bytes)", self.class)
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if self.parent.is_some() {
            return;
        }
        if let Some(b) = self.buffer.take() {
            if let Ok(mut r) = self.released.lock() {
                r.push((self.class, b));
            }
        }
    }
}

/// Rounds a request up to a size class so buffers can be reused: powers of two up to 64 KiB
/// (few classes for the many small, batch-dependent tensors: the pool reaches a steady state
/// within a few training steps), then ≤ 12.5 % waste.
fn size_class(bytes: u64) -> u64 {
    let n = bytes.max(256);
    if n <= 1 << 16 {
        return n.next_power_of_two();
    }
    let grain = n.next_power_of_two() / 8;
    n.div_ceil(grain) * grain
}

/// What a bind group binds: the kernel, its parameter slot, and each storage binding's buffer
/// (by identity) and bound size.
#[derive(PartialEq, Eq, Hash)]
struct BindKey {
    kernel: Kernel,
    offset: u64,
    /// Binding, buffer, offset, size.
    buffers: Vec<(u32, wgpu::Buffer, u64, u64)>,
}

struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    next: u32,
    total_ns: f64,
    passes: u64,
    /// The kernel of each timed pass since the last resolve (index into `kernels`).
    pass_kernel: Vec<usize>,
    /// Per kernel seen while timing: its label, summed nanoseconds and passes.
    kernels: Vec<KernelTime>,
    kernel_index: HashMap<Kernel, usize>,
}

/// Time spent in one kernel (shader entry point with its override constants) while the timer
/// ran: where a step's GPU time goes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelTime {
    /// `shader::entry`, then the override constants that are set (`[TRANS_A=1]`).
    pub kernel: String,
    pub nanos: f64,
    pub passes: u64,
    /// Bytes it moved, summed over its passes: what its callers declared
    /// ([`Work::bytes`]: a gather's rows, an in-place update read and written), else the bytes
    /// bound to its storage bindings, each distinct buffer range once per pass (the traffic of
    /// a kernel that touches every bound byte once).
    pub bytes: f64,
    /// Floating-point operations its callers declared ([`Work::flops`]: the matmul's
    /// `2·m·n·k`), summed over its passes; 0 for kernels that declare none.
    pub flops: f64,
    /// Workgroups launched, summed over its passes.
    pub workgroups: f64,
}

/// What a timer run measured: total kernel time, passes, and the per-kernel breakdown
/// (largest first).
#[derive(Clone, Debug)]
pub struct TimerReport {
    pub total: Duration,
    pub passes: u64,
    pub kernels: Vec<KernelTime>,
}

fn kernel_label(k: &Kernel) -> String {
    let mut s = format!("{}::{}", k.shader.name, k.entry);
    if !k.constants.is_empty() {
        let c: Vec<String> = k
            .constants
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        s.push_str(&format!("[{}]", c.join(",")));
    }
    s
}

/// A dispatch's storage bindings: binding number and buffer.
type Slots<'b> = Vec<(u32, &'b GpuBuffer)>;

/// What one dispatch does, as the timer counts it for a report's rates
/// ([`GpuContext::dispatch_work`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work {
    /// Floating-point operations (0: none declared).
    pub flops: f64,
    /// Bytes read and written, where the bound ranges misstate them: a kernel that reads a few
    /// rows of a bound table (a gather, a sparse walk) moves far less than the table; one that
    /// updates a buffer in place reads and writes it. `None`: the bound ranges, each once.
    pub bytes: Option<f64>,
}

impl Work {
    pub fn flops(flops: f64) -> Work {
        Work { flops, bytes: None }
    }

    pub fn bytes(bytes: f64) -> Work {
        Work {
            flops: 0.0,
            bytes: Some(bytes),
        }
    }

    /// Bytes of `n` 4-byte values (f32 or u32): what the kernels' declarations count in.
    pub fn words(n: f64) -> Work {
        Work::bytes(4.0 * n)
    }
}

/// Bytes bound by a dispatch's storage bindings, a buffer range bound twice (an unused bias
/// slot given the input again) counted once.
fn bound_bytes(slots: &Slots) -> u64 {
    let mut seen: Vec<(&wgpu::Buffer, u64, u64)> = Vec::with_capacity(slots.len());
    for &(_, b) in slots {
        let r = (b.raw(), b.offset, b.bytes);
        if !seen.contains(&r) {
            seen.push(r);
        }
    }
    seen.iter().map(|r| r.2).sum()
}

/// One dispatch for [`GpuContext::time_each`]: what [`GpuContext::dispatch`] takes.
pub struct TimedDispatch<'a, P> {
    pub kernel: Kernel,
    pub params: P,
    pub bindings: Vec<(&'static str, &'a GpuBuffer)>,
    pub groups: [u32; 3],
}

/// Pool and dispatch counters, for tests and `bench`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct GpuStats {
    pub buffers_created: u64,
    pub buffers_reused: u64,
    pub bytes_allocated: u64,
    pub submits: u64,
    pub dispatches: u64,
    /// Buffer read-backs to the host (`download`); each one waits for the GPU.
    pub readbacks: u64,
    /// Dispatches whose bind group came from the cache instead of being created.
    pub bind_groups_reused: u64,
    /// Every byte the host wrote to the device: [`GpuContext::upload`],
    /// [`GpuContext::overwrite`] and the kernel-parameter arena written at each flush.
    pub upload_bytes: u64,
    /// The kernel-parameter arena's share of `upload_bytes`: a [`PARAM_SLOT`]-byte slot per
    /// dispatch, the arena written in one piece at each flush.
    pub param_bytes: u64,
    /// Nanoseconds the host spent inside `Queue::submit` (a software adapter such as lavapipe
    /// runs the recorded work there): what a step's host time leaves out.
    pub submit_nanos: u64,
    pub pipelines: usize,
}

/// A read-back started by [`GpuContext::download_later`].
pub struct LaterDownload {
    ctx: Arc<GpuContext>,
    buf: Option<wgpu::Buffer>,
    submit: Option<wgpu::SubmissionIndex>,
    sizes: Vec<u64>,
}

impl LaterDownload {
    /// Waits for the submission that holds the copies (not for anything submitted after it)
    /// and hands `read(i, bytes)` each range, as [`GpuContext::download_many`] does.
    pub fn wait(self, mut read: impl FnMut(usize, &[u8])) -> Result<(), GpuError> {
        let Some(buf) = self.buf else {
            (0..self.sizes.len()).for_each(|i| read(i, &[]));
            return Ok(());
        };
        let total: u64 = self.sizes.iter().sum();
        self.ctx.map_read_after(&buf, total, self.submit, |all| {
            split_ranges(all, &self.sizes, read)
        })?;
        self.ctx.lock().later_free.push(buf);
        self.ctx.check_errors()
    }
}

/// Records copies of each source's first bytes into `dst`, one range after another (the
/// ranges [`split_ranges`] hands back).
fn copy_ranges(enc: &mut wgpu::CommandEncoder, srcs: &[(&GpuBuffer, u64)], dst: &wgpu::Buffer) {
    let mut at = 0u64;
    for (src, bytes) in srcs {
        if *bytes > 0 {
            enc.copy_buffer_to_buffer(src.raw(), src.offset, dst, at, *bytes);
        }
        at += bytes;
    }
}

/// Hands `read(i, bytes)` the `i`-th of the consecutive ranges of `sizes` bytes in `all`.
fn split_ranges(all: &[u8], sizes: &[u64], mut read: impl FnMut(usize, &[u8])) {
    let mut at = 0usize;
    for (i, &bytes) in sizes.iter().enumerate() {
        read(i, &all[at..at + bytes as usize]);
        at += bytes as usize;
    }
}

impl GpuStats {
    /// What happened between `earlier` and `self` (two readings of the same context): every
    /// counter's difference; `bytes_allocated` is the net growth (0 where it shrank), `pipelines`
    /// those created since.
    pub fn since(&self, earlier: &GpuStats) -> GpuStats {
        GpuStats {
            buffers_created: self.buffers_created.saturating_sub(earlier.buffers_created),
            buffers_reused: self.buffers_reused.saturating_sub(earlier.buffers_reused),
            bytes_allocated: self.bytes_allocated.saturating_sub(earlier.bytes_allocated),
            submits: self.submits.saturating_sub(earlier.submits),
            dispatches: self.dispatches.saturating_sub(earlier.dispatches),
            readbacks: self.readbacks.saturating_sub(earlier.readbacks),
            bind_groups_reused: self
                .bind_groups_reused
                .saturating_sub(earlier.bind_groups_reused),
            upload_bytes: self.upload_bytes.saturating_sub(earlier.upload_bytes),
            param_bytes: self.param_bytes.saturating_sub(earlier.param_bytes),
            submit_nanos: self.submit_nanos.saturating_sub(earlier.submit_nanos),
            pipelines: self.pipelines.saturating_sub(earlier.pipelines),
        }
    }
}

struct State {
    /// The compute pass open on `encoder` (untimed dispatches share it); ended before any other
    /// command is recorded and before the encoder is finished. Declared first: dropped first.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    pending: usize,
    params: Vec<u8>,
    params_buf: wgpu::Buffer,
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    /// Bind groups by what they bind; cleared whenever a buffer is destroyed.
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    deferred: Vec<(u64, wgpu::Buffer)>,
    pooled_bytes: u64,
    staging: Option<wgpu::Buffer>,
    /// Map buffers of finished [`GpuContext::download_later`] reads, for the next ones.
    later_free: Vec<wgpu::Buffer>,
    /// The index of the last submit, which a later read waits for.
    last_submit: Option<wgpu::SubmissionIndex>,
    timer: Option<Timer>,
    stats: GpuStats,
}

/// Owns the device. Shared (`Arc`) by every tensor op of a `GpuBackend`.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    /// The adapter itself, for what only it can be asked ([`GpuContext::memory`]).
    raw_adapter: wgpu::Adapter,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pipelines: PipelineCache,
    released: Arc<Mutex<Vec<(u64, wgpu::Buffer)>>>,
    state: Mutex<State>,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    /// Which runtime checks the kernels are compiled with ([`super::SHADER_CHECKS_ENV`]).
    shader_checks: ShaderChecks,
    /// With [`POISON_ENV`]: the NaN source of poisoned buffers.
    poison: Option<wgpu::Buffer>,
}

impl GpuContext {
    /// Selects an adapter (see [`adapter::choose`]) and opens a device on it, its kernels
    /// compiled with the runtime checks [`super::SHADER_CHECKS_ENV`] names (default
    /// [`ShaderChecks::Bounds`]).
    pub fn new() -> Result<Self, GpuError> {
        Self::with_shader_checks(ShaderChecks::from_env()?.unwrap_or_default())
    }

    /// [`Self::new`] with the kernels compiled with `shader_checks`, whatever the environment
    /// says.
    pub fn with_shader_checks(shader_checks: ShaderChecks) -> Result<Self, GpuError> {
        let backends = adapter::backends_from_env();
        let instance = adapter::new_instance(backends);
        let chosen = adapter::choose(adapter::enumerate(&instance, backends), backends)?;
        Self::from_adapter(chosen, shader_checks)
    }

    /// Opens a device on a given adapter, requesting exactly the limits the kernels need.
    pub fn from_adapter(
        adapter: wgpu::Adapter,
        shader_checks: ShaderChecks,
    ) -> Result<Self, GpuError> {
        let info = adapter.get_info();
        let al = adapter.limits();
        let fail = |what: &'static str, needed: u64, limit: u64| GpuError::Limit {
            op: "device",
            what,
            needed,
            limit,
        };
        if al.max_storage_buffers_per_shader_stage < NEED_STORAGE_BUFFERS {
            return Err(fail(
                "max_storage_buffers_per_shader_stage",
                NEED_STORAGE_BUFFERS as u64,
                al.max_storage_buffers_per_shader_stage as u64,
            ));
        }
        if al.max_compute_invocations_per_workgroup < NEED_INVOCATIONS {
            return Err(fail(
                "max_compute_invocations_per_workgroup",
                NEED_INVOCATIONS as u64,
                al.max_compute_invocations_per_workgroup as u64,
            ));
        }
        if al.max_compute_workgroup_storage_size < NEED_WORKGROUP_BYTES {
            return Err(fail(
                "max_compute_workgroup_storage_size",
                NEED_WORKGROUP_BYTES as u64,
                al.max_compute_workgroup_storage_size as u64,
            ));
        }
        let mut limits = wgpu::Limits::downlevel_defaults();
        limits.max_storage_buffers_per_shader_stage = NEED_STORAGE_BUFFERS;
        limits.max_compute_invocations_per_workgroup = NEED_INVOCATIONS;
        limits.max_compute_workgroup_size_x = al.max_compute_workgroup_size_x.min(256);
        limits.max_compute_workgroup_size_y = al.max_compute_workgroup_size_y.min(256);
        limits.max_compute_workgroup_storage_size =
            al.max_compute_workgroup_storage_size.min(32768);
        limits.max_compute_workgroups_per_dimension = al.max_compute_workgroups_per_dimension;
        // Large tensors (catalogue-sized score blocks) need the adapter's full buffer sizes.
        limits.max_buffer_size = al.max_buffer_size;
        limits.max_storage_buffer_binding_size = al.max_storage_buffer_binding_size;
        limits.min_uniform_buffer_offset_alignment = al.min_uniform_buffer_offset_alignment;
        limits.min_storage_buffer_offset_alignment = al.min_storage_buffer_offset_alignment;
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ainrnn"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::RequestDevice {
            adapter: info.name.clone(),
            reason: e.to_string(),
        })?;

        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut l) = lost_sink.lock() {
                *l = Some(format!("{reason:?}: {msg}"));
            }
        });

        let poison = (env_switch(POISON_ENV)? == Some(true)).then(|| {
            let b = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("poison (NaN)"),
                size: POISON_CHUNK,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            // Written at the first submit, before any command that copies from it.
            let words = vec![POISON_WORD; (POISON_CHUNK / 4) as usize];
            queue.write_buffer(&b, 0, bytemuck::cast_slice(&words));
            b
        });
        let params_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params arena"),
            size: PARAM_SLOT * MAX_BATCH as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuContext {
            adapter: AdapterSummary::from_info(&info),
            raw_adapter: adapter,
            limits,
            features,
            pipelines: PipelineCache::default(),
            released: Arc::new(Mutex::new(Vec::new())),
            state: Mutex::new(State {
                pass: None,
                encoder: None,
                pending: 0,
                params: Vec::with_capacity((PARAM_SLOT as usize) * MAX_BATCH),
                params_buf,
                free: HashMap::new(),
                bind_groups: HashMap::new(),
                deferred: Vec::new(),
                pooled_bytes: 0,
                staging: None,
                later_free: Vec::new(),
                last_submit: None,
                timer: None,
                stats: GpuStats::default(),
            }),
            device,
            queue,
            errors,
            lost,
            shader_checks,
            poison,
        })
    }

    /// Which runtime checks the kernels are compiled with ([`super::SHADER_CHECKS_ENV`]).
    pub fn shader_checks(&self) -> ShaderChecks {
        self.shader_checks
    }

    /// Whether buffers for the device to write are handed out filled with NaN ([`POISON_ENV`]).
    pub fn poisons(&self) -> bool {
        self.poison.is_some()
    }

    /// With [`POISON_ENV`], records NaN copies over bytes `from..to` of `buf`, in order after
    /// the pending commands, so a kernel that reads an output before writing it, or reads past a
    /// tensor's end into the padding, gets NaN instead of the zeros of a fresh buffer or the
    /// finite leftovers of a pooled one, and a test comparing it with the CPU fails. Counted as
    /// pending work: a host write after it must not run before it.
    fn poison_locked(&self, st: &mut State, buf: &wgpu::Buffer, from: u64, to: u64) {
        let Some(src) = &self.poison else { return };
        if from >= to {
            return;
        }
        let enc = Self::encoder(&self.device, st);
        let mut at = from;
        while at < to {
            let n = POISON_CHUNK.min(to - at);
            enc.copy_buffer_to_buffer(src, 0, buf, at, n);
            at += n;
        }
        st.pending += 1;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while recording leaves nothing half-done that later calls could trip on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves buffers dropped by tensors into the pool: straight to the free lists when no work
    /// is pending, else to the deferred list until the next submit.
    fn drain_released(&self, st: &mut State) {
        let mut rel = self.released.lock().unwrap_or_else(|p| p.into_inner());
        for (class, buf) in rel.drain(..) {
            if st.pending > 0 {
                st.deferred.push((class, buf));
            } else if st.pooled_bytes + class <= POOL_CAP {
                st.pooled_bytes += class;
                let list = st.free.entry(class).or_default();
                // Kept in the order `flush_locked` gives the lists (see there).
                let at = list.partition_point(|b| *b > buf);
                list.insert(at, buf);
            } else {
                st.stats.bytes_allocated -= class;
                buf.destroy();
                st.bind_groups.clear();
            }
        }
    }

    /// Reports device loss and errors raised since the last check.
    pub fn check_errors(&self) -> Result<(), GpuError> {
        if let Some(l) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(GpuError::DeviceLost(l));
        }
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.is_empty() {
            return Ok(());
        }
        let msg = errs.join("; ");
        errs.clear();
        if msg.to_lowercase().contains("out of memory") {
            Err(GpuError::OutOfMemory(msg))
        } else {
            Err(GpuError::Validation {
                context: "queued work".into(),
                message: msg,
            })
        }
    }

    /// `host_write`: the host fills the buffer (`Queue::write_buffer`, run before every pending
    /// command), so a buffer freed by pending commands may not serve it (rule 2 above).
    fn alloc_locked(
        &self,
        st: &mut State,
        bytes: u64,
        what: &str,
        host_write: bool,
    ) -> Result<GpuBuffer, GpuError> {
        let buf = self.take_locked(st, bytes, what, host_write)?;
        // What the host writes is its own; the tail past it is poisoned all the same (a kernel
        // reading an uploaded list past its end).
        let from = if host_write {
            bytes.next_multiple_of(4)
        } else {
            0
        };
        self.poison_locked(st, buf.raw(), from, buf.raw().size());
        Ok(buf)
    }

    /// [`GpuContext::alloc_locked`] without the poison: a pooled buffer of at least `bytes`
    /// bytes, else a new one.
    fn take_locked(
        &self,
        st: &mut State,
        bytes: u64,
        what: &str,
        host_write: bool,
    ) -> Result<GpuBuffer, GpuError> {
        if bytes > self.limits.max_storage_buffer_binding_size
            || bytes > self.limits.max_buffer_size
        {
            return Err(GpuError::Limit {
                op: "alloc",
                what: "max_storage_buffer_binding_size",
                needed: bytes,
                limit: self
                    .limits
                    .max_storage_buffer_binding_size
                    .min(self.limits.max_buffer_size),
            });
        }
        self.drain_released(st);
        // Near the buffer-size limit, allocate exactly rather than round up past it.
        let class = match size_class(bytes) {
            c if c > self.limits.max_buffer_size => bytes.next_multiple_of(256),
            c => c,
        };
        if let Some(buf) = st.free.get_mut(&class).and_then(|v| v.pop()) {
            st.pooled_bytes -= class;
            st.stats.buffers_reused += 1;
            return Ok(self.wrap(buf, class, bytes));
        }
        // Else, for a buffer only the device writes, one of its class freed by the pending
        // commands (the latest freed). Why: a loop of ops with no read-back (a benchmark's
        // repetitions, a long chain between submits) would otherwise create a buffer per output,
        // each zero-filled by wgpu, and hold them all until the submit.
        if !host_write {
            if let Some(at) = st.deferred.iter().rposition(|(c, _)| *c == class) {
                let (_, buf) = st.deferred.remove(at);
                st.stats.buffers_reused += 1;
                return Ok(self.wrap(buf, class, bytes));
            }
        }
        // Else the smallest free buffer of a class up to 4× larger. Why: a step's index
        // uploads (distinct songs, segment pointers) vary in length from batch to batch, and
        // one that crosses a class boundary would otherwise create a buffer in a warm step
        // while a larger idle one waits (seen on lavapipe at 100,000 songs: 1 buffer in 3
        // steps). The buffer keeps its own class and goes back to that list.
        let larger = st
            .free
            .iter()
            .filter(|(&c, v)| c > class && c <= class.saturating_mul(4) && !v.is_empty())
            .map(|(&c, _)| c)
            .min();
        if let Some(c) = larger {
            if let Some(buf) = st.free.get_mut(&c).and_then(|v| v.pop()) {
                st.pooled_bytes -= c;
                st.stats.buffers_reused += 1;
                return Ok(self.wrap(buf, c, bytes));
            }
        }
        let create = || {
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(what),
                size: class,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            match pollster::block_on(scope.pop()) {
                Some(e) => Err(e),
                None => Ok(buf),
            }
        };
        let buf = match create() {
            Ok(buf) => buf,
            Err(_) if !st.free.is_empty() => {
                // The device is full: give back the idle buffers the pool holds and retry once.
                for (_, bufs) in st.free.drain() {
                    for b in bufs {
                        b.destroy();
                    }
                }
                st.bind_groups.clear();
                st.stats.bytes_allocated -= st.pooled_bytes;
                st.pooled_bytes = 0;
                create().map_err(|e| {
                    GpuError::OutOfMemory(format!(
                        "allocating {bytes} bytes for {what}, after freeing the idle buffers: {e}"
                    ))
                })?
            }
            Err(e) => {
                return Err(GpuError::OutOfMemory(format!(
                    "allocating {bytes} bytes for {what}: {e}"
                )))
            }
        };
        st.stats.buffers_created += 1;
        st.stats.bytes_allocated += class;
        Ok(self.wrap(buf, class, bytes))
    }

    fn wrap(&self, buf: wgpu::Buffer, class: u64, bytes: u64) -> GpuBuffer {
        GpuBuffer {
            buffer: Some(buf),
            class,
            bytes,
            offset: 0,
            parent: None,
            released: self.released.clone(),
        }
    }

    /// One zeroed buffer holding ranges of the given byte sizes, each starting at a multiple of
    /// `align` bytes and of the device's storage offset alignment: returns the buffer and a view
    /// of each range. A kernel binding the whole buffer reaches every range in one dispatch (the
    /// fused optimizer step over all parameters).
    pub fn pack(
        &self,
        sizes: &[u64],
        align: u64,
        what: &str,
    ) -> Result<(Arc<GpuBuffer>, Vec<GpuBuffer>), GpuError> {
        let align = u64::from(self.limits.min_storage_buffer_offset_alignment)
            .max(align)
            .max(4);
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut end = 0u64;
        for &b in sizes {
            let at = end.next_multiple_of(align);
            offsets.push(at);
            // At least 4 bytes each: a binding is never empty.
            end = at + b.max(4).next_multiple_of(4);
        }
        let parent = Arc::new(self.alloc(end.max(4), what)?);
        self.clear(&parent, end.max(4));
        let views = sizes
            .iter()
            .zip(offsets)
            .map(|(&bytes, offset)| GpuBuffer {
                buffer: Some(parent.raw().clone()),
                class: 0,
                bytes,
                offset,
                parent: Some(parent.clone()),
                released: self.released.clone(),
            })
            .collect();
        Ok((parent, views))
    }

    /// The device's memory as its driver reports it ([`super::memory::device_memory`]);
    /// `None` where the backend cannot say.
    pub fn memory(&self) -> Option<super::memory::DeviceMemory> {
        super::memory::device_memory(&self.raw_adapter)
    }

    /// What this process may still allocate on the device, the pool's idle buffers counted as
    /// its own to reuse; `None` where the backend cannot say. A software adapter's buffers are
    /// host memory whatever heap it advertises (lavapipe: 2 GiB, unenforced), so there it is
    /// the system's available memory; an integrated GPU shares the host's memory, so there it
    /// is the less of the two.
    pub fn available_memory(&self) -> Option<u64> {
        let host = crate::io::space::available_memory_bytes;
        if self.adapter.software {
            return host();
        }
        // Buffers destroyed by finished work give their memory back at a poll; a driver's use
        // counts the pool's idle buffers and those waiting to join it, which are ours to reuse.
        let _ = self.device.poll(wgpu::PollType::Poll);
        let idle = {
            let st = self.lock();
            let waiting = self.released.lock().unwrap_or_else(|p| p.into_inner());
            st.pooled_bytes
                + st.deferred.iter().map(|(c, _)| c).sum::<u64>()
                + waiting.iter().map(|(c, _)| c).sum::<u64>()
        };
        let device = self.memory().map(|m| m.available(idle));
        if self.raw_adapter.get_info().device_type == wgpu::DeviceType::IntegratedGpu {
            return match (device, host()) {
                (Some(d), Some(h)) => Some(d.min(h)),
                (d, h) => d.or(h),
            };
        }
        device
    }

    /// A device buffer of at least `bytes` bytes with undefined contents (NaN under
    /// [`POISON_ENV`]).
    pub fn alloc(&self, bytes: u64, what: &str) -> Result<GpuBuffer, GpuError> {
        let mut st = self.lock();
        self.alloc_locked(&mut st, bytes, what, false)
    }

    /// A new buffer holding `data`.
    pub fn upload(&self, data: &[u8], what: &str) -> Result<GpuBuffer, GpuError> {
        self.upload_with(data.len() as u64, what, |view| view.copy_from_slice(data))
    }

    /// A new buffer of `bytes` bytes (a multiple of 4) that `fill` writes in place, in wgpu's
    /// staging memory for the upload: the data need not be assembled in a host buffer first
    /// (a batch of padded audio clips is hundreds of MB, which would be written twice).
    pub fn upload_with(
        &self,
        bytes: u64,
        what: &str,
        fill: impl FnOnce(&mut wgpu::QueueWriteBufferView),
    ) -> Result<GpuBuffer, GpuError> {
        let buf = {
            let mut st = self.lock();
            let buf = self.alloc_locked(&mut st, bytes, what, true)?;
            st.stats.upload_bytes += bytes;
            buf
        };
        // Written at the start of the next submit. Safe while work is pending: a fresh or
        // pooled-and-idle buffer is not referenced by any recorded command (rule 2 above).
        if let Some(size) = NonZeroU64::new(bytes) {
            let mut view = self
                .queue
                .write_buffer_with(buf.raw(), 0, size)
                .ok_or_else(|| GpuError::Validation {
                    context: format!("uploading {bytes} bytes for {what}"),
                    message: "the queue refused a staging view of that size".into(),
                })?;
            fill(&mut view);
        }
        Ok(buf)
    }

    /// Overwrites an existing buffer from the host, after the pending work that may read it.
    pub fn overwrite(&self, buf: &GpuBuffer, data: &[u8]) -> Result<(), GpuError> {
        let mut st = self.lock();
        if st.pending > 0 {
            self.flush_locked(&mut st)?;
        }
        st.stats.upload_bytes += data.len() as u64;
        if !data.is_empty() {
            self.queue.write_buffer(buf.raw(), buf.offset, data);
        }
        Ok(())
    }

    /// Records a device-side copy of the first `bytes` bytes into a new buffer.
    pub fn duplicate(&self, src: &GpuBuffer, bytes: u64) -> Result<GpuBuffer, GpuError> {
        let mut st = self.lock();
        let dst = self.alloc_locked(&mut st, bytes, "copy", false)?;
        if bytes > 0 {
            let enc = Self::encoder(&self.device, &mut st);
            enc.copy_buffer_to_buffer(src.raw(), src.offset, dst.raw(), 0, bytes);
            st.pending += 1;
        }
        Ok(dst)
    }

    /// Records a zero fill of the first `bytes` bytes.
    pub fn clear(&self, buf: &GpuBuffer, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut st = self.lock();
        let enc = Self::encoder(&self.device, &mut st);
        enc.clear_buffer(buf.raw(), buf.offset, Some(bytes));
        st.pending += 1;
    }

    fn new_encoder(device: &wgpu::Device) -> wgpu::CommandEncoder {
        device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("ainrnn batch"),
        })
    }

    /// The pending encoder, for a command outside compute passes: ends the open pass first
    /// (an encoder with an open pass takes no other command).
    fn encoder<'a>(device: &wgpu::Device, st: &'a mut State) -> &'a mut wgpu::CommandEncoder {
        st.pass = None;
        st.encoder.get_or_insert_with(|| Self::new_encoder(device))
    }

    /// A dispatch's parameter bytes and its storage bindings by binding number, checked against
    /// the kernel's shader: a mismatch is a bug in the calling op, reported naming the kernel.
    fn interface<'p, 'b, P: KernelParams>(
        kernel: &Kernel,
        params: &'p P,
        bindings: &[(&str, &'b GpuBuffer)],
    ) -> Result<(&'p [u8], Slots<'b>), GpuError> {
        let shader = kernel.shader;
        let interface = |message: String| GpuError::Validation {
            context: format!("binding {}::{}", shader.name, kernel.entry),
            message,
        };
        if P::LAYOUT.rust_name != shader.params.rust_name {
            return Err(interface(format!(
                "parameters of type {} for a shader whose Params are {}",
                P::LAYOUT.rust_name,
                shader.params.rust_name
            )));
        }
        let params = bytemuck::bytes_of(params);
        assert!(
            params.len() as u64 <= PARAM_SLOT,
            "{}::{}: parameter block of {} bytes",
            shader.name,
            kernel.entry,
            params.len()
        );
        let mut slots = Vec::with_capacity(bindings.len());
        for &(name, buf) in bindings {
            let b = shader
                .binding(name)
                .ok_or_else(|| interface(format!("the shader declares no binding named {name}")))?;
            slots.push((b, buf));
        }
        Ok((params, slots))
    }

    /// A bind group: the parameter slot at `offset` of `params_buf`, then the storage slots.
    fn bind_group(
        &self,
        kernel: &Kernel,
        pipeline: &wgpu::ComputePipeline,
        params_buf: &wgpu::Buffer,
        offset: u64,
        slots: &[(u32, &GpuBuffer)],
    ) -> Result<wgpu::BindGroup, GpuError> {
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: params_buf,
                offset,
                size: NonZeroU64::new(PARAM_SLOT),
            }),
        }];
        for &(b, buf) in slots {
            entries.push(wgpu::BindGroupEntry {
                binding: b,
                resource: buf.binding(),
            });
        }
        // A mismatch between the bindings given and the shader's layout is a bug in the calling
        // op: report it here, naming the kernel, instead of from whichever later call checks
        // errors.
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let g = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(GpuError::Validation {
                context: format!("binding {}::{}", kernel.shader.name, kernel.entry),
                message: e.to_string(),
            }),
            None => Ok(g),
        }
    }

    /// Records one dispatch. `params` is the kernel's uniform block (binding 0, of the type its
    /// [`Shader`](super::Shader) declares); `bindings` name the shader's storage buffers (see
    /// [`Shader::bindings`](super::Shader::bindings)).
    pub fn dispatch<P: KernelParams>(
        &self,
        kernel: &Kernel,
        params: &P,
        bindings: &[(&str, &GpuBuffer)],
        groups: [u32; 3],
    ) -> Result<(), GpuError> {
        self.dispatch_work(kernel, params, bindings, groups, Work::default())
    }

    /// [`dispatch`](Self::dispatch) of a kernel whose work is known ([`Work`]: its operations,
    /// the bytes it moves): the timer adds it to the kernel's [`KernelTime`], so a report can
    /// set its rates against the device's ceilings.
    pub fn dispatch_work<P: KernelParams>(
        &self,
        kernel: &Kernel,
        params: &P,
        bindings: &[(&str, &GpuBuffer)],
        groups: [u32; 3],
        work: Work,
    ) -> Result<(), GpuError> {
        let (params, slots) = Self::interface(kernel, params, bindings)?;
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(GpuError::Limit {
                op: kernel.entry,
                what: "max_compute_workgroups_per_dimension",
                needed: groups.iter().copied().max().unwrap_or(0) as u64,
                limit: max as u64,
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let pipeline = self.pipelines.get(&self.device, kernel, self.shader_checks);
        let mut st = self.lock();
        if st.params.len() as u64 + PARAM_SLOT > PARAM_SLOT * MAX_BATCH as u64 {
            self.flush_locked(&mut st)?;
        }
        if st
            .timer
            .as_ref()
            .is_some_and(|t| t.next + 2 > TIMER_QUERIES)
        {
            self.flush_locked(&mut st)?;
        }
        let offset = st.params.len() as u64;
        st.params.extend_from_slice(params);
        st.params.resize((offset + PARAM_SLOT) as usize, 0);

        // A step repeats the same dispatches on the same pooled buffers at the same arena
        // slots, so its bind groups are looked up, not created again (creating one costs a
        // driver a descriptor-set allocation and update).
        let key = BindKey {
            kernel: kernel.clone(),
            offset,
            buffers: slots
                .iter()
                .map(|&(b, buf)| (b, buf.raw().clone(), buf.offset, buf.bytes))
                .collect(),
        };
        let bind_group = match st.bind_groups.get(&key).cloned() {
            Some(g) => {
                st.stats.bind_groups_reused += 1;
                g
            }
            None => {
                let g = self.bind_group(kernel, &pipeline, &st.params_buf, offset, &slots)?;
                if st.bind_groups.len() >= MAX_BIND_GROUPS {
                    st.bind_groups.clear();
                }
                st.bind_groups.insert(key, g.clone());
                g
            }
        };
        let timestamp = st.timer.as_mut().map(|t| {
            let i = t.next;
            t.next += 2;
            t.passes += 1;
            let k = match t.kernel_index.get(kernel) {
                Some(&k) => k,
                None => {
                    t.kernels.push(KernelTime {
                        kernel: kernel_label(kernel),
                        nanos: 0.0,
                        passes: 0,
                        bytes: 0.0,
                        flops: 0.0,
                        workgroups: 0.0,
                    });
                    t.kernel_index.insert(kernel.clone(), t.kernels.len() - 1);
                    t.kernels.len() - 1
                }
            };
            let e = &mut t.kernels[k];
            e.passes += 1;
            e.bytes += work.bytes.unwrap_or_else(|| bound_bytes(&slots) as f64);
            e.flops += work.flops;
            e.workgroups += groups.iter().map(|&g| g as f64).product::<f64>();
            t.pass_kernel.push(k);
            i
        });
        let State {
            encoder,
            pass,
            timer,
            ..
        } = &mut *st;
        match (timer.as_ref(), timestamp) {
            // Timed: a pass per dispatch, with its own begin and end timestamps.
            (Some(t), Some(i)) => {
                let enc = encoder.get_or_insert_with(|| Self::new_encoder(&self.device));
                let mut p = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(kernel.entry),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &t.set,
                        beginning_of_pass_write_index: Some(i),
                        end_of_pass_write_index: Some(i + 1),
                    }),
                });
                p.set_pipeline(&pipeline);
                p.set_bind_group(0, &bind_group, &[]);
                p.dispatch_workgroups(groups[0], groups[1], groups[2]);
            }
            // Untimed: consecutive dispatches share one pass (wgpu still orders them by their
            // buffer uses); a pass costs the host as much again as a dispatch.
            _ => {
                let p = pass.get_or_insert_with(|| {
                    encoder
                        .get_or_insert_with(|| Self::new_encoder(&self.device))
                        .begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some("ainrnn kernels"),
                            timestamp_writes: None,
                        })
                        .forget_lifetime()
                });
                p.set_pipeline(&pipeline);
                p.set_bind_group(0, &bind_group, &[]);
                p.dispatch_workgroups(groups[0], groups[1], groups[2]);
            }
        }
        st.pending += 1;
        st.stats.dispatches += 1;
        if st.pending >= MAX_BATCH {
            self.flush_locked(&mut st)?;
        }
        Ok(())
    }

    /// Grid for `n` workgroups along one logical axis, split over x and y when `n` exceeds the
    /// per-dimension limit. Kernels recover the index as `wid.x + wid.y * nwg.x`.
    pub fn grid(&self, op: &'static str, n: u64) -> Result<[u32; 3], GpuError> {
        let max = self.limits.max_compute_workgroups_per_dimension as u64;
        if n <= max {
            return Ok([n as u32, 1, 1]);
        }
        let y = n.div_ceil(max);
        if y > max {
            return Err(GpuError::Limit {
                op,
                what: "workgroups",
                needed: n,
                limit: max * max,
            });
        }
        Ok([max as u32, y as u32, 1])
    }

    /// Grid for one invocation per item of a one-dimensional kernel ([`WORKGROUP_SIZE`] per
    /// workgroup; see [`GpuContext::grid`]).
    pub fn threads_grid(&self, op: &'static str, threads: u64) -> Result<[u32; 3], GpuError> {
        self.grid(op, threads.div_ceil(WORKGROUP_SIZE as u64))
    }

    fn flush_locked(&self, st: &mut State) -> Result<(), GpuError> {
        if st.encoder.is_none() {
            self.drain_released(st);
            return Ok(());
        }
        // One write for the whole arena, padding included: every `write_buffer` stages through
        // a buffer of its own, which costs a driver some microseconds, once per dispatch if
        // written slot by slot.
        if !st.params.is_empty() {
            self.queue.write_buffer(&st.params_buf, 0, &st.params);
            st.stats.upload_bytes += st.params.len() as u64;
            st.stats.param_bytes += st.params.len() as u64;
        }
        let timed = st.timer.as_ref().map(|t| t.next).unwrap_or(0);
        st.pass = None;
        let mut enc = st.encoder.take().expect("encoder checked above");
        if let (Some(t), true) = (st.timer.as_ref(), timed > 0) {
            enc.resolve_query_set(&t.set, 0..timed, &t.resolve, 0);
            enc.copy_buffer_to_buffer(&t.resolve, 0, &t.readback, 0, timed as u64 * 8);
        }
        let cmd = enc.finish();
        let t0 = std::time::Instant::now();
        st.last_submit = Some(self.queue.submit(Some(cmd)));
        st.stats.submit_nanos += t0.elapsed().as_nanos() as u64;
        st.stats.submits += 1;
        st.params.clear();
        st.pending = 0;
        // Everything freed during the batch can now be reused by anyone.
        self.drain_released(st);
        for (class, buf) in std::mem::take(&mut st.deferred) {
            if st.pooled_bytes + class <= POOL_CAP {
                st.pooled_bytes += class;
                st.free.entry(class).or_default().push(buf);
            } else {
                st.stats.bytes_allocated -= class;
                buf.destroy();
                st.bind_groups.clear();
            }
        }
        // Free lists in a fixed order (by buffer identity), whatever order the buffers came
        // back in: a step that starts from the same free buffers then gets the same buffer for
        // each tensor as the step before, so its bind groups are found in the cache.
        for v in st.free.values_mut() {
            v.sort_unstable_by(|a, b| b.cmp(a));
        }
        if timed > 0 {
            let period = self.queue.get_timestamp_period() as f64;
            let t = st.timer.as_mut().expect("timer checked above");
            let ticks: Vec<u64> = self.map_read_as(&t.readback, timed as u64 * 8)?;
            for (pair, &k) in ticks.chunks_exact(2).zip(&t.pass_kernel) {
                let ns = pair[1].saturating_sub(pair[0]) as f64 * period;
                t.total_ns += ns;
                t.kernels[k].nanos += ns;
            }
            t.pass_kernel.clear();
            t.next = 0;
        }
        self.check_errors()
    }

    /// Submits everything recorded so far (does not wait).
    pub fn flush(&self) -> Result<(), GpuError> {
        let mut st = self.lock();
        self.flush_locked(&mut st)
    }

    /// Submits and waits until the GPU is idle.
    pub fn sync(&self) -> Result<(), GpuError> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Poll(e.to_string()))?;
        self.check_errors()
    }

    /// Maps the first `bytes` bytes of a mappable buffer and hands them to `read`.
    fn map_read(
        &self,
        buf: &wgpu::Buffer,
        bytes: u64,
        read: impl FnOnce(&[u8]),
    ) -> Result<(), GpuError> {
        self.map_read_after(buf, bytes, None, read)
    }

    /// [`GpuContext::map_read`] waiting for submission `after` (the last one when `None`).
    fn map_read_after(
        &self,
        buf: &wgpu::Buffer,
        bytes: u64,
        after: Option<wgpu::SubmissionIndex>,
        read: impl FnOnce(&[u8]),
    ) -> Result<(), GpuError> {
        let (tx, rx) = mpsc::channel();
        buf.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: after,
                timeout: None,
            })
            .map_err(|e| GpuError::Poll(e.to_string()))?;
        match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(GpuError::Map(e.to_string())),
            Err(e) => return Err(GpuError::Map(format!("no map callback: {e}"))),
        }
        {
            let view = buf
                .get_mapped_range(0..bytes)
                .map_err(|e| GpuError::Map(e.to_string()))?;
            read(&view);
        }
        buf.unmap();
        Ok(())
    }

    /// [`GpuContext::map_read`] into a vector of `T`s, copied once from the mapped range.
    fn map_read_as<T: bytemuck::Pod>(
        &self,
        buf: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<T>, GpuError> {
        let mut out = vec![T::zeroed(); bytes as usize / std::mem::size_of::<T>()];
        self.map_read(buf, bytes, |b| {
            bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(b)
        })?;
        Ok(out)
    }

    /// Starts a read-back of several buffers' first bytes (as [`GpuContext::download_many`])
    /// without waiting: the copies are recorded after all pending work into a map buffer of
    /// their own and submitted. [`LaterDownload::wait`] then waits for that submission only,
    /// not for work recorded since: the trainer reads a loss back while the next steps run.
    pub fn download_later(
        self: &Arc<Self>,
        srcs: &[(&GpuBuffer, u64)],
    ) -> Result<LaterDownload, GpuError> {
        let sizes: Vec<u64> = srcs.iter().map(|s| s.1).collect();
        let total: u64 = sizes.iter().sum();
        let mut st = self.lock();
        st.stats.readbacks += 1;
        if total == 0 {
            return Ok(LaterDownload {
                ctx: self.clone(),
                buf: None,
                submit: None,
                sizes,
            });
        }
        let need = size_class(total);
        let buf = match st.later_free.iter().position(|b| b.size() >= need) {
            Some(i) => st.later_free.swap_remove(i),
            None => self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("later read-back"),
                size: need,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        copy_ranges(Self::encoder(&self.device, &mut st), srcs, &buf);
        st.pending += 1;
        self.flush_locked(&mut st)?;
        Ok(LaterDownload {
            ctx: self.clone(),
            buf: Some(buf),
            submit: st.last_submit.clone(),
            sizes,
        })
    }

    /// Copies the first `bytes` bytes of a buffer to the host, after all pending work.
    pub fn download(&self, src: &GpuBuffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
        self.download_as(src, bytes)
    }

    /// [`GpuContext::download`] into a vector of `T` (`bytes` a multiple of its size), without
    /// an intermediate byte vector: a feature batch's read-back is hundreds of MB.
    pub fn download_as<T: bytemuck::Pod>(
        &self,
        src: &GpuBuffer,
        bytes: u64,
    ) -> Result<Vec<T>, GpuError> {
        let mut out = vec![T::zeroed(); bytes as usize / std::mem::size_of::<T>()];
        self.download_many(&[(src, bytes)], |_, b| {
            bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(b)
        })?;
        Ok(out)
    }

    /// The first bytes of several buffers (`(buffer, bytes)`, each a multiple of 4), after all
    /// pending work, with one wait: all are copied into one staging buffer, one after another,
    /// which is mapped once; `read(i, bytes)` receives the `i`-th range. One read-back in the
    /// counters, however many ranges.
    pub fn download_many(
        &self,
        srcs: &[(&GpuBuffer, u64)],
        mut read: impl FnMut(usize, &[u8]),
    ) -> Result<(), GpuError> {
        let total: u64 = srcs.iter().map(|s| s.1).sum();
        if total == 0 {
            srcs.iter().enumerate().for_each(|(i, _)| read(i, &[]));
            return Ok(());
        }
        let mut st = self.lock();
        let need = size_class(total);
        if st.staging.as_ref().is_none_or(|s| s.size() < need) {
            st.staging = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: need,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let staging = st.staging.take().expect("staging created above");
        st.stats.readbacks += 1;
        copy_ranges(Self::encoder(&self.device, &mut st), srcs, &staging);
        st.pending += 1;
        let result = self.flush_locked(&mut st).and_then(|_| {
            let sizes: Vec<u64> = srcs.iter().map(|s| s.1).collect();
            self.map_read(&staging, total, |all| split_ranges(all, &sizes, read))
        });
        st.staging = Some(staging);
        result
    }

    /// Starts accumulating GPU time of every following compute pass (timestamp queries).
    /// Returns false when the adapter has no timestamp support.
    pub fn timer_start(&self) -> Result<bool, GpuError> {
        if !self.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Ok(false);
        }
        let mut st = self.lock();
        self.flush_locked(&mut st)?;
        let bytes = TIMER_QUERIES as u64 * 8;
        st.timer = Some(Timer {
            set: self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("pass timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: TIMER_QUERIES,
            }),
            resolve: self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamp resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamp readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            next: 0,
            total_ns: 0.0,
            passes: 0,
            pass_kernel: Vec::new(),
            kernels: Vec::new(),
            kernel_index: HashMap::new(),
        });
        Ok(true)
    }

    /// Stops the timer; returns the summed kernel time and the number of passes timed.
    pub fn timer_stop(&self) -> Result<Option<(Duration, u64)>, GpuError> {
        Ok(self.timer_report()?.map(|r| (r.total, r.passes)))
    }

    /// Stops the timer; returns the summed kernel time, the passes timed and the time per
    /// kernel, largest first.
    pub fn timer_report(&self) -> Result<Option<TimerReport>, GpuError> {
        let mut st = self.lock();
        self.flush_locked(&mut st)?;
        Ok(st.timer.take().map(|t| {
            let mut kernels = t.kernels;
            kernels.sort_by(|a, b| b.nanos.total_cmp(&a.nanos).then(a.kernel.cmp(&b.kernel)));
            TimerReport {
                total: Duration::from_nanos(t.total_ns as u64),
                passes: t.passes,
                kernels,
            }
        }))
    }

    /// Kernel time of each of `runs`, for choosing between kernels that compute the same thing
    /// (the matmul tuner). After the pending work, each runs once untimed (its pipeline built,
    /// caches and clocks warm) and then `repeats` times, each in a pass of its own between two
    /// timestamps, all in one submit; the fastest timed run of each is returned (noise only
    /// adds time). `None` without timestamp queries. Waits for the device and reads the
    /// timestamps back (one read-back in the counters). Its parameter buffer, query set and
    /// bind groups are its own: the step's parameter arena, bind-group cache and timer are
    /// left as they were.
    pub fn time_each<P: KernelParams>(
        &self,
        runs: &[TimedDispatch<P>],
        repeats: u32,
    ) -> Result<Option<Vec<Duration>>, GpuError> {
        if !self.features.contains(wgpu::Features::TIMESTAMP_QUERY) || runs.is_empty() {
            return Ok(None);
        }
        let repeats = repeats.max(1);
        let queries = 2 * runs.len() as u32 * repeats;
        if queries > wgpu::QUERY_SET_MAX_QUERIES {
            return Err(GpuError::Limit {
                op: "time_each",
                what: "timestamp queries",
                needed: queries as u64,
                limit: wgpu::QUERY_SET_MAX_QUERIES as u64,
            });
        }
        let max = self.limits.max_compute_workgroups_per_dimension;
        let mut arena = Vec::with_capacity(runs.len() * PARAM_SLOT as usize);
        let mut slots = Vec::with_capacity(runs.len());
        for (i, r) in runs.iter().enumerate() {
            let (params, s) = Self::interface(&r.kernel, &r.params, &r.bindings)?;
            if r.groups.iter().any(|&g| g > max) {
                return Err(GpuError::Limit {
                    op: r.kernel.entry,
                    what: "max_compute_workgroups_per_dimension",
                    needed: r.groups.iter().copied().max().unwrap_or(0) as u64,
                    limit: max as u64,
                });
            }
            arena.extend_from_slice(params);
            arena.resize((i + 1) * PARAM_SLOT as usize, 0);
            slots.push(s);
        }
        let params_buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timed params"),
            size: arena.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timed dispatches"),
            ty: wgpu::QueryType::Timestamp,
            count: queries,
        });
        let bytes = queries as u64 * 8;
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timed resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timed readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut st = self.lock();
        // The pending work goes first (its submit also carries the parameter write below).
        self.flush_locked(&mut st)?;
        self.queue.write_buffer(&params_buf, 0, &arena);
        let mut enc = Self::new_encoder(&self.device);
        let mut q = 0;
        for (i, (r, s)) in runs.iter().zip(&slots).enumerate() {
            let pipeline = self
                .pipelines
                .get(&self.device, &r.kernel, self.shader_checks);
            let offset = i as u64 * PARAM_SLOT;
            let group = self.bind_group(&r.kernel, &pipeline, &params_buf, offset, s)?;
            for rep in 0..=repeats {
                let timestamp_writes = (rep > 0).then(|| {
                    q += 2;
                    wgpu::ComputePassTimestampWrites {
                        query_set: &set,
                        beginning_of_pass_write_index: Some(q - 2),
                        end_of_pass_write_index: Some(q - 1),
                    }
                });
                let mut p = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(r.kernel.entry),
                    timestamp_writes,
                });
                p.set_pipeline(&pipeline);
                p.set_bind_group(0, &group, &[]);
                p.dispatch_workgroups(r.groups[0], r.groups[1], r.groups[2]);
            }
        }
        enc.resolve_query_set(&set, 0..queries, &resolve, 0);
        enc.copy_buffer_to_buffer(&resolve, 0, &readback, 0, bytes);
        self.queue.submit(Some(enc.finish()));
        st.stats.submits += 1;
        st.stats.dispatches += runs.len() as u64 * (repeats as u64 + 1);
        st.stats.upload_bytes += arena.len() as u64;
        st.stats.param_bytes += arena.len() as u64;
        st.stats.readbacks += 1;
        let ticks: Vec<u64> = self.map_read_as(&readback, bytes)?;
        drop(st);
        self.check_errors()?;
        let period = self.queue.get_timestamp_period() as f64;
        let per_run = 2 * repeats as usize;
        Ok(Some(
            ticks
                .chunks_exact(per_run)
                .map(|t| {
                    let ns = t
                        .chunks_exact(2)
                        .map(|p| p[1].saturating_sub(p[0]) as f64 * period)
                        .fold(f64::INFINITY, f64::min);
                    Duration::from_nanos(ns as u64)
                })
                .collect(),
        ))
    }

    pub fn stats(&self) -> GpuStats {
        let st = self.lock();
        GpuStats {
            pipelines: self.pipelines.len(),
            ..st.stats
        }
    }
}

/// An on/off environment variable (the poison, the matmul tuner): `None` when unset, else on
/// for `1`, `on`, `true`, off for `0`, `off`, `false`; anything else is an error naming it.
pub(crate) fn env_switch(var: &'static str) -> Result<Option<bool>, GpuError> {
    let Ok(v) = std::env::var(var) else {
        return Ok(None);
    };
    match v.trim() {
        "1" | "on" | "true" => Ok(Some(true)),
        "0" | "off" | "false" => Ok(Some(false)),
        _ => Err(GpuError::Env {
            var,
            value: v,
            expected: "1 (on) or 0 (off)",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::GpuStats;

    #[test]
    fn stats_since_are_the_differences_and_net_growth() {
        let a = GpuStats {
            dispatches: 10,
            readbacks: 2,
            bytes_allocated: 4096,
            pipelines: 5,
            ..Default::default()
        };
        let z = GpuStats {
            dispatches: 25,
            readbacks: 2,
            bytes_allocated: 1024,
            pipelines: 7,
            upload_bytes: 64,
            ..Default::default()
        };
        let d = z.since(&a);
        assert_eq!(
            (d.dispatches, d.readbacks, d.pipelines, d.upload_bytes),
            (15, 0, 2, 64)
        );
        // Memory given back: no growth, not a wrapped count.
        assert_eq!(d.bytes_allocated, 0);
    }
}
