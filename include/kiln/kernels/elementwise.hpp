// kiln/kernels/elementwise.hpp — runs a fused elementwise program over a shape.
//
// Two layers:
//   EwTileEval  runs the program on one tile (<= kEwTile consecutive positions of a
//               strided row). The reduction kernels reuse it to evaluate producer chains.
//   ew_run      coalesces the loop dimensions and walks the output row by row, tile by tile.
//
// Memory traffic per tile: an f32 operand read with unit stride is never copied (its
// register is a pointer into the input); a broadcast (stride 0) operand is a constant
// tile filled once and reused while its value does not change; any other stride is
// gathered. The instruction whose result is stored to a unit-stride f32 target writes
// straight into the target (unless that would clobber an input still to be read).
#pragma once

#include <cstdint>
#include <cstring>

#include "../core/config.hpp"
#include "../core/shape.hpp"
#include "../core/status.hpp"
#include "ew_math.hpp"
#include "ew_program.hpp"

namespace kiln::kernels {

/// Longest program EwTileEval plans (fuses and writes directly); longer ones run as written.
inline constexpr int kEwMaxSteps = 64;

/// One operand along the loop's innermost dimension: position i is at data + i * stride (elements).
struct EwRowIn {
  const void* data = nullptr;
  index_t stride = 1;
  DType dtype = DType::f32;
};
/// One target along the innermost dimension.
struct EwRowOut {
  void* data = nullptr;
  index_t stride = 1;
  DType dtype = DType::f32;
};

/// What a plan step computes beyond its instruction (see detail::plan_fusion). Each fused form
/// performs exactly the operations of the instructions it replaces, in the same order and
/// rounding (no FMA contraction), so fusion never changes a result bit.
enum class EwFused : std::uint8_t {
  none,     // the instruction as written
  mul_add,  // r[dst] = r[a] * r[b] + r[c]
  mul_sub,  // r[dst] = r[a] * r[b] - r[c]
  sub_mul,  // r[dst] = r[c] - r[a] * r[b]
  gate,     // r[dst] = fn(r[a]) * r[b], fn a unary instruction's function
};
/// Activation applied to the result of an add/sub/mul or mul_* step in the same loop.
enum class EwAct : std::uint8_t { none, relu, clamp };

struct EwStep {
  EwInstr ins;  // kind, fn, dst, operands and parameters (of the fused-in unary for `gate`)
  EwFused fused = EwFused::none;
  EwAct act = EwAct::none;
  float lo = 0.f, hi = 0.f;  // clamp bounds for act == clamp
};

namespace detail {

using RegMask = std::uint32_t;
static_assert(kEwMaxRegs <= 32, "register sets are 32-bit masks");
inline RegMask reg_bit(int r) { return RegMask{1} << r; }

/// Registers a step reads.
inline RegMask step_reads(const EwStep& s) {
  const EwInstr& i = s.ins;
  switch (i.kind) {
    case EwKind::load:
    case EwKind::splat: return 0;
    case EwKind::store: return reg_bit(i.a);
    case EwKind::apply: break;
  }
  if (s.fused == EwFused::mul_add || s.fused == EwFused::mul_sub || s.fused == EwFused::sub_mul)
    return reg_bit(i.a) | reg_bit(i.b) | reg_bit(i.c);
  if (s.fused == EwFused::gate) return reg_bit(i.a) | reg_bit(i.b);
  const int arity = ewfn_arity(i.fn);
  return reg_bit(i.a) | (arity > 1 ? reg_bit(i.b) : 0) | (arity > 2 ? reg_bit(i.c) : 0);
}
/// Registers a step writes.
inline RegMask step_writes(const EwStep& s) { return s.ins.kind == EwKind::store ? 0 : reg_bit(s.ins.dst); }

/// Unary functions worth fusing into a following multiply (gating: GLU, SwiGLU, LSTM, x*sigmoid(y)).
inline bool gate_fn(EwFn f) {
  return f == EwFn::sigmoid || f == EwFn::silu || f == EwFn::tanh || f == EwFn::gelu_tanh || f == EwFn::gelu_erf;
}

/// Fuses producer/consumer pairs of `steps[0..n)` in place; fused-away producers become
/// `removed`. A producer p fuses into its consumer c when c is the only reader of p's result and
/// no step between them writes p's inputs, so evaluating p at c's place reads the same values.
/// Patterns: mul -> add/sub (mul_add, mul_sub, sub_mul); add/sub/mul/mul_* -> relu/relu6/clamp
/// (act); sigmoid/silu/tanh/gelu -> mul (gate).
inline void plan_fusion(EwStep* steps, bool* removed, int n) {
  // consumer[p] = the single step reading p's result, or -1 (none, several, or stored).
  int consumer[kEwMaxSteps];
  for (int p = 0; p < n; ++p) {
    consumer[p] = -1;
    removed[p] = false;
    if (steps[p].ins.kind != EwKind::apply) continue;
    const RegMask r = reg_bit(steps[p].ins.dst);
    int readers = 0, reader = -1;
    for (int q = p + 1; q < n; ++q) {
      if (step_reads(steps[q]) & r) {
        // x*x style double reads make the pair unfusable (the producer value is needed twice)
        const EwInstr& qi = steps[q].ins;
        const bool twice = qi.kind == EwKind::apply && ewfn_arity(qi.fn) >= 2 && qi.a == qi.b;
        readers += twice ? 2 : 1;
        reader = q;
      }
      if (step_writes(steps[q]) & r) break;
    }
    if (readers == 1 && steps[reader].ins.kind == EwKind::apply) consumer[p] = reader;
  }
  const auto inputs_intact = [&](int p, int c) {
    const RegMask in = step_reads(steps[p]);
    for (int q = p + 1; q < c; ++q)
      if (!removed[q] && (step_writes(steps[q]) & in)) return false;
    return true;
  };
  // The producer feeding operand slot `which` (0 = a, 1 = b) of step c, if fusable.
  const auto producer_of = [&](int c, int which) {
    const int reg = which == 0 ? steps[c].ins.a : steps[c].ins.b;
    for (int p = c - 1; p >= 0; --p) {
      if (removed[p]) continue;
      if (step_writes(steps[p]) & reg_bit(reg))
        return consumer[p] == c && inputs_intact(p, c) ? p : -1;
    }
    return -1;
  };
  const auto plain = [&](int i, EwFn f) {
    return steps[i].ins.kind == EwKind::apply && steps[i].fused == EwFused::none && steps[i].act == EwAct::none &&
           steps[i].ins.fn == f;
  };
  // mul -> add / sub
  for (int c = 0; c < n; ++c) {
    if (!(plain(c, EwFn::add) || plain(c, EwFn::sub))) continue;
    for (int which = 0; which < 2; ++which) {
      const int p = producer_of(c, which);
      if (p < 0 || !plain(p, EwFn::mul)) continue;
      EwStep& s = steps[c];
      const std::uint8_t other = which == 0 ? s.ins.b : s.ins.a;
      s.fused = s.ins.fn == EwFn::add ? EwFused::mul_add : (which == 0 ? EwFused::mul_sub : EwFused::sub_mul);
      s.ins.a = steps[p].ins.a;
      s.ins.b = steps[p].ins.b;
      s.ins.c = other;
      removed[p] = true;
      break;
    }
  }
  // arithmetic -> relu / relu6 / clamp
  for (int c = 0; c < n; ++c) {
    const EwFn f = steps[c].ins.fn;
    if (!(plain(c, EwFn::relu) || plain(c, EwFn::relu6) || plain(c, EwFn::clamp))) continue;
    const int p = producer_of(c, 0);
    if (p < 0 || steps[p].act != EwAct::none || steps[p].ins.kind != EwKind::apply) continue;
    const EwFused pf = steps[p].fused;
    const EwFn pfn = steps[p].ins.fn;
    const bool arith = pf == EwFused::mul_add || pf == EwFused::mul_sub || pf == EwFused::sub_mul ||
                       (pf == EwFused::none && (pfn == EwFn::add || pfn == EwFn::sub || pfn == EwFn::mul));
    if (!arith) continue;
    EwStep s = steps[p];
    s.ins.dst = steps[c].ins.dst;
    s.act = f == EwFn::relu ? EwAct::relu : EwAct::clamp;
    s.lo = f == EwFn::relu6 ? 0.f : steps[c].ins.p0;
    s.hi = f == EwFn::relu6 ? 6.f : steps[c].ins.p1;
    steps[c] = s;
    removed[p] = true;
  }
  // sigmoid / silu / tanh / gelu -> mul
  for (int c = 0; c < n; ++c) {
    if (!plain(c, EwFn::mul)) continue;
    for (int which = 0; which < 2; ++which) {
      const int p = producer_of(c, which);
      if (p < 0 || steps[p].fused != EwFused::none || !gate_fn(steps[p].ins.fn)) continue;
      EwStep& s = steps[c];
      const std::uint8_t other = which == 0 ? s.ins.b : s.ins.a;
      s.fused = EwFused::gate;
      s.ins.fn = steps[p].ins.fn;
      s.ins.p0 = steps[p].ins.p0;
      s.ins.p1 = steps[p].ins.p1;
      s.ins.a = steps[p].ins.a;
      s.ins.b = other;
      removed[p] = true;
      break;
    }
  }
}

/// Runs a fused step over [0, n): the same operations as the instructions it replaced.
inline void apply_fused(const EwStep& s, const float* a, const float* b, const float* c, float* d, int n) {
  using ewm::detail::map2;
  using ewm::detail::map3;
  // opaque() keeps compilers from contracting a*b+c into an FMA (bit-identity with the
  // unfused mul and add).
  switch (s.fused) {
    case EwFused::none: break;
    case EwFused::gate:
      switch (s.ins.fn) {
        case EwFn::sigmoid: return map2(a, b, d, n, [](auto x, auto y) { return ewm::sigmoid(x) * y; });
        case EwFn::silu: return map2(a, b, d, n, [](auto x, auto y) { return ewm::silu(x) * y; });
        case EwFn::tanh: return map2(a, b, d, n, [](auto x, auto y) { return ewm::tanh(x) * y; });
        case EwFn::gelu_tanh: return map2(a, b, d, n, [](auto x, auto y) { return ewm::gelu_tanh(x) * y; });
        case EwFn::gelu_erf: return map2(a, b, d, n, [](auto x, auto y) { return ewm::gelu_erf(x) * y; });
        default: return;
      }
    case EwFused::mul_add:
    case EwFused::mul_sub:
    case EwFused::sub_mul: break;
  }
  const float lo = s.lo, hi = s.hi;
  const auto relu = [](auto v) { return ewm::relu(v); };
  const auto clamp = [lo, hi](auto v) { return ewm::clamp(v, decltype(v)(lo), decltype(v)(hi)); };
  const auto binary = [&](auto act) {
    switch (s.ins.fn) {
      case EwFn::add: return map2(a, b, d, n, [act](auto x, auto y) { return act(x + y); });
      case EwFn::sub: return map2(a, b, d, n, [act](auto x, auto y) { return act(x - y); });
      default: return map2(a, b, d, n, [act](auto x, auto y) { return act(x * y); });
    }
  };
  const auto ternary = [&](auto act) {
    switch (s.fused) {
      case EwFused::mul_add:
        return map3(a, b, c, d, n, [act](auto x, auto y, auto z) {
          const auto t = ewm::detail::opaque(x * y);
          return act(t + z);
        });
      case EwFused::mul_sub:
        return map3(a, b, c, d, n, [act](auto x, auto y, auto z) {
          const auto t = ewm::detail::opaque(x * y);
          return act(t - z);
        });
      default:
        return map3(a, b, c, d, n, [act](auto x, auto y, auto z) {
          const auto t = ewm::detail::opaque(x * y);
          return act(z - t);
        });
    }
  };
  const bool three = s.fused != EwFused::none;
  switch (s.act) {
    case EwAct::none: return ternary([](auto v) { return v; });  // plain binaries never get here
    case EwAct::relu: return three ? ternary(relu) : binary(relu);
    case EwAct::clamp: return three ? ternary(clamp) : binary(clamp);
  }
}

}  // namespace detail

/// Evaluates an EwProgram tile by tile. Holds the register file (kEwMaxRegs x kEwTile floats,
/// 64-byte aligned) and the plan, so construct it once per loop, not once per tile.
///
/// The plan (programs up to kEwMaxSteps instructions) fuses producer/consumer pairs into one
/// loop (detail::plan_fusion) and may let the step that produces a stored register write
/// straight into the target (write_directly).
class EwTileEval {
 public:
  explicit EwTileEval(const EwProgram& prog) : prog_(prog) {
    for (int r = 0; r < kEwMaxRegs; ++r) view_[r] = regs_[r];
    for (int pc = 0; pc < prog.size; ++pc)
      if (prog.code[pc].kind == EwKind::store && prog.code[pc].dst == 0) store0_reg_ = prog.code[pc].a;
    if (prog.size > kEwMaxSteps) return;  // run as written
    bool removed[kEwMaxSteps];
    EwStep all[kEwMaxSteps];
    for (int pc = 0; pc < prog.size; ++pc) all[pc].ins = prog.code[pc];
    detail::plan_fusion(all, removed, prog.size);
    for (int pc = 0; pc < prog.size; ++pc)
      if (!removed[pc]) steps_[n_steps_++] = all[pc];
    planned_ = true;
  }
  EwTileEval(const EwTileEval&) = delete;
  EwTileEval& operator=(const EwTileEval&) = delete;

