// Per-element and per-frame audio feature kernels (one invocation per item, WG per workgroup,
// linear index split over x/y by `GpuContext::grid`).
//
// `db`:       out = 10·log10(max(x, amin))                                (elements)
// `db_floor`: out = max(x, aux[clip] − top_db), aux = per-clip max of the dB values
// `delta`:    Savitzky–Golay derivative along frames of [clips, rows, frames], edges take the
//             nearest full window (librosa `delta(mode="interp")` for polyorder = order)
// `hpcp`:     one invocation per (clip, frame): Essentia's spectral peaks (40–5,000 Hz,
//             parabolic interpolation, ≤ max_peaks lowest in frequency) and HPCP (12 bins,
//             squared-cosine window of one semitone, band preset split at 500 Hz, unit max)
// `copy_at`:  out[offset + i] = x[i] (packs a batch's features for one read-back)
//
// Bindings: 0 params, 1 x (read), 2 aux (read), 3 valid (read u32), 4 out (read_write).

const PI: f32 = 3.14159265358979;

struct Params {
    n: u32,        // elements (db, db_floor, delta, copy_at) or clips·frames (hpcp)
    clips: u32,
    rows: u32,
    frames: u32,
    offset: u32,
    half: u32,     // delta: half width
    order: u32,    // delta: 1 or 2
    bins: u32,     // hpcp: spectrum bins
    amin: f32,
    top_db: f32,
    s1: f32,       // delta: Σ j²
    m2: f32,       // delta: mean j²
    s2: f32,       // delta: Σ (j² − m2)²
    sr: f32,       // hpcp: sample rate
    min_f: f32,
    max_f: f32,
    split_f: f32,
    ref_f: f32,
    max_peaks: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read> valid: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn db(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
      @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    // 10·log10(v) = 10·ln(v)/ln(10)
    out[i] = 4.342944819032518 * log(max(x[i], p.amin));
}

@compute @workgroup_size(WG)
fn db_floor(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let clip = i / (p.rows * p.frames);
    out[i] = max(x[i], aux[clip] - p.top_db);
}

@compute @workgroup_size(WG)
fn delta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let t = i % p.frames;
    let row = i / p.frames;
    let clip = row / p.rows;
    // A count past the row reads as the row (the CPU refuses it; a check here would cost a
    // read-back): no window reaches into the next row.
    let v = min(valid[clip], p.frames);
    if (t >= v || v < 2u * p.half + 1u) {
        out[i] = 0.0;
        return;
    }
    let c = clamp(t, p.half, v - 1u - p.half);
    let base = row * p.frames + c - p.half;
    var acc = 0.0;
    for (var k = 0u; k <= 2u * p.half; k++) {
        let j = f32(i32(k) - i32(p.half));
        var w: f32;
        if (p.order == 1u) {
            w = j / p.s1;
        } else {
            w = 2.0 * (j * j - p.m2) / p.s2;
        }
        acc += w * x[base + k];
    }
    out[i] = acc;
}

@compute @workgroup_size(WG)
fn copy_at(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = flat_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    out[p.offset + i] = x[i];
}

// ---- HPCP -------------------------------------------------------------------------------

fn mag(base: u32, k: u32) -> f32 {
    return sqrt(x[base + k]);
}

fn add_peak(f: f32, a: f32, h: ptr<function, array<f32, 12>>) {
    let bin_f = log2(f / p.ref_f) * 12.0;
    let left = i32(ceil(bin_f - 0.5));
    let right = i32(floor(bin_f + 0.5));
    for (var i = left; i <= right; i++) {
        let d = abs(bin_f - f32(i));
        let c = cos(PI * d);
        let wi = ((i % 12) + 12) % 12;
        (*h)[wi] += c * c * (a * a);
    }
}

fn peak(f: f32, a: f32, lo: ptr<function, array<f32, 12>>, hi: ptr<function, array<f32, 12>>) {
    if (f >= p.min_f && f <= p.max_f) {
        if (f < p.split_f) { add_peak(f, a, lo); } else { add_peak(f, a, hi); }
    }
}

fn normalize(h: ptr<function, array<f32, 12>>) {
    var m = (*h)[0];
    for (var k = 1u; k < 12u; k++) { m = max(m, (*h)[k]); }
    if (m != 0.0) {
        for (var k = 0u; k < 12u; k++) { (*h)[k] = (*h)[k] / m; }
    }
}

@compute @workgroup_size(WG)
fn hpcp(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = flat_id(wid, nwg, lid);
    if (g >= p.n) { return; }
    let clip = g / p.frames;
    let t = g % p.frames;
    var lo: array<f32, 12>;
    var hi: array<f32, 12>;
    for (var k = 0u; k < 12u; k++) { lo[k] = 0.0; hi[k] = 0.0; }
    if (t < valid[clip]) {
        let size = p.bins;
        let base = g * size;
        let scale = (p.sr / 2.0) / f32(size - 1u);
        var count = 0u;
        var i = u32(max(ceil(p.min_f / scale), 0.0));
        if (i + 1u < size && mag(base, i) > mag(base, i + 1u) && mag(base, i) > 0.0) {
            peak(f32(i) * scale, mag(base, i), &lo, &hi);
            count += 1u;
        }
        loop {
            if (count >= p.max_peaks) { break; }
            while (i + 1u < size - 1u && mag(base, i) >= mag(base, i + 1u)) { i++; }
            while (i + 1u < size - 1u && mag(base, i) < mag(base, i + 1u)) { i++; }
            var j = i;
            while (j + 1u < size - 1u && mag(base, j) == mag(base, j + 1u)) { j++; }
            let mj = mag(base, j);
            if (j + 1u < size - 1u && mag(base, j + 1u) < mj && mj > 0.0) {
                var bin: f32;
                var val: f32;
                if (j != i) {
                    bin = f32(i + j) * 0.5;
                    val = mag(base, i);
                } else {
                    let l = mag(base, j - 1u);
                    let r = mag(base, j + 1u);
                    let d = 0.5 * ((l - r) / (l - 2.0 * mj + r));
                    bin = f32(j) + d;
                    val = mj - 0.25 * (l - r) * d;
                }
                let pos = bin * scale;
                if (pos > p.max_f) { break; }
                peak(pos, val, &lo, &hi);
                count += 1u;
            }
            i = j;
            if (i + 1u >= size - 1u) {
                if (i == size - 2u && count < p.max_peaks) {
                    let l = mag(base, i - 1u);
                    let m = mag(base, i);
                    let r = mag(base, i + 1u);
                    if (l < m && r < m && m > 0.0) {
                        let d = 0.5 * ((l - r) / (l - 2.0 * m + r));
                        peak((f32(j) + d) * scale, m - 0.25 * (l - r) * d, &lo, &hi);
                        count += 1u;
                    }
                }
                break;
            }
        }
        let pos = p.max_f / scale;
        let last = mag(base, size - 1u);
        if (count < p.max_peaks && f32(size - 2u) < pos && pos <= f32(size - 1u)
            && last > mag(base, size - 2u) && last > 0.0) {
            peak(f32(size - 1u) * scale, last, &lo, &hi);
        }
        normalize(&lo);
        normalize(&hi);
        for (var k = 0u; k < 12u; k++) { lo[k] = lo[k] + hi[k]; }
        normalize(&lo);
    }
    for (var k = 0u; k < 12u; k++) {
        out[(clip * 12u + k) * p.frames + t] = lo[k];
    }
}
