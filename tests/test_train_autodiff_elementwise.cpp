// Autodiff of every elementwise function, with broadcasting: kiln::grad (compiled and eager)
// against central finite differences. Tolerances and their derivation: tests/grad_check.hpp.
#include "grad_check.hpp"

using kiln::Shape;
using kiln::Tensor;

#define KILN_UNARY_GRAD_CASE(label, expr, lo, hi, ...)                                               \
  SUBCASE(label) {                                                                                 \
    for (const Shape& s : shapes) {                                                                \
      auto x = gc::away_from(s, seed++, lo, hi, {__VA_ARGS__});                                    \
      gc::check_gradients(label, [](auto a) { return expr; }, seed++, x);                        \
    }                                                                                              \
  }

TEST_CASE("unary elementwise gradients match finite differences") {
  const Shape shapes[] = {{7}, {3, 5}, {2, 1, 4}};
  std::uint32_t seed = 100;
  KILN_UNARY_GRAD_CASE("neg", -a, -2.f, 2.f, 1e9f)
  KILN_UNARY_GRAD_CASE("abs", kiln::abs(a), -2.f, 2.f, 0.f)
  KILN_UNARY_GRAD_CASE("exp", kiln::exp(a), -2.f, 1.5f, 1e9f)
  KILN_UNARY_GRAD_CASE("log", kiln::log(a), 0.3f, 3.f, 1e9f)
  KILN_UNARY_GRAD_CASE("sqrt", kiln::sqrt(a), 0.3f, 3.f, 1e9f)
  KILN_UNARY_GRAD_CASE("rsqrt", kiln::rsqrt(a), 0.5f, 3.f, 1e9f)
  KILN_UNARY_GRAD_CASE("tanh", kiln::tanh(a), -2.f, 2.f, 1e9f)
  KILN_UNARY_GRAD_CASE("sigmoid", kiln::sigmoid(a), -3.f, 3.f, 1e9f)
  KILN_UNARY_GRAD_CASE("relu", kiln::relu(a), -2.f, 2.f, 0.f)
  KILN_UNARY_GRAD_CASE("relu6", kiln::relu6(a * 4.f), -2.f, 2.f, 0.f, 1.5f)
  KILN_UNARY_GRAD_CASE("leaky_relu", kiln::leaky_relu(a, 0.2f), -2.f, 2.f, 0.f)
  KILN_UNARY_GRAD_CASE("gelu (erf)", kiln::gelu(a), -3.f, 3.f, 1e9f)
  KILN_UNARY_GRAD_CASE("gelu (tanh)", kiln::gelu(a, kiln::GeluApprox::tanh), -3.f, 3.f, 1e9f)
  KILN_UNARY_GRAD_CASE("silu", kiln::silu(a), -3.f, 3.f, 1e9f)
  KILN_UNARY_GRAD_CASE("clamp", kiln::clamp(a, -0.5f, 1.f), -2.f, 2.f, -0.5f, 1.f)
  KILN_UNARY_GRAD_CASE("pow 3", kiln::pow(a, 3.f), -1.5f, 1.5f, 1e9f)
  KILN_UNARY_GRAD_CASE("pow 0.5", kiln::pow(a, 0.5f), 0.3f, 2.f, 1e9f)
  KILN_UNARY_GRAD_CASE("pow -2", kiln::pow(a, -2.f), 0.5f, 2.f, 1e9f)
  KILN_UNARY_GRAD_CASE("chain", kiln::tanh(kiln::exp(a * 0.5f) - 1.f) * kiln::sigmoid(a), -2.f, 2.f, 1e9f)
}

