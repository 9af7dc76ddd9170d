// tests/test_kernels_reduce.cpp — reduce_run and softmax_run on every axis of odd shapes, with
// and without fused producers, against naive double-precision loops.
// Built twice by CMake: SIMD and -DKILN_NO_SIMD (scalar twins); both must pass unchanged.
#include <doctest/doctest.h>

#include "kiln/kernels/reduce.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace kiln;
using namespace kiln::kernels;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (int d = 0; d < s.rank(); ++d) r += (d ? ", " : "") + std::to_string(s[d]);
  return r + "]";
}

std::vector<float> random_values(std::size_t n, std::uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

/// A stored tensor and the strides through which the loop reads it. `transposed` stores the
/// dims reversed (strides then walk memory backwards through the dims), to test gathers.
struct Input {
  std::vector<float> data;
  Strides strides;
  float at(const index_t* idx, int rank) const {
    index_t o = 0;
    for (int d = 0; d < rank; ++d) o += idx[d] * strides[d];
    return data[static_cast<std::size_t>(o)];
  }
};

Input make_input(const Shape& s, std::uint32_t seed, bool transposed, float lo = -3.f, float hi = 3.f) {
  Input in;
  in.data = random_values(static_cast<std::size_t>(s.numel() > 0 ? s.numel() : 1), seed, lo, hi);
  if (!transposed) {
    in.strides = contiguous_strides(s);
  } else {
    index_t acc = 1;
    for (int d = 0; d < s.rank(); ++d) {
      in.strides[d] = acc;
      acc *= s[d];
    }
  }
  return in;
}

/// Producer programs used by the tests, with their double-precision twin.
struct Producer {
  const char* name;
  std::vector<EwInstr> code;  // empty: no producer (nullptr)
  int n_in;
  std::function<double(double x, double y)> ref;
};

EwInstr ins(EwKind k, EwFn f, int dst, int a, int b = 0, float p0 = 0.f) {
  EwInstr i;
  i.kind = k;
  i.fn = f;
  i.dst = static_cast<std::uint8_t>(dst);
  i.a = static_cast<std::uint8_t>(a);
  i.b = static_cast<std::uint8_t>(b);
  i.p0 = p0;
  return i;
}

std::vector<Producer> producers() {
  using K = EwKind;
  using F = EwFn;
  std::vector<Producer> p;
  p.push_back({"none", {}, 1, [](double x, double) { return x; }});
  // exp(x - 1): a unary chain on one operand
  p.push_back({"exp(x-1)",
               {ins(K::load, F::identity, 0, 0), ins(K::splat, F::identity, 1, 0, 0, 1.f), ins(K::apply, F::sub, 0, 0, 1),
                ins(K::apply, F::exp, 0, 0), ins(K::store, F::identity, 0, 0)},
               1,
               [](double x, double) { return std::exp(static_cast<double>(static_cast<float>(x - 1.0))); }});
  // x * y + 0.5 with y a second operand (broadcast in some tests): fuses into mul_add
  p.push_back({"x*y+0.5",
               {ins(K::load, F::identity, 0, 0), ins(K::load, F::identity, 1, 1), ins(K::apply, F::mul, 0, 0, 1),
                ins(K::splat, F::identity, 2, 0, 0, 0.5f), ins(K::apply, F::add, 0, 0, 2), ins(K::store, F::identity, 0, 0)},
               2,
               [](double x, double y) { return static_cast<double>(static_cast<float>(static_cast<float>(x * y) + 0.5f)); }});
  return p;
}

/// Iterates every index of `s` in row-major order.
template <class F>
void for_each_index(const Shape& s, F f) {
  const index_t n = s.numel();
  index_t idx[kMaxRank] = {};
  for (index_t flat = 0; flat < n; ++flat) {
    index_t rem = flat;
    for (int d = s.rank() - 1; d >= 0; --d) {
      idx[d] = rem % s[d];
      rem /= s[d];
    }
    f(idx);
  }
}

Shape without_axis(const Shape& s, int axis) {
  Shape o;
  for (int d = 0; d < s.rank(); ++d)
    if (d != axis) o.push_back(s[d]);
  return o;
}

/// Values along `axis` at the output index `oidx` (shape without the axis), through the producer.
std::vector<double> axis_values(const Producer& p, const Input& x, const Input& y, const Shape& s, int axis,
                                const index_t* oidx) {
  std::vector<double> v;
  index_t idx[kMaxRank] = {};
  for (int d = 0, j = 0; d < s.rank(); ++d) idx[d] = d == axis ? 0 : oidx[j++];
  for (index_t t = 0; t < s[axis]; ++t) {
    idx[axis] = t;
    v.push_back(p.ref(x.at(idx, s.rank()), y.at(idx, s.rank())));
  }
  return v;
}

const Shape kShapes[] = {Shape{7},        Shape{1},          Shape{1000},        Shape{3, 5},      Shape{5, 3},
                         Shape{17, 33},   Shape{3, 300},     Shape{2, 3, 4},     Shape{4, 1, 5},   Shape{2, 129, 3},
                         Shape{3, 2, 130}, Shape{2, 3, 1, 130}, Shape{2, 2, 3, 2}};

void run_reduce(ReduceKind kind, const Producer& p, const Input& x, const Input& y, const Shape& s, int axis,
                std::vector<float>& out) {
  const EwProgram prog{p.code.data(), static_cast<int>(p.code.size()), 3};
  const EwOperand ops[2] = {{x.data.data(), DType::f32, x.strides}, {y.data.data(), DType::f32, y.strides}};
  reduce_run(kind, p.code.empty() ? nullptr : &prog, ops, p.n_in, s, axis, out.data());
}

}  // namespace

