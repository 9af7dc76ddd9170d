// Fixed-point arithmetic of the int8 layer (kiln/quant) against an int64 reference written from
// the definitions (tests/int8_reference.hpp), TFLite's frexp formula, and hand-computed values.
#include <doctest/doctest.h>

#include <kiln/quant/fixed_point.hpp>
#include <kiln/quant/fixed_point_exp.hpp>
#include <kiln/quant/multiplier.hpp>
#include <kiln/quant/params.hpp>
#include <kiln/quant/quantize.hpp>
#include <kiln/kernels/int8/requant.hpp>

#include <cmath>
#include <cstdint>
#include <limits>

#include "int8_reference.hpp"

using namespace kiln::quant;
namespace ref = int8ref;

namespace {
constexpr std::int32_t kMin = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t kMax = std::numeric_limits<std::int32_t>::max();

// TFLite's QuantizeMultiplier written with the library calls it uses (std::frexp, std::round).
QuantizedMultiplier tflite_quantize_multiplier(double d) {
  if (d == 0.) return {0, 0};
  int shift = 0;
  const double q = std::frexp(d, &shift);
  auto q_fixed = static_cast<std::int64_t>(std::round(q * (1LL << 31)));
  if (q_fixed == (1LL << 31)) {
    q_fixed /= 2;
    ++shift;
  }
  if (shift < -31) {
    shift = 0;
    q_fixed = 0;
  }
  return {static_cast<std::int32_t>(q_fixed), shift};
}
}  // namespace

// Usable in constant expressions (a static plan can fold them).
static_assert(saturating_rounding_doubling_high_mul(kMin, kMin) == kMax, "SRDHM overflow case");
static_assert(rounding_divide_by_pot(-5, 1) == -3, "negative tie away from zero");
static_assert(quantize_multiplier(0.5).multiplier == (1 << 30) && quantize_multiplier(0.5).shift == 0, "");
static_assert(multiply_by_quantized_multiplier(100, 1 << 30, 0) == 50, "");
static_assert(activation_range(Activation::relu6, TensorQuant{0.05f, -10}).max == 110, "");
static_assert(quantize_value(0.25f, TensorQuant{0.5f, 3}) == 4, "");

TEST_CASE("srdhm: known values and edge cases") {
  CHECK(saturating_rounding_doubling_high_mul(kMin, kMin) == kMax);  // the one overflow
  CHECK(saturating_rounding_doubling_high_mul(kMax, kMax) == 2147483646);
  CHECK(saturating_rounding_doubling_high_mul(kMin, kMax) == -2147483647);
  CHECK(saturating_rounding_doubling_high_mul(kMin, 1 << 30) == -(1 << 30));
  CHECK(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30) == 1 << 29);
  // Ties go toward +infinity: 0.5 -> 1, -0.5 -> 0, 1.5 -> 2, -1.5 -> -1.
  CHECK(saturating_rounding_doubling_high_mul(1, 1 << 30) == 1);
  CHECK(saturating_rounding_doubling_high_mul(-1, 1 << 30) == 0);
  CHECK(saturating_rounding_doubling_high_mul(3, 1 << 30) == 2);
  CHECK(saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1);
  CHECK(saturating_rounding_doubling_high_mul(-3, -(1 << 30)) == 2);
  CHECK(saturating_rounding_doubling_high_mul(0, kMin) == 0);
}

TEST_CASE("rounding_divide_by_pot: ties away from zero, shift 0 and 31") {
  CHECK(rounding_divide_by_pot(5, 1) == 3);
  CHECK(rounding_divide_by_pot(-5, 1) == -3);
  CHECK(rounding_divide_by_pot(-1, 1) == -1);
  CHECK(rounding_divide_by_pot(1, 1) == 1);
  CHECK(rounding_divide_by_pot(-6, 2) == -2);  // -1.5
  CHECK(rounding_divide_by_pot(-5, 2) == -1);  // -1.25
  CHECK(rounding_divide_by_pot(-7, 2) == -2);  // -1.75
  CHECK(rounding_divide_by_pot(6, 2) == 2);
  CHECK(rounding_divide_by_pot(7, 0) == 7);
  CHECK(rounding_divide_by_pot(kMin, 0) == kMin);
  CHECK(rounding_divide_by_pot(kMin, 31) == -1);
  CHECK(rounding_divide_by_pot(kMax, 31) == 1);
  CHECK(rounding_divide_by_pot(1 << 30, 31) == 1);        // +0.5
  CHECK(rounding_divide_by_pot(-(1 << 30), 31) == -1);    // -0.5
  CHECK(rounding_divide_by_pot(-(1 << 30) + 1, 31) == 0);
  CHECK(rounding_divide_by_pot((1 << 30) - 1, 31) == 0);
}

