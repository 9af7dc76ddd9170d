// int8 in the IR: the front-end (ops_int8.hpp) traces quantised models in a constant expression
// (kiln::plan, weights as TensorViews over static arrays), the type rules (ir/infer_int8.hpp)
// reject bad models with messages naming the op, the shapes and the dtypes, and the passes treat
// i8 values correctly: 1-byte arena slots, one group per int8 op, no int8 node in a float
// elementwise group, CSE/simplify aware of quantisation parameters.
// kiln-test: header-only (KILN_MAX_NODES 32 differs from the compiled engine)
#define KILN_MAX_NODES 32  // constant evaluation cost grows with the graph capacity
#include <doctest/doctest.h>

#include <kiln/kiln.hpp>

#include <string>

namespace {

// A small int8 CNN: x f32 [1, 6, 6, 2] -> quantize -> conv 3x3 (4 ch, relu) -> depthwise 3x3
// (multiplier 2) -> max pool 2x2 -> flatten -> fully connected 8 -> softmax -> dequantize.
// The values do not matter to the plan; the run tests (test_quant_run.cpp) check numbers.
constexpr std::int8_t kConvW[4 * 3 * 3 * 2] = {};
constexpr float kConvS[4] = {0.01f, 0.02f, 0.03f, 0.04f};
constexpr std::int32_t kConvB[4] = {};
constexpr std::int8_t kDwW[8 * 3 * 3 * 1] = {};
constexpr float kDwS[1] = {0.05f};
constexpr std::int8_t kFcW[5 * 8] = {};
constexpr float kFcS[5] = {0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
constexpr std::int32_t kFcB[5] = {};
constexpr kiln::TensorView<const std::int8_t> ConvW(kConvW, {4, 3, 3, 2}), DwW(kDwW, {8, 3, 3, 1}), FcW(kFcW, {5, 8});
constexpr kiln::TensorView<const float> ConvS(kConvS, {4}), DwS(kDwS, {1}), FcS(kFcS, {5});
constexpr kiln::TensorView<const std::int32_t> ConvB(kConvB, {4}), FcB(kFcB, {5});

constexpr kiln::QuantParams kIn{0.02f, 3}, kC1{0.05f, -128}, kC2{0.04f, -10}, kFc{0.2f, 7};

constexpr auto cnn = [](auto x) {
  auto q = kiln::quantize(x, kIn);
  auto c1 = kiln::qconv2d(q, ConvW, ConvS, ConvB, kC1, kiln::Conv2dOptions().with_padding(kiln::Padding2d::same()),
                          kiln::FusedActivation::relu());
  auto c2 = kiln::qconv2d(c1, DwW, DwS, kC2, kiln::Conv2dOptions().with_groups(4));
  auto p = kiln::qmax_pool2d(c2, kiln::Pool2dOptions(2));
  auto f = kiln::flatten(kiln::qavg_pool2d(p, kiln::Pool2dOptions(2)), 1);  // [1, 8]
  return kiln::dequantize(kiln::qsoftmax(kiln::qlinear(f, FcW, FcS, FcB, kFc)));
};

constexpr kiln::StaticPlan kCnn = kiln::plan(cnn, kiln::input<float>({1, 6, 6, 2}));
static_assert(kCnn.ok(), "the int8 model type-checks at compile time");

constexpr int find_op(const kiln::Graph& g, kiln::Op op, int nth = 0) {
  for (int i = 0; i < g.size(); ++i)
    if (g[i].op == op && nth-- == 0) return i;
  return -1;
}
constexpr const kiln::Node& node_of(const kiln::StaticPlan& p, kiln::Op op, int nth = 0) {
  return p.graph[find_op(p.graph, op, nth)];
}

// Shapes, dtypes and quantisation flow through the graph.
static_assert(node_of(kCnn, kiln::Op::quantize).dtype == kiln::DType::i8);
static_assert(node_of(kCnn, kiln::Op::quantize).quant == kIn);
static_assert(node_of(kCnn, kiln::Op::qconv2d).shape == kiln::Shape{1, 6, 6, 4});
static_assert(node_of(kCnn, kiln::Op::qconv2d).in_quant[0] == kIn, "the conv reads its input's parameters");
static_assert(node_of(kCnn, kiln::Op::qconv2d, 1).shape == kiln::Shape{1, 4, 4, 8}, "depthwise, multiplier 2");
static_assert(node_of(kCnn, kiln::Op::qpool2d).quant == kC2, "a pool keeps its input's quantisation");
static_assert(node_of(kCnn, kiln::Op::reshape).quant == kC2, "a view keeps its input's quantisation");
static_assert(node_of(kCnn, kiln::Op::qlinear).shape == kiln::Shape{1, 5});
static_assert(node_of(kCnn, kiln::Op::qsoftmax).quant == kiln::kSoftmaxOutputQuant);
static_assert(node_of(kCnn, kiln::Op::dequantize).dtype == kiln::DType::f32);
static_assert(kCnn.graph[kCnn.graph.output(0)].dtype == kiln::DType::f32);

// One kernel per int8 op (the flatten is a view): quantize, 2 convs, 2 pools, fc, softmax, dequantize.
static_assert(kCnn.kernels() == 8, "every int8 op is a group of its own");
constexpr bool all_int8_groups(const kiln::StaticPlan& p) {
  for (int g = 0; g < p.fusion.num_groups; ++g)
    if (p.fusion.groups[g].kind != kiln::passes::GroupKind::int8) return false;
  return true;
}
static_assert(all_int8_groups(kCnn));

// The arena holds 1-byte elements: the largest pair of live i8 activations (conv1's 144 bytes and
// the depthwise conv's 128, each slot rounded up to kAlignment) bounds it.
static_assert(kCnn.memory.slot_bytes[kCnn.memory.place[find_op(kCnn.graph, kiln::Op::qconv2d)].index] ==
                  kiln::align_up(std::size_t{1 * 6 * 6 * 4}),
              "an i8 [1, 6, 6, 4] slot is 144 bytes, aligned");
static_assert(kCnn.arena_bytes() == kCnn.lower_bound());
// The largest live set is the depthwise conv's step: its input (conv1's 144 bytes), its output
// (128) and its weight re-laid out to the kernel's [1, kh, kw, O] in the step's scratch (72: the
// static runner reads weights from flash and re-lays this one out per run).
static_assert(kCnn.arena_bytes() == kiln::align_up(std::size_t{144}) + kiln::align_up(std::size_t{1 * 4 * 4 * 8}) +
                                        kiln::align_up(std::size_t{8 * 3 * 3}),
              "conv1's output, the depthwise output and its re-laid-out weight live together");

// The integers an int8 kernel takes are derived in a constant expression too (what a static runner
// stores in flash): the qlinear's per-channel multipliers and its relu-less clamp, the depthwise
// conv's depth multiplier and kernel-layout weight shape.
struct Prepared {  // the values prepare_int8 derived (its Int8Call points at mult/shift storage)
  std::int32_t mult[8]{}, shift[8]{};
  bool ok = false, depthwise = false;
  kiln::index_t depth_multiplier = 0;
  std::int32_t input_offset = 0, output_offset = 0, act_min = 0, act_max = 0;
  kiln::index_t pad_top = 0, pad_right = 0;
  kiln::Shape w;
};
constexpr Prepared prepare(const kiln::StaticPlan& p, kiln::Op op, int nth, const float* scales) {
  Prepared r;
  const int id = find_op(p.graph, op, nth);
  const kiln::Node& n = p.graph[id];
  kiln::Shape in[kiln::kMaxInputs];
  for (int k = 0; k < n.num_inputs; ++k) in[k] = p.graph[n.inputs[k]].shape;
  kiln::runtime::Int8Call c;
  r.ok = kiln::runtime::prepare_int8(n, in, scales, r.mult, r.shift, c).ok();
  const kiln::kernels::int8::OutputStage& st =
      op == kiln::Op::qlinear ? c.fc.output : c.depthwise ? c.dw.output : c.conv.output;
  r.depthwise = c.depthwise;
  r.depth_multiplier = c.dw.depth_multiplier;
  r.input_offset = op == kiln::Op::qlinear ? c.fc.input_offset : c.depthwise ? c.dw.input_offset : c.conv.input_offset;
  r.output_offset = st.output_offset;
  r.act_min = st.act_min;
  r.act_max = st.act_max;
  r.pad_top = c.conv.window.pad_top;
  r.pad_right = c.conv.window.pad_right;
  r.w = c.w;
  return r;
}
constexpr Prepared kFcPrepared = prepare(kCnn, kiln::Op::qlinear, 0, kFcS);
constexpr auto kFcMultiplier = kiln::quant::quantize_multiplier(double{kC2.scale} * double{0.1f} / double{kFc.scale});
static_assert(kFcPrepared.ok && kFcPrepared.mult[0] == kFcMultiplier.multiplier && kFcPrepared.shift[4] == kFcMultiplier.shift);
static_assert(kFcPrepared.input_offset == 10 && kFcPrepared.output_offset == 7);
static_assert(kFcPrepared.act_min == -128 && kFcPrepared.act_max == 127);
constexpr Prepared kConvPrepared = prepare(kCnn, kiln::Op::qconv2d, 0, kConvS);
static_assert(kConvPrepared.ok && !kConvPrepared.depthwise && kConvPrepared.input_offset == -3);
static_assert(kConvPrepared.act_min == -128, "relu at zero point -128 clamps nothing");
static_assert(kConvPrepared.pad_top == 1 && kConvPrepared.pad_right == 1, "SAME padding, resolved by the front-end");
constexpr Prepared kDwPrepared = prepare(kCnn, kiln::Op::qconv2d, 1, kDwS);
static_assert(kDwPrepared.ok && kDwPrepared.depthwise && kDwPrepared.depth_multiplier == 2);
static_assert(kDwPrepared.w == kiln::Shape{1, 3, 3, 8}, "TFLite's depthwise layout for the kernel");

// The arena holds the int8 steps' scratch: a grouped conv's channel slices (one group's input and
// output) and the dense copy of a strided operand.
constexpr std::int8_t kGroupW[6 * 3 * 3 * 2] = {};
constexpr kiln::TensorView<const std::int8_t> GroupW(kGroupW, {6, 3, 3, 2});
constexpr auto grouped = [](auto x) {
  auto c = kiln::qconv2d(x, GroupW, DwS, kC1, kiln::Conv2dOptions().with_groups(3));  // [1, 3, 3, 6]
  return kiln::qsoftmax(kiln::permute(c, {0, 3, 1, 2}));                               // a strided view
};
constexpr kiln::StaticPlan kGrouped = kiln::plan(grouped, kiln::input<std::int8_t>({1, 5, 5, 6}, kIn));
constexpr std::size_t workspace_of(const kiln::StaticPlan& p, kiln::Op op) {
  const int gi = p.fusion.group_of[find_op(p.graph, op)];
  const int slot = p.memory.workspace_slot[gi];
  return slot < 0 ? 0 : p.memory.slot_bytes[slot];
}
static_assert(workspace_of(kGrouped, kiln::Op::qconv2d) == kiln::align_up(std::size_t{(150 + 54) / 3}),
              "one group's input [1, 5, 5, 2] and output [1, 3, 3, 2] slices");
static_assert(workspace_of(kGrouped, kiln::Op::qsoftmax) == kiln::align_up(std::size_t{54}),
              "a dense copy of the permuted [1, 6, 3, 3] input");
static_assert(workspace_of(kCnn, kiln::Op::qconv2d) == 0, "dense operands, no groups: no scratch");

// A mixed graph: float elementwise work around int8 ops. The float chains fuse among themselves,
// never with the int8 nodes, except that the quantize of a float value is stored as i8 by its
// producer's program (fusion rule 6); the i8 values take 1 byte per element.
constexpr auto mixed = [](auto x) {
  auto pre = kiln::relu(x * 2.f + 1.f);                      // float group
  auto q = kiln::qlinear(kiln::quantize(pre, kIn), FcW, FcS, kFc);  // [3, 5] i8
  auto d = kiln::dequantize(q);
  return kiln::sigmoid(d) * 3.f - d;                         // float group after the dequantize
};
constexpr kiln::StaticPlan kMixed = kiln::plan(mixed, kiln::input<float>({3, 8}));
static_assert(kMixed.ok());
static_assert(kMixed.kernels() == 4, "float chain storing the quantize, qlinear, dequantize, float chain");
constexpr bool int8_alone(const kiln::StaticPlan& p) {
  for (int i = 0; i < p.graph.size(); ++i) {
    const int gi = p.fusion.group_of[i];
    if (gi < 0) continue;
    const kiln::Node& n = p.graph[i];
    const bool fused_quantize = n.op == kiln::Op::quantize && p.graph[n.inputs[0]].dtype == kiln::DType::f32;
    const bool int8_node = kiln::detail::is_int8_op(n.op) && !fused_quantize;
    const bool int8_group = p.fusion.groups[gi].kind == kiln::passes::GroupKind::int8;
    if (int8_node != int8_group) return false;
    if (int8_group && p.fusion.groups[gi].root != i) return false;  // alone in its group
    if (fused_quantize && p.fusion.group_of[n.inputs[0]] != gi) return false;  // in its producer's group
  }
  return true;
}
static_assert(int8_alone(kMixed), "int8 nodes are alone in int8 groups, except a quantize of a float value, which "
                                  "joins its producer's group; float nodes never join an int8 group");
static_assert(kMixed.memory.slot_bytes[kMixed.memory.place[find_op(kMixed.graph, kiln::Op::quantize)].index] ==
                  kiln::align_up(std::size_t{3 * 8}),
              "the quantised [3, 8] value takes 24 bytes (aligned), not 96");

// An int8 model input with its quantisation given to kiln::plan.
constexpr auto int8_in = [](auto q) { return kiln::qsoftmax(kiln::qlinear(q, FcW, FcS, kFc), 0.5f); };
constexpr kiln::StaticPlan kInt8In = kiln::plan(int8_in, kiln::input<std::int8_t>({2, 8}, kIn));
static_assert(kInt8In.ok() && kInt8In.graph[kInt8In.graph.input(0)].quant == kIn);
static_assert(kInt8In.graph[kInt8In.graph.output(0)].dtype == kiln::DType::i8);

std::string plan_error(void (*build)()) {
  try {
    build();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "no error";
}

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("int8 type errors name the op, the shapes and the dtypes") {
  // Evaluated at run time, kiln::plan reports the failing op's status (kiln::Error here).
  const std::string f32_in = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qlinear(x, FcW, FcS, kFc); }, kiln::input<float>({2, 8}));
  });
  CHECK(has(f32_in, "qlinear"));
  CHECK(has(f32_in, "[2, 8]"));
  CHECK(has(f32_in, "f32"));
  CHECK(has(f32_in, "expected i8"));

  const std::string no_quant = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qlinear(x, FcW, FcS, kFc); }, kiln::input<std::int8_t>({2, 8}));
  });
  CHECK(has(no_quant, "qlinear"));
  CHECK(has(no_quant, "no valid quantisation"));
  CHECK(has(no_quant, "as_quantized"));

  const std::string bias_len = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qlinear(x, FcW, FcS, ConvB, kFc); },
                     kiln::input<std::int8_t>({2, 8}, kIn));
  });
  CHECK(has(bias_len, "qlinear: bias [4] i32 must be i32 [5]"));

  const std::string scale_len = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qlinear(x, FcW, ConvS, kFc); }, kiln::input<std::int8_t>({2, 8}, kIn));
  });
  CHECK(has(scale_len, "weight scales [4] f32"));

  const std::string k_mismatch = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qlinear(x, FcW, FcS, kFc); }, kiln::input<std::int8_t>({2, 7}, kIn));
  });
  CHECK(has(k_mismatch, "[2, 7]"));
  CHECK(has(k_mismatch, "[5, 8]"));

  const std::string no_out = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::quantize(x, kiln::QuantParams{0.f, 0}); }, kiln::input<float>({3}));
  });
  CHECK(has(no_out, "quantize: output quantisation"));

  const std::string groups = plan_error([] {
    (void)kiln::plan(
        [](auto x) {
          return kiln::qconv2d(x, ConvW, ConvS, kC1,
                               kiln::Conv2dOptions().with_groups(3));
        },
        kiln::input<std::int8_t>({1, 5, 5, 4}, kIn));
  });
  CHECK(has(groups, "qconv2d"));
  CHECK(has(groups, "groups 3"));
  CHECK(has(groups, "[1, 5, 5, 4]"));

  const std::string long_rows = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qsoftmax(x); }, kiln::input<std::int8_t>({2, 5000}, kIn));
  });
  CHECK(has(long_rows, "qsoftmax: rows of 5000 elements"));

  const std::string relabel = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::as_quantized(x, kC1); }, kiln::input<float>({3}));
  });
  CHECK(has(relabel, "as_quantized"));
  CHECK(has(relabel, "is not i8"));

  const std::string float_op = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::relu(kiln::quantize(x, kIn)); }, kiln::input<float>({3}));
  });
  CHECK(has(float_op, "relu: input 0 has dtype i8, expected f32"));

  const std::string act = plan_error([] {
    (void)kiln::plan([](auto x) { return kiln::qadd(x, x, kC1, kiln::FusedActivation::clamp(2.f, 1.f)); },
                     kiln::input<std::int8_t>({3}, kIn));
  });
  CHECK(has(act, "qadd: fused clamp [2.000000, 1.000000] is empty"));
}

