// One arch's copy of kiln's engine in a dispatching build (kiln::dispatch, cmake/KilnDispatch.cmake).
//
// Compiled once per arch with that arch's flags and KILN_DISPATCH_ARCH=sse2|avx2|scalar (scalar
// also defines KILN_NO_SIMD). kiln's namespace is renamed to kiln_arch_<arch> for the whole TU,
// so every inline function it emits (kernels, but also passes, the planner, Shape and Graph
// methods, all compiled with this arch's flags) has the arch in its mangled name: the linker
// cannot merge an AVX2 copy into the SSE2 engine or the program's baseline code. Putting only the
// kernel headers in an arch namespace would leave the passes and the core shared, and those are
// auto-vectorised with the arch's instructions too. The TU's one external symbol is
// kiln::dispatch::engine_<arch>() (dispatch/engine_table.hpp); kiln values cross it as bytes.
#ifndef KILN_DISPATCH_ARCH
#error "kiln_engine_arch.cpp: compile with -DKILN_DISPATCH_ARCH=sse2|avx2|scalar (cmake/KilnDispatch.cmake)"
#endif
#include <cstring>
#include <memory>
#include <ostream>
#include <type_traits>

#define KILN_DISPATCH_CAT_(a, b) a##b
#define KILN_DISPATCH_CAT(a, b) KILN_DISPATCH_CAT_(a, b)
#define KILN_DISPATCH_STR_(a) #a
#define KILN_DISPATCH_STR(a) KILN_DISPATCH_STR_(a)

// `#include <...>` is never macro-expanded, and no kiln header spells `kiln` except as the
// namespace: the rename reaches exactly kiln's own declarations.
#define kiln KILN_DISPATCH_CAT(kiln_arch_, KILN_DISPATCH_ARCH)
#include "kiln_engine.cpp"  // the engine, as kiln::compiled builds it

namespace kiln::dispatch_probe {
// An ordinary inline function with external linkage, like every engine function. Were the arch
// TUs to share its mangled name, the linker would keep one copy and every arch's table would
// report the same lanes (tests/test_dispatch.cpp checks they differ).
inline int lanes() { return kernels::kLanes; }
}  // namespace kiln::dispatch_probe
#undef kiln

#include <kiln/dispatch/engine_table.hpp>

