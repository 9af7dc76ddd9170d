// kiln/ptq/emit.hpp — a quantised model as a C++ header firmware plans at compile time.
//
// The header holds the constants as constexpr arrays (int8 weights, f32 scales, int32 bias, any
// float constants the model keeps), TensorViews over them, the input shape and quantisation, and
// the model as a constexpr generic lambda of kiln's front-end ops, node for node the graph of
// QuantizedModel::graph():
//
//   namespace digits {
//   inline constexpr std::int8_t k2[] = {...};
//   inline constexpr kiln::TensorView<const std::int8_t> K2(k2, kiln::Shape{32, 64});
//   ...
//   inline constexpr kiln::Shape input_shape{1, 64};
//   inline constexpr auto model = [](auto x) { auto v1 = kiln::quantize(x, ...); ...; return v9; };
//   }
//   constexpr kiln::StaticPlan plan = kiln::plan(digits::model, kiln::input<float>(digits::input_shape));
//
// It needs only the front-end (KILN_NO_HEAP builds included). Floats are written with 9
// significant digits, which round-trip exactly. A node with no front-end spelling is an error.
#pragma once

#include <cstdio>
#include <sstream>
#include <string>

#include "model.hpp"

namespace kiln::ptq {

namespace detail {

inline std::string real(float v) {
  if (std::isinf(v)) return v > 0 ? "std::numeric_limits<float>::infinity()" : "-std::numeric_limits<float>::infinity()";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  std::string s(buf);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s + 'f';
}

inline std::string shape(const Shape& s) {
  std::string out = "kiln::Shape{";
  for (int i = 0; i < s.rank(); ++i) out += (i ? ", " : "") + std::to_string(static_cast<long long>(s[i]));
  return out + '}';
}

inline std::string quant(QuantParams q) {
  return "kiln::QuantParams{" + real(q.scale) + ", " + std::to_string(q.zero_point) + '}';
}

inline std::string activation(const Node& n) {
  switch (n.fn) {
    case EwFn::relu: return "kiln::FusedActivation::relu()";
    case EwFn::relu6: return "kiln::FusedActivation::relu6()";
    case EwFn::clamp: return "kiln::FusedActivation::clamp(" + real(n.p0) + ", " + real(n.p1) + ')';
    default: return "kiln::FusedActivation::none()";
  }
}

inline std::string padding(const Window2d& w) {
  return "kiln::Padding2d::sides(" + std::to_string(w.pad_top) + ", " + std::to_string(w.pad_bottom) + ", " +
         std::to_string(w.pad_left) + ", " + std::to_string(w.pad_right) + ')';
}

inline std::string conv_options(const Window2d& w) {
  return "kiln::Conv2dOptions().with_stride(" + std::to_string(w.stride_h) + ", " + std::to_string(w.stride_w) +
         ").with_dilation(" + std::to_string(w.dilation_h) + ", " + std::to_string(w.dilation_w) + ").with_groups(" +
         std::to_string(w.groups) + ").with_padding(" + padding(w) + ')';
}

inline std::string pool_options(const Window2d& w) {
  return "kiln::Pool2dOptions(" + std::to_string(w.kernel_h) + ", " + std::to_string(w.kernel_w) + ").with_stride(" +
         std::to_string(w.stride_h) + ", " + std::to_string(w.stride_w) + ").with_padding(" + padding(w) +
         ").with_count_include_pad(" + (w.count_include_pad ? "true" : "false") + ')';
}

template <class T>
void array_values(std::ostream& os, const void* data, index_t n) {
  const auto* v = static_cast<const T*>(data);
  for (index_t i = 0; i < n; ++i) {
    if (i % 16 == 0) os << "\n   ";
    if constexpr (std::is_same_v<T, float>) os << ' ' << real(v[i]) << ',';
    else os << ' ' << static_cast<long long>(v[i]) << ',';
  }
  os << '\n';
}

}  // namespace detail

/// The header text; `name` is its namespace. Errors (a node with no front-end spelling) are
/// reported by fail() and give an empty string.
inline std::string QuantizedModel::emit_header(const std::string& name) const {
  const Graph& g = *graph_;
  std::ostringstream consts, body;
  std::vector<std::string> val(static_cast<std::size_t>(g.size()));
  auto v = [&](int id) { return val[static_cast<std::size_t>(id)]; };
  auto operand = [&](int id) { return g[id].op == Op::scalar ? detail::real(g[id].p0) : v(id); };
  for (int id = 0; id < g.size(); ++id) {
    const Node& n = g[id];
    const std::string me = "v" + std::to_string(id);
    std::string expr;
    switch (n.op) {
      case Op::input: val[static_cast<std::size_t>(id)] = "x"; continue;
      case Op::scalar: continue;  // written inline where used
      case Op::constant: {
        const char* type = n.dtype == DType::i8 ? "std::int8_t" : n.dtype == DType::i32 ? "std::int32_t" : "float";
        if (n.dtype != DType::i8 && n.dtype != DType::i32 && n.dtype != DType::f32) break;
        consts << "alignas(16) inline constexpr " << type << " k" << id << "[] = {";
        if (n.dtype == DType::i8) detail::array_values<std::int8_t>(consts, n.data, n.shape.numel());
        else if (n.dtype == DType::i32) detail::array_values<std::int32_t>(consts, n.data, n.shape.numel());
        else detail::array_values<float>(consts, n.data, n.shape.numel());
        consts << "};\ninline constexpr kiln::TensorView<const " << type << "> K" << id << "(k" << id << ", "
               << detail::shape(n.shape) << ");\n";
        val[static_cast<std::size_t>(id)] = "K" + std::to_string(id);
        continue;
      }
      case Op::quantize: expr = "kiln::quantize(" + v(n.inputs[0]) + ", " + detail::quant(n.quant) + ')'; break;
      case Op::dequantize: expr = "kiln::dequantize(" + v(n.inputs[0]) + ')'; break;
      case Op::qlinear:
      case Op::qconv2d: {
        expr = std::string(n.op == Op::qlinear ? "kiln::qlinear(" : "kiln::qconv2d(") + v(n.inputs[0]) + ", " +
               v(n.inputs[1]) + ", " + v(n.inputs[2]) + (n.num_inputs == 4 ? ", " + v(n.inputs[3]) : "") + ", " +
               detail::quant(n.quant) + ", " + (n.op == Op::qconv2d ? detail::conv_options(n.win) + ", " : "") +
               detail::activation(n) + ')';
        break;
      }
      case Op::qpool2d:
        expr = std::string(n.rk == ReduceKind::max ? "kiln::qmax_pool2d(" : "kiln::qavg_pool2d(") + v(n.inputs[0]) +
               ", " + detail::pool_options(n.win) + ", " + detail::activation(n) + ')';
        break;
      case Op::qadd:
        expr = "kiln::qadd(" + v(n.inputs[0]) + ", " + v(n.inputs[1]) + ", " + detail::quant(n.quant) + ", " +
               detail::activation(n) + ')';
        break;
      case Op::qsoftmax: expr = "kiln::qsoftmax(" + v(n.inputs[0]) + ", " + detail::real(n.p0) + ')'; break;
      case Op::reshape:
        expr = n.quant.valid() && n.quant != g[n.inputs[0]].quant
                   ? "kiln::as_quantized(" + v(n.inputs[0]) + ", " + detail::quant(n.quant) + ')'
                   : "kiln::reshape(" + v(n.inputs[0]) + ", " + detail::shape(n.shape) + ')';
        break;
      case Op::permute: {
        expr = "kiln::permute(" + v(n.inputs[0]) + ", {";
        for (int d = 0; d < n.shape.rank(); ++d) expr += (d ? ", " : "") + std::to_string(n.perm[d]);
        expr += "})";
        break;
      }
      case Op::slice:
        expr = "kiln::slice(" + v(n.inputs[0]) + ", " + std::to_string(n.axis) + ", " + std::to_string(n.start) + ", " +
               std::to_string(n.start + (n.shape[n.axis] - 1) * n.step + 1) + ", " + std::to_string(n.step) + ')';
        break;
      case Op::expand: expr = "kiln::expand(" + v(n.inputs[0]) + ", " + detail::shape(n.shape) + ')'; break;
      case Op::softmax:
      case Op::log_softmax:
        expr = std::string("kiln::") + op_name(n.op) + '(' + v(n.inputs[0]) + ", " + std::to_string(n.axis) + ')';
        break;
      case Op::reduce:
        expr = std::string("kiln::") + reduce_name(n.rk) + '(' + v(n.inputs[0]) + ", " + std::to_string(n.axis) + ", " +
               (n.keepdim ? "true" : "false") + ')';
        break;
      case Op::matmul:
        expr = std::string(n.trans_b ? "kiln::linear(" : "kiln::matmul(") + v(n.inputs[0]) + ", " + v(n.inputs[1]) + ')';
        break;
      case Op::conv2d: expr = "kiln::conv2d(" + v(n.inputs[0]) + ", " + v(n.inputs[1]) + ", " + detail::conv_options(n.win) + ')'; break;
      case Op::pool2d:
        expr = std::string(n.rk == ReduceKind::max ? "kiln::max_pool2d(" : "kiln::avg_pool2d(") + v(n.inputs[0]) + ", " +
               detail::pool_options(n.win) + ')';
        break;
      case Op::elementwise: {
        const int arity = ewfn_arity(n.fn);
        if (n.fn == EwFn::identity) {
          val[static_cast<std::size_t>(id)] = v(n.inputs[0]);
          continue;
        }
        std::string args = operand(n.inputs[0]);
        for (int k = 1; k < arity; ++k) args += ", " + operand(n.inputs[k]);
        switch (n.fn) {
          case EwFn::leaky_relu:
          case EwFn::pow_scalar: args += ", " + detail::real(n.p0); break;
          case EwFn::clamp: args += ", " + detail::real(n.p0) + ", " + detail::real(n.p1); break;
          case EwFn::gelu_tanh: args += ", kiln::GeluApprox::tanh"; break;
          default: break;
        }
        const char* f = n.fn == EwFn::gelu_tanh || n.fn == EwFn::gelu_erf ? "gelu" : ewfn_name(n.fn);
        expr = std::string("kiln::") + f + '(' + args + ')';
        break;
      }
      default: break;
    }
    if (expr.empty()) {
      fail(Status(Errc::not_supported) << "ptq::emit_header: node %" << id << ' ' << op_name(n.op) << ' ' << n.shape
                                       << ' ' << n.dtype << " has no front-end spelling");
      return std::string();
    }
    body << "  auto " << me << " = " << expr << ";\n";
    val[static_cast<std::size_t>(id)] = me;
  }
  const Node& in = g[g.input(0)];
  std::ostringstream os;
  os << "// Generated by kiln::ptq::QuantizedModel::emit_header: the int8 model as constants and kiln\n"
        "// front-end ops (plan it with kiln::plan(" << name << "::model, " << name << "::input)). Do not edit.\n"
        "#pragma once\n\n#include <cstdint>\n#include <limits>\n\n#include <kiln/kiln.hpp>\n#include <kiln/trace/static_trace.hpp>\n\nnamespace "
     << name << " {\n\n"
     << consts.str() << "\ninline constexpr kiln::Shape input_shape = " << detail::shape(in.shape) << ";\n";
  if (in.dtype == DType::i8)
    os << "inline constexpr kiln::QuantParams input_quant = " << detail::quant(in.quant) << ";\n"
       << "inline constexpr kiln::Input<std::int8_t> input{input_shape, input_quant};\n";
  else
    os << "inline constexpr kiln::Input<float> input{input_shape, {}};\n";
  os << "\ninline constexpr auto model = [](auto x) {\n" << body.str() << "  return " << v(g.output(0)) << ";\n};\n\n}  // namespace "
     << name << '\n';
  return os.str();
}

}  // namespace kiln::ptq
