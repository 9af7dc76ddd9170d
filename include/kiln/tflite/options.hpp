// kiln/tflite/options.hpp — the builtin options of the operators kiln imports, decoded.
//
// Each read_*_options() checks that the operator carries the options table its op code
// implies (the union type byte), reads the fields with the schema's defaults and returns a
// Status naming the operator when the table is of another type or malformed. An absent
// table gives the schema defaults (e.g. stride 0, which support.hpp then rejects).
#pragma once

#include "model.hpp"

namespace kiln::tflite {

/// CONV_2D and DEPTHWISE_CONV_2D.
struct ConvOptions {
  Padding padding = Padding::SAME;
  int stride_w = 0, stride_h = 0;
  int dilation_w = 1, dilation_h = 1;
  int depth_multiplier = 0;  ///< DEPTHWISE_CONV_2D only (redundant: derived from shapes)
  Activation activation = Activation::NONE;
};

/// AVERAGE_POOL_2D and MAX_POOL_2D.
struct PoolOptions {
  Padding padding = Padding::SAME;
  int stride_w = 0, stride_h = 0;
  int filter_w = 0, filter_h = 0;
  Activation activation = Activation::NONE;
};

struct FullyConnectedOptions {
  Activation activation = Activation::NONE;
  std::int8_t weights_format = 0;  ///< 0 DEFAULT, 1 SHUFFLED4x16INT8
  bool keep_num_dims = false;
  bool asymmetric_quantize_inputs = false;
};

struct SoftmaxOptions {
  float beta = 0.f;
};

/// ADD (and MUL, SUB: the same single field).
struct ActivationOptions {
  Activation activation = Activation::NONE;
};

namespace detail {
// Checks the union type byte and gives a reader positioned for the table's fields.
inline Status options_reader_check(const Model& m, const OperatorInfo& op, OptionsType expected, fb::Reader& r) {
  (void)m;
  r.set_context("operator", op.index);
  if (op.options.present && op.options_type != static_cast<std::uint8_t>(expected)) {
    Status s(Errc::invalid_argument);
    describe(s << "tflite: ", op) << ": builtin options of union type " << static_cast<int>(op.options_type)
                                  << ", expected " << static_cast<int>(expected);
    return s;
  }
  return Status();
}

// quantized_bias_type (CONV_2D v8, FULLY_CONNECTED v11): an int64 bias and accumulator is not
// the int8 path kiln runs; unset or INT32 is.
inline Status check_bias_type(fb::Reader& r, const OperatorInfo& op, int field) {
  const std::int8_t bias_type = r.scalar<std::int8_t>(op.options, field, 0, "quantized_bias_type");
  if (r.ok() && bias_type != 0 && bias_type != static_cast<std::int8_t>(TensorType::INT32)) {
    Status e(Errc::not_supported);
    describe(e << "tflite: ", op) << ": quantized_bias_type "
                                  << tensor_type_name(static_cast<TensorType>(bias_type)) << " is not supported";
    return e;
  }
  return r.status();
}
}  // namespace detail

inline Status read_conv_options(const Model& m, const OperatorInfo& op, ConvOptions& o) {
  const bool dw = op.op() == BuiltinOp::DEPTHWISE_CONV_2D;
  fb::Reader r(m.bytes(), m.size());
  Status s = detail::options_reader_check(
      m, op, dw ? OptionsType::DepthwiseConv2DOptions : OptionsType::Conv2DOptions, r);
  if (!s.ok()) return s;
  // The two tables share their fields but not their ids (depth_multiplier sits in the middle).
  namespace c = field::conv2d;
  namespace d = field::depthwise;
  const fb::Table& t = op.options;
  o = ConvOptions{};
  o.padding = static_cast<Padding>(r.scalar<std::int8_t>(t, c::padding, 0, "padding"));  // same id in both
  o.stride_w = r.scalar<std::int32_t>(t, c::stride_w, 0, "stride_w");
  o.stride_h = r.scalar<std::int32_t>(t, c::stride_h, 0, "stride_h");
  o.activation = static_cast<Activation>(
      r.scalar<std::int8_t>(t, dw ? d::activation : c::activation, 0, "fused_activation_function"));
  o.dilation_w = r.scalar<std::int32_t>(t, dw ? d::dilation_w : c::dilation_w, 1, "dilation_w_factor");
  o.dilation_h = r.scalar<std::int32_t>(t, dw ? d::dilation_h : c::dilation_h, 1, "dilation_h_factor");
  if (dw) {
    o.depth_multiplier = r.scalar<std::int32_t>(t, d::depth_multiplier, 0, "depth_multiplier");
    return r.status();
  }
  return detail::check_bias_type(r, op, c::quantized_bias_type);
}

inline Status read_pool_options(const Model& m, const OperatorInfo& op, PoolOptions& o) {
  fb::Reader r(m.bytes(), m.size());
  Status s = detail::options_reader_check(m, op, OptionsType::Pool2DOptions, r);
  if (!s.ok()) return s;
  namespace f = field::pool2d;
  const fb::Table& t = op.options;
  o.padding = static_cast<Padding>(r.scalar<std::int8_t>(t, f::padding, 0, "padding"));
  o.stride_w = r.scalar<std::int32_t>(t, f::stride_w, 0, "stride_w");
  o.stride_h = r.scalar<std::int32_t>(t, f::stride_h, 0, "stride_h");
  o.filter_w = r.scalar<std::int32_t>(t, f::filter_w, 0, "filter_width");
  o.filter_h = r.scalar<std::int32_t>(t, f::filter_h, 0, "filter_height");
  o.activation = static_cast<Activation>(r.scalar<std::int8_t>(t, f::activation, 0, "fused_activation_function"));
  return r.status();
}

inline Status read_fully_connected_options(const Model& m, const OperatorInfo& op, FullyConnectedOptions& o) {
  fb::Reader r(m.bytes(), m.size());
  Status s = detail::options_reader_check(m, op, OptionsType::FullyConnectedOptions, r);
  if (!s.ok()) return s;
  namespace f = field::fully_connected;
  const fb::Table& t = op.options;
  o.activation = static_cast<Activation>(r.scalar<std::int8_t>(t, f::activation, 0, "fused_activation_function"));
  o.weights_format = r.scalar<std::int8_t>(t, f::weights_format, 0, "weights_format");
  o.keep_num_dims = r.scalar<std::uint8_t>(t, f::keep_num_dims, 0, "keep_num_dims") != 0;
  o.asymmetric_quantize_inputs = r.scalar<std::uint8_t>(t, f::asymmetric_quantize_inputs, 0, "asymmetric_quantize_inputs") != 0;
  return detail::check_bias_type(r, op, f::quantized_bias_type);
}

inline Status read_softmax_options(const Model& m, const OperatorInfo& op, SoftmaxOptions& o) {
  fb::Reader r(m.bytes(), m.size());
  Status s = detail::options_reader_check(m, op, OptionsType::SoftmaxOptions, r);
  if (!s.ok()) return s;
  o.beta = r.scalar<float>(op.options, field::softmax::beta, 0.f, "beta");
  return r.status();
}

/// ADD's options (fused activation).
inline Status read_add_options(const Model& m, const OperatorInfo& op, ActivationOptions& o) {
  fb::Reader r(m.bytes(), m.size());
  Status s = detail::options_reader_check(m, op, OptionsType::AddOptions, r);
  if (!s.ok()) return s;
  o.activation = static_cast<Activation>(r.scalar<std::int8_t>(op.options, field::add::activation, 0, "fused_activation_function"));
  return r.status();
}

}  // namespace kiln::tflite
