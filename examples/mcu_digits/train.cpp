// Trains the mcu_digits classifier (64 pixels -> 32 -> 10 classes) on sklearn's handwritten digits
// with kiln's own training (kiln::grad, Adam, cross_entropy), quantises it with kiln's PTQ
// (calibrated on 256 training images) and writes the firmware's two headers into <dir>:
//   model.hpp       the float weights as constexpr arrays, the held-out test images (every 5th
//                   sample, 360 of 1797) and the host's float and int8 accuracy on them, which the
//                   firmware must reach;
//   model_int8.hpp  the int8 model as kiln::ptq emits it (constexpr arrays + a constexpr lambda).
//   zcat .../sklearn/datasets/data/digits.csv.gz | mcu_digits_train examples/mcu_digits
// (scripts/mcu_digits_model.sh is the one command). Deterministic: fixed seeds, fixed order.
#include <kiln/kiln.hpp>
#include <kiln/ptq.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kIn = 64, kHidden = 32, kClasses = 10, kBatch = 64, kEpochs = 60;

struct Split {
  std::vector<float> x;  // pixels / 16
  std::vector<std::uint8_t> pixels;
  std::vector<int> y;
  int count() const { return static_cast<int>(y.size()); }
};

std::uint32_t g_seed = 12345u;
std::uint32_t next_random() { return g_seed = g_seed * 1664525u + 1013904223u; }
float uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>(next_random() >> 8) / 16777216.f; }

kiln::Tensor<float> init(const kiln::Shape& s, float bound) {
  kiln::Tensor<float> t(s);
  for (kiln::index_t i = 0; i < t.size(); ++i) t[i] = uniform(-bound, bound);
  return t;
}

