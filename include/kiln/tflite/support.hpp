// kiln/tflite/support.hpp — which operators of a .tflite model kiln can run, checked up front.
//
// check_supported(model) looks at every operator before anything runs and returns the first
// one kiln cannot run exactly as TFLite does, by name and version, with the reason: an
// operator without an int8 kernel in kiln, a newer version than the one checked here, an
// option (fused TANH, a shuffled weight format, broadcasting ADD), a type (float or int16
// activations, uint8), a quantisation (per-channel activations, non-zero weight zero points)
// or shapes that do not agree with the options (the output size a window implies).
//
// Accepted (the operators of the four MLPerf Tiny models, int8 with TFLite's int8 spec):
// CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D, MAX_POOL_2D, ADD (equal
// shapes), RESHAPE, SOFTMAX, QUANTIZE (float32 -> int8), DEQUANTIZE (int8 -> float32), TRANSPOSE
// (constant permutation), fused activations NONE, RELU, RELU6, RELU_N1_TO_1; and the common
// int8 operators MUL, LOGISTIC, TANH, HARD_SWISH, MEAN, PAD, CONCATENATION, STRIDED_SLICE with
// the options support_common_ops.hpp lists. Everything else is reported as not supported.
#pragma once

#include <cmath>
#include <cstring>

#include "../kernels/int8/window.hpp"
#include "model.hpp"
#include "options.hpp"

