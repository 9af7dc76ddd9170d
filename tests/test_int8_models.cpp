// The four MLPerf Tiny int8 models run layer by layer through kiln's int8 kernels and compared
// byte for byte with TFLite Micro's outputs (/work/shared/models/reference, inputs A and B).
//
// This is a test harness, not the TFLite importer: a minimal flatbuffer reader below pulls the
// tensors, quantisation parameters and operator options the kernels need, and a loop runs the
// operators in file order. The integer parameters are derived from the float scales with
// kiln::quant, so the whole path (multipliers, activation ranges, kernels) is checked.
// Models are looked up in $KILN_MODELS_DIR, else /work/shared/models; when absent the test says
// so and checks nothing.
#include <doctest/doctest.h>

#include <kiln/kernels/int8.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using kiln::index_t;
using kiln::Shape;
namespace k8 = kiln::kernels::int8;
namespace q = kiln::quant;

namespace {

// ---- minimal flatbuffer access (little-endian host) ---------------------------------------
struct Fb {
  std::vector<std::uint8_t> b;
  template <class T>
  T at(std::size_t p) const {
    T v;
    std::memcpy(&v, b.data() + p, sizeof(T));
    return v;
  }
  std::size_t deref(std::size_t p) const { return p + at<std::uint32_t>(p); }
  // Position of field i of the table at p, or 0 when absent.
  std::size_t field(std::size_t table, int i) const {
    const std::size_t vt = table - static_cast<std::size_t>(at<std::int32_t>(table));
    const std::uint16_t vlen = at<std::uint16_t>(vt);
    const std::size_t o = 4 + 2 * static_cast<std::size_t>(i);
    if (o >= vlen) return 0;
    const std::uint16_t off = at<std::uint16_t>(vt + o);
    return off ? table + off : 0;
  }
  template <class T>
  T scalar(std::size_t table, int i, T dflt) const {
    if (!table) return dflt;  // absent options table
    const std::size_t p = field(table, i);
    return p ? at<T>(p) : dflt;
  }
  std::size_t table_field(std::size_t table, int i) const {
    const std::size_t p = field(table, i);
    return p ? deref(p) : 0;
  }
  // Vector field: (position of element 0, length).
  std::pair<std::size_t, std::size_t> vec(std::size_t table, int i) const {
    const std::size_t p = field(table, i);
    if (!p) return {0, 0};
    const std::size_t v = deref(p);
    return {v + 4, at<std::uint32_t>(v)};
  }
};

struct TensorInfo {
  std::vector<index_t> shape;
  int type = 0;  // TensorType: 0 f32, 2 i32, 9 i8
  std::uint32_t buffer = 0;
  std::vector<float> scales;
  std::vector<std::int64_t> zps;
};

struct OpInfo {
  int code = 0;
  std::vector<int> inputs, outputs;
  std::size_t options = 0;  // builtin options table (0: none)
};

struct Model {
  Fb fb;
  std::vector<TensorInfo> tensors;
  std::vector<OpInfo> ops;
  std::vector<std::pair<std::size_t, std::size_t>> buffers;  // (position, size) of each buffer's data
  int input = 0, output = 0;

  bool load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    fb.b.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    const std::size_t model = fb.deref(0);
    std::vector<int> opcodes;
    auto [oc, noc] = fb.vec(model, 1);
    for (std::size_t k = 0; k < noc; ++k) {
      const std::size_t t = fb.deref(oc + 4 * k);
      const int deprecated = fb.scalar<std::int8_t>(t, 0, 0);
      const int code = fb.scalar<std::int32_t>(t, 3, 0);
      opcodes.push_back(code > deprecated ? code : deprecated);
    }
    auto [bv, nb] = fb.vec(model, 4);
    for (std::size_t k = 0; k < nb; ++k) {
      const auto d = fb.vec(fb.deref(bv + 4 * k), 0);
      buffers.push_back(d);
    }
    auto [sgv, nsg] = fb.vec(model, 2);
    REQUIRE(nsg == 1);
    const std::size_t sg = fb.deref(sgv);
    auto [tv, nt] = fb.vec(sg, 0);
    for (std::size_t k = 0; k < nt; ++k) {
      const std::size_t t = fb.deref(tv + 4 * k);
      TensorInfo ti;
      auto [sv, ns] = fb.vec(t, 0);
      for (std::size_t j = 0; j < ns; ++j) ti.shape.push_back(fb.at<std::int32_t>(sv + 4 * j));
      ti.type = fb.scalar<std::int8_t>(t, 1, 0);
      ti.buffer = fb.scalar<std::uint32_t>(t, 2, 0);
      if (const std::size_t qp = fb.table_field(t, 4)) {
        auto [scv, nsc] = fb.vec(qp, 2);
        for (std::size_t j = 0; j < nsc; ++j) ti.scales.push_back(fb.at<float>(scv + 4 * j));
        auto [zv, nz] = fb.vec(qp, 3);
        for (std::size_t j = 0; j < nz; ++j) ti.zps.push_back(fb.at<std::int64_t>(zv + 8 * j));
      }
      tensors.push_back(ti);
    }
    input = fb.at<std::int32_t>(fb.vec(sg, 1).first);
    output = fb.at<std::int32_t>(fb.vec(sg, 2).first);
    auto [ov, no] = fb.vec(sg, 3);
    for (std::size_t k = 0; k < no; ++k) {
      const std::size_t o = fb.deref(ov + 4 * k);
      OpInfo op;
      op.code = opcodes[fb.scalar<std::uint32_t>(o, 0, 0)];
      auto [iv, ni] = fb.vec(o, 1);
      for (std::size_t j = 0; j < ni; ++j) op.inputs.push_back(fb.at<std::int32_t>(iv + 4 * j));
      auto [outv, nout] = fb.vec(o, 2);
      for (std::size_t j = 0; j < nout; ++j) op.outputs.push_back(fb.at<std::int32_t>(outv + 4 * j));
      op.options = fb.table_field(o, 4);
      ops.push_back(op);
    }
    return true;
  }

