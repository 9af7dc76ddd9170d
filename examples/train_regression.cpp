// examples/train_regression.cpp — the TorchDynamo document's regression example, in C++ with kiln.
//
// The document (shared/seeds/000) trains a 10 -> 64 -> ReLU -> 32 -> ReLU -> 1 network on
// synthetic data with PyTorch and compiles the training function with TorchDynamo. This program
// does the same with kiln: one compiled graph per step (forward, MSE, backward, Adam update),
// 5-fold cross-validation, then test MSE and R^2, per-epoch curves as CSV and an SVG chart, and
// the time per epoch compiled vs eager (the eager run also checks the compiled one).
//
// The data and splits are the document's exactly: numpy's legacy RandomState is MT19937 seeded
// with init_genrand (std::mt19937's seeding) and turns two 32-bit draws into one double, so
// X, y, train_test_split(test_size=0.2, random_state=42) and KFold(5, shuffle=True,
// random_state=42) are reproduced here bit for bit (checked against numpy's first values below).
// Like the document, the same model and optimiser carry on from fold to fold (it never
// re-initialises them); --reset-per-fold trains each fold from the initial weights instead.
// Weights start as torch.nn.Linear's do (uniform in +-1/sqrt(fan_in)) from a seeded generator;
// torch's own stream is not reproduced, so the figures match the document's in kind, not digit.
//
//   train_regression [--epochs N] [--out DIR] [--reset-per-fold] [--no-eager]
#include <kiln/kiln.hpp>
#include <kiln/train/losses.hpp>
#include <kiln/train/optim.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr int kSamples = 1000, kFeatures = 10, kFolds = 5;

// ---- numpy's legacy RandomState on std::mt19937 ---------------------------------------------
struct NumpyRandom {
  std::mt19937 mt;
  explicit NumpyRandom(unsigned seed) : mt(seed) {}
  double random_sample() {  // numpy's rk_double: 53 random bits from two draws
    const std::uint32_t a = static_cast<std::uint32_t>(mt()) >> 5, b = static_cast<std::uint32_t>(mt()) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }
  std::uint32_t interval(std::uint32_t max) {  // rk_interval: mask and reject, 32-bit draws
    if (max == 0) return 0;
    std::uint32_t mask = max;
    for (int s = 1; s <= 16; s *= 2) mask |= mask >> s;
    std::uint32_t v;
    while ((v = static_cast<std::uint32_t>(mt()) & mask) > max) {
    }
    return v;
  }
  std::vector<int> permutation(int n) {  // RandomState.permutation: arange + shuffle
    std::vector<int> p(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
    for (int i = n - 1; i >= 1; --i) std::swap(p[static_cast<std::size_t>(i)], p[interval(static_cast<std::uint32_t>(i))]);
    return p;
  }
};

struct Dataset {
  std::vector<double> x;  // rows of kFeatures
  std::vector<double> y;
  int rows() const { return static_cast<int>(y.size()); }
};

Dataset take_rows(const Dataset& d, const std::vector<int>& idx) {
  Dataset out;
  for (int i : idx) {
    out.x.insert(out.x.end(), d.x.begin() + i * kFeatures, d.x.begin() + (i + 1) * kFeatures);
    out.y.push_back(d.y[static_cast<std::size_t>(i)]);
  }
  return out;
}

kiln::Tensor<float> features(const Dataset& d) {
  kiln::Tensor<float> t({d.rows(), kFeatures});
  for (std::size_t i = 0; i < d.x.size(); ++i) t[static_cast<kiln::index_t>(i)] = static_cast<float>(d.x[i]);
  return t;
}
kiln::Tensor<float> targets(const Dataset& d) {
  kiln::Tensor<float> t({d.rows(), 1});
  for (int i = 0; i < d.rows(); ++i) t[i] = static_cast<float>(d.y[static_cast<std::size_t>(i)]);
  return t;
}

// ---- the network -----------------------------------------------------------------------------
struct Net {
  kiln::Parameter w1{kiln::Shape{64, kFeatures}}, b1{kiln::Shape{64}}, w2{kiln::Shape{32, 64}}, b2{kiln::Shape{32}},
      w3{kiln::Shape{1, 32}}, b3{kiln::Shape{1}};
  std::vector<kiln::Parameter*> all() { return {&w1, &b1, &w2, &b2, &w3, &b3}; }