  /// The plan: steps() [0, num_steps()) (empty when the program was too long to plan).
  const EwStep* steps() const { return steps_; }
  int num_steps() const { return planned_ ? n_steps_ : 0; }

  /// Lets plan step `step` (the last writer of the register stored to `target`) write straight
  /// into target memory instead of a register tile. Only valid when the target is f32 with unit
  /// stride and no later step reads memory that write overwrites (ew_run checks all of this).
  void write_directly(int step, int target) {
    direct_[step] = static_cast<std::int8_t>(target);
    has_direct_ = true;
  }

  /// Runs the program on positions [pos, pos + len) of one row, len in [1, kEwTile].
  /// in[k] / out[k] describe the row of operand / target k (position 0 at .data). `out` may be
  /// null: nothing is stored, and stored_values() / reg() give the results.
  void run(const EwRowIn* in, const EwRowOut* out, index_t pos, int len) {
    if (!planned_) {
      EwStep s;
      for (int pc = 0; pc < prog_.size; ++pc) {
        s.ins = prog_.code[pc];
        run_step(s, -1, in, out, pos, len);
      }
      return;
    }
    for (int i = 0; i < n_steps_; ++i) run_step(steps_[i], has_direct_ ? direct_[i] : -1, in, out, pos, len);
  }