TEST_CASE("srdhm and rounding_divide_by_pot match the int64 definitions on random and extreme inputs") {
  ref::Rng rng(1234);
  const std::int32_t extremes[] = {kMin, kMin + 1, -(1 << 30), -3, -2, -1, 0, 1, 2, 3, 1 << 30, kMax - 1, kMax};
  for (std::int32_t a : extremes)
    for (std::int32_t b : extremes) REQUIRE(saturating_rounding_doubling_high_mul(a, b) == ref::srdhm(a, b));
  std::uniform_int_distribution<std::int32_t> any(kMin, kMax);
  for (int i = 0; i < 200000; ++i) {
    const std::int32_t a = any(rng.gen), b = any(rng.gen);
    REQUIRE(saturating_rounding_doubling_high_mul(a, b) == ref::srdhm(a, b));
    const int e = rng.uniform(0, 31);
    REQUIRE(rounding_divide_by_pot(a, e) == ref::rdbpot(a, e));
  }
  for (std::int32_t a : extremes)
    for (int e = 0; e <= 31; ++e) REQUIRE(rounding_divide_by_pot(a, e) == ref::rdbpot(a, e));
  // Exhaustive ties: x = (2k+1) * 2^(e-1) for small k, both signs.
  for (int e = 1; e <= 30; ++e)
    for (std::int64_t k = -40; k <= 40; ++k) {
      const std::int64_t x = (2 * k + 1) * (std::int64_t{1} << (e - 1));
      if (x < kMin || x > kMax) continue;
      REQUIRE(rounding_divide_by_pot(static_cast<std::int32_t>(x), e) == ref::rdbpot(static_cast<std::int32_t>(x), e));
    }
}

TEST_CASE("quantize_multiplier: TFLite's frexp scheme and its edge cases") {
  CHECK(quantize_multiplier(0.0).multiplier == 0);
  CHECK(quantize_multiplier(0.0).shift == 0);
  CHECK(quantize_multiplier(1.0).multiplier == (1 << 30));
  CHECK(quantize_multiplier(1.0).shift == 1);
  CHECK(quantize_multiplier(0.75).multiplier == 3 * (1 << 29));
  CHECK(quantize_multiplier(0.75).shift == 0);
  // Just below 1: q * 2^31 rounds up to 2^31, renormalised to 2^30 with shift + 1.
  const QuantizedMultiplier up = quantize_multiplier(1.0 - 1e-12);
  CHECK(up.multiplier == (1 << 30));
  CHECK(up.shift == 1);
  const QuantizedMultiplier up2 = quantize_multiplier(0.25 * (1.0 - 1e-12));
  CHECK(up2.multiplier == (1 << 30));
  CHECK(up2.shift == -1);
  // Tiny multipliers flush to zero (shift < -31).
  CHECK(quantize_multiplier(1e-12).multiplier == 0);
  CHECK(quantize_multiplier(1e-12).shift == 0);
  CHECK(quantize_multiplier(std::ldexp(0.75, -31)).shift == -31);
  CHECK(quantize_multiplier(std::ldexp(0.75, -32)).multiplier == 0);
  // Negative multipliers keep their sign in the Q31 value.
  CHECK(quantize_multiplier(-0.75).multiplier == -3 * (1 << 29));

  ref::Rng rng(77);
  std::uniform_real_distribution<double> mant(0.5, 1.0);
  for (int i = 0; i < 20000; ++i) {
    const double mantissa = mant(rng.gen);  // sequenced: argument order would differ by compiler
    const double d = std::ldexp(mantissa, rng.uniform(-40, 20)) * (i % 7 == 0 ? -1 : 1);
    const QuantizedMultiplier got = quantize_multiplier(d);
    const QuantizedMultiplier want = tflite_quantize_multiplier(d);
    REQUIRE(got.multiplier == want.multiplier);
    REQUIRE(got.shift == want.shift);
    if (got.multiplier != 0 && d > 0) {
      // Half an ulp of Q0.31 at most.
      REQUIRE(got.multiplier >= (1 << 30));
      const double back = std::ldexp(static_cast<double>(got.multiplier), got.shift - 31);
      REQUIRE(std::fabs(back - d) <= std::ldexp(1.0, got.shift - 32));
    }
  }
  // Typical conv scales (float products, as from a .tflite file).
  const float in_s = 0.584702920f, w_s = 0.0123f, out_s = 0.2345f;
  const double eff = conv_effective_scale(in_s, w_s, out_s);
  CHECK(eff == static_cast<double>(in_s) * static_cast<double>(w_s) / static_cast<double>(out_s));
}

