// kiln/trace/grad.hpp — kiln::grad(loss, a, b, ...): gradients inside a traced function.
//
// Inside kiln::compile (and kiln::eager, which traces a function that calls grad) the loss is a
// SymTensor: grad appends the backward of the loss to the trace (passes/autodiff.hpp) and returns
// the gradients as SymTensors, so the whole training step is one graph that the passes simplify,
// fuse and plan like any other. A concrete loss has no graph behind it: grad then only tells
// kiln::eager that the function needs one (see GradProbe) or reports an error.
#pragma once

#include <tuple>
#include <utility>

#include "../ops.hpp"
#include "../passes/autodiff.hpp"

namespace kiln {

namespace detail {

/// Set by kiln::eager while it calls a function directly on concrete tensors: a grad call then
/// counts itself here instead of failing, and eager runs the function again through its graph.
struct GradProbe {
  static int*& active() {
    thread_local int* current = nullptr;
    return current;
  }
  GradProbe() : saved_(active()) { active() = &hits; }
  ~GradProbe() { active() = saved_; }
  GradProbe(const GradProbe&) = delete;
  GradProbe& operator=(const GradProbe&) = delete;
  int hits = 0;

 private:
  int* saved_;
};

template <class T> using as_sym = SymTensor;

template <class W>
int node_of(Tracer& t, const W& w) {
  if constexpr (is_param_v<W>) return node_in(t, w);
  else return w.id();
}
template <class W>
const Tracer* tracer_or(const Tracer* t, const W& w) {
  if constexpr (is_param_v<W>) return t;
  else return w.tracer();
}
template <class T> using as_float_tensor = Tensor<float>;

template <class R, std::size_t... I>
R sym_grads(Tracer* t, const int* ids, std::index_sequence<I...>) {
  return R(SymTensor(t, ids[I])...);
}

}  // namespace detail

/// Gradients of the scalar `loss` with respect to each of `wrt`, as a std::tuple in the same order
/// (`auto [gw, gb] = kiln::grad(loss, w, b);`). Each gradient has its tensor's shape; one that the
/// loss does not depend on (or depends on only through comparisons) is zeros. Call it inside a
/// function run by kiln::compile or kiln::eager, on tensors of that function's trace.
template <class L, class... W>
auto grad(const L& loss, const W&... wrt) {
  static_assert(sizeof...(W) >= 1 && sizeof...(W) <= kMaxGraphIO, "kiln::grad: 1 to 16 tensors to differentiate");
  static_assert(detail::is_tensor_v<L> && (detail::is_tensor_v<W> && ...), "kiln::grad: arguments must be tensors");
  constexpr std::size_t n = sizeof...(W);
  if constexpr (detail::is_sym_v<L>) {
    static_assert(((detail::is_sym_v<W> || detail::is_param_v<W>) && ...),
                  "kiln::grad: inside a traced function, differentiate with respect to its tensor arguments, "
                  "values computed from them, or kiln::Parameters: a captured tensor is a constant");
    using R = std::tuple<detail::as_sym<W>...>;
    Tracer* t = loss.tracer();
    if (!t || !loss.valid()) return R{};  // an earlier error is already recorded in the trace
    const int ids[n] = {detail::node_of(*t, wrt)...};
    const Tracer* tracers[n] = {detail::tracer_or(t, wrt)...};
    for (std::size_t i = 0; i < n; ++i) {
      if (tracers[i] != t || ids[i] < 0) {
        t->graph.set_error(Status(Errc::invalid_argument)
                           << "grad: tensor " << static_cast<int>(i) << " is not part of the loss's trace");
        return R{};
      }
    }
    int grads[n]{};
    t->last_loss = loss.id();
    if (!passes::append_gradients(t->graph, loss.id(), ids, static_cast<int>(n), grads).ok()) return R{};
    return detail::sym_grads<R>(t, grads, std::index_sequence_for<W...>{});
  } else {
    using R = std::tuple<detail::as_float_tensor<W>...>;
    if (int* probe = detail::GradProbe::active()) {  // kiln::eager will rerun through the graph
      ++*probe;
      return R{};
    }
    fail(Status(Errc::invalid_argument) << "grad: the loss (shape " << loss.shape()
                                        << ") is a concrete tensor, so there is no graph to differentiate: "
                                           "call the function through kiln::eager(fn) or kiln::compile(fn)");
    return R{};
  }
}

/// Gives parameter `p` the value `value` when the step ends (every read of p in the step sees
/// the old value). Inside kiln::compile / kiln::eager (which runs such a function through its
/// graph); `value` must have p's shape.
template <class V, std::enable_if_t<detail::is_tensor_v<V>, int> = 0>
void assign(Parameter& p, const V& value) {
  if constexpr (detail::is_sym_v<V>) {
    Tracer* t = value.tracer();
    if (!t || !value.valid()) return;  // an earlier error is already recorded
    const int old = detail::node_in(*t, p);
    if (t->update_gate >= 0)  // UpdateGate: keep the old value where the gate is 0
      t->graph.add_update(old, where(SymTensor(t, t->update_gate), value, SymTensor(t, old)).id());
    else
      t->graph.add_update(old, value.id());
  } else {
    if (int* probe = detail::GradProbe::active()) {  // kiln::eager reruns through the graph
      ++*probe;
      return;
    }
    fail(Status(Errc::invalid_argument) << "assign: outside a traced step (parameter " << p.shape()
                                        << "): call the function through kiln::eager(fn) or kiln::compile(fn)");
  }
}

namespace detail {

/// Records `flag` (rank 0: 1 when the step's gradients were finite, else 0) as the step flag the
/// caller of the run checks (Update::finite_flag): never gated, so it is written on every step.
inline void assign_finite_flag(Parameter& flag, const SymTensor& value) {
  Tracer* t = value.tracer();
  if (!t || !value.valid()) return;
  t->graph.add_update(node_in(*t, flag), value.id(), true);
}

}  // namespace detail

/// While alive, every kiln::assign of the trace that `mask` belongs to writes its new value only
/// where `mask` is non-zero and keeps the old one elsewhere. With a rank-0 mask a whole
/// optimiser step is taken or skipped in the graph (GradScaler skips steps whose gradients are
/// not finite this way), with no host round trip and no second plan.
class UpdateGate {
 public:
  /// A concrete mask (the function instantiated on plain tensors) gates nothing: assign() is
  /// only ever carried out in a trace.
  template <class M, std::enable_if_t<detail::is_tensor_v<M>, int> = 0>
  explicit UpdateGate(const M& mask) {
    if constexpr (detail::is_sym_v<M>) {
      tracer_ = mask.valid() ? mask.tracer() : nullptr;
      if (tracer_) {
        previous_ = tracer_->update_gate;
        tracer_->update_gate = mask.id();
      }
    } else {
      (void)mask;
    }
  }
  ~UpdateGate() {
    if (tracer_) tracer_->update_gate = previous_;
  }
  UpdateGate(const UpdateGate&) = delete;
  UpdateGate& operator=(const UpdateGate&) = delete;

 private:
  Tracer* tracer_ = nullptr;
  int previous_ = -1;
};

}  // namespace kiln
