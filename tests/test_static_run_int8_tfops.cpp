// The int8 TFLite operators (qmul, qlogistic, qtanh, qhard_swish, qmean, qpad, qslice, qconcat)
// through the three runners: kiln::eager (op by op), kiln::compile (planned arena, strided views
// copied densely) and kiln::run<plan> (parameters prepared at compile time, KILN_NO_HEAP-ready).
// All three must give the same bytes as the kernels called directly (firmware/fw_int8_tfops_model.hpp,
// also run on the Cortex-M4 by fw_int8_tfops) with the parameters TFLite's Prepare derives from
// each tensor's quantisation; the kernels themselves are
// checked against independent references in test_int8_tfops.cpp.
// kiln-test: header-only (KILN_MAX_NODES 32 keeps the constant evaluation cheap)
#define KILN_MAX_NODES 32
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "firmware/fw_int8_tfops_model.hpp"

namespace {

using kiln::QuantParams;
using tfops::kCat;
using tfops::kIn;
using tfops::kMean;

constexpr kiln::StaticPlan kPlan = kiln::plan(tfops::model, kiln::input<std::int8_t>({1, 4, 5, 3}, kIn));
static_assert(kPlan.ok() && kPlan.num_int8 == 9, "every new op is one int8 step");

std::vector<std::int8_t> direct(const std::vector<std::int8_t>& x) {
  std::vector<std::int8_t> y(static_cast<std::size_t>(tfops::kOutputSize));
  REQUIRE(tfops::direct(x.data(), y.data()));
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
    const kiln::Tensor<std::int8_t> yc = kiln::compile(tfops::model)(x);
    const kiln::Tensor<std::int8_t> ye = kiln::eager(tfops::model)(x);
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
