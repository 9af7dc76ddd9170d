// Random-graph differential test: thousands of random models, each compiled with kiln::compile
// and compared against kiln::eager on the same inputs. This is how fusion, simplification,
// CSE and memory-planning bugs are caught.
//
// A Program is a list of ops over a pool of values (v0 = x, v1 = y, then one value per op) plus
// the constant tensors it captures (w0, w1, ...). Program::run<T> walks the list with T =
// kiln::SymTensor (traced by compile) or kiln::Tensor<float> (eager); the model lambdas only
// forward to it, so the interpreter is instantiated twice.
//
// Per graph:
//   * compiled(x, y) vs eager(x, y): shapes exact (and equal to the generator's prediction),
//     elements |c - e| <= kAtol + kRtol * |e|, NaN only where the other side has NaN;
//   * a second call with other inputs hits the cache and matches eager on those inputs;
//   * a third call with the first inputs hits the cache and reproduces the first result bit for
//     bit (nothing leaks through the arena between calls);
//   * the observation plan (CompileOptions::observe: no rewrites, one step per node, no memory
//     reuse) matches eager, and every f32 node it observes matches the interpreter's value of
//     the traced graph (trace/interpret.hpp), same tolerance.
// Magnitudes are tracked while generating (an upper bound per value) and values are tamed
// (tanh / clamp / scaling) before ops that could overflow, so no NaN or Inf is generated.
// Comparisons feeding where() only look at values that compiled and eager compute bit for bit
// (elementwise and view chains of inputs and weights); on values that went through a matmul or
// a sum the selection is a continuous one (where(a > b, a, b), |a - b|) so rounding cannot flip
// a branch.
//
// Weights are kiln::Tensor<float> objects owned by the program (graph constants); some are used
// through weight-only expressions (w * 2.f, tanh(w), w + w, transpose(w)), which run eagerly
// while tracing and are captured as temporaries.
//
// Environment: KILN_FUZZ_SEED (base seed; graph i uses seed + i), KILN_FUZZ_COUNT (graphs),
// KILN_FUZZ_VERBOSE=1 (print every program), KILN_FUZZ_MINIMIZE=1 (shrink every failing program
// to a small one that still fails; crashes too, in a child process, where fork() exists),
// KILN_FUZZ_WEIGHT_EXPR=0 (no weight-only expressions).
// To reproduce a failure: KILN_FUZZ_SEED=<seed> KILN_FUZZ_COUNT=1 ./test_random_graphs
// (the first graph's result can depend on earlier ones only through allocation addresses: rerun
// with the original seed and count if a single seed passes).
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>
#include <kiln/trace/interpret.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/wait.h>
#include <unistd.h>
#define KILN_FUZZ_FORK 1
#else
#define KILN_FUZZ_FORK 0
#endif

// The interpreter's helpers stay out of line: inlined into one giant function per tensor type
// they made this file several times slower to build with sanitizers.
#if defined(__GNUC__)
#define KILN_FUZZ_NOINLINE __attribute__((noinline))
#else
#define KILN_FUZZ_NOINLINE
#endif

namespace {

using kiln::index_t;
using kiln::Shape;
using Ten = kiln::Tensor<float>;

// Tolerance of compiled vs eager. matmul and reductions may sum in another order when fused or
// when reading through strides; everything else is computed by the same per-element code.
constexpr double kAtol = 1e-4;
constexpr double kRtol = 1e-4;

#if defined(__SANITIZE_ADDRESS__)
#define KILN_FUZZ_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_FUZZ_SANITIZED 1
#endif
#endif
#ifndef KILN_FUZZ_SANITIZED
#define KILN_FUZZ_SANITIZED 0
#endif

// Graphs per run: about 2 s in a Release build, a few seconds under ASan + UBSan or -O0.
#if KILN_FUZZ_SANITIZED || !defined(__OPTIMIZE__)
constexpr int kDefaultCount = 2000;
#else
constexpr int kDefaultCount = 10000;
#endif
constexpr std::uint32_t kDefaultSeed = 0x6b696c6eu;  // "kiln"
constexpr index_t kMaxNumel = 2048;                 // largest value a program creates
constexpr float kTame = 32.f;                       // operands above this magnitude are tamed first
constexpr int kMaxReported = 8;                     // failing graphs reported before giving up

// ------------------------------------------------------------------------------------------------
// Programs

enum class U : std::uint8_t {
  neg, abs, exp, log, sqrt, rsqrt, tanh, sigmoid, relu, relu6, leaky_relu, gelu, gelu_tanh, silu, clamp, pow, count
};
enum class B : std::uint8_t { add, sub, mul, div, minimum, maximum, count };
enum class Cmp : std::uint8_t { gt, lt, ge, le, eq, ne, count };

const char* u_name(U f) {
  static const char* const n[] = {"neg",  "abs",   "exp",        "log",  "sqrt",      "rsqrt", "tanh",  "sigmoid",
                                  "relu", "relu6", "leaky_relu", "gelu", "gelu_tanh", "silu",  "clamp", "pow"};
  return n[static_cast<int>(f)];
}
const char* b_name(B f) {
  static const char* const n[] = {"add", "sub", "mul", "div", "minimum", "maximum"};
  return n[static_cast<int>(f)];
}
const char* cmp_name(Cmp f) {
  static const char* const n[] = {"gt", "lt", "ge", "le", "eq", "ne"};
  return n[static_cast<int>(f)];
}

enum class Kind : std::uint8_t {
  unary,        // fn(a); log/sqrt/rsqrt take abs(a) + p0
  binary,       // fn(a, b) (fn(b, a) when flag); div: the divisor is abs(.) + p0, a positive weight or |s| >= 0.5
  where,        // fn 0: where(cmp(a, b), c, d); 1: where(cmp(a, b), a, b); 2: where(cmp(a, b), a - b, b - a);
                // 3: where(a, c, d) with an f32 condition
  reduce,       // sum/mean/max/min(a, axis, keepdim)
  softmax,      // softmax(a, axis)
  log_softmax,  // log_softmax(a, axis)
  matmul,       // matmul(a, W)
  linear,       // linear(a, W) or linear(a, W, bias c)
  matmul_vv,    // matmul(a, c) or matmul(a, transpose(c)) (flag)
  matmul_wv,    // matmul(W, a)
  reshape,      // reshape(a, shape)
  flatten,      // flatten(a, axis, axis2)
  transpose,    // transpose(a, axis, axis2)
  permute,      // permute(a, perm)
  slice,        // slice(a, axis, start, stop, step)
  concat,       // concat({parts}, axis)
  identity,     // an algebraic identity the simplifier removes (fn picks which)
  window,       // NHWC: fn 0 conv2d(a, W [, bias c]), 1 max_pool2d, 2 avg_pool2d; perm[] = kernel h/w,
                // stride, dilation, groups, count_include_pad; flag: "same" padding, else shape = pads per side
};

/// An operand: a value of the pool, a captured weight (optionally through a weight-only
/// expression) or a number.
struct Arg {
  enum Src : std::uint8_t { value, weight, scalar };
  Src src = value;
  int idx = -1;
  float s = 0.f;
  int wexpr = 0;  // weights: 0 as is, 1 w * s, 2 tanh(w), 3 w + w, 4 transpose(w)
};

struct OpRec {
  Kind kind = Kind::unary;
  int fn = 0, fn2 = 0;
  int a = -1;
  Arg b, c, d;
  float p0 = 0.f, p1 = 0.f;
  int axis = 0, axis2 = 0;
  bool flag = false;
  Shape shape;  // reshape target
  int perm[kiln::kMaxRank]{};
  index_t start = 0, stop = 0, step = 1;
  int parts[3]{};
  int nparts = 0;
};

/// What the generator knows about a value: its shape, a bound on |element|, and whether compiled
/// and eager compute it bit for bit (no matmul, sum, mean or softmax on the way).
struct Val {
  Shape shape;
  float mag = 1.f;
  bool exact = true;
};

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (int i = 0; i < s.rank(); ++i) os << (i ? "," : "") << s[i];
  os << ']';
  return os.str();
}

struct Program {
  std::vector<Val> vals;   // vals[0] = x, vals[1] = y, vals[i + 2] = result of ops[i]
  std::vector<Ten> w;      // captured constants
  std::vector<OpRec> ops;
  int out[2] = {0, 0};
  int num_out = 1;

  // ---- the interpreter ----------------------------------------------------------------------

  template <class T>
  std::vector<T> run(const T& x, const T& y) const {
    std::vector<T> v;
    v.reserve(vals.size());
    v.push_back(x);
    v.push_back(y);
    for (const OpRec& o : ops) v.push_back(step(o, v));
    return v;
  }

  Ten weight_expr(const Arg& g) const {
    const Ten& t = w[static_cast<std::size_t>(g.idx)];
    switch (g.wexpr) {
      case 1: return t * g.s;
      case 2: return kiln::tanh(t);
      case 3: return t + t;
      default: return kiln::transpose(t);
    }
  }

  /// f(weight operand) (through its weight expression, if any).
  template <class F>
  KILN_FUZZ_NOINLINE auto with_weight(const Arg& g, F&& f) const -> decltype(f(w[0])) {
    if (g.wexpr == 0) return f(w[static_cast<std::size_t>(g.idx)]);
    const Ten t = weight_expr(g);
    return f(t);
  }
  /// f(operand) with the operand as T (value), const Ten& (weight) or float.
  template <class T, class F>
  KILN_FUZZ_NOINLINE auto with_arg(const Arg& g, const std::vector<T>& v, F&& f) const -> decltype(f(v[0])) {
    switch (g.src) {
      case Arg::value: return f(v[static_cast<std::size_t>(g.idx)]);
      case Arg::weight: return with_weight(g, f);
      case Arg::scalar: break;
    }
    return f(g.s);
  }
  /// f(operand) for a value or a number.
  template <class T, class F>
  KILN_FUZZ_NOINLINE auto with_vs(const Arg& g, const std::vector<T>& v, F&& f) const -> decltype(f(v[0])) {
    if (g.src == Arg::value) return f(v[static_cast<std::size_t>(g.idx)]);
    return f(g.s);
  }

