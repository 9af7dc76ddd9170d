// kiln/runtime/plan_print.hpp — human-readable views of a plan (print_graph, print_plan).
//
// Host convenience (iostream): not compiled with KILN_NO_IOSTREAM. Non-template, so every model
// shares one copy instead of instantiating the printers per Compiled<Fn>.
#pragma once

#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>

#include "../accel/report_print.hpp"
#include "../ir/print.hpp"
#include "executable.hpp"

namespace kiln::runtime {

/// One row per node of the planned graph: id, op, inputs, shape, dtype, fused group, memory.
inline void print_graph(std::ostream& os, const Executable& x) {
  const Graph& g = x.graph();
  const passes::Fusion& f = x.fusion();
  const passes::MemoryPlan& m = x.memory();
  int step_of[kMaxNodes]{};
  for (int s = 0; s < f.num_groups; ++s) step_of[f.order[s]] = s;
  os << "  id  op                   inputs        shape            dtype  group            memory\n";
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g[i];
    std::ostringstream op, ins, shp, grp, mem;
    describe_node(op, n);
    for (int k = 0; k < n.num_inputs; ++k) ins << (k ? "," : "") << '%' << n.inputs[k];
    shp << n.shape;
    const int gi = f.group_of[i];
    if (gi >= 0) grp << 'k' << step_of[gi] << ' ' << passes::group_kind_name(f.groups[gi].kind);
    else grp << '-';
    if (gi >= 0 && f.groups[gi].kind == passes::GroupKind::offload) grp << " r" << f.groups[gi].region;
    const passes::Layout& l = f.layouts[i];
    const passes::Placement& p = m.place[l.base >= 0 ? l.base : i];
    if (l.base != i && l.base >= 0) mem << "view of %" << l.base;
    else if (p.kind == passes::Storage::arena)
      mem << "arena @" << p.offset << " (" << m.slot_bytes[p.index] << " B)";
    else if (p.kind == passes::Storage::input) mem << "input " << p.index;
    else if (p.kind == passes::Storage::output) mem << "output " << p.index;
    else if (p.kind == passes::Storage::constant && n.op == Op::parameter) mem << "parameter (bound)";
    else if (p.kind == passes::Storage::constant) mem << (n.index >= 0 ? "captured" : "folded");
    else if (p.kind == passes::Storage::scalar) mem << "immediate";
    else if (p.kind == passes::Storage::parameter) mem << "in place: parameter %" << p.index;
    else mem << "fused (registers)";
    std::string op_text = op.str();
    if (op_text.size() >= 21) op_text += ' ';  // a long description (an int8 op's quant) keeps a gap
    os << std::setw(4) << ('%' + std::to_string(i)) << "  " << std::left << std::setw(21) << op_text
       << std::setw(14) << ins.str() << std::setw(17) << shp.str() << std::setw(7) << dtype_name(n.dtype)
       << std::setw(17) << grp.str() << mem.str() << std::right << '\n';
  }
  os << "  outputs:";
  for (int k = 0; k < g.num_outputs(); ++k) os << " %" << g.output(k);
  const runtime::PlanInfo& p = x.info();
  os << "\n  " << p.kernels << " kernels for " << p.nodes << " nodes; arena " << p.arena_bytes
     << " B (liveness lower bound " << p.lower_bound << " B); packed weights " << p.packed_weight_bytes << " B\n";
  if (p.offload) accel::print_report(os, g, *p.offload);
}

/// One row per kernel launch: what it computes, its loop, its epilogue.
inline void print_plan(std::ostream& os, const Executable& x) {
  const Graph& g = x.graph();
  const passes::Fusion& f = x.fusion();
  int k = 0;
  for (const runtime::Step& s : x.steps()) {
    os << "  k" << k++ << ' ' << passes::group_kind_name(s.kind) << " over " << s.loop << ": nodes";
    for (int i = 0; i < g.size(); ++i)
      if (f.group_of[i] == s.group) os << " %" << i;
    if (s.kind == passes::GroupKind::gemm) {
      if (s.conv) os << "; conv2d " << kernels::conv_algorithm_name(kernels::conv_algorithm(s.window));
      os << "; M=" << s.M << " N=" << s.N << " K=" << s.K << (s.packed >= 0 ? ", weights prepacked" : "");
      if (s.bias >= 0) os << ", bias in registers";
      if (s.clamp) os << ", clamp [" << s.lo << ", " << s.hi << "] in registers";
      if (s.code_size) os << ", epilogue of " << s.code_size << " instructions on each finished block";
    } else if (s.kind == passes::GroupKind::int8) {
      const Int8Call& c = x.int8_steps()[static_cast<std::size_t>(s.int8)].call;
      os << "; " << op_name(c.op);
      if (c.op == Op::qlinear || c.op == Op::qconv2d) {
        const kernels::int8::OutputStage& st = c.op == Op::qlinear ? c.fc.output : c.depthwise ? c.dw.output : c.conv.output;
        os << (c.depthwise ? " depthwise" : "") << ", requantised per channel, output clamp [" << st.act_min << ", "
           << st.act_max << ']';
      }
    } else if (s.kind == passes::GroupKind::offload) {
      os << "; region r" << s.region << ", " << s.num_ops << " input(s), " << s.num_tgts << " output(s)";
      if (s.wait_at >= 0) os << ", submitted, waited for before k" << s.wait_at;
    } else if (s.code_size) {
      os << "; program of " << s.code_size << " instructions, " << s.num_regs << " register tiles, " << s.num_ops
         << " loads, " << s.num_tgts << " stores";
    }
    os << '\n';
  }
}

}  // namespace kiln::runtime