TEST_CASE("multiply_by_quantized_multiplier: TFLite's double rounding, within 1 of the exact product") {
  ref::Rng rng(99);
  std::vector<std::int32_t> m, s;
  rng.multipliers(4000, -31, 6, m, s);
  int off_by_one = 0, total = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    for (int k = 0; k < 50; ++k) {
      // Inputs small enough that x << shift does not overflow (a realistic accumulator).
      const int lim = s[i] > 0 ? (1 << (30 - s[i])) : (1 << 30);
      const std::int32_t x = rng.uniform(-lim, lim);
      const std::int32_t got = multiply_by_quantized_multiplier(x, m[i], s[i]);
      REQUIRE(got == ref::mbqm(x, m[i], s[i]));
      const std::int64_t exact = ref::exact_scaled(x, m[i], s[i]);
      REQUIRE(std::llabs(got - exact) <= 1);
      off_by_one += got != exact;
      ++total;
    }
  }
  // Double rounding differs from the exact rounding only near ties: rarely.
  CHECK(off_by_one * 20 < total);
  CHECK(off_by_one > 0);  // ... but it does happen: the test would notice a single-rounding implementation
  // Known values: 100 * 0.5, -3 * 0.5 (SRDHM gives -1, the tie goes up), 7 * 2.
  CHECK(multiply_by_quantized_multiplier(100, 1 << 30, 0) == 50);
  CHECK(multiply_by_quantized_multiplier(-3, 1 << 30, 0) == -1);
  CHECK(multiply_by_quantized_multiplier(7, 1 << 30, 2) == 14);
  CHECK(multiply_by_quantized_multiplier(-5, 1 << 30, -1) == -1);  // -5 * 0.25: srdhm -2 (tie -2.5 up), /2 -> -1
  CHECK(multiply_by_quantized_multiplier(kMax, kMax, 0) == 2147483646);
  CHECK(multiply_by_quantized_multiplier(1000, 1 << 30, -31) == 0);
}

TEST_CASE("one-SMLAL requantisation (multiplier >= 0) equals SRDHM then the divide on all of int32") {
  // quant::detail::srdhm_divide_nonnegative (inside multiply_by_quantized_multiplier and its
  // smaller-than-one twin) and kernels::int8::apply_channel fold both roundings into one 64-bit
  // multiply-add; here against the reference's two separate roundings over every shift, extreme
  // and random accumulators (no headroom assumed) and multipliers including 0 and 2^31 - 1.
  ref::Rng rng(2718);
  const std::int32_t xs_fixed[] = {0, 1, -1, 2, -2, 3, -3, kMin, kMin + 1, kMax, kMax - 1, 1 << 30, -(1 << 30),
                                   (1 << 30) - 1, -(1 << 30) - 1, 12345, -12345};
  const std::int32_t ms_fixed[] = {0, 1, 1 << 30, (1 << 30) + 1, kMax, kMax - 1, 1518500250};
  namespace k8 = kiln::kernels::int8;
  long checked = 0, fast = 0;
  for (int shift = -31; shift <= 31; ++shift) {
    for (int trial = 0; trial < 600; ++trial) {
      const std::int32_t x = trial < 17 ? xs_fixed[trial] : static_cast<std::int32_t>(rng.gen());
      const std::int32_t m = trial % 9 < 7 ? ms_fixed[trial % 7] : static_cast<std::int32_t>(rng.gen() >> 1);
      REQUIRE(multiply_by_quantized_multiplier(x, m, shift) == ref::mbqm(x, m, shift));
      if (shift <= 0) REQUIRE(multiply_by_quantized_multiplier_smaller_than_one(x, m, shift) == ref::rdbpot(ref::srdhm(x, m), -shift));
      // The kernels' per-channel form, with an output offset and a relu-like clamp.
      const std::int32_t shifts[] = {shift};
      const std::int32_t mults[] = {m};
      const k8::OutputStage stage{mults, shifts, true, -7, -20, 127};
      k8::ChannelRequant c;
      if (k8::channel_requant(stage, 1, &c)) {
        REQUIRE(k8::apply_channel(x, c, stage) == ref::requant(x, m, shift, -7, -20, 127));
        ++fast;
      }
      ++checked;
    }
  }
  CHECK(fast == 600 * 30);  // shifts -31..-2 take the per-channel form, the others do not
  CHECK(checked == 600 * 63);
  // The one saturating SRDHM input still saturates (a negative multiplier: the general path).
  CHECK(multiply_by_quantized_multiplier(kMin, kMin, 0) == kMax);
}

