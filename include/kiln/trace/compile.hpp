// kiln/trace/compile.hpp — compile(fn): trace at the first call, plan, cache under a guard.
//
// Compiled<Fn> calls fn with SymTensors in place of its tensor arguments,
// records the graph, builds an Executable (or hands the graph to a custom
// backend, like TorchDynamo's compiler callback), and caches it under the
// call's Guard. Later calls that match a guard only bind pointers and run.
// A call that matches no guard traces again, up to the cache limit; past it
// the call runs eagerly and stats() counts it: never a wrong plan.
#pragma once

#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef KILN_NO_IOSTREAM
#include <ostream>

#include "../ir/print.hpp"
#endif
#include "../accel/backend.hpp"
#include "../ops.hpp"
#include "../runtime/engine.hpp"
#include "grad.hpp"
#include "guard.hpp"
#include "interpret.hpp"
#include "nonfinite.hpp"

namespace kiln {

struct CompileOptions {
  int cache_limit = 8;  // specialisations kept; calls past it run eagerly
  accel::Offload offload{};  // accelerator backends: accel::offload(backend) (accel/offload.hpp)
  // Debug mode (runtime/observe.hpp): no graph rewrites, one kernel per node, no memory reuse, so
  // observed(id) gives every traced node's value after a call. Ignores `offload`.
  bool observe = false;
};

struct Stats {
  int calls = 0, traces = 0, cache_hits = 0, guard_failures = 0, eager_fallbacks = 0;
  int nodes = 0, groups = 0, kernels = 0;          // of the most recently used specialisation
  int folded = 0, cse = 0, simplified = 0, dead = 0, in_place = 0;
  int updates = 0, aliased_updates = 0;  // parameter write-backs (kiln::assign); written in place
  std::size_t arena_bytes = 0, lower_bound = 0, packed_weight_bytes = 0;
  // With accelerator backends: where each node runs and why (valid until reset(); else null).
  const accel::Report* offload = nullptr;
};

/// What a custom backend returns: runs the graph on dense inputs into dense outputs.
using BackendFn = std::function<void(const TensorView<const float>* inputs, int num_inputs,
                                     TensorView<float>* outputs, int num_outputs)>;

namespace detail {

/// The structure of a model's result: one tensor, or a tuple/pair of tensors.
template <class R> struct Results;
template <class T> struct Results<Tensor<T>> {
  static constexpr int count = 1;
  template <class F> static void each(Tensor<T>& r, F&& f) { f(r, 0); }
};
template <> struct Results<SymTensor> {
  static constexpr int count = 1;
  template <class F> static void each(SymTensor& r, F&& f) { f(r, 0); }
};
template <class... T> struct Results<std::tuple<T...>> {
  static constexpr int count = sizeof...(T);
  template <class F> static void each(std::tuple<T...>& r, F&& f) {
    each_impl(r, f, std::index_sequence_for<T...>{});
  }
  template <class F, std::size_t... I>
  static void each_impl(std::tuple<T...>& r, F& f, std::index_sequence<I...>) {
    (f(std::get<I>(r), static_cast<int>(I)), ...);
  }
};
template <class A, class B> struct Results<std::pair<A, B>> {
  static constexpr int count = 2;
  template <class F> static void each(std::pair<A, B>& r, F&& f) {
    f(r.first, 0);
    f(r.second, 1);
  }
};

/// Position of argument I among the tensor arguments (known at compile time, because function
/// arguments have no evaluation order to count them in).
template <std::size_t I, class... Args>
constexpr int tensor_index() {
  constexpr bool is_tensor[] = {is_concrete_v<Args>..., false};
  int n = 0;
  for (std::size_t k = 0; k < I; ++k) n += is_tensor[k] ? 1 : 0;
  return n;
}

/// What the model receives while traced: a SymTensor for a tensor argument, the argument itself
/// otherwise.
template <int Index, class T>
const auto& trace_arg(const T& a, const SymTensor* syms) {
  if constexpr (is_concrete_v<T>) {
    return syms[Index];
  } else {
    (void)syms;
    return a;
  }
}

template <class F, std::size_t... I, class... Args>
auto call_traced(F& fn, std::index_sequence<I...>, const SymTensor* syms, const Args&... args) {
  return fn(trace_arg<tensor_index<I, Args...>()>(args, syms)...);
}

/// Records `fn` called on `args` into `tracer`: tensor arguments become the graph's inputs (in
/// argument order), the returned tensors its outputs. Returns false after reporting an error.
template <class F, class... Args>
bool trace_model(F& fn, Tracer& tracer, const Args&... args) {
  Graph& g = tracer.graph;
  // Inputs are created first, in argument order (function arguments have no evaluation order).
  SymTensor syms[kMaxGuardArgs];
  int n = 0;
  auto make_input = [&](const auto& a) {
    using A = std::remove_cv_t<std::remove_reference_t<decltype(a)>>;
    if constexpr (is_concrete_v<A>) {
      Node in;
      in.op = Op::input;
      in.dtype = dtype_of_v<elem_t<A>>;
      in.shape = a.shape();
      syms[n] = SymTensor(&tracer, g.add(in));
      ++n;
    }
  };
  (make_input(args), ...);
  auto out = call_traced(fn, std::index_sequence_for<Args...>{}, syms, args...);
  using RS = decltype(out);
  static_assert(Results<RS>::count > 0, "kiln::compile: the model must return tensors");
  Results<RS>::each(out, [&](SymTensor& t, int) {
    if (!t.valid() || t.tracer() != &tracer) {
      g.set_error(Status(Errc::invalid_argument) << "compile: the model returned a tensor that is not part of its trace");
      return;
    }
    g.add_output(t.id());
  });
  if (!g.ok()) {
    fail(Status(g.status().code()) << "while tracing: " << g.status().message());
    return false;
  }
  return true;
}

}  // namespace detail

template <class Fn>
struct Eager;

template <class Fn, class Backend = std::nullptr_t>
class Compiled {
 public:
  explicit Compiled(Fn fn, CompileOptions opts = {}) : fn_(std::move(fn)), opts_(opts) {}
  Compiled(Fn fn, Backend backend, CompileOptions opts = {})
      : fn_(std::move(fn)), backend_(std::move(backend)), opts_(opts) {}

