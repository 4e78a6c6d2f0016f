// Batched long complex FFTs over global memory: one radix-8 Stockham (autosort) pass per
// dispatch (a final radix-4 or radix-2 pass when log2 N is not a multiple of 3), for a batch of
// transforms of *different* power-of-two sizes laid out back to back. Radix 8 cuts the passes
// over global memory to 7 for the 2^20-point transforms of a 30 s clip (20 with radix 2).
//
// Job table (binding 3): three u32 per transform, [offset in complex elements, log2 size,
// first unit], sorted by offset and contiguous; a unit is eight elements (one radix-8
// butterfly), or a whole transform of 2 or 4 elements, and one invocation handles one unit.
// All transforms finish on the same pass: one with `k` passes in a batch whose longest has
// `npass` copies src→dst for the first `npass - k` passes, then runs its own. The copies cost a
// few percent (the short transforms are the small ones) and spare every consumer from tracking
// which ping-pong buffer holds which transform.
//
// Pass at sub-size n (stride s = N / n, n1 = n / 8, unit b = p*s + q), w = exp(∓2πi p / n):
//     y[q + s*(8p + k)] = w^k · Σ_r x[q + s*(p + r*n1)] · exp(∓2πi rk / 8),  k = 0..7
// (the 8-point DFT as two 4-point DFTs), then at most one last pass of radix 4 or 2 at n = 4 or
// 2 (no twiddles). The DFT is in natural order at the end (no bit reversal).
// Twiddles (binding 4): exp(-2πi k / 2^log2_tw) for k < 2^log2_tw, computed once per plan in f64
// on the host; any smaller power of two indexes it with a stride. Inverse = conjugate twiddles
// and +i for -i, unnormalised (the scattering kernels fold 1/n into the spectral products).
//
// Bindings: 0 params, 1 src (read), 2 dst (read_write), 3 jobs (read u32), 4 twiddles (read).

struct Params {
    n_jobs: u32,
    total_units: u32,
    step: u32,
    npass: u32,
    log2_tw: u32,
    inverse: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> jobs: array<u32>;
@group(0) @binding(4) var<storage, read> tw: array<vec2<f32>>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

fn twiddle(k: u32) -> vec2<f32> {
    let w = tw[k];
    return select(w, vec2<f32>(w.x, -w.y), p.inverse != 0u);
}

// The last job whose first unit is <= u.
fn find_job(u: u32) -> u32 {
    var lo = 0u;
    var hi = p.n_jobs;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (jobs[3u * mid + 2u] <= u) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// -i·z (forward) or +i·z (inverse).
fn rot(z: vec2<f32>) -> vec2<f32> {
    return select(vec2<f32>(z.y, -z.x), vec2<f32>(-z.y, z.x), p.inverse != 0u);
}

// Four-point DFT of (a, b, c, d), forward or inverse; results in order 0..3.
fn dft4(a: vec2<f32>, b: vec2<f32>, c: vec2<f32>, d: vec2<f32>) -> array<vec2<f32>, 4> {
    let apc = a + c;
    let amc = a - c;
    let bpd = b + d;
    let rbmd = rot(b - d);
    return array<vec2<f32>, 4>(apc + bpd, amc + rbmd, apc - bpd, amc - rbmd);
}

@compute @workgroup_size(WG)
fn stockham_pass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let u = flat_id(wid, nwg, lid);
    if (u >= p.total_units) { return; }
    let job = find_job(u);
    let off = jobs[3u * job];
    let l = jobs[3u * job + 1u];
    let b = u - jobs[3u * job + 2u];
    let n_total = 1u << l;
    let passes = (l + 2u) / 3u;
    let first = p.npass - passes;
    if (p.step < first) {
        for (var k = 8u * b; k < min(8u * b + 8u, n_total); k++) {
            dst[off + k] = src[off + k];
        }
        return;
    }
    let t = p.step - first;
    // Sub-transform size n = N / 8^t; stride s = 8^t.
    let ls = 3u * t;
    let s = 1u << ls;
    let ln = l - ls;
    if (ln == 1u) {
        // Final radix-2 pass (log2 N = 1 mod 3): four butterflies per unit.
        for (var q = 4u * b; q < min(4u * b + 4u, s); q++) {
            let x0 = src[off + q];
            let x1 = src[off + q + s];
            dst[off + q] = x0 + x1;
            dst[off + q + s] = x0 - x1;
        }
        return;
    }
    if (ln == 2u) {
        // Final radix-4 pass (log2 N = 2 mod 3): two butterflies per unit, no twiddles.
        for (var q = 2u * b; q < min(2u * b + 2u, s); q++) {
            let y = dft4(src[off + q], src[off + q + s], src[off + q + 2u * s],
                         src[off + q + 3u * s]);
            for (var k = 0u; k < 4u; k++) {
                dst[off + q + k * s] = y[k];
            }
        }
        return;
    }
    // Radix-8: y[q + s(8p + k)] = w^(pk) Σ_r x[q + s(p + r n/8)] W8^(rk), w = exp(∓2πi/n).
    let n1 = 1u << (ln - 3u);
    let pp = b >> ls;
    let q = b & (s - 1u);
    let base = off + q + s * pp;
    let e = dft4(src[base], src[base + 2u * s * n1], src[base + 4u * s * n1],
                 src[base + 6u * s * n1]);
    var o = dft4(src[base + s * n1], src[base + 3u * s * n1], src[base + 5u * s * n1],
                 src[base + 7u * s * n1]);
    // W8^k O_k: W8 = (1 ∓ i)/√2, W8^2 = ∓i, W8^3 = (-1 ∓ i)/√2.
    let h = 0.70710678118654752;
    o[1] = (o[1] + rot(o[1])) * h;
    o[2] = rot(o[2]);
    o[3] = (rot(o[3]) - o[3]) * h;
    let stride = p.log2_tw - ln;
    let out = off + q + s * (8u * pp);
    dst[out] = e[0] + o[0];
    dst[out + 4u * s] = cmul(e[0] - o[0], twiddle((4u * pp) << stride));
    for (var k = 1u; k < 4u; k++) {
        dst[out + k * s] = cmul(e[k] + o[k], twiddle((k * pp) << stride));
        dst[out + (k + 4u) * s] = cmul(e[k] - o[k], twiddle(((k + 4u) * pp) << stride));
    }
}
