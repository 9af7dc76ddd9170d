// kiln/trace/nonfinite.hpp — reporting a training step that met NaN or Inf.
//
// An optimiser (train/optim.hpp) gates its whole update on "every gradient is finite" inside the
// graph, so a bad step changes no parameter and no optimiser state, and it records that verdict
// in a rank-0 step flag (Update::finite_flag). After each run the caller — kiln::compile's call
// or kiln::eager's — reads the flag (one float). Only when it is 0 does the diagnosis run: the
// traced graph is interpreted again node by node on the same inputs (the parameters are
// unchanged, so this recomputes the very same step) without write-back, and the first node in
// topological order whose output is non-finite although its inputs are finite is named in the
// error, with its shape and its inputs: that is where the NaN was born (a log of 0, a division
// by 0, an overflowing exp, or NaN already in an input or a parameter).
#pragma once

#include <cmath>

#include "../ir/graph.hpp"
#include "interpret.hpp"

namespace kiln::detail {

/// Whether the run that just ended had a step flag at 0 (an optimiser skipped its update).
inline bool step_skipped(const Graph& g) {
  for (int k = 0; k < g.num_updates(); ++k) {
    const Update& u = g.update(k);
    if (u.finite_flag && *static_cast<const float*>(g[u.param].data) == 0.f) return true;
  }
  return false;
}

/// Counts the NaN and infinite elements of a float value.
inline index_t count_nonfinite(const void* data, const Node& n, index_t* nans) {
  *nans = 0;
  if (n.dtype != DType::f32 || !data) return 0;
  const float* v = static_cast<const float*>(data);
  index_t bad = 0;
  for (index_t i = 0, e = n.shape.numel(); i < e; ++i) {
    if (std::isnan(v[i])) ++*nans;
    if (!std::isfinite(v[i])) ++bad;
  }
  return bad;
}

inline void describe_for_status(Status& s, const Graph& g, int id) {
  const Node& n = g[id];
  s << '%' << id << ' ';
  if (n.op == Op::elementwise) s << ewfn_name(n.fn);
  else if (n.op == Op::input) s << "input " << n.index;
  else s << op_name(n.op);
  s << ' ' << n.shape;
}

/// The error for a step whose optimiser found a non-finite gradient: names the node where the
/// first non-finite value appeared (see the header comment). `inputs` are the step's inputs.
inline Status explain_skipped_step(const Graph& g, const void* const* inputs) {
  Interpreter again(g);
  again.run(inputs, false);
  Status s(Errc::non_finite);
  s << "training step skipped, parameters unchanged: ";
  for (int id = 0; id < g.size(); ++id) {
    const Node& n = g[id];
    index_t nans = 0;
    const index_t bad = count_nonfinite(again.value(id), n, &nans);
    if (bad == 0) continue;
    bool inputs_finite = true;
    for (int k = 0; k < n.num_inputs && inputs_finite; ++k) {
      index_t ignored = 0;
      inputs_finite = count_nonfinite(again.value(n.inputs[k]), g[n.inputs[k]], &ignored) == 0;
    }
    if (!inputs_finite) continue;
    describe_for_status(s, g, id);
    const bool leaf = n.op == Op::input || n.op == Op::parameter || n.op == Op::constant;
    s << (leaf ? " holds " : " gives ") << static_cast<long long>(bad) << (nans == bad ? " NaN" : nans ? " NaN/Inf" : " Inf")
      << (leaf ? "" : " from finite inputs");
    for (int k = 0; k < n.num_inputs && k < 2; ++k) {
      s << (k ? ", " : " (");
      describe_for_status(s, g, n.inputs[k]);
    }
    if (n.num_inputs > 0) s << ')';
    return s;
  }
  // Every value finite when interpreted: the fused plan met a non-finite value the op-by-op run
  // does not (a rounding-order difference at the edge of the float range).
  s << "a gradient was non-finite in the compiled step, but not when the step is re-run op by op";
  return s;
}

/// After a run of graph `g` on `inputs`: reports a skipped step (fail()), else nothing.
inline void check_step_flags(const Graph& g, const void* const* inputs) {
  if (g.num_updates() > 0 && step_skipped(g)) fail(explain_skipped_step(g, inputs));
}

}  // namespace kiln::detail
