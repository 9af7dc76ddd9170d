// bench/bench_int8.cpp — kiln's int8 kernels vs a TFLite-reference-style loop, in one binary.
//
//   *_kiln   kiln::kernels::int8 (this build's dot path: AVX2 / SSE4.1 / NEON / scalar)
//   *_naive  the plain loop TFLite's reference kernels run: per output, per tap, per channel,
//            bounds checks inside, requantisation through the same fixed-point functions
// Both results are compared first (a mismatch skips the benchmark). Counter GOPS: 2 ops per
// multiply-accumulate (MAC count x 2 / time), so it compares with f32 GFLOP/s figures.
//
// Layers with the shapes of the MLPerf Tiny models (/work/shared/models):
//   fc        AD autoencoder 640 -> 128 (batch 1), a 1024 -> 1024 GEMV, 256 -> 256 at batch 32
//   conv      IC ResNet-8 3x3 16 -> 16 on 32x32 (SAME), VWW pointwise 1x1 64 -> 128 on 12x12,
//             KWS first layer 10x4 1 -> 64 on 49x10 stride 2
//   dwconv    KWS 3x3 depthwise on 25x5x64, VWW 3x3 depthwise on 48x48x32
#include <benchmark/benchmark.h>

#include <kiln/kernels/int8.hpp>

#include <cstdint>
#include <random>
#include <vector>

namespace {

using kiln::index_t;
using kiln::Shape;
namespace k8 = kiln::kernels::int8;

std::vector<std::int8_t> random_int8(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<std::int8_t> v(n);
  for (auto& x : v) x = static_cast<std::int8_t>(d(rng));
  return v;
}

struct Requant {
  std::vector<std::int32_t> m, s;
  Requant(index_t channels, int shift) : m(static_cast<std::size_t>(channels)), s(m.size(), shift) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::int32_t> d(1 << 30, 2147483647);
    for (auto& x : m) x = d(rng);
  }
  k8::OutputStage stage() const {
    k8::OutputStage o;
    o.multiplier = m.data();
    o.shift = s.data();
    o.output_offset = -5;
    o.act_min = -5;  // relu
    return o;
  }
};

void set_gops(benchmark::State& state, double macs) {
  state.counters["GOPS"] = benchmark::Counter(2.0 * macs, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::OneK::kIs1000);
  state.counters["GOPS"].value /= 1e9;  // rate in ops/s -> G ops/s
}

// ---- fully connected ------------------------------------------------------------------------------

void naive_fc(const k8::FullyConnectedParams& p, index_t batches, index_t n_in, index_t n_out,
              const std::int8_t* x, const std::int8_t* w, const std::int32_t* bias, std::int8_t* y) {
  for (index_t b = 0; b < batches; ++b)
    for (index_t o = 0; o < n_out; ++o) {
      std::int32_t acc = 0;
      for (index_t i = 0; i < n_in; ++i) acc += (x[b * n_in + i] + p.input_offset) * w[o * n_in + i];
      y[b * n_out + o] = p.output.apply(acc + bias[o], o);
    }
}