namespace kiln::tflite {

/// The highest version of each accepted operator whose semantics the checks below cover
/// (0: the operator is not supported). Newer versions add types or options kiln does not run.
constexpr int max_supported_version(BuiltinOp op) {
  switch (op) {
    case BuiltinOp::ADD: return 5;
    case BuiltinOp::AVERAGE_POOL_2D: return 3;
    case BuiltinOp::MAX_POOL_2D: return 3;
    case BuiltinOp::CONV_2D: return 8;
    case BuiltinOp::DEPTHWISE_CONV_2D: return 7;
    case BuiltinOp::FULLY_CONNECTED: return 12;
    case BuiltinOp::RESHAPE: return 1;
    case BuiltinOp::SOFTMAX: return 3;
    case BuiltinOp::QUANTIZE: return 3;
    case BuiltinOp::DEQUANTIZE: return 6;
    case BuiltinOp::TRANSPOSE: return 6;
    // The common int8 operators: newer versions add types (int16, int64) or ranks the checks
    // of support_common_ops.hpp cover by content, not by number.
    case BuiltinOp::MUL: return 7;
    case BuiltinOp::LOGISTIC: return 3;
    case BuiltinOp::TANH: return 3;
    case BuiltinOp::HARD_SWISH: return 1;
    case BuiltinOp::MEAN: return 3;
    case BuiltinOp::PAD: return 4;
    case BuiltinOp::CONCATENATION: return 4;
    case BuiltinOp::STRIDED_SLICE: return 8;
    default: return 0;
  }
}

namespace detail {

// Starts an error message "tflite: CONV_2D v3 (operator 4): ".
inline Status op_error(const OperatorInfo& op, Errc code = Errc::not_supported) {
  Status s(code);
  describe(s << "tflite: ", op) << ": ";
  return s;
}

inline bool supported_activation(Activation a) {
  return a == Activation::NONE || a == Activation::RELU || a == Activation::RELU6 || a == Activation::RELU_N1_TO_1;
}

inline Status check_activation(const OperatorInfo& op, Activation a) {
  if (supported_activation(a)) return Status();
  return op_error(op) << "fused activation " << activation_name(a) << " is not supported";
}

// An int8 activation tensor with one scale and zero point (TFLite's int8 spec).
inline Status check_int8_tensor(const Model& m, const OperatorInfo& op, std::int32_t index, const char* role) {
  const TensorInfo t = m.tensor(index);
  if (t.type != TensorType::INT8)
    return op_error(op) << role << " (tensor " << static_cast<long long>(index) << ") is "
                        << tensor_type_name(t.type) << ", kiln runs int8";
  if (t.is_variable || t.sparse)
    return op_error(op) << role << " (tensor " << static_cast<long long>(index) << ") is "
                        << (t.sparse ? "sparse" : "a variable");
  if (t.quant.count != 1 || !(t.quant.scale(0) > 0.f) || !std::isfinite(t.quant.scale(0)) ||
      t.quant.zero_point(0) < -128 || t.quant.zero_point(0) > 127)
    return op_error(op) << role << " (tensor " << static_cast<long long>(index)
                        << ") needs one positive scale and an int8 zero point, has "
                        << t.quant.count << " scales";
  return Status();
}

// Input 0 and output 0 are int8 activations.
inline Status check_int8_io(const Model& m, const OperatorInfo& op) {
  if (Status s = check_int8_tensor(m, op, op.inputs[0], "input"); !s) return s;
  return check_int8_tensor(m, op, op.outputs[0], "output");
}

// int8 weights (constant), symmetric, per tensor or per channel along `dim` with `channels`.
inline Status check_weights(const Model& m, const OperatorInfo& op, std::int32_t index, int rank, int dim,
                            index_t channels) {
  const TensorInfo t = m.tensor(index);
  if (t.type != TensorType::INT8 || !t.data || t.shape.rank() != rank || t.sparse)
    return op_error(op) << "weights (tensor " << static_cast<long long>(index) << ", "
                        << tensor_type_name(t.type) << ' ' << t.shape << (t.data ? "" : ", not constant")
                        << ") must be constant dense int8 of rank " << rank;
  const bool per_channel = t.quant.count == channels && t.quant.dimension == dim;
  if (t.quant.count != 1 && !per_channel)
    return op_error(op) << "weights (tensor " << static_cast<long long>(index) << ") have "
                        << t.quant.count << " scales along dimension " << t.quant.dimension << ", expected 1 or "
                        << static_cast<long long>(channels) << " along " << dim;
  for (int c = 0; c < t.quant.count; ++c)
    if (!(t.quant.scale(c) > 0.f) || !std::isfinite(t.quant.scale(c)) || t.quant.zero_point(c) != 0)
      return op_error(op) << "weights (tensor " << static_cast<long long>(index) << ") channel " << c
                          << ": scale must be positive and the zero point 0";
  return Status();
}

// Optional int32 bias of `channels` elements (constant).
inline Status check_bias(const Model& m, const OperatorInfo& op, index_t channels) {
  if (op.inputs.size() < 3 || op.inputs[2] < 0) return Status();
  const TensorInfo t = m.tensor(op.inputs[2]);
  if (t.type != TensorType::INT32 || !t.data || t.shape.numel() != channels || t.sparse)
    return op_error(op) << "bias (tensor " << static_cast<long long>(op.inputs[2]) << ", "
                        << tensor_type_name(t.type) << ' ' << t.shape << (t.data ? "" : ", not constant")
                        << ") must be constant int32 with " << static_cast<long long>(channels) << " elements";
  return Status();
}

inline Status check_arity(const OperatorInfo& op, int min_in, int max_in, int outputs) {
  if (op.inputs.size() < min_in || op.inputs.size() > max_in || op.outputs.size() != outputs)
    return op_error(op, Errc::invalid_argument) << op.inputs.size() << " inputs and " << op.outputs.size()
                                               << " outputs, expected " << min_in << ".." << max_in << " and "
                                               << outputs;
  for (int j = 0; j < min_in; ++j)
    if (op.inputs[j] < 0) return op_error(op, Errc::invalid_argument) << "required input " << j << " is absent";
  return Status();
}

inline Status check_window(const OperatorInfo& op, Padding padding, int stride_h, int stride_w, int dil_h,
                           int dil_w, index_t kh, index_t kw, const Shape& in, const Shape& out) {
  if (padding != Padding::SAME && padding != Padding::VALID)
    return op_error(op, Errc::invalid_argument) << "padding " << static_cast<int>(padding);
  if (stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1 || kh < 1 || kw < 1)
    return op_error(op, Errc::invalid_argument) << "stride " << stride_h << 'x' << stride_w << ", dilation "
                                               << dil_h << 'x' << dil_w << ", window " << static_cast<long long>(kh)
                                               << 'x' << static_cast<long long>(kw) << " must all be >= 1";
  if (in.rank() != 4 || out.rank() != 4 || in[0] != out[0])
    return op_error(op, Errc::shape_mismatch) << "input " << in << " and output " << out
                                              << " must be NHWC with the same batch";
  // Bounds that keep the window arithmetic inside a 32-bit index_t (firmware) for any file.
  constexpr index_t kMaxWindow = 1 << 12, kMaxExtent = 1 << 16;
  if (stride_h > kMaxWindow || stride_w > kMaxWindow || dil_h > kMaxWindow || dil_w > kMaxWindow || kh > kMaxWindow ||
      kw > kMaxWindow || in[1] > kMaxExtent || in[2] > kMaxExtent)
    return op_error(op) << "window (stride, dilation, size up to " << static_cast<long long>(kMaxWindow)
                        << ") or input " << in << " (up to " << static_cast<long long>(kMaxExtent)
                        << " per spatial dimension) too large";
  const kernels::int8::Window2D w =
      padding == Padding::SAME ? kernels::int8::same_window(in[1], in[2], kh, kw, stride_h, stride_w, dil_h, dil_w)
                               : kernels::int8::Window2D{stride_h, stride_w, dil_h, dil_w, 0, 0, 0, 0};
  const Status s = kernels::int8::detail::check_window(op.name(), w, kh, kw, in, out);
  if (!s.ok()) return op_error(op, Errc::shape_mismatch) << s.message();
  return Status();
}

inline Status check_conv(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 2, 3, 1); !s) return s;
  ConvOptions o;
  if (Status s = read_conv_options(m, op, o); !s) return s;
  if (Status s = check_activation(op, o.activation); !s) return s;
  if (Status s = check_int8_io(m, op); !s) return s;
  const Shape in = m.tensor(op.inputs[0]).shape, out = m.tensor(op.outputs[0]).shape;
  const Shape w = m.tensor(op.inputs[1]).shape;
  const bool dw = op.op() == BuiltinOp::DEPTHWISE_CONV_2D;
  if (in.rank() != 4 || out.rank() != 4 || w.rank() != 4)
    return op_error(op, Errc::shape_mismatch) << "input " << in << ", weights " << w << ", output " << out
                                              << " must all be rank 4 (NHWC, OHWI)";
  const index_t out_c = out[3];
  if (dw ? (w[0] != 1 || w[3] != out_c || in[3] == 0 || out_c % in[3] != 0)
         : (w[0] != out_c || w[3] != in[3]))
    return op_error(op, Errc::shape_mismatch)
           << "weights " << w << " do not fit input " << in << " and output " << out
           << (dw ? " (depthwise: [1, kh, kw, out_c], out_c a multiple of in_c)"
                  : " (grouped convolution is not supported)");
  if (Status s = check_weights(m, op, op.inputs[1], 4, dw ? 3 : 0, out_c); !s) return s;
  if (Status s = check_bias(m, op, out_c); !s) return s;
  return check_window(op, o.padding, o.stride_h, o.stride_w, o.dilation_h, o.dilation_w, w[1], w[2], in, out);
}

