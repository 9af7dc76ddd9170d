// kiln/passes/memory_plan.hpp — one arena for every intermediate, sized from liveness.
//
// Each materialised value that is not a model input, output or constant gets a
// slot. A slot lives from the step that writes it to the last step that reads
// it (through any view). An elementwise group may write its result into the
// slot of an operand it reads at the same positions for the last time
// (in-place). Offsets are then assigned greedily, largest slot first, at the
// lowest offset that overlaps no slot alive at the same time (TFLite Micro's
// greedy planner). The liveness lower bound — the most bytes alive at any one
// step — is reported beside the arena size.
// With Fusion::observe every value slot lives to the end of the run (no reuse, no in-place):
// each node's value can be read back afterwards (runtime/observe.hpp).
//
// Parameter updates (Graph::add_update) alias when they can (XLA's input-output aliasing): the
// elementwise group computing a parameter's new value writes it straight into the parameter's
// buffer when every read of the old value happens in an earlier step, or in that same group at
// the positions being written (a tile is read before it is written). Otherwise the new value gets
// an arena slot and the executable copies it back after the last step.
#pragma once

#include "fusion.hpp"

namespace kiln::passes {

enum class Storage : std::uint8_t {
  none,
  input,
  output,
  constant,  // bound by pointer: a captured tensor, a folded value or a parameter
  arena,
  scalar,
  parameter,  // a parameter's new value written in place into parameter node `index`'s buffer
};

struct Placement {
  Storage kind = Storage::none;
  int index = 0;            // input/output position, or slot number for arena values
  std::size_t offset = 0;   // arena: byte offset
};

struct MemoryPlan {
  Placement place[kMaxNodes]{};  // by base node
  int step_of_group[kMaxNodes]{};
  // Slots (arena values and per-step workspaces).
  std::size_t slot_bytes[2 * kMaxNodes]{};
  std::size_t slot_offset[2 * kMaxNodes]{};
  int slot_first[2 * kMaxNodes]{};
  int slot_last[2 * kMaxNodes]{};
  int num_slots = 0;
  int workspace_slot[kMaxNodes]{};  // by group; -1 when none
  int output_copy_from[kMaxGraphIO]{};  // -1: written in place by its group; else node to copy
  std::size_t arena_bytes = 0;
  std::size_t lower_bound = 0;
  int in_place = 0;  // values that reused an operand's slot
  int aliased_updates = 0;  // parameter updates written in place (no copy-back)
};

/// Whether update `u`'s new value may be written into the parameter's own buffer (see above).
constexpr bool update_can_alias(const Graph& g, const Fusion& f, const MemoryPlan& m, const Update& u) {
  const int v = u.value, p = u.param;
  const int gv = f.group_of[v];
  if (gv < 0 || f.layouts[v].base != v || f.groups[gv].kind != GroupKind::elementwise) return false;
  if (m.place[v].kind == Storage::output) return false;  // the caller's buffer already holds it
  for (int k = 0; k < g.num_updates(); ++k)  // one write per parameter, and no copy reads it
    if (g.update(k).param == p ? g.update(k).value != v : f.layouts[g.update(k).value].base == p) return false;
  for (int k = 0; k < g.num_outputs(); ++k)
    if (f.layouts[g.output(k)].base == p) return false;  // an output read at the end
  const Strides want = contiguous_strides(g[v].shape);
  const int step_v = m.step_of_group[gv];
  for (int u2 = 0; u2 < g.size(); ++u2) {
    for (int k = 0; k < g[u2].num_inputs; ++k) {
      const int in = g[u2].inputs[k];
      if (f.layouts[in].base != p) continue;
      // A view of p (or p itself) read by node u2: find the group that reads it.
      const int gr = f.group_of[u2];
      if (gr < 0) {
        if (g[u2].is_view()) continue;  // a view's own readers are checked as readers of its base
        return false;
      }
      const int step_r = m.step_of_group[gr];
      if (step_r < step_v) continue;
      if (gr != gv) return false;
      const Strides st = operand_strides(g[in].shape, f.layouts[in], g[v].shape);
      if (f.layouts[in].offset != 0) return false;
      for (int d = 0; d < g[v].shape.rank(); ++d)
        if (g[v].shape[d] != 1 && st[d] != want[d]) return false;
    }
  }
  return true;
}

/// Plans memory for fusion `f` of `g`. workspace_bytes[group] gives scratch each group needs
/// during its step (e.g. GEMM packing buffers). busy_until[group] (optional): the last step during
/// which the group still reads its operands and workspace (an asynchronous offload step submitted
/// at its own step and waited for later); by default its own step.
constexpr void plan_memory(const Graph& g, const Fusion& f, const std::size_t* workspace_bytes, MemoryPlan& m,
                           const int* busy_until = nullptr) {
  const int S = f.num_groups;
  for (int s = 0; s < S; ++s) m.step_of_group[f.order[s]] = s;
  m.num_slots = 0;
  m.in_place = 0;

  // Where every base value lives.
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g[i];
    Placement p;
    if (n.op == Op::input) p = {Storage::input, n.index, 0};
    else if (n.op == Op::constant || n.op == Op::parameter) p = {Storage::constant, i, 0};  // bound by pointer
    else if (n.op == Op::scalar) p = {Storage::scalar, i, 0};
    m.place[i] = p;
  }
  for (int k = 0; k < g.num_outputs(); ++k) {
    const int o = g.output(k);
    bool first = true;
    for (int j = 0; j < k; ++j) first = first && g.output(j) != o;
    // A group writes straight into the caller's buffer when it computes the output itself.
    if (first && f.group_of[o] >= 0 && f.layouts[o].base == o) {
      m.place[o] = {Storage::output, k, 0};
      m.output_copy_from[k] = -1;
    } else {
      m.output_copy_from[k] = o;  // leaf, view or repeated output: copied at the end
    }
  }

