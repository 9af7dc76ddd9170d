// bench/bench_conv.cpp — CNN operators: kiln compiled vs kiln eager vs the raw conv kernel.
//
// Workloads (NHWC, batch 1, weights OHWI captured as constants, bias + ReLU fused):
//   conv3x3     1x32x32x16 -> 32 channels, 3x3, stride 1, "same" padding (im2col + GEMM).
//               FLOPs = 2 * 32*32 * 32 * (3*3*16) = 9.44 M.
//   depthwise   1x56x56x64, 3x3, stride 1, "same", multiplier 1 (direct kernel).
//               FLOPs = 2 * 56*56 * 64 * 9 = 3.61 M; bytes >= 2 * 56*56*64*4 = 1.61 MB.
//   pointwise   1x56x56x64 -> 64 channels, 1x1 (the GEMM reads the input in place).
//               FLOPs = 2 * 56*56 * 64*64 = 25.7 M; bytes >= 2 * 56*56*64*4 = 1.61 MB.
//   dw_s2_112   1x112x112x32, 3x3, stride 2, "same" (-> 56x56x32), multiplier 1: MobileNet's
//               downsampling depthwise. FLOPs = 2 * 56*56 * 32 * 9 = 1.81 M; bytes >= 1.61 + 0.40 MB.
//   dw_s2_56    1x56x56x64, 3x3, stride 2, "same" (-> 28x28x64). FLOPs 0.90 M; bytes >= 0.80 + 0.20 MB.
//   copy        memcpy of the depthwise/pointwise input size (the memory roof of bench/README.md).
//   fma_peak    independent FMAs on kiln's vector registers: the compute roof, measured in the same
//               run as the kernels (the clock of this VM varies by +-10 % from day to day).
// Variants: *_compiled (net.run_into: guard + plan, no allocation), *_eager (op by op),
// *_kernel (kiln::kernels::conv2d on prepacked weights, no graph), *_onednn_nhwc / _blocked
// (oneDNN, when found: bench_onednn.hpp). Counter FLOPS is a rate; bench/README.md derives the
// roofline and scripts/bench_targets.py prints the fractions reached. Each variant is first
// checked against eager (a mismatch skips it instead of timing a wrong result).
#include <benchmark/benchmark.h>
#include <kiln/kiln.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "bench_random.hpp"
#if KILN_BENCH_HAVE_DNNL
#include "bench_onednn.hpp"
#endif

