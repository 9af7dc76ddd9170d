// int8 models run by compile() and by kiln::eager: both equal an independent int64 reference
// (tests/int8_reference.hpp's requantisation, plain loops written here) byte for byte, on odd
// shapes, strides, padding, dilation, depth multipliers, broadcasting, strided views and mixed
// float/int8 graphs; build-time errors name the op.
//
// The references derive each layer's integers from the float scales the way TFLite's Prepare()
// does (quant::quantize_multiplier, make_add_params, make_softmax_params: their arithmetic is
// pinned against TFLite separately in test_int8_fixed_point / test_int8_add_softmax); every
// inner product, requantisation, rounding and clamp here is the reference's own. Softmax is
// compared with a direct call of the int8 kernel (itself checked bit for bit in
// test_int8_add_softmax): what is tested here is the wiring of its parameters.
#include <doctest/doctest.h>

#include <kiln/kernels/int8.hpp>  // the reference's parameter derivation and the softmax kernel
#include <kiln/kiln.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "int8_reference.hpp"
#include "test_util.hpp"

namespace {

using kiln::index_t;
using kiln::QuantParams;
using kiln::Shape;
namespace ref = int8ref;
using i64 = std::int64_t;

template <class T>
kiln::Tensor<T> from(const std::vector<T>& v, const Shape& s) {
  kiln::Tensor<T> t(s);
  for (index_t i = 0; i < t.size(); ++i) t[i] = v[static_cast<std::size_t>(i)];
  return t;
}

kiln::Tensor<float> random_floats(const Shape& s, unsigned seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  kiln::Tensor<float> t(s);
  for (float& v : t) v = d(gen);
  return t;
}

// ---- reference pieces -----------------------------------------------------------------------
std::int8_t ref_quantize(float x, QuantParams q) {
  const double r = std::round(static_cast<double>(x / q.scale));  // TFLite: float division, std::round
  return ref::clamp8(static_cast<i64>(r) + q.zero_point, -128, 127);
}

struct Requant {  // per-channel multipliers from the float scales (TFLite's QuantizeMultiplier)
  std::vector<std::int32_t> m, s;
  Requant(QuantParams in, const std::vector<float>& w_scales, QuantParams out, index_t channels) {
    for (index_t c = 0; c < channels; ++c) {
      const float ws = w_scales[w_scales.size() == 1 ? 0 : static_cast<std::size_t>(c)];
      const auto qm = kiln::quant::quantize_multiplier(static_cast<double>(in.scale) * ws / out.scale);
      m.push_back(qm.multiplier);
      s.push_back(qm.shift);
    }
  }
};

// The fused activation's int8 bounds, spelled out: zero point + round(bound / scale).
std::pair<int, int> act_bounds(QuantParams out, kiln::EwFn fn, float lo = 0.f, float hi = 0.f) {
  auto q = [&](float f) {
    const double r = std::round(static_cast<double>(f / out.scale)) + out.zero_point;
    return static_cast<int>(std::clamp(r, -128.0, 127.0));
  };
  if (fn == kiln::EwFn::relu) return {q(0.f), 127};
  if (fn == kiln::EwFn::relu6) return {q(0.f), q(6.f)};
  if (fn == kiln::EwFn::clamp) return {q(lo), q(hi)};
  return {-128, 127};
}

// Fully connected: x [B, K] (zero point zx), w [N, K], bias [N].
std::vector<std::int8_t> ref_fc(const std::vector<std::int8_t>& x, QuantParams qx, index_t B, index_t K,
                                const std::vector<std::int8_t>& w, const std::vector<float>& ws,
                                const std::vector<std::int32_t>& bias, index_t N, QuantParams qo,
                                std::pair<int, int> act) {
  const Requant rq(qx, ws, qo, N);
  std::vector<std::int8_t> y(static_cast<std::size_t>(B * N));
  for (index_t b = 0; b < B; ++b)
    for (index_t n = 0; n < N; ++n) {
      i64 acc = bias.empty() ? 0 : bias[static_cast<std::size_t>(n)];
      for (index_t k = 0; k < K; ++k)
        acc += (i64{x[static_cast<std::size_t>(b * K + k)]} - qx.zero_point) * w[static_cast<std::size_t>(n * K + k)];
      y[static_cast<std::size_t>(b * N + n)] = ref::requant(acc, rq.m[static_cast<std::size_t>(n)],
                                                            rq.s[static_cast<std::size_t>(n)], qo.zero_point,
                                                            act.first, act.second);
    }
  return y;
}

struct ConvGeo {
  index_t N, H, W, C, O, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW;
  index_t groups;
};

// Convolution NHWC x OHWI weight [O, kh, kw, C / groups] (depthwise: groups C).
std::vector<std::int8_t> ref_conv(const ConvGeo& g, const std::vector<std::int8_t>& x, QuantParams qx,
                                  const std::vector<std::int8_t>& w, const std::vector<float>& ws,
                                  const std::vector<std::int32_t>& bias, QuantParams qo, std::pair<int, int> act) {
  const Requant rq(qx, ws, qo, g.O);
  const index_t cin = g.C / g.groups, og = g.O / g.groups;
  std::vector<std::int8_t> y(static_cast<std::size_t>(g.N * g.OH * g.OW * g.O));
  for (index_t n = 0; n < g.N; ++n)
    for (index_t oy = 0; oy < g.OH; ++oy)
      for (index_t ox = 0; ox < g.OW; ++ox)
        for (index_t o = 0; o < g.O; ++o) {
          i64 acc = bias.empty() ? 0 : bias[static_cast<std::size_t>(o)];
          for (index_t ky = 0; ky < g.kh; ++ky)
            for (index_t kx = 0; kx < g.kw; ++kx) {
              const index_t iy = oy * g.sh - g.pt + ky * g.dh, ix = ox * g.sw - g.pl + kx * g.dw;
              if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) continue;
              for (index_t c = 0; c < cin; ++c) {
                const index_t ic = o / og * cin + c;
                const i64 xv = x[static_cast<std::size_t>(((n * g.H + iy) * g.W + ix) * g.C + ic)];
                acc += (xv - qx.zero_point) * w[static_cast<std::size_t>(((o * g.kh + ky) * g.kw + kx) * cin + c)];
              }
            }
          y[static_cast<std::size_t>(((n * g.OH + oy) * g.OW + ox) * g.O + o)] =
              ref::requant(acc, rq.m[static_cast<std::size_t>(o)], rq.s[static_cast<std::size_t>(o)], qo.zero_point,
                           act.first, act.second);
        }
  return y;
}

