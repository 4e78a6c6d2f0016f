// Wavelet scattering (Kymatio 0.3 `Scattering1D` semantics) around the batched long FFTs of
// `fft_long.wgsl`. Complex values are vec2<f32>; spectra of many (clip, path) jobs are laid out
// back to back in one buffer, described by a job table.
//
// `pad_reflect`:  clips [batch, n] (f32) → complex [batch, n_padded], numpy 'reflect' padding.
// `spec_mul`:     for every job, the product of a source spectrum (period M) with a sparse real
//                 filter, periodised to M' = M / R bins (subsampling by R in time) and scaled by
//                 1/M (the periodisation's mean and the inverse FFT's 1/M' together):
//                     dst[f] = (1/M) Σ_{r<R} src[f + r M'] · h[f + r M'],   f < M'
//                 One dispatch covers all first-order wavelets of all clips (or all second-order
//                 paths, or all low-pass filters) at their own sizes.
// `modulus`:      z → (|z|, 0) in place, the input of the next forward FFT.
// `extract`:      real part of the low-passed signal at [ind_start, ind_start + frames) into the
//                 output row of each job: the final [batch, paths, frames] tensor.
//
// spec_mul job table (binding 3), eight u32 per job, sorted by dst_off and contiguous:
//     [dst_off, dst_len M', src_off, src_len M, filt_off, filt_lo, filt_len, 0]
// The filter is non-zero on the circular run filt_lo .. filt_lo + filt_len - 1 (mod M), values at
// filt[filt_off ..] (binding 4).
//
// Bindings: 0 params, 1 src (read), 2 dst (read_write), 3 jobs/rows (read u32), 4 filters or clips
// (read f32), 5 out (read_write f32), 6 inout (read_write, for `modulus`).

// One field per meaning; each entry point reads its own (the others are zero).
struct Params {
    clips: u32,       // pad_reflect: clips in this group
    n: u32,           // pad_reflect: samples per clip
    n_padded: u32,    // pad_reflect: padded length
    pad_left: u32,    // pad_reflect
    first_clip: u32,  // pad_reflect: first clip of the group in `vals`
    n_jobs: u32,      // spec_mul, extract
    total: u32,       // spec_mul: output elements of all jobs
    count: u32,       // modulus: complex values
    job_len: u32,     // extract: length of each job's signal (n_padded >> J)
    ind_start: u32,   // extract: first unpadded sample
    frames: u32,      // extract: output frames per row
    row_base: u32,    // extract: output row of job 0's table entry 0
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> jobs: array<u32>;
@group(0) @binding(4) var<storage, read> vals: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> inout: array<vec2<f32>>;

// vals = clips [batch, n].
@compute @workgroup_size(WG)
fn pad_reflect(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.clips * p.n_padded) { return; }
    let clip = i / p.n_padded;
    var t = i32(i % p.n_padded) - i32(p.pad_left);
    let n = i32(p.n);
    if (t < 0) { t = -t; }
    if (t >= n) { t = 2 * (n - 1) - t; }
    dst[i] = vec2<f32>(vals[(p.first_clip + clip) * p.n + u32(t)], 0.0);
}

// The last job whose dst_off is <= e.
fn find_job(e: u32, n_jobs: u32) -> u32 {
    var lo = 0u;
    var hi = n_jobs;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (jobs[8u * mid] <= e) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

@compute @workgroup_size(WG)
fn spec_mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.total) { return; }
    let j = 8u * find_job(i, p.n_jobs);
    let dst_off = jobs[j];
    let m_out = jobs[j + 1u];
    let src_off = jobs[j + 2u];
    let m_in = jobs[j + 3u];
    let f_off = jobs[j + 4u];
    let f_lo = jobs[j + 5u];
    let f_len = jobs[j + 6u];
    let f = i - dst_off;
    var acc = vec2<f32>(0.0, 0.0);
    for (var g = f; g < m_in; g += m_out) {
        // Position inside the filter's circular run (m_in is a power of two).
        let d = (g + m_in - f_lo) & (m_in - 1u);
        if (d < f_len) {
            acc += src[src_off + g] * vals[f_off + d];
        }
    }
    dst[i] = acc * (1.0 / f32(m_in));
}

@compute @workgroup_size(WG)
fn modulus(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.count) { return; }
    inout[i] = vec2<f32>(length(inout[i]), 0.0);
}

// jobs = output row of each job (relative to the row base).
@compute @workgroup_size(WG)
fn extract(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n_jobs * p.frames) { return; }
    let job = i / p.frames;
    let t = i % p.frames;
    out[(p.row_base + jobs[job]) * p.frames + t] = src[job * p.job_len + p.ind_start + t].x;
}
