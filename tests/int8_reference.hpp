// Independent reference for the int8 tests: the arithmetic written from its mathematical
// definition in int64 (floor divisions, sign-magnitude rounding), and every kernel as the
// plainest possible loop over output elements with bounds checks on each tap. It shares no
// code with include/kiln/quant or include/kiln/kernels/int8 beyond the parameter structs.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace int8ref {

using i64 = std::int64_t;
constexpr i64 kMin32 = -2147483648LL, kMax32 = 2147483647LL;

// floor(a / b) for b > 0.
inline i64 floor_div(i64 a, i64 b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// SRDHM by definition: a*b / 2^31 rounded to nearest, ties toward +infinity, i.e.
// floor((a*b + 2^30) / 2^31); the single overflow (-1 * -1 in Q0.31) saturates.
inline std::int32_t srdhm(std::int32_t a, std::int32_t b) {
  if (a == kMin32 && b == kMin32) return static_cast<std::int32_t>(kMax32);
  return static_cast<std::int32_t>(floor_div(i64{a} * b + (i64{1} << 30), i64{1} << 31));
}

// x / 2^e rounded to nearest, ties away from zero: sign(x) * floor((|x| + 2^(e-1)) / 2^e).
inline std::int32_t rdbpot(std::int32_t x, int e) {
  if (e == 0) return x;
  const i64 mag = x < 0 ? -i64{x} : i64{x};
  const i64 q = (mag + (i64{1} << (e - 1))) >> e;
  return static_cast<std::int32_t>(x < 0 ? -q : q);
}

// x * 2^s wrapped to int32, as TFLite's x * (1 << s) behaves on every real target.
inline std::int32_t shl_wrap(std::int32_t x, int s) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(i64{x} * (i64{1} << s))));
}

// TFLite MultiplyByQuantizedMultiplier (double rounding).
inline std::int32_t mbqm(std::int32_t x, std::int32_t m, int shift) {
  return rdbpot(srdhm(shl_wrap(x, shift > 0 ? shift : 0), m), shift > 0 ? 0 : -shift);
}

// Exactly rounded x * m * 2^(shift-31) (half away from zero), for |x * 2^max(shift,0)| < 2^31.
inline i64 exact_scaled(std::int32_t x, std::int32_t m, int shift) {
  const i64 num = (shift > 0 ? i64{x} * (i64{1} << shift) : i64{x}) * m;  // |num| < 2^62
  const int e = 31 + (shift > 0 ? 0 : -shift);
  if (e >= 63) return 0;
  const i64 mag = num < 0 ? -num : num;
  const i64 q = (mag + (i64{1} << (e - 1))) >> e;
  return num < 0 ? -q : q;
}

inline std::int8_t clamp8(i64 v, i64 lo, i64 hi) {
  return static_cast<std::int8_t>(v < lo ? lo : (v > hi ? hi : v));
}

// Requantisation of one accumulator as TFLite's conv/FC epilogue.
inline std::int8_t requant(i64 acc, std::int32_t m, std::int32_t shift, std::int32_t out_offset,
                           std::int32_t lo, std::int32_t hi) {
  // The offset is added in int32 as TFLite does; an overflow (only with absurd multipliers)
  // wraps, as it does in TFLite's binaries.
  const i64 sum = i64{mbqm(static_cast<std::int32_t>(acc), m, shift)} + out_offset;
  return clamp8(static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(sum))), lo, hi);
}

// Seeded random data.
struct Rng {
  std::mt19937 gen;
  explicit Rng(unsigned seed) : gen(seed) {}
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); }
  std::vector<std::int8_t> int8s(std::size_t n, int lo = -128, int hi = 127) {
    std::vector<std::int8_t> v(n);
    for (auto& x : v) x = static_cast<std::int8_t>(uniform(lo, hi));
    return v;
  }
  std::vector<std::int32_t> int32s(std::size_t n, int lo, int hi) {
    std::vector<std::int32_t> v(n);
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }
  // Realistic per-channel multipliers: m in [2^30, 2^31), shift in [lo, hi].
  void multipliers(std::size_t n, int shift_lo, int shift_hi, std::vector<std::int32_t>& m,
                   std::vector<std::int32_t>& s) {
    m.resize(n);
    s.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      m[i] = static_cast<std::int32_t>(std::uniform_int_distribution<i64>(i64{1} << 30, kMax32)(gen));
      s[i] = uniform(shift_lo, shift_hi);
    }
  }
};

}  // namespace int8ref
