// Row reductions over the last axis, and column sums, for any row length.
//
// `rows_partial`: one workgroup per (row, chunk of `chunk` columns); each invocation folds a
// strided slice (four loads in flight), then a tree in workgroup memory folds the WG values. The host repeats the
// pass on the [rows, nchunks] partials until one chunk is left, so a 360,000-column row takes
// two passes and still fills the GPU when there are few rows. `scale` is applied by the last
// pass only (mean = sum * 1/cols).
// `rows_small`: one invocation per row, for short rows (a workgroup per row would idle), four
// loads in flight.
// `cols_partial`: one invocation per (column, chunk of rows), repeated on the partials; with
// `accumulate` set, the sums are added onto `out` (a bias gradient into its accumulator).
// `cols_tree`: one workgroup per block of CB columns, in one pass: the WG / CB invocations of a
// column take its rows lane, lane + WG / CB, … in order, then a tree in workgroup memory adds
// them in a fixed order (deterministic, no atomics). For a few thousand rows of a few hundred
// columns (a bias or recurrent-weight gradient over B·L rows), where `cols_partial` took two
// dispatches and its last pass summed up to 256 rows in one invocation.
//
// MODE 0 folds x; MODE 1 folds x * y (a row-wise dot product, used by softmax backward).
// OP 0 sums, OP 1 takes the maximum.
// Bindings: 0 params, 1 x (read), 2 y (read), 3 out (read_write).

override OP: u32 = 0u;
override MODE: u32 = 0u;

struct Params {
    rows: u32,
    cols: u32,
    chunk: u32,
    nchunks: u32,
    scale: f32,
    accumulate: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> sh: array<f32, WG>;

fn neg_inf() -> f32 { return bitcast<f32>(0xff800000u); }

fn identity() -> f32 {
    if (OP == 1u) { return neg_inf(); }
    return 0.0;
}

fn fold(acc: f32, v: f32) -> f32 {
    if (OP == 1u) { return max(acc, v); }
    return acc + v;
}

fn load(i: u32) -> f32 {
    if (MODE == 1u) { return x[i] * y[i]; }
    return x[i];
}

fn finish(v: f32) -> f32 {
    if (OP == 0u) { return v * p.scale; }
    return v;
}

@compute @workgroup_size(WG)
fn rows_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.rows * p.nchunks) { return; }
    let row = g / p.nchunks;
    let ch = g % p.nchunks;
    let start = ch * p.chunk;
    let end = min(p.cols, start + p.chunk);
    let base = row * p.cols;
    var acc = identity();
    // Four loads in flight, folded in the order of the plain loop below (the same result to
    // the bit): one load per iteration leaves the memory latency exposed on a GPU.
    var i = start + lid;
    for (; i + 3u * WG < end; i += 4u * WG) {
        let v0 = load(base + i);
        let v1 = load(base + i + WG);
        let v2 = load(base + i + 2u * WG);
        let v3 = load(base + i + 3u * WG);
        acc = fold(fold(fold(fold(acc, v0), v1), v2), v3);
    }
    for (; i < end; i += WG) {
        acc = fold(acc, load(base + i));
    }
    sh[lid] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) { sh[lid] = fold(sh[lid], sh[lid + s]); }
        workgroupBarrier();
    }
    if (lid == 0u) {
        var v = sh[0];
        if (p.nchunks == 1u) { v = finish(v); }
        out[g] = v;
    }
}

@compute @workgroup_size(WG)
fn rows_small(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let row = flat_id(wid, nwg, lid);
    if (row >= p.rows) { return; }
    let base = row * p.cols;
    var acc = identity();
    // Four loads in flight, folded in order as by the plain loop below (the same result).
    var i = 0u;
    for (; i + 4u <= p.cols; i += 4u) {
        let v = vec4<f32>(load(base + i), load(base + i + 1u), load(base + i + 2u),
                          load(base + i + 3u));
        acc = fold(fold(fold(fold(acc, v.x), v.y), v.z), v.w);
    }
    for (; i < p.cols; i++) {
        acc = fold(acc, load(base + i));
    }
    out[row] = finish(acc);
}

// Columns per `cols_tree` workgroup (a power of two, below WG).
const CB: u32 = 4u;

@compute @workgroup_size(WG)
fn cols_tree(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let blk = wid.x + wid.y * nwg.x;
    let lanes = WG / CB;
    let c = blk * CB + lid % CB;
    var acc = 0.0;
    if (c < p.cols) {
        // Four rows' loads in flight, added in order as by the plain loop below.
        var r = lid / CB;
        for (; r + 3u * lanes < p.rows; r += 4u * lanes) {
            let v0 = x[r * p.cols + c];
            let v1 = x[(r + lanes) * p.cols + c];
            let v2 = x[(r + 2u * lanes) * p.cols + c];
            let v3 = x[(r + 3u * lanes) * p.cols + c];
            acc = (((acc + v0) + v1) + v2) + v3;
        }
        for (; r < p.rows; r += lanes) {
            acc += x[r * p.cols + c];
        }
    }
    sh[lid] = acc;
    workgroupBarrier();
    // sh[lid] and sh[lid + s] (s a multiple of CB) belong to the same column.
    for (var s = WG / 2u; s >= CB; s = s / 2u) {
        if (lid < s) { sh[lid] = sh[lid] + sh[lid + s]; }
        workgroupBarrier();
    }
    if (lid < CB && c < p.cols) {
        // select, not a multiply: an uninitialised `out` may hold NaN.
        out[c] = select(sh[lid], out[c] + sh[lid], p.accumulate != 0u);
    }
}

// Sums columns: x is [rows, cols]; out is [nchunks, cols] (chunk = rows per invocation).
@compute @workgroup_size(WG)
fn cols_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    if (t >= p.cols * p.nchunks) { return; }
    let col = t % p.cols;
    let ch = t / p.cols;
    let start = ch * p.chunk;
    let end = min(p.rows, start + p.chunk);
    var acc = 0.0;
    // Four loads in flight, added in row order as by the plain loop (the same sum to the bit).
    var r = start;
    for (; r + 3u < end; r += 4u) {
        let v0 = x[r * p.cols + col];
        let v1 = x[(r + 1u) * p.cols + col];
        let v2 = x[(r + 2u) * p.cols + col];
        let v3 = x[(r + 3u) * p.cols + col];
        acc = (((acc + v0) + v1) + v2) + v3;
    }
    for (; r < end; r++) {
        acc += x[r * p.cols + col];
    }
    // select, not a multiply: an uninitialised `out` may hold NaN.
    out[t] = select(acc, out[t] + acc, p.accumulate != 0u);
}
