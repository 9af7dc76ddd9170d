// kiln/ops_int8.hpp — the int8 front-end: quantised models in TFLite's int8 scheme.
//
//   auto q   = kiln::quantize(x, {0.05f, -3});                        // f32 -> i8, real = 0.05 (q + 3)
//   auto h   = kiln::qlinear(q, W, W_scales, bias, {0.1f, -128}, kiln::FusedActivation::relu());
//   auto p   = kiln::qsoftmax(h);                                     // i8, quant 1/256, -128
//   auto out = kiln::dequantize(p);                                   // i8 -> f32
//
// Values: i8 tensors whose Node carries per-tensor QuantParams (ir/quant.hpp); views (reshape,
// flatten, permute, slice, expand) of an i8 value keep its parameters. Weights: i8 constants,
// symmetric, scales an f32 tensor [out_c] (per channel) or [1]; bias i32 [out_c] in units of
// input_scale * weight_scale[c]. Like ops.hpp, each op is a Node handed to detail::apply, so the
// same calls trace at run time (compile, eager), in a constant expression (kiln::plan, weights as
// TensorViews over static arrays) and in KILN_NO_HEAP firmware builds. Type rules and their error
// messages: ir/infer_int8.hpp; kernels: kernels/int8/; eager and compiled lowering:
// runtime/int8_steps.hpp.
//
// A plain int8 kiln::Tensor carries no quantisation, so int8 ops do not run op by op on concrete
// tensors: kiln::eager(fn) runs a function that uses them through its traced graph (as it does
// for kiln::grad), where every i8 value has its parameters.
#pragma once

#include "ops_cnn.hpp"
#ifndef KILN_NO_HEAP
#include "trace/grad.hpp"  // GradProbe: how kiln::eager learns that a function needs its graph
#endif

namespace kiln {

/// A fused activation of an int8 op, in real units; lowered to a clamp of the int8 output
/// (TFLite's CalculateActivationRangeQuantized).
struct FusedActivation {
  EwFn fn = EwFn::identity;  // identity (none), relu, relu6 or clamp [lo, hi]
  float lo = 0.f, hi = 0.f;

