// x86 runtime dispatch (kiln::dispatch, cmake/KilnDispatch.cmake): one generic x86-64 binary holding
// the engine three times (SSE2, AVX2+FMA, scalar), one chosen at run time.
//   - the three engines are different builds: each table reports its arch from inside its own TU,
//     and an inline function of each engine (the ODR check) still answers for its own arch;
//   - the default engine is the best this CPU has (checked with the compiler's own CPUID builtins,
//     not xsimd's), and KILN_ARCH forces one (ctest runs this binary again with KILN_ARCH=sse2 and
//     KILN_ARCH=scalar);
//   - under every engine the CPU can run, compiled and eager f32 models (GEMM + bias + ReLU, 3x3 conv
//     + bias + ReLU6, depthwise, pools, an elementwise chain with broadcasting, softmax, sum) match
//     naive loops written here, and int8 models give the same bytes as the scalar engine;
//   - a plan keeps the engine that built it; accelerator offload is refused with a Status.
// Tolerances (|got - want| <= abs + rel * |want|, double references): GEMM/conv sums of <= 45 products
// of values in [-2, 2] in another order (and unfused mul+add on SSE2): abs 1e-4, rel 1e-5; pools:
// 1e-6 (avg divides); exp/tanh/sigmoid chain: 4e-6 (exp 1 ulp, tanh 2 ulp in xsimd, sigmoid built
// from exp); softmax and sum: 1e-5.
#include <doctest/doctest.h>

#include <kiln/dispatch.hpp>
#include <kiln/dispatch/engine_table.hpp>
#include <kiln/kiln.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "accel_reference_backend.hpp"
#include "test_util.hpp"

namespace {

using kiln::index_t;
using kiln::Shape;
using kiln::Tensor;
using kt::Tol;

std::vector<std::string> runnable_arches() {
  std::vector<std::string> r;
  for (int i = 0; i < kiln::dispatch::num_arches(); ++i)
    if (kiln::dispatch::cpu_supports(kiln::dispatch::arch_name(i))) r.emplace_back(kiln::dispatch::arch_name(i));
  return r;
}

/// Selects `arch` for one test case's body, restoring the previous engine afterwards.
struct UseArch {
  std::string saved = kiln::dispatch::current_arch();
  explicit UseArch(const std::string& arch) {
    const kiln::Status s = kiln::dispatch::set_arch(arch.c_str());
    REQUIRE_MESSAGE(s.ok(), s.message());
    REQUIRE(std::string(kiln::dispatch::current_arch()) == arch);
  }
  ~UseArch() { (void)kiln::dispatch::set_arch(saved.c_str()); }
};

// ---- naive references ------------------------------------------------------------------------
std::vector<double> ref_linear_relu(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& b) {
  const index_t M = x.shape()[0], K = x.shape()[1], N = w.shape()[0];
  std::vector<double> y(static_cast<std::size_t>(M * N));
  for (index_t i = 0; i < M; ++i)
    for (index_t j = 0; j < N; ++j) {
      double s = b[j];
      for (index_t k = 0; k < K; ++k) s += static_cast<double>(x[i * K + k]) * w[j * K + k];
      y[static_cast<std::size_t>(i * N + j)] = std::max(s, 0.0);
    }
  return y;
}

/// NHWC x, OHWI w (in_c / groups per group), symmetric padding `pad`, then clamp to [lo, hi].
std::vector<double> ref_conv(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>* b, int stride, int pad,
                             int groups, double lo, double hi) {
  const index_t N = x.shape()[0], H = x.shape()[1], W = x.shape()[2], C = x.shape()[3];
  const index_t O = w.shape()[0], KH = w.shape()[1], KW = w.shape()[2], CG = w.shape()[3];
  const index_t OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1, OG = O / groups;
  std::vector<double> y;
  for (index_t n = 0; n < N; ++n)
    for (index_t oh = 0; oh < OH; ++oh)
      for (index_t ow = 0; ow < OW; ++ow)
        for (index_t o = 0; o < O; ++o) {
          double s = b ? (*b)[o] : 0.0;
          const index_t g = o / OG;
          for (index_t kh = 0; kh < KH; ++kh)
            for (index_t kw = 0; kw < KW; ++kw) {
              const index_t ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (index_t c = 0; c < CG; ++c)
                s += static_cast<double>(x[((n * H + ih) * W + iw) * C + g * CG + c]) * w[((o * KH + kh) * KW + kw) * CG + c];
            }
          y.push_back(std::min(std::max(s, lo), hi));
        }
  return y;
}

/// k x k pool, stride s, no padding: max or average.
std::vector<double> ref_pool(const Tensor<float>& x, int k, int s, bool max) {
  const index_t N = x.shape()[0], H = x.shape()[1], W = x.shape()[2], C = x.shape()[3];
  std::vector<double> y;
  for (index_t n = 0; n < N; ++n)
    for (index_t oh = 0; oh + k <= H; oh += s)
      for (index_t ow = 0; ow + k <= W; ow += s)
        for (index_t c = 0; c < C; ++c) {
          double acc = max ? -1e300 : 0.0;
          for (int i = 0; i < k; ++i)
            for (int j = 0; j < k; ++j) {
              const double v = x[((n * H + oh + i) * W + ow + j) * C + c];
              acc = max ? std::max(acc, v) : acc + v;
            }
          y.push_back(max ? acc : acc / (k * k));
        }
  return y;
}

Tensor<float> random_weights(const Shape& s, std::uint32_t seed) { return kt::random_tensor(s, seed, -0.5f, 0.5f); }

}  // namespace

