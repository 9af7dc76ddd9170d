// Every elementwise op: compiled vs eager vs a naive double-precision loop, on odd sizes and
// broadcast patterns. Tolerances per op are stated next to each op.
#include "test_util.hpp"

namespace {

struct Unary {
  const char* name;
  double (*ref)(double);
  kt::Tol tol;
  float lo, hi;  // input range
};

double sigm(double x) { return 1.0 / (1.0 + std::exp(-x)); }
const double kPi = 3.14159265358979323846;

// Tolerances: exp/log/sqrt 2-4 ulp (rel 5e-7), tanh/erf-based a few ulp (rel 2e-6 plus an absolute
// floor near 0 where relative error is meaningless), rsqrt must be accurate, not the 12-bit estimate.
const Unary kUnary[] = {
    {"neg", [](double x) { return -x; }, {0, 0}, -3, 3},
    {"abs", [](double x) { return std::fabs(x); }, {0, 0}, -3, 3},
    {"exp", [](double x) { return std::exp(x); }, {1e-30, 5e-7}, -20, 20},
    {"log", [](double x) { return std::log(x); }, {1e-7, 5e-7}, 1e-3f, 100},
    {"sqrt", [](double x) { return std::sqrt(x); }, {0, 3e-7}, 0, 100},
    {"rsqrt", [](double x) { return 1.0 / std::sqrt(x); }, {0, 5e-7}, 1e-3f, 100},
    {"tanh", [](double x) { return std::tanh(x); }, {2e-7, 2e-6}, -10, 10},
    {"sigmoid", sigm, {2e-7, 2e-6}, -30, 30},
    {"relu", [](double x) { return x < 0 ? 0.0 : x; }, {0, 0}, -3, 3},
    {"relu6", [](double x) { return x < 0 ? 0.0 : x > 6 ? 6.0 : x; }, {0, 0}, -9, 9},
    {"leaky_relu", [](double x) { return x < 0 ? 0.1 * x : x; }, {1e-7, 1e-6}, -3, 3},
    {"gelu", [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, {5e-7, 3e-6}, -6, 6},
    {"gelu_tanh",
     [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / kPi) * (x + 0.044715 * x * x * x))); },
     {5e-7, 3e-6}, -6, 6},
    {"silu", [](double x) { return x * sigm(x); }, {5e-7, 3e-6}, -20, 20},
    {"clamp", [](double x) { return x < -0.5 ? -0.5 : x > 0.75 ? 0.75 : x; }, {0, 0}, -2, 2},
    {"pow3", [](double x) { return x * x * x; }, {1e-6, 2e-6}, -4, 4},
    {"pow0.5", [](double x) { return std::sqrt(x); }, {1e-7, 5e-7}, 0, 50},
};

template <class T>
auto apply_unary(int which, const T& x) {
  switch (which) {
    case 0: return kiln::neg(x);
    case 1: return kiln::abs(x);
    case 2: return kiln::exp(x);
    case 3: return kiln::log(x);
    case 4: return kiln::sqrt(x);
    case 5: return kiln::rsqrt(x);
    case 6: return kiln::tanh(x);
    case 7: return kiln::sigmoid(x);
    case 8: return kiln::relu(x);
    case 9: return kiln::relu6(x);
    case 10: return kiln::leaky_relu(x, 0.1f);
    case 11: return kiln::gelu(x);
    case 12: return kiln::gelu(x, kiln::GeluApprox::tanh);
    case 13: return kiln::silu(x);
    case 14: return kiln::clamp(x, -0.5f, 0.75f);
    case 15: return kiln::pow(x, 3.f);
    default: return kiln::pow(x, 0.5f);
  }
}

}  // namespace