  template <class L, class R>
  KILN_FUZZ_NOINLINE static auto binary(B fn, const L& a, const R& b) {
    switch (fn) {
      case B::add: return kiln::add(a, b);
      case B::sub: return a - b;
      case B::mul: return kiln::mul(a, b);
      case B::div: return a / b;
      case B::minimum: return kiln::minimum(a, b);
      default: return kiln::maximum(a, b);
    }
  }
  template <class L, class R>
  KILN_FUZZ_NOINLINE static auto compare(Cmp fn, const L& a, const R& b) {
    switch (fn) {
      case Cmp::gt: return a > b;
      case Cmp::lt: return kiln::lt(a, b);
      case Cmp::ge: return kiln::ge(a, b);
      case Cmp::le: return a <= b;
      case Cmp::eq: return kiln::eq(a, b);
      default: return kiln::ne(a, b);
    }
  }

  template <class T>
  KILN_FUZZ_NOINLINE static T unary(U fn, const T& a, float p0, float p1) {
    switch (fn) {
      case U::neg: return -a;
      case U::abs: return kiln::abs(a);
      case U::exp: return kiln::exp(a);
      case U::log: return kiln::log(kiln::abs(a) + p0);
      case U::sqrt: return kiln::sqrt(kiln::abs(a) + p0);
      case U::rsqrt: return kiln::rsqrt(kiln::abs(a) + p0);
      case U::tanh: return kiln::tanh(a);
      case U::sigmoid: return kiln::sigmoid(a);
      case U::relu: return kiln::relu(a);
      case U::relu6: return kiln::relu6(a);
      case U::leaky_relu: return kiln::leaky_relu(a, p0);
      case U::gelu: return kiln::gelu(a);
      case U::gelu_tanh: return kiln::gelu(a, kiln::GeluApprox::tanh);
      case U::silu: return kiln::silu(a);
      case U::clamp: return kiln::clamp(a, p0, p1);
      default: return kiln::pow(a, p0);
    }
  }

  template <class T>
  KILN_FUZZ_NOINLINE T step(const OpRec& o, const std::vector<T>& v) const {
    const T& a = v[static_cast<std::size_t>(o.a)];
    switch (o.kind) {
      case Kind::unary: return unary(static_cast<U>(o.fn), a, o.p0, o.p1);
      case Kind::binary: {
        const B fn = static_cast<B>(o.fn);
        if (fn == B::div) {
          // The divisor: abs(value) + p0; weights (positive) and numbers (|s| >= 0.5) as they are.
          if (!o.flag && o.b.src == Arg::value) return a / (kiln::abs(v[static_cast<std::size_t>(o.b.idx)]) + o.p0);
          if (!o.flag) return with_arg(o.b, v, [&](const auto& d) -> T { return a / d; });
          return with_arg(o.b, v, [&](const auto& n) -> T { return n / (kiln::abs(a) + o.p0); });
        }
        if (!o.flag) return with_arg(o.b, v, [&](const auto& b) -> T { return binary(fn, a, b); });
        return with_arg(o.b, v, [&](const auto& b) -> T { return binary(fn, b, a); });
      }
      case Kind::where: {
        const Cmp cf = static_cast<Cmp>(o.fn2);
        switch (o.fn) {
          case 0:
          case 3: {
            auto sel = [&](const auto& cond) -> T {
              return with_vs(o.c, v, [&](const auto& c) -> T {
                return with_arg(o.d, v, [&](const auto& d) -> T { return kiln::where(cond, c, d); });
              });
            };
            if (o.fn == 3) return sel(a);
            return with_vs(o.b, v, [&](const auto& q) -> T { return sel(compare(cf, a, q)); });
          }
          case 1: return with_vs(o.b, v, [&](const auto& q) -> T { return kiln::where(compare(cf, a, q), a, q); });
          default:
            return with_vs(o.b, v, [&](const auto& q) -> T { return kiln::where(compare(cf, a, q), a - q, q - a); });
        }
      }
      case Kind::reduce:
        switch (static_cast<kiln::ReduceKind>(o.fn)) {
          case kiln::ReduceKind::sum: return kiln::sum(a, o.axis, o.flag);
          case kiln::ReduceKind::mean: return kiln::mean(a, o.axis, o.flag);
          case kiln::ReduceKind::max: return kiln::max(a, o.axis, o.flag);
          default: return kiln::min(a, o.axis, o.flag);
        }
      case Kind::softmax: return kiln::softmax(a, o.axis);
      case Kind::log_softmax: return kiln::log_softmax(a, o.axis);
      case Kind::matmul: return with_weight(o.b, [&](const Ten& wt) -> T { return kiln::matmul(a, wt); });
      case Kind::linear: {
        return with_weight(o.b, [&](const Ten& wt) -> T {
          if (!o.flag) return kiln::linear(a, wt);
          return kiln::linear(a, wt, w[static_cast<std::size_t>(o.c.idx)]);
        });
      }
      case Kind::matmul_vv: {
        const T& c = v[static_cast<std::size_t>(o.c.idx)];
        return o.flag ? kiln::matmul(a, kiln::transpose(c)) : kiln::matmul(a, c);
      }
      case Kind::matmul_wv: return with_weight(o.b, [&](const Ten& wt) -> T { return kiln::matmul(wt, a); });
      case Kind::reshape: return kiln::reshape(a, o.shape);
      case Kind::flatten: return kiln::flatten(a, o.axis, o.axis2);
      case Kind::transpose: return kiln::transpose(a, o.axis, o.axis2);
      case Kind::permute: {
        const int* p = o.perm;
        switch (a.shape().rank()) {
          case 1: return kiln::permute(a, {p[0]});
          case 2: return kiln::permute(a, {p[0], p[1]});
          case 3: return kiln::permute(a, {p[0], p[1], p[2]});
          default: return kiln::permute(a, {p[0], p[1], p[2], p[3]});
        }
      }
      case Kind::slice: return kiln::slice(a, o.axis, o.start, o.stop, o.step);
      case Kind::concat: {
        auto part = [&](int k) -> const T& { return v[static_cast<std::size_t>(o.parts[k])]; };
        if (o.nparts == 2) return kiln::concat({part(0), part(1)}, o.axis);
        return kiln::concat({part(0), part(1), part(2)}, o.axis);
      }
      case Kind::window: {
        const int* q = o.perm;
        const kiln::Padding2d pad =
            o.flag ? kiln::Padding2d::same() : kiln::Padding2d::sides(static_cast<int>(o.shape[0]), static_cast<int>(o.shape[1]),
                                                              static_cast<int>(o.shape[2]), static_cast<int>(o.shape[3]));
        if (o.fn == 1 || o.fn == 2) {
          const auto opt = kiln::Pool2dOptions(q[0], q[1]).with_stride(q[2]).with_padding(pad).with_count_include_pad(q[5] != 0);
          return o.fn == 1 ? kiln::max_pool2d(a, opt) : kiln::avg_pool2d(a, opt);
        }
        const auto opt = kiln::Conv2dOptions().with_stride(q[2]).with_dilation(q[3]).with_groups(q[4]).with_padding(pad);
        return with_weight(o.b, [&](const Ten& wt) -> T {
          if (o.c.idx < 0) return kiln::conv2d(a, wt, opt);
          return kiln::conv2d(a, wt, w[static_cast<std::size_t>(o.c.idx)], opt);
        });
      }
      case Kind::identity:
        switch (o.fn) {
          case 0: return a * 1.f;
          case 1: return 1.f * a;
          case 2: return a + 0.f;
          case 3: return 0.f + a;
          case 4: return a - 0.f;
          case 5: return a / 1.f;
          case 6: return kiln::pow(a, 1.f);
          case 7: return -(-a);
          case 8: return kiln::reshape(a, a.shape());
          case 9: return kiln::transpose(kiln::transpose(a, o.axis, o.axis2), o.axis, o.axis2);
          default: {
            const int r = a.shape().rank();
            return r == 1 ? kiln::permute(a, {0}) : r == 2 ? kiln::permute(a, {0, 1}) : kiln::permute(a, {0, 1, 2});
          }
        }
    }
    return a;
  }

  // ---- printing -------------------------------------------------------------------------------

  std::string arg_str(const Arg& g) const {
    std::ostringstream os;
    if (g.src == Arg::scalar) {
      os << g.s << 'f';
      return os.str();
    }
    if (g.src == Arg::value) {
      os << 'v' << g.idx;
      return os.str();
    }
    const std::string wn = "w" + std::to_string(g.idx) + shape_str(w[static_cast<std::size_t>(g.idx)].shape());
    switch (g.wexpr) {
      case 0: os << wn; break;
      case 1: os << wn << " * " << g.s << 'f'; break;
      case 2: os << "tanh(" << wn << ')'; break;
      case 3: os << wn << " + " << wn; break;
      default: os << "transpose(" << wn << ')'; break;
    }
    return os.str();
  }