  // Parameter updates written in place need no slot.
  m.aliased_updates = 0;
  for (int k = 0; k < g.num_updates(); ++k) {
    const Update& u = g.update(k);
    if (update_can_alias(g, f, m, u)) {
      m.place[u.value] = {Storage::parameter, u.param, 0};
      ++m.aliased_updates;
    }
  }

  // Arena slots with live intervals.
  int slot_of[kMaxNodes]{};
  for (int i = 0; i < g.size(); ++i) slot_of[i] = -1;
  for (int i = 0; i < g.size(); ++i) {
    if (f.group_of[i] < 0 || f.layouts[i].base != i || m.place[i].kind == Storage::output ||
        m.place[i].kind == Storage::parameter)
      continue;
    // Only values read outside their group need memory.
    const int gi = f.group_of[i];
    // A gemm's raw product lands in its group's first stored result, so the matmul itself needs
    // memory only when something outside reads it.
    const bool own_root = f.groups[gi].root == i && f.groups[gi].kind != GroupKind::gemm;
    if (!own_root && !is_group_output(g, f, i)) continue;
    const int s = m.num_slots++;
    slot_of[i] = s;
    m.slot_bytes[s] = align_up(static_cast<std::size_t>(g[i].shape.numel()) * dtype_size(g[i].dtype));
    m.slot_first[s] = m.step_of_group[gi];
    m.slot_last[s] = m.step_of_group[gi];
    m.place[i] = {Storage::arena, s, 0};
  }
  for (int u = 0; u < g.size(); ++u) {
    for (int k = 0; k < g[u].num_inputs; ++k) {
      const int base = f.layouts[g[u].inputs[k]].base;
      if (base < 0 || slot_of[base] < 0) continue;
      int step = -1;
      if (f.group_of[u] >= 0) step = busy_until ? busy_until[f.group_of[u]] : m.step_of_group[f.group_of[u]];
      if (step > m.slot_last[slot_of[base]]) m.slot_last[slot_of[base]] = step;
    }
  }
  for (int k = 0; k < g.num_outputs(); ++k) {
    const int from = m.output_copy_from[k];
    if (from < 0) continue;
    const int base = f.layouts[from].base;
    if (base >= 0 && slot_of[base] >= 0) m.slot_last[slot_of[base]] = S;  // read by the final copies
  }
  for (int k = 0; k < g.num_updates(); ++k) {  // new parameter values are copied back at the end
    const int base = f.layouts[g.update(k).value].base;
    if (base >= 0 && slot_of[base] >= 0) m.slot_last[slot_of[base]] = S;
  }
  if (f.observe)  // every value kept to the end: the in-place test below then never passes
    for (int k = 0; k < m.num_slots; ++k) m.slot_last[k] = S;

