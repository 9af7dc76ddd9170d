// kiln/runtime/executable.hpp — a planned graph, lowered to kernel calls, ready to run.
//
// Built once per guard at the first call: simplify, fuse, plan memory, lower
// every group to a Step (operand strides, programs, GEMM epilogue, packed
// weights). run() then only resolves a handful of base pointers and calls one
// kernel per step: no allocation, no planning, no strings.
#pragma once

#include <memory>
#include <vector>

#include "../accel/backend.hpp"
#include "../passes/fold_channel_affine.hpp"
#include "../passes/memory_plan.hpp"
#include "../passes/simplify.hpp"
#include "eager.hpp"
#include "int8_steps.hpp"
#include "lower.hpp"
#include "row_gemm.hpp"
#include "step_run.hpp"
#include "plan_info.hpp"

namespace kiln::runtime {

/// A heap buffer of floats aligned to kAlignment (packed weights, folded constants): the GEMM's
/// batch-1 path reads packed panels much faster from whole cache lines.
class AlignedFloats {
 public:
  explicit AlignedFloats(std::size_t n) : size_(n) {
    data_ = static_cast<float*>(::operator new(align_up((n ? n : 1) * sizeof(float)), std::align_val_t{kAlignment}));
    std::memset(static_cast<void*>(data_), 0, (n ? n : 1) * sizeof(float));
  }
  AlignedFloats(AlignedFloats&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; }
  AlignedFloats& operator=(AlignedFloats&&) = delete;
  AlignedFloats(const AlignedFloats&) = delete;
  ~AlignedFloats() {
    if (data_) ::operator delete(static_cast<void*>(data_), std::align_val_t{kAlignment});
  }
  float* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  float* data_ = nullptr;
  std::size_t size_ = 0;
};

class Executable {
 public:
  /// Plans `traced` (consumed). On failure returns false and `status` says why. With `offload`
  /// (accel/offload.hpp) the backends' regions become offload steps. With `observe` the plan is
  /// the observation plan of runtime/observe.hpp: no graph rewrites (node ids stay `traced`'s),
  /// one step per node (Fusion::observe), no memory reuse.
  bool build(const Graph& traced, Status& status, const accel::Offload* offload = nullptr, bool observe = false) {
    graph_ = std::make_unique<Graph>(traced);
    fusion_ = std::make_unique<passes::Fusion>();
    mem_ = std::make_unique<passes::MemoryPlan>();
    Graph& g = *graph_;
    info_ = PlanInfo();

    // Graph-level passes until nothing changes (each is cheap at these sizes).
    for (int round = 0; round < 4 && !observe; ++round) {
      const int s = passes::simplify_algebra(g);
      const int c = passes::eliminate_common_subexpressions(g);
      int f = passes::fold_constants(g, [this](const Graph& gg, int id) { return fold_node(gg, id); });
      f += passes::fold_channel_affine(g, [this](const void* data, index_t rows, index_t cols, const void* scale,
                                                 const void* shift) {
        return affine_rows(static_cast<const float*>(data), rows, cols, static_cast<const float*>(scale),
                           static_cast<const float*>(shift));
      });
      info_.dead += g.remove_dead();
      info_.simplified += s;
      info_.cse += c;
      info_.folded += f;
      if (s + c + f == 0) break;
    }
    if (!g.ok()) {
      status = g.status();
      return false;
    }
    int pinned[kMaxNodes];
    if (offload && offload->active()) {
      hooks_ = offload->hooks;
      offload_ = std::unique_ptr<accel::OffloadState, OffloadDeleter>(hooks_->plan(*offload, g, pinned, status),
                                                                      OffloadDeleter{hooks_->destroy});
      if (!offload_) return false;
      info_.offload = &hooks_->report(*offload_);
    }
    fusion_->observe = observe;
    if (!passes::fuse(g, *fusion_, offload_ ? pinned : nullptr)) {
      status = Status(Errc::invalid_argument) << "fusion: the group graph has a cycle (internal error)";
      return false;
    }
    lower();
    if (!lower_status_.ok()) {
      status = lower_status_;
      return false;
    }
    std::size_t ws[kMaxNodes]{};
    for (const Step& s : steps_) ws[s.group] = workspace_bytes(s);
    int busy_until[kMaxNodes]{};
    if (offload_) schedule_waits(busy_until);
    passes::plan_memory(g, *fusion_, ws, *mem_, offload_ ? busy_until : nullptr);
    for (Step& s : steps_) {
      s.workspace_slot = mem_->workspace_slot[s.group];
      if (s.kind == passes::GroupKind::gemm) resolve_gemm(s);
    }
    bool plain = !offload_ && g.num_updates() == 0;
    for (int k = 0; k < g.num_outputs(); ++k) plain = plain && mem_->output_copy_from[k] < 0;
    row_chain_.build(steps_, plain, [this](const Step& s) { return packed_[static_cast<std::size_t>(s.packed)].data(); });
    info_.nodes = g.size();
    info_.groups = fusion_->num_groups;
    info_.kernels = static_cast<int>(steps_.size());
    info_.arena_bytes = mem_->arena_bytes;
    info_.lower_bound = mem_->lower_bound;
    info_.in_place = mem_->in_place;
    info_.updates = g.num_updates();
    info_.aliased_updates = mem_->aliased_updates;
    for (const auto& p : packed_) info_.packed_weight_bytes += p.size() * sizeof(float);
    return true;
  }

