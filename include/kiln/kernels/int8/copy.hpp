// kiln/kernels/int8/copy.hpp — the int8 operators that move bytes along one axis: PAD,
// STRIDED_SLICE (any step, negative included) and CONCATENATION (with requantisation).
//
// A tensor is seen as [outer, length, inner] around the axis; each kernel copies runs of
// `inner` bytes. PAD fills with the output zero point (TFLite's int8 PAD: real 0). TFLite's
// int8 CONCATENATION requires every input to share the output's quantisation and then only
// copies; an input with other parameters is requantised here with TFLite's Requantize
// arithmetic (the int8 -> int8 QUANTIZE): zp_out + MultiplyByQuantizedMultiplier(q - zp_in,
// in_scale / out_scale), saturated.
#pragma once

#include <cstdint>
#include <cstring>

#include "../../core/config.hpp"
#include "../../core/shape.hpp"
#include "../../core/status.hpp"
#include "../../quant/fixed_point.hpp"
#include "../../quant/multiplier.hpp"
#include "../../quant/params.hpp"

namespace kiln::kernels::int8 {

/// TFLite's int8 Requantize of one tensor (identity when the parameters are equal).
struct Requant {
  bool identity = true;
  std::int32_t input_zero_point = 0, output_zero_point = 0;
  std::int32_t multiplier = 0;
  int shift = 0;
};

constexpr Requant make_requant(quant::TensorQuant in, quant::TensorQuant out) {
  Requant r;
  r.identity = in.scale == out.scale && in.zero_point == out.zero_point;
  r.input_zero_point = in.zero_point;
  r.output_zero_point = out.zero_point;
  const quant::QuantizedMultiplier m =
      quant::quantize_multiplier(static_cast<double>(in.scale) / static_cast<double>(out.scale));
  r.multiplier = m.multiplier;
  r.shift = m.shift;
  return r;
}

constexpr std::int8_t requantize_one(const Requant& r, std::int8_t q) {
  const std::int32_t v =
      quant::multiply_by_quantized_multiplier(q - r.input_zero_point, r.multiplier, r.shift) + r.output_zero_point;
  return static_cast<std::int8_t>(v < -128 ? -128 : v > 127 ? 127 : v);
}

/// n elements of x requantised (or copied) into y.
inline void requantize(const Requant& r, const std::int8_t* x, std::int8_t* y, index_t n) {
  if (r.identity) {
    std::memcpy(y, x, static_cast<std::size_t>(n));
    return;
  }
  for (index_t i = 0; i < n; ++i) y[i] = requantize_one(r, x[i]);
}

/// [outer, length, inner] around `axis` of shape s.
struct AxisSplit {
  index_t outer = 1, length = 1, inner = 1;
};
constexpr AxisSplit split_at(const Shape& s, int axis) {
  AxisSplit a;
  for (int d = 0; d < s.rank(); ++d) {
    if (d < axis) a.outer *= s[d];
    else if (d == axis) a.length = s[d];
    else a.inner *= s[d];
  }
  return a;
}

/// PAD along one axis: `before` and `after` entries of `value` around x (shape xs).
inline Status pad_axis(const Shape& xs, int axis, index_t before, index_t after, std::int8_t value,
                       const std::int8_t* x, std::int8_t* y) {
  if (axis < 0 || axis >= xs.rank() || before < 0 || after < 0)
    return Status(Errc::invalid_argument) << "pad (int8): axis " << axis << " of " << xs << ", padding "
                                          << static_cast<long long>(before) << ", " << static_cast<long long>(after);
  const AxisSplit a = split_at(xs, axis);
  const auto fill = [&](index_t n) {
    std::memset(y, static_cast<unsigned char>(value), static_cast<std::size_t>(n));
    y += n;
  };
  for (index_t o = 0; o < a.outer; ++o) {
    fill(before * a.inner);
    std::memcpy(y, x, static_cast<std::size_t>(a.length * a.inner));
    y += a.length * a.inner;
    x += a.length * a.inner;
    fill(after * a.inner);
  }
  return Status();
}

/// STRIDED_SLICE along one axis: entries start, start + step, ... (count of them; step may be
/// negative) of x (shape xs).
inline Status slice_axis(const Shape& xs, int axis, index_t start, index_t step, index_t count,
                         const std::int8_t* x, std::int8_t* y) {
  if (axis < 0 || axis >= xs.rank() || step == 0 || count < 0 ||
      (count > 0 && (start < 0 || start >= xs[axis] || start + (count - 1) * step < 0 ||
                     start + (count - 1) * step >= xs[axis])))
    return Status(Errc::invalid_argument) << "strided slice (int8): start " << static_cast<long long>(start)
                                          << ", step " << static_cast<long long>(step) << ", count "
                                          << static_cast<long long>(count) << " outside axis " << axis << " of " << xs;
  const AxisSplit a = split_at(xs, axis);
  for (index_t o = 0; o < a.outer; ++o)
    for (index_t j = 0; j < count; ++j) {
      std::memcpy(y, x + (o * a.length + start + j * step) * a.inner, static_cast<std::size_t>(a.inner));
      y += a.inner;
    }
  return Status();
}

/// CONCATENATION of a (shape as) and b (shape bs) along `axis`, each requantised to the output.
inline Status concat2(const Shape& as, const std::int8_t* a, const Requant& ra, const Shape& bs, const std::int8_t* b,
                      const Requant& rb, int axis, std::int8_t* y) {
  bool ok = as.rank() == bs.rank() && axis >= 0 && axis < as.rank();
  for (int d = 0; ok && d < as.rank(); ++d) ok = d == axis || as[d] == bs[d];
  if (!ok)
    return Status(Errc::shape_mismatch) << "concatenation (int8): " << as << " and " << bs << " along axis " << axis;
  const AxisSplit sa = split_at(as, axis), sb = split_at(bs, axis);
  const index_t na = sa.length * sa.inner, nb = sb.length * sb.inner;
  for (index_t o = 0; o < sa.outer; ++o) {
    requantize(ra, a + o * na, y, na);
    y += na;
    requantize(rb, b + o * nb, y, nb);
    y += nb;
  }
  return Status();
}

}  // namespace kiln::kernels::int8
