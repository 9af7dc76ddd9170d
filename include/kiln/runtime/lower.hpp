// kiln/runtime/lower.hpp — a planned graph's groups lowered to kernel Steps, in a constant
// expression when asked to.
//
// One lowering for both run paths: Executable (the run-time compiler, vectors, weights prepacked
// at the first call) and the static runner (runtime/static_run.hpp: fixed arrays computed by the
// compiler, weights read from flash where they lie, packing scratch in the arena). Where they
// differ, the lowering asks its sink:
//   int  add_spec(const ValueSpec&), const ValueSpec& spec(int) const, int num_specs() const
//   kernels::EwInstr* code_space(int& begin, int& capacity), void commit_code(int n)
//   int  prepack_matmul(const Graph&, int base, index_t offset, index_t K, index_t N, index_t rs, index_t cs)
//   int  prepack_conv(const Graph&, const Node& weight, const passes::Layout&, const kernels::WindowGeometry&, bool dense)
//   int  lower_int8(const Graph&, const passes::Fusion&, int root)   // an int8 op's call, by index
//   bool direct_weights() const   // read unpacked constant weights in place (kernels::gemm_direct)
//   void lower_offload(Step&, const passes::Group&)   // an accelerator region (accel/offload.hpp)
//   void add_step(const Step&)
// (prepack_*: the index of the packed copy, or -1 to pack into the step's workspace at run time).
#pragma once

#include "../passes/fusion.hpp"
#include "eager.hpp"
#include "int8_static.hpp"

namespace kiln::runtime {

/// A value read or written by a step: its base buffer, element offset, and strides over the
/// step's loop shape.
struct ValueSpec {
  constexpr ValueSpec() = default;
  constexpr ValueSpec(int b, index_t o, const Strides& s, DType t, const QuantParams& q = {})
      : base(b), offset(o), strides(s), dtype(t), quant(q) {}
  int base = -1;
  index_t offset = 0;
  Strides strides;
  DType dtype = DType::f32;
  QuantParams quant;  // i8 targets of a program (a fused quantize): what the store applies
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
  // gemm: B (a constant weight with unit stride along K) read in place by kernels::gemm_direct,
  // no packing scratch (sinks that read weights where they lie: the static runner).
  bool direct = false;
  int int8 = -1;  // int8 ops: the sink's index of its lowered int8 call (runtime/int8_steps.hpp)
  // offload: the accelerator region (operands: its inputs, targets: its outputs) and, when it
  // runs asynchronously, the step before which it is waited for (steps().size(): at the end).
  int region = -1, wait_at = -1;
};

/// Floats of a dense copy of n floats, rounded so what follows it stays 64-byte aligned.
constexpr std::size_t aligned_floats(index_t n) {
  return align_up(static_cast<std::size_t>(n) * sizeof(float)) / sizeof(float);
}

/// Whether a value with these strides over an NHWC loop `vo` steps by one stride `rs` from one
/// output pixel (row of the conv's [N*OH*OW, C] matrix) to the next. Broadcast strides of unit
/// extents are 0, so the stride comes from the innermost non-unit pixel dimension.
constexpr bool pixel_row_stride(const Strides& st, const Shape& vo, index_t& rs) {
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

/// Whether rows (batch..., M) of a value with these strides over `vo` form one strided run.
constexpr bool mergeable(const Strides& st, const Shape& vo) {
  const int r = vo.rank();
  for (int d = r - 3; d >= 0; --d) {
    // the stride of dim d must equal stride(d+1) * extent(d+1) (or the dim is trivial)
    if (vo[d] == 1) continue;
    if (st[d] != st[d + 1] * vo[d + 1]) return false;
  }
  return true;
}

/// Scratch bytes step `s` of graph `g` needs during its run (GEMM/conv packing, dense copies).
constexpr std::size_t step_workspace_bytes(const Graph& g, const Step& s) {
  if (s.conv || s.kind == passes::GroupKind::window) {
    std::size_t n = 0;
    if (s.dense_a) n += aligned_floats(g[g[s.node].inputs[0]].shape.numel());
    if (s.dense_b) n += aligned_floats(g[g[s.node].inputs[1]].shape.numel());
    if (s.conv) n += kernels::conv_workspace_floats(s.window, s.packed >= 0);
    return n * sizeof(float);
  }
  if (s.kind != passes::GroupKind::gemm || s.direct) return 0;
  return kernels::gemm_workspace_size(s.M, s.N, s.K, s.packed >= 0) * sizeof(float);
}

/// Lowers every group of fusion `f` of `g`, in execution order, into `out` (see the top).
template <class Sink>
class Lowering {
 public:
  constexpr Lowering(const Graph& g, const passes::Fusion& f, Sink& out) : g_(g), f_(f), out_(out) {}

  constexpr void run() {
    const Graph& g = g_;
    const passes::Fusion& f = f_;
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
            s.op_begin = out_.num_specs();
            out_.add_spec(spec_over(r.inputs[0], in_shape));
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
        case passes::GroupKind::offload: out_.lower_offload(s, grp); break;
        case passes::GroupKind::int8:
          s.int8 = out_.lower_int8(g, f, grp.root);
          s.loop = g[grp.root].shape;
          break;
        case passes::GroupKind::concat:
        case passes::GroupKind::copy: {
          const Node& n = g[grp.root];
          s.op_begin = out_.num_specs();
          for (int in = 0; in < n.num_inputs; ++in) {
            const Shape& is = g[n.inputs[in]].shape;
            out_.add_spec(spec_over(n.inputs[in], is));
          }
          s.num_ops = n.num_inputs;
          s.loop = n.shape;
          s.axis = n.axis;
          break;
        }
      }
      out_.add_step(s);
    }
  }

