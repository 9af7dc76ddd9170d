// kiln/runtime/eager.hpp — run one node, op by op, on dense row-major buffers.
//
// This is the oracle: no fusion, no planning, every result materialised. It is
// also what constant folding uses to compute weight-only subgraphs once. It
// calls the same single-op kernels as compiled steps, so a mismatch between
// eager and compiled points at fusion, lowering or planning.
#pragma once

#include <cstring>

#include "../ir/node.hpp"
#include "../kernels/conv.hpp"
#include "../kernels/elementwise.hpp"
#include "../kernels/gemm.hpp"
#include "../kernels/pool.hpp"
#include "../kernels/reduce.hpp"
#include "../kernels/resize.hpp"
#include "int8_steps.hpp"

#ifndef KILN_NO_HEAP
#include <new>
#endif

namespace kiln::runtime {

/// One load per input, the op, one store: the single-op elementwise program.
struct SingleOpProgram {
  kernels::EwInstr code[5]{};
  kernels::EwProgram program() const { return {code, size, regs}; }
  int size = 0, regs = 0;

  constexpr explicit SingleOpProgram(EwFn fn, float p0 = 0.f, float p1 = 0.f) {
    const int arity = ewfn_arity(fn);
    for (int k = 0; k < arity; ++k) {
      code[size].kind = kernels::EwKind::load;
      code[size].dst = static_cast<std::uint8_t>(k);
      code[size].a = static_cast<std::uint8_t>(k);
      ++size;
    }
    kernels::EwInstr& ap = code[size++];
    ap.kind = kernels::EwKind::apply;
    ap.fn = fn;
    ap.dst = 0;
    ap.a = 0;
    ap.b = 1;
    ap.c = 2;
    ap.p0 = p0;
    ap.p1 = p1;
    kernels::EwInstr& st = code[size++];
    st.kind = kernels::EwKind::store;
    st.dst = 0;
    st.a = 0;
    regs = arity;
  }
};

/// Copies `shape` elements read through `strides` (elements, from `src`) into a dense buffer.
/// Element-by-element strided copy of any dtype (not on a hot path). Separate from strided_copy so
/// that callers copying only non-float values (the static runner's int8 steps) do not link the
/// float elementwise engine.
inline void strided_copy_elements(const void* src, DType t, const Shape& shape, const Strides& strides, void* dst) {
  const int es = dtype_size(t);
  index_t idx[kMaxRank]{};
  const index_t n = shape.numel();
  for (index_t e = 0; e < n; ++e) {
    index_t off = 0;
    for (int d = 0; d < shape.rank(); ++d) off += idx[d] * strides[d];
    std::memcpy(static_cast<char*>(dst) + e * es, static_cast<const char*>(src) + off * es, static_cast<std::size_t>(es));
    for (int d = shape.rank() - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

inline void strided_copy(const void* src, DType t, const Shape& shape, const Strides& strides, void* dst) {
  if (t == DType::f32 || t == DType::boolean) {
    const SingleOpProgram p(EwFn::identity);
    kernels::EwOperand in{src, t, strides};
    kernels::EwTarget out{dst, t, contiguous_strides(shape)};
    kernels::ew_run(p.program(), &in, 1, &out, 1, shape);
    return;
  }
  strided_copy_elements(src, t, shape, strides, dst);
}

/// The kernels' view of a conv2d or pool2d node over NHWC input `x` (n.shape already inferred).
constexpr kernels::WindowGeometry window_geometry(const Node& n, const Shape& x) {
  kernels::WindowGeometry g;
  g.batch = x[0];
  g.in_h = x[1];
  g.in_w = x[2];
  g.in_c = x[3];
  g.out_h = n.shape[1];
  g.out_w = n.shape[2];
  g.out_c = n.shape[3];
  g.kernel_h = n.win.kernel_h;
  g.kernel_w = n.win.kernel_w;
  g.stride_h = n.win.stride_h;
  g.stride_w = n.win.stride_w;
  g.pad_top = n.win.pad_top;
  g.pad_left = n.win.pad_left;
  g.dilation_h = n.win.dilation_h;
  g.dilation_w = n.win.dilation_w;
  g.groups = n.win.groups;
  return g;
}

/// Runs an NHWC window op (pool2d, pad, upsample) from `x` into dense `out`.
inline void run_window_op(const Node& n, const Shape& xs, kernels::NhwcIn x, float* out) {
  switch (n.op) {
    case Op::pool2d:
      if (n.rk == ReduceKind::max) kernels::max_pool2d(window_geometry(n, xs), x, out);
      else kernels::avg_pool2d(window_geometry(n, xs), x, n.win.count_include_pad, out);
      return;
    case Op::pad:
      kernels::pad2d(x, xs[0], xs[1], xs[2], xs[3], n.win.pad_top, n.win.pad_bottom, n.win.pad_left, n.win.pad_right,
                     n.p0, out);
      return;
    case Op::upsample:
      kernels::upsample_nearest2d(x, xs[0], xs[1], xs[2], xs[3], n.win.stride_h, n.win.stride_w, out);
      return;
    default: return;
  }
}

/// unslice: zero-fills `out` (shape n.shape) and writes the input (read through `src_strides`, elements
/// over in_shape) at start, start + step, ... along n.axis. Shared by the eager and compiled paths.
inline void pad_strided(const void* src, const Strides& src_strides, const Shape& in_shape, const Node& n,
                        void* out) {
  std::memset(out, 0, static_cast<std::size_t>(n.shape.numel()) * dtype_size(n.dtype));
  const Strides os = contiguous_strides(n.shape);
  Strides ts = os;
  ts[n.axis] = os[n.axis] * n.step;
  char* dst = static_cast<char*>(out) + n.start * os[n.axis] * dtype_size(n.dtype);
  const SingleOpProgram p(EwFn::identity);  // f32 or bool: the type rules allow no other
  const kernels::EwOperand op{src, n.dtype, src_strides};
  const kernels::EwTarget t{dst, n.dtype, ts};
  kernels::ew_run(p.program(), &op, 1, &t, 1, in_shape);
}
inline void pad_into(const void* src, const Shape& in_shape, const Node& n, void* out) {
  pad_strided(src, contiguous_strides(in_shape), in_shape, n, out);
}

/// Workspace (floats) run_node needs for `n`.
inline std::size_t node_workspace_floats(const Node& n, const Shape* in) {
  if (kiln::detail::is_int8_op(n.op)) return int8_workspace_floats(n, in);
  if (n.op == Op::conv2d) return kernels::conv_workspace_floats(window_geometry(n, in[0]), false);
  if (n.op != Op::matmul) return 0;
  const index_t K = in[0].back();
  const index_t N = n.shape.back();
  const index_t M = in[0].rank() >= 2 ? in[0][in[0].rank() - 2] : 1;
  return kernels::gemm_workspace_size(M, N, K, false);
}

/// Batched matmul on dense inputs (batch dims broadcast), optional bias/clamp/tail epilogue.
inline void matmul_dense(const float* a, const Shape& as, const float* b, const Shape& bs, bool trans_b,
                         float* c, const Shape& cs, float* workspace) {
  const index_t K = as.back();
  const index_t M = as.rank() >= 2 ? as[as.rank() - 2] : 1;
  const index_t N = cs.back();
  const Strides ast = contiguous_strides(as), bst = contiguous_strides(bs);
  // Batch shape of the result and broadcast batch strides of a and b over it.
  Shape batch;
  const int out_batch_rank = as.rank() >= 2 ? cs.rank() - 2 : cs.rank() - 1;
  for (int d = 0; d < out_batch_rank; ++d) batch.push_back(cs[d]);
  Shape ab, bb;
  Strides abs_, bbs_;
  for (int d = 0; d + 2 < as.rank(); ++d) {
    abs_[ab.rank()] = ast[d];
    ab.push_back(as[d]);
  }
  for (int d = 0; d + 2 < bs.rank(); ++d) {
    bbs_[bb.rank()] = bst[d];
    bb.push_back(bs[d]);
  }
  const Strides a_b = broadcast_strides(ab, abs_, batch), b_b = broadcast_strides(bb, bbs_, batch);
  const index_t nb = batch.numel();
  index_t idx[kMaxRank]{};
  kernels::GemmEpilogue ep;
  for (index_t t = 0; t < nb; ++t) {
    index_t ao = 0, bo = 0;
    for (int d = 0; d < batch.rank(); ++d) {
      ao += idx[d] * a_b[d];
      bo += idx[d] * b_b[d];
    }
    const kernels::MatrixRef A{a + ao, K, 1};
    const kernels::MatrixRef B = trans_b ? kernels::MatrixRef{b + bo, 1, K} : kernels::MatrixRef{b + bo, N, 1};
    kernels::gemm(M, N, K, A, B, nullptr, c + t * M * N, N, ep, workspace);
    for (int d = batch.rank() - 1; d >= 0; --d) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
}

/// Runs node `n` (shape already inferred) on dense inputs; writes a dense result to `out`.
/// `workspace` must hold node_workspace_floats(n, in_shapes) floats (64-byte aligned).
inline void run_node(const Node& n, const void* const* in, const Shape* in_shapes, const DType* in_dtypes,
                     void* out, float* workspace) {
  switch (n.op) {
    case Op::input:
    case Op::constant:
    case Op::parameter:
      std::memcpy(out, n.data, static_cast<std::size_t>(n.shape.numel()) * dtype_size(n.dtype));
      return;
    case Op::scalar:
      std::memcpy(out, &n.p0, sizeof(float));
      return;
    case Op::elementwise: {
      const SingleOpProgram p(n.fn, n.p0, n.p1);
      kernels::EwOperand ops[3];
      for (int k = 0; k < n.num_inputs; ++k)
        ops[k] = {in[k], in_dtypes[k], broadcast_strides(in_shapes[k], contiguous_strides(in_shapes[k]), n.shape)};
      kernels::EwTarget t{out, n.dtype, contiguous_strides(n.shape)};
      kernels::ew_run(p.program(), ops, n.num_inputs, &t, 1, n.shape);
      return;
    }
    case Op::reduce: {
      kernels::EwOperand op{in[0], DType::f32, contiguous_strides(in_shapes[0])};
      kernels::reduce_run(n.rk, nullptr, &op, 1, in_shapes[0], n.axis, static_cast<float*>(out));
      return;
    }
    case Op::softmax:
    case Op::log_softmax: {
      kernels::EwOperand op{in[0], DType::f32, contiguous_strides(in_shapes[0])};
      kernels::softmax_run(n.op == Op::log_softmax, nullptr, &op, 1, in_shapes[0], n.axis, static_cast<float*>(out));
      return;
    }
    case Op::matmul:
      matmul_dense(static_cast<const float*>(in[0]), in_shapes[0], static_cast<const float*>(in[1]), in_shapes[1],
                   n.trans_b, static_cast<float*>(out), n.shape, workspace);
      return;
    case Op::reshape:
    case Op::copy:
      std::memcpy(out, in[0], static_cast<std::size_t>(n.shape.numel()) * dtype_size(n.dtype));
      return;
    case Op::permute: {
      const Strides s = contiguous_strides(in_shapes[0]);
      Strides ps;
      for (int d = 0; d < n.shape.rank(); ++d) ps[d] = s[n.perm[d]];
      strided_copy(in[0], n.dtype, n.shape, ps, out);
      return;
    }
    case Op::slice: {
      const Strides s = contiguous_strides(in_shapes[0]);
      Strides ss = s;
      ss[n.axis] = s[n.axis] * n.step;
      const char* base = static_cast<const char*>(in[0]) + n.start * s[n.axis] * dtype_size(n.dtype);
      strided_copy(base, n.dtype, n.shape, ss, out);
      return;
    }
    case Op::conv2d: {
      const Shape& xs = in_shapes[0];
      kernels::conv2d(window_geometry(n, xs), kernels::dense_nhwc(static_cast<const float*>(in[0]), xs[1], xs[2], xs[3]),
                      static_cast<const float*>(in[1]), nullptr, static_cast<float*>(out), n.shape[3],
                      kernels::GemmEpilogue{}, workspace);
      return;
    }
    case Op::pool2d:
    case Op::pad:
    case Op::upsample: {
      const Shape& xs = in_shapes[0];
      run_window_op(n, xs, kernels::dense_nhwc(static_cast<const float*>(in[0]), xs[1], xs[2], xs[3]),
                    static_cast<float*>(out));
      return;
    }
    case Op::expand:
      strided_copy(in[0], n.dtype, n.shape,
                   broadcast_strides(in_shapes[0], contiguous_strides(in_shapes[0]), n.shape), out);
      return;
    case Op::unslice:
      pad_into(in[0], in_shapes[0], n, out);
      return;
    case Op::concat: {
      const Strides os = contiguous_strides(n.shape);
      index_t at = 0;
      for (int k = 0; k < n.num_inputs; ++k) {
        // Write input k into the output's slab [at, at + len) along the axis.
        char* dst = static_cast<char*>(out) + at * os[n.axis] * dtype_size(n.dtype);
        const SingleOpProgram p(EwFn::identity);  // f32 or bool: the type rules allow no other
        kernels::EwOperand src{in[k], n.dtype, contiguous_strides(in_shapes[k])};
        kernels::EwTarget t{dst, n.dtype, os};
        kernels::ew_run(p.program(), &src, 1, &t, 1, in_shapes[k]);
        at += in_shapes[k][n.axis];
      }
      return;
    }
    case Op::quantize:
    case Op::dequantize:
    case Op::qlinear:
    case Op::qconv2d:
    case Op::qpool2d:
    case Op::qadd:
    case Op::qsoftmax:
    case Op::qmul:
    case Op::qlogistic:
    case Op::qtanh:
    case Op::qhard_swish:
    case Op::qmean:
    case Op::qpad:
    case Op::qslice:
    case Op::qconcat: run_int8_node(n, in, in_shapes, out, workspace); return;
  }
}

}  // namespace kiln::runtime