TEST_CASE("dispatch: the three engines are different builds, each reporting its own arch (ODR check)") {
  using kiln::dispatch::EngineTable;
  struct Want {
    const EngineTable& t;
    const char* name;
    const char* simd;
    int lanes;
  };
  const Want want[] = {{kiln::dispatch::engine_sse2(), "sse2", "sse2", 4},
                       {kiln::dispatch::engine_avx2(), "avx2", "fma3+avx2", 8},
                       {kiln::dispatch::engine_scalar(), "scalar", "scalar", 1}};
  for (const Want& w : want) {
    INFO("engine " << std::string(w.name));
    CHECK(std::string(w.t.name) == w.name);
    CHECK(std::string(w.t.simd_name) == w.simd);  // kernels::kSimdName inside that TU
    CHECK(w.t.lanes == w.lanes);
    // An inline function of that engine, called through its table: had the linker merged the
    // arch copies (same mangled name), two engines would answer with the same lanes.
    CHECK(w.t.probe_lanes() == w.lanes);
    CHECK(w.t.node_size == sizeof(kiln::Node));
    CHECK(w.t.graph_size == sizeof(kiln::Graph));
  }
  CHECK(kiln::dispatch::num_arches() == 3);
  CHECK(std::string(kiln::dispatch::arch_name(0)) == "avx2");
  CHECK(kiln::dispatch::arch_name(3) == nullptr);
}

TEST_CASE("dispatch: the default engine is the best this CPU has; KILN_ARCH forces one") {
  // The compiler's CPUID builtins, independent of the xsimd detection the dispatcher uses.
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const std::string best = avx2 ? "avx2" : "sse2";
  CHECK(kiln::dispatch::best_arch() == best);
  CHECK(kiln::dispatch::cpu_supports("avx2") == avx2);
  CHECK(kiln::dispatch::cpu_supports("sse2"));
  CHECK(kiln::dispatch::cpu_supports("scalar"));
  CHECK_FALSE(kiln::dispatch::cpu_supports("avx512"));
  const char* env = std::getenv("KILN_ARCH");
  const std::string expected = env && kiln::dispatch::cpu_supports(env) ? env : best;
  // Nothing has selected an engine yet in this process (doctest runs the cases in file order).
  CHECK(kiln::dispatch::current_arch() == expected);
  CHECK(kiln::dispatch::current_lanes() == (expected == "avx2" ? 8 : expected == "sse2" ? 4 : 1));
  MESSAGE("CPU best: " << best << "; running " << std::string(kiln::dispatch::current_arch()) << " ("
                       << std::string(kiln::dispatch::current_simd_name()) << ")");
}

TEST_CASE("dispatch: set_arch errors name the function, the arch and what the CPU runs") {
  const std::string before = kiln::dispatch::current_arch();
  const kiln::Status s = kiln::dispatch::set_arch("avx512");
  CHECK_FALSE(s.ok());
  const std::string m = s.message();
  CHECK(m.find("dispatch::set_arch") != std::string::npos);
  CHECK(m.find("'avx512'") != std::string::npos);
  CHECK(m.find("not an engine of this build") != std::string::npos);
  CHECK(m.find("sse2") != std::string::npos);
  CHECK_FALSE(kiln::dispatch::set_arch(nullptr).ok());
  CHECK(kiln::dispatch::current_arch() == before);  // a failed set_arch changes nothing
}

