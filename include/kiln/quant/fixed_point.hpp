// kiln/quant/fixed_point.hpp — the integer arithmetic of TFLite's int8 kernels.
//
// Every int8 kernel ends the same way: an int32 accumulator is scaled by a real
// factor M = input_scale * weight_scale / output_scale that the model fixes at
// conversion time. TFLite (and TFLite Micro, CMSIS-NN) represent M as a Q0.31
// multiplier m in [2^30, 2^31) and a power-of-two exponent `shift`:
//
//     M ~= m * 2^(shift - 31)
//
// and evaluate x * M with two integer roundings (gemmlowp's "double rounding"):
//
//     multiply_by_quantized_multiplier(x, m, shift) =
//         rounding_divide_by_pot(srdhm(x * 2^max(shift,0), m), max(-shift, 0))
//
// A model reproduces TFLite's bytes only if these match bit for bit, so the
// definitions below follow gemmlowp's fixedpoint.h operation by operation; the
// rounding of each step is documented where it happens. TFLite's optional
// TFLITE_SINGLE_ROUNDING build (one rounding, shift <= 30) is not what TFLite
// Micro ships by default and is not implemented.
//
// All functions are constexpr and branch-light; no heap, no exceptions.
#pragma once

#include <cstdint>

namespace kiln::quant {

inline constexpr std::int32_t kInt32Min = -2147483647 - 1;
inline constexpr std::int32_t kInt32Max = 2147483647;

/// Wrapping int32 addition (two's complement). gemmlowp adds fixed-point raws
/// without saturation; doing it through uint32 keeps the wrap defined behaviour.
constexpr std::int32_t wrapping_add(std::int32_t a, std::int32_t b) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(a) + static_cast<std::uint32_t>(b));
}
constexpr std::int32_t wrapping_sub(std::int32_t a, std::int32_t b) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(a) - static_cast<std::uint32_t>(b));
}

/// x * 2^n for 0 <= n <= 31, wrapping like the `x * (1 << n)` TFLite writes (which
/// is undefined behaviour in C++ when it overflows; here it is a defined wrap).
constexpr std::int32_t wrapping_shift_left(std::int32_t x, int n) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(x) << n);
}

/// Saturating rounding doubling high multiply (gemmlowp SaturatingRoundingDoublingHighMul):
/// the high 32 bits of 2*a*b, i.e. a*b / 2^31 rounded to nearest.
/// Rounding: the 64-bit product gets a nudge of +2^30 (product >= 0) or 1 - 2^30
/// (product < 0) and is then divided by 2^31 truncating toward zero. The net effect
/// is round to nearest with ties toward +infinity (+0.5 -> 1, -0.5 -> 0, -1.5 -> -1).
/// The one overflowing input, INT32_MIN * INT32_MIN (= +1.0 in Q0.31), saturates
/// to INT32_MAX.
constexpr std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a, std::int32_t b) {
  if (a == kInt32Min && b == kInt32Min) return kInt32Max;
  // gemmlowp's (ab + nudge) / 2^31 truncating toward zero equals floor((ab + 2^30) / 2^31) for
  // either sign of ab (for ab = -k < 0: -floor((k + 2^30 - 1) / 2^31) = floor((2^30 - k) / 2^31)),
  // and the floor is an arithmetic shift: on a 32-bit core one SMLAL and two shifts instead of
  // a sign test, two 64-bit adds and a 64-bit division by a power of two.
  const std::int64_t ab = static_cast<std::int64_t>(a) * static_cast<std::int64_t>(b);
  return static_cast<std::int32_t>((ab + (std::int64_t{1} << 30)) >> 31);
}

