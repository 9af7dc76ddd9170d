// Autodiff of reductions, softmax, matmul/linear, views, pad, expand and concat: kiln::grad
// (compiled and eager) against central finite differences. Tolerances: tests/grad_check.hpp.
#include <algorithm>

#include "grad_check.hpp"

using kiln::Shape;
using kiln::Tensor;

TEST_CASE("sum, mean, max, min over every axis, with and without keepdim") {
  const Shape shapes[] = {{6}, {3, 5}, {2, 3, 4}};
  std::uint32_t seed = 1000;
  for (const Shape& s : shapes)
    for (int axis = 0; axis < s.rank(); ++axis)
      for (bool keepdim : {false, true}) {
        // Distinct values at least 0.1 apart (a permutation of a grid): no ties within +-h.
        Tensor<float> x = kt::random_tensor(s, seed++);
        std::vector<int> order(static_cast<std::size_t>(x.size()));
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
        std::mt19937 rng(seed++);
        std::shuffle(order.begin(), order.end(), rng);
        for (kiln::index_t i = 0; i < x.size(); ++i) x[i] = -1.5f + 0.1f * static_cast<float>(order[static_cast<std::size_t>(i)]);
        const std::string where = " axis " + std::to_string(axis) + (keepdim ? " keepdim" : "");
        gc::check_gradients("sum" + where, [axis, keepdim](auto a) { return kiln::sum(a * a, axis, keepdim); }, seed++, x);
        gc::check_gradients("mean" + where, [axis, keepdim](auto a) { return kiln::mean(kiln::exp(a), axis, keepdim); },
                            seed++, x);
        gc::check_gradients("max" + where, [axis, keepdim](auto a) { return kiln::max(a, axis, keepdim); }, seed++, x);
        gc::check_gradients("min" + where, [axis, keepdim](auto a) { return kiln::min(a * 2.f, axis, keepdim); }, seed++,
                            x);
      }
}

TEST_CASE("max/min: tied elements share the gradient evenly (torch.amax)") {
  auto step = [](auto x) { return kiln::grad(kiln::sum_all(kiln::max(x, 1) * 6.f + kiln::min(x, 1)), x); };
  const Tensor<float> x(Shape{2, 3}, {1.f, 4.f, 4.f, 2.f, 2.f, 2.f});
  // row 0: max 4 twice -> 3 each; min 1 once -> 1. row 1: all tie: max 6/3 = 2 each, min 1/3 each.
  const std::vector<double> want = {1, 3, 3, 2 + 1.0 / 3, 2 + 1.0 / 3, 2 + 1.0 / 3};
  kt::check_close(std::get<0>(kiln::compile(step)(x)), want, {1e-6, 1e-6}, "compiled");
  kt::check_close(std::get<0>(kiln::eager(step)(x)), want, {1e-6, 1e-6}, "eager");
}

TEST_CASE("softmax and log_softmax over every axis") {
  const Shape shapes[] = {{5}, {3, 4}, {2, 3, 4}};
  std::uint32_t seed = 2000;
  for (const Shape& s : shapes)
    for (int axis = 0; axis < s.rank(); ++axis) {
      const auto x = kt::random_tensor(s, seed++, -3.f, 3.f);
      gc::check_gradients("softmax axis " + std::to_string(axis), [axis](auto a) { return kiln::softmax(a, axis); },
                          seed++, x);
      gc::check_gradients("log_softmax axis " + std::to_string(axis),
                          [axis](auto a) { return kiln::log_softmax(a, axis); }, seed++, x);
    }
}

