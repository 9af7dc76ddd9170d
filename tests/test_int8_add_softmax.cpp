// int8 add and softmax: bit-exact against a reference written in a different style (typed
// fixed-point values over the int64 primitives of tests/int8_reference.hpp), hand-computed
// TFLite values, and the float functions they approximate.
#include <doctest/doctest.h>

#include <kiln/kernels/int8/add.hpp>
#include <kiln/kernels/int8/softmax.hpp>
#include <kiln/quant/quantize.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "int8_reference.hpp"

using kiln::index_t;
using kiln::Shape;
using namespace kiln::kernels::int8;
namespace q = kiln::quant;
namespace ref = int8ref;

namespace {

// ---- reference ADD: TFLite's arithmetic spelled out with the int64 primitives ----------------
std::int8_t ref_add(const AddParams& p, int a, int b) {
  const std::int32_t x1 = (a + p.input1_offset) * (1 << p.left_shift);
  const std::int32_t x2 = (b + p.input2_offset) * (1 << p.left_shift);
  const std::int32_t s1 = ref::rdbpot(ref::srdhm(x1, p.input1_multiplier), -p.input1_shift);
  const std::int32_t s2 = ref::rdbpot(ref::srdhm(x2, p.input2_multiplier), -p.input2_shift);
  const std::int64_t out = ref::rdbpot(ref::srdhm(s1 + s2, p.output_multiplier), -p.output_shift) +
                           std::int64_t{p.output_offset};
  return ref::clamp8(out, p.act_min, p.act_max);
}

// ---- reference SOFTMAX: gemmlowp's fixed-point types, as typed values ------------------------
template <int I>
struct Fx {  // Q(I).(31-I)
  std::int32_t raw;
  static Fx one() { return {I == 0 ? 2147483647 : (std::int32_t{1} << (31 - I))}; }
};
template <int A, int B>
Fx<A + B> operator*(Fx<A> a, Fx<B> b) { return {ref::srdhm(a.raw, b.raw)}; }
template <int I>
Fx<I> operator+(Fx<I> a, Fx<I> b) { return {static_cast<std::int32_t>(static_cast<std::uint32_t>(a.raw) + static_cast<std::uint32_t>(b.raw))}; }
template <int I>
Fx<I> operator-(Fx<I> a, Fx<I> b) { return {static_cast<std::int32_t>(static_cast<std::uint32_t>(a.raw) - static_cast<std::uint32_t>(b.raw))}; }
// Multiply the raw by 2^e: saturating for e > 0, rounding (ties away from zero) for e < 0.
std::int32_t mul_pot(std::int32_t x, int e) {
  if (e <= 0) return ref::rdbpot(x, -e);
  const std::int64_t v = std::int64_t{x} * (std::int64_t{1} << e);
  return static_cast<std::int32_t>(std::clamp<std::int64_t>(v, ref::kMin32, ref::kMax32));
}
template <int To, int From>
Fx<To> rescale(Fx<From> x) { return {mul_pot(x.raw, From - To)}; }

Fx<0> exp_quarter(Fx<0> a) {  // exp on [-1/4, 0): Taylor around -1/8
  const Fx<0> c{1895147668}, third{715827883};
  const Fx<0> x = a + Fx<0>{1 << 28};
  const Fx<0> x2 = x * x, x3 = x2 * x, x4 = x2 * x2;
  const Fx<0> x4_4{mul_pot(x4.raw, -2)};
  const Fx<0> poly{mul_pot(((x4_4 + x3) * third + x2).raw, -1)};
  return c + c * (x + poly);
}

Fx<0> exp_neg(Fx<5> a) {
  const std::int32_t quarter = 1 << 24;
  const Fx<5> frac{static_cast<std::int32_t>((a.raw & (quarter - 1)) - quarter)};
  Fx<0> r = exp_quarter(rescale<0>(frac));
  const std::int32_t rem = (frac - a).raw;
  const double consts[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  for (int k = 0; k < 7; ++k)
    if (rem & (1 << (24 + k))) r = Fx<0>{ref::srdhm(r.raw, static_cast<std::int32_t>(consts[k]))};
  return a.raw == 0 ? Fx<0>::one() : r;
}

Fx<0> one_over_one_plus(Fx<0> a) {
  const Fx<0> half{static_cast<std::int32_t>((std::int64_t{a.raw} + 2147483647 + 1) / 2)};  // sum > 0 here
  Fx<2> x = Fx<2>{1515870810} + half * Fx<2>{-1010580540};
  for (int i = 0; i < 3; ++i) {
    const Fx<2> t = half * x;
    x = x + rescale<2>(x * (Fx<2>::one() - t));
  }
  return rescale<0>(Fx<1>{x.raw});
}

std::vector<std::int8_t> ref_softmax(const SoftmaxParams& p, const std::vector<std::int8_t>& in, index_t depth) {
  std::vector<std::int8_t> out(in.size());
  for (std::size_t r = 0; r < in.size() / static_cast<std::size_t>(depth); ++r) {
    const std::int8_t* x = in.data() + r * static_cast<std::size_t>(depth);
    const int mx = *std::max_element(x, x + depth);
    auto e = [&](int diff) {
      return exp_neg(Fx<5>{ref::srdhm(diff * (1 << p.input_left_shift), p.input_multiplier)});
    };
    Fx<12> sum{0};
    for (index_t c = 0; c < depth; ++c)
      if (x[c] - mx >= p.diff_min) sum = sum + rescale<12>(e(x[c] - mx));
    int lz = 0;
    while (!(static_cast<std::uint32_t>(sum.raw) & (0x80000000u >> lz))) ++lz;
    const int bits_over_unit = 12 - lz;
    const Fx<0> scale = one_over_one_plus(
        Fx<0>{static_cast<std::int32_t>((static_cast<std::uint32_t>(sum.raw) << lz) - 0x80000000u)});
    for (index_t c = 0; c < depth; ++c) {
      std::int64_t v = -128;
      if (x[c] - mx >= p.diff_min) {
        const int sh = bits_over_unit + 23;
        v = (sh > 31 ? 0 : ref::rdbpot((scale * e(x[c] - mx)).raw, sh)) - 128;
      }
      out[r * static_cast<std::size_t>(depth) + static_cast<std::size_t>(c)] = ref::clamp8(v, -128, 127);
    }
  }
  return out;
}

}  // namespace

// Parameter derivation is constexpr: a static plan can bake the integers into flash.
static_assert(make_softmax_params(1.f, 1.f / 16).input_left_shift == 23, "");
static_assert(make_add_params({0.5f, 3}, {0.25f, -7}, {1.0f, 10}, {-128, 127}).output_shift == -19, "");
static_assert(add_one(make_add_params({0.5f, 3}, {0.25f, -7}, {1.0f, 10}, {-128, 127}), 5, 1) == 13, "");

TEST_CASE("int8 add: make_add_params follows TFLite's Prepare") {
  const AddParams p = make_add_params({0.5f, 3}, {0.25f, -7}, {1.0f, 10}, {-128, 127});
  CHECK(p.left_shift == 20);
  CHECK(p.input1_offset == -3);
  CHECK(p.input2_offset == 7);
  CHECK(p.output_offset == 10);
  // 0.5 / (2 * 0.5) = 0.5 -> {2^30, 0}; 0.25 / 1 = 0.25 -> {2^30, -1}; 1 / (2^20 * 1) -> {2^30, -19}.
  CHECK(p.input1_multiplier == (1 << 30));
  CHECK(p.input1_shift == 0);
  CHECK(p.input2_multiplier == (1 << 30));
  CHECK(p.input2_shift == -1);
  CHECK(p.output_multiplier == (1 << 30));
  CHECK(p.output_shift == -19);
  // Hand-computed: (5 - 3) * 0.5 + (1 + 7) * 0.25 = 3.0 real -> 3 / 1.0 + 10 = 13.
  std::int8_t a = 5, b = 1, y = 0;
  REQUIRE(add(p, Shape{1}, &a, Shape{1}, &b, Shape{1}, &y).ok());
  CHECK(y == 13);
}

TEST_CASE("int8 add: bit-exact vs reference and within one step of the float sum") {
  ref::Rng rng(555);
  for (int trial = 0; trial < 60; ++trial) {
    std::uniform_real_distribution<float> sc(0.005f, 0.5f);
    const q::TensorQuant q1{sc(rng.gen), rng.uniform(-128, 127)}, q2{sc(rng.gen), rng.uniform(-128, 127)},
        qo{sc(rng.gen) * 2, rng.uniform(-128, 127)};
    const q::ActivationRange act = q::activation_range(trial % 3 == 0 ? q::Activation::relu : q::Activation::none, qo);
    const AddParams p = make_add_params(q1, q2, qo, act);
    const index_t n = 1 + rng.uniform(0, 300);
    const Shape shape{1, n};
    const auto a = rng.int8s(static_cast<std::size_t>(n)), b = rng.int8s(static_cast<std::size_t>(n));
    std::vector<std::int8_t> y(static_cast<std::size_t>(n));
    REQUIRE(add(p, shape, a.data(), shape, b.data(), shape, y.data()).ok());
    for (std::size_t i = 0; i < y.size(); ++i) {
      REQUIRE(y[i] == ref_add(p, a[i], b[i]));
      const float real = q::dequantize_value(a[i], q1) + q::dequantize_value(b[i], q2);
      const int want = q::quantize_value(real, qo);
      const int clamped = std::clamp(want, act.min, act.max);
      REQUIRE(std::abs(y[i] - clamped) <= 1);
    }
  }
  // Exhaustive over all input pairs for one parameter set (65536 values).
  const AddParams p = make_add_params({0.0391f, -12}, {0.0713f, 5}, {0.0977f, 3}, {-128, 127});
  for (int a = -128; a <= 127; ++a)
    for (int b = -128; b <= 127; ++b)
      REQUIRE(add_one(p, static_cast<std::int8_t>(a), static_cast<std::int8_t>(b)) == ref_add(p, a, b));
  // Errors.
  std::int8_t buf[8] = {};
  const kiln::Status st = add(p, Shape{2, 3}, buf, Shape{3, 2}, buf, Shape{2, 3}, buf);
  CHECK(st.code() == kiln::Errc::shape_mismatch);
  CHECK(std::string(st.message()).find("[3, 2]") != std::string::npos);
}

TEST_CASE("fixed-point exp and 1/(1+x): raw Q0.31 bits equal the typed reference") {
  ref::Rng rng(1);
  std::uniform_int_distribution<std::int32_t> neg(ref::kMin32, 0);
  for (int i = 0; i < 200000; ++i) {
    const std::int32_t a = i < 4096 ? -i * 4099 : neg(rng.gen);
    REQUIRE(q::exp_on_negative_values<5>(a) == exp_neg(Fx<5>{a}).raw);
  }
  std::uniform_int_distribution<std::int32_t> unit(0, ref::kMax32);
  for (int i = 0; i < 200000; ++i) {
    const std::int32_t a = i < 64 ? i : (i < 128 ? ref::kMax32 - (i - 64) : unit(rng.gen));
    REQUIRE(q::one_over_one_plus_x_for_x_in_0_1(a) == one_over_one_plus(Fx<0>{a}).raw);
  }
}

TEST_CASE("int8 softmax: parameters as TFLite computes them") {
  // beta 1, scale 1/16: real multiplier 2^-4 * 2^26 = 2^22 -> {2^30, 23}; radius floor(31*2^26 / 2^23).
  const SoftmaxParams p = make_softmax_params(1.f, 1.f / 16);
  CHECK(p.input_multiplier == (1 << 30));
  CHECK(p.input_left_shift == 23);
  CHECK(p.diff_min == -248);
  // A huge scale caps the multiplier at 2^31 - 1.
  const SoftmaxParams big = make_softmax_params(1.f, 1000.f);
  CHECK(big.input_left_shift == 31);
  CHECK(big.input_multiplier == 2147483647);
  CHECK(big.diff_min == 0);  // floor(31 * 2^26 / 2^31) = floor(0.97): only the max contributes
}

TEST_CASE("int8 softmax: hand-computed TFLite values") {
  const SoftmaxParams p = make_softmax_params(1.f, 0.1f);
  // One element: probability 1 -> 256 - 128 = 128, clamped to 127.
  std::int8_t one = 42, y1 = 0;
  REQUIRE(softmax(p, Shape{1, 1}, &one, Shape{1, 1}, &y1).ok());
  CHECK(y1 == 127);
  // Two equal elements: 0.5 each -> 128 - 128 = 0.
  std::int8_t two[2] = {-5, -5}, y2[2] = {1, 1};
  REQUIRE(softmax(p, Shape{1, 2}, two, Shape{1, 2}, y2).ok());
  CHECK(y2[0] == 0);
  CHECK(y2[1] == 0);
  // Four equal: 0.25 -> 64 - 128 = -64.
  std::int8_t four[4] = {9, 9, 9, 9}, y4[4] = {};
  REQUIRE(softmax(p, Shape{4}, four, Shape{4}, y4).ok());
  for (std::int8_t v : y4) CHECK(v == -64);
  // A difference far below diff_min is skipped: exactly -128, the other gets everything.
  const SoftmaxParams sharp = make_softmax_params(1.f, 1.f);
  std::int8_t far[2] = {127, -128}, yf[2] = {};
  REQUIRE(softmax(sharp, Shape{2}, far, Shape{2}, yf).ok());
  CHECK(yf[0] == 127);
  CHECK(yf[1] == -128);
}

TEST_CASE("int8 softmax: bit-exact vs the typed fixed-point reference, close to float softmax") {
  ref::Rng rng(9090);
  int rows_checked = 0;
  for (float scale : {0.00390625f, 0.05f, 0.1f, 0.25f, 0.584702920f, 1.f})
    for (index_t depth : {1, 2, 3, 10, 12, 17, 100, 1000}) {
      const SoftmaxParams p = make_softmax_params(1.f, scale);
      const index_t rows = 3;
      const auto x = rng.int8s(static_cast<std::size_t>(rows * depth));
      std::vector<std::int8_t> y(x.size());
      REQUIRE(softmax(p, Shape{rows, depth}, x.data(), Shape{rows, depth}, y.data()).ok());
      REQUIRE(y == ref_softmax(p, x, depth));
      for (index_t r = 0; r < rows; ++r) {
        const std::int8_t* xr = x.data() + r * depth;
        const int mx = *std::max_element(xr, xr + depth);
        double sum = 0;
        for (index_t c = 0; c < depth; ++c) sum += std::exp(scale * (xr[c] - mx));
        for (index_t c = 0; c < depth; ++c) {
          const double prob = std::exp(scale * (xr[c] - mx)) / sum;
          const int want = std::clamp(static_cast<int>(std::lround(prob * 256)) - 128, -128, 127);
          REQUIRE(std::abs(y[static_cast<std::size_t>(r * depth + c)] - want) <= 1);
        }
        ++rows_checked;
      }
    }
  CHECK(rows_checked == 6 * 8 * 3);
  // Flat rows long enough that TFLite's final shift would exceed 31 (sum >= 2^28).
  const SoftmaxParams p = make_softmax_params(1.f, 0.1f);
  std::vector<std::int8_t> flat(600, 7), y(600);
  REQUIRE(softmax(p, Shape{600}, flat.data(), Shape{600}, y.data()).ok());
  CHECK(y == ref_softmax(p, flat, 600));
  CHECK(y[0] == -128);  // 256/600 = 0.43 -> 0 steps above -128
  std::vector<std::int8_t> huge(5000);
  CHECK(softmax(p, Shape{5000}, huge.data(), Shape{5000}, huge.data()).code() == kiln::Errc::not_supported);
}
