// kiln/kernels/int8/dot.hpp — the int8 inner product every quantised layer spends its time in.
//
//   acc += sum_i (x[i] + x_offset) * w[i]      x, w int8; x_offset = -input_zero_point
//
// x + x_offset lies in [-255, 255] and w in [-128, 127], so every product fits in
// 16 bits plus sign and a pair of products fits easily in int32: the sum is exact in
// int32 whatever the order of accumulation (integer addition is associative), which
// is why the SIMD and scalar paths below give bit-identical results.
//
// One accumulator object per output value; feed it several spans (the rows of a
// convolution window) and read it once, so a vector accumulator is reduced to a
// scalar once per output, not once per window row.
//
// Paths, chosen at compile time (KILN_NO_SIMD forces the scalar one, as for the f32 kernels):
//   AVX2   sign-extend 16 int8 to int16 (vpmovsxbw), add the offset, vpmaddwd into 8 int32
//   SSE4.1 the same 8 at a time (pmovsxbw + pmaddwd)
//   NEON   vmovl_s8 to int16, add the offset, vmlal_s16 into int32x4 (armv7 and aarch64)
//   scalar two elements per step as int16 pairs: on Cortex-M with the DSP extension
//          (__ARM_FEATURE_DSP: M4/M7/M33/M55) four bytes are unpacked with SXTAB16 and
//          accumulated with SMLAD (two 16x16 products per instruction), as CMSIS-NN does;
//          elsewhere the pair form is plain C.
// The xsimd batch types are not used: xsimd 8.1 has no widening int8/int16 multiply-add.
#pragma once

#include <cstdint>
#include <cstring>

#include "../../core/config.hpp"

#include "isa.hpp"

namespace kiln::kernels::int8 {

namespace dot_detail {

#if KILN_INT8_ARM_DSP
// Rotate right by 8 (ACLE's __ror is missing from GCC 12's arm_acle.h); GCC 12 emits it as a
// separate "mov r, r, ror #8" rather than SXTB16's rotate operand: one extra instruction per word.
inline std::uint32_t ror8(std::uint32_t v) { return (v >> 8) | (v << 24); }
#endif

// Scalar pair form: (x0+o)*w0 + (x1+o)*w1 with int16 operands, the shape of one SMLAD.
inline std::int32_t dot_pairs(const std::int8_t* x, const std::int8_t* w, index_t n,
                              std::int32_t x_offset, std::int32_t acc) {
  index_t i = 0;
#if KILN_INT8_ARM_DSP
  // Four bytes per step: SXTAB16 sign-extends bytes 0 and 2 (and, after a rotate by 8,
  // bytes 1 and 3) into two int16 lanes and adds the offset to both; SMLAD multiplies
  // the lane pairs and adds both products to the accumulator.
  const std::uint32_t offset2 =
      (static_cast<std::uint32_t>(x_offset) & 0xFFFFu) * 0x00010001u;  // offset in both lanes
  for (; i + 4 <= n; i += 4) {
    std::uint32_t xv, wv;
    std::memcpy(&xv, x + i, 4);
    std::memcpy(&wv, w + i, 4);
    const std::uint32_t x02 = __sxtab16(offset2, xv), x13 = __sxtab16(offset2, ror8(xv));
    const std::uint32_t w02 = __sxtb16(wv), w13 = __sxtb16(ror8(wv));
    acc = __smlad(x02, w02, acc);
    acc = __smlad(x13, w13, acc);
  }
#endif
  for (; i + 2 <= n; i += 2) {
    const std::int16_t x0 = static_cast<std::int16_t>(x[i] + x_offset);
    const std::int16_t x1 = static_cast<std::int16_t>(x[i + 1] + x_offset);
    const std::int16_t w0 = w[i], w1 = w[i + 1];
    acc += static_cast<std::int32_t>(x0) * w0 + static_cast<std::int32_t>(x1) * w1;
  }
  if (i < n) acc += (static_cast<std::int32_t>(x[i]) + x_offset) * w[i];
  return acc;
}

}  // namespace dot_detail

/// Accumulates sum (x[i] + x_offset) * w[i] over any number of spans; value() reads it.
/// Requires -255 <= x_offset <= 255 (the kernels check the zero points).
class DotAccumulator {
 public:
  explicit DotAccumulator(std::int32_t x_offset, std::int32_t init = 0)
      : offset_(x_offset), scalar_(init) {
#if KILN_INT8_AVX2
    vacc_ = _mm256_setzero_si256();
    voff_ = _mm256_set1_epi16(static_cast<short>(x_offset));
#elif KILN_INT8_SSE41
    vacc_ = _mm_setzero_si128();
    voff_ = _mm_set1_epi16(static_cast<short>(x_offset));
#elif KILN_INT8_NEON
    vacc_ = vdupq_n_s32(0);
    voff_ = vdupq_n_s16(static_cast<std::int16_t>(x_offset));
#endif
  }

