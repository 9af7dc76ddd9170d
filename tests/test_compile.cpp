// compile(): guards and recompiles, the bounded cache, several outputs, custom backends, captured
// weights, and errors that name the op and the shapes.
#include <cstring>
#include <sstream>

#include "test_util.hpp"

namespace {
struct Params {
  kiln::Tensor<float> w{kiln::Shape{4, 3}}, b{kiln::Shape{4}};
};
auto small_model = [](auto x, const Params& p) { return kiln::tanh(kiln::linear(x, p.w, p.b)); };
}  // namespace

TEST_CASE("guards: a new shape traces again, a known one hits the cache") {
  Params p;
  p.w = kt::random_tensor({4, 3}, 1);
  p.b = kt::random_tensor({4}, 2);
  auto net = kiln::compile(small_model);
  const auto x5 = kt::random_tensor({5, 3}, 3), x7 = kt::random_tensor({7, 3}, 4);
  kt::check_close(net(x5, p), kiln::eager(small_model)(x5, p), {1e-6, 1e-5}, "first shape");
  CHECK(net.stats().traces == 1);
  CHECK(net.stats().cache_hits == 0);
  (void)net(x5, p);
  CHECK(net.stats().cache_hits == 1);
  kt::check_close(net(x7, p), kiln::eager(small_model)(x7, p), {1e-6, 1e-5}, "second shape");
  CHECK(net.stats().traces == 2);
  CHECK(net.stats().guard_failures == 1);
  (void)net(x5, p);
  (void)net(x7, p);
  CHECK(net.stats().traces == 2);
  CHECK(net.stats().cache_hits == 3);
  // A different parameter object is a different specialisation (its constants differ).
  Params q = p;
  q.b[0] += 1.f;
  kt::check_close(net(x5, q), kiln::eager(small_model)(x5, q), {1e-6, 1e-5}, "other params");
  CHECK(net.stats().traces == 3);
}

TEST_CASE("the cache is bounded: past the limit calls run eagerly, still correct") {
  Params p;
  p.w = kt::random_tensor({4, 3}, 1);
  auto net = kiln::compile(small_model, kiln::CompileOptions{2});
  for (kiln::index_t rows = 1; rows <= 4; ++rows) {
    const auto x = kt::random_tensor({rows, 3}, static_cast<std::uint32_t>(rows));
    kt::check_close(net(x, p), kiln::eager(small_model)(x, p), {1e-6, 1e-5}, "bounded cache");
  }
  CHECK(net.stats().traces == 2);
  CHECK(net.stats().eager_fallbacks == 2);
  net.reset();
  (void)net(kt::random_tensor({9, 3}, 9), p);
  CHECK(net.stats().traces == 3);
}

TEST_CASE("several outputs, and results that do not alias the arena") {
  auto model = [](auto x) {
    auto h = kiln::exp(x);
    return std::make_tuple(h, kiln::sum(h, 0), kiln::softmax(x, 0));
  };
  auto net = kiln::compile(model);
  const auto x = kt::random_tensor({6, 5}, 3);
  auto [a, b, c] = net(x);
  auto [ea, eb, ec] = kiln::eager(model)(x);
  const auto a_copy = a;
  auto [a2, b2, c2] = net(kt::random_tensor({6, 5}, 4));  // a second call must not touch the first results
  kt::check_close(a, a_copy, {0, 0}, "first result unchanged");
  kt::check_close(a, ea, {1e-6, 1e-6}, "exp");
  kt::check_close(b, eb, {1e-6, 1e-5}, "sum");
  kt::check_close(c, ec, {1e-7, 1e-6}, "softmax");
  (void)a2;
  (void)b2;
  (void)c2;
}

TEST_CASE("captured weights: owning tensors are copied at trace time, views are referenced") {
  kiln::Tensor<float> w({3}, {1.f, 2.f, 3.f});
  std::vector<float> storage = {10.f, 20.f, 30.f};
  kiln::TensorView<const float> v(storage.data(), {3});
  auto net = kiln::compile([&](auto x) { return std::make_pair(x * w, x * v); });
  const kiln::Tensor<float> x({3}, {1.f, 1.f, 1.f});
  (void)net(x);
  w[0] = 100.f;        // the trace holds its own copy of w ...
  storage[0] = 500.f;  // ... but reads the view's memory
  auto [a, b] = net(x);
  CHECK(a[0] == 1.f);
  CHECK(b[0] == 500.f);
  // A weight transformed eagerly inside the model is a temporary: it must still be valid later.
  auto net2 = kiln::compile([&](auto in) { return kiln::matmul(in, kiln::transpose(kiln::reshape(w * 2.f, {1, 3}))); });
  const auto r = net2(kiln::Tensor<float>({1, 3}, {1.f, 0.f, 0.f}));
  CHECK(r(0, 0) == 200.f);
}

TEST_CASE("a custom backend receives the traced graph once per specialisation") {
  int compiles = 0, runs = 0;
  auto backend = [&](const kiln::Graph& g, const std::vector<kiln::TensorView<const float>>& examples) {
    ++compiles;
    CHECK(g.num_inputs() == 1);
    CHECK(examples.size() == 1);
    int ops = 0;
    for (int i = 0; i < g.size(); ++i) ops += g[i].op == kiln::Op::elementwise ? 1 : 0;
    CHECK(ops == 2);  // relu and the multiply
    // This backend evaluates relu(x) * 3 with its own loop.
    return kiln::BackendFn([&runs](const kiln::TensorView<const float>* in, int, kiln::TensorView<float>* out, int) {
      ++runs;
      for (kiln::index_t i = 0; i < in[0].size(); ++i) out[0][i] = (in[0][i] > 0 ? in[0][i] : 0.f) * 3.f;
    });
  };
  auto net = kiln::compile([](auto x) { return kiln::relu(x) * 3.f; }, backend);
  const auto x = kt::random_tensor({10}, 1);
  const auto y = net(x);
  (void)net(x);
  CHECK(compiles == 1);
  CHECK(runs == 2);
  for (kiln::index_t i = 0; i < 10; ++i) CHECK(y[i] == (x[i] > 0 ? x[i] : 0.f) * 3.f);
}

