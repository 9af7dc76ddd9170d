// The compiler's decisions themselves: which fused groups a graph produces, what runs in the GEMM's
// registers, what the simplifier removes, and that the arena equals the liveness lower bound on
// chains (as Eigen's vectorization_logic tests its traversal choices).
// kiln-test: header-only (reads the plan: passes and runtime internals; the header-only compile() path)
#include "test_util.hpp"

namespace {

using kiln::passes::GroupKind;

template <class Net>
const kiln::runtime::Executable& plan_of(const Net& net) {
  REQUIRE(net.executable() != nullptr);
  return *net.executable();
}

/// Kinds of the kernels in execution order.
std::vector<GroupKind> kinds(const kiln::runtime::Executable& x) {
  std::vector<GroupKind> k;
  for (const auto& s : x.steps()) k.push_back(s.kind);
  return k;
}

}  // namespace

TEST_CASE("an elementwise chain with shared inputs is one loop") {
  auto net = kiln::compile([](auto x, auto a, auto b) { return kiln::relu(a * x + b) * kiln::sigmoid(x); });
  const auto x = kt::random_tensor({1000}, 1), a = kt::random_tensor({1000}, 2), b = kt::random_tensor({1}, 3);
  (void)net(x, a, b);
  const auto& p = plan_of(net);
  CHECK(kinds(p) == std::vector<GroupKind>{GroupKind::elementwise});
  CHECK(p.steps()[0].num_ops == 3);   // x, a, b each loaded once
  CHECK(p.steps()[0].num_tgts == 1);  // only the result is stored
  CHECK(p.arena_bytes() == 0);        // nothing intermediate touches memory
}

TEST_CASE("MLP: each linear + bias + relu is one GEMM with bias and clamp in registers") {
  const auto w1 = kt::random_tensor({64, 10}, 1), b1 = kt::random_tensor({64}, 2);
  const auto w2 = kt::random_tensor({32, 64}, 3), b2 = kt::random_tensor({32}, 4);
  const auto w3 = kt::random_tensor({1, 32}, 5), b3 = kt::random_tensor({1}, 6);
  auto mlp = [&](auto x) {
    auto h1 = kiln::relu(kiln::linear(x, w1, b1));
    auto h2 = kiln::relu(kiln::linear(h1, w2, b2));
    return kiln::linear(h2, w3, b3);
  };
  auto net = kiln::compile(mlp);
  const auto x = kt::random_tensor({256, 10}, 7);
  kt::check_close(net(x), kiln::eager(mlp)(x), {1e-5, 1e-5}, "mlp");
  const auto& p = plan_of(net);
  REQUIRE(kinds(p) == std::vector<GroupKind>{GroupKind::gemm, GroupKind::gemm, GroupKind::gemm});
  for (int k = 0; k < 3; ++k) {
    const auto& s = p.steps()[static_cast<std::size_t>(k)];
    CHECK(s.bias >= 0);
    CHECK(s.clamp == (k < 2));
    CHECK(s.code_size == 0);  // no epilogue left for the tail
    CHECK(s.packed >= 0);     // weights packed once at compile time
  }
  // Activations alternate between two buffers: the arena is the liveness lower bound.
  CHECK(p.info().arena_bytes == p.info().lower_bound);
}

TEST_CASE("reductions absorb their producers; softmax keeps its chain in two passes") {
  auto net = kiln::compile([](auto x) { return kiln::softmax(x * 2.f - 1.f, -1); });
  (void)net(kt::random_tensor({8, 100}, 1));
  const auto& p = plan_of(net);
  REQUIRE(kinds(p) == std::vector<GroupKind>{GroupKind::softmax});
  CHECK(p.steps()[0].code_size > 0);  // the producer program runs inside the softmax kernel
}

TEST_CASE("a value used twice is computed once") {
  // t = exp(x) feeds an elementwise consumer and a reduction: t is stored once by the elementwise
  // group; the reduction reads it instead of recomputing exp.
  auto model = [](auto x) {
    auto t = kiln::exp(x);
    return std::make_pair(t + 1.f, kiln::sum(t, 1));
  };
  auto net = kiln::compile(model);
  const auto x = kt::random_tensor({4, 50}, 2);
  auto [u, v] = net(x);
  auto [eu, ev] = kiln::eager(model)(x);
  kt::check_close(u, eu, {1e-6, 1e-6}, "t + 1");
  kt::check_close(v, ev, {1e-5, 1e-5}, "sum(t)");
  const auto& p = plan_of(net);
  REQUIRE(kinds(p) == std::vector<GroupKind>{GroupKind::elementwise, GroupKind::reduce});
  CHECK(p.steps()[0].num_tgts == 2);   // t and t + 1 stored by one loop
  CHECK(p.steps()[1].code_size == 0);  // the reduction reads t, no exp of its own
}

