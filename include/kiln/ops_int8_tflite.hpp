// kiln/ops_int8_tflite.hpp — int8 front-end for TFLite's other common operators.
//
//   auto y = kiln::qmul(a, b, {0.02f, 3}, kiln::FusedActivation::relu());    // MUL (broadcasting)
//   auto s = kiln::qlogistic(x);       auto t = kiln::qtanh(x);               // quant 1/256,-128 / 1/128,0
//   auto h = kiln::qhard_swish(x, {0.05f, -20});                              // HARD_SWISH
//   auto m = kiln::qmean(x, kiln::axes_mask({1, 2}), {0.04f, 0}, true);       // MEAN, keep_dims
//   auto p = kiln::qpad(x, 1, 1, 2);                                          // PAD one axis with real 0
//   auto r = kiln::qslice(x, 2, 4, 5, -1);                                    // STRIDED_SLICE one axis
//   auto c = kiln::qconcat(a, b, 3, {0.1f, 0});                               // CONCATENATION of two
//
// Each is one int8 Node (ir/node.hpp; type rules ir/infer_int8_tflite.hpp; kernels
// kernels/int8/{mul,activations,mean,copy}.hpp; lowering runtime/int8_tflite_steps.hpp), so it
// traces, runs eagerly, compiles and plans at compile time like the other int8 ops. The
// arithmetic is TFLite Micro's reference int8 arithmetic, byte for byte.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace kiln {

/// The bit mask of dimensions qmean averages: axes_mask({1, 2}) == 0b110 (non-negative axes).
constexpr std::uint32_t axes_mask(std::initializer_list<int> axes) {
  std::uint32_t m = 0;
  for (int a : axes) m |= a >= 0 && a < 32 ? (std::uint32_t{1} << a) : 0u;
  return m;
}

/// a * b on i8 values (NumPy broadcasting), requantised to `out` (TFLite's MUL arithmetic).
template <class A, class B, std::enable_if_t<detail::all_tensors_v<A, B>, int> = 0>
constexpr auto qmul(const A& a, const B& b, QuantParams out, FusedActivation act = {}) {
  return detail::apply_int8<std::int8_t>(detail::int8_node(Op::qmul, out, act), a, b);
}

/// 1 / (1 + exp(-x)) of an i8 value; the result's quantisation is TFLite's 1/256, -128.
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto qlogistic(const X& x) {
  return detail::apply_int8<std::int8_t>(detail::int8_node(Op::qlogistic, kLogisticOutputQuant, {}), x);
}

/// tanh(x) of an i8 value; the result's quantisation is TFLite's 1/128, 0.
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto qtanh(const X& x) {
  return detail::apply_int8<std::int8_t>(detail::int8_node(Op::qtanh, kTanhOutputQuant, {}), x);
}

/// x * relu6(x + 3) / 6 of an i8 value, quantised to `out` (TFLite's HARD_SWISH).
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto qhard_swish(const X& x, QuantParams out) {
  return detail::apply_int8<std::int8_t>(detail::int8_node(Op::qhard_swish, out, {}), x);
}

/// The mean of an i8 value over the dimensions in `axes` (axes_mask), quantised to `out`;
/// keepdim keeps them with extent 1 (TFLite's MEAN with keep_dims).
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto qmean(const X& x, std::uint32_t axes, QuantParams out, bool keepdim = false) {
  Node n = detail::int8_node(Op::qmean, out, {});
  n.start = static_cast<index_t>(axes);
  n.keepdim = keepdim;
  return detail::apply_int8<std::int8_t>(n, x);
}

/// `before` and `after` entries of real 0 (the zero point) around an i8 value along `axis`
/// (TFLite's PAD, one axis at a time); the quantisation is x's.
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto qpad(const X& x, int axis, index_t before, index_t after) {
  Node n = detail::int8_node(Op::qpad, QuantParams(), {});
  n.axis = axis;
  n.start = before;
  n.step = after;
  return detail::apply_int8<std::int8_t>(n, x);
}

/// `count` entries of an i8 value along `axis`: start, start + step, ... (step may be negative:
/// TFLite's STRIDED_SLICE, one axis at a time). A copy (kiln::slice is the view for step > 0).
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto qslice(const X& x, int axis, index_t start, index_t count, index_t step) {
  Node n = detail::int8_node(Op::qslice, QuantParams(), {});
  n.axis = axis;
  n.start = start;
  n.step = step;
  n.shape = Shape{count};  // the count, checked by the type rule (as slice)
  return detail::apply_int8<std::int8_t>(n, x);
}

/// a and b joined along `axis`, each requantised to `out` when its parameters differ (TFLite's
/// int8 CONCATENATION has them equal and only copies; more inputs: chain qconcat).
template <class A, class B, std::enable_if_t<detail::all_tensors_v<A, B>, int> = 0>
constexpr auto qconcat(const A& a, const B& b, int axis, QuantParams out) {
  Node n = detail::int8_node(Op::qconcat, out, {});
  n.axis = axis;
  return detail::apply_int8<std::int8_t>(n, a, b);
}

}  // namespace kiln
