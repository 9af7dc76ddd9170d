// FP16 storage (kiln/ptq/fp16.hpp) and the precision doctor with DoctorOptions::precision = fp16:
//  - the FP16 model against an independent reference: a naive forward pass that rounds weights
//    and every op's result with a binary16 rounding written here (frexp/nearbyint, not the kernel);
//  - a layer whose weights and activations lie beyond binary16's range (|x| > 65504) must be the
//    one kept in f32 (its matmul, bias add and relu: the nodes of width 20), nothing else;
//  - size: all-fp16 weights are half the f32 bytes; kept nodes' weights count 4 bytes;
//  - the configuration says "precision fp16", round-trips, applies (same output as to_fp16 with the
//    kept list); applying it as int8, or naming nodes that are gone, is an error naming them.
#include <doctest/doctest.h>

#include <kiln/ptq/doctor.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "doctor_mlp.hpp"

namespace {

using kiln::index_t;
using kiln::Shape;
using kiln::Tensor;

// tests/doctor_mlp.hpp's MLP; `huge`: layer 2's weights up to 1e5 (beyond binary16's 65504)
// and its activations ~1e4..1e5, layer 3's weights 1e-3 times smaller, so the output is of order
// 10..100 in f32.
struct Mlp : kt::DoctorMlp {
  explicit Mlp(bool huge) : kt::DoctorMlp(5) {
    if (huge) {
      for (float& v : w2) v *= 2e5f;
      for (float& v : w3) v *= 1e-3f;
    }
  }
};

std::vector<Tensor<float>> batches(int count, unsigned seed) { return kt::doctor_batches(count, seed); }

// Nearest binary16 value, ties to even; written from the format's definition: 11 significant
// bits, so the spacing at |x| in [2^(e-1), 2^e) is 2^(e-11), and 2^-24 for the subnormals
// (e <= -13); |x| >= 65520 (halfway past 65504) overflows to inf.
double round_half(double x) {
  if (std::isnan(x)) return x;
  const double a = std::fabs(x);
  if (a >= 65520.0) return std::copysign(HUGE_VAL, x);
  int e = 0;
  std::frexp(a, &e);
  const double ulp = std::ldexp(1.0, std::max(e, -13) - 11);
  return std::copysign(std::nearbyint(a / ulp) * ulp, x);
}

// One layer with FP16 storage: rounded weights, result of the matmul rounded, of the bias add
// rounded (the bias rounded too), relu.
std::vector<double> layer16(const std::vector<double>& x, index_t rows, const Tensor<float>& w, const Tensor<float>& b,
                            bool relu) {
  const index_t out = w.shape()[0], in = w.shape()[1];
  std::vector<double> y(static_cast<std::size_t>(rows * out));
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < out; ++c) {
      double s = 0.0;
      for (index_t k = 0; k < in; ++k) s += x[static_cast<std::size_t>(r * in + k)] * round_half(w[c * in + k]);
      double v = round_half(round_half(s) + round_half(b[c]));
      y[static_cast<std::size_t>(r * out + c)] = relu ? std::max(0.0, v) : v;
    }
  return y;
}

kiln::ptq::DoctorOptions fp16_options() {
  kiln::ptq::DoctorOptions o;
  o.precision = kiln::ptq::Precision::fp16;
  // Absolute 1 (layer 2's values are ~1e4: binary16's rounding of its f16 input, amplified by
  // its 1e5 weights, stays within that on average), relative 1 %, mean over elements.
  o.criterion = {1.0, 1e-2, kiln::ptq::Statistic::mean};
  o.measure_cost = false;
  return o;
}

}  // namespace

TEST_CASE("fp16: the FP16-storage model equals a naive forward pass that rounds every result") {
  const Mlp m(false);
  const auto xs = batches(2, 40);
  const kiln::ptq::Fp16Model h = kiln::ptq::to_fp16(m, xs[0]);
  REQUIRE(h.ok());
  for (const Tensor<float>& x : xs) {
    std::vector<double> v(x.begin(), x.end());  // the input stays f32 (the caller's buffer)
    v = layer16(layer16(layer16(v, 8, m.w1, m.b1, true), 8, m.w2, m.b2, true), 8, m.w3, m.b3, false);
    const Tensor<float> y = h(x), yf = h.run_float(x);
    double worst = 0.0, moved = 0.0;
    for (index_t i = 0; i < y.size(); ++i) {
      // Accumulation order (f32 kernel vs double here) may move a sum across a rounding boundary:
      // allow 2 binary16 ulps (2^-10 relative) plus an absolute 2^-14.
      worst = std::max(worst, std::fabs(y[i] - v[static_cast<std::size_t>(i)]) /
                                  (std::ldexp(1.0, -10) * std::fabs(v[static_cast<std::size_t>(i)]) + std::ldexp(1.0, -14)));
      moved = std::max(moved, std::fabs(static_cast<double>(y[i]) - yf[i]));
    }
    CHECK(worst <= 2.0);
    CHECK(moved > 0.0);  // FP16 storage is not f32
    for (index_t i = 0; i < y.size(); ++i) CHECK(static_cast<double>(y[i]) == round_half(y[i]));  // stored as binary16
  }
  // Size: every weight rounded, 2 bytes each; f32 is 4.
  const std::size_t f32_bytes = (24 * 16 + 24 + 20 * 24 + 20 + 4 * 20 + 4) * 4;
  CHECK(h.weight_bytes() == f32_bytes / 2);
}

