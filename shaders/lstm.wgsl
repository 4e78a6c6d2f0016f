// LSTM layer, one dispatch per time step (the step depends on the whole previous hidden state).
// Each invocation owns one (sequence, unit): it computes its four gate pre-activations as the
// precomputed input part xw (x W_x + b, one matmul for all steps) plus its recurrent dot products
// with h_{t-1}, then the cell update — the recurrent matmul and the gate non-linearities fused.
// Gate order in blocks of H: input, forget, cell (tanh), output. Masked steps carry h and c.
//
// The backward step reads the next step's gate gradients to form the recurrent ∂h (again a fused
// dot product with W_h's row), and keeps ∂h/∂c carries per (sequence, unit) in `carry`.
//
// `seq_forward` / `seq_backward` run the whole sequence in one dispatch when H ≤ WG: a
// workgroup holds WG / H whole sequences, loops over the steps, and shares h_{t-1} (forward) or
// the next step's gate gradients (backward) through workgroup memory, one barrier a step. The
// per-step entries remain for wider layers.
//
// Bindings: 0 params, 1 xw (read), 2 wh (read), 3 mask (read), 4 h (rw), 5 c (rw),
// 6 gates (rw), 7 hprev (rw), 8 dh (read), 9 dgates (rw), 10 carry (rw).

struct Params {
    batch: u32,
    steps: u32,
    hidden: u32,
    t: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xw: array<f32>;
@group(0) @binding(2) var<storage, read> wh: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;
@group(0) @binding(6) var<storage, read_write> gates: array<f32>;
@group(0) @binding(7) var<storage, read_write> hprev: array<f32>;
@group(0) @binding(8) var<storage, read> dh: array<f32>;
@group(0) @binding(9) var<storage, read_write> dgates: array<f32>;
@group(0) @binding(10) var<storage, read_write> carry: array<f32>;

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn tanh_safe(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }

// The four gate entries of unit j at step `row` start at g0 = row·4H + j, H apart.
fn xw_at(g0: u32) -> vec4<f32> {
    let H = p.hidden;
    return vec4<f32>(xw[g0], xw[g0 + H], xw[g0 + 2u * H], xw[g0 + 3u * H]);
}

// W_h's four gate weights from unit k to unit j, at w = k·4H + j.
fn wh_at(w: u32) -> vec4<f32> {
    let H = p.hidden;
    return vec4<f32>(wh[w], wh[w + H], wh[w + 2u * H], wh[w + 3u * H]);
}

fn write_gates(g0: u32, v: vec4<f32>) {
    let H = p.hidden;
    gates[g0] = v.x;
    gates[g0 + H] = v.y;
    gates[g0 + 2u * H] = v.z;
    gates[g0 + 3u * H] = v.w;
}

fn write_dgates(g0: u32, v: vec4<f32>) {
    let H = p.hidden;
    dgates[g0] = v.x;
    dgates[g0 + H] = v.y;
    dgates[g0 + 2u * H] = v.z;
    dgates[g0 + 3u * H] = v.w;
}

// The cell update from the gate pre-activations `a` and c_{t-1}: writes the activated gates
// and returns (c_t, h_t).
fn cell(g0: u32, a: vec4<f32>, cp: f32) -> vec2<f32> {
    let ig = sigmoid(a.x);
    let fg = sigmoid(a.y);
    let gg = tanh_safe(a.z);
    let og = sigmoid(a.w);
    write_gates(g0, vec4<f32>(ig, fg, gg, og));
    let cn = fg * cp + ig * gg;
    return vec2<f32>(cn, og * tanh_safe(cn));
}

// The gate gradients of an unmasked step from ∂h_t and the ∂c carried from t+1 (written to
// `dgates`), and the ∂c to carry to t-1.
struct GateGrads {
    dg: vec4<f32>,
    dc_prev: f32,
}

fn gate_grads(row: u32, t: u32, j: u32, dht: f32, dc_next: f32) -> GateGrads {
    let H = p.hidden;
    let g0 = row * 4u * H + j;
    let ig = gates[g0];
    let fg = gates[g0 + H];
    let gg = gates[g0 + 2u * H];
    let og = gates[g0 + 3u * H];
    var cp = 0.0;
    if (t > 0u) { cp = c[(row - 1u) * H + j]; }
    let tc = tanh_safe(c[row * H + j]);
    let dc = dc_next + dht * og * (1.0 - tc * tc);
    let dg = vec4<f32>(dc * gg * ig * (1.0 - ig), dc * cp * fg * (1.0 - fg),
                       dc * ig * (1.0 - gg * gg), dht * tc * og * (1.0 - og));
    write_dgates(g0, dg);
    return GateGrads(dg, dc * fg);
}

@compute @workgroup_size(WG)
fn step_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    let H = p.hidden;
    if (i >= p.batch * H) { return; }
    let b = i / H;
    let j = i % H;
    let t = p.t;
    let row = b * p.steps + t;
    var hp = 0.0;
    var cp = 0.0;
    if (t > 0u) {
        hp = h[(row - 1u) * H + j];
        cp = c[(row - 1u) * H + j];
    }
    hprev[row * H + j] = hp;
    let g0 = row * 4u * H + j;
    if (mask[row] <= 0.0) {
        h[row * H + j] = hp;
        c[row * H + j] = cp;
        write_gates(g0, vec4<f32>(0.0));
        return;
    }
    var a = xw_at(g0);
    if (t > 0u) {
        let hrow = (row - 1u) * H;
        for (var k = 0u; k < H; k++) {
            let hv = h[hrow + k];
            a = fma(vec4<f32>(hv), wh_at(k * 4u * H + j), a);
        }
    }
    let ch = cell(g0, a, cp);
    c[row * H + j] = ch.x;
    h[row * H + j] = ch.y;
}

