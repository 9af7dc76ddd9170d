// int8 MUL, LOGISTIC, TANH, HARD_SWISH, MEAN, PAD, STRIDED_SLICE, CONCATENATION kernels
// (kernels/int8/{mul,activations,mean,copy}.hpp): byte for byte against references written in
// this file — TFLite Micro's reference arithmetic restated over the int64 primitives of
// tests/int8_reference.hpp, parameters derived with <cmath> (std::frexp, std::round) as TFLite's
// Prepare does — on every int8 input for random scales and zero points, and on random shapes;
// plus the float functions they approximate, within a stated number of steps.
#include <doctest/doctest.h>

#include <kiln/kernels/int8.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "int8_reference.hpp"

using kiln::index_t;
using kiln::Shape;
using namespace kiln::kernels::int8;
namespace ref = int8ref;
using i64 = std::int64_t;

namespace {

// ---- TFLite's Prepare helpers, with <cmath> ----------------------------------------------------
struct Mult {
  std::int32_t m = 0;
  int shift = 0;
};
// QuantizeMultiplier: frexp, round half away, 2^31 renormalised, tiny flushed.
Mult quantize_multiplier(double real) {
  if (real == 0) return {};
  int shift = 0;
  const double q = std::frexp(real, &shift);
  i64 f = static_cast<i64>(std::round(q * 2147483648.0));
  if (f == (i64{1} << 31)) {
    f /= 2;
    ++shift;
  }
  if (shift < -31) return {};
  return {static_cast<std::int32_t>(f), shift};
}

// ---- gemmlowp fixed point, as values Q(I) over raw int32 --------------------------------------
std::int32_t wrap(i64 v) { return static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(v))); }
std::int32_t mul_pot(std::int32_t x, int e) {  // raw * 2^e: saturating up, rounding down
  if (e <= 0) return ref::rdbpot(x, -e);
  const i64 v = i64{x} * (i64{1} << e);
  return static_cast<std::int32_t>(v < ref::kMin32 ? ref::kMin32 : v > ref::kMax32 ? ref::kMax32 : v);
}
std::int32_t exp_quarter(std::int32_t a) {  // exp on [-1/4, 0), Q0.31 in and out
  const std::int32_t c = 1895147668, third = 715827883;
  const std::int32_t x = wrap(i64{a} + (1 << 28));
  const std::int32_t x2 = ref::srdhm(x, x), x3 = ref::srdhm(x2, x), x4 = ref::srdhm(x2, x2);
  const std::int32_t poly = mul_pot(wrap(i64{ref::srdhm(wrap(i64{mul_pot(x4, -2)} + x3), third)} + x2), -1);
  return wrap(i64{c} + ref::srdhm(c, wrap(i64{x} + poly)));
}
// exp(a) for a <= 0 given in Q(I).
std::int32_t exp_neg(std::int32_t a, int I) {
  const int frac_bits = 31 - I;
  const std::int32_t quarter = std::int32_t{1} << (frac_bits - 2);
  const std::int32_t f = wrap(i64{a & (quarter - 1)} - quarter);
  std::int32_t r = exp_quarter(mul_pot(f, I));
  const std::int32_t rem = wrap(i64{f} - a);
  const std::int32_t k[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  for (int e = -2; e <= 4; ++e)
    if (I > e && (rem >> (frac_bits + e) & 1)) r = ref::srdhm(r, k[e + 2]);
  if (I > 5 && a < -(std::int32_t{1} << (36 - I))) r = 0;
  return a == 0 ? static_cast<std::int32_t>(ref::kMax32) : r;
}
std::int32_t newton_q2(std::int32_t a) {  // 2 / (1 + a) in Q2.29 for a in Q0.31
  const i64 s = i64{a} + ref::kMax32;
  const std::int32_t half = static_cast<std::int32_t>((s + (s >= 0 ? 1 : -1)) / 2);
  std::int32_t x = wrap(i64{1515870810} + ref::srdhm(half, -1010580540));
  for (int i = 0; i < 3; ++i) x = wrap(i64{x} + mul_pot(ref::srdhm(x, wrap((i64{1} << 29) - ref::srdhm(half, x))), 2));
  return x;
}
std::int32_t ref_logistic_q0(std::int32_t a) {  // input Q4.27
  if (a == 0) return 1 << 30;
  const std::int32_t pos = mul_pot(newton_q2(exp_neg(a > 0 ? -a : a, 4)), 1);
  return a > 0 ? pos : wrap(ref::kMax32 - pos);
}
std::int32_t ref_tanh_q0(std::int32_t a) {  // input Q4.27
  if (a == 0) return 0;
  const std::int32_t t = mul_pot(wrap(i64{newton_q2(exp_neg(a > 0 ? -a : a, 5))} - (1 << 29)), 2);
  return a < 0 ? -t : t;
}

// LOGISTIC / TANH (reference_integer_ops), parameters as TFLM's Prepare.
std::int8_t ref_sigmoid(bool logistic, float scale, int zp, int q) {
  int shift = 0;
  const double m = std::frexp(static_cast<double>(scale) * (1 << 27), &shift);
  const auto mult = static_cast<std::int32_t>(std::round(m * 2147483648.0));
  const i64 radius = static_cast<i64>(std::floor(15.0 * (1 << 27) / std::ldexp(1.0, shift)));
  const int d = q - zp;
  if (d <= -radius) return -128;
  if (d >= radius) return 127;
  const std::int32_t x = ref::mbqm(d, mult, shift);
  const i64 y = logistic ? i64{ref::rdbpot(ref_logistic_q0(x), 23)} - 128 : ref::rdbpot(ref_tanh_q0(x), 24);
  return ref::clamp8(y, -128, 127);
}

// HARD_SWISH (reference_ops::HardSwish), int16 steps spelled out with int32 values.
std::int16_t i16(i64 v) { return static_cast<std::int16_t>(static_cast<std::uint16_t>(static_cast<std::uint64_t>(v))); }
std::int16_t srdhm16(std::int16_t a, std::int16_t b) {
  if (a == -32768 && b == -32768) return 32767;
  return i16(ref::floor_div(i64{a} * b + (1 << 14), 1 << 15));  // ties toward +inf
}
std::int16_t rdbpot16(std::int16_t x, int e) {  // gemmlowp's int16 masks and shifts
  const std::int16_t mask = i16((i64{1} << e) - 1);
  const std::int16_t rem = i16(x & mask), thr = i16((mask >> 1) + (x < 0));
  return i16((x >> e) + (rem > thr));
}
std::int8_t ref_hard_swish(float in_scale, int in_zp, float out_scale, int out_zp, int q) {
  const float hires = (1.0f / 128.0f) * in_scale;
  const Mult om = quantize_multiplier(static_cast<double>(hires / out_scale));
  const Mult rm = quantize_multiplier(static_cast<double>(hires / (3.0f / 32768.0f)));
  auto down = [](std::int32_t m) { return m >= 2147483647 - 32768 ? std::int16_t{32767} : i16((m + 32768) >> 16); };
  const std::int16_t in = i16((q - in_zp) * 128);
  const std::int16_t pre = srdhm16(in, down(om.m));
  i64 r = in;
  if (rm.shift > 0) r = std::min<i64>(32767, std::max<i64>(-32768, r * (i64{1} << (rm.shift - 1))));
  r = srdhm16(i16(r), down(rm.m));
  if (rm.shift > 0) r = std::min<i64>(32767, std::max<i64>(-32768, r * 2));
  if (rm.shift < 0) r = rdbpot16(i16(r), -rm.shift);
  r = (r + 32768) >> 1;
  const std::int16_t prod = i16((i64{i16(r)} * pre) / 32768);  // truncating
  return ref::clamp8(i16(i64{rdbpot16(prod, -om.shift)} + out_zp), -128, 127);
}

float rnd_scale(ref::Rng& rng, float lo_log2, float hi_log2) {
  return std::ldexp(1.0f + static_cast<float>(rng.uniform(0, 999)) / 1000.f,
                    rng.uniform(static_cast<int>(lo_log2), static_cast<int>(hi_log2)));
}

std::vector<std::int8_t> all_int8() {
  std::vector<std::int8_t> v(256);
  for (int i = 0; i < 256; ++i) v[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(i - 128);
  return v;
}

// Multi-index helpers for the copy references.
index_t offset_of(const Shape& s, const index_t* idx) {
  index_t o = 0;
  for (int d = 0; d < s.rank(); ++d) o = o * s[d] + idx[d];
  return o;
}
bool next_index(const Shape& s, index_t* idx) {
  for (int d = s.rank() - 1; d >= 0; --d) {
    if (++idx[d] < s[d]) return true;
    idx[d] = 0;
  }
  return false;
}

}  // namespace

// Parameter derivations are constexpr: a static plan bakes them into flash.
constexpr int sigmoid_shift(float scale) {
  bool ok = false;
  return make_sigmoid_params(UnaryFn::logistic, scale, 0, ok).input_left_shift;
}
static_assert(sigmoid_shift(0.1f) == 24, "");
static_assert(make_mul_params({0.5f, 3}, {0.25f, -7}, {1.0f, 10}, {-128, 127}).output_shift == -2, "");

TEST_CASE("int8 LOGISTIC and TANH: every input, random scales, TFLM's fixed point byte for byte") {
  ref::Rng rng(11);
  const std::vector<std::int8_t> x = all_int8();
  std::vector<std::int8_t> y(256), big(1000), ybig(1000);
  for (int t = 0; t < 200; ++t) {
    const bool logistic = t % 2 == 0;
    const float scale = rnd_scale(rng, -9, 1);  // 2^-9 .. 2^2
    const int zp = rng.uniform(-128, 127);
    bool ok = false;
    const UnaryParams p = make_sigmoid_params(logistic ? UnaryFn::logistic : UnaryFn::tanh, scale, zp, ok);
    REQUIRE(ok);
    REQUIRE(unary(p, x.data(), y.data(), 256).ok());
    for (int i = 0; i < 256; ++i) {
      const int q = i - 128;
      INFO("logistic " << logistic << " scale " << scale << " zp " << zp << " q " << q);
      REQUIRE(static_cast<int>(y[static_cast<std::size_t>(i)]) == ref_sigmoid(logistic, scale, zp, q));
      // The float function: within one output step (1/256 or 1/128).
      const double real = static_cast<double>(scale) * (q - zp);
      const double f = logistic ? 256.0 / (1.0 + std::exp(-real)) - 128.0 : 128.0 * std::tanh(real);
      CHECK(std::fabs(static_cast<double>(y[static_cast<std::size_t>(i)]) - std::min(127.0, std::max(-128.0, f))) <= 1.0);
    }
    // Larger tensors go through the 256-entry table: the same bytes.
    for (auto& v : big) v = static_cast<std::int8_t>(rng.uniform(-128, 127));
    REQUIRE(unary(p, big.data(), ybig.data(), 1000).ok());
    for (std::size_t i = 0; i < big.size(); ++i) REQUIRE(ybig[i] == y[static_cast<std::size_t>(big[i] + 128)]);
  }
  // Known values: logistic(0) = 1/2 -> 0; tanh(0) = 0; saturation beyond the radius.
  bool ok = false;
  const UnaryParams l = make_sigmoid_params(UnaryFn::logistic, 0.1f, 0, ok);
  CHECK(l.input_left_shift == 24);
  CHECK(l.input_range_radius == 120);
  CHECK(unary_one(l, 0) == 0);
  CHECK(unary_one(l, 127) == 127);
  CHECK(unary_one(l, -128) == -128);
  const UnaryParams th = make_sigmoid_params(UnaryFn::tanh, 0.1f, 0, ok);
  CHECK(unary_one(th, 0) == 0);
  CHECK(unary_one(th, 10) == -unary_one(th, -10));
}

TEST_CASE("int8 HARD_SWISH: every input, random scales, TFLite's int16 fixed point byte for byte") {
  ref::Rng rng(12);
  const std::vector<std::int8_t> x = all_int8();
  std::vector<std::int8_t> y(256);
  int tested = 0;
  for (int t = 0; t < 300; ++t) {
    const float in_scale = rnd_scale(rng, -8, 0), out_scale = rnd_scale(rng, -8, 0);
    const int in_zp = rng.uniform(-128, 127), out_zp = rng.uniform(-128, 127);
    bool ok = false;
    const UnaryParams p = make_hard_swish_params(in_scale, in_zp, out_scale, out_zp, ok);
    if (!ok) {  // TFLite rejects an output multiplier above one too
      CHECK(in_scale / 128.f > out_scale * 0.99f);
      continue;
    }
    ++tested;
    REQUIRE(unary(p, x.data(), y.data(), 256).ok());
    for (int i = 0; i < 256; ++i) {
      const int q = i - 128;
      INFO("in " << in_scale << ',' << in_zp << " out " << out_scale << ',' << out_zp << " q " << q);
      REQUIRE(static_cast<int>(y[static_cast<std::size_t>(i)]) == ref_hard_swish(in_scale, in_zp, out_scale, out_zp, q));
      const double r = static_cast<double>(in_scale) * (q - in_zp);
      const double f = r * std::min(6.0, std::max(0.0, r + 3)) / 6 / static_cast<double>(out_scale) + out_zp;
      // The int16 pipeline loses bits for small input / output ratios; 2 steps where it is faithful.
      if (in_scale / out_scale > 0.25f && f > -127 && f < 126)
        CHECK(std::fabs(static_cast<double>(y[static_cast<std::size_t>(i)]) - f) <= 2.0);
    }
  }
  CHECK(tested > 100);
}

TEST_CASE("int8 MUL: random parameters and activations, TFLite's arithmetic byte for byte") {
  ref::Rng rng(13);
  for (int t = 0; t < 200; ++t) {
    const kiln::quant::TensorQuant a{rnd_scale(rng, -8, 0), rng.uniform(-128, 127)};
    const kiln::quant::TensorQuant b{rnd_scale(rng, -8, 0), rng.uniform(-128, 127)};
    const kiln::quant::TensorQuant o{rnd_scale(rng, -10, 0), rng.uniform(-128, 127)};
    const int lo = rng.uniform(-128, 0), hi = rng.uniform(lo, 127);
    const MulParams p = make_mul_params(a, b, o, {lo, hi});
    const Mult m = quantize_multiplier(static_cast<double>(a.scale) * b.scale / o.scale);
    REQUIRE(p.output_multiplier == m.m);
    REQUIRE(p.output_shift == m.shift);
    for (int k = 0; k < 500; ++k) {
      const int u = rng.uniform(-128, 127), v = rng.uniform(-128, 127);
      const i64 want = i64{ref::mbqm((u - a.zero_point) * (v - b.zero_point), m.m, m.shift)} + o.zero_point;
      REQUIRE(static_cast<int>(mul_one(p, static_cast<std::int8_t>(u), static_cast<std::int8_t>(v))) ==
              ref::clamp8(want, lo, hi));
    }
  }
}

TEST_CASE("int8 MEAN: random shapes and axes, TFLM's QuantizedMeanOrSum byte for byte") {
  ref::Rng rng(14);
  for (int t = 0; t < 150; ++t) {
    const int r = rng.uniform(1, 4);
    Shape s = Shape::of_rank(r);
    for (int d = 0; d < r; ++d) s[d] = rng.uniform(1, 6);
    std::uint32_t axes = static_cast<std::uint32_t>(rng.uniform(1, (1 << r) - 1));
    const kiln::quant::TensorQuant in{rnd_scale(rng, -8, 0), rng.uniform(-128, 127)};
    const kiln::quant::TensorQuant out = t % 3 == 0 ? in : kiln::quant::TensorQuant{rnd_scale(rng, -8, 0), rng.uniform(-128, 127)};
    i64 count = 1;
    for (int d = 0; d < r; ++d)
      if (axes >> d & 1) count *= s[d];
    const MeanParams p = make_mean_params(in, out, axes, static_cast<std::int32_t>(count));
    // TFLM: QuantizeMultiplier, then 1/count folded in with k = min(floor(log2 count), 32, 31 + shift).
    const Mult m = quantize_multiplier(static_cast<double>(in.scale) / out.scale);
    int k = 0;
    while ((i64{2} << k) <= count) ++k;
    k = std::min(k, std::min(32, 31 + m.shift));
    const auto mm = static_cast<std::int32_t>((i64{m.m} << k) / count);
    const std::vector<std::int8_t> x = rng.int8s(static_cast<std::size_t>(s.numel()));
    std::vector<std::int8_t> y(static_cast<std::size_t>(s.numel() / count), 0);
    REQUIRE(mean(p, s, x.data(), y.data()).ok());
    // Reference: for each input element, its output index (the kept coordinates in order).
    std::vector<i64> sums(y.size(), 0);
    index_t idx[kiln::kMaxRank]{};
    do {
      i64 o = 0;
      for (int d = 0; d < r; ++d)
        if (!(axes >> d & 1)) o = o * s[d] + idx[d];
      sums[static_cast<std::size_t>(o)] += x[static_cast<std::size_t>(offset_of(s, idx))];
    } while (next_index(s, idx));
    for (std::size_t o = 0; o < y.size(); ++o) {
      const i64 v = i64{ref::mbqm(static_cast<std::int32_t>(sums[o] - in.zero_point * count), mm, m.shift - k)} + out.zero_point;
      INFO("shape " << s << " axes " << axes << " output " << o);
      REQUIRE(static_cast<int>(y[o]) == ref::clamp8(v, -128, 127));
    }
  }
}

TEST_CASE("int8 PAD, STRIDED_SLICE (negative steps), CONCATENATION (requantised): random shapes") {
  ref::Rng rng(15);
  for (int t = 0; t < 200; ++t) {
    const int r = rng.uniform(1, 4), axis = rng.uniform(0, r - 1);
    Shape s = Shape::of_rank(r);
    for (int d = 0; d < r; ++d) s[d] = rng.uniform(1, 5);
    const std::vector<std::int8_t> x = rng.int8s(static_cast<std::size_t>(s.numel()));
    // PAD
    const index_t before = rng.uniform(0, 3), after = rng.uniform(0, 3);
    const auto value = static_cast<std::int8_t>(rng.uniform(-128, 127));
    Shape ps = s;
    ps[axis] += before + after;
    std::vector<std::int8_t> y(static_cast<std::size_t>(ps.numel()));
    REQUIRE(pad_axis(s, axis, before, after, value, x.data(), y.data()).ok());
    index_t idx[kiln::kMaxRank]{};
    do {
      const index_t j = idx[axis] - before;
      index_t src[kiln::kMaxRank];
      for (int d = 0; d < r; ++d) src[d] = idx[d];
      src[axis] = j;
      const std::int8_t want = j < 0 || j >= s[axis] ? value : x[static_cast<std::size_t>(offset_of(s, src))];
      REQUIRE(y[static_cast<std::size_t>(offset_of(ps, idx))] == want);
    } while (next_index(ps, idx));
    // STRIDED_SLICE along the axis, any non-zero step.
    index_t step = rng.uniform(1, 3) * (rng.uniform(0, 1) ? 1 : -1);
    const index_t start = rng.uniform(0, static_cast<int>(s[axis]) - 1);
    const index_t count = step > 0 ? (s[axis] - start + step - 1) / step : start / -step + 1;
    Shape ss = s;
    ss[axis] = count;
    y.assign(static_cast<std::size_t>(ss.numel()), 0);
    REQUIRE(slice_axis(s, axis, start, step, count, x.data(), y.data()).ok());
    index_t jdx[kiln::kMaxRank]{};
    if (count > 0) do {
        index_t src[kiln::kMaxRank];
        for (int d = 0; d < r; ++d) src[d] = jdx[d];
        src[axis] = start + jdx[axis] * step;
        REQUIRE(y[static_cast<std::size_t>(offset_of(ss, jdx))] == x[static_cast<std::size_t>(offset_of(s, src))]);
      } while (next_index(ss, jdx));
    CHECK_FALSE(slice_axis(s, axis, start, step, count + 1, x.data(), y.data()).ok());  // one past the end
    // CONCATENATION of x and b along the axis, b requantised (or not) to the output.
    Shape bs = s;
    bs[axis] = rng.uniform(1, 4);
    const std::vector<std::int8_t> b = rng.int8s(static_cast<std::size_t>(bs.numel()));
    const kiln::quant::TensorQuant qa{0.05f, 3}, qo{0.05f, 3};
    const kiln::quant::TensorQuant qb = t % 2 ? qo : kiln::quant::TensorQuant{rnd_scale(rng, -7, 0), rng.uniform(-128, 127)};
    const Requant ra = make_requant(qa, qo), rb = make_requant(qb, qo);
    CHECK(ra.identity);
    Shape cs = s;
    cs[axis] += bs[axis];
    y.assign(static_cast<std::size_t>(cs.numel()), 0);
    REQUIRE(concat2(s, x.data(), ra, bs, b.data(), rb, axis, y.data()).ok());
    const Mult mb = quantize_multiplier(static_cast<double>(qb.scale) / qo.scale);
    index_t kdx[kiln::kMaxRank]{};
    do {
      index_t src[kiln::kMaxRank];
      for (int d = 0; d < r; ++d) src[d] = kdx[d];
      std::int8_t want;
      if (kdx[axis] < s[axis]) {
        want = x[static_cast<std::size_t>(offset_of(s, src))];
      } else {
        src[axis] -= s[axis];
        const int q = b[static_cast<std::size_t>(offset_of(bs, src))];
        want = rb.identity ? static_cast<std::int8_t>(q)
                           : ref::clamp8(i64{ref::mbqm(q - qb.zero_point, mb.m, mb.shift)} + qo.zero_point, -128, 127);
      }
      REQUIRE(y[static_cast<std::size_t>(offset_of(cs, kdx))] == want);
    } while (next_index(cs, kdx));
  }
}