  /// The `len` values register r held at the end of the last run.
  const float* reg(int r) const { return view_[r]; }
  /// The values `store dst=0` wrote (or would have written) in the last run: how reductions
  /// read a producer's result without a target.
  const float* stored_values() const { return view_[store0_reg_]; }

 private:
  void run_step(const EwStep& s, int direct, const EwRowIn* in, const EwRowOut* out, index_t pos, int len) {
    const EwInstr& ins = s.ins;
    switch (ins.kind) {
      case EwKind::load: view_[ins.dst] = load(in[ins.a], pos, ins.dst, len); return;
      case EwKind::splat: view_[ins.dst] = fill_const(ins.dst, ins.p0); return;
      case EwKind::store:
        if (out) store(out[ins.dst], pos, view_[ins.a], len);
        return;
      case EwKind::apply: break;
    }
    float* d = regs_[ins.dst];
    if (direct >= 0 && out) {
      d = static_cast<float*>(out[direct].data) + pos;  // unit stride, f32 (checked by the planner)
    } else {
      const_mask_ &= ~detail::reg_bit(ins.dst);
    }
    if (s.fused == EwFused::none && s.act == EwAct::none)
      ew_apply(ins, view_[ins.a], view_[ins.b], view_[ins.c], d, len);
    else
      detail::apply_fused(s, view_[ins.a], view_[ins.b], view_[ins.c], d, len);
    view_[ins.dst] = d;
  }

