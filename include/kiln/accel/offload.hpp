// kiln/accel/offload.hpp — the offload half of compile(): partition, region compile, run, fallback.
//
//   kiln::CompileOptions opts;
//   opts.offload = kiln::accel::offload(my_npu);          // or offload(array, n, strict)
//   auto net = kiln::compile(model, opts);
//
// At the first call, after graph simplification and before fusion, the executable calls plan():
// every backend partitions the graph in turn (accel/partition.hpp; an earlier backend's regions
// win), each region is cut out as a self-contained Graph and handed to the backend's compile. A
// refused region goes back to the CPU (fused and planned as usual; the reason is kept), or fails
// the build when strict. The executable then pins each offloaded region to one step whose inputs
// and outputs live in its planned arena, and calls start()/finish() to run it. A failing run (or
// wait) runs the region on the CPU for that call — the region's graph interpreted with the eager
// kernels — or is an error when strict. Backends that throw are treated as failing.
//
// Only accel::offload() refers to these functions: a program that never registers a backend does
// not link them (the engine calls them through the OffloadHooks table).
#pragma once

#include <cstring>
#include <memory>
#include <vector>

#include "../trace/interpret.hpp"
#include "backend.hpp"

namespace kiln::accel {

struct OffloadState {
  struct RegionState {
    std::unique_ptr<Graph> graph;  // the region as a graph (see Region)
    std::vector<const char*> composite;
    RegionBinding binding;
    int backend = -1;
    void* handle = nullptr;
    bool in_flight = false;  // submitted, not yet waited for
    const void* ins[kMaxGraphIO]{};  // the buffers of the call in flight (for a CPU fallback at wait)
    void* outs[kMaxGraphIO]{};
  };
  Offload options;
  Report report;
  std::vector<RegionState> regions;  // indexed like Report::regions

