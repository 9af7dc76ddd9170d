// kiln/trace/static_trace.hpp — trace and plan a model inside a constant expression.
//
// When every input shape is static, the same front-end, passes and planner that compile() runs
// at the first call run at compile time:
//
//   static constexpr float kW[4 * 8] = {...};                    // weights in flash
//   constexpr kiln::TensorView<const float> W(kW, {4, 8});
//   constexpr auto model = [](auto x) { return kiln::relu(kiln::linear(x, W)); };
//   constexpr kiln::StaticPlan plan = kiln::plan(model, kiln::input<float>({1, 8}));
//   static_assert(plan.arena_bytes() == ...);                   // a compile-time number
//
// Weights are TensorViews over static data (their addresses are constants; an owning Tensor
// cannot exist in a constant expression). A model that does not type-check stops the
// compilation at the offending op: trace/static_error.hpp. runtime/static_run.hpp runs such a plan
// (kiln::run<plan>(arena, in, out)); the arena includes every step's GEMM/conv scratch.
#pragma once

#include <tuple>
#include <utility>

#include "../ops.hpp"
#include "../passes/fusion.hpp"
#include "../passes/int8_workspace.hpp"
#include "../passes/memory_plan.hpp"
#include "../passes/simplify.hpp"
#include "../runtime/lower.hpp"

namespace kiln {

/// A model input of a compile-time trace: element type T, static shape (and, for an int8 input,
/// its quantisation: kiln::input<std::int8_t>({1, 64}, {0.02f, -5})).
template <class T = float>
struct Input {
  Shape shape;
  QuantParams quant{};
};
template <class T = float>
constexpr Input<T> input(const Shape& shape, QuantParams quant = {}) {
  return Input<T>{shape, quant};
}

/// A model traced, simplified, fused and planned in a constant expression.
struct StaticPlan {
  Graph graph;
  passes::Fusion fusion;
  passes::MemoryPlan memory;
  int simplified = 0, cse = 0, dead = 0;
  // The lowered schedule's sizes (runtime/static_run.hpp): program instructions, operand specs,
  // int8 calls and their per-channel multipliers.
  int code_size = 0, num_specs = 0, num_int8 = 0, int8_channels = 0;

  constexpr bool ok() const { return graph.ok(); }
  constexpr const Status& status() const { return graph.status(); }
  /// Bytes of the one arena holding every intermediate and every step's scratch (GEMM/conv
  /// packing, dense copies): the whole RAM a run needs besides the caller's inputs and outputs.
  constexpr std::size_t arena_bytes() const { return memory.arena_bytes; }
  /// The most bytes live at any step: what no plan can go below.
  constexpr std::size_t lower_bound() const { return memory.lower_bound; }
  constexpr int kernels() const { return fusion.num_groups; }
  constexpr int nodes() const { return graph.size(); }
};

namespace detail {

template <class T>
constexpr int add_static_input(Graph& g, const Input<T>& in) {
  Node n;
  n.op = Op::input;
  n.dtype = dtype_of_v<T>;
  n.shape = in.shape;
  n.quant = in.quant;
  return g.add(n);
}

constexpr void add_static_output(Graph& g, const SymTensor& t) {
  if (!t.valid() || t.graph() != &g) {
    if (g.ok()) g.set_error(Status(Errc::invalid_argument) << "plan: the model returned a tensor that is not part of its trace");
    return;
  }
  g.add_output(t.id());
}
template <class... T>
constexpr void add_static_output(Graph& g, const std::tuple<T...>& outs) {
  std::apply([&g](const auto&... t) { (add_static_output(g, t), ...); }, outs);
}

template <class Fn, std::size_t... I>
constexpr auto call_static(const Fn& fn, Graph& g, const int* ids, std::index_sequence<I...>) {
  return fn(SymTensor(&g, nullptr, ids[I])...);
}

}  // namespace detail

/// Traces `fn` on symbolic inputs of the given static shapes and plans it: simplification, CSE,
/// dead-code removal, fusion and the arena, all in a constant expression when used as one.
template <class Fn, class... T>
constexpr StaticPlan plan(const Fn& fn, const Input<T>&... inputs) {
  static_assert(sizeof...(T) >= 1 && sizeof...(T) <= kMaxGraphIO, "kiln::plan: 1 to kMaxGraphIO model inputs");
  StaticPlan p;
  Graph& g = p.graph;
  const int ids[] = {detail::add_static_input(g, inputs)...};
  detail::add_static_output(g, detail::call_static(fn, g, ids, std::index_sequence_for<T...>{}));
  if (!g.ok()) {
    report_static_trace_error(g.status());
    return p;
  }
  for (int round = 0; round < 4; ++round) {
    const int s = passes::simplify_algebra(g);
    const int c = passes::eliminate_common_subexpressions(g);
    p.dead += g.remove_dead();
    p.simplified += s;
    p.cse += c;
    if (s + c == 0) break;
  }
  if (!passes::fuse(g, p.fusion)) {
    g.set_error(Status(Errc::invalid_argument) << "plan: the group graph has a cycle (internal error)");
    report_static_trace_error(g.status());
    return p;
  }
  // Lower once to learn each step's scratch (the static runner packs weights in the arena) and
  // the schedule's sizes; the runner lowers again into arrays of exactly these sizes.
  std::size_t workspace[kMaxNodes]{};
  // (int8 calls are only counted here; 4096 multipliers of scratch bound one call's channels.)
  runtime::FixedSchedule<0, 8 * kMaxNodes + 64, 4 * kMaxNodes + 64, 0, 4096> lowered;
  lowered.graph = &g;
  lowered.workspace = workspace;
  runtime::lower_groups(g, p.fusion, lowered);
  if (!lowered.status.ok()) {
    g.set_error(lowered.status);
    report_static_trace_error(g.status());
    return p;
  }
  p.code_size = lowered.code_size;
  p.num_specs = lowered.spec_count;
  p.num_int8 = lowered.num_int8;
  p.int8_channels = static_cast<int>(lowered.total_channels);
  passes::plan_memory(g, p.fusion, workspace, p.memory);
  return p;
}

}  // namespace kiln
