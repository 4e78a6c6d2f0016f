// The optimizer step of a song table whose gradient is never formed whole (`Params`' product
// gradients, src/model/params.rs). The catalogue softmax gives the table the gradient gᵀ·u
// (g: [K, N], the logits' gradient; u: [K, D], the user vectors; K the batch), dense over all N
// rows, and the history's row gather adds a few rows to it. Formed, that gradient is written
// (with a read of the zeros it is added to), read for the norm, read by AdamW and zeroed: five
// passes of N·D floats, 0.9 GB a step at the paper's 359,687 songs x 128. Here it is computed
// where it is used, from g (N·K floats) and u:
//
// `table_rows`: one workgroup per touched row s (r = seg_rows[s], ascending): x[s] = y + z with
//   y = Σ_k g[k, r]·u[k] (one fma per k, k ascending from 0: `matmul.wgsl`'s order, so the bits
//   of the formed product) and z the sum of the src rows routed to r (positions in order from
//   0, as `embed.wgsl`'s scatter_add); corr[s] = |x[s]|² − |y|², what the product's norm alone
//   (the host takes it as Σ (g·gᵀ) ∘ (u·uᵀ), K x K) misses at that row.
// `table_adam`: AdamW over every element, as `optim.wgsl`'s `adam_update`, with the gradient
//   of a 64x64 tile of rows x columns formed in the workgroup as `matmul` forms its tile (16x16
//   invocations, rows lid.y + 16i and columns lid.x + 16j, K in slices of 16 through workgroup
//   memory); a touched row takes x[s] instead (one binary search per tile row). Each element of
//   param, m and v is read and written once, the formed gradient never exists.
//
// No atomics: every output element has one owner.
//
// Bindings: 0 params, 1 g (read), 2 u (read), 3 src (read), 4 order (read u32), 5 seg_rows (read
// u32), 6 seg_ptr (read u32), 7 x (rw, table_rows' output), 8 corr (rw), 9 xr (read: x, as
// table_adam reads it), 10 param (rw), 11 m (rw), 12 v (rw), 13 scale (read). Each entry point
// uses the params and eight of the others.

struct Params {
    n: u32,       // table rows (N)
    d: u32,       // row width (D)
    k: u32,       // rows of g and u (K)
    nseg: u32,    // touched rows
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    bias1: f32,   // 1 - beta1^t
    bias2: f32,   // 1 - beta2^t
    lo: f32,
    hi: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read> order: array<u32>;
@group(0) @binding(5) var<storage, read> seg_rows: array<u32>;
@group(0) @binding(6) var<storage, read> seg_ptr: array<u32>;
@group(0) @binding(7) var<storage, read_write> x: array<f32>;
@group(0) @binding(8) var<storage, read_write> corr: array<f32>;
@group(0) @binding(9) var<storage, read> xr: array<f32>;
@group(0) @binding(10) var<storage, read_write> param: array<f32>;
@group(0) @binding(11) var<storage, read_write> m: array<f32>;
@group(0) @binding(12) var<storage, read_write> v: array<f32>;
@group(0) @binding(13) var<storage, read> scale: array<f32>;

var<workgroup> part: array<f32, WG>;

@compute @workgroup_size(WG)
fn table_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let s = wid.x + wid.y * nwg.x;
    if (s >= p.nseg) { return; }
    let r = seg_rows[s];
    let first = seg_ptr[s];
    let end = seg_ptr[s + 1u];
    var c2 = 0.0;
    for (var c = lid; c < p.d; c += WG) {
        var y = 0.0;
        for (var k = 0u; k < p.k; k++) {
            y = fma(g[k * p.n + r], u[k * p.d + c], y);
        }
        var z = 0.0;
        for (var j = first; j < end; j++) {
            z += src[order[j] * p.d + c];
        }
        let xv = y + z;
        x[s * p.d + c] = xv;
        // |x|² − |y|² without the cancellation of the difference of squares.
        c2 += (xv - y) * (xv + y);
    }
    part[lid] = c2;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h = h / 2u) {
        if (lid < h) { part[lid] += part[lid + h]; }
        workgroupBarrier();
    }
    if (lid == 0u) { corr[s] = part[0]; }
}

const TB: u32 = 64u;  // tile rows and columns
const TK: u32 = 16u;  // K per slice
const UNTOUCHED: u32 = 0xffffffffu;

