// kiln/kernels/int8/requant.hpp — the fused epilogue of the int8 layers.
//
//   y = clamp( multiply_by_quantized_multiplier(acc + bias[c], m[c], shift[c])
//              + output_offset, act_min, act_max )
//
// acc is the exact int32 inner product; the multiplier/shift pair comes from
// quant::conv_output_multipliers (per output channel) or quant::quantize_multiplier
// (per tensor). The activation (relu, relu6) is only this clamp, with bounds from
// quant::activation_range.
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/status.hpp"
#include "../../quant/fixed_point.hpp"
#include "isa.hpp"

namespace kiln::kernels::int8 {

/// How int32 accumulators become int8 outputs.
struct OutputStage {
  /// Q0.31 multipliers and shifts (shift > 0: left): `channels` entries when per_channel,
  /// else one entry used for every channel.
  const std::int32_t* multiplier = nullptr;
  const std::int32_t* shift = nullptr;
  bool per_channel = true;
  /// The output zero point, added after scaling.
  std::int32_t output_offset = 0;
  /// Clamp bounds (fused relu / relu6), within [-128, 127].
  std::int32_t act_min = -128;
  std::int32_t act_max = 127;

  inline std::int8_t apply(std::int32_t acc, index_t channel) const {
    const index_t k = per_channel ? channel : 0;
    return apply_with(acc, multiplier[k], shift[k]);
  }
  /// apply() with the channel's multiplier and shift already loaded (kernels that reuse them).
  inline std::int8_t apply_with(std::int32_t acc, std::int32_t m, std::int32_t s) const {
    // TFLite adds the offset in int32 (undefined on overflow, a wrap on every real target);
    // the wrap is made explicit so extreme multipliers stay defined and match the SIMD adds.
    std::int32_t v = quant::wrapping_add(quant::multiply_by_quantized_multiplier(acc, m, s), output_offset);
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return static_cast<std::int8_t>(v);
  }
};

#ifndef KILN_INT8_REQUANT_CHANNELS
/// Output channels whose requantisation constants a kernel without vector units precomputes on
/// the stack (ChannelRequant, 16 bytes each); layers with more channels use OutputStage::apply.
#define KILN_INT8_REQUANT_CHANNELS 256
#endif

/// One output channel's requantisation in the one-multiply-add form of
/// quant::detail::srdhm_divide_nonnegative, its constants computed once per layer: for a
/// multiplier m >= 0 and a right shift r >= 2 (shift <= -2: every conv/FC of the MLPerf Tiny
/// models), x * m + (0x40000000 | sign bit of x) + ((x >> 31) + 2^(r-2)) 2^32, high word, >> (r - 1).
/// On a Cortex-M4 that is AND, ORR, ADD, SMLAL, ASR: 5 instructions for both roundings.
struct ChannelRequant {
  std::int32_t multiplier = 0;
  std::int32_t high_add = 0;     ///< 2^(r-2)
  std::int32_t shift_right = 0;  ///< r - 1
  std::int32_t bias = 0;         ///< the channel's bias (0 without), for kernels that start from it
};

/// Fills c[0, n) from `s` (and `bias`, may be null) when every channel fits ChannelRequant's
/// form (else false: use OutputStage::apply).
inline bool channel_requant(const OutputStage& s, index_t n, ChannelRequant* c, const std::int32_t* bias = nullptr) {
  if (n > KILN_INT8_REQUANT_CHANNELS) return false;
  for (index_t k = 0; k < n; ++k) {
    const index_t j = s.per_channel ? k : 0;
    const std::int32_t m = s.multiplier[j], shift = s.shift[j];
    if (m < 0 || shift > -2 || shift < -31) return false;
    c[k] = ChannelRequant{m, std::int32_t{1} << (-shift - 2), -shift - 1, bias ? bias[k] : 0};
  }
  return true;
}

/// OutputStage::apply(acc, channel) with the channel's ChannelRequant and the stage's output
/// offset and clamp (passed as values so that a kernel keeps them in registers): the same bits.
inline std::int8_t apply_channel(std::int32_t acc, const ChannelRequant& c, std::int32_t output_offset,
                                 std::int32_t act_min, std::int32_t act_max) {
  const std::uint32_t lo = (static_cast<std::uint32_t>(acc) & 0x80000000u) | 0x40000000u;
  const std::int32_t hi = (acc >> 31) + c.high_add;
  const std::int64_t addend = static_cast<std::int64_t>((static_cast<std::uint64_t>(static_cast<std::uint32_t>(hi)) << 32) | lo);
  const std::int64_t sum = addend + static_cast<std::int64_t>(acc) * c.multiplier;  // SMLAL
  std::int32_t v = quant::wrapping_add(static_cast<std::int32_t>(sum >> 32) >> c.shift_right, output_offset);
  v = v < act_min ? act_min : v;
  v = v > act_max ? act_max : v;
  return static_cast<std::int8_t>(v);
}
inline std::int8_t apply_channel(std::int32_t acc, const ChannelRequant& c, const OutputStage& s) {
  return apply_channel(acc, c, s.output_offset, s.act_min, s.act_max);
}

/// y[i] = stage.apply(acc[i], c0 + i) for i < 8. Vector form on AVX2 and NEON, same bits:
///   AVX2: x << max(shift, 0) (vpsllvd); SRDHM as floor((x*m + 2^30) / 2^31) on 64-bit
///         products of even and odd lanes (vpmuldq), which equals gemmlowp's nudge-and-truncate
///         for every input but INT32_MIN * INT32_MIN (saturated separately); then the rounding
///         divide with per-lane mask/threshold and arithmetic shift (vpsravd).
///   NEON: vqrdmulhq_s32 *is* SRDHM (rounding (2ab + 2^31) >> 32, saturating); the divide is
///         vrshlq_s32 by -exponent (ties toward +inf) after subtracting 1 from negative x when
///         exponent > 0 (saturating), which turns the ties away from zero, as TFLite's NEON code.
inline void requantize8(const std::int32_t* acc, index_t c0, const OutputStage& s, std::int8_t* y) {
#if KILN_INT8_AVX2
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc));
  __m256i m, sh;
  if (s.per_channel) {
    m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.multiplier + c0));
    sh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.shift + c0));
  } else {
    m = _mm256_set1_epi32(s.multiplier[0]);
    sh = _mm256_set1_epi32(s.shift[0]);
  }
  const __m256i zero = _mm256_setzero_si256();
  const __m256i left = _mm256_max_epi32(sh, zero);
  const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, sh), zero);
  const __m256i a = _mm256_sllv_epi32(x, left);
  // SRDHM: 64-bit products of lanes 0,2,4,6 and (after a 32-bit shift) 1,3,5,7.
  const __m256i nudge = _mm256_set1_epi64x(std::int64_t{1} << 30);
  const __m256i p_even = _mm256_add_epi64(_mm256_mul_epi32(a, m), nudge);
  const __m256i p_odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(m, 32)), nudge);
  // floor(p / 2^31): bits 31..62 of p; a logical shift keeps the same low 32 bits as an arithmetic one.
  const __m256i q_even = _mm256_srli_epi64(p_even, 31);
  const __m256i q_odd = _mm256_slli_epi64(_mm256_srli_epi64(p_odd, 31), 32);
  __m256i h = _mm256_blend_epi32(q_even, q_odd, 0xAA);
  const __m256i int_min = _mm256_set1_epi32(quant::kInt32Min);
  const __m256i overflow = _mm256_and_si256(_mm256_cmpeq_epi32(a, int_min), _mm256_cmpeq_epi32(m, int_min));
  h = _mm256_blendv_epi8(h, _mm256_set1_epi32(quant::kInt32Max), overflow);
  // Rounding divide by 2^right, ties away from zero.
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
  const __m256i remainder = _mm256_and_si256(h, mask);
  const __m256i threshold = _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), _mm256_cmpgt_epi32(zero, h));
  __m256i r = _mm256_add_epi32(_mm256_srav_epi32(h, right),
                               _mm256_and_si256(_mm256_cmpgt_epi32(remainder, threshold), one));
  r = _mm256_add_epi32(r, _mm256_set1_epi32(s.output_offset));
  r = _mm256_min_epi32(_mm256_max_epi32(r, _mm256_set1_epi32(s.act_min)), _mm256_set1_epi32(s.act_max));
  // 8 x int32 (already in [-128, 127]) -> 8 x int8.
  const __m128i r16 = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  const __m128i r8 = _mm_packs_epi16(r16, r16);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(y), r8);
