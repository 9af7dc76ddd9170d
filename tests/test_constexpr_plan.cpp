// The IR, the passes and the memory planner run in a constant expression: the plan of a small
// static model (its arena size, its kernel count) is a compile-time constant. This is what the
// firmware issue builds on; here it proves nothing in them needs the heap or run-time dispatch.
// kiln-test: header-only (KILN_MAX_NODES 24; IR and passes only)
#define KILN_MAX_NODES 24  // small capacity: constant evaluation cost grows with it
#include <doctest/doctest.h>

#include <kiln/ir/graph.hpp>
#include <kiln/passes/fold_channel_affine.hpp>
#include <kiln/passes/memory_plan.hpp>
#include <kiln/passes/simplify.hpp>

namespace {

struct StaticPlan {
  std::size_t arena_bytes = 0, lower_bound = 0;
  int kernels = 0, nodes = 0;
};

// y = relu(x @ W1^T + b1) @ W2^T + b2, x [4, 8], W1 [16, 8], W2 [2, 16]; weights are shape-only.
constexpr StaticPlan plan_mlp() {
  kiln::Graph g;
  auto leaf = [&](kiln::Op op, kiln::Shape s) {
    kiln::Node n;
    n.op = op;
    n.shape = s;
    return g.add(n);
  };
  auto node = [&](kiln::Node n, int a, int b = -1) {
    n.inputs[0] = a;
    n.num_inputs = 1;
    if (b >= 0) {
      n.inputs[1] = b;
      n.num_inputs = 2;
    }
    return g.add(n);
  };
  kiln::Node lin;
  lin.op = kiln::Op::matmul;
  lin.trans_b = true;
  kiln::Node add;
  add.op = kiln::Op::elementwise;
  add.fn = kiln::EwFn::add;
  kiln::Node relu = add;
  relu.fn = kiln::EwFn::relu;
  const int x = leaf(kiln::Op::input, {4, 8});
  const int w1 = leaf(kiln::Op::constant, {16, 8}), b1 = leaf(kiln::Op::constant, {16});
  const int w2 = leaf(kiln::Op::constant, {2, 16}), b2 = leaf(kiln::Op::constant, {2});
  const int zero = leaf(kiln::Op::scalar, {});  // p0 = 0: h + 0 simplifies away
  const int h = node(relu, node(add, node(lin, x, w1), b1));
  const int h0 = node(add, h, zero);
  const int y = node(add, node(lin, h0, w2), b2);
  g.add_output(y);
  kiln::passes::simplify_algebra(g);
  kiln::passes::eliminate_common_subexpressions(g);
  g.remove_dead();
  kiln::passes::Fusion f;
  kiln::passes::fuse(g, f);
  kiln::passes::MemoryPlan m;
  std::size_t ws[KILN_MAX_NODES]{};
  kiln::passes::plan_memory(g, f, ws, m);
  return StaticPlan{m.arena_bytes, m.lower_bound, f.num_groups, g.size()};
}

constexpr StaticPlan kPlan = plan_mlp();
// Two GEMMs (bias and ReLU in the first one's epilogue); one [4, 16] activation in the arena.
static_assert(kPlan.kernels == 2, "linear+bias+relu and linear+bias are one kernel each");
static_assert(kPlan.arena_bytes == 4 * 16 * sizeof(float), "the hidden activation is the only arena value");
static_assert(kPlan.arena_bytes == kPlan.lower_bound, "the arena meets the liveness lower bound");

// A conv block: y = relu(maxpool(x) conv W * scale + shift), x [1, 8, 8, 3] NHWC, W [4, 3, 3, 3]
// OHWI. The per-channel scale folds into W (the affine callback returns new data, here a static
// table: the values do not matter to the plan), leaving pool, then conv + bias + relu in one
// gemm group.
constexpr float kFolded[4 * 3 * 3 * 3]{};
constexpr float kScale[4]{};
constexpr StaticPlan plan_conv() {
  kiln::Graph g;
  auto leaf = [&](kiln::Op op, kiln::Shape s, const void* data = nullptr) {
    kiln::Node n;
    n.op = op;
    n.shape = s;
    n.data = data;
    return g.add(n);
  };
  auto node = [&](kiln::Node n, int a, int b = -1) {
    n.inputs[0] = a;
    n.num_inputs = b >= 0 ? 2 : 1;
    n.inputs[1] = b;
    return g.add(n);
  };
  kiln::Node pool;
  pool.op = kiln::Op::pool2d;
  pool.rk = kiln::ReduceKind::max;
  pool.win.kernel_h = pool.win.kernel_w = pool.win.stride_h = pool.win.stride_w = 2;
  kiln::Node conv;
  conv.op = kiln::Op::conv2d;
  conv.win.pad_top = conv.win.pad_bottom = conv.win.pad_left = conv.win.pad_right = 1;
  kiln::Node mul;
  mul.op = kiln::Op::elementwise;
  mul.fn = kiln::EwFn::mul;
  kiln::Node add = mul;
  add.fn = kiln::EwFn::add;
  kiln::Node relu = mul;
  relu.fn = kiln::EwFn::relu;
  const int x = leaf(kiln::Op::input, {1, 8, 8, 3});
  const int w = leaf(kiln::Op::constant, {4, 3, 3, 3}, kFolded);
  const int scale = leaf(kiln::Op::constant, {4}, kScale), shift = leaf(kiln::Op::constant, {4}, kScale);
  const int y = node(relu, node(add, node(mul, node(conv, node(pool, x), w), scale), shift));
  g.add_output(y);
  const int folded = kiln::passes::fold_channel_affine(
      g, [](const void*, kiln::index_t, kiln::index_t, const void*, const void*) -> const void* { return kFolded; });
  g.remove_dead();
  kiln::passes::Fusion f;
  kiln::passes::fuse(g, f);
  kiln::passes::MemoryPlan m;
  std::size_t ws[KILN_MAX_NODES]{};
  kiln::passes::plan_memory(g, f, ws, m);
  return StaticPlan{m.arena_bytes, m.lower_bound, f.num_groups * 100 + folded, g.size()};
}

constexpr StaticPlan kConvPlan = plan_conv();
static_assert(kConvPlan.kernels == 201, "pool, then conv + shift + relu; one scale folded");
static_assert(kConvPlan.nodes == 7, "x, W, shift, pool, conv, add, relu: the multiply is gone");
static_assert(kConvPlan.arena_bytes == 4 * 4 * 3 * sizeof(float), "the pooled [1, 4, 4, 3] is the only arena value");

}  // namespace

TEST_CASE("a static conv block is planned at compile time, batch-norm scale folded") {
  CHECK(kConvPlan.kernels == 201);
  CHECK(kConvPlan.nodes == 7);
}

TEST_CASE("a static model is planned at compile time") {
  CHECK(kPlan.kernels == 2);
  CHECK(kPlan.nodes == 10);  // 5 leaves, 2 linear, 2 add, relu: h + 0 and its scalar removed
  CHECK(kPlan.arena_bytes == 256);
}
