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
#include "plan_info.hpp"

namespace kiln::runtime {

/// A value read or written by a step: its base buffer, element offset, and strides over the
/// step's loop shape.
struct ValueSpec {
  int base = -1;
  index_t offset = 0;
  Strides strides;
  DType dtype = DType::f32;
};

/// An address the plan knows up to the call's buffers: a fixed address (captured, folded or
/// scalar data) or a byte offset into the arena, an input or an output. Resolved once at build
/// time so the batch-1 call path spends a few instructions per operand, not a walk through the
/// memory plan and the graph.
struct Loc {
  enum class Root : std::uint8_t { fixed, arena, input, output };
  Root root = Root::fixed;
  int index = 0;
  index_t bytes = 0;
  const char* fixed = nullptr;
};

struct Step {
  passes::GroupKind kind = passes::GroupKind::elementwise;
  int group = -1;
  int node = -1;  // the group's root, or its first member
  Shape loop;
  int code_begin = 0, code_size = 0, num_regs = 0;
  int op_begin = 0, num_ops = 0;
  int tgt_begin = 0, num_tgts = 0;
  // reduce / softmax
  ReduceKind rk = ReduceKind::sum;
  int axis = 0;
  bool log = false;
  // gemm: C(batch, M, N) = A(batch, M, K) B(batch, K, N); A/B strides over [batch..., M|K, K|N]
  index_t M = 0, N = 0, K = 0;
  Shape batch;
  ValueSpec a, b, c;  // c: where the raw/bias/clamped product lands (contiguous)
  int packed = -1;    // index into packed weights, or -1 to pack on the fly
  int bias = -1;      // spec index (strides over the output) of a bias applied in registers
  bool clamp = false;
  float lo = 0.f, hi = 0.f;
  int workspace_slot = -1;
  // gemm, resolved after memory planning: operand addresses and the scratch offset (-1: none).
  Loc a_at, b_at, c_at, bias_at;
  index_t workspace_bytes = -1;
  // conv2d (a gemm group rooted at a conv) and window ops (pool2d, pad, upsample): a is the
  // input, b the conv weight, both with strides over their own shapes. dense_a / dense_b: copied
  // densely into the workspace first (the kernels need contiguous channels; a pointwise conv reads
  // its input as a matrix; a run-time weight must be OHWI-contiguous). rows_merge: every tail
  // operand's (n, oh, ow) rows form one strided run, so a tail block needs no splitting.
  kernels::WindowGeometry window;
  bool conv = false, dense_a = false, dense_b = false, rows_merge = true;
  // offload: the accelerator region (operands: its inputs, targets: its outputs) and, when it
  // runs asynchronously, the step before which it is waited for (steps().size(): at the end).
  int region = -1, wait_at = -1;
  int int8 = -1;  // int8 ops: index of the Int8Step (runtime/int8_steps.hpp)
};

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
  /// (accel/offload.hpp) the backends' regions become offload steps.
  bool build(const Graph& traced, Status& status, const accel::Offload* offload = nullptr) {
    graph_ = std::make_unique<Graph>(traced);
    fusion_ = std::make_unique<passes::Fusion>();
    mem_ = std::make_unique<passes::MemoryPlan>();
    Graph& g = *graph_;
    info_ = PlanInfo();

    // Graph-level passes until nothing changes (each is cheap at these sizes).
    for (int round = 0; round < 4; ++round) {
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
  std::size_t arena_bytes() const { return mem_->arena_bytes; }

  /// Runs the plan. inputs[i]: dense data of graph input i; outputs[k]: dense buffer for output k;
  /// arena: arena_bytes() bytes, kAlignment-aligned.
  void run(const void* const* inputs, void* const* outputs, void* arena) const {
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

  // ---- lowering ---------------------------------------------------------------------------
  /// How `node` is read over `loop`. With unit_dim >= 0 the strides are computed over `loop`
  /// without that dimension and a stride-0 dimension is inserted there (a vector operand of a
  /// matmul gets an explicit M = 1 that NumPy alignment would put in the wrong place).
  ValueSpec spec_over(int node, const Shape& loop, int unit_dim = -1) const {
    const passes::Layout& l = fusion_->layouts[node];
    const Node& n = (*graph_)[node];
    if (unit_dim < 0) return ValueSpec{l.base, l.offset, passes::operand_strides(n.shape, l, loop), n.dtype};
    Shape real;
    for (int d = 0; d < loop.rank(); ++d)
      if (d != unit_dim) real.push_back(loop[d]);
    const Strides st = passes::operand_strides(n.shape, l, real);
    Strides out;
    for (int d = 0, k = 0; d < loop.rank(); ++d) out[d] = d == unit_dim ? 0 : st[k++];
    return ValueSpec{l.base, l.offset, out, n.dtype};
  }
  int add_spec(const ValueSpec& s) {
    specs_.push_back(s);
    return static_cast<int>(specs_.size()) - 1;
  }

  void lower() {
    const Graph& g = *graph_;
    const passes::Fusion& f = *fusion_;
    steps_.clear();
    code_.clear();
    specs_.clear();
    int8_.clear();
    lower_status_ = Status();
    int8_.reserve(static_cast<std::size_t>(f.num_groups));  // steps point into their own buffers
    for (int k = 0; k < f.num_groups; ++k) {
      const int gi = f.order[k];
      const passes::Group& grp = f.groups[gi];
      Step s;
      s.kind = grp.kind;
      s.group = gi;
      s.node = grp.root;
      if (s.node < 0)
        for (int i = 0; i < g.size() && s.node < 0; ++i)
          if (f.group_of[i] == gi) s.node = i;
      switch (grp.kind) {
        case passes::GroupKind::elementwise: lower_program(s, grp.loop); break;
        case passes::GroupKind::reduce:
        case passes::GroupKind::softmax: {
          const Node& r = g[grp.root];
          s.rk = r.rk;
          s.axis = r.axis;
          s.log = r.op == Op::log_softmax;
          const Shape& in_shape = g[r.inputs[0]].shape;
          lower_program(s, in_shape);
          if (s.code_size == 0) {  // no producers: the kernel reads the input value directly
            s.op_begin = static_cast<int>(specs_.size());
            add_spec(spec_over(r.inputs[0], in_shape));
            s.num_ops = 1;
          }
          s.loop = in_shape;
          break;
        }
        case passes::GroupKind::gemm:
          if (g[grp.root].op == Op::conv2d) lower_conv(s, grp);
          else lower_gemm(s, grp);
          break;
        case passes::GroupKind::window: {
          const Node& n = g[grp.root];
          const passes::Layout& l = f.layouts[n.inputs[0]];
          s.a = ValueSpec{l.base, l.offset, l.strides, DType::f32};
          s.dense_a = l.strides[3] != 1;
          s.loop = n.shape;
          break;
        }
        case passes::GroupKind::offload: lower_offload(s, grp); break;
        case passes::GroupKind::int8: {
          s.int8 = static_cast<int>(int8_.size());
          int8_.emplace_back();
          const Status st = lower_int8(g, f, grp.root, int8_.back());
          if (!st.ok() && lower_status_.ok()) lower_status_ = st;
          s.loop = g[grp.root].shape;
          break;
        }
        case passes::GroupKind::concat:
        case passes::GroupKind::copy: {
          const Node& n = g[grp.root];
          s.op_begin = static_cast<int>(specs_.size());
          for (int in = 0; in < n.num_inputs; ++in) {
            const Shape& is = g[n.inputs[in]].shape;
            add_spec(spec_over(n.inputs[in], is));
          }
          s.num_ops = n.num_inputs;
          s.loop = n.shape;
          s.axis = n.axis;
          break;
        }
      }
      steps_.push_back(s);
    }
  }

  void lower_program(Step& s, const Shape& loop, int acc = -1, const bool* in_registers = nullptr,
                     int unit_dim = -1) {
    const Graph& g = *graph_;
    std::vector<kernels::EwInstr> code(4 * static_cast<std::size_t>(g.size()) + 8);
    int cs = 0, no = 0, nt = 0;
    int ops[kMaxNodes]{}, tgts[kMaxNodes]{};
    const int regs = passes::build_program(g, *fusion_, s.group, code.data(), static_cast<int>(code.size()), cs, ops,
                                           no, tgts, nt, acc, in_registers);
    s.loop = loop;
    s.num_regs = regs;
    s.code_begin = static_cast<int>(code_.size());
    s.code_size = cs;
    code_.insert(code_.end(), code.begin(), code.begin() + cs);
    s.op_begin = static_cast<int>(specs_.size());
    for (int k = 0; k < no; ++k) add_spec(spec_over(ops[k], loop, unit_dim));
    s.num_ops = no;
    s.tgt_begin = static_cast<int>(specs_.size());
    for (int k = 0; k < nt; ++k) add_spec(spec_over(tgts[k], loop, unit_dim));
    s.num_tgts = nt;
    // Members without producers in reduce groups: the program is just "load, store" — drop it so
    // the kernel reads the value directly.
    if ((s.kind == passes::GroupKind::reduce || s.kind == passes::GroupKind::softmax) && cs == 0) {
      s.num_ops = 0;
      s.num_tgts = 0;
    }
  }

  void lower_gemm(Step& s, const passes::Group& grp) {
    const Graph& g = *graph_;
    const passes::Fusion& f = *fusion_;
    const Node& mm = g[grp.root];
    const Node& an = g[mm.inputs[0]];
    const Node& bn = g[mm.inputs[1]];
    const Shape& out = mm.shape;
    s.K = an.shape.back();
    s.N = out.back();
    s.M = an.shape.rank() >= 2 ? an.shape[an.shape.rank() - 2] : 1;
    // Virtual shapes with explicit batch: [batch..., M, N], A over [batch..., M, K], B over [batch..., K, N].
    Shape batch;
    const int out_batch = an.shape.rank() >= 2 ? out.rank() - 2 : out.rank() - 1;
    for (int d = 0; d < out_batch; ++d) batch.push_back(out[d]);
    Shape va = batch, vb = batch, vo = batch;
    va.push_back(s.M);
    va.push_back(s.K);
    vo.push_back(s.M);
    vo.push_back(s.N);
    vb.push_back(mm.trans_b ? s.N : s.K);
    vb.push_back(mm.trans_b ? s.K : s.N);
    const passes::Layout& la = f.layouts[mm.inputs[0]];
    const passes::Layout& lb = f.layouts[mm.inputs[1]];
    s.a = ValueSpec{la.base, la.offset, passes::operand_strides(an.shape, la, va), an.dtype};
    s.b = ValueSpec{lb.base, lb.offset, passes::operand_strides(bn.shape, lb, vb), bn.dtype};
    if (mm.trans_b) {  // present B as [.., K, N] by swapping the last two strides
      const int r = vb.rank();
      const index_t t = s.b.strides[r - 1];
      s.b.strides[r - 1] = s.b.strides[r - 2];
      s.b.strides[r - 2] = t;
    }

    // A vector `a` has no M dimension in the result: specs over vo get an explicit unit M.
    const int unit_dim = an.shape.rank() == 1 ? vo.rank() - 2 : -1;

    // Epilogue: bias and clamp in registers when they are a private chain off the matmul.
    lower_epilogue(s, grp.root, vo, unit_dim);
    s.loop = vo;
    s.batch = batch;

    // One GEMM over (batch x M) rows when B and every other operand are batch-invariant or merge.
    // Prepack B once when it is a constant shared by all batches.
    bool b_shared = true;
    for (int d = 0; d < batch.rank(); ++d) b_shared = b_shared && s.b.strides[d] == 0;
    if (b_shared && g[lb.base].op == Op::constant && bn.dtype == DType::f32) {
      const int r = vb.rank();
      const float* bp = static_cast<const float*>(g[lb.base].data) + lb.offset;
      AlignedFloats packed(kernels::packed_b_size(s.K, s.N));
      kernels::pack_b(s.K, s.N, kernels::MatrixRef{bp, s.b.strides[r - 2], s.b.strides[r - 1]}, packed.data());
      packed_.push_back(std::move(packed));
      s.packed = static_cast<int>(packed_.size()) - 1;
    }
    if (batch.rank() > 0 && b_shared) {
      bool merge = mergeable(s.a.strides, vo) && mergeable(s.c.strides, vo);
      for (int k = 0; k < s.num_ops; ++k) merge = merge && mergeable(specs_[s.op_begin + k].strides, vo);
      for (int k = 0; k < s.num_tgts; ++k) merge = merge && mergeable(specs_[s.tgt_begin + k].strides, vo);
      if (s.bias >= 0) merge = merge && mergeable(specs_[s.bias].strides, vo);
      if (merge) {
        s.M *= batch.numel();
        s.batch = Shape();
      }
    }
  }

  /// The epilogue of a gemm group (matmul or conv2d root) computing C over `vo`: bias and clamp in
  /// the micro-kernel's registers when they are a private chain off the root, the rest of the
  /// group as the tail program on each finished block; sets s.bias, s.clamp, the program and s.c.
  void lower_epilogue(Step& s, int root, const Shape& vo, int unit_dim) {
    const Graph& g = *graph_;
    const passes::Fusion& f = *fusion_;
    int uses[kMaxNodes]{};
    g.count_uses(uses);
    bool in_regs[kMaxNodes]{};
    int acc = root;
    auto sole_user_in_group = [&](int id) {
      if (uses[id] != 1 || g.is_output(id)) return -1;
      for (int u = id + 1; u < g.size(); ++u)
        for (int k = 0; k < g[u].num_inputs; ++k)
          if (g[u].inputs[k] == id) return f.group_of[u] == s.group ? u : -1;
      return -1;
    };
    int next = sole_user_in_group(acc);
    if (next >= 0 && g[next].op == Op::elementwise && g[next].fn == EwFn::add) {
      const int other = g[next].inputs[0] == acc ? g[next].inputs[1] : g[next].inputs[0];
      // The bias must come from outside: a value this group's own epilogue computes does not
      // exist yet when the micro-kernel adds it.
      if (other != acc && g[other].op != Op::scalar && g[other].dtype == DType::f32 &&
          f.group_of[f.layouts[other].base] != s.group) {
        const ValueSpec bias = spec_over(other, vo, unit_dim);
        bool vector = bias.strides[vo.rank() - 1] == 1 || s.N == 1;
        for (int d = 0; d + 1 < vo.rank(); ++d) vector = vector && bias.strides[d] == 0;
        if (vector) {
          s.bias = add_spec(bias);
          in_regs[next] = true;
          acc = next;
          next = sole_user_in_group(acc);
        }
      }
    }
    if (next >= 0 && g[next].op == Op::elementwise) {
      const EwFn fn = g[next].fn;
      const float inf = __builtin_huge_valf();
      // clamp with lo > hi gives hi everywhere (torch.clamp): left to the general epilogue.
      if (fn == EwFn::relu || fn == EwFn::relu6 || (fn == EwFn::clamp && g[next].p0 <= g[next].p1)) {
        s.clamp = true;
        s.lo = fn == EwFn::clamp ? g[next].p0 : 0.f;
        s.hi = fn == EwFn::relu ? inf : fn == EwFn::relu6 ? 6.f : g[next].p1;
        in_regs[next] = true;
        acc = next;
      }
    }
    lower_program(s, vo, acc, in_regs, unit_dim);
    // Where C lands: the acc node's own buffer if it is stored, else the first target of the tail.
    const int c_node = s.num_tgts > 0 && !(passes::is_group_output(g, f, acc) && f.layouts[acc].base == acc)
                           ? -2
                           : acc;
    if (c_node == -2) s.c = specs_[static_cast<std::size_t>(s.tgt_begin)];
    else s.c = spec_over(acc, vo, unit_dim);
  }

  /// conv2d: the input and weight as the conv kernel reads them, the weight prepacked when it is a
  /// constant, and the GEMM epilogue over the output [N, OH, OW, O] (rows = output pixels).
  void lower_conv(Step& s, const passes::Group& grp) {
    const Graph& g = *graph_;
    const passes::Fusion& f = *fusion_;
    const Node& cv = g[grp.root];
    const Shape& xs = g[cv.inputs[0]].shape;
    const Node& wn = g[cv.inputs[1]];
    s.conv = true;
    s.window = window_geometry(cv, xs);
    const kernels::WindowGeometry& geo = s.window;
    s.M = geo.rows();
    s.N = geo.out_c;
    s.K = geo.depth();
    const passes::Layout& la = f.layouts[cv.inputs[0]];
    const passes::Layout& lb = f.layouts[cv.inputs[1]];
    s.a = ValueSpec{la.base, la.offset, la.strides, DType::f32};
    s.b = ValueSpec{lb.base, lb.offset, lb.strides, DType::f32};
    const bool even = s.a.strides[1] == xs[2] * s.a.strides[2] && s.a.strides[0] == xs[1] * s.a.strides[1];
    s.dense_a = s.a.strides[3] != 1 ||
                (kernels::conv_algorithm(geo) == kernels::ConvAlgorithm::pointwise && !even);
    const bool w_dense = passes::is_contiguous(wn.shape, lb);
    if (g[lb.base].op == Op::constant) {  // prepack once, like a linear layer's weight
      std::vector<float> dense;
      const float* w = static_cast<const float*>(g[lb.base].data) + lb.offset;
      if (!w_dense) {
        dense.resize(static_cast<std::size_t>(wn.shape.numel()));
        strided_copy(w, DType::f32, wn.shape, lb.strides, dense.data());
        w = dense.data();
      }
      AlignedFloats packed(kernels::conv_packed_weight_floats(geo));
      kernels::conv_pack_weights(geo, w, packed.data());
      packed_.push_back(std::move(packed));
      s.packed = static_cast<int>(packed_.size()) - 1;
    } else {
      s.dense_b = !w_dense;
    }
    const Shape& vo = cv.shape;
    lower_epilogue(s, grp.root, vo, -1);
    s.loop = vo;
    s.rows_merge = true;
    index_t rs = 0;
    for (int k = 1; k < s.num_ops; ++k) s.rows_merge = s.rows_merge && pixel_row_stride(specs_[s.op_begin + k].strides, vo, rs);
    for (int k = 0; k < s.num_tgts; ++k) s.rows_merge = s.rows_merge && pixel_row_stride(specs_[s.tgt_begin + k].strides, vo, rs);
  }

  /// Whether a value with these strides over an NHWC loop `vo` steps by one stride `rs` from one
  /// output pixel (row of the conv's [N*OH*OW, C] matrix) to the next. Broadcast strides of unit
  /// extents are 0, so the stride comes from the innermost non-unit pixel dimension.
  static bool pixel_row_stride(const Strides& st, const Shape& vo, index_t& rs) {
    rs = 0;
    index_t span = 1;  // pixels per step of dimension d
    bool found = false;
    for (int d = 2; d >= 0; --d) {
      if (vo[d] == 1) continue;
      if (!found) {
        rs = st[d];
        found = true;
      } else if (st[d] != rs * span) {
        return false;
      }
      span *= vo[d];
    }
    return true;
  }

  /// Floats of a dense copy of n floats, rounded so what follows it stays 64-byte aligned.
  static std::size_t aligned_floats(index_t n) {
    return align_up(static_cast<std::size_t>(n) * sizeof(float)) / sizeof(float);
  }

  /// Whether rows (batch..., M) of a value with these strides over `vo` form one strided run.
  static bool mergeable(const Strides& st, const Shape& vo) {
    const int r = vo.rank();
    for (int d = r - 3; d >= 0; --d) {
      // the stride of dim d must equal stride(d+1) * extent(d+1) (or the dim is trivial)
      if (vo[d] == 1) continue;
      if (st[d] != st[d + 1] * vo[d + 1]) return false;
    }
    return true;
  }

  std::size_t workspace_bytes(const Step& s) const {
    const Graph& g = *graph_;
    if (s.kind == passes::GroupKind::offload) return offload_workspace_bytes(s);
    if (s.kind == passes::GroupKind::int8) return int8_[static_cast<std::size_t>(s.int8)].workspace_bytes;
    if (s.conv || s.kind == passes::GroupKind::window) {
      std::size_t n = 0;
      if (s.dense_a) n += aligned_floats(g[g[s.node].inputs[0]].shape.numel());
      if (s.dense_b) n += aligned_floats(g[g[s.node].inputs[1]].shape.numel());
      if (s.conv) n += kernels::conv_workspace_floats(s.window, s.packed >= 0);
      return n * sizeof(float);
    }
    if (s.kind != passes::GroupKind::gemm) return 0;
    return kernels::gemm_workspace_size(s.M, s.N, s.K, s.packed >= 0) * sizeof(float);
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

  // ---- execution ---------------------------------------------------------------------------
  float* workspace(const Bindings& b, const Step& s) const {
    if (s.workspace_slot < 0) return nullptr;
    return reinterpret_cast<float*>(b.arena + mem_->slot_offset[s.workspace_slot]);
  }
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
  kernels::EwOperand operand(const Bindings& b, const ValueSpec& v) const {
    return kernels::EwOperand{ptr(b, v.base, v.offset, v.dtype), v.dtype, v.strides};
  }
  kernels::EwTarget target(const Bindings& b, const ValueSpec& v) const {
    return kernels::EwTarget{const_cast<char*>(ptr(b, v.base, v.offset, v.dtype)), v.dtype, v.strides};
  }
  kernels::EwProgram program(const Step& s) const {
    return kernels::EwProgram{code_.data() + s.code_begin, s.code_size, s.num_regs};
  }

  /// Operand arrays left uninitialised: a step fills only what it uses, and zeroing ~3 KiB per
  /// step was a fifth of a batch-1 MLP's run time. (Both types are trivially copyable, so
  /// assigning an element starts its lifetime.)
  union OperandSlots {
    OperandSlots() {}
    kernels::EwOperand v[kernels::kEwMaxOperands];
  };
  union TargetSlots {
    TargetSlots() {}
    kernels::EwTarget v[kernels::kEwMaxOperands];
  };

  void run_step(const Step& s, const Bindings& b) const {
    if (s.kind == passes::GroupKind::gemm) {
      if (s.conv) run_conv(s, b);
      else run_gemm(s, b);
      return;
    }
    if (s.kind == passes::GroupKind::window) {
      const Node& n = (*graph_)[s.node];
      const Shape& xs = (*graph_)[n.inputs[0]].shape;
      float* ws = workspace(b, s);
      run_window_op(n, xs, nhwc_input(b, s.a, xs, s.dense_a, ws), reinterpret_cast<float*>(const_cast<char*>(base_ptr(b, s.node))));
      return;
    }
    OperandSlots op_slots;
    TargetSlots tgt_slots;
    kernels::EwOperand* ops = op_slots.v;
    kernels::EwTarget* tgts = tgt_slots.v;
    switch (s.kind) {
      case passes::GroupKind::elementwise: {
        for (int k = 0; k < s.num_ops; ++k) ops[k] = operand(b, specs_[s.op_begin + k]);
        for (int k = 0; k < s.num_tgts; ++k) tgts[k] = target(b, specs_[s.tgt_begin + k]);
        kernels::ew_run(program(s), ops, s.num_ops, tgts, s.num_tgts, s.loop);
        return;
      }
      case passes::GroupKind::reduce:
      case passes::GroupKind::softmax: {
        for (int k = 0; k < s.num_ops; ++k) ops[k] = operand(b, specs_[s.op_begin + k]);
        const kernels::EwProgram p = program(s);
        const kernels::EwProgram* prod = s.code_size ? &p : nullptr;
        float* out = reinterpret_cast<float*>(const_cast<char*>(base_ptr(b, s.node)));
        if (s.kind == passes::GroupKind::reduce)
          kernels::reduce_run(s.rk, prod, ops, s.num_ops, s.loop, s.axis, out);
        else
          kernels::softmax_run(s.log, prod, ops, s.num_ops, s.loop, s.axis, out);
        return;
      }
      case passes::GroupKind::copy: {
        const ValueSpec& in = specs_[s.op_begin];
        const Node& n = (*graph_)[s.node];
        const Shape& is = (*graph_)[n.inputs[0]].shape;
        if (n.op == Op::unslice) {
          pad_strided(ptr(b, in.base, in.offset, in.dtype), in.strides, is, n, const_cast<char*>(base_ptr(b, s.node)));
          return;
        }
        strided_copy(ptr(b, in.base, in.offset, in.dtype), n.dtype, is, in.strides,
                     const_cast<char*>(base_ptr(b, s.node)));
        return;
      }
      case passes::GroupKind::concat: {
        const Node& n = (*graph_)[s.node];
        const Strides os = contiguous_strides(n.shape);
        char* out = const_cast<char*>(base_ptr(b, s.node));
        index_t at = 0;
        const SingleOpProgram p(EwFn::identity);
        for (int k = 0; k < s.num_ops; ++k) {
          const ValueSpec& in = specs_[s.op_begin + k];
          const Shape& is = (*graph_)[n.inputs[k]].shape;
          const kernels::EwOperand src = operand(b, in);
          const kernels::EwTarget t{out + at * os[n.axis] * dtype_size(n.dtype), n.dtype, os};
          kernels::ew_run(p.program(), &src, 1, &t, 1, is);
          at += is[n.axis];
        }
        return;
      }
      case passes::GroupKind::int8: run_int8_step(s, b); return;
      case passes::GroupKind::gemm:
      case passes::GroupKind::window:
      case passes::GroupKind::offload: return;  // handled above / by run_offloaded
    }
  }

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
    if (!st.ok()) fail(st);  // prepare_int8 checked the parameters at build time: not expected
  }

  struct TailContext {
    const Executable* self;
    const Step* step;
    const Bindings* b;
    index_t batch_index[kMaxRank];
  };

  static void tail(void* ctx, index_t i0, index_t j0, index_t m, index_t n, float* c, index_t ldc) {
    const TailContext& t = *static_cast<const TailContext*>(ctx);
    const Executable& e = *t.self;
    const Step& s = *t.step;
    const int r = s.loop.rank();
    auto at = [&](const ValueSpec& v) {
      index_t off = v.offset + i0 * v.strides[r - 2] + j0 * v.strides[r - 1];
      for (int d = 0; d < s.batch.rank(); ++d) off += t.batch_index[d] * v.strides[d];
      return e.ptr(*t.b, v.base, off, v.dtype);
    };
    auto two_d = [&](const ValueSpec& v) {
      Strides st;
      st[0] = v.strides[r - 2];
      st[1] = v.strides[r - 1];
      return st;
    };
    e.run_tail_block(s, c, ldc, Shape{m, n}, at, two_d);
  }

  /// Runs step `s`'s tail program on a finished block of C (rows x cols in `block`, row stride
  /// ldc): operand 0 is the block, the other operands and the targets are addressed by `at`
  /// (a ValueSpec's pointer at the block's origin) with 2-D strides from `two_d`.
  template <class At, class TwoD>
  void run_tail_block(const Step& s, float* c, index_t ldc, const Shape& block, At&& at, TwoD&& two_d) const {
    OperandSlots op_slots;
    TargetSlots tgt_slots;
    kernels::EwOperand* ops = op_slots.v;
    kernels::EwTarget* tgts = tgt_slots.v;
    Strides cst;
    cst[0] = ldc;
    cst[1] = 1;
    ops[0] = kernels::EwOperand{c, DType::f32, cst};  // operand 0 is the accumulator block
    for (int k = 1; k < s.num_ops; ++k) {
      const ValueSpec& v = specs_[s.op_begin + k];
      ops[k] = kernels::EwOperand{at(v), v.dtype, two_d(v)};
    }
    for (int k = 0; k < s.num_tgts; ++k) {
      const ValueSpec& v = specs_[s.tgt_begin + k];
      tgts[k] = kernels::EwTarget{const_cast<char*>(at(v)), v.dtype, two_d(v)};
    }
    kernels::ew_run(program(s), ops, s.num_ops, tgts, s.num_tgts, block);
  }

  /// The tail of a conv step: blocks of output rows (pixels) are split into runs the operands'
  /// strides can address in 2-D: the whole block when every operand's rows merge, else one
  /// output row (fixed n, oh) at a time.
  static void conv_tail(void* ctx, index_t i0, index_t j0, index_t m, index_t n, float* c, index_t ldc) {
    const TailContext& t = *static_cast<const TailContext*>(ctx);
    const Executable& e = *t.self;
    const Step& s = *t.step;
    const index_t OH = s.loop[1], OW = s.loop[2];
    for (index_t i = i0; i < i0 + m;) {
      const index_t ow = i % OW, oh = (i / OW) % OH, nb = i / (OW * OH);
      const index_t len = s.rows_merge ? i0 + m - i : (OW - ow < i0 + m - i ? OW - ow : i0 + m - i);
      // Rows of a run: merged (any pixel dimension's stride, see pixel_row_stride), or within one
      // (n, oh), where the step is the W stride.
      auto at = [&](const ValueSpec& v) {
        const index_t off = v.offset + nb * v.strides[0] + oh * v.strides[1] + ow * v.strides[2] + j0 * v.strides[3];
        return e.ptr(*t.b, v.base, off, v.dtype);
      };
      auto two_d = [&](const ValueSpec& v) {
        Strides st;
        st[0] = v.strides[2];
        if (s.rows_merge) pixel_row_stride(v.strides, s.loop, st[0]);
        st[1] = v.strides[3];
        return st;
      };
      e.run_tail_block(s, c + (i - i0) * ldc, ldc, Shape{len, n}, at, two_d);
      i += len;
    }
  }

  /// An NHWC input as the window kernels read it: in place, or densely copied to `ws` (which then
  /// advances past the copy) when the step needs it dense.
  kernels::NhwcIn nhwc_input(const Bindings& b, const ValueSpec& v, const Shape& xs, bool dense, float*& ws) const {
    const auto* p = reinterpret_cast<const float*>(ptr(b, v.base, v.offset, v.dtype));
    if (!dense) return kernels::NhwcIn{p, v.strides[0], v.strides[1], v.strides[2]};
    strided_copy(p, DType::f32, xs, v.strides, ws);
    const kernels::NhwcIn x = kernels::dense_nhwc(ws, xs[1], xs[2], xs[3]);
    ws += aligned_floats(xs.numel());
    return x;
  }

  void run_conv(const Step& s, const Bindings& b) const {
    const Graph& g = *graph_;
    const Node& n = g[s.node];
    const Shape& xs = g[n.inputs[0]].shape;
    kernels::GemmEpilogue ep;
    ep.clamp = s.clamp;
    ep.lo = s.lo;
    ep.hi = s.hi;
    if (s.bias >= 0) {
      const ValueSpec& v = specs_[static_cast<std::size_t>(s.bias)];
      ep.bias = reinterpret_cast<const float*>(ptr(b, v.base, v.offset, v.dtype));
    }
    float* ws = workspace(b, s);
    const kernels::NhwcIn x = nhwc_input(b, s.a, xs, s.dense_a, ws);
    const float* packed = s.packed >= 0 ? packed_[static_cast<std::size_t>(s.packed)].data() : nullptr;
    const float* w = packed ? nullptr : reinterpret_cast<const float*>(ptr(b, s.b.base, s.b.offset, s.b.dtype));
    if (s.dense_b) {
      const Shape& wsh = g[n.inputs[1]].shape;
      strided_copy(w, DType::f32, wsh, s.b.strides, ws);
      w = ws;
      ws += aligned_floats(wsh.numel());
    }
    auto* c0 = reinterpret_cast<float*>(const_cast<char*>(ptr(b, s.c.base, s.c.offset, s.c.dtype)));
    TailContext tc{this, &s, &b, {}};
    if (s.code_size > 0) {
      ep.tail = &Executable::conv_tail;
      ep.ctx = &tc;
    }
    kernels::conv2d(s.window, x, w, packed, c0, s.N, ep, ws);  // C is a dense [N, OH, OW, O] buffer
  }

  void run_gemm(const Step& s, const Bindings& b) const {
    const int r = s.loop.rank();
    kernels::GemmEpilogue ep;
    ep.clamp = s.clamp;
    ep.lo = s.lo;
    ep.hi = s.hi;
    if (s.bias >= 0) ep.bias = reinterpret_cast<const float*>(at(b, s.bias_at));
    const float* packed = s.packed >= 0 ? packed_[static_cast<std::size_t>(s.packed)].data() : nullptr;
    float* ws = s.workspace_bytes >= 0 ? reinterpret_cast<float*>(b.arena + s.workspace_bytes) : nullptr;
    const auto* a0 = reinterpret_cast<const float*>(at(b, s.a_at));
    const auto* b0 = packed ? nullptr : reinterpret_cast<const float*>(at(b, s.b_at));
    auto* c0 = reinterpret_cast<float*>(const_cast<char*>(at(b, s.c_at)));
    const index_t ldc = s.M == 1 ? s.N : s.c.strides[r - 2];
    if (s.batch.rank() == 0 && s.code_size == 0) {  // the common case: one launch, no tail
      kernels::gemm(s.M, s.N, s.K, kernels::MatrixRef{a0, s.a.strides[r - 2], s.a.strides[r - 1]},
                    kernels::MatrixRef{b0, s.b.strides[r - 2], s.b.strides[r - 1]}, packed, c0, ldc, ep, ws);
      return;
    }
    TailContext tc{this, &s, &b, {}};
    if (s.code_size > 0) {
      ep.tail = &Executable::tail;
      ep.ctx = &tc;
    }
    const index_t nb = s.batch.numel();
    for (index_t t = 0; t < nb; ++t) {
      index_t ao = 0, bo = 0, co = 0;
      for (int d = 0; d < s.batch.rank(); ++d) {
        ao += tc.batch_index[d] * s.a.strides[d];
        bo += tc.batch_index[d] * s.b.strides[d];
        co += tc.batch_index[d] * s.c.strides[d];
      }
      const kernels::MatrixRef A{a0 + ao, s.a.strides[r - 2], s.a.strides[r - 1]};
      const kernels::MatrixRef B{b0 ? b0 + bo : nullptr, s.b.strides[r - 2], s.b.strides[r - 1]};
      kernels::gemm(s.M, s.N, s.K, A, B, packed, c0 + co, ldc, ep, ws);
      for (int d = s.batch.rank() - 1; d >= 0; --d) {
        if (++tc.batch_index[d] < s.batch[d]) break;
        tc.batch_index[d] = 0;
      }
    }
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