TEST_CASE("reduce_run: sum, mean, max, min on every axis, with producers and strided inputs") {
  INFO("SIMD: " << std::string(kSimdName));
  for (const Producer& p : producers()) {
    for (const Shape& s : kShapes) {
      for (int axis = 0; axis < s.rank(); ++axis) {
        for (bool transposed : {false, true}) {
          const Input x = make_input(s, 5, transposed);
          // y: broadcast along the reduced axis (stride 0 there), to mix operand kinds
          Input y = make_input(s, 6, false);
          y.strides[axis] = 0;
          const Shape os = without_axis(s, axis);
          for (ReduceKind kind : {ReduceKind::sum, ReduceKind::mean, ReduceKind::max, ReduceKind::min}) {
            INFO(std::string(p.name) << " " << std::string(reduce_name(kind)) << " over axis " << axis << " of "
                                     << shape_str(s) << std::string(transposed ? " (transposed)" : ""));
            std::vector<float> out(static_cast<std::size_t>(os.numel()) + 1, -777.f);
            run_reduce(kind, p, x, y, s, axis, out);
            index_t o = 0;
            int bad = 0;
            for_each_index(os, [&](const index_t* oidx) {
              const std::vector<double> v = axis_values(p, x, y, s, axis, oidx);
              double want = 0, mag = 0;
              if (kind == ReduceKind::sum || kind == ReduceKind::mean) {
                for (double e : v) want += e, mag += std::fabs(e);
                if (kind == ReduceKind::mean) want /= static_cast<double>(v.size()), mag /= static_cast<double>(v.size());
              } else {
                want = v[0];
                for (double e : v) want = kind == ReduceKind::max ? std::max(want, e) : std::min(want, e);
                mag = std::fabs(want);
              }
              const double got = out[static_cast<std::size_t>(o)];
              // sums: the producer rounds each value to float (0.5 ulp each) and the sum itself
              // rounds: 1e-6 of the magnitude sum; max/min: exactly one of the (float) values.
              const double tol = (kind == ReduceKind::sum || kind == ReduceKind::mean) ? 1e-6 * mag + 1e-30 : 1e-7 * mag;
              if (!(std::fabs(got - want) <= tol) && ++bad <= 3) {
                INFO("output " << o << ": got " << fmt(got) << ", want " << fmt(want));
                CHECK(false);
              }
              ++o;
            });
            CHECK(bad == 0);
            CHECK(out.back() == -777.f);  // nothing written past the output
          }
        }
      }
    }
  }
}

