// kiln::run<plan>: compile-time plans executed by the static runner (runtime/static_run.hpp),
// checked against kiln::eager (op by op, the oracle) and kiln::compile (the run-time compiler,
// which lowers with the same code but prepacks its weights) on models with real, non-zero
// weights: an MLP, a CNN (conv, batch_norm as scale/shift, depthwise, pooling, pad, upsample, pointwise conv,
// global pooling), an elementwise chain with broadcasting, softmax / log_softmax, two outputs
// (one of them a view the runner copies out).
// Tolerances: |static - compile| <= 1e-5 * (1 + |ref|) (the same kernels, except that the static
// runner reads a linear layer's flash weight in place with its own summation order),
// |static - eager| <= 1e-4 * (1 + |ref|) (eager sums in another order).
// kiln-test: header-only (kiln::plan needs the engine's headers; KILN_MAX_NODES 64 keeps the
// constant evaluation cheap)
#define KILN_MAX_NODES 64
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include <kiln/kiln.hpp>

namespace {

/// Deterministic weights in [-scale, scale] (a 32-bit LCG), computed by the compiler.
template <std::size_t N>
constexpr std::array<float, N> weights(std::uint32_t seed, float scale = 0.5f, float offset = 0.f) {
  std::array<float, N> w{};
  std::uint32_t s = seed * 2654435761u + 12345u;
  for (std::size_t i = 0; i < N; ++i) {
    s = s * 1664525u + 1013904223u;
    w[i] = offset + scale * (static_cast<float>(s >> 8) / 8388608.f - 1.f);
  }
  return w;
}

// ---- MLP 64 -> 32 -> 10, softmax (the digits classifier's shape) ----
constexpr auto kW1 = weights<32 * 64>(1, 0.2f);
constexpr auto kB1 = weights<32>(2, 0.1f);
constexpr auto kW2 = weights<10 * 32>(3, 0.3f);
constexpr auto kB2 = weights<10>(4, 0.1f);
constexpr kiln::TensorView<const float> W1(kW1.data(), {32, 64}), B1(kB1.data(), {32}), W2(kW2.data(), {10, 32}),
    B2(kB2.data(), {10});
constexpr auto mlp = [](auto x) { return kiln::softmax(kiln::linear(kiln::relu(kiln::linear(x, W1, B1)), W2, B2), -1); };
constexpr kiln::StaticPlan kMlp1 = kiln::plan(mlp, kiln::input<float>({1, 64}));
constexpr kiln::StaticPlan kMlp7 = kiln::plan(mlp, kiln::input<float>({7, 64}));  // M >= MR: A packed too
static_assert(kMlp1.ok() && kMlp7.ok());
static_assert(kMlp1.arena_bytes() == kMlp1.lower_bound() && kMlp7.arena_bytes() == kMlp7.lower_bound(),
              "activations and GEMM scratch meet the liveness lower bound");

// ---- CNN on [1, 8, 8, 3] NHWC ----
constexpr auto kC1 = weights<8 * 3 * 3 * 3>(10, 0.4f);  // OHWI
constexpr auto kC1b = weights<8>(11, 0.1f);
// Inference batch_norm as its per-channel scale and shift (batch_norm(x, gamma, beta, mean, var)
// computes them with sqrt at trace time, which a constant expression cannot: a static model
// carries them folded).
constexpr auto kBnScale = weights<8>(12, 0.2f, 1.f), kBnShift = weights<8>(13, 0.1f);
constexpr auto kDw = weights<8 * 3 * 3 * 1>(16, 0.4f);  // depthwise: [8, 3, 3, 1]
constexpr auto kPw = weights<6 * 1 * 1 * 8>(17, 0.4f);  // pointwise 8 -> 6
constexpr auto kPwb = weights<6>(18, 0.1f);
constexpr auto kFc = weights<4 * 6>(19, 0.4f);
constexpr kiln::TensorView<const float> C1(kC1.data(), {8, 3, 3, 3}), C1b(kC1b.data(), {8}),
    BnScale(kBnScale.data(), {8}), BnShift(kBnShift.data(), {8}), Dw(kDw.data(), {8, 3, 3, 1}),
    Pw(kPw.data(), {6, 1, 1, 8}), Pwb(kPwb.data(), {6}), Fc(kFc.data(), {4, 6});
constexpr auto cnn = [](auto x) {
  using kiln::Conv2dOptions;
  using kiln::Padding2d;
  auto h = kiln::conv2d(x, C1, C1b, Conv2dOptions().with_padding(Padding2d::same()));  // [1, 8, 8, 8]
  h = kiln::relu(h * BnScale + BnShift);  // batch_norm, folded
  h = kiln::relu6(kiln::conv2d(h, Dw, Conv2dOptions().with_groups(8).with_stride(2).with_padding(Padding2d::same())));
  h = kiln::max_pool2d(h, kiln::Pool2dOptions().with_stride(2));                       // [1, 2, 2, 8]
  h = kiln::upsample_nearest(kiln::pad(h, Padding2d::symmetric(1, 1), 0.5f), 2);       // [1, 8, 8, 8]
  h = kiln::avg_pool2d(h, kiln::Pool2dOptions().with_stride(2));                       // [1, 4, 4, 8]
  h = kiln::conv2d(h, Pw, Pwb);                                                        // [1, 4, 4, 6]
  auto g = kiln::global_avg_pool(h, false);                                            // [1, 6]
  return kiln::linear(g, Fc);
};
constexpr kiln::StaticPlan kCnn = kiln::plan(cnn, kiln::input<float>({1, 8, 8, 3}));
static_assert(kCnn.ok());
static_assert(kCnn.arena_bytes() >= kCnn.lower_bound());

// ---- elementwise chain with broadcasting ----
constexpr auto kRow = weights<5>(20, 1.f);
constexpr kiln::TensorView<const float> Row(kRow.data(), {5});
constexpr auto chain = [](auto a, auto b) {  // a [4, 5], b [4, 1]
  auto t = kiln::gelu(a * Row + b) - kiln::exp(-kiln::abs(a)) / (1.f + b * b);
  return kiln::where(t > 0.f, kiln::tanh(t), kiln::sigmoid(t) * 2.f);
};
constexpr kiln::StaticPlan kChain = kiln::plan(chain, kiln::input<float>({4, 5}), kiln::input<float>({4, 1}));
static_assert(kChain.ok());

// ---- softmax / log_softmax over a non-last axis, and two outputs (one a transposed view) ----
constexpr auto heads = [](auto x) {
  auto s = kiln::softmax(x * 2.f, 0);
  return std::make_tuple(kiln::log_softmax(x, 1) + s, kiln::transpose(s, 0, 1), kiln::sum(x, 1));
};
constexpr kiln::StaticPlan kHeads = kiln::plan(heads, kiln::input<float>({3, 6}));
static_assert(kHeads.ok() && kHeads.graph.num_outputs() == 3);

std::vector<float> data(std::size_t n, std::uint32_t seed, float scale = 1.f) {
  std::vector<float> v(n);
  std::uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(s >> 8) / 8388608.f - 1.f);
  }
  return v;
}
kiln::Tensor<float> tensor(const kiln::Shape& shape, const std::vector<float>& v) {
  kiln::Tensor<float> t(shape);
  for (std::size_t i = 0; i < v.size(); ++i) t.data()[i] = v[i];
  return t;
}
void check_close(const float* got, const float* ref, kiln::index_t n, float tol, const char* what) {
  INFO(what);
  float worst = 0.f;
  for (kiln::index_t i = 0; i < n; ++i) {
    const float err = std::fabs(got[i] - ref[i]) / (1.f + std::fabs(ref[i]));
    if (!(err <= worst)) worst = err;  // NaN counts as the worst
  }
  CHECK(worst <= tol);
}

