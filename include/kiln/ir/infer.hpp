// kiln/ir/infer.hpp — the type rules of every op: result shape and dtype, or an error.
//
// Both execution modes go through here: the tracer when it appends a node, the
// eager path before it runs one. So an op's shape rules and its error message
// exist once.
#pragma once

#include "../core/status.hpp"
#include "node.hpp"

namespace kiln {

namespace detail {

constexpr Status op_error(Errc code, const Node& n) {
  Status s(code);
  if (n.op == Op::elementwise) s << ewfn_name(n.fn);
  else if (n.op == Op::reduce) s << reduce_name(n.rk);
  else if (n.op == Op::matmul && n.trans_b) s << "linear";
  else if (n.op == Op::pool2d) s << (n.rk == ReduceKind::max ? "max_pool2d" : "avg_pool2d");
  else s << op_name(n.op);
  return s << ": ";
}

constexpr Status inputs_error(Errc code, const Node& n, const Shape* in, const char* what) {
  Status s = op_error(code, n);
  s << what << " (inputs";
  for (int i = 0; i < n.num_inputs; ++i) s << ' ' << in[i];
  return s << ')';
}

/// Output extent of a sliding window over `in` padded by lo/hi: -1 when the (dilated) kernel is
/// larger than the padded input.
constexpr index_t window_out(index_t in, int lo, int hi, int kernel, int dilation, int stride) {
  const index_t span = static_cast<index_t>(kernel - 1) * dilation + 1;
  const index_t padded = in + lo + hi;
  return span > padded ? -1 : (padded - span) / stride + 1;
}

/// The checks every NHWC window op shares: rank-4 input of dtype `want`, positive strides and
/// dilations, non-negative padding. Returns an error status or ok.
constexpr Status check_window(const Node& n, const Shape* in, const DType* dt, DType want = DType::f32) {
  const Window2d& w = n.win;
  if (dt[0] != want) return op_error(Errc::dtype_mismatch, n) << "input dtype " << dt[0] << ", expected " << want;
  if (in[0].rank() != 4)
    return op_error(Errc::shape_mismatch, n) << "input " << in[0] << " must be NHWC (rank 4)";
  if (w.stride_h < 1 || w.stride_w < 1 || w.dilation_h < 1 || w.dilation_w < 1 || w.kernel_h < 1 || w.kernel_w < 1)
    return op_error(Errc::invalid_argument, n) << "kernel " << w.kernel_h << 'x' << w.kernel_w << ", stride "
                                               << w.stride_h << 'x' << w.stride_w << " and dilation "
                                               << w.dilation_h << 'x' << w.dilation_w << " must be >= 1";
  if (w.pad_top < 0 || w.pad_bottom < 0 || w.pad_left < 0 || w.pad_right < 0)
    return op_error(Errc::invalid_argument, n) << "negative padding (" << w.pad_top << ", " << w.pad_bottom << ", "
                                               << w.pad_left << ", " << w.pad_right << ")";
  return Status();
}

/// Output [N, OH, OW, C] of a window of kernel kh x kw over NHWC `x`, or an error naming the shapes.
constexpr Status window_shape(const Node& n, const Shape& x, int kh, int kw, index_t channels, Shape& out) {
  const Window2d& w = n.win;
  const index_t oh = window_out(x[1], w.pad_top, w.pad_bottom, kh, w.dilation_h, w.stride_h);
  const index_t ow = window_out(x[2], w.pad_left, w.pad_right, kw, w.dilation_w, w.stride_w);
  if (oh < 1 || ow < 1)
    return op_error(Errc::shape_mismatch, n)
           << "kernel " << kh << 'x' << kw << " (dilation " << w.dilation_h << 'x' << w.dilation_w
           << ") is larger than the padded input " << x << " (padding " << w.pad_top << ", " << w.pad_bottom << ", "
           << w.pad_left << ", " << w.pad_right << ")";
  out = Shape{x[0], oh, ow, channels};
  return Status();
}

}  // namespace detail

}  // namespace kiln

