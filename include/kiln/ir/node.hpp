// kiln/ir/node.hpp — one operation in the graph.
//
// A Node is a plain literal type: opcode, attributes, input ids, and the
// inferred result type. Graphs store Nodes in fixed arrays so the whole IR can
// live in a constant expression.
#pragma once

#include "../core/config.hpp"
#include "../core/dtype.hpp"
#include "../core/ewfn.hpp"
#include "../core/shape.hpp"
#include "quant.hpp"

namespace kiln {

enum class Op : std::uint8_t {
  input,        // a tensor argument of the model
  constant,     // a tensor captured by the model (weights): data bound by pointer
  parameter,    // a trainable tensor (kiln::Parameter): bound by pointer like a constant, but its
                // values change between runs (never folded, prepacked or merged by contents) and
                // the graph may write it back (Graph::add_update)
  scalar,       // a rank-0 constant held inline (p0)
  elementwise,  // fn, broadcasting over its inputs
  reduce,       // rk over axis, keepdim
  softmax,      // over axis
  log_softmax,  // over axis
  matmul,       // batched a @ b (b transposed when trans_b): linear is matmul(x, W, trans_b)
  reshape,      // same elements, new shape (a view when the input is contiguous)
  permute,      // perm (a view with permuted strides)
  slice,        // axis, start, step; shape[axis] = count (a view)
  concat,       // along axis
  copy,         // materialises its input contiguously (inserted by the planner's needs)
  conv2d,       // NHWC x, OHWI weight [out_c, kh, kw, in_c/groups]; win: stride, padding, dilation, groups
  pool2d,       // NHWC max (rk == max) or average (rk == mean) over win's kernel window
  pad,          // NHWC constant padding of H and W by win's pad_* with value p0
  upsample,     // NHWC nearest-neighbour upsampling of H and W by win.stride_* (integer scales)
  expand,       // broadcast to n.shape (NumPy rules): a view with stride 0 on broadcast dims
  unslice,      // zeros of n.shape with the input placed at start, start+step, ... along axis
                // (the adjoint of slice: autodiff's way back from a view to its base)
  // int8 (TFLite's scheme, ir/quant.hpp; rules in ir/infer_int8.hpp). Results are i8 with n.quant
  // unless said otherwise; fn is the fused activation (identity, relu, relu6 or clamp [p0, p1]
  // in real units), turned into an int8 range when the op is lowered.
  quantize,     // f32 -> i8 with n.quant (an i8 input is requantised to n.quant)
  dequantize,   // i8 -> f32
  qlinear,      // x i8 [..., K], W i8 [N, K], W scales f32 [N] or [1][, bias i32 [N]] -> [..., N]
  qconv2d,      // x i8 NHWC, W i8 OHWI, W scales, [bias]; win as conv2d (groups, depthwise)
  qpool2d,      // NHWC max (rk == max) or average (rk == mean, valid taps); quant of the input
  qadd,         // a + b (broadcasting), both i8
  qsoftmax,     // over the last axis, beta p0; quant kSoftmaxOutputQuant
  qmul,         // a * b (broadcasting), both i8
  qlogistic,    // sigmoid; quant kLogisticOutputQuant
  qtanh,        // quant kTanhOutputQuant
  qhard_swish,  // x * relu6(x + 3) / 6
  qmean,        // mean over the axes whose bits are set in `start`, keepdim
  qpad,         // along axis: `start` entries before, `step` after, of real 0 (input's quant)
  qslice,       // along axis: shape[axis] entries from `start` by `step` (< 0 allowed); input's quant
  qconcat,      // a, b along axis, each requantised to quant
};

constexpr const char* op_name(Op op) {
  switch (op) {
    case Op::input: return "input";
    case Op::constant: return "constant";
    case Op::parameter: return "parameter";
    case Op::scalar: return "scalar";
    case Op::elementwise: return "elementwise";
    case Op::reduce: return "reduce";
    case Op::softmax: return "softmax";
    case Op::log_softmax: return "log_softmax";
    case Op::matmul: return "matmul";
    case Op::reshape: return "reshape";
    case Op::permute: return "permute";
    case Op::slice: return "slice";
    case Op::concat: return "concat";
    case Op::copy: return "copy";
    case Op::conv2d: return "conv2d";
    case Op::pool2d: return "pool2d";
    case Op::pad: return "pad";
    case Op::upsample: return "upsample_nearest";
    case Op::expand: return "expand";
    case Op::unslice: return "unslice";
    case Op::quantize: return "quantize";
    case Op::dequantize: return "dequantize";
    case Op::qlinear: return "qlinear";
    case Op::qconv2d: return "qconv2d";
    case Op::qpool2d: return "qpool2d";
    case Op::qadd: return "qadd";
    case Op::qsoftmax: return "qsoftmax";
    case Op::qmul: return "qmul";
    case Op::qlogistic: return "qlogistic";
    case Op::qtanh: return "qtanh";
    case Op::qhard_swish: return "qhard_swish";
    case Op::qmean: return "qmean";
    case Op::qpad: return "qpad";
    case Op::qslice: return "qslice";
    case Op::qconcat: return "qconcat";
  }
  return "?";
}

/// Activation operands of an int8 op (the i8 values its kernel reads; the rest are constants).
constexpr int int8_activation_operands(Op op) {
  return op == Op::qadd || op == Op::qmul || op == Op::qconcat ? 2 : 1;
}

/// The sliding-window attributes of the NHWC spatial ops. Which fields matter depends on the op:
/// conv2d (kernel from the weight), pool2d (kernel here), pad (pad_* only), upsample (stride_* =
/// scale). Explicit per-side padding: "same" is resolved to numbers by the front-end, so the IR
/// never depends on a convention.
struct Window2d {
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
  bool count_include_pad = false;  // avg pool: divide by kernel area (true) or by valid taps