TEST_CASE("different loop shapes are different groups (no recomputation across a broadcast)") {
  auto net = kiln::compile([](auto a, auto b) { return kiln::exp(a) + b; });
  (void)net(kt::random_tensor({4, 1}, 1), kt::random_tensor({4, 5}, 2));
  CHECK(kinds(plan_of(net)) == std::vector<GroupKind>{GroupKind::elementwise, GroupKind::elementwise});
}

TEST_CASE("simplification, CSE, constant folding and DCE") {
  const auto w = kt::random_tensor({8, 8}, 1);
  auto model = [&](auto x) {
    auto dead = kiln::exp(x) * 3.f;  // unused: removed
    (void)dead;
    auto a = kiln::tanh(x) * 1.f + 0.f;      // identities
    auto b = kiln::tanh(x);                  // same as a's tanh: CSE
    auto wt = kiln::transpose(kiln::transpose(w * 2.f) * 0.5f);  // weight-only: folded
    return kiln::matmul(a + b, wt);
  };
  auto net = kiln::compile(model);
  const auto x = kt::random_tensor({3, 8}, 2);
  kt::check_close(net(x), kiln::eager(model)(x), {1e-5, 1e-5}, "simplified model");
  const kiln::Stats s = net.stats();
  CHECK(s.simplified >= 2);
  CHECK(s.cse >= 1);
  CHECK(s.dead >= 2);
  // Remaining: tanh, add, matmul (w * 2 and * 0.5 were computed eagerly at trace time: they are
  // concrete tensors, so the graph sees one constant).
  int compute = 0;
  const kiln::Graph& g = plan_of(net).graph();
  for (int i = 0; i < g.size(); ++i) compute += g[i].is_leaf() || g[i].is_view() ? 0 : 1;
  CHECK(compute == 3);
}

TEST_CASE("symbolic weight math is folded at compile time") {
  const auto w = kt::random_tensor({6, 6}, 1);
  kiln::TensorView<const float> wv(w.data(), w.shape());
  // scale is an input-independent subgraph on a constant *view*: folded once, not run per call.
  auto model = [&](auto x) { return kiln::matmul(x, kiln::sqrt(kiln::abs(kiln::reshape(x, {6, 6}) * 0.f + wv)) ); };
  auto net = kiln::compile(model);
  const auto x = kt::random_tensor({6, 6}, 2);
  kt::check_close(net(x), kiln::eager(model)(x), {1e-5, 1e-5}, "folding");
  auto fold = kiln::compile([&](auto x2) { return x2 + kiln::exp(kiln::Tensor<float>(wv)) ; });
  (void)fold(x);
  auto only = kiln::compile([&](auto x2) {
    auto c = kiln::sum(kiln::abs(kiln::reshape(kiln::transpose(x2), {36})) * 0.f, 0);  // depends on x: not folded
    return c;
  });
  (void)only(x);
  CHECK(only.stats().folded == 0);
}

TEST_CASE("arena equals the lower bound on chains, with in-place reuse") {
  // Reductions and elementwise groups over [64, 256]. y - max(y) reads y for the last time at
  // the same positions it writes: it overwrites y in place.
  auto model = [](auto x) {
    auto y = x;
    for (int i = 0; i < 6; ++i) {
      y = kiln::softmax(y, -1);
      y = kiln::exp(y) * 2.f;
      y = y - kiln::max(y, -1, true);
    }
    return kiln::sum(y, -1);
  };
  auto net = kiln::compile(model);
  const auto x = kt::random_tensor({64, 256}, 3);
  kt::check_close(net(x), kiln::eager(model)(x), {1e-5, 1e-5}, "chain");
  const auto& p = plan_of(net);
  CHECK(p.info().arena_bytes == p.info().lower_bound);
  CHECK(p.info().arena_bytes <= (2 * 64 * 256 + 64) * sizeof(float));  // two activations + the row maxima
  CHECK(p.info().in_place >= 1);
}