  /// Runs the model; traces and plans at the first call for these argument types and shapes.
  /// The result tensors are allocated for the caller (see run_into for the allocation-free path).
  template <class... Args>
  auto operator()(const Args&... args) {
    using R = std::invoke_result_t<Fn&, const Args&...>;
    bool fallback = false;
    Entry* e = lookup(fallback, args...);
    if (fallback) return run_eagerly(args...);
    if (!e) return R{};
    R result{};
    void* outs[kMaxGraphIO];  // one per model output, set below (no zeroing per call)
    bool ok = true;
    detail::Results<R>::each(result, [&](auto& t, int k) {
      using T = typename std::remove_reference_t<decltype(t)>::value_type;
      if (!ok || !check_output(*e, k, dtype_of_v<T>)) {
        ok = false;
        return;
      }
      t = Tensor<T>(e->out_shapes[k], uninitialized);  // the plan writes every element
      outs[k] = t.data();
    });
    if (!ok) return R{};
    run_bound(*e, outs, args...);
    return result;
  }

  /// Runs the model into caller-owned outputs (a TensorView or Tensor, or a std::tuple of them
  /// — std::tie(a, b) works —, in the model's result order): after the first call this allocates nothing. Returns false (error
  /// reported) when an output's shape or dtype does not match the plan.
  template <class Out, class... Args>
  bool run_into(const Out& outputs, const Args&... args) {
    bool fallback = false;
    Entry* e = lookup(fallback, args...);
    void* outs[kMaxGraphIO];  // one per model output, set below (no zeroing per call)
    if (fallback) {  // no plan for this call: run eagerly and copy
      auto r = run_eagerly(args...);
      bool ok = true;
      each_view(outputs, [&](auto& v, int k) {
        detail::Results<decltype(r)>::each(r, [&](auto& t, int j) {
          if (j != k || !ok) return;
          if (t.shape() != v.shape()) ok = false;
          else std::memcpy(static_cast<void*>(v.data()), t.data(), t.bytes());
        });
      });
      return ok;
    }
    if (!e) return false;
    bool ok = true;
    int count = 0;
    each_view(outputs, [&](auto& v, int k) {
      using T = typename std::remove_reference_t<decltype(v)>::value_type;
      ++count;
      if (!ok || !check_output(*e, k, dtype_of_v<T>)) {
        ok = false;
        return;
      }
      if (v.shape() != e->out_shapes[k] || (v.data() == nullptr && v.size() > 0)) {
        fail(Status(Errc::buffer_too_small) << "run_into: output " << k << " has shape " << v.shape()
                                            << ", the model produces " << e->out_shapes[k]);
        ok = false;
        return;
      }
      outs[k] = static_cast<void*>(v.data());
    });
    if (ok && count != e->num_outputs) {
      fail(Status(Errc::invalid_argument) << "run_into: " << count << " output views for " << e->num_outputs
                                          << " model outputs");
      ok = false;
    }
    if (ok) run_bound(*e, outs, args...);
    return ok;
  }

