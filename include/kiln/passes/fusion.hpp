// kiln/passes/fusion.hpp — partition the graph into fused groups, one kernel launch each.
//
// Rules (in topological order, greedy):
//  1. Elementwise nodes join the group of a producer whose loop shape equals
//     theirs (an elementwise group, or a matmul's epilogue). Producers in two
//     groups are merged into one when that keeps the group graph acyclic.
//     Every node of an elementwise group has the group's shape, so nothing is
//     recomputed: a value used by several consumers is computed once and, if
//     needed outside, stored once.
//  2. matmul starts a gemm group; its elementwise consumers of the same shape
//     become the epilogue (bias + clamp in registers, the rest on the finished
//     block while it is in cache).
//  3. reduce/softmax absorb an elementwise producer group whose only result
//     feeds them, so the chain is evaluated inside the reduction's passes.
//  4. concat, unslice (autodiff's adjoint of slice), and reshape of a non-contiguous view, are
//     copy kernels.
//  5. conv2d starts a gemm group like matmul (its epilogue is the GEMM's, also for the
//     depthwise kernel); pool2d, pad and upsample are one window kernel each.
//  6. every int8 op (quantize, dequantize, qlinear, ...) is a group of its own, an int8 kernel with
//     its requantisation and fused activation inside; float elementwise nodes never join it
//     (they cannot read i8, and a dequantize's consumers start their own float group). Except:
//     a quantize of a float value joins its producer's elementwise group or GEMM epilogue like an
//     elementwise node (its program stores i8: where an f32 layer meets int8 ones, e.g. a layer
//     the precision doctor keeps in f32, the conversion costs no step of its own); in a GEMM group
//     the f32 value it reads is stored too (C must land in f32 memory).
//     Leaves and views (permute, slice, expand, contiguous reshape) have no kernel.
//  7. nodes pinned to an accelerator region (accel/partition.hpp, via `pinned`) form one offload
//     group per region, which nothing else joins.
//  8. Fusion::observe (the observation plan, runtime/observe.hpp): nothing joins anything, every
//     node that computes is a group of its own and stores its value, so each node's output exists
//     after the run (a GEMM keeps no bias/clamp in registers: they are their own steps).
// A group also fails to grow when its program would need more than
// kEwMaxRegs live register tiles.
#pragma once

#include "../kernels/ew_program.hpp"
#include "layout.hpp"

