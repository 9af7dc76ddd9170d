// kiln/runtime/observe.hpp — reading every node's value back from an observation plan (the
// compiled model's debug mode the precision doctor observes through, issue 7).
//
// An observation plan (Executable::build(..., observe = true), engine::build_observing) is the
// ordinary pipeline with three differences, so that after one run() every node's output exists
// and is mapped to the node that computed it:
//   - no graph rewrites (simplify, CSE, constant/batch-norm folding): node ids are the ids of the
//     graph given to build, which is what the caller knows (the doctor's float and int8 graphs);
//   - Fusion::observe: every node that computes is a step of its own, with the same kernels the
//     normal plan uses (a linear's bias add and ReLU become elementwise steps instead of the
//     GEMM's register epilogue; a softmax reads its producer's stored value) — a node that the
//     normal plan fuses is split out rather than reported as "fused";
//   - no memory reuse: every value's arena slot lives to the end of the run.
// Its results equal the normal plan's up to the rounding of those fusions (tests/test_doctor_observe.cpp
// measures it); it costs one arena slot per node and one launch per node: a debug mode.
#pragma once

#include "executable.hpp"

namespace kiln::runtime {

/// Node `node`'s value after exe.run(inputs, outputs, arena), copied densely into `dense`; false
/// when `exe` is not an observation plan or the node is out of range (views are read through
/// their base, leaves where they live).
inline bool read_value(const Executable& exe, int node, const void* const* inputs, void* const* outputs,
                       const void* arena, void* dense) {
  const Graph& g = exe.graph();
  const passes::Fusion& f = exe.fusion();
  if (!f.observe || node < 0 || node >= g.size()) return false;
  const Node& n = g[node];
  const passes::Layout& l = f.layouts[node];
  if (n.op == Op::scalar) {
    std::memcpy(dense, &n.p0, sizeof(float));
    return true;
  }
  if (l.base < 0) return false;
  const passes::Placement& p = exe.memory().place[l.base];
  const char* base = nullptr;
  switch (p.kind) {
    case passes::Storage::input: base = static_cast<const char*>(inputs[p.index]); break;
    case passes::Storage::output: base = static_cast<const char*>(outputs[p.index]); break;
    case passes::Storage::constant: base = static_cast<const char*>(g[l.base].data); break;
    case passes::Storage::arena: base = static_cast<const char*>(arena) + p.offset; break;
    case passes::Storage::scalar: base = reinterpret_cast<const char*>(&g[l.base].p0); break;
    case passes::Storage::parameter: base = static_cast<const char*>(g[p.index].data); break;
    case passes::Storage::none: return false;
  }
  strided_copy(base + l.offset * static_cast<index_t>(dtype_size(n.dtype)), n.dtype, n.shape, l.strides, dense);
  return true;
}

}  // namespace kiln::runtime
