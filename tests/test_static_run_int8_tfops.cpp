// The int8 TFLite operators (qmul, qlogistic, qtanh, qhard_swish, qmean, qpad, qslice, qconcat)
// through the three runners: kiln::eager (op by op), kiln::compile (planned arena, strided views
// copied densely) and kiln::run<plan> (parameters prepared at compile time, KILN_NO_HEAP-ready).
// All three must give the same bytes as the kernels called directly in this file with the
// parameters TFLite's Prepare derives from each tensor's quantisation; the kernels themselves are
// checked against independent references in test_int8_tfops.cpp.
// kiln-test: header-only (KILN_MAX_NODES 32 keeps the constant evaluation cheap)
#define KILN_MAX_NODES 32
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using kiln::QuantParams;
constexpr QuantParams kIn{0.06f, 5}, kHs{0.05f, -40}, kMean{0.045f, -30}, kMul{0.004f, -100}, kCat{0.009f, 2};

constexpr auto tfops = [](auto x) {  // x i8 [1, 4, 5, 3] with kIn
  auto q = kiln::as_quantized(x, kIn);
  auto lg = kiln::qlogistic(q);                                        // 1/256, -128
  auto th = kiln::qtanh(q);                                            // 1/128, 0
  auto hs = kiln::qhard_swish(q, kHs);
  auto m = kiln::qmean(hs, kiln::axes_mask({1, 2}), kMean, true);     // [1, 1, 1, 3]
  auto mul = kiln::qmul(lg, m, kMul, kiln::FusedActivation::relu());  // broadcast -> [1, 4, 5, 3]
  auto pad = kiln::qpad(mul, 1, 1, 2);                                 // [1, 7, 5, 3]
  auto sl = kiln::qslice(pad, 2, 4, 3, -2);                            // [1, 7, 3, 3]: columns 4, 2, 0
  auto tr = kiln::qslice(kiln::permute(th, {0, 2, 1, 3}), 2, 3, 3, -1);  // strided input, [1, 5, 3, 3]
  return kiln::qconcat(sl, tr, 1, kCat);                               // [1, 12, 3, 3], both requantised
};
constexpr kiln::StaticPlan kPlan = kiln::plan(tfops, kiln::input<std::int8_t>({1, 4, 5, 3}, kIn));
static_assert(kPlan.ok() && kPlan.num_int8 == 9, "every new op is one int8 step");

namespace k8 = kiln::kernels::int8;
using TQ = kiln::quant::TensorQuant;
constexpr TQ tq(QuantParams q) { return {q.scale, q.zero_point}; }

// The model, kernel by kernel, with TFLite's Prepare for each step.
std::vector<std::int8_t> direct(const std::vector<std::int8_t>& x) {
  const kiln::Shape s{1, 4, 5, 3};
  const std::size_t n = x.size();
  bool ok = false;
  std::vector<std::int8_t> lg(n), th(n), hs(n), m(3), mul(n);
  REQUIRE(k8::unary(k8::make_sigmoid_params(k8::UnaryFn::logistic, kIn.scale, kIn.zero_point, ok), x.data(), lg.data(),
                    static_cast<kiln::index_t>(n)).ok());
  REQUIRE(k8::unary(k8::make_sigmoid_params(k8::UnaryFn::tanh, kIn.scale, kIn.zero_point, ok), x.data(), th.data(),
                    static_cast<kiln::index_t>(n)).ok());
  REQUIRE(k8::unary(k8::make_hard_swish_params(kIn.scale, kIn.zero_point, kHs.scale, kHs.zero_point, ok), x.data(),
                    hs.data(), static_cast<kiln::index_t>(n)).ok());
  REQUIRE(k8::mean(k8::make_mean_params(tq(kHs), tq(kMean), 0b110u, 20), s, hs.data(), m.data()).ok());
  const k8::MulParams mp = k8::make_mul_params(tq(kiln::kLogisticOutputQuant), tq(kMean), tq(kMul),
                                               kiln::quant::activation_range(kiln::quant::Activation::relu, tq(kMul)));
  for (std::size_t i = 0; i < n; ++i) mul[i] = k8::mul_one(mp, lg[i], m[i % 3]);
  std::vector<std::int8_t> pad(7 * 5 * 3), sl(7 * 3 * 3), tr(n), tsl(5 * 3 * 3), y(12 * 3 * 3);
  REQUIRE(k8::pad_axis(s, 1, 1, 2, static_cast<std::int8_t>(kMul.zero_point), mul.data(), pad.data()).ok());
  REQUIRE(k8::slice_axis({1, 7, 5, 3}, 2, 4, -2, 3, pad.data(), sl.data()).ok());
  for (int h = 0; h < 4; ++h)  // permute {0, 2, 1, 3}: [1, 5, 4, 3]
    for (int w = 0; w < 5; ++w)
      for (int c = 0; c < 3; ++c) tr[static_cast<std::size_t>((w * 4 + h) * 3 + c)] = th[static_cast<std::size_t>((h * 5 + w) * 3 + c)];
  REQUIRE(k8::slice_axis({1, 5, 4, 3}, 2, 3, -1, 3, tr.data(), tsl.data()).ok());
  REQUIRE(k8::concat2({1, 7, 3, 3}, sl.data(), k8::make_requant(tq(kMul), tq(kCat)), {1, 5, 3, 3}, tsl.data(),
                      k8::make_requant(tq(kiln::kTanhOutputQuant), tq(kCat)), 1, y.data())
              .ok());
  return y;
}

