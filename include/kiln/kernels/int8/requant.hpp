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
    std::int32_t v = quant::multiply_by_quantized_multiplier(acc, multiplier[k], shift[k]);
    v += output_offset;
    v = v < act_min ? act_min : v;
    v = v > act_max ? act_max : v;
    return static_cast<std::int8_t>(v);
  }
};

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