  const Graph& graph() const { return *graph_; }
  const passes::Fusion& fusion() const { return *fusion_; }
  const passes::MemoryPlan& memory() const { return *mem_; }
  const PlanInfo& info() const { return info_; }
  const std::vector<Step>& steps() const { return steps_; }
  const std::vector<Int8Step>& int8_steps() const { return int8_; }
  const RowGemmChain& row_chain() const { return row_chain_; }
  std::size_t arena_bytes() const { return mem_->arena_bytes; }

  /// Runs the plan. inputs[i]: dense data of graph input i; outputs[k]: dense buffer for output k;
  /// arena: arena_bytes() bytes, kAlignment-aligned.
  void run(const void* const* inputs, void* const* outputs, void* arena) const {
    if (row_chain_.active()) return row_chain_.run(inputs, outputs, static_cast<char*>(arena));  // batch-1 layers
    run_steps(inputs, outputs, arena);
  }

 private:
  // Out of line so the batch-1 chain's call does not pay this loop's frame (a tenth of its cost).
#if defined(__GNUC__) || defined(__clang__)
  __attribute__((noinline))
#endif
  void run_steps(const void* const* inputs, void* const* outputs, void* arena) const {
    Bindings b{inputs, outputs, static_cast<char*>(arena)};
    if (offload_) {
      if (!run_offloaded(b)) return;
    } else {
      for (const Step& s : steps_) {
        if (s.kind == passes::GroupKind::gemm && !s.conv) run_gemm(s, b);  // the batch-1 MLP path: no detour
        else run_step(s, b);
      }
    }
    const Graph& g = *graph_;
    for (int k = 0; k < g.num_outputs(); ++k) {
      const int from = mem_->output_copy_from[k];
      if (from < 0) continue;
      const Node& n = g[from];
      const passes::Layout& l = fusion_->layouts[from];
      if (n.op == Op::scalar) {
        std::memcpy(outputs[k], &n.p0, sizeof(float));
        continue;
      }
      strided_copy(ptr(b, l.base, l.offset, n.dtype), n.dtype, n.shape, l.strides, outputs[k]);
    }
    // Parameter write-back of the updates the planner could not alias, after every step has read
    // the old values (the plan keeps each such new value alive to the end).
    for (int k = 0; k < g.num_updates(); ++k) {
      const Update& u = g.update(k);
      if (mem_->place[u.value].kind == passes::Storage::parameter) continue;  // written in place
      const Node& n = g[u.value];
      const passes::Layout& l = fusion_->layouts[u.value];
      strided_copy(ptr(b, l.base, l.offset, n.dtype), n.dtype, n.shape, l.strides, const_cast<void*>(g[u.param].data));
    }
  }

 private:
  struct Bindings {
    const void* const* inputs;
    void* const* outputs;
    char* arena;
  };

