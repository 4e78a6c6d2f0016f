// Dropout masks drawn on the device from a counter-based hash, so no mask is uploaded.
// Entry i of a mask is keep_scale when u(seed, stream, i) < keep, else 0, where
//   mix(x)  = the "lowbias32" integer finaliser (xor-shift / multiply, wrapping u32)
//   key     = mix(seed ^ mix(stream ^ 0x9e3779b9))
//   u       = f32(mix(key ^ mix(i)) >> 8) / 2^24        (exact: a 24-bit integer times 2^-24)
// (`dropout_at` of the prelude, shared with indrnn.wgsl's fused kernels). The CPU backend
// computes the same integers (src/backend/model_ops.rs, `dropout_uniform`), so both backends
// draw identical masks for a seed.
//
// `time_drop` multiplies x [B, L, H] by the [B, H] mask of (seed, stream) drawn on the fly:
// entry (b, t, j) uses mask entry b·H + j, so it equals the mask times x without storing it.
//
// Bindings: 0 params, 1 out (rw), 2 x (read).

struct Params {
    n: u32,
    seed: u32,
    stream: u32,
    hidden: u32,  // time_drop: H
    keep: f32,
    keep_scale: f32,
    inner: u32,   // time_drop: L·H, elements per sequence
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

@compute @workgroup_size(WG)
fn mask(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[i] = mask_at(i);
}

// Mask entry e of (seed, stream).
fn mask_at(e: u32) -> f32 {
    return dropout_at(p.seed, p.stream, e, p.keep, p.keep_scale);
}

@compute @workgroup_size(WG)
fn time_drop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let e = (i / p.inner) * p.hidden + i % p.hidden;
    out[i] = x[i] * mask_at(e);
}
