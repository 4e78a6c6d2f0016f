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
// `matmul128`: the same product for large C, a 128x128 tile per workgroup with 8x8 outputs per
// invocation (rows ty*4 + i and 64 + ty*4 + i, columns tx*4 + j and 64 + tx*4 + j): four vec4
// reads of workgroup memory per 64 FMAs instead of eight per 16, so the arithmetic, not the
// workgroup-memory traffic, sets the pace. Same parameters, bindings and split-K.
//
// `matmul128p`: `matmul128` with two changes for hardware GPUs, kept beside it so that one run
// of `bench ops` on a GPU can compare the two (`GpuBackend::with_matmul_kernel`):
// - the next K slice is read from global memory into registers (16 values per invocation)
//   while the current one is multiplied, so the loads' latency hides behind the FMAs;
// - the workgroup tiles' vec4 slots are swizzled: element (i, k) of a K row lives in slot
//   (i / 4) XOR k. Where consecutive invocations stage consecutive K of one row (A not
//   transposed, B transposed), their stores then fall in eight banks, two to a bank of 32,
//   instead of all sixteen in one (a 16-way conflict unswizzled); the reads of a K row stay
//   a permutation of its slots. Padding the rows instead (33 vec4s) would do the same but
//   take 16,896 bytes, past the 16 KiB of workgroup memory the device is opened with.
//
// `matmul16`: C too small for the other tiles to fill a GPU, over a long K (the recurrent
// layers' weight gradients xᵀ·∂h: 32 × 32 over K = batch × steps = 800, one or two workgroups
// of `matmul32`, each waiting on its loads once per 16 of K). A 16x16 tile per workgroup, one
// output per invocation (four times `matmul32`'s workgroups on such a C), K in slices of 64
// (a fourth of the waits), the next slice read into registers while this one is summed.
//
// `matmul32w`: C of at most 32 rows and many columns (the batch's catalogue logits u·qᵀ, the
// partials of g·q), as `matmul32` but with each invocation's outputs shaped for hardware GPUs:
// a 32x128 tile per workgroup of 32x4 invocations, 8 rows x 4 columns each (rows 8·ty + i,
// columns 4·tx + j), so a K step reads workgroup memory three times (A's two vec4s, the same
// for every invocation of a row group, and one vec4 of B) for 32 FMAs, where `matmul32` reads it
// six times for 8. Tiles padded to 36 and 132 floats a K row (vec4-aligned, staging stores at
// most two to a bank).
//
// Every kernel sums K in the same order (one fused multiply-add per k, k ascending, from 0;
// the zeros past K's end add nothing), so they give the same bits and the tuner picks by time.
//
// With `has_bias`, row vector `bias` (n values) is added to every row of C in the store: a
// linear layer's bias costs no dispatch of its own.
//
// Bindings: 0 params, 1 A (read), 2 B (read), 3 C (read_write), 4 bias (read; any buffer when
// `has_bias` is 0).

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
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// What workgroup z of a dispatch covers: its batch entry's offsets into A, B and C, and its
// range of K (all of K, or one slice of it under split-K).
struct Slice {
    k_begin: u32,
    k_end: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
}

fn slice_of(wz: u32) -> Slice {
    var z = p.batch0 + wz;
    var k_begin = 0u;
    var k_end = p.k;
    let c_off = (p.batch0 + wz) * p.m * p.n;
    if (p.k_split > 0u) {
        z = 0u;
        k_begin = wz * p.k_split;
        k_end = min(p.k, k_begin + p.k_split);
    }
    return Slice(k_begin, k_end, z * p.stride_a, z * p.stride_b, c_off);
}

