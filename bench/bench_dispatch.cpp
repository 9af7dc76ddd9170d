// kiln::dispatch benchmarks: one generic x86-64 binary (no -march=native), the same SGEMM and
// conv2d workloads as bench_core / bench_conv run by each engine the CPU has, so SSE2 and AVX2+FMA
// figures come from one binary and one run. Each benchmark's name ends with its engine; the
// context line kiln_dispatch_best says what the CPU would pick. With KILN_ARCH=sse2|avx2|scalar in
// the environment only that engine runs (the dispatcher's own forcing, as for any program).
//   sgemm_<n>     C = A B, square n, A and B both inputs (run_into: no allocation)
//   conv3x3, depthwise, pointwise  1x32x32x16 -> 32 3x3; 1x56x56x64 depthwise 3x3; 1x1 64 -> 64
//   mlp_256       10 -> 64 -> 32 -> 1 with ReLU at batch 256 (counter per_sample: time per sample)
// Every workload is first checked against the eager path of the same engine.
#include <benchmark/benchmark.h>

#include <kiln/dispatch.hpp>
#include <kiln/kiln.hpp>

#include <cmath>
#include <cstdlib>

#include "bench_random.hpp"
#include <string>
#include <vector>

namespace {

using kiln::index_t;
using kiln::Tensor;

using kiln_bench::uniform;

bool select(benchmark::State& state, const std::string& arch) {
  const kiln::Status s = kiln::dispatch::set_arch(arch.c_str());
  if (!s.ok()) state.SkipWithError(s.message());
  return s.ok();
}

bool close(benchmark::State& state, const Tensor<float>& got, const Tensor<float>& want, float tol) {
  float m = 0.f;
  for (index_t i = 0; i < got.size(); ++i) m = std::fmax(m, std::fabs(got[i] - want[i]));
  if (!(m <= tol)) state.SkipWithError("result differs from the eager reference");
  return m <= tol;
}

/// Times net.run_into(y, in...) after checking the first result against eager(model).
template <class Model, class... In>
void time_model(benchmark::State& state, const std::string& arch, const Model& model, double flops, float tol,
                const In&... in) {
  if (!select(state, arch)) return;
  auto net = kiln::compile(model);
  Tensor<float> y = net(in...);
  if (!close(state, y, kiln::eager(model)(in...), tol)) return;
  const kiln::TensorView<float> yv = y.view();
  for (auto _ : state) {
    net.run_into(yv, in...);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(kiln::dispatch::current_simd_name());
}

void sgemm(benchmark::State& state, std::string arch, index_t n) {
  const Tensor<float> a = uniform({n, n}, 3), b = uniform({n, n}, 4);
  const auto model = [](const auto& x, const auto& w) { return kiln::matmul(x, w); };
  time_model(state, arch, model, 2.0 * static_cast<double>(n * n) * static_cast<double>(n),
             1e-5f * static_cast<float>(n), a, b);
}

void conv(benchmark::State& state, std::string arch, index_t hw, index_t c, index_t o, int k, int groups) {
  const Tensor<float> x = uniform({1, hw, hw, c}, 1), w = uniform({o, k, k, c / groups}, 2, -0.2f, 0.2f),
                      b = uniform({o}, 3);
  const auto opt = kiln::Conv2dOptions().with_padding(kiln::Padding2d::same()).with_groups(groups);
  const auto model = [&](const auto& in) { return kiln::relu(kiln::conv2d(in, w, b, opt)); };
  time_model(state, arch, model, 2.0 * static_cast<double>(hw * hw * o) * static_cast<double>(k * k * (c / groups)),
             1e-4f, x);
}

void mlp(benchmark::State& state, std::string arch) {
  const Tensor<float> x = uniform({256, 10}, 1), w1 = uniform({64, 10}, 2, -0.3f, 0.3f), b1 = uniform({64}, 3),
                      w2 = uniform({32, 64}, 4, -0.2f, 0.2f), b2 = uniform({32}, 5), w3 = uniform({1, 32}, 6),
                      b3 = uniform({1}, 7);
  const auto model = [&](const auto& in) {
    return kiln::linear(kiln::relu(kiln::linear(kiln::relu(kiln::linear(in, w1, b1)), w2, b2)), w3, b3);
  };
  time_model(state, arch, model, 2.0 * 256 * (10 * 64 + 64 * 32 + 32), 1e-4f, x);
  // Seconds per sample (shown as e.g. "per_sample=120n" = 120 ns), as bench_core's mlp.
  state.counters["per_sample"] =
      benchmark::Counter(256, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> arches;
  if (const char* env = std::getenv("KILN_ARCH"); env && *env) {
    arches.emplace_back(kiln::dispatch::current_arch());  // the forced engine (or the best, if unusable)
  } else {
    for (int i = 0; i < kiln::dispatch::num_arches(); ++i)
      if (kiln::dispatch::cpu_supports(kiln::dispatch::arch_name(i))) arches.emplace_back(kiln::dispatch::arch_name(i));
  }
  benchmark::AddCustomContext("kiln_dispatch_best", kiln::dispatch::best_arch());
  benchmark::AddCustomContext("kiln_dispatch_engines", [&] {
    std::string s;
    for (const std::string& a : arches) s += (s.empty() ? "" : " ") + a;
    return s;
  }());
  for (const std::string& a : arches) {
    for (index_t n : {64, 256, 512})
      benchmark::RegisterBenchmark(("sgemm_" + std::to_string(n) + "/" + a).c_str(), sgemm, a, n)
          ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("conv3x3/" + a).c_str(), conv, a, 32, 16, 32, 3, 1)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("depthwise/" + a).c_str(), conv, a, 56, 64, 64, 3, 64)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("pointwise/" + a).c_str(), conv, a, 56, 64, 64, 1, 1)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("mlp_256/" + a).c_str(), mlp, a)->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
