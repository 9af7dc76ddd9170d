// A quantize of an f32 value fused into its producer (passes/fusion.hpp rule 6's exception):
// the f32 GEMM's epilogue (matmul and conv2d tails, runtime/step_run.hpp) or an elementwise
// program stores the i8 bytes itself. The fused plan must give the same bytes as the plan with a
// separate quantize step (CompileOptions::observe: one step per node, nothing fused) and as
// eager, and as quant::quantize_value applied to the separate plan's f32 value; on odd sizes
// (every tail of the 32- and 8-wide quantize paths) and values on rounding ties. Built twice
// (SIMD and -DKILN_NO_SIMD): the scalar store must give the same bytes as the vector one. The
// compile-time plan (kiln::plan, runtime/static_run.hpp) runs the same steps.
#define KILN_MAX_NODES 32  // constant evaluation cost grows with the graph capacity
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.hpp"

namespace {

using kiln::index_t;
using kiln::QuantParams;
using kiln::Shape;
using kiln::Tensor;

kiln::CompileOptions separate_steps() {
  kiln::CompileOptions o;
  o.observe = true;  // no fusion: the quantize is its own int8 step
  return o;
}

// A compile-time plan: [3, 11] -> linear [13, 11] + bias -> relu -> quantize (one GEMM kernel).
template <std::size_t N>
constexpr std::array<float, N> floats(std::uint32_t seed) {
  std::array<float, N> a{};
  for (std::size_t i = 0; i < N; ++i) {
    seed = seed * 1664525u + 1013904223u;
    a[i] = static_cast<float>(static_cast<int>((seed >> 20) % 2001u) - 1000) * 0.0007f;
  }
  return a;
}
constexpr auto kW = floats<13 * 11>(1);
constexpr auto kB = floats<13>(2);
constexpr kiln::TensorView<const float> W(kW.data(), {13, 11}), Bias(kB.data(), {13});
constexpr QuantParams kQ{0.03f, -3};
constexpr auto static_layer = [](auto x) { return kiln::relu(kiln::linear(x, W, Bias)); };
constexpr auto static_model = [](auto x) { return kiln::quantize(static_layer(x), kQ); };
constexpr kiln::StaticPlan kStatic = kiln::plan(static_model, kiln::input<float>({3, 11}));
static_assert(kStatic.ok() && kStatic.kernels() == 1, "the quantize is in the GEMM's epilogue");

// got == want byte for byte, and want == quantize_value(f) for the separate plan's f32 value f.
void check_fused(const Tensor<std::int8_t>& got, const Tensor<std::int8_t>& want, const Tensor<float>& f,
                 QuantParams q, const char* what) {
  INFO(std::string(what));
  REQUIRE(got.shape() == want.shape());
  REQUIRE(f.size() == want.size());
  index_t bad = 0, first = -1, spread_lo = 127, spread_hi = -128;
  for (index_t i = 0; i < got.size(); ++i) {
    const std::int8_t ref = kiln::quant::quantize_value(f[i], {q.scale, q.zero_point});
    if (got[i] != want[i] || want[i] != ref) {
      if (first < 0) first = i;
      ++bad;
    }
    spread_lo = std::min<index_t>(spread_lo, want[i]);
    spread_hi = std::max<index_t>(spread_hi, want[i]);
  }
  INFO("first mismatch at " << first << " of " << got.size());
  CHECK(bad == 0);
  if (got.size() >= 64) CHECK(spread_hi - spread_lo >= 20);  // many levels: a constant would pass anything
}

// quantize(layer(x)) compiled (one fused kernel) and with separate steps: same bytes, and those
// of quantize_value on the separate plan's f32 layer(x), which is returned.
template <class Layer>
Tensor<float> check_layer(Layer layer, const Tensor<float>& x, QuantParams q, const char* what) {
  auto model = [&](const auto& in) { return kiln::quantize(layer(in), q); };
  auto fused = kiln::compile(model);
  const Tensor<std::int8_t> qf = fused(x), qs = kiln::compile(model, separate_steps())(x);
  Tensor<float> hs = kiln::compile(layer, separate_steps())(x);  // what the separate quantize reads
  CHECK(fused.stats().kernels == 1);  // the layer with the quantize in its epilogue / program
  check_fused(qf, qs, hs, q, what);
  check_fused(kiln::eager(model)(x), qs, hs, q, "eager");
  return hs;
}

}  // namespace

