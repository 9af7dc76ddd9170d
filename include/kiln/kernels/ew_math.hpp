// kiln/kernels/ew_math.hpp — every EwFn, per value and over arrays.
//
// Each function exists twice with the same semantics: on `fbatch` (KILN_SIMD)
// and on plain float (always; the scalar build uses only these). The semantics
// are PyTorch's, with NaN and Inf handled identically on every ISA. ISAs differ
// on NaN in min/max (x86 returns the second operand, NEON returns NaN), so
// lower bounds (ReLU & co.) are compare + select, and the only min/max take the
// constant first, min(c, x) / max(c, x), where a NaN x comes out NaN on both.
//
// ew_apply() is the one place that maps an instruction over arrays: one switch
// per call, then a SIMD loop specialised for that function.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../core/ewfn.hpp"
#include "ew_program.hpp"
#include "simd.hpp"

#if defined(__GNUC__)
#define KILN_EW_NOINLINE __attribute__((noinline)) inline
#elif defined(_MSC_VER)
#define KILN_EW_NOINLINE __declspec(noinline) inline
#else
#define KILN_EW_NOINLINE inline
#endif

namespace kiln::kernels {
namespace ewm {

// Constants shared by both twins.
inline constexpr float kInf = std::numeric_limits<float>::infinity();
inline constexpr float kSqrtHalf = 0.70710678118654752f;
/// gelu_tanh = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3); these are the 2u coefficients.
inline constexpr float kGeluT1 = 1.5957691216057308f;             // 2 * sqrt(2/pi)
inline constexpr float kGeluT3 = 1.5957691216057308f * 0.044715f;  // 2 * sqrt(2/pi) * 0.044715
/// Below these, the exact result is smaller than the least denormal; returning -0 there keeps
/// x * (something that underflowed to 0) from becoming -inf * 0 = NaN at x = -inf.
inline constexpr float kGeluTanhZeroBelow = -16.f;
inline constexpr float kGeluErfZeroBelow = -16.f;
inline constexpr float kSiluZeroBelow = -128.f;

// ---------------------------------------------------------------- scalar twin

inline float div(float a, float b) { return a / b; }
inline float identity(float x) { return x; }
inline float neg(float x) { return -x; }
inline float abs(float x) { return std::fabs(x); }
inline float exp(float x) { return std::exp(x); }
inline float log(float x) { return std::log(x); }
inline float sqrt(float x) { return std::sqrt(x); }
/// Exact 1/sqrt(x) (divide + sqrt), not the ~12-bit reciprocal-sqrt estimate.
inline float rsqrt(float x) { return 1.f / std::sqrt(x); }
inline float tanh(float x) { return std::tanh(x); }
/// 1/(1+exp(-x)) computed from exp(-|x|), which never overflows; the negative half as e/(1+e)
/// keeps full relative accuracy down to the denormals.
inline float sigmoid(float x) {
  const float e = std::exp(-std::fabs(x));
  const float r = 1.f / (1.f + e);
  return x < 0.f ? e * r : r;
}
inline float relu(float x) { return x < 0.f ? 0.f : x; }
inline float relu6(float x) { return x < 0.f ? 0.f : (x > 6.f ? 6.f : x); }
inline float leaky_relu(float x, float slope) { return x < 0.f ? x * slope : x; }
/// 0.5 x (1 + tanh(u)) == x * sigmoid(2u) exactly; the sigmoid form has no cancellation for x << 0.
inline float gelu_tanh(float x) {
  if (x < kGeluTanhZeroBelow) return -0.f;
  return x * sigmoid(x * (kGeluT1 + kGeluT3 * x * x));
}
/// 0.5 x (1 + erf(x/sqrt2)) == 0.5 x erfc(-x/sqrt2); erfc avoids the cancellation for x << 0.
inline float gelu_erf(float x) {
  if (x < kGeluErfZeroBelow) return -0.f;
  return 0.5f * x * std::erfc(-x * kSqrtHalf);
}
inline float silu(float x) {
  if (x < kSiluZeroBelow) return -0.f;
  return x * sigmoid(x);
}
/// torch.clamp: lower bound first, so lo > hi gives hi; NaN stays NaN.
inline float clamp(float x, float lo, float hi) {
  const float y = x < lo ? lo : x;
  return y > hi ? hi : y;
}
inline float pow(float x, float p) { return std::pow(x, p); }
/// Ties to even in the default rounding mode, like the SIMD twin's 2^23 trick.
inline float round(float x) { return std::nearbyint(x); }
inline float floor(float x) { return std::floor(x); }
/// Rounds the bit pattern to `drop` fewer mantissa bits, ties to even (the carry may reach the
/// exponent: that is rounding up to the next binade, or to inf).
inline float round_mantissa(float x, int drop) {
  std::uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  b += ((1u << (drop - 1)) - 1u) + ((b >> drop) & 1u);
  b &= ~((1u << drop) - 1u);
  float r;
  std::memcpy(&r, &b, sizeof r);
  return r;
}
/// binary16: 11 significant bits from 2^-14 up, multiples of 2^-24 below (the subnormals: adding
/// and removing 0.75, whose ulp is 2^-24, rounds to them), inf beyond 65504.
inline float round_f16(float x) {
  if (x != x) return x;
  const float ax = std::fabs(x);
  float r = ax < 6.103515625e-05f ? (ax + 0.75f) - 0.75f : round_mantissa(ax, 13);
  if (r > 65504.f) r = kInf;
  return std::copysign(r, x);
}
inline float round_bf16(float x) { return x != x ? x : round_mantissa(x, 16); }
inline float detach(float x) { return x; }
inline float minimum(float a, float b) { return a != a ? a : (a < b ? a : b); }
inline float maximum(float a, float b) { return a != a ? a : (a > b ? a : b); }
inline float where(float c, float a, float b) { return c != 0.f ? a : b; }

// ---------------------------------------------------------------- SIMD twin
// Hot functions are inline; the expensive or rarely taken ones (full-range exp, log, gelu_erf,
// pow) are out of line: a call costs little next to them and saves a copy in every loop.
#if KILN_SIMD
using ibatch = xsimd::batch<std::int32_t, simd_arch>;

/// a / b and sqrt, correctly rounded on every ISA. xsimd 8.1 builds both on ARM from estimate
/// instructions plus Newton steps: 1-2 ulp off, x / x != 1, a denormal divisor gives -inf and
/// sqrt(inf) NaN. aarch64 has exact vector instructions; 32-bit NEON has none, so it divides
/// lane by lane on the VFP unit.
inline fbatch div(fbatch a, fbatch b) {
#if defined(__aarch64__)
  return fbatch(vdivq_f32(a, b));
#elif defined(__arm__)
  alignas(16) float x[kLanes], y[kLanes];
  a.store_aligned(x);
  b.store_aligned(y);
  for (int i = 0; i < kLanes; ++i) x[i] /= y[i];
  return fbatch::load_aligned(x);
#else
  return a / b;
#endif
}
inline fbatch sqrt(fbatch x) {
#if defined(__aarch64__)
  return fbatch(vsqrtq_f32(x));
#elif defined(__arm__)
  alignas(16) float v[kLanes];
  x.store_aligned(v);
  for (int i = 0; i < kLanes; ++i) v[i] = std::sqrt(v[i]);
  return fbatch::load_aligned(v);
#else
  return xsimd::sqrt(x);
#endif
}

inline fbatch identity(fbatch x) { return x; }
inline fbatch neg(fbatch x) { return -x; }
inline fbatch abs(fbatch x) { return xsimd::abs(x); }

namespace detail {
/// Cephes' exp core: x = k ln2 + r with |r| <= ln2/2 and a degree-5 polynomial (~1 ulp). k is
/// rounded with the 1.5*2^23 trick (exact for |k| < 2^22 on every ISA; t's low bits then hold k).
/// Returns p = exp(r) and sets k.
inline fbatch exp_reduced(fbatch x, fbatch magic, fbatch& t) {
  t = xsimd::fma(x, fbatch(1.44269504088896341f), magic);
  const fbatch k = t - magic;
  fbatch r = xsimd::fnma(k, fbatch(0.693359375f), x);  // ln2 split so that k * hi is exact
  r = xsimd::fnma(k, fbatch(-2.12194440e-4f), r);
  fbatch p(1.9875691500e-4f);
  p = xsimd::fma(p, r, fbatch(1.3981999507e-3f));
  p = xsimd::fma(p, r, fbatch(8.3334519073e-3f));
  p = xsimd::fma(p, r, fbatch(4.1665795894e-2f));
  p = xsimd::fma(p, r, fbatch(1.6666665459e-1f));
  p = xsimd::fma(p, r, fbatch(5.0000001201e-1f));
  return xsimd::fma(p, r * r, r) + fbatch(1.f);
}
/// exp for |x| <= 87, where 2^k is a normal float: the magic constant carries the exponent
/// bias, so t's bits shifted into the exponent field are 2^k directly.
inline fbatch exp_normal_range(fbatch x) {
  fbatch t;
  const fbatch p = exp_reduced(x, fbatch(12582912.f + 127.f), t);
  return p * xsimd::bitwise_cast<fbatch>(xsimd::bitwise_cast<ibatch>(t) << 23);
}
/// exp for every input: NaN passes, results from the least denormal up to overflow are right.
/// Clamping to [-104, 89] is exact (exp underflows / overflows beyond), and 2^k is applied as two
/// factors so k in [-150, 128] never leaves the exponent range.
KILN_EW_NOINLINE fbatch exp_full_range(fbatch x) {
  const fbatch lo(-104.f), hi(89.f);
  x = xsimd::select(x < lo, lo, x);  // compare + select (not min/max) so NaN passes through
  x = xsimd::select(x > hi, hi, x);
  fbatch t;
  const fbatch p = exp_reduced(x, fbatch(12582912.f), t);
  const ibatch ki = xsimd::bitwise_cast<ibatch>(t) - ibatch(0x4B400000);  // integer k from t's bits
  const ibatch k1 = ki >> 1;
  const ibatch k2 = ki - k1;
  const fbatch s1 = xsimd::bitwise_cast<fbatch>((k1 + ibatch(127)) << 23);
  const fbatch s2 = xsimd::bitwise_cast<fbatch>((k2 + ibatch(127)) << 23);
  return p * s1 * s2;  // p * s1 is exact; one rounding into the result (denormals round correctly)
}
}  // namespace detail

/// exp(x), ~1 ulp everywhere (denormal results included). Vectors with every lane in the normal
/// range take the short path; the check is off the dependency chain and predicts well.
inline fbatch exp(fbatch x) {
  if (xsimd::all(xsimd::abs(x) <= fbatch(87.f))) return detail::exp_normal_range(x);  // NaN fails it
  return detail::exp_full_range(x);
}
KILN_EW_NOINLINE fbatch log(fbatch x) { return xsimd::log(x); }
inline fbatch rsqrt(fbatch x) { return div(fbatch(1.f), sqrt(x)); }
/// tanh: Cephes' odd polynomial below |x| = 0.625, else 1 - 2/(1 + exp(2|x|)) (at most a factor
/// ~2 of cancellation there), sign restored at the end. 2|x| is clamped at 89, where exp is inf
/// and the result exactly 1; NaN passes the clamp (see sigmoid). ~2 ulp.
inline fbatch tanh(fbatch x) {
  const fbatch ax = xsimd::abs(x);
  const fbatch z = x * x;
  fbatch p(-5.70498872745e-3f);
  p = xsimd::fma(p, z, fbatch(2.06390887954e-2f));
  p = xsimd::fma(p, z, fbatch(-5.37397155531e-2f));
  p = xsimd::fma(p, z, fbatch(1.33314422036e-1f));
  p = xsimd::fma(p, z, fbatch(-3.33332819422e-1f));
  const fbatch small = xsimd::fma(p * z, ax, ax);
  const fbatch e = detail::exp_normal_range(xsimd::min(fbatch(89.f), ax + ax));
  const fbatch big = xsimd::fnma(fbatch(2.f), div(fbatch(1.f), fbatch(1.f) + e), fbatch(1.f));
  const fbatch r = xsimd::select(ax < fbatch(0.625f), small, big);
  return r | (x & fbatch(-0.f));  // |r| with x's sign (r >= 0 or NaN)
}
/// 1/(1+exp(-x)). The exp argument is clamped to [-88, 89] with max/min taking x second (x86
/// returns the second operand when one is NaN, NEON propagates NaN: NaN passes either way), so
/// the short exp path is always valid: -x = 89 gives 2^128 = inf and so exactly 0 (sigmoid(-inf)
/// = 0), -x = -88 gives 0 and so 1. Relative error ~2 ulp; below x = -88.4 the result is 0 where
/// the true value is under 2e-39.
inline fbatch sigmoid(fbatch x) {
  const fbatch e = xsimd::min(fbatch(89.f), xsimd::max(fbatch(-88.f), -x));
  return div(fbatch(1.f), fbatch(1.f) + detail::exp_normal_range(e));
}
inline fbatch relu(fbatch x) { return xsimd::select(x < fbatch(0.f), fbatch(0.f), x); }
/// Ties to even on every ISA: below 2^23, adding and removing 2^23 leaves an integer (the FPU
/// rounds to nearest even); from 2^23 up every float is an integer. The sign is or-ed back so
/// that -0.4 gives -0 as std::nearbyint does; NaN and inf pass.
inline fbatch round(fbatch x) {
  const fbatch ax = xsimd::abs(x), big(8388608.f);
  return xsimd::select(ax < big, (ax + big) - big, ax) | (x & fbatch(-0.f));
}
inline fbatch floor(fbatch x) {
  const fbatch r = round(x);
  return xsimd::select(r > x, r - fbatch(1.f), r);
}
/// The scalar round_mantissa on the vector's bit patterns (int32 lanes: the same bits).
inline fbatch round_mantissa(fbatch x, int drop) {
  ibatch b = xsimd::bitwise_cast<ibatch>(x);
  b = b + ibatch((1 << (drop - 1)) - 1) + ((b >> drop) & ibatch(1));
  return xsimd::bitwise_cast<fbatch>(b & ibatch(~((1 << drop) - 1)));
}
inline fbatch round_f16(fbatch x) {
  const fbatch ax = xsimd::abs(x);
  const fbatch sub = (ax + fbatch(0.75f)) - fbatch(0.75f);
  fbatch r = xsimd::select(ax < fbatch(6.103515625e-05f), sub, round_mantissa(ax, 13));
  r = xsimd::select(r > fbatch(65504.f), fbatch(kInf), r);
  return xsimd::select(xsimd::isnan(x), x, r | (x & fbatch(-0.f)));
}
inline fbatch round_bf16(fbatch x) { return xsimd::select(xsimd::isnan(x), x, round_mantissa(x, 16)); }
inline fbatch detach(fbatch x) { return x; }
/// The upper bound is min(hi, y): one instruction, and a NaN y passes (y is the second operand,
/// see the header note). Only a bound of hi = -0 can differ in the sign of a zero across ISAs.
inline fbatch clamp(fbatch x, fbatch lo, fbatch hi) {
  return xsimd::min(hi, xsimd::select(x < lo, lo, x));
}
inline fbatch relu6(fbatch x) { return clamp(x, fbatch(0.f), fbatch(6.f)); }
inline fbatch leaky_relu(fbatch x, fbatch slope) { return xsimd::select(x < fbatch(0.f), x * slope, x); }
inline fbatch gelu_tanh(fbatch x) {
  const fbatch y = x * sigmoid(x * xsimd::fma(fbatch(kGeluT3), x * x, fbatch(kGeluT1)));
  return xsimd::select(x < fbatch(kGeluTanhZeroBelow), fbatch(-0.f), y);
}
KILN_EW_NOINLINE fbatch gelu_erf(fbatch x) {
  const fbatch y = fbatch(0.5f) * x * xsimd::erfc(x * fbatch(-kSqrtHalf));
  return xsimd::select(x < fbatch(kGeluErfZeroBelow), fbatch(-0.f), y);
}
inline fbatch silu(fbatch x) {
  return xsimd::select(x < fbatch(kSiluZeroBelow), fbatch(-0.f), x * sigmoid(x));
}
/// x^p by exp(p log|x|) (relative error ~ |p log x| ulp) with IEEE pow's special cases: the sign
/// of x^odd, NaN for x < 0 and non-integer p, x = +-0 and +-inf (log|x| = -inf / inf gives 0 or
/// inf through exp). Small integer exponents take pow_array's exact-er fast paths instead.
KILN_EW_NOINLINE fbatch pow(fbatch x, float p) {
  const fbatch y = exp(fbatch(p) * xsimd::log(xsimd::abs(x)));
  const bool integral = std::floor(p) == p;
  if (!integral) {
    const fmask invalid = (x < fbatch(0.f)) & (x > fbatch(-kInf));
    return xsimd::select(invalid, fbatch(std::numeric_limits<float>::quiet_NaN()), y);
  }
  const bool odd = std::fabs(std::fmod(p, 2.f)) == 1.f;
  return odd ? (y | (x & fbatch(-0.f))) : y;  // y >= 0 or NaN: or-ing in x's sign is copysign
}
// xsimd 8.1's `!=` is an *ordered* compare on AVX (NaN != NaN is false) but unordered on SSE2:
// never use it on floats. NaN tests go through isnan, "not equal" through !(a == b).
inline fbatch minimum(fbatch a, fbatch b) {
  return xsimd::select(xsimd::isnan(a), a, xsimd::select(a < b, a, b));  // b NaN falls through a < b
}
inline fbatch maximum(fbatch a, fbatch b) {
  return xsimd::select(xsimd::isnan(a), a, xsimd::select(a > b, a, b));
}
inline fbatch where(fbatch c, fbatch a, fbatch b) { return xsimd::select(c == fbatch(0.f), b, a); }
inline fbatch from_mask(fmask m) { return xsimd::select(m, fbatch(1.f), fbatch(0.f)); }
#endif  // KILN_SIMD

// ---------------------------------------------------------------- array loops
// Each loop runs whole vectors, then finishes a ragged tail by evaluating one
// padded vector in a stack buffer: every element goes through the same code,
// so a value never depends on its position, and nothing is read or written
// past n. In-place (d == a, b or c) is safe: each vector is loaded before the
// same positions are written.
namespace detail {

#if KILN_SIMD
// The loops are kept out of line, so ew_apply's switch is a jump table of small leaf functions
// (unrolling them measured no faster, and costs compile time). A ragged end (n % kLanes values)
// is copied into a zero-padded stack vector and run through the same function once more, so
// the tail adds no code per function and never touches memory past n.
template <class F>
KILN_EW_NOINLINE void map1(const float* a, float* d, int n, F f) {
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) f(fbatch::load_unaligned(a + i)).store_unaligned(d + i);
  if (i < n) {
    float ta[kLanes] = {};
    std::memcpy(ta, a + i, static_cast<std::size_t>(n - i) * sizeof(float));
    map1(ta, ta, kLanes, f);
    std::memcpy(d + i, ta, static_cast<std::size_t>(n - i) * sizeof(float));
  }
}
template <class F>
KILN_EW_NOINLINE void map2(const float* a, const float* b, float* d, int n, F f) {
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    f(fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i)).store_unaligned(d + i);
  if (i < n) {
    float ta[kLanes] = {}, tb[kLanes] = {};
    std::memcpy(ta, a + i, static_cast<std::size_t>(n - i) * sizeof(float));
    std::memcpy(tb, b + i, static_cast<std::size_t>(n - i) * sizeof(float));
    map2(ta, tb, ta, kLanes, f);
    std::memcpy(d + i, ta, static_cast<std::size_t>(n - i) * sizeof(float));
  }
}
template <class F>
KILN_EW_NOINLINE void map3(const float* a, const float* b, const float* c, float* d, int n, F f) {
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    f(fbatch::load_unaligned(a + i), fbatch::load_unaligned(b + i), fbatch::load_unaligned(c + i))
        .store_unaligned(d + i);
  if (i < n) {
    float ta[kLanes] = {}, tb[kLanes] = {}, tc[kLanes] = {};
    std::memcpy(ta, a + i, static_cast<std::size_t>(n - i) * sizeof(float));
    std::memcpy(tb, b + i, static_cast<std::size_t>(n - i) * sizeof(float));
    std::memcpy(tc, c + i, static_cast<std::size_t>(n - i) * sizeof(float));
    map3(ta, tb, tc, ta, kLanes, f);
    std::memcpy(d + i, ta, static_cast<std::size_t>(n - i) * sizeof(float));
  }
}
#else
template <class F>
inline void map1(const float* a, float* d, int n, F f) {
  for (int i = 0; i < n; ++i) d[i] = f(a[i]);
}
template <class F>
inline void map2(const float* a, const float* b, float* d, int n, F f) {
  for (int i = 0; i < n; ++i) d[i] = f(a[i], b[i]);
}
template <class F>
inline void map3(const float* a, const float* b, const float* c, float* d, int n, F f) {
  for (int i = 0; i < n; ++i) d[i] = f(a[i], b[i], c[i]);
}
#endif

// GCC contracts a*b+c into an FMA across statements by default (-ffp-contract=fast), so a fused
// mul_add would round differently from the separate mul and add it replaces. opaque() hides the
// product from the optimizer with an empty asm on its register (no code); clang only contracts
// within one expression (-ffp-contract=on), which separate statements already prevent.
#if defined(__GNUC__) && !defined(__clang__)
#if (defined(__x86_64__) || defined(__i386__)) && defined(__SSE_MATH__)
#define KILN_EW_OPAQUE_F "+x"
#define KILN_EW_OPAQUE_V "+x"
#elif defined(__aarch64__)
#define KILN_EW_OPAQUE_F "+w"
#define KILN_EW_OPAQUE_V "+w"
#elif defined(__arm__) && defined(__ARM_FP)
#define KILN_EW_OPAQUE_F "+t"  // a VFP single register (Cortex-M4F/M7, armv7-a)
#define KILN_EW_OPAQUE_V "+w"  // a NEON q register (only used when KILN_SIMD, i.e. with NEON)
#else
#define KILN_EW_OPAQUE_F "+m"
#define KILN_EW_OPAQUE_V "+m"
#endif
inline float opaque(float v) {
  __asm__("" : KILN_EW_OPAQUE_F(v));
  return v;
}
#if KILN_SIMD
inline fbatch opaque(fbatch v) {
  fbatch::register_type r = v;
  __asm__("" : KILN_EW_OPAQUE_V(r));
  return fbatch(r);
}
#endif
#undef KILN_EW_OPAQUE_F
#undef KILN_EW_OPAQUE_V
#else
inline float opaque(float v) { return v; }
#if KILN_SIMD
inline fbatch opaque(fbatch v) { return v; }
#endif
#endif

/// Comparison results as 1.f / 0.f, for either twin.
inline float to_one_zero(bool m) { return m ? 1.f : 0.f; }
#if KILN_SIMD
inline fbatch to_one_zero(fmask m) { return from_mask(m); }
#endif

/// x^n for an integer n >= 1 by repeated squaring (exact for n = 1, 2; up to ~n/2 ulp otherwise).
template <class T>
inline T ipow(T x, unsigned n) {
  T acc = x;
  T result(1.f);
  bool have = false;
  while (n) {
    if (n & 1u) {
      result = have ? result * acc : acc;
      have = true;
    }
    n >>= 1;
    if (n) acc = acc * acc;
  }
  return result;
}

}  // namespace detail