  // ---- constant folding storage -------------------------------------------------------------
  const float* fold_node(const Graph& g, int id) {
    const Node& n = g[id];
    if (n.dtype != DType::f32 && n.dtype != DType::boolean) return nullptr;
    const void* ins[kMaxInputs]{};
    Shape shapes[kMaxInputs];
    DType dts[kMaxInputs]{};
    for (int k = 0; k < n.num_inputs; ++k) {
      const Node& in = g[n.inputs[k]];
      ins[k] = in.op == Op::scalar ? static_cast<const void*>(&in.p0) : in.data;
      shapes[k] = in.shape;
      dts[k] = in.dtype;
    }
    const std::size_t count = static_cast<std::size_t>(n.shape.numel());
    folded_.emplace_back(count ? (count * dtype_size(n.dtype) + 3) / 4 : 1);
    std::vector<float> ws(node_workspace_floats(n, shapes) + 16);
    float* wsa = align_up(ws.data());
    run_node(n, ins, shapes, dts, folded_.back().data(), wsa);
    return folded_.back().data();
  }

  /// data[r][c] * scale[r] + shift[r] into storage the executable owns (batch-norm folding).
  const void* affine_rows(const float* data, index_t rows, index_t cols, const float* scale, const float* shift) {
    folded_.emplace_back(static_cast<std::size_t>(rows * cols));
    float* out = folded_.back().data();
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < cols; ++c)
        out[r * cols + c] = data[r * cols + c] * (scale ? scale[r] : 1.f) + (shift ? shift[r] : 0.f);
    return out;
  }

  // ---- lowering (runtime/lower.hpp, shared with the static runner) -------------------------
  /// The lowering's sink: steps, specs and programs in vectors; constant weights prepacked once.
  struct Sink {
    Executable& e;
    int add_spec(const ValueSpec& s) {
      e.specs_.push_back(s);
      return static_cast<int>(e.specs_.size()) - 1;
    }
    const ValueSpec& spec(int k) const { return e.specs_[static_cast<std::size_t>(k)]; }
    int num_specs() const { return static_cast<int>(e.specs_.size()); }
    kernels::EwInstr* code_space(int& begin, int& cap) {
      begin = static_cast<int>(e.code_.size());
      cap = 4 * e.graph_->size() + 8;
      e.code_.resize(e.code_.size() + static_cast<std::size_t>(cap));
      return e.code_.data() + begin;
    }
    void commit_code(int n) { e.code_.resize(e.code_.size() - static_cast<std::size_t>(4 * e.graph_->size() + 8 - n)); }
    int prepack_matmul(const Graph& g, int base, index_t offset, index_t K, index_t N, index_t rs, index_t cs) {
      const float* bp = static_cast<const float*>(g[base].data) + offset;
      AlignedFloats packed(kernels::packed_b_size(K, N));
      kernels::pack_b(K, N, kernels::MatrixRef{bp, rs, cs}, packed.data());
      e.packed_.push_back(std::move(packed));
      return static_cast<int>(e.packed_.size()) - 1;
    }
    int prepack_conv(const Graph& g, const Node& wn, const passes::Layout& lb, const kernels::WindowGeometry& geo,
                     bool w_dense) {
      std::vector<float> dense;
      const float* w = static_cast<const float*>(g[lb.base].data) + lb.offset;
      if (!w_dense) {
        dense.resize(static_cast<std::size_t>(wn.shape.numel()));
        strided_copy(w, DType::f32, wn.shape, lb.strides, dense.data());
        w = dense.data();
      }
      AlignedFloats packed(kernels::conv_packed_weight_floats(geo));
      kernels::conv_pack_weights(geo, w, packed.data());
      e.packed_.push_back(std::move(packed));
      return static_cast<int>(e.packed_.size()) - 1;
    }
    int lower_int8(const Graph& g, const passes::Fusion& f, int root) {
      e.int8_.emplace_back();
      const Status st = runtime::lower_int8(g, f, root, e.int8_.back());
      if (!st.ok() && e.lower_status_.ok()) e.lower_status_ = st;
      return static_cast<int>(e.int8_.size()) - 1;
    }
    bool direct_weights() const { return false; }  // constant weights are prepacked instead
    void lower_offload(Step& s, const passes::Group& grp) { e.lower_offload(s, grp); }
    void add_step(const Step& s) { e.steps_.push_back(s); }
  };
  // For the offload fragment (executable_offload.hpp): specs as the shared lowering makes them.
  int add_spec(const ValueSpec& v) { return Sink{*this}.add_spec(v); }
  ValueSpec spec_over(int node, const Shape& loop) {
    Sink sink{*this};
    return Lowering<Sink>(*graph_, *fusion_, sink).spec_over(node, loop);
  }
  void lower() {
    steps_.clear();
    code_.clear();
    specs_.clear();
    int8_.clear();
    lower_status_ = Status();
    int8_.reserve(static_cast<std::size_t>(fusion_->num_groups));  // steps point into their own buffers
    Sink sink{*this};
    lower_groups(*graph_, *fusion_, sink);
  }
  std::size_t workspace_bytes(const Step& s) const {
    if (s.kind == passes::GroupKind::offload) return offload_workspace_bytes(s);
    if (s.kind == passes::GroupKind::int8) return int8_[static_cast<std::size_t>(s.int8)].workspace_bytes;
    return step_workspace_bytes(*graph_, s);
  }

