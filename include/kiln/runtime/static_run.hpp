// kiln/runtime/static_run.hpp — run a compile-time plan (trace/static_trace.hpp) with no heap and
// no run-time planning:
//
//   constexpr kiln::StaticPlan kPlan = kiln::plan(model, kiln::input<float>({1, 64}));
//   alignas(kiln::kAlignment) static std::uint8_t arena[kPlan.arena_bytes()];
//   kiln::run<kPlan>(arena, x, y);   // x: const float* or const float[64]; y: float* or float[10]
//                                    // several inputs/outputs: std::tie(x0, x1), std::tie(y0, y1)
//
// The compiler lowers the plan's groups (runtime/lower.hpp, the same lowering as compile()) into
// arrays of exactly the plan's sizes, with every operand address resolved to an input, an output,
// a constant in flash or an arena offset. The runner walks the steps with a fold over an index
// sequence and `if constexpr` on each step's kind, so the image contains only the kernels the
// model uses. Weights are read where they lie and packed per step into the arena's scratch (the
// plan's arena includes it). Mistakes are compile errors: an arena smaller than the plan, an
// input/output of the wrong element type or (for arrays) the wrong number of elements, a wrong
// number of inputs or outputs.
#pragma once

#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../trace/static_trace.hpp"
#include "step_run.hpp"

