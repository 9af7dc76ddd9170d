// matmul (2-D, batched, broadcast batch dims, vector operand) and linear: compiled and eager vs
// a naive double-accumulation loop. Tolerance: |err| <= 1e-5 * sum_k |a||b| (summation order).
#include "test_util.hpp"

namespace {

// C[batch..., M, N] = A @ B with broadcasting, naive, plus the magnitude sum for the tolerance.
void naive_matmul(const kiln::Tensor<float>& a, const kiln::Tensor<float>& b, bool trans_b, const kiln::Shape& out,
                  std::vector<double>& c, std::vector<double>& mag) {
  const kiln::Shape& as = a.shape();
  const kiln::Shape& bs = b.shape();
  const kiln::index_t K = as.back();
  const kiln::index_t N = out.back();
  const kiln::index_t M = as.rank() >= 2 ? as[as.rank() - 2] : 1;
  const kiln::index_t batches = out.numel() / (M * N);
  kiln::Shape ab, bb, ob;  // batch shapes
  for (int d = 0; d + 2 < as.rank(); ++d) ab.push_back(as[d]);
  for (int d = 0; d + 2 < bs.rank(); ++d) bb.push_back(bs[d]);
  for (int d = 0; d < out.rank() - (as.rank() >= 2 ? 2 : 1); ++d) ob.push_back(out[d]);
  c.assign(static_cast<std::size_t>(out.numel()), 0);
  mag.assign(c.size(), 0);
  for (kiln::index_t t = 0; t < batches; ++t) {
    const kiln::index_t ao = kt::broadcast_offset(t, ob, ab) * M * K;
    const kiln::index_t bo = kt::broadcast_offset(t, ob, bb) * K * N;
    for (kiln::index_t i = 0; i < M; ++i)
      for (kiln::index_t j = 0; j < N; ++j) {
        double acc = 0, m = 0;
        for (kiln::index_t k = 0; k < K; ++k) {
          const double x = a[ao + i * K + k];
          const double y = trans_b ? b[bo + j * K + k] : b[bo + k * N + j];
          acc += x * y;
          m += std::fabs(x * y);
        }
        c[static_cast<std::size_t>((t * M + i) * N + j)] = acc;
        mag[static_cast<std::size_t>((t * M + i) * N + j)] = m;
      }
  }
}

void check_mm(const kiln::Tensor<float>& got, const std::vector<double>& want, const std::vector<double>& mag,
              const char* what) {
  REQUIRE(got.size() == static_cast<kiln::index_t>(want.size()));
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO(std::string(what) << " index " << i);
    CHECK(std::fabs(got[static_cast<kiln::index_t>(i)] - want[i]) <= 1e-5 * mag[i] + 1e-6);
  }
}

}  // namespace

TEST_CASE("matmul: 2-D on odd sizes, batched and broadcast batch dims, vector operand") {
  struct Case {
    kiln::Shape a, b, out;
  };
  const Case cases[] = {
      {{1, 1}, {1, 1}, {1, 1}},
      {{3, 7}, {7, 17}, {3, 17}},
      {{17, 1}, {1, 5}, {17, 5}},
      {{33, 65}, {65, 31}, {33, 31}},
      {{100, 3}, {3, 1000}, {100, 1000}},
      {{2, 5, 7}, {2, 7, 3}, {2, 5, 3}},
      {{4, 5, 7}, {7, 9}, {4, 5, 9}},        // b broadcast over the batch: one GEMM
      {{5, 7}, {3, 7, 4}, {3, 5, 4}},        // a broadcast over b's batch
      {{2, 1, 3, 4}, {5, 4, 6}, {2, 5, 3, 6}},
      {{7}, {7, 3}, {3}},                    // vector @ matrix
      {{6}, {2, 6, 5}, {2, 5}},
  };
  std::uint32_t seed = 100;
  for (const Case& c : cases) {
    const auto a = kt::random_tensor(c.a, seed++), b = kt::random_tensor(c.b, seed++);
    auto model = [](auto x, auto y) { return kiln::matmul(x, y); };
    auto net = kiln::compile(model);
    std::vector<double> want, mag;
    naive_matmul(a, b, false, c.out, want, mag);
    const auto got = net(a, b);
    INFO("a " << c.a.rank() << "-D " << c.a.back() << ", b " << c.b.rank() << "-D " << c.b.back());
    CHECK(got.shape() == c.out);
    check_mm(got, want, mag, "compiled matmul");
    check_mm(kiln::eager(model)(a, b), want, mag, "eager matmul");
  }
}

TEST_CASE("linear with captured weights: epilogue fused, weights prepacked, any batch rank") {
  for (kiln::index_t in : {1, 10, 37})
    for (kiln::index_t out : {1, 7, 64}) {
      const auto w = kt::random_tensor({out, in}, 1), bias = kt::random_tensor({out}, 2);
      auto model = [&](auto x) { return kiln::relu(kiln::linear(x, w, bias)); };
      for (const kiln::Shape& xs : {kiln::Shape{1, in}, kiln::Shape{19, in}, kiln::Shape{3, 5, in}, kiln::Shape{in}}) {
        auto net = kiln::compile(model);
        const auto x = kt::random_tensor(xs, 3);
        std::vector<double> want, mag;
        kiln::Shape os = xs;
        os[os.rank() - 1] = out;
        naive_matmul(x, w, true, os, want, mag);
        for (std::size_t i = 0; i < want.size(); ++i) {
          want[i] += bias[static_cast<kiln::index_t>(i % static_cast<std::size_t>(out))];
          want[i] = want[i] < 0 ? 0 : want[i];
        }
        const auto got = net(x);
        CHECK(got.shape() == os);
        check_mm(got, want, mag, "linear+bias+relu");
        CHECK(net.stats().kernels == 1);  // bias and relu run in the GEMM's registers
        CHECK(net.stats().packed_weight_bytes > 0);
      }
    }
}

TEST_CASE("matmul epilogue: a general chain after the product, and a residual add") {
  const auto w = kt::random_tensor({24, 40}, 5), b = kt::random_tensor({24}, 6);
  const auto x = kt::random_tensor({30, 40}, 7), r = kt::random_tensor({30, 24}, 8);
  auto model = [&](auto in, auto res) { return kiln::gelu(kiln::linear(in, w, b)) * 0.5f + res; };
  auto net = kiln::compile(model);
  kt::check_close(net(x, r), kiln::eager(model)(x, r), {1e-5, 1e-5}, "gelu epilogue + residual");
  CHECK(net.stats().kernels == 1);
  // The product is also an output: it is stored and the epilogue still runs once.
  auto two = [&](auto in) {
    auto p = kiln::matmul(in, kiln::transpose(w, 0, 1));
    return std::make_tuple(p, kiln::sigmoid(p));
  };
  auto net2 = kiln::compile(two);
  auto [p, s] = net2(x);
  auto [pe, se] = kiln::eager(two)(x);
  kt::check_close(p, pe, {1e-5, 1e-5}, "product output");
  kt::check_close(s, se, {1e-5, 1e-5}, "sigmoid of product");
}