  Loc locate(int base, index_t offset, DType t) const {
    const passes::Placement& p = mem_->place[base];
    const index_t bytes = offset * static_cast<index_t>(dtype_size(t));
    Loc l;
    switch (p.kind) {
      case passes::Storage::input: l = Loc{Loc::Root::input, p.index, bytes, nullptr}; break;
      case passes::Storage::output: l = Loc{Loc::Root::output, p.index, bytes, nullptr}; break;
      case passes::Storage::arena: l = Loc{Loc::Root::arena, 0, static_cast<index_t>(p.offset) + bytes, nullptr}; break;
      case passes::Storage::constant:
        l.fixed = static_cast<const char*>((*graph_)[base].data) + bytes;
        break;
      case passes::Storage::scalar: l.fixed = reinterpret_cast<const char*>(&(*graph_)[base].p0); break;
      case passes::Storage::parameter:  // an update written in place: the parameter's own buffer
        l.fixed = static_cast<const char*>((*graph_)[p.index].data) + bytes;
        break;
      case passes::Storage::none: break;
    }
    return l;
  }
  void resolve_gemm(Step& s) const {
    s.a_at = locate(s.a.base, s.a.offset, s.a.dtype);
    if (s.packed < 0) s.b_at = locate(s.b.base, s.b.offset, s.b.dtype);
    s.c_at = locate(s.c.base, s.c.offset, s.c.dtype);
    if (s.bias >= 0) {
      const ValueSpec& v = specs_[static_cast<std::size_t>(s.bias)];
      s.bias_at = locate(v.base, v.offset, v.dtype);
    }
    s.workspace_bytes = s.workspace_slot >= 0 ? static_cast<index_t>(mem_->slot_offset[s.workspace_slot]) : -1;
  }
  static const char* at(const Bindings& b, const Loc& l) {
    switch (l.root) {
      case Loc::Root::fixed: return l.fixed;
      case Loc::Root::arena: return b.arena + l.bytes;
      case Loc::Root::input: return static_cast<const char*>(b.inputs[l.index]) + l.bytes;
      case Loc::Root::output: return static_cast<const char*>(b.outputs[l.index]) + l.bytes;
    }
    return nullptr;
  }

  // ---- execution (runtime/step_run.hpp, shared with the static runner) ----------------------
  const char* base_ptr(const Bindings& b, int base) const {
    const passes::Placement& p = mem_->place[base];
    switch (p.kind) {
      case passes::Storage::input: return static_cast<const char*>(b.inputs[p.index]);
      case passes::Storage::output: return static_cast<const char*>(b.outputs[p.index]);
      case passes::Storage::constant: return static_cast<const char*>((*graph_)[base].data);
      case passes::Storage::arena: return b.arena + p.offset;
      case passes::Storage::scalar: return reinterpret_cast<const char*>(&(*graph_)[base].p0);
      case passes::Storage::parameter: return static_cast<const char*>((*graph_)[p.index].data);
      case passes::Storage::none: break;
    }
    return nullptr;
  }
  const char* ptr(const Bindings& b, int base, index_t offset, DType t) const {
    return base_ptr(b, base) + offset * dtype_size(t);
  }