TEST_CASE("binary elementwise gradients, broadcast operands summed back") {
  // (a, b) shape pairs: equal, row/column broadcast, rank-extending, both sides broadcast.
  const std::pair<Shape, Shape> pairs[] = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 5}}, {{2, 3, 4}, {3, 1}}, {{4}, {2, 3, 4}}, {{1}, {2, 3}}};
  std::uint32_t seed = 500;
  for (const auto& [sa, sb] : pairs) {
    const auto a = gc::away_from(sa, seed++, -2.f, 2.f, {0.f});
    const auto b = gc::away_from(sb, seed++, 0.5f, 2.f, {1e9f});  // positive: div, and no ties with a
    gc::check_gradients("add", [](auto x, auto y) { return x + y; }, seed++, a, b);
    gc::check_gradients("sub", [](auto x, auto y) { return x - y; }, seed++, a, b);
    gc::check_gradients("mul", [](auto x, auto y) { return x * y; }, seed++, a, b);
    gc::check_gradients("div", [](auto x, auto y) { return x / y; }, seed++, a, b);
    gc::check_gradients("maximum", [](auto x, auto y) { return kiln::maximum(x, y - 1.f); }, seed++, a, b);
    gc::check_gradients("minimum", [](auto x, auto y) { return kiln::minimum(x, y - 1.f); }, seed++, a, b);
    gc::check_gradients("scalar on the left", [](auto x, auto y) { return 2.f / (y + 1.f) - x * 3.f; }, seed++, a, b);
  }
}

TEST_CASE("where: the gradient flows to the selected branch only; the condition gets none") {
  const Shape sc{3, 1}, sa{3, 4}, sb{4};
  std::uint32_t seed = 900;
  const auto c = gc::away_from(sc, seed++, -1.f, 1.f, {0.f});
  const auto a = kt::random_tensor(sa, seed++);
  const auto b = kt::random_tensor(sb, seed++);
  gc::check_gradients("where(c > 0, a*a, exp(b))",
                      [](auto cond, auto x, auto y) { return kiln::where(cond > 0.f, x * x, kiln::exp(y)); }, seed++, c, a, b);
  // The condition's own gradient is exactly zero (it is only compared), and finite differences agree.
}

TEST_CASE("ties: maximum/minimum split the gradient evenly, relu/relu6/clamp follow PyTorch at kinks") {
  // y = op(x, x0) at x == x0 exactly, loss = sum(y): each operand gets 1/2 per element.
  auto step = [](auto a, auto b) {
    return kiln::grad(kiln::sum_all(kiln::maximum(a, b)) + kiln::sum_all(kiln::minimum(a, b) * 3.f), a, b);
  };
  const Tensor<float> a(Shape{3}, {1.f, 2.f, -1.f});
  const Tensor<float> b(Shape{3}, {1.f, 0.f, 5.f});
  // maximum: tie -> 0.5 each; a wins at 1; b wins at 2. minimum (x3): tie -> 1.5 each; b at 1; a at 2.
  const std::vector<double> want_a = {0.5 + 1.5, 1.0, 3.0}, want_b = {0.5 + 1.5, 3.0, 1.0};
  for (int mode = 0; mode < 2; ++mode) {
    auto g = mode ? kiln::eager(step)(a, b) : kiln::compile(step)(a, b);
    kt::check_close(std::get<0>(g), want_a, {0, 0}, "d/da");
    kt::check_close(std::get<1>(g), want_b, {0, 0}, "d/db");
  }
  // Kinks: relu'(0) = 0; relu6 (hardtanh) is 0 at 0 and 6; clamp passes the gradient at its bounds;
  // abs'(0) = 0; leaky_relu at 0 takes the negative slope.
  auto kinks = [](auto x) {
    return kiln::grad(kiln::sum_all(kiln::relu(x)) + kiln::sum_all(kiln::relu6(x)) * 10.f +
                          kiln::sum_all(kiln::clamp(x, 0.f, 6.f)) * 100.f + kiln::sum_all(kiln::abs(x)) * 1000.f +
                          kiln::sum_all(kiln::leaky_relu(x, 0.5f)) * 10000.f,
                      x);
  };
  const Tensor<float> x(Shape{4}, {0.f, 6.f, 3.f, -1.f});
  const std::vector<double> want = {0 + 0 + 100 + 0 + 5000, 1 + 0 + 100 + 1000 + 10000, 1 + 10 + 100 + 1000 + 10000,
                                    0 + 0 + 0 - 1000 + 5000};
  kt::check_close(std::get<0>(kiln::compile(kinks)(x)), want, {0, 0}, "kinks, compiled");
  kt::check_close(std::get<0>(kiln::eager(kinks)(x)), want, {0, 0}, "kinks, eager");
}
