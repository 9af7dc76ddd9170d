// int8 models through the static runner (kiln::run<plan>): the multipliers, shifts and clamps are
// prepared at compile time (runtime/int8_static.hpp) and the output must be byte for byte what
// compile() computes (the same kernels/int8 calls; compile() is itself checked against an int64
// reference in test_quant_run.cpp). Models: the PTQ-emitted header tests/ptq/tiny_int8.hpp (conv,
// max pool, two linears, softmax) and a hand-written one with a depthwise conv, a broadcasting
// qadd, average pools and two outputs.
// kiln-test: header-only (KILN_MAX_NODES 32 keeps the constant evaluation cheap)
#define KILN_MAX_NODES 32
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

#include <array>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include "ptq/tiny_int8.hpp"

namespace {

constexpr kiln::StaticPlan kTiny = kiln::plan(tiny_int8::model, tiny_int8::input);
static_assert(kTiny.ok() && kTiny.num_int8 == 7);

template <std::size_t N>
constexpr std::array<std::int8_t, N> bytes(std::uint32_t seed) {
  std::array<std::int8_t, N> a{};
  for (std::size_t i = 0; i < N; ++i) {
    seed = seed * 1664525u + 1013904223u;
    a[i] = static_cast<std::int8_t>(static_cast<int>((seed >> 24) % 255u) - 127);
  }
  return a;
}

// Depthwise 3x3 over 4 channels, OHWI [4, 3, 3, 1] (re-laid out to the kernel's [1, 3, 3, 4] at run time).
constexpr auto kDw = bytes<36>(3);
constexpr float kDwScales[4] = {0.004f, 0.006f, 0.005f, 0.007f};
constexpr std::int32_t kDwBias[4] = {120, -80, 0, 45};
constexpr auto kFc = bytes<5 * 16>(4);
constexpr float kFcScale[1] = {0.003f};
constexpr std::int32_t kFcBias[5] = {-300, 200, 0, 50, 999};
constexpr kiln::TensorView<const std::int8_t> Dw(kDw.data(), {4, 3, 3, 1}), Fc(kFc.data(), {5, 16});
constexpr kiln::TensorView<const float> DwScales(kDwScales, {4}), FcScale(kFcScale, {1});
constexpr kiln::TensorView<const std::int32_t> DwBias(kDwBias, {4}), FcBias(kFcBias, {5});

constexpr auto mixed = [](auto x) {  // x f32 [1, 4, 4, 4]
  using kiln::QuantParams;
  auto q = kiln::quantize(x, QuantParams{0.02f, 3});
  auto dw = kiln::qconv2d(q, Dw, DwScales, DwBias, QuantParams{0.03f, -10},
                          kiln::Conv2dOptions().with_groups(4).with_padding(kiln::Padding2d::same()),
                          kiln::FusedActivation::relu6());
  auto mean = kiln::qavg_pool2d(dw, kiln::Pool2dOptions(4, 4).with_stride(4, 4));  // [1, 1, 1, 4]
  auto s = kiln::qadd(dw, mean, QuantParams{0.04f, -5});                              // broadcast
  auto p = kiln::qavg_pool2d(s, kiln::Pool2dOptions(2, 2).with_stride(2, 2));  // [1, 2, 2, 4]
  auto logits = kiln::qlinear(kiln::reshape(p, {1, 16}), Fc, FcScale, FcBias, QuantParams{0.05f, 2});
  return std::make_tuple(kiln::dequantize(kiln::qsoftmax(logits)), kiln::dequantize(p));
};
constexpr kiln::StaticPlan kMixed = kiln::plan(mixed, kiln::input<float>({1, 4, 4, 4}));
static_assert(kMixed.ok());
static_assert(kMixed.arena_bytes() == kMixed.lower_bound());

// A grouped (not depthwise) conv with a per-tensor weight scale: its multipliers stay one per
// channel (grouped_conv offsets them per group), the stage stays per channel.
constexpr auto kGw = bytes<4 * 3 * 3 * 2>(5);
constexpr float kGwScale[1] = {0.004f};
constexpr std::int32_t kGwBias[4] = {30, -60, 0, 90};
constexpr kiln::TensorView<const std::int8_t> Gw(kGw.data(), {4, 3, 3, 2});
constexpr kiln::TensorView<const float> GwScale(kGwScale, {1});
constexpr kiln::TensorView<const std::int32_t> GwBias(kGwBias, {4});
constexpr auto grouped = [](auto x) {  // x f32 [1, 4, 4, 4]
  auto q = kiln::quantize(x, kiln::QuantParams{0.02f, 3});
  auto g = kiln::qconv2d(q, Gw, GwScale, GwBias, kiln::QuantParams{0.03f, -4},
                         kiln::Conv2dOptions().with_groups(2).with_padding(kiln::Padding2d::same()));
  return kiln::dequantize(g);
};
constexpr kiln::StaticPlan kGrouped = kiln::plan(grouped, kiln::input<float>({1, 4, 4, 4}));
static_assert(kGrouped.ok());

// QUANTIZE of an int8 value (TFLite's requantise: new scale and zero point).
constexpr auto requantised = [](auto x) {
  auto q = kiln::quantize(x, kiln::QuantParams{0.02f, 3});
  return kiln::dequantize(kiln::quantize(q, kiln::QuantParams{0.05f, -7}));
};
constexpr kiln::StaticPlan kRequant = kiln::plan(requantised, kiln::input<float>({1, 64}));
static_assert(kRequant.ok());

std::vector<float> inputs(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(static_cast<int>(gen() % 33u) - 16) * 0.07f;
  return v;
}

}  // namespace

