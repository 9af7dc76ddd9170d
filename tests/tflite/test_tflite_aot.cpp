// Ahead-of-time import: the AD model (ad01_int8.tflite) turned into a C++ header by tflite2kiln at
// build time (tests/tflite/CMakeLists.txt) compiles, plans at compile time (ad01::plan is a
// constant: static_assert), and the generated model run through kiln::compile gives TFLite
// Micro's bytes on inputs A and B. The compile-time arena equals the run-time import's.
// Header-only (kiln::plan needs the engine in this TU). Built only when the models are present ($KILN_MODELS_DIR, else /work/shared/models).
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

static_assert(ad01::plan.ok(), "the generated model plans at compile time");
static_assert(ad01::kArenaBytes > 0 && ad01::kArenaBytes >= ad01::plan.lower_bound());
static_assert(ad01::kInputShape == kiln::Shape{1, 640} && ad01::kOutputShape == kiln::Shape{1, 640});

TEST_CASE("tflite2kiln: the generated AD header plans at compile time and runs TFLite Micro's bytes") {
  MESSAGE("ad01::kArenaBytes = " << ad01::kArenaBytes << " B (lower bound " << ad01::plan.lower_bound() << " B), "
                                 << ad01::plan.kernels() << " kernels, " << ad01::plan.nodes() << " nodes");
  const std::map<std::string, std::string> expected = kiln_test::tflm_expected_outputs();
  REQUIRE(!expected.empty());

  // The run-time import of the same file plans the same arena.
  const std::vector<std::uint8_t> bytes = kiln_test::read_bytes(kiln_test::models_dir() + "/ad01_int8.tflite");
  kiln::tflite::Model file;
  REQUIRE(file.open(bytes.data(), bytes.size()).ok());
  kiln::tflite::Imported imported;
  REQUIRE(imported.import(file).ok());
  auto runtime = kiln::compile([&imported](const auto& x) { return imported(x); });
  kiln::Tensor<std::int8_t> a(ad01::kInputShape), b(ad01::kInputShape);
  REQUIRE(runtime.prepare(a));
  CHECK(runtime.stats().arena_bytes == ad01::kArenaBytes);

  const std::vector<std::int8_t> in_a = kiln_test::tflm_input_a("ad", 640);
  REQUIRE(in_a.size() == 640);
  std::memcpy(a.data(), in_a.data(), 640);
  for (kiln::index_t i = 0; i < 640; ++i) b.data()[i] = static_cast<std::int8_t>(ad01::kInputQuant.zero_point);
  auto net = kiln::compile(ad01::model);
  const kiln::Tensor<std::int8_t> ya = net(a), yb = net(b);
  CHECK(kiln_test::hex(ya.data(), 640) == expected.at("adA"));
  CHECK(kiln_test::hex(yb.data(), 640) == expected.at("adB"));
}
