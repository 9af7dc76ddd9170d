// kiln/kernels/gemm_m1.hpp — one row of A times B (M = 1): the batch-1 layer of a small model.
//
// A fragment of kernels/gemm.hpp (included inside it, after gemm_detail's vector layer, with its
// macros): gemm() sends M == 1 here, and the compiled runtime calls these kernels directly for a
// chain of batch-1 layers (runtime/row_gemm.hpp).
//
//   gemv_m1_packed: y[0:N) = clamp(x . B + bias) over B's prepacked NR-wide panels. Panels go
//     four at a time (8 accumulators on 16-register SIMD); two or one panels left split K two or
//     four ways so there are still 8 independent FMA chains. Bias and clamp are applied to the
//     accumulators in registers and full vectors are stored directly; only a last partial
//     panel (N % NR) goes through a small buffer. Nothing per row or per flag inside the loops.
//   dot_m1: N == 1 over K contiguous weights (a layer with one output): four vector partial sums,
//     one horizontal add. A packed panel holds that column with stride NR, so callers that run it
//     often keep a contiguous copy (the gemm() entry reads the panel column with a scalar loop).
//
// Sums run in another order than the blocked micro-kernel (K split S ways): results agree with
// gemm() for M > 1 to rounding, not bit for bit.
#pragma once

