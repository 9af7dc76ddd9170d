// Compiled training steps: N compiled steps == N eager steps == a naive double-precision loop
// (hand-derived MLP gradients + torch.optim's update rules written out below), for SGD (plain,
// momentum + dampening + weight decay, nesterov), Adam (with L2 weight decay) and AdamW; the
// loss decreases. Tolerances: compiled vs eager 2e-5 (the same f32 math, differently fused and
// summed); vs the double loop 1e-4 absolute + 1e-3 relative after the steps (f32 rounding of
// ~1e-7 per op, amplified by Adam's m / sqrt(v) where a gradient component is small).
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "test_util.hpp"

using kiln::Shape;
using kiln::Tensor;
using V = std::vector<double>;

namespace {

constexpr kiln::index_t kN = 24, kIn = 3, kHid = 6;
constexpr int kSteps = 6;

struct Net {
  kiln::Parameter w1, b1, w2, b2;
};
Net make_net() {
  return Net{kiln::Parameter(kt::random_tensor(Shape{kHid, kIn}, 11, -0.8f, 0.8f)),
             kiln::Parameter(kt::random_tensor(Shape{kHid}, 12, -0.3f, 0.3f)),
             kiln::Parameter(kt::random_tensor(Shape{1, kHid}, 13, -0.8f, 0.8f)),
             kiln::Parameter(kt::random_tensor(Shape{1}, 14, -0.3f, 0.3f))};
}

// dL/d{w1, b1, w2, b2} of mse(linear(tanh(linear(x, w1, b1)), w2, b2), y), by hand, in double.
std::vector<V> grads_by_hand(const Tensor<float>& x, const Tensor<float>& y, const std::vector<V>& p, double* loss) {
  const V &w1 = p[0], &b1 = p[1], &w2 = p[2], &b2 = p[3];
  std::vector<V> g = {V(w1.size()), V(b1.size()), V(w2.size()), V(b2.size())};
  *loss = 0;
  for (kiln::index_t i = 0; i < kN; ++i) {
    double h[kHid], o = b2[0];
    for (kiln::index_t j = 0; j < kHid; ++j) {
      double z = b1[j];
      for (kiln::index_t k = 0; k < kIn; ++k) z += double(x[i * kIn + k]) * w1[j * kIn + k];
      h[j] = std::tanh(z);
      o += h[j] * w2[j];
    }
    *loss += (o - y[i]) * (o - y[i]) / kN;
    const double d_o = 2 * (o - y[i]) / kN;
    g[3][0] += d_o;
    for (kiln::index_t j = 0; j < kHid; ++j) {
      g[2][j] += d_o * h[j];
      const double dz = d_o * w2[j] * (1 - h[j] * h[j]);
      g[1][j] += dz;
      for (kiln::index_t k = 0; k < kIn; ++k) g[0][j * kIn + k] += dz * x[i * kIn + k];
    }
  }
  return g;
}

struct Rule {  // torch.optim's rules, written out per element in double
  enum Kind { sgd, adam, adamw } kind;
  double lr, momentum = 0, dampening = 0, wd = 0;
  bool nesterov = false;
  double b1 = 0.9, b2 = 0.999, eps = 1e-8;
};

std::vector<V> reference_training(const Rule& r, const Tensor<float>& x, const Tensor<float>& y, const Net& init,
                                  std::vector<double>* losses) {
  std::vector<V> p;
  for (const kiln::Parameter* q : {&init.w1, &init.b1, &init.w2, &init.b2}) p.emplace_back(q->value().begin(), q->value().end());
  std::vector<V> s1 = p, s2 = p;
  for (auto& v : s1) std::fill(v.begin(), v.end(), 0.0);
  for (auto& v : s2) std::fill(v.begin(), v.end(), 0.0);
  for (int t = 1; t <= kSteps; ++t) {
    double loss = 0;
    const auto g = grads_by_hand(x, y, p, &loss);
    losses->push_back(loss);
    for (std::size_t k = 0; k < p.size(); ++k)
      for (std::size_t e = 0; e < p[k].size(); ++e) {
        double gi = g[k][e];
        double& w = p[k][e];
        if (r.kind == Rule::sgd) {
          gi += r.wd * w;
          if (r.momentum != 0) {
            double& buf = s1[k][e];
            buf = t == 1 ? gi : r.momentum * buf + (1 - r.dampening) * gi;
            gi = r.nesterov ? gi + r.momentum * buf : buf;
          }
          w -= r.lr * gi;
        } else {
          if (r.kind == Rule::adam) gi += r.wd * w;
          else w *= 1 - r.lr * r.wd;
          double& m = s1[k][e];
          double& v = s2[k][e];
          m = r.b1 * m + (1 - r.b1) * gi;
          v = r.b2 * v + (1 - r.b2) * gi * gi;
          const double bc1 = 1 - std::pow(r.b1, t), bc2 = 1 - std::pow(r.b2, t);
          w -= r.lr / bc1 * m / (std::sqrt(v) / std::sqrt(bc2) + r.eps);
        }
      }
  }
  return p;
}

template <class Opt>
auto training_step(Net& net, Opt& opt) {
  return [&net, &opt](auto x, auto y) {
    auto pred = kiln::linear(kiln::tanh(kiln::linear(x, net.w1, net.b1)), net.w2, net.b2);
    auto loss = kiln::mse_loss(pred, y);
    opt.step(kiln::grad(loss, net.w1, net.b1, net.w2, net.b2));
    return loss;
  };
}

template <class MakeOpt>
void check_training(const char* name, const Rule& rule, MakeOpt make_opt) {
  INFO(name);
  const auto x = kt::random_tensor(Shape{kN, kIn}, 1);
  Tensor<float> y(Shape{kN, 1});
  for (kiln::index_t i = 0; i < kN; ++i) y[i] = std::sin(x[i * kIn]) + 0.5f * x[i * kIn + 1] * x[i * kIn + 2];

  Net compiled_net = make_net(), eager_net = make_net();
  auto compiled_opt = make_opt(compiled_net);
  auto eager_opt = make_opt(eager_net);
  auto compiled = kiln::compile(training_step(compiled_net, compiled_opt));
  auto eager = kiln::eager(training_step(eager_net, eager_opt));
  std::vector<double> ref_losses;
  const auto want = reference_training(rule, x, y, make_net(), &ref_losses);
  std::vector<float> losses;
  for (int s = 0; s < kSteps; ++s) {
    const Tensor<float> lc = compiled(x, y);
    const Tensor<float> le = eager(x, y);
    REQUIRE(lc.data() != nullptr);
    REQUIRE(le.data() != nullptr);
    CHECK(kt::close(lc[0], le[0], {2e-5, 2e-5}));
    CHECK(kt::close(lc[0], ref_losses[static_cast<std::size_t>(s)], {1e-5, 1e-4}));
    losses.push_back(lc[0]);
  }
  CHECK(compiled.stats().traces == 1);  // one plan, reused by every step
  // Every parameter and state tensor is written back; the planner writes most of them in place.
  const kiln::Stats st = compiled.stats();
  INFO("updates " << st.updates << ", in place " << st.aliased_updates);
  CHECK(st.updates >= 5);
  CHECK(st.aliased_updates >= st.updates / 2);
  if (std::getenv("KILN_PRINT_TRAIN_PLAN")) compiled.print_graph(std::cout);
  CHECK(compiled_opt.steps() == kSteps);
  CHECK(losses.back() < losses.front());
  const kiln::Parameter* cp[] = {&compiled_net.w1, &compiled_net.b1, &compiled_net.w2, &compiled_net.b2};
  const kiln::Parameter* ep[] = {&eager_net.w1, &eager_net.b1, &eager_net.w2, &eager_net.b2};
  for (std::size_t k = 0; k < 4; ++k) {
    kt::check_close(cp[k]->value(), want[k], {1e-4, 1e-3}, "compiled vs the double loop, parameter " + std::to_string(k));
    kt::check_close(ep[k]->value(), want[k], {1e-4, 1e-3}, "eager vs the double loop, parameter " + std::to_string(k));
    kt::check_close(cp[k]->value(), ep[k]->value(), {2e-5, 2e-5}, "compiled vs eager, parameter " + std::to_string(k));
  }
}

}  // namespace