  std::string op_str(const OpRec& o) const {
    std::ostringstream os;
    const std::string a = "v" + std::to_string(o.a);
    switch (o.kind) {
      case Kind::unary: {
        const U f = static_cast<U>(o.fn);
        if (f == U::log || f == U::sqrt || f == U::rsqrt)
          os << u_name(f) << "(abs(" << a << ") + " << o.p0 << "f)";
        else if (f == U::leaky_relu || f == U::pow)
          os << u_name(f) << '(' << a << ", " << o.p0 << "f)";
        else if (f == U::clamp)
          os << "clamp(" << a << ", " << o.p0 << "f, " << o.p1 << "f)";
        else
          os << u_name(f) << '(' << a << ')';
        break;
      }
      case Kind::binary: {
        const B f = static_cast<B>(o.fn);
        std::string b = arg_str(o.b);
        if (f == B::div) {
          if (!o.flag && o.b.src == Arg::value) os << a << " / (abs(" << b << ") + " << o.p0 << "f)";
          else if (!o.flag) os << a << " / " << b;
          else os << b << " / (abs(" << a << ") + " << o.p0 << "f)";
        } else {
          os << b_name(f) << '(' << (o.flag ? b : a) << ", " << (o.flag ? a : b) << ')';
        }
        break;
      }
      case Kind::where: {
        const char* c = cmp_name(static_cast<Cmp>(o.fn2));
        const std::string q = arg_str(o.b);
        os << "where(";
        if (o.fn == 3) os << a;
        else os << c << '(' << a << ", " << q << ')';
        switch (o.fn) {
          case 1: os << ", " << a << ", " << q; break;
          case 2: os << ", " << a << " - " << q << ", " << q << " - " << a; break;
          default: os << ", " << arg_str(o.c) << ", " << arg_str(o.d); break;
        }
        os << ')';
        break;
      }
      case Kind::reduce:
        os << kiln::reduce_name(static_cast<kiln::ReduceKind>(o.fn)) << '(' << a << ", axis=" << o.axis
           << (o.flag ? ", keepdim" : "") << ')';
        break;
      case Kind::softmax: os << "softmax(" << a << ", " << o.axis << ')'; break;
      case Kind::log_softmax: os << "log_softmax(" << a << ", " << o.axis << ')'; break;
      case Kind::matmul: os << "matmul(" << a << ", " << arg_str(o.b) << ')'; break;
      case Kind::linear:
        os << "linear(" << a << ", " << arg_str(o.b);
        if (o.flag) os << ", " << arg_str(o.c);
        os << ')';
        break;
      case Kind::matmul_vv:
        if (o.flag) os << "matmul(" << a << ", transpose(v" << o.c.idx << "))";
        else os << "matmul(" << a << ", v" << o.c.idx << ')';
        break;
      case Kind::matmul_wv: os << "matmul(" << arg_str(o.b) << ", " << a << ')'; break;
      case Kind::reshape: os << "reshape(" << a << ", " << shape_str(o.shape) << ')'; break;
      case Kind::flatten: os << "flatten(" << a << ", " << o.axis << ", " << o.axis2 << ')'; break;
      case Kind::transpose: os << "transpose(" << a << ", " << o.axis << ", " << o.axis2 << ')'; break;
      case Kind::permute: {
        os << "permute(" << a << ", {";
        for (int i = 0; i < vals[static_cast<std::size_t>(o.a)].shape.rank(); ++i) os << (i ? "," : "") << o.perm[i];
        os << "})";
        break;
      }
      case Kind::slice:
        os << "slice(" << a << ", axis=" << o.axis << ", " << o.start << ", " << o.stop << ", " << o.step << ')';
        break;
      case Kind::concat: {
        os << "concat({";
        for (int k = 0; k < o.nparts; ++k) os << (k ? ", " : "") << 'v' << o.parts[k];
        os << "}, " << o.axis << ')';
        break;
      }
      case Kind::window: {
        static const char* const f[] = {"conv2d", "max_pool2d", "avg_pool2d"};
        os << f[o.fn] << '(' << a;
        if (o.fn == 0) os << ", " << arg_str(o.b) << (o.c.idx >= 0 ? ", w" + std::to_string(o.c.idx) : std::string());
        os << ", kernel " << o.perm[0] << 'x' << o.perm[1] << ", stride " << o.perm[2];
        if (o.fn == 0) os << ", dilation " << o.perm[3] << ", groups " << o.perm[4];
        if (o.fn == 2) os << (o.perm[5] ? ", count_include_pad" : ", exclude pad");
        if (o.flag) os << ", same)";
        else os << ", pad " << shape_str(o.shape) << ')';
        break;
      }
      case Kind::identity: {
        static const char* const f[] = {"%s * 1.f", "1.f * %s", "%s + 0.f", "0.f + %s", "%s - 0.f", "%s / 1.f",
                                        "pow(%s, 1.f)", "-(-%s)", "reshape(%s, its shape)", "transpose(transpose(%s))",
                                        "permute(%s, identity)"};
        std::string t = f[o.fn];
        t.replace(t.find("%s"), 2, a);
        os << t;
        if (o.fn == 9) os << " axes " << o.axis << ',' << o.axis2;
        break;
      }
    }
    return os.str();
  }

  std::string describe() const {
    std::ostringstream os;
    os << "  v0 = x " << shape_str(vals[0].shape) << "\n  v1 = y " << shape_str(vals[1].shape) << '\n';
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const Val& r = vals[i + 2];
      std::string line = "  v" + std::to_string(i + 2) + " = " + op_str(ops[i]);
      if (line.size() < 60) line.resize(60, ' ');
      os << line << "  # " << shape_str(r.shape) << " |.|<=" << r.mag << (r.exact ? "" : " (rounding may differ)")
         << '\n';
    }
    os << "  return v" << out[0];
    if (num_out == 2) os << ", v" << out[1];
    os << '\n';
    return os.str();
  }
};

// ------------------------------------------------------------------------------------------------
// The generator

class Gen {
 public:
  Gen(std::uint32_t seed, Program& p, bool weight_exprs) : rng_(seed), P(p), wexpr_(weight_exprs) {}

  void build() {
    // Inputs.
    const Shape xs = rand_shape(ri(1, 4));
    Shape ys;
    const int r = ri(0, 99);
    if (r < 35) ys = xs;
    else if (r < 65) ys = partner_shape(xs);
    else if (r < 85 && xs.rank() >= 1) {  // [.., K] with x's K: matmul partners
      ys = rand_shape(ri(1, 3));
      ys[ys.rank() - 1] = xs.back();
      if (ys.numel() > kMaxNumel) ys = Shape{xs.back()};
    } else {
      ys = rand_shape(ri(1, 4));
    }
    P.vals.push_back(Val{xs, 2.f, true});
    P.vals.push_back(Val{ys, 2.f, true});

    const int r_ops = ri(0, 99);
    const int n_ops = r_ops < 10 ? ri(1, 4) : r_ops < 80 ? ri(5, 20) : r_ops < 97 ? ri(21, 40) : ri(60, 90);
    while (static_cast<int>(P.ops.size()) < n_ops) {
      const int k = ri(0, 99);
      bool ok = false;
      if (k < 18) ok = gen_unary();
      else if (k < 40) ok = gen_binary();
      else if (k < 46) ok = gen_where();
      else if (k < 52) ok = gen_reduce();
      else if (k < 55) ok = gen_softmax();
      else if (k < 60) ok = gen_matmul();
      else if (k < 65) ok = gen_linear();
      else if (k < 68) ok = gen_matmul_vv();
      else if (k < 70) ok = gen_matmul_wv();
      else if (k < 74) ok = gen_reshape();
      else if (k < 76) ok = gen_flatten();
      else if (k < 80) ok = gen_transpose();
      else if (k < 83) ok = gen_permute();
      else if (k < 88) ok = gen_slice();
      else if (k < 92) ok = gen_concat();
      else if (k < 96) ok = gen_identity();
      else if (k < 98) ok = gen_window();
      else ok = gen_dup();
      (void)ok;
    }

    // Outputs: usually the last value; sometimes any value (an input, a value also used inside,
    // a view); sometimes two outputs, occasionally the same value twice.
    const int nv = static_cast<int>(P.vals.size());
    P.out[0] = coin(0.75) ? nv - 1 : ri(0, nv - 1);
    P.num_out = coin(0.4) ? 2 : 1;
    if (P.num_out == 2) P.out[1] = coin(0.1) ? P.out[0] : ri(0, nv - 1);
  }

