// kiln/quant/multiplier.hpp — real scale factors as Q0.31 multiplier + shift.
//
// TFLite's QuantizeMultiplier, constexpr: frexp splits M into q * 2^shift with
// |q| in [0.5, 1); q is rounded to Q0.31 (round half away from zero, like
// TfLiteRound = std::round). Edge cases, as in TFLite:
//   - M == 0 gives {0, 0};
//   - q rounding up to 2^31 (M just below a power of two) gives {2^30, shift + 1};
//   - shift < -31 (|M| < ~2^-32) flushes to {0, 0}: every result would be 0 anyway,
//     and right shifts by more than 31 are avoided.
// Computed in double, exactly as TFLite does, so multipliers match its bytes.
#pragma once

#include <cstdint>

namespace kiln::quant {

/// M ~= multiplier * 2^(shift - 31); multiplier in [2^30, 2^31) (or 0), shift > 0 means
/// a left shift. The pair the int8 kernels consume (TFLite's output_multiplier/output_shift).
struct QuantizedMultiplier {
  std::int32_t multiplier = 0;
  int shift = 0;
};

namespace detail {
// frexp for finite doubles, constexpr: d = q * 2^e with |q| in [0.5, 1). Scaling by two is
// exact in binary floating point, so q is exactly std::frexp's.
constexpr double frexp_constexpr(double d, int& e) {
  e = 0;
  if (d == 0.0) return 0.0;
  double a = d < 0 ? -d : d;
  while (a >= 1.0) { a *= 0.5; ++e; }
  while (a < 0.5) { a *= 2.0; --e; }
  return d < 0 ? -a : a;
}
// std::round for |x| < 2^62, constexpr: half away from zero. x - trunc(x) is exact.
constexpr std::int64_t round_half_away(double x) {
  const bool neg = x < 0;
  const double a = neg ? -x : x;
  std::int64_t t = static_cast<std::int64_t>(a);
  if (a - static_cast<double>(t) >= 0.5) ++t;
  return neg ? -t : t;
}
}  // namespace detail

/// TFLite QuantizeMultiplier (double-rounding build). Valid for any finite M; a
/// |M| >= 2^31 gives a shift above 31 that the kernels reject.
constexpr QuantizedMultiplier quantize_multiplier(double real_multiplier) {
  if (real_multiplier == 0.0) return {};
  int shift = 0;
  const double q = detail::frexp_constexpr(real_multiplier, shift);
  std::int64_t q_fixed = detail::round_half_away(q * static_cast<double>(std::int64_t{1} << 31));
  // |q| < 1, so rounding reaches at most 2^31: renormalise to 2^30 with one more bit of shift.
  if (q_fixed == (std::int64_t{1} << 31) || q_fixed == -(std::int64_t{1} << 31)) {
    q_fixed /= 2;
    ++shift;
  }
  if (shift < -31) return {};
  return {static_cast<std::int32_t>(q_fixed), shift};
}

/// TFLite QuantizeMultiplierSmallerThanOneExp (ADD's multipliers): for 0 < M < 1, shift <= 0.
constexpr QuantizedMultiplier quantize_multiplier_smaller_than_one(double real_multiplier) {
  return quantize_multiplier(real_multiplier);
}

/// TFLite QuantizeMultiplierGreaterThanOne (SOFTMAX's input multiplier): for M > 1, shift >= 0.
constexpr QuantizedMultiplier quantize_multiplier_greater_than_one(double real_multiplier) {
  return quantize_multiplier(real_multiplier);
}

/// Output scale factor of a convolution / fully connected channel, as TFLite computes it
/// (kernel_util.cc PopulateConvolutionQuantizationParams): the float scales are widened to
/// double *before* multiplying, so the product is the exact product of the two floats.
constexpr double conv_effective_scale(float input_scale, float weight_scale, float output_scale) {
  return static_cast<double>(input_scale) * static_cast<double>(weight_scale) /
         static_cast<double>(output_scale);
}

}  // namespace kiln::quant
