// examples/train_precision.cpp — FP32, static 8-bit and cyclic 3->8-bit training of a digits
// classifier, compared on accuracy and training cost (Cyclic Precision Training, shared/seeds/002).
//
// Data: the 8x8 handwritten digits Debian ships with python3-sklearn (1797 images, 64 pixels
// 0..16 and a label per CSV row); 80/20 split by a seeded shuffle, pixels scaled to [0, 1].
// Network: 64 -> 64 -> ReLU -> 10, cross-entropy, Adam lr 1e-2, minibatches of 64.
// Schedules (weights and activations "FW", gradients "BW", as the paper writes them):
//   FP32         full precision
//   FW8/BW8      static 8-bit fake quantisation, 8-bit gradients with stochastic rounding
//   FW(3,8)/BW8  CPT: weights/activations cycle 3 -> 8 bits on the cosine schedule, N = 32
//                cycles (or fewer when the run is short: at least 4 steps a cycle), 8-bit grads
// Each schedule is trained from several seeds; the table gives test accuracy mean +- std (the
// quantised models evaluated at 8 bits) and the training cost in GBitOPs (MACs x bit widths of
// the forward and both backward GEMMs). The precision range test (start 2 bits) is also run, to
// show the B_min it would pick for this model. The figures are whatever the run gives.
//
//   train_precision [--data digits.csv[.gz]] [--epochs N] [--seeds K]
#include <kiln/kiln.hpp>
#include <kiln/train/losses.hpp>
#include <kiln/train/low_precision.hpp>
#include <kiln/train/optim.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr int kPixels = 64, kClasses = 10, kHidden = 64, kBatch = 64;
const char* kDefaultData = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";

struct Digits {
  std::vector<float> x;  // rows of kPixels in [0, 1]
  std::vector<int> y;
  int rows() const { return static_cast<int>(y.size()); }
};

bool load_digits(const std::string& path, Digits& d) {
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  FILE* f = gz ? popen(("gzip -dc '" + path + "'").c_str(), "r") : std::fopen(path.c_str(), "r");
  if (!f) return false;
  char line[1024];
  while (std::fgets(line, sizeof line, f)) {
    float v[kPixels + 1];
    int n = 0;
    for (char* p = line; n <= kPixels && *p;) {
      char* end = nullptr;
      v[n] = std::strtof(p, &end);
      if (end == p) break;
      ++n;
      p = *end == ',' ? end + 1 : end;
    }
    if (n != kPixels + 1) continue;
    for (int i = 0; i < kPixels; ++i) d.x.push_back(v[i] / 16.f);
    d.y.push_back(static_cast<int>(v[kPixels]));
  }
  if (gz) pclose(f);
  else std::fclose(f);
  return d.rows() > 0;
}

kiln::Tensor<float> rows_of(const Digits& d, const std::vector<int>& idx, std::size_t from, std::size_t count) {
  kiln::Tensor<float> t({static_cast<kiln::index_t>(count), kPixels});
  for (std::size_t r = 0; r < count; ++r)
    std::copy_n(d.x.begin() + idx[from + r] * kPixels, kPixels, t.data() + r * kPixels);
  return t;
}
std::vector<int> labels_of(const Digits& d, const std::vector<int>& idx, std::size_t from, std::size_t count) {
  std::vector<int> l(count);
  for (std::size_t r = 0; r < count; ++r) l[r] = d.y[static_cast<std::size_t>(idx[from + r])];
  return l;
}

enum class Schedule { fp32, static8, cyclic };
const char* schedule_name(Schedule s) {
  return s == Schedule::fp32 ? "FP32" : s == Schedule::static8 ? "FW8/BW8" : "FW(3,8)/BW8 cyclic";
}

struct Net {
  kiln::Parameter w1{kiln::Shape{kHidden, kPixels}}, b1{kiln::Shape{kHidden}}, w2{kiln::Shape{kClasses, kHidden}},
      b2{kiln::Shape{kClasses}};
  kiln::BitWidth weight_bits{8}, activation_bits{8};

