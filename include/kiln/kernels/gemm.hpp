// kiln/kernels/gemm.hpp — single-precision GEMM with a fused epilogue.
//
//   C(i,j) = epilogue( sum_k A(i,k) * B(k,j) ),   C row-major, leading dimension ldc.
//
// GotoBLAS/BLIS structure: the K x N operand B is packed into NR-column
// micro-panels and A into MR-row micro-panels; KC/MC/NC blocking keeps a B
// micro-panel in L1, the packed A block in L2 and the packed B block in L3. The
// register-blocked micro-kernel (written with xsimd, broadcast-FMA form) keeps an
// MR x NR tile of C in registers for a whole KC block; on the last K block it
// adds the bias and clamps in registers before the store. Earlier K blocks
// accumulate into C.
//
// Batch-1 / small M (M < MR), typical of GEMV in a small MLP, skips A packing:
// a row kernel walks several NR-wide panels of B at once (splitting K when there
// are too few panels to hide FMA latency) and reads A where it lies; M = 1 with
// a prepacked B has its own kernels (kernels/gemm_m1.hpp).
//
// No heap, no exceptions, no iostream: all scratch comes from the caller's
// workspace (gemm_workspace_size floats, 64-byte aligned).
//
// Instantiations are bounded: one MR x NR micro-kernel per build configuration
// (edge tiles go through the same kernel and a partial store) and five small
// row kernels for M < MR; nothing is templated on M, N or K.
#pragma once

#include <cstddef>

#include "../core/config.hpp"
#include "simd.hpp"

#if KILN_SIMD && (defined(__SSE2__) || defined(_M_X64))
#include <xmmintrin.h>
#define KILN_GEMM_SSE 1
#else
#define KILN_GEMM_SSE 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define KILN_GEMM_INLINE inline __attribute__((always_inline))
#define KILN_GEMM_UNROLL _Pragma("GCC unroll 32")
#define KILN_GEMM_RESTRICT __restrict__
#define KILN_GEMM_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)
#else
#define KILN_GEMM_INLINE inline
#define KILN_GEMM_UNROLL
#define KILN_GEMM_RESTRICT
#define KILN_GEMM_PREFETCH_W(p) ((void)0)
#endif

