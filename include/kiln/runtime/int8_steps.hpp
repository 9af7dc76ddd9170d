// kiln/runtime/int8_steps.hpp — the int8 ops of the IR on the int8 kernels (kernels/int8/).
//
// One place maps an int8 Node onto its kernel:
//   prepare_int8  the integers the kernel takes, derived once from the float scales as TFLite's
//                 Prepare() does (per-channel Q31 multipliers and shifts, ADD's and SOFTMAX's
//                 parameters, the fused activation as an int8 clamp); constexpr, so a static plan
//                 can hold them as constants;
//   run_int8      one kernel call on dense operands;
//   run_int8_node the eager path (runtime/eager.hpp's run_node): prepare into the workspace, run;
//   lower_int8    the compiled path (runtime/executable.hpp): prepared once at build time,
//                 constant weights/bias read in place (or re-laid out once), activations read in
//                 place when dense, else copied into the step's workspace.
// Layouts: the IR's depthwise weight is OHWI [C * m, kh, kw, 1]; the kernel takes TFLite's
// [1, kh, kw, C * m], so it is re-laid out (once when constant). A weight that is a permute view
// of a TFLite-layout constant is read through its strides, so the copy is of the original order.
#pragma once

#include <cstdint>
#include <cstring>

#include "../ir/node.hpp"
#include "../kernels/int8.hpp"
#include "../passes/fusion.hpp"
#include "../passes/int8_workspace.hpp"
#ifndef KILN_NO_HEAP
#include <vector>
#endif

