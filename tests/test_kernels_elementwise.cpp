// tests/test_kernels_elementwise.cpp — ew_math (every EwFn) and ew_run (loops, broadcasting,
// gathers, booleans, aliasing, fusion) against naive double-precision references.
// Built twice by CMake: SIMD and -DKILN_NO_SIMD (scalar twins); both must pass unchanged.
#include <doctest/doctest.h>

#ifdef KILN_SINGLE_HEADER_TEST
#include <kiln/kiln.hpp>
#else
#include "kiln/kernels/elementwise.hpp"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace kiln;
using namespace kiln::kernels;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;

// ---------------------------------------------------------------- program builder

struct Prog {
  std::vector<EwInstr> code;
  int regs = 0;
  void use(int r) { regs = r + 1 > regs ? r + 1 : regs; }
  Prog& load(int dst, int operand) {
    EwInstr i;
    i.kind = EwKind::load;
    i.dst = static_cast<std::uint8_t>(dst);
    i.a = static_cast<std::uint8_t>(operand);
    code.push_back(i);
    use(dst);
    return *this;
  }
  Prog& splat(int dst, float v) {
    EwInstr i;
    i.kind = EwKind::splat;
    i.dst = static_cast<std::uint8_t>(dst);
    i.p0 = v;
    code.push_back(i);
    use(dst);
    return *this;
  }
  Prog& op(EwFn f, int dst, int a, int b = 0, int c = 0, float p0 = 0.f, float p1 = 0.f) {
    EwInstr i;
    i.kind = EwKind::apply;
    i.fn = f;
    i.dst = static_cast<std::uint8_t>(dst);
    i.a = static_cast<std::uint8_t>(a);
    i.b = static_cast<std::uint8_t>(b);
    i.c = static_cast<std::uint8_t>(c);
    i.p0 = p0;
    i.p1 = p1;
    code.push_back(i);
    use(dst);
    return *this;
  }
  Prog& store(int target, int reg) {
    EwInstr i;
    i.kind = EwKind::store;
    i.dst = static_cast<std::uint8_t>(target);
    i.a = static_cast<std::uint8_t>(reg);
    code.push_back(i);
    return *this;
  }
  EwProgram get() const { return {code.data(), static_cast<int>(code.size()), regs}; }
};

EwOperand f32_in(const float* p, const Strides& s) { return {p, DType::f32, s}; }
EwTarget f32_out(float* p, const Strides& s) { return {p, DType::f32, s}; }

// ---------------------------------------------------------------- reference math (double)

double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// a rounded to `bits` significant bits, ties to even, with the quantum never below
/// 2^(min_exp - bits) (subnormals) and inf beyond max_finite: IEEE rounding of a narrower
/// format, computed with frexp/ldexp in double (independent of the kernels' bit tricks).
double ref_round_format(double a, int bits, int min_exp, double max_finite) {
  if (std::isnan(a) || std::isinf(a) || a == 0) return a;
  int e = 0;
  std::frexp(std::fabs(a), &e);  // |a| in [2^(e-1), 2^e)
  const double q = std::ldexp(1.0, std::max(e, min_exp) - bits);
  const double r = std::nearbyint(std::fabs(a) / q) * q;
  return std::copysign(r > max_finite ? std::numeric_limits<double>::infinity() : r, a);
}

/// PyTorch semantics in double. For gelu_tanh, 0.5(1+tanh(u)) is evaluated as the identical
/// 1/(1+exp(-2u)), and gelu_erf as 0.5 erfc(-x/sqrt2): the textbook forms lose all relative
/// accuracy for x << 0 even in double.
double ref_fn(EwFn f, double a, double b, double c, double p0, double p1) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  switch (f) {
    case EwFn::identity: return a;
    case EwFn::neg: return -a;
    case EwFn::abs: return std::fabs(a);
    case EwFn::exp: return std::exp(a);
    case EwFn::log: return std::log(a);
    case EwFn::sqrt: return std::sqrt(a);
    case EwFn::rsqrt: return 1.0 / std::sqrt(a);
    case EwFn::tanh: return std::tanh(a);
    case EwFn::sigmoid: return ref_sigmoid(a);
    case EwFn::relu: return std::isnan(a) ? a : (a < 0 ? 0.0 : a);
    case EwFn::relu6: return std::isnan(a) ? a : (a < 0 ? 0.0 : (a > 6 ? 6.0 : a));
    case EwFn::leaky_relu: return a < 0 ? a * p0 : a;
    case EwFn::gelu_tanh: {
      if (std::isinf(a)) return a > 0 ? a : 0.0;
      const double u = std::sqrt(2.0 / kPi) * (a + 0.044715 * a * a * a);
      return a / (1.0 + std::exp(-2.0 * u));
    }
    case EwFn::gelu_erf:
      if (std::isinf(a)) return a > 0 ? a : 0.0;
      return 0.5 * a * std::erfc(-a / std::sqrt(2.0));
    case EwFn::silu:
      if (std::isinf(a)) return a > 0 ? a : 0.0;
      return a * ref_sigmoid(a);
    case EwFn::clamp: {
      if (std::isnan(a)) return a;
      const double y = a < p0 ? p0 : a;
      return y > p1 ? p1 : y;
    }
    case EwFn::round: return std::nearbyint(a);
    case EwFn::floor: return std::floor(a);
    case EwFn::round_f16: return ref_round_format(a, 11, -13, 65504.0);
    case EwFn::round_bf16: return ref_round_format(a, 8, -125, 3.3895313892515355e38);
    case EwFn::detach: return a;
    case EwFn::pow_scalar:
      if (p0 == 0.5) return std::sqrt(a);  // documented fast path: sqrt semantics (sqrt(-inf) = NaN)
      if (p0 == -0.5) return 1.0 / std::sqrt(a);
      return std::pow(a, p0);
    case EwFn::add: return a + b;
    case EwFn::sub: return a - b;
    case EwFn::mul: return a * b;
    case EwFn::div: return a / b;
    case EwFn::minimum: return (std::isnan(a) || std::isnan(b)) ? nan : (a < b ? a : b);
    case EwFn::maximum: return (std::isnan(a) || std::isnan(b)) ? nan : (a > b ? a : b);
    case EwFn::gt: return a > b ? 1.0 : 0.0;
    case EwFn::lt: return a < b ? 1.0 : 0.0;
    case EwFn::ge: return a >= b ? 1.0 : 0.0;
    case EwFn::le: return a <= b ? 1.0 : 0.0;
    case EwFn::eq: return a == b ? 1.0 : 0.0;
    case EwFn::ne: return a != b ? 1.0 : 0.0;
    case EwFn::where: return a != 0 ? b : c;
  }
  return nan;
}

// ---------------------------------------------------------------- tolerances

/// Distance in units in the last place between two finite floats of any sign.
std::int64_t ulp_distance(float a, float b) {
  const auto key = [](float v) {
    std::int32_t i;
    std::memcpy(&i, &v, sizeof i);
    return i < 0 ? -static_cast<std::int64_t>(i & 0x7fffffff) : static_cast<std::int64_t>(i);
  };
  const std::int64_t d = key(a) - key(b);
  return d < 0 ? -d : d;
}

/// Per-function tolerance: pass when within `ulps` of the correctly rounded reference, or within
/// rel * (1 + x^2 * rel_x2) * |ref| + abs. `abs` only absorbs results below the normal range
/// (denormals flushed or computed as 0 by the SIMD exp/sigmoid) — never a real value.
struct Tol {
  int ulps = 0;
  double rel = 0, rel_x2 = 0, abs = 0;
};

constexpr double kTiny = 1e-37;  // results this small may be flushed (see Tol)