  /// Traces and plans for these arguments without running (stats() then reports the arena).
  /// False after a reported error, or when the cache is full.
  template <class... Args>
  bool prepare(const Args&... args) {
    bool fallback = false;
    return lookup(fallback, args...) != nullptr;
  }

  Stats stats() const {
    Stats s = stats_;
    if (last_ && last_->exe) {
      const runtime::PlanInfo& p = engine::plan_info(*last_->exe);
      s.nodes = p.nodes;
      s.groups = p.groups;
      s.kernels = p.kernels;
      s.folded = p.folded;
      s.cse = p.cse;
      s.simplified = p.simplified;
      s.dead = p.dead;
      s.in_place = p.in_place;
      s.updates = p.updates;
      s.aliased_updates = p.aliased_updates;
      s.arena_bytes = p.arena_bytes;
      s.lower_bound = p.lower_bound;
      s.packed_weight_bytes = p.packed_weight_bytes;
      s.offload = p.offload;
    }
    return s;
  }

  /// The plan of the most recent call (nullptr before the first call or with a custom backend).
  const runtime::Executable* executable() const { return last_ ? last_->exe.get() : nullptr; }
  /// The graph after the passes, as planned (nullptr before the first call or with a custom backend).
  const Graph* planned_graph() const { return last_ && last_->exe ? &engine::planned_graph(*last_->exe) : nullptr; }
  /// The graph as traced, before any pass (nullptr before the first call).
  const Graph* traced_graph() const { return last_ ? &last_->traced->graph : nullptr; }
  /// With CompileOptions::observe: traced node `id`'s value in the most recent call (a dense copy;
  /// ids as traced_graph() numbers them; the call's inputs and outputs were copied when it ran,
  /// so they need not outlive it). An empty tensor (error reported) otherwise.
  template <class T = float>
  Tensor<T> observed(int id) const {
    const Graph* g = traced_graph();
    if (!opts_.observe || !last_ || !last_->exe || !g || id < 0 || id >= g->size() ||
        (*g)[id].dtype != dtype_of_v<T>) {
      fail(Status(Errc::invalid_argument) << "observed(" << id << "): needs CompileOptions::observe, a call first, "
                                          << "a node of the traced graph and its dtype");
      return Tensor<T>();
    }
    Tensor<T> v((*g)[id].shape, uninitialized);
    engine::read_value(*last_->exe, id, last_->last_in, last_->last_out, last_->arena, v.data());
    return v;
  }
  /// Forgets every specialisation (e.g. after changing captured weights in place).
  void reset() {
    cache_.clear();
    last_ = nullptr;
  }

#ifndef KILN_NO_IOSTREAM
  /// One row per node of the planned graph: id, op, inputs, shape, dtype, fused group, memory.
  void print_graph(std::ostream& os) const;
  /// One row per kernel launch: what it computes, its loop, its epilogue, its scratch.
  void print_plan(std::ostream& os) const;
#endif

 private:
  struct Entry {
    Guard guard;
    std::unique_ptr<Tracer> traced;  // the recorded graph and the constants it owns
    std::unique_ptr<runtime::Executable, engine::ExecutableDeleter> exe;  // null: custom backend
    BackendFn backend_fn;
    std::unique_ptr<std::uint8_t[]> arena_storage;
    void* arena = nullptr;
    Shape out_shapes[kMaxGraphIO];
    DType out_dtypes[kMaxGraphIO]{};
    Shape in_shapes[kMaxGraphIO];
    int num_outputs = 0, num_inputs = 0;
    const void* last_in[kMaxGraphIO]{};  // observe mode: copies of the most recent call's inputs
    void* last_out[kMaxGraphIO]{};       // and outputs, which observed() reads
    std::vector<std::vector<std::uint8_t>> kept_io;
  };

