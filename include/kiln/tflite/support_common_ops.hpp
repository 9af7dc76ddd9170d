// kiln/tflite/support_common_ops.hpp — the checks and decoded options of the common int8
// operators beyond the MLPerf Tiny set: MUL, LOGISTIC, TANH, HARD_SWISH, MEAN, PAD,
// CONCATENATION, STRIDED_SLICE (support.hpp's check_operator calls these; import.hpp maps the
// accepted ones onto ops_int8_tflite.hpp).
//
// What TFLite (Micro)'s int8 kernels accept is accepted, with kiln's own limits said by name:
//   MUL         int8 activations (not constants), NumPy broadcasting, fused NONE/RELU/RELU6/RELU_N1_TO_1;
//   LOGISTIC    output quantisation exactly 1/256, -128 (TFLite's int8 contract);
//   TANH        output quantisation exactly 1/128, 0;
//   HARD_SWISH  any output quantisation with input_scale / 128 <= output_scale (TFLite's Prepare);
//   MEAN        constant int32 axes (negative allowed, repeats ignored), keep_dims or not;
//   PAD         constant int32 paddings [rank, 2] >= 0, pad value the zero point, input and
//               output quantisation equal (the bytes are copied); PADV2 is another operator;
//   CONCATENATION  int8 activations with the output's quantisation (TFLite's int8 rule), fused NONE;
//   STRIDED_SLICE  constant int32 begin/end/strides, begin/end/shrink_axis masks, one ellipsis,
//               new axes, negative strides (not with shrink_axis); `offset` is not supported.
#pragma once

#include <cstdint>

#include "model.hpp"

namespace kiln::tflite {

/// STRIDED_SLICE's options (StridedSliceOptions).
struct StridedSliceOptions {
  std::int32_t begin_mask = 0, end_mask = 0, ellipsis_mask = 0, new_axis_mask = 0, shrink_axis_mask = 0;
  bool offset = false;
};

/// A STRIDED_SLICE resolved per input dimension: entries start, start + step, ... (count).
struct SliceSpec {
  index_t start[kMaxRank] = {}, count[kMaxRank] = {}, step[kMaxRank] = {};
};

namespace detail {

namespace field_ss { inline constexpr int begin_mask = 0, end_mask = 1, ellipsis_mask = 2, new_axis_mask = 3,
                                           shrink_axis_mask = 4, offset = 5; }

inline Status options_error(const OperatorInfo& op, OptionsType expected) {
  Status s(Errc::invalid_argument);
  describe(s << "tflite: ", op) << ": builtin options of union type " << static_cast<int>(op.options_type)
                                << ", expected " << static_cast<int>(expected);
  return s;
}

/// The options table of `op` if present and of type `expected`.
inline Status read_table(const Model& m, const OperatorInfo& op, OptionsType expected, fb::Reader& r) {
  (void)m;
  r.set_context("operator", op.index);
  if (op.options.present && op.options_type != static_cast<std::uint8_t>(expected)) return options_error(op, expected);
  return Status();
}

/// A constant int32 tensor's values (little-endian), at most `max` of them.
inline Status constant_int32s(const Model& m, const OperatorInfo& op, std::int32_t index, const char* role,
                              std::int64_t* out, int max, int& n) {
  const TensorInfo t = m.tensor(index);
  const index_t count = t.shape.numel();
  if (t.type != TensorType::INT32 || !t.data || count < 0 || count > max ||
      t.bytes < static_cast<std::size_t>(count) * 4)
    return op_error(op) << role << " (tensor " << static_cast<long long>(index) << ", " << tensor_type_name(t.type)
                        << ' ' << t.shape << (t.data ? "" : ", not constant") << ") must be a constant int32 tensor of at most "
                        << max << " elements";
  n = static_cast<int>(count);
  for (int i = 0; i < n; ++i) {
    std::int32_t v = 0;
    std::memcpy(&v, t.data + 4 * i, 4);  // little-endian host
    out[i] = v;
  }
  return Status();
}

// An int8 activation (not a constant: kiln imports constant operands only as weights).
inline Status check_int8_activation(const Model& m, const OperatorInfo& op, std::int32_t index, const char* role) {
  if (Status s = check_int8_tensor(m, op, index, role); !s) return s;
  if (m.tensor(index).data)
    return op_error(op) << role << " (tensor " << static_cast<long long>(index)
                        << ") is a constant: kiln imports constant operands of this operator only as weights";
  return Status();
}

inline bool same_quant(const TensorInfo& a, const TensorInfo& b) {
  return a.quant.scale(0) == b.quant.scale(0) && a.quant.zero_point(0) == b.quant.zero_point(0);
}

inline Status check_mul(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 2, 2, 1); !s) return s;
  fb::Reader r(m.bytes(), m.size());
  if (Status s = read_table(m, op, OptionsType::MulOptions, r); !s) return s;
  const auto act = static_cast<Activation>(r.scalar<std::int8_t>(op.options, field::mul::activation, 0, "fused_activation_function"));
  if (!r.ok()) return r.status();
  if (Status s = check_activation(op, act); !s) return s;
  for (int j = 0; j < 2; ++j)
    if (Status s = check_int8_activation(m, op, op.inputs[j], j ? "input 1" : "input 0"); !s) return s;
  if (Status s = check_int8_tensor(m, op, op.outputs[0], "output"); !s) return s;
  const Shape a = m.tensor(op.inputs[0]).shape, b = m.tensor(op.inputs[1]).shape, y = m.tensor(op.outputs[0]).shape;
  Shape s;
  if (!broadcast_shapes(a, b, s) || !(s == y))
    return op_error(op, Errc::shape_mismatch) << "inputs " << a << " and " << b << " do not broadcast to the output " << y;
  return Status();
}

