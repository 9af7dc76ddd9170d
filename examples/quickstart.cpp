// examples/quickstart.cpp — compile a small MLP, show its plan, check it against eager, time both.
#include <kiln/kiln.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>

struct Params {
  kiln::Tensor<float> w1{kiln::Shape{64, 10}}, b1{kiln::Shape{64}}, w2{kiln::Shape{32, 64}}, b2{kiln::Shape{32}},
      w3{kiln::Shape{1, 32}}, b3{kiln::Shape{1}};
};

int main() {
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.f, 0.3f);
  Params p;
  for (auto* t : {&p.w1, &p.b1, &p.w2, &p.b2, &p.w3, &p.b3})
    for (float& v : *t) v = dist(rng);
  kiln::Tensor<float> x({256, 10});
  for (float& v : x) v = dist(rng);

  auto mlp = [](auto x, const Params& p) {
    auto h1 = kiln::relu(kiln::linear(x, p.w1, p.b1));  // linear: weight [out, in], like torch.nn.Linear
    auto h2 = kiln::relu(kiln::linear(h1, p.w2, p.b2));
    return kiln::linear(h2, p.w3, p.b3);
  };

  auto net = kiln::compile(mlp);              // nothing happens yet
  kiln::Tensor<float> y = net(x, p);          // first call: trace -> passes -> plan -> run
  auto ref = kiln::eager(mlp)(x, p);          // op by op, every intermediate materialised

  std::cout << "traced graph (as the model was written):\n";
  kiln::print_table(std::cout, *net.traced_graph());
  std::cout << "\nplanned graph (after passes, fusion and memory planning):\n";
  net.print_graph(std::cout);
  std::cout << "\nkernels:\n";
  net.print_plan(std::cout);
  float max_err = 0.f;
  for (kiln::index_t i = 0; i < y.size(); ++i) max_err = std::fmax(max_err, std::fabs(y[i] - ref[i]));
  std::printf("max |compiled - eager| = %.3g over %ld outputs\n", static_cast<double>(max_err),
              static_cast<long>(y.size()));

  auto time = [](auto&& f) {
    using clock = std::chrono::steady_clock;
    int reps = 0;
    const auto t0 = clock::now();
    auto t1 = t0;
    do {
      f();
      ++reps;
      t1 = clock::now();
    } while (t1 - t0 < std::chrono::milliseconds(200));
    return std::chrono::duration<double, std::micro>(t1 - t0).count() / reps;
  };
  kiln::Tensor<float> out(y.shape());
  const double tc = time([&] { net.run_into(out.view(), x, p); });
  const double te = time([&] { auto r = kiln::eager(mlp)(x, p); (void)r; });
  const kiln::Stats s = net.stats();
  std::printf("\ncompiled %.2f us, eager %.2f us per call (batch 256): %.1fx faster\n", tc, te, te / tc);
  std::printf("stats: %d traces, %d cache hits, %d kernels, arena %zu B (lower bound %zu B)\n", s.traces,
              s.cache_hits, s.kernels, s.arena_bytes, s.lower_bound);
  return max_err < 1e-4f ? 0 : 1;
}
