//! Products with a short side (C of at most 64 rows) without packing, rounded exactly as
//! `matrixmultiply` rounds them.
//!
//! The catalogue softmax's products have the batch (32 users) as C's rows: the logits
//! `u·qᵀ` (32 × songs over K = 128) and `∂u = g·q` (32 × 128 over the songs). matrixmultiply
//! packs both operands into panels before its kernel runs; with 32 rows each packed element of
//! the song table is used 32 times, so the packing, a strided transpose of the 184 MB table at
//! the paper's 359,687 songs, costs as much as the arithmetic: on the 2-core AVX-512 machine the
//! logits ran at 49 GFLOP/s on one thread against 205 for a 1,024³ product. These kernels read
//! the table where it lies:
//!
//! - `nt` (`nt512`, `nt256`): `op(B)` with K contiguous (`qᵀ`). The few rows of A are
//!   transposed once into a block of K × 32 (lanes over C's rows), every column of B is
//!   broadcast from memory, and each 32 × 8 block of sums is written back through a small
//!   buffer.
//! - `nn` (`nn512`, `nn256`): `op(B)` row-major (`q` in `g·q`): lanes over C's columns, A
//!   broadcast, K long.
//!
//! **Same bits as matrixmultiply.** Its kernels (AVX-512, AVX2 + FMA, NEON) form every sum as
//! one chain of fused multiply-adds from zero, k ascending, over blocks of K of 256
//! (`S_KC`); the first block's sum is stored (β = 0) or added to C (β = 1), each later one added
//! to C. With α = 1 and β ∈ {0, 1} its masked edge tiles round the same way. These kernels do
//! exactly that, so a product gives the same bits whichever path takes it (tested against
//! matrixmultiply bit for bit), and every figure measured before them stands. Other α or β,
//! CPUs without FMA (where matrixmultiply multiplies and adds apart) and other shapes go to
//! matrixmultiply.

use std::arch::x86_64::*;

/// matrixmultiply's block of K for `f32` (`archparam::S_KC`): its sums restart every 256.
const KC: usize = 256;

/// At most this many rows of C take these kernels (the batch; not measured beyond, where
/// matrixmultiply's packing serves more rows).
const MAX_ROWS: usize = 64;

/// The product `C = α·op(A)·op(B) + β·C` with matrixmultiply's `sgemm` signature (strides in
/// elements): the kernels below where they apply and are faster, else `matrixmultiply::sgemm`.
///
/// # Safety
/// As `matrixmultiply::sgemm`: `a`, `b` and `c` with their strides address `m × k`, `k × n`
/// and `m × n` valid elements, and `c` aliases neither `a` nor `b`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    let plain = alpha == 1.0
        && (beta == 0.0 || beta == 1.0)
        && csc == 1
        && k > 0
        && (1..=MAX_ROWS).contains(&m)
        && [rsa, csa, rsb, csb, rsc].iter().all(|&s| s >= 0);
    if plain {
        let (rsa, csa, rsb, csb, rsc) = (
            rsa as usize,
            csa as usize,
            rsb as usize,
            csb as usize,
            rsc as usize,
        );
        let beta_one = beta == 1.0;
        // Measured on the 2-core machine (one thread, AVX-512): `nt` beats matrixmultiply on
        // every such shape tried (2–4× on a wide C, level at 2,048 columns over K = 32); `nn`
        // only over a long K (1.3–1.7× from K = 1,209, slower at K = 128).
        if let Some((nt, nn)) = widest() {
            if rsb == 1 && n >= 256 {
                return nt((m, k, n), (a, rsa, csa), (b, csb), beta_one, (c, rsc));
            }
            if csb == 1 && k >= 512 && n >= 16 {
                return nn((m, k, n), (a, rsa, csa), (b, rsb), beta_one, (c, rsc));
            }
        }
    }
    // SAFETY: the caller's contract, which is matrixmultiply's.
    unsafe { matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
}

/// `(m, k, n)`, A with its strides, B with its one non-unit stride, β = 1, C with its row stride.
type Kernel = unsafe fn(
    (usize, usize, usize),
    (*const f32, usize, usize),
    (*const f32, usize),
    bool,
    (*mut f32, usize),
) -> ();