  /// How `node` is read over `loop`. With unit_dim >= 0 the strides are computed over `loop`
  /// without that dimension and a stride-0 dimension is inserted there (a vector operand of a
  /// matmul gets an explicit M = 1 that NumPy alignment would put in the wrong place).
  constexpr ValueSpec spec_over(int node, const Shape& loop, int unit_dim = -1) const {
    const passes::Layout& l = f_.layouts[node];
    const Node& n = g_[node];
    if (unit_dim < 0) return ValueSpec{l.base, l.offset, passes::operand_strides(n.shape, l, loop), n.dtype, n.quant};
    Shape real;
    for (int d = 0; d < loop.rank(); ++d)
      if (d != unit_dim) real.push_back(loop[d]);
    const Strides st = passes::operand_strides(n.shape, l, real);
    Strides out;
    for (int d = 0, k = 0; d < loop.rank(); ++d) out[d] = d == unit_dim ? 0 : st[k++];
    return ValueSpec{l.base, l.offset, out, n.dtype, n.quant};
  }

 private:
  constexpr void lower_program(Step& s, const Shape& loop, int acc = -1, const bool* in_registers = nullptr,
                               int unit_dim = -1) {
    int cs = 0, no = 0, nt = 0;
    int ops[kMaxNodes]{}, tgts[kMaxNodes]{};
    int begin = 0, cap = 0;
    kernels::EwInstr* code = out_.code_space(begin, cap);
    const int regs = passes::build_program(g_, f_, s.group, code, cap, cs, ops, no, tgts, nt, acc, in_registers);
    out_.commit_code(cs);
    s.loop = loop;
    s.num_regs = regs;
    s.code_begin = begin;
    s.code_size = cs;
    s.op_begin = out_.num_specs();
    for (int k = 0; k < no; ++k) out_.add_spec(spec_over(ops[k], loop, unit_dim));
    s.num_ops = no;
    s.tgt_begin = out_.num_specs();
    for (int k = 0; k < nt; ++k) out_.add_spec(spec_over(tgts[k], loop, unit_dim));
    s.num_tgts = nt;
    // Members without producers in reduce groups: the program is just "load, store" — drop it so
    // the kernel reads the value directly.
    if ((s.kind == passes::GroupKind::reduce || s.kind == passes::GroupKind::softmax) && cs == 0) {
      s.num_ops = 0;
      s.num_tgts = 0;
    }
  }