TEST_CASE("linear + bias + relu + quantize: the GEMM tail stores i8, same bytes as the separate step") {
  const QuantParams q{0.05f, -7};
  for (const index_t B : {index_t{1}, index_t{5}, index_t{13}})
    for (const index_t N : {index_t{1}, index_t{7}, index_t{9}, index_t{33}, index_t{70}, index_t{150}}) {
      const index_t K = 19;
      const Tensor<float> w = kt::random_tensor({N, K}, 3, -0.5f, 0.5f), b = kt::random_tensor({N}, 4, -0.5f, 0.5f);
      const Tensor<float> x = kt::random_tensor({B, K}, 5, -2.f, 2.f);
      auto layer = [&](const auto& in) { return kiln::relu(kiln::linear(in, w, b)); };
      INFO("B " << B << " N " << N);
      const Tensor<float> hs = check_layer(layer, x, q, "fused GEMM tail vs separate quantize step");
      // The f32 value also leaving the model: the tail is a general program (quantize and a copy).
      auto both = [&](const auto& in) {
        auto h = layer(in);
        return std::make_tuple(kiln::quantize(h, q), h * 2.f);
      };
      const auto [qb, hb] = kiln::compile(both)(x);
      check_fused(qb, std::get<0>(kiln::compile(both, separate_steps())(x)), hs, q, "general GEMM tail");
      for (index_t i = 0; i < hb.size(); ++i) CHECK(hb[i] == 2.f * hs[i]);
    }
}

TEST_CASE("conv2d + relu6 + quantize: the conv tail stores i8 (odd spatial sizes and channels)") {
  const QuantParams q{0.03f, -20};
  for (const index_t C : {index_t{5}, index_t{16}, index_t{37}}) {
    const Tensor<float> w = kt::random_tensor({C, 3, 3, 4}, 9, -0.4f, 0.4f), b = kt::random_tensor({C}, 10, -0.5f, 0.5f);
    const Tensor<float> x = kt::random_tensor({2, 7, 9, 4}, 11, -1.f, 1.f);
    auto layer = [&](const auto& in) {
      return kiln::relu6(kiln::conv2d(in, w, b, kiln::Conv2dOptions().with_padding(kiln::Padding2d::same())));
    };
    INFO("channels " << C);
    check_layer(layer, x, q, "fused conv tail vs separate quantize step");
  }
}

TEST_CASE("elementwise chain + quantize: the elementwise program stores i8, ties and saturation included") {
  // Values k * scale / 2 hit every rounding tie; the range saturates at both ends.
  const QuantParams q{0.25f, 9};
  for (const index_t n : {index_t{45}, index_t{71}, index_t{1027}}) {
    Tensor<float> x(Shape{n});  // 2x + 0.5 = (i % 600 - 300) / 8 exactly: / 0.25 gives every half
    for (index_t i = 0; i < n; ++i) x[i] = (static_cast<float>(i % 600) - 300.f) * 0.0625f - 0.25f;
    auto chain = [&](const auto& in) { return in * 2.f + 0.5f; };
    INFO("n " << n);
    const Tensor<float> hs = check_layer(chain, x, q, "fused elementwise store vs separate quantize step");
    for (index_t i = 0; i < n; ++i) CHECK(hs[i] == (static_cast<float>(i % 600) - 300.f) * 0.125f);
  }
}

TEST_CASE("a compile-time plan runs the fused quantize as compile() does") {
  const Tensor<float> x = kt::random_tensor({3, 11}, 12, -3.f, 3.f);
  alignas(kiln::kAlignment) static std::uint8_t arena[kStatic.arena_bytes()];
  std::int8_t y[3 * 13];
  kiln::run<kStatic>(arena, x.data(), y);
  Tensor<std::int8_t> got(Shape{3, 13});
  for (index_t i = 0; i < got.size(); ++i) got[i] = y[i];
  const Tensor<float> hs = kiln::compile(static_layer, separate_steps())(x);
  check_fused(got, kiln::compile(static_model, separate_steps())(x), hs, kQ, "static plan vs separate quantize step");
}