namespace kiln::passes {

enum class GroupKind : std::uint8_t { elementwise, gemm, reduce, softmax, concat, copy, window, int8, offload };

constexpr const char* group_kind_name(GroupKind k) {
  switch (k) {
    case GroupKind::elementwise: return "elementwise";
    case GroupKind::gemm: return "gemm";
    case GroupKind::reduce: return "reduce";
    case GroupKind::softmax: return "softmax";
    case GroupKind::concat: return "concat";
    case GroupKind::copy: return "copy";
    case GroupKind::window: return "window";
    case GroupKind::int8: return "int8";
    case GroupKind::offload: return "offload";
  }
  return "?";
}

struct Group {
  GroupKind kind = GroupKind::elementwise;
  int root = -1;  // gemm: the matmul or conv2d; window: the pool/pad/upsample; reduce/softmax: the reduction; copy/concat: the node; elementwise: -1
  Shape loop;     // elementwise and gemm epilogue: the shape every member has
  int region = -1;  // offload: the accelerator region it runs
};

struct Fusion {
  int group_of[kMaxNodes]{};  // -1: leaf or view, no kernel
  Group groups[kMaxNodes]{};
  int num_groups = 0;
  int order[kMaxNodes]{};  // groups in execution order
  Layout layouts[kMaxNodes]{};
  bool observe = false;  // rule 8: set before fuse()
};

namespace detail {

constexpr int new_group(Fusion& f, GroupKind k, int root, const Shape& loop) {
  const int gi = f.num_groups++;
  f.groups[gi].kind = k;
  f.groups[gi].root = root;
  f.groups[gi].loop = loop;
  return gi;
}

/// Kahn's algorithm over the group graph; writes the order and returns false on a cycle.
/// Ties go to the group with the smallest node id, so the order follows the trace; a ready
/// offload group goes first (an asynchronous device then works while the CPU runs the rest).
constexpr bool order_groups(const Graph& g, Fusion& f) {
  const int G = f.num_groups;
  int indeg[kMaxNodes]{};
  int first_node[kMaxNodes]{};
  for (int k = 0; k < G; ++k) first_node[k] = kMaxNodes;
  // Dependencies go through views and leaves to the group that materialises the base.
  auto producer_group = [&](int id) { return f.group_of[f.layouts[id].base]; };
  for (int i = 0; i < g.size(); ++i) {
    const int gi = f.group_of[i];
    if (gi < 0) continue;
    if (i < first_node[gi]) first_node[gi] = i;
    for (int k = 0; k < g[i].num_inputs; ++k) {
      const int pg = producer_group(g[i].inputs[k]);
      if (pg >= 0 && pg != gi) ++indeg[gi];
    }
  }
  bool done[kMaxNodes]{};
  for (int n = 0; n < G; ++n) {
    int pick = -1;
    for (int k = 0; k < G; ++k)
      if (!done[k] && indeg[k] == 0 &&
          (pick < 0 || (f.groups[k].kind == GroupKind::offload) > (f.groups[pick].kind == GroupKind::offload) ||
           ((f.groups[k].kind == GroupKind::offload) == (f.groups[pick].kind == GroupKind::offload) &&
            first_node[k] < first_node[pick])))
        pick = k;
    if (pick < 0) return false;
    done[pick] = true;
    f.order[n] = pick;
    for (int i = 0; i < g.size(); ++i) {
      const int gi = f.group_of[i];
      if (gi < 0 || gi == pick) continue;
      for (int k = 0; k < g[i].num_inputs; ++k)
        if (producer_group(g[i].inputs[k]) == pick) --indeg[gi];
    }
  }
  return true;
}

}  // namespace detail

/// Whether node `id` (a member of group gi) is needed outside its group.
constexpr bool is_group_output(const Graph& g, const Fusion& f, int id) {
  if (g.is_output(id) || (f.observe && f.group_of[id] >= 0)) return true;
  const int gi = f.group_of[id];
  if (gi >= 0 && f.groups[gi].kind == GroupKind::gemm)  // rule 6: C lands in the f32 value a quantize reads
    for (int i = id + 1; i < g.size(); ++i)
      if (g[i].op == Op::quantize && g[i].inputs[0] == id && f.group_of[i] == gi) return true;
  for (int i = id + 1; i < g.size(); ++i)
    for (int k = 0; k < g[i].num_inputs; ++k) {
      const int in = g[i].inputs[k];
      // A view of `id` used anywhere counts as a use outside (views are read by other kernels).
      if (in == id && f.group_of[i] != gi) return true;
      if (in != id && f.layouts[in].base == id && g[in].is_view() && f.group_of[i] >= 0) return true;
    }
  return false;
}

/// Builds the register program of the elementwise members of group gi (all nodes with
/// group_of == gi, except the root of a gemm/reduce group, which is read as operand 0).
/// Operands: distinct external values in order of first use (written to operand_nodes).
/// For a reduce/softmax group the reduction's input is the single store (target 0); otherwise
/// every member needed outside the group is stored, targets in node order (target_nodes).
/// Returns the number of registers, or -1 if more than kEwMaxRegs or `cap` instructions.
/// `acc` (gemm only): the node whose value the GEMM leaves in C (the matmul, or the last node the
/// micro-kernel applies in registers); `in_registers` marks those micro-kernel nodes, which are
/// not part of the program.
constexpr int build_program(const Graph& g, const Fusion& f, int gi, kernels::EwInstr* code, int cap,
                            int& code_size, int* operand_nodes, int& num_operands, int* target_nodes,
                            int& num_targets, int acc = -1, const bool* in_registers = nullptr) {
  const Group& grp = f.groups[gi];
  code_size = 0;
  num_operands = 0;
  num_targets = 0;
  int reg_of[kMaxNodes]{};
  int last_use[kMaxNodes]{};
  for (int i = 0; i < g.size(); ++i) {
    reg_of[i] = -1;
    last_use[i] = -1;
  }
  bool member[kMaxNodes]{};
  if (acc < 0) acc = grp.root;
  for (int i = 0; i < g.size(); ++i)
    member[i] = f.group_of[i] == gi && i != grp.root && !(in_registers && in_registers[i]);
  const bool reduce_like = grp.kind == GroupKind::reduce || grp.kind == GroupKind::softmax;
  const int reduce_input = reduce_like ? g[grp.root].inputs[0] : -1;
  if (grp.kind == GroupKind::gemm) {
    operand_nodes[num_operands++] = acc;  // the accumulator block, C
  }
  // Which members are stored (and so live to the end).
  bool stored[kMaxNodes]{};
  for (int i = 0; i < g.size(); ++i) {
    if (!member[i]) continue;
    stored[i] = reduce_like ? (i == reduce_input) : is_group_output(g, f, i);
  }
  for (int i = 0; i < g.size(); ++i) {
    if (!member[i]) continue;
    for (int k = 0; k < g[i].num_inputs; ++k) last_use[g[i].inputs[k]] = i;
  }
  bool busy[kernels::kEwMaxRegs]{};
  int max_regs = 0;
  auto alloc = [&]() {
    for (int r = 0; r < kernels::kEwMaxRegs; ++r)
      if (!busy[r]) {
        busy[r] = true;
        if (r + 1 > max_regs) max_regs = r + 1;
        return r;
      }
    return -1;
  };
  auto emit = [&](const kernels::EwInstr& in) {
    if (code_size >= cap) return false;
    code[code_size++] = in;
    return true;
  };
  for (int i = 0; i < g.size(); ++i) {
    if (!member[i]) continue;
    const Node& n = g[i];
    int src[3] = {0, 0, 0};
    for (int k = 0; k < n.num_inputs; ++k) {
      const int in = n.inputs[k];
      if (reg_of[in] < 0) {
        const int r = alloc();
        if (r < 0) return -1;
        kernels::EwInstr ins;
        ins.dst = static_cast<std::uint8_t>(r);
        if (g[in].op == Op::scalar) {
          ins.kind = kernels::EwKind::splat;
          ins.p0 = g[in].p0;
        } else {
          int op_index = -1;
          for (int o = 0; o < num_operands; ++o)
            if (operand_nodes[o] == in) op_index = o;
          if (op_index < 0) {
            if (num_operands >= kernels::kEwMaxOperands) return -1;
            op_index = num_operands;
            operand_nodes[num_operands++] = in;
          }
          ins.kind = kernels::EwKind::load;
          ins.a = static_cast<std::uint8_t>(op_index);
        }
        if (!emit(ins)) return -1;
        reg_of[in] = r;
      }
      src[k] = reg_of[in];
    }
    // Free inputs whose last use is this node (not members that are stored: they live on).
    for (int k = 0; k < n.num_inputs; ++k) {
      const int in = n.inputs[k];
      if (last_use[in] == i && !(member[in] && stored[in]) && reg_of[in] >= 0) {
        busy[reg_of[in]] = false;
        reg_of[in] = -1;  // duplicates (x*x) free once
      }
    }
    const int r = alloc();  // may reuse a just-freed input register: the kernels read before they write
    if (r < 0) return -1;
    kernels::EwInstr ins;
    ins.kind = kernels::EwKind::apply;
    ins.fn = n.fn;
    ins.dst = static_cast<std::uint8_t>(r);
    ins.a = static_cast<std::uint8_t>(src[0]);
    ins.b = static_cast<std::uint8_t>(src[1]);
    ins.c = static_cast<std::uint8_t>(src[2]);
    ins.p0 = n.p0;
    ins.p1 = n.p1;
    if (!emit(ins)) return -1;
    reg_of[i] = r;
    if (last_use[i] < 0 && !stored[i]) {  // dead inside and not needed outside (DCE ran, so rare)
      busy[r] = false;
      reg_of[i] = -1;
    }
  }
  for (int i = 0; i < g.size(); ++i) {
    if (!member[i] || !stored[i]) continue;
    if (num_targets >= kernels::kEwMaxOperands) return -1;
    kernels::EwInstr st;
    st.kind = kernels::EwKind::store;
    st.dst = static_cast<std::uint8_t>(num_targets);
    st.a = static_cast<std::uint8_t>(reg_of[i]);
    if (!emit(st)) return -1;
    target_nodes[num_targets++] = i;
  }
  return max_regs;
}

namespace detail {

/// Registers a group of this membership would need (checks the budget while growing).
constexpr bool program_fits(const Graph& g, const Fusion& f, int gi) {
  kernels::EwInstr code[4 * kMaxNodes]{};
  int cs = 0, no = 0, nt = 0;
  int ops[kMaxNodes]{}, tgts[kMaxNodes]{};
  return build_program(g, f, gi, code, 4 * kMaxNodes, cs, ops, no, tgts, nt) >= 0;
}

/// A group may not read a view (permute, slice, reshape) of a value it computes itself: the view
/// reads memory at other positions, which the group has not written yet.
constexpr bool reads_own_view(const Graph& g, const Fusion& f, int gi, int upto) {
  for (int i = 0; i <= upto; ++i) {
    if (f.group_of[i] != gi) continue;
    for (int k = 0; k < g[i].num_inputs; ++k) {
      const int in = g[i].inputs[k];
      const int base = f.layouts[in].base;
      if (base != in && base >= 0 && f.group_of[base] == gi) return true;
    }
  }
  return false;
}

constexpr bool try_membership(const Graph& g, Fusion& f, int node, int gi, const int* merge, int num_merge) {
  int saved[kMaxNodes]{};
  for (int i = 0; i <= node; ++i) saved[i] = f.group_of[i];
  f.group_of[node] = gi;
  for (int i = 0; i < node; ++i)
    for (int m = 0; m < num_merge; ++m)
      if (f.group_of[i] == merge[m]) f.group_of[i] = gi;
  Fusion& ff = f;
  const bool ok = !reads_own_view(g, f, gi, node) && detail::order_groups(g, ff) && program_fits(g, f, gi);
  if (!ok)
    for (int i = 0; i <= node; ++i) f.group_of[i] = saved[i];
  return ok;
}

}  // namespace detail

/// Partitions `g` into groups and orders them. Returns false (with g's status set) on failure.
/// pinned[i] >= 0: node i runs in that accelerator region (one offload group per region).
constexpr bool fuse(const Graph& g, Fusion& f, const int* pinned = nullptr) {
  compute_layouts(g, f.layouts);
  f.num_groups = 0;
  for (int i = 0; i < kMaxNodes; ++i) f.group_of[i] = -1;  // nodes not reached yet belong nowhere
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g[i];
    if (n.is_leaf() || (n.is_view() && f.layouts[i].base != i)) continue;
    if (pinned && pinned[i] >= 0) {
      int gi = -1;
      for (int k = 0; k < f.num_groups && gi < 0; ++k)
        if (f.groups[k].kind == GroupKind::offload && f.groups[k].region == pinned[i]) gi = k;
      if (gi < 0) {
        gi = detail::new_group(f, GroupKind::offload, -1, n.shape);
        f.groups[gi].region = pinned[i];
      }
      f.group_of[i] = gi;
      continue;
    }
    switch (n.op) {
      case Op::elementwise: {
        if (f.observe) {  // rule 8
          f.group_of[i] = detail::new_group(f, GroupKind::elementwise, -1, n.shape);
          break;
        }
        // Candidate groups: those of producers with the same loop shape that can take an epilogue.
        int cands[kMaxInputs]{};
        int nc = 0;
        for (int k = 0; k < n.num_inputs; ++k) {
          const int p = n.inputs[k];
          const int pg = f.group_of[p];
          if (pg < 0 || f.layouts[p].base != p) continue;
          const Group& grp = f.groups[pg];
          if (grp.kind != GroupKind::elementwise && grp.kind != GroupKind::gemm) continue;
          if (grp.loop != n.shape) continue;
          bool dup = false;
          for (int c = 0; c < nc; ++c) dup = dup || cands[c] == pg;
          if (!dup) cands[nc++] = pg;
        }
        bool placed = false;
        // Prefer a gemm group as the host (it has the kernel); merge the others into it.
        int host = -1;
        for (int c = 0; c < nc; ++c)
          if (f.groups[cands[c]].kind == GroupKind::gemm) host = host < 0 ? cands[c] : host;
        int merge[kMaxInputs]{};
        int nm = 0;
        for (int c = 0; c < nc; ++c) {
          if (host < 0) host = cands[c];
          else if (cands[c] != host && f.groups[cands[c]].kind == GroupKind::elementwise) merge[nm++] = cands[c];
        }
        // Nothing is merged into a GEMM epilogue: a merged group could compute the GEMM's own
        // operand, a dependency inside one group that no group order can satisfy. The node
        // joins alone and reads the other groups' results.
        if (host >= 0 && f.groups[host].kind == GroupKind::gemm) nm = 0;
        if (host >= 0) placed = detail::try_membership(g, f, i, host, merge, nm);
        if (!placed && host >= 0 && nm > 0) placed = detail::try_membership(g, f, i, host, merge, 0);
        if (!placed) f.group_of[i] = detail::new_group(f, GroupKind::elementwise, -1, n.shape);
        break;
      }
      case Op::matmul:
      case Op::conv2d: f.group_of[i] = detail::new_group(f, GroupKind::gemm, i, n.shape); break;
      case Op::pool2d:
      case Op::pad:
      case Op::upsample: f.group_of[i] = detail::new_group(f, GroupKind::window, i, n.shape); break;
      case Op::reduce:
      case Op::softmax:
      case Op::log_softmax: {
        const GroupKind k = n.op == Op::reduce ? GroupKind::reduce : GroupKind::softmax;
        const int gi = detail::new_group(f, k, i, n.shape);
        f.group_of[i] = gi;
        // Absorb the producer group if the reduction's input is its only result.
        const int p = n.inputs[0];
        const int pg = f.group_of[p];
        if (!f.observe && pg >= 0 && f.layouts[p].base == p && f.groups[pg].kind == GroupKind::elementwise &&
            !g.is_output(p)) {
          bool only = true;
          for (int m = 0; m < i && only; ++m) {
            if (f.group_of[m] != pg) continue;
            for (int u = m + 1; u < g.size() && only; ++u)
              for (int k2 = 0; k2 < g[u].num_inputs; ++k2) {
                const int in = g[u].inputs[k2];
                const bool reads_m = in == m || (g[in].is_view() && f.layouts[in].base == m);
                if (reads_m && f.group_of[u] != pg && u != i) only = false;
              }
            if (m != p && g.is_output(m)) only = false;
          }
          if (only) {
            const int merge[1] = {pg};
            // Membership of the root itself stays gi; move the producers in.
            int saved[kMaxNodes]{};
            for (int m = 0; m < i; ++m) saved[m] = f.group_of[m];
            for (int m = 0; m < i; ++m)
              if (f.group_of[m] == merge[0]) f.group_of[m] = gi;
            if (detail::reads_own_view(g, f, gi, i) || !detail::order_groups(g, f) || !detail::program_fits(g, f, gi))
              for (int m = 0; m < i; ++m) f.group_of[m] = saved[m];
          }
        }
        break;
      }
      case Op::concat: f.group_of[i] = detail::new_group(f, GroupKind::concat, i, n.shape); break;
      case Op::quantize: {  // rule 6's exception
        const int p = n.inputs[0];
        const int pg = f.group_of[p];
        bool placed = false;
        if (!f.observe && pg >= 0 && f.layouts[p].base == p && g[p].dtype == DType::f32 && f.groups[pg].loop == n.shape &&
            (f.groups[pg].kind == GroupKind::elementwise || f.groups[pg].kind == GroupKind::gemm))
          placed = detail::try_membership(g, f, i, pg, nullptr, 0);
        if (!placed) f.group_of[i] = detail::new_group(f, GroupKind::int8, i, n.shape);
        break;
      }
      case Op::dequantize:
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
      case Op::qconcat: f.group_of[i] = detail::new_group(f, GroupKind::int8, i, n.shape); break;
      default:  // copy, unslice, and reshape of a non-contiguous view
        f.group_of[i] = detail::new_group(f, GroupKind::copy, i, n.shape);
        break;
    }
  }
  // Compact away groups emptied by merging, keeping the numbering dense.
  int remap[kMaxNodes]{};
  bool used[kMaxNodes]{};
  for (int i = 0; i < g.size(); ++i)
    if (f.group_of[i] >= 0) used[f.group_of[i]] = true;
  int n = 0;
  for (int k = 0; k < f.num_groups; ++k) {
    remap[k] = used[k] ? n : -1;
    if (used[k]) f.groups[n++] = f.groups[k];
  }
  f.num_groups = n;
  for (int i = 0; i < g.size(); ++i)
    if (f.group_of[i] >= 0) f.group_of[i] = remap[f.group_of[i]];
  return detail::order_groups(g, f);
}

}  // namespace kiln::passes
