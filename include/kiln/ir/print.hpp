// kiln/ir/print.hpp — the graph as a table or as Graphviz DOT (host convenience).
#pragma once

#ifndef KILN_NO_IOSTREAM
#include <ostream>

#include "graph.hpp"

namespace kiln {

/// Short description of what a node computes, e.g. "relu", "sum(axis=1)", "linear".
inline void describe_node(std::ostream& os, const Node& n) {
  switch (n.op) {
    case Op::elementwise:
      os << ewfn_name(n.fn);
      if (n.fn == EwFn::leaky_relu || n.fn == EwFn::pow_scalar) os << '(' << n.p0 << ')';
      if (n.fn == EwFn::clamp) os << '(' << n.p0 << ", " << n.p1 << ')';
      return;
    case Op::reduce: os << reduce_name(n.rk) << "(axis=" << n.axis << (n.keepdim ? ", keepdim" : "") << ')'; return;
    case Op::softmax:
    case Op::log_softmax:
    case Op::concat: os << op_name(n.op) << "(axis=" << n.axis << ')'; return;
    case Op::matmul: os << (n.trans_b ? "linear" : "matmul"); return;
    case Op::scalar: os << "scalar(" << n.p0 << ')'; return;
    case Op::input: os << "input " << n.index; return;
    case Op::slice: os << "slice(axis=" << n.axis << ", start=" << n.start << ", step=" << n.step << ')'; return;
    case Op::unslice: os << "unslice(axis=" << n.axis << ", start=" << n.start << ", step=" << n.step << ')'; return;
    case Op::permute: {
      os << "permute(";
      for (int i = 0; i < n.shape.rank(); ++i) os << (i ? "," : "") << int(n.perm[i]);
      os << ')';
      return;
    }
    case Op::conv2d:
    case Op::pool2d: {  // compact, e.g. "conv2d 3x3/2 p1 g8", "max_pool2d 2x2/2"
      const Window2d& w = n.win;
      os << (n.op == Op::conv2d ? "conv2d " : n.rk == ReduceKind::max ? "max_pool2d " : "avg_pool2d ") << w.kernel_h
         << 'x' << w.kernel_w << '/' << w.stride_h;
      if (w.stride_w != w.stride_h) os << 'x' << w.stride_w;
      const bool uniform = w.pad_top == w.pad_bottom && w.pad_top == w.pad_left && w.pad_top == w.pad_right;
      if (uniform && w.pad_top) os << " p" << w.pad_top;
      if (!uniform) os << " p" << w.pad_top << ',' << w.pad_bottom << ',' << w.pad_left << ',' << w.pad_right;
      if (w.dilation_h != 1 || w.dilation_w != 1) os << " d" << w.dilation_h << 'x' << w.dilation_w;
      if (w.groups != 1) os << " g" << w.groups;
      if (n.op == Op::pool2d && n.rk != ReduceKind::max && !w.count_include_pad) os << " excl";
      return;
    }
    case Op::pad:
      os << "pad(" << n.win.pad_top << ',' << n.win.pad_bottom << ',' << n.win.pad_left << ',' << n.win.pad_right
         << "; " << n.p0 << ')';
      return;
    case Op::upsample: os << "upsample(" << n.win.stride_h << 'x' << n.win.stride_w << ')'; return;
    case Op::quantize:
    case Op::qlinear:
    case Op::qconv2d:
    case Op::qpool2d:
    case Op::qadd:
    case Op::qsoftmax:
    case Op::qmul:
    case Op::qlogistic:
    case Op::qtanh:
    case Op::qhard_swish:
    case Op::qmean:
    case Op::qpad:
    case Op::qslice:
    case Op::qconcat: {  // e.g. "qconv2d 3x3/2 g8 relu -> 0.05,-128": the op, its activation, its output quant
      if (n.op == Op::qconv2d || n.op == Op::qpool2d) {
        const Window2d& w = n.win;
        os << (n.op == Op::qconv2d ? "qconv2d " : n.rk == ReduceKind::max ? "qmax_pool2d " : "qavg_pool2d ")
           << w.kernel_h << 'x' << w.kernel_w << '/' << w.stride_h;
        if (w.groups != 1) os << " g" << w.groups;
      } else {
        os << op_name(n.op);
      }
      if (n.fn != EwFn::identity) os << ' ' << ewfn_name(n.fn);
      os << " -> " << n.quant.scale << ',' << n.quant.zero_point;
      return;
    }
    default: os << op_name(n.op); return;
  }
}

inline std::ostream& operator<<(std::ostream& os, const Shape& s) {
  os << '[';
  for (int i = 0; i < s.rank(); ++i) os << (i ? ", " : "") << s[i];
  return os << ']';
}

/// The graph as a table: one row per node (id, op, inputs, shape, dtype), then the outputs.
inline void print_table(std::ostream& os, const Graph& g) {
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g[i];
    os << "  %" << i << " = ";
    describe_node(os, n);
    if (n.num_inputs) {
      os << '(';
      for (int k = 0; k < n.num_inputs; ++k) os << (k ? ", %" : "%") << n.inputs[k];
      os << ')';
    }
    os << " : " << n.shape << ' ' << dtype_name(n.dtype) << '\n';
  }
  os << "  return";
  for (int k = 0; k < g.num_outputs(); ++k) os << (k ? ", %" : " %") << g.output(k);
  os << '\n';
}

/// The graph in Graphviz DOT.
inline void print_dot(std::ostream& os, const Graph& g) {
  os << "digraph kiln {\n  node [shape=box, fontname=monospace];\n";
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g[i];
    os << "  n" << i << " [label=\"%" << i << ' ';
    describe_node(os, n);
    os << "\\n" << n.shape << ' ' << dtype_name(n.dtype) << "\"];\n";
    for (int k = 0; k < n.num_inputs; ++k) os << "  n" << n.inputs[k] << " -> n" << i << ";\n";
  }
  for (int k = 0; k < g.num_outputs(); ++k) os << "  n" << g.output(k) << " -> out" << k << ";\n";
  os << "}\n";
}

}  // namespace kiln
#endif
