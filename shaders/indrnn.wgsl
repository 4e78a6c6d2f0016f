// IndRNN recurrence (Li et al., 2018): h_t = relu(pre_t + u ⊙ h_{t-1}), element-wise per unit.
// The input projection pre = x W + b for all steps is one matmul done by the host; these kernels
// run one invocation per (sequence, unit) that loops over time, so the whole recurrence of a
// layer is a single dispatch. Masked steps (padding) carry h unchanged.
//
// Backward loops back in time, recomputing nothing it can read: relu is active where h_t > 0.
// ∂u is written as one partial sum per (sequence, unit); the caller sums them over sequences
// with a column sum, so no float atomics are needed.
//
// Bindings: 0 params, 1 pre (read), 2 u (read), 3 mask (read), 4 h (read_write),
// 5 dh (read), 6 dpre (read_write), 7 du_part (read_write).

struct Params {
    batch: u32,
    steps: u32,
    hidden: u32,
    t: u32,        // unused here: the layout is shared with lstm.wgsl (SeqParams on the host)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pre: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;
@group(0) @binding(5) var<storage, read> dh: array<f32>;
@group(0) @binding(6) var<storage, read_write> dpre: array<f32>;
@group(0) @binding(7) var<storage, read_write> du_part: array<f32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.batch * p.hidden) { return; }
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

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.batch * p.hidden) { return; }
    let b = i / p.hidden;
    let j = i % p.hidden;
    let uj = u[j];
    var carry = 0.0;
    var du = 0.0;
    for (var s = 0u; s < p.steps; s++) {
        let t = p.steps - 1u - s;
        let idx = (b * p.steps + t) * p.hidden + j;
        let g = dh[idx] + carry;
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
