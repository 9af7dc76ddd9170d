// Run-time import (kiln/tflite/import.hpp): the four MLPerf Tiny .tflite models -> kiln graph ->
// compile(): the arena is planned before the first run (prepare), and the outputs equal TFLite
// Micro's bytes exactly on inputs A and B (/work/shared/models/reference); kiln::eager (op by
// op through the same graph) gives the same bytes. A synthetic model (tests/tflite_builder.hpp)
// covers what those files lack (float input + QUANTIZE, dilation, per-channel conv with RELU6,
// MAX_POOL_2D, RELU_N1_TO_1), checked against the layer-by-layer kernel run
// (tests/tflite_reference.hpp). Also: an unsupported model is refused by import() with the
// operator named. Models from $KILN_MODELS_DIR, else /work/shared/models.
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>
#include <kiln/tflite.hpp>
#include <kiln/tflite/import.hpp>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tflite_builder.hpp"
#include "tflite_models.hpp"
#include "tflite_reference.hpp"

namespace tfl = kiln::tflite;

TEST_CASE("tflite import: MLPerf Tiny models through compile() give TFLite Micro's bytes") {
  const std::map<std::string, std::string> expected = kiln_test::tflm_expected_outputs();
  if (expected.empty()) {
    MESSAGE("no models at " << kiln_test::models_dir() << " (set KILN_MODELS_DIR): nothing checked");
    return;
  }
  for (const auto& entry : kiln_test::kMlperfTinyModels) {
    const std::string name = entry.first, file = entry.second;
    INFO("model " << name);
    const std::vector<std::uint8_t> bytes = kiln_test::read_bytes(kiln_test::models_dir() + "/" + file);
    REQUIRE(!bytes.empty());
    tfl::Model m;
    kiln::Status st = m.open(bytes.data(), bytes.size());
    REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
    tfl::Imported model;
    st = model.import(m);
    REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
    REQUIRE(model.input_dtype() == kiln::DType::i8);

    auto fn = [&model](const auto& x) { return model(x); };
    auto net = kiln::compile(fn);
    const std::size_t n = static_cast<std::size_t>(model.input_shape().numel());
    kiln::Tensor<std::int8_t> a(model.input_shape()), b(model.input_shape());
    const std::vector<std::int8_t> in_a = kiln_test::tflm_input_a(name, n);
    REQUIRE(in_a.size() == n);
    std::memcpy(a.data(), in_a.data(), n);
    for (std::size_t i = 0; i < n; ++i) b.data()[i] = static_cast<std::int8_t>(model.input_quant().zero_point);

    // Planned before anything runs.
    REQUIRE(net.prepare(a));
    const kiln::Stats s = net.stats();
    MESSAGE(name << ": " << m.num_operators() << " operators -> " << s.kernels << " kernels; arena " << s.arena_bytes
                 << " B (liveness lower bound " << s.lower_bound << " B)");
    CHECK(s.arena_bytes > 0);
    CHECK(s.arena_bytes >= s.lower_bound);

    const kiln::Tensor<std::int8_t> ya = net(a), yb = net(b);
    REQUIRE(ya.shape() == model.output_shape());
    CHECK(kiln_test::hex(ya.data(), static_cast<std::size_t>(ya.size())) == expected.at(name + "A"));
    CHECK(kiln_test::hex(yb.data(), static_cast<std::size_t>(yb.size())) == expected.at(name + "B"));

    const kiln::Tensor<std::int8_t> ea = kiln::eager(fn)(a);
    CHECK(kiln_test::hex(ea.data(), static_cast<std::size_t>(ea.size())) == expected.at(name + "A"));
  }
}

TEST_CASE("tflite import: an unsupported operator is refused by name before anything runs") {
  std::vector<std::uint8_t> bytes = kiln_test::read_bytes(kiln_test::models_dir() + "/kws_ref_model.tflite");
  if (bytes.empty()) return;
  tfl::Model m;
  REQUIRE(m.open(bytes.data(), bytes.size()).ok());
  // The average pool made a MEAN (code 40): an operator kiln has no int8 kernel for.
  int pool_code = -1;
  for (int i = 0; i < m.num_operator_codes(); ++i) {
    std::int32_t code = 0;
    int version = 0;
    m.operator_code(i, code, version);
    if (code == static_cast<std::int32_t>(tfl::BuiltinOp::AVERAGE_POOL_2D)) pool_code = i;
  }
  REQUIRE(pool_code >= 0);
  tfl::fb::Reader r(bytes.data(), bytes.size());
  const tfl::fb::Table root = r.root("root");
  const tfl::fb::Table t =
      r.table_at(r.vector(root, tfl::field::model::operator_codes, 4, "codes"), static_cast<std::uint32_t>(pool_code), "code");
  const std::size_t p = r.field_pos(t, tfl::field::operator_code::deprecated_builtin_code, 1, "code");
  REQUIRE(p != 0);
  bytes[p] = static_cast<std::uint8_t>(tfl::BuiltinOp::MEAN);
  REQUIRE(m.open(bytes.data(), bytes.size()).ok());
  tfl::Imported model;
  const kiln::Status s = model.import(m);
  CHECK(s.code() == kiln::Errc::not_supported);
  CHECK_MESSAGE(std::strstr(s.message(), "MEAN v2 (operator 9): operator not supported by kiln") != nullptr,
                std::string(s.message()));
}

TEST_CASE("tflite import: a synthetic float-in CNN equals the layer-by-layer kernels, compiled and eager") {
  kiln_test::ref::Model ref;
  ref.load_bytes(kiln_test::small_cnn_model().bytes());  // also checks the support check accepts it
  tfl::Imported model;
  const kiln::Status st = model.import(ref.view);
  REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
  REQUIRE(model.input_dtype() == kiln::DType::f32);
  REQUIRE(model.output_shape() == kiln::Shape{1, 16});

  auto fn = [&model](const auto& x) { return model(x); };
  auto net = kiln::compile(fn);
  std::uint32_t seed = 99;
  std::map<int, int> seen;  // output values: the comparison is not between constants
  for (int run = 0; run < 20; ++run) {
    kiln::Tensor<float> x(model.input_shape());
    std::vector<float> xf(static_cast<std::size_t>(x.size()));
    for (std::size_t i = 0; i < xf.size(); ++i) {
      seed = seed * 1664525u + 1013904223u;
      xf[i] = static_cast<float>(static_cast<int>(seed >> 20) - 2048) / 400.f;  // about [-5, 5]
      x.data()[i] = xf[i];
    }
    const std::vector<std::int8_t> expected = kiln_test::ref::run(ref, {}, xf);
    const kiln::Tensor<std::int8_t> y = net(x);
    REQUIRE(static_cast<std::size_t>(y.size()) == expected.size());
    CHECK(kiln_test::hex(y.data(), expected.size()) == kiln_test::hex(expected.data(), expected.size()));
    if (run == 0) {
      const kiln::Tensor<std::int8_t> e = kiln::eager(fn)(x);
      CHECK(kiln_test::hex(e.data(), expected.size()) == kiln_test::hex(expected.data(), expected.size()));
    }
    for (std::int8_t v : expected) ++seen[v];
  }
  CHECK(seen.size() >= 5);
}