var<workgroup> tile_a: array<f32, 1024>; // [BK][BM]
var<workgroup> tile_b: array<f32, 1024>; // [BK][BN]

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let sl = slice_of(wid.z);
    let k_begin = sl.k_begin;
    let k_end = sl.k_end;
    let c_off = sl.c_off;
    let a_off = sl.a_off;
    let b_off = sl.b_off;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;

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
            let x = a_elem(e, BM, row0, k0, k_end, a_off);
            tile_a[x.k * BM + x.i] = x.v;
            let y = b_elem(e, BN, col0, k0, k_end, b_off);
            tile_b[y.k * BN + y.i] = y.v;
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

    store(c_off, row0 + lid.y, col0 + lid.x, 16u, acc0);
    store(c_off, row0 + lid.y + 16u, col0 + lid.x, 16u, acc1);
    store(c_off, row0 + lid.y + 32u, col0 + lid.x, 16u, acc2);
    store(c_off, row0 + lid.y + 48u, col0 + lid.x, 16u, acc3);
}

// `matmul32`: `matmul` for C of at most 32 rows (the catalogue products u·qᵀ and g·q of a batch
// of 32 users), a 32x64 tile per workgroup, 2x4 outputs per invocation (rows lid.y + 16i):
// `matmul`'s 64-row tile would spend half its FMAs on rows past C's end. Its tiles' K rows are
// padded by one float (33 and 65): where consecutive invocations stage consecutive K of one
// row (A not transposed, as u; B transposed, as qᵀ), their stores then fall in different banks
// instead of all in one (32 and 64 floats apart: a 16-way conflict, for a kernel with only 8
// outputs per invocation to amortise its staging over).
const PAD_A32: u32 = 33u;
const PAD_B32: u32 = 65u;
var<workgroup> tile_a32: array<f32, 528>;  // [BK][PAD_A32]
var<workgroup> tile_b32: array<f32, 1040>; // [BK][PAD_B32]

@compute @workgroup_size(16, 16)
fn matmul32(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let sl = slice_of(wid.z);
    let k_end = sl.k_end;
    let row0 = wid.y * 32u;
    let col0 = wid.x * BN;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    for (var k0 = sl.k_begin; k0 < k_end; k0 += BK) {
        // A's slice is 16 x 32 (two elements per invocation), B's 16 x 64 (four).
        for (var l = 0u; l < 2u; l++) {
            let x = a_elem(li + l * 256u, 32u, row0, k0, k_end, sl.a_off);
            tile_a32[x.k * PAD_A32 + x.i] = x.v;
        }
        for (var l = 0u; l < 4u; l++) {
            let y = b_elem(li + l * 256u, BN, col0, k0, k_end, sl.b_off);
            tile_b32[y.k * PAD_B32 + y.i] = y.v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let ar = kk * PAD_A32 + lid.y;
            let br = kk * PAD_B32 + lid.x;
            let bv = vec4<f32>(tile_b32[br], tile_b32[br + 16u], tile_b32[br + 32u], tile_b32[br + 48u]);
            acc0 = fma(vec4<f32>(tile_a32[ar]), bv, acc0);
            acc1 = fma(vec4<f32>(tile_a32[ar + 16u]), bv, acc1);
        }
        workgroupBarrier();
    }
    store(sl.c_off, row0 + lid.y, col0 + lid.x, 16u, acc0);
    store(sl.c_off, row0 + lid.y + 16u, col0 + lid.x, 16u, acc1);
}

// Four columns col + step·j (j = 0..3) of row `r` of C: a 4x4 block's row in `matmul` (step 16),
// four consecutive columns in `matmul128` (step 1).
fn store(c_off: u32, r: u32, col: u32, step: u32, v: vec4<f32>) {
    if (r >= p.m) { return; }
    for (var j = 0u; j < 4u; j++) {
        let cc = col + step * j;
        if (cc >= p.n) { return; }
        store_one(c_off, r, cc, v[j]);
    }
}

// C[r, cc] = alpha · v (+ beta · C[r, cc]) (+ bias[cc]), inside C.
fn store_one(c_off: u32, r: u32, cc: u32, v: f32) {
    let idx = c_off + r * p.n + cc;
    var x = p.alpha * v;
    if (p.beta != 0.0) { x = x + p.beta * c[idx]; }
    if (p.has_bias != 0u) { x = x + bias[cc]; }
    c[idx] = x;
}

