// The compiled model's observation mode (runtime/observe.hpp, CompileOptions::observe), which the
// precision doctor observes through:
//  - every traced node's value, read back after one compiled run, equals the interpreter's
//    (trace/interpret.hpp: node by node with the eager kernels, every value in its own buffer) —
//    also the nodes the normal plan fuses (bias add and ReLU in a GEMM's registers, the
//    producers a softmax absorbs, a conv's epilogue);
//  - the observed run's output equals the normal compiled run's (within the rounding of the
//    fusions it splits; measured: bit-identical on these models);
//  - an int8 graph from post-training quantisation: every value equal to the interpreter's, byte for byte;
//  - the plan really has one step per node and no memory reuse (arena = sum of the values);
//  - misuse: observed() without the mode, before a call, with a wrong dtype;
//  - the doctor's per-node errors (taken through these plans) equal the interpreter's.
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>
#include <kiln/ptq/doctor.hpp>
#include <kiln/runtime/executable.hpp>
#include <kiln/trace/interpret.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "test_util.hpp"

namespace {

using kiln::index_t;
using kiln::Shape;
using kiln::Tensor;

struct Mlp {
  Tensor<float> w1 = kt::random_tensor(Shape{24, 16}, 1, -0.5f, 0.5f), b1 = kt::random_tensor(Shape{24}, 2, -0.5f, 0.5f);
  Tensor<float> w2 = kt::random_tensor(Shape{10, 24}, 3, -0.5f, 0.5f), b2 = kt::random_tensor(Shape{10}, 4, -0.5f, 0.5f);
  template <class X>
  auto operator()(const X& x) const {
    auto h = kiln::relu(kiln::linear(x, w1, b1));
    auto z = kiln::linear(h, w2, b2) * 0.5f + 1.f;  // an elementwise chain in the GEMM's epilogue
    return kiln::softmax(kiln::tanh(z) * 2.f, -1);  // a chain the softmax absorbs
  }
};

struct Cnn {
  Tensor<float> w = kt::random_tensor(Shape{6, 3, 3, 4}, 5, -0.5f, 0.5f), b = kt::random_tensor(Shape{6}, 6, -0.2f, 0.2f);
  template <class X>
  auto operator()(const X& x) const {
    kiln::Conv2dOptions o;
    o.padding = kiln::Padding2d::same();
    auto y = kiln::relu6(kiln::conv2d(x, w, b, o));
    kiln::Pool2dOptions p;
    p.kernel_h = p.kernel_w = 2;
    p.stride_h = p.stride_w = 2;
    return kiln::sum(kiln::max_pool2d(y, p) + 1.f, -1);
  }
};

double max_abs_diff(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.shape() == b.shape());
  double d = 0.0;
  for (index_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
  return d;
}

// The interpreter's value of every node of `g` on input `x`, against the observation plan's.
// Returns the largest |difference| / (1 + |reference|) over the f32 nodes; i8 nodes must be equal.
double compare_every_node(const kiln::Graph& g, const Tensor<float>& x, int& checked) {
  kiln::Status st;
  std::unique_ptr<kiln::runtime::Executable, kiln::engine::ExecutableDeleter> exe(kiln::engine::build_observing(g, st));
  REQUIRE_MESSAGE(exe, st.message());
  std::vector<std::uint8_t> arena(kiln::engine::arena_bytes(*exe) + kiln::kAlignment);
  Tensor<float> y(g[g.output(0)].shape);
  const void* ins[1] = {x.data()};
  void* outs[1] = {y.data()};
  kiln::engine::run(*exe, ins, outs, kiln::align_up(arena.data()));
  kiln::detail::Interpreter ref(g);
  ref.run(ins);
  double worst = 0.0;
  checked = 0;
  for (int id = 0; id < g.size(); ++id) {
    const kiln::Node& n = g[id];
    if (n.is_leaf()) continue;
    const std::size_t bytes = static_cast<std::size_t>(n.shape.numel()) * kiln::dtype_size(n.dtype);
    std::vector<std::uint8_t> got(bytes + 4);
    REQUIRE(kiln::engine::read_value(*exe, id, ins, outs, kiln::align_up(arena.data()), got.data()));
    ++checked;
    if (n.dtype == kiln::DType::f32) {
      const auto* a = reinterpret_cast<const float*>(got.data());
      const auto* r = static_cast<const float*>(ref.value(id));
      for (index_t i = 0; i < n.shape.numel(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - r[i]) / (1.0 + std::fabs(r[i])));
    } else {
      CHECK_MESSAGE(std::memcmp(got.data(), ref.value(id), bytes) == 0, "node %" << id << ' ' << kiln::op_name(n.op));
    }
  }
  return worst;
}

}  // namespace