TEST_CASE("matmul: 2-D, batched, broadcast batch, vector operand; linear") {
  std::uint32_t seed = 3000;
  const std::pair<Shape, Shape> pairs[] = {
      {{3, 4}, {4, 5}},       {{2, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {4, 5}},   {{3, 4}, {2, 4, 2}},
      {{2, 1, 3, 4}, {3, 4, 2}}, {{4}, {4, 3}},       {{4}, {2, 4, 3}},      {{1, 3}, {3, 1}}};
  for (const auto& [sa, sb] : pairs) {
    const auto a = kt::random_tensor(sa, seed++, -1.f, 1.f);
    const auto b = kt::random_tensor(sb, seed++, -1.f, 1.f);
    gc::check_gradients("matmul", [](auto x, auto y) { return kiln::matmul(x, y); }, seed++, a, b);
  }
  const std::pair<Shape, Shape> lin[] = {{{5, 4}, {3, 4}}, {{2, 5, 4}, {3, 4}}, {{4}, {3, 4}}, {{1, 4}, {1, 4}}};
  for (const auto& [sx, sw] : lin) {
    const auto x = kt::random_tensor(sx, seed++, -1.f, 1.f);
    const auto w = kt::random_tensor(sw, seed++, -1.f, 1.f);
    const auto bias = kt::random_tensor(Shape{sw[0]}, seed++, -1.f, 1.f);
    gc::check_gradients("linear", [](auto p, auto q, auto r) { return kiln::linear(p, q, r); }, seed++, x, w, bias);
  }
  // The same operand on both sides, once through a transposed view.
  const auto sq = kt::random_tensor(Shape{3, 2}, seed++, -1.f, 1.f);
  gc::check_gradients("x @ x^T", [](auto p) { return kiln::matmul(p, kiln::transpose(p)); }, seed++, sq);
}

TEST_CASE("views and copies: reshape, flatten, permute, transpose, slice (steps), expand, pad, concat") {
  std::uint32_t seed = 4000;
  const auto x = kt::random_tensor(Shape{2, 3, 4}, seed++);
  const auto y = kt::random_tensor(Shape{2, 2, 4}, seed++);
  gc::check_gradients("reshape", [](auto a) { return kiln::reshape(a * a, Shape{4, -1}); }, seed++, x);
  gc::check_gradients("flatten", [](auto a) { return kiln::flatten(kiln::exp(a), 1); }, seed++, x);
  gc::check_gradients("permute", [](auto a) { return kiln::permute(a, {2, 0, 1}) * 3.f; }, seed++, x);
  gc::check_gradients("transpose then reshape (a copy)",
                      [](auto a) { return kiln::reshape(kiln::transpose(a, 0, 2), Shape{-1}); }, seed++, x);
  gc::check_gradients("slice", [](auto a) { return kiln::slice(a, 1, 1, 3); }, seed++, x);
  gc::check_gradients("slice with step", [](auto a) { return kiln::slice(a, 2, 0, 4, 2) * kiln::slice(a, 2, 1, 4, 2); },
                      seed++, x);
  gc::check_gradients("slice, negative bounds", [](auto a) { return kiln::tanh(kiln::slice(a, -1, -3, -1)); }, seed++,
                      x);
  gc::check_gradients("expand", [](auto a) { return kiln::expand(kiln::sum(a, 1, true), Shape{3, 2, 3, 4}); },
                      seed++, x);
  gc::check_gradients("pad", [](auto a) { return kiln::exp(kiln::pad(a, 1, 2, 1)); }, seed++, x);
  gc::check_gradients("concat", [](auto a, auto b) { return kiln::concat({a * 2.f, b, a}, 1); }, seed++, x, y);
}

TEST_CASE("pad: forward values, eager and compiled") {
  auto f = [](auto a) { return kiln::pad(a, 0, 1, 2) + 1.f; };
  const Tensor<float> x(Shape{2, 2}, {1.f, 2.f, 3.f, 4.f});
  const std::vector<double> want = {1, 1, 2, 3, 4, 5, 1, 1, 1, 1};
  kt::check_close(kiln::compile(f)(x), want, {0, 0}, "compiled");
  kt::check_close(kiln::eager(f)(x), want, {0, 0}, "eager");
  // The backward of a stepped slice pads with gaps: d/dx sum(slice(x, 0, 0, 5, 2) * [1, 2, 3]).
  auto step = [](auto a) {
    const Tensor<float> w(Shape{3}, {1.f, 2.f, 3.f});
    return kiln::grad(kiln::sum_all(kiln::slice(a, 0, 0, 5, 2) * w), a);
  };
  const Tensor<float> v(Shape{6});
  const std::vector<double> gw = {1, 0, 2, 0, 3, 0};
  kt::check_close(std::get<0>(kiln::compile(step)(v)), gw, {0, 0}, "slice backward, compiled");
  kt::check_close(std::get<0>(kiln::eager(step)(v)), gw, {0, 0}, "slice backward, eager");
}
