// bench/bench_mixed.cpp — a mixed-precision model as the precision doctor leaves it: a
// 64 -> 128 -> 128 -> 10 MLP (ReLU), PTQ int8 with its middle layer kept in f32 (Options::
// keep_float), per call at batch 1 and 64. The f32 layer's quantize is fused into its GEMM
// epilogue (README "Precision doctor"); to compare with the separate-step plan, build this
// file against the headers of a checkout without that fusion (main before branch `fuseconv`).
#include <benchmark/benchmark.h>

#include <kiln/kiln.hpp>
#include <kiln/ptq/model.hpp>

#include <random>
#include <vector>

namespace {

using kiln::index_t;
using kiln::Shape;
using kiln::Tensor;

struct Mlp {
  Tensor<float> w1{Shape{128, 64}}, b1{Shape{128}}, w2{Shape{128, 128}}, b2{Shape{128}}, w3{Shape{10, 128}},
      b3{Shape{10}};
  Mlp() {
    std::mt19937 g(5);
    std::uniform_real_distribution<float> u(-0.3f, 0.3f);
    for (auto* t : {&w1, &b1, &w2, &b2, &w3, &b3})
      for (float& v : *t) v = u(g);
  }
  template <class X>
  auto operator()(const X& x) const {
    auto h1 = kiln::relu(kiln::linear(x, w1, b1));
    auto h2 = kiln::relu(kiln::linear(h1, w2, b2));
    return kiln::linear(h2, w3, b3);
  }
};

void BM_mlp_middle_f32(benchmark::State& state) {
  const index_t batch = state.range(0);
  const Mlp m;
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<Tensor<float>> cal;
  for (int i = 0; i < 3; ++i) {
    Tensor<float> x(Shape{batch, 64});
    for (float& v : x) v = u(g);
    cal.push_back(x);
  }
  // The middle layer is the one whose (second) ReLU the float graph computes.
  const kiln::ptq::QuantizedModel probe = kiln::ptq::quantize_model(m, cal);
  int relu2 = -1, seen = 0;
  for (int i = 0; i < probe.float_graph().size(); ++i) {
    const kiln::Node& n = probe.float_graph()[i];
    if (n.op == kiln::Op::elementwise && n.fn == kiln::EwFn::relu && ++seen == 2) relu2 = i;
  }
  kiln::ptq::Options o;
  o.keep_float = {relu2};
  const kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(m, cal, o);
  Tensor<float> y;
  for (auto _ : state) {
    y = qm(cal[0]);
    benchmark::DoNotOptimize(y.data());
  }
}

}  // namespace

BENCHMARK(BM_mlp_middle_f32)->Arg(1)->Arg(64);
