// kiln/runtime/engine_impl.hpp — the bodies of runtime/engine.hpp's functions.
//
// Included by engine.hpp in every TU that compiles the engine (all of them when header-only;
// only the KILN_IMPLEMENTATION TU with KILN_SEPARATE_COMPILATION). Each body forwards to the
// engine's own (inline) code, so a TU that also includes runtime/executable.hpp directly (tests,
// benchmarks looking inside a plan) never defines anything twice.
#pragma once

#include "eager.hpp"  // included from engine.hpp only, after its declarations
#include "executable.hpp"
#include "observe.hpp"
#ifndef KILN_NO_IOSTREAM
#include "plan_print.hpp"
#endif

namespace kiln {
namespace engine {

KILN_ENGINE_API std::size_t node_workspace_floats(const Node& n, const Shape* in_shapes) {
  return runtime::node_workspace_floats(n, in_shapes);
}

KILN_ENGINE_API void run_node(const Node& n, const void* const* in, const Shape* in_shapes,
                              const DType* in_dtypes, void* out, float* workspace) {
  runtime::run_node(n, in, in_shapes, in_dtypes, out, workspace);
}

KILN_ENGINE_API runtime::Executable* build(const Graph& traced, Status& status, const accel::Offload* offload) {
  auto* exe = new runtime::Executable();
  if (!exe->build(traced, status, offload)) {
    delete exe;
    return nullptr;
  }
  return exe;
}

KILN_ENGINE_API runtime::Executable* build_observing(const Graph& traced, Status& status) {
  auto* exe = new runtime::Executable();
  if (!exe->build(traced, status, nullptr, true)) {
    delete exe;
    return nullptr;
  }
  return exe;
}

KILN_ENGINE_API bool read_value(const runtime::Executable& exe, int node, const void* const* inputs,
                                void* const* outputs, const void* arena, void* dense) {
  return runtime::read_value(exe, node, inputs, outputs, arena, dense);
}

KILN_ENGINE_API void destroy(runtime::Executable* exe) { delete exe; }

KILN_ENGINE_API std::size_t arena_bytes(const runtime::Executable& exe) { return exe.arena_bytes(); }

KILN_ENGINE_API const runtime::PlanInfo& plan_info(const runtime::Executable& exe) { return exe.info(); }

KILN_ENGINE_API const Graph& planned_graph(const runtime::Executable& exe) { return exe.graph(); }

KILN_ENGINE_API void run(const runtime::Executable& exe, const void* const* inputs, void* const* outputs,
                         void* arena) {
  exe.run(inputs, outputs, arena);
}

#ifndef KILN_NO_IOSTREAM
KILN_ENGINE_API void print_graph(std::ostream& os, const runtime::Executable& exe) {
  runtime::print_graph(os, exe);
}
KILN_ENGINE_API void print_plan(std::ostream& os, const runtime::Executable& exe) {
  runtime::print_plan(os, exe);
}
#endif

}  // namespace engine
}  // namespace kiln
