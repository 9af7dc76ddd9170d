// kiln/kernels/elementwise.hpp — runs a fused elementwise program over a shape.
//
// Two layers:
//   EwTileEval  plans the program once (fuses producer/consumer pairs into one loop,
//               reassigns register tiles), then runs it on one tile at a time (<= kEwTile
//               consecutive positions of a strided row). The reduction kernels reuse it to
//               evaluate producer chains.
//   ew_run      coalesces the loop dimensions and walks the output row by row, tile by tile.
//
// Per tile, each step is one switch and one SIMD loop over the tile. An f32 operand read
// with unit stride is never copied (its register is a pointer into the input); a broadcast
// (stride 0) operand or a constant is a tile filled once and reused while its value does not
// change; any other stride is gathered. The step whose result is stored to a unit-stride f32
// target writes straight into the target (unless that would clobber an input still to be read).
//
// Cost model: each step of each tile has a fixed cost (~50 cycles on Zen 3: call, loop setup,
// reading what the previous step just stored), so kEwTile (KILN_EW_TILE) trades stack for
// speed: the relu(a*x+b)*sigmoid(x) chain runs ~25% faster with 512 than with 128.
#pragma once

#include <cstdint>
#include <cstring>

#include "../core/config.hpp"
#include "../core/shape.hpp"
#include "../core/status.hpp"
#include "../quant/quantize.hpp"
#include "int8/convert.hpp"
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
/// One target along the innermost dimension (i8: quantised with scale / zero_point).
struct EwRowOut {
  void* data = nullptr;
  index_t stride = 1;
  DType dtype = DType::f32;
  float scale = 1.f;
  std::int32_t zero_point = 0;
};

/// What a plan step computes beyond its instruction (see detail::plan_program). Each fused form
/// performs exactly the operations of the instructions it replaces, in the same order and
/// rounding (no FMA contraction), so fusion never changes a result bit.
enum class EwFused : std::uint8_t {
  none,     // the instruction as written
  mul_add,  // r[dst] = r[a] * r[b] + r[c]
  mul_sub,  // r[dst] = r[a] * r[b] - r[c]
  sub_mul,  // r[dst] = r[c] - r[a] * r[b]
  gate,     // r[dst] = fn(r[a]) * r[b], fn a unary instruction's function
};
/// Activation applied to the result of an add/sub/mul or mul_* step in the same loop: relu,
/// relu6 and clamp all become clamp(lo, hi) (relu = clamp(0, +inf) gives the same bits as relu:
/// min(+inf, y) is y).
enum class EwAct : std::uint8_t { none, clamp };

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

/// Registers a step writes.
inline RegMask step_writes(const EwStep& s) { return s.ins.kind == EwKind::store ? 0 : reg_bit(s.ins.dst); }

/// Unary functions worth fusing into a following multiply (gating: GLU, SwiGLU, LSTM, x*sigmoid(y)).
inline bool gate_fn(EwFn f) {
  return f == EwFn::sigmoid || f == EwFn::silu || f == EwFn::tanh || f == EwFn::gelu_tanh || f == EwFn::gelu_erf;
}

/// The operand fields a step reads (by kind, arity and fused form); returns how many.
inline int operand_fields(EwStep& s, std::uint8_t** out) {
  switch (s.ins.kind) {
    case EwKind::load:
    case EwKind::splat: return 0;
    case EwKind::store: out[0] = &s.ins.a; return 1;
    case EwKind::apply: break;
  }
  int arity = ewfn_arity(s.ins.fn);
  if (s.fused == EwFused::gate) arity = 2;
  if (s.fused == EwFused::mul_add || s.fused == EwFused::mul_sub || s.fused == EwFused::sub_mul) arity = 3;
  out[0] = &s.ins.a;
  if (arity > 1) out[1] = &s.ins.b;
  if (arity > 2) out[2] = &s.ins.c;
  return arity;
}

/// Registers a step reads.
inline RegMask step_reads(const EwStep& s) {
  EwStep copy = s;
  std::uint8_t* f[3];
  RegMask m = 0;
  for (int j = 0, k = operand_fields(copy, f); j < k; ++j) m |= reg_bit(*f[j]);
  return m;
}