namespace kiln {

namespace static_run_detail {

/// Where a base value lives during a run.
struct BaseLoc {
  passes::Storage kind = passes::Storage::none;
  int index = 0;            // input/output position
  std::size_t offset = 0;   // arena bytes
  const void* data = nullptr;  // a constant's data (flash)
  float value = 0.f;        // a scalar's value
};

/// What a step needs of its root node besides the Step (window/copy/concat attributes, shapes).
struct StepNode {
  Node root;
  Shape in[kMaxInputs];
};

/// An output the planner could not have its group write in place (a leaf, a view, a repeat).
struct OutputCopy {
  int base = -1;  // -1: written in place by its group
  index_t offset = 0;
  Strides strides;
  Shape shape;
  DType dtype = DType::f32;
};

template <int S, int C, int V, int N, int O, int Q, int CH>
struct Schedule {
  runtime::FixedSchedule<S, C, V, Q, CH> lowered;
  BaseLoc bases[N > 0 ? N : 1]{};
  OutputCopy outputs[O > 0 ? O : 1]{};
};

/// Each step's root node and input shapes, a constant of its own (step_nodes_of): only the
/// non-int8 step kinds read it at run time, so an int8 model's image does not hold it
/// (StepNode is ~400 bytes a step).
template <int S>
struct StepNodes {
  StepNode nodes[S > 0 ? S : 1]{};
};

constexpr runtime::Loc base_loc(int base, index_t offset, DType t) {
  runtime::Loc l;  // the static runner's Loc: base node `index` plus `bytes`
  l.index = base;
  l.bytes = offset * static_cast<index_t>(dtype_size(t));
  return l;
}

template <int S, int C, int V, int N, int O, int Q, int CH>
constexpr Schedule<S, C, V, N, O, Q, CH> make_schedule(const StaticPlan& p) {
  Schedule<S, C, V, N, O, Q, CH> sc;
  const Graph& g = p.graph;
  runtime::lower_groups(g, p.fusion, sc.lowered);
  for (int i = 0; i < g.size(); ++i) {
    const passes::Placement& pl = p.memory.place[i];
    BaseLoc& b = sc.bases[i];
    b.kind = pl.kind;
    b.index = pl.index;
    b.offset = pl.offset;
    if (pl.kind == passes::Storage::constant) b.data = g[i].data;
    if (pl.kind == passes::Storage::scalar) b.value = g[i].p0;
  }
  for (int k = 0; k < S; ++k) {
    runtime::Step& s = sc.lowered.steps[k];
    s.workspace_slot = p.memory.workspace_slot[s.group];
    s.workspace_bytes = s.workspace_slot >= 0 ? static_cast<index_t>(p.memory.slot_offset[s.workspace_slot]) : -1;
    if (s.kind == passes::GroupKind::gemm && !s.conv) {
      s.a_at = base_loc(s.a.base, s.a.offset, s.a.dtype);
      s.b_at = base_loc(s.b.base, s.b.offset, s.b.dtype);
      s.c_at = base_loc(s.c.base, s.c.offset, s.c.dtype);
      if (s.bias >= 0) {
        const runtime::ValueSpec& v = sc.lowered.specs[s.bias];
        s.bias_at = base_loc(v.base, v.offset, v.dtype);
      }
    }
  }
  for (int k = 0; k < O; ++k) {
    const int from = p.memory.output_copy_from[k];
    if (from < 0) continue;
    const passes::Layout& l = p.fusion.layouts[from];
    sc.outputs[k] = OutputCopy{l.base, l.offset, l.strides, g[from].shape, g[from].dtype};
  }
  return sc;
}

/// Plan P's schedule: a namespace-scope constant (one object per plan, in flash).
template <const StaticPlan& P>
inline constexpr auto schedule_of =
    make_schedule<P.kernels(), P.code_size, P.num_specs, P.graph.size(), P.graph.num_outputs(), P.num_int8,
                  P.int8_channels>(P);

template <int S, class Lowered>
constexpr StepNodes<S> make_step_nodes(const StaticPlan& p, const Lowered& lowered) {
  StepNodes<S> r;
  for (int k = 0; k < S; ++k) {
    const Node& n = p.graph[lowered.steps[k].node];
    r.nodes[k].root = n;
    for (int in = 0; in < n.num_inputs; ++in) r.nodes[k].in[in] = p.graph[n.inputs[in]].shape;
  }
  return r;
}
template <const StaticPlan& P>
inline constexpr auto step_nodes_of = make_step_nodes<P.kernels()>(P, schedule_of<P>.lowered);

/// The graph node of model input `k`.
constexpr int input_node(const Graph& g, int k) {
  for (int i = 0; i < g.size(); ++i)
    if (g[i].op == Op::input && g[i].index == k) return i;
  return -1;
}
constexpr int num_inputs(const Graph& g) {
  int n = 0;
  for (int i = 0; i < g.size(); ++i) n += g[i].op == Op::input;
  return n;
}

// Compile-time checks whose failing instantiation names the numbers (static_assert messages
// cannot): read "ArenaTooSmall<needed, given>" in the diagnostic.
template <std::size_t Needed, std::size_t Given>
struct ArenaTooSmall {
  static_assert(Given >= Needed,
                "kiln::run: the arena is smaller than the plan's arena_bytes() (needed, given bytes: see "
                "ArenaTooSmall<needed, given>)");
  static constexpr bool ok = true;
};
template <int Position, std::size_t ModelElements, std::size_t GivenElements>
struct ExtentMismatch {
  static_assert(GivenElements == 0 || GivenElements == ModelElements,
                "kiln::run: an input/output array has the wrong number of elements for the model (position, "
                "model's, given: see ExtentMismatch<position, model's, given>)");
  static constexpr bool ok = true;
};
template <int Position, DType Model, DType Given>
struct DtypeMismatch {
  static_assert(Model == Given,
                "kiln::run: an input/output element type is not the model's dtype (position, model's, given: "
                "see DtypeMismatch<position, model's, given>)");
  static constexpr bool ok = true;
};
template <std::size_t ModelCount, std::size_t Given>
struct CountMismatch {
  static_assert(ModelCount == Given,
                "kiln::run: wrong number of inputs or outputs (model's, given: see CountMismatch<model's, given>)");
  static constexpr bool ok = true;
};

/// An input or output argument: a pointer (extent unknown) or an array (extent checked).
template <class X>
struct IoArg;
template <class T>
struct IoArg<T*> {
  using elem = std::remove_const_t<T>;
  static constexpr std::size_t extent = 0;
  static constexpr T* get(T* p) { return p; }
};
template <class T, std::size_t N>
struct IoArg<T[N]> {
  using elem = std::remove_const_t<T>;
  static constexpr std::size_t extent = N;
  static constexpr T* get(T (&p)[N]) { return p; }
};
template <class X>
struct IoArg<X&> : IoArg<X> {};

template <class X>
struct IoList {  // one argument
  static constexpr std::size_t size = 1;
  template <std::size_t K>
  using arg = IoArg<X>;
  template <std::size_t K>
  static constexpr auto get(X& x) {
    return IoArg<X>::get(x);
  }
};
template <class... X>
struct IoList<std::tuple<X...>> {  // std::tie(a, b, ...)
  static constexpr std::size_t size = sizeof...(X);
  template <std::size_t K>
  using arg = IoArg<std::tuple_element_t<K, std::tuple<X...>>>;
  template <std::size_t K>
  static constexpr auto get(const std::tuple<X...>& t) {
    return IoArg<std::tuple_element_t<K, std::tuple<X...>>>::get(std::get<K>(t));
  }
};

}  // namespace static_run_detail

/// A compile-time plan made runnable: StaticModel<plan>::run(arena, inputs, outputs).
/// `P` must be a constexpr StaticPlan with static storage duration (a namespace-scope constexpr).
template <const StaticPlan& P>
struct StaticModel {
  static_assert(P.ok(), "kiln::StaticModel: the plan failed (see plan.status())");
  static_assert(P.graph.num_updates() == 0, "kiln::StaticModel: a static plan cannot update parameters");