TEST_CASE("reduce_run: NaN propagates, Inf follows IEEE, empty axes give the identities") {
  for (const Shape& s : {Shape{300}, Shape{4, 37}, Shape{37, 4}, Shape{3, 20, 5}}) {
    for (int axis = 0; axis < s.rank(); ++axis) {
      const Shape os = without_axis(s, axis);
      for (index_t nan_at : {index_t{0}, s[axis] / 2, s[axis] - 1}) {
        Input x = make_input(s, 9, false);
        // NaN at position nan_at along the axis, for the first output only
        index_t idx[kMaxRank] = {};
        idx[axis] = nan_at;
        index_t off = 0;
        for (int d = 0; d < s.rank(); ++d) off += idx[d] * x.strides[d];
        x.data[static_cast<std::size_t>(off)] = kNaN;
        const EwOperand op = {x.data.data(), DType::f32, x.strides};
        for (ReduceKind kind : {ReduceKind::sum, ReduceKind::mean, ReduceKind::max, ReduceKind::min}) {
          INFO(std::string(reduce_name(kind)) << " axis " << axis << " of " << shape_str(s) << ", NaN at " << nan_at);
          std::vector<float> out(static_cast<std::size_t>(os.numel()));
          reduce_run(kind, nullptr, &op, 1, s, axis, out.data());
          CHECK(std::isnan(out[0]));
          for (std::size_t i = 1; i < out.size(); ++i) CHECK(!std::isnan(out[i]));
        }
      }
    }
  }
  {  // inf: max finds it; sum of +inf and -inf is NaN; +inf alone sums to +inf
    std::vector<float> v = random_values(200, 3, -1.f, 1.f);
    v[150] = kInf;
    const EwOperand op = {v.data(), DType::f32, contiguous_strides(Shape{200})};
    float r = 0;
    reduce_run(ReduceKind::max, nullptr, &op, 1, Shape{200}, 0, &r);
    CHECK(r == kInf);
    reduce_run(ReduceKind::sum, nullptr, &op, 1, Shape{200}, 0, &r);
    CHECK(r == kInf);
    v[7] = -kInf;
    reduce_run(ReduceKind::min, nullptr, &op, 1, Shape{200}, 0, &r);
    CHECK(r == -kInf);
    reduce_run(ReduceKind::sum, nullptr, &op, 1, Shape{200}, 0, &r);
    CHECK(std::isnan(r));
  }
  {  // empty axis: sum 0, mean NaN, max -inf, min +inf; empty outputs: nothing written
    const float dummy = 1.f;
    for (const Shape& s : {Shape{3, 0, 4}, Shape{0}, Shape{5, 0}}) {
      const int axis = s.rank() == 1 ? 0 : 1;
      const EwOperand op = {&dummy, DType::f32, contiguous_strides(s)};
      const index_t n = without_axis(s, axis).numel();
      std::vector<float> out(static_cast<std::size_t>(n) + 1, 5.f);
      reduce_run(ReduceKind::sum, nullptr, &op, 1, s, axis, out.data());
      for (index_t i = 0; i < n; ++i) CHECK(out[static_cast<std::size_t>(i)] == 0.f);
      reduce_run(ReduceKind::mean, nullptr, &op, 1, s, axis, out.data());
      for (index_t i = 0; i < n; ++i) CHECK(std::isnan(out[static_cast<std::size_t>(i)]));
      reduce_run(ReduceKind::max, nullptr, &op, 1, s, axis, out.data());
      for (index_t i = 0; i < n; ++i) CHECK(out[static_cast<std::size_t>(i)] == -kInf);
      reduce_run(ReduceKind::min, nullptr, &op, 1, s, axis, out.data());
      for (index_t i = 0; i < n; ++i) CHECK(out[static_cast<std::size_t>(i)] == kInf);
      CHECK(out[static_cast<std::size_t>(n)] == 5.f);
    }
    std::vector<float> out(1, 5.f);
    const EwOperand op = {&dummy, DType::f32, contiguous_strides(Shape{0, 3})};
    reduce_run(ReduceKind::sum, nullptr, &op, 1, Shape{0, 3}, 1, out.data());
    CHECK(out[0] == 5.f);
  }
}

