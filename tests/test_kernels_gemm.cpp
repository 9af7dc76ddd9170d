// Tests for kiln/kernels/gemm.hpp against a naive double-accumulation reference.
//
// Tolerance: |C - ref| <= 1e-5 * (sum_k |A(i,k)| |B(k,j)| + |bias_j|) + 1e-6, applied after
// the clamp (clamp is 1-Lipschitz, so the bound carries over). NaNs must match exactly.
// Every call runs with canaries around C (rows before/after, the ldc gap), after the
// workspace and after the packed B buffer, and with garbage in C and the workspace.
#include <doctest/doctest.h>

#include <kiln/kernels/gemm.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using kiln::index_t;
using namespace kiln::kernels;

namespace {

constexpr float kCanary = -12345.f;
constexpr index_t kGuard = 64;  // canary floats after every buffer

float frand(std::uint32_t& s) {
  s = s * 1664525u + 1013904223u;
  return static_cast<float>((s >> 8) & 0xFFFF) / 32768.f - 1.f;  // [-1, 1)
}

enum class Layout { row_major, col_major, strided };

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::row_major: return "row";
    case Layout::col_major: return "col";
    case Layout::strided: return "strided";
  }
  return "?";
}

// A rows x cols matrix stored with the given layout; logical values kept separately.
struct Mat {
  index_t rows = 0, cols = 0;
  std::vector<float> val;      // logical, row-major
  std::vector<float> storage;  // as the kernel sees it
  MatrixRef ref;

  Mat(index_t r, index_t c, Layout l, std::uint32_t seed) : rows(r), cols(c), val(r * c) {
    for (auto& v : val) v = frand(seed);
    index_t rs = 0, cs = 0;
    switch (l) {
      case Layout::row_major: rs = c; cs = 1; break;
      case Layout::col_major: rs = 1; cs = r; break;
      case Layout::strided: cs = 3; rs = c * cs + 5; break;
    }
    const index_t extent = (r > 0 && c > 0) ? (r - 1) * rs + (c - 1) * cs + 1 : 0;
    storage.assign(static_cast<std::size_t>(extent + kGuard), kCanary);
    for (index_t i = 0; i < r; ++i)
      for (index_t j = 0; j < c; ++j) storage[i * rs + j * cs] = val[i * c + j];
    ref = MatrixRef{storage.data(), rs, cs};
  }
  float operator()(index_t i, index_t j) const { return val[i * cols + j]; }
  void set(index_t i, index_t j, float v) {
    val[i * cols + j] = v;
    const_cast<float*>(ref.data)[i * ref.row_stride + j * ref.col_stride] = v;
  }
};

// 64-byte aligned float buffer with a canary guard after `n` floats.
struct Buffer {
  std::vector<float> raw;
  float* p = nullptr;
  index_t n = 0;
  explicit Buffer(std::size_t count, float fill) : n(static_cast<index_t>(count)) {
    raw.assign(count + kGuard + 16, fill);
    auto addr = reinterpret_cast<std::uintptr_t>(raw.data());
    p = raw.data() + ((64 - addr % 64) % 64) / sizeof(float);
    for (index_t i = 0; i < kGuard; ++i) p[n + i] = kCanary;
  }
  bool guard_ok() const {
    for (index_t i = 0; i < kGuard; ++i)
      if (!(p[n + i] == kCanary)) return false;
    return true;
  }
};

struct TailLog {
  float* C = nullptr;
  index_t M = 0, N = 0, ldc = 0;
  const std::vector<float>* expect = nullptr;  // after bias/clamp, row-major M x N
  const std::vector<float>* tol = nullptr;
  std::vector<int> count;
  int bad_block = 0;   // block outside C, wrong pointer or ldc
  int bad_value = 0;   // value at tail time differs from the expected epilogue result
};

