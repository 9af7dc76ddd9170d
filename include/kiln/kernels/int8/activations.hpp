// kiln/kernels/int8/activations.hpp — TFLite int8 LOGISTIC, TANH and HARD_SWISH.
//
// The arithmetic is TFLite Micro's reference int8 path, which TFLite's reference kernels share:
//   LOGISTIC, TANH (reference_integer_ops::Logistic / Tanh, TFLM logistic_common.cc / tanh.cc
//     Prepare): d = q - input_zero_point; |d| >= input_range_radius saturates to -128 / 127;
//     else x = MultiplyByQuantizedMultiplier(d, input_multiplier, input_left_shift) as Q4.27,
//     y = gemmlowp logistic / tanh of x (Q0.31), rounding-divided by 2^23 (logistic: output
//     scale 1/256, then - 128) or 2^24 (tanh: output scale 1/128, zero point 0), clamped.
//     (TFLite's *optimised* CPU kernels use a float-built lookup table instead; TFLM and the
//     reference kernels use this fixed-point form, which kiln matches.)
//   HARD_SWISH (reference_ops::HardSwish, TFLM hard_swish_common.cc Prepare): int16 fixed point,
//     x * relu6(x + 3) / 6 with a "reluish" multiplier and an output multiplier, each a Q0.15
//     rounding of a Q0.31 multiplier (DownScaleInt32ToInt16Multiplier).
// Each maps 256 int8 inputs to 256 outputs, so map() evaluates the function once per possible
// input into a 256-byte table (on the stack) when the tensor is larger than that, and per
// element otherwise: the bytes are the function's either way.
#pragma once

#include <cstdint>

#include "../../core/config.hpp"
#include "../../core/status.hpp"
#include "../../quant/fixed_point.hpp"
#include "../../quant/fixed_point_logistic.hpp"
#include "../../quant/multiplier.hpp"

