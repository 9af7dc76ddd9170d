// Post-training quantisation (kiln/ptq.hpp): a float model traced, calibrated and rewritten to
// int8. Checked here:
//  - the emitted header (tests/ptq/tiny_int8.hpp, checked in) is exactly what emit_header writes
//    for the tiny model, its graph is the in-memory quantised graph node for node, and compiled it
//    gives the in-memory model's bytes (tests/test_ptq_header.cpp plans it at compile time);
//  - a fitted classifier keeps its accuracy within 3 points after PTQ (min/max and percentile);
//  - the rewrite: quantize at the input, fused layers, pools and views in int8, an op without an
//    int8 form left in float between dequantize and quantize, int8 ends on request;
//  - errors.
// The tiny model's weights, biases and inputs are multiples of 1/8 and 1/4 small enough that every
// float sum is exact, so its calibration ranges, hence the header text, are the same on every ISA.
// Set KILN_PTQ_REGENERATE=1 to rewrite tests/ptq/tiny_int8.hpp after an intended change.
#include <doctest/doctest.h>

#include <kiln/ptq.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ptq/tiny_int8.hpp"
#include "test_util.hpp"

namespace {

using kiln::index_t;
using kiln::Shape;
using kiln::Tensor;

// ---- the tiny CNN whose header is checked in -----------------------------------------------------
struct Tiny {
  Tensor<float> cw{Shape{4, 3, 3, 2}}, cb{Shape{4}}, w1{Shape{6, 36}}, b1{Shape{6}}, w2{Shape{3, 6}}, b2{Shape{3}};
  Tiny() {
    std::mt19937 gen(7);
    auto fill = [&](Tensor<float>& t, int range, float unit) {
      for (float& v : t) v = static_cast<float>(static_cast<int>(gen() % static_cast<unsigned>(2 * range + 1)) - range) * unit;
    };
    fill(cw, 8, 0.125f);
    fill(cb, 4, 0.25f);
    fill(w1, 8, 0.125f);
    fill(b1, 4, 0.25f);
    fill(w2, 8, 0.125f);
    fill(b2, 4, 0.25f);
  }
  template <class X>
  auto operator()(const X& x) const {
    auto c = kiln::relu(kiln::conv2d(x, cw, cb, kiln::Conv2dOptions().with_padding(kiln::Padding2d::same())));
    auto p = kiln::flatten(kiln::max_pool2d(c, kiln::Pool2dOptions(2)), 1);  // [n, 3 * 3 * 4]
    auto h = kiln::relu(kiln::linear(p, w1, b1));
    return kiln::softmax(kiln::linear(h, w2, b2), -1);
  }
};

std::vector<Tensor<float>> tiny_batches(int count, unsigned seed) {
  std::mt19937 gen(seed);
  std::vector<Tensor<float>> out;
  for (int b = 0; b < count; ++b) {
    Tensor<float> x(Shape{2, 6, 6, 2});
    for (float& v : x) v = static_cast<float>(static_cast<int>(gen() % 17u) - 8) * 0.25f;
    out.push_back(std::move(x));
  }
  return out;
}

std::string source_dir() {
  const std::string f = __FILE__;
  return f.substr(0, f.find_last_of("/\\") + 1);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

using kt::error_of;

}  // namespace

TEST_CASE("ptq: the emitted header is the checked-in one, its graph the in-memory graph, its bytes the same") {
  const Tiny tiny;
  const auto calib = tiny_batches(8, 3);
  const kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(tiny, calib);
  const std::string text = qm.emit_header("tiny_int8");
  REQUIRE(!text.empty());
  const std::string path = source_dir() + "ptq/tiny_int8.hpp";
  if (std::getenv("KILN_PTQ_REGENERATE")) std::ofstream(path) << text;
  CHECK_MESSAGE(text == read_file(path), "stale tests/ptq/tiny_int8.hpp: rerun with KILN_PTQ_REGENERATE=1");

  // The header's model traced (at run time here; test_ptq_header plans it in a constant
  // expression) is the quantised graph node for node: ops, shapes, dtypes, quantisation,
  // attributes and constant bytes.
  const kiln::Graph& g = qm.graph();
  kiln::Graph h;
  {
    kiln::Node in;
    in.op = kiln::Op::input;
    in.shape = tiny_int8::input_shape;
    const int x = h.add(in);
    kiln::Graph* hp = &h;
    h.add_output(tiny_int8::model(kiln::SymTensor(hp, nullptr, x)).id());
  }
  REQUIRE(h.ok());
  REQUIRE(h.size() == g.size());
  for (int i = 0; i < g.size(); ++i) {
    const kiln::Node &a = g[i], &b = h[i];
    INFO("node %" << i << ' ' << kiln::op_name(a.op));
    CHECK(a.op == b.op);
    CHECK(a.shape == b.shape);
    CHECK(a.dtype == b.dtype);
    CHECK(a.quant == b.quant);
    CHECK(a.num_inputs == b.num_inputs);
    for (int k = 0; k < a.num_inputs; ++k) CHECK(a.inputs[k] == b.inputs[k]);
    if (a.op != kiln::Op::constant) {
      CHECK(a.fn == b.fn);
      CHECK(a.win == b.win);
    } else {
      const auto bytes = static_cast<std::size_t>(a.shape.numel() * kiln::dtype_size(a.dtype));
      CHECK(std::memcmp(a.data, b.data, bytes) == 0);
    }
  }
  // Compiled from the header, the same bytes as the in-memory model.
  auto from_header = kiln::compile(tiny_int8::model);
  for (const Tensor<float>& x : tiny_batches(4, 99)) {
    const Tensor<float> y = qm(x), yh = from_header(x);
    REQUIRE(y.shape() == Shape{2, 3});
    for (index_t i = 0; i < y.size(); ++i) CHECK(y[i] == yh[i]);
  }

  // The rewrite: quantize, conv + bias + relu, max pool, flatten (a view), linear + bias + relu,
  // linear + bias, softmax, dequantize — every layer int8.
  int ops[64]{};  // indexed by Op (35 of them)
  for (int i = 0; i < g.size(); ++i) ++ops[static_cast<int>(g[i].op)];
  CHECK(ops[static_cast<int>(kiln::Op::quantize)] == 1);
  CHECK(ops[static_cast<int>(kiln::Op::dequantize)] == 1);
  CHECK(ops[static_cast<int>(kiln::Op::qconv2d)] == 1);
  CHECK(ops[static_cast<int>(kiln::Op::qpool2d)] == 1);
  CHECK(ops[static_cast<int>(kiln::Op::qlinear)] == 2);
  CHECK(ops[static_cast<int>(kiln::Op::qsoftmax)] == 1);
  CHECK(ops[static_cast<int>(kiln::Op::elementwise)] == 0);
  REQUIRE(qm.layers().size() == 5);
  CHECK(qm.layers()[0].what == "qconv2d + bias + relu");
  CHECK(qm.layers()[0].output.zero_point == -128);  // a relu output starts at the real 0
  CHECK(qm.layers()[0].weight_scale_max <= 1.f / 127.f + 1e-9f);  // |w| <= 1: scale max|w| / 127

  // Against the float model: a softmax output moves by a few 1/256 steps at most.
  const kiln::ptq::Evaluation e = qm.evaluate(tiny_batches(16, 5));
  CHECK(e.samples == 32);
  CHECK(e.max_abs_error < 0.06);
  CHECK(e.agreement >= 0.9);
}

namespace {

// A fitted classifier on Gaussian blobs: random ReLU features, then the nearest-class-mean
// layer in feature space (logit_c = mu_c . h - |mu_c|^2 / 2), fitted on training data.
struct Blobs {
  static constexpr int kDim = 16, kHidden = 48, kClasses = 4;
  std::vector<std::vector<float>> means;
  std::mt19937 gen{1234};
  Blobs() {
    std::normal_distribution<float> d(0.f, 1.2f);
    for (int c = 0; c < kClasses; ++c) {
      std::vector<float> m(kDim);
      for (float& v : m) v = d(gen);
      means.push_back(m);
    }
  }
  // A batch of n samples and their labels.
  Tensor<float> batch(int n, std::vector<int>& labels) {
    std::normal_distribution<float> noise(0.f, 1.f);
    Tensor<float> x(Shape{n, kDim});
    labels.assign(static_cast<std::size_t>(n), 0);
    for (int i = 0; i < n; ++i) {
      const int c = static_cast<int>(gen() % kClasses);
      labels[static_cast<std::size_t>(i)] = c;
      for (int k = 0; k < kDim; ++k) x(i, k) = means[static_cast<std::size_t>(c)][static_cast<std::size_t>(k)] + noise(gen);
    }
    return x;
  }
};

struct Classifier {
  Tensor<float> w1{Shape{Blobs::kHidden, Blobs::kDim}}, b1{Shape{Blobs::kHidden}};
  Tensor<float> w2{Shape{Blobs::kClasses, Blobs::kHidden}}, b2{Shape{Blobs::kClasses}};
  bool with_tanh = false;  // an op without an int8 form in the middle
  template <class X>
  auto operator()(const X& x) const {
    auto h = kiln::relu(kiln::linear(x, w1, b1));
    if (with_tanh) return kiln::linear(kiln::tanh(h), w2, b2);
    return kiln::linear(h, w2, b2);
  }
};

Classifier fit(Blobs& data) {
  Classifier m;
  std::normal_distribution<float> d(0.f, 0.35f);
  for (float& v : m.w1) v = d(data.gen);
  for (float& v : m.b1) v = d(data.gen);
  std::vector<int> labels;
  const Tensor<float> x = data.batch(2000, labels);
  const Tensor<float> h = kiln::eager([&](const auto& in) { return kiln::relu(kiln::linear(in, m.w1, m.b1)); })(x);
  std::vector<double> sum(Blobs::kClasses * Blobs::kHidden, 0.0);
  std::vector<int> count(Blobs::kClasses, 0);
  for (index_t i = 0; i < x.shape()[0]; ++i) {
    const int c = labels[static_cast<std::size_t>(i)];
    ++count[static_cast<std::size_t>(c)];
    for (int k = 0; k < Blobs::kHidden; ++k) sum[static_cast<std::size_t>(c * Blobs::kHidden + k)] += h(i, k);
  }
  for (int c = 0; c < Blobs::kClasses; ++c) {
    double norm = 0.0;
    for (int k = 0; k < Blobs::kHidden; ++k) {
      const double mu = sum[static_cast<std::size_t>(c * Blobs::kHidden + k)] / count[static_cast<std::size_t>(c)];
      m.w2(c, k) = static_cast<float>(mu);
      norm += mu * mu;
    }
    m.b2[c] = static_cast<float>(-norm / 2);
  }
  return m;
}

}  // namespace

TEST_CASE("ptq keeps a fitted classifier's accuracy (min/max and percentile calibration)") {
  Blobs data;
  const Classifier model = fit(data);
  std::vector<Tensor<float>> calib, eval;
  std::vector<std::vector<int>> labels;
  for (int b = 0; b < 4; ++b) {
    std::vector<int> l;
    calib.push_back(data.batch(64, l));
  }
  for (int b = 0; b < 10; ++b) {
    labels.emplace_back();
    eval.push_back(data.batch(64, labels.back()));
  }
  for (const auto cal : {kiln::ptq::Calibration::min_max, kiln::ptq::Calibration::percentile}) {
    kiln::ptq::Options o;
    o.calibration = cal;
    o.percentile = 99.9;
    const kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(model, calib, o);
    const kiln::ptq::Evaluation e = qm.evaluate(eval, labels);
    std::ostringstream report;
    qm.print_report(report);
    INFO(report.str());
    MESSAGE(std::string(cal == kiln::ptq::Calibration::min_max ? "min/max" : "percentile 99.9") << ": float accuracy "
            << e.float_accuracy << ", int8 " << e.int8_accuracy << ", argmax agreement " << e.agreement
            << ", max |error| " << e.max_abs_error);
    CHECK(e.samples == 640);
    CHECK(e.float_accuracy > 0.8);
    CHECK(std::fabs(e.int8_accuracy - e.float_accuracy) <= 0.03);
    CHECK(e.agreement >= 0.95);
    CHECK(report.str().find("qlinear + bias + relu [64, 48]: in ") != std::string::npos);
    CHECK(qm.layers().size() == 2);
    // The float model on the engine path is the float model.
    const Tensor<float> yf = qm.run_float(eval[0]), want = model(eval[0]);
    for (index_t i = 0; i < yf.size(); ++i) CHECK(std::fabs(yf[i] - want[i]) <= 1e-4f * (1.f + std::fabs(want[i])));
  }
}

TEST_CASE("ptq: an op without an int8 form stays float between dequantize and quantize; int8 ends") {
  Blobs data;
  Classifier model = fit(data);
  model.with_tanh = true;
  std::vector<int> l;
  const std::vector<Tensor<float>> calib{data.batch(64, l), data.batch(64, l)};
  const kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(model, calib);
  const kiln::Graph& g = qm.graph();
  // quantize -> qlinear(relu) -> dequantize -> tanh -> quantize -> qlinear -> dequantize
  std::vector<kiln::Op> seq;
  for (int i = 0; i < g.size(); ++i)
    if (g[i].op != kiln::Op::constant && g[i].op != kiln::Op::input) seq.push_back(g[i].op);
  const std::vector<kiln::Op> want{kiln::Op::quantize,   kiln::Op::qlinear,  kiln::Op::dequantize, kiln::Op::elementwise,
                                   kiln::Op::quantize,   kiln::Op::qlinear,  kiln::Op::dequantize};
  CHECK(seq == want);
  const kiln::ptq::Evaluation e = qm.evaluate({data.batch(64, l)});
  CHECK(e.agreement >= 0.9);

  // Keeping a layer in f32 (issue 7's lever): the second linear's bias add listed keeps the whole
  // layer float, fed by a dequantize.
  int last_add = -1;
  for (int i = 0; i < qm.float_graph().size(); ++i)
    if (qm.float_graph()[i].op == kiln::Op::elementwise && qm.float_graph()[i].fn == kiln::EwFn::add) last_add = i;
  kiln::ptq::Options keep;
  keep.keep_float = {last_add};
  const kiln::ptq::QuantizedModel mixed = kiln::ptq::quantize_model(model, calib, keep);
  REQUIRE(mixed.layers().size() == 1);
  CHECK(mixed.layers()[0].what == "qlinear + bias + relu");
  const kiln::Graph& gm = mixed.graph();
  CHECK(gm[gm.output(0)].op == kiln::Op::elementwise);  // the float bias add is the output
  CHECK(mixed.evaluate({data.batch(64, l)}).agreement >= 0.9);

  // int8 at both ends: the model takes and returns i8 with the calibrated quantisation.
  kiln::ptq::Options o;
  o.int8_input = o.int8_output = true;
  const kiln::ptq::QuantizedModel q8 = kiln::ptq::quantize_model(model, calib, o);
  const kiln::Graph& g8 = q8.graph();
  CHECK(g8[g8.input(0)].dtype == kiln::DType::i8);
  CHECK(g8[g8.input(0)].quant.valid());
  CHECK(g8[g8.output(0)].dtype == kiln::DType::i8);
  const kiln::ptq::Evaluation e8 = q8.evaluate({data.batch(64, l)});
  CHECK(e8.agreement >= 0.9);
  const Tensor<std::int8_t> xq(Shape{64, Blobs::kDim});
  CHECK(q8.run<std::int8_t>(xq).shape() == Shape{64, Blobs::kClasses});
}

TEST_CASE("ptq: batch norm folds into the conv before quantisation; depthwise convs and adds quantise") {
  std::mt19937 gen(21);
  std::normal_distribution<float> d(0.f, 0.3f);
  auto t = [&](const Shape& s, float add = 0.f) {
    Tensor<float> x(s);
    for (float& v : x) v = d(gen) + add;
    return x;
  };
  const Tensor<float> w = t({6, 3, 3, 3}), dw = t({6, 3, 3, 1}), gamma = t({6}, 1.f), beta = t({6}), mean = t({6});
  Tensor<float> var = t({6});
  for (float& v : var) v = v * v + 0.5f;
  auto model = [&](const auto& x) {
    auto a = kiln::relu(kiln::batch_norm(kiln::conv2d(x, w), gamma, beta, mean, var));
    auto b = kiln::relu6(kiln::conv2d(a, dw, kiln::Conv2dOptions().with_groups(6).with_padding(kiln::Padding2d::same())));
    return kiln::avg_pool2d(a + b, kiln::Pool2dOptions(2));
  };
  std::vector<Tensor<float>> calib;
  for (int i = 0; i < 4; ++i) calib.push_back(t({2, 9, 9, 3}));
  const kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(model, calib);
  std::ostringstream report;
  qm.print_report(report);
  INFO(report.str());
  std::vector<std::string> layers;
  for (const kiln::ptq::Layer& l : qm.layers()) layers.push_back(l.what);
  const std::vector<std::string> want{"qconv2d + bias + relu", "qconv2d depthwise + relu6", "qadd", "qavg_pool2d"};
  CHECK(layers == want);
  const kiln::ptq::Evaluation e = qm.evaluate({t({2, 9, 9, 3}), t({2, 9, 9, 3})});
  const Tensor<float> y = qm.run_float(calib[0]);
  float peak = 0.f;
  for (float v : y) peak = std::max(peak, std::fabs(v));
  INFO("max |error| " << e.max_abs_error << ", output peak " << peak);
  CHECK(e.max_abs_error < 0.05 * peak);  // a few quantisation steps of the output range
}

TEST_CASE("ptq errors") {
  const Tiny tiny;
  CHECK(error_of([&] { (void)kiln::ptq::quantize_model(tiny, {}); }).find("ptq: no calibration batches") !=
        std::string::npos);
  const std::string shapes = error_of([&] {
    (void)kiln::ptq::quantize_model(tiny, {Tensor<float>(Shape{2, 6, 6, 2}), Tensor<float>(Shape{1, 6, 6, 2})});
  });
  CHECK(shapes.find("ptq: calibration batch [1, 6, 6, 2] differs from the first, [2, 6, 6, 2]") != std::string::npos);
  const kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(tiny, tiny_batches(2, 1));
  const std::string call = error_of([&] { (void)qm(Tensor<float>(Shape{1, 6, 6, 2})); });
  CHECK(call.find("ptq: the model takes [2, 6, 6, 2] f32") != std::string::npos);
}