void record_tail(void* ctx, index_t i0, index_t j0, index_t m, index_t n, float* c, index_t ldc) {
  auto& t = *static_cast<TailLog*>(ctx);
  if (i0 < 0 || j0 < 0 || m <= 0 || n <= 0 || i0 + m > t.M || j0 + n > t.N || ldc != t.ldc ||
      c != t.C + i0 * t.ldc + j0) {
    ++t.bad_block;
    return;
  }
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      const index_t e = (i0 + i) * t.N + (j0 + j);
      ++t.count[static_cast<std::size_t>(e)];
      float& x = c[i * ldc + j];
      const float want = (*t.expect)[static_cast<std::size_t>(e)];
      const bool ok = std::isnan(want) ? std::isnan(x)
                                       : std::fabs(x - want) <= (*t.tol)[static_cast<std::size_t>(e)];
      if (!ok) ++t.bad_value;
      x = 2.f * x + 1.f;  // the tail's own effect, must survive to the end
    }
}

struct Case {
  index_t M = 1, N = 1, K = 1;
  Layout la = Layout::row_major, lb = Layout::row_major;
  bool prepack = false;
  index_t ldc_pad = 0;
  bool bias = false;
  bool clamp = false;
  float lo = 0.f, hi = 0.f;
  bool tail = false;
  index_t nan_row = -1;  // put a NaN in A(nan_row, K/2)
  bool direct = false;   // gemm_direct: B read in place (needs lb == col_major: unit stride along K)

  std::string describe() const {
    return "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
           " A=" + layout_name(la) + " B=" + layout_name(lb) + (prepack ? " prepacked" : "") +
           " ldc+" + std::to_string(ldc_pad) + (bias ? " bias" : "") +
           (clamp ? " clamp[" + std::to_string(lo) + "," + std::to_string(hi) + "]" : "") +
           (tail ? " tail" : "") + (nan_row >= 0 ? " nan_row=" + std::to_string(nan_row) : "") + (direct ? " direct" : "");
  }
};