template <class T>
std::vector<T> values(const kiln::Tensor<T>& t) {
  return std::vector<T>(t.begin(), t.end());
}

void check_bytes(const kiln::Tensor<std::int8_t>& got, const std::vector<std::int8_t>& want, const char* what) {
  INFO(what);
  REQUIRE(static_cast<std::size_t>(got.size()) == want.size());
  index_t bad = 0, first = -1;
  for (index_t i = 0; i < got.size(); ++i)
    if (got[i] != want[static_cast<std::size_t>(i)]) {
      if (first < 0) first = i;
      ++bad;
    }
  INFO("first mismatch at " << first);
  CHECK(bad == 0);
}

// Not all outputs saturated: the data exercise the requantisation, not just the clamp.
void check_spread(const std::vector<std::int8_t>& y) {
  int lo = 127, hi = -128;
  for (auto v : y) {
    lo = std::min<int>(lo, v);
    hi = std::max<int>(hi, v);
  }
  CHECK(hi - lo > 20);
}

using kt::error_of;

}  // namespace

TEST_CASE("quantize, qlinear (per-channel and per-tensor, bias, relu) and dequantize: compile == eager == reference") {
  ref::Rng rng(11);
  const index_t B = 3, K = 37, N = 13;
  const QuantParams qx{0.031f, -7}, qo{0.27f, 5};
  const auto w = rng.int8s(static_cast<std::size_t>(N * K), -127, 127);
  std::vector<float> ws;
  for (index_t n = 0; n < N; ++n) ws.push_back(0.002f + 0.0007f * static_cast<float>(n));
  const auto bias = rng.int32s(static_cast<std::size_t>(N), -3000, 3000);
  const kiln::Tensor<std::int8_t> W = from(w, {N, K});
  const kiln::Tensor<float> S = from(ws, {N}), S1 = from(std::vector<float>{0.004f}, {1});
  const kiln::Tensor<std::int32_t> Bi = from(bias, {N});
  const kiln::Tensor<float> x = random_floats({B, K}, 5, -4.f, 4.f);

  auto model = [&](const auto& in) {
    auto q = kiln::quantize(in, qx);
    auto y = kiln::qlinear(q, W, S, Bi, qo, kiln::FusedActivation::relu());
    return std::make_tuple(q, y, kiln::dequantize(y));
  };
  auto net = kiln::compile(model);
  const auto [cq, cy, cd] = net(x);
  const auto [eq, ey, ed] = kiln::eager(model)(x);

  std::vector<std::int8_t> xq;
  for (float v : x) xq.push_back(ref_quantize(v, qx));
  const auto want = ref_fc(xq, qx, B, K, w, ws, bias, N, qo, act_bounds(qo, kiln::EwFn::relu));
  check_bytes(cq, xq, "compiled quantize");
  check_bytes(eq, xq, "eager quantize");
  check_bytes(cy, want, "compiled qlinear");
  check_bytes(ey, want, "eager qlinear");
  check_spread(want);
  REQUIRE(cd.size() == B * N);
  for (index_t i = 0; i < cd.size(); ++i) {
    CHECK(cd[i] == qo.scale * static_cast<float>(want[static_cast<std::size_t>(i)] - qo.zero_point));
    CHECK(ed[i] == cd[i]);
  }
  CHECK(net.stats().kernels == 3);  // quantize, qlinear, dequantize
  std::ostringstream printed;
  net.print_graph(printed);
  net.print_plan(printed);
  INFO(printed.str());
  CHECK(printed.str().find("qlinear relu -> 0.27,5") != std::string::npos);
  CHECK(printed.str().find("int8 over [3, 13]: nodes") != std::string::npos);
  CHECK(printed.str().find("requantised per channel, output clamp [5, 127]") != std::string::npos);

  // Per-tensor scale, no bias, batch dims [2, 3], clamp activation.
  auto per_tensor = [&](const auto& in) {
    return kiln::qlinear(kiln::quantize(in, qx), W, S1, qo, kiln::FusedActivation::clamp(-1.5f, 2.f));
  };
  const kiln::Tensor<float> x3 = random_floats({2, 3, K}, 6, -4.f, 4.f);
  std::vector<std::int8_t> xq3;
  for (float v : x3) xq3.push_back(ref_quantize(v, qx));
  const auto want3 = ref_fc(xq3, qx, 6, K, w, {0.004f}, {}, N, qo, act_bounds(qo, kiln::EwFn::clamp, -1.5f, 2.f));
  auto net3 = kiln::compile(per_tensor);
  const auto c3 = net3(x3);
  CHECK(c3.shape() == Shape{2, 3, N});
  check_bytes(c3, want3, "compiled qlinear, per-tensor scale, clamp");
  check_bytes(kiln::eager(per_tensor)(x3), want3, "eager qlinear, per-tensor scale, clamp");
}

