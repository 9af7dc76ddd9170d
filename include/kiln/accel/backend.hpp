// kiln/accel/backend.hpp — what a user plugs in to offload parts of a model (TVM BYOC's runtime side).
//
// A Backend is one name tying together the annotation (its Target: op predicate + pattern table),
// the codegen (compile: a partitioned region -> a device handle) and the runtime (run, or
// submit/wait, and release). Plain function pointers plus one user context pointer: no virtual
// dispatch, no RTTI, nothing kiln has to know about the device.
//
// compile() takes a backend through CompileOptions::offload (accel::offload(backend), in
// accel/offload.hpp); a model compiled without one never reaches any of this code.
#pragma once

#include "partition.hpp"

namespace kiln::accel {

/// A region as its backend's compile sees it: a self-contained graph whose inputs are the values
/// the region reads from the CPU side (dense, in the order run() receives them), whose constants
/// are its weights (data readable for the lifetime of the compiled model; views of weights are
/// materialised densely) and whose outputs are the values the rest of the model reads (dense, in
/// run()'s order). composite[i] names the pattern node i was matched by (nullptr: claimed by the
/// predicate alone), so a backend can dispatch on "linear_bias_relu" instead of re-matching.
struct Region {
  const Graph* graph = nullptr;
  const char* const* composite = nullptr;
  int index = 0;  // region number within the model (print_graph's r<index>)
};

struct Backend {
  Target target;          // name, predicate, patterns
  void* context = nullptr;  // passed back to every call below
  /// Prepares a region once (weights in the device's layout, a command list ...). Returns a handle,
  /// or nullptr with `why` set: the region then runs on the CPU (or compile() fails, when strict).
  void* (*compile)(void* context, const Region& region, Status& why) = nullptr;
  /// Runs a compiled region: inputs[i] / outputs[k] are dense buffers of region input i / output k.
  /// false with `why` set: this call runs the region on the CPU (or fails, when strict).
  bool (*run)(void* context, void* handle, const void* const* inputs, void* const* outputs, Status& why) = nullptr;
  /// Optional asynchronous pair: submit returns at once; the executable keeps running CPU steps
  /// that do not depend on the region and calls wait before the first one that does. Buffers stay
  /// valid (and untouched by the CPU) until wait returns.
  bool (*submit)(void* context, void* handle, const void* const* inputs, void* const* outputs, Status& why) = nullptr;
  bool (*wait)(void* context, void* handle, Status& why) = nullptr;
  /// Frees a handle (when the compiled model is reset or destroyed). Optional.
  void (*release)(void* context, void* handle) = nullptr;

  constexpr bool is_async() const { return submit != nullptr && wait != nullptr; }
};

/// Where every node of a planned graph runs and why (Compiled::stats().offload, print_graph).
/// Indexed by the node ids of the planned graph (Compiled::executable()->graph()).
enum class Where : std::uint8_t {
  cpu,             // placement says why
  device,          // in region region_of[node] of backend backend_of[node]
  compile_failed,  // claimed, but the backend's compile refused its region: region_status says why
};

struct RegionReport {
  int backend = -1;
  bool offloaded = false;  // false: compile refused it, the nodes run on the CPU (fused as usual)
  bool async = false;
  int nodes = 0;
  int run_fallbacks = 0;  // calls where run/wait failed and the region ran on the CPU instead
  Status status;          // compile refusal, or the most recent run failure
};

inline constexpr int kMaxBackends = 8;
inline constexpr int kMaxRegions = 64;

struct Report {
  const char* backend_names[kMaxBackends]{};
  int num_backends = 0;
  RegionReport regions[kMaxRegions]{};
  int num_regions = 0;           // partitioned regions, offloaded or refused
  int offloaded_regions = 0, offloaded_nodes = 0, refused_regions = 0, run_fallbacks = 0;
  Where where[kMaxNodes]{};
  Placement placement[kMaxNodes]{};  // the annotation's verdict (why a cpu node was refused)
  int region_of[kMaxNodes]{};        // -1: none (also kept for compile_failed nodes)
  const char* composite[kMaxNodes]{};  // pattern name, or nullptr
  int composite_head[kMaxNodes]{};     // first node of that pattern match, or -1
};

struct OffloadState;  // accel/offload.hpp
struct Offload;

/// The boundary of one offloaded region in the planned graph.
struct RegionBinding {
  int inputs[kMaxGraphIO]{};   // node ids read from outside (not constants or scalars), in run() order
  int num_inputs = 0;
  int outputs[kMaxGraphIO]{};  // node ids of the region read outside it, in run() order
  int num_outputs = 0;
  bool async = false;
};

/// The engine reaches the offload code only through this table (filled by accel::offload(), in
/// accel/offload.hpp): a build that never registers a backend never links it.
struct OffloadHooks {
  /// Partitions g among the backends and compiles every region; region_of[i] = offloaded region
  /// of node i or -1. nullptr with `status` set only when strict and a region was refused.
  OffloadState* (*plan)(const Offload& o, const Graph& g, int* region_of, Status& status);
  const RegionBinding& (*binding)(const OffloadState& s, int region);
  const Report& (*report)(const OffloadState& s);
  /// Runs region r (sync) or submits it (async). On a device failure it runs the region on the CPU,
  /// or returns false with `status` set when strict.
  bool (*start)(OffloadState& s, int region, const void* const* inputs, void* const* outputs, Status& status);
  /// Async only: waits for region r (CPU fallback / strict error as start).
  bool (*finish)(OffloadState& s, int region, Status& status);
  void (*destroy)(OffloadState* s);
};

/// CompileOptions::offload: the backends, in priority order (an earlier backend's regions win).
struct Offload {
  const Backend* backends = nullptr;
  int num_backends = 0;
  bool strict = false;  // a refused compile or a failed run is an error instead of a CPU fallback
  const OffloadHooks* hooks = nullptr;

  constexpr bool active() const { return hooks != nullptr && num_backends > 0; }
};

}  // namespace kiln::accel