  template <class X>
  auto operator()(const X& x) {
    auto h1 = kiln::relu(kiln::linear(x, w1, b1));
    auto h2 = kiln::relu(kiln::linear(h1, w2, b2));
    return kiln::linear(h2, w3, b3);
  }
  // torch.nn.Linear's default initialisation: weight and bias uniform in +-1/sqrt(fan_in).
  void init(unsigned seed) {
    std::mt19937 g(seed);
    kiln::Parameter* ws[] = {&w1, &b1, &w2, &b2, &w3, &b3};
    const int fan_in[] = {kFeatures, kFeatures, 64, 64, 32, 32};
    for (int k = 0; k < 6; ++k) {
      std::uniform_real_distribution<float> u(-1.f / std::sqrt(static_cast<float>(fan_in[k])),
                                              1.f / std::sqrt(static_cast<float>(fan_in[k])));
      for (kiln::index_t i = 0; i < ws[k]->size(); ++i) (*ws[k])[i] = u(g);
    }
  }
};

struct Curves {
  std::vector<double> train, val;
  double test_mse = 0, test_r2 = 0, seconds = 0;
  int steps = 0;
};

struct Folds {
  std::vector<kiln::Tensor<float>> x_train, y_train, x_val, y_val;
};

// One full run of the document's train_and_evaluate, with `Mode` = kiln::compile or kiln::eager.
template <class Wrap>
Curves train_and_evaluate(Wrap wrap, const Folds& folds, const kiln::Tensor<float>& x_test,
                          const kiln::Tensor<float>& y_test, int epochs, bool reset_per_fold) {
  Net net;
  net.init(7);
  Net initial = net;  // Parameters copy their values
  kiln::Adam opt({&net.w1, &net.b1, &net.w2, &net.b2, &net.w3, &net.b3}, {/*lr*/ 1e-3f});
  auto step = wrap([&](auto x, auto y) {
    auto loss = kiln::mse_loss(net(x), y);
    opt.step(kiln::grad(loss, net.w1, net.b1, net.w2, net.b2, net.w3, net.b3));
    return loss;
  });
  auto evaluate = wrap([&](auto x, auto y) { return kiln::mse_loss(net(x), y); });
  auto predict = wrap([&](auto x) { return net(x); });

  Curves c;
  c.train.assign(static_cast<std::size_t>(epochs), 0.0);
  c.val.assign(static_cast<std::size_t>(epochs), 0.0);
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < kFolds; ++k) {
    if (reset_per_fold && k > 0) {
      const std::vector<kiln::Parameter*> dst = net.all(), src = initial.all();
      for (std::size_t i = 0; i < dst.size(); ++i) dst[i]->value() = src[i]->value();
      // Adam's moments carry on, as they would with a re-used torch optimiser.
    }
    for (int e = 0; e < epochs; ++e) {
      const kiln::Tensor<float> train_loss = step(folds.x_train[static_cast<std::size_t>(k)], folds.y_train[static_cast<std::size_t>(k)]);
      const kiln::Tensor<float> val_loss = evaluate(folds.x_val[static_cast<std::size_t>(k)], folds.y_val[static_cast<std::size_t>(k)]);
      c.train[static_cast<std::size_t>(e)] += train_loss[0] / kFolds;
      c.val[static_cast<std::size_t>(e)] += val_loss[0] / kFolds;
      ++c.steps;
    }
  }
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  c.test_mse = evaluate(x_test, y_test)[0];
  const kiln::Tensor<float> pred = predict(x_test);
  double mean = 0, ss_res = 0, ss_tot = 0;
  for (kiln::index_t i = 0; i < y_test.size(); ++i) mean += y_test[i];
  mean /= static_cast<double>(y_test.size());
  for (kiln::index_t i = 0; i < y_test.size(); ++i) {
    ss_res += (y_test[i] - static_cast<double>(pred[i])) * (y_test[i] - static_cast<double>(pred[i]));
    ss_tot += (y_test[i] - mean) * (y_test[i] - mean);
  }
  c.test_r2 = 1.0 - ss_res / ss_tot;
  return c;
}

// ---- output: CSV and an SVG line chart (log-scaled loss axis) --------------------------------
void write_csv(const std::string& path, const Curves& c) {
  std::ofstream f(path);
  f << "epoch,train_loss,val_loss\n";
  for (std::size_t e = 0; e < c.train.size(); ++e) f << e + 1 << ',' << c.train[e] << ',' << c.val[e] << '\n';
}

