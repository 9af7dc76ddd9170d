// kiln/tflite/import.hpp — a .tflite int8 model as a kiln model function (run-time import).
//
//   kiln::tflite::Model file;        file.open(bytes, size);          // structure checked
//   kiln::tflite::Imported model;    model.import(file);              // support checked, ops prepared
//   auto net = kiln::compile(std::cref(model));                       // model(x) is a kiln function
//   net.prepare(x);                  net.stats().arena_bytes          // planned before the first run
//   kiln::Tensor<std::int8_t> y = net(x);
//
// Imported::operator() walks the file's operators and calls kiln's int8 front-end
// (ops_int8.hpp) for each, so compile() traces the model into kiln's graph like any C++ model
// and plans, fuses and runs it; kiln::eager runs it op by op. Weights stay where they are (views
// over the model bytes, which must outlive the Imported); what the file stores in another form
// is converted once at import: per-channel scales to floats, biases to aligned int32, depthwise
// filters [1, kh, kw, C*m] to kiln's [C*m, kh, kw, 1].
// The arithmetic is TFLite's (kernels/int8), so outputs equal TFLite's byte for byte.
// Host only (the import allocates); firmware gets the model ahead of time (tools/tflite2kiln).
#pragma once

#include <cstring>
#include <type_traits>
#include <vector>

#include "../ops_int8.hpp"
#include "model.hpp"
#include "options.hpp"
#include "support.hpp"

namespace kiln::tflite {

/// An int8 model imported from a .tflite file, callable as a kiln model function.
class Imported {
 public:
  /// One operator, its options already decoded into kiln's terms.
  struct Step {
    BuiltinOp op = BuiltinOp::ADD;
    int index = 0;                 ///< operator index in the file
    std::int32_t in0 = -1, in1 = -1, out = -1;  ///< tensor indices
    Shape in_shape, out_shape;    ///< of tensors in0 and out
    QuantParams out_quant;
    DType out_dtype = DType::i8;
    FusedActivation act;
    Conv2dOptions conv;
    Pool2dOptions pool;
    float beta = 1.f;
    int perm[kMaxRank] = {};  ///< TRANSPOSE: output dimension i is input dimension perm[i]
    // The common int8 operators (support_common_ops.hpp):
    std::vector<std::int32_t> inputs;  ///< CONCATENATION: the input tensors, joined in order
    int axis = 0;                      ///< CONCATENATION
    std::uint32_t axes = 0;            ///< MEAN: the averaged dimensions (bit mask)
    bool keep_dims = false;            ///< MEAN
    index_t lo[kMaxRank] = {}, hi[kMaxRank] = {};  ///< PAD: before, after; STRIDED_SLICE: start, count
    index_t stride[kMaxRank] = {};                 ///< STRIDED_SLICE: step (negative: backwards)
    TensorView<const std::int8_t> weights;
    TensorView<const float> scales;
    TensorView<const std::int32_t> bias;  ///< data == nullptr: no bias
  };

  Imported() = default;
  Imported(const Imported&) = delete;  // the steps point into this object's own vectors
  Imported& operator=(const Imported&) = delete;

  /// Checks that kiln can run the model (support.hpp) and prepares its steps.
  Status import(const Model& m);

  /// The model as kiln ops on x (the input tensor: int8 with input_quant(), or float32 when
  /// the model starts with QUANTIZE). Returns the int8 output.
  template <class X>
  auto operator()(const X& x) const;

  const Shape& input_shape() const { return input_shape_; }
  DType input_dtype() const { return input_dtype_; }
  QuantParams input_quant() const { return input_quant_; }
  const Shape& output_shape() const { return output_shape_; }
  QuantParams output_quant() const { return output_quant_; }
  const std::vector<Step>& steps() const { return steps_; }
  std::int32_t input_tensor() const { return input_; }
  std::int32_t output_tensor() const { return output_; }

 private:
  Status add_step(const Model& m, const OperatorInfo& op);