  static constexpr FusedActivation none() { return {}; }
  static constexpr FusedActivation relu() { return {EwFn::relu, 0.f, 0.f}; }
  static constexpr FusedActivation relu6() { return {EwFn::relu6, 0.f, 0.f}; }
  static constexpr FusedActivation clamp(float lo, float hi) { return {EwFn::clamp, lo, hi}; }
};

namespace detail {

/// Records or runs an int8 node. On concrete tensors inside kiln::eager's direct call, asks for
/// the run through the graph instead (a concrete int8 tensor has no quantisation to read).
template <class Out, class... Args>
constexpr auto apply_int8(const Node& n, const Args&... args) {
#ifndef KILN_NO_HEAP
  if constexpr (!(is_sym_v<Args> || ...)) {
    if (int* probe = GradProbe::active()) {
      ++*probe;
      return result_t<Out, Args...>();
    }
  }
#endif
  return apply<Out>(n, args...);
}

constexpr Node int8_node(Op op, QuantParams out, FusedActivation act) {
  Node n;
  n.op = op;
  n.quant = out;
  n.fn = act.fn;
  n.p0 = act.lo;
  n.p1 = act.hi;
  return n;
}

template <class X, class W>
constexpr Window2d conv_window(const X& x, const W& weight, const Conv2dOptions& o) {
  const Shape& ws = weight.shape();
  const int kh = ws.rank() == 4 ? static_cast<int>(ws[1]) : 1, kw = ws.rank() == 4 ? static_cast<int>(ws[2]) : 1;
  Window2d win = make_window(x.shape(), kh, kw, o.stride_h, o.stride_w, o.dilation_h, o.dilation_w, o.padding);
  win.groups = o.groups;
  return win;
}

template <class X>
constexpr auto qpool_op(const X& x, ReduceKind kind, const Pool2dOptions& o, FusedActivation act) {
  Node n = int8_node(Op::qpool2d, QuantParams(), act);
  n.rk = kind;
  const int sh = o.stride_h > 0 ? o.stride_h : o.kernel_h, sw = o.stride_w > 0 ? o.stride_w : o.kernel_w;
  n.win = make_window(x.shape(), o.kernel_h, o.kernel_w, sh, sw, 1, 1, o.padding);
  n.win.count_include_pad = false;  // TFLite: the average is over the valid taps
  return apply_int8<std::int8_t>(n, x);
}

template <class... T>
inline constexpr bool all_tensors_v = (is_tensor_v<T> && ...);

}  // namespace detail

/// f32 -> i8: q = clamp(round(x / scale) + zero_point, -128, 127) (TFLite's QUANTIZE). On an i8
/// value: requantised to q (zero_point + (x - x's zero point) * x's scale / scale, in TFLite's
/// fixed point).
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto quantize(const X& x, QuantParams q) {
  return detail::apply_int8<std::int8_t>(detail::int8_node(Op::quantize, q, {}), x);
}

/// i8 -> f32: scale * (q - zero_point) with x's parameters.
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto dequantize(const X& x) {
  return detail::apply_int8<float>(detail::int8_node(Op::dequantize, QuantParams(), {}), x);
}

/// The i8 value x read with quantisation q (a graph input of an int8 model, say): a view, no
/// copy. x must be i8 without parameters, or with these same ones.
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto as_quantized(const X& x, QuantParams q) {
  Node n;
  n.op = Op::reshape;
  n.shape = x.shape();
  n.quant = q;
  return detail::apply_int8<std::int8_t>(n, x);
}

/// Fully connected: x i8 [..., K], weight i8 [N, K], weight_scales f32 [N] or [1]; out [..., N]
/// with quantisation `out`, the activation fused into the requantisation.
template <class X, class W, class S, std::enable_if_t<detail::all_tensors_v<X, W, S>, int> = 0>
constexpr auto qlinear(const X& x, const W& weight, const S& weight_scales, QuantParams out,
                       FusedActivation act = {}) {
  return detail::apply_int8<std::int8_t>(detail::int8_node(Op::qlinear, out, act), x, weight, weight_scales);
}
/// qlinear with an i32 bias [N] (scale x_scale * weight_scale[n], zero point 0).
template <class X, class W, class S, class B, std::enable_if_t<detail::all_tensors_v<X, W, S, B>, int> = 0>
constexpr auto qlinear(const X& x, const W& weight, const S& weight_scales, const B& bias, QuantParams out,
                       FusedActivation act = {}) {
  return detail::apply_int8<std::int8_t>(detail::int8_node(Op::qlinear, out, act), x, weight, weight_scales, bias);
}

/// 2-D convolution of NHWC x (i8) with OHWI weight (i8) [O, kh, kw, C / groups]; groups C with
/// weight [C * multiplier, kh, kw, 1] is depthwise (TFLite's [1, kh, kw, C * m] permuted:
/// kiln::permute(w, {3, 1, 2, 0}) is a view of it, no copy). weight_scales f32 [O] or [1].
template <class X, class W, class S, std::enable_if_t<detail::all_tensors_v<X, W, S>, int> = 0>
constexpr auto qconv2d(const X& x, const W& weight, const S& weight_scales, QuantParams out,
                       const Conv2dOptions& o = {}, FusedActivation act = {}) {
  Node n = detail::int8_node(Op::qconv2d, out, act);
  n.win = detail::conv_window(x, weight, o);
  return detail::apply_int8<std::int8_t>(n, x, weight, weight_scales);
}
/// qconv2d with an i32 bias [O].
template <class X, class W, class S, class B, std::enable_if_t<detail::all_tensors_v<X, W, S, B>, int> = 0>
constexpr auto qconv2d(const X& x, const W& weight, const S& weight_scales, const B& bias, QuantParams out,
                       const Conv2dOptions& o = {}, FusedActivation act = {}) {
  Node n = detail::int8_node(Op::qconv2d, out, act);
  n.win = detail::conv_window(x, weight, o);
  return detail::apply_int8<std::int8_t>(n, x, weight, weight_scales, bias);
}

/// int8 max pooling (output quantisation = input's, as TFLite).
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto qmax_pool2d(const X& x, const Pool2dOptions& o = {}, FusedActivation act = {}) {
  return detail::qpool_op(x, ReduceKind::max, o, act);
}
/// int8 average pooling over the valid taps, rounded half away from zero (TFLite); the options'
/// count_include_pad is not used.
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto qavg_pool2d(const X& x, const Pool2dOptions& o = {}, FusedActivation act = {}) {
  return detail::qpool_op(x, ReduceKind::mean, o, act);
}

/// a + b on i8 values (NumPy broadcasting), requantised to `out` (TFLite's ADD arithmetic).
template <class A, class B, std::enable_if_t<detail::all_tensors_v<A, B>, int> = 0>
constexpr auto qadd(const A& a, const B& b, QuantParams out, FusedActivation act = {}) {
  return detail::apply_int8<std::int8_t>(detail::int8_node(Op::qadd, out, act), a, b);
}

/// softmax(beta * x) over the last axis of an i8 value; the result's quantisation is TFLite's
/// fixed 1/256, -128 (kSoftmaxOutputQuant).
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto qsoftmax(const X& x, float beta = 1.f) {
  Node n;
  n.op = Op::qsoftmax;
  n.axis = -1;
  n.p0 = beta;
  return detail::apply_int8<std::int8_t>(n, x);
}

}  // namespace kiln

#include "ops_int8_tflite.hpp"  // qmul, qlogistic, qtanh, qhard_swish, qmean, qpad, qslice, qconcat
