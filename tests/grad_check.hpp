// tests/grad_check.hpp — central finite differences against kiln::grad, compiled and eager.
//
// For a model f (tensors -> one tensor y) and fixed random weights w, the checked loss is
// L(x) = sum(w * f(x)). kiln computes dL/dx with kiln::grad inside the traced function (once
// compiled, once through kiln::eager); the reference is the central difference
//   (L(x + h e_i) - L(x - h e_i)) / 2h,
// where f runs eagerly in f32 but L is accumulated in double from the returned y.
//
// Tolerance, derived from h: the error of the difference quotient is truncation
// h^2/6 |L'''| plus f32 rounding of the y values that x_i touches, at most
// k * eps_f32 * max|w y| / h (k outputs depend on x_i, eps = 6e-8). With h = 1e-2 and inputs,
// weights and outputs of order 1 (|L'''| <~ 10, k <~ 20, |w y| <~ 5): about 2e-4 + 6e-4.
// We allow |fd - grad| <= 2e-3 + 2e-3 |grad|: ~2x that bound, and far below a wrong rule
// (a missing factor, sign or broadcast sum is off by O(|grad|)). Inputs are drawn away from kinks
// (relu at 0, clamp bounds, ties of max/min) by more than h, so the loss is smooth within +-h.
// Compiled vs eager gradients: the same math, differently fused and summed: 1e-4 + 1e-4 |g|.
#pragma once

#include <functional>
#include <sstream>

#include "test_util.hpp"

