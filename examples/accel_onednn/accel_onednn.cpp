// examples/accel_onednn — oneDNN as a vendor library behind kiln's accelerator hook, benchmarked
// against kiln's own kernels.
//
// Each case is a model compiled twice: with kiln's CPU kernels only, and with the oneDNN backend
// (onednn_backend.hpp: conv2d/linear + bias + ReLU as one oneDNN primitive with a post-op, weights
// reordered once). It checks the two agree, then prints the median time per call of both and which
// wins (median CPU time per call). kiln is single-threaded; run with OMP_NUM_THREADS=1 for a like-for-like comparison
// (scripts/demo.sh does), without it oneDNN uses every core.
#include "onednn_backend.hpp"

#include <algorithm>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <utility>
#include <vector>

namespace {

kiln::Tensor<float> random(kiln::Shape s, unsigned seed, float scale) {
  kiln::Tensor<float> t(s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  for (float& v : t) v = d(rng);
  return t;
}

/// Median CPU time per call of `a` and of `b` (process CPU time: the shared machine's other jobs
/// do not count; single-threaded runs), measured in 9 interleaved rounds, each a batch of enough
/// calls to last ~10 ms.
template <class A, class B>
std::pair<double, double> median_us(A&& a, B&& b) {
  auto cpu_s = [] { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; };
  auto calls_for = [&](auto& f) {
    f();
    int n = 1;
    for (;;) {
      const double t0 = cpu_s();
      for (int i = 0; i < n; ++i) f();
      if (cpu_s() - t0 > 0.01 || n >= (1 << 20)) return n;
      n *= 2;
    }
  };
  auto batch = [&](auto& f, int n) {
    const double t0 = cpu_s();
    for (int i = 0; i < n; ++i) f();
    return (cpu_s() - t0) * 1e6 / n;
  };
  const int na = calls_for(a), nb = calls_for(b);
  std::vector<double> ta, tb;
  for (int r = 0; r < 9; ++r) {
    ta.push_back(batch(a, na));
    tb.push_back(batch(b, nb));
  }
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  return {ta[4], tb[4]};
}

struct Row {
  const char* name;
  double flops;
};

template <class Model>
void bench(const Row& row, Model model, const kiln::Tensor<float>& x, const kiln::Shape& out_shape,
           const kiln::accel::Backend& dnnl, bool show_graph = false) {
  kiln::CompileOptions opts;
  opts.offload = kiln::accel::offload(dnnl, /*strict*/ true);  // a refused region is an error here
  auto cpu = kiln::compile(model);
  auto dev = kiln::compile(model, opts);
  kiln::Tensor<float> a(out_shape), b(out_shape);
  cpu.run_into(a, x);
  dev.run_into(b, x);
  float err = 0, mag = 0;
  for (kiln::index_t i = 0; i < a.size(); ++i) {
    err = std::fmax(err, std::fabs(a[i] - b[i]));
    mag = std::fmax(mag, std::fabs(a[i]));
  }
  const kiln::accel::Report& r = *dev.stats().offload;
  if (show_graph) dev.print_graph(std::cout);
  const auto [tc, td] = median_us([&] { cpu.run_into(a, x); }, [&] { dev.run_into(b, x); });
  std::printf("| %-40s | %9.1f | %6.1f | %9.1f | %6.1f | %-6s | %d/%d | %.1e |\n", row.name, tc, row.flops / tc * 1e-3, td,
              row.flops / td * 1e-3, tc <= td ? "kiln" : "oneDNN", r.offloaded_nodes, dev.stats().nodes, err / (mag > 0 ? mag : 1));
}

double conv_flops(kiln::index_t n, kiln::index_t oh, kiln::index_t ow, kiln::index_t o, kiln::index_t kh, kiln::index_t kw,
                  kiln::index_t c) {
  return 2.0 * n * oh * ow * o * kh * kw * c;
}

}  // namespace

int main() {
  onednn::Context ctx;
  const kiln::accel::Backend dnnl = onednn::backend(ctx);
  const char* omp = std::getenv("OMP_NUM_THREADS");
  std::printf("oneDNN %d.%d.%d behind kiln's accelerator hook (OMP_NUM_THREADS=%s)\n\n", DNNL_VERSION_MAJOR,
              DNNL_VERSION_MINOR, DNNL_VERSION_PATCH, omp ? omp : "unset: oneDNN uses every core");
  std::printf("| %-40s | %9s | %6s | %9s | %6s | %-6s | %s | %s |\n", "model", "kiln us", "GF/s", "oneDNN us", "GF/s",
              "faster", "offloaded/nodes", "max rel diff");
  std::printf("|%s|---:|---:|---:|---:|---|---|---|\n", std::string(42, '-').c_str());

  for (const auto& [m, k, n] : {std::tuple<kiln::index_t, kiln::index_t, kiln::index_t>{1, 256, 256}, {1, 1024, 1024},
                                {64, 512, 512}, {256, 1024, 1024}}) {
    const auto w = random({n, k}, 1, 0.05f), b = random({n}, 2, 0.1f);
    const auto x = random({m, k}, 3, 1.f);
    char name[64];
    std::snprintf(name, sizeof name, "linear+bias+relu %ldx%ld -> %ld", static_cast<long>(m), static_cast<long>(k),
                  static_cast<long>(n));
    bench({name, 2.0 * m * k * n}, [&](auto in) { return kiln::relu(kiln::linear(in, w, b)); }, x, {m, n}, dnnl);
  }

  struct Conv {
    kiln::index_t h, c, o, k, stride;
  };
  for (const Conv& cv : {Conv{32, 16, 16, 3, 1}, Conv{56, 64, 64, 3, 1}, Conv{28, 64, 128, 1, 1}, Conv{64, 32, 64, 3, 2},
                         Conv{14, 256, 256, 3, 1}}) {
    const auto w = random({cv.o, cv.k, cv.k, cv.c}, 4, 0.05f), b = random({cv.o}, 5, 0.1f);
    const auto x = random({1, cv.h, cv.h, cv.c}, 6, 1.f);
    const auto opt = kiln::Conv2dOptions().with_stride(static_cast<int>(cv.stride)).with_padding(kiln::Padding2d::same());
    const kiln::index_t oh = (cv.h + cv.stride - 1) / cv.stride;
    char name[64];
    std::snprintf(name, sizeof name, "conv %ldx%ld s%ld %ld->%ld on %ldx%ld +bias+relu", static_cast<long>(cv.k),
                  static_cast<long>(cv.k), static_cast<long>(cv.stride), static_cast<long>(cv.c), static_cast<long>(cv.o),
                  static_cast<long>(cv.h), static_cast<long>(cv.h));
    bench({name, conv_flops(1, oh, oh, cv.o, cv.k, cv.k, cv.c)},
          [&](auto in) { return kiln::relu(kiln::conv2d(in, w, b, opt)); }, x, {1, oh, oh, cv.o}, dnnl);
  }

  // A small CNN: two convs and a classifier offloaded as regions, pooling on kiln's CPU kernels.
  const auto w1 = random({32, 3, 3, 3}, 7, 0.2f), b1 = random({32}, 8, 0.1f);
  const auto w2 = random({64, 3, 3, 32}, 9, 0.05f), b2 = random({64}, 10, 0.1f);
  const auto wf = random({10, 64}, 11, 0.1f), bf = random({10}, 12, 0.1f);
  auto cnn = [&](auto in) {
    const auto same = kiln::Conv2dOptions().with_padding(kiln::Padding2d::same());
    auto h = kiln::relu(kiln::conv2d(in, w1, b1, same));
    h = kiln::max_pool2d(h, kiln::Pool2dOptions(2));
    h = kiln::relu(kiln::conv2d(h, w2, b2, same));
    return kiln::linear(kiln::global_avg_pool(h, false), wf, bf);
  };
  const double cnn_flops = conv_flops(1, 32, 32, 32, 3, 3, 3) + conv_flops(1, 16, 16, 64, 3, 3, 32) + 2.0 * 64 * 10;
  std::printf("\n");
  bench({"small CNN 32x32x3 (conv, pool, conv, gap, fc)", cnn_flops}, cnn, random({1, 32, 32, 3}, 13, 1.f), {1, 10}, dnnl,
        /*show_graph*/ true);
  std::printf("\noneDNN backend: %d region compiles, %d runs\n", ctx.compiles, ctx.runs);
  return 0;
}
