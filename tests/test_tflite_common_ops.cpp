// TFLite import of the common int8 operators (PAD, HARD_SWISH, MEAN, MUL, STRIDED_SLICE,
// LOGISTIC, TANH, CONCATENATION): a synthetic model written by tests/tflite_builder.hpp, imported
// (support checks, options decoded), compiled and run eagerly; every checked tensor equals an
// oracle written here from TFLite's semantics — the slice indices, padding positions and joined
// blocks spelled out by hand from the options in the file, the arithmetic per element from the
// kernels' one-element functions (checked against independent references in
// test_int8_tfops.cpp) with TFLite's Prepare on the file's quantisation. Unsupported options
// and versions are refused by name before anything runs; the emitted C++ (tflite/emit.hpp)
// writes the same front-end calls.
#include <doctest/doctest.h>

#include <kiln/kernels/int8.hpp>
#include <kiln/kiln.hpp>
#include <kiln/tflite.hpp>
#include <kiln/tflite/emit.hpp>
#include <kiln/tflite/import.hpp>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "tflite_common_ops_model.hpp"

namespace tfl = kiln::tflite;
namespace k8 = kiln::kernels::int8;
namespace q = kiln::quant;
using kiln_test::fbb::make_table;
using kiln_test::fbb::scalar;
using namespace kiln_test::common_ops;

