// Batched long complex FFTs over global memory: one radix-4 Stockham (autosort) pass per
// dispatch (a final radix-2 pass for odd powers of two), for a batch of transforms of
// *different* power-of-two sizes laid out back to back. Radix 4 halves the passes over global
// memory compared with radix 2 (10 instead of 20 for the 2^20-point transforms of a 30 s clip).
//
// Job table (binding 3): three u32 per transform, [offset in complex elements, log2 size,
// first unit], sorted by offset and contiguous; a unit is four elements (one radix-4
// butterfly), or the two elements of a size-2 transform, and one invocation handles one unit.
// All transforms finish on the same pass: one with `k` passes in a batch whose longest has
// `npass` copies src→dst for the first `npass - k` passes, then runs its own. The copies cost a
// few percent (the short transforms are the small ones) and spare every consumer from tracking
// which ping-pong buffer holds which transform.
//
// Radix-4 pass at sub-size n (s = N / n, n1 = n / 4, unit b = p*s + q), w = exp(∓2πi p / n):
//     a, b, c, d = x[q + s*(p + k*n1)], k = 0..3
//     y[q + s*4p]     = (a + c) + (b + d)
//     y[q + s*(4p+1)] = w   ((a - c) ∓ i(b - d))
//     y[q + s*(4p+2)] = w^2 ((a + c) - (b + d))
//     y[q + s*(4p+3)] = w^3 ((a - c) ± i(b - d))
// and the radix-2 pass at n = 2: y[q] = x[q] + x[q+s], y[q+s] = x[q] - x[q+s]. The DFT is in
// natural order at the end (no bit reversal).
// Twiddles (binding 4): exp(-2πi k / 2^log2_tw) for k < 2^log2_tw, computed once per plan in f64
// on the host; any smaller power of two indexes it with a stride. Inverse = conjugate twiddles
// and +i, unnormalised (the scattering kernels fold 1/n into the spectral products).
//
// Bindings: 0 params, 1 src (read), 2 dst (read_write), 3 jobs (read u32), 4 twiddles (read).

const WG: u32 = 256u;

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

@compute @workgroup_size(WG)
fn stockham_pass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let u = (wid.x + wid.y * nwg.x) * WG + lid;
    if (u >= p.total_units) { return; }
    let job = find_job(u);
    let off = jobs[3u * job];
    let l = jobs[3u * job + 1u];
    let b = u - jobs[3u * job + 2u];
    let n_total = 1u << l;
    let passes = (l + 1u) / 2u;
    let first = p.npass - passes;
    if (p.step < first) {
        for (var k = 4u * b; k < min(4u * b + 4u, n_total); k++) {
            dst[off + k] = src[off + k];
        }
        return;
    }
    let t = p.step - first;
    // Sub-transform size n = N / 4^t; stride s = 4^t.
    let ls = 2u * t;
    let s = 1u << ls;
    let ln = l - ls;
    if (ln == 1u) {
        // Final radix-2 pass of an odd power of two: two butterflies per unit (one when N = 2).
        for (var q = 2u * b; q < min(2u * b + 2u, s); q++) {
            let x0 = src[off + q];
            let x1 = src[off + q + s];
            dst[off + q] = x0 + x1;
            dst[off + q + s] = x0 - x1;
        }
        return;
    }
    let n1 = 1u << (ln - 2u);
    let pp = b >> ls;
    let q = b & (s - 1u);
    let base = off + q + s * pp;
    let a = src[base];
    let bb = src[base + s * n1];
    let c = src[base + 2u * s * n1];
    let d = src[base + 3u * s * n1];
    let apc = a + c;
    let amc = a - c;
    let bpd = bb + d;
    // Forward: j(b - d) with j = i; inverse: -i.
    let bmd = bb - d;
    var jbmd = vec2<f32>(-bmd.y, bmd.x);
    if (p.inverse != 0u) {
        jbmd = -jbmd;
    }
    let stride = p.log2_tw - ln;
    let o = off + q + s * (4u * pp);
    dst[o] = apc + bpd;
    dst[o + s] = cmul(amc - jbmd, twiddle(pp << stride));
    dst[o + 2u * s] = cmul(apc - bpd, twiddle((2u * pp) << stride));
    dst[o + 3u * s] = cmul(amc + jbmd, twiddle((3u * pp) << stride));
}