  static constexpr std::size_t arena_bytes = P.arena_bytes();
  static constexpr int num_inputs = static_run_detail::num_inputs(P.graph);
  static constexpr int num_outputs = P.graph.num_outputs();
  static constexpr int num_steps = P.kernels();
  static constexpr const auto& schedule = static_run_detail::schedule_of<P>;
  static constexpr const auto& step_nodes = static_run_detail::step_nodes_of<P>;  // steps' root nodes

  /// Element count and dtype of model input / output k.
  static constexpr index_t input_elements(int k) { return P.graph[static_run_detail::input_node(P.graph, k)].shape.numel(); }
  static constexpr DType input_dtype(int k) { return P.graph[static_run_detail::input_node(P.graph, k)].dtype; }
  static constexpr index_t output_elements(int k) { return P.graph[P.graph.output(k)].shape.numel(); }
  static constexpr DType output_dtype(int k) { return P.graph[P.graph.output(k)].dtype; }

  /// The runner's view of one call (the Env of runtime/step_run.hpp).
  struct Env {
    const void* const* inputs;
    void* const* outputs;
    char* arena;

    const char* base_ptr(int base) const {
      const static_run_detail::BaseLoc& b = schedule.bases[base];
      switch (b.kind) {
        case passes::Storage::input: return static_cast<const char*>(inputs[b.index]);
        case passes::Storage::output: return static_cast<const char*>(outputs[b.index]);
        case passes::Storage::arena: return arena + b.offset;
        case passes::Storage::constant: return static_cast<const char*>(b.data);
        case passes::Storage::scalar: return reinterpret_cast<const char*>(&b.value);
        case passes::Storage::parameter:
        case passes::Storage::none: break;
      }
      return nullptr;
    }
    const char* ptr(int base, index_t offset, DType t) const { return base_ptr(base) + offset * dtype_size(t); }
    const char* at(const runtime::Loc& l) const { return base_ptr(l.index) + l.bytes; }
    const runtime::ValueSpec& spec(int k) const { return schedule.lowered.specs[k]; }
    kernels::EwProgram program(const runtime::Step& s) const {
      return kernels::EwProgram{schedule.lowered.code + s.code_begin, s.code_size, s.num_regs};
    }
    const float* packed(const runtime::Step&) const { return nullptr; }
    float* workspace(const runtime::Step& s) const {
      return s.workspace_bytes >= 0 ? reinterpret_cast<float*>(arena + s.workspace_bytes) : nullptr;
    }
    const static_run_detail::StepNode& node(const runtime::Step& s) const {
      return step_nodes.nodes[&s - schedule.lowered.steps];
    }
    const Node& root(const runtime::Step& s) const { return node(s).root; }
    const Shape& input_shape(const runtime::Step& s, int k) const { return node(s).in[k]; }
  };

  /// Raw entry: inputs[k] / outputs[k] dense buffers of model input / output k; arena:
  /// arena_bytes bytes, kAlignment-aligned.
  static void run(void* arena, const void* const* inputs, void* const* outputs) {
    const Env e{inputs, outputs, static_cast<char*>(arena)};
    run_steps(e, std::make_index_sequence<static_cast<std::size_t>(num_steps)>{});
    copy_outputs(e, std::make_index_sequence<static_cast<std::size_t>(num_outputs)>{});
  }

