// kiln/ir/infer_int8_tflite.hpp — the type rules of the int8 ops added for TFLite's common
// operators: qmul, qlogistic, qtanh, qhard_swish, qmean, qpad, qslice, qconcat.
//
// Included by ir/infer_int8.hpp (after need_quantized, need_output_quant and
// check_fused_activation). Like the other int8 rules: i8 operands with parameters, a valid
// output quantisation, and the attributes each kernel (kernels/int8/) needs, named in errors.
#pragma once

namespace kiln {
namespace detail {

constexpr Status infer_int8_tflite(Node& n, const Shape* in, const DType* dt) {
  Status st;
  if (!(st = need_quantized(n, 0, in, dt))) return st;
  const int r = in[0].rank();
  switch (n.op) {
    case Op::qmul: {
      if (!(st = need_quantized(n, 1, in, dt))) return st;
      Shape s;
      if (!broadcast_shapes(in[0], in[1], s)) return inputs_error(Errc::shape_mismatch, n, in, "shapes do not broadcast");
      if (!(st = need_output_quant(n)) || !(st = check_fused_activation(n))) return st;
      n.shape = s;
      break;
    }
    case Op::qlogistic:
    case Op::qtanh:
      n.shape = in[0];
      n.quant = n.op == Op::qlogistic ? kLogisticOutputQuant : kTanhOutputQuant;
      break;
    case Op::qhard_swish:
      if (!(st = need_output_quant(n))) return st;
      n.shape = in[0];
      break;
    case Op::qmean: {
      const auto axes = static_cast<std::uint64_t>(n.start);
      if (r < 1 || axes == 0 || (axes >> r) != 0)
        return op_error(Errc::bad_axis, n) << "axes mask " << static_cast<long long>(n.start) << " for " << in[0]
                                           << ": one bit per averaged dimension, at least one";
      Shape s = Shape::of_rank(n.keepdim ? r : 0);
      std::int64_t count = 1;
      for (int d = 0; d < r; ++d) {
        if (axes >> d & 1u) {
          count *= in[0][d];
          if (n.keepdim) s[d] = 1;
        } else if (n.keepdim) {
          s[d] = in[0][d];
        } else {
          s.push_back(in[0][d]);
        }
      }
      if (count < 1 || count > 0x7fffffff)
        return op_error(Errc::shape_mismatch, n) << "averages " << static_cast<long long>(count) << " elements of "
                                                 << in[0] << " per output (1 .. 2^31 - 1)";
      if (!(st = need_output_quant(n))) return st;
      n.shape = s;
      break;
    }
    case Op::qpad:
    case Op::qslice: {
      const int ax = normalize_axis(n.axis, r);
      if (ax < 0) return op_error(Errc::bad_axis, n) << "axis " << n.axis << " out of range for " << in[0];
      n.axis = ax;
      Shape s = in[0];
      if (n.op == Op::qpad) {
        if (n.start < 0 || n.step < 0)
          return op_error(Errc::invalid_argument, n) << "padding " << static_cast<long long>(n.start) << ", "
                                                     << static_cast<long long>(n.step) << " of " << in[0]
                                                     << " must be >= 0";
        s[ax] += n.start + n.step;
      } else {
        // n.shape[0] carries the count on entry (as slice).
        const index_t count = n.shape.rank() == 1 ? n.shape[0] : -1, len = in[0][ax];
        const index_t last = n.start + (count - 1) * n.step;
        if (n.step == 0 || count < 0 || (count > 0 && (n.start < 0 || n.start >= len || last < 0 || last >= len)))
          return op_error(Errc::shape_mismatch, n)
                 << "start " << static_cast<long long>(n.start) << " count " << static_cast<long long>(count)
                 << " step " << static_cast<long long>(n.step) << " outside axis " << ax << " of " << in[0];
        s[ax] = count;
      }
      n.shape = s;
      n.quant = n.in_quant[0];  // the bytes move unchanged
      break;
    }
    case Op::qconcat: {
      if (!(st = need_quantized(n, 1, in, dt))) return st;
      const int ax = normalize_axis(n.axis, r);
      bool ok = ax >= 0 && in[1].rank() == r;
      for (int d = 0; ok && d < r; ++d) ok = d == ax || in[0][d] == in[1][d];
      if (!ok) return inputs_error(Errc::shape_mismatch, n, in, "shapes differ outside the concatenation axis");
      if (!(st = need_output_quant(n))) return st;
      n.axis = ax;
      Shape s = in[0];
      s[ax] += in[1][ax];
      n.shape = s;
      break;
    }
    default: return op_error(Errc::not_supported, n) << "not an int8 op";
  }
  n.dtype = DType::i8;
  return Status();
}

}  // namespace detail
}  // namespace kiln