TEST_CASE("unary ops: compiled and eager match a naive loop on odd sizes") {
  const int n_ops = static_cast<int>(sizeof(kUnary) / sizeof(kUnary[0]));
  for (int op = 0; op < n_ops; ++op) {
    const Unary& u = kUnary[op];
    auto model = [op](auto x) { return apply_unary(op, x); };
    auto net = kiln::compile(model);
    for (kiln::index_t n : {1, 3, 7, 17, 1000}) {
      const auto x = kt::random_tensor({n}, static_cast<std::uint32_t>(op * 100 + n), u.lo, u.hi);
      std::vector<double> want;
      for (float v : x) want.push_back(u.ref(v));
      const std::string what = std::string(u.name) + " n=" + std::to_string(n);
      kt::check_close(kiln::eager(model)(x), want, u.tol, "eager " + what);
      kt::check_close(net(x), want, u.tol, "compiled " + what);
    }
  }
}

TEST_CASE("unary ops: NaN and infinities propagate as IEEE says") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  kiln::Tensor<float> x({9}, {nan, inf, -inf, 0.f, -0.f, 1.f, -1.f, nan, 3.f});
  auto relu = kiln::compile([](auto t) { return kiln::relu(t); });
  auto r = relu(x);
  CHECK(std::isnan(r[0]));  // ReLU of NaN is NaN on every ISA
  CHECK(std::isnan(r[7]));
  CHECK(r[1] == inf);
  CHECK(r[2] == 0.f);
  auto clamp = kiln::compile([](auto t) { return kiln::clamp(t, -1.f, 1.f); });
  CHECK(std::isnan(clamp(x)[0]));
  auto sig = kiln::compile([](auto t) { return kiln::sigmoid(t); });
  auto s = sig(x);
  CHECK(s[1] == 1.f);
  CHECK(s[2] == 0.f);
  CHECK(std::isnan(s[0]));
  auto lg = kiln::compile([](auto t) { return kiln::log(t); });
  auto l = lg(x);
  CHECK(l[3] == -inf);
  CHECK(std::isnan(l[6]));
  auto ex = kiln::compile([](auto t) { return kiln::exp(t); });
  auto e = ex(x);
  CHECK(e[1] == inf);
  CHECK(e[2] == 0.f);
}

namespace {

struct Binary {
  const char* name;
  double (*ref)(double, double);
  kt::Tol tol;
};

double nan_min(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b); }
double nan_max(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b); }

const Binary kBinary[] = {
    {"add", [](double a, double b) { return a + b; }, {1e-7, 1e-7}},
    {"sub", [](double a, double b) { return a - b; }, {1e-7, 1e-7}},
    {"mul", [](double a, double b) { return a * b; }, {1e-7, 1e-7}},
    {"div", [](double a, double b) { return a / b; }, {1e-7, 3e-7}},
    {"minimum", nan_min, {0, 0}},
    {"maximum", nan_max, {0, 0}},
};

template <class A, class B>
auto apply_binary(int which, const A& a, const B& b) {
  switch (which) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return kiln::minimum(a, b);
    default: return kiln::maximum(a, b);
  }
}

}  // namespace

TEST_CASE("binary ops with NumPy broadcasting: compiled and eager match a naive loop") {
  struct Case {
    kiln::Shape a, b;
  };
  const Case cases[] = {
      {{1000}, {1000}},       {{17}, {1}},         {{3, 7}, {7}},          {{3, 7}, {3, 1}},
      {{7, 1}, {1, 17}},      {{2, 3, 5}, {3, 1}}, {{1}, {2, 3, 17}},      {{4, 1, 3}, {1, 5, 1}},
      {{2, 1, 3, 1}, {7, 1, 9}}, {{}, {3, 7}},     {{5, 3}, {}},
  };
  const int n_ops = static_cast<int>(sizeof(kBinary) / sizeof(kBinary[0]));
  for (int op = 0; op < n_ops; ++op) {
    auto model = [op](auto a, auto b) { return apply_binary(op, a, b); };
    auto net = kiln::compile(model, kiln::CompileOptions{64});
    std::uint32_t seed = 7;
    for (const Case& c : cases) {
      const auto a = kt::random_tensor(c.a, seed++);
      auto b = kt::random_tensor(c.b, seed++, 0.5f, 2.f);  // away from 0 for div
      kiln::Shape out;
      REQUIRE(kiln::broadcast_shapes(c.a, c.b, out));
      std::vector<double> want;
      for (kiln::index_t i = 0; i < out.numel(); ++i)
        want.push_back(kBinary[op].ref(a[kt::broadcast_offset(i, out, c.a)], b[kt::broadcast_offset(i, out, c.b)]));
      const auto got = net(a, b);
      CHECK(got.shape() == out);
      const std::string what = std::string(kBinary[op].name);
      kt::check_close(got, want, kBinary[op].tol, "compiled " + what);
      kt::check_close(kiln::eager(model)(a, b), want, kBinary[op].tol, "eager " + what);
    }
  }
}