namespace kiln::kernels {

/// A strided view of a matrix: X(r,c) = data[r*row_stride + c*col_stride].
struct MatrixRef {
  const float* data = nullptr;
  index_t row_stride = 0;
  index_t col_stride = 1;
};

struct GemmEpilogue {
  /// Length N: C(i,j) += bias[j], applied in registers before the store.
  const float* bias = nullptr;
  /// Then C = clamp(C, lo, hi) in registers; NaN stays NaN (relu = clamp 0..inf).
  bool clamp = false;
  float lo = 0.f, hi = 0.f;
  /// General epilogue: called once per finished block of C (bias/clamp already
  /// applied), while the block is still in cache; blocks are disjoint and cover
  /// C exactly; block = rows [i0,i0+m) x cols [j0,j0+n), c points at C(i0,j0).
  /// Blocks are at most MC x 8*NR (144 x 128 on AVX2) when M >= MR; all M rows
  /// by up to NC columns when M < MR; the whole of C when K == 0. Called in the
  /// caller's thread, in increasing block order, after the block's last K panel.
  void (*tail)(void* ctx, index_t i0, index_t j0, index_t m, index_t n, float* c,
               index_t ldc) = nullptr;
  void* ctx = nullptr;
};

namespace gemm_detail {

// ---------------------------------------------------------------------------
// Vector abstraction: xsimd batch, or a one-lane scalar twin with the same
// interface so the micro-kernel is written once.
#if KILN_SIMD
using vec = fbatch;
KILN_GEMM_INLINE vec vload(const float* p) { return vec::load_unaligned(p); }
KILN_GEMM_INLINE void vstore(float* p, const vec& x) { x.store_unaligned(p); }
KILN_GEMM_INLINE vec vsplat(float x) { return vec(x); }
KILN_GEMM_INLINE vec vfma(const vec& a, const vec& b, const vec& c) { return xsimd::fma(a, b, c); }
KILN_GEMM_INLINE vec vadd(const vec& a, const vec& b) { return a + b; }
// NaN passes through on every ISA. x86's max/min return their second operand when either is
// NaN, so max(lo, x) then min(hi, .) is the select form below bit for bit (-0 included) in two
// instructions instead of four; NEON's max/min differ on NaN and -0, so elsewhere the select.
KILN_GEMM_INLINE vec vclamp(const vec& x, const vec& lo, const vec& hi) {
#if KILN_GEMM_SSE
  return xsimd::min(hi, xsimd::max(lo, x));
#else
  return xsimd::select(x < lo, lo, xsimd::select(x > hi, hi, x));
#endif
}
#else
struct vec {
  float v;
};
KILN_GEMM_INLINE vec vload(const float* p) { return vec{*p}; }
KILN_GEMM_INLINE void vstore(float* p, const vec& x) { *p = x.v; }
KILN_GEMM_INLINE vec vsplat(float x) { return vec{x}; }
KILN_GEMM_INLINE vec vfma(const vec& a, const vec& b, const vec& c) { return vec{a.v * b.v + c.v}; }
KILN_GEMM_INLINE vec vadd(const vec& a, const vec& b) { return vec{a.v + b.v}; }
KILN_GEMM_INLINE vec vclamp(const vec& x, const vec& lo, const vec& hi) {
  return vec{x.v < lo.v ? lo.v : (x.v > hi.v ? hi.v : x.v)};
}
#endif

KILN_GEMM_INLINE float sclamp(float x, float lo, float hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

// ---------------------------------------------------------------------------
// Register tile, derived from the register file: MR rows x NV vectors of C in
// accumulators, plus NV registers for the B row and one for the A broadcast.
//   AVX2 / SSE2 / armv7 NEON (16 regs): 6 x 2 vectors -> 12 accumulators (AVX2 6x16, SSE 6x8)
//   NEON64 (32 regs, 4 lanes):          8 x 3 vectors -> 24 accumulators (8x12)
//   AVX-512 (32 regs, 16 lanes):       14 x 2 vectors -> 28 accumulators (14x32)
//   scalar (KILN_SIMD == 0):            4 x 4 floats  -> 16 accumulators
#if KILN_SIMD
inline constexpr int kNV = (kVectorRegs >= 32 && kLanes <= 4) ? 3 : 2;
inline constexpr int kMR = kNV == 3 ? 8 : (kVectorRegs - kNV - 1) / kNV;
#else
inline constexpr int kNV = 4;
inline constexpr int kMR = 4;
#endif
inline constexpr int kNR = kNV * kLanes;

// Cache blocking. Constants from typical caches (L1d 32 KiB, L2 512 KiB):
//   KC: a KC x NR micro-panel of B (16 KiB for 256 x 16) stays in L1 with the
//       MR x KC micro-panel of A that streams past it;
//   MC: the packed MC x KC block of A (144 KiB) stays in L2;
//   NC: the packed KC x NC block of B (up to 4 MiB) lives in L3.
// The scalar twin targets microcontrollers and keeps the workspace small.
// TODO(cache-size issue): derive KC/MC/NC from the detected cache sizes.
#if KILN_SIMD
inline constexpr index_t kKC = 256;
inline constexpr index_t kMC = 144 / kMR * kMR;
inline constexpr index_t kNC = 4096 / kNR * kNR;
#else
inline constexpr index_t kKC = 128;
inline constexpr index_t kMC = 64 / kMR * kMR;
inline constexpr index_t kNC = 256 / kNR * kNR;
#endif
/// Width of the blocks handed to GemmEpilogue::tail (MC x kTailN, ~72 KiB: in L2).
inline constexpr index_t kTailN = (kNC < 8 * kNR) ? kNC : 8 * kNR;

static_assert(kMR >= 1 && kNV >= 1, "bad register tile");
static_assert(kMC % kMR == 0 && kNC % kNR == 0 && kTailN % kNR == 0, "bad blocking");

enum : int { kAccum = 1, kBias = 2, kClamp = 4 };

/// gemm reads a row-major A in place (no packing) when N needs at most this many B panels.
inline constexpr index_t kNoPackPanels = 4;

constexpr index_t min_i(index_t a, index_t b) { return a < b ? a : b; }
constexpr index_t round_up(index_t a, index_t b) { return (a + b - 1) / b * b; }

// ---------------------------------------------------------------------------
// Epilogue of one row of a tile: acc (+ C if accumulating) (+ bias) (clamp), then
// store n <= NV*kLanes columns.
template <int NV>
KILN_GEMM_INLINE void finish_row(vec* acc, float* c, index_t n, int flags, const float* bias,
                                 float lo, float hi) {
  if (n == NV * kLanes) {
    if (flags & kAccum) {
      KILN_GEMM_UNROLL
      for (int v = 0; v < NV; ++v) acc[v] = vadd(acc[v], vload(c + v * kLanes));
    }
    if (flags & kBias) {
      KILN_GEMM_UNROLL
      for (int v = 0; v < NV; ++v) acc[v] = vadd(acc[v], vload(bias + v * kLanes));
    }
    if (flags & kClamp) {
      const vec vlo = vsplat(lo), vhi = vsplat(hi);
      KILN_GEMM_UNROLL
      for (int v = 0; v < NV; ++v) acc[v] = vclamp(acc[v], vlo, vhi);
    }
    KILN_GEMM_UNROLL
    for (int v = 0; v < NV; ++v) vstore(c + v * kLanes, acc[v]);
  } else {
    float t[NV * kLanes];
    KILN_GEMM_UNROLL
    for (int v = 0; v < NV; ++v) vstore(t + v * kLanes, acc[v]);
    for (index_t j = 0; j < n; ++j) {
      float x = t[j];
      if (flags & kAccum) x += c[j];
      if (flags & kBias) x += bias[j];
      if (flags & kClamp) x = sclamp(x, lo, hi);
      c[j] = x;
    }
  }
}

// ---------------------------------------------------------------------------
// The micro-kernel: C[0:m, 0:n] (op)= A_panel (m x kc) * B_panel (kc x NR, packed [k][NR]);
// m <= MR, n <= NR. A is either packed (kPackedA: [k][MR], zero-padded rows) or read where it
// lies, row i at a + i*lda with unit stride along k (rows past m re-read row m - 1, whose results
// are never stored). Full tiles store with vector ops; edge tiles go through finish_row's partial
// store, never writing outside C.
template <bool kPackedA>
inline void micro_kernel(index_t kc, const float* KILN_GEMM_RESTRICT a, index_t lda,
                         const float* KILN_GEMM_RESTRICT b, float* KILN_GEMM_RESTRICT c,
                         index_t ldc, index_t m, index_t n, int flags, const float* bias,
                         float lo, float hi) {
  vec acc[kMR][kNV];
  KILN_GEMM_UNROLL
  for (int i = 0; i < kMR; ++i) {
    KILN_GEMM_UNROLL
    for (int v = 0; v < kNV; ++v) acc[i][v] = vsplat(0.f);
  }
  if (flags & kAccum) {
    KILN_GEMM_UNROLL
    for (int i = 0; i < kMR; ++i) KILN_GEMM_PREFETCH_W(c + (i < m ? i : 0) * ldc);
  }
  const float* ar[kMR];  // unpacked A: one pointer per row
  if constexpr (!kPackedA) {
    KILN_GEMM_UNROLL
    for (int i = 0; i < kMR; ++i) ar[i] = a + (i < m ? i : m - 1) * lda;
  }
  for (index_t k = 0; k < kc; ++k) {
    vec bv[kNV];
    KILN_GEMM_UNROLL
    for (int v = 0; v < kNV; ++v) bv[v] = vload(b + v * kLanes);
    KILN_GEMM_UNROLL
    for (int i = 0; i < kMR; ++i) {
      const vec av = vsplat(kPackedA ? a[i] : ar[i][k]);
      KILN_GEMM_UNROLL
      for (int v = 0; v < kNV; ++v) acc[i][v] = vfma(av, bv[v], acc[i][v]);
    }
    if constexpr (kPackedA) a += kMR;
    b += kNR;
  }
  KILN_GEMM_UNROLL
  for (int i = 0; i < kMR; ++i)
    if (i < m) finish_row<kNV>(acc[i], c + i * ldc, n, flags, bias, lo, hi);
}

// ---------------------------------------------------------------------------
// Small-M row kernel: R rows of A (read in place, any strides) times P packed
// B panels (panel p at b + p*bps, layout [k][NR]); K split S ways so that
// R*P*NV*S independent accumulators hide the FMA latency. n = valid columns
// of the P panels (<= P*NR). Instantiated for (R,P,S) = (1,4,1) (1,2,3) (1,1,4)
// (2,2,1) (2,1,2) only: 8-12 accumulators on 16-register SIMD. The loop is
// load-bound for M = 1 (every B element is used once), so a 64-byte aligned
// packed B matters more here than in the blocked path.
template <int R, int P, int S>
inline void rows_kernel(index_t kc, const float* a, index_t ars, index_t acs, const float* b,
                        index_t bps, float* c, index_t ldc, index_t n, int flags,
                        const float* bias, float lo, float hi) {
  vec acc[S][R][P][kNV];
  KILN_GEMM_UNROLL
  for (int s = 0; s < S; ++s) {
    KILN_GEMM_UNROLL
    for (int r = 0; r < R; ++r) {
      KILN_GEMM_UNROLL
      for (int p = 0; p < P; ++p) {
        KILN_GEMM_UNROLL
        for (int v = 0; v < kNV; ++v) acc[s][r][p][v] = vsplat(0.f);
      }
    }
  }
  const float* bp[P];
  KILN_GEMM_UNROLL
  for (int p = 0; p < P; ++p) bp[p] = b + p * bps;
  index_t k = 0;
  for (; k + S <= kc; k += S) {
    KILN_GEMM_UNROLL
    for (int s = 0; s < S; ++s) {
      KILN_GEMM_UNROLL
      for (int r = 0; r < R; ++r) {
        const vec av = vsplat(a[r * ars + s * acs]);
        KILN_GEMM_UNROLL
        for (int p = 0; p < P; ++p) {
          KILN_GEMM_UNROLL
          for (int v = 0; v < kNV; ++v)
            acc[s][r][p][v] = vfma(av, vload(bp[p] + s * kNR + v * kLanes), acc[s][r][p][v]);
        }
      }
    }
    a += S * acs;
    KILN_GEMM_UNROLL
    for (int p = 0; p < P; ++p) bp[p] += S * kNR;
  }
  if constexpr (S > 1) {
    for (; k < kc; ++k) {
      KILN_GEMM_UNROLL
      for (int r = 0; r < R; ++r) {
        const vec av = vsplat(a[r * ars]);
        KILN_GEMM_UNROLL
        for (int p = 0; p < P; ++p) {
          KILN_GEMM_UNROLL
          for (int v = 0; v < kNV; ++v)
            acc[0][r][p][v] = vfma(av, vload(bp[p] + v * kLanes), acc[0][r][p][v]);
        }
      }
      a += acs;
      KILN_GEMM_UNROLL
      for (int p = 0; p < P; ++p) bp[p] += kNR;
    }
    KILN_GEMM_UNROLL
    for (int s = 1; s < S; ++s) {
      KILN_GEMM_UNROLL
      for (int r = 0; r < R; ++r) {
        KILN_GEMM_UNROLL
        for (int p = 0; p < P; ++p) {
          KILN_GEMM_UNROLL
          for (int v = 0; v < kNV; ++v) acc[0][r][p][v] = vadd(acc[0][r][p][v], acc[s][r][p][v]);
        }
      }
    }
  }
  KILN_GEMM_UNROLL
  for (int r = 0; r < R; ++r) {
    KILN_GEMM_UNROLL
    for (int p = 0; p < P; ++p) {
      const index_t j = p * kNR;
      if (j < n)
        finish_row<kNV>(acc[0][r][p], c + r * ldc + j, min_i(kNR, n - j), flags,
                        bias ? bias + j : nullptr, lo, hi);
    }
  }
}

// R rows (R = 1 or 2) over all panels covering n columns.
template <int R>
inline void rows_block(index_t kc, const float* a, index_t ars, index_t acs, const float* b,
                       index_t bps, float* c, index_t ldc, index_t n, int flags,
                       const float* bias, float lo, float hi) {
  constexpr int P0 = R == 1 ? 4 : 2;
  const index_t np = (n + kNR - 1) / kNR;
  index_t p = 0;
  auto at = [&](index_t q, index_t width) {
    struct Args {
      const float* b;
      float* c;
      index_t n;
      const float* bias;
    };
    const index_t j = q * kNR;
    return Args{b + q * bps, c + j, min_i(width * kNR, n - j), bias ? bias + j : nullptr};
  };
  for (; p + P0 <= np; p += P0) {
    const auto g = at(p, P0);
    rows_kernel<R, P0, 1>(kc, a, ars, acs, g.b, bps, g.c, ldc, g.n, flags, g.bias, lo, hi);
  }
  if constexpr (R == 1) {
    if (np - p >= 2) {
      const auto g = at(p, 2);
      rows_kernel<1, 2, 3>(kc, a, ars, acs, g.b, bps, g.c, ldc, g.n, flags, g.bias, lo, hi);
      p += 2;
    }
    if (np - p == 1) {
      const auto g = at(p, 1);
      rows_kernel<1, 1, 4>(kc, a, ars, acs, g.b, bps, g.c, ldc, g.n, flags, g.bias, lo, hi);
    }
  } else {
    if (np - p == 1) {
      const auto g = at(p, 1);
      rows_kernel<2, 1, 2>(kc, a, ars, acs, g.b, bps, g.c, ldc, g.n, flags, g.bias, lo, hi);
    }
  }
}

// m (< MR) rows of A at a, kc columns; B packed panels from b with panel stride bps.
inline void small_m(index_t m, index_t kc, const float* a, index_t ars, index_t acs,
                    const float* b, index_t bps, float* c, index_t ldc, index_t n, int flags,
                    const float* bias, float lo, float hi) {
  index_t r = 0;
  for (; r + 2 <= m; r += 2)
    rows_block<2>(kc, a + r * ars, ars, acs, b, bps, c + r * ldc, ldc, n, flags, bias, lo, hi);
  if (r < m)
    rows_block<1>(kc, a + r * ars, ars, acs, b, bps, c + r * ldc, ldc, n, flags, bias, lo, hi);
}

// ---------------------------------------------------------------------------
// N == 1 (a linear layer with one output): one dot product per row of A (row-major), kLanes
// rows at a time whose sums are reduced together (haddp), the bias and clamp on the vector of
// results. The micro-kernel spent a whole NR-wide tile, and a scalar partial store per row, on
// the one column. w: the K weights, contiguous. Sums in another order than the micro-kernel.
#if KILN_SIMD
KILN_GEMM_INLINE vec vsum_lanes(const vec (&rows)[kLanes]) { return xsimd::haddp(rows); }
#else
KILN_GEMM_INLINE vec vsum_lanes(const vec (&rows)[kLanes]) { return rows[0]; }
#endif

inline void gemv_n1(index_t M, index_t K, MatrixRef A, const float* w, float* C, index_t ldc,
                    const GemmEpilogue& ep) {
  constexpr int L = kLanes;
  const index_t kv = K / L * L;
  const vec vb = vsplat(ep.bias ? ep.bias[0] : 0.f), vlo = vsplat(ep.lo), vhi = vsplat(ep.hi);
  for (index_t i0 = 0; i0 < M; i0 += L) {
    const index_t m = min_i(L, M - i0);
    const float* ar[L];  // rows past m re-read row m - 1; their sums are dropped
    KILN_GEMM_UNROLL
    for (int r = 0; r < L; ++r) ar[r] = A.data + (i0 + (r < m ? r : m - 1)) * A.row_stride;
    vec acc[L];
    KILN_GEMM_UNROLL
    for (int r = 0; r < L; ++r) acc[r] = vsplat(0.f);
    for (index_t k = 0; k < kv; k += L) {
      const vec wv = vload(w + k);
      KILN_GEMM_UNROLL
      for (int r = 0; r < L; ++r) acc[r] = vfma(vload(ar[r] + k), wv, acc[r]);
    }
    vec sum = vsum_lanes(acc);
    if (m == L && kv == K && ldc == 1) {
      sum = vadd(sum, vb);
      vstore(C + i0, ep.clamp ? vclamp(sum, vlo, vhi) : sum);
      continue;
    }
    float t[L];
    vstore(t, sum);
    for (index_t r = 0; r < m; ++r) {
      float x = t[r];
      for (index_t k = kv; k < K; ++k) x += ar[r][k] * w[k];
      if (ep.bias) x += ep.bias[0];
      if (ep.clamp) x = sclamp(x, ep.lo, ep.hi);
      C[(i0 + r) * ldc] = x;
    }
  }
  if (!ep.tail) return;
  for (index_t i0 = 0; i0 < M; i0 += kMC) ep.tail(ep.ctx, i0, 0, min_i(kMC, M - i0), 1, C + i0 * ldc, ldc);
}

// gemv_n1 with the K <= KC weights gathered from B or from its packed panel (column 0). Not
// inlined into gemm: its 1 KiB buffer would make every gemm call set up the larger frame.
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
inline void gemv_n1_gather(index_t M, index_t K, MatrixRef A, MatrixRef B, const float* packed_b, float* C,
                           index_t ldc, const GemmEpilogue& ep) {
  alignas(kAlignment) float w[kKC];
  for (index_t k = 0; k < K; ++k) w[k] = packed_b ? packed_b[k * kNR] : B.data[k * B.row_stride];
  gemv_n1(M, K, A, w, C, ldc, ep);
}

// ---------------------------------------------------------------------------
// Packing.

// Transposing copy: dst[k*W + i] = src[i*ss + k] for i < W, k < kc (W source
// rows, each contiguous in k). Packs row-major A (W = MR) and a column-contiguous
// B (W = NR, a linear layer's weight). On x86 it moves 4x4 blocks through SSE
// registers.
template <int W>
inline void pack_transposed(const float* src, index_t ss, index_t kc, float* dst) {
#if KILN_GEMM_SSE
  constexpr int W4 = W / 4 * 4, W2 = W / 2 * 2;
  const index_t k4 = kc / 4 * 4;
  for (index_t k = 0; k < k4; k += 4) {
    float* d = dst + k * W;
    KILN_GEMM_UNROLL
    for (int i = 0; i < W4; i += 4) {
      __m128 r0 = _mm_loadu_ps(src + (i + 0) * ss + k);
      __m128 r1 = _mm_loadu_ps(src + (i + 1) * ss + k);
      __m128 r2 = _mm_loadu_ps(src + (i + 2) * ss + k);
      __m128 r3 = _mm_loadu_ps(src + (i + 3) * ss + k);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(d + i, r0);
      _mm_storeu_ps(d + W + i, r1);
      _mm_storeu_ps(d + 2 * W + i, r2);
      _mm_storeu_ps(d + 3 * W + i, r3);
    }
    if constexpr (W2 > W4) {
      const __m128 r0 = _mm_loadu_ps(src + W4 * ss + k);
      const __m128 r1 = _mm_loadu_ps(src + (W4 + 1) * ss + k);
      const __m128 lo = _mm_unpacklo_ps(r0, r1);  // (r0,r1) at k, k+1
      const __m128 hi = _mm_unpackhi_ps(r0, r1);  // (r0,r1) at k+2, k+3
      _mm_storel_pi(reinterpret_cast<__m64*>(d + W4), lo);
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + W + W4), lo);
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 2 * W + W4), hi);
      _mm_storeh_pi(reinterpret_cast<__m64*>(d + 3 * W + W4), hi);
    }
    if constexpr (W > W2) {
      for (int t = 0; t < 4; ++t) d[t * W + W2] = src[W2 * ss + k + t];
    }
  }