TEST_CASE("qconv2d (stride, SAME padding, dilation; depthwise with multiplier) on an int8 model input") {
  ref::Rng rng(23);
  const QuantParams qx{0.05f, 9}, q1{0.11f, -20}, q2{0.09f, 3};
  // conv 3x3 stride 2 SAME, 5 -> 7 channels, relu6; then depthwise 3x3 dilation 2, multiplier 3,
  // explicit padding (1, 2, 2, 0), per-tensor scale, no bias.
  const index_t N = 2, H = 9, Wd = 11, C = 5, O = 7, M = 3;
  const auto w1 = rng.int8s(static_cast<std::size_t>(O * 3 * 3 * C), -127, 127);
  const auto b1 = rng.int32s(static_cast<std::size_t>(O), -2000, 2000);
  std::vector<float> s1;
  for (index_t o = 0; o < O; ++o) s1.push_back(0.003f + 0.001f * static_cast<float>(o % 4));
  const auto w2 = rng.int8s(static_cast<std::size_t>(O * M * 3 * 3), -127, 127);
  const std::vector<float> s2{0.006f};
  const kiln::Tensor<std::int8_t> W1 = from(w1, {O, 3, 3, C}), W2 = from(w2, {O * M, 3, 3, 1});
  const kiln::Tensor<float> S1 = from(s1, {O}), S2 = from(s2, {1});
  const kiln::Tensor<std::int32_t> B1 = from(b1, {O});
  const auto xv = rng.int8s(static_cast<std::size_t>(N * H * Wd * C));
  const kiln::Tensor<std::int8_t> x = from(xv, {N, H, Wd, C});

  const auto opts1 = kiln::Conv2dOptions().with_stride(2).with_padding(kiln::Padding2d::same());
  const auto opts2 = kiln::Conv2dOptions().with_dilation(2).with_groups(static_cast<int>(O)).with_padding(
      kiln::Padding2d::sides(1, 2, 2, 0));
  auto model = [&](const auto& in) {
    auto a = kiln::qconv2d(kiln::as_quantized(in, qx), W1, S1, B1, q1, opts1, kiln::FusedActivation::relu6());
    return std::make_tuple(a, kiln::qconv2d(a, W2, S2, q2, opts2));
  };
  auto net = kiln::compile(model);
  const auto [c1, c2] = net(x);
  const auto [e1, e2] = kiln::eager(model)(x);

  // SAME for 9x11 stride 2, kernel 3: out 5x6, padding (1, 1) rows and (1, 1) columns... computed
  // here from TF's formula, independently of the front-end.
  auto same = [](index_t in, index_t k, index_t s, index_t& before) {
    const index_t out = (in + s - 1) / s;
    const index_t total = std::max<index_t>((out - 1) * s + k - in, 0);
    before = total / 2;
    return out;
  };
  ConvGeo g1{N, H, Wd, C, O, 3, 3, 2, 2, 0, 0, 1, 1, 0, 0, 1};
  g1.OH = same(H, 3, 2, g1.pt);
  g1.OW = same(Wd, 3, 2, g1.pl);
  const auto want1 = ref_conv(g1, xv, qx, w1, s1, b1, q1, act_bounds(q1, kiln::EwFn::relu6));
  check_bytes(c1, want1, "compiled conv 3x3/2 SAME relu6");
  check_bytes(e1, want1, "eager conv 3x3/2 SAME relu6");
  check_spread(want1);
  ConvGeo g2{N, g1.OH, g1.OW, O, O * M, 3, 3, 1, 1, 1, 2, 2, 2, 0, 0, O};
  g2.OH = g1.OH + 1 + 2 - 4;
  g2.OW = g1.OW + 2 + 0 - 4;
  const auto want2 = ref_conv(g2, want1, q1, w2, s2, {}, q2, {-128, 127});
  CHECK(c2.shape() == Shape{N, g2.OH, g2.OW, O * M});
  check_bytes(c2, want2, "compiled depthwise x3 dilation 2");
  check_bytes(e2, want2, "eager depthwise x3 dilation 2");
  check_spread(want2);

  // A depthwise weight given in TFLite's layout [1, kh, kw, C*m] and permuted to OHWI: a view, no
  // copy in the graph; the same bytes result.
  std::vector<std::int8_t> w2t(w2.size());
  for (index_t o = 0; o < O * M; ++o)
    for (index_t k = 0; k < 9; ++k) w2t[static_cast<std::size_t>(k * O * M + o)] = w2[static_cast<std::size_t>(o * 9 + k)];
  const kiln::Tensor<std::int8_t> W2t = from(w2t, {1, 3, 3, O * M});
  auto tfl = [&](const auto& in) {
    return kiln::qconv2d(kiln::as_quantized(in, q1), kiln::permute(W2t, {3, 1, 2, 0}), S2, q2, opts2);
  };
  const kiln::Tensor<std::int8_t> a = from(want1, {N, g1.OH, g1.OW, O});
  check_bytes(kiln::compile(tfl)(a), want2, "compiled depthwise, TFLite-layout weight through a permute view");
  check_bytes(kiln::eager(tfl)(a), want2, "eager depthwise, TFLite-layout weight through a permute view");
}

