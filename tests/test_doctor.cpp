// The precision doctor (kiln/ptq/doctor.hpp) on constructed cases whose answer is known:
//  - an MLP whose middle layer has one huge outlier weight column (every output channel's scale
//    is set by it, the other weights round to a few levels): that layer must be the one kept in
//    f32, the others stay int8, and the output then meets the criterion;
//  - the same with layer 2's outlier input slightly above 0: its producer (layer 1) is kept too;
//  - a per-tensor model with one huge dead output channel: fixed by the per-channel variant alone;
//  - the per-node observation against an independent reference (a naive f32 forward pass);
//  - the configuration's text round trip and apply (same bytes as quantising with keep_float);
//  - bad input: samples of the wrong shape, a criterion that cannot be met within the budget,
//    a configuration naming nodes that no longer exist.
#include <doctest/doctest.h>

#include <kiln/ptq/doctor.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "doctor_mlp.hpp"

namespace {

using kiln::index_t;
using kiln::Shape;
using kiln::Tensor;

// tests/doctor_mlp.hpp's MLP; `outlier`: layer 2 (width 20) made sensitive to int8.
struct Mlp : kt::DoctorMlp {
  explicit Mlp(bool outlier) : kt::DoctorMlp(11) {
    // Input 0 of layer 2 is relu(x . w1[0] + b1[0]) with w1[0] = 0, b1[0] = 0: exactly 0 (in int8
    // too: activation ranges contain 0 exactly), so a weight of 300 there changes nothing in f32
    // but sets every output channel's int8 weight scale to 300/127 (per channel or not).
    if (outlier) {
      for (index_t k = 0; k < 16; ++k) w1[k] = 0.f;
      b1[0] = 0.f;
      for (index_t c = 0; c < 20; ++c) w2[c * 24] = 300.f;
    }
  }
};

std::vector<Tensor<float>> batches(int count, unsigned seed) { return kt::doctor_batches(count, seed); }

// Naive f32 forward of one layer (out[r][c] = act(b[c] + sum_k x[r][k] w[c][k])).
std::vector<float> layer(const std::vector<float>& x, index_t rows, const Tensor<float>& w, const Tensor<float>& b,
                         bool relu) {
  const index_t out = w.shape()[0], in = w.shape()[1];
  std::vector<float> y(static_cast<std::size_t>(rows * out));
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < out; ++c) {
      double s = b[c];
      for (index_t k = 0; k < in; ++k) s += static_cast<double>(x[static_cast<std::size_t>(r * in + k)]) * w[c * in + k];
      y[static_cast<std::size_t>(r * out + c)] = relu ? std::max(0.f, static_cast<float>(s)) : static_cast<float>(s);
    }
  return y;
}

// The output node's row (the float graph's last node here).
const kiln::ptq::NodeError& output_of(const std::vector<kiln::ptq::NodeError>& v) { return v.back(); }

// The doctor on the outlier MLP (calibration and samples from fixed seeds), without timing.
kiln::ptq::Diagnosis diagnose_outlier(const kiln::ptq::Criterion& c, int samples) {
  kiln::ptq::DoctorOptions o;
  o.criterion = c;
  o.measure_cost = false;
  return kiln::ptq::diagnose(Mlp(true), batches(4, 100), batches(samples, 200), o);
}

}  // namespace

TEST_CASE("doctor: the layer with an outlier weight column is the one kept in f32") {
  const kiln::ptq::Diagnosis d = diagnose_outlier({0.02, 0.0, kiln::ptq::Statistic::mean}, 3);
  REQUIRE(d.status.ok());
  // Plain int8 misses the criterion at the output, and the earliest violation is layer 2's output.
  REQUIRE(!d.before.empty());
  CHECK(output_of(d.before).violates());
  int first = -1;
  for (const auto& e : d.before)
    if (e.violates()) {
      first = e.node;
      break;
    }
  REQUIRE(first >= 0);
  CHECK(d.before[static_cast<std::size_t>(first)].shape == Shape{8, 20});
  // The doctor keeps exactly one layer, layer 2, and meets the criterion.
  CHECK(d.met);
  REQUIRE(d.config.kept.size() == 1);
  CHECK(d.config.kept[0].shape == Shape{8, 20});
  CHECK(!output_of(d.after).violates());
  int int8_after = 0;
  for (const auto& e : d.after) int8_after += e.precision == "int8";
  CHECK(int8_after == 2);  // layers 1 and 3 stay int8
  // Without the outlier, plain int8 already meets the criterion: nothing is kept.
  kiln::ptq::DoctorOptions o;
  o.criterion = {0.02, 0.0, kiln::ptq::Statistic::mean};
  o.measure_cost = false;
  const kiln::ptq::Diagnosis clean = kiln::ptq::diagnose(Mlp(false), batches(4, 100), batches(3, 200), o);
  CHECK(clean.met);
  CHECK(clean.config.kept.empty());
}