Tol tolerance(EwFn f, double p0) {
  switch (f) {
    // exact: a correctly rounded single operation or a selection
    case EwFn::identity: case EwFn::neg: case EwFn::abs: case EwFn::relu: case EwFn::relu6:
    case EwFn::leaky_relu: case EwFn::clamp: case EwFn::add: case EwFn::sub: case EwFn::mul:
    case EwFn::minimum: case EwFn::maximum: case EwFn::gt: case EwFn::lt: case EwFn::ge:
    case EwFn::le: case EwFn::eq: case EwFn::ne: case EwFn::where: case EwFn::sqrt:
    case EwFn::round: case EwFn::floor: case EwFn::round_f16: case EwFn::round_bf16: case EwFn::detach:
      return {0, 0, 0, 0};
    // Correctly rounded on every ISA, so x / x == 1 exactly: xsimd 8.1 divides by reciprocal
    // estimate + Newton steps on all NEON (1-2 ulp), which ew_math replaces by vdivq_f32 on
    // aarch64 and by lane-wise VFP division on armv7.
    case EwFn::div: return {0, 0, 0, 0};
    case EwFn::exp: return {2, 0, 0, kTiny};          // ~1 ulp; denormal results may flush
    case EwFn::log: return {2, 0, 0, 0};
    case EwFn::rsqrt: return {2, 0, 0, 0};            // divide + sqrt: two roundings
    case EwFn::tanh: return {4, 0, 0, 0};             // exp + divide + cancellation by <= 2
    case EwFn::sigmoid: return {4, 1e-6, 0, kTiny};   // results < 2e-39 (x < -88.4) may be 0
    case EwFn::silu: return {4, 1e-6, 0, 1e-36};      // x * (sigmoid flushed below -88.4)
    // The argument 2u (or x/sqrt2) carries a few ulp of rounding; the tails amplify it by the
    // slope of log sigmoid / log erfc, ~|2u| resp. ~x^2: relative tolerance grows with x^2.
    case EwFn::gelu_tanh: return {4, 1e-6, 0.2, kTiny};
    case EwFn::gelu_erf: return {8, 2e-6, 1.0, kTiny};
    case EwFn::pow_scalar:
      if (p0 == 2 || p0 == 1 || p0 == 0 || p0 == 0.5) return {0, 0, 0, 0};
      if (p0 == -1) return {1, 0, 0, 0};
      // repeated squaring up to |p| = 16: ~|p|/2 ulp
      if (p0 == std::floor(p0) && std::fabs(p0) <= 16) return {static_cast<int>(std::fabs(p0)) + 1, 0, 0, kTiny};
      return {2, 2e-6, 0, kTiny};  // exp(p log x): relative error ~ |p log x| ulp, checked below
  }
  return {};
}

bool within(EwFn f, float got, double want, double x, double p0) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isnan(got)) return false;
  if (std::isinf(want) || std::isinf(got)) {
    // overflow boundaries: a reference just above FLT_MAX rounds to inf in float as well
    return static_cast<float>(want) == got;
  }
  const Tol t = tolerance(f, p0);
  const float wf = static_cast<float>(want);
  if (got == wf) return true;
  if (std::isfinite(wf) && ulp_distance(got, wf) <= t.ulps) return true;
  double rel = t.rel * (1.0 + x * x * t.rel_x2);
  if (f == EwFn::pow_scalar && t.rel > 0 && x != 0 && std::isfinite(x))
    rel = t.rel * (1.0 + std::fabs(p0 * std::log(std::fabs(x))));
  return std::fabs(got - want) <= rel * std::fabs(want) + t.abs;
}

// ---------------------------------------------------------------- armv7 NEON: flush to zero

// 32-bit ARM's Advanced SIMD (NEON) always runs in flush-to-zero mode, whatever FPSCR.FZ says
// (ARM ARM v7-A, "Flush-to-zero mode": Advanced SIMD instructions always use it): a denormal
// operand reads as a zero of its sign and a denormal result is written as one. aarch64 NEON and
// x86 SSE/AVX keep denormals (kiln never sets FTZ/DAZ). Making every armv7 kernel denormal-exact
// would mean giving up NEON, so there this flushing is the documented behaviour of the SIMD build
// (the scalar twins on the VFP keep denormals, and div/sqrt run on the VFP even in the SIMD build).
#if KILN_SIMD && defined(__arm__) && !defined(__aarch64__)
constexpr bool kSimdFlushesDenormals = true;
#else
constexpr bool kSimdFlushesDenormals = false;
#endif
/// A flushed result may also come from a flushed intermediate that the function then scales by
/// a bounded factor: gelu_tanh is x * sigmoid(2u) with |x| <= 16 where it is not exactly -0, so
/// results below 16 * FLT_MIN (2^-122) may come out as a zero of their sign.
constexpr double kFlushedBelow = 16.0 * static_cast<double>(std::numeric_limits<float>::min());

float flush_denormal(float v) {
  return std::fpclassify(v) == FP_SUBNORMAL ? std::copysign(0.f, v) : v;
}

/// On armv7 NEON only: `got` is what flush-to-zero makes of f(a, b, c), i.e. a zero of the sign
/// of a result below kFlushedBelow, or the function of the inputs with denormals read as zeros
/// (log(1e-40) = -inf there). Everywhere else it accepts nothing.
bool within_flushed(EwFn f, float got, double want, float a, float b, float c, float p0, float p1) {
  if (!kSimdFlushesDenormals) return false;
  if (got == 0.f && std::fabs(want) < kFlushedBelow && std::signbit(got) == std::signbit(want)) return true;
  const auto denormal = [](float v) { return std::fpclassify(v) == FP_SUBNORMAL; };
  if (!denormal(a) && !denormal(b) && !denormal(c)) return false;  // no input was flushed
  const float fa = flush_denormal(a);
  return within(f, got, ref_fn(f, fa, flush_denormal(b), flush_denormal(c), p0, p1), fa, p0);
}

// ---------------------------------------------------------------- input values

/// Special values every function must handle, then random values spanning many magnitudes.
std::vector<float> test_values(std::size_t n, std::uint32_t seed) {
  std::vector<float> v = {0.f, -0.f, 1.f, -1.f, 0.5f, -0.5f, 2.f, -2.f, 6.f, 6.5f, -6.5f, 0.625f, -0.625f,
                          kInf, -kInf, kNaN, 1e-30f, -1e-30f, 1e-40f, -1e-40f,
                          std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                          87.f, -87.f, 88.f, -88.f, 88.5f, -88.5f, 88.72f, 89.f, -89.f, -103.f, -104.f, -110.f,
                          9.f, -9.f, 10.f, -10.f, 13.f, -13.f, 15.f, -15.f, 16.f, -16.f, 20.f, -20.f, 44.f,
                          1e-4f, -1e-4f, 3.f, -3.f, 5.f, -5.f, 0.1f, -0.1f, 100.f, -100.f, 1e6f, -1e6f};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(-8.f, 3.f), unit(-1.f, 1.f), wide(-30.f, 30.f);
  while (v.size() < n) {
    switch (v.size() % 3) {
      case 0: v.push_back(std::pow(10.f, mag(rng)) * (unit(rng) < 0 ? -1.f : 1.f)); break;
      case 1: v.push_back(wide(rng)); break;
      default: v.push_back(unit(rng) * 4.f); break;
    }
  }
  v.resize(n);
  return v;
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

/// Runs `load, load.., apply fn, store` over n contiguous elements and checks every result.
/// Returns the number of mismatches (each reported once, up to a few).
int check_fn(EwFn f, const std::vector<float>& a, const std::vector<float>& b, const std::vector<float>& c,
             float p0, float p1) {
  const int arity = ewfn_arity(f);
  const index_t n = static_cast<index_t>(a.size());
  Prog p;
  for (int k = 0; k < arity; ++k) p.load(k, k);
  p.op(f, 3, 0, 1, 2, p0, p1).store(0, 3);
  std::vector<float> out(a.size(), -12345.f);
  const Shape s{n};
  const Strides st = contiguous_strides(s);
  const EwOperand ops[3] = {f32_in(a.data(), st), f32_in(b.data(), st), f32_in(c.data(), st)};
  const EwTarget t = f32_out(out.data(), st);
  ew_run(p.get(), ops, arity, &t, 1, s);
  int bad = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double want = ref_fn(f, a[i], b[i], c[i], p0, p1);
    if (!within(f, out[i], want, a[i], p0) && !within_flushed(f, out[i], want, a[i], b[i], c[i], p0, p1)) {
      if (++bad <= 3) {
        INFO(std::string(ewfn_name(f)) << "(" << fmt(a[i]) << ", " << fmt(b[i]) << ", " << fmt(c[i]) << "; p0 " << fmt(p0)
                          << ", p1 " << fmt(p1) << ") = " << fmt(out[i]) << ", want " << fmt(want) << " [n=" << n
                          << ", i=" << i << "]");
        CHECK(false);
      }
    }
  }
  return bad;
}