namespace gc {

inline constexpr double kH = 1e-2;
inline constexpr kt::Tol kFdTol{2e-3, 2e-3};
inline constexpr kt::Tol kCompiledVsEager{1e-4, 1e-4};

inline double weighted_sum(const kiln::Tensor<float>& y, const kiln::Tensor<float>& w) {
  REQUIRE(y.shape() == w.shape());
  double s = 0;
  for (kiln::index_t i = 0; i < y.size(); ++i) s += static_cast<double>(y[i]) * static_cast<double>(w[i]);
  return s;
}

template <class F, std::size_t... I>
kiln::Tensor<float> call_with(F& f, const std::vector<kiln::Tensor<float>>& v, std::index_sequence<I...>) {
  return f(v[I]...);
}
template <class... T>
std::vector<kiln::Tensor<float>> to_vector(const std::tuple<T...>& t) {
  return std::apply([](const auto&... g) { return std::vector<kiln::Tensor<float>>{g...}; }, t);
}

/// Central differences of L = sum(w * f(xs)) with respect to xs[which], with step h.
template <class F>
std::vector<double> finite_difference(F f, std::vector<kiln::Tensor<float>> xs, const kiln::Tensor<float>& w,
                                      std::size_t which, double h = kH) {
  std::vector<double> out;
  kiln::Tensor<float>& x = xs[which];
  for (kiln::index_t i = 0; i < x.size(); ++i) {
    const float keep = x[i];
    x[i] = static_cast<float>(keep + h);
    const double hi_x = static_cast<double>(x[i]);
    const double up = weighted_sum(f(xs), w);
    x[i] = static_cast<float>(keep - h);
    const double lo_x = static_cast<double>(x[i]);
    const double down = weighted_sum(f(xs), w);
    x[i] = keep;
    out.push_back((up - down) / (hi_x - lo_x));  // the f32-rounded step actually taken
  }
  return out;
}

/// Which elements have a kink (max/min tie, relu-like corner) within +-h: there the central
/// differences at h and h/2 disagree by more than the smooth-case tolerance (for a smooth loss
/// they differ only by the O(h^2) truncation). Random programs use this; per-op tests place
/// inputs away from kinks instead.
template <class F>
std::vector<bool> near_kink(F f, const std::vector<kiln::Tensor<float>>& xs, const kiln::Tensor<float>& w,
                            std::size_t which, const std::vector<double>& fd_h, double h, kt::Tol tol) {
  const std::vector<double> fd_half = finite_difference(f, xs, w, which, h / 2);
  std::vector<bool> out;
  for (std::size_t i = 0; i < fd_h.size(); ++i) out.push_back(!kt::close(fd_half[i], fd_h[i], tol));
  return out;
}

/// Random programs: a smaller step (fewer kinks within reach), so f32 rounding weighs 10x more:
/// k eps |w y| / h ~ 12 * 6e-8 * 5 / 1e-3 = 4e-3 -> tolerance 5e-3 + 5e-3 |grad|.
inline constexpr double kChainH = 1e-3;
inline constexpr kt::Tol kChainTol{5e-3, 5e-3};

/// Checks kiln::grad of sum(w * f(x0, x1, ...)) against finite differences (for every input),
/// compiled and eager, and compiled against eager.
enum class Kinks { absent, skip };

template <class F, class... X>
void check_gradients_impl(const std::string& what, Kinks kinks, F f, std::uint32_t seed, const X&... inputs) {
  INFO(what);
  constexpr std::size_t n = sizeof...(X);
  const std::vector<kiln::Tensor<float>> xs = {inputs...};
  auto apply = [&f](const std::vector<kiln::Tensor<float>>& v) -> kiln::Tensor<float> {
    return call_with(f, v, std::make_index_sequence<n>{});
  };
  const kiln::Tensor<float> y0 = apply(xs);
  REQUIRE(y0.data() != nullptr);
  const kiln::Tensor<float> w = kt::random_tensor(y0.shape(), seed, -1.f, 1.f);
  const double h = kinks == Kinks::skip ? kChainH : kH;
  const kt::Tol fd_tol = kinks == Kinks::skip ? kChainTol : kFdTol;
  std::vector<std::vector<double>> fd;
  for (std::size_t k = 0; k < n; ++k) fd.push_back(finite_difference(apply, xs, w, k, h));

  // The training-step shape of function: the loss and its gradients in one trace.
  auto step = [f, w](const auto&... x) { return kiln::grad(kiln::sum_all(f(x...) * w), x...); };
  const auto compiled = to_vector(kiln::compile(step)(inputs...));
  const auto eager = to_vector(kiln::eager(step)(inputs...));
  auto check = [&](const std::vector<kiln::Tensor<float>>& grads, const char* mode) {
    INFO(mode);
    REQUIRE(grads.size() == n);
    for (std::size_t k = 0; k < n; ++k) {
      REQUIRE(grads[k].shape() == xs[k].shape());
      kt::check_close(grads[k], fd[k], fd_tol, what + ": d/dx" + std::to_string(k) + " vs finite differences");
    }
  };
  if (kinks == Kinks::skip) {  // compare only where the loss is smooth within +-h
    std::size_t skipped = 0, total = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const std::vector<bool> kink = near_kink(apply, xs, w, k, fd[k], h, fd_tol);
      for (std::size_t i = 0; i < kink.size(); ++i, ++total)
        if (kink[i]) {
          fd[k][i] = compiled[k][static_cast<kiln::index_t>(i)];
          ++skipped;
        }
    }
    INFO("elements next to a kink, not compared with finite differences: " << skipped << " of " << total);
    CHECK(skipped * 2 <= total);  // ties touch the tied elements (and what they feed), not most
  }
  check(compiled, "compiled");
  check(eager, "eager");
  for (std::size_t k = 0; k < n; ++k)
    kt::check_close(compiled[k], eager[k], kCompiledVsEager, what + ": compiled vs eager");
}

template <class F, class... X>
void check_gradients(const std::string& what, F f, std::uint32_t seed, const X&... inputs) {
  check_gradients_impl(what, Kinks::absent, f, seed, inputs...);
}

/// Random values in [lo, hi] at least `gap` away from every point in `avoid` (kinks).
inline kiln::Tensor<float> away_from(const kiln::Shape& s, std::uint32_t seed, float lo, float hi,
                                     std::initializer_list<float> avoid, float gap = 0.05f) {
  kiln::Tensor<float> t = kt::random_tensor(s, seed, lo, hi);
  for (float& v : t)
    for (float a : avoid)
      if (std::fabs(v - a) < gap) v = a + (v < a ? -gap : gap) * 2.f;
  return t;
}

}  // namespace gc