// Element e of a BK x `tile` slice of op(A) at rows row0.., K k0..: its K index and row within
// the slice, and its value (0 outside A or past k_end). Consecutive e read consecutive
// addresses for either transpose.
struct Elem {
    k: u32,
    i: u32,
    v: f32,
}

fn a_elem(e: u32, tile: u32, row0: u32, k0: u32, k_end: u32, a_off: u32) -> Elem {
    return a_elem_bk(e, tile, BK, row0, k0, k_end, a_off);
}

// `a_elem` for a slice of `bk` rows of K.
fn a_elem_bk(e: u32, tile: u32, bk: u32, row0: u32, k0: u32, k_end: u32, a_off: u32) -> Elem {
    var r: u32;
    var kk: u32;
    if (TRANS_A) { kk = e / tile; r = e % tile; } else { r = e / bk; kk = e % bk; }
    let gr = row0 + r;
    let gk = k0 + kk;
    var v = 0.0;
    if (gr < p.m && gk < k_end) {
        if (TRANS_A) { v = a[a_off + gk * p.m + gr]; } else { v = a[a_off + gr * p.k + gk]; }
    }
    return Elem(kk, r, v);
}

// The same for op(B): element e of a BK x `tile` slice at columns col0...
fn b_elem(e: u32, tile: u32, col0: u32, k0: u32, k_end: u32, b_off: u32) -> Elem {
    return b_elem_bk(e, tile, BK, col0, k0, k_end, b_off);
}

// `b_elem` for a slice of `bk` rows of K.
fn b_elem_bk(e: u32, tile: u32, bk: u32, col0: u32, k0: u32, k_end: u32, b_off: u32) -> Elem {
    var cc: u32;
    var kb: u32;
    if (TRANS_B) { cc = e / bk; kb = e % bk; } else { kb = e / tile; cc = e % tile; }
    let gc = col0 + cc;
    let gkb = k0 + kb;
    var w = 0.0;
    if (gc < p.n && gkb < k_end) {
        if (TRANS_B) { w = b[b_off + gc * p.k + gkb]; } else { w = b[b_off + gkb * p.n + gc]; }
    }
    return Elem(kb, cc, w);
}

const BM2: u32 = 128u;

// The 8x8 outputs of one `matmul128` invocation in named vec4 fields, never a private array
// (see `matmul`). c{i}{h}: the invocation's row i (i < 4: row 4·ty + i of the tile, else
// 64 + 4·ty + i − 4), columns 4·tx .. 4·tx + 3 (h = 0) or 64 + 4·tx .. (h = 1).
struct Acc8x8 {
    c00: vec4<f32>, c01: vec4<f32>,
    c10: vec4<f32>, c11: vec4<f32>,
    c20: vec4<f32>, c21: vec4<f32>,
    c30: vec4<f32>, c31: vec4<f32>,
    c40: vec4<f32>, c41: vec4<f32>,
    c50: vec4<f32>, c51: vec4<f32>,
    c60: vec4<f32>, c61: vec4<f32>,
    c70: vec4<f32>, c71: vec4<f32>,
}