// LOGISTIC, TANH, HARD_SWISH: elementwise, equal shapes, TFLite's output quantisation contract.
inline Status check_activation_op(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 1, 1, 1); !s) return s;
  if (Status s = check_int8_io(m, op); !s) return s;
  const TensorInfo in = m.tensor(op.inputs[0]), out = m.tensor(op.outputs[0]);
  if (!(in.shape == out.shape))
    return op_error(op, Errc::shape_mismatch) << "input " << in.shape << " and output " << out.shape << " differ";
  const BuiltinOp k = op.op();
  if (k == BuiltinOp::LOGISTIC && (out.quant.scale(0) != 1.f / 256 || out.quant.zero_point(0) != -128))
    return op_error(op) << "output quantisation must be scale 1/256, zero point -128 (TFLite's int8 LOGISTIC)";
  if (k == BuiltinOp::TANH && (out.quant.scale(0) != 1.f / 128 || out.quant.zero_point(0) != 0))
    return op_error(op) << "output quantisation must be scale 1/128, zero point 0 (TFLite's int8 TANH)";
  if (k == BuiltinOp::HARD_SWISH && !((1.0f / 128.0f) * in.quant.scale(0) / out.quant.scale(0) <= 1.0f))
    return op_error(op) << "input scale / 128 exceeds the output scale (TFLite's HARD_SWISH Prepare rejects it)";
  return Status();
}

/// MEAN's averaged dimensions as a bit mask, and keep_dims.
inline Status mean_axes(const Model& m, const OperatorInfo& op, std::uint32_t& mask, bool& keep_dims) {
  fb::Reader r(m.bytes(), m.size());
  if (Status s = read_table(m, op, OptionsType::ReducerOptions, r); !s) return s;
  keep_dims = r.scalar<std::uint8_t>(op.options, field::reducer::keep_dims, 0, "keep_dims") != 0;
  if (!r.ok()) return r.status();
  const Shape in = m.tensor(op.inputs[0]).shape;
  const int rank = in.rank();
  if (!in.valid()) return op_error(op, Errc::shape_mismatch) << "input shape " << in;
  std::int64_t axes[2 * kMaxRank] = {};
  int n = 0;
  if (Status s = constant_int32s(m, op, op.inputs[1], "axes", axes, 2 * kMaxRank, n); !s) return s;
  mask = 0;
  for (int i = 0; i < n; ++i) {
    const std::int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    if (a < 0 || a >= rank)
      return op_error(op, Errc::bad_axis) << "axis " << static_cast<long long>(axes[i]) << " of a rank-" << rank
                                          << " input";
    mask |= std::uint32_t{1} << a;
  }
  if (mask == 0) return op_error(op) << "no axes to average (an identity MEAN is not supported)";
  return Status();
}

