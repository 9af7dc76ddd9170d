// kiln/kernels/int8/convert.hpp — f32 -> int8 over an array (the QUANTIZE at a graph's float
// boundary), bit-exact with quant::quantize_value.
//
// quantize: q = clamp(round_half_away(x / scale) + zero_point, -128, 127), NaN -> zero_point.
// The AVX2 path does the same arithmetic 8 lanes at a time: the IEEE division, |r| clamped to
// 512 (beyond it every result saturates anyway), round half away from zero as trunc(|r|) + (frac
// >= 0.5) with the sign put back (exact: trunc and the fraction of a float are exact), the zero
// point added in int32 and the int8 saturation of two saturating packs: 8x the scalar loop
// (16384 values: 5.2 vs 41.8 us on AVX2), which the compiler does not vectorise. Other targets
// use the scalar loop. The elementwise kernel's i8 store (a quantize fused into its f32 producer)
// calls this too, on rows of any length. (DEQUANTIZE needs no kernel: quant::dequantize's loop
// vectorises as is.)
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../quant/quantize.hpp"
#include "isa.hpp"

namespace kiln::kernels::int8 {

#if KILN_INT8_AVX2
namespace detail {

/// Eight floats quantised to int32 (before the int8 saturation; |result - zero_point| <= 512).
inline __m256i quantize_lanes8(const float* p, __m256 scale, __m256i zp) {
  const __m256 lim = _mm256_set1_ps(512.f), nlim = _mm256_set1_ps(-512.f);
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.f), sign_bit = _mm256_set1_ps(-0.f);
  __m256 r = _mm256_div_ps(_mm256_loadu_ps(p), scale);
  r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));  // NaN -> 0
  r = _mm256_min_ps(_mm256_max_ps(r, nlim), lim);
  const __m256 sign = _mm256_and_ps(r, sign_bit);
  const __m256 a = _mm256_andnot_ps(sign_bit, r);
  __m256 t = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  t = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(a, t), half, _CMP_GE_OQ), one));
  return _mm256_add_epi32(_mm256_cvttps_epi32(_mm256_or_ps(t, sign)), zp);
}

}  // namespace detail
#endif

/// Any n: blocks of 32, then of 8 (short rows, e.g. a GEMM epilogue's block storing i8 through
/// the elementwise kernel), then the scalar function for the last n % 8.
inline void quantize(const float* x, std::int8_t* out, index_t n, quant::TensorQuant q) {
  index_t i = 0;
#if KILN_INT8_AVX2
  const __m256 scale = _mm256_set1_ps(q.scale);
  const __m256i zp = _mm256_set1_epi32(q.zero_point);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undo the packs' lane interleave
  for (; i + 32 <= n; i += 32) {
    const __m256i lo = _mm256_packs_epi32(detail::quantize_lanes8(x + i, scale, zp),
                                          detail::quantize_lanes8(x + i + 8, scale, zp));
    const __m256i hi = _mm256_packs_epi32(detail::quantize_lanes8(x + i + 16, scale, zp),
                                          detail::quantize_lanes8(x + i + 24, scale, zp));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(lo, hi), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), bytes);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256i v = detail::quantize_lanes8(x + i, scale, zp);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packs_epi16(w, w));
  }
#endif
  for (; i < n; ++i) out[i] = quant::quantize_value(x[i], q);
}

}  // namespace kiln::kernels::int8