TEST_CASE("SGD: plain, momentum with dampening and weight decay, nesterov") {
  check_training("sgd", Rule{Rule::sgd, 0.1}, [](Net& n) {
    return kiln::SGD({&n.w1, &n.b1, &n.w2, &n.b2}, {0.1f});
  });
  Rule mom{Rule::sgd, 0.05};
  mom.momentum = 0.9;
  mom.dampening = 0.3;
  mom.wd = 0.01;
  check_training("sgd momentum", mom, [](Net& n) {
    kiln::SGDOptions o;
    o.lr = 0.05f;
    o.momentum = 0.9f;
    o.dampening = 0.3f;
    o.weight_decay = 0.01f;
    return kiln::SGD({&n.w1, &n.b1, &n.w2, &n.b2}, o);
  });
  Rule nes{Rule::sgd, 0.05};
  nes.momentum = 0.8;
  nes.nesterov = true;
  check_training("sgd nesterov", nes, [](Net& n) {
    kiln::SGDOptions o;
    o.lr = 0.05f;
    o.momentum = 0.8f;
    o.nesterov = true;
    return kiln::SGD({&n.w1, &n.b1, &n.w2, &n.b2}, o);
  });
}

TEST_CASE("Adam (L2 weight decay) and AdamW (decoupled), bias correction from the step counter") {
  Rule adam{Rule::adam, 0.01};
  adam.wd = 0.01;
  check_training("adam", adam, [](Net& n) {
    kiln::AdamOptions o;
    o.lr = 0.01f;
    o.weight_decay = 0.01f;
    return kiln::Adam({&n.w1, &n.b1, &n.w2, &n.b2}, o);
  });
  Rule adamw{Rule::adamw, 0.01};
  adamw.wd = 0.1;
  check_training("adamw", adamw, [](Net& n) {
    kiln::AdamOptions o;
    o.lr = 0.01f;
    o.weight_decay = 0.1f;
    return kiln::AdamW({&n.w1, &n.b1, &n.w2, &n.b2}, o);
  });
}