TEST_CASE("CSE and simplification respect quantisation parameters") {
  kiln::Graph g;
  kiln::Node in;
  in.op = kiln::Op::input;
  in.shape = kiln::Shape{4};
  const int x = g.add(in);
  auto quantize = [&](kiln::QuantParams q) {
    kiln::Node n;
    n.op = kiln::Op::quantize;
    n.quant = q;
    n.inputs[0] = x;
    n.num_inputs = 1;
    return g.add(n);
  };
  const int a = quantize(kIn), b = quantize(kIn), c = quantize(kC1);
  kiln::Node relabel;  // as_quantized of an i8 value with the same parameters: a no-op reshape
  relabel.op = kiln::Op::reshape;
  relabel.shape = kiln::Shape{4};
  relabel.inputs[0] = a;
  relabel.num_inputs = 1;
  const int r = g.add(relabel);
  for (int id : {a, b, c, r}) g.add_output(id);
  REQUIRE(g.ok());
  CHECK(g[r].quant == kIn);
  CHECK(kiln::passes::eliminate_common_subexpressions(g) == 1);  // b merges into a, c does not
  CHECK(g.output(1) == a);
  CHECK(g.output(2) == c);
  CHECK(kiln::passes::simplify_algebra(g) == 1);  // the same-shape, same-quant reshape forwards
  CHECK(g.output(3) == a);

  // A reshape attaching *different* parameters to an i8 value that has none stays.
  kiln::Graph h;
  kiln::Node i8in = in;
  i8in.dtype = kiln::DType::i8;
  const int xi = h.add(i8in);
  kiln::Node attach = relabel;
  attach.inputs[0] = xi;
  attach.quant = kC1;
  const int at = h.add(attach);
  h.add_output(at);
  REQUIRE(h.ok());
  CHECK(kiln::passes::simplify_algebra(h) == 0);
  CHECK(h[at].quant == kC1);
}
