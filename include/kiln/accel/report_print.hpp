// kiln/accel/report_print.hpp — the offload part of print_graph: regions, and why each node that
// stays on the CPU was refused. Host convenience (iostream).
#pragma once

#include <ostream>
#include <sstream>

#include "../ir/print.hpp"
#include "backend.hpp"

namespace kiln::accel {

inline void print_report(std::ostream& os, const Graph& g, const Report& r) {
  os << "  offload: " << r.offloaded_regions << " region(s), " << r.offloaded_nodes << " node(s) on the device";
  if (r.refused_regions) os << "; " << r.refused_regions << " region(s) refused at compile, run on the CPU";
  if (r.run_fallbacks) os << "; " << r.run_fallbacks << " run(s) fell back to the CPU";
  os << '\n';
  for (int k = 0; k < r.num_regions; ++k) {
    const RegionReport& rr = r.regions[k];
    os << "    r" << k << " on " << r.backend_names[rr.backend] << (rr.async ? " (async)" : "") << ":";
    for (int i = 0; i < g.size(); ++i) {
      if (r.region_of[i] != k) continue;
      if (r.composite[i] && r.composite_head[i] == i) os << " " << r.composite[i] << ":";
      os << " %" << i;
    }
    if (!rr.offloaded) os << " -- refused at compile, runs on the CPU: " << rr.status.message();
    else if (rr.run_fallbacks) os << " -- " << rr.run_fallbacks << " call(s) ran on the CPU: " << rr.status.message();
    os << '\n';
  }
  for (int i = 0; i < g.size(); ++i) {
    if (r.where[i] != Where::cpu || g[i].is_leaf()) continue;
    std::ostringstream op;
    describe_node(op, g[i]);
    os << "    %" << i << ' ' << op.str() << ": CPU, " << placement_name(r.placement[i]) << '\n';
  }
}

}  // namespace kiln::accel