// carry: [batch, 2H]: ∂h carried through masked steps, then ∂c carried to the previous step.
@compute @workgroup_size(WG)
fn step_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    let H = p.hidden;
    if (i >= p.batch * H) { return; }
    let b = i / H;
    let j = i % H;
    let t = p.t;
    let row = b * p.steps + t;
    let ch = b * 2u * H + j;
    let cc = ch + H;
    var dht = dh[row * H + j] + carry[ch];
    if (t + 1u < p.steps && mask[row + 1u] > 0.0) {
        let nrow = (row + 1u) * 4u * H;
        let wrow = j * 4u * H;
        for (var m = 0u; m < 4u * H; m++) {
            dht = fma(dgates[nrow + m], wh[wrow + m], dht);
        }
    }
    if (mask[row] <= 0.0) {
        write_dgates(row * 4u * H + j, vec4<f32>(0.0));
        carry[ch] = dht;
        return;
    }
    let gr = gate_grads(row, t, j, dht, carry[cc]);
    carry[ch] = 0.0;
    carry[cc] = gr.dc_prev;
}

// Double-buffered by step parity (h_{t-1} read from one half while h_t goes to the other), so
// one barrier a step suffices.
var<workgroup> hs: array<vec2<f32>, WG>;
var<workgroup> dga: array<vec4<f32>, WG>;
var<workgroup> dgb: array<vec4<f32>, WG>;

fn dg_at(par: u32, i: u32) -> vec4<f32> {
    if (par == 0u) { return dga[i]; }
    return dgb[i];
}

// The invocation's sequence and unit in the whole-sequence entries; `live` false for the
// invocations past the last whole sequence of the workgroup or past the batch.
struct Lane {
    b: u32,
    j: u32,
    base: u32,  // first lane of its sequence in the workgroup
    live: bool,
}

