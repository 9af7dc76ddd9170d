// The doctor tests' model: 16 -> 24 -> relu -> 20 -> relu -> 4 with uniform(-0.5, 0.5) weights
// from a fixed seed; distinct widths, so a kept node's shape says which layer it is. Each test
// then makes one layer sensitive in its own way (tests/test_doctor*.cpp).
#pragma once

#include <kiln/kiln.hpp>

#include <random>
#include <vector>

#include "test_util.hpp"

namespace kt {

struct DoctorMlp {
  kiln::Tensor<float> w1{kiln::Shape{24, 16}}, b1{kiln::Shape{24}}, w2{kiln::Shape{20, 24}}, b2{kiln::Shape{20}},
      w3{kiln::Shape{4, 20}}, b3{kiln::Shape{4}};
  explicit DoctorMlp(unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    for (auto* t : {&w1, &b1, &w2, &b2, &w3, &b3})
      for (float& v : *t) v = u(gen);
  }
  template <class X>
  auto operator()(const X& x) const {
    auto h1 = kiln::relu(kiln::linear(x, w1, b1));
    auto h2 = kiln::relu(kiln::linear(h1, w2, b2));
    return kiln::linear(h2, w3, b3);
  }
};

/// `count` input batches [8, 16], uniform(-1, 1), seeds seed, seed + 1, ...
inline std::vector<kiln::Tensor<float>> doctor_batches(int count, unsigned seed) {
  std::vector<kiln::Tensor<float>> out;
  for (int b = 0; b < count; ++b)
    out.push_back(random_tensor(kiln::Shape{8, 16}, seed + static_cast<unsigned>(b), -1.f, 1.f));
  return out;
}

}  // namespace kt
