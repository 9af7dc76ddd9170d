// kiln/kernels/int8/fully_connected.hpp — TFLite int8 FULLY_CONNECTED.
//
//   out[b, o] = requant( sum_i (in[b, i] + input_offset) * w[o, i] + bias[o], channel o )
//
// Layouts as in TFLite: weights [out, in] (row o is output o's weights, contiguous),
// input [..., in] flattened to batches x in, output [batches, out] (any shape with
// batches * out elements and out as its last extent). Weights are symmetric int8
// (zero point 0); multipliers per output channel or per tensor (OutputStage::per_channel).
// bias may be null (no bias).
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "dot.hpp"
#include "requant.hpp"

namespace kiln::kernels::int8 {

struct FullyConnectedParams {
  std::int32_t input_offset = 0;  ///< -input_zero_point
  OutputStage output;
};

inline Status fully_connected(const FullyConnectedParams& p, const Shape& input_shape,
                              const std::int8_t* input, const Shape& weight_shape,
                              const std::int8_t* weights, const std::int32_t* bias,
                              const Shape& output_shape, std::int8_t* output) {
  if (weight_shape.rank() != 2 || !weight_shape.valid() || !input_shape.valid() ||
      !output_shape.valid() || input_shape.rank() < 1 || output_shape.rank() < 1)
    return Status(Errc::shape_mismatch) << "fully_connected: weights " << weight_shape
                                        << " must be [out, in]; input " << input_shape
                                        << ", output " << output_shape;
  const index_t n_out = weight_shape[0], n_in = weight_shape[1];
  const index_t batches = n_in > 0 ? input_shape.numel() / n_in : 0;
  if (n_in == 0 || input_shape.back() != n_in || output_shape.back() != n_out ||
      output_shape.numel() != batches * n_out)
    return Status(Errc::shape_mismatch)
           << "fully_connected: input " << input_shape << ", weights " << weight_shape
           << " and output " << output_shape << " do not agree (want input [..., " << n_in
           << "], output [batches, " << n_out << "])";
  if (Status s = detail::check_output_stage("fully_connected", p.output, n_out, p.input_offset); !s)
    return s;

  for (index_t b = 0; b < batches; ++b) {
    const std::int8_t* x = input + b * n_in;
    std::int8_t* y = output + b * n_out;
    index_t o = 0;
    // Eight output rows per pass (two 4-row dot tiles, each input vector loaded once per
    // four weight rows), requantised together; then groups of four, then single rows.
    for (; o + 8 <= n_out; o += 8) {
      std::int32_t acc[8];
      for (int r = 0; r < 8; ++r) acc[r] = bias ? bias[o + r] : 0;
      dot4_with_offset(x, weights + o * n_in, n_in, n_in, p.input_offset, acc);
      dot4_with_offset(x, weights + (o + 4) * n_in, n_in, n_in, p.input_offset, acc + 4);
      requantize8(acc, o, p.output, y + o);
    }
    for (; o + 4 <= n_out; o += 4) {
      std::int32_t acc[4];
      for (int r = 0; r < 4; ++r) acc[r] = bias ? bias[o + r] : 0;
      dot4_with_offset(x, weights + o * n_in, n_in, n_in, p.input_offset, acc);
      for (int r = 0; r < 4; ++r) y[o + r] = p.output.apply(acc[r], o + r);
    }
    for (; o < n_out; ++o) {
      DotAccumulator acc(p.input_offset, bias ? bias[o] : 0);
      acc.add(x, weights + o * n_in, n_in);
      y[o] = p.output.apply(acc.value(), o);
    }
  }
  return Status();
}

}  // namespace kiln::kernels::int8
