// kiln/ir/quant.hpp — how the IR describes an int8 value: per-tensor affine quantisation.
//
// TFLite's int8 scheme (see quant/params.hpp for the kernel side):
//   activations: i8 values with per-tensor QuantParams on their Node: real = scale * (q - zero_point);
//   weights:     i8 constants, symmetric (zero point 0), their per-output-channel (or per-tensor)
//                scales an f32 input of the op ([out_c] or [1]) rather than an attribute, so a
//                Node stays small and constexpr-friendly and the scales can live in flash;
//   bias:        i32 [out_c], scale input_scale * weight_scale[c], zero point 0.
// A Node's `quant` is meaningful when its dtype is i8; scale 0 means "no parameters" (an int8
// graph input before kiln::as_quantized, or a plain int8 tensor), which the type rules of every
// op that needs them reject by name.
#pragma once

#include <cstdint>

namespace kiln {

/// Per-tensor quantisation of an i8 value: real = scale * (q - zero_point).
struct QuantParams {
  float scale = 0.f;  ///< 0: none
  std::int32_t zero_point = 0;

  constexpr bool valid() const { return scale > 0.f && zero_point >= -128 && zero_point <= 127; }
  friend constexpr bool operator==(const QuantParams& a, const QuantParams& b) {
    return a.scale == b.scale && a.zero_point == b.zero_point;
  }
  friend constexpr bool operator!=(const QuantParams& a, const QuantParams& b) { return !(a == b); }
};

/// TFLite's fixed output quantisation of int8 SOFTMAX: real = (q + 128) / 256.
inline constexpr QuantParams kSoftmaxOutputQuant{1.f / 256.f, -128};
/// TFLite's fixed output quantisation of int8 LOGISTIC (the same as SOFTMAX's) and TANH.
inline constexpr QuantParams kLogisticOutputQuant{1.f / 256.f, -128};
inline constexpr QuantParams kTanhOutputQuant{1.f / 128.f, 0};

}  // namespace kiln
