// kiln/quant/fixed_point_logistic.hpp — gemmlowp's fixed-point logistic and tanh (int8 LOGISTIC
// and TANH), on int32 raws as quant/fixed_point_exp.hpp:
//   logistic(a) = 1 / (1 + exp(-|a|)) for a > 0, 1 - that for a < 0, exactly 1/2 at 0;
//   tanh(a)     = (1 - exp(-2|a|)) / (1 + exp(-2|a|)) with a's sign, exactly 0 at 0.
// The input is Q(kIntegerBits).(31 - kIntegerBits) (TFLite uses 4), the result Q0.31. Every
// operation (wrapping int32 adds, SRDHM products, saturating rescales) is gemmlowp's, because
// TFLite's int8 bytes depend on each rounding.
#pragma once

#include <cstdint>

#include "fixed_point_exp.hpp"

namespace kiln::quant {

/// (1 - x) / (1 + x) for a Q0.31 raw x in [0, 1); returns Q0.31 (gemmlowp
/// one_minus_x_over_one_plus_x_for_x_in_0_1): 2 / (1 + x) - 1, rescaled from Q2.29.
constexpr std::int32_t one_minus_x_over_one_plus_x_for_x_in_0_1(std::int32_t a) {
  return saturating_rounding_multiply_by_pot(wrapping_sub(two_over_one_plus_x_q2(a), std::int32_t{1} << 29), 2);
}

/// gemmlowp::logistic of a Q(kIntegerBits) raw; Q0.31 result.
template <int kIntegerBits>
constexpr std::int32_t logistic(std::int32_t a) {
  if (a == 0) return std::int32_t{1} << 30;  // one half
  const std::int32_t abs_a = a > 0 ? a : wrapping_sub(0, a);
  // exp(-|a|) with the input's integer bits, then 1 / (1 + .).
  const std::int32_t positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values<kIntegerBits>(wrapping_sub(0, abs_a)));
  return a > 0 ? positive : wrapping_sub(kInt32Max, positive);  // F0::One() - positive
}

/// gemmlowp::tanh of a Q(kIntegerBits) raw; Q0.31 result.
template <int kIntegerBits>
constexpr std::int32_t tanh(std::int32_t a) {
  if (a == 0) return 0;
  const std::int32_t n = a < 0 ? a : wrapping_sub(0, a);  // -|a|
  // ExactMulByPot<1> keeps the raw and adds an integer bit: exp(2n) is exp_on_negative_values
  // of the same raw read with kIntegerBits + 1.
  const std::int32_t t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values<kIntegerBits + 1>(n));
  return a < 0 ? wrapping_sub(0, t) : t;
}

}  // namespace kiln::quant
