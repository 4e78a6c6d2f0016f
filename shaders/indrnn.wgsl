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

// One step of the recurrence; a masked step carries the state.
fn advance(state: f32, m: f32, x: f32, uj: f32) -> f32 {
    if (m > 0.0) { return max(x + uj * state, 0.0); }
    return state;
}

// Time is walked four steps at a time: the four steps' inputs (and in the backward pass their
// gradients and states) are loaded before the first is used, so a sequence waits on memory
// once per four steps instead of once or twice per step. The arithmetic, its order and every
// value written are those of one step at a time (the loop after each).
fn forward_seq(i: u32) {
    let b = i / p.hidden;
    let j = i % p.hidden;
    let hs = p.hidden;
    let uj = u[j];
    var state = 0.0;
    var t = 0u;
    for (; t + 4u <= p.steps; t += 4u) {
        let row = b * p.steps + t;
        let idx = row * hs + j;
        let m = vec4<f32>(mask[row], mask[row + 1u], mask[row + 2u], mask[row + 3u]);
        let x = vec4<f32>(pre[idx], pre[idx + hs], pre[idx + 2u * hs], pre[idx + 3u * hs]);
        for (var k = 0u; k < 4u; k++) {
            state = advance(state, m[k], x[k], uj);
            h[idx + k * hs] = state;
        }
    }
    for (; t < p.steps; t++) {
        let idx = (b * p.steps + t) * hs + j;
        state = advance(state, mask[b * p.steps + t], pre[idx], uj);
        h[idx] = state;
    }
}

// One step back in time at `idx` (a masked step passes its gradient on); returns the new
// (carry, du).
fn retreat(idx: u32, dhv: f32, m: f32, hv: f32, prev: f32, uj: f32, scale: f32, drop: bool,
           carry: f32, du: f32) -> vec2<f32> {
    var g = dhv;
    if (drop) { g = g * scale; }
    g = g + carry;
    if (m > 0.0) {
        let d = select(0.0, g, hv > 0.0);
        dpre[idx] = d;
        return vec2<f32>(d * uj, du + d * prev);
    }
    dpre[idx] = 0.0;
    return vec2<f32>(g, du);
}

fn backward_seq(i: u32, drop: bool) {
    let b = i / p.hidden;
    let j = i % p.hidden;
    let hs = p.hidden;
    let uj = u[j];
    let scale = drop_scale(b, j, drop);
    var cd = vec2<f32>(0.0, 0.0); // (carry, du)
    var s = 0u;
    for (; s + 4u <= p.steps; s += 4u) {
        // Steps t, t - 1, t - 2, t - 3 (t ≥ 3), each with the state before it.
        let t = p.steps - 1u - s;
        let row = b * p.steps + t;
        let idx = row * hs + j;
        let g = vec4<f32>(dh[idx], dh[idx - hs], dh[idx - 2u * hs], dh[idx - 3u * hs]);
        let m = vec4<f32>(mask[row], mask[row - 1u], mask[row - 2u], mask[row - 3u]);
        let hv = vec4<f32>(h[idx], h[idx - hs], h[idx - 2u * hs], h[idx - 3u * hs]);
        var first = 0.0;
        if (t > 3u) { first = h[idx - 4u * hs]; }
        let prev = vec4<f32>(hv.y, hv.z, hv.w, first);
        for (var k = 0u; k < 4u; k++) {
            cd = retreat(idx - k * hs, g[k], m[k], hv[k], prev[k], uj, scale, drop, cd.x, cd.y);
        }
    }
    for (; s < p.steps; s++) {
        let t = p.steps - 1u - s;
        let idx = (b * p.steps + t) * hs + j;
        var prev = 0.0;
        if (t > 0u) { prev = h[idx - hs]; }
        cd = retreat(idx, dh[idx], mask[b * p.steps + t], h[idx], prev, uj, scale, drop, cd.x,
                     cd.y);
    }
    du_part[i] = cd.y;
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
    let hs = p.hidden;
    var t = 0u;
    for (; t + 4u <= p.steps; t += 4u) {
        let idx = (b * p.steps + t) * hs + j;
        let v = vec4<f32>(h[idx], h[idx + hs], h[idx + 2u * hs], h[idx + 3u * hs]);
        for (var k = 0u; k < 4u; k++) { h_out[idx + k * hs] = v[k] * scale; }
    }
    for (; t < p.steps; t++) {
        let idx = (b * p.steps + t) * hs + j;
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