inline Status check_fully_connected(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 2, 3, 1); !s) return s;
  FullyConnectedOptions o;
  if (Status s = read_fully_connected_options(m, op, o); !s) return s;
  if (Status s = check_activation(op, o.activation); !s) return s;
  if (o.weights_format != 0) return op_error(op) << "shuffled weights format " << static_cast<int>(o.weights_format);
  if (Status s = check_int8_io(m, op); !s) return s;
  const Shape in = m.tensor(op.inputs[0]).shape, out = m.tensor(op.outputs[0]).shape;
  const Shape w = m.tensor(op.inputs[1]).shape;
  // In 64 bits: rows * out_features can exceed a 32-bit index_t in a damaged file.
  if (w.rank() != 2 || w[1] < 1 || in.numel() % w[1] != 0 || out.rank() < 1 || out.back() != w[0] ||
      static_cast<std::int64_t>(out.numel()) != static_cast<std::int64_t>(in.numel() / w[1]) * w[0])
    return op_error(op, Errc::shape_mismatch) << "weights " << w << " ([out, in]) do not fit input " << in
                                              << " and output " << out;
  if (Status s = check_weights(m, op, op.inputs[1], 2, 0, w[0]); !s) return s;
  return check_bias(m, op, w[0]);
}

inline Status check_pool(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 1, 1, 1); !s) return s;
  PoolOptions o;
  if (Status s = read_pool_options(m, op, o); !s) return s;
  if (Status s = check_activation(op, o.activation); !s) return s;
  if (Status s = check_int8_io(m, op); !s) return s;
  const TensorInfo in = m.tensor(op.inputs[0]), out = m.tensor(op.outputs[0]);
  // TFLite's int8 pooling does not requantise: input and output share their parameters.
  if (in.quant.scale(0) != out.quant.scale(0) || in.quant.zero_point(0) != out.quant.zero_point(0))
    return op_error(op) << "input and output quantisation differ (pooling does not requantise)";
  if (in.shape.rank() == 4 && out.shape.rank() == 4 && in.shape[3] != out.shape[3])
    return op_error(op, Errc::shape_mismatch) << "input " << in.shape << " and output " << out.shape
                                              << " have different channels";
  return check_window(op, o.padding, o.stride_h, o.stride_w, 1, 1, o.filter_h, o.filter_w, in.shape, out.shape);
}