// The table's functions are TU-local, and inside the arch's namespace too, so that their names in
// a linked binary say which arch they belong to (tests/dispatch_isa_check.cmake reads them).
namespace KILN_DISPATCH_CAT(kiln_arch_, KILN_DISPATCH_ARCH)::dispatch_entry {
namespace {

namespace k = KILN_DISPATCH_CAT(kiln_arch_, KILN_DISPATCH_ARCH);

// The flags must give the kernels the arch this TU is named for.
#define KILN_DISPATCH_ARCH_IS_sse2 1
#define KILN_DISPATCH_ARCH_IS_avx2 2
#define KILN_DISPATCH_ARCH_IS_scalar 3
#define KILN_DISPATCH_ARCH_ID KILN_DISPATCH_CAT(KILN_DISPATCH_ARCH_IS_, KILN_DISPATCH_ARCH)
#if KILN_DISPATCH_ARCH_ID == 1
static_assert(KILN_SIMD && k::kernels::kLanes == 4, "kiln_engine_arch.cpp (sse2): expected xsimd's sse2 (4 lanes)");
#elif KILN_DISPATCH_ARCH_ID == 2
static_assert(KILN_SIMD && k::kernels::kLanes == 8, "kiln_engine_arch.cpp (avx2): build with -mavx2 -mfma");
#elif KILN_DISPATCH_ARCH_ID == 3
static_assert(!KILN_SIMD, "kiln_engine_arch.cpp (scalar): build with -DKILN_NO_SIMD");
#else
#error "KILN_DISPATCH_ARCH must be sse2, avx2 or scalar"
#endif

// Values cross the table as bytes: only sound for trivially copyable types.
static_assert(std::is_trivially_copyable_v<k::Node> && std::is_trivially_copyable_v<k::Graph> &&
                  std::is_trivially_copyable_v<k::Status> && std::is_trivially_copyable_v<k::Shape> &&
                  std::is_trivially_copyable_v<k::DType> && std::is_trivially_copyable_v<k::runtime::PlanInfo>,
              "kiln::dispatch passes Node, Graph, Status, Shape, DType and PlanInfo as bytes");

using Exe = k::runtime::Executable;

template <class T>
void copy_in(T* to, const void* from, int count = 1) {
  if (count > 0) std::memcpy(static_cast<void*>(to), from, sizeof(T) * static_cast<std::size_t>(count));
}

std::size_t node_workspace_floats(const void* node, const void* in_shapes) {
  k::Node n;
  copy_in(&n, node);
  k::Shape shapes[k::kMaxInputs];
  copy_in(shapes, in_shapes, n.num_inputs);
  return k::engine::node_workspace_floats(n, shapes);
}

void run_node(const void* node, const void* const* in, const void* in_shapes, const void* in_dtypes, void* out,
              float* workspace) {
  k::Node n;
  copy_in(&n, node);
  k::Shape shapes[k::kMaxInputs];
  k::DType dtypes[k::kMaxInputs]{};
  copy_in(shapes, in_shapes, n.num_inputs);
  copy_in(dtypes, in_dtypes, n.num_inputs);
  k::engine::run_node(n, in, shapes, dtypes, out, workspace);
}

template <bool Observing>
void* build_plan(const void* graph, void* status) {
  auto g = std::make_unique<k::Graph>();
  copy_in(g.get(), graph);
  k::Status st;
  Exe* exe = Observing ? k::engine::build_observing(*g, st) : k::engine::build(*g, st);
  std::memcpy(status, static_cast<const void*>(&st), sizeof st);
  return exe;
}
void* build(const void* graph, void* status) { return build_plan<false>(graph, status); }
void* build_observing(const void* graph, void* status) { return build_plan<true>(graph, status); }

bool read_value(const void* exe, int node, const void* const* inputs, void* const* outputs, const void* arena,
                void* dense) {
  return k::engine::read_value(*static_cast<const Exe*>(exe), node, inputs, outputs, arena, dense);
}

void destroy(void* exe) { k::engine::destroy(static_cast<Exe*>(exe)); }

std::size_t arena_bytes(const void* exe) { return k::engine::arena_bytes(*static_cast<const Exe*>(exe)); }

void plan_info(const void* exe, void* info) {
  const k::runtime::PlanInfo& p = k::engine::plan_info(*static_cast<const Exe*>(exe));
  std::memcpy(info, static_cast<const void*>(&p), sizeof p);
}

void planned_graph(const void* exe, void* graph) {
  const k::Graph& g = k::engine::planned_graph(*static_cast<const Exe*>(exe));
  std::memcpy(graph, static_cast<const void*>(&g), sizeof g);
}

void run(const void* exe, const void* const* inputs, void* const* outputs, void* arena) {
  k::engine::run(*static_cast<const Exe*>(exe), inputs, outputs, arena);
}

void print_graph(std::ostream& os, const void* exe) { k::engine::print_graph(os, *static_cast<const Exe*>(exe)); }
void print_plan(std::ostream& os, const void* exe) { k::engine::print_plan(os, *static_cast<const Exe*>(exe)); }

constexpr kiln::dispatch::EngineTable kTable{
    KILN_DISPATCH_STR(KILN_DISPATCH_ARCH),
    k::kernels::kSimdName,
    k::kernels::kLanes,
    &k::dispatch_probe::lanes,
    sizeof(k::Node),
    sizeof(k::Graph),
    sizeof(k::Status),
    sizeof(k::Shape),
    sizeof(k::runtime::PlanInfo),
    &node_workspace_floats,
    &run_node,
    &build,
    &build_observing,
    &read_value,
    &destroy,
    &arena_bytes,
    &plan_info,
    &planned_graph,
    &run,
    &print_graph,
    &print_plan,
};

}  // namespace
}  // namespace KILN_DISPATCH_CAT(kiln_arch_, KILN_DISPATCH_ARCH)::dispatch_entry

namespace kiln::dispatch {
const EngineTable& KILN_DISPATCH_CAT(engine_, KILN_DISPATCH_ARCH)() {
  return KILN_DISPATCH_CAT(kiln_arch_, KILN_DISPATCH_ARCH)::dispatch_entry::kTable;
}
}  // namespace kiln::dispatch