constexpr EwFn kAllFns[] = {
    EwFn::identity, EwFn::neg,     EwFn::abs,     EwFn::exp,   EwFn::log,        EwFn::sqrt,
    EwFn::rsqrt,    EwFn::tanh,    EwFn::sigmoid, EwFn::relu,  EwFn::relu6,      EwFn::leaky_relu,
    EwFn::gelu_tanh, EwFn::gelu_erf, EwFn::silu,  EwFn::clamp, EwFn::pow_scalar, EwFn::add,
    EwFn::sub,      EwFn::mul,     EwFn::div,     EwFn::minimum, EwFn::maximum,  EwFn::gt,
    EwFn::lt,       EwFn::ge,      EwFn::le,      EwFn::eq,    EwFn::ne,         EwFn::where,
    EwFn::round,    EwFn::floor,   EwFn::round_f16, EwFn::round_bf16, EwFn::detach};

// ---------------------------------------------------------------- reference loop interpreter

/// A strided operand of the reference: values as double (booleans as 0/1).
struct RefOperand {
  const void* data;
  DType dtype;
  Strides strides;
  double at(index_t off) const {
    return dtype == DType::boolean ? (static_cast<const std::uint8_t*>(data)[off] ? 1.0 : 0.0)
                                   : static_cast<double>(static_cast<const float*>(data)[off]);
  }
};

/// Evaluates `prog` at every index of `shape` in double, rounding each intermediate to float as
/// the kernels do, into per-target reference arrays indexed by the target's strides.
void ref_run(const Prog& prog, const std::vector<RefOperand>& in, const std::vector<EwTarget>& out,
             const Shape& shape, std::vector<std::vector<double>>& want) {
  want.assign(out.size(), {});
  std::vector<index_t> extent_of(out.size(), 0);
  for (std::size_t t = 0; t < out.size(); ++t) {
    index_t hi = 0;
    for (int d = 0; d < shape.rank(); ++d) hi += out[t].strides[d] * (shape[d] - 1);
    want[t].assign(static_cast<std::size_t>(shape.numel() == 0 ? 0 : hi + 1),
                   std::numeric_limits<double>::quiet_NaN());
  }
  const index_t total = shape.numel();
  for (index_t flat = 0; flat < total; ++flat) {
    index_t idx[kMaxRank] = {};
    index_t rem = flat;
    for (int d = shape.rank() - 1; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    const auto offset = [&](const Strides& st) {
      index_t o = 0;
      for (int d = 0; d < shape.rank(); ++d) o += idx[d] * st[d];
      return o;
    };
    double r[kEwMaxRegs] = {};
    for (const EwInstr& i : prog.code) {
      switch (i.kind) {
        case EwKind::load: r[i.dst] = in[i.a].at(offset(in[i.a].strides)); break;
        case EwKind::splat: r[i.dst] = i.p0; break;
        case EwKind::apply:
          r[i.dst] = static_cast<float>(ref_fn(i.fn, r[i.a], r[i.b], r[i.c], i.p0, i.p1));
          break;
        case EwKind::store: {
          const double v = out[i.dst].dtype == DType::boolean ? (r[i.a] != 0 ? 1.0 : 0.0) : r[i.a];
          want[i.dst][static_cast<std::size_t>(offset(out[i.dst].strides))] = v;
          break;
        }
      }
    }
  }
}

/// Compares a target's memory with the reference at every position the loop wrote (the reference
/// is NaN-filled where nothing was written and those positions are skipped), with a relative
/// tolerance for programs that mix in transcendental functions.
void check_target(const EwTarget& t, const std::vector<double>& want, double rel, const char* what) {
  int bad = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i])) continue;  // NaN-filled = not written (NaN results are checked separately)
    const double got = t.dtype == DType::boolean ? static_cast<const std::uint8_t*>(t.data)[i]
                                                 : static_cast<double>(static_cast<const float*>(t.data)[i]);
    const bool ok = std::isinf(want[i]) ? got == want[i] : std::fabs(got - want[i]) <= rel * std::fabs(want[i]);
    if (!ok && ++bad <= 3) {
      INFO(what << ": element " << i << " = " << fmt(got) << ", want " << fmt(want[i]));
      CHECK(false);
    }
  }
  CHECK(bad == 0);
}

std::vector<float> iota_values(std::size_t n, float scale, float offset) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<double>(i % 97) * scale + offset);
  return v;
}

}  // namespace

// =============================================================================== build

// Cross builds (cmake/toolchains/*.cmake) state the xsimd arch they target: a toolchain that
// silently lost xsimd would otherwise pass every test on the scalar twins alone. The _scalar
// build (KILN_NO_SIMD) must report "scalar" whatever the target.
#if defined(KILN_EXPECT_SIMD)
TEST_CASE("the kernels use the SIMD arch the build targets") {
#if defined(KILN_NO_SIMD)
  CHECK(std::string(kSimdName) == "scalar");
#else
  CHECK(std::string(kSimdName) == KILN_EXPECT_SIMD);
#endif
  CHECK(kLanes == (std::string(kSimdName) == "scalar" ? 1 : 4));  // NEON: 4 floats
}
#endif

// =============================================================================== functions

TEST_CASE("every EwFn matches a double-precision reference (sizes 1, 3, 7, 17, 1000)") {
  INFO("SIMD: " << std::string(kSimdName) << ", lanes " << kLanes);
  for (const std::size_t n : {std::size_t{1}, std::size_t{3}, std::size_t{7}, std::size_t{17}, std::size_t{1000}}) {
    for (EwFn f : kAllFns) {
      // Operand b and c come from other seeds; param sets exercise the parametric functions.
      const std::vector<float> a = test_values(n == 1000 ? 1000 : 64, 1), b = test_values(a.size(), 2),
                               c = test_values(a.size(), 3);
      std::vector<float> aa(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n)),
          bb(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n)), cc(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(n));
      if (n < 64) {  // small sizes: slide the window so every special value is seen at every lane
        for (std::size_t off = 0; off + n <= a.size(); off += n) {
          std::vector<float> wa(a.begin() + static_cast<std::ptrdiff_t>(off), a.begin() + static_cast<std::ptrdiff_t>(off + n));
          std::vector<float> wb(b.begin() + static_cast<std::ptrdiff_t>(off), b.begin() + static_cast<std::ptrdiff_t>(off + n));
          std::vector<float> wc(c.begin() + static_cast<std::ptrdiff_t>(off), c.begin() + static_cast<std::ptrdiff_t>(off + n));
          CHECK(check_fn(f, wa, wb, wc, 0.1f, 0.f) == 0);
        }
      } else {
        CHECK(check_fn(f, aa, bb, cc, 0.1f, 0.f) == 0);
      }
      if (f == EwFn::leaky_relu) CHECK(check_fn(f, aa, bb, cc, -2.5f, 0.f) == 0);
      if (f == EwFn::clamp) {
        CHECK(check_fn(f, aa, bb, cc, -1.f, 2.f) == 0);
        CHECK(check_fn(f, aa, bb, cc, 3.f, 2.f) == 0);       // lo > hi gives hi (torch.clamp)
        CHECK(check_fn(f, aa, bb, cc, -kInf, 0.5f) == 0);    // one-sided
      }
      if (f == EwFn::where) {  // conditions that are mostly 0/1 like real masks
        std::vector<float> m(aa.size());
        for (std::size_t i = 0; i < m.size(); ++i) m[i] = i % 3 == 0 ? 0.f : (i % 3 == 1 ? 1.f : aa[i]);
        CHECK(check_fn(f, m, bb, cc, 0.f, 0.f) == 0);
      }
      if (ewfn_arity(f) == 2) {  // equal operands: comparisons' boundaries, x - x, min(x, x)
        CHECK(check_fn(f, aa, aa, cc, 0.f, 0.f) == 0);
      }
    }
  }
}

