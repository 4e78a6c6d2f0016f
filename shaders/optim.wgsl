// Optimizer kernels: AdamW with the gradient pre-scaled by a device-side factor (global-norm
// clipping without a read-back) and the updated value clamped into [lo, hi] (IndRNN's recurrent
// weights are kept within ±MAG^(1/T); ±inf for the others), the clipping factor itself, and an
// in-place clamp.
//
// `adam_packed` is one AdamW step over every parameter of a model in one dispatch: values,
// gradients and moments each live in one buffer, every parameter at the same offset in the four
// and at a multiple of WG elements (`Backend::zeros_packed`). `segs` lists the parameters to
// update with their end, weight decay and clamp; `blocks` names each WG-element block's entry
// in `segs` (all ones: a gap or a parameter left out, untouched). One workgroup per block, so
// the lookup costs one uniform load and no search. It zeroes the gradient it read: the next
// step accumulates into zeros without a clearing pass.
//
// Bindings: 0 params, 1 p (rw), 2 g (read), 3 m (rw), 4 v (rw), 5 scale (read),
// 6 sumsq (read), 7 out (rw), 8 g (rw, packed), 9 segs (read), 10 blocks (read).

struct Params {
    n: u32,
    nseg: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    bias1: f32,   // 1 - beta1^t
    bias2: f32,   // 1 - beta2^t
    lo: f32,
    hi: f32,
    max_norm: f32,
    base: u32,    // adam_packed: first element of the range covered, `n` blocks of WG from there
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// One parameter's range [start, end) in elements and its update settings.
struct Seg {
    start: u32,
    end: u32,
    decay: f32,
    lo: f32,
    hi: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> scale: array<f32>;
@group(0) @binding(6) var<storage, read> sumsq: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_rw: array<f32>;
@group(0) @binding(9) var<storage, read> segs: array<Seg>;
@group(0) @binding(10) var<storage, read> blocks: array<u32>;

// The AdamW update of element i given its scaled gradient g (the prelude's `adamw`).
fn adam_update(i: u32, g: f32, decay: f32, lo: f32, hi: f32) {
    let c = AdamConsts(p.beta1, p.beta2, p.bias1, p.bias2, p.lr, p.eps);
    let r = adamw(param[i], m[i], v[i], g, decay, c);
    m[i] = r.x;
    v[i] = r.y;
    param[i] = clamp(r.z, lo, hi);
}

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    adam_update(i, grad[i] * scale[0], p.weight_decay, p.lo, p.hi);
}

@compute @workgroup_size(WG)
fn adam_packed(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    // Parameters start at multiples of WG elements, so a workgroup's block lies in one of them
    // (or in a gap): the lookup is uniform over the workgroup, no search.
    let blk = wid.x + wid.y * nwg.x;
    if (blk >= p.n) { return; }
    let k = blocks[blk];
    if (k == 0xffffffffu) { return; }
    let i = p.base + blk * WG + lid;
    if (i >= segs[k].end) { return; }
    let g = grad_rw[i] * scale[0];
    grad_rw[i] = 0.0;
    adam_update(i, g, segs[k].decay, segs[k].lo, segs[k].hi);
}

@compute @workgroup_size(1)
fn clip_scale() {
    let r = p.max_norm / (sqrt(sumsq[0]) + 1e-6);
    // A NaN norm stays NaN (the caller stops on a non-finite loss); min() would hide it.
    out[0] = select(r, 1.0, r >= 1.0);
}

@compute @workgroup_size(WG)
fn clamp_values(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    param[i] = clamp(param[i], p.lo, p.hi);
}
