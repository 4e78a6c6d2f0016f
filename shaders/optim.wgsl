// Optimizer kernels: AdamW with the gradient pre-scaled by a device-side factor (global-norm
// clipping without a read-back) and the updated value clamped into [lo, hi] (IndRNN's recurrent
// weights are kept within ±MAG^(1/T); ±inf for the others), the clipping factor itself, and an
// in-place clamp.
//
// Bindings: 0 params, 1 p (rw), 2 g (read), 3 m (rw), 4 v (rw), 5 scale (read),
// 6 sumsq (read), 7 out (rw).

struct Params {
    n: u32,
    _pad: u32,
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> scale: array<f32>;
@group(0) @binding(6) var<storage, read> sumsq: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let g = grad[i] * scale[0];
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let mh = mi / p.bias1;
    let vh = vi / p.bias2;
    let w = param[i];
    param[i] = clamp(w - p.lr * (mh / (sqrt(vh) + p.eps) + p.weight_decay * w), p.lo, p.hi);
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
