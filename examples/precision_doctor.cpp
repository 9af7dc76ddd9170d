// examples/precision_doctor.cpp — the precision doctor (kiln/ptq/doctor.hpp) on a digits classifier
// whose plain int8 quantisation loses accuracy, and the few f32 layers that win it back.
//
// Data: the 8x8 handwritten digits Debian ships with python3-sklearn (1797 images, 64 pixels
// 0..16); 80/20 split by a seeded shuffle. Model: 64 -> 32 -> ReLU -> 10, trained here in f32 (Adam,
// 12 epochs) on standardised pixels z = (x - mean) / (std + 0.01), and deployed on raw pixels with
// the standardisation folded into the first layer (w1' = w1 / (std + 0.01), the usual export
// step). Why int8 struggles: border pixels that are (almost) always 0 have a tiny std, so their
// columns of w1' are tens to a hundred times larger than the rest; every output channel's int8
// weight scale is set by them and the weights that matter round to a few levels (a layer with
// outlier weight columns, from a real data set and a common export step). The doctor should
// keep the first layer in f32 and nothing else. Then the same search with FP16 storage of weights
// and activations (ptq/fp16.hpp) as the reduced precision.
//
// Criterion: mean over logits and samples of |int8 - f32| / (0.05 + 0.02 |f32|) <= 1, judged on
// training batches; accuracies are on the held-out 20 %. Exit status: 0 when the doctor met the
// criterion with at most 2 f32 layers, its model is at least as accurate as plain int8 and the
// written configuration reads back and gives the same model; else 1.
//
//   precision_doctor [--data digits.csv[.gz]] [--out model.doctor] [--csv nodes.csv]
//                    [--eps 0.01] [--cal 8 (calibration batches)] [--epochs 12] [--variants 1]
#include <kiln/kiln.hpp>
#include <kiln/ptq/doctor.hpp>
#include <kiln/train/losses.hpp>
#include <kiln/train/optim.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "digits_data.hpp"

namespace {

using digits::Digits;
using digits::kClasses;
using digits::kDefaultData;
using digits::kPixels;
using digits::labels_of;
using digits::rows_of;
constexpr int kHidden = 32, kBatch = 40;

// The deployed model: the MLP on raw pixels, the standardisation folded into the first layer
// (w1' = w1 / std, b1' = b1 - w1' mean); all constants (what PTQ quantises).
struct Model {
  kiln::Tensor<float> mean{kiln::Shape{kPixels}}, inv_std{kiln::Shape{kPixels}};  // for training
  kiln::Tensor<float> w1{kiln::Shape{kHidden, kPixels}}, b1{kiln::Shape{kHidden}}, w2{kiln::Shape{kClasses, kHidden}},
      b2{kiln::Shape{kClasses}};
  template <class X>
  auto operator()(const X& x) const {
    return kiln::linear(kiln::relu(kiln::linear(x, w1, b1)), w2, b2);
  }
  void fold_standardisation() {
    for (kiln::index_t j = 0; j < kHidden; ++j) {
      double shift = 0.0;
      for (kiln::index_t p = 0; p < kPixels; ++p) {
        w1[j * kPixels + p] *= inv_std[p];
        shift += static_cast<double>(w1[j * kPixels + p]) * mean[p];
      }
      b1[j] = static_cast<float>(b1[j] - shift);
    }
  }
};

// Trains the MLP in f32 on standardised rows (Adam, lr 1e-2, minibatches of kBatch).
void train(const Digits& d, const std::vector<int>& train_rows, Model& m, int epochs) {
  kiln::Parameter w1{m.w1.shape()}, b1{m.b1.shape()}, w2{m.w2.shape()}, b2{m.b2.shape()};
  std::mt19937 g(1);
  kiln::Parameter* ps[] = {&w1, &b1, &w2, &b2};
  const int fan_in[] = {kPixels, kPixels, kHidden, kHidden};
  for (int k = 0; k < 4; ++k) {
    const float bound = 1.f / std::sqrt(static_cast<float>(fan_in[k]));
    std::uniform_real_distribution<float> u(-bound, bound);
    for (kiln::index_t i = 0; i < ps[k]->size(); ++i) (*ps[k])[i] = u(g);
  }
  kiln::Adam opt({&w1, &b1, &w2, &b2}, {1e-2f});
  const kiln::Tensor<float> mean = m.mean, inv_std = m.inv_std;
  auto step = kiln::compile([&](auto x, auto target) {
    auto z = kiln::mul(kiln::sub(x, mean), inv_std);
    auto loss = kiln::cross_entropy(kiln::linear(kiln::relu(kiln::linear(z, w1, b1)), w2, b2), target);
    opt.step(kiln::grad(loss, w1, b1, w2, b2));
    return loss;
  });
  std::vector<int> order = train_rows;
  for (int e = 0; e < epochs; ++e) {
    std::shuffle(order.begin(), order.end(), g);
    for (std::size_t from = 0; from + kBatch <= order.size(); from += kBatch)
      step(rows_of(d, order, from, kBatch), kiln::one_hot(labels_of(d, order, from, kBatch), kClasses));
  }
  kiln::Tensor<float>* ts[] = {&m.w1, &m.b1, &m.w2, &m.b2};
  for (int k = 0; k < 4; ++k)
    for (kiln::index_t i = 0; i < ps[k]->size(); ++i) (*ts[k])[i] = (*ps[k])[i];
}

// Top-1 accuracy of any model (x -> logits) over labelled batches.
template <class Run>
double top1(Run&& run, const std::vector<kiln::Tensor<float>>& batches, const std::vector<std::vector<int>>& labels) {
  long right = 0, rows = 0;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    const kiln::Tensor<float> y = run(batches[b]);
    for (std::size_t r = 0; r < labels[b].size(); ++r, ++rows) {
      const float* row = y.data() + r * kClasses;
      right += std::max_element(row, row + kClasses) - row == labels[b][r];
    }
  }
  return rows ? static_cast<double>(right) / static_cast<double>(rows) : 0.0;
}

