// Tests for kiln/kernels/gemm_m1.hpp (one row of A: the batch-1 layer) against naive loops in
// double: gemv_m1_packed over pack_b's panels, dot_m1 over a contiguous column, and gemm() with
// M = 1 and a prepacked B (which routes to gemv_m1_packed), for N and K in 1..17 and 31..33
// (every panel-group and vector tail of AVX2, SSE, NEON and the scalar twin) plus wider N, with
// and without bias, for each clamp the GEMM epilogue carries (none, ReLU, ReLU6, a general
// clamp), with x dense and strided.
//
// Tolerance: |y - ref| <= 1e-5 * (sum_k |x_k| |w_kj| + |bias_j|) + 1e-6 after the clamp (clamp is
// 1-Lipschitz). Canaries after y catch stores past N.
#include <doctest/doctest.h>

#include <kiln/kernels/gemm.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using kiln::index_t;
using namespace kiln::kernels;

namespace {

constexpr float kCanary = -12345.f;
constexpr index_t kGuard = 40;

float frand(std::uint32_t& s) {
  s = s * 1664525u + 1013904223u;
  return static_cast<float>((s >> 8) & 0xFFFF) / 32768.f - 1.f;  // [-1, 1)
}

struct Clamp {
  const char* name;
  bool on;
  float lo, hi;
};
const Clamp kClamps[] = {{"none", false, 0.f, 0.f},
                         {"relu", true, 0.f, std::numeric_limits<float>::infinity()},
                         {"relu6", true, 0.f, 6.f},
                         {"clamp", true, -0.5f, 0.25f}};

const index_t kSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 32, 33};

struct Case {
  index_t N, K, xs;
  std::vector<float> x, w, bias;  // x[k * xs]; w[k * N + j] (B = K x N, row-major)
  Case(index_t n, index_t k, index_t stride, std::uint32_t seed) : N(n), K(k), xs(stride) {
    x.assign(static_cast<std::size_t>(K * xs), 99.f);  // gaps between strided elements hold junk
    for (index_t i = 0; i < K; ++i) x[static_cast<std::size_t>(i * xs)] = frand(seed);
    w.resize(static_cast<std::size_t>(K * N));
    for (auto& v : w) v = frand(seed);
    bias.resize(static_cast<std::size_t>(N));
    for (auto& v : bias) v = frand(seed);
  }
  // Checks y[0:N) and the canaries after it.
  void check(const std::vector<float>& y, bool with_bias, const Clamp& c, const std::string& what) const {
    for (index_t j = 0; j < N; ++j) {
      double ref = with_bias ? bias[static_cast<std::size_t>(j)] : 0.0;
      double mag = with_bias ? std::fabs(bias[static_cast<std::size_t>(j)]) : 0.0;
      for (index_t k = 0; k < K; ++k) {
        const double p = static_cast<double>(x[static_cast<std::size_t>(k * xs)]) * w[static_cast<std::size_t>(k * N + j)];
        ref += p;
        mag += std::fabs(p);
      }
      if (c.on) ref = ref < c.lo ? c.lo : (ref > c.hi ? c.hi : ref);
      INFO(what << " N=" << N << " K=" << K << " xs=" << xs << " bias=" << with_bias << " clamp=" << c.name
                << " j=" << j);
      CHECK(std::fabs(y[static_cast<std::size_t>(j)] - ref) <= 1e-5 * mag + 1e-6);
    }
    for (index_t j = N; j < N + kGuard; ++j) {
      INFO(what << " canary N=" << N << " K=" << K << " j=" << j);
      CHECK(y[static_cast<std::size_t>(j)] == kCanary);
    }
  }
};

std::vector<float> packed_of(const Case& t) {
  std::vector<float> p(packed_b_size(t.K, t.N) + 16);
  float* aligned = p.data();
  pack_b(t.K, t.N, MatrixRef{t.w.data(), t.N, 1}, aligned);
  return p;
}

}  // namespace

TEST_CASE("gemv_m1_packed and gemm(M = 1, prepacked): N, K tails, bias, every clamp, strided x") {
  std::uint32_t seed = 7;
  std::vector<index_t> ns(std::begin(kSizes), std::end(kSizes));
  for (index_t n : {48, 64, 65, 80, 100}) ns.push_back(n);  // four-panel groups and their tails
  for (index_t N : ns) {
    for (index_t K : kSizes) {
      for (index_t xs : {1, 3}) {
        const Case t(N, K, xs, seed++);
        const std::vector<float> packed = packed_of(t);
        for (bool with_bias : {false, true}) {
          for (const Clamp& c : kClamps) {
            const RowEpilogue ep{with_bias ? t.bias.data() : nullptr, c.on, c.lo, c.hi};
            std::vector<float> y(static_cast<std::size_t>(N + kGuard), kCanary);
            gemv_m1_packed(K, N, t.x.data(), xs, packed.data(), y.data(), ep);
            t.check(y, with_bias, c, "gemv_m1_packed");

            GemmEpilogue gep;
            gep.bias = ep.bias;
            gep.clamp = c.on;
            gep.lo = c.lo;
            gep.hi = c.hi;
            std::vector<float> y2(static_cast<std::size_t>(N + kGuard), kCanary);
            gemm(1, N, K, MatrixRef{t.x.data(), K * xs, xs}, MatrixRef{}, packed.data(), y2.data(), N, gep, nullptr);
            t.check(y2, with_bias, c, "gemm M=1");
          }
        }
      }
    }
  }
}

TEST_CASE("dot_m1: one output over a contiguous weight column; K tails, bias, every clamp, strided x") {
  std::uint32_t seed = 11;
  for (index_t K : kSizes) {
    for (index_t xs : {1, 2}) {
      const Case t(1, K, xs, seed++);
      for (bool with_bias : {false, true}) {
        for (const Clamp& c : kClamps) {
          std::vector<float> y(static_cast<std::size_t>(1 + kGuard), kCanary);
          dot_m1(K, t.x.data(), xs, t.w.data(), y.data(), RowEpilogue{with_bias ? t.bias.data() : nullptr, c.on, c.lo, c.hi});
          t.check(y, with_bias, c, "dot_m1");
        }
      }
    }
  }
  for (index_t K : {64, 100, 257}) {  // several unrolled blocks, then vector and scalar tails
    const Case t(1, K, 1, seed++);
    std::vector<float> y(static_cast<std::size_t>(1 + kGuard), kCanary);
    dot_m1(K, t.x.data(), 1, t.w.data(), y.data(), RowEpilogue{t.bias.data(), false, 0.f, 0.f});
    t.check(y, true, kClamps[0], "dot_m1 long");
  }
}

TEST_CASE("M = 1 kernels: NaN in x propagates through ReLU") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (index_t N : {1, 5, 16, 40}) {
    const index_t K = 9;
    Case t(N, K, 1, 3);
    t.x[4] = nan;
    const std::vector<float> packed = packed_of(t);
    const RowEpilogue relu{t.bias.data(), true, 0.f, std::numeric_limits<float>::infinity()};
    std::vector<float> y(static_cast<std::size_t>(N + kGuard), kCanary);
    gemv_m1_packed(K, N, t.x.data(), 1, packed.data(), y.data(), relu);
    for (index_t j = 0; j < N; ++j) CHECK(std::isnan(y[static_cast<std::size_t>(j)]));
    if (N == 1) {
      dot_m1(K, t.x.data(), 1, t.w.data(), y.data(), relu);
      CHECK(std::isnan(y[0]));
    }
  }
}