TEST_CASE("exp_on_negative_values and 1/(1+x) approximate the real functions") {
  // Q5.26 inputs on [-31, 0]: the result must be within a few Q0.31 ulps... of 2^-20 relative.
  for (int i = 0; i <= 4000; ++i) {
    const double a = -31.0 * i / 4000.0;
    const std::int32_t raw = static_cast<std::int32_t>(std::llround(a * (1 << 26)));
    const double exact = std::exp(static_cast<double>(raw) / (1 << 26));
    const double got = exp_on_negative_values<5>(raw) / 2147483648.0;
    REQUIRE(std::fabs(got - exact) < 2e-9 + 1e-6 * exact);
  }
  CHECK(exp_on_negative_values<5>(0) == kMax);
  // Monotone over the whole Q5.26 range (the barrel shifter and polynomial pieces join up).
  std::int32_t prev = 0;
  for (std::int64_t raw = -(std::int64_t{32} << 26); raw <= 0; raw += 4099) {
    const std::int32_t e = exp_on_negative_values<5>(static_cast<std::int32_t>(raw));
    REQUIRE(e >= prev);
    prev = e;
  }
  for (int i = 0; i < 1000; ++i) {
    const std::int32_t raw = static_cast<std::int32_t>(static_cast<std::int64_t>(i) * kMax / 1000);
    const double x = raw / 2147483648.0;
    const double got = one_over_one_plus_x_for_x_in_0_1(raw) / 2147483648.0;
    REQUIRE(std::fabs(got - 1.0 / (1.0 + x)) < 1e-8);
  }
  // get_reciprocal: 1 / 3.0 in Q12.19.
  const Reciprocal r = get_reciprocal(3 << 19, 12);
  CHECK(r.num_bits_over_unit == 1);
  CHECK(std::fabs(std::ldexp(r.scale / 2147483648.0, -r.num_bits_over_unit) - 1.0 / 3.0) < 1e-8);
  CHECK(count_leading_zeros(0) == 32);
  CHECK(count_leading_zeros(1) == 31);
  CHECK(count_leading_zeros(0x80000000u) == 0);
  CHECK(count_leading_zeros(0x00012345u) == 15);
}

TEST_CASE("activation_range and quantize/dequantize follow TFLite") {
  const TensorQuant out{0.05f, -10};
  const ActivationRange none = activation_range(Activation::none, out);
  CHECK(none.min == -128);
  CHECK(none.max == 127);
  const ActivationRange relu = activation_range(Activation::relu, out);
  CHECK(relu.min == -10);
  CHECK(relu.max == 127);
  const ActivationRange relu6 = activation_range(Activation::relu6, out);
  CHECK(relu6.min == -10);
  CHECK(relu6.max == 110);  // -10 + round(6 / 0.05) = -10 + 120
  const ActivationRange n1 = activation_range(Activation::relu_n1_to_1, TensorQuant{0.1f, 0});
  CHECK(n1.min == -10);
  CHECK(n1.max == 10);
  // relu with a zero point below -128 is clamped to the int8 range.
  CHECK(activation_range(Activation::relu6, TensorQuant{0.01f, -128}).max == 127);

  const TensorQuant q{0.5f, 3};
  CHECK(quantize_value(0.f, q) == 3);
  CHECK(quantize_value(0.25f, q) == 4);    // 0.5 -> 1 (half away from zero)
  CHECK(quantize_value(-0.25f, q) == 2);   // -0.5 -> -1
  CHECK(quantize_value(-0.75f, q) == 1);   // -1.5 -> -2
  CHECK(quantize_value(1000.f, q) == 127);
  CHECK(quantize_value(-1000.f, q) == -128);
  CHECK(quantize_value(std::numeric_limits<float>::infinity(), q) == 127);
  CHECK(quantize_value(std::nanf(""), q) == 3);
  CHECK(dequantize_value(7, q) == 2.f);
  CHECK(dequantize_value(-128, q) == -65.5f);
  for (int v = -128; v <= 127; ++v)
    REQUIRE(quantize_value(dequantize_value(static_cast<std::int8_t>(v), q), q) == v);
  CHECK(quantize_bias_value(1.0f, 0.5f, 0.25f) == 8);
  CHECK(quantize_bias_value(-0.0625f, 0.5f, 0.25f) == -1);  // -0.5 -> -1
}