/// Largest |p| for which pow_scalar with an integer exponent uses repeated multiplication
/// (relative error up to ~|p|/2 ulp; exp(p log x) is worse for such small p).
inline constexpr float kPowIntFastMax = 16.f;

inline void ew_apply_fn(EwFn fn, const float* a, float* d, int n);

/// d[i] = pow(a[i], p): the exponent is uniform, so its special cases are chosen once per call
/// (sqrt and rsqrt reuse ew_apply's loops).
inline void pow_array(const float* a, float* d, int n, float p) {
  using namespace detail;
  if (p == 1.f) {
    if (d != a) std::memmove(d, a, static_cast<std::size_t>(n) * sizeof(float));
  } else if (p == 2.f) {
    map1(a, d, n, [](auto x) { return x * x; });
  } else if (p == 0.5f) {
    ew_apply_fn(EwFn::sqrt, a, d, n);
  } else if (p == -0.5f) {
    ew_apply_fn(EwFn::rsqrt, a, d, n);
  } else if (p == 0.f) {
    for (int i = 0; i < n; ++i) d[i] = 1.f;  // IEEE pow(x, 0) = 1 for every x, NaN included
  } else if (p == std::floor(p) && std::fabs(p) <= kPowIntFastMax) {
    const unsigned m = static_cast<unsigned>(std::fabs(p));
    if (p > 0.f)
      map1(a, d, n, [m](auto x) { return ipow(x, m); });
    else  // 1 / x^m (m = 1: plain 1 / x)
      map1(a, d, n, [m](auto x) { return ewm::div(decltype(x)(1.f), ipow(x, m)); });
  } else {
    map1(a, d, n, [p](auto x) { return ewm::pow(x, p); });
  }
}

}  // namespace ewm

