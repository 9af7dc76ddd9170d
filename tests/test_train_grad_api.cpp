// kiln::grad as a user meets it: an MLP's gradients against a hand-derived double reference,
// compiled == eager, the backward fused like any graph, non-differentiable paths, and errors.
#include "test_util.hpp"

using kiln::Shape;
using kiln::Tensor;
using V = std::vector<double>;

namespace {

// loss = mse(linear(tanh(linear(x, w1, b1)), w2, b2), y); returns dL/d{w1, b1, w2, b2} by hand:
// o = h w2^T + b2, dO = 2 (o - y) / (N * Out); dW2 = dO^T h; db2 = sum_rows dO;
// dH = dO w2; dZ = dH (1 - h^2); dW1 = dZ^T x; db1 = sum_rows dZ.
std::vector<V> mlp_reference(const Tensor<float>& x, const Tensor<float>& y, const Tensor<float>& w1,
                             const Tensor<float>& b1, const Tensor<float>& w2, const Tensor<float>& b2) {
  const kiln::index_t n = x.shape()[0], in = x.shape()[1], hid = w1.shape()[0], out = w2.shape()[0];
  V h(static_cast<std::size_t>(n * hid)), d_o(static_cast<std::size_t>(n * out));
  for (kiln::index_t i = 0; i < n; ++i)
    for (kiln::index_t j = 0; j < hid; ++j) {
      double z = b1[j];
      for (kiln::index_t k = 0; k < in; ++k) z += double(x[i * in + k]) * w1[j * in + k];
      h[i * hid + j] = std::tanh(z);
    }
  for (kiln::index_t i = 0; i < n; ++i)
    for (kiln::index_t j = 0; j < out; ++j) {
      double o = b2[j];
      for (kiln::index_t k = 0; k < hid; ++k) o += h[i * hid + k] * w2[j * hid + k];
      d_o[i * out + j] = 2 * (o - y[i * out + j]) / double(n * out);
    }
  V gw1(static_cast<std::size_t>(hid * in)), gb1(static_cast<std::size_t>(hid)), gw2(static_cast<std::size_t>(out * hid)),
      gb2(static_cast<std::size_t>(out));
  for (kiln::index_t i = 0; i < n; ++i) {
    for (kiln::index_t j = 0; j < out; ++j) {
      gb2[j] += d_o[i * out + j];
      for (kiln::index_t k = 0; k < hid; ++k) gw2[j * hid + k] += d_o[i * out + j] * h[i * hid + k];
    }
    for (kiln::index_t k = 0; k < hid; ++k) {
      double dh = 0;
      for (kiln::index_t j = 0; j < out; ++j) dh += d_o[i * out + j] * w2[j * hid + k];
      const double dz = dh * (1 - h[i * hid + k] * h[i * hid + k]);
      gb1[k] += dz;
      for (kiln::index_t m = 0; m < in; ++m) gw1[k * in + m] += dz * x[i * in + m];
    }
  }
  return {gw1, gb1, gw2, gb2};
}

auto mlp_grads = [](auto x, auto y, auto w1, auto b1, auto w2, auto b2) {
  auto pred = kiln::linear(kiln::tanh(kiln::linear(x, w1, b1)), w2, b2);
  auto loss = kiln::mse_loss(pred, y);
  auto [g1, gb1, g2, gb2] = kiln::grad(loss, w1, b1, w2, b2);
  return std::make_tuple(loss, g1, gb1, g2, gb2);
};

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

TEST_CASE("MLP gradients: compiled and eager against a hand-derived double reference") {
  // Odd sizes (not multiples of SIMD widths or GEMM tiles), batch 1 (the GEMV path) and 37.
  for (kiln::index_t n : {1, 37}) {
    const auto x = kt::random_tensor(Shape{n, 5}, 1), y = kt::random_tensor(Shape{n, 3}, 2);
    const auto w1 = kt::random_tensor(Shape{7, 5}, 3, -0.5f, 0.5f), b1 = kt::random_tensor(Shape{7}, 4, -0.5f, 0.5f);
    const auto w2 = kt::random_tensor(Shape{3, 7}, 5, -0.5f, 0.5f), b2 = kt::random_tensor(Shape{3}, 6, -0.5f, 0.5f);
    const auto want = mlp_reference(x, y, w1, b1, w2, b2);
    auto net = kiln::compile(mlp_grads);
    const auto c = net(x, y, w1, b1, w2, b2);
    const auto e = kiln::eager(mlp_grads)(x, y, w1, b1, w2, b2);
    // f32 forward and backward with sums of <= 37 terms: 1e-5 relative, 1e-6 absolute.
    const kt::Tol tol{1e-6, 1e-5};
    kt::check_close(std::get<1>(c), want[0], tol, "dW1 compiled");
    kt::check_close(std::get<2>(c), want[1], tol, "db1 compiled");
    kt::check_close(std::get<3>(c), want[2], tol, "dW2 compiled");
    kt::check_close(std::get<4>(c), want[3], tol, "db2 compiled");
    kt::check_close(std::get<1>(e), want[0], tol, "dW1 eager");
    kt::check_close(std::get<2>(e), want[1], tol, "db1 eager");
    kt::check_close(std::get<3>(e), want[2], tol, "dW2 eager");
    kt::check_close(std::get<4>(e), want[3], tol, "db2 eager");
    kt::check_close(std::get<0>(c), std::get<0>(e), {1e-7, 1e-6}, "loss compiled vs eager");
    // The backward went through the ordinary passes: far fewer kernels than nodes.
    const kiln::Stats st = net.stats();
    INFO("nodes " << st.nodes << ", kernels " << st.kernels);
    CHECK(st.kernels * 2 < st.nodes);
    // Later calls reuse the plan (parameters are inputs: new values, same shapes).
    const auto w1b = kt::random_tensor(Shape{7, 5}, 9, -0.5f, 0.5f);
    const auto c2 = net(x, y, w1b, b1, w2, b2);
    kt::check_close(std::get<1>(c2), mlp_reference(x, y, w1b, b1, w2, b2)[0], tol, "dW1, second call");
    CHECK(net.stats().traces == 1);
  }
}

TEST_CASE("eager runs a grad function through its graph; without eager or compile grad is an error") {
  auto f = [](auto x) { return std::get<0>(kiln::grad(kiln::sum_all(x * x), x)); };
  const Tensor<float> x(Shape{3}, {1.f, -2.f, 0.5f});
  const auto ev = kiln::eager(f);
  kt::check_close(ev(x), V{2, -4, 1}, {0, 0}, "eager, first call");
  kt::check_close(ev(x), V{2, -4, 1}, {0, 0}, "eager, through the graph directly");
  const std::string msg = error_of([&] { (void)f(x); });
  CHECK(contains(msg, "grad: the loss (shape [])"));
  CHECK(contains(msg, "kiln::eager"));
  // Past the cache limit a compiled model runs eagerly: a grad function goes through its graph too.
  kiln::CompileOptions no_cache;
  no_cache.cache_limit = 0;
  auto fallback = kiln::compile(f, no_cache);
  kt::check_close(fallback(x), V{2, -4, 1}, {0, 0}, "compiled past the cache limit");
  CHECK(fallback.stats().eager_fallbacks == 1);
  // A function without grad still runs op by op, directly.
  kt::check_close(kiln::eager([](auto a) { return a * 2.f; })(x), V{2, -4, 1}, {0, 0}, "plain eager");
}

TEST_CASE("non-differentiable paths give zero gradients; differentiating a bool is an error") {
  // x reaches the loss only through a comparison (and where's condition): zeros, like torch.
  auto step = [](auto x, auto y) {
    auto loss = kiln::sum_all(kiln::where(x > 0.f, y * 2.f, y * 3.f));
    return kiln::grad(loss, x, y);
  };
  const Tensor<float> x(Shape{4}, {1.f, -1.f, 2.f, -3.f}), y(Shape{4}, {5.f, 6.f, 7.f, 8.f});
  for (int mode = 0; mode < 2; ++mode) {
    auto g = mode ? kiln::eager(step)(x, y) : kiln::compile(step)(x, y);
    kt::check_close(std::get<0>(g), V{0, 0, 0, 0}, {0, 0}, "d/dx through a comparison");
    kt::check_close(std::get<1>(g), V{2, 3, 2, 3}, {0, 0}, "d/dy");
  }
  // A tensor the loss does not use at all: zeros of its shape.
  auto unused = [](auto x, auto z) { return std::get<1>(kiln::grad(kiln::sum_all(x), x, z)); };
  kt::check_close(kiln::compile(unused)(x, Tensor<float>(Shape{2, 2}, {1.f, 2.f, 3.f, 4.f})), V{0, 0, 0, 0}, {0, 0},
                  "unused input");
  // Asking for the gradient of a boolean value names the op.
  auto of_mask = [](auto x) {
    auto m = x > 0.f;
    return std::get<0>(kiln::grad(kiln::sum_all(kiln::where(m, x, x * 2.f)), m));
  };
  const std::string msg = error_of([&] { (void)kiln::compile(of_mask)(x); });
  CHECK(contains(msg, "grad: tensor 0 (gt, shape [4]) has dtype bool"));
}

TEST_CASE("errors: non-scalar loss, a foreign tensor, an op without a backward rule") {
  const Tensor<float> x(Shape{2, 3});
  auto vector_loss = [](auto a) { return std::get<0>(kiln::grad(a * 2.f, a)); };
  const std::string msg = error_of([&] { (void)kiln::compile(vector_loss)(x); });
  CHECK(contains(msg, "grad: the loss must be a single f32 value; got mul of shape [2, 3]"));
  CHECK(contains(error_of([&] { (void)kiln::eager(vector_loss)(x); }), "got mul of shape [2, 3]"));

  // copy has no backward rule (only a planner would create it): the error names it and its shapes.
  kiln::Graph g;
  kiln::Node in;
  in.op = kiln::Op::input;
  in.shape = Shape{2, 3};
  const int xi = g.add(in);
  kiln::Node cp;
  cp.op = kiln::Op::copy;
  cp.inputs[0] = xi;
  cp.num_inputs = 1;
  const int ci = g.add(cp);
  kiln::Node r;
  r.op = kiln::Op::reshape;
  r.shape = Shape{-1};
  r.inputs[0] = ci;
  r.num_inputs = 1;
  kiln::Node s;
  s.op = kiln::Op::reduce;
  s.axis = 0;
  s.inputs[0] = g.add(r);
  s.num_inputs = 1;
  const int loss = g.add(s);
  int grad_id = -1;
  const kiln::Status st = kiln::passes::append_gradients(g, loss, &xi, 1, &grad_id);
  REQUIRE(!st.ok());
  CHECK(std::string(st.message()) == "autodiff: no backward rule for copy (node %1, shape [2, 3], inputs [2, 3])");
  CHECK(st.code() == kiln::Errc::not_supported);
}

TEST_CASE("the autodiff pass is constexpr: d/dx sum(x * x) planned in a constant expression") {
  constexpr auto grad_graph = [] {
    kiln::Graph g;
    kiln::Node in;
    in.op = kiln::Op::input;
    in.shape = Shape{4};
    const int x = g.add(in);
    kiln::Node sq;
    sq.op = kiln::Op::elementwise;
    sq.fn = kiln::EwFn::mul;
    sq.inputs[0] = x;
    sq.inputs[1] = x;
    sq.num_inputs = 2;
    kiln::Node s;
    s.op = kiln::Op::reduce;
    s.axis = 0;
    s.inputs[0] = g.add(sq);
    s.num_inputs = 1;
    const int loss = g.add(s);
    int gx = -1;
    kiln::passes::append_gradients(g, loss, &x, 1, &gx);
    g.add_output(gx);
    return g;
  }();
  static_assert(grad_graph.ok());
  static_assert(grad_graph[grad_graph.output(0)].shape == Shape{4});
  CHECK(grad_graph.num_outputs() == 1);
}
