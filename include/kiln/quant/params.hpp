// kiln/quant/params.hpp — quantisation parameters of TFLite's int8 scheme.
//
//   activations: int8, per tensor, asymmetric:  real = scale * (q - zero_point)
//   weights:     int8, per output channel (or per tensor), symmetric: zero_point = 0
//   bias:        int32, scale = input_scale * weight_scale[c], zero_point = 0
//
// The kernels never see floats: these types exist to derive, once, the integers
// the kernels take (multipliers, shifts, offsets, clamp bounds) the way TFLite's
// Prepare() does, so a converted model gives TFLite's bytes.
#pragma once

#include <cstdint>

#include "../core/config.hpp"
#include "multiplier.hpp"

namespace kiln::quant {

inline constexpr std::int32_t kInt8Min = -128;
inline constexpr std::int32_t kInt8Max = 127;

/// Per-tensor asymmetric quantisation of an int8 activation tensor.
struct TensorQuant {
  float scale = 1.f;
  std::int32_t zero_point = 0;
};

/// Per-output-channel symmetric quantisation of int8 weights (zero point 0 by the
/// TFLite int8 spec). `channels == 1` is per-tensor quantisation.
struct ChannelQuant {
  const float* scales = nullptr;
  index_t channels = 0;
};

/// Fused activation of a TFLite op, applied as a clamp of the int8 output.
enum class Activation : std::uint8_t { none, relu, relu6, relu_n1_to_1 };

struct ActivationRange {
  std::int32_t min = kInt8Min;
  std::int32_t max = kInt8Max;
};

/// TFLite CalculateActivationRangeQuantized for int8: the real bounds 0, 6, -1, 1
/// quantised with the output's parameters (zero_point + round(f / scale), the
/// division in float and the rounding half away from zero), intersected with [-128, 127].
constexpr ActivationRange activation_range(Activation act, TensorQuant out) {
  auto quantize = [out](float f) {
    return out.zero_point + static_cast<std::int32_t>(detail::round_half_away(f / out.scale));
  };
  auto max_i = [](std::int32_t a, std::int32_t b) { return a > b ? a : b; };
  auto min_i = [](std::int32_t a, std::int32_t b) { return a < b ? a : b; };
  switch (act) {
    case Activation::none: return {kInt8Min, kInt8Max};
    case Activation::relu: return {max_i(kInt8Min, quantize(0.f)), kInt8Max};
    case Activation::relu6: return {max_i(kInt8Min, quantize(0.f)), min_i(kInt8Max, quantize(6.f))};
    case Activation::relu_n1_to_1:
      return {max_i(kInt8Min, quantize(-1.f)), min_i(kInt8Max, quantize(1.f))};
  }
  return {};
}

/// Per-channel output multipliers of a conv / depthwise conv / fully connected layer
/// (TFLite PopulateConvolutionQuantizationParams): for each output channel c,
/// quantize_multiplier(input_scale * weight_scale[c] / output_scale). A per-tensor
/// weight scale (w.channels == 1) is broadcast over the `channels` outputs.
/// Writes `channels` entries to multiplier[] and shift[].
constexpr void conv_output_multipliers(TensorQuant input, ChannelQuant w, TensorQuant output,
                                       index_t channels, std::int32_t* multiplier,
                                       std::int32_t* shift) {
  for (index_t c = 0; c < channels; ++c) {
    const float ws = w.scales[w.channels == 1 ? 0 : c];
    const QuantizedMultiplier q =
        quantize_multiplier(conv_effective_scale(input.scale, ws, output.scale));
    multiplier[c] = q.multiplier;
    shift[c] = q.shift;
  }
}

}  // namespace kiln::quant