constexpr float kTolCompiled = 1e-5f, kTolEager = 1e-4f;

template <const kiln::StaticPlan& P, class Fn>
void check_one_input(const Fn& fn, const kiln::Shape& in_shape, std::uint32_t seed) {
  const std::vector<float> x = data(static_cast<std::size_t>(in_shape.numel()), seed);
  using M = kiln::StaticModel<P>;
  alignas(kiln::kAlignment) static std::uint8_t arena[P.arena_bytes()];
  std::vector<float> y(static_cast<std::size_t>(M::output_elements(0)), -1.f);
  kiln::run<P>(arena, x.data(), y.data());
  const kiln::Tensor<float> xt = tensor(in_shape, x);
  const kiln::Tensor<float> ref = kiln::eager(fn)(xt);
  const kiln::Tensor<float> cmp = kiln::compile(fn)(xt);
  REQUIRE(ref.shape().numel() == M::output_elements(0));
  check_close(y.data(), cmp.data(), ref.shape().numel(), kTolCompiled, "static vs compile()");
  check_close(y.data(), ref.data(), ref.shape().numel(), kTolEager, "static vs eager");
  // A second run over a dirty arena gives the same bits (nothing depends on zeroed memory).
  for (auto& b : arena) b = 0xA5;
  std::vector<float> y2(y.size());
  kiln::run<P>(arena, x.data(), y2.data());
  CHECK(y2 == y);
}

}  // namespace

