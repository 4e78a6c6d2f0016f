// Prelude: put in front of every shader of this folder by the host (src/backend/gpu/shader.rs)
// and by tests/shaders.rs. Not a shader of its own.
//
// WG: invocations per workgroup of the one-dimensional kernels, set by the host from
// WORKGROUP_SIZE (a pipeline override; the default here is the same value).
override WG: u32 = 256u;

// The flat invocation index of a one-dimensional launch. The host splits large grids over x
// and y (GpuContext::grid), so workgroup w is wid.x + wid.y * nwg.x.
fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

// Dropout mask entry e of (seed, stream): keep_scale when u(seed, stream, e) < keep, else 0,
// with u = f32(mix(key ^ mix(e)) >> 8) / 2^24 and key = mix(seed ^ mix(stream ^ 0x9e3779b9)),
// mix the "lowbias32" finaliser. The CPU backend computes the same integers
// (src/backend/model_ops.rs, `dropout_uniform`); dropout.wgsl and indrnn.wgsl draw from here.
fn dropout_mix(x0: u32) -> u32 {
    var x = x0;
    x = x ^ (x >> 16u);
    x = x * 0x7feb352du;
    x = x ^ (x >> 15u);
    x = x * 0x846ca68bu;
    x = x ^ (x >> 16u);
    return x;
}

fn dropout_at(seed: u32, stream: u32, e: u32, keep: f32, keep_scale: f32) -> f32 {
    let key = dropout_mix(seed ^ dropout_mix(stream ^ 0x9e3779b9u));
    let u = f32(dropout_mix(key ^ dropout_mix(e)) >> 8u) * (1.0 / 16777216.0);
    return select(0.0, keep_scale, u < keep);
}

// AdamW's settings at one step (bias1 = 1 - beta1^t, bias2 = 1 - beta2^t).
struct AdamConsts {
    beta1: f32,
    beta2: f32,
    bias1: f32,
    bias2: f32,
    lr: f32,
    eps: f32,
}

// One AdamW step of value w with moments m, v, scaled gradient g and weight decay `decay`:
// (m, v, w) after it, w not yet clamped. Each multiply-add is an explicit fma: a driver may
// contract `a * b + c` into one or not, and may decide differently in two kernels, so written
// out every kernel that steps (optim.wgsl's `adam_update`, table.wgsl's `adam_at`) rounds the
// same on every GPU.
fn adamw(w: f32, m: f32, v: f32, g: f32, decay: f32, c: AdamConsts) -> vec3<f32> {
    let mi = fma(c.beta1, m, (1.0 - c.beta1) * g);
    let vi = fma(c.beta2, v, (1.0 - c.beta2) * g * g);
    let step = fma(decay, w, (mi / c.bias1) / (sqrt(vi / c.bias2) + c.eps));
    return vec3<f32>(mi, vi, fma(-c.lr, step, w));
}
