// Batched long complex FFTs over global memory: one radix-2 Stockham (autosort) pass per
// dispatch, for a batch of transforms of *different* power-of-two sizes laid out back to back.
//
// Job table (binding 3): two u32 per transform, [offset in complex elements, log2 size],
// sorted by offset and contiguous (offset[e+1] = offset[e] + size[e]); one invocation per pair of
// elements. All transforms finish on the same pass: a transform of L stages in a batch whose
// largest has `lmax` stages copies src→dst for the first `lmax - L` passes, then runs its stages.
// The copies cost a few percent (smaller transforms are the short ones) and spare every consumer
// from tracking which ping-pong buffer holds which transform.
//
// Pass t of a size-n transform (m = n >> (t+1), s = 1 << t, butterfly b = p*s + q):
//     a = x[q + s*p], c = x[q + s*(p + m)]
//     y[q + s*2p] = a + c,  y[q + s*(2p+1)] = (a - c) * w^p,  w = exp(∓2πi / 2m)
// which leaves the DFT in natural order after log2(n) passes (no bit reversal).
// Twiddles (binding 4): exp(-2πi k / 2^log2_tw) for k < 2^(log2_tw - 1), computed once per plan
// in f64 on the host; any smaller power of two indexes it with a stride. Inverse = conjugate
// twiddles, unnormalised (the scattering kernels fold 1/n into the spectral products).
//
// Bindings: 0 params, 1 src (read), 2 dst (read_write), 3 jobs (read u32), 4 twiddles (read).

const WG: u32 = 256u;

struct Params {
    n_jobs: u32,
    total_pairs: u32,
    step: u32,
    lmax: u32,
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

// The last job whose offset is <= e (element index).
fn find_job(e: u32) -> u32 {
    var lo = 0u;
    var hi = p.n_jobs;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (jobs[2u * mid] <= e) {
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
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i >= p.total_pairs) { return; }
    let job = find_job(2u * i);
    let off = jobs[2u * job];
    let l = jobs[2u * job + 1u];
    let b = i - off / 2u;
    let first = p.lmax - l;
    if (p.step < first) {
        dst[off + 2u * b] = src[off + 2u * b];
        dst[off + 2u * b + 1u] = src[off + 2u * b + 1u];
        return;
    }
    let t = p.step - first;
    let s = 1u << t;
    let m = 1u << (l - t - 1u);
    let pp = b >> t;
    let q = b & (s - 1u);
    let a = src[off + q + s * pp];
    let c = src[off + q + s * (pp + m)];
    // 2m = 2^(l - t): twiddle stride 2^(log2_tw - (l - t)).
    var w = tw[pp << (p.log2_tw - (l - t))];
    if (p.inverse != 0u) {
        w.y = -w.y;
    }
    dst[off + q + s * (2u * pp)] = a + c;
    dst[off + q + s * (2u * pp + 1u)] = cmul(a - c, w);
}