TEST_CASE("reduce_run: long sums stay accurate on both paths") {
  const index_t n = 1 << 20;
  std::vector<float> v(static_cast<std::size_t>(n));
  double want = 0;
  for (index_t i = 0; i < n; ++i) {
    v[static_cast<std::size_t>(i)] = 0.1f + static_cast<float>(i % 7) * 1e-3f;
    want += v[static_cast<std::size_t>(i)];
  }
  // inner == 1: one row of 2^20
  const EwOperand row = {v.data(), DType::f32, contiguous_strides(Shape{n})};
  float r = 0;
  reduce_run(ReduceKind::sum, nullptr, &row, 1, Shape{n}, 0, &r);
  CHECK(std::fabs(r - want) <= 2e-7 * want);
  // inner > 1: [2^18, 4] over axis 0 (accumulator rows, blocked)
  const Shape s{n / 4, 4};
  const EwOperand col = {v.data(), DType::f32, contiguous_strides(s)};
  float out[4];
  reduce_run(ReduceKind::sum, nullptr, &col, 1, s, 0, out);
  for (int j = 0; j < 4; ++j) {
    double w = 0;
    for (index_t i = 0; i < n / 4; ++i) w += v[static_cast<std::size_t>(i * 4 + j)];
    INFO("column " << j << ": " << fmt(out[j]) << " vs " << fmt(w));
    CHECK(std::fabs(out[j] - w) <= 2e-6 * w);
  }
}

TEST_CASE("reduce_run: boolean operand through a producer (count of a mask)") {
  const Shape s{3, 50};
  std::vector<std::uint8_t> m(150);
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = static_cast<std::uint8_t>(i % 3 == 0 || i % 7 == 0);
  const EwInstr code[] = {ins(EwKind::load, EwFn::identity, 0, 0), ins(EwKind::store, EwFn::identity, 0, 0)};
  const EwProgram prog{code, 2, 1};
  const EwOperand op = {m.data(), DType::boolean, contiguous_strides(s)};
  float out[50];
  reduce_run(ReduceKind::sum, &prog, &op, 1, s, 0, out);
  for (int j = 0; j < 50; ++j) CHECK(out[j] == static_cast<float>(m[static_cast<std::size_t>(j)] + m[static_cast<std::size_t>(50 + j)] + m[static_cast<std::size_t>(100 + j)]));
  float rows[3];
  reduce_run(ReduceKind::max, &prog, &op, 1, s, 1, rows);
  CHECK(rows[0] == 1.f);
}

// =============================================================================== softmax

