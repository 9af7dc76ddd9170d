// kiln/tflite/schema.hpp — the subset of TFLite's schema (schema.fbs, version 3) kiln reads.
//
// Field ids are the positions of the fields in schema.fbs's tables (a union takes two ids:
// its type byte, then its table). Enum values and names are the schema's own, so messages
// name operators as TFLite and its converter do.
#pragma once

#include <cstdint>

namespace kiln::tflite {

/// BuiltinOperator codes kiln refers to by name (the full name table is builtin_op_name()).
enum class BuiltinOp : std::int32_t {
  ADD = 0,
  AVERAGE_POOL_2D = 1,
  CONCATENATION = 2,
  CONV_2D = 3,
  DEPTHWISE_CONV_2D = 4,
  DEQUANTIZE = 6,
  FULLY_CONNECTED = 9,
  LOGISTIC = 14,
  MAX_POOL_2D = 17,
  MUL = 18,
  RESHAPE = 22,
  SOFTMAX = 25,
  TANH = 28,
  CUSTOM = 32,
  PAD = 34,
  TRANSPOSE = 39,
  MEAN = 40,
  STRIDED_SLICE = 45,
  QUANTIZE = 114,
  HARD_SWISH = 117,
  PLACEHOLDER_FOR_GREATER_OP_CODES = 127,
};

namespace detail {
inline constexpr const char* kBuiltinOpNames[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
    "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION",
    "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D",
    "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX",
    "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM",
    "EMBEDDING_LOOKUP_SPARSE", "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2",
    "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE",
    "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN",
    "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND",
    "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL",
    "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD",
    "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK", "ELU",
    "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF", "WHILE",
    "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM",
    "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO", "RFFT2D",
    "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND", "HASHTABLE_IMPORT",
    "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
    "BROADCAST_ARGS", "RANDOM_STANDARD_NORMAL", "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL", "GELU",
    "DYNAMIC_UPDATE_SLICE", "RELU_0_TO_1", "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX",
    "UNSORTED_SEGMENT_SUM", "ATAN2", "UNSORTED_SEGMENT_MIN", "SIGN", "BITCAST", "BITWISE_XOR",
    "RIGHT_SHIFT",
};
}  // namespace detail

/// TFLite's name of a builtin operator code ("CONV_2D"), or nullptr for a code this table
/// does not know (a newer schema).
constexpr const char* builtin_op_name(std::int32_t code) {
  constexpr std::int32_t n = sizeof(detail::kBuiltinOpNames) / sizeof(detail::kBuiltinOpNames[0]);
  return code >= 0 && code < n ? detail::kBuiltinOpNames[code] : nullptr;
}

/// TensorType.
enum class TensorType : std::int8_t {
  FLOAT32 = 0, FLOAT16 = 1, INT32 = 2, UINT8 = 3, INT64 = 4, STRING = 5, BOOL = 6, INT16 = 7,
  COMPLEX64 = 8, INT8 = 9, FLOAT64 = 10, COMPLEX128 = 11, UINT64 = 12, RESOURCE = 13, VARIANT = 14,
  UINT32 = 15, UINT16 = 16, INT4 = 17,
};

constexpr const char* tensor_type_name(TensorType t) {
  constexpr const char* names[] = {"FLOAT32", "FLOAT16", "INT32",   "UINT8",  "INT64",      "STRING",
                                   "BOOL",    "INT16",   "COMPLEX64", "INT8", "FLOAT64",    "COMPLEX128",
                                   "UINT64",  "RESOURCE", "VARIANT", "UINT32", "UINT16",    "INT4"};
  const int i = static_cast<int>(t);
  return i >= 0 && i < 18 ? names[i] : "unknown type";
}

/// Bytes per element of a fixed-size type; 0 for STRING, RESOURCE, VARIANT, INT4 (packed)
/// and unknown values.
constexpr int tensor_type_bytes(TensorType t) {
  switch (t) {
    case TensorType::BOOL: case TensorType::UINT8: case TensorType::INT8: return 1;
    case TensorType::FLOAT16: case TensorType::INT16: case TensorType::UINT16: return 2;
    case TensorType::FLOAT32: case TensorType::INT32: case TensorType::UINT32: return 4;
    case TensorType::INT64: case TensorType::FLOAT64: case TensorType::UINT64: case TensorType::COMPLEX64: return 8;
    case TensorType::COMPLEX128: return 16;
    default: return 0;
  }
}

/// ActivationFunctionType (fused activations).
enum class Activation : std::int8_t { NONE = 0, RELU = 1, RELU_N1_TO_1 = 2, RELU6 = 3, TANH = 4, SIGN_BIT = 5 };

constexpr const char* activation_name(Activation a) {
  switch (a) {
    case Activation::NONE: return "NONE";
    case Activation::RELU: return "RELU";
    case Activation::RELU_N1_TO_1: return "RELU_N1_TO_1";
    case Activation::RELU6: return "RELU6";
    case Activation::TANH: return "TANH";
    case Activation::SIGN_BIT: return "SIGN_BIT";
  }
  return "unknown activation";
}

/// Padding.
enum class Padding : std::int8_t { SAME = 0, VALID = 1 };

/// BuiltinOptions union: the type byte of the options tables kiln reads.
enum class OptionsType : std::uint8_t {
  NONE = 0,
  Conv2DOptions = 1,
  DepthwiseConv2DOptions = 2,
  Pool2DOptions = 5,
  FullyConnectedOptions = 8,
  SoftmaxOptions = 9,
  ConcatenationOptions = 10,
  AddOptions = 11,
  ReshapeOptions = 17,
  MulOptions = 21,
  PadOptions = 22,
  TransposeOptions = 26,
  ReducerOptions = 27,
  StridedSliceOptions = 32,
  DequantizeOptions = 38,
  QuantizeOptions = 89,
  HardSwishOptions = 91,
};

/// Field ids of the tables kiln reads.
namespace field {
namespace model { inline constexpr int version = 0, operator_codes = 1, subgraphs = 2, description = 3, buffers = 4; }
namespace operator_code { inline constexpr int deprecated_builtin_code = 0, custom_code = 1, version = 2, builtin_code = 3; }
namespace subgraph { inline constexpr int tensors = 0, inputs = 1, outputs = 2, operators = 3, name = 4; }
namespace tensor { inline constexpr int shape = 0, type = 1, buffer = 2, name = 3, quantization = 4, is_variable = 5, sparsity = 6; }
namespace quantization { inline constexpr int min = 0, max = 1, scale = 2, zero_point = 3, details_type = 4, details = 5, quantized_dimension = 6; }
namespace buffer { inline constexpr int data = 0, offset = 1, size = 2; }
namespace op {
inline constexpr int opcode_index = 0, inputs = 1, outputs = 2, builtin_options_type = 3, builtin_options = 4,
             custom_options = 5, custom_options_format = 6, mutating_variable_inputs = 7, intermediates = 8,
             large_custom_options_offset = 9, large_custom_options_size = 10, builtin_options_2_type = 11,
             builtin_options_2 = 12;
}
namespace conv2d { inline constexpr int padding = 0, stride_w = 1, stride_h = 2, activation = 3, dilation_w = 4, dilation_h = 5, quantized_bias_type = 6; }
namespace depthwise { inline constexpr int padding = 0, stride_w = 1, stride_h = 2, depth_multiplier = 3, activation = 4, dilation_w = 5, dilation_h = 6; }
namespace pool2d { inline constexpr int padding = 0, stride_w = 1, stride_h = 2, filter_w = 3, filter_h = 4, activation = 5; }
namespace fully_connected { inline constexpr int activation = 0, weights_format = 1, keep_num_dims = 2, asymmetric_quantize_inputs = 3, quantized_bias_type = 4; }
namespace softmax { inline constexpr int beta = 0; }
namespace add { inline constexpr int activation = 0, pot_scale_int16 = 1; }
namespace concatenation { inline constexpr int axis = 0, activation = 1; }
namespace mul { inline constexpr int activation = 0; }
namespace reducer { inline constexpr int keep_dims = 0; }
}  // namespace field

/// Schema version kiln reads (TFLite files have been version 3 since 2018).
inline constexpr std::uint32_t kSchemaVersion = 3;

}  // namespace kiln::tflite