  constexpr void lower_gemm(Step& s, const passes::Group& grp) {
    const Graph& g = g_;
    const passes::Fusion& f = f_;
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
    // Prepack B once when it is a constant shared by all batches (if the sink prepacks).
    bool b_shared = true;
    for (int d = 0; d < batch.rank(); ++d) b_shared = b_shared && s.b.strides[d] == 0;
    if (b_shared && g[lb.base].op == Op::constant && bn.dtype == DType::f32) {
      const int r = vb.rank();
      s.packed = out_.prepack_matmul(g, lb.base, lb.offset, s.K, s.N, s.b.strides[r - 2], s.b.strides[r - 1]);
    }
    if (batch.rank() > 0 && b_shared) {
      bool merge = mergeable(s.a.strides, vo) && mergeable(s.c.strides, vo);
      for (int k = 0; k < s.num_ops; ++k) merge = merge && mergeable(out_.spec(s.op_begin + k).strides, vo);
      for (int k = 0; k < s.num_tgts; ++k) merge = merge && mergeable(out_.spec(s.tgt_begin + k).strides, vo);
      if (s.bias >= 0) merge = merge && mergeable(out_.spec(s.bias).strides, vo);
      if (merge) {
        s.M *= batch.numel();
        s.batch = Shape();
      }
    }
    // A weight the sink does not pack, with unit stride along K: dot products on it in place.
    const int r = vb.rank();
    s.direct = out_.direct_weights() && s.packed < 0 && s.batch.rank() == 0 && g[lb.base].op == Op::constant &&
               bn.dtype == DType::f32 && (s.b.strides[r - 2] == 1 || s.K == 1);
  }

  /// The epilogue of a gemm group (matmul or conv2d root) computing C over `vo`: bias and clamp in
  /// the micro-kernel's registers when they are a private chain off the root, the rest of the
  /// group as the tail program on each finished block; sets s.bias, s.clamp, the program and s.c.
  constexpr void lower_epilogue(Step& s, int root, const Shape& vo, int unit_dim) {
    const Graph& g = g_;
    const passes::Fusion& f = f_;
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
          s.bias = out_.add_spec(bias);
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
    if (c_node == -2) s.c = out_.spec(s.tgt_begin);
    else s.c = spec_over(acc, vo, unit_dim);
  }

  /// conv2d: the input and weight as the conv kernel reads them, the weight prepacked when it is a
  /// constant (and the sink prepacks), and the GEMM epilogue over the output [N, OH, OW, O]
  /// (rows = output pixels).
  constexpr void lower_conv(Step& s, const passes::Group& grp) {
    const Graph& g = g_;
    const passes::Fusion& f = f_;
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
    if (g[lb.base].op == Op::constant) s.packed = out_.prepack_conv(g, wn, lb, geo, w_dense);
    if (s.packed < 0) s.dense_b = !w_dense;
    const Shape& vo = cv.shape;
    lower_epilogue(s, grp.root, vo, -1);
    s.loop = vo;
    s.rows_merge = true;
    index_t rs = 0;
    for (int k = 1; k < s.num_ops; ++k) s.rows_merge = s.rows_merge && pixel_row_stride(out_.spec(s.op_begin + k).strides, vo, rs);
    for (int k = 0; k < s.num_tgts; ++k) s.rows_merge = s.rows_merge && pixel_row_stride(out_.spec(s.tgt_begin + k).strides, vo, rs);
  }

  const Graph& g_;
  const passes::Fusion& f_;
  Sink& out_;
};

template <class Sink>
constexpr void lower_groups(const Graph& g, const passes::Fusion& f, Sink& out) {
  Lowering<Sink>(g, f, out).run();
}

}  // namespace kiln::runtime

