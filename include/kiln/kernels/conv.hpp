// kiln/kernels/conv.hpp — 2-D convolution, NHWC input, OHWI weight [out_c, kh, kw, in_c/groups].
//
// Three algorithms, chosen from the geometry alone (conv_algorithm):
//  - pointwise: a 1x1, stride-1, unpadded conv over NHWC *is* a matmul of the [N*H*W, C] input
//    by the weight's transpose; the GEMM reads the input where it lies.
//  - depthwise (groups == in_c, any channel multiplier): direct, vectorised over output channels
//    with the weight transposed to [kh][kw][out_c]; a GEMM would have depth kh*kw and waste
//    its register tile.
//  - im2col: everything else. Rows of the implicit im2col matrix (one per output pixel, columns
//    (kh, kw, c) in the order of an OHWI weight's rows) are gathered chunk by chunk into the
//    workspace (a chunk stays in L2) and multiplied by the GEMM.
// Both GEMM paths keep the weight as the GEMM's B operand: an OHWI weight is exactly a linear
// layer's [out, in] matrix, so it is prepacked once like one (conv_pack_weights).
//
// The epilogue is the GEMM's: bias and clamp in registers, then `tail` on each finished block
// with coordinates over the whole [rows, out_c] output (the chunking and groups are hidden).
// No heap: all scratch is the caller's workspace (conv_workspace_floats, 64-byte aligned).
#pragma once

#include <cstring>

#include "gemm.hpp"
#include "window.hpp"

namespace kiln::kernels {

enum class ConvAlgorithm : std::uint8_t { pointwise, depthwise, im2col };

constexpr const char* conv_algorithm_name(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::pointwise: return "pointwise gemm";
    case ConvAlgorithm::depthwise: return "depthwise direct";
    case ConvAlgorithm::im2col: return "im2col gemm";
  }
  return "?";
}

constexpr ConvAlgorithm conv_algorithm(const WindowGeometry& g) {
  if (g.groups == g.in_c && g.in_c > 1) return ConvAlgorithm::depthwise;
  if (g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
      g.pad_left == 0 && g.out_h == g.in_h && g.out_w == g.in_w)
    return ConvAlgorithm::pointwise;
  return ConvAlgorithm::im2col;
}

