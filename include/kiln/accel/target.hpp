// kiln/accel/target.hpp — what an accelerator declares it can run (TVM BYOC's annotation side).
//
// A Target ties together, under one name, the single ops a device accepts (a predicate that may
// look at attributes, shapes and dtypes) and the composite patterns it runs as one call
// (e.g. "linear_bias_relu": matmul -> add -> relu). Plain data and function pointers: no virtual
// dispatch, nothing allocated, usable in a constant expression and in firmware that never links
// the run-time half of the hook.
#pragma once

#include "../ir/graph.hpp"

namespace kiln::accel {

inline constexpr int kMaxPatternSteps = 6;

/// One op of a composite pattern. An elementwise step names its function or accepts any.
struct PatternStep {
  Op op = Op::elementwise;
  EwFn fn = EwFn::identity;
  bool any_fn = false;

  constexpr bool matches(const Node& n) const {
    if (n.op != op) return false;
    return op != Op::elementwise || any_fn || n.fn == fn;
  }
};
constexpr PatternStep step(Op op) { return PatternStep{op, EwFn::identity, false}; }
constexpr PatternStep step(EwFn fn) { return PatternStep{Op::elementwise, fn, false}; }
/// Wildcard: any elementwise function (an activation slot, say).
constexpr PatternStep any_elementwise() { return PatternStep{Op::elementwise, EwFn::identity, true}; }

/// A chain the device runs as one call: steps[0] is the chain's first node and each next step
/// consumes the previous one. Intermediate values must have no other use (they never leave the
/// device); the last one may be used anywhere. The name is what the device's compile step sees.
struct Pattern {
  const char* name = "";
  PatternStep steps[kMaxPatternSteps]{};
  int num_steps = 0;
};

/// The annotation half of a backend. `supports` may be null (patterns only); it is called on
/// non-leaf nodes only and may read anything in the graph. With exceptions enabled a predicate
/// that throws counts as a refusal (it cannot corrupt the partition).
struct Target {
  const char* name = "";
  bool (*supports)(const Graph& g, int node) = nullptr;
  const Pattern* patterns = nullptr;
  int num_patterns = 0;
};

}  // namespace kiln::accel