  // In-place: an elementwise group's stored value takes the slot of an operand that it reads
  // for the last time, only at the positions it writes. Groups are visited in execution order,
  // so the slot an operand holds is final before it is passed on.
  bool donated[2 * kMaxNodes]{};
  for (int step = 0; step < S; ++step) {
    const int gi = f.order[step];
    if (f.groups[gi].kind != GroupKind::elementwise) continue;
    for (int i = 0; i < g.size(); ++i) {
      if (f.group_of[i] != gi) continue;
      const int s_out = slot_of[i];
      if (s_out < 0) continue;
      const Strides want = contiguous_strides(g[i].shape);
      for (int u = 0; u < g.size() && slot_of[i] == s_out; ++u) {
        if (f.group_of[u] != gi) continue;
        for (int k = 0; k < g[u].num_inputs; ++k) {
          const int base = f.layouts[g[u].inputs[k]].base;
          if (base < 0 || f.group_of[base] == gi) continue;
          const int s_in = slot_of[base];
          if (s_in < 0 || s_in == s_out || donated[s_in] || m.slot_last[s_in] != step) continue;
          if (m.slot_bytes[s_in] != m.slot_bytes[s_out] || dtype_size(g[base].dtype) != dtype_size(g[i].dtype)) continue;
          // Every read of `base` by this group, directly or through a view, must be at the
          // position being written.
          bool same = g[base].shape.numel() == g[i].shape.numel();
          for (int v = 0; v < g.size() && same; ++v) {
            if (f.group_of[v] != gi) continue;
            for (int q = 0; q < g[v].num_inputs && same; ++q) {
              const int in = g[v].inputs[q];
              if (f.layouts[in].base != base) continue;
              const Strides st = operand_strides(g[in].shape, f.layouts[in], g[i].shape);
              same = f.layouts[in].offset == 0;
              for (int d = 0; d < g[i].shape.rank() && same; ++d)
                if (g[i].shape[d] != 1 && st[d] != want[d]) same = false;
            }
          }
          if (!same) continue;
          // The output uses the operand's slot, which now lives until the output's last use.
          donated[s_in] = true;
          if (m.slot_last[s_out] > m.slot_last[s_in]) m.slot_last[s_in] = m.slot_last[s_out];
          m.slot_bytes[s_out] = 0;
          m.slot_first[s_out] = m.slot_last[s_out] = -1;
          slot_of[i] = s_in;
          m.place[i].index = s_in;
          ++m.in_place;
          break;
        }
      }
    }
  }

  // Workspaces: alive during their step only.
  for (int gi = 0; gi < S; ++gi) {
    m.workspace_slot[gi] = -1;
    if (!workspace_bytes || workspace_bytes[gi] == 0) continue;
    const int s = m.num_slots++;
    m.slot_bytes[s] = align_up(workspace_bytes[gi]);
    m.slot_first[s] = m.slot_last[s] = m.step_of_group[gi];
    if (busy_until) m.slot_last[s] = busy_until[gi];
    m.workspace_slot[gi] = s;
  }

  // Lower bound: the most bytes alive at any step.
  m.lower_bound = 0;
  for (int s = 0; s <= S; ++s) {
    std::size_t live = 0;
    for (int k = 0; k < m.num_slots; ++k)
      if (m.slot_bytes[k] && m.slot_first[k] <= s && s <= m.slot_last[k]) live += m.slot_bytes[k];
    if (live > m.lower_bound) m.lower_bound = live;
  }

  // Greedy by size: biggest first, lowest non-conflicting offset.
  bool placed[2 * kMaxNodes]{};
  m.arena_bytes = 0;
  for (int round = 0; round < m.num_slots; ++round) {
    int pick = -1;
    for (int k = 0; k < m.num_slots; ++k)
      if (!placed[k] && (pick < 0 || m.slot_bytes[k] > m.slot_bytes[pick])) pick = k;
    placed[pick] = true;
    if (m.slot_bytes[pick] == 0) {
      m.slot_offset[pick] = 0;
      continue;
    }
    std::size_t offset = 0;
    bool moved = true;
    while (moved) {  // bump past every conflicting placed slot until none overlaps
      moved = false;
      for (int k = 0; k < m.num_slots; ++k) {
        if (!placed[k] || k == pick || m.slot_bytes[k] == 0) continue;
        const bool time = m.slot_first[k] <= m.slot_last[pick] && m.slot_first[pick] <= m.slot_last[k];
        const bool space = m.slot_offset[k] < offset + m.slot_bytes[pick] && offset < m.slot_offset[k] + m.slot_bytes[k];
        if (time && space) {
          offset = m.slot_offset[k] + m.slot_bytes[k];
          moved = true;
        }
      }
    }
    m.slot_offset[pick] = offset;
    if (offset + m.slot_bytes[pick] > m.arena_bytes) m.arena_bytes = offset + m.slot_bytes[pick];
  }
  for (int i = 0; i < g.size(); ++i)
    if (m.place[i].kind == Storage::arena) m.place[i].offset = m.slot_offset[m.place[i].index];
}

}  // namespace kiln::passes
