// kiln/runtime/engine.hpp — the seam between the front-end and the engine.
//
// Everything a model's translation unit instantiates (the op front-ends in ops.hpp, Compiled<Fn>)
// reaches the engine — passes, planner, kernels — only through these few functions. Header-only
// (the default) their bodies follow inline. With KILN_SEPARATE_COMPILATION a model's TU sees only
// these declarations, so it parses and optimises no kernel, pass or xsimd code; one TU of the
// program defines KILN_IMPLEMENTATION as well and compiles the engine once (CMake: kiln::compiled).
#pragma once

#include <cstddef>

#include "../core/config.hpp"
#include "../core/dtype.hpp"
#include "../core/shape.hpp"
#include "../core/status.hpp"
#include "../ir/node.hpp"
#include "plan_info.hpp"
#ifndef KILN_NO_IOSTREAM
#include <iosfwd>
#endif

namespace kiln {

class Graph;
namespace accel {
struct Offload;
}
namespace runtime {
class Executable;
}

namespace engine {

/// Scratch floats the eager kernel of `n` needs (0 for most ops).
KILN_ENGINE_API std::size_t node_workspace_floats(const Node& n, const Shape* in_shapes);
/// Runs one type-checked node on dense inputs into `out` (the eager path).
KILN_ENGINE_API void run_node(const Node& n, const void* const* in, const Shape* in_shapes,
                              const DType* in_dtypes, void* out, float* workspace);

/// Plans a traced graph (offloading regions to `offload`'s backends, if any); nullptr with `status`
/// set when it cannot.
KILN_ENGINE_API runtime::Executable* build(const Graph& traced, Status& status,
                                           const accel::Offload* offload = nullptr);
/// The observation plan of `traced` (runtime/observe.hpp: the precision doctor's debug mode): no
/// graph rewrites, so node ids are `traced`'s; every node its own step; every value kept.
KILN_ENGINE_API runtime::Executable* build_observing(const Graph& traced, Status& status);
/// After run() of an observation plan with these buffers: node `node`'s value, copied densely
/// into `dense` (shape and dtype of the node). False when the node has no value (a node out of
/// range, or a plan built without observation whose memory reused it).
KILN_ENGINE_API bool read_value(const runtime::Executable& exe, int node, const void* const* inputs,
                                void* const* outputs, const void* arena, void* dense);
KILN_ENGINE_API void destroy(runtime::Executable* exe);
struct ExecutableDeleter {
  void operator()(runtime::Executable* exe) const { destroy(exe); }
};
KILN_ENGINE_API std::size_t arena_bytes(const runtime::Executable& exe);
KILN_ENGINE_API const runtime::PlanInfo& plan_info(const runtime::Executable& exe);
/// The graph after the passes (the node ids plan_info().offload and print_graph use).
KILN_ENGINE_API const Graph& planned_graph(const runtime::Executable& exe);
/// inputs[i]/outputs[k]: dense buffers of graph input i / output k; arena: arena_bytes(), aligned.
KILN_ENGINE_API void run(const runtime::Executable& exe, const void* const* inputs, void* const* outputs,
                         void* arena);

#ifndef KILN_NO_IOSTREAM
/// One row per node of the planned graph: id, op, inputs, shape, dtype, fused group, memory.
KILN_ENGINE_API void print_graph(std::ostream& os, const runtime::Executable& exe);
/// One row per kernel launch: what it computes, its loop, its epilogue, its scratch.
KILN_ENGINE_API void print_plan(std::ostream& os, const runtime::Executable& exe);
#endif

}  // namespace engine
}  // namespace kiln

#if KILN_ENGINE_BODIES
#include "engine_impl.hpp"
#endif