TEST_CASE("observe: every node of a fused MLP + softmax equals the interpreter's value") {
  Mlp m;
  const Tensor<float> x = kt::random_tensor(Shape{5, 16}, 7, -1.f, 1.f);
  kiln::CompileOptions o;
  o.observe = true;
  auto dbg = kiln::compile(m, o);
  auto net = kiln::compile(m);
  const Tensor<float> yd = dbg(x), yn = net(x);
  // The normal plan fuses (3 kernels for this graph); the debug plan has one step per computing node.
  const kiln::Graph& g = *dbg.traced_graph();
  int computing = 0;
  for (int id = 0; id < g.size(); ++id) computing += !g[id].is_leaf() && !g[id].is_view();
  CHECK(dbg.stats().kernels == computing);
  CHECK(net.stats().kernels < computing);
  // Debug output vs normal compiled output: the split epilogue rounds the same f32 operations.
  CHECK(max_abs_diff(yd, yn) <= 1e-6);
  int checked = 0;
  CHECK(compare_every_node(g, x, checked) <= 1e-5);
  int non_leaves = 0;
  for (int id = 0; id < g.size(); ++id) non_leaves += !g[id].is_leaf();
  CHECK(checked == non_leaves);  // views too (read through their base)
  // Through compile(): the value of every traced node, including those fused in the normal plan.
  kiln::detail::Interpreter ref(g);
  const void* ins[1] = {x.data()};
  ref.run(ins);
  for (int id = 0; id < g.size(); ++id) {
    if (g[id].is_leaf()) continue;
    const Tensor<float> v = dbg.observed(id);
    REQUIRE(v.shape() == g[id].shape);
    const auto* r = static_cast<const float*>(ref.value(id));
    double worst = 0.0;
    for (index_t i = 0; i < v.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(v[i]) - r[i]));
    CHECK_MESSAGE(worst <= 1e-5, "node %" << id << ' ' << kiln::op_name(g[id].op));
  }
}

TEST_CASE("observe: a conv + relu6 + pool + reduce network, node by node") {
  Cnn m;
  const Tensor<float> x = kt::random_tensor(Shape{2, 8, 8, 4}, 8, -1.f, 1.f);
  kiln::CompileOptions o;
  o.observe = true;
  auto dbg = kiln::compile(m, o);
  auto net = kiln::compile(m);
  CHECK(max_abs_diff(dbg(x), net(x)) <= 1e-5);
  int checked = 0;
  CHECK(compare_every_node(*dbg.traced_graph(), x, checked) <= 1e-5);
  CHECK(checked >= 5);
  // No memory reuse: the arena holds every arena value at once (at least their sum).
  const kiln::runtime::Executable* exe = dbg.executable();
  REQUIRE(exe);
  std::size_t values = 0;
  const kiln::Graph& g = exe->graph();
  for (int id = 0; id < g.size(); ++id)
    if (exe->memory().place[id].kind == kiln::passes::Storage::arena)
      values += kiln::align_up(static_cast<std::size_t>(g[id].shape.numel()) * kiln::dtype_size(g[id].dtype));
  CHECK(exe->memory().in_place == 0);
  CHECK(exe->arena_bytes() >= values);
}