// Runs one case; returns the number of failures (0 = pass), with a message in `why`.
int run_case(const Case& cs, std::string& why) {
  const index_t M = cs.M, N = cs.N, K = cs.K;
  std::uint32_t seed = static_cast<std::uint32_t>(M * 7919 + N * 104729 + K * 13);
  Mat A(M, K, cs.la, seed ^ 0x1234u);
  Mat B(K, N, cs.lb, seed ^ 0xBEEFu);
  if (cs.nan_row >= 0 && K > 0) A.set(cs.nan_row, K / 2, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> bias(static_cast<std::size_t>(N) + kGuard, kCanary);
  for (index_t j = 0; j < N; ++j) bias[static_cast<std::size_t>(j)] = frand(seed);

  // Reference.
  std::vector<float> expect(static_cast<std::size_t>(M * N)), tol(expect.size());
  for (index_t i = 0; i < M; ++i)
    for (index_t j = 0; j < N; ++j) {
      double s = 0, sa = 0;
      for (index_t k = 0; k < K; ++k) {
        const double p = static_cast<double>(A(i, k)) * static_cast<double>(B(k, j));
        s += p;
        sa += std::fabs(p);
      }
      if (cs.bias) {
        s += bias[static_cast<std::size_t>(j)];
        sa += std::fabs(bias[static_cast<std::size_t>(j)]);
      }
      float x = static_cast<float>(s);
      if (cs.clamp && !std::isnan(x)) x = x < cs.lo ? cs.lo : (x > cs.hi ? cs.hi : x);
      expect[static_cast<std::size_t>(i * N + j)] = x;
      tol[static_cast<std::size_t>(i * N + j)] = static_cast<float>(1e-5 * sa + 1e-6);
    }

  // C with one canary row above and below, and a canary gap of ldc_pad per row.
  const index_t ldc = N + cs.ldc_pad;
  const index_t c_rows = M + 2;
  Buffer cbuf(static_cast<std::size_t>(c_rows * ldc), kCanary);
  float* C = cbuf.p + ldc;

  Buffer ws(gemm_workspace_size(M, N, K, cs.prepack), std::numeric_limits<float>::quiet_NaN());
  Buffer packed(cs.prepack ? packed_b_size(K, N) : 0, std::numeric_limits<float>::quiet_NaN());
  if (cs.prepack) pack_b(K, N, B.ref, packed.p);

  TailLog log;
  log.C = C;
  log.M = M;
  log.N = N;
  log.ldc = ldc;
  log.expect = &expect;
  log.tol = &tol;
  log.count.assign(static_cast<std::size_t>(M * N), 0);

  GemmEpilogue ep;
  if (cs.bias) ep.bias = bias.data();
  ep.clamp = cs.clamp;
  ep.lo = cs.lo;
  ep.hi = cs.hi;
  if (cs.tail) {
    ep.tail = record_tail;
    ep.ctx = &log;
  }
  if (cs.direct)
    gemm_direct(M, N, K, A.ref, B.ref, C, ldc, ep);
  else
    gemm(M, N, K, A.ref, cs.prepack ? MatrixRef{} : B.ref, cs.prepack ? packed.p : nullptr, C, ldc, ep, ws.p);

  int fails = 0;
  auto fail = [&](const std::string& msg) {
    if (fails++ == 0) why = msg;
  };
  for (index_t r = 0; r < c_rows; ++r)
    for (index_t j = 0; j < ldc; ++j) {
      const float x = cbuf.p[r * ldc + j];
      const index_t i = r - 1;
      if (i < 0 || i >= M || j >= N) {
        if (!(x == kCanary)) fail("canary overwritten at C row " + std::to_string(i) + " col " + std::to_string(j));
        continue;
      }
      float want = expect[static_cast<std::size_t>(i * N + j)];
      float t = tol[static_cast<std::size_t>(i * N + j)];
      if (cs.tail) {
        want = 2.f * want + 1.f;
        t *= 2.f;
      }
      const bool ok = std::isnan(want) ? std::isnan(x) : std::fabs(x - want) <= t;
      if (!ok)
        fail("C(" + std::to_string(i) + "," + std::to_string(j) + ") = " + std::to_string(x) +
             ", want " + std::to_string(want) + " +- " + std::to_string(t));
    }
  if (!cbuf.guard_ok()) fail("canary after C overwritten");
  if (!ws.guard_ok()) fail("workspace overrun");
  if (!packed.guard_ok()) fail("packed B overrun");
  if (cs.tail) {
    if (log.bad_block) fail("tail called with a bad block");
    if (log.bad_value) fail("tail saw values before bias/clamp or before the last K block");
    for (int n : log.count)
      if (n != 1) {
        fail("tail did not cover every element exactly once");
        break;
      }
  }
  return fails;
}

void check_case(const Case& cs) {
  std::string why;
  const int fails = run_case(cs, why);
  INFO(cs.describe());
  INFO(why);
  CHECK(fails == 0);
}

const index_t kSizes[] = {1, 2, 3, 5, 7, 13, 17, 64, 100, 257};

/// The four epilogues the tests sweep: 0 bias; 1 relu without bias; 2 bias, relu and tail;
/// 3 bias, clamp to [-0.25, 0.5] and tail. Odd modes prepack B.
Case epilogue_case(index_t M, index_t N, index_t K, int mode) {
  Case c;
  c.M = M;
  c.N = N;
  c.K = K;
  c.prepack = (mode & 1) != 0;
  c.bias = mode != 1;
  c.clamp = mode != 0;
  c.lo = mode == 3 ? -0.25f : 0.f;
  c.hi = mode == 3 ? 0.5f : std::numeric_limits<float>::infinity();
  c.tail = mode >= 2;
  return c;
}

}  // namespace

TEST_CASE("gemm: tile constants") {
  using namespace gemm_detail;
  MESSAGE("simd " << std::string(kSimdName) << ": tile " << kMR << "x" << kNR << ", KC " << kKC << " MC " << kMC
                  << " NC " << kNC);
  CHECK(kNR % kLanes == 0);
  CHECK(kMR * kNV + kNV + 1 <= (KILN_SIMD ? kVectorRegs : 32));
  CHECK(packed_b_size(3, 1) == static_cast<std::size_t>(3 * kNR));
  CHECK(packed_b_size(0, 5) == 0);
  CHECK(gemm_workspace_size(0, 5, 5, false) == 0);
}

TEST_CASE("gemm: all size combinations, row-major, packed on the fly and prepacked") {
  for (index_t M : kSizes)
    for (index_t N : kSizes)
      for (index_t K : kSizes)
        for (bool pre : {false, true}) {
          Case c;
          c.M = M;
          c.N = N;
          c.K = K;
          c.prepack = pre;
          check_case(c);
        }
}

