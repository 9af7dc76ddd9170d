// kiln/dispatch/engine_table.hpp — the one entry point of an engine compiled for one x86 arch.
//
// A dispatching build (CMake: kiln::dispatch, cmake/KilnDispatch.cmake) compiles the whole engine
// (passes, planner, runtime, kernels) once per arch in its own translation unit, with kiln's
// namespace renamed there to kiln_arch_<name> (cmake/kiln_engine_arch.cpp): every inline function
// of that TU carries the arch in its mangled name, so the linker cannot keep an AVX2 copy of,
// say, a pass or a Shape method for the SSE2 engine (the ODR trap of per-arch TUs). The TUs meet
// only through this table, whose types are std-only so both sides spell them the same way; kiln
// values cross it as bytes (the IR types are trivially copyable and the sizes are checked).
#pragma once

#include <cstddef>
#include <iosfwd>

namespace kiln::dispatch {

/// One arch's engine: runtime/engine.hpp's functions over opaque bytes of the kiln IR types.
struct EngineTable {
  const char* name;       ///< "sse2", "avx2" or "scalar": what KILN_ARCH / set_arch() accept
  const char* simd_name;  ///< kernels::kSimdName as the arch's TU sees it (xsimd's name or "scalar")
  int lanes;              ///< kernels::kLanes in that TU
  /// kernels::kLanes returned by an inline function of that TU's engine (the ODR check: the same
  /// as `lanes` only while no other arch's copy replaced it at link time).
  int (*probe_lanes)();
  // sizeof of Node, Graph, Status, Shape, PlanInfo in that TU: must equal the dispatcher's.
  std::size_t node_size, graph_size, status_size, shape_size, plan_info_size;

  std::size_t (*node_workspace_floats)(const void* node, const void* in_shapes);
  void (*run_node)(const void* node, const void* const* in, const void* in_shapes, const void* in_dtypes,
                   void* out, float* workspace);
  /// A planned executable of the traced graph, or nullptr with *status (a kiln::Status) set.
  void* (*build)(const void* graph, void* status);
  /// The observation plan (runtime/observe.hpp), or nullptr with *status set.
  void* (*build_observing)(const void* graph, void* status);
  /// engine::read_value of an observation plan.
  bool (*read_value)(const void* exe, int node, const void* const* inputs, void* const* outputs, const void* arena,
                     void* dense);
  void (*destroy)(void* exe);
  std::size_t (*arena_bytes)(const void* exe);
  /// Copies the plan's PlanInfo / planned Graph into caller storage of the dispatcher's types.
  void (*plan_info)(const void* exe, void* info);
  void (*planned_graph)(const void* exe, void* graph);
  void (*run)(const void* exe, const void* const* inputs, void* const* outputs, void* arena);
  void (*print_graph)(std::ostream& os, const void* exe);
  void (*print_plan)(std::ostream& os, const void* exe);
};

// Defined by the arch TUs a dispatching build compiled (cmake/kiln_engine_arch.cpp).
const EngineTable& engine_sse2();
const EngineTable& engine_avx2();
const EngineTable& engine_scalar();

}  // namespace kiln::dispatch
