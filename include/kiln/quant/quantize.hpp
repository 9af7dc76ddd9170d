// kiln/quant/quantize.hpp — float <-> int8 conversion as TFLite's QUANTIZE / DEQUANTIZE.
//
//   quantize:   q = clamp(round(x / scale) + zero_point, -128, 127)
//               (division in float, round half away from zero: TfLiteRound = std::round)
//   dequantize: x = scale * (q - zero_point)   (in float)
//
// Used to build test data and, later, at the float boundary of a quantised graph.
#pragma once

#include <cstdint>

#include "../core/config.hpp"
#include "fixed_point.hpp"
#include "multiplier.hpp"
#include "params.hpp"

namespace kiln::quant {

/// One float to int8 with TFLite's rounding and saturation.
constexpr std::int8_t quantize_value(float x, TensorQuant q) {
  const float r = x / q.scale;
  if (r != r) return static_cast<std::int8_t>(q.zero_point);  // NaN: the real value 0 (TFLite: UB)
  // Saturate before converting: a huge (or infinite) quotient must not overflow int64.
  if (r >= 1e9f) return static_cast<std::int8_t>(kInt8Max);
  if (r <= -1e9f) return static_cast<std::int8_t>(kInt8Min);
  // Round half away from zero in float, not through round_half_away(double): same result (|r| <
  // 1e9 < 2^31 truncates exactly, and a float minus its truncation is exact), but no soft-double
  // calls on an FPU that only has single precision (Cortex-M4F: ~30x fewer instructions).
  const float a = r < 0.f ? -r : r;
  std::int32_t t = static_cast<std::int32_t>(a);
  if (a - static_cast<float>(t) >= 0.5f) ++t;
  std::int32_t v = (r < 0.f ? -t : t) + q.zero_point;
  v = v < kInt8Min ? kInt8Min : (v > kInt8Max ? kInt8Max : v);
  return static_cast<std::int8_t>(v);
}

/// One int8 back to float: scale * (q - zero_point).
constexpr float dequantize_value(std::int8_t v, TensorQuant q) {
  return q.scale * static_cast<float>(static_cast<std::int32_t>(v) - q.zero_point);
}

inline void quantize(const float* x, std::int8_t* out, index_t n, TensorQuant q) {
  for (index_t i = 0; i < n; ++i) out[i] = quantize_value(x[i], q);
}

inline void dequantize(const std::int8_t* x, float* out, index_t n, TensorQuant q) {
  for (index_t i = 0; i < n; ++i) out[i] = dequantize_value(x[i], q);
}

/// A float bias as TFLite's converter stores it: int32, scale input_scale * weight_scale,
/// zero point 0, rounded half away from zero (and saturated to int32).
constexpr std::int32_t quantize_bias_value(float b, float input_scale, float weight_scale) {
  const double r = static_cast<double>(b) /
                   (static_cast<double>(input_scale) * static_cast<double>(weight_scale));
  if (r >= 2147483647.0) return kInt32Max;
  if (r <= -2147483648.0) return kInt32Min;
  return static_cast<std::int32_t>(detail::round_half_away(r));
}

}  // namespace kiln::quant