TEST_CASE("gemm: transposed and strided operands, ldc > N") {
  const index_t sizes[] = {1, 3, 7, 17, 100};
  const Layout layouts[] = {Layout::row_major, Layout::col_major, Layout::strided};
  for (Layout la : layouts)
    for (Layout lb : layouts)
      for (index_t M : sizes)
        for (index_t N : sizes)
          for (index_t K : {index_t{1}, index_t{13}, index_t{257}})
            for (bool pre : {false, true}) {
              Case c;
              c.M = M;
              c.N = N;
              c.K = K;
              c.la = la;
              c.lb = lb;
              c.prepack = pre;
              c.ldc_pad = (M + N) % 3 == 0 ? 0 : 5;
              check_case(c);
            }
}

TEST_CASE("gemm: K spanning several KC blocks, M spanning several MC blocks") {
  for (index_t M : {index_t{1}, index_t{5}, index_t{7}, index_t{300}})
    for (index_t N : {index_t{17}, index_t{100}})
      for (index_t K : {index_t{600}, index_t{1025}})
        for (bool pre : {false, true})
          for (bool epi : {false, true}) {
            Case c;
            c.M = M;
            c.N = N;
            c.K = K;
            c.prepack = pre;
            c.bias = epi;
            c.clamp = epi;
            c.lo = -2.f;
            c.hi = 3.f;
            c.tail = epi;
            c.ldc_pad = 3;
            check_case(c);
          }
}

TEST_CASE("gemm: N spanning several NC blocks") {
  for (index_t M : {index_t{1}, index_t{3}, index_t{13}})
    for (bool pre : {false, true}) {
      Case c;
      c.M = M;
      c.N = gemm_detail::kNC + 37;
      c.K = 5;
      c.prepack = pre;
      c.bias = true;
      c.tail = true;
      check_case(c);
    }
}

TEST_CASE("gemm: bias, clamp, relu, tail") {
  for (index_t M : kSizes)
    for (index_t N : {index_t{1}, index_t{5}, index_t{17}, index_t{64}, index_t{100}})
      for (index_t K : {index_t{1}, index_t{7}, index_t{64}, index_t{257}})
        for (int mode = 0; mode < 4; ++mode) {
          Case c = epilogue_case(M, N, K, mode);
          c.ldc_pad = mode;
          check_case(c);
        }
}

TEST_CASE("gemm_direct: B (unit stride along K) read in place; A any layout; bias, clamp, tail, NaN") {
  const float inf = std::numeric_limits<float>::infinity();
  for (index_t M : kSizes)
    for (index_t N : {index_t{1}, index_t{5}, index_t{17}, index_t{100}, index_t{300}})
      for (index_t K : {index_t{0}, index_t{1}, index_t{3}, index_t{7}, index_t{64}, index_t{257}})
        for (int mode = 0; mode < 4; ++mode) {
          Case c;
          c.direct = true;
          c.M = M;
          c.N = N;
          c.K = K;
          c.la = mode == 1 ? Layout::strided : mode == 2 ? Layout::col_major : Layout::row_major;
          c.lb = Layout::col_major;
          c.bias = mode != 1;
          c.clamp = mode != 0;
          c.lo = mode == 3 ? -0.25f : 0.f;
          c.hi = mode == 3 ? 0.5f : inf;
          c.tail = mode >= 2;
          c.ldc_pad = mode;
          c.nan_row = mode == 2 && K > 0 ? M / 2 : -1;
          check_case(c);
        }
}

TEST_CASE("gemm: NaN in A propagates through relu") {
  const float inf = std::numeric_limits<float>::infinity();
  for (index_t M : {index_t{1}, index_t{2}, index_t{5}, index_t{7}, index_t{13}})
    for (index_t N : {index_t{3}, index_t{17}, index_t{64}})
      for (index_t K : {index_t{2}, index_t{7}, index_t{300}})
        for (bool pre : {false, true})
          for (bool tail : {false, true}) {
            Case c;
            c.M = M;
            c.N = N;
            c.K = K;
            c.prepack = pre;
            c.bias = true;
            c.clamp = true;
            c.lo = 0.f;
            c.hi = inf;
            c.tail = tail;
            c.nan_row = M - 1;  // the last row: an edge tile unless M % MR == 0
            check_case(c);
            c.nan_row = 0;
            check_case(c);
          }
}