  /// The cached entry for these arguments, tracing one if needed; `fallback` when the cache is
  /// full (the caller runs eagerly); nullptr after a reported error.
  template <class... Args>
  Entry* lookup(bool& fallback, const Args&... args) {
    static_assert(sizeof...(Args) <= kMaxGuardArgs, "kiln::compile: too many arguments");
    ++stats_.calls;
    // The last entry used is the likely one; compare the arguments in place (no key is built).
    if (last_ && guard_matches(last_->guard, args...)) {
      ++stats_.cache_hits;
      return last_;
    }
    return lookup_miss(fallback, args...);
  }
  // Out of line: the tracing path's frame cost a batch-1 call more than its guard check.
  template <class... Args>
#if defined(__GNUC__) || defined(__clang__)
  __attribute__((noinline))
#endif
  Entry* lookup_miss(bool& fallback, const Args&... args) {
    Entry* e = nullptr;
    for (std::size_t c = 0; !e && c < cache_.size(); ++c)
      if (guard_matches(cache_[c]->guard, args...)) e = cache_[c].get();
    if (e) {
      ++stats_.cache_hits;
    } else {
      if (!cache_.empty()) ++stats_.guard_failures;
      if (static_cast<int>(cache_.size()) >= opts_.cache_limit) {
        ++stats_.eager_fallbacks;
        fallback = true;
        return nullptr;
      }
      e = trace(make_guard(args...), args...);
    }
    last_ = e;
    return e;
  }

  bool check_output(const Entry& e, int k, DType t) const {
    if (k < e.num_outputs && e.out_dtypes[k] == t) return true;
    fail(Status(Errc::dtype_mismatch) << "compile: output " << k << " has dtype " << e.out_dtypes[k]
                                      << " but the caller expects " << t);
    return false;
  }

  /// Past the cache limit: kiln::eager's path (so a training step, which needs its graph for
  /// grad and assign, still runs).
  template <class... Args>
  auto run_eagerly(const Args&... args) {
    return Eager<std::reference_wrapper<Fn>>{std::ref(fn_)}(args...);
  }

  template <class... Args>
  void run_bound(Entry& e, void* const* outs, const Args&... args) {
    const void* ins[kMaxGuardArgs];  // one per tensor argument, set below
    int ni = 0;
    (bind_input(ins, ni, args), ...);
    run_entry(e, ins, outs);
    detail::check_step_flags(e.traced->graph, ins);  // an optimiser skipped a non-finite step
  }

  /// Calls f(view, k) for each output: a TensorView/Tensor, or a tuple of them. A Tensor is
  /// written through a view of its own buffer (never a copy).
  template <class V, class F>
  static void each_view(const V& v, F&& f) {
    if constexpr (detail::is_concrete_v<V>) {
      auto view = as_view(v);
      f(view, 0);
    } else {
      std::apply([&](const auto&... views) {
        int k = 0;
        (each_one(views, f, k), ...);
      }, v);
    }
  }
  template <class V, class F>
  static void each_one(const V& v, F& f, int& k) {
    auto view = as_view(v);
    f(view, k++);
  }
  template <class T>
  static TensorView<T> as_view(const TensorView<T>& v) { return v; }
  template <class T>
  static TensorView<T> as_view(const Tensor<T>& t) {  // writes go to t's (mutable) buffer
    return TensorView<T>(const_cast<T*>(t.data()), t.shape());
  }

  template <class T>
  static void bind_input(const void** ins, int& n, const T& a) {
    if constexpr (detail::is_concrete_v<T>) ins[n++] = static_cast<const void*>(a.data());
    else (void)a;
  }

  /// Whether a cached guard admits these arguments: the same tests as Guard::matches, without
  /// materialising a key.
  template <class... Args>
  static bool guard_matches(const Guard& g, const Args&... args) {
    if (g.count != static_cast<int>(sizeof...(Args))) return false;
    int i = 0;
    bool ok = true;
    auto check = [&](const auto& a) {
      using A = std::remove_cv_t<std::remove_reference_t<decltype(a)>>;
      const Guard::Arg& slot = g.args[i++];
      if constexpr (detail::is_concrete_v<A>)
        ok = ok && slot.tensor && slot.dtype == dtype_of_v<detail::elem_t<A>> && slot.shape == a.shape();
      else
        ok = ok && !slot.tensor && slot.identity == static_cast<const void*>(&a);
    };
    (check(args), ...);
    return ok;
  }

