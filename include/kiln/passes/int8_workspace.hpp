// kiln/passes/int8_workspace.hpp — the scratch an int8 op's step needs during its run.
//
// An int8 kernel reads dense operands: an i8 (or quantize's f32) input that is a strided view
// (a permute or slice) is first copied densely, and a grouped qconv2d gathers each group's input
// channels and its output channels. Both the run-time Executable (runtime/int8_steps.hpp) and a
// compile-time plan (kiln::plan) reserve these bytes in the arena for the step, from this one
// rule: copies first-operand-first after the grouped conv's slices, each 64-byte aligned.
#pragma once

#include "layout.hpp"

namespace kiln::passes {

/// Bytes of a grouped qconv2d's channel slices (one group's input and output); 0 for groups 1
/// and for depthwise (groups == C: its own kernel).
constexpr std::size_t int8_grouped_conv_bytes(const Node& n, const Shape& x) {
  const int groups = n.win.groups;
  if (n.op != Op::qconv2d || groups <= 1 || x.rank() != 4 || groups == x[3]) return 0;
  return static_cast<std::size_t>((x.numel() + n.shape.numel()) / groups);
}

/// Arena bytes the step of int8 node `id` needs: the grouped conv's slices, then a dense copy of
/// each activation operand (input 0, and a binary op's input 1) that is not contiguous.
constexpr std::size_t int8_workspace_bytes(const Graph& g, const Layout* layouts, int id) {
  const Node& n = g[id];
  std::size_t bytes = align_up(int8_grouped_conv_bytes(n, g[n.inputs[0]].shape));
  const int operands = int8_activation_operands(n.op);
  for (int k = 0; k < operands; ++k) {
    const Node& in = g[n.inputs[k]];
    if (!is_contiguous(in.shape, layouts[n.inputs[k]]))
      bytes += align_up(static_cast<std::size_t>(in.shape.numel()) * dtype_size(in.dtype));
  }
  return bytes;
}

}  // namespace kiln::passes