TEST_CASE("qconv2d with groups (neither 1 nor depthwise): per-group kernel calls on channel slices") {
  ref::Rng rng(29);
  const QuantParams qx{0.06f, -5}, qo{0.13f, 4};
  const index_t N = 2, H = 7, Wd = 8, C = 6, O = 9, G = 3;
  const auto w = rng.int8s(static_cast<std::size_t>(O * 3 * 3 * (C / G)), -127, 127);
  const auto bias = rng.int32s(static_cast<std::size_t>(O), -1500, 1500);
  std::vector<float> ws;
  for (index_t o = 0; o < O; ++o) ws.push_back(0.004f + 0.0005f * static_cast<float>(o));
  const kiln::Tensor<std::int8_t> W = from(w, {O, 3, 3, C / G});
  const kiln::Tensor<float> S = from(ws, {O});
  const kiln::Tensor<std::int32_t> B = from(bias, {O});
  const auto xv = rng.int8s(static_cast<std::size_t>(N * H * Wd * C));
  const kiln::Tensor<std::int8_t> x = from(xv, {N, H, Wd, C});
  const auto opts = kiln::Conv2dOptions().with_groups(3).with_stride(1, 2).with_padding(kiln::Padding2d::sides(1, 0, 1, 1));
  auto model = [&](const auto& in) {
    return kiln::qconv2d(kiln::as_quantized(in, qx), W, S, B, qo, opts, kiln::FusedActivation::clamp(-3.f, 9.f));
  };
  ConvGeo g{N, H, Wd, C, O, 3, 3, 1, 2, 1, 1, 1, 1, 0, 0, G};
  g.OH = H + 1 - 3 + 1;
  g.OW = (Wd + 2 - 3) / 2 + 1;
  const auto want = ref_conv(g, xv, qx, w, ws, bias, qo, act_bounds(qo, kiln::EwFn::clamp, -3.f, 9.f));
  const auto c = kiln::compile(model)(x);
  CHECK(c.shape() == Shape{N, g.OH, g.OW, O});
  check_bytes(c, want, "compiled grouped conv");
  check_bytes(kiln::eager(model)(x), want, "eager grouped conv");
  check_spread(want);
}

