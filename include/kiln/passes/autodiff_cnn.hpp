// kiln/passes/autodiff_cnn.hpp — backward rules of the NHWC CNN ops (conv2d, pool2d, pad,
// upsample), written with existing IR ops so the backward is fused, planned and run on every
// target like any forward graph. (global_avg_pool and batch_norm are reshapes, reductions and
// elementwise ops in the front-end: their gradients come from those rules.)
//
// The one idea behind conv2d's input gradient and avg_pool2d's: a window op reads
//   y[o] = sum_t x_pad[o * stride + t * dilation] k[t]
// so x's gradient is a stride-1 correlation, with the flipped kernel, of gy spread out: gy's rows
// placed `stride` apart (zeros between) with (kernel - 1) * dilation - pad zeros in front —
// transposed convolution, built from unslice (the zero insertion) and an ordinary conv2d/pool2d.
// conv2d's weight gradient is a conv2d too: x (channels as batch, batch as channels) correlated
// with gy as the kernel, the forward's stride becoming the dilation and vice versa.
// max_pool2d's gradient goes, per kernel tap, to the window element that equals the maximum and
// is the first one (row-major in the window) to do so: PyTorch's CPU rule for ties.
#pragma once

#include <limits>

#include "grad_builder.hpp"

namespace kiln::passes::detail {

/// A window op (conv2d, pool2d or pad) on x (and weight w for conv2d).
constexpr int window_op(GradBuilder& b, Op op, const Window2d& win, int x, int w = -1,
                        ReduceKind rk = ReduceKind::sum, float value = 0.f) {
  Node n;
  n.op = op;
  n.win = win;
  n.rk = rk;
  n.p0 = value;
  n.inputs[0] = x;
  n.inputs[1] = w;
  n.num_inputs = op == Op::conv2d ? 2 : 1;
  return b.append(n);
}

/// Places the rows of v along `axis` at before, before + stride, ... inside zeros of `extent`;
/// rows that would land outside (a negative `before`, or past the end) are dropped. Up to
/// `max_pad` zeros on each side are left to the consumer, a window op, as its padding (added to
/// *pad_before / *pad_after): only zeros between rows, or beyond that, are materialised.
constexpr int spread(GradBuilder& b, int v, int axis, index_t stride, index_t before, index_t extent,
                     index_t max_pad = 0, int* pad_before = nullptr, int* pad_after = nullptr) {
  if (v < 0) return -1;
  const index_t count = b.shape(v)[axis];
  const index_t first = before < 0 ? (-before + stride - 1) / stride : 0;
  index_t last = count - 1;
  if (before + last * stride >= extent) last = (extent - 1 - before) / stride;
  if (extent - 1 - before < 0 || last < first) {  // nothing lands inside: zeros
    Shape s = b.shape(v);
    s[axis] = extent;
    return b.zeros(s);
  }
  if (first > 0 || last < count - 1) v = b.slice(v, axis, first, last - first + 1, 1);
  const index_t start = before + first * stride, span = (last - first) * stride + 1;
  const index_t lead = start < max_pad ? start : max_pad;
  const index_t trail = extent - start - span < max_pad ? extent - start - span : max_pad;
  if (pad_before) *pad_before += static_cast<int>(lead);
  if (pad_after) *pad_after += static_cast<int>(trail);
  if (start == lead && (stride == 1 || span == 1) && span + lead + trail == extent) return v;
  return b.pad(v, axis, start - lead, stride, extent - lead - trail);
}

/// x's gradient through a window op read with `win` (kernel kh x kw): the stride-1 window (the
/// forward's dilation) with the flipped kernel over gy spread out to [N, H + (kh-1) dh,
/// W + (kw-1) dw, C]. Returns the spread gy; *t receives that window, padded with the spread's
/// border zeros instead of materialising them (for a pool, less than the kernel on each side).
constexpr int spread_for_transpose(GradBuilder& b, int gy, const Window2d& win, index_t h, index_t w, bool for_pool,
                                   Window2d* t) {
  constexpr index_t any = index_t{1} << 30;
  const index_t span_h = static_cast<index_t>(win.kernel_h - 1) * win.dilation_h;
  const index_t span_w = static_cast<index_t>(win.kernel_w - 1) * win.dilation_w;
  *t = Window2d{};
  t->kernel_h = win.kernel_h;
  t->kernel_w = win.kernel_w;
  t->dilation_h = win.dilation_h;
  t->dilation_w = win.dilation_w;
  const int rows = spread(b, gy, 1, win.stride_h, span_h - win.pad_top, h + span_h, for_pool ? win.kernel_h - 1 : any,
                          &t->pad_top, &t->pad_bottom);
  return spread(b, rows, 2, win.stride_w, span_w - win.pad_left, w + span_w, for_pool ? win.kernel_w - 1 : any,
                &t->pad_left, &t->pad_right);
}

/// Concatenates parts[0..count) along `axis`, kMaxInputs at a time.
constexpr int concat_all(GradBuilder& b, const int* parts, int count, int axis) {
  int acc = -1;
  for (int i = 0; i < count;) {
    Node cat;
    cat.op = Op::concat;
    cat.axis = axis;
    if (acc >= 0) cat.inputs[cat.num_inputs++] = acc;
    for (; i < count && cat.num_inputs < kMaxInputs; ++i) cat.inputs[cat.num_inputs++] = parts[i];
    acc = cat.num_inputs == 1 ? cat.inputs[0] : b.append(cat);
  }
  return acc;
}

/// The most kernel rows (or columns) a backward rule unrolls; larger kernels are an error.
inline constexpr int kMaxUnrolledKernel = 64;

/// Reverses `axis` of v (the kernel flip of a transposed convolution): slices take positive steps
/// only, so the rows are sliced one by one and concatenated back to front.
constexpr int flip(GradBuilder& b, int v, int axis) {
  if (v < 0) return -1;
  const int n = static_cast<int>(b.shape(v)[axis]);
  int rows[kMaxUnrolledKernel]{};
  for (int i = 0; i < n; ++i) rows[i] = b.slice(v, axis, n - 1 - i, 1, 1);
  return concat_all(b, rows, n, axis);
}

/// conv2d: x [N, H, W, C], w [O, kh, kw, C/g] -> y [N, OH, OW, O], groups g.
constexpr void conv2d_backward(GradBuilder& b, int id, int gy, const bool* need, int* contrib) {
  const Node n = b.node(id);
  const int x = n.inputs[0], w = n.inputs[1];
  const Shape xs = b.shape(x), ws = b.shape(w);
  const Window2d& win = n.win;
  const index_t g = win.groups, o = ws[0], kh = ws[1], kw = ws[2], cg = ws[3], batch = xs[0];
  if (need[0]) {
    // Group gi maps its O/g channels of gy back to its C/g channels of x: weight [C, kh, kw, O/g]
    // with wt[gi C/g + ci, kh-1-a, kw-1-b, oi] = w[gi O/g + oi, a, b, ci].
    const std::int8_t swap_io[kMaxRank] = {0, 4, 2, 3, 1, 5};
    int wt = b.permute(b.reshape(w, Shape{g, o / g, kh, kw, cg}), swap_io);
    wt = flip(b, flip(b, b.reshape(wt, Shape{g * cg, kh, kw, o / g}), 1), 2);
    Window2d t;
    const int spread_gy = spread_for_transpose(b, gy, win, xs[1], xs[2], false, &t);
    t.groups = win.groups;
    contrib[0] = window_op(b, Op::conv2d, t, spread_gy, wt);
  }
  if (need[1]) {
    // dw[o, a, b, ci] = sum over n, p, q of x_pad[n, p s + a d, q s + b d, gi C/g + ci] gy[n, p, q, o]:
    // a conv2d of x as [C/g, H, W, g N] (channel gi N + n) with gy as the weight [O, OH, OW, N],
    // groups g, stride d, dilation s, the forward's padding. It may see a few more taps than kh
    // (rows the forward never reached): sliced off.
    const std::int8_t to_cwh_gn[kMaxRank] = {4, 1, 2, 3, 0, 5};
    const int xr = b.reshape(b.permute(b.reshape(x, Shape{batch, xs[1], xs[2], g, cg}), to_cwh_gn),
                             Shape{cg, xs[1], xs[2], g * batch});
    const std::int8_t swap_no[kMaxRank] = {3, 1, 2, 0, 4, 5};
    Window2d t = win;
    t.stride_h = win.dilation_h;
    t.stride_w = win.dilation_w;
    t.dilation_h = win.stride_h;
    t.dilation_w = win.stride_w;
    int dw = window_op(b, Op::conv2d, t, xr, b.permute(gy, swap_no));  // [C/g, kh', kw', O]
    if (dw >= 0 && b.shape(dw)[1] != kh) dw = b.slice(dw, 1, 0, kh, 1);
    if (dw >= 0 && b.shape(dw)[2] != kw) dw = b.slice(dw, 2, 0, kw, 1);
    contrib[1] = b.permute(dw, swap_no);
  }
}

/// avg_pool2d: x's gradient is the transposed window sum of gy / divisor, i.e. the stride-1
/// average (padding as zeros) of gy spread out, times area / divisor: 1 when the divisor is the
/// kernel area, else area / taps per window = 1 / (the include-pad average of ones).
constexpr int avg_pool2d_backward(GradBuilder& b, int id, int gy) {
  const Node n = b.node(id);
  const Shape xs = b.shape(n.inputs[0]);
  Window2d win = n.win;
  const bool padded = win.pad_top > 0 || win.pad_bottom > 0 || win.pad_left > 0 || win.pad_right > 0;
  int scaled = gy;
  if (padded && !win.count_include_pad) {
    win.count_include_pad = true;
    const int ones = b.expand(b.scalar(1.f), Shape{1, xs[1], xs[2], 1});
    scaled = b.ew(EwFn::div, gy, window_op(b, Op::pool2d, win, ones, -1, ReduceKind::mean));
  }
  Window2d t;
  const int spread_gy = spread_for_transpose(b, scaled, win, xs[1], xs[2], true, &t);
  t.count_include_pad = true;
  return window_op(b, Op::pool2d, t, spread_gy, -1, ReduceKind::mean);
}

/// max_pool2d: per kernel tap, the window elements equal to the maximum take what is left of the
/// window's gradient (so the first such tap takes all of it). The taps' shares go back to their
/// pixels by unslice and add or, when the windows tile the input (stride == kernel), by
/// interleaving them with two concats and a reshape (no overlap: no adds, one pass).
constexpr int max_pool2d_backward(GradBuilder& b, int id, int gy) {
  const Node n = b.node(id);
  const int x = n.inputs[0];
  const Shape xs = b.shape(x), ys = b.shape(id);
  const Window2d& win = n.win;
  const int kh = win.kernel_h, kw = win.kernel_w;
  const index_t hp = xs[1] + win.pad_top + win.pad_bottom, wp = xs[2] + win.pad_left + win.pad_right;
  const bool padded = hp != xs[1] || wp != xs[2];
  const bool tiled = win.stride_h == kh && win.stride_w == kw;
  const int xp = padded ? window_op(b, Op::pad, win, x, -1, ReduceKind::sum, -std::numeric_limits<float>::infinity()) : x;
  int left = gy, acc = -1;
  int row[kMaxUnrolledKernel]{}, rows[kMaxUnrolledKernel]{};
  const Shape tap_shape{ys[0], ys[1], 1, ys[2], 1, ys[3]};
  for (int a = 0; a < kh; ++a) {
    for (int c = 0; c < kw; ++c) {
      const int tap = b.slice(b.slice(xp, 1, a, ys[1], win.stride_h), 2, c, ys[2], win.stride_w);
      const int hit = b.ew(EwFn::eq, tap, id);
      const int share = b.keep_where(hit, left);
      if (a + 1 < kh || c + 1 < kw) left = b.select(hit, b.scalar(0.f), left);
      if (tiled) {
        row[c] = b.reshape(share, tap_shape);
        continue;
      }
      const int placed = b.pad(b.pad(share, 1, a, win.stride_h, hp), 2, c, win.stride_w, wp);
      acc = acc < 0 ? placed : b.ew(EwFn::add, acc, placed);
    }
    if (tiled) rows[a] = concat_all(b, row, kw, 4);
  }
  if (tiled) {  // [N, OH, kh, OW, kw, C] -> the covered part of the padded input, then its rest
    acc = b.reshape(concat_all(b, rows, kh, 2), Shape{ys[0], ys[1] * kh, ys[2] * kw, ys[3]});
    acc = spread(b, spread(b, acc, 1, 1, 0, hp), 2, 1, 0, wp);
  }
  if (!padded) return acc;
  return b.slice(b.slice(acc, 1, win.pad_top, xs[1], 1), 2, win.pad_left, xs[2], 1);
}

/// upsample_nearest by (sh, sw): each input pixel's gradient is the sum over its sh x sw block.
constexpr int upsample_backward(GradBuilder& b, int id, int gy) {
  const Node n = b.node(id);
  const Shape xs = b.shape(n.inputs[0]);
  const index_t sh = n.win.stride_h, sw = n.win.stride_w;
  const int rows = b.reduce_sum(b.reshape(gy, Shape{xs[0] * xs[1], sh, xs[2] * sw * xs[3]}), 1, false);
  const int cols = b.reduce_sum(b.reshape(rows, Shape{xs[0] * xs[1] * xs[2], sw, xs[3]}), 1, false);
  return b.reshape(cols, xs);
}

/// The CNN ops' contributions to their inputs (autodiff.hpp's dispatch).
constexpr void cnn_backward(GradBuilder& b, int id, int gy, const bool* need, int* contrib) {
  const Node& n = b.node(id);
  const bool unrolled = n.op == Op::conv2d || (n.op == Op::pool2d && n.rk == ReduceKind::max);
  if (unrolled && (n.win.kernel_h > kMaxUnrolledKernel || n.win.kernel_w > kMaxUnrolledKernel)) {
    Status s(Errc::not_supported);
    b.fail(s << "autodiff: " << (n.op == Op::conv2d ? "conv2d" : "max_pool2d") << " kernel " << n.win.kernel_h << 'x'
             << n.win.kernel_w << " (node %" << id << ", input " << b.shape(n.inputs[0])
             << "): the backward unrolls at most " << kMaxUnrolledKernel << " rows and columns");
    return;
  }
  switch (n.op) {
    case Op::conv2d: conv2d_backward(b, id, gy, need, contrib); return;
    case Op::pool2d:
      contrib[0] = n.rk == ReduceKind::max ? max_pool2d_backward(b, id, gy) : avg_pool2d_backward(b, id, gy);
      return;
    case Op::pad: {  // the gradient of the unpadded region
      const Shape xs = b.shape(n.inputs[0]);
      contrib[0] = b.slice(b.slice(gy, 1, n.win.pad_top, xs[1], 1), 2, n.win.pad_left, xs[2], 1);
      return;
    }
    case Op::upsample: contrib[0] = upsample_backward(b, id, gy); return;
    default: return;
  }
}

}  // namespace kiln::passes::detail
