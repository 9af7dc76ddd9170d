// kiln/kernels/int8/mul.hpp — TFLite int8 MUL (reference_integer_ops::MulElementwise).
//
//   y = clamp(output_offset + MultiplyByQuantizedMultiplier((a + input1_offset) * (b + input2_offset),
//             output_multiplier, output_shift), act_min, act_max)
// The product of two offset int8 values fits int32 exactly (|.| <= 255 * 255); the one rounding
// step is the double-rounding MultiplyByQuantizedMultiplier every TFLite int8 kernel uses.
// make_mul_params() is TFLite's Prepare: in1_scale * in2_scale / out_scale in double, then
// QuantizeMultiplier. Broadcasting is the caller's index arithmetic (runtime/int8_steps.hpp).
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../quant/fixed_point.hpp"
#include "../../quant/multiplier.hpp"
#include "../../quant/params.hpp"

namespace kiln::kernels::int8 {

struct MulParams {
  std::int32_t input1_offset = 0, input2_offset = 0;  ///< -zero points
  std::int32_t output_offset = 0;
  std::int32_t output_multiplier = 0;
  int output_shift = 0;  ///< in [-31, 31]
  std::int32_t act_min = -128, act_max = 127;
};

/// TFLite's Prepare for int8 MUL (mul_common.cc CalculateOpDataMul).
constexpr MulParams make_mul_params(quant::TensorQuant in1, quant::TensorQuant in2, quant::TensorQuant out,
                                    quant::ActivationRange act) {
  MulParams p;
  p.input1_offset = -in1.zero_point;
  p.input2_offset = -in2.zero_point;
  p.output_offset = out.zero_point;
  const quant::QuantizedMultiplier m = quant::quantize_multiplier(
      static_cast<double>(in1.scale) * static_cast<double>(in2.scale) / static_cast<double>(out.scale));
  p.output_multiplier = m.multiplier;
  p.output_shift = m.shift;
  p.act_min = act.min;
  p.act_max = act.max;
  return p;
}

/// One element of TFLite's int8 MUL.
constexpr std::int8_t mul_one(const MulParams& p, std::int8_t a, std::int8_t b) {
  const std::int32_t prod = (p.input1_offset + a) * (p.input2_offset + b);
  std::int32_t v = quant::multiply_by_quantized_multiplier(prod, p.output_multiplier, p.output_shift) + p.output_offset;
  v = v < p.act_min ? p.act_min : (v > p.act_max ? p.act_max : v);
  return static_cast<std::int8_t>(v);
}

}  // namespace kiln::kernels::int8