namespace {
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "(no error)";
}
bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("errors name the op and the shapes, in compiled and eager mode") {
  const auto a = kt::random_tensor({3, 4}, 1), b = kt::random_tensor({5, 4}, 2);
  auto add = [](auto x, auto y) { return x + y; };
  std::string msg = error_of([&] { (void)kiln::eager(add)(a, b); });
  CHECK(contains(msg, "add"));
  CHECK(contains(msg, "[3, 4]"));
  CHECK(contains(msg, "[5, 4]"));
  msg = error_of([&] { (void)kiln::compile(add)(a, b); });
  CHECK(contains(msg, "add"));
  CHECK(contains(msg, "[5, 4]"));
  CHECK(contains(error_of([&] { (void)kiln::compile([](auto x) { return kiln::sum(x, 2); })(a); }), "axis 2"));
  CHECK(contains(error_of([&] { (void)kiln::compile([](auto x, auto y) { return kiln::matmul(x, y); })(a, b); }),
                 "inner dimensions"));
  CHECK(contains(error_of([&] { (void)kiln::compile([](auto x) { return kiln::reshape(x, {5, -1}); })(a); }),
                 "cannot reshape [3, 4]"));
  CHECK(contains(error_of([&] { (void)kiln::compile([](auto x) { return kiln::permute(x, {0, 0}); })(a); }),
                 "permutation"));
  CHECK(contains(error_of([] { kiln::Tensor<float> t({1, 2, 3, 4, 5, 6, 7}); }), "rank"));
  CHECK(contains(error_of([&] { (void)kiln::compile([](auto x) { return kiln::where(x, x, x) * x; })(a); }), "(no error)"));
  const kiln::Tensor<bool> mask({3, 4});
  CHECK(contains(error_of([&] { (void)kiln::compile([](auto m) { return kiln::relu(m); })(mask); }), "dtype bool"));
  const kiln::Tensor<std::int8_t> q({2, 2});
  CHECK(contains(error_of([&] { (void)kiln::concat({q, q}, 0); }), "concat: dtype i8"));
  // The failed call left nothing cached; a good call afterwards works.
  auto net = kiln::compile(add);
  (void)error_of([&] { (void)net(a, b); });
  CHECK(net.stats().traces == 0);
  kt::check_close(net(a, a), kiln::eager(add)(a, a), {0, 0}, "after an error");
}

TEST_CASE("print_graph shows every node with its group and memory") {
  Params p;
  auto net = kiln::compile(small_model);
  (void)net(kt::random_tensor({2, 3}, 1), p);
  std::ostringstream os;
  net.print_graph(os);
  const std::string s = os.str();
  CHECK(contains(s, "linear"));
  CHECK(contains(s, "gemm"));
  CHECK(contains(s, "output 0"));
  CHECK(contains(s, "lower bound"));
}

TEST_CASE("run_into writes caller-owned outputs and checks their shapes") {
  auto model = [](auto x) { return std::make_tuple(kiln::relu(x), kiln::sum(x, 0)); };
  auto net = kiln::compile(model);
  const auto x = kt::random_tensor({4, 3}, 1);
  kiln::Tensor<float> a({4, 3}), b({3});
  REQUIRE(net.run_into(std::make_tuple(a.view(), b.view()), x));
  auto [ea, eb] = kiln::eager(model)(x);
  kt::check_close(a, ea, {0, 0}, "relu into");
  kt::check_close(b, eb, {1e-6, 1e-6}, "sum into");
  kiln::Tensor<float> wrong({5});
  CHECK(contains(error_of([&] { (void)net.run_into(std::make_tuple(a.view(), wrong.view()), x); }), "output 1 has shape [5]"));
  auto single = kiln::compile([](auto t) { return t * 2.f; });
  kiln::Tensor<float> y({4, 3});
  REQUIRE(single.run_into(y.view(), x));
  CHECK(y(3, 2) == 2.f * x(3, 2));
}

TEST_CASE("run_into accepts owning tensors and std::tie, writing into their buffers") {
  auto net = kiln::compile([](auto t) { return std::make_pair(t + 1.f, t * 3.f); });
  const auto x = kt::random_tensor({5}, 2);
  kiln::Tensor<float> a({5}), b({5});
  const float* before = a.data();
  REQUIRE(net.run_into(std::tie(a, b), x));
  CHECK(a.data() == before);
  for (kiln::index_t i = 0; i < 5; ++i) {
    CHECK(a[i] == x[i] + 1.f);
    CHECK(b[i] == x[i] * 3.f);
  }
}

TEST_CASE("two temporaries at the same address during one trace keep their own values") {
  // A scratch tensor captured, changed, and captured again: each capture is its own constant.
  auto model = [](auto x) {
    kiln::Tensor<float> s({1}, {2.f});
    auto t = x + s;
    s[0] = 3.f;
    return t + s;
  };
  auto net = kiln::compile(model);
  const kiln::Tensor<float> x({1}, {0.f});
  CHECK(net(x)[0] == 5.f);
  CHECK(kiln::eager(model)(x)[0] == 5.f);
}