double accuracy_of(const kiln::ptq::QuantizedModel& qm, const std::vector<kiln::Tensor<float>>& batches,
                   const std::vector<std::vector<int>>& labels, bool float_model) {
  const kiln::ptq::Evaluation e = qm.evaluate(batches, labels);
  return float_model ? e.float_accuracy : e.int8_accuracy;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = kDefaultData, out = "precision_doctor.cfg", csv;
  double eps = 1e-2;
  int cal_batches = 8, epochs = 12;
  bool variants = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--data") data = argv[i + 1];
    else if (a == "--eps") eps = std::atof(argv[i + 1]);
    else if (a == "--cal") cal_batches = std::atoi(argv[i + 1]);
    else if (a == "--epochs") epochs = std::atoi(argv[i + 1]);
    else if (a == "--variants") variants = std::atoi(argv[i + 1]) != 0;
    else if (a == "--out") out = argv[i + 1];
    else if (a == "--csv") csv = argv[i + 1];
  }
  Digits d;
  if (!digits::load_digits(data, d, 1.f)) {
    std::fprintf(stderr, "precision_doctor: cannot read %s (python3-sklearn ships it)\n", data.c_str());
    return 1;
  }
  std::vector<int> order(static_cast<std::size_t>(d.rows()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  const std::size_t n_test = static_cast<std::size_t>(d.rows()) / 5 / kBatch * kBatch;
  const std::vector<int> test(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_test));
  const std::vector<int> train_rows(order.begin() + static_cast<std::ptrdiff_t>(n_test), order.end());

  Model m;
  for (int p = 0; p < kPixels; ++p) {  // standardisation statistics from the training rows
    double s = 0, s2 = 0;
    for (int r : train_rows) {
      const double v = d.x[static_cast<std::size_t>(r * kPixels + p)];
      s += v;
      s2 += v * v;
    }
    const double n = static_cast<double>(train_rows.size()), mu = s / n;
    m.mean[p] = static_cast<float>(mu);
    m.inv_std[p] = static_cast<float>(1.0 / (std::sqrt(std::max(0.0, s2 / n - mu * mu)) + eps));
  }
  train(d, train_rows, m, epochs);
  m.fold_standardisation();

  // Calibration: the first training batches; the doctor judges on the 6 last ones; accuracy on
  // the test split.
  std::vector<kiln::Tensor<float>> cal, samples, test_b;
  std::vector<std::vector<int>> test_l;
  const std::size_t n_train_b = train_rows.size() / kBatch;
  for (std::size_t b = 0; b < std::min<std::size_t>(static_cast<std::size_t>(cal_batches), n_train_b); ++b)
    cal.push_back(rows_of(d, train_rows, b * kBatch, kBatch));
  for (std::size_t b = n_train_b - 6; b < n_train_b; ++b) samples.push_back(rows_of(d, train_rows, b * kBatch, kBatch));
  for (std::size_t from = 0; from + kBatch <= test.size(); from += kBatch) {
    test_b.push_back(rows_of(d, test, from, kBatch));
    test_l.push_back(labels_of(d, test, from, kBatch));
  }

  kiln::ptq::DoctorOptions o;
  o.criterion = {0.05, 0.02, kiln::ptq::Statistic::mean};
  o.try_variants = variants;
  const kiln::ptq::Diagnosis dx = kiln::ptq::diagnose(m, cal, samples, o);
  if (!dx.status.ok()) {
    std::fprintf(stderr, "precision_doctor: %s\n", dx.status.message());
    return 1;
  }
  std::cout << "precision doctor on digits (" << d.rows() << " images; " << train_rows.size() << " train, "
            << test.size() << " test), batch " << kBatch << "\n\n";
  dx.print(std::cout);
  std::cout << "\nsearch:\n";
  for (const std::string& l : dx.log) std::cout << "  " << l << '\n';

  // Before/after accuracy on the held-out split.
  const kiln::ptq::QuantizedModel plain = kiln::ptq::quantize_model(m, cal, {});
  std::ofstream(out) << dx.config.to_text();
  std::stringstream text;
  text << std::ifstream(out).rdbuf();
  kiln::ptq::DoctorConfig back;
  const kiln::Status st = kiln::ptq::DoctorConfig::parse(text.str(), back);
  const kiln::ptq::QuantizedModel fixed = kiln::ptq::quantize_with_config(m, cal, back);
  const double acc_f = accuracy_of(plain, test_b, test_l, true), acc_q = accuracy_of(plain, test_b, test_l, false),
               acc_m = accuracy_of(fixed, test_b, test_l, false);
  std::printf("\ntest accuracy: f32 %.2f %%, plain int8 %.2f %%, int8 with %zu f32 layer(s) %.2f %%\n", 100 * acc_f,
              100 * acc_q, dx.config.kept.size(), 100 * acc_m);
  std::printf("configuration written to %s (read back: %s)\n", out.c_str(), st.ok() ? "ok" : st.message());
  if (!csv.empty()) std::ofstream(csv) << kiln::ptq::to_csv(dx.after);

  // What observing costs: the doctor's observation plans (runtime/observe.hpp) beside the normal ones.
  for (const kiln::Graph* g : {&fixed.float_graph(), &fixed.graph()}) {
    kiln::Status bs;
    std::unique_ptr<kiln::runtime::Executable, kiln::engine::ExecutableDeleter> normal(kiln::engine::build(*g, bs)),
        observing(kiln::engine::build_observing(*g, bs));
    if (!normal || !observing) continue;
    const kiln::runtime::PlanInfo &a = kiln::engine::plan_info(*normal), &b = kiln::engine::plan_info(*observing);
    std::printf("%s graph: normal plan %d steps, arena %zu B; observation plan %d steps, arena %zu B\n",
                g == &fixed.float_graph() ? "f32" : "int8 (1 f32 layer)", a.kernels, a.arena_bytes, b.kernels,
                b.arena_bytes);
  }

  const kiln::ptq::Diagnosis same = kiln::ptq::diagnose(m, cal, samples, o);  // deterministic search
  bool ok = dx.met && dx.config.kept.size() <= 2 && acc_m >= acc_q && st.ok() &&
            back.to_text() == dx.config.to_text() && same.config.kept.size() == dx.config.kept.size();

  // The same model and criterion with FP16 storage of weights and activations instead of int8.
  kiln::ptq::DoctorOptions o16 = o;
  o16.precision = kiln::ptq::Precision::fp16;
  const kiln::ptq::Diagnosis dh = kiln::ptq::diagnose(m, cal, samples, o16);
  if (!dh.status.ok()) {
    std::fprintf(stderr, "precision_doctor (fp16): %s\n", dh.status.message());
    return 1;
  }
  std::cout << "\nthe same with FP16 storage:\n";
  dh.print(std::cout);
  const kiln::ptq::Fp16Model h_all = kiln::ptq::to_fp16(m, cal[0]), h_fixed = kiln::ptq::fp16_with_config(m, cal[0], dh.config);
  std::printf("test accuracy: f32 %.2f %%, fp16 %.2f %%, fp16 with %zu f32 node(s) %.2f %%\n", 100 * acc_f,
              100 * top1(h_all, test_b, test_l), dh.config.kept.size(), 100 * top1(h_fixed, test_b, test_l));
  ok = ok && dh.met && h_fixed.ok();
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