// One K step of the 8x8 block: rows from a0 (first four) and a1, columns from b0 and b1.
fn fma8x8(c: ptr<function, Acc8x8>, a0: vec4<f32>, a1: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>) {
    (*c).c00 = fma(vec4<f32>(a0.x), b0, (*c).c00); (*c).c01 = fma(vec4<f32>(a0.x), b1, (*c).c01);
    (*c).c10 = fma(vec4<f32>(a0.y), b0, (*c).c10); (*c).c11 = fma(vec4<f32>(a0.y), b1, (*c).c11);
    (*c).c20 = fma(vec4<f32>(a0.z), b0, (*c).c20); (*c).c21 = fma(vec4<f32>(a0.z), b1, (*c).c21);
    (*c).c30 = fma(vec4<f32>(a0.w), b0, (*c).c30); (*c).c31 = fma(vec4<f32>(a0.w), b1, (*c).c31);
    (*c).c40 = fma(vec4<f32>(a1.x), b0, (*c).c40); (*c).c41 = fma(vec4<f32>(a1.x), b1, (*c).c41);
    (*c).c50 = fma(vec4<f32>(a1.y), b0, (*c).c50); (*c).c51 = fma(vec4<f32>(a1.y), b1, (*c).c51);
    (*c).c60 = fma(vec4<f32>(a1.z), b0, (*c).c60); (*c).c61 = fma(vec4<f32>(a1.z), b1, (*c).c61);
    (*c).c70 = fma(vec4<f32>(a1.w), b0, (*c).c70); (*c).c71 = fma(vec4<f32>(a1.w), b1, (*c).c71);
}

fn store8x8(c_off: u32, row0: u32, col0: u32, t: vec2<u32>, c: Acc8x8) {
    let r0 = row0 + t.y * 4u;
    let r1 = row0 + 64u + t.y * 4u;
    let q0 = col0 + t.x * 4u;
    let q1 = col0 + 64u + t.x * 4u;
    store(c_off, r0, q0, 1u, c.c00); store(c_off, r0, q1, 1u, c.c01);
    store(c_off, r0 + 1u, q0, 1u, c.c10); store(c_off, r0 + 1u, q1, 1u, c.c11);
    store(c_off, r0 + 2u, q0, 1u, c.c20); store(c_off, r0 + 2u, q1, 1u, c.c21);
    store(c_off, r0 + 3u, q0, 1u, c.c30); store(c_off, r0 + 3u, q1, 1u, c.c31);
    store(c_off, r1, q0, 1u, c.c40); store(c_off, r1, q1, 1u, c.c41);
    store(c_off, r1 + 1u, q0, 1u, c.c50); store(c_off, r1 + 1u, q1, 1u, c.c51);
    store(c_off, r1 + 2u, q0, 1u, c.c60); store(c_off, r1 + 2u, q1, 1u, c.c61);
    store(c_off, r1 + 3u, q0, 1u, c.c70); store(c_off, r1 + 3u, q1, 1u, c.c71);
}

var<workgroup> tile_a2: array<vec4<f32>, 512>; // [BK][BM2 / 4]
var<workgroup> tile_b2: array<vec4<f32>, 512>; // [BK][BN2 / 4]

@compute @workgroup_size(16, 16)
fn matmul128(@builtin(workgroup_id) wid: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let sl = slice_of(wid.z);
    let k_begin = sl.k_begin;
    let k_end = sl.k_end;
    let c_off = sl.c_off;
    let a_off = sl.a_off;
    let b_off = sl.b_off;
    let row0 = wid.y * BM2;
    let col0 = wid.x * BM2;

    var acc = Acc8x8();

    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        // 2,048 elements of each tile, eight per invocation, consecutive invocations reading
        // consecutive addresses for either transpose.
        for (var l = 0u; l < 8u; l++) {
            let e = li + l * 256u;
            let x = a_elem(e, BM2, row0, k0, k_end, a_off);
            tile_a2[x.k * 32u + x.i / 4u][x.i % 4u] = x.v;
            let y = b_elem(e, BM2, col0, k0, k_end, b_off);
            tile_b2[y.k * 32u + y.i / 4u][y.i % 4u] = y.v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a0 = tile_a2[kk * 32u + lid.y];
            let a1 = tile_a2[kk * 32u + 16u + lid.y];
            let b0 = tile_b2[kk * 32u + lid.x];
            let b1 = tile_b2[kk * 32u + 16u + lid.x];
            fma8x8(&acc, a0, a1, b0, b1);
        }
        workgroupBarrier();
    }

    store8x8(c_off, row0, col0, lid.xy, acc);
}