inline Status check_add(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 2, 2, 1); !s) return s;
  ActivationOptions o;
  if (Status s = read_add_options(m, op, o); !s) return s;
  if (Status s = check_activation(op, o.activation); !s) return s;
  for (int j = 0; j < 2; ++j) {
    if (Status s = check_int8_tensor(m, op, op.inputs[j], j ? "input 1" : "input 0"); !s) return s;
    // The importer gives ADD activations only (a constant operand would have no kiln value).
    if (m.tensor(op.inputs[j]).data)
      return op_error(op) << "input " << j << " (tensor " << static_cast<long long>(op.inputs[j])
                          << ") is a constant: kiln imports constant operands of this operator only as weights";
  }
  if (Status s = check_int8_tensor(m, op, op.outputs[0], "output"); !s) return s;
  const Shape a = m.tensor(op.inputs[0]).shape, b = m.tensor(op.inputs[1]).shape, y = m.tensor(op.outputs[0]).shape;
  if (!(a == b) || !(a == y))
    return op_error(op) << "inputs " << a << " and " << b << ", output " << y
                        << ": broadcasting is not supported (shapes must be equal)";
  return Status();
}

inline Status check_reshape(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 1, 2, 1); !s) return s;
  if (Status s = check_int8_io(m, op); !s) return s;
  const TensorInfo in = m.tensor(op.inputs[0]), out = m.tensor(op.outputs[0]);
  if (in.shape.numel() != out.shape.numel())
    return op_error(op, Errc::shape_mismatch) << "input " << in.shape << " and output " << out.shape
                                              << " have different sizes";
  // The bytes are passed on unchanged: the quantisation must be too.
  if (in.quant.scale(0) != out.quant.scale(0) || in.quant.zero_point(0) != out.quant.zero_point(0))
    return op_error(op) << "input and output quantisation differ";
  return Status();
}

inline Status check_softmax(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 1, 1, 1); !s) return s;
  SoftmaxOptions o;
  if (Status s = read_softmax_options(m, op, o); !s) return s;
  if (Status s = check_int8_io(m, op); !s) return s;
  const TensorInfo in = m.tensor(op.inputs[0]), out = m.tensor(op.outputs[0]);
  if (!(in.shape == out.shape) || in.shape.rank() < 1 || in.shape.back() > 4095)
    return op_error(op, Errc::shape_mismatch) << "input " << in.shape << ", output " << out.shape
                                              << ": equal shapes of rank >= 1, rows of at most 4095";
  // TFLite's int8 softmax writes probabilities with scale 1/256 (to 0.1%) and zero point -128.
  if (std::fabs(out.quant.scale(0) - 1.f / 256) > 0.001f / 256 || out.quant.zero_point(0) != -128)
    return op_error(op) << "output quantisation must be scale 1/256, zero point -128";
  if (!(o.beta > 0.f) || !std::isfinite(o.beta)) return op_error(op, Errc::invalid_argument) << "beta must be positive";
  return Status();
}

inline Status check_quantize(const Model& m, const OperatorInfo& op, bool to_int8) {
  if (Status s = check_arity(op, 1, 1, 1); !s) return s;
  const std::int32_t f = to_int8 ? op.inputs[0] : op.outputs[0];
  const std::int32_t q = to_int8 ? op.outputs[0] : op.inputs[0];
  const TensorInfo ft = m.tensor(f);
  if (ft.type != TensorType::FLOAT32)
    return op_error(op) << (to_int8 ? "input" : "output") << " is " << tensor_type_name(ft.type)
                        << ", kiln converts between float32 and int8 only";
  if (Status s = check_int8_tensor(m, op, q, to_int8 ? "output" : "input"); !s) return s;
  if (!(ft.shape == m.tensor(q).shape))
    return op_error(op, Errc::shape_mismatch) << "input and output shapes differ";
  return Status();
}