  const float* load(const EwRowIn& op, index_t pos, int r, int len) {
    const index_t st = op.stride;
    if (op.dtype == DType::boolean) {
      const auto* p = static_cast<const std::uint8_t*>(op.data) + pos * st;
      if (st == 0) return fill_const(r, *p ? 1.f : 0.f);
      float* d = regs_[r];
      const_mask_ &= ~(1u << r);
      if (st == 1)
        for (int i = 0; i < len; ++i) d[i] = p[i] ? 1.f : 0.f;
      else
        for (int i = 0; i < len; ++i) d[i] = p[i * st] ? 1.f : 0.f;
      return d;
    }
    const float* p = static_cast<const float*>(op.data) + pos * st;
    if (st == 1) return p;  // zero-copy
    if (st == 0) return fill_const(r, *p);
    float* d = regs_[r];
    const_mask_ &= ~(1u << r);
    for (int i = 0; i < len; ++i) d[i] = p[i * st];
    return d;
  }

  /// Fills the whole tile of register r with v, unless it already holds exactly v (same bits):
  /// a broadcast operand or a constant is then written once per loop rather than once per tile.
  const float* fill_const(int r, float v) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    const std::uint32_t bit = 1u << r;
    if (!(const_mask_ & bit) || const_bits_[r] != bits) {
      float* d = regs_[r];
      for (int i = 0; i < kEwTile; ++i) d[i] = v;
      const_mask_ |= bit;
      const_bits_[r] = bits;
    }
    return regs_[r];
  }