TEST_CASE("round, floor, round_f16, round_bf16: ties, format boundaries, subnormals") {
  // Halves (ties for round), values just either side of them, and the narrow formats' edges:
  // 65504 (f16 max), 65519.99 (rounds down to it), 65520 (the tie that overflows to inf),
  // 2^-24 (least f16 subnormal), 2^-25 (a tie: to 0), 3*2^-25 (a tie: to 2^-23), 2^-14 (least
  // f16 normal) and its neighbours, bf16 ties (1 + 2^-8 to 1, 1 + 3*2^-8 up).
  std::vector<float> v;
  for (int k = -40; k <= 40; ++k) {
    v.push_back(static_cast<float>(k) * 0.5f);
    v.push_back(std::nextafter(static_cast<float>(k) * 0.5f, kInf));
    v.push_back(std::nextafter(static_cast<float>(k) * 0.5f, -kInf));
  }
  for (float x : {65504.f, 65519.99f, 65520.f, 65536.f, 1e6f, 5.9604645e-08f, 2.9802322e-08f, 8.940697e-08f,
                  6.1035156e-05f, 6.1035152e-05f, 6.103516e-05f, 1.00390625f, 1.01171875f, 3.4e38f, 1e-40f,
                  8388607.5f, 8388608.f, 16777215.f, -0.f, kInf, kNaN}) {
    v.push_back(x);
    v.push_back(-x);
  }
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> mant(1.f, 2.f);
  std::uniform_int_distribution<int> ex(-30, 20);
  for (int i = 0; i < 500; ++i) v.push_back((i % 2 ? -1.f : 1.f) * std::ldexp(mant(rng), ex(rng)));
  for (EwFn f : {EwFn::round, EwFn::floor, EwFn::round_f16, EwFn::round_bf16}) {
    INFO(ewfn_name(f));
    CHECK(check_fn(f, v, v, v, 0.f, 0.f) == 0);
  }
}

TEST_CASE("pow_scalar: fast paths and the general exponent") {
  const std::vector<float> x = test_values(300, 7);
  std::vector<float> pos(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) pos[i] = std::fabs(x[i]);
  for (const float p : {2.f, 0.5f, 1.f, -1.f, 0.f, 3.f, -2.f, -0.5f, 7.f, -3.f, 16.f, -16.f, 17.f, -17.f, 64.f, 65.f,
                        1.5f, -1.3f, 2.5f, 0.3f, -0.7f}) {
    INFO("exponent " << p);
    CHECK(check_fn(EwFn::pow_scalar, x, x, x, p, 0.f) == 0);
    CHECK(check_fn(EwFn::pow_scalar, pos, x, x, p, 0.f) == 0);
  }
}

TEST_CASE("NaN and Inf: the same answers on every ISA") {
  // Each row: fn, p0, p1, input, expected (NaN means NaN).
  struct Case {
    EwFn f;
    float p0, p1, x, want;
  };
  const Case cases[] = {
      {EwFn::relu, 0, 0, kNaN, kNaN},         {EwFn::relu6, 0, 0, kNaN, kNaN},
      {EwFn::clamp, 0, 1, kNaN, kNaN},        {EwFn::leaky_relu, 0.1f, 0, kNaN, kNaN},
      {EwFn::relu, 0, 0, -kInf, 0},           {EwFn::relu6, 0, 0, kInf, 6},
      {EwFn::sigmoid, 0, 0, -kInf, 0},        {EwFn::sigmoid, 0, 0, kInf, 1},
      {EwFn::sigmoid, 0, 0, kNaN, kNaN},      {EwFn::exp, 0, 0, -kInf, 0},
      {EwFn::exp, 0, 0, kInf, kInf},          {EwFn::exp, 0, 0, kNaN, kNaN},
      {EwFn::exp, 0, 0, 89.f, kInf},          {EwFn::exp, 0, 0, -104.f, 0},
      {EwFn::tanh, 0, 0, kInf, 1},            {EwFn::tanh, 0, 0, -kInf, -1},
      {EwFn::tanh, 0, 0, kNaN, kNaN},         {EwFn::gelu_tanh, 0, 0, -kInf, 0},
      {EwFn::gelu_tanh, 0, 0, kInf, kInf},    {EwFn::gelu_erf, 0, 0, -kInf, 0},
      {EwFn::gelu_erf, 0, 0, kInf, kInf},     {EwFn::silu, 0, 0, -kInf, 0},
      {EwFn::silu, 0, 0, kInf, kInf},         {EwFn::gelu_tanh, 0, 0, kNaN, kNaN},
      {EwFn::gelu_erf, 0, 0, kNaN, kNaN},     {EwFn::silu, 0, 0, kNaN, kNaN},
      {EwFn::log, 0, 0, 0.f, -kInf},          {EwFn::log, 0, 0, -1.f, kNaN},
      {EwFn::log, 0, 0, kInf, kInf},          {EwFn::sqrt, 0, 0, -1.f, kNaN},
      {EwFn::rsqrt, 0, 0, 0.f, kInf},         {EwFn::rsqrt, 0, 0, kInf, 0},
      {EwFn::pow_scalar, 0.f, 0, kNaN, 1},    {EwFn::pow_scalar, 1.5f, 0, -1.f, kNaN},
      {EwFn::pow_scalar, -1.f, 0, 0.f, kInf}, {EwFn::pow_scalar, 1.5f, 0, 0.f, 0},
      {EwFn::pow_scalar, -1.5f, 0, 0.f, kInf}, {EwFn::pow_scalar, 3.f, 0, -2.f, -8},
  };
  for (const Case& c : cases) {
    // Every lane position: lanes + 1 copies with the special value at each position in turn.
    for (int pos = 0; pos < kLanes + 1; ++pos) {
      std::vector<float> x(static_cast<std::size_t>(kLanes + 1), 0.5f), out(x.size(), -7.f);
      x[static_cast<std::size_t>(pos)] = c.x;
      Prog p;
      p.load(0, 0).op(c.f, 1, 0, 0, 0, c.p0, c.p1).store(0, 1);
      const Shape s{static_cast<index_t>(x.size())};
      const EwOperand in = f32_in(x.data(), contiguous_strides(s));
      const EwTarget t = f32_out(out.data(), contiguous_strides(s));
      ew_run(p.get(), &in, 1, &t, 1, s);
      const float got = out[static_cast<std::size_t>(pos)];
      INFO(std::string(ewfn_name(c.f)) << "(" << fmt(c.x) << ") = " << fmt(got) << " at lane " << pos);
      if (std::isnan(c.want)) CHECK(std::isnan(got));
      else CHECK(got == c.want);
    }
  }
  // binary: NaN on either side
  struct Case2 {
    EwFn f;
    float a, b, want;
  };
  const Case2 cases2[] = {
      {EwFn::minimum, kNaN, 1.f, kNaN}, {EwFn::minimum, 1.f, kNaN, kNaN}, {EwFn::maximum, kNaN, 1.f, kNaN},
      {EwFn::maximum, 1.f, kNaN, kNaN}, {EwFn::maximum, -kInf, kInf, kInf}, {EwFn::minimum, -kInf, kInf, -kInf},
      {EwFn::gt, kNaN, 1.f, 0.f},       {EwFn::lt, kNaN, 1.f, 0.f},       {EwFn::ge, 1.f, kNaN, 0.f},
      {EwFn::le, kNaN, kNaN, 0.f},      {EwFn::eq, kNaN, kNaN, 0.f},      {EwFn::ne, kNaN, kNaN, 1.f},
      {EwFn::ne, 1.f, 1.f, 0.f},        {EwFn::eq, -0.f, 0.f, 1.f},       {EwFn::div, 1.f, 0.f, kInf},
      {EwFn::div, 0.f, 0.f, kNaN},      {EwFn::add, kInf, -kInf, kNaN},   {EwFn::mul, 0.f, kInf, kNaN},
  };
  for (const Case2& c : cases2) {
    for (int pos = 0; pos < kLanes + 1; ++pos) {
      std::vector<float> a(static_cast<std::size_t>(kLanes + 1), 2.f), b(a.size(), 3.f), out(a.size(), -7.f);
      a[static_cast<std::size_t>(pos)] = c.a;
      b[static_cast<std::size_t>(pos)] = c.b;
      Prog p;
      p.load(0, 0).load(1, 1).op(c.f, 2, 0, 1).store(0, 2);
      const Shape s{static_cast<index_t>(a.size())};
      const Strides st = contiguous_strides(s);
      const EwOperand in[2] = {f32_in(a.data(), st), f32_in(b.data(), st)};
      const EwTarget t = f32_out(out.data(), st);
      ew_run(p.get(), in, 2, &t, 1, s);
      const float got = out[static_cast<std::size_t>(pos)];
      INFO(std::string(ewfn_name(c.f)) << "(" << fmt(c.a) << ", " << fmt(c.b) << ") = " << fmt(got));
      if (std::isnan(c.want)) CHECK(std::isnan(got));
      else CHECK(got == c.want);
    }
  }
  // where: a NaN condition is "true" (nonzero), as torch.where(x.bool(), ...)
  {
    std::vector<float> m = {kNaN, 0.f, -0.f, 1.f, -kInf}, a = {1, 1, 1, 1, 1}, b = {2, 2, 2, 2, 2}, out(5);
    Prog p;
    p.load(0, 0).load(1, 1).load(2, 2).op(EwFn::where, 3, 0, 1, 2).store(0, 3);
    const Shape s{5};
    const Strides st = contiguous_strides(s);
    const EwOperand in[3] = {f32_in(m.data(), st), f32_in(a.data(), st), f32_in(b.data(), st)};
    const EwTarget t = f32_out(out.data(), st);
    ew_run(p.get(), in, 3, &t, 1, s);
    CHECK(out == std::vector<float>{1, 2, 2, 1, 1});
  }
}