TEST_CASE("gemm: one output column (dot products per row) and A read in place for few panels") {
  // N == 1 with M >= MR takes the dot-product path (gemv_n1): kLanes rows at a time, row and K
  // tails, ldc > 1, K past one KC block (the tiled path again). N up to kNoPackPanels panels reads
  // a row-major A in place (rows past an edge tile's last are re-read, never stored); one more
  // panel packs it. NaN in the last row and in the first must come out in their rows only.
  using gemm_detail::kMR;
  using gemm_detail::kNoPackPanels;
  using gemm_detail::kNR;
  const index_t Ms[] = {kMR, kMR + 1, 8, 9, 16, 23, 300};
  const index_t Ns[] = {1, 2, kNoPackPanels * kNR, kNoPackPanels * kNR + 1};
  const index_t Ks[] = {1, 7, 8, 32, 33, 256, 257};
  for (index_t M : Ms)
    for (index_t N : Ns)
      for (index_t K : Ks)
        for (int mode = 0; mode < 4; ++mode)
          for (index_t ldc_pad : {0, 3}) {  // ldc == 1: the vector store of N == 1
            Case c = epilogue_case(M, N, K, mode);
            // A strided along K: N == 1 goes through the tiled path instead.
            c.la = mode == 3 && ldc_pad != 0 ? Layout::strided : Layout::row_major;
            c.ldc_pad = ldc_pad;
            c.nan_row = mode == 2 ? M - 1 : (mode == 1 ? 0 : -1);
            check_case(c);
          }
}

TEST_CASE("gemm: K == 0 gives the epilogue of zero") {
  for (index_t M : {index_t{1}, index_t{7}})
    for (index_t N : {index_t{1}, index_t{17}})
      for (bool pre : {false, true})
        for (int mode = 0; mode < 3; ++mode) {
          Case c;
          c.M = M;
          c.N = N;
          c.K = 0;
          c.prepack = pre;
          c.bias = mode >= 1;
          c.clamp = mode == 2;
          c.lo = -0.1f;
          c.hi = 0.2f;
          c.tail = mode == 2;
          c.ldc_pad = 2;
          check_case(c);
        }
}

TEST_CASE("gemm: M == 0 or N == 0 does nothing") {
  for (index_t M : {index_t{0}, index_t{3}})
    for (index_t N : {index_t{0}, index_t{3}}) {
      if (M != 0 && N != 0) continue;
      Case c;
      c.M = M;
      c.N = N;
      c.K = 4;
      c.bias = true;
      c.tail = true;
      c.ldc_pad = 2;
      check_case(c);
    }
}

TEST_CASE("gemm: linear layer weight W[out,in] as B, prepacked, batch 1") {
  // y = x W^T + b with W stored [out, in]: B(k, j) = W[j*in + k] -> row_stride 1, col_stride in.
  const index_t in = 10, out = 64;
  std::vector<float> W(static_cast<std::size_t>(in * out)), x(static_cast<std::size_t>(in)),
      b(static_cast<std::size_t>(out));
  std::uint32_t s = 99;
  for (auto& v : W) v = frand(s);
  for (auto& v : x) v = frand(s);
  for (auto& v : b) v = frand(s);
  std::vector<float> packed(packed_b_size(in, out));
  pack_b(in, out, MatrixRef{W.data(), 1, in}, packed.data());
  std::vector<float> y(static_cast<std::size_t>(out), kCanary);
  GemmEpilogue ep;
  ep.bias = b.data();
  ep.clamp = true;
  ep.lo = 0.f;
  ep.hi = std::numeric_limits<float>::infinity();
  CHECK(gemm_workspace_size(1, out, in, true) == 0);
  gemm(1, out, in, MatrixRef{x.data(), in, 1}, MatrixRef{}, packed.data(), y.data(), out, ep, nullptr);
  int bad = 0;
  for (index_t j = 0; j < out; ++j) {
    double acc = b[static_cast<std::size_t>(j)];
    for (index_t k = 0; k < in; ++k)
      acc += static_cast<double>(x[static_cast<std::size_t>(k)]) * W[static_cast<std::size_t>(j * in + k)];
    const float want = acc > 0 ? static_cast<float>(acc) : 0.f;
    if (std::fabs(y[static_cast<std::size_t>(j)] - want) > 1e-5f) ++bad;
  }
  CHECK(bad == 0);
}
