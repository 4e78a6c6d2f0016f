// Embedding rows: gather for the forward pass, a deterministic segmented scatter-add for the
// backward pass. No float atomics (not portable in WGSL): the host groups positions by target
// row once (`IndexPlan`), so one invocation owns each (row, column) of the output.
//
// Bindings: 0 params, 1 src / table (read), 2 idx (read u32), 3 dst (read_write),
// 4 order (read u32), 5 seg_rows (read u32), 6 seg_ptr (read u32).

struct Params {
    n: u32,   // gather: positions; scatter: segments
    d: u32,   // row width
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read> order: array<u32>;
@group(0) @binding(5) var<storage, read> seg_rows: array<u32>;
@group(0) @binding(6) var<storage, read> seg_ptr: array<u32>;

@compute @workgroup_size(WG)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    if (t >= p.n * p.d) { return; }
    let i = t / p.d;
    let c = t % p.d;
    dst[t] = src[idx[i] * p.d + c];
}

// Same summation order as the CPU reference: positions of a row in ascending order.
@compute @workgroup_size(WG)
fn scatter_add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    if (t >= p.n * p.d) { return; }
    let s = t / p.d;
    let c = t % p.d;
    var acc = 0.0;
    // Four positions' loads in flight, added in order as by the plain loop below (the same sum
    // to the bit): a popular song's row gathers from many positions, each two dependent loads.
    var j = seg_ptr[s];
    let end = seg_ptr[s + 1u];
    for (; j + 4u <= end; j += 4u) {
        let o = vec4<u32>(order[j], order[j + 1u], order[j + 2u], order[j + 3u]) * p.d + c;
        let v = vec4<f32>(src[o.x], src[o.y], src[o.z], src[o.w]);
        acc = (((acc + v.x) + v.y) + v.z) + v.w;
    }
    for (; j < end; j++) {
        acc += src[order[j] * p.d + c];
    }
    let o = seg_rows[s] * p.d + c;
    dst[o] = dst[o] + acc;
}
