// The dispatching seam of kiln::dispatch (cmake/KilnDispatch.cmake): runtime/engine.hpp's
// functions, compiled for the baseline x86-64 (SSE2), each forwarding to the engine of one arch
// (cmake/kiln_engine_arch.cpp, one TU per arch). The engine is chosen once, at first use, from
// KILN_ARCH or xsimd's CPUID; an executable keeps the engine that planned it, so running a plan
// costs one indirect call (engine::run), never one per step or element.
#ifndef KILN_SEPARATE_COMPILATION
#define KILN_SEPARATE_COMPILATION
#endif
#ifdef KILN_IMPLEMENTATION
#error "kiln_dispatch.cpp is the front-end side of the seam: compile it without KILN_IMPLEMENTATION"
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>

#include <xsimd/config/xsimd_cpuid.hpp>

#include <kiln/accel/backend.hpp>
#include <kiln/dispatch.hpp>
#include <kiln/dispatch/engine_table.hpp>
#include <kiln/ir/graph.hpp>
#include <kiln/runtime/engine.hpp>

namespace kiln::runtime {
/// In a dispatching build the seam's Executable is a handle on one arch's executable.
class Executable {
 public:
  const dispatch::EngineTable* engine = nullptr;
  void* impl = nullptr;
  PlanInfo info;
  std::unique_ptr<Graph> planned;  // copied once from the arch's plan (planned_graph())
};
}  // namespace kiln::runtime

namespace kiln::dispatch {
namespace {

using Table = EngineTable;

// Best first.
const Table* engine_at(int i) {
  switch (i) {
    case 0: return &engine_avx2();
    case 1: return &engine_sse2();
    case 2: return &engine_scalar();
    default: return nullptr;
  }
}
constexpr int kNumEngines = 3;

const Table* find(const char* name) {
  for (int i = 0; i < kNumEngines; ++i)
    if (name && std::strcmp(engine_at(i)->name, name) == 0) return engine_at(i);
  return nullptr;
}

bool runs_here(const Table& t) {
  const auto cpu = xsimd::available_architectures();
  if (std::strcmp(t.name, "avx2") == 0) return cpu.fma3_avx2;  // built with -mavx2 -mfma
  if (std::strcmp(t.name, "sse2") == 0) return cpu.sse2;
  return true;  // scalar
}

const Table& best() {
  for (int i = 0; i < kNumEngines; ++i)
    if (runs_here(*engine_at(i))) return *engine_at(i);
  return engine_scalar();
}

// The arch TUs must see the IR types as this TU does (same KILN_MAX_NODES etc.): the values cross
// the table as bytes.
void check_layout(const Table& t) {
  if (t.node_size != sizeof(Node) || t.graph_size != sizeof(Graph) || t.status_size != sizeof(Status) ||
      t.shape_size != sizeof(Shape) || t.plan_info_size != sizeof(runtime::PlanInfo)) {
    std::fprintf(stderr, "kiln::dispatch: the %s engine was compiled with other IR sizes than the program "
                         "(KILN_MAX_NODES or another capacity macro differs between TUs)\n", t.name);
    std::abort();
  }
}

std::atomic<const Table*> g_selected{nullptr};

const Table& selected() {
  if (const Table* t = g_selected.load(std::memory_order_acquire)) return *t;
  const Table* t = &best();
  if (const char* env = std::getenv("KILN_ARCH"); env && *env) {
    const Table* forced = find(env);
    if (forced && runs_here(*forced)) t = forced;
    else
      std::fprintf(stderr, "kiln::dispatch: KILN_ARCH=%s is %s; using %s\n", env,
                   forced ? "not supported by this CPU" : "not an engine of this build (avx2, sse2, scalar)", t->name);
  }
  for (int i = 0; i < kNumEngines; ++i) check_layout(*engine_at(i));
  const Table* expected = nullptr;
  g_selected.compare_exchange_strong(expected, t, std::memory_order_acq_rel);  // first selection wins
  return *g_selected.load(std::memory_order_acquire);
}

}  // namespace

int num_arches() { return kNumEngines; }
const char* arch_name(int i) { return engine_at(i) ? engine_at(i)->name : nullptr; }
bool cpu_supports(const char* name) {
  const Table* t = find(name);
  return t && runs_here(*t);
}
const char* best_arch() { return best().name; }
const char* current_arch() { return selected().name; }
const char* current_simd_name() { return selected().simd_name; }
int current_lanes() { return selected().lanes; }

Status set_arch(const char* name) {
  const Table* t = find(name);
  if (!t || !runs_here(*t)) {
    Status s(Errc::not_supported);
    s << "dispatch::set_arch: '" << (name ? name : "(null)") << "' is "
      << (t ? "not supported by this CPU" : "not an engine of this build") << " (this CPU runs:";
    for (int i = 0; i < kNumEngines; ++i)
      if (runs_here(*engine_at(i))) s << ' ' << engine_at(i)->name;
    return s << ')';
  }
  selected();  // the layout check, once
  g_selected.store(t, std::memory_order_release);
  return Status();
}

}  // namespace kiln::dispatch

