// kiln/ops_cnn.hpp — the CNN front-end: conv2d, pooling, pad, upsample, batch_norm (NHWC).
//
// Activations are NHWC [N, H, W, C]; conv weights are OHWI [out_c, kh, kw, in_c / groups]
// (TFLite's layout, so an imported model maps directly). Like ops.hpp, each op describes itself
// as a Node and hands it to detail::apply(), which traces or runs it eagerly. Ops that are
// compositions of existing ones (a bias add, global average pooling, inference batch norm) are
// written as such, so fusion and folding see ordinary elementwise and reduction nodes.
#pragma once

#include "ops.hpp"

namespace kiln {

/// Spatial padding: explicit per side, or TF/TFLite "SAME" (output = ceil(input / stride), the
/// odd pixel of padding after), resolved to explicit numbers when the op is built.
struct Padding2d {
  int top = 0, bottom = 0, left = 0, right = 0;
  bool is_same = false;

  static constexpr Padding2d same() {
    Padding2d p;
    p.is_same = true;
    return p;
  }
  /// The same padding before and after: h rows top and bottom, w columns left and right.
  static constexpr Padding2d symmetric(int h, int w) { return sides(h, h, w, w); }
  static constexpr Padding2d sides(int top, int bottom, int left, int right) {
    Padding2d p;
    p.top = top;
    p.bottom = bottom;
    p.left = left;
    p.right = right;
    return p;
  }
};

/// conv2d options, built by chaining: Conv2dOptions().with_stride(2).with_padding(Padding2d::same()).
struct Conv2dOptions {
  int stride_h = 1, stride_w = 1;
  Padding2d padding;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;

  constexpr Conv2dOptions with_stride(int s) const { return with_stride(s, s); }
  constexpr Conv2dOptions with_stride(int h, int w) const {
    Conv2dOptions o = *this;
    o.stride_h = h;
    o.stride_w = w;
    return o;
  }
  constexpr Conv2dOptions with_padding(Padding2d p) const {
    Conv2dOptions o = *this;
    o.padding = p;
    return o;
  }
  constexpr Conv2dOptions with_dilation(int d) const { return with_dilation(d, d); }
  constexpr Conv2dOptions with_dilation(int h, int w) const {
    Conv2dOptions o = *this;
    o.dilation_h = h;
    o.dilation_w = w;
    return o;
  }
  constexpr Conv2dOptions with_groups(int g) const {
    Conv2dOptions o = *this;
    o.groups = g;
    return o;
  }
};

/// Pooling options: a kernel_h x kernel_w window, stride (0: the kernel size, PyTorch's default),
/// padding and, for the average, whether padding counts in the divisor (PyTorch's default true).
struct Pool2dOptions {
  int kernel_h = 2, kernel_w = 2;
  int stride_h = 0, stride_w = 0;
  Padding2d padding;
  bool count_include_pad = true;