TEST_CASE("int8 pools, broadcasting qadd, qsoftmax over a strided view") {
  ref::Rng rng(37);
  const QuantParams qx{0.07f, -4}, qy{0.05f, 11}, qs{0.12f, -2};
  const index_t N = 2, H = 7, Wd = 6, C = 9;
  const auto xv = rng.int8s(static_cast<std::size_t>(N * H * Wd * C));
  const auto yv = rng.int8s(static_cast<std::size_t>(C));
  const kiln::Tensor<std::int8_t> x = from(xv, {N, H, Wd, C}), y = from(yv, {C});

  const auto pool = kiln::Pool2dOptions(3).with_stride(2).with_padding(kiln::Padding2d::symmetric(1, 1));
  auto model = [&](const auto& in, const auto& bias) {
    auto a = kiln::as_quantized(in, qx);
    auto mx = kiln::qmax_pool2d(a, pool);                                              // [2, 4, 3, 9]
    auto av = kiln::qavg_pool2d(a, pool, kiln::FusedActivation::relu());               // [2, 4, 3, 9]
    auto s = kiln::qadd(mx, kiln::as_quantized(bias, qy), qs);                         // broadcast [9]
    auto sm = kiln::qsoftmax(kiln::permute(s, {0, 3, 2, 1}), 0.8f);                    // strided input
    return std::make_tuple(mx, av, s, sm);
  };
  auto net = kiln::compile(model);
  const auto [cmx, cav, cs, csm] = net(x, y);
  const auto [emx, eav, es, esm] = kiln::eager(model)(x, y);

  const index_t OH = 4, OW = 3;
  std::vector<std::int8_t> wmx, wav;
  const auto relu = act_bounds(qx, kiln::EwFn::relu);
  for (index_t n = 0; n < N; ++n)
    for (index_t oy = 0; oy < OH; ++oy)
      for (index_t ox = 0; ox < OW; ++ox)
        for (index_t c = 0; c < C; ++c) {
          int best = -128;
          i64 sum = 0, count = 0;
          for (index_t ky = 0; ky < 3; ++ky)
            for (index_t kx = 0; kx < 3; ++kx) {
              const index_t iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
              if (iy < 0 || iy >= H || ix < 0 || ix >= Wd) continue;
              const int v = xv[static_cast<std::size_t>(((n * H + iy) * Wd + ix) * C + c)];
              best = std::max(best, v);
              sum += v;
              ++count;
            }
          wmx.push_back(static_cast<std::int8_t>(best));
          // round half away from zero: sign(sum) * floor((|sum| + count / 2) / count)
          const i64 mag = (std::abs(sum) + count / 2) / count;
          wav.push_back(ref::clamp8(sum < 0 ? -mag : mag, relu.first, relu.second));
        }
  check_bytes(cmx, wmx, "compiled max pool");
  check_bytes(emx, wmx, "eager max pool");
  check_bytes(cav, wav, "compiled avg pool + relu");
  check_bytes(eav, wav, "eager avg pool + relu");

  // qadd: TFLite's ADD with the multipliers make_add_params derives, spelled out per element.
  const auto p = kiln::kernels::int8::make_add_params({qx.scale, qx.zero_point}, {qy.scale, qy.zero_point},
                                                      {qs.scale, qs.zero_point}, {});
  std::vector<std::int8_t> wadd;
  for (std::size_t i = 0; i < wmx.size(); ++i) {
    const std::int32_t x1 = (wmx[i] + p.input1_offset) * (1 << p.left_shift);
    const std::int32_t x2 = (yv[i % static_cast<std::size_t>(C)] + p.input2_offset) * (1 << p.left_shift);
    const std::int32_t s1 = ref::rdbpot(ref::srdhm(x1, p.input1_multiplier), -p.input1_shift);
    const std::int32_t s2 = ref::rdbpot(ref::srdhm(x2, p.input2_multiplier), -p.input2_shift);
    wadd.push_back(ref::clamp8(i64{ref::rdbpot(ref::srdhm(s1 + s2, p.output_multiplier), -p.output_shift)} + qs.zero_point,
                               -128, 127));
  }
  check_bytes(cs, wadd, "compiled qadd broadcast");
  check_bytes(es, wadd, "eager qadd broadcast");
  check_spread(wadd);

  // qsoftmax of the permuted [2, 9, 3, 4] view: the kernel on a dense copy, beta 0.8.
  std::vector<std::int8_t> perm(wadd.size()), wsm(wadd.size());
  for (index_t n = 0; n < N; ++n)
    for (index_t c = 0; c < C; ++c)
      for (index_t ox = 0; ox < OW; ++ox)
        for (index_t oy = 0; oy < OH; ++oy)
          perm[static_cast<std::size_t>(((n * C + c) * OW + ox) * OH + oy)] =
              wadd[static_cast<std::size_t>(((n * OH + oy) * OW + ox) * C + c)];
  const Shape ps{N, C, OW, OH};
  REQUIRE(kiln::kernels::int8::softmax(kiln::kernels::int8::make_softmax_params(0.8f, qs.scale), ps, perm.data(), ps,
                                       wsm.data())
              .ok());
  CHECK(csm.shape() == ps);
  check_bytes(csm, wsm, "compiled qsoftmax of a permuted view");
  check_bytes(esm, wsm, "eager qsoftmax of a permuted view");
}