TEST_CASE("softmax_run / log_softmax: every axis, producers, strided inputs") {
  for (const Producer& p : producers()) {
    for (const Shape& s : kShapes) {
      for (int axis = 0; axis < s.rank(); ++axis) {
        for (bool transposed : {false, true}) {
          const Input x = make_input(s, 15, transposed, -8.f, 8.f);
          Input y = make_input(s, 16, false);
          y.strides[axis == 0 ? s.rank() - 1 : 0] = 0;  // broadcast some other dim
          const EwProgram prog{p.code.data(), static_cast<int>(p.code.size()), 3};
          const EwOperand ops[2] = {{x.data.data(), DType::f32, x.strides}, {y.data.data(), DType::f32, y.strides}};
          for (bool log : {false, true}) {
            INFO(std::string(p.name) << std::string(log ? " log_softmax" : " softmax") << " axis " << axis << " of "
                                     << shape_str(s) << std::string(transposed ? " (transposed)" : ""));
            std::vector<float> out(static_cast<std::size_t>(s.numel()) + 1, -777.f);
            softmax_run(log, p.code.empty() ? nullptr : &prog, ops, p.n_in, s, axis, out.data());
            const Strides os = contiguous_strides(s);
            int bad = 0;
            for_each_index(without_axis(s, axis), [&](const index_t* oidx) {
              const std::vector<double> v = axis_values(p, x, y, s, axis, oidx);
              double m = -INFINITY, sum = 0;
              for (double e : v) m = std::max(m, e);
              for (double e : v) sum += std::exp(e - m);
              index_t idx[kMaxRank] = {};
              for (int d = 0, j = 0; d < s.rank(); ++d) idx[d] = d == axis ? 0 : oidx[j++];
              for (index_t t = 0; t < s[axis]; ++t) {
                idx[axis] = t;
                index_t o = 0;
                for (int d = 0; d < s.rank(); ++d) o += idx[d] * os[d];
                const double e = v[static_cast<std::size_t>(t)] - m;
                const double want = log ? e - std::log(sum) : std::exp(e) / sum;
                const double got = out[static_cast<std::size_t>(o)];
                // The producer's float value v carries ~1 ulp (absolute ~1.2e-7 |v|) and x - max is
                // rounded to float: both are absolute errors in the exponent, relative in the result.
                const double vt = std::fabs(v[static_cast<std::size_t>(t)]);
                const double tol = log ? 2e-6 * (1 + std::fabs(want) + vt) : 2e-6 * (1 + std::fabs(e) + vt) * want + 1e-30;
                if (!(std::fabs(got - want) <= tol) && ++bad <= 3) {
                  INFO("output " << o << ": got " << fmt(got) << ", want " << fmt(want));
                  CHECK(false);
                }
              }
            });
            CHECK(bad == 0);
            CHECK(out.back() == -777.f);
          }
        }
      }
    }
  }
}

TEST_CASE("softmax_run: -inf entries, all -inf rows, NaN, huge logits") {
  for (const Shape& s : {Shape{4, 300}, Shape{300, 4}, Shape{2, 3, 5}}) {
    for (int axis = 0; axis < s.rank(); ++axis) {
      INFO("axis " << axis << " of " << shape_str(s));
      Input x = make_input(s, 21, false, -5.f, 5.f);
      const Strides st = x.strides;
      // Lines along the axis: output line 0 gets -inf entries, line 1 all -inf, line 2 a NaN,
      // line 3 huge offsets (1e4: exp would overflow without the max shift).
      const Shape os = without_axis(s, axis);
      std::vector<std::vector<index_t>> lines;
      for_each_index(os, [&](const index_t* oidx) {
        std::vector<index_t> offs;
        index_t idx[kMaxRank] = {};
        for (int d = 0, j = 0; d < s.rank(); ++d) idx[d] = d == axis ? 0 : oidx[j++];
        for (index_t t = 0; t < s[axis]; ++t) {
          idx[axis] = t;
          index_t o = 0;
          for (int d = 0; d < s.rank(); ++d) o += idx[d] * st[d];
          offs.push_back(o);
        }
        lines.push_back(offs);
      });
      REQUIRE(lines.size() >= 4);
      const auto at = [&](std::size_t line, std::size_t t) -> float& { return x.data[static_cast<std::size_t>(lines[line][t])]; };
      for (std::size_t t = 0; t < lines[0].size(); t += 2) at(0, t) = -kInf;  // masked half (incl. the first)
      for (std::size_t t = 0; t < lines[1].size(); ++t) at(1, t) = -kInf;
      at(2, lines[2].size() / 2) = kNaN;
      for (std::size_t t = 0; t < lines[3].size(); ++t) at(3, t) += 1e4f;
      const EwOperand op = {x.data.data(), DType::f32, st};
      for (bool log : {false, true}) {
        INFO(std::string(log ? "log_softmax" : "softmax"));
        std::vector<float> out(static_cast<std::size_t>(s.numel()));
        softmax_run(log, nullptr, &op, 1, s, axis, out.data());
        const auto y = [&](std::size_t line, std::size_t t) { return out[static_cast<std::size_t>(lines[line][t])]; };
        double total = 0;
        for (std::size_t t = 0; t < lines[0].size(); ++t) {
          if (t % 2 == 0) CHECK(y(0, t) == (log ? -kInf : 0.f));
          else CHECK(std::isfinite(y(0, t)));
          if (!log) total += y(0, t);
        }
        if (!log && lines[0].size() > 1) CHECK(std::fabs(total - 1.0) < 1e-5);
        for (std::size_t t = 0; t < lines[1].size(); ++t) CHECK(std::isnan(y(1, t)));  // like PyTorch
        for (std::size_t t = 0; t < lines[2].size(); ++t) CHECK(std::isnan(y(2, t)));
        double total3 = 0;
        for (std::size_t t = 0; t < lines[3].size(); ++t) {
          CHECK(std::isfinite(y(3, t)));
          total3 += log ? std::exp(static_cast<double>(y(3, t))) : y(3, t);
        }
        CHECK(std::fabs(total3 - 1.0) < 1e-5);
        for (std::size_t l = 4; l < lines.size(); ++l)
          for (std::size_t t = 0; t < lines[l].size(); ++t) CHECK(std::isfinite(y(l, t)));
      }
    }
  }
}

