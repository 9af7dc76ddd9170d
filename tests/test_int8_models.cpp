// The four MLPerf Tiny int8 models run layer by layer through kiln's int8 kernels and compared
// byte for byte with TFLite Micro's outputs (/work/shared/models/reference, inputs A and B).
//
// The model is read with kiln's TFLite reader (kiln/tflite.hpp: structure and support checked
// first); a loop in this test runs the operators in file order through the int8 kernels, so it
// checks the kernels and the reader independently of the graph import. The integer parameters
// are derived from the float scales with kiln::quant, so the whole path (multipliers,
// activation ranges, kernels) is checked.
// Models are looked up in $KILN_MODELS_DIR, else /work/shared/models; when absent the test says
// so and checks nothing.
#include <doctest/doctest.h>

#include <kiln/kernels/int8.hpp>
#include <kiln/tflite.hpp>

#include "tflite_models.hpp"

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using kiln::index_t;
using kiln::Shape;
namespace k8 = kiln::kernels::int8;
namespace q = kiln::quant;

namespace {

// ---- the model through kiln's TFLite reader ------------------------------------------------
namespace tfl = kiln::tflite;

struct Model {
  std::vector<std::uint8_t> bytes;
  tfl::Model view;
  int input = 0, output = 0;

  void load(const std::string& path) {
    bytes = kiln_test::read_bytes(path);
    REQUIRE_MESSAGE(!bytes.empty(), path);
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

q::Activation activation(tfl::Activation fused) {
  switch (fused) {
    case tfl::Activation::RELU: return q::Activation::relu;
    case tfl::Activation::RELU_N1_TO_1: return q::Activation::relu_n1_to_1;
    case tfl::Activation::RELU6: return q::Activation::relu6;
    default: return q::Activation::none;
  }
}

k8::Window2D window(tfl::Padding padding, index_t in_h, index_t in_w, index_t kh, index_t kw, index_t sh, index_t sw,
                    index_t dh, index_t dw) {
  if (padding == tfl::Padding::SAME) return k8::same_window(in_h, in_w, kh, kw, sh, sw, dh, dw);
  return k8::Window2D{sh, sw, dh, dw, 0, 0, 0, 0};
}

// Runs the model on one input, operators in file order; returns the output bytes.
std::vector<std::int8_t> run(const Model& m, const std::vector<std::int8_t>& input) {
  std::map<int, std::vector<std::int8_t>> act;
  act[m.input] = input;
  for (int k = 0; k < m.view.num_operators(); ++k) {
    const tfl::OperatorInfo op = m.view.op(k);
    const int out = op.outputs[0];
    const Shape out_shape = m.shape(out);
    std::vector<std::int8_t> y(static_cast<std::size_t>(out_shape.numel()));
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

}  // namespace

TEST_CASE("MLPerf Tiny int8 models: kiln's kernels give TFLite Micro's output bytes") {
  const std::string dir = kiln_test::models_dir();
  const std::map<std::string, std::string> expected = kiln_test::tflm_expected_outputs();
  if (expected.empty()) {
    MESSAGE("no models at " << dir << " (set KILN_MODELS_DIR): nothing checked");
    return;
  }
  for (const auto& entry : kiln_test::kMlperfTinyModels) {
    // Plain variables, not a structured binding: clang 14 cannot capture those in doctest's lambdas.
    const std::string name = entry.first, file = entry.second;
    Model m;
    m.load(dir + "/" + file);
    const index_t n = m.shape(m.input).numel();
    // Input A from its hex file; input B: every byte the input zero point.
    const std::vector<std::int8_t> b(static_cast<std::size_t>(n), static_cast<std::int8_t>(m.quant(m.input).zero_point));
    const std::vector<std::int8_t> a = kiln_test::tflm_input_a(name, static_cast<std::size_t>(n));
    REQUIRE(a.size() == static_cast<std::size_t>(n));
    INFO("model " << name << " (" << m.view.num_operators() << " operators)");
    const std::vector<std::int8_t> ya = run(m, a), yb = run(m, b);
    CHECK(kiln_test::hex(ya.data(), ya.size()) == expected.at(name + "A"));
    CHECK(kiln_test::hex(yb.data(), yb.size()) == expected.at(name + "B"));
  }
}
