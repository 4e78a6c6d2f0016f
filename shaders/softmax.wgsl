// Row-wise softmax family for rows of any length (the catalogue has ~360,000 columns).
//
// `lse_partial`: one workgroup per (row, chunk) keeps an online (max, sum of exp) pair per
// invocation (four loads in flight), merges the WG pairs in workgroup memory and writes one pair per chunk.
// `lse_finish`: one invocation per row merges its chunk pairs into log-sum-exp.
// `softmax_apply`: out = exp(x - lse) (MODE 0) or x - lse (MODE 1), one invocation per element.
// `softmax_backward`: dx = y * (dy - s) (MODE 0) or dy - exp(y) * s (MODE 1), s a per-row sum.
// `ce_rows`, `ce_grad`, `ce_targets`: fused cross-entropy with sparse weighted targets.
// A row that is entirely -inf has lse = -inf; its softmax is 0 (no NaN from -inf - -inf).
//
// Bindings: 0 params, 1 x (read), 2 aux (read), 3 out (read_write), 4 aux2 (read),
// 5 row_ptr (read u32), 6 tcols (read u32), 7 tw (read), 8 out2 (read_write).

override MODE: u32 = 0u;

struct Params {
    rows: u32,
    cols: u32,
    chunk: u32,
    nchunks: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> aux2: array<f32>;
@group(0) @binding(5) var<storage, read> row_ptr: array<u32>;
@group(0) @binding(6) var<storage, read> tcols: array<u32>;
@group(0) @binding(7) var<storage, read> tw: array<f32>;
@group(0) @binding(8) var<storage, read_write> out2: array<f32>;

var<workgroup> sh_m: array<f32, WG>;
var<workgroup> sh_s: array<f32, WG>;

fn neg_inf() -> f32 { return bitcast<f32>(0xff800000u); }

// Merges two (max, sum exp(x - max)) pairs.
fn merge(m1: f32, s1: f32, m2: f32, s2: f32) -> vec2<f32> {
    let m = max(m1, m2);
    if (m == neg_inf()) { return vec2<f32>(m, 0.0); }
    return vec2<f32>(m, s1 * exp(m1 - m) + s2 * exp(m2 - m));
}

// One element into a running (max, sum of exp(x - max)) pair; -inf elements add nothing.
fn online(ms: vec2<f32>, v: f32) -> vec2<f32> {
    if (v == neg_inf()) { return ms; }
    if (v > ms.x) { return vec2<f32>(v, ms.y * exp(ms.x - v) + 1.0); }
    return vec2<f32>(ms.x, ms.y + exp(v - ms.x));
}

@compute @workgroup_size(WG)
fn lse_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.rows * p.nchunks) { return; }
    let row = g / p.nchunks;
    let ch = g % p.nchunks;
    let start = ch * p.chunk;
    let end = min(p.cols, start + p.chunk);
    let base = row * p.cols;
    var ms = vec2<f32>(neg_inf(), 0.0);
    // Four loads in flight, taken in the order of the plain loop below (the same result to
    // the bit): one load per iteration leaves the memory latency exposed on a GPU.
    var i = start + lid;
    for (; i + 3u * WG < end; i += 4u * WG) {
        let v0 = x[base + i];
        let v1 = x[base + i + WG];
        let v2 = x[base + i + 2u * WG];
        let v3 = x[base + i + 3u * WG];
        ms = online(online(online(online(ms, v0), v1), v2), v3);
    }
    for (; i < end; i += WG) {
        ms = online(ms, x[base + i]);
    }
    let m = ms.x;
    let s = ms.y;
    sh_m[lid] = m;
    sh_s[lid] = s;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k / 2u) {
        if (lid < k) {
            let r = merge(sh_m[lid], sh_s[lid], sh_m[lid + k], sh_s[lid + k]);
            sh_m[lid] = r.x;
            sh_s[lid] = r.y;
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[2u * g] = sh_m[0];
        out[2u * g + 1u] = sh_s[0];
    }
}