namespace kiln::runtime {

/// An int8 node's kernel call with every parameter prepared.
struct Int8Call {
  Op op = Op::quantize;
  Shape x, x2, w, y;  // dense shapes as the kernel reads them (w: the kernel's layout)
  quant::TensorQuant in, out;
  quant::QuantizedMultiplier requant;  // quantize of an i8 input: in.scale / out.scale
  bool requantize = false;
  bool depthwise = false;  // groups == channels, weight [C * m, kh, kw, 1]: the depthwise kernel
  index_t groups = 1;      // other groups: the conv kernel per group, on channel slices (scratch)
  ReduceKind rk = ReduceKind::max;
  kernels::int8::FullyConnectedParams fc;
  kernels::int8::Conv2DParams conv;
  kernels::int8::DepthwiseConv2DParams dw;
  kernels::int8::Pool2DParams pool;
  kernels::int8::AddParams add;
  kernels::int8::SoftmaxParams softmax;
  // The TFLite operators of runtime/int8_tflite_steps.hpp.
  kernels::int8::MulParams mul;
  kernels::int8::UnaryParams unary;  // qlogistic, qtanh, qhard_swish
  kernels::int8::MeanParams mean;
  kernels::int8::Requant concat_a, concat_b;
  int axis = 0;                      // qpad, qslice, qconcat
  index_t start = 0, step = 0;       // qpad: before, after; qslice: start, step
};

constexpr quant::TensorQuant tensor_quant(QuantParams q) { return {q.scale, q.zero_point}; }

// The TFLite operators' preparation and kernel calls (defined in int8_tflite_steps.hpp).
constexpr Status prepare_int8_tflite(const Node& n, const Shape* in, Int8Call& c);
inline Status run_int8_tflite(const Int8Call& c, const std::int8_t* x, const std::int8_t* x2, std::int8_t* y);

/// The fused activation of `n` as a clamp of its int8 output: TFLite's
/// CalculateActivationRangeQuantized for relu/relu6, the same quantisation of a clamp's bounds.
constexpr quant::ActivationRange fused_range(const Node& n) {
  const quant::TensorQuant out = tensor_quant(n.quant);
  switch (n.fn) {
    case EwFn::relu: return quant::activation_range(quant::Activation::relu, out);
    case EwFn::relu6: return quant::activation_range(quant::Activation::relu6, out);
    case EwFn::clamp: {
      auto q = [out](float f) {
        const float r = f / out.scale;  // in float, like TFLite
        if (r >= 1e9f) return quant::kInt8Max;
        if (r <= -1e9f) return quant::kInt8Min;
        const std::int64_t v = quant::detail::round_half_away(r) + out.zero_point;
        return static_cast<std::int32_t>(v < quant::kInt8Min ? quant::kInt8Min : v > quant::kInt8Max ? quant::kInt8Max : v);
      };
      return {q(n.p0), q(n.p1)};
    }
    default: return {};
  }
}

/// Output channels of a qlinear/qconv2d (0 for the other int8 ops): entries of mult and shift.
constexpr index_t int8_channels(const Node& n, const Shape* in) {
  return n.op == Op::qlinear || n.op == Op::qconv2d ? in[1][0] : 0;
}

/// Fills `c` for the type-checked int8 node `n` (input shapes `in`). qlinear/qconv2d read their
/// weight scales (f32, in[2].numel() of them) and write int8_channels() multipliers and shifts,
/// which `c` points at. Errors: scales that are not positive, a requantisation TFLite's integer
/// pipeline cannot represent.
constexpr Status prepare_int8(const Node& n, const Shape* in, const float* scales, std::int32_t* mult,
                              std::int32_t* shift, Int8Call& c) {
  c.op = n.op;
  c.x = in[0];
  c.y = n.shape;
  c.in = tensor_quant(n.in_quant[0]);
  c.out = tensor_quant(n.quant);
  const char* name = op_name(n.op);
  switch (n.op) {
    case Op::quantize:
      c.requantize = n.in_quant[0].valid();  // only i8 values carry parameters
      if (c.requantize) {
        c.requant = quant::quantize_multiplier(static_cast<double>(c.in.scale) / static_cast<double>(c.out.scale));
        if (c.requant.shift > 31)
          return Status(Errc::invalid_argument) << "quantize: requantising " << in[0]
                                                << " rescales by 2^31 or more (input and output scales)";
      }
      return Status();
    case Op::dequantize: return Status();
    case Op::qlinear:
    case Op::qconv2d: {
      const index_t channels = in[1][0], num_scales = in[2].numel();
      for (index_t k = 0; k < num_scales; ++k)
        if (!(scales[k] > 0.f) || scales[k] > 1e30f)
          return Status(Errc::invalid_argument) << name << ": weight scale " << static_cast<long long>(k)
                                                << " is not a positive finite number (weight " << in[1] << ')';
      quant::conv_output_multipliers(c.in, quant::ChannelQuant{scales, num_scales}, c.out, channels, mult, shift);
      for (index_t k = 0; k < channels; ++k)
        if (shift[k] > 31)
          return Status(Errc::invalid_argument) << name << ": channel " << static_cast<long long>(k)
                                                << " rescales by 2^31 or more (input, weight and output scales)";
      const quant::ActivationRange act = fused_range(n);
      const kernels::int8::OutputStage stage{mult, shift, true, c.out.zero_point, act.min, act.max};
      if (n.op == Op::qlinear) {
        c.w = in[1];
        c.fc = kernels::int8::FullyConnectedParams{-c.in.zero_point, stage};
        return Status();
      }
      const Window2d& w = n.win;
      const kernels::int8::Window2D window{w.stride_h, w.stride_w, w.dilation_h, w.dilation_w,
                                           w.pad_top,  w.pad_bottom, w.pad_left, w.pad_right};
      c.depthwise = w.groups > 1 && w.groups == in[0][3] && in[1][3] == 1;
      c.groups = c.depthwise ? 1 : w.groups;
      if (c.depthwise) {
        c.w = Shape{1, in[1][1], in[1][2], in[1][0]};
        c.dw = kernels::int8::DepthwiseConv2DParams{window, in[1][0] / in[0][3], -c.in.zero_point, stage};
      } else {
        c.w = in[1];
        c.conv = kernels::int8::Conv2DParams{window, -c.in.zero_point, stage};
      }
      return Status();
    }
    case Op::qpool2d: {
      const Window2d& w = n.win;
      const quant::ActivationRange act = fused_range(n);
      c.rk = n.rk;
      c.pool.filter_h = w.kernel_h;
      c.pool.filter_w = w.kernel_w;
      c.pool.window = kernels::int8::Window2D{w.stride_h, w.stride_w, 1, 1, w.pad_top, w.pad_bottom, w.pad_left, w.pad_right};
      c.pool.act_min = act.min;
      c.pool.act_max = act.max;
      return Status();
    }
    case Op::qadd:
      c.x2 = in[1];
      c.add = kernels::int8::make_add_params(c.in, tensor_quant(n.in_quant[1]), c.out, fused_range(n));
      if (c.add.output_shift > 0)
        return Status(Errc::invalid_argument) << "qadd: output scale too small for the input scales (TFLite's ADD "
                                                 "needs 2 max(input scales) < 2^20 output scale), shapes "
                                              << in[0] << ' ' << in[1];
      return Status();
    case Op::qsoftmax:
      c.softmax = kernels::int8::make_softmax_params(n.p0, c.in.scale);
      if (c.softmax.input_left_shift < 0 || c.softmax.input_left_shift > 31)
        return Status(Errc::invalid_argument) << "qsoftmax: beta * input scale is outside TFLite's range (input "
                                              << in[0] << ')';
      return Status();
    default: return prepare_int8_tflite(n, in, c);
  }
}

/// A depthwise weight given as OHWI [O, kh, kw, 1] read through `st` (element strides) written
/// densely in the kernel's layout [1, kh, kw, O].
inline void depthwise_weight_to_kernel_layout(const std::int8_t* src, const Shape& w, const Strides& st,
                                              std::int8_t* dst) {
  const index_t O = w[0], kh = w[1], kw = w[2];
  for (index_t y = 0; y < kh; ++y)
    for (index_t x = 0; x < kw; ++x)
      for (index_t o = 0; o < O; ++o) dst[(y * kw + x) * O + o] = src[o * st[0] + y * st[1] + x * st[2]];
}

/// y = f(a, b) per element with NumPy broadcasting of c.x and c.x2 to c.y (TFLite's
/// BroadcastAdd4DSlow / BroadcastMul4DSlow order: every output element once).
template <class F>
void broadcast_binary(const Int8Call& c, const std::int8_t* a, const std::int8_t* b, std::int8_t* y, F f) {
  const Strides sa = broadcast_strides(c.x, contiguous_strides(c.x), c.y);
  const Strides sb = broadcast_strides(c.x2, contiguous_strides(c.x2), c.y);
  index_t idx[kMaxRank]{};
  const index_t n = c.y.numel();
  for (index_t e = 0; e < n; ++e) {
    index_t oa = 0, ob = 0;
    for (int d = 0; d < c.y.rank(); ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    y[e] = f(a[oa], b[ob]);
    for (int d = c.y.rank() - 1; d >= 0; --d) {
      if (++idx[d] < c.y[d]) break;
      idx[d] = 0;
    }
  }
}

/// a + b with NumPy broadcasting (TFLite's ADD per element); equal shapes use the kernel's loop.
inline Status qadd_broadcast(const Int8Call& c, const std::int8_t* a, const std::int8_t* b, std::int8_t* y) {
  if (c.x == c.x2) return kernels::int8::add(c.add, c.x, a, c.x2, b, c.y, y);
  broadcast_binary(c, a, b, y, [&c](std::int8_t u, std::int8_t v) { return kernels::int8::add_one(c.add, u, v); });
  return Status();
}

/// p with its output stage pointed at `mult` / `shift` when they are given: a static plan's steps
/// keep their multipliers in the schedule's arrays, so the call in flash is read in place and only
/// this small struct is copied.
template <class P>
P with_channels(P p, const std::int32_t* mult, const std::int32_t* shift) {
  if (mult) {
    p.output.multiplier = mult;
    p.output.shift = shift;
  }
  return p;
}

/// A grouped conv: per group, its input channels gathered densely into `scratch`, the conv kernel
/// on them with the group's weight rows, bias and multipliers (`conv`), its output scattered into y.
inline Status grouped_conv(const Int8Call& c, const kernels::int8::Conv2DParams& conv, const std::int8_t* x,
                           const std::int8_t* w, const std::int32_t* bias, std::int8_t* y, std::int8_t* scratch) {
  const index_t G = c.groups, cg = c.x[3] / G, og = c.y[3] / G;
  const index_t pixels_in = c.x.numel() / c.x[3], pixels_out = c.y.numel() / c.y[3];
  const Shape xs{c.x[0], c.x[1], c.x[2], cg}, ws{og, c.w[1], c.w[2], c.w[3]}, ys{c.y[0], c.y[1], c.y[2], og};
  std::int8_t* xg = scratch;
  std::int8_t* yg = scratch + pixels_in * cg;
  for (index_t g = 0; g < G; ++g) {
    for (index_t p = 0; p < pixels_in; ++p) std::memcpy(xg + p * cg, x + p * c.x[3] + g * cg, static_cast<std::size_t>(cg));
    kernels::int8::Conv2DParams pg = conv;
    pg.output.multiplier += g * og;
    pg.output.shift += g * og;
    const Status s = kernels::int8::conv2d(pg, xs, xg, ws, w + g * ws.numel(), bias ? bias + g * og : nullptr, ys, yg);
    if (!s.ok()) return s;
    for (index_t p = 0; p < pixels_out; ++p) std::memcpy(y + p * c.y[3] + g * og, yg + p * og, static_cast<std::size_t>(og));
  }
  return Status();
}

/// One int8 kernel call on dense operands: x (f32 for quantize, else i8), x2 (qadd's b), the
/// weight in the kernel's layout and the bias (qlinear/qconv2d; bias may be null), into y.
/// `scratch`: passes::int8_grouped_conv_bytes(node, x) bytes. `mult` / `shift`: a qlinear/qconv2d's
/// multipliers when the call does not point at them (the static runner's steps).
template <bool WithTfliteOps = true>  // false: a static plan without them links none of their kernels
Status run_int8(const Int8Call& c, const void* x, const void* x2, const std::int8_t* w,
                       const std::int32_t* bias, void* y, void* scratch = nullptr, const std::int32_t* mult = nullptr,
                       const std::int32_t* shift = nullptr) {
  namespace k8 = kernels::int8;
  const auto* xi = static_cast<const std::int8_t*>(x);
  auto* yi = static_cast<std::int8_t*>(y);
  switch (c.op) {
    case Op::quantize:
      if (c.requantize) {  // TFLite's Requantize: zp_out + (q - zp_in) * M, saturated
        for (index_t i = 0; i < c.y.numel(); ++i) {
          std::int32_t v = quant::multiply_by_quantized_multiplier(xi[i] - c.in.zero_point, c.requant.multiplier,
                                                                   c.requant.shift) +
                           c.out.zero_point;
          yi[i] = static_cast<std::int8_t>(v < -128 ? -128 : v > 127 ? 127 : v);
        }
        return Status();
      }
      k8::quantize(static_cast<const float*>(x), yi, c.y.numel(), c.out);
      return Status();
    case Op::dequantize: quant::dequantize(xi, static_cast<float*>(y), c.y.numel(), c.in); return Status();
    case Op::qlinear: return k8::fully_connected(with_channels(c.fc, mult, shift), c.x, xi, c.w, w, bias, c.y, yi);
    case Op::qconv2d:
      if (c.groups > 1)
        return grouped_conv(c, with_channels(c.conv, mult, shift), xi, w, bias, yi, static_cast<std::int8_t*>(scratch));
      return c.depthwise ? k8::depthwise_conv2d(with_channels(c.dw, mult, shift), c.x, xi, c.w, w, bias, c.y, yi)
                         : k8::conv2d(with_channels(c.conv, mult, shift), c.x, xi, c.w, w, bias, c.y, yi);
    case Op::qpool2d:
      return c.rk == ReduceKind::max ? k8::max_pool2d(c.pool, c.x, xi, c.y, yi) : k8::avg_pool2d(c.pool, c.x, xi, c.y, yi);
    case Op::qadd: return qadd_broadcast(c, xi, static_cast<const std::int8_t*>(x2), yi);
    case Op::qsoftmax: return k8::softmax(c.softmax, c.x, xi, c.y, yi);
    default:
      if constexpr (WithTfliteOps) return run_int8_tflite(c, xi, static_cast<const std::int8_t*>(x2), yi);
      else return Status(Errc::not_supported) << op_name(c.op) << ": not an int8 op of this plan";
  }
}

// ---- eager ------------------------------------------------------------------------------------

/// Workspace floats run_int8_node needs: the multipliers and shifts, then a depthwise weight in
/// the kernel's layout or a grouped conv's channel slices.
inline std::size_t int8_workspace_floats(const Node& n, const Shape* in) {
  if (n.op != Op::qlinear && n.op != Op::qconv2d) return 0;
  std::size_t f = 2 * static_cast<std::size_t>(in[1][0]);
  if (n.op == Op::qconv2d && n.win.groups > 1)  // depthwise weight, or grouped slices
    f += (static_cast<std::size_t>(in[1].numel()) + passes::int8_grouped_conv_bytes(n, in[0]) + 3) / 4;
  return f;
}

/// The eager path of an int8 node (inputs dense, type-checked); errors are reported by fail().
inline void run_int8_node(const Node& n, const void* const* in, const Shape* in_shapes, void* out, float* workspace) {
  Int8Call c;
  const index_t channels = int8_channels(n, in_shapes);
  auto* mult = reinterpret_cast<std::int32_t*>(workspace);
  std::int32_t* shift = mult ? mult + channels : nullptr;
  const float* scales = n.op == Op::qlinear || n.op == Op::qconv2d ? static_cast<const float*>(in[2]) : nullptr;
  Status s = prepare_int8(n, in_shapes, scales, mult, shift, c);
  const auto* w = n.num_inputs > 1 ? static_cast<const std::int8_t*>(in[1]) : nullptr;
  std::int8_t* scratch = shift ? reinterpret_cast<std::int8_t*>(shift + channels) : nullptr;
  if (s.ok() && c.depthwise) {
    depthwise_weight_to_kernel_layout(w, in_shapes[1], contiguous_strides(in_shapes[1]), scratch);
    w = scratch;
  }
  const auto* bias = n.num_inputs == 4 ? static_cast<const std::int32_t*>(in[3]) : nullptr;
  if (s.ok()) s = run_int8(c, in[0], n.num_inputs > 1 ? in[1] : nullptr, w, bias, out, scratch);
  if (!s.ok()) fail(s);
}

/// An activation operand of a compiled int8 step: where it lives (a base node's buffer, element
/// offset, strides over its own shape) and whether the kernel can read it in place.
struct Int8Operand {
  int base = -1;
  index_t offset = 0;
  Strides strides;
  DType dtype = DType::i8;
  Shape shape;
  bool dense = true;
};

#ifndef KILN_NO_HEAP
// ---- compiled ---------------------------------------------------------------------------------

/// An int8 node lowered once for the Executable.
struct Int8Step {
  Int8Call call;
  std::vector<std::int32_t> mult, shift;
  Int8Operand x, x2;
  const std::int8_t* w = nullptr;  // the weight in the kernel's layout (a constant, or `weight`)
  const std::int32_t* bias = nullptr;
  std::vector<std::int8_t> weight;  // re-laid out / densified constant weight
  std::vector<std::int32_t> bias_dense;
  std::size_t scratch_bytes = 0;    // run_int8's scratch (a grouped conv's slices), first in the
  std::size_t workspace_bytes = 0;  // workspace, then dense copies of strided x and x2
};

namespace detail {

/// The dense data of constant value `id` (a captured or folded constant, or a view of one):
/// in place when contiguous, else copied into `copy`. nullptr when it is not a constant.
template <class T>
const T* constant_dense(const Graph& g, const passes::Fusion& f, int id, std::vector<T>& copy) {
  const passes::Layout& l = f.layouts[id];
  if (l.base < 0 || g[l.base].op != Op::constant) return nullptr;
  const T* base = static_cast<const T*>(g[l.base].data) + l.offset;
  const Shape& s = g[id].shape;
  if (passes::is_contiguous(s, l)) return base;
  copy.resize(static_cast<std::size_t>(s.numel()));
  index_t idx[kMaxRank]{};
  for (index_t e = 0; e < s.numel(); ++e) {
    index_t off = 0;
    for (int d = 0; d < s.rank(); ++d) off += idx[d] * l.strides[d];
    copy[static_cast<std::size_t>(e)] = base[off];
    for (int d = s.rank() - 1; d >= 0; --d) {
      if (++idx[d] < s[d]) break;
      idx[d] = 0;
    }
  }
  return copy.data();
}

inline Int8Operand int8_operand(const Graph& g, const passes::Fusion& f, int id) {
  const passes::Layout& l = f.layouts[id];
  return Int8Operand{l.base, l.offset, l.strides, g[id].dtype, g[id].shape, passes::is_contiguous(g[id].shape, l)};
}

}  // namespace detail

/// Lowers int8 node `id` of the planned graph `g`: parameters prepared, weights, scales and bias
/// read from constants (compile() needs them captured or folded: run-time weights are an error).
inline Status lower_int8(const Graph& g, const passes::Fusion& f, int id, Int8Step& s) {
  const Node& n = g[id];
  Shape in[kMaxInputs];
  for (int k = 0; k < n.num_inputs; ++k) in[k] = g[n.inputs[k]].shape;
  s.x = detail::int8_operand(g, f, n.inputs[0]);
  if (int8_activation_operands(n.op) == 2) s.x2 = detail::int8_operand(g, f, n.inputs[1]);
  s.scratch_bytes = passes::int8_grouped_conv_bytes(n, in[0]);
  s.workspace_bytes = passes::int8_workspace_bytes(g, f.layouts, id);
  const float* scales = nullptr;
  std::vector<float> scale_copy;
  if (n.op == Op::qlinear || n.op == Op::qconv2d) {
    const std::int8_t* w = detail::constant_dense(g, f, n.inputs[1], s.weight);
    scales = detail::constant_dense(g, f, n.inputs[2], scale_copy);
    s.bias = n.num_inputs == 4 ? detail::constant_dense(g, f, n.inputs[3], s.bias_dense) : nullptr;
    if (!w || !scales || (n.num_inputs == 4 && !s.bias))
      return Status(Errc::not_supported) << op_name(n.op) << ": compile() needs the weight " << in[1]
                                         << ", its scales and the bias as constants (captured tensors)";
    s.w = w;
    const index_t channels = in[1][0];
    s.mult.resize(static_cast<std::size_t>(channels));
    s.shift.resize(static_cast<std::size_t>(channels));
  }
  const Status st = prepare_int8(n, in, scales, s.mult.data(), s.shift.data(), s.call);
  if (!st.ok()) return st;
  if (s.call.depthwise) {  // the kernel's [1, kh, kw, O], from the weight as the graph reads it
    const passes::Layout& l = f.layouts[n.inputs[1]];
    std::vector<std::int8_t> relaid(static_cast<std::size_t>(in[1].numel()));
    depthwise_weight_to_kernel_layout(static_cast<const std::int8_t*>(g[l.base].data) + l.offset, in[1], l.strides,
                                      relaid.data());
    s.weight = std::move(relaid);
    s.w = s.weight.data();
  }
  return Status();
}
#endif  // KILN_NO_HEAP

}  // namespace kiln::runtime

#include "int8_tflite_steps.hpp"