void write_svg(const std::string& path, const Curves& c) {
  const double W = 720, H = 440, left = 70, right = 20, top = 40, bottom = 50;
  double lo = 1e300, hi = 0;
  for (double v : c.train) lo = std::min(lo, v), hi = std::max(hi, v);
  for (double v : c.val) lo = std::min(lo, v), hi = std::max(hi, v);
  const double dlo = std::floor(std::log10(std::max(lo, 1e-12))), dhi = std::ceil(std::log10(std::max(hi, 1e-12)));
  const double span = std::max(dhi - dlo, 1.0);
  const std::size_t n = c.train.size();
  auto px = [&](std::size_t e) { return left + (W - left - right) * (n > 1 ? static_cast<double>(e) / static_cast<double>(n - 1) : 0.0); };
  auto py = [&](double v) { return top + (H - top - bottom) * (dhi - std::log10(std::max(v, 1e-12))) / span; };
  std::ofstream f(path);
  f << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  f << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">MSE per epoch, mean over "
    << kFolds << " folds (kiln, Adam lr 1e-3)</text>\n";
  for (double d = dlo; d <= dhi; d += 1) {  // decade grid lines
    const double y = py(std::pow(10.0, d));
    f << "<line x1=\"" << left << "\" x2=\"" << W - right << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">1e"
      << static_cast<int>(d) << "</text>\n";
  }
  for (std::size_t e = 0; e < n; e += std::max<std::size_t>(1, n / 10)) {
    f << "<text x=\"" << px(e) << "\" y=\"" << H - bottom + 18 << "\" text-anchor=\"middle\">" << e + 1 << "</text>\n";
  }
  f << "<text x=\"" << W / 2 << "\" y=\"" << H - 10 << "\" text-anchor=\"middle\">epoch</text>\n";
  f << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right << "\" height=\"" << H - top - bottom
    << "\" fill=\"none\" stroke=\"black\"/>\n";
  auto line = [&](const std::vector<double>& v, const char* colour, const char* name, double ly) {
    f << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" points=\"";
    for (std::size_t e = 0; e < n; ++e) f << px(e) << ',' << py(v[e]) << ' ';
    f << "\"/>\n<line x1=\"" << W - right - 150 << "\" x2=\"" << W - right - 120 << "\" y1=\"" << ly << "\" y2=\"" << ly
      << "\" stroke=\"" << colour << "\" stroke-width=\"2\"/><text x=\"" << W - right - 114 << "\" y=\"" << ly + 4
      << "\">" << name << "</text>\n";
  };
  line(c.train, "#1f77b4", "train loss", top + 18);
  line(c.val, "#ff7f0e", "validation loss", top + 36);
  f << "</svg>\n";
}

}  // namespace