  static void store(const EwRowOut& t, index_t pos, const float* v, int len) {
    const index_t st = t.stride;
    if (t.dtype == DType::boolean) {
      auto* p = static_cast<std::uint8_t*>(t.data) + pos * st;
      for (int i = 0; i < len; ++i) p[i * st] = v[i] != 0.f ? 1 : 0;
      return;
    }
    float* p = static_cast<float*>(t.data) + pos * st;
    if (st == 1) {
      if (p != v) std::memmove(p, v, static_cast<std::size_t>(len) * sizeof(float));
    } else {
      for (int i = 0; i < len; ++i) p[i * st] = v[i];
    }
  }

  alignas(64) float regs_[kEwMaxRegs][kEwTile];
  const EwProgram& prog_;
  const float* view_[kEwMaxRegs];  // where each register's current values are (tile or memory)
  std::uint32_t const_bits_[kEwMaxRegs] = {};
  detail::RegMask const_mask_ = 0;  // bit r: regs_[r] is entirely const_bits_[r]
  int store0_reg_ = 0;
  EwStep steps_[kEwMaxSteps];
  int n_steps_ = 0;
  bool planned_ = false;
  bool has_direct_ = false;
  std::int8_t direct_[kEwMaxSteps] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                      -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                      -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                      -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
  static_assert(kEwMaxSteps == 64, "direct_ initializer lists one -1 per step");
};