TEST_CASE("parameters are never folded, prepacked or merged by contents") {
  // Two zero-initialised parameters of one shape: as constants they would share a node.
  kiln::Parameter a(Shape{2, 2}), b(Shape{2, 2});
  kiln::SGD opt({&a, &b}, {1.f});
  auto step = [&](auto x) {
    auto loss = kiln::sum_all(kiln::matmul(x, a) * 2.f + kiln::matmul(x, b) * 3.f);
    opt.step(kiln::grad(loss, a, b));
    return loss;
  };
  const Tensor<float> x(Shape{1, 2}, {1.f, 2.f});
  auto net = kiln::compile(step);
  (void)net(x);
  // d/da = x^T * 2 per column: [[2, 2], [4, 4]]; d/db = 3/2 of that. lr 1: a = -grad.
  kt::check_close(a.value(), V{-2, -2, -4, -4}, {0, 0}, "a after one step");
  kt::check_close(b.value(), V{-3, -3, -6, -6}, {0, 0}, "b after one step");
  const Tensor<float> loss2 = net(x);  // the new weights are read, not prepacked old ones
  CHECK(loss2[0] == doctest::Approx(2 * (-2 * 1 - 4 * 2) * 2 + 3 * (-3 * 1 - 6 * 2) * 2));
}