TEST_CASE("exp, sigmoid, tanh: monotone and exact at saturation across the range boundaries") {
  // The SIMD exp switches paths at |x| = 87; sigmoid and tanh clamp their exp argument.
  std::vector<float> x;
  for (float v = -110.f; v <= 100.f; v += 0.37f) x.push_back(v);
  for (EwFn f : {EwFn::exp, EwFn::sigmoid, EwFn::tanh}) {
    std::vector<float> out(x.size());
    Prog p;
    p.load(0, 0).op(f, 1, 0).store(0, 1);
    const Shape s{static_cast<index_t>(x.size())};
    const EwOperand in = f32_in(x.data(), contiguous_strides(s));
    const EwTarget t = f32_out(out.data(), contiguous_strides(s));
    ew_run(p.get(), &in, 1, &t, 1, s);
    INFO(std::string(ewfn_name(f)));
    for (std::size_t i = 1; i < x.size(); ++i) CHECK(out[i] >= out[i - 1]);
    CHECK(out.front() == (f == EwFn::tanh ? -1.f : 0.f));
    CHECK(out.back() == (f == EwFn::exp ? kInf : 1.f));
    CHECK(check_fn(f, x, x, x, 0.f, 0.f) == 0);
  }
}

// =============================================================================== the loop

TEST_CASE("ew_run: broadcasting over ranks 0..4 matches the reference loop") {
  // y0 = (a * b + c) - d, y1 = exp(b) * a (a transcendental to check the dispatch; tolerance 4 ulp)
  Prog p;
  p.load(0, 0).load(1, 1).op(EwFn::mul, 2, 0, 1).load(3, 2).op(EwFn::add, 2, 2, 3).load(4, 3).op(EwFn::sub, 2, 2, 4);
  p.op(EwFn::exp, 5, 1).op(EwFn::mul, 5, 5, 0).store(0, 2).store(1, 5);

  struct Case {
    Shape out;
    Shape in[4];
  };
  const Case cases[] = {
      {Shape{}, {Shape{}, Shape{}, Shape{}, Shape{}}},
      {Shape{1}, {Shape{1}, Shape{}, Shape{1}, Shape{}}},
      {Shape{17}, {Shape{17}, Shape{1}, Shape{17}, Shape{}}},
      {Shape{1000}, {Shape{1000}, Shape{1000}, Shape{}, Shape{1}}},
      {Shape{3, 7}, {Shape{3, 7}, Shape{7}, Shape{3, 1}, Shape{}}},
      {Shape{7, 3}, {Shape{1, 3}, Shape{7, 1}, Shape{7, 3}, Shape{3}}},
      {Shape{2, 3, 4}, {Shape{2, 3, 4}, Shape{3, 1}, Shape{2, 1, 4}, Shape{1, 1, 1}}},
      {Shape{5, 1, 130}, {Shape{5, 1, 130}, Shape{130}, Shape{5, 1, 1}, Shape{1, 1, 130}}},
      {Shape{2, 3, 5, 7}, {Shape{2, 3, 5, 7}, Shape{3, 1, 7}, Shape{2, 1, 5, 1}, Shape{7}}},
      {Shape{3, 1, 4, 300}, {Shape{3, 1, 4, 300}, Shape{1, 300}, Shape{3, 1, 4, 1}, Shape{4, 300}}},
      {Shape{2, 0, 3}, {Shape{2, 0, 3}, Shape{3}, Shape{}, Shape{}}},
  };
  for (const Case& c : cases) {
    INFO("out shape " << c.out.rank() << "-d, numel " << c.out.numel());
    std::vector<std::vector<float>> data(4);
    std::vector<RefOperand> refs;
    std::vector<EwOperand> ops;
    for (int k = 0; k < 4; ++k) {
      data[static_cast<std::size_t>(k)] = iota_values(static_cast<std::size_t>(c.in[k].numel()) + 1, 0.25f, -3.f - k);
      const Strides st = broadcast_strides(c.in[k], contiguous_strides(c.in[k]), c.out);
      ops.push_back(f32_in(data[static_cast<std::size_t>(k)].data(), st));
      refs.push_back({data[static_cast<std::size_t>(k)].data(), DType::f32, st});
    }
    const Strides ost = contiguous_strides(c.out);
    std::vector<float> y0(static_cast<std::size_t>(c.out.numel()) + 1, -999.f), y1(y0);
    const std::vector<EwTarget> tg = {f32_out(y0.data(), ost), f32_out(y1.data(), ost)};
    ew_run(p.get(), ops.data(), 4, tg.data(), 2, c.out);
    std::vector<std::vector<double>> want;
    ref_run(p, refs, tg, c.out, want);
    check_target(tg[0], want[0], 0.0, "y0");
    check_target(tg[1], want[1], 5e-7, "y1");
    CHECK(y0.back() == -999.f);  // nothing written past the end
    if (c.out.numel() == 0) CHECK(y0.front() == -999.f);
  }
}