namespace detail {

/// Loop dimensions after coalescing, outermost first. Coalesced dim g iterates ext[g] times with,
/// for every operand, the stride of original dim src[g] (the innermost of the merged group).
struct LoopDims {
  int nd = 0;
  index_t ext[kMaxRank] = {};
  int src[kMaxRank] = {};
};

/// Coalesces dims [lo, hi) of `shape`: drops extent-1 dims and merges a dim into its inner
/// neighbour group when, for every stride set k in [0, n_sets), stride_of(k, dim) equals
/// stride(group) * extent(group), i.e. the two dims walk memory as one.
template <class StrideOf>
inline LoopDims coalesce_dims(const Shape& shape, int lo, int hi, int n_sets, StrideOf stride_of) {
  LoopDims rev;  // built innermost first, reversed at the end
  for (int d = hi - 1; d >= lo; --d) {
    if (shape[d] == 1) continue;
    bool merge = rev.nd > 0;
    if (merge) {
      const int g = rev.nd - 1;
      for (int k = 0; k < n_sets && merge; ++k)
        merge = stride_of(k, d) == stride_of(k, rev.src[g]) * rev.ext[g];
    }
    if (merge) {
      rev.ext[rev.nd - 1] *= shape[d];
    } else {
      rev.ext[rev.nd] = shape[d];
      rev.src[rev.nd] = d;
      ++rev.nd;
    }
  }
  LoopDims out;
  out.nd = rev.nd;
  for (int g = 0; g < rev.nd; ++g) {
    out.ext[g] = rev.ext[rev.nd - 1 - g];
    out.src[g] = rev.src[rev.nd - 1 - g];
  }
  return out;
}

/// Element offset of loop index idx[0..count) under `strides` (original-dim strides).
inline index_t loop_offset(const LoopDims& dims, const index_t* idx, int count, const Strides& strides) {
  index_t off = 0;
  for (int g = 0; g < count; ++g) off += idx[g] * strides[dims.src[g]];
  return off;
}

/// Advances a row-major counter over dims [0, count); false once it wraps around.
inline bool next_index(const LoopDims& dims, index_t* idx, int count) {
  for (int g = count - 1; g >= 0; --g) {
    if (++idx[g] < dims.ext[g]) return true;
    idx[g] = 0;
  }
  return false;
}

/// Byte range [lo, hi) an operand touches over `shape`.
struct Span {
  std::uintptr_t lo = 0, hi = 0;
  bool overlaps(const Span& o) const { return lo < o.hi && o.lo < hi; }
};
inline Span span_of(const void* data, DType dt, const Strides& st, const Shape& shape) {
  index_t lo = 0, hi = 0;
  for (int d = 0; d < shape.rank(); ++d) {
    const index_t step = st[d] * (shape[d] - 1);
    (step < 0 ? lo : hi) += step;
  }
  const auto base = reinterpret_cast<std::uintptr_t>(data);
  const index_t size = dtype_size(dt);
  return {base + static_cast<std::uintptr_t>(lo * size), base + static_cast<std::uintptr_t>((hi + 1) * size)};
}

/// Decides which targets the step producing them may write directly (EwTileEval::write_directly).
/// Target t qualifies when it is f32 with unit inner stride, stored exactly once, the last writer
/// of its register is an apply step, it overlaps no other target, and after that step nothing
/// reads an operand overlapping t (same-position in-place reuse would otherwise read values the
/// direct write already replaced).
inline void plan_direct_writes(EwTileEval& ev, const EwOperand* in, int n_in, const EwTarget* out, int n_out,
                               const Shape& shape, const bool* unit_stride) {
  const EwStep* steps = ev.steps();
  const int n = ev.num_steps();
  if (n == 0) return;
  Span in_span[kEwMaxOperands], out_span[kEwMaxOperands];
  for (int k = 0; k < n_in; ++k) in_span[k] = span_of(in[k].data, in[k].dtype, in[k].strides, shape);
  for (int t = 0; t < n_out; ++t) out_span[t] = span_of(out[t].data, out[t].dtype, out[t].strides, shape);
  RegMask reg_taken = 0;
  for (int t = 0; t < n_out; ++t) {
    if (out[t].dtype != DType::f32 || !unit_stride[t]) continue;
    bool ok = true;
    for (int u = 0; u < n_out && ok; ++u) ok = u == t || !out_span[t].overlaps(out_span[u]);
    int store = -1, n_stores = 0, first_store = n;
    for (int i = 0; i < n; ++i) {
      if (steps[i].ins.kind != EwKind::store) continue;
      if (i < first_store) first_store = i;
      if (steps[i].ins.dst == t) store = i, ++n_stores;
    }
    if (!ok || n_stores != 1) continue;
    const int r = steps[store].ins.a;
    if (reg_taken & reg_bit(r)) continue;
    int writer = -1;
    for (int i = first_store - 1; i >= 0 && writer < 0; --i)
      if (step_writes(steps[i]) & reg_bit(r)) writer = i;
    if (writer < 0 || steps[writer].ins.kind != EwKind::apply) continue;
    // Replay the plan, tracking which registers are views of an operand overlapping t.
    RegMask aliased = 0;
    for (int i = 0; i < n && ok; ++i) {
      const EwStep& s = steps[i];
      if (i > writer && (step_reads(s) & aliased)) ok = false;
      const bool overlaps = s.ins.kind == EwKind::load && in_span[s.ins.a].overlaps(out_span[t]);
      if (overlaps && i > writer) ok = false;
      if (overlaps) aliased |= reg_bit(s.ins.dst);
      else aliased &= ~step_writes(s);
    }
    if (!ok) continue;
    ev.write_directly(writer, t);
    reg_taken |= reg_bit(r);
  }
}

}  // namespace detail

