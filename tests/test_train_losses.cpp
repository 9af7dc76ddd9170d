// Losses (train/losses.hpp): values against naive double loops, gradients against finite
// differences (tests/grad_check.hpp), stability for large logits. Loss values: 1e-5 relative
// (f32 sums of a few dozen terms).
#include "grad_check.hpp"

using kiln::Shape;
using kiln::Tensor;
using V = std::vector<double>;

namespace {
constexpr kt::Tol kLossTol{1e-6, 1e-5};

double naive_cross_entropy(const Tensor<float>& x, const Tensor<float>& t, kiln::index_t n, kiln::index_t c) {
  double total = 0;
  for (kiln::index_t i = 0; i < n; ++i) {
    double mx = -INFINITY;
    for (kiln::index_t k = 0; k < c; ++k) mx = std::max(mx, static_cast<double>(x[i * c + k]));
    double z = 0;
    for (kiln::index_t k = 0; k < c; ++k) z += std::exp(static_cast<double>(x[i * c + k]) - mx);
    for (kiln::index_t k = 0; k < c; ++k)
      total -= static_cast<double>(t[i * c + k]) * (static_cast<double>(x[i * c + k]) - mx - std::log(z));
  }
  return total / static_cast<double>(n);
}
}  // namespace

TEST_CASE("mse_loss: value and gradients (broadcast target)") {
  const auto p = kt::random_tensor(Shape{4, 3}, 1), t = kt::random_tensor(Shape{4, 3}, 2);
  double want = 0;
  for (kiln::index_t i = 0; i < p.size(); ++i) want += (double(p[i]) - t[i]) * (double(p[i]) - t[i]);
  want /= static_cast<double>(p.size());
  auto f = [](auto a, auto b) { return kiln::mse_loss(a, b); };
  kt::check_close(kiln::eager(f)(p, t), V{want}, kLossTol, "eager");
  kt::check_close(kiln::compile(f)(p, t), V{want}, kLossTol, "compiled");
  CHECK(kiln::eager(f)(p, t).shape().rank() == 0);
  gc::check_gradients("mse_loss", f, 3, p, t);
  gc::check_gradients("mse_loss, broadcast target", f, 4, p, kt::random_tensor(Shape{3}, 5));
}

TEST_CASE("cross_entropy: one-hot labels and probabilities, stable for large logits") {
  const kiln::index_t n = 5, c = 4;
  const auto x = kt::random_tensor(Shape{n, c}, 10, -3.f, 3.f);
  const auto labels = kiln::one_hot({0, 3, 1, 1, 2}, static_cast<int>(c));
  Tensor<float> probs = kt::random_tensor(Shape{n, c}, 11, 0.1f, 1.f);
  for (kiln::index_t i = 0; i < n; ++i) {
    float s = 0;
    for (kiln::index_t k = 0; k < c; ++k) s += probs[i * c + k];
    for (kiln::index_t k = 0; k < c; ++k) probs[i * c + k] /= s;
  }
  auto f = [](auto a, auto b) { return kiln::cross_entropy(a, b); };
  for (const Tensor<float>* t : {&labels, static_cast<const Tensor<float>*>(&probs)}) {
    const double want = naive_cross_entropy(x, *t, n, c);
    kt::check_close(kiln::eager(f)(x, *t), V{want}, kLossTol, "eager");
    kt::check_close(kiln::compile(f)(x, *t), V{want}, kLossTol, "compiled");
    gc::check_gradients("cross_entropy", f, 12, x, *t);
  }
  // d/dx = (softmax(x) - onehot) / n exactly; logits of 1000 would overflow a naive exp.
  Tensor<float> big = x;
  for (float& v : big) v = v * 300.f + 1000.f;
  const double want = naive_cross_entropy(big, labels, n, c);
  kt::check_close(kiln::compile(f)(big, labels), V{want}, {1e-4, 1e-5}, "large logits");
  auto step = [](auto a, auto b) { return kiln::grad(kiln::cross_entropy(a, b), a); };
  const auto g = std::get<0>(kiln::compile(step)(big, labels));
  for (float v : g) CHECK(std::isfinite(v));
  // One class far ahead: its softmax is 1, so rows whose label is that class have zero gradient.
  Tensor<float> onehot_logits(Shape{1, 3}, {1000.f, 0.f, 0.f});
  const auto g1 = std::get<0>(kiln::eager(step)(onehot_logits, kiln::one_hot({0}, 3)));
  kt::check_close(g1, V{0, 0, 0}, {1e-30, 0}, "saturated, right class");
  CHECK_THROWS_AS((void)kiln::one_hot({3}, 3), kiln::Error);  // label out of range
}

TEST_CASE("binary_cross_entropy_with_logits: value, gradient sigmoid(x) - y, stable") {
  const auto x = gc::away_from(Shape{3, 4}, 20, -4.f, 4.f, {0.f});
  const auto y = kt::random_tensor(Shape{3, 4}, 21, 0.f, 1.f);
  double want = 0;
  for (kiln::index_t i = 0; i < x.size(); ++i) {
    const double v = x[i], t = y[i];
    want += -(t * std::log(1 / (1 + std::exp(-v))) + (1 - t) * std::log(1 - 1 / (1 + std::exp(-v))));
  }
  want /= static_cast<double>(x.size());
  auto f = [](auto a, auto b) { return kiln::binary_cross_entropy_with_logits(a, b); };
  kt::check_close(kiln::eager(f)(x, y), V{want}, kLossTol, "eager");
  kt::check_close(kiln::compile(f)(x, y), V{want}, kLossTol, "compiled");
  gc::check_gradients("bce_with_logits", f, 22, x, y);
  // At x = 0 the composed graph must still give (sigmoid(0) - y) / n = (0.5 - y) / n, and huge
  // logits must stay finite: ln(1 + e^-|x|) never overflows.
  auto step = [](auto a, auto b) { return kiln::grad(kiln::binary_cross_entropy_with_logits(a, b), a); };
  const Tensor<float> xs(Shape{4}, {0.f, 0.f, 200.f, -200.f});
  const Tensor<float> ys(Shape{4}, {1.f, 0.f, 1.f, 1.f});
  kt::check_close(std::get<0>(kiln::compile(step)(xs, ys)), V{-0.125, 0.125, 0, -0.25}, {1e-7, 1e-6}, "compiled");
  kt::check_close(std::get<0>(kiln::eager(step)(xs, ys)), V{-0.125, 0.125, 0, -0.25}, {1e-7, 1e-6}, "eager");
  kt::check_close(kiln::eager(f)(xs, ys), V{(2 * std::log(2.0) + 0 + 200) / 4}, {1e-5, 1e-6}, "value at extremes");
}