  template <class... Args>
  static Guard make_guard(const Args&... args) {
    Guard g;
    auto add = [&g](const auto& a) {
      using A = std::remove_cv_t<std::remove_reference_t<decltype(a)>>;
      Guard::Arg& slot = g.args[g.count++];
      if constexpr (detail::is_concrete_v<A>) {
        slot.tensor = true;
        slot.dtype = dtype_of_v<detail::elem_t<A>>;
        slot.shape = a.shape();
      } else {
        slot.identity = static_cast<const void*>(&a);
      }
    };
    (add(args), ...);
    return g;
  }

  template <class... Args>
  Entry* trace(const Guard& key, const Args&... args) {
    auto e = std::make_unique<Entry>();
    e->guard = key;
    e->traced = std::make_unique<Tracer>();
    Graph& g = e->traced->graph;
    if (!detail::trace_model(fn_, *e->traced, args...)) return nullptr;
    ++stats_.traces;
    e->num_outputs = g.num_outputs();
    e->num_inputs = g.num_inputs();
    for (int k = 0; k < g.num_outputs(); ++k) {
      e->out_shapes[k] = g[g.output(k)].shape;
      e->out_dtypes[k] = g[g.output(k)].dtype;
    }
    for (int k = 0; k < g.num_inputs(); ++k) e->in_shapes[k] = g[g.input(k)].shape;
    if constexpr (std::is_same_v<Backend, std::nullptr_t>) {
      Status st;
      e->exe.reset(opts_.observe ? engine::build_observing(g, st)
                                 : engine::build(g, st, opts_.offload.active() ? &opts_.offload : nullptr));
      if (!e->exe) {
        fail(st);
        return nullptr;
      }
      const std::size_t bytes = engine::arena_bytes(*e->exe);
      e->arena_storage.reset(new std::uint8_t[bytes + kAlignment]);
      e->arena = align_up(e->arena_storage.get());
    } else {
      std::vector<TensorView<const float>> examples;
      auto add = [&](const auto& a) {
        using A = std::remove_cv_t<std::remove_reference_t<decltype(a)>>;
        if constexpr (detail::is_concrete_v<A>)
          examples.emplace_back(reinterpret_cast<const float*>(a.data()), a.shape());
      };
      (add(args), ...);
      e->backend_fn = backend_(static_cast<const Graph&>(g), examples);
    }
    cache_.push_back(std::move(e));
    return cache_.back().get();
  }

  void run_entry(Entry& e, const void* const* ins, void* const* outs) {
    if (e.exe) {
      engine::run(*e.exe, ins, outs, e.arena);
      if (opts_.observe) keep_io(e, ins, outs);
      return;
    }
    TensorView<const float> iv[kMaxGraphIO];
    TensorView<float> ov[kMaxGraphIO];
    for (int k = 0; k < e.num_inputs; ++k) iv[k] = TensorView<const float>(static_cast<const float*>(ins[k]), e.in_shapes[k]);
    for (int k = 0; k < e.num_outputs; ++k) ov[k] = TensorView<float>(static_cast<float*>(outs[k]), e.out_shapes[k]);
    e.backend_fn(iv, e.num_inputs, ov, e.num_outputs);
  }

  /// Observe mode: copies of a call's inputs and outputs (observed() reads nodes that live there).
  static void keep_io(Entry& e, const void* const* ins, void* const* outs) {
    const Graph& g = e.traced->graph;
    e.kept_io.resize(static_cast<std::size_t>(e.num_inputs + e.num_outputs));
    for (int k = 0; k < e.num_inputs + e.num_outputs; ++k) {
      const bool in = k < e.num_inputs;
      const Node& n = g[in ? g.input(k) : g.output(k - e.num_inputs)];
      std::vector<std::uint8_t>& v = e.kept_io[static_cast<std::size_t>(k)];
      v.resize(static_cast<std::size_t>(n.shape.numel()) * dtype_size(n.dtype) + 1);
      std::memcpy(v.data(), in ? ins[k] : outs[k - e.num_inputs], v.size() - 1);
      if (in) e.last_in[k] = v.data();
      else e.last_out[k - e.num_inputs] = v.data();
    }
  }