TEST_CASE("fp16 doctor: the layer beyond binary16's range is the one kept in f32") {
  const Mlp m(true);
  const auto cal = batches(2, 100), samples = batches(3, 200);
  const kiln::ptq::Diagnosis d = kiln::ptq::diagnose(m, cal, samples, fp16_options());
  REQUIRE(d.status.ok());
  const auto& out_before = d.before[static_cast<std::size_t>(d.before.size() - 1)];
  CHECK(out_before.violates());
  CHECK(d.met);
  REQUIRE(d.config.kept.size() == 3);
  for (const kiln::ptq::KeptNode& k : d.config.kept) CHECK(k.shape == Shape{8, 20});  // layer 2 only
  CHECK(d.config.precision == kiln::ptq::Precision::fp16);
  CHECK(d.config.variant_reason.empty());
  // Layer 1 and 3 stay fp16: rows of width 24 and 4 are "fp16" after.
  int fp16_rows = 0;
  for (const kiln::ptq::NodeError& e : d.after) fp16_rows += e.precision == "fp16";
  CHECK(fp16_rows >= 4);
  // Size: layers 1 and 3 in binary16, layer 2's weight and bias in f32.
  const std::size_t half = (24 * 16 + 24 + 4 * 20 + 4) * 2, full = (20 * 24 + 20) * 4;
  CHECK(d.config.weight_bytes == half + full);
  CHECK(d.config.reduced_weight_bytes == (24 * 16 + 24 + 20 * 24 + 20 + 4 * 20 + 4) * 2);
}

TEST_CASE("fp16 doctor: configuration says fp16, round-trips and applies; misuse is an error") {
  const Mlp m(true);
  const auto cal = batches(2, 100), samples = batches(3, 200);
  const kiln::ptq::Diagnosis d = kiln::ptq::diagnose(m, cal, samples, fp16_options());
  REQUIRE(d.met);
  const std::string text = d.config.to_text();
  CHECK(text.find("precision fp16\n") != std::string::npos);
  kiln::ptq::DoctorConfig back;
  REQUIRE(kiln::ptq::DoctorConfig::parse(text, back).ok());
  CHECK(back.precision == kiln::ptq::Precision::fp16);
  CHECK(back.kept.size() == 3);
  std::vector<int> keep;
  for (const auto& k : back.kept) keep.push_back(k.node);
  const kiln::ptq::Fp16Model a = kiln::ptq::fp16_with_config(m, cal[0], back), b = kiln::ptq::to_fp16(m, cal[0], keep);
  REQUIRE(a.ok());
  const Tensor<float> ya = a(samples[0]), yb = b(samples[0]), yf = a.run_float(samples[0]);
  for (index_t i = 0; i < ya.size(); ++i) {
    CHECK(ya[i] == yb[i]);
    CHECK(std::fabs(ya[i] - yf[i]) <= 1.0 + 1e-2 * std::fabs(yf[i]));  // the criterion, on another batch
  }
  // An fp16 configuration applied as int8, and the other way round.
  CHECK(kt::error_of([&] { (void)kiln::ptq::quantize_with_config(m, cal, back); }).find("written for fp16") !=
        std::string::npos);
  kiln::ptq::DoctorConfig as_int8 = back;
  as_int8.precision = kiln::ptq::Precision::int8;
  CHECK(kt::error_of([&] { (void)kiln::ptq::fp16_with_config(m, cal[0], as_int8); }).find("written for int8") !=
        std::string::npos);
  // Nodes that are gone: named with their op and shape.
  kiln::ptq::DoctorConfig gone = back;
  gone.kept[0].node = 99;
  const std::string e = kt::error_of([&] { (void)kiln::ptq::fp16_with_config(m, cal[0], gone); });
  CHECK(e.find("no longer exist") != std::string::npos);
  CHECK(e.find("%99") != std::string::npos);
  // A bad precision word in the file.
  std::string bad = text;
  bad.replace(bad.find("precision fp16"), 14, "precision fp8");
  CHECK(!kiln::ptq::DoctorConfig::parse(bad, back).ok());
}

TEST_CASE("fp16 doctor: wrong sample shape and an unreachable budget") {
  const Mlp m(true);
  const auto cal = batches(2, 100);
  std::vector<Tensor<float>> wrong{kt::random_tensor(Shape{8, 15}, 1)};
  const std::string e = kt::error_of([&] { (void)kiln::ptq::diagnose(m, cal, wrong, fp16_options()); });
  CHECK(e.find("[8, 15]") != std::string::npos);
  kiln::ptq::DoctorOptions o = fp16_options();
  o.max_kept = 1;
  const kiln::ptq::Diagnosis d = kiln::ptq::diagnose(m, cal, batches(2, 200), o);
  CHECK(d.status.ok());
  CHECK(!d.met);
  CHECK(d.config.kept.size() <= 1);
}
