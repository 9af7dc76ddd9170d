// kiln/kernels/int8/add.hpp — TFLite int8 ADD (same-shape operands).
//
// Both inputs are brought to a common scale 2 * max(s1, s2) with 20 bits of headroom,
// added, and the sum rescaled to the output (TFLite reference_integer_ops::Add):
//   a_i = (q_i + input_i_offset) << 20                         exact
//   a_i = srdhm(a_i, m_i) / 2^-shift_i   (shift_i <= 0)        SRDHM ties to +inf, divide ties away from 0
//   y   = clamp(srdhm(a_1 + a_2, m_out) / 2^-shift_out + output_offset, act_min, act_max)
// make_add_params() derives the integers from the float scales exactly as TFLite's Prepare.
// Broadcasting (TFLite's BroadcastAdd4DSlow) is not implemented: shapes must be equal.
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "../../quant/fixed_point.hpp"
#include "../../quant/multiplier.hpp"
#include "../../quant/params.hpp"

namespace kiln::kernels::int8 {

struct AddParams {
  int left_shift = 20;  ///< TFLite's headroom for int8 ADD
  std::int32_t input1_offset = 0, input2_offset = 0;  ///< -zero points
  std::int32_t input1_multiplier = 0, input2_multiplier = 0;
  int input1_shift = 0, input2_shift = 0;  ///< <= 0
  std::int32_t output_multiplier = 0;
  int output_shift = 0;  ///< <= 0
  std::int32_t output_offset = 0;
  std::int32_t act_min = -128, act_max = 127;
};

/// TFLite's Prepare for int8 ADD: the multipliers are computed in double from the float scales.
constexpr AddParams make_add_params(quant::TensorQuant in1, quant::TensorQuant in2,
                                    quant::TensorQuant out, quant::ActivationRange act) {
  AddParams p;
  p.left_shift = 20;
  p.input1_offset = -in1.zero_point;
  p.input2_offset = -in2.zero_point;
  p.output_offset = out.zero_point;
  const double twice_max_input_scale =
      2.0 * static_cast<double>(in1.scale > in2.scale ? in1.scale : in2.scale);
  const quant::QuantizedMultiplier m1 = quant::quantize_multiplier_smaller_than_one(
      static_cast<double>(in1.scale) / twice_max_input_scale);
  const quant::QuantizedMultiplier m2 = quant::quantize_multiplier_smaller_than_one(
      static_cast<double>(in2.scale) / twice_max_input_scale);
  const quant::QuantizedMultiplier mo = quant::quantize_multiplier_smaller_than_one(
      twice_max_input_scale / (static_cast<double>(1 << p.left_shift) * static_cast<double>(out.scale)));
  p.input1_multiplier = m1.multiplier;
  p.input1_shift = m1.shift;
  p.input2_multiplier = m2.multiplier;
  p.input2_shift = m2.shift;
  p.output_multiplier = mo.multiplier;
  p.output_shift = mo.shift;
  p.act_min = act.min;
  p.act_max = act.max;
  return p;
}

/// One element of TFLite's int8 ADD.
constexpr std::int8_t add_one(const AddParams& p, std::int8_t a, std::int8_t b) {
  using quant::multiply_by_quantized_multiplier_smaller_than_one;
  const std::int32_t x1 = quant::wrapping_shift_left(p.input1_offset + a, p.left_shift);
  const std::int32_t x2 = quant::wrapping_shift_left(p.input2_offset + b, p.left_shift);
  const std::int32_t s1 = multiply_by_quantized_multiplier_smaller_than_one(x1, p.input1_multiplier, p.input1_shift);
  const std::int32_t s2 = multiply_by_quantized_multiplier_smaller_than_one(x2, p.input2_multiplier, p.input2_shift);
  std::int32_t v = multiply_by_quantized_multiplier_smaller_than_one(s1 + s2, p.output_multiplier, p.output_shift) +
                   p.output_offset;
  v = v < p.act_min ? p.act_min : (v > p.act_max ? p.act_max : v);
  return static_cast<std::int8_t>(v);
}

inline Status add(const AddParams& p, const Shape& input1_shape, const std::int8_t* input1,
                  const Shape& input2_shape, const std::int8_t* input2, const Shape& output_shape,
                  std::int8_t* output) {
  if (!(input1_shape == input2_shape) || !(input1_shape == output_shape) || !output_shape.valid())
    return Status(Errc::shape_mismatch) << "add (int8): inputs " << input1_shape << " and "
                                        << input2_shape << ", output " << output_shape
                                        << " must be equal (broadcasting is not implemented)";
  if (p.left_shift < 0 || p.left_shift > 20 || p.input1_shift > 0 || p.input2_shift > 0 ||
      p.output_shift > 0 || p.input1_shift < -31 || p.input2_shift < -31 || p.output_shift < -31 ||
      p.input1_offset < -127 || p.input1_offset > 128 || p.input2_offset < -127 ||
      p.input2_offset > 128 || p.act_min < -128 || p.act_max > 127 || p.act_min > p.act_max)
    return Status(Errc::invalid_argument)
           << "add (int8): left_shift " << p.left_shift << " must be in [0, 20], shifts ("
           << p.input1_shift << ", " << p.input2_shift << ", " << p.output_shift
           << ") in [-31, 0], offsets minus int8 zero points, clamp an int8 range";
  const index_t n = output_shape.numel();
  for (index_t i = 0; i < n; ++i) output[i] = add_one(p, input1[i], input2[i]);
  return Status();
}

}  // namespace kiln::kernels::int8
