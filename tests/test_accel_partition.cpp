// The accelerator hook's partition pass (accel/partition.hpp): composites from a pattern table,
// annotation by predicate, greedy region merging that keeps the graph acyclic, and the reason
// every refused node records. Graphs come from kiln::plan (the ordinary front-end traced into a
// Graph), so the cases read like models.
// kiln-test: header-only (KILN_MAX_NODES 48 differs from the compiled engine)
#define KILN_MAX_NODES 48
#include <doctest/doctest.h>

#include <kiln/accel/partition.hpp>
#include <kiln/kiln.hpp>

#include <stdexcept>

namespace {

using kiln::EwFn;
using kiln::Op;
using kiln::accel::Partition;
using kiln::accel::Pattern;
using kiln::accel::Placement;
using kiln::accel::step;

constexpr float kW1[16 * 8] = {}, kB1[16] = {}, kW2[4 * 16] = {}, kB2[4] = {};
constexpr kiln::TensorView<const float> W1(kW1, {16, 8}), B1(kB1, {16}), W2(kW2, {4, 16}), B2(kB2, {4});

constexpr Pattern kPatterns[] = {
    {"linear_bias_relu", {step(Op::matmul), step(EwFn::add), step(EwFn::relu)}, 3},
    {"linear_bias", {step(Op::matmul), step(EwFn::add)}, 2},
};
constexpr kiln::accel::Target kPatternsOnly{"npu", nullptr, kPatterns, 2};

/// The node ids of `g` computing op `op` (elementwise: function `fn`), in order.
int find(const kiln::Graph& g, Op op, EwFn fn = EwFn::identity, int nth = 0) {
  for (int i = 0; i < g.size(); ++i)
    if (g[i].op == op && (op != Op::elementwise || g[i].fn == fn) && nth-- == 0) return i;
  return -1;
}

// linear+bias+relu -> linear+bias -> softmax: two composites, merged into one region; the
// softmax the device cannot run stays on the CPU.
constexpr auto mlp = [](auto x) { return kiln::softmax(kiln::linear(kiln::relu(kiln::linear(x, W1, B1)), W2, B2), -1); };
constexpr kiln::StaticPlan kMlp = kiln::plan(mlp, kiln::input<float>({2, 8}));
constexpr Partition partition_of(const kiln::Graph& g, const kiln::accel::Target& t) {
  Partition p;
  kiln::accel::partition(g, t, p);
  return p;
}
constexpr Partition kMlpParts = partition_of(kMlp.graph, kPatternsOnly);
static_assert(kMlpParts.num_composites == 2 && kMlpParts.num_regions == 1 && kMlpParts.claimed == 5,
              "the partition is a constant expression for a patterns-only target");

}  // namespace

TEST_CASE("composites from the pattern table merge into one region; the rest stays on the CPU") {
  const kiln::Graph& g = kMlp.graph;
  const Partition& p = kMlpParts;
  const int mm0 = find(g, Op::matmul), mm1 = find(g, Op::matmul, EwFn::identity, 1);
  const int relu = find(g, Op::elementwise, EwFn::relu), sm = find(g, Op::softmax);
  REQUIRE(mm0 >= 0);
  REQUIRE(mm1 >= 0);
  CHECK(p.composite_of[mm0] == 0);  // linear_bias_relu
  CHECK(p.composite_of[relu] == 0);
  CHECK(p.composite_of[mm1] == 1);  // linear_bias
  CHECK(p.region_of[mm0] == 0);
  CHECK(p.region_of[mm1] == 0);
  CHECK(p.region_of[sm] == -1);
  CHECK(p.placement[sm] == Placement::not_supported);
  CHECK(p.placement[g.input(0)] == Placement::leaf);
}

TEST_CASE("an intermediate value used outside the chain breaks the longer pattern") {
  // relu's input (the biased linear) is also an output: linear_bias_relu cannot take it, so the
  // shorter linear_bias matches and relu (no pattern, no predicate) stays on the CPU.
  auto two = [](auto x) {
    auto h = kiln::linear(x, W1, B1);
    return std::make_tuple(h, kiln::relu(h));
  };
  const kiln::StaticPlan s = kiln::plan(two, kiln::input<float>({2, 8}));
  Partition p;
  kiln::accel::partition(s.graph, kPatternsOnly, p);
  CHECK(p.num_composites == 1);
  CHECK(p.composite_of[find(s.graph, Op::matmul)] == 1);
  CHECK(p.region_of[find(s.graph, Op::elementwise, EwFn::relu)] == -1);
}

namespace {
// A predicate-driven target: elementwise add/mul/relu on f32, nothing else.
bool supports_basic(const kiln::Graph& g, int id) {
  const kiln::Node& n = g[id];
  return n.op == Op::elementwise && n.dtype == kiln::DType::f32 &&
         (n.fn == EwFn::add || n.fn == EwFn::mul || n.fn == EwFn::relu);
}
}  // namespace

TEST_CASE("regions merge only while the region graph stays acyclic") {
  // a = relu(x); b = exp(a) (CPU); c = a + b. Merging c into a's region would need a path out
  // to the CPU (exp) and back: c gets a region of its own.
  auto model = [](auto x) {
    auto a = kiln::relu(x);
    auto b = kiln::exp(a);
    return a + b;
  };
  const kiln::StaticPlan s = kiln::plan(model, kiln::input<float>({4, 4}));
  const kiln::accel::Target t{"dsp", supports_basic, nullptr, 0};
  Partition p;
  kiln::accel::partition(s.graph, t, p);
  const int relu = find(s.graph, Op::elementwise, EwFn::relu), ex = find(s.graph, Op::elementwise, EwFn::exp);
  const int add = find(s.graph, Op::elementwise, EwFn::add);
  CHECK(p.region_of[ex] == -1);
  CHECK(p.region_of[relu] >= 0);
  CHECK(p.region_of[add] >= 0);
  CHECK(p.region_of[relu] != p.region_of[add]);
  CHECK(p.num_regions == 2);

  // Without the detour the chain is one region: relu -> mul -> add.
  auto chain = [](auto x) { return kiln::relu(x) * 2.f + 1.f; };
  const kiln::StaticPlan c = kiln::plan(chain, kiln::input<float>({4, 4}));
  kiln::accel::partition(c.graph, t, p);
  CHECK(p.num_regions == 1);
  CHECK(p.claimed == 3);
}

TEST_CASE("a predicate that throws is a refusal, not a broken partition") {
  const kiln::accel::Target t{"flaky", [](const kiln::Graph& g, int id) -> bool {
                                if (g[id].fn == EwFn::exp) throw std::runtime_error("driver says no");
                                return true;
                              },
                              nullptr, 0};
  auto model = [](auto x) { return kiln::exp(kiln::relu(x)) + 1.f; };
  const kiln::StaticPlan s = kiln::plan(model, kiln::input<float>({3}));
  Partition p;
  kiln::accel::partition(s.graph, t, p);
  const int ex = find(s.graph, Op::elementwise, EwFn::exp);
  CHECK(p.placement[ex] == Placement::predicate_threw);
  CHECK(p.region_of[ex] == -1);
  CHECK(p.num_regions == 2);  // relu before, add after: exp between them keeps them apart
}