namespace {

using kiln::index_t;
using kiln::Tensor;

using kiln_bench::uniform;

struct ConvWorkload {
  const char* name;
  index_t h, w, c, o;
  int k, groups, stride;
  index_t out_h() const { return (h + stride - 1) / stride; }  // "same" padding
  index_t out_w() const { return (w + stride - 1) / stride; }
};

const ConvWorkload kWorkloads[] = {
    {"conv3x3", 32, 32, 16, 32, 3, 1, 1},           {"depthwise", 56, 56, 64, 64, 3, 64, 1},
    {"pointwise", 56, 56, 64, 64, 1, 1, 1},         {"dw_s2_112", 112, 112, 32, 32, 3, 32, 2},
    {"dw_s2_56", 56, 56, 64, 64, 3, 64, 2},
};
constexpr int kLastWorkload = static_cast<int>(sizeof(kWorkloads) / sizeof(kWorkloads[0])) - 1;

struct Setup {
  explicit Setup(const ConvWorkload& wl)
      : x(uniform({1, wl.h, wl.w, wl.c}, 1)),
        w(uniform({wl.o, wl.k, wl.k, wl.c / wl.groups}, 2, -0.2f, 0.2f)),
        b(uniform({wl.o}, 3)),
        opt(kiln::Conv2dOptions().with_stride(wl.stride).with_padding(kiln::Padding2d::same()).with_groups(wl.groups)),
        flops(2.0 * static_cast<double>(wl.out_h() * wl.out_w() * wl.o) *
              static_cast<double>(wl.k * wl.k * (wl.c / wl.groups))) {}
  auto model() const {
    return [this](auto in) { return kiln::relu(kiln::conv2d(in, w, b, opt)); };
  }
  Tensor<float> x, w, b;
  kiln::Conv2dOptions opt;
  double flops;
};

void counters(benchmark::State& state, double flops) {
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

bool same(benchmark::State& state, const Tensor<float>& got, const Tensor<float>& want) {
  float m = 0.f;
  for (index_t i = 0; i < got.size(); ++i) m = std::fmax(m, std::fabs(got[i] - want[i]));
  if (!(m <= 1e-4f)) {
    state.SkipWithError("result differs from the kiln eager reference");
    return false;
  }
  return true;
}

void BM_conv_compiled(benchmark::State& state) {
  const Setup s(kWorkloads[state.range(0)]);
  const auto model = s.model();
  auto net = kiln::compile(model);
  Tensor<float> y = net(s.x);
  if (!same(state, y, kiln::eager(model)(s.x))) return;
  const kiln::TensorView<float> yv = y.view();
  for (auto _ : state) {
    net.run_into(yv, s.x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  counters(state, s.flops);
  state.counters["kernels"] = net.stats().kernels;
  state.SetLabel(kWorkloads[state.range(0)].name);
}
BENCHMARK(BM_conv_compiled)->DenseRange(0, kLastWorkload)->Unit(benchmark::kMicrosecond);

void BM_conv_eager(benchmark::State& state) {
  const Setup s(kWorkloads[state.range(0)]);
  const auto model = kiln::eager(s.model());
  for (auto _ : state) {
    Tensor<float> y = model(s.x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  counters(state, s.flops);
  state.SetLabel(kWorkloads[state.range(0)].name);
}
BENCHMARK(BM_conv_eager)->DenseRange(0, kLastWorkload)->Unit(benchmark::kMicrosecond);

/// The kernel alone: prepacked weights, bias and ReLU in registers, caller-owned buffers.
void BM_conv_kernel(benchmark::State& state) {
  const ConvWorkload& wl = kWorkloads[state.range(0)];
  const Setup s(wl);
  kiln::kernels::WindowGeometry g;
  g.in_h = wl.h;
  g.in_w = wl.w;
  g.out_h = wl.out_h();
  g.out_w = wl.out_w();
  g.in_c = wl.c;
  g.out_c = wl.o;
  g.kernel_h = g.kernel_w = wl.k;
  g.stride_h = g.stride_w = wl.stride;
  // "same": the padding the output size needs, the odd one after (as kiln::conv2d resolves it).
  g.pad_top = static_cast<int>(((g.out_h - 1) * wl.stride + wl.k - wl.h) / 2);
  g.pad_left = static_cast<int>(((g.out_w - 1) * wl.stride + wl.k - wl.w) / 2);
  g.groups = wl.groups;
  Tensor<float> packed({static_cast<index_t>(kiln::kernels::conv_packed_weight_floats(g))});
  kiln::kernels::conv_pack_weights(g, s.w.data(), packed.data());
  Tensor<float> ws({static_cast<index_t>(kiln::kernels::conv_workspace_floats(g, true) + 16)});
  Tensor<float> y({1, wl.out_h(), wl.out_w(), wl.o});
  kiln::kernels::GemmEpilogue ep;
  ep.bias = s.b.data();
  ep.clamp = true;
  ep.lo = 0.f;
  ep.hi = __builtin_huge_valf();
  const auto x = kiln::kernels::dense_nhwc(s.x.data(), wl.h, wl.w, wl.c);
  kiln::kernels::conv2d(g, x, nullptr, packed.data(), y.data(), wl.o, ep, ws.data());
  if (!same(state, y, kiln::eager(s.model())(s.x))) return;
  for (auto _ : state) {
    kiln::kernels::conv2d(g, x, nullptr, packed.data(), y.data(), wl.o, ep, ws.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  counters(state, s.flops);
  state.SetLabel(wl.name);
}
BENCHMARK(BM_conv_kernel)->DenseRange(0, kLastWorkload)->Unit(benchmark::kMicrosecond);

#if KILN_BENCH_HAVE_DNNL
/// oneDNN on the same problem: NHWC in and out (kiln's problem), or its own blocked layout.
void onednn_conv(benchmark::State& state, bool blocked) {
  const ConvWorkload& wl = kWorkloads[state.range(0)];
  const Setup s(wl);
  kiln_bench::OneDnnConv conv({wl.h, wl.w, wl.c, wl.o, wl.k, wl.groups, blocked}, s.x.data(), s.w.data(),
                              s.b.data());
  conv.run();
  Tensor<float> y({1, wl.h, wl.w, wl.o});
  std::memcpy(y.data(), conv.result_nhwc(), static_cast<std::size_t>(y.size()) * sizeof(float));
  if (!same(state, y, kiln::eager(s.model())(s.x))) return;
  for (auto _ : state) conv.run();
  counters(state, s.flops);
  state.SetLabel(std::string(wl.name) + " " + conv.implementation());
}
void BM_conv_onednn_nhwc(benchmark::State& state) { onednn_conv(state, false); }
void BM_conv_onednn_blocked(benchmark::State& state) { onednn_conv(state, true); }
BENCHMARK(BM_conv_onednn_nhwc)->DenseRange(0, 2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_conv_onednn_blocked)->DenseRange(0, 2)->Unit(benchmark::kMicrosecond);
#endif

/// The compute roof: kAccumulators independent FMA chains on kiln's vector type, enough to cover
/// the FMA latency on both FMA pipes (4 cycles x 2 pipes = 8 in flight on Zen and Skylake).
#if KILN_SIMD
using PeakVector = kiln::kernels::fbatch;
#else
using PeakVector = float;
#endif
constexpr int kPeakAccumulators = 12;
constexpr int kPeakRounds = 1000;

// A local copy of the accumulators (it never escapes, so they live in registers) per call.
void fma_rounds(PeakVector (&state)[kPeakAccumulators]) {
  PeakVector acc[kPeakAccumulators];
  for (int i = 0; i < kPeakAccumulators; ++i) acc[i] = state[i];
  const PeakVector scale(0.9999999f), add(1e-7f);
  for (int r = 0; r < kPeakRounds; ++r) {
#pragma GCC unroll 12
    for (int i = 0; i < kPeakAccumulators; ++i) {
#if KILN_SIMD
      acc[i] = xsimd::fma(acc[i], scale, add);
#else
      acc[i] = std::fma(acc[i], scale, add);
#endif
    }
  }
  for (int i = 0; i < kPeakAccumulators; ++i) state[i] = acc[i];
}

void BM_fma_peak(benchmark::State& state) {
  PeakVector acc[kPeakAccumulators];
  for (int i = 0; i < kPeakAccumulators; ++i) acc[i] = PeakVector(1.f + 1e-3f * static_cast<float>(i));
  for (auto _ : state) {
    fma_rounds(acc);
    benchmark::DoNotOptimize(acc);
  }
  counters(state, 2.0 * kPeakRounds * kPeakAccumulators * kiln::kernels::kLanes);
  state.SetLabel(kiln::kernels::kSimdName);
}
BENCHMARK(BM_fma_peak);

/// The memory roof: copy the 56x56x64 activation (what depthwise and pointwise read and write).
void BM_copy_activation(benchmark::State& state) {
  const Tensor<float> x = uniform({1, 56, 56, 64}, 4);
  Tensor<float> y(x.shape());
  for (auto _ : state) {
    std::memcpy(y.data(), x.data(), static_cast<std::size_t>(x.size()) * sizeof(float));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * x.size() * 2 * static_cast<index_t>(sizeof(float)));
}
BENCHMARK(BM_copy_activation)->Unit(benchmark::kMicrosecond);

/// Pooling and global pooling on the same activation (bandwidth-bound; reported as bytes/s).
void BM_pool_compiled(benchmark::State& state) {
  const Tensor<float> x = uniform({1, 56, 56, 64}, 5);
  auto model = [](auto in) { return kiln::max_pool2d(in, kiln::Pool2dOptions(3).with_stride(2).with_padding(kiln::Padding2d::same())); };
  auto net = kiln::compile(model);
  Tensor<float> y = net(x);
  if (!same(state, y, kiln::eager(model)(x))) return;
  const kiln::TensorView<float> yv = y.view();
  for (auto _ : state) {
    net.run_into(yv, x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * (x.size() + y.size()) * static_cast<index_t>(sizeof(float)));
}
BENCHMARK(BM_pool_compiled)->Unit(benchmark::kMicrosecond);

}  // namespace