/// Plans `prog` (size <= kEwMaxSteps) into `steps`: fuses producer/consumer pairs, then assigns
/// register tiles anew. Returns false (caller runs the program as written) when the program reads
/// a register it never wrote or the fused plan needs more than kEwMaxRegs tiles.
///
/// Registers are first renamed to values (value v = the result of instruction v), so fusion is
/// free of the program's register reuse: producer p fuses into consumer c when c is the only
/// reader of p's value. Patterns: mul -> add/sub (mul_add, mul_sub, sub_mul); add/sub/mul/mul_*
/// -> relu/relu6/clamp (act); sigmoid/silu/tanh/gelu -> mul (gate). A fused step reads p's
/// inputs at c's place, so their values must live longer: tiles are then reassigned by a linear
/// scan over the plan (lowest free tile; constants from the top, so that their tiles, which the
/// constant cache keeps filled, are rarely taken by other values).
inline bool plan_program(const EwProgram& prog, EwStep* steps, int& n_steps) {
  const int n = prog.size;
  EwStep v[kEwMaxSteps];  // value space: register fields hold value ids (instruction indices)
  bool removed[kEwMaxSteps] = {};
  int cur[kEwMaxRegs];
  for (int r = 0; r < kEwMaxRegs; ++r) cur[r] = -1;
  for (int i = 0; i < n; ++i) {
    v[i] = EwStep{};
    v[i].ins = prog.code[i];
    std::uint8_t* ops[3];
    const int k = operand_fields(v[i], ops);
    for (int j = 0; j < k; ++j) {
      if (*ops[j] >= kEwMaxRegs || cur[*ops[j]] < 0) return false;
      *ops[j] = static_cast<std::uint8_t>(cur[*ops[j]]);
    }
    if (v[i].ins.kind != EwKind::store) {
      if (v[i].ins.dst >= kEwMaxRegs) return false;
      cur[v[i].ins.dst] = i;
      v[i].ins.dst = static_cast<std::uint8_t>(i);
    }
  }
  // reader[p]: the one step reading value p once (-1: none, several, or a store).
  int readers[kEwMaxSteps] = {}, reader[kEwMaxSteps];
  for (int i = 0; i < n; ++i) reader[i] = -1;
  for (int i = 0; i < n; ++i) {
    std::uint8_t* ops[3];
    const int k = operand_fields(v[i], ops);
    for (int j = 0; j < k; ++j) {
      ++readers[*ops[j]];
      reader[*ops[j]] = v[i].ins.kind == EwKind::apply ? i : kEwMaxSteps;
    }
  }
  const auto only_reader = [&](int p, int c) {
    return readers[p] == 1 && reader[p] == c && v[p].ins.kind == EwKind::apply && !removed[p];
  };
  const auto plain = [&](int i, EwFn f) {
    return !removed[i] && v[i].ins.kind == EwKind::apply && v[i].fused == EwFused::none && v[i].act == EwAct::none &&
           v[i].ins.fn == f;
  };
  // mul -> add / sub
  for (int c = 0; c < n; ++c) {
    if (!(plain(c, EwFn::add) || plain(c, EwFn::sub))) continue;
    for (int which = 0; which < 2; ++which) {
      const int p = which == 0 ? v[c].ins.a : v[c].ins.b;
      if (!only_reader(p, c) || !plain(p, EwFn::mul)) continue;
      EwStep& s = v[c];
      const std::uint8_t other = which == 0 ? s.ins.b : s.ins.a;
      s.fused = s.ins.fn == EwFn::add ? EwFused::mul_add : (which == 0 ? EwFused::mul_sub : EwFused::sub_mul);
      s.ins.a = v[p].ins.a;
      s.ins.b = v[p].ins.b;
      s.ins.c = other;
      removed[p] = true;
      break;
    }
  }
  // arithmetic -> relu / relu6 / clamp
  for (int c = 0; c < n; ++c) {
    const EwFn f = v[c].ins.fn;
    if (!(plain(c, EwFn::relu) || plain(c, EwFn::relu6) || plain(c, EwFn::clamp))) continue;
    const int p = v[c].ins.a;
    if (!only_reader(p, c) || v[p].act != EwAct::none) continue;
    const EwFused pf = v[p].fused;
    const EwFn pfn = v[p].ins.fn;
    const bool arith = pf == EwFused::mul_add || pf == EwFused::mul_sub || pf == EwFused::sub_mul ||
                       (pf == EwFused::none && (pfn == EwFn::add || pfn == EwFn::sub || pfn == EwFn::mul));
    if (!arith) continue;
    EwStep s = v[p];
    s.ins.dst = v[c].ins.dst;
    s.act = EwAct::clamp;
    s.lo = f == EwFn::clamp ? v[c].ins.p0 : 0.f;
    s.hi = f == EwFn::clamp ? v[c].ins.p1 : (f == EwFn::relu6 ? 6.f : ewm::kInf);
    v[c] = s;
    removed[p] = true;
  }
  // sigmoid / silu / tanh / gelu -> mul
  for (int c = 0; c < n; ++c) {
    if (!plain(c, EwFn::mul)) continue;
    for (int which = 0; which < 2; ++which) {
      const int p = which == 0 ? v[c].ins.a : v[c].ins.b;
      if (!only_reader(p, c) || v[p].fused != EwFused::none || v[p].act != EwAct::none || !gate_fn(v[p].ins.fn))
        continue;
      EwStep& s = v[c];
      const std::uint8_t other = which == 0 ? s.ins.b : s.ins.a;
      s.fused = EwFused::gate;
      s.ins.fn = v[p].ins.fn;
      s.ins.p0 = v[p].ins.p0;
      s.ins.p1 = v[p].ins.p1;
      s.ins.a = v[p].ins.a;
      s.ins.b = other;
      removed[p] = true;
      break;
    }
  }
  // Tiles: linear scan. A value's tile is released after its last reading step (that step may
  // write its own result into it: every loop reads a position before writing it).
  int last_use[kEwMaxSteps];
  for (int i = 0; i < n; ++i) last_use[i] = -1;
  for (int i = 0; i < n; ++i) {
    if (removed[i]) continue;
    std::uint8_t* ops[3];
    const int k = operand_fields(v[i], ops);
    for (int j = 0; j < k; ++j) last_use[*ops[j]] = i;
  }
  int tile[kEwMaxSteps];
  RegMask busy = 0;
  n_steps = 0;
  for (int i = 0; i < n; ++i) {
    if (removed[i]) continue;
    EwStep s = v[i];
    std::uint8_t *vals[3], *regs[3];
    const int k = operand_fields(v[i], vals);
    operand_fields(s, regs);
    for (int j = 0; j < k; ++j) *regs[j] = static_cast<std::uint8_t>(tile[*vals[j]]);
    for (int j = 0; j < k; ++j)
      if (last_use[*vals[j]] == i) busy &= ~reg_bit(tile[*vals[j]]);
    if (s.ins.kind != EwKind::store) {
      int t = -1;
      const bool constant = s.ins.kind == EwKind::splat;
      for (int r = 0; r < kEwMaxRegs; ++r) {
        const int cand = constant ? kEwMaxRegs - 1 - r : r;
        if (!(busy & reg_bit(cand))) {
          t = cand;
          break;
        }
      }
      if (t < 0) return false;
      tile[i] = t;
      s.ins.dst = static_cast<std::uint8_t>(t);
      busy |= reg_bit(t);
      if (last_use[i] < 0) busy &= ~reg_bit(t);  // never read: the tile is free again at once
    }
    steps[n_steps++] = s;
  }
  return true;
}

