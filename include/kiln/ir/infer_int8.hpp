// kiln/ir/infer_int8.hpp — the type rules of the int8 ops (quantize, dequantize, qlinear, qconv2d,
// qpool2d, qadd, qsoftmax, and the TFLite operators of ir/infer_int8_tflite.hpp: qmul, qlogistic,
// qtanh, qhard_swish, qmean, qpad, qslice, qconcat).
//
// Included by ir/infer.hpp after its shared helpers (op_error, check_window, window_shape) and
// called from infer_node: one place for every int8 rule and its error message. The rules check
// what the int8 kernels and TFLite's scheme need, so a graph that type-checks also lowers:
// i8 operands carry QuantParams, weights are i8 with f32 scales per output channel (or one), the
// bias is i32 per output channel, the output quantisation is valid, the fused activation is one
// the lowering turns into an int8 clamp.
#pragma once

namespace kiln {
namespace detail {

constexpr bool is_int8_op(Op op) {
  return op == Op::quantize || op == Op::dequantize || op == Op::qlinear || op == Op::qconv2d ||
         op == Op::qpool2d || op == Op::qadd || op == Op::qsoftmax || op == Op::qmul || op == Op::qlogistic ||
         op == Op::qtanh || op == Op::qhard_swish || op == Op::qmean || op == Op::qpad || op == Op::qslice ||
         op == Op::qconcat;
}

/// A real number in messages (Status has no float formatting): up to 6 decimals.
constexpr Status& append_real(Status& s, float v) {
  if (v != v) return s << "nan";
  if (v < 0) {
    s << '-';
    v = -v;
  }
  if (v > 1e15f) return s << "inf";
  const auto whole = static_cast<long long>(v);
  s << whole << '.';
  long long frac = static_cast<long long>((static_cast<double>(v) - static_cast<double>(whole)) * 1e6 + 0.5);
  if (frac >= 1000000) frac = 999999;
  for (long long d = 100000; d > 1 && frac < d; d /= 10) s << '0';
  return s << frac;
}

/// Input i must be i8 with quantisation parameters (only inputs 0 and 1 carry them: in_quant).
constexpr Status need_quantized(const Node& n, int i, const Shape* in, const DType* dt) {
  if (dt[i] != DType::i8)
    return op_error(Errc::dtype_mismatch, n) << "input " << i << ' ' << in[i] << " has dtype " << dt[i]
                                             << ", expected i8 (quantize it first)";
  if (!n.in_quant[i].valid()) {
    Status s = op_error(Errc::invalid_argument, n);
    s << "input " << i << ' ' << in[i] << " (i8) has no valid quantisation (scale ";
    append_real(s, n.in_quant[i].scale) << ", zero point " << n.in_quant[i].zero_point;
    return s << "): produce it with quantize or attach it with as_quantized";
  }
  return Status();
}

constexpr Status need_output_quant(const Node& n) {
  if (n.quant.valid()) return Status();
  Status s = op_error(Errc::invalid_argument, n);
  s << "output quantisation (scale ";
  append_real(s, n.quant.scale) << ", zero point " << n.quant.zero_point;
  return s << ") needs scale > 0 and a zero point in [-128, 127]";
}

/// The fused activation: identity (none), relu, relu6 or clamp [p0, p1] (real units, p0 <= p1).
constexpr Status check_fused_activation(const Node& n) {
  if (n.fn == EwFn::identity || n.fn == EwFn::relu || n.fn == EwFn::relu6) return Status();
  if (n.fn == EwFn::clamp && n.p0 <= n.p1) return Status();
  if (n.fn == EwFn::clamp) {
    Status s = op_error(Errc::invalid_argument, n) << "fused clamp [";
    append_real(s, n.p0) << ", ";
    return append_real(s, n.p1) << "] is empty";
  }
  return op_error(Errc::not_supported, n) << "fused activation " << ewfn_name(n.fn)
                                          << " (none, relu, relu6 or clamp are supported)";
}

/// Inputs 1.. of qlinear/qconv2d: weight i8 of rank `w_rank` with `out_c` rows, scales f32 [out_c]
/// or [1], optional bias i32 [out_c].
constexpr Status check_quantized_weights(const Node& n, const Shape* in, const DType* dt, int w_rank) {
  if (n.num_inputs != 3 && n.num_inputs != 4)
    return inputs_error(Errc::invalid_argument, n, in, "takes x, weight, weight scales and an optional bias");
  if (dt[1] != DType::i8 || in[1].rank() != w_rank)
    return op_error(Errc::dtype_mismatch, n) << "weight " << in[1] << ' ' << dt[1] << " must be i8 of rank " << w_rank;
  const index_t out_c = in[1][0];
  if (dt[2] != DType::f32 || in[2].rank() != 1 || (in[2][0] != out_c && in[2][0] != 1))
    return op_error(Errc::shape_mismatch, n) << "weight scales " << in[2] << ' ' << dt[2] << " must be f32 ["
                                             << static_cast<long long>(out_c) << "] (per channel) or [1] for weight "
                                             << in[1];
  if (n.num_inputs == 4 && (dt[3] != DType::i32 || in[3].rank() != 1 || in[3][0] != out_c))
    return op_error(Errc::shape_mismatch, n) << "bias " << in[3] << ' ' << dt[3] << " must be i32 ["
                                             << static_cast<long long>(out_c) << "] for weight " << in[1];
  return Status();
}

}  // namespace detail
}  // namespace kiln

