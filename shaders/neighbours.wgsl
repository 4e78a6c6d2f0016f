// The item-neighbourhood term of a catalogue tile, from lists kept on the device
// (ModelOps::neighbour_axpy, neighbour_row_dot, neighbour_entry_dot, neighbour_pair_grad and
// neighbour_pair_scale; the CPU twins are in src/backend/cpu/model.rs).
// A batch row's history songs and every song's neighbour list are CSR blocks uploaded once; per
// tile the kernels add, for each history entry (h, v) of row r (v = 1 when the block has no
// values: p.weighted = 0) and each neighbour (s, w) of h with s in the tile lo .. lo + cols:
//   axpy:      x[r, s - lo] += gamma · v · w
//   row_dot:   dots[r] = Σ g[r, s - lo] · v · w      (the gradient of gamma, per row)
//   entry_dot: dots[e] = Σ g[r, s - lo] · w          (per history entry e: the gradient of v)
//   pair_grad: dots[e · keep + k] += v · w · g[r, s - lo]   (k: the neighbour's position in h's
//              list; per history entry and pair: over gamma, the gradient of the pair's log-weight)
//
// No float atomics (WGSL has none), and no CAS loop: in `axpy` one workgroup per batch row walks
// the row's history songs in order (their list ranges staged in workgroup memory first), and for
// each song its WG invocations split that song's neighbour list. The host checked that every
// list's columns strictly increase (Csr::sorted), so within one song no two invocations add into
// the same element; a storage barrier between songs orders the adds. Each element thus sees the
// same additions in the same order on every GPU and as on the CPU (a driver may fuse an add with
// its product into one fma, so the bits may differ from the CPU's by that rounding). `row_dot`
// (a workgroup per row) sums per invocation, then a tree in workgroup memory adds the WG partial
// sums in a fixed order: deterministic too. `entry_dot`
// does the same for one history entry per workgroup, and `pair_grad` writes one cell per
// (history entry, list position), a workgroup per entry: no two invocations share a cell, so no
// barrier. Those two thus launch a workgroup per entry (B · history, hundreds), not per row
// (B, a few dozen), and find the entry's row by a binary search of hist_ptr.
//
// pair_scale is no tile kernel: one workgroup per song of `hist` (here the p.rows distinct songs
// of a batch's histories) writes that song's list values with their pair weights applied,
//   dots[j] = nbr_vals[j] · exp(g[h · keep + j − nbr_ptr[h]])   (g: the log-weights [songs, keep])
// into a buffer cleared to 0 by the host; the songs are distinct, so no two write one cell.

struct Params {
    rows: u32,   // batch rows (workgroups)
    cols: u32,   // tile width
    lo: u32,     // first song of the tile
    weighted: u32, // 1: hist_w holds one value per history entry; 0: every value is 1
    keep: u32,   // pair_grad: the row length of `dots` (at least the longest list)
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> hist_ptr: array<u32>;
@group(0) @binding(2) var<storage, read> hist: array<u32>;
@group(0) @binding(3) var<storage, read> nbr_ptr: array<u32>;
@group(0) @binding(4) var<storage, read> nbr_cols: array<u32>;
@group(0) @binding(5) var<storage, read> nbr_vals: array<f32>;
@group(0) @binding(6) var<storage, read> gamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> x: array<f32>;
@group(0) @binding(8) var<storage, read> g: array<f32>;
@group(0) @binding(9) var<storage, read_write> dots: array<f32>;
@group(0) @binding(10) var<storage, read> hist_w: array<f32>;

var<workgroup> partial: array<f32, WG>;

fn entry_weight(i: u32) -> f32 {
    if (p.weighted != 0u) { return hist_w[i]; }
    return 1.0;
}

// partial[0] = Σ partial[0 .. WG], in a fixed order (every invocation must call it).
fn reduce_partial(lid: u32) {
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k / 2u) {
        if (lid < k) { partial[lid] += partial[lid + k]; }
        workgroupBarrier();
    }
}

// `axpy`'s history entries of one row, staged a chunk of WG at a time: each entry's list range
// and scale, loaded by one invocation each, all at once. The in-order walk below then waits on
// none of the chain hist → nbr_ptr (→ hist_w) per song, only on the adds into x.
var<workgroup> st_begin: array<u32, WG>;
var<workgroup> st_end: array<u32, WG>;
var<workgroup> st_scale: array<f32, WG>;

