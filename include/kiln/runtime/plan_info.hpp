// kiln/runtime/plan_info.hpp — the counters a plan reports (Compiled::stats() copies them).
#pragma once

#include <cstddef>

namespace kiln {
namespace accel {
struct Report;
}
namespace runtime {

/// What the passes did and what the plan costs: filled by Executable::build.
struct PlanInfo {
  int nodes = 0, groups = 0, kernels = 0, folded = 0, cse = 0, simplified = 0, dead = 0, in_place = 0;
  int updates = 0, aliased_updates = 0;  // parameter write-backs; those written in place
  std::size_t arena_bytes = 0, lower_bound = 0, packed_weight_bytes = 0;
  const accel::Report* offload = nullptr;  // where each node runs, with accelerator backends (else null)
};

}  // namespace runtime
}  // namespace kiln