namespace kiln::kernels {

/// The epilogue the M = 1 kernels apply in registers (what GemmEpilogue says minus its tail).
struct RowEpilogue {
  const float* bias = nullptr;
  bool clamp = false;
  float lo = 0.f, hi = 0.f;
};

namespace gemm_detail {

// P panels (n <= P*NR valid columns) of a K x NR packed B starting at b (panel stride bps),
// accumulated in S * P * NV registers; x[k * xs] broadcast once per k.
template <int P, int S>
KILN_GEMM_INLINE void m1_panels(index_t K, const float* KILN_GEMM_RESTRICT x, index_t xs,
                                const float* KILN_GEMM_RESTRICT b, index_t bps, float* KILN_GEMM_RESTRICT y,
                                index_t n, const RowEpilogue& ep) {
  vec acc[S][P][kNV];
  KILN_GEMM_UNROLL
  for (int s = 0; s < S; ++s) {
    KILN_GEMM_UNROLL
    for (int p = 0; p < P; ++p) {
      KILN_GEMM_UNROLL
      for (int v = 0; v < kNV; ++v) acc[s][p][v] = vsplat(0.f);
    }
  }
  // The loop runs on B's pointer alone (no counter): its bookkeeping is a third of a K step here.
  const index_t k = K / S * S;
  for (const float* const end = b + k * kNR; b != end; x += S * xs, b += S * kNR) {
    KILN_GEMM_UNROLL
    for (int s = 0; s < S; ++s) {
      const vec xv = vsplat(x[s * xs]);
      KILN_GEMM_UNROLL
      for (int p = 0; p < P; ++p) {
        KILN_GEMM_UNROLL
        for (int v = 0; v < kNV; ++v)
          acc[s][p][v] = vfma(xv, vload(b + p * bps + s * kNR + v * kLanes), acc[s][p][v]);
      }
    }
  }
  if constexpr (S > 1) {
    for (index_t t = k; t < K; ++t, x += xs, b += kNR) {
      const vec xv = vsplat(*x);
      KILN_GEMM_UNROLL
      for (int p = 0; p < P; ++p) {
        KILN_GEMM_UNROLL
        for (int v = 0; v < kNV; ++v) acc[0][p][v] = vfma(xv, vload(b + p * bps + v * kLanes), acc[0][p][v]);
      }
    }
    KILN_GEMM_UNROLL
    for (int s = 1; s < S; ++s) {
      KILN_GEMM_UNROLL
      for (int p = 0; p < P; ++p) {
        KILN_GEMM_UNROLL
        for (int v = 0; v < kNV; ++v) acc[0][p][v] = vadd(acc[0][p][v], acc[s][p][v]);
      }
    }
  }
  if (n == P * kNR) {  // whole panels: bias and clamp on the registers, vector stores
    if (ep.bias) {
      KILN_GEMM_UNROLL
      for (int p = 0; p < P; ++p) {
        KILN_GEMM_UNROLL
        for (int v = 0; v < kNV; ++v) acc[0][p][v] = vadd(acc[0][p][v], vload(ep.bias + p * kNR + v * kLanes));
      }
    }
    if (ep.clamp) {
      const vec vlo = vsplat(ep.lo), vhi = vsplat(ep.hi);
      KILN_GEMM_UNROLL
      for (int p = 0; p < P; ++p) {
        KILN_GEMM_UNROLL
        for (int v = 0; v < kNV; ++v) acc[0][p][v] = vclamp(acc[0][p][v], vlo, vhi);
      }
    }
    KILN_GEMM_UNROLL
    for (int p = 0; p < P; ++p) {
      KILN_GEMM_UNROLL
      for (int v = 0; v < kNV; ++v) vstore(y + p * kNR + v * kLanes, acc[0][p][v]);
    }
    return;
  }
  // The last, partial panel group: the bias exists for n columns only, so it is added in scalar.
  float t[P * kNR];
  KILN_GEMM_UNROLL
  for (int p = 0; p < P; ++p) {
    KILN_GEMM_UNROLL
    for (int v = 0; v < kNV; ++v) vstore(t + p * kNR + v * kLanes, acc[0][p][v]);
  }
  for (index_t j = 0; j < n; ++j) {
    float r = t[j];
    if (ep.bias) r += ep.bias[j];
    if (ep.clamp) r = sclamp(r, ep.lo, ep.hi);
    y[j] = r;
  }
}

}  // namespace gemm_detail

/// y[0:N) = clamp(x . B + bias), B prepacked by pack_b(K, N) (panel q at packed + q*K*NR),
/// x[k] at x + k*xs. K >= 1, N >= 1.
inline void gemv_m1_packed(index_t K, index_t N, const float* x, index_t xs, const float* packed, float* y,
                           const RowEpilogue& ep) {
  using namespace gemm_detail;
  const index_t np = (N + kNR - 1) / kNR, bps = K * kNR;
  index_t p = 0;
  RowEpilogue e = ep;
  for (; p + 4 <= np; p += 4) {
    m1_panels<4, 1>(K, x, xs, packed + p * bps, bps, y + p * kNR, min_i(4 * kNR, N - p * kNR), e);
    if (e.bias) e.bias += 4 * kNR;
  }
  if (np - p >= 2) {
    m1_panels<2, 2>(K, x, xs, packed + p * bps, bps, y + p * kNR, min_i(2 * kNR, N - p * kNR), e);
    if (e.bias) e.bias += 2 * kNR;
    p += 2;
  }
  if (np - p == 1) m1_panels<1, 4>(K, x, xs, packed + p * bps, bps, y + p * kNR, N - p * kNR, e);
}

/// y[0] = clamp(x . w + bias[0]) with w[0:K) contiguous and x[k] at x + k*xs.
inline void dot_m1(index_t K, const float* x, index_t xs, const float* w, float* y, const RowEpilogue& ep) {
  using namespace gemm_detail;
  float s = 0.f;
  index_t k = 0;
#if KILN_SIMD
  if (xs == 1) {
    constexpr index_t L = kLanes;
    vec a0 = vsplat(0.f), a1 = vsplat(0.f), a2 = vsplat(0.f), a3 = vsplat(0.f);
    for (; k + 4 * L <= K; k += 4 * L) {
      a0 = vfma(vload(x + k), vload(w + k), a0);
      a1 = vfma(vload(x + k + L), vload(w + k + L), a1);
      a2 = vfma(vload(x + k + 2 * L), vload(w + k + 2 * L), a2);
      a3 = vfma(vload(x + k + 3 * L), vload(w + k + 3 * L), a3);
    }
    for (; k + L <= K; k += L) a0 = vfma(vload(x + k), vload(w + k), a0);
    s = xsimd::hadd(vadd(vadd(a0, a1), vadd(a2, a3)));
  }
#endif
  float s1 = 0.f, s2 = 0.f, s3 = 0.f;  // strided x, the tail, or the scalar build
  for (; k + 4 <= K; k += 4) {
    s += x[k * xs] * w[k];
    s1 += x[(k + 1) * xs] * w[k + 1];
    s2 += x[(k + 2) * xs] * w[k + 2];
    s3 += x[(k + 3) * xs] * w[k + 3];
  }
  for (; k < K; ++k) s += x[k * xs] * w[k];
  s = (s + s1) + (s2 + s3);
  if (ep.bias) s += ep.bias[0];
  if (ep.clamp) s = sclamp(s, ep.lo, ep.hi);
  *y = s;
}

}  // namespace kiln::kernels