#elif KILN_INT8_NEON
  int16x4_t half[2];
  for (int k = 0; k < 2; ++k) {
    const int32x4_t x = vld1q_s32(acc + 4 * k);
    const int32x4_t m = s.per_channel ? vld1q_s32(s.multiplier + c0 + 4 * k) : vdupq_n_s32(s.multiplier[0]);
    const int32x4_t sh = s.per_channel ? vld1q_s32(s.shift + c0 + 4 * k) : vdupq_n_s32(s.shift[0]);
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t left = vmaxq_s32(sh, zero);
    const int32x4_t right_neg = vminq_s32(sh, zero);  // -exponent of the divide, <= 0
    // x << left (vshlq by a positive count is a plain left shift, wrapping like the scalar code).
    const int32x4_t h = vqrdmulhq_s32(vshlq_s32(x, left), m);
    // fixup = -1 where h < 0 and the exponent is > 0: (h & right_neg) has its sign bit set then.
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(h, right_neg), 31);
    int32x4_t r = vrshlq_s32(vqaddq_s32(h, fixup), right_neg);
    r = vaddq_s32(r, vdupq_n_s32(s.output_offset));
    r = vminq_s32(vmaxq_s32(r, vdupq_n_s32(s.act_min)), vdupq_n_s32(s.act_max));
    half[k] = vmovn_s32(r);
  }
  vst1_s8(y, vmovn_s16(vcombine_s16(half[0], half[1])));