  Fn fn_;
  Backend backend_{};
  CompileOptions opts_;
  std::vector<std::unique_ptr<Entry>> cache_;
  Entry* last_ = nullptr;
  Stats stats_;
};

/// Wraps a model for compilation at its first call.
template <class Fn>
Compiled<Fn> compile(Fn fn, CompileOptions opts = {}) {
  return Compiled<Fn>(std::move(fn), opts);
}
/// Wraps a model for a custom backend: backend(const Graph&, const std::vector<TensorView<const float>>&
/// example_inputs) -> BackendFn, called once per specialisation.
template <class Fn, class Backend, std::enable_if_t<!std::is_same_v<std::decay_t<Backend>, CompileOptions>, int> = 0>
Compiled<Fn, Backend> compile(Fn fn, Backend backend, CompileOptions opts = {}) {
  return Compiled<Fn, Backend>(std::move(fn), std::move(backend), opts);
}

/// The model run op by op (every intermediate materialised): the oracle and the baseline.
///
/// A function is first called directly on the concrete tensors, each op running at once. If it
/// calls kiln::grad, that cannot work (a concrete loss has no graph), so the call is redone
/// through the graph: the function is traced and its graph — forward and backward — is
/// interpreted node by node with the same eager kernels (no passes, no fusion; see
/// trace/interpret.hpp). This Eager object remembers it and goes through the graph directly on
/// later calls.
template <class Fn>
struct Eager {
  Fn fn;
  mutable bool through_graph = false;

  template <class... Args>
  auto operator()(const Args&... args) const {
    using R = std::invoke_result_t<const Fn&, const Args&...>;
    if (!through_graph) {
      detail::GradProbe probe;
      R direct = fn(args...);
      if (probe.hits == 0) return direct;
      through_graph = true;
    }
    return interpreted<R>(args...);
  }

 private:
  template <class R, class... Args>
  R interpreted(const Args&... args) const {
    Tracer tracer;
    if (!detail::trace_model(fn, tracer, args...)) return R{};
    const Graph& g = tracer.graph;
    const void* ins[kMaxGuardArgs]{};
    int ni = 0;
    auto bind = [&](const auto& a) {
      using A = std::remove_cv_t<std::remove_reference_t<decltype(a)>>;
      if constexpr (detail::is_concrete_v<A>) ins[ni++] = static_cast<const void*>(a.data());
    };
    (bind(args), ...);
    detail::Interpreter run(g);
    run.run(ins);
    detail::check_step_flags(g, ins);  // an optimiser skipped a non-finite step
    R result{};
    bool ok = true;
    detail::Results<R>::each(result, [&](auto& t, int k) {
      using T = typename std::remove_reference_t<decltype(t)>::value_type;
      const Node& out = g[g.output(k)];
      if (!ok || out.dtype != dtype_of_v<T>) {
        if (ok) fail(Status(Errc::dtype_mismatch) << "eager: output " << k << " has dtype " << out.dtype);
        ok = false;
        return;
      }
      t = Tensor<T>(out.shape, uninitialized);
      if (t.size()) std::memcpy(static_cast<void*>(t.data()), run.value(g.output(k)), t.bytes());
    });
    return ok ? result : R{};
  }
};
template <class Fn>
Eager<Fn> eager(Fn fn) {
  return Eager<Fn>{std::move(fn)};
}

#ifndef KILN_NO_IOSTREAM
template <class Fn, class Backend>
void Compiled<Fn, Backend>::print_graph(std::ostream& os) const {
  if (!last_) {
    os << "(not compiled yet: call the model once)\n";
    return;
  }
  if (!last_->exe) {
    os << "(custom backend) traced graph:\n";
    print_dot(os, last_->traced->graph);
    return;
  }
  engine::print_graph(os, *last_->exe);
}

template <class Fn, class Backend>
void Compiled<Fn, Backend>::print_plan(std::ostream& os) const {
  if (!last_ || !last_->exe) {
    os << "(no plan: not called yet, or a custom backend)\n";
    return;
  }
  engine::print_plan(os, *last_->exe);
}
#endif

}  // namespace kiln