 private:
  // ---- random helpers -------------------------------------------------------------------------
  int ri(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  float rf(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng_); }
  bool coin(double p) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p; }
  /// A "nice" float (exactly representable, short to print).
  float nice(float lo, float hi) { return std::round(rf(lo, hi) * 8.f) / 8.f; }

  index_t ext() {
    const int r = ri(0, 99);
    if (r < 5) return 17;
    if (r < 8) return 33;
    if (r < 20) return 1;
    return ri(2, 9);
  }
  Shape rand_shape(int rank) {
    for (int tries = 0;; ++tries) {
      Shape s;
      for (int i = 0; i < rank; ++i) s.push_back(tries < 20 ? ext() : ri(1, 4));
      if (s.numel() <= kMaxNumel) return s;
    }
  }
  /// A shape that broadcasts with s: a suffix of s with some extents set to 1 (or expanded from 1).
  Shape partner_shape(const Shape& s) {
    if (coin(0.08) || s.rank() == 0) {
      if (s.rank() == 0) return rand_shape(ri(0, 2));
      return Shape();
    }
    for (int tries = 0; tries < 10; ++tries) {
      const int k = ri(1, s.rank());
      Shape p;
      for (int d = s.rank() - k; d < s.rank(); ++d) {
        index_t e = s[d];
        if (e != 1 && coin(0.3)) e = 1;
        else if (e == 1 && coin(0.3)) e = ri(2, 6);
        p.push_back(e);
      }
      Shape o;
      if (kiln::broadcast_shapes(s, p, o) && o.numel() <= kMaxNumel) return p;
    }
    return Shape{s.back()};
  }
  static bool bcast(const Shape& a, const Shape& b, Shape& out) {
    return kiln::broadcast_shapes(a, b, out) && out.numel() <= kMaxNumel;
  }

  const Val& val(int i) const { return P.vals[static_cast<std::size_t>(i)]; }

  /// A value satisfying ok(i), biased towards recent values (chains fuse) but reaching back
  /// (shared nodes). -1 when none.
  template <class Pred>
  int pick(Pred ok) {
    std::vector<int> c;
    for (int i = 0; i < static_cast<int>(P.vals.size()); ++i)
      if (ok(i)) c.push_back(i);
    if (c.empty()) return -1;
    const int n = static_cast<int>(c.size());
    if (coin(0.55)) return c[static_cast<std::size_t>(n - 1 - ri(0, std::min(2, n - 1)))];
    return c[static_cast<std::size_t>(ri(0, n - 1))];
  }
  int pick_any() {
    return pick([](int) { return true; });
  }

  int push(const OpRec& o, const Val& v) {
    P.ops.push_back(o);
    P.vals.push_back(v);
    return static_cast<int>(P.vals.size()) - 1;
  }

  /// i itself when |v_i| <= limit, else a new value that bounds it (tanh, clamp, sigmoid or a
  /// scaling).
  int tame(int i, float limit) {
    const Val v = val(i);
    if (v.mag <= limit) return i;
    OpRec o;
    o.a = i;
    Val r = v;
    const int k = ri(0, 3);
    if (k == 0) {
      o.kind = Kind::unary;
      o.fn = static_cast<int>(U::tanh);
      r.mag = 1.f;
    } else if (k == 1) {
      const float c = std::min(limit, static_cast<float>(ri(1, 8)));
      o.kind = Kind::unary;
      o.fn = static_cast<int>(U::clamp);
      o.p0 = -c;
      o.p1 = c;
      r.mag = c;
    } else if (k == 2) {
      o.kind = Kind::unary;
      o.fn = static_cast<int>(U::sigmoid);
      r.mag = 1.f;
    } else {
      o.kind = Kind::binary;
      o.fn = static_cast<int>(B::mul);
      o.b.src = Arg::scalar;
      o.b.s = std::ldexp(1.f, -static_cast<int>(std::ceil(std::log2(v.mag / (0.5f * limit)))));  // a power of 2
      r.mag = v.mag * o.b.s;
    }
    return push(o, r);
  }

  int add_weight(const Shape& s, float lo, float hi) {
    Ten t(s);
    for (float& x : t) x = rf(lo, hi);
    P.w.push_back(std::move(t));
    return static_cast<int>(P.w.size()) - 1;
  }
  /// A weight operand of shape s (values in [lo, hi]); with weight expressions enabled it is
  /// sometimes w * c, tanh(w) or w + w (same shape), which the compiler should fold.
  Arg weight_arg(const Shape& s, float lo, float hi, float& mag, bool allow_expr = true) {
    Arg g;
    g.src = Arg::weight;
    mag = std::max(std::fabs(lo), std::fabs(hi));
    if (wexpr_ && allow_expr && coin(0.35)) {
      g.wexpr = ri(1, 3);
      if (g.wexpr == 1) {
        g.s = nice(0.25f, 2.f);
        g.idx = add_weight(s, lo / g.s, hi / g.s);
      } else if (g.wexpr == 3) {
        g.idx = add_weight(s, 0.5f * lo, 0.5f * hi);
      } else {
        g.idx = add_weight(s, lo, hi);
        mag = std::min(mag, 1.f);
      }
      return g;
    }
    g.idx = add_weight(s, lo, hi);
    return g;
  }
  /// A [K, N] matrix operand: a plain weight, or (weight expressions) transpose of an [N, K] one.
  Arg matrix_arg(index_t K, index_t N, float scale, float& mag) {
    if (wexpr_ && coin(0.3)) {
      Arg g;
      g.src = Arg::weight;
      g.wexpr = 4;
      g.idx = add_weight(Shape{N, K}, -scale, scale);
      mag = scale;
      return g;
    }
    return weight_arg(Shape{K, N}, -scale, scale, mag);
  }

  // ---- ops ------------------------------------------------------------------------------------

  bool gen_unary() {
    const U fn = static_cast<U>(ri(0, static_cast<int>(U::count) - 1));
    OpRec o;
    o.kind = Kind::unary;
    o.fn = static_cast<int>(fn);
    float limit = kTame;
    if (fn == U::exp) limit = 4.f;
    if (fn == U::pow) {
      o.p0 = coin(0.5) ? 2.f : 3.f;
      limit = o.p0 == 2.f ? 6.f : 3.f;
    }
    o.a = tame(pick_any(), limit);
    const Val& a = val(o.a);
    const float m = a.mag;
    Val r{a.shape, m, a.exact};
    switch (fn) {
      case U::exp: r.mag = std::exp(m); break;
      case U::log:
        o.p0 = a.exact && coin(0.5) ? 0.25f : nice(0.5f, 2.f);
        r.mag = std::max(std::fabs(std::log(o.p0)), std::log(m + o.p0)) + 0.01f;
        break;
      case U::sqrt:
        o.p0 = a.exact && coin(0.5) ? 0.f : nice(0.25f, 1.f);
        r.mag = std::sqrt(m + o.p0) + 0.01f;
        break;
      case U::rsqrt:
        o.p0 = nice(0.25f, 2.f);
        r.mag = 1.f / std::sqrt(o.p0) + 0.01f;
        break;
      case U::tanh:
      case U::sigmoid: r.mag = 1.f; break;
      case U::relu6: r.mag = std::min(m, 6.f); break;
      case U::leaky_relu: o.p0 = coin(0.5) ? 0.01f : nice(-0.5f, 0.5f); break;
      case U::gelu:
      case U::gelu_tanh:
      case U::silu: r.mag = std::max(m, 0.3f); break;
      case U::clamp: {
        o.p0 = nice(-4.f, 1.f);
        o.p1 = coin(0.1) ? o.p0 - 0.5f : nice(o.p0, 4.f);  // lo > hi is allowed: gives hi
        r.mag = std::min(m, std::max(std::fabs(o.p0), std::fabs(o.p1)));
        break;
      }
      case U::pow: r.mag = std::pow(m, o.p0); break;
      default: break;
    }
    push(o, r);
    return true;
  }

  /// The second operand of a binary op with first operand shape s; result shape in out. (s is a
  /// copy: taming may grow P.vals.)
  Arg operand_for(const Shape s, Shape& out, float& mag, bool& exact, float limit, bool positive_weight) {
    Arg g;
    const int r = ri(0, 99);
    if (r < 45) {
      const int j = pick([&](int i) {
        Shape o;
        return bcast(s, val(i).shape, o);
      });
      if (j >= 0) {
        g.src = Arg::value;
        g.idx = tame(j, limit);
        kiln::broadcast_shapes(s, val(g.idx).shape, out);
        mag = val(g.idx).mag;
        exact = val(g.idx).exact;
        return g;
      }
    }
    if (r < 80) {
      const Shape ps = partner_shape(s);
      kiln::broadcast_shapes(s, ps, out);
      exact = true;
      if (positive_weight) return weight_arg(ps, 0.5f, 1.5f, mag, false);
      return weight_arg(ps, -2.f, 2.f, mag);
    }
    g.src = Arg::scalar;
    g.s = coin(0.2) ? static_cast<float>(ri(-2, 2)) : nice(-3.f, 3.f);
    if (positive_weight && std::fabs(g.s) < 0.5f) g.s = coin(0.5) ? 0.5f : -1.5f;
    out = s;
    mag = std::fabs(g.s);
    exact = true;
    return g;
  }

  bool gen_binary() {
    const B fn = static_cast<B>(ri(0, static_cast<int>(B::count) - 1));
    OpRec o;
    o.kind = Kind::binary;
    o.fn = static_cast<int>(fn);
    o.flag = coin(0.4);
    const float limit = fn == B::mul ? 8.f : kTame;
    o.a = tame(pick_any(), limit);
    Shape out;
    float mb = 0.f;
    bool eb = true;
    // div: the divisor is abs(value) + p0, a positive weight, or a number with |s| >= 0.5.
    o.b = operand_for(val(o.a).shape, out, mb, eb, limit, fn == B::div && !o.flag);
    const Val& a = val(o.a);
    Val r{out, 0.f, a.exact && eb};
    switch (fn) {
      case B::add:
      case B::sub: r.mag = a.mag + mb; break;
      case B::mul: r.mag = a.mag * mb; break;
      case B::div: {
        o.p0 = nice(0.5f, 2.f);
        if (o.flag) r.mag = mb / o.p0;  // b / (abs(a) + p0)
        else r.mag = a.mag / (o.b.src == Arg::value ? o.p0 : 0.5f);
        break;
      }
      default: r.mag = std::max(a.mag, mb); break;
    }
    push(o, r);
    return true;
  }

  bool gen_where() {
    OpRec o;
    o.kind = Kind::where;
    const int form = ri(0, 3);
    o.fn = form;
    if (form == 0 || form == 3) {
      o.a = pick([&](int i) { return val(i).exact; });
      if (o.a < 0) return false;
    } else {
      o.a = tame(pick_any(), kTame);
    }
    const Val a = val(o.a);
    Shape s = a.shape;
    bool exact = a.exact;
    float mag = 0.f;
    if (form != 3) {  // the comparison's other side: a value or a number
      o.fn2 = form == 0 ? ri(0, static_cast<int>(Cmp::count) - 1) : ri(0, 3);
      const bool eqne = o.fn2 >= static_cast<int>(Cmp::eq);
      int q = -1;
      if (!(eqne && coin(0.5)) && coin(0.7)) {
        q = pick([&](int i) {
          Shape t;
          return (form != 0 || val(i).exact) && bcast(s, val(i).shape, t);
        });
      }
      if (q >= 0) {
        o.b.src = Arg::value;
        o.b.idx = form == 0 ? q : tame(q, kTame);
        kiln::broadcast_shapes(s, val(o.b.idx).shape, s);
        exact = exact && val(o.b.idx).exact;
        mag = val(o.b.idx).mag;
      } else {
        o.b.src = Arg::scalar;
        o.b.s = eqne ? 0.f : nice(-1.f, 1.f);
        mag = std::fabs(o.b.s);
      }
    }
    if (form == 1) {
      push(o, Val{s, std::max(a.mag, mag), exact});
      return true;
    }
    if (form == 2) {
      push(o, Val{s, a.mag + mag, exact});
      return true;
    }
    // Branches: c a value or a number; d a value, a weight or a number.
    mag = 0.f;
    if (coin(0.8)) {
      const int c = pick([&](int i) {
        Shape t;
        return bcast(s, val(i).shape, t);
      });
      o.c.src = Arg::value;
      o.c.idx = tame(c, kTame);
      kiln::broadcast_shapes(s, val(o.c.idx).shape, s);
      mag = val(o.c.idx).mag;
      exact = exact && val(o.c.idx).exact;
    } else {
      o.c.src = Arg::scalar;
      o.c.s = nice(-2.f, 2.f);
      mag = std::fabs(o.c.s);
    }
    Shape out;
    float md = 0.f;
    bool ed = true;
    o.d = operand_for(s, out, md, ed, kTame, false);
    push(o, Val{out, std::max(mag, md), exact && ed});
    return true;
  }

  bool gen_reduce() {
    int a = pick([&](int i) { return val(i).shape.rank() >= 1; });
    if (a < 0) return false;
    OpRec o;
    o.kind = Kind::reduce;
    o.fn = ri(0, 3);
    o.a = tame(a, kTame);
    const Val& v = val(o.a);
    const int r = v.shape.rank();
    o.axis = ri(-r, r - 1);
    o.flag = coin(0.5);
    const int ax = o.axis < 0 ? o.axis + r : o.axis;
    Shape s;
    for (int d = 0; d < r; ++d) {
      if (d != ax) s.push_back(v.shape[d]);
      else if (o.flag) s.push_back(1);
    }
    const auto k = static_cast<kiln::ReduceKind>(o.fn);
    const float mag = k == kiln::ReduceKind::sum ? v.mag * static_cast<float>(v.shape[ax]) : v.mag;
    const bool exact = (k == kiln::ReduceKind::max || k == kiln::ReduceKind::min) && v.exact;
    push(o, Val{s, mag, exact});
    return true;
  }

  bool gen_softmax() {
    int a = pick([&](int i) { return val(i).shape.rank() >= 1; });
    if (a < 0) return false;
    OpRec o;
    o.kind = coin(0.6) ? Kind::softmax : Kind::log_softmax;
    o.a = tame(a, 16.f);
    const Val& v = val(o.a);
    const int r = v.shape.rank();
    o.axis = ri(-r, r - 1);
    const index_t n = v.shape[o.axis < 0 ? o.axis + r : o.axis];
    const float mag = o.kind == Kind::softmax ? 1.f : 2.f * v.mag + std::log(static_cast<float>(n)) + 0.01f;
    push(o, Val{v.shape, mag, false});
    return true;
  }

  bool gen_matmul() {
    int a = pick([&](int i) { return val(i).shape.rank() >= 1; });
    if (a < 0) return false;
    OpRec o;
    o.kind = Kind::matmul;
    o.a = tame(a, 4.f);
    const Val& v = val(o.a);
    const Shape& as = v.shape;
    const index_t K = as.back();
    const index_t N = ext();
    const float scale = 1.f / std::sqrt(static_cast<float>(K));
    float wm = 0.f;
    Shape out;
    if (coin(0.2) && as.rank() <= 3) {  // batched weight [Bt, K, N]: batch dims broadcast
      index_t bt = ext();
      if (as.rank() == 3 && as[0] != 1 && coin(0.7)) bt = as[0];
      if (as.rank() == 3 && as[0] != 1 && bt != as[0]) bt = 1;
      const Shape ws{bt, K, N};
      Shape ab, batch;
      for (int d = 0; d + 2 < as.rank(); ++d) ab.push_back(as[d]);
      if (!kiln::broadcast_shapes(ab, Shape{bt}, batch)) return false;
      out = batch;
      if (as.rank() >= 2) out.push_back(as[as.rank() - 2]);
      out.push_back(N);
      if (out.numel() > kMaxNumel) return false;
      o.b = weight_arg(ws, -scale, scale, wm);
    } else {
      out = as;
      out[out.rank() - 1] = N;
      if (out.numel() > kMaxNumel) return false;
      o.b = matrix_arg(K, N, scale, wm);
    }
    push(o, Val{out, v.mag * wm * static_cast<float>(K) + 0.01f, false});
    return true;
  }

  bool gen_linear() {
    int a = pick([&](int i) { return val(i).shape.rank() >= 1; });
    if (a < 0) return false;
    OpRec o;
    o.kind = Kind::linear;
    o.a = tame(a, 4.f);
    const Val& v = val(o.a);
    const index_t K = v.shape.back();
    const index_t N = ext();
    Shape out = v.shape;
    out[out.rank() - 1] = N;
    if (out.numel() > kMaxNumel) return false;
    const float scale = 1.f / std::sqrt(static_cast<float>(K));
    float wm = 0.f;
    o.b = weight_arg(Shape{N, K}, -scale, scale, wm);
    float bm = 0.f;
    o.flag = coin(0.6);
    if (o.flag) {
      o.c.src = Arg::weight;
      o.c.idx = add_weight(Shape{N}, -1.f, 1.f);
      bm = 1.f;
    }
    push(o, Val{out, v.mag * wm * static_cast<float>(K) + bm + 0.01f, false});
    return true;
  }

  /// Batch dims of a [..., M, K] (rank >= 2) and c [..., X, Y] broadcast; writes the batch shape.
  static bool batch_of(const Shape& a, const Shape& c, Shape& batch) {
    Shape ab, cb;
    for (int d = 0; d + 2 < a.rank(); ++d) ab.push_back(a[d]);
    for (int d = 0; d + 2 < c.rank(); ++d) cb.push_back(c[d]);
    return kiln::broadcast_shapes(ab, cb, batch);
  }
  static bool vv_shape(const Shape& a, const Shape& c, bool trans, Shape& out) {
    if (a.rank() < 1 || c.rank() < 2) return false;
    const index_t K = a.back();
    const index_t Kc = trans ? c[c.rank() - 1] : c[c.rank() - 2];
    const index_t N = trans ? c[c.rank() - 2] : c[c.rank() - 1];
    if (K != Kc) return false;
    Shape s;
    if (a.rank() == 1) {
      for (int d = 0; d + 2 < c.rank(); ++d) s.push_back(c[d]);
    } else {
      if (!batch_of(a, c, s)) return false;
      s.push_back(a[a.rank() - 2]);
    }
    s.push_back(N);
    if (s.rank() > 4 || s.numel() > kMaxNumel) return false;
    out = s;
    return true;
  }

  bool gen_matmul_vv() {
    const bool trans = coin(0.6);
    int a = -1, c = -1;
    for (int tries = 0; tries < 4 && c < 0; ++tries) {
      a = pick([&](int i) { return val(i).shape.rank() >= 1; });
      if (a < 0) return false;
      c = pick([&](int i) {
        Shape t;
        return vv_shape(val(a).shape, val(i).shape, trans, t);
      });
    }
    if (c < 0) return false;
    OpRec o;
    o.kind = Kind::matmul_vv;
    o.flag = trans;
    o.a = tame(a, 3.f);
    o.c.src = Arg::value;
    o.c.idx = tame(c, 3.f);
    Shape out;
    vv_shape(val(o.a).shape, val(o.c.idx).shape, trans, out);
    const float mag = val(o.a).mag * val(o.c.idx).mag * static_cast<float>(val(o.a).shape.back()) + 0.01f;
    push(o, Val{out, mag, false});
    return true;
  }

  bool gen_matmul_wv() {
    int a = pick([&](int i) { return val(i).shape.rank() >= 2; });
    if (a < 0) return false;
    OpRec o;
    o.kind = Kind::matmul_wv;
    o.a = tame(a, 4.f);
    const Shape& as = val(o.a).shape;
    const index_t K = as[as.rank() - 2];
    const index_t M = ext();
    Shape out = as;
    out[out.rank() - 2] = M;
    if (out.numel() > kMaxNumel) return false;
    const float scale = 1.f / std::sqrt(static_cast<float>(K));
    float wm = 0.f;
    o.b = weight_arg(Shape{M, K}, -scale, scale, wm);
    push(o, Val{out, val(o.a).mag * wm * static_cast<float>(K) + 0.01f, false});
    return true;
  }

  bool gen_reshape() {
    OpRec o;
    o.kind = Kind::reshape;
    o.a = pick_any();
    const Val v = val(o.a);
    const index_t n = v.shape.numel();
    const int rank = ri(1, 4);
    Shape s;
    index_t rest = n;
    for (int d = 0; d + 1 < rank; ++d) {
      std::vector<index_t> divs;
      for (index_t q = 1; q <= rest; ++q)
        if (rest % q == 0) divs.push_back(q);
      const index_t q = divs[static_cast<std::size_t>(ri(0, static_cast<int>(divs.size()) - 1))];
      s.push_back(q);
      rest /= q;
    }
    s.push_back(rest);
    o.shape = s;
    if (coin(0.3)) o.shape[ri(0, rank - 1)] = -1;
    push(o, Val{s, v.mag, v.exact});
    return true;
  }

  bool gen_flatten() {
    OpRec o;
    o.kind = Kind::flatten;
    o.a = pick([&](int i) { return val(i).shape.rank() >= 1; });
    if (o.a < 0) return false;
    const Val v = val(o.a);
    const int r = v.shape.rank();
    int b = ri(0, r - 1), e = ri(b, r - 1);
    o.axis = coin(0.3) ? b - r : b;
    o.axis2 = coin(0.5) ? e - r : e;
    Shape s;
    for (int d = 0; d < b; ++d) s.push_back(v.shape[d]);
    index_t m = 1;
    for (int d = b; d <= e; ++d) m *= v.shape[d];
    s.push_back(m);
    for (int d = e + 1; d < r; ++d) s.push_back(v.shape[d]);
    push(o, Val{s, v.mag, v.exact});
    return true;
  }

  bool gen_transpose() {
    OpRec o;
    o.kind = Kind::transpose;
    o.a = pick([&](int i) { return val(i).shape.rank() >= 2; });
    if (o.a < 0) return false;
    const Val v = val(o.a);
    const int r = v.shape.rank();
    int x = ri(0, r - 1), y = ri(0, r - 1);
    if (x == y && coin(0.8)) y = (x + 1) % r;
    if (coin(0.5)) {  // the default: the last two
      x = r - 2;
      y = r - 1;
    }
    o.axis = coin(0.5) ? x - r : x;
    o.axis2 = coin(0.5) ? y - r : y;
    Shape s = v.shape;
    std::swap(s[x], s[y]);
    push(o, Val{s, v.mag, v.exact});
    return true;
  }

  bool gen_permute() {
    OpRec o;
    o.kind = Kind::permute;
    o.a = pick([&](int i) { return val(i).shape.rank() >= 2 && val(i).shape.rank() <= 4; });
    if (o.a < 0) return false;
    const Val v = val(o.a);
    const int r = v.shape.rank();
    std::vector<int> p(static_cast<std::size_t>(r));
    for (int i = 0; i < r; ++i) p[static_cast<std::size_t>(i)] = i;
    std::shuffle(p.begin(), p.end(), rng_);
    Shape s;
    for (int i = 0; i < r; ++i) {
      o.perm[i] = p[static_cast<std::size_t>(i)];
      s.push_back(v.shape[o.perm[i]]);
    }
    push(o, Val{s, v.mag, v.exact});
    return true;
  }

  bool gen_slice() {
    OpRec o;
    o.kind = Kind::slice;
    o.a = pick([&](int i) { return val(i).shape.rank() >= 1; });
    if (o.a < 0) return false;
    const Val v = val(o.a);
    const int r = v.shape.rank();
    const int ax = ri(0, r - 1);
    o.axis = coin(0.3) ? ax - r : ax;
    const index_t L = v.shape[ax];
    o.step = coin(0.7) ? 1 : ri(2, 3);
    const index_t st = ri(0, static_cast<int>(L) - 1);
    const index_t sp = ri(static_cast<int>(st) + 1, static_cast<int>(L));
    o.start = coin(0.3) ? st - L : st;
    o.stop = coin(0.2) ? sp - L : (sp == L && coin(0.3) ? L + ri(1, 5) : sp);
    if (o.stop == 0 && sp == L) o.stop = L;  // sp - L == 0 would mean "stop at 0"
    const index_t count = (sp - st + o.step - 1) / o.step;
    Shape s = v.shape;
    s[ax] = count;
    push(o, Val{s, v.mag, v.exact});
    return true;
  }

  bool gen_concat() {
    OpRec o;
    o.kind = Kind::concat;
    o.a = pick([&](int i) { return val(i).shape.rank() >= 1; });
    if (o.a < 0) return false;
    const Val v = val(o.a);
    const int r = v.shape.rank();
    const int ax = ri(0, r - 1);
    o.axis = coin(0.3) ? ax - r : ax;
    o.nparts = ri(2, 3);
    o.parts[0] = o.a;
    Shape s = v.shape;
    float mag = v.mag;
    bool exact = v.exact;
    for (int k = 1; k < o.nparts; ++k) {
      const int j = pick([&](int i) {
        const Shape& t = val(i).shape;
        if (t.rank() != r) return false;
        for (int d = 0; d < r; ++d)
          if (d != ax && t[d] != v.shape[d]) return false;
        return true;
      });
      o.parts[k] = j;
      s[ax] += val(j).shape[ax];
      mag = std::max(mag, val(j).mag);
      exact = exact && val(j).exact;
    }
    if (s.numel() > kMaxNumel) return false;
    push(o, Val{s, mag, exact});
    return true;
  }

  /// conv2d or pooling on a rank-4 value read as NHWC: random kernel, stride, dilation, groups
  /// (1, 2 or depthwise with multiplier 1-2) and padding ("same" or explicit per side).
  bool gen_window() {
    const int a = pick([&](int i) { return val(i).shape.rank() == 4; });
    if (a < 0) return false;
    OpRec o;
    o.kind = Kind::window;
    o.a = tame(a, 4.f);
    const Val& v = val(o.a);
    const Shape s = v.shape;
    o.fn = ri(0, 2);
    const bool conv = o.fn == 0;
    int* q = o.perm;
    q[0] = ri(1, 3), q[1] = ri(1, 3), q[2] = ri(1, 2), q[3] = conv && coin(0.2) ? 2 : 1;
    q[4] = 1, q[5] = coin(0.5) ? 1 : 0;
    o.flag = coin(0.5);
    int pads[4]{};
    if (o.flag) {  // TF "SAME", as the front-end resolves it
      for (int ax = 0; ax < 2; ++ax) {
        const index_t in = s[1 + ax], span = static_cast<index_t>(q[ax] - 1) * q[3] + 1, out = (in + q[2] - 1) / q[2];
        const index_t total = std::max<index_t>((out - 1) * q[2] + span - in, 0);
        pads[2 * ax] = static_cast<int>(total / 2);
        pads[2 * ax + 1] = static_cast<int>(total - total / 2);
      }
    } else {
      for (int k = 0; k < 4; ++k) pads[k] = ri(0, q[k / 2] - 1);  // smaller than the kernel (pools need it)
      o.shape = Shape{pads[0], pads[1], pads[2], pads[3]};
    }
    index_t oh = 0, ow = 0;
    for (int ax = 0; ax < 2; ++ax) {
      const index_t span = static_cast<index_t>(q[ax] - 1) * q[3] + 1, padded = s[1 + ax] + pads[2 * ax] + pads[2 * ax + 1];
      if (span > padded) return false;
      (ax == 0 ? oh : ow) = (padded - span) / q[2] + 1;
    }
    const index_t C = s[3];
    index_t O = C;
    float mag = v.mag;
    if (conv) {
      const int choice = ri(0, 2);
      if (choice == 1 && C % 2 == 0) q[4] = 2;
      if (choice == 2 && C > 1) q[4] = static_cast<int>(C);
      O = q[4] == C && C > 1 ? C * ri(1, 2) : ri(1, 9);
      if (O % q[4] != 0) O = q[4] * ri(1, 2);
      const index_t depth = static_cast<index_t>(q[0]) * q[1] * (C / q[4]);
      const float scale = 1.f / std::sqrt(static_cast<float>(depth));
      float wm = 0.f;
      o.b = weight_arg(Shape{O, q[0], q[1], C / q[4]}, -scale, scale, wm);
      mag = v.mag * wm * static_cast<float>(depth) + 0.01f;
      if (coin(0.6)) {
        o.c.src = Arg::weight;
        o.c.idx = add_weight(Shape{O}, -1.f, 1.f);
        mag += 1.f;
      }
    }
    const Shape out{s[0], oh, ow, O};
    if (out.numel() > kMaxNumel) return false;
    // Max pooling selects values: exact; sums (conv, average) may round differently.
    push(o, Val{out, mag, o.fn == 1 && v.exact});
    return true;
  }

  bool gen_identity() {
    OpRec o;
    o.kind = Kind::identity;
    o.a = pick_any();
    const Val v = val(o.a);
    const int r = v.shape.rank();
    o.fn = ri(0, 10);
    if (o.fn == 9 && r < 2) o.fn = 0;
    if (o.fn == 10 && (r < 1 || r > 3)) o.fn = 2;
    if (o.fn == 9) {
      o.axis = ri(-r, r - 1);
      o.axis2 = ri(-r, r - 1);
    }
    push(o, v);
    return true;
  }

  /// The same op again, on the same operands: CSE should merge the two.
  bool gen_dup() {
    if (P.ops.empty()) return false;
    const int j = ri(0, static_cast<int>(P.ops.size()) - 1);
    const OpRec o = P.ops[static_cast<std::size_t>(j)];
    const Val v = P.vals[static_cast<std::size_t>(j) + 2];
    push(o, v);
    return true;
  }

  std::mt19937 rng_;
  Program& P;
  bool wexpr_;
};

