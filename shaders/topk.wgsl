// Top-k selection per row for ranking a catalogue, and masking of known items.
//
// `select_pass`: one invocation per (row, segment of `seg` entries) keeps the k best entries
// (value descending, lower index first on ties) in private arrays by insertion; the host repeats
// the pass on the [rows, segments * k] candidates (FIRST = false, explicit ids) until one segment
// remains. Only entries greater than -inf are kept, so masked items never appear; short rows pad
// with -inf and id 0xffffffff.
// `mask_entries`: one invocation per row sets x[r, cols[j]] = -inf for its CSR entries.
// `csr_axpy`: one invocation per row adds alpha[0] * vals[j] at x[r, cols[j]] (columns are
// unique within a row, so no two invocations write the same entry).
// `csr_row_dot`: one invocation per row sums x[r, cols[j]] * vals[j] into dots[r].
// `mask_groups`: one invocation per entry sets xm[r, c] = -inf when column c's group g =
// groups[c] is in row r's bit set (bit g % 32 of banned[r * words + g / 32]); a group at or past
// 32 * words is in no set. Each invocation writes only its own entry.
//
// Bindings: 0 params, 1 x (read), 2 ids (read u32), 3 out_vals (rw), 4 out_ids (rw u32),
// 5 row_ptr (read u32), 6 cols (read u32), 7 xm (rw), 8 vals (read), 9 alpha (read),
// 10 dots (rw), 11 groups (read u32), 12 banned (read u32).

override FIRST: bool = true;
const KMAX: u32 = 32u;

struct Params {
    rows: u32,
    cols: u32,
    seg: u32,
    nseg: u32,
    k: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_vals: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_ids: array<u32>;
@group(0) @binding(5) var<storage, read> row_ptr: array<u32>;
@group(0) @binding(6) var<storage, read> cols: array<u32>;
@group(0) @binding(7) var<storage, read_write> xm: array<f32>;
@group(0) @binding(8) var<storage, read> vals: array<f32>;
@group(0) @binding(9) var<storage, read> alpha: array<f32>;
@group(0) @binding(10) var<storage, read_write> dots: array<f32>;
@group(0) @binding(11) var<storage, read> groups: array<u32>;
@group(0) @binding(12) var<storage, read> banned: array<u32>;

fn neg_inf() -> f32 { return bitcast<f32>(0xff800000u); }

fn better(v: f32, id: u32, w: f32, wid: u32) -> bool {
    return v > w || (v == w && id < wid);
}

@compute @workgroup_size(WG)
fn select_pass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let t = flat_id(wid, nwg, lid);
    if (t >= p.rows * p.nseg) { return; }
    let r = t / p.nseg;
    let s = t % p.nseg;
    // k in 1..=KMAX (the host refuses others); guarded so no index below runs out.
    let k = min(p.k, KMAX);
    if (k == 0u) { return; }
    var vals: array<f32, KMAX>;
    var idx: array<u32, KMAX>;
    for (var q = 0u; q < k; q++) {
        vals[q] = neg_inf();
        idx[q] = 0xffffffffu;
    }
    let start = s * p.seg;
    let end = min(p.cols, start + p.seg);
    for (var c = start; c < end; c++) {
        let v = x[r * p.cols + c];
        if (!(v > neg_inf())) { continue; }
        var id = c;
        if (!FIRST) { id = ids[min(r * p.cols + c, arrayLength(&ids) - 1u)]; }
        if (!better(v, id, vals[k - 1u], idx[k - 1u])) { continue; }
        var q = k - 1u;
        loop {
            if (q == 0u) { break; }
            if (!better(v, id, vals[q - 1u], idx[q - 1u])) { break; }
            vals[q] = vals[q - 1u];
            idx[q] = idx[q - 1u];
            q = q - 1u;
        }
        vals[q] = v;
        idx[q] = id;
    }
    let o = (r * p.nseg + s) * k;
    for (var q = 0u; q < k; q++) {
        out_vals[o + q] = vals[q];
        out_ids[o + q] = idx[q];
    }
}

@compute @workgroup_size(WG)
fn mask_entries(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let r = flat_id(wid, nwg, lid);
    if (r >= p.rows) { return; }
    // Entries past the buffer or columns past the row are skipped (the host checks both).
    let end = min(row_ptr[r + 1u], arrayLength(&cols));
    for (var j = row_ptr[r]; j < end; j++) {
        if (cols[j] >= p.cols) { continue; }
        xm[r * p.cols + cols[j]] = neg_inf();
    }
}

@compute @workgroup_size(WG)
fn csr_axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let r = flat_id(wid, nwg, lid);
    if (r >= p.rows) { return; }
    let a = alpha[0];
    let end = min(row_ptr[r + 1u], min(arrayLength(&cols), arrayLength(&vals)));
    for (var j = row_ptr[r]; j < end; j++) {
        if (cols[j] >= p.cols) { continue; }
        let i = r * p.cols + cols[j];
        xm[i] = xm[i] + a * vals[j];
    }
}

@compute @workgroup_size(WG)
fn csr_row_dot(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let r = flat_id(wid, nwg, lid);
    if (r >= p.rows) { return; }
    var acc = 0.0;
    let end = min(row_ptr[r + 1u], min(arrayLength(&cols), arrayLength(&vals)));
    for (var j = row_ptr[r]; j < end; j++) {
        if (cols[j] >= p.cols) { continue; }
        acc = acc + x[r * p.cols + cols[j]] * vals[j];
    }
    dots[r] = acc;
}

// `seg` carries the bit set's words per row.
@compute @workgroup_size(WG)
fn mask_groups(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.rows * p.cols) { return; }
    let g = groups[i % p.cols];
    let w = g / 32u;
    if (w >= p.seg) { return; }
    if (((banned[(i / p.cols) * p.seg + w] >> (g % 32u)) & 1u) == 1u) {
        xm[i] = neg_inf();
    }
}
