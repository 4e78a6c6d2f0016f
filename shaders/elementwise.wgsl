// Element-wise kernels: one invocation per element, WG per workgroup. Large grids are split
// over x and y (see `GpuContext::grid`), so the linear index is rebuilt from both.
//
// Bindings: 0 params, 1 a (read), 2 b (read), 3 out (read_write).
// `OP` is a pipeline-override constant so each variant compiles to straight-line code.

override OP: u32 = 0u;

struct Params {
    n: u32,      // elements of a / out
    nb: u32,     // elements of b (broadcast: b[i % nb])
    alpha: f32,
    beta: f32,
    inner: u32,  // time_mask_mul: steps * hidden (elements per sequence)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// OP: 0 add, 1 sub, 2 mul, 3 div, 4 log-add-exp
@compute @workgroup_size(WG)
fn binary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let x = a[i];
    let y = b[i % p.nb];
    var r: f32;
    switch OP {
        case 0u: { r = x + y; }
        case 1u: { r = x - y; }
        case 2u: { r = x * y; }
        case 3u: { r = x / y; }
        default: {
            let m = max(x, y);
            // exp(-inf - -inf) would be NaN: two -inf inputs give -inf.
            r = select(m + log(exp(x - m) + exp(y - m)), m, m == bitcast<f32>(0xff800000u));
        }
    }
    out[i] = r;
}

// OP: 0 relu, 1 exp, 2 log, 3 neg, 4 sqrt, 5 tanh, 6 sigmoid
@compute @workgroup_size(WG)
fn unary(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let x = a[i];
    var r: f32;
    switch OP {
        case 0u: { r = max(x, 0.0); }
        case 1u: { r = exp(x); }
        case 2u: { r = log(x); }
        case 3u: { r = -x; }
        case 4u: { r = sqrt(x); }
        // tanh(±15) is ±1 in f32; clamping avoids inf/inf in drivers that expand tanh via exp.
        case 5u: { r = tanh(clamp(x, -15.0, 15.0)); }
        default: { r = 1.0 / (1.0 + exp(-x)); }
    }
    out[i] = r;
}

// out = alpha * a + beta
@compute @workgroup_size(WG)
fn affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = p.alpha * a[i] + p.beta;
}

// out += alpha * a (in place)
@compute @workgroup_size(WG)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = out[i] + p.alpha * a[i];
}

// out = b * [a > 0]   (a: ReLU output, b: upstream gradient)
@compute @workgroup_size(WG)
fn relu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = select(0.0, b[i], a[i] > 0.0);
}

// out = b * (1 - a²)   (a: tanh output, b: upstream gradient)
@compute @workgroup_size(WG)
fn tanh_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let y = a[i];
    out[i] = b[i] * (1.0 - y * y);
}

// out[b, t, j] = a[b, t, j] * mask[b, j]: a dropout mask shared over time.
// nb = hidden, inner = steps * hidden.
@compute @workgroup_size(WG)
fn time_mask_mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = a[i] * b[(i / p.inner) * p.nb + i % p.nb];
}