/// d[i] = ins.fn(a[i], b[i], c[i]; ins.p0, ins.p1) for i in [0, n). Operands the function does
/// not take may be any pointer (they are not read). d may equal any operand.
inline void ew_apply(const EwInstr& ins, const float* a, const float* b, const float* c, float* d, int n) {
  using namespace ewm::detail;
  const float p0 = ins.p0, p1 = ins.p1;
  switch (ins.fn) {
    case EwFn::identity:
      if (d != a) std::memmove(d, a, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case EwFn::neg: return map1(a, d, n, [](auto x) { return ewm::neg(x); });
    case EwFn::abs: return map1(a, d, n, [](auto x) { return ewm::abs(x); });
    case EwFn::exp: return map1(a, d, n, [](auto x) { return ewm::exp(x); });
    case EwFn::log: return map1(a, d, n, [](auto x) { return ewm::log(x); });
    case EwFn::sqrt: return map1(a, d, n, [](auto x) { return ewm::sqrt(x); });
    case EwFn::rsqrt: return map1(a, d, n, [](auto x) { return ewm::rsqrt(x); });
    case EwFn::tanh: return map1(a, d, n, [](auto x) { return ewm::tanh(x); });
    case EwFn::sigmoid: return map1(a, d, n, [](auto x) { return ewm::sigmoid(x); });
    case EwFn::relu: return map1(a, d, n, [](auto x) { return ewm::relu(x); });
    case EwFn::relu6: {  // relu6 is clamp(x, 0, 6), operation for operation: share its loop
      EwInstr clamp06 = ins;
      clamp06.fn = EwFn::clamp;
      clamp06.p0 = 0.f;
      clamp06.p1 = 6.f;
      return ew_apply(clamp06, a, b, c, d, n);
    }
    case EwFn::leaky_relu:
      return map1(a, d, n, [p0](auto x) { return ewm::leaky_relu(x, decltype(x)(p0)); });
    case EwFn::gelu_tanh: return map1(a, d, n, [](auto x) { return ewm::gelu_tanh(x); });
    case EwFn::gelu_erf: return map1(a, d, n, [](auto x) { return ewm::gelu_erf(x); });
    case EwFn::silu: return map1(a, d, n, [](auto x) { return ewm::silu(x); });
    case EwFn::clamp:
      return map1(a, d, n, [p0, p1](auto x) { return ewm::clamp(x, decltype(x)(p0), decltype(x)(p1)); });
    case EwFn::round: return map1(a, d, n, [](auto x) { return ewm::round(x); });
    case EwFn::floor: return map1(a, d, n, [](auto x) { return ewm::floor(x); });
    case EwFn::round_f16: return map1(a, d, n, [](auto x) { return ewm::round_f16(x); });
    case EwFn::round_bf16: return map1(a, d, n, [](auto x) { return ewm::round_bf16(x); });
    case EwFn::detach:
      if (d != a) std::memmove(d, a, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case EwFn::pow_scalar: return ewm::pow_array(a, d, n, p0);
    case EwFn::add: return map2(a, b, d, n, [](auto x, auto y) { return x + y; });
    case EwFn::sub: return map2(a, b, d, n, [](auto x, auto y) { return x - y; });
    case EwFn::mul: return map2(a, b, d, n, [](auto x, auto y) { return x * y; });
    case EwFn::div: return map2(a, b, d, n, [](auto x, auto y) { return ewm::div(x, y); });
    case EwFn::minimum: return map2(a, b, d, n, [](auto x, auto y) { return ewm::minimum(x, y); });
    case EwFn::maximum: return map2(a, b, d, n, [](auto x, auto y) { return ewm::maximum(x, y); });
    case EwFn::gt: return map2(a, b, d, n, [](auto x, auto y) { return to_one_zero(x > y); });
    case EwFn::lt: return map2(a, b, d, n, [](auto x, auto y) { return to_one_zero(x < y); });
    case EwFn::ge: return map2(a, b, d, n, [](auto x, auto y) { return to_one_zero(x >= y); });
    case EwFn::le: return map2(a, b, d, n, [](auto x, auto y) { return to_one_zero(x <= y); });
    case EwFn::eq: return map2(a, b, d, n, [](auto x, auto y) { return to_one_zero(x == y); });
    case EwFn::ne: return map2(a, b, d, n, [](auto x, auto y) { return to_one_zero(!(x == y)); });
    case EwFn::where: return map3(a, b, c, d, n, [](auto x, auto y, auto z) { return ewm::where(x, y, z); });
  }
}

namespace ewm {
/// ew_apply of a one-operand function without parameters (pow_array's fast paths).
inline void ew_apply_fn(EwFn fn, const float* a, float* d, int n) {
  EwInstr ins;
  ins.fn = fn;
  ew_apply(ins, a, a, a, d, n);
}
}  // namespace ewm

}  // namespace kiln::kernels