TEST_CASE("a mixed float/int8 graph: float chains around int8 ops, planned and run") {
  ref::Rng rng(41);
  const index_t B = 5, K = 19, N = 11;
  const QuantParams qx{0.04f, -3}, qo{0.15f, 2};
  const auto w = rng.int8s(static_cast<std::size_t>(N * K), -127, 127);
  std::vector<float> ws(static_cast<std::size_t>(N), 0.01f);
  const kiln::Tensor<std::int8_t> W = from(w, {N, K});
  const kiln::Tensor<float> S = from(ws, {N});
  const kiln::Tensor<float> x = random_floats({B, K}, 9, -2.f, 2.f);

  auto model = [&](const auto& in) {
    auto pre = kiln::relu(in * 2.f + 1.f);
    auto q = kiln::qlinear(kiln::quantize(pre, qx), W, S, qo);
    auto d = kiln::dequantize(q);
    return std::make_tuple(q, kiln::sigmoid(d) * 3.f - d);
  };
  auto net = kiln::compile(model);
  const auto [cq, cf] = net(x);
  const auto [eq, ef] = kiln::eager(model)(x);
  // float chain with the quantize stored as i8 by its program (fusion rule 6), qlinear, dequantize,
  // float chain
  CHECK(net.stats().kernels == 4);

  std::vector<std::int8_t> xq;
  for (float v : x) xq.push_back(ref_quantize(std::max(v * 2.f + 1.f, 0.f), qx));
  const auto want = ref_fc(xq, qx, B, K, w, ws, {}, N, qo, {-128, 127});
  check_bytes(cq, want, "compiled qlinear in a mixed graph");
  check_bytes(eq, want, "eager qlinear in a mixed graph");
  for (index_t i = 0; i < cf.size(); ++i) {
    const double d = qo.scale * (want[static_cast<std::size_t>(i)] - qo.zero_point);
    const double expect = 3.0 / (1.0 + std::exp(-d)) - d;
    CHECK(std::fabs(cf[i] - expect) <= 1e-5 + 1e-5 * std::fabs(expect));
    CHECK(std::fabs(ef[i] - cf[i]) <= 1e-6 + 1e-6 * std::fabs(cf[i]));
  }
  // The i8 value is 1 byte per element in the arena, and the float [5, 19] input of the quantize
  // never reaches memory (the quantize is stored straight from the float chain's registers): the
  // most live at once is the dequantized [5, 11] f32 value (each slot 64-byte aligned).
  CHECK(net.stats().lower_bound == std::max(kiln::align_up(std::size_t{B * K}), kiln::align_up(std::size_t{B * N * 4})));
}