#include "infer_int8.hpp"  // the int8 ops' rules, built on the helpers above

namespace kiln {

/// Fills n.shape and n.dtype from the inputs' shapes and dtypes. For reshape, n.shape holds the
/// requested shape on entry (one extent may be -1).
constexpr Status infer_node(Node& n, const Shape* in, const DType* dt) {
  using detail::inputs_error;
  for (int i = 0; i < n.num_inputs; ++i)
    if (!in[i].valid())
      return inputs_error(in[i].rank() > kMaxRank ? Errc::rank_too_large : Errc::invalid_argument, n,
                          in, "invalid input shape");

  // Views and copies of an i8 value carry its quantisation. A reshape given its own
  // (kiln::as_quantized) attaches parameters to an i8 value that has none (or the same).
  if (n.op == Op::permute || n.op == Op::slice || n.op == Op::expand || n.op == Op::copy || n.op == Op::reshape) {
    if (n.op == Op::reshape && n.quant != QuantParams()) {
      if (!n.quant.valid()) {
        Status e = detail::op_error(Errc::invalid_argument, n) << "as_quantized: scale ";
        detail::append_real(e, n.quant.scale) << ", zero point " << n.quant.zero_point;
        return e << " (needs scale > 0, zero point in [-128, 127])";
      }
      if (dt[0] != DType::i8 || (n.in_quant[0].valid() && n.in_quant[0] != n.quant))
        return detail::op_error(Errc::dtype_mismatch, n)
               << "as_quantized: input " << in[0] << ' ' << dt[0]
               << (dt[0] != DType::i8 ? " is not i8" : " already has other quantisation parameters");
    } else {
      n.quant = dt[0] == DType::i8 ? n.in_quant[0] : QuantParams();
    }
  }
  if (detail::is_int8_op(n.op)) return detail::infer_int8(n, in, dt);

  switch (n.op) {
    case Op::input:
    case Op::constant:
    case Op::parameter:
      if (!n.shape.valid())
        return detail::op_error(n.shape.rank() > kMaxRank ? Errc::rank_too_large : Errc::invalid_argument, n)
               << "invalid shape " << n.shape << " (max rank " << kMaxRank << ")";
      return Status();
    case Op::scalar:
      n.shape = Shape();
      n.dtype = DType::f32;
      return Status();

    case Op::elementwise: {
      const int arity = ewfn_arity(n.fn);
      if (n.num_inputs != arity) return inputs_error(Errc::invalid_argument, n, in, "wrong number of inputs");
      Shape s = in[0];
      for (int i = 1; i < arity; ++i)
        if (!broadcast_shapes(s, in[i], s))
          return inputs_error(Errc::shape_mismatch, n, in, "shapes do not broadcast");
      // Arithmetic is on floats; masks (boolean) are allowed as the condition of where and
      // as comparison results.
      const int first_value = n.fn == EwFn::where ? 1 : 0;
      for (int i = first_value; i < arity; ++i)
        if (dt[i] != DType::f32) {
          Status st = detail::op_error(Errc::dtype_mismatch, n);
          return st << "input " << i << " has dtype " << dt[i] << ", expected f32 (shape " << in[i] << ')';
        }
      if (n.fn == EwFn::where && dt[0] != DType::boolean && dt[0] != DType::f32)
        return detail::op_error(Errc::dtype_mismatch, n) << "condition has dtype " << dt[0];
      n.shape = s;
      n.dtype = ewfn_is_comparison(n.fn) ? DType::boolean : DType::f32;
      return Status();
    }

    case Op::reduce:
    case Op::softmax:
    case Op::log_softmax: {
      const int ax = normalize_axis(n.axis, in[0].rank());
      if (ax < 0) {
        Status st = detail::op_error(Errc::bad_axis, n);
        return st << "axis " << n.axis << " out of range for shape " << in[0];
      }
      if (dt[0] != DType::f32) return detail::op_error(Errc::dtype_mismatch, n) << "input dtype " << dt[0];
      n.axis = ax;
      n.dtype = DType::f32;
      if (n.op != Op::reduce) {
        n.shape = in[0];
        return Status();
      }
      Shape s;
      for (int i = 0; i < in[0].rank(); ++i) {
        if (i != ax) s.push_back(in[0][i]);
        else if (n.keepdim) s.push_back(1);
      }
      n.shape = s;
      return Status();
    }

    case Op::matmul: {
      const Shape& a = in[0];
      const Shape& b = in[1];
      if (dt[0] != DType::f32 || dt[1] != DType::f32)
        return detail::op_error(Errc::dtype_mismatch, n) << "dtypes " << dt[0] << " and " << dt[1];
      if (a.rank() < 1 || b.rank() < 2)
        return inputs_error(Errc::shape_mismatch, n, in, "needs a of rank >= 1 and b of rank >= 2");
      const index_t K = a.back();
      const index_t Kb = n.trans_b ? b[b.rank() - 1] : b[b.rank() - 2];
      const index_t N = n.trans_b ? b[b.rank() - 2] : b[b.rank() - 1];
      if (K != Kb) return inputs_error(Errc::shape_mismatch, n, in, "inner dimensions differ");
      if (a.rank() == 1) {  // vector @ matrix: [K] -> [N] (batch dims of b kept)
        Shape s;
        for (int i = 0; i < b.rank() - 2; ++i) s.push_back(b[i]);
        s.push_back(N);
        n.shape = s;
      } else {
        Shape ab, bb;
        for (int i = 0; i < a.rank() - 2; ++i) ab.push_back(a[i]);
        for (int i = 0; i < b.rank() - 2; ++i) bb.push_back(b[i]);
        Shape batch;
        if (!broadcast_shapes(ab, bb, batch))
          return inputs_error(Errc::shape_mismatch, n, in, "batch dimensions do not broadcast");
        batch.push_back(a[a.rank() - 2]);
        batch.push_back(N);
        if (batch.rank() > kMaxRank) return inputs_error(Errc::rank_too_large, n, in, "result rank too large");
        n.shape = batch;
      }
      n.dtype = DType::f32;
      return Status();
    }

    case Op::reshape: {
      Shape s = n.shape;
      if (s.rank() > kMaxRank) return inputs_error(Errc::rank_too_large, n, in, "target rank too large");
      index_t known = 1;
      int infer_at = -1;
      for (int i = 0; i < s.rank(); ++i) {
        if (s[i] == -1 && infer_at < 0) infer_at = i;
        else if (s[i] < 0) return inputs_error(Errc::invalid_argument, n, in, "bad target extent");
        else known *= s[i];
      }
      if (infer_at >= 0) {
        if (known == 0 || in[0].numel() % known != 0) {
          Status st = detail::op_error(Errc::shape_mismatch, n);
          return st << "cannot reshape " << in[0] << " to " << n.shape;
        }
        s[infer_at] = in[0].numel() / known;
      }
      if (s.numel() != in[0].numel()) {
        Status st = detail::op_error(Errc::shape_mismatch, n);
        return st << "cannot reshape " << in[0] << " to " << n.shape;
      }
      n.shape = s;
      n.dtype = dt[0];
      return Status();
    }

    case Op::permute: {
      const int r = in[0].rank();
      bool seen[kMaxRank]{};
      Shape s = Shape::of_rank(r);
      for (int i = 0; i < r; ++i) {
        const int p = n.perm[i];
        if (p < 0 || p >= r || seen[p]) return inputs_error(Errc::bad_axis, n, in, "invalid permutation");
        seen[p] = true;
        s[i] = in[0][p];
      }
      n.shape = s;
      n.dtype = dt[0];
      return Status();
    }

    case Op::slice: {
      const int ax = normalize_axis(n.axis, in[0].rank());
      if (ax < 0) {
        Status st = detail::op_error(Errc::bad_axis, n);
        return st << "axis " << n.axis << " out of range for shape " << in[0];
      }
      n.axis = ax;
      // n.shape[0] carries the requested count on entry; it is validated here.
      const index_t count = n.shape.rank() == 1 ? n.shape[0] : -1;
      const index_t len = in[0][ax];
      if (n.step < 1 || n.start < 0 || count < 0 || (count > 0 && n.start + (count - 1) * n.step >= len)) {
        Status st = detail::op_error(Errc::shape_mismatch, n);
        return st << "slice start " << static_cast<long long>(n.start) << " count " << static_cast<long long>(count)
                  << " step " << static_cast<long long>(n.step) << " outside axis " << ax << " of " << in[0];
      }
      Shape s = in[0];
      s[ax] = count;
      n.shape = s;
      n.dtype = dt[0];
      return Status();
    }

    case Op::concat: {
      if (n.num_inputs < 1) return detail::op_error(Errc::invalid_argument, n) << "no inputs";
      const int ax = normalize_axis(n.axis, in[0].rank());
      if (ax < 0) {
        Status st = detail::op_error(Errc::bad_axis, n);
        return st << "axis " << n.axis << " out of range for shape " << in[0];
      }
      // The copy kernels of this release move f32 and boolean elements only.
      if (dt[0] != DType::f32 && dt[0] != DType::boolean)
        return detail::op_error(Errc::not_supported, n) << "dtype " << dt[0] << " (f32 and bool are supported)";
      Shape s = in[0];
      for (int i = 1; i < n.num_inputs; ++i) {
        bool ok = in[i].rank() == s.rank() && dt[i] == dt[0];
        for (int d = 0; ok && d < s.rank(); ++d)
          if (d != ax && in[i][d] != s[d]) ok = false;
        if (!ok) return inputs_error(Errc::shape_mismatch, n, in, "shapes differ outside the concat axis");
        s[ax] += in[i][ax];
      }
      n.axis = ax;
      n.shape = s;
      n.dtype = dt[0];
      return Status();
    }

    case Op::copy:
      n.shape = in[0];
      n.dtype = dt[0];
      return Status();

    case Op::conv2d: {
      Status st = detail::check_window(n, in, dt);
      if (!st.ok()) return st;
      const Shape& x = in[0];
      const Shape& w = in[1];
      if (dt[1] != DType::f32) return detail::op_error(Errc::dtype_mismatch, n) << "weight dtype " << dt[1];
      if (w.rank() != 4)
        return inputs_error(Errc::shape_mismatch, n, in, "weight must be OHWI [out_c, kh, kw, in_c/groups]");
      const int groups = n.win.groups;
      if (groups < 1 || x[3] % groups != 0 || w[0] % groups != 0) {
        Status e = detail::op_error(Errc::shape_mismatch, n);
        return e << "groups " << groups << " must divide input channels " << static_cast<long long>(x[3])
                 << " and output channels " << static_cast<long long>(w[0]) << " (input " << x << ", weight " << w
                 << ')';
      }
      if (w[3] * groups != x[3]) {
        Status e = detail::op_error(Errc::shape_mismatch, n);
        return e << "weight " << w << " takes " << static_cast<long long>(w[3]) << " channels per group x groups "
                 << groups << ", input " << x << " has " << static_cast<long long>(x[3]);
      }
      if (w[1] < 1 || w[2] < 1 || w[0] < 1)
        return inputs_error(Errc::shape_mismatch, n, in, "empty kernel or no output channels");
      n.win.kernel_h = static_cast<int>(w[1]);
      n.win.kernel_w = static_cast<int>(w[2]);
      Shape s;
      st = detail::window_shape(n, x, n.win.kernel_h, n.win.kernel_w, w[0], s);
      if (!st.ok()) return st;
      n.shape = s;
      n.dtype = DType::f32;
      return Status();
    }

    case Op::pool2d: {
      Status st = detail::check_window(n, in, dt);
      if (!st.ok()) return st;
      const Window2d& w = n.win;
      // Every window must hold at least one input element (else max is -inf and a valid-taps
      // average divides by zero): padding smaller than the kernel on each side guarantees it.
      if (w.pad_top >= w.kernel_h || w.pad_bottom >= w.kernel_h || w.pad_left >= w.kernel_w ||
          w.pad_right >= w.kernel_w || w.dilation_h != 1 || w.dilation_w != 1)
        return detail::op_error(Errc::invalid_argument, n)
               << "padding (" << w.pad_top << ", " << w.pad_bottom << ", " << w.pad_left << ", " << w.pad_right
               << ") must be smaller than the kernel " << w.kernel_h << 'x' << w.kernel_w << " (input " << in[0] << ')';
      Shape s;
      st = detail::window_shape(n, in[0], w.kernel_h, w.kernel_w, in[0][3], s);
      if (!st.ok()) return st;
      n.shape = s;
      n.dtype = DType::f32;
      return Status();
    }

    case Op::expand: {
      // n.shape is the target on entry; the input must broadcast to exactly that shape.
      Shape s;
      if (!n.shape.valid() || !broadcast_shapes(in[0], n.shape, s) || s != n.shape) {
        Status st = detail::op_error(Errc::shape_mismatch, n);
        return st << "cannot broadcast " << in[0] << " to " << n.shape;
      }
      n.dtype = dt[0];
      return Status();
    }

    case Op::pad: {
      Status st = detail::check_window(n, in, dt);
      if (!st.ok()) return st;
      const Window2d& w = n.win;
      const Shape& x = in[0];
      n.shape = Shape{x[0], x[1] + w.pad_top + w.pad_bottom, x[2] + w.pad_left + w.pad_right, x[3]};
      n.dtype = DType::f32;
      return Status();
    }

    case Op::upsample: {
      Status st = detail::check_window(n, in, dt);
      if (!st.ok()) return st;
      const Shape& x = in[0];
      n.shape = Shape{x[0], x[1] * n.win.stride_h, x[2] * n.win.stride_w, x[3]};
      n.dtype = DType::f32;
      return Status();
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
    case Op::qconcat: break;  // detail::infer_int8 above

    case Op::unslice: {
      const int ax = normalize_axis(n.axis, in[0].rank());
      if (ax < 0) {
        Status st = detail::op_error(Errc::bad_axis, n);
        return st << "axis " << n.axis << " out of range for shape " << in[0];
      }
      n.axis = ax;
      if (dt[0] != DType::f32 && dt[0] != DType::boolean)
        return detail::op_error(Errc::not_supported, n) << "dtype " << dt[0] << " (f32 and bool are supported)";
      // n.shape[0] carries the padded extent of the axis on entry (like slice's count).
      const index_t len = n.shape.rank() == 1 ? n.shape[0] : -1;
      const index_t count = in[0][ax];
      if (n.step < 1 || n.start < 0 || len < 0 || (count > 0 && n.start + (count - 1) * n.step >= len)) {
        Status st = detail::op_error(Errc::shape_mismatch, n);
        return st << "placing " << in[0] << " at start " << static_cast<long long>(n.start) << " step "
                  << static_cast<long long>(n.step) << " does not fit extent " << static_cast<long long>(len)
                  << " of axis " << ax;
      }
      Shape s = in[0];
      s[ax] = len;
      n.shape = s;
      n.dtype = dt[0];
      return Status();
    }
  }
  return detail::op_error(Errc::not_supported, n) << "unknown op";
}

}  // namespace kiln