 private:
  // The int8 steps' address resolver: one type for every step, so run_int8_static is instantiated
  // once per kernel kind of the model rather than once per step (a lambda in run_step<I> is a new type each time).
  struct EnvAt {
    const Env& e;
    const char* operator()(int base, index_t offset, DType t) const { return e.ptr(base, offset, t); }
  };
  template <std::size_t I>
  static void run_step(const Env& e) {
    constexpr const runtime::Step& s = schedule.lowered.steps[I];
    using passes::GroupKind;
    // The tail machinery (an epilogue program per finished block) only where a step has one.
    if constexpr (s.kind == GroupKind::gemm && s.conv) runtime::step_run::conv<(s.code_size > 0)>(s, e);
    else if constexpr (s.kind == GroupKind::gemm && s.direct) runtime::step_run::gemm_in_place<(s.code_size > 0)>(s, e);
    else if constexpr (s.kind == GroupKind::gemm)
      runtime::step_run::gemm<(s.code_size > 0 || s.batch.rank() > 0)>(s, e);
    else if constexpr (s.kind == GroupKind::window) runtime::step_run::window(s, e);
    else if constexpr (s.kind == GroupKind::elementwise) runtime::step_run::elementwise(s, e);
    else if constexpr (s.kind == GroupKind::reduce || s.kind == GroupKind::softmax) runtime::step_run::reduction(s, e);
    else if constexpr (s.kind == GroupKind::copy) runtime::step_run::copy(s, e);
    else if constexpr (s.kind == GroupKind::concat) runtime::step_run::concat(s, e);
    else if constexpr (s.kind == GroupKind::offload)
      static_assert(s.kind != GroupKind::offload, "kiln::run: accelerator regions run through compile()");
    else if constexpr (s.kind == GroupKind::int8) {
      constexpr const runtime::StaticInt8& q = schedule.lowered.int8[s.int8];
      constexpr bool tflite_ops = runtime::uses_tflite_int8_ops(schedule.lowered.int8, schedule.lowered.num_int8);
      (void)runtime::run_int8_static<runtime::int8_kernel(q.call), tflite_ops>(q, schedule.lowered.mult, schedule.lowered.shift, EnvAt{e},
                                     s.workspace_bytes >= 0 ? e.arena + s.workspace_bytes : nullptr,
                                     runtime::step_run::node_out(e, s));  // parameters checked at compile time
    }
  }
  template <std::size_t... I>
  static void run_steps(const Env& e, std::index_sequence<I...>) {
#ifdef KILN_STATIC_STEP_HOOK
    // Profiling builds: KILN_STATIC_STEP_HOOK() runs before and after every step (e.g. the firmware's
    // instruction-count marker, examples/mlperf_tiny), so each step gets its own window.
    ((KILN_STATIC_STEP_HOOK(), run_step<I>(e), KILN_STATIC_STEP_HOOK()), ...);
#else
    (run_step<I>(e), ...);
#endif
  }
  template <std::size_t K>
  static void copy_output(const Env& e) {
    constexpr const static_run_detail::OutputCopy& c = schedule.outputs[K];
    if constexpr (c.base >= 0 && (c.dtype == DType::f32 || c.dtype == DType::boolean)) {
      runtime::strided_copy(e.ptr(c.base, c.offset, c.dtype), c.dtype, c.shape, c.strides, e.outputs[K]);
    } else if constexpr (c.base >= 0) {  // int8 outputs: no float engine linked for them
      runtime::strided_copy_elements(e.ptr(c.base, c.offset, c.dtype), c.dtype, c.shape, c.strides, e.outputs[K]);
    }
  }
  template <std::size_t... K>
  static void copy_outputs(const Env& e, std::index_sequence<K...>) {
    (copy_output<K>(e), ...);
  }
};

namespace static_run_detail {

template <const StaticPlan& P, bool Input, class List, std::size_t... K>
constexpr bool check_io(std::index_sequence<K...>) {
  using M = StaticModel<P>;
  constexpr std::size_t count = Input ? M::num_inputs : M::num_outputs;
  static_assert(CountMismatch<count, List::size>::ok);
  if constexpr (count == List::size) {
    constexpr bool dt = (DtypeMismatch<static_cast<int>(K), Input ? M::input_dtype(K) : M::output_dtype(K),
                                       dtype_of_v<typename List::template arg<K>::elem>>::ok && ...);
    constexpr bool ex =
        (ExtentMismatch<static_cast<int>(K),
                        static_cast<std::size_t>(Input ? M::input_elements(K) : M::output_elements(K)),
                        List::template arg<K>::extent>::ok && ...);
    return dt && ex;
  }
  return false;
}

template <class M, class Ins, class Outs, class In, class Out, std::size_t... K, std::size_t... J>
void call(void* arena, In& in, Out& out, std::index_sequence<K...>, std::index_sequence<J...>) {
  const void* const p[] = {static_cast<const void*>(Ins::template get<K>(in))...};
  void* const q[] = {static_cast<void*>(Outs::template get<J>(out))...};
  M::run(arena, p, q);
}

}  // namespace static_run_detail

/// Runs compile-time plan `P` (see the top of this file). `in` / `out`: one pointer or array, or
/// a std::tuple of them (std::tie) for several inputs / outputs, in the model's order.
template <const StaticPlan& P, std::size_t ArenaBytes, class In, class Out>
void run(std::uint8_t (&arena)[ArenaBytes], In&& in, Out&& out) {
  using M = StaticModel<P>;
  using Ins = static_run_detail::IoList<std::remove_reference_t<In>>;
  using Outs = static_run_detail::IoList<std::remove_reference_t<Out>>;
  static_assert(static_run_detail::ArenaTooSmall<M::arena_bytes, ArenaBytes>::ok);
  static_run_detail::check_io<P, true, Ins>(std::make_index_sequence<Ins::size>{});
  static_run_detail::check_io<P, false, Outs>(std::make_index_sequence<Outs::size>{});
  if constexpr (Ins::size == static_cast<std::size_t>(M::num_inputs) &&
                Outs::size == static_cast<std::size_t>(M::num_outputs))
    static_run_detail::call<M, Ins, Outs>(arena, in, out, std::make_index_sequence<Ins::size>{},
                                          std::make_index_sequence<Outs::size>{});
}

}  // namespace kiln
