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
  // The average pool made an L2_POOL_2D (code 12): an operator kiln has no int8 kernel for.
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
  bytes[p] = 12;  // L2_POOL_2D
  REQUIRE(m.open(bytes.data(), bytes.size()).ok());
  tfl::Imported model;
  const kiln::Status s = model.import(m);
  CHECK(s.code() == kiln::Errc::not_supported);
  CHECK_MESSAGE(std::strstr(s.message(), "L2_POOL_2D v2 (operator 9): operator not supported by kiln") != nullptr,
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

TEST_CASE("tflite import: TRANSPOSE (a view) into an output and into a fully-connected layer") {
  // t0 int8 [1,2,3,4] -TRANSPOSE {0,3,1,2}-> t2 [1,4,2,3] (output 0)
  //                   -TRANSPOSE {0,2,1,3}-> t4 [1,3,2,4] -RESHAPE-> t6 [1,24] -FC 5-> t9 [1,5]
  kiln_test::TfModel spec;
  spec.opcodes = {{39, 2}, {22, 1}, {9, 4}};
  const std::uint32_t p1 = spec.add_buffer(std::vector<std::int32_t>{0, 3, 1, 2});
  const std::uint32_t p2 = spec.add_buffer(std::vector<std::int32_t>{0, 2, 1, 3});
  const std::uint32_t shape = spec.add_buffer(std::vector<std::int32_t>{1, 24});
  std::vector<std::int8_t> w(5 * 24);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<std::int8_t>((i * 37) % 251 - 125);
  const std::uint32_t fw = spec.add_buffer(w);
  const std::uint32_t fb = spec.add_buffer(std::vector<std::int32_t>{100, -200, 300, -400, 500});
  const std::vector<float> q{0.1f};
  const std::vector<std::int64_t> zp{3};
  spec.tensors = {{{1, 2, 3, 4}, 9, 0, q, zp, 0},  {{4}, 2, p1, {}, {}, 0},          {{1, 4, 2, 3}, 9, 0, q, zp, 0},
                  {{4}, 2, p2, {}, {}, 0},         {{1, 3, 2, 4}, 9, 0, q, zp, 0},   {{2}, 2, shape, {}, {}, 0},
                  {{1, 24}, 9, 0, q, zp, 0},       {{5, 24}, 9, fw, {0.02f}, {0}, 0}, {{5}, 2, fb, {0.002f}, {0}, 0},
                  {{1, 5}, 9, 0, {0.05f}, {-7}, 0}};
  spec.operators = {{0, {0, 1}, {2}, 0, nullptr}, {0, {0, 3}, {4}, 0, nullptr}, {1, {4, 5}, {6}, 0, nullptr},
                    {2, {6, 7, 8}, {9}, 8, kiln_test::fbb::make_table({})}};
  spec.inputs = {0};
  // Two outputs are not imported: one model per output, the same file otherwise.
  for (const std::int32_t out : {2, 9}) {
    spec.outputs = {out};
    kiln_test::ref::Model ref;
    ref.load_bytes(spec.bytes());
    tfl::Imported model;
    const kiln::Status st = model.import(ref.view);
    REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
    auto net = kiln::compile([&model](const auto& x) { return model(x); });
    kiln::Tensor<std::int8_t> x(kiln::Shape{1, 2, 3, 4});
    std::vector<std::int8_t> xv(24);
    for (int i = 0; i < 24; ++i) x.data()[i] = xv[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(i * 11 - 120);
    const std::vector<std::int8_t> expected = kiln_test::ref::run(ref, xv);
    const kiln::Tensor<std::int8_t> y = net(x);
    REQUIRE(static_cast<std::size_t>(y.size()) == expected.size());
    CHECK(kiln_test::hex(y.data(), expected.size()) == kiln_test::hex(expected.data(), expected.size()));
  }
  // The index loop of the oracle against a hand-checked value: out[0, 1, 0, 0] = in[0, 0, 0, 1].
  spec.outputs = {2};
  kiln_test::ref::Model ref;
  ref.load_bytes(spec.bytes());
  std::vector<std::int8_t> xv(24);
  for (int i = 0; i < 24; ++i) xv[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(i);
  const std::vector<std::int8_t> t = kiln_test::ref::run(ref, xv);
  CHECK(t[6] == 1);   // [0,1,0,0] in [1,4,2,3]: flat 6; input [0,0,0,1]: flat 1
  CHECK(t[7] == 5);   // [0,1,0,1]: input [0,0,1,1] = 5
  CHECK(t[9] == 13);  // [0,1,1,0]: input [0,1,0,1] = 13
}