/// Runs a fused step over [0, n): the same operations as the instructions it replaced.
inline void apply_fused(const EwStep& s, const float* a, const float* b, const float* c, float* d, int n) {
  using ewm::detail::map2;
  using ewm::detail::map3;
  using ewm::detail::opaque;  // keeps compilers from contracting a*b+c into an FMA (bit-identity)
  const float lo = s.lo, hi = s.hi;
  const bool act = s.act == EwAct::clamp;
#define KILN_EW_CLAMPED(expr) ewm::clamp(expr, decltype(x)(lo), decltype(x)(hi))
  switch (s.fused) {
    case EwFused::gate:
      switch (s.ins.fn) {
        case EwFn::sigmoid: return map2(a, b, d, n, [](auto x, auto y) { return ewm::sigmoid(x) * y; });
        case EwFn::silu: return map2(a, b, d, n, [](auto x, auto y) { return ewm::silu(x) * y; });
        case EwFn::tanh: return map2(a, b, d, n, [](auto x, auto y) { return ewm::tanh(x) * y; });
        case EwFn::gelu_tanh: return map2(a, b, d, n, [](auto x, auto y) { return ewm::gelu_tanh(x) * y; });
        case EwFn::gelu_erf: return map2(a, b, d, n, [](auto x, auto y) { return ewm::gelu_erf(x) * y; });
        default: return;
      }
    case EwFused::none:  // add / sub / mul followed by a clamp (a plain binary never gets here)
      switch (s.ins.fn) {
        case EwFn::add: return map2(a, b, d, n, [lo, hi](auto x, auto y) { return KILN_EW_CLAMPED(x + y); });
        case EwFn::sub: return map2(a, b, d, n, [lo, hi](auto x, auto y) { return KILN_EW_CLAMPED(x - y); });
        default: return map2(a, b, d, n, [lo, hi](auto x, auto y) { return KILN_EW_CLAMPED(x * y); });
      }
    case EwFused::mul_add:
      if (act) return map3(a, b, c, d, n, [lo, hi](auto x, auto y, auto z) { return KILN_EW_CLAMPED(opaque(x * y) + z); });
      return map3(a, b, c, d, n, [](auto x, auto y, auto z) { return opaque(x * y) + z; });
    case EwFused::mul_sub:
      if (act) return map3(a, b, c, d, n, [lo, hi](auto x, auto y, auto z) { return KILN_EW_CLAMPED(opaque(x * y) - z); });
      return map3(a, b, c, d, n, [](auto x, auto y, auto z) { return opaque(x * y) - z; });
    case EwFused::sub_mul:
      if (act) return map3(a, b, c, d, n, [lo, hi](auto x, auto y, auto z) { return KILN_EW_CLAMPED(z - opaque(x * y)); });
      return map3(a, b, c, d, n, [](auto x, auto y, auto z) { return z - opaque(x * y); });
  }
#undef KILN_EW_CLAMPED
}

}  // namespace detail