@compute @workgroup_size(WG)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= p.rows) { return; }
    let scale = gamma[0];
    let base = r * p.cols;
    let e1 = hist_ptr[r + 1u];
    for (var c = hist_ptr[r]; c < e1; c += WG) {
        let n = min(WG, e1 - c);
        if (lid < n) {
            let h = hist[c + lid];
            st_begin[lid] = nbr_ptr[h];
            st_end[lid] = nbr_ptr[h + 1u];
            st_scale[lid] = scale * entry_weight(c + lid);
        }
        workgroupBarrier();
        // This invocation's first neighbour of the next song is loaded before the current song's
        // adds (read-only lists: no hazard), so its latency hides behind them. The adds keep
        // their order: song by song, a storage barrier between songs.
        var j = st_begin[0] + lid;
        var s = 0u;
        var w = 0.0;
        if (j < st_end[0]) {
            s = nbr_cols[j];
            w = nbr_vals[j];
        }
        for (var k = 0u; k < n; k++) {
            let end = st_end[k];
            let sv = st_scale[k];
            let jk = j;
            let sk = s;
            let wk = w;
            if (k + 1u < n) {
                j = st_begin[k + 1u] + lid;
                if (j < st_end[k + 1u]) {
                    s = nbr_cols[j];
                    w = nbr_vals[j];
                }
            }
            if (jk < end) {
                if (sk >= p.lo && sk - p.lo < p.cols) {
                    x[base + sk - p.lo] += sv * wk;
                }
                // Lists longer than WG: the rest of this song's list, as before.
                for (var jj = jk + WG; jj < end; jj += WG) {
                    let sj = nbr_cols[jj];
                    if (sj >= p.lo && sj - p.lo < p.cols) {
                        x[base + sj - p.lo] += sv * nbr_vals[jj];
                    }
                }
            }
            storageBarrier();
        }
        // The next chunk overwrites the staging: every invocation must be past this one's walk.
        workgroupBarrier();
    }
}

@compute @workgroup_size(WG)
fn row_dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= p.rows) { return; }
    let base = r * p.cols;
    var acc = 0.0;
    for (var i = hist_ptr[r]; i < hist_ptr[r + 1u]; i++) {
        let h = hist[i];
        let v = entry_weight(i);
        for (var j = nbr_ptr[h] + lid; j < nbr_ptr[h + 1u]; j += WG) {
            let s = nbr_cols[j];
            if (s >= p.lo && s - p.lo < p.cols) {
                acc += g[base + s - p.lo] * (v * nbr_vals[j]);
            }
        }
    }
    partial[lid] = acc;
    reduce_partial(lid);
    if (lid == 0u) { dots[r] = partial[0]; }
}

// The batch row of history entry i: the last row r with hist_ptr[r] <= i (rows may be empty).
fn row_of(i: u32) -> u32 {
    var lo = 0u;
    var hi = p.rows;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (hist_ptr[mid] <= i) { lo = mid; } else { hi = mid; }
    }
    return lo;
}

@compute @workgroup_size(WG)
fn entry_dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    // Uniform control flow for the barriers: every invocation of a workgroup shares `i`.
    let i = wid.x + wid.y * nwg.x;
    if (i >= hist_ptr[p.rows]) { return; }
    let base = row_of(i) * p.cols;
    let h = hist[i];
    var acc = 0.0;
    for (var j = nbr_ptr[h] + lid; j < nbr_ptr[h + 1u]; j += WG) {
        let s = nbr_cols[j];
        if (s >= p.lo && s - p.lo < p.cols) {
            acc += g[base + s - p.lo] * nbr_vals[j];
        }
    }
    partial[lid] = acc;
    reduce_partial(lid);
    if (lid == 0u) { dots[i] = partial[0]; }
}

@compute @workgroup_size(WG)
fn pair_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = wid.x + wid.y * nwg.x;
    if (i >= hist_ptr[p.rows]) { return; }
    let base = row_of(i) * p.cols;
    let h = hist[i];
    let v = entry_weight(i);
    let a = nbr_ptr[h];
    for (var j = a + lid; j < nbr_ptr[h + 1u]; j += WG) {
        let s = nbr_cols[j];
        if (s >= p.lo && s - p.lo < p.cols) {
            dots[i * p.keep + (j - a)] += v * nbr_vals[j] * g[base + s - p.lo];
        }
    }
}

@compute @workgroup_size(WG)
fn pair_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let r = wid.x + wid.y * nwg.x;
    if (r >= p.rows) { return; }
    let h = hist[r];
    let a = nbr_ptr[h];
    for (var j = a + lid; j < nbr_ptr[h + 1u]; j += WG) {
        dots[j] = nbr_vals[j] * exp(g[h * p.keep + (j - a)]);
    }
}