TEST_CASE("observe: an int8 graph from PTQ equals the interpreter byte for byte") {
  Mlp m;
  std::vector<Tensor<float>> cal;
  for (unsigned s = 0; s < 3; ++s) cal.push_back(kt::random_tensor(Shape{5, 16}, 20 + s, -1.f, 1.f));
  auto lin = [&m](const auto& x) {  // the MLP's linear part (PTQ's int8 layers: qlinear with relu)
    return kiln::linear(kiln::relu(kiln::linear(x, m.w1, m.b1)), m.w2, m.b2);
  };
  kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(lin, cal, {});
  REQUIRE(!qm.value_map().empty());
  int checked = 0;
  CHECK(compare_every_node(qm.graph(), cal[1], checked) <= 1e-6);  // dequantize/quantize in f32
  CHECK(checked >= 3);
}

TEST_CASE("observe: misuse is an error, not a crash") {
  Mlp m;
  const Tensor<float> x = kt::random_tensor(Shape{5, 16}, 7, -1.f, 1.f);
  auto net = kiln::compile(m);
  kiln::CompileOptions o;
  o.observe = true;
  auto dbg = kiln::compile(m, o);
  CHECK_THROWS_WITH_AS(dbg.observed(3), doctest::Contains("a call first"), kiln::Error);  // before a call
  (void)net(x);
  CHECK_THROWS_WITH_AS(net.observed(3), doctest::Contains("CompileOptions::observe"), kiln::Error);
  (void)dbg(x);
  CHECK_THROWS_AS(dbg.observed<std::int8_t>(3), kiln::Error);  // an f32 node read as i8
  CHECK_THROWS_AS(dbg.observed(10000), kiln::Error);
  CHECK(dbg.observed(dbg.traced_graph()->output(0)).size() == 50);
}

TEST_CASE("observe: the doctor's per-node errors (compiled observation) equal the interpreter's") {
  Mlp m;
  std::vector<Tensor<float>> cal;
  for (unsigned s = 0; s < 3; ++s) cal.push_back(kt::random_tensor(Shape{5, 16}, 30 + s, -1.f, 1.f));
  auto lin = [&m](const auto& x) { return kiln::linear(kiln::relu(kiln::linear(x, m.w1, m.b1)), m.w2, m.b2); };
  kiln::ptq::QuantizedModel qm = kiln::ptq::quantize_model(lin, cal, {});
  const kiln::ptq::Criterion c{0.01, 0.0, kiln::ptq::Statistic::max};
  const auto nodes = kiln::ptq::detail::observe(qm, cal, c);
  REQUIRE(nodes.size() == static_cast<std::size_t>(qm.float_graph().size()));
  // The same errors from the interpreter (max over elements and samples, atol 0.01).
  const kiln::Graph& f = qm.float_graph();
  const kiln::Graph& q = qm.graph();
  std::vector<double> worst(nodes.size(), 0.0);
  for (const Tensor<float>& x : cal) {
    const void* ins[1] = {x.data()};
    kiln::detail::Interpreter rf(f), rq(q);
    rf.run(ins);
    rq.run(ins);
    for (int id = 0; id < f.size(); ++id) {
      const int mq = qm.value_map()[static_cast<std::size_t>(id)];
      if (f[id].is_leaf() || mq < 0) continue;
      const auto* fv = static_cast<const float*>(rf.value(id));
      for (index_t i = 0; i < f[id].shape.numel(); ++i) {
        const double qv = q[mq].dtype == kiln::DType::i8
                              ? (static_cast<const std::int8_t*>(rq.value(mq))[i] - q[mq].quant.zero_point) * static_cast<double>(q[mq].quant.scale)
                              : static_cast<const float*>(rq.value(mq))[i];
        worst[static_cast<std::size_t>(id)] = std::max(worst[static_cast<std::size_t>(id)], std::fabs(qv - fv[i]) / c.atol);
      }
    }
  }
  int compared = 0;
  for (std::size_t id = 0; id < nodes.size(); ++id) {
    if (nodes[id].precision == "leaf" || nodes[id].precision == "fused") continue;
    CHECK_MESSAGE(nodes[id].score == doctest::Approx(worst[id]).epsilon(1e-4), "node %" << id);
    ++compared;
  }
  CHECK(compared >= 2);
  CHECK(nodes[static_cast<std::size_t>(f.output(0))].score > 0.0);
}