#else
  const index_t k4 = 0;
#endif
  for (index_t k = k4; k < kc; ++k) {
    KILN_GEMM_UNROLL
    for (int i = 0; i < W; ++i) dst[k * W + i] = src[i * ss + k];
  }
}

// B rows [0,kc) x cols [0,nc) of the view (data already offset to the block
// origin) into NR-column panels: panel q at dst + q*pstride, dst[k*NR + j],
// zero-padded to a multiple of NR columns.
inline void pack_b_panels(index_t kc, index_t nc, MatrixRef B, float* dst, index_t pstride) {
  const index_t rs = B.row_stride, cs = B.col_stride;
  for (index_t j0 = 0; j0 < nc; j0 += kNR, dst += pstride) {
    const index_t nr = min_i(kNR, nc - j0);
    const float* src = B.data + j0 * cs;
    if (nr == kNR && cs == 1) {
      for (index_t k = 0; k < kc; ++k) {
        KILN_GEMM_UNROLL
        for (int v = 0; v < kNV; ++v) vstore(dst + k * kNR + v * kLanes, vload(src + k * rs + v * kLanes));
      }
    } else if (nr == kNR && rs == 1) {
      // Column j is contiguous in k (a linear layer's weight W[out,in]).
      pack_transposed<kNR>(src, cs, kc, dst);
    } else {
      for (index_t k = 0; k < kc; ++k) {
        for (index_t j = 0; j < nr; ++j) dst[k * kNR + j] = src[k * rs + j * cs];
        for (index_t j = nr; j < kNR; ++j) dst[k * kNR + j] = 0.f;
      }
    }
  }
}