namespace conv_detail {

/// Rows of the im2col matrix gathered per GEMM call: about 128 KiB, a multiple of the micro-tile.
inline index_t chunk_rows(const WindowGeometry& g) {
  const index_t mr = gemm_detail::kMR;
  index_t r = (32768 / (g.depth() > 0 ? g.depth() : 1)) / mr * mr;
  if (r < mr) r = mr;
  return r < g.rows() ? r : g.rows();
}

/// Rows [r0, r0 + count) of group `grp`'s im2col matrix into dst (row stride depth()); taps in the
/// padding are zeros.
inline void im2col_rows(const WindowGeometry& g, NhwcIn x, index_t grp, index_t r0, index_t count, float* dst) {
  const index_t cg = g.in_c_group(), depth = g.depth();
  const std::size_t run = static_cast<std::size_t>(cg) * sizeof(float);
  index_t ow = r0 % g.out_w, oh = (r0 / g.out_w) % g.out_h, n = r0 / (g.out_w * g.out_h);
  for (index_t r = 0; r < count; ++r, dst += depth) {
    float* d = dst;
    for (int kh = 0; kh < g.kernel_h; ++kh) {
      const index_t ih = oh * g.stride_h - g.pad_top + static_cast<index_t>(kh) * g.dilation_h;
      if (ih < 0 || ih >= g.in_h) {
        std::memset(d, 0, run * static_cast<std::size_t>(g.kernel_w));
        d += cg * g.kernel_w;
        continue;
      }
      for (int kw = 0; kw < g.kernel_w; ++kw, d += cg) {
        const index_t iw = ow * g.stride_w - g.pad_left + static_cast<index_t>(kw) * g.dilation_w;
        if (iw < 0 || iw >= g.in_w) std::memset(d, 0, run);
        else std::memcpy(d, x.at(n, ih, iw) + grp * cg, run);
      }
    }
    if (++ow == g.out_w) {
      ow = 0;
      if (++oh == g.out_h) {
        oh = 0;
        ++n;
      }
    }
  }
}

/// Forwards a GEMM's tail call with the block moved by (row0, col0): the caller's tail sees
/// coordinates over the whole conv output.
struct ShiftedTail {
  const GemmEpilogue* user;
  index_t row0, col0;
  static void call(void* ctx, index_t i0, index_t j0, index_t m, index_t n, float* c, index_t ldc) {
    const ShiftedTail& s = *static_cast<const ShiftedTail*>(ctx);
    s.user->tail(s.user->ctx, s.row0 + i0, s.col0 + j0, m, n, c, ldc);
  }
};

inline GemmEpilogue group_epilogue(const GemmEpilogue& ep, ShiftedTail& shift, index_t col0) {
  GemmEpilogue e = ep;
  if (ep.bias) e.bias = ep.bias + col0;
  if (ep.tail) {
    e.tail = &ShiftedTail::call;
    e.ctx = &shift;
  }
  return e;
}

// ---- depthwise --------------------------------------------------------------------------------

/// One output pixel, channels [o0, o0 + V*kLanes) with multiplier 1: V vector accumulators held
/// over every tap of the window.
template <int V>
KILN_WINDOW_INLINE void depthwise_pixel(const WindowGeometry& g, NhwcIn x, index_t n, const window_detail::TapRange& th,
                                        const window_detail::TapRange& tw, const float* wt, index_t o0,
                                        const float* bias, bool clamp, float lo, float hi, float* out) {
  using namespace window_detail;
  constexpr int L = kLanes;
  vec acc[V];
  for (int v = 0; v < V; ++v) acc[v] = bias ? vload(bias + o0 + v * L) : vsplat(0.f);
  for (int kh = th.t0; kh < th.t1; ++kh) {
    const index_t ih = th.origin + static_cast<index_t>(kh) * g.dilation_h;
    for (int kw = tw.t0; kw < tw.t1; ++kw) {
      const float* xp = x.at(n, ih, tw.origin + static_cast<index_t>(kw) * g.dilation_w) + o0;
      const float* wp = wt + (static_cast<index_t>(kh) * g.kernel_w + kw) * g.out_c + o0;
      for (int v = 0; v < V; ++v) acc[v] = vfma(vload(xp + v * L), vload(wp + v * L), acc[v]);
    }
  }
  if (clamp) {
    const vec vlo = vsplat(lo), vhi = vsplat(hi);
    for (int v = 0; v < V; ++v) acc[v] = vclamp(acc[v], vlo, vhi);
  }
  for (int v = 0; v < V; ++v) vstore(out + o0 + v * L, acc[v]);
}

/// Depthwise conv, weight transposed to wt[kh][kw][out_c]; output rows of ldc floats.
inline void depthwise(const WindowGeometry& g, NhwcIn x, const float* wt, float* out, index_t ldc,
                      const GemmEpilogue& ep) {
  using namespace window_detail;
  constexpr index_t L = kLanes;
  const index_t C = g.out_c, mult = g.out_c / g.in_c;
  for (index_t n = 0; n < g.batch; ++n)
    for (index_t oh = 0; oh < g.out_h; ++oh) {
      const TapRange th = taps(oh, g.stride_h, g.pad_top, g.kernel_h, g.dilation_h, g.in_h);
      const index_t row0 = (n * g.out_h + oh) * g.out_w;
      float* orow = out + row0 * ldc;
      for (index_t ow = 0; ow < g.out_w; ++ow) {
        const TapRange tw = taps(ow, g.stride_w, g.pad_left, g.kernel_w, g.dilation_w, g.in_w);
        float* o = orow + ow * ldc;
        index_t c = 0;
        if (mult == 1) {
          for (; c + 4 * L <= C; c += 4 * L) depthwise_pixel<4>(g, x, n, th, tw, wt, c, ep.bias, ep.clamp, ep.lo, ep.hi, o);
          for (; c + L <= C; c += L) depthwise_pixel<1>(g, x, n, th, tw, wt, c, ep.bias, ep.clamp, ep.lo, ep.hi, o);
        }
        // Channel tail, and every channel with a multiplier > 1 (output o reads input o / mult).
        for (; c < C; ++c) {
          float acc = ep.bias ? ep.bias[c] : 0.f;
          for (int kh = th.t0; kh < th.t1; ++kh) {
            const index_t ih = th.origin + static_cast<index_t>(kh) * g.dilation_h;
            for (int kw = tw.t0; kw < tw.t1; ++kw) {
              const float xv = x.at(n, ih, tw.origin + static_cast<index_t>(kw) * g.dilation_w)[c / mult];
              acc += xv * wt[(static_cast<index_t>(kh) * g.kernel_w + kw) * C + c];
            }
          }
          if (ep.clamp) acc = acc < ep.lo ? ep.lo : (acc > ep.hi ? ep.hi : acc);
          o[c] = acc;
        }
      }
      if (ep.tail) ep.tail(ep.ctx, row0, 0, g.out_w, C, orow, ldc);
    }
}

}  // namespace conv_detail

/// Floats of the prepacked weight (conv_pack_weights): one packed GEMM B per group, or the
/// [kh][kw][out_c] transpose for depthwise.
inline std::size_t conv_packed_weight_floats(const WindowGeometry& g) {
  if (conv_algorithm(g) == ConvAlgorithm::depthwise)
    return static_cast<std::size_t>(g.kernel_h) * g.kernel_w * g.out_c;
  return static_cast<std::size_t>(g.groups) * packed_b_size(g.depth(), g.out_c_group());
}

