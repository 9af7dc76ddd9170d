// Reductions and softmax: compiled vs eager vs naive loops, every axis, keepdim, fused producers.
// Tolerances: sums reorder additions, so |err| <= 1e-5 * sum|x| (sum/mean); max/min are exact;
// softmax 2e-6 relative (exp + one division per element).
#include "test_util.hpp"

namespace {

// Naive reduction of x (shape s) over axis; returns values in row-major order of the result.
std::vector<double> naive_reduce(const kiln::Tensor<float>& x, int axis, int kind, std::vector<double>* abs_sum) {
  const kiln::Shape& s = x.shape();
  kiln::index_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= s[d];
  for (int d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  const kiln::index_t len = s[axis];
  std::vector<double> out;
  for (kiln::index_t o = 0; o < outer; ++o)
    for (kiln::index_t i = 0; i < inner; ++i) {
      double acc = kind == 2 ? -INFINITY : kind == 3 ? INFINITY : 0.0, mag = 0;
      for (kiln::index_t k = 0; k < len; ++k) {
        const double v = x[(o * len + k) * inner + i];
        mag += std::fabs(v);
        if (kind <= 1) acc += v;
        else if (kind == 2) acc = std::max(acc, v);
        else acc = std::min(acc, v);
      }
      if (kind == 1) {
        acc /= static_cast<double>(len);
        mag /= static_cast<double>(len);
      }
      out.push_back(acc);
      if (abs_sum) abs_sum->push_back(mag);
    }
  return out;
}

template <class T>
auto reduce_op(int kind, const T& x, int axis, bool keepdim) {
  switch (kind) {
    case 0: return kiln::sum(x, axis, keepdim);
    case 1: return kiln::mean(x, axis, keepdim);
    case 2: return kiln::max(x, axis, keepdim);
    default: return kiln::min(x, axis, keepdim);
  }
}

}  // namespace

TEST_CASE("sum, mean, max, min over every axis, with and without keepdim") {
  const kiln::Shape shapes[] = {{1000}, {3, 17}, {7, 1, 5}, {2, 3, 4, 9}, {17, 33}};
  const char* names[] = {"sum", "mean", "max", "min"};
  std::uint32_t seed = 1;
  for (int kind = 0; kind < 4; ++kind) {
    auto model = [kind](auto x, int axis, bool keepdim) { return reduce_op(kind, x, axis, keepdim); };
    for (const kiln::Shape& s : shapes)
      for (int axis = -1; axis < s.rank(); ++axis)
        for (bool keepdim : {false, true}) {
          const int ax = axis < 0 ? s.rank() - 1 : axis;
          const auto x = kt::random_tensor(s, seed++);
          std::vector<double> mag;
          const auto want = naive_reduce(x, ax, kind, &mag);
          // The axis and keepdim are non-tensor arguments: a compiled wrapper per configuration.
          auto net = kiln::compile([kind, axis, keepdim](auto t) { return reduce_op(kind, t, axis, keepdim); });
          const auto got = net(x);
          kiln::Shape expect;
          for (int d = 0; d < s.rank(); ++d)
            if (d != ax) expect.push_back(s[d]);
            else if (keepdim) expect.push_back(1);
          CHECK(got.shape() == expect);
          const auto eager = model(x, axis, keepdim);
          REQUIRE(got.size() == static_cast<kiln::index_t>(want.size()));
          for (std::size_t i = 0; i < want.size(); ++i) {
            INFO(names[kind] << " shape rank " << s.rank() << " axis " << axis << " index " << i);
            const double tol = kind <= 1 ? 1e-5 * mag[i] + 1e-7 : 0.0;
            CHECK(std::fabs(got[static_cast<kiln::index_t>(i)] - want[i]) <= tol);
            CHECK(std::fabs(eager[static_cast<kiln::index_t>(i)] - want[i]) <= tol);
          }
        }
  }
}

TEST_CASE("max and min propagate NaN; reductions of a fused producer chain") {
  kiln::Tensor<float> x({2, 4}, {1.f, NAN, 3.f, 2.f, -1.f, -2.f, -3.f, -4.f});
  auto mx = kiln::compile([](auto t) { return kiln::max(t, 1); });
  const auto r = mx(x);
  CHECK(std::isnan(r[0]));
  CHECK(r[1] == -1.f);
  auto mn = kiln::compile([](auto t) { return kiln::min(t, 1); });
  CHECK(std::isnan(mn(x)[0]));

  // sum((a*b + 1)^2) over the last axis: one kernel, producer evaluated inside the reduction.
  const auto a = kt::random_tensor({5, 333}, 3), b = kt::random_tensor({333}, 4);
  auto model = [](auto p, auto q) { return kiln::sum(kiln::pow(p * q + 1.f, 2.f), -1); };
  auto net = kiln::compile(model);
  const auto got = net(a, b);
  CHECK(net.stats().kernels == 1);
  for (kiln::index_t r0 = 0; r0 < 5; ++r0) {
    double want = 0, mag = 0;
    for (kiln::index_t k = 0; k < 333; ++k) {
      const double v = std::pow(static_cast<double>(a(r0, k)) * b[k] + 1.0, 2.0);
      want += v;
      mag += std::fabs(v);
    }
    CHECK(std::fabs(got[r0] - want) <= 1e-5 * mag);
  }
  // The same producer over a non-last axis.
  auto model0 = [](auto p, auto q) { return kiln::mean(kiln::tanh(p) * q, 0, true); };
  auto net0 = kiln::compile(model0);
  kt::check_close(net0(a, b), kiln::eager(model0)(a, b), {1e-6, 1e-5}, "mean over axis 0 of a fused chain");
  CHECK(net0.stats().kernels == 1);
}

TEST_CASE("softmax and log_softmax: stable, every axis, fused producer") {
  const kiln::Shape shapes[] = {{1000}, {3, 17}, {4, 7, 5}, {256, 33}};
  std::uint32_t seed = 40;
  for (const kiln::Shape& s : shapes)
    for (int axis = 0; axis < s.rank(); ++axis)
      for (bool log : {false, true}) {
        auto x = kt::random_tensor(s, seed++, -30.f, 30.f);
        if (x.size() > 3) x[2] = 1000.f;  // a large logit must not overflow
        auto model = [axis, log](auto t) { return log ? kiln::log_softmax(t, axis) : kiln::softmax(t, axis); };
        auto net = kiln::compile(model);
        const auto got = net(x);
        const auto eager = kiln::eager(model)(x);
        kiln::index_t outer = 1, inner = 1;
        for (int d = 0; d < axis; ++d) outer *= s[d];
        for (int d = axis + 1; d < s.rank(); ++d) inner *= s[d];
        const kiln::index_t len = s[axis];
        for (kiln::index_t o = 0; o < outer; ++o)
          for (kiln::index_t i = 0; i < inner; ++i) {
            double m = -INFINITY, sum = 0;
            for (kiln::index_t k = 0; k < len; ++k) m = std::max(m, static_cast<double>(x[(o * len + k) * inner + i]));
            for (kiln::index_t k = 0; k < len; ++k) sum += std::exp(x[(o * len + k) * inner + i] - m);
            for (kiln::index_t k = 0; k < len; ++k) {
              const kiln::index_t at = (o * len + k) * inner + i;
              const double z = x[at] - m;
              const double want = log ? z - std::log(sum) : std::exp(z) / sum;
              const kt::Tol tol = log ? kt::Tol{2e-5, 2e-6} : kt::Tol{1e-9, 2e-6};
              INFO("rank " << s.rank() << " axis " << axis << (log ? " log_softmax" : " softmax") << " at " << at);
              CHECK(kt::close(got[at], want, tol));
              CHECK(kt::close(eager[at], want, tol));
            }
          }
      }
  // softmax(x * 2 - 1) keeps its producer inside the softmax kernel.
  auto fused = kiln::compile([](auto t) { return kiln::softmax(t * 2.f - 1.f, -1); });
  const auto x = kt::random_tensor({8, 100}, 9);
  (void)fused(x);
  CHECK(fused.stats().kernels == 1);
}
