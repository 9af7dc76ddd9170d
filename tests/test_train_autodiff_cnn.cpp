// Autodiff of the CNN ops: conv2d (stride, per-side padding, dilation, groups, depthwise with a
// channel multiplier), max/avg pooling (both count_include_pad modes), global average pooling,
// pad, upsample_nearest and batch_norm: kiln::grad (compiled and eager) against central finite
// differences in double (tolerances: tests/grad_check.hpp, 2e-3 + 2e-3 |grad| with h = 1e-2);
// max pooling's tie rule on known values; a compiled CNN training step (conv -> relu -> max pool
// -> linear -> cross_entropy, Adam) equals the eager step and its loss decreases.
#include <algorithm>

#include "grad_check.hpp"

using kiln::Conv2dOptions;
using kiln::Padding2d;
using kiln::Pool2dOptions;
using kiln::Shape;
using kiln::Tensor;

namespace {

/// Distinct values 0.1 apart (a shuffled grid): no max-pool ties within +-h of the step.
Tensor<float> distinct(const Shape& s, std::uint32_t seed) {
  Tensor<float> x(s);
  std::vector<int> order(static_cast<std::size_t>(x.size()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::mt19937 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  for (kiln::index_t i = 0; i < x.size(); ++i)
    x[i] = 0.1f * static_cast<float>(order[static_cast<std::size_t>(i)]) - 0.05f * static_cast<float>(x.size());
  return x;
}

struct ConvCase {
  const char* what;
  Shape x, w;
  Conv2dOptions o;
};

}  // namespace

TEST_CASE("conv2d: input and weight gradients for strides, padding, dilation and groups") {
  const ConvCase cases[] = {
      {"3x3, padding 1", {2, 5, 6, 3}, {4, 3, 3, 3}, Conv2dOptions().with_padding(Padding2d::symmetric(1, 1))},
      {"3x2, stride 2, uneven padding", {1, 7, 6, 2}, {3, 3, 2, 2},
       Conv2dOptions().with_stride(2).with_padding(Padding2d::sides(0, 1, 1, 0))},
      {"stride (2, 3), rows the window never reaches", {2, 8, 7, 2}, {2, 2, 2, 2}, Conv2dOptions().with_stride(2, 3)},
      {"dilation 2, padding 2", {1, 6, 7, 2}, {3, 3, 3, 2},
       Conv2dOptions().with_dilation(2).with_padding(Padding2d::symmetric(2, 2))},
      {"stride 2 and dilation (2, 1), SAME", {1, 7, 5, 3}, {2, 3, 2, 3},
       Conv2dOptions().with_stride(2).with_dilation(2, 1).with_padding(Padding2d::same())},
      {"1x1, stride 2, padding larger than the span", {1, 5, 4, 2}, {3, 1, 1, 2},
       Conv2dOptions().with_stride(2).with_padding(Padding2d::sides(1, 2, 2, 1))},
      {"stride 3 over one row: the window reads only padding", {1, 1, 4, 2}, {2, 1, 1, 2},
       Conv2dOptions().with_stride(3).with_padding(Padding2d::sides(1, 1, 0, 0))},
      {"groups 2", {1, 5, 5, 4}, {6, 3, 3, 2}, Conv2dOptions().with_groups(2).with_padding(Padding2d::symmetric(1, 0))},
      {"depthwise", {2, 5, 4, 3}, {3, 3, 3, 1}, Conv2dOptions().with_groups(3).with_padding(Padding2d::same())},
      {"depthwise, multiplier 2, stride 2", {1, 7, 6, 3}, {6, 3, 3, 1},
       Conv2dOptions().with_groups(3).with_stride(2).with_padding(Padding2d::same())},
      {"9x1 kernel (flip over more than one concat)", {1, 10, 3, 1}, {2, 9, 1, 1},
       Conv2dOptions().with_padding(Padding2d::sides(4, 3, 0, 0))},
  };
  std::uint32_t seed = 100;
  for (const ConvCase& c : cases) {
    const auto x = kt::random_tensor(c.x, seed++, -1.f, 1.f);
    const auto w = kt::random_tensor(c.w, seed++, -1.f, 1.f);
    const Conv2dOptions o = c.o;
    gc::check_gradients(std::string("conv2d ") + c.what, [o](auto a, auto k) { return kiln::conv2d(a, k, o); }, seed++,
                        x, w);
  }
  // With a bias, and a non-linearity in front so the input gradient is not constant.
  const auto x = kt::random_tensor(Shape{1, 4, 5, 2}, seed++, -1.f, 1.f);
  const auto w = kt::random_tensor(Shape{3, 2, 2, 2}, seed++, -1.f, 1.f);
  const auto bias = kt::random_tensor(Shape{3}, seed++, -1.f, 1.f);
  gc::check_gradients("conv2d with bias", [](auto a, auto k, auto c) { return kiln::conv2d(kiln::tanh(a), k, c); },
                      seed++, x, w, bias);
}

TEST_CASE("max_pool2d and avg_pool2d: overlapping windows, padding, both count_include_pad modes") {
  const std::pair<const char*, Pool2dOptions> cases[] = {
      {"2x2", Pool2dOptions(2)},
      {"3x3 stride 2 padding 1", Pool2dOptions(3).with_stride(2).with_padding(Padding2d::symmetric(1, 1))},
      {"3x2 stride (1, 2) uneven padding", Pool2dOptions(3, 2).with_stride(1, 2).with_padding(Padding2d::sides(1, 0, 0, 1))},
      {"2x3 stride 3, leftover rows", Pool2dOptions(2, 3).with_stride(3)},
  };
  std::uint32_t seed = 200;
  for (const auto& [what, o] : cases) {
    const auto x = distinct(Shape{2, 7, 6, 2}, seed++);
    gc::check_gradients(std::string("max_pool2d ") + what, [o = o](auto a) { return kiln::max_pool2d(a, o); }, seed++, x);
    for (bool include : {true, false}) {
      const Pool2dOptions ao = o.with_count_include_pad(include);
      gc::check_gradients(std::string("avg_pool2d ") + what + (include ? " count_include_pad" : " valid taps"),
                          [ao](auto a) { return kiln::avg_pool2d(a * a, ao); }, seed++, x);
    }
  }
}

TEST_CASE("max_pool2d: a tie sends the window's gradient to its first maximum (row-major)") {
  // One 1x4x4x1 input, 2x2 windows with stride 2; top-left window: 5 twice (positions 1 and 4
  // in row-major order of the input row pairs), top-right: all four tie, bottom row: no tie.
  const Tensor<float> x(Shape{1, 4, 4, 1}, {1, 5, 2, 2,  //
                                            5, 0, 2, 2,  //
                                            3, 1, 0, 4,  //
                                            1, 2, 9, 4});
  auto step = [](auto a) {
    const Tensor<float> w(Shape{1, 2, 2, 1}, {1.f, 2.f, 3.f, 4.f});
    return kiln::grad(kiln::sum_all(kiln::max_pool2d(a, 2) * w), a);
  };
  const std::vector<double> want = {0, 1, 2, 0,  //
                                    0, 0, 0, 0,  //
                                    3, 0, 0, 0,  //
                                    0, 0, 4, 0};
  kt::check_close(std::get<0>(kiln::compile(step)(x)), want, {0, 0}, "compiled");
  kt::check_close(std::get<0>(kiln::eager(step)(x)), want, {0, 0}, "eager");
  // Overlapping windows (3x3, stride 1) sharing one maximum add their gradients on it.
  auto overlap = [](auto a) { return kiln::grad(kiln::sum_all(kiln::max_pool2d(a, Pool2dOptions(3).with_stride(1))), a); };
  Tensor<float> y(Shape{1, 4, 4, 1});
  y[5] = 1.f;  // (1, 1) is in all four 3x3 windows
  std::vector<double> want_y(16, 0.0);
  want_y[5] = 4;
  kt::check_close(std::get<0>(kiln::compile(overlap)(y)), want_y, {0, 0}, "overlap, compiled");
  kt::check_close(std::get<0>(kiln::eager(overlap)(y)), want_y, {0, 0}, "overlap, eager");
}

TEST_CASE("global_avg_pool, pad, upsample_nearest, batch_norm") {
  std::uint32_t seed = 300;
  const auto x = kt::random_tensor(Shape{2, 3, 5, 3}, seed++, -1.f, 1.f);
  gc::check_gradients("global_avg_pool", [](auto a) { return kiln::global_avg_pool(a * a); }, seed++, x);
  gc::check_gradients("global_avg_pool, no keepdim", [](auto a) { return kiln::global_avg_pool(kiln::exp(a), false); },
                      seed++, x);
  gc::check_gradients("pad", [](auto a) { return kiln::tanh(kiln::pad(a, Padding2d::sides(1, 0, 2, 3), 0.5f)); }, seed++,
                      x);
  gc::check_gradients("upsample_nearest 2x3", [](auto a) { return kiln::upsample_nearest(a * a, 2, 3); }, seed++, x);
  const auto gamma = kt::random_tensor(Shape{3}, seed++, 0.5f, 1.5f);
  const auto beta = kt::random_tensor(Shape{3}, seed++, -1.f, 1.f);
  const auto mean = kt::random_tensor(Shape{3}, seed++, -0.5f, 0.5f);
  const auto var = kt::random_tensor(Shape{3}, seed++, 0.5f, 2.f);
  gc::check_gradients("batch_norm (every operand)",
                      [](auto a, auto g, auto b, auto m, auto v) { return kiln::batch_norm(a, g, b, m, v); }, seed++, x,
                      gamma, beta, mean, var);
  // Training-mode batch norm written with reductions: batch statistics over N, H, W.
  gc::check_gradients("batch_norm with batch statistics",
                      [](auto a, auto g, auto b) {
                        auto flat = kiln::reshape(a, Shape{-1, 3});
                        auto mu = kiln::mean(flat, 0, true);
                        auto centred = flat - mu;
                        auto var_b = kiln::mean(centred * centred, 0, true);
                        return kiln::reshape(centred * kiln::rsqrt(var_b + 1e-5f) * g + b, Shape{2, 3, 5, 3});
                      },
                      seed++, x, gamma, beta);
}

TEST_CASE("errors: a kernel too tall for the unrolled backward is named with its shape") {
  const Tensor<float> x(Shape{1, 70, 1, 1});
  const Tensor<float> w(Shape{1, 65, 1, 1});
  auto step = [](auto a, auto k) { return std::get<0>(kiln::grad(kiln::sum_all(kiln::conv2d(a, k)), a)); };
  const std::string msg = kt::error_of([&] { (void)kiln::compile(step)(x, w); });
  INFO(msg);
  CHECK(msg.find("autodiff: conv2d kernel 65x1") != std::string::npos);
  CHECK(msg.find("input [1, 70, 1, 1]") != std::string::npos);
}

namespace {

constexpr kiln::index_t kBatch = 6, kSide = 7, kClasses = 3;
constexpr int kSteps = 5;

struct Cnn {
  kiln::Parameter conv_w, conv_b, fc_w, fc_b;
};
Cnn make_cnn() {
  return Cnn{kiln::Parameter(kt::random_tensor(Shape{4, 3, 3, 2}, 31, -0.5f, 0.5f)),
             kiln::Parameter(kt::random_tensor(Shape{4}, 32, -0.1f, 0.1f)),
             kiln::Parameter(kt::random_tensor(Shape{kClasses, 4 * 3 * 3}, 33, -0.3f, 0.3f)),
             kiln::Parameter(kt::random_tensor(Shape{kClasses}, 34, -0.1f, 0.1f))};
}

auto cnn_step(Cnn& net, kiln::Adam& opt) {
  return [&net, &opt](auto x, auto labels) {
    const auto o = Conv2dOptions().with_padding(Padding2d::symmetric(1, 1));
    auto h = kiln::max_pool2d(kiln::relu(kiln::conv2d(x, net.conv_w, net.conv_b, o)), 2);  // [N, 3, 3, 4]
    auto logits = kiln::linear(kiln::flatten(h, 1), net.fc_w, net.fc_b);
    auto loss = kiln::cross_entropy(logits, labels);
    opt.step(kiln::grad(loss, net.conv_w, net.conv_b, net.fc_w, net.fc_b));
    return loss;
  };
}

}  // namespace

TEST_CASE("a CNN training step: compiled == eager, and the loss decreases") {
  const auto x = kt::random_tensor(Shape{kBatch, kSide, kSide, 2}, 40, -1.f, 1.f);
  Tensor<float> labels(Shape{kBatch, kClasses});  // one-hot targets
  for (kiln::index_t i = 0; i < kBatch; ++i) labels[i * kClasses + i % kClasses] = 1.f;
  Cnn cn = make_cnn(), en = make_cnn();
  kiln::AdamOptions ao;
  ao.lr = 0.05f;
  kiln::Adam copt({&cn.conv_w, &cn.conv_b, &cn.fc_w, &cn.fc_b}, ao);
  kiln::Adam eopt({&en.conv_w, &en.conv_b, &en.fc_w, &en.fc_b}, ao);
  auto compiled = kiln::compile(cnn_step(cn, copt));
  auto eager = kiln::eager(cnn_step(en, eopt));
  std::vector<float> losses;
  for (int s = 0; s < kSteps; ++s) {
    const Tensor<float> lc = compiled(x, labels);
    const Tensor<float> le = eager(x, labels);
    REQUIRE(lc.data() != nullptr);
    REQUIRE(le.data() != nullptr);
    CHECK(kt::close(lc[0], le[0], {1e-5, 1e-4}));
    losses.push_back(lc[0]);
  }
  CHECK(compiled.stats().traces == 1);
  INFO("losses " << losses.front() << " -> " << losses.back());
  CHECK(losses.back() < 0.7f * losses.front());
  kt::check_close(cn.conv_w.value(), en.conv_w.value(), {1e-4, 1e-3}, "conv weight, compiled vs eager");
  kt::check_close(cn.fc_w.value(), en.fc_w.value(), {1e-4, 1e-3}, "fc weight, compiled vs eager");
}
