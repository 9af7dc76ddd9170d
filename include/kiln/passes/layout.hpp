// kiln/passes/layout.hpp — where each value's elements sit relative to a materialised buffer.
//
// permute, slice and expand never copy: they become a different (offset, strides) over
// their input's buffer, and every kernel reads through strides. reshape is a
// view when its input is contiguous; otherwise it must be materialised, which
// the fusion pass does by giving it a copy kernel.
#pragma once

#include "../ir/graph.hpp"

namespace kiln::passes {

struct Layout {
  int base = -1;       // node whose buffer holds the elements (itself when materialised)
  index_t offset = 0;  // in elements, from the base buffer's start
  Strides strides;     // in elements, one per dimension of this node's shape
};

constexpr bool is_contiguous(const Shape& s, const Layout& l) {
  const Strides c = contiguous_strides(s);
  for (int i = 0; i < s.rank(); ++i)
    if (s[i] != 1 && l.strides[i] != c[i]) return false;
  return true;
}

/// Whether node `id` needs its own buffer (is computed by a kernel) rather than aliasing another.
constexpr bool reshape_is_view(const Graph& g, const Layout* layouts, int id) {
  const Node& n = g.node(id);
  return n.op == Op::reshape && is_contiguous(g.node(n.inputs[0]).shape, layouts[n.inputs[0]]);
}

/// Computes layouts for every node in topological order.
constexpr void compute_layouts(const Graph& g, Layout* out) {
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g.node(i);
    Layout l;
    if (n.op == Op::permute) {
      const Layout& in = out[n.inputs[0]];
      l.base = in.base;
      l.offset = in.offset;
      for (int d = 0; d < n.shape.rank(); ++d) l.strides[d] = in.strides[n.perm[d]];
    } else if (n.op == Op::slice) {
      const Layout& in = out[n.inputs[0]];
      l = in;
      l.offset += n.start * in.strides[n.axis];
      l.strides[n.axis] = in.strides[n.axis] * n.step;
    } else if (n.op == Op::expand) {  // broadcast dims read the same element: stride 0
      const Layout& in = out[n.inputs[0]];
      l.base = in.base;
      l.offset = in.offset;
      l.strides = broadcast_strides(g.node(n.inputs[0]).shape, in.strides, n.shape);
    } else if (n.op == Op::reshape && is_contiguous(g.node(n.inputs[0]).shape, out[n.inputs[0]])) {
      const Layout& in = out[n.inputs[0]];
      l.base = in.base;
      l.offset = in.offset;
      l.strides = contiguous_strides(n.shape);
    } else {
      l.base = i;
      l.strides = contiguous_strides(n.shape);
    }
    out[i] = l;
  }
}

/// Strides that read value `id` (with layout l) broadcast to `loop` (NumPy alignment from the right).
constexpr Strides operand_strides(const Shape& value_shape, const Layout& l, const Shape& loop) {
  return broadcast_strides(value_shape, l.strides, loop);
}

}  // namespace kiln::passes