/// Evaluates an EwProgram tile by tile. Holds the register file (kEwMaxRegs x kEwTile floats,
/// 64-byte aligned) and the plan, so construct it once per loop, not once per tile.
///
/// The plan (programs up to kEwMaxSteps instructions) fuses producer/consumer pairs into one
/// loop (detail::plan_program) and may let the step that produces a stored register write
/// straight into the target (write_directly).
class EwTileEval {
 public:
  explicit EwTileEval(const EwProgram& prog) : prog_(prog) {
    for (int r = 0; r < kEwMaxRegs; ++r) view_[r] = regs_[r];
    planned_ = prog.size <= kEwMaxSteps && detail::plan_program(prog, steps_, n_steps_);
    // Which register `store dst=0` reads, in the plan or else in the program as written.
    const int n = planned_ ? n_steps_ : prog.size;
    for (int i = 0; i < n; ++i) {
      const EwInstr& ins = planned_ ? steps_[i].ins : prog.code[i];
      if (ins.kind == EwKind::store && ins.dst == 0) store0_reg_ = ins.a;
    }
  }
  EwTileEval(const EwTileEval&) = delete;
  EwTileEval& operator=(const EwTileEval&) = delete;

  /// The plan: steps() [0, num_steps()) (empty when the program is run as written: longer than
  /// kEwMaxSteps, or not plannable, see detail::plan_program).
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
  /// null: nothing is stored, and stored_values() gives the result of `store dst=0`.
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

  /// The values `store dst=0` wrote (or would have written) in the last run: how reductions
  /// read a producer's result without a target.
  const float* stored_values() const { return view_[store0_reg_]; }

  /// k when the program only passes operand k through (`load r=k; store 0=r`), else -1: the
  /// caller may then read the operand directly, in chunks of any length.
  int passthrough_operand() const {
    const EwInstr* c = planned_ ? nullptr : prog_.code;
    const EwInstr& first = c ? c[0] : steps_[0].ins;
    const EwInstr& second = c ? c[1] : steps_[1].ins;
    const int n = planned_ ? n_steps_ : prog_.size;
    if (n != 2 || first.kind != EwKind::load || second.kind != EwKind::store || second.dst != 0 ||
        second.a != first.dst)
      return -1;
    return first.a;
  }

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
    // Operands a function does not take may hold anything: keep their index in range.
    constexpr int m = kEwMaxRegs - 1;
    static_assert((kEwMaxRegs & m) == 0, "kEwMaxRegs must be a power of two");
    const float *a = view_[ins.a & m], *b = view_[ins.b & m], *c = view_[ins.c & m];
    if (s.fused == EwFused::none && s.act == EwAct::none)
      ew_apply(ins, a, b, c, d, len);
    else
      detail::apply_fused(s, a, b, c, d, len);
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
    if (t.dtype == DType::i8) {  // a quantize fused into the program: the separate step's kernel, same bytes
      auto* p = static_cast<std::int8_t*>(t.data) + pos * st;
      const quant::TensorQuant q{t.scale, t.zero_point};
      if (st == 1)
        int8::quantize(v, p, len, q);
      else
        for (int i = 0; i < len; ++i) p[i * st] = quant::quantize_value(v[i], q);
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
    // One literal: building a message from numbers inlines Status's formatting loops here,
    // which measurably slows the compilation of every user of this header.
    fail(Status(Errc::capacity_exceeded) << "ew_run: more than kEwMaxOperands inputs or targets");
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
    rout[t] = {out[t].data, inner_stride(out[t].strides), out[t].dtype, out[t].scale, out[t].zero_point};
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
