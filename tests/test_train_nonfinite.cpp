// A training step that meets NaN or Inf: the optimiser's update is gated in the graph, so no
// parameter and no optimiser state changes (checked bit for bit), and the call reports
// Errc::non_finite naming the op where the first non-finite value appeared — compiled and eager
// alike. NonFinite::skip skips silently and counts; NonFinite::apply (torch.optim) does not check;
// under GradScaler's gate an overflowing step is skipped without an error. The diagnosis is
// checked against cases whose origin is known: NaN in an input, log of 0 in the loss, exp
// overflow in the forward.
#include <cmath>
#include <limits>
#include <string>

#include <kiln/train/grad_scaler.hpp>

#include "test_util.hpp"

using kiln::Shape;
using kiln::Tensor;

namespace {

struct Net {
  kiln::Parameter w1{kt::random_tensor(Shape{5, 3}, 21, -0.7f, 0.7f)};
  kiln::Parameter b1{kt::random_tensor(Shape{5}, 22, -0.2f, 0.2f)};
  kiln::Parameter w2{kt::random_tensor(Shape{1, 5}, 23, -0.7f, 0.7f)};
  kiln::Parameter b2{kt::random_tensor(Shape{1}, 24, -0.2f, 0.2f)};
  std::vector<Tensor<float>> snapshot() const { return {w1.value(), b1.value(), w2.value(), b2.value()}; }
};

void check_unchanged(const Net& n, const std::vector<Tensor<float>>& before) {
  const kiln::Parameter* now[] = {&n.w1, &n.b1, &n.w2, &n.b2};
  for (std::size_t k = 0; k < before.size(); ++k)
    for (kiln::index_t i = 0; i < before[k].size(); ++i) REQUIRE(now[k]->value()[i] == before[k][i]);
}

enum class Loss { mse, log_of_relu, exp_overflow };

template <class Opt>
auto training_step(Net& net, Opt& opt, Loss kind) {
  return [&net, &opt, kind](auto x, auto y) {
    auto h = kiln::linear(x, net.w1, net.b1);
    if (kind == Loss::exp_overflow) h = kiln::exp(h * 200.f);  // exp(>88) is +inf in f32
    auto pred = kiln::linear(kiln::tanh(h), net.w2, net.b2);
    auto loss = kind == Loss::log_of_relu ? kiln::mean_all(kiln::log(kiln::relu(pred - y)))  // log(0) = -inf
                                          : kiln::mse_loss(pred, y);
    opt.step(kiln::grad(loss, net.w1, net.b1, net.w2, net.b2));
    return loss;
  };
}

Tensor<float> inputs() { return kt::random_tensor(Shape{8, 3}, 5, -1.f, 1.f); }
Tensor<float> targets() { return kt::random_tensor(Shape{8, 1}, 6, -1.f, 1.f); }

/// Runs `step(x, y)` expecting a non_finite error; returns its message.
template <class Step>
std::string expect_nonfinite(Step& step, const Tensor<float>& x, const Tensor<float>& y) {
  try {
    (void)step(x, y);
  } catch (const kiln::Error& e) {
    CHECK(e.code() == kiln::Errc::non_finite);
    return e.what();
  }
  FAIL("the step did not report a non-finite value");
  return {};
}

}  // namespace

TEST_CASE("NaN in an input: the step is skipped (compiled and eager), the error names the input") {
  for (const bool compiled_path : {true, false}) {
    INFO((compiled_path ? "compiled" : "eager"));
    Net net;
    kiln::Adam opt({&net.w1, &net.b1, &net.w2, &net.b2}, {0.05f});
    auto fn = training_step(net, opt, Loss::mse);
    auto compiled = kiln::compile(fn);
    auto eager = kiln::eager(fn);
    auto run = [&](const Tensor<float>& x, const Tensor<float>& y) {
      return compiled_path ? compiled(x, y) : eager(x, y);
    };
    const Tensor<float> x = inputs(), y = targets();
    (void)run(x, y);  // one good step
    CHECK(opt.steps() == 1.f);
    const auto before = net.snapshot();
    Tensor<float> bad = x;
    bad[7] = std::numeric_limits<float>::quiet_NaN();
    const std::string msg = expect_nonfinite(run, bad, y);
    INFO(msg);
    CHECK(msg.find("parameters unchanged") != std::string::npos);
    CHECK(msg.find("input 0 [8, 3] holds 1 NaN") != std::string::npos);
    check_unchanged(net, before);
    CHECK(opt.steps() == 1.f);  // the step counter (Adam's bias correction) did not move either
    CHECK(opt.skipped_steps() == 1);
    // Training goes on from the unchanged state: the next good step equals a fresh Adam's second step.
    const Tensor<float> l = run(x, y);
    CHECK(std::isfinite(l[0]));
    CHECK(opt.steps() == 2.f);
    Net ref;
    kiln::Adam ref_opt({&ref.w1, &ref.b1, &ref.w2, &ref.b2}, {0.05f});
    auto ref_step = kiln::eager(training_step(ref, ref_opt, Loss::mse));
    (void)ref_step(x, y);
    (void)ref_step(x, y);
    kt::check_close(net.w1.value(), ref.w1.value(), {2e-5, 2e-5}, "after a skipped step");
  }
}