  const std::uint8_t* data(int tensor) const {
    const auto& d = buffers[tensors[static_cast<std::size_t>(tensor)].buffer];
    return d.second ? fb.b.data() + d.first : nullptr;
  }
  q::TensorQuant quant(int tensor) const {
    const TensorInfo& t = tensors[static_cast<std::size_t>(tensor)];
    return {t.scales.at(0), static_cast<std::int32_t>(t.zps.at(0))};
  }
  Shape shape(int tensor) const {
    const auto& s = tensors[static_cast<std::size_t>(tensor)].shape;
    return Shape::from(s.data(), static_cast<int>(s.size()));
  }
};

q::Activation activation(int fused) {
  switch (fused) {
    case 1: return q::Activation::relu;
    case 2: return q::Activation::relu_n1_to_1;
    case 3: return q::Activation::relu6;
    default: return q::Activation::none;
  }
}

// Window from TFLite's padding enum (0 SAME, 1 VALID).
k8::Window2D window(int padding, index_t in_h, index_t in_w, index_t kh, index_t kw, index_t sh, index_t sw,
                    index_t dh, index_t dw) {
  if (padding == 0) return k8::same_window(in_h, in_w, kh, kw, sh, sw, dh, dw);
  return k8::Window2D{sh, sw, dh, dw, 0, 0, 0, 0};
}