// A rows [0,mc) x cols [0,kc) of the view into MR-row panels: panel q at
// dst + q*MR*kc, dst[k*MR + i], zero-padded to a multiple of MR rows.
inline void pack_a_panels(index_t mc, index_t kc, MatrixRef A, float* dst) {
  const index_t rs = A.row_stride, cs = A.col_stride;
  for (index_t i0 = 0; i0 < mc; i0 += kMR, dst += kMR * kc) {
    const index_t mr = min_i(kMR, mc - i0);
    const float* src = A.data + i0 * rs;
    if (mr == kMR && cs == 1) {
      pack_transposed<kMR>(src, rs, kc, dst);
    } else if (mr == kMR && rs == 1) {
      for (index_t k = 0; k < kc; ++k) {
        KILN_GEMM_UNROLL
        for (int i = 0; i < kMR; ++i) dst[k * kMR + i] = src[k * cs + i];
      }
    } else {
      for (index_t k = 0; k < kc; ++k) {
        for (index_t i = 0; i < mr; ++i) dst[k * kMR + i] = src[i * rs + k * cs];
        for (index_t i = mr; i < kMR; ++i) dst[k * kMR + i] = 0.f;
      }
    }
  }
}

constexpr index_t ws_a_floats(index_t M, index_t K) {
  if (M < kMR) return 0;  // small M reads A in place
  return round_up(min_i(M, kMC), kMR) * min_i(K, kKC);
}
constexpr index_t ws_b_floats(index_t N, index_t K) {
  return round_up(min_i(N, kNC), kNR) * min_i(K, kKC);
}
// Floats from the workspace start to the packed-B block (keeps it 64-byte aligned).
constexpr index_t ws_b_offset(index_t M, index_t K) {
  return round_up(ws_a_floats(M, K), static_cast<index_t>(kAlignment / sizeof(float)));
}