TEST_CASE("quantize of an i8 value requantises (TFLite's int8 -> int8 QUANTIZE)") {
  ref::Rng rng(43);
  const QuantParams qa{0.037f, -11}, qb{0.011f, 20};
  const auto xv = rng.int8s(97);
  const kiln::Tensor<std::int8_t> x = from(xv, {97});
  auto model = [&](const auto& in) { return kiln::quantize(kiln::as_quantized(in, qa), qb); };
  const auto qm = kiln::quant::quantize_multiplier(static_cast<double>(qa.scale) / qb.scale);
  std::vector<std::int8_t> want;
  for (auto v : xv) want.push_back(ref::clamp8(i64{ref::mbqm(v - qa.zero_point, qm.multiplier, qm.shift)} + qb.zero_point, -128, 127));
  check_bytes(kiln::compile(model)(x), want, "compiled requantize");
  check_bytes(kiln::eager(model)(x), want, "eager requantize");
  check_spread(want);
}

TEST_CASE("int8 errors: run-time weights in compile(), bad scales, plain int8 tensors") {
  const kiln::Tensor<std::int8_t> W({4, 6});
  const kiln::Tensor<float> S = from(std::vector<float>{0.1f, 0.1f, -0.1f, 0.1f}, {4});
  const kiln::Tensor<float> x({2, 6});
  const QuantParams q{0.1f, 0};

  const std::string bad_scale = error_of([&] {
    (void)kiln::compile([&](const auto& in) { return kiln::qlinear(kiln::quantize(in, q), W, S, q); })(x);
  });
  CHECK(bad_scale.find("qlinear: weight scale 2 is not a positive finite number") != std::string::npos);

  const std::string runtime_w = error_of([&] {
    (void)kiln::compile([&](const auto& in, const auto& w) {
      return kiln::qlinear(kiln::quantize(in, q), kiln::as_quantized(w, q), kiln::Tensor<float>(Shape{4}), q);
    })(x, W);
  });
  CHECK(runtime_w.find("qlinear: compile() needs the weight [4, 6]") != std::string::npos);

  // A plain Tensor<int8_t> has no quantisation: the op outside kiln::eager/compile says so.
  const std::string plain = error_of([&] { (void)kiln::dequantize(W); });
  CHECK(plain.find("dequantize: input 0 [4, 6] (i8) has no valid quantisation") != std::string::npos);
}
