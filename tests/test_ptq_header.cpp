// A header emitted by kiln::ptq (tests/ptq/tiny_int8.hpp: a small int8 CNN, its weights as
// constexpr arrays, the model as a constexpr lambda of the int8 front-end) is planned at compile
// time: graph, kernels and arena are constants, as firmware uses them. test_ptq.cpp checks that
// the header is what emit_header writes and that its graph is the in-memory quantised graph;
// this TU checks the compile-time plan and that compile() and eager agree on it.
// kiln-test: header-only (KILN_MAX_NODES 32 differs from the compiled engine)
#define KILN_MAX_NODES 32  // constant evaluation cost grows with the graph capacity
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

#include <cstdint>
#include <random>

#include "ptq/tiny_int8.hpp"

namespace {

constexpr kiln::StaticPlan kPlan = kiln::plan(tiny_int8::model, tiny_int8::input);
static_assert(kPlan.ok(), "the emitted model type-checks at compile time");
// quantize, conv + bias + relu, max pool, linear + bias + relu, linear + bias, softmax, dequantize
// (the flatten is a view): one kernel each.
static_assert(kPlan.kernels() == 7);
static_assert(kPlan.graph.node(kPlan.graph.output(0)).shape == kiln::Shape{2, 3});
static_assert(kPlan.arena_bytes() == kPlan.lower_bound(), "the arena meets the liveness lower bound");
// i8 activations, one byte each: the largest pair alive together is the quantised input
// [2, 6, 6, 2] and the conv output [2, 6, 6, 4] (144 and 288 bytes, each 64-byte aligned).
static_assert(kPlan.arena_bytes() == 192 + 320);
alignas(kiln::kAlignment) std::uint8_t g_arena[kPlan.arena_bytes()];  // a compile-time size

}  // namespace

TEST_CASE("the emitted int8 model runs the same through compile() and eager") {
  CHECK(sizeof(g_arena) == 512);
  CHECK(reinterpret_cast<std::uintptr_t>(g_arena) % kiln::kAlignment == 0);
  std::mt19937 gen(5);
  kiln::Tensor<float> x(tiny_int8::input_shape);
  for (float& v : x) v = static_cast<float>(static_cast<int>(gen() % 17u) - 8) * 0.25f;
  auto net = kiln::compile(tiny_int8::model);
  const kiln::Tensor<float> y = net(x), ye = kiln::eager(tiny_int8::model)(x);
  REQUIRE(y.shape() == kiln::Shape{2, 3});
  for (kiln::index_t i = 0; i < y.size(); ++i) CHECK(y[i] == ye[i]);
  for (kiln::index_t r = 0; r < 2; ++r) {  // softmax rows: probabilities in steps of 1/256
    float sum = 0.f;
    for (kiln::index_t c = 0; c < 3; ++c) sum += y(r, c);
    CHECK(std::fabs(sum - 1.f) <= 3.f / 256.f);
  }
  CHECK(net.stats().kernels == kPlan.kernels());
}