TEST_CASE("dispatch: compiled and eager f32 models match naive loops under every engine the CPU runs") {
  const Tensor<float> x = kt::random_tensor({67, 45}, 1);
  const Tensor<float> w = random_weights({131, 45}, 2), b = random_weights({131}, 3);
  const Tensor<float> img = kt::random_tensor({2, 9, 11, 5}, 4);
  const Tensor<float> cw = random_weights({7, 3, 3, 5}, 5), cb = random_weights({7}, 6);
  const Tensor<float> dw = random_weights({5, 3, 3, 1}, 7);
  const Tensor<float> e1 = kt::random_tensor({13, 37}, 8), e2 = kt::random_tensor({1, 37}, 9);

  auto mlp = [&](const auto& in) { return kiln::relu(kiln::linear(in, w, b)); };
  auto conv = [&](const auto& in) {
    return kiln::relu6(kiln::conv2d(in, cw, cb, kiln::Conv2dOptions().with_padding(kiln::Padding2d::same())));
  };
  auto depthwise = [&](const auto& in) {
    return kiln::conv2d(in, dw, kiln::Conv2dOptions().with_stride(2).with_groups(5));
  };
  auto pools = [](const auto& in) {
    return std::make_tuple(kiln::max_pool2d(in, kiln::Pool2dOptions(3).with_stride(2)), kiln::avg_pool2d(in, 2));
  };
  auto chain = [](const auto& a, const auto& c) { return kiln::tanh(a) * kiln::sigmoid(c) + kiln::exp(a * 0.5f); };
  auto reductions = [](const auto& a) { return std::make_tuple(kiln::softmax(a, -1), kiln::sum(a, 0)); };

  const auto want_mlp = ref_linear_relu(x, w, b);
  const auto want_conv = ref_conv(img, cw, &cb, 1, 1, 1, 0.0, 6.0);
  const auto want_dw = ref_conv(img, dw, nullptr, 2, 0, 5, -1e300, 1e300);
  const auto want_max = ref_pool(img, 3, 2, true), want_avg = ref_pool(img, 2, 2, false);
  std::vector<double> want_chain, want_softmax, want_sum(37, 0.0);
  for (index_t i = 0; i < 13; ++i) {
    double mx = -1e300, z = 0;
    for (index_t j = 0; j < 37; ++j) mx = std::max(mx, static_cast<double>(e1[i * 37 + j]));
    for (index_t j = 0; j < 37; ++j) z += std::exp(e1[i * 37 + j] - mx);
    for (index_t j = 0; j < 37; ++j) {
      const double a = e1[i * 37 + j], c = e2[j];
      want_chain.push_back(std::tanh(a) / (1 + std::exp(-c)) + std::exp(a * 0.5));
      want_softmax.push_back(std::exp(a - mx) / z);
      want_sum[static_cast<std::size_t>(j)] += a;
    }
  }
  const Tol gemm{1e-4, 1e-5}, pool{1e-6, 1e-6}, math{4e-6, 4e-6}, reduce{1e-5, 1e-5};

  for (const std::string& arch : runnable_arches()) {
    INFO("engine " << arch);
    UseArch use(arch);
    for (bool eager : {false, true}) {
      INFO((eager ? "eager" : "compiled"));
      auto run = [&](auto model, const auto&... in) {
        return eager ? kiln::eager(model)(in...) : kiln::compile(model)(in...);
      };
      kt::check_close(run(mlp, x), want_mlp, gemm, "linear + bias + relu");
      kt::check_close(run(conv, img), want_conv, gemm, "conv2d 3x3 same + bias + relu6");
      kt::check_close(run(depthwise, img), want_dw, gemm, "depthwise 3x3 stride 2");
      const auto [mp, ap] = run(pools, img);
      kt::check_close(mp, want_max, pool, "max_pool2d 3x3 stride 2");
      kt::check_close(ap, want_avg, pool, "avg_pool2d 2x2");
      kt::check_close(run(chain, e1, e2), want_chain, math, "tanh * sigmoid + exp, broadcast");
      const auto [sm, su] = run(reductions, e1);
      kt::check_close(sm, want_softmax, reduce, "softmax");
      kt::check_close(su, want_sum, reduce, "sum over axis 0");
    }
  }
}

TEST_CASE("dispatch: int8 models give the same bytes under every engine (compiled and eager)") {
  const kiln::QuantParams qx{0.031f, -7}, q1{0.05f, 3}, q2{0.27f, 5};
  Tensor<std::int8_t> img({2, 8, 9, 6}), w1({11, 3, 3, 6}), w2({4, 11});
  std::uint32_t r = 12345;
  auto next8 = [&r]() {
    r = r * 1664525u + 1013904223u;
    return static_cast<std::int8_t>(static_cast<int>(r >> 24) - 128);
  };
  for (auto* t : {&img, &w1, &w2})
    for (std::int8_t& v : *t) v = next8();
  Tensor<float> s1({11}), s2({1});
  for (index_t i = 0; i < 11; ++i) s1[i] = 0.001f + 0.0003f * static_cast<float>(i);
  s2[0] = 0.004f;
  auto model = [&](const auto& in) {
    auto a = kiln::qconv2d(kiln::as_quantized(in, qx), w1, s1, q1,
                           kiln::Conv2dOptions().with_padding(kiln::Padding2d::same()), kiln::FusedActivation::relu());
    auto p = kiln::qmax_pool2d(a, 2);
    return kiln::qlinear(kiln::reshape(p, {-1, 11}), w2, s2, q2);
  };
  std::vector<std::int8_t> reference;  // the scalar engine's bytes
  {
    UseArch use("scalar");
    const Tensor<std::int8_t> y = kiln::compile(model)(img);
    reference.assign(y.begin(), y.end());
    int distinct = 0;
    for (std::int8_t v : reference) distinct += v != reference[0];
    REQUIRE(distinct > 0);  // not a constant output
  }
  for (const std::string& arch : runnable_arches()) {
    INFO("engine " << arch);
    UseArch use(arch);
    const Tensor<std::int8_t> c = kiln::compile(model)(img), e = kiln::eager(model)(img);
    REQUIRE(static_cast<std::size_t>(c.size()) == reference.size());
    CHECK(std::equal(c.begin(), c.end(), reference.begin()));
    CHECK(std::equal(e.begin(), e.end(), reference.begin()));
  }
}