  std::vector<Step> steps_;
  // Converted copies the steps' views point into (reserved up front: never reallocated).
  std::vector<std::vector<float>> scales_;
  std::vector<std::vector<std::int32_t>> biases_;
  std::vector<std::vector<std::int8_t>> filters_;
  int num_tensors_ = 0;
  std::int32_t input_ = -1, output_ = -1;
  Shape input_shape_, output_shape_;
  DType input_dtype_ = DType::i8;
  QuantParams input_quant_, output_quant_;
};

// ---- implementation ---------------------------------------------------------------------

/// kiln::permute with a permutation known at run time (its initializer_list has a fixed length).
template <class V>
V permute_by(const V& v, const int* p, int rank) {
  switch (rank) {
    case 1: return permute(v, {p[0]});
    case 2: return permute(v, {p[0], p[1]});
    case 3: return permute(v, {p[0], p[1], p[2]});
    case 4: return permute(v, {p[0], p[1], p[2], p[3]});
    case 5: return permute(v, {p[0], p[1], p[2], p[3], p[4]});
    default: return permute(v, {p[0], p[1], p[2], p[3], p[4], p[5]});
  }
}

/// kiln's quantisation of an int8 tensor of the file (per tensor).
inline QuantParams quant_of(const TensorInfo& t) {
  return t.quant.count ? QuantParams{t.quant.scale(0), static_cast<std::int32_t>(t.quant.zero_point(0))}
                       : QuantParams{};
}

inline FusedActivation fused_activation(Activation a) {
  switch (a) {
    case Activation::RELU: return FusedActivation::relu();
    case Activation::RELU6: return FusedActivation::relu6();
    case Activation::RELU_N1_TO_1: return FusedActivation::clamp(-1.f, 1.f);
    default: return FusedActivation::none();
  }
}

inline Padding2d padding_of(Padding p) { return p == Padding::SAME ? Padding2d::same() : Padding2d(); }

inline Status Imported::add_step(const Model& m, const OperatorInfo& op) {
  Step s;
  s.op = op.op();
  s.index = op.index;
  s.in0 = op.inputs[0];
  s.in1 = op.inputs.size() > 1 ? op.inputs[1] : -1;
  s.out = op.outputs[0];
  const TensorInfo out = m.tensor(s.out);
  s.in_shape = m.tensor(s.in0).shape;
  s.out_shape = out.shape;
  s.out_quant = quant_of(out);
  s.out_dtype = out.type == TensorType::FLOAT32 ? DType::f32 : DType::i8;

  auto weights_and_bias = [&](index_t channels) {
    const TensorInfo w = m.tensor(s.in1);
    std::vector<float> sc(static_cast<std::size_t>(w.quant.count));
    for (int c = 0; c < w.quant.count; ++c) sc[static_cast<std::size_t>(c)] = w.quant.scale(c);
    scales_.push_back(std::move(sc));
    s.scales = TensorView<const float>(scales_.back().data(), Shape{static_cast<index_t>(scales_.back().size())});
    s.weights = TensorView<const std::int8_t>(reinterpret_cast<const std::int8_t*>(w.data), w.shape);
    if (op.inputs.size() > 2 && op.inputs[2] >= 0) {
      const TensorInfo b = m.tensor(op.inputs[2]);
      std::vector<std::int32_t> bias(static_cast<std::size_t>(channels));
      std::memcpy(bias.data(), b.data, bias.size() * sizeof(std::int32_t));  // little-endian host
      biases_.push_back(std::move(bias));
      s.bias = TensorView<const std::int32_t>(biases_.back().data(), Shape{channels});
    }
  };

  switch (s.op) {
    case BuiltinOp::CONV_2D:
    case BuiltinOp::DEPTHWISE_CONV_2D: {
      ConvOptions o;
      if (Status st = read_conv_options(m, op, o); !st) return st;
      s.act = fused_activation(o.activation);
      s.conv = Conv2dOptions()
                   .with_stride(o.stride_h, o.stride_w)
                   .with_dilation(o.dilation_h, o.dilation_w)
                   .with_padding(padding_of(o.padding));
      const index_t channels = s.out_shape[3];
      weights_and_bias(channels);
      if (s.op == BuiltinOp::DEPTHWISE_CONV_2D) {
        // TFLite's [1, kh, kw, C*m] -> kiln's [C*m, kh, kw, 1] (groups = C).
        const Shape ws = s.weights.shape();
        const index_t taps = ws[1] * ws[2];
        std::vector<std::int8_t> f(static_cast<std::size_t>(taps * channels));
        for (index_t t = 0; t < taps; ++t)
          for (index_t c = 0; c < channels; ++c) f[static_cast<std::size_t>(c * taps + t)] = s.weights.data()[t * channels + c];
        filters_.push_back(std::move(f));
        s.weights = TensorView<const std::int8_t>(filters_.back().data(), Shape{channels, ws[1], ws[2], 1});
        s.conv = s.conv.with_groups(static_cast<int>(m.tensor(s.in0).shape[3]));
      }
      break;
    }
    case BuiltinOp::FULLY_CONNECTED: {
      FullyConnectedOptions o;
      if (Status st = read_fully_connected_options(m, op, o); !st) return st;
      s.act = fused_activation(o.activation);
      weights_and_bias(m.tensor(s.in1).shape[0]);
      break;
    }
    case BuiltinOp::AVERAGE_POOL_2D:
    case BuiltinOp::MAX_POOL_2D: {
      PoolOptions o;
      if (Status st = read_pool_options(m, op, o); !st) return st;
      s.act = fused_activation(o.activation);
      s.pool = Pool2dOptions(o.filter_h, o.filter_w).with_stride(o.stride_h, o.stride_w).with_padding(padding_of(o.padding));
      break;
    }
    case BuiltinOp::ADD: {
      ActivationOptions o;
      if (Status st = read_add_options(m, op, o); !st) return st;
      s.act = fused_activation(o.activation);
      break;
    }
    case BuiltinOp::SOFTMAX: {
      SoftmaxOptions o;
      if (Status st = read_softmax_options(m, op, o); !st) return st;
      s.beta = o.beta;
      break;
    }
    case BuiltinOp::TRANSPOSE:
      for (int i = 0; i < s.in_shape.rank(); ++i) std::memcpy(&s.perm[i], m.tensor(s.in1).data + 4 * i, 4);
      break;
    case BuiltinOp::MUL: {
      fb::Reader r(m.bytes(), m.size());
      s.act = fused_activation(static_cast<Activation>(
          r.scalar<std::int8_t>(op.options, field::mul::activation, 0, "fused_activation_function")));
      if (!r.ok()) return r.status();
      break;
    }
    case BuiltinOp::MEAN:
      if (Status st = detail::mean_axes(m, op, s.axes, s.keep_dims); !st) return st;
      break;
    case BuiltinOp::PAD:
      if (Status st = detail::pad_amounts(m, op, s.lo, s.hi); !st) return st;
      break;
    case BuiltinOp::CONCATENATION:
      if (Status st = detail::concat_axis(m, op, s.axis); !st) return st;
      for (int j = 0; j < op.inputs.size(); ++j) s.inputs.push_back(op.inputs[j]);
      break;
    case BuiltinOp::STRIDED_SLICE: {
      SliceSpec spec;
      if (Status st = detail::strided_slice_spec(m, op, spec); !st) return st;
      for (int d = 0; d < s.in_shape.rank(); ++d) {
        s.lo[d] = spec.start[d];
        s.hi[d] = spec.count[d];
        s.stride[d] = spec.step[d];
      }
      break;
    }
    default: break;  // RESHAPE, QUANTIZE, DEQUANTIZE: nothing to decode
  }
  steps_.push_back(s);
  return Status();
}

inline Status Imported::import(const Model& m) {
  steps_.clear();
  scales_.clear();
  biases_.clear();
  filters_.clear();
  num_tensors_ = 0;
  if (Status s = check_supported(m); !s) return s;
  if (m.inputs().size() != 1 || m.outputs().size() != 1)
    return Status(Errc::not_supported) << "tflite import: " << m.inputs().size() << " inputs and "
                                       << m.outputs().size() << " outputs (kiln imports one of each)";
  num_tensors_ = m.num_tensors();
  input_ = m.inputs()[0];
  output_ = m.outputs()[0];
  const TensorInfo in = m.tensor(input_), out = m.tensor(output_);
  if (in.type != TensorType::INT8 && in.type != TensorType::FLOAT32)
    return Status(Errc::not_supported) << "tflite import: model input of type " << tensor_type_name(in.type);
  if (out.type != TensorType::INT8)
    return Status(Errc::not_supported) << "tflite import: model output of type " << tensor_type_name(out.type)
                                       << " (a float output, DEQUANTIZE at the end, is not imported yet)";
  input_shape_ = in.shape;
  input_dtype_ = in.type == TensorType::INT8 ? DType::i8 : DType::f32;
  input_quant_ = quant_of(in);
  output_shape_ = out.shape;
  output_quant_ = quant_of(out);
  const std::size_t n = static_cast<std::size_t>(m.num_operators());
  steps_.reserve(n);
  scales_.reserve(n);
  biases_.reserve(n);
  filters_.reserve(n);
  for (int k = 0; k < m.num_operators(); ++k)
    if (Status s = add_step(m, m.op(k)); !s) return s;
  return Status();
}

template <class X>
auto Imported::operator()(const X& x) const {
  using V8 = kiln::detail::result_t<std::int8_t, X>;
  using VF = kiln::detail::result_t<float, X>;
  std::vector<V8> q(static_cast<std::size_t>(num_tensors_));
  std::vector<VF> f(static_cast<std::size_t>(num_tensors_));  // float values (QUANTIZE/DEQUANTIZE)
  auto at = [](auto& vec, std::int32_t t) -> auto& { return vec[static_cast<std::size_t>(t)]; };
  if constexpr (std::is_same_v<VF, X>) {  // symbolic (any dtype) or a float tensor
    if (input_dtype_ == DType::f32) at(f, input_) = x;
    else at(q, input_) = as_quantized(x, input_quant_);
  } else {
    at(q, input_) = as_quantized(x, input_quant_);
  }
  for (const Step& s : steps_) {
    switch (s.op) {
      case BuiltinOp::CONV_2D:
      case BuiltinOp::DEPTHWISE_CONV_2D:
        at(q, s.out) = s.bias.data() ? qconv2d(at(q, s.in0), s.weights, s.scales, s.bias, s.out_quant, s.conv, s.act)
                                     : qconv2d(at(q, s.in0), s.weights, s.scales, s.out_quant, s.conv, s.act);
        break;
      case BuiltinOp::FULLY_CONNECTED: {
        // TFLite flattens the input to [numel / K, K]; kiln's qlinear takes [..., K].
        const V8& in = at(q, s.in0);
        const index_t k = s.weights.shape()[1];
        const V8 rows = s.in_shape.back() == k ? in : reshape(in, Shape{s.in_shape.numel() / k, k});
        V8 y = s.bias.data() ? qlinear(rows, s.weights, s.scales, s.bias, s.out_quant, s.act)
                             : qlinear(rows, s.weights, s.scales, s.out_quant, s.act);
        at(q, s.out) = y.shape() == s.out_shape ? y : reshape(y, s.out_shape);
        break;
      }
      case BuiltinOp::AVERAGE_POOL_2D: at(q, s.out) = qavg_pool2d(at(q, s.in0), s.pool, s.act); break;
      case BuiltinOp::MAX_POOL_2D: at(q, s.out) = qmax_pool2d(at(q, s.in0), s.pool, s.act); break;
      case BuiltinOp::ADD: at(q, s.out) = qadd(at(q, s.in0), at(q, s.in1), s.out_quant, s.act); break;
      case BuiltinOp::RESHAPE: at(q, s.out) = reshape(at(q, s.in0), s.out_shape); break;
      case BuiltinOp::SOFTMAX: at(q, s.out) = qsoftmax(at(q, s.in0), s.beta); break;
      case BuiltinOp::TRANSPOSE: at(q, s.out) = permute_by(at(q, s.in0), s.perm, s.in_shape.rank()); break;
      case BuiltinOp::QUANTIZE: at(q, s.out) = quantize(at(f, s.in0), s.out_quant); break;
      case BuiltinOp::DEQUANTIZE: at(f, s.out) = dequantize(at(q, s.in0)); break;
      case BuiltinOp::MUL: at(q, s.out) = qmul(at(q, s.in0), at(q, s.in1), s.out_quant, s.act); break;
      case BuiltinOp::LOGISTIC: at(q, s.out) = qlogistic(at(q, s.in0)); break;
      case BuiltinOp::TANH: at(q, s.out) = qtanh(at(q, s.in0)); break;
      case BuiltinOp::HARD_SWISH: at(q, s.out) = qhard_swish(at(q, s.in0), s.out_quant); break;
      case BuiltinOp::MEAN: at(q, s.out) = qmean(at(q, s.in0), s.axes, s.out_quant, s.keep_dims); break;
      case BuiltinOp::PAD: {  // one qpad per padded dimension
        V8 v = at(q, s.in0);
        for (int d = 0; d < s.in_shape.rank(); ++d)
          if (s.lo[d] || s.hi[d]) v = qpad(v, d, s.lo[d], s.hi[d]);
        at(q, s.out) = v;
        break;
      }
      case BuiltinOp::CONCATENATION: {  // inputs joined two at a time
        V8 v = at(q, s.inputs[0]);
        for (std::size_t j = 1; j < s.inputs.size(); ++j) v = qconcat(v, at(q, s.inputs[j]), s.axis, s.out_quant);
        at(q, s.out) = v;
        break;
      }
      case BuiltinOp::STRIDED_SLICE: {  // one qslice per sliced dimension, then the file's shape
        V8 v = at(q, s.in0);
        for (int d = 0; d < s.in_shape.rank(); ++d)
          if (s.lo[d] != 0 || s.hi[d] != s.in_shape[d] || s.stride[d] != 1) v = qslice(v, d, s.lo[d], s.hi[d], s.stride[d]);
        at(q, s.out) = v.shape() == s.out_shape ? v : reshape(v, s.out_shape);
        break;
      }
      default: break;  // import() accepted only the cases above
    }
  }
  return at(q, output_);
}

}  // namespace kiln::tflite
