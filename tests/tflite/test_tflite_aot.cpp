// Ahead-of-time import: three MLPerf Tiny models turned into C++ headers by tflite2kiln at build
// time (tests/tflite/CMakeLists.txt) — AD (fully connected), KWS (conv, depthwise, average pool,
// reshape, softmax), IC (residual adds) — compile, plan at compile time (<ns>::plan is a
// constant: static_assert), and each generated model run through kiln::compile gives TFLite
// Micro's bytes on inputs A and B. Each compile-time arena equals the run-time import's, plus at
// most the depthwise weights the static runner re-lays out in its arena (compile() re-lays them
// out once at prepare time, outside the arena; runtime/int8_static.hpp).
// Header-only (kiln::plan needs the engine in this TU). Built only when the models are present
// ($KILN_MODELS_DIR, else /work/shared/models).
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>
#include <kiln/tflite.hpp>
#include <kiln/tflite/import.hpp>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../tflite_models.hpp"
#include "ad01_model.hpp"  // generated
#include "ic_model.hpp"    // generated
#include "kws_model.hpp"   // generated

static_assert(ad01::plan.ok() && kws::plan.ok() && ic::plan.ok(), "the generated models plan at compile time");
static_assert(ad01::kArenaBytes >= ad01::plan.lower_bound() && kws::kArenaBytes >= kws::plan.lower_bound() &&
              ic::kArenaBytes >= ic::plan.lower_bound());
static_assert(ad01::kInputShape == kiln::Shape{1, 640} && kws::kInputShape == kiln::Shape{1, 49, 10, 1} &&
              ic::kOutputShape == kiln::Shape{1, 10});

namespace {

// Bytes of the depthwise weights a compile-time plan re-lays out in its arena (an upper bound on
// how much larger than the run-time arena it may be).
constexpr std::size_t depthwise_relayout_bytes(const kiln::StaticPlan& p) {
  std::size_t n = 0;
  for (int i = 0; i < p.graph.size(); ++i) {
    const kiln::Node& node = p.graph[i];
    if (node.op == kiln::Op::qconv2d && node.win.groups > 1)
      n += kiln::align_up(static_cast<std::size_t>(p.graph[node.inputs[1]].shape.numel()));
  }
  return n;
}

template <class Fn>
void check_generated(const std::string& name, const char* file, const Fn& generated, const kiln::Shape& in_shape,
                     kiln::QuantParams in_quant, std::size_t arena, std::size_t lower_bound, int kernels,
                     std::size_t relayout) {
  INFO("model " << name);
  MESSAGE(name << ": kArenaBytes = " << arena << " B (lower bound " << lower_bound << " B), " << kernels
               << " kernels, planned at compile time");
  const std::map<std::string, std::string> expected = kiln_test::tflm_expected_outputs();
  REQUIRE(!expected.empty());

  // The run-time import of the same file plans the same arena.
  const std::vector<std::uint8_t> bytes = kiln_test::read_bytes(kiln_test::models_dir() + "/" + file);
  kiln::tflite::Model m;
  REQUIRE(m.open(bytes.data(), bytes.size()).ok());
  kiln::tflite::Imported imported;
  REQUIRE(imported.import(m).ok());
  auto runtime = kiln::compile([&imported](const auto& x) { return imported(x); });
  kiln::Tensor<std::int8_t> a(in_shape), b(in_shape);
  REQUIRE(runtime.prepare(a));
  const std::size_t runtime_arena = static_cast<std::size_t>(runtime.stats().arena_bytes);
  CHECK(arena >= runtime_arena);
  CHECK(arena - runtime_arena <= relayout);
  if (relayout == 0) CHECK(arena == runtime_arena);

  const std::size_t n = static_cast<std::size_t>(a.size());
  const std::vector<std::int8_t> in_a = kiln_test::tflm_input_a(name, n);
  REQUIRE(in_a.size() == n);
  std::memcpy(a.data(), in_a.data(), n);
  for (std::size_t i = 0; i < n; ++i) b.data()[i] = static_cast<std::int8_t>(in_quant.zero_point);
  auto net = kiln::compile(generated);
  const kiln::Tensor<std::int8_t> ya = net(a), yb = net(b);
  CHECK(kiln_test::hex(ya.data(), static_cast<std::size_t>(ya.size())) == expected.at(name + "A"));
  CHECK(kiln_test::hex(yb.data(), static_cast<std::size_t>(yb.size())) == expected.at(name + "B"));
}

}  // namespace

TEST_CASE("tflite2kiln: generated headers plan at compile time and run TFLite Micro's bytes") {
  check_generated("ad", "ad01_int8.tflite", ad01::model, ad01::kInputShape, ad01::kInputQuant, ad01::kArenaBytes,
                  ad01::plan.lower_bound(), ad01::plan.kernels(), depthwise_relayout_bytes(ad01::plan));
  check_generated("kws", "kws_ref_model.tflite", kws::model, kws::kInputShape, kws::kInputQuant, kws::kArenaBytes,
                  kws::plan.lower_bound(), kws::plan.kernels(), depthwise_relayout_bytes(kws::plan));
  check_generated("ic", "pretrainedResnet_quant.tflite", ic::model, ic::kInputShape, ic::kInputQuant,
                  ic::kArenaBytes, ic::plan.lower_bound(), ic::plan.kernels(), depthwise_relayout_bytes(ic::plan));
}