var<workgroup> tile_g: array<f32, 1024>; // [TK][TB]: g[k0 + kk, row0 + i]
var<workgroup> tile_u: array<f32, 1024>; // [TK][TB]: u[k0 + kk, col0 + j]
var<workgroup> slot: array<u32, 64>;     // each tile row's touched index, or UNTOUCHED

// AdamW on element i with its scaled gradient gs: the prelude's `adamw`, as `optim.wgsl`'s
// `adam_update` takes it (the same bits as the formed step's).
fn adam_at(i: u32, gs: f32) {
    let c = AdamConsts(p.beta1, p.beta2, p.bias1, p.bias2, p.lr, p.eps);
    let r = adamw(param[i], m[i], v[i], gs, p.weight_decay, c);
    m[i] = r.x;
    v[i] = r.y;
    param[i] = clamp(r.z, p.lo, p.hi);
}

// Element (r, c) with its product gradient y (a touched row takes x[s] instead).
fn update(r: u32, s: u32, c: u32, y: f32, sc: f32) {
    if (r >= p.n || c >= p.d) { return; }
    var gr = y;
    if (s != UNTOUCHED) { gr = xr[s * p.d + c]; }
    adam_at(r * p.d + c, gr * sc);
}

// The four columns c0 + 16j of row r.
fn update_row(r: u32, s: u32, c0: u32, y: vec4<f32>, sc: f32) {
    update(r, s, c0, y.x, sc);
    update(r, s, c0 + 16u, y.y, sc);
    update(r, s, c0 + 32u, y.z, sc);
    update(r, s, c0 + 48u, y.w, sc);
}

@compute @workgroup_size(16, 16)
fn table_adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let ncol = (p.d + TB - 1u) / TB;
    let blk = wid.x + wid.y * nwg.x;
    if (blk >= ncol * ((p.n + TB - 1u) / TB)) { return; }
    let row0 = (blk / ncol) * TB;
    let col0 = (blk % ncol) * TB;

    // Which rows of the tile are touched: seg_rows is ascending, one lower bound per row.
    if (li < TB) {
        let r = row0 + li;
        var lo = 0u;
        var hi = p.nseg;
        while (lo < hi) {
            let mid = (lo + hi) / 2u;
            if (seg_rows[mid] < r) { lo = mid + 1u; } else { hi = mid; }
        }
        var s = UNTOUCHED;
        if (lo < p.nseg) {
            if (seg_rows[lo] == r) { s = lo; }
        }
        slot[li] = s;
    }
    workgroupBarrier();

    // Four vec4 accumulators, never a private array (see `matmul.wgsl`).
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // Consecutive invocations load consecutive rows of g and columns of u (both row-major
        // with K outermost): coalesced.
        for (var l = 0u; l < 4u; l++) {
            let e = li + l * 256u;
            let k = k0 + e / TB;
            let i = e % TB;
            var gv = 0.0;
            if (k < p.k && row0 + i < p.n) { gv = g[k * p.n + row0 + i]; }
            tile_g[e] = gv;
            var uv = 0.0;
            if (k < p.k && col0 + i < p.d) { uv = u[k * p.d + col0 + i]; }
            tile_u[e] = uv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let ar = kk * TB + lid.y;
            let br = kk * TB + lid.x;
            let bv = vec4<f32>(tile_u[br], tile_u[br + 16u], tile_u[br + 32u], tile_u[br + 48u]);
            acc0 = fma(vec4<f32>(tile_g[ar]), bv, acc0);
            acc1 = fma(vec4<f32>(tile_g[ar + 16u]), bv, acc1);
            acc2 = fma(vec4<f32>(tile_g[ar + 32u]), bv, acc2);
            acc3 = fma(vec4<f32>(tile_g[ar + 48u]), bv, acc3);
        }
        workgroupBarrier();
    }

    let sc = scale[0];
    let c0 = col0 + lid.x;
    update_row(row0 + lid.y, slot[lid.y], c0, acc0, sc);
    update_row(row0 + lid.y + 16u, slot[lid.y + 16u], c0, acc1, sc);
    update_row(row0 + lid.y + 32u, slot[lid.y + 32u], c0, acc2, sc);
    update_row(row0 + lid.y + 48u, slot[lid.y + 48u], c0, acc3, sc);
}