inline Status check_mean(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 2, 2, 1); !s) return s;
  if (Status s = check_int8_io(m, op); !s) return s;
  std::uint32_t mask = 0;
  bool keep = false;
  if (Status s = mean_axes(m, op, mask, keep); !s) return s;
  const Shape in = m.tensor(op.inputs[0]).shape, out = m.tensor(op.outputs[0]).shape;
  Shape want = Shape::of_rank(keep ? in.rank() : 0);
  std::int64_t count = 1;
  for (int d = 0; d < in.rank(); ++d) {
    if (mask >> d & 1u) count *= in[d];
    if (keep) want[d] = mask >> d & 1u ? 1 : in[d];
    else if (!(mask >> d & 1u)) want.push_back(in[d]);
  }
  if (!(want == out) || count < 1 || count > 0x7fffffff)
    return op_error(op, Errc::shape_mismatch) << "input " << in << " averaged over its axes gives " << want
                                              << ", the output is " << out;
  return Status();
}

/// PAD's paddings: before[d], after[d] for each input dimension.
inline Status pad_amounts(const Model& m, const OperatorInfo& op, index_t* before, index_t* after) {
  const Shape in = m.tensor(op.inputs[0]).shape;
  if (!in.valid()) return op_error(op, Errc::shape_mismatch) << "input shape " << in;
  std::int64_t p[2 * kMaxRank] = {};
  int n = 0;
  if (Status s = constant_int32s(m, op, op.inputs[1], "paddings", p, 2 * kMaxRank, n); !s) return s;
  if (n != 2 * in.rank())
    return op_error(op, Errc::shape_mismatch) << "paddings " << m.tensor(op.inputs[1]).shape << " for input " << in
                                              << " (expected [" << in.rank() << ", 2])";
  for (int d = 0; d < in.rank(); ++d) {
    if (p[2 * d] < 0 || p[2 * d + 1] < 0 || p[2 * d] > (1 << 16) || p[2 * d + 1] > (1 << 16))
      return op_error(op, Errc::invalid_argument) << "padding of dimension " << d << " (" << static_cast<long long>(p[2 * d])
                                                  << ", " << static_cast<long long>(p[2 * d + 1]) << ") must be in [0, 65536]";
    before[d] = static_cast<index_t>(p[2 * d]);
    after[d] = static_cast<index_t>(p[2 * d + 1]);
  }
  return Status();
}

inline Status check_pad(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 2, 2, 1); !s) return s;
  if (Status s = check_int8_io(m, op); !s) return s;
  const TensorInfo in = m.tensor(op.inputs[0]), out = m.tensor(op.outputs[0]);
  if (!same_quant(in, out)) return op_error(op) << "input and output quantisation differ (PAD copies the bytes)";
  index_t before[kMaxRank] = {}, after[kMaxRank] = {};
  if (Status s = pad_amounts(m, op, before, after); !s) return s;
  Shape want = in.shape;
  for (int d = 0; d < want.rank(); ++d) want[d] += before[d] + after[d];
  if (!(want == out.shape))
    return op_error(op, Errc::shape_mismatch) << "input " << in.shape << " padded gives " << want << ", the output is "
                                              << out.shape;
  return Status();
}

/// CONCATENATION's axis (normalised).
inline Status concat_axis(const Model& m, const OperatorInfo& op, int& axis) {
  fb::Reader r(m.bytes(), m.size());
  if (Status s = read_table(m, op, OptionsType::ConcatenationOptions, r); !s) return s;
  axis = r.scalar<std::int32_t>(op.options, field::concatenation::axis, 0, "axis");
  const auto act = static_cast<Activation>(
      r.scalar<std::int8_t>(op.options, field::concatenation::activation, 0, "fused_activation_function"));
  if (!r.ok()) return r.status();
  if (act != Activation::NONE)
    return op_error(op) << "fused activation " << activation_name(act) << " is not supported (TFLite's int8 "
                        << "CONCATENATION has none)";
  const int rank = m.tensor(op.outputs[0]).shape.rank();
  if (axis < -rank || axis >= rank) return op_error(op, Errc::bad_axis) << "axis " << axis << " of rank " << rank;
  if (axis < 0) axis += rank;
  return Status();
}