  OffloadState() = default;
  OffloadState(const OffloadState&) = delete;
  OffloadState& operator=(const OffloadState&) = delete;
  ~OffloadState() {
    for (RegionState& r : regions) {
      if (!r.handle) continue;
      const Backend& b = options.backends[r.backend];
      if (r.in_flight && b.wait) {  // never free a handle the device still uses
        Status ignored;
        b.wait(b.context, r.handle, ignored);
      }
      if (b.release) b.release(b.context, r.handle);
    }
  }
};

namespace detail {

/// Region `nodes` of g as a self-contained graph; fills the binding. false with `why` when the
/// region cannot be expressed (too many boundary values).
inline bool extract_region(const Graph& g, const bool* in, const Partition& p, const Target& t,
                           OffloadState::RegionState& r, Status& why) {
  r.graph = std::make_unique<Graph>();
  Graph& sub = *r.graph;
  int map[kMaxNodes];
  for (int i = 0; i < g.size(); ++i) map[i] = -1;
  for (int i = 0; i < g.size(); ++i) {
    if (!in[i]) continue;
    Node n = g[i];
    for (int k = 0; k < n.num_inputs; ++k) {
      const int j = n.inputs[k];
      if (map[j] < 0) {  // a boundary value: constants and scalars are copied, the rest are inputs
        const Node& src = g[j];
        Node leaf;
        leaf.shape = src.shape;
        leaf.dtype = src.dtype;
        if (src.op == Op::constant || src.op == Op::scalar) {
          leaf = src;
        } else {
          leaf.op = Op::input;
          if (r.binding.num_inputs >= kMaxGraphIO) {
            why = Status(Errc::capacity_exceeded) << "the region reads more than " << kMaxGraphIO << " values";
            return false;
          }
          r.binding.inputs[r.binding.num_inputs++] = j;
        }
        map[j] = sub.add(leaf);
      }
      n.inputs[k] = map[j];
    }
    map[i] = sub.add(n);
  }
  for (int i = 0; i < g.size(); ++i) {
    if (!in[i]) continue;
    bool outside = g.is_output(i);
    for (int u = i + 1; u < g.size() && !outside; ++u)
      for (int k = 0; k < g[u].num_inputs; ++k) outside = outside || (g[u].inputs[k] == i && !in[u]);
    if (!outside) continue;
    if (r.binding.num_outputs >= kMaxGraphIO) {
      why = Status(Errc::capacity_exceeded) << "the region produces more than " << kMaxGraphIO << " values";
      return false;
    }
    r.binding.outputs[r.binding.num_outputs++] = i;
    sub.add_output(map[i]);
  }
  if (!sub.ok()) {
    why = sub.status();
    return false;
  }
  r.composite.assign(static_cast<std::size_t>(sub.size()), nullptr);
  for (int i = 0; i < g.size(); ++i)
    if (in[i] && p.composite_of[i] >= 0) r.composite[static_cast<std::size_t>(map[i])] = t.patterns[p.composite_of[i]].name;
  return true;
}

inline void* compile_region(const Backend& b, const Region& region, Status& why) {
  if (!b.compile) {
    why = Status(Errc::not_supported) << "the backend has no compile function";
    return nullptr;
  }
  if (!b.run && !b.is_async()) {
    why = Status(Errc::not_supported) << "the backend has neither run nor submit/wait";
    return nullptr;
  }
  void* h = nullptr;
#if KILN_EXCEPTIONS
  try {
    h = b.compile(b.context, region, why);
  } catch (...) {
    why = Status(Errc::not_supported) << "compile threw";
    return nullptr;
  }
#else
  h = b.compile(b.context, region, why);
#endif
  if (!h && why.ok()) why = Status(Errc::not_supported) << "compile returned no handle";
  return h;
}

/// Calls a backend's run/submit/wait, turning a throw or a silent failure into a Status.
template <class F>
bool device_call(F&& f, Status& why) {
  bool ok = false;
#if KILN_EXCEPTIONS
  try {
    ok = f();
  } catch (...) {
    why = Status(Errc::not_supported) << "the backend threw";
    return false;
  }
#else
  ok = f();
#endif
  if (!ok && why.ok()) why = Status(Errc::not_supported) << "the backend reported a failure";
  return ok;
}

inline OffloadState* plan(const Offload& o, const Graph& g, int* region_of, Status& status) {
  auto st = std::make_unique<OffloadState>();
  st->options = o;
  Report& rep = st->report;
  const int nb = o.num_backends < kMaxBackends ? o.num_backends : kMaxBackends;
  rep.num_backends = nb;
  for (int i = 0; i < kMaxNodes; ++i) {
    region_of[i] = -1;
    rep.region_of[i] = -1;
    rep.composite_head[i] = -1;
  }
  bool taken[kMaxNodes]{};
  auto part = std::make_unique<Partition>();
  for (int bi = 0; bi < nb; ++bi) {
    const Backend& b = o.backends[bi];
    rep.backend_names[bi] = b.target.name;
    partition(g, b.target, *part, taken);
    const Partition& p = *part;
    if (bi == 0)  // why a node stays on the CPU: the first backend's verdict
      for (int i = 0; i < g.size(); ++i) rep.placement[i] = p.placement[i];
    for (int r = 0; r < p.num_regions; ++r) {
      bool in[kMaxNodes]{};
      bool free = true;
      int count = 0;
      for (int i = 0; i < g.size(); ++i) {
        in[i] = p.region_of[i] == r;
        free = free && !(in[i] && taken[i]);
        count += in[i] ? 1 : 0;
      }
      if (!free || count == 0) continue;  // (cannot happen: taken nodes are never claimed)
      if (rep.num_regions >= kMaxRegions) break;
      const int R = rep.num_regions++;
      st->regions.emplace_back();
      OffloadState::RegionState& rs = st->regions.back();
      RegionReport& rr = rep.regions[R];
      rs.backend = rr.backend = bi;
      rr.nodes = count;
      rr.async = b.is_async();
      rs.binding.async = rr.async;
      Status why;
      if (extract_region(g, in, p, b.target, rs, why)) rs.handle = compile_region(b, Region{rs.graph.get(), rs.composite.data(), R}, why);
      rr.offloaded = rs.handle != nullptr;
      for (int i = 0; i < g.size(); ++i) {
        if (!in[i]) continue;
        taken[i] = true;
        rep.region_of[i] = R;
        rep.placement[i] = p.placement[i];
        rep.composite[i] = p.composite_of[i] >= 0 ? b.target.patterns[p.composite_of[i]].name : nullptr;
        rep.composite_head[i] = p.composite_head[i];
        rep.where[i] = rr.offloaded ? Where::device : Where::compile_failed;
        if (rr.offloaded) region_of[i] = R;
      }
      if (rr.offloaded) {
        ++rep.offloaded_regions;
        rep.offloaded_nodes += count;
        continue;
      }
      rr.status = why;
      ++rep.refused_regions;
      if (o.strict) {
        status = Status(Errc::not_supported) << "offload (strict): backend '" << b.target.name << "' refused region r" << R
                                             << " of " << count << " nodes: " << why.message();
        return nullptr;
      }
    }
  }
  return st.release();
}

inline bool cpu_fallback(OffloadState& s, int region, const void* const* ins, void* const* outs, const Status& why,
                         Status& status) {
  OffloadState::RegionState& r = s.regions[static_cast<std::size_t>(region)];
  RegionReport& rr = s.report.regions[region];
  rr.status = why;
  if (s.options.strict) {
    status = Status(Errc::not_supported) << "offload (strict): backend '" << s.options.backends[r.backend].target.name
                                         << "' failed to run region r" << region << ": " << why.message();
    return false;
  }
  ++rr.run_fallbacks;
  ++s.report.run_fallbacks;
  const Graph& sub = *r.graph;
  kiln::detail::Interpreter cpu(sub);
  cpu.run(ins);
  for (int k = 0; k < sub.num_outputs(); ++k) {
    const Node& n = sub[sub.output(k)];
    std::memcpy(outs[k], cpu.value(sub.output(k)), static_cast<std::size_t>(n.shape.numel()) * dtype_size(n.dtype));
  }
  return true;
}

inline bool start(OffloadState& s, int region, const void* const* ins, void* const* outs, Status& status) {
  OffloadState::RegionState& r = s.regions[static_cast<std::size_t>(region)];
  const Backend& b = s.options.backends[r.backend];
  Status why;
  if (b.is_async()) {
    for (int k = 0; k < r.binding.num_inputs; ++k) r.ins[k] = ins[k];
    for (int k = 0; k < r.binding.num_outputs; ++k) r.outs[k] = outs[k];
    r.in_flight = device_call([&] { return b.submit(b.context, r.handle, ins, outs, why); }, why);
    return r.in_flight || cpu_fallback(s, region, ins, outs, why, status);
  }
  if (device_call([&] { return b.run(b.context, r.handle, ins, outs, why); }, why)) return true;
  return cpu_fallback(s, region, ins, outs, why, status);
}

inline bool finish(OffloadState& s, int region, Status& status) {
  OffloadState::RegionState& r = s.regions[static_cast<std::size_t>(region)];
  if (!r.in_flight) return true;  // submit failed: the CPU already ran it
  r.in_flight = false;
  const Backend& b = s.options.backends[r.backend];
  Status why;
  if (device_call([&] { return b.wait(b.context, r.handle, why); }, why)) return true;
  return cpu_fallback(s, region, r.ins, r.outs, why, status);
}

inline const RegionBinding& binding(const OffloadState& s, int region) {
  return s.regions[static_cast<std::size_t>(region)].binding;
}
inline const Report& report(const OffloadState& s) { return s.report; }
inline void destroy(OffloadState* s) { delete s; }

inline const OffloadHooks& hooks() {
  static constexpr OffloadHooks table{&plan, &binding, &report, &start, &finish, &destroy};
  return table;
}

}  // namespace detail

/// CompileOptions::offload for `backends[0..n)` (earlier backends win overlapping regions). The
/// backends must outlive every model compiled with them.
inline Offload offload(const Backend* backends, int n, bool strict = false) {
  return Offload{backends, n, strict, &detail::hooks()};
}
inline Offload offload(const Backend& backend, bool strict = false) { return offload(&backend, 1, strict); }

}  // namespace kiln::accel