TEST_CASE("ew_run: strided gathers, transposed inputs and strided targets") {
  // x is stored as [7, 5] and read transposed as [5, 7]; y is written transposed back.
  const index_t R = 5, C = 7;
  std::vector<float> xs = iota_values(static_cast<std::size_t>(R * C), 0.5f, -8.f), w = iota_values(static_cast<std::size_t>(C), 1.f, 1.f);
  Strides xt;
  xt[0] = 1;
  xt[1] = R;  // element [i][j] of the [5,7] view is xs[j*5 + i]
  const Shape s{R, C};
  Strides wt;  // w broadcast along rows
  wt[0] = 0;
  wt[1] = 1;
  Strides yt;
  yt[0] = 1;
  yt[1] = R;  // y stored as [7,5]
  Prog p;
  p.load(0, 0).load(1, 1).op(EwFn::mul, 2, 0, 1).op(EwFn::tanh, 3, 2).store(0, 2).store(1, 3);
  std::vector<float> y0(static_cast<std::size_t>(R * C), -1.f), y1(y0);
  const EwOperand ops[2] = {f32_in(xs.data(), xt), f32_in(w.data(), wt)};
  const EwTarget tg[2] = {f32_out(y0.data(), yt), f32_out(y1.data(), contiguous_strides(s))};
  ew_run(p.get(), ops, 2, tg, 2, s);
  for (index_t i = 0; i < R; ++i)
    for (index_t j = 0; j < C; ++j) {
      const float prod = xs[static_cast<std::size_t>(j * R + i)] * w[static_cast<std::size_t>(j)];
      CHECK(y0[static_cast<std::size_t>(j * R + i)] == prod);
      CHECK(within(EwFn::tanh, y1[static_cast<std::size_t>(i * C + j)], std::tanh(static_cast<double>(prod)), prod, 0));
    }
  // Negative strides (a reversed view) and a stride of 3 over a long row (several tiles).
  const index_t n = 1000;
  std::vector<float> big = iota_values(static_cast<std::size_t>(3 * n), 0.125f, -6.f), out(static_cast<std::size_t>(n));
  Strides rev;
  rev[0] = -3;
  const EwOperand back = f32_in(big.data() + 3 * (n - 1), rev);
  const EwTarget o = f32_out(out.data(), contiguous_strides(Shape{n}));
  Prog q;
  q.load(0, 0).op(EwFn::neg, 1, 0).store(0, 1);
  ew_run(q.get(), &back, 1, &o, 1, Shape{n});
  for (index_t i = 0; i < n; ++i) CHECK(out[static_cast<std::size_t>(i)] == -big[static_cast<std::size_t>(3 * (n - 1 - i))]);
}

TEST_CASE("ew_run: boolean operands and targets") {
  const index_t n = 37;
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(n));
  std::vector<float> x = test_values(static_cast<std::size_t>(n), 11);
  for (index_t i = 0; i < n; ++i) mask[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i % 3 == 0);
  std::vector<std::uint8_t> gt(static_cast<std::size_t>(n), 7);
  std::vector<float> sel(static_cast<std::size_t>(n), -1.f);
  // sel = where(mask, x, -x); gt = x > 0 (boolean target); plus a broadcast boolean scalar.
  Prog p;
  p.load(0, 0).load(1, 1).op(EwFn::neg, 2, 1).op(EwFn::where, 3, 0, 1, 2).splat(4, 0.f).op(EwFn::gt, 5, 1, 4);
  p.load(6, 2).op(EwFn::mul, 3, 3, 6).store(0, 3).store(1, 5);
  const Shape s{n};
  const Strides st = contiguous_strides(s);
  const std::uint8_t one = 1;
  const EwOperand ops[3] = {{mask.data(), DType::boolean, st}, f32_in(x.data(), st), {&one, DType::boolean, Strides{}}};
  const EwTarget tg[2] = {f32_out(sel.data(), st), {gt.data(), DType::boolean, st}};
  ew_run(p.get(), ops, 3, tg, 2, s);
  for (index_t i = 0; i < n; ++i) {
    const float xi = x[static_cast<std::size_t>(i)];
    // The multiply by the boolean 1 is a NEON multiply on armv7, which flushes a denormal x.
    const float want = kSimdFlushesDenormals ? flush_denormal(mask[static_cast<std::size_t>(i)] ? xi : -xi)
                                             : (mask[static_cast<std::size_t>(i)] ? xi : -xi);
    INFO("i " << i << " x " << fmt(xi));
    if (std::isnan(want)) CHECK(std::isnan(sel[static_cast<std::size_t>(i)]));
    else CHECK(sel[static_cast<std::size_t>(i)] == want);
    CHECK(gt[static_cast<std::size_t>(i)] == (xi > 0.f ? 1 : 0));
  }
  // A boolean target stores value != 0 (NaN is nonzero); a gathered boolean operand.
  std::vector<float> v = {0.f, -0.f, 2.f, kNaN, -1e-30f, 0.5f};
  std::vector<std::uint8_t> bout(6, 9), bm = {1, 9, 0, 9, 1, 9, 0, 9, 1, 9, 1, 9};
  Strides two;
  two[0] = 2;
  Prog q;
  q.load(0, 0).load(1, 1).op(EwFn::add, 2, 0, 1).store(0, 2);
  const EwOperand qo[2] = {f32_in(v.data(), contiguous_strides(Shape{6})), {bm.data(), DType::boolean, two}};
  const EwTarget qt = {bout.data(), DType::boolean, contiguous_strides(Shape{6})};
  ew_run(q.get(), qo, 2, &qt, 1, Shape{6});
  CHECK(bout == std::vector<std::uint8_t>{1, 0, 1, 1, 1, 1});
}

TEST_CASE("ew_run: in-place aliasing of an output with an input read at the same positions") {
  for (const index_t n : {index_t{1}, index_t{7}, index_t{129}, index_t{1000}}) {
    INFO("n " << n);
    std::vector<float> x = iota_values(static_cast<std::size_t>(n), 0.1f, -4.f), x0 = x, y(x.size());
    const Shape s{n};
    const Strides st = contiguous_strides(s);
    // out0 (aliases x) = relu(x * 2 - 1); out1 = x + 1 reads x again after out0's value exists.
    Prog p;
    p.load(0, 0).splat(1, 2.f).op(EwFn::mul, 2, 0, 1).splat(3, 1.f).op(EwFn::sub, 2, 2, 3).op(EwFn::relu, 2, 2);
    p.op(EwFn::add, 4, 0, 3).store(0, 2).store(1, 4);
    const EwOperand in = f32_in(x.data(), st);
    const EwTarget tg[2] = {f32_out(x.data(), st), f32_out(y.data(), st)};
    ew_run(p.get(), &in, 1, tg, 2, s);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float t = x0[i] * 2.f - 1.f;
      CHECK(x[i] == (t < 0.f ? 0.f : t));
      CHECK(y[i] == x0[i] + 1.f);
    }
    // The value stored in place is computed before another input load of the same buffer:
    // out (aliases x) = exp(x) * 2, then x is loaded again (into a new register) for out1.
    x = x0;
    Prog q;
    q.load(0, 0).op(EwFn::exp, 1, 0).splat(2, 2.f).op(EwFn::mul, 1, 1, 2).load(3, 0).op(EwFn::neg, 3, 3);
    q.store(0, 1).store(1, 3);
    ew_run(q.get(), &in, 1, tg, 2, s);
    for (std::size_t i = 0; i < x.size(); ++i) {
      CHECK(within(EwFn::exp, x[i] / 2.f, std::exp(static_cast<double>(x0[i])), x0[i], 0));
      CHECK(y[i] == -x0[i]);
    }
    // Two inputs both aliasing outputs: y0 = a + b into a, y1 = a - b into b.
    std::vector<float> a = x0, b = iota_values(x.size(), 0.3f, 1.f), a0 = a, b0 = b;
    Prog r;
    r.load(0, 0).load(1, 1).op(EwFn::add, 2, 0, 1).op(EwFn::sub, 3, 0, 1).store(0, 2).store(1, 3);
    const EwOperand ri[2] = {f32_in(a.data(), st), f32_in(b.data(), st)};
    const EwTarget rt[2] = {f32_out(a.data(), st), f32_out(b.data(), st)};
    ew_run(r.get(), ri, 2, rt, 2, s);
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i] == a0[i] + b0[i]);
      CHECK(b[i] == a0[i] - b0[i]);
    }
  }
}

