// Batched FFTs in workgroup memory: Stockham autosort, radix 4 (plus one radix-2 pass when
// log2(n) is odd), one workgroup of WG invocations per transform, complex size n ≤ 1024
// (two ping-pong buffers of 1024 vec2<f32> = 16 KiB of workgroup memory).
//
// `stft_power`: one workgroup per (clip, frame). Loads the centred, Hann-windowed frame of
// N_FFT = 2n real samples packed as n complex values z[m] = x[2m] + i·x[2m+1] (zeros outside
// the clip), transforms, then unpacks the real spectrum
//   X[k] = E[k] + W^k O[k],  E = (Z[k] + conj Z[n-k]) / 2,  O = (Z[k] - conj Z[n-k]) / 2i,
// W = exp(-2πi/2n), and writes |X[k]|² for k = 0..n. Frames past the clip's own frame count
// are written as zeros. `fft_c2c`: a plain forward transform of each row, to test the kernel.
//
// Twiddles come from a table computed on the host in f64: tw[k] = exp(-2πik/2n), k < 2n; the
// complex transform of size n uses tw[2m] = exp(-2πim/n).
//
// Bindings: 0 params, 1 x (read: pcm or complex input), 2 window (read), 3 tw (read),
// 4 valid (read u32), 5 out (read_write).

struct Params {
    clips: u32,
    len: u32,      // samples per clip row (stft) / unused (c2c)
    frames: u32,   // frames per clip in the output
    hop: u32,
    n: u32,        // complex FFT size
    log2n: u32,
    batch: u32,    // transforms (c2c)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> window: array<f32>;
@group(0) @binding(3) var<storage, read> tw: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> valid: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> buf0: array<vec2<f32>, 1024>;
var<workgroup> buf1: array<vec2<f32>, 1024>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// Module-scope workgroup arrays cannot be passed by pointer without an extension, so the
// ping-pong buffer is picked by index.
fn ld(which: u32, i: u32) -> vec2<f32> {
    if (which == 0u) { return buf0[i]; }
    return buf1[i];
}

fn st(which: u32, i: u32, v: vec2<f32>) {
    if (which == 0u) { buf0[i] = v; } else { buf1[i] = v; }
}

// exp(-2πi m / n) for the complex size n.
fn w(m: u32) -> vec2<f32> {
    return tw[2u * m];
}

fn radix2(lid: u32, n: u32, ns: u32, src: u32) {
    let half = n / 2u;
    for (var j = lid; j < half; j += WG) {
        let k = j % ns;
        let v0 = ld(src, j);
        let v1 = cmul(ld(src, j + half), w(k * (n / (2u * ns))));
        let d = (j / ns) * ns * 2u + k;
        st(1u - src, d, v0 + v1);
        st(1u - src, d + ns, v0 - v1);
    }
}

fn radix4(lid: u32, n: u32, ns: u32, src: u32) {
    let q = n / 4u;
    let stride = n / (4u * ns);
    for (var j = lid; j < q; j += WG) {
        let k = j % ns;
        let v0 = ld(src, j);
        let v1 = cmul(ld(src, j + q), w(k * stride));
        let v2 = cmul(ld(src, j + 2u * q), w(2u * k * stride));
        let v3 = cmul(ld(src, j + 3u * q), w(3u * k * stride));
        let a0 = v0 + v2;
        let a1 = v0 - v2;
        let a2 = v1 + v3;
        let b = v1 - v3;
        let a3 = vec2<f32>(b.y, -b.x); // -i · (v1 - v3)
        let d = (j / ns) * ns * 4u + k;
        st(1u - src, d, a0 + a2);
        st(1u - src, d + ns, a1 + a3);
        st(1u - src, d + 2u * ns, a0 - a2);
        st(1u - src, d + 3u * ns, a1 - a3);
    }
}

// Transforms the data in buf0 in place; returns the buffer holding the result.
fn fft_wg(lid: u32, n: u32, log2n: u32) -> u32 {
    var src = 0u;
    var ns = 1u;
    if ((log2n & 1u) == 1u) {
        radix2(lid, n, ns, src);
        workgroupBarrier();
        ns = 2u;
        src = 1u;
    }
    loop {
        if (ns >= n) { break; }
        radix4(lid, n, ns, src);
        workgroupBarrier();
        ns = ns * 4u;
        src = 1u - src;
    }
    return src;
}

@compute @workgroup_size(WG)
fn stft_power(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.clips * p.frames) { return; }
    let clip = g / p.frames;
    let t = g % p.frames;
    let n = p.n;
    let obase = g * (n + 1u);
    if (t >= valid[clip]) {
        for (var k = lid; k <= n; k += WG) { out[obase + k] = 0.0; }
        return;
    }
    let xbase = clip * p.len;
    // Sample index of window position 0: t·hop − n_fft/2, with n_fft = 2n.
    let start = i32(t * p.hop) - i32(n);
    for (var m = lid; m < n; m += WG) {
        let i0 = start + i32(2u * m);
        let i1 = i0 + 1;
        var a = 0.0;
        var b = 0.0;
        if (i0 >= 0 && u32(i0) < p.len) { a = x[xbase + u32(i0)] * window[2u * m]; }
        if (i1 >= 0 && u32(i1) < p.len) { b = x[xbase + u32(i1)] * window[2u * m + 1u]; }
        buf0[m] = vec2<f32>(a, b);
    }
    workgroupBarrier();
    let r = fft_wg(lid, n, p.log2n);
    for (var k = lid; k <= n; k += WG) {
        let zk = ld(r, k % n);
        let zc = ld(r, (n - k) % n);
        let zn = vec2<f32>(zc.x, -zc.y);
        let e = 0.5 * (zk + zn);
        let dd = zk - zn;
        let o = vec2<f32>(0.5 * dd.y, -0.5 * dd.x); // (zk - conj z[n-k]) / 2i
        let xk = e + cmul(tw[k], o);
        out[obase + k] = xk.x * xk.x + xk.y * xk.y;
    }
}

@compute @workgroup_size(WG)
fn fft_c2c(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= p.batch) { return; }
    let n = p.n;
    let base = g * n;
    for (var m = lid; m < n; m += WG) {
        buf0[m] = vec2<f32>(x[2u * (base + m)], x[2u * (base + m) + 1u]);
    }
    workgroupBarrier();
    let r = fft_wg(lid, n, p.log2n);
    for (var m = lid; m < n; m += WG) {
        let v = ld(r, m);
        out[2u * (base + m)] = v.x;
        out[2u * (base + m) + 1u] = v.y;
    }
}
