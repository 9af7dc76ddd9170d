// kiln/accel/partition.hpp — which nodes an accelerator runs, grouped into offload regions.
//
// TVM BYOC's three graph steps on kiln's IR, as one constexpr pass:
//   1. composites: every match of the target's patterns (in table order, first match wins)
//      becomes one unit the device runs as one call;
//   2. annotation: a node is claimed when it is in a composite or the target's predicate accepts
//      it (leaves — inputs, constants, scalars — are never claimed: they are region inputs; nor
//      are views, which are addressing, not work);
//   3. merging: claimed units join the region of a claimed producer, greedily in topological
//      order, whenever the region graph stays acyclic (fewer transfers and launches).
// Every node not claimed records why, for print_graph and stats().
#pragma once

#include "target.hpp"

namespace kiln::accel {

/// Why a node stays on the CPU (or `claimed`).
enum class Placement : std::uint8_t {
  claimed,          // runs in region region_of[node]
  leaf,             // an input, constant or scalar: data, not work
  not_supported,    // neither a pattern nor the predicate accepts it
  predicate_threw,  // the target's predicate threw: treated as a refusal
  view,             // a view (reshape, permute, slice, expand): no kernel, it stays with its readers
  taken,            // claimed by an earlier backend (partition's `taken`)
};

constexpr const char* placement_name(Placement p) {
  switch (p) {
    case Placement::claimed: return "claimed";
    case Placement::leaf: return "leaf";
    case Placement::not_supported: return "not supported by the target";
    case Placement::predicate_threw: return "the target's predicate threw";
    case Placement::view: return "a view (no kernel of its own)";
    case Placement::taken: return "claimed by an earlier backend";
  }
  return "?";
}

struct Partition {
  int region_of[kMaxNodes]{};     // -1: on the CPU
  int composite_of[kMaxNodes]{};  // pattern index of the composite holding the node, -1: none
  int composite_head[kMaxNodes]{};  // first node of that composite match, -1: none
  Placement placement[kMaxNodes]{};
  int num_regions = 0;
  int num_composites = 0;
  int claimed = 0;
};

namespace detail {

/// The only consumer of `id` when it has exactly one use that is not a graph output, else -1.
constexpr int sole_consumer(const Graph& g, const int* uses, int id) {
  if (uses[id] != 1 || g.is_output(id)) return -1;
  for (int u = id + 1; u < g.size(); ++u)
    for (int k = 0; k < g[u].num_inputs; ++k)
      if (g[u].inputs[k] == id) return u;
  return -1;
}

/// Matches pattern `p` starting at node `head`; writes the chain into `chain` and returns its
/// length, or 0.
constexpr int match_chain(const Graph& g, const int* uses, const Pattern& p, int head, int* chain) {
  if (p.num_steps < 1 || !p.steps[0].matches(g[head])) return 0;
  chain[0] = head;
  for (int s = 1; s < p.num_steps; ++s) {
    const int next = sole_consumer(g, uses, chain[s - 1]);
    if (next < 0 || !p.steps[s].matches(g[next])) return 0;
    chain[s] = next;
  }
  return p.num_steps;
}

inline bool ask_predicate(const Target& t, const Graph& g, int node, bool& threw) {
  threw = false;
#if KILN_EXCEPTIONS
  try {
    return t.supports(g, node);
  } catch (...) {
    threw = true;
    return false;
  }
#else
  return t.supports(g, node);
#endif
}

/// Whether the nodes marked in `in` form a region with no path leaving it and coming back
/// (nodes are in topological order, so one forward pass suffices).
constexpr bool region_is_convex(const Graph& g, const bool* in) {
  bool from_region[kMaxNodes]{};  // outside, but reachable from the region
  for (int i = 0; i < g.size(); ++i) {
    const Node& n = g[i];
    bool reached = false;
    for (int k = 0; k < n.num_inputs; ++k) {
      const int j = n.inputs[k];
      if (in[i] && !in[j] && from_region[j]) return false;  // left the region and came back
      reached = reached || in[j] || from_region[j];
    }
    if (!in[i]) from_region[i] = reached;
  }
  return true;
}

}  // namespace detail

/// Partitions `g` for target `t` (see the file comment). Deterministic: same graph, same target,
/// same regions. A constant expression when the target has patterns only (no predicate).
/// taken[i] (optional): node i already runs elsewhere (an earlier backend) and is not claimed.
constexpr void partition(const Graph& g, const Target& t, Partition& p, const bool* taken = nullptr) {
  const int n = g.size();
  int uses[kMaxNodes]{};
  g.count_uses(uses);
  p = Partition();
  for (int i = 0; i < kMaxNodes; ++i) p.region_of[i] = p.composite_of[i] = p.composite_head[i] = -1;

  // 1. Composites.
  for (int i = 0; i < n; ++i) {
    if (g[i].is_leaf() || p.composite_of[i] >= 0) continue;
    for (int q = 0; q < t.num_patterns; ++q) {
      int chain[kMaxPatternSteps]{};
      const int len = detail::match_chain(g, uses, t.patterns[q], i, chain);
      bool free = len > 0;
      for (int s = 0; s < len; ++s)
        free = free && p.composite_of[chain[s]] < 0 && !g[chain[s]].is_view() && !(taken && taken[chain[s]]);
      if (!free) continue;
      for (int s = 0; s < len; ++s) {
        p.composite_of[chain[s]] = q;
        p.composite_head[chain[s]] = i;
      }
      ++p.num_composites;
      break;
    }
  }

  // 2. Annotation.
  bool claimed[kMaxNodes]{};
  for (int i = 0; i < n; ++i) {
    if (g[i].is_leaf()) {
      p.placement[i] = Placement::leaf;
      continue;
    }
    if (g[i].is_view()) {  // a region reads or writes whole dense values; views are addressing
      p.placement[i] = Placement::view;
      continue;
    }
    if (taken && taken[i]) {
      p.placement[i] = Placement::taken;
      continue;
    }
    bool threw = false;
    claimed[i] = p.composite_of[i] >= 0 || (t.supports && detail::ask_predicate(t, g, i, threw));
    p.placement[i] = claimed[i] ? Placement::claimed : threw ? Placement::predicate_threw : Placement::not_supported;
  }

  // 3. Regions: a unit (a composite, or a single claimed node) joins the region of a claimed
  // producer when the union stays convex, else starts its own.
  for (int i = 0; i < n; ++i) {
    if (!claimed[i] || p.region_of[i] >= 0) continue;
    const int head = p.composite_head[i];
    bool unit[kMaxNodes]{};
    for (int j = i; j < n; ++j) unit[j] = head >= 0 ? p.composite_head[j] == head : j == i;
    int region = -1;
    for (int j = i; j < n && region < 0; ++j) {
      if (!unit[j]) continue;
      for (int k = 0; k < g[j].num_inputs && region < 0; ++k) {
        const int r = p.region_of[g[j].inputs[k]];
        if (r < 0) continue;
        bool in[kMaxNodes]{};
        for (int m = 0; m < n; ++m) in[m] = unit[m] || p.region_of[m] == r;
        if (detail::region_is_convex(g, in)) region = r;
      }
    }
    if (region < 0) region = p.num_regions++;
    for (int j = i; j < n; ++j)
      if (unit[j]) {
        p.region_of[j] = region;
        ++p.claimed;
      }
  }
}

}  // namespace kiln::accel