// ---- runtime/engine.hpp's functions --------------------------------------------------------------
namespace kiln::engine {

std::size_t node_workspace_floats(const Node& n, const Shape* in_shapes) {
  return dispatch::selected().node_workspace_floats(&n, in_shapes);
}

void run_node(const Node& n, const void* const* in, const Shape* in_shapes, const DType* in_dtypes, void* out,
              float* workspace) {
  dispatch::selected().run_node(&n, in, in_shapes, in_dtypes, out, workspace);
}

namespace {
/// The dispatcher's Executable around engine `t`'s plan `impl` (null: the build failed).
runtime::Executable* wrap(const dispatch::Table& t, void* impl) {
  if (!impl) return nullptr;
  auto exe = std::make_unique<runtime::Executable>();
  exe->engine = &t;
  exe->impl = impl;
  t.plan_info(exe->impl, &exe->info);
  exe->planned = std::make_unique<Graph>();
  t.planned_graph(exe->impl, exe->planned.get());
  return exe.release();
}
}  // namespace

runtime::Executable* build(const Graph& traced, Status& status, const accel::Offload* offload) {
  if (offload && offload->active()) {
    status = Status(Errc::not_supported) << "compile: accelerator offload is not available in a dispatching "
                                            "build (kiln::dispatch); link kiln::compiled or use header-only kiln";
    return nullptr;
  }
  const dispatch::Table& t = dispatch::selected();
  return wrap(t, t.build(&traced, &status));
}

runtime::Executable* build_observing(const Graph& traced, Status& status) {
  const dispatch::Table& t = dispatch::selected();
  return wrap(t, t.build_observing(&traced, &status));
}

bool read_value(const runtime::Executable& exe, int node, const void* const* inputs, void* const* outputs,
                const void* arena, void* dense) {
  return exe.engine->read_value(exe.impl, node, inputs, outputs, arena, dense);
}

void destroy(runtime::Executable* exe) {
  if (!exe) return;
  if (exe->impl) exe->engine->destroy(exe->impl);
  delete exe;
}

std::size_t arena_bytes(const runtime::Executable& exe) { return exe.engine->arena_bytes(exe.impl); }
const runtime::PlanInfo& plan_info(const runtime::Executable& exe) { return exe.info; }
const Graph& planned_graph(const runtime::Executable& exe) { return *exe.planned; }

void run(const runtime::Executable& exe, const void* const* inputs, void* const* outputs, void* arena) {
  exe.engine->run(exe.impl, inputs, outputs, arena);
}

#ifndef KILN_NO_IOSTREAM
void print_graph(std::ostream& os, const runtime::Executable& exe) { exe.engine->print_graph(os, exe.impl); }
void print_plan(std::ostream& os, const runtime::Executable& exe) { exe.engine->print_plan(os, exe.impl); }
#endif

}  // namespace kiln::engine