// TRANSPOSE: a constant permutation; the bytes move, their quantisation does not change.
inline Status check_transpose(const Model& m, const OperatorInfo& op) {
  if (Status s = check_arity(op, 2, 2, 1); !s) return s;
  if (Status s = check_int8_io(m, op); !s) return s;
  const TensorInfo in = m.tensor(op.inputs[0]), out = m.tensor(op.outputs[0]), perm = m.tensor(op.inputs[1]);
  if (in.quant.scale(0) != out.quant.scale(0) || in.quant.zero_point(0) != out.quant.zero_point(0))
    return op_error(op) << "input and output quantisation differ";
  const int r = in.shape.rank();
  if (perm.type != TensorType::INT32 || !perm.data || perm.shape.numel() != r || out.shape.rank() != r)
    return op_error(op) << "the permutation must be a constant int32 vector of " << r << " elements (input "
                        << in.shape << ", output " << out.shape << ')';
  bool used[kMaxRank] = {};
  for (int i = 0; i < r; ++i) {
    std::int32_t p = 0;
    std::memcpy(&p, perm.data + 4 * i, 4);  // little-endian host
    if (p < 0 || p >= r || used[p] || out.shape[i] != in.shape[p])
      return op_error(op, Errc::shape_mismatch) << "permutation entry " << i << " = " << static_cast<long long>(p)
                                                << " does not map input " << in.shape << " to output " << out.shape;
    used[p] = true;
  }
  return Status();
}

}  // namespace detail
}  // namespace kiln::tflite

// The common int8 operators' checks, over the helpers above.
#include "support_common_ops.hpp"

namespace kiln::tflite {

/// Whether kiln can run operator `op` of model m exactly as TFLite does (see the file comment).
inline Status check_operator(const Model& m, const OperatorInfo& op) {
  using detail::op_error;
  if (op.op() == BuiltinOp::CUSTOM) {
    Status s = op_error(op) << "custom operator '";
    for (std::uint32_t i = 0; i < op.custom_code_length && i < 40; ++i) s << op.custom_code[i];
    return s << "' is not supported";
  }
  const int max_version = max_supported_version(op.op());
  if (max_version == 0) return op_error(op) << "operator not supported by kiln";
  if (op.version < 1 || op.version > max_version)
    return op_error(op) << "version " << op.version << " not supported (kiln checked versions 1.." << max_version
                        << ')';
  if (op.has_options_2 || op.has_intermediates)
    return op_error(op) << (op.has_options_2 ? "builtin_options_2" : "intermediate tensors") << " not supported";
  switch (op.op()) {
    case BuiltinOp::CONV_2D:
    case BuiltinOp::DEPTHWISE_CONV_2D: return detail::check_conv(m, op);
    case BuiltinOp::FULLY_CONNECTED: return detail::check_fully_connected(m, op);
    case BuiltinOp::AVERAGE_POOL_2D:
    case BuiltinOp::MAX_POOL_2D: return detail::check_pool(m, op);
    case BuiltinOp::ADD: return detail::check_add(m, op);
    case BuiltinOp::RESHAPE: return detail::check_reshape(m, op);
    case BuiltinOp::SOFTMAX: return detail::check_softmax(m, op);
    case BuiltinOp::QUANTIZE: return detail::check_quantize(m, op, true);
    case BuiltinOp::DEQUANTIZE: return detail::check_quantize(m, op, false);
    case BuiltinOp::TRANSPOSE: return detail::check_transpose(m, op);
    case BuiltinOp::MUL: return detail::check_mul(m, op);
    case BuiltinOp::LOGISTIC:
    case BuiltinOp::TANH:
    case BuiltinOp::HARD_SWISH: return detail::check_activation_op(m, op);
    case BuiltinOp::MEAN: return detail::check_mean(m, op);
    case BuiltinOp::PAD: return detail::check_pad(m, op);
    case BuiltinOp::CONCATENATION: return detail::check_concatenation(m, op);
    case BuiltinOp::STRIDED_SLICE: return detail::check_strided_slice(m, op);
    default: return op_error(op) << "operator not supported by kiln";
  }
}

/// Checks every operator of an opened model; the first one kiln cannot run is reported.
inline Status check_supported(const Model& m) {
  if (!m.is_open()) return Status(Errc::invalid_argument) << "tflite: model not opened";
  for (int k = 0; k < m.num_operators(); ++k)
    if (Status s = check_operator(m, m.op(k)); !s) return s;
  return Status();
}

}  // namespace kiln::tflite