// K == 0: C = epilogue(0).
inline void gemm_k0(index_t M, index_t N, float* C, index_t ldc, const GemmEpilogue& ep) {
  for (index_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    for (index_t j = 0; j < N; ++j) {
      float x = ep.bias ? 0.f + ep.bias[j] : 0.f;
      if (ep.clamp) x = sclamp(x, ep.lo, ep.hi);
      c[j] = x;
    }
  }
  if (ep.tail) ep.tail(ep.ctx, 0, 0, M, N, C, ldc);
}

}  // namespace gemm_detail
}  // namespace kiln::kernels

#include "gemm_m1.hpp"  // M = 1 against prepacked panels (uses the vector layer above)

namespace kiln::kernels {

// ---------------------------------------------------------------------------
// Public API.

/// Floats needed by pack_b(K, N, ...): ceil(N/NR) panels of K x NR.
constexpr std::size_t packed_b_size(index_t K, index_t N) {
  using namespace gemm_detail;
  if (K <= 0 || N <= 0) return 0;
  return static_cast<std::size_t>(round_up(N, kNR) * K);
}

/// Packs B (K x N, any strides) once, for repeated gemm calls with the same B
/// (a linear layer's weight W[out,in] is B with row_stride 1, col_stride in).
/// Layout: ceil(N/NR) panels of K x NR, row k of panel q at packed + q*K*NR + k*NR.
inline void pack_b(index_t K, index_t N, MatrixRef B, float* packed) {
  if (K <= 0 || N <= 0) return;
  gemm_detail::pack_b_panels(K, N, B, packed, K * gemm_detail::kNR);
}

/// Scratch floats gemm(M, N, K, ...) needs (packed A block and, unless B is
/// prepacked, packed B block). Bounded by MC*KC + KC*NC whatever the sizes.
constexpr std::size_t gemm_workspace_size(index_t M, index_t N, index_t K, bool b_prepacked) {
  using namespace gemm_detail;
  if (M <= 0 || N <= 0 || K <= 0) return 0;
  if (b_prepacked) return static_cast<std::size_t>(ws_a_floats(M, K));
  return static_cast<std::size_t>(ws_b_offset(M, K) + ws_b_floats(N, K));
}

/// C(i,j) = epilogue( sum_k A(i,k) * B(k,j) ), C row-major with leading dimension ldc.
/// If packed_b != nullptr it holds pack_b(K,N,B) and B is ignored (any alignment
/// works; 64-byte aligned is fastest). workspace: 64-byte aligned,
/// gemm_workspace_size floats (may be nullptr when that is 0, e.g. M < MR with
/// prepacked B). K == 0 gives epilogue(0). M or N == 0 does nothing. C must not
/// alias A or B.
/// C(i,j) = epilogue( sum_k A(i,k) * B(k,j) ) with B read where it lies, no packing and no
/// workspace: one dot product per element of C, for a B with unit stride along K (a linear
/// layer's weight W[N, K] read as B = W^T). The firmware path for weights in flash (the static
/// runner): nothing is copied to RAM. Four partial sums over K (sums in another order than
/// gemm()). The tail sees blocks of at most MC x kTailN.
inline void gemm_direct(index_t M, index_t N, index_t K, MatrixRef A, MatrixRef B, float* C, index_t ldc,
                        const GemmEpilogue& ep) {
  using namespace gemm_detail;
  for (index_t i = 0; i < M; ++i) {
    const float* a = A.data + i * A.row_stride;
    const index_t as = A.col_stride;
    for (index_t j = 0; j < N; ++j) {
      const float* b = B.data + j * B.col_stride;  // B.row_stride == 1
      float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
      const float* ap = a;
      index_t k = K;
      if (as == 1) {  // a dense row of A: both operands contiguous
        for (; k >= 4; k -= 4, ap += 4, b += 4) {
          s0 += ap[0] * b[0];
          s1 += ap[1] * b[1];
          s2 += ap[2] * b[2];
          s3 += ap[3] * b[3];
        }
      }
      for (; k >= 4; k -= 4, ap += 4 * as, b += 4) {
        s0 += ap[0] * b[0];
        s1 += ap[as] * b[1];
        s2 += ap[2 * as] * b[2];
        s3 += ap[3 * as] * b[3];
      }
      for (; k > 0; --k, ap += as, ++b) s0 += *ap * *b;
      float x = (s0 + s1) + (s2 + s3);
      if (ep.bias) x += ep.bias[j];
      if (ep.clamp) x = sclamp(x, ep.lo, ep.hi);
      C[i * ldc + j] = x;
    }
  }
  if (!ep.tail) return;
  for (index_t i0 = 0; i0 < M; i0 += kMC)
    for (index_t j0 = 0; j0 < N; j0 += kTailN)
      ep.tail(ep.ctx, i0, j0, min_i(kMC, M - i0), min_i(kTailN, N - j0), C + i0 * ldc + j0, ldc);
}

inline void gemm(index_t M, index_t N, index_t K, MatrixRef A, MatrixRef B,
                 const float* packed_b, float* C, index_t ldc, const GemmEpilogue& ep,
                 float* workspace) {
  using namespace gemm_detail;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return gemm_k0(M, N, C, ldc, ep);
  const int last_flags = (ep.bias ? kBias : 0) | (ep.clamp ? kClamp : 0);

  // One output column, enough rows for whole vectors of them: dot products (gemv_n1).
  if (N == 1 && M >= kMR && K <= kKC && A.col_stride == 1) return gemv_n1_gather(M, K, A, B, packed_b, C, ldc, ep);

  // Batch 1 with prepacked B: one row against the panels, bias and clamp in registers.
  if (M == 1 && packed_b) {
    gemv_m1_packed(K, N, A.data, A.col_stride, packed_b, C, RowEpilogue{ep.bias, ep.clamp, ep.lo, ep.hi});
    if (ep.tail) ep.tail(ep.ctx, 0, 0, M, N, C, ldc);
    return;
  }

  // Small M with prepacked B: no packing at all, one pass over K.
  if (M < kMR && packed_b) {
    small_m(M, K, A.data, A.row_stride, A.col_stride, packed_b, K * kNR, C, ldc, N, last_flags,
            ep.bias, ep.lo, ep.hi);
    if (ep.tail) ep.tail(ep.ctx, 0, 0, M, N, C, ldc);
    return;
  }

  // A is packed so the micro-kernel streams one contiguous panel, which pays off when many B
  // panels reuse it; a row-major A feeding few panels (a small MLP's layers, a 1x1 conv to 64
  // channels) is read in place: there packing took ~10 % of the GEMM's instructions (callgrind).
  const bool pack_a = !(A.col_stride == 1 && N <= kNoPackPanels * kNR);
  float* wa = workspace;
  float* wb = workspace + ws_b_offset(M, K);
  for (index_t jc = 0; jc < N; jc += kNC) {
    const index_t nc = min_i(kNC, N - jc);
    const float* bias = ep.bias ? ep.bias + jc : nullptr;
    for (index_t pc = 0; pc < K; pc += kKC) {
      const index_t kc = min_i(kKC, K - pc);
      const bool last = pc + kc == K;
      const int flags = (pc > 0 ? kAccum : 0) | (last ? last_flags : 0);
      const float* bb;
      index_t bps;
      if (packed_b) {
        bb = packed_b + jc * K + pc * kNR;  // panel jc/NR, row pc
        bps = K * kNR;
      } else {
        MatrixRef Bblk{B.data + pc * B.row_stride + jc * B.col_stride, B.row_stride, B.col_stride};
        pack_b_panels(kc, nc, Bblk, wb, kc * kNR);
        bb = wb;
        bps = kc * kNR;
      }
      if (M < kMR) {
        small_m(M, kc, A.data + pc * A.col_stride, A.row_stride, A.col_stride, bb, bps,
                C + jc, ldc, nc, flags, bias, ep.lo, ep.hi);
        if (last && ep.tail) ep.tail(ep.ctx, 0, jc, M, nc, C + jc, ldc);
        continue;
      }
      for (index_t ic = 0; ic < M; ic += kMC) {
        const index_t mc = min_i(kMC, M - ic);
        MatrixRef Ablk{A.data + ic * A.row_stride + pc * A.col_stride, A.row_stride, A.col_stride};
        if (pack_a) pack_a_panels(mc, kc, Ablk, wa);
        for (index_t jg = 0; jg < nc; jg += kTailN) {
          const index_t ng = min_i(kTailN, nc - jg);
          for (index_t jr = jg; jr < jg + ng; jr += kNR) {
            const index_t nr = min_i(kNR, nc - jr);
            const float* bpanel = bb + (jr / kNR) * bps;
            const float* bias_r = bias ? bias + jr : nullptr;
            float* cj = C + ic * ldc + jc + jr;
            if (pack_a) {
              for (index_t ir = 0; ir < mc; ir += kMR)
                micro_kernel<true>(kc, wa + ir * kc, 0, bpanel, cj + ir * ldc, ldc, min_i(kMR, mc - ir), nr,
                                   flags, bias_r, ep.lo, ep.hi);
            } else {
              for (index_t ir = 0; ir < mc; ir += kMR)
                micro_kernel<false>(kc, Ablk.data + ir * Ablk.row_stride, Ablk.row_stride, bpanel,
                                    cj + ir * ldc, ldc, min_i(kMR, mc - ir), nr, flags, bias_r, ep.lo, ep.hi);
            }
          }
          if (last && ep.tail) ep.tail(ep.ctx, ic, jc + jg, mc, ng, C + ic * ldc + jc + jg, ldc);
        }
      }
    }
  }
}

}  // namespace kiln::kernels

#undef KILN_GEMM_INLINE
#undef KILN_GEMM_UNROLL
#undef KILN_GEMM_RESTRICT
#undef KILN_GEMM_PREFETCH_W
#undef KILN_GEMM_SSE