/// x / 2^exponent rounded to nearest, ties away from zero (gemmlowp RoundingDivideByPOT),
/// for 0 <= exponent <= 31. Uses an arithmetic right shift plus a correction:
/// the remainder is compared against half the divisor, with the threshold raised by
/// one for negative x so that a negative tie rounds down (away from zero).
constexpr std::int32_t rounding_divide_by_pot(std::int32_t x, int exponent) {
  const std::int32_t mask = static_cast<std::int32_t>((std::uint32_t{1} << exponent) - 1u);  // 32-bit math
  const std::int32_t remainder = x & mask;
  const std::int32_t threshold = (mask >> 1) - (x >> 31);  // + 1 when x < 0 (x >> 31 is -1)
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/// gemmlowp SaturatingRoundingMultiplyByPOT: x * 2^exponent. A positive exponent
/// saturates to [INT32_MIN, INT32_MAX]; a negative one is rounding_divide_by_pot
/// (ties away from zero).
constexpr std::int32_t saturating_rounding_multiply_by_pot(std::int32_t x, int exponent) {
  if (exponent == 0) return x;
  if (exponent < 0) return rounding_divide_by_pot(x, -exponent);
  const std::int32_t threshold = static_cast<std::int32_t>((std::int64_t{1} << (31 - exponent)) - 1);
  if (x > threshold) return kInt32Max;
  if (x < -threshold) return kInt32Min;
  return wrapping_shift_left(x, exponent);
}

/// TFLite MultiplyByQuantizedMultiplier (double-rounding form, the default of
/// TFLite and TFLite Micro): x * m * 2^(shift - 31), for -31 <= shift <= 31.
/// A positive shift is applied as an exact left shift *before* the high multiply,
/// a negative one as a rounding right shift after it; so two roundings happen:
/// SRDHM (ties toward +inf) and the divide (ties away from zero). The result can
/// differ by one from the exactly rounded product; TFLite's bytes depend on it.
namespace detail {

/// rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m), r) for m >= 0 (every
/// multiplier TFLite makes lies in [2^30, 2^31) or is 0), 0 <= r <= 31, as one 64-bit
/// multiply-add and a shift; on a Cortex-M4 one SMLAL and a few 32-bit operations instead of
/// SRDHM's 64-bit rounding and the divide's mask/threshold compare. Same bits, because:
///  - SRDHM is h = floor((p + 2^30) / 2^31) with p = x * m (see above); m >= 0 rules out its
///    one saturating input (INT32_MIN * INT32_MIN).
///  - The divide, round half away from zero, is floor((h + 2^(r-1) - [h < 0]) / 2^r) for r >= 1
///    (h = q 2^r + rem: both add 1 to q exactly when rem >= 2^(r-1) + [h < 0]).
///  - Floors nest (floor(floor(a) / n) = floor(a / n), integers add inside a floor), so the
///    result is floor((p + 2^30 + 2^(30+r) - [h < 0] 2^31) / 2^(31+r)): the high word of that
///    64-bit sum shifted right by r - 1.
///  - [h < 0] may be replaced by [x < 0]: they differ only when -2^30 <= p <= 0 with x < 0,
///    where h = 0 and the sum lies in [0, 2^(31+r)) either way: the result is 0 in both cases.
/// The addend's words: 2^30 - [x < 0] 2^31 is 0x40000000 or (borrowing) 0xC0000000 with high
/// word -1; 2^(30+r) adds 2^(r-2) to the high word for r >= 2, and 2^31 to the low word for r = 1.
constexpr std::int32_t srdhm_divide_nonnegative(std::int32_t x, std::int32_t m, int r) {
  const std::int64_t p = static_cast<std::int64_t>(x) * m;
  if (r == 0) return static_cast<std::int32_t>((p + (std::int64_t{1} << 30)) >> 31);
  const std::uint32_t sign = static_cast<std::uint32_t>(x) & 0x80000000u;
  std::uint32_t lo = 0x40000000u | sign;
  std::int32_t hi = x >> 31;  // -1 with the borrow when x < 0
  if (r >= 2) {
    hi += std::int32_t{1} << (r - 2);
  } else {  // r == 1: + 2^31 on the low word (0xC0000000 + 2^31 carries into hi = -1)
    lo = 0xC0000000u ^ sign;
    hi = 0;
  }
  const std::int64_t addend = static_cast<std::int64_t>((static_cast<std::uint64_t>(static_cast<std::uint32_t>(hi)) << 32) | lo);
  const std::int64_t sum = p + addend;  // |p| < 2^62: no overflow
  return static_cast<std::int32_t>(sum >> 32) >> (r - 1);
}

}  // namespace detail

constexpr std::int32_t multiply_by_quantized_multiplier(std::int32_t x, std::int32_t multiplier,
                                                        int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  if (multiplier >= 0) return detail::srdhm_divide_nonnegative(wrapping_shift_left(x, left_shift), multiplier, right_shift);
  return rounding_divide_by_pot(
      saturating_rounding_doubling_high_mul(wrapping_shift_left(x, left_shift), multiplier),
      right_shift);
}

/// TFLite MultiplyByQuantizedMultiplierSmallerThanOneExp (used by ADD): left_shift <= 0.
constexpr std::int32_t multiply_by_quantized_multiplier_smaller_than_one(std::int32_t x,
                                                                         std::int32_t multiplier,
                                                                         int left_shift) {
  if (multiplier >= 0) return detail::srdhm_divide_nonnegative(x, multiplier, -left_shift);
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -left_shift);
}

/// TFLite MultiplyByQuantizedMultiplierGreaterThanOne (used by SOFTMAX): left_shift >= 0,
/// one rounding (SRDHM's).
constexpr std::int32_t multiply_by_quantized_multiplier_greater_than_one(std::int32_t x,
                                                                         std::int32_t multiplier,
                                                                         int left_shift) {
  return saturating_rounding_doubling_high_mul(wrapping_shift_left(x, left_shift), multiplier);
}

/// gemmlowp RoundingHalfSum for int32: (a + b) / 2 rounded half away from zero.
constexpr std::int32_t rounding_half_sum(std::int32_t a, std::int32_t b) {
  const std::int64_t sum = static_cast<std::int64_t>(a) + static_cast<std::int64_t>(b);
  const std::int64_t sign = sum >= 0 ? 1 : -1;
  return static_cast<std::int32_t>((sum + sign) / 2);
}

/// Leading zero bits of a 32-bit value (32 for 0); constexpr, no intrinsic needed.
constexpr int count_leading_zeros(std::uint32_t x) {
  if (x == 0) return 32;
  int n = 0;
  if (x <= 0x0000FFFFu) { n += 16; x <<= 16; }
  if (x <= 0x00FFFFFFu) { n += 8; x <<= 8; }
  if (x <= 0x0FFFFFFFu) { n += 4; x <<= 4; }
  if (x <= 0x3FFFFFFFu) { n += 2; x <<= 2; }
  if (x <= 0x7FFFFFFFu) { n += 1; }
  return n;
}

}  // namespace kiln::quant