/// Packs an OHWI weight once for repeated conv2d calls.
inline void conv_pack_weights(const WindowGeometry& g, const float* w_ohwi, float* packed) {
  const index_t taps = static_cast<index_t>(g.kernel_h) * g.kernel_w;
  if (conv_algorithm(g) == ConvAlgorithm::depthwise) {
    // OHWI with one input channel per group: w[o][t] -> packed[t][o].
    for (index_t o = 0; o < g.out_c; ++o)
      for (index_t t = 0; t < taps; ++t) packed[t * g.out_c + o] = w_ohwi[o * taps + t];
    return;
  }
  const index_t depth = g.depth(), ng = g.out_c_group();
  const std::size_t per_group = packed_b_size(depth, ng);
  for (int grp = 0; grp < g.groups; ++grp)
    pack_b(depth, ng, MatrixRef{w_ohwi + grp * ng * depth, 1, depth}, packed + grp * per_group);
}

/// Scratch floats conv2d needs: the im2col chunk and the GEMM's packing buffers, or the
/// transposed depthwise weight when it is not prepacked.
inline std::size_t conv_workspace_floats(const WindowGeometry& g, bool prepacked) {
  const ConvAlgorithm a = conv_algorithm(g);
  if (a == ConvAlgorithm::depthwise) return prepacked ? 0 : conv_packed_weight_floats(g);
  const index_t depth = g.depth();  // in_c_group() for pointwise
  const index_t rows = a == ConvAlgorithm::pointwise ? g.rows() : conv_detail::chunk_rows(g);
  std::size_t n = gemm_workspace_size(rows, g.out_c_group(), depth, prepacked);
  if (a == ConvAlgorithm::im2col)
    n += align_up(static_cast<std::size_t>(rows * depth), kAlignment / sizeof(float));
  return n;
}

/// out[rows, out_c] (row stride ldc) = epilogue(conv(x, w)). Either w_ohwi (the weight as the
/// model holds it) or packed (conv_pack_weights) is used: packed when non-null. workspace:
/// conv_workspace_floats(g, packed != nullptr) floats, 64-byte aligned. `out` must not alias x.
/// Pointwise convs read x as a matrix: its pixels must be evenly strided (x.sh == in_w * x.sw and
/// x.sn == in_h * x.sh, true of any dense tensor).
inline void conv2d(const WindowGeometry& g, NhwcIn x, const float* w_ohwi, const float* packed, float* out,
                   index_t ldc, const GemmEpilogue& ep, float* workspace) {
  const ConvAlgorithm algo = conv_algorithm(g);
  if (g.rows() <= 0 || g.out_c <= 0) return;
  if (algo == ConvAlgorithm::depthwise) {
    const float* wt = packed;
    if (!wt) {
      conv_pack_weights(g, w_ohwi, workspace);
      wt = workspace;
    }
    conv_detail::depthwise(g, x, wt, out, ldc, ep);
    return;
  }
  const index_t ng = g.out_c_group();
  const index_t depth = g.depth();
  const std::size_t per_group = packed_b_size(depth, ng);
  auto weight = [&](int grp) { return MatrixRef{w_ohwi ? w_ohwi + grp * ng * depth : nullptr, 1, depth}; };
  auto packed_of = [&](int grp) { return packed ? packed + grp * per_group : nullptr; };
  if (algo == ConvAlgorithm::pointwise) {  // the input is the GEMM's A (see the precondition)
    for (int grp = 0; grp < g.groups; ++grp) {
      conv_detail::ShiftedTail shift{&ep, 0, grp * ng};
      const GemmEpilogue e = conv_detail::group_epilogue(ep, shift, grp * ng);
      gemm(g.rows(), ng, depth, MatrixRef{x.data + grp * depth, x.sw, 1}, weight(grp), packed_of(grp), out + grp * ng,
           ldc, e, workspace);
    }
    return;
  }
  const index_t chunk = conv_detail::chunk_rows(g);
  float* cols = workspace;
  float* gemm_ws = workspace + align_up(static_cast<std::size_t>(chunk * depth), kAlignment / sizeof(float));
  for (index_t r0 = 0; r0 < g.rows(); r0 += chunk) {
    const index_t rows = chunk < g.rows() - r0 ? chunk : g.rows() - r0;
    for (int grp = 0; grp < g.groups; ++grp) {
      conv_detail::im2col_rows(g, x, grp, r0, rows, cols);
      conv_detail::ShiftedTail shift{&ep, r0, grp * ng};
      const GemmEpilogue e = conv_detail::group_epilogue(ep, shift, grp * ng);
      gemm(rows, ng, depth, MatrixRef{cols, depth, 1}, weight(grp), packed_of(grp), out + r0 * ldc + grp * ng, ldc, e,
           gemm_ws);
    }
  }
}

}  // namespace kiln::kernels