// Runs the model on one input; returns the output bytes.
std::vector<std::int8_t> run(const Model& m, const std::vector<std::int8_t>& input) {
  std::map<int, std::vector<std::int8_t>> act;
  act[m.input] = input;
  for (const OpInfo& op : m.ops) {
    const int out = op.outputs.at(0);
    const Shape out_shape = m.shape(out);
    std::vector<std::int8_t> y(static_cast<std::size_t>(out_shape.numel()));
    const std::vector<std::int8_t>& x = act.at(op.inputs.at(0));
    const Shape in_shape = m.shape(op.inputs[0]);
    kiln::Status st;
    const auto& fb = m.fb;
    if (op.code == 3 || op.code == 4 || op.code == 9) {  // CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
      const int wt = op.inputs.at(1);
      const int bt = op.inputs.size() > 2 ? op.inputs[2] : -1;
      const auto* w = reinterpret_cast<const std::int8_t*>(m.data(wt));
      std::vector<std::int32_t> bias;
      if (bt >= 0) {
        bias.resize(static_cast<std::size_t>(m.shape(bt).numel()));
        std::memcpy(bias.data(), m.data(bt), bias.size() * 4);
      }
      const index_t channels = out_shape.back();
      const auto& ws = m.tensors[static_cast<std::size_t>(wt)].scales;
      std::vector<std::int32_t> mult(static_cast<std::size_t>(channels)), shift(mult.size());
      q::conv_output_multipliers(m.quant(op.inputs[0]), {ws.data(), static_cast<index_t>(ws.size())}, m.quant(out),
                                 channels, mult.data(), shift.data());
      k8::OutputStage os;
      os.multiplier = mult.data();
      os.shift = shift.data();
      os.output_offset = m.quant(out).zero_point;
      const int fused = fb.scalar<std::int8_t>(op.options, op.code == 4 ? 4 : (op.code == 9 ? 0 : 3), 0);
      const q::ActivationRange r = q::activation_range(activation(fused), m.quant(out));
      os.act_min = r.min;
      os.act_max = r.max;
      const std::int32_t in_off = -m.quant(op.inputs[0]).zero_point;
      const Shape ws_shape = m.shape(wt);
      const std::int32_t* bp = bias.empty() ? nullptr : bias.data();
      if (op.code == 9) {
        k8::FullyConnectedParams p;
        p.input_offset = in_off;
        p.output = os;
        const index_t n_in = ws_shape[1];
        st = k8::fully_connected(p, Shape{in_shape.numel() / n_in, n_in}, x.data(), ws_shape, w, bp,
                                 Shape{in_shape.numel() / n_in, channels}, y.data());
      } else {
        const int pad = fb.scalar<std::int8_t>(op.options, 0, 0);
        const index_t sw = fb.scalar<std::int32_t>(op.options, 1, 1), sh = fb.scalar<std::int32_t>(op.options, 2, 1);
        const int dil_field = op.code == 4 ? 5 : 4;
        const index_t dw = fb.scalar<std::int32_t>(op.options, dil_field, 1);
        const index_t dh = fb.scalar<std::int32_t>(op.options, dil_field + 1, 1);
        const k8::Window2D win = window(pad, in_shape[1], in_shape[2], ws_shape[1], ws_shape[2], sh, sw, dh, dw);
        if (op.code == 3) {
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
    } else if (op.code == 1 || op.code == 17) {  // AVERAGE_POOL_2D, MAX_POOL_2D
      const int pad = fb.scalar<std::int8_t>(op.options, 0, 0);
      const index_t sw = fb.scalar<std::int32_t>(op.options, 1, 1), sh = fb.scalar<std::int32_t>(op.options, 2, 1);
      const index_t fw = fb.scalar<std::int32_t>(op.options, 3, 1), fh = fb.scalar<std::int32_t>(op.options, 4, 1);
      const q::ActivationRange r =
          q::activation_range(activation(fb.scalar<std::int8_t>(op.options, 5, 0)), m.quant(out));
      k8::Pool2DParams p;
      p.filter_h = fh;
      p.filter_w = fw;
      p.window = window(pad, in_shape[1], in_shape[2], fh, fw, sh, sw, 1, 1);
      p.act_min = r.min;
      p.act_max = r.max;
      st = op.code == 1 ? k8::avg_pool2d(p, in_shape, x.data(), out_shape, y.data())
                        : k8::max_pool2d(p, in_shape, x.data(), out_shape, y.data());
    } else if (op.code == 22) {  // RESHAPE: same bytes
      y = x;
    } else if (op.code == 25) {  // SOFTMAX
      const float beta = op.options ? fb.scalar<float>(op.options, 0, 1.f) : 1.f;
      st = k8::softmax(k8::make_softmax_params(beta, m.quant(op.inputs[0]).scale), in_shape, x.data(), out_shape, y.data());
    } else if (op.code == 0) {  // ADD
      const q::ActivationRange r =
          q::activation_range(activation(fb.scalar<std::int8_t>(op.options, 0, 0)), m.quant(out));
      const k8::AddParams p = k8::make_add_params(m.quant(op.inputs[0]), m.quant(op.inputs[1]), m.quant(out), r);
      st = k8::add(p, in_shape, x.data(), m.shape(op.inputs[1]), act.at(op.inputs[1]).data(), out_shape, y.data());
    } else {
      FAIL("operator code " << op.code << " not handled by this harness");
    }
    REQUIRE_MESSAGE(st.ok(), st.message());
    act[out] = std::move(y);
  }
  return act.at(m.output);
}

std::string hex(const std::vector<std::int8_t>& v) {
  std::string s;
  const char* d = "0123456789abcdef";
  for (std::int8_t c : v) {
    const auto u = static_cast<std::uint8_t>(c);
    s += d[u >> 4];
    s += d[u & 15];
  }
  return s;
}

}  // namespace

TEST_CASE("MLPerf Tiny int8 models: kiln's kernels give TFLite Micro's output bytes") {
  const char* env = std::getenv("KILN_MODELS_DIR");
  const std::string dir = env ? env : "/work/shared/models";
  std::ifstream tsv(dir + "/reference/expected_outputs_tflm.tsv");
  if (!tsv) {
    MESSAGE("no models at " << dir << " (set KILN_MODELS_DIR): nothing checked");
    return;
  }
  std::map<std::string, std::string> expected;
  std::string line;
  std::getline(tsv, line);  // header
  while (std::getline(tsv, line)) {
    std::istringstream ls(line);
    std::string model, input, out;
    ls >> model >> input >> out;
    expected[model + input] = out;
  }
  const std::pair<const char*, const char*> models[] = {
      {"ad", "ad01_int8.tflite"}, {"kws", "kws_ref_model.tflite"}, {"ic", "pretrainedResnet_quant.tflite"},
      {"vww", "vww_96_int8.tflite"}};
  for (const auto& entry : models) {
    // Plain variables, not a structured binding: clang 14 cannot capture those in doctest's lambdas.
    const std::string name = entry.first, file = entry.second;
    Model m;
    REQUIRE_MESSAGE(m.load(dir + "/" + file), file);
    const index_t n = m.shape(m.input).numel();
    // Input A from its hex file; input B: every byte the input zero point.
    std::vector<std::int8_t> a, b(static_cast<std::size_t>(n), static_cast<std::int8_t>(m.quant(m.input).zero_point));
    std::ifstream hx(dir + "/reference/" + name + "_inputA.hex");
    std::string tok, all;
    while (hx >> tok) all += tok;
    REQUIRE(all.size() == static_cast<std::size_t>(2 * n));
    for (std::size_t i = 0; i < all.size(); i += 2)
      a.push_back(static_cast<std::int8_t>(std::stoul(all.substr(i, 2), nullptr, 16)));
    INFO("model " << name << " (" << m.ops.size() << " operators)");
    CHECK(hex(run(m, a)) == expected.at(name + "A"));
    CHECK(hex(run(m, b)) == expected.at(name + "B"));
  }
}