namespace kiln::runtime {

/// A lowering sink of fixed capacity, usable in a constant expression: steps, programs, operand
/// specs and int8 calls (with their multipliers and shifts) in arrays. Nothing is prepacked:
/// constant weights are read where they lie (flash); a linear layer's weight by dot products
/// (Step::direct), a conv's packed into its step's workspace in the arena at run time. With
/// `workspace` set, each step's scratch bytes are written there by group (what plan_memory
/// needs). MaxInt8 == 0: int8 calls are counted, not kept (their channels share the arrays).
template <int MaxSteps, int MaxCode, int MaxSpecs, int MaxInt8 = 0, int MaxChannels = 0>
struct FixedSchedule {
  Step steps[MaxSteps > 0 ? MaxSteps : 1]{};
  kernels::EwInstr code[MaxCode > 0 ? MaxCode : 1]{};
  ValueSpec specs[MaxSpecs > 0 ? MaxSpecs : 1]{};
  StaticInt8 int8[MaxInt8 > 0 ? MaxInt8 : 1]{};
  std::int32_t mult[MaxChannels > 0 ? MaxChannels : 1]{}, shift[MaxChannels > 0 ? MaxChannels : 1]{};
  int num_steps = 0, code_size = 0, spec_count = 0, num_int8 = 0;
  index_t num_channels = 0;  // multipliers kept (MaxInt8 > 0)
  index_t total_channels = 0;  // multipliers of every int8 call lowered
  Status status;             // the first lowering error (an int8 op the static runner cannot run)
  const Graph* graph = nullptr;        // with workspace: the graph being lowered
  std::size_t* workspace = nullptr;    // by group
  std::size_t int8_workspace = 0;      // of the int8 call just lowered

  // Capacity is the caller's promise (StaticPlan records the exact counts); an index past it is
  // a compile error in a constant expression, never a silent overflow.
  constexpr int add_spec(const ValueSpec& s) {
    specs[spec_count] = s;
    return spec_count++;
  }
  constexpr const ValueSpec& spec(int k) const { return specs[k]; }
  constexpr int num_specs() const { return spec_count; }
  constexpr kernels::EwInstr* code_space(int& begin, int& cap) {
    begin = code_size;
    cap = MaxCode - code_size;
    return code + code_size;
  }
  constexpr void commit_code(int n) { code_size += n; }
  constexpr int prepack_matmul(const Graph&, int, index_t, index_t, index_t, index_t, index_t) { return -1; }
  constexpr int prepack_conv(const Graph&, const Node&, const passes::Layout&, const kernels::WindowGeometry&, bool) {
    return -1;
  }
  constexpr bool direct_weights() const { return true; }
  constexpr void lower_offload(Step&, const passes::Group&) {  // compile() only: plans are fused without backends
    if (status.ok()) status = Status(Errc::not_supported) << "offload: accelerator regions need compile()";
  }
  constexpr int lower_int8(const Graph& g, const passes::Fusion& f, int root) {
    StaticInt8 q;
    const index_t begin = MaxInt8 > 0 ? num_channels : 0;
    index_t need = g[root].op == Op::qlinear || g[root].op == Op::qconv2d ? g[g[root].inputs[1]].shape[0] : 0;
    // Prepared into locals (one call's channels, at most kCallChannels), compacted (per-tensor
    // scales keep one entry), then copied into the arrays (without MaxInt8 nothing is kept).
    constexpr index_t kCallChannels = 4096;
    std::int32_t m[kCallChannels]{}, sh[kCallChannels]{};
    if (need <= kCallChannels) {
      const Status st = lower_int8_static(g, f, root, q, m, sh);
      if (!st.ok() && status.ok()) status = st;
      need = compact_per_tensor(q, m, sh, need);
    }
    if (need > kCallChannels || begin + need > MaxChannels) {
      if (status.ok())
        status = Status(Errc::not_supported) << op_name(g[root].op) << ": more output channels than the static "
                                             << "schedule holds (" << static_cast<long long>(need) << ')';
      return -1;
    }
    for (index_t k = 0; k < need && MaxInt8 > 0; ++k) {
      mult[begin + k] = m[k];
      shift[begin + k] = sh[k];
    }
    q.channel_begin = begin;
    int8_workspace = q.workspace_bytes;
    total_channels += need;
    if constexpr (MaxInt8 > 0) {
      int8[num_int8] = q;
      num_channels += need;
    }
    return num_int8++;
  }
  constexpr void add_step(const Step& s) {
    if (workspace)
      workspace[s.group] = s.kind == passes::GroupKind::int8 ? int8_workspace : step_workspace_bytes(*graph, s);
    if constexpr (MaxSteps > 0) steps[num_steps] = s;
    ++num_steps;
  }
};

}  // namespace kiln::runtime