/// Runs `prog` over every position of `shape` (row-major). in[k] is read by `load a=k`, out[k]
/// written by `store dst=k`; both carry element strides over `shape` (0 = broadcast). Adjacent
/// dims are coalesced where every operand and target allows it; outer dims are walked with a
/// counter and the innermost dim in tiles of kEwTile. An extent of 0 does nothing; rank 0 runs once.
/// At most kEwMaxOperands inputs and as many targets (more is reported through kiln::fail).
inline void ew_run(const EwProgram& prog, const EwOperand* in, int n_in, const EwTarget* out, int n_out,
                   const Shape& shape) {
  if (n_in > kEwMaxOperands || n_out > kEwMaxOperands || n_in < 0 || n_out < 0) {
    fail(Status(Errc::capacity_exceeded) << "ew_run: " << n_in << " inputs, " << n_out << " outputs (max "
                                         << kEwMaxOperands << " each)");
    return;
  }
  if (shape.numel() == 0) return;
  const detail::LoopDims dims =
      detail::coalesce_dims(shape, 0, shape.rank(), n_in + n_out, [&](int k, int d) {
        return k < n_in ? in[k].strides[d] : out[k - n_in].strides[d];
      });
  // Rank 0 (or all extents 1) is a single row of one element, where any stride reads position 0.
  const int nd = dims.nd;
  const index_t row_len = nd > 0 ? dims.ext[nd - 1] : 1;
  const int outer = nd > 0 ? nd - 1 : 0;
  const auto inner_stride = [&](const Strides& s) -> index_t { return nd > 0 ? s[dims.src[nd - 1]] : 1; };

  EwRowIn rin[kEwMaxOperands];
  EwRowOut rout[kEwMaxOperands];
  bool unit_stride[kEwMaxOperands];
  for (int k = 0; k < n_in; ++k) rin[k] = {in[k].data, inner_stride(in[k].strides), in[k].dtype};
  for (int t = 0; t < n_out; ++t) {
    rout[t] = {out[t].data, inner_stride(out[t].strides), out[t].dtype};
    unit_stride[t] = rout[t].stride == 1 || row_len == 1;
    if (row_len == 1) rout[t].stride = 1;
  }
  if (row_len == 1)
    for (int k = 0; k < n_in; ++k) rin[k].stride = rin[k].stride == 0 ? 0 : 1;

  EwTileEval ev(prog);
  detail::plan_direct_writes(ev, in, n_in, out, n_out, shape, unit_stride);

  index_t idx[kMaxRank] = {};
  do {
    for (int k = 0; k < n_in; ++k) {
      const index_t off = detail::loop_offset(dims, idx, outer, in[k].strides) * dtype_size(in[k].dtype);
      rin[k].data = static_cast<const char*>(in[k].data) + off;
    }
    for (int t = 0; t < n_out; ++t) {
      const index_t off = detail::loop_offset(dims, idx, outer, out[t].strides) * dtype_size(out[t].dtype);
      rout[t].data = static_cast<char*>(out[t].data) + off;
    }
    for (index_t pos = 0; pos < row_len; pos += kEwTile) {
      const int len = static_cast<int>(row_len - pos < kEwTile ? row_len - pos : kEwTile);
      ev.run(rin, rout, pos, len);
    }
  } while (detail::next_index(dims, idx, outer));
}

}  // namespace kiln::kernels