inline Status check_concatenation(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 1, 64, 1); !s) return s;
  if (Status s = check_int8_tensor(m, op, op.outputs[0], "output"); !s) return s;
  int axis = 0;
  if (Status s = concat_axis(m, op, axis); !s) return s;
  const TensorInfo out = m.tensor(op.outputs[0]);
  Shape want;
  for (int j = 0; j < op.inputs.size(); ++j) {
    if (Status s = check_int8_activation(m, op, op.inputs[j], "input"); !s) return s;
    const TensorInfo t = m.tensor(op.inputs[j]);
    if (!same_quant(t, out))
      return op_error(op) << "input " << j << " and the output have different quantisation (TFLite's int8 "
                          << "CONCATENATION requires them equal)";
    bool ok = t.shape.rank() == out.shape.rank();
    for (int d = 0; ok && d < t.shape.rank(); ++d) ok = d == axis || t.shape[d] == out.shape[d];
    if (!ok)
      return op_error(op, Errc::shape_mismatch) << "input " << j << ' ' << t.shape << " does not fit the output "
                                                << out.shape << " along axis " << axis;
    if (j == 0) want = t.shape;
    else want[axis] += t.shape[axis];
  }
  if (!(want == out.shape))
    return op_error(op, Errc::shape_mismatch) << "inputs joined give " << want << ", the output is " << out.shape;
  return Status();
}

inline Status read_strided_slice_options(const Model& m, const OperatorInfo& op, StridedSliceOptions& o) {
  fb::Reader r(m.bytes(), m.size());
  if (Status s = read_table(m, op, OptionsType::StridedSliceOptions, r); !s) return s;
  namespace f = field_ss;
  o.begin_mask = r.scalar<std::int32_t>(op.options, f::begin_mask, 0, "begin_mask");
  o.end_mask = r.scalar<std::int32_t>(op.options, f::end_mask, 0, "end_mask");
  o.ellipsis_mask = r.scalar<std::int32_t>(op.options, f::ellipsis_mask, 0, "ellipsis_mask");
  o.new_axis_mask = r.scalar<std::int32_t>(op.options, f::new_axis_mask, 0, "new_axis_mask");
  o.shrink_axis_mask = r.scalar<std::int32_t>(op.options, f::shrink_axis_mask, 0, "shrink_axis_mask");
  o.offset = r.scalar<std::uint8_t>(op.options, f::offset, 0, "offset") != 0;
  return r.status();
}