TEST_CASE("doctor: when the f32 layer still reads a badly quantised input, its producer is kept too") {
  // As the outlier MLP, but layer 2's input 0 is relu(1e-3) instead of exactly 0: int8 rounds it to
  // 0 or one step (~1e-2), and the weight of 300 turns that into an error of up to ~3. Keeping
  // layer 2 in f32 fixes its weights but not its (dequantised int8) input; only keeping layer 1,
  // its producer, in f32 too removes it. Layer 3 stays int8.
  Mlp m(true);
  m.b1[0] = 1e-3f;
  kiln::ptq::DoctorOptions o;
  o.criterion = {0.02, 0.0, kiln::ptq::Statistic::mean};
  o.measure_cost = false;
  const kiln::ptq::Diagnosis d = kiln::ptq::diagnose(m, batches(4, 100), batches(3, 200), o);
  REQUIRE(d.status.ok());
  CHECK(d.met);
  REQUIRE(d.config.kept.size() == 2);
  CHECK(d.config.kept[0].shape == Shape{8, 20});  // layer 2 first (the earliest violation)
  CHECK(d.config.kept[1].shape == Shape{8, 24});  // then its producer, layer 1
  CHECK(d.config.kept[1].reason.find("producer") != std::string::npos);
  CHECK(output_of(d.after).precision == "int8");
}

TEST_CASE("doctor: a per-tensor model with one huge (dead) output channel is fixed by per-channel scales") {
  // Layer 2's output channel 0 has weights 100x the rest and a bias that keeps it below 0, so its
  // relu is 0 in f32 and int8 alike; one weight scale for the tensor (per_channel = false) then
  // rounds the other channels' weights to a level or two. Per-channel scales fix that alone.
  Mlp m(false);
  for (index_t k = 0; k < 24; ++k) m.w2[k] *= 200.f;
  m.b2[0] = -1e4f;
  kiln::ptq::DoctorOptions o;
  o.criterion = {0.02, 0.0, kiln::ptq::Statistic::mean};
  o.measure_cost = false;
  o.base.per_channel = false;
  const kiln::ptq::Diagnosis d = kiln::ptq::diagnose(m, batches(4, 100), batches(3, 200), o);
  REQUIRE(d.status.ok());
  CHECK(output_of(d.before).violates());
  CHECK(d.met);
  CHECK(d.config.kept.empty());
  CHECK(d.config.per_channel);
  CHECK(d.config.variant_reason == "per-channel weight scales");
  kiln::ptq::DoctorConfig back;
  REQUIRE(kiln::ptq::DoctorConfig::parse(d.config.to_text(), back).ok());
  CHECK(back.variant_reason == d.config.variant_reason);
  CHECK(back.per_channel);
}

TEST_CASE("doctor: observed errors match a naive f32 reference and the dequantised int8 output") {
  const Mlp m(false);
  const auto cal = batches(2, 300);
  const std::vector<Tensor<float>> one{cal[0]};
  kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(m, cal, {});
  const kiln::ptq::Criterion c{1.0, 0.0, kiln::ptq::Statistic::max};
  const auto nodes = kiln::ptq::detail::observe(qm, one, c);
  // The output node: reference = naive float forward, quantised = the int8 model run by compile().
  std::vector<float> x(cal[0].data(), cal[0].data() + cal[0].size());
  const auto y = layer(layer(layer(x, 8, m.w1, m.b1, true), 8, m.w2, m.b2, true), 8, m.w3, m.b3, false);
  const Tensor<float> yq = qm(cal[0]);
  double max_abs = 0.0, sum = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double d = std::fabs(static_cast<double>(yq[static_cast<index_t>(i)]) - y[i]);
    max_abs = std::max(max_abs, d);
    sum += d;
  }
  const auto& out = nodes[static_cast<std::size_t>(qm.float_graph().output(0))];
  CHECK(out.max_abs == doctest::Approx(max_abs).epsilon(1e-3));
  CHECK(out.mean_abs == doctest::Approx(sum / static_cast<double>(y.size())).epsilon(1e-3));
  CHECK(out.score == doctest::Approx(max_abs).epsilon(1e-3));  // atol 1, statistic max
  CHECK(out.max_abs > 0.0);
  // Fused layer members have no value of their own; chain ends are int8.
  int fused = 0, int8 = 0;
  for (const auto& e : nodes) {
    fused += e.precision == "fused";
    int8 += e.precision == "int8";
  }
  CHECK(int8 == 3);
  CHECK(fused >= 3);
}