#else
  for (int i = 0; i < 8; ++i) y[i] = s.apply(acc[i], c0 + i);
#endif
}

namespace detail {

/// Checks an OutputStage (and an input offset) before a kernel touches memory.
/// `channels` is the number of multipliers read when per_channel.
inline Status check_output_stage(const char* op, const OutputStage& s, index_t channels,
                                 std::int32_t input_offset) {
  if (!s.multiplier || !s.shift)
    return Status(Errc::invalid_argument) << op << ": output multiplier/shift pointers are null";
  if (s.act_min < -128 || s.act_max > 127 || s.act_min > s.act_max)
    return Status(Errc::invalid_argument)
           << op << ": activation range [" << s.act_min << ", " << s.act_max
           << "] is not an int8 range";
  if (s.output_offset < -128 || s.output_offset > 127)
    return Status(Errc::invalid_argument)
           << op << ": output offset " << s.output_offset << " is not an int8 zero point";
  // -input_zero_point for an int8 zero point; keeps (x + offset) within int16 in the dot paths.
  if (input_offset < -127 || input_offset > 128)
    return Status(Errc::invalid_argument)
           << op << ": input offset " << input_offset << " is not minus an int8 zero point";
  const index_t n = s.per_channel ? channels : 1;
  for (index_t c = 0; c < n; ++c)
    if (s.shift[c] < -31 || s.shift[c] > 31)
      return Status(Errc::invalid_argument)
             << op << ": output shift " << s.shift[c] << " of channel " << static_cast<long long>(c)
             << " outside [-31, 31]";
  return Status();
}

}  // namespace detail
}  // namespace kiln::kernels::int8