TEST_CASE("static MLP (batch 1 and 7) == compile() == eager") {
  check_one_input<kMlp1>(mlp, {1, 64}, 7);
  check_one_input<kMlp7>(mlp, {7, 64}, 8);
  // The typed array form checks extents at compile time.
  float x[64] = {}, y[10] = {};
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i % 7) * 0.1f;
  alignas(kiln::kAlignment) static std::uint8_t arena[kMlp1.arena_bytes()];
  kiln::run<kMlp1>(arena, x, y);
  float sum = 0.f;
  for (float v : y) sum += v;
  CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("static CNN: conv + batch_norm (scale/shift) + relu, depthwise, max/avg pool, pad, upsample, pointwise, global pool") {
  check_one_input<kCnn>(cnn, {1, 8, 8, 3}, 9);
}

TEST_CASE("static elementwise chain with broadcasting and two inputs") {
  const std::vector<float> a = data(20, 21, 2.f), b = data(4, 22, 2.f);
  alignas(kiln::kAlignment) static std::uint8_t arena[kChain.arena_bytes() > 0 ? kChain.arena_bytes() : 1];
  std::vector<float> y(20);
  kiln::run<kChain>(arena, std::make_tuple(a.data(), b.data()), y.data());
  const kiln::Tensor<float> at = tensor({4, 5}, a), bt = tensor({4, 1}, b);
  const kiln::Tensor<float> ref = kiln::eager(chain)(at, bt);
  const kiln::Tensor<float> cmp = kiln::compile(chain)(at, bt);
  check_close(y.data(), cmp.data(), 20, kTolCompiled, "static vs compile()");
  check_close(y.data(), ref.data(), 20, kTolEager, "static vs eager");
}

TEST_CASE("static softmax / log_softmax, three outputs, one of them a view copied out") {
  const std::vector<float> x = data(18, 31, 3.f);
  alignas(kiln::kAlignment) static std::uint8_t arena[kHeads.arena_bytes() > 0 ? kHeads.arena_bytes() : 1];
  std::vector<float> y0(18), y1(18), y2(3);
  kiln::run<kHeads>(arena, x.data(), std::make_tuple(y0.data(), y1.data(), y2.data()));
  const kiln::Tensor<float> xt = tensor({3, 6}, x);
  const auto ref = kiln::eager(heads)(xt);
  const auto cmp = kiln::compile(heads)(xt);
  check_close(y0.data(), std::get<0>(cmp).data(), 18, kTolCompiled, "output 0 vs compile()");
  check_close(y1.data(), std::get<1>(cmp).data(), 18, kTolCompiled, "output 1 vs compile()");
  check_close(y2.data(), std::get<2>(cmp).data(), 3, kTolCompiled, "output 2 vs compile()");
  check_close(y0.data(), std::get<0>(ref).data(), 18, kTolEager, "output 0 vs eager");
  check_close(y1.data(), std::get<1>(ref).data(), 18, kTolEager, "output 1 vs eager");
  check_close(y2.data(), std::get<2>(ref).data(), 3, kTolEager, "output 2 vs eager");
  // The transposed output really is the transpose of the softmax over axis 0: columns sum to 1.
  for (int c = 0; c < 6; ++c) {
    float s = 0.f;
    for (int r = 0; r < 3; ++r) s += y1[static_cast<std::size_t>(c * 3 + r)];
    CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
  }
}

TEST_CASE("a static MLP's arena holds only its activations: flash weights are read in place") {
  // [1, 32] hidden (128 B) and [1, 10] logits (40 B, slot 64 B) live together while the softmax
  // runs into the caller's output: no packing scratch (kernels::gemm_direct reads W in place).
  CHECK(kMlp1.arena_bytes() == 128 + 64);
  CHECK(kMlp1.arena_bytes() == kMlp1.lower_bound());
  CHECK(kiln::StaticModel<kMlp1>::num_steps == 3);
  CHECK(kiln::StaticModel<kMlp1>::schedule.lowered.steps[0].direct);
  // A conv's weight is packed into the arena (the implicit GEMM's panels): scratch is planned.
  CHECK(kCnn.arena_bytes() > 8 * 8 * 8 * sizeof(float));
}