namespace kiln::kernels::int8 {

enum class UnaryFn : std::uint8_t { logistic, tanh, hard_swish };

/// Parameters of LOGISTIC / TANH (sigmoid-like) or HARD_SWISH, from TFLite's Prepare.
struct UnaryParams {
  UnaryFn fn = UnaryFn::logistic;
  std::int32_t input_zero_point = 0, output_zero_point = 0;
  // logistic, tanh
  std::int32_t input_range_radius = 0, input_multiplier = 0;
  int input_left_shift = 0;
  // hard_swish
  std::int16_t reluish_multiplier = 0, output_multiplier = 0;  ///< Q0.15
  int reluish_exponent = 0, output_exponent = 0;
};

inline constexpr int kLogisticInputIntegerBits = 4;

/// LOGISTIC / TANH Prepare: input_scale * 2^27 split into a Q0.31 multiplier and left shift
/// (std::frexp, std::round), and the input radius beyond which the output saturates:
/// floor(15 * 2^27 / 2^shift). ok == false: a scale outside what the arithmetic represents
/// (shift < 0, or the multiplier rounding to 2^31, which TFLite's int32 cast does not survive).
constexpr UnaryParams make_sigmoid_params(UnaryFn fn, float input_scale, std::int32_t input_zero_point, bool& ok) {
  UnaryParams p;
  p.fn = fn;
  p.input_zero_point = input_zero_point;
  p.output_zero_point = fn == UnaryFn::logistic ? -128 : 0;
  constexpr int kBits = kLogisticInputIntegerBits;
  const double real = static_cast<double>(input_scale) * static_cast<double>(std::int64_t{1} << (31 - kBits));
  int shift = 0;
  const double q = quant::detail::frexp_constexpr(real, shift);
  const std::int64_t m = quant::detail::round_half_away(q * static_cast<double>(std::int64_t{1} << 31));
  ok = real > 0 && shift >= 0 && shift <= 62 && m < (std::int64_t{1} << 31);
  if (!ok) return p;
  p.input_multiplier = static_cast<std::int32_t>(m);
  p.input_left_shift = shift;
  // Exact in double as in integers: 15 * 2^27 / 2^shift, floored.
  p.input_range_radius = static_cast<std::int32_t>((std::int64_t{(1 << kBits) - 1} << (31 - kBits)) >> shift);
  return p;
}

namespace detail {
// TFLite DownScaleInt32ToInt16Multiplier: the Q0.31 multiplier rounded to Q0.15.
constexpr std::int16_t downscale_to_int16(std::int32_t m) {
  constexpr std::int32_t kRoundingOffset = 1 << 15;
  if (m >= quant::kInt32Max - kRoundingOffset) return 32767;
  return static_cast<std::int16_t>((m + kRoundingOffset) >> 16);
}
}  // namespace detail

/// HARD_SWISH Prepare (TFLM hard_swish_common.cc): the scale ratios are float divisions widened
/// to double, as TFLite writes them. ok == false: an output multiplier above one (TFLite's
/// "output_multiplier_exponent <= 0").
constexpr UnaryParams make_hard_swish_params(float input_scale, std::int32_t input_zero_point, float output_scale,
                                             std::int32_t output_zero_point, bool& ok) {
  UnaryParams p;
  p.fn = UnaryFn::hard_swish;
  p.input_zero_point = input_zero_point;
  p.output_zero_point = output_zero_point;
  const float hires_input_scale = (1.0f / 128.0f) * input_scale;
  const float reluish_scale = 3.0f / 32768.0f;
  const quant::QuantizedMultiplier out = quant::quantize_multiplier(static_cast<double>(hires_input_scale / output_scale));
  const quant::QuantizedMultiplier relu = quant::quantize_multiplier(static_cast<double>(hires_input_scale / reluish_scale));
  p.output_multiplier = detail::downscale_to_int16(out.multiplier);
  p.output_exponent = out.shift;
  p.reluish_multiplier = detail::downscale_to_int16(relu.multiplier);
  p.reluish_exponent = relu.shift;
  ok = out.shift <= 0 && relu.shift <= 31 && relu.shift >= -31;
  return p;
}

namespace detail {
// gemmlowp's int16 SaturatingRoundingDoublingHighMul.
constexpr std::int16_t srdhm16(std::int16_t a, std::int16_t b) {
  if (a == b && a == -32768) return 32767;
  const std::int32_t ab = static_cast<std::int32_t>(a) * static_cast<std::int32_t>(b);
  const std::int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
  return static_cast<std::int16_t>((ab + nudge) / (1 << 15));
}
// TFLite's SaturatingDoublingHighMul (int16): truncating toward zero.
constexpr std::int16_t sdhm16(std::int16_t a, std::int16_t b) {
  if (a == b && a == -32768) return 32767;
  return static_cast<std::int16_t>((static_cast<std::int32_t>(a) * static_cast<std::int32_t>(b)) / (1 << 15));
}
// gemmlowp RoundingDivideByPOT on int16 (mask and threshold in int16, as the template does).
constexpr std::int16_t rounding_divide_by_pot16(std::int16_t x, int exponent) {
  const auto mask = static_cast<std::int16_t>((std::int64_t{1} << exponent) - 1);
  const auto remainder = static_cast<std::int16_t>(x & mask);
  const auto threshold = static_cast<std::int16_t>((mask >> 1) + (x < 0 ? 1 : 0));
  return static_cast<std::int16_t>((x >> exponent) + (remainder > threshold ? 1 : 0));
}
// TFLite's SaturatingLeftShift (int16).
constexpr std::int16_t saturating_left_shift16(std::int16_t v, int amount) {
  const std::int64_t r = static_cast<std::int64_t>(v) * (std::int64_t{1} << amount);
  return static_cast<std::int16_t>(r > 32767 ? 32767 : r < -32768 ? -32768 : r);
}
}  // namespace detail

/// One element of the function.
constexpr std::int8_t unary_one(const UnaryParams& p, std::int8_t q) {
  const std::int32_t input = static_cast<std::int32_t>(q) - p.input_zero_point;
  if (p.fn != UnaryFn::hard_swish) {
    if (input <= -p.input_range_radius) return -128;
    if (input >= p.input_range_radius) return 127;
    const std::int32_t x = quant::multiply_by_quantized_multiplier(input, p.input_multiplier, p.input_left_shift);
    std::int32_t y = 0;
    if (p.fn == UnaryFn::logistic)
      y = quant::rounding_divide_by_pot(quant::logistic<kLogisticInputIntegerBits>(x), 31 - 8) - 128;
    else
      y = quant::rounding_divide_by_pot(quant::tanh<kLogisticInputIntegerBits>(x), 31 - 7);
    return static_cast<std::int8_t>(y < -128 ? -128 : y > 127 ? 127 : y);
  }
  using namespace detail;
  const auto hires = static_cast<std::int16_t>(input * (1 << 7));
  const std::int16_t preshift_output = srdhm16(hires, p.output_multiplier);
  std::int16_t reluish = hires;
  if (p.reluish_exponent > 0) reluish = saturating_left_shift16(reluish, p.reluish_exponent - 1);
  reluish = srdhm16(reluish, p.reluish_multiplier);
  if (p.reluish_exponent > 0) reluish = saturating_left_shift16(reluish, 1);
  if (p.reluish_exponent < 0) reluish = rounding_divide_by_pot16(reluish, -p.reluish_exponent);
  reluish = static_cast<std::int16_t>((reluish + (1 << 15)) >> 1);  // [-1, 1] -> [0, 1]
  const std::int16_t pre = sdhm16(reluish, preshift_output);
  // TFLite adds the zero point to an int16 (a wrap is possible at the extremes, kept here).
  const auto y = static_cast<std::int16_t>(rounding_divide_by_pot16(pre, -p.output_exponent) + p.output_zero_point);
  return static_cast<std::int8_t>(y < -128 ? -128 : y > 127 ? 127 : y);
}

/// y[i] = f(x[i]) for n elements (x and y may alias).
inline Status unary(const UnaryParams& p, const std::int8_t* x, std::int8_t* y, index_t n) {
  if (p.fn == UnaryFn::hard_swish ? (p.output_exponent > 0 || p.output_exponent < -31)
                                  : (p.input_left_shift < 0 || p.input_range_radius < 0))
    return Status(Errc::invalid_argument) << "int8 activation: parameters outside TFLite's range";
  if (n <= 256) {
    for (index_t i = 0; i < n; ++i) y[i] = unary_one(p, x[i]);
    return Status();
  }
  std::int8_t table[256];
  for (int v = -128; v < 128; ++v) table[v + 128] = unary_one(p, static_cast<std::int8_t>(v));
  for (index_t i = 0; i < n; ++i) y[i] = table[x[i] + 128];
  return Status();
}

}  // namespace kiln::kernels::int8