void BM_fc(benchmark::State& state, bool kiln_kernel) {
  const index_t n_in = state.range(0), n_out = state.range(1), batches = state.range(2);
  const auto x = random_int8(static_cast<std::size_t>(batches * n_in), 1);
  const auto w = random_int8(static_cast<std::size_t>(n_out * n_in), 2);
  const std::vector<std::int32_t> bias(static_cast<std::size_t>(n_out), 1000);
  const Requant rq(n_out, -10);
  k8::FullyConnectedParams p;
  p.input_offset = 3;
  p.output = rq.stage();
  std::vector<std::int8_t> y(static_cast<std::size_t>(batches * n_out)), want(y.size());
  const Shape xs{batches, n_in}, ws{n_out, n_in}, ys{batches, n_out};
  naive_fc(p, batches, n_in, n_out, x.data(), w.data(), bias.data(), want.data());
  if (!k8::fully_connected(p, xs, x.data(), ws, w.data(), bias.data(), ys, y.data()).ok() || y != want) {
    state.SkipWithError("kiln int8 fully_connected differs from the naive loop");
    return;
  }
  for (auto _ : state) {
    if (kiln_kernel)
      (void)k8::fully_connected(p, xs, x.data(), ws, w.data(), bias.data(), ys, y.data());
    else
      naive_fc(p, batches, n_in, n_out, x.data(), w.data(), bias.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_gops(state, static_cast<double>(batches * n_in * n_out));
  state.SetLabel(k8::kDotPathName);
}

// ---- conv2d / depthwise -------------------------------------------------------------------------

struct ConvShape {
  index_t h, w, in_c, out_c, kh, kw, stride;
  bool depthwise;
};

// 0: IC 3x3 16->16 on 32x32; 1: VWW 1x1 64->128 on 12x12; 2: KWS 10x4 1->64 on 49x10 s2;
// 3: KWS dw 3x3 on 25x5x64; 4: VWW dw 3x3 on 48x48x32.
constexpr ConvShape kConvShapes[] = {
    {32, 32, 16, 16, 3, 3, 1, false}, {12, 12, 64, 128, 1, 1, 1, false}, {49, 10, 1, 64, 10, 4, 2, false},
    {25, 5, 64, 64, 3, 3, 1, true},   {48, 48, 32, 32, 3, 3, 1, true},
};

void naive_conv(const ConvShape& c, const k8::Window2D& win, index_t oh, index_t ow, std::int32_t in_off,
                const k8::OutputStage& out, const std::int8_t* x, const std::int8_t* f,
                const std::int32_t* bias, std::int8_t* y) {
  for (index_t oy = 0; oy < oh; ++oy)
    for (index_t ox = 0; ox < ow; ++ox)
      for (index_t oc = 0; oc < c.out_c; ++oc) {
        std::int32_t acc = 0;
        for (index_t ky = 0; ky < c.kh; ++ky)
          for (index_t kx = 0; kx < c.kw; ++kx) {
            const index_t iy = oy * win.stride_h - win.pad_top + ky, ix = ox * win.stride_w - win.pad_left + kx;
            if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
            if (c.depthwise) {
              acc += (x[(iy * c.w + ix) * c.in_c + oc] + in_off) * f[(ky * c.kw + kx) * c.out_c + oc];
            } else {
              for (index_t ic = 0; ic < c.in_c; ++ic)
                acc += (x[(iy * c.w + ix) * c.in_c + ic] + in_off) * f[((oc * c.kh + ky) * c.kw + kx) * c.in_c + ic];
            }
          }
        y[(oy * ow + ox) * c.out_c + oc] = out.apply(acc + bias[oc], oc);
      }
}

void BM_conv(benchmark::State& state, bool kiln_kernel) {
  const ConvShape c = kConvShapes[state.range(0)];
  const k8::Window2D win = k8::same_window(c.h, c.w, c.kh, c.kw, c.stride, c.stride);
  const index_t oh = k8::window_output_size(c.h, c.kh, c.stride, 1, win.pad_top, win.pad_bottom);
  const index_t ow = k8::window_output_size(c.w, c.kw, c.stride, 1, win.pad_left, win.pad_right);
  const auto x = random_int8(static_cast<std::size_t>(c.h * c.w * c.in_c), 3);
  const std::size_t fsize = static_cast<std::size_t>(c.depthwise ? c.kh * c.kw * c.out_c : c.out_c * c.kh * c.kw * c.in_c);
  const auto f = random_int8(fsize, 4);
  const std::vector<std::int32_t> bias(static_cast<std::size_t>(c.out_c), -300);
  const Requant rq(c.out_c, c.depthwise ? -7 : -9);
  const Shape xs{1, c.h, c.w, c.in_c}, ys{1, oh, ow, c.out_c};
  const Shape fs = c.depthwise ? Shape{1, c.kh, c.kw, c.out_c} : Shape{c.out_c, c.kh, c.kw, c.in_c};
  k8::Conv2DParams cp;
  cp.window = win;
  cp.input_offset = -7;
  cp.output = rq.stage();
  k8::DepthwiseConv2DParams dp;
  dp.window = win;
  dp.input_offset = -7;
  dp.output = rq.stage();
  auto run_kiln = [&](std::int8_t* y) {
    return c.depthwise ? k8::depthwise_conv2d(dp, xs, x.data(), fs, f.data(), bias.data(), ys, y)
                       : k8::conv2d(cp, xs, x.data(), fs, f.data(), bias.data(), ys, y);
  };
  std::vector<std::int8_t> y(static_cast<std::size_t>(ys.numel())), want(y.size());
  naive_conv(c, win, oh, ow, -7, rq.stage(), x.data(), f.data(), bias.data(), want.data());
  if (!run_kiln(y.data()).ok() || y != want) {
    state.SkipWithError("kiln int8 conv differs from the naive loop");
    return;
  }
  for (auto _ : state) {
    if (kiln_kernel)
      (void)run_kiln(y.data());
    else
      naive_conv(c, win, oh, ow, -7, rq.stage(), x.data(), f.data(), bias.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double macs = static_cast<double>(oh * ow * c.out_c * c.kh * c.kw * (c.depthwise ? 1 : c.in_c));
  set_gops(state, macs);
  static const char* names[] = {"IC 3x3 16->16 32x32", "VWW 1x1 64->128 12x12", "KWS 10x4 1->64 s2",
                                "KWS dw3x3 25x5x64", "VWW dw3x3 48x48x32"};
  state.SetLabel(names[state.range(0)]);
}

void fc_args(benchmark::internal::Benchmark* b) {
  b->Args({640, 128, 1})->Args({1024, 1024, 1})->Args({256, 256, 32})->ArgNames({"in", "out", "batch"});
}
void conv_args(benchmark::internal::Benchmark* b) { b->DenseRange(0, 4)->ArgNames({"layer"}); }

}  // namespace

BENCHMARK_CAPTURE(BM_fc, kiln, true)->Apply(fc_args);
BENCHMARK_CAPTURE(BM_fc, naive, false)->Apply(fc_args);
BENCHMARK_CAPTURE(BM_conv, kiln, true)->Apply(conv_args);
BENCHMARK_CAPTURE(BM_conv, naive, false)->Apply(conv_args);