  friend constexpr bool operator==(const Window2d& a, const Window2d& b) {
    return a.kernel_h == b.kernel_h && a.kernel_w == b.kernel_w && a.stride_h == b.stride_h &&
           a.stride_w == b.stride_w && a.pad_top == b.pad_top && a.pad_bottom == b.pad_bottom &&
           a.pad_left == b.pad_left && a.pad_right == b.pad_right && a.dilation_h == b.dilation_h &&
           a.dilation_w == b.dilation_w && a.groups == b.groups && a.count_include_pad == b.count_include_pad;
  }
};

inline constexpr int kMaxInputs = 8;

struct Node {
  Op op = Op::input;
  DType dtype = DType::f32;
  Shape shape;
  int inputs[kMaxInputs]{};
  int num_inputs = 0;

  // Attributes (which ones matter depends on op).
  EwFn fn = EwFn::identity;
  ReduceKind rk = ReduceKind::sum;
  int axis = 0;
  bool keepdim = false;
  bool trans_b = false;
  float p0 = 0.f, p1 = 0.f;
  index_t start = 0, step = 1;  // slice, pad
  std::int8_t perm[kMaxRank]{};
  int index = 0;                 // input: argument position; constant: constant slot
  const void* data = nullptr;    // constant: the captured tensor's data
  const float* f32 = nullptr;    // constant f32 data, typed: what a constant expression can read
                                 // (the static runner's int8 multipliers from weight scales)
  Window2d win;                  // conv2d, pool2d, pad, upsample
  QuantParams quant;             // i8 results: this value's scale and zero point
  QuantParams in_quant[2];       // inputs 0 and 1's quant, copied by Graph::add (int8 ops read them)

  constexpr int input(int i) const { return inputs[i]; }
  constexpr bool is_elementwise() const { return op == Op::elementwise; }
  constexpr bool is_view() const {
    return op == Op::reshape || op == Op::permute || op == Op::slice || op == Op::expand;
  }
  constexpr bool is_leaf() const {
    return op == Op::input || op == Op::constant || op == Op::parameter || op == Op::scalar;
  }
};

/// Same operation on the same inputs (for CSE). Leaves are never equal unless identical data.
constexpr bool same_computation(const Node& a, const Node& b) {
  if (a.op != b.op || a.dtype != b.dtype || a.num_inputs != b.num_inputs || a.shape != b.shape || a.quant != b.quant)
    return false;
  for (int i = 0; i < a.num_inputs; ++i)
    if (a.inputs[i] != b.inputs[i]) return false;
  switch (a.op) {
    case Op::input: return a.index == b.index;
    case Op::constant:
    case Op::parameter: return a.data == b.data;
    case Op::scalar: return a.p0 == b.p0 || (a.p0 != a.p0 && b.p0 != b.p0);
    case Op::elementwise: return a.fn == b.fn && a.p0 == b.p0 && a.p1 == b.p1;
    case Op::reduce: return a.rk == b.rk && a.axis == b.axis && a.keepdim == b.keepdim;
    case Op::softmax:
    case Op::log_softmax:
    case Op::concat: return a.axis == b.axis;
    case Op::matmul: return a.trans_b == b.trans_b;
    case Op::reshape:
    case Op::copy:
    case Op::expand: return true;  // the target shape was compared above
    case Op::permute:
      for (int i = 0; i < kMaxRank; ++i)
        if (a.perm[i] != b.perm[i]) return false;
      return true;
    case Op::slice:
    case Op::unslice: return a.axis == b.axis && a.start == b.start && a.step == b.step;
    case Op::conv2d:
    case Op::upsample: return a.win == b.win;
    case Op::pool2d: return a.win == b.win && a.rk == b.rk;
    case Op::pad: return a.win == b.win && (a.p0 == b.p0 || (a.p0 != a.p0 && b.p0 != b.p0));
    case Op::quantize:
    case Op::dequantize: return true;  // the quant was compared above
    case Op::qlinear:
    case Op::qadd: return a.fn == b.fn && a.p0 == b.p0 && a.p1 == b.p1;
    case Op::qconv2d: return a.win == b.win && a.fn == b.fn && a.p0 == b.p0 && a.p1 == b.p1;
    case Op::qpool2d: return a.win == b.win && a.rk == b.rk && a.fn == b.fn && a.p0 == b.p0 && a.p1 == b.p1;
    case Op::qsoftmax: return a.axis == b.axis && a.p0 == b.p0;
    case Op::qmul: return a.fn == b.fn && a.p0 == b.p0 && a.p1 == b.p1;
    case Op::qlogistic:
    case Op::qtanh:
    case Op::qhard_swish: return true;
    case Op::qmean: return a.start == b.start && a.keepdim == b.keepdim;
    case Op::qpad:
    case Op::qslice: return a.axis == b.axis && a.start == b.start && a.step == b.step;
    case Op::qconcat: return a.axis == b.axis;
  }
  return false;
}

}  // namespace kiln