TEST_CASE("scalar operands on either side") {
  const auto x = kt::random_tensor({3, 17}, 5, 0.5f, 2.f);
  auto model = [](auto t) { return std::make_tuple(2.f - t, t / 4.f, 3.f / t, t * 2.f + 1.f); };
  auto net = kiln::compile(model);
  auto [a, b, c, d] = net(x);
  for (kiln::index_t i = 0; i < x.size(); ++i) {
    CHECK(a[i] == doctest::Approx(2.f - x[i]).epsilon(1e-6));
    CHECK(b[i] == doctest::Approx(x[i] / 4.f).epsilon(1e-6));
    CHECK(c[i] == doctest::Approx(3.f / x[i]).epsilon(1e-6));
    CHECK(d[i] == doctest::Approx(x[i] * 2.f + 1.f).epsilon(1e-6));
  }
}

TEST_CASE("comparisons and where, with masks that broadcast") {
  const auto a = kt::random_tensor({4, 9}, 11);
  const auto b = kt::random_tensor({9}, 12);
  auto model = [](auto x, auto y) { return kiln::where(x > y, x * 2.f, y - 1.f); };
  auto net = kiln::compile(model);
  const auto got = net(a, b);
  std::vector<double> want;
  for (kiln::index_t i = 0; i < 36; ++i) {
    const float x = a[i], y = b[i % 9];
    want.push_back(x > y ? x * 2.f : y - 1.f);
  }
  kt::check_close(got, want, {0, 0}, "where(x > y)");
  kt::check_close(kiln::eager(model)(a, b), want, {0, 0}, "eager where");
  // A boolean result can be returned.
  auto cmp = kiln::compile([](auto x, auto y) { return kiln::le(x, y); });
  const kiln::Tensor<bool> m = cmp(a, b);
  for (kiln::index_t i = 0; i < 36; ++i) CHECK(m[i] == (a[i] <= b[i % 9]));
  for (int which = 0; which < 6; ++which) {
    auto f = [which](auto x, auto y) {
      switch (which) {
        case 0: return kiln::where(kiln::gt(x, y), x, y);
        case 1: return kiln::where(kiln::lt(x, y), x, y);
        case 2: return kiln::where(kiln::ge(x, y), x, y);
        case 3: return kiln::where(kiln::le(x, y), x, y);
        case 4: return kiln::where(kiln::eq(x, x), x, y);
        default: return kiln::where(kiln::ne(x, x), x, y);
      }
    };
    auto nf = kiln::compile(f);
    const auto r = nf(a, b);
    for (kiln::index_t i = 0; i < 36; ++i) {
      const float x = a[i], y = b[i % 9];
      const bool c = which == 0 ? x > y : which == 1 ? x < y : which == 2 ? x >= y : which == 3 ? x <= y : which == 4;
      CHECK(r[i] == (c ? x : y));
    }
  }
}

TEST_CASE("a long elementwise chain is one kernel and matches eager") {
  const auto x = kt::random_tensor({1000}, 3);
  auto model = [](auto t) {
    auto y = t;
    for (int i = 0; i < 60; ++i) y = kiln::tanh(y * 1.01f + 0.01f);
    return y;
  };
  auto net = kiln::compile(model);
  const auto got = net(x);
  CHECK(net.stats().kernels == 1);
  kt::check_close(got, kiln::eager(model)(x), {1e-6, 1e-5}, "60-op chain");
}