/// The widest `nt` and `nn` this CPU runs, if any (the features matrixmultiply tests, in its
/// order: where it would not fuse, neither may these).
fn widest() -> Option<(Kernel, Kernel)> {
    if is_x86_feature_detected!("avx512f") {
        Some((nt512, nn512))
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Some((nt256, nn256))
    } else {
        None
    }
}

/// `acc + c` where C already holds a sum, else `acc`: matrixmultiply's epilogue at α = 1.
#[inline(always)]
unsafe fn put(o: *mut f32, acc: f32, add: bool) {
    // SAFETY: the caller's pointer is in C.
    unsafe {
        if add {
            *o += acc
        } else {
            *o = acc
        }
    }
}

/// Both kernels for one vector width, as `unsafe fn`s compiled with that width's features:
/// `$v` the vector type of `$l` lanes and its intrinsics; `$ib` C rows per `nt` block (a
/// multiple of `$l`), `$j` columns per block; `$mr` A rows per `nn` block, `$nv` vectors of
/// columns.
macro_rules! kernels {
    ($feat:literal, $nt:ident, $nn:ident, $v:ty, $l:expr,
     $zero:ident, $load:ident, $loadu:ident, $store:ident, $storeu:ident, $set1:ident,
     $fma:ident, $vadd:ident, $ib:expr, $j:expr, $mr:expr, $nv:expr) => {
        /// `nt` for this width.
        ///
        /// # Safety
        /// The CPU has the features; the pointers address what [`sgemm`]'s contract says, with
        /// `op(B)[p][j] = b[p + j·csb]`.
        #[target_feature(enable = $feat)]
        unsafe fn $nt(
            (m, k, n): (usize, usize, usize),
            (a, rsa, csa): (*const f32, usize, usize),
            (b, csb): (*const f32, usize),
            beta_one: bool,
            (c, rsc): (*mut f32, usize),
        ) {
            const L: usize = $l;
            const IB: usize = $ib;
            const IV: usize = IB / L;
            const J: usize = $j;
            #[repr(align(64))]
            struct Block([[f32; IB]; KC]);
            #[repr(align(64))]
            struct Sums([[f32; IB]; J]);
            // A's rows of this block, transposed: lane i of `at[p]` is A[i0 + i][k0 + p].
            let mut at = Block([[0.0; IB]; KC]);
            let mut sums = Sums([[0.0; IB]; J]);
            for i0 in (0..m).step_by(IB) {
                let mr = IB.min(m - i0);
                for k0 in (0..k).step_by(KC) {
                    let kb = KC.min(k - k0);
                    for (p, row) in at.0[..kb].iter_mut().enumerate() {
                        for (i, x) in row.iter_mut().enumerate() {
                            // SAFETY: row i0 + i < m, column k0 + p < k of A.
                            *x = if i < mr {
                                unsafe { *a.add((i0 + i) * rsa + (k0 + p) * csa) }
                            } else {
                                0.0
                            };
                        }
                    }
                    let add = beta_one || k0 > 0;
                    for j in (0..n).step_by(J) {
                        let nj = J.min(n - j);
                        // Past C's last column the block re-reads the last one; those sums are
                        // never stored.
                        // SAFETY: column min(j + jj, n − 1) of op(B) from row k0.
                        let cols: [*const f32; J] = std::array::from_fn(|jj| unsafe {
                            b.add((j + jj.min(nj - 1)) * csb + k0)
                        });
                        // SAFETY (the loads): `at` holds kb rows of IB lanes, 64-byte aligned;
                        // each column holds kb values from k0.
                        unsafe {
                            let mut acc: [[$v; IV]; J] = [[$zero(); IV]; J];
                            for p in 0..kb {
                                let ap = at.0[p].as_ptr();
                                let av: [$v; IV] = std::array::from_fn(|h| $load(ap.add(h * L)));
                                for jj in 0..J {
                                    let x = $set1(*cols[jj].add(p));
                                    for h in 0..IV {
                                        acc[jj][h] = $fma(av[h], x, acc[jj][h]);
                                    }
                                }
                            }
                            for jj in 0..J {
                                for h in 0..IV {
                                    $store(sums.0[jj].as_mut_ptr().add(h * L), acc[jj][h]);
                                }
                            }
                        }
                        for i in 0..mr {
                            for (jj, s) in sums.0[..nj].iter().enumerate() {
                                // SAFETY: row i0 + i < m, column j + jj < n of C.
                                unsafe { put(c.add((i0 + i) * rsc + j + jj), s[i], add) };
                            }
                        }
                    }
                }
            }
        }

        /// `nn` for this width.
        ///
        /// # Safety
        /// The CPU has the features; the pointers address what [`sgemm`]'s contract says, with
        /// `op(B)[p][j] = b[p·rsb + j]`.
        #[target_feature(enable = $feat)]
        unsafe fn $nn(
            (m, k, n): (usize, usize, usize),
            (a, rsa, csa): (*const f32, usize, usize),
            (b, rsb): (*const f32, usize),
            beta_one: bool,
            (c, rsc): (*mut f32, usize),
        ) {
            const L: usize = $l;
            const MR: usize = $mr;
            // One block of `bw` vectors of columns (`$nv`, or one) from column `bj`: A's row
            // pointers `br`, rows to store `bm` from row `bi`, K from `bk` for `bn`, add to C `ba`.
            macro_rules! block {
                ($bw:expr, $br:expr, $bm:expr, $bi:expr, $bk:expr, $bn:expr, $ba:expr, $bj:expr) => {{
                    const W: usize = $bw;
                    // SAFETY: rows min(i0 + r, m − 1) of A from column k0; rows k0..k0 + kb of
                    // op(B) and columns j..j + W·L ≤ n; rows i0 + r < m of C.
                    unsafe {
                        let mut acc: [[$v; W]; MR] = [[$zero(); W]; MR];
                        let mut bp = b.add($bk * rsb + $bj);
                        for p in 0..$bn {
                            let bv: [$v; W] = std::array::from_fn(|h| $loadu(bp.add(h * L)));
                            for r in 0..MR {
                                let x = $set1(*$br[r].add(p * csa));
                                for h in 0..W {
                                    acc[r][h] = $fma(x, bv[h], acc[r][h]);
                                }
                            }
                            bp = bp.add(rsb);
                        }
                        for r in 0..$bm {
                            let o = c.add(($bi + r) * rsc + $bj);
                            for h in 0..W {
                                let v = if $ba {
                                    $vadd(acc[r][h], $loadu(o.add(h * L)))
                                } else {
                                    acc[r][h]
                                };
                                $storeu(o.add(h * L), v);
                            }
                        }
                    }
                }};
            }
            for k0 in (0..k).step_by(KC) {
                let kb = KC.min(k - k0);
                let add = beta_one || k0 > 0;
                for i0 in (0..m).step_by(MR) {
                    let mr = MR.min(m - i0);
                    // Past A's last row the block re-reads the last one; never stored.
                    // SAFETY: row min(i0 + r, m − 1) < m, column k0 < k of A.
                    let rows: [*const f32; MR] = std::array::from_fn(|r| unsafe {
                        a.add((i0 + r.min(mr - 1)) * rsa + k0 * csa)
                    });
                    let mut j = 0;
                    while j + $nv * L <= n {
                        block!($nv, rows, mr, i0, k0, kb, add, j);
                        j += $nv * L;
                    }
                    while j + L <= n {
                        block!(1, rows, mr, i0, k0, kb, add, j);
                        j += L;
                    }
                    // The last columns (fewer than a vector): one chain each, in the same order.
                    for jj in j..n {
                        for (r, row) in rows.iter().enumerate().take(mr) {
                            let mut s = 0.0f32;
                            for p in 0..kb {
                                // SAFETY: as in the blocks.
                                s = unsafe {
                                    (*row.add(p * csa)).mul_add(*b.add((k0 + p) * rsb + jj), s)
                                };
                            }
                            // SAFETY: row i0 + r < m, column jj < n of C.
                            unsafe { put(c.add((i0 + r) * rsc + jj), s, add) };
                        }
                    }
                }
            }
        }
    };
}

