// kiln/kernels/int8/softmax.hpp — TFLite int8 SOFTMAX (int8 in, int8 out) over the last axis.
//
// TFLite's fixed-point scheme (reference_ops::Softmax, quantised):
//   diff  = q - max(row)                          <= 0, integer
//   skip  when diff < diff_min (exp underflows to nothing the output can show)
//   z     = srdhm(diff << input_left_shift, input_multiplier)     beta*scale*diff as Q5.26
//   e     = exp_on_negative_values<5>(z)                          Q0.31
//   sum   = sum over the row of rescale(e) to Q12.19               (rounding divide by 2^12)
//   r     = get_reciprocal(sum): 1/sum = r.scale * 2^-r.num_bits_over_unit
//   y     = rounding_divide_by_pot(srdhm(r.scale, e), num_bits_over_unit + 31 - 8) - 128
//           clamped to [-128, 127]; skipped elements give -128
// The output is always scale 1/256, zero point -128 (TFLite requires it).
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "../../quant/fixed_point.hpp"
#include "../../quant/fixed_point_exp.hpp"
#include "../../quant/multiplier.hpp"

namespace kiln::kernels::int8 {

struct SoftmaxParams {
  std::int32_t input_multiplier = 0;  ///< beta * input_scale * 2^26 as Q0.31 + left shift
  int input_left_shift = 0;           ///< >= 0
  std::int32_t diff_min = 0;          ///< <= 0: differences below it contribute 0
};

inline constexpr int kSoftmaxScaledDiffIntegerBits = 5;   // Q5.26 exp input
inline constexpr int kSoftmaxAccumulationIntegerBits = 12;  // Q12.19 sum of exps

/// TFLite PreprocessSoftmaxScaling + CalculateInputRadius (double-rounding build), for beta
/// (usually 1) and the input scale, computed in double as TFLite does.
constexpr SoftmaxParams make_softmax_params(float beta, float input_scale) {
  constexpr int kBits = kSoftmaxScaledDiffIntegerBits;
  const double max_real_multiplier = static_cast<double>((std::int64_t{1} << 31) - 1);
  double real = static_cast<double>(beta) * static_cast<double>(input_scale) *
                static_cast<double>(std::int64_t{1} << (31 - kBits));
  real = real < max_real_multiplier ? real : max_real_multiplier;
  const quant::QuantizedMultiplier m = quant::quantize_multiplier_greater_than_one(real);
  SoftmaxParams p;
  p.input_multiplier = m.multiplier;
  p.input_left_shift = m.shift;
  // The largest |diff| whose rescaled value still fits Q5.26: floor of
  // (2^5 - 1) * 2^26 / 2^left_shift; anything further from the max is skipped.
  const double max_input_rescaled = 1.0 * ((1 << kBits) - 1) *
                                    static_cast<double>(std::int64_t{1} << (31 - kBits)) /
                                    static_cast<double>(std::int64_t{1} << m.shift);
  p.diff_min = -static_cast<std::int32_t>(max_input_rescaled);  // floor: the value is positive
  return p;
}

inline Status softmax(const SoftmaxParams& p, const Shape& input_shape, const std::int8_t* input,
                      const Shape& output_shape, std::int8_t* output) {
  if (!(input_shape == output_shape) || !input_shape.valid() || input_shape.rank() < 1)
    return Status(Errc::shape_mismatch) << "softmax (int8): input " << input_shape << " and output "
                                        << output_shape << " must be equal, rank >= 1";
  if (p.input_left_shift < 0 || p.input_left_shift > 31 || p.diff_min > 0)
    return Status(Errc::invalid_argument) << "softmax (int8): input_left_shift " << p.input_left_shift
                                          << " must be in [0, 31] and diff_min " << p.diff_min << " <= 0";
  using namespace quant;
  const index_t depth = input_shape.back();
  // Each exp adds at most 2^19 to the Q12.19 sum: 4096 equal inputs would overflow int32.
  if (depth > 4095)
    return Status(Errc::not_supported) << "softmax (int8): rows of " << depth
                                       << " elements overflow the Q12.19 sum (max 4095), shape " << input_shape;
  const index_t rows = depth > 0 ? input_shape.numel() / depth : 0;
  for (index_t r = 0; r < rows; ++r) {
    const std::int8_t* x = input + r * depth;
    std::int8_t* y = output + r * depth;
    std::int32_t max_in_row = -128;
    for (index_t c = 0; c < depth; ++c) max_in_row = x[c] > max_in_row ? x[c] : max_in_row;

    auto exp_of = [&](std::int32_t diff) {
      const std::int32_t z =
          multiply_by_quantized_multiplier_greater_than_one(diff, p.input_multiplier, p.input_left_shift);
      return exp_on_negative_values<kSoftmaxScaledDiffIntegerBits>(z);
    };
    std::int32_t sum_of_exps = 0;  // Q12.19
    for (index_t c = 0; c < depth; ++c) {
      const std::int32_t diff = x[c] - max_in_row;
      if (diff >= p.diff_min)
        sum_of_exps = wrapping_add(sum_of_exps, rounding_divide_by_pot(exp_of(diff), kSoftmaxAccumulationIntegerBits));
    }
    // The row's maximum contributes exp(0) = 1, so sum_of_exps > 0.
    const Reciprocal inv = get_reciprocal(sum_of_exps, kSoftmaxAccumulationIntegerBits);
    for (index_t c = 0; c < depth; ++c) {
      const std::int32_t diff = x[c] - max_in_row;
      std::int32_t v = -128;
      if (diff >= p.diff_min) {
        // A sum of 2^28 or more (>= 512 large terms) asks for a shift above 31, where TFLite's
        // RoundingDivideByPOT is undefined; the exact quotient of an int32 by 2^32 or more
        // rounds to 0, so that is what it gives here.
        const int exponent = inv.num_bits_over_unit + 31 - 8;
        const std::int32_t unsat =
            exponent > 31 ? 0
                          : rounding_divide_by_pot(
                                saturating_rounding_doubling_high_mul(inv.scale, exp_of(diff)), exponent);
        v = unsat - 128;
        v = v < -128 ? -128 : (v > 127 ? 127 : v);
      }
      y[c] = static_cast<std::int8_t>(v);
    }
  }
  return Status();
}

}  // namespace kiln::kernels::int8
