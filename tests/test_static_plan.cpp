// kiln::plan: a model written with the ordinary op front-end, traced and planned inside a constant
// expression (static shapes, weights as TensorViews over static data). The plan's graph, fused
// groups and arena are static_asserted, then checked against what compile() plans for the same
// model at its first call.
// kiln-test: header-only (KILN_MAX_NODES 32 differs from the compiled engine)
#define KILN_MAX_NODES 32  // constant evaluation cost grows with the graph capacity
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

namespace {

// Weights of a 8 -> 16 -> 4 MLP: only their addresses and shapes matter to the plan.
constexpr float kW1[16 * 8] = {};
constexpr float kB1[16] = {};
constexpr float kW2[4 * 16] = {};
constexpr float kB2[4] = {};
constexpr kiln::TensorView<const float> W1(kW1, {16, 8}), B1(kB1, {16}), W2(kW2, {4, 16}), B2(kB2, {4});

constexpr auto mlp = [](auto x) {
  auto h = kiln::relu(kiln::linear(x, W1, B1)) * 1.f;  // "* 1" is simplified away
  return kiln::softmax(kiln::linear(h, W2, B2), -1);
};

constexpr kiln::StaticPlan kMlp = kiln::plan(mlp, kiln::input<float>({2, 8}));
static_assert(kMlp.ok(), "the model type-checks at compile time");
static_assert(kMlp.simplified >= 1, "x * 1 was removed");
// linear+bias+relu, linear+bias, softmax: three kernels.
static_assert(kMlp.kernels() == 3, "two GEMMs with fused epilogues and one softmax");
// Live at once: the [2, 16] hidden activation, then the [2, 4] logits, and during each GEMM its
// packing scratch (a static plan packs the flash weight in the arena): it never exceeds the two
// activations plus the larger scratch.
static_assert(kMlp.arena_bytes() >= kMlp.lower_bound(), "an arena cannot beat the liveness bound");
constexpr std::size_t kScratch1 = kiln::kernels::gemm_workspace_size(2, 16, 8, false) * sizeof(float);
constexpr std::size_t kScratch2 = kiln::kernels::gemm_workspace_size(2, 4, 16, false) * sizeof(float);
static_assert(kMlp.arena_bytes() <= (2 * 16 + 2 * 4) * sizeof(float) + 3 * kiln::kAlignment +
                                        (kScratch1 > kScratch2 ? kScratch1 : kScratch2),
              "the arena holds the two activations and one GEMM's scratch at most");
static_assert(kMlp.graph.node(kMlp.graph.output(0)).shape == kiln::Shape{2, 4}, "output shape inferred");

// Several inputs and outputs, broadcasting and a reduction.
constexpr auto two_heads = [](auto a, auto b) {
  auto s = kiln::sigmoid(a + b);  // [3, 5] + [5]
  return std::make_tuple(kiln::sum(s, 1), kiln::max(s * a, 0, true));
};
constexpr kiln::StaticPlan kHeads = kiln::plan(two_heads, kiln::input<float>({3, 5}), kiln::input<float>({5}));
static_assert(kHeads.ok() && kHeads.graph.num_outputs() == 2 && kHeads.graph.num_inputs() == 2);
static_assert(kHeads.graph.node(kHeads.graph.output(0)).shape == kiln::Shape{3});
static_assert(kHeads.graph.node(kHeads.graph.output(1)).shape == kiln::Shape{1, 5});

}  // namespace

TEST_CASE("a compile-time plan matches the plan compile() builds at the first call") {
  // The same weights as real tensors for the run-time compile (values do not change the plan).
  kiln::Tensor<float> x({2, 8});
  auto net = kiln::compile(mlp);
  (void)net(x);
  const kiln::Stats s = net.stats();
  CHECK(s.kernels == kMlp.kernels());
  CHECK(s.nodes == kMlp.nodes());
  // Both arenas hold the GEMM scratch; compile() prepacks its weights once (outside the arena),
  // the static plan packs them in the arena at each step, so its arena is the larger.
  CHECK(kMlp.arena_bytes() >= s.arena_bytes);
  CHECK(kMlp.lower_bound() >= s.lower_bound);
}

TEST_CASE("plan() evaluated at run time reports errors like any op") {
  auto bad = [](auto x) { return kiln::linear(x, W1); };  // x has 5 features, W1 expects 8
  CHECK_THROWS_WITH_AS(kiln::plan(bad, kiln::input<float>({2, 5})), doctest::Contains("linear"), kiln::Error);
  const kiln::StaticPlan ok = kiln::plan(mlp, kiln::input<float>({7, 8}));
  CHECK(ok.ok());
  CHECK(ok.graph.node(ok.graph.output(0)).shape == kiln::Shape{7, 4});
}

namespace {
// A small CNN (the shape of the MLPerf Tiny image models): conv + relu, max pool, depthwise conv,
// global average pool, classifier; planned at compile time like the MLP above.
constexpr float kC1[8 * 3 * 3 * 3] = {}, kCB1[8] = {}, kDW[8 * 3 * 3 * 1] = {}, kFC[4 * 8] = {};
constexpr kiln::TensorView<const float> C1(kC1, {8, 3, 3, 3}), CB1(kCB1, {8}), DW(kDW, {8, 3, 3, 1}), FC(kFC, {4, 8});
constexpr auto cnn = [](auto x) {
  auto h = kiln::relu(kiln::conv2d(x, C1, CB1, kiln::Conv2dOptions().with_padding(kiln::Padding2d::same())));
  h = kiln::max_pool2d(h, 2);
  h = kiln::relu6(kiln::conv2d(h, DW, kiln::Conv2dOptions().with_groups(8).with_padding(kiln::Padding2d::same())));
  return kiln::linear(kiln::flatten(kiln::global_avg_pool(h, false), 1), FC);
};
constexpr kiln::StaticPlan kCnn = kiln::plan(cnn, kiln::input<float>({1, 16, 16, 3}));
static_assert(kCnn.ok());
static_assert(kCnn.graph.node(kCnn.graph.output(0)).shape == kiln::Shape{1, 4});
static_assert(kCnn.arena_bytes() >= kCnn.lower_bound());
}  // namespace

TEST_CASE("a CNN planned at compile time matches compile()'s plan") {
  kiln::Tensor<float> x({1, 16, 16, 3});
  auto net = kiln::compile(cnn);
  (void)net(x);
  CHECK(net.stats().kernels == kCnn.kernels());
  CHECK(net.stats().nodes == kCnn.nodes());
}