  /// acc += sum_{i<n} (x[i] + x_offset) * w[i]. No alignment required.
  inline void add(const std::int8_t* x, const std::int8_t* w, index_t n) {
    index_t i = 0;
#if KILN_INT8_AVX2
    for (; i + 32 <= n; i += 32) {
      const __m256i x0 = widen_add(x + i), x1 = widen_add(x + i + 16);
      const __m256i w0 = widen(w + i), w1 = widen(w + i + 16);
      vacc_ = _mm256_add_epi32(vacc_, _mm256_add_epi32(_mm256_madd_epi16(x0, w0), _mm256_madd_epi16(x1, w1)));
    }
    for (; i + 16 <= n; i += 16) vacc_ = _mm256_add_epi32(vacc_, _mm256_madd_epi16(widen_add(x + i), widen(w + i)));
#elif KILN_INT8_SSE41
    for (; i + 8 <= n; i += 8) {
      const __m128i xv = _mm_add_epi16(
          _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i))), voff_);
      const __m128i wv = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + i)));
      vacc_ = _mm_add_epi32(vacc_, _mm_madd_epi16(xv, wv));
    }
#elif KILN_INT8_NEON
    for (; i + 16 <= n; i += 16) {
      const int8x16_t xv = vld1q_s8(x + i), wv = vld1q_s8(w + i);
      const int16x8_t xl = vaddq_s16(vmovl_s8(vget_low_s8(xv)), voff_);
      const int16x8_t xh = vaddq_s16(vmovl_s8(vget_high_s8(xv)), voff_);
      const int16x8_t wl = vmovl_s8(vget_low_s8(wv)), wh = vmovl_s8(vget_high_s8(wv));
      vacc_ = vmlal_s16(vacc_, vget_low_s16(xl), vget_low_s16(wl));
      vacc_ = vmlal_s16(vacc_, vget_high_s16(xl), vget_high_s16(wl));
      vacc_ = vmlal_s16(vacc_, vget_low_s16(xh), vget_low_s16(wh));
      vacc_ = vmlal_s16(vacc_, vget_high_s16(xh), vget_high_s16(wh));
    }
    for (; i + 8 <= n; i += 8) {
      const int16x8_t xv = vaddq_s16(vmovl_s8(vld1_s8(x + i)), voff_);
      const int16x8_t wv = vmovl_s8(vld1_s8(w + i));
      vacc_ = vmlal_s16(vacc_, vget_low_s16(xv), vget_low_s16(wv));
      vacc_ = vmlal_s16(vacc_, vget_high_s16(xv), vget_high_s16(wv));
    }
