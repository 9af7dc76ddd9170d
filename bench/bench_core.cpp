// bench/bench_core.cpp — kiln compiled vs kiln eager vs Eigen on four core workloads.
//
// Every workload is timed in this one binary so ratios come from the same build and run:
//   *_compiled   `net(args...)`: the call a user makes. Guard check + plan run + one owning
//                output Tensor per call (allocated and zero-filled by kiln::Tensor).
//   *_run_into   `net.run_into(y.view(), args...)`: the same call into a caller-owned output
//                (guard check + plan run, no allocation).
//   *_exe_run    (MLP only) `net.executable()->run(ins, outs, arena)`: the plan alone, without
//                the guard check and argument binding, to split the per-call overhead.
//   *_eager      `kiln::eager(fn)(args...)`: op by op, every intermediate materialised.
//   *_openblas   (SGEMM only) cblas_sgemm, one thread (only with KILN_BENCH_HAVE_OPENBLAS).
//   *_eigen      the same math as an Eigen 3 expression (only with KILN_BENCH_HAVE_EIGEN),
//                single-threaded, into preallocated outputs unless the name says otherwise.
// The compile (trace, passes, plan, weight packing) always happens before the timed loop, and
// every variant's result is checked against eager first (a mismatch skips the benchmark).
//
// Workloads:
//   chain    y = relu(a*x + b) * sigmoid(x), x: [2^20] f32 input, a = 0.75 and b = 0.1 scalar
//            constants captured by the model (bytes = 4 read + 4 written per element).
//   mlp      10 -> 64 -> 32 -> 1 with ReLU, weights [out, in] (torch.nn.Linear layout) captured
//            as constants, batch 1 and 256; counter per_sample = time per sample.
//   sgemm    C = A B, square n = 64/256/512, A and B both inputs (B is not a constant, so the
//            compiled plan packs it per call); plus the raw kernel kiln::kernels::gemm with
//            on-the-fly packing and with B prepacked outside the loop. Counter FLOPS = 2n^3/time.
//   softmax  along the last axis of [256, 1000] and [1024, 128].
//
// No timing assertions here: ratios are read off the output (see bench/README.md).
#include <benchmark/benchmark.h>
#include <kiln/kiln.hpp>

#include <cmath>
#include <cstddef>
#include <random>
#include <utility>

#if KILN_BENCH_HAVE_OPENBLAS
#include <cblas.h>
#endif
#if KILN_BENCH_HAVE_EIGEN
#include <Eigen/Core>
#endif

namespace {

using kiln::index_t;
using kiln::Tensor;

// ---- helpers ------------------------------------------------------------------------------------

void fill_uniform(Tensor<float>& t, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (float& v : t) v = d(rng);
}

/// A 64-byte aligned scratch buffer of at least `floats` floats.
Tensor<float> scratch(std::size_t floats) { return Tensor<float>({static_cast<index_t>(floats + 16)}); }

/// Skips the benchmark (instead of timing a wrong result) when got and want differ by more than tol.
bool check_close(benchmark::State& state, const float* got, const float* want, index_t n, float tol) {
  float m = 0.f;
  for (index_t i = 0; i < n; ++i) m = std::fmax(m, std::fabs(got[i] - want[i]));
  if (!(m <= tol)) {  // NaN fails too
    state.SkipWithError("result differs from the kiln eager reference");
    return false;
  }
  return true;
}

/// The bare plan (Executable::run) into caller-owned buffers and arena: no guard, no binding.
class Runner {
 public:
  explicit Runner(const kiln::runtime::Executable* exe) : exe_(exe) {
    if (exe_) arena_ = scratch(exe_->arena_bytes() / sizeof(float) + 1);
  }
  bool ok() const { return exe_ != nullptr; }
  void run(const void* const* ins, void* const* outs) const { exe_->run(ins, outs, arena_.data()); }