void print_array(std::ostream& out, const char* type, const char* name, const float* v, std::size_t n) {
  out << "inline constexpr " << type << ' ' << name << '[' << n << "] = {";
  char buf[32];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v[i]));
    out << (i % 8 ? " " : "\n    ") << buf << "f,";
  }
  out << "\n};\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: mcu_digits_train <output dir> < digits.csv\n";
    return 2;
  }
  const std::string dir = argv[1];
  Split train, test;
  std::string line;
  int row = 0;
  while (std::getline(std::cin, line)) {
    std::stringstream ss(line);
    std::string cell;
    std::vector<int> v;
    while (std::getline(ss, cell, ',')) v.push_back(std::stoi(cell));
    if (v.size() != kIn + 1) {
      std::cerr << "mcu_digits_train: row " << row << " has " << v.size() << " fields, expected 65\n";
      return 1;
    }
    Split& s = row % 5 == 0 ? test : train;
    for (int k = 0; k < kIn; ++k) {
      s.x.push_back(static_cast<float>(v[static_cast<std::size_t>(k)]) / 16.f);
      s.pixels.push_back(static_cast<std::uint8_t>(v[static_cast<std::size_t>(k)]));
    }
    s.y.push_back(v[kIn]);
    ++row;
  }
  if (row != 1797) {
    std::cerr << "mcu_digits_train: read " << row << " rows, expected sklearn's 1797 digits\n";
    return 1;
  }

  kiln::Parameter w1(init({kHidden, kIn}, 1.f / 8.f)), b1(kiln::Tensor<float>(kiln::Shape{kHidden}));
  kiln::Parameter w2(init({kClasses, kHidden}, 1.f / std::sqrt(32.f))), b2(kiln::Tensor<float>(kiln::Shape{kClasses}));
  kiln::AdamOptions o;
  o.lr = 0.01f;
  kiln::Adam opt({&w1, &b1, &w2, &b2}, o);
  auto logits = [&](auto x) { return kiln::linear(kiln::relu(kiln::linear(x, w1, b1)), w2, b2); };
  auto step = kiln::compile([&](auto x, auto y) {
    auto loss = kiln::cross_entropy(logits(x), y);
    opt.step(kiln::grad(loss, w1, b1, w2, b2));
    return loss;
  });

  std::vector<int> order(static_cast<std::size_t>(train.count()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  kiln::Tensor<float> xb({kBatch, kIn});
  float loss = 0.f;
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[next_random() % (i + 1)]);
    for (int b = 0; b + kBatch <= train.count(); b += kBatch) {
      std::vector<int> labels;
      for (int r = 0; r < kBatch; ++r) {
        const int s = order[static_cast<std::size_t>(b + r)];
        for (int k = 0; k < kIn; ++k) xb[r * kIn + k] = train.x[static_cast<std::size_t>(s * kIn + k)];
        labels.push_back(train.y[static_cast<std::size_t>(s)]);
      }
      loss = step(xb, kiln::one_hot(labels, kClasses))[0];
    }
  }

  // Host accuracy on the held-out images, float, through kiln::compile.
  kiln::Tensor<float> xt({test.count(), kIn});
  for (std::size_t i = 0; i < test.x.size(); ++i) xt[static_cast<kiln::index_t>(i)] = test.x[i];
  const kiln::Tensor<float> out = kiln::compile(logits)(xt);
  int correct = 0;
  for (int i = 0; i < test.count(); ++i) {
    int best = 0;
    for (int c = 1; c < kClasses; ++c)
      if (out[i * kClasses + c] > out[i * kClasses + best]) best = c;
    correct += best == test.y[static_cast<std::size_t>(i)];
  }

  // Post-training quantisation: the trained weights as constants (PTQ needs captured tensors),
  // calibrated on 256 training images at the firmware's batch of one.
  const kiln::Tensor<float> cw1 = w1.value(), cb1 = b1.value(), cw2 = w2.value(), cb2 = b2.value();
  auto frozen = [&](auto x) { return kiln::linear(kiln::relu(kiln::linear(x, cw1, cb1)), cw2, cb2); };
  auto sample = [](const Split& s, int i) {
    kiln::Tensor<float> x({1, kIn});
    for (int k = 0; k < kIn; ++k) x[k] = s.x[static_cast<std::size_t>(i * kIn + k)];
    return x;
  };
  std::vector<kiln::Tensor<float>> calibration, eval;
  std::vector<std::vector<int>> labels;
  for (int i = 0; i < 256; ++i) calibration.push_back(sample(train, i));
  for (int i = 0; i < test.count(); ++i) {
    eval.push_back(sample(test, i));
    labels.push_back({test.y[static_cast<std::size_t>(i)]});
  }
  const kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(frozen, calibration);
  const kiln::ptq::Evaluation ev = qm.evaluate(eval, labels);
  const int int8_correct = static_cast<int>(ev.int8_accuracy * test.count() + 0.5);
  std::cerr << "mcu_digits_train: final batch loss " << loss << ", host accuracy float " << correct << '/'
            << test.count() << ", int8 " << int8_correct << '/' << test.count() << " (PTQ float path "
            << static_cast<int>(ev.float_accuracy * test.count() + 0.5) << ", agreement " << ev.agreement << ")\n";
  {
    std::ofstream q(dir + "/model_int8.hpp");
    q << qm.emit_header("mcu_digits_int8");
    if (!q) {
      std::cerr << "mcu_digits_train: cannot write " << dir << "/model_int8.hpp\n";
      return 1;
    }
  }

  std::ofstream file(dir + "/model.hpp");
  std::ostream& h = file;
  h << "// Generated by scripts/mcu_digits_model.sh (examples/mcu_digits/train.cpp): do not edit.\n"
       "// A 64 -> 32 -> 10 MLP trained with kiln (Adam, lr 0.01, batch "
    << kBatch << ", " << kEpochs
    << " epochs) on sklearn's digits; every 5th sample held out. The int8 model: model_int8.hpp.\n"
       "#pragma once\n\n#include <cstdint>\n\nnamespace mcu_digits {\n\n"
    << "inline constexpr int kIn = " << kIn << ", kHidden = " << kHidden << ", kClasses = " << kClasses << ";\n";
  print_array(h, "float", "kW1", w1.data(), static_cast<std::size_t>(w1.size()));
  print_array(h, "float", "kB1", b1.data(), static_cast<std::size_t>(b1.size()));
  print_array(h, "float", "kW2", w2.data(), static_cast<std::size_t>(w2.size()));
  print_array(h, "float", "kB2", b2.data(), static_cast<std::size_t>(b2.size()));
  h << "\n// Held-out test images: pixel values 0..16 (the model reads pixel / 16), and their labels.\n"
    << "inline constexpr int kTestCount = " << test.count() << ";\n"
    << "inline constexpr std::uint8_t kTestPixels[" << test.pixels.size() << "] = {";
  for (std::size_t i = 0; i < test.pixels.size(); ++i) h << (i % 32 ? "" : "\n    ") << int(test.pixels[i]) << ',';
  h << "\n};\ninline constexpr std::uint8_t kTestLabels[" << test.count() << "] = {";
  for (int i = 0; i < test.count(); ++i) h << (i % 32 ? "" : "\n    ") << test.y[static_cast<std::size_t>(i)] << ',';
  h << "\n};\n\n// Correct test images on the host (float: kiln::compile; int8: kiln::ptq's model, the same\n"
       "// int8 kernels): the firmware must reach them.\n"
    << "inline constexpr int kHostFloatCorrect = " << correct << ";\n"
    << "inline constexpr int kHostInt8Correct = " << int8_correct << ";\n\n}  // namespace mcu_digits\n";
  if (!file) {
    std::cerr << "mcu_digits_train: cannot write " << dir << "/model.hpp\n";
    return 1;
  }
  return 0;
}
