// Batched GEMM: C[z] = alpha * op(A[z]) · op(B[z]) + beta * C[z].
//
// 64x64 output tile per workgroup of 16x16 invocations, each computing a 4x4 block with a
// stride of 16 (rows lid.y + 16i, cols lid.x + 16j) so that workgroup-memory reads are
// broadcast (A) or consecutive (B) and global writes are coalesced. K is walked in slices of
// 16 staged in workgroup memory. Loads are ordered so consecutive invocations read consecutive
// addresses for either transpose. Out-of-range elements load as 0.
//
// Split-K (k_split > 0, one batch entry): workgroup z computes the partial product over
// k in [z·k_split, (z+1)·k_split) into C[z] (alpha = 1, beta = 0 by the caller); the host sums
// the partials. A small C with a long K (∂u = g·q over a catalogue tile) would otherwise run on
// a single workgroup.
//
// Bindings: 0 params, 1 A (read), 2 B (read), 3 C (read_write).

override TRANS_A: bool = false;
override TRANS_B: bool = false;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch0: u32,    // first batch entry of this dispatch (wid.z is relative to it)
    stride_a: u32,  // elements between batch entries of A (0: shared)
    stride_b: u32,
    alpha: f32,
    beta: f32,
    k_split: u32,   // 0: no split
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

var<workgroup> tile_a: array<f32, 1024>; // [BK][BM]
var<workgroup> tile_b: array<f32, 1024>; // [BK][BN]

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    var z = p.batch0 + wid.z;
    var k_begin = 0u;
    var k_end = p.k;
    let c_off = (p.batch0 + wid.z) * p.m * p.n;
    if (p.k_split > 0u) {
        z = 0u;
        k_begin = wid.z * p.k_split;
        k_end = min(p.k, k_begin + p.k_split);
    }
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let a_off = z * p.stride_a;
    let b_off = z * p.stride_b;

    // Four vec4 accumulators, never a private array: a dynamically indexed function-scope array
    // may live in slow local memory on some drivers (the H200 ran this kernel at 0.36 TFLOP/s
    // with one).
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        for (var l = 0u; l < 4u; l++) {
            let e = li + l * 256u;
            var r: u32;
            var kk: u32;
            if (TRANS_A) { kk = e / BM; r = e % BM; } else { r = e / BK; kk = e % BK; }
            let gr = row0 + r;
            let gk = k0 + kk;
            var v = 0.0;
            if (gr < p.m && gk < k_end) {
                if (TRANS_A) { v = a[a_off + gk * p.m + gr]; } else { v = a[a_off + gr * p.k + gk]; }
            }
            tile_a[kk * BM + r] = v;

            var cc: u32;
            var kb: u32;
            if (TRANS_B) { cc = e / BK; kb = e % BK; } else { kb = e / BN; cc = e % BN; }
            let gc = col0 + cc;
            let gkb = k0 + kb;
            var w = 0.0;
            if (gc < p.n && gkb < k_end) {
                if (TRANS_B) { w = b[b_off + gc * p.k + gkb]; } else { w = b[b_off + gkb * p.n + gc]; }
            }
            tile_b[kb * BN + cc] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let ar = kk * BM + lid.y;
            let br = kk * BN + lid.x;
            let bv = vec4<f32>(tile_b[br], tile_b[br + 16u], tile_b[br + 32u], tile_b[br + 48u]);
            acc0 = fma(vec4<f32>(tile_a[ar]), bv, acc0);
            acc1 = fma(vec4<f32>(tile_a[ar + 16u]), bv, acc1);
            acc2 = fma(vec4<f32>(tile_a[ar + 32u]), bv, acc2);
            acc3 = fma(vec4<f32>(tile_a[ar + 48u]), bv, acc3);
        }
        workgroupBarrier();
    }

    store_row(c_off, row0 + lid.y, col0 + lid.x, acc0);
    store_row(c_off, row0 + lid.y + 16u, col0 + lid.x, acc1);
    store_row(c_off, row0 + lid.y + 32u, col0 + lid.x, acc2);
    store_row(c_off, row0 + lid.y + 48u, col0 + lid.x, acc3);
}

// Row `r` of this invocation's 4x4 block: columns col, col + 16, col + 32, col + 48.
fn store_row(c_off: u32, r: u32, col: u32, v: vec4<f32>) {
    if (r >= p.m) { return; }
    for (var j = 0u; j < 4u; j++) {
        let cc = col + 16u * j;
        if (cc >= p.n) { continue; }
        let idx = c_off + r * p.n + cc;
        var x = p.alpha * v[j];
        if (p.beta != 0.0) { x = x + p.beta * c[idx]; }
        c[idx] = x;
    }
}