kernels!(
    "avx512f,fma",
    nt512,
    nn512,
    __m512,
    16,
    _mm512_setzero_ps,
    _mm512_load_ps,
    _mm512_loadu_ps,
    _mm512_store_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    32,
    8,
    4,
    4
);
kernels!(
    "avx2,fma",
    nt256,
    nn256,
    __m256,
    8,
    _mm256_setzero_ps,
    _mm256_load_ps,
    _mm256_loadu_ps,
    _mm256_store_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    16,
    6,
    4,
    2
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Uniform values in [−0.5, 0.5) from a fixed LCG.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Every kernel width this CPU runs, and the dispatcher, give matrixmultiply's bits: row
    /// and column blocks full and partial, K within one block of 256 and over several, A
    /// row-major and transposed, padded strides, β = 0 and 1 (C holding values).
    #[test]
    fn the_kernels_give_matrixmultiplys_bits() {
        let mut nts: Vec<(&str, Kernel)> = Vec::new();
        let mut nns: Vec<(&str, Kernel)> = Vec::new();
        if is_x86_feature_detected!("avx512f") {
            nts.push(("nt512", nt512));
            nns.push(("nn512", nn512));
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            nts.push(("nt256", nt256));
            nns.push(("nn256", nn256));
        }
        if nts.is_empty() {
            eprintln!(
                "skinny: this CPU has neither AVX-512 nor AVX2 + FMA; only the fallback runs"
            );
        }
        let same = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 7, 17),
            (5, 300, 77),
            (17, 600, 130),
            (32, 128, 300),
            (32, 513, 40),
            (33, 129, 1000),
            (64, 256, 64),
            (64, 520, 259),
        ] {
            for trans_a in [false, true] {
                // A [m, k] row-major with a padded row, or stored transposed ([k, m]).
                let (rsa, csa, alen) = if trans_a {
                    (1, m + 2, k * (m + 2))
                } else {
                    (k + 3, 1, m * (k + 3))
                };
                let a = values(alen, 1 + m as u32);
                // op(B) = Bᵀ for B [n, k] (K contiguous), and op(B) = B [k, n] (row-major).
                let (ldt, ldn) = (k + 1, n + 5);
                let bt = values(n * ldt, 2 + k as u32);
                let bn = values(k * ldn, 3 + n as u32);
                let ldc = n + 3;
                let c0 = values(m * ldc, 4);
                for beta in [0.0f32, 1.0] {
                    let what = format!("{m}×{k}×{n}, A transposed {trans_a}, β = {beta}");
                    for (trans_b, kernels) in [(true, &nts), (false, &nns)] {
                        let (b, rsb, csb) = if trans_b {
                            (&bt, 1, ldt)
                        } else {
                            (&bn, ldn, 1)
                        };
                        // C from a GEMM with matrixmultiply's signature.
                        let product = |gemm: super::super::Gemm<f32>| {
                            let mut c = c0.clone();
                            // SAFETY: every slice holds what its strides address.
                            unsafe {
                                gemm(
                                    m,
                                    k,
                                    n,
                                    1.0,
                                    a.as_ptr(),
                                    rsa as isize,
                                    csa as isize,
                                    b.as_ptr(),
                                    rsb as isize,
                                    csb as isize,
                                    beta,
                                    c.as_mut_ptr(),
                                    ldc as isize,
                                    1,
                                )
                            };
                            c
                        };
                        let want = product(matrixmultiply::sgemm);
                        let got = product(sgemm);
                        assert!(
                            same(&got, &want),
                            "sgemm, op(B) transposed {trans_b}, {what}"
                        );
                        for &(name, f) in kernels.iter() {
                            let mut got = c0.clone();
                            let stride = if trans_b { csb } else { rsb };
                            // SAFETY: the CPU has the kernel's features; the slices hold what
                            // the strides address.
                            unsafe {
                                f(
                                    (m, k, n),
                                    (a.as_ptr(), rsa, csa),
                                    (b.as_ptr(), stride),
                                    beta == 1.0,
                                    (got.as_mut_ptr(), ldc),
                                )
                            };
                            assert!(same(&got, &want), "{name}, {what}");
                        }
                    }
                }
            }
        }
    }
}
