// tests/test_util.hpp — random tensors and tolerance checks shared by the op tests.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <kiln/kiln.hpp>

namespace kt {

#if KILN_EXCEPTIONS
/// The message of the kiln::Error that `f` throws, or "no error".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "no error";
}
#endif

inline kiln::Tensor<float> random_tensor(const kiln::Shape& s, std::uint32_t seed, float lo = -2.f, float hi = 2.f) {
  kiln::Tensor<float> t(s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (float& v : t) v = d(rng);
  return t;
}

/// Tolerance: |got - want| <= abs + rel * |want|; NaN must meet NaN, Inf the same Inf.
struct Tol {
  double abs = 1e-6, rel = 1e-6;
};

inline bool close(double got, double want, Tol t) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= t.abs + t.rel * std::fabs(want);
}

/// Checks a tensor against reference values; reports the first mismatch with its index.
template <class T>
void check_close(const kiln::Tensor<T>& got, const std::vector<double>& want, Tol t, const std::string& what) {
  INFO(what);
  REQUIRE(static_cast<std::size_t>(got.size()) == want.size());
  for (kiln::index_t i = 0; i < got.size(); ++i) {
    if (!close(static_cast<double>(got[i]), want[static_cast<std::size_t>(i)], t)) {
      INFO("index " << i << ": got " << static_cast<double>(got[i]) << ", want " << want[static_cast<std::size_t>(i)]);
      CHECK(false);
      return;
    }
  }
}

template <class T>
void check_close(const kiln::Tensor<T>& got, const kiln::Tensor<T>& want, Tol t, const std::string& what) {
  REQUIRE(got.shape() == want.shape());
  std::vector<double> w(want.begin(), want.end());
  check_close(got, w, t, what);
}

/// Row-major index -> element offset of a tensor of shape `in` broadcast into `out`.
inline kiln::index_t broadcast_offset(kiln::index_t flat, const kiln::Shape& out, const kiln::Shape& in) {
  kiln::index_t off = 0, stride = 1;
  for (int d = out.rank() - 1, j = in.rank() - 1; d >= 0; --d, --j) {
    const kiln::index_t idx = flat % out[d];
    flat /= out[d];
    if (j >= 0) {
      if (in[j] != 1) off += idx * stride;
      stride *= in[j];
    }
  }
  return off;
}

}  // namespace kt