// ------------------------------------------------------------------------------------------------
// Checking

std::vector<Ten> as_list(Ten t) {
  std::vector<Ten> v;
  v.push_back(std::move(t));
  return v;
}
std::vector<Ten> as_list(std::tuple<Ten, Ten> t) {
  std::vector<Ten> v;
  v.push_back(std::move(std::get<0>(t)));
  v.push_back(std::move(std::get<1>(t)));
  return v;
}

std::string index_str(index_t flat, const Shape& s) {
  std::vector<index_t> idx(static_cast<std::size_t>(s.rank()));
  for (int d = s.rank() - 1; d >= 0; --d) {
    idx[static_cast<std::size_t>(d)] = flat % s[d];
    flat /= s[d];
  }
  std::ostringstream os;
  os << '[';
  for (std::size_t d = 0; d < idx.size(); ++d) os << (d ? "," : "") << idx[d];
  os << ']';
  return os.str();
}

/// Empty when `got` matches `want` within tolerance (or bit for bit when exact_bits), else a
/// description of the first difference. worst: the largest |got - want| / tolerance seen.
std::string compare(const Ten& got, const Ten& want, const Shape& expected, bool exact_bits, double& worst_ratio) {
  std::ostringstream os;
  if (got.shape() != want.shape() || got.shape() != expected) {
    os << "shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape()) << " (generator expects "
       << shape_str(expected) << ')';
    return os.str();
  }
  if (got.size() > 0 && (got.data() == nullptr || want.data() == nullptr)) return "empty tensor";
  index_t bad = 0, first = -1;
  double worst = 0.0;
  for (index_t i = 0; i < got.size(); ++i) {
    const double g = got[i], e = want[i];
    bool ok;
    if (std::isnan(g) || std::isnan(e)) ok = std::isnan(g) && std::isnan(e);
    else if (exact_bits) ok = std::memcmp(&got[i], &want[i], sizeof(float)) == 0;
    else if (std::isinf(e) || std::isinf(g)) ok = g == e;
    else {
      const double tol = kAtol + kRtol * std::fabs(e);
      ok = std::fabs(g - e) <= tol;
      worst_ratio = std::max(worst_ratio, std::fabs(g - e) / tol);
    }
    if (!ok) {
      ++bad;
      if (first < 0) first = i;
      if (!std::isnan(g) && !std::isnan(e)) worst = std::max(worst, std::fabs(g - e));
    }
  }
  if (bad == 0) return std::string();
  os.precision(9);
  os << bad << " of " << got.size() << " elements differ; first at " << index_str(first, got.shape()) << " (flat "
     << first << "): " << got[first] << " vs " << want[first] << "; largest |diff| " << worst;
  return os.str();
}

Ten random_input(const Shape& s, std::mt19937& rng) {
  Ten t(s);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  for (float& v : t) v = d(rng);
  return t;
}

struct Totals {
  long graphs = 0, ops = 0, nodes = 0, kernels = 0, cse = 0, simplified = 0, folded = 0, dead = 0, in_place = 0;
  double compile_ms = 0.0;
  double worst_ratio = 0.0;  // largest |compiled - eager| / tolerance over all compared elements
};

/// Runs one program through compile and eager; empty string when everything matches.
template <class Model>
std::string check_program(const Program& P, Model model, std::uint32_t seed, Totals& tot) {
  std::mt19937 rng(seed ^ 0x9e3779b9u);
  const Ten x = random_input(P.vals[0].shape, rng), y = random_input(P.vals[1].shape, rng);
  const Ten x2 = random_input(P.vals[0].shape, rng), y2 = random_input(P.vals[1].shape, rng);
  std::ostringstream err;
  auto expect_shape = [&](int k) { return P.vals[static_cast<std::size_t>(P.out[k])].shape; };
  auto diff = [&](const char* what, const std::vector<Ten>& got, const std::vector<Ten>& want, bool bits) {
    if (got.size() != want.size()) {
      err << what << ": " << got.size() << " outputs vs " << want.size() << '\n';
      return;
    }
    for (std::size_t k = 0; k < got.size(); ++k) {
      const std::string d = compare(got[k], want[k], expect_shape(static_cast<int>(k)), bits, tot.worst_ratio);
      if (!d.empty()) err << what << ", output " << k << " (v" << P.out[k] << "): " << d << '\n';
    }
  };
  const char* stage = "eager";
  try {
    const std::vector<Ten> e1 = as_list(kiln::eager(model)(x, y));
    stage = "compile (first call)";
    auto net = kiln::compile(model);
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<Ten> c1 = as_list(net(x, y));
    tot.compile_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const kiln::Stats s1 = net.stats();
    if (s1.traces != 1 || s1.cache_hits != 0)
      err << "first call: traces " << s1.traces << ", cache hits " << s1.cache_hits << '\n';
    diff("compiled vs eager", c1, e1, false);

    stage = "compile (second call, other inputs)";
    const std::vector<Ten> c2 = as_list(net(x2, y2));
    stage = "eager (other inputs)";
    const std::vector<Ten> e2 = as_list(kiln::eager(model)(x2, y2));
    const kiln::Stats s2 = net.stats();
    if (s2.traces != 1 || s2.cache_hits != 1)
      err << "second call: traces " << s2.traces << ", cache hits " << s2.cache_hits << " (expected 1, 1)\n";
    diff("second call (other inputs): compiled vs eager", c2, e2, false);

    stage = "compile (third call, first inputs again)";
    const std::vector<Ten> c3 = as_list(net(x, y));
    const kiln::Stats s3 = net.stats();
    if (s3.cache_hits != 2) err << "third call: cache hits " << s3.cache_hits << " (expected 2)\n";
    diff("third call vs first call (bit for bit)", c3, c1, true);

    stage = "compile with CompileOptions::observe";
    kiln::CompileOptions observe;
    observe.observe = true;
    auto dbg = kiln::compile(model, observe);
    diff("observation plan vs eager", as_list(dbg(x, y)), e1, false);
    const kiln::Graph& tg = *dbg.traced_graph();
    kiln::detail::Interpreter interp(tg);
    const void* ins[2] = {x.data(), y.data()};
    interp.run(ins);
    for (int id = 0; id < tg.size(); ++id) {
      if (tg[id].is_leaf() || tg[id].dtype != kiln::DType::f32) continue;
      Ten want(tg[id].shape);
      std::memcpy(static_cast<void*>(want.data()), interp.value(id), static_cast<std::size_t>(want.size()) * sizeof(float));
      const std::string d = compare(dbg.observed(id), want, tg[id].shape, false, tot.worst_ratio);
      if (!d.empty()) err << "observed %" << id << " vs interpreter: " << d << '\n';
    }

    ++tot.graphs;
    tot.ops += static_cast<long>(P.ops.size());
    tot.nodes += s3.nodes;
    tot.kernels += s3.kernels;
    tot.cse += s3.cse;
    tot.simplified += s3.simplified;
    tot.folded += s3.folded;
    tot.dead += s3.dead;
    tot.in_place += s3.in_place;
    if (!err.str().empty()) {
      std::ostringstream plan;
      net.print_graph(plan);
      err << "planned graph:\n" << plan.str();
    }
  } catch (const kiln::Error& e) {
    err << stage << " threw kiln::Error: " << e.what() << '\n';
  }
  return err.str();
}

/// Checks program P (inputs drawn from `seed`); empty string when it passes.
std::string check(const Program& P, std::uint32_t seed, Totals& tot) {
  std::string e;
  if (P.num_out == 1) {
    const int o0 = P.out[0];
    auto model = [&P, o0](auto x, auto y) {
      auto v = P.run(x, y);
      return v[static_cast<std::size_t>(o0)];
    };
    e = check_program(P, model, seed, tot);
  } else {
    const int o0 = P.out[0], o1 = P.out[1];
    auto model = [&P, o0, o1](auto x, auto y) {
      auto v = P.run(x, y);
      return std::make_tuple(v[static_cast<std::size_t>(o0)], v[static_cast<std::size_t>(o1)]);
    };
    e = check_program(P, model, seed, tot);
  }
  return e;
}

// ---- minimisation (KILN_FUZZ_MINIMIZE=1): shrink a failing program while it keeps failing ----

/// Calls f(int&) on every value index op o reads.
template <class F>
void each_value_use(OpRec& o, F&& f) {
  f(o.a);
  for (Arg* g : {&o.b, &o.c, &o.d})
    if (g->src == Arg::value && g->idx >= 0) f(g->idx);
  if (o.kind == Kind::concat)
    for (int k = 0; k < o.nparts; ++k) f(o.parts[k]);
}

/// Drops ops whose values no output needs (indices renumbered).
Program prune(const Program& P) {
  const int nv = static_cast<int>(P.vals.size());
  std::vector<bool> live(static_cast<std::size_t>(nv), false);
  live[0] = live[1] = true;
  for (int k = 0; k < P.num_out; ++k) live[static_cast<std::size_t>(P.out[k])] = true;
  for (int i = nv - 1; i >= 2; --i) {
    if (!live[static_cast<std::size_t>(i)]) continue;
    OpRec o = P.ops[static_cast<std::size_t>(i - 2)];
    each_value_use(o, [&](int& u) { live[static_cast<std::size_t>(u)] = true; });
  }
  std::vector<int> remap(static_cast<std::size_t>(nv), -1);
  Program Q;
  Q.w = P.w;
  for (int i = 0; i < nv; ++i) {
    if (!live[static_cast<std::size_t>(i)]) continue;
    remap[static_cast<std::size_t>(i)] = static_cast<int>(Q.vals.size());
    Q.vals.push_back(P.vals[static_cast<std::size_t>(i)]);
    if (i >= 2) {
      OpRec o = P.ops[static_cast<std::size_t>(i - 2)];
      each_value_use(o, [&](int& u) { u = remap[static_cast<std::size_t>(u)]; });
      Q.ops.push_back(o);
    }
  }
  Q.num_out = P.num_out;
  for (int k = 0; k < P.num_out; ++k) Q.out[k] = remap[static_cast<std::size_t>(P.out[k])];
  return Q;
}

/// Replaces every use of value `from` by value `to` (same shape), then prunes.
Program bypass(const Program& P, int from, int to) {
  Program Q = P;
  for (std::size_t i = static_cast<std::size_t>(from) - 1; i < Q.ops.size(); ++i)
    each_value_use(Q.ops[i], [&](int& u) {
      if (u == from) u = to;
    });
  for (int k = 0; k < Q.num_out; ++k)
    if (Q.out[k] == from) Q.out[k] = to;
  return prune(Q);
}

/// Whether Q fails (a mismatch, an exception or a crash). Where fork() exists the check runs in
/// a child process, so crashing programs can be minimised too.
bool fails(const Program& Q, std::uint32_t seed) {
#if KILN_FUZZ_FORK
  const pid_t pid = fork();
  if (pid == 0) {
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, SIG_DFL);  // no doctest report
    Totals scratch;
    _exit(check(Q, seed, scratch).empty() ? 0 : 1);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return false;
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#else
  Totals scratch;
  return !check(Q, seed, scratch).empty();
#endif
}

Program minimize(Program P, std::uint32_t seed) {
  auto fails = [&](const Program& Q) { return ::fails(Q, seed); };
  P = prune(P);
  for (bool progress = true; progress;) {
    progress = false;
    // One output instead of two.
    if (P.num_out == 2) {
      for (int k = 0; k < 2 && !progress; ++k) {
        Program Q = P;
        Q.num_out = 1;
        Q.out[0] = P.out[k];
        Q = prune(Q);
        if (fails(Q)) P = Q, progress = true;
      }
    }
    // An earlier value as the output.
    for (int j = 0; j < static_cast<int>(P.vals.size()) && !progress; ++j) {
      if (j == P.out[0]) continue;
      Program Q = P;
      Q.out[0] = j;
      if (Q.num_out == 2 && Q.out[1] == j) continue;
      Q = prune(Q);
      if (Q.ops.size() < P.ops.size() && fails(Q)) P = Q, progress = true;
    }
    // Bypass an op: its users read one of its same-shaped operands instead.
    for (int i = static_cast<int>(P.vals.size()) - 1; i >= 2 && !progress; --i) {
      OpRec o = P.ops[static_cast<std::size_t>(i - 2)];
      std::vector<int> srcs;
      each_value_use(o, [&](int& u) { srcs.push_back(u); });
      for (int u : srcs) {
        const Shape& su = P.vals[static_cast<std::size_t>(u)].shape;
        if (progress || su != P.vals[static_cast<std::size_t>(i)].shape) continue;
        Program Q = bypass(P, i, u);
        if (fails(Q)) P = Q, progress = true;
      }
    }
  }
  return P;
}

std::string run_seed(std::uint32_t seed, bool weight_exprs, bool verbose, bool shrink, Totals& tot) {
  Program P;
  Gen(seed, P, weight_exprs).build();
  if (verbose) MESSAGE("seed " << seed << ":\n" << P.describe());
  std::string minimised;
  if (shrink && fails(P, seed)) {
    const Program M = minimize(P, seed);
    minimised = "minimised program (same seed, same inputs):\n" + M.describe();
    MESSAGE("seed " << seed << " fails; " << minimised);  // before running it here: it may crash
    minimised += check(M, seed, tot);
  }
  std::string e = check(P, seed, tot);
  if (e.empty() && minimised.empty()) return e;
  return "program:\n" + P.describe() + e + minimised;
}

long env_long(const char* name, long fallback) {
  const char* s = std::getenv(name);
  if (!s || !*s) return fallback;
  char* end = nullptr;
  const long v = std::strtol(s, &end, 0);
  return end && *end == '\0' ? v : fallback;
}

}  // namespace