  constexpr Pool2dOptions(int kernel = 2) : kernel_h(kernel), kernel_w(kernel) {}  // NOLINT: max_pool2d(x, 3)
  constexpr Pool2dOptions(int kh, int kw) : kernel_h(kh), kernel_w(kw) {}
  constexpr Pool2dOptions with_stride(int s) const { return with_stride(s, s); }
  constexpr Pool2dOptions with_stride(int h, int w) const {
    Pool2dOptions o = *this;
    o.stride_h = h;
    o.stride_w = w;
    return o;
  }
  constexpr Pool2dOptions with_padding(Padding2d p) const {
    Pool2dOptions o = *this;
    o.padding = p;
    return o;
  }
  constexpr Pool2dOptions with_count_include_pad(bool b) const {
    Pool2dOptions o = *this;
    o.count_include_pad = b;
    return o;
  }
};

namespace detail {

/// TF "SAME" padding of one axis: total = max((ceil(in / s) - 1) * s + span - in, 0), the smaller
/// half before.
constexpr void same_padding(index_t in, int kernel, int stride, int dilation, int& before, int& after) {
  const index_t span = static_cast<index_t>(kernel - 1) * dilation + 1;
  const index_t out = stride > 0 ? (in + stride - 1) / stride : 0;
  index_t total = (out - 1) * stride + span - in;
  if (total < 0) total = 0;
  before = static_cast<int>(total / 2);
  after = static_cast<int>(total - total / 2);
}

constexpr Window2d make_window(const Shape& x, int kh, int kw, int sh, int sw, int dh, int dw, const Padding2d& p) {
  Window2d win;
  win.kernel_h = kh;
  win.kernel_w = kw;
  win.stride_h = sh;
  win.stride_w = sw;
  win.dilation_h = dh;
  win.dilation_w = dw;
  if (p.is_same && x.rank() == 4) {
    same_padding(x[1], kh, sh, dh, win.pad_top, win.pad_bottom);
    same_padding(x[2], kw, sw, dw, win.pad_left, win.pad_right);
  } else {
    win.pad_top = p.top;
    win.pad_bottom = p.bottom;
    win.pad_left = p.left;
    win.pad_right = p.right;
  }
  return win;
}

template <class X>
constexpr auto pool_op(const X& x, ReduceKind kind, const Pool2dOptions& o) {
  Node n;
  n.op = Op::pool2d;
  n.rk = kind;
  const int sh = o.stride_h > 0 ? o.stride_h : o.kernel_h, sw = o.stride_w > 0 ? o.stride_w : o.kernel_w;
  n.win = make_window(x.shape(), o.kernel_h, o.kernel_w, sh, sw, 1, 1, o.padding);
  n.win.count_include_pad = o.count_include_pad;
  return apply<float>(n, x);
}

}  // namespace detail

/// 2-D convolution of NHWC x [N, H, W, C] with OHWI weight [O, kh, kw, C / groups]: [N, OH, OW, O].
/// groups == C is a depthwise conv (O = C x multiplier).
template <class X, class W, std::enable_if_t<detail::is_tensor_v<X> && detail::is_tensor_v<W>, int> = 0>
constexpr auto conv2d(const X& x, const W& weight, const Conv2dOptions& o = {}) {
  Node n;
  n.op = Op::conv2d;
  const Shape& ws = weight.shape();
  const int kh = ws.rank() == 4 ? static_cast<int>(ws[1]) : 1, kw = ws.rank() == 4 ? static_cast<int>(ws[2]) : 1;
  n.win = detail::make_window(x.shape(), kh, kw, o.stride_h, o.stride_w, o.dilation_h, o.dilation_w, o.padding);
  n.win.groups = o.groups;
  return detail::apply<float>(n, x, weight);
}
/// conv2d(x, weight) + bias (bias [O]); compiled, the bias is added in the GEMM's registers.
template <class X, class W, class Bi,
          std::enable_if_t<detail::is_tensor_v<X> && detail::is_tensor_v<W> && detail::is_tensor_v<Bi>, int> = 0>
constexpr auto conv2d(const X& x, const W& weight, const Bi& bias, const Conv2dOptions& o = {}) {
  return conv2d(x, weight, o) + bias;
}

/// Max over each window; padding is never the maximum (it acts as -inf).
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto max_pool2d(const X& x, const Pool2dOptions& o = {}) {
  return detail::pool_op(x, ReduceKind::max, o);
}
/// Mean over each window (o.count_include_pad: padding counts as zeros in the divisor).
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto avg_pool2d(const X& x, const Pool2dOptions& o = {}) {
  return detail::pool_op(x, ReduceKind::mean, o);
}

/// Mean over H and W: [N, 1, 1, C] (keepdim) or [N, C]. A reshape to [N, H*W, C] and a mean over
/// axis 1, so it fuses with its producers like any reduction.
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto global_avg_pool(const X& x, bool keepdim = true) {
  const Shape& s = x.shape();
  if (s.rank() != 4) {  // reported by reshape's type rules with the shape in the message
    return mean(reshape(x, Shape::of_rank(kMaxRank + 1)), 1, keepdim);
  }
  auto m = mean(reshape(x, Shape{s[0], s[1] * s[2], s[3]}), 1, false);
  return keepdim ? reshape(m, Shape{s[0], 1, 1, s[3]}) : m;
}

/// Pads H and W of NHWC x with `value` (explicit sides; Padding2d::same() is not meaningful here).
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto pad(const X& x, const Padding2d& p, float value = 0.f) {
  Node n;
  n.op = Op::pad;
  n.win.pad_top = p.top;
  n.win.pad_bottom = p.bottom;
  n.win.pad_left = p.left;
  n.win.pad_right = p.right;
  n.p0 = value;
  return detail::apply<float>(n, x);
}

/// Nearest-neighbour upsampling of NHWC x by integer scales: [N, H * scale_h, W * scale_w, C].
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto upsample_nearest(const X& x, int scale_h, int scale_w) {
  Node n;
  n.op = Op::upsample;
  n.win.stride_h = scale_h;
  n.win.stride_w = scale_w;
  return detail::apply<float>(n, x);
}
template <class X, std::enable_if_t<detail::is_tensor_v<X>, int> = 0>
constexpr auto upsample_nearest(const X& x, int scale) {
  return upsample_nearest(x, scale, scale);
}

/// Inference batch normalisation over the channel (last) axis:
///   y = (x - mean) / sqrt(var + eps) * gamma + beta = x * scale + shift.
/// scale and shift are computed from the parameters (at trace time when they are concrete
/// tensors); compiled, the conv2d/linear that produces x absorbs them into its weights and bias
/// when its weight is a constant (passes/fold_channel_affine.hpp).
template <class X, class G, class B, class M, class V,
          std::enable_if_t<detail::is_tensor_v<X> && detail::is_tensor_v<G> && detail::is_tensor_v<B> &&
                               detail::is_tensor_v<M> && detail::is_tensor_v<V>,
                           int> = 0>
constexpr auto batch_norm(const X& x, const G& gamma, const B& beta, const M& running_mean, const V& running_var,
                float eps = 1e-5f) {
  auto scale = gamma * rsqrt(running_var + eps);
  auto shift = beta - running_mean * scale;
  return x * scale + shift;
}

}  // namespace kiln