  explicit Net(unsigned seed) {  // torch.nn.Linear's initialisation
    std::mt19937 g(seed);
    kiln::Parameter* ps[] = {&w1, &b1, &w2, &b2};
    const int fan_in[] = {kPixels, kPixels, kHidden, kHidden};
    for (int k = 0; k < 4; ++k) {
      const float bound = 1.f / std::sqrt(static_cast<float>(fan_in[k]));
      std::uniform_real_distribution<float> u(-bound, bound);
      for (kiln::index_t i = 0; i < ps[k]->size(); ++i) (*ps[k])[i] = u(g);
    }
  }
  template <class X>
  auto logits(const X& x, bool quantised) {
    if (!quantised) return kiln::linear(kiln::relu(kiln::linear(x, w1, b1)), w2, b2);
    auto h = kiln::relu(kiln::quantized_linear(x, w1, b1, weight_bits, activation_bits));
    return kiln::quantized_linear(h, w2, b2, weight_bits, activation_bits);
  }
};

struct RunResult {
  double accuracy = 0, gbitops = 0;
};

struct Split {
  const Digits* data;
  std::vector<int> train, test;
};

double accuracy(const kiln::Tensor<float>& logits, const std::vector<int>& labels) {
  int correct = 0;
  for (std::size_t r = 0; r < labels.size(); ++r) {
    const float* row = logits.data() + r * kClasses;
    correct += static_cast<int>(std::max_element(row, row + kClasses) - row) == labels[r];
  }
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

RunResult train(const Split& split, Schedule schedule, unsigned seed, int epochs, double forward_macs_per_sample) {
  Net net(seed);
  const bool quantised = schedule != Schedule::fp32;
  kiln::Adam opt({&net.w1, &net.b1, &net.w2, &net.b2}, {/*lr*/ 1e-2f});
  kiln::GradientQuantizer grad_q({&net.w1, &net.b1, &net.w2, &net.b2}, 8, seed * 7919u + 1u);
  auto step = kiln::compile([&](auto x, auto target) {
    auto loss = kiln::cross_entropy(net.logits(x, quantised), target);
    auto grads = kiln::grad(loss, net.w1, net.b1, net.w2, net.b2);
    if (quantised) opt.step(grad_q(grads));
    else opt.step(grads);
    return loss;
  });
  auto predict = kiln::compile([&](auto x) { return net.logits(x, quantised); });

  const long steps_per_epoch = static_cast<long>(split.train.size()) / kBatch;  // drop_last
  const long total = steps_per_epoch * epochs;
  kiln::CyclicPrecision cpt{3, 8, 32, total};
  while (cpt.cycles > 1 && total / cpt.cycles < 4) cpt.cycles /= 2;
  std::mt19937 shuffle_rng(seed);
  std::vector<int> order = split.train;
  RunResult r;
  long t = 0;
  for (int e = 0; e < epochs; ++e) {
    std::shuffle(order.begin(), order.end(), shuffle_rng);
    for (long s = 0; s < steps_per_epoch; ++s, ++t) {
      int fw = 32, bw = 32;
      if (schedule == Schedule::static8) fw = bw = 8;
      if (schedule == Schedule::cyclic) fw = cpt.bits_at(t), bw = 8;
      net.weight_bits.set(fw);
      net.activation_bits.set(fw);
      grad_q.refill();
      const std::size_t from = static_cast<std::size_t>(s * kBatch);
      step(rows_of(*split.data, order, from, kBatch), kiln::one_hot(labels_of(*split.data, order, from, kBatch), kClasses));
      r.gbitops += kiln::training_bitops(forward_macs_per_sample * kBatch, fw, fw, bw) * 1e-9;
    }
  }
  net.weight_bits.set(8);  // quantised models are evaluated at the upper precision
  net.activation_bits.set(8);
  const kiln::Tensor<float> logits = predict(rows_of(*split.data, split.test, 0, split.test.size()));
  r.accuracy = accuracy(logits, labels_of(*split.data, split.test, 0, split.test.size()));
  return r;
}

// CPT's precision range test on this model: train a few steps at each precision from 2 bits up and
// report the rise in training-batch accuracy over them.
int range_test(const Split& split, unsigned seed) {
  Net net(seed);
  kiln::Adam opt({&net.w1, &net.b1, &net.w2, &net.b2}, {1e-2f});
  auto step = kiln::compile([&](auto x, auto target) {
    auto logits = net.logits(x, true);
    opt.step(kiln::grad(kiln::cross_entropy(logits, target), net.w1, net.b1, net.w2, net.b2));
    return logits;
  });
  std::mt19937 rng(seed);
  std::vector<int> order = split.train;
  std::shuffle(order.begin(), order.end(), rng);
  std::size_t cursor = 0;
  auto batch_accuracy = [&]() {
    if (cursor + kBatch > order.size()) cursor = 0;
    const kiln::Tensor<float> logits = step(rows_of(*split.data, order, cursor, kBatch),
                                            kiln::one_hot(labels_of(*split.data, order, cursor, kBatch), kClasses));
    const double a = accuracy(logits, labels_of(*split.data, order, cursor, kBatch));
    cursor += kBatch;
    return a;
  };
  return kiln::precision_range_test([&](int bits) {
    net.weight_bits.set(bits);
    net.activation_bits.set(bits);
    double first = 0, last = 0;
    for (int k = 0; k < 8; ++k) {  // accuracy of the first and the last two of 8 batches
      const double a = batch_accuracy();
      if (k < 2) first += a / 2;
      if (k >= 6) last += a / 2;
    }
    std::printf("  range test: %d bits, training accuracy %.3f -> %.3f\n", bits, first, last);
    return last - first;
  }, {2, 8, 0.15});
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = kDefaultData;
  int epochs = 30, seeds = 5;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--data") && i + 1 < argc) path = argv[++i];
    else if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--seeds") && i + 1 < argc) seeds = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--data digits.csv[.gz]] [--epochs N] [--seeds K]\n", argv[0]);
      return 2;
    }
  }
  Digits data;
  if (!load_digits(path, data)) {
    std::fprintf(stderr, "cannot read the digits data from %s (Debian: apt-get install python3-sklearn)\n", path.c_str());
    return 1;
  }
  Split split{&data, {}, {}};
  std::vector<int> all(static_cast<std::size_t>(data.rows()));
  std::iota(all.begin(), all.end(), 0);
  std::mt19937 split_rng(2026);
  std::shuffle(all.begin(), all.end(), split_rng);
  const std::size_t n_test = all.size() / 5;
  split.test.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n_test));
  split.train.assign(all.begin() + static_cast<std::ptrdiff_t>(n_test), all.end());
  std::printf("digits: %d images, train %zu, test %zu; 64-%d-10 MLP, %d epochs, batch %d, %d seeds\n", data.rows(),
              split.train.size(), split.test.size(), kHidden, epochs, kBatch, seeds);

  const double macs = static_cast<double>(kPixels) * kHidden + static_cast<double>(kHidden) * kClasses;
  std::printf("precision range test (CPT's B_min search from 2 bits, threshold 0.15):\n");
  const int b_min = range_test(split, 1);
  std::printf("  -> B_min = %d (the schedule below uses the paper's 3)\n\n", b_min);

  std::printf("%-20s %-18s %-12s %s\n", "schedule", "test accuracy", "GBitOPs", "cost vs FP32");
  double fp32_cost = 0;
  int status = 0;
  for (Schedule s : {Schedule::fp32, Schedule::static8, Schedule::cyclic}) {
    std::vector<double> acc;
    double cost = 0;
    for (int k = 0; k < seeds; ++k) {
      const RunResult r = train(split, s, static_cast<unsigned>(k + 1), epochs, macs);
      acc.push_back(r.accuracy);
      cost = r.gbitops;
    }
    const double mean = std::accumulate(acc.begin(), acc.end(), 0.0) / static_cast<double>(acc.size());
    double var = 0;
    for (double a : acc) var += (a - mean) * (a - mean);
    const double sd = acc.size() > 1 ? std::sqrt(var / static_cast<double>(acc.size() - 1)) : 0.0;
    if (s == Schedule::fp32) fp32_cost = cost;
    std::printf("%-20s %.4f +- %.4f    %-12.3f %.3f\n", schedule_name(s), mean, sd, cost, cost / fp32_cost);
    // A sanity floor, not a result: ten classes, so a model that learned nothing scores ~0.1.
    if (!(mean > 0.5)) status = 1;
  }
  return status;
}