TEST_CASE("log of 0 in the loss: the error names the log node and its input") {
  Net net;
  kiln::SGD opt({&net.w1, &net.b1, &net.w2, &net.b2}, {0.1f, 0.9f});
  auto step = kiln::compile(training_step(net, opt, Loss::log_of_relu));
  Tensor<float> y = targets();
  for (kiln::index_t i = 0; i < y.size(); ++i) y[i] = 100.f;  // pred - y < 0: relu gives 0, log(0) = -inf
  const auto before = net.snapshot();
  const std::string msg = expect_nonfinite(step, inputs(), y);
  INFO(msg);
  CHECK(msg.find("log [8, 1] gives 8 Inf from finite inputs") != std::string::npos);
  CHECK(msg.find("relu [8, 1]") != std::string::npos);
  check_unchanged(net, before);
  CHECK(opt.steps() == 0.f);
  CHECK(opt.skipped_steps() == 1);
}

TEST_CASE("exp overflow in the forward is found before the NaN it causes downstream") {
  Net net;
  kiln::SGD opt({&net.w1, &net.b1, &net.w2, &net.b2}, {0.1f});
  auto step = kiln::eager(training_step(net, opt, Loss::exp_overflow));
  Tensor<float> x = inputs();
  for (kiln::index_t i = 0; i < x.size(); ++i) x[i] = 3.f;  // |h| * 200 > 88 somewhere
  const auto before = net.snapshot();
  const std::string msg = expect_nonfinite(step, x, targets());
  INFO(msg);
  CHECK(msg.find(" exp [8, 5] gives ") != std::string::npos);
  check_unchanged(net, before);
}

TEST_CASE("NonFinite::skip counts silently; NonFinite::apply lets the NaN through as torch.optim does") {
  Tensor<float> bad = inputs();
  bad[0] = std::numeric_limits<float>::infinity();
  {
    Net net;
    kiln::SGDOptions o;
    o.lr = 0.1f;
    o.on_nonfinite = kiln::NonFinite::skip;
    kiln::SGD opt({&net.w1, &net.b1, &net.w2, &net.b2}, o);
    auto step = kiln::compile(training_step(net, opt, Loss::mse));
    const auto before = net.snapshot();
    for (int i = 0; i < 3; ++i) (void)step(bad, targets());
    check_unchanged(net, before);
    CHECK(opt.skipped_steps() == 3);
    CHECK(opt.steps() == 0.f);
    (void)step(inputs(), targets());
    CHECK(opt.steps() == 1.f);
    CHECK(opt.skipped_steps() == 3);
  }
  {
    Net net;
    kiln::AdamOptions o;
    o.on_nonfinite = kiln::NonFinite::apply;
    kiln::Adam opt({&net.w1, &net.b1, &net.w2, &net.b2}, o);
    auto step = kiln::compile(training_step(net, opt, Loss::mse));
    (void)step(bad, targets());
    CHECK(std::isnan(net.w1[0]));  // the row of w1 that met the inf input
    CHECK(opt.skipped_steps() == 0);
  }
}

TEST_CASE("under GradScaler's gate an overflowing step is skipped without an error") {
  kiln::Parameter w(Shape{4});
  for (int i = 0; i < 4; ++i) w[i] = 1.f;
  kiln::GradScaler scaler({65536.f, 2.f, 0.5f, 2000, kiln::GradStorage::f16});
  kiln::SGD opt({&w}, {0.5f});
  auto step = kiln::compile([&](auto xs) {
    auto loss = kiln::sum(w * xs, 0);
    auto [grads, finite] = scaler.grad(loss, w);
    {
      kiln::UpdateGate gate(finite);
      opt.step(grads);
    }
    return finite;
  });
  Tensor<float> x(Shape{4});
  for (int i = 0; i < 4; ++i) x[i] = 10.f;  // 10 x 65536 overflows FP16
  const auto finite = step(x);  // no throw
  CHECK(!finite[0]);
  CHECK(w[0] == 1.f);
}