std::string plan_error(void (*build)()) {
  try {
    build();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "no error";
}
bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("int8 TFLite ops: eager, compile() and the static runner give the kernels' bytes") {
  std::mt19937 gen(7);
  for (int trial = 0; trial < 5; ++trial) {
    kiln::Tensor<std::int8_t> x({1, 4, 5, 3});
    std::vector<std::int8_t> xv(60);
    for (kiln::index_t i = 0; i < 60; ++i) xv[static_cast<std::size_t>(i)] = x[i] = static_cast<std::int8_t>(static_cast<int>(gen() % 256u) - 128);
    const std::vector<std::int8_t> want = direct(xv);
    const kiln::Tensor<std::int8_t> yc = kiln::compile(tfops)(x);
    const kiln::Tensor<std::int8_t> ye = kiln::eager(tfops)(x);
    alignas(kiln::kAlignment) static std::uint8_t arena[kPlan.arena_bytes()];
    std::vector<std::int8_t> ys(want.size(), 0);
    kiln::run<kPlan>(arena, xv.data(), ys.data());
    REQUIRE(yc.shape() == kiln::Shape{1, 12, 3, 3});
    for (std::size_t i = 0; i < want.size(); ++i) {
      INFO("element " << i);
      REQUIRE(yc[static_cast<kiln::index_t>(i)] == want[i]);
      REQUIRE(ye[static_cast<kiln::index_t>(i)] == want[i]);
      REQUIRE(ys[i] == want[i]);
    }
  }
}

TEST_CASE("int8 TFLite ops: type errors name the op and the shapes") {
  const std::string cat = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qconcat(x, kiln::qpad(x, 2, 1, 0), 1, kCat); },
                     kiln::input<std::int8_t>({1, 4, 5, 3}, kIn));
  });
  CHECK(has(cat, "qconcat"));
  CHECK(has(cat, "[1, 4, 5, 3]"));
  CHECK(has(cat, "[1, 4, 6, 3]"));
  const std::string sl = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qslice(x, 2, 1, 3, -1); }, kiln::input<std::int8_t>({1, 4, 5, 3}, kIn));
  });
  CHECK(has(sl, "qslice"));
  CHECK(has(sl, "step -1"));
  const std::string mean = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qmean(x, kiln::axes_mask({4}), kMean); },
                     kiln::input<std::int8_t>({1, 4, 5, 3}, kIn));
  });
  CHECK(has(mean, "qmean"));
  const std::string noq = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qlogistic(x); }, kiln::input<std::int8_t>({2, 3}));
  });
  CHECK(has(noq, "qlogistic"));
  CHECK(has(noq, "no valid quantisation"));
  const std::string hs = plan_error([] {  // output multiplier above one: TFLite's Prepare fails too
    (void)kiln::plan([](auto x) { return kiln::qhard_swish(x, QuantParams{0.0001f, 0}); },
                     kiln::input<std::int8_t>({2, 3}, kIn));
  });
  CHECK(has(hs, "qhard_swish"));
}