// `matmul128p`'s tiles, [BK][BM2 / 4] vec4s with the slots of K row k swizzled by XOR k
// (see the header; k < 16, so a slot stays in its row).
var<workgroup> tile_a3: array<vec4<f32>, 512>;
var<workgroup> tile_b3: array<vec4<f32>, 512>;

// Eight staged values of one invocation (elements li + 256·l, l = 0..7), held in registers:
// two vec4s with constant component indices, never a private array (see `matmul`).
struct Staged {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

fn stage_a(li: u32, row0: u32, k0: u32, k_end: u32, a_off: u32) -> Staged {
    return Staged(
        vec4<f32>(a_elem(li, BM2, row0, k0, k_end, a_off).v,
                  a_elem(li + 256u, BM2, row0, k0, k_end, a_off).v,
                  a_elem(li + 512u, BM2, row0, k0, k_end, a_off).v,
                  a_elem(li + 768u, BM2, row0, k0, k_end, a_off).v),
        vec4<f32>(a_elem(li + 1024u, BM2, row0, k0, k_end, a_off).v,
                  a_elem(li + 1280u, BM2, row0, k0, k_end, a_off).v,
                  a_elem(li + 1536u, BM2, row0, k0, k_end, a_off).v,
                  a_elem(li + 1792u, BM2, row0, k0, k_end, a_off).v));
}

fn stage_b(li: u32, col0: u32, k0: u32, k_end: u32, b_off: u32) -> Staged {
    return Staged(
        vec4<f32>(b_elem(li, BM2, col0, k0, k_end, b_off).v,
                  b_elem(li + 256u, BM2, col0, k0, k_end, b_off).v,
                  b_elem(li + 512u, BM2, col0, k0, k_end, b_off).v,
                  b_elem(li + 768u, BM2, col0, k0, k_end, b_off).v),
        vec4<f32>(b_elem(li + 1024u, BM2, col0, k0, k_end, b_off).v,
                  b_elem(li + 1280u, BM2, col0, k0, k_end, b_off).v,
                  b_elem(li + 1536u, BM2, col0, k0, k_end, b_off).v,
                  b_elem(li + 1792u, BM2, col0, k0, k_end, b_off).v));
}

// Element e of a BK x 128 slice of op(A) (op(B)) into its swizzled tile, laid out as `a_elem`
// (`b_elem`) reads it.
fn put3a(e: u32, v: f32) {
    var r: u32;
    var kk: u32;
    if (TRANS_A) { kk = e / BM2; r = e % BM2; } else { r = e / BK; kk = e % BK; }
    tile_a3[kk * 32u + ((r / 4u) ^ kk)][r % 4u] = v;
}

fn put3b(e: u32, v: f32) {
    var cc: u32;
    var kb: u32;
    if (TRANS_B) { cc = e / BK; kb = e % BK; } else { kb = e / BM2; cc = e % BM2; }
    tile_b3[kb * 32u + ((cc / 4u) ^ kb)][cc % 4u] = v;
}

fn put_staged(li: u32, a: Staged, b: Staged) {
    put3a(li, a.lo.x); put3a(li + 256u, a.lo.y); put3a(li + 512u, a.lo.z); put3a(li + 768u, a.lo.w);
    put3a(li + 1024u, a.hi.x); put3a(li + 1280u, a.hi.y); put3a(li + 1536u, a.hi.z); put3a(li + 1792u, a.hi.w);
    put3b(li, b.lo.x); put3b(li + 256u, b.lo.y); put3b(li + 512u, b.lo.z); put3b(li + 768u, b.lo.w);
    put3b(li + 1024u, b.hi.x); put3b(li + 1280u, b.hi.y); put3b(li + 1536u, b.hi.z); put3b(li + 1792u, b.hi.w);
}

@compute @workgroup_size(16, 16)
fn matmul128p(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let sl = slice_of(wid.z);
    let k_end = sl.k_end;
    let row0 = wid.y * BM2;
    let col0 = wid.x * BM2;
    var acc = Acc8x8();
    var sa = stage_a(li, row0, sl.k_begin, k_end, sl.a_off);
    var sb = stage_b(li, col0, sl.k_begin, k_end, sl.b_off);
    for (var k0 = sl.k_begin; k0 < k_end; k0 += BK) {
        put_staged(li, sa, sb);
        workgroupBarrier();
        // The next slice's loads go out before this slice's FMAs (uniform branch).
        let kn = k0 + BK;
        if (kn < k_end) {
            sa = stage_a(li, row0, kn, k_end, sl.a_off);
            sb = stage_b(li, col0, kn, k_end, sl.b_off);
        }
        for (var kk = 0u; kk < BK; kk++) {
            // Slot s of row kk holds s XOR kk; 16 + s XOR kk = 16 + (s XOR kk) as kk < 16.
            let ya = kk * 32u + (lid.y ^ kk);
            let xb = kk * 32u + (lid.x ^ kk);
            let a0 = tile_a3[ya];
            let a1 = tile_a3[ya + 16u];
            let b0 = tile_b3[xb];
            let b1 = tile_b3[xb + 16u];
            fma8x8(&acc, a0, a1, b0, b1);
        }
        workgroupBarrier();
    }

    store8x8(sl.c_off, row0, col0, lid.xy, acc);
}

// `matmul16`'s slice of K and its tiles, K rows padded to 17 floats: where consecutive
// invocations stage consecutive K of one row or column, their stores fall in different banks.
const BK16: u32 = 64u;
const PAD16: u32 = 17u;
var<workgroup> tile_a16: array<f32, 1088>; // [BK16][PAD16]
var<workgroup> tile_b16: array<f32, 1088>;

// Four staged values of op(A) and of op(B) of one invocation (elements li + 256·l, l = 0..3).
struct Staged16 {
    a: vec4<f32>,
    b: vec4<f32>,
}

fn stage16(li: u32, row0: u32, col0: u32, k0: u32, sl: Slice) -> Staged16 {
    let ke = sl.k_end;
    return Staged16(
        vec4<f32>(a_elem_bk(li, 16u, BK16, row0, k0, ke, sl.a_off).v,
                  a_elem_bk(li + 256u, 16u, BK16, row0, k0, ke, sl.a_off).v,
                  a_elem_bk(li + 512u, 16u, BK16, row0, k0, ke, sl.a_off).v,
                  a_elem_bk(li + 768u, 16u, BK16, row0, k0, ke, sl.a_off).v),
        vec4<f32>(b_elem_bk(li, 16u, BK16, col0, k0, ke, sl.b_off).v,
                  b_elem_bk(li + 256u, 16u, BK16, col0, k0, ke, sl.b_off).v,
                  b_elem_bk(li + 512u, 16u, BK16, col0, k0, ke, sl.b_off).v,
                  b_elem_bk(li + 768u, 16u, BK16, col0, k0, ke, sl.b_off).v));
}

// Element e of the slice into its tile, where `a_elem_bk` (`b_elem_bk`) read it from (called
// for its index arithmetic alone: with k_end 0 it reads nothing).
fn put16a(e: u32, v: f32) {
    let x = a_elem_bk(e, 16u, BK16, 0u, 0u, 0u, 0u);
    tile_a16[x.k * PAD16 + x.i] = v;
}

fn put16b(e: u32, v: f32) {
    let y = b_elem_bk(e, 16u, BK16, 0u, 0u, 0u, 0u);
    tile_b16[y.k * PAD16 + y.i] = v;
}

@compute @workgroup_size(16, 16)
fn matmul16(@builtin(workgroup_id) wid: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let sl = slice_of(wid.z);
    let row0 = wid.y * 16u;
    let col0 = wid.x * 16u;
    var acc = 0.0;
    var st = stage16(li, row0, col0, sl.k_begin, sl);
    for (var k0 = sl.k_begin; k0 < sl.k_end; k0 += BK16) {
        put16a(li, st.a.x); put16a(li + 256u, st.a.y); put16a(li + 512u, st.a.z); put16a(li + 768u, st.a.w);
        put16b(li, st.b.x); put16b(li + 256u, st.b.y); put16b(li + 512u, st.b.z); put16b(li + 768u, st.b.w);
        workgroupBarrier();
        // The next slice's loads go out before this slice's FMAs (uniform branch).
        let kn = k0 + BK16;
        if (kn < sl.k_end) {
            st = stage16(li, row0, col0, kn, sl);
        }
        for (var kk = 0u; kk < BK16; kk++) {
            acc = fma(tile_a16[kk * PAD16 + lid.y], tile_b16[kk * PAD16 + lid.x], acc);
        }
        workgroupBarrier();
    }
    if (row0 + lid.y < p.m && col0 + lid.x < p.n) {
        store_one(sl.c_off, row0 + lid.y, col0 + lid.x, acc);
    }
}

// `matmul32w`'s tiles: [BK][9] and [BK][33] vec4s (32 rows, 128 columns, each plus 4 floats).
const PAD_AW: u32 = 9u;
const PAD_BW: u32 = 33u;
var<workgroup> tile_aw: array<vec4<f32>, 144>;
var<workgroup> tile_bw: array<vec4<f32>, 528>;

@compute @workgroup_size(32, 4)
fn matmul32w(@builtin(workgroup_id) wid: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let sl = slice_of(wid.z);
    let k_end = sl.k_end;
    let row0 = wid.y * 32u;
    let col0 = wid.x * 128u;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    var c4 = vec4<f32>(0.0);
    var c5 = vec4<f32>(0.0);
    var c6 = vec4<f32>(0.0);
    var c7 = vec4<f32>(0.0);
    for (var k0 = sl.k_begin; k0 < k_end; k0 += BK) {
        // A's slice is 16 x 32 (four elements per invocation), B's 16 x 128 (sixteen).
        for (var l = 0u; l < 4u; l++) {
            let x = a_elem(li + l * 128u, 32u, row0, k0, k_end, sl.a_off);
            tile_aw[x.k * PAD_AW + x.i / 4u][x.i % 4u] = x.v;
        }
        for (var l = 0u; l < 16u; l++) {
            let y = b_elem(li + l * 128u, 128u, col0, k0, k_end, sl.b_off);
            tile_bw[y.k * PAD_BW + y.i / 4u][y.i % 4u] = y.v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a0 = tile_aw[kk * PAD_AW + 2u * lid.y];
            let a1 = tile_aw[kk * PAD_AW + 2u * lid.y + 1u];
            let bv = tile_bw[kk * PAD_BW + lid.x];
            c0 = fma(vec4<f32>(a0.x), bv, c0);
            c1 = fma(vec4<f32>(a0.y), bv, c1);
            c2 = fma(vec4<f32>(a0.z), bv, c2);
            c3 = fma(vec4<f32>(a0.w), bv, c3);
            c4 = fma(vec4<f32>(a1.x), bv, c4);
            c5 = fma(vec4<f32>(a1.y), bv, c5);
            c6 = fma(vec4<f32>(a1.z), bv, c6);
            c7 = fma(vec4<f32>(a1.w), bv, c7);
        }
        workgroupBarrier();
    }
    let r = row0 + 8u * lid.y;
    let q = col0 + 4u * lid.x;
    store(sl.c_off, r, q, 1u, c0);
    store(sl.c_off, r + 1u, q, 1u, c1);
    store(sl.c_off, r + 2u, q, 1u, c2);
    store(sl.c_off, r + 3u, q, 1u, c3);
    store(sl.c_off, r + 4u, q, 1u, c4);
    store(sl.c_off, r + 5u, q, 1u, c5);
    store(sl.c_off, r + 6u, q, 1u, c6);
    store(sl.c_off, r + 7u, q, 1u, c7);
}