int main(int argc, char** argv) {
  int epochs = 100;
  std::string out = ".";
  bool reset_per_fold = false, run_eager = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!std::strcmp(argv[i], "--reset-per-fold")) reset_per_fold = true;
    else if (!std::strcmp(argv[i], "--no-eager")) run_eager = false;
    else {
      std::fprintf(stderr, "usage: %s [--epochs N] [--out DIR] [--reset-per-fold] [--no-eager]\n", argv[0]);
      return 2;
    }
  }

  // np.random.seed(42); X = rand(1000, 10); y = X @ rand(10) + rand(1000) * 0.1
  NumpyRandom np_rng(42);
  Dataset all;
  for (int i = 0; i < kSamples * kFeatures; ++i) all.x.push_back(np_rng.random_sample());
  double w[kFeatures];
  for (double& v : w) v = np_rng.random_sample();
  for (int i = 0; i < kSamples; ++i) {
    double dot = 0;
    for (int j = 0; j < kFeatures; ++j) dot += all.x[static_cast<std::size_t>(i * kFeatures + j)] * w[j];
    all.y.push_back(dot + np_rng.random_sample() * 0.1);
  }
  // numpy's values for seed 42 (X[0, 0], w[0], y[0]): a different generator would fail here.
  if (std::fabs(all.x[0] - 0.37454012) > 1e-8 || std::fabs(w[0] - 0.37364082) > 1e-8 || std::fabs(all.y[0] - 2.80291069) > 1e-8) {
    std::fprintf(stderr, "the data generator does not reproduce numpy's RandomState(42)\n");
    return 1;
  }

  // train_test_split(test_size=0.2, random_state=42): ShuffleSplit's permutation, test first.
  NumpyRandom split_rng(42);
  const std::vector<int> perm = split_rng.permutation(kSamples);
  const int n_test = kSamples / 5;
  Dataset test = take_rows(all, std::vector<int>(perm.begin(), perm.begin() + n_test));
  Dataset train = take_rows(all, std::vector<int>(perm.begin() + n_test, perm.end()));

  // StandardScaler fitted on the train split (population standard deviation, as sklearn).
  for (int j = 0; j < kFeatures; ++j) {
    double mean = 0, var = 0;
    for (int i = 0; i < train.rows(); ++i) mean += train.x[static_cast<std::size_t>(i * kFeatures + j)];
    mean /= train.rows();
    for (int i = 0; i < train.rows(); ++i) {
      const double d = train.x[static_cast<std::size_t>(i * kFeatures + j)] - mean;
      var += d * d;
    }
    const double sd = std::sqrt(var / train.rows());
    for (Dataset* d : {&train, &test})
      for (int i = 0; i < d->rows(); ++i) {
        double& v = d->x[static_cast<std::size_t>(i * kFeatures + j)];
        v = (v - mean) / sd;
      }
  }

  // KFold(n_splits=5, shuffle=True, random_state=42): shuffled indices cut in 5, each side sorted.
  NumpyRandom fold_rng(42);
  const std::vector<int> shuffled = fold_rng.permutation(train.rows());
  Folds folds;
  const int fold_size = train.rows() / kFolds;
  for (int k = 0; k < kFolds; ++k) {
    std::vector<char> is_val(static_cast<std::size_t>(train.rows()), 0);
    for (int i = k * fold_size; i < (k + 1) * fold_size; ++i) is_val[static_cast<std::size_t>(shuffled[static_cast<std::size_t>(i)])] = 1;
    std::vector<int> tr, va;
    for (int i = 0; i < train.rows(); ++i) (is_val[static_cast<std::size_t>(i)] ? va : tr).push_back(i);
    const Dataset dt = take_rows(train, tr), dv = take_rows(train, va);
    folds.x_train.push_back(features(dt));
    folds.y_train.push_back(targets(dt));
    folds.x_val.push_back(features(dv));
    folds.y_val.push_back(targets(dv));
  }
  const kiln::Tensor<float> x_test = features(test), y_test = targets(test);

  std::printf("data: %d samples x %d features; train %d (5 folds of %d / %d), test %d\n", kSamples, kFeatures,
              train.rows(), train.rows() - fold_size, fold_size, test.rows());
  const Curves compiled = train_and_evaluate([](auto fn) { return kiln::compile(fn); }, folds, x_test, y_test, epochs,
                                             reset_per_fold);
  for (int e = 0; e < epochs; e += std::max(1, epochs / 10))
    std::printf("epoch %3d  train %.5f  val %.5f\n", e + 1, compiled.train[static_cast<std::size_t>(e)],
                compiled.val[static_cast<std::size_t>(e)]);
  std::printf("epoch %3d  train %.5f  val %.5f\n", epochs, compiled.train.back(), compiled.val.back());
  std::printf("Test MSE: %.4f\nTest R^2: %.4f\n", compiled.test_mse, compiled.test_r2);
  write_csv(out + "/train_regression.csv", compiled);
  write_svg(out + "/train_regression.svg", compiled);
  std::printf("wrote %s/train_regression.csv and %s/train_regression.svg\n", out.c_str(), out.c_str());

  const double per_epoch_c = compiled.seconds / compiled.steps * 1e3;
  int status = 0;
  if (run_eager) {
    const Curves eager = train_and_evaluate([](auto fn) { return kiln::eager(fn); }, folds, x_test, y_test, epochs,
                                            reset_per_fold);
    const double per_epoch_e = eager.seconds / eager.steps * 1e3;
    // Same arithmetic up to summation order (fused vs op-by-op): the curves agree closely.
    double worst = 0;
    for (std::size_t e = 0; e < compiled.train.size(); ++e)
      worst = std::max({worst, std::fabs(compiled.train[e] - eager.train[e]) / eager.train[e],
                        std::fabs(compiled.val[e] - eager.val[e]) / eager.val[e]});
    std::printf("time per epoch (one fold's training step + validation): compiled %.3f ms, eager %.3f ms (%.1fx)\n",
                per_epoch_c, per_epoch_e, per_epoch_e / per_epoch_c);
    std::printf("compiled vs eager: largest relative difference of a per-epoch loss %.2e, test MSE %.5f vs %.5f\n",
                worst, compiled.test_mse, eager.test_mse);
    if (!(worst < 1e-3)) {
      std::fprintf(stderr, "compiled and eager training diverged (tolerance 1e-3 relative)\n");
      status = 1;
    }
  } else {
    std::printf("time per epoch (one fold's training step + validation): compiled %.3f ms\n", per_epoch_c);
  }
  // Sanity bounds, not results: training must cut the validation loss at least tenfold and the
  // test predictions must explain most of the target's variance (R^2 0.76 in the reference run
  // with the document's settings; a broken gradient or update stays near the first epoch's loss).
  if (epochs >= 100 && !(compiled.val.back() < 0.1 * compiled.val.front() && compiled.test_r2 > 0.5)) {
    std::fprintf(stderr, "training did not work: validation loss %.4f -> %.4f, test R^2 %.4f\n", compiled.val.front(),
                 compiled.val.back(), compiled.test_r2);
    status = 1;
  }
  return status;
}