TEST_CASE("dispatch: a plan keeps the engine that built it; reset() re-plans with the selected one") {
  if (!kiln::dispatch::cpu_supports("avx2")) return;  // needs two SIMD engines
  const Tensor<float> x = kt::random_tensor({67, 45}, 21);
  const Tensor<float> w = random_weights({131, 45}, 22), b = random_weights({131}, 23);
  auto net = kiln::compile([&](const auto& in) { return kiln::linear(in, w, b); });
  Tensor<float> y_sse2, y_again, y_avx2;
  {
    UseArch use("sse2");
    y_sse2 = net(x);
  }
  {
    UseArch use("avx2");
    y_again = net(x);  // still the SSE2 plan
    net.reset();
    y_avx2 = net(x);  // planned by the AVX2 engine
  }
  CHECK(std::memcmp(y_sse2.data(), y_again.data(), sizeof(float) * static_cast<std::size_t>(y_sse2.size())) == 0);
  // SSE2 rounds after every multiply, AVX2 fuses multiply-add: on 67x131 dot products of 45 terms
  // some results differ in the last bits, so the two engines really ran.
  CHECK(std::memcmp(y_sse2.data(), y_avx2.data(), sizeof(float) * static_cast<std::size_t>(y_sse2.size())) != 0);
  kt::check_close(y_avx2, y_sse2, Tol{1e-4, 1e-5}, "avx2 vs sse2 plan");
}

TEST_CASE("dispatch: the observation plan (CompileOptions::observe) works under every engine") {
  const Tensor<float> x = kt::random_tensor({9, 13}, 31);
  const Tensor<float> w = random_weights({11, 13}, 32), b = random_weights({11}, 33);
  const std::vector<double> want = ref_linear_relu(x, w, b);
  for (const std::string& arch : runnable_arches()) {
    INFO(arch);
    UseArch use(arch);
    kiln::CompileOptions o;
    o.observe = true;
    auto net = kiln::compile([&](const auto& in) { return kiln::relu(kiln::linear(in, w, b)); }, o);
    const Tensor<float> y = net(x);
    REQUIRE(y.size() == static_cast<index_t>(want.size()));
    // Every traced node has a value; the last one is the output, the relu's input is pre-activation.
    const int n = net.executable() ? static_cast<int>(kiln::engine::planned_graph(*net.executable()).size()) : 0;
    REQUIRE(n >= 2);
    const Tensor<float> out = net.observed(n - 1);
    const Tensor<float> pre = net.observed(n - 2);
    REQUIRE(out.size() == y.size());
    REQUIRE(pre.size() == y.size());
    for (index_t i = 0; i < y.size(); ++i) {
      CHECK(out[i] == y[i]);
      CHECK(std::abs(y[i] - want[static_cast<std::size_t>(i)]) <= 1e-5 + 1e-5 * std::abs(want[static_cast<std::size_t>(i)]));
      CHECK((pre[i] > 0.f ? pre[i] : 0.f) == y[i]);
    }
  }
}

TEST_CASE("dispatch: accelerator offload is refused with an error naming compile, never a crash") {
  refdev::Device dev;
  const auto be = refdev::backend(dev);
  kiln::CompileOptions o;
  o.offload = kiln::accel::offload(be, false);
  auto net = kiln::compile([](const auto& in) { return kiln::relu(in); }, o);
  const std::string m = kt::error_of([&] { (void)net(kt::random_tensor({3, 4}, 31)); });
  CHECK(m.find("compile: accelerator offload is not available in a dispatching build") != std::string::npos);
  // The same model without offload runs.
  const Tensor<float> x = kt::random_tensor({3, 4}, 32);
  const Tensor<float> y = kiln::compile([](const auto& in) { return kiln::relu(in); })(x);
  for (index_t i = 0; i < x.size(); ++i) CHECK(y[i] == std::max(x[i], 0.f));
}