TEST_CASE("softmax_run: a row of length 1 is exactly 1 (log: 0); empty shapes write nothing") {
  std::vector<float> x = {3.f, -kInf, 1e30f, -2.f};
  const Shape s{4, 1};
  const EwOperand op = {x.data(), DType::f32, contiguous_strides(s)};
  std::vector<float> out(4);
  softmax_run(false, nullptr, &op, 1, s, 1, out.data());
  CHECK(out[0] == 1.f);
  CHECK(std::isnan(out[1]));  // -inf alone: exp(-inf - -inf), as PyTorch
  CHECK(out[2] == 1.f);
  CHECK(out[3] == 1.f);
  softmax_run(true, nullptr, &op, 1, s, 1, out.data());
  CHECK(out[0] == 0.f);
  CHECK(out[3] == 0.f);
  float none = 5.f;
  const EwOperand e = {x.data(), DType::f32, contiguous_strides(Shape{0, 3})};
  softmax_run(false, nullptr, &e, 1, Shape{0, 3}, 1, &none);
  softmax_run(false, nullptr, &e, 1, Shape{3, 0}, 1, &none);
  CHECK(none == 5.f);
}

TEST_CASE("softmax_run: rows around the kept-tiles limit (both pass-2 strategies)") {
  const index_t kept = static_cast<index_t>(kSoftmaxKeptTiles) * kEwTile;
  for (const index_t len : {kept, kept + 3}) {
    const Shape s{2, len};
    Input x = make_input(s, 31, false, -10.f, 10.f);
    x.data[5] = -kInf;                                   // masked entry in row 0
    x.data[static_cast<std::size_t>(len + 17)] = 30.f;   // a late new maximum in row 1
    const EwOperand op = {x.data.data(), DType::f32, x.strides};
    for (bool log : {false, true}) {
      INFO("len " << len << std::string(log ? " log_softmax" : " softmax"));
      std::vector<float> out(static_cast<std::size_t>(2 * len));
      softmax_run(log, nullptr, &op, 1, s, 1, out.data());
      for (index_t r = 0; r < 2; ++r) {
        double m = -INFINITY, sum = 0;
        for (index_t j = 0; j < len; ++j) m = std::max(m, static_cast<double>(x.data[static_cast<std::size_t>(r * len + j)]));
        for (index_t j = 0; j < len; ++j) sum += std::exp(x.data[static_cast<std::size_t>(r * len + j)] - m);
        int bad = 0;
        for (index_t j = 0; j < len; ++j) {
          const double e = x.data[static_cast<std::size_t>(r * len + j)] - m;
          const double want = log ? e - std::log(sum) : std::exp(e) / sum;
          const double got = out[static_cast<std::size_t>(r * len + j)];
          const bool ok = (std::isinf(want) || want == 0) ? got == want
                                           : std::fabs(got - want) <= (log ? 2e-6 * (1 + std::fabs(want)) : 2e-6 * (1 + std::fabs(e)) * want);
          if (!ok && ++bad <= 3) {
            INFO("row " << r << " col " << j << ": got " << fmt(got) << ", want " << fmt(want));
            CHECK(false);
          }
        }
        CHECK(bad == 0);
      }
    }
  }
}