TEST_CASE("static int8: the PTQ-emitted model runs byte for byte as compile() runs it") {
  const std::vector<float> x = inputs(static_cast<std::size_t>(tiny_int8::input_shape.numel()), 5);
  alignas(kiln::kAlignment) static std::uint8_t arena[kTiny.arena_bytes()];
  std::vector<float> y(6, -1.f);
  kiln::run<kTiny>(arena, x.data(), y.data());
  kiln::Tensor<float> xt(tiny_int8::input_shape);
  for (std::size_t i = 0; i < x.size(); ++i) xt[static_cast<kiln::index_t>(i)] = x[i];
  const kiln::Tensor<float> ref = kiln::compile(tiny_int8::model)(xt);
  REQUIRE(ref.size() == 6);
  for (kiln::index_t i = 0; i < 6; ++i) CHECK(y[static_cast<std::size_t>(i)] == ref[i]);
  // Multipliers are constants of the schedule: one per output channel of each linear/conv, one
  // for a layer whose channels all share multiplier and shift (runtime/int8_static.hpp's
  // compact_per_tensor): the conv's 4 scales differ, the linears' 6 and 3 are all equal.
  CHECK(kTiny.int8_channels == 4 + 1 + 1);
  CHECK(kMixed.int8_channels == 4 + 1);  // depthwise: 4 scales; the linear: a per-tensor scale
}

TEST_CASE("static int8: depthwise conv, broadcasting qadd, average pools, two outputs") {
  for (unsigned seed : {1u, 2u, 3u}) {
    const std::vector<float> x = inputs(64, seed);
    alignas(kiln::kAlignment) static std::uint8_t arena[kMixed.arena_bytes()];
    std::vector<float> probs(5, -1.f), pooled(16, -1.f);
    kiln::run<kMixed>(arena, x.data(), std::make_tuple(probs.data(), pooled.data()));
    kiln::Tensor<float> xt({1, 4, 4, 4});
    for (std::size_t i = 0; i < x.size(); ++i) xt[static_cast<kiln::index_t>(i)] = x[i];
    const auto ref = kiln::compile(mixed)(xt);
    for (kiln::index_t i = 0; i < 5; ++i) CHECK(probs[static_cast<std::size_t>(i)] == std::get<0>(ref)[i]);
    for (kiln::index_t i = 0; i < 16; ++i) CHECK(pooled[static_cast<std::size_t>(i)] == std::get<1>(ref)[i]);
    float nonzero = 0.f;
    for (float v : pooled) nonzero += v != 0.f;
    CHECK(nonzero > 0.f);  // the values are not trivially zero
  }
}

TEST_CASE("static int8: a grouped conv with a per-tensor scale keeps its per-channel multipliers") {
  CHECK(kGrouped.int8_channels == 4);
  for (unsigned seed : {4u, 5u}) {
    const std::vector<float> x = inputs(64, seed);
    alignas(kiln::kAlignment) static std::uint8_t arena[kGrouped.arena_bytes()];
    std::vector<float> y(64, -1.f);
    kiln::run<kGrouped>(arena, x.data(), y.data());
    kiln::Tensor<float> xt({1, 4, 4, 4});
    for (std::size_t i = 0; i < x.size(); ++i) xt[static_cast<kiln::index_t>(i)] = x[i];
    const kiln::Tensor<float> ref = kiln::compile(grouped)(xt);
    int nonzero = 0;
    for (kiln::index_t i = 0; i < 64; ++i) {
      CHECK(y[static_cast<std::size_t>(i)] == ref[i]);
      nonzero += ref[i] != 0.f;
    }
    CHECK(nonzero > 8);  // not trivially zero
  }
}

TEST_CASE("static int8: QUANTIZE of an int8 value requantises as compile() does") {
  const std::vector<float> x = inputs(64, 6);
  alignas(kiln::kAlignment) static std::uint8_t arena[kRequant.arena_bytes() + 1];
  std::vector<float> y(64, -1.f);
  kiln::run<kRequant>(arena, x.data(), y.data());
  kiln::Tensor<float> xt({1, 64});
  for (std::size_t i = 0; i < x.size(); ++i) xt[static_cast<kiln::index_t>(i)] = x[i];
  const kiln::Tensor<float> ref = kiln::compile(requantised)(xt);
  int distinct_from_input = 0;
  for (kiln::index_t i = 0; i < 64; ++i) {
    CHECK(y[static_cast<std::size_t>(i)] == ref[i]);
    distinct_from_input += ref[i] != x[static_cast<std::size_t>(i)];
  }
  CHECK(distinct_from_input > 8);  // the coarser scale changes values: the step did something
}