 private:
  const kiln::runtime::Executable* exe_;
  mutable Tensor<float> arena_;
};

// ---- 1. elementwise chain -----------------------------------------------------------------------

constexpr index_t kChainN = index_t{1} << 20;
constexpr float kChainA = 0.75f, kChainB = 0.1f;

const auto chain = [](const auto& x) { return kiln::relu(kChainA * x + kChainB) * kiln::sigmoid(x); };

Tensor<float> chain_input() {
  Tensor<float> x({kChainN});
  fill_uniform(x, -6.f, 6.f, 1);
  return x;
}

void chain_counters(benchmark::State& state) {
  state.SetItemsProcessed(state.iterations() * kChainN);
  state.SetBytesProcessed(state.iterations() * kChainN * 2 * static_cast<index_t>(sizeof(float)));
}

void BM_chain_compiled(benchmark::State& state) {
  const Tensor<float> x = chain_input();
  auto net = kiln::compile(chain);
  const Tensor<float> first = net(x);  // trace + plan
  const Tensor<float> ref = kiln::eager(chain)(x);
  if (!check_close(state, first.data(), ref.data(), kChainN, 1e-6f)) return;
  for (auto _ : state) {
    Tensor<float> y = net(x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  chain_counters(state);
  state.counters["kernels"] = net.stats().kernels;
}
BENCHMARK(BM_chain_compiled)->Unit(benchmark::kMicrosecond);

void BM_chain_run_into(benchmark::State& state) {
  const Tensor<float> x = chain_input();
  auto net = kiln::compile(chain);
  (void)net(x);
  Tensor<float> y({kChainN});
  const kiln::TensorView<float> yv = y.view();
  if (!net.run_into(yv, x)) return state.SkipWithError("run_into failed");
  const Tensor<float> ref = kiln::eager(chain)(x);
  if (!check_close(state, y.data(), ref.data(), kChainN, 1e-6f)) return;
  for (auto _ : state) {
    net.run_into(yv, x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  chain_counters(state);
}
BENCHMARK(BM_chain_run_into)->Unit(benchmark::kMicrosecond);

void BM_chain_eager(benchmark::State& state) {
  const Tensor<float> x = chain_input();
  const auto model = kiln::eager(chain);
  for (auto _ : state) {
    Tensor<float> y = model(x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  chain_counters(state);
}
BENCHMARK(BM_chain_eager)->Unit(benchmark::kMicrosecond);

#if KILN_BENCH_HAVE_EIGEN
// Into a preallocated ArrayXf (Eigen's natural way); BM_chain_eigen_alloc returns a fresh
// ArrayXf per call like kiln's compiled call returns a fresh Tensor.
void BM_chain_eigen(benchmark::State& state) {
  const Tensor<float> x = chain_input();
  const Eigen::Map<const Eigen::ArrayXf> X(x.data(), kChainN);
  Eigen::ArrayXf Y(kChainN);
  const float a = kChainA, b = kChainB;
  Y = (a * X + b).max(0.f) * (1.f / (1.f + (-X).exp()));
  const Tensor<float> ref = kiln::eager(chain)(x);
  if (!check_close(state, Y.data(), ref.data(), kChainN, 1e-5f)) return;
  for (auto _ : state) {
    Y = (a * X + b).max(0.f) * (1.f / (1.f + (-X).exp()));
    benchmark::DoNotOptimize(Y.data());
    benchmark::ClobberMemory();
  }
  chain_counters(state);
}
BENCHMARK(BM_chain_eigen)->Unit(benchmark::kMicrosecond);

void BM_chain_eigen_alloc(benchmark::State& state) {
  const Tensor<float> x = chain_input();
  const Eigen::Map<const Eigen::ArrayXf> X(x.data(), kChainN);
  const float a = kChainA, b = kChainB;
  for (auto _ : state) {
    Eigen::ArrayXf Y = (a * X + b).max(0.f) * (1.f / (1.f + (-X).exp()));
    benchmark::DoNotOptimize(Y.data());
    benchmark::ClobberMemory();
  }
  chain_counters(state);
}
BENCHMARK(BM_chain_eigen_alloc)->Unit(benchmark::kMicrosecond);
#endif

// ---- 2. MLP 10 -> 64 -> 32 -> 1 -----------------------------------------------------------------

struct Mlp {
  Tensor<float> w1{kiln::Shape{64, 10}}, b1{kiln::Shape{64}}, w2{kiln::Shape{32, 64}}, b2{kiln::Shape{32}},
      w3{kiln::Shape{1, 32}}, b3{kiln::Shape{1}};
  Mlp() {
    unsigned seed = 10;
    // torch.nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
    for (auto [t, in] : {std::pair<Tensor<float>*, int>{&w1, 10}, {&b1, 10}, {&w2, 64}, {&b2, 64}, {&w3, 32}, {&b3, 32}}) {
      const float r = 1.f / std::sqrt(static_cast<float>(in));
      fill_uniform(*t, -r, r, seed++);
    }
  }
};

const auto mlp = [](const auto& x, const Mlp& p) {
  auto h1 = kiln::relu(kiln::linear(x, p.w1, p.b1));
  auto h2 = kiln::relu(kiln::linear(h1, p.w2, p.b2));
  return kiln::linear(h2, p.w3, p.b3);
};

Tensor<float> mlp_input(index_t batch) {
  Tensor<float> x({batch, 10});
  fill_uniform(x, -1.f, 1.f, 2);
  return x;
}

void mlp_counters(benchmark::State& state, index_t batch) {
  // Seconds per sample (shown as e.g. "per_sample=120n" = 120 ns).
  state.counters["per_sample"] = benchmark::Counter(static_cast<double>(batch),
                                                    benchmark::Counter::kIsIterationInvariantRate |
                                                        benchmark::Counter::kInvert);
}

void BM_mlp_compiled(benchmark::State& state) {
  const index_t batch = state.range(0);
  const Mlp p;
  const Tensor<float> x = mlp_input(batch);
  auto net = kiln::compile(mlp);
  const Tensor<float> first = net(x, p);
  const Tensor<float> ref = kiln::eager(mlp)(x, p);
  if (!check_close(state, first.data(), ref.data(), batch, 1e-5f)) return;
  for (auto _ : state) {
    Tensor<float> y = net(x, p);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  mlp_counters(state, batch);
  state.counters["kernels"] = net.stats().kernels;
}
BENCHMARK(BM_mlp_compiled)->Arg(1)->Arg(256);

void BM_mlp_run_into(benchmark::State& state) {
  const index_t batch = state.range(0);
  const Mlp p;
  const Tensor<float> x = mlp_input(batch);
  auto net = kiln::compile(mlp);
  (void)net(x, p);
  Tensor<float> y({batch, 1});
  const kiln::TensorView<float> yv = y.view();
  if (!net.run_into(yv, x, p)) return state.SkipWithError("run_into failed");
  const Tensor<float> ref = kiln::eager(mlp)(x, p);
  if (!check_close(state, y.data(), ref.data(), batch, 1e-5f)) return;
  for (auto _ : state) {
    net.run_into(yv, x, p);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  mlp_counters(state, batch);
}
BENCHMARK(BM_mlp_run_into)->Arg(1)->Arg(256);

void BM_mlp_exe_run(benchmark::State& state) {
  const index_t batch = state.range(0);
  const Mlp p;
  const Tensor<float> x = mlp_input(batch);
  auto net = kiln::compile(mlp);
  (void)net(x, p);
  const Runner r(net.executable());
  Tensor<float> y({batch, 1});
  const void* ins[] = {x.data()};
  void* outs[] = {y.data()};
  r.run(ins, outs);
  const Tensor<float> ref = kiln::eager(mlp)(x, p);
  if (!check_close(state, y.data(), ref.data(), batch, 1e-5f)) return;
  for (auto _ : state) {
    r.run(ins, outs);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  mlp_counters(state, batch);
}
BENCHMARK(BM_mlp_exe_run)->Arg(1)->Arg(256);

void BM_mlp_eager(benchmark::State& state) {
  const index_t batch = state.range(0);
  const Mlp p;
  const Tensor<float> x = mlp_input(batch);
  const auto model = kiln::eager(mlp);
  for (auto _ : state) {
    Tensor<float> y = model(x, p);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  mlp_counters(state, batch);
}
BENCHMARK(BM_mlp_eager)->Arg(1)->Arg(256);

#if KILN_BENCH_HAVE_EIGEN
// Batch 1 with fixed-size matrices: the best case for a hand-written Eigen MLP.
void BM_mlp_eigen_fixed(benchmark::State& state) {
  const Mlp p;
  const Tensor<float> x = mlp_input(1);
  Eigen::Matrix<float, 64, 10> W1;
  Eigen::Matrix<float, 64, 1> B1;
  Eigen::Matrix<float, 32, 64> W2;
  Eigen::Matrix<float, 32, 1> B2;
  Eigen::Matrix<float, 1, 32> W3;
  Eigen::Matrix<float, 1, 1> B3;
  for (int o = 0; o < 64; ++o) {
    B1(o) = p.b1[o];
    for (int i = 0; i < 10; ++i) W1(o, i) = p.w1(o, i);
  }
  for (int o = 0; o < 32; ++o) {
    B2(o) = p.b2[o];
    for (int i = 0; i < 64; ++i) W2(o, i) = p.w2(o, i);
  }
  B3(0) = p.b3[0];
  for (int i = 0; i < 32; ++i) W3(0, i) = p.w3(0, i);
  Eigen::Matrix<float, 10, 1> X;
  for (int i = 0; i < 10; ++i) X(i) = x[i];
  Eigen::Matrix<float, 1, 1> Y;
  auto forward = [&] {
    const Eigen::Matrix<float, 64, 1> h1 = (W1 * X + B1).cwiseMax(0.f);
    const Eigen::Matrix<float, 32, 1> h2 = (W2 * h1 + B2).cwiseMax(0.f);
    Y.noalias() = W3 * h2 + B3;
  };
  forward();
  const Tensor<float> ref = kiln::eager(mlp)(x, p);
  if (!check_close(state, Y.data(), ref.data(), 1, 1e-5f)) return;
  for (auto _ : state) {
    benchmark::DoNotOptimize(X);  // X may have changed: no hoisting the forward pass
    forward();
    benchmark::DoNotOptimize(Y);
  }
  mlp_counters(state, 1);
}
BENCHMARK(BM_mlp_eigen_fixed)->Arg(1);

// Dynamic sizes, activations feature-major (a col-major 10 x batch matrix has the memory layout
// of kiln's row-major [batch, 10] input, so the same buffer is read in place).
void BM_mlp_eigen(benchmark::State& state) {
  const index_t batch = state.range(0);
  const Mlp p;
  const Tensor<float> x = mlp_input(batch);
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::MatrixXf W1 = Eigen::Map<const RowMat>(p.w1.data(), 64, 10);
  const Eigen::MatrixXf W2 = Eigen::Map<const RowMat>(p.w2.data(), 32, 64);
  const Eigen::MatrixXf W3 = Eigen::Map<const RowMat>(p.w3.data(), 1, 32);
  const Eigen::VectorXf B1 = Eigen::Map<const Eigen::VectorXf>(p.b1.data(), 64);
  const Eigen::VectorXf B2 = Eigen::Map<const Eigen::VectorXf>(p.b2.data(), 32);
  const float b3 = p.b3[0];
  const Eigen::Map<const Eigen::MatrixXf> X(x.data(), 10, batch);
  Eigen::MatrixXf H1(64, batch), H2(32, batch), Y(1, batch);
  auto forward = [&] {
    H1.noalias() = W1 * X;
    H1 = (H1.colwise() + B1).cwiseMax(0.f);
    H2.noalias() = W2 * H1;
    H2 = (H2.colwise() + B2).cwiseMax(0.f);
    Y.noalias() = W3 * H2;
    Y.array() += b3;
  };
  forward();
  const Tensor<float> ref = kiln::eager(mlp)(x, p);
  if (!check_close(state, Y.data(), ref.data(), batch, 1e-5f)) return;
  for (auto _ : state) {
    benchmark::ClobberMemory();
    forward();
    benchmark::DoNotOptimize(Y.data());
    benchmark::ClobberMemory();
  }
  mlp_counters(state, batch);
}
BENCHMARK(BM_mlp_eigen)->Arg(1)->Arg(256);
#endif

// ---- 3. SGEMM -----------------------------------------------------------------------------------

const auto matmul_fn = [](const auto& a, const auto& b) { return kiln::matmul(a, b); };

struct Gemm {
  index_t n;
  Tensor<float> a, b, ref;
  explicit Gemm(index_t size) : n(size), a({size, size}), b({size, size}) {
    fill_uniform(a, -1.f, 1.f, 3);
    fill_uniform(b, -1.f, 1.f, 4);
    ref = kiln::eager(matmul_fn)(a, b);
  }
  float tol() const { return 1e-5f * static_cast<float>(n); }
};

void gemm_counters(benchmark::State& state, index_t n) {
  state.counters["FLOPS"] = benchmark::Counter(2.0 * static_cast<double>(n) * static_cast<double>(n) *
                                                   static_cast<double>(n),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void BM_sgemm_compiled(benchmark::State& state) {
  const Gemm g(state.range(0));
  auto net = kiln::compile(matmul_fn);
  const Tensor<float> first = net(g.a, g.b);
  if (!check_close(state, first.data(), g.ref.data(), g.n * g.n, g.tol())) return;
  for (auto _ : state) {
    Tensor<float> c = net(g.a, g.b);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  gemm_counters(state, g.n);
}
BENCHMARK(BM_sgemm_compiled)->Arg(64)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond);

void BM_sgemm_run_into(benchmark::State& state) {
  const Gemm g(state.range(0));
  auto net = kiln::compile(matmul_fn);
  (void)net(g.a, g.b);
  Tensor<float> c({g.n, g.n});
  const kiln::TensorView<float> cv = c.view();
  if (!net.run_into(cv, g.a, g.b)) return state.SkipWithError("run_into failed");
  if (!check_close(state, c.data(), g.ref.data(), g.n * g.n, g.tol())) return;
  for (auto _ : state) {
    net.run_into(cv, g.a, g.b);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  gemm_counters(state, g.n);
}
BENCHMARK(BM_sgemm_run_into)->Arg(64)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond);

void BM_sgemm_eager(benchmark::State& state) {
  const Gemm g(state.range(0));
  const auto model = kiln::eager(matmul_fn);
  for (auto _ : state) {
    Tensor<float> c = model(g.a, g.b);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  gemm_counters(state, g.n);
}
BENCHMARK(BM_sgemm_eager)->Arg(64)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond);

// The raw kernel, B packed inside every call (what the compiled plan does for a non-constant B).
void BM_sgemm_kernel(benchmark::State& state) {
  namespace kk = kiln::kernels;
  const Gemm g(state.range(0));
  const index_t n = g.n;
  Tensor<float> ws = scratch(kk::gemm_workspace_size(n, n, n, false));
  Tensor<float> c({n, n});
  const kk::MatrixRef A{g.a.data(), n, 1}, B{g.b.data(), n, 1};
  const kk::GemmEpilogue ep{};
  kk::gemm(n, n, n, A, B, nullptr, c.data(), n, ep, ws.data());
  if (!check_close(state, c.data(), g.ref.data(), n * n, g.tol())) return;
  for (auto _ : state) {
    kk::gemm(n, n, n, A, B, nullptr, c.data(), n, ep, ws.data());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  gemm_counters(state, n);
}
BENCHMARK(BM_sgemm_kernel)->Arg(64)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond);

// The raw kernel with B packed once outside the loop (what a constant weight gets).
void BM_sgemm_kernel_prepacked(benchmark::State& state) {
  namespace kk = kiln::kernels;
  const Gemm g(state.range(0));
  const index_t n = g.n;
  Tensor<float> packed = scratch(kk::packed_b_size(n, n));
  const kk::MatrixRef A{g.a.data(), n, 1}, B{g.b.data(), n, 1};
  kk::pack_b(n, n, B, packed.data());
  Tensor<float> ws = scratch(kk::gemm_workspace_size(n, n, n, true));
  Tensor<float> c({n, n});
  const kk::GemmEpilogue ep{};
  kk::gemm(n, n, n, A, B, packed.data(), c.data(), n, ep, ws.data());
  if (!check_close(state, c.data(), g.ref.data(), n * n, g.tol())) return;
  for (auto _ : state) {
    kk::gemm(n, n, n, A, B, packed.data(), c.data(), n, ep, ws.data());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  gemm_counters(state, n);
}
BENCHMARK(BM_sgemm_kernel_prepacked)->Arg(64)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond);

#if KILN_BENCH_HAVE_OPENBLAS
// OpenBLAS's cblas_sgemm on the same row-major operands, one thread (as every kiln figure here).
void BM_sgemm_openblas(benchmark::State& state) {
  openblas_set_num_threads(1);
  const Gemm g(state.range(0));
  const index_t n = g.n;
  const int ni = static_cast<int>(n);
  Tensor<float> c({n, n});
  auto run = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.f, g.a.data(), ni, g.b.data(), ni, 0.f,
                c.data(), ni);
  };
  run();
  if (!check_close(state, c.data(), g.ref.data(), n * n, g.tol())) return;
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  gemm_counters(state, n);
}
BENCHMARK(BM_sgemm_openblas)->Arg(64)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond);
#endif

#if KILN_BENCH_HAVE_EIGEN
void BM_sgemm_eigen(benchmark::State& state) {
  const Gemm g(state.range(0));
  const index_t n = g.n;
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  // Row-major like kiln's tensors, so the check compares like with like.
  const RowMat A = Eigen::Map<const RowMat>(g.a.data(), n, n);
  const RowMat B = Eigen::Map<const RowMat>(g.b.data(), n, n);
  RowMat C(n, n);
  C.noalias() = A * B;
  if (!check_close(state, C.data(), g.ref.data(), n * n, g.tol())) return;
  for (auto _ : state) {
    C.noalias() = A * B;
    benchmark::DoNotOptimize(C.data());
    benchmark::ClobberMemory();
  }
  gemm_counters(state, n);
}
BENCHMARK(BM_sgemm_eigen)->Arg(64)->Arg(256)->Arg(512)->Unit(benchmark::kMicrosecond);
#endif

// ---- 4. softmax over the last axis --------------------------------------------------------------

const auto softmax_fn = [](const auto& x) { return kiln::softmax(x, -1); };

Tensor<float> softmax_input(index_t rows, index_t cols) {
  Tensor<float> x({rows, cols});
  fill_uniform(x, -8.f, 8.f, 5);
  return x;
}

void softmax_counters(benchmark::State& state, index_t numel) {
  state.SetItemsProcessed(state.iterations() * numel);
  state.SetBytesProcessed(state.iterations() * numel * 2 * static_cast<index_t>(sizeof(float)));
}

void BM_softmax_compiled(benchmark::State& state) {
  const index_t rows = state.range(0), cols = state.range(1);
  const Tensor<float> x = softmax_input(rows, cols);
  auto net = kiln::compile(softmax_fn);
  const Tensor<float> first = net(x);
  const Tensor<float> ref = kiln::eager(softmax_fn)(x);
  if (!check_close(state, first.data(), ref.data(), rows * cols, 1e-6f)) return;
  for (auto _ : state) {
    Tensor<float> y = net(x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  softmax_counters(state, rows * cols);
}
BENCHMARK(BM_softmax_compiled)->Args({256, 1000})->Args({1024, 128})->Unit(benchmark::kMicrosecond);

void BM_softmax_run_into(benchmark::State& state) {
  const index_t rows = state.range(0), cols = state.range(1);
  const Tensor<float> x = softmax_input(rows, cols);
  auto net = kiln::compile(softmax_fn);
  (void)net(x);
  Tensor<float> y({rows, cols});
  const kiln::TensorView<float> yv = y.view();
  if (!net.run_into(yv, x)) return state.SkipWithError("run_into failed");
  const Tensor<float> ref = kiln::eager(softmax_fn)(x);
  if (!check_close(state, y.data(), ref.data(), rows * cols, 1e-6f)) return;
  for (auto _ : state) {
    net.run_into(yv, x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  softmax_counters(state, rows * cols);
}
BENCHMARK(BM_softmax_run_into)->Args({256, 1000})->Args({1024, 128})->Unit(benchmark::kMicrosecond);

void BM_softmax_eager(benchmark::State& state) {
  const index_t rows = state.range(0), cols = state.range(1);
  const Tensor<float> x = softmax_input(rows, cols);
  const auto model = kiln::eager(softmax_fn);
  for (auto _ : state) {
    Tensor<float> y = model(x);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  softmax_counters(state, rows * cols);
}
BENCHMARK(BM_softmax_eager)->Args({256, 1000})->Args({1024, 128})->Unit(benchmark::kMicrosecond);

#if KILN_BENCH_HAVE_EIGEN
// Row by row (the row stays in L1 between passes): max, exp(x - max) stored, sum, scale.
void BM_softmax_eigen(benchmark::State& state) {
  const index_t rows = state.range(0), cols = state.range(1);
  const Tensor<float> x = softmax_input(rows, cols);
  using RowArr = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowArr> X(x.data(), rows, cols);
  RowArr Y(rows, cols);
  auto forward = [&] {
    for (index_t r = 0; r < rows; ++r) {
      const float m = X.row(r).maxCoeff();
      Y.row(r) = (X.row(r) - m).exp();
      Y.row(r) *= 1.f / Y.row(r).sum();
    }
  };
  forward();
  const Tensor<float> ref = kiln::eager(softmax_fn)(x);
  if (!check_close(state, Y.data(), ref.data(), rows * cols, 1e-6f)) return;
  for (auto _ : state) {
    forward();
    benchmark::DoNotOptimize(Y.data());
    benchmark::ClobberMemory();
  }
  softmax_counters(state, rows * cols);
}
BENCHMARK(BM_softmax_eigen)->Args({256, 1000})->Args({1024, 128})->Unit(benchmark::kMicrosecond);
#endif

}  // namespace
