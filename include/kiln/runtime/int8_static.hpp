// kiln/runtime/int8_static.hpp — an int8 op of a compile-time plan lowered in a constant
// expression for the static runner (runtime/static_run.hpp).
//
// prepare_int8 (runtime/int8_steps.hpp) runs at compile time: the per-channel Q31 multipliers and
// shifts, ADD's and SOFTMAX's parameters and the fused activation's clamp become constants in
// flash. Weight scales are read through the constant's typed pointer (Node::f32); weights and
// bias are read where they lie at run time; a depthwise weight is re-laid out into the kernel's
// [1, kh, kw, O] in the step's scratch, and strided activations are copied densely there.
#pragma once

#include "../passes/int8_workspace.hpp"
#include "int8_steps.hpp"

namespace kiln::runtime {

/// A value an int8 step reads (runtime/int8_steps.hpp's operand: base node, element offset,
/// strides over its own shape, whether the kernel reads it in place).
using Int8Ref = Int8Operand;

/// One int8 node, prepared at compile time. The call's multiplier/shift pointers stay null: at run
/// time run_int8 reads them from the schedule's arrays from `channel_begin`.
struct StaticInt8 {
  Int8Call call;
  Int8Ref x, x2, w, bias;
  index_t channel_begin = 0, channels = 0;
  std::size_t scratch_bytes = 0;    // run_int8's own scratch (a grouped conv's slices), first
  std::size_t workspace_bytes = 0;  // passes/int8_workspace.hpp's rule + the weight in the kernel's layout
};

constexpr Int8Ref int8_ref(const Graph& g, const passes::Fusion& f, int id) {
  const passes::Layout& l = f.layouts[id];
  return Int8Ref{l.base, l.offset, l.strides, g[id].dtype, g[id].shape, passes::is_contiguous(g[id].shape, l)};
}
constexpr std::size_t int8_copy_bytes(const Int8Ref& r) {
  return r.base < 0 || r.dense ? 0 : align_up(static_cast<std::size_t>(r.shape.numel()) * dtype_size(r.dtype));
}

/// `c` with its output stages' multiplier/shift pointers null (bound at run time), built member
/// by member: GCC 12 rejects a constant copied whole from an object that once held pointers to
/// locals ("used in its own initializer"), even after they were reset.
constexpr Int8Call without_channels(const Int8Call& c) {
  auto stage = [](const kernels::int8::OutputStage& o) {
    return kernels::int8::OutputStage{nullptr, nullptr, o.per_channel, o.output_offset, o.act_min, o.act_max};
  };
  Int8Call r;
  r.op = c.op;
  r.x = c.x;
  r.x2 = c.x2;
  r.w = c.w;
  r.y = c.y;
  r.in = c.in;
  r.out = c.out;
  r.depthwise = c.depthwise;
  r.groups = c.groups;  // (these three were not copied: grouped convs ran as one conv and failed
  r.requant = c.requant;        // its shape check, an i8 -> i8 quantize did not requantise)
  r.requantize = c.requantize;
  r.rk = c.rk;
  r.fc = kernels::int8::FullyConnectedParams{c.fc.input_offset, stage(c.fc.output)};
  r.conv = kernels::int8::Conv2DParams{c.conv.window, c.conv.input_offset, stage(c.conv.output)};
  r.dw = kernels::int8::DepthwiseConv2DParams{c.dw.window, c.dw.depth_multiplier, c.dw.input_offset,
                                              stage(c.dw.output)};
  r.pool = c.pool;
  r.add = c.add;
  r.softmax = c.softmax;
  r.requantize = c.requantize;
  r.requant = c.requant;
  r.groups = c.groups;
  r.mul = c.mul;
  r.unary = c.unary;
  r.mean = c.mean;
  r.concat_a = c.concat_a;
  r.concat_b = c.concat_b;
  r.axis = c.axis;
  r.start = c.start;
  r.step = c.step;
  return r;
}

/// Lowers int8 node `id`: `mult` / `shift` receive int8_channels() entries. Errors name the op.
constexpr Status lower_int8_static(const Graph& g, const passes::Fusion& f, int id, StaticInt8& s,
                                   std::int32_t* mult, std::int32_t* shift) {
  const Node& n = g[id];
  Shape in[kMaxInputs];
  for (int k = 0; k < n.num_inputs; ++k) in[k] = g[n.inputs[k]].shape;
  s.x = int8_ref(g, f, n.inputs[0]);
  if (int8_activation_operands(n.op) == 2) s.x2 = int8_ref(g, f, n.inputs[1]);
  const float* scales = nullptr;
  if (n.op == Op::qlinear || n.op == Op::qconv2d) {
    s.w = int8_ref(g, f, n.inputs[1]);
    const Int8Ref sc = int8_ref(g, f, n.inputs[2]);
    if (n.num_inputs == 4) s.bias = int8_ref(g, f, n.inputs[3]);
    const bool constants = g[s.w.base].op == Op::constant && g[sc.base].op == Op::constant &&
                           (n.num_inputs < 4 || g[s.bias.base].op == Op::constant);
    if (!constants || !g[sc.base].f32 || !sc.dense || !s.bias.dense)
      return Status(Errc::not_supported) << op_name(n.op) << ": the static runner needs the weight " << in[1]
                                         << ", its scales and the bias as constants (scales and bias contiguous)";
    scales = g[sc.base].f32 + sc.offset;
    s.channels = int8_channels(n, in);
  }
  Int8Call call;
  const Status st = prepare_int8(n, in, scales, mult, shift, call);
  if (!st.ok()) return st;
  s.call = without_channels(call);
  if (s.call.depthwise) s.w.dense = false;  // re-laid out at run time
  // The scratch every int8 step reserves (passes/int8_workspace.hpp: the grouped conv's slices,
  // then dense copies of strided activations), then the weight this runner lays out from flash.
  s.scratch_bytes = passes::int8_grouped_conv_bytes(n, in[0]);
  s.workspace_bytes = passes::int8_workspace_bytes(g, f.layouts, id) + int8_copy_bytes(s.w);
  return Status();
}

/// Whether lowered int8 steps include the TFLite operators of int8_tflite_steps.hpp (a static
/// plan without them instantiates run_int8_static<false>: none of their kernels is linked).
template <class Steps>
constexpr bool uses_tflite_int8_ops(const Steps& steps, int count) {
  for (int k = 0; k < count; ++k)
    if (is_tflite_int8_op(steps[k].call.op)) return true;
  return false;
}

/// A per-channel output stage whose channels all have one multiplier and shift (per-tensor
/// weight scales, e.g. every FULLY_CONNECTED of the MLPerf Tiny models) keeps one entry: the
/// stage becomes per tensor, same bits, and the schedule stores 8 bytes instead of 8 per channel.
/// Returns the entries to keep of the `n` in mult/shift.
constexpr index_t compact_per_tensor(StaticInt8& q, const std::int32_t* mult, const std::int32_t* shift, index_t n) {
  if (q.call.groups > 1) return n;  // grouped_conv offsets the multipliers per group
  for (index_t k = 1; k < n; ++k)
    if (mult[k] != mult[0] || shift[k] != shift[0]) return n;
  if (n <= 1) return n;
  q.call.fc.output.per_channel = q.call.conv.output.per_channel = q.call.dw.output.per_channel = false;
  return 1;
}

/// The kernel a static int8 step calls. The runner instantiates run_int8_static once per kind a
/// model uses, so an image links only its model's kernels (run_int8's switch would link all).
enum class Int8Kernel : std::uint8_t { fully_connected, conv2d, depthwise_conv2d, add, softmax, max_pool, avg_pool, other };

constexpr Int8Kernel int8_kernel(const Int8Call& c) {
  switch (c.op) {
    case Op::qlinear: return Int8Kernel::fully_connected;
    case Op::qconv2d:
      return c.depthwise ? Int8Kernel::depthwise_conv2d : c.groups > 1 ? Int8Kernel::other : Int8Kernel::conv2d;
    case Op::qadd: return Int8Kernel::add;
    case Op::qsoftmax: return Int8Kernel::softmax;
    case Op::qpool2d: return c.rk == ReduceKind::max ? Int8Kernel::max_pool : Int8Kernel::avg_pool;
    default: return Int8Kernel::other;
  }
}

/// run_int8 for kernel K only (Int8Kernel::other: run_int8 itself, e.g. quantize, grouped convs).
template <Int8Kernel K, bool WithTfliteOps>
Status run_int8_as(const Int8Call& c, const void* x, const void* x2, const std::int8_t* w, const std::int32_t* bias,
                   void* y, void* scratch, const std::int32_t* mult, const std::int32_t* shift) {
  namespace k8 = kernels::int8;
  const auto* xi = static_cast<const std::int8_t*>(x);
  auto* yi = static_cast<std::int8_t*>(y);
  if constexpr (K == Int8Kernel::fully_connected) return k8::fully_connected(with_channels(c.fc, mult, shift), c.x, xi, c.w, w, bias, c.y, yi);
  else if constexpr (K == Int8Kernel::conv2d) return k8::conv2d(with_channels(c.conv, mult, shift), c.x, xi, c.w, w, bias, c.y, yi);
  else if constexpr (K == Int8Kernel::depthwise_conv2d) return k8::depthwise_conv2d(with_channels(c.dw, mult, shift), c.x, xi, c.w, w, bias, c.y, yi);
  else if constexpr (K == Int8Kernel::add) return qadd_broadcast(c, xi, static_cast<const std::int8_t*>(x2), yi);
  else if constexpr (K == Int8Kernel::softmax) return k8::softmax(c.softmax, c.x, xi, c.y, yi);
  else if constexpr (K == Int8Kernel::max_pool) return k8::max_pool2d(c.pool, c.x, xi, c.y, yi);
  else if constexpr (K == Int8Kernel::avg_pool) return k8::avg_pool2d(c.pool, c.x, xi, c.y, yi);
  else return run_int8<WithTfliteOps>(c, x, x2, w, bias, y, scratch, mult, shift);
}

/// Runs a lowered int8 step with kernel K (int8_kernel(q.call)); WithTfliteOps: whether the plan has
/// any of int8_tflite_steps.hpp's operators (else none of their kernels is linked). `at(base, offset, dtype)`
/// resolves a value's address, `ws` is the step's scratch (workspace_bytes), `out` the node's buffer.
template <Int8Kernel K, bool WithTfliteOps, class At>
Status run_int8_static(const StaticInt8& q, const std::int32_t* mult, const std::int32_t* shift, At&& at,
                       char* ws, void* out) {
  auto dense = [&](const Int8Ref& r) -> const void* {
    if (r.base < 0) return nullptr;
    const char* p = at(r.base, r.offset, r.dtype);
    if (r.dense || !ws) return p;  // (the plan gives every copy its scratch)
    strided_copy_elements(p, r.dtype, r.shape, r.strides, ws);  // int8 (or quantize's f32): no float engine
    const char* copy = ws;
    ws += int8_copy_bytes(r);
    return copy;
  };
  const Int8Call& c = q.call;  // in flash, read in place: run_int8 binds the multipliers
  char* scratch = ws;  // run_int8's own scratch first (the same order as the Executable)
  if (ws) ws += align_up(q.scratch_bytes);
  const void* x = dense(q.x);
  const void* x2 = dense(q.x2);
  const std::int8_t* w = nullptr;
  if (q.w.base >= 0 && c.depthwise && ws) {  // OHWI [O, kh, kw, 1] -> the kernel's [1, kh, kw, O]
    auto* relaid = reinterpret_cast<std::int8_t*>(ws);
    depthwise_weight_to_kernel_layout(reinterpret_cast<const std::int8_t*>(at(q.w.base, q.w.offset, q.w.dtype)),
                                      q.w.shape, q.w.strides, relaid);
    w = relaid;
  } else if (q.w.base >= 0) {
    w = static_cast<const std::int8_t*>(dense(q.w));
  }
  const auto* bias = q.bias.base >= 0 ? reinterpret_cast<const std::int32_t*>(at(q.bias.base, q.bias.offset, q.bias.dtype))
                                      : nullptr;
  return run_int8_as<K, WithTfliteOps>(c, x, x2, w, bias, out, scratch, mult + q.channel_begin, shift + q.channel_begin);
}

}  // namespace kiln::runtime