  /// Where a step's values are during one run (the Env of runtime/step_run.hpp).
  struct Env {
    const Executable& e;
    Bindings b;
    const char* ptr(int base, index_t offset, DType t) const { return e.ptr(b, base, offset, t); }
    const char* at(const Loc& l) const { return Executable::at(b, l); }
    const ValueSpec& spec(int k) const { return e.specs_[static_cast<std::size_t>(k)]; }
    kernels::EwProgram program(const Step& s) const {
      return kernels::EwProgram{e.code_.data() + s.code_begin, s.code_size, s.num_regs};
    }
    const float* packed(const Step& s) const {
      return s.packed >= 0 ? e.packed_[static_cast<std::size_t>(s.packed)].data() : nullptr;
    }
    float* workspace(const Step& s) const {
      if (s.workspace_slot < 0) return nullptr;
      return reinterpret_cast<float*>(b.arena + e.mem_->slot_offset[s.workspace_slot]);
    }
    const Node& root(const Step& s) const { return (*e.graph_)[s.node]; }
    const Shape& input_shape(const Step& s, int k) const { return (*e.graph_)[root(s).inputs[k]].shape; }
    void int8(const Step& s) const { e.run_int8_step(s, b); }
  };

  float* workspace(const Bindings& b, const Step& s) const { return Env{*this, b}.workspace(s); }
  void run_step(const Step& s, const Bindings& b) const { step_run::any(s, Env{*this, b}); }
  void run_gemm(const Step& s, const Bindings& b) const { step_run::gemm(s, Env{*this, b}); }

  /// An int8 step: operands in place when dense, else copied into the workspace first.
  void run_int8_step(const Step& s, const Bindings& b) const {
    const Int8Step& q = int8_[static_cast<std::size_t>(s.int8)];
    char* ws = reinterpret_cast<char*>(workspace(b, s));
    char* scratch = ws;  // run_int8's own scratch first, then dense copies of strided operands
    if (ws) ws += align_up(q.scratch_bytes);
    auto dense = [&](const Int8Operand& o) -> const void* {
      if (o.base < 0) return nullptr;
      const char* p = ptr(b, o.base, o.offset, o.dtype);
      if (o.dense) return p;
      strided_copy(p, o.dtype, o.shape, o.strides, ws);
      const char* copy = ws;
      ws += align_up(static_cast<std::size_t>(o.shape.numel()) * dtype_size(o.dtype));
      return copy;
    };
    const void* x = dense(q.x);
    const void* x2 = dense(q.x2);
    const Status st = run_int8(q.call, x, x2, q.w, q.bias, const_cast<char*>(base_ptr(b, s.node)), scratch);
    if (!st.ok()) fail(st);  // shapes were checked when the plan was built: not expected
  }

  std::unique_ptr<Graph> graph_;
  std::unique_ptr<passes::Fusion> fusion_;
  std::unique_ptr<passes::MemoryPlan> mem_;
  std::vector<Step> steps_;
  std::vector<kernels::EwInstr> code_;
  std::vector<ValueSpec> specs_;
  std::vector<AlignedFloats> packed_;
  std::vector<AlignedFloats> folded_;
  std::vector<Int8Step> int8_;
  RowGemmChain row_chain_;  // every step a batch-1 layer: run() goes straight to the M = 1 kernels
  Status lower_status_;
  PlanInfo info_;
  // Accelerator regions (accel/offload.hpp), reached only through the hooks: null without backends.
  const accel::OffloadHooks* hooks_ = nullptr;
  struct OffloadDeleter {
    void (*destroy)(accel::OffloadState*);
    void operator()(accel::OffloadState* s) const { destroy(s); }
  };
  std::unique_ptr<accel::OffloadState, OffloadDeleter> offload_{nullptr, OffloadDeleter{nullptr}};

  // The offload steps' lowering and run (a fragment of this class: it needs its private helpers).
#include "executable_offload.hpp"
};

}  // namespace kiln::runtime
