// kiln/quant/fixed_point_exp.hpp — gemmlowp's fixed-point exp and reciprocal (int8 SOFTMAX).
//
// Values are int32 "raws" of fixed-point numbers Q(I).(31-I): raw = real * 2^(31-I).
// The operations follow gemmlowp/fixedpoint/fixedpoint.h exactly, because TFLite's
// int8 softmax bytes depend on every rounding:
//   - a product of Q(a) and Q(b) is SRDHM of the raws, giving Q(a+b);
//   - sums are wrapping int32 adds of the raws (gemmlowp does not saturate int32 adds);
//   - Rescale<J> of a Q(I) multiplies the raw by 2^(I-J) (saturating left, or
//     rounding-divide ties away from zero).
#pragma once

#include <cstdint>

#include "fixed_point.hpp"

namespace kiln::quant {

/// exp(a) for a Q0.31 raw a in [-1/4, 0): a 4th-order Taylor expansion around -1/8
/// (gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl). Returns Q0.31.
constexpr std::int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(std::int32_t a) {
  constexpr std::int32_t kExpMinusOneEighth = 1895147668;  // exp(-1/8) in Q0.31
  constexpr std::int32_t kOneThird = 715827883;            // 1/3 in Q0.31
  const std::int32_t x = wrapping_add(a, std::int32_t{1} << 28);  // x = a + 1/8
  const std::int32_t x2 = saturating_rounding_doubling_high_mul(x, x);
  const std::int32_t x3 = saturating_rounding_doubling_high_mul(x2, x);
  const std::int32_t x4 = saturating_rounding_doubling_high_mul(x2, x2);
  const std::int32_t x4_over_4 = rounding_divide_by_pot(x4, 2);
  // (x^4/4 + x^3) / 3 + x^2, then halved: x^4/24 + x^3/6 + x^2/2.
  const std::int32_t poly = rounding_divide_by_pot(
      wrapping_add(saturating_rounding_doubling_high_mul(wrapping_add(x4_over_4, x3), kOneThird), x2),
      1);
  return wrapping_add(kExpMinusOneEighth,
                      saturating_rounding_doubling_high_mul(kExpMinusOneEighth, wrapping_add(x, poly)));
}

/// exp(a) for a <= 0 given as a Q(kIntegerBits).(31-kIntegerBits) raw; returns Q0.31
/// (gemmlowp exp_on_negative_values). a is split into a remainder in [-1/4, 0), done by
/// the polynomial above, and a multiple of 1/4 whose binary digits select the factors
/// exp(-1/4), exp(-1/2), exp(-1), ... exp(-16) (a "barrel shifter" of constants).
template <int kIntegerBits>
constexpr std::int32_t exp_on_negative_values(std::int32_t a) {
  static_assert(kIntegerBits >= 0 && kIntegerBits <= 30, "fixed-point format");
  constexpr int kFractionalBits = 31 - kIntegerBits;
  static_assert(kFractionalBits >= 2, "exp needs 1/4 to be representable");
  constexpr std::int32_t kOneQuarter = std::int32_t{1} << (kFractionalBits - 2);
  constexpr std::int32_t kMask = kOneQuarter - 1;
  const std::int32_t a_mod_quarter_minus_one_quarter = wrapping_sub(a & kMask, kOneQuarter);
  std::int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
      saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, kIntegerBits));
  const std::int32_t remainder = wrapping_sub(a_mod_quarter_minus_one_quarter, a);

  // exp(-2^e) in Q0.31 for e = -2 .. 4, as gemmlowp's GEMMLOWP_EXP_BARREL_SHIFTER constants.
  constexpr std::int32_t kFactors[7] = {1672461947, 1302514674, 790015084, 290630308,
                                        39332535,   720401,     242};
  for (int i = 0; i < 7; ++i) {
    const int exponent = i - 2;
    if (kIntegerBits > exponent) {
      const int bit = kFractionalBits + exponent;
      if (remainder & (std::int32_t{1} << bit))
        result = saturating_rounding_doubling_high_mul(result, kFactors[i]);
    }
  }
  if constexpr (kIntegerBits > 5) {
    // Below -32 every factor has underflowed: gemmlowp returns exactly zero.
    constexpr std::int32_t kClamp = -(std::int32_t{1} << (36 - kIntegerBits));  // -32
    if (a < kClamp) result = 0;
  }
  if (a == 0) result = kInt32Max;  // exp(0) = 1, the largest Q0.31
  return result;
}

/// 2 / (1 + x) for a Q0.31 raw x in [0, 1), as a Q2.29 raw: gemmlowp's Newton-Raphson division
/// shared by one_over_one_plus_x_for_x_in_0_1 and one_minus_x_over_one_plus_x_for_x_in_0_1 —
/// three steps on the half denominator (1 + x) / 2, started at 48/17 - 32/17 * d.
constexpr std::int32_t two_over_one_plus_x_q2(std::int32_t a) {
  const std::int32_t half_denominator = rounding_half_sum(a, kInt32Max);  // Q0.31
  constexpr std::int32_t k48Over17 = 1515870810;      // Q2.29
  constexpr std::int32_t kNeg32Over17 = -1010580540;  // Q2.29
  constexpr std::int32_t kOneQ2 = std::int32_t{1} << 29;
  std::int32_t x = wrapping_add(k48Over17, saturating_rounding_doubling_high_mul(half_denominator, kNeg32Over17));
  for (int i = 0; i < 3; ++i) {
    const std::int32_t half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x);  // Q2
    const std::int32_t one_minus = wrapping_sub(kOneQ2, half_denominator_times_x);                           // Q2
    // x * one_minus is Q4.27; Rescale<2> multiplies the raw by 4, saturating.
    x = wrapping_add(x, saturating_rounding_multiply_by_pot(saturating_rounding_doubling_high_mul(x, one_minus), 2));
  }
  return x;
}

/// 1 / (1 + x) for a Q0.31 raw x in [0, 1); returns Q0.31 (gemmlowp
/// one_over_one_plus_x_for_x_in_0_1).
constexpr std::int32_t one_over_one_plus_x_for_x_in_0_1(std::int32_t a) {
  // ExactMulByPot<-1> reinterprets Q2.29 as Q1.30 (x / 2), Rescale<0> multiplies the raw by 2.
  return saturating_rounding_multiply_by_pot(two_over_one_plus_x_q2(a), 1);
}

/// TFLite GetReciprocal: 1 / x for a positive Q(x_integer_digits) raw x, as a Q0.31
/// scale in [0.5, 1] and num_bits_over_unit such that 1/x = scale * 2^-num_bits_over_unit.
/// x is normalised by its leading zeros to 1 + f, f in [0, 1), then 1 / (1 + f).
struct Reciprocal {
  std::int32_t scale = 0;
  int num_bits_over_unit = 0;
};
constexpr Reciprocal get_reciprocal(std::int32_t x, int x_integer_digits) {
  const int headroom_plus_one = count_leading_zeros(static_cast<std::uint32_t>(x));
  const std::int32_t shifted_minus_one = static_cast<std::int32_t>(
      (static_cast<std::uint32_t>(x) << headroom_plus_one) - (std::uint32_t{1} << 31));
  return {one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), x_integer_digits - headroom_plus_one};
}

}  // namespace kiln::quant