fn lane(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Lane {
    let H = p.hidden;
    let per = WG / H;
    let local_b = lid / H;
    let b = (wid.x + wid.y * nwg.x) * per + local_b;
    return Lane(b, lid % H, local_b * H, local_b < per && b < p.batch);
}

@compute @workgroup_size(WG)
fn seq_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let H = p.hidden;
    let ln = lane(wid, nwg, lid);
    let j = ln.j;
    hs[lid] = vec2<f32>(0.0);
    var cp = 0.0;
    // Each step's mask and input part are loaded a step ahead, before the previous step's
    // recurrent sums, so a step does not start by waiting on memory.
    var mk_next = 0.0;
    var xw_next = vec4<f32>(0.0);
    if (ln.live) {
        let row0 = ln.b * p.steps;
        mk_next = mask[row0];
        xw_next = xw_at(row0 * 4u * H + j);
    }
    workgroupBarrier();
    for (var t = 0u; t < p.steps; t++) {
        let rd = t & 1u;
        var hn = 0.0;
        var cn = 0.0;
        if (ln.live) {
            let row = ln.b * p.steps + t;
            let mk = mk_next;
            let xv = xw_next;
            if (t + 1u < p.steps) {
                mk_next = mask[row + 1u];
                xw_next = xw_at((row + 1u) * 4u * H + j);
            }
            let hp = hs[lid][rd];
            hprev[row * H + j] = hp;
            let g0 = row * 4u * H + j;
            if (mk <= 0.0) {
                hn = hp;
                cn = cp;
                write_gates(g0, vec4<f32>(0.0));
            } else {
                var a = xv;
                if (t > 0u) {
                    for (var k = 0u; k < H; k++) {
                        let hv = hs[ln.base + k][rd];
                        a = fma(vec4<f32>(hv), wh_at(k * 4u * H + j), a);
                    }
                }
                let ch = cell(g0, a, cp);
                cn = ch.x;
                hn = ch.y;
            }
            h[row * H + j] = hn;
            c[row * H + j] = cn;
        }
        hs[lid][1u - rd] = hn;
        cp = cn;
        // h_t complete before step t + 1 reads it (and h_{t-1}'s half is free again).
        workgroupBarrier();
    }
}

@compute @workgroup_size(WG)
fn seq_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let H = p.hidden;
    let ln = lane(wid, nwg, lid);
    let j = ln.j;
    dga[lid] = vec4<f32>(0.0);
    dgb[lid] = vec4<f32>(0.0);
    // ∂h carried through masked steps, ∂c carried to the previous step.
    var ch = 0.0;
    var cc = 0.0;
    // Each step's ∂h and mask are loaded an iteration ahead (going back in time), and its
    // successor's mask is the one the previous iteration used: a step does not start by waiting
    // on memory.
    var dh_next = 0.0;
    var mk_next = 0.0;
    var mk_after = 0.0;
    if (ln.live) {
        let last = ln.b * p.steps + p.steps - 1u;
        dh_next = dh[last * H + j];
        mk_next = mask[last];
    }
    workgroupBarrier();
    for (var s = 0u; s < p.steps; s++) {
        let t = p.steps - 1u - s;
        let rd = s & 1u;
        var dg = vec4<f32>(0.0);
        if (ln.live) {
            let row = ln.b * p.steps + t;
            let dhv = dh_next;
            let mk = mk_next;
            // mask[row + 1] (0 past the sequence's end: never read then).
            let mk1 = mk_after;
            mk_after = mk;
            if (t > 0u) {
                dh_next = dh[(row - 1u) * H + j];
                mk_next = mask[row - 1u];
            }
            var dht = dhv + ch;
            if (t + 1u < p.steps && mk1 > 0.0) {
                let wrow = j * 4u * H;
                for (var k = 0u; k < H; k++) {
                    let d = dg_at(rd, ln.base + k);
                    dht = fma(d.x, wh[wrow + k], dht);
                    dht = fma(d.y, wh[wrow + H + k], dht);
                    dht = fma(d.z, wh[wrow + 2u * H + k], dht);
                    dht = fma(d.w, wh[wrow + 3u * H + k], dht);
                }
            }
            if (mk <= 0.0) {
                ch = dht;
                write_dgates(row * 4u * H + j, dg);
            } else {
                let gr = gate_grads(row, t, j, dht, cc);
                dg = gr.dg;
                ch = 0.0;
                cc = gr.dc_prev;
            }
        }
        if (rd == 0u) { dgb[lid] = dg; } else { dga[lid] = dg; }
        // Step t's gate gradients complete before step t - 1 reads them.
        workgroupBarrier();
    }
}
