// bench/bench_random.hpp — seeded uniform random tensors for the benchmarks.
#pragma once

#include <kiln/kiln.hpp>

#include <random>

namespace kiln_bench {

inline kiln::Tensor<float> uniform(const kiln::Shape& s, unsigned seed, float lo = -1.f, float hi = 1.f) {
  kiln::Tensor<float> t(s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (float& v : t) v = d(rng);
  return t;
}

}  // namespace kiln_bench