#include "infer_int8_tflite.hpp"

namespace kiln {
namespace detail {

/// Type rules of the int8 ops (n.op satisfies is_int8_op).
constexpr Status infer_int8(Node& n, const Shape* in, const DType* dt) {
  const int arity = n.op == Op::qlinear || n.op == Op::qconv2d ? -1 : int8_activation_operands(n.op);
  if (arity > 0 && n.num_inputs != arity) return inputs_error(Errc::invalid_argument, n, in, "wrong number of inputs");
  Status st;
  switch (n.op) {
    case Op::quantize:  // f32 -> i8, or i8 -> i8 with new parameters (TFLite's requantising QUANTIZE)
      if (dt[0] == DType::i8) {
        if (!(st = need_quantized(n, 0, in, dt))) return st;
      } else if (dt[0] != DType::f32) {
        return op_error(Errc::dtype_mismatch, n) << "input " << in[0] << " has dtype " << dt[0] << ", expected f32 or i8";
      }
      if (!(st = need_output_quant(n))) return st;
      n.shape = in[0];
      n.dtype = DType::i8;
      return Status();

    case Op::dequantize:
      if (!(st = need_quantized(n, 0, in, dt))) return st;
      n.shape = in[0];
      n.dtype = DType::f32;
      n.quant = QuantParams();
      return Status();

    case Op::qlinear: {
      if (!(st = need_quantized(n, 0, in, dt))) return st;
      if (!(st = check_quantized_weights(n, in, dt, 2))) return st;
      if (in[0].rank() < 1 || in[0].back() != in[1][1])
        return inputs_error(Errc::shape_mismatch, n, in, "x [..., K] and weight [N, K] disagree on K");
      if (!(st = need_output_quant(n)) || !(st = check_fused_activation(n))) return st;
      Shape s = in[0];
      s[s.rank() - 1] = in[1][0];
      n.shape = s;
      n.dtype = DType::i8;
      return Status();
    }

    case Op::qconv2d: {
      if (!(st = check_window(n, in, dt, DType::i8))) return st;
      if (!(st = need_quantized(n, 0, in, dt))) return st;
      if (!(st = check_quantized_weights(n, in, dt, 4))) return st;
      const Shape& x = in[0];
      const Shape& w = in[1];
      const int groups = n.win.groups;
      // OHWI [O, kh, kw, C / groups]; groups C with [C * m, kh, kw, 1] is depthwise.
      if (groups < 1 || x[3] % groups != 0 || w[0] % groups != 0 || w[3] * groups != x[3]) {
        Status e = op_error(Errc::shape_mismatch, n);
        return e << "weight " << w << " with groups " << groups << " for input " << x
                 << " (want [O, kh, kw, C / groups], groups dividing C and O)";
      }
      if (w[0] < 1 || w[1] < 1 || w[2] < 1)
        return inputs_error(Errc::shape_mismatch, n, in, "empty kernel or no output channels");
      n.win.kernel_h = static_cast<int>(w[1]);
      n.win.kernel_w = static_cast<int>(w[2]);
      Shape s;
      if (!(st = window_shape(n, x, n.win.kernel_h, n.win.kernel_w, w[0], s))) return st;
      if (!(st = need_output_quant(n)) || !(st = check_fused_activation(n))) return st;
      n.shape = s;
      n.dtype = DType::i8;
      return Status();
    }

    case Op::qpool2d: {
      if (!(st = check_window(n, in, dt, DType::i8))) return st;
      if (!(st = need_quantized(n, 0, in, dt))) return st;
      const Window2d& w = n.win;
      if (w.dilation_h != 1 || w.dilation_w != 1 || w.pad_top >= w.kernel_h || w.pad_bottom >= w.kernel_h ||
          w.pad_left >= w.kernel_w || w.pad_right >= w.kernel_w)
        return op_error(Errc::invalid_argument, n)
               << "padding (" << w.pad_top << ", " << w.pad_bottom << ", " << w.pad_left << ", " << w.pad_right
               << ") must be smaller than the kernel " << w.kernel_h << 'x' << w.kernel_w << ", no dilation (input "
               << in[0] << ')';
      const bool padded = w.pad_top || w.pad_bottom || w.pad_left || w.pad_right;
      if (n.rk == ReduceKind::mean && w.count_include_pad && padded)
        return op_error(Errc::not_supported, n) << "the int8 average divides by the valid taps (TFLite): "
                                                   "count_include_pad with padding is not supported";
      if (n.rk != ReduceKind::max && n.rk != ReduceKind::mean)
        return op_error(Errc::invalid_argument, n) << "pooling is max or mean";
      if (!(st = check_fused_activation(n))) return st;
      Shape s;
      if (!(st = window_shape(n, in[0], w.kernel_h, w.kernel_w, in[0][3], s))) return st;
      n.shape = s;
      n.dtype = DType::i8;
      n.quant = n.in_quant[0];  // TFLite's pools keep the input's quantisation
      return Status();
    }

    case Op::qmul:
    case Op::qlogistic:
    case Op::qtanh:
    case Op::qhard_swish:
    case Op::qmean:
    case Op::qpad:
    case Op::qslice:
    case Op::qconcat: return infer_int8_tflite(n, in, dt);

    case Op::qadd: {
      if (!(st = need_quantized(n, 0, in, dt)) || !(st = need_quantized(n, 1, in, dt))) return st;
      Shape s;
      if (!broadcast_shapes(in[0], in[1], s)) return inputs_error(Errc::shape_mismatch, n, in, "shapes do not broadcast");
      if (!(st = need_output_quant(n)) || !(st = check_fused_activation(n))) return st;
      n.shape = s;
      n.dtype = DType::i8;
      return Status();
    }

    case Op::qsoftmax: {
      if (!(st = need_quantized(n, 0, in, dt))) return st;
      const int r = in[0].rank();
      if (r < 1 || normalize_axis(n.axis, r) != r - 1)
        return op_error(Errc::bad_axis, n) << "axis " << n.axis << " of " << in[0]
                                           << ": the int8 softmax runs over the last axis";
      if (in[0].back() > 4095)
        return op_error(Errc::not_supported, n) << "rows of " << static_cast<long long>(in[0].back())
                                                << " elements (max 4095: the Q12.19 sum of exps would overflow)";
      if (!(n.p0 > 0.f)) {
        Status e = op_error(Errc::invalid_argument, n) << "beta ";
        return append_real(e, n.p0) << " must be > 0";
      }
      n.axis = r - 1;
      n.shape = in[0];
      n.dtype = DType::i8;
      n.quant = kSoftmaxOutputQuant;
      return Status();
    }
    default: break;
  }
  return op_error(Errc::not_supported, n) << "not an int8 op";
}

}  // namespace detail
}  // namespace kiln
