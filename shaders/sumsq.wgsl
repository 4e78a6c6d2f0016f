// Sum of squares of up to seven gradients in one dispatch, added into out[0]: the global
// gradient norm of a training step in a few dispatches instead of one per parameter. One
// workgroup: each invocation folds a strided slice of every input, then a tree in workgroup
// memory; unused inputs have n = 0 (the host binds any buffer there). Dispatched as a single
// workgroup, for gradients of at most 65,536 entries each (longer ones take the multi-workgroup
// fold of reduce.wgsl).
//
// Bindings: 0 params, 1..7 x0..x6 (read), 8 out (rw).

struct Params {
    n0: u32,
    n1: u32,
    n2: u32,
    n3: u32,
    n4: u32,
    n5: u32,
    n6: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read> x3: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<f32>;
@group(0) @binding(6) var<storage, read> x5: array<f32>;
@group(0) @binding(7) var<storage, read> x6: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn sum_squares(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.n0; i += WG) { s += x0[i] * x0[i]; }
    for (var i = lid; i < p.n1; i += WG) { s += x1[i] * x1[i]; }
    for (var i = lid; i < p.n2; i += WG) { s += x2[i] * x2[i]; }
    for (var i = lid; i < p.n3; i += WG) { s += x3[i] * x3[i]; }
    for (var i = lid; i < p.n4; i += WG) { s += x4[i] * x4[i]; }
    for (var i = lid; i < p.n5; i += WG) { s += x5[i] * x5[i]; }
    for (var i = lid; i < p.n6; i += WG) { s += x6[i] * x6[i]; }
    part[lid] = s;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k / 2u) {
        if (lid < k) { part[lid] += part[lid + k]; }
        workgroupBarrier();
    }
    if (lid == 0u) { out[0] = out[0] + part[0]; }
}
