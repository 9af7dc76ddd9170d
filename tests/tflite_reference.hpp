// Test helper: a .tflite model run layer by layer through kiln's int8 kernels (kernels/int8), in
// file order, each operator's integers derived from the float scales by kiln::quant. The oracle
// for the MLPerf Tiny models (test_int8_models) and for synthetic models (test_tflite_import):
// independent of kiln's graph, passes and runtime; the reader is kiln's (kiln/tflite.hpp).
#pragma once

#include <doctest/doctest.h>

#include <kiln/kernels/int8.hpp>
#include <kiln/tflite.hpp>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tflite_models.hpp"

namespace kiln_test::ref {

using kiln::index_t;
using kiln::Shape;
namespace k8 = kiln::kernels::int8;
namespace q = kiln::quant;
namespace tfl = kiln::tflite;


struct Model {
  std::vector<std::uint8_t> bytes;
  tfl::Model view;
  int input = 0, output = 0;

  void load(const std::string& path) {
    load_bytes(kiln_test::read_bytes(path));
    REQUIRE_MESSAGE(!bytes.empty(), path);
  }
  void load_bytes(std::vector<std::uint8_t> b) {
    bytes = std::move(b);
    const kiln::Status st = view.open(bytes.data(), bytes.size());
    REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
    const kiln::Status sup = tfl::check_supported(view);
    REQUIRE_MESSAGE(sup.ok(), std::string(sup.message()));
    REQUIRE(view.inputs().size() == 1);
    REQUIRE(view.outputs().size() == 1);
    input = view.inputs()[0];
    output = view.outputs()[0];
  }
  const std::uint8_t* data(int tensor) const { return view.tensor(tensor).data; }
  q::TensorQuant quant(int tensor) const {
    const tfl::TensorInfo t = view.tensor(tensor);
    return {t.quant.scale(0), static_cast<std::int32_t>(t.quant.zero_point(0))};
  }
  Shape shape(int tensor) const { return view.tensor(tensor).shape; }
};

inline q::Activation activation(tfl::Activation fused) {
  switch (fused) {
    case tfl::Activation::RELU: return q::Activation::relu;
    case tfl::Activation::RELU_N1_TO_1: return q::Activation::relu_n1_to_1;
    case tfl::Activation::RELU6: return q::Activation::relu6;
    default: return q::Activation::none;
  }
}

inline k8::Window2D window(tfl::Padding padding, index_t in_h, index_t in_w, index_t kh, index_t kw, index_t sh, index_t sw,
                    index_t dh, index_t dw) {
  if (padding == tfl::Padding::SAME) return k8::same_window(in_h, in_w, kh, kw, sh, sw, dh, dw);
  return k8::Window2D{sh, sw, dh, dw, 0, 0, 0, 0};
}

// Runs the model on one input (int8, or float32 for a model starting with QUANTIZE), operators
// in file order; returns the output bytes.
inline std::vector<std::int8_t> run(const Model& m, const std::vector<std::int8_t>& input,
                                    const std::vector<float>& float_input = {}) {
  std::map<int, std::vector<std::int8_t>> act;
  std::map<int, std::vector<float>> act_f;
  act[m.input] = input;
  act_f[m.input] = float_input;
  for (int k = 0; k < m.view.num_operators(); ++k) {
    const tfl::OperatorInfo op = m.view.op(k);
    const int out = op.outputs[0];
    const Shape out_shape = m.shape(out);
    std::vector<std::int8_t> y(static_cast<std::size_t>(out_shape.numel()));
    if (op.op() == tfl::BuiltinOp::QUANTIZE) {  // f32 -> i8 with TFLite's rounding
      const std::vector<float>& xf = act_f.at(op.inputs[0]);
      REQUIRE(xf.size() == y.size());
      q::quantize(xf.data(), y.data(), out_shape.numel(), m.quant(out));
      act[out] = std::move(y);
      continue;
    }
    const std::vector<std::int8_t>& x = act.at(op.inputs[0]);
    const Shape in_shape = m.shape(op.inputs[0]);
    kiln::Status st;
    const tfl::BuiltinOp code = op.op();
    if (code == tfl::BuiltinOp::CONV_2D || code == tfl::BuiltinOp::DEPTHWISE_CONV_2D ||
        code == tfl::BuiltinOp::FULLY_CONNECTED) {
      const int wt = op.inputs[1];
      const int bt = op.inputs.size() > 2 ? op.inputs[2] : -1;
      const auto* w = reinterpret_cast<const std::int8_t*>(m.data(wt));
      std::vector<std::int32_t> bias;
      if (bt >= 0) {
        bias.resize(static_cast<std::size_t>(m.shape(bt).numel()));
        std::memcpy(bias.data(), m.data(bt), bias.size() * 4);
      }
      const index_t channels = out_shape.back();
      const tfl::Quantization wq = m.view.tensor(wt).quant;
      std::vector<float> ws(static_cast<std::size_t>(wq.count));
      for (int c = 0; c < wq.count; ++c) ws[static_cast<std::size_t>(c)] = wq.scale(c);
      std::vector<std::int32_t> mult(static_cast<std::size_t>(channels)), shift(mult.size());
      q::conv_output_multipliers(m.quant(op.inputs[0]), {ws.data(), static_cast<index_t>(ws.size())}, m.quant(out),
                                 channels, mult.data(), shift.data());
      k8::OutputStage os;
      os.multiplier = mult.data();
      os.shift = shift.data();
      os.output_offset = m.quant(out).zero_point;
      tfl::ConvOptions co;
      tfl::FullyConnectedOptions fo;
      if (code == tfl::BuiltinOp::FULLY_CONNECTED) {
        REQUIRE(tfl::read_fully_connected_options(m.view, op, fo).ok());
      } else {
        REQUIRE(tfl::read_conv_options(m.view, op, co).ok());
      }
      const tfl::Activation fused = code == tfl::BuiltinOp::FULLY_CONNECTED ? fo.activation : co.activation;
      const q::ActivationRange r = q::activation_range(activation(fused), m.quant(out));
      os.act_min = r.min;
      os.act_max = r.max;
      const std::int32_t in_off = -m.quant(op.inputs[0]).zero_point;
      const Shape ws_shape = m.shape(wt);
      const std::int32_t* bp = bias.empty() ? nullptr : bias.data();
      if (code == tfl::BuiltinOp::FULLY_CONNECTED) {
        k8::FullyConnectedParams p;
        p.input_offset = in_off;
        p.output = os;
        const index_t n_in = ws_shape[1];
        st = k8::fully_connected(p, Shape{in_shape.numel() / n_in, n_in}, x.data(), ws_shape, w, bp,
                                 Shape{in_shape.numel() / n_in, channels}, y.data());
      } else {
        const k8::Window2D win = window(co.padding, in_shape[1], in_shape[2], ws_shape[1], ws_shape[2], co.stride_h,
                                        co.stride_w, co.dilation_h, co.dilation_w);
        if (code == tfl::BuiltinOp::CONV_2D) {
          k8::Conv2DParams p;
          p.window = win;
          p.input_offset = in_off;
          p.output = os;
          st = k8::conv2d(p, in_shape, x.data(), ws_shape, w, bp, out_shape, y.data());
        } else {
          k8::DepthwiseConv2DParams p;
          p.window = win;
          p.depth_multiplier = out_shape[3] / in_shape[3];  // as TFLite derives it (the option can be stale)
          p.input_offset = in_off;
          p.output = os;
          st = k8::depthwise_conv2d(p, in_shape, x.data(), ws_shape, w, bp, out_shape, y.data());
        }
      }
    } else if (code == tfl::BuiltinOp::AVERAGE_POOL_2D || code == tfl::BuiltinOp::MAX_POOL_2D) {
      tfl::PoolOptions po;
      REQUIRE(tfl::read_pool_options(m.view, op, po).ok());
      const q::ActivationRange r = q::activation_range(activation(po.activation), m.quant(out));
      k8::Pool2DParams p;
      p.filter_h = po.filter_h;
      p.filter_w = po.filter_w;
      p.window = window(po.padding, in_shape[1], in_shape[2], po.filter_h, po.filter_w, po.stride_h, po.stride_w, 1, 1);
      p.act_min = r.min;
      p.act_max = r.max;
      st = code == tfl::BuiltinOp::AVERAGE_POOL_2D ? k8::avg_pool2d(p, in_shape, x.data(), out_shape, y.data())
                                                   : k8::max_pool2d(p, in_shape, x.data(), out_shape, y.data());
    } else if (code == tfl::BuiltinOp::RESHAPE) {  // same bytes
      y = x;
    } else if (code == tfl::BuiltinOp::TRANSPOSE) {  // out[i0..] = in[i_perm^-1]: an index loop
      const int r = in_shape.rank();
      std::int32_t perm[kiln::kMaxRank] = {};
      std::memcpy(perm, m.data(op.inputs[1]), 4 * static_cast<std::size_t>(r));
      index_t in_stride[kiln::kMaxRank], idx[kiln::kMaxRank] = {};
      for (int d = r - 1, st = 1; d >= 0; --d) {
        in_stride[d] = st;
        st *= static_cast<int>(in_shape[d]);
      }
      for (std::size_t o = 0; o < y.size(); ++o) {
        index_t src = 0;
        for (int d = 0; d < r; ++d) src += idx[d] * in_stride[perm[d]];
        y[o] = x[static_cast<std::size_t>(src)];
        for (int d = r - 1; d >= 0 && ++idx[d] == out_shape[d]; --d) idx[d] = 0;  // next output index
      }
    } else if (code == tfl::BuiltinOp::SOFTMAX) {
      tfl::SoftmaxOptions so;
      REQUIRE(tfl::read_softmax_options(m.view, op, so).ok());
      st = k8::softmax(k8::make_softmax_params(so.beta, m.quant(op.inputs[0]).scale), in_shape, x.data(), out_shape,
                       y.data());
    } else if (code == tfl::BuiltinOp::ADD) {
      tfl::ActivationOptions ao;
      REQUIRE(tfl::read_add_options(m.view, op, ao).ok());
      const q::ActivationRange r = q::activation_range(activation(ao.activation), m.quant(out));
      const k8::AddParams p = k8::make_add_params(m.quant(op.inputs[0]), m.quant(op.inputs[1]), m.quant(out), r);
      st = k8::add(p, in_shape, x.data(), m.shape(op.inputs[1]), act.at(op.inputs[1]).data(), out_shape, y.data());
    } else {
      FAIL("operator " << op.name() << " not handled by this harness");
    }
    REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
    act[out] = std::move(y);
  }
  return act.at(m.output);
}

}  // namespace kiln_test::ref