TEST_CASE("random graphs: kiln::compile matches kiln::eager") {
  const auto base = static_cast<std::uint32_t>(env_long("KILN_FUZZ_SEED", static_cast<long>(kDefaultSeed)));
  const long count = env_long("KILN_FUZZ_COUNT", kDefaultCount);
  const bool weight_exprs = env_long("KILN_FUZZ_WEIGHT_EXPR", 1) != 0;
  const bool verbose = env_long("KILN_FUZZ_VERBOSE", 0) != 0;
  const bool shrink = env_long("KILN_FUZZ_MINIMIZE", 0) != 0;
  Totals tot;
  int failures = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < count && failures < kMaxReported; ++i) {
    const std::uint32_t seed = base + static_cast<std::uint32_t>(i);
    CAPTURE(seed);  // reported if the graph crashes
    const std::string e = run_seed(seed, weight_exprs, verbose, shrink, tot);
    if (!e.empty()) {
      ++failures;
      FAIL_CHECK("graph with seed " << seed << " (reproduce: KILN_FUZZ_SEED=" << seed
                                    << " KILN_FUZZ_COUNT=1) failed:\n" << e);
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE(tot.graphs << " graphs (seeds " << base << ".." << base + static_cast<std::uint32_t>(count) - 1 << ") in "
                     << secs << " s (first-call compile " << tot.compile_ms / 1000.0 << " s): " << tot.ops << " ops -> "
                     << tot.nodes << " nodes, " << tot.kernels << " kernels; cse " << tot.cse << ", simplified "
                     << tot.simplified << ", folded " << tot.folded << ", dead " << tot.dead << ", in place "
                     << tot.in_place << "; largest |compiled - eager| = " << tot.worst_ratio
                     << " x tolerance");
  // The generator must keep exercising the passes it is meant to test.
  if (failures == 0 && count >= 200) {
    CHECK(tot.cse > 0);
    CHECK(tot.simplified > 0);
    CHECK(tot.in_place > 0);
  }
}

// ------------------------------------------------------------------------------------------------
// Minimal reproducers of bugs this generator found (each was a failing random graph, shrunk with
// KILN_FUZZ_MINIMIZE=1). Deterministic, so a regression points straight at its cause.

namespace {

Ten fixed_input(const Shape& s, std::uint32_t seed, float lo = -2.f, float hi = 2.f) {
  Ten t(s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (float& v : t) v = d(rng);
  return t;
}

/// The reproducers as one model (one kiln::compile instantiation, to keep this file quick to
/// build): case `which` of the list below, on inputs a and b and weights w and c.
struct Repro {
  int which;
  const Ten* w;
  const Ten* c;
  Ten* scratch;
  template <class T>
  T operator()(const T& a, const T& b) const {
    switch (which) {
      case 0: {  // fusion put t and t + transpose(t) in one kernel: the view was read before t was stored
        const T t = a + 1.f;
        return t + kiln::transpose(t);
      }
      case 1: {  // memory_plan gave s - slice(s) the slot of s, which it still reads (row 3) via the slice
        const T s = kiln::softmax(a, -1);
        return kiln::linear(s - kiln::slice(s, 0, 3, 4), *w);
      }
      case 2: {  // memory_plan: h took a slot that its owner later gave up (zeroed), overlapping another value
        const T h = kiln::abs(b);
        const T m = kiln::matmul(h / (kiln::abs(kiln::min(a, 0)) + 1.25f), *w);
        return kiln::clamp(kiln::concat({m, m, h}, 0), -4.f, 4.f);
      }
      case 3:  // torch.clamp applies lo then hi (lo > hi gives hi); the gemm epilogue's clamp gave lo
        return kiln::clamp(kiln::linear(a, *w), 0.375f, -0.125f);
      case 4:  // lower_gemm applied a - c as a register bias, reading memory its own epilogue never wrote
        return kiln::matmul(a, *w) + (a - *c);
      case 5:  // plan_fusion fused sigmoid into a mul that an earlier pass had already folded into mul_add
        return b * kiln::sigmoid(a) + a;
      case 6: {  // fusion merged h's group into the gemm's epilogue: the gemm's A was never stored
        const T h = a * b;
        return kiln::maximum(h, kiln::matmul(h, *w));
      }
      default: {  // Tracer::keep reused the copy made at the first capture of the same address, so
                  // the second capture (other contents) read 2s: what a temporary such as w * 2.f
                  // does when a later one (w * 3.f) is allocated where it was freed
        for (float& v : *scratch) v = 2.f;
        const T t = a + *scratch;
        for (float& v : *scratch) v = 3.f;
        return t + *scratch;
      }
    }
  }
};

/// compiled vs eager for reproducer `which`, twice (the second call runs the cached plan).
std::string repro(int which, const Ten& a, const Ten& b, const Ten& w, const Ten& c = Ten()) {
  Ten scratch(a.shape());
  const Repro model{which, &w, &c, &scratch};
  const Ten want = kiln::eager(model)(a, b);
  auto net = kiln::compile(model);
  double worst = 0.0;
  std::string d = compare(net(a, b), want, want.shape(), false, worst);
  if (d.empty()) d = compare(net(a, b), want, want.shape(), false, worst);
  if (!d.empty()) {
    std::ostringstream plan;
    net.print_graph(plan);
    d += "\nplanned graph:\n" + plan.str();
  }
  return d;
}

}  // namespace

TEST_CASE("random graphs: minimal reproducers of bugs found by the generator") {
  const Ten none({1});
  SUBCASE("an elementwise group reads a view of a value it computes itself") {
    CHECK_MESSAGE(repro(0, fixed_input({2, 2}, 1), none, none) == "", "passes/fusion.hpp");
  }
  SUBCASE("in-place reuse of a buffer the group also reads through another view") {
    CHECK_MESSAGE(repro(1, fixed_input({6, 4}, 5), none, fixed_input({5, 4}, 6)) == "", "passes/memory_plan.hpp");
  }
  SUBCASE("chained in-place donation") {
    CHECK_MESSAGE(repro(2, fixed_input({1}, 7), fixed_input({1}, 8), fixed_input({1, 9}, 9)) == "",
                  "passes/memory_plan.hpp");
  }
  SUBCASE("clamp with lo > hi in a gemm epilogue") {
    CHECK_MESSAGE(repro(3, fixed_input({3, 8}, 15), none, fixed_input({5, 8}, 16)) == "", "kernels/gemm.hpp");
  }
  SUBCASE("a gemm 'bias' that its own epilogue computes") {
    const Ten w = fixed_input({9, 9}, 11, -0.3f, 0.3f);
    CHECK_MESSAGE(repro(4, fixed_input({9}, 10), none, w, fixed_input({9}, 12)) == "", "runtime/executable.hpp");
  }
  SUBCASE("gated multiply-add in one elementwise kernel") {
    CHECK_MESSAGE(repro(5, fixed_input({9, 8}, 13), fixed_input({9, 8}, 14), none) == "", "kernels/elementwise.hpp");
  }
  SUBCASE("a gemm epilogue that would compute the gemm's own operand (crashed)") {
    CHECK_MESSAGE(repro(6, fixed_input({7}, 2), fixed_input({7}, 3), fixed_input({7, 7}, 4, -0.3f, 0.3f)) == "",
                  "passes/fusion.hpp");
  }
  SUBCASE("one buffer captured twice with different contents while tracing") {
    CHECK_MESSAGE(repro(7, fixed_input({4}, 17), none, none) == "", "trace/symbolic.hpp: Tracer::keep");
  }
}
