// IndRNN recurrence (Li et al., 2018): h_t = relu(pre_t + u ⊙ h_{t-1}), element-wise per unit.
// The input projection pre = x W + b for all steps is one matmul done by the host; these kernels
// run one invocation per (sequence, unit) that loops over time, so the whole recurrence of a
// layer is a single dispatch. Masked steps (padding) carry h unchanged.
//
// Backward loops back in time, recomputing nothing it can read: relu is active where h_t > 0.
// ∂u is written as one partial sum per (sequence, unit); the caller sums them over sequences
// with a column sum, so no float atomics are needed.
//
// `forward_drop` / `backward_drop` fuse the layer's dropout (the time-shared mask of
// dropout.wgsl `time_drop`, entry b·H + j of (seed, stream), drawn by the prelude's
// `dropout_at`): forward writes h and h·mask (`h_out`), backward reads ∂(h·mask) and applies the
// mask to it itself; two dispatches a layer fewer, the same products.
//
// Bindings: 0 params, 1 pre (read), 2 u (read), 3 mask (read), 4 h (read_write),
// 5 dh (read), 6 dpre (read_write), 7 du_part (read_write), 8 h_out (read_write).

struct Params {
    batch: u32,
    steps: u32,
    hidden: u32,
    seed: u32,     // dropout (the *_drop entry points)
    stream: u32,
    keep: f32,
    keep_scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pre: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;
@group(0) @binding(5) var<storage, read> dh: array<f32>;
@group(0) @binding(6) var<storage, read_write> dpre: array<f32>;
@group(0) @binding(7) var<storage, read_write> du_part: array<f32>;
@group(0) @binding(8) var<storage, read_write> h_out: array<f32>;

// Dropout factor of sequence b, unit j (1 without dropout).
fn drop_scale(b: u32, j: u32, drop: bool) -> f32 {
    if (!drop) { return 1.0; }
    return dropout_at(p.seed, p.stream, b * p.hidden + j, p.keep, p.keep_scale);
}

fn forward_seq(i: u32) {
    let b = i / p.hidden;
    let j = i % p.hidden;
    let uj = u[j];
    var state = 0.0;
    for (var t = 0u; t < p.steps; t++) {
        let idx = (b * p.steps + t) * p.hidden + j;
        if (mask[b * p.steps + t] > 0.0) {
            state = max(pre[idx] + uj * state, 0.0);
        }
        h[idx] = state;
    }
}

fn backward_seq(i: u32, drop: bool) {
    let b = i / p.hidden;
    let j = i % p.hidden;
    let uj = u[j];
    let scale = drop_scale(b, j, drop);
    var carry = 0.0;
    var du = 0.0;
    for (var s = 0u; s < p.steps; s++) {
        let t = p.steps - 1u - s;
        let idx = (b * p.steps + t) * p.hidden + j;
        var g = dh[idx];
        if (drop) { g = g * scale; }
        g = g + carry;
        if (mask[b * p.steps + t] > 0.0) {
            var prev = 0.0;
            if (t > 0u) { prev = h[idx - p.hidden]; }
            let d = select(0.0, g, h[idx] > 0.0);
            dpre[idx] = d;
            du += d * prev;
            carry = d * uj;
        } else {
            dpre[idx] = 0.0;
            carry = g;
        }
    }
    du_part[i] = du;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.batch * p.hidden) { return; }
    forward_seq(i);
}

@compute @workgroup_size(WG)
fn forward_drop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.batch * p.hidden) { return; }
    forward_seq(i);
    // A second sweep over the sequence this invocation just wrote (only `forward_drop` binds
    // `h_out`, so the plain entry point's layout stays as it was).
    let b = i / p.hidden;
    let j = i % p.hidden;
    let scale = drop_scale(b, j, true);
    for (var t = 0u; t < p.steps; t++) {
        let idx = (b * p.steps + t) * p.hidden + j;
        h_out[idx] = h[idx] * scale;
    }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.batch * p.hidden) { return; }
    backward_seq(i, false);
}

@compute @workgroup_size(WG)
fn backward_drop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.batch * p.hidden) { return; }
    backward_seq(i, true);
}