TEST_CASE("ew_run: identity store, a register stored twice, a splat overwritten between tiles") {
  const index_t n = 1000;  // several tiles: the constant-tile cache must be refilled when needed
  std::vector<float> x = iota_values(static_cast<std::size_t>(n), 0.5f, -20.f), y0(x.size()), y1(x.size()), y2(x.size());
  Prog p;
  // r1 = 3 (splat), r2 = x * r1, r1 = r2 + r1 (overwrites the splat's tile), r3 = 3 again via splat
  p.load(0, 0).splat(1, 3.f).op(EwFn::mul, 2, 0, 1).op(EwFn::add, 1, 2, 1).splat(3, 3.f).op(EwFn::sub, 3, 1, 3);
  p.store(0, 3).store(1, 3).store(2, 0);
  const Shape s{n};
  const Strides st = contiguous_strides(s);
  const EwOperand in = f32_in(x.data(), st);
  const EwTarget tg[3] = {f32_out(y0.data(), st), f32_out(y1.data(), st), f32_out(y2.data(), st)};
  ew_run(p.get(), &in, 1, tg, 3, s);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float want = (x[i] * 3.f + 3.f) - 3.f;
    CHECK(y0[i] == want);
    CHECK(y1[i] == want);
    CHECK(y2[i] == x[i]);
  }
  // The splat register is reused for a different constant on every tile of the row.
  Prog q;
  q.load(0, 0).splat(1, 2.f).op(EwFn::mul, 2, 0, 1).splat(1, 5.f).op(EwFn::add, 2, 2, 1).store(0, 2);
  ew_run(q.get(), &in, 1, tg, 1, s);
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(y0[i] == x[i] * 2.f + 5.f);
}

TEST_CASE("ew_run: all 16 registers, a long program and program length beyond the plan") {
  const index_t n = 300;
  std::vector<float> x = iota_values(static_cast<std::size_t>(n), 0.01f, -1.f), y(x.size());
  Prog p;
  p.load(0, 0);
  for (int r = 1; r < kEwMaxRegs; ++r) p.op(EwFn::add, r, r - 1, 0);  // r = (r+1) * x
  for (int r = 1; r < kEwMaxRegs; ++r) p.op(EwFn::add, 0, 0, r);      // x * (1 + 2 + ... + 16)
  p.store(0, 0);
  const Shape s{n};
  const EwOperand in = f32_in(x.data(), contiguous_strides(s));
  const EwTarget t = f32_out(y.data(), contiguous_strides(s));
  ew_run(p.get(), &in, 1, &t, 1, s);
  for (std::size_t i = 0; i < x.size(); ++i) {
    float r[kEwMaxRegs];
    r[0] = x[i];
    for (int k = 1; k < kEwMaxRegs; ++k) r[k] = r[k - 1] + x[i];
    for (int k = 1; k < kEwMaxRegs; ++k) r[0] = r[0] + r[k];
    CHECK(y[i] == r[0]);
  }
  // Longer than kEwMaxSteps: runs unplanned (no fusion, no direct writes), same results.
  Prog q;
  q.load(0, 0).splat(1, 0.5f);
  const int chain = kEwMaxSteps + 10;
  for (int k = 0; k < chain; ++k) {
    q.op(EwFn::mul, 2, 0, 1).op(EwFn::add, 0, 2, 1);  // x = x * 0.5 + 0.5 (fusable pairs)
  }
  q.store(0, 0);
  REQUIRE(static_cast<int>(q.code.size()) > kEwMaxSteps);
  ew_run(q.get(), &in, 1, &t, 1, s);
  for (std::size_t i = 0; i < x.size(); ++i) {
    float v = x[i];
    for (int k = 0; k < chain; ++k) {
      const float m = v * 0.5f;
      v = m + 0.5f;
    }
    CHECK(y[i] == v);
  }
}