#endif
    if (i < n) scalar_ = dot_detail::dot_pairs(x + i, w + i, n - i, offset_, scalar_);
  }

  /// The accumulated int32 sum (plus the initial value).
  inline std::int32_t value() const {
#if KILN_INT8_AVX2
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(vacc_), _mm256_extracti128_si256(vacc_, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return scalar_ + _mm_cvtsi128_si32(s);
#elif KILN_INT8_SSE41
    __m128i s = _mm_add_epi32(vacc_, _mm_shuffle_epi32(vacc_, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return scalar_ + _mm_cvtsi128_si32(s);
#elif KILN_INT8_NEON
#if defined(__aarch64__)
    return scalar_ + vaddvq_s32(vacc_);
#else
    const int32x2_t s = vadd_s32(vget_low_s32(vacc_), vget_high_s32(vacc_));
    return scalar_ + vget_lane_s32(vpadd_s32(s, s), 0);
#endif
#else
    return scalar_;
#endif
  }

 private:
#if KILN_INT8_AVX2
  static inline __m256i widen(const std::int8_t* p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  inline __m256i widen_add(const std::int8_t* p) const { return _mm256_add_epi16(widen(p), voff_); }
  __m256i vacc_, voff_;
#elif KILN_INT8_SSE41
  __m128i vacc_, voff_;
#elif KILN_INT8_NEON
  int32x4_t vacc_;
  int16x8_t voff_;
#endif
  std::int32_t offset_;
  std::int32_t scalar_;
};

namespace dot_detail {

#if KILN_INT8_AVX2
inline std::int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
inline __m256i widen16(const std::int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
#elif KILN_INT8_SSE41
inline std::int32_t hsum(__m128i v) {
  __m128i s = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
inline __m128i widen8(const std::int8_t* p) {
  return _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
#elif KILN_INT8_NEON
inline std::int32_t hsum(int32x4_t v) {
#if defined(__aarch64__)
  return vaddvq_s32(v);
#else
  const int32x2_t s = vadd_s32(vget_low_s32(v), vget_high_s32(v));
  return vget_lane_s32(vpadd_s32(s, s), 0);
#endif
}
#endif

// Scalar twin of dot4: the input pair is widened once and used for four rows.
inline void dot4_pairs(const std::int8_t* x, const std::int8_t* w, index_t w_stride, index_t n,
                       std::int32_t x_offset, std::int32_t* acc) {
  const std::int8_t* w0 = w;
  const std::int8_t* w1 = w + w_stride;
  const std::int8_t* w2 = w + 2 * w_stride;
  const std::int8_t* w3 = w + 3 * w_stride;
  std::int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  index_t i = 0;
#if KILN_INT8_ARM_DSP
  const std::uint32_t offset2 = (static_cast<std::uint32_t>(x_offset) & 0xFFFFu) * 0x00010001u;
  auto smlad_row = [](const std::int8_t* wr, std::uint32_t x02, std::uint32_t x13, std::int32_t a) {
    std::uint32_t wv;
    std::memcpy(&wv, wr, 4);
    return static_cast<std::int32_t>(__smlad(x13, __sxtb16(ror8(wv)), __smlad(x02, __sxtb16(wv), a)));
  };
  for (; i + 4 <= n; i += 4) {
    std::uint32_t xv;
    std::memcpy(&xv, x + i, 4);
    const std::uint32_t x02 = __sxtab16(offset2, xv), x13 = __sxtab16(offset2, ror8(xv));
    a0 = smlad_row(w0 + i, x02, x13, a0);
    a1 = smlad_row(w1 + i, x02, x13, a1);
    a2 = smlad_row(w2 + i, x02, x13, a2);
    a3 = smlad_row(w3 + i, x02, x13, a3);
  }
#endif
  for (; i + 2 <= n; i += 2) {
    const std::int32_t x0 = static_cast<std::int16_t>(x[i] + x_offset);
    const std::int32_t x1 = static_cast<std::int16_t>(x[i + 1] + x_offset);
    a0 += x0 * w0[i] + x1 * w0[i + 1];
    a1 += x0 * w1[i] + x1 * w1[i + 1];
    a2 += x0 * w2[i] + x1 * w2[i + 1];
    a3 += x0 * w3[i] + x1 * w3[i + 1];
  }
  if (i < n) {
    const std::int32_t x0 = x[i] + x_offset;
    a0 += x0 * w0[i];
    a1 += x0 * w1[i];
    a2 += x0 * w2[i];
    a3 += x0 * w3[i];
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

}  // namespace dot_detail

/// acc[r] += sum_{i<n} (x[i] + x_offset) * w[r * w_stride + i] for r = 0..3: four weight rows
/// against one input span (a GEMV tile). Each input vector is loaded and widened once and
/// feeds four multiply-add chains, and the four horizontal sums happen once per call.
inline void dot4_with_offset(const std::int8_t* x, const std::int8_t* w, index_t w_stride, index_t n,
                             std::int32_t x_offset, std::int32_t* acc) {
  index_t i = 0;
#if KILN_INT8_AVX2
  if (n >= 16) {
    const __m256i off = _mm256_set1_epi16(static_cast<short>(x_offset));
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 16 <= n; i += 16) {
      const __m256i xv = _mm256_add_epi16(dot_detail::widen16(x + i), off);
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(xv, dot_detail::widen16(w + i)));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(xv, dot_detail::widen16(w + w_stride + i)));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(xv, dot_detail::widen16(w + 2 * w_stride + i)));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(xv, dot_detail::widen16(w + 3 * w_stride + i)));
    }
    acc[0] += dot_detail::hsum(a0);
    acc[1] += dot_detail::hsum(a1);
    acc[2] += dot_detail::hsum(a2);
    acc[3] += dot_detail::hsum(a3);
  }
#elif KILN_INT8_SSE41
  if (n >= 8) {
    const __m128i off = _mm_set1_epi16(static_cast<short>(x_offset));
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 8 <= n; i += 8) {
      const __m128i xv = _mm_add_epi16(dot_detail::widen8(x + i), off);
      a0 = _mm_add_epi32(a0, _mm_madd_epi16(xv, dot_detail::widen8(w + i)));
      a1 = _mm_add_epi32(a1, _mm_madd_epi16(xv, dot_detail::widen8(w + w_stride + i)));
      a2 = _mm_add_epi32(a2, _mm_madd_epi16(xv, dot_detail::widen8(w + 2 * w_stride + i)));
      a3 = _mm_add_epi32(a3, _mm_madd_epi16(xv, dot_detail::widen8(w + 3 * w_stride + i)));
    }
    acc[0] += dot_detail::hsum(a0);
    acc[1] += dot_detail::hsum(a1);
    acc[2] += dot_detail::hsum(a2);
    acc[3] += dot_detail::hsum(a3);
  }
#elif KILN_INT8_NEON
  if (n >= 8) {
    const int16x8_t off = vdupq_n_s16(static_cast<std::int16_t>(x_offset));
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    auto mla = [](int32x4_t a, int16x8_t xv, const std::int8_t* wp) {
      const int16x8_t wv = vmovl_s8(vld1_s8(wp));
      a = vmlal_s16(a, vget_low_s16(xv), vget_low_s16(wv));
      return vmlal_s16(a, vget_high_s16(xv), vget_high_s16(wv));
    };
    for (; i + 8 <= n; i += 8) {
      const int16x8_t xv = vaddq_s16(vmovl_s8(vld1_s8(x + i)), off);
      a0 = mla(a0, xv, w + i);
      a1 = mla(a1, xv, w + w_stride + i);
      a2 = mla(a2, xv, w + 2 * w_stride + i);
      a3 = mla(a3, xv, w + 3 * w_stride + i);
    }
    acc[0] += dot_detail::hsum(a0);
    acc[1] += dot_detail::hsum(a1);
    acc[2] += dot_detail::hsum(a2);
    acc[3] += dot_detail::hsum(a3);
  }
#endif
  if (i < n) dot_detail::dot4_pairs(x + i, w + i, w_stride, n - i, x_offset, acc);
}

/// sum_{i<n} (x[i] + x_offset) * w[i] over one contiguous span.
inline std::int32_t dot_with_offset(const std::int8_t* x, const std::int8_t* w, index_t n,
                                    std::int32_t x_offset) {
  DotAccumulator acc(x_offset);
  acc.add(x, w, n);
  return acc.value();
}

}  // namespace kiln::kernels::int8