TEST_CASE("doctor: configuration text round trip and apply") {
  const Mlp m(true);
  const auto cal = batches(4, 100), samples = batches(2, 200);
  const kiln::ptq::Diagnosis d = diagnose_outlier({0.02, 0.01, kiln::ptq::Statistic::median}, 2);
  REQUIRE(d.met);
  const std::string text = d.config.to_text();
  kiln::ptq::DoctorConfig back;
  REQUIRE(kiln::ptq::DoctorConfig::parse(text, back).ok());
  CHECK(back.to_text() == text);
  CHECK(back.criterion.statistic == kiln::ptq::Statistic::median);
  REQUIRE(back.kept.size() == d.config.kept.size());
  CHECK(back.kept[0].node == d.config.kept[0].node);
  CHECK(back.kept[0].shape == d.config.kept[0].shape);
  // Applied, it quantises exactly as keep_float with those nodes does.
  kiln::ptq::QuantizedModel a = kiln::ptq::quantize_with_config(m, cal, back);
  kiln::ptq::Options ko;
  ko.per_channel = back.per_channel;
  ko.calibration = back.calibration;
  for (const auto& k : back.kept)
    if (k.node >= 0) ko.keep_float.push_back(k.node);
  kiln::ptq::QuantizedModel b = kiln::ptq::quantize_model(m, cal, ko);
  const Tensor<float> ya = a(samples[0]), yb = b(samples[0]);
  REQUIRE(ya.size() == yb.size());
  CHECK(std::memcmp(ya.data(), yb.data(), sizeof(float) * static_cast<std::size_t>(ya.size())) == 0);
  // Malformed text names the line.
  kiln::ptq::DoctorConfig junk;
  const kiln::Status st = kiln::ptq::DoctorConfig::parse("kiln-precision-doctor 1\nkeep x\n", junk);
  CHECK(!st.ok());
  CHECK(std::string(st.message()).find("line 2") != std::string::npos);
}

#if KILN_EXCEPTIONS
TEST_CASE("doctor: bad input") {
  const Mlp m(true);
  const auto cal = batches(2, 100);
  kiln::ptq::DoctorOptions o;
  o.measure_cost = false;
  // Samples of the wrong shape: named with the model's.
  const std::string e = kt::error_of([&] { kiln::ptq::diagnose(m, cal, {Tensor<float>(Shape{3, 16})}, o); });
  CHECK(e.find("doctor: sample 0 has shape [3, 16]") != std::string::npos);
  CHECK(e.find("[8, 16]") != std::string::npos);
  // A criterion that cannot be met within the budget of f32 layers (one layer; layer 1 passes at
  // this tolerance, the output needs layers 2 and 3): said so, the best found (layer 2 kept) returned.
  o.criterion = {0.002, 0.0, kiln::ptq::Statistic::mean};
  o.max_kept = 1;
  const kiln::ptq::Diagnosis d = kiln::ptq::diagnose(m, cal, cal, o);
  CHECK(d.status.ok());
  CHECK(!d.met);
  CHECK(!d.config.met);
  REQUIRE(d.config.kept.size() == 1);
  CHECK(d.config.kept[0].shape == Shape{8, 20});
  CHECK(d.config.output_score > 1.0);
  CHECK(d.config.output_score < output_of(d.before).score);  // the best found improved on plain int8
  CHECK(d.log.back().find("unreachable") != std::string::npos);
  // A configuration naming nodes that no longer exist.
  kiln::ptq::DoctorConfig cfg;
  cfg.kept.push_back({999, "matmul", Shape{8, 20}, "test"});
  cfg.kept.push_back({2, "softmax", Shape{8, 20}, "test"});
  kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(m, cal, {});
  kiln::ptq::Options po;
  const kiln::Status st = cfg.apply(qm.float_graph(), po);
  CHECK(!st.ok());
  CHECK(std::string(st.message()).find("%999 matmul") != std::string::npos);
  CHECK(std::string(st.message()).find("%2 softmax") != std::string::npos);
  const std::string e2 = kt::error_of([&] { kiln::ptq::quantize_with_config(m, cal, cfg); });
  CHECK(e2.find("no longer exist") != std::string::npos);
  // A criterion with no tolerance at all.
  o.criterion = {0.0, 0.0, kiln::ptq::Statistic::mean};
  CHECK(kt::error_of([&] { kiln::ptq::diagnose(m, cal, cal, o); }).find("atol > 0") != std::string::npos);
}
#endif