/// TFLite's strided-slice canonicalisation (strided_slice_logic.h): the sparse begin/end/strides
/// with their masks resolved to a start, count and step per input dimension.
inline Status strided_slice_spec(const Model& m, const OperatorInfo& op, SliceSpec& spec) {
  StridedSliceOptions o;
  if (Status s = read_strided_slice_options(m, op, o); !s) return s;
  if (o.offset) return op_error(op) << "option offset (end relative to begin) is not supported";
  const Shape in = m.tensor(op.inputs[0]).shape;
  const int rank = in.rank();
  if (!in.valid()) return op_error(op, Errc::shape_mismatch) << "input shape " << in;
  std::int64_t b[kMaxRank + 8] = {}, e[kMaxRank + 8] = {}, st[kMaxRank + 8] = {};
  int nb = 0, ne = 0, ns = 0;
  const char* roles[3] = {"begin", "end", "strides"};
  std::int64_t* vals[3] = {b, e, st};
  int* counts[3] = {&nb, &ne, &ns};
  for (int k = 0; k < 3; ++k)
    if (Status s = constant_int32s(m, op, op.inputs[1 + k], roles[k], vals[k], kMaxRank + 8, *counts[k]); !s) return s;
  if (nb != ne || nb != ns || nb > 31)
    return op_error(op, Errc::shape_mismatch) << "begin, end and strides have " << nb << ", " << ne << ", " << ns
                                              << " elements";
  const std::uint32_t ell = static_cast<std::uint32_t>(o.ellipsis_mask), nax = static_cast<std::uint32_t>(o.new_axis_mask);
  if ((ell & (ell - 1)) != 0) return op_error(op) << "more than one ellipsis";
  int real_after_ellipsis = 0;  // sparse entries after the ellipsis that consume an input dimension
  bool seen = false;
  for (int i = 0; i < nb; ++i) {
    if (ell >> i & 1u) seen = true;
    else if (seen && !(nax >> i & 1u)) ++real_after_ellipsis;
  }
  int d = 0;  // input dimension
  for (int i = 0; i < nb; ++i) {
    if (ell >> i & 1u) {
      for (const int end = rank - real_after_ellipsis; d < end; ++d) spec.start[d] = 0, spec.count[d] = in[d], spec.step[d] = 1;
      continue;
    }
    if (nax >> i & 1u) continue;  // an inserted extent of 1: the output shape says it
    if (d >= rank) return op_error(op, Errc::shape_mismatch) << "more slice entries than input dimensions " << in;
    const std::int64_t n = in[d], stride = st[i];
    if (stride == 0) return op_error(op, Errc::invalid_argument) << "stride 0 on dimension " << d;
    const bool shrink = o.shrink_axis_mask >> i & 1;
    if (shrink && stride < 0) return op_error(op) << "shrink_axis with a negative stride on dimension " << d;
    std::int64_t start = b[i], stop = e[i];
    if (o.begin_mask >> i & 1) start = stride > 0 ? 0 : n - 1;
    else {
      if (start < 0) start += n;
      start = stride > 0 ? (start < 0 ? 0 : start > n ? n : start) : (start < -1 ? -1 : start > n - 1 ? n - 1 : start);
    }
    if (shrink) stop = start + 1;
    else if (o.end_mask >> i & 1) stop = stride > 0 ? n : -1;
    else {
      if (stop < 0) stop += n;
      stop = stride > 0 ? (stop < 0 ? 0 : stop > n ? n : stop) : (stop < -1 ? -1 : stop > n - 1 ? n - 1 : stop);
    }
    std::int64_t count = stride > 0 ? (stop - start + stride - 1) / stride : (start - stop + (-stride) - 1) / (-stride);
    if (count < 0) count = 0;
    if (shrink && (start < 0 || start >= n))
      return op_error(op, Errc::invalid_argument) << "shrink_axis index " << static_cast<long long>(b[i])
                                                  << " outside dimension " << d << " of " << in;
    spec.start[d] = static_cast<index_t>(start);
    spec.count[d] = static_cast<index_t>(count);
    spec.step[d] = static_cast<index_t>(stride);
    ++d;
  }
  for (; d < rank; ++d) spec.start[d] = 0, spec.count[d] = in[d], spec.step[d] = 1;
  return Status();
}

inline Status check_strided_slice(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 4, 4, 1); !s) return s;
  if (Status s = check_int8_io(m, op); !s) return s;
  const TensorInfo in = m.tensor(op.inputs[0]), out = m.tensor(op.outputs[0]);
  if (!same_quant(in, out)) return op_error(op) << "input and output quantisation differ (STRIDED_SLICE copies the bytes)";
  SliceSpec spec;
  if (Status s = strided_slice_spec(m, op, spec); !s) return s;
  index_t n = 1;
  for (int d = 0; d < in.shape.rank(); ++d) n *= spec.count[d];
  if (n == 0) return op_error(op) << "the slice of " << in.shape << " is empty";
  if (n != out.shape.numel())
    return op_error(op, Errc::shape_mismatch) << "the slice of " << in.shape << " has " << static_cast<long long>(n)
                                              << " elements, the output " << out.shape << ' '
                                              << static_cast<long long>(out.shape.numel());
  return Status();
}

}  // namespace detail
}  // namespace kiln::tflite