TEST_CASE("ew_run: a fusion needing more than kEwMaxRegs tiles runs the program as written") {
  // r2 = a * b, then a and b's registers are reused by 15 more operands while r2 waits for the
  // add: fusing mul+add would keep a and b alive too, 17 values for 16 tiles.
  const index_t n = 77;
  std::vector<std::vector<float>> data;
  for (int k = 0; k < 17; ++k) data.push_back(iota_values(static_cast<std::size_t>(n), 0.5f + 0.01f * k, -k * 1.f));
  const Shape s{n};
  const Strides st = contiguous_strides(s);
  std::vector<EwOperand> ops;
  for (int k = 0; k < 17; ++k) ops.push_back(f32_in(data[static_cast<std::size_t>(k)].data(), st));
  Prog p;
  p.load(0, 0).load(1, 1).op(EwFn::mul, 2, 0, 1);
  const int regs[15] = {0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  for (int k = 0; k < 15; ++k) p.load(regs[k], 2 + k);
  p.op(EwFn::add, 2, 2, 15);
  for (int k = 0; k < 14; ++k) p.op(EwFn::sub, 2, 2, regs[k]);
  p.store(0, 2);
  EwTileEval ev(p.get());
  CHECK(ev.num_steps() == 0);
  std::vector<float> y(static_cast<std::size_t>(n));
  const EwTarget t = f32_out(y.data(), st);
  ew_run(p.get(), ops.data(), 17, &t, 1, s);
  for (std::size_t i = 0; i < y.size(); ++i) {
    volatile float prod = data[0][i] * data[1][i];  // volatile: no FMA contraction in the reference
    float v = prod + data[16][i];
    for (int k = 0; k < 14; ++k) v = v - data[static_cast<std::size_t>(2 + k)][i];
    CHECK(y[i] == v);
  }
}

TEST_CASE("ew_run: fused plans give bit-identical results to the unfused instructions") {
  // Programs shaped like passes/fusion.hpp output, compared bit for bit with the same
  // instructions run one ew_run each (no fusion possible).
  const index_t n = 517;
  std::vector<float> x = test_values(static_cast<std::size_t>(n), 21), w = test_values(static_cast<std::size_t>(n), 22),
                     v = test_values(static_cast<std::size_t>(n), 23);
  const Shape s{n};
  const Strides st = contiguous_strides(s);
  const EwOperand ops[3] = {f32_in(x.data(), st), f32_in(w.data(), st), f32_in(v.data(), st)};
  struct Case {
    const char* name;
    Prog fused;
    int expect_steps;  // plan length after fusion
  };
  std::vector<Case> cases;
  {  // relu(0.75 * x + 0.1) * sigmoid(x): mul+add+relu, sigmoid*mul
    Prog p;
    p.load(0, 0).splat(1, 0.75f).op(EwFn::mul, 1, 1, 0).splat(2, 0.1f).op(EwFn::add, 1, 1, 2).op(EwFn::relu, 1, 1);
    p.op(EwFn::sigmoid, 0, 0).op(EwFn::mul, 0, 1, 0).store(0, 0);
    cases.push_back({"chain", p, 6});
  }
  for (EwFn act : {EwFn::relu6, EwFn::clamp}) {  // w - x * v, then clamp
    Prog p;
    p.load(0, 0).load(1, 1).load(2, 2).op(EwFn::mul, 3, 0, 2).op(EwFn::sub, 3, 1, 3).op(act, 3, 3, 0, 0, -0.5f, 2.f);
    p.store(0, 3);
    cases.push_back({"sub_mul+clamp", p, 5});
  }
  {  // x * w - v (mul_sub), x * w + v (mul_add, add operands swapped)
    Prog p;
    p.load(0, 0).load(1, 1).op(EwFn::mul, 0, 0, 1).load(2, 2).op(EwFn::sub, 0, 0, 2).store(0, 0);
    cases.push_back({"mul_sub", p, 5});
    Prog q;
    q.load(0, 0).load(1, 1).op(EwFn::mul, 0, 0, 1).load(2, 2).op(EwFn::add, 0, 2, 0).store(0, 0);
    cases.push_back({"mul_add", q, 5});
  }
  for (EwFn act : {EwFn::relu, EwFn::relu6}) {  // binary op + activation
    for (EwFn op : {EwFn::add, EwFn::sub, EwFn::mul}) {
      Prog p;
      p.load(0, 0).load(1, 1).op(op, 2, 0, 1).op(act, 2, 2).store(0, 2);
      cases.push_back({"binary+act", p, 4});
    }
  }
  for (EwFn g : {EwFn::sigmoid, EwFn::silu, EwFn::tanh, EwFn::gelu_tanh, EwFn::gelu_erf}) {  // gating both ways
    Prog p;
    p.load(0, 0).load(1, 1).op(g, 2, 1).op(EwFn::mul, 2, 0, 2).store(0, 2);
    cases.push_back({"gate b", p, 4});
    Prog q;
    q.load(0, 0).op(g, 0, 0).load(1, 1).op(EwFn::mul, 0, 0, 1).store(0, 0);
    cases.push_back({"gate a", q, 4});
  }
  {  // not fusable: x * x is read twice; the mul result is read by two instructions
    Prog p;
    p.load(0, 0).op(EwFn::mul, 1, 0, 0).op(EwFn::add, 2, 1, 1).store(0, 2);
    cases.push_back({"double read", p, 4});
    Prog q;
    q.load(0, 0).load(1, 1).op(EwFn::mul, 2, 0, 1).op(EwFn::add, 3, 2, 0).op(EwFn::sub, 3, 3, 2).store(0, 3);
    cases.push_back({"two readers", q, 6});
    Prog r;  // the mul's input register is reused before the add: fused anyway (values, not registers)
    r.load(0, 0).load(1, 1).op(EwFn::mul, 2, 0, 1).load(0, 2).op(EwFn::add, 2, 2, 0).store(0, 2);
    cases.push_back({"input register reused", r, 5});
    Prog q2;  // what passes/fusion.hpp emits for relu(0.75x + 0.1) * sigmoid(x): registers reused
    q2.load(0, 0).op(EwFn::sigmoid, 1, 0).splat(2, 0.75f).op(EwFn::mul, 0, 2, 0).splat(2, 0.1f);
    q2.op(EwFn::add, 0, 0, 2).op(EwFn::relu, 0, 0).op(EwFn::mul, 0, 0, 1).store(0, 0);
    cases.push_back({"chain as built", q2, 6});
  }
  for (const Case& c : cases) {
    INFO(std::string(c.name) << " #" << (&c - cases.data()));
    EwTileEval ev(c.fused.get());
    CHECK(ev.num_steps() == c.expect_steps);
    std::vector<EwInstr> body, stores;
    for (const EwInstr& i : c.fused.code) (i.kind == EwKind::store ? stores : body).push_back(i);
    const int nt = static_cast<int>(stores.size());
    std::vector<std::vector<float>> scratch;
    std::vector<std::vector<float>> regs(kEwMaxRegs, std::vector<float>(static_cast<std::size_t>(n)));
    for (const EwInstr& i : body) {
      if (i.kind == EwKind::load) {
        regs[i.dst] = i.a == 0 ? x : (i.a == 1 ? w : v);
      } else if (i.kind == EwKind::splat) {
        regs[i.dst].assign(static_cast<std::size_t>(n), i.p0);
      } else {
        Prog one;
        one.load(0, 0).load(1, 1).load(2, 2).op(i.fn, 3, 0, 1, 2, i.p0, i.p1).store(0, 3);
        std::vector<float> r(static_cast<std::size_t>(n));
        const EwOperand oo[3] = {f32_in(regs[i.a].data(), st), f32_in(regs[i.b].data(), st), f32_in(regs[i.c].data(), st)};
        const EwTarget ot = f32_out(r.data(), st);
        ew_run(one.get(), oo, 3, &ot, 1, s);
        regs[i.dst] = r;
      }
    }
    scratch.assign(static_cast<std::size_t>(nt), std::vector<float>(static_cast<std::size_t>(n), -5.f));
    std::vector<EwTarget> tg;
    for (int k = 0; k < nt; ++k) tg.push_back(f32_out(scratch[static_cast<std::size_t>(k)].data(), st));
    ew_run(c.fused.get(), ops, 3, tg.data(), nt, s);
    for (const EwInstr& st0 : stores) {
      const std::vector<float>& got = scratch[st0.dst];
      const std::vector<float>& want = regs[st0.a];
      int bad = 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && !(std::isnan(got[i]) && std::isnan(want[i]))) {
          if (++bad <= 3) {
            INFO("element " << i << ": fused " << fmt(got[i]) << ", unfused " << fmt(want[i]));
            CHECK(false);
          }
        }
      }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("ew_run: operand counts beyond capacity are reported, not run") {
#if KILN_EXCEPTIONS
  Prog p;
  p.load(0, 0).store(0, 0);
  std::vector<EwOperand> many(static_cast<std::size_t>(kEwMaxOperands + 1));
  float y = 0;
  const EwTarget t = f32_out(&y, Strides{});
  CHECK_THROWS_AS(ew_run(p.get(), many.data(), kEwMaxOperands + 1, &t, 1, Shape{}), kiln::Error);
  clear_error();
#endif
}

TEST_CASE("ew_apply: in-place on every function and ragged lengths") {
  for (int n = 0; n <= 3 * kLanes + 1; ++n) {
    for (EwFn f : kAllFns) {
      const std::vector<float> a = test_values(static_cast<std::size_t>(n) + 1, 31);
      std::vector<float> d = a, want(a.size());
      EwInstr ins;
      ins.fn = f;
      ins.p0 = 0.25f;
      ins.p1 = 1.f;
      ew_apply(ins, a.data(), a.data(), a.data(), want.data(), n);
      ew_apply(ins, d.data(), d.data(), d.data(), d.data(), n);  // d aliases every operand
      for (int i = 0; i < n; ++i) {
        INFO(std::string(ewfn_name(f)) << " n " << n << " i " << i);
        CHECK(std::memcmp(&d[static_cast<std::size_t>(i)], &want[static_cast<std::size_t>(i)], sizeof(float)) == 0);
      }
      CHECK(std::memcmp(&d[static_cast<std::size_t>(n)], &a[static_cast<std::size_t>(n)], sizeof(float)) == 0);  // untouched past n
    }
  }
}