namespace {

using Bytes = std::vector<std::int8_t>;

// The oracle: every tensor of the model above, by hand.
std::vector<Bytes> oracle(const Bytes& x) {
  std::vector<Bytes> t(21);
  auto at4 = [](const Bytes& v, int h, int w, int c, int W, int C) { return v[static_cast<std::size_t>((h * W + w) * C + c)]; };
  // PAD: rows 1..4 and columns 0..5 hold x, the rest the zero point 2.
  t[2].assign(147, static_cast<std::int8_t>(kX.zero_point));
  for (int h = 0; h < 4; ++h)
    for (int w = 0; w < 6; ++w)
      for (int c = 0; c < 3; ++c) t[2][static_cast<std::size_t>(((h + 1) * 7 + w) * 3 + c)] = at4(x, h, w, c, 6, 3);
  bool ok = false;
  const k8::UnaryParams hs = k8::make_hard_swish_params(kX.scale, kX.zero_point, kHs.scale, kHs.zero_point, ok);
  REQUIRE(ok);
  for (std::int8_t v : t[2]) t[3].push_back(k8::unary_one(hs, v));
  // MEAN over H, W (49 elements) per channel, TFLM's folded multiplier.
  const k8::MeanParams mp = k8::make_mean_params(kHs, kMean, 0b110u, 49);
  for (int c = 0; c < 3; ++c) {
    std::int32_t sum = 0;
    for (int e = 0; e < 49; ++e) sum += t[3][static_cast<std::size_t>(e * 3 + c)];
    const std::int32_t v = q::multiply_by_quantized_multiplier(sum - kHs.zero_point * 49, mp.multiplier, mp.shift) +
                           kMean.zero_point;
    t[5].push_back(static_cast<std::int8_t>(v < -128 ? -128 : v > 127 ? 127 : v));
  }
  const k8::MulParams mul = k8::make_mul_params(kHs, kMean, kMul, q::activation_range(q::Activation::relu, kMul));
  for (std::size_t i = 0; i < 147; ++i) t[6].push_back(k8::mul_one(mul, t[3][i], t[5][i % 3]));
  // STRIDED_SLICE: rows -1 -> 6, 4, 2 (stop 0 exclusive), columns 1, 3, 5, every channel (end_mask).
  for (int h : {6, 4, 2})
    for (int w : {1, 3, 5})
      for (int c = 0; c < 3; ++c) t[10].push_back(at4(t[6], h, w, c, 7, 3));
  const k8::UnaryParams lg = k8::make_sigmoid_params(k8::UnaryFn::logistic, kMul.scale, kMul.zero_point, ok);
  const k8::UnaryParams th = k8::make_sigmoid_params(k8::UnaryFn::tanh, kMul.scale, kMul.zero_point, ok);
  const k8::UnaryParams lg2 = k8::make_sigmoid_params(k8::UnaryFn::logistic, kTanh.scale, kTanh.zero_point, ok);
  for (std::int8_t v : t[10]) {
    t[11].push_back(k8::unary_one(lg, v));
    t[12].push_back(k8::unary_one(th, v));
    t[13].push_back(k8::unary_one(lg2, t[12].back()));
  }
  // CONCATENATION along channels: t11, t13, t11 (equal quantisation: copies).
  for (int p = 0; p < 9; ++p)
    for (const Bytes* src : {&t[11], &t[13], &t[11]})
      for (int c = 0; c < 3; ++c) t[14].push_back((*src)[static_cast<std::size_t>(p * 3 + c)]);
  // STRIDED_SLICE with the ellipsis over dims 0..2 and channel 1 shrunk away.
  for (int p = 0; p < 9; ++p) t[18].push_back(t[14][static_cast<std::size_t>(p * 9 + 1)]);
  const k8::MeanParams mp2 = k8::make_mean_params(kLog, kOut, 0b100u, 3);
  for (int r = 0; r < 3; ++r) {
    const std::int32_t sum = t[18][static_cast<std::size_t>(3 * r)] + t[18][static_cast<std::size_t>(3 * r + 1)] +
                             t[18][static_cast<std::size_t>(3 * r + 2)];
    const std::int32_t v = q::multiply_by_quantized_multiplier(sum - kLog.zero_point * 3, mp2.multiplier, mp2.shift) +
                           kOut.zero_point;
    t[20].push_back(static_cast<std::int8_t>(v < -128 ? -128 : v > 127 ? 127 : v));
  }
  return t;
}

std::string import_error(const kiln_test::TfModel& spec) {
  const std::vector<std::uint8_t> bytes = spec.bytes();
  tfl::Model m;
  kiln::Status s = m.open(bytes.data(), bytes.size());
  if (!s) return std::string("open: ") + s.message();
  tfl::Imported model;
  s = model.import(m);
  return s ? "no error" : s.message();
}

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("tflite import: PAD, HARD_SWISH, MEAN, MUL, STRIDED_SLICE, LOGISTIC, TANH, CONCATENATION byte for byte") {
  kiln_test::TfModel spec = common_ops_model();
  std::uint32_t seed = 5;
  for (const std::int32_t out : {6, 10, 14, 18, 20}) {
    spec.outputs = {out};
    const std::vector<std::uint8_t> bytes = spec.bytes();
    tfl::Model m;
    REQUIRE(m.open(bytes.data(), bytes.size()).ok());
    tfl::Imported model;
    const kiln::Status st = model.import(m);
    REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
    auto fn = [&model](const auto& x) { return model(x); };
    auto net = kiln::compile(fn);
    for (int run = 0; run < 4; ++run) {
      kiln::Tensor<std::int8_t> x(kiln::Shape{1, 4, 6, 3});
      Bytes xv(72);
      for (std::size_t i = 0; i < 72; ++i) {
        seed = seed * 1664525u + 1013904223u;
        x.data()[i] = xv[i] = static_cast<std::int8_t>(static_cast<int>(seed >> 24) - 128);
      }
      const Bytes want = oracle(xv)[static_cast<std::size_t>(out)];
      const kiln::Tensor<std::int8_t> y = net(x);
      INFO("output tensor " << out << ", run " << run);
      REQUIRE(y.shape() == m.tensor(out).shape);
      REQUIRE(static_cast<std::size_t>(y.size()) == want.size());
      for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(y.data()[i] == want[i]);
      if (run == 0) {
        const kiln::Tensor<std::int8_t> e = kiln::eager(fn)(x);
        for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(e.data()[i] == want[i]);
      }
    }
  }
  // The ahead-of-time path writes the same front-end calls.
  spec.outputs = {20};
  const std::vector<std::uint8_t> bytes = spec.bytes();
  tfl::Model m;
  REQUIRE(m.open(bytes.data(), bytes.size()).ok());
  tfl::Imported model;
  REQUIRE(model.import(m).ok());
  std::ostringstream os;
  REQUIRE(tfl::emit_header(model, os, "common_ops", "common_ops.tflite").ok());
  const std::string h = os.str();
  CHECK(has(h, "kiln::qpad(t0, 1, 1, 2)"));
  CHECK(has(h, "kiln::qpad(kiln::qpad(t0, 1, 1, 2), 2, 0, 1)"));
  CHECK(has(h, "kiln::qhard_swish(t2, "));
  CHECK(has(h, "kiln::qmean(t3, 6u, "));
  CHECK(has(h, "kiln::qmul(t3, t5, "));
  CHECK(has(h, "kiln::qslice(kiln::qslice(t6, 1, 6, 3, -2), 2, 1, 3, 2)"));
  CHECK(has(h, "kiln::qconcat(kiln::qconcat(t11, t13, 3, "));
  CHECK(has(h, "kiln::reshape(kiln::qslice(t14, 3, 1, 1, 1), kiln::Shape{1, 3, 3})"));
}

TEST_CASE("tflite import: unsupported options and versions of the common operators are refused by name") {
  const kiln_test::TfModel base = [] {
    kiln_test::TfModel m = common_ops_model();
    m.outputs = {20};
    return m;
  }();
  {  // STRIDED_SLICE's offset
    kiln_test::TfModel m = base;
    m.operators[4].options = make_table({scalar<std::int32_t>(1, 0b1000), scalar<std::uint8_t>(5, 1)});
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "STRIDED_SLICE v4 (operator 4): option offset"), e);
  }
  {  // MUL with a fused TANH
    kiln_test::TfModel m = base;
    m.operators[3].options = make_table({scalar<std::int8_t>(0, 4)});
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "MUL v2 (operator 3): fused activation TANH is not supported"), e);
  }
  {  // LOGISTIC whose output is not 1/256, -128
    kiln_test::TfModel m = base;
    m.tensors[11].zero_points = {0};
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "LOGISTIC v2 (operator 5): output quantisation must be scale 1/256, zero point -128"), e);
  }
  {  // CONCATENATION of inputs with other quantisation than the output (TFLite's int8 rule)
    kiln_test::TfModel m = base;
    m.tensors[14].scales = {0.01f};
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "CONCATENATION v2 (operator 8): input 0 and the output have different quantisation"), e);
  }
  {  // MEAN version 4 (int16 and later): beyond what kiln checked
    kiln_test::TfModel m = base;
    m.opcodes[2].second = 4;
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "MEAN v4 (operator 2): version 4 not supported"), e);
  }
  {  // PAD with float paddings
    kiln_test::TfModel m = base;
    m.tensors[1].type = 0;
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "PAD v2 (operator 0): paddings (tensor 1, FLOAT32 [4, 2]) must be a constant int32 tensor"), e);
  }
  {  // MEAN's axes computed at run time: refused when the file is opened (not a constant, no producer)
    kiln_test::TfModel m = base;
    m.tensors[4].buffer = 0;
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "MEAN v2 (operator 2): input 1 (tensor 4) is neither"), e);
  }
  {  // MUL with a constant operand (kiln imports constants only as weights)
    kiln_test::TfModel m = base;
    m.tensors[5].buffer = m.add_buffer(std::vector<std::int8_t>{1, 2, 3});
    m.operators.erase(m.operators.begin() + 2);  // MEAN no longer writes tensor 5: a constant now
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "MUL v2 (operator 2): input 1 (tensor 5) is a constant"), e);
  }
  {  // ADD with a constant operand: refused too (it used to reach the importer without a value)
    kiln_test::TfModel m;
    m.opcodes = {{0, 1}};
    const std::uint32_t c = m.add_buffer(std::vector<std::int8_t>{1, 2, 3});
    m.tensors = {{{1, 3}, 9, 0, {0.1f}, {0}, 0}, {{1, 3}, 9, c, {0.1f}, {0}, 0}, {{1, 3}, 9, 0, {0.2f}, {0}, 0}};
    m.operators = {{0, {0, 1}, {2}, 11, make_table({})}};
    m.inputs = {0};
    m.outputs = {2};
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "ADD v1 (operator 0): input 1 (tensor 1) is a constant"), e);
  }
  {  // a shrink_axis with a negative stride
    kiln_test::TfModel m = base;
    m.operators[4].options = make_table({scalar<std::int32_t>(1, 0b1000), scalar<std::int32_t>(4, 0b10)});
    const std::string e = import_error(m);
    CHECK_MESSAGE(has(e, "STRIDED_SLICE v4 (operator 4): shrink_axis with a negative stride"), e);
  }
}
