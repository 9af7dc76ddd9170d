// kiln/runtime/step_run.hpp — run one lowered Step (runtime/lower.hpp): the kernel calls of each
// step kind, shared by Executable and the static runner (runtime/static_run.hpp).
//
// The step says what to compute; an Env says where things are:
//   const char* ptr(int base, index_t offset, DType) const   // a value's address
//   const char* at(const Loc&) const                          // a gemm operand resolved at build
//   const ValueSpec& spec(int k) const
//   kernels::EwProgram program(const Step&) const
//   const float* packed(const Step&) const                    // prepacked weight, or nullptr
//   float* workspace(const Step&) const                       // the step's arena scratch
//   const Node& root(const Step&) const                       // the node s.node
//   const Shape& input_shape(const Step&, int k) const        // shape of root's input k
//   void int8(const Step&) const                              // an int8 step (runtime/int8_steps.hpp)
// One function per kind, so a caller that knows a step's kind at compile time instantiates only
// the kernels it uses.
#pragma once

#include "lower.hpp"
#include "../kernels/int8/convert.hpp"

namespace kiln::runtime::step_run {

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

template <class Env>
kernels::EwOperand operand(const Env& e, const ValueSpec& v) {
  return kernels::EwOperand{e.ptr(v.base, v.offset, v.dtype), v.dtype, v.strides};
}
template <class Env>
kernels::EwTarget target(const Env& e, const ValueSpec& v) {
  return kernels::EwTarget{const_cast<char*>(e.ptr(v.base, v.offset, v.dtype)), v.dtype, v.strides, v.quant.scale,
                           v.quant.zero_point};
}
template <class Env>
char* node_out(const Env& e, const Step& s) {
  return const_cast<char*>(e.ptr(s.node, 0, e.root(s).dtype));
}

template <class Env>
void elementwise(const Step& s, const Env& e) {
  OperandSlots op_slots;
  TargetSlots tgt_slots;
  for (int k = 0; k < s.num_ops; ++k) op_slots.v[k] = operand(e, e.spec(s.op_begin + k));
  for (int k = 0; k < s.num_tgts; ++k) tgt_slots.v[k] = target(e, e.spec(s.tgt_begin + k));
  kernels::ew_run(e.program(s), op_slots.v, s.num_ops, tgt_slots.v, s.num_tgts, s.loop);
}

/// reduce and softmax / log_softmax, with the producers' program evaluated inside the passes.
template <class Env>
void reduction(const Step& s, const Env& e) {
  OperandSlots op_slots;
  for (int k = 0; k < s.num_ops; ++k) op_slots.v[k] = operand(e, e.spec(s.op_begin + k));
  const kernels::EwProgram p = e.program(s);
  const kernels::EwProgram* prod = s.code_size ? &p : nullptr;
  float* out = reinterpret_cast<float*>(node_out(e, s));
  if (s.kind == passes::GroupKind::reduce)
    kernels::reduce_run(s.rk, prod, op_slots.v, s.num_ops, s.loop, s.axis, out);
  else
    kernels::softmax_run(s.log, prod, op_slots.v, s.num_ops, s.loop, s.axis, out);
}

template <class Env>
void copy(const Step& s, const Env& e) {
  const ValueSpec& in = e.spec(s.op_begin);
  const Node& n = e.root(s);
  const Shape& is = e.input_shape(s, 0);
  if (n.op == Op::unslice) {
    pad_strided(e.ptr(in.base, in.offset, in.dtype), in.strides, is, n, node_out(e, s));
    return;
  }
  strided_copy(e.ptr(in.base, in.offset, in.dtype), n.dtype, is, in.strides, node_out(e, s));
}

template <class Env>
void concat(const Step& s, const Env& e) {
  const Node& n = e.root(s);
  const Strides os = contiguous_strides(n.shape);
  char* out = node_out(e, s);
  index_t at = 0;
  const SingleOpProgram p(EwFn::identity);
  for (int k = 0; k < s.num_ops; ++k) {
    const Shape& is = e.input_shape(s, k);
    const kernels::EwOperand src = operand(e, e.spec(s.op_begin + k));
    const kernels::EwTarget t{out + at * os[n.axis] * dtype_size(n.dtype), n.dtype, os};
    kernels::ew_run(p.program(), &src, 1, &t, 1, is);
    at += is[n.axis];
  }
}

/// An NHWC input as the window kernels read it: in place, or densely copied to `ws` (which then
/// advances past the copy) when the step needs it dense.
template <class Env>
kernels::NhwcIn nhwc_input(const Env& e, const ValueSpec& v, const Shape& xs, bool dense, float*& ws) {
  const auto* p = reinterpret_cast<const float*>(e.ptr(v.base, v.offset, v.dtype));
  if (!dense) return kernels::NhwcIn{p, v.strides[0], v.strides[1], v.strides[2]};
  strided_copy(p, DType::f32, xs, v.strides, ws);
  const kernels::NhwcIn x = kernels::dense_nhwc(ws, xs[1], xs[2], xs[3]);
  ws += aligned_floats(xs.numel());
  return x;
}

/// pool2d, pad, upsample.
template <class Env>
void window(const Step& s, const Env& e) {
  const Shape& xs = e.input_shape(s, 0);
  float* ws = e.workspace(s);
  run_window_op(e.root(s), xs, nhwc_input(e, s.a, xs, s.dense_a, ws), reinterpret_cast<float*>(node_out(e, s)));
}

/// Whether a tail program only quantizes C (load operand 0, identity, store to target 0): a
/// quantize fused into an f32 GEMM's epilogue, which tail_block runs as the int8 quantize kernel
/// row by row instead of planning the elementwise program on every block (that planning cost
/// more than the separate quantize step saved on small layers).
inline bool quantize_only_tail(const Step& s, const kernels::EwProgram& p) {
  if (s.num_ops != 1 || s.num_tgts != 1 || p.size != 3) return false;
  const kernels::EwInstr* c = p.code;
  return c[0].kind == kernels::EwKind::load && c[0].a == 0 && c[1].kind == kernels::EwKind::apply &&
         c[1].fn == EwFn::identity && c[1].a == c[0].dst && c[2].kind == kernels::EwKind::store && c[2].dst == 0 &&
         c[2].a == c[1].dst;
}

/// Runs step `s`'s tail program on a finished block of C (rows x cols in `block`, row stride
/// ldc): operand 0 is the block, the other operands and the targets are addressed by `at`
/// (a ValueSpec's pointer at the block's origin) with 2-D strides from `two_d`.
template <class Env, class At, class TwoD>
void tail_block(const Step& s, const Env& e, float* c, index_t ldc, const Shape& block, At&& at, TwoD&& two_d) {
  if (s.num_tgts == 1 && e.spec(s.tgt_begin).dtype == DType::i8 && quantize_only_tail(s, e.program(s))) {
    const ValueSpec& v = e.spec(s.tgt_begin);
    const Strides st = two_d(v);
    if (st[1] == 1) {
      auto* q = reinterpret_cast<std::int8_t*>(const_cast<char*>(at(v)));
      const quant::TensorQuant tq{v.quant.scale, v.quant.zero_point};
      if (ldc == block[1] && st[0] == block[1])  // whole rows, both dense: one run
        kernels::int8::quantize(c, q, block[0] * block[1], tq);
      else
        for (index_t i = 0; i < block[0]; ++i) kernels::int8::quantize(c + i * ldc, q + i * st[0], block[1], tq);
      return;
    }
  }
  OperandSlots op_slots;
  TargetSlots tgt_slots;
  kernels::EwOperand* ops = op_slots.v;
  kernels::EwTarget* tgts = tgt_slots.v;
  Strides cst;
  cst[0] = ldc;
  cst[1] = 1;
  ops[0] = kernels::EwOperand{c, DType::f32, cst};  // operand 0 is the accumulator block
  for (int k = 1; k < s.num_ops; ++k) {
    const ValueSpec& v = e.spec(s.op_begin + k);
    ops[k] = kernels::EwOperand{at(v), v.dtype, two_d(v)};
  }
  for (int k = 0; k < s.num_tgts; ++k) {
    const ValueSpec& v = e.spec(s.tgt_begin + k);
    tgts[k] = kernels::EwTarget{const_cast<char*>(at(v)), v.dtype, two_d(v), v.quant.scale, v.quant.zero_point};
  }
  kernels::ew_run(e.program(s), ops, s.num_ops, tgts, s.num_tgts, block);
}

template <class Env>
struct TailContext {
  const Env* env;
  const Step* step;
  index_t batch_index[kMaxRank];
};

/// GemmEpilogue::tail of a matmul step: the block's operands at (batch index, i0, j0).
template <class Env>
void gemm_tail(void* ctx, index_t i0, index_t j0, index_t m, index_t n, float* c, index_t ldc) {
  const TailContext<Env>& t = *static_cast<const TailContext<Env>*>(ctx);
  const Env& e = *t.env;
  const Step& s = *t.step;
  const int r = s.loop.rank();
  auto at = [&](const ValueSpec& v) {
    index_t off = v.offset + i0 * v.strides[r - 2] + j0 * v.strides[r - 1];
    for (int d = 0; d < s.batch.rank(); ++d) off += t.batch_index[d] * v.strides[d];
    return e.ptr(v.base, off, v.dtype);
  };
  auto two_d = [&](const ValueSpec& v) {
    Strides st;
    st[0] = v.strides[r - 2];
    st[1] = v.strides[r - 1];
    return st;
  };
  tail_block(s, e, c, ldc, Shape{m, n}, at, two_d);
}

/// The tail of a conv step: blocks of output rows (pixels) are split into runs the operands'
/// strides can address in 2-D: the whole block when every operand's rows merge, else one
/// output row (fixed n, oh) at a time.
template <class Env>
void conv_tail(void* ctx, index_t i0, index_t j0, index_t m, index_t n, float* c, index_t ldc) {
  const TailContext<Env>& t = *static_cast<const TailContext<Env>*>(ctx);
  const Env& e = *t.env;
  const Step& s = *t.step;
  const index_t OH = s.loop[1], OW = s.loop[2];
  for (index_t i = i0; i < i0 + m;) {
    const index_t ow = i % OW, oh = (i / OW) % OH, nb = i / (OW * OH);
    const index_t len = s.rows_merge ? i0 + m - i : (OW - ow < i0 + m - i ? OW - ow : i0 + m - i);
    // Rows of a run: merged (any pixel dimension's stride, see pixel_row_stride), or within one
    // (n, oh), where the step is the W stride.
    auto at = [&](const ValueSpec& v) {
      const index_t off = v.offset + nb * v.strides[0] + oh * v.strides[1] + ow * v.strides[2] + j0 * v.strides[3];
      return e.ptr(v.base, off, v.dtype);
    };
    auto two_d = [&](const ValueSpec& v) {
      Strides st;
      st[0] = v.strides[2];
      if (s.rows_merge) pixel_row_stride(v.strides, s.loop, st[0]);
      st[1] = v.strides[3];
      return st;
    };
    tail_block(s, e, c + (i - i0) * ldc, ldc, Shape{len, n}, at, two_d);
    i += len;
  }
}

/// The clamp the micro-kernel applies in registers.
inline kernels::GemmEpilogue clamp_epilogue(const Step& s) {
  kernels::GemmEpilogue ep;
  ep.clamp = s.clamp;
  ep.lo = s.lo;
  ep.hi = s.hi;
  return ep;
}

template <class Env>
kernels::GemmEpilogue register_epilogue(const Step& s, const Env& e) {
  kernels::GemmEpilogue ep = clamp_epilogue(s);
  if (s.bias >= 0) {
    const ValueSpec& v = e.spec(s.bias);
    ep.bias = reinterpret_cast<const float*>(e.ptr(v.base, v.offset, v.dtype));
  }
  return ep;
}

/// kMayTail = false: the caller knows the step has no tail program (the tail's interpreter is
/// then not instantiated: the static runner's images stay small).
template <bool kMayTail = true, class Env>
void conv(const Step& s, const Env& e) {
  const Shape& xs = e.input_shape(s, 0);
  kernels::GemmEpilogue ep = register_epilogue(s, e);
  float* ws = e.workspace(s);
  const kernels::NhwcIn x = nhwc_input(e, s.a, xs, s.dense_a, ws);
  const float* packed = e.packed(s);
  const float* w = packed ? nullptr : reinterpret_cast<const float*>(e.ptr(s.b.base, s.b.offset, s.b.dtype));
  if (s.dense_b) {
    const Shape& wsh = e.input_shape(s, 1);
    strided_copy(w, DType::f32, wsh, s.b.strides, ws);
    w = ws;
    ws += aligned_floats(wsh.numel());
  }
  auto* c0 = reinterpret_cast<float*>(const_cast<char*>(e.ptr(s.c.base, s.c.offset, s.c.dtype)));
  TailContext<Env> tc{&e, &s, {}};
  if constexpr (kMayTail) {
    if (s.code_size > 0) {
      ep.tail = &conv_tail<Env>;
      ep.ctx = &tc;
    }
  }
  kernels::conv2d(s.window, x, w, packed, c0, s.N, ep, ws);  // C is a dense [N, OH, OW, O] buffer
}

template <class Env>
void gemm_batched(const Step& s, const Env& e, kernels::GemmEpilogue ep, const float* packed, float* ws,
                  const float* a0, const float* b0, float* c0, index_t ldc);

/// A matmul step whose constant weight is read in place (Step::direct: the static runner's flash
/// weights), with the tail program when kTail.
template <bool kTail = true, class Env>
void gemm_in_place(const Step& s, const Env& e) {
  const int r = s.loop.rank();
  kernels::GemmEpilogue ep = clamp_epilogue(s);
  if (s.bias >= 0) ep.bias = reinterpret_cast<const float*>(e.at(s.bias_at));
  TailContext<Env> tc{&e, &s, {}};
  if constexpr (kTail) {
    if (s.code_size > 0) {
      ep.tail = &gemm_tail<Env>;
      ep.ctx = &tc;
    }
  }
  const index_t ldc = s.M == 1 ? s.N : s.c.strides[r - 2];
  kernels::gemm_direct(s.M, s.N, s.K, kernels::MatrixRef{reinterpret_cast<const float*>(e.at(s.a_at)), s.a.strides[r - 2], s.a.strides[r - 1]},
                       kernels::MatrixRef{reinterpret_cast<const float*>(e.at(s.b_at)), s.b.strides[r - 2], s.b.strides[r - 1]},
                       reinterpret_cast<float*>(const_cast<char*>(e.at(s.c_at))), ldc, ep);
}

/// A matmul step (operands resolved to Locs at build time: the batch-1 MLP path). kGeneral =
/// false: the caller knows the step is one launch without a tail (batch merged, no program).
template <bool kGeneral = true, class Env>
void gemm(const Step& s, const Env& e) {
  const int r = s.loop.rank();
  kernels::GemmEpilogue ep = clamp_epilogue(s);
  if (s.bias >= 0) ep.bias = reinterpret_cast<const float*>(e.at(s.bias_at));
  const float* packed = e.packed(s);
  float* ws = e.workspace(s);
  const auto* a0 = reinterpret_cast<const float*>(e.at(s.a_at));
  const auto* b0 = packed ? nullptr : reinterpret_cast<const float*>(e.at(s.b_at));
  auto* c0 = reinterpret_cast<float*>(const_cast<char*>(e.at(s.c_at)));
  const index_t ldc = s.M == 1 ? s.N : s.c.strides[r - 2];
  if (s.direct) return gemm_in_place<kGeneral>(s, e);
  if (s.batch.rank() == 0 && s.code_size == 0) {  // the common case: one launch, no tail
    kernels::gemm(s.M, s.N, s.K, kernels::MatrixRef{a0, s.a.strides[r - 2], s.a.strides[r - 1]},
                  kernels::MatrixRef{b0, s.b.strides[r - 2], s.b.strides[r - 1]}, packed, c0, ldc, ep, ws);
    return;
  }
  if constexpr (kGeneral) gemm_batched(s, e, ep, packed, ws, a0, b0, c0, ldc);
  else (void)e;
}

/// gemm's general case: a launch per batch index, the tail program on each finished block.
template <class Env>
void gemm_batched(const Step& s, const Env& e, kernels::GemmEpilogue ep, const float* packed, float* ws,
                  const float* a0, const float* b0, float* c0, index_t ldc) {
  const int r = s.loop.rank();
  TailContext<Env> tc{&e, &s, {}};
  if (s.code_size > 0) {
    ep.tail = &gemm_tail<Env>;
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

/// Any step, by its kind at run time (Executable's loop).
template <class Env>
void any(const Step& s, const Env& e) {
  switch (s.kind) {
    case passes::GroupKind::gemm:
      if (s.conv) conv(s, e);
      else gemm(s, e);
      return;
    case passes::GroupKind::window: window(s, e); return;
    case passes::GroupKind::elementwise: elementwise(s, e); return;
    case passes::GroupKind::reduce:
    case passes::GroupKind::softmax: reduction(s, e); return;
    case passes::GroupKind::copy: copy(s, e); return;
    case passes::GroupKind::concat: concat(s, e); return;
    case passes::GroupKind::int8: e.int8(s); return;
    case passes::GroupKind::offload: return;  // run by Executable::run_offloaded
  }
}

}  // namespace kiln::runtime::step_run