// aux: [rows, nchunks, 2] partial pairs; out: [rows] log-sum-exp.
@compute @workgroup_size(WG)
fn lse_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let row = flat_id(wid, nwg, lid);
    if (row >= p.rows) { return; }
    var m = neg_inf();
    var s = 0.0;
    for (var c = 0u; c < p.nchunks; c++) {
        let j = 2u * (row * p.nchunks + c);
        let r = merge(m, s, aux[j], aux[j + 1u]);
        m = r.x;
        s = r.y;
    }
    if (m == neg_inf()) {
        out[row] = m;
    } else {
        out[row] = m + log(s);
    }
}

// aux: [rows] log-sum-exp.
@compute @workgroup_size(WG)
fn softmax_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.rows * p.cols) { return; }
    let l = aux[i / p.cols];
    let v = x[i];
    if (MODE == 1u) {
        out[i] = select(v - l, neg_inf(), l == neg_inf());
    } else {
        out[i] = select(exp(v - l), 0.0, l == neg_inf());
    }
}

// x: y (forward output), aux: dy, aux2: per-row sums s.
@compute @workgroup_size(WG)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.rows * p.cols) { return; }
    let s = aux2[i / p.cols];
    if (MODE == 1u) {
        out[i] = aux[i] - exp(x[i]) * s;
    } else {
        out[i] = x[i] * (aux[i] - s);
    }
}

// One invocation per row: loss = Σ w (lse - z_t) into out, Σ w into out2.
@compute @workgroup_size(WG)
fn ce_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let r = flat_id(wid, nwg, lid);
    if (r >= p.rows) { return; }
    let l = aux[r];
    let base = r * p.cols;
    var loss = 0.0;
    var wsum = 0.0;
    // Four targets' gathers in flight, summed in the order of the plain loop below (the same
    // sums to the bit): one at a time, a row waits on two dependent loads per target.
    var j = row_ptr[r];
    let end = row_ptr[r + 1u];
    for (; j + 4u <= end; j += 4u) {
        let w = vec4<f32>(tw[j], tw[j + 1u], tw[j + 2u], tw[j + 3u]);
        let c = vec4<u32>(tcols[j], tcols[j + 1u], tcols[j + 2u], tcols[j + 3u]);
        let z = vec4<f32>(x[base + c.x], x[base + c.y], x[base + c.z], x[base + c.w]);
        for (var k = 0u; k < 4u; k++) {
            wsum += w[k];
            loss += w[k] * (l - z[k]);
        }
    }
    for (; j < end; j++) {
        let w = tw[j];
        wsum += w;
        loss += w * (l - x[base + tcols[j]]);
    }
    out[r] = loss;
    out2[r] = wsum;
}

// grad = (Σ w) * softmax(z); aux: lse, aux2: Σ w.
@compute @workgroup_size(WG)
fn ce_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.rows * p.cols) { return; }
    let r = i / p.cols;
    let w = aux2[r];
    out[i] = select(w * exp(x[i] - aux[r]), 0.0, w == 0.0);
}

// grad[r, t] -= w_t, one invocation per row (columns are distinct within a row).
@compute @workgroup_size(WG)
fn ce_targets(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let r = flat_id(wid, nwg, lid);
    if (r >= p.rows) { return; }
    let base = r * p.cols;
    // Four targets at a time, their loads before their stores (the columns are distinct).
    var j = row_ptr[r];
    let end = row_ptr[r + 1u];
    for (; j + 4u <= end; j += 4u) {
        let i = vec4<u32>(tcols[j], tcols[j + 1u], tcols[j + 2u], tcols[j + 3u]) + base;
        let w = vec4<f32>(tw[j], tw[j + 1u], tw[j + 2u], tw[j + 3u]);
        let g = vec4<f32>(out[i.x], out[i.y], out[i.z], out[i.w]);
        for (var k = 0u; k < 4u; k++) { out[i[k]] = g[k] - w[k]; }
    }
    for (; j < end; j++) {
        let i = base + tcols[j];
        out[i] = out[i] - tw[j];
    }
}
